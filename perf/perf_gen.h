/* shoal-gen internals shared by its modes: options, encoded frames, emulated clients and the
 * run state (perf_gen.c), kernel-socket mode (perf_gen_udp.c), trace-driven shaping of each
 * client's uplink (perf_gen_shape.c), robustness traffic (perf_gen_stress.c), client classes
 * from a file (perf_gen_mix.c); per-frame accounting is in perf_gen_lat.h. No DPDK types
 * here. */
#ifndef SHOAL_PERF_GEN_H
#define SHOAL_PERF_GEN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "perf/perf_gen_lat.h"

#define GEN_PKT_MAX 1500 /* bytes of UDP payload at most */
#define GEN_BURST 32
#define GEN_LADDER 17          /* --follow-assign: widths 128..640 step 32 */
#define GEN_FRAMES (1 + GEN_LADDER)
#define GEN_WIRE_HDRS 28       /* IPv4 + UDP header bytes a shaped link carries per packet */
#define GEN_STRESS_XMAX 4      /* robustness packets added after one real packet at most */
#define GEN_LIST_MAX 32        /* values in one --fps, --register, --slo-ms or --size list */

/* --stress modes (bits) */
enum perf_gen_stress_mode {
	GEN_STRESS_GARBAGE = 1u << 0,    /* random UDP payloads to the media and RTCP ports */
	GEN_STRESS_MALFORMED = 1u << 1,  /* RTP/RTCP with bad versions, lengths, headers */
	GEN_STRESS_SSRC_FLOOD = 1u << 2, /* RTP packets from ever-new SSRCs */
	GEN_STRESS_DUP = 1u << 3,        /* every GEN_STRESS_DUP_EVERY-th packet twice */
	GEN_STRESS_REORDER = 1u << 4,    /* adjacent packets of a frame swapped now and then */
};
#define GEN_STRESS_DUP_EVERY 10

extern volatile sig_atomic_t perf_gen_stop; /* the stop flag: the one allowed global */

struct perf_gen_opts {
	const char *udp;     /* kernel mode HOST:PORT, NULL for DPDK mode */
	uint16_t port_id;
	uint32_t dst_ip, src_ip; /* network order */
	uint16_t media_port;
	unsigned clients;
	int quality;
	unsigned payload;
	/* Per-client values: client i takes element i % n of each list, each list cycling on
	 * its own. One value: every client the same. */
	double fps[GEN_LIST_MAX];         /* --fps; 0 (a single value only): no frame pacing */
	unsigned n_fps;
	uint16_t register_slo[GEN_LIST_MAX]; /* --register: SLO (ms) sent in REGISTER */
	unsigned n_register;                 /* 0: unmanaged clients */
	double slo_ms[GEN_LIST_MAX]; /* SLO for miss accounting: --slo-ms, else --register's */
	unsigned n_slo;
	uint16_t width[GEN_LIST_MAX], height[GEN_LIST_MAX]; /* --size */
	unsigned n_size;
	/* --mix FILE: n_mix classes in the lists' first n_mix positions (fps, REGISTER SLO and SLO,
	 * size), client i's class chosen by weight (perf_gen_mix_next) instead of i % n */
	const char *mix;
	unsigned mix_weight[GEN_LIST_MAX];
	unsigned n_mix;
	double pps;   /* total; 0: as fast as possible */
	double seconds;
	int have_dst_mac;
	uint8_t dst_mac[6];
	double drain_ms;       /* receive after the end of sending */
	int follow_assign;
	const char *per_client; /* CSV path */
	const char *trace;      /* --trace FILE, NULL: unshaped clients */
	double *trace_mbps;     /* its values (Mbit/s), trace_n of them, each held trace_step s */
	unsigned trace_n;
	double trace_step;
	uint64_t seed;   /* --seed: trace offsets, stress choices */
	unsigned stress; /* enum perf_gen_stress_mode bits */
};

/* One frame as RTP payloads (RTP header + RFC 2435 header + scan chunk), seq/ts/ssrc patched
 * at send time. */
