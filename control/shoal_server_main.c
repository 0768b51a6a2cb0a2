/* shoal-server: the edge server (DESIGN.md §1, §3, §8): options, config file, start-up and
 * shut-down. One poll lcore per port queue (dp_run on its own dp_ctx) reassembles frames into
 * staging slots; JPEG decode workers; then either the serving path (ctl_srv_serve.c:
 * dispatcher -> executor -> RESULT/DROP, the control thread with the scheduler and the
 * metrics endpoint on the main lcore) or the --sink measurement consumer. See
 * `shoal-server --help` and control/README.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "control/ctl_srv.h"

static volatile int srv_stop; /* the stop flag: the one allowed global */

static const char srv_usage[] =
	"usage: shoal-server [EAL args] -- [options]\n"
	"\n"
	"The shoal edge server: RTP video in over DPDK, frames reassembled into staging slots,\n"
	"detections back as RTCP RESULT messages (DESIGN.md, control/README.md).\n"
	"\n"
	"EAL args are DPDK's (`dpdk-testpmd --help` lists them), for example:\n"
	"  --vdev=net_af_packet0,iface=eth1   a kernel interface (also net_af_xdp, net_tap,\n"
	"                                     net_memif, net_null, net_ring); or a PCI NIC\n"
	"  -l 0-3 / --lcores 0@0,1@1          lcores: the first is the main lcore (control,\n"
	"                                     consumer, statistics), the others poll one queue\n"
	"                                     each; several roles may share a core (0@0,1@0).\n"
	"                                     Without -l/-c/--lcores every core is an lcore and\n"
	"                                     the poll lcores are placed with hwloc near the NIC\n"
	"  --file-prefix NAME                 needed when several DPDK processes run at once\n"
	"Without hugepages add: --no-huge -m 1024 --no-shconf --no-telemetry\n"
	"(with hugepages, e.g. echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages,\n"
	"use --in-memory instead: faster).\n"
	"\n"
	"options (each may also be given in the --config file as `name = value`):\n"
	"  --config FILE          read options from FILE: `name = value` lines, # comments;\n"
	"                         flags on the command line override the file\n"
	"  --ip A.B.C.D           the server's IPv4 address on the port (required; ARP and ICMP\n"
	"                         echo are answered for it)\n"
	"  --media-port N         UDP port of the RTP media (default 5004); RTCP on N+1\n"
	"  --port ID              DPDK port id (default 0)\n"
	"  --queues N             RX/TX queue pairs, one poll lcore each (default 0: one per\n"
	"                         worker lcore); more than one needs RSS on the device (clients\n"
	"                         are spread by IPv4 address), otherwise one is used\n"
	"  --rx-desc N            descriptors per queue (default 1024)\n"
	"  --mbufs N              RX mbufs (default 8191; raised to what the queues need)\n"
	"  --max-clients N        client table size per queue (default 1024)\n"
	"  --slots N              staging slots shared by the queues (default 128)\n"
	"  --slot-bytes N         bytes per staging slot, the largest frame (default 1048576)\n"
	"  --slo-ms N             SLO of streams that never send REGISTER (default 100)\n"
	"  --fps F                frame rate of such streams (default 30)\n"
	"  --raw-pt N             RTP payload type of RFC 4175 raw video (default 96)\n"
	"  --raw-size WxH         frame size of unregistered raw streams (default 640x480)\n"
	"  --raw-format F         i420, uyvy or rgb: their sampling (default i420)\n"
	"  --stats-interval S     print a one-line `stats:` summary every S seconds (default 0:\n"
	"                         off): Mpps, frames/s, drops by kind, clients, staging free\n"
	"  --duration S           stop after S seconds (default 0: until SIGINT/SIGTERM)\n"
	"  --decode-workers N     JPEG decode threads (default 1; 0 = JPEG frames are staged as\n"
	"                         reassembled JFIF, undecoded); pinned to the CPUs no poll\n"
	"                         lcore uses, unpinned when there are none; decoded frames are\n"
	"                         I420 in their own staging slot\n"
	"  --idle-timeout S       a client silent this long leaves the table (default 10)\n"
	"  --gpu-pci BUSID        PCI bus id of the GPU (0000:65:00.0): poll lcores near the NIC\n"
	"                         are preferred, then those near this GPU (default: none)\n"
	"  --sink                 MEASUREMENT MODE — data plane only: frames are released\n"
	"                         unprocessed and answered with empty RESULTs — for measuring\n"
	"                         ingest, not for serving (no inference runs)\n"
	"\n"
	"serving (without --sink):\n"
	"  --model F              model family: nanodet or centernet (default nanodet)\n"
	"  --model-file PATH      its ONNX file (default $SHOAL_MODEL_DIR/F.onnx, else the cache\n"
	"                         of scripts/fetch-models.sh: ~/.cache/shoal/models/onnx/F.onnx)\n"
	"  --profile DIR          latency.csv + accuracy.csv of the family on the backend\n"
	"                         (default models/profiles/F/<backend> of the source tree, else\n"
	"                         of $SHOAL_PROFILE_ROOT)\n"
	"  --backend B            auto, cpu or cuda (default auto: cuda when a device is usable)\n"
	"  --threads N            CPU backend threads (default 1)\n"
	"  --policy P             adaptive (default: the collective scheduler), or a static\n"
	"                         baseline: static-small, static-mid, static-large (every\n"
	"                         instance at the profile's smallest / middle / largest\n"
	"                         variant, every client served, no admission)\n"
	"  --instances N          model instances (the scheduler's execution slots) sharing the\n"
	"                         device, time-sliced earliest-deadline-first (default 2)\n"
	"  --max-batch N          largest batch an instance runs (default 8)\n"
	"  --max-variants N       prepared variants kept per device (default 4)\n"
	"  --overhead-ms X        per-frame server overhead the scheduler budgets (default 5)\n"
	"  --period-ms X          re-plan at least this often (default 500; also on join, leave\n"
	"                         and bandwidth change)\n"
	"  --headroom F           share of the measured capacity the adaptive plan keeps free\n"
	"                         for bursts (default 0.2: latencies planned at 1.25x the\n"
	"                         measured ones at least; never at the cost of a client that\n"
	"                         could be served without it)\n"
	"  --guard-ms X           slack the executor keeps before a deadline when it waits to\n"
	"                         fill a batch (default 10)\n"
	"  --score-min X          detection score threshold (default 0.3)\n"
	"  --exec-cpu N           pin the executor thread to CPU N (default -1: unpinned)\n"
	"  --poll-idle-us N       poll lcores sleep N us after 64 empty polls (default 0: pure\n"
	"                         polling; give e.g. 50 where they share cores with inference)\n"
	"  --metrics ADDR:PORT    Prometheus text metrics over HTTP at /metrics (default\n"
	"                         127.0.0.1:9100; `off` disables)\n"
	"  -h, --help             this text\n"
	"\n"
	"Serving: frames are routed by the scheduler's table to an instance, run in batches on\n"
	"the backend and answered with RESULT (detections) or DROP (late, not served, overload).\n"
	"The control thread re-plans on live statistics and sends ASSIGN to registered clients.\n"
	"SIGINT/SIGTERM drain and stop; the final statistics end with one line\n"
	"`serve: frames=N results=N drops=N late=N missed=N p50_ms=X p99_ms=X seconds=S rss_kb=N`\n"
	"(--sink: `sink: rx_pkts=N rtp_pkts=N frames=N results=N seconds=S mpps=X fps=X\n"
	"rss_kb=N hugetlb_kb=N`; resident memory: VmRSS, and hugepages, which VmRSS leaves out).\n"
	"Exit status: 0 after a clean stop, 1 when the EAL or the port cannot start, 2 on bad\n"
	"options, model or profile files.\n";


