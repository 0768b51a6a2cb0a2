/* shoal-gen — load generator: many emulated clients streaming RTP/JPEG (RFC 2435) frames.
 *
 * DPDK mode (`shoal-gen [EAL args] -- [options]`): sends from a DPDK port (memif, af_xdp,
 * af_packet, a NIC ...) at line rate or at a given packet rate, resolving the server's MAC by
 * ARP, and drains what comes back (RESULT/DROP/ASSIGN, counted). Kernel mode (`shoal-gen
 * --udp HOST:PORT [options]`): the same packets through ordinary UDP sockets with sendmmsg,
 * the baseline sender for kernel-socket receivers.
 *
 * Every client sends the same real JPEG frame (a synthetic test picture encoded once by
 * libjpeg-turbo at --size and --quality), split into packets of --payload bytes of UDP
 * payload; clients differ by source address (DPDK mode) or source port (kernel mode) and SSRC.
 * Last line: `gen: clients=… pkts=… frames=… seconds=… mpps=… fps=… gbps=… rx_rtcp=…`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <rte_mbuf.h>
#include <rte_cycles.h>
#include <rte_errno.h>

#include <turbojpeg.h>

#include "dataplane/dp_proto.h"

#define GEN_PKT_MAX 1500 /* bytes of UDP payload at most */
#define GEN_BURST 32
#define GEN_MAX_CLIENTS 65536
#define GEN_HDRS (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		  sizeof(struct rte_udp_hdr))

static volatile sig_atomic_t perf_gen_stop; /* the stop flag: the one allowed global */

static void perf_gen_on_signal(int sig)
{
	(void)sig;
	perf_gen_stop = 1;
}

struct perf_gen_opts {
	const char *udp;     /* kernel mode HOST:PORT, NULL for DPDK mode */
	uint16_t port_id;
	uint32_t dst_ip, src_ip; /* network order */
	uint16_t media_port;
	unsigned clients;
	int width, height, quality;
	unsigned payload;
	double fps;   /* per client; 0: no pacing by frames */
	double pps;   /* total; 0: as fast as possible */
	double seconds;
	int have_dst_mac;
	uint8_t dst_mac[6];
};

/* One frame as RTP payloads (RTP header + RFC 2435 header + scan chunk), seq/ts/ssrc patched
 * at send time. */
struct perf_gen_frame {
	unsigned n;
	uint16_t len[4096];
	uint8_t (*pkt)[GEN_PKT_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoal-gen [EAL args] -- [options]      (DPDK port)\n"
		"       shoal-gen --udp HOST:PORT [options]    (kernel UDP sockets, sendmmsg)\n"
		"Streams RTP/JPEG (RFC 2435) frames from many emulated clients.\n"
		"  --dst-ip A.B.C.D   server address (DPDK mode; its MAC is resolved by ARP)\n"
		"  --dst-mac M        server MAC (DPDK mode): skips ARP (for receivers that do not answer it)\n"
		"  --src-ip A.B.C.D   first client address (DPDK mode; client i uses +i), default 10.99.0.2\n"
		"  --media-port N     server RTP port (default 5004)\n"
		"  --port ID          DPDK port (default 0)\n"
		"  --clients N        emulated clients (default 1)\n"
		"  --size WxH         frame size (default 640x480)\n"
		"  --quality Q        JPEG quality 1..99 (default 75; sent as RFC 2435 Q, no in-band tables)\n"
		"  --payload N        UDP payload bytes per packet, 200..1472 (default 1400)\n"
		"  --fps F            frames per second per client (default 0: no frame pacing)\n"
		"  --pps N            total packets per second (default 0: as fast as possible)\n"
		"  --seconds S        run time (default 5)\n"
		"  --help             this text\n"
		"Last line: gen: clients=… pkts=… frames=… seconds=… mpps=… fps=… gbps=… rx_rtcp=…\n");
}

