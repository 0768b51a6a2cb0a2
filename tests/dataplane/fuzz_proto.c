/* fuzz_proto — libFuzzer target for the dp_proto codec (DESIGN.md §9: fuzz the packet
 * parser and the reassembler). Every input goes through every parser:
 *
 *  1. RTP: dp_rtp_parse; when it parses, build -> parse must give the same header and
 *     payload; the payload then goes through the RFC 2435 and RFC 4175 parsers (3, 4).
 *  2. RTP sequence tracking: the input read as 16-bit sequence numbers.
 *  3. RFC 2435: dp_jpeg_parse on the input; build -> parse round trip; dp_jpeg_qtables.
 *  4. RFC 4175: dp_raw_parse; build -> parse round trip; dp_raw_frame_copy into a fixed
 *     160x120 frame for each sampling, which must stay untouched when the copy is refused.
 *  5. Reassembly: the input split into pseudo-packets, each a 2-byte big-endian prefix (bit
 *     15: RTP marker, bits 0..14: length) then that many payload bytes; they are added to a
 *     JPEG frame (dp_jpeg_frame_add/complete/finish) and copied into raw frames.
 *  6. RTCP: the input walked as a compound packet with dp_rtcp_next; every packet goes to
 *     the SR, RR, BYE and APP parsers; whatever parses is rebuilt, walked and parsed again
 *     and must come back equal (dp_app_size must match the built length).
 *
 * A failed invariant calls __builtin_trap(), which libFuzzer reports as a crash. Built with
 * clang -fsanitize=fuzzer,address,undefined by tests/dataplane/meson.build; the fuzz suite
 * runs it for a bounded time on a corpus seeded from the real-sender fixtures.
 */
#include "dataplane/dp_proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                                      \
	do {                                                                                    \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "fuzz_proto.c:%d: invariant failed: %s\n", __LINE__, #cond); \
			__builtin_trap();                                                           \
		}                                                                                   \
	} while (0)

#define FZ_MAX_INPUT (1u << 16)
#define FZ_RAW_W 160
#define FZ_RAW_H 120
#define FZ_JPEG_CAP (DP_JPEG_HEADERS_MAX + 32768)

/* Scratch memory of the target (libFuzzer runs one input at a time). */
struct fz_scratch {
	uint8_t out[FZ_MAX_INPUT + 512 * 1024]; /* rebuilt packets (RTP extension up to 256 KiB) */
	uint8_t frame[FZ_RAW_W * FZ_RAW_H * 3];
	uint8_t jpeg[FZ_JPEG_CAP];
	struct dp_jpeg_frame jf;
	struct dp_rtcp_sr sr, sr2;
	struct dp_rtcp_rr rr, rr2;
	struct dp_rtcp_bye bye, bye2;
	struct dp_app_msg app, app2;
	struct dp_raw_hdr raw, raw2;
};
static struct fz_scratch fz;

static void fz_check_err(int rc)
{
	if (rc < 0) {
		const char *s = dp_proto_strerror(rc);
		FZ_CHECK(s != NULL && s[0] != '\0');
	}
}

static int fz_inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
	return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

/* ---- RFC 2435 ---------------------------------------------------------------------------- */

static void fz_jpeg_payload(const uint8_t *d, size_t n)
{
	struct dp_jpeg_hdr h, h2;
	int rc = dp_jpeg_parse(d, n, &h);
	fz_check_err(rc);
	if (rc != 0)
		return;
	FZ_CHECK(fz_inside(h.data, h.data_len, d, n));
	int has_qt = h.q >= 128 && h.frag_offset == 0;
	if (has_qt)
		FZ_CHECK(h.qt_len == 0 || fz_inside(h.qt, h.qt_len, d, n));
	ssize_t hl = dp_jpeg_build(fz.out, sizeof fz.out, &h);
	fz_check_err((int)hl);
	FZ_CHECK(hl > 0 && (size_t)hl + h.data_len <= sizeof fz.out);
	memcpy(fz.out + hl, h.data, h.data_len);
	rc = dp_jpeg_parse(fz.out, (size_t)hl + h.data_len, &h2);
	FZ_CHECK(rc == 0);
	FZ_CHECK(h2.type_specific == h.type_specific && h2.frag_offset == h.frag_offset);
	FZ_CHECK(h2.type == h.type && h2.q == h.q && h2.width == h.width && h2.height == h.height);
	if (h.type >= 64 && h.type <= 127)
		FZ_CHECK(h2.restart_interval == h.restart_interval &&
			 h2.restart_first == h.restart_first && h2.restart_last == h.restart_last &&
			 h2.restart_count == h.restart_count);
	if (has_qt) {
		FZ_CHECK(h2.qt_precision == h.qt_precision && h2.qt_len == h.qt_len);
		FZ_CHECK(h.qt_len == 0 || memcmp(h2.qt, h.qt, h.qt_len) == 0);
	}
	FZ_CHECK(h2.data_len == h.data_len);
	FZ_CHECK(h.data_len == 0 || memcmp(h2.data, h.data, h.data_len) == 0);
}

