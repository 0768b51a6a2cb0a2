/* CPU backend: worker pool, family (weights in place), variant planning (shapes per batch,
 * one activation arena with lifetime-based reuse) and the run loop. */
#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_cpu_priv.h"

/* ---- worker pool ----------------------------------------------------------------------------
 *
 * One job at a time, published by the caller. The tasks are cut into one contiguous range per
 * thread (so consecutive kernels give each thread the same part of the tensors, which stays
 * in its cache); a thread runs its own range first, then takes what is left of the others'.
 * Each range's next index carries the job's generation in its top bits: a worker that wakes
 * late can only claim tasks of the job it read fn/arg for (its compare-and-swap fails once a
 * newer job is published, and a job is not replaced before all its tasks are done). The
 * caller counts finished tasks, so it never waits for a worker that found nothing left to
 * do. Idle workers spin on the generation for a while before sleeping on a condition
 * variable. */

#define POOL_IDX_BITS 40
#define POOL_IDX_MASK ((UINT64_C(1) << POOL_IDX_BITS) - 1)
#define POOL_GEN_MASK ((UINT64_C(1) << (64 - POOL_IDX_BITS)) - 1)
#define POOL_SPIN 20000 /* idle polls (~50-100 us) before a worker sleeps */
#define POOL_WAIT_SPIN (UINT64_C(1) << 22) /* caller's polls (~10-20 ms) before it yields */

struct pool_range { /* both fields gen << POOL_IDX_BITS | task index */
	_Alignas(64) atomic_uint_fast64_t next;
	atomic_uint_fast64_t end; /* one past the range's last task */
};

struct gpu_cpu_pool {
	int n_threads; /* workers besides the caller */
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t start_cv;
	atomic_int sleepers, stop;
	atomic_uint_fast64_t gen; /* generation of the published job */
	atomic_llong done;        /* tasks finished of the current job */
	void (*fn)(void *, int64_t);
	void (*fn_tid)(void *, int64_t, int);
	void *arg;
	struct pool_range *range; /* n_threads + 1 */
	struct pool_worker *workers;
};

struct pool_worker {
	struct gpu_cpu_pool *p;
	int tid;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Claims and runs tasks of job generation g, own range first; returns how many it ran. */
static int64_t pool_drain(struct gpu_cpu_pool *p, uint64_t g, int tid)
{
	int64_t ran = 0;
	void (*fn)(void *, int64_t) = p->fn;
	void (*fn_tid)(void *, int64_t, int) = p->fn_tid;
	void *arg = p->arg;
	int nr = p->n_threads + 1;
	for (int k = 0; k < nr; k++) {
		struct pool_range *r = &p->range[(tid + k) % nr];
		uint64_t end = atomic_load_explicit(&r->end, memory_order_acquire);
		if (end >> POOL_IDX_BITS != (g & POOL_GEN_MASK))
			continue; /* not this job's range (a newer one is being published) */
		uint64_t cur = atomic_load_explicit(&r->next, memory_order_acquire);
		for (;;) {
			if (cur >> POOL_IDX_BITS != (g & POOL_GEN_MASK) || cur >= end)
				break;
			int64_t i = (int64_t)(cur & POOL_IDX_MASK);
			if (!atomic_compare_exchange_weak_explicit(&r->next, &cur, cur + 1,
								   memory_order_acq_rel,
								   memory_order_acquire))
				continue;
			if (fn_tid)
				fn_tid(arg, i, tid);
			else
				fn(arg, i);
			ran++;
			cur = atomic_load_explicit(&r->next, memory_order_acquire);
		}
	}
	if (ran)
		atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
	return ran;
}

static void *pool_main(void *arg)
{
	struct pool_worker *w = arg;
	struct gpu_cpu_pool *p = w->p;
	uint64_t seen = 0;
	for (;;) {
		uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
		for (int s = 0; g == seen && s < POOL_SPIN && !atomic_load(&p->stop); s++) {
			cpu_relax();
			g = atomic_load_explicit(&p->gen, memory_order_acquire);
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->start_cv, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			break;
		seen = g;
		pool_drain(p, g, w->tid);
	}
	return NULL;
}

struct gpu_cpu_pool *gpu_cpu_pool_create(int threads)
{
	struct gpu_cpu_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->start_cv, NULL);
	int nw = threads > 1 ? threads - 1 : 0;
	p->th = calloc((size_t)(nw ? nw : 1), sizeof *p->th);
	struct pool_worker *ws = calloc((size_t)(nw ? nw : 1), sizeof *ws);
	p->range = aligned_alloc(64, (size_t)(nw + 1) * sizeof *p->range);
	if (!p->th || !ws || !p->range) {
		free(p->th);
		free(ws);
		free(p->range);
		free(p);
		return NULL;
	}
	memset(p->range, 0, (size_t)(nw + 1) * sizeof *p->range);
	p->workers = ws;
	for (int i = 0; i < nw; i++) {
		ws[i].p = p;
		ws[i].tid = i + 1;
		if (pthread_create(&p->th[i], NULL, pool_main, &ws[i]))
			break;
		p->n_threads++;
	}
	return p;
}

void gpu_cpu_pool_destroy(struct gpu_cpu_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->start_cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_threads; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->start_cv);
	free(p->th);
	free(p->workers);
	free(p->range);
	free(p);
}

