/* shoal-gen — load generator: many emulated clients streaming RTP/JPEG (RFC 2435) frames.
 *
 * DPDK mode (`shoal-gen [EAL args] -- [options]`): sends from a DPDK port (memif, af_xdp,
 * af_packet, a NIC ...) at line rate or at a given packet rate, resolving the server's MAC by
 * ARP, and drains what comes back (RESULT/DROP/ASSIGN, counted). Kernel mode (`shoal-gen
 * --udp HOST:PORT [options]`, perf_gen_udp.c): the same packets through ordinary UDP sockets
 * with sendmmsg, the baseline sender for kernel-socket receivers.
 *
 * Every client sends a real JPEG frame (a synthetic test picture encoded once per distinct
 * size by libjpeg-turbo at its --size and --quality), split into packets of --payload bytes
 * of UDP payload; clients differ by source address (DPDK mode) or source port (kernel mode)
 * and SSRC. --fps, --register, --slo-ms and --size take comma-separated lists: client i has
 * element i mod n of each list (each list cycles on its own), its own pacing, REGISTER, SLO
 * and frame size; clients alike form a group, reported on its own line when there are several.
 * Each client's RTCP port is its media source port + 1: REGISTERs go from there (--register)
 * and RESULT/DROP/ASSIGN come back there, matched to frames by perf_gen_lat.c.
 * --trace shapes each client's uplink with a token bucket following a bandwidth trace
 * (perf_gen_shape.c); --stress mixes robustness traffic into the streams (perf_gen_stress.c).
 * Last line: `gen: clients=… pkts=… frames=… seconds=… mpps=… fps=… gbps=… rx_rtcp=…
 * results=… drops=… lost=… miss=… p50_ms=… p99_ms=…`.
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
#include "perf/perf_gen.h"

#define GEN_MAX_CLIENTS 65536
#define GEN_HOUSE_NS 50000000ull      /* loss sweep and REGISTER timers, every 50 ms */
#define GEN_DPDK_SPORT(i) ((uint16_t)(40000 + ((i) & 1023) * 2)) /* media source port */
#define GEN_HDRS (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		  sizeof(struct rte_udp_hdr))

volatile sig_atomic_t perf_gen_stop; /* the stop flag: the one allowed global */

static void perf_gen_on_signal(int sig)
{
	(void)sig;
	perf_gen_stop = 1;
}

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
		"  --size WxH[,WxH...]  frame size, 16..2040 multiples of 16 (default 640x480)\n"
		"  --quality Q        JPEG quality 1..99 (default 75; sent as RFC 2435 Q, no in-band tables)\n"
		"  --payload N        UDP payload bytes per packet, 200..1472 (default 1400)\n"
		"  --fps F[,F...]     frames per second per client, 0..1000 (default 0: no frame pacing;\n"
		"                     0 only as a single value)\n"
		"  --pps N            total packets per second (default 0: as fast as possible)\n"
		"  --seconds S        run time (default 5)\n"
		"  --register SLO_MS[,SLO_MS...]  each client sends a REGISTER (its SLO_MS 1..65535, its\n"
		"                     fps, JPEG, its frame size) from its RTCP port (media source port + 1)\n"
		"                     to the server's (media port + 1) before its first frame, again\n"
		"                     every 2 s until an ASSIGN comes, then every 10 s (default:\n"
		"                     unmanaged clients)\n"
		"  --slo-ms MS[,MS...]  SLO for miss accounting, 1..65535 (default: the client's\n"
		"                     --register value, else 100)\n"
		"  --drain-ms MS      keep receiving answers after sending ends, 0..600000 (default 500)\n"
		"  --mix FILE         client classes instead of --fps/--register/--slo-ms/--size: a CSV\n"
		"                     fps,slo_ms,width,height[,weight] per line (at most 32; '#' comments,\n"
		"                     an optional header); each client has one class's fps, SLO and size\n"
		"                     and REGISTERs with them; clients are dealt out interleaved by\n"
		"                     weight (default 1): of every sum-of-weights consecutive clients,\n"
		"                     each class has its weight\n"
		"  --follow-assign    switch to the resolution an ASSIGN asks for (17 frames of widths\n"
		"                     128..640 step 32 in the aspect of the client's --size, encoded at\n"
		"                     start)\n"
		"  --per-client FILE  write client,ssrc,sent,results,drops,lost,missed,p50_ms,p99_ms CSV\n"
		"                     (with --trace one more column: bw_mbps, the mean rate of its link),\n"
		"                     then the client's fps,slo_ms,width,height\n"
		"  --trace FILE       shape each client's uplink: FILE holds one rate in Mbit/s per line\n"
		"                     ('#' comments); each client starts at a random offset and loops it;\n"
		"                     a token bucket (10 ms of the rate, at least 2 packets) paces its\n"
		"                     packets (IP + UDP + payload bytes), so a frame above the link's\n"
		"                     share leaves, and arrives, late. With --register each client sends\n"
		"                     a REPORT every second: bw_kbps = the shaped link's rate (the trace's\n"
		"                     current value, not a measurement), rtt_us = RESULT arrival - last\n"
		"                     packet sent - the server's time (smoothed; 0 before a RESULT)\n"
		"  --trace-step S     seconds each trace value holds, 0.001..86400 (default 1)\n"
		"  --seed N           trace offsets and --stress choices, 0..2^32-1 (default 1)\n"
		"  --stress M[,M...]  mix robustness traffic into the run: garbage (random payloads to the\n"
		"                     media and RTCP ports, ~10%% of packets), malformed (RTP/RTCP with bad\n"
		"                     versions, lengths, truncated headers, ~10%%), ssrc-flood (packets\n"
		"                     from ever-new SSRCs, ~10%%), dup (every 10th packet twice), reorder\n"
		"                     (adjacent packets of a frame swapped, 1 in 16). Counted on a\n"
		"                     `gen: stress …` line; pkts/gbps count the real packets only\n"
		"  --help             this text\n"
		"Lists (at most 32 values, no empty ones): client i takes value i mod n of each list, the\n"
		"lists cycling independently (--fps 15,25 --size 320x240,640x480,320x256 over 6 clients\n"
		"gives all 6 pairs); one value: every client the same. Each client paces at its fps,\n"
		"REGISTERs its SLO, fps and size, sends frames of its size, counts misses against its\n"
		"SLO; --pps stays the total. Clients with the same fps, SLO and size form a group; with\n"
		"several groups, one line each before the last: gen: group fps=… slo_ms=… size=WxH\n"
		"clients=… sent=… results=… drops=… lost=… miss=… p50_ms=… p99_ms=…\n"
		"Every frame's send time is kept by RTP timestamp; a RESULT gives its end-to-end latency,\n"
		"a DROP is counted by reason, no answer within 1 s (or its SLO when longer) or by the end\n"
		"of the drain is lost. miss = frames without a RESULT within the SLO / frames sent;\n"
		"p50/p99 over RESULTs (0 when none). A `gen: rtcp …` line gives the details.\n"
		"Last line: gen: clients=… pkts=… frames=… seconds=… mpps=… fps=… gbps=… rx_rtcp=…\n"
		"           results=… drops=… lost=… miss=… p50_ms=… p99_ms=…\n");
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

