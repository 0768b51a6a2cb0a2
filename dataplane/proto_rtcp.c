/* RTCP (RFC 3550 §6): compound walk, SR, RR and BYE. SDES is walked over by dp_rtcp_next()
 * and not decoded; APP packets are decoded by proto_app.c. */
#include <string.h>

#include "dataplane/dp_proto.h"
#include "dataplane/proto_be.h"

#define DP_RTCP_HDR_LEN 4
#define DP_RTCP_RB_LEN 24
#define DP_RTCP_SR_FIXED 24 /* SSRC + sender info */
#define DP_RTCP_RR_FIXED 4  /* SSRC */

int dp_rtcp_next(const uint8_t *buf, size_t len, size_t *off, struct dp_rtcp_pkt *out)
{
	if (!buf || !off || !out || *off > len)
		return DP_PROTO_ERR_INVALID;
	size_t rem = len - *off;
	if (rem == 0)
		return 0;
	if (rem < DP_RTCP_HDR_LEN)
		return DP_PROTO_ERR_TRUNCATED;
	const uint8_t *p = buf + *off;
	if (p[0] >> 6 != DP_RTP_VERSION)
		return DP_PROTO_ERR_VERSION;
	size_t total = ((size_t)dp_be16_get(p + 2) + 1) * 4;
	if (total > rem)
		return DP_PROTO_ERR_LENGTH;

	memset(out, 0, sizeof(*out));
	out->padding = (p[0] >> 5) & 1;
	out->count = p[0] & 0x1f;
	out->pt = p[1];
	out->total_len = total;
	out->body = p + DP_RTCP_HDR_LEN;
	out->body_len = total - DP_RTCP_HDR_LEN;
	if (out->padding) {
		uint8_t pad = p[total - 1];
		if (pad == 0 || pad > out->body_len)
			return DP_PROTO_ERR_PADDING;
		out->body_len -= pad;
	}
	*off += total;
	return 1;
}

static void rb_get(const uint8_t *p, struct dp_rtcp_rb *rb)
{
	rb->ssrc = dp_be32_get(p);
	rb->fraction_lost = p[4];
	uint32_t lost = dp_be24_get(p + 5);
	/* 24-bit two's complement */
	rb->cum_lost = (lost & 0x800000u) ? (int32_t)lost - 0x1000000 : (int32_t)lost;
	rb->ext_high_seq = dp_be32_get(p + 8);
	rb->jitter = dp_be32_get(p + 12);
	rb->lsr = dp_be32_get(p + 16);
	rb->dlsr = dp_be32_get(p + 20);
}

static void rb_put(uint8_t *p, const struct dp_rtcp_rb *rb)
{
	int32_t lost = rb->cum_lost;
	/* RFC 3550 §6.4.1: the field saturates at its 24-bit limits */
	if (lost > 0x7fffff)
		lost = 0x7fffff;
	if (lost < -0x800000)
		lost = -0x800000;
	dp_be32_put(p, rb->ssrc);
	p[4] = rb->fraction_lost;
	dp_be24_put(p + 5, (uint32_t)lost & 0xffffffu);
	dp_be32_put(p + 8, rb->ext_high_seq);
	dp_be32_put(p + 12, rb->jitter);
	dp_be32_put(p + 16, rb->lsr);
	dp_be32_put(p + 20, rb->dlsr);
}

static void hdr_put(uint8_t *p, uint8_t count, uint8_t pt, size_t total)
{
	p[0] = (uint8_t)(DP_RTP_VERSION << 6 | (count & 0x1f));
	p[1] = pt;
	dp_be16_put(p + 2, (uint16_t)(total / 4 - 1));
}

int dp_rtcp_sr_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_sr *out)
{
	if (!p || !out || (!p->body && p->body_len))
		return DP_PROTO_ERR_INVALID;
	if (p->pt != DP_RTCP_PT_SR)
		return DP_PROTO_ERR_TYPE;
	if (p->body_len < DP_RTCP_SR_FIXED)
		return DP_PROTO_ERR_TRUNCATED;
	if (p->body_len - DP_RTCP_SR_FIXED < (size_t)p->count * DP_RTCP_RB_LEN)
		return DP_PROTO_ERR_LENGTH;
	const uint8_t *b = p->body;
	out->ssrc = dp_be32_get(b);
	out->ntp = (uint64_t)dp_be32_get(b + 4) << 32 | dp_be32_get(b + 8);
	out->rtp_ts = dp_be32_get(b + 12);
	out->pkt_count = dp_be32_get(b + 16);
	out->octet_count = dp_be32_get(b + 20);
	out->n_rb = p->count;
	for (unsigned i = 0; i < p->count; i++)
		rb_get(b + DP_RTCP_SR_FIXED + i * DP_RTCP_RB_LEN, &out->rb[i]);
	return DP_PROTO_OK;
}