enum srv_opt_id {
	SRV_O_CONFIG, SRV_O_IP, SRV_O_MEDIA_PORT, SRV_O_PORT, SRV_O_QUEUES, SRV_O_RX_DESC,
	SRV_O_MBUFS, SRV_O_MAX_CLIENTS, SRV_O_SLOTS, SRV_O_SLOT_BYTES, SRV_O_SLO_MS, SRV_O_FPS,
	SRV_O_RAW_PT, SRV_O_RAW_SIZE, SRV_O_RAW_FORMAT, SRV_O_STATS_INTERVAL, SRV_O_DURATION,
	SRV_O_SINK, SRV_O_GPU_PCI, SRV_O_DECODE_WORKERS, SRV_O_MODEL, SRV_O_MODEL_FILE,
	SRV_O_PROFILE, SRV_O_BACKEND, SRV_O_THREADS, SRV_O_INSTANCES, SRV_O_MAX_BATCH,
	SRV_O_MAX_VARIANTS, SRV_O_OVERHEAD_MS, SRV_O_PERIOD_MS, SRV_O_SCORE_MIN, SRV_O_EXEC_CPU,
	SRV_O_POLL_IDLE_US, SRV_O_METRICS, SRV_O_IDLE_TIMEOUT, SRV_O_GUARD_MS, SRV_O_POLICY,
	SRV_O_HEADROOM,
};

struct srv_opt {
	const char *name;
	int id;
	int has_arg;
};

static const struct srv_opt srv_opt_table[] = {
	{"config", SRV_O_CONFIG, 1},         {"ip", SRV_O_IP, 1},
	{"media-port", SRV_O_MEDIA_PORT, 1}, {"port", SRV_O_PORT, 1},
	{"queues", SRV_O_QUEUES, 1},         {"rx-desc", SRV_O_RX_DESC, 1},
	{"mbufs", SRV_O_MBUFS, 1},           {"max-clients", SRV_O_MAX_CLIENTS, 1},
	{"slots", SRV_O_SLOTS, 1},           {"slot-bytes", SRV_O_SLOT_BYTES, 1},
	{"slo-ms", SRV_O_SLO_MS, 1},         {"fps", SRV_O_FPS, 1},
	{"raw-pt", SRV_O_RAW_PT, 1},         {"raw-size", SRV_O_RAW_SIZE, 1},
	{"raw-format", SRV_O_RAW_FORMAT, 1}, {"stats-interval", SRV_O_STATS_INTERVAL, 1},
	{"duration", SRV_O_DURATION, 1},     {"sink", SRV_O_SINK, 0},
	{"gpu-pci", SRV_O_GPU_PCI, 1},       {"decode-workers", SRV_O_DECODE_WORKERS, 1},
	{"model", SRV_O_MODEL, 1},           {"model-file", SRV_O_MODEL_FILE, 1},
	{"profile", SRV_O_PROFILE, 1},       {"backend", SRV_O_BACKEND, 1},
	{"threads", SRV_O_THREADS, 1},       {"instances", SRV_O_INSTANCES, 1},
	{"max-batch", SRV_O_MAX_BATCH, 1},   {"max-variants", SRV_O_MAX_VARIANTS, 1},
	{"overhead-ms", SRV_O_OVERHEAD_MS, 1}, {"period-ms", SRV_O_PERIOD_MS, 1},
	{"score-min", SRV_O_SCORE_MIN, 1},   {"exec-cpu", SRV_O_EXEC_CPU, 1},
	{"poll-idle-us", SRV_O_POLL_IDLE_US, 1}, {"metrics", SRV_O_METRICS, 1},
	{"idle-timeout", SRV_O_IDLE_TIMEOUT, 1}, {"guard-ms", SRV_O_GUARD_MS, 1},
	{"policy", SRV_O_POLICY, 1},           {"headroom", SRV_O_HEADROOM, 1},
};

