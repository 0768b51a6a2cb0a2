/* bench_proto — micro-benchmarks of the wire-protocol codec (dataplane/dp_proto.h).
 *
 *   rtp_jpeg_parse          dp_rtp_parse + dp_jpeg_parse of one 1400-byte RFC 2435 packet
 *   rtcp_app_build_result10 dp_app_build of a RESULT carrying 10 detections
 *   rtcp_app_build_register dp_app_build of a REGISTER listing 4 resolutions
 *   rtcp_app_parse_result10 dp_rtcp_next + dp_app_parse of that RESULT
 *   rtcp_app_parse_register dp_rtcp_next + dp_app_parse of that REGISTER
 *   jpeg_frame_reassemble   a 640x480 JPEG frame (48 KiB of scan data in 1400-byte packets,
 *                           headers already parsed): dp_jpeg_frame_init, _add per packet,
 *                           _finish
 *   raw_frame_reassemble    a 640x480 RFC 4175 4:2:0 frame in 1400-byte packets:
 *                           dp_raw_parse + dp_raw_frame_copy per packet
 *
 * Items are packets (one RTCP message counts as one packet), so items_per_second is packets
 * per second; the ns_per_pkt counter and the summary printed at the end give CPU ns per
 * packet (thread CPU time, so a loaded machine inflates them less than wall time).
 * Run: `meson test -C BUILD --benchmark proto` or BUILD/perf/bench_proto [Google Benchmark
 * flags].
 */
#include "dataplane/dp_proto.h"
#include "perf/perf_bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BP_PKT 1400
#define BP_JPEG_W 640
#define BP_JPEG_H 480
#define BP_JPEG_SCAN (48u << 10)
#define BP_JPEG_MAX_PKTS 64
#define BP_RAW_MAX_PKTS 512

/* Result of the last (largest) run of one benchmark, for the summary. */
struct bp_result {
	const char *name;
	double ns_per_pkt;
	int64_t pkts;
};

struct bp_ctx {
	/* rtp_jpeg_parse */
	uint8_t jpeg_pkt[BP_PKT];
	/* RTCP APP */
	uint8_t result_pkt[1024], register_pkt[256];
	size_t result_len, register_len;
	struct dp_app_msg result, reg;
	/* jpeg_frame_reassemble: packets with their parsed headers */
	uint8_t jpeg_pkts[BP_JPEG_MAX_PKTS][BP_PKT];
	struct dp_jpeg_hdr jpeg_hdrs[BP_JPEG_MAX_PKTS];
	unsigned n_jpeg;
	uint8_t *jpeg_frame;
	size_t jpeg_cap;
	/* raw_frame_reassemble */
	uint8_t (*raw_pkts)[BP_PKT];
	size_t raw_len[BP_RAW_MAX_PKTS];
	unsigned n_raw;
	uint8_t *raw_frame;
	size_t raw_frame_len;
	struct bp_result res[8];
	unsigned n_res;
};

/* One registered benchmark: its function's argument. */
struct bp_bench {
	struct bp_ctx *ctx;
	struct bp_result *res;
};

static double bp_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Records a finished run: items, the ns_per_pkt counter and the summary entry. */
static void bp_finish(struct perf_state *st, struct bp_result *r, double t0, int64_t pkts)
{
	double ns = bp_now_ns() - t0;
	perf_state_set_items(st, pkts);
	if (pkts > 0) {
		perf_state_counter(st, "ns_per_pkt", ns / (double)pkts, 0);
		r->ns_per_pkt = ns / (double)pkts;
		r->pkts = pkts;
	}
}

static volatile uint32_t bp_sink; /* keeps results observable */

static void bm_rtp_jpeg_parse(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	struct dp_rtp_hdr r;
	struct dp_jpeg_hdr j;
	uint32_t acc = 0;
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		if (dp_rtp_parse(b->ctx->jpeg_pkt, BP_PKT, &r) != 0 ||
		    dp_jpeg_parse(r.payload, r.payload_len, &j) != 0) {
			perf_state_error(st, "parse failed");
			return;
		}
		acc += j.frag_offset + (uint32_t)j.data_len;
	}
	bp_sink = acc;
	bp_finish(st, b->res, t0, perf_state_iterations(st));
}

