/* CUDA/cuDNN backend: backend (device, cuDNN handle, algorithm cache), family (weights
 * uploaded once), variant planning (shapes for batches 1..max, one device arena with
 * lifetime-based reuse, one step list and one CUDA graph per batch) and the hot calls.
 * The steps themselves (one record per kernel or cuDNN call) are built in gpu_cuda_plan.cu. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_be.h"
#include "gpu/cuda/gpu_cuda_test.h"

/* ---- backend ----------------------------------------------------------------------------- */

static void cu_destroy(void *impl)
{
	struct gpu_cuda_backend *be = (struct gpu_cuda_backend *)impl;
	if (!be)
		return;
	gpu_cuda_dset(be);
	if (be->cc.dnn)
		cudnnDestroy(be->cc.dnn);
	gpu_cuda_dfree(be, be->cc.find_ws);
	gpu_cuda_algo_cache_destroy(be->cc.cache);
	free(be);
}

/* ---- family: constants uploaded once --------------------------------------------------------- */

static void cu_family_close(void *impl)
{
	struct gpu_cuda_family *f = (struct gpu_cuda_family *)impl;
	if (!f)
		return;
	gpu_cuda_dset(f->be);
	for (int i = 0; f->dconst && i < f->g->n_values; i++) {
		gpu_cuda_dfree(f->be, f->dconst[i]);
		gpu_cuda_dfree(f->be, f->dconvw[i]);
		gpu_cuda_dfree(f->be, f->didx[i]);
	}
	for (int i = 0; f->dbn && i < f->g->n_nodes; i++)
		gpu_cuda_dfree(f->be, f->dbn[i]);
	free(f->dconst);
	free(f->dconvw);
	free(f->didx);
	free(f->dbn);
	free(f);
}

/* Copies n floats (converted to the backend's type) to a new device buffer. */
static int upload(struct gpu_cuda_backend *be, const float *src, size_t n, void **dst, char *err,
		  size_t err_len)
{
	int rc = -EIO;
	size_t bytes = (n ? n : 1) * be->esize;
	void *tmp = malloc(bytes);
	if (!tmp) {
		snprintf(err, err_len, "cuda backend: out of host memory");
		return -ENOMEM;
	}
	gpu_cuda_host_convert(src, tmp, n, be->dt);
	GC_CU(gpu_cuda_dalloc(be, dst, bytes));
	GC_CU(gpu_cuda_dcopy(be, *dst, tmp, n * be->esize));
	rc = 0;
fail:
	free(tmp);
	return rc;
}

