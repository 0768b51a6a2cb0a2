/* The data plane against the Linux network stack: a veth pair whose client end lives in a
 * network namespace created here, the server on net_af_packet over the other end, dp_run on
 * its own thread. The kernel is the peer that judges our packets: ping (ARP + ICMP echo) must
 * succeed, and a RESULT must reach a kernel UDP socket (which drops bad IPv4/UDP checksums).
 * Exit 77 when namespaces or veth cannot be created (not root). */

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>

#include "dataplane/dp.h"
#include "harness.h"

#define SRV_IP "10.77.0.1"
#define CLI_IP "10.77.0.2"
#define MEDIA_PORT 5004
#define CLI_PORT 40000
#define W 64
#define H 16

static char ns[32], if_srv[16], if_cli[16];

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

static void net_down(void)
{
	sh("ip link del %s 2>/dev/null%s", if_srv, "");
	sh("ip netns del %s 2>/dev/null%s", ns, "");
}

static int net_up(void)
{
	int pid = (int)getpid() % 100000;
	snprintf(ns, sizeof(ns), "shoaldp%d", pid);
	snprintf(if_srv, sizeof(if_srv), "dps%d", pid);
	snprintf(if_cli, sizeof(if_cli), "dpc%d", pid);
	if (sh("ip netns add %s%s 2>/dev/null", ns, "") != 0)
		return -1;
	if (sh("ip link add %s type veth peer name %s 2>/dev/null", if_srv, if_cli) != 0 ||
	    sh("ip link set %s netns %s", if_cli, ns) != 0 ||
	    sh("ip netns exec %s ip addr add " CLI_IP "/24 dev %s", ns, if_cli) != 0 ||
	    sh("ip netns exec %s ip link set %s up", ns, if_cli) != 0 ||
	    sh("ip netns exec %s ethtool -K %s tx off >/dev/null 2>&1", ns, if_cli) != 0 ||
	    sh("ip link set %s up%s", if_srv, "") != 0) {
		net_down();
		return -1;
	}
	return 0;
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

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

struct client_arg {
	int rc;           /* 0 when the RESULT arrived and parsed */
	struct dp_app_msg msg;
};

/* Runs in the namespace (setns affects this thread only): sends one raw RGB frame from
 * CLI_PORT and waits for the RESULT on CLI_PORT + 1. */
static void *client_thread(void *p)
{
	struct client_arg *ca = p;
	ca->rc = -1;
	char path[64];
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	int nsfd = open(path, O_RDONLY);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0)
		return NULL;
	close(nsfd);
	int s = socket(AF_INET, SOCK_DGRAM, 0), r = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, CLI_IP, &a.sin_addr);
	a.sin_port = htons(CLI_PORT);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0)
		return NULL;
	a.sin_port = htons(CLI_PORT + 1);
	if (bind(r, (struct sockaddr *)&a, sizeof(a)) != 0)
		return NULL;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(MEDIA_PORT)};
	inet_pton(AF_INET, SRV_IP, &d.sin_addr);
	for (unsigned y = 0; y < H; y++) {
		uint8_t b[12 + 8 + W * 3];
		memset(b, 0, sizeof(b));
		b[0] = 0x80;
		b[1] = (uint8_t)(96 | (y == H - 1 ? 0x80 : 0));
		put16(b + 2, (uint16_t)y);
		put16(b + 6, 4500);
		b[11] = 0x33;
		put16(b + 14, W * 3);
		put16(b + 16, (uint16_t)y);
		memset(b + 20, (int)y, W * 3);
		if (sendto(s, b, sizeof(b), 0, (struct sockaddr *)&d, sizeof(d)) != (ssize_t)sizeof(b))
			return NULL;
	}
	uint8_t buf[2048];
	ssize_t n = recv(r, buf, sizeof(buf), 0);
	if (n > 0) {
		size_t off = 0;
		struct dp_rtcp_pkt pk;
		if (dp_rtcp_next(buf, (size_t)n, &off, &pk) == 1 && dp_app_parse(&pk, &ca->msg) == 0)
			ca->rc = 0;
	}
	close(s);
	close(r);
	return NULL;
}

/* ---- shared fixture: namespace, EAL, port, context and dp_run thread, made once ------------ */
static struct {
	int state; /* 0 untried, 1 up, -1 failed */
	struct gpu_staging *st;
	struct dp_ctx *ctx;
	struct run_arg ra;
	pthread_t th;
} kx;

