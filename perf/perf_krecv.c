/* shoal-krecv — kernel-socket RTP receiver using shoal's codec.
 *
 * Receives RTP (RFC 2435 JPEG, or RFC 4175 raw video with --raw) on an ordinary UDP socket
 * with recvmmsg, reassembles every frame per SSRC exactly as the data plane does, optionally
 * decodes JPEG frames with libjpeg-turbo, and prints what it got. It is the kernel baseline of
 * the ingest benchmark and a way to watch a stock sender (ffmpeg, GStreamer) on loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "dataplane/dp_proto.h"

#define KRECV_BURST 64
#define KRECV_PKT_MAX 2048
#define KRECV_STREAMS 16

static volatile sig_atomic_t perf_krecv_stop; /* the stop flag: the one allowed global */

struct perf_krecv_opts {
	const char *bind_addr;
	int port;
	long max_frames;
	double seconds;
	int decode;
	const char *save_dir;
	int raw_width, raw_height, raw_pt;
	enum dp_raw_sampling raw_sampling;
	size_t max_frame_bytes;
	int verbose;
};

struct perf_krecv_stream {
	uint32_t ssrc;
	int used, in_frame;
	uint32_t ts;
	struct dp_jpeg_frame jpeg;
	uint8_t *buf;
	size_t raw_bytes; /* raw payload bytes placed in the current frame */
	uint64_t frames, incomplete, bad, decoded, decode_failed, bytes;
	int last_w, last_h;
};

struct perf_krecv {
	struct perf_krecv_opts o;
	struct perf_krecv_stream streams[KRECV_STREAMS];
	tjhandle tj;
	uint8_t *pixels;
	uint64_t packets, rtcp_packets, not_rtp, unknown_pt, streams_full, frames_total;
	uint64_t err_by_code[DP_PROTO_ERR__COUNT];
};

static double perf_krecv_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void perf_krecv_on_signal(int sig)
{
	(void)sig;
	perf_krecv_stop = 1;
}

static void perf_krecv_count_err(struct perf_krecv *k, int err)
{
	int i = -err;
	if (i > 0 && i < DP_PROTO_ERR__COUNT)
		k->err_by_code[i]++;
}

static struct perf_krecv_stream *perf_krecv_stream_get(struct perf_krecv *k, uint32_t ssrc)
{
	for (int i = 0; i < KRECV_STREAMS; i++)
		if (k->streams[i].used && k->streams[i].ssrc == ssrc)
			return &k->streams[i];
	for (int i = 0; i < KRECV_STREAMS; i++) {
		struct perf_krecv_stream *s = &k->streams[i];
		if (s->used)
			continue;
		s->buf = malloc(k->o.max_frame_bytes); /* set-up, once per new stream */
		if (!s->buf)
			return NULL;
		s->used = 1;
		s->ssrc = ssrc;
		return s;
	}
	k->streams_full++;
	return NULL;
}

static void perf_krecv_frame_done(struct perf_krecv *k, struct perf_krecv_stream *s,
				  const uint8_t *img, size_t len, int is_jpeg, int w, int h)
{
	s->frames++;
	k->frames_total++;
	s->bytes += len;
	s->last_w = w;
	s->last_h = h;
	if (is_jpeg && k->o.decode) {
		int jw = 0, jh = 0, sub = 0, cs = 0;
		if (tjDecompressHeader3(k->tj, img, (unsigned long)len, &jw, &jh, &sub, &cs) != 0 ||
		    (size_t)jw * jh * 3 > k->o.max_frame_bytes ||
		    tjDecompress2(k->tj, img, (unsigned long)len, k->pixels, jw, 0, jh, TJPF_RGB, 0) != 0) {
			s->decode_failed++;
			if (k->o.verbose)
				fprintf(stderr, "krecv: ssrc %08x ts %u: decode failed: %s\n", s->ssrc, s->ts,
					tjGetErrorStr2(k->tj));
		} else {
			s->decoded++;
			s->last_w = jw;
			s->last_h = jh;
		}
	}
	if (k->o.save_dir && s->frames <= 3) {
		char path[512];
		snprintf(path, sizeof path, "%s/ssrc%08x_frame%llu.%s", k->o.save_dir, s->ssrc,
			 (unsigned long long)s->frames, is_jpeg ? "jpg" : "yuv");
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(img, 1, len, f);
			fclose(f);
		}
	}
	if (k->o.verbose)
		printf("frame ssrc=%08x ts=%u bytes=%zu %dx%d\n", s->ssrc, s->ts, len, s->last_w,
		       s->last_h);
}

