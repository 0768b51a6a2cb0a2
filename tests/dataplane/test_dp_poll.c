/* Tests of the DPDK data plane (dataplane/dp.h) through its real poll loop, on crafted
 * packets (see test_dp_fixture.h): ARP/ICMP, malformed packets by kind, reassembly (reorder,
 * duplicates, loss and timeouts, wraps, oversize), the client table, RESULT/ASSIGN,
 * dp_run with a consumer thread. meson runs each case in its own process. */
#include <pthread.h>

#include "test_dp_fixture.h"

/* The server sent exactly one packet, a well-formed shoal message to the client's UDP port
 * dport (see check_udp_out); it is parsed into msg, its UDP payload length goes to *plen when
 * plen is not NULL. 0, or -1 with the reason printed. The packet is freed. */
static int take_one_app(struct fx *f, uint16_t dport, struct dp_app_msg *msg, size_t *plen)
{
	struct rte_mbuf *out[4];
	unsigned n = take_tx(f, out, 4);
	size_t len = 0;
	const uint8_t *pl = n == 1 ? check_udp_out(out[0], dport, &len) : NULL;
	int rc = pl && parse_app(pl, len, msg) == 0 ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "expected one shoal message to port %u: %u packet(s) sent%s\n",
			dport, n, n == 1 ? ", not a well-formed one" : "");
	if (plen)
		*plen = len;
	free_all(out, n);
	return rc;
}

static int test_arp_request_for_server_answered(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	struct rte_mbuf *m;
	uint8_t *p = mk_frame(&f, &m, 60);
	memset(p, 0xff, 6); /* broadcast */
	put16(p + 12, 0x0806);
	uint8_t *a = p + 14;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);
	memcpy(a + 8, cli_mac.addr_bytes, 6);
	put32(a + 14, CLI_IP);
	put32(a + 24, SRV_IP);
	inject(&f, m);
	/* and one for another address: not answered */
	p = mk_frame(&f, &m, 60);
	memset(p, 0xff, 6);
	put16(p + 12, 0x0806);
	memcpy(p + 14, a, 28);
	put32(p + 14 + 24, SRV_IP + 1);
	inject(&f, m);
	poll_all(&f);
	struct rte_mbuf *out[4];
	unsigned n = take_tx(&f, out, 4);
	ST_CHECK_EQ(n, 1);
	const uint8_t *r = rte_pktmbuf_mtod(out[0], const uint8_t *);
	ST_CHECK_EQ(rte_pktmbuf_pkt_len(out[0]), 42);
	ST_CHECK_MEM(r, cli_mac.addr_bytes, 6);
	ST_CHECK_MEM(r + 6, f.srv_mac.addr_bytes, 6);
	ST_CHECK_EQ(get16(r + 12), 0x0806);
	ST_CHECK_EQ(get16(r + 14 + 6), 2); /* reply */
	ST_CHECK_MEM(r + 14 + 8, f.srv_mac.addr_bytes, 6);
	ST_CHECK_EQ(get32(r + 14 + 14), SRV_IP);
	ST_CHECK_MEM(r + 14 + 18, cli_mac.addr_bytes, 6);
	ST_CHECK_EQ(get32(r + 14 + 24), CLI_IP);
	ST_CHECK_EQ(cnt(&f, DP_CNT_ARP_REPLIES), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_ARP), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_TX_PKTS), 1);
	free_all(out, n);
	fx_teardown(&f);
	return ST_PASS;
}

static struct rte_mbuf *mk_echo(struct fx *f, size_t data_len, int corrupt)
{
	struct rte_mbuf *m;
	size_t icmp_len = 8 + data_len;
	uint8_t *p = mk_frame(f, &m, 14 + 20 + icmp_len + 6); /* + Ethernet padding */
	put16(p + 12, 0x0800);
	uint8_t *icmp = p + 34;
	icmp[0] = 8;
	put16(icmp + 4, 0x4242);
	put16(icmp + 6, 7);
	for (size_t i = 0; i < data_len; i++)
		icmp[8 + i] = (uint8_t)(i * 3);
	put16(icmp + 2, (uint16_t)~fold(sum16(icmp, icmp_len, 0)));
	if (corrupt)
		icmp[9] ^= 1;
	ip_fill(p + 14, 1, CLI_IP, SRV_IP, 20 + icmp_len);
	return m;
}