static void bm_app_build(struct perf_state *st, struct bp_bench *b, const struct dp_app_msg *m)
{
	uint8_t buf[1024];
	uint32_t acc = 0;
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		ssize_t n = dp_app_build(buf, sizeof buf, m);
		if (n < 0) {
			perf_state_error(st, "dp_app_build failed");
			return;
		}
		acc += (uint32_t)n + buf[n - 1];
	}
	bp_sink = acc;
	bp_finish(st, b->res, t0, perf_state_iterations(st));
}

static void bm_app_parse(struct perf_state *st, struct bp_bench *b, const uint8_t *pkt, size_t len)
{
	struct dp_app_msg m;
	struct dp_rtcp_pkt p;
	uint32_t acc = 0;
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		size_t off = 0;
		if (dp_rtcp_next(pkt, len, &off, &p) != 1 || dp_app_parse(&p, &m) != 0) {
			perf_state_error(st, "dp_app_parse failed");
			return;
		}
		acc += m.kind + m.ssrc;
	}
	bp_sink = acc;
	bp_finish(st, b->res, t0, perf_state_iterations(st));
}

static void bm_app_build_result(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	bm_app_build(st, b, &b->ctx->result);
}

static void bm_app_build_register(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	bm_app_build(st, b, &b->ctx->reg);
}

static void bm_app_parse_result(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	bm_app_parse(st, b, b->ctx->result_pkt, b->ctx->result_len);
}

static void bm_app_parse_register(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	bm_app_parse(st, b, b->ctx->register_pkt, b->ctx->register_len);
}

static void bm_jpeg_frame_reassemble(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	struct bp_ctx *c = b->ctx;
	struct dp_jpeg_frame f;
	uint32_t acc = 0;
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		const uint8_t *img;
		size_t len;
		int rc = dp_jpeg_frame_init(&f, c->jpeg_frame, c->jpeg_cap);
		for (unsigned i = 0; rc == 0 && i < c->n_jpeg; i++)
			rc = dp_jpeg_frame_add(&f, &c->jpeg_hdrs[i], i + 1 == c->n_jpeg);
		if (rc == 0)
			rc = dp_jpeg_frame_finish(&f, &img, &len);
		if (rc != 0) {
			perf_state_error(st, dp_proto_strerror(rc));
			return;
		}
		acc += (uint32_t)len;
	}
	bp_sink = acc;
	bp_finish(st, b->res, t0, perf_state_iterations(st) * c->n_jpeg);
}

static void bm_raw_frame_reassemble(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	struct bp_ctx *c = b->ctx;
	struct dp_raw_hdr h;
	uint32_t acc = 0;
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		for (unsigned i = 0; i < c->n_raw; i++) {
			ssize_t n = -1;
			if (dp_raw_parse(c->raw_pkts[i], c->raw_len[i], &h) == 0)
				n = dp_raw_frame_copy(&h, DP_RAW_SAMPLING_YCBCR420, BP_JPEG_W, BP_JPEG_H,
						      c->raw_frame, c->raw_frame_len);
			if (n < 0) {
				perf_state_error(st, "raw packet refused");
				return;
			}
			acc += (uint32_t)n;
		}
	}
	bp_sink = acc;
	bp_finish(st, b->res, t0, perf_state_iterations(st) * c->n_raw);
}

/* ---- inputs -------------------------------------------------------------------------------- */