static void *cu_family_load(void *impl, const struct mdl_graph *g, char *err, size_t err_len)
{
	struct gpu_cuda_backend *be = (struct gpu_cuda_backend *)impl;
	struct gpu_cuda_family *f = (struct gpu_cuda_family *)calloc(1, sizeof *f);
	int rc = -ENOMEM;
	float *tmp = NULL;
	if (!f)
		goto nomem;
	f->be = be;
	f->g = g;
	f->dconst = (void **)calloc((size_t)g->n_values + 1, sizeof(void *));
	f->dconvw = (void **)calloc((size_t)g->n_values + 1, sizeof(void *));
	f->didx = (int **)calloc((size_t)g->n_values + 1, sizeof(int *));
	f->dbn = (void **)calloc((size_t)g->n_nodes + 1, sizeof(void *));
	if (!f->dconst || !f->dconvw || !f->didx || !f->dbn)
		goto nomem;
	GC_CU(gpu_cuda_dset(be));
	for (int i = 0; i < g->n_nodes; i++) {
		const struct mdl_node *n = &g->nodes[i];
		for (int k = 0; k < n->n_in; k++) {
			int x = n->in[k];
			if (x < 0 || !g->values[x].data)
				continue;
			const struct mdl_value *v = &g->values[x];
			int64_t cnt = mdl_shape_numel(&v->shape);
			if (n->op == MDL_OP_GATHER && k == 1 && v->dtype == MDL_DTYPE_INT64) {
				if (f->didx[x])
					continue;
				int *ix = (int *)malloc((size_t)(cnt ? cnt : 1) * sizeof(int));
				if (!ix)
					goto nomem;
				for (int64_t e = 0; e < cnt; e++)
					ix[e] = (int)((const int64_t *)v->data)[e];
				cudaError_t e1 =
					gpu_cuda_dalloc(be, (void **)&f->didx[x],
							(size_t)(cnt ? cnt : 1) * sizeof(int));
				cudaError_t e2 = e1 ? e1
						    : gpu_cuda_dcopy(be, f->didx[x], ix,
								     (size_t)cnt * sizeof(int));
				free(ix);
				GC_CU(e2);
				continue;
			}
			if (v->dtype != MDL_DTYPE_FLOAT)
				continue;
			if (n->op == MDL_OP_CONV && k == 1 && v->shape.rank == 4) {
				if (f->dconvw[x])
					continue;
				const float *w = (const float *)v->data;
				if (be->nhwc) { /* OIHW -> OHWI (cuDNN's NHWC filter layout) */
					int64_t O = v->shape.d[0], I = v->shape.d[1],
						H = v->shape.d[2], W = v->shape.d[3];
					free(tmp);
					if (!(tmp = (float *)malloc((size_t)(cnt ? cnt : 1) *
								    sizeof(float))))
						goto nomem;
					for (int64_t o = 0; o < O; o++)
						for (int64_t c = 0; c < I; c++)
							for (int64_t h = 0; h < H; h++)
								for (int64_t q = 0; q < W; q++)
									tmp[((o * H + h) * W + q) *
										    I +
									    c] =
										w[((o * I + c) * H +
										   h) * W +
										  q];
					w = tmp;
				}
				if ((rc = upload(be, w, (size_t)cnt, &f->dconvw[x], err, err_len)))
					goto fail;
				continue;
			}
			if (!f->dconst[x] && (rc = upload(be, (const float *)v->data, (size_t)cnt,
							  &f->dconst[x], err, err_len)))
				goto fail;
		}
		if (n->op == MDL_OP_BATCHNORM && n->n_in == 5) { /* scale, shift per channel */
			const float *p[5];
			int ok = 1;
			for (int k = 1; k < 5; k++) {
				p[k] = n->in[k] >= 0 ? (const float *)g->values[n->in[k]].data
						     : NULL;
				ok &= p[k] != NULL && g->values[n->in[k]].dtype == MDL_DTYPE_FLOAT;
			}
			if (!ok)
				continue; /* refused at prepare */
			int64_t C = mdl_shape_numel(&g->values[n->in[1]].shape);
			free(tmp);
			if (!(tmp = (float *)malloc((size_t)(2 * C + 1) * sizeof(float))))
				goto nomem;
			for (int64_t c = 0; c < C; c++) {
				float s = p[1][c] / sqrtf(p[4][c] + n->a.alpha);
				tmp[c] = s;
				tmp[C + c] = p[2][c] - p[3][c] * s;
			}
			if ((rc = upload(be, tmp, (size_t)(2 * C), &f->dbn[i], err, err_len)))
				goto fail;
		}
	}
	free(tmp);
	return f;
nomem:
	snprintf(err, err_len, "%s: out of memory", g->path);
fail:
	if (rc == -EIO) { /* name the model in front of the CUDA message */
		char m[256];
		snprintf(m, sizeof m, "%s", err);
		snprintf(err, err_len, "%s: %s", g->path, m);
	}
	free(tmp);
	cu_family_close(f);
	return NULL;
}

/* ---- variant ----------------------------------------------------------------------------- */

