/* The data plane against the Linux network stack: a veth pair whose client end lives in a
 * network namespace created here, the server over the other end on net_af_xdp (falling back
 * to net_af_packet when AF_XDP cannot start), dp_run on its own thread. The kernel is the
 * peer that judges our packets (ping, UDP sockets that drop bad checksums), stock ffmpeg and
 * GStreamer are real senders, and a malformed-packet flood (flood_gen.c) runs while a real
 * client streams.
 *
 *   test_dp_kernel CASE [af_xdp|af_packet]     (no driver: af_xdp, else af_packet)
 *
 * net_af_xdp needs the EAL on hugepages (see eal_huge_free): as root the test reserves 128
 * 2 MiB pages when fewer are free (DESIGN.md §10) and gives them back at exit; without them it
 * runs on net_af_packet. Each case prints the driver it ran on. Exit 77 when namespaces, veth
 * or EAL cannot be set up (not root). The namespace, the veth and the hugepages are given back
 * at exit, on SIGTERM/SIGINT too. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <turbojpeg.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>

#include "dataplane/dp.h"
#include "flood_gen.h"
#include "harness.h"

#define SRV_IP "10.77.0.1"
#define CLI_IP "10.77.0.2"
#define SRV_IP_H RTE_IPV4(10, 77, 0, 1)
#define CLI_IP_H RTE_IPV4(10, 77, 0, 2)
#define MEDIA_PORT 5004
#define CLI_PORT 40000
#define W 64
#define H 16
#define SEC 1000000000ull
#define MS 1000000ull

static char ns[32], if_srv[16], if_cli[16];
static const char *drv_want; /* argv[2] */
static char drv_used[16];

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

/* ---- namespace and veth ------------------------------------------------------------------- */
static volatile sig_atomic_t net_made;

static void net_down(void)
{
	if (!net_made)
		return;
	net_made = 0;
	sh("ip link del %s 2>/dev/null%s", if_srv, "");
	sh("ip netns del %s 2>/dev/null%s", ns, "");
}

static void huge_restore(void);

