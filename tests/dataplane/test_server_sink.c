/* shoal-server as a program (argv[2]: its path): --help, one-line errors with exit 2, a
 * config file, a net_null port with two RSS queues that stops by itself after --duration,
 * placement by hwloc, and stock ffmpeg (RTP/JPEG) and GStreamer (raw RGB at the --raw-*
 * defaults) streaming from a network namespace (veth, server on net_af_packet) in --sink mode:
 * every frame complete and answered by exactly one RESULT, seen by a packet socket on the
 * client's side. Exit 77 when the EAL cannot start or, for the live case, without
 * root (namespace, veth). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/dp_proto.h"
#include "harness.h"

#define SRV_IP "10.78.0.1"
#define CLI_IP "10.78.0.2"
#define CLI_RTP_PORT 40000
#define N_FRAMES 20     /* ffmpeg, MJPEG */
#define GST_RTP_PORT 42000
#define N_RAW_FRAMES 6  /* GStreamer, raw RGB 64x16 at the server's --raw-* defaults */

static const char *server_path;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

/* ---- running the server ------------------------------------------------------------------- */
struct run {
	pid_t pid;
	char out[64], err[64]; /* files holding its stdout and stderr */
};

static int run_start(struct run *r, char *const args[])
{
	static int seq;
	snprintf(r->out, sizeof(r->out), "/tmp/shoal_srvt_%d_%d.out", (int)getpid(), seq);
	snprintf(r->err, sizeof(r->err), "/tmp/shoal_srvt_%d_%d.err", (int)getpid(), seq++);
	fflush(stdout);
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (r->pid == 0) {
		int o = open(r->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(r->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		execv(server_path, args);
		_exit(127);
	}
	return 0;
}

/* Exit status, or -1 after killing it when it did not end within timeout_s. */
static int run_wait(struct run *r, double timeout_s)
{
	double end = now_s() + timeout_s;
	int st;
	for (;;) {
		pid_t p = waitpid(r->pid, &st, WNOHANG);
		if (p == r->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (now_s() > end) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, &st, 0);
			return -1;
		}
		sleep_ms(20);
	}
}

static char *file_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* file_read, or "" when the file cannot be read (for printing). */
static const char *file_text(const char *path)
{
	const char *t = file_read(path);
	return t ? t : "";
}

static void run_cleanup(const struct run *r)
{
	unlink(r->out);
	unlink(r->err);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Value of `key=` on the line starting with `prefix`, -1 when absent. */
static long long stat_get(const char *text, const char *prefix, const char *key)
{
	const char *line = text;
	size_t pl = strlen(prefix);
	while (line && *line) {
		if (strncmp(line, prefix, pl) == 0) {
			const char *end = strchr(line, '\n');
			char k[64];
			snprintf(k, sizeof(k), " %s=", key);
			const char *p = strstr(line, k);
			if (p && (!end || p < end))
				return strtoll(p + strlen(k), NULL, 10);
			return -1;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

/* EAL arguments for a test run: no hugepages, its own file prefix, the main lcore plus
 * `workers` poll lcores spread over the CPUs this process may use. */
static int eal_args(char **argv, int max, char *bufs, size_t buf_len, const char *vdev,
		    int workers)
{
	cpu_set_t cs;
	int cpus[2] = {0, 0}, nc = 0;
	if (sched_getaffinity(0, sizeof(cs), &cs) == 0)
		for (int c = 0; c < CPU_SETSIZE && nc < 2; c++)
			if (CPU_ISSET(c, &cs))
				cpus[nc++] = c;
	if (nc == 0)
		nc = 1;
	char *lc = bufs, *prefix = bufs + buf_len / 2;
	int off = snprintf(lc, buf_len / 2, "--lcores=0@%d", cpus[0]);
	for (int w = 1; w <= workers; w++)
		off += snprintf(lc + off, buf_len / 2 - (size_t)off, ",%d@%d", w,
				cpus[nc > 1 ? 1 : 0]);
	snprintf(prefix, buf_len / 2, "--file-prefix=shoal_srvt_%d", (int)getpid());
	char *fixed[] = {(char *)server_path, "--no-huge", "-m", "512", "--no-shconf",
			 "--no-telemetry", "--no-pci", "--log-level=lib.eal:error", lc, prefix,
			 (char *)vdev, "--"};
	int n = (int)(sizeof(fixed) / sizeof(fixed[0]));
	if (n > max)
		return -1;
	memcpy(argv, fixed, sizeof(fixed));
	return n;
}

/* 1 when the run ended because the EAL could not start on this machine. */
static int eal_unavailable(int status, const struct run *r)
{
	const char *e = file_read(r->err);
	return status == 1 && e && strstr(e, "EAL cannot start");
}

/* ---- cases --------------------------------------------------------------------------------- */
static int test_server_help_labels_sink_measurement_mode(void)
{
	struct run r;
	char *args[] = {(char *)server_path, "--", "--help", NULL};
	ST_CHECK_EQ(run_start(&r, args), 0);
	ST_CHECK_EQ(run_wait(&r, 10), 0);
	const char *out = file_read(r.out);
	ST_CHECK(out != NULL);
	ST_CHECK(strstr(out, "--sink") != NULL);
	ST_CHECK(strstr(out, "MEASUREMENT MODE") != NULL);
	ST_CHECK(strstr(out, "not for serving") != NULL);
	ST_CHECK(strstr(out, "--no-huge -m 1024 --no-shconf") != NULL);
	static const char *const flags[] = {"--config", "--ip", "--media-port", "--port",
					    "--queues", "--max-clients", "--slots", "--slot-bytes",
					    "--slo-ms", "--fps", "--raw-pt", "--raw-size",
					    "--raw-format", "--stats-interval", "--duration",
					    "--gpu-pci", "--rx-desc", "--mbufs"};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (!strstr(out, flags[i])) {
			fputs(flags[i], stderr);
			fputs(": not explained by --help\n", stderr);
		}
		ST_CHECK(strstr(out, flags[i]) != NULL);
	}
	run_cleanup(&r);
	/* without "--" too */
	char *args2[] = {(char *)server_path, "--help", NULL};
	ST_CHECK_EQ(run_start(&r, args2), 0);
	ST_CHECK_EQ(run_wait(&r, 10), 0);
	ST_CHECK(strstr(file_read(r.out), "MEASUREMENT MODE") != NULL);
	run_cleanup(&r);
	return ST_PASS;
}

static int test_server_bad_options_one_line_exit_2(void)
{
	char cfg[64];
	snprintf(cfg, sizeof(cfg), "/tmp/shoal_srvt_%d.conf", (int)getpid());
	FILE *f = fopen(cfg, "w");
	ST_CHECK(f != NULL);
	fprintf(f, "# test\nip = 10.0.0.1\n\nsink = true\nbogus-key = 3\n");
	fclose(f);
	char cfg_line[96];
	snprintf(cfg_line, sizeof(cfg_line), "%s:5: unknown option 'bogus-key'", cfg);
	struct {
		const char *args[8];
		const char *msg; /* expected in the one stderr line */
	} cases[] = {
		{{"--", "--sink", "--ip", "10.0.0.1", "--bogus"}, "unknown option '--bogus'"},
		{{"--", "--sink", "--ip", "300.1.2.3"}, "--ip: '300.1.2.3'"},
		{{"--", "--sink"}, "--ip A.B.C.D is required"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--media-port", "65535"}, "--media-port"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--media-port"}, "needs a value"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--raw-size", "640x"}, "--raw-size"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--raw-format", "nv12"}, "--raw-format"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--queues", "-1"}, "--queues"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--fps", "abc"}, "--fps"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--headroom", "0.95"}, "--headroom"},
		{{"--", "--sink", "--ip", "10.0.0.1", "stray"}, "unexpected argument 'stray'"},
		{{"--", "--sink", "--ip", "10.0.0.1", "--gpu-pci", "gpu0"}, "--gpu-pci"},
		{{"--", "--sink=yes", "--ip", "10.0.0.1"}, "--sink takes no value"},
		/* serving (no --sink): a bad model file is refused before the EAL starts */
		{{"--", "--ip", "10.0.0.1", "--model-file", "/nonexistent/m.onnx"},
		 "/nonexistent/m.onnx"},
		{{"--", "--config", "/nonexistent/shoal.conf"}, "/nonexistent/shoal.conf"},
		{{"--", "--config", cfg}, cfg_line},
		{{"--sink", "--ip", "10.0.0.1"}, "put it after '--'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *args[10] = {(char *)server_path};
		for (int j = 0; j < 8 && cases[i].args[j]; j++)
			args[j + 1] = (char *)cases[i].args[j];
		struct run r;
		ST_CHECK_EQ(run_start(&r, args), 0);
		int st = run_wait(&r, 10);
		const char *e = file_read(r.err);
		printf("case %zu: exit %d: %s", i, st, e ? e : "(none)\n");
		ST_CHECK_EQ(st, 2);
		ST_CHECK(e != NULL);
		ST_CHECK_EQ(count_lines(e), 1);
		ST_CHECK(strncmp(e, "shoal-server: ", 14) == 0);
		ST_CHECK(strstr(e, cases[i].msg) != NULL);
		run_cleanup(&r);
	}
	unlink(cfg);
	return ST_PASS;
}

/* net_null: four queues asked, two poll lcores, so two queues with RSS; options from a config
 * file with one flag overriding it; the run stops by itself after --duration and accounts for
 * every packet. */
static int test_server_sink_null_rss_queues_config_duration(void)
{
	char cfg[64];
	snprintf(cfg, sizeof(cfg), "/tmp/shoal_srvt_%d.conf", (int)getpid());
	FILE *f = fopen(cfg, "w");
	ST_CHECK(f != NULL);
	fprintf(f, "# sink run on net_null\nsink = yes\nip = 10.78.9.1\nmedia-port = 6000\n"
		   "queues = 4\nslots = 32\nduration = 30   # overridden on the command line\n"
		   "stats-interval = 0.25\n");
	fclose(f);
	char *args[32], bufs[256];
	int n = eal_args(args, 32, bufs, sizeof(bufs), "--vdev=net_null0", 2);
	ST_CHECK(n > 0);
	char *app[] = {"--config", cfg, "--duration", "1"};
	memcpy(args + n, app, sizeof(app));
	args[n + 4] = NULL;
	struct run r;
	ST_CHECK_EQ(run_start(&r, args), 0);
	int st = run_wait(&r, 60);
	unlink(cfg);
	if (eal_unavailable(st, &r)) {
		run_cleanup(&r);
		ST_SKIP_IF(1, "EAL cannot start here");
	}
	const char *out = file_read(r.out);
	printf("exit %d\n%s", st, out ? out : "");
	printf("stderr: %s", file_text(r.err));
	ST_CHECK_EQ(st, 0);
	out = file_read(r.out);
	ST_CHECK(strstr(out, "ready: mode=sink") != NULL);
	ST_CHECK_EQ(stat_get(out, "ready:", "media_port"), 6000);
	ST_CHECK_EQ(stat_get(out, "ready:", "queues_asked"), 4); /* 2 poll lcores: 2 queues */
	ST_CHECK_EQ(stat_get(out, "final:", "queues"), 2);
	ST_CHECK(strstr(out, " rss=on") != NULL);
	ST_CHECK(strstr(out, "stats: t=") != NULL);
	long long rx = stat_get(out, "sink:", "rx_pkts");
	ST_CHECK(rx > 0);
	ST_CHECK_EQ(stat_get(out, "counters:", "rx_pkts"), rx);
	/* every packet of net_null is counted as one drop kind; none reaches reassembly */
	long long drops = 0;
	const char *kinds[] = {"drop_runt", "drop_ethertype", "drop_not_mine", "drop_ip_hdr"};
	for (int i = 0; i < 4; i++)
		drops += stat_get(out, "counters:", kinds[i]);
	ST_CHECK_EQ(drops, rx);
	ST_CHECK_EQ(stat_get(out, "sink:", "frames"), 0);
	ST_CHECK_EQ(stat_get(out, "staging:", "free"), 32);
	ST_CHECK_EQ(stat_get(out, "staging:", "total"), 32);
	ST_CHECK(stat_get(out, "sink:", "rss_kb") > 0);
	/* both queues polled: the sum of the per-queue lines */
	const char *q1 = strstr(out, "queue: id=1");
	ST_CHECK(q1 != NULL);
	ST_CHECK(stat_get(q1, "queue:", "rx_pkts") > 0);
	/* the last line is the machine-readable summary */
	const char *last = strstr(out, "sink: rx_pkts=");
	ST_CHECK(last != NULL && strchr(last, '\n') && strchr(last, '\n')[1] == 0);
	run_cleanup(&r);
	return ST_PASS;
}

/* Without -l/--lcores every CPU is an lcore and hwloc places the poll lcores: they never
 * include the main lcore, and the run is a normal one. Then a port the EAL lacks is refused. */
static int test_server_sink_hwloc_placement_without_lcores(void)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=shoal_srvt_%d", (int)getpid());
	char *args[] = {(char *)server_path, "--no-huge", "-m", "512", "--no-shconf",
			"--no-telemetry", "--no-pci", "--log-level=lib.eal:error", prefix,
			"--vdev=net_null0", "--", "--sink", "--ip", "10.78.9.1", "--duration", "0.5",
			"--queues", "1", NULL};
	struct run r;
	ST_CHECK_EQ(run_start(&r, args), 0);
	int st = run_wait(&r, 60);
	if (eal_unavailable(st, &r)) {
		run_cleanup(&r);
		ST_SKIP_IF(1, "EAL cannot start here");
	}
	const char *out = file_read(r.out);
	printf("exit %d\n%s", st, out ? out : "");
	printf("stderr: %s", file_text(r.err));
	if (st == 2 && strstr(file_text(r.err), "no worker lcore")) {
		run_cleanup(&r);
		ST_SKIP_IF(1, "this process may use only one CPU");
	}
	ST_CHECK_EQ(st, 0);
	out = file_read(r.out);
	ST_CHECK(strstr(out, " placement=hwloc") != NULL);
	ST_CHECK_EQ(stat_get(out, "final:", "queues"), 1);
	const char *q = strstr(out, "queue: id=0");
	ST_CHECK(q != NULL);
	ST_CHECK(stat_get(q, "queue:", "lcore") >= 1); /* lcore 0 is the main lcore */
	ST_CHECK(stat_get(out, "sink:", "rx_pkts") > 0);
	run_cleanup(&r);
	/* a port the EAL does not have: one line, exit 2 */
	args[17] = "3";
	args[16] = "--port";
	ST_CHECK_EQ(run_start(&r, args), 0);
	st = run_wait(&r, 60);
	const char *e = file_text(r.err);
	printf("--port 3: exit %d: %s", st, e);
	ST_CHECK_EQ(st, 2);
	ST_CHECK_EQ(count_lines(e), 1);
	ST_CHECK(strstr(e, "shoal-server: --port 3: no such DPDK port") != NULL);
	run_cleanup(&r);
	return ST_PASS;
}

/* ---- live: ffmpeg in a namespace ------------------------------------------------------------- */
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
	snprintf(ns, sizeof(ns), "shoalsv%d", pid);
	snprintf(if_srv, sizeof(if_srv), "svs%d", pid);
	snprintf(if_cli, sizeof(if_cli), "svc%d", pid);
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

/* RESULTs seen on the client's side by a packet socket in the namespace. */
struct capture {
	volatile int stop;
	int ready, rc;
	unsigned results, others, nonempty, raw_results;
	uint32_t ts[256];
	unsigned n_ts;
};

static void *capture_thread(void *p)
{
	struct capture *c = p;
	c->rc = -1;
	char path[64];
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	int nsfd = open(path, O_RDONLY);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
		c->ready = -1;
		return NULL;
	}
	close(nsfd);
	int s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				 .sll_ifindex = (int)if_nametoindex(if_cli)};
	if (s < 0 || ll.sll_ifindex == 0 || bind(s, (struct sockaddr *)&ll, sizeof(ll)) != 0) {
		c->ready = -1;
		return NULL;
	}
	struct timeval tv = {.tv_usec = 100000};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint32_t srv;
	inet_pton(AF_INET, SRV_IP, &srv);
	c->ready = 1;
	uint8_t buf[2048];
	while (!c->stop) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 28 || from.sll_pkttype == PACKET_OUTGOING)
			continue;
		size_t ihl = (size_t)(buf[0] & 15) * 4;
		uint32_t src;
		memcpy(&src, buf + 12, 4);
		if (buf[9] != 17 || src != srv || (size_t)n < ihl + 8)
			continue;
		uint16_t dport = (uint16_t)(buf[ihl + 2] << 8 | buf[ihl + 3]);
		if (dport != CLI_RTP_PORT + 1 && dport != GST_RTP_PORT + 1)
			continue;
		size_t off = 0;
		struct dp_rtcp_pkt pk;
		const uint8_t *pay = buf + ihl + 8;
		size_t plen = (size_t)n - ihl - 8;
		while (dp_rtcp_next(pay, plen, &off, &pk) == 1) {
			struct dp_app_msg m;
			if (dp_app_parse(&pk, &m) == 0 && m.kind == DP_APP_RESULT &&
			    dport == GST_RTP_PORT + 1) {
				c->raw_results++;
			} else if (dp_app_parse(&pk, &m) == 0 && m.kind == DP_APP_RESULT) {
				c->results++;
				if (m.u.result.n_det)
					c->nonempty++;
				if (c->n_ts < 256)
					c->ts[c->n_ts++] = m.u.result.rtp_ts;
			} else {
				c->others++;
			}
		}
	}
	close(s);
	c->rc = 0;
	return NULL;
}

