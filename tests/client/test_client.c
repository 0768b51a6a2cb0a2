/* Tests of the client library and shoal-client against a UDP peer on 127.0.0.1 that plays
 * the server: it reassembles the RTP/JPEG it receives with shoal's own codec, decodes every
 * frame with libjpeg-turbo (raw RFC 4175 frames: dp_raw_parse + dp_raw_frame_copy into I420
 * at the size of the latest REGISTER's res[0], as the server does), answers REGISTER with
 * ASSIGN and frames with RESULT or DROP. It can emulate a slow uplink: a frame of B bytes
 * reaches it B*8/rate after the link is free (frames queue behind each other) and is
 * answered PEER_PROC_US later. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "client/cl.h"
#include "dataplane/dp_proto.h"
#include "tests/harness.h"

#define VTEST "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
#define PEER_MAX_FRAMES 256
#define PEER_BUF (DP_JPEG_HEADERS_MAX + (2u << 20))
#define PEER_Q 512          /* answers held back by the emulated link */
#define PEER_PROC_US 2000   /* emulated server time, reported in server_us */

enum peer_answer { PEER_MIX, PEER_ALL_RESULTS };

struct peer_frame {
	uint32_t ts;
	uint16_t w, h;     /* from the decoded JPEG */
	uint16_t wire_w, wire_h; /* from the RFC 2435 header */
	unsigned pkts;
	uint32_t jpeg_bytes;
	uint32_t wire_bytes; /* UDP payload of its packets */
	int decoded;       /* JPEG decoded; raw: every byte of the frame placed */
	/* raw */
	uint8_t raw, pt;
	uint64_t hash;     /* FNV-1a of the reassembled I420 */
	uint64_t first_ns, last_ns; /* kernel receive times of its first and last packet */
};

#define PEER_MAX_REGS 64
struct peer_reg { /* a REGISTER as received */
	uint64_t ns;  /* kernel receive time */
	uint8_t formats;
	uint16_t w, h; /* res[0] */
};

struct peer {
	int rtp_fd, rtcp_fd;
	uint16_t port;
	atomic_int stop;
	pthread_t thread;
	/* behaviour */
	enum peer_answer answer;
	uint8_t served;
	uint16_t assign_w, assign_h, variant;
	uint32_t target;
	unsigned ignore_registers; /* REGISTERs left unanswered at first */
	unsigned rate_kbps;        /* emulated uplink rate (0: answer at once) */
	unsigned rate2_kbps;       /* the rate from frame rate2_after on (when rate2_after) */
	unsigned rate2_after;
	unsigned assign2_after;    /* after this many frames (when set) ASSIGN assign2_w x h */
	uint16_t assign2_w, assign2_h;
	unsigned payload;          /* the client's --payload, for the packet checks */
	/* what it saw */
	unsigned registers, reports, byes, bad, incomplete;
	struct dp_app_register reg;
	unsigned n_regs;
	struct peer_reg regs[PEER_MAX_REGS];
	uint32_t reg_ssrc, bye_ssrc;
	/* raw packets: the extended sequence number not one more than the previous, larger
	 * than payload, or not the last of their frame yet with room for another pgroup */
	unsigned seq_errors, oversize, underfilled, raw_bad;
	uint32_t ext_seq;
	int have_seq;
	struct dp_app_report report;
	unsigned n_report_bw;
	uint32_t report_bw[64];   /* bw_kbps of the REPORTs, in order */
	uint16_t rtp_src_port;
	unsigned n_frames;
	struct peer_frame frames[PEER_MAX_FRAMES];
	/* reassembly of the current frame */
	struct dp_jpeg_frame jf;
	uint8_t *buf, *rgb;
	int active, raw, halted;
	uint16_t raw_w, raw_h;
	size_t raw_size, raw_placed;
	uint8_t cur_pt;
	uint8_t rx[2][4096]; /* datagrams being read: RTCP, RTP */
	uint32_t cur_ts;
	unsigned cur_pkts, cur_bytes;
	uint64_t cur_first_ns, cur_last_ns;
	tjhandle tj;
	/* the emulated link and the answers it holds back */
	uint64_t link_free_ns;
	struct {
		uint64_t due_ns, done_ns;
		struct dp_app_msg m;
		struct sockaddr_in to;
	} q[PEER_Q];
	unsigned q_head, q_n;
};

/* The peer's clock: the one of the kernel's receive times (SO_TIMESTAMPNS), so a frame's
 * arrival on the emulated link does not depend on when the peer thread got to read it. */
/* REGISTER lists 128x128, 640x640 and the 320x240 source among its resolutions from `from`. */
static int reg_lists_ladder(const struct dp_app_register *r, unsigned from)
{
	int have128 = 0, have640 = 0, have320x240 = 0;
	for (unsigned i = from; i < r->n_res; i++) {
		have128 |= r->res[i].width == 128 && r->res[i].height == 128;
		have640 |= r->res[i].width == 640 && r->res[i].height == 640;
		have320x240 |= r->res[i].width == 320 && r->res[i].height == 240;
	}
	return have128 && have640 && have320x240;
}

static uint64_t peer_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void peer_send_app(struct peer *p, const struct sockaddr_in *to, const struct dp_app_msg *m)
{
	uint8_t buf[512];
	ssize_t n = dp_app_build(buf, sizeof(buf), m);
	if (n > 0)
		sendto(p->rtcp_fd, buf, (size_t)n, 0, (const struct sockaddr *)to, sizeof(*to));
	else
		p->bad++;
}

static void peer_send_assign(struct peer *p, uint32_t ssrc, uint16_t fps_x100,
			     const struct sockaddr_in *to)
{
	struct dp_app_msg a;
	memset(&a, 0, sizeof(a));
	a.kind = DP_APP_ASSIGN;
	a.ssrc = ssrc;
	a.u.assign.epoch = 1;
	memcpy(a.u.assign.family, "nanodet", 7);
	a.u.assign.variant = p->variant;
	a.u.assign.width = p->assign_w;
	a.u.assign.height = p->assign_h;
	a.u.assign.fps_x100 = fps_x100;
	a.u.assign.target_bytes = p->target;
	a.u.assign.format = DP_APP_FMT_JPEG;
	a.u.assign.served = p->served;
	a.u.assign.reason = p->served ? 0 : DP_APP_DROP_NOT_SERVED;
	peer_send_app(p, to, &a);
}

static void peer_on_rtcp(struct peer *p, const uint8_t *buf, size_t len,
			 const struct sockaddr_in *from, uint64_t now)
{
	size_t off = 0;
	struct dp_rtcp_pkt pk;
	int rc;
	while ((rc = dp_rtcp_next(buf, len, &off, &pk)) == 1) {
		if (pk.pt == DP_RTCP_PT_BYE) {
			struct dp_rtcp_bye b;
			if (dp_rtcp_bye_parse(&pk, &b) == 0 && b.n_ssrc == 1) {
				p->byes++;
				p->bye_ssrc = b.ssrc[0];
			} else {
				p->bad++;
			}
			continue;
		}
		struct dp_app_msg m;
		if (dp_app_parse(&pk, &m) != 0) {
			p->bad++;
			continue;
		}
		if (m.kind == DP_APP_REGISTER) {
			if (p->n_regs < PEER_MAX_REGS)
				p->regs[p->n_regs++] = (struct peer_reg){
					.ns = now, .formats = m.u.reg.formats,
					.w = m.u.reg.n_res ? m.u.reg.res[0].width : 0,
					.h = m.u.reg.n_res ? m.u.reg.res[0].height : 0};
			if (p->registers++ < p->ignore_registers)
				continue; /* not up yet */
			p->reg = m.u.reg;
			p->reg_ssrc = m.ssrc;
			peer_send_assign(p, m.ssrc, m.u.reg.fps_x100, from);
		} else if (m.kind == DP_APP_REPORT) {
			p->reports++;
			p->report = m.u.report;
			if (p->n_report_bw < 64)
				p->report_bw[p->n_report_bw++] = m.u.report.bw_kbps;
		} else {
			p->bad++;
		}
	}
	if (rc < 0)
		p->bad++;
}