/* Splits a comma-separated list into el (n elements); -1 on an empty or over-long element or
 * more than GEN_LIST_MAX of them. */
static int parse_list(const char *s, char (*el)[32], unsigned *n)
{
	unsigned k = 0;
	for (const char *p = s;;) {
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof(el[0]) || k == GEN_LIST_MAX)
			return -1;
		memcpy(el[k], p, len);
		el[k++][len] = '\0';
		if (!p[len])
			break;
		p += len + 1;
	}
	*n = k;
	return 0;
}

/* WxH, each 16..2040 and a multiple of 16 (the RFC 2435 header holds size / 8). */
static int parse_size(const char *s, uint16_t *w, uint16_t *h)
{
	int a, b, end = 0;
	if (sscanf(s, "%dx%d%n", &a, &b, &end) != 2 || s[end] || a < 16 || b < 16 || a > 2040 ||
	    b > 2040 || a % 16 || b % 16)
		return -1;
	*w = (uint16_t)a;
	*h = (uint16_t)b;
	return 0;
}

/* One of the per-client lists (--fps, --register, --slo-ms, --size: the option's code) into
 * o; 0 or -1. */
static int parse_client_list(int opt, const char *arg, struct perf_gen_opts *o)
{
	char el[GEN_LIST_MAX][32];
	unsigned n;
	double v;
	if (parse_list(arg, el, &n))
		return -1;
	for (unsigned k = 0; k < n; k++) {
		switch (opt) {
		case 'f': /* 0 (unpaced) only as the one value */
			if (parse_num(el[k], 0, 1000, &o->fps[k]) || (n > 1 && !(o->fps[k] > 0)))
				return -1;
			break;
		case 'R':
			if (parse_num(el[k], 1, 65535, &v) || v != (unsigned)v)
				return -1;
			o->register_slo[k] = (uint16_t)v;
			break;
		case 'S':
			if (parse_num(el[k], 1, 65535, &o->slo_ms[k]))
				return -1;
			break;
		default:
			if (parse_size(el[k], &o->width[k], &o->height[k]))
				return -1;
		}
	}
	*(opt == 'f' ? &o->n_fps : opt == 'R' ? &o->n_register : opt == 'S' ? &o->n_slo
									  : &o->n_size) = n;
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
		{"register", required_argument, 0, 'R'}, {"slo-ms", required_argument, 0, 'S'},
		{"drain-ms", required_argument, 0, 'D'}, {"follow-assign", no_argument, 0, 'F'},
		{"per-client", required_argument, 0, 'P'}, {"trace", required_argument, 0, 'T'},
		{"trace-step", required_argument, 0, 'E'}, {"seed", required_argument, 0, 'N'},
		{"stress", required_argument, 0, 'X'}, {"mix", required_argument, 0, 'x'},
		{0, 0, 0, 0}};
	*o = (struct perf_gen_opts){.media_port = 5004, .clients = 1, .width = {640},
				    .height = {480}, .n_size = 1, .n_fps = 1, .quality = 75,
				    .payload = 1400, .seconds = 5, .drain_ms = 500, .trace_step = 1,
				    .seed = 1};
	parse_ip("10.99.0.2", &o->src_ip);
	optind = 1;
	opterr = 0; /* one line of our own instead */
	int c, li = 0, lists = 0;
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
		case 'f':
		case 'R':
		case 'S':
			if (parse_client_list(c, optarg, o))
				goto bad;
			lists = 1;
			break;
		case 'x':
			if (!*optarg)
				goto bad;
			o->mix = optarg;
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
		case 'r':
			if (parse_num(optarg, 0, 1e9, &o->pps))
				goto bad;
			break;
		case 't':
			if (parse_num(optarg, 0.1, 86400, &o->seconds))
				goto bad;
			break;
		case 'D':
			if (parse_num(optarg, 0, 600000, &o->drain_ms))
				goto bad;
			break;
		case 'F': o->follow_assign = 1; break;
		case 'P':
			if (!*optarg)
				goto bad;
			o->per_client = optarg;
			break;
		case 'T':
			if (!*optarg)
				goto bad;
			o->trace = optarg;
			break;
		case 'E':
			if (parse_num(optarg, 0.001, 86400, &o->trace_step))
				goto bad;
			break;
		case 'N':
			if (parse_num(optarg, 0, 4294967295.0, &v) || v != (double)(uint64_t)v)
				goto bad;
			o->seed = (uint64_t)v;
			break;
		case 'X':
			if (perf_gen_stress_parse(optarg, &o->stress))
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
	if (o->mix && lists) {
		fprintf(stderr, "shoal-gen: --mix gives each client its fps, SLO and size: no --fps, "
				"--register, --slo-ms or --size with it\n");
		return -1;
	}
	if (o->mix && perf_gen_mix_load(o, o->mix))
		return -1;
	if (!o->n_slo) { /* each client's --register value, else 100 */
		o->n_slo = o->n_register ? o->n_register : 1;
		for (unsigned k = 0; k < o->n_slo; k++)
			o->slo_ms[k] = o->n_register ? o->register_slo[k] : 100;
	}
	if (o->trace && perf_gen_trace_load(o, o->trace))
		return -1;
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

