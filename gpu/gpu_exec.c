/* gpu_exec — the executor: one thread per backend that batches the frames of its model
 * instances and time-slices the device between them, earliest deadline first (DESIGN.md §6).
 *
 * Threads: one producer (gpu_exec_submit) and one control thread (gpu_exec_instance_set,
 * gpu_exec_prepare) talk to the executor thread through two single-producer single-consumer
 * rings; everything else (instance heaps, variant cache, ratios) belongs to the executor
 * thread, which publishes counters through relaxed atomics. All memory is reserved at create;
 * only preparing a variant allocates. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gpu/gpu.h"

#define EXEC_CMD_RING 256  /* control commands in flight */
#define EXEC_PROBE_NS 1000000000ull /* an instance idle this long while dropping late frames
					   * runs one anyway, to measure (ex_drop_late) */
#define EXEC_RATIOS 32     /* batch ratios kept per instance (their 95th percentile is used) */
#define EXEC_RATIO_MIN 0.25
#define EXEC_RATIO_MAX 8.0
#define EXEC_IDLE_NS 200000 /* longest sleep while frames wait */
#define EXEC_REST_NS 1000000 /* sleep once nothing has been queued for EXEC_REST_AFTER loops */
#define EXEC_REST_AFTER 256
#define EXEC_POLL_SPIN 64   /* polls before yielding the CPU while a batch runs */
#define EXEC_MAX_SIDE 16384 /* largest variant input side accepted */

enum { EXEC_CMD_SET = 1, EXEC_CMD_PREPARE = 2 };
enum { EXEC_PREP_IDLE = 0, EXEC_PREP_ASKED = 1, EXEC_PREP_DONE = 2 };

struct exec_cmd {
	int op, instance, size, batch;
};

/* A prepared variant (cache slot); var NULL: free. */
struct exec_var {
	struct gpu_variant *var;
	int size;
	uint64_t used;        /* LRU tick */
	_Atomic int pub_size; /* size once prepared, 0 otherwise (read by gpu_exec_ready) */
};

struct exec_stats {
	_Atomic int size, batch;
	_Atomic uint64_t frames_in, frames_done, frames_late, frames_overload, frames_failed,
		frames_no_instance, batches, busy_ns;
	_Atomic uint64_t batch_hist[GPU_EXEC_MAX_BATCH];
	_Atomic unsigned queued;
	_Atomic uint64_t ratio_bits, ratio_p50_bits; /* doubles */
	_Atomic uint64_t probes;
};

struct exec_inst {
	/* executor thread only */
	struct gpu_exec_frame *heap; /* min-heap on deadline_ns, queue_size frames */
	unsigned n;
	int var;   /* cache slot in use, -1: none */
	int size;  /* input side of that variant, 0: none */
	int want;  /* size asked for by the control thread, 0: out of service */
	int batch; /* target batch */
	int prof;  /* profile row of size */
	double ratios[EXEC_RATIOS], ratio, ratio_med;
	int n_ratios, next_ratio;
	int sched_ready;           /* this round: full or out of slack */
	int probe;                 /* run the earliest frame alone now (ex_drop_late) */
	int standin;               /* the ratio is another size's median (switched, no batch yet) */
	uint64_t last_run_ns;      /* end of its last batch (creation time before any) */
	uint64_t sched_d, sched_e; /* this round: earliest deadline, est(n) + guard + spread */
	struct exec_stats st;
};

struct gpu_exec {
	struct gpu_exec_config cfg;
	char name[32];
	int prof_batches[GPU_EXEC_MAX_SIZES]; /* leading profiled batches of each size */
	uint64_t guard_ns;
	uint64_t created_ns;

	struct exec_inst *inst;
	struct exec_var *vars;
	int n_vars; /* slots */
	uint64_t tick;
	int ahead[GPU_EXEC_MAX_SIZES]; /* sizes asked for by gpu_exec_prepare, not yet prepared */
	int n_ahead;
	_Atomic int failed[GPU_EXEC_MAX_SIZES]; /* sizes whose preparation failed */
	int next_failed;

	struct gpu_exec_frame *batch; /* max_batch frames of the running batch */
	struct gpu_det *dets;         /* max_batch x max_det */
	int *n_det;                   /* per batch item, -errno when decoding failed */

	struct gpu_exec_frame *ring;
	uint64_t ring_mask;
	_Alignas(64) _Atomic uint64_t ring_head;
	_Alignas(64) _Atomic uint64_t ring_tail;
	struct exec_cmd cmds[EXEC_CMD_RING];
	_Alignas(64) _Atomic uint64_t cmd_head;
	_Alignas(64) _Atomic uint64_t cmd_tail;

	_Alignas(64) _Atomic uint64_t busy_ns;
	_Atomic int stop;
	pthread_t thread;

	/* cfg.prepare_async: one preparation at a time on the preparer thread */
	pthread_t prep_thread;
	int prep_started;
	pthread_mutex_t prep_lock;
	pthread_cond_t prep_cond;
	int prep_state; /* under prep_lock: EXEC_PREP_IDLE, _ASKED, _DONE */
	int prep_stop;  /* under prep_lock */
	int prep_size;
	struct gpu_variant *prep_var; /* result (NULL: failed, reason in prep_err) */
	char prep_err[256];

	pthread_mutex_t err_lock;
	char err[256];     /* written by the executor thread under err_lock */
	char err_ctl[256]; /* copy handed to the control thread */
};

