/* cl — shoal's client library (DESIGN.md §1, §4; wire format in dataplane/PROTOCOL.md).
 *
 * A client streams one video to a shoal server over ordinary UDP sockets: frames come from a
 * file (libavformat/libavcodec, resized with libswscale) or from a moving test pattern, are
 * paced on an absolute schedule, resized to the resolution of the latest ASSIGN, encoded as
 * baseline JPEG 4:2:0 (libjpeg-turbo) near ASSIGN's target size and sent as RTP/JPEG
 * (RFC 2435) from local port P to the server's media port M. Control runs on RTCP: P+1 to
 * M+1 (REGISTER, REPORT, BYE out; ASSIGN, RESULT, DROP in). Every frame ends as a RESULT, a
 * DROP, or lost (no answer within max(1 s, SLO) of its send, or by the end of the drain wait
 * at exit); an optional CSV gets one row per frame.
 *
 * Everything is sized at creation; the send loop allocates nothing except when an ASSIGN
 * changes the resolution (the scaler is rebuilt) and what libavcodec does while decoding.
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
	uint32_t bw_kbps;       /* bandwidth REPORTed; 0: estimated */
	int progress;           /* one line per second on stderr */
};

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

/* ---- client ----------------------------------------------------------------------------- */
#define CL_MAX_VARIANTS 32
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
	int quality;            /* JPEG quality in use */
	uint32_t rtt_us, bw_kbps; /* what the latest REPORT carried */
	double miss;            /* (sent - in_slo) / sent; 0 when nothing was sent */
	double p50_ms, p99_ms;  /* end-to-end latency of RESULTs (0.1 ms resolution) */
	unsigned n_variants;
	struct {
		uint16_t variant;
		uint64_t results;
	} variants[CL_MAX_VARIANTS]; /* in order of first appearance */
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
 * p50_ms=X p99_ms=Y variants=320:120,416:30`. Returns its length (as snprintf). */
int cl_stats_format(const struct cl_stats *s, char *buf, size_t cap);
void cl_client_destroy(struct cl_client *c);

#ifdef __cplusplus
}
#endif
#endif
