/* fuzz_reasm — libFuzzer target for the DPDK data plane's receive path (DESIGN.md §9): the
 * input is a sequence of packets fed through dp_poll() on an ethdev made of two rte_rings, so
 * the bytes reach Ethernet/IPv4/UDP validation, RTP/RTCP parsing, the client table, frame
 * reassembly into staging slots, timeouts and eviction (a fake clock moves per packet), RESULT
 * and ASSIGN posting and DROP sending.
 *
 * Input: records of [c][len_hi][len_lo][len bytes] (len cut to what is left and to 1500):
 *   c bits 0-1  0, 1: the bytes are a UDP payload to the media port; 2: to the RTCP port
 *               (media + 1); 3: the bytes are a whole IPv4 packet (after a valid Ethernet
 *               header to the server's MAC)
 *   c bits 2-3  which of four clients sends (two addresses x two ports; UDP modes only)
 *   c bits 4-6  clock step after the packet: 0, 1 us, 1 ms, 20 ms, 60 ms (beyond the 50 ms
 *               frame timeout), 1 s (rate window), 11 s (beyond the 10 s idle timeout), 0
 *   c bit 7     the consumer takes every complete frame now (checks it, posts a RESULT with
 *               len % 64 detections, and an ASSIGN, then releases the slot); frames not taken
 *               fill the 16-entry frame ring and the 12 staging slots (overload paths)
 * IPv4 and UDP headers built here are valid (checksums included), so the bytes get past them.
 *
 * FUZZ_REASM_VERBOSE=1 prints the data plane's counters (cumulative) after each input.
 *
 * Invariants (a failure traps, which libFuzzer reports): every frame handed out lies inside
 * its slot, has a known format and the size its format implies (JPEG: SOI ... EOI); every
 * packet sent is well-formed IPv4 with correct checksums, and a UDP one is a parseable shoal
 * APP message from the RTCP port that fits the MTU; a RESULT goes to the address of the frame
 * it answers and is no larger than the UDP payload that carried that frame; every packet
 * received is counted under exactly one outcome (RTP/RTCP accepted, a reply, or one drop
 * kind; a frame refused at opening accounts for its packet); after each input, once every client has
 * been evicted and every frame released, the staging pool is whole again and the table empty.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/dp.h"

#define FZ_CHECK(cond)                                                                      \
	do {                                                                                    \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "fuzz_reasm.c:%d: invariant failed: %s\n", __LINE__, #cond); \
			__builtin_trap();                                                           \
		}                                                                                   \
	} while (0)

#define FZ_SRV_IP RTE_IPV4(10, 0, 0, 1)
#define FZ_MEDIA_PORT 5004
#define FZ_SLOTS 12
#define FZ_SLOT_SIZE (64 * 1024)
#define FZ_MS 1000000ull

static struct {
	struct rte_ring *rx, *tx;
	struct rte_mempool *mp;
	uint16_t port;
	struct rte_ether_addr srv_mac;
	struct gpu_staging *st;
	struct dp_ctx *ctx;
	uint64_t now;
	uint64_t injected; /* packets put on the RX ring */
	struct fz_posted { /* RESULTs posted, to check what goes out */
		uint32_t ip, ssrc, rtp_ts, wire_bytes;
	} posted[64];
	unsigned n_posted;
} fz;

