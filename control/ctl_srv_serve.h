/* ctl_srv_serve — state of shoal-server's serving path, shared by ctl_srv_serve.c (open,
 * dispatcher, executor completion, start/stop), ctl_srv_plan.c (the control thread: clients,
 * scheduler, instances, routes, ASSIGN) and ctl_srv_metrics.c (metrics, statistics lines).
 * Private to shoal-server. */
#ifndef SHOAL_CTL_SRV_SERVE_H
#define SHOAL_CTL_SRV_SERVE_H

#include <pthread.h>
#include <stdatomic.h>

#include "control/ctl_srv.h"

#define SRV_CONTROL_TICK_NS 20000000ull   /* the control thread looks at clients every 20 ms */
#define SRV_ASSIGN_REFRESH_NS 2000000000ull /* ASSIGN repeated this often to each client */
#define SRV_PREPARE_WAIT_NS 5000000000ull /* a plan waits at most this long for its variants */

/* A frame handed to the executor, by staging slot (a slot holds one frame at a time). */
struct srv_inflight {
	struct dp_frame f;
	uint16_t q; /* queue (context) it came from */
};

/* What the control thread knows of one client across ticks (sorted by key). */
struct srv_known {
	struct dp_client_key key;
	uint32_t id;          /* stable scheduler id */
	uint16_t q;           /* its context */
	uint8_t managed;      /* registered: gets ASSIGN */
	uint8_t have_assign;  /* an assignment was decided for it */
	int16_t instance;     /* -1: not served */
	uint16_t size;        /* variant input side (0: not served) */
	uint8_t reason;       /* enum ctl_reason */
	uint8_t assign_dirty; /* assignment changed since the last ASSIGN */
	uint8_t refused;      /* admission state told to the data plane (DROP reason, 0: in) */
	uint64_t last_assign_ns;
	double frame_bytes;
	uint32_t snap_idx;    /* this tick: index into snap[] */
	struct dp_client_stats st; /* its statistics at the last tick */
};

#define SRV_GONE_MAX 4096 /* clients that left, kept for the final statistics (the latest) */

struct srv_serve {
	/* model, backend, profile (srv_serve_open) */
	struct mdl_graph *g;
	struct gpu_backend *be;
	struct gpu_family *fam;
	struct gpu_post post;
	struct gpu_norm norm;
	char backend[8];
	char model_path[600], profile_path[600];
	struct ctl_profile prof;   /* as loaded */
	struct ctl_profile scaled; /* latencies times the executor's correction ratio */
	double ratio;              /* the ratio used for the last plan */
	double margin;             /* safety factor on it, following the late frames (>= 1) */
	uint64_t m_late, m_total;  /* executor late / finished frames at the last plan */
	int share;                 /* instances in use the last plan shared the device among */
	struct ctl_params prm;
	/* executor, dispatcher */
	struct gpu_exec *ex;
	struct srv_routes *routes;
	struct srv_inflight *infl; /* by staging slot */
	pthread_t disp;
	atomic_int disp_stop;
	int disp_started;
	struct dp_app_result result; /* executor thread's scratch */
	atomic_ullong dispatched, served, not_routed, post_full;
	atomic_ullong not_run[6];   /* by enum gpu_exec_status */
	atomic_uint warm_done;      /* start-up calibration frames done */
	/* control thread */
	unsigned cap_clients;
	struct dp_client_snapshot *snap;
	unsigned *snap_q;
	struct ctl_client *cl;
	struct srv_known *reg[2]; /* reg[cur] sorted by key */
	unsigned n_reg, cur_reg;
	uint32_t next_id;
	struct srv_known *gone;  /* ring of SRV_GONE_MAX clients that left */
	uint64_t n_gone;         /* ever */
	struct srv_route_entry *route_tmp;
	struct dp_client_key *plan_keys; /* key of each client of the pending decision */
	struct dp_client_key *keys_now;  /* key of each entry of cl[] (registry order) */
	struct ctl_sched *sched;
	struct ctl_trigger *trig;
	struct ctl_decision *dec[2];
	struct ctl_decision *dec_try; /* a second solve with a smaller device share */
	struct ctl_decision *dec_alt; /* the plan without the margin */
	struct ctl_decision *dec_mid; /* a plan at a smaller margin that serves as much */
	int last;         /* index of the applied decision, -1 none */
	int pending;      /* dec[1 - last] (or dec[0]) waits for its variants */
	int pend_idx;
	int routes_dirty; /* routes of the applied decision not yet published */
	uint64_t pending_since;
	uint64_t plans, plans_applied, assigns_sent, assign_full, plan_errors;
	uint32_t epoch;   /* ASSIGN epoch: plans applied */
	double solve_ms_last, solve_ms_max;
	struct ctl_metrics *metrics;
	char summary[512];
};

/* ctl_srv_plan.c (control thread) */
/* Reads every context's snapshot and rebuilds the client registry (clients that left go to
 * the gone ring); fills cl[] for the scheduler. Returns the number of clients. */
unsigned srv_clients_gather(struct srv *s);
/* Solves for the current clients (first = 1: the start-up plan, no clients) into the pending
 * decision and asks the executor to prepare its variants. 0 or -1. */
int srv_control_plan(struct srv *s, double now_ms, int first);
/* Applies the pending decision once its variants are ready (or after SRV_PREPARE_WAIT_NS):
 * instances, routes, ASSIGN. */
void srv_control_apply_when_ready(struct srv *s, uint64_t now);
/* One control round: snapshots, triggers, plan, apply, ASSIGN refresh. */
void srv_control_tick(struct srv *s, uint64_t now);

/* ctl_srv_metrics.c */
void srv_metrics_render(void *arg, struct ctl_prom *out);
void srv_serve_stats_line(const struct srv *s);
/* Prints the client and instance lines; keeps the summary line for srv_serve_summary. */
void srv_serve_final_stats(struct srv *s);



#endif
