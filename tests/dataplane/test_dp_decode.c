/* JPEG decode workers (dp.h, "JPEG decode workers") through the real poll loop: the ffmpeg and
 * GStreamer JPEG captures (tests/dataplane/fixtures) replayed with two workers arrive as I420
 * frames byte-identical to TurboJPEG decoding the JFIF the same data plane builds without a
 * decoder (4:2:2: chroma rows averaged in pairs) and close to the source (luma PSNR); corrupt
 * scan data, images larger than a slot and a pool without a free slot give DROP and counters
 * without disturbing other clients; two contexts share one pool; every slot comes back. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <turbojpeg.h>

#include "pcap_read.h"
#include "test_dp_fixture.h"

#define NREF 8

static struct dp_decoder *g_dec; /* the pool the next fx_setup's context uses (NULL: none) */

static void cfg_dec(struct dp_config *c)
{
	c->decoder = g_dec;
	c->frame_timeout_ns = 10000 * MS;
}

static struct dp_decoder *mk_decoder(const char *name, const int *cpus)
{
	struct dp_decoder_config dc;
	dp_decoder_config_defaults(&dc);
	dc.name = name;
	dc.n_workers = 2;
	dc.cpus = cpus;
	dc.queue_size = 64;
	return dp_decoder_create(&dc);
}

/* ---- captures ------------------------------------------------------------------------------- */
struct capture {
	const char *name;
	int is422;
	unsigned w, h, frames;
	struct tpcap pc;
	struct tpcap_udp pk[4096];
	unsigned n;
	uint8_t *src; /* the encoder's input frames */
	size_t src_len;
};

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(fp);
	*len = (size_t)n;
	return b;
}

/* 0, or -1 (message printed) */
static int capture_load(struct capture *c, const char *name)
{
	static const struct {
		const char *name;
		int is422;
		unsigned w, h, frames;
	} known[] = {{"ffmpeg_mjpeg", 0, 320, 240, 5},
		     {"gst_jpeg420", 0, 160, 120, 4},
		     {"gst_jpeg422", 1, 160, 120, 4}};
	const char *dir = getenv("SHOAL_FIXTURES");
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, name) == 0) {
			c->name = known[i].name;
			c->is422 = known[i].is422;
			c->w = known[i].w;
			c->h = known[i].h;
			c->frames = known[i].frames;
		}
	if (!c->name || !dir) {
		fprintf(stderr, "capture %s: unknown, or SHOAL_FIXTURES not set\n", name);
		return -1;
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.pcap", dir, name);
	if (tpcap_open(&c->pc, path) != 0) {
		fprintf(stderr, "%s: %s\n", path, c->pc.err);
		return -1;
	}
	struct tpcap_udp u;
	while (tpcap_next_udp(&c->pc, &u) == 1 && c->n < 4096)
		c->pk[c->n++] = u;
	snprintf(path, sizeof(path), "%s/%s.yuv", dir, name);
	c->src = read_all(path, &c->src_len);
	return c->src && c->n > c->frames ? 0 : -1;
}

static void capture_free(struct capture *c)
{
	free(c->src);
	tpcap_close(&c->pc);
}

/* Packets [a, *b) of the capture share one RTP timestamp: one frame. */
static unsigned frame_end(const struct capture *c, unsigned a)
{
	unsigned b = a;
	while (b < c->n && c->pk[b].len >= 8 &&
	       get32(c->pk[b].payload + 4) == get32(c->pk[a].payload + 4))
		b++;
	return b == a ? a + 1 : b;
}

static void send_packets(struct fx *f, const struct capture *c, unsigned a, unsigned b,
			 uint16_t sport)
{
	for (unsigned k = a; k < b; k++) {
		inject(f, mk_udp(f, CLI_IP, sport, MEDIA_PORT, c->pk[k].payload, c->pk[k].len));
		if (rte_ring_count(f->rx) > 512)
			poll_all(f);
		f->now += 1000;
	}
}

/* ---- reference: the JFIFs the data plane builds without a decoder --------------------------- */
struct jref {
	uint32_t ts;
	uint8_t *jfif;
	size_t len;
};