static int test_icmp_echo_answered_with_valid_checksums(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	inject(&f, mk_echo(&f, 57, 0)); /* odd length exercises the checksum tail */
	inject(&f, mk_echo(&f, 56, 1)); /* bad ICMP checksum: dropped */
	poll_all(&f);
	struct rte_mbuf *out[4];
	unsigned n = take_tx(&f, out, 4);
	ST_CHECK_EQ(n, 1);
	const uint8_t *r = rte_pktmbuf_mtod(out[0], const uint8_t *);
	size_t icmp_len = 8 + 57;
	ST_CHECK_EQ(rte_pktmbuf_pkt_len(out[0]), 34 + icmp_len); /* padding removed */
	ST_CHECK_MEM(r, cli_mac.addr_bytes, 6);
	ST_CHECK_MEM(r + 6, f.srv_mac.addr_bytes, 6);
	const uint8_t *ip = r + 14, *icmp = r + 34;
	ST_CHECK_EQ(fold(sum16(ip, 20, 0)), 0xffff);
	ST_CHECK_EQ(get32(ip + 12), SRV_IP);
	ST_CHECK_EQ(get32(ip + 16), CLI_IP);
	ST_CHECK_EQ(icmp[0], 0);
	ST_CHECK_EQ(fold(sum16(icmp, icmp_len, 0)), 0xffff);
	ST_CHECK_EQ(get16(icmp + 4), 0x4242);
	ST_CHECK_EQ(get16(icmp + 6), 7);
	for (size_t i = 0; i < 57; i++)
		ST_CHECK_EQ(icmp[8 + i], (uint8_t)(i * 3));
	ST_CHECK_EQ(cnt(&f, DP_CNT_ICMP_REPLIES), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_ICMP), 1);
	free_all(out, n);
	fx_teardown(&f);
	return ST_PASS;
}

/* One malformed packet of each kind: exactly its counter moves and nothing is sent. */
static int test_malformed_packets_counted_by_kind(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint8_t rtp[40];
	rtp_hdr(rtp, 96, 0, 1, 1, 99);
	uint64_t before[DP_CNT__COUNT];
	struct rte_mbuf *m;
	uint8_t *p;
	struct {
		const char *what;
		unsigned counter;
		unsigned also[2]; /* counters that move too (0: none) */
	} kinds[] = {
		{"runt", DP_CNT_DROP_RUNT, {0, 0}},           {"ipv6", DP_CNT_DROP_ETHERTYPE, {0, 0}},
		{"other mac", DP_CNT_DROP_NOT_MINE, {0, 0}},  {"version 6", DP_CNT_DROP_IP_HDR, {0, 0}},
		{"ihl 4", DP_CNT_DROP_IP_HDR, {0, 0}},        {"total len", DP_CNT_DROP_IP_HDR, {0, 0}},
		{"ip cksum", DP_CNT_DROP_IP_CKSUM, {0, 0}},   {"MF", DP_CNT_DROP_IP_FRAG, {0, 0}},
		{"frag offset", DP_CNT_DROP_IP_FRAG, {0, 0}}, {"tcp", DP_CNT_DROP_IP_PROTO, {0, 0}},
		{"other ip", DP_CNT_DROP_NOT_MINE, {0, 0}},   {"udp len", DP_CNT_DROP_UDP_HDR, {0, 0}},
		{"udp port", DP_CNT_DROP_UDP_PORT, {0, 0}},   {"rtp version", DP_CNT_DROP_RTP, {0, 0}},
		{"rtp pt", DP_CNT_DROP_RTP_PT, {0, 0}},
		{"raw payload", DP_CNT_DROP_PAYLOAD, {DP_CNT_CLIENTS_NEW, DP_CNT_RTP_PKTS}},
		{"rtcp", DP_CNT_DROP_RTCP, {DP_CNT_RTCP_PKTS}},
		{"icmp type", DP_CNT_DROP_ICMP, {0, 0}},
	};
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		dp_counters_get(f.ctx, before);
		m = mk_udp(&f, CLI_IP, CLI_PORT, MEDIA_PORT, rtp, sizeof(rtp));
		p = rte_pktmbuf_mtod(m, uint8_t *);
		uint8_t *ip = p + 14;
		int reip = 1;
		switch (k) {
		case 0:
			rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - 10));
			reip = 0;
			break;
		case 1:
			put16(p + 12, 0x86dd);
			break;
		case 2:
			p[5] ^= 1;
			break;
		case 3:
			ip[0] = 0x65;
			break;
		case 4:
			ip[0] = 0x44;
			break;
		case 5:
			put16(ip + 2, 200);
			break;
		case 6:
			ip[10] ^= 0x55;
			reip = 0;
			break;
		case 7:
			put16(ip + 6, 0x2000);
			break;
		case 8:
			put16(ip + 6, 0x0010);
			break;
		case 9:
			ip[9] = 6;
			break;
		case 10:
			put32(ip + 16, SRV_IP + 5);
			break;
		case 11:
			put16(p + 34 + 4, 200);
			break;
		case 12:
			put16(p + 34 + 2, 7777);
			break;
		case 13:
			p[42] = 0x40;
			break;
		case 14:
			p[43] = 97;
			break;
		case 15: /* RFC 4175 line header running past the end */
			put16(p + 42 + 14, 500);
			break;
		case 16: /* RTCP with a bad length */
			put16(p + 34 + 2, MEDIA_PORT + 1);
			p[42] = 0x80;
			p[43] = 201;
			put16(p + 44, 50);
			break;
		case 17: /* ICMP timestamp request */
			ip[9] = 1;
			p[34] = 13;
			break;
		}
		if (reip) {
			put16(ip + 10, 0);
			put16(ip + 10, (uint16_t)~fold(sum16(ip, (ip[0] & 15) * 4u, 0)));
		}
		inject(&f, m);
		poll_all(&f);
		for (unsigned a = 0; a < 2; a++)
			if (kinds[k].also[a])
				before[kinds[k].also[a]]++;
		if (!only_counter_moved(&f, before, kinds[k].counter)) {
			fprintf(stderr, "malformed case '%s'\n", kinds[k].what);
			return ST_FAIL;
		}
	}
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	fx_teardown(&f);
	return ST_PASS;
}

