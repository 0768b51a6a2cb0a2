/* Tests of the executor (gpu.h gpu_exec_*) on the CPU backend with a small real model
 * (Conv 3x3 + Relu, dynamic batch and size): one completion per frame, batching, deadline
 * triggers, lazy drop, EDF between instances, variant preparation, the correction ratio,
 * shutdown and configuration checks. Most cases drive a frozen test clock (cfg.now_ns) so
 * that what runs when depends only on the clock the test sets. A scripted backend (batches
 * take a chosen time on that clock, one size's preparation held until released) covers
 * asynchronous preparation and the 95th-percentile correction ratio. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu.h"
#include "harness.h"
#include "models/mdl.h"
#include "onnx.pb-c.h"
#include "test_onnx_build.h"

#define MS 1000000ull
#define T0 (1000 * MS)
#define MAX_USER 1024

/* ---- test clock and completion record ------------------------------------------------------ */

static _Atomic uint64_t fake_now;
static uint64_t fake_clock(void) { return atomic_load(&fake_now); }

struct rec {
	_Atomic int count;
	int status, instance, size, batch, seq, n_det;
	uint64_t start_ns;
	struct gpu_det det0;
};
static struct rec recs[MAX_USER];
static _Atomic int n_done, seq_next, n_bad_user;
static int with_post; /* the executor decodes detections */

static void on_done(void *arg, const struct gpu_exec_done *d)
{
	(void)arg;
	if (d->user >= MAX_USER) {
		atomic_fetch_add(&n_bad_user, 1);
		return;
	}
	struct rec *r = &recs[d->user];
	r->status = d->status;
	r->instance = d->instance;
	r->size = d->size;
	r->batch = d->batch;
	r->start_ns = d->start_ns;
	r->seq = atomic_fetch_add(&seq_next, 1);
	r->n_det = d->n_det;
	if (d->n_det > 0)
		r->det0 = d->det[0];
	if ((!with_post && d->n_det != 0) || (d->status != GPU_EXEC_DONE && (d->size || d->batch)))
		atomic_fetch_add(&n_bad_user, 1); /* detections only with post, size if it ran */
	atomic_fetch_add(&r->count, 1);
	atomic_fetch_add(&n_done, 1);
}

static void rec_reset(void)
{
	memset(recs, 0, sizeof recs);
	atomic_store(&n_done, 0);
	atomic_store(&seq_next, 0);
	atomic_store(&n_bad_user, 0);
	with_post = 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits (up to 20 s) until at least n completions were seen; 1 when they were. */
static int wait_done(int n)
{
	for (int i = 0; i < 20000 && atomic_load(&n_done) < n; i++)
		sleep_ms(1);
	return atomic_load(&n_done) >= n;
}

/* Waits until instance i has `queued` frames waiting (or runs size `size` when size > 0). */
static int wait_stats(struct gpu_exec *ex, int i, int queued, int size)
{
	struct gpu_exec_instance_stats s;
	for (int k = 0; k < 20000; k++) {
		if (gpu_exec_instance_stats(ex, i, &s))
			return 0;
		if (size > 0 ? s.size == size : (int)s.queued == queued)
			return 1;
		sleep_ms(1);
	}
	return 0;
}

/* ---- model, backend, frames ------------------------------------------------------------------ */

struct fix {
	struct gpu_backend *be;
	struct mdl_graph *g;
	struct gpu_family *fam;
};

/* Packs the model being built in b and loads it as the fixture's family on a 1-thread CPU
 * backend. */
static int fix_load(struct fix *fx, struct mb *b, const char *name)
{
	size_t len;
	uint8_t *buf = mb_pack(b, &len);
	char err[256] = "";
	memset(fx, 0, sizeof *fx);
	fx->g = mdl_graph_load_mem(buf, len, name, err, sizeof err);
	free(buf);
	if (fx->g)
		fx->be = gpu_backend_cpu_create(1, err, sizeof err);
	if (fx->be)
		fx->fam = gpu_family_load(fx->be, fx->g, err, sizeof err);
	if (!fx->fam) {
		fprintf(stderr, "fixture: %s\n", err);
		return ST_FAIL;
	}
	rec_reset();
	return ST_PASS;
}

/* x [N, 3, H, W] -> Conv 3x3 (no padding, 4 channels) -> Relu -> y: sizes below 3 fail. */
static int fix_open(struct fix *fx)
{
	struct mb b;
	static const int64_t xd[4] = {-1, 3, -1, -1}, wd[4] = {4, 3, 3, 3};
	float w[108];
	for (int i = 0; i < 108; i++)
		w[i] = (float)((i * 37) % 17 - 8) / 16.0f;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, xd);
	mb_tensor(&b, "w", 4, wd, w, NULL);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv0", "x,w", "c");
	attr_ints(n, "kernel_shape", 2, (const int64_t[]){3, 3});
	mb_node(&b, "Relu", "relu0", "c", "y");
	mb_output(&b, "y");
	return fix_load(fx, &b, "conv.onnx");
}

/* A CenterNet-like head (stride 4): heatmap = mean of the red channel over 4x4 cells,
 * heatmax = its 3x3 max, wh = the constant distances (20, 4, 6, 10) from the peak to the
 * box's left, top, right and bottom edges. */
static int fix_open_det(struct fix *fx)
{
	struct mb b;
	static const int64_t xd[4] = {-1, 3, -1, -1}, hd[4] = {1, 3, 4, 4}, wd[4] = {4, 3, 4, 4};
	static const int64_t bd[1] = {4};
	float hw[48] = {0}, ww[192] = {0}, wb[4] = {20, 4, 6, 10};
	for (int i = 0; i < 16; i++)
		hw[i] = 1.0f / 16.0f;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, xd);
	mb_tensor(&b, "hw", 4, hd, hw, NULL);
	mb_tensor(&b, "ww", 4, wd, ww, NULL);
	mb_tensor(&b, "wb", 1, bd, wb, NULL);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "heat", "x,hw", "heatmap");
	attr_ints(n, "kernel_shape", 2, (const int64_t[]){4, 4});
	attr_ints(n, "strides", 2, (const int64_t[]){4, 4});
	n = mb_node(&b, "MaxPool", "peak", "heatmap", "heatmax");
	attr_ints(n, "kernel_shape", 2, (const int64_t[]){3, 3});
	attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
	n = mb_node(&b, "Conv", "box", "x,ww,wb", "wh");
	attr_ints(n, "kernel_shape", 2, (const int64_t[]){4, 4});
	attr_ints(n, "strides", 2, (const int64_t[]){4, 4});
	mb_output(&b, "heatmap");
	mb_output(&b, "heatmax");
	mb_output(&b, "wh");
	return fix_load(fx, &b, "centernet.onnx");
}

