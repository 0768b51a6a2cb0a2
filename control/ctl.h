/* ctl — shoal's collective adaptation scheduler and control-thread interface (DESIGN.md §7).
 *
 * Pure C (no DPDK, no CUDA). Four parts:
 *
 *  1. Profiles: per model variant (input size s) its accuracy, p99 latency per batch size and
 *     the bytes of one frame at that resolution. A documented stand-in profile is built in;
 *     measured profiles are read from models/profiles/<family>/<backend>/{latency,accuracy}.csv.
 *  2. The scheduler: given clients (SLO, fps, bandwidth, wire latency) and a number of
 *     execution slots, choose for every slot a variant and batch and for every client a slot
 *     (hence resolution and frame bytes) or "not served" with a reason. Heuristic: per-slot
 *     0/1 knapsack mapping + simulated annealing over the slots' variants (exhaustive when the
 *     state space is small). An exact MILP reference (GLPK) is in ctl_milp_solve().
 *  3. The control-thread interface: triggers (period, join/leave, bandwidth change) and an
 *     immutable versioned assignment table published by pointer swap with epoch-based
 *     reclamation (see ctl_pub_*).
 *  4. The metrics endpoint: Prometheus text format over HTTP, polled by the control thread
 *     (ctl_metrics_*, ctl_prom_*).
 *
 * Conventions: constructors return a pointer or NULL; other functions return 0 (or a count)
 * on success and -errno on failure. Functions taking `char *err, size_t errlen` write a
 * one-line reason there on failure (err may be NULL). Nothing here keeps global state.
 *
 * Units: milliseconds, frames per second, bytes, megabits per second (1 Mbps = 125,000 B/s).
 */
#ifndef SHOAL_CTL_H
#define SHOAL_CTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CTL_MAX_BATCH    32  /* largest batch size a profile may describe */
#define CTL_MAX_VARIANTS 64  /* most variants in one profile */

/* ---- 1. profiles ------------------------------------------------------------------------ */

struct ctl_variant {
	int size;                    /* input side in pixels (frames are size x size) */
	double accuracy;             /* F1 or mAP in [0, 1] */
	double frame_bytes;          /* bytes of one encoded frame at this size */
	double lat_ms[CTL_MAX_BATCH]; /* lat_ms[b - 1]: p99 latency of a batch of b frames */
};

/* Variants are sorted by size ascending; a valid profile is monotone: accuracy, frame bytes
 * and latency never decrease with size, and latency never decreases with batch size. */
struct ctl_profile {
	int n_variants;
	int max_batch; /* lat_ms[0 .. max_batch-1] are filled */
	struct ctl_variant v[CTL_MAX_VARIANTS];
};

/* The stand-in profile (control/README.md): 17 variants 128..640 step 32,
 * lat[b] = 3.0 + 6.0·b·(s/640)^2 ms, accuracy = (s/640)^0.4, frame bytes = 0.25·s² (2 bits per pixel). */
int ctl_profile_standin(struct ctl_profile *p, int max_batch);
/* 0 when p is usable by the scheduler, else -EINVAL with the first problem in err. */
int ctl_profile_check(const struct ctl_profile *p, char *err, size_t errlen);
/* Forces monotonicity (running maxima over size and batch); returns how many values changed. */
int ctl_profile_make_monotone(struct ctl_profile *p);
/* Reads DIR/latency.csv (header `variant,batch,p50_ms,p99_ms`) and DIR/accuracy.csv (header
 * `variant,f1`). A variant name is its input size or ends in it ("yolov5n_320"). Frame bytes
 * follow the stand-in formula. Batches 1..max_batch must all be present for every variant.
 * Non-monotone measurements are made monotone; returns the number of values changed (>= 0),
 * or -errno with the reason in err. */
int ctl_profile_load(struct ctl_profile *p, const char *dir, int max_batch, char *err,
		     size_t errlen);

/* ---- 2. scheduler ----------------------------------------------------------------------- */