/* Lines of a raw frame shuffled and duplicated: one frame, byte exact, duplicates counted. */
static int test_raw_frame_reordered_duplicated_is_exact(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	const unsigned order[] = {5, 0, 15, 3, 2, 1, 4, 9, 8, 7, 6, 14, 13, 12, 11, 10};
	uint32_t ts = 90000;
	for (unsigned i = 0; i < RH; i++) {
		unsigned y = order[i];
		inject(&f, mk_raw_line(&f, 77, CLI_PORT, (uint16_t)(100 + y), ts, y));
		if (i % 4 == 0) /* duplicates */
			inject(&f, mk_raw_line(&f, 77, CLI_PORT, (uint16_t)(100 + y), ts, y));
	}
	poll_all(&f);
	struct dp_frame d[2];
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 2), 1);
	ST_CHECK(raw_frame_ok(&f, &d[0], ts));
	ST_CHECK_EQ(d[0].client.ip, rte_cpu_to_be_32(CLI_IP));
	ST_CHECK_EQ(d[0].client.port, CLI_PORT);
	ST_CHECK_EQ(d[0].client.ssrc, 77);
	ST_CHECK_EQ(d[0].arrival_ns, f.now);
	ST_CHECK_EQ(d[0].deadline_ns, f.now + 100 * MS); /* default SLO */
	ST_CHECK_EQ(d[0].wire_bytes, RH * (12 + 8 + RLINE));
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_DUP), 4);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_COMPLETE), 1);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &d[0].client, &cs), 0);
	ST_CHECK_EQ(cs.packets, RH);
	ST_CHECK_EQ(cs.dup_packets, 4);
	ST_CHECK_EQ(cs.frames_complete, 1);
	ST_CHECK_EQ(cs.managed, 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 3);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0); /* nothing to say to the client */
	fx_teardown(&f);
	return ST_PASS;
}

/* Three frames whose sequence numbers run through 65535 -> 0, and the RTP timestamp through
 * 2^32 -> 0: all complete, extended sequence counts the wrap. */
static int test_raw_frames_across_seq_and_ts_wrap(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint16_t seq = 65530;
	uint32_t ts = 0xffffffffu - 3000;
	for (int fr = 0; fr < 3; fr++) {
		for (unsigned y = 0; y < RH; y++)
			inject(&f, mk_raw_line(&f, 5, CLI_PORT, seq++, ts, y));
		poll_all(&f);
		struct dp_frame d;
		ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
		ST_CHECK(raw_frame_ok(&f, &d, ts));
		ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
		ts += 3000;
		f.now += 33 * MS;
	}
	struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, 5};
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.frames_complete, 3);
	ST_CHECK_EQ(cs.stale_packets, 0);
	ST_CHECK_EQ(cs.ext_seq_max, 65536u + (uint16_t)(seq - 1));
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_timeout_50ms(struct dp_config *c) { c->frame_timeout_ns = 50 * MS; }

/* A frame missing one line: nothing until the timeout, then DROP(INCOMPLETE) to the sender's
 * RTCP port with correct checksums, the slot back in the pool, the straggler stale. */
static int test_lost_packet_drop_sent_after_timeout(void)
{
	FX_BEGIN(f, cfg_timeout_50ms, 4, 65536);
	uint32_t ts = 1234;
	for (unsigned y = 0; y < RH; y++)
		if (y != 7)
			inject(&f, mk_raw_line(&f, 42, CLI_PORT, (uint16_t)y, ts, y));
	poll_all(&f);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 3);
	f.now += 50 * MS - 1;
	poll_all(&f);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	f.now += 1;
	poll_all(&f);
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, CLI_PORT + 1, &msg, NULL), 0);
	ST_CHECK_EQ(msg.kind, DP_APP_DROP);
	ST_CHECK_EQ(msg.ssrc, 42);
	ST_CHECK_EQ(msg.u.drop.rtp_ts, ts);
	ST_CHECK_EQ(msg.u.drop.reason, DP_APP_DROP_INCOMPLETE);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_INCOMPLETE), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), 1);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 0);
	inject(&f, mk_raw_line(&f, 42, CLI_PORT, 7, ts, 7)); /* too late */
	poll_all(&f);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_STALE), 1);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

