/* Shared by the tests/dataplane/test_dp_*.c files: an in-process EAL (no hugepages, own file
 * prefix, one lcore), an ethdev made of two rte_rings (the test enqueues crafted packets on
 * the RX ring and reads what the server sent from the TX ring), a dp_ctx polled with a chosen
 * clock, and packet crafting/checking written independently of the codec's builders. */
#ifndef SHOAL_TEST_DP_FIXTURE_H
#define SHOAL_TEST_DP_FIXTURE_H

#include <arpa/inet.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/dp.h"
#include "harness.h"

#define SRV_IP RTE_IPV4(10, 0, 0, 1)
#define CLI_IP RTE_IPV4(10, 0, 0, 2)
#define MEDIA_PORT 5004
#define CLI_PORT 40000
#define MS 1000000ull

static const struct rte_ether_addr cli_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

/* ---- fixture ---------------------------------------------------------------------------- */
struct fx {
	struct rte_ring *rx, *tx;
	uint16_t port;
	struct rte_mempool *mp;
	struct gpu_staging *st;
	struct dp_ctx *ctx;
	struct rte_ether_addr srv_mac;
	uint64_t now;
};

static int eal_state; /* 0 untried, 1 ready, -1 failed */
/* raw layout for streams that never register, per case (stock senders) */
static uint8_t raw_format = DP_FRAME_RAWRGB;
static uint16_t raw_w = 64, raw_h = 16;

static inline int eal_up(void)
{
	if (eal_state)
		return eal_state > 0;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=shoal_dpt_%d", (int)getpid());
	char *argv[] = {"test_dp_poll", "-l", "0", "--no-huge", "-m", "512", "--no-shconf",
			"--no-telemetry", "--no-pci", "--log-level=lib.eal:error", prefix, NULL};
	int rc = rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv);
	if (rc < 0) {
		printf("EAL cannot initialise here (%s); need root or memory\n",
		       rte_strerror(rte_errno));
		eal_state = -1;
		return 0;
	}
	eal_state = 1;
	return 1;
}

typedef void (*cfg_fn)(struct dp_config *);

static inline int fx_setup(struct fx *f, cfg_fn tweak, unsigned n_slots, size_t slot_size)
{
	static int seq;
	char name[32];
	memset(f, 0, sizeof(*f));
	seq++;
	snprintf(name, sizeof(name), "trx%d", seq);
	f->rx = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "ttx%d", seq);
	f->tx = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "tmp%d", seq);
	f->mp = rte_pktmbuf_pool_create(name, 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					SOCKET_ID_ANY);
	if (!f->rx || !f->tx || !f->mp)
		return -1;
	snprintf(name, sizeof(name), "tport%d", seq);
	int port = rte_eth_from_rings(name, &f->rx, 1, &f->tx, 1, SOCKET_ID_ANY);
	if (port < 0)
		return -1;
	f->port = (uint16_t)port;
	if (dp_port_init(f->port, 1023, 512) != 0)
		return -1;
	rte_eth_macaddr_get(f->port, &f->srv_mac);
	snprintf(name, sizeof(name), "tst%d", seq);
	f->st = gpu_staging_create(n_slots, slot_size, NULL, 0);
	if (!f->st)
		return -1;
	struct dp_config cfg;
	dp_config_defaults(&cfg);
	snprintf(name, sizeof(name), "c%d", seq);
	cfg.name = name;
	cfg.port_id = f->port;
	cfg.ip = rte_cpu_to_be_32(SRV_IP);
	cfg.media_port = MEDIA_PORT;
	cfg.staging = f->st;
	cfg.default_raw_format = raw_format;
	cfg.default_raw_width = raw_w;
	cfg.default_raw_height = raw_h;
	cfg.scan_interval_ns = 0; /* scan on every poll: deterministic timeouts */
	if (tweak)
		tweak(&cfg);
	f->ctx = dp_create(&cfg);
	f->now = 1000 * MS;
	return f->ctx ? 0 : -1;
}