struct ctl_client {
	uint32_t id;
	double slo_ms;  /* end-to-end latency objective */
	double fps;     /* frames per second the client sends */
	double bw_mbps; /* uplink bandwidth estimate */
	double wire_ms; /* one-way wire latency */
	double raw_bpp; /* uncompressed sender: bytes per pixel (1.5 for I420) of its size x size
			 * frames; 0: JPEG, the profile's frame bytes */
};

/* Bytes of one frame of client c at variant m: raw_bpp * size^2, else the profile's. */
double ctl_frame_bytes(const struct ctl_profile *p, const struct ctl_client *c, int m);

struct ctl_params {
	int n_slots;            /* execution slots (model instances that can run at once) */
	int max_batch;          /* largest batch a slot may run (<= profile max_batch) */
	double response_bytes;  /* size of one result message */
	double overhead_ms;     /* server overhead per frame (queueing, decode, copy) */
	uint64_t seed;          /* annealing seed: same seed, same input -> same decision */
	int sa_iters;           /* annealing steps per phase */
	double damping;         /* keep the previous variants unless the gain exceeds this fraction */
	int exact_states;       /* search every variant multiset when there are at most this many */
};

/* Defaults: response 200 B, overhead 2 ms, seed 1, 400 steps, damping 0.01, exact <= 2,000. */
void ctl_params_default(struct ctl_params *p, int n_slots, int max_batch);

enum ctl_reason {
	CTL_REASON_SERVED = 0,
	CTL_REASON_BANDWIDTH, /* the link cannot carry the frames at this fps at any resolution */
	CTL_REASON_SLO,       /* no variant fits the latency budget even alone at batch 1 */
	CTL_REASON_CAPACITY,  /* servable in principle, but the slots are full or at other variants */
	CTL_REASON_INVALID,   /* NaN, zero or negative fps, bandwidth, SLO; negative wire latency */
};
const char *ctl_reason_name(enum ctl_reason r);

struct ctl_slot_assign {
	int variant;     /* index into the profile */
	int batch;       /* smallest batch whose throughput covers load_fps (>= 1) */
	int n_clients;
	double load_fps; /* sum of the fps of the clients mapped here */
	double thr_fps;  /* throughput at that batch: batch·1000 / lat */
};

struct ctl_client_assign {
	uint32_t id;
	enum ctl_reason reason;
	int slot;           /* -1 when not served */
	int variant;        /* -1 when not served */
	int size;           /* resolution to send, 0 when not served */
	double frame_bytes; /* target encoded frame size, 0 when not served */
	double budget_ms;   /* compute budget at that variant */
};

struct ctl_decision {
	int cap_slots, cap_clients; /* array capacities (set by ctl_decision_create) */
	int n_slots, n_clients;
	struct ctl_slot_assign *slots;
	struct ctl_client_assign *clients; /* same order as the input clients */
	double objective;   /* sum(accuracy·fps of served) / sum(fps of valid clients); 0..1 */
	double value;       /* sum(accuracy·fps of served) */
	double init_value;  /* value of the state the search started from */
	double served_fps, total_fps;
	int evaluations;    /* mappings computed (memo misses) */
	int exhaustive;     /* 1 when every variant multiset was examined */
};

struct ctl_decision *ctl_decision_create(int max_slots, int max_clients);
void ctl_decision_destroy(struct ctl_decision *d);
/* Verifies d against the constraints (each client at most once, budget >= 2·lat[batch] for
 * every mapped client, load <= throughput, reasons consistent, objective recomputed).
 * 0 or -EINVAL with the violated constraint in err. */
int ctl_decision_check(const struct ctl_profile *p, const struct ctl_client *c, int n,
		       const struct ctl_params *prm, const struct ctl_decision *d, char *err,
		       size_t errlen);
/* Compute budget of client c on variant m (DESIGN.md §7); 0 when the link is too slow. */
double ctl_budget_ms(const struct ctl_profile *p, const struct ctl_client *c, int m,
		     const struct ctl_params *prm);

struct ctl_sched; /* opaque: scratch memory sized at creation, memo table */