static void srv_opts_defaults(struct srv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->media_port = 5004;
	o->rx_desc = 1024;
	o->mbufs = 8191;
	o->max_clients = 1024;
	o->slots = 128;
	o->slot_bytes = 1u << 20;
	o->slo_ms = 100;
	o->fps = 30;
	o->raw_pt = 96;
	o->raw_w = 640;
	o->raw_h = 480;
	o->raw_format = DP_FRAME_RAW420;
	o->decode_workers = 1;
	o->idle_timeout = 10;
	snprintf(o->model, sizeof(o->model), "nanodet");
	snprintf(o->backend, sizeof(o->backend), "auto");
	snprintf(o->metrics, sizeof(o->metrics), "127.0.0.1:9100");
	o->threads = 1;
	o->instances = 2;
	o->max_batch = 8;
	o->max_variants = 4;
	o->exec_cpu = -1;
	o->overhead_ms = 5;
	o->guard_ms = 10;
	o->period_ms = 500;
	o->score_min = 0.3;
	o->headroom = 0.2;
}

static const struct srv_opt *srv_opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(srv_opt_table) / sizeof(srv_opt_table[0]); i++)
		if (strlen(srv_opt_table[i].name) == len &&
		    strncmp(srv_opt_table[i].name, name, len) == 0)
			return &srv_opt_table[i];
	return NULL;
}

static int srv_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end;
	errno = 0;
	if (*s == '-' || *s == '+' || *s == ' ')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int srv_parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int srv_parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*out = 1;
	else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Applies one option; val is NULL for a flag given without a value. On error writes a
 * one-line reason to err and returns -1. */
