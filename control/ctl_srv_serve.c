/* ctl_srv_serve — shoal-server's serving path (DESIGN.md §1, §6, §7, §8).
 *
 *   poll lcores --frames--> dispatcher thread --gpu_exec_submit--> executor thread
 *        ^                    (route table)                         (EDF batches)
 *        |                                                               |
 *        +------- RESULT / DROP posted by the executor's done() ---------+
 *
 * The control thread (main lcore, srv_serve_loop) reads every context's client snapshot,
 * runs the scheduler when a trigger fires (period, join, leave, bandwidth change) on the
 * profile corrected by the executor's measured/profiled ratio, asks the executor to prepare
 * the chosen variants, and once they are ready switches the instances, publishes the routes
 * and sends ASSIGN to the registered clients whose assignment changed. It also answers the
 * metrics endpoint (ctl_srv_metrics.c) and prints the periodic statistics. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/ctl_srv.h"
#include "control/ctl_srv_serve.h"

/* ---- opening: model, profile, backend ------------------------------------------------------ */
static void srv_default_profile_dir(const struct srv_opts *o, const char *backend, char *out,
				    size_t len)
{
	const char *root = getenv("SHOAL_PROFILE_ROOT");
	if (!root || !*root)
		root = SHOAL_PROFILE_ROOT;
	snprintf(out, len, "%s/%s/%s", root, o->model, backend);
}

int srv_serve_open(struct srv *s, char *err, size_t len)
{
	struct srv_serve *sv = calloc(1, sizeof(*sv));
	if (!sv) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	s->sv = sv;
	const struct srv_opts *o = &s->o;
	char path[600], why[400];
	if (o->model_file[0])
		snprintf(path, sizeof(path), "%s", o->model_file);
	else
		mdl_zoo_path(o->model, path, sizeof(path));
	if (access(path, R_OK) != 0) {
		snprintf(err, len, "model %s: %s: %s%s", o->model, path, strerror(errno),
			 o->model_file[0] ? "" : " (run scripts/fetch-models.sh, or give --model-file)");
		return -1;
	}
	sv->g = mdl_graph_load(path, why, sizeof(why));
	if (!sv->g) {
		snprintf(err, len, "model %s: %s", path, why);
		return -1;
	}
	/* backend */
	int want_cuda = !strcmp(o->backend, "cuda");
	if (!strcmp(o->backend, "auto") && gpu_cuda_device_count(NULL, 0) > 0)
		want_cuda = 1;
	if (want_cuda) {
		sv->be = gpu_backend_cuda_create(0, 1, why, sizeof(why));
		if (!sv->be && !strcmp(o->backend, "cuda")) {
			snprintf(err, len, "--backend cuda: %s", why);
			return -1;
		}
		if (!sv->be)
			fprintf(stderr, SRV_NAME ": CUDA backend unusable (%s): using the CPU\n", why);
	}
	if (!sv->be) {
		sv->be = gpu_backend_cpu_create((int)o->threads, why, sizeof(why));
		if (!sv->be) {
			snprintf(err, len, "CPU backend: %s", why);
			return -1;
		}
	}
	snprintf(sv->backend, sizeof(sv->backend), "%s", gpu_backend_name(sv->be));
	sv->fam = gpu_family_load(sv->be, sv->g, why, sizeof(why));
	if (!sv->fam) {
		snprintf(err, len, "model %s: %s", path, why);
		return -1;
	}
	int centernet = !strcmp(o->model, "centernet");
	if (gpu_post_init(&sv->post, sv->g, centernet ? GPU_HEAD_CENTERNET : GPU_HEAD_NANODET,
			  (float)o->score_min, 0.5f, why, sizeof(why))) {
		snprintf(err, len, "model %s is not a %s detector: %s", path, o->model, why);
		return -1;
	}
	/* models/zoo/README.md: nanodet x = rgb / 255, centernet x = rgb (std = 1/255) */
	float sd = centernet ? 1.0f / 255.0f : 1.0f;
	sv->norm = (struct gpu_norm){{0, 0, 0}, {sd, sd, sd}, 0};
	/* profile */
	char dir[600];
	if (o->profile_dir[0]) {
		snprintf(dir, sizeof(dir), "%s", o->profile_dir);
	} else {
		srv_default_profile_dir(o, sv->backend, dir, sizeof(dir));
		char probe[700];
		snprintf(probe, sizeof(probe), "%s/latency.csv", dir);
		if (access(probe, R_OK) != 0 && strcmp(sv->backend, "cpu") != 0) {
			/* no profile measured on this backend yet: the CPU one gives the shape
			 * (relative cost of variants and batches); the executor's measured ratio
			 * corrects the level online, and the calibration frames before the first plan */
			srv_default_profile_dir(o, "cpu", dir, sizeof(dir));
			fprintf(stderr, SRV_NAME ": no %s profile for %s: using %s, corrected online "
					"(shoal-profile --backend %s measures one)\n", sv->backend,
				o->model, dir, sv->backend);
		}
	}
	int rc = ctl_profile_load(&sv->prof, dir, (int)o->max_batch, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, len, "profile %s: %s", dir, why);
		return -1;
	}
	snprintf(sv->profile_path, sizeof(sv->profile_path), "%s", dir);
	snprintf(sv->model_path, sizeof(sv->model_path), "%s", path);
	return 0;
}