static void fix_close(struct fix *fx)
{
	gpu_family_close(fx->fam);
	gpu_backend_destroy(fx->be);
	mdl_graph_destroy(fx->g);
}

/* One profiled size with the given batch latencies (ms), batches 1..n. */
static void profile_one(struct gpu_exec_profile *p, int size, int n, const double *lat)
{
	memset(p, 0, sizeof *p);
	p->n_sizes = 1;
	p->size[0] = size;
	for (int b = 0; b < n; b++)
		p->lat_ms[0][b] = lat[b];
}

static void config(struct gpu_exec_config *c, struct fix *fx, int fake)
{
	gpu_exec_config_defaults(c);
	c->name = "test";
	c->backend = fx->be;
	c->family = fx->fam;
	c->done = on_done;
	c->now_ns = fake ? fake_clock : NULL;
	c->guard_ms = 2.0;
	static const double lat[8] = {5, 8, 10, 12, 14, 16, 18, 20};
	profile_one(&c->profile, 32, 8, lat);
	atomic_store(&fake_now, T0);
}

static uint8_t pixels[48][64][3];
static const struct gpu_image IMG = {
	.fmt = GPU_PIX_RGB24, .width = 64, .height = 48,
	.plane = {&pixels[0][0][0], NULL, NULL}, .stride = {64 * 3, 0, 0},
};

static int submit(struct gpu_exec *ex, int instance, uint64_t user, uint64_t deadline)
{
	struct gpu_exec_frame f = {.img = IMG, .arrival_ns = fake_clock(), .deadline_ns = deadline,
				   .user = user, .instance = instance};
	return gpu_exec_submit(ex, &f);
}

/* Sets instance i to (size, batch) and waits until it runs that size. */
static int serve(struct gpu_exec *ex, int i, int size, int batch)
{
	return gpu_exec_instance_set(ex, i, size, batch) == 0 && wait_stats(ex, i, 0, size);
}

/* ---- cases -------------------------------------------------------------------------------- */

static int test_exec_every_frame_gets_exactly_one_done(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 0);
	static const double lat[2] = {0.01, 0.02};
	profile_one(&c.profile, 32, 2, lat);
	c.n_instances = 5;
	c.max_batch = 4;
	c.max_variants = 2;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	static const int sizes[4] = {16, 24, 32, 16};
	for (int i = 0; i < 4; i++)
		ST_CHECK(serve(ex, i, sizes[i], 4));
	/* instance 4 stays out of service; 7 is not an instance */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	const int n = 6 * 150;
	for (int u = 0; u < n; u++) {
		int inst = u % 6 == 5 ? 7 : u % 6;
		ST_CHECK(submit(ex, inst, (uint64_t)u, now + 300 * MS) == 0 ||
			 atomic_load(&recs[u].count) == 1);
		if (u % 64 == 63)
			sleep_ms(1);
	}
	ST_CHECK(wait_done(n));
	sleep_ms(20); /* a second completion of any frame would show up now */
	ST_CHECK_EQ(atomic_load(&n_done), n);
	ST_CHECK_EQ(atomic_load(&n_bad_user), 0);
	int ran = 0;
	for (int u = 0; u < n; u++) {
		ST_CHECK_EQ(atomic_load(&recs[u].count), 1);
		int inst = u % 6;
		if (inst >= 4)
			ST_CHECK_EQ(recs[u].status, GPU_EXEC_NO_INSTANCE);
		if (recs[u].status == GPU_EXEC_DONE) {
			ST_CHECK_EQ(recs[u].size, sizes[inst]);
			ran++;
		}
	}
	ST_CHECK(ran > 0);
	struct gpu_exec_instance_stats s;
	uint64_t in_total = 0;
	for (int i = 0; i < 5; i++) {
		ST_CHECK_EQ(gpu_exec_instance_stats(ex, i, &s), 0);
		in_total += s.frames_in;
		ST_CHECK_EQ(s.queued, 0);
		ST_CHECK_EQ(s.frames_in, s.frames_done + s.frames_late + s.frames_overload +
						 s.frames_failed + s.frames_no_instance);
	}
	ST_CHECK_EQ(in_total, 5 * 150); /* every frame but those of instance 7 */
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 5, &s), -EINVAL);
	gpu_exec_destroy(ex);
	ST_CHECK_EQ(atomic_load(&n_done), n); /* nothing left to stop */
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_full_batch_runs_at_target_size(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 40, 4));
	/* the clock stands still far from every deadline: only full batches can run */
	for (int u = 0; u < 14; u++)
		ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, T0 + 1000 * MS), 0);
	ST_CHECK(wait_done(12));
	ST_CHECK(wait_stats(ex, 0, 2, 0));
	sleep_ms(20);
	ST_CHECK_EQ(atomic_load(&n_done), 12);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.batches, 3);
	ST_CHECK_EQ(s.batch_hist[3], 3);
	ST_CHECK_EQ(s.frames_done, 12);
	ST_CHECK_EQ(s.size, 40);
	ST_CHECK_EQ(s.batch, 4);
	int done = 0;
	for (int u = 0; u < 14; u++)
		if (atomic_load(&recs[u].count)) {
			ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
			ST_CHECK_EQ(recs[u].batch, 4);
			ST_CHECK_EQ(recs[u].size, 40);
			ST_CHECK_EQ(recs[u].start_ns, T0);
			done++;
		}
	ST_CHECK_EQ(done, 12);
	/* a smaller target batch: the 2 waiting frames now make a full batch */
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 0, 40, 2), 0);
	ST_CHECK(wait_done(14));
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.batch_hist[1], 1);
	ST_CHECK_EQ(s.batch, 2);
	/* batch is clamped to max_batch */
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 0, 40, 99), 0);
	for (int k = 0; k < 2000 && (gpu_exec_instance_stats(ex, 0, &s), s.batch != 8); k++)
		sleep_ms(1);
	ST_CHECK_EQ(s.batch, 8);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_partial_batch_runs_before_deadline(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1); /* est(2) = 8 ms, guard 2 ms */
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 4));
	ST_CHECK_EQ(submit(ex, 0, 1, T0 + 100 * MS), 0);
	ST_CHECK_EQ(submit(ex, 0, 2, T0 + 120 * MS), 0);
	ST_CHECK(wait_stats(ex, 0, 2, 0));
	/* must start by 100 - 8 - 2 = 90 ms: not yet at 89.9 ms */
	atomic_store(&fake_now, T0 + 89 * MS + 900000);
	sleep_ms(50);
	ST_CHECK_EQ(atomic_load(&n_done), 0);
	atomic_store(&fake_now, T0 + 90 * MS);
	ST_CHECK(wait_done(2));
	for (int u = 1; u <= 2; u++) {
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
		ST_CHECK_EQ(recs[u].batch, 2);
		ST_CHECK_EQ(recs[u].start_ns, T0 + 90 * MS);
	}
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_batch_cut_to_meet_deadline(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	static const double lat[3] = {5, 15, 50};
	profile_one(&c.profile, 32, 3, lat);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 3));
	/* a full batch of 3 would take 50 ms but the earliest deadline is 20 ms away: 2 run */
	for (int u = 0; u < 3; u++)
		ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, T0 + (uint64_t)(20 + u) * MS), 0);
	ST_CHECK(wait_done(2));
	sleep_ms(20);
	ST_CHECK_EQ(atomic_load(&n_done), 2);
	ST_CHECK_EQ(recs[0].batch, 2);
	ST_CHECK_EQ(recs[1].batch, 2);
	ST_CHECK_EQ(atomic_load(&recs[2].count), 0); /* the latest deadline waits */
	atomic_store(&fake_now, T0 + 20 * MS);
	ST_CHECK(wait_done(3));
	ST_CHECK_EQ(recs[2].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[2].batch, 1);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_late_frames_dropped_before_running(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1); /* est(1) = 5 ms */
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 2));
	ST_CHECK_EQ(submit(ex, 0, 1, T0 + 4 * MS), 0);   /* cannot finish by then */
	ST_CHECK_EQ(submit(ex, 0, 2, T0 + 100 * MS), 0);
	ST_CHECK_EQ(submit(ex, 0, 3, T0 + 100 * MS), 0);
	ST_CHECK(wait_done(3));
	ST_CHECK_EQ(recs[1].status, GPU_EXEC_LATE);
	ST_CHECK_EQ(recs[1].batch, 0);
	ST_CHECK_EQ(recs[2].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[3].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[2].batch, 2); /* the late frame did not take a place in the batch */
	ST_CHECK(recs[1].seq < recs[2].seq);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.frames_late, 1);
	ST_CHECK_EQ(s.frames_done, 2);
	ST_CHECK_EQ(s.batches, 1);
	/* a frame waiting for its batch becomes late when the clock passes deadline - est(1) */
	ST_CHECK_EQ(submit(ex, 0, 4, T0 + 50 * MS), 0);
	ST_CHECK(wait_stats(ex, 0, 1, 0));
	atomic_store(&fake_now, T0 + 49 * MS);
	ST_CHECK(wait_done(4));
	ST_CHECK_EQ(recs[4].status, GPU_EXEC_LATE);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.batches, 1);
	ST_CHECK_EQ(s.frames_late, 2);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

