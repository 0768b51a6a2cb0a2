/* shoal messages carried in RTCP APP packets (RFC 3550 §6.7): PT 204, name "SHOL",
 * subtype = message kind, application data starting with a version byte. Byte layout in
 * PROTOCOL.md; every field is network byte order, every message a multiple of 32 bits. */
#include <string.h>

#include "dataplane/dp_proto.h"
#include "dataplane/proto_be.h"

#define APP_HDR_LEN 12 /* RTCP header, SSRC, name */
#define APP_REGISTER_FIXED 12
#define APP_REGISTER_RES 4
#define APP_REPORT_LEN 20
#define APP_ASSIGN_LEN 36
#define APP_RESULT_FIXED 16
#define APP_RESULT_DET 12
#define APP_DROP_LEN 8

static int format_ok(uint8_t f)
{
	const uint8_t known = DP_APP_FMT_JPEG | DP_APP_FMT_RAW420 | DP_APP_FMT_RAW422 |
			      DP_APP_FMT_RAWRGB;
	return (f & ~known) == 0;
}

static int reason_ok(uint8_t r)
{
	return r >= DP_APP_DROP_LATE && r <= DP_APP_DROP_TOO_LARGE;
}

/* Bytes of application data (version byte included) for m, or a negative code. */
static ssize_t app_data_size(const struct dp_app_msg *m)
{
	switch (m->kind) {
	case DP_APP_REGISTER:
		if (m->u.reg.n_res > DP_APP_MAX_RES)
			return DP_PROTO_ERR_INVALID;
		return APP_REGISTER_FIXED + (ssize_t)m->u.reg.n_res * APP_REGISTER_RES;
	case DP_APP_REPORT:
		return APP_REPORT_LEN;
	case DP_APP_ASSIGN:
		return APP_ASSIGN_LEN;
	case DP_APP_RESULT:
		if (m->u.result.n_det > DP_APP_MAX_DET)
			return DP_PROTO_ERR_INVALID;
		return APP_RESULT_FIXED + (ssize_t)m->u.result.n_det * APP_RESULT_DET;
	case DP_APP_DROP:
		return APP_DROP_LEN;
	default:
		return DP_PROTO_ERR_TYPE;
	}
}

ssize_t dp_app_size(const struct dp_app_msg *m)
{
	if (!m)
		return DP_PROTO_ERR_INVALID;
	ssize_t n = app_data_size(m);
	return n < 0 ? n : APP_HDR_LEN + n;
}

static int app_check(const struct dp_app_msg *m)
{
	switch (m->kind) {
	case DP_APP_REGISTER:
		return format_ok(m->u.reg.formats) ? 0 : DP_PROTO_ERR_INVALID;
	case DP_APP_ASSIGN: {
		const struct dp_app_assign *a = &m->u.assign;
		if (a->served > 1 || !format_ok(a->format) || (a->format & (a->format - 1)))
			return DP_PROTO_ERR_INVALID;
		if (a->served ? a->reason != 0 : !reason_ok(a->reason))
			return DP_PROTO_ERR_INVALID; /* a served client carries no reason */
		return 0;
	}
	case DP_APP_DROP:
		return reason_ok(m->u.drop.reason) ? 0 : DP_PROTO_ERR_INVALID;
	default:
		return 0;
	}
}