const char *srv_serve_backend(const struct srv *s)
{
	return s->sv ? s->sv->backend : "none";
}

/* ---- executor completion: RESULT or DROP, slot released ------------------------------------ */
static uint8_t srv_drop_reason(int status)
{
	switch (status) {
	case GPU_EXEC_LATE: return DP_APP_DROP_LATE;
	case GPU_EXEC_NO_INSTANCE: return DP_APP_DROP_NOT_SERVED;
	case GPU_EXEC_FAILED: return DP_APP_DROP_BAD_FRAME;
	default: return DP_APP_DROP_OVERLOAD; /* overload, stopped */
	}
}

static uint16_t srv_u16(float v, float hi)
{
	if (!(v > 0))
		return 0;
	return (uint16_t)(v > hi ? hi : v + 0.5f);
}

#define SRV_WARMUP_FLAG (1ull << 63) /* user value of a start-up calibration frame */

static void srv_exec_done(void *arg, const struct gpu_exec_done *d)
{
	struct srv *s = arg;
	struct srv_serve *sv = s->sv;
	if (d->user & SRV_WARMUP_FLAG) {
		atomic_fetch_add_explicit(&sv->warm_done, 1, memory_order_release);
		return;
	}
	uint32_t slot = (uint32_t)d->user;
	struct srv_inflight *in = &sv->infl[slot];
	struct dp_ctx *ctx = s->q[in->q].ctx;
	const struct dp_frame *f = &in->f;
	if (d->status == GPU_EXEC_DONE) {
		struct dp_app_result *r = &sv->result; /* executor thread only */
		r->rtp_ts = f->rtp_ts;
		r->variant = (uint16_t)d->size;
		int n = d->n_det < DP_APP_MAX_DET ? d->n_det : DP_APP_MAX_DET;
		for (int i = 0; i < n; i++) {
			const struct gpu_det *g = &d->det[i];
			r->det[i] = (struct dp_app_det){
				.cls = (uint16_t)(g->cls < 0 ? 0 : g->cls),
				.score = srv_u16(g->score * 65535.0f, 65535.0f),
				.x = srv_u16(g->x0, 65535.0f),
				.y = srv_u16(g->y0, 65535.0f),
				.w = srv_u16(g->x1 - g->x0, 65535.0f),
				.h = srv_u16(g->y1 - g->y0, 65535.0f),
			};
		}
		r->n_det = (uint16_t)n;
		uint64_t now = dp_now_ns();
		r->server_us = (uint32_t)(now > f->complete_ns ? (now - f->complete_ns) / 1000 : 0);
		if (dp_result_post(ctx, f, r) != 0)
			atomic_fetch_add_explicit(&sv->post_full, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sv->served, 1, memory_order_relaxed);
	} else {
		if (dp_drop_post(ctx, f, srv_drop_reason(d->status)) != 0)
			atomic_fetch_add_explicit(&sv->post_full, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sv->not_run[d->status < 6 ? d->status : 0], 1,
					  memory_order_relaxed);
	}
	dp_frame_release(ctx, f);
}