static void perf_krecv_abandon(struct perf_krecv_stream *s)
{
	if (s->in_frame)
		s->incomplete++;
	s->in_frame = 0;
}

static void perf_krecv_jpeg(struct perf_krecv *k, struct perf_krecv_stream *s,
			    const struct dp_rtp_hdr *r)
{
	struct dp_jpeg_hdr j;
	int rc = dp_jpeg_parse(r->payload, r->payload_len, &j);
	if (rc < 0) {
		perf_krecv_count_err(k, rc);
		s->bad++;
		return;
	}
	if (s->in_frame && s->ts != r->timestamp)
		perf_krecv_abandon(s);
	if (!s->in_frame) {
		dp_jpeg_frame_init(&s->jpeg, s->buf, k->o.max_frame_bytes);
		s->in_frame = 1;
		s->ts = r->timestamp;
	}
	rc = dp_jpeg_frame_add(&s->jpeg, &j, r->marker);
	if (rc < 0) {
		perf_krecv_count_err(k, rc);
		s->bad++;
		return;
	}
	if (!dp_jpeg_frame_complete(&s->jpeg))
		return;
	const uint8_t *img;
	size_t len;
	rc = dp_jpeg_frame_finish(&s->jpeg, &img, &len);
	s->in_frame = 0;
	if (rc < 0) {
		perf_krecv_count_err(k, rc);
		s->bad++;
		return;
	}
	perf_krecv_frame_done(k, s, img, len, 1, s->jpeg.width, s->jpeg.height);
}

static void perf_krecv_raw(struct perf_krecv *k, struct perf_krecv_stream *s,
			   const struct dp_rtp_hdr *r)
{
	struct dp_raw_hdr h;
	int rc = dp_raw_parse(r->payload, r->payload_len, &h);
	ssize_t fsize = dp_raw_frame_size(k->o.raw_sampling, (unsigned)k->o.raw_width,
					  (unsigned)k->o.raw_height);
	if (rc < 0 || fsize < 0) {
		perf_krecv_count_err(k, rc < 0 ? rc : (int)fsize);
		s->bad++;
		return;
	}
	if (s->in_frame && s->ts != r->timestamp)
		perf_krecv_abandon(s);
	if (!s->in_frame) {
		s->in_frame = 1;
		s->ts = r->timestamp;
		s->raw_bytes = 0;
	}
	ssize_t n = dp_raw_frame_copy(&h, k->o.raw_sampling, (unsigned)k->o.raw_width,
				      (unsigned)k->o.raw_height, s->buf, (size_t)fsize);
	if (n < 0) {
		perf_krecv_count_err(k, (int)n);
		s->bad++;
		return;
	}
	s->raw_bytes += (size_t)n;
	if (!r->marker)
		return;
	s->in_frame = 0;
	if (s->raw_bytes != (size_t)fsize) {
		s->incomplete++;
		return;
	}
	perf_krecv_frame_done(k, s, s->buf, (size_t)fsize, 0, k->o.raw_width, k->o.raw_height);
}

static void perf_krecv_packet(struct perf_krecv *k, const uint8_t *pkt, size_t len)
{
	struct dp_rtp_hdr r;
	k->packets++;
	int rc = dp_rtp_parse(pkt, len, &r);
	if (rc < 0) {
		perf_krecv_count_err(k, rc);
		k->not_rtp++;
		return;
	}
	int is_raw = k->o.raw_width > 0 && r.payload_type == k->o.raw_pt;
	if (r.payload_type != DP_RTP_PT_JPEG && !is_raw) {
		k->unknown_pt++;
		return;
	}
	struct perf_krecv_stream *s = perf_krecv_stream_get(k, r.ssrc);
	if (!s)
		return;
	if (is_raw)
		perf_krecv_raw(k, s, &r);
	else
		perf_krecv_jpeg(k, s, &r);
}