static void net_on_signal(int sig)
{
	net_down();
	huge_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int net_up(void)
{
	int pid = (int)getpid() % 100000;
	snprintf(ns, sizeof(ns), "shoaldp%d", pid);
	snprintf(if_srv, sizeof(if_srv), "dps%d", pid);
	snprintf(if_cli, sizeof(if_cli), "dpc%d", pid);
	if (geteuid() != 0 || sh("ip netns add %s%s 2>/dev/null", ns, "") != 0)
		return -1;
	net_made = 1;
	atexit(net_down);
	signal(SIGTERM, net_on_signal);
	signal(SIGINT, net_on_signal);
	if (sh("ip link add %s type veth peer name %s 2>/dev/null", if_srv, if_cli) != 0 ||
	    sh("ip link set %s netns %s", if_cli, ns) != 0 ||
	    sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1%s", ns, "") != 0 ||
	    sh("ip netns exec %s ip addr add " CLI_IP "/24 dev %s", ns, if_cli) != 0 ||
	    sh("ip netns exec %s ip link set %s up", ns, if_cli) != 0 ||
	    sh("ip netns exec %s ip link set lo up%s", ns, "") != 0 ||
	    sh("ip netns exec %s ethtool -K %s tx off >/dev/null 2>&1", ns, if_cli) != 0 ||
	    sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1%s", if_srv, "") != 0 ||
	    sh("ip link set %s up%s", if_srv, "") != 0) {
		net_down();
		return -1;
	}
	return 0;
}

/* Signals go to the main thread, which lives in the root namespace and cleans up. */
static void sig_block_here(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Moves the calling thread into the namespace (setns affects this thread only). */
static int ns_enter(void)
{
	sig_block_here();
	char path[64];
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

/* ---- server: EAL, port on the chosen driver, context, dp_run thread ----------------------- */
struct run_arg {
	struct dp_ctx *ctx;
	volatile int stop;
};

static void *run_thread(void *p)
{
	struct run_arg *a = p;
	sig_block_here();
	dp_run(a->ctx, &a->stop);
	return NULL;
}

static struct {
	int state; /* 0 untried, 1 up, -1 failed */
	uint16_t port;
	struct rte_ether_addr mac;
	struct gpu_staging *st;
	struct dp_ctx *ctx;
	struct run_arg ra;
	pthread_t th;
	int running;     /* dp_run thread started and not joined */
	void *cur_tweak; /* configuration the context was made with */
	unsigned cur_slots;
} kx;

/* Stops dp_run (joins its thread); the context stays readable from this thread. */
static void kx_stop(void)
{
	if (!kx.running)
		return;
	kx.ra.stop = 1;
	pthread_join(kx.th, NULL);
	kx.running = 0;
}

static void kx_ctx_down(void)
{
	kx_stop();
	dp_destroy(kx.ctx);
	gpu_staging_destroy(kx.st);
	kx.ctx = NULL;
	kx.st = NULL;
}

static void kx_down(void)
{
	if (kx.state != 1)
		return;
	kx_ctx_down();
	dp_port_fini(kx.port);
	net_down();
	kx.state = 0;
}

/* Probes net_<drv>0 on the server end of the veth and starts it: 0, or -1 (removed again). */
static int port_try(const char *drv)
{
	char name[32], args[128];
	snprintf(name, sizeof(name), "net_%s0", drv);
	if (strcmp(drv, "af_xdp") == 0)
		snprintf(args, sizeof(args), "iface=%s,start_queue=0,queue_count=1", if_srv);
	else
		snprintf(args, sizeof(args), "iface=%s,qpairs=1,framecnt=4096", if_srv);
	if (rte_eal_hotplug_add("vdev", name, args) != 0) {
		printf("driver %s: cannot probe %s\n", drv, if_srv);
		return -1;
	}
	if (rte_eth_dev_get_port_by_name(name, &kx.port) != 0 ||
	    dp_port_init(kx.port, 8191, 1024) != 0) {
		printf("driver %s: port does not start\n", drv);
		rte_eal_hotplug_remove("vdev", name);
		return -1;
	}
	snprintf(drv_used, sizeof(drv_used), "%s", drv);
	return 0;
}

typedef void (*cfg_fn)(struct dp_config *);

/* Hugepages this process added to the pool (taken back at exit). */
static long huge_added;

static long huge_read(const char *what)
{
	char path[96];
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-2048kB/%s", what);
	FILE *f = fopen(path, "r");
	long n = 0;
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static void huge_write(long n)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "w");
	if (f) {
		fprintf(f, "%ld\n", n);
		fclose(f);
	}
}

static void huge_restore(void)
{
	if (huge_added > 0)
		huge_write(huge_read("nr_hugepages") - huge_added);
	huge_added = 0;
}

/* Free 2 MiB hugepages. Without hugepages (--no-huge) the mempool puts one mbuf per 4 KiB page
 * and DPDK 22.11's net_af_xdp registers a UMEM sized for the mbufs packed, so the mbufs beyond
 * it are refused by the kernel: RX stops after about 57% of the pool has cycled. */
static long eal_huge_free(void)
{
	const long want = 128; /* 256 MiB */
	long have = huge_read("free_hugepages");
	if (have >= want || geteuid() != 0)
		return have;
	/* as root, reserve what is missing for this process (DESIGN.md §10); given back at exit */
	long nr = huge_read("nr_hugepages");
	huge_write(nr + want - have);
	huge_added = huge_read("nr_hugepages") - nr;
	if (huge_added < 0)
		huge_added = 0;
	atexit(huge_restore);
	return huge_read("free_hugepages");
}

/* Context with the test's configuration, dp_run on its own thread: 0 or -1. */
static int kx_ctx_up(cfg_fn tweak, unsigned n_slots)
{
	kx.st = gpu_staging_create(n_slots, 64 * 1024, NULL, 0);
	struct dp_config cfg;
	dp_config_defaults(&cfg);
	cfg.name = "k";
	cfg.port_id = kx.port;
	inet_pton(AF_INET, SRV_IP, &cfg.ip);
	cfg.media_port = MEDIA_PORT;
	cfg.staging = kx.st;
	cfg.default_raw_format = DP_FRAME_RAWRGB;
	cfg.default_raw_width = W;
	cfg.default_raw_height = H;
	cfg.frame_timeout_ns = 5 * SEC; /* a loaded CI machine must not time frames out */
	if (tweak)
		tweak(&cfg);
	if (!kx.st || !(kx.ctx = dp_create(&cfg))) {
		gpu_staging_destroy(kx.st);
		kx.st = NULL;
		return -1;
	}
	kx.cur_tweak = (void *)tweak;
	kx.cur_slots = n_slots;
	kx.ra.ctx = kx.ctx;
	kx.ra.stop = 0;
	if (pthread_create(&kx.th, NULL, run_thread, &kx.ra) != 0)
		return -1;
	kx.running = 1;
	return 0;
}

/* 1 when up; 0 with the reason printed when the machine cannot do it. Namespace, EAL and port
 * are made once per process; the context again when a case wants another configuration. */
static int kx_up(cfg_fn tweak, unsigned n_slots)
{
	if (kx.state == 1 && (kx.cur_tweak != (void *)tweak || kx.cur_slots != n_slots)) {
		kx_ctx_down();
		if (kx_ctx_up(tweak, n_slots) != 0) {
			kx.state = -1;
			return 0;
		}
	}
	if (kx.state)
		return kx.state > 0;
	kx.state = -1;
	if (net_up() != 0) {
		printf("cannot create a network namespace and veth pair (need root)\n");
		return 0;
	}
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=shoal_dpk_%d", (int)getpid());
	/* hugepages when some are free (net_af_xdp needs them, see eal_huge_free), else none */
	int huge = eal_huge_free() >= 128;
	char *argv[] = {"test_dp_kernel", "-l", "0", "--no-telemetry", "--no-pci",
			"--log-level=lib.eal:error", prefix, "-m", "256", "--in-memory", NULL, NULL};
	if (!huge) {
		argv[8] = "512";
		argv[9] = "--no-huge";
		argv[10] = "--no-shconf";
	}
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - (huge ? 2 : 1), argv) < 0) {
		net_down();
		printf("EAL cannot start here\n");
		return 0;
	}
	int rc = -1;
	if (!huge && !drv_want)
		printf("no hugepages: net_af_xdp would stop receiving after ~57%% of its pool "
		       "(see eal_huge_free), so net_af_packet\n");
	else if (!drv_want || strcmp(drv_want, "af_xdp") == 0)
		rc = port_try("af_xdp");
	if (rc != 0 && (!drv_want || strcmp(drv_want, "af_packet") == 0))
		rc = port_try("af_packet");
	if (rc != 0) {
		net_down();
		printf("neither net_af_xdp nor net_af_packet starts on %s\n", if_srv);
		return 0;
	}
	rte_eth_macaddr_get(kx.port, &kx.mac);
	if (kx_ctx_up(tweak, n_slots) != 0) {
		kx_ctx_down();
		dp_port_fini(kx.port);
		net_down();
		return 0;
	}
	kx.state = 1;
	atexit(kx_down);
	printf("server on net_%s over %s (client end %s in namespace %s)\n", drv_used, if_srv,
	       if_cli, ns);
	return 1;
}

#define KX_BEGIN(tweak, nslots)                                                               \
	ST_SKIP_IF(!kx_up((tweak), (nslots)), "no namespace/veth/af_xdp/af_packet here");     \
	printf("driver: net_%s\n", drv_used)