static int perf_gen_frame_build(const struct perf_gen_opts *o, int width, int height,
				struct perf_gen_frame *fr)
{
	unsigned long jlen = 0;
	unsigned char *jpg = perf_gen_jpeg(width, height, o->quality, &jlen);
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

/* The frame of resolution w x h: encoded already, or now. Its index, or -1 (message printed). */
static int perf_gen_frame_get(struct perf_gen_run *r, int w, int h)
{
	for (unsigned k = 0; k < r->n_fr; k++)
		if (r->fr_res[k].width == w && r->fr_res[k].height == h)
			return (int)k;
	if (perf_gen_frame_build(r->o, w, h, &r->fr[r->n_fr]))
		return -1;
	r->fr_res[r->n_fr] = (struct dp_app_res){(uint16_t)w, (uint16_t)h};
	return (int)r->n_fr++;
}

/* For each k, the index of v[k] among the distinct values of v[0..n) (in order of first
 * appearance) into d[k]; returns how many distinct values there are. */
static unsigned perf_gen_distinct(const double *v, unsigned n, uint16_t *d)
{
	unsigned nd = 0;
	for (unsigned k = 0; k < n; k++) {
		unsigned j;
		for (j = 0; j < k && v[j] != v[k]; j++)
			;
		d[k] = j < k ? d[j] : (uint16_t)nd++;
	}
	return nd;
}

/* Each distinct --size with its resolution list (the size, then with --follow-assign widths
 * 128..640 step 32 in its aspect, heights multiples of 16) and their frames, each distinct
 * resolution encoded once; of_pos: the distinct size of each --size list position. 0 or -1. */
static int perf_gen_sizes_init(struct perf_gen_run *r, uint16_t *of_pos)
{
	const struct perf_gen_opts *o = r->o;
	unsigned n_res = o->follow_assign ? GEN_FRAMES : 1;
	for (unsigned p = 0; p < o->n_size; p++) {
		unsigned s;
		for (s = 0; s < r->n_sz; s++)
			if (r->sz[s].res[0].width == o->width[p] && r->sz[s].res[0].height == o->height[p])
				break;
		of_pos[p] = (uint16_t)s;
		if (s < r->n_sz)
			continue;
		struct perf_gen_size *z = &r->sz[r->n_sz++];
		for (unsigned k = 0; k < n_res; k++) {
			int w = o->width[p], h = o->height[p];
			if (k > 0) { /* the ladder keeps this size's aspect, multiples of 16 */
				w = 128 + 32 * (int)(k - 1);
				h = (int)((double)w * o->height[p] / o->width[p] / 16 + 0.5) * 16;
				if (h < 16)
					h = 16;
			}
			int f = perf_gen_frame_get(r, w, h);
			if (f < 0)
				return -1;
			z->res[z->n_res] = (struct dp_app_res){(uint16_t)w, (uint16_t)h};
			z->fr[z->n_res++] = (unsigned)f;
		}
	}
	return 0;
}

/* Each client's own fps, REGISTER SLO, SLO and size (element i mod n of each list) and its
 * group: clients of the same fps, SLO and size. 0 or -1 (out of memory). */
static int perf_gen_clients_init(struct perf_gen_run *r, const uint16_t *size_of)
{
	const struct perf_gen_opts *o = r->o;
	uint16_t fps_of[GEN_LIST_MAX], slo_of[GEN_LIST_MAX];
	unsigned nd_fps = perf_gen_distinct(o->fps, o->n_fps, fps_of);
	unsigned nd_slo = perf_gen_distinct(o->slo_ms, o->n_slo, slo_of);
	size_t n_keys = (size_t)nd_fps * nd_slo * r->n_sz;
	unsigned *slot = malloc(n_keys * sizeof(*slot)); /* group + 1 of each combination */
	r->grp = calloc(n_keys < o->clients ? n_keys : o->clients, sizeof(*r->grp));
	if (!slot || !r->grp) {
		free(slot);
		return -1;
	}
	memset(slot, 0, n_keys * sizeof(*slot));
	long mix_cur[GEN_LIST_MAX] = {0};
	for (unsigned i = 0; i < o->clients; i++) {
		struct perf_gen_client *c = &r->cl[i];
		unsigned pf = i % o->n_fps, ps = i % o->n_slo, pz = i % o->n_size;
		unsigned pr = o->n_register ? i % o->n_register : 0;
		if (o->n_mix) /* one class: the same position in every list */
			pf = ps = pz = pr = perf_gen_mix_next(o, mix_cur);
		c->fps = o->fps[pf];
		c->frame_ns = c->fps > 0 ? (uint64_t)(1e9 / c->fps) : 0;
		c->register_slo = o->n_register ? o->register_slo[pr] : 0;
		c->sz = size_of[pz];
		c->fr = r->sz[c->sz].fr[0];
		c->ssrc = PERF_LAT_SSRC0 + i;
		size_t key = ((size_t)fps_of[pf] * nd_slo + slo_of[ps]) * r->n_sz + c->sz;
		if (!slot[key]) {
			r->grp[r->n_grp] = (struct perf_gen_group){
				.fps = c->fps, .slo_ms = o->slo_ms[ps], .width = o->width[pz],
				.height = o->height[pz]};
			slot[key] = ++r->n_grp;
		}
		c->group = slot[key] - 1;
		r->grp[c->group].clients++;
	}
	free(slot);
	if (r->n_grp > 1 && !(r->grp_hist = calloc(r->n_grp, sizeof(*r->grp_hist))))
		return -1;
	for (unsigned i = 0; i < o->clients; i++)
		perf_lat_client_set(r->lat, i, r->grp[r->cl[i].group].slo_ms,
				    r->grp_hist ? &r->grp_hist[r->cl[i].group] : NULL);
	return 0;
}

/* Encodes the frames (each distinct size, the ladders too with --follow-assign), allocates
 * clients and their accounting: everything the send loop needs. 0 or -1 (message printed). */
static int perf_gen_run_init(struct perf_gen_run *r, const struct perf_gen_opts *o)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	double fps_max = 0, slo_max = 0;
	for (unsigned k = 0; k < o->n_fps; k++)
		fps_max = o->fps[k] > fps_max ? o->fps[k] : fps_max;
	for (unsigned k = 0; k < o->n_slo; k++)
		slo_max = o->slo_ms[k] > slo_max ? o->slo_ms[k] : slo_max;
	size_t cap = (size_t)o->n_size * (o->follow_assign ? GEN_FRAMES : 1);
	r->fr = calloc(cap, sizeof(*r->fr));
	r->fr_res = calloc(cap, sizeof(*r->fr_res));
	r->cl = calloc(o->clients, sizeof(*r->cl));
	r->lat = perf_lat_create(o->clients, fps_max, slo_max, o->per_client != NULL);
	perf_gen_stress_init(&r->stress, o->stress, o->seed);
	if (o->stress)
		r->xp = calloc(GEN_BURST * GEN_STRESS_XMAX, sizeof(*r->xp));
	if (!r->fr || !r->fr_res || !r->cl || !r->lat || (o->stress && !r->xp)) {
		fprintf(stderr, "shoal-gen: out of memory for %u clients\n", o->clients);
		return -1;
	}
	uint16_t size_of[GEN_LIST_MAX];
	if (perf_gen_sizes_init(r, size_of))
		return -1;
	if (perf_gen_clients_init(r, size_of)) {
		fprintf(stderr, "shoal-gen: out of memory for %u clients\n", o->clients);
		return -1;
	}
	return 0;
}