static void fz_qtables(const uint8_t *d, size_t n)
{
	uint8_t l[64], c[64];
	uint8_t q = n ? d[0] : 0;
	int rc = dp_jpeg_qtables(q, l, c);
	fz_check_err(rc);
	if (q >= 1 && q <= 99) {
		FZ_CHECK(rc == 0);
		for (int i = 0; i < 64; i++)
			FZ_CHECK(l[i] >= 1 && c[i] >= 1);
	} else {
		FZ_CHECK(rc == DP_PROTO_ERR_INVALID);
	}
}

/* ---- RFC 4175 ---------------------------------------------------------------------------- */

static const enum dp_raw_sampling fz_samplings[3] = {
	DP_RAW_SAMPLING_YCBCR420, DP_RAW_SAMPLING_YCBCR422, DP_RAW_SAMPLING_RGB};

static void fz_raw_payload(const uint8_t *d, size_t n)
{
	int rc = dp_raw_parse(d, n, &fz.raw);
	fz_check_err(rc);
	if (rc != 0)
		return;
	FZ_CHECK(fz.raw.n_lines >= 1 && fz.raw.n_lines <= DP_RAW_MAX_LINES);
	size_t total = 0;
	for (unsigned i = 0; i < fz.raw.n_lines; i++) {
		FZ_CHECK(fz_inside(fz.raw.lines[i].data, fz.raw.lines[i].length, d, n));
		total += fz.raw.lines[i].length;
	}
	/* build -> parse */
	ssize_t bl = dp_raw_build(fz.out, sizeof fz.out, fz.raw.ext_seq, fz.raw.lines, fz.raw.n_lines);
	fz_check_err((int)bl);
	FZ_CHECK(bl > 0);
	rc = dp_raw_parse(fz.out, (size_t)bl, &fz.raw2);
	FZ_CHECK(rc == 0);
	FZ_CHECK(fz.raw2.ext_seq == fz.raw.ext_seq && fz.raw2.n_lines == fz.raw.n_lines);
	for (unsigned i = 0; i < fz.raw.n_lines; i++) {
		const struct dp_raw_line *a = &fz.raw.lines[i], *b = &fz.raw2.lines[i];
		FZ_CHECK(a->length == b->length && a->line == b->line && a->field == b->field &&
			 a->offset == b->offset && a->cont == b->cont);
		FZ_CHECK(a->length == 0 || memcmp(a->data, b->data, a->length) == 0);
	}
	/* copy into a fixed frame; a refused copy writes nothing */
	for (int s = 0; s < 3; s++) {
		ssize_t fsz = dp_raw_frame_size(fz_samplings[s], FZ_RAW_W, FZ_RAW_H);
		FZ_CHECK(fsz > 0 && (size_t)fsz <= sizeof fz.frame);
		memset(fz.frame, 0xa5, (size_t)fsz);
		ssize_t placed = dp_raw_frame_copy(&fz.raw, fz_samplings[s], FZ_RAW_W, FZ_RAW_H,
						   fz.frame, (size_t)fsz);
		fz_check_err((int)placed);
		if (placed >= 0) {
			FZ_CHECK((size_t)placed <= total);
		} else {
			for (ssize_t i = 0; i < fsz; i++)
				FZ_CHECK(fz.frame[i] == 0xa5);
		}
	}
}

/* ---- RTP --------------------------------------------------------------------------------- */