static int parse_ip(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = a.s_addr;
	return 0;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct perf_gen_opts *o)
{
	static const struct option lo[] = {
		{"udp", required_argument, 0, 'u'},    {"dst-ip", required_argument, 0, 'd'},
		{"src-ip", required_argument, 0, 's'}, {"media-port", required_argument, 0, 'm'},
		{"port", required_argument, 0, 'p'},   {"clients", required_argument, 0, 'c'},
		{"size", required_argument, 0, 'z'},   {"quality", required_argument, 0, 'q'},
		{"payload", required_argument, 0, 'l'}, {"fps", required_argument, 0, 'f'},
		{"pps", required_argument, 0, 'r'},    {"seconds", required_argument, 0, 't'},
		{"dst-mac", required_argument, 0, 'M'}, {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	*o = (struct perf_gen_opts){.media_port = 5004, .clients = 1, .width = 640, .height = 480,
				    .quality = 75, .payload = 1400, .seconds = 5};
	parse_ip("10.99.0.2", &o->src_ip);
	optind = 1;
	opterr = 0; /* one line of our own instead */
	int c, li = 0;
	double v;
	while ((c = getopt_long(argc, argv, "", lo, &li)) != -1) {
		switch (c) {
		case 'u': o->udp = optarg; break;
		case 'd':
			if (parse_ip(optarg, &o->dst_ip))
				goto bad;
			break;
		case 'M': {
			unsigned b[6];
			char tail;
			if (sscanf(optarg, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
				   &b[5], &tail) != 6)
				goto bad;
			for (int k = 0; k < 6; k++) {
				if (b[k] > 255)
					goto bad;
				o->dst_mac[k] = (uint8_t)b[k];
			}
			o->have_dst_mac = 1;
			break;
		}
		case 's':
			if (parse_ip(optarg, &o->src_ip))
				goto bad;
			break;
		case 'm':
			if (parse_num(optarg, 1, 65534, &v))
				goto bad;
			o->media_port = (uint16_t)v;
			break;
		case 'p':
			if (parse_num(optarg, 0, 65535, &v))
				goto bad;
			o->port_id = (uint16_t)v;
			break;
		case 'c':
			if (parse_num(optarg, 1, GEN_MAX_CLIENTS, &v))
				goto bad;
			o->clients = (unsigned)v;
			break;
		case 'z':
			if (sscanf(optarg, "%dx%d", &o->width, &o->height) != 2 || o->width < 16 ||
			    o->height < 16 || o->width > 2040 || o->height > 2040 || o->width % 16 ||
			    o->height % 16)
				goto bad;
			break;
		case 'q':
			if (parse_num(optarg, 1, 99, &v))
				goto bad;
			o->quality = (int)v;
			break;
		case 'l':
			if (parse_num(optarg, 200, 1472, &v))
				goto bad;
			o->payload = (unsigned)v;
			break;
		case 'f':
			if (parse_num(optarg, 0, 1000, &o->fps))
				goto bad;
			break;
		case 'r':
			if (parse_num(optarg, 0, 1e9, &o->pps))
				goto bad;
			break;
		case 't':
			if (parse_num(optarg, 0.1, 86400, &o->seconds))
				goto bad;
			break;
		case 'h': usage(stdout); return 1;
		default: fprintf(stderr, "shoal-gen: unknown option (see --help)\n"); return -1;
		}
		continue;
	bad:
		fprintf(stderr, "shoal-gen: bad value '%s' for --%s (see --help)\n", optarg,
			lo[li].name);
		return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "shoal-gen: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* A test picture: gradients and bars, so the JPEG has realistic entropy. */
static unsigned char *perf_gen_jpeg(int w, int h, int quality, unsigned long *len)
{
	uint8_t *rgb = malloc((size_t)w * h * 3);
	if (!rgb)
		return NULL;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = rgb + ((size_t)y * w + x) * 3;
			p[0] = (uint8_t)(x * 255 / w);
			p[1] = (uint8_t)(y * 255 / h);
			p[2] = (uint8_t)(((x / 40 + y / 40) & 1) ? 200 : 40);
			p[(x + y) % 3] ^= (uint8_t)((x * 7 + y * 13) & 15);
		}
	tjhandle t = tjInitCompress();
	unsigned char *out = NULL;
	int rc = t ? tjCompress2(t, rgb, w, 0, h, TJPF_RGB, &out, len, TJSAMP_420, quality, 0) : -1;
	if (t)
		tjDestroy(t);
	free(rgb);
	if (rc != 0) {
		tjFree(out);
		return NULL;
	}
	return out;
}

static int perf_gen_frame_build(const struct perf_gen_opts *o, struct perf_gen_frame *fr)
{
	unsigned long jlen = 0;
	unsigned char *jpg = perf_gen_jpeg(o->width, o->height, o->quality, &jlen);
	if (!jpg) {
		fprintf(stderr, "shoal-gen: cannot encode the test picture\n");
		return -1;
	}
	struct dp_jfif_info ji;
	int rc = dp_jfif_split(jpg, jlen, &ji);
	if (rc) {
		fprintf(stderr, "shoal-gen: test picture: %s\n", dp_proto_strerror(rc));
		tjFree(jpg);
		return -1;
	}
	size_t chunk = o->payload - DP_RTP_HDR_MIN - DP_JPEG_HDR_LEN;
	unsigned n = (unsigned)((ji.scan_len + chunk - 1) / chunk);
	if (n > 4096 || !(fr->pkt = calloc(n, GEN_PKT_MAX))) {
		tjFree(jpg);
		return -1;
	}
	fr->n = 0;
	for (size_t off = 0; off < ji.scan_len; off += chunk) {
		size_t len = ji.scan_len - off < chunk ? ji.scan_len - off : chunk;
		struct dp_rtp_hdr rh = {.payload_type = DP_RTP_PT_JPEG,
					.marker = off + len == ji.scan_len};
		uint8_t *p = fr->pkt[fr->n];
		ssize_t a = dp_rtp_build(p, GEN_PKT_MAX, &rh);
		struct dp_jpeg_hdr jh = {.frag_offset = (uint32_t)off, .type = ji.type,
					 .q = (uint8_t)o->quality, .width = ji.width,
					 .height = ji.height,
					 .restart_interval = ji.restart_interval,
					 .restart_first = 1, .restart_last = 1,
					 .restart_count = 0x3fff};
		ssize_t b = a < 0 ? -1 : dp_jpeg_build(p + a, GEN_PKT_MAX - (size_t)a, &jh);
		if (b < 0) {
			tjFree(jpg);
			return -1;
		}
		memcpy(p + a + b, ji.scan + off, len);
		fr->len[fr->n++] = (uint16_t)((size_t)(a + b) + len);
	}
	tjFree(jpg);
	return 0;
}

/* seq, timestamp, ssrc of the RTP header at p */
static inline void rtp_patch(uint8_t *p, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
	p[2] = (uint8_t)(seq >> 8);
	p[3] = (uint8_t)seq;
	p[4] = (uint8_t)(ts >> 24);
	p[5] = (uint8_t)(ts >> 16);
	p[6] = (uint8_t)(ts >> 8);
	p[7] = (uint8_t)ts;
	p[8] = (uint8_t)(ssrc >> 24);
	p[9] = (uint8_t)(ssrc >> 16);
	p[10] = (uint8_t)(ssrc >> 8);
	p[11] = (uint8_t)ssrc;
}

struct perf_gen_client {
	uint16_t seq;
	uint32_t ts, ssrc;
	unsigned next_pkt; /* packet of the current frame to send next */
	uint64_t next_frame_ns;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Chooses the next packet to send: round-robin over clients, frame pacing per client.
 * Returns the client index, or -1 when none is due. */
static int perf_gen_pick(struct perf_gen_client *cl, unsigned n, unsigned *rr, uint64_t now,
			 uint64_t frame_ns)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (*rr + k) % n;
		if (cl[i].next_pkt > 0 || !frame_ns || now >= cl[i].next_frame_ns) {
			*rr = i + 1;
			return (int)i;
		}
	}
	return -1;
}

/* Advances client c after packet k of n was queued; returns 1 when that ended a frame. */
static int perf_gen_advance(struct perf_gen_client *c, unsigned n, uint64_t frame_ns,
			    uint64_t now)
{
	c->seq++;
	if (++c->next_pkt < n)
		return 0;
	c->next_pkt = 0;
	c->ts += 3000; /* 90 kHz clock at 30 fps */
	if (frame_ns)
		c->next_frame_ns = (c->next_frame_ns ? c->next_frame_ns : now) + frame_ns;
	return 1;
}

struct perf_gen_totals {
	uint64_t pkts, bytes, frames, rx_rtcp, tx_failed;
	double seconds;
};

static void perf_gen_report(const struct perf_gen_opts *o, const struct perf_gen_totals *t)
{
	double s = t->seconds > 0 ? t->seconds : 1e-9;
	if (t->tx_failed)
		printf("gen: %llu packets not taken by the port\n", (unsigned long long)t->tx_failed);
	printf("gen: clients=%u pkts=%llu frames=%llu seconds=%.3f mpps=%.4f fps=%.1f gbps=%.3f "
	       "rx_rtcp=%llu\n",
	       o->clients, (unsigned long long)t->pkts, (unsigned long long)t->frames, t->seconds,
	       t->pkts / s / 1e6, t->frames / s, t->bytes * 8 / s / 1e9,
	       (unsigned long long)t->rx_rtcp);
}

/* ---- kernel mode --------------------------------------------------------------------------- */
static int perf_gen_udp(const struct perf_gen_opts *o, const struct perf_gen_frame *fr)
{
	char host[64];
	int port;
	const char *colon = strrchr(o->udp, ':');
	if (!colon || colon - o->udp >= (long)sizeof(host) ||
	    sscanf(colon + 1, "%d", &port) != 1 || port < 1 || port > 65535) {
		fprintf(stderr, "shoal-gen: --udp wants HOST:PORT, got '%s'\n", o->udp);
		return 2;
	}
	memcpy(host, o->udp, (size_t)(colon - o->udp));
	host[colon - o->udp] = '\0';
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fprintf(stderr, "shoal-gen: bad address '%s'\n", host);
		return 2;
	}
	if (o->clients > 1024) {
		fprintf(stderr, "shoal-gen: kernel mode supports at most 1024 clients\n");
		return 2;
	}
	int *fd = calloc(o->clients, sizeof(*fd));
	struct perf_gen_client *cl = calloc(o->clients, sizeof(*cl));
	if (!fd || !cl)
		return 1;
	for (unsigned i = 0; i < o->clients; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM, 0);
		int sz = 4 << 20;
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&dst, sizeof(dst)) != 0) {
			fprintf(stderr, "shoal-gen: socket to %s: %s\n", o->udp, strerror(errno));
			return 1;
		}
		setsockopt(fd[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		cl[i].ssrc = 0x5000 + i;
	}
	static uint8_t buf[GEN_BURST][GEN_PKT_MAX];
	struct mmsghdr msg[GEN_BURST];
	struct iovec iov[GEN_BURST];
	uint64_t frame_ns = o->fps > 0 ? (uint64_t)(1e9 / o->fps) : 0;
	struct perf_gen_totals t = {0};
	uint64_t start = now_ns(), end = start + (uint64_t)(o->seconds * 1e9);
	unsigned rr = 0;
	while (!perf_gen_stop) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		if (o->pps > 0 && t.pkts > (now - start) * 1e-9 * o->pps)
			continue;
		int i = perf_gen_pick(cl, o->clients, &rr, now, frame_ns);
		if (i < 0)
			continue;
		/* a burst of the same client's packets through its socket */
		unsigned n = 0;
		int frames = 0;
		while (n < GEN_BURST) {
			struct perf_gen_client *c = &cl[i];
			unsigned k = c->next_pkt;
			memcpy(buf[n], fr->pkt[k], fr->len[k]);
			rtp_patch(buf[n], c->seq, c->ts, c->ssrc);
			iov[n] = (struct iovec){buf[n], fr->len[k]};
			msg[n] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[n], .msg_iovlen = 1}};
			t.bytes += fr->len[k];
			n++;
			if (perf_gen_advance(c, fr->n, frame_ns, now)) {
				frames++;
				break;
			}
		}
		int sent = 0;
		while (sent < (int)n && !perf_gen_stop) {
			int r = sendmmsg(fd[i], msg + sent, n - (unsigned)sent, 0);
			if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED) {
				fprintf(stderr, "shoal-gen: sendmmsg: %s\n", strerror(errno));
				return 1;
			}
			if (r > 0)
				sent += r;
		}
		t.pkts += n;
		t.frames += (uint64_t)frames;
	}
	t.seconds = (now_ns() - start) * 1e-9;
	perf_gen_report(o, &t);
	for (unsigned i = 0; i < o->clients; i++)
		close(fd[i]);
	free(fd);
	free(cl);
	return 0;
}