static int bp_make_jpeg(struct bp_ctx *c)
{
	static uint8_t scan[BP_JPEG_SCAN], qt[128];
	for (size_t i = 0; i < sizeof scan; i++)
		scan[i] = (uint8_t)(i * 131u % 251u); /* never 0xff: no marker inside the scan */
	for (size_t i = 0; i < sizeof qt; i++)
		qt[i] = (uint8_t)(1 + i % 50);

	struct dp_rtp_hdr r;
	memset(&r, 0, sizeof r);
	r.payload_type = DP_RTP_PT_JPEG;
	r.ssrc = 0x5eed0001;
	r.timestamp = 90000;
	struct dp_jpeg_hdr j;
	memset(&j, 0, sizeof j);
	j.type = 1;
	j.q = 255;
	j.width = BP_JPEG_W;
	j.height = BP_JPEG_H;
	j.qt_len = sizeof qt;
	j.qt = qt;

	uint32_t off = 0;
	c->n_jpeg = 0;
	while (off < BP_JPEG_SCAN) {
		if (c->n_jpeg == BP_JPEG_MAX_PKTS)
			return -1;
		uint8_t *pkt = c->jpeg_pkts[c->n_jpeg];
		r.seq = (uint16_t)(1000 + c->n_jpeg);
		j.frag_offset = off;
		ssize_t rl = dp_rtp_build(pkt, BP_PKT, &r);
		if (rl < 0)
			return -1;
		ssize_t jl = dp_jpeg_build(pkt + rl, BP_PKT - (size_t)rl, &j);
		if (jl < 0)
			return -1;
		size_t room = BP_PKT - (size_t)rl - (size_t)jl;
		size_t n = BP_JPEG_SCAN - off < room ? BP_JPEG_SCAN - off : room;
		memcpy(pkt + rl + jl, scan + off, n);
		size_t len = (size_t)rl + (size_t)jl + n;
		if (off + n == BP_JPEG_SCAN)
			pkt[1] |= 0x80; /* marker */
		struct dp_rtp_hdr pr;
		if (dp_rtp_parse(pkt, len, &pr) != 0 ||
		    dp_jpeg_parse(pr.payload, pr.payload_len, &c->jpeg_hdrs[c->n_jpeg]) != 0)
			return -1;
		if (c->n_jpeg == 1) /* a full-size middle packet for rtp_jpeg_parse */
			memcpy(c->jpeg_pkt, pkt, BP_PKT);
		off += (uint32_t)n;
		c->n_jpeg++;
	}
	c->jpeg_cap = DP_JPEG_HEADERS_MAX + BP_JPEG_SCAN + 64;
	c->jpeg_frame = malloc(c->jpeg_cap);
	return c->jpeg_frame && c->n_jpeg > 2 ? 0 : -1;
}

static int bp_make_app(struct bp_ctx *c)
{
	struct dp_app_msg *m = &c->result;
	memset(m, 0, sizeof *m);
	m->kind = DP_APP_RESULT;
	m->ssrc = 0x5eed0001;
	m->u.result.rtp_ts = 90000;
	m->u.result.variant = 320;
	m->u.result.server_us = 7500;
	m->u.result.n_det = 10;
	for (unsigned i = 0; i < 10; i++) {
		struct dp_app_det *d = &m->u.result.det[i];
		d->cls = (uint16_t)(i * 7 % 80);
		d->score = (uint16_t)(65535 - 3000 * i);
		d->x = (uint16_t)(40 * i);
		d->y = (uint16_t)(30 * i);
		d->w = 64;
		d->h = 48;
	}
	m = &c->reg;
	memset(m, 0, sizeof *m);
	m->kind = DP_APP_REGISTER;
	m->ssrc = 0x5eed0001;
	m->u.reg.slo_ms = 100;
	m->u.reg.fps_x100 = 3000;
	m->u.reg.media_port = 5004;
	m->u.reg.formats = DP_APP_FMT_JPEG | DP_APP_FMT_RAW420;
	m->u.reg.n_res = 4;
	for (unsigned i = 0; i < 4; i++) {
		m->u.reg.res[i].width = (uint16_t)(160 << i);
		m->u.reg.res[i].height = (uint16_t)(120 << i);
	}
	ssize_t a = dp_app_build(c->result_pkt, sizeof c->result_pkt, &c->result);
	ssize_t b = dp_app_build(c->register_pkt, sizeof c->register_pkt, &c->reg);
	if (a < 0 || b < 0)
		return -1;
	c->result_len = (size_t)a;
	c->register_len = (size_t)b;
	return 0;
}