struct ctl_sched *ctl_sched_create(int max_slots, int max_clients);
void ctl_sched_destroy(struct ctl_sched *s);
/* Decides. prev (may be NULL) is the previous decision: the search starts from its variants
 * and keeps them unless the gain exceeds prm->damping. Clients with bad numbers are reported
 * CTL_REASON_INVALID. Returns 0, or -EINVAL (bad profile/params, too many slots/clients for
 * s or out; reason in ctl_sched_error()). */
int ctl_sched_solve(struct ctl_sched *s, const struct ctl_profile *p, const struct ctl_client *c,
		    int n, const struct ctl_params *prm, const struct ctl_decision *prev,
		    struct ctl_decision *out);
const char *ctl_sched_error(const struct ctl_sched *s);

/* Exact reference (GLPK). Equivalent compact MILP (control/README.md): x[s,c,m], z[s,m,b].
 * seed (may be NULL) is a feasible decision: its objective is added as a lower-bound row,
 * which only prunes (the optimum is at least that); found = 0 then means "nothing better".
 * -ENOTSUP when built without GLPK. */
/* Lexicographic like the heuristic: served fps is maximised first, then the objective with the
 * served fps held. When stage 1 is not proven within the time limit, stage 2 holds the served
 * fps found, and bound is the accuracy bound given that. */
struct ctl_milp_result {
	double served;    /* served fps / sum fps of valid clients, 0..1 (stage 1) */
	double objective; /* best found, same scale as ctl_decision.objective (stage 2) */
	int proven;       /* 1 when GLPK proved optimality within the time limit */
	int found;        /* 1 when an integer solution is known */
	double bound;     /* upper bound on the optimum (= objective when proven) */
	double seconds;
	int n_cols, n_rows;
};
int ctl_milp_solve(const struct ctl_profile *p, const struct ctl_client *c, int n,
		   const struct ctl_params *prm, double time_limit_s,
		   const struct ctl_decision *seed, struct ctl_milp_result *res);
int ctl_milp_available(void);

/* ---- 3. control-thread interface -------------------------------------------------------- */

enum ctl_trigger_bits {
	CTL_TRIG_PERIOD = 1u << 0,
	CTL_TRIG_JOIN = 1u << 1,
	CTL_TRIG_LEAVE = 1u << 2,
	CTL_TRIG_BANDWIDTH = 1u << 3,
	CTL_TRIG_FIRST = 1u << 4,
};

struct ctl_trigger; /* remembers the snapshot of the last decision */

/* period_ms: re-plan at least this often (e.g. 500); bw_rel: a client's bandwidth moving by
 * more than this fraction of its last planned value (e.g. 0.2) re-plans at once. */
struct ctl_trigger *ctl_trigger_create(int max_clients, double period_ms, double bw_rel);
void ctl_trigger_destroy(struct ctl_trigger *t);
/* Returns a mask of ctl_trigger_bits (0: nothing to do). When non-zero the snapshot becomes
 * the new reference. -EINVAL when n exceeds max_clients. */
int ctl_trigger_check(struct ctl_trigger *t, double now_ms, const struct ctl_client *c, int n);

/* The immutable table readers see. */
struct ctl_table {
	uint64_t version; /* 1, 2, 3 ... in publish order */
	int n_slots, n_clients;
	const struct ctl_slot_assign *slots;
	const struct ctl_client_assign *clients;
	double objective;
};

/* Publisher/readers. One publisher thread; max_readers reader threads, each using its own
 * index 0..max_readers-1. Tables come from a pool of `pool` preallocated tables (0: default
 * 2·max_readers + 2); nothing is allocated after creation.
 *
 * Reclamation is epoch based: a reader announces the global epoch before loading the table
 * pointer and clears the announcement on release; the publisher swaps the pointer, advances
 * the epoch and retires the old table with that epoch; a retired table is reused once every
 * reader is quiescent or announced an epoch at least as new as its retirement. All of it is
 * C11 seq_cst atomics: no locks, no waiting on either side. */
struct ctl_pub;