static int collect_jfifs(const struct capture *c, struct jref *ref, unsigned *n_ref)
{
	struct fx f;
	g_dec = NULL;
	if (fx_setup(&f, cfg_dec, 8, 1 << 20) != 0)
		return -1;
	*n_ref = 0;
	for (unsigned a = 0; a < c->n;) {
		unsigned b = frame_end(c, a);
		send_packets(&f, c, a, b, CLI_PORT);
		poll_all(&f);
		struct dp_frame d;
		while (dp_frames_dequeue(f.ctx, &d, 1) == 1) {
			if (d.format != DP_FRAME_JPEG || *n_ref >= NREF)
				return -1;
			struct jref *r = &ref[(*n_ref)++];
			r->ts = d.rtp_ts;
			r->len = d.len;
			r->jfif = malloc(d.len);
			memcpy(r->jfif, gpu_staging_slot(f.st, d.slot) + d.offset, d.len);
			dp_frame_release(f.ctx, &d);
		}
		a = b;
	}
	fx_teardown(&f);
	return *n_ref == c->frames ? 0 : -1;
}

static void jfifs_free(struct jref *ref, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(ref[i].jfif);
}

static double psnr_y(const uint8_t *a, const uint8_t *b, size_t n)
{
	double se = 0;
	for (size_t i = 0; i < n; i++)
		se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
	return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 * (double)n / se);
}

/* TurboJPEG's own decode of a JFIF as I420: planar output of tjDecompressToYUV2; a 4:2:2 image's
 * chroma planes are brought to 4:2:0 by averaging row pairs, rounding up. */
static uint8_t *ref_i420(const struct jref *r, unsigned w, unsigned h, int is422)
{
	size_t ysz = (size_t)w * h, cw = w / 2;
	size_t native = is422 ? ysz * 2 : ysz * 3 / 2;
	uint8_t *buf = malloc(native);
	tjhandle tj = tjInitDecompress();
	if (!buf || !tj || tjDecompressToYUV2(tj, r->jfif, r->len, buf, (int)w, 1, (int)h, 0) != 0) {
		fprintf(stderr, "reference decode: %s\n", tjGetErrorStr());
		free(buf);
		buf = NULL;
	}
	if (tj)
		tjDestroy(tj);
	if (buf && is422) {
		uint8_t *out = malloc(ysz * 3 / 2);
		memcpy(out, buf, ysz);
		for (unsigned p = 0; p < 2; p++) {
			const uint8_t *pl = buf + ysz + p * cw * h;
			uint8_t *o = out + ysz + p * cw * (h / 2);
			for (unsigned y = 0; y < h / 2; y++)
				for (unsigned x = 0; x < cw; x++) {
					unsigned s = pl[2 * y * cw + x] + pl[(2 * y + 1) * cw + x];
					o[y * cw + x] = (uint8_t)((s + 1) / 2);
				}
		}
		free(buf);
		buf = out;
	}
	return buf;
}

/* A decoded frame: I420, full range, byte-identical to the reference decode of the JFIF with
 * its RTP timestamp, luma within 30 dB of the encoder's input. *idx: which frame it was. */
static int decoded_ok(struct fx *f, const struct capture *c, const struct jref *ref,
		      unsigned n_ref, const struct dp_frame *d, unsigned *idx)
{
	unsigned i = 0;
	while (i < n_ref && ref[i].ts != d->rtp_ts)
		i++;
	size_t ysz = (size_t)c->w * c->h;
	if (i == n_ref || d->format != DP_FRAME_RAW420 || d->full_range != 1 || d->width != c->w ||
	    d->height != c->h || d->len != ysz * 3 / 2 || d->offset != 0) {
		fprintf(stderr, "%s: frame ts %u: format %u range %u %ux%u len %u\n", c->name,
			d->rtp_ts, d->format, d->full_range, d->width, d->height, d->len);
		return 0;
	}
	*idx = i;
	const uint8_t *img = gpu_staging_slot(f->st, d->slot) + d->offset;
	uint8_t *want = ref_i420(&ref[i], c->w, c->h, c->is422);
	int same = want && memcmp(img, want, d->len) == 0;
	free(want);
	size_t src_fsz = c->is422 ? ysz * 2 : ysz * 3 / 2;
	double q = (size_t)(i + 1) * src_fsz <= c->src_len ? psnr_y(img, c->src + i * src_fsz, ysz)
							    : 0;
	if (!same || q < 30.0) {
		fprintf(stderr, "%s frame %u: %s TurboJPEG's decode, luma PSNR %.1f dB\n", c->name,
			i, same ? "equal to" : "DIFFERENT from", q);
		return 0;
	}
	return 1;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {0, (long)us * 1000};
	nanosleep(&ts, NULL);
}