static int srv_opt_apply(struct srv_opts *o, const struct srv_opt *opt, const char *val,
			 char *err, size_t len)
{
	const char *what = NULL;
	unsigned w, h;
	char tail;
	switch (opt->id) {
	case SRV_O_CONFIG:
		if (strlen(val) >= sizeof(o->config))
			what = "is too long a path";
		else
			snprintf(o->config, sizeof(o->config), "%s", val);
		break;
	case SRV_O_IP: {
		struct in_addr a;
		if (inet_pton(AF_INET, val, &a) != 1 || a.s_addr == 0 || a.s_addr == 0xffffffffu)
			what = "is not a unicast IPv4 address (A.B.C.D)";
		else {
			o->ip = a.s_addr;
			o->ip_set = 1;
		}
		break;
	}
	case SRV_O_MEDIA_PORT:
		if (srv_parse_uint(val, 1, 65534, &o->media_port))
			what = "is not a UDP port for RTP (1-65534; RTCP uses the next one)";
		break;
	case SRV_O_PORT:
		if (srv_parse_uint(val, 0, RTE_MAX_ETHPORTS - 1, &o->port_id))
			what = "is not a DPDK port id";
		break;
	case SRV_O_QUEUES:
		if (srv_parse_uint(val, 0, DP_LCORE_MAX, &o->queues))
			what = "is not a queue count (0-128; 0 = one per worker lcore)";
		break;
	case SRV_O_RX_DESC:
		if (srv_parse_uint(val, 64, 16384, &o->rx_desc))
			what = "is not a descriptor count (64-16384)";
		break;
	case SRV_O_MBUFS:
		if (srv_parse_uint(val, 1023, 1u << 24, &o->mbufs))
			what = "is not an mbuf count (1023-16777216)";
		break;
	case SRV_O_MAX_CLIENTS:
		if (srv_parse_uint(val, 1, 1u << 20, &o->max_clients))
			what = "is not a client count (1-1048576)";
		break;
	case SRV_O_SLOTS:
		if (srv_parse_uint(val, 2, 1u << 16, &o->slots))
			what = "is not a slot count (2-65536)";
		break;
	case SRV_O_SLOT_BYTES:
		if (srv_parse_uint(val, 4096, 1u << 28, &o->slot_bytes))
			what = "is not a slot size in bytes (4096-268435456)";
		break;
	case SRV_O_SLO_MS:
		if (srv_parse_uint(val, 1, 60000, &o->slo_ms))
			what = "is not an SLO in ms (1-60000)";
		break;
	case SRV_O_FPS:
		if (srv_parse_double(val, 0.01, 600, &o->fps))
			what = "is not a frame rate (0.01-600)";
		break;
	case SRV_O_RAW_PT:
		if (srv_parse_uint(val, 96, 127, &o->raw_pt))
			what = "is not a dynamic RTP payload type (96-127)";
		break;
	case SRV_O_RAW_SIZE:
		if (sscanf(val, "%ux%u%c", &w, &h, &tail) != 2 || w < 2 || h < 2 || w > 8192 ||
		    h > 8192 || w % 2 || h % 2)
			what = "is not a frame size WxH (even, 2-8192)";
		else {
			o->raw_w = w;
			o->raw_h = h;
		}
		break;
	case SRV_O_RAW_FORMAT:
		if (!strcmp(val, "i420"))
			o->raw_format = DP_FRAME_RAW420;
		else if (!strcmp(val, "uyvy"))
			o->raw_format = DP_FRAME_RAW422;
		else if (!strcmp(val, "rgb"))
			o->raw_format = DP_FRAME_RAWRGB;
		else
			what = "is not a raw format (i420, uyvy or rgb)";
		break;
	case SRV_O_STATS_INTERVAL:
		if (srv_parse_double(val, 0, 86400, &o->stats_interval) ||
		    (o->stats_interval > 0 && o->stats_interval < 0.01))
			what = "is not an interval in seconds (0 = off, or 0.01-86400)";
		break;
	case SRV_O_DURATION:
		if (srv_parse_double(val, 0, 1e7, &o->duration))
			what = "is not a duration in seconds (0 = until a signal)";
		break;
	case SRV_O_GPU_PCI: {
		unsigned dom, bus, dev, fn;
		char c;
		if (strlen(val) >= sizeof(o->gpu_pci) ||
		    (sscanf(val, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &c) != 4 &&
		     sscanf(val, "%x:%x.%x%c", &bus, &dev, &fn, &c) != 3))
			what = "is not a PCI bus id (0000:65:00.0 or 65:00.0)";
		else
			snprintf(o->gpu_pci, sizeof(o->gpu_pci), "%s", val);
		break;
	}
	case SRV_O_DECODE_WORKERS:
		if (srv_parse_uint(val, 0, 64, &o->decode_workers))
			what = "is not a worker count (0..64)";
		break;
	case SRV_O_MODEL:
		if (strcmp(val, "nanodet") && strcmp(val, "centernet"))
			what = "is not a model family (nanodet or centernet)";
		else
			snprintf(o->model, sizeof(o->model), "%s", val);
		break;
	case SRV_O_MODEL_FILE:
	case SRV_O_PROFILE: {
		char *dst = opt->id == SRV_O_MODEL_FILE ? o->model_file : o->profile_dir;
		if (!*val || strlen(val) >= sizeof(o->model_file))
			what = "is not a usable path (empty or too long)";
		else
			snprintf(dst, sizeof(o->model_file), "%s", val);
		break;
	}
	case SRV_O_BACKEND:
		if (strcmp(val, "auto") && strcmp(val, "cpu") && strcmp(val, "cuda"))
			what = "is not a backend (auto, cpu or cuda)";
		else
			snprintf(o->backend, sizeof(o->backend), "%s", val);
		break;
	case SRV_O_THREADS:
		if (srv_parse_uint(val, 1, 256, &o->threads))
			what = "is not a thread count (1-256)";
		break;
	case SRV_O_INSTANCES:
		if (srv_parse_uint(val, 1, GPU_EXEC_MAX_INSTANCES, &o->instances))
			what = "is not an instance count (1-64)";
		break;
	case SRV_O_MAX_BATCH:
		if (srv_parse_uint(val, 1, 16, &o->max_batch))
			what = "is not a batch size (1-16)";
		break;
	case SRV_O_MAX_VARIANTS:
		if (srv_parse_uint(val, 1, 64, &o->max_variants))
			what = "is not a variant count (1-64)";
		break;
	case SRV_O_OVERHEAD_MS:
		if (srv_parse_double(val, 0, 1000, &o->overhead_ms))
			what = "is not a time in ms (0-1000)";
		break;
	case SRV_O_PERIOD_MS:
		if (srv_parse_double(val, 10, 60000, &o->period_ms))
			what = "is not a period in ms (10-60000)";
		break;
	case SRV_O_HEADROOM:
		if (srv_parse_double(val, 0, 0.9, &o->headroom))
			what = "is not a capacity share (0-0.9)";
		break;
	case SRV_O_SCORE_MIN:
		if (srv_parse_double(val, 0.01, 1, &o->score_min))
			what = "is not a score threshold (0.01-1)";
		break;
	case SRV_O_EXEC_CPU: {
		unsigned c;
		if (!strcmp(val, "-1"))
			o->exec_cpu = -1;
		else if (srv_parse_uint(val, 0, CPU_SETSIZE - 1, &c))
			what = "is not a CPU number (-1 = unpinned)";
		else
			o->exec_cpu = (int)c;
		break;
	}
	case SRV_O_POLICY:
		if (!strcmp(val, "adaptive"))
			o->policy = SRV_POLICY_ADAPTIVE;
		else if (!strcmp(val, "static-small"))
			o->policy = SRV_POLICY_STATIC_SMALL;
		else if (!strcmp(val, "static-mid"))
			o->policy = SRV_POLICY_STATIC_MID;
		else if (!strcmp(val, "static-large"))
			o->policy = SRV_POLICY_STATIC_LARGE;
		else
			what = "is not a policy (adaptive, static-small, static-mid, static-large)";
		break;
	case SRV_O_GUARD_MS:
		if (srv_parse_double(val, 0, 1000, &o->guard_ms))
			what = "is not a time in ms (0-1000)";
		break;
	case SRV_O_IDLE_TIMEOUT:
		if (srv_parse_double(val, 0.1, 86400, &o->idle_timeout))
			what = "is not a time in seconds (0.1-86400)";
		break;
	case SRV_O_POLL_IDLE_US:
		if (srv_parse_uint(val, 0, 100000, &o->poll_idle_us))
			what = "is not a sleep in us (0-100000)";
		break;
	case SRV_O_METRICS: {
		unsigned port;
		const char *colon = strrchr(val, ':');
		struct in_addr a;
		char host[64];
		if (!strcmp(val, "off"))
			snprintf(o->metrics, sizeof(o->metrics), "off");
		else if (!colon || (size_t)(colon - val) >= sizeof(host) ||
			 srv_parse_uint(colon + 1, 0, 65535, &port) ||
			 (snprintf(host, sizeof(host), "%.*s", (int)(colon - val), val),
			  inet_pton(AF_INET, host, &a) != 1))
			what = "is not ADDR:PORT (IPv4 address and TCP port) or off";
		else
			snprintf(o->metrics, sizeof(o->metrics), "%s", val);
		break;
	}
	case SRV_O_SINK:
		if (!val)
			o->sink = 1;
		else if (srv_parse_bool(val, &o->sink))
			what = "is not a yes/no value (true, false, yes, no, 1, 0)";
		break;
	}
	if (what) {
		snprintf(err, len, "--%s: '%s' %s", opt->name, val ? val : "", what);
		return -1;
	}
	return 0;
}

