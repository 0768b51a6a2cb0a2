/* CPU backend: dense convolutions (group 1) as a direct GEMM with an AVX-512 micro-kernel.
 *
 * Y[m][q] = act(bias[m] + sum_k W[m][k] * X[k][q]) for output channel m, output pixel q and
 * k = (input channel, kernel row, kernel column), as im2col + GEMM would, but X is never
 * built: row k of it is the input itself read at an offset.
 *   - The input is copied once per call into phase planes: plane (a, b) holds the padded
 *     input's rows s*i + a and columns s*j + b (s = stride; one plane for stride 1, the
 *     padded image). Tap (kh, kw) of output (oh, ow) is then element (oh + kh*dh/s,
 *     ow + kw*dw/s) of one plane, so with output pixels numbered q = oh * Wq + ow over the
 *     plane width Wq, X[k][q] = planes[off[k] + q]: contiguous in q for every k. The Wq - OW
 *     extra columns per row are computed and not stored. 1x1 stride-1 unpadded convolutions
 *     read the input in place.
 *   - W is packed once at family load into panels of CV_MR output channels ([K][CV_MR] each,
 *     zero rows past M); the micro-kernel keeps CV_MR x 48 outputs in registers over all of
 *     K and stores them once, bias and activation applied, straight into NCHW rows.
 * Tasks are (image, pixel block, channel range): a batch is one bigger GEMM. With AVX2 + FMA
 * and no AVX-512F the same tiles are computed in 256-bit halves (cv_panel8: 4 channels x 24
 * pixels per pass, 12 accumulators of the 16 registers). Machines with neither keep the
 * im2col + sgemm path of gpu_cpu_ops.c (gpu_cpu_conv_fast_ok says 0). */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu_cpu_priv.h"

#define CV_MR 8   /* output channels per micro-kernel */
#define CV_NR 48  /* output pixels per micro-kernel (3 vectors of 16) */
#define CV_NC 96  /* output pixels per task block (about; balanced, multiple of 16) */
#define CV_SLACK 64 /* floats read past the last plane by the extra columns of the last tile */
#define CV_DW_TAPS 64 /* depthwise fast path: kernels of at most 64 taps (8x8) */

int gpu_cpu_conv_fast_ok(const struct mdl_node *n, const void *wdata, const struct mdl_shape *ws)
{
	return n->op == MDL_OP_CONV && n->a.group == 1 && wdata && ws->rank == 4 &&
	       ws->d[0] > 0 && ws->d[1] > 0 && n->a.kernel[0] == ws->d[2] &&
	       n->a.kernel[1] == ws->d[3] && gpu_cpu_has_avx2();
}

float *gpu_cpu_conv_pack(const struct mdl_node *n, const float *w, const struct mdl_shape *ws)
{
	(void)n;
	int64_t M = ws->d[0], K = ws->d[1] * ws->d[2] * ws->d[3], mb = (M + CV_MR - 1) / CV_MR;
	size_t cnt = (size_t)(mb * K * CV_MR), bytes = (cnt * sizeof(float) + 63) & ~(size_t)63;
	float *p = aligned_alloc(64, bytes ? bytes : 64);
	if (!p)
		return NULL;
	memset(p, 0, bytes);
	for (int64_t m = 0; m < M; m++)
		for (int64_t k = 0; k < K; k++)
			p[(m / CV_MR) * K * CV_MR + k * CV_MR + m % CV_MR] = w[m * K + k];
	return p;
}

/* How X is read. CV_INPLACE: 1x1 stride 1 unpadded, the input itself. CV_PLANES: phase planes
 * of Hq x Wq, `planes` of them per channel. (Building X itself for small outputs, to save
 * the extra columns, measured slower: its rows no longer share cache lines.) */
enum { CV_INPLACE, CV_PLANES };
struct cv_geom {
	int mode;
	int64_t s, planes, Hq, Wq;
};