/* An instance that ran nothing for 1 s while every frame was judged late runs the earliest
 * one alone (a probe) instead of dropping it, so its measured ratio can come down again;
 * within the second after a batch, late frames are dropped as before. */
static int test_exec_probe_after_idle_measures_again(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1); /* est(1) = 5 ms */
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 1));
	/* created at T0: within the first second a hopeless frame is dropped */
	ST_CHECK_EQ(submit(ex, 0, 1, T0 + 1 * MS), 0);
	ST_CHECK(wait_done(1));
	ST_CHECK_EQ(recs[1].status, GPU_EXEC_LATE);
	/* 1.5 s later, still nothing run: the next hopeless frame runs alone, as a probe */
	atomic_store(&fake_now, T0 + 1500 * MS);
	ST_CHECK_EQ(submit(ex, 0, 2, T0 + 1501 * MS), 0);
	ST_CHECK(wait_done(2));
	ST_CHECK_EQ(recs[2].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[2].batch, 1);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.probes, 1);
	ST_CHECK_EQ(s.batches, 1);
	/* right after that batch a hopeless frame is dropped again */
	ST_CHECK_EQ(submit(ex, 0, 3, T0 + 1501 * MS), 0);
	ST_CHECK(wait_done(3));
	ST_CHECK_EQ(recs[3].status, GPU_EXEC_LATE);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.probes, 1);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_edf_between_instances(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1); /* est(2) = 8 ms, est(1) = 5 ms, guard 2 ms */
	c.n_instances = 3;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	for (int i = 0; i < 3; i++)
		ST_CHECK(serve(ex, i, 32, 4));
	/* instance 0 queued first with the latest deadline; instance 2 has the earliest */
	ST_CHECK_EQ(submit(ex, 0, 10, T0 + 100 * MS), 0);
	ST_CHECK_EQ(submit(ex, 0, 11, T0 + 100 * MS), 0);
	ST_CHECK_EQ(submit(ex, 1, 20, T0 + 99 * MS), 0);
	ST_CHECK_EQ(submit(ex, 1, 21, T0 + 99 * MS), 0);
	ST_CHECK_EQ(submit(ex, 2, 30, T0 + 98 * MS), 0);
	ST_CHECK_EQ(submit(ex, 2, 31, T0 + 98 * MS), 0);
	for (int i = 0; i < 3; i++)
		ST_CHECK(wait_stats(ex, i, 2, 0));
	ST_CHECK_EQ(atomic_load(&n_done), 0);
	/* at 90 ms all three are ready (90 + 8 + 2 >= deadline) and each fits in a batch of 2
	 * (90 + 8 <= deadline) */
	atomic_store(&fake_now, T0 + 90 * MS);
	ST_CHECK(wait_done(6));
	for (int u = 10; u <= 31; u += (u % 10 ? 9 : 1)) {
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
		ST_CHECK_EQ(recs[u].batch, 2);
	}
	ST_CHECK(recs[30].seq < recs[20].seq && recs[31].seq < recs[20].seq);
	ST_CHECK(recs[20].seq < recs[10].seq && recs[21].seq < recs[10].seq);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_instance_out_of_service_and_bad_instance(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.n_instances = 2;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 1, 32, 4));
	ST_CHECK_EQ(submit(ex, 0, 1, T0 + 500 * MS), 0); /* never set: not served */
	ST_CHECK_EQ(submit(ex, 2, 2, T0 + 500 * MS), 0); /* no such instance */
	ST_CHECK_EQ(submit(ex, -1, 3, T0 + 500 * MS), 0);
	ST_CHECK_EQ(submit(ex, 1, 4, T0 + 500 * MS), 0);
	ST_CHECK_EQ(submit(ex, 1, 5, T0 + 500 * MS), 0);
	ST_CHECK(wait_done(3));
	ST_CHECK(wait_stats(ex, 1, 2, 0));
	for (int u = 1; u <= 3; u++) {
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_NO_INSTANCE);
		ST_CHECK_EQ(recs[u].size, 0);
	}
	ST_CHECK_EQ(recs[2].instance, 2);
	/* taking instance 1 out of service answers its queued frames and later ones */
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 1, 0, 4), 0);
	ST_CHECK(wait_done(5));
	ST_CHECK_EQ(submit(ex, 1, 6, T0 + 500 * MS), 0);
	ST_CHECK(wait_done(6));
	for (int u = 4; u <= 6; u++)
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_NO_INSTANCE);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 1, &s), 0);
	ST_CHECK_EQ(s.frames_no_instance, 3);
	ST_CHECK_EQ(s.frames_in, 3);
	ST_CHECK_EQ(s.size, 0);
	ST_CHECK_EQ(s.queued, 0);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.frames_no_instance, 1);
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 2, 32, 1), -EINVAL);
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 0, -1, 1), -EINVAL);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_prepare_ahead_and_switch_size(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.max_variants = 1;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK_EQ(gpu_exec_ready(ex, 48), 0);
	ST_CHECK(serve(ex, 0, 32, 1));
	ST_CHECK_EQ(gpu_exec_ready(ex, 32), 1);
	ST_CHECK_EQ(gpu_exec_prepare(ex, 48), 0);
	for (int k = 0; k < 20000 && gpu_exec_ready(ex, 48) == 0; k++)
		sleep_ms(1);
	ST_CHECK_EQ(gpu_exec_ready(ex, 48), 1);
	ST_CHECK_EQ(gpu_exec_ready(ex, 32), 1); /* in use: kept beyond max_variants */
	ST_CHECK_EQ(submit(ex, 0, 1, T0 + 500 * MS), 0);
	ST_CHECK(wait_done(1));
	ST_CHECK_EQ(recs[1].size, 32);
	ST_CHECK(serve(ex, 0, 48, 1));
	ST_CHECK_EQ(submit(ex, 0, 2, T0 + 500 * MS), 0);
	ST_CHECK(wait_done(2));
	ST_CHECK_EQ(recs[2].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[2].size, 48);
	ST_CHECK_EQ(gpu_exec_ready(ex, 32), 0); /* no longer used: closed (max_variants 1) */
	ST_CHECK_EQ(gpu_exec_ready(ex, 48), 1);
	ST_CHECK_EQ(gpu_exec_error(ex)[0], 0);
	/* a size the model cannot take (3x3 conv without padding on 2x2) */
	ST_CHECK_EQ(gpu_exec_prepare(ex, 2), 0);
	for (int k = 0; k < 20000 && gpu_exec_ready(ex, 2) == 0; k++)
		sleep_ms(1);
	ST_CHECK_EQ(gpu_exec_ready(ex, 2), -EIO);
	const char *why = gpu_exec_error(ex);
	ST_CHECK(strstr(why, "size 2") != NULL);
	ST_CHECK(strchr(why, '\n') == NULL);
	/* an instance asked to run it keeps its size */
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 0, 2, 1), 0);
	sleep_ms(30);
	ST_CHECK_EQ(submit(ex, 0, 3, T0 + 500 * MS), 0);
	ST_CHECK(wait_done(3));
	ST_CHECK_EQ(recs[3].size, 48);
	ST_CHECK_EQ(gpu_exec_prepare(ex, 0), -EINVAL);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_bad_image_fails_alone(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 3));
	struct gpu_exec_frame f = {.img = IMG, .deadline_ns = T0 + 100 * MS, .user = 1};
	f.img.plane[0] = NULL; /* missing plane */
	ST_CHECK_EQ(submit(ex, 0, 0, T0 + 101 * MS), 0);
	ST_CHECK_EQ(gpu_exec_submit(ex, &f), 0);
	ST_CHECK_EQ(submit(ex, 0, 2, T0 + 102 * MS), 0);
	ST_CHECK(wait_done(3));
	ST_CHECK_EQ(recs[1].status, GPU_EXEC_FAILED);
	ST_CHECK_EQ(recs[0].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[2].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[0].batch, 2);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.frames_failed, 1);
	ST_CHECK_EQ(s.batch_hist[1], 1);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_detections_in_source_pixels(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open_det(&fx), ST_PASS);
	struct gpu_post post;
	char err[256] = "";
	ST_CHECK_EQ(gpu_post_init(&post, fx.g, GPU_HEAD_CENTERNET, 0.5f, 0.5f, err, sizeof err), 0);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.post = &post;
	c.max_det = 4;
	with_post = 1;
	/* a white block around the cell (3, 2) of a 32x32 variant: source x 24..31, y 12..17
	 * (the 64x48 frame is scaled by 2 and 1.5) */
	static uint8_t img[48][64][3];
	for (int y = 9; y < 21; y++)
		for (int x = 20; x < 36; x++)
			img[y][x][0] = img[y][x][1] = img[y][x][2] = 255;
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 1));
	struct gpu_exec_frame f = {.img = IMG, .deadline_ns = T0 + 100 * MS, .user = 1};
	f.img.plane[0] = &img[0][0][0];
	ST_CHECK_EQ(gpu_exec_submit(ex, &f), 0);
	ST_CHECK(wait_done(1));
	ST_CHECK_EQ(recs[1].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[1].n_det, 1);
	const struct gpu_det *d = &recs[1].det0;
	/* peak at (12, 8) in variant pixels: box (-8, 4, 18, 18) -> x * 2, y * 1.5, clamped */
	ST_CHECK(d->score > 0.5f && d->cls == 0);
	ST_CHECK(d->x0 == 0.0f && d->y0 == 6.0f && d->x1 == 36.0f && d->y1 == 27.0f);
	/* at 64x64 (scale 1 and 0.75) the peak is a cell (cx, cy) of the block's plateau:
	 * box (4cx - 20, (4cy - 4) * 0.75, 4cx + 6, (4cy + 10) * 0.75) */
	ST_CHECK(serve(ex, 0, 64, 1));
	f.user = 2;
	ST_CHECK_EQ(gpu_exec_submit(ex, &f), 0);
	ST_CHECK(wait_done(2));
	ST_CHECK_EQ(recs[2].size, 64);
	ST_CHECK(recs[2].n_det >= 1);
	d = &recs[2].det0;
	float cx = (d->x1 - 6.0f) / 4.0f, cy = (d->y0 / 0.75f + 4.0f) / 4.0f;
	ST_CHECK(cx >= 5.0f && cx <= 8.0f && cx == (float)(int)cx);
	ST_CHECK(cy >= 3.0f && cy <= 6.0f && cy == (float)(int)cy);
	ST_CHECK(d->x0 == 4.0f * cx - 20.0f && d->y1 == (4.0f * cy + 10.0f) * 0.75f);
	ST_CHECK_EQ(atomic_load(&n_bad_user), 0);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