struct ctl_pub *ctl_pub_create(int max_readers, int max_slots, int max_clients, int pool);
void ctl_pub_destroy(struct ctl_pub *pb); /* only after all readers released */
/* Copies d into a free table and makes it current. 0, -EAGAIN (every table still pinned by a
 * reader: try again next round), -EINVAL (d larger than the table capacity). */
int ctl_pub_publish(struct ctl_pub *pb, const struct ctl_decision *d);
/* The current table (NULL before the first publish), valid until ctl_pub_release(). A reader
 * must release before acquiring again. */
const struct ctl_table *ctl_pub_acquire(struct ctl_pub *pb, int reader);
void ctl_pub_release(struct ctl_pub *pb, int reader);
/* Version of the current table (0 before the first publish). */
uint64_t ctl_pub_version(const struct ctl_pub *pb);

/* Control step: trigger check, solve warm-started from the last decision, publish.
 * Returns the trigger mask when a new table was published, 0 when nothing was due, -errno. */
struct ctl_ctrl;
struct ctl_ctrl *ctl_ctrl_create(const struct ctl_profile *p, const struct ctl_params *prm,
				 int max_clients, int max_readers, double period_ms, double bw_rel);
void ctl_ctrl_destroy(struct ctl_ctrl *cc);
int ctl_ctrl_step(struct ctl_ctrl *cc, double now_ms, const struct ctl_client *c, int n);
struct ctl_pub *ctl_ctrl_pub(struct ctl_ctrl *cc);

/* ---- instances (the shoal-sched file format and random draws) --------------------------- */

/* Line-oriented text, one directive per line, '#' starts a comment (control/README.md):
 *   slots N | max_batch B | response_bytes X | overhead_ms X | seed N
 *   profile standin | profile dir PATH
 *   variant SIZE ACCURACY FRAME_BYTES LAT_B1 ... LAT_Bmax     (replaces the stand-in)
 *   client ID SLO_MS FPS BW_MBPS WIRE_MS
 * Returns 0 or -errno with "FILE:LINE: problem" in err; *clients is malloc'd (free() it). */
int ctl_instance_read(const char *path, struct ctl_profile *p, struct ctl_params *prm,
		      struct ctl_client **clients, int *n, char *err, size_t errlen);

/* Random instance like the published evaluation: SLO in {75,100,150} ms, fps in {10,15,25},
 * bandwidth uniform 7.5-50 Mbps, wire latency uniform 1-5 ms. *rng is advanced. */
void ctl_instance_random(uint64_t *rng, struct ctl_client *c, int n);
/* splitmix64 step: the generator used everywhere here. */
uint64_t ctl_rng_next(uint64_t *state);

/* ---- 4. metrics endpoint ---------------------------------------------------------------- */

/* Prometheus text exposition format 0.0.4 (DESIGN.md §8), served over HTTP/1.1 by the control
 * thread: a kernel TCP socket polled by ctl_metrics_poll(), no threads of its own.
 *
 * The text builder writes whole lines into a bounded buffer. A line that does not fit is
 * dropped together with everything after it, so the text always ends at a complete line;
 * ctl_prom_finish() then appends the comment line "# truncated". Room for that line is kept
 * back, so the finished text never exceeds the buffer. Names and label lists are copied as
 * given (the caller keeps them valid: [a-zA-Z_:][a-zA-Z0-9_:]*, values escaped with
 * ctl_prom_escape()); help texts are escaped here. Numbers: integral values print as integers
 * ("12", not "1.2e+01"), others with the fewest digits that read back exactly (at most 17);
 * NaN, +Inf and -Inf as Prometheus spells them. Nothing here allocates. */
struct ctl_prom {
	char *buf;     /* cap bytes: the text so far, always NUL-terminated (when cap > 0) */
	size_t cap;
	size_t len;    /* bytes of text, complete lines only */
	int truncated; /* a line did not fit: it and everything after it were dropped */
};

/* Starts an empty text in buf[0 .. cap-1]. */
void ctl_prom_init(struct ctl_prom *b, char *buf, size_t cap);
/* Appends "# truncated\n" when a line was dropped; returns the final length. */
size_t ctl_prom_finish(struct ctl_prom *b);
/* Family header, once per metric name: "# HELP name help\n# TYPE name type\n";
 * type is "counter", "gauge" or "histogram" (help may be NULL: no HELP line). */
