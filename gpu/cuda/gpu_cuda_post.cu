/* Detection post-processing on the device (the zoo heads of models/zoo/README.md), the device
 * version of gpu_post_decode (gpu_cpu_post.c):
 *  1. candidates: one thread per cell (NanoDet: class argmax over the channels) or per
 *     element (CenterNet: heatmap == heatmax) above the threshold appends a 64-bit key
 *     (order-preserving score bits, then the inverted scan index) to its item's list;
 *  2. one block per item: the best keys (all of them sorted in shared memory, or, for long
 *     lists, an exact radix select of the k-th best first), boxes decoded for those only,
 *     per-class greedy NMS, the kept detections written to the item's area;
 *  3. one copy of those areas into pinned host memory.
 * Keys are unique, so the selection keeps the best `cap` with equal scores broken towards the
 * earlier scan position, as the host version's bounded insertion does. Box arithmetic and
 * IoU are rounded operation by operation as on the host (no fused multiply-add). */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_kern.h"

#define POST_CHECK(call)                                                                    \
	do {                                                                                    \
		cudaError_t e_ = (call);                                                            \
		if (e_ != cudaSuccess) {                                                            \
			fprintf(stderr, "%s:%d: %s: %s (%d)\n", __FILE__, __LINE__, #call,              \
				cudaGetErrorString(e_), (int)e_);                                           \
			return -EIO;                                                                    \
		}                                                                                   \
	} while (0)

#define GFL_BINS 11
#define CENTERNET_STRIDE 4
#define CENTERNET_TOP 100
#define POST_SORT_N 2048 /* keys sorted directly in shared memory */
#define POST_THREADS 512
#define POST_ALIGN 256
#define POST_HDR 16 /* bytes before the detections of an item: int count + padding */

static size_t post_align(size_t n) { return (n + POST_ALIGN - 1) & ~(size_t)(POST_ALIGN - 1); }

/* One output map: element (n, c, cell) at n * sn + c * sc + cell * sp. */
struct post_map {
	const void *p;
	long long sn, sc, sp;
	int C, h, w;
};

struct post_args {
	int centernet;
	float score_min, iou_max;
	int n_levels;
	float stride[GPU_POST_MAX_LEVELS];
	int cell_off[GPU_POST_MAX_LEVELS + 1]; /* first scan index of each level (nanodet) */
	post_map a[GPU_POST_MAX_LEVELS], b[GPU_POST_MAX_LEVELS], wh;
	int item0, n_items, n_scan; /* scan positions per item */
	unsigned int *count;        /* [n_items] */
	unsigned long long *cand;   /* [n_items][n_scan] */
	unsigned char *dets;        /* item area i at i * item_bytes */
	size_t item_bytes;
	int lim; /* best kept before NMS */
};

template <typename T> __device__ static inline float post_ld(const void *p, long long i);
template <> __device__ inline float post_ld<float>(const void *p, long long i)
{
	return __ldg((const float *)p + i);
}
template <> __device__ inline float post_ld<__half>(const void *p, long long i)
{
	return __half2float(((const __half *)p)[i]);
}

__device__ static inline unsigned long long post_key(float score, unsigned int idx)
{
	unsigned int u = __float_as_uint(score);
	u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
	return ((unsigned long long)u << 32) | (0xffffffffu - idx);
}

__device__ static inline float post_key_score(unsigned long long k)
{
	unsigned int u = (unsigned int)(k >> 32);
	u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
	return __uint_as_float(u);
}

__device__ static inline unsigned int post_key_idx(unsigned long long k)
{
	return 0xffffffffu - (unsigned int)k;
}

template <typename T>
__device__ static inline float post_at(const post_map &m, int n, int c, int cell)
{
	return post_ld<T>(m.p, (long long)n * m.sn + (long long)c * m.sc + (long long)cell * m.sp);
}

/* NanoDet: class argmax (first best) of one cell; returns the class, *score its value. */
template <typename T>
__device__ static inline int post_argmax(const post_map &m, int n, int cell, float *score)
{
	int best = 0;
	float bv = post_at<T>(m, n, 0, cell);
	for (int c = 1; c < m.C; c++) {
		float v = post_at<T>(m, n, c, cell);
		if (v > bv)
			bv = v, best = c;
	}
	*score = bv;
	return best;
}