/* Runs `n` frames in batches of 1 on the real clock; returns the instance's ratio. */
static double ratio_after(struct fix *fx, double lat_ms, int n, double *before)
{
	struct gpu_exec_config c;
	config(&c, fx, 0);
	double lat[1] = {lat_ms};
	profile_one(&c.profile, 32, 1, lat);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	if (!ex || !serve(ex, 0, 32, 1))
		return -1;
	struct gpu_exec_instance_stats s;
	gpu_exec_instance_stats(ex, 0, &s);
	*before = s.ratio;
	rec_reset();
	for (int u = 0; u < n; u++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		submit(ex, 0, (uint64_t)u, now + 3600000 * MS);
		if (!wait_done(u + 1))
			return -1;
	}
	gpu_exec_instance_stats(ex, 0, &s);
	uint64_t busy = 0, elapsed = 0;
	gpu_exec_busy(ex, &busy, &elapsed);
	gpu_exec_destroy(ex);
	if (s.batches != (uint64_t)n || s.busy_ns == 0 || busy != s.busy_ns || elapsed < busy)
		return -2;
	return s.ratio;
}

static int test_exec_correction_ratio_tracks_measured_time(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	double before = 0;
	/* the profile claims a batch takes 1 ns: measured / profiled is far above the clamp */
	double up = ratio_after(&fx, 1e-6, 40, &before);
	ST_CHECK(before == 1.0);
	ST_CHECK(up == 8.0);
	/* it claims 10 s: far below */
	double down = ratio_after(&fx, 10000, 40, &before);
	ST_CHECK(down == 0.25);
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_destroy_reports_stopped_frames(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.n_instances = 2;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 8));
	ST_CHECK(serve(ex, 1, 24, 8));
	for (int u = 0; u < 5; u++)
		ST_CHECK_EQ(submit(ex, u % 2, (uint64_t)u, T0 + 1000 * MS), 0);
	ST_CHECK(wait_stats(ex, 0, 3, 0));
	ST_CHECK(wait_stats(ex, 1, 2, 0));
	ST_CHECK_EQ(atomic_load(&n_done), 0);
	gpu_exec_destroy(ex);
	ST_CHECK_EQ(atomic_load(&n_done), 5);
	for (int u = 0; u < 5; u++) {
		ST_CHECK_EQ(atomic_load(&recs[u].count), 1);
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_STOPPED);
	}
	fix_close(&fx);
	return ST_PASS;
}

