/* RTCP codec (RFC 3550 §6): compound walk, SR, RR, BYE, SDES skipped. */
#include "harness.h"

#include "dataplane/dp_proto.h"

static void fill_rb(struct dp_rtcp_rb *rb, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		rb[i].ssrc = 0x1000 + i;
		rb[i].fraction_lost = (uint8_t)(i * 7);
		rb[i].cum_lost = (i & 1) ? -(int32_t)i * 1000 : (int32_t)i * 3000;
		rb[i].ext_high_seq = 0x10000u * i + 5;
		rb[i].jitter = 100 + i;
		rb[i].lsr = 0xabcd0000u + i;
		rb[i].dlsr = 0x00010000u * i;
	}
}

static int rb_equal(const struct dp_rtcp_rb *a, const struct dp_rtcp_rb *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i].ssrc != b[i].ssrc || a[i].fraction_lost != b[i].fraction_lost ||
		    a[i].cum_lost != b[i].cum_lost || a[i].ext_high_seq != b[i].ext_high_seq ||
		    a[i].jitter != b[i].jitter || a[i].lsr != b[i].lsr || a[i].dlsr != b[i].dlsr)
			return 0;
	return 1;
}

static int test_rtcp_compound_sr_rr_sdes_bye_roundtrip(void)
{
	static struct dp_rtcp_sr sr, sr2;
	static struct dp_rtcp_rr rr, rr2;
	static struct dp_rtcp_bye bye, bye2;
	uint8_t buf[2048];
	size_t n = 0;
	sr.ssrc = 0xdeadbeef;
	sr.ntp = 0x0123456789abcdefull;
	sr.rtp_ts = 90000;
	sr.pkt_count = 1234;
	sr.octet_count = 5678901;
	sr.n_rb = 31;
	fill_rb(sr.rb, 31);
	ssize_t r = dp_rtcp_sr_build(buf + n, sizeof buf - n, &sr);
	ST_CHECK_EQ(r, 4 + 24 + 31 * 24);
	n += (size_t)r;
	rr.ssrc = 42;
	rr.n_rb = 2;
	fill_rb(rr.rb, 2);
	r = dp_rtcp_rr_build(buf + n, sizeof buf - n, &rr);
	ST_CHECK_EQ(r, 4 + 4 + 48);
	n += (size_t)r;
	/* an SDES with one CNAME chunk, walked over */
	static const uint8_t sdes[] = {0x81, 202, 0, 3, 0, 0, 0, 42, 1, 3, 'a', 'b', 'c', 0, 0, 0};
	memcpy(buf + n, sdes, sizeof sdes);
	n += sizeof sdes;
	bye.n_ssrc = 2;
	bye.ssrc[0] = 42;
	bye.ssrc[1] = 43;
	bye.reason_len = 9;
	memcpy(bye.reason, "shut down", 9);
	r = dp_rtcp_bye_build(buf + n, sizeof buf - n, &bye);
	ST_CHECK_EQ(r, 4 + 8 + 12); /* 1 + 9 bytes of reason padded to 12 */
	n += (size_t)r;

	size_t off = 0;
	struct dp_rtcp_pkt p;
	ST_CHECK_EQ(dp_rtcp_next(buf, n, &off, &p), 1);
	ST_CHECK_EQ(p.pt, DP_RTCP_PT_SR);
	ST_CHECK_EQ(dp_rtcp_sr_parse(&p, &sr2), 0);
	ST_CHECK_EQ(sr2.ssrc, sr.ssrc);
	ST_CHECK(sr2.ntp == sr.ntp);
	ST_CHECK_EQ(sr2.rtp_ts, sr.rtp_ts);
	ST_CHECK_EQ(sr2.pkt_count, sr.pkt_count);
	ST_CHECK_EQ(sr2.octet_count, sr.octet_count);
	ST_CHECK_EQ(sr2.n_rb, 31);
	ST_CHECK(rb_equal(sr.rb, sr2.rb, 31));
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), DP_PROTO_ERR_TYPE);

	ST_CHECK_EQ(dp_rtcp_next(buf, n, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), 0);
	ST_CHECK_EQ(rr2.ssrc, 42);
	ST_CHECK_EQ(rr2.n_rb, 2);
	ST_CHECK(rb_equal(rr.rb, rr2.rb, 2));
	ST_CHECK_EQ(rr2.rb[1].cum_lost, -1000);

	ST_CHECK_EQ(dp_rtcp_next(buf, n, &off, &p), 1);
	ST_CHECK_EQ(p.pt, DP_RTCP_PT_SDES);
	ST_CHECK_EQ(p.count, 1);
	ST_CHECK_EQ(p.total_len, 16);

	ST_CHECK_EQ(dp_rtcp_next(buf, n, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_bye_parse(&p, &bye2), 0);
	ST_CHECK_EQ(bye2.n_ssrc, 2);
	ST_CHECK_EQ(bye2.ssrc[1], 43);
	ST_CHECK_EQ(bye2.reason_len, 9);
	ST_CHECK(strcmp(bye2.reason, "shut down") == 0);

	ST_CHECK_EQ(dp_rtcp_next(buf, n, &off, &p), 0);
	ST_CHECK_EQ(off, n);

	/* BYE without a reason, and cum_lost saturation */
	struct dp_rtcp_bye b0 = {0};
	b0.n_ssrc = 1;
	b0.ssrc[0] = 9;
	ST_CHECK_EQ(dp_rtcp_bye_build(buf, sizeof buf, &b0), 8);
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(buf, 8, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_bye_parse(&p, &bye2), 0);
	ST_CHECK_EQ(bye2.reason_len, 0);
	ST_CHECK_EQ(bye2.reason[0], 0);
	rr.n_rb = 2;
	rr.rb[0].cum_lost = 50000000;
	rr.rb[1].cum_lost = -50000000;
	r = dp_rtcp_rr_build(buf, sizeof buf, &rr);
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)r, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), 0);
	ST_CHECK_EQ(rr2.rb[0].cum_lost, 0x7fffff);
	ST_CHECK_EQ(rr2.rb[1].cum_lost, -0x800000);
	return ST_PASS;
}