static inline void fx_teardown(struct fx *f)
{
	void *m = NULL;
	dp_destroy(f->ctx);
	dp_port_fini(f->port);
	while (rte_ring_dequeue(f->tx, &m) == 0)
		rte_pktmbuf_free(m);
	while (rte_ring_dequeue(f->rx, &m) == 0)
		rte_pktmbuf_free(m);
	gpu_staging_destroy(f->st);
	rte_mempool_free(f->mp);
	rte_ring_free(f->rx);
	rte_ring_free(f->tx);
}

#define FX_BEGIN(f, tweak, nslots, slotsz)                                                   \
	ST_SKIP_IF(!eal_up(), "DPDK EAL could not be initialised");                           \
	struct fx f;                                                                          \
	ST_CHECK(fx_setup(&f, (tweak), (nslots), (slotsz)) == 0)

static inline uint64_t cnt(struct fx *f, unsigned c)
{
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(f->ctx, v);
	return v[c];
}

/* Counters that changed from before to now, other than rx_pkts/rx_bytes. */
static inline int only_counter_moved(struct fx *f, const uint64_t before[DP_CNT__COUNT], unsigned c)
{
	uint64_t now[DP_CNT__COUNT];
	dp_counters_get(f->ctx, now);
	for (unsigned i = 0; i < DP_CNT__COUNT; i++) {
		if (i == DP_CNT_RX_PKTS || i == DP_CNT_RX_BYTES)
			continue;
		uint64_t want = before[i] + (i == c ? 1 : 0);
		if (now[i] != want) {
			fprintf(stderr, "counter %s: %llu -> %llu (expected %llu)\n", dp_cnt_name(i),
				(unsigned long long)before[i], (unsigned long long)now[i],
				(unsigned long long)want);
			return 0;
		}
	}
	return 1;
}

/* ---- independent packet crafting ------------------------------------------------------------ */
static inline uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static inline uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* Ethernet + IPv4 (+ payload already in place at 34) in a new mbuf: returns the bytes. */
static inline uint8_t *mk_frame(struct fx *f, struct rte_mbuf **out, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(f->mp);
	if (!m)
		return NULL;
	uint8_t *p = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	if (!p) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(p, 0, len);
	memcpy(p, f->srv_mac.addr_bytes, 6);
	memcpy(p + 6, cli_mac.addr_bytes, 6);
	*out = m;
	return p;
}

static inline void ip_fill(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst, size_t ip_len)
{
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)ip_len);
	put16(ip + 4, 0x1234);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
}

static inline uint16_t udp_cksum(const uint8_t *ip, const uint8_t *udp, size_t ulen)
{
	uint8_t ph[12];
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	put16(ph + 10, (uint16_t)ulen);
	return fold(sum16(udp, ulen, sum16(ph, 12, 0)));
}

static inline struct rte_mbuf *mk_udp(struct fx *f, uint32_t src_ip, uint16_t sport, uint16_t dport,
			       const uint8_t *pl, size_t plen)
{
	struct rte_mbuf *m;
	uint8_t *p = mk_frame(f, &m, 42 + plen);
	if (!p)
		return NULL;
	put16(p + 12, 0x0800);
	uint8_t *udp = p + 34;
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)(8 + plen));
	memcpy(udp + 8, pl, plen);
	ip_fill(p + 14, 17, src_ip, SRV_IP, 28 + plen);
	put16(udp + 6, (uint16_t)~udp_cksum(p + 14, udp, 8 + plen));
	return m;
}

static inline void inject(struct fx *f, struct rte_mbuf *m) { rte_ring_enqueue(f->rx, m); }

static inline void poll_all(struct fx *f)
{
	while (dp_poll(f->ctx, f->now) > 0)
		;
	dp_poll(f->ctx, f->now);
}

static inline unsigned take_tx(struct fx *f, struct rte_mbuf **out, unsigned n)
{
	return rte_ring_dequeue_burst(f->tx, (void **)out, n, NULL);
}

static inline void free_all(struct rte_mbuf **m, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		rte_pktmbuf_free(m[i]);
}

/* A transmitted UDP packet is well formed, to the client, with correct checksums; returns
 * its UDP payload. */