static void perf_gen_run_fini(struct perf_gen_run *r)
{
	for (unsigned k = 0; r->fr && k < r->n_fr; k++)
		free(r->fr[k].pkt);
	free(r->fr);
	free(r->fr_res);
	free(r->cl);
	free(r->xp);
	free(r->grp);
	free(r->grp_hist);
	perf_lat_destroy(r->lat);
}

/* Client i starts a frame at now: follows a new ASSIGN resolution (--follow-assign), notes
 * the send time. Returns the frame to send. */
const struct perf_gen_frame *perf_gen_frame_start(struct perf_gen_run *r, unsigned i,
						  uint64_t now)
{
	struct perf_gen_client *c = &r->cl[i];
	const struct perf_lat_client *lc = &r->lat->cl[i];
	if (r->o->follow_assign && lc->assigned && lc->assign_width && lc->assign_height &&
	    (lc->assign_width != c->seen_w || lc->assign_height != c->seen_h)) {
		c->seen_w = lc->assign_width;
		c->seen_h = lc->assign_height;
		const struct perf_gen_size *z = &r->sz[c->sz];
		long best = -1;
		for (unsigned k = 0; k < z->n_res; k++) {
			long d = labs((long)z->res[k].width - c->seen_w) +
				 labs((long)z->res[k].height - c->seen_h);
			if (best < 0 || d < best) {
				best = d;
				c->fr = z->fr[k];
			}
		}
	}
	/* a shaped client's frame was taken when it was due (or when the link let the previous
	 * one go), not when its bucket lets the first packet out */
	uint64_t taken = now;
	if (r->o->trace_n && c->frame_ns && c->next_frame_ns && c->next_frame_ns < now)
		taken = c->next_frame_ns;
	perf_lat_frame_begin(r->lat, i, c->ts, taken);
	return &r->fr[c->fr];
}

