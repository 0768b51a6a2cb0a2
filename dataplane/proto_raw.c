/* RFC 4175 uncompressed video: payload header, line headers, and placing line segments
 * into the staging frame.
 *
 * Staging layouts (8-bit samples, no row padding):
 *   4:2:0  I420 planar: Y plane width*height, then Cb plane (width/2)*(height/2), then Cr.
 *          An RFC 4175 pgroup covers 2x2 pixels, Y00 Y01 Y10 Y11 Cb Cr, and the line number
 *          of its segment is the even (top) line of the pair; this is what GStreamer's
 *          rtpvrawpay sends for I420 (sampling=YCbCr-4:2:0).
 *   4:2:2  packed UYVY, width*2 bytes per line: the pgroup Cb Y0 Cr Y1 copied as is.
 *   RGB    packed RGB24, width*3 bytes per line: the pgroup R G B copied as is. */
#include <string.h>

#include "dataplane/dp_proto.h"
#include "dataplane/proto_be.h"

#define RAW_LINE_HDR 6

int dp_raw_parse(const uint8_t *payload, size_t len, struct dp_raw_hdr *out)
{
	if (!payload || !out)
		return DP_PROTO_ERR_INVALID;
	if (len < DP_RAW_HDR_MIN + RAW_LINE_HDR)
		return DP_PROTO_ERR_TRUNCATED;
	out->ext_seq = dp_be16_get(payload);
	out->n_lines = 0;
	size_t off = DP_RAW_HDR_MIN;
	int cont = 1;
	while (cont) {
		if (out->n_lines == DP_RAW_MAX_LINES)
			return DP_PROTO_ERR_LINE;
		if (len - off < RAW_LINE_HDR)
			return DP_PROTO_ERR_TRUNCATED;
		struct dp_raw_line *l = &out->lines[out->n_lines++];
		const uint8_t *p = payload + off;
		l->length = dp_be16_get(p);
		l->field = p[2] >> 7;
		l->line = dp_be16_get(p + 2) & 0x7fff;
		l->cont = p[4] >> 7;
		l->offset = dp_be16_get(p + 4) & 0x7fff;
		l->data = NULL;
		cont = l->cont;
		off += RAW_LINE_HDR;
	}
	/* segments follow the headers in the same order; bytes after the last one are
	 * ignored (RTP padding has already been removed by dp_rtp_parse) */
	for (unsigned i = 0; i < out->n_lines; i++) {
		struct dp_raw_line *l = &out->lines[i];
		if (len - off < l->length)
			return DP_PROTO_ERR_LENGTH;
		l->data = payload + off;
		off += l->length;
	}
	return DP_PROTO_OK;
}

ssize_t dp_raw_build(uint8_t *buf, size_t cap, uint16_t ext_seq, const struct dp_raw_line *lines,
		     unsigned n)
{
	if (!buf || !lines || n == 0 || n > DP_RAW_MAX_LINES)
		return DP_PROTO_ERR_INVALID;
	size_t total = DP_RAW_HDR_MIN + (size_t)n * RAW_LINE_HDR;
	for (unsigned i = 0; i < n; i++) {
		if (lines[i].line > 0x7fff || lines[i].offset > 0x7fff)
			return DP_PROTO_ERR_INVALID;
		if (lines[i].length && !lines[i].data)
			return DP_PROTO_ERR_INVALID;
		total += lines[i].length;
	}
	if (cap < total)
		return DP_PROTO_ERR_NOSPACE;
	dp_be16_put(buf, ext_seq);
	size_t off = DP_RAW_HDR_MIN;
	for (unsigned i = 0; i < n; i++, off += RAW_LINE_HDR) {
		/* the C bit is derived from the position: set on all but the last header */
		dp_be16_put(buf + off, lines[i].length);
		uint16_t fl = (uint16_t)((lines[i].field ? 0x8000 : 0) | lines[i].line);
		dp_be16_put(buf + off + 2, fl);
		dp_be16_put(buf + off + 4, (uint16_t)((i + 1 < n ? 0x8000 : 0) | lines[i].offset));
	}
	for (unsigned i = 0; i < n; i++) {
		if (lines[i].length)
			memcpy(buf + off, lines[i].data, lines[i].length);
		off += lines[i].length;
	}
	return (ssize_t)total;
}

