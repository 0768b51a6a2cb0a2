/* RFC 2435 JPEG over RTP: headers, Q tables against libjpeg-turbo's, and frame reassembly
 * checked end to end: images encoded by libjpeg-turbo are split into RTP/JPEG packets here,
 * delivered shuffled and duplicated, rebuilt by the codec and decoded by tjDecompress2. */
#include <math.h>
#include <stdio.h>

#include <jpeglib.h>
#include <turbojpeg.h>

#include "harness.h"

#include "dataplane/dp_proto.h"

#define MAXPKTS 256
#define PKTSZ 1500
#define FRAMECAP (DP_JPEG_HEADERS_MAX + 256 * 1024)

static uint32_t rng = 777;
static uint32_t rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return rng >> 8;
}

/* A test picture with smooth gradients, edges and some noise. */
static void make_image(uint8_t *rgb, int w, int h)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = rgb + 3 * (y * w + x);
			int box = (x / 24 + y / 16) & 1;
			p[0] = (uint8_t)(x * 255 / w);
			p[1] = (uint8_t)(box ? 200 : 40 + y);
			p[2] = (uint8_t)((x * y) / 32 + (rnd() & 3));
		}
}

/* Encodes with libjpeg (standard Huffman tables: optimize_coding stays off). */
static unsigned char *encode_jpeglib(const uint8_t *rgb, int w, int h, int hs, int vs,
				     int quality, int restart, int one_table, unsigned long *len)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	unsigned char *out = NULL;
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_mem_dest(&ci, &out, len);
	ci.image_width = (JDIMENSION)w;
	ci.image_height = (JDIMENSION)h;
	ci.input_components = 3;
	ci.in_color_space = JCS_RGB;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, quality, TRUE);
	ci.comp_info[0].h_samp_factor = hs;
	ci.comp_info[0].v_samp_factor = vs;
	ci.restart_interval = (unsigned)restart;
	if (one_table) /* Cb and Cr quantized with the luma table, as ffmpeg's encoder does */
		ci.comp_info[1].quant_tbl_no = ci.comp_info[2].quant_tbl_no = 0;
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	return out;
}

/* Encodes with TurboJPEG's tjCompress2 (no optimized Huffman tables unless asked for: flags 0
 * keeps the standard ones, which is what RFC 2435 receivers assume). */
static unsigned char *encode_tj(const uint8_t *rgb, int w, int h, int vs, int quality,
				unsigned long *len)
{
	tjhandle t = tjInitCompress();
	unsigned char *out = NULL;
	if (!t)
		return NULL;
	int samp = vs == 2 ? TJSAMP_420 : TJSAMP_422;
	int rc = tjCompress2(t, rgb, w, 0, h, TJPF_RGB, &out, len, samp, quality, 0);
	tjDestroy(t);
	if (rc != 0) {
		tjFree(out);
		return NULL;
	}
	return out;
}

/* What the test needs from a baseline JFIF: its tables, sampling, restart interval, scan. */
struct jinfo {
	uint8_t qt[2][64];
	int have_qt[2];
	int hs, vs, dri, w, h;
	const uint8_t *scan;
	size_t scan_len;
};

static int jfif_split(const uint8_t *j, size_t len, struct jinfo *info)
{
	memset(info, 0, sizeof(*info));
	if (len < 4 || j[0] != 0xff || j[1] != 0xd8)
		return -1;
	size_t off = 2;
	while (off + 4 <= len) {
		if (j[off] != 0xff)
			return -1;
		uint8_t m = j[off + 1];
		size_t sl = (size_t)j[off + 2] << 8 | j[off + 3];
		const uint8_t *s = j + off + 4;
		if (off + 2 + sl > len)
			return -1;
		if (m == 0xdb) {
			for (size_t k = 0; k + 65 <= sl - 2; k += 65) {
				if (s[k] >> 4 || (s[k] & 15) > 1)
					return -1;
				memcpy(info->qt[s[k] & 15], s + k + 1, 64);
				info->have_qt[s[k] & 15] = 1;
			}
		} else if (m == 0xc0) {
			info->h = s[1] << 8 | s[2];
			info->w = s[3] << 8 | s[4];
			info->hs = s[7] >> 4;
			info->vs = s[7] & 15;
		} else if (m == 0xdd) {
			info->dri = s[0] << 8 | s[1];
		} else if (m == 0xda) {
			info->scan = j + off + 2 + sl;
			/* the scan runs to the EOI at the end, which senders leave out */
			if (len < off + 2 + sl + 2 || j[len - 2] != 0xff || j[len - 1] != 0xd9)
				return -1;
			info->scan_len = len - 2 - (off + 2 + sl);
			return 0;
		}
		off += 2 + sl;
	}
	return -1;
}

