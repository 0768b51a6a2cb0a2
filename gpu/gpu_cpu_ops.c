/* CPU kernels (float32, NCHW). Convolution: with AVX-512, dense ones run on packed weights
 * (gpu_cpu_conv.c) and depthwise ones on its vector kernel; otherwise 1x1 -> sgemm directly,
 * other kernels im2col -> sgemm (OpenBLAS), depthwise by a direct loop. Everything else by
 * plain loops split over the worker pool (AVX-512 versions of a few in gpu_cpu_simd.c). */
#include <cblas.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu/gpu_cpu_priv.h"

#define CHUNK 16384 /* elements per pool task for elementwise work */

static int64_t numel(const struct mdl_tensor *t) { return mdl_shape_numel(&t->shape); }

static int64_t chunks(int64_t n) { return (n + CHUNK - 1) / CHUNK; }

/* ---- activations ---------------------------------------------------------------------------- */

/* y = act(y + b) over n elements, one loop per activation so each vectorises. */
static void bias_act(float *restrict y, int64_t n, float b, enum mdl_act act, float pa, float pb)
{
	switch (act) {
	case MDL_ACT_RELU:
		for (int64_t i = 0; i < n; i++) {
			float v = y[i] + b;
			y[i] = v > 0 ? v : 0;
		}
		break;
	case MDL_ACT_CLIP:
		for (int64_t i = 0; i < n; i++) {
			float v = y[i] + b;
			y[i] = v < pa ? pa : v > pb ? pb : v;
		}
		break;
	case MDL_ACT_LEAKYRELU:
		for (int64_t i = 0; i < n; i++) {
			float v = y[i] + b;
			y[i] = v >= 0 ? v : v * pa;
		}
		break;
	default:
		for (int64_t i = 0; i < n; i++)
			y[i] += b;
		break;
	}
}

struct unary_job {
	enum mdl_op op;
	const float *x;
	float *y;
	int64_t n;
	float a, b;
	int simd; /* AVX-512 versions available */
};

static void unary_task(void *arg, int64_t t)
{
	const struct unary_job *j = arg;
	int64_t lo = t * CHUNK, hi = lo + CHUNK < j->n ? lo + CHUNK : j->n;
	const float *x = j->x;
	float *y = j->y, a = j->a, b = j->b;
	switch (j->op) {
	case MDL_OP_RELU:
		for (int64_t i = lo; i < hi; i++)
			y[i] = x[i] > 0 ? x[i] : 0;
		break;
	case MDL_OP_LEAKYRELU:
	case MDL_OP_PRELU:
		for (int64_t i = lo; i < hi; i++)
			y[i] = x[i] >= 0 ? x[i] : x[i] * a;
		break;
	case MDL_OP_CLIP:
		for (int64_t i = lo; i < hi; i++)
			y[i] = x[i] < a ? a : x[i] > b ? b : x[i];
		break;
	case MDL_OP_SIGMOID:
		if (j->simd) {
			gpu_cpu_sigmoid_avx512(x + lo, y + lo, hi - lo);
			break;
		}
		for (int64_t i = lo; i < hi; i++)
			y[i] = 1.0f / (1.0f + expf(-x[i]));
		break;
	case MDL_OP_HARDSIGMOID:
		for (int64_t i = lo; i < hi; i++) {
			float v = a * x[i] + b;
			y[i] = v < 0 ? 0 : v > 1 ? 1 : v;
		}
		break;
	case MDL_OP_HARDSWISH:
		if (j->simd) {
			gpu_cpu_hardswish_avx512(x + lo, y + lo, hi - lo);
			break;
		}
		for (int64_t i = lo; i < hi; i++) {
			float v = x[i] / 6.0f + 0.5f;
			y[i] = x[i] * (v < 0 ? 0 : v > 1 ? 1 : v);
		}
		break;
	case MDL_OP_TANH:
		for (int64_t i = lo; i < hi; i++)
			y[i] = tanhf(x[i]);
		break;
	case MDL_OP_EXP:
		for (int64_t i = lo; i < hi; i++)
			y[i] = expf(x[i]);
		break;
	case MDL_OP_NEG:
		for (int64_t i = lo; i < hi; i++)
			y[i] = -x[i];
		break;
	case MDL_OP_ABS:
		for (int64_t i = lo; i < hi; i++)
			y[i] = fabsf(x[i]);
		break;
	case MDL_OP_SQRT:
		for (int64_t i = lo; i < hi; i++)
			y[i] = sqrtf(x[i]);
		break;
	default:
		break;
	}
}

static void run_unary(struct gpu_cpu_args *a, enum mdl_op op, const float *x, float *y,
		      int64_t n, float pa, float pb)
{
	struct unary_job j = {op, x, y, n, pa, pb, gpu_cpu_has_avx512()};
	gpu_cpu_pool_run(a->pool, chunks(n), unary_task, &j);
}

/* ---- binary elementwise with broadcasting --------------------------------------------------- */

struct binary_job {
	enum mdl_op op;
	const float *a, *b;
	float *y;
	struct mdl_shape sa, sb, so; /* sa, sb right-aligned to so's rank */
	int64_t inner;               /* last dimension of so */
	int64_t rows;
};

static void binary_row(const struct binary_job *j, int64_t row)
{
	int r = j->so.rank;
	int64_t oa = 0, ob = 0, ma = 1, mb = 1, rem = row;
	if (r > 0) {
		ma = j->sa.d[r - 1];
		mb = j->sb.d[r - 1];
	}
	for (int k = r - 2; k >= 0; k--) {
		int64_t idx = rem % j->so.d[k];
		rem /= j->so.d[k];
		if (j->sa.d[k] != 1)
			oa += idx * ma;
		if (j->sb.d[k] != 1)
			ob += idx * mb;
		ma *= j->sa.d[k];
		mb *= j->sb.d[k];
	}
	int64_t n = j->inner;
	const float *a = j->a + oa, *b = j->b + ob;
	int64_t da = r > 0 && j->sa.d[r - 1] == 1 ? 0 : 1, db = r > 0 && j->sb.d[r - 1] == 1 ? 0 : 1;
	float *y = j->y + row * n;
	switch (j->op) {
	case MDL_OP_ADD:
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i * da] + b[i * db];
		break;
	case MDL_OP_SUB:
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i * da] - b[i * db];
		break;
	case MDL_OP_MUL:
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i * da] * b[i * db];
		break;
	case MDL_OP_DIV:
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i * da] / b[i * db];
		break;
	default: /* PRelu */
		for (int64_t i = 0; i < n; i++)
			y[i] = a[i * da] >= 0 ? a[i * da] : a[i * da] * b[i * db];
		break;
	}
}