static uint64_t refusals(struct fx *f)
{
	return cnt(f, DP_CNT_FRAMES_UNDECODABLE) + cnt(f, DP_CNT_DECODE_OVERLOAD);
}

/* Polls in real time until `want` frames were dequeued into got[] (total *n_got) and at least
 * want_ref refusals were counted, or 10 s passed. */
static void settle(struct fx *f, struct dp_frame *got, unsigned cap, unsigned *n_got,
		   unsigned want, uint64_t want_ref)
{
	uint64_t end = dp_now_ns() + 10000 * MS;
	for (;;) {
		poll_all(f);
		while (*n_got < cap && dp_frames_dequeue(f->ctx, &got[*n_got], 1) == 1)
			(*n_got)++;
		if ((*n_got >= want && refusals(f) >= want_ref) || dp_now_ns() > end)
			return;
		sleep_us(200);
	}
}

/* DROPs the server sent to sport + 1: counts those with `reason`, checks they are well formed. */
static unsigned take_drops(struct fx *f, uint16_t rtcp_port, uint8_t reason, uint32_t *ts_out)
{
	struct rte_mbuf *out[32];
	unsigned n = take_tx(f, out, 32), hits = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t plen;
		const uint8_t *pl = check_udp_out(out[i], rtcp_port, &plen);
		struct dp_app_msg msg;
		if (pl && parse_app(pl, plen, &msg) == 0 && msg.kind == DP_APP_DROP &&
		    msg.u.drop.reason == reason) {
			if (ts_out)
				ts_out[hits] = msg.u.drop.rtp_ts;
			hits++;
		}
	}
	free_all(out, n);
	return hits;
}

/* ---- cases ---------------------------------------------------------------------------------- */
/* Whole capture in order through a context with two workers: every frame decoded, exact. */
static int replay_decoded(const char *name, const int *cpus)
{
	ST_SKIP_IF(!getenv("SHOAL_FIXTURES"), "SHOAL_FIXTURES not set (run through meson test)");
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	static struct capture c;
	ST_CHECK(capture_load(&c, name) == 0);
	struct jref ref[NREF];
	unsigned n_ref;
	ST_CHECK(collect_jfifs(&c, ref, &n_ref) == 0);
	g_dec = mk_decoder("rd", cpus);
	ST_CHECK(g_dec != NULL);
	FX_BEGIN(f, cfg_dec, 8, 1 << 20);
	struct dp_frame got[NREF];
	unsigned n_got = 0;
	uint8_t seen[NREF] = {0};
	for (unsigned a = 0; a < c.n;) {
		unsigned b = frame_end(&c, a);
		send_packets(&f, &c, a, b, CLI_PORT);
		poll_all(&f);
		a = b;
		/* keep at most 2 decoded frames in hand (8 slots: reassembly + decode + consumer) */
		unsigned before = n_got;
		while (n_got < NREF && dp_frames_dequeue(f.ctx, &got[n_got], 1) == 1)
			n_got++;
		for (unsigned i = before; i < n_got; i++) {
			unsigned idx;
			ST_CHECK(decoded_ok(&f, &c, ref, n_ref, &got[i], &idx));
			ST_CHECK(!seen[idx]);
			seen[idx] = 1;
			ST_CHECK_EQ(dp_frame_release(f.ctx, &got[i]), 0);
		}
	}
	unsigned before = n_got;
	settle(&f, got, NREF, &n_got, c.frames, 0);
	for (unsigned i = before; i < n_got; i++) {
		unsigned idx;
		ST_CHECK(decoded_ok(&f, &c, ref, n_ref, &got[i], &idx));
		ST_CHECK(!seen[idx]);
		seen[idx] = 1;
		ST_CHECK_EQ(dp_frame_release(f.ctx, &got[i]), 0);
	}
	ST_CHECK_EQ(n_got, c.frames);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_COMPLETE), c.frames);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_TO_DECODER), c.frames);
	ST_CHECK_EQ(refusals(&f), 0);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0); /* no DROP */
	struct dp_decoder_stats ds;
	dp_decoder_stats_get(g_dec, &ds);
	ST_CHECK_EQ(ds.decoded, c.frames);
	ST_CHECK(ds.decode_ns > 0 && ds.decode_ns_max > 0 && ds.decode_ns_max <= ds.decode_ns);
	printf("%s: %u frames %ux%u decoded, mean %.0f us, max %.0f us\n", name, c.frames, c.w, c.h,
	       (double)ds.decode_ns / (double)ds.decoded / 1e3, (double)ds.decode_ns_max / 1e3);
	struct dp_client_key k = got[0].client;
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.frames_complete, c.frames);
	ST_CHECK_EQ(cs.frames_dropped, 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 8);
	if (cpus) { /* every worker thread runs only on its CPU */
		DIR *dir = opendir("/proc/self/task");
		ST_CHECK(dir != NULL);
		struct dirent *e;
		unsigned pinned = 0;
		while ((e = readdir(dir)) != NULL) {
			char path[300], line[256];
			snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
			FILE *fp = fopen(path, "r");
			if (!fp)
				continue;
			int ours = fgets(line, sizeof(line), fp) && strncmp(line, "dp-jpeg-", 8) == 0;
			fclose(fp);
			if (!ours)
				continue;
			snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
			fp = fopen(path, "r");
			ST_CHECK(fp != NULL);
			char want[64];
			snprintf(want, sizeof(want), "Cpus_allowed_list:\t%d\n", cpus[0]);
			while (fgets(line, sizeof(line), fp))
				if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
					if (strcmp(line, want) != 0)
						fprintf(stderr, "worker %s: %s", e->d_name, line);
					else
						pinned++;
				}
			fclose(fp);
		}
		closedir(dir);
		ST_CHECK_EQ(pinned, 2);
	}
	fx_teardown(&f);
	dp_decoder_destroy(g_dec);
	jfifs_free(ref, n_ref);
	capture_free(&c);
	return ST_PASS;
}