static uint64_t kcnt(unsigned c)
{
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(kx.ctx, v);
	return v[c];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* RGB test frame W x H, one RFC 4175 line per packet: pixel bytes depend on ts, line, x. */
static uint8_t pix(uint32_t ts, unsigned y, unsigned x)
{
	return (uint8_t)(ts / 3000 * 7 + y * 31 + x);
}

static size_t raw_line(uint8_t *b, uint32_t ssrc, uint16_t seq, uint32_t ts, unsigned y)
{
	b[0] = 0x80;
	b[1] = (uint8_t)(96 | (y == H - 1 ? 0x80 : 0));
	put16(b + 2, seq);
	put32(b + 4, ts);
	put32(b + 8, ssrc);
	put16(b + 12, 0);
	put16(b + 14, W * 3);
	put16(b + 16, (uint16_t)y);
	put16(b + 18, 0);
	for (unsigned x = 0; x < W * 3; x++)
		b[20 + x] = pix(ts, y, x);
	return 20 + W * 3;
}

static int raw_frame_ok(const struct dp_frame *f)
{
	const uint8_t *img = gpu_staging_slot(kx.st, f->slot) + f->offset;
	if (f->format != DP_FRAME_RAWRGB || f->len != W * H * 3 || f->width != W || f->height != H)
		return 0;
	for (unsigned y = 0; y < H; y++)
		for (unsigned x = 0; x < W * 3; x++)
			if (img[y * W * 3 + x] != pix(f->rtp_ts, y, x))
				return 0;
	return 1;
}

static int udp_socket(uint16_t port)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, CLI_IP, &a.sin_addr);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* ---- (1) ping --------------------------------------------------------------------------- */
/* ping from the namespace, small, odd-sized and near-MTU echoes: every one answered (the
 * kernel checks the ICMP and IPv4 checksums), the server's ARP reply resolved it first. */
static int test_kernel_ping_from_namespace_answered(void)
{
	KX_BEGIN(NULL, 16);
	uint64_t icmp0 = kcnt(DP_CNT_ICMP_REPLIES);
	int a = sh("ip netns exec %s ping -c 3 -i 0.2 -W 2 -q " SRV_IP " >/dev/null%s", ns, "");
	int b = sh("ip netns exec %s ping -c 2 -i 0.2 -W 2 -s 1001 -q " SRV_IP " >/dev/null%s", ns,
		   "");
	int c = sh("ip netns exec %s ping -c 2 -i 0.2 -W 2 -s 1472 -M do -q " SRV_IP
		   " >/dev/null%s", ns, "");
	printf("ping rc %d %d %d; arp replies %llu, icmp replies %llu\n", a, b, c,
	       (unsigned long long)kcnt(DP_CNT_ARP_REPLIES),
	       (unsigned long long)(kcnt(DP_CNT_ICMP_REPLIES) - icmp0));
	ST_CHECK_EQ(a, 0);
	ST_CHECK_EQ(b, 0);
	ST_CHECK_EQ(c, 0);
	ST_CHECK(kcnt(DP_CNT_ARP_REPLIES) >= 1);
	ST_CHECK_EQ(kcnt(DP_CNT_ICMP_REPLIES) - icmp0, 7);
	ST_CHECK_EQ(kcnt(DP_CNT_DROP_ICMP), 0);
	return ST_PASS;
}

/* ---- (2) a kernel UDP client: one RESULT per frame, to its RTCP port only -------------------- */
#define UC_FRAMES 12

struct uc_arg {
	int rc;                /* 0 when the client ran */
	unsigned results[UC_FRAMES]; /* RESULTs received per frame (by RTP timestamp) */
	unsigned results_bad;  /* RESULTs that did not parse, from a wrong source, unknown ts */
	unsigned to_other;     /* UDP from the server to anything but CLI_IP:CLI_PORT+1 */
	unsigned to_rtcp;      /* UDP from the server to CLI_IP:CLI_PORT+1 (on the wire) */
	unsigned on_media_sock, on_other_sock;
	volatile int sent;     /* frames sent */
	volatile int done;     /* set by the server side when every RESULT was posted */
};