/* With two frames open per client, a third timestamp pushes the oldest out at once. */
static int test_third_open_frame_abandons_oldest(void)
{
	FX_BEGIN(f, NULL, 8, 65536);
	inject(&f, mk_raw_line(&f, 9, CLI_PORT, 0, 3000, 0));
	inject(&f, mk_raw_line(&f, 9, CLI_PORT, 20, 6000, 0));
	poll_all(&f);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	inject(&f, mk_raw_line(&f, 9, CLI_PORT, 40, 9000, 0));
	poll_all(&f);
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, CLI_PORT + 1, &msg, NULL), 0);
	ST_CHECK_EQ(msg.kind, DP_APP_DROP);
	ST_CHECK_EQ(msg.u.drop.rtp_ts, 3000);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 6);
	/* the remaining lines of 6000 still complete it */
	for (unsigned y = 1; y < RH; y++)
		inject(&f, mk_raw_line(&f, 9, CLI_PORT, (uint16_t)(20 + y), 6000, y));
	poll_all(&f);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK(raw_frame_ok(&f, &d, 6000));
	dp_frame_release(f.ctx, &d);
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_big_raw(struct dp_config *c) { c->default_raw_width = 640; }

/* A raw frame larger than a staging slot is refused with DROP(TOO_LARGE), once. */
static int test_oversize_frame_dropped_too_large(void)
{
	FX_BEGIN(f, cfg_big_raw, 4, 16384); /* 640x16 RGB = 30720 bytes > 16384 */
	inject(&f, mk_raw_line(&f, 3, CLI_PORT, 0, 100, 0));
	inject(&f, mk_raw_line(&f, 3, CLI_PORT, 1, 100, 1));
	poll_all(&f);
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, CLI_PORT + 1, &msg, NULL), 0);
	ST_CHECK_EQ(msg.kind, DP_APP_DROP);
	ST_CHECK_EQ(msg.u.drop.reason, DP_APP_DROP_TOO_LARGE);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_TOO_LARGE), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_STALE), 1);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

/* JPEG (RFC 2435) payload: 8-byte main header, Q 50 (tables computed, none in band). */
static struct rte_mbuf *mk_jpeg(struct fx *f, uint32_t ssrc, uint16_t seq, uint32_t ts,
				uint32_t off, const uint8_t *data, size_t n, int marker)
{
	uint8_t b[12 + 8 + 1400];
	size_t o = rtp_hdr(b, 26, marker, seq, ts, ssrc);
	b[o] = 0;
	b[o + 1] = (uint8_t)(off >> 16);
	b[o + 2] = (uint8_t)(off >> 8);
	b[o + 3] = (uint8_t)off;
	b[o + 4] = 1;  /* 4:2:0 */
	b[o + 5] = 50; /* Q */
	b[o + 6] = 64 / 8;
	b[o + 7] = 48 / 8;
	memcpy(b + o + 8, data, n);
	return mk_udp(f, CLI_IP, CLI_PORT, MEDIA_PORT, b, o + 8 + n);
}

/* A JPEG frame whose fragments arrive reversed: one JFIF image whose scan data are the bytes
 * sent, between the rebuilt headers and EOI. A fragment beyond the slot: DROP(TOO_LARGE). */
static int test_jpeg_fragments_reordered_reassembled(void)
{
	FX_BEGIN(f, NULL, 4, 16384);
	uint8_t scan[3000];
	for (size_t i = 0; i < sizeof(scan); i++)
		scan[i] = (uint8_t)(i % 251 == 0xff ? 0 : i % 251);
	for (int k = 2; k >= 0; k--)
		inject(&f, mk_jpeg(&f, 11, (uint16_t)(500 + k), 7000, (uint32_t)k * 1000,
				   scan + k * 1000, 1000, k == 2));
	poll_all(&f);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(d.format, DP_FRAME_JPEG);
	ST_CHECK_EQ(d.width, 64);
	ST_CHECK_EQ(d.height, 48);
	ST_CHECK_EQ(d.rtp_ts, 7000);
	const uint8_t *img = gpu_staging_slot(f.st, d.slot) + d.offset;
	ST_CHECK(d.len > sizeof(scan) + 4);
	ST_CHECK(img[0] == 0xff && img[1] == 0xd8);
	ST_CHECK(img[d.len - 2] == 0xff && img[d.len - 1] == 0xd9);
	ST_CHECK_MEM(img + d.len - 2 - sizeof(scan), scan, sizeof(scan));
	dp_frame_release(f.ctx, &d);
	/* fragment offset far past the slot */
	inject(&f, mk_jpeg(&f, 11, 600, 8000, 0, scan, 1000, 0));
	inject(&f, mk_jpeg(&f, 11, 601, 8000, 20000, scan, 1000, 1));
	poll_all(&f);
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, CLI_PORT + 1, &msg, NULL), 0);
	ST_CHECK_EQ(msg.u.drop.reason, DP_APP_DROP_TOO_LARGE);
	ST_CHECK_EQ(msg.u.drop.rtp_ts, 8000);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_4_clients(struct dp_config *c)
{
	c->max_clients = 4;
	c->idle_timeout_ns = 2000 * MS;
	c->frame_timeout_ns = 10000 * MS; /* keep frames open: eviction must free them */
}