static char *srv_trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* Reads `name = value` lines. Errors name the file and line. */
static int srv_config_load(struct srv_opts *o, const char *path, char *err, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, len, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024], why[300];
	int ln = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, len, "%s:%d: line too long", path, ln);
			rc = -1;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = srv_trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, len, "%s:%d: expected `name = value`", path, ln);
			rc = -1;
			break;
		}
		*eq = 0;
		char *key = srv_trim(s), *val = srv_trim(eq + 1);
		const struct srv_opt *opt = srv_opt_find(key, strlen(key));
		if (!opt || opt->id == SRV_O_CONFIG) {
			snprintf(err, len, "%s:%d: %s '%.64s'", path, ln,
				 opt ? "a config file cannot name another:" : "unknown option", key);
			rc = -1;
			break;
		}
		if (!*val) {
			snprintf(err, len, "%s:%d: '%s' has no value", path, ln, key);
			rc = -1;
			break;
		}
		if (srv_opt_apply(o, opt, val, why, sizeof(why)) != 0) {
			snprintf(err, len, "%s:%d: %s", path, ln, why);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* Parses the application arguments: the --config file first, then the flags (which override
 * it). 1 when --help was asked, 0, or -1 with err set. */
static int srv_args_parse(struct srv_opts *o, int argc, char **argv, char *err, size_t len)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < argc; i++) {
			const char *a = argv[i];
			if (!strcmp(a, "-h") || !strcmp(a, "--help"))
				return 1;
			if (strncmp(a, "--", 2) != 0 || !a[2]) {
				snprintf(err, len, "unexpected argument '%s' (see --help)", a);
				return -1;
			}
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
			const struct srv_opt *opt = srv_opt_find(name, nlen);
			if (!opt) {
				snprintf(err, len, "unknown option '%.*s' (see --help)", (int)(nlen + 2), a);
				return -1;
			}
			const char *val = eq ? eq + 1 : NULL;
			if (opt->has_arg && !val) {
				if (i + 1 >= argc) {
					snprintf(err, len, "--%s needs a value", opt->name);
					return -1;
				}
				val = argv[++i];
			}
			if (!opt->has_arg && val && pass == 1) {
				snprintf(err, len, "--%s takes no value", opt->name);
				return -1;
			}
			if ((opt->id == SRV_O_CONFIG) != (pass == 0))
				continue;
			if (srv_opt_apply(o, opt, val, err, len) != 0)
				return -1;
			if (opt->id == SRV_O_CONFIG && srv_config_load(o, o->config, err, len) != 0)
				return -1;
		}
	}
	if (!o->ip_set) {
		snprintf(err, len, "--ip A.B.C.D is required (the server's address on the port)");
		return -1;
	}
	return 0;
}

/* ---- running ---------------------------------------------------------------------------- */
static void srv_on_signal(int sig)
{
	(void)sig;
	srv_stop = 1;
}

static int srv_worker(void *arg)
{
	struct srv_queue *q = arg;
	return dp_run(q->ctx, q->stop);
}

/* Resident memory from /proc/self/status: VmRSS, and HugetlbPages (hugepage memory, which
 * VmRSS does not count). -1 when unknown. */
void srv_mem_kb(long *rss_kb, long *huge_kb)
{
	*rss_kb = *huge_kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return;
	char line[256];
	long kb;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			*rss_kb = kb;
		else if (sscanf(line, "HugetlbPages: %ld kB", &kb) == 1)
			*huge_kb = kb;
	}
	fclose(f);
}

void srv_counters_sum(const struct srv *s, uint64_t tot[DP_CNT__COUNT])
{
	memset(tot, 0, sizeof(uint64_t) * DP_CNT__COUNT);
	for (unsigned i = 0; i < s->nq; i++) {
		uint64_t v[DP_CNT__COUNT];
		dp_counters_get(s->q[i].ctx, v);
		for (unsigned c = 0; c < DP_CNT__COUNT; c++)
			tot[c] += v[c];
	}
}

void srv_rings_release(struct srv *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		struct dp_frame fr[SRV_BURST];
		unsigned n;
		while ((n = dp_frames_dequeue(s->q[i].ctx, fr, SRV_BURST)) > 0) {
			for (unsigned j = 0; j < n; j++)
				dp_frame_release(s->q[i].ctx, &fr[j]);
			s->sink_left_at_stop += n;
		}
	}
}

static int srv_is_pkt_drop(unsigned c) { return strncmp(dp_cnt_name(c), "drop_", 5) == 0; }

/* One periodic line: rates over the last interval, totals, drops by kind (non-zero ones). */
void srv_stats_line(const struct srv *s, uint64_t now, uint64_t *prev_t,
		    uint64_t prev[DP_CNT__COUNT])
{
	uint64_t v[DP_CNT__COUNT];
	srv_counters_sum(s, v);
	double dt = (double)(now - *prev_t) * 1e-9;
	if (dt <= 0)
		dt = 1e-9;
	uint64_t pkt_drops = 0;
	for (unsigned c = 0; c < DP_CNT__COUNT; c++)
		if (srv_is_pkt_drop(c))
			pkt_drops += v[c];
	uint64_t clients = v[DP_CNT_CLIENTS_NEW] - v[DP_CNT_CLIENTS_EVICTED] -
			   v[DP_CNT_CLIENTS_REMOVED];
	printf("stats: t=%.2f mpps=%.6f fps=%.1f rx_pkts=%llu frames=%llu clients=%llu "
	       "staging_free=%u/%u frames_incomplete=%llu frames_overload=%llu "
	       "frames_too_large=%llu frames_bad=%llu pkt_drops=%llu",
	       (double)(now - s->t_start) * 1e-9,
	       (double)(v[DP_CNT_RX_PKTS] - prev[DP_CNT_RX_PKTS]) / dt * 1e-6,
	       (double)(v[DP_CNT_FRAMES_COMPLETE] - prev[DP_CNT_FRAMES_COMPLETE]) / dt,
	       (unsigned long long)v[DP_CNT_RX_PKTS], (unsigned long long)v[DP_CNT_FRAMES_COMPLETE],
	       (unsigned long long)clients, gpu_staging_free_count(s->staging),
	       gpu_staging_slot_count(s->staging),
	       (unsigned long long)v[DP_CNT_FRAMES_INCOMPLETE],
	       (unsigned long long)v[DP_CNT_FRAMES_OVERLOAD],
	       (unsigned long long)v[DP_CNT_FRAMES_TOO_LARGE],
	       (unsigned long long)v[DP_CNT_FRAMES_BAD], (unsigned long long)pkt_drops);
	for (unsigned c = 0; c < DP_CNT__COUNT; c++)
		if (srv_is_pkt_drop(c) && v[c])
			printf(" %s=%llu", dp_cnt_name(c), (unsigned long long)v[c]);
	printf("\n");
	fflush(stdout);
	*prev_t = now;
	memcpy(prev, v, sizeof(uint64_t) * DP_CNT__COUNT);
}