struct pktset {
	uint8_t data[MAXPKTS][PKTSZ];
	size_t len[MAXPKTS];
	unsigned n;
};

/* Splits the scan into RTP packets carrying RFC 2435 payloads of at most chunk scan bytes.
 * q >= 128 sends the image's tables in-band (16-bit entries when wide16). */
static int packetize(const struct jinfo *ji, uint8_t q, int wide16, size_t chunk,
		     struct pktset *ps)
{
	uint8_t qt[256];
	size_t qtlen = 0;
	int ntab = ji->have_qt[1] ? 2 : 1;
	for (int t = 0; t < ntab; t++)
		for (int i = 0; i < 64; i++) {
			if (wide16)
				qt[qtlen++] = 0;
			qt[qtlen++] = ji->qt[t][i];
		}
	ps->n = 0;
	for (size_t off = 0; off < ji->scan_len; off += chunk) {
		if (ps->n == MAXPKTS)
			return -1;
		size_t n = ji->scan_len - off < chunk ? ji->scan_len - off : chunk;
		int last = off + n == ji->scan_len;
		struct dp_rtp_hdr rh = {0};
		rh.payload_type = DP_RTP_PT_JPEG;
		rh.marker = (uint8_t)last;
		rh.seq = (uint16_t)(65530 + ps->n);
		rh.timestamp = 900000;
		rh.ssrc = 0x5eed;
		uint8_t *p = ps->data[ps->n];
		ssize_t a = dp_rtp_build(p, PKTSZ, &rh);
		if (a < 0)
			return -1;
		struct dp_jpeg_hdr jh = {0};
		jh.frag_offset = (uint32_t)off;
		jh.type = (uint8_t)((ji->vs == 2 ? 1 : 0) | (ji->dri ? 64 : 0));
		jh.q = q;
		jh.width = (uint16_t)ji->w;
		jh.height = (uint16_t)ji->h;
		jh.restart_interval = (uint16_t)ji->dri;
		jh.restart_first = jh.restart_last = 1; /* packets not aligned to intervals */
		jh.restart_count = 0x3fff;
		jh.qt_precision = wide16 ? (uint8_t)((1 << ntab) - 1) : 0;
		jh.qt_len = (uint16_t)qtlen;
		jh.qt = qt;
		ssize_t b = dp_jpeg_build(p + a, PKTSZ - (size_t)a, &jh);
		if (b < 0 || (size_t)(a + b) + n > PKTSZ)
			return -1;
		memcpy(p + a + b, ji->scan + off, n);
		ps->len[ps->n++] = (size_t)(a + b) + n;
	}
	return 0;
}