static void binary_task(void *arg, int64_t t)
{
	const struct binary_job *j = arg;
	if (j->rows == 1) { /* flat: operands full-size or scalar */
		int64_t lo = t * CHUNK, hi = lo + CHUNK < j->inner ? lo + CHUNK : j->inner;
		int64_t da = j->sa.d[0] == 1 ? 0 : 1, db = j->sb.d[0] == 1 ? 0 : 1;
		float *y = j->y;
		const float *a = j->a, *b = j->b;
		switch (j->op) {
		case MDL_OP_ADD:
			for (int64_t i = lo; i < hi; i++)
				y[i] = a[i * da] + b[i * db];
			return;
		case MDL_OP_SUB:
			for (int64_t i = lo; i < hi; i++)
				y[i] = a[i * da] - b[i * db];
			return;
		case MDL_OP_MUL:
			for (int64_t i = lo; i < hi; i++)
				y[i] = a[i * da] * b[i * db];
			return;
		case MDL_OP_DIV:
			for (int64_t i = lo; i < hi; i++)
				y[i] = a[i * da] / b[i * db];
			return;
		default:
			for (int64_t i = lo; i < hi; i++)
				y[i] = a[i * da] >= 0 ? a[i * da] : a[i * da] * b[i * db];
			return;
		}
	}
	int64_t per = j->inner >= CHUNK ? 1 : CHUNK / (j->inner ? j->inner : 1);
	for (int64_t r = t * per; r < (t + 1) * per && r < j->rows; r++)
		binary_row(j, r);
}

/* Plane t of a full-size operand with one scalar per plane: y = x op s[t] (swapped: s[t] op x). */
struct scalar_job {
	enum mdl_op op;
	const float *x, *s;
	float *y;
	int swapped;
	int64_t inner, outer;
};

static void scalar_task(void *arg, int64_t t)
{
	const struct scalar_job *j = arg;
	const float *restrict x = j->x + t * j->inner;
	float *restrict y = j->y + t * j->inner, s = j->s[t];
	int64_t n = j->inner;
	switch (j->op) {
	case MDL_OP_ADD:
		for (int64_t i = 0; i < n; i++)
			y[i] = x[i] + s;
		break;
	case MDL_OP_MUL:
		for (int64_t i = 0; i < n; i++)
			y[i] = x[i] * s;
		break;
	case MDL_OP_SUB:
		if (j->swapped)
			for (int64_t i = 0; i < n; i++)
				y[i] = s - x[i];
		else
			for (int64_t i = 0; i < n; i++)
				y[i] = x[i] - s;
		break;
	case MDL_OP_DIV:
		if (j->swapped)
			for (int64_t i = 0; i < n; i++)
				y[i] = s / x[i];
		else
			for (int64_t i = 0; i < n; i++)
				y[i] = x[i] / s;
		break;
	default: /* PRelu: slope per plane, or the slope full size and x per plane */
		if (j->swapped)
			for (int64_t i = 0; i < n; i++)
				y[i] = s >= 0 ? s : s * x[i];
		else
			for (int64_t i = 0; i < n; i++)
				y[i] = x[i] >= 0 ? x[i] : x[i] * s;
		break;
	}
}

static void align_shape(const struct mdl_shape *s, int rank, struct mdl_shape *o)
{
	o->rank = rank;
	for (int i = 0; i < rank; i++) {
		int k = i - (rank - s->rank);
		o->d[i] = k >= 0 ? s->d[k] : 1;
	}
}

static int k_binary(struct gpu_cpu_args *a)
{
	struct binary_job j;
	j.op = a->n->op;
	j.a = a->x[0];
	j.b = a->x[1];
	j.y = a->y[0];
	j.so = a->out[0]->shape;
	int64_t total = numel(a->out[0]), na = numel(a->in[0]), nb = numel(a->in[1]);
	if (!total)
		return 0;
	if ((na == total || na == 1) && (nb == total || nb == 1)) {
		j.sa = (struct mdl_shape){1, {na}};
		j.sb = (struct mdl_shape){1, {nb}};
		j.inner = total;
		j.rows = 1;
		gpu_cpu_pool_run(a->pool, chunks(total), binary_task, &j);
		return 0;
	}
	align_shape(&a->in[0]->shape, j.so.rank, &j.sa);
	align_shape(&a->in[1]->shape, j.so.rank, &j.sb);
	/* one operand full size, the other one value per leading index (e.g. N,C,H,W by N,C,1,1,
	 * a squeeze-excite scale): planes with a scalar operand */
	for (int side = 0; side < 2; side++) {
		const struct mdl_shape *per = side ? &j.sa : &j.sb;
		int r = 0, ok = numel(a->in[side]) == total;
		while (r < j.so.rank && per->d[r] == j.so.d[r])
			r++;
		for (int k = r; k < j.so.rank; k++)
			ok &= per->d[k] == 1;
		if (!ok || r == 0 || r == j.so.rank)
			continue;
		struct scalar_job sj = {j.op, side ? j.b : j.a, side ? j.a : j.b, j.y, side, 1, 0};
		for (int k = r; k < j.so.rank; k++)
			sj.inner *= j.so.d[k];
		sj.outer = total / sj.inner;
		gpu_cpu_pool_run(a->pool, sj.outer, scalar_task, &sj);
		return 0;
	}
	j.inner = j.so.d[j.so.rank - 1];
	j.rows = total / j.inner;
	if (j.rows == 1) { /* a single broadcast row: the flat path would misread it */
		binary_row(&j, 0);
		return 0;
	}
	int64_t per = j.inner >= CHUNK ? 1 : CHUNK / j.inner;
	gpu_cpu_pool_run(a->pool, (j.rows + per - 1) / per, binary_task, &j);
	return 0;
}

