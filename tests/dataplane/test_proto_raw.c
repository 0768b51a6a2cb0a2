/* RFC 4175 raw video: payload/line headers and byte-exact frame rebuild for 8-bit 4:2:0
 * (I420 staging), 4:2:2 (UYVY) and RGB. */
#include "harness.h"

#include "dataplane/dp_proto.h"

#define MAXPKT 512

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return rng >> 8;
}

/* The pgroup at pixel (x, y) of a staging frame, written out independently of the codec. */
static void pgroup_get(enum dp_raw_sampling s, const uint8_t *fr, unsigned w, unsigned h,
		       unsigned x, unsigned y, uint8_t *g)
{
	if (s == DP_RAW_SAMPLING_YCBCR420) {
		const uint8_t *u = fr + w * h, *v = u + (w / 2) * (h / 2);
		g[0] = fr[y * w + x];
		g[1] = fr[y * w + x + 1];
		g[2] = fr[(y + 1) * w + x];
		g[3] = fr[(y + 1) * w + x + 1];
		g[4] = u[(y / 2) * (w / 2) + x / 2];
		g[5] = v[(y / 2) * (w / 2) + x / 2];
	} else if (s == DP_RAW_SAMPLING_YCBCR422) {
		memcpy(g, fr + y * w * 2 + x * 2, 4); /* U Y0 V Y1 */
	} else {
		memcpy(g, fr + y * w * 3 + x * 3, 3);
	}
}

/* Packetizes a frame the way rtpvrawpay does: segments fill each packet, a line that does
 * not fit continues in the next packet at a pixel offset. Returns the packet count. */
static unsigned packetize(enum dp_raw_sampling s, const uint8_t *fr, unsigned w, unsigned h,
			  size_t mtu, uint8_t pkts[][MAXPKT], size_t *lens, unsigned maxp)
{
	unsigned b, xp, yp, np = 0;
	dp_raw_pgroup(s, &b, &xp, &yp);
	unsigned x = 0, y = 0;
	static uint8_t segbuf[DP_RAW_MAX_LINES][MAXPKT];
	while (y < h && np < maxp) {
		struct dp_raw_line lines[DP_RAW_MAX_LINES];
		unsigned n = 0;
		size_t used = 2;
		while (y < h && n < DP_RAW_MAX_LINES && used + 6 + b <= mtu) {
			size_t room = (mtu - used - 6) / b;
			unsigned left = (w - x) / xp;
			unsigned take = left < room ? left : (unsigned)room;
			for (unsigned k = 0; k < take; k++)
				pgroup_get(s, fr, w, h, x + k * xp, y, segbuf[n] + k * b);
			lines[n] = (struct dp_raw_line){.length = (uint16_t)(take * b),
							.line = (uint16_t)y, .offset = (uint16_t)x,
							.data = segbuf[n]};
			used += 6 + take * b;
			n++;
			x += take * xp;
			if (x == w) {
				x = 0;
				y += yp;
			}
		}
		ssize_t r = dp_raw_build(pkts[np], MAXPKT, (uint16_t)np, lines, n);
		if (r < 0)
			return 0;
		lens[np++] = (size_t)r;
	}
	return np;
}