int gpu_cpu_pool_threads(const struct gpu_cpu_pool *p) { return p ? p->n_threads + 1 : 1; }

static void pool_run(struct gpu_cpu_pool *p, int64_t n, void (*fn)(void *, int64_t),
		     void (*fn_tid)(void *, int64_t, int), void *arg)
{
	if (n <= 0)
		return;
	if (!p || p->n_threads == 0 || n == 1) {
		for (int64_t i = 0; i < n; i++) {
			if (fn_tid)
				fn_tid(arg, i, 0);
			else
				fn(arg, i);
		}
		return;
	}
	/* the previous job is complete (done == its n), so no worker reads these now */
	p->fn = fn;
	p->fn_tid = fn_tid;
	p->arg = arg;
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	uint64_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
	int nr = p->n_threads + 1;
	uint64_t tag = (g & POOL_GEN_MASK) << POOL_IDX_BITS;
	for (int t = 0; t < nr; t++) {
		atomic_store_explicit(&p->range[t].end, tag | (uint64_t)(n * (t + 1) / nr),
				      memory_order_release);
		atomic_store_explicit(&p->range[t].next, tag | (uint64_t)(n * t / nr),
				      memory_order_release);
	}
	atomic_store(&p->gen, g); /* seq_cst: ordered before the sleepers check below */
	if (atomic_load(&p->sleepers)) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->start_cv);
		pthread_mutex_unlock(&p->mu);
	}
	pool_drain(p, g, 0);
	/* the tasks still running are short (well under a millisecond): yielding the core here
	 * would hand it to another process for a whole time slice on a loaded machine */
	for (uint64_t s = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; s++) {
		if (s < POOL_WAIT_SPIN)
			cpu_relax();
		else
			sched_yield();
	}
}

void gpu_cpu_pool_run(struct gpu_cpu_pool *p, int64_t n, void (*fn)(void *arg, int64_t i),
		      void *arg)
{
	pool_run(p, n, fn, NULL, arg);
}

void gpu_cpu_pool_run_tid(struct gpu_cpu_pool *p, int64_t n,
			  void (*fn)(void *arg, int64_t i, int tid), void *arg)
{
	pool_run(p, n, NULL, fn, arg);
}

/* ---- backend and family ---------------------------------------------------------------------- */

struct cpu_backend {
	struct gpu_cpu_pool *pool;
	int threads;
};

struct cpu_family {
	struct cpu_backend *be;
	const struct mdl_graph *g;
	float **wpack; /* per node: Conv weights packed for the fast path, or NULL */
};