static int test_rtcp_truncated_and_lying_lengths(void)
{
	static struct dp_rtcp_sr sr, sr2;
	static struct dp_rtcp_rr rr2;
	static struct dp_rtcp_bye bye, bye2;
	uint8_t buf[1024];
	sr.n_rb = 3;
	fill_rb(sr.rb, 3);
	ssize_t n = dp_rtcp_sr_build(buf, sizeof buf, &sr);
	ST_CHECK(n > 0);
	/* cut the datagram at every length: header missing, then length past the end */
	for (size_t l = 1; l < (size_t)n; l++) {
		size_t off = 0;
		struct dp_rtcp_pkt p;
		ST_CHECK_EQ(dp_rtcp_next(buf, l, &off, &p),
			    l < 4 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_LENGTH);
		ST_CHECK_EQ(off, 0);
	}
	/* the length field shrunk to every smaller value: fixed part short, then RC lies */
	for (uint16_t w = 0; w < (uint16_t)(n / 4 - 1); w++) {
		uint8_t c[1024];
		memcpy(c, buf, (size_t)n);
		c[2] = (uint8_t)(w >> 8);
		c[3] = (uint8_t)w;
		size_t off = 0;
		struct dp_rtcp_pkt p;
		ST_CHECK_EQ(dp_rtcp_next(c, (size_t)n, &off, &p), 1);
		ST_CHECK_EQ(dp_rtcp_sr_parse(&p, &sr2),
			    p.body_len < 24 ? DP_PROTO_ERR_TRUNCATED : DP_PROTO_ERR_LENGTH);
	}
	/* RR with a report count beyond its body */
	uint8_t rrp[8] = {0x81, 201, 0, 1, 0, 0, 0, 1};
	size_t off = 0;
	struct dp_rtcp_pkt p;
	ST_CHECK_EQ(dp_rtcp_next(rrp, 8, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), DP_PROTO_ERR_LENGTH);
	rrp[3] = 0;
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(rrp, 8, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), DP_PROTO_ERR_TRUNCATED);
	/* version */
	rrp[0] = 0x41;
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(rrp, 8, &off, &p), DP_PROTO_ERR_VERSION);
	/* padding 0 and larger than the body */
	uint8_t pad[12] = {0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(pad, 12, &off, &p), DP_PROTO_ERR_PADDING);
	pad[11] = 9;
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(pad, 12, &off, &p), DP_PROTO_ERR_PADDING);
	pad[11] = 4;
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(pad, 12, &off, &p), 1);
	ST_CHECK_EQ(p.body_len, 4);
	ST_CHECK_EQ(dp_rtcp_rr_parse(&p, &rr2), 0);

	/* BYE: SSRC count past the body, reason length past the body */
	bye.n_ssrc = 1;
	bye.reason_len = 5;
	memcpy(bye.reason, "later", 5);
	n = dp_rtcp_bye_build(buf, sizeof buf, &bye);
	ST_CHECK_EQ(n, 16);
	buf[0] = (uint8_t)(0x80 | 4); /* claims 4 SSRCs in 12 bytes */
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)n, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_bye_parse(&p, &bye2), DP_PROTO_ERR_LENGTH);
	buf[0] = 0x81;
	buf[8] = 8; /* reason length 8 but 7 bytes follow */
	off = 0;
	ST_CHECK_EQ(dp_rtcp_next(buf, (size_t)n, &off, &p), 1);
	ST_CHECK_EQ(dp_rtcp_bye_parse(&p, &bye2), DP_PROTO_ERR_LENGTH);
	buf[8] = 7;
	ST_CHECK_EQ(dp_rtcp_bye_parse(&p, &bye2), 0);
	ST_CHECK_EQ(bye2.reason_len, 7);

	/* builders refuse short buffers */
	for (size_t cap = 0; cap < 16; cap++)
		ST_CHECK_EQ(dp_rtcp_bye_build(buf, cap, &bye), DP_PROTO_ERR_NOSPACE);
	for (size_t cap = 0; cap < 28 + 3 * 24; cap++)
		ST_CHECK_EQ(dp_rtcp_sr_build(buf, cap, &sr), DP_PROTO_ERR_NOSPACE);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_rtcp_compound_sr_rr_sdes_bye_roundtrip),
	ST_CASE(test_rtcp_truncated_and_lying_lengths))
