/* ctl_srv — private to shoal-server (shoal_server_main.c, ctl_srv_serve.c, ctl_srv_route.c):
 * its options, its running state, and the serving path (dispatcher, executor, control loop,
 * metrics). Uses DPDK through dp.h; not part of ctl.h, which stays pure C. */
#ifndef SHOAL_CTL_SRV_H
#define SHOAL_CTL_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "control/ctl.h"
#include "dataplane/dp.h"
#include "gpu/gpu.h"

#define SRV_NAME "shoal-server"
#define SRV_BURST 32

enum srv_policy {
	SRV_POLICY_ADAPTIVE = 0,  /* the collective scheduler (ctl_sched_solve) */
	SRV_POLICY_STATIC_SMALL,  /* baselines: one fixed variant for everyone */
	SRV_POLICY_STATIC_MID,
	SRV_POLICY_STATIC_LARGE,
};

struct srv_opts {
	char config[256];
	char gpu_pci[32]; /* PCI bus id of the GPU, "" when not given */
	uint32_t ip; /* network byte order */
	int ip_set;
	unsigned media_port, port_id, queues, rx_desc, mbufs, max_clients, slots;
	unsigned slot_bytes, slo_ms, raw_pt, raw_w, raw_h;
	uint8_t raw_format;
	double fps, stats_interval, duration, idle_timeout;
	int sink;
	unsigned decode_workers;
	/* serving */
	char model[16];        /* family: nanodet, centernet */
	char model_file[512];  /* "" = $SHOAL_MODEL_DIR/<model>.onnx or the fetch cache */
	char profile_dir[512]; /* "" = models/profiles/<model>/<backend> of the source tree */
	char backend[8];       /* auto, cpu, cuda */
	char metrics[64];      /* ADDR:PORT, or "off" */
	unsigned threads, instances, max_batch, max_variants, poll_idle_us;
	int exec_cpu;          /* -1: unpinned */
	int policy;            /* enum srv_policy */
	double overhead_ms, period_ms, score_min, guard_ms;
	double headroom;      /* share of the measured capacity the adaptive plan keeps free */
};

/* The least margin the adaptive plan runs with: 1 / (1 - headroom). */
static inline double srv_margin_floor(const struct srv_opts *o)
{
	return 1.0 / (1.0 - o->headroom);
}

struct srv_queue {
	struct dp_ctx *ctx;
	unsigned lcore;
	volatile int *stop; /* the poll lcores' own flag: they stop after the executor drained */
};

struct srv_serve; /* ctl_srv_serve.c */

struct srv {
	struct srv_opts o;
	volatile int *stop;   /* the stop flag (signals, --duration) */
	volatile int poll_stop;
	struct dp_port_info port;
	struct dp_lcore_plan plan;
	struct gpu_staging *staging;
	struct dp_decoder *decoder; /* NULL with --decode-workers 0 */
	struct srv_queue q[DP_LCORE_MAX];
	unsigned nq;
	uint64_t t_start, t_stop;
	uint64_t sink_frames, sink_post_full, sink_left_at_stop;
	struct dp_app_result sink_result; /* zero detections */
	struct srv_serve *sv;             /* serving state, NULL in --sink mode */
};

/* shoal_server_main.c: helpers the serving path shares */
void srv_counters_sum(const struct srv *s, uint64_t tot[DP_CNT__COUNT]);
void srv_stats_line(const struct srv *s, uint64_t now, uint64_t *prev_t,
		    uint64_t prev[DP_CNT__COUNT]);
void srv_mem_kb(long *rss_kb, long *huge_kb);
/* Releases the frames left in every context's consumer ring (after the poll lcores stopped),
 * counting them in s->sink_left_at_stop. */
void srv_rings_release(struct srv *s);

/* ctl_srv_serve.c. Order: srv_serve_open (before the EAL: model, profile, backend, so bad
 * files are refused at once), srv_serve_start (after the contexts: executor, dispatcher
 * thread, metrics listener, scheduler), srv_serve_loop (control thread until *stop),
 * srv_serve_finish (after the poll lcores stopped: drains, final statistics),
 * srv_serve_close. Each returns 0 or -1 with a one-line reason in err. */
int srv_serve_open(struct srv *s, char *err, size_t len);
int srv_serve_start(struct srv *s, char *err, size_t len);
void srv_serve_loop(struct srv *s);
void srv_serve_finish(struct srv *s);
void srv_serve_close(struct srv *s);
/* "cpu" or "cuda": the backend srv_serve_open chose. */
const char *srv_serve_backend(const struct srv *s);
/* TCP port of the metrics endpoint (0 when off). */
uint16_t srv_serve_metrics_port(const struct srv *s);
/* With the poll lcores still running: the dispatcher stops taking frames and the executor
 * answers what it holds (at most 2 s). */
void srv_serve_drain(struct srv *s);
/* The last line of the final statistics (`serve: …`). */
void srv_serve_summary(const struct srv *s);

/* ctl_srv_route.c: the route table the control thread publishes to the dispatcher —
 * client key -> instance (or not served with a reason). One writer (control thread), one
 * reader (dispatcher): two tables; the writer fills the one the reader does not use, swaps a
 * pointer, and refills the other only after the reader acknowledged the swap. */
struct srv_route_entry {
	struct dp_client_key key;
	int16_t instance;  /* -1: not served */
	uint8_t reason;    /* dp_app_drop_reason when instance < 0 */
};
struct srv_routes;
/* Order of client keys (address, port, SSRC): <0, 0, >0. */
int srv_key_cmp(const struct dp_client_key *a, const struct dp_client_key *b);
struct srv_routes *srv_routes_create(unsigned cap);
void srv_routes_destroy(struct srv_routes *r);
/* Writer: 1 when a new table may be written now (the reader acknowledged the last swap). */
int srv_routes_writable(const struct srv_routes *r);
/* Writer: publishes n entries (n <= cap; copied, sorted) with default_instance for clients
 * not listed. -EAGAIN when not writable, -E2BIG when n > cap. */
int srv_routes_publish(struct srv_routes *r, const struct srv_route_entry *e, unsigned n,
		       int default_instance);
/* Reader: acknowledges the newest table and looks key up in it: the instance (>= 0), or -1
 * with *reason set. */
int srv_routes_lookup(struct srv_routes *r, const struct dp_client_key *key, uint8_t *reason);

#endif