/* ---- dispatcher thread: frames -> routes -> executor --------------------------------------- */
static int srv_frame_image(const struct srv *s, const struct dp_frame *f, struct gpu_image *im)
{
	const uint8_t *base = gpu_staging_slot(s->staging, f->slot) + f->offset;
	int w = f->width, h = f->height;
	memset(im, 0, sizeof(*im));
	im->width = w;
	im->height = h;
	im->full_range = f->full_range;
	switch (f->format) {
	case DP_FRAME_RAW420:
		im->fmt = GPU_PIX_I420;
		im->plane[0] = base;
		im->plane[1] = base + (size_t)w * h;
		im->plane[2] = im->plane[1] + (size_t)(w / 2) * (h / 2);
		im->stride[0] = w;
		im->stride[1] = im->stride[2] = w / 2;
		return 0;
	case DP_FRAME_RAW422:
		im->fmt = GPU_PIX_UYVY;
		im->plane[0] = base;
		im->stride[0] = 2 * w;
		return 0;
	case DP_FRAME_RAWRGB:
		im->fmt = GPU_PIX_RGB24;
		im->plane[0] = base;
		im->stride[0] = 3 * w;
		return 0;
	default:
		return -EINVAL; /* undecoded JPEG: serving needs the decode workers */
	}
}

static void srv_dispatch_one(struct srv *s, unsigned qi, const struct dp_frame *f)
{
	struct srv_serve *sv = s->sv;
	struct dp_ctx *ctx = s->q[qi].ctx;
	uint8_t reason = DP_APP_DROP_NOT_SERVED;
	int inst = srv_routes_lookup(sv->routes, &f->client, &reason);
	struct gpu_exec_frame ef;
	if (inst < 0 || srv_frame_image(s, f, &ef.img) != 0) {
		if (inst >= 0)
			reason = DP_APP_DROP_BAD_FRAME;
		if (dp_drop_post(ctx, f, reason) != 0)
			atomic_fetch_add_explicit(&sv->post_full, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sv->not_routed, 1, memory_order_relaxed);
		dp_frame_release(ctx, f);
		return;
	}
	sv->infl[f->slot].f = *f;
	sv->infl[f->slot].q = (uint16_t)qi;
	ef.arrival_ns = f->arrival_ns;
	ef.deadline_ns = f->deadline_ns;
	ef.user = f->slot;
	ef.instance = inst;
	gpu_exec_submit(sv->ex, &ef); /* on -ENOBUFS done() already answered and released it */
	atomic_fetch_add_explicit(&sv->dispatched, 1, memory_order_relaxed);
}