static void cv_geometry(const struct mdl_node *n, const struct mdl_shape *xs, struct cv_geom *g)
{
	int64_t pads[4], hw[2];
	mdl_node_window(n, xs, pads, hw);
	const struct mdl_attrs *at = &n->a;
	g->mode = at->kernel[0] == 1 && at->kernel[1] == 1 && at->stride[0] == 1 &&
		  at->stride[1] == 1 && !pads[0] && !pads[1] && !pads[2] && !pads[3]
		  ? CV_INPLACE : CV_PLANES;
	/* sh x sw planes: plane (a, b) takes rows a, a + sh, .. and columns b, b + sw, .. */
	int64_t sh = at->stride[0], sw = at->stride[1];
	int64_t Hp = xs->d[2] + pads[0] + pads[2], Wp = xs->d[3] + pads[1] + pads[3];
	g->s = sw;
	g->planes = sh * sw;
	g->Hq = (Hp + sh - 1) / sh;
	g->Wq = (Wp + sw - 1) / sw;
	if (g->mode == CV_INPLACE)
		g->planes = 1, g->Hq = xs->d[2], g->Wq = xs->d[3];
}

size_t gpu_cpu_conv_scratch(const struct mdl_node *n, const struct mdl_shape *xs,
			    const struct mdl_shape *ws)
{
	struct cv_geom g;
	cv_geometry(n, xs, &g);
	int64_t K = ws->d[1] * ws->d[2] * ws->d[3];
	int64_t planes = g.mode == CV_INPLACE ? 0 : xs->d[0] * xs->d[1] * g.planes * g.Hq * g.Wq;
	return (size_t)(((2 * K + 15) & ~(int64_t)15) + planes + CV_SLACK); /* int64 offsets first */
}

/* ---- micro-kernel ---------------------------------------------------------------------------- */

/* Where the 16 lanes of one vector of a tile go: lanes of mask[i] are stored at output
 * element dst[i] + lane (pixel q = oh * Wq + ow goes to oh * OW + ow; extra columns and
 * pixels past the end are in no mask). */
#define CV_SEGS 17
struct cv_vec_out {
	int n;
	__mmask16 mask[CV_SEGS];
	int64_t dst[CV_SEGS];
};

struct cv_epi {
	const float *bias; /* CV_MR entries (NULL: none) */
	float neg;         /* y = max(y, 0) + neg * min(y, 0): 1 none, 0 relu, alpha leaky */
	float lo, hi;      /* then clamped to [lo, hi] when clip */
	int clip;
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Y[r] = act(bias[r] + sum_k A[k][r] * B[off[k] .. off[k] + 16 * nv)) for r < mr, Y[r] at
 * y + r * ldy, stored through the lane maps o[0..nv). */
__attribute__((target("avx512f"), always_inline)) static inline void
cv_kernel(const int nv, int64_t K, const float *restrict A, const float *restrict B,
	  const int64_t *restrict off, float *y, int64_t ldy, int mr, const struct cv_vec_out *o,
	  const struct cv_epi *e)
{
	__m512 c[CV_MR][3];
#pragma GCC unroll 8
	for (int r = 0; r < CV_MR; r++)
#pragma GCC unroll 3
		for (int v = 0; v < nv; v++)
			c[r][v] = _mm512_setzero_ps();
	for (int64_t k = 0; k < K; k++) {
		__m512 b[3];
		const float *bk = B + off[k];
#pragma GCC unroll 3
		for (int v = 0; v < nv; v++)
			b[v] = _mm512_loadu_ps(bk + 16 * v);
		const float *ak = A + k * CV_MR;
#pragma GCC unroll 8
		for (int r = 0; r < CV_MR; r++) {
			__m512 a = _mm512_set1_ps(ak[r]);
#pragma GCC unroll 3
			for (int v = 0; v < nv; v++)
				c[r][v] = _mm512_fmadd_ps(a, b[v], c[r][v]);
		}
	}
	__m512 zero = _mm512_setzero_ps(), neg = _mm512_set1_ps(e->neg);
	__m512 lo = _mm512_set1_ps(e->lo), hi = _mm512_set1_ps(e->hi);
#pragma GCC unroll 8
	for (int r = 0; r < CV_MR; r++) {
		if (r >= mr)
			break;
		uintptr_t yr = (uintptr_t)(y + r * ldy);
		__m512 bias = e->bias ? _mm512_set1_ps(e->bias[r]) : zero;
#pragma GCC unroll 3
		for (int v = 0; v < nv; v++) {
			__m512 x = _mm512_add_ps(c[r][v], bias);
			x = _mm512_fmadd_ps(neg, _mm512_min_ps(x, zero), _mm512_max_ps(x, zero));
			if (e->clip)
				x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
			for (int i = 0; i < o[v].n; i++) /* address arithmetic: lane 0 may lie before y */
				_mm512_mask_storeu_ps((void *)(yr + (uintptr_t)o[v].dst[i] * sizeof(float)),
						      o[v].mask[i], x);
		}
	}
}

__attribute__((target("avx512f"))) static void
cv_panel(int nv, int64_t K, const float *A, const float *B, const int64_t *off, float *y,
	 int64_t ldy, int mr, const struct cv_vec_out *o, const struct cv_epi *e)
{
	if (nv == 3)
		cv_kernel(3, K, A, B, off, y, ldy, mr, o, e);
	else if (nv == 2)
		cv_kernel(2, K, A, B, off, y, ldy, mr, o, e);
	else
		cv_kernel(1, K, A, B, off, y, ldy, mr, o, e);
}

/* 8-lane store mask of the bits m (lane i stored when bit i is set). */
__attribute__((target("avx2"), always_inline)) static inline __m256i cv_mask8(unsigned m)
{
	__m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
	return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), sel), sel);
}