void ctl_prom_family(struct ctl_prom *b, const char *name, const char *type, const char *help);
/* One sample "name{labels} value\n"; labels is a label list without braces, e.g.
 * client="10.0.0.2:5004/0x1234",instance="0", or NULL/"" for none. */
void ctl_prom_sample(struct ctl_prom *b, const char *name, const char *labels, double v);
/* Histogram samples: name_bucket{labels,le="bound"} with the cumulative count for each of the
 * n bounds (ascending), then le="+Inf", name_sum{labels} and name_count{labels}. counts has
 * n + 1 entries, one per bucket (not cumulative), the last counting values above every bound. */
void ctl_prom_histogram(struct ctl_prom *b, const char *name, const char *labels,
			const double *bounds, const uint64_t *counts, int n, double sum);
/* Escapes a label value (backslash, double quote, newline) into dst (NUL-terminated).
 * Returns the length written or -ENOSPC when dst (cap bytes) is too small. */
int ctl_prom_escape(char *dst, size_t cap, const char *s);

/* The HTTP endpoint. GET /metrics (and HEAD) answers 200 with Content-Type
 * "text/plain; version=0.0.4; charset=utf-8", Content-Length and Connection: close, the body
 * built by one call of render(arg, out) per request; GET / gives a short text index; other
 * paths 404, other methods 405, malformed requests 400, request headers over 8 KiB 431.
 * Connections beyond max_conns get a 503 and are closed. A connection whose request is not
 * complete within the idle timeout (default 5 s), or whose response makes no progress for
 * that long, is closed. One response per connection; large bodies go out non-blocking across
 * calls. Every buffer is allocated by ctl_metrics_create(): per connection an 8 KiB request
 * buffer and a max_body body buffer (pages are touched only as bodies grow); nothing is
 * allocated per request. */
struct ctl_metrics;

struct ctl_metrics_stats {
	uint64_t requests;        /* complete requests read (any status) */
	uint64_t responses_2xx;   /* responses sent completely, by class */
	uint64_t responses_4xx;
	uint64_t truncated;       /* /metrics bodies cut at max_body ("# truncated") */
	uint64_t conns_accepted;  /* connections given a slot */
	uint64_t conns_refused;   /* connections over max_conns (503, closed) */
	uint64_t conns_timed_out; /* closed for an incomplete request or a stalled response */
};

/* Listens on addr (numeric IPv4 or IPv6: "127.0.0.1", "0.0.0.0", "::1"; NULL = "0.0.0.0")
 * and port (0: a free one, see ctl_metrics_port()). A /metrics body holds at most max_body
 * bytes (at least 64); at most max_conns (1..1024) connections are served at once.
 * NULL with a one-line reason in err (bad address, port in use, ...). */
struct ctl_metrics *ctl_metrics_create(const char *addr, uint16_t port, size_t max_body,
				       int max_conns, char *err, size_t errlen);
void ctl_metrics_destroy(struct ctl_metrics *m);
uint16_t ctl_metrics_port(const struct ctl_metrics *m);
/* Idle/incomplete timeout in ms (> 0; default 5000). 0 or -EINVAL. */
int ctl_metrics_set_idle_timeout(struct ctl_metrics *m, int timeout_ms);
/* Serves: waits at most timeout_ms (0: not at all) in poll(2) on the listening and client
 * sockets, then accepts, reads, answers and writes what the sockets take, and closes timed-out
 * connections. render may be NULL (empty body). Returns the number of responses completed in
 * this call, or -errno (-EINVAL for a negative timeout). */
int ctl_metrics_poll(struct ctl_metrics *m, int timeout_ms,
		     void (*render)(void *arg, struct ctl_prom *out), void *arg);
void ctl_metrics_stats_get(const struct ctl_metrics *m, struct ctl_metrics_stats *out);

#ifdef __cplusplus
}
#endif
#endif