static int test_exec_full_queue_reports_overload(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.queue_size = 3;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 8));
	/* 5 frames for a queue of 3, batch 8 on a frozen clock: 2 are refused */
	for (int u = 0; u < 5; u++)
		ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, T0 + 1000 * MS), 0);
	ST_CHECK(wait_done(2));
	ST_CHECK(wait_stats(ex, 0, 3, 0));
	int over = 0;
	for (int u = 0; u < 5; u++)
		over += atomic_load(&recs[u].count) && recs[u].status == GPU_EXEC_OVERLOAD;
	ST_CHECK_EQ(over, 2);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.frames_overload, 2);
	gpu_exec_destroy(ex);
	ST_CHECK_EQ(atomic_load(&n_done), 5);
	fix_close(&fx);
	return ST_PASS;
}

static int refused(struct gpu_exec_config *c, const char *want)
{
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(c, err, sizeof err);
	if (ex) {
		gpu_exec_destroy(ex);
		fprintf(stderr, "accepted a bad configuration (%s)\n", want);
		return 0;
	}
	if (!strstr(err, want) || strchr(err, '\n')) {
		fprintf(stderr, "reason '%s' does not say '%s' in one line\n", err, want);
		return 0;
	}
	return 1;
}

static int test_exec_bad_config_refused_with_reason(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open(&fx), ST_PASS);
	struct gpu_exec_config c;
	gpu_exec_config_defaults(&c);
	ST_CHECK_EQ(c.n_instances, 1);
	ST_CHECK_EQ(c.max_batch, 8);
	ST_CHECK_EQ(c.max_variants, 4);
	ST_CHECK_EQ(c.max_det, 100);
	ST_CHECK_EQ(c.queue_size, 256);
	ST_CHECK_EQ(c.ring_size, 1024);
	ST_CHECK(c.guard_ms == 2.0 && c.norm.std[2] == 1.0f && c.norm.mean[0] == 0.0f);
	ST_CHECK_EQ(c.cpu, -1);
	ST_CHECK(c.now_ns == NULL && c.done == NULL && c.backend == NULL);
	ST_CHECK(refused(&c, "required"));
	config(&c, &fx, 1);
	c.done = NULL;
	ST_CHECK(refused(&c, "required"));
	config(&c, &fx, 1);
	c.n_instances = 0;
	ST_CHECK(refused(&c, "n_instances 0"));
	config(&c, &fx, 1);
	c.max_batch = 33;
	ST_CHECK(refused(&c, "max_batch 33"));
	config(&c, &fx, 1);
	c.ring_size = 1000;
	ST_CHECK(refused(&c, "ring_size 1000"));
	config(&c, &fx, 1);
	c.queue_size = 0;
	ST_CHECK(refused(&c, "queue_size 0"));
	config(&c, &fx, 1);
	c.max_det = 256;
	ST_CHECK(refused(&c, "max_det 256"));
	config(&c, &fx, 1);
	c.profile.n_sizes = 0;
	ST_CHECK(refused(&c, "profile has 0 sizes"));
	config(&c, &fx, 1);
	c.profile.n_sizes = 2;
	c.profile.size[1] = 16;
	c.profile.lat_ms[1][0] = 1;
	ST_CHECK(refused(&c, "ascending"));
	config(&c, &fx, 1);
	c.profile.lat_ms[0][0] = 0;
	ST_CHECK(refused(&c, "no batch-1 latency"));
	config(&c, &fx, 1);
	c.norm.std[1] = 0;
	ST_CHECK(refused(&c, "std 0"));
	config(&c, &fx, 1);
	c.cpu = -2;
	ST_CHECK(refused(&c, "cpu -2"));
	ST_CHECK(strcmp(gpu_exec_status_name(GPU_EXEC_DONE), "done") == 0);
	ST_CHECK(strcmp(gpu_exec_status_name(GPU_EXEC_NO_INSTANCE), "no_instance") == 0);
	ST_CHECK(strcmp(gpu_exec_status_name(GPU_EXEC_STOPPED), "stopped") == 0);
	ST_CHECK(gpu_exec_status_name(6) == NULL && gpu_exec_status_name(-1) == NULL);
	/* a good one pinned to a CPU this process may use starts */
	config(&c, &fx, 1);
	cpu_set_t set;
	ST_CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
	for (int k = CPU_SETSIZE - 1; k >= 0; k--)
		if (CPU_ISSET(k, &set))
			c.cpu = k;
	ST_CHECK(c.cpu >= 0);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