/* AVX2 + FMA: rows r0 .. r0 + 3 (those below mr) of the tile, over its 8-lane columns
 * u0 .. u0 + nw - 1 (column u is half u % 2 of 16-lane vector u / 2: its lanes go where
 * that half of the vector's lane map says). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
cv_kernel8(const int nw, int64_t K, const float *restrict A, const float *restrict B,
	   const int64_t *restrict off, float *y, int64_t ldy, int r0, int mr, int u0,
	   const struct cv_vec_out *o, const struct cv_epi *e)
{
	__m256 c[4][3];
#pragma GCC unroll 4
	for (int r = 0; r < 4; r++)
#pragma GCC unroll 3
		for (int w = 0; w < nw; w++)
			c[r][w] = _mm256_setzero_ps();
	const float *b0 = B + 8 * u0, *a0 = A + r0;
	for (int64_t k = 0; k < K; k++) {
		__m256 b[3];
		const float *bk = b0 + off[k];
#pragma GCC unroll 3
		for (int w = 0; w < nw; w++)
			b[w] = _mm256_loadu_ps(bk + 8 * w);
		const float *ak = a0 + k * CV_MR;
#pragma GCC unroll 4
		for (int r = 0; r < 4; r++) {
			__m256 a = _mm256_broadcast_ss(ak + r);
#pragma GCC unroll 3
			for (int w = 0; w < nw; w++)
				c[r][w] = _mm256_fmadd_ps(a, b[w], c[r][w]);
		}
	}
	__m256 zero = _mm256_setzero_ps(), neg = _mm256_set1_ps(e->neg);
	__m256 lo = _mm256_set1_ps(e->lo), hi = _mm256_set1_ps(e->hi);
#pragma GCC unroll 4
	for (int r = 0; r < 4; r++) {
		if (r0 + r >= mr)
			break;
		uintptr_t yr = (uintptr_t)(y + (r0 + r) * ldy);
		__m256 bias = e->bias ? _mm256_set1_ps(e->bias[r0 + r]) : zero;
#pragma GCC unroll 3
		for (int w = 0; w < nw; w++) {
			__m256 x = _mm256_add_ps(c[r][w], bias);
			x = _mm256_fmadd_ps(neg, _mm256_min_ps(x, zero), _mm256_max_ps(x, zero));
			if (e->clip)
				x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
			const struct cv_vec_out *ov = &o[(u0 + w) / 2];
			int h = 8 * ((u0 + w) % 2);
			for (int i = 0; i < ov->n; i++) { /* lane 0 may lie before y, as above */
				unsigned m = ((unsigned)ov->mask[i] >> h) & 0xffu;
				if (m)
					_mm256_maskstore_ps(
						(float *)(yr + (uintptr_t)(ov->dst[i] + h) * sizeof(float)),
						cv_mask8(m), x);
			}
		}
	}
}

