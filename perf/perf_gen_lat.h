/* perf_gen_lat — shoal-gen's per-frame accounting: what each emulated client sent, which
 * RESULT/DROP/ASSIGN came back for it, end-to-end latency histograms and SLO misses.
 *
 * Every client remembers the send time of its frames (first packet) by RTP timestamp in a
 * ring sized at creation; a RESULT or DROP is matched by (SSRC, rtp_ts). A frame that gets
 * no answer within the loss timeout (1 s, or the client's SLO when longer), or by the end of
 * the drain period, is lost. A frame is missed when no RESULT came within the client's SLO.
 * Nothing here allocates after perf_lat_create().
 */
#ifndef SHOAL_PERF_GEN_LAT_H
#define SHOAL_PERF_GEN_LAT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "dataplane/dp_proto.h"

#define PERF_LAT_SSRC0 0x5000u   /* SSRC of client 0; client i has PERF_LAT_SSRC0 + i */
#define PERF_LAT_TS_STEP 3000u   /* RTP timestamp step per frame (90 kHz at 30 fps) */
#define PERF_LAT_BUCKETS 240     /* 0.1 ms .. 10 s, 5 % wide, plus one above */
#define PERF_LAT_TIMEOUT_NS 1000000000ull
#define PERF_LAT_REG_RETRY_NS 2000000000ull /* REGISTER again until an ASSIGN came */
#define PERF_LAT_REG_KEEP_NS 10000000000ull /* then this often */

struct perf_lat_hist {
	uint64_t n;
	uint32_t b[PERF_LAT_BUCKETS];
};

struct perf_lat_slot {
	uint64_t sent_ns; /* first packet of the frame */
	uint32_t ts;
	uint8_t state; /* enum perf_lat_state */
};

struct perf_lat_client {
	struct perf_lat_slot *ring; /* mask + 1 slots */
	uint32_t head, tail;        /* slot of the frame being sent; oldest maybe-pending slot */
	uint64_t sent, results, late, drops, lost;
	uint64_t next_reg_ns;       /* when to send the next REGISTER (0: none sent yet) */
	uint32_t assigns;           /* ASSIGNs received */
	uint16_t assign_variant, assign_width, assign_height;
	uint8_t assigned;           /* an ASSIGN has come */
	uint32_t rtt_us;            /* smoothed RESULT arrival - last packet - server time */
	uint32_t end_ts;            /* the frame whose last packet went at end_ns */
	uint64_t end_ns;
	uint64_t slo_ns, timeout_ns; /* its SLO, its loss timeout */
	struct perf_lat_hist *hist; /* NULL unless per-client statistics are kept */
	struct perf_lat_hist *group; /* its group's histogram (not owned), or NULL */
};

struct perf_lat {
	unsigned n_clients;
	uint32_t mask;
	struct perf_lat_client *cl;
	struct perf_lat_slot *slots;
	struct perf_lat_hist *hists;
	struct perf_lat_hist hist; /* the whole run */
	uint64_t drops_by_reason[DP_APP_DROP_TOO_LARGE + 1];
	uint64_t assigns, registers_sent, reports_sent, stray, bad;
};

/* Accounting for n_clients clients sending at most fps frames/s each (0: unpaced) with an
 * SLO of slo_ms (the largest of any client's: the rings are sized for it; every client starts
 * with this SLO); per_client keeps one latency histogram per client. NULL when out of memory. */
struct perf_lat *perf_lat_create(unsigned n_clients, double fps, double slo_ms, int per_client);
void perf_lat_destroy(struct perf_lat *l);

/* Client i's own SLO (misses; the loss timeout is 1 s or the SLO when longer), at most the
 * one given to perf_lat_create(), and the histogram its RESULTs' latencies also go to (its
 * group's, owned by the caller; NULL: none). Before its first frame. */
void perf_lat_client_set(struct perf_lat *l, unsigned i, double slo_ms,
			 struct perf_lat_hist *group);

/* Client i starts a frame with timestamp ts (its first packet goes at now). */
void perf_lat_frame_begin(struct perf_lat *l, unsigned i, uint32_t ts, uint64_t now);
/* Client i sent the last packet of the frame it began (at now): it now waits for an answer. */
void perf_lat_frame_end(struct perf_lat *l, unsigned i, uint64_t now);
/* Client i stops in the middle of a frame: that frame is not counted. */
void perf_lat_frame_abandon(struct perf_lat *l, unsigned i);

/* Handles one RTCP datagram received at now. client: the index of the client whose port
 * received it (the SSRC must be that client's), or -1 to find the client by SSRC. Returns
 * the number of shoal messages taken. */
int perf_lat_rtcp_rx(struct perf_lat *l, int client, const uint8_t *buf, size_t len,
		     uint64_t now);

/* Counts the frames that waited longer than the timeout as lost; all != 0 counts every
 * frame still waiting (end of the drain period). */
void perf_lat_sweep(struct perf_lat *l, uint64_t now, int all);

/* Builds client i's REGISTER (JPEG, n_res resolutions) into buf; returns its length. */
ssize_t perf_lat_register_build(uint8_t *buf, size_t cap, unsigned i, uint16_t slo_ms,
				double fps, uint16_t media_port, const struct dp_app_res *res,
				unsigned n_res);

/* Builds client i's REPORT: bw_kbps, its smoothed rtt_us, frames sent, RESULTs received. */
ssize_t perf_lat_report_build(uint8_t *buf, size_t cap, const struct perf_lat *l, unsigned i,
			      uint32_t bw_kbps);

/* Latency (ms) at quantile q (0..1) of h: the bucket's geometric middle; 0 when empty. */
double perf_lat_quantile(const struct perf_lat_hist *h, double q);

/* Totals over all clients. */
struct perf_lat_totals {
	uint64_t sent, results, late, drops, lost, missed;
};
void perf_lat_totals(const struct perf_lat *l, struct perf_lat_totals *t);

/* One line `gen: rtcp …` (registers, reports, assigns, drops by reason, late results,
 * strays). */
void perf_lat_print_rtcp(const struct perf_lat *l, FILE *f);
/* What the per-client CSV says of each client's own stream (its last four columns). */
struct perf_lat_csv_class {
	double fps, slo_ms;
	uint16_t width, height;
};
/* The per-client CSV: client,ssrc,sent,results,drops,lost,missed,p50_ms,p99_ms, then bw_mbps
 * when bw_mbps is not NULL (one value per client), then fps,slo_ms,width,height from cls
 * (one per client); 0 or -errno. */
int perf_lat_write_csv(const struct perf_lat *l, const char *path, const double *bw_mbps,
		       const struct perf_lat_csv_class *cls);

#endif