static int test_ffmpeg_mjpeg_decoded_i420_equals_turbojpeg(void)
{
	/* workers pinned to the first CPU this process may use */
	cpu_set_t set;
	int cpus[2] = {0, 0};
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = CPU_SETSIZE - 1; i >= 0; i--)
			if (CPU_ISSET(i, &set))
				cpus[0] = cpus[1] = i;
	return replay_decoded("ffmpeg_mjpeg", cpus);
}

static int test_gst_jpeg420_decoded_i420_equals_turbojpeg(void)
{
	return replay_decoded("gst_jpeg420", NULL);
}

static int test_gst_jpeg422_decoded_i420_chroma_averaged(void)
{
	return replay_decoded("gst_jpeg422", NULL);
}

/* RFC 2435 packet, type 1 (4:2:0), Q 50, 64x48, from sport. */
static struct rte_mbuf *mk_jpeg_pkt(struct fx *f, uint16_t sport, uint32_t ssrc, uint16_t seq,
				    uint32_t ts, uint32_t off, const uint8_t *data, size_t n,
				    int marker)
{
	uint8_t b[12 + 8 + 1400];
	size_t o = rtp_hdr(b, 26, marker, seq, ts, ssrc);
	b[o] = 0;
	b[o + 1] = (uint8_t)(off >> 16);
	b[o + 2] = (uint8_t)(off >> 8);
	b[o + 3] = (uint8_t)off;
	b[o + 4] = 1;
	b[o + 5] = 50;
	b[o + 6] = 64 / 8;
	b[o + 7] = 48 / 8;
	memcpy(b + o + 8, data, n);
	return mk_udp(f, CLI_IP, sport, MEDIA_PORT, b, o + 8 + n);
}

/* A client sending JPEG frames whose scan data are garbage (valid RTP and RFC 2435 headers),
 * interleaved with a GStreamer stream from another client: each garbage frame gives
 * DROP(BAD_FRAME) to its sender and the counters, every GStreamer frame arrives decoded and
 * exact, every slot comes back. */