/* ---- a scripted backend: batches take the time the test chooses on the test clock, and the
 * preparation of one chosen size waits until the test lets it finish --------------------------- */

static _Atomic uint64_t script_batch_ns; /* each batch advances fake_now by this much */
static _Atomic int script_gate_size;     /* preparing this size waits for script_gate_open */
static _Atomic int script_gate_open, script_gate_waiting;

struct script_var {
	int size;
};

static void script_destroy(void *be) { (void)be; }
static void *script_family_load(void *be, const struct mdl_graph *g, char *err, size_t len)
{
	(void)be, (void)g, (void)err, (void)len;
	static int fam;
	return &fam;
}
static void script_family_close(void *fam) { (void)fam; }
static void *script_variant_prepare(void *fam, const struct mdl_shape *inputs, char *err,
				    size_t len)
{
	(void)fam, (void)err, (void)len;
	struct script_var *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->size = (int)inputs[0].d[2];
	if (v->size == atomic_load(&script_gate_size)) {
		atomic_store(&script_gate_waiting, 1);
		while (!atomic_load(&script_gate_open))
			sleep_ms(1);
	}
	return v;
}
static void script_variant_close(void *var) { free(var); }
static float *script_variant_input(void *var, int idx)
{
	(void)var, (void)idx;
	return NULL;
}
static int script_variant_submit(void *var, int batch)
{
	(void)var, (void)batch;
	atomic_fetch_add(&fake_now, atomic_load(&script_batch_ns));
	return 0;
}
static int script_variant_poll(void *var)
{
	(void)var;
	return 1;
}
static const float *script_variant_output(void *var, int idx, struct mdl_shape *shape)
{
	(void)var, (void)idx, (void)shape;
	return NULL;
}
static int script_variant_input_image(void *var, int item, const struct gpu_image *img,
				      const struct gpu_norm *norm)
{
	(void)var, (void)item, (void)img, (void)norm;
	return 0;
}

static const struct gpu_backend_ops script_ops = {
	.name = "script",
	.destroy = script_destroy,
	.family_load = script_family_load,
	.family_close = script_family_close,
	.variant_prepare = script_variant_prepare,
	.variant_close = script_variant_close,
	.variant_input = script_variant_input,
	.variant_submit = script_variant_submit,
	.variant_poll = script_variant_poll,
	.variant_output = script_variant_output,
	.variant_input_image = script_variant_input_image,
};

/* fx with its backend and family replaced by the scripted ones (graph kept for its name). */
static int fix_open_script(struct fix *fx)
{
	struct fix real;
	if (fix_open(&real) != ST_PASS)
		return ST_FAIL;
	gpu_family_close(real.fam);
	gpu_backend_destroy(real.be);
	memset(fx, 0, sizeof *fx);
	fx->g = real.g;
	fx->be = gpu_backend_create(&script_ops, NULL);
	char err[256] = "";
	if (fx->be)
		fx->fam = gpu_family_load(fx->be, fx->g, err, sizeof err);
	if (!fx->fam) {
		fprintf(stderr, "fixture: scripted backend: %s\n", err);
		return ST_FAIL;
	}
	atomic_store(&script_batch_ns, 0);
	atomic_store(&script_gate_size, 0);
	atomic_store(&script_gate_open, 0);
	atomic_store(&script_gate_waiting, 0);
	return ST_PASS;
}

/* With prepare_async, instance 0 keeps being served while the variant instance 1 asked for
 * is being prepared (held back here until the test lets it finish); then instance 1
 * switches to it and runs its frame at the new size. */