/* Feeds packets (indices in order[]) through RTP and RFC 2435 parsing into f. */
static int feed(struct dp_jpeg_frame *f, const struct pktset *ps, const unsigned *order,
		unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct dp_rtp_hdr rh;
		struct dp_jpeg_hdr jh;
		int rc = dp_rtp_parse(ps->data[order[i]], ps->len[order[i]], &rh);
		if (rc < 0)
			return rc;
		rc = dp_jpeg_parse(rh.payload, rh.payload_len, &jh);
		if (rc < 0)
			return rc;
		rc = dp_jpeg_frame_add(f, &jh, rh.marker);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Shuffled order with dups extra duplicates appended at random places. */
static unsigned make_order(unsigned n, unsigned dups, unsigned *order)
{
	unsigned m = 0;
	for (unsigned i = 0; i < n; i++)
		order[m++] = i;
	for (unsigned i = 0; i < dups; i++)
		order[m++] = rnd() % n;
	for (unsigned i = m - 1; i > 0; i--) {
		unsigned j = rnd() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	return m;
}

static int decode(const uint8_t *jpg, size_t len, int w, int h, uint8_t *rgb)
{
	tjhandle t = tjInitDecompress();
	if (!t)
		return -1;
	int ww, hh, ss, cs;
	int rc = tjDecompressHeader3(t, jpg, (unsigned long)len, &ww, &hh, &ss, &cs);
	if (rc == 0 && (ww != w || hh != h))
		rc = -1;
	if (rc == 0)
		rc = tjDecompress2(t, jpg, (unsigned long)len, rgb, w, 0, h, TJPF_RGB, 0);
	if (rc != 0)
		fprintf(stderr, "tjDecompress: %s\n", tjGetErrorStr2(t));
	tjDestroy(t);
	return rc;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
	double se = 0;
	for (size_t i = 0; i < n; i++)
		se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
	return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 * (double)n / se);
}

static struct pktset pkts;
static uint8_t framebuf[FRAMECAP];
static struct dp_jpeg_frame frame;

/* Encodes, packetizes, delivers shuffled with duplicates, rebuilds, decodes, compares. */
static int use_tj; /* encode with tjCompress2 instead of the libjpeg API */

static int jpeg_roundtrip(int w, int h, int vs, int quality, uint8_t q, int wide16, int restart,
			  size_t chunk, int one_table)
{
	static uint8_t src[320 * 240 * 3], ref[320 * 240 * 3], got[320 * 240 * 3];
	static unsigned order[MAXPKTS * 2];
	size_t n = (size_t)w * h * 3;
	make_image(src, w, h);
	unsigned long jlen = 0;
	unsigned char *jpg =
		use_tj ? encode_tj(src, w, h, vs, quality, &jlen)
		       : encode_jpeglib(src, w, h, 2, vs, quality, restart, one_table, &jlen);
	ST_CHECK(jpg != NULL);
	struct jinfo ji;
	ST_CHECK_EQ(jfif_split(jpg, jlen, &ji), 0);
	ST_CHECK_EQ(ji.hs, 2);
	ST_CHECK_EQ(ji.vs, vs);
	ST_CHECK_EQ(ji.dri, restart);
	ST_CHECK(ji.have_qt[0] && ji.have_qt[1] == !one_table);
	ST_CHECK_EQ(decode(jpg, jlen, w, h, ref), 0);
	if (q < 128) { /* the RFC's tables are exactly the encoder's for this quality */
		uint8_t l[64], c[64];
		ST_CHECK_EQ(dp_jpeg_qtables(q, l, c), 0);
		ST_CHECK_MEM(l, ji.qt[0], 64);
		ST_CHECK_MEM(c, ji.qt[1], 64);
	}
	ST_CHECK_EQ(packetize(&ji, q, wide16, chunk, &pkts), 0);
	ST_CHECK(pkts.n >= 6);

	unsigned m = make_order(pkts.n, pkts.n / 3, order);
	ST_CHECK_EQ(dp_jpeg_frame_init(&frame, framebuf, sizeof framebuf), 0);
	ST_CHECK_EQ(feed(&frame, &pkts, order, m), 0);
	ST_CHECK(dp_jpeg_frame_complete(&frame));
	ST_CHECK_EQ(frame.received, ji.scan_len); /* duplicates not counted */
	ST_CHECK_EQ(frame.n_ranges, 1);
	const uint8_t *out;
	size_t outlen;
	ST_CHECK_EQ(dp_jpeg_frame_finish(&frame, &out, &outlen), 0);
	ST_CHECK(outlen > ji.scan_len + 500); /* SOI APP0 DQT SOF DHT SOS */
	ST_CHECK(out[0] == 0xff && out[1] == 0xd8 && out[outlen - 2] == 0xff &&
		 out[outlen - 1] == 0xd9);
	ST_CHECK_EQ(decode(out, outlen, w, h, got), 0);
	/* same scan, same tables: the decoder must produce the encoder's own picture */
	ST_CHECK_MEM(got, ref, n);
	double p = psnr(got, src, n);
	printf("  %dx%d %s q=%u%s%s%s: %u packets (+%u dups), scan %zu B, PSNR %.1f dB\n", w,
	       h, vs == 2 ? "4:2:0" : "4:2:2", q, wide16 ? " 16-bit tables" : "",
	       one_table ? " one table" : "",
	       restart ? " restart" : "", pkts.n, m - pkts.n, ji.scan_len, p);
	ST_CHECK(p > 25.0);
	if (use_tj)
		tjFree(jpg);
	else
		free(jpg);
	return ST_PASS;
}

static int test_jpeg_reassemble_tjcompress2_420_422(void)
{
	use_tj = 1;
	int rc = jpeg_roundtrip(160, 96, 2, 80, 255, 0, 0, 120, 0);
	if (rc == ST_PASS)
		rc = jpeg_roundtrip(160, 96, 1, 80, 255, 0, 0, 120, 0);
	if (rc == ST_PASS) /* libjpeg-turbo's quality 80 tables are the RFC's Q 80 */
		rc = jpeg_roundtrip(320, 240, 2, 80, 80, 0, 0, 1000, 0);
	use_tj = 0;
	return rc;
}

static int test_jpeg_reassemble_420_inband_tables_decodes(void)
{
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 2, 80, 255, 0, 0, 120, 0), ST_PASS);
	ST_CHECK_EQ(jpeg_roundtrip(152, 88, 2, 90, 128, 1, 0, 150, 0), ST_PASS);
	/* one in-band table shared by all components (ffmpeg's mjpeg sends that) */
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 2, 85, 255, 0, 0, 120, 1), ST_PASS);
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 2, 85, 255, 1, 0, 120, 1), ST_PASS);
	return ST_PASS;
}