/* The sink consumer on the main lcore: every frame is answered with an empty RESULT and its
 * slot released at once. Also prints the periodic statistics and ends the run. */
static void srv_sink_loop(struct srv *s)
{
	struct dp_app_result *r = &s->sink_result;
	struct dp_frame fr[SRV_BURST];
	uint64_t prev[DP_CNT__COUNT], prev_t = s->t_start;
	memset(prev, 0, sizeof(prev));
	uint64_t iv = (uint64_t)(s->o.stats_interval * 1e9);
	uint64_t next_stats = iv ? s->t_start + iv : UINT64_MAX;
	uint64_t t_end = s->o.duration > 0 ? s->t_start + (uint64_t)(s->o.duration * 1e9)
					   : UINT64_MAX;
	while (!srv_stop) {
		unsigned got = 0;
		uint64_t now = dp_now_ns(); /* one clock read per round: it is slow in some VMs */
		for (unsigned i = 0; i < s->nq; i++) {
			struct dp_ctx *ctx = s->q[i].ctx;
			unsigned n = dp_frames_dequeue(ctx, fr, SRV_BURST);
			for (unsigned j = 0; j < n; j++) {
				r->rtp_ts = fr[j].rtp_ts;
				r->variant = 0;
				r->n_det = 0;
				r->server_us = (uint32_t)((now - fr[j].arrival_ns) / 1000);
				if (dp_result_post(ctx, &fr[j], r) != 0)
					s->sink_post_full++;
				dp_frame_release(ctx, &fr[j]);
			}
			s->sink_frames += n;
			got += n;
		}
		if (now >= t_end)
			srv_stop = 1;
		if (now >= next_stats) {
			srv_stats_line(s, now, &prev_t, prev);
			next_stats += iv;
			if (next_stats <= now)
				next_stats = now + iv;
		}
		if (!got) { /* idle: leave the core to a poll lcore (or sender) that may share it;
			     * 100 us is ~1/10 of what the consumer ring holds at 100k frames/s */
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
	}
}

static void srv_final_stats(struct srv *s)
{
	uint64_t v[DP_CNT__COUNT];
	srv_counters_sum(s, v);
	double secs = (double)(s->t_stop - s->t_start) * 1e-9;
	if (secs <= 0)
		secs = 1e-9;
	printf("final: seconds=%.3f port=%u driver=%s device=%s queues=%u rss=%s socket=%d "
	       "lcores=", secs, s->port.port_id, s->port.driver, s->port.device, s->nq,
	       s->port.rss ? "on" : "off", s->port.socket);
	for (unsigned i = 0; i < s->nq; i++)
		printf("%s%u", i ? "," : "", s->q[i].lcore);
	printf(" placement=%s\n", s->plan.user ? "user" : "hwloc");
	unsigned clients_total = 0;
	for (unsigned i = 0; i < s->nq; i++) {
		uint64_t q[DP_CNT__COUNT];
		dp_counters_get(s->q[i].ctx, q);
		unsigned nc = dp_client_count(s->q[i].ctx);
		clients_total += nc;
		printf("queue: id=%u lcore=%u clients=%u rx_pkts=%llu rtp_pkts=%llu "
		       "frames_complete=%llu results_sent=%llu\n", i, s->q[i].lcore, nc,
		       (unsigned long long)q[DP_CNT_RX_PKTS], (unsigned long long)q[DP_CNT_RTP_PKTS],
		       (unsigned long long)q[DP_CNT_FRAMES_COMPLETE],
		       (unsigned long long)q[DP_CNT_RESULTS_SENT]);
	}
	printf("counters:");
	for (unsigned c = 0; c < DP_CNT__COUNT; c++)
		printf(" %s=%llu", dp_cnt_name(c), (unsigned long long)v[c]);
	printf("\n");
	printf("clients: total=%u per_queue=", clients_total);
	for (unsigned i = 0; i < s->nq; i++)
		printf("%s%u", i ? "," : "", dp_client_count(s->q[i].ctx));
	printf("\n");
	printf("frames: complete=%llu incomplete=%llu dropped=%llu too_large=%llu overload=%llu "
	       "bad=%llu results_sent=%llu result_queue_full=%llu left_at_stop=%llu\n",
	       (unsigned long long)v[DP_CNT_FRAMES_COMPLETE],
	       (unsigned long long)v[DP_CNT_FRAMES_INCOMPLETE],
	       (unsigned long long)(v[DP_CNT_FRAMES_TOO_LARGE] + v[DP_CNT_FRAMES_OVERLOAD] +
				    v[DP_CNT_FRAMES_BAD]),
	       (unsigned long long)v[DP_CNT_FRAMES_TOO_LARGE],
	       (unsigned long long)v[DP_CNT_FRAMES_OVERLOAD],
	       (unsigned long long)v[DP_CNT_FRAMES_BAD],
	       (unsigned long long)v[DP_CNT_RESULTS_SENT], (unsigned long long)s->sink_post_full,
	       (unsigned long long)s->sink_left_at_stop);
}

static void srv_print_sink_line(const struct srv *s, const uint64_t v[DP_CNT__COUNT],
				long rss_kb, long huge_kb)
{
	double secs = (double)(s->t_stop - s->t_start) * 1e-9;
	if (secs <= 0)
		secs = 1e-9;
	printf("sink: rx_pkts=%llu rtp_pkts=%llu frames=%llu results=%llu seconds=%.3f "
	       "mpps=%.6f fps=%.1f rss_kb=%ld hugetlb_kb=%ld\n",
	       (unsigned long long)v[DP_CNT_RX_PKTS], (unsigned long long)v[DP_CNT_RTP_PKTS],
	       (unsigned long long)s->sink_frames, (unsigned long long)v[DP_CNT_RESULTS_SENT], secs,
	       (double)v[DP_CNT_RX_PKTS] / secs * 1e-6, (double)s->sink_frames / secs, rss_kb,
	       huge_kb);
}

/* Decode workers go on the CPUs that no poll lcore uses (the main lcore's included: it mostly
 * waits), unpinned when the poll lcores take every CPU. */
static int srv_decoder_create(struct srv *s)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	static int cpus[64];
	unsigned n = 0;
	for (long c = 0; c < ncpu && c < CPU_SETSIZE && n < s->o.decode_workers; c++) {
		int used = 0;
		for (unsigned i = 0; i < s->nq; i++) {
			rte_cpuset_t set = rte_lcore_cpuset(s->plan.lcore[i]);
			if (CPU_ISSET((int)c, &set))
				used = 1;
		}
		if (!used)
			cpus[n++] = (int)c;
	}
	for (unsigned i = n; n > 0 && i < s->o.decode_workers; i++)
		cpus[i] = cpus[i % n]; /* more workers than free CPUs: share them */
	struct dp_decoder_config dc;
	dp_decoder_config_defaults(&dc);
	dc.name = "srv";
	dc.n_workers = s->o.decode_workers;
	dc.cpus = n ? cpus : NULL;
	s->decoder = dp_decoder_create(&dc);
	if (!s->decoder) {
		fprintf(stderr, SRV_NAME ": cannot start %u JPEG decode workers\n",
			s->o.decode_workers);
		return -1;
	}
	return 0;
}