template <typename T> __global__ static void post_cand_nanodet(post_args a)
{
	int i = blockIdx.y, n = a.item0 + i;
	int idx = blockIdx.x * blockDim.x + threadIdx.x;
	if (idx >= a.n_scan)
		return;
	int l = 0;
	while (l + 1 < a.n_levels && idx >= a.cell_off[l + 1])
		l++;
	float score;
	post_argmax<T>(a.a[l], n, idx - a.cell_off[l], &score);
	if (!(score > a.score_min))
		return;
	unsigned int pos = atomicAdd(&a.count[i], 1u);
	a.cand[(size_t)i * a.n_scan + pos] = post_key(score, (unsigned int)idx);
}

template <typename T> __global__ static void post_cand_centernet(post_args a)
{
	int i = blockIdx.y, n = a.item0 + i;
	int idx = blockIdx.x * blockDim.x + threadIdx.x;
	if (idx >= a.n_scan)
		return;
	int hw = a.a[0].h * a.a[0].w, c = idx / hw, cell = idx - c * hw;
	float v = post_at<T>(a.a[0], n, c, cell);
	if (!(v > a.score_min) || v != post_at<T>(a.b[0], n, c, cell))
		return;
	unsigned int pos = atomicAdd(&a.count[i], 1u);
	a.cand[(size_t)i * a.n_scan + pos] = post_key(v, (unsigned int)idx);
}

/* Sorts keys[0..n) descending (n a power of two) with the whole block. */
__device__ static void post_bitonic_desc(unsigned long long *keys, int n)
{
	for (int k = 2; k <= n; k <<= 1)
		for (int j = k >> 1; j > 0; j >>= 1) {
			for (int t = threadIdx.x; t < n; t += blockDim.x) {
				int u = t ^ j;
				if (u > t) {
					unsigned long long x = keys[t], y = keys[u];
					bool desc = (t & k) == 0;
					if (desc ? x < y : x > y)
						keys[t] = y, keys[u] = x;
				}
			}
			__syncthreads();
		}
}

/* The k-th largest (k >= 1) of the n unique keys in global memory, by radix select. */
__device__ static unsigned long long post_select(const unsigned long long *keys, int n, int k,
						 unsigned int *hist)
{
	__shared__ unsigned long long prefix_s;
	__shared__ int need_s;
	unsigned long long prefix = 0, mask = 0;
	int need = k;
	for (int shift = 56; shift >= 0; shift -= 8) {
		for (int t = threadIdx.x; t < 256; t += blockDim.x)
			hist[t] = 0;
		__syncthreads();
		for (int t = threadIdx.x; t < n; t += blockDim.x) {
			unsigned long long x = keys[t];
			if ((x & mask) == prefix)
				atomicAdd(&hist[(x >> shift) & 255], 1u);
		}
		__syncthreads();
		if (threadIdx.x == 0) {
			int acc = 0, d = 255;
			for (; d > 0; d--) {
				if (acc + (int)hist[d] >= need)
					break;
				acc += (int)hist[d];
			}
			prefix_s = prefix | ((unsigned long long)d << shift);
			need_s = need - acc;
		}
		__syncthreads();
		prefix = prefix_s;
		need = need_s;
		mask |= 255ull << shift;
		__syncthreads();
	}
	return prefix;
}

__device__ static inline float post_iou(float ax0, float ay0, float ax1, float ay1, float bx0,
					float by0, float bx1, float by1)
{
	float w = __fsub_rn(fminf(ax1, bx1), fmaxf(ax0, bx0));
	float h = __fsub_rn(fminf(ay1, by1), fmaxf(ay0, by0));
	if (w <= 0 || h <= 0)
		return 0;
	float inter = __fmul_rn(w, h);
	float ua = __fsub_rn(__fadd_rn(__fmul_rn(__fsub_rn(ax1, ax0), __fsub_rn(ay1, ay0)),
				       __fmul_rn(__fsub_rn(bx1, bx0), __fsub_rn(by1, by0))),
			     inter);
	return ua > 0 ? __fdiv_rn(inter, ua) : 0;
}