static int test_exec_async_prepare_keeps_serving(void)
{
	struct fix fx;
	ST_CHECK_EQ(fix_open_script(&fx), ST_PASS);
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	c.n_instances = 2;
	c.prepare_async = 1;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	ST_CHECK(ex != NULL);
	ST_CHECK(serve(ex, 0, 32, 1));
	atomic_store(&script_gate_size, 1024);
	ST_CHECK_EQ(gpu_exec_instance_set(ex, 1, 1024, 1), 0);
	for (int k = 0; k < 20000 && !atomic_load(&script_gate_waiting); k++)
		sleep_ms(1);
	ST_CHECK(atomic_load(&script_gate_waiting)); /* the preparation has started */
	ST_CHECK_EQ(submit(ex, 1, 100, T0 + 1000 * MS), 0); /* waits for its variant */
	/* frames of instance 0 run one by one while the preparation is held */
	for (int u = 0; u < 10; u++) {
		ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, T0 + 1000 * MS), 0);
		ST_CHECK(wait_done(u + 1));
		ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
		ST_CHECK_EQ(recs[u].size, 32);
		ST_CHECK_EQ(gpu_exec_ready(ex, 1024), 0);
	}
	ST_CHECK_EQ(atomic_load(&recs[100].count), 0);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 1, &s), 0);
	ST_CHECK_EQ(s.size, 0);
	ST_CHECK_EQ(s.queued, 1);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.frames_done, 10);
	/* let it finish: the switch happens and the waiting frame runs at 1024 */
	atomic_store(&script_gate_open, 1);
	ST_CHECK(wait_done(11));
	ST_CHECK_EQ(recs[100].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[100].instance, 1);
	ST_CHECK_EQ(recs[100].size, 1024);
	ST_CHECK_EQ(gpu_exec_ready(ex, 1024), 1);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 1, &s), 0);
	ST_CHECK_EQ(s.size, 1024);
	/* instance 0 was not moved */
	ST_CHECK_EQ(submit(ex, 0, 10, T0 + 1000 * MS), 0);
	ST_CHECK(wait_done(12));
	ST_CHECK_EQ(recs[10].size, 32);
	ST_CHECK_EQ(atomic_load(&n_bad_user), 0);
	gpu_exec_destroy(ex);
	ST_CHECK_EQ(atomic_load(&n_done), 12);
	fix_close(&fx);
	return ST_PASS;
}

/* Instance A (0) holds a full batch of 8 whose estimate is 50 ms; instance B (1) holds one
 * frame, not a full batch and with slack left (est(1) + guard = 7 ms before its deadline),
 * but less slack than A's batch would take: B is treated as ready and, its deadline being the
 * earlier, runs first. With slack above A's batch, A runs first and B waits for its own
 * last start time. Returns 1 when B ran first, 0 when A did, -1 on failure. */
static int slack_order(uint64_t b_deadline, uint64_t b_start_at)
{
	struct fix fx;
	if (fix_open(&fx) != ST_PASS)
		return -1;
	struct gpu_exec_config c;
	config(&c, &fx, 1);
	static const double lat[8] = {5, 8, 10, 12, 14, 16, 18, 50};
	profile_one(&c.profile, 32, 8, lat);
	c.n_instances = 2;
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	int rc = -1;
	if (!ex || !serve(ex, 0, 32, 8) || !serve(ex, 1, 32, 8))
		goto out;
	if (submit(ex, 1, 100, b_deadline) != 0)
		goto out;
	if (!wait_stats(ex, 1, 1, 0))
		goto out;
	for (int u = 0; u < 8; u++)
		if (submit(ex, 0, (uint64_t)u, T0 + 500 * MS) != 0)
			goto out;
	if (!wait_done(8))
		goto out;
	sleep_ms(20);
	if (atomic_load(&recs[100].count) == 0) {
		/* A ran alone; B waits until its own slack runs out */
		if (atomic_load(&n_done) != 8 || !wait_stats(ex, 1, 1, 0))
			goto out;
		atomic_store(&fake_now, b_start_at - 1);
		sleep_ms(20);
		if (atomic_load(&n_done) != 8)
			goto out;
		atomic_store(&fake_now, b_start_at);
		if (!wait_done(9))
			goto out;
	}
	if (!wait_done(9) || recs[100].status != GPU_EXEC_DONE || recs[100].batch != 1)
		goto out;
	for (int u = 0; u < 8; u++)
		if (recs[u].status != GPU_EXEC_DONE || recs[u].batch != 8)
			goto out;
	rc = recs[100].seq < recs[0].seq;
out:
	if (rc < 0)
		fprintf(stderr, "slack_order(%llu): %d frames done, B %s\n",
			(unsigned long long)(b_deadline - T0), atomic_load(&n_done),
			atomic_load(&recs[100].count) ? "done" : "not done");
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return rc;
}

static int test_exec_nonpreemptive_edf_respects_slack(void)
{
	/* B's slack 56 - 7 = 49 ms < 50 ms: it would miss its deadline behind A's batch */
	ST_CHECK_EQ(slack_order(T0 + 56 * MS, 0), 1);
	rec_reset();
	/* B's slack 58 - 7 = 51 ms > 50 ms: A first; B starts once now + 7 ms >= 58 ms */
	ST_CHECK_EQ(slack_order(T0 + 58 * MS, T0 + 51 * MS), 0);
	return ST_PASS;
}

/* Runs one frame (batch of 1, profiled 10 ms) whose batch takes `ms` on the test clock;
 * returns the ratio reported after it. */
static double ratio_after_batch(struct gpu_exec *ex, int *u, double ms)
{
	atomic_store(&script_batch_ns, (uint64_t)(ms * 1e6));
	if (submit(ex, 0, (uint64_t)*u, T0 + 3600000 * MS) != 0 || !wait_done(*u + 1))
		return -1;
	(*u)++;
	struct gpu_exec_instance_stats s;
	gpu_exec_instance_stats(ex, 0, &s);
	return s.ratio;
}

/* The scripted fixture with one instance serving size 32 at batch 1, profiled 10 ms (the
 * test clock advances by script_batch_ns per batch). NULL on failure. */
static struct gpu_exec *scripted_open(struct fix *fx)
{
	if (fix_open_script(fx) != ST_PASS)
		return NULL;
	struct gpu_exec_config c;
	config(&c, fx, 1);
	static const double lat[1] = {10};
	profile_one(&c.profile, 32, 1, lat);
	char err[256] = "";
	struct gpu_exec *ex = gpu_exec_create(&c, err, sizeof err);
	if (ex && !serve(ex, 0, 32, 1)) {
		gpu_exec_destroy(ex);
		ex = NULL;
	}
	return ex;
}

/* A batch waiting to fill starts earlier by the spread of its batch times past their median:
 * with a 95th-percentile ratio of 3 and a median of 1, est(1) = 30 ms and the spread 20 ms,
 * so a frame due at D runs (batch 2 planned, one frame) at D - 30 - guard 2 - 20. */