static int srv_contexts_create(struct srv *s)
{
	for (unsigned i = 0; i < s->nq; i++) {
		char name[16];
		snprintf(name, sizeof(name), "q%u", i);
		struct dp_config cfg;
		dp_config_defaults(&cfg);
		cfg.name = name; /* copied into the rings' names by dp_create */
		cfg.port_id = s->port.port_id;
		cfg.rx_queue = cfg.tx_queue = (uint16_t)i;
		cfg.ip = s->o.ip;
		cfg.media_port = (uint16_t)s->o.media_port;
		cfg.max_clients = s->o.max_clients;
		cfg.default_slo_ms = (uint16_t)s->o.slo_ms;
		cfg.default_fps_x100 = (uint16_t)(s->o.fps * 100 + 0.5);
		cfg.raw_pt = (uint8_t)s->o.raw_pt;
		cfg.default_raw_format = s->o.raw_format;
		cfg.default_raw_width = (uint16_t)s->o.raw_w;
		cfg.default_raw_height = (uint16_t)s->o.raw_h;
		cfg.staging = s->staging;
		cfg.decoder = s->decoder;
		cfg.idle_sleep_us = s->o.poll_idle_us;
		cfg.idle_timeout_ns = (uint64_t)(s->o.idle_timeout * 1e9);
		s->q[i].lcore = s->plan.lcore[i];
		s->q[i].stop = &s->poll_stop;
		s->q[i].ctx = dp_create(&cfg);
		if (!s->q[i].ctx) {
			fprintf(stderr, SRV_NAME ": cannot create the data-plane context of queue %u\n",
				i);
			return -1;
		}
	}
	return 0;
}