static unsigned distinct(const uint32_t *v, unsigned n)
{
	unsigned d = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned j = 0;
		while (j < i && v[j] != v[i])
			j++;
		d += j == i;
	}
	return d;
}

static int test_server_sink_ffmpeg_every_frame_answered(void)
{
	ST_SKIP_IF(system("command -v ffmpeg >/dev/null 2>&1") != 0, "ffmpeg not installed");
	ST_SKIP_IF(net_up() != 0, "cannot create a network namespace and veth pair (need root)");
	char vdev[64];
	snprintf(vdev, sizeof(vdev), "--vdev=net_af_packet0,iface=%s", if_srv);
	char *args[40], bufs[256];
	int n = eal_args(args, 32, bufs, sizeof(bufs), vdev, 2);
	ST_CHECK(n > 0);
	/* two poll lcores, two queues asked: af_packet has no RSS, so one is used */
	char *app[] = {"--sink", "--ip", SRV_IP, "--queues", "2", "--duration", "60",
		       "--stats-interval", "1", "--raw-format", "rgb", "--raw-size", "64x16",
		       "--raw-pt", "97"};
	memcpy(args + n, app, sizeof(app));
	args[n + (int)(sizeof(app) / sizeof(app[0]))] = NULL;
	struct run r;
	if (run_start(&r, args) != 0) {
		net_down();
		ST_CHECK(0);
	}
	int ready = 0;
	double end = now_s() + 30;
	while (!ready && now_s() < end) {
		if (waitpid(r.pid, NULL, WNOHANG) == r.pid)
			break;
		const char *out = file_read(r.out);
		ready = out && strstr(out, "ready:") != NULL;
		if (!ready)
			sleep_ms(50);
	}
	if (!ready) {
		int st = run_wait(&r, 5);
		int skip = eal_unavailable(st, &r);
		printf("server not ready (exit %d): %s", st, file_text(r.err));
		run_cleanup(&r);
		net_down();
		ST_SKIP_IF(skip, "EAL with net_af_packet cannot start here");
		ST_CHECK(ready);
	}
	struct capture cap;
	memset(&cap, 0, sizeof(cap));
	pthread_t th;
	pthread_create(&th, NULL, capture_thread, &cap);
	while (!cap.ready)
		sleep_ms(10);
	int ping = sh("ip netns exec %s ping -c 2 -W 2 -q " SRV_IP " >/dev/null%s", ns, "");
	int ff = sh("ip netns exec %s ffmpeg -nostdin -loglevel error -re -f lavfi "
		    "-i testsrc=size=320x240:rate=20 -frames:v 20 -c:v mjpeg -huffman default "
		    "-pix_fmt yuvj420p -q:v 3 -f rtp "
		    "'rtp://" SRV_IP ":5004?localrtpport=40000&pkt_size=1400' >/dev/null%s", ns, "");
	int gst = -1;
	if (system("command -v gst-launch-1.0 >/dev/null 2>&1") == 0) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd),
			 "ip netns exec %s gst-launch-1.0 -q videotestsrc num-buffers=%d "
			 "pattern=smpte ! video/x-raw,format=RGB,width=64,height=16,framerate=20/1 ! "
			 "rtpvrawpay pt=97 mtu=1000 ! udpsink host=" SRV_IP " port=5004 bind-port=%d "
			 "sync=true >/dev/null 2>&1", ns, N_RAW_FRAMES, GST_RTP_PORT);
		gst = system(cmd);
	}
	end = now_s() + 5;
	while ((cap.results < N_FRAMES || (gst == 0 && cap.raw_results < N_RAW_FRAMES)) &&
	       now_s() < end)
		sleep_ms(20);
	sleep_ms(200); /* anything extra would show up now */
	cap.stop = 1;
	pthread_join(th, NULL);
	kill(r.pid, SIGINT);
	int st = run_wait(&r, 20);
	const char *out = file_read(r.out);
	printf("ping %d ffmpeg %d gst %d server exit %d; RESULTs seen %u (distinct ts %u, "
	       "non-empty %u, other APP %u), raw %u\n%s", ping, ff, gst, st, cap.results,
	       distinct(cap.ts, cap.n_ts), cap.nonempty, cap.others, cap.raw_results,
	       out ? out : "");
	printf("stderr: %s", file_text(r.err));
	net_down();
	ST_CHECK_EQ(ping, 0);
	ST_CHECK_EQ(ff, 0);
	ST_CHECK_EQ(st, 0);
	out = file_read(r.out);
	ST_CHECK_EQ(stat_get(out, "final:", "queues"), 1);
	ST_CHECK(strstr(out, " rss=off") != NULL);
	/* GStreamer (when installed) adds its raw frames, laid out by --raw-format/--raw-size */
	int total = N_FRAMES + (gst == 0 ? N_RAW_FRAMES : 0);
	ST_CHECK_EQ(stat_get(out, "frames:", "complete"), total);
	ST_CHECK_EQ(stat_get(out, "frames:", "incomplete"), 0);
	ST_CHECK_EQ(stat_get(out, "frames:", "dropped"), 0);
	ST_CHECK_EQ(stat_get(out, "frames:", "results_sent"), total);
	ST_CHECK_EQ(stat_get(out, "clients:", "total"), gst == 0 ? 2 : 1);
	ST_CHECK_EQ(stat_get(out, "sink:", "frames"), total);
	ST_CHECK_EQ(stat_get(out, "sink:", "results"), total);
	ST_CHECK_EQ(stat_get(out, "counters:", "drop_rtp_pt"), 0);
	ST_CHECK_EQ(stat_get(out, "counters:", "drop_payload"), 0);
	if (gst == 0)
		ST_CHECK_EQ(cap.raw_results, N_RAW_FRAMES);
	ST_CHECK(stat_get(out, "counters:", "rtcp_pkts") >= 1); /* ffmpeg's sender reports */
	ST_CHECK_EQ(stat_get(out, "staging:", "free"), stat_get(out, "staging:", "total"));
	ST_CHECK_EQ(cap.results, N_FRAMES);
	ST_CHECK_EQ(distinct(cap.ts, cap.n_ts), N_FRAMES);
	ST_CHECK_EQ(cap.nonempty, 0);
	run_cleanup(&r);
	return ST_PASS;
}

int main(int argc, char **argv)
{
	static const struct st_case cases[] = {
		ST_CASE(test_server_help_labels_sink_measurement_mode),
		ST_CASE(test_server_bad_options_one_line_exit_2),
		ST_CASE(test_server_sink_null_rss_queues_config_duration),
		ST_CASE(test_server_sink_hwloc_placement_without_lcores),
		ST_CASE(test_server_sink_ffmpeg_every_frame_answered),
	};
	if (argc < 3) {
		fprintf(stderr, "usage: test_server_sink CASE PATH-TO-shoal-server\n");
		return ST_FAIL;
	}
	server_path = argv[2];
	return st_main(2, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