/* ---- convolution ---------------------------------------------------------------------------- */

struct conv_job {
	const struct mdl_node *n;
	const float *x, *w, *bias;
	float *y, *col;
	int64_t C, H, W, M, OH, OW, group, pads[4];
};

/* Output columns [lo, hi] of a depthwise/im2col row whose source iw = ow * sw + off is
 * inside [0, W). Empty when hi < lo. */
static void valid_cols(int64_t off, int64_t sw, int64_t W, int64_t OW, int64_t *lo, int64_t *hi)
{
	*lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
	*hi = W - 1 - off < 0 ? -1 : (W - 1 - off) / sw;
	if (*hi > OW - 1)
		*hi = OW - 1;
	if (*lo > OW)
		*lo = OW;
}

/* One channel plane of a depthwise convolution (task = n * C + c). For each kernel row the
 * columns where every tap is inside the image take all taps in one pass; the borders take
 * them tap by tap. */
static void depthwise_task(void *arg, int64_t t)
{
	const struct conv_job *j = arg;
	const struct mdl_attrs *at = &j->n->a;
	int64_t c = t % j->C;
	const float *x = j->x + t * j->H * j->W, *w = j->w + c * at->kernel[0] * at->kernel[1];
	float *y = j->y + t * j->OH * j->OW;
	int64_t sh = at->stride[0], sw = at->stride[1], dh = at->dil[0], dw = at->dil[1];
	int64_t KH = at->kernel[0], KW = at->kernel[1], pt = j->pads[0], pl = j->pads[1];
	int64_t lo_all = 0, hi_all = j->OW - 1;
	for (int64_t kw = 0; kw < KW; kw++) {
		int64_t lo, hi;
		valid_cols(kw * dw - pl, sw, j->W, j->OW, &lo, &hi);
		lo_all = lo > lo_all ? lo : lo_all;
		hi_all = hi < hi_all ? hi : hi_all;
	}
	if (lo_all > hi_all) /* no interior: every column is a border column */
		lo_all = j->OW, hi_all = j->OW - 1;
	float b0 = j->bias ? j->bias[c] : 0.0f;
	for (int64_t i = 0; i < j->OH * j->OW; i++)
		y[i] = b0;
	for (int64_t oh = 0; oh < j->OH; oh++) {
		float *restrict yr = y + oh * j->OW;
		for (int64_t kh = 0; kh < KH; kh++) {
			int64_t ih = oh * sh - pt + kh * dh;
			if (ih < 0 || ih >= j->H)
				continue;
			const float *restrict xr = x + ih * j->W;
			const float *wr = w + kh * KW;
			for (int64_t kw = 0; kw < KW; kw++) { /* borders, tap by tap */
				int64_t off = kw * dw - pl, lo, hi;
				valid_cols(off, sw, j->W, j->OW, &lo, &hi);
				int64_t left = hi < lo_all - 1 ? hi : lo_all - 1;
				for (int64_t ow = lo; ow <= left; ow++)
					yr[ow] += wr[kw] * xr[ow * sw + off];
				for (int64_t ow = lo > hi_all + 1 ? lo : hi_all + 1; ow <= hi; ow++)
					yr[ow] += wr[kw] * xr[ow * sw + off];
			}
			if (KW == 3 && sw == 1) {
				const float *x0 = xr - pl, *x1 = x0 + dw, *x2 = x1 + dw;
				float w0 = wr[0], w1 = wr[1], w2 = wr[2];
				for (int64_t ow = lo_all; ow <= hi_all; ow++)
					yr[ow] += w0 * x0[ow] + w1 * x1[ow] + w2 * x2[ow];
			} else if (KW == 5 && sw == 1) {
				const float *x0 = xr - pl;
				float w0 = wr[0], w1 = wr[1], w2 = wr[2], w3 = wr[3], w4 = wr[4];
				for (int64_t ow = lo_all; ow <= hi_all; ow++)
					yr[ow] += w0 * x0[ow] + w1 * x0[ow + dw] + w2 * x0[ow + 2 * dw] +
						  w3 * x0[ow + 3 * dw] + w4 * x0[ow + 4 * dw];
			} else {
				for (int64_t ow = lo_all; ow <= hi_all; ow++) {
					float acc = 0.0f;
					const float *xs = xr + ow * sw - pl;
					for (int64_t kw = 0; kw < KW; kw++)
						acc += wr[kw] * xs[kw * dw];
					yr[ow] += acc;
				}
			}
		}
	}
	if (at->act != MDL_ACT_NONE)
		bias_act(y, j->OH * j->OW, 0.0f, at->act, at->act_a, at->act_b);
}

/* im2col rows of one input channel (task = channel within the group). */
struct im2col_job {
	const struct conv_job *c;
	const float *x; /* group's first channel */
};

static void im2col_task(void *arg, int64_t ch)
{
	const struct im2col_job *ij = arg;
	const struct conv_job *j = ij->c;
	const struct mdl_attrs *at = &j->n->a;
	int64_t KH = at->kernel[0], KW = at->kernel[1], ohw = j->OH * j->OW, sw = at->stride[1];
	const float *x = ij->x + ch * j->H * j->W;
	for (int64_t kh = 0; kh < KH; kh++)
		for (int64_t kw = 0; kw < KW; kw++) {
			float *col = j->col + ((ch * KH + kh) * KW + kw) * ohw;
			/* columns ow whose source iw = ow * sw + off lies inside the row */
			int64_t off = kw * at->dil[1] - j->pads[1], lo, hi;
			valid_cols(off, sw, j->W, j->OW, &lo, &hi);
			for (int64_t oh = 0; oh < j->OH; oh++) {
				int64_t ih = oh * at->stride[0] - j->pads[0] + kh * at->dil[0];
				float *cr = col + oh * j->OW;
				if (ih < 0 || ih >= j->H || hi < lo) {
					memset(cr, 0, (size_t)j->OW * sizeof(float));
					continue;
				}
				const float *xr = x + ih * j->W + off;
				memset(cr, 0, (size_t)lo * sizeof(float));
				if (sw == 1)
					memcpy(cr + lo, xr + lo, (size_t)(hi - lo + 1) * sizeof(float));
				else
					for (int64_t ow = lo; ow <= hi; ow++)
						cr[ow] = xr[ow * sw];
				memset(cr + hi + 1, 0, (size_t)(j->OW - 1 - hi) * sizeof(float));
			}
		}
}