static int test_exec_start_slack_covers_ratio_spread(void)
{
	struct fix fx;
	struct gpu_exec *ex = scripted_open(&fx);
	ST_CHECK(ex != NULL);
	int u = 0;
	for (int i = 0; i < 4; i++)
		ST_CHECK(ratio_after_batch(ex, &u, 30) == 3.0);
	for (int i = 0; i < 28; i++)
		ST_CHECK(ratio_after_batch(ex, &u, 10) == 3.0);
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK(s.ratio == 3.0 && s.ratio_p50 == 1.0);
	ST_CHECK(serve(ex, 0, 32, 2)); /* same size: the history stays */
	atomic_store(&script_batch_ns, 0);
	uint64_t t = fake_clock(), d = t + 200 * MS;
	ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, d), 0);
	ST_CHECK(wait_stats(ex, 0, 1, 0));
	atomic_store(&fake_now, d - 52 * MS - 100000); /* the guard alone would wait to d - 32 */
	sleep_ms(50);
	ST_CHECK_EQ(atomic_load(&recs[u].count), 0);
	atomic_store(&fake_now, d - 52 * MS);
	ST_CHECK(wait_done(u + 1));
	ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
	ST_CHECK_EQ(recs[u].start_ns, d - 52 * MS);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

/* Batch ratios (measured / profiled) mostly 1 and a few of 3: the correction ratio is their
 * 95th percentile over the last 32 batches, not their mean, and forgets older batches; the
 * median is reported beside it; a switch to another size starts a fresh history. */
static int test_exec_ratio_uses_95th_percentile(void)
{
	struct fix fx;
	struct gpu_exec *ex = scripted_open(&fx);
	ST_CHECK(ex != NULL);
	int u = 0;
	/* 4 batches of 30 ms (ratio 3), then 28 of 10 ms (ratio 1): 4 of 32 above 1 (12.5 %) */
	for (int i = 0; i < 4; i++)
		ST_CHECK(ratio_after_batch(ex, &u, 30) == 3.0);
	double r = 0;
	for (int i = 0; i < 28; i++)
		r = ratio_after_batch(ex, &u, 10);
	ST_CHECK(r == 3.0); /* the mean would be 1.25 */
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK(s.ratio == 3.0);
	ST_CHECK(s.ratio_p50 == 1.0); /* the median, what throughput is planned with */
	/* 3 more of ratio 1: the last 32 hold one ratio of 3 (3 %) */
	for (int i = 0; i < 3; i++)
		r = ratio_after_batch(ex, &u, 10);
	ST_CHECK(r == 1.0);
	/* a batch twice as fast as profiled: the 95th percentile is still 1 */
	r = ratio_after_batch(ex, &u, 5);
	ST_CHECK(r == 1.0);
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK_EQ(s.batches, 36);
	ST_CHECK_EQ(s.busy_ns, (4 * 30 + 31 * 10 + 5) * MS);
	/* est() uses the ratio: with 3.0, a frame due 25 ms ahead cannot make it (3 x 10 ms) */
	for (int i = 0; i < 4; i++)
		r = ratio_after_batch(ex, &u, 30);
	ST_CHECK(r == 3.0);
	atomic_store(&script_batch_ns, 0);
	ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, fake_clock() + 25 * MS), 0);
	ST_CHECK(wait_done(u + 1));
	ST_CHECK_EQ(recs[u].status, GPU_EXEC_LATE);
	u++;
	/* another size starts afresh: the median (1) stands in, then its own first batch */
	ST_CHECK(serve(ex, 0, 16, 1));
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK(s.ratio == 1.0 && s.ratio_p50 == 1.0);
	r = ratio_after_batch(ex, &u, 20);
	ST_CHECK(r == 2.0);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

/* After a switch to another size the previous median stands in for the ratio until the new
 * size's first batch; a frame that stand-in judges late is run (a probe) rather than dropped:
 * the switched instance dropped every frame for a second before (regression). */
static int test_exec_switch_probes_before_dropping_late(void)
{
	struct fix fx;
	struct gpu_exec *ex = scripted_open(&fx);
	ST_CHECK(ex != NULL);
	int u = 0;
	double r = 0;
	for (int i = 0; i < 8; i++) /* ratio and median 3 at size 32 */
		r = ratio_after_batch(ex, &u, 30);
	ST_CHECK(r == 3.0);
	/* with history at this size a frame due in 25 ms is dropped (est 30 ms) */
	atomic_store(&script_batch_ns, 10 * MS);
	ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, fake_clock() + 25 * MS), 0);
	ST_CHECK(wait_done(u + 1));
	ST_CHECK_EQ(recs[u].status, GPU_EXEC_LATE);
	u++;
	/* size 16: the stand-in (3) judges the same frame late; it runs alone instead, takes
	 * 10 ms, and the new size's own ratio (1) replaces the stand-in */
	ST_CHECK(serve(ex, 0, 16, 1));
	struct gpu_exec_instance_stats s;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK(s.ratio == 3.0);
	uint64_t probes = s.probes;
	ST_CHECK_EQ(submit(ex, 0, (uint64_t)u, fake_clock() + 25 * MS), 0);
	ST_CHECK(wait_done(u + 1));
	ST_CHECK_EQ(recs[u].status, GPU_EXEC_DONE);
	u++;
	ST_CHECK_EQ(gpu_exec_instance_stats(ex, 0, &s), 0);
	ST_CHECK(s.ratio == 1.0);
	ST_CHECK_EQ(s.probes, probes + 1);
	gpu_exec_destroy(ex);
	fix_close(&fx);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_exec_every_frame_gets_exactly_one_done),
	ST_CASE(test_exec_full_batch_runs_at_target_size),
	ST_CASE(test_exec_partial_batch_runs_before_deadline),
	ST_CASE(test_exec_batch_cut_to_meet_deadline),
	ST_CASE(test_exec_late_frames_dropped_before_running),
	ST_CASE(test_exec_probe_after_idle_measures_again),
	ST_CASE(test_exec_switch_probes_before_dropping_late),
	ST_CASE(test_exec_start_slack_covers_ratio_spread),
	ST_CASE(test_exec_edf_between_instances),
	ST_CASE(test_exec_instance_out_of_service_and_bad_instance),
	ST_CASE(test_exec_prepare_ahead_and_switch_size),
	ST_CASE(test_exec_bad_image_fails_alone),
	ST_CASE(test_exec_detections_in_source_pixels),
	ST_CASE(test_exec_correction_ratio_tracks_measured_time),
	ST_CASE(test_exec_destroy_reports_stopped_frames),
	ST_CASE(test_exec_full_queue_reports_overload),
	ST_CASE(test_exec_bad_config_refused_with_reason),
	ST_CASE(test_exec_async_prepare_keeps_serving),
	ST_CASE(test_exec_nonpreemptive_edf_respects_slack),
	ST_CASE(test_exec_ratio_uses_95th_percentile))