template <typename T> __global__ static void __launch_bounds__(POST_THREADS) post_nms(post_args a)
{
	__shared__ unsigned long long keys[POST_SORT_N];
	__shared__ float bx0[GPU_CUDA_POST_MAX_CAP], by0[GPU_CUDA_POST_MAX_CAP],
		bx1[GPU_CUDA_POST_MAX_CAP], by1[GPU_CUDA_POST_MAX_CAP], bsc[GPU_CUDA_POST_MAX_CAP];
	__shared__ int bcl[GPU_CUDA_POST_MAX_CAP];
	__shared__ unsigned int hist[256];
	__shared__ int fill;
	int i = blockIdx.x, n = a.item0 + i;
	const unsigned long long *cand = a.cand + (size_t)i * a.n_scan;
	int nc = (int)min(a.count[i], (unsigned int)a.n_scan);
	int K = nc < a.lim ? nc : a.lim;
	/* the best K keys, sorted, in keys[0..K) */
	if (nc <= POST_SORT_N) {
		int P = 1;
		while (P < nc)
			P <<= 1;
		for (int t = threadIdx.x; t < P; t += blockDim.x)
			keys[t] = t < nc ? cand[t] : 0ull;
		__syncthreads();
		post_bitonic_desc(keys, P);
	} else {
		unsigned long long kth = post_select(cand, nc, K, hist);
		int P = 1;
		while (P < K)
			P <<= 1;
		if (threadIdx.x == 0)
			fill = 0;
		for (int t = threadIdx.x; t < P; t += blockDim.x)
			keys[t] = 0ull;
		__syncthreads();
		for (int t = threadIdx.x; t < nc; t += blockDim.x) {
			unsigned long long x = cand[t];
			if (x >= kth)
				keys[atomicAdd(&fill, 1)] = x;
		}
		__syncthreads();
		post_bitonic_desc(keys, P);
	}
	/* boxes of the K best */
	for (int k = threadIdx.x; k < K; k += blockDim.x) {
		unsigned int idx = post_key_idx(keys[k]);
		float score = post_key_score(keys[k]), x0, y0, x1, y1;
		int cls;
		if (a.centernet) {
			const post_map &h = a.a[0];
			int hw = h.h * h.w, c = (int)idx / hw, cell = (int)idx - c * hw;
			float cx = (float)(CENTERNET_STRIDE * (cell % h.w));
			float cy = (float)(CENTERNET_STRIDE * (cell / h.w));
			x0 = __fsub_rn(cx, post_at<T>(a.wh, n, 0, cell));
			y0 = __fsub_rn(cy, post_at<T>(a.wh, n, 1, cell));
			x1 = __fadd_rn(cx, post_at<T>(a.wh, n, 2, cell));
			y1 = __fadd_rn(cy, post_at<T>(a.wh, n, 3, cell));
			cls = c;
		} else {
			int l = 0;
			while (l + 1 < a.n_levels && (int)idx >= a.cell_off[l + 1])
				l++;
			int cell = (int)idx - a.cell_off[l], w = a.a[l].w;
			float best;
			cls = post_argmax<T>(a.a[l], n, cell, &best);
			float s = a.stride[l], dist[4];
			for (int q = 0; q < 4; q++) {
				float m = post_at<T>(a.b[l], n, q * GFL_BINS, cell);
				for (int b = 1; b < GFL_BINS; b++)
					m = fmaxf(m, post_at<T>(a.b[l], n, q * GFL_BINS + b, cell));
				float sum = 0, acc = 0;
				for (int b = 0; b < GFL_BINS; b++) {
					float e = expf(__fsub_rn(post_at<T>(a.b[l], n, q * GFL_BINS + b, cell), m));
					sum = __fadd_rn(sum, e);
					acc = __fadd_rn(acc, __fmul_rn(e, (float)b));
				}
				dist[q] = __fdiv_rn(__fmul_rn(s, acc), sum);
			}
			float cx = __fmul_rn(__fadd_rn((float)(cell % w), 0.5f), s);
			float cy = __fmul_rn(__fadd_rn((float)(cell / w), 0.5f), s);
			x0 = __fsub_rn(cx, dist[0]), y0 = __fsub_rn(cy, dist[1]);
			x1 = __fadd_rn(cx, dist[2]), y1 = __fadd_rn(cy, dist[3]);
		}
		bx0[k] = x0, by0[k] = y0, bx1[k] = x1, by1[k] = y1, bsc[k] = score, bcl[k] = cls;
	}
	__syncthreads();
	/* greedy NMS, compacting the kept boxes in place (kept count nk <= candidate k) */
	int nk = 0;
	for (int k = 0; k < K; k++) {
		float x0 = bx0[k], y0 = by0[k], x1 = bx1[k], y1 = by1[k], sc = bsc[k];
		int cl = bcl[k], drop = 0;
		for (int j = threadIdx.x; j < nk && !drop; j += blockDim.x)
			drop = bcl[j] == cl &&
			       post_iou(bx0[j], by0[j], bx1[j], by1[j], x0, y0, x1, y1) > a.iou_max;
		drop = __syncthreads_or(drop);
		if (!drop) {
			if (threadIdx.x == 0 && nk != k)
				bx0[nk] = x0, by0[nk] = y0, bx1[nk] = x1, by1[nk] = y1, bsc[nk] = sc,
				bcl[nk] = cl;
			nk++;
			__syncthreads();
		}
	}
	unsigned char *area = a.dets + (size_t)n * a.item_bytes;
	struct gpu_det *out = (struct gpu_det *)(area + POST_HDR);
	for (int k = threadIdx.x; k < nk; k += blockDim.x) {
		struct gpu_det d;
		d.x0 = bx0[k], d.y0 = by0[k], d.x1 = bx1[k], d.y1 = by1[k], d.score = bsc[k];
		d.cls = bcl[k];
		out[k] = d;
	}
	if (threadIdx.x == 0)
		*(int *)area = nk;
}