struct bias_job {
	const struct conv_job *c;
	float *y;
};

/* Bias + activation of one output channel of one image (task = n * M + m). */
static void conv_finish_task(void *arg, int64_t t)
{
	const struct bias_job *bj = arg;
	const struct conv_job *j = bj->c;
	const struct mdl_attrs *at = &j->n->a;
	int64_t m = t % j->M, ohw = j->OH * j->OW;
	bias_act(bj->y + t * ohw, ohw, j->bias ? j->bias[m] : 0.0f, at->act, at->act_a, at->act_b);
}

static int is_depthwise(const struct mdl_node *n, const struct mdl_shape *x, const struct mdl_shape *w)
{
	return n->a.group > 1 && n->a.group == x->d[1] && w->d[0] == x->d[1];
}

static int k_conv(struct gpu_cpu_args *a)
{
	const struct mdl_node *n = a->n;
	const struct mdl_shape *xs = &a->in[0]->shape, *ws = &a->in[1]->shape;
	struct conv_job j = {0};
	j.n = n;
	j.x = a->x[0];
	j.w = a->x[1];
	j.bias = n->n_in > 2 ? a->x[2] : NULL;
	j.y = a->y[0];
	j.col = a->scratch;
	j.C = xs->d[1], j.H = xs->d[2], j.W = xs->d[3], j.M = ws->d[0];
	j.group = n->a.group;
	int64_t hw[2];
	mdl_node_window(n, xs, j.pads, hw);
	j.OH = hw[0], j.OW = hw[1];
	int64_t N = xs->d[0];
	if (a->wpack)
		return gpu_cpu_conv_run(a);
	if (is_depthwise(n, xs, ws)) {
		if (gpu_cpu_dw_ok(n))
			return gpu_cpu_dw_run(a);
		gpu_cpu_pool_run(a->pool, N * j.C, depthwise_task, &j);
		return 0;
	}
	int64_t cg = j.C / j.group, mg = j.M / j.group, K = cg * n->a.kernel[0] * n->a.kernel[1];
	int64_t ohw = j.OH * j.OW;
	int pointwise = n->a.kernel[0] == 1 && n->a.kernel[1] == 1 && n->a.stride[0] == 1 &&
			n->a.stride[1] == 1 && !j.pads[0] && !j.pads[1] && !j.pads[2] && !j.pads[3];
	for (int64_t b = 0; b < N; b++)
		for (int64_t g = 0; g < j.group; g++) {
			const float *xg = j.x + (b * j.C + g * cg) * j.H * j.W;
			const float *col = xg;
			if (!pointwise) {
				struct im2col_job ij = {&j, xg};
				gpu_cpu_pool_run(a->pool, cg, im2col_task, &ij);
				col = j.col;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)ohw, (int)K,
				    1.0f, j.w + g * mg * K, (int)K, col, (int)ohw, 0.0f,
				    j.y + (b * j.M + g * mg) * ohw, (int)ohw);
		}
	if (j.bias || n->a.act != MDL_ACT_NONE) {
		struct bias_job bj = {&j, j.y};
		gpu_cpu_pool_run(a->pool, N * j.M, conv_finish_task, &bj);
	}
	return 0;
}

/* ---- pooling -------------------------------------------------------------------------------- */

struct pool_job {
	const struct mdl_node *n;
	const float *x;
	float *y;
	int64_t H, W, OH, OW, pads[4], plane; /* plane: H*W for global pools */
};