static inline const uint8_t *check_udp_out(struct rte_mbuf *m, uint16_t dport, size_t *plen)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	size_t len = rte_pktmbuf_pkt_len(m);
	if (len < 42 || memcmp(p, cli_mac.addr_bytes, 6) != 0 || get16(p + 12) != 0x0800)
		return NULL;
	const uint8_t *ip = p + 14, *udp = p + 34;
	if (ip[0] != 0x45 || fold(sum16(ip, 20, 0)) != 0xffff || ip[9] != 17 ||
	    get32(ip + 12) != SRV_IP || get32(ip + 16) != CLI_IP || get16(ip + 2) != len - 14)
		return NULL;
	size_t ulen = get16(udp + 4);
	if (ulen != len - 34 || get16(udp) != MEDIA_PORT + 1 || get16(udp + 2) != dport)
		return NULL;
	if (get16(udp + 6) == 0 || udp_cksum(ip, udp, ulen) != 0xffff)
		return NULL;
	*plen = ulen - 8;
	return udp + 8;
}

/* Parses a transmitted shoal message. */
static inline int parse_app(const uint8_t *pl, size_t plen, struct dp_app_msg *msg)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	if (dp_rtcp_next(pl, plen, &off, &p) != 1 || p.pt != DP_RTCP_PT_APP)
		return -1;
	return dp_app_parse(&p, msg);
}

/* RTP header (12 bytes) */
static inline size_t rtp_hdr(uint8_t *b, uint8_t pt, int marker, uint16_t seq, uint32_t ts,
		      uint32_t ssrc)
{
	b[0] = 0x80;
	b[1] = (uint8_t)((marker ? 0x80 : 0) | pt);
	put16(b + 2, seq);
	put32(b + 4, ts);
	put32(b + 8, ssrc);
	return 12;
}

/* RGB raw test frame: W x H, one line per packet. */
#define RW 64
#define RH 16
#define RLINE (RW * 3)

static inline uint8_t pix(uint32_t ts, unsigned y, unsigned x)
{
	return (uint8_t)(ts * 7 + y * 31 + x);
}

static inline struct rte_mbuf *mk_raw_line(struct fx *f, uint32_t ssrc, uint16_t sport,
					   uint16_t seq, uint32_t ts, unsigned y)
{
	uint8_t b[12 + 2 + 6 + RLINE];
	size_t o = rtp_hdr(b, 96, y == RH - 1, seq, ts, ssrc);
	put16(b + o, 0); /* extended sequence number */
	put16(b + o + 2, RLINE);
	put16(b + o + 4, (uint16_t)y);
	put16(b + o + 6, 0); /* C = 0, offset 0 */
	for (unsigned x = 0; x < RLINE; x++)
		b[o + 8 + x] = pix(ts, y, x);
	return mk_udp(f, CLI_IP, sport, MEDIA_PORT, b, sizeof(b));
}

static inline int raw_frame_ok(struct fx *f, const struct dp_frame *d, uint32_t ts)
{
	const uint8_t *img = gpu_staging_slot(f->st, d->slot) + d->offset;
	if (d->len != RW * RH * 3 || d->width != RW || d->height != RH ||
	    d->format != DP_FRAME_RAWRGB || d->rtp_ts != ts)
		return 0;
	for (unsigned y = 0; y < RH; y++)
		for (unsigned x = 0; x < RLINE; x++)
			if (img[y * RLINE + x] != pix(ts, y, x))
				return 0;
	return 1;
}

static inline struct rte_mbuf *mk_bye(struct fx *f, uint32_t ssrc)
{
	uint8_t bye[8];
	bye[0] = 0x81;
	bye[1] = 203;
	put16(bye + 2, 1);
	put32(bye + 4, ssrc);
	return mk_udp(f, CLI_IP, CLI_PORT + 1, MEDIA_PORT + 1, bye, sizeof(bye));
}

static inline struct rte_mbuf *mk_app(struct fx *f, uint16_t sport, const struct dp_app_msg *msg)
{
	uint8_t b[1500];
	ssize_t n = dp_app_build(b, sizeof(b), msg);
	if (n <= 0)
		return NULL;
	return mk_udp(f, CLI_IP, sport, MEDIA_PORT + 1, b, (size_t)n);
}

#endif