static void cu_variant_close(void *impl)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)impl;
	if (!v)
		return;
	const struct gpu_cuda_backend *be = v->be;
	gpu_cuda_dset(be);
	if (v->stream) {
		cudaStreamSynchronize(v->stream);
		cudnnSetStream(be->cc.dnn, 0); /* the handle must not keep a destroyed stream */
	}
	for (int b = 0; v->plans && b <= v->max_batch; b++)
		gpu_cuda_plan_release(&v->plans[b]);
	for (int b = 0; v->inf && b <= v->max_batch; b++)
		mdl_infer_destroy(v->inf[b]);
	for (int i = 0; v->hin && i < v->g->n_inputs; i++) {
		gpu_cuda_hfree(be, v->hin[i]);
		if (be->dt != GC_F32)
			gpu_cuda_dfree(be, v->din[i]);
	}
	for (int i = 0; v->hout && i < v->g->n_outputs; i++) {
		gpu_cuda_hfree(be, v->hout[i]);
		gpu_cuda_dfree(be, v->dout[i]);
		free(v->cout[i]);
	}
	for (int i = 0; v->rtab && i < v->g->n_nodes; i++)
		gpu_cuda_dfree(be, v->rtab[i]);
	gpu_cuda_io_release(v);
	if (v->in_ev)
		cudaEventDestroy(v->in_ev);
	if (v->done_ev)
		cudaEventDestroy(v->done_ev);
	if (v->stream)
		cudaStreamDestroy(v->stream);
	gpu_cuda_dfree(be, v->arena);
	gpu_cuda_dfree(be, v->ws);
	gpu_cuda_dfree(be, v->pad);
	free(v->plans);
	free(v->inf);
	free(v->off);
	free(v->run_node);
	free(v->copy_view);
	free(v->hin);
	free(v->din);
	free(v->hout);
	free(v->dout);
	free(v->cout);
	free(v->rtab);
	free(v);
}

static int is_runtime(const struct mdl_infer *inf, int x)
{
	return !inf->v[x].data;
}

/* Storage plan (as the CPU backend's): every runtime value gets an arena range in bytes;
 * views share their input's range; ranges are reused once their last reader has run. */