static void pool_task(void *arg, int64_t t)
{
	const struct pool_job *j = arg;
	const struct mdl_attrs *at = &j->n->a;
	const float *x = j->x + t * j->H * j->W;
	float *y = j->y + t * j->OH * j->OW;
	int is_max = j->n->op == MDL_OP_MAXPOOL;
	if (is_max && at->dil[0] == 1 && at->dil[1] == 1 && j->W <= 2048) {
		/* max over the window's rows into one row (vectorises), then over its columns;
		 * columns whose window lies inside the row need no bounds checks */
		float rowmax[2048];
		int64_t KH = at->kernel[0], KW = at->kernel[1], sw = at->stride[1], pl = j->pads[1];
		int64_t lo = (pl + sw - 1) / sw, hi = j->W - KW + pl < 0 ? -1 : (j->W - KW + pl) / sw;
		hi = hi < j->OW - 1 ? hi : j->OW - 1;
		for (int64_t oh = 0; oh < j->OH; oh++) {
			int64_t h0 = oh * at->stride[0] - j->pads[0];
			int64_t kh0 = h0 < 0 ? -h0 : 0, kh1 = j->H - h0 < KH ? j->H - h0 : KH;
			float *restrict rm = rowmax;
			for (int64_t iw = 0; iw < j->W; iw++)
				rm[iw] = -FLT_MAX;
			for (int64_t kh = kh0; kh < kh1; kh++) {
				const float *restrict xr = x + (h0 + kh) * j->W;
				for (int64_t iw = 0; iw < j->W; iw++)
					rm[iw] = xr[iw] > rm[iw] ? xr[iw] : rm[iw];
			}
			float *yr = y + oh * j->OW;
			if (KW == 3 && sw == 1 && kh0 < kh1) /* interior columns as one vector loop */
				for (int64_t ow = lo; ow <= hi; ow++) {
					const float *r = rm + ow - pl;
					float acc = r[0] > -FLT_MAX ? r[0] : -FLT_MAX;
					acc = r[1] > acc ? r[1] : acc;
					yr[ow] = r[2] > acc ? r[2] : acc;
				}
			for (int64_t ow = 0; ow < j->OW; ow++) {
				int64_t w0 = ow * sw - pl;
				float acc = -FLT_MAX;
				if (KW == 3 && sw == 1 && kh0 < kh1 && ow >= lo && ow <= hi) {
					ow = hi; /* done above */
					continue;
				}
				if (ow >= lo && ow <= hi) {
					for (int64_t kw = 0; kw < KW; kw++)
						acc = rm[w0 + kw] > acc ? rm[w0 + kw] : acc;
				} else {
					for (int64_t kw = 0; kw < KW; kw++) {
						int64_t iw = w0 + kw;
						if (iw >= 0 && iw < j->W)
							acc = rm[iw] > acc ? rm[iw] : acc;
					}
				}
				yr[ow] = kh0 < kh1 ? acc : -FLT_MAX;
			}
		}
		return;
	}
	for (int64_t oh = 0; oh < j->OH; oh++)
		for (int64_t ow = 0; ow < j->OW; ow++) {
			int64_t h0 = oh * at->stride[0] - j->pads[0], w0 = ow * at->stride[1] - j->pads[1];
			float acc = is_max ? -FLT_MAX : 0.0f;
			int64_t cnt = 0;
			for (int64_t kh = 0; kh < at->kernel[0]; kh++) {
				int64_t ih = h0 + kh * at->dil[0];
				if (ih < 0 || ih >= j->H)
					continue;
				for (int64_t kw = 0; kw < at->kernel[1]; kw++) {
					int64_t iw = w0 + kw * at->dil[1];
					if (iw < 0 || iw >= j->W)
						continue;
					float v = x[ih * j->W + iw];
					if (is_max)
						acc = v > acc ? v : acc;
					else
						acc += v;
					cnt++;
				}
			}
			if (!is_max) {
				if (at->count_include_pad) {
					int64_t he = h0 + at->kernel[0], we = w0 + at->kernel[1];
					int64_t hl = j->H + j->pads[2], wl = j->W + j->pads[3];
					he = he < hl ? he : hl;
					we = we < wl ? we : wl;
					cnt = (he - h0) * (we - w0);
				}
				acc = cnt ? acc / (float)cnt : 0.0f;
			}
			y[oh * j->OW + ow] = acc;
		}
}

static void global_pool_task(void *arg, int64_t t)
{
	const struct pool_job *j = arg;
	const float *x = j->x + t * j->plane;
	if (j->n->op == MDL_OP_GLOBALMAXPOOL) {
		float m = -FLT_MAX;
		for (int64_t i = 0; i < j->plane; i++)
			m = x[i] > m ? x[i] : m;
		j->y[t] = m;
	} else if (gpu_cpu_has_avx512()) {
		j->y[t] = (float)((double)gpu_cpu_sum_avx512(x, j->plane) / (double)j->plane);
	} else {
		double s = 0;
		for (int64_t i = 0; i < j->plane; i++)
			s += x[i];
		j->y[t] = (float)(s / (double)j->plane);
	}
}

static int k_pool(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	struct pool_job j = {0};
	j.n = a->n;
	j.x = a->x[0];
	j.y = a->y[0];
	int64_t planes = xs->d[0] * xs->d[1];
	if (a->n->op == MDL_OP_GLOBALAVGPOOL || a->n->op == MDL_OP_GLOBALMAXPOOL) {
		j.plane = planes ? numel(a->in[0]) / planes : 0;
		gpu_cpu_pool_run(a->pool, planes, global_pool_task, &j);
		return 0;
	}
	int64_t hw[2];
	mdl_node_window(a->n, xs, j.pads, hw);
	j.H = xs->d[2], j.W = xs->d[3], j.OH = hw[0], j.OW = hw[1];
	gpu_cpu_pool_run(a->pool, planes, pool_task, &j);
	return 0;
}

/* ---- Gemm / MatMul / BatchNormalization ----------------------------------------------------- */

static int k_gemm(struct gpu_cpu_args *a)
{
	const struct mdl_attrs *at = &a->n->a;
	const struct mdl_shape *as = &a->in[0]->shape, *bs = &a->in[1]->shape;
	int64_t M = a->out[0]->shape.d[0], N = a->out[0]->shape.d[1];
	int64_t K = at->trans_a ? as->d[0] : as->d[1];
	float *y = a->y[0];
	float beta = 0.0f;
	if (a->n->n_in > 2 && a->x[2]) {
		struct mdl_shape cs;
		align_shape(&a->in[2]->shape, 2, &cs);
		for (int64_t i = 0; i < M; i++)
			for (int64_t k = 0; k < N; k++)
				y[i * N + k] = at->beta * a->x[2][(cs.d[0] == 1 ? 0 : i) * cs.d[1] +
								 (cs.d[1] == 1 ? 0 : k)];
		beta = 1.0f;
	}
	if (!M || !N)
		return 0;
	cblas_sgemm(CblasRowMajor, at->trans_a ? CblasTrans : CblasNoTrans,
		    at->trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, at->alpha, a->x[0],
		    (int)as->d[1], a->x[1], (int)bs->d[1], beta, y, (int)N);
	return 0;
}

static int k_matmul(struct gpu_cpu_args *a)
{
	struct mdl_shape as = a->in[0]->shape, bs = a->in[1]->shape;
	if (as.rank == 1)
		as = (struct mdl_shape){2, {1, as.d[0]}};
	if (bs.rank == 1)
		bs = (struct mdl_shape){2, {bs.d[0], 1}};
	int64_t M = as.d[as.rank - 2], K = as.d[as.rank - 1], N = bs.d[bs.rank - 1];
	struct mdl_shape ba = as, bb = bs, bo;
	ba.rank -= 2;
	bb.rank -= 2;
	int r = ba.rank > bb.rank ? ba.rank : bb.rank;
	struct mdl_shape aa, ab;
	align_shape(&ba, r, &aa);
	align_shape(&bb, r, &ab);
	bo.rank = r;
	int64_t batches = 1;
	for (int i = 0; i < r; i++) {
		bo.d[i] = aa.d[i] > ab.d[i] ? aa.d[i] : ab.d[i];
		batches *= bo.d[i];
	}
	for (int64_t t = 0; t < batches; t++) {
		int64_t rem = t, oa = 0, ob = 0, ma = 1, mb = 1;
		for (int k = r - 1; k >= 0; k--) {
			int64_t idx = rem % bo.d[k];
			rem /= bo.d[k];
			if (aa.d[k] != 1)
				oa += idx * ma;
			if (ab.d[k] != 1)
				ob += idx * mb;
			ma *= aa.d[k];
			mb *= ab.d[k];
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
			    a->x[0] + oa * M * K, (int)K, a->x[1] + ob * K * N, (int)N, 0.0f,
			    a->y[0] + t * M * N, (int)N);
	}
	return 0;
}