static void fz_rtp(const uint8_t *d, size_t n)
{
	struct dp_rtp_hdr h, h2;
	int rc = dp_rtp_parse(d, n, &h);
	fz_check_err(rc);
	if (rc != 0)
		return;
	FZ_CHECK(h.csrc_count <= DP_RTP_MAX_CSRC && h.payload_type < 128);
	FZ_CHECK(fz_inside(h.payload, h.payload_len, d, n));
	if (h.extension)
		FZ_CHECK(fz_inside(h.ext, (size_t)h.ext_words * 4, d, n));
	FZ_CHECK(DP_RTP_HDR_MIN + 4u * h.csrc_count + h.payload_len + h.pad_len <= n);

	struct dp_rtp_hdr b = h;
	b.padding = 0;
	b.pad_len = 0;
	ssize_t hl = dp_rtp_build(fz.out, sizeof fz.out, &b);
	fz_check_err((int)hl);
	FZ_CHECK(hl >= DP_RTP_HDR_MIN && (size_t)hl + h.payload_len <= sizeof fz.out);
	memcpy(fz.out + hl, h.payload, h.payload_len);
	rc = dp_rtp_parse(fz.out, (size_t)hl + h.payload_len, &h2);
	FZ_CHECK(rc == 0);
	FZ_CHECK(h2.padding == 0 && h2.extension == h.extension && h2.csrc_count == h.csrc_count);
	FZ_CHECK(h2.marker == h.marker && h2.payload_type == h.payload_type && h2.seq == h.seq);
	FZ_CHECK(h2.timestamp == h.timestamp && h2.ssrc == h.ssrc);
	for (unsigned i = 0; i < h.csrc_count; i++)
		FZ_CHECK(h2.csrc[i] == h.csrc[i]);
	if (h.extension) {
		FZ_CHECK(h2.ext_profile == h.ext_profile && h2.ext_words == h.ext_words);
		FZ_CHECK(h.ext_words == 0 || memcmp(h2.ext, h.ext, (size_t)h.ext_words * 4) == 0);
	}
	FZ_CHECK(h2.payload_len == h.payload_len);
	FZ_CHECK(h.payload_len == 0 || memcmp(h2.payload, h.payload, h.payload_len) == 0);

	fz_jpeg_payload(h.payload, h.payload_len);
	fz_raw_payload(h.payload, h.payload_len);
}

static void fz_seq(const uint8_t *d, size_t n)
{
	struct dp_rtp_seq s;
	memset(&s, 0, sizeof s);
	for (size_t i = 0; i + 1 < n && i < 512; i += 2) {
		uint16_t q = (uint16_t)(d[i] << 8 | d[i + 1]);
		uint32_t ext = dp_rtp_seq_update(&s, q);
		FZ_CHECK((uint16_t)ext == q);
	}
}

/* ---- reassembly over pseudo-packets ------------------------------------------------------- */

static void fz_reassemble(const uint8_t *d, size_t n)
{
	int rc = dp_jpeg_frame_init(&fz.jf, fz.jpeg, sizeof fz.jpeg);
	FZ_CHECK(rc == 0);
	ssize_t fsz[3];
	for (int s = 0; s < 3; s++) {
		fsz[s] = dp_raw_frame_size(fz_samplings[s], FZ_RAW_W, FZ_RAW_H);
		FZ_CHECK(fsz[s] > 0 && (size_t)fsz[s] <= sizeof fz.frame);
	}
	size_t off = 0;
	while (n - off >= 2) {
		int marker = d[off] >> 7;
		size_t len = (size_t)(d[off] & 0x7f) << 8 | d[off + 1];
		off += 2;
		if (len > n - off)
			len = n - off;
		const uint8_t *p = d + off;
		off += len;

		struct dp_jpeg_hdr h;
		if (dp_jpeg_parse(p, len, &h) == 0) {
			rc = dp_jpeg_frame_add(&fz.jf, &h, marker);
			fz_check_err(rc);
			FZ_CHECK(fz.jf.received <= fz.jf.max_end);
			if (fz.jf.have_last)
				FZ_CHECK(fz.jf.received <= fz.jf.scan_len);
			FZ_CHECK(fz.jf.n_ranges <= 64);
		}
		if (dp_raw_parse(p, len, &fz.raw) == 0) {
			size_t total = 0;
			for (unsigned i = 0; i < fz.raw.n_lines; i++)
				total += fz.raw.lines[i].length;
			for (int s = 0; s < 3; s++) {
				ssize_t placed = dp_raw_frame_copy(&fz.raw, fz_samplings[s], FZ_RAW_W,
								   FZ_RAW_H, fz.frame, (size_t)fsz[s]);
				fz_check_err((int)placed);
				FZ_CHECK(placed < 0 || (size_t)placed <= total);
			}
		}
	}
	int complete = dp_jpeg_frame_complete(&fz.jf);
	FZ_CHECK(complete == 0 || complete == 1);
	const uint8_t *img = NULL;
	size_t img_len = 0;
	rc = dp_jpeg_frame_finish(&fz.jf, &img, &img_len);
	fz_check_err(rc);
	if (rc == 0) {
		FZ_CHECK(complete == 1);
		FZ_CHECK(img_len >= 4 && fz_inside(img, img_len, fz.jpeg, sizeof fz.jpeg));
		FZ_CHECK(img[0] == 0xff && img[1] == 0xd8);                     /* SOI */
		FZ_CHECK(img[img_len - 2] == 0xff && img[img_len - 1] == 0xd9); /* EOI */
	}
}