struct cpu_variant {
	struct cpu_family *fam;
	const struct mdl_graph *g;
	int max_batch;
	struct mdl_infer **inf;  /* [max_batch + 1]; NULL where that batch does not infer */
	float *arena;            /* activations, planned at max batch */
	int64_t *off;            /* per value: float offset in arena, -1 if not a runtime value */
	float **outbuf;          /* per graph output that is known before run time: float copy */
	float *scratch;
	unsigned char *run_node; /* per node: 1 when it runs (outputs not known) */
	int last_batch, in_flight;
};

static void cpu_destroy(void *impl)
{
	struct cpu_backend *be = impl;
	gpu_cpu_pool_destroy(be->pool);
	free(be);
}

static void cpu_family_close(void *impl)
{
	struct cpu_family *f = impl;
	if (!f)
		return;
	for (int i = 0; f->wpack && i < f->g->n_nodes; i++)
		free(f->wpack[i]);
	free(f->wpack);
	free(f);
}

static void *cpu_family_load(void *impl, const struct mdl_graph *g, char *err, size_t err_len)
{
	struct cpu_family *f = calloc(1, sizeof *f);
	if (!f) {
		snprintf(err, err_len, "%s: out of memory", g->path);
		return NULL;
	}
	f->be = impl;
	f->g = g;
	f->wpack = calloc((size_t)g->n_nodes + 1, sizeof *f->wpack);
	if (!f->wpack)
		goto nomem;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct mdl_node *n = &g->nodes[i];
		if (n->op != MDL_OP_CONV || n->n_in < 2 || n->in[1] < 0)
			continue;
		const struct mdl_value *w = &g->values[n->in[1]];
		if (w->dtype != MDL_DTYPE_FLOAT || !gpu_cpu_conv_fast_ok(n, w->data, &w->shape))
			continue;
		if (!(f->wpack[i] = gpu_cpu_conv_pack(n, w->data, &w->shape)))
			goto nomem;
	}
	return f;
nomem:
	snprintf(err, err_len, "%s: out of memory", g->path);
	cpu_family_close(f);
	return NULL;
}

static void cpu_variant_close(void *impl)
{
	struct cpu_variant *v = impl;
	if (!v)
		return;
	for (int b = 0; v->inf && b <= v->max_batch; b++)
		mdl_infer_destroy(v->inf[b]);
	for (int i = 0; v->outbuf && i < v->g->n_outputs; i++)
		free(v->outbuf[i]);
	free(v->outbuf);
	free(v->inf);
	free(v->arena);
	free(v->off);
	free(v->scratch);
	free(v->run_node);
	free(v);
}

static int is_runtime(const struct mdl_infer *inf, int v) { return !inf->v[v].data; }

