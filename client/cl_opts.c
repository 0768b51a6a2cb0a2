/* cl_opts.c — shoal-client's command line. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/cl.h"

void cl_opts_default(struct cl_opts *o)
{
	*o = (struct cl_opts){.fps = 30, .slo_ms = 100, .width = 320, .height = 240,
			      .payload = 1200, .policy = CL_POLICY_ASSIGN, .max_size = CL_SQ_MAX,
			      .format = CL_FORMAT_JPEG, .raw_pt = CL_RAW_PT_MIN};
}

void cl_usage(FILE *f)
{
	fprintf(f,
		"usage: shoal-client --server IP:PORT (--video FILE | --synthetic) [options]\n"
		"Streams a video to a shoal server over UDP as RTP/JPEG (RFC 2435) or\n"
		"uncompressed (RFC 4175), registers and reports on RTCP (PORT+1), follows ASSIGN\n"
		"(resolution, target frame size) and collects RESULT/DROP for every frame. The\n"
		"uplink rate is estimated from the answers' timings and the send socket's\n"
		"backlog; frames that it cannot carry at --fps are sent at a smaller square\n"
		"(128..640 step 32).\n"
		"  --server IP:PORT   the server's media (RTP) port; RTCP goes to PORT+1\n"
		"  --bind IP          local address (default: any)\n"
		"  --local-port P     even local RTP port, RTCP on P+1 (default: ephemeral)\n"
		"  --video FILE       frames from a video file (libavformat)\n"
		"  --synthetic        frames from a moving test pattern (640x480)\n"
		"  --loop             rewind the video file at its end\n"
		"  --fps F            frames per second, absolute schedule (default 30)\n"
		"  --slo-ms MS        end-to-end latency objective sent in REGISTER (default 100)\n"
		"  --duration S       stop sending after S seconds (default: no limit)\n"
		"  --frames N         stop after N frames (default: no limit)\n"
		"  --width W          width before any ASSIGN, multiple of 8, 16..2040 (default 320)\n"
		"  --height H         height before any ASSIGN, multiple of 8, 16..2040 (default 240)\n"
		"  --payload BYTES    UDP payload per RTP packet, %d..%d (default 1200)\n"
		"  --format jpeg|raw  jpeg (default): RTP/JPEG, PT 26, quality steered to\n"
		"                     ASSIGN's target; raw: RFC 4175 YCbCr-4:2:0 8-bit (I420\n"
		"                     as GStreamer's rtpvrawpay sends it); REGISTER then lists\n"
		"                     the size being sent first and is repeated right before\n"
		"                     every size change\n"
		"  --raw-pt N         RTP payload type of raw video, %d..%d (default %d)\n"
		"  --csv FILE         one row per frame: frame,rtp_ts,send_ms,status,reason,\n"
		"                     latency_ms,variant,n_det,width,height,bytes,bw_kbps\n"
		"  --ssrc HEX         RTP SSRC (default: random)\n"
		"  --bw-kbps N        bandwidth (kbit/s) to use and REPORT instead of the estimate\n"
		"  --policy-resolution assign|bandwidth\n"
		"                     assign (default): ASSIGN's resolution, or the largest smaller\n"
		"                     square that the estimate carries while it cannot carry\n"
		"                     ASSIGN's frame size; bandwidth: ASSIGN's resolution and\n"
		"                     target ignored, the largest square up to --max-size that\n"
		"                     the estimate carries (for static server policies)\n"
		"  --max-size S       largest square for --policy-resolution bandwidth, 128..640\n"
		"                     step 32 (default 640)\n"
		"  --progress         one status line per second on stderr\n"
		"  --help             this text\n"
		"A frame with no RESULT/DROP within max(1 s, SLO) is lost. SIGINT/SIGTERM stop\n"
		"sending; answers still due are awaited briefly. Last line on stdout:\n"
		"client: ssrc=0x… sent=N results=N drops=N lost=N miss=F p50_ms=X p99_ms=Y "
		"variants=V:N,… bw_kbps=X sizes=S:N,…\n",
		CL_PAYLOAD_MIN, CL_PAYLOAD_MAX, CL_RAW_PT_MIN, CL_RAW_PT_MAX, CL_RAW_PT_MIN);
}

static int cl_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int cl_err(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && n)
		vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "IP:PORT" with a dotted IPv4 address and a port below 65535 (PORT+1 is RTCP). */
static int cl_server_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	double port;
	struct in_addr a;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return 0;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	return inet_pton(AF_INET, host, &a) == 1 && cl_num(colon + 1, 1, 65534, &port) == 0 &&
	       port == (unsigned)port;
}