static void ex_err(char *err, size_t len, const char *fmt, ...)
{
	if (!err || !len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static uint64_t ex_monotonic(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline uint64_t ex_now(const struct gpu_exec *ex) { return ex->cfg.now_ns(); }

#define ST_ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)
#define ST_SET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define ST_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

static void ex_set_ratio(struct exec_inst *in, double r, double median)
{
	uint64_t bits;
	in->ratio = r;
	in->ratio_med = median;
	memcpy(&bits, &r, sizeof bits);
	ST_SET(in->st.ratio_bits, bits);
	memcpy(&bits, &median, sizeof bits);
	ST_SET(in->st.ratio_p50_bits, bits);
}

const char *gpu_exec_status_name(int status)
{
	static const char *const names[] = {"done", "late", "overload", "no_instance", "failed",
					    "stopped"};
	if (status < 0 || status >= (int)(sizeof names / sizeof names[0]))
		return NULL;
	return names[status];
}

void gpu_exec_config_defaults(struct gpu_exec_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->n_instances = 1;
	cfg->max_batch = 8;
	cfg->max_variants = 4;
	cfg->max_det = 100;
	cfg->queue_size = 256;
	cfg->ring_size = 1024;
	cfg->guard_ms = 2.0;
	cfg->cpu = -1;
	for (int c = 0; c < 3; c++)
		cfg->norm.std[c] = 1.0f;
}

/* ---- latency estimate ------------------------------------------------------------------- */

/* Profile row of input side `size`: the next larger profiled size, the largest above all. */
static int ex_prof_row(const struct gpu_exec *ex, int size)
{
	const struct gpu_exec_profile *p = &ex->cfg.profile;
	for (int i = 0; i < p->n_sizes; i++)
		if (p->size[i] >= size)
			return i;
	return p->n_sizes - 1;
}

/* Profiled latency (ms) of n frames in row r; extrapolated linearly from the last two
 * profiled batches (from the origin when only batch 1 is there). */
static double ex_prof_ms(const struct gpu_exec *ex, int r, int n)
{
	const double *l = ex->cfg.profile.lat_ms[r];
	int k = ex->prof_batches[r];
	if (n <= k)
		return l[n - 1];
	if (k == 1)
		return l[0] * n;
	double slope = l[k - 1] - l[k - 2];
	if (slope < 0)
		slope = 0;
	return l[k - 1] + slope * (n - k);
}

/* est(n) in ns: profiled latency times the instance's correction ratio. */
static uint64_t ex_est_ns(const struct gpu_exec *ex, const struct exec_inst *in, int n)
{
	double ns = ex_prof_ms(ex, in->prof, n) * in->ratio * 1e6;
	return ns >= 1e18 ? (uint64_t)1e18 : (uint64_t)ns;
}

/* ---- frames: heap and completion ---------------------------------------------------------- */

static void ex_done(struct gpu_exec *ex, const struct gpu_exec_frame *f, int status, int size,
		    int batch, uint64_t start, uint64_t end, int n_det, const struct gpu_det *det)
{
	struct gpu_exec_done d = {
		.user = f->user, .status = status, .instance = f->instance, .size = size,
		.batch = batch, .start_ns = start, .end_ns = end, .n_det = n_det, .det = det,
	};
	ex->cfg.done(ex->cfg.done_arg, &d);
}

static void heap_push(struct exec_inst *in, const struct gpu_exec_frame *f)
{
	unsigned i = in->n++;
	while (i > 0) {
		unsigned p = (i - 1) / 2;
		if (in->heap[p].deadline_ns <= f->deadline_ns)
			break;
		in->heap[i] = in->heap[p];
		i = p;
	}
	in->heap[i] = *f;
	ST_SET(in->st.queued, in->n);
}

static void heap_pop(struct exec_inst *in, struct gpu_exec_frame *out)
{
	*out = in->heap[0];
	struct gpu_exec_frame last = in->heap[--in->n];
	unsigned i = 0;
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= in->n)
			break;
		if (c + 1 < in->n && in->heap[c + 1].deadline_ns < in->heap[c].deadline_ns)
			c++;
		if (last.deadline_ns <= in->heap[c].deadline_ns)
			break;
		in->heap[i] = in->heap[c];
		i = c;
	}
	if (in->n)
		in->heap[i] = last;
	ST_SET(in->st.queued, in->n);
}

/* Every queued frame of the instance gets `status` (NO_INSTANCE or STOPPED). */
static void ex_flush(struct gpu_exec *ex, struct exec_inst *in, int status)
{
	struct gpu_exec_frame f;
	while (in->n) {
		heap_pop(in, &f);
		if (status == GPU_EXEC_NO_INSTANCE)
			ST_ADD(in->st.frames_no_instance, 1);
		ex_done(ex, &f, status, 0, 0, 0, 0, 0, NULL);
	}
}

/* ---- variant cache ------------------------------------------------------------------------ */

static int ex_var_find(const struct gpu_exec *ex, int size)
{
	for (int i = 0; i < ex->n_vars; i++)
		if (ex->vars[i].var && ex->vars[i].size == size)
			return i;
	return -1;
}

static int ex_var_in_use(const struct gpu_exec *ex, int slot)
{
	for (int i = 0; i < ex->cfg.n_instances; i++)
		if (ex->inst[i].var == slot)
			return 1;
	return 0;
}

static void ex_var_close(struct exec_var *v)
{
	atomic_store_explicit(&v->pub_size, 0, memory_order_release);
	gpu_variant_close(v->var);
	v->var = NULL;
	v->size = 0;
}

/* Closes least recently used variants that no instance runs (never `keep`) while more than
 * max_variants are held. */
static void ex_var_evict(struct gpu_exec *ex, int keep)
{
	for (;;) {
		int count = 0, lru = -1;
		for (int i = 0; i < ex->n_vars; i++) {
			if (!ex->vars[i].var)
				continue;
			count++;
			if (i != keep && !ex_var_in_use(ex, i) &&
			    (lru < 0 || ex->vars[i].used < ex->vars[lru].used))
				lru = i;
		}
		if (count <= ex->cfg.max_variants || lru < 0)
			return;
		ex_var_close(&ex->vars[lru]);
	}
}

/* A new size starts a fresh ratio history (the ratio differs by size: fixed costs weigh more
 * on small inputs; an old history would misjudge the new variant's deadlines for up to 32
 * batches); until its first batch the previous median stands in. */
static void ex_inst_switch(struct gpu_exec *ex, struct exec_inst *in, int slot)
{
	if (in->size && in->size != ex->vars[slot].size && in->n_ratios > 0) {
		in->n_ratios = 0;
		in->next_ratio = 0;
		in->standin = 1;
		ex_set_ratio(in, in->ratio_med, in->ratio_med);
	}
	in->var = slot;
	in->size = ex->vars[slot].size;
	in->prof = ex_prof_row(ex, in->size);
	ex->vars[slot].used = ++ex->tick;
	ST_SET(in->st.size, in->size);
}

static void ex_failed_set(struct gpu_exec *ex, int size, int failed)
{
	for (int i = 0; i < GPU_EXEC_MAX_SIZES; i++)
		if (atomic_load_explicit(&ex->failed[i], memory_order_relaxed) == size) {
			if (!failed)
				atomic_store_explicit(&ex->failed[i], 0, memory_order_release);
			return;
		}
	if (!failed)
		return;
	atomic_store_explicit(&ex->failed[ex->next_failed], size, memory_order_release);
	ex->next_failed = (ex->next_failed + 1) % GPU_EXEC_MAX_SIZES;
}

/* Installs the variant of `size` (found in the cache, or v freshly prepared: NULL when that
 * failed, reason in perr), switches the instances waiting for it and evicts beyond
 * max_variants. Setup work: allocates. */
static void ex_install(struct gpu_exec *ex, int size, struct gpu_variant *v, const char *perr)
{
	for (int i = 0; i < ex->n_ahead; i++)
		if (ex->ahead[i] == size) {
			ex->ahead[i] = ex->ahead[--ex->n_ahead];
			break;
		}
	int slot = ex_var_find(ex, size);
	if (slot >= 0 && v) { /* prepared twice: keep the cached one */
		gpu_variant_close(v);
		v = NULL;
	}
	if (slot < 0) {
		for (int i = 0; i < ex->n_vars && slot < 0; i++)
			if (!ex->vars[i].var)
				slot = i;
		char err[256] = "";
		if (perr)
			snprintf(err, sizeof err, "%s", perr);
		if (slot < 0 && v) {
			gpu_variant_close(v);
			v = NULL;
			snprintf(err, sizeof err, "no free variant slot");
		}
		if (!v) {
			pthread_mutex_lock(&ex->err_lock);
			snprintf(ex->err, sizeof ex->err, "exec %s: size %d: %s", ex->name, size,
				 err);
			pthread_mutex_unlock(&ex->err_lock);
			ex_failed_set(ex, size, 1);
			for (int i = 0; i < ex->cfg.n_instances; i++) {
				struct exec_inst *in = &ex->inst[i];
				if (in->want != size || in->size == size)
					continue;
				in->want = in->size; /* keeps what it ran, if anything */
				if (!in->want)
					ex_flush(ex, in, GPU_EXEC_NO_INSTANCE);
			}
			return;
		}
		ex->vars[slot].var = v;
		ex->vars[slot].size = size;
		ex->vars[slot].used = ++ex->tick;
		ex_failed_set(ex, size, 0);
		atomic_store_explicit(&ex->vars[slot].pub_size, size, memory_order_release);
	}
	for (int i = 0; i < ex->cfg.n_instances; i++)
		if (ex->inst[i].want == size && ex->inst[i].size != size)
			ex_inst_switch(ex, &ex->inst[i], slot);
	ex_var_evict(ex, slot);
}

/* Prepares (or finds) the variant of `size` on this thread and installs it. */
static void ex_prepare(struct gpu_exec *ex, int size)
{
	struct gpu_variant *v = NULL;
	char err[256] = "";
	if (ex_var_find(ex, size) < 0)
		v = gpu_variant_prepare_image(ex->cfg.family, ex->cfg.max_batch, size, size, err,
					      sizeof err);
	ex_install(ex, size, v, err);
}

/* The size to prepare next (instances first, then gpu_exec_prepare's), 0 when none. */
static int ex_prepare_next(const struct gpu_exec *ex)
{
	for (int i = 0; i < ex->cfg.n_instances; i++) {
		const struct exec_inst *in = &ex->inst[i];
		if (in->want && in->want != in->size)
			return in->want;
	}
	return ex->n_ahead ? ex->ahead[0] : 0;
}

/* The preparer thread (cfg.prepare_async): prepares one variant at a time while the
 * executor thread goes on running batches; the executor installs the result. It runs at
 * nice 10: on a busy machine a preparation takes longer rather than making the running
 * batches late (failing to lower it changes nothing else). */
static void *ex_prep_main(void *arg)
{
	struct gpu_exec *ex = arg;
	pthread_setname_np(pthread_self(), "shoal-prepare");
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	pthread_mutex_lock(&ex->prep_lock);
	for (;;) {
		while (!ex->prep_stop && ex->prep_state != EXEC_PREP_ASKED)
			pthread_cond_wait(&ex->prep_cond, &ex->prep_lock);
		if (ex->prep_stop)
			break;
		int size = ex->prep_size;
		pthread_mutex_unlock(&ex->prep_lock);
		char err[256] = "";
		struct gpu_variant *v = gpu_variant_prepare_image(ex->cfg.family, ex->cfg.max_batch,
								  size, size, err, sizeof err);
		pthread_mutex_lock(&ex->prep_lock);
		ex->prep_var = v;
		snprintf(ex->prep_err, sizeof ex->prep_err, "%s", err);
		ex->prep_state = EXEC_PREP_DONE;
	}
	pthread_mutex_unlock(&ex->prep_lock);
	return NULL;
}

/* One step of pending preparation. Synchronous: prepares the next size here; returns 1 when
 * one was done. Asynchronous: installs a finished preparation (returns 1) or hands the next
 * size to the preparer and returns 0, so batches keep running meanwhile. */
static int ex_prepare_one(struct gpu_exec *ex)
{
	int size = ex_prepare_next(ex);
	if (!ex->prep_started) {
		if (!size)
			return 0;
		ex_prepare(ex, size);
		return 1;
	}
	pthread_mutex_lock(&ex->prep_lock);
	int state = ex->prep_state;
	if (state == EXEC_PREP_DONE) {
		int psize = ex->prep_size;
		struct gpu_variant *v = ex->prep_var;
		char err[256];
		snprintf(err, sizeof err, "%s", ex->prep_err);
		ex->prep_var = NULL;
		ex->prep_state = EXEC_PREP_IDLE;
		pthread_mutex_unlock(&ex->prep_lock);
		ex_install(ex, psize, v, err);
		return 1;
	}
	if (state == EXEC_PREP_IDLE && size) {
		if (ex_var_find(ex, size) >= 0) { /* cached: nothing to prepare */
			pthread_mutex_unlock(&ex->prep_lock);
			ex_install(ex, size, NULL, NULL);
			return 1;
		}
		ex->prep_size = size;
		ex->prep_state = EXEC_PREP_ASKED;
		pthread_cond_signal(&ex->prep_cond);
	}
	pthread_mutex_unlock(&ex->prep_lock);
	return 0;
}

/* ---- commands and frames in ---------------------------------------------------------------- */

static void ex_apply(struct gpu_exec *ex, const struct exec_cmd *c)
{
	if (c->op == EXEC_CMD_PREPARE) {
		if (ex_var_find(ex, c->size) >= 0)
			return;
		for (int i = 0; i < ex->n_ahead; i++)
			if (ex->ahead[i] == c->size)
				return;
		if (ex->n_ahead < GPU_EXEC_MAX_SIZES)
			ex->ahead[ex->n_ahead++] = c->size;
		return;
	}
	struct exec_inst *in = &ex->inst[c->instance];
	in->batch = c->batch;
	ST_SET(in->st.batch, c->batch);
	in->want = c->size;
	if (!c->size) {
		in->var = -1;
		in->size = 0;
		ST_SET(in->st.size, 0);
		ex_flush(ex, in, GPU_EXEC_NO_INSTANCE);
		ex_var_evict(ex, -1);
		return;
	}
	int slot = ex_var_find(ex, c->size);
	if (slot >= 0 && in->size != c->size) {
		ex_inst_switch(ex, in, slot);
		ex_var_evict(ex, -1);
	}
	/* otherwise prepared by ex_prepare_one */
}

static void ex_commands(struct gpu_exec *ex)
{
	uint64_t h = atomic_load_explicit(&ex->cmd_head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&ex->cmd_tail, memory_order_acquire);
	for (; h != t; h++) {
		struct exec_cmd c = ex->cmds[h % EXEC_CMD_RING];
		atomic_store_explicit(&ex->cmd_head, h + 1, memory_order_release);
		ex_apply(ex, &c);
	}
}

/* Frames from the submit ring into their instances' heaps. */
static void ex_drain(struct gpu_exec *ex)
{
	uint64_t h = atomic_load_explicit(&ex->ring_head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&ex->ring_tail, memory_order_acquire);
	for (; h != t; h++) {
		struct gpu_exec_frame f = ex->ring[h & ex->ring_mask];
		atomic_store_explicit(&ex->ring_head, h + 1, memory_order_release);
		if (f.instance < 0 || f.instance >= ex->cfg.n_instances) {
			ex_done(ex, &f, GPU_EXEC_NO_INSTANCE, 0, 0, 0, 0, 0, NULL);
			continue;
		}
		struct exec_inst *in = &ex->inst[f.instance];
		ST_ADD(in->st.frames_in, 1);
		if (!in->want) /* a command sent before this frame may still be in its ring */
			ex_commands(ex);
		if (!in->want) {
			ST_ADD(in->st.frames_no_instance, 1);
			ex_done(ex, &f, GPU_EXEC_NO_INSTANCE, 0, 0, 0, 0, 0, NULL);
		} else if (in->n >= ex->cfg.queue_size) {
			ST_ADD(in->st.frames_overload, 1);
			ex_done(ex, &f, GPU_EXEC_OVERLOAD, 0, 0, 0, 0, 0, NULL);
		} else {
			heap_push(in, &f);
		}
	}
}

/* Lazy drop: frames that cannot finish by their deadline even in a batch of one. */
static void ex_drop_late(struct gpu_exec *ex, struct exec_inst *in, uint64_t now)
{
	uint64_t e1 = ex_est_ns(ex, in, 1);
	struct gpu_exec_frame f;
	/* an instance that has not run for EXEC_PROBE_NS while its frames are judged late keeps
	 * the earliest one and runs it alone: a measurement, so that a correction ratio grown
	 * too large (a slow spell) cannot starve the instance for ever. At once after a switch
	 * to a size with no measured batch yet: the ratio then is another size's stand-in (a
	 * smaller size's is larger: fixed costs weigh more), which judged a switched instance's
	 * frames late for up to EXEC_PROBE_NS, every one of them dropped */
	if (in->n && now + e1 > in->heap[0].deadline_ns &&
	    (in->standin || now - in->last_run_ns >= EXEC_PROBE_NS)) {
		in->probe = 1;
		return;
	}
	while (in->n && now + e1 > in->heap[0].deadline_ns) {
		heap_pop(in, &f);
		ST_ADD(in->st.frames_late, 1);
		ex_done(ex, &f, GPU_EXEC_LATE, 0, 0, 0, 0, 0, NULL);
	}
}

/* ---- running a batch ------------------------------------------------------------------------ */

static void ex_record_ratio(struct exec_inst *in, double r)
{
	in->standin = 0;
	in->ratios[in->next_ratio] = r;
	in->next_ratio = (in->next_ratio + 1) % EXEC_RATIOS;
	if (in->n_ratios < EXEC_RATIOS)
		in->n_ratios++;
	/* the 95th percentile, not the mean: a deadline must hold for the slow batches too */
	double sorted[EXEC_RATIOS];
	int n = in->n_ratios;
	memcpy(sorted, in->ratios, (size_t)n * sizeof(double));
	for (int i = 1; i < n; i++) { /* insertion sort of at most 32 values */
		double v = sorted[i];
		int j = i - 1;
		while (j >= 0 && sorted[j] > v) {
			sorted[j + 1] = sorted[j];
			j--;
		}
		sorted[j + 1] = v;
	}
	double s = sorted[(19 * (n - 1) + 10) / 20], m = sorted[(n - 1) / 2];
	s = s < EXEC_RATIO_MIN ? EXEC_RATIO_MIN : s > EXEC_RATIO_MAX ? EXEC_RATIO_MAX : s;
	m = m < EXEC_RATIO_MIN ? EXEC_RATIO_MIN : m > EXEC_RATIO_MAX ? EXEC_RATIO_MAX : m;
	ex_set_ratio(in, s, m);
}

/* Detections of item k from the variant's input pixels (size x size) to the frame's. */
static void ex_scale(struct gpu_det *d, int n, int size, const struct gpu_image *img)
{
	float sx = (float)img->width / (float)size, sy = (float)img->height / (float)size;
	float w = (float)img->width, h = (float)img->height;
	for (int i = 0; i < n; i++) {
		d[i].x0 = fminf(fmaxf(d[i].x0 * sx, 0.0f), w);
		d[i].x1 = fminf(fmaxf(d[i].x1 * sx, 0.0f), w);
		d[i].y0 = fminf(fmaxf(d[i].y0 * sy, 0.0f), h);
		d[i].y1 = fminf(fmaxf(d[i].y1 * sy, 0.0f), h);
	}
}

static void ex_run(struct gpu_exec *ex, struct exec_inst *in, uint64_t now)
{
	int n = (int)in->n < in->batch ? (int)in->n : in->batch;
	uint64_t d0 = in->heap[0].deadline_ns;
	while (n > 1 && now + ex_est_ns(ex, in, n) > d0)
		n--;
	if (in->probe) { /* ex_drop_late: one frame, to measure */
		n = 1;
		in->probe = 0;
		ST_ADD(in->st.probes, 1);
	}
	struct exec_var *ev = &ex->vars[in->var];
	struct gpu_variant *v = ev->var;
	ev->used = ++ex->tick;
	const int size = in->size, max_det = ex->cfg.max_det;
	uint64_t start = ex_now(ex);
	int m = 0;
	for (int k = 0; k < n; k++) {
		heap_pop(in, &ex->batch[m]);
		if (gpu_variant_input_image(v, m, &ex->batch[m].img, &ex->cfg.norm) == 0) {
			m++;
			continue;
		}
		ST_ADD(in->st.frames_failed, 1);
		ex_done(ex, &ex->batch[m], GPU_EXEC_FAILED, 0, 0, 0, 0, 0, NULL);
	}
	if (!m)
		return;
	int rc = gpu_variant_submit(v, m);
	for (int spin = 0; rc == 0; spin++) {
		rc = gpu_variant_poll(v);
		if (rc == 0 && spin >= EXEC_POLL_SPIN)
			sched_yield();
	}
	/* the images must stay untouched until the backend has read them */
	for (int spin = 0, r; (r = gpu_variant_inputs_done(v)) == 0; spin++)
		if (spin >= EXEC_POLL_SPIN)
			sched_yield();
	if (rc > 0 && ex->cfg.post)
		for (int k = 0; k < m; k++) {
			struct gpu_det *d = ex->dets + (size_t)k * (size_t)max_det;
			ex->n_det[k] = gpu_variant_detect(v, ex->cfg.post, k, d, max_det);
			if (ex->n_det[k] > 0)
				ex_scale(d, ex->n_det[k], size, &ex->batch[k].img);
		}
	else
		memset(ex->n_det, 0, (size_t)m * sizeof *ex->n_det);
	uint64_t end = ex_now(ex), took = end > start ? end - start : 0;
	in->last_run_ns = end;

	ST_ADD(in->st.batches, 1);
	ST_ADD(in->st.batch_hist[m - 1], 1);
	ST_ADD(in->st.busy_ns, took);
	ST_ADD(ex->busy_ns, took);
	if (rc > 0)
		ex_record_ratio(in, (double)took / (ex_prof_ms(ex, in->prof, m) * 1e6));
	for (int k = 0; k < m; k++) {
		int ok = rc > 0 && ex->n_det[k] >= 0;
		ST_ADD(*(ok ? &in->st.frames_done : &in->st.frames_failed), 1);
		ex_done(ex, &ex->batch[k], ok ? GPU_EXEC_DONE : GPU_EXEC_FAILED, size, m, start,
			end, ok ? ex->n_det[k] : 0,
			ok ? ex->dets + (size_t)k * (size_t)max_det : NULL);
	}
}

/* ---- the executor thread --------------------------------------------------------------------- */

static void *ex_main(void *arg)
{
	struct gpu_exec *ex = arg;
	char tname[16];
	snprintf(tname, sizeof tname, "shoal-%.9s", ex->name);
	pthread_setname_np(pthread_self(), tname);
	const int n_inst = ex->cfg.n_instances;
	unsigned empty = 0; /* loops in a row with no frame queued */
	while (!atomic_load_explicit(&ex->stop, memory_order_acquire)) {
		ex_commands(ex);
		ex_drain(ex);
		if (ex_prepare_one(ex))
			continue;
		uint64_t now = ex_now(ex), next = UINT64_MAX, best_d = 0, block = 0;
		int best = -1, queued = 0;
		/* pass 1: ready instances (full, or out of slack) and the longest batch among
		 * them, which would hold the device before anything else could run */
		for (int i = 0; i < n_inst; i++) {
			struct exec_inst *in = &ex->inst[i];
			queued |= in->n != 0;
			in->sched_ready = 0;
			if (in->var < 0 || !in->n)
				continue;
			ex_drop_late(ex, in, now);
			if (!in->n)
				continue;
			int q = (int)in->n < ex->cfg.max_batch ? (int)in->n : ex->cfg.max_batch;
			in->sched_d = in->heap[0].deadline_ns;
			/* the start slack: the guard, plus the spread of recent batch times past
			 * their median (the estimate is their 95th percentile; a batch started at
			 * the last moment is late whenever it runs past that, as the tail does
			 * on a loaded machine) */
			uint64_t est = ex_est_ns(ex, in, q);
			uint64_t spread = in->ratio > in->ratio_med /* the ratio is >= 0.25 */
				? (uint64_t)((double)est * (in->ratio - in->ratio_med) / in->ratio) : 0;
			in->sched_e = est + ex->guard_ns + spread;
			if ((int)in->n >= in->batch || now + in->sched_e >= in->sched_d || in->probe) {
				in->sched_ready = 1;
				uint64_t run = est;
				block = run > block ? run : block;
			}
		}
		/* pass 2: an instance whose slack is shorter than that batch becomes ready too
		 * (non-preemptive EDF: it must not be stuck behind a batch that ends after its
		 * last start time); then the earliest deadline among the ready ones runs */
		for (int i = 0; i < n_inst; i++) {
			struct exec_inst *in = &ex->inst[i];
			if (in->var < 0 || !in->n)
				continue;
			uint64_t d = in->sched_d, e = in->sched_e;
			if (in->sched_ready || now + e + block >= d) {
				if (best < 0 || d < best_d) {
					best = i;
					best_d = d;
				}
			} else if (d - e < next) {
				next = d - e;
			}
		}
		if (best >= 0) {
			ex_run(ex, &ex->inst[best], now);
			continue;
		}
		empty = queued ? 0 : empty + 1;
		uint64_t wait = next == UINT64_MAX || next - now > EXEC_IDLE_NS ? EXEC_IDLE_NS
										 : next - now;
		if (empty > EXEC_REST_AFTER)
			wait = EXEC_REST_NS; /* idle: a new frame waits at most this long */
		struct timespec ts = {0, (long)wait};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- create / destroy ------------------------------------------------------------------------ */

static int ex_check(const struct gpu_exec_config *c, const char *name, char *err, size_t len)
{
	if (!c->backend || !c->family || !c->done) {
		ex_err(err, len, "exec %s: backend, family and done are required", name);
		return -EINVAL;
	}
	if (c->n_instances < 1 || c->n_instances > GPU_EXEC_MAX_INSTANCES) {
		ex_err(err, len, "exec %s: n_instances %d not in 1..%d", name, c->n_instances,
		       GPU_EXEC_MAX_INSTANCES);
		return -EINVAL;
	}
	if (c->max_batch < 1 || c->max_batch > GPU_EXEC_MAX_BATCH) {
		ex_err(err, len, "exec %s: max_batch %d not in 1..%d", name, c->max_batch,
		       GPU_EXEC_MAX_BATCH);
		return -EINVAL;
	}
	if (c->max_variants < 1 || c->max_det < 1 || c->max_det > 255) {
		ex_err(err, len,
		       "exec %s: max_variants %d (>= 1) or max_det %d (1..255) out of range", name,
		       c->max_variants, c->max_det);
		return -EINVAL;
	}
	if (c->queue_size < 1 || c->queue_size > (1u << 20)) {
		ex_err(err, len, "exec %s: queue_size %u not in 1..%u", name, c->queue_size,
		       1u << 20);
		return -EINVAL;
	}
	if (c->ring_size < 2 || c->ring_size > (1u << 24) || (c->ring_size & (c->ring_size - 1))) {
		ex_err(err, len, "exec %s: ring_size %u is not a power of two in 2..%u", name,
		       c->ring_size, 1u << 24);
		return -EINVAL;
	}
	if (!(c->guard_ms >= 0 && c->guard_ms < 1e6) || c->cpu < -1 || c->cpu >= CPU_SETSIZE) {
		ex_err(err, len, "exec %s: guard_ms %g (>= 0) or cpu %d (-1 or a CPU) out of range",
		       name, c->guard_ms, c->cpu);
		return -EINVAL;
	}
	for (int i = 0; i < 3; i++)
		if (!(c->norm.std[i] != 0.0f) || !isfinite(c->norm.std[i]) ||
		    !isfinite(c->norm.mean[i])) {
			ex_err(err, len, "exec %s: norm channel %d has std %g, mean %g", name, i,
			       (double)c->norm.std[i], (double)c->norm.mean[i]);
			return -EINVAL;
		}
	const struct gpu_exec_profile *p = &c->profile;
	if (p->n_sizes < 1 || p->n_sizes > GPU_EXEC_MAX_SIZES) {
		ex_err(err, len, "exec %s: profile has %d sizes (1..%d needed)", name, p->n_sizes,
		       GPU_EXEC_MAX_SIZES);
		return -EINVAL;
	}
	for (int i = 0; i < p->n_sizes; i++) {
		if (p->size[i] < 1 || (i && p->size[i] <= p->size[i - 1])) {
			ex_err(err, len,
			       "exec %s: profile sizes not positive and ascending at %d (%d)", name,
			       i, p->size[i]);
			return -EINVAL;
		}
		if (!(p->lat_ms[i][0] > 0) || !isfinite(p->lat_ms[i][0])) {
			ex_err(err, len, "exec %s: profile size %d has no batch-1 latency", name,
			       p->size[i]);
			return -EINVAL;
		}
		for (int b = 0; b < GPU_EXEC_MAX_BATCH; b++)
			if (!(p->lat_ms[i][b] >= 0) || !isfinite(p->lat_ms[i][b])) {
				ex_err(err, len, "exec %s: profile size %d batch %d latency %g",
				       name, p->size[i], b + 1, p->lat_ms[i][b]);
				return -EINVAL;
			}
	}
	return 0;
}

static void ex_free(struct gpu_exec *ex)
{
	if (ex->inst)
		for (int i = 0; i < ex->cfg.n_instances; i++)
			free(ex->inst[i].heap);
	if (ex->vars)
		for (int i = 0; i < ex->n_vars; i++)
			if (ex->vars[i].var)
				ex_var_close(&ex->vars[i]);
	free(ex->inst);
	free(ex->vars);
	free(ex->batch);
	free(ex->dets);
	free(ex->n_det);
	free(ex->ring);
	if (ex->prep_var)
		gpu_variant_close(ex->prep_var);
	pthread_mutex_destroy(&ex->err_lock);
	pthread_mutex_destroy(&ex->prep_lock);
	pthread_cond_destroy(&ex->prep_cond);
	free(ex);
}

static void ex_prep_stop(struct gpu_exec *ex)
{
	if (!ex->prep_started)
		return;
	pthread_mutex_lock(&ex->prep_lock);
	ex->prep_stop = 1;
	pthread_cond_signal(&ex->prep_cond);
	pthread_mutex_unlock(&ex->prep_lock);
	pthread_join(ex->prep_thread, NULL);
	ex->prep_started = 0;
}

struct gpu_exec *gpu_exec_create(const struct gpu_exec_config *cfg, char *err, size_t err_len)
{
	const char *name = cfg && cfg->name ? cfg->name : "exec";
	if (!cfg) {
		ex_err(err, err_len, "exec: no configuration");
		return NULL;
	}
	if (ex_check(cfg, name, err, err_len))
		return NULL;
	struct gpu_exec *ex = calloc(1, sizeof *ex);
	if (!ex) {
		ex_err(err, err_len, "exec %s: out of memory", name);
		return NULL;
	}
	ex->cfg = *cfg;
	snprintf(ex->name, sizeof ex->name, "%s", name);
	ex->cfg.name = ex->name;
	if (!ex->cfg.now_ns)
		ex->cfg.now_ns = ex_monotonic;
	ex->guard_ns = (uint64_t)(cfg->guard_ms * 1e6);
	pthread_mutex_init(&ex->err_lock, NULL);
	pthread_mutex_init(&ex->prep_lock, NULL);
	pthread_cond_init(&ex->prep_cond, NULL);
	for (int i = 0; i < cfg->profile.n_sizes; i++) {
		int k = 0;
		while (k < GPU_EXEC_MAX_BATCH && cfg->profile.lat_ms[i][k] > 0)
			k++;
		ex->prof_batches[i] = k;
	}
	const int n = cfg->n_instances, mb = cfg->max_batch;
	ex->n_vars = cfg->max_variants + n + 1;
	ex->inst = calloc((size_t)n, sizeof *ex->inst);
	ex->vars = calloc((size_t)ex->n_vars, sizeof *ex->vars);
	ex->batch = calloc((size_t)mb, sizeof *ex->batch);
	ex->dets = calloc((size_t)mb * (size_t)cfg->max_det, sizeof *ex->dets);
	ex->n_det = calloc((size_t)mb, sizeof *ex->n_det);
	ex->ring = calloc(cfg->ring_size, sizeof *ex->ring);
	int ok = ex->inst && ex->vars && ex->batch && ex->dets && ex->n_det && ex->ring;
	for (int i = 0; ok && i < n; i++) {
		struct exec_inst *in = &ex->inst[i];
		in->heap = calloc(cfg->queue_size, sizeof *in->heap);
		ok = in->heap != NULL;
		in->var = -1;
		in->batch = mb;
		ST_SET(in->st.batch, mb);
		ex_set_ratio(in, 1.0, 1.0);
	}
	if (!ok) {
		ex_err(err, err_len, "exec %s: out of memory for %d instances x %u frames", name, n,
		       cfg->queue_size);
		ex_free(ex);
		return NULL;
	}
	ex->ring_mask = cfg->ring_size - 1;
	ex->created_ns = ex->cfg.now_ns();
	for (int i = 0; i < n; i++)
		ex->inst[i].last_run_ns = ex->created_ns;
	if (cfg->prepare_async) {
		int prc = pthread_create(&ex->prep_thread, NULL, ex_prep_main, ex);
		if (prc) {
			ex_err(err, err_len, "exec %s: cannot start its preparer thread: %s", name,
			       strerror(prc));
			ex_free(ex);
			return NULL;
		}
		ex->prep_started = 1;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (cfg->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cfg->cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	}
	int rc = pthread_create(&ex->thread, &attr, ex_main, ex);
	pthread_attr_destroy(&attr);
	if (rc) {
		ex_err(err, err_len, "exec %s: cannot start its thread%s: %s", name,
		       cfg->cpu >= 0 ? " on that cpu" : "", strerror(rc));
		ex_prep_stop(ex);
		ex_free(ex);
		return NULL;
	}
	return ex;
}

void gpu_exec_destroy(struct gpu_exec *ex)
{
	if (!ex)
		return;
	atomic_store_explicit(&ex->stop, 1, memory_order_release);
	pthread_join(ex->thread, NULL);
	ex_prep_stop(ex);
	uint64_t h = atomic_load_explicit(&ex->ring_head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&ex->ring_tail, memory_order_acquire);
	for (; h != t; h++)
		ex_done(ex, &ex->ring[h & ex->ring_mask], GPU_EXEC_STOPPED, 0, 0, 0, 0, 0, NULL);
	atomic_store_explicit(&ex->ring_head, h, memory_order_relaxed);
	for (int i = 0; i < ex->cfg.n_instances; i++)
		ex_flush(ex, &ex->inst[i], GPU_EXEC_STOPPED);
	ex_free(ex);
}

/* ---- producer and control sides -------------------------------------------------------------- */

int gpu_exec_submit(struct gpu_exec *ex, const struct gpu_exec_frame *f)
{
	uint64_t t = atomic_load_explicit(&ex->ring_tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&ex->ring_head, memory_order_acquire);
	if (t - h > ex->ring_mask) {
		if (f->instance >= 0 && f->instance < ex->cfg.n_instances)
			ST_ADD(ex->inst[f->instance].st.frames_overload, 1);
		ex_done(ex, f, GPU_EXEC_OVERLOAD, 0, 0, 0, 0, 0, NULL);
		return -ENOBUFS;
	}
	ex->ring[t & ex->ring_mask] = *f;
	atomic_store_explicit(&ex->ring_tail, t + 1, memory_order_release);
	return 0;
}

static int ex_cmd_push(struct gpu_exec *ex, const struct exec_cmd *c)
{
	uint64_t t = atomic_load_explicit(&ex->cmd_tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&ex->cmd_head, memory_order_acquire);
	if (t - h >= EXEC_CMD_RING)
		return -EAGAIN;
	ex->cmds[t % EXEC_CMD_RING] = *c;
	atomic_store_explicit(&ex->cmd_tail, t + 1, memory_order_release);
	return 0;
}

int gpu_exec_instance_set(struct gpu_exec *ex, int instance, int size, int batch)
{
	if (!ex || instance < 0 || instance >= ex->cfg.n_instances || size < 0 ||
	    size > EXEC_MAX_SIDE)
		return -EINVAL;
	if (batch < 1)
		batch = 1;
	if (batch > ex->cfg.max_batch)
		batch = ex->cfg.max_batch;
	struct exec_cmd c = {EXEC_CMD_SET, instance, size, batch};
	return ex_cmd_push(ex, &c);
}

int gpu_exec_prepare(struct gpu_exec *ex, int size)
{
	if (!ex || size < 1 || size > EXEC_MAX_SIDE)
		return -EINVAL;
	struct exec_cmd c = {EXEC_CMD_PREPARE, 0, size, 0};
	return ex_cmd_push(ex, &c);
}

int gpu_exec_ready(const struct gpu_exec *ex, int size)
{
	if (!ex || size < 1)
		return 0;
	for (int i = 0; i < ex->n_vars; i++)
		if (atomic_load_explicit(&ex->vars[i].pub_size, memory_order_acquire) == size)
			return 1;
	for (int i = 0; i < GPU_EXEC_MAX_SIZES; i++)
		if (atomic_load_explicit(&ex->failed[i], memory_order_acquire) == size)
			return -EIO;
	return 0;
}

const char *gpu_exec_error(const struct gpu_exec *ex)
{
	struct gpu_exec *m = (struct gpu_exec *)ex; /* the copy is the control thread's */
	pthread_mutex_lock(&m->err_lock);
	memcpy(m->err_ctl, m->err, sizeof m->err_ctl);
	pthread_mutex_unlock(&m->err_lock);
	return m->err_ctl;
}

int gpu_exec_instance_stats(const struct gpu_exec *ex, int instance,
			    struct gpu_exec_instance_stats *out)
{
	if (!ex || !out || instance < 0 || instance >= ex->cfg.n_instances)
		return -EINVAL;
	struct exec_stats *s = &ex->inst[instance].st;
	out->size = ST_GET(s->size);
	out->batch = ST_GET(s->batch);
	out->frames_in = ST_GET(s->frames_in);
	out->frames_done = ST_GET(s->frames_done);
	out->frames_late = ST_GET(s->frames_late);
	out->frames_overload = ST_GET(s->frames_overload);
	out->frames_failed = ST_GET(s->frames_failed);
	out->frames_no_instance = ST_GET(s->frames_no_instance);
	out->batches = ST_GET(s->batches);
	for (int b = 0; b < GPU_EXEC_MAX_BATCH; b++)
		out->batch_hist[b] = ST_GET(s->batch_hist[b]);
	out->busy_ns = ST_GET(s->busy_ns);
	out->queued = ST_GET(s->queued);
	uint64_t bits = ST_GET(s->ratio_bits);
	memcpy(&out->ratio, &bits, sizeof out->ratio);
	bits = ST_GET(s->ratio_p50_bits);
	memcpy(&out->ratio_p50, &bits, sizeof out->ratio_p50);
	out->probes = ST_GET(s->probes);
	return 0;
}

void gpu_exec_busy(const struct gpu_exec *ex, uint64_t *busy_ns, uint64_t *elapsed_ns)
{
	uint64_t now = ex->cfg.now_ns();
	if (busy_ns)
		*busy_ns = atomic_load_explicit(&ex->busy_ns, memory_order_relaxed);
	if (elapsed_ns)
		*elapsed_ns = now > ex->created_ns ? now - ex->created_ns : 0;
}