static int k_batchnorm(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	int64_t C = xs->d[1], inner = 1;
	for (int i = 2; i < xs->rank; i++)
		inner *= xs->d[i];
	for (int64_t b = 0; b < xs->d[0]; b++)
		for (int64_t c = 0; c < C; c++) {
			float s = a->x[1][c] / sqrtf(a->x[4][c] + a->n->a.alpha);
			float sh = a->x[2][c] - a->x[3][c] * s;
			const float *x = a->x[0] + (b * C + c) * inner;
			float *y = a->y[0] + (b * C + c) * inner;
			for (int64_t i = 0; i < inner; i++)
				y[i] = x[i] * s + sh;
		}
	return 0;
}

/* ---- data movement -------------------------------------------------------------------------- */

static void outer_inner(const struct mdl_shape *s, int ax, int64_t *outer, int64_t *inner)
{
	*outer = *inner = 1;
	for (int k = 0; k < ax; k++)
		*outer *= s->d[k];
	for (int k = ax + 1; k < s->rank; k++)
		*inner *= s->d[k];
}

static int k_concat(struct gpu_cpu_args *a)
{
	const struct mdl_shape *os = &a->out[0]->shape;
	int ax = mdl_axis(a->n->a.axis, os->rank);
	int64_t outer, inner;
	outer_inner(os, ax, &outer, &inner);
	float *y = a->y[0];
	for (int64_t q = 0; q < outer; q++)
		for (int i = 0; i < a->n->n_in; i++) {
			int64_t blk = a->in[i]->shape.d[ax] * inner;
			memcpy(y, a->x[i] + q * blk, (size_t)blk * sizeof(float));
			y += blk;
		}
	return 0;
}

static int k_split(struct gpu_cpu_args *a)
{
	int ax;
	int64_t sizes[16], outer, inner, off = 0;
	if (mdl_node_split(a->n, a->in, &ax, sizes))
		return -EINVAL;
	const struct mdl_shape *xs = &a->in[0]->shape;
	outer_inner(xs, ax, &outer, &inner);
	for (int i = 0; i < a->n->n_out; i++) {
		if (a->y[i])
			for (int64_t q = 0; q < outer; q++)
				memcpy(a->y[i] + q * sizes[i] * inner,
				       a->x[0] + (q * xs->d[ax] + off) * inner,
				       (size_t)(sizes[i] * inner) * sizeof(float));
		off += sizes[i];
	}
	return 0;
}

/* Generic strided copy: y[i] = x[base + sum_k idx_k * xstride_k] over the output shape. */
static void strided_copy(const float *x, float *y, const struct mdl_shape *os,
			 const int64_t *xstride, int64_t base)
{
	int r = os->rank;
	int64_t cnt = mdl_shape_numel(os), idx[MDL_MAX_DIMS] = {0}, off = base;
	if (!cnt)
		return;
	int64_t inner = r ? os->d[r - 1] : 1, st = r ? xstride[r - 1] : 0;
	for (int64_t i = 0; i < cnt; i += inner) {
		if (st == 1)
			memcpy(y + i, x + off, (size_t)inner * sizeof(float));
		else
			for (int64_t e = 0; e < inner; e++)
				y[i + e] = x[off + e * st];
		for (int k = r - 2; k >= 0; k--) {
			off += xstride[k];
			if (++idx[k] < os->d[k])
				break;
			off -= idx[k] * xstride[k];
			idx[k] = 0;
		}
	}
}

static void dense_strides(const struct mdl_shape *s, int64_t *st)
{
	int64_t m = 1;
	for (int k = s->rank - 1; k >= 0; k--)
		st[k] = m, m *= s->d[k];
}

static int k_transpose(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	int perm[MDL_MAX_DIMS];
	int64_t xst[MDL_MAX_DIMS], st[MDL_MAX_DIMS];
	mdl_node_perm(a->n, xs->rank, perm);
	dense_strides(xs, xst);
	for (int k = 0; k < xs->rank; k++)
		st[k] = xst[perm[k]];
	strided_copy(a->x[0], a->y[0], &a->out[0]->shape, st, 0);
	return 0;
}

static int k_slice(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	int64_t start[MDL_MAX_DIMS], step[MDL_MAX_DIMS], xst[MDL_MAX_DIMS], base = 0;
	if (mdl_node_slice(a->n, a->in, start, step))
		return -EINVAL;
	dense_strides(xs, xst);
	for (int k = 0; k < xs->rank; k++) {
		base += start[k] * xst[k];
		xst[k] *= step[k];
	}
	strided_copy(a->x[0], a->y[0], &a->out[0]->shape, xst, base);
	return 0;
}

static int k_gather(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	int ax = mdl_axis(a->n->a.axis, xs->rank);
	int64_t outer, inner, ni = numel(a->in[1]), dim = xs->d[ax];
	const int64_t *idx = a->in[1]->data;
	outer_inner(xs, ax, &outer, &inner);
	float *y = a->y[0];
	for (int64_t q = 0; q < outer; q++)
		for (int64_t i = 0; i < ni; i++) {
			int64_t v = idx[i] < 0 ? idx[i] + dim : idx[i];
			memcpy(y, a->x[0] + (q * dim + v) * inner, (size_t)inner * sizeof(float));
			y += inner;
		}
	return 0;
}