struct perf_gen_frame {
	unsigned n;
	uint16_t len[4096];
	uint8_t (*pkt)[GEN_PKT_MAX];
};

struct perf_gen_client {
	/* its own: fps, pacing, REGISTER SLO, --size (index in perf_gen_run.sz), group */
	double fps;
	uint64_t frame_ns; /* 0: no pacing by frames */
	uint16_t register_slo;
	uint16_t sz;
	unsigned group;
	uint16_t seq;
	uint16_t sport; /* media source port; RTCP is sport + 1 */
	uint32_t ts, ssrc;
	unsigned next_pkt; /* packet of the current frame to send next */
	unsigned fr;       /* frame it sends (index in perf_gen_run.fr) */
	uint64_t next_frame_ns;
	uint16_t seen_w, seen_h; /* the ASSIGN resolution it last followed */
	/* --trace: the client's shaped uplink, a token bucket filled at the trace's rate */
	uint64_t trace_off_ns; /* where in the (looped) trace the client started */
	uint64_t tb_ns;        /* bucket filled up to this time */
	double tokens;         /* bytes */
	double bits;           /* what the link could carry since the start (mean rate) */
	uint64_t next_report_ns; /* next REPORT (--register with --trace) */
};

/* One packet of robustness traffic (--stress), sent from the client's media or RTCP port. */
struct perf_gen_xpkt {
	uint16_t len;
	uint8_t rtcp;  /* to the server's RTCP port (else the media port) */
	uint8_t flood; /* a new client: DPDK mode sends it from an address no client has */
	uint8_t data[GEN_PKT_MAX];
};

/* --stress state and what was sent of each kind. */
struct perf_gen_stress {
	unsigned modes;
	uint64_t rng;
	uint64_t real; /* real packets seen */
	uint32_t next_ssrc;
	uint64_t garbage_media, garbage_rtcp, malformed_rtp, malformed_rtcp, flood, dup, reorder;
};

/* One distinct --size: what its clients REGISTER (the size first, then with --follow-assign
 * the ladder of widths 128..640 step 32 in its own aspect) and the frame of each. */
struct perf_gen_size {
	unsigned n_res;
	struct dp_app_res res[GEN_FRAMES];
	unsigned fr[GEN_FRAMES]; /* index in perf_gen_run.fr of res[k]'s frame */
};

/* Clients with the same fps, SLO (miss accounting) and --size, reported together. */
struct perf_gen_group {
	double fps, slo_ms;
	uint16_t width, height;
	unsigned clients;
};

/* What both modes share: options, the encoded frames, clients and their accounting. */
struct perf_gen_run {
	const struct perf_gen_opts *o;
	struct perf_gen_frame *fr; /* every distinct resolution, encoded once */
	struct dp_app_res *fr_res; /* fr[k]'s resolution */
	unsigned n_fr;
	struct perf_gen_size sz[GEN_LIST_MAX];
	unsigned n_sz;
	struct perf_gen_group *grp;
	struct perf_lat_hist *grp_hist; /* one per group when there are several, else NULL */
	unsigned n_grp;
	struct perf_gen_client *cl;
	struct perf_lat *lat;
	uint64_t next_house_ns;
	uint64_t start_ns; /* sending began (0: not yet) */
	struct perf_gen_stress stress;
	struct perf_gen_xpkt *xp; /* GEN_BURST * GEN_STRESS_XMAX, with --stress */
};

struct perf_gen_totals {
	uint64_t pkts, bytes, frames, rx_rtcp, tx_failed;
	double seconds;
};

static inline uint64_t perf_gen_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* seq, timestamp, ssrc of the RTP header at p */
static inline void perf_gen_rtp_patch(uint8_t *p, uint16_t seq, uint32_t ts, uint32_t ssrc)
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

/* Client i starts a frame at now: follows a new ASSIGN resolution (--follow-assign), notes
 * the send time. Returns the frame to send. */
const struct perf_gen_frame *perf_gen_frame_start(struct perf_gen_run *r, unsigned i,
						  uint64_t now);