static int test_jpeg_reassemble_422_inband_tables_decodes(void)
{
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 1, 80, 255, 0, 0, 120, 0), ST_PASS);
	ST_CHECK_EQ(jpeg_roundtrip(320, 240, 1, 75, 255, 1, 0, 1000, 0), ST_PASS);
	return ST_PASS;
}

static int test_jpeg_reassemble_q_tables_from_formula(void)
{
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 2, 80, 80, 0, 0, 150, 0), ST_PASS);
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 1, 30, 30, 0, 0, 100, 0), ST_PASS);
	return ST_PASS;
}

static int test_jpeg_reassemble_restart_markers(void)
{
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 2, 80, 255, 0, 2, 120, 0), ST_PASS);
	ST_CHECK_EQ(jpeg_roundtrip(160, 96, 1, 85, 85, 0, 5, 150, 0), ST_PASS);
	return ST_PASS;
}

static int test_jpeg_qtables_match_libjpeg_every_q(void)
{
	uint8_t rgb[16 * 16 * 3];
	make_image(rgb, 16, 16);
	for (int q = 1; q <= 99; q++) {
		unsigned long len = 0;
		unsigned char *j = encode_jpeglib(rgb, 16, 16, 2, 2, q, 0, 0, &len);
		struct jinfo ji;
		ST_CHECK_EQ(jfif_split(j, len, &ji), 0);
		uint8_t l[64], c[64];
		ST_CHECK_EQ(dp_jpeg_qtables((uint8_t)q, l, c), 0);
		ST_CHECK_MEM(l, ji.qt[0], 64);
		ST_CHECK_MEM(c, ji.qt[1], 64);
		free(j);
	}
	uint8_t l[64], c[64];
	/* RFC 2435 appendix A at Q 50: the T.81 tables themselves, in zig-zag order */
	ST_CHECK_EQ(dp_jpeg_qtables(50, l, c), 0);
	ST_CHECK(l[0] == 16 && l[1] == 11 && l[2] == 12 && l[3] == 14 && l[63] == 99);
	ST_CHECK(c[0] == 17 && c[1] == 18 && c[2] == 18 && c[63] == 99);
	ST_CHECK_EQ(dp_jpeg_qtables(0, l, c), DP_PROTO_ERR_INVALID);
	ST_CHECK_EQ(dp_jpeg_qtables(100, l, c), DP_PROTO_ERR_INVALID);
	ST_CHECK_EQ(dp_jpeg_qtables(255, l, c), DP_PROTO_ERR_INVALID);
	return ST_PASS;
}