int dp_raw_pgroup(enum dp_raw_sampling s, unsigned *bytes, unsigned *xpix, unsigned *ypix)
{
	unsigned b, x, y;
	switch (s) {
	case DP_RAW_SAMPLING_YCBCR420: b = 6; x = 2; y = 2; break;
	case DP_RAW_SAMPLING_YCBCR422: b = 4; x = 2; y = 1; break;
	case DP_RAW_SAMPLING_RGB: b = 3; x = 1; y = 1; break;
	default: return DP_PROTO_ERR_INVALID;
	}
	if (bytes)
		*bytes = b;
	if (xpix)
		*xpix = x;
	if (ypix)
		*ypix = y;
	return DP_PROTO_OK;
}

ssize_t dp_raw_frame_size(enum dp_raw_sampling s, unsigned width, unsigned height)
{
	unsigned b, x, y;
	if (dp_raw_pgroup(s, &b, &x, &y) < 0)
		return DP_PROTO_ERR_INVALID;
	/* RFC 4175 line numbers and offsets are 15-bit */
	if (width == 0 || height == 0 || width > 0x8000 || height > 0x8000 || width % x ||
	    height % y)
		return DP_PROTO_ERR_INVALID;
	return (ssize_t)((size_t)(width / x) * (height / y) * b);
}

/* Checks one segment against the frame; 0 when it fits. */
static int seg_check(const struct dp_raw_line *l, unsigned b, unsigned x, unsigned y,
		     unsigned width, unsigned height)
{
	if (l->field) /* interlaced video is not supported: progressive frames only */
		return DP_PROTO_ERR_LINE;
	if (l->length % b || l->offset % x || l->line % y)
		return DP_PROTO_ERR_LINE;
	if (l->line + y > height || l->offset > width)
		return DP_PROTO_ERR_LINE;
	if ((size_t)(l->length / b) * x > width - l->offset)
		return DP_PROTO_ERR_LINE;
	if (l->length && !l->data)
		return DP_PROTO_ERR_INVALID;
	return 0;
}

ssize_t dp_raw_frame_copy(const struct dp_raw_hdr *h, enum dp_raw_sampling s, unsigned width,
			  unsigned height, uint8_t *frame, size_t frame_len)
{
	unsigned b, x, y;
	if (!h || !frame || h->n_lines > DP_RAW_MAX_LINES)
		return DP_PROTO_ERR_INVALID;
	ssize_t fsz = dp_raw_frame_size(s, width, height);
	if (fsz < 0)
		return fsz;
	if (frame_len < (size_t)fsz)
		return DP_PROTO_ERR_NOSPACE;
	dp_raw_pgroup(s, &b, &x, &y);
	for (unsigned i = 0; i < h->n_lines; i++) {
		int rc = seg_check(&h->lines[i], b, x, y, width, height);
		if (rc < 0)
			return rc;
	}

	size_t placed = 0;
	for (unsigned i = 0; i < h->n_lines; i++) {
		const struct dp_raw_line *l = &h->lines[i];
		size_t ngroups = l->length / b;
		if (s == DP_RAW_SAMPLING_YCBCR420) {
			size_t cw = width / 2, ysz = (size_t)width * height;
			uint8_t *y0 = frame + (size_t)l->line * width + l->offset;
			uint8_t *y1 = y0 + width;
			uint8_t *cb = frame + ysz + (size_t)(l->line / 2) * cw + l->offset / 2;
			uint8_t *cr = cb + ysz / 4;
			const uint8_t *g = l->data;
			for (size_t k = 0; k < ngroups; k++, g += 6) {
				y0[2 * k] = g[0];
				y0[2 * k + 1] = g[1];
				y1[2 * k] = g[2];
				y1[2 * k + 1] = g[3];
				cb[k] = g[4];
				cr[k] = g[5];
			}
		} else {
			/* packed layouts: the pgroup bytes are the staging bytes */
			size_t stride = (size_t)width / x * b;
			if (l->length)
				memcpy(frame + (size_t)l->line * stride + (size_t)l->offset / x * b,
				       l->data, l->length);
		}
		placed += l->length;
	}
	return (ssize_t)placed;
}