static int test_corrupt_jpeg_drop_other_client_unaffected(void)
{
	ST_SKIP_IF(!getenv("SHOAL_FIXTURES"), "SHOAL_FIXTURES not set (run through meson test)");
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	static struct capture c;
	ST_CHECK(capture_load(&c, "gst_jpeg420") == 0);
	struct jref ref[NREF];
	unsigned n_ref;
	ST_CHECK(collect_jfifs(&c, ref, &n_ref) == 0);
	g_dec = mk_decoder("cj", NULL);
	ST_CHECK(g_dec != NULL);
	FX_BEGIN(f, cfg_dec, 16, 1 << 20);
	const uint16_t bad_port = CLI_PORT + 10;
	uint64_t rng = 0x2545f4914f6cdd1dull;
	uint8_t garbage[3000];
	unsigned n_bad = 0, fr = 0;
	uint16_t seq = 0;
	for (unsigned a = 0; a < c.n; fr++) {
		unsigned b = frame_end(&c, a);
		unsigned half = a + (b - a) / 2;
		send_packets(&f, &c, a, half, CLI_PORT);
		for (size_t i = 0; i < sizeof(garbage); i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			garbage[i] = (uint8_t)rng;
		}
		for (unsigned k = 0; k < 3; k++)
			inject(&f, mk_jpeg_pkt(&f, bad_port, 4242, seq++, 1000 + fr * 3000, k * 1000,
					       garbage + k * 1000, 1000, k == 2));
		n_bad++;
		send_packets(&f, &c, half, b, CLI_PORT);
		poll_all(&f);
		a = b;
	}
	struct dp_frame got[NREF];
	unsigned n_got = 0;
	settle(&f, got, NREF, &n_got, c.frames, n_bad);
	uint8_t seen[NREF] = {0};
	for (unsigned i = 0; i < n_got; i++) {
		unsigned idx;
		ST_CHECK(decoded_ok(&f, &c, ref, n_ref, &got[i], &idx));
		ST_CHECK(!seen[idx]);
		seen[idx] = 1;
		ST_CHECK_EQ(dp_frame_release(f.ctx, &got[i]), 0);
	}
	ST_CHECK_EQ(n_got, c.frames);
	poll_all(&f);
	uint32_t ts[32];
	ST_CHECK_EQ(take_drops(&f, bad_port + 1, DP_APP_DROP_BAD_FRAME, ts), n_bad);
	for (unsigned i = 0; i < n_bad; i++)
		ST_CHECK_EQ(ts[i] % 3000, 1000);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_UNDECODABLE), n_bad);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DECODE_OVERLOAD), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), n_bad);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_TO_DECODER), c.frames + n_bad);
	struct dp_decoder_stats ds;
	dp_decoder_stats_get(g_dec, &ds);
	ST_CHECK_EQ(ds.corrupt, n_bad);
	ST_CHECK_EQ(ds.decoded, c.frames);
	struct dp_client_key kb = {rte_cpu_to_be_32(CLI_IP), bad_port, 4242};
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &kb, &cs), 0);
	ST_CHECK_EQ(cs.frames_dropped, n_bad);
	ST_CHECK_EQ(cs.frames_complete, n_bad);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &got[0].client, &cs), 0);
	ST_CHECK_EQ(cs.frames_dropped, 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 16);
	fx_teardown(&f);
	dp_decoder_destroy(g_dec);
	jfifs_free(ref, n_ref);
	capture_free(&c);
	return ST_PASS;
}

/* Slots of 16 KiB hold a 160x120 JFIF but not its 28,800-byte I420 image: DROP(TOO_LARGE) per
 * frame, nothing delivered, nothing leaked. */
static int test_decoded_image_larger_than_slot_drop_too_large(void)
{
	ST_SKIP_IF(!getenv("SHOAL_FIXTURES"), "SHOAL_FIXTURES not set (run through meson test)");
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	static struct capture c;
	ST_CHECK(capture_load(&c, "gst_jpeg420") == 0);
	g_dec = mk_decoder("tl", NULL);
	ST_CHECK(g_dec != NULL);
	FX_BEGIN(f, cfg_dec, 4, 16384);
	for (unsigned a = 0; a < c.n;) {
		unsigned b = frame_end(&c, a);
		send_packets(&f, &c, a, b, CLI_PORT);
		poll_all(&f);
		a = b;
	}
	struct dp_frame got[NREF];
	unsigned n_got = 0;
	settle(&f, got, NREF, &n_got, 0, c.frames);
	poll_all(&f);
	ST_CHECK_EQ(n_got, 0);
	ST_CHECK_EQ(take_drops(&f, CLI_PORT + 1, DP_APP_DROP_TOO_LARGE, NULL), c.frames);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_UNDECODABLE), c.frames);
	struct dp_decoder_stats ds;
	dp_decoder_stats_get(g_dec, &ds);
	ST_CHECK_EQ(ds.too_large, c.frames);
	ST_CHECK_EQ(ds.decoded, 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	dp_decoder_destroy(g_dec);
	capture_free(&c);
	return ST_PASS;
}