/* The tile of cv_panel on AVX2: 2 * nv columns of 8 in passes of at most 3, 4 rows a pass;
 * both row halves of a column range back to back (the second reads its pixels from L1). */
__attribute__((target("avx2,fma"))) static void
cv_panel8(int nv, int64_t K, const float *A, const float *B, const int64_t *off, float *y,
	  int64_t ldy, int mr, const struct cv_vec_out *o, const struct cv_epi *e)
{
	int nw = nv == 3 ? 3 : 2;
	for (int u0 = 0; u0 < 2 * nv; u0 += nw)
		for (int r0 = 0; r0 < mr; r0 += 4) {
			if (nw == 3)
				cv_kernel8(3, K, A, B, off, y, ldy, r0, mr, u0, o, e);
			else
				cv_kernel8(2, K, A, B, off, y, ldy, r0, mr, u0, o, e);
		}
}
#else
static void cv_panel(int nv, int64_t K, const float *A, const float *B, const int64_t *off,
		     float *y, int64_t ldy, int mr, const struct cv_vec_out *o,
		     const struct cv_epi *e)
{
	(void)nv, (void)K, (void)A, (void)B, (void)off, (void)y, (void)ldy, (void)mr, (void)o;
	(void)e; /* never called: gpu_cpu_conv_fast_ok is 0 here */
}

static void cv_panel8(int nv, int64_t K, const float *A, const float *B, const int64_t *off,
		      float *y, int64_t ldy, int mr, const struct cv_vec_out *o,
		      const struct cv_epi *e)
{
	cv_panel(nv, K, A, B, off, y, ldy, mr, o, e);
}
#endif

/* ---- driver ---------------------------------------------------------------------------------- */

struct cv_job {
	const float *x, *src, *wp, *bias;
	float *y, *planes;
	const int64_t *off; /* per k: offset of X's row in src */
	struct cv_geom g;
	int64_t C, H, W, M, OH, OW, P, Q, K, KH, KW, dh, dw, pt, pl, sh;
	int64_t img;           /* floats per image in src */
	int64_t n_img, nparts; /* planes tasks: images, row parts */
	int64_t nqb, ncb, msplit, mbper, mb;
	int avx512; /* else AVX2 + FMA */
	struct cv_epi e;
};

/* Phase planes of task t = (part, image, channel): plane (a, b) row i, column j holds the
 * padded input at row sh * i + a, column sw * j + b; part p of nparts does the rows
 * [p * Hq / nparts, (p + 1) * Hq / nparts) (the pool gives each thread one part, the rows
 * its convolution tasks read). */
static void cv_planes_task(void *arg, int64_t t)
{
	const struct cv_job *j = arg;
	int64_t per = j->n_img * j->C, part = t / per;
	t %= per;
	int64_t img = t / j->C, c = t % j->C, sh = j->sh, sw = j->g.s, Hq = j->g.Hq, Wq = j->g.Wq;
	int64_t i0 = part * Hq / j->nparts, i1 = (part + 1) * Hq / j->nparts;
	const float *x = j->x + t * j->H * j->W;
	for (int64_t a = 0; a < sh; a++)
		for (int64_t b = 0; b < sw; b++) {
			float *pl = j->planes + img * j->img + ((a * sw + b) * j->C + c) * Hq * Wq;
			/* columns j with source column sw * j + b - pl inside [0, W) */
			int64_t c0 = j->pl - b > 0 ? (j->pl - b + sw - 1) / sw : 0;
			int64_t c1 = j->W - 1 + j->pl - b < 0 ? -1 : (j->W - 1 + j->pl - b) / sw;
			c1 = c1 < Wq - 1 ? c1 : Wq - 1;
			for (int64_t i = i0; i < i1; i++) {
				float *d = pl + i * Wq;
				int64_t ih = sh * i + a - j->pt;
				if (ih < 0 || ih >= j->H || c0 > c1) {
					memset(d, 0, (size_t)Wq * sizeof(float));
					continue;
				}
				const float *xr = x + ih * j->W + b - j->pl;
				memset(d, 0, (size_t)c0 * sizeof(float));
				if (sw == 1) {
					memcpy(d + c0, xr + c0, (size_t)(c1 - c0 + 1) * sizeof(float));
				} else if (sw == 2 && j->avx512) {
					gpu_cpu_stride2_avx512(xr + 2 * c0, d + c0, c1 - c0 + 1);
				} else {
					for (int64_t q = c0; q <= c1; q++)
						d[q] = xr[q * sw];
				}
				memset(d + c1 + 1, 0, (size_t)(Wq - 1 - c1) * sizeof(float));
			}
		}
}