/* Fills the maps and the scan size from the host arguments; -EINVAL as gpu_post_decode. */
static int post_setup(const struct gpu_post *p, const struct mdl_shape *shapes,
		      const void *const *outs, enum gpu_cuda_layout layout, int need_items,
		      post_args *a)
{
	memset(a, 0, sizeof *a);
	if (!p || !shapes || (layout != GPU_CUDA_NCHW && layout != GPU_CUDA_NHWC))
		return -EINVAL;
	auto map = [&](int out, post_map *m) {
		const struct mdl_shape *s = &shapes[out];
		long long C = s->d[1], h = s->d[2], w = s->d[3];
		m->p = outs ? outs[out] : NULL;
		m->C = (int)C, m->h = (int)h, m->w = (int)w;
		if (layout == GPU_CUDA_NCHW)
			m->sn = C * h * w, m->sc = h * w, m->sp = 1;
		else
			m->sn = C * h * w, m->sc = 1, m->sp = C;
	};
	auto ok4 = [&](int out) {
		if (out < 0)
			return false;
		const struct mdl_shape *s = &shapes[out];
		return s->rank == 4 && s->d[0] >= need_items && s->d[1] >= 1 && s->d[2] >= 1 &&
		       s->d[3] >= 1 && s->d[1] * s->d[2] * s->d[3] < (1ll << 31);
	};
	a->score_min = p->score_min;
	a->iou_max = p->iou_max;
	if (p->head == GPU_HEAD_CENTERNET) {
		int h = p->out_a[0], m = p->out_b[0], w = p->out_wh;
		if (!ok4(h) || !ok4(m) || !ok4(w) ||
		    memcmp(shapes[h].d, shapes[m].d, 4 * sizeof shapes[h].d[0]) || shapes[w].d[1] != 4 ||
		    shapes[w].d[2] != shapes[h].d[2] || shapes[w].d[3] != shapes[h].d[3])
			return -EINVAL;
		a->centernet = 1;
		a->n_levels = 1;
		a->stride[0] = CENTERNET_STRIDE;
		map(h, &a->a[0]);
		map(m, &a->b[0]);
		map(w, &a->wh);
		a->n_scan = a->a[0].C * a->a[0].h * a->a[0].w;
		return 0;
	}
	if (p->head != GPU_HEAD_NANODET || p->n_levels < 1 || p->n_levels > GPU_POST_MAX_LEVELS)
		return -EINVAL;
	a->n_levels = p->n_levels;
	long long off = 0;
	for (int l = 0; l < p->n_levels; l++) {
		int c = p->out_a[l], r = p->out_b[l];
		if (!ok4(c) || !ok4(r) || shapes[r].d[1] != 4 * GFL_BINS ||
		    shapes[c].d[2] != shapes[r].d[2] || shapes[c].d[3] != shapes[r].d[3] ||
		    p->stride[l] < 1)
			return -EINVAL;
		map(c, &a->a[l]);
		map(r, &a->b[l]);
		a->stride[l] = (float)p->stride[l];
		a->cell_off[l] = (int)off;
		off += shapes[c].d[2] * shapes[c].d[3];
		if (off >= (1ll << 31))
			return -EINVAL;
	}
	a->cell_off[p->n_levels] = (int)off;
	a->n_scan = (int)off;
	return 0;
}