/* RFC 4175 4:2:0: pgroups of 2x2 pixels (6 bytes); a line header covers a pair of lines. */
static int bp_make_raw(struct bp_ctx *c)
{
	ssize_t fsz = dp_raw_frame_size(DP_RAW_SAMPLING_YCBCR420, BP_JPEG_W, BP_JPEG_H);
	if (fsz <= 0)
		return -1;
	c->raw_frame_len = (size_t)fsz;
	c->raw_frame = malloc(c->raw_frame_len);
	c->raw_pkts = malloc(sizeof(*c->raw_pkts) * BP_RAW_MAX_PKTS);
	if (!c->raw_frame || !c->raw_pkts)
		return -1;
	static uint8_t pix[BP_JPEG_W * 3]; /* bytes of one line pair */
	for (size_t i = 0; i < sizeof pix; i++)
		pix[i] = (uint8_t)i;
	const unsigned line_bytes = BP_JPEG_W / 2 * 6;
	const size_t room = BP_PKT - DP_RTP_HDR_MIN - DP_RAW_HDR_MIN;
	unsigned line = 0, off = 0; /* next pixel offset inside the line pair */
	c->n_raw = 0;
	while (line < BP_JPEG_H) {
		struct dp_raw_line ls[DP_RAW_MAX_LINES];
		unsigned n = 0;
		size_t used = 0;
		while (line < BP_JPEG_H && n < DP_RAW_MAX_LINES && used + 6 + 6 <= room) {
			unsigned left = line_bytes - off / 2 * 6;
			unsigned take = (unsigned)((room - used - 6) / 6 * 6);
			if (take > left)
				take = left;
			ls[n].length = (uint16_t)take;
			ls[n].line = (uint16_t)line;
			ls[n].field = 0;
			ls[n].offset = (uint16_t)off;
			ls[n].cont = 0;
			ls[n].data = pix + off / 2 * 6;
			used += 6 + take;
			n++;
			off += take / 6 * 2;
			if (off >= BP_JPEG_W) {
				off = 0;
				line += 2;
			}
		}
		if (c->n_raw == BP_RAW_MAX_PKTS)
			return -1;
		ssize_t l = dp_raw_build(c->raw_pkts[c->n_raw], BP_PKT, 0, ls, n);
		if (l < 0)
			return -1;
		c->raw_len[c->n_raw++] = (size_t)l;
	}
	return 0;
}

/* Baseline measured in the same run: copying one 1400-byte packet. */
static void bm_memcpy_1400(struct perf_state *st, void *arg)
{
	struct bp_bench *b = arg;
	static uint8_t dst[BP_PKT];
	double t0 = bp_now_ns();
	while (perf_state_next(st)) {
		memcpy(dst, b->ctx->jpeg_pkt, BP_PKT);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	bp_sink = dst[BP_PKT - 1];
	bp_finish(st, b->res, t0, perf_state_iterations(st));
}

int main(int argc, char **argv)
{
	static struct bp_ctx ctx;
	if (bp_make_jpeg(&ctx) != 0 || bp_make_app(&ctx) != 0 || bp_make_raw(&ctx) != 0) {
		fprintf(stderr, "bench_proto: building the benchmark inputs failed\n");
		return 1;
	}
	static const struct {
		const char *name;
		void (*fn)(struct perf_state *, void *);
	} list[] = {
		{"rtp_jpeg_parse", bm_rtp_jpeg_parse},
		{"rtcp_app_build_result10", bm_app_build_result},
		{"rtcp_app_build_register", bm_app_build_register},
		{"rtcp_app_parse_result10", bm_app_parse_result},
		{"rtcp_app_parse_register", bm_app_parse_register},
		{"jpeg_frame_reassemble", bm_jpeg_frame_reassemble},
		{"raw_frame_reassemble", bm_raw_frame_reassemble},
		{"memcpy_1400", bm_memcpy_1400},
	};
	static struct bp_bench benches[sizeof list / sizeof list[0]];
	for (unsigned i = 0; i < sizeof list / sizeof list[0]; i++) {
		ctx.res[i].name = list[i].name;
		benches[i].ctx = &ctx;
		benches[i].res = &ctx.res[i];
		if (perf_bench_register(list[i].name, list[i].fn, &benches[i]) != 0)
			return 1;
	}
	ctx.n_res = sizeof list / sizeof list[0];
	int rc = perf_main(argc, argv);
	printf("\nbench_proto summary (last run of each; %u JPEG packets, %u raw packets per "
	       "640x480 frame):\n", ctx.n_jpeg, ctx.n_raw);
	for (unsigned i = 0; i < ctx.n_res; i++)
		if (ctx.res[i].pkts > 0)
			printf("  %-26s %9.1f ns/packet  (%lld packets)\n", ctx.res[i].name,
			       ctx.res[i].ns_per_pkt, (long long)ctx.res[i].pkts);
	return rc;
}
