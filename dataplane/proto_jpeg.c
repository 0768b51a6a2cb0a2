/* RFC 2435 JPEG over RTP: payload headers, the Q-factor quantization tables, and frame
 * reassembly that rebuilds a complete baseline JFIF image (ITU T.81) from the scan data. */
#include <string.h>

#include "dataplane/dp_proto.h"
#include "dataplane/proto_be.h"

/* ---- constant tables from ITU T.81 ------------------------------------------------------ */

/* Annex K, table K.1 and K.2: example luminance and chrominance quantization tables, in
 * natural (row-major) order. */
static const uint8_t jpeg_luma_q[64] = {
	16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,
	14, 13, 16, 24, 40,  57,  69,  56,  14, 17, 22, 29, 51,  87,  80,  62,
	18, 22, 37, 56, 68,  109, 103, 77,  24, 35, 55, 64, 81,  104, 113, 92,
	49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
};
static const uint8_t jpeg_chroma_q[64] = {
	17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
	24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
};

/* Figure A.6: natural index of the i-th coefficient in zig-zag order. */
static const uint8_t jpeg_zigzag[64] = {
	0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

/* Annex K.3, tables K.3 to K.6 (as laid out in K.3.3): code counts per length 1..16,
 * then the symbol values. */
static const uint8_t huff_dc_luma_bits[16] = {0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t huff_dc_chroma_bits[16] = {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
static const uint8_t huff_dc_vals[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t huff_ac_luma_bits[16] = {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d};
static const uint8_t huff_ac_luma_vals[162] = {
	0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
	0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1,
	0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18,
	0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
	0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57,
	0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
	0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92,
	0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
	0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
	0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2,
	0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
};
static const uint8_t huff_ac_chroma_bits[16] = {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77};
static const uint8_t huff_ac_chroma_vals[162] = {
	0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
	0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09,
	0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25,
	0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
	0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56,
	0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74,
	0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
	0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
	0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
	0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6,
	0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2,
	0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
};

/* ---- payload headers -------------------------------------------------------------------- */

#define JPEG_MAX_DIM 2040  /* 255 * 8: larger sizes need the wire value 0, not supported */
#define JPEG_QT_MAX (DP_JPEG_MAX_QT * 128)
#define JPEG_COUNT_MASK 0x3fff

static int type_ok(uint8_t type)
{
	return (type & ~64u) <= 1; /* 0, 1, 64, 65 */
}

static int q_ok(uint8_t q)
{
	return (q >= 1 && q <= 99) || q >= 128;
}

/* Bytes of table i given the precision bits. */
static size_t qt_size(uint8_t precision, unsigned i)
{
	return (precision >> i & 1) ? 128 : 64;
}

/* Tables in len bytes of in-band data (0 when len is not a whole number of tables). A type
 * 0/1 image uses table 0 for Y and table 1 for Cb and Cr; with a single table (what ffmpeg
 * sends when its chroma matrix equals the luma one) all three components use table 0. */
static unsigned qt_count(uint8_t precision, size_t len)
{
	size_t sum = 0;
	for (unsigned i = 0; i < DP_JPEG_MAX_QT; i++) {
		sum += qt_size(precision, i);
		if (sum == len)
			return i + 1;
	}
	return 0;
}

int dp_jpeg_parse(const uint8_t *payload, size_t len, struct dp_jpeg_hdr *out)
{
	if (!payload || !out)
		return DP_PROTO_ERR_INVALID;
	if (len < DP_JPEG_HDR_LEN)
		return DP_PROTO_ERR_TRUNCATED;
	memset(out, 0, sizeof(*out));
	out->type_specific = payload[0];
	out->frag_offset = dp_be24_get(payload + 1);
	out->type = payload[4];
	out->q = payload[5];
	out->width = (uint16_t)(payload[6] * 8);
	out->height = (uint16_t)(payload[7] * 8);
	if (!type_ok(out->type))
		return DP_PROTO_ERR_TYPE;
	if (!q_ok(out->q) || out->width == 0 || out->height == 0)
		return DP_PROTO_ERR_INVALID;
	size_t off = DP_JPEG_HDR_LEN;

	if (out->type >= 64) {
		if (len - off < DP_JPEG_RESTART_HDR_LEN)
			return DP_PROTO_ERR_TRUNCATED;
		const uint8_t *r = payload + off;
		out->restart_interval = dp_be16_get(r);
		out->restart_first = r[2] >> 7;
		out->restart_last = (r[2] >> 6) & 1;
		out->restart_count = dp_be16_get(r + 2) & JPEG_COUNT_MASK;
		off += DP_JPEG_RESTART_HDR_LEN;
	}
	if (out->q >= 128 && out->frag_offset == 0) {
		if (len - off < DP_JPEG_QT_HDR_LEN)
			return DP_PROTO_ERR_TRUNCATED;
		const uint8_t *t = payload + off;
		out->qt_precision = t[1];
		out->qt_len = dp_be16_get(t + 2);
		off += DP_JPEG_QT_HDR_LEN;
		/* MBZ (t[0]) is ignored as RFC 2435 asks of receivers. Length 0 means "tables
		 * not sent in this frame", which the parser accepts and reassembly refuses. */
		if (out->qt_len > len - off || out->qt_len > JPEG_QT_MAX)
			return DP_PROTO_ERR_QTABLE;
		if (out->qt_len && qt_count(out->qt_precision, out->qt_len) == 0)
			return DP_PROTO_ERR_QTABLE;
		out->qt = payload + off;
		off += out->qt_len;
	}
	out->data = payload + off;
	out->data_len = len - off;
	return DP_PROTO_OK;
}

ssize_t dp_jpeg_build(uint8_t *buf, size_t cap, const struct dp_jpeg_hdr *h)
{
	if (!buf || !h)
		return DP_PROTO_ERR_INVALID;
	if (!type_ok(h->type))
		return DP_PROTO_ERR_TYPE;
	if (!q_ok(h->q) || h->frag_offset > 0xffffffu || h->width == 0 || h->height == 0 ||
	    h->width > JPEG_MAX_DIM || h->height > JPEG_MAX_DIM || h->width % 8 || h->height % 8 ||
	    h->restart_count > JPEG_COUNT_MASK)
		return DP_PROTO_ERR_INVALID;
	int with_qt = h->q >= 128 && h->frag_offset == 0;
	if (with_qt && (h->qt_len > JPEG_QT_MAX || (h->qt_len && !h->qt) ||
			(h->qt_len && qt_count(h->qt_precision, h->qt_len) == 0)))
		return DP_PROTO_ERR_QTABLE;
	size_t need = DP_JPEG_HDR_LEN + (h->type >= 64 ? DP_JPEG_RESTART_HDR_LEN : 0) +
		      (with_qt ? DP_JPEG_QT_HDR_LEN + h->qt_len : 0);
	if (cap < need)
		return DP_PROTO_ERR_NOSPACE;

	buf[0] = h->type_specific;
	dp_be24_put(buf + 1, h->frag_offset);
	buf[4] = h->type;
	buf[5] = h->q;
	buf[6] = (uint8_t)(h->width / 8);
	buf[7] = (uint8_t)(h->height / 8);
	size_t off = DP_JPEG_HDR_LEN;
	if (h->type >= 64) {
		dp_be16_put(buf + off, h->restart_interval);
		uint16_t flc = (uint16_t)((h->restart_first ? 0x8000 : 0) |
					  (h->restart_last ? 0x4000 : 0) | h->restart_count);
		dp_be16_put(buf + off + 2, flc);
		off += DP_JPEG_RESTART_HDR_LEN;
	}
	if (with_qt) {
		buf[off] = 0;
		buf[off + 1] = h->qt_precision;
		dp_be16_put(buf + off + 2, h->qt_len);
		off += DP_JPEG_QT_HDR_LEN;
		if (h->qt_len)
			memcpy(buf + off, h->qt, h->qt_len);
		off += h->qt_len;
	}
	return (ssize_t)off;
}

int dp_jpeg_qtables(uint8_t q, uint8_t luma[64], uint8_t chroma[64])
{
	if (q < 1 || q > 99 || !luma || !chroma)
		return DP_PROTO_ERR_INVALID;
	/* RFC 2435 §4.2 / appendix A: the IJG quality scaling of the T.81 tables */
	unsigned scale = q < 50 ? 5000u / q : 200u - 2u * q;
	for (unsigned i = 0; i < 64; i++) {
		unsigned l = (jpeg_luma_q[jpeg_zigzag[i]] * scale + 50) / 100;
		unsigned c = (jpeg_chroma_q[jpeg_zigzag[i]] * scale + 50) / 100;
		luma[i] = (uint8_t)(l < 1 ? 1 : l > 255 ? 255 : l);
		chroma[i] = (uint8_t)(c < 1 ? 1 : c > 255 ? 255 : c);
	}
	return DP_PROTO_OK;
}

/* ---- frame reassembly ------------------------------------------------------------------- */

#define JPEG_RANGES_MAX (sizeof(((struct dp_jpeg_frame *)0)->ranges) / \
			 sizeof(((struct dp_jpeg_frame *)0)->ranges[0]))

int dp_jpeg_frame_init(struct dp_jpeg_frame *f, uint8_t *buf, size_t cap)
{
	if (!f || !buf)
		return DP_PROTO_ERR_INVALID;
	if (cap < DP_JPEG_HEADERS_MAX + 2)
		return DP_PROTO_ERR_NOSPACE;
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->cap = cap;
	return DP_PROTO_OK;
}

int dp_jpeg_frame_add(struct dp_jpeg_frame *f, const struct dp_jpeg_hdr *h, int marker)
{
	if (!f || !f->buf || !h || (h->data_len && !h->data))
		return DP_PROTO_ERR_INVALID;
	if (!type_ok(h->type))
		return DP_PROTO_ERR_TYPE;
	if (!q_ok(h->q) || h->width == 0 || h->height == 0 || h->type_specific != 0)
		return DP_PROTO_ERR_INVALID; /* type-specific != 0: interlaced, not supported */

	/* every packet repeats the frame parameters: they must agree */
	if (f->width &&
	    (h->type != f->type || h->q != f->q || h->width != f->width || h->height != f->height ||
	     (h->type >= 64 && h->restart_interval != f->restart_interval)))
		return DP_PROTO_ERR_FRAGMENT;

	int first_tables = h->frag_offset == 0 && h->q >= 128;
	if (first_tables) {
		if (h->qt_len > sizeof(f->qt) || !h->qt ||
		    qt_count(h->qt_precision, h->qt_len) == 0)
			return DP_PROTO_ERR_QTABLE;
		if (f->have_first &&
		    (h->qt_len != f->qt_len || h->qt_precision != f->qt_precision ||
		     memcmp(h->qt, f->qt, h->qt_len) != 0))
			return DP_PROTO_ERR_FRAGMENT;
	}

	uint64_t start = h->frag_offset, end = start + h->data_len;
	size_t room = f->cap - DP_JPEG_HEADERS_MAX - 2; /* keep room for EOI */
	if (end > room)
		return DP_PROTO_ERR_NOSPACE;
	if (f->have_last && end > f->scan_len)
		return DP_PROTO_ERR_FRAGMENT;
	if (marker && ((f->have_last && end != f->scan_len) || f->max_end > end))
		return DP_PROTO_ERR_FRAGMENT;

	/* coverage: a fragment either lies wholly inside bytes already received with the same
	 * content (a duplicate) or touches nothing received */
	int duplicate = 0;
	unsigned at = 0; /* insertion index: first range starting after start */
	if (h->data_len) {
		for (unsigned i = 0; i < f->n_ranges; i++) {
			uint32_t rs = f->ranges[i].start, re = f->ranges[i].end;
			if (rs <= start)
				at = i + 1;
			if (end <= rs || start >= re)
				continue;
			const uint8_t *have = f->buf + DP_JPEG_HEADERS_MAX + start;
			if (start >= rs && end <= re && memcmp(have, h->data, h->data_len) == 0) {
				duplicate = 1;
				break;
			}
			return DP_PROTO_ERR_FRAGMENT;
		}
	}
	if (h->data_len && !duplicate) {
		int join_prev = at > 0 && f->ranges[at - 1].end == start;
		int join_next = at < f->n_ranges && f->ranges[at].start == end;
		if (!join_prev && !join_next && f->n_ranges == JPEG_RANGES_MAX)
			return DP_PROTO_ERR_NOSPACE;
		/* all checks passed: commit */
		if (join_prev && join_next) {
			f->ranges[at - 1].end = f->ranges[at].end;
			memmove(&f->ranges[at], &f->ranges[at + 1],
				(f->n_ranges - at - 1) * sizeof(f->ranges[0]));
			f->n_ranges--;
		} else if (join_prev) {
			f->ranges[at - 1].end = (uint32_t)end;
		} else if (join_next) {
			f->ranges[at].start = (uint32_t)start;
		} else {
			memmove(&f->ranges[at + 1], &f->ranges[at],
				(f->n_ranges - at) * sizeof(f->ranges[0]));
			f->ranges[at].start = (uint32_t)start;
			f->ranges[at].end = (uint32_t)end;
			f->n_ranges++;
		}
		memcpy(f->buf + DP_JPEG_HEADERS_MAX + start, h->data, h->data_len);
		f->received += (uint32_t)h->data_len;
	}

	if (!f->width) {
		f->type = h->type;
		f->q = h->q;
		f->width = h->width;
		f->height = h->height;
		f->restart_interval = h->type >= 64 ? h->restart_interval : 0;
	}
	if (first_tables && !f->have_first) {
		f->qt_precision = h->qt_precision;
		f->qt_len = h->qt_len;
		memcpy(f->qt, h->qt, h->qt_len);
	}
	if (h->frag_offset == 0)
		f->have_first = 1;
	if (end > f->max_end)
		f->max_end = (uint32_t)end;
	if (marker) {
		f->have_last = 1;
		f->scan_len = (uint32_t)end;
	}
	return DP_PROTO_OK;
}

int dp_jpeg_frame_complete(const struct dp_jpeg_frame *f)
{
	return f && f->have_first && f->have_last && f->scan_len > 0 &&
	       f->received == f->scan_len;
}

/* ---- JFIF headers ----------------------------------------------------------------------- */

struct jw {
	uint8_t *p;
	size_t n;
};

static void jw_u8(struct jw *w, uint8_t v)
{
	w->p[w->n++] = v;
}

static void jw_u16(struct jw *w, uint16_t v)
{
	dp_be16_put(w->p + w->n, v);
	w->n += 2;
}

static void jw_bytes(struct jw *w, const uint8_t *b, size_t n)
{
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void jw_dht(struct jw *w, uint8_t class_id, const uint8_t bits[16], const uint8_t *vals,
		   size_t nvals)
{
	jw_u8(w, class_id);
	jw_bytes(w, bits, 16);
	jw_bytes(w, vals, nvals);
}

/* Writes the headers into w (sized DP_JPEG_HEADERS_MAX); returns bytes written. */
static size_t jfif_headers(const struct dp_jpeg_frame *f, uint8_t *out)
{
	struct jw w = {out, 0};
	uint8_t lq[64], cq[64];
	const uint8_t *tq[2];
	size_t tsize[2];
	uint8_t prec = 0;
	unsigned ntab = 2;
	if (f->q < 128) {
		dp_jpeg_qtables(f->q, lq, cq);
		tq[0] = lq;
		tq[1] = cq;
		tsize[0] = tsize[1] = 64;
	} else {
		ntab = qt_count(f->qt_precision, f->qt_len) >= 2 ? 2 : 1;
		prec = f->qt_precision & (ntab == 2 ? 3 : 1);
		tsize[0] = qt_size(prec, 0);
		tsize[1] = qt_size(prec, 1);
		tq[0] = f->qt;
		tq[1] = f->qt + tsize[0];
	}
	uint8_t ctab = ntab == 2 ? 1 : 0; /* table of Cb and Cr */

	jw_u16(&w, 0xffd8); /* SOI */
	jw_u16(&w, 0xffe0); /* APP0 JFIF 1.01, no density, no thumbnail */
	jw_u16(&w, 16);
	jw_bytes(&w, (const uint8_t *)"JFIF", 5);
	jw_u8(&w, 1);
	jw_u8(&w, 1);
	jw_u8(&w, 0);
	jw_u16(&w, 1);
	jw_u16(&w, 1);
	jw_u8(&w, 0);
	jw_u8(&w, 0);

	jw_u16(&w, 0xffdb); /* DQT: the tables used, zig-zag order as carried by RFC 2435 */
	jw_u16(&w, (uint16_t)(2 + ntab + tsize[0] + (ntab == 2 ? tsize[1] : 0)));
	for (unsigned i = 0; i < ntab; i++) {
		jw_u8(&w, (uint8_t)((tsize[i] == 128 ? 0x10 : 0) | i));
		jw_bytes(&w, tq[i], tsize[i]);
	}

	/* SOF0 (baseline) unless a table has 16-bit entries, which needs SOF1 (extended) */
	jw_u16(&w, prec ? 0xffc1 : 0xffc0);
	jw_u16(&w, 17);
	jw_u8(&w, 8);
	jw_u16(&w, f->height);
	jw_u16(&w, f->width);
	jw_u8(&w, 3);
	jw_u8(&w, 1); /* Y: 2x1 for type 0 (4:2:2), 2x2 for type 1 (4:2:0), table 0 */
	jw_u8(&w, (f->type & 1) ? 0x22 : 0x21);
	jw_u8(&w, 0);
	jw_u8(&w, 2); /* Cb: 1x1, table 1 (0 when only one was sent) */
	jw_u8(&w, 0x11);
	jw_u8(&w, ctab);
	jw_u8(&w, 3); /* Cr: 1x1, same table as Cb */
	jw_u8(&w, 0x11);
	jw_u8(&w, ctab);

	jw_u16(&w, 0xffc4); /* DHT: the four T.81 K.3 tables */
	jw_u16(&w, (uint16_t)(2 + 4 * 17 + 12 + 12 + 162 + 162));
	jw_dht(&w, 0x00, huff_dc_luma_bits, huff_dc_vals, sizeof(huff_dc_vals));
	jw_dht(&w, 0x10, huff_ac_luma_bits, huff_ac_luma_vals, sizeof(huff_ac_luma_vals));
	jw_dht(&w, 0x01, huff_dc_chroma_bits, huff_dc_vals, sizeof(huff_dc_vals));
	jw_dht(&w, 0x11, huff_ac_chroma_bits, huff_ac_chroma_vals, sizeof(huff_ac_chroma_vals));

	if (f->restart_interval) {
		jw_u16(&w, 0xffdd); /* DRI */
		jw_u16(&w, 4);
		jw_u16(&w, f->restart_interval);
	}

	jw_u16(&w, 0xffda); /* SOS: Y with tables 0/0, Cb and Cr with 1/1, full spectrum */
	jw_u16(&w, 12);
	jw_u8(&w, 3);
	jw_u8(&w, 1);
	jw_u8(&w, 0x00);
	jw_u8(&w, 2);
	jw_u8(&w, 0x11);
	jw_u8(&w, 3);
	jw_u8(&w, 0x11);
	jw_u8(&w, 0);
	jw_u8(&w, 63);
	jw_u8(&w, 0);
	return w.n;
}

int dp_jpeg_frame_finish(struct dp_jpeg_frame *f, const uint8_t **jfif, size_t *len)
{
	if (!f || !f->buf || !jfif || !len)
		return DP_PROTO_ERR_INVALID;
	if (!dp_jpeg_frame_complete(f))
		return DP_PROTO_ERR_INCOMPLETE;
	if (f->q >= 128 && qt_count(f->qt_precision, f->qt_len) == 0)
		return DP_PROTO_ERR_QTABLE;

	uint8_t hdr[DP_JPEG_HEADERS_MAX];
	size_t hlen = jfif_headers(f, hdr);
	uint8_t *start = f->buf + DP_JPEG_HEADERS_MAX - hlen;
	memcpy(start, hdr, hlen);
	uint8_t *scan = f->buf + DP_JPEG_HEADERS_MAX;
	size_t end = f->scan_len;
	/* senders strip EOI (RFC 2435 §3.1.9 leaves it out); add it unless it is there */
	if (!(end >= 2 && scan[end - 2] == 0xff && scan[end - 1] == 0xd9)) {
		scan[end++] = 0xff; /* room reserved by dp_jpeg_frame_add */
		scan[end++] = 0xd9;
	}
	*jfif = start;
	*len = hlen + end;
	return DP_PROTO_OK;
}

/* ---- sender side: JFIF -> what RFC 2435 carries ---------------------------------------- */

static int jfif_sof(const uint8_t *s, size_t sl, struct dp_jfif_info *out, uint8_t tq[3])
{
	if (sl < 6)
		return DP_PROTO_ERR_LENGTH;
	if (s[0] != 8 || s[5] != 3 || sl < 6 + 9)
		return DP_PROTO_ERR_TYPE; /* 12-bit samples, or not three components */
	out->height = (uint16_t)dp_be16_get(s + 1);
	out->width = (uint16_t)dp_be16_get(s + 3);
	if (out->width == 0 || out->height == 0 || out->width > 2040 || out->height > 2040)
		return DP_PROTO_ERR_TYPE;
	uint8_t y = s[6 + 1];
	if (y == 0x21)
		out->type = 0;
	else if (y == 0x22)
		out->type = 1;
	else
		return DP_PROTO_ERR_TYPE;
	for (int c = 0; c < 3; c++) {
		if (c > 0 && s[6 + 3 * c + 1] != 0x11)
			return DP_PROTO_ERR_TYPE;
		tq[c] = s[6 + 3 * c + 2];
	}
	return DP_PROTO_OK;
}

int dp_jfif_split(const uint8_t *j, size_t len, struct dp_jfif_info *out)
{
	if (!j || !out)
		return DP_PROTO_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	if (len < 4)
		return DP_PROTO_ERR_TRUNCATED;
	if (j[0] != 0xff || j[1] != 0xd8)
		return DP_PROTO_ERR_TYPE;
	uint8_t tq[3] = {0, 1, 1};
	int have_sof = 0, have_qt[2] = {0, 0};
	size_t off = 2;
	for (;;) {
		while (off < len && j[off] == 0xff && off + 1 < len && j[off + 1] == 0xff)
			off++; /* fill bytes */
		if (off + 4 > len)
			return DP_PROTO_ERR_TRUNCATED;
		if (j[off] != 0xff)
			return DP_PROTO_ERR_LENGTH;
		uint8_t m = j[off + 1];
		size_t sl = dp_be16_get(j + off + 2);
		if (sl < 2 || off + 2 + sl > len)
			return DP_PROTO_ERR_LENGTH;
		const uint8_t *s = j + off + 4;
		size_t n = sl - 2;
		if (m == 0xdb) { /* DQT */
			for (size_t k = 0; k < n; k += 65) {
				if (k + 65 > n)
					return (s[k] >> 4) ? DP_PROTO_ERR_TYPE : DP_PROTO_ERR_LENGTH;
				if ((s[k] >> 4) != 0 || (s[k] & 15) > 1)
					return DP_PROTO_ERR_TYPE; /* 16-bit or a third table */
				memcpy(out->qt[s[k] & 15], s + k + 1, 64);
				have_qt[s[k] & 15] = 1;
			}
		} else if (m == 0xc0 || m == 0xc1) { /* baseline / extended sequential */
			int rc = jfif_sof(s, n, out, tq);
			if (rc)
				return rc;
			have_sof = 1;
		} else if ((m >= 0xc2 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc)) {
			return DP_PROTO_ERR_TYPE; /* progressive, lossless, arithmetic */
		} else if (m == 0xdd) { /* DRI */
			if (n < 2)
				return DP_PROTO_ERR_LENGTH;
			out->restart_interval = (uint16_t)dp_be16_get(s);
		} else if (m == 0xda) { /* SOS: the scan runs to EOI at the end */
			if (!have_sof || !have_qt[0])
				return DP_PROTO_ERR_TYPE;
			/* Y on table 0 and chroma on table 1, or everything on table 0 */
			if (tq[0] != 0 || tq[1] != tq[2] || tq[1] > 1 || (tq[1] == 1 && !have_qt[1]))
				return DP_PROTO_ERR_TYPE;
			out->n_qt = (uint8_t)(tq[1] == 1 ? 2 : 1);
			if (out->restart_interval)
				out->type = (uint8_t)(out->type + 64);
			out->scan = s + n;
			size_t end = len;
			if (end >= 2 && j[end - 2] == 0xff && j[end - 1] == 0xd9)
				end -= 2;
			if (end < off + 2 + sl)
				return DP_PROTO_ERR_TRUNCATED;
			out->scan_len = end - (off + 2 + sl);
			return DP_PROTO_OK;
		}
		off += 2 + sl;
	}
}