/* Frame i (in arrival order) of PEER_MIX: 0 RESULT, 1 DROP overload, 2 RESULT, 3 nothing. */
static void peer_answer(struct peer *p, unsigned i, uint32_t ts, uint32_t ssrc,
			const struct sockaddr_in *rtp_from)
{
	struct sockaddr_in to = *rtp_from;
	to.sin_port = htons((uint16_t)(ntohs(rtp_from->sin_port) + 1));
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.ssrc = ssrc;
	unsigned k = p->answer == PEER_MIX ? i % 4 : 0;
	if (k == 0 || k == 2) {
		m.kind = DP_APP_RESULT;
		m.u.result.rtp_ts = ts;
		m.u.result.variant = p->variant;
		/* time since the frame was whole (the decode above) */
		m.u.result.server_us = (uint32_t)((peer_now() - p->cur_last_ns) / 1000);
		m.u.result.n_det = 2;
		m.u.result.det[0] = (struct dp_app_det){.cls = 0, .score = 60000, .x = 10, .y = 20,
							.w = 30, .h = 40};
		m.u.result.det[1] = (struct dp_app_det){.cls = 2, .score = 40000, .x = 1, .y = 2,
							.w = 3, .h = 4};
	} else if (k == 1) {
		m.kind = DP_APP_DROP;
		m.u.drop.rtp_ts = ts;
		m.u.drop.reason = DP_APP_DROP_OVERLOAD;
	} else {
		return;
	}
	unsigned rate = p->rate2_after && i >= p->rate2_after ? p->rate2_kbps : p->rate_kbps;
	if (rate && p->q_n < PEER_Q) { /* through the emulated link */
		uint64_t start = p->cur_first_ns > p->link_free_ns ? p->cur_first_ns : p->link_free_ns;
		uint64_t done = start + (uint64_t)p->cur_bytes * 8000000ull / rate;
		p->link_free_ns = done;
		unsigned j = (p->q_head + p->q_n++) % PEER_Q;
		p->q[j].done_ns = done;
		p->q[j].due_ns = done + PEER_PROC_US * 1000ull;
		p->q[j].m = m;
		p->q[j].to = to;
		return;
	}
	peer_send_app(p, &to, &m);
}

/* Sends the held-back answers that are due; returns ms until the next (20 when none). */
static int peer_flush(struct peer *p)
{
	while (p->q_n) {
		uint64_t now = peer_now();
		unsigned k = p->q_head;
		if (p->q[k].due_ns > now)
			return (int)((p->q[k].due_ns - now) / 1000000) + 1 < 20
				       ? (int)((p->q[k].due_ns - now) / 1000000) + 1
				       : 20;
		if (p->q[k].m.kind == DP_APP_RESULT)
			p->q[k].m.u.result.server_us = (uint32_t)((now - p->q[k].done_ns) / 1000);
		peer_send_app(p, &p->q[k].to, &p->q[k].m);
		p->q_head = (k + 1) % PEER_Q;
		p->q_n--;
	}
	return 20;
}

static uint64_t fnv1a(const uint8_t *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void peer_finish_frame(struct peer *p, uint32_t ssrc, const struct sockaddr_in *from)
{
	p->active = 0;
	if (p->n_frames >= PEER_MAX_FRAMES)
		return;
	struct peer_frame *f = &p->frames[p->n_frames];
	*f = (struct peer_frame){.ts = p->cur_ts, .pkts = p->cur_pkts, .wire_bytes = p->cur_bytes,
				 .raw = (uint8_t)p->raw, .pt = p->cur_pt,
				 .first_ns = p->cur_first_ns, .last_ns = p->cur_last_ns};
	if (p->raw) {
		f->w = f->wire_w = p->raw_w;
		f->h = f->wire_h = p->raw_h;
		if (!p->raw_size || p->raw_placed != p->raw_size) {
			p->incomplete++;
			return;
		}
		f->hash = fnv1a(p->buf, p->raw_size);
		f->decoded = 1;
	} else {
		f->wire_w = p->jf.width;
		f->wire_h = p->jf.height;
		const uint8_t *jpg;
		size_t len;
		if (dp_jpeg_frame_finish(&p->jf, &jpg, &len) != 0) {
			p->incomplete++;
			return;
		}
		f->jpeg_bytes = (uint32_t)len;
		int w, h, sub, cs;
		if (tjDecompressHeader3(p->tj, jpg, len, &w, &h, &sub, &cs) == 0 &&
		    sub == TJSAMP_420 && w <= 1024 && h <= 1024 &&
		    tjDecompress2(p->tj, jpg, len, p->rgb, w, 0, h, TJPF_RGB, 0) == 0) {
			f->w = (uint16_t)w;
			f->h = (uint16_t)h;
			f->decoded = 1;
		}
	}
	peer_answer(p, p->n_frames, p->cur_ts, ssrc, from);
	p->n_frames++;
	if (p->assign2_after && p->n_frames == p->assign2_after) {
		/* a new assignment from here on, sent at once */
		p->assign_w = p->assign2_w;
		p->assign_h = p->assign2_h;
		struct sockaddr_in to = *from;
		to.sin_port = htons((uint16_t)(ntohs(from->sin_port) + 1));
		peer_send_assign(p, ssrc, p->reg.fps_x100, &to);
	}
}

static void peer_read(struct peer *p, int k);

/* Starts a frame at the packet received at now. Raw: sized from res[0] of the latest
 * REGISTER received before it (the RTCP socket is read first: a REGISTER sent right before
 * this packet may still wait there), as the server does. */
static void peer_frame_start(struct peer *p, const struct dp_rtp_hdr *rh, int raw, uint64_t now)
{
	p->active = 1;
	p->raw = raw;
	p->cur_ts = rh->timestamp;
	p->cur_pt = rh->payload_type;
	p->cur_pkts = 0;
	p->cur_bytes = 0;
	p->cur_first_ns = now;
	if (!raw) {
		dp_jpeg_frame_init(&p->jf, p->buf, PEER_BUF);
		return;
	}
	peer_read(p, 0);
	p->raw_w = p->raw_h = 0;
	for (unsigned i = p->n_regs; i-- > 0;) {
		if (p->regs[i].ns <= now && (p->regs[i].formats & DP_APP_FMT_RAW420)) {
			p->raw_w = p->regs[i].w;
			p->raw_h = p->regs[i].h;
			break;
		}
	}
	ssize_t sz = dp_raw_frame_size(DP_RAW_SAMPLING_YCBCR420, p->raw_w, p->raw_h);
	p->raw_size = sz > 0 && (size_t)sz <= PEER_BUF ? (size_t)sz : 0;
	p->raw_placed = 0;
}

static void peer_on_rtp(struct peer *p, const uint8_t *buf, size_t len,
			const struct sockaddr_in *from, uint64_t now)
{
	struct dp_rtp_hdr rh;
	struct dp_jpeg_hdr jh;
	struct dp_raw_hdr xh;
	if (dp_rtp_parse(buf, len, &rh) != 0) {
		p->bad++;
		return;
	}
	int raw = rh.payload_type >= 96 && rh.payload_type <= 127;
	if (raw ? dp_raw_parse(rh.payload, rh.payload_len, &xh) != 0
		: rh.payload_type != DP_RTP_PT_JPEG ||
			  dp_jpeg_parse(rh.payload, rh.payload_len, &jh) != 0) {
		p->bad++;
		return;
	}
	p->rtp_src_port = ntohs(from->sin_port);
	if (raw) {
		uint32_t es = (uint32_t)xh.ext_seq << 16 | rh.seq;
		p->seq_errors += p->have_seq && es != p->ext_seq + 1;
		p->ext_seq = es;
		p->have_seq = 1;
		p->oversize += p->payload && len > p->payload;
		p->underfilled += p->payload && !rh.marker && len + 12 <= p->payload &&
				  xh.n_lines < DP_RAW_MAX_LINES;
	}
	if (p->active && rh.timestamp != p->cur_ts) {
		p->incomplete++; /* a frame that never got its marker packet */
		p->active = 0;
	}
	if (!p->active)
		peer_frame_start(p, &rh, raw, now);
	p->cur_pkts++;
	p->cur_bytes += (unsigned)len;
	p->cur_last_ns = now;
	if (raw) {
		ssize_t k = p->raw_size ? dp_raw_frame_copy(&xh, DP_RAW_SAMPLING_YCBCR420, p->raw_w,
							   p->raw_h, p->buf, p->raw_size)
					: -1;
		if (k < 0) {
			p->raw_bad++;
			p->bad++;
			return;
		}
		p->raw_placed += (size_t)k;
	} else if (dp_jpeg_frame_add(&p->jf, &jh, rh.marker) != 0) {
		p->bad++;
		return;
	}
	if (rh.marker)
		peer_finish_frame(p, rh.ssrc, from);
}

/* Reads every datagram waiting on the RTCP (k 0) or the RTP (k 1) socket, each at its kernel
 * receive time. */
static void peer_read(struct peer *p, int k)
{
	int fd = k ? p->rtp_fd : p->rtcp_fd;
	uint8_t *buf = p->rx[k];
	for (;;) {
		struct sockaddr_in from;
		struct iovec iov = {buf, sizeof(p->rx[k])};
		union {
			char b[CMSG_SPACE(sizeof(struct timespec))];
			struct cmsghdr align;
		} cb;
		struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = cb.b,
				    .msg_controllen = sizeof(cb.b)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			break;
		uint64_t t = peer_now();
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		}
		if (k == 1)
			peer_on_rtp(p, buf, (size_t)n, &from, t);
		else
			peer_on_rtcp(p, buf, (size_t)n, &from, t);
	}
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	while (!atomic_load(&p->stop)) {
		/* RTCP first: REGISTER is answered at once, as a prompt server would */
		struct pollfd pf[2] = {{.fd = p->rtcp_fd, .events = POLLIN},
				       {.fd = p->rtp_fd, .events = POLLIN}};
		if (poll(pf, 2, peer_flush(p)) <= 0)
			continue;
		peer_read(p, 0);
		peer_read(p, 1);
	}
	return NULL;
}