/* Table of 4: the fifth stream is counted and dropped; idle clients are evicted and their
 * places reused; removal keeps every other client reachable. */
static int test_client_table_full_then_idle_eviction(void)
{
	FX_BEGIN(f, cfg_4_clients, 16, 65536);
	for (uint32_t s = 1; s <= 5; s++)
		inject(&f, mk_raw_line(&f, s, (uint16_t)(CLI_PORT + s), 0, 100, 0));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_count(f.ctx), 4);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_TABLE_FULL), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_CLIENTS_NEW), 4);
	struct dp_client_stats cs;
	struct dp_client_key k5 = {rte_cpu_to_be_32(CLI_IP), CLI_PORT + 5, 5};
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k5, &cs), -ENOENT);
	/* clients 1 and 2 keep talking; 3 and 4 go idle */
	f.now += 1500 * MS;
	for (uint32_t s = 1; s <= 2; s++)
		inject(&f, mk_raw_line(&f, s, (uint16_t)(CLI_PORT + s), 1, 100, 1));
	poll_all(&f);
	f.now += 600 * MS;
	poll_all(&f);
	ST_CHECK_EQ(dp_client_count(f.ctx), 2);
	ST_CHECK_EQ(cnt(&f, DP_CNT_CLIENTS_EVICTED), 2);
	for (uint32_t s = 1; s <= 4; s++) {
		struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), (uint16_t)(CLI_PORT + s), s};
		ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), s <= 2 ? 0 : -ENOENT);
	}
	/* their open frames went back to the pool (2 clients x 1 frame still open) */
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 16 - 2);
	inject(&f, mk_raw_line(&f, 5, CLI_PORT + 5, 0, 100, 0));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k5, &cs), 0);
	ST_CHECK_EQ(dp_client_count(f.ctx), 3);
	fx_teardown(&f);
	return ST_PASS;
}


/* REGISTER makes a managed client with its SLO and raw layout; RESULT for one of its frames
 * goes to its RTCP port, cut to stay below the frame's bytes; BYE removes it. */
static int test_register_result_bye(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	struct dp_app_msg reg;
	memset(&reg, 0, sizeof(reg));
	reg.kind = DP_APP_REGISTER;
	reg.ssrc = 21;
	reg.u.reg.slo_ms = 250;
	reg.u.reg.fps_x100 = 1500;
	reg.u.reg.media_port = CLI_PORT;
	reg.u.reg.formats = DP_APP_FMT_RAWRGB;
	reg.u.reg.n_res = 1;
	reg.u.reg.res[0].width = 32;
	reg.u.reg.res[0].height = 16;
	inject(&f, mk_app(&f, 41000, &reg));
	poll_all(&f);
	ST_CHECK_EQ(cnt(&f, DP_CNT_REGISTERS), 1);
	struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, 21};
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.managed, 1);
	ST_CHECK_EQ(cs.slo_ms, 250);
	ST_CHECK_EQ(cs.rtcp_port, 41000);
	/* 32x16 RGB: half of each 64-pixel test line; send 32-pixel lines */
	for (unsigned y = 0; y < 16; y++) {
		uint8_t b[12 + 8 + 96];
		size_t o = rtp_hdr(b, 96, y == 15, (uint16_t)y, 500, 21);
		put16(b + o, 0);
		put16(b + o + 2, 96);
		put16(b + o + 4, (uint16_t)y);
		put16(b + o + 6, 0);
		memset(b + o + 8, (int)y, 96);
		inject(&f, mk_udp(&f, CLI_IP, CLI_PORT, MEDIA_PORT, b, sizeof(b)));
	}
	poll_all(&f);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(d.width, 32);
	ST_CHECK_EQ(d.len, 32 * 16 * 3);
	ST_CHECK_EQ(d.deadline_ns, d.arrival_ns + 250 * MS);
	const uint8_t *img = gpu_staging_slot(f.st, d.slot) + d.offset;
	ST_CHECK_EQ(img[5 * 96 + 10], 5);
	struct dp_app_result r;
	memset(&r, 0, sizeof(r));
	r.rtp_ts = 500;
	r.variant = 320;
	r.n_det = 200; /* far more than the frame's bytes allow */
	for (unsigned i = 0; i < r.n_det; i++)
		r.det[i].cls = (uint16_t)i;
	ST_CHECK_EQ(dp_result_post(f.ctx, &d, &r), 0);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	poll_all(&f);
	size_t plen;
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, 41000, &msg, &plen), 0);
	ST_CHECK(plen <= d.wire_bytes);
	ST_CHECK(plen <= 1472);
	ST_CHECK_EQ(msg.kind, DP_APP_RESULT);
	ST_CHECK_EQ(msg.ssrc, 21);
	ST_CHECK_EQ(msg.u.result.rtp_ts, 500);
	ST_CHECK(msg.u.result.n_det > 0 && msg.u.result.n_det < 200);
	ST_CHECK_EQ(msg.u.result.det[3].cls, 3);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_TRIMMED), 1);
	/* an ASSIGN for it, then BYE from its RTCP port (media port + 1 convention) */
	struct dp_app_assign as;
	memset(&as, 0, sizeof(as));
	as.epoch = 3;
	as.variant = 256;
	as.served = 1;
	ST_CHECK_EQ(dp_assign_post(f.ctx, &k, &as), 0);
	poll_all(&f);
	ST_CHECK_EQ(take_one_app(&f, 41000, &msg, NULL), 0);
	ST_CHECK_EQ(msg.kind, DP_APP_ASSIGN);
	ST_CHECK_EQ(msg.u.assign.epoch, 3);
	inject(&f, mk_bye(&f, 21));
	poll_all(&f);
	ST_CHECK_EQ(cnt(&f, DP_CNT_BYES), 1);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), -ENOENT);
	/* a RESULT for a client that left is not sent */
	ST_CHECK_EQ(dp_result_post(f.ctx, &d, &r), 0);
	poll_all(&f);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_POST_NO_CLIENT), 1);
	fx_teardown(&f);
	return ST_PASS;
}