/* n floats, 64-byte aligned, zeroed (aligned_alloc wants a multiple of the alignment). */
static float *alloc_floats(size_t n)
{
	size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
	float *p = aligned_alloc(64, bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

/* Fills args for node i at the shapes of inf (pointers into the arena and constants). */
static void node_args(const struct cpu_variant *v, const struct mdl_infer *inf, int i,
		      struct gpu_cpu_args *a)
{
	const struct mdl_node *n = &v->g->nodes[i];
	memset(a, 0, sizeof *a);
	a->n = n;
	for (int k = 0; k < n->n_in; k++) {
		int x = n->in[k];
		if (x < 0)
			continue;
		a->in[k] = &inf->v[x];
		a->x[k] = v->off[x] >= 0 ? v->arena + v->off[x] : (const float *)inf->v[x].data;
	}
	for (int k = 0; k < n->n_out; k++) {
		a->out[k] = &inf->v[n->out[k]];
		a->y[k] = v->off[n->out[k]] >= 0 ? v->arena + v->off[n->out[k]] : NULL;
	}
	a->pool = v->fam->be->pool;
	a->scratch = v->scratch;
	a->wpack = v->fam->wpack[i];
}

/* Storage plan: every runtime value gets an arena range; views share their input's range;
 * ranges are reused once their last reader has run. */
static int plan_memory(struct cpu_variant *v, const struct mdl_infer *inf, char *err, size_t len)
{
	const struct mdl_graph *g = v->g;
	int nv = g->n_values, nn = g->n_nodes;
	int *root = malloc((size_t)nv * sizeof *root);
	int *first = malloc((size_t)nv * sizeof *first), *last = malloc((size_t)nv * sizeof *last);
	int64_t *size = calloc((size_t)nv, sizeof *size);
	int *order = malloc((size_t)nv * sizeof *order);
	int rc = -ENOMEM;
	if (!root || !first || !last || !size || !order)
		goto out;
	for (int i = 0; i < nv; i++) {
		root[i] = i;
		first[i] = last[i] = -2;
		v->off[i] = -1;
	}
	for (int i = 0; i < g->n_inputs; i++)
		first[g->inputs[i]] = -1, last[g->inputs[i]] = nn;
	for (int i = 0; i < nn; i++) {
		if (!v->run_node[i])
			continue;
		const struct mdl_node *n = &g->nodes[i];
		const struct mdl_tensor *x0 = n->in[0] >= 0 ? &inf->v[n->in[0]] : NULL;
		int view = x0 && !x0->data && gpu_cpu_is_view(n, x0, &inf->v[n->out[0]]);
		for (int k = 0; k < n->n_out; k++) {
			int o = n->out[k];
			if (!is_runtime(inf, o))
				continue;
			root[o] = view ? root[n->in[0]] : o;
			if (!view)
				first[o] = i;
		}
		for (int k = 0; k < n->n_in; k++)
			if (n->in[k] >= 0 && is_runtime(inf, n->in[k]) && last[root[n->in[k]]] < i)
				last[root[n->in[k]]] = i;
	}
	for (int i = 0; i < g->n_outputs; i++)
		if (is_runtime(inf, g->outputs[i]))
			last[root[g->outputs[i]]] = nn;
	int nr = 0;
	for (int i = 0; i < nv; i++) {
		if (!is_runtime(inf, i) || first[i] == -2 || root[i] != i)
			continue;
		int64_t cnt = mdl_shape_numel(&inf->v[i].shape);
		size[i] = (cnt + 15) & ~(int64_t)15;
		if (last[i] == -2)
			last[i] = first[i];
		order[nr++] = i;
	}
	/* sort roots by definition time (insertion sort: graphs are small) */
	for (int i = 1; i < nr; i++)
		for (int j = i; j > 0 && first[order[j]] < first[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	int64_t arena = 0;
	for (int i = 0; i < nr; i++) {
		int r = order[i];
		int64_t at = 0;
		/* first fit against every earlier root still alive when r is defined */
		for (int again = 1; again;) {
			again = 0;
			for (int j = 0; j < i; j++) {
				int q = order[j];
				if (last[q] < first[r] && first[q] >= 0)
					continue; /* dead before r is written (inputs never die) */
				if (at < v->off[q] + size[q] && v->off[q] < at + size[r]) {
					at = v->off[q] + size[q];
					again = 1;
				}
			}
		}
		v->off[r] = at;
		if (at + size[r] > arena)
			arena = at + size[r];
	}
	for (int i = 0; i < nv; i++)
		if (is_runtime(inf, i) && root[i] != i)
			v->off[i] = v->off[root[i]];
	for (int i = 0; i < g->n_outputs; i++)
		if (is_runtime(inf, g->outputs[i]) && v->off[g->outputs[i]] < 0) {
			snprintf(err, len, "%s: output '%s' is never computed", g->path,
				 g->values[g->outputs[i]].name);
			rc = -EINVAL;
			goto out;
		}
	/* +64: vector kernels may read (and ignore) up to 15 floats past a value */
	v->arena = alloc_floats((size_t)arena + 64);
	rc = v->arena ? 0 : -ENOMEM;
out:
	free(root);
	free(first);
	free(last);
	free(size);
	free(order);
	return rc;
}

static void *cpu_variant_prepare(void *fam_impl, const struct mdl_shape *inputs, char *err,
				 size_t err_len)
{
	struct cpu_family *fam = fam_impl;
	const struct mdl_graph *g = fam->g;
	struct cpu_variant *v = calloc(1, sizeof *v);
	if (!v)
		goto nomem;
	v->fam = fam;
	v->g = g;
	/* dimension 0 of input 0 is the batch; inputs without one run as a batch of 1 */
	v->max_batch = g->n_inputs && inputs[0].rank > 0 && inputs[0].d[0] > 0 ? (int)inputs[0].d[0]
									     : 1;
	v->inf = calloc((size_t)v->max_batch + 1, sizeof *v->inf);
	v->off = malloc(((size_t)g->n_values + 1) * sizeof *v->off);
	v->run_node = calloc((size_t)g->n_nodes + 1, 1);
	v->outbuf = calloc((size_t)g->n_outputs + 1, sizeof *v->outbuf);
	if (!v->inf || !v->off || !v->run_node || !v->outbuf)
		goto nomem;
	const int maxb = v->max_batch;
	v->inf[maxb] = mdl_graph_infer(g, inputs, err, err_len);
	if (!v->inf[maxb])
		goto fail;
	const struct mdl_infer *top = v->inf[maxb];
	/* smaller batches: dimension 0 of every input scaled; kept when no value grows */
	struct mdl_shape in_b[64];
	for (int b = 1; b < maxb && g->n_inputs <= 64; b++) {
		for (int i = 0; i < g->n_inputs; i++) {
			in_b[i] = inputs[i];
			if (in_b[i].rank > 0 && in_b[i].d[0] == maxb)
				in_b[i].d[0] = b;
		}
		char tmp[8];
		struct mdl_infer *inf = mdl_graph_infer(g, in_b, tmp, sizeof tmp);
		for (int k = 0; inf && k < g->n_values; k++)
			if (mdl_shape_numel(&inf->v[k].shape) > mdl_shape_numel(&top->v[k].shape) ||
			    !inf->v[k].data != !top->v[k].data) {
				mdl_infer_destroy(inf);
				inf = NULL;
			}
		v->inf[b] = inf;
	}
	size_t scratch = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct mdl_node *n = &g->nodes[i];
		for (int k = 0; k < n->n_out; k++)
			v->run_node[i] |= !top->v[n->out[k]].data;
		if (!v->run_node[i])
			continue;
		const struct mdl_tensor *in[32] = {0}, *out[16] = {0};
		for (int k = 0; k < n->n_in; k++) {
			in[k] = n->in[k] >= 0 ? &top->v[n->in[k]] : NULL;
			if (in[k] && in[k]->dtype != MDL_DTYPE_FLOAT && !mdl_op_input_const(n->op, k) &&
			    !(n->op == MDL_OP_GATHER && k == 1)) {
				snprintf(err, err_len, "%s: node '%s' (%s): integer tensors at run time "
					 "are not supported", g->path, n->name, mdl_op_name(n->op));
				goto fail;
			}
		}
		for (int k = 0; k < n->n_out; k++)
			out[k] = &top->v[n->out[k]];
		char why[160];
		if (gpu_cpu_supports(n, in, why, sizeof why)) {
			snprintf(err, err_len, "%s: node '%s' (%s): %s", g->path, n->name,
				 mdl_op_name(n->op), why);
			goto fail;
		}
		size_t s = gpu_cpu_scratch(n, in, out, fam->be->threads, fam->wpack[i] != NULL);
		if (s > scratch)
			scratch = s;
	}
	v->scratch = alloc_floats(scratch);
	if (!v->scratch)
		goto nomem;
	int rc = plan_memory(v, top, err, err_len);
	if (rc == -ENOMEM)
		goto nomem;
	if (rc)
		goto fail;
	for (int i = 0; i < g->n_outputs; i++)
		if (!is_runtime(top, g->outputs[i])) {
			int64_t cnt = mdl_shape_numel(&top->v[g->outputs[i]].shape);
			if (!(v->outbuf[i] = malloc((size_t)(cnt ? cnt : 1) * sizeof(float))))
				goto nomem;
		}
	v->last_batch = 0;
	return v;
nomem:
	snprintf(err, err_len, "%s: out of memory", g->path);
fail:
	for (char *c = err; *c; c++) /* value names come from the file: keep one line */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	cpu_variant_close(v);
	return NULL;
}

static float *cpu_variant_input(void *impl, int idx)
{
	struct cpu_variant *v = impl;
	if (idx < 0 || idx >= v->g->n_inputs)
		return NULL;
	return v->arena + v->off[v->g->inputs[idx]];
}

static int cpu_variant_submit(void *impl, int batch)
{
	struct cpu_variant *v = impl;
	if (batch < 1 || batch > v->max_batch || !v->inf[batch])
		return -EINVAL;
	if (v->in_flight)
		return -EBUSY;
	const struct mdl_infer *inf = v->inf[batch];
	struct gpu_cpu_args a;
	for (int i = 0; i < v->g->n_nodes; i++) {
		if (!v->run_node[i])
			continue;
		node_args(v, inf, i, &a);
		if (a.x[0] && a.y[0] == a.x[0] && gpu_cpu_is_view(a.n, a.in[0], a.out[0]))
			continue;
		int rc = gpu_cpu_kernel(&a);
		if (rc)
			return rc;
	}
	for (int i = 0; i < v->g->n_outputs; i++) {
		const struct mdl_tensor *t = &inf->v[v->g->outputs[i]];
		if (!v->outbuf[i])
			continue;
		int64_t cnt = mdl_shape_numel(&t->shape);
		for (int64_t k = 0; k < cnt; k++)
			v->outbuf[i][k] = t->dtype == MDL_DTYPE_INT64 ? (float)((int64_t *)t->data)[k]
								      : ((float *)t->data)[k];
	}
	v->last_batch = batch;
	v->in_flight = 1;
	return 0;
}

static int cpu_variant_poll(void *impl)
{
	struct cpu_variant *v = impl;
	if (!v->in_flight)
		return -EINVAL;
	v->in_flight = 0;
	return 1;
}

static const float *cpu_variant_output(void *impl, int idx, struct mdl_shape *shape)
{
	struct cpu_variant *v = impl;
	if (idx < 0 || idx >= v->g->n_outputs || !v->last_batch)
		return NULL;
	int o = v->g->outputs[idx];
	const struct mdl_infer *inf = v->inf[v->last_batch];
	if (shape)
		*shape = inf->v[o].shape;
	return v->outbuf[idx] ? v->outbuf[idx] : v->arena + v->off[o];
}

static const struct gpu_backend_ops cpu_ops = {
	.name = "cpu",
	.destroy = cpu_destroy,
	.family_load = cpu_family_load,
	.family_close = cpu_family_close,
	.variant_prepare = cpu_variant_prepare,
	.variant_close = cpu_variant_close,
	.variant_input = cpu_variant_input,
	.variant_submit = cpu_variant_submit,
	.variant_poll = cpu_variant_poll,
	.variant_output = cpu_variant_output,
};

struct gpu_backend *gpu_backend_cpu_create(int threads, char *err, size_t err_len)
{
	char local[128];
	if (!err) {
		err = local;
		err_len = sizeof local;
	}
	if (threads < 1) {
		snprintf(err, err_len, "cpu backend: threads must be >= 1 (got %d)", threads);
		return NULL;
	}
	struct cpu_backend *be = calloc(1, sizeof *be);
	if (be)
		be->pool = gpu_cpu_pool_create(threads);
	if (!be || !be->pool) {
		free(be);
		snprintf(err, err_len, "cpu backend: cannot start %d threads", threads);
		return NULL;
	}
	be->threads = threads;
	openblas_set_num_threads(threads);
	struct gpu_backend *h = gpu_backend_create(&cpu_ops, be);
	if (!h)
		cpu_destroy(be);
	return h;
}