static int plan_memory(struct gpu_cuda_variant *v, const struct mdl_infer *inf, size_t *arena_bytes,
		       char *err, size_t len)
{
	const struct mdl_graph *g = v->g;
	int nv = g->n_values, nn = g->n_nodes;
	int *root = (int *)malloc((size_t)nv * sizeof(int));
	int *first = (int *)malloc((size_t)nv * sizeof(int)),
	    *last = (int *)malloc((size_t)nv * sizeof(int));
	int64_t *size = (int64_t *)calloc((size_t)nv, sizeof(int64_t));
	int *order = (int *)malloc((size_t)nv * sizeof(int));
	int rc = -ENOMEM, nr = 0;
	int64_t arena = 0;
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
		int view = n->in[0] >= 0 && is_runtime(inf, n->in[0]) && gpu_cuda_node_is_view(n) &&
			   !v->copy_view[i];
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
	for (int i = 0; i < nv; i++) {
		if (!is_runtime(inf, i) || first[i] == -2 || root[i] != i)
			continue;
		int64_t bytes = mdl_shape_numel(&inf->v[i].shape) * (int64_t)v->be->esize;
		size[i] = (bytes + 255) & ~(int64_t)255;
		if (last[i] == -2)
			last[i] = first[i];
		order[nr++] = i;
	}
	for (int i = 1; i < nr; i++)
		for (int j = i; j > 0 && first[order[j]] < first[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < nr; i++) {
		int r = order[i];
		int64_t at = 0;
		for (int again = 1; again;) {
			again = 0;
			for (int j = 0; j < i; j++) {
				int q = order[j];
				if (last[q] < first[r] && first[q] >= 0)
					continue;
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
	rc = 0;
	for (int i = 0; i < g->n_outputs; i++)
		if (is_runtime(inf, g->outputs[i]) && v->off[g->outputs[i]] < 0) {
			snprintf(err, len, "%s: output '%s' is never computed", g->path,
				 g->values[g->outputs[i]].name);
			rc = -EINVAL;
		}
	*arena_bytes = (size_t)arena;
out:
	free(root);
	free(first);
	free(last);
	free(size);
	free(order);
	return rc;
}

static int mib(size_t b)
{
	return (int)((b + (1u << 20) - 1) >> 20);
}

/* Memory check before allocating: a clear error when the variant cannot fit. */
static int fits(struct gpu_cuda_variant *v, size_t need, const char *what, char *err,
		size_t err_len)
{
	size_t free_b = 0, total = 0;
	int rc = -EIO;
	if (v->be->emul)
		return 0;
	GC_CU(cudaMemGetInfo(&free_b, &total));
	if (need + (16u << 20) > free_b) {
		snprintf(err, err_len,
			 "%s: does not fit in device memory: %s needs %d MiB, %d MiB of "
			 "%d MiB free (lower the batch or the input size)",
			 v->g->path, what, mib(need), mib(free_b), mib(total));
		return -ENOMEM;
	}
	return 0;
fail:
	return rc;
}

/* Runs batch b's steps on the variant's stream (eager, or inside a capture). */
static int run_steps(struct gpu_cuda_variant *v, int b)
{
	const struct gpu_cuda_plan *p = &v->plans[b];
	cudaStream_t st = v->be->emul ? GC_HOST : v->stream;
	for (int i = 0; i < p->n_steps; i++) {
		int rc = gpu_cuda_step_run(&v->be->cc, &p->steps[i], v->ws, st);
		if (rc)
			return rc;
	}
	return 0;
}

static int capture(struct gpu_cuda_variant *v, int b, char *err, size_t err_len)
{
	int rc = -EIO, cap_rc;
	cudaGraph_t graph = NULL;
	GC_CU(cudaStreamBeginCapture(v->stream, cudaStreamCaptureModeThreadLocal));
	cap_rc = run_steps(v, b);
	GC_CU(cudaStreamEndCapture(v->stream, &graph));
	if (cap_rc) {
		snprintf(err, err_len,
			 "%s: batch %d: a step failed during CUDA graph capture "
			 "(SHOAL_CUDA_GRAPHS=0 runs without graphs)",
			 v->g->path, b);
		goto fail;
	}
	GC_CU(cudaGraphInstantiate(&v->plans[b].exec, graph, 0));
	rc = 0;
fail:
	if (graph)
		cudaGraphDestroy(graph);
	return rc;
}

static void *cu_variant_prepare(void *fam_impl, const struct mdl_shape *inputs, char *err,
				size_t err_len)
{
	struct gpu_cuda_family *fam = (struct gpu_cuda_family *)fam_impl;
	struct gpu_cuda_backend *be = fam->be;
	const struct mdl_graph *g = fam->g;
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)calloc(1, sizeof *v);
	int rc = -ENOMEM, maxb;
	size_t arena = 0, pad = 0, ws = 0, staging = 0;
	const struct mdl_infer *top;
	struct mdl_shape in_b[64];
	if (!v)
		goto nomem;
	v->fam = fam;
	v->be = be;
	v->g = g;
	v->use_graphs = be->graphs;
	v->max_batch =
		g->n_inputs && inputs[0].rank > 0 && inputs[0].d[0] > 0 ? (int)inputs[0].d[0] : 1;
	maxb = v->max_batch;
	v->inf = (struct mdl_infer **)calloc((size_t)maxb + 1, sizeof(void *));
	v->plans = (struct gpu_cuda_plan *)calloc((size_t)maxb + 1, sizeof(struct gpu_cuda_plan));
	v->off = (int64_t *)malloc(((size_t)g->n_values + 1) * sizeof(int64_t));
	v->run_node = (unsigned char *)calloc((size_t)g->n_nodes + 1, 1);
	v->copy_view = (unsigned char *)calloc((size_t)g->n_nodes + 1, 1);
	v->hin = (float **)calloc((size_t)g->n_inputs + 1, sizeof(float *));
	v->din = (void **)calloc((size_t)g->n_inputs + 1, sizeof(void *));
	v->hout = (float **)calloc((size_t)g->n_outputs + 1, sizeof(float *));
	v->dout = (float **)calloc((size_t)g->n_outputs + 1, sizeof(float *));
	v->cout = (float **)calloc((size_t)g->n_outputs + 1, sizeof(float *));
	v->rtab = (void **)calloc((size_t)g->n_nodes + 1, sizeof(void *));
	if (!v->inf || !v->plans || !v->off || !v->run_node || !v->copy_view || !v->hin ||
	    !v->din || !v->hout || !v->dout || !v->cout || !v->rtab || g->n_inputs > 64)
		goto nomem;
	rc = -EIO;
	GC_CU(gpu_cuda_dset(be));
	v->inf[maxb] = mdl_graph_infer(g, inputs, err, err_len);
	if (!v->inf[maxb])
		goto fail_keep;
	top = v->inf[maxb];
	for (int b = 1; b < maxb; b++) {
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
	/* which nodes run, which views must copy (layouts differ), what each node needs */
	for (int i = 0; i < g->n_nodes; i++) {
		const struct mdl_node *n = &g->nodes[i];
		for (int k = 0; k < n->n_out; k++)
			v->run_node[i] |= !top->v[n->out[k]].data;
		if (!v->run_node[i])
			continue;
		if ((rc = gpu_cuda_node_check(v, i, top, err, err_len)))
			goto fail_keep;
		size_t p = gpu_cuda_node_pad_bytes(v, i, top);
		pad = p > pad ? p : pad;
	}
	for (int i = 0; i < g->n_values; i++)
		if (is_runtime(top, i) && mdl_shape_numel(&top->v[i].shape) >= ((int64_t)1 << 31)) {
			snprintf(err, err_len, "%s: value '%s' has 2^31 elements or more", g->path,
				 g->values[i].name);
			rc = -EINVAL;
			goto fail_keep;
		}
	if ((rc = plan_memory(v, top, &arena, err, err_len)))
		goto fail_keep;
	for (int i = 0; i < g->n_inputs; i++)
		staging += (size_t)mdl_shape_numel(&top->v[g->inputs[i]].shape) * sizeof(float);
	for (int i = 0; i < g->n_outputs; i++)
		staging += (size_t)mdl_shape_numel(&top->v[g->outputs[i]].shape) * sizeof(float);
	if ((rc = fits(v, arena + pad + (be->dt == GC_F32 ? 0 : staging), "activation memory", err,
		       err_len)))
		goto fail_keep;
	GC_CU(gpu_cuda_dalloc(be, (void **)&v->arena, arena ? arena : 256));
	if (!be->emul) {
		GC_CU(cudaMemset(v->arena, 0, arena ? arena : 256));
		GC_CU(cudaStreamCreateWithFlags(&v->stream, cudaStreamNonBlocking));
		GC_CU(cudaEventCreateWithFlags(&v->in_ev, cudaEventDisableTiming));
		GC_CU(cudaEventCreateWithFlags(&v->done_ev, cudaEventDisableTiming));
	}
	if (pad)
		GC_CU(gpu_cuda_dalloc(be, &v->pad, pad));
	for (int i = 0; i < g->n_inputs; i++) {
		int x = g->inputs[i];
		size_t cnt = (size_t)mdl_shape_numel(&top->v[x].shape);
		GC_CU(gpu_cuda_halloc(be, (void **)&v->hin[i], (cnt ? cnt : 1) * sizeof(float)));
		memset(v->hin[i], 0, (cnt ? cnt : 1) * sizeof(float));
		if (v->off[x] < 0)
			continue; /* an input nothing reads */
		if (be->dt == GC_F32)
			v->din[i] = v->arena + v->off[x];
		else
			GC_CU(gpu_cuda_dalloc(be, &v->din[i], (cnt ? cnt : 1) * sizeof(float)));
	}
	for (int i = 0; i < g->n_outputs; i++) {
		int o = g->outputs[i];
		size_t cnt = (size_t)mdl_shape_numel(&top->v[o].shape);
		if (!is_runtime(top, o)) { /* known before run time: a host copy */
			if (!(v->cout[i] = (float *)malloc((cnt ? cnt : 1) * sizeof(float))))
				goto nomem;
			continue;
		}
		GC_CU(gpu_cuda_halloc(be, (void **)&v->hout[i], (cnt ? cnt : 1) * sizeof(float)));
		if (be->dt != GC_F32)
			GC_CU(gpu_cuda_dalloc(be, (void **)&v->dout[i],
					      (cnt ? cnt : 1) * sizeof(float)));
	}
	/* steps per batch (convolution algorithms measured here) */
	for (int b = 1; b <= maxb; b++) {
		if (!v->inf[b])
			continue;
		if ((rc = gpu_cuda_plan_build(v, b, err, err_len)))
			goto fail_keep;
		for (int i = 0; i < v->plans[b].n_convs; i++)
			ws = v->plans[b].convs[i].ws > ws ? v->plans[b].convs[i].ws : ws;
	}
	if (ws) {
		if ((rc = fits(v, ws, "convolution workspace", err, err_len)))
			goto fail_keep;
		GC_CU(gpu_cuda_dalloc(be, &v->ws, ws));
	}
	v->ws_size = ws;
	if ((rc = gpu_cuda_io_prepare(v, err, err_len)))
		goto fail;
	/* one CUDA graph per batch, captured here (prepare is the slow path; the first submit
	 * of a batch then costs no more than the others). A batch whose capture fails runs its
	 * steps eagerly: same results, more launch overhead. */
	for (int b = 1; !be->emul && b <= maxb; b++) { /* warm-up: every kernel loaded */
		if (v->inf[b] && (rc = run_steps(v, b))) {
			snprintf(err, err_len, "%s: batch %d: a step failed (see the line above)",
				 g->path, b);
			goto fail_keep;
		}
	}
	if (!be->emul)
		GC_CU(cudaStreamSynchronize(v->stream));
	for (int b = 1; v->use_graphs && b <= maxb; b++) {
		char why[256] = "";
		if (v->inf[b] && capture(v, b, why, sizeof why)) {
			fprintf(stderr,
				"cuda backend: %s: batch %d runs without a CUDA graph: %s\n",
				g->path, b, why);
			cudaGetLastError();
		}
	}
	if (!be->emul)
		GC_CU(cudaStreamSynchronize(v->stream));
	return v;
nomem:
	snprintf(err, err_len, "%s: out of memory", g->path);
	goto fail_keep;
fail:
	if (rc == -EIO) {
		char m[256];
		snprintf(m, sizeof m, "%s", err);
		snprintf(err, err_len, "%s: %s", g->path, m);
	}
fail_keep:
	for (char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (!be->emul)
		cudaGetLastError();
	cu_variant_close(v);
	return NULL;
}

/* ---- hot calls ----------------------------------------------------------------------------- */

static float *cu_variant_input(void *impl, int idx)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)impl;
	if (idx < 0 || idx >= v->g->n_inputs)
		return NULL;
	return v->hin[idx];
}

static int cu_variant_submit(void *impl, int batch)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)impl;
	char *err = NULL;
	size_t err_len = 0;
	int rc = -EIO;
	if (batch < 1 || batch > v->max_batch || !v->inf[batch])
		return -EINVAL;
	if (v->in_flight)
		return -EBUSY;
	const struct mdl_infer *inf = v->inf[batch];
	const int emul = v->be->emul;
	for (int i = 0; i < v->g->n_inputs; i++) {
		if (!v->din[i] || (i == 0 && v->img_inputs))
			continue;
		size_t cnt = (size_t)mdl_shape_numel(&inf->v[v->g->inputs[i]].shape);
		if (emul)
			memcpy(v->din[i], v->hin[i], cnt * sizeof(float));
		else
			GC_CU(cudaMemcpyAsync(v->din[i], v->hin[i], cnt * sizeof(float),
					      cudaMemcpyHostToDevice, v->stream));
	}
	if (!emul)
		GC_CU(cudaEventRecord(v->in_ev, v->stream));
	if (v->plans[batch].exec)
		GC_CU(cudaGraphLaunch(v->plans[batch].exec, v->stream));
	else if ((rc = run_steps(v, batch)))
		return rc;
	if (!emul)
		GC_CU(cudaEventRecord(v->done_ev, v->stream));
	for (int i = 0; i < v->g->n_outputs; i++) {
		const struct mdl_tensor *t = &inf->v[v->g->outputs[i]];
		if (!v->cout[i])
			continue;
		int64_t cnt = mdl_shape_numel(&t->shape);
		for (int64_t k = 0; k < cnt; k++)
			v->cout[i][k] = t->dtype == MDL_DTYPE_INT64 ? (float)((int64_t *)t->data)[k]
								    : ((float *)t->data)[k];
	}
	v->pending = batch;
	v->in_flight = 1;
	v->img_inputs = 0;
	return 0;
fail:
	return rc;
}

static int cu_variant_poll(void *impl)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)impl;
	char *err = NULL;
	size_t err_len = 0;
	int rc = -EIO;
	if (!v->in_flight)
		return -EINVAL;
	cudaError_t e = v->be->emul ? cudaSuccess : cudaEventQuery(v->done_ev);
	if (e == cudaErrorNotReady)
		return 0;
	v->in_flight = 0;
	GC_CU(e);
	v->last_batch = v->pending;
	v->runs++;
	if (!v->runs) /* 0 means "no detections held" */
		v->runs = 1;
	return 1;