/* Two slots and a consumer that keeps its frame: the next JPEG is reassembled in the free slot
 * but the worker finds none to decode into: DROP(OVERLOAD) and decode_overload; once the
 * consumer lets go, the frame after decodes. */
static int test_no_free_slot_for_decode_drop_overload(void)
{
	ST_SKIP_IF(!getenv("SHOAL_FIXTURES"), "SHOAL_FIXTURES not set (run through meson test)");
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	static struct capture c;
	ST_CHECK(capture_load(&c, "gst_jpeg420") == 0);
	g_dec = mk_decoder("ns", NULL);
	ST_CHECK(g_dec != NULL);
	FX_BEGIN(f, cfg_dec, 2, 1 << 20);
	struct dp_frame got[NREF];
	unsigned n_got = 0, a = 0, b = frame_end(&c, 0);
	send_packets(&f, &c, a, b, CLI_PORT);
	settle(&f, got, NREF, &n_got, 1, 0); /* frame 0 decoded, held */
	ST_CHECK_EQ(n_got, 1);
	a = b;
	b = frame_end(&c, a);
	send_packets(&f, &c, a, b, CLI_PORT); /* frame 1: no slot for its image */
	settle(&f, got, NREF, &n_got, 1, 1);
	poll_all(&f);
	ST_CHECK_EQ(n_got, 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DECODE_OVERLOAD), 1);
	ST_CHECK_EQ(take_drops(&f, CLI_PORT + 1, DP_APP_DROP_OVERLOAD, NULL), 1);
	struct dp_decoder_stats ds;
	dp_decoder_stats_get(g_dec, &ds);
	ST_CHECK_EQ(ds.no_slot, 1);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 1);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &got[0]), 0);
	a = b;
	b = frame_end(&c, a);
	send_packets(&f, &c, a, b, CLI_PORT); /* frame 2 decodes again */
	settle(&f, got, NREF, &n_got, 2, 1);
	ST_CHECK_EQ(n_got, 2);
	ST_CHECK_EQ(got[1].format, DP_FRAME_RAW420);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &got[1]), 0);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &got[1].client, &cs), 0);
	ST_CHECK_EQ(cs.frames_complete, 3);
	ST_CHECK_EQ(cs.frames_dropped, 1);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 2);
	fx_teardown(&f);
	dp_decoder_destroy(g_dec);
	capture_free(&c);
	return ST_PASS;
}

/* One pool, two contexts with their own staging pools: each context receives its own client's
 * frames decoded into its own pool. Then the pool is destroyed while frames are queued and the
 * contexts after it: every slot comes back. */