ssize_t dp_app_build(uint8_t *buf, size_t cap, const struct dp_app_msg *m)
{
	if (!buf || !m)
		return DP_PROTO_ERR_INVALID;
	ssize_t total = dp_app_size(m);
	if (total < 0)
		return total;
	int rc = app_check(m);
	if (rc < 0)
		return rc;
	if (cap < (size_t)total)
		return DP_PROTO_ERR_NOSPACE;

	memset(buf, 0, (size_t)total); /* reserved bytes are zero */
	buf[0] = (uint8_t)(DP_RTP_VERSION << 6 | m->kind);
	buf[1] = DP_RTCP_PT_APP;
	dp_be16_put(buf + 2, (uint16_t)(total / 4 - 1));
	dp_be32_put(buf + 4, m->ssrc);
	memcpy(buf + 8, DP_APP_NAME, 4);
	uint8_t *d = buf + APP_HDR_LEN;
	d[0] = DP_APP_VERSION;

	switch (m->kind) {
	case DP_APP_REGISTER: {
		const struct dp_app_register *r = &m->u.reg;
		d[1] = r->formats;
		d[2] = r->n_res;
		dp_be16_put(d + 4, r->slo_ms);
		dp_be16_put(d + 6, r->fps_x100);
		dp_be16_put(d + 8, r->media_port);
		for (unsigned i = 0; i < r->n_res; i++) {
			uint8_t *e = d + APP_REGISTER_FIXED + i * APP_REGISTER_RES;
			dp_be16_put(e, r->res[i].width);
			dp_be16_put(e + 2, r->res[i].height);
		}
		break;
	}
	case DP_APP_REPORT: {
		const struct dp_app_report *r = &m->u.report;
		dp_be32_put(d + 4, r->bw_kbps);
		dp_be32_put(d + 8, r->rtt_us);
		dp_be32_put(d + 12, r->frames_sent);
		dp_be32_put(d + 16, r->results_rcvd);
		break;
	}
	case DP_APP_ASSIGN: {
		const struct dp_app_assign *a = &m->u.assign;
		d[1] = a->format;
		d[2] = a->served;
		d[3] = a->reason;
		dp_be32_put(d + 4, a->epoch);
		memcpy(d + 8, a->family, DP_APP_VARIANT_LEN);
		dp_be16_put(d + 24, a->variant);
		dp_be16_put(d + 26, a->width);
		dp_be16_put(d + 28, a->height);
		dp_be16_put(d + 30, a->fps_x100);
		dp_be32_put(d + 32, a->target_bytes);
		break;
	}
	case DP_APP_RESULT: {
		const struct dp_app_result *r = &m->u.result;
		dp_be16_put(d + 2, r->n_det);
		dp_be32_put(d + 4, r->rtp_ts);
		dp_be16_put(d + 8, r->variant);
		dp_be32_put(d + 12, r->server_us);
		for (unsigned i = 0; i < r->n_det; i++) {
			uint8_t *e = d + APP_RESULT_FIXED + i * APP_RESULT_DET;
			dp_be16_put(e, r->det[i].cls);
			dp_be16_put(e + 2, r->det[i].score);
			dp_be16_put(e + 4, r->det[i].x);
			dp_be16_put(e + 6, r->det[i].y);
			dp_be16_put(e + 8, r->det[i].w);
			dp_be16_put(e + 10, r->det[i].h);
		}
		break;
	}
	case DP_APP_DROP:
		d[1] = m->u.drop.reason;
		dp_be32_put(d + 4, m->u.drop.rtp_ts);
		break;
	}
	return total;
}

