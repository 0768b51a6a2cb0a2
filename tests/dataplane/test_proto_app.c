/* shoal APP messages (RTCP PT 204, name "SHOL"): REGISTER, REPORT, ASSIGN, RESULT, DROP. */
#include "harness.h"

#include "dataplane/dp_proto.h"

static struct dp_app_msg msgs[5];

static void make_msgs(void)
{
	memset(msgs, 0, sizeof msgs);
	struct dp_app_msg *m = &msgs[0];
	m->kind = DP_APP_REGISTER;
	m->ssrc = 0x11223344;
	m->u.reg.slo_ms = 150;
	m->u.reg.fps_x100 = 2997;
	m->u.reg.media_port = 5004;
	m->u.reg.formats = DP_APP_FMT_JPEG | DP_APP_FMT_RAW420;
	m->u.reg.n_res = 3;
	m->u.reg.res[0] = (struct dp_app_res){1920, 1080};
	m->u.reg.res[1] = (struct dp_app_res){1280, 720};
	m->u.reg.res[2] = (struct dp_app_res){640, 360};
	m = &msgs[1];
	m->kind = DP_APP_REPORT;
	m->ssrc = 7;
	m->u.report = (struct dp_app_report){.bw_kbps = 25000, .rtt_us = 12345,
					     .frames_sent = 0xfffffff0u, .results_rcvd = 99};
	m = &msgs[2];
	m->kind = DP_APP_ASSIGN;
	m->ssrc = 8;
	m->u.assign.epoch = 77;
	memcpy(m->u.assign.family, "nanodet-m", 9);
	m->u.assign.variant = 320;
	m->u.assign.width = 640;
	m->u.assign.height = 480;
	m->u.assign.target_bytes = 40000;
	m->u.assign.fps_x100 = 1500;
	m->u.assign.format = DP_APP_FMT_JPEG;
	m->u.assign.served = 1;
	m = &msgs[3];
	m->kind = DP_APP_RESULT;
	m->ssrc = 9;
	m->u.result.rtp_ts = 0xcafef00d;
	m->u.result.variant = 416;
	m->u.result.server_us = 8100;
	m->u.result.n_det = DP_APP_MAX_DET;
	for (unsigned i = 0; i < DP_APP_MAX_DET; i++)
		m->u.result.det[i] = (struct dp_app_det){
			(uint16_t)(i % 80), (uint16_t)(i * 257), (uint16_t)i, (uint16_t)(i + 1),
			(uint16_t)(i + 2), (uint16_t)(65535 - i)};
	m = &msgs[4];
	m->kind = DP_APP_DROP;
	m->ssrc = 10;
	m->u.drop.rtp_ts = 3000;
	m->u.drop.reason = DP_APP_DROP_LATE;
}

/* Walks buf[0..n) as one RTCP packet and parses it as an APP message. */
static int parse_one(const uint8_t *buf, size_t n, struct dp_app_msg *out)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	int rc = dp_rtcp_next(buf, n, &off, &p);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -100;
	return dp_app_parse(&p, out);
}