static int test_two_contexts_share_decoder(void)
{
	ST_SKIP_IF(!getenv("SHOAL_FIXTURES"), "SHOAL_FIXTURES not set (run through meson test)");
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	static struct capture c1, c2;
	ST_CHECK(capture_load(&c1, "ffmpeg_mjpeg") == 0);
	ST_CHECK(capture_load(&c2, "gst_jpeg422") == 0);
	struct jref r1[NREF], r2[NREF];
	unsigned n1, n2;
	ST_CHECK(collect_jfifs(&c1, r1, &n1) == 0);
	ST_CHECK(collect_jfifs(&c2, r2, &n2) == 0);
	g_dec = mk_decoder("tc", NULL);
	ST_CHECK(g_dec != NULL);
	struct fx f1, f2;
	ST_CHECK(fx_setup(&f1, cfg_dec, 12, 1 << 20) == 0);
	ST_CHECK(fx_setup(&f2, cfg_dec, 12, 1 << 20) == 0);
	for (unsigned a1 = 0, a2 = 0; a1 < c1.n || a2 < c2.n;) {
		if (a1 < c1.n) {
			unsigned b = frame_end(&c1, a1);
			send_packets(&f1, &c1, a1, b, CLI_PORT);
			poll_all(&f1);
			a1 = b;
		}
		if (a2 < c2.n) {
			unsigned b = frame_end(&c2, a2);
			send_packets(&f2, &c2, a2, b, CLI_PORT + 2);
			poll_all(&f2);
			a2 = b;
		}
	}
	struct dp_frame g1[NREF], g2[NREF];
	unsigned n_g1 = 0, n_g2 = 0;
	settle(&f1, g1, NREF, &n_g1, c1.frames, 0);
	settle(&f2, g2, NREF, &n_g2, c2.frames, 0);
	ST_CHECK_EQ(n_g1, c1.frames);
	ST_CHECK_EQ(n_g2, c2.frames);
	for (unsigned i = 0; i < n_g1; i++) {
		unsigned idx;
		ST_CHECK(decoded_ok(&f1, &c1, r1, n1, &g1[i], &idx));
		ST_CHECK_EQ(g1[i].client.port, CLI_PORT);
		ST_CHECK_EQ(dp_frame_release(f1.ctx, &g1[i]), 0);
	}
	for (unsigned i = 0; i < n_g2; i++) {
		unsigned idx;
		ST_CHECK(decoded_ok(&f2, &c2, r2, n2, &g2[i], &idx));
		ST_CHECK_EQ(g2[i].client.port, CLI_PORT + 2);
		ST_CHECK_EQ(dp_frame_release(f2.ctx, &g2[i]), 0);
	}
	ST_CHECK_EQ(gpu_staging_free_count(f1.st), 12);
	ST_CHECK_EQ(gpu_staging_free_count(f2.st), 12);
	/* again, then destroy the pool at once: queued frames dropped, slots back */
	send_packets(&f1, &c1, 0, c1.n, CLI_PORT + 4);
	poll_all(&f1);
	dp_decoder_destroy(g_dec);
	g_dec = NULL;
	dp_destroy(f1.ctx);
	f1.ctx = NULL;
	ST_CHECK_EQ(gpu_staging_free_count(f1.st), 12);
	fx_teardown(&f1);
	fx_teardown(&f2);
	jfifs_free(r1, n1);
	jfifs_free(r2, n2);
	capture_free(&c1);
	capture_free(&c2);
	return ST_PASS;
}

/* Scan data of a baseline JFIF: from after the SOS segment to before the final EOI. */
static int jfif_scan(const uint8_t *j, size_t len, const uint8_t **scan, size_t *scan_len)
{
	size_t off = 2;
	while (off + 4 <= len && j[off] == 0xff) {
		size_t seg = (size_t)j[off + 2] << 8 | j[off + 3];
		if (j[off + 1] == 0xda) {
			size_t start = off + 2 + seg;
			if (start + 2 > len)
				return -1;
			*scan = j + start;
			*scan_len = len - 2 - start;
			return 0;
		}
		off += 2 + seg;
	}
	return -1;
}

/* 640x480 images compressed by tjCompress2 (4:2:0, quality 75, standard Huffman tables: what
 * RFC 2435 type 1 with Q 75 describes), sent as RFC 2435 packets of 1400 scan bytes: every
 * frame decoded by the workers equals TurboJPEG's decode of the encoder's own JFIF. Prints the
 * decode time per frame. */