/* Chooses the next packet to send: round-robin over clients, frame pacing per client, the
 * bucket with --trace. Returns the client index, or -1 when none is due. */
int perf_gen_pick(struct perf_gen_run *r, unsigned *rr, uint64_t now)
{
	const struct perf_gen_client *cl = r->cl;
	unsigned n = r->o->clients;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (*rr + k) % n;
		if ((cl[i].next_pkt > 0 || !cl[i].frame_ns || now >= cl[i].next_frame_ns) &&
		    perf_gen_shape_ok(r, i, now)) {
			*rr = i + 1;
			return (int)i;
		}
	}
	return -1;
}

/* Advances client i after a packet of its frame was queued; returns 1 when that ended the
 * frame (which then waits for its answer). */
int perf_gen_advance(struct perf_gen_run *r, unsigned i, uint64_t now)
{
	struct perf_gen_client *c = &r->cl[i];
	c->seq++;
	if (r->o->trace_n)
		c->tokens -= r->fr[c->fr].len[c->next_pkt] + GEN_WIRE_HDRS;
	if (++c->next_pkt < r->fr[c->fr].n)
		return 0;
	c->next_pkt = 0;
	c->ts += PERF_LAT_TS_STEP;
	if (c->frame_ns) {
		c->next_frame_ns = (c->next_frame_ns ? c->next_frame_ns : now) + c->frame_ns;
		/* a shaped link that fell behind: the next frame is taken when this one is out */
		if (r->o->trace_n && c->next_frame_ns < now)
			c->next_frame_ns = now;
	}
	perf_lat_frame_end(r->lat, i, now);
	return 1;
}

/* Every GEN_HOUSE_NS: frames unanswered past the timeout become lost, REGISTERs that are due
 * go out through reg_send (client i's REGISTER, len bytes, from its RTCP port; 0 when sent).
 * force: now, whatever the timer. */
void perf_gen_house(struct perf_gen_run *r, uint64_t now, int force,
		    int (*reg_send)(void *arg, unsigned i, const uint8_t *buf, size_t len),
		    void *arg)
{
	if (!force && now < r->next_house_ns)
		return;
	r->next_house_ns = now + GEN_HOUSE_NS;
	perf_lat_sweep(r->lat, now, 0);
	if (!r->o->n_register)
		return;
	uint8_t buf[256];
	for (unsigned i = 0; i < r->o->clients; i++) {
		struct perf_lat_client *lc = &r->lat->cl[i];
		struct perf_gen_client *c = &r->cl[i];
		if (r->o->trace_n && r->start_ns && c->next_report_ns <= now) {
			double kbps = perf_gen_shape_rate(r, i, now) * 1000 + 0.5;
			ssize_t len = perf_lat_report_build(buf, sizeof(buf), r->lat, i,
							    (uint32_t)(kbps > 4e9 ? 4e9 : kbps));
			if (len > 0 && reg_send(arg, i, buf, (size_t)len) == 0) {
				r->lat->reports_sent++;
				c->next_report_ns = now + 1000000000ull;
			}
		}
		if (lc->next_reg_ns > now)
			continue;
		const struct perf_gen_size *z = &r->sz[c->sz];
		ssize_t len = perf_lat_register_build(buf, sizeof(buf), i, c->register_slo, c->fps,
						      c->sport, z->res, z->n_res);
		if (len > 0 && reg_send(arg, i, buf, (size_t)len) == 0) {
			r->lat->registers_sent++;
			lc->next_reg_ns = now + (lc->assigned ? PERF_LAT_REG_KEEP_NS
								: PERF_LAT_REG_RETRY_NS);
		}
	}
}

/* Sending is over: partly sent frames do not count. */
void perf_gen_stop_frames(struct perf_gen_run *r)
{
	for (unsigned i = 0; i < r->o->clients; i++)
		if (r->cl[i].next_pkt)
			perf_lat_frame_abandon(r->lat, i);
}