static void fz_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t fz_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t fz_sum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fz_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=shoal_fz_%d", (int)getpid());
	char *eal[] = {"fuzz_reasm", "-l", "0", "--no-huge", "-m", "256", "--no-shconf",
		       "--no-telemetry", "--no-pci", "--log-level=*:error", prefix, NULL};
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])) - 1, eal) < 0) {
		fprintf(stderr, "fuzz_reasm: EAL cannot start: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	fz.rx = rte_ring_create("fzrx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	fz.tx = rte_ring_create("fztx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	fz.mp = rte_pktmbuf_pool_create("fzmp", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					SOCKET_ID_ANY);
	FZ_CHECK(fz.rx && fz.tx && fz.mp);
	int port = rte_eth_from_rings("fzport", &fz.rx, 1, &fz.tx, 1, SOCKET_ID_ANY);
	FZ_CHECK(port >= 0);
	fz.port = (uint16_t)port;
	FZ_CHECK(dp_port_init(fz.port, 1023, 512) == 0);
	rte_eth_macaddr_get(fz.port, &fz.srv_mac);
	fz.st = gpu_staging_create(FZ_SLOTS, FZ_SLOT_SIZE, NULL, 0);
	FZ_CHECK(fz.st != NULL);
	struct dp_config cfg;
	dp_config_defaults(&cfg);
	cfg.name = "fz";
	cfg.port_id = fz.port;
	cfg.ip = rte_cpu_to_be_32(FZ_SRV_IP);
	cfg.media_port = FZ_MEDIA_PORT;
	cfg.staging = fz.st;
	cfg.max_clients = 4;
	cfg.frames_per_client = 2;
	cfg.frame_timeout_ns = 50 * FZ_MS;
	cfg.idle_timeout_ns = 10000 * FZ_MS;
	cfg.scan_interval_ns = 0;
	cfg.default_raw_format = DP_FRAME_RAW420; /* the fixtures' raw streams: 160x120 */
	cfg.default_raw_width = 160;
	cfg.default_raw_height = 120;
	cfg.frame_ring_size = 16;
	cfg.post_ring_size = 16;
	cfg.tx_pool_size = 255;
	fz.ctx = dp_create(&cfg);
	FZ_CHECK(fz.ctx != NULL);
	fz.now = 1000 * FZ_MS;
	return 0;
}

/* Every packet the server sent: well-formed and, when UDP, a shoal message from the RTCP
 * port. */
static void fz_drain_tx(void)
{
	struct rte_mbuf *m[32];
	unsigned n;
	while ((n = rte_ring_dequeue_burst(fz.tx, (void **)m, 32, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *p = rte_pktmbuf_mtod(m[i], const uint8_t *);
			size_t len = rte_pktmbuf_pkt_len(m[i]);
			FZ_CHECK(m[i]->nb_segs == 1 && len >= 42 && len <= 1514);
			FZ_CHECK(memcmp(p + 6, fz.srv_mac.addr_bytes, 6) == 0);
			FZ_CHECK(fz_get16(p + 12) == 0x0800);
			const uint8_t *ip = p + 14;
			size_t ihl = (ip[0] & 15u) * 4;
			FZ_CHECK(ip[0] >> 4 == 4 && ihl >= 20 && fz_get16(ip + 2) == len - 14);
			FZ_CHECK(fz_fold(fz_sum(ip, ihl, 0)) == 0xffff);
			FZ_CHECK(fz_get16(ip + 12) == FZ_SRV_IP >> 16 &&
				 fz_get16(ip + 14) == (FZ_SRV_IP & 0xffff));
			if (ip[9] == 1) { /* echo reply */
				FZ_CHECK(fz_fold(fz_sum(ip + ihl, len - 14 - ihl, 0)) == 0xffff);
				continue;
			}
			FZ_CHECK(ip[9] == 17 && ihl == 20);
			const uint8_t *udp = ip + 20;
			size_t ulen = fz_get16(udp + 4);
			FZ_CHECK(ulen == len - 34 && ulen - 8 <= 1472);
			FZ_CHECK(fz_get16(udp) == FZ_MEDIA_PORT + 1);
			uint8_t ph[12];
			memcpy(ph, ip + 12, 8);
			ph[8] = 0;
			ph[9] = 17;
			fz_put16(ph + 10, (uint16_t)ulen);
			FZ_CHECK(fz_get16(udp + 6) != 0 &&
				 fz_fold(fz_sum(udp, ulen, fz_sum(ph, 12, 0))) == 0xffff);
			size_t off = 0;
			struct dp_rtcp_pkt pk;
			static struct dp_app_msg msg;
			FZ_CHECK(dp_rtcp_next(udp + 8, ulen - 8, &off, &pk) == 1 && off == ulen - 8);
			FZ_CHECK(dp_app_parse(&pk, &msg) == 0);
			FZ_CHECK(msg.kind == DP_APP_RESULT || msg.kind == DP_APP_ASSIGN ||
				 msg.kind == DP_APP_DROP);
			if (msg.kind == DP_APP_RESULT) { /* to the sender, never above what it sent */
				uint32_t dst = (uint32_t)fz_get16(ip + 16) << 16 | fz_get16(ip + 18);
				int found = 0;
				for (unsigned k = 0; k < fz.n_posted && k < 64; k++) {
					const struct fz_posted *q = &fz.posted[k];
					if (q->ssrc == msg.ssrc && q->rtp_ts == msg.u.result.rtp_ts &&
					    q->ip == dst && ulen - 8 <= q->wire_bytes)
						found = 1;
				}
				FZ_CHECK(found);
			}
		}
		rte_pktmbuf_free_bulk(m, n);
	}
}

/* The consumer: checks each complete frame, answers it, gives the slot back. */
static void fz_consume(unsigned n_det)
{
	struct dp_frame f[16];
	unsigned n;
	while ((n = dp_frames_dequeue(fz.ctx, f, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			FZ_CHECK(f[i].slot < FZ_SLOTS);
			FZ_CHECK(f[i].len > 0 && (size_t)f[i].offset + f[i].len <= FZ_SLOT_SIZE);
			FZ_CHECK(f[i].wire_bytes > 0);
			FZ_CHECK(f[i].arrival_ns <= f[i].complete_ns && f[i].complete_ns <= fz.now);
			const uint8_t *img = gpu_staging_slot(fz.st, f[i].slot) + f[i].offset;
			switch (f[i].format) {
			case DP_FRAME_JPEG:
				FZ_CHECK(f[i].len >= 4 && img[0] == 0xff && img[1] == 0xd8);
				FZ_CHECK(img[f[i].len - 2] == 0xff && img[f[i].len - 1] == 0xd9);
				FZ_CHECK(f[i].width > 0 && f[i].height > 0);
				break;
			case DP_FRAME_RAW420:
			case DP_FRAME_RAW422:
			case DP_FRAME_RAWRGB: {
				enum dp_raw_sampling s = DP_RAW_SAMPLING_RGB;
				if (f[i].format == DP_FRAME_RAW420)
					s = DP_RAW_SAMPLING_YCBCR420;
				else if (f[i].format == DP_FRAME_RAW422)
					s = DP_RAW_SAMPLING_YCBCR422;
				FZ_CHECK(dp_raw_frame_size(s, f[i].width, f[i].height) ==
					 (ssize_t)f[i].len);
				break;
			}
			default:
				FZ_CHECK(!"unknown frame format");
			}
			static struct dp_app_result r;
			r.rtp_ts = f[i].rtp_ts;
			r.variant = 320;
			r.n_det = (uint16_t)n_det;
			for (unsigned k = 0; k < n_det; k++)
				r.det[k].cls = (uint16_t)k;
			if (dp_result_post(fz.ctx, &f[i], &r) == 0)
				fz.posted[fz.n_posted++ % 64] = (struct fz_posted){
					rte_be_to_cpu_32(f[i].client.ip), f[i].client.ssrc, f[i].rtp_ts,
					f[i].wire_bytes};
			struct dp_app_assign a;
			memset(&a, 0, sizeof(a));
			a.epoch = 1;
			a.variant = 320;
			a.format = DP_APP_FMT_JPEG;
			a.served = 1;
			dp_assign_post(fz.ctx, &f[i].client, &a);
			FZ_CHECK(dp_frame_release(fz.ctx, &f[i]) == 0);
		}
	}
}

static void fz_poll(void)
{
	while (dp_poll(fz.ctx, fz.now) > 0)
		fz_drain_tx();
	dp_poll(fz.ctx, fz.now); /* posted messages, scan */
	fz_drain_tx();
}

/* One packet: mode (0-3), sending client (0-3), bytes. */
static void fz_inject(unsigned mode, unsigned who, const uint8_t *b, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(fz.mp);
	FZ_CHECK(m != NULL);
	size_t total = mode == 3 ? 14 + len : 42 + len;
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)total);
	FZ_CHECK(p != NULL);
	static const uint8_t cli_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
	memcpy(p, fz.srv_mac.addr_bytes, 6);
	memcpy(p + 6, cli_mac, 6);
	p[11] = (uint8_t)(2 + who);
	fz_put16(p + 12, 0x0800);
	if (mode == 3) {
		memcpy(p + 14, b, len);
	} else {
		uint8_t *ip = p + 14, *udp = p + 34;
		uint32_t src = RTE_IPV4(10, 0, 0, 2 + (who & 1));
		uint16_t sport = (uint16_t)(40000 + 2 * (who >> 1) + (mode == 2));
		memset(ip, 0, 20);
		ip[0] = 0x45;
		fz_put16(ip + 2, (uint16_t)(28 + len));
		ip[8] = 64;
		ip[9] = 17;
		fz_put16(ip + 12, (uint16_t)(src >> 16));
		fz_put16(ip + 14, (uint16_t)src);
		fz_put16(ip + 16, (uint16_t)(FZ_SRV_IP >> 16));
		fz_put16(ip + 18, (uint16_t)FZ_SRV_IP);
		fz_put16(ip + 10, (uint16_t)~fz_fold(fz_sum(ip, 20, 0)));
		fz_put16(udp, sport);
		fz_put16(udp + 2, (uint16_t)(FZ_MEDIA_PORT + (mode == 2)));
		fz_put16(udp + 4, (uint16_t)(8 + len));
		fz_put16(udp + 6, 0); /* no checksum */
		memcpy(udp + 8, b, len);
	}
	FZ_CHECK(rte_ring_enqueue(fz.rx, m) == 0);
	fz.injected++;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const uint64_t step[8] = {0, 1000, FZ_MS, 20 * FZ_MS, 60 * FZ_MS, 1000 * FZ_MS,
					 11000 * FZ_MS, 0};
	size_t off = 0;
	while (off + 3 <= n) {
		uint8_t c = d[off];
		size_t len = fz_get16(d + off + 1);
		off += 3;
		if (len > n - off)
			len = n - off;
		if (len > 1500)
			len = 1500;
		fz_inject(c & 3, (c >> 2) & 3, d + off, len);
		off += len;
		fz.now += step[(c >> 4) & 7];
		fz_poll();
		if (c & 0x80)
			fz_consume(len % 64);
	}
	/* end of input: take every frame, let every client go idle, then nothing may be held */
	fz_consume(1);
	fz_poll();
	fz.now += 11000 * FZ_MS;
	fz_poll();
	fz_consume(1);
	fz_poll();
	if (getenv("FUZZ_REASM_VERBOSE")) { /* replaying one input: what it did */
		uint64_t v[DP_CNT__COUNT];
		dp_counters_get(fz.ctx, v);
		for (unsigned i = 0; i < DP_CNT__COUNT; i++)
			if (v[i])
				fprintf(stderr, "  %s %llu\n", dp_cnt_name(i), (unsigned long long)v[i]);
	}
	/* every packet received has exactly one outcome; only a frame refused when it would open
	 * (no slot, too large) leaves its first packet counted as a frame, not a packet */
	static const unsigned outcome[] = {
		DP_CNT_ARP_REPLIES, DP_CNT_ICMP_REPLIES, DP_CNT_RTP_PKTS, DP_CNT_RTCP_PKTS,
		DP_CNT_DROP_RUNT, DP_CNT_DROP_MULTISEG, DP_CNT_DROP_ETHERTYPE, DP_CNT_DROP_NOT_MINE,
		DP_CNT_DROP_ARP, DP_CNT_DROP_IP_HDR, DP_CNT_DROP_IP_CKSUM, DP_CNT_DROP_IP_FRAG,
		DP_CNT_DROP_IP_PROTO, DP_CNT_DROP_ICMP, DP_CNT_DROP_UDP_HDR, DP_CNT_DROP_UDP_PORT,
		DP_CNT_DROP_RTP, DP_CNT_DROP_RTP_PT, DP_CNT_DROP_TABLE_FULL, DP_CNT_DROP_DUP,
		DP_CNT_DROP_STALE};
	uint64_t v[DP_CNT__COUNT], sum = 0;
	dp_counters_get(fz.ctx, v);
	for (unsigned i = 0; i < sizeof(outcome) / sizeof(outcome[0]); i++)
		sum += v[outcome[i]];
	FZ_CHECK(v[DP_CNT_RX_PKTS] == fz.injected);
	FZ_CHECK(sum <= v[DP_CNT_RX_PKTS]);
	FZ_CHECK(v[DP_CNT_RX_PKTS] <= sum + v[DP_CNT_FRAMES_TOO_LARGE] + v[DP_CNT_FRAMES_OVERLOAD]);
	FZ_CHECK(dp_client_count(fz.ctx) == 0);
	FZ_CHECK(gpu_staging_free_count(fz.st) == FZ_SLOTS);
	FZ_CHECK(rte_ring_count(fz.rx) == 0 && rte_ring_count(fz.tx) == 0);
	return 0;
}