static void *srv_dispatch_main(void *arg)
{
	struct srv *s = arg;
	struct srv_serve *sv = s->sv;
	struct dp_frame fr[SRV_BURST];
	while (!atomic_load_explicit(&sv->disp_stop, memory_order_acquire)) {
		unsigned got = 0;
		for (unsigned i = 0; i < s->nq; i++) {
			unsigned n = dp_frames_dequeue(s->q[i].ctx, fr, SRV_BURST);
			for (unsigned j = 0; j < n; j++)
				srv_dispatch_one(s, i, &fr[j]);
			got += n;
		}
		if (!got) { /* idle: the poll lcore or the executor may share this core */
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---- start ------------------------------------------------------------------------------------ */
/* Start-up calibration: 2 x max_batch grey frames through instance 0 with distant deadlines.
 * Their batches give the executor its first measured/profiled ratio, so the first plan with
 * clients already uses this machine's speed (the profile may come from another machine or
 * thread count), and the first client frames do not pay for cold caches. */
static int srv_warmup(struct srv *s, char *err, size_t len)
{
	struct srv_serve *sv = s->sv;
	uint32_t slot;
	if (gpu_staging_get(s->staging, &slot) != 0) {
		snprintf(err, len, "calibration: no staging slot");
		return -1;
	}
	const int w = 320, h = 240;
	uint8_t *p = gpu_staging_slot(s->staging, slot);
	memset(p, 128, (size_t)w * h * 3 / 2);
	struct gpu_exec_frame ef;
	memset(&ef, 0, sizeof(ef));
	ef.img = (struct gpu_image){.fmt = GPU_PIX_I420, .width = w, .height = h,
				    .plane = {p, p + w * h, p + w * h + w * h / 4},
				    .stride = {w, w / 2, w / 2}, .full_range = 1};
	int n = 2 * (int)s->o.max_batch;
	uint64_t now = dp_now_ns();
	for (int i = 0; i < n; i++) {
		ef.arrival_ns = now;
		ef.deadline_ns = now + 60000000000ull;
		ef.user = SRV_WARMUP_FLAG | (uint64_t)i;
		ef.instance = 0;
		gpu_exec_submit(sv->ex, &ef);
	}
	for (int t = 0; t < 6000 && atomic_load(&sv->warm_done) < (unsigned)n; t++) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	int ok = atomic_load(&sv->warm_done) >= (unsigned)n;
	gpu_staging_put(s->staging, slot);
	if (!ok) {
		snprintf(err, len, "calibration: %d frames not done after 60 s", n);
		return -1;
	}
	return 0;
}

int srv_serve_start(struct srv *s, char *err, size_t len)
{
	struct srv_serve *sv = s->sv;
	const struct srv_opts *o = &s->o;
	unsigned nslots = gpu_staging_slot_count(s->staging);
	sv->infl = calloc(nslots, sizeof(*sv->infl));
	sv->cap_clients = s->nq * o->max_clients;
	sv->snap = calloc(sv->cap_clients, sizeof(*sv->snap));
	sv->snap_q = calloc(sv->cap_clients, sizeof(*sv->snap_q));
	sv->cl = calloc(sv->cap_clients, sizeof(*sv->cl));
	sv->reg[0] = calloc(sv->cap_clients, sizeof(struct srv_known));
	sv->reg[1] = calloc(sv->cap_clients, sizeof(struct srv_known));
	sv->route_tmp = calloc(sv->cap_clients, sizeof(*sv->route_tmp));
	sv->plan_keys = calloc(sv->cap_clients, sizeof(*sv->plan_keys));
	sv->gone = calloc(SRV_GONE_MAX, sizeof(*sv->gone));
	sv->keys_now = calloc(sv->cap_clients, sizeof(*sv->keys_now));
	sv->routes = srv_routes_create(sv->cap_clients);
	sv->sched = ctl_sched_create((int)o->instances, (int)sv->cap_clients);
	sv->trig = ctl_trigger_create((int)sv->cap_clients, o->period_ms, 0.2);
	sv->dec[0] = ctl_decision_create((int)o->instances, (int)sv->cap_clients);
	sv->dec[1] = ctl_decision_create((int)o->instances, (int)sv->cap_clients);
	sv->dec_try = ctl_decision_create((int)o->instances, (int)sv->cap_clients);
	sv->dec_alt = ctl_decision_create((int)o->instances, (int)sv->cap_clients);
	sv->dec_mid = ctl_decision_create((int)o->instances, (int)sv->cap_clients);
	if (!sv->infl || !sv->snap || !sv->snap_q || !sv->cl || !sv->reg[0] || !sv->reg[1] ||
	    !sv->route_tmp || !sv->gone || !sv->plan_keys || !sv->keys_now || !sv->routes ||
	    !sv->sched || !sv->trig || !sv->dec[0] || !sv->dec[1] || !sv->dec_try ||
	    !sv->dec_alt || !sv->dec_mid) {
		snprintf(err, len, "out of memory for %u clients", sv->cap_clients);
		return -1;
	}
	sv->last = -1;
	sv->margin = srv_margin_floor(o);
	ctl_params_default(&sv->prm, (int)o->instances, (int)o->max_batch);
	sv->prm.overhead_ms = o->overhead_ms;
	/* executor */
	struct gpu_exec_config ec;
	gpu_exec_config_defaults(&ec);
	ec.name = sv->backend;
	ec.backend = sv->be;
	ec.family = sv->fam;
	ec.post = &sv->post;
	ec.norm = sv->norm;
	ec.n_instances = (int)o->instances;
	ec.max_batch = (int)o->max_batch;
	ec.max_variants = (int)o->max_variants;
	ec.max_det = DP_APP_MAX_DET < 100 ? DP_APP_MAX_DET : 100;
	ec.queue_size = nslots;
	unsigned ring = 64;
	while (ring < nslots)
		ring <<= 1;
	ec.ring_size = ring;
	ec.profile.n_sizes = sv->prof.n_variants < GPU_EXEC_MAX_SIZES ? sv->prof.n_variants
								      : GPU_EXEC_MAX_SIZES;
	for (int i = 0; i < ec.profile.n_sizes; i++) {
		ec.profile.size[i] = sv->prof.v[i].size;
		for (int b = 0; b < (int)o->max_batch && b < GPU_EXEC_MAX_BATCH; b++)
			ec.profile.lat_ms[i][b] = sv->prof.v[i].lat_ms[b];
	}
	ec.cpu = o->exec_cpu;
	ec.guard_ms = o->guard_ms;
	/* the CPU backend prepares a variant while others run: frames keep flowing meanwhile */
	ec.prepare_async = !strcmp(sv->backend, "cpu");
	ec.now_ns = dp_now_ns;
	ec.done = srv_exec_done;
	ec.done_arg = s;
	char why[300];
	sv->ex = gpu_exec_create(&ec, why, sizeof(why));
	if (!sv->ex) {
		snprintf(err, len, "executor: %s", why);
		return -1;
	}
	/* the first plan, with no clients: every instance at its starting variant, prepared
	 * before any frame arrives */
	if (srv_control_plan(s, 0.0, 1) != 0) {
		snprintf(err, len, "scheduler: %s", ctl_sched_error(sv->sched));
		return -1;
	}
	for (int spin = 0; spin < 6000 && sv->pending; spin++) { /* at most ~60 s */
		srv_control_apply_when_ready(s, dp_now_ns());
		if (sv->pending) {
			struct timespec ts = {0, 10000000};
			nanosleep(&ts, NULL);
		}
	}
	if (sv->pending) {
		snprintf(err, len, "executor: the first variants were not ready after 60 s (%s)",
			 gpu_exec_error(sv->ex));
		return -1;
	}
	if (srv_warmup(s, err, len) != 0)
		return -1;
	/* metrics */
	if (strcmp(o->metrics, "off") != 0) {
		char host[64];
		const char *colon = strrchr(o->metrics, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - o->metrics), o->metrics);
		sv->metrics = ctl_metrics_create(host, (uint16_t)atoi(colon + 1), 8u << 20, 4, why,
						 sizeof(why));
		if (!sv->metrics) {
			snprintf(err, len, "--metrics %s: %s", o->metrics, why);
			return -1;
		}
	}
	atomic_store(&sv->disp_stop, 0);
	if (pthread_create(&sv->disp, NULL, srv_dispatch_main, s) != 0) {
		snprintf(err, len, "cannot start the dispatcher thread");
		return -1;
	}
	pthread_setname_np(sv->disp, "shoal-dispatch");
	sv->disp_started = 1;
	return 0;
}

uint16_t srv_serve_metrics_port(const struct srv *s)
{
	return s->sv && s->sv->metrics ? ctl_metrics_port(s->sv->metrics) : 0;
}

/* ---- the control thread ------------------------------------------------------------------------ */
void srv_serve_loop(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	uint64_t prev[DP_CNT__COUNT], prev_t = s->t_start;
	memset(prev, 0, sizeof(prev));
	uint64_t iv = (uint64_t)(s->o.stats_interval * 1e9);
	uint64_t next_stats = iv ? s->t_start + iv : UINT64_MAX;
	uint64_t t_end = s->o.duration > 0 ? s->t_start + (uint64_t)(s->o.duration * 1e9)
					   : UINT64_MAX;
	uint64_t next_ctl = 0;
	while (!*s->stop) {
		uint64_t now = dp_now_ns();
		if (now >= next_ctl) {
			srv_control_tick(s, now);
			next_ctl = now + SRV_CONTROL_TICK_NS;
		}
		if (now >= t_end)
			*s->stop = 1;
		if (now >= next_stats) {
			srv_stats_line(s, now, &prev_t, prev);
			srv_serve_stats_line(s);
			next_stats += iv;
			if (next_stats <= now)
				next_stats = now + iv;
		}
		if (sv->metrics) {
			ctl_metrics_poll(sv->metrics, 5, srv_metrics_render, s);
		} else {
			struct timespec ts = {0, 5000000};
			nanosleep(&ts, NULL);
		}
	}
}

static void srv_dispatch_stop(struct srv_serve *sv)
{
	if (!sv->disp_started)
		return;
	atomic_store_explicit(&sv->disp_stop, 1, memory_order_release);
	pthread_join(sv->disp, NULL);
	sv->disp_started = 0;
}

/* Called with the poll lcores still running: the dispatcher stops taking frames, the executor
 * finishes what it holds (each frame answered by RESULT or DROP, which the poll lcores still
 * send), bounded by 2 s. */
void srv_serve_drain(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	if (!sv || !sv->disp_started)
		return;
	srv_dispatch_stop(sv);
	uint64_t t0 = dp_now_ns();
	while (dp_now_ns() - t0 < 2000000000ull) {
		unsigned queued = 0;
		for (int i = 0; i < (int)s->o.instances; i++) {
			struct gpu_exec_instance_stats st;
			if (gpu_exec_instance_stats(sv->ex, i, &st) == 0)
				queued += st.queued;
		}
		uint64_t in = atomic_load(&sv->dispatched);
		uint64_t out = atomic_load(&sv->served);
		for (int k = 0; k < 6; k++)
			out += atomic_load(&sv->not_run[k]);
		if (queued == 0 && out >= in)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	struct timespec ts = {0, 20000000}; /* the poll lcores send the last answers */
	nanosleep(&ts, NULL);
}

/* After the poll lcores stopped: frames still in the consumer rings are released and counted;
 * the executor stops (anything left gets STOPPED and its slot back). */
void srv_serve_finish(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	if (!sv)
		return;
	srv_dispatch_stop(sv);
	srv_rings_release(s);
	srv_serve_final_stats(s);
	gpu_exec_destroy(sv->ex);
	sv->ex = NULL;
}

void srv_serve_close(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	if (!sv)
		return;
	srv_dispatch_stop(sv);
	gpu_exec_destroy(sv->ex);
	ctl_metrics_destroy(sv->metrics);
	srv_routes_destroy(sv->routes);
	ctl_sched_destroy(sv->sched);
	ctl_trigger_destroy(sv->trig);
	ctl_decision_destroy(sv->dec[0]);
	ctl_decision_destroy(sv->dec[1]);
	ctl_decision_destroy(sv->dec_try);
	ctl_decision_destroy(sv->dec_alt);
	ctl_decision_destroy(sv->dec_mid);
	if (sv->fam)
		gpu_family_close(sv->fam);
	if (sv->be)
		gpu_backend_destroy(sv->be);
	if (sv->g)
		mdl_graph_destroy(sv->g);
	free(sv->infl);
	free(sv->snap);
	free(sv->snap_q);
	free(sv->cl);
	free(sv->reg[0]);
	free(sv->reg[1]);
	free(sv->route_tmp);
	free(sv->plan_keys);
	free(sv->gone);
	free(sv->keys_now);
	free(sv);
	s->sv = NULL;
}