static void kx_down(void)
{
	if (kx.state != 1)
		return;
	kx.ra.stop = 1;
	pthread_join(kx.th, NULL);
	dp_destroy(kx.ctx);
	dp_port_fini(0);
	gpu_staging_destroy(kx.st);
	net_down();
	kx.state = 0;
}

/* 1 when up; 0 with the reason printed when the machine cannot do it. */
static int kx_up(void)
{
	if (kx.state)
		return kx.state > 0;
	kx.state = -1;
	if (net_up() != 0) {
		printf("cannot create a network namespace and veth pair (need root)\n");
		return 0;
	}
	char vdev[64], prefix[64];
	snprintf(vdev, sizeof(vdev), "--vdev=net_af_packet0,iface=%s", if_srv);
	snprintf(prefix, sizeof(prefix), "--file-prefix=shoal_dpk_%d", (int)getpid());
	char *argv[] = {"test_dp_kernel", "-l", "0", "--no-huge", "-m", "512", "--no-shconf",
			"--no-telemetry", "--no-pci", "--log-level=lib.eal:error", prefix, vdev, NULL};
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0 ||
	    rte_eth_dev_count_avail() < 1) {
		net_down();
		printf("EAL with net_af_packet cannot start here\n");
		return 0;
	}
	kx.st = gpu_staging_create(16, 1 << 20, NULL, 0);
	struct dp_config cfg;
	dp_config_defaults(&cfg);
	cfg.name = "k";
	cfg.port_id = 0;
	inet_pton(AF_INET, SRV_IP, &cfg.ip);
	cfg.media_port = MEDIA_PORT;
	cfg.staging = kx.st;
	cfg.default_raw_format = DP_FRAME_RAWRGB;
	cfg.default_raw_width = W;
	cfg.default_raw_height = H;
	cfg.frame_timeout_ns = 5000000000ull;
	if (!kx.st || dp_port_init(0, 1023, 512) != 0 || !(kx.ctx = dp_create(&cfg))) {
		gpu_staging_destroy(kx.st);
		net_down();
		return 0;
	}
	kx.ra.ctx = kx.ctx;
	pthread_create(&kx.th, NULL, run_thread, &kx.ra);
	kx.state = 1;
	atexit(kx_down);
	return 1;
}

static int test_kernel_peer_ping_and_result(void)
{
	ST_SKIP_IF(!kx_up(), "no namespace/veth/af_packet here");
	struct dp_ctx *ctx = kx.ctx;
	int ping = sh("ip netns exec %s ping -c 2 -W 2 -q " SRV_IP " >/dev/null%s", ns, "");
	struct client_arg ca;
	memset(&ca, 0, sizeof(ca));
	pthread_t cth;
	pthread_create(&cth, NULL, client_thread, &ca);
	struct dp_frame f;
	int got = 0;
	uint64_t end = dp_now_ns() + 5000000000ull;
	while (!got && dp_now_ns() < end)
		got = dp_frames_dequeue(ctx, &f, 1) == 1;
	if (got) {
		struct dp_app_result r;
		memset(&r, 0, sizeof(r));
		r.rtp_ts = f.rtp_ts;
		r.variant = 320;
		r.n_det = 1;
		r.det[0].cls = 17;
		dp_result_post(ctx, &f, &r);
		dp_frame_release(ctx, &f);
	}
	pthread_join(cth, NULL);
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(ctx, v);
	printf("ping rc %d, frame %d, result %d; arp %llu icmp %llu tx %llu\n", ping, got, ca.rc,
	       (unsigned long long)v[DP_CNT_ARP_REPLIES], (unsigned long long)v[DP_CNT_ICMP_REPLIES],
	       (unsigned long long)v[DP_CNT_TX_PKTS]);
	ST_CHECK_EQ(ping, 0);
	ST_CHECK(got);
	ST_CHECK_EQ(f.rtp_ts, 4500);
	ST_CHECK_EQ(f.width, W);
	ST_CHECK_EQ(ca.rc, 0);
	ST_CHECK_EQ(ca.msg.kind, DP_APP_RESULT);
	ST_CHECK_EQ(ca.msg.u.result.rtp_ts, 4500);
	ST_CHECK_EQ(ca.msg.u.result.n_det, 1);
	ST_CHECK_EQ(ca.msg.u.result.det[0].cls, 17);
	ST_CHECK(v[DP_CNT_ICMP_REPLIES] >= 2);
	ST_CHECK(v[DP_CNT_ARP_REPLIES] >= 1);
	return ST_PASS;
}