fail:
	return rc;
}

static const float *cu_variant_output(void *impl, int idx, struct mdl_shape *shape)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)impl;
	if (idx < 0 || idx >= v->g->n_outputs || !v->last_batch)
		return NULL;
	if (shape)
		*shape = v->inf[v->last_batch]->v[v->g->outputs[idx]].shape;
	return v->cout[idx] ? v->cout[idx] : v->hout[idx];
}

static const struct gpu_backend_ops cuda_ops = {
	"cuda",
	cu_destroy,
	cu_family_load,
	cu_family_close,
	cu_variant_prepare,
	cu_variant_close,
	cu_variant_input,
	cu_variant_submit,
	cu_variant_poll,
	cu_variant_output,
	gpu_cuda_io_input_image,
	gpu_cuda_io_inputs_done,
	gpu_cuda_io_detect,
};

static int env_flag(const char *name, int dflt)
{
	const char *s = getenv(name);
	return s && *s ? atoi(s) != 0 : dflt;
}

struct gpu_backend *gpu_backend_cuda_create(int device, int fp16, char *err, size_t err_len)
{
	char local[256];
	int rc = -EIO;
	struct gpu_cuda_backend *be = NULL;
	struct gpu_backend *h;
	if (!err) {
		err = local;
		err_len = sizeof local;
	}
	int n = gpu_cuda_device_count(err, err_len);
	if (n == 0)
		return NULL;
	if (device < 0 || device >= n) {
		snprintf(err, err_len, "no CUDA device: device %d asked for, %d present", device,
			 n);
		return NULL;
	}
	if (!(be = (struct gpu_cuda_backend *)calloc(1, sizeof *be))) {
		snprintf(err, err_len, "cuda backend: out of memory");
		return NULL;
	}
	be->device = device;
	be->dt = fp16 ? GC_F16 : GC_F32;
	be->esize = fp16 ? 2 : 4;
	be->nhwc = fp16 ? 1 : 0;
	be->graphs = env_flag("SHOAL_CUDA_GRAPHS", 1);
	be->cc.dt = be->dt;
	be->cc.nhwc = be->nhwc;
	be->cc.find = env_flag("SHOAL_CUDA_FIND", 1);
	be->cc.find_ws_size = (size_t)64 << 20;
	GC_CU(cudaSetDevice(device));
	GC_CU(cudaFree(
		NULL)); /* creates the context now: a broken driver fails here, in one line */
	GC_DNN(cudnnCreate(&be->cc.dnn));
	GC_CU(cudaMalloc(&be->cc.find_ws, be->cc.find_ws_size));
	if (!(be->cc.cache = gpu_cuda_algo_cache_create()) ||
	    !(h = gpu_backend_create(&cuda_ops, be))) {
		snprintf(err, err_len, "cuda backend: out of memory");
		goto fail;
	}
	return h;
fail:
	if (rc)
		cudaGetLastError(); /* leave no pending error behind */
	cu_destroy(be);
	return NULL;
}