static size_t post_scratch_need(int n_scan, int n_items)
{
	return post_align((size_t)n_items * sizeof(unsigned int)) +
	       (size_t)n_items * (size_t)n_scan * sizeof(unsigned long long);
}

extern "C" size_t gpu_cuda_post_scratch_size(const struct gpu_post *p,
					     const struct mdl_shape *shapes, int max_batch)
{
	post_args a;
	if (max_batch < 1 || post_setup(p, shapes, NULL, GPU_CUDA_NCHW, max_batch, &a))
		return 0;
	return post_scratch_need(a.n_scan, max_batch);
}

static size_t post_item_bytes(int cap) { return POST_HDR + (size_t)cap * sizeof(struct gpu_det); }

extern "C" size_t gpu_cuda_post_dets_size(int max_batch, int cap)
{
	if (max_batch < 1 || cap < 1 || cap > GPU_CUDA_POST_MAX_CAP)
		return 0;
	return (size_t)max_batch * post_item_bytes(cap);
}

template <typename T> static void post_kernels(cudaStream_t s, const post_args &a)
{
	dim3 grid((unsigned)(a.n_scan + 255) / 256, (unsigned)a.n_items);
	if (a.centernet)
		post_cand_centernet<T><<<grid, 256, 0, s>>>(a);
	else
		post_cand_nanodet<T><<<grid, 256, 0, s>>>(a);
	post_nms<T><<<(unsigned)a.n_items, POST_THREADS, 0, s>>>(a);
}

extern "C" int gpu_cuda_post_launch(cudaStream_t stream, const struct gpu_post *p,
				    const struct gpu_cuda_outputs *o, int item0, int n_items,
				    void *scratch, size_t scratch_size, void *dev_dets,
				    void *host_dets, int cap)
{
	post_args a;
	if (!o || !o->outs || !o->shapes || item0 < 0 || n_items < 1 || !scratch || !dev_dets ||
	    !host_dets || cap < 1 || cap > GPU_CUDA_POST_MAX_CAP ||
	    (o->dtype != GPU_CUDA_F32 && o->dtype != GPU_CUDA_F16) ||
	    post_setup(p, o->shapes, o->outs, o->layout, item0 + n_items, &a))
		return -EINVAL;
	for (int l = 0; l < a.n_levels; l++)
		if (!a.a[l].p || !a.b[l].p)
			return -EINVAL;
	if ((a.centernet && !a.wh.p) || scratch_size < post_scratch_need(a.n_scan, n_items))
		return -EINVAL;
	a.item0 = item0;
	a.n_items = n_items;
	a.count = (unsigned int *)scratch;
	a.cand = (unsigned long long *)((unsigned char *)scratch +
					post_align((size_t)n_items * sizeof(unsigned int)));
	a.dets = (unsigned char *)dev_dets;
	a.item_bytes = post_item_bytes(cap);
	a.lim = a.centernet && cap > CENTERNET_TOP ? CENTERNET_TOP : cap;
	POST_CHECK(cudaMemsetAsync(a.count, 0, (size_t)n_items * sizeof(unsigned int), stream));
	if (o->dtype == GPU_CUDA_F16)
		post_kernels<__half>(stream, a);
	else
		post_kernels<float>(stream, a);
	POST_CHECK(cudaGetLastError());
	size_t off = (size_t)item0 * a.item_bytes;
	POST_CHECK(cudaMemcpyAsync((unsigned char *)host_dets + off, (unsigned char *)dev_dets + off,
				   (size_t)n_items * a.item_bytes, cudaMemcpyDeviceToHost, stream));
	return 0;
}

extern "C" int gpu_cuda_post_result(const void *host_dets, int cap, int item,
				    struct gpu_det *dets, int dets_cap)
{
	if (!host_dets || cap < 1 || cap > GPU_CUDA_POST_MAX_CAP || item < 0 || !dets ||
	    dets_cap < 1)
		return -EINVAL;
	const unsigned char *area = (const unsigned char *)host_dets + (size_t)item * post_item_bytes(cap);
	int n;
	memcpy(&n, area, sizeof n);
	if (n < 0 || n > cap)
		return -EINVAL;
	if (n > dets_cap)
		n = dets_cap;
	memcpy(dets, area + POST_HDR, (size_t)n * sizeof *dets);
	return n;
}