/* Chooses the next client to send a packet: round-robin, frame pacing per client, and with
 * --trace only a client whose bucket holds its next packet. Returns the client index, or -1
 * when none is due. */
int perf_gen_pick(struct perf_gen_run *r, unsigned *rr, uint64_t now);
/* Advances client i after a packet of its frame was queued; returns 1 when that ended the
 * frame (which then waits for its answer). */
int perf_gen_advance(struct perf_gen_run *r, unsigned i, uint64_t now);
/* Every 50 ms (or now with force): frames unanswered past the timeout become lost,
 * REGISTERs (and with --trace, once sending began, each second's REPORT) that are due go out
 * through reg_send (client i's message, len bytes, from its RTCP port; 0 when sent). */
void perf_gen_house(struct perf_gen_run *r, uint64_t now, int force,
		    int (*reg_send)(void *arg, unsigned i, const uint8_t *buf, size_t len),
		    void *arg);
/* Sending is over: partly sent frames do not count. */
void perf_gen_stop_frames(struct perf_gen_run *r);
/* Prints the `gen: rtcp …` line, one `gen: group …` line per group when there are several,
 * the `gen: stress …` line (--stress) and the last line, writes --per-client; 0, or 1 when
 * the CSV cannot be written. */
int perf_gen_report(struct perf_gen_run *r, const struct perf_gen_totals *t);

/* ---- perf_gen_shape.c: --trace ---- */
/* Reads a trace (one Mbit/s value per line, '#' comments, blank lines) into o->trace_mbps.
 * 0, or -1 with one line printed (missing, empty, non-numeric or negative values). */
int perf_gen_trace_load(struct perf_gen_opts *o, const char *path);
/* Sending begins at now: each client's offset into the trace (drawn from --seed), full
 * buckets, the first REPORT due. Without --trace only notes the start. */
void perf_gen_shape_start(struct perf_gen_run *r, uint64_t now);
/* Rate (Mbit/s) of client i's link at now. */
double perf_gen_shape_rate(const struct perf_gen_run *r, unsigned i, uint64_t now);
/* Fills client i's bucket up to now; 1 when its next packet may leave (always unshaped). */
int perf_gen_shape_ok(struct perf_gen_run *r, unsigned i, uint64_t now);

/* ---- perf_gen_stress.c: --stress ---- */
/* Parses MODE[,MODE...] (garbage, malformed, ssrc-flood, dup, reorder) into bits; 0 or -1. */
int perf_gen_stress_parse(const char *s, unsigned *modes);
void perf_gen_stress_init(struct perf_gen_stress *s, unsigned modes, uint64_t seed);
/* After the real packet p (len bytes, ssrc) went into a burst: the robustness packets to add
 * (at most GEN_STRESS_XMAX, into x); returns how many. */
unsigned perf_gen_stress_extra(struct perf_gen_stress *s, const uint8_t *p, uint16_t len,
			       uint32_t ssrc, struct perf_gen_xpkt *x);
/* --stress reorder: 1 when a real packet should swap places with the next one of its frame. */
int perf_gen_stress_swap(struct perf_gen_stress *s);
/* The `gen: stress …` line. */
void perf_gen_stress_print(const struct perf_gen_stress *s, FILE *f);

/* ---- perf_gen_mix.c: --mix ---- */
/* Reads the classes of FILE (CSV fps,slo_ms,width,height[,weight], '#' comments, blank
 * lines, an optional header) into o's lists, REGISTER included. 0, or -1 with one line
 * printed (missing file, no classes, more than GEN_LIST_MAX, a bad value). */
int perf_gen_mix_load(struct perf_gen_opts *o, const char *path);
/* The class of the next client by smooth weighted round-robin; cur: n_mix counters, zeroed
 * before the first client. */
unsigned perf_gen_mix_next(const struct perf_gen_opts *o, long *cur);

/* Kernel mode (--udp HOST:PORT): one media + RTCP socket pair per client. Exit status. */
int perf_gen_udp(struct perf_gen_run *r);

#endif