static int test_app_roundtrip_every_kind(void)
{
	static struct dp_app_msg out;
	static uint8_t buf[4096];
	make_msgs();
	for (unsigned k = 0; k < 5; k++) {
		ssize_t sz = dp_app_size(&msgs[k]);
		ssize_t n = dp_app_build(buf, sizeof buf, &msgs[k]);
		ST_CHECK_EQ(n, sz);
		ST_CHECK_EQ(n % 4, 0);
		ST_CHECK_EQ(buf[0], 0x80 | msgs[k].kind);
		ST_CHECK_EQ(buf[1], 204);
		ST_CHECK_MEM(buf + 8, "SHOL", 4);
		ST_CHECK_EQ(buf[12], DP_APP_VERSION);
		ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
		ST_CHECK_EQ(out.kind, msgs[k].kind);
		ST_CHECK_EQ(out.ssrc, msgs[k].ssrc);
		/* the parsed message rebuilds to the same bytes */
		static uint8_t again[4096];
		ST_CHECK_EQ(dp_app_build(again, sizeof again, &out), n);
		ST_CHECK_MEM(again, buf, (size_t)n);
	}
	/* spot checks of decoded fields and of the byte layout (network order) */
	ssize_t n = dp_app_build(buf, sizeof buf, &msgs[0]);
	ST_CHECK_EQ(n, 12 + 12 + 3 * 4);
	ST_CHECK_EQ(buf[13], DP_APP_FMT_JPEG | DP_APP_FMT_RAW420);
	ST_CHECK_EQ(buf[14], 3);
	ST_CHECK_EQ(buf[16] << 8 | buf[17], 150);
	ST_CHECK_EQ(buf[24] << 8 | buf[25], 1920);
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	ST_CHECK_EQ(out.u.reg.fps_x100, 2997);
	ST_CHECK_EQ(out.u.reg.res[2].height, 360);
	n = dp_app_build(buf, sizeof buf, &msgs[3]);
	ST_CHECK_EQ(n, 12 + 16 + 255 * 12);
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	ST_CHECK_EQ(out.u.result.n_det, 255);
	ST_CHECK_EQ(out.u.result.det[254].h, 65535 - 254);
	ST_CHECK_EQ(out.u.result.rtp_ts, 0xcafef00d);
	n = dp_app_build(buf, sizeof buf, &msgs[2]);
	ST_CHECK_EQ(n, 12 + 36);
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	ST_CHECK(strcmp(out.u.assign.family, "nanodet-m") == 0);
	ST_CHECK_EQ(out.u.assign.target_bytes, 40000);
	/* an APP message after an RR in one compound datagram */
	struct dp_rtcp_rr rr = {0};
	rr.ssrc = 10;
	ssize_t a = dp_rtcp_rr_build(buf, sizeof buf, &rr);
	ssize_t b = dp_app_build(buf + a, sizeof buf - (size_t)a, &msgs[4]);
	size_t off = 0;
	struct dp_rtcp_pkt p;
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)(a + b), &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)(a + b), &off, &p), 1);
	ST_CHECK_EQ(dp_app_parse(&p, &out), 0);
	ST_CHECK_EQ(out.u.drop.reason, DP_APP_DROP_LATE);
	ST_CHECK_EQ(out.u.drop.rtp_ts, 3000);
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)(a + b), &off, &p), 0);
	return ST_PASS;
}

static int test_app_truncated_at_every_length(void)
{
	static struct dp_app_msg out;
	static uint8_t buf[4096], c[4096];
	make_msgs();
	msgs[3].u.result.n_det = 3;
	for (unsigned k = 0; k < 5; k++) {
		ssize_t n = dp_app_build(buf, sizeof buf, &msgs[k]);
		ST_CHECK(n > 0);
		/* datagram cut short: the RTCP walk refuses it */
		for (size_t l = 0; l < (size_t)n; l++) {
			int want = l == 0 ? -100 : l < 4 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_LENGTH;
			ST_CHECK_EQ(parse_one(buf, l, &out), want);
		}
		/* packet shortened consistently (length field rewritten): the message refuses */
		for (size_t l = 4; l < (size_t)n; l += 4) {
			memcpy(c, buf, l);
			c[2] = (uint8_t)((l / 4 - 1) >> 8);
			c[3] = (uint8_t)(l / 4 - 1);
			ST_CHECK_EQ(parse_one(c, l, &out),
				    l <= 12 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_LENGTH);
		}
		/* and lengthened with trailing zero words */
		memcpy(c, buf, (size_t)n);
		memset(c + n, 0, 8);
		c[2] = (uint8_t)(((size_t)n / 4 + 1) >> 8);
		c[3] = (uint8_t)((size_t)n / 4 + 1);
		ST_CHECK_EQ(parse_one(c, (size_t)n + 8, &out), DP_PROTO_ERR_LENGTH);
	}
	return ST_PASS;
}