static int perf_krecv_socket(const char *addr, int port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	int rcvbuf = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		close(fd);
		return -EINVAL;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void perf_krecv_usage(FILE *f)
{
	fprintf(f,
		"usage: shoal-krecv [options]\n"
		"Receives RTP video on a kernel UDP socket, reassembles frames with shoal's codec.\n"
		"  -a, --addr ADDR       address to bind (default 127.0.0.1)\n"
		"  -p, --port N          RTP port (default 5004); RTCP on N+1 is not read\n"
		"  -n, --frames N        stop after N complete frames (default: no limit)\n"
		"  -t, --seconds S       stop after S seconds (default 10; 0 = no limit)\n"
		"  -d, --decode          decode JPEG frames with libjpeg-turbo and count failures\n"
		"  -s, --save DIR        write the first 3 frames of each stream into DIR\n"
		"  -r, --raw WxH:FMT[:PT] treat payload type PT (default 96) as RFC 4175 raw video\n"
		"                        of that size; FMT is 420, 422 or rgb\n"
		"  -m, --max-frame BYTES largest frame accepted (default 4194304)\n"
		"  -v, --verbose         a line per frame\n"
		"  -h, --help            this text\n"
		"Last line: krecv: packets=… frames=… incomplete=… bad=… decoded=… mpps=… fps=…\n");
}

static int perf_krecv_parse_raw(const char *arg, struct perf_krecv_opts *o)
{
	char fmt[8] = "";
	int pt = 96;
	if (sscanf(arg, "%dx%d:%7[^:]:%d", &o->raw_width, &o->raw_height, fmt, &pt) < 3)
		return -EINVAL;
	if (o->raw_width <= 0 || o->raw_height <= 0 || o->raw_width > 8192 || o->raw_height > 8192 ||
	    pt < 96 || pt > 127)
		return -EINVAL;
	o->raw_pt = pt;
	if (!strcmp(fmt, "420"))
		o->raw_sampling = DP_RAW_SAMPLING_YCBCR420;
	else if (!strcmp(fmt, "422"))
		o->raw_sampling = DP_RAW_SAMPLING_YCBCR422;
	else if (!strcmp(fmt, "rgb"))
		o->raw_sampling = DP_RAW_SAMPLING_RGB;
	else
		return -EINVAL;
	return 0;
}

static void perf_krecv_report(const struct perf_krecv *k, double elapsed)
{
	uint64_t incomplete = 0, bad = 0, decoded = 0, failed = 0;
	for (int i = 0; i < KRECV_STREAMS; i++) {
		const struct perf_krecv_stream *s = &k->streams[i];
		if (!s->used)
			continue;
		printf("stream ssrc=%08x frames=%llu incomplete=%llu bad=%llu decoded=%llu "
		       "decode_failed=%llu size=%dx%d avg_bytes=%.0f\n",
		       s->ssrc, (unsigned long long)s->frames, (unsigned long long)s->incomplete,
		       (unsigned long long)s->bad, (unsigned long long)s->decoded,
		       (unsigned long long)s->decode_failed, s->last_w, s->last_h,
		       s->frames ? (double)s->bytes / (double)s->frames : 0.0);
		incomplete += s->incomplete + (s->in_frame ? 1 : 0);
		bad += s->bad;
		decoded += s->decoded;
		failed += s->decode_failed;
	}
	for (int i = 1; i < DP_PROTO_ERR__COUNT; i++)
		if (k->err_by_code[i])
			printf("dropped %llu packets: %s\n", (unsigned long long)k->err_by_code[i],
			       dp_proto_strerror(-i));
	if (k->not_rtp || k->unknown_pt || k->streams_full)
		printf("not_rtp=%llu unknown_pt=%llu streams_full=%llu\n",
		       (unsigned long long)k->not_rtp, (unsigned long long)k->unknown_pt,
		       (unsigned long long)k->streams_full);
	printf("krecv: packets=%llu frames=%llu incomplete=%llu bad=%llu decoded=%llu "
	       "decode_failed=%llu mpps=%.4f fps=%.1f\n",
	       (unsigned long long)k->packets, (unsigned long long)k->frames_total,
	       (unsigned long long)incomplete, (unsigned long long)bad, (unsigned long long)decoded,
	       (unsigned long long)failed, elapsed > 0 ? (double)k->packets / elapsed / 1e6 : 0.0,
	       elapsed > 0 ? (double)k->frames_total / elapsed : 0.0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"addr", required_argument, NULL, 'a'},   {"port", required_argument, NULL, 'p'},
		{"frames", required_argument, NULL, 'n'}, {"seconds", required_argument, NULL, 't'},
		{"decode", no_argument, NULL, 'd'},       {"save", required_argument, NULL, 's'},
		{"raw", required_argument, NULL, 'r'},    {"max-frame", required_argument, NULL, 'm'},
		{"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct perf_krecv *k = calloc(1, sizeof *k);
	if (!k) {
		fprintf(stderr, "shoal-krecv: out of memory\n");
		return 1;
	}
	k->o = (struct perf_krecv_opts){.bind_addr = "127.0.0.1", .port = 5004, .seconds = 10,
					.max_frame_bytes = 4u << 20};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "a:p:n:t:ds:r:m:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': k->o.bind_addr = optarg; break;
		case 'p':
			k->o.port = (int)strtol(optarg, &end, 10);
			if (*end || k->o.port <= 0 || k->o.port > 65535) {
				fprintf(stderr, "shoal-krecv: --port: '%s' is not a port number\n", optarg);
				return 2;
			}
			break;
		case 'n':
			k->o.max_frames = strtol(optarg, &end, 10);
			if (*end || k->o.max_frames <= 0) {
				fprintf(stderr, "shoal-krecv: --frames: '%s' is not a positive count\n", optarg);
				return 2;
			}
			break;
		case 't':
			k->o.seconds = strtod(optarg, &end);
			if (*end || k->o.seconds < 0) {
				fprintf(stderr, "shoal-krecv: --seconds: '%s' is not a duration\n", optarg);
				return 2;
			}
			break;
		case 'd': k->o.decode = 1; break;
		case 's': k->o.save_dir = optarg; break;
		case 'r':
			if (perf_krecv_parse_raw(optarg, &k->o) < 0) {
				fprintf(stderr, "shoal-krecv: --raw: '%s' is not WxH:420|422|rgb[:PT 96-127]\n",
					optarg);
				return 2;
			}
			break;
		case 'm': {
			long v = strtol(optarg, &end, 10);
			if (*end || v < 65536 || v > (256L << 20)) {
				fprintf(stderr, "shoal-krecv: --max-frame: '%s' is not 65536..268435456\n",
					optarg);
				return 2;
			}
			k->o.max_frame_bytes = (size_t)v;
			break;
		}
		case 'v': k->o.verbose = 1; break;
		case 'h': perf_krecv_usage(stdout); return 0;
		default: perf_krecv_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shoal-krecv: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	int fd = perf_krecv_socket(k->o.bind_addr, k->o.port);
	if (fd < 0) {
		fprintf(stderr, "shoal-krecv: cannot bind %s:%d: %s\n", k->o.bind_addr, k->o.port,
			strerror(-fd));
		return 1;
	}
	k->tj = tjInitDecompress();
	k->pixels = malloc(k->o.max_frame_bytes);
	uint8_t *pkts = malloc((size_t)KRECV_BURST * KRECV_PKT_MAX);
	if (!k->tj || !k->pixels || !pkts) {
		fprintf(stderr, "shoal-krecv: out of memory\n");
		return 1;
	}
	struct mmsghdr msgs[KRECV_BURST];
	struct iovec iov[KRECV_BURST];
	for (int i = 0; i < KRECV_BURST; i++) {
		iov[i] = (struct iovec){.iov_base = pkts + (size_t)i * KRECV_PKT_MAX,
					.iov_len = KRECV_PKT_MAX};
		msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
	}
	signal(SIGINT, perf_krecv_on_signal);
	signal(SIGTERM, perf_krecv_on_signal);
	printf("shoal-krecv: listening on %s:%d\n", k->o.bind_addr, k->o.port);
	fflush(stdout);
	double start = perf_krecv_now(), first = 0, last = 0;
	while (!perf_krecv_stop) {
		if (k->o.seconds > 0 && perf_krecv_now() - start > k->o.seconds)
			break;
		if (k->o.max_frames && k->frames_total >= (uint64_t)k->o.max_frames)
			break;
		int n = recvmmsg(fd, msgs, KRECV_BURST, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		last = perf_krecv_now();
		if (first == 0)
			first = last;
		for (int i = 0; i < n; i++)
			perf_krecv_packet(k, iov[i].iov_base, msgs[i].msg_len);
	}
	perf_krecv_report(k, last - first);
	close(fd);
	tjDestroy(k->tj);
	for (int i = 0; i < KRECV_STREAMS; i++)
		free(k->streams[i].buf);
	free(k->pixels);
	free(pkts);
	free(k);
	return 0;
}