/* Lane maps of the vectors of pixels q0 .. q0 + width - 1. */
static int cv_lane_maps(const struct cv_job *j, int64_t q0, int64_t width, struct cv_vec_out *o)
{
	int nv = (int)((width + 15) / 16);
	for (int v = 0; v < nv; v++) {
		int64_t qv = q0 + 16 * v, lanes = width - 16 * v < 16 ? width - 16 * v : 16;
		int64_t oh = qv / j->g.Wq, ow = qv % j->g.Wq;
		o[v].n = 0;
		for (int64_t l = 0; l < lanes && oh < j->OH;) {
			int64_t run = j->g.Wq - ow < lanes - l ? j->g.Wq - ow : lanes - l;
			int64_t cnt = ow < j->OW ? (j->OW - ow < run ? j->OW - ow : run) : 0;
			if (cnt > 0) {
				o[v].mask[o[v].n] = (__mmask16)(((1u << cnt) - 1) << l);
				o[v].dst[o[v].n] = oh * j->OW + ow - l;
				o[v].n++;
			}
			l += run;
			oh++;
			ow = 0;
		}
	}
	return nv;
}

static void cv_task(void *arg, int64_t t)
{
	const struct cv_job *j = arg;
	int64_t per_img = j->nqb * j->msplit, img = t / per_img, rem = t % per_img;
	int64_t qb = rem / j->msplit, ms = rem % j->msplit;
	int64_t q0 = qb * j->ncb, nc = j->Q - q0 < j->ncb ? j->Q - q0 : j->ncb;
	int64_t mb0 = ms * j->mbper, mb1 = mb0 + j->mbper < j->mb ? mb0 + j->mbper : j->mb;
	const float *src = j->src + img * j->img + q0;
	/* the block's vectors spread evenly over panels of at most 3 (a 1-vector panel is
	 * bound by its weight broadcasts) */
	struct cv_vec_out o[(CV_NC + CV_NR - 1) / CV_NR][3];
	int nv[(CV_NC + CV_NR - 1) / CV_NR], start[(CV_NC + CV_NR - 1) / CV_NR];
	int nvt = (int)((nc + 15) / 16), np = (nvt + 2) / 3;
	for (int i = 0, at = 0; i < np; i++) {
		int want = nvt / np + (i < nvt % np), width = 16 * want;
		start[i] = at;
		width = nc - at < width ? (int)(nc - at) : width;
		nv[i] = cv_lane_maps(j, q0 + at, width, o[i]);
		at += width;
	}
	for (int64_t mb = mb0; mb < mb1; mb++) {
		const float *A = j->wp + mb * j->K * CV_MR;
		int mr = (int)(j->M - mb * CV_MR < CV_MR ? j->M - mb * CV_MR : CV_MR);
		float *y = j->y + (img * j->M + mb * CV_MR) * j->P;
		struct cv_epi e = j->e;
		e.bias = j->bias ? j->bias + mb * CV_MR : NULL;
		for (int i = 0; i < np; i++)
			(j->avx512 ? cv_panel : cv_panel8)(nv[i], j->K, A, src + start[i], j->off, y,
							   j->P, mr, o[i], &e);
	}
}