/* Stock ffmpeg in the namespace streams MJPEG (RFC 2435) over the kernel stack: every frame
 * it sends arrives complete as a JFIF image of the right size. */
static int test_kernel_ffmpeg_mjpeg_live(void)
{
	ST_SKIP_IF(system("command -v ffmpeg >/dev/null 2>&1") != 0, "ffmpeg not installed");
	ST_SKIP_IF(!kx_up(), "no namespace/veth/af_packet here");
	struct dp_ctx *ctx = kx.ctx;
	uint64_t before[DP_CNT__COUNT];
	dp_counters_get(ctx, before);
	int rc = sh("ip netns exec %s ffmpeg -nostdin -loglevel error -f lavfi "
		    "-i testsrc=size=320x240:rate=10 -frames:v 8 -c:v mjpeg -huffman default "
		    "-pix_fmt yuvj420p -q:v 3 -f rtp 'rtp://" SRV_IP ":5004?pkt_size=1400'"
		    " >/dev/null%s", ns, "");
	ST_CHECK_EQ(rc, 0);
	unsigned frames = 0;
	uint64_t end = dp_now_ns() + 3000000000ull;
	while (frames < 8 && dp_now_ns() < end) {
		struct dp_frame f;
		if (dp_frames_dequeue(ctx, &f, 1) != 1)
			continue;
		const uint8_t *img = gpu_staging_slot(kx.st, f.slot) + f.offset;
		ST_CHECK_EQ(f.format, DP_FRAME_JPEG);
		ST_CHECK_EQ(f.width, 320);
		ST_CHECK_EQ(f.height, 240);
		ST_CHECK(f.len > 1000 && img[0] == 0xff && img[1] == 0xd8);
		ST_CHECK(img[f.len - 2] == 0xff && img[f.len - 1] == 0xd9);
		ST_CHECK_EQ(dp_frame_release(ctx, &f), 0);
		frames++;
	}
	uint64_t v[DP_CNT__COUNT];
	dp_counters_get(ctx, v);
	printf("ffmpeg: %u frames, %llu RTP packets, %llu RTCP, incomplete %llu\n", frames,
	       (unsigned long long)(v[DP_CNT_RTP_PKTS] - before[DP_CNT_RTP_PKTS]),
	       (unsigned long long)(v[DP_CNT_RTCP_PKTS] - before[DP_CNT_RTCP_PKTS]),
	       (unsigned long long)(v[DP_CNT_FRAMES_INCOMPLETE] - before[DP_CNT_FRAMES_INCOMPLETE]));
	ST_CHECK_EQ(frames, 8);
	ST_CHECK_EQ(v[DP_CNT_FRAMES_INCOMPLETE], before[DP_CNT_FRAMES_INCOMPLETE]);
	return ST_PASS;
}

/* Stock GStreamer in the namespace streams raw RGB (RFC 4175, several lines per packet) at
 * the server's default layout: every frame arrives byte-identical to what the same pipeline
 * writes to a file. */
static int test_kernel_gstreamer_raw_live_byte_exact(void)
{
	ST_SKIP_IF(system("command -v gst-launch-1.0 >/dev/null 2>&1") != 0,
		   "gst-launch-1.0 not installed");
	ST_SKIP_IF(!kx_up(), "no namespace/veth/af_packet here");
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
	uint64_t end = dp_now_ns() + 3000000000ull;
	while (frames < 6 && dp_now_ns() < end) {
		struct dp_frame f;
		if (dp_frames_dequeue(ctx, &f, 1) != 1)
			continue;
		const uint8_t *img = gpu_staging_slot(kx.st, f.slot) + f.offset;
		ST_CHECK_EQ(f.format, DP_FRAME_RAWRGB);
		ST_CHECK_EQ(f.len, W * H * 3);
		ST_CHECK_MEM(img, ref + (size_t)frames * W * H * 3, W * H * 3);
		ST_CHECK_EQ(dp_frame_release(ctx, &f), 0);
		frames++;
	}
	ST_CHECK_EQ(frames, 6);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_kernel_peer_ping_and_result), ST_CASE(test_kernel_ffmpeg_mjpeg_live),
	ST_CASE(test_kernel_gstreamer_raw_live_byte_exact))