/* ---- DPDK mode ------------------------------------------------------------------------------ */
struct perf_gen_port {
	uint16_t id;
	struct rte_mempool *mp;
	struct rte_ether_addr mac, dst_mac;
};

static int perf_gen_port_up(struct perf_gen_port *pt)
{
	if (!rte_eth_dev_is_valid_port(pt->id)) {
		fprintf(stderr, "shoal-gen: no DPDK port %u (give one with --vdev or a PCI device)\n",
			pt->id);
		return -ENODEV;
	}
	pt->mp = rte_pktmbuf_pool_create("gen_pool", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!pt->mp) {
		fprintf(stderr, "shoal-gen: mbuf pool: %s\n", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int rc;
	if ((rc = rte_eth_dev_configure(pt->id, 1, 1, &conf)) < 0 ||
	    (rc = rte_eth_rx_queue_setup(pt->id, 0, 1024, (unsigned)rte_socket_id(), NULL,
					 pt->mp)) < 0 ||
	    (rc = rte_eth_tx_queue_setup(pt->id, 0, 1024, (unsigned)rte_socket_id(), NULL)) < 0 ||
	    (rc = rte_eth_dev_start(pt->id)) < 0) {
		fprintf(stderr, "shoal-gen: port %u: %s\n", pt->id, rte_strerror(-rc));
		return rc;
	}
	rte_eth_promiscuous_enable(pt->id);
	rte_eth_macaddr_get(pt->id, &pt->mac);
	/* a memif or af_xdp link comes up once the peer is there */
	struct rte_eth_link link = {0};
	for (int i = 0; i < 100 && !perf_gen_stop; i++) {
		if (rte_eth_link_get_nowait(pt->id, &link) == 0 && link.link_status)
			return 0;
		rte_delay_ms(100);
	}
	fprintf(stderr, "shoal-gen: port %u: link down after 10 s (is the receiver running?)\n",
		pt->id);
	return -ENOTCONN;
}

static void perf_gen_hdrs(struct rte_mbuf *m, const struct perf_gen_port *pt, uint32_t src_ip,
			  uint32_t dst_ip, uint16_t sport, uint16_t dport, uint16_t udp_payload)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	rte_ether_addr_copy(&pt->dst_mac, &eth->dst_addr);
	rte_ether_addr_copy(&pt->mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + 8 + udp_payload));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = src_ip;
	ip->dst_addr = dst_ip;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	udp->src_port = rte_cpu_to_be_16(sport);
	udp->dst_port = rte_cpu_to_be_16(dport);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(8 + udp_payload));
	udp->dgram_cksum = 0; /* optional over IPv4 */
}