/* One small image's packets, for the failure cases. */
static int small_packets(struct jinfo *ji, unsigned char **jpg)
{
	static uint8_t src[160 * 96 * 3];
	make_image(src, 160, 96);
	unsigned long jlen;
	*jpg = encode_jpeglib(src, 160, 96, 2, 2, 80, 0, 0, &jlen);
	if (jfif_split(*jpg, jlen, ji) < 0)
		return -1;
	return packetize(ji, 255, 0, 200, &pkts);
}

static int test_jpeg_missing_fragment_incomplete(void)
{
	static unsigned order[MAXPKTS];
	struct jinfo ji;
	unsigned char *jpg;
	ST_CHECK_EQ(small_packets(&ji, &jpg), 0);
	const uint8_t *out;
	size_t outlen;
	for (unsigned miss = 0; miss < pkts.n; miss++) {
		unsigned m = 0;
		for (unsigned i = 0; i < pkts.n; i++)
			if (i != miss)
				order[m++] = i;
		ST_CHECK_EQ(dp_jpeg_frame_init(&frame, framebuf, sizeof framebuf), 0);
		ST_CHECK_EQ(feed(&frame, &pkts, order, m), 0);
		ST_CHECK(!dp_jpeg_frame_complete(&frame));
		ST_CHECK_EQ(dp_jpeg_frame_finish(&frame, &out, &outlen), DP_PROTO_ERR_INCOMPLETE);
	}
	free(jpg);
	return ST_PASS;
}

static int test_jpeg_overlap_and_inconsistent_refused(void)
{
	struct jinfo ji;
	unsigned char *jpg;
	ST_CHECK_EQ(small_packets(&ji, &jpg), 0);
	struct dp_rtp_hdr rh;
	struct dp_jpeg_hdr h0, h1, x;
	ST_CHECK_EQ(dp_rtp_parse(pkts.data[0], pkts.len[0], &rh), 0);
	ST_CHECK_EQ(dp_jpeg_parse(rh.payload, rh.payload_len, &h0), 0);
	ST_CHECK_EQ(h0.qt_len, 128);
	ST_CHECK_EQ(dp_rtp_parse(pkts.data[1], pkts.len[1], &rh), 0);
	ST_CHECK_EQ(dp_jpeg_parse(rh.payload, rh.payload_len, &h1), 0);
	ST_CHECK_EQ(h1.frag_offset, 200);
	ST_CHECK_EQ(dp_jpeg_frame_init(&frame, framebuf, sizeof framebuf), 0);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h1, 0), 0);
	/* overlapping [100, 300) */
	x = h1;
	x.frag_offset = 100;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	x.frag_offset = 250;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	/* a "duplicate" with other bytes */
	x = h1;
	x.data = h0.data;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	/* frame parameters that disagree */
	x = h0;
	x.width = 168;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	x = h0;
	x.type = 0;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	x = h0;
	x.q = 254;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	ST_CHECK_EQ(frame.received, 200);
	ST_CHECK_EQ(frame.n_ranges, 1);
	/* first fragment: Q >= 128 without tables, then with tables, then other tables */
	x = h0;
	x.qt_len = 0;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_QTABLE);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h0, 0), 0);
	ST_CHECK_EQ(frame.n_ranges, 1); /* [0,200) joined [200,400) */
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h0, 0), 0); /* a true duplicate */
	ST_CHECK_EQ(frame.received, 400);
	uint8_t other[128];
	memcpy(other, h0.qt, 128);
	other[5] ^= 1;
	x = h0;
	x.qt = other;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 0), DP_PROTO_ERR_FRAGMENT);
	/* marker packet ending before bytes already received */
	x = h0;
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &x, 1), DP_PROTO_ERR_FRAGMENT);
	/* fragment beyond the marker packet's end */
	ST_CHECK_EQ(dp_jpeg_frame_init(&frame, framebuf, sizeof framebuf), 0);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h0, 1), 0);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h1, 0), DP_PROTO_ERR_FRAGMENT);
	ST_CHECK(dp_jpeg_frame_complete(&frame)); /* one-packet frame [0, 200) */
	/* a frame buffer too small for the fragment */
	uint8_t small[DP_JPEG_HEADERS_MAX + 300];
	ST_CHECK_EQ(dp_jpeg_frame_init(&frame, small, sizeof small), 0);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h0, 0), 0);
	ST_CHECK_EQ(dp_jpeg_frame_add(&frame, &h1, 0), DP_PROTO_ERR_NOSPACE);
	ST_CHECK_EQ(dp_jpeg_frame_init(&frame, small, DP_JPEG_HEADERS_MAX + 1),
		    DP_PROTO_ERR_NOSPACE);
	free(jpg);
	return ST_PASS;
}