/* ---- RTCP and shoal APP messages ---------------------------------------------------------- */

/* Walks a built single packet and returns it in *p. */
static void fz_walk_one(const uint8_t *b, ssize_t bl, struct dp_rtcp_pkt *p)
{
	FZ_CHECK(bl >= 4 && bl % 4 == 0);
	size_t off = 0;
	FZ_CHECK(dp_rtcp_next(b, (size_t)bl, &off, p) == 1);
	FZ_CHECK(off == (size_t)bl && p->total_len == (size_t)bl);
}

static void fz_rb_eq(const struct dp_rtcp_rb *a, const struct dp_rtcp_rb *b)
{
	FZ_CHECK(a->ssrc == b->ssrc && a->fraction_lost == b->fraction_lost &&
		 a->cum_lost == b->cum_lost && a->ext_high_seq == b->ext_high_seq &&
		 a->jitter == b->jitter && a->lsr == b->lsr && a->dlsr == b->dlsr);
}

static void fz_app_eq(const struct dp_app_msg *a, const struct dp_app_msg *b)
{
	FZ_CHECK(a->kind == b->kind && a->ssrc == b->ssrc);
	switch (a->kind) {
	case DP_APP_REGISTER: {
		const struct dp_app_register *x = &a->u.reg, *y = &b->u.reg;
		FZ_CHECK(x->slo_ms == y->slo_ms && x->fps_x100 == y->fps_x100 &&
			 x->media_port == y->media_port && x->formats == y->formats &&
			 x->n_res == y->n_res && x->n_res <= DP_APP_MAX_RES);
		for (unsigned i = 0; i < x->n_res; i++)
			FZ_CHECK(x->res[i].width == y->res[i].width && x->res[i].height == y->res[i].height);
		break;
	}
	case DP_APP_REPORT:
		FZ_CHECK(a->u.report.bw_kbps == b->u.report.bw_kbps &&
			 a->u.report.rtt_us == b->u.report.rtt_us &&
			 a->u.report.frames_sent == b->u.report.frames_sent &&
			 a->u.report.results_rcvd == b->u.report.results_rcvd);
		break;
	case DP_APP_ASSIGN: {
		const struct dp_app_assign *x = &a->u.assign, *y = &b->u.assign;
		FZ_CHECK(x->epoch == y->epoch && memcmp(x->family, y->family, DP_APP_VARIANT_LEN) == 0 &&
			 x->variant == y->variant && x->width == y->width && x->height == y->height &&
			 x->target_bytes == y->target_bytes && x->fps_x100 == y->fps_x100 &&
			 x->format == y->format && x->served == y->served && x->reason == y->reason);
		break;
	}
	case DP_APP_RESULT: {
		const struct dp_app_result *x = &a->u.result, *y = &b->u.result;
		FZ_CHECK(x->rtp_ts == y->rtp_ts && x->variant == y->variant && x->n_det == y->n_det &&
			 x->server_us == y->server_us && x->n_det <= DP_APP_MAX_DET);
		for (unsigned i = 0; i < x->n_det; i++)
			FZ_CHECK(x->det[i].cls == y->det[i].cls && x->det[i].score == y->det[i].score &&
				 x->det[i].x == y->det[i].x && x->det[i].y == y->det[i].y &&
				 x->det[i].w == y->det[i].w && x->det[i].h == y->det[i].h);
		break;
	}
	case DP_APP_DROP:
		FZ_CHECK(a->u.drop.rtp_ts == b->u.drop.rtp_ts && a->u.drop.reason == b->u.drop.reason);
		break;
	default:
		__builtin_trap(); /* the parser accepted an unknown kind */
	}
}