/* One staging slot, two frames at once: the second is refused with DROP(OVERLOAD). */
static int test_no_staging_slot_drop_overload(void)
{
	FX_BEGIN(f, NULL, 1, 65536);
	inject(&f, mk_raw_line(&f, 8, CLI_PORT, 0, 100, 0));
	inject(&f, mk_raw_line(&f, 8, CLI_PORT, 20, 200, 0));
	poll_all(&f);
	struct dp_app_msg msg;
	ST_CHECK_EQ(take_one_app(&f, CLI_PORT + 1, &msg, NULL), 0);
	ST_CHECK_EQ(msg.u.drop.reason, DP_APP_DROP_OVERLOAD);
	ST_CHECK_EQ(msg.u.drop.rtp_ts, 200);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_OVERLOAD), 1);
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_256_clients(struct dp_config *c) { c->max_clients = 256; }


/* The table filled to capacity, then half its clients removed in a scrambled order: after
 * every removal each remaining client is still found and each removed one is gone (checks
 * the backward-shift deletion); freed places are reused. */
static int test_client_table_insert_remove_consistent(void)
{
	FX_BEGIN(f, cfg_256_clients, 600, 4096);
	uint32_t ssrc[256];
	uint8_t gone[256] = {0};
	for (unsigned i = 0; i < 256; i++) {
		ssrc[i] = i * 2654435761u + 17;
		inject(&f, mk_raw_line(&f, ssrc[i], CLI_PORT, 0, 100, 0));
		if (i % 64 == 63)
			poll_all(&f);
	}
	poll_all(&f);
	ST_CHECK_EQ(dp_client_count(f.ctx), 256);
	inject(&f, mk_raw_line(&f, 999, CLI_PORT, 0, 100, 0));
	poll_all(&f);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROP_TABLE_FULL), 1);
	struct dp_client_stats cs;
	for (unsigned r = 0; r < 128; r++) {
		unsigned victim = (r * 97 + 13) % 256;
		while (gone[victim])
			victim = (victim + 1) % 256;
		gone[victim] = 1;
		inject(&f, mk_bye(&f, ssrc[victim]));
		poll_all(&f);
		for (unsigned i = 0; i < 256; i++) {
			struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, ssrc[i]};
			int rc = dp_client_stats_get(f.ctx, &k, &cs);
			if (rc != (gone[i] ? -ENOENT : 0)) {
				fprintf(stderr, "after %u removals client %u: %d\n", r + 1, i, rc);
				return ST_FAIL;
			}
		}
	}
	ST_CHECK_EQ(dp_client_count(f.ctx), 128);
	ST_CHECK_EQ(cnt(&f, DP_CNT_CLIENTS_REMOVED), 128);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 600 - 128);
	for (uint32_t i = 0; i < 128; i++)
		inject(&f, mk_raw_line(&f, 5000 + i, CLI_PORT, 0, 100, 0));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_count(f.ctx), 256);
	for (uint32_t i = 0; i < 128; i++) {
		struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, 5000 + i};
		ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	}
	fx_teardown(&f);
	return ST_PASS;
}