int cl_opts_parse(struct cl_opts *o, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option lo[] = {
		{"server", required_argument, 0, 's'},   {"bind", required_argument, 0, 'b'},
		{"local-port", required_argument, 0, 'P'}, {"video", required_argument, 0, 'v'},
		{"synthetic", no_argument, 0, 'S'},      {"loop", no_argument, 0, 'L'},
		{"fps", required_argument, 0, 'f'},      {"slo-ms", required_argument, 0, 'o'},
		{"duration", required_argument, 0, 'd'}, {"frames", required_argument, 0, 'n'},
		{"width", required_argument, 0, 'W'},    {"height", required_argument, 0, 'H'},
		{"payload", required_argument, 0, 'p'},  {"csv", required_argument, 0, 'c'},
		{"ssrc", required_argument, 0, 'x'},     {"bw-kbps", required_argument, 0, 'B'},
		{"progress", no_argument, 0, 'g'},       {"help", no_argument, 0, 'h'},
		{"policy-resolution", required_argument, 0, 'R'},
		{"max-size", required_argument, 0, 'M'},
		{"format", required_argument, 0, 'F'},   {"raw-pt", required_argument, 0, 'T'},
		{0, 0, 0, 0}};
	cl_opts_default(o);
	optind = 1;
	opterr = 0; /* our own one-line message instead */
	int c, li = -1;
	double v;
	while ((li = -1, c = getopt_long(argc, argv, ":", lo, &li)) != -1) {
		switch (c) {
		case 's':
			if (!cl_server_ok(optarg))
				goto bad;
			o->server = optarg;
			break;
		case 'b': {
			struct in_addr a;
			if (inet_pton(AF_INET, optarg, &a) != 1)
				goto bad;
			o->bind_ip = optarg;
			break;
		}
		case 'P':
			if (cl_num(optarg, 2, 65534, &v) || v != (unsigned)v || ((unsigned)v & 1))
				goto bad;
			o->local_port = (uint16_t)v;
			break;
		case 'v': o->video = optarg; break;
		case 'S': o->synthetic = 1; break;
		case 'L': o->loop = 1; break;
		case 'f':
			if (cl_num(optarg, 0.1, 1000, &o->fps))
				goto bad;
			break;
		case 'o':
			if (cl_num(optarg, 1, 60000, &v) || v != (unsigned)v)
				goto bad;
			o->slo_ms = (unsigned)v;
			break;
		case 'd':
			if (cl_num(optarg, 0.001, 1e7, &o->duration_s))
				goto bad;
			break;
		case 'n':
			if (cl_num(optarg, 1, 1e15, &v) || v != (uint64_t)v)
				goto bad;
			o->max_frames = (uint64_t)v;
			break;
		case 'W':
		case 'H':
			if (cl_num(optarg, 16, CL_SIZE_MAX, &v) || v != (unsigned)v || ((unsigned)v % 8))
				goto bad;
			*(c == 'W' ? &o->width : &o->height) = (unsigned)v;
			break;
		case 'p':
			if (cl_num(optarg, CL_PAYLOAD_MIN, CL_PAYLOAD_MAX, &v) || v != (unsigned)v)
				goto bad;
			o->payload = (unsigned)v;
			break;
		case 'c': o->csv = optarg; break;
		case 'x': {
			char *end;
			errno = 0;
			unsigned long long x = strtoull(optarg, &end, 16);
			if (errno || end == optarg || *end || x > 0xffffffffull || optarg[0] == '-')
				goto bad;
			o->ssrc = (uint32_t)x;
			o->have_ssrc = 1;
			break;
		}
		case 'B':
			if (cl_num(optarg, 1, 4e9, &v) || v != (uint32_t)v)
				goto bad;
			o->bw_kbps = (uint32_t)v;
			break;
		case 'g': o->progress = 1; break;
		case 'R':
			if (!strcmp(optarg, "assign"))
				o->policy = CL_POLICY_ASSIGN;
			else if (!strcmp(optarg, "bandwidth"))
				o->policy = CL_POLICY_BANDWIDTH;
			else
				goto bad;
			break;
		case 'M':
			if (cl_num(optarg, CL_SQ_MIN, CL_SQ_MAX, &v) || v != (unsigned)v ||
			    ((unsigned)v - CL_SQ_MIN) % CL_SQ_STEP)
				goto bad;
			o->max_size = (unsigned)v;
			break;
		case 'F':
			if (!strcmp(optarg, "jpeg"))
				o->format = CL_FORMAT_JPEG;
			else if (!strcmp(optarg, "raw"))
				o->format = CL_FORMAT_RAW;
			else
				goto bad;
			break;
		case 'T':
			if (cl_num(optarg, CL_RAW_PT_MIN, CL_RAW_PT_MAX, &v) || v != (unsigned)v)
				goto bad;
			o->raw_pt = (unsigned)v;
			break;
		case 'h': return 1;
		case ':':
			return cl_err(err, errlen, "option '%s' needs a value (see --help)",
				      argv[optind - 1]);
		default:
			return cl_err(err, errlen, "unknown option '%s' (see --help)",
				      argv[optind - 1]);
		}
		continue;
	bad:
		return cl_err(err, errlen, "bad value '%s' for --%s (see --help)", optarg,
			      lo[li].name);
	}
	if (optind < argc)
		return cl_err(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
	if (!o->server)
		return cl_err(err, errlen, "--server IP:PORT is required (see --help)");
	if (!o->video == !o->synthetic)
		return cl_err(err, errlen, "give exactly one of --video FILE and --synthetic");
	if (o->loop && !o->video)
		return cl_err(err, errlen, "--loop needs --video");
	return 0;
}