/* Index of "--" in argv, or 0 when absent. */
static int srv_split(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--"))
			return i;
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	static struct srv s;
	srv_opts_defaults(&s.o);
	int dd = srv_split(argc, argv);
	char err[512];
	if (!dd) {
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
				fputs(srv_usage, stdout);
				return 0;
			}
			const char *eq = strchr(argv[i], '=');
			if (!strncmp(argv[i], "--", 2) &&
			    srv_opt_find(argv[i] + 2, eq ? (size_t)(eq - argv[i] - 2)
							  : strlen(argv[i] + 2))) {
				fprintf(stderr, SRV_NAME ": %s is an application option: put it after "
						"'--' (shoal-server [EAL args] -- [options])\n", argv[i]);
				return 2;
			}
		}
		fprintf(stderr, SRV_NAME ": no options: shoal-server [EAL args] -- --sink --ip "
				"A.B.C.D ... (see --help)\n");
		return 2;
	}
	int rc = srv_args_parse(&s.o, argc - dd - 1, argv + dd + 1, err, sizeof(err));
	if (rc == 1) {
		fputs(srv_usage, stdout);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, SRV_NAME ": %s\n", err);
		return 2;
	}
	s.stop = &srv_stop;
	if (!s.o.sink) {
		if (s.o.decode_workers == 0) {
			fprintf(stderr, SRV_NAME ": --decode-workers 0 leaves JPEG frames undecoded: "
					"serving needs at least 1 (0 is for --sink)\n");
			return 2;
		}
		if (srv_serve_open(&s, err, sizeof(err)) != 0) {
			fprintf(stderr, SRV_NAME ": %s\n", err);
			srv_serve_close(&s);
			return 2;
		}
	}

	int user_lcores = dp_lcore_user_given(dd, argv);
	if (rte_eal_init(dd, argv) < 0) {
		fprintf(stderr, SRV_NAME ": EAL cannot start: %s (without hugepages add --no-huge "
				"-m 1024 --no-shconf)\n", rte_strerror(rte_errno));
		return 1;
	}
	int status = 1;
	uint16_t port_id = (uint16_t)s.o.port_id;
	if (!rte_eth_dev_is_valid_port(port_id)) {
		fprintf(stderr, SRV_NAME ": --port %u: no such DPDK port (%u available)\n",
			s.o.port_id, rte_eth_dev_count_avail());
		status = 2;
		goto out_eal;
	}
	rc = dp_lcore_plan_make(port_id, s.o.gpu_pci[0] ? s.o.gpu_pci : NULL, s.o.queues,
				user_lcores, &s.plan);
	if (rc < 0) {
		fprintf(stderr, SRV_NAME ": no worker lcore for the poll loop: give at least two "
				"lcores (e.g. -l 0,1 or --lcores 0@0,1@0)\n");
		status = 2;
		goto out_eal;
	}
	s.staging = gpu_staging_create(s.o.slots, s.o.slot_bytes, err, sizeof(err));
	if (!s.staging) {
		fprintf(stderr, SRV_NAME ": staging (%u slots of %u bytes): %s\n", s.o.slots,
			s.o.slot_bytes, err);
		goto out_eal;
	}
	rc = dp_port_setup(port_id, s.plan.n, (uint16_t)s.o.rx_desc, s.o.mbufs, &s.port);
	if (rc < 0) {
		fprintf(stderr, SRV_NAME ": port %u cannot start: %s\n", port_id, strerror(-rc));
		goto out_staging;
	}
	s.nq = (unsigned)rc; /* <= s.plan.n: a queue per poll lcore */
	if (s.o.decode_workers && srv_decoder_create(&s) != 0)
		goto out_port;
	if (srv_contexts_create(&s) != 0)
		goto out_port;
	if (!s.o.sink && srv_serve_start(&s, err, sizeof(err)) != 0) {
		fprintf(stderr, SRV_NAME ": %s\n", err);
		goto out_port;
	}

	signal(SIGINT, srv_on_signal);
	signal(SIGTERM, srv_on_signal);
	s.t_start = dp_now_ns();
	for (unsigned i = 0; i < s.nq; i++) {
		if (rte_eal_remote_launch(srv_worker, &s.q[i], s.q[i].lcore) != 0) {
			fprintf(stderr, SRV_NAME ": cannot launch the poll loop on lcore %u\n",
				s.q[i].lcore);
			srv_stop = 1;
			break;
		}
	}
	if (s.o.sink)
		printf("ready: mode=sink (measurement: frames released unprocessed, empty RESULTs) ");
	else
		printf("ready: mode=serve policy=%s model=%s backend=%s instances=%u max_batch=%u "
		       "metrics=%.*s:%u ",
		       (const char *[]){"adaptive", "static-small", "static-mid",
					"static-large"}[s.o.policy],
		       s.o.model, srv_serve_backend(&s), s.o.instances,
		       s.o.max_batch, (int)(strrchr(s.o.metrics, ':') ? strrchr(s.o.metrics, ':') -
					     s.o.metrics : (long)strlen(s.o.metrics)),
		       s.o.metrics, srv_serve_metrics_port(&s));
	printf("ip=%s media_port=%u port=%u driver=%s device=%s queues=%u/%u rss=%s socket=%d "
	       "port_node=%d gpu_node=%d link=%s poll_lcores=",
	       inet_ntop(AF_INET, &s.o.ip, err, 64), s.o.media_port, port_id, s.port.driver,
	       s.port.device, s.nq, s.port.max_queues, s.port.rss ? "on" : "off", s.port.socket,
	       s.plan.port_node, s.plan.gpu_node, s.port.link_up ? "up" : "down");
	for (unsigned i = 0; i < s.nq; i++)
		printf("%s%u", i ? "," : "", s.q[i].lcore);
	unsigned near = 0;
	for (unsigned i = 0; i < s.nq; i++)
		near += s.plan.near[i];
	printf(" placement=%s near_port=%u queues_asked=%u\n", s.plan.user ? "user" : "hwloc",
	       near, s.o.queues);
	fflush(stdout);

	if (s.o.sink) {
		srv_sink_loop(&s);
	} else {
		srv_serve_loop(&s);
		srv_serve_drain(&s); /* answers out while the poll lcores still send them */
	}
	srv_stop = 1;
	s.poll_stop = 1;
	rte_eal_mp_wait_lcore();
	s.t_stop = dp_now_ns();
	if (!s.o.sink)
		srv_serve_finish(&s);
	srv_rings_release(&s); /* frames completed after the consumer stopped */
	srv_final_stats(&s);
	uint64_t v[DP_CNT__COUNT];
	srv_counters_sum(&s, v);
	long rss_kb, huge_kb;
	srv_mem_kb(&rss_kb, &huge_kb);
	for (unsigned i = 0; i < s.nq; i++) { /* gives back the slots of frames in reassembly */
		dp_destroy(s.q[i].ctx);
		s.q[i].ctx = NULL;
	}
	if (s.decoder) {
		struct dp_decoder_stats ds;
		dp_decoder_stats_get(s.decoder, &ds);
		printf("decode: workers=%u decoded=%llu corrupt=%llu too_large=%llu no_slot=%llu "
		       "ring_full=%llu mean_ms=%.3f max_ms=%.3f\n", s.o.decode_workers,
		       (unsigned long long)ds.decoded, (unsigned long long)ds.corrupt,
		       (unsigned long long)ds.too_large, (unsigned long long)ds.no_slot,
		       (unsigned long long)ds.ring_full,
		       ds.decoded ? (double)ds.decode_ns / (double)ds.decoded * 1e-6 : 0.0,
		       (double)ds.decode_ns_max * 1e-6);
		dp_decoder_destroy(s.decoder);
		s.decoder = NULL;
	}
	printf("staging: free=%u total=%u\n", gpu_staging_free_count(s.staging),
	       gpu_staging_slot_count(s.staging));
	if (s.o.sink)
		srv_print_sink_line(&s, v, rss_kb, huge_kb);
	else
		srv_serve_summary(&s);
	status = 0;
out_port:
	for (unsigned i = 0; i < s.nq; i++)
		dp_destroy(s.q[i].ctx);
	dp_decoder_destroy(s.decoder);
	dp_port_teardown(port_id);
out_staging:
	srv_serve_close(&s); /* before the staging pool: the executor may still hold slots */
	gpu_staging_destroy(s.staging);
out_eal:
	rte_eal_cleanup();
	return status;
}