/* One `gen: group …` line per group: its clients' totals and latency quantiles. */
static void perf_gen_print_groups(const struct perf_gen_run *r, FILE *f)
{
	struct perf_lat_totals *t = calloc(r->n_grp, sizeof(*t));
	if (!t) {
		fprintf(stderr, "shoal-gen: out of memory for the group lines\n");
		return;
	}
	for (unsigned i = 0; i < r->o->clients; i++) {
		const struct perf_lat_client *c = &r->lat->cl[i];
		struct perf_lat_totals *g = &t[r->cl[i].group];
		g->sent += c->sent;
		g->results += c->results;
		g->drops += c->drops;
		g->lost += c->lost;
		g->missed += c->late + c->drops + c->lost;
	}
	for (unsigned g = 0; g < r->n_grp; g++) {
		const struct perf_gen_group *gr = &r->grp[g];
		fprintf(f,
			"gen: group fps=%g slo_ms=%g size=%ux%u clients=%u sent=%llu results=%llu "
			"drops=%llu lost=%llu miss=%.4f p50_ms=%.3f p99_ms=%.3f\n",
			gr->fps, gr->slo_ms, gr->width, gr->height, gr->clients,
			(unsigned long long)t[g].sent, (unsigned long long)t[g].results,
			(unsigned long long)t[g].drops, (unsigned long long)t[g].lost,
			t[g].sent ? (double)t[g].missed / (double)t[g].sent : 0.0,
			perf_lat_quantile(&r->grp_hist[g], 0.5),
			perf_lat_quantile(&r->grp_hist[g], 0.99));
	}
	free(t);
}