struct softmax_job {
	const float *x;
	float *y;
	int64_t n, inner;
};

static void softmax_task(void *arg, int64_t t)
{
	const struct softmax_job *j = arg;
	int64_t q = t / j->inner, e = t % j->inner;
	const float *x = j->x + q * j->n * j->inner + e;
	float *y = j->y + q * j->n * j->inner + e;
	float m = -FLT_MAX;
	for (int64_t i = 0; i < j->n; i++)
		m = x[i * j->inner] > m ? x[i * j->inner] : m;
	double s = 0;
	for (int64_t i = 0; i < j->n; i++)
		s += y[i * j->inner] = expf(x[i * j->inner] - m);
	float inv = (float)(1.0 / s);
	for (int64_t i = 0; i < j->n; i++)
		y[i * j->inner] *= inv;
}

static int k_softmax(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape;
	int ax = mdl_axis(a->n->a.axis, xs->rank);
	struct softmax_job j = {a->x[0], a->y[0], 0, 0};
	int64_t outer;
	if (a->n->a.legacy_softmax) {
		outer = 1, j.n = 1, j.inner = 1;
		for (int k = 0; k < xs->rank; k++)
			*(k < ax ? &outer : &j.n) *= xs->d[k];
	} else {
		outer_inner(xs, ax, &outer, &j.inner);
		j.n = xs->d[ax];
	}
	gpu_cpu_pool_run(a->pool, outer * j.inner, softmax_task, &j);
	return 0;
}

/* ---- Resize (NCHW, height and width) -------------------------------------------------------- */

struct resize_job {
	const struct mdl_node *n;
	const float *x;
	float *y;
	int64_t H, W, OH, OW;
	const int32_t *iy0, *iy1, *ix0, *ix1; /* source indices per output row / column */
	const float *wy, *wx;                 /* weight of index 1 (linear) */
};

/* Source coordinate of output index o. As in ONNX's definition, the resized length is
 * in * scale, which need not be a whole number when scales (not sizes) are given. */
static float src_coord(enum mdl_resize_coord m, int64_t o, float scale, int64_t in)
{
	float out = (float)in * scale;
	switch (m) {
	case MDL_COORD_PYTORCH_HALF_PIXEL:
		return out > 1 ? ((float)o + 0.5f) / scale - 0.5f : 0.0f;
	case MDL_COORD_ALIGN_CORNERS:
		return out == 1 ? 0.0f : (float)o * (float)(in - 1) / (out - 1);
	case MDL_COORD_ASYMMETRIC:
		return (float)o / scale;
	case MDL_COORD_TF_HALF_PIXEL_FOR_NN:
		return ((float)o + 0.5f) / scale;
	default:
		return ((float)o + 0.5f) / scale - 0.5f;
	}
}

static void resize_axis(const struct mdl_attrs *at, int64_t in, int64_t out, float scale,
			int32_t *i0, int32_t *i1, float *w)
{
	for (int64_t o = 0; o < out; o++) {
		float c = src_coord(at->coord, o, scale, in);
		if (at->mode == MDL_RESIZE_NEAREST) {
			float f = floorf(c), frac = c - f;
			int64_t v;
			switch (at->nearest) {
			case MDL_NEAREST_FLOOR: v = (int64_t)f; break;
			case MDL_NEAREST_CEIL: v = (int64_t)ceilf(c); break;
			case MDL_NEAREST_ROUND_PREFER_CEIL: v = (int64_t)(frac >= 0.5f ? f + 1 : f); break;
			default: v = (int64_t)(frac > 0.5f ? f + 1 : f); break;
			}
			v = v < 0 ? 0 : v >= in ? in - 1 : v;
			i0[o] = i1[o] = (int32_t)v;
			w[o] = 0.0f;
		} else {
			c = c < 0 ? 0 : c > (float)(in - 1) ? (float)(in - 1) : c;
			int64_t v = (int64_t)floorf(c);
			i0[o] = (int32_t)v;
			i1[o] = (int32_t)(v + 1 < in ? v + 1 : in - 1);
			w[o] = c - (float)v;
		}
	}
}

static void resize_task(void *arg, int64_t t)
{
	const struct resize_job *j = arg;
	const float *x = j->x + t * j->H * j->W;
	float *y = j->y + t * j->OH * j->OW;
	for (int64_t oh = 0; oh < j->OH; oh++) {
		const float *r0 = x + j->iy0[oh] * j->W, *r1 = x + j->iy1[oh] * j->W;
		float wy = j->wy[oh];
		float *yr = y + oh * j->OW;
		if (j->n->a.mode == MDL_RESIZE_NEAREST) {
			for (int64_t ow = 0; ow < j->OW; ow++)
				yr[ow] = r0[j->ix0[ow]];
			continue;
		}
		if (j->W <= 2048) { /* rows blended first (vectorises), then columns */
			float row[2048];
			for (int64_t iw = 0; iw < j->W; iw++)
				row[iw] = r0[iw] + (r1[iw] - r0[iw]) * wy;
			for (int64_t ow = 0; ow < j->OW; ow++) {
				float a0 = row[j->ix0[ow]];
				yr[ow] = a0 + (row[j->ix1[ow]] - a0) * j->wx[ow];
			}
			continue;
		}
		for (int64_t ow = 0; ow < j->OW; ow++) {
			float wx = j->wx[ow];
			float top = r0[j->ix0[ow]] + (r0[j->ix1[ow]] - r0[j->ix0[ow]]) * wx;
			float bot = r1[j->ix0[ow]] + (r1[j->ix1[ow]] - r1[j->ix0[ow]]) * wx;
			yr[ow] = top + (bot - top) * wy;
		}
	}
}

