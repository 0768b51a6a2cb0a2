/* cl — shoal's client library (DESIGN.md §1, §4; wire format in dataplane/PROTOCOL.md).
 *
 * A client streams one video to a shoal server over ordinary UDP sockets: frames come from a
 * file (libavformat/libavcodec, resized with libswscale) or from a moving test pattern, are
 * paced on an absolute schedule, resized to the resolution of the latest ASSIGN (or a smaller
 * square while the uplink estimate cannot carry it, see enum cl_policy), and either encoded
 * as baseline JPEG 4:2:0 (libjpeg-turbo) near ASSIGN's target size and sent as RTP/JPEG
 * (RFC 2435), or sent uncompressed as RFC 4175 YCbCr-4:2:0 (enum cl_format), from local
 * port P to the server's media port M. Control runs on RTCP: P+1 to M+1 (REGISTER, REPORT,
 * BYE out; ASSIGN, RESULT, DROP in). The uplink rate is estimated
 * from the RESULTs' timings (latency less the server's time) and from the send socket's
 * backlog (SIOCOUTQ), and REPORTed with the RTT. Every frame ends as a RESULT, a
 * DROP, or lost (no answer within max(1 s, SLO) of its send, or by the end of the drain wait
 * at exit); an optional CSV gets one row per frame.
 *
 * Everything is sized at creation; the send loop allocates nothing except when an ASSIGN
 * or the bandwidth changes the resolution (the scaler is rebuilt) and what libavcodec does
 * while decoding.
 */
#ifndef SHOAL_CL_H
#define SHOAL_CL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- options ---------------------------------------------------------------------------- */
#define CL_PAYLOAD_MIN 200  /* UDP payload bytes per RTP packet */
#define CL_PAYLOAD_MAX 1472
#define CL_SIZE_MAX 2040    /* RFC 2435 carries width/8 and height/8 in one byte */
#define CL_RAW_PT_MIN 96    /* dynamic RTP payload types for raw video */
#define CL_RAW_PT_MAX 127

/* What the frames are sent as. JPEG: baseline JPEG 4:2:0, RTP/JPEG (RFC 2435), PT 26.
 * RAW: uncompressed, RFC 4175 sampling YCbCr-4:2:0 8-bit (pgroup of 2x2 pixels: Y00 Y01
 * Y10 Y11 Cb Cr, as GStreamer's rtpvrawpay sends I420), PT raw_pt, extended sequence
 * numbers; REGISTER then lists the size about to be sent first (the server takes a raw
 * stream's frame size from it) and is sent again right before the first frame of every new
 * size. */
enum cl_format { CL_FORMAT_JPEG, CL_FORMAT_RAW };

struct cl_opts {
	const char *server;     /* "IP:PORT", the server's media port M (required) */
	const char *bind_ip;    /* local address; NULL: any */
	uint16_t local_port;    /* even RTP port P (RTCP on P+1); 0: an ephemeral even port */
	const char *video;      /* video file, or NULL with synthetic */
	int synthetic;          /* moving test pattern generated in memory */
	int loop;               /* rewind the file at its end */
	double fps;             /* frames per second (default 30) */
	unsigned slo_ms;        /* end-to-end latency objective (default 100) */
	double duration_s;      /* stop sending after this long; 0: no limit */
	uint64_t max_frames;    /* stop after this many frames; 0: no limit */
	unsigned width, height; /* resolution before any ASSIGN (default 320x240) */
	unsigned payload;       /* UDP payload bytes per RTP packet (default 1200) */
	const char *csv;        /* per-frame CSV file; NULL: none */
	uint32_t ssrc;          /* used when have_ssrc, else random */
	int have_ssrc;
	uint32_t bw_kbps;       /* bandwidth used and REPORTed; 0: estimated */
	int progress;           /* one line per second on stderr */
	int policy;             /* enum cl_policy (default CL_POLICY_ASSIGN) */
	unsigned max_size;      /* largest square CL_POLICY_BANDWIDTH picks (default 640) */
	int format;             /* enum cl_format (default CL_FORMAT_JPEG) */
	unsigned raw_pt;        /* RTP payload type of raw video, 96..127 (default 96) */
};

/* How the resolution is chosen. ASSIGN: ASSIGN's, lowered to a smaller square while the
 * bandwidth estimate cannot carry ASSIGN's frame size. BANDWIDTH: ASSIGN's resolution and
 * target are ignored; the largest square up to max_size the estimate carries. */
enum cl_policy { CL_POLICY_ASSIGN, CL_POLICY_BANDWIDTH };

/* Fills o with the defaults above (server NULL, no source chosen). */
void cl_opts_default(struct cl_opts *o);
/* Parses shoal-client's command line (argv[0] skipped) into o, which it first sets to the
 * defaults; option strings point into argv. Returns 0, 1 when --help was given (nothing else
 * checked), or -EINVAL with a one-line message (no newline) in err. */
int cl_opts_parse(struct cl_opts *o, int argc, char **argv, char *err, size_t errlen);
/* Writes shoal-client's --help text to f. */
void cl_usage(FILE *f);

/* ---- frame source ----------------------------------------------------------------------- */
struct cl_video;

/* Opens a video file (first video stream); loop rewinds it at its end. NULL with a one-line
 * message on stderr when it cannot be opened or has no decodable video stream. */
struct cl_video *cl_video_open(const char *path, int loop);
/* A moving test pattern (bars, gradients and a moving square) of width x height. */
struct cl_video *cl_video_synthetic(unsigned width, unsigned height);
/* Source resolution. */
void cl_video_size(const struct cl_video *v, unsigned *width, unsigned *height);
/* Frames produced so far. */
uint64_t cl_video_frames(const struct cl_video *v);
/* Produces the next frame resized to width x height (both even) as I420 in i420: the Y plane
 * (width*height bytes), then Cb and Cr ((width/2)*(height/2) each). Returns 0, -ENODATA at
 * the end of a file opened without loop, -EINVAL for a bad size, or another -errno. */