static int frame_roundtrip(enum dp_raw_sampling s, unsigned w, unsigned h, size_t mtu)
{
	static uint8_t src[64 * 48 * 3], dst[64 * 48 * 3], pkts[400][MAXPKT];
	static size_t lens[400];
	static unsigned order[400];
	ssize_t fsz = dp_raw_frame_size(s, w, h);
	ST_CHECK(fsz > 0 && (size_t)fsz <= sizeof src);
	for (ssize_t i = 0; i < fsz; i++)
		src[i] = (uint8_t)rnd();
	memset(dst, 0, sizeof dst);
	unsigned np = packetize(s, src, w, h, mtu, pkts, lens, 400);
	ST_CHECK(np > 1);
	for (unsigned i = 0; i < np; i++)
		order[i] = i;
	for (unsigned i = np - 1; i > 0; i--) { /* any arrival order */
		unsigned j = rnd() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	size_t placed = 0;
	int multi = 0;
	for (unsigned i = 0; i < np; i++) {
		static struct dp_raw_hdr hdr;
		ST_CHECK_EQ(dp_raw_parse(pkts[order[i]], lens[order[i]], &hdr), 0);
		ST_CHECK_EQ(hdr.ext_seq, order[i]);
		multi |= hdr.n_lines > 1;
		ssize_t r = dp_raw_frame_copy(&hdr, s, w, h, dst, (size_t)fsz);
		ST_CHECK(r > 0);
		placed += (size_t)r;
	}
	ST_CHECK(multi); /* some packets carried continuation headers */
	ST_CHECK_EQ(placed, fsz);
	ST_CHECK_MEM(dst, src, (size_t)fsz);
	return ST_PASS;
}

static int test_raw_frame_420_i420_byte_exact(void)
{
	ST_CHECK_EQ(dp_raw_frame_size(DP_RAW_SAMPLING_YCBCR420, 36, 10), 540);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_YCBCR420, 36, 10, 100), ST_PASS);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_YCBCR420, 64, 48, 300), ST_PASS);
	/* one hand-made pgroup lands where I420 expects it */
	static uint8_t fr[4 * 4 * 3 / 2];
	static const uint8_t g[6] = {1, 2, 3, 4, 5, 6};
	struct dp_raw_line l = {.length = 6, .line = 2, .offset = 2, .data = g};
	uint8_t pkt[32];
	static struct dp_raw_hdr hdr;
	ssize_t n = dp_raw_build(pkt, sizeof pkt, 0, &l, 1);
	ST_CHECK_EQ(n, 14);
	ST_CHECK_EQ(dp_raw_parse(pkt, (size_t)n, &hdr), 0);
	ST_CHECK_EQ(dp_raw_frame_copy(&hdr, DP_RAW_SAMPLING_YCBCR420, 4, 4, fr, sizeof fr), 6);
	ST_CHECK_EQ(fr[2 * 4 + 2], 1);
	ST_CHECK_EQ(fr[2 * 4 + 3], 2);
	ST_CHECK_EQ(fr[3 * 4 + 2], 3);
	ST_CHECK_EQ(fr[3 * 4 + 3], 4);
	ST_CHECK_EQ(fr[16 + 1 * 2 + 1], 5); /* Cb plane, row 1, column 1 */
	ST_CHECK_EQ(fr[20 + 1 * 2 + 1], 6); /* Cr plane */
	return ST_PASS;
}

static int test_raw_frame_422_uyvy_byte_exact(void)
{
	ST_CHECK_EQ(dp_raw_frame_size(DP_RAW_SAMPLING_YCBCR422, 36, 10), 720);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_YCBCR422, 36, 10, 150), ST_PASS);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_YCBCR422, 64, 48, 400), ST_PASS);
	return ST_PASS;
}

static int test_raw_frame_rgb_byte_exact(void)
{
	ST_CHECK_EQ(dp_raw_frame_size(DP_RAW_SAMPLING_RGB, 35, 9), 35 * 9 * 3);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_RGB, 35, 9, 100), ST_PASS);
	ST_CHECK_EQ(frame_roundtrip(DP_RAW_SAMPLING_RGB, 64, 48, 500), ST_PASS);
	return ST_PASS;
}

static int copy_rc(const struct dp_raw_line *l, unsigned n, enum dp_raw_sampling s, unsigned w,
		   unsigned h, uint8_t *fr, size_t frlen)
{
	uint8_t pkt[MAXPKT];
	static struct dp_raw_hdr hdr;
	ssize_t len = dp_raw_build(pkt, sizeof pkt, 0, l, n);
	if (len < 0)
		return (int)len;
	int rc = dp_raw_parse(pkt, (size_t)len, &hdr);
	if (rc < 0)
		return rc;
	return (int)dp_raw_frame_copy(&hdr, s, w, h, fr, frlen);
}