/* Ten frames in one second: the rate window reports 10 fps and the payload bit rate. */
static int test_client_rate_over_window(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint64_t t0 = f.now;
	for (unsigned k = 0; k < 10; k++) {
		f.now = t0 + k * 100 * MS;
		for (unsigned y = 0; y < RH; y++)
			inject(&f, mk_raw_line(&f, 6, CLI_PORT, (uint16_t)(k * RH + y), k * 9000, y));
		poll_all(&f);
		struct dp_frame d;
		ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
		dp_frame_release(f.ctx, &d);
	}
	struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, 6};
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.fps_x100, 0); /* window not over yet */
	f.now = t0 + 1000 * MS;
	poll_all(&f);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.fps_x100, 1000);
	ST_CHECK_EQ(cs.bits_per_s, 10ull * RH * (12 + 8 + RLINE) * 8);
	ST_CHECK_EQ(cs.bytes, 10ull * RH * (12 + 8 + RLINE));
	ST_CHECK_EQ(cs.frames_complete, 10);
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_flood(struct dp_config *c) { c->frame_timeout_ns = 50 * MS; }

/* Many clients at once through a lossy, reordering, duplicating network (fixed seed): every
 * frame whose packets all arrived is delivered byte-exact, every other frame that reached the
 * server ends as a DROP(INCOMPLETE), nothing else is dropped, and every slot comes back. */
static int test_many_clients_lossy_network_accounting(void)
{
	enum { NC = 16, NF = 50, NP = NC * NF * RH };
	FX_BEGIN(f, cfg_flood, 48, 4096);
	static struct pk {
		uint16_t c, fr, y;
		uint8_t lost, dup;
	} pk[NP];
	static uint8_t delivered[NC][NF], all[NC][NF];
	uint64_t rng = 0x9e3779b97f4a7c15ull;
#define RNG() (rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, rng)
	unsigned n = 0;
	for (unsigned fr = 0; fr < NF; fr++)
		for (unsigned y = 0; y < RH; y++)
			for (unsigned c = 0; c < NC; c++)
				pk[n++] = (struct pk){(uint16_t)c, (uint16_t)fr, (uint16_t)y,
						      RNG() % 100 < 1, RNG() % 100 < 1};
	for (unsigned i = 0; i + 1 < NP; i++)
		if (RNG() % 100 < 5) {
			struct pk t = pk[i];
			pk[i] = pk[i + 1];
			pk[i + 1] = t;
		}
	memset(all, 1, sizeof(all));
	for (unsigned i = 0; i < NP; i++) {
		if (pk[i].lost)
			all[pk[i].c][pk[i].fr] = 0;
		else
			delivered[pk[i].c][pk[i].fr] = 1;
	}
	unsigned got = 0, bad = 0;
	for (unsigned i = 0; i < NP; i++) {
		struct pk *q = &pk[i];
		uint32_t ssrc = 1000 + q->c, ts = 3000u * q->fr + 1;
		uint16_t seq = (uint16_t)(q->fr * RH + q->y + 65000u);
		for (int r = 0; r < (q->lost ? 0 : q->dup ? 2 : 1); r++)
			inject(&f, mk_raw_line(&f, ssrc, (uint16_t)(CLI_PORT + q->c), seq, ts, q->y));
		if (i % 64 == 63 || i + 1 == NP) {
			f.now += MS;
			poll_all(&f);
			struct dp_frame d;
			while (dp_frames_dequeue(f.ctx, &d, 1) == 1) {
				unsigned c = d.client.ssrc - 1000, fr = (d.rtp_ts - 1) / 3000;
				if (c >= NC || fr >= NF || !all[c][fr] || !raw_frame_ok(&f, &d, d.rtp_ts))
					bad++;
				got++;
				dp_frame_release(f.ctx, &d);
			}
		}
	}
	f.now += 100 * MS; /* every open frame times out */
	poll_all(&f);
	unsigned want_complete = 0, want_incomplete = 0;
	for (unsigned c = 0; c < NC; c++)
		for (unsigned fr = 0; fr < NF; fr++) {
			want_complete += all[c][fr];
			want_incomplete += delivered[c][fr] && !all[c][fr];
		}
	ST_CHECK_EQ(bad, 0);
	ST_CHECK_EQ(got, want_complete);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_COMPLETE), want_complete);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_INCOMPLETE), want_incomplete);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_OVERLOAD) + cnt(&f, DP_CNT_FRAMES_TOO_LARGE) +
			    cnt(&f, DP_CNT_FRAMES_BAD),
		    0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), want_incomplete);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 48);
	ST_CHECK_EQ(dp_client_count(f.ctx), NC);
	printf("%u frames complete, %u incomplete, %llu duplicates, %llu stale\n", want_complete,
	       want_incomplete, (unsigned long long)cnt(&f, DP_CNT_DROP_DUP),
	       (unsigned long long)cnt(&f, DP_CNT_DROP_STALE));
	fx_teardown(&f);
	return ST_PASS;