static int test_vga_frames_decoded_equal_encoder_jfif(void)
{
	enum { W = 640, H = 480, NF = 12, CHUNK = 1400 };
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	g_dec = mk_decoder("vg", NULL);
	ST_CHECK(g_dec != NULL);
	FX_BEGIN(f, cfg_dec, 16, 1 << 20);
	uint8_t *rgb = malloc((size_t)W * H * 3), *want = malloc((size_t)W * H * 3 / 2);
	ST_CHECK(rgb && want);
	tjhandle tjc = tjInitCompress(), tjd = tjInitDecompress();
	ST_CHECK(tjc && tjd);
	unsigned got = 0, exact = 0;
	uint16_t seq = 100;
	size_t jpeg_bytes = 0;
	for (unsigned k = 0; k < NF; k++) {
		for (unsigned y = 0; y < H; y++)
			for (unsigned x = 0; x < W; x++) {
				uint8_t *p = rgb + ((size_t)y * W + x) * 3;
				double v = 60.0 * sin((x + 7.0 * k) / 23.0) * cos(y / 31.0);
				p[0] = (uint8_t)(x * 255 / W);
				p[1] = (uint8_t)(128 + v);
				p[2] = (uint8_t)((((x + 4 * k) / 40 + y / 40) & 1) ? 200 : 40);
			}
		unsigned char *jpg = NULL;
		unsigned long jlen = 0;
		ST_CHECK(tjCompress2(tjc, rgb, W, 0, H, TJPF_RGB, &jpg, &jlen, TJSAMP_420, 75, 0) == 0);
		const uint8_t *scan;
		size_t scan_len;
		ST_CHECK(jfif_scan(jpg, jlen, &scan, &scan_len) == 0);
		jpeg_bytes += jlen;
		ST_CHECK(tjDecompressToYUV2(tjd, jpg, jlen, want, W, 1, H, 0) == 0);
		uint32_t ts = 9000 * k;
		for (size_t off = 0; off < scan_len; off += CHUNK) {
			size_t n = scan_len - off < CHUNK ? scan_len - off : CHUNK;
			uint8_t b[12 + 8 + CHUNK];
			size_t o = rtp_hdr(b, 26, off + n == scan_len, seq++, ts, 77);
			b[o] = 0;
			b[o + 1] = (uint8_t)(off >> 16);
			b[o + 2] = (uint8_t)(off >> 8);
			b[o + 3] = (uint8_t)off;
			b[o + 4] = 1;  /* 4:2:0 */
			b[o + 5] = 75; /* Q: the receiver computes libjpeg's tables */
			b[o + 6] = W / 8;
			b[o + 7] = H / 8;
			memcpy(b + o + 8, scan + off, n);
			inject(&f, mk_udp(&f, CLI_IP, CLI_PORT, MEDIA_PORT, b, o + 8 + n));
			f.now += 1000;
		}
		tjFree(jpg);
		struct dp_frame d[1];
		unsigned n_got = 0;
		settle(&f, d, 1, &n_got, 1, 0);
		ST_CHECK_EQ(n_got, 1);
		ST_CHECK_EQ(d[0].rtp_ts, ts);
		ST_CHECK_EQ(d[0].format, DP_FRAME_RAW420);
		ST_CHECK_EQ(d[0].len, W * H * 3 / 2);
		exact += memcmp(gpu_staging_slot(f.st, d[0].slot), want, d[0].len) == 0;
		got++;
		ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	}
	ST_CHECK_EQ(got, NF);
	ST_CHECK_EQ(exact, NF);
	struct dp_decoder_stats ds;
	dp_decoder_stats_get(g_dec, &ds);
	ST_CHECK_EQ(ds.decoded, NF);
	printf("%ux%u 4:2:0, %zu JPEG bytes each: %u frames decoded by the workers, mean %.0f us, "
	       "max %.0f us\n", W, H, jpeg_bytes / NF, NF, (double)ds.decode_ns / NF / 1e3,
	       (double)ds.decode_ns_max / 1e3);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 16);
	tjDestroy(tjc);
	tjDestroy(tjd);
	free(rgb);
	free(want);
	fx_teardown(&f);
	dp_decoder_destroy(g_dec);
	return ST_PASS;
}

/* Bad configurations refused with a message, not a crash. */
static int test_decoder_bad_config_refused(void)
{
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");
	struct dp_decoder_config dc;
	dp_decoder_config_defaults(&dc);
	ST_CHECK(dp_decoder_create(&dc) == NULL); /* no name */
	dc.name = "bc";
	dc.n_workers = 0;
	ST_CHECK(dp_decoder_create(&dc) == NULL);
	dc.n_workers = 2;
	dc.queue_size = 100;
	ST_CHECK(dp_decoder_create(&dc) == NULL);
	dc.queue_size = 64;
	int bad[2] = {0, -1};
	dc.cpus = bad;
	ST_CHECK(dp_decoder_create(&dc) == NULL);
	dc.cpus = NULL;
	struct dp_decoder *d = dp_decoder_create(&dc);
	ST_CHECK(d != NULL);
	ST_CHECK_EQ(dp_decoder_queued(d), 0);
	dp_decoder_destroy(d);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_ffmpeg_mjpeg_decoded_i420_equals_turbojpeg),
	ST_CASE(test_gst_jpeg420_decoded_i420_equals_turbojpeg),
	ST_CASE(test_gst_jpeg422_decoded_i420_chroma_averaged),
	ST_CASE(test_corrupt_jpeg_drop_other_client_unaffected),
	ST_CASE(test_decoded_image_larger_than_slot_drop_too_large),
	ST_CASE(test_no_free_slot_for_decode_drop_overload),
	ST_CASE(test_two_contexts_share_decoder), ST_CASE(test_vga_frames_decoded_equal_encoder_jfif),
	ST_CASE(test_decoder_bad_config_refused))