static void *uc_thread(void *p)
{
	struct uc_arg *ua = p;
	ua->rc = -1;
	if (ns_enter() != 0)
		return NULL;
	int s = udp_socket(CLI_PORT), r = udp_socket(CLI_PORT + 1), o = udp_socket(CLI_PORT + 2);
	/* everything the server puts on the wire, as the client's NIC sees it */
	int cap = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				 .sll_ifindex = (int)if_nametoindex(if_cli)};
	if (s < 0 || r < 0 || o < 0 || cap < 0 || bind(cap, (struct sockaddr *)&ll, sizeof(ll)) != 0)
		return NULL;
	int one = 1, big = 4 << 20; /* our own sends must not crowd the capture out */
	setsockopt(cap, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	setsockopt(cap, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(MEDIA_PORT)};
	inet_pton(AF_INET, SRV_IP, &d.sin_addr);
	for (unsigned k = 0; k < UC_FRAMES; k++) {
		for (unsigned y = 0; y < H; y++) {
			uint8_t b[20 + W * 3];
			size_t n = raw_line(b, 0x33, (uint16_t)(k * H + y), 4500 + 3000 * k, y);
			if (sendto(s, b, n, 0, (struct sockaddr *)&d, sizeof(d)) != (ssize_t)n)
				return NULL;
		}
		ua->sent = (int)k + 1;
		usleep(5000);
	}
	uint64_t end = dp_now_ns() + 5 * SEC;
	while (!ua->done && dp_now_ns() < end)
		usleep(1000);
	usleep(200000); /* RESULTs posted last are on their way */
	uint8_t buf[2048];
	struct sockaddr_in from;
	socklen_t fl;
	for (;;) {
		fl = sizeof(from);
		ssize_t n = recvfrom(r, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &fl);
		if (n <= 0)
			break;
		size_t off = 0;
		struct dp_rtcp_pkt pk;
		struct dp_app_msg msg;
		uint32_t k = 0;
		if (from.sin_addr.s_addr != htonl(SRV_IP_H) ||
		    ntohs(from.sin_port) != MEDIA_PORT + 1 ||
		    dp_rtcp_next(buf, (size_t)n, &off, &pk) != 1 || dp_app_parse(&pk, &msg) != 0 ||
		    msg.kind != DP_APP_RESULT || msg.ssrc != 0x33 ||
		    (k = (msg.u.result.rtp_ts - 4500) / 3000) >= UC_FRAMES ||
		    msg.u.result.rtp_ts != 4500 + 3000 * k || msg.u.result.n_det != 1 ||
		    msg.u.result.det[0].cls != (uint16_t)(17 + k)) {
			ua->results_bad++;
			continue;
		}
		ua->results[k]++;
	}
	while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		ua->on_media_sock++;
	while (recv(o, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		ua->on_other_sock++;
	for (;;) {
		struct sockaddr_ll src;
		socklen_t sl = sizeof(src);
		ssize_t n = recvfrom(cap, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&src,
				     &sl);
		if (n <= 0)
			break;
		if (src.sll_pkttype == PACKET_OUTGOING || n < 42 || get16(buf + 12) != 0x0800 ||
		    buf[14 + 9] != 17 || get32(buf + 26) != SRV_IP_H)
			continue;
		const uint8_t *udp = buf + 14 + (buf[14] & 15) * 4;
		if (get32(buf + 30) == CLI_IP_H && get16(udp + 2) == CLI_PORT + 1)
			ua->to_rtcp++;
		else
			ua->to_other++;
	}
	close(cap);
	close(s);
	close(r);
	close(o);
	ua->rc = 0;
	return NULL;
}

static int test_kernel_udp_client_one_result_per_frame_to_rtcp_port(void)
{
	KX_BEGIN(NULL, 16);
	struct dp_ctx *ctx = kx.ctx;
	static struct uc_arg ua;
	memset(&ua, 0, sizeof(ua));
	pthread_t th;
	ST_CHECK(pthread_create(&th, NULL, uc_thread, &ua) == 0);
	unsigned got = 0, bad = 0;
	uint64_t end = dp_now_ns() + 10 * SEC;
	while (got < UC_FRAMES && dp_now_ns() < end) {
		struct dp_frame f;
		if (dp_frames_dequeue(ctx, &f, 1) != 1) {
			usleep(200);
			continue;
		}
		uint32_t k = (f.rtp_ts - 4500) / 3000;
		if (!raw_frame_ok(&f) || f.client.ssrc != 0x33 || f.client.port != CLI_PORT ||
		    f.client.ip != htonl(CLI_IP_H) || k >= UC_FRAMES)
			bad++;
		struct dp_app_result r;
		memset(&r, 0, sizeof(r));
		r.rtp_ts = f.rtp_ts;
		r.variant = 320;
		r.n_det = 1;
		r.det[0].cls = (uint16_t)(17 + k);
		r.det[0].score = 60000;
		while (dp_result_post(ctx, &f, &r) == -ENOBUFS)
			usleep(100);
		ST_CHECK_EQ(dp_frame_release(ctx, &f), 0);
		got++;
	}
	ua.done = 1;
	pthread_join(th, NULL);
	printf("frames %u (bad %u) of %d sent; results_sent %llu; client: bad %u, on the wire "
	       "to rtcp port %u, elsewhere %u\n", got, bad, ua.sent,
	       (unsigned long long)kcnt(DP_CNT_RESULTS_SENT), ua.results_bad, ua.to_rtcp,
	       ua.to_other);
	ST_CHECK_EQ(ua.rc, 0);
	ST_CHECK_EQ(ua.sent, UC_FRAMES);
	ST_CHECK_EQ(got, UC_FRAMES);
	ST_CHECK_EQ(bad, 0);
	for (unsigned k = 0; k < UC_FRAMES; k++)
		if (ua.results[k] != 1) {
			fprintf(stderr, "frame %u (ts %u): %u RESULTs\n", k, 4500 + 3000 * k,
				ua.results[k]);
			return ST_FAIL;
		}
	ST_CHECK_EQ(ua.results_bad, 0);
	ST_CHECK_EQ(ua.to_rtcp, UC_FRAMES);
	ST_CHECK_EQ(ua.to_other, 0);
	ST_CHECK_EQ(ua.on_media_sock, 0);
	ST_CHECK_EQ(ua.on_other_sock, 0);
	ST_CHECK_EQ(kcnt(DP_CNT_RESULTS_SENT), UC_FRAMES);
	ST_CHECK_EQ(kcnt(DP_CNT_RESULTS_TRIMMED), 0);
	return ST_PASS;
}

/* ---- (3) ffmpeg RTP/JPEG ------------------------------------------------------------------- */
/* Stock ffmpeg in the namespace streams testsrc as RTP/JPEG (RFC 2435): the number of frames
 * it reports (-progress frame=N) all arrive complete and decode with TurboJPEG to the size sent
 * and to the same pixels as the same encoder's JPEG files decoded directly. */
static int test_kernel_ffmpeg_rtp_jpeg_every_frame_decoded(void)
{
	ST_SKIP_IF(system("command -v ffmpeg >/dev/null 2>&1") != 0, "ffmpeg not installed");
	KX_BEGIN(NULL, 64);
	struct dp_ctx *ctx = kx.ctx;
	enum { NF = 20, FW = 320, FH = 240 };
	const char *enc = "-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 20 -c:v mjpeg "
			  "-huffman default -pix_fmt yuvj420p -q:v 3";
	char cmd[1024], dir[64];
	/* reference: the same encoder writing one JPEG file per frame */
	snprintf(dir, sizeof(dir), "/tmp/shoal_dpk_%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && ffmpeg -nostdin -loglevel error %s -f image2 "
		 "%s/f%%03d.jpg", dir, enc, dir);
	ST_CHECK_EQ(system(cmd), 0);
	uint64_t before[DP_CNT__COUNT];
	dp_counters_get(ctx, before);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s ffmpeg -nostdin -loglevel error -nostats "
		 "-progress pipe:1 %s -f rtp 'rtp://" SRV_IP ":%d?pkt_size=1400' 2>&1", ns, enc,
		 MEDIA_PORT);
	FILE *pp = popen(cmd, "r");
	ST_CHECK(pp != NULL);
	char line[256];
	long reported = -1;
	while (fgets(line, sizeof(line), pp))
		if (strncmp(line, "frame=", 6) == 0)
			reported = strtol(line + 6, NULL, 10);
	ST_CHECK_EQ(pclose(pp), 0);
	tjhandle tj = tjInitDecompress();
	ST_CHECK(tj != NULL);
	static uint8_t rgb[FW * FH * 3], ref[FW * FH * 3];
	static uint8_t file[256 * 1024];
	unsigned frames = 0, decoded = 0, exact = 0;
	uint64_t end = dp_now_ns() + 5 * SEC;
	while (frames < (unsigned)(reported > 0 ? reported : NF) && dp_now_ns() < end) {
		struct dp_frame f;
		if (dp_frames_dequeue(ctx, &f, 1) != 1) {
			usleep(200);
			continue;
		}
		const uint8_t *img = gpu_staging_slot(kx.st, f.slot) + f.offset;
		int w = 0, h = 0, sub = 0, cs = 0;
		ST_CHECK_EQ(f.format, DP_FRAME_JPEG);
		ST_CHECK_EQ(f.width, FW);
		ST_CHECK_EQ(f.height, FH);
		if (tjDecompressHeader3(tj, img, f.len, &w, &h, &sub, &cs) == 0 && w == FW &&
		    h == FH && tjDecompress2(tj, img, f.len, rgb, FW, 0, FH, TJPF_RGB, 0) == 0)
			decoded++;
		/* the frame ffmpeg numbered frames + 1 */
		snprintf(line, sizeof(line), "%s/f%03u.jpg", dir, frames + 1);
		FILE *fp = fopen(line, "rb");
		size_t n = fp ? fread(file, 1, sizeof(file), fp) : 0;
		if (fp)
			fclose(fp);
		if (n > 0 && tjDecompress2(tj, file, n, ref, FW, 0, FH, TJPF_RGB, 0) == 0 &&
		    memcmp(rgb, ref, sizeof(rgb)) == 0)
			exact++;
		ST_CHECK_EQ(dp_frame_release(ctx, &f), 0);
		frames++;
	}
	tjDestroy(tj);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	system(cmd);
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(ctx, v);
	printf("ffmpeg reported frame=%ld; %u frames reassembled, %u decoded, %u equal to the "
	       "reference decode; %llu RTP packets, incomplete %llu, payload drops %llu\n",
	       reported, frames, decoded, exact,
	       (unsigned long long)(v[DP_CNT_RTP_PKTS] - before[DP_CNT_RTP_PKTS]),
	       (unsigned long long)(v[DP_CNT_FRAMES_INCOMPLETE] - before[DP_CNT_FRAMES_INCOMPLETE]),
	       (unsigned long long)(v[DP_CNT_DROP_PAYLOAD] - before[DP_CNT_DROP_PAYLOAD]));
	ST_CHECK_EQ(reported, NF);
	ST_CHECK_EQ(frames, NF);
	ST_CHECK_EQ(decoded, NF);
	ST_CHECK_EQ(exact, NF);
	ST_CHECK_EQ(v[DP_CNT_FRAMES_INCOMPLETE], before[DP_CNT_FRAMES_INCOMPLETE]);
	ST_CHECK_EQ(v[DP_CNT_DROP_PAYLOAD], before[DP_CNT_DROP_PAYLOAD]);
	return ST_PASS;
}

/* ---- (4) GStreamer raw video ---------------------------------------------------------------- */
/* Stock GStreamer in the namespace streams raw RGB (RFC 4175, several lines per packet) at
 * the server's default layout: every frame arrives byte-identical to what the same pipeline
 * writes to a file. */
static int test_kernel_gstreamer_raw_live_byte_exact(void)
{
	ST_SKIP_IF(system("command -v gst-launch-1.0 >/dev/null 2>&1") != 0,
		   "gst-launch-1.0 not installed");
	KX_BEGIN(NULL, 16);
	struct dp_ctx *ctx = kx.ctx;
	const char *src = "videotestsrc num-buffers=6 pattern=smpte horizontal-speed=3 "
			  "is-live=false ! video/x-raw,format=RGB,width=64,height=16,"
			  "framerate=10/1";
	char ref_path[64], cmd[1024];
	snprintf(ref_path, sizeof(ref_path), "/tmp/shoal_dpk_%d.rgb", (int)getpid());
	snprintf(cmd, sizeof(cmd), "gst-launch-1.0 -q %s ! filesink location=%s >/dev/null 2>&1",
		 src, ref_path);
	ST_CHECK_EQ(system(cmd), 0);
	FILE *fp = fopen(ref_path, "rb");
	ST_CHECK(fp != NULL);
	static uint8_t ref[6 * W * H * 3];
	size_t nref = fread(ref, 1, sizeof(ref), fp);
	fclose(fp);
	unlink(ref_path);
	ST_CHECK_EQ(nref, sizeof(ref));
	snprintf(cmd, sizeof(cmd),
		 "ip netns exec %s gst-launch-1.0 -q %s ! rtpvrawpay pt=96 mtu=1000 ! "
		 "udpsink host=" SRV_IP " port=%d sync=false >/dev/null 2>&1",
		 ns, src, MEDIA_PORT);
	ST_CHECK_EQ(system(cmd), 0);
	unsigned frames = 0;
	uint64_t end = dp_now_ns() + 3 * SEC;
	while (frames < 6 && dp_now_ns() < end) {
		struct dp_frame f;
		if (dp_frames_dequeue(ctx, &f, 1) != 1) {
			usleep(200);
			continue;
		}
		const uint8_t *img = gpu_staging_slot(kx.st, f.slot) + f.offset;
		ST_CHECK_EQ(f.format, DP_FRAME_RAWRGB);
		ST_CHECK_EQ(f.len, W * H * 3);
		ST_CHECK_MEM(img, ref + (size_t)frames * W * H * 3, W * H * 3);
		ST_CHECK_EQ(dp_frame_release(ctx, &f), 0);
		frames++;
	}
	printf("gstreamer: %u of 6 frames byte-exact\n", frames);
	ST_CHECK_EQ(frames, 6);
	return ST_PASS;
}

/* ---- (5) malformed flood while a real client streams ---------------------------------------- */
#define FL_CLIENT_PORT 41000
#define FL_SSRC 0x7e57
#define FL_WINDOW 128    /* packets in flight between the senders and dp_poll at most */
#define FL_PRE 5         /* frames before the flood (the client is in the table) */
#define FL_POST 5        /* frames after it */
#define FL_SECONDS 3
#define FL_MAX_FRAMES 2048

static struct {
	uint64_t base;        /* packets the server had received (senders' kinds) at the start */
	uint64_t sent;        /* packets the flood and the client were allowed to send */
	volatile int phase;   /* 0 before the flood, 1 flooding, 2 flood over */
	volatile int flood_stop;
	volatile int client_frames; /* frames the client sent */
	unsigned client_pkts;
	int client_rc;
	struct flood_stats fs;
	int flood_rc;
	uint64_t last_rx, last_rx_ns, stalls; /* pacing gave up waiting (packets lost) */
} fl;

/* Packets received of the kinds the senders produce (ARP, ICMP, other ethertypes and
 * addresses come from the namespace's own stack and are left out). */
static uint64_t fl_received(void)
{
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(kx.ctx, v);
	return v[DP_CNT_RX_PKTS] - v[DP_CNT_ARP_REPLIES] - v[DP_CNT_DROP_ARP] -
	       v[DP_CNT_ICMP_REPLIES] - v[DP_CNT_DROP_ICMP] - v[DP_CNT_DROP_ETHERTYPE] -
	       v[DP_CNT_DROP_NOT_MINE];
}

/* Pacing shared by both senders: at most FL_WINDOW packets not yet seen by the server, so
 * that no ring between the senders and dp_poll (veth, AF_XDP/AF_PACKET) can overflow: the
 * flood goes as fast as the server takes it, and a frame lost is lost by the data plane. */
static int fl_gate(void *arg)
{
	(void)arg;
	int64_t sent = (int64_t)__atomic_load_n(&fl.sent, __ATOMIC_ACQUIRE);
	uint64_t rx = fl_received(), now = dp_now_ns();
	if (sent - (int64_t)(rx - fl.base) >= FL_WINDOW) {
		/* no progress for 200 ms: packets were lost before the server; go on (the
		 * accounting checks will say so) */
		uint64_t last = __atomic_load_n(&fl.last_rx, __ATOMIC_RELAXED);
		if (rx != last) {
			__atomic_store_n(&fl.last_rx, rx, __ATOMIC_RELAXED);
			__atomic_store_n(&fl.last_rx_ns, now, __ATOMIC_RELAXED);
			return 0;
		}
		if (now - __atomic_load_n(&fl.last_rx_ns, __ATOMIC_RELAXED) < 200 * MS)
			return 0;
		__atomic_fetch_add(&fl.stalls, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&fl.last_rx_ns, now, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&fl.sent, 1, __ATOMIC_ACQ_REL);
	return 1;
}

/* Kinds the flood sends: all, except IPv4 fragments on net_af_packet, whose socket joins a
 * PACKET_FANOUT group with the defragment flag: the kernel holds fragments for reassembly and
 * the server never sees them. */
static uint32_t fl_kinds(void)
{
	uint32_t all = (1u << FLOOD__COUNT) - 1;
	return strcmp(drv_used, "af_packet") == 0 ? all & ~(1u << FLOOD_IP_FRAG) : all;
}

static void *fl_flood_thread(void *p)
{
	(void)p;
	fl.flood_rc = -1;
	if (ns_enter() != 0)
		return NULL;
	struct flood_cfg c = {.ifname = if_cli, .src_ip = CLI_IP_H, .dst_ip = SRV_IP_H,
			      .media_port = MEDIA_PORT, .port_base = 50000, .unknown_ssrcs = 32,
			      .seed = 0x5eed, .stop = &fl.flood_stop, .may_send = fl_gate,
			      .kinds = fl_kinds()};
	memcpy(c.dst_mac, kx.mac.addr_bytes, 6);
	fl.flood_rc = flood_run(&c, &fl.fs);
	return NULL;
}

/* The real client: a kernel UDP socket sending 64x16 RGB frames (16 packets each) every 10 ms:
 * FL_PRE frames, then while the flood runs, then FL_POST after it. */
static void *fl_client_thread(void *p)
{
	(void)p;
	fl.client_rc = -1;
	if (ns_enter() != 0)
		return NULL;
	int s = udp_socket(FL_CLIENT_PORT);
	if (s < 0)
		return NULL;
	struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(MEDIA_PORT)};
	inet_pton(AF_INET, SRV_IP, &d.sin_addr);
	unsigned k = 0, post = 0;
	uint16_t seq = 0;
	while (k < FL_MAX_FRAMES) {
		if (fl.phase == 0 && k == FL_PRE) { /* wait for the flood */
			usleep(1000);
			continue;
		}
		if (fl.phase == 2 && post++ == FL_POST)
			break;
		for (unsigned y = 0; y < H; y++) {
			uint8_t b[20 + W * 3];
			size_t n = raw_line(b, FL_SSRC, seq++, 3000 * k, y);
			while (!fl_gate(NULL))
				sched_yield();
			while (sendto(s, b, n, 0, (struct sockaddr *)&d, sizeof(d)) != (ssize_t)n)
				sched_yield();
			fl.client_pkts++;
		}
		fl.client_frames = (int)++k;
		usleep(10000);
	}
	close(s);
	fl.client_rc = 0;
	return NULL;
}

static void cfg_flood(struct dp_config *c)
{
	c->max_clients = 8; /* the real client and 7 of the flood's unknown SSRCs */
	c->idle_timeout_ns = 120 * SEC; /* nobody leaves the table during the test */
}

/* Consumes frames: the real client's must come in order and byte-exact. */
static void fl_consume(unsigned *real, unsigned *real_bad, unsigned *junk)
{
	struct dp_frame f[16];
	unsigned n = dp_frames_dequeue(kx.ctx, f, 16);
	for (unsigned i = 0; i < n; i++) {
		if (f[i].client.ssrc == FL_SSRC && f[i].client.port == FL_CLIENT_PORT) {
			if (f[i].rtp_ts != 3000 * *real || !raw_frame_ok(&f[i]))
				(*real_bad)++;
			(*real)++;
		} else {
			(*junk)++;
		}
		dp_frame_release(kx.ctx, &f[i]);
	}
	if (n == 0)
		usleep(100);
}

/* While a real client streams, the namespace floods the media and RTCP ports with every kind
 * of malformed packet in flood_gen.h plus well-formed RTP from unknown SSRCs (which fill the
 * client table), as fast as the server takes them: no crash, every frame of the real client
 * arrives complete and byte-exact, it is never evicted, each kind of garbage is counted under
 * its own counter exactly as many times as it was sent, and the counters account for every
 * packet received. */
static int test_kernel_flood_malformed_real_client_loses_nothing(void)
{
	KX_BEGIN(cfg_flood, 64);
	memset(&fl, 0, sizeof(fl));
	uint64_t v0[DP_CNT__COUNT], v[DP_CNT__COUNT];
	dp_counters_get(kx.ctx, v0);
	fl.base = fl_received();
	unsigned real = 0, real_bad = 0, junk = 0;
	pthread_t cth, fth;
	ST_CHECK(pthread_create(&cth, NULL, fl_client_thread, NULL) == 0);
	/* the real client is in the table (its first frames came out) before the flood */
	uint64_t end = dp_now_ns() + 10 * SEC;
	while (real < FL_PRE && dp_now_ns() < end)
		fl_consume(&real, &real_bad, &junk);
	ST_CHECK_EQ(real, FL_PRE);
	ST_CHECK_EQ(dp_client_count(kx.ctx), 1);
	ST_CHECK(pthread_create(&fth, NULL, fl_flood_thread, NULL) == 0);
	fl.phase = 1;
	uint64_t t0 = dp_now_ns();
	while (dp_now_ns() < t0 + FL_SECONDS * SEC)
		fl_consume(&real, &real_bad, &junk);
	fl.flood_stop = 1;
	pthread_join(fth, NULL);
	uint64_t t1 = dp_now_ns();
	fl.phase = 2;
	while (fl.client_rc == -1 || fl.client_frames == 0 ||
	       real < (unsigned)fl.client_frames) {
		fl_consume(&real, &real_bad, &junk);
		if (dp_now_ns() > t1 + 10 * SEC)
			break;
		if (pthread_tryjoin_np(cth, NULL) == 0) {
			end = dp_now_ns() + 5 * SEC;
			while (real < (unsigned)fl.client_frames && dp_now_ns() < end)
				fl_consume(&real, &real_bad, &junk);
			break;
		}
	}
	pthread_join(cth, NULL);
	/* every packet sent has been through dp_poll, then the poll thread stops */
	end = dp_now_ns() + 5 * SEC;
	while (fl_received() - fl.base < fl.sent && dp_now_ns() < end)
		usleep(1000);
	kx_stop();
	fl_consume(&real, &real_bad, &junk);
	dp_counters_get(kx.ctx, v);
	uint64_t d[DP_CNT__COUNT];
	for (unsigned i = 0; i < DP_CNT__COUNT; i++)
		d[i] = v[i] - v0[i];
	struct dp_client_key key = {htonl(CLI_IP_H), FL_CLIENT_PORT, FL_SSRC};
	struct dp_client_stats cs;
	memset(&cs, 0, sizeof(cs));
	int have = dp_client_stats_get(kx.ctx, &key, &cs);

	double secs = (double)(t1 - t0) / 1e9;
	printf("flood: %llu packets in %.2f s (%.0f pkt/s, %llu send retries, rc %d); real client: "
	       "%d frames / %u packets sent, %u received (%u bad), %llu complete, %llu incomplete, "
	       "%llu dropped; %u junk frames delivered\n",
	       (unsigned long long)fl.fs.total, secs, (double)fl.fs.total / secs,
	       (unsigned long long)fl.fs.send_errors, fl.flood_rc, fl.client_frames,
	       fl.client_pkts, real, real_bad, (unsigned long long)cs.frames_complete,
	       (unsigned long long)cs.frames_incomplete, (unsigned long long)cs.frames_dropped,
	       junk);
	struct rte_eth_stats es;
	memset(&es, 0, sizeof(es));
	rte_eth_stats_get(kx.port, &es);
	printf("  pacing stalls (packets lost before the server): %llu; port: ipackets %llu "
	       "imissed %llu ierrors %llu rx_nombuf %llu\n", (unsigned long long)fl.stalls,
	       (unsigned long long)es.ipackets, (unsigned long long)es.imissed,
	       (unsigned long long)es.ierrors, (unsigned long long)es.rx_nombuf);
	for (unsigned k = 0; k < FLOOD__COUNT; k++)
		printf("  sent %-22s %llu\n", flood_kind_name(k), (unsigned long long)fl.fs.sent[k]);
	for (unsigned i = 0; i < DP_CNT__COUNT; i++)
		if (d[i])
			printf("  counter %-18s +%llu\n", dp_cnt_name(i), (unsigned long long)d[i]);

	ST_CHECK_EQ(fl.flood_rc, 0);
	ST_CHECK_EQ(fl.client_rc, 0);
	ST_CHECK(fl.fs.total > 1000);
	/* the real client: every frame, complete and exact, never evicted */
	ST_CHECK(fl.client_frames > FL_PRE + FL_POST);
	ST_CHECK_EQ(real, fl.client_frames);
	ST_CHECK_EQ(real_bad, 0);
	ST_CHECK_EQ(have, 0);
	ST_CHECK_EQ(cs.frames_complete, fl.client_frames);
	ST_CHECK_EQ(cs.frames_incomplete, 0);
	ST_CHECK_EQ(cs.frames_dropped, 0);
	ST_CHECK_EQ(cs.packets, fl.client_pkts);
	ST_CHECK_EQ(cs.dup_packets + cs.stale_packets, 0);
	ST_CHECK_EQ(d[DP_CNT_CLIENTS_EVICTED] + d[DP_CNT_CLIENTS_REMOVED], 0);
	/* every packet the senders sent reached the poll loop */
	ST_CHECK_EQ(fl_received() - fl.base, fl.fs.total + fl.client_pkts);
	/* each kind of garbage under its own counter, exactly */
	const uint64_t *s = fl.fs.sent;
	for (unsigned k = 0; k < FLOOD__COUNT; k++)
		ST_CHECK(s[k] > 0 || !(fl_kinds() & (1u << k)));
	ST_CHECK_EQ(d[DP_CNT_DROP_RTP], s[FLOOD_RANDOM_UDP] + s[FLOOD_RTP_TRUNC] + s[FLOOD_RTP_CSRC] +
						s[FLOOD_RTP_EXT] + s[FLOOD_RTP_PAD]);
	ST_CHECK_EQ(d[DP_CNT_DROP_RTP_PT], s[FLOOD_RTP_PT]);
	ST_CHECK_EQ(d[DP_CNT_DROP_RTCP], s[FLOOD_RTCP_LEN] + s[FLOOD_RTCP_APP_NAME]);
	ST_CHECK_EQ(d[DP_CNT_RTCP_PKTS], s[FLOOD_RTCP_LEN] + s[FLOOD_RTCP_APP_NAME]);
	ST_CHECK_EQ(d[DP_CNT_DROP_IP_CKSUM], s[FLOOD_IP_CKSUM]);
	ST_CHECK_EQ(d[DP_CNT_DROP_IP_FRAG], s[FLOOD_IP_FRAG]);
	ST_CHECK_EQ(d[DP_CNT_DROP_IP_HDR], s[FLOOD_IP_LEN]);
	ST_CHECK_EQ(d[DP_CNT_DROP_UDP_HDR], s[FLOOD_UDP_LEN]);
	ST_CHECK_EQ(d[DP_CNT_DROP_UDP_PORT], s[FLOOD_UDP_PORT]);
	ST_CHECK_EQ(d[DP_CNT_DROP_RUNT], s[FLOOD_RUNT]);
	/* unknown SSRCs: the table fills (7 places left), then table-full drops */
	ST_CHECK_EQ(d[DP_CNT_CLIENTS_NEW], 8);
	ST_CHECK(d[DP_CNT_DROP_TABLE_FULL] > 0);
	ST_CHECK_EQ(d[DP_CNT_RTP_PKTS] - fl.client_pkts + d[DP_CNT_DROP_TABLE_FULL] +
			    d[DP_CNT_DROP_DUP] + d[DP_CNT_DROP_STALE],
		    s[FLOOD_UNKNOWN_SSRC]);
	ST_CHECK_EQ(d[DP_CNT_FRAMES_OVERLOAD] + d[DP_CNT_FRAMES_TOO_LARGE], 0);
	/* every packet received is accounted for by exactly one outcome */
	static const unsigned outcome[] = {
		DP_CNT_ARP_REPLIES, DP_CNT_ICMP_REPLIES, DP_CNT_RTP_PKTS, DP_CNT_RTCP_PKTS,
		DP_CNT_DROP_RUNT, DP_CNT_DROP_MULTISEG, DP_CNT_DROP_ETHERTYPE, DP_CNT_DROP_NOT_MINE,
		DP_CNT_DROP_ARP, DP_CNT_DROP_IP_HDR, DP_CNT_DROP_IP_CKSUM, DP_CNT_DROP_IP_FRAG,
		DP_CNT_DROP_IP_PROTO, DP_CNT_DROP_ICMP, DP_CNT_DROP_UDP_HDR, DP_CNT_DROP_UDP_PORT,
		DP_CNT_DROP_RTP, DP_CNT_DROP_RTP_PT, DP_CNT_DROP_TABLE_FULL, DP_CNT_DROP_DUP,
		DP_CNT_DROP_STALE};
	uint64_t sum = 0;
	for (unsigned i = 0; i < sizeof(outcome) / sizeof(outcome[0]); i++)
		sum += d[outcome[i]];
	ST_CHECK_EQ(sum, d[DP_CNT_RX_PKTS]);
	return ST_PASS;
}

int main(int argc, char **argv)
{
	static const struct st_case cases[] = {
		ST_CASE(test_kernel_ping_from_namespace_answered),
		ST_CASE(test_kernel_udp_client_one_result_per_frame_to_rtcp_port),
		ST_CASE(test_kernel_ffmpeg_rtp_jpeg_every_frame_decoded),
		ST_CASE(test_kernel_gstreamer_raw_live_byte_exact),
		ST_CASE(test_kernel_flood_malformed_real_client_loses_nothing),
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2)
		drv_want = argv[2];
	if (drv_want && strcmp(drv_want, "af_xdp") != 0 && strcmp(drv_want, "af_packet") != 0) {
		fprintf(stderr, "driver must be af_xdp or af_packet\n");
		return ST_FAIL;
	}
	return st_main(argc > 2 ? 2 : argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