static const struct gpu_backend_ops emul_ops = {
	"cuda-emulator",    cu_destroy,        cu_family_load,          cu_family_close,
	cu_variant_prepare, cu_variant_close,  cu_variant_input,        cu_variant_submit,
	cu_variant_poll,    cu_variant_output, gpu_cuda_io_input_image, gpu_cuda_io_inputs_done,
	gpu_cuda_io_detect,
};

struct gpu_backend *gpu_cuda_emulator_create(int fp16, char *err, size_t err_len)
{
	struct gpu_cuda_backend *be = (struct gpu_cuda_backend *)calloc(1, sizeof *be);
	struct gpu_backend *h = NULL;
	if (be) {
		be->dt = fp16 ? GC_F16 : GC_F32;
		be->esize = fp16 ? 2 : 4;
		be->nhwc = fp16 ? 1 : 0;
		be->emul = 1;
		be->cc.dt = be->dt;
		be->cc.nhwc = be->nhwc;
		be->cc.emul = 1;
		be->cc.cache = gpu_cuda_algo_cache_create();
	}
	if (be && be->cc.cache)
		h = gpu_backend_create(&emul_ops, be);
	if (!h) {
		if (err)
			snprintf(err, err_len, "cuda emulator: out of memory");
		cu_destroy(be);
	}
	return h;
}