int cl_video_next(struct cl_video *v, unsigned width, unsigned height, uint8_t *i420);
void cl_video_destroy(struct cl_video *v);

/* ---- bandwidth and resolution ------------------------------------------------------------ */
#define CL_SQ_MIN 128      /* the squares the server's variants take: 128..640 step 32 */
#define CL_SQ_MAX 640
#define CL_SQ_STEP 32
#define CL_BW_HEADROOM 0.9 /* frames may use 90 % of the estimate */
#define CL_BW_HYST 1.2     /* going up needs 20 % more room than staying */
#define CL_BW_WIN 9        /* samples in the median window */

/* A robust rate estimate: each sample joins a window of the latest CL_BW_WIN; the estimate
 * moves a quarter of the way to the window's median (the first sample sets it), so a single
 * outlier does not move it and a lasting change does within a few samples. */
struct cl_bw {
	double kbps; /* 0 before any sample */
	double win[CL_BW_WIN];
	unsigned n, i;
};

/* Adds a sample (kbit/s, > 0; others ignored). */
void cl_bw_add(struct cl_bw *b, double kbps);

/* Whether frames of bytes at fps fit bw_kbps: bytes*8*fps <= CL_BW_HEADROOM*bw, with
 * CL_BW_HYST times more room when up (a move to a larger size). */
int cl_bw_fits(double bytes, double fps, uint32_t bw_kbps, int up);

/* The largest square side in CL_SQ_MIN..cap (step CL_SQ_STEP) whose frames, predicted as
 * bpp * side² bytes, fit bw_kbps at fps (cl_bw_fits; sides above cur count as up); CL_SQ_MIN
 * when none does; cap (rounded down to a step) when bw_kbps or bpp is 0 (unknown). */
unsigned cl_square_fit(uint32_t bw_kbps, double fps, double bpp, unsigned cap, unsigned cur);

/* ---- client ----------------------------------------------------------------------------- */
#define CL_MAX_VARIANTS 32
#define CL_MAX_SIZES 32
#define CL_DROP_REASONS 7 /* index = DROP reason 1..6 (0 unused) */

struct cl_stats {
	uint32_t ssrc;
	uint16_t local_port;    /* P */
	uint64_t sent;          /* frames sent */
	uint64_t skipped;       /* schedule slots passed over because the sender fell behind */
	uint64_t results, drops, lost;
	uint64_t in_slo;        /* RESULTs within slo_ms of the frame's send */
	uint64_t pkts, bytes;   /* RTP packets and their UDP payload bytes */
	uint64_t drop_reasons[CL_DROP_REASONS];
	uint64_t assigns;       /* ASSIGNs received */
	uint64_t unmatched;     /* RESULT/DROP for no pending frame (late or unknown) */
	uint64_t bad_msgs;      /* datagrams or RTCP packets refused by the codec */
	uint64_t rtcp_send_errors; /* RTCP datagrams the socket refused (server not up yet) */
	int served;             /* latest ASSIGN: 1 served, 0 not served, -1 none yet */
	unsigned width, height; /* resolution being sent */
	uint32_t target_bytes;  /* latest ASSIGN's frame size target (0: none) */
	int quality;            /* JPEG quality in use (75, unused, when raw) */
	uint32_t rtt_us, bw_kbps; /* what the latest REPORT carried */
	uint32_t bw_result_kbps;  /* estimate from RESULT timings (0: none yet) */
	uint32_t bw_send_kbps;    /* estimate from the socket's send backlog (0: none yet) */
	uint64_t send_backlog;    /* frames sent while the socket still held earlier ones */
	uint64_t backoffs;        /* moves to a smaller size for bandwidth */
	int bw_limited;           /* sending below the policy's size for bandwidth now */
	double miss;            /* (sent - in_slo) / sent; 0 when nothing was sent */
	double p50_ms, p99_ms;  /* end-to-end latency of RESULTs (0.1 ms resolution) */
	unsigned n_variants;
	struct {
		uint16_t variant;
		uint64_t results;
	} variants[CL_MAX_VARIANTS]; /* in order of first appearance */
	unsigned n_sizes;
	struct {
		uint16_t width, height;
		uint64_t frames;
	} sizes[CL_MAX_SIZES]; /* frames sent per resolution, in order of first appearance */
};

struct cl_client;

/* Opens the source and the sockets (RTP on P, RTCP on P+1), the CSV when asked, and sizes
 * everything. NULL with a one-line message on stderr. */
struct cl_client *cl_client_create(const struct cl_opts *o);
/* Runs until the frame or time limit, the end of the file, or *stop becomes non-zero (stop
 * may be NULL); then waits up to max(1 s, SLO) for the answers still due (returning early
 * when none is), marks the rest lost, sends BYE and flushes the CSV. Returns 0 or -errno
 * (a socket or source failure, message on stderr). */
int cl_client_run(struct cl_client *c, volatile sig_atomic_t *stop);
/* Counters and latency percentiles so far. */
void cl_client_stats(const struct cl_client *c, struct cl_stats *out);
/* The summary line (no newline): `client: ssrc=0x… sent=N results=N drops=N lost=N miss=F
 * p50_ms=X p99_ms=Y variants=320:120,416:30 bw_kbps=X sizes=128:10,320:50` (sizes: frames
 * sent per resolution, a square as its side, others as WxH). Returns its length (as
 * snprintf). */
int cl_stats_format(const struct cl_stats *s, char *buf, size_t cap);
void cl_client_destroy(struct cl_client *c);

#ifdef __cplusplus
}
#endif
#endif
