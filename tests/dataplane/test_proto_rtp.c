/* RTP header codec (RFC 3550 §5.1) and sequence tracking (appendix A.1). */
#include "harness.h"

#include "dataplane/dp_proto.h"

static int test_rtp_roundtrip_csrc_ext_padding(void)
{
	static const uint8_t ext[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct dp_rtp_hdr h = {0};
	h.padding = 1;
	h.extension = 1;
	h.csrc_count = 3;
	h.marker = 1;
	h.payload_type = DP_RTP_PT_JPEG;
	h.seq = 0xfffe;
	h.timestamp = 0x89abcdef;
	h.ssrc = 0x01020304;
	h.csrc[0] = 11;
	h.csrc[1] = 22;
	h.csrc[2] = 0xffffffff;
	h.ext_profile = 0xbede;
	h.ext_words = 2;
	h.ext = ext;
	uint8_t pkt[128];
	ssize_t n = dp_rtp_build(pkt, sizeof pkt, &h);
	ST_CHECK_EQ(n, 12 + 12 + 4 + 8);
	ST_CHECK_EQ(pkt[0], 0x80 | 0x20 | 0x10 | 3);
	ST_CHECK_EQ(pkt[1], 0x80 | 26);
	/* payload of 5 bytes plus 3 bytes of padding */
	memcpy(pkt + n, "hello", 5);
	pkt[n + 5] = 0;
	pkt[n + 6] = 0;
	pkt[n + 7] = 3;
	struct dp_rtp_hdr p;
	ST_CHECK_EQ(dp_rtp_parse(pkt, (size_t)n + 8, &p), 0);
	ST_CHECK_EQ(p.padding, 1);
	ST_CHECK_EQ(p.extension, 1);
	ST_CHECK_EQ(p.csrc_count, 3);
	ST_CHECK_EQ(p.marker, 1);
	ST_CHECK_EQ(p.payload_type, 26);
	ST_CHECK_EQ(p.seq, 0xfffe);
	ST_CHECK_EQ(p.timestamp, 0x89abcdef);
	ST_CHECK_EQ(p.ssrc, 0x01020304);
	ST_CHECK_EQ(p.csrc[2], 0xffffffff);
	ST_CHECK_EQ(p.ext_profile, 0xbede);
	ST_CHECK_EQ(p.ext_words, 2);
	ST_CHECK_MEM(p.ext, ext, 8);
	ST_CHECK_EQ(p.pad_len, 3);
	ST_CHECK_EQ(p.payload_len, 5);
	ST_CHECK_MEM(p.payload, "hello", 5);

	/* plain header: no CSRC, no extension, no padding */
	struct dp_rtp_hdr q = {0};
	q.payload_type = 96;
	q.seq = 7;
	n = dp_rtp_build(pkt, sizeof pkt, &q);
	ST_CHECK_EQ(n, 12);
	ST_CHECK_EQ(dp_rtp_parse(pkt, 12, &p), 0);
	ST_CHECK_EQ(p.payload_len, 0);
	ST_CHECK_EQ(p.seq, 7);
	return ST_PASS;
}

static int test_rtp_malformed_each_code(void)
{
	uint8_t pkt[64] = {0};
	struct dp_rtp_hdr p;
	/* every length below the fixed header is truncated */
	pkt[0] = 0x80;
	for (size_t l = 0; l < 12; l++)
		ST_CHECK_EQ(dp_rtp_parse(pkt, l, &p), DP_PROTO_ERR_TRUNCATED);
	/* version */
	for (uint8_t v = 0; v < 4; v++) {
		pkt[0] = (uint8_t)(v << 6);
		ST_CHECK_EQ(dp_rtp_parse(pkt, 12, &p), v == 2 ? 0 : DP_PROTO_ERR_VERSION);
	}
	/* CSRC count past the end: CC=15 needs 60 bytes after the header */
	pkt[0] = 0x80 | 15;
	for (size_t l = 12; l < 12 + 60; l++)
		ST_CHECK_EQ(dp_rtp_parse(pkt, l, &p), DP_PROTO_ERR_CSRC);
	/* extension header and extension data past the end */
	memset(pkt, 0, sizeof pkt);
	pkt[0] = 0x90;
	pkt[14] = 0;
	pkt[15] = 3; /* 3 words */
	for (size_t l = 12; l < 12 + 4 + 12; l++)
		ST_CHECK_EQ(dp_rtp_parse(pkt, l, &p), DP_PROTO_ERR_EXTENSION);
	ST_CHECK_EQ(dp_rtp_parse(pkt, 28, &p), 0);
	/* padding count 0 and larger than the payload */
	memset(pkt, 0, sizeof pkt);
	pkt[0] = 0xa0;
	pkt[19] = 0;
	ST_CHECK_EQ(dp_rtp_parse(pkt, 20, &p), DP_PROTO_ERR_PADDING);
	pkt[19] = 9;
	ST_CHECK_EQ(dp_rtp_parse(pkt, 20, &p), DP_PROTO_ERR_PADDING);
	pkt[19] = 8; /* exactly the whole payload */
	ST_CHECK_EQ(dp_rtp_parse(pkt, 20, &p), 0);
	ST_CHECK_EQ(p.payload_len, 0);
	/* padding cannot eat into CSRCs */
	pkt[0] = 0xa1;
	pkt[19] = 5;
	ST_CHECK_EQ(dp_rtp_parse(pkt, 20, &p), DP_PROTO_ERR_PADDING);

	/* builder: no space, bad fields */
	struct dp_rtp_hdr h = {0};
	h.csrc_count = 2;
	for (size_t cap = 0; cap < 20; cap++)
		ST_CHECK_EQ(dp_rtp_build(pkt, cap, &h), DP_PROTO_ERR_NOSPACE);
	ST_CHECK_EQ(dp_rtp_build(pkt, 20, &h), 20);
	h.csrc_count = 16;
	ST_CHECK_EQ(dp_rtp_build(pkt, sizeof pkt, &h), DP_PROTO_ERR_INVALID);
	h.csrc_count = 0;
	h.payload_type = 128;
	ST_CHECK_EQ(dp_rtp_build(pkt, sizeof pkt, &h), DP_PROTO_ERR_INVALID);
	return ST_PASS;
}

static int test_rtp_seq_diff_wraps(void)
{
	ST_CHECK_EQ(dp_rtp_seq_diff(65535, 0), 1);
	ST_CHECK_EQ(dp_rtp_seq_diff(0, 65535), -1);
	ST_CHECK_EQ(dp_rtp_seq_diff(65000, 100), 636);
	ST_CHECK_EQ(dp_rtp_seq_diff(5, 5), 0);
	ST_CHECK_EQ(dp_rtp_seq_diff(0, 32767), 32767);
	ST_CHECK_EQ(dp_rtp_seq_diff(0, 32768), -32768);
	return ST_PASS;
}

static int test_rtp_seq_extended_across_wrap(void)
{
	struct dp_rtp_seq s = {0};
	ST_CHECK_EQ(dp_rtp_seq_update(&s, 65530), 65530);
	uint32_t last = 65530;
	/* run through two wraps in order */
	for (uint32_t i = 1; i < 2 * 65536 + 10; i++) {
		uint32_t e = dp_rtp_seq_update(&s, (uint16_t)(65530 + i));
		ST_CHECK_EQ(e, last + 1);
		last = e;
	}
	ST_CHECK_EQ(s.cycles, 3u << 16); /* 65530 + 131081 = 3 * 65536 + 3 */
	ST_CHECK_EQ(s.received, 2 * 65536 + 10);
	/* a late packet from before the last wrap keeps its own cycle */
	struct dp_rtp_seq t = {0};
	dp_rtp_seq_update(&t, 65534);
	dp_rtp_seq_update(&t, 65535);
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 1), 65536 + 1);          /* gap of one (0 lost) */
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 0), 65536 + 0);          /* 0 arrives late */
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 65533), 65533);          /* very late: old cycle */
	ST_CHECK_EQ(t.max_seq, 1);
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 2), 65536 + 2);
	ST_CHECK_EQ(t.received, 6);
	/* a big jump is believed only when the next packet follows it */
	dp_rtp_seq_update(&t, 30000);
	ST_CHECK_EQ(t.max_seq, 2);
	ST_CHECK_EQ(t.received, 6);
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 30001), 65536 + 30001);
	ST_CHECK_EQ(t.max_seq, 30001);
	ST_CHECK_EQ(dp_rtp_seq_update(&t, 30002), 65536 + 30002);
	return ST_PASS;
}

static int test_proto_strerror_every_code(void)
{
	for (int e = 0; e > -DP_PROTO_ERR__COUNT; e--) {
		const char *s = dp_proto_strerror(e);
		ST_CHECK(s && *s);
		ST_CHECK(strstr(s, "unknown") == NULL);
		for (int o = 0; o > e; o--)
			ST_CHECK(strcmp(s, dp_proto_strerror(o)) != 0);
	}
	ST_CHECK(strstr(dp_proto_strerror(-DP_PROTO_ERR__COUNT), "unknown") != NULL);
	ST_CHECK(strstr(dp_proto_strerror(5), "unknown") != NULL);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_rtp_roundtrip_csrc_ext_padding), ST_CASE(test_rtp_malformed_each_code),
	ST_CASE(test_rtp_seq_diff_wraps), ST_CASE(test_rtp_seq_extended_across_wrap),
	ST_CASE(test_proto_strerror_every_code))