int gpu_cpu_conv_run(struct gpu_cpu_args *a)
{
	const struct mdl_node *n = a->n;
	const struct mdl_attrs *at = &n->a;
	const struct mdl_shape *xs = &a->in[0]->shape, *ws = &a->in[1]->shape;
	struct cv_job j = {0};
	int64_t pads[4], hw[2];
	mdl_node_window(n, xs, pads, hw);
	cv_geometry(n, xs, &j.g);
	j.x = a->x[0];
	j.wp = a->wpack;
	j.bias = n->n_in > 2 ? a->x[2] : NULL;
	j.y = a->y[0];
	j.C = xs->d[1], j.H = xs->d[2], j.W = xs->d[3], j.M = ws->d[0];
	j.OH = hw[0], j.OW = hw[1], j.P = j.OH * j.OW, j.Q = j.OH * j.g.Wq;
	j.KH = at->kernel[0], j.KW = at->kernel[1], j.K = j.C * j.KH * j.KW;
	j.dh = at->dil[0], j.dw = at->dil[1];
	j.pt = pads[0], j.pl = pads[1], j.sh = at->stride[0];
	j.avx512 = gpu_cpu_has_avx512();
	int64_t N = xs->d[0];
	if (!N || !j.P || !j.M)
		return 0;
	/* scratch: offsets (K int64, rounded to 16 floats), then the planes */
	int64_t *off = (int64_t *)a->scratch;
	j.off = off;
	j.planes = a->scratch + ((2 * j.K + 15) & ~(int64_t)15);
	int64_t plane = j.g.Hq * j.g.Wq, k = 0;
	for (int64_t c = 0; c < j.C; c++)
		for (int64_t kh = 0; kh < at->kernel[0]; kh++)
			for (int64_t kw = 0; kw < at->kernel[1]; kw++, k++) {
				int64_t r = kh * at->dil[0], s = kw * at->dil[1];
				if (j.g.mode == CV_INPLACE) {
					off[k] = c * plane;
					continue;
				}
				int64_t p = (r % j.sh) * j.g.s + s % j.g.s;
				off[k] = (p * j.C + c) * plane + r / j.sh * j.g.Wq + s / j.g.s;
			}
	if (j.g.mode == CV_PLANES) {
		j.img = j.C * j.g.planes * plane;
		j.src = j.planes;
		/* fewer images than threads: split the rows, as the tasks below split the pixels */
		int th = gpu_cpu_pool_threads(a->pool);
		j.n_img = N, j.nparts = N >= th ? 1 : th;
		gpu_cpu_pool_run(a->pool, j.nparts * N * j.C, cv_planes_task, &j);
		memset(j.planes + N * j.img, 0, CV_SLACK * sizeof(float));
	} else {
		j.img = j.C * j.H * j.W;
		j.src = j.x;
	}
	j.e.neg = 1.0f, j.e.lo = -INFINITY, j.e.hi = INFINITY;
	switch (at->act) {
	case MDL_ACT_RELU: j.e.neg = 0.0f; break;
	case MDL_ACT_LEAKYRELU: j.e.neg = at->act_a; break;
	case MDL_ACT_CLIP: j.e.lo = at->act_a, j.e.hi = at->act_b, j.e.clip = 1; break;
	default: break;
	}
	j.mb = (j.M + CV_MR - 1) / CV_MR;
	j.nqb = (j.Q + CV_NC - 1) / CV_NC;
	j.ncb = ((j.Q + j.nqb - 1) / j.nqb + 15) & ~(int64_t)15; /* <= CV_NC */
	j.nqb = (j.Q + j.ncb - 1) / j.ncb;
	/* enough tasks for the pool: split the channel panels when pixel blocks are few */
	int threads = gpu_cpu_pool_threads(a->pool);
	int64_t want = threads > 1 ? 3 * (int64_t)threads : 1, have = N * j.nqb;
	j.msplit = have >= want ? 1 : (want + have - 1) / have;
	if (j.msplit > j.mb)
		j.msplit = j.mb;
	j.mbper = (j.mb + j.msplit - 1) / j.msplit;
	j.msplit = (j.mb + j.mbper - 1) / j.mbper;
	gpu_cpu_pool_run(a->pool, N * j.nqb * j.msplit, cv_task, &j);
	return 0;
}

/* ---- depthwise convolution ---------------------------------------------------------------------
 * One task per (image, channel): the channel's phase planes are built in the thread's slice of
 * the scratch (as above, one channel at a time), then each output row is computed 16 pixels
 * (AVX2: 8) at a time, every tap one unaligned load and one FMA, bias and activation applied in
 * registers, the row's last vector stored under a mask. */