static int peer_start(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->buf = malloc(PEER_BUF);
	p->rgb = malloc(1024 * 1024 * 3);
	p->tj = tjInitDecompress();
	if (!p->buf || !p->rgb || !p->tj)
		return -1;
	p->served = 1;
	p->payload = 1200;
	p->assign_w = p->assign_h = p->variant = 256;
	for (int attempt = 0; attempt < 64; attempt++) {
		p->rtp_fd = socket(AF_INET, SOCK_DGRAM, 0);
		p->rtcp_fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof(a);
		if (bind(p->rtp_fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(p->rtp_fd, (struct sockaddr *)&a, &al) == 0 &&
		    !(ntohs(a.sin_port) & 1) && ntohs(a.sin_port) < 65534) {
			p->port = ntohs(a.sin_port);
			a.sin_port = htons((uint16_t)(p->port + 1));
			if (bind(p->rtcp_fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
				int sz = 8 << 20, on = 1;
				if (setsockopt(p->rtp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
					setsockopt(p->rtp_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
				setsockopt(p->rtp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
				setsockopt(p->rtcp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
				return 0;
			}
		}
		close(p->rtp_fd);
		close(p->rtcp_fd);
	}
	return -1;
}

static int peer_run(struct peer *p)
{
	return pthread_create(&p->thread, NULL, peer_main, p) == 0 ? 0 : -1;
}

/* Stops the peer thread, then reads what is still queued: the client's last datagrams (its
 * final REPORT, BYE) were in the sockets when it returned, but the thread may have stopped
 * before reading them. What it saw (its frame buffer included) stays readable. */
static void peer_halt(struct peer *p)
{
	if (p->halted)
		return;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	peer_read(p, 0);
	peer_read(p, 1);
	p->halted = 1;
}

static void peer_stop(struct peer *p)
{
	peer_halt(p);
	close(p->rtp_fd);
	close(p->rtcp_fd);
	free(p->buf);
	free(p->rgb);
	tjDestroy(p->tj);
}

/* Runs the library with the given extra options against the peer. */
static int run_client(struct peer *p, const char *csv, const char *const *extra, size_t n_extra,
		      struct cl_stats *st, char *summary, size_t cap)
{
	char server[32];
	snprintf(server, sizeof(server), "127.0.0.1:%u", p->port);
	const char *argv[32] = {"shoal-client", "--server", server};
	int argc = 3;
	if (csv) {
		argv[argc++] = "--csv";
		argv[argc++] = csv;
	}
	for (size_t i = 0; i < n_extra && argc < 31; i++)
		argv[argc++] = extra[i];
	struct cl_opts o;
	char err[256];
	if (cl_opts_parse(&o, argc, (char **)argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "options: %s\n", err);
		return -1;
	}
	if (peer_run(p))
		return -1;
	struct cl_client *c = cl_client_create(&o);
	if (!c)
		return -1;
	int rc = cl_client_run(c, NULL);
	cl_client_stats(c, st);
	cl_stats_format(st, summary, cap);
	cl_client_destroy(c);
	return rc;
}

static int read_lines(const char *path, char lines[][160], int max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0;
	while (n < max && fgets(lines[n], 160, f))
		lines[n][strcspn(lines[n], "\n")] = '\0', n++;
	fclose(f);
	return n;
}

/* CSV row -> its 12 comma-separated fields (empty ones included). */
static int split_csv(char *line, char *fields[12])
{
	int n = 0;
	char *s = line;
	while (n < 12) {
		fields[n++] = s;
		char *c = strchr(s, ',');
		if (!c)
			break;
		*c = '\0';
		s = c + 1;
	}
	return n;
}

static int test_register_assign_resize_and_answers_in_csv(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_MIX;
	char csv[] = "/tmp/shoal-client-csv-XXXXXX";
	int fd = mkstemp(csv);
	ST_CHECK(fd >= 0);
	close(fd);
	const char *extra[] = {"--synthetic", "--fps", "50", "--frames", "24", "--ssrc",
			       "c0ffee01", "--slo-ms", "500"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, csv, extra, sizeof(extra) / sizeof(extra[0]), &st, line,
			    sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	/* REGISTER: our SSRC and ports, JPEG, the variants' squares and the sizes we send */
	ST_CHECK(p.registers >= 1);
	ST_CHECK_EQ(p.reg_ssrc, 0xc0ffee01);
	ST_CHECK_EQ(p.reg.media_port, st.local_port);
	ST_CHECK_EQ(p.rtp_src_port, st.local_port);
	ST_CHECK_EQ(p.reg.formats, DP_APP_FMT_JPEG);
	ST_CHECK_EQ(p.reg.slo_ms, 500);
	ST_CHECK_EQ(p.reg.fps_x100, 5000);
	ST_CHECK(reg_lists_ladder(&p.reg, 0));
	/* every frame arrived whole, decodes, and follows ASSIGN once it came */
	ST_CHECK_EQ(p.incomplete, 0);
	ST_CHECK_EQ(p.bad, 0);
	ST_CHECK_EQ(p.n_frames, 24);
	unsigned first_assigned = 24;
	for (unsigned i = 0; i < p.n_frames; i++) {
		const struct peer_frame *f = &p.frames[i];
		ST_CHECK(f->decoded);
		ST_CHECK_EQ(f->w, f->wire_w);
		ST_CHECK_EQ(f->h, f->wire_h);
		if (i) /* 90 kHz at 50 fps; a sender that fell behind skips whole slots */
			ST_CHECK_EQ((f->ts - p.frames[i - 1].ts) % 1800, 0);
		if (f->w == 256 && f->h == 256 && first_assigned == 24)
			first_assigned = i;
		if (i < first_assigned) {
			ST_CHECK_EQ(f->w, 320);
			ST_CHECK_EQ(f->h, 240);
		} else {
			ST_CHECK_EQ(f->w, 256);
			ST_CHECK_EQ(f->h, 256);
		}
	}
	ST_CHECK_EQ(p.frames[23].ts - p.frames[0].ts, (23 + st.skipped) * 1800);
	ST_CHECK(first_assigned < 24); /* the ASSIGN took effect */
	/* accounting: 0 and 2 mod 4 answered with RESULT, 1 with DROP, 3 never */
	ST_CHECK_EQ(st.sent, 24);
	ST_CHECK_EQ(st.results, 12);
	ST_CHECK_EQ(st.drops, 6);
	ST_CHECK_EQ(st.lost, 6);
	ST_CHECK_EQ(st.drop_reasons[DP_APP_DROP_OVERLOAD], 6);
	ST_CHECK_EQ(st.assigns, p.registers);
	ST_CHECK_EQ(st.served, 1);
	ST_CHECK_EQ(st.n_variants, 1);
	ST_CHECK_EQ(st.variants[0].variant, 256);
	ST_CHECK_EQ(st.variants[0].results, 12);
	ST_CHECK(st.miss >= 0.5 - 1e-9); /* 12 of 24 never got a RESULT */
	ST_CHECK(st.p50_ms <= st.p99_ms);
	ST_CHECK(strstr(line, "client: ssrc=0xc0ffee01 sent=24 results=12 drops=6 lost=6 miss=") ==
		 line);
	ST_CHECK(strstr(line, " variants=256:12 bw_kbps=") != NULL);
	char sizes[64];
	snprintf(sizes, sizeof(sizes), " sizes=320x240:%u,256:%u", first_assigned,
		 24 - first_assigned);
	ST_CHECK(strstr(line, first_assigned ? sizes : " sizes=256:24") != NULL);
	/* the last REPORT and BYE */
	ST_CHECK(p.reports >= 1);
	ST_CHECK_EQ(p.report.frames_sent, 24);
	ST_CHECK_EQ(p.report.results_rcvd, 12);
	ST_CHECK(p.report.rtt_us > 0 && p.report.bw_kbps > 0); /* estimated from the RESULTs */
	ST_CHECK_EQ(p.byes, 1);
	ST_CHECK_EQ(p.bye_ssrc, 0xc0ffee01);
	/* the CSV: a header and one row per frame in order */
	static char lines[64][160];
	int n = read_lines(csv, lines, 64);
	unlink(csv);
	ST_CHECK_EQ(n, 25);
	ST_CHECK(strcmp(lines[0], "frame,rtp_ts,send_ms,status,reason,latency_ms,variant,n_det,"
				  "width,height,bytes,bw_kbps") == 0);
	double prev_ms = -1;
	for (int i = 1; i < n; i++) {
		char *f[12];
		ST_CHECK_EQ(split_csv(lines[i], f), 12);
		const struct peer_frame *pf = &p.frames[i - 1];
		ST_CHECK_EQ(strtoul(f[0], NULL, 10), (unsigned long)(i - 1));
		ST_CHECK_EQ(strtoul(f[1], NULL, 10), pf->ts);
		double send_ms = strtod(f[2], NULL);
		ST_CHECK(send_ms > prev_ms);
		prev_ms = send_ms;
		ST_CHECK_EQ(strtoul(f[8], NULL, 10), pf->w);
		ST_CHECK_EQ(strtoul(f[9], NULL, 10), pf->h);
		ST_CHECK(strtoul(f[10], NULL, 10) > 0);
		if (i > 12) /* the estimate once RESULTs came back */
			ST_CHECK(strtoul(f[11], NULL, 10) > 0);
		switch ((i - 1) % 4) {
		case 0:
		case 2:
			ST_CHECK(strcmp(f[3], "result") == 0 && strcmp(f[4], "") == 0);
			ST_CHECK(strtod(f[5], NULL) > 0);
			ST_CHECK(strcmp(f[6], "256") == 0 && strcmp(f[7], "2") == 0);
			break;
		case 1:
			ST_CHECK(strcmp(f[3], "drop") == 0 && strcmp(f[4], "overload") == 0);
			ST_CHECK(strcmp(f[6], "") == 0);
			break;
		default:
			ST_CHECK(strcmp(f[3], "lost") == 0 && strcmp(f[5], "") == 0);
		}
	}
	return ST_PASS;
}

static int test_target_bytes_steers_jpeg_size(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.assign_w = p.assign_h = p.variant = 320;
	p.target = 6000;
	const char *extra[] = {"--synthetic", "--fps", "100", "--frames", "60", "--bw-kbps",
			       "12345"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 7, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	ST_CHECK_EQ(p.report.bw_kbps, 12345); /* the fixed value, not the estimate */
	ST_CHECK_EQ(p.n_frames, 60);
	ST_CHECK_EQ(st.results, 60);
	ST_CHECK_EQ(st.lost, 0);
	ST_CHECK_EQ(st.target_bytes, 6000);
	/* 320x320 at quality 75 is larger than 6000 bytes, at 20 smaller */
	ST_CHECK(st.quality < 75 && st.quality > 20);
	unsigned first = p.frames[0].jpeg_bytes, last = 0;
	for (unsigned i = 50; i < 60; i++) {
		ST_CHECK(p.frames[i].decoded);
		last += p.frames[i].jpeg_bytes;
	}
	last /= 10;
	printf("first %u bytes (320x240 q75), last ten %u bytes on average, quality %d\n", first,
	       last, st.quality);
	ST_CHECK(last > 6000 * 8 / 10 && last < 6000 * 12 / 10);
	return ST_PASS;
}

static int test_not_served_sends_smallest_resolution(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.served = 0;
	p.assign_w = p.assign_h = 0;
	const char *extra[] = {"--synthetic", "--fps", "50", "--frames", "20"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 5, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	ST_CHECK_EQ(st.served, 0);
	ST_CHECK_EQ(p.n_frames, 20);
	ST_CHECK(p.frames[0].w == 320 && p.frames[0].h == 240);
	ST_CHECK(p.frames[19].decoded);
	ST_CHECK(p.frames[19].w == 128 && p.frames[19].h == 128);
	return ST_PASS;
}

static int test_register_repeated_until_assign(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.ignore_registers = 1;
	const char *extra[] = {"--synthetic", "--fps", "10", "--duration", "3"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 5, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	ST_CHECK(p.registers >= 2); /* repeated after 2 s, answered the second time */
	ST_CHECK_EQ(st.assigns, p.registers - 1);
	ST_CHECK_EQ(st.served, 1);
	ST_CHECK(p.n_frames >= 25);
	ST_CHECK(p.frames[0].w == 320 && p.frames[0].h == 240);
	ST_CHECK(p.frames[p.n_frames - 1].w == 256 && p.frames[p.n_frames - 1].h == 256);
	ST_CHECK_EQ(st.results, p.n_frames);
	return ST_PASS;
}

/* The square sides of the squares the server's variants take. */
static int is_variant_square(unsigned w, unsigned h)
{
	return w == h && w >= CL_SQ_MIN && w <= CL_SQ_MAX && (w - CL_SQ_MIN) % CL_SQ_STEP == 0;
}

static int test_bw_estimate_median_and_square_fit(void)
{
	struct cl_bw b;
	memset(&b, 0, sizeof(b));
	cl_bw_add(&b, 0);
	cl_bw_add(&b, -5);
	ST_CHECK(b.kbps == 0 && b.n == 0); /* not samples */
	cl_bw_add(&b, 1000);
	ST_CHECK(fabs(b.kbps - 1000) < 1e-9); /* the first sample sets it */
	for (int i = 0; i < 20; i++)
		cl_bw_add(&b, i % 2 ? 900 : 1100);
	ST_CHECK(fabs(b.kbps - 1000) < 100);
	cl_bw_add(&b, 1e6); /* one outlier each way barely moves it */
	cl_bw_add(&b, 1);
	ST_CHECK(fabs(b.kbps - 1000) < 100);
	for (int i = 0; i < 20; i++) /* a lasting change moves it */
		cl_bw_add(&b, 4000);
	ST_CHECK(fabs(b.kbps - 4000) < 400);
	/* fits: bytes*8*fps <= 0.9*bw, 20 % more room to go up */
	ST_CHECK(cl_bw_fits(4500, 20, 800, 0));    /* 720 kbit/s of 800 */
	ST_CHECK(!cl_bw_fits(4600, 20, 800, 0));
	ST_CHECK(!cl_bw_fits(4500, 20, 800, 1));
	ST_CHECK(cl_bw_fits(3750, 20, 800, 1));
	/* 0.1 byte per pixel at 10 fps */
	/* 10000 kbit/s: 112500 bytes/frame, side <= 1060 */
	ST_CHECK_EQ(cl_square_fit(10000, 10, 0.1, 640, 640), 640);
	ST_CHECK_EQ(cl_square_fit(10000, 10, 0.1, 500, 640), 480); /* cap rounded to a step */
	ST_CHECK_EQ(cl_square_fit(1000, 10, 0.1, 640, 640), 320);  /* 11250 bytes: side <= 335 */
	/* 100 kbit/s: 1125 bytes, side <= 106: none fits, the smallest */
	ST_CHECK_EQ(cl_square_fit(100, 10, 0.1, 640, 640), 128);
	/* 400 kbit/s: 4500 bytes, side <= 212 -> 192; going up needs side <= 193 */
	ST_CHECK_EQ(cl_square_fit(400, 10, 0.1, 640, 640), 192);
	ST_CHECK_EQ(cl_square_fit(400, 10, 0.1, 640, 160), 192);
	ST_CHECK_EQ(cl_square_fit(380, 10, 0.1, 640, 640), 192); /* 4275 bytes: side <= 206 */
	ST_CHECK_EQ(cl_square_fit(380, 10, 0.1, 640, 160), 160); /* up needs side <= 188 */
	ST_CHECK_EQ(cl_square_fit(0, 10, 0.1, 320, 160), 320);   /* unknown: the cap */
	ST_CHECK_EQ(cl_square_fit(400, 10, 0, 320, 160), 320);
	return ST_PASS;
}

/* Frame sizes the peer saw -> the number of changes from one frame to the next. */
static unsigned size_changes(const struct peer *p)
{
	unsigned n = 0;
	for (unsigned i = 1; i < p->n_frames; i++)
		n += p->frames[i].w != p->frames[i - 1].w || p->frames[i].h != p->frames[i - 1].h;
	return n;
}

static int test_bw_estimate_converges_to_emulated_uplink(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.rate_kbps = 2000; /* 256x256 frames (~5 KB) at 20 fps need ~800 kbit/s: they fit */
	char csv[] = "/tmp/shoal-client-bw-XXXXXX";
	int fd = mkstemp(csv);
	ST_CHECK(fd >= 0);
	close(fd);
	const char *extra[] = {"--synthetic", "--fps", "20", "--frames", "60", "--slo-ms", "1000"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, csv, extra, 7, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\nREPORTed bw_kbps:", line);
	for (unsigned i = 0; i < p.n_report_bw; i++)
		printf(" %u", p.report_bw[i]);
	printf("\n");
	ST_CHECK_EQ(st.results, 60);
	/* near the emulated rate, from RESULT timings (loopback has no send backlog) */
	ST_CHECK(st.bw_result_kbps > 1000 && st.bw_result_kbps < 3000);
	ST_CHECK_EQ(st.bw_send_kbps, 0);
	ST_CHECK_EQ(st.bw_kbps, st.bw_result_kbps);
	ST_CHECK(p.n_report_bw >= 2);
	ST_CHECK(p.report.bw_kbps > 1000 && p.report.bw_kbps < 3000); /* the last REPORT */
	ST_CHECK(p.report.rtt_us > 0);
	ST_CHECK(strstr(line, " bw_kbps=") != NULL);
	/* the frames fit: ASSIGN's size throughout once it came, no back-off */
	ST_CHECK_EQ(st.backoffs, 0);
	ST_CHECK(p.frames[59].w == 256 && p.frames[59].h == 256);
	ST_CHECK(size_changes(&p) <= 1);
	/* the CSV's bw_kbps: the estimate each frame was sent with (0 before any RESULT) */
	static char lines[64][160];
	int n = read_lines(csv, lines, 64);
	unlink(csv);
	ST_CHECK_EQ(n, 61);
	ST_CHECK(strstr(lines[0], ",bytes,bw_kbps") != NULL);
	char *f[12];
	ST_CHECK_EQ(split_csv(lines[1], f), 12);
	ST_CHECK_EQ(strtoul(f[11], NULL, 10), 0);
	ST_CHECK_EQ(split_csv(lines[60], f), 12);
	unsigned long last = strtoul(f[11], NULL, 10);
	ST_CHECK(last > 1000 && last < 3000);
	return ST_PASS;
}

static int test_backs_off_below_assign_on_slow_uplink_and_comes_back(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	/* 384x384 (~10 KB) at 25 fps needs ~2 Mbit/s: 1000 kbit/s carries ~224x224, then
	 * 6000 kbit/s from the 60th frame carries 384x384 again */
	p.assign_w = p.assign_h = p.variant = 384;
	p.rate_kbps = 1000;
	p.rate2_kbps = 6000;
	p.rate2_after = 60;
	const char *extra[] = {"--synthetic", "--fps", "25", "--frames", "120", "--slo-ms",
			       "1000"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 7, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	for (unsigned i = 0; i < p.n_frames; i++)
		printf("%u%s", p.frames[i].w, i + 1 < p.n_frames ? " " : "\n");
	ST_CHECK_EQ(p.n_frames, 120);
	ST_CHECK_EQ(p.incomplete, 0);
	/* backed off below ASSIGN's size to squares of the variants while the link was slow */
	ST_CHECK(st.backoffs >= 1);
	for (unsigned i = 30; i < 60; i++) {
		const struct peer_frame *f = &p.frames[i];
		ST_CHECK(f->decoded);
		ST_CHECK(is_variant_square(f->w, f->h));
		ST_CHECK(f->w < 384);
		ST_CHECK(f->w >= 160 && f->w <= 288); /* near what 1000 kbit/s carries */
	}
	/* and came back up to ASSIGN's size (never above) once it was fast */
	for (unsigned i = 0; i < p.n_frames; i++)
		ST_CHECK(p.frames[i].w <= 384 && p.frames[i].h <= 384);
	for (unsigned i = 110; i < 120; i++)
		ST_CHECK(p.frames[i].w == 384 && p.frames[i].h == 384);
	ST_CHECK_EQ(st.bw_limited, 0);
	/* not from one frame to the next: a handful of changes in 120 frames */
	ST_CHECK(size_changes(&p) <= 10);
	ST_CHECK(strstr(line, " sizes=") != NULL && strstr(line, ",384:") != NULL);
	/* the last REPORT carries the fast link's rate */
	ST_CHECK(p.report.bw_kbps > 3000 && p.report.bw_kbps < 9000);
	return ST_PASS;
}

static int test_policy_bandwidth_picks_size_from_rate(void)
{
	/* a fixed rate: ASSIGN's 256x256 and target ignored, the largest square that carries */
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.target = 2000;
	const char *fixed[] = {"--synthetic", "--fps", "25", "--frames", "40",
			       "--policy-resolution", "bandwidth", "--bw-kbps", "2500"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, fixed, 9, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	ST_CHECK_EQ(p.n_frames, 40);
	const struct peer_frame *f = &p.frames[39];
	ST_CHECK(f->decoded && is_variant_square(f->w, f->h));
	ST_CHECK(f->w != 256 && f->w > 128 && f->w < 640);
	ST_CHECK_EQ(st.quality, 75); /* the target is not followed */
	for (unsigned i = 30; i < 40; i++) { /* settled, within the rate */
		ST_CHECK_EQ(p.frames[i].w, f->w);
		ST_CHECK(cl_bw_fits(p.frames[i].wire_bytes, 25, 2500, 0));
	}
	/* and it is the rule's answer at the bytes per pixel of the frame before */
	const struct peer_frame *e = &p.frames[38];
	ST_CHECK_EQ(cl_square_fit(2500, 25, (double)e->wire_bytes / (e->w * e->h), 640, e->w),
		    f->w);
	/* from the estimate: a fast link gets --max-size, a slow one less than ASSIGN's 256 */
	static struct peer q;
	ST_CHECK_EQ(peer_start(&q), 0);
	q.answer = PEER_ALL_RESULTS;
	q.rate_kbps = 50000;
	const char *fast[] = {"--synthetic", "--fps", "20", "--frames", "40", "--policy-resolution",
			      "bandwidth", "--max-size", "384"};
	rc = run_client(&q, NULL, fast, 9, &st, line, sizeof(line));
	peer_stop(&q);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	ST_CHECK(q.frames[39].w == 384 && q.frames[39].h == 384);
	ST_CHECK(strstr(line, ",384:") != NULL);
	ST_CHECK_EQ(peer_start(&q), 0);
	q.answer = PEER_ALL_RESULTS;
	q.rate_kbps = 600;
	const char *slow[] = {"--synthetic", "--fps", "20", "--frames", "40", "--slo-ms", "1000",
			      "--policy-resolution", "bandwidth"};
	rc = run_client(&q, NULL, slow, 9, &st, line, sizeof(line));
	peer_stop(&q);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	ST_CHECK(is_variant_square(q.frames[39].w, q.frames[39].h));
	ST_CHECK(q.frames[39].w < 256);
	ST_CHECK(st.bw_kbps > 300 && st.bw_kbps < 900);
	return ST_PASS;
}

/* The client's --synthetic source is cl_video_synthetic(640, 480) and frame i the i-th it
 * produced: the I420 the client sent as frame i is recomputed from a source of our own,
 * resized in order to the sizes the frames arrived at, and compared with what the peer
 * reassembled (hash of every frame; bytes of the last, still in the buffer of the halted
 * peer). Returns the frames that differ. */
static unsigned raw_frames_differ(const struct peer *p)
{
	struct cl_video *v = cl_video_synthetic(640, 480);
	uint8_t *i420 = malloc((size_t)1024 * 1024 * 3 / 2);
	unsigned bad = v && i420 ? 0 : p->n_frames + 1;
	for (unsigned i = 0; i < p->n_frames && !bad; i++) {
		const struct peer_frame *f = &p->frames[i];
		size_t n = (size_t)f->w * f->h * 3 / 2;
		if (!f->raw || f->w > 1024 || f->h > 1024 || cl_video_next(v, f->w, f->h, i420)) {
			bad++;
			continue;
		}
		if (fnv1a(i420, n) != f->hash) {
			printf("frame %u (%ux%u) differs from the source's\n", i, f->w, f->h);
			bad++;
		}
		if (i + 1 == p->n_frames && memcmp(i420, p->buf, n) != 0)
			bad++;
	}
	free(i420);
	cl_video_destroy(v);
	return bad;
}

static int test_raw_frames_arrive_byte_exact(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.payload = 1000;
	const char *extra[] = {"--synthetic", "--fps", "30", "--frames", "20", "--format", "raw",
			       "--raw-pt", "111", "--payload", "1000", "--ssrc", "5eed0001"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, sizeof(extra) / sizeof(extra[0]), &st, line,
			    sizeof(line));
	peer_halt(&p);
	unsigned differ = raw_frames_differ(&p);
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	/* REGISTER: raw 4:2:0 only, res[0] the size being sent, the usual sizes after it */
	ST_CHECK(p.n_regs >= 2);
	ST_CHECK_EQ(p.reg.formats, DP_APP_FMT_RAW420);
	ST_CHECK(p.regs[0].w == 320 && p.regs[0].h == 240); /* the starting size */
	ST_CHECK(p.reg.res[0].width == 256 && p.reg.res[0].height == 256); /* ASSIGN's */
	ST_CHECK(p.reg.n_res >= 18);
	for (unsigned i = 1; i < p.reg.n_res; i++)
		ST_CHECK(p.reg.res[i].width != 256 || p.reg.res[i].height != 256);
	ST_CHECK(reg_lists_ladder(&p.reg, 1));
	/* every frame whole, in packets of at most --payload filled with whole pgroups, the
	 * extended sequence number counting up by one, and answered */
	ST_CHECK_EQ(p.n_frames, 20);
	ST_CHECK_EQ(p.incomplete, 0);
	ST_CHECK_EQ(p.bad, 0);
	ST_CHECK_EQ(p.seq_errors, 0);
	ST_CHECK_EQ(p.oversize, 0);
	ST_CHECK_EQ(p.underfilled, 0);
	uint64_t wire = 0, pkts = 0;
	for (unsigned i = 0; i < p.n_frames; i++) {
		const struct peer_frame *f = &p.frames[i];
		ST_CHECK(f->raw && f->decoded);
		ST_CHECK_EQ(f->pt, 111);
		ST_CHECK((f->w == 320 && f->h == 240) || (f->w == 256 && f->h == 256));
		/* the pixels plus 12 + 2 + 6 bytes of headers per packet at least */
		ST_CHECK(f->wire_bytes >= (uint32_t)f->w * f->h * 3 / 2 + 20 * f->pkts);
		if (i)
			ST_CHECK_EQ((f->ts - p.frames[i - 1].ts) % 3000, 0);
		wire += f->wire_bytes;
		pkts += f->pkts;
	}
	ST_CHECK(p.frames[19].w == 256 && p.frames[19].h == 256);
	ST_CHECK_EQ(st.bytes, wire); /* the UDP payload bytes counted are the ones sent */
	ST_CHECK_EQ(st.pkts, pkts);
	ST_CHECK_EQ(st.results, 20);
	ST_CHECK_EQ(st.lost, 0);
	ST_CHECK_EQ(st.quality, 75); /* not steered */
	/* the pixels the client's source produced, byte for byte */
	ST_CHECK_EQ(differ, 0);
	return ST_PASS;
}

static int test_raw_register_announces_new_size_before_its_frames(void)
{
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.assign2_after = 10; /* ASSIGN 256x256 at REGISTER, 192x128 after the 10th frame */
	p.assign2_w = 192;
	p.assign2_h = 128;
	const char *extra[] = {"--synthetic", "--fps", "30", "--frames", "24", "--format", "raw"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 7, &st, line, sizeof(line));
	peer_halt(&p);
	unsigned differ = raw_frames_differ(&p);
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	for (unsigned i = 0; i < p.n_frames; i++)
		printf("%ux%u%s", p.frames[i].w, p.frames[i].h, i + 1 < p.n_frames ? " " : "\n");
	ST_CHECK_EQ(p.n_frames, 24);
	ST_CHECK_EQ(p.incomplete, 0);
	ST_CHECK_EQ(p.bad, 0);
	ST_CHECK_EQ(st.results, 24);
	/* every frame reassembled at the size of the REGISTER received last before it, and the
	 * first frame of each size has a REGISTER listing it first arrive between the previous
	 * frame's last packet and its own first */
	unsigned first256 = 24, first192 = 24, changes = 0;
	for (unsigned i = 0; i < p.n_frames; i++) {
		const struct peer_frame *f = &p.frames[i];
		ST_CHECK(f->raw && f->decoded && f->pt == 96);
		if (f->w == 256 && f->h == 256 && first256 == 24)
			first256 = i;
		if (f->w == 192 && f->h == 128 && first192 == 24)
			first192 = i;
		if (i && f->w == p.frames[i - 1].w && f->h == p.frames[i - 1].h)
			continue;
		changes++;
		int announced = 0;
		for (unsigned k = 0; k < p.n_regs; k++)
			announced |= p.regs[k].w == f->w && p.regs[k].h == f->h &&
				     p.regs[k].ns <= f->first_ns &&
				     (!i || p.regs[k].ns >= p.frames[i - 1].last_ns);
		ST_CHECK(announced);
	}
	ST_CHECK(first256 < first192);
	ST_CHECK(first192 >= 10 && first192 < 24); /* after the second ASSIGN */
	for (unsigned i = first192; i < p.n_frames; i++)
		ST_CHECK(p.frames[i].w == 192 && p.frames[i].h == 128);
	ST_CHECK_EQ(changes, first256 ? 3 : 2); /* 320x240 (before any ASSIGN), 256, 192x128 */
	ST_CHECK(p.reg.res[0].width == 192 && p.reg.res[0].height == 128);
	ST_CHECK_EQ(differ, 0);
	return ST_PASS;
}

/* The sizing rules with raw frames (1.5 bytes per pixel and the packets' headers): the bytes
 * per pixel come from what was sent, and ASSIGN's target (an encoded size) is not used. */
static int test_raw_resolution_from_raw_frame_bytes(void)
{
	/* policy bandwidth, 20000 kbit/s at 20 fps: 112500 bytes a frame carry 256x256 raw
	 * (~101 KB) but not 288x288 (~128 KB) nor 320x240 (~118 KB) */
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	const char *bw[] = {"--synthetic", "--fps", "20", "--frames", "30", "--format", "raw",
			    "--policy-resolution", "bandwidth", "--bw-kbps", "20000"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, bw, 11, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	ST_CHECK_EQ(p.n_frames, 30);
	ST_CHECK_EQ(p.incomplete, 0);
	ST_CHECK_EQ(p.bad, 0);
	ST_CHECK(p.frames[0].w == 320 && p.frames[0].h == 240);
	const struct peer_frame *a = &p.frames[0], *b = &p.frames[29];
	ST_CHECK(b->w == 256 && b->h == 256);
	for (unsigned i = 20; i < 30; i++) {
		ST_CHECK(p.frames[i].w == 256 && p.frames[i].decoded);
		ST_CHECK(cl_bw_fits(p.frames[i].wire_bytes, 20, 20000, 0));
	}
	/* bytes per pixel nearly the same at both sizes, and what the rule gives from either */
	double bpa = (double)a->wire_bytes / (a->w * a->h);
	double bpb = (double)b->wire_bytes / (b->w * b->h);
	printf("raw bytes per pixel: %.4f at 320x240, %.4f at 256x256\n", bpa, bpb);
	ST_CHECK(bpa > 1.5 && bpa < 1.6 && fabs(bpa - bpb) < 0.01);
	ST_CHECK_EQ(cl_square_fit(20000, 20, bpa, 640, 640), 256);
	ST_CHECK_EQ(cl_square_fit(20000, 20, bpb, 640, 256), 256);
	/* policy assign, ASSIGN 256x256 with a 2000-byte target, 12000 kbit/s: 67500 bytes a
	 * frame do not carry 256x256 raw; 192x192 (~57 KB) fits, 224x224 (~77 KB) not */
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.target = 2000;
	const char *as[] = {"--synthetic", "--fps", "20", "--frames", "30", "--format", "raw",
			    "--bw-kbps", "12000"};
	rc = run_client(&p, NULL, as, 9, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	printf("%s\n", line);
	ST_CHECK_EQ(p.n_frames, 30);
	ST_CHECK_EQ(p.incomplete, 0);
	ST_CHECK_EQ(p.bad, 0);
	ST_CHECK_EQ(st.target_bytes, 2000);
	ST_CHECK(st.bw_limited && st.backoffs >= 1);
	ST_CHECK_EQ(st.quality, 75);
	for (unsigned i = 20; i < 30; i++)
		ST_CHECK(p.frames[i].w == 192 && p.frames[i].h == 192 && p.frames[i].decoded);
	ST_CHECK(strstr(line, ",192:") != NULL);
	return ST_PASS;
}

/* mean and spread of a Y plane */
static double y_spread(const uint8_t *y, size_t n, double *mean)
{
	double s = 0, s2 = 0;
	for (size_t i = 0; i < n; i++) {
		s += y[i];
		s2 += (double)y[i] * y[i];
	}
	*mean = s / (double)n;
	return s2 / (double)n - *mean * *mean;
}

static int test_video_file_decodes_and_resizes(void)
{
	ST_SKIP_IF(access(VTEST, R_OK) != 0, VTEST " absent (opencv-doc, scripts/setup.sh)");
	struct cl_video *v = cl_video_open(VTEST, 0);
	ST_CHECK(v != NULL);
	unsigned w, h;
	cl_video_size(v, &w, &h);
	ST_CHECK_EQ(w, 768);
	ST_CHECK_EQ(h, 576);
	static uint8_t a[320 * 240 * 3 / 2], b[256 * 256 * 3 / 2], a2[320 * 240 * 3 / 2];
	ST_CHECK_EQ(cl_video_next(v, 320, 240, a), 0);
	ST_CHECK_EQ(cl_video_next(v, 256, 256, b), 0);
	for (int i = 0; i < 8; i++)
		ST_CHECK_EQ(cl_video_next(v, 320, 240, a2), 0);
	ST_CHECK_EQ(cl_video_frames(v), 10);
	ST_CHECK_EQ(cl_video_next(v, 321, 240, a2), -EINVAL);
	cl_video_destroy(v);
	double ma, mb;
	ST_CHECK(y_spread(a, 320 * 240, &ma) > 100); /* a real street scene, not a flat fill */
	ST_CHECK(y_spread(b, 256 * 256, &mb) > 100);
	ST_CHECK(ma > 40 && ma < 220 && mb > 40 && mb < 220);
	ST_CHECK(fabs(ma - mb) < 10); /* same picture at another size */
	ST_CHECK(memcmp(a, a2, sizeof(a)) != 0); /* people walk */
	/* and through the whole client */
	static struct peer p;
	ST_CHECK_EQ(peer_start(&p), 0);
	p.answer = PEER_ALL_RESULTS;
	p.assign_w = 416;
	p.assign_h = 320;
	p.variant = 416;
	const char *extra[] = {"--video", VTEST, "--fps", "50", "--frames", "10"};
	struct cl_stats st;
	char line[512];
	int rc = run_client(&p, NULL, extra, 6, &st, line, sizeof(line));
	peer_stop(&p);
	ST_CHECK_EQ(rc, 0);
	ST_CHECK_EQ(p.n_frames, 10);
	ST_CHECK_EQ(st.results, 10);
	ST_CHECK(p.frames[9].decoded && p.frames[9].w == 416 && p.frames[9].h == 320);
	ST_CHECK(strstr(line, "variants=416:10") != NULL);
	return ST_PASS;
}

/* Runs a command line through /bin/sh; returns its exit status, stdout/stderr in files. */
static int sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

static int count_lines(const char *path, char *first, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0;
	char buf[1024];
	while (fgets(buf, sizeof(buf), f)) {
		if (!n && first) {
			size_t k = strlen(buf) < cap - 1 ? strlen(buf) : cap - 1;
			memcpy(first, buf, k);
			first[k] = '\0';
		}
		n++;
	}
	fclose(f);
	return n;
}

static int test_video_loop_rewinds_at_end(void)
{
	ST_SKIP_IF(sh("command -v ffmpeg >/dev/null") != 0, "ffmpeg absent");
	char path[] = "/tmp/shoal-client-loop-XXXXXX.avi";
	int fd = mkstemps(path, 4);
	ST_CHECK(fd >= 0);
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "ffmpeg -loglevel error -y -f lavfi -i testsrc=size=160x120:rate=10 -frames:v 5 "
		 "-c:v mjpeg %s",
		 path);
	ST_CHECK_EQ(sh(cmd), 0);
	static uint8_t y[64 * 48 * 3 / 2];
	struct cl_video *v = cl_video_open(path, 0);
	ST_CHECK(v != NULL);
	for (int i = 0; i < 5; i++)
		ST_CHECK_EQ(cl_video_next(v, 64, 48, y), 0);
	ST_CHECK_EQ(cl_video_next(v, 64, 48, y), -ENODATA);
	cl_video_destroy(v);
	v = cl_video_open(path, 1);
	ST_CHECK(v != NULL);
	for (int i = 0; i < 12; i++)
		ST_CHECK_EQ(cl_video_next(v, 64, 48, y), 0);
	ST_CHECK_EQ(cl_video_frames(v), 12);
	cl_video_destroy(v);
	unlink(path);
	ST_CHECK(cl_video_open("/nonexistent/video.avi", 0) == NULL);
	return ST_PASS;
}

static int test_options_parse_and_refuse(void)
{
	struct cl_opts o;
	char err[256];
	const char *good[] = {"x", "--server", "10.0.0.1:5004", "--synthetic", "--fps", "15",
			      "--width", "640", "--height", "480", "--payload", "1400", "--ssrc",
			      "0xdeadbeef", "--bw-kbps", "20000", "--local-port", "6000",
			      "--duration", "2.5", "--progress"};
	ST_CHECK_EQ(cl_opts_parse(&o, 21, (char **)good, err, sizeof(err)), 0);
	ST_CHECK(o.policy == CL_POLICY_ASSIGN && o.max_size == 640);
	ST_CHECK(o.synthetic && o.fps == 15 && o.width == 640 && o.height == 480);
	ST_CHECK(o.payload == 1400 && o.have_ssrc && o.ssrc == 0xdeadbeef && o.bw_kbps == 20000);
	ST_CHECK(o.local_port == 6000 && o.duration_s == 2.5 && o.progress && o.slo_ms == 100);
	const char *pol[] = {"x", "--server", "10.0.0.1:5004", "--synthetic",
			     "--policy-resolution", "bandwidth", "--max-size", "384"};
	ST_CHECK_EQ(cl_opts_parse(&o, 8, (char **)pol, err, sizeof(err)), 0);
	ST_CHECK(o.policy == CL_POLICY_BANDWIDTH && o.max_size == 384);
	ST_CHECK(o.format == CL_FORMAT_JPEG && o.raw_pt == 96);
	const char *raw[] = {"x", "--server", "10.0.0.1:5004", "--synthetic", "--format", "raw",
			     "--raw-pt", "127"};
	ST_CHECK_EQ(cl_opts_parse(&o, 8, (char **)raw, err, sizeof(err)), 0);
	ST_CHECK(o.format == CL_FORMAT_RAW && o.raw_pt == 127);
	const char *help[] = {"x", "--help"};
	ST_CHECK_EQ(cl_opts_parse(&o, 2, (char **)help, err, sizeof(err)), 1);
	static const char *const bad[][4] = {
		{"--server", "10.0.0.1", "--synthetic", NULL},      /* no port */
		{"--server", "10.0.0.1:5004", NULL, NULL},          /* no source */
		{"--synthetic", NULL, NULL, NULL},                  /* no server */
		{"--server", "10.0.0.1:5004", "--synthetic", "--loop"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--fps=0"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--width=100"}, /* not a multiple of 8 */
		{"--server", "10.0.0.1:5004", "--synthetic", "--local-port=6001"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--payload=100"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--ssrc=xyz"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--nope"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--policy-resolution=fixed"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--max-size=300"}, /* not a step */
		{"--server", "10.0.0.1:5004", "--synthetic", "--max-size=672"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--format=mjpeg"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--raw-pt=26"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--raw-pt=96.5"},
		{"--server", "10.0.0.1:5004", "--synthetic", "--raw-pt=128"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[6] = {"x"};
		int argc = 1;
		for (int k = 0; k < 4 && bad[i][k]; k++)
			argv[argc++] = bad[i][k];
		err[0] = '\0';
		ST_CHECK_EQ(cl_opts_parse(&o, argc, (char **)argv, err, sizeof(err)), -EINVAL);
		ST_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
	return ST_PASS;
}

static int test_bad_flags_exit_2_with_one_line(void)
{
	const char *exe = getenv("SHOAL_CLIENT");
	ST_SKIP_IF(!exe, "SHOAL_CLIENT not set (run through meson test)");
	static const char *const args[] = {
		"--bogus",
		"--server 127.0.0.1:5004",
		"--server 127.0.0.1 --synthetic",
		"--server 127.0.0.1:5004 --synthetic --fps abc",
		"--server 127.0.0.1:5004 --synthetic --payload",
		"--server 127.0.0.1:5004 --synthetic extra",
		"--server 127.0.0.1:5004 --synthetic --format png",
		"--server 127.0.0.1:5004 --synthetic --format",
		"--server 127.0.0.1:5004 --synthetic --format raw --raw-pt 95",
		"--server 127.0.0.1:5004 --synthetic --format raw --raw-pt 128",
		"--server 127.0.0.1:5004 --synthetic --raw-pt x",
	};
	char err[] = "/tmp/shoal-client-err-XXXXXX";
	int fd = mkstemp(err);
	ST_CHECK(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		char cmd[1024], first[256];
		snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>%s", exe, args[i], err);
		ST_CHECK_EQ(sh(cmd), 2);
		ST_CHECK_EQ(count_lines(err, first, sizeof(first)), 1);
		ST_CHECK(strncmp(first, "shoal-client: ", 14) == 0);
	}
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s --help >%s", exe, err);
	ST_CHECK_EQ(sh(cmd), 0);
	ST_CHECK(count_lines(err, NULL, 0) > 10);
	snprintf(cmd, sizeof(cmd), "%s --help | grep -q -- '--format jpeg|raw'", exe);
	ST_CHECK_EQ(sh(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s --help | grep -q -- '--raw-pt N'", exe);
	ST_CHECK_EQ(sh(cmd), 0);
	unlink(err);
	return ST_PASS;
}

static int test_sigterm_stops_and_prints_summary(void)
{
	const char *exe = getenv("SHOAL_CLIENT");
	ST_SKIP_IF(!exe, "SHOAL_CLIENT not set (run through meson test)");
	static struct peer p; /* a port nobody answers on */
	ST_CHECK_EQ(peer_start(&p), 0);
	char out[] = "/tmp/shoal-client-out-XXXXXX";
	int fd = mkstemp(out);
	ST_CHECK(fd >= 0);
	char server[32];
	snprintf(server, sizeof(server), "127.0.0.1:%u", p.port);
	pid_t pid = fork();
	ST_CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fd, 1);
		execl(exe, exe, "--server", server, "--synthetic", "--fps", "30", (char *)NULL);
		_exit(127);
	}
	close(fd);
	/* wait until it has streamed a few frames, then stop it */
	uint8_t buf[2048];
	unsigned got = 0;
	while (got < 20) {
		struct pollfd pf = {.fd = p.rtp_fd, .events = POLLIN};
		if (poll(&pf, 1, 5000) <= 0)
			break;
		if (recv(p.rtp_fd, buf, sizeof(buf), 0) > 0)
			got++;
	}
	kill(pid, SIGTERM);
	int status;
	ST_CHECK_EQ(waitpid(pid, &status, 0), pid);
	atomic_store(&p.stop, 1);
	close(p.rtp_fd);
	close(p.rtcp_fd);
	free(p.buf);
	free(p.rgb);
	tjDestroy(p.tj);
	ST_CHECK_EQ(got, 20);
	ST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char first[512];
	ST_CHECK_EQ(count_lines(out, first, sizeof(first)), 1);
	unlink(out);
	ST_CHECK(strncmp(first, "client: ssrc=0x", 15) == 0);
	ST_CHECK(strstr(first, " sent=") && strstr(first, " results=0 drops=0 lost="));
	ST_CHECK(strstr(first, " sent=0 ") == NULL);
	return ST_PASS;
}

int main(int argc, char **argv)
{
	static const struct st_case cases[] = {
		{"test_register_assign_resize_and_answers_in_csv",
		 test_register_assign_resize_and_answers_in_csv},
		{"test_target_bytes_steers_jpeg_size", test_target_bytes_steers_jpeg_size},
		{"test_register_repeated_until_assign", test_register_repeated_until_assign},
		{"test_bw_estimate_median_and_square_fit", test_bw_estimate_median_and_square_fit},
		{"test_bw_estimate_converges_to_emulated_uplink",
		 test_bw_estimate_converges_to_emulated_uplink},
		{"test_backs_off_below_assign_on_slow_uplink_and_comes_back",
		 test_backs_off_below_assign_on_slow_uplink_and_comes_back},
		{"test_policy_bandwidth_picks_size_from_rate", test_policy_bandwidth_picks_size_from_rate},
		{"test_not_served_sends_smallest_resolution",
		 test_not_served_sends_smallest_resolution},
		{"test_video_file_decodes_and_resizes", test_video_file_decodes_and_resizes},
		{"test_video_loop_rewinds_at_end", test_video_loop_rewinds_at_end},
		{"test_raw_frames_arrive_byte_exact", test_raw_frames_arrive_byte_exact},
		{"test_raw_register_announces_new_size_before_its_frames",
		 test_raw_register_announces_new_size_before_its_frames},
		{"test_raw_resolution_from_raw_frame_bytes", test_raw_resolution_from_raw_frame_bytes},
		{"test_options_parse_and_refuse", test_options_parse_and_refuse},
		{"test_bad_flags_exit_2_with_one_line", test_bad_flags_exit_2_with_one_line},
		{"test_sigterm_stops_and_prints_summary", test_sigterm_stops_and_prints_summary},
	};
	return st_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