/* Counts RTCP coming back and frees everything received; answers nothing. */
static unsigned perf_gen_drain(const struct perf_gen_port *pt, uint16_t rtcp_port,
			       uint64_t *rx_rtcp)
{
	struct rte_mbuf *rx[GEN_BURST];
	uint16_t n = rte_eth_rx_burst(pt->id, 0, rx, GEN_BURST);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *p = rte_pktmbuf_mtod(rx[i], const uint8_t *);
		if (rx[i]->data_len >= GEN_HDRS &&
		    ((const struct rte_ether_hdr *)p)->ether_type ==
			    rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
			const struct rte_udp_hdr *u =
				(const struct rte_udp_hdr *)(p + sizeof(struct rte_ether_hdr) +
							     sizeof(struct rte_ipv4_hdr));
			if (u->src_port == rte_cpu_to_be_16(rtcp_port))
				(*rx_rtcp)++;
		}
	}
	rte_pktmbuf_free_bulk(rx, n);
	return n;
}

/* ARP for the server's MAC: a request every 200 ms for 3 s. */
static int perf_gen_arp(struct perf_gen_port *pt, uint32_t src_ip, uint32_t dst_ip)
{
	uint64_t hz = rte_get_tsc_hz(), deadline = rte_rdtsc() + 3 * hz, next = 0;
	while (rte_rdtsc() < deadline && !perf_gen_stop) {
		if (rte_rdtsc() >= next) {
			next = rte_rdtsc() + hz / 5;
			struct rte_mbuf *m = rte_pktmbuf_alloc(pt->mp);
			if (!m)
				return -ENOMEM;
			struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
			memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
			rte_ether_addr_copy(&pt->mac, &eth->src_addr);
			eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
			struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
			a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
			a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
			a->arp_hlen = RTE_ETHER_ADDR_LEN;
			a->arp_plen = 4;
			a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
			rte_ether_addr_copy(&pt->mac, &a->arp_data.arp_sha);
			a->arp_data.arp_sip = src_ip;
			memset(&a->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
			a->arp_data.arp_tip = dst_ip;
			m->data_len = m->pkt_len = sizeof(*eth) + sizeof(*a);
			if (rte_eth_tx_burst(pt->id, 0, &m, 1) != 1)
				rte_pktmbuf_free(m);
		}
		struct rte_mbuf *rx[GEN_BURST];
		uint16_t n = rte_eth_rx_burst(pt->id, 0, rx, GEN_BURST);
		int found = 0;
		for (uint16_t i = 0; i < n; i++) {
			const struct rte_ether_hdr *eth =
				rte_pktmbuf_mtod(rx[i], const struct rte_ether_hdr *);
			if (rx[i]->data_len < sizeof(*eth) + sizeof(struct rte_arp_hdr) ||
			    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
				continue;
			const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eth + 1);
			if (a->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) &&
			    a->arp_data.arp_sip == dst_ip) {
				rte_ether_addr_copy(&a->arp_data.arp_sha, &pt->dst_mac);
				found = 1;
			}
		}
		rte_pktmbuf_free_bulk(rx, n);
		if (found)
			return 0;
	}
	return -ETIMEDOUT;
}