#undef RNG
}

struct run_arg {
	struct dp_ctx *ctx;
	volatile int stop;
};

static void *run_thread(void *p)
{
	struct run_arg *a = p;
	dp_run(a->ctx, &a->stop);
	return NULL;
}

/* dp_run on its own thread with the real clock; this thread sends 50 frames, consumes them,
 * posts a RESULT for each and releases the slots: every frame and every RESULT goes through,
 * and every slot comes back. */
static void cfg_slow_machine(struct dp_config *c)
{
	c->frame_timeout_ns = 5000 * MS; /* a loaded CI machine must not time frames out */
	c->scan_interval_ns = MS;
}

static int test_run_loop_with_consumer_thread(void)
{
	FX_BEGIN(f, cfg_slow_machine, 4, 65536);
	struct run_arg a = {f.ctx, 0};
	pthread_t th;
	ST_CHECK(pthread_create(&th, NULL, run_thread, &a) == 0);
	unsigned frames = 0, results = 0;
	struct dp_app_result r;
	memset(&r, 0, sizeof(r));
	r.n_det = 2;
	uint64_t t_end = dp_now_ns() + 20ull * 1000 * MS;
	for (unsigned k = 0; k < 50; k++) {
		for (unsigned y = 0; y < RH; y++) {
			struct rte_mbuf *m = mk_raw_line(&f, 31, CLI_PORT, (uint16_t)(k * RH + y),
							 k * 3000, y);
			while (rte_ring_enqueue(f.rx, m) != 0)
				;
		}
		/* consume whatever is ready; keep at most 2 frames in the consumer's hands */
		for (;;) {
			struct dp_frame d;
			if (dp_frames_dequeue(f.ctx, &d, 1) == 1) {
				ST_CHECK(raw_frame_ok(&f, &d, frames * 3000));
				r.rtp_ts = d.rtp_ts;
				while (dp_result_post(f.ctx, &d, &r) == -ENOBUFS)
					;
				ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
				frames++;
			}
			struct rte_mbuf *out[8];
			unsigned n = take_tx(&f, out, 8);
			for (unsigned i = 0; i < n; i++) {
				size_t plen;
				const uint8_t *pl = check_udp_out(out[i], CLI_PORT + 1, &plen);
				struct dp_app_msg msg;
				ST_CHECK(pl && parse_app(pl, plen, &msg) == 0);
				ST_CHECK_EQ(msg.kind, DP_APP_RESULT);
				ST_CHECK_EQ(msg.u.result.rtp_ts, results * 3000);
				results++;
			}
			free_all(out, n);
			if (frames + 1 >= k || dp_now_ns() > t_end)
				break;
		}
	}
	while ((frames < 50 || results < 50) && dp_now_ns() < t_end) {
		struct dp_frame d;
		if (dp_frames_dequeue(f.ctx, &d, 1) == 1) {
			ST_CHECK(raw_frame_ok(&f, &d, frames * 3000));
			r.rtp_ts = d.rtp_ts;
			while (dp_result_post(f.ctx, &d, &r) == -ENOBUFS)
				;
			ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
			frames++;
		}
		struct rte_mbuf *out[8];
		unsigned n = take_tx(&f, out, 8);
		results += n;
		free_all(out, n);
	}
	a.stop = 1;
	pthread_join(th, NULL);
	ST_CHECK_EQ(frames, 50);
	ST_CHECK_EQ(results, 50);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_COMPLETE), 50);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_SENT), 50);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_arp_request_for_server_answered),
	ST_CASE(test_icmp_echo_answered_with_valid_checksums),
	ST_CASE(test_malformed_packets_counted_by_kind),
	ST_CASE(test_raw_frame_reordered_duplicated_is_exact),
	ST_CASE(test_raw_frames_across_seq_and_ts_wrap),
	ST_CASE(test_lost_packet_drop_sent_after_timeout),
	ST_CASE(test_third_open_frame_abandons_oldest),
	ST_CASE(test_oversize_frame_dropped_too_large),
	ST_CASE(test_jpeg_fragments_reordered_reassembled),
	ST_CASE(test_client_table_full_then_idle_eviction), ST_CASE(test_register_result_bye),
	ST_CASE(test_no_staging_slot_drop_overload),
	ST_CASE(test_client_table_insert_remove_consistent), ST_CASE(test_client_rate_over_window),
	ST_CASE(test_run_loop_with_consumer_thread),
	ST_CASE(test_many_clients_lossy_network_accounting))