static void fz_rtcp_one(const struct dp_rtcp_pkt *p)
{
	struct dp_rtcp_pkt q;
	ssize_t bl;
	int rc;

	rc = dp_rtcp_sr_parse(p, &fz.sr);
	fz_check_err(rc);
	if (rc == 0) {
		FZ_CHECK(p->pt == DP_RTCP_PT_SR && fz.sr.n_rb <= DP_RTCP_MAX_RB);
		bl = dp_rtcp_sr_build(fz.out, sizeof fz.out, &fz.sr);
		fz_walk_one(fz.out, bl, &q);
		FZ_CHECK(dp_rtcp_sr_parse(&q, &fz.sr2) == 0);
		FZ_CHECK(fz.sr2.ssrc == fz.sr.ssrc && fz.sr2.ntp == fz.sr.ntp &&
			 fz.sr2.rtp_ts == fz.sr.rtp_ts && fz.sr2.pkt_count == fz.sr.pkt_count &&
			 fz.sr2.octet_count == fz.sr.octet_count && fz.sr2.n_rb == fz.sr.n_rb);
		for (unsigned i = 0; i < fz.sr.n_rb; i++)
			fz_rb_eq(&fz.sr.rb[i], &fz.sr2.rb[i]);
	}
	rc = dp_rtcp_rr_parse(p, &fz.rr);
	fz_check_err(rc);
	if (rc == 0) {
		FZ_CHECK(p->pt == DP_RTCP_PT_RR && fz.rr.n_rb <= DP_RTCP_MAX_RB);
		bl = dp_rtcp_rr_build(fz.out, sizeof fz.out, &fz.rr);
		fz_walk_one(fz.out, bl, &q);
		FZ_CHECK(dp_rtcp_rr_parse(&q, &fz.rr2) == 0);
		FZ_CHECK(fz.rr2.ssrc == fz.rr.ssrc && fz.rr2.n_rb == fz.rr.n_rb);
		for (unsigned i = 0; i < fz.rr.n_rb; i++)
			fz_rb_eq(&fz.rr.rb[i], &fz.rr2.rb[i]);
	}
	rc = dp_rtcp_bye_parse(p, &fz.bye);
	fz_check_err(rc);
	if (rc == 0) {
		FZ_CHECK(p->pt == DP_RTCP_PT_BYE && fz.bye.n_ssrc <= 31);
		FZ_CHECK(fz.bye.reason[fz.bye.reason_len] == '\0');
		bl = dp_rtcp_bye_build(fz.out, sizeof fz.out, &fz.bye);
		fz_walk_one(fz.out, bl, &q);
		FZ_CHECK(dp_rtcp_bye_parse(&q, &fz.bye2) == 0);
		FZ_CHECK(fz.bye2.n_ssrc == fz.bye.n_ssrc && fz.bye2.reason_len == fz.bye.reason_len);
		for (unsigned i = 0; i < fz.bye.n_ssrc; i++)
			FZ_CHECK(fz.bye2.ssrc[i] == fz.bye.ssrc[i]);
		FZ_CHECK(memcmp(fz.bye2.reason, fz.bye.reason, fz.bye.reason_len) == 0);
	}
	rc = dp_app_parse(p, &fz.app);
	fz_check_err(rc);
	if (rc == 0) {
		FZ_CHECK(p->pt == DP_RTCP_PT_APP);
		ssize_t want = dp_app_size(&fz.app);
		bl = dp_app_build(fz.out, sizeof fz.out, &fz.app);
		FZ_CHECK(want == bl);
		fz_walk_one(fz.out, bl, &q);
		FZ_CHECK(dp_app_parse(&q, &fz.app2) == 0);
		fz_app_eq(&fz.app, &fz.app2);
	}
}

static void fz_rtcp(const uint8_t *d, size_t n)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	int rc;
	unsigned steps = 0;
	while ((rc = dp_rtcp_next(d, n, &off, &p)) == 1) {
		FZ_CHECK(++steps <= n / 4);
		FZ_CHECK(off <= n && p.total_len >= 4 && p.total_len % 4 == 0);
		FZ_CHECK(p.body_len + 4 <= p.total_len && fz_inside(p.body, p.body_len, d, n));
		fz_rtcp_one(&p);
	}
	fz_check_err(rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FZ_MAX_INPUT)
		return 0;
	fz_rtp(data, size);
	fz_seq(data, size);
	fz_jpeg_payload(data, size);
	fz_qtables(data, size);
	fz_raw_payload(data, size);
	fz_reassemble(data, size);
	fz_rtcp(data, size);
	return 0;
}