int perf_gen_report(struct perf_gen_run *r, const struct perf_gen_totals *t)
{
	const struct perf_gen_opts *o = r->o;
	double s = t->seconds > 0 ? t->seconds : 1e-9;
	struct perf_lat_totals lt;
	perf_lat_totals(r->lat, &lt);
	if (t->tx_failed)
		printf("gen: %llu packets not taken by the port\n", (unsigned long long)t->tx_failed);
	perf_lat_print_rtcp(r->lat, stdout);
	if (r->n_grp > 1)
		perf_gen_print_groups(r, stdout);
	if (o->stress)
		perf_gen_stress_print(&r->stress, stdout);
	printf("gen: clients=%u pkts=%llu frames=%llu seconds=%.3f mpps=%.4f fps=%.1f gbps=%.3f "
	       "rx_rtcp=%llu results=%llu drops=%llu lost=%llu miss=%.4f p50_ms=%.3f p99_ms=%.3f\n",
	       o->clients, (unsigned long long)t->pkts, (unsigned long long)t->frames, t->seconds,
	       t->pkts / s / 1e6, t->frames / s, t->bytes * 8 / s / 1e9,
	       (unsigned long long)t->rx_rtcp, (unsigned long long)lt.results,
	       (unsigned long long)lt.drops, (unsigned long long)lt.lost,
	       lt.sent ? (double)lt.missed / (double)lt.sent : 0.0,
	       perf_lat_quantile(&r->lat->hist, 0.5), perf_lat_quantile(&r->lat->hist, 0.99));
	fflush(stdout);
	if (o->per_client) {
		double *bw = NULL;
		if (o->trace_n && (bw = calloc(o->clients, sizeof(*bw)))) {
			/* the mean rate each link had while sending */
			uint64_t end = r->start_ns + (uint64_t)(t->seconds * 1e9);
			for (unsigned i = 0; i < o->clients; i++) {
				perf_gen_shape_ok(r, i, end);
				bw[i] = r->cl[i].bits / s / 1e6;
			}
		}
		struct perf_lat_csv_class *cls = calloc(o->clients, sizeof(*cls));
		for (unsigned i = 0; cls && i < o->clients; i++) {
			const struct perf_gen_group *g = &r->grp[r->cl[i].group];
			cls[i] = (struct perf_lat_csv_class){g->fps, g->slo_ms, g->width, g->height};
		}
		int rc = (o->trace_n && !bw) || !cls
				 ? -ENOMEM
				 : perf_lat_write_csv(r->lat, o->per_client, bw, cls);
		free(bw);
		free(cls);
		if (rc) {
			fprintf(stderr, "shoal-gen: cannot write %s: %s\n", o->per_client,
				strerror(-rc));
			return 1;
		}
	}
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

/* Reads what comes back: RTCP from the server's port, addressed to a client's RTCP port (its
 * address, media source port + 1), goes to the accounting; everything is freed, nothing is
 * answered. Returns packets read. */
static unsigned perf_gen_drain(const struct perf_gen_port *pt, struct perf_gen_run *r,
			       uint64_t *rx_rtcp)
{
	const struct perf_gen_opts *o = r->o;
	uint16_t rtcp_port = (uint16_t)(o->media_port + 1);
	struct rte_mbuf *rx[GEN_BURST];
	uint16_t n = rte_eth_rx_burst(pt->id, 0, rx, GEN_BURST);
	uint64_t now = n ? perf_gen_now_ns() : 0;
	for (uint16_t k = 0; k < n; k++) {
		const uint8_t *p = rte_pktmbuf_mtod(rx[k], const uint8_t *);
		uint32_t len = rx[k]->data_len;
		if (len < GEN_HDRS || ((const struct rte_ether_hdr *)p)->ether_type !=
					      rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
			continue;
		const struct rte_ipv4_hdr *ip =
			(const struct rte_ipv4_hdr *)(p + sizeof(struct rte_ether_hdr));
		uint32_t ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
		uint32_t l3 = len - (uint32_t)sizeof(struct rte_ether_hdr);
		if (ip->next_proto_id != IPPROTO_UDP || ihl < sizeof(*ip) ||
		    l3 < ihl + sizeof(struct rte_udp_hdr))
			continue;
		const struct rte_udp_hdr *u = (const struct rte_udp_hdr *)((const uint8_t *)ip + ihl);
		if (u->src_port != rte_cpu_to_be_16(rtcp_port))
			continue;
		(*rx_rtcp)++;
		uint32_t ulen = rte_be_to_cpu_16(u->dgram_len);
		if (ulen < sizeof(*u) || ulen > l3 - ihl)
			continue;
		uint32_t i = ntohl(ip->dst_addr) - ntohl(o->src_ip);
		int client = i < o->clients && rte_be_to_cpu_16(u->dst_port) ==
						       (uint16_t)(GEN_DPDK_SPORT(i) + 1)
				     ? (int)i
				     : (int)o->clients; /* not a client's RTCP port: all stray */
		perf_lat_rtcp_rx(r->lat, client, (const uint8_t *)(u + 1), ulen - sizeof(*u), now);
	}
	rte_pktmbuf_free_bulk(rx, n);
	return n;
}

struct perf_gen_dpdk_reg {
	struct perf_gen_port *pt;
	const struct perf_gen_opts *o;
};

static int perf_gen_dpdk_reg_send(void *arg, unsigned i, const uint8_t *buf, size_t len)
{
	const struct perf_gen_dpdk_reg *d = arg;
	struct rte_mbuf *m = rte_pktmbuf_alloc(d->pt->mp);
	if (!m)
		return -ENOMEM;
	uint16_t sport = GEN_DPDK_SPORT(i);
	perf_gen_hdrs(m, d->pt, htonl(ntohl(d->o->src_ip) + i), d->o->dst_ip,
		      (uint16_t)(sport + 1), (uint16_t)(d->o->media_port + 1), (uint16_t)len);
	memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, GEN_HDRS), buf, len);
	m->data_len = m->pkt_len = (uint32_t)(GEN_HDRS + len);
	if (rte_eth_tx_burst(d->pt->id, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return -EAGAIN;
	}
	return 0;
}

/* --stress: the robustness packets that follow client i's real packet p into mx (mbufs from
 * the client's address and ports, or a new address for ssrc-flood); returns how many. */
static unsigned perf_gen_dpdk_stress(const struct perf_gen_port *pt, struct perf_gen_run *r,
				     unsigned i, const uint8_t *p, uint16_t len,
				     struct rte_mbuf **mx)
{
	const struct perf_gen_opts *o = r->o;
	const struct perf_gen_client *c = &r->cl[i];
	struct perf_gen_xpkt *x = r->xp;
	unsigned nx = perf_gen_stress_extra(&r->stress, p, len, c->ssrc, x), k, got = 0;
	for (k = 0; k < nx; k++) {
		struct rte_mbuf *b = rte_pktmbuf_alloc(pt->mp);
		if (!b)
			break;
		uint32_t src = ntohl(o->src_ip) + i;
		uint16_t sport = c->sport, dport = o->media_port;
		if (x[k].flood) {
			src = ntohl(o->src_ip) + o->clients + (uint32_t)(r->stress.flood & 0xffff);
			sport = GEN_DPDK_SPORT(r->stress.flood);
		} else if (x[k].rtcp) {
			sport++;
			dport++;
		}
		perf_gen_hdrs(b, pt, htonl(src), o->dst_ip, sport, dport, x[k].len);
		memcpy(rte_pktmbuf_mtod_offset(b, uint8_t *, GEN_HDRS), x[k].data, x[k].len);
		b->data_len = b->pkt_len = (uint32_t)(GEN_HDRS + x[k].len);
		mx[got++] = b;
	}
	return got;
}

/* Sends n mbufs, waiting for room (memif rings) but not past end; frees what did not go.
 * Returns the number sent. */
static unsigned perf_gen_dpdk_tx(const struct perf_gen_port *pt, struct rte_mbuf **m,
				 unsigned n, uint64_t end)
{
	unsigned sent = 0;
	for (unsigned tries = 0; sent < n && !perf_gen_stop; tries++) {
		sent += rte_eth_tx_burst(pt->id, 0, m + sent, (uint16_t)(n - sent));
		if ((tries & 1023) == 1023 && perf_gen_now_ns() > end)
			break;
	}
	if (sent < n)
		rte_pktmbuf_free_bulk(m + sent, n - sent);
	return sent;
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

static int perf_gen_dpdk(struct perf_gen_run *r)
{
	const struct perf_gen_opts *o = r->o;
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
	for (unsigned i = 0; i < o->clients; i++)
		r->cl[i].sport = GEN_DPDK_SPORT(i);
	struct perf_gen_dpdk_reg reg = {.pt = &pt, .o = o};
	struct perf_gen_totals t = {0};
	/* REGISTERs before the first frames (the TX ring may need a few rounds) */
	if (o->n_register) {
		uint64_t give_up = perf_gen_now_ns() + 1000000000ull;
		do {
			perf_gen_house(r, perf_gen_now_ns(), 1, perf_gen_dpdk_reg_send, &reg);
			perf_gen_drain(&pt, r, &t.rx_rtcp);
		} while (r->lat->registers_sent < o->clients && perf_gen_now_ns() < give_up && !perf_gen_stop);
	}
	uint64_t start = perf_gen_now_ns(), end = start + (uint64_t)(o->seconds * 1e9);
	perf_gen_shape_start(r, start);
	unsigned rr = 0;
	struct rte_mbuf *m[GEN_BURST], *mx[GEN_BURST * GEN_STRESS_XMAX];
	uint64_t owner[GEN_BURST]; /* client and frame of each real packet (--stress reorder) */
	uint64_t iter = 0;
	while (!perf_gen_stop) {
		uint64_t now = perf_gen_now_ns();
		if (now >= end)
			break;
		if ((++iter & 7) == 0) {
			perf_gen_drain(&pt, r, &t.rx_rtcp);
			perf_gen_house(r, now, 0, perf_gen_dpdk_reg_send, &reg);
		}
		if (o->pps > 0 && t.pkts > (now - start) * 1e-9 * o->pps)
			continue;
		if (rte_pktmbuf_alloc_bulk(pt.mp, m, GEN_BURST) != 0) {
			perf_gen_drain(&pt, r, &t.rx_rtcp);
			continue;
		}
		unsigned n = 0, nx = 0;
		int frames = 0;
		while (n < GEN_BURST) {
			int i = perf_gen_pick(r, &rr, now);
			if (i < 0)
				break;
			struct perf_gen_client *c = &r->cl[i];
			const struct perf_gen_frame *fr =
				c->next_pkt ? &r->fr[c->fr] : perf_gen_frame_start(r, (unsigned)i, now);
			unsigned k = c->next_pkt;
			struct rte_mbuf *b = m[n];
			uint16_t plen = fr->len[k];
			perf_gen_hdrs(b, &pt, htonl(ntohl(o->src_ip) + (uint32_t)i), o->dst_ip,
				      c->sport, o->media_port, plen);
			uint8_t *pay = rte_pktmbuf_mtod_offset(b, uint8_t *, GEN_HDRS);
			memcpy(pay, fr->pkt[k], plen);
			perf_gen_rtp_patch(pay, c->seq, c->ts, c->ssrc);
			b->data_len = b->pkt_len = (uint32_t)(GEN_HDRS + plen);
			t.bytes += plen;
			owner[n] = (uint64_t)i << 32 | c->ts;
			if (o->stress)
				nx += perf_gen_dpdk_stress(&pt, r, (unsigned)i, pay, plen, mx + nx);
			n++;
			/* keep a client's packets of one frame together in the burst */
			frames += perf_gen_advance(r, (unsigned)i, now);
			if (c->next_pkt != 0)
				rr = (unsigned)i;
		}
		for (unsigned k = 0; k + 1 < n; k++) /* --stress reorder, within a frame */
			if (owner[k] == owner[k + 1] && perf_gen_stress_swap(&r->stress)) {
				struct rte_mbuf *x = m[k];
				m[k] = m[k + 1];
				m[++k] = x;
			}
		/* back-pressure: wait for the receiver (memif rings), but not past the end */
		unsigned sent = perf_gen_dpdk_tx(&pt, m, n, end);
		t.tx_failed += n - sent;
		if (nx)
			perf_gen_dpdk_tx(&pt, mx, nx, end);
		if (n < GEN_BURST)
			rte_pktmbuf_free_bulk(m + n, GEN_BURST - n);
		t.pkts += sent;
		t.frames += (uint64_t)frames;
	}
	t.seconds = (perf_gen_now_ns() - start) * 1e-9;
	perf_gen_stop_frames(r);
	/* answers still in flight */
	uint64_t drain_end = perf_gen_now_ns() + (uint64_t)(o->drain_ms * 1e6);
	for (uint64_t now = perf_gen_now_ns(); now < drain_end; now = perf_gen_now_ns()) {
		perf_gen_drain(&pt, r, &t.rx_rtcp);
		perf_gen_house(r, now, 0, perf_gen_dpdk_reg_send, &reg);
	}
	perf_lat_sweep(r->lat, perf_gen_now_ns(), 1);
	rc = perf_gen_report(r, &t);
	rte_eth_dev_stop(pt.id);
	rte_eth_dev_close(pt.id);
	return rc;
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
	struct perf_gen_run run;
	if (kernel) {
		int rc = parse_opts(argc, argv, &o);
		if (rc)
			return rc > 0 ? 0 : 2;
		if (!o.udp) {
			fprintf(stderr, "shoal-gen: --udp is needed without EAL arguments\n");
			free(o.trace_mbps);
			return 2;
		}
		rc = perf_gen_run_init(&run, &o) ? 1 : perf_gen_udp(&run);
		perf_gen_run_fini(&run);
		free(o.trace_mbps);
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
	memset(&run, 0, sizeof(run));
	if (rc == 0 && perf_gen_run_init(&run, &o))
		rc = -2;
	int ret = rc > 0 ? 0 : rc == -1 ? 2 : rc < 0 ? 1 : perf_gen_dpdk(&run);
	perf_gen_run_fini(&run);
	free(o.trace_mbps);
	rte_eal_cleanup();
	return ret;
}