static int k_resize(struct gpu_cpu_args *a)
{
	const struct mdl_shape *xs = &a->in[0]->shape, *os = &a->out[0]->shape;
	float sc[MDL_MAX_DIMS];
	if (mdl_node_resize_scales(a->n, a->in, sc))
		return -EINVAL;
	struct resize_job j = {0};
	j.n = a->n;
	j.x = a->x[0];
	j.y = a->y[0];
	j.H = xs->d[2], j.W = xs->d[3], j.OH = os->d[2], j.OW = os->d[3];
	/* scratch layout: iy0, iy1, wy (OH each), ix0, ix1, wx (OW each); 4-byte entries */
	int32_t *s32 = (int32_t *)a->scratch;
	int32_t *iy0 = s32, *iy1 = s32 + j.OH;
	float *wy = a->scratch + 2 * j.OH;
	int32_t *ix0 = s32 + 3 * j.OH, *ix1 = s32 + 3 * j.OH + j.OW;
	float *wx = a->scratch + 3 * j.OH + 2 * j.OW;
	resize_axis(&a->n->a, j.H, j.OH, sc[2], iy0, iy1, wy);
	resize_axis(&a->n->a, j.W, j.OW, sc[3], ix0, ix1, wx);
	j.iy0 = iy0, j.iy1 = iy1, j.wy = wy, j.ix0 = ix0, j.ix1 = ix1, j.wx = wx;
	gpu_cpu_pool_run(a->pool, xs->d[0] * xs->d[1], resize_task, &j);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int gpu_cpu_is_view(const struct mdl_node *n, const struct mdl_tensor *in0,
		    const struct mdl_tensor *out0)
{
	switch (n->op) {
	case MDL_OP_RESHAPE:
	case MDL_OP_FLATTEN:
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_IDENTITY:
		return 1;
	case MDL_OP_CAST:
		return in0->dtype == out0->dtype;
	default:
		return 0;
	}
}

size_t gpu_cpu_scratch(const struct mdl_node *n, const struct mdl_tensor *const *in,
		       const struct mdl_tensor *const *out, int threads, int packed)
{
	if (n->op == MDL_OP_CONV) {
		const struct mdl_shape *xs = &in[0]->shape, *os = &out[0]->shape;
		if (packed)
			return gpu_cpu_conv_scratch(n, xs, &in[1]->shape);
		if (is_depthwise(n, xs, &in[1]->shape))
			return gpu_cpu_dw_ok(n) ? gpu_cpu_dw_scratch(n, xs, threads) : 0;
		return (size_t)(xs->d[1] / n->a.group * n->a.kernel[0] * n->a.kernel[1] * os->d[2] *
				os->d[3]);
	}
	if (n->op == MDL_OP_RESIZE)
		return (size_t)(3 * out[0]->shape.d[2] + 3 * out[0]->shape.d[3]);
	return 0;
}

int gpu_cpu_supports(const struct mdl_node *n, const struct mdl_tensor *const *in, char *why,
		     size_t len)
{
	switch (n->op) {
	case MDL_OP_CAST:
		if (in[0]->dtype != MDL_DTYPE_FLOAT || (enum mdl_dtype)n->a.axis != MDL_DTYPE_FLOAT) {
			snprintf(why, len, "Cast between types at run time is not supported");
			return -ENOTSUP;
		}
		return 0;
	case MDL_OP_SHAPE:
	case MDL_OP_CONSTANT:
		snprintf(why, len, "op left unfolded");
		return -ENOTSUP;
	case MDL_OP_CLIP:
		for (int k = 1; k < n->n_in; k++)
			if (in[k] && in[k]->dtype != MDL_DTYPE_FLOAT) {
				snprintf(why, len, "integer bounds");
				return -ENOTSUP;
			}
		return 0;
	default:
		return 0;
	}
}

int gpu_cpu_kernel(struct gpu_cpu_args *a)
{
	const struct mdl_node *n = a->n;
	const struct mdl_attrs *at = &n->a;
	int64_t cnt = numel(a->out[0]);
	switch (n->op) {
	case MDL_OP_CONV: return k_conv(a);
	case MDL_OP_BATCHNORM: return k_batchnorm(a);
	case MDL_OP_GEMM: return k_gemm(a);
	case MDL_OP_MATMUL: return k_matmul(a);
	case MDL_OP_CLIP: {
		float lo = at->alpha, hi = at->beta;
		if (n->n_in > 1 && a->x[1])
			lo = a->x[1][0];
		if (n->n_in > 2 && a->x[2])
			hi = a->x[2][0];
		run_unary(a, n->op, a->x[0], a->y[0], cnt, lo, hi);
		return 0;
	}
	case MDL_OP_RELU:
	case MDL_OP_LEAKYRELU:
	case MDL_OP_SIGMOID:
	case MDL_OP_HARDSIGMOID:
	case MDL_OP_HARDSWISH:
	case MDL_OP_TANH:
	case MDL_OP_EXP:
	case MDL_OP_NEG:
	case MDL_OP_ABS:
	case MDL_OP_SQRT:
		run_unary(a, n->op, a->x[0], a->y[0], cnt, at->alpha, at->beta);
		return 0;
	case MDL_OP_ADD:
	case MDL_OP_SUB:
	case MDL_OP_MUL:
	case MDL_OP_DIV:
	case MDL_OP_PRELU:
		return k_binary(a);
	case MDL_OP_MAXPOOL:
	case MDL_OP_AVGPOOL:
	case MDL_OP_GLOBALAVGPOOL:
	case MDL_OP_GLOBALMAXPOOL:
		return k_pool(a);
	case MDL_OP_CONCAT: return k_concat(a);
	case MDL_OP_SPLIT: return k_split(a);
	case MDL_OP_TRANSPOSE: return k_transpose(a);
	case MDL_OP_SLICE: return k_slice(a);
	case MDL_OP_GATHER: return k_gather(a);
	case MDL_OP_SOFTMAX: return k_softmax(a);
	case MDL_OP_RESIZE: return k_resize(a);
	case MDL_OP_RESHAPE:
	case MDL_OP_FLATTEN:
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_IDENTITY:
	case MDL_OP_CAST:
		/* a view whose storage differs (should not happen with the planner): copy */
		if (a->y[0] != a->x[0])
			memcpy(a->y[0], a->x[0], (size_t)cnt * sizeof(float));
		return 0;
	default:
		return -ENOTSUP;
	}
}