int gpu_cpu_dw_ok(const struct mdl_node *n)
{
	return n->a.kernel[0] * n->a.kernel[1] <= CV_DW_TAPS && gpu_cpu_has_avx2();
}

size_t gpu_cpu_dw_scratch(const struct mdl_node *n, const struct mdl_shape *xs, int threads)
{
	struct cv_geom g;
	cv_geometry(n, xs, &g);
	/* planes of one channel, plus the over-read of a row's last vector */
	return (size_t)threads * (size_t)(g.planes * g.Hq * g.Wq + CV_SLACK);
}

struct dw_job {
	struct cv_job c; /* geometry and activation (planes built per channel) */
	const float *w;
	int64_t per_thread;
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Task t's channel planes in thread tid's slice: cv_planes_task on a one-channel view. */
static const float *dw_planes(const struct dw_job *d, int64_t t, int tid)
{
	const struct cv_job *j = &d->c;
	float *pl = j->planes + tid * d->per_thread;
	struct cv_job one = *j;
	one.x = j->x + t * j->H * j->W;
	one.C = 1;
	one.planes = pl;
	one.img = 0;
	one.n_img = 1, one.nparts = 1;
	cv_planes_task(&one, 0);
	memset(pl + j->g.planes * j->g.Hq * j->g.Wq, 0, CV_SLACK * sizeof(float));
	return pl;
}

__attribute__((target("avx512f"))) static void dw_task(void *arg, int64_t t, int tid)
{
	const struct dw_job *d = arg;
	const struct cv_job *j = &d->c;
	int64_t c = t % j->C, KH = j->KH, KW = j->KW, Wq = j->g.Wq;
	const float *pl = dw_planes(d, t, tid);
	const float *w = d->w + c * KH * KW;
	float *y = j->y + t * j->P;
	__m512 zero = _mm512_setzero_ps(), neg = _mm512_set1_ps(j->e.neg);
	__m512 lo = _mm512_set1_ps(j->e.lo), hi = _mm512_set1_ps(j->e.hi);
	__m512 bias = _mm512_set1_ps(j->bias ? j->bias[c] : 0.0f);
	for (int64_t oh = 0; oh < j->OH; oh++) {
		const float *base = pl + oh * Wq;
		for (int64_t ow = 0; ow < j->OW; ow += 16) {
			__m512 acc0 = bias, acc1 = zero;
			int64_t k = 0;
			for (int64_t kh = 0; kh < KH; kh++)
				for (int64_t kw = 0; kw < KW; kw++, k++) {
					__m512 x = _mm512_loadu_ps(base + j->off[k] + ow);
					if (k & 1)
						acc1 = _mm512_fmadd_ps(_mm512_set1_ps(w[k]), x, acc1);
					else
						acc0 = _mm512_fmadd_ps(_mm512_set1_ps(w[k]), x, acc0);
				}
			__m512 v = _mm512_add_ps(acc0, acc1);
			v = _mm512_fmadd_ps(neg, _mm512_min_ps(v, zero), _mm512_max_ps(v, zero));
			if (j->e.clip)
				v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
			int64_t cnt = j->OW - ow < 16 ? j->OW - ow : 16;
			_mm512_mask_storeu_ps(y + oh * j->OW + ow, (__mmask16)((1u << cnt) - 1), v);
		}
	}
}

/* The same on AVX2 + FMA, 8 pixels at a time. */
__attribute__((target("avx2,fma"))) static void dw_task8(void *arg, int64_t t, int tid)
{
	const struct dw_job *d = arg;
	const struct cv_job *j = &d->c;
	int64_t c = t % j->C, KH = j->KH, KW = j->KW, Wq = j->g.Wq;
	const float *pl = dw_planes(d, t, tid);
	const float *w = d->w + c * KH * KW;
	float *y = j->y + t * j->P;
	__m256 zero = _mm256_setzero_ps(), neg = _mm256_set1_ps(j->e.neg);
	__m256 lo = _mm256_set1_ps(j->e.lo), hi = _mm256_set1_ps(j->e.hi);
	__m256 bias = _mm256_set1_ps(j->bias ? j->bias[c] : 0.0f);
	for (int64_t oh = 0; oh < j->OH; oh++) {
		const float *base = pl + oh * Wq;
		for (int64_t ow = 0; ow < j->OW; ow += 8) {
			__m256 acc0 = bias, acc1 = zero;
			int64_t k = 0;
			for (int64_t kh = 0; kh < KH; kh++)
				for (int64_t kw = 0; kw < KW; kw++, k++) {
					__m256 x = _mm256_loadu_ps(base + j->off[k] + ow);
					if (k & 1)
						acc1 = _mm256_fmadd_ps(_mm256_set1_ps(w[k]), x, acc1);
					else
						acc0 = _mm256_fmadd_ps(_mm256_set1_ps(w[k]), x, acc0);
				}
			__m256 v = _mm256_add_ps(acc0, acc1);
			v = _mm256_fmadd_ps(neg, _mm256_min_ps(v, zero), _mm256_max_ps(v, zero));
			if (j->e.clip)
				v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
			int64_t cnt = j->OW - ow < 8 ? j->OW - ow : 8;
			if (cnt == 8)
				_mm256_storeu_ps(y + oh * j->OW + ow, v);
			else
				_mm256_maskstore_ps(y + oh * j->OW + ow, cv_mask8((1u << cnt) - 1), v);
		}
	}
}
#else
static void dw_task(void *arg, int64_t t, int tid)
{
	(void)arg, (void)t, (void)tid; /* never called: gpu_cpu_dw_ok is 0 here */
}

static void dw_task8(void *arg, int64_t t, int tid)
{
	dw_task(arg, t, tid);
}
#endif

int gpu_cpu_dw_run(struct gpu_cpu_args *a)
{
	const struct mdl_node *n = a->n;
	const struct mdl_attrs *at = &n->a;
	const struct mdl_shape *xs = &a->in[0]->shape;
	struct dw_job d = {0};
	struct cv_job *j = &d.c;
	int64_t pads[4], hw[2];
	mdl_node_window(n, xs, pads, hw);
	cv_geometry(n, xs, &j->g);
	if (j->g.mode == CV_INPLACE) { /* 1x1 depthwise: planes of the unpadded input */
		j->g.mode = CV_PLANES;
		j->g.planes = 1, j->g.s = 1;
	}
	j->x = a->x[0];
	j->bias = n->n_in > 2 ? a->x[2] : NULL;
	j->y = a->y[0];
	j->C = xs->d[1], j->H = xs->d[2], j->W = xs->d[3];
	j->OH = hw[0], j->OW = hw[1], j->P = j->OH * j->OW;
	j->KH = at->kernel[0], j->KW = at->kernel[1];
	j->pt = pads[0], j->pl = pads[1], j->sh = at->stride[0];
	d.w = a->x[1];
	int64_t N = xs->d[0], plane = j->g.Hq * j->g.Wq;
	if (!N || !j->P || !j->C)
		return 0;
	/* per tap: offset in the planes relative to output row oh (times Wq) and column ow */
	int64_t off[CV_DW_TAPS];
	for (int64_t kh = 0, k = 0; kh < j->KH; kh++)
		for (int64_t kw = 0; kw < j->KW; kw++, k++) {
			int64_t r = kh * at->dil[0], s = kw * at->dil[1];
			int64_t p = (r % j->sh) * j->g.s + s % j->g.s;
			off[k] = p * plane + r / j->sh * j->g.Wq + s / j->g.s;
		}
	j->off = off;
	j->planes = a->scratch;
	d.per_thread = j->g.planes * plane + CV_SLACK;
	j->e.neg = 1.0f, j->e.lo = -INFINITY, j->e.hi = INFINITY;
	switch (at->act) {
	case MDL_ACT_RELU: j->e.neg = 0.0f; break;
	case MDL_ACT_LEAKYRELU: j->e.neg = at->act_a; break;
	case MDL_ACT_CLIP: j->e.lo = at->act_a, j->e.hi = at->act_b, j->e.clip = 1; break;
	default: break;
	}
	j->avx512 = gpu_cpu_has_avx512();
	gpu_cpu_pool_run_tid(a->pool, N * j->C, j->avx512 ? dw_task : dw_task8, &d);
	return 0;
}