static int test_app_counts_version_kind_name(void)
{
	static struct dp_app_msg out;
	static uint8_t buf[4096];
	make_msgs();
	/* REGISTER whose n_res exceeds what the length holds */
	ssize_t n = dp_app_build(buf, sizeof buf, &msgs[0]);
	buf[14] = 4;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_LENGTH);
	buf[14] = 255;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_LENGTH);
	buf[14] = 2;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_LENGTH);
	buf[14] = 3;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	/* RESULT whose n_det exceeds the length */
	msgs[3].u.result.n_det = 2;
	n = dp_app_build(buf, sizeof buf, &msgs[3]);
	buf[15] = 3;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_LENGTH);
	buf[14] = 1;
	buf[15] = 2;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_LENGTH);
	buf[14] = 0;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	/* version */
	buf[12] = 2;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_APP_VERSION);
	buf[12] = 0;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_APP_VERSION);
	buf[12] = DP_APP_VERSION;
	/* unknown kinds */
	for (uint8_t k = 0; k < 32; k++) {
		buf[0] = (uint8_t)(0x80 | k);
		int want = (k == DP_APP_RESULT) ? 0
			   : (k >= 1 && k <= 5) ? DP_PROTO_ERR_LENGTH /* other kind's size */
						: DP_PROTO_ERR_TYPE;
		ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), want);
	}
	buf[0] = 0x80 | DP_APP_RESULT;
	/* name and packet type */
	buf[8] = 'X';
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_APP_NAME);
	buf[8] = 'S';
	buf[1] = 201;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_TYPE);
	buf[1] = 204;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	/* forbidden field values */
	n = dp_app_build(buf, sizeof buf, &msgs[4]);
	buf[13] = 0;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_INVALID);
	buf[13] = 99;
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_INVALID);
	n = dp_app_build(buf, sizeof buf, &msgs[2]);
	buf[13] = DP_APP_FMT_JPEG | DP_APP_FMT_RAW422; /* two formats at once */
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_INVALID);
	/* builder refusals */
	struct dp_app_msg bad = msgs[0];
	bad.u.reg.n_res = DP_APP_MAX_RES + 1;
	ST_CHECK_EQ(dp_app_build(buf, sizeof buf, &bad), DP_PROTO_ERR_INVALID);
	bad = msgs[0];
	bad.kind = 9;
	ST_CHECK_EQ(dp_app_size(&bad), DP_PROTO_ERR_TYPE);
	ST_CHECK_EQ(dp_app_build(buf, sizeof buf, &bad), DP_PROTO_ERR_TYPE);
	for (size_t cap = 0; cap < 24 + 12; cap++)
		ST_CHECK_EQ(dp_app_build(buf, cap, &msgs[0]), DP_PROTO_ERR_NOSPACE);
	bad = msgs[2];
	bad.u.assign.served = 0;
	bad.u.assign.reason = 0;
	ST_CHECK_EQ(dp_app_build(buf, sizeof buf, &bad), DP_PROTO_ERR_INVALID);
	bad.u.assign.reason = DP_APP_DROP_NOT_SERVED;
	ST_CHECK_EQ(dp_app_build(buf, sizeof buf, &bad), 48);
	ST_CHECK_EQ(parse_one(buf, 48, &out), 0);
	ST_CHECK_EQ(out.u.assign.served, 0);
	ST_CHECK_EQ(out.u.assign.reason, DP_APP_DROP_NOT_SERVED);
	return ST_PASS;
}

/* Regression (found by fuzz_proto): an ASSIGN marked served with a non-zero reason byte was
 * accepted, and built back with reason 0, so parse -> build -> parse changed the message.
 * Both directions now refuse it. */
static int test_app_assign_served_with_reason_refused(void)
{
	static struct dp_app_msg out;
	static uint8_t buf[256];
	make_msgs();
	ssize_t n = dp_app_build(buf, sizeof buf, &msgs[2]);
	ST_CHECK(n > 0);
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	ST_CHECK_EQ(out.u.assign.reason, 0);
	buf[12 + 3] = 0x0f; /* reason byte of a served ASSIGN */
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), DP_PROTO_ERR_INVALID);
	msgs[2].u.assign.reason = DP_APP_DROP_LATE;
	ST_CHECK_EQ(dp_app_build(buf, sizeof buf, &msgs[2]), DP_PROTO_ERR_INVALID);
	/* not served: a reason is required and kept */
	msgs[2].u.assign.served = 0;
	n = dp_app_build(buf, sizeof buf, &msgs[2]);
	ST_CHECK(n > 0);
	ST_CHECK_EQ(parse_one(buf, (size_t)n, &out), 0);
	ST_CHECK_EQ(out.u.assign.reason, DP_APP_DROP_LATE);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_app_roundtrip_every_kind), ST_CASE(test_app_truncated_at_every_length),
	ST_CASE(test_app_counts_version_kind_name), ST_CASE(test_app_assign_served_with_reason_refused))