static int test_jpeg_header_malformed_each_code(void)
{
	uint8_t qt[128];
	memset(qt, 7, sizeof qt);
	struct dp_jpeg_hdr h = {0};
	h.type = 65;
	h.q = 255;
	h.width = 320;
	h.height = 240;
	h.restart_interval = 10;
	h.restart_first = 1;
	h.restart_count = 0x1234;
	h.qt_len = 128;
	h.qt = qt;
	uint8_t pkt[256];
	ssize_t n = dp_jpeg_build(pkt, sizeof pkt, &h);
	ST_CHECK_EQ(n, 8 + 4 + 4 + 128);
	memcpy(pkt + n, "scan", 4);
	struct dp_jpeg_hdr p;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n + 4, &p), 0);
	ST_CHECK_EQ(p.type, 65);
	ST_CHECK_EQ(p.width, 320);
	ST_CHECK_EQ(p.height, 240);
	ST_CHECK_EQ(p.restart_interval, 10);
	ST_CHECK_EQ(p.restart_first, 1);
	ST_CHECK_EQ(p.restart_last, 0);
	ST_CHECK_EQ(p.restart_count, 0x1234);
	ST_CHECK_EQ(p.qt_len, 128);
	ST_CHECK_MEM(p.qt, qt, 128);
	ST_CHECK_EQ(p.data_len, 4);
	ST_CHECK_MEM(p.data, "scan", 4);
	/* truncated at every length */
	for (size_t l = 0; l < (size_t)n; l++)
		ST_CHECK_EQ(dp_jpeg_parse(pkt, l, &p),
			    l < 16 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_QTABLE);
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), 0);
	ST_CHECK_EQ(p.data_len, 0);
	/* later fragments carry no table header */
	h.frag_offset = 1000;
	ST_CHECK_EQ(dp_jpeg_build(pkt, sizeof pkt, &h), 12);
	ST_CHECK_EQ(dp_jpeg_parse(pkt, 12, &p), 0);
	ST_CHECK_EQ(p.frag_offset, 1000);
	ST_CHECK_EQ(p.qt_len, 0);
	/* table length that is no whole number of tables, or above four 16-bit tables */
	h.frag_offset = 0;
	n = dp_jpeg_build(pkt, sizeof pkt, &h);
	pkt[15] = 100;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_QTABLE);
	pkt[13] = 1; /* table 0 16-bit: 128 + 64 bytes expected for two tables */
	pkt[15] = 128;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), 0); /* one 16-bit table is well-formed */
	pkt[13] = 2; /* table 0 8-bit, table 1 16-bit: 64 + 128 bytes, not 128 */
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_QTABLE);
	struct dp_jpeg_frame f;
	uint8_t fb[DP_JPEG_HEADERS_MAX + 64];
	ST_CHECK_EQ(dp_jpeg_frame_init(&f, fb, sizeof fb), 0);
	h.qt_len = 100; /* a hand-made header is checked by the reassembler too */
	ST_CHECK_EQ(dp_jpeg_frame_add(&f, &h, 0), DP_PROTO_ERR_QTABLE);
	h.qt_len = 128;
	/* field values */
	pkt[13] = 0;
	pkt[4] = 2;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_TYPE);
	pkt[4] = 128;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_TYPE);
	pkt[4] = 65;
	pkt[5] = 0;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_INVALID);
	pkt[5] = 100;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_INVALID);
	pkt[5] = 255;
	pkt[6] = 0;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), DP_PROTO_ERR_INVALID);
	pkt[6] = 40;
	ST_CHECK_EQ(dp_jpeg_parse(pkt, (size_t)n, &p), 0);
	/* builder refusals */
	h.width = 2048;
	ST_CHECK_EQ(dp_jpeg_build(pkt, sizeof pkt, &h), DP_PROTO_ERR_INVALID);
	h.width = 321;
	ST_CHECK_EQ(dp_jpeg_build(pkt, sizeof pkt, &h), DP_PROTO_ERR_INVALID);
	h.width = 320;
	h.qt_len = 100;
	ST_CHECK_EQ(dp_jpeg_build(pkt, sizeof pkt, &h), DP_PROTO_ERR_QTABLE);
	h.qt_len = 128;
	for (size_t cap = 0; cap < 144; cap++)
		ST_CHECK_EQ(dp_jpeg_build(pkt, cap, &h), DP_PROTO_ERR_NOSPACE);
	return ST_PASS;
}