int dp_rtcp_rr_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_rr *out)
{
	if (!p || !out || (!p->body && p->body_len))
		return DP_PROTO_ERR_INVALID;
	if (p->pt != DP_RTCP_PT_RR)
		return DP_PROTO_ERR_TYPE;
	if (p->body_len < DP_RTCP_RR_FIXED)
		return DP_PROTO_ERR_TRUNCATED;
	if (p->body_len - DP_RTCP_RR_FIXED < (size_t)p->count * DP_RTCP_RB_LEN)
		return DP_PROTO_ERR_LENGTH;
	out->ssrc = dp_be32_get(p->body);
	out->n_rb = p->count;
	for (unsigned i = 0; i < p->count; i++)
		rb_get(p->body + DP_RTCP_RR_FIXED + i * DP_RTCP_RB_LEN, &out->rb[i]);
	return DP_PROTO_OK;
}

int dp_rtcp_bye_parse(const struct dp_rtcp_pkt *p, struct dp_rtcp_bye *out)
{
	if (!p || !out || (!p->body && p->body_len))
		return DP_PROTO_ERR_INVALID;
	if (p->pt != DP_RTCP_PT_BYE)
		return DP_PROTO_ERR_TYPE;
	size_t ids = (size_t)p->count * 4;
	if (p->body_len < ids)
		return DP_PROTO_ERR_LENGTH;
	memset(out, 0, sizeof(*out));
	out->n_ssrc = p->count;
	for (unsigned i = 0; i < p->count; i++)
		out->ssrc[i] = dp_be32_get(p->body + i * 4);
	size_t rem = p->body_len - ids;
	if (rem > 0) {
		const uint8_t *r = p->body + ids;
		if ((size_t)r[0] > rem - 1)
			return DP_PROTO_ERR_LENGTH;
		out->reason_len = r[0];
		memcpy(out->reason, r + 1, r[0]);
	}
	out->reason[out->reason_len] = '\0';
	return DP_PROTO_OK;
}

ssize_t dp_rtcp_sr_build(uint8_t *buf, size_t cap, const struct dp_rtcp_sr *sr)
{
	if (!buf || !sr || sr->n_rb > DP_RTCP_MAX_RB)
		return DP_PROTO_ERR_INVALID;
	size_t total = DP_RTCP_HDR_LEN + DP_RTCP_SR_FIXED + (size_t)sr->n_rb * DP_RTCP_RB_LEN;
	if (cap < total)
		return DP_PROTO_ERR_NOSPACE;
	hdr_put(buf, sr->n_rb, DP_RTCP_PT_SR, total);
	uint8_t *b = buf + DP_RTCP_HDR_LEN;
	dp_be32_put(b, sr->ssrc);
	dp_be32_put(b + 4, (uint32_t)(sr->ntp >> 32));
	dp_be32_put(b + 8, (uint32_t)sr->ntp);
	dp_be32_put(b + 12, sr->rtp_ts);
	dp_be32_put(b + 16, sr->pkt_count);
	dp_be32_put(b + 20, sr->octet_count);
	for (unsigned i = 0; i < sr->n_rb; i++)
		rb_put(b + DP_RTCP_SR_FIXED + i * DP_RTCP_RB_LEN, &sr->rb[i]);
	return (ssize_t)total;
}

ssize_t dp_rtcp_rr_build(uint8_t *buf, size_t cap, const struct dp_rtcp_rr *rr)
{
	if (!buf || !rr || rr->n_rb > DP_RTCP_MAX_RB)
		return DP_PROTO_ERR_INVALID;
	size_t total = DP_RTCP_HDR_LEN + DP_RTCP_RR_FIXED + (size_t)rr->n_rb * DP_RTCP_RB_LEN;
	if (cap < total)
		return DP_PROTO_ERR_NOSPACE;
	hdr_put(buf, rr->n_rb, DP_RTCP_PT_RR, total);
	dp_be32_put(buf + DP_RTCP_HDR_LEN, rr->ssrc);
	for (unsigned i = 0; i < rr->n_rb; i++)
		rb_put(buf + DP_RTCP_HDR_LEN + DP_RTCP_RR_FIXED + i * DP_RTCP_RB_LEN, &rr->rb[i]);
	return (ssize_t)total;
}

ssize_t dp_rtcp_bye_build(uint8_t *buf, size_t cap, const struct dp_rtcp_bye *bye)
{
	if (!buf || !bye || bye->n_ssrc > 31)
		return DP_PROTO_ERR_INVALID;
	size_t total = DP_RTCP_HDR_LEN + (size_t)bye->n_ssrc * 4;
	if (bye->reason_len)
		total += (1 + (size_t)bye->reason_len + 3) & ~(size_t)3;
	if (cap < total)
		return DP_PROTO_ERR_NOSPACE;
	hdr_put(buf, bye->n_ssrc, DP_RTCP_PT_BYE, total);
	size_t off = DP_RTCP_HDR_LEN;
	for (unsigned i = 0; i < bye->n_ssrc; i++, off += 4)
		dp_be32_put(buf + off, bye->ssrc[i]);
	if (bye->reason_len) {
		buf[off++] = bye->reason_len;
		memcpy(buf + off, bye->reason, bye->reason_len);
		off += bye->reason_len;
		while (off < total)
			buf[off++] = 0; /* pad the reason to a 32-bit boundary with zeros */
	}
	return (ssize_t)total;
}