static int perf_gen_dpdk(const struct perf_gen_opts *o, const struct perf_gen_frame *fr)
{
	if (!o->dst_ip) {
		fprintf(stderr, "shoal-gen: --dst-ip is required in DPDK mode\n");
		return 2;
	}
	struct perf_gen_port pt = {.id = o->port_id};
	if (perf_gen_port_up(&pt) < 0)
		return 1;
	int rc = 0;
	if (o->have_dst_mac)
		memcpy(pt.dst_mac.addr_bytes, o->dst_mac, 6);
	else
		rc = perf_gen_arp(&pt, o->src_ip, o->dst_ip);
	if (rc < 0) {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &o->dst_ip, ip, sizeof(ip));
		fprintf(stderr, "shoal-gen: no ARP reply from %s on port %u\n", ip, o->port_id);
		return 1;
	}
	struct perf_gen_client *cl = calloc(o->clients, sizeof(*cl));
	if (!cl)
		return 1;
	for (unsigned i = 0; i < o->clients; i++)
		cl[i].ssrc = 0x5000 + i;
	uint64_t frame_ns = o->fps > 0 ? (uint64_t)(1e9 / o->fps) : 0;
	struct perf_gen_totals t = {0};
	uint64_t start = now_ns(), end = start + (uint64_t)(o->seconds * 1e9);
	unsigned rr = 0;
	struct rte_mbuf *m[GEN_BURST];
	uint64_t iter = 0;
	while (!perf_gen_stop) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		if ((++iter & 7) == 0)
			perf_gen_drain(&pt, (uint16_t)(o->media_port + 1), &t.rx_rtcp);
		if (o->pps > 0 && t.pkts > (now - start) * 1e-9 * o->pps)
			continue;
		if (rte_pktmbuf_alloc_bulk(pt.mp, m, GEN_BURST) != 0) {
			perf_gen_drain(&pt, (uint16_t)(o->media_port + 1), &t.rx_rtcp);
			continue;
		}
		unsigned n = 0;
		int frames = 0;
		while (n < GEN_BURST) {
			int i = perf_gen_pick(cl, o->clients, &rr, now, frame_ns);
			if (i < 0)
				break;
			struct perf_gen_client *c = &cl[i];
			unsigned k = c->next_pkt;
			struct rte_mbuf *b = m[n];
			uint16_t plen = fr->len[k];
			perf_gen_hdrs(b, &pt, htonl(ntohl(o->src_ip) + (uint32_t)i), o->dst_ip,
				      (uint16_t)(40000 + (i & 1023)), o->media_port, plen);
			uint8_t *pay = rte_pktmbuf_mtod_offset(b, uint8_t *, GEN_HDRS);
			memcpy(pay, fr->pkt[k], plen);
			rtp_patch(pay, c->seq, c->ts, c->ssrc);
			b->data_len = b->pkt_len = (uint32_t)(GEN_HDRS + plen);
			t.bytes += plen;
			n++;
			/* keep a client's packets of one frame together in the burst */
			frames += perf_gen_advance(c, fr->n, frame_ns, now);
			if (c->next_pkt != 0)
				rr = (unsigned)i;
		}
		unsigned sent = 0;
		/* back-pressure: wait for the receiver (memif rings), but not past the end */
		for (unsigned tries = 0; sent < n && !perf_gen_stop; tries++) {
			sent += rte_eth_tx_burst(pt.id, 0, m + sent, (uint16_t)(n - sent));
			if ((tries & 1023) == 1023 && now_ns() > end)
				break;
		}
		t.tx_failed += n - sent;
		if (sent < n)
			rte_pktmbuf_free_bulk(m + sent, n - sent);
		if (n < GEN_BURST)
			rte_pktmbuf_free_bulk(m + n, GEN_BURST - n);
		t.pkts += sent;
		t.frames += (uint64_t)frames;
	}
	t.seconds = (now_ns() - start) * 1e-9;
	/* let the last RESULTs arrive */
	uint64_t drain_end = now_ns() + 300000000ull;
	while (now_ns() < drain_end)
		perf_gen_drain(&pt, (uint16_t)(o->media_port + 1), &t.rx_rtcp);
	perf_gen_report(o, &t);
	free(cl);
	rte_eth_dev_stop(pt.id);
	rte_eth_dev_close(pt.id);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGINT, perf_gen_on_signal);
	signal(SIGTERM, perf_gen_on_signal);
	int kernel = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--udp") || !strncmp(argv[i], "--udp=", 6) ||
		    !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			kernel = 1;
	}
	struct perf_gen_opts o;
	struct perf_gen_frame fr = {0};
	if (kernel) {
		int rc = parse_opts(argc, argv, &o);
		if (rc)
			return rc > 0 ? 0 : 2;
		if (!o.udp) {
			fprintf(stderr, "shoal-gen: --udp is needed without EAL arguments\n");
			return 2;
		}
		if (perf_gen_frame_build(&o, &fr))
			return 1;
		rc = perf_gen_udp(&o, &fr);
		free(fr.pkt);
		return rc;
	}
	int eal = rte_eal_init(argc, argv);
	if (eal < 0) {
		fprintf(stderr, "shoal-gen: EAL: %s\n", rte_strerror(rte_errno));
		return 2;
	}
	argc -= eal;
	argv += eal;
	int rc = parse_opts(argc, argv, &o);
	if (rc == 0 && o.udp) {
		fprintf(stderr, "shoal-gen: --udp does not take EAL arguments\n");
		rc = -1;
	}
	if (rc == 0 && perf_gen_frame_build(&o, &fr))
		rc = -2;
	int ret = rc > 0 ? 0 : rc == -1 ? 2 : rc < 0 ? 1 : perf_gen_dpdk(&o, &fr);
	free(fr.pkt);
	rte_eal_cleanup();
	return ret;
}
