/* RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1) and
 * extended sequence number tracking (RFC 3550 appendix A.1). */
#include <string.h>

#include "dataplane/dp_proto.h"
#include "dataplane/proto_be.h"

int dp_rtp_parse(const uint8_t *buf, size_t len, struct dp_rtp_hdr *out)
{
	if (!buf || !out)
		return DP_PROTO_ERR_INVALID;
	if (len < DP_RTP_HDR_MIN)
		return DP_PROTO_ERR_TRUNCATED;
	if (buf[0] >> 6 != DP_RTP_VERSION)
		return DP_PROTO_ERR_VERSION;

	memset(out, 0, sizeof(*out));
	out->padding = (buf[0] >> 5) & 1;
	out->extension = (buf[0] >> 4) & 1;
	out->csrc_count = buf[0] & 0x0f;
	out->marker = buf[1] >> 7;
	out->payload_type = buf[1] & 0x7f;
	out->seq = dp_be16_get(buf + 2);
	out->timestamp = dp_be32_get(buf + 4);
	out->ssrc = dp_be32_get(buf + 8);

	size_t off = DP_RTP_HDR_MIN;
	if (len - off < (size_t)out->csrc_count * 4)
		return DP_PROTO_ERR_CSRC;
	for (unsigned i = 0; i < out->csrc_count; i++, off += 4)
		out->csrc[i] = dp_be32_get(buf + off);

	if (out->extension) {
		if (len - off < 4)
			return DP_PROTO_ERR_EXTENSION;
		out->ext_profile = dp_be16_get(buf + off);
		out->ext_words = dp_be16_get(buf + off + 2);
		off += 4;
		if (len - off < (size_t)out->ext_words * 4)
			return DP_PROTO_ERR_EXTENSION;
		out->ext = buf + off;
		off += (size_t)out->ext_words * 4;
	}

	size_t end = len;
	if (out->padding) {
		uint8_t pad = buf[len - 1];
		/* the count includes itself, so it is at least 1, and padding sits after the
		 * header: it may take the whole payload but no more */
		if (pad == 0 || pad > len - off)
			return DP_PROTO_ERR_PADDING;
		out->pad_len = pad;
		end -= pad;
	}
	out->payload = buf + off;
	out->payload_len = end - off;
	return DP_PROTO_OK;
}

ssize_t dp_rtp_build(uint8_t *buf, size_t cap, const struct dp_rtp_hdr *h)
{
	if (!buf || !h)
		return DP_PROTO_ERR_INVALID;
	if (h->csrc_count > DP_RTP_MAX_CSRC || h->payload_type > 0x7f)
		return DP_PROTO_ERR_INVALID;
	if (h->extension && h->ext_words && !h->ext)
		return DP_PROTO_ERR_INVALID;

	size_t need = DP_RTP_HDR_MIN + (size_t)h->csrc_count * 4;
	if (h->extension)
		need += 4 + (size_t)h->ext_words * 4;
	if (cap < need)
		return DP_PROTO_ERR_NOSPACE;

	buf[0] = (uint8_t)(DP_RTP_VERSION << 6 | (h->padding ? 1 : 0) << 5 |
			   (h->extension ? 1 : 0) << 4 | h->csrc_count);
	buf[1] = (uint8_t)((h->marker ? 0x80 : 0) | h->payload_type);
	dp_be16_put(buf + 2, h->seq);
	dp_be32_put(buf + 4, h->timestamp);
	dp_be32_put(buf + 8, h->ssrc);
	size_t off = DP_RTP_HDR_MIN;
	for (unsigned i = 0; i < h->csrc_count; i++, off += 4)
		dp_be32_put(buf + off, h->csrc[i]);
	if (h->extension) {
		dp_be16_put(buf + off, h->ext_profile);
		dp_be16_put(buf + off + 2, h->ext_words);
		off += 4;
		if (h->ext_words)
			memcpy(buf + off, h->ext, (size_t)h->ext_words * 4);
		off += (size_t)h->ext_words * 4;
	}
	return (ssize_t)off;
}

/* RFC 3550 A.1 constants: a forward jump below MAX_DROPOUT is loss, a step back of at most
 * MAX_MISORDER is reordering or a duplicate, anything else is a jump that is only believed
 * when the next packet continues from it. */
#define DP_RTP_MAX_DROPOUT 3000u
#define DP_RTP_MAX_MISORDER 100u
#define DP_RTP_SEQ_MOD 0x10000u

uint32_t dp_rtp_seq_update(struct dp_rtp_seq *s, uint16_t seq)
{
	if (!s->started) {
		s->started = 1;
		s->max_seq = seq;
		s->cycles = 0;
		s->received = 1;
		s->bad_seq = 0;
		return seq;
	}
	uint16_t udelta = (uint16_t)(seq - s->max_seq);
	if (udelta < DP_RTP_MAX_DROPOUT) {
		/* in order, possibly with a gap */
		if (seq < s->max_seq)
			s->cycles += DP_RTP_SEQ_MOD;
		s->max_seq = seq;
		s->received++;
		s->bad_seq = 0;
		return s->cycles + seq;
	}
	if (udelta > DP_RTP_SEQ_MOD - DP_RTP_MAX_MISORDER) {
		/* late or duplicate: belongs to the previous cycle when it sits above max_seq */
		s->received++;
		if (seq > s->max_seq && s->cycles >= DP_RTP_SEQ_MOD)
			return s->cycles - DP_RTP_SEQ_MOD + seq;
		return s->cycles + seq;
	}
	/* a large jump: believed only when the next packet follows it (the source restarted) */
	if (s->bad_seq == (DP_RTP_SEQ_MOD | seq)) {
		s->max_seq = seq;
		s->received++;
		s->bad_seq = 0;
		return s->cycles + seq;
	}
	s->bad_seq = DP_RTP_SEQ_MOD | (uint16_t)(seq + 1);
	return s->cycles + seq;
}