int dp_app_parse(const struct dp_rtcp_pkt *p, struct dp_app_msg *out)
{
	if (!p || !out || (!p->body && p->body_len))
		return DP_PROTO_ERR_INVALID;
	if (p->pt != DP_RTCP_PT_APP)
		return DP_PROTO_ERR_TYPE;
	if (p->body_len < 8)
		return DP_PROTO_ERR_TRUNCATED;
	if (memcmp(p->body + 4, DP_APP_NAME, 4) != 0)
		return DP_PROTO_ERR_APP_NAME;
	const uint8_t *d = p->body + 8;
	size_t n = p->body_len - 8;
	if (n < 1)
		return DP_PROTO_ERR_TRUNCATED;
	if (d[0] != DP_APP_VERSION)
		return DP_PROTO_ERR_APP_VERSION;

	memset(out, 0, sizeof(*out));
	out->kind = p->count;
	out->ssrc = dp_be32_get(p->body);
	/* fixed part first (a count may live in it), then the exact size it implies */
	size_t fixed;
	switch (out->kind) {
	case DP_APP_REGISTER: fixed = APP_REGISTER_FIXED; break;
	case DP_APP_REPORT: fixed = APP_REPORT_LEN; break;
	case DP_APP_ASSIGN: fixed = APP_ASSIGN_LEN; break;
	case DP_APP_RESULT: fixed = APP_RESULT_FIXED; break;
	case DP_APP_DROP: fixed = APP_DROP_LEN; break;
	default: return DP_PROTO_ERR_TYPE;
	}
	if (n < fixed)
		return DP_PROTO_ERR_LENGTH;

	size_t want = fixed;
	switch (out->kind) {
	case DP_APP_REGISTER: {
		struct dp_app_register *r = &out->u.reg;
		r->formats = d[1];
		r->n_res = d[2];
		want += (size_t)r->n_res * APP_REGISTER_RES;
		if (n != want)
			return DP_PROTO_ERR_LENGTH;
		if (r->n_res > DP_APP_MAX_RES)
			return DP_PROTO_ERR_INVALID;
		if (!format_ok(r->formats))
			return DP_PROTO_ERR_INVALID;
		r->slo_ms = dp_be16_get(d + 4);
		r->fps_x100 = dp_be16_get(d + 6);
		r->media_port = dp_be16_get(d + 8);
		for (unsigned i = 0; i < r->n_res; i++) {
			const uint8_t *e = d + APP_REGISTER_FIXED + i * APP_REGISTER_RES;
			r->res[i].width = dp_be16_get(e);
			r->res[i].height = dp_be16_get(e + 2);
		}
		break;
	}
	case DP_APP_REPORT: {
		struct dp_app_report *r = &out->u.report;
		if (n != want)
			return DP_PROTO_ERR_LENGTH;
		r->bw_kbps = dp_be32_get(d + 4);
		r->rtt_us = dp_be32_get(d + 8);
		r->frames_sent = dp_be32_get(d + 12);
		r->results_rcvd = dp_be32_get(d + 16);
		break;
	}
	case DP_APP_ASSIGN: {
		struct dp_app_assign *a = &out->u.assign;
		if (n != want)
			return DP_PROTO_ERR_LENGTH;
		a->format = d[1];
		a->served = d[2];
		a->reason = d[3];
		a->epoch = dp_be32_get(d + 4);
		memcpy(a->family, d + 8, DP_APP_VARIANT_LEN);
		a->variant = dp_be16_get(d + 24);
		a->width = dp_be16_get(d + 26);
		a->height = dp_be16_get(d + 28);
		a->fps_x100 = dp_be16_get(d + 30);
		a->target_bytes = dp_be32_get(d + 32);
		if (app_check(out) < 0)
			return DP_PROTO_ERR_INVALID;
		break;
	}
	case DP_APP_RESULT: {
		struct dp_app_result *r = &out->u.result;
		r->n_det = dp_be16_get(d + 2);
		want += (size_t)r->n_det * APP_RESULT_DET;
		if (n != want)
			return DP_PROTO_ERR_LENGTH;
		if (r->n_det > DP_APP_MAX_DET)
			return DP_PROTO_ERR_INVALID;
		r->rtp_ts = dp_be32_get(d + 4);
		r->variant = dp_be16_get(d + 8);
		r->server_us = dp_be32_get(d + 12);
		for (unsigned i = 0; i < r->n_det; i++) {
			const uint8_t *e = d + APP_RESULT_FIXED + i * APP_RESULT_DET;
			r->det[i].cls = dp_be16_get(e);
			r->det[i].score = dp_be16_get(e + 2);
			r->det[i].x = dp_be16_get(e + 4);
			r->det[i].y = dp_be16_get(e + 6);
			r->det[i].w = dp_be16_get(e + 8);
			r->det[i].h = dp_be16_get(e + 10);
		}
		break;
	}
	case DP_APP_DROP:
		if (n != want)
			return DP_PROTO_ERR_LENGTH;
		out->u.drop.reason = d[1];
		out->u.drop.rtp_ts = dp_be32_get(d + 4);
		if (!reason_ok(out->u.drop.reason))
			return DP_PROTO_ERR_INVALID;
		break;
	}
	return DP_PROTO_OK;
}