static int test_raw_malformed_lines_refused(void)
{
	static uint8_t data[256], fr[16 * 8 * 3], zero[16 * 8 * 3];
	memset(data, 0xab, sizeof data);
	const enum dp_raw_sampling s420 = DP_RAW_SAMPLING_YCBCR420;
	struct dp_raw_line ok = {.length = 12, .line = 2, .offset = 4, .data = data};
	ST_CHECK_EQ(copy_rc(&ok, 1, s420, 16, 8, fr, sizeof fr), 12);
	memset(fr, 0, sizeof fr);
	struct dp_raw_line l[2] = {ok, ok};
	l[1].offset = 14; /* 2 pgroups = 4 pixels from 14: past width 16 */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	ST_CHECK_MEM(fr, zero, sizeof fr); /* nothing written, first segment included */
	l[1] = ok;
	l[1].line = 7; /* odd line for 4:2:0 */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	l[1].line = 8; /* past the height */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	l[1] = ok;
	l[1].length = 7; /* not a whole pgroup */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	l[1] = ok;
	l[1].offset = 3; /* not on a pgroup boundary */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	l[1] = ok;
	l[1].field = 1; /* interlaced: not supported */
	ST_CHECK_EQ(copy_rc(l, 2, s420, 16, 8, fr, sizeof fr), DP_PROTO_ERR_LINE);
	ST_CHECK_MEM(fr, zero, sizeof fr);
	ST_CHECK_EQ(copy_rc(&ok, 1, s420, 16, 8, fr, 16 * 8 * 3 / 2 - 1), DP_PROTO_ERR_NOSPACE);
	ST_CHECK_EQ(copy_rc(&ok, 1, s420, 15, 8, fr, sizeof fr), DP_PROTO_ERR_INVALID);
	ST_CHECK_EQ(copy_rc(&ok, 1, DP_RAW_SAMPLING_RGB, 16, 8, fr, sizeof fr), 12);

	/* payload header: truncated line headers, segment lengths past the end */
	uint8_t pkt[64];
	static struct dp_raw_hdr hdr;
	l[0] = ok;
	l[1] = ok;
	ssize_t n = dp_raw_build(pkt, sizeof pkt, 0, l, 2);
	ST_CHECK_EQ(n, 2 + 12 + 24);
	ST_CHECK_EQ(pkt[6] & 0x80, 0x80);
	ST_CHECK_EQ(pkt[12] & 0x80, 0);
	for (size_t len = 0; len < (size_t)n; len++)
		ST_CHECK_EQ(dp_raw_parse(pkt, len, &hdr),
			    len < 14 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_LENGTH);
	ST_CHECK_EQ(dp_raw_parse(pkt, (size_t)n, &hdr), 0);
	pkt[3] = 13; /* first segment claims 13 bytes: the second runs past the end */
	ST_CHECK_EQ(dp_raw_parse(pkt, (size_t)n, &hdr), DP_PROTO_ERR_LENGTH);
	/* more line headers than DP_RAW_MAX_LINES */
	static uint8_t big[2 + 6 * (DP_RAW_MAX_LINES + 1)];
	memset(big, 0, sizeof big);
	for (unsigned i = 0; i <= DP_RAW_MAX_LINES; i++)
		big[2 + 6 * i + 4] = 0x80;
	ST_CHECK_EQ(dp_raw_parse(big, sizeof big, &hdr), DP_PROTO_ERR_LINE);
	/* builder */
	for (size_t cap = 0; cap < 20; cap++)
		ST_CHECK_EQ(dp_raw_build(pkt, cap, 0, &ok, 1), DP_PROTO_ERR_NOSPACE);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_raw_frame_420_i420_byte_exact), ST_CASE(test_raw_frame_422_uyvy_byte_exact),
	ST_CASE(test_raw_frame_rgb_byte_exact), ST_CASE(test_raw_malformed_lines_refused))