/* dp_jfif_split (sender side) agrees with the test's own JFIF walk on libjpeg-turbo output,
 * and refuses what RFC 2435 cannot carry. */
static int test_jfif_split_matches_and_refuses(void)
{
	static uint8_t src[320 * 240 * 3];
	make_image(src, 320, 240);
	for (int vs = 1; vs <= 2; vs++) {
		unsigned long len = 0;
		unsigned char *jpg = encode_tj(src, 320, 240, vs, 75, &len);
		ST_CHECK(jpg != NULL);
		struct jinfo ji;
		struct dp_jfif_info fi;
		ST_CHECK_EQ(jfif_split(jpg, len, &ji), 0);
		ST_CHECK_EQ(dp_jfif_split(jpg, len, &fi), DP_PROTO_OK);
		ST_CHECK_EQ(fi.width, 320);
		ST_CHECK_EQ(fi.height, 240);
		ST_CHECK_EQ(fi.type, vs == 2 ? 1 : 0);
		ST_CHECK_EQ(fi.n_qt, 2);
		ST_CHECK_MEM(fi.qt[0], ji.qt[0], 64);
		ST_CHECK_MEM(fi.qt[1], ji.qt[1], 64);
		ST_CHECK(fi.scan == ji.scan);
		ST_CHECK_EQ(fi.scan_len, ji.scan_len);
		/* every cut is refused, none crashes */
		const unsigned long scan_at = (unsigned long)(fi.scan - jpg);
		for (unsigned long cut = 0; cut < scan_at; cut++)
			ST_CHECK(dp_jfif_split(jpg, cut, &fi) < 0);
		tjFree(jpg);
	}
	/* progressive, grayscale and 4:4:4 cannot be carried */
	tjhandle t = tjInitCompress();
	const int samp[] = {TJSAMP_GRAY, TJSAMP_444, TJSAMP_420};
	const int flags[] = {0, 0, TJFLAG_PROGRESSIVE};
	for (int k = 0; k < 3; k++) {
		unsigned char *out = NULL;
		unsigned long len = 0;
		ST_CHECK_EQ(tjCompress2(t, src, 320, 0, 240, TJPF_RGB, &out, &len, samp[k], 75,
					flags[k]), 0);
		struct dp_jfif_info fi;
		ST_CHECK_EQ(dp_jfif_split(out, len, &fi), DP_PROTO_ERR_TYPE);
		tjFree(out);
	}
	tjDestroy(t);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_jpeg_reassemble_tjcompress2_420_422),
	ST_CASE(test_jpeg_reassemble_420_inband_tables_decodes),
	ST_CASE(test_jpeg_reassemble_422_inband_tables_decodes),
	ST_CASE(test_jpeg_reassemble_q_tables_from_formula),
	ST_CASE(test_jpeg_reassemble_restart_markers),
	ST_CASE(test_jpeg_qtables_match_libjpeg_every_q),
	ST_CASE(test_jpeg_missing_fragment_incomplete),
	ST_CASE(test_jpeg_overlap_and_inconsistent_refused),
	ST_CASE(test_jpeg_header_malformed_each_code), ST_CASE(test_jfif_split_matches_and_refuses))
