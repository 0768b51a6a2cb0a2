/* Custom CUDA kernels of the CUDA backend: everything cuDNN has no call for. Every kernel
 * works on logical NCHW (or row-major) indices with per-tensor element strides, so the same
 * code serves fp32 NCHW and fp16 NHWC storage; arithmetic is float in both modes (fp16 is a
 * storage type). Threads walk the output in its physical order so that writes coalesce. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_priv.h"

#define THREADS 256

int gpu_cuda_fail(const char *file, int line, const char *call, const char *why, char *err,
		  size_t err_len)
{
	const char *base = file;
	for (const char *c = file; *c; c++)
		if (*c == '/')
			base = c + 1;
	if (err && err_len)
		snprintf(err, err_len, "cuda backend: %s:%d: %s: %s", base, line, call, why);
	else
		fprintf(stderr, "cuda backend: %s:%d: %s: %s\n", base, line, call, why);
	return -EIO;
}

/* Element loads/stores in float arithmetic. Everything below is __host__ __device__: the
 * same element functions run on the device and in the host emulator (gpu_cuda_emul). */
#define HD __host__ __device__ __forceinline__
HD float ld(const float *p, int i)
{
	return p[i];
}
HD float ld(const __half *p, int i)
{
	return __half2float(p[i]);
}
HD void st(float *p, int i, float v)
{
	p[i] = v;
}
HD void st(__half *p, int i, float v)
{
	p[i] = __float2half_rn(v);
}

static unsigned blocks(int n)
{
	return (unsigned)((n + THREADS - 1) / THREADS);
}

/* ---- strided map ------------------------------------------------------------------------- */

HD float act_apply(int act, float v, float p0, float p1)
{
	switch (act) {
	case MDL_ACT_RELU: return v > 0 ? v : 0;
	case MDL_ACT_CLIP: return v < p0 ? p0 : v > p1 ? p1 : v;
	case MDL_ACT_LEAKYRELU: return v >= 0 ? v : v * p0;
	default: return v;
	}
}

template <typename TA, typename TY>
HD void map_elem(const struct gpu_cuda_map &m, const TA *a, const TA *b, const TA *c, TY *y, int i)
{
	int oa = m.base_a, ob = m.base_b, oc = m.base_c, oy = m.base_y, rem = i;
	for (int k = m.rank - 1; k >= 0; k--) {
		int idx = rem % m.d[k];
		rem /= m.d[k];
		if (k == m.gdim) {
			int v = m.gidx[idx];
			oa += (v < 0 ? v + m.glen : v) * m.sa[k];
		} else {
			oa += idx * m.sa[k];
		}
		ob += idx * m.sb[k];
		oc += idx * m.sc[k];
		oy += idx * m.sy[k];
	}
	float x = ld(a, oa), r;
	switch (m.op) {
	case GC_M_RELU: r = x > 0 ? x : 0; break;
	case GC_M_LEAKY: r = x >= 0 ? x : x * m.p0; break;
	case GC_M_CLIP: r = x < m.p0 ? m.p0 : x > m.p1 ? m.p1 : x; break;
	case GC_M_SIGMOID: r = 1.0f / (1.0f + expf(-x)); break;
	case GC_M_HSIGMOID: {
		float v = m.p0 * x + m.p1;
		r = v < 0 ? 0 : v > 1 ? 1 : v;
		break;
	}
	case GC_M_HSWISH: {
		float v = x / 6.0f + 0.5f;
		r = x * (v < 0 ? 0 : v > 1 ? 1 : v);
		break;
	}
	case GC_M_TANH: r = tanhf(x); break;
	case GC_M_EXP: r = expf(x); break;
	case GC_M_NEG: r = -x; break;
	case GC_M_ABS: r = fabsf(x); break;
	case GC_M_SQRT: r = sqrtf(x); break;
	case GC_M_ADD: r = x + ld(b, ob); break;
	case GC_M_SUB: r = x - ld(b, ob); break;
	case GC_M_MUL: r = x * ld(b, ob); break;
	case GC_M_DIV: r = x / ld(b, ob); break;
	case GC_M_PRELU: r = x >= 0 ? x : x * ld(b, ob); break;
	case GC_M_AFFINE: r = x * ld(b, ob) + ld(c, oc); break;
	case GC_M_BIAS_ACT: r = act_apply(m.iact, b ? x + ld(b, ob) : x, m.p0, m.p1); break;
	default: r = x; break;
	}
	st(y, oy, r);
}

template <typename TA, typename TY>
__global__ void k_map(const struct gpu_cuda_map m, const TA *a, const TA *b, const TA *c, TY *y)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < m.n)
		map_elem(m, a, b, c, y, i);
}

template <typename TA, typename TY>
static void h_map(const struct gpu_cuda_map *m, const void *a, const void *b, const void *c,
		  void *y)
{
	for (int i = 0; i < m->n; i++)
		map_elem(*m, (const TA *)a, (const TA *)b, (const TA *)c, (TY *)y, i);
}

int gpu_cuda_launch_map(const struct gpu_cuda_map *m, enum gpu_cuda_dt ta, enum gpu_cuda_dt ty,
			const void *a, const void *b, const void *c, void *y, cudaStream_t s)
{
	if (m->n <= 0)
		return 0;
	if (s == GC_HOST) {
		if (ta == GC_F32 && ty == GC_F32)
			h_map<float, float>(m, a, b, c, y);
		else if (ta == GC_F16 && ty == GC_F16)
			h_map<__half, __half>(m, a, b, c, y);
		else if (ta == GC_F32)
			h_map<float, __half>(m, a, b, c, y);
		else
			h_map<__half, float>(m, a, b, c, y);
		return 0;
	}
	unsigned nb = blocks(m->n);
	if (ta == GC_F32 && ty == GC_F32)
		k_map<float, float><<<nb, THREADS, 0, s>>>(*m, (const float *)a, (const float *)b,
							   (const float *)c, (float *)y);
	else if (ta == GC_F16 && ty == GC_F16)
		k_map<__half, __half><<<nb, THREADS, 0, s>>>(
			*m, (const __half *)a, (const __half *)b, (const __half *)c, (__half *)y);
	else if (ta == GC_F32)
		k_map<float, __half><<<nb, THREADS, 0, s>>>(*m, (const float *)a, (const float *)b,
							    (const float *)c, (__half *)y);
	else
		k_map<__half, float><<<nb, THREADS, 0, s>>>(
			*m, (const __half *)a, (const __half *)b, (const __half *)c, (float *)y);
	GC_CU_RET(cudaGetLastError());
	return 0;
}

/* ---- pooling ----------------------------------------------------------------------------- */

template <typename T> HD void pool_elem(const struct gpu_cuda_pool &p, const T *x, T *y, int i)
{
	int n, c, oh, ow, r = i;
	if (p.nhwc) {
		c = r % p.C, r /= p.C;
		ow = r % p.OW, r /= p.OW;
		oh = r % p.OH, n = r / p.OH;
	} else {
		ow = r % p.OW, r /= p.OW;
		oh = r % p.OH, r /= p.OH;
		c = r % p.C, n = r / p.C;
	}
	const int xb = n * p.sx[0] + c * p.sx[1];
	const int h0 = oh * p.sh - p.pt, w0 = ow * p.sw - p.pl;
	float acc = p.max ? -FLT_MAX : 0.0f;
	int cnt = 0;
	for (int kh = 0; kh < p.kh; kh++) {
		int ih = h0 + kh * p.dh;
		if (ih < 0 || ih >= p.H)
			continue;
		for (int kw = 0; kw < p.kw; kw++) {
			int iw = w0 + kw * p.dw;
			if (iw < 0 || iw >= p.W)
				continue;
			float v = ld(x, xb + ih * p.sx[2] + iw * p.sx[3]);
			acc = p.max ? (v > acc ? v : acc) : acc + v;
			cnt++;
		}
	}
	if (!p.max) {
		if (p.count_include_pad) {
			int he = h0 + p.kh, we = w0 + p.kw, hl = p.H + p.pb, wl = p.W + p.pr;
			he = he < hl ? he : hl;
			we = we < wl ? we : wl;
			cnt = (he - h0) * (we - w0);
		}
		acc = cnt ? acc / (float)cnt : 0.0f;
	}
	st(y, n * p.sy[0] + c * p.sy[1] + oh * p.sy[2] + ow * p.sy[3], acc);
}

template <typename T> __global__ void k_pool(const struct gpu_cuda_pool p, const T *x, T *y)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < p.N * p.C * p.OH * p.OW)
		pool_elem(p, x, y, i);
}

/* Host global pool: one plane (double sum, as the device's). */
template <typename T> static void h_gpool(const struct gpu_cuda_pool *p, const T *x, T *y)
{
	for (int plane = 0; plane < p->N * p->C; plane++) {
		int n = plane / p->C, c = plane % p->C, hw = p->H * p->W;
		double sum = 0;
		float m = -FLT_MAX;
		for (int k = 0; k < hw; k++) {
			float v = ld(x, n * p->sx[0] + c * p->sx[1] + (k / p->W) * p->sx[2] +
						(k % p->W) * p->sx[3]);
			sum += v;
			m = v > m ? v : m;
		}
		st(y, n * p->sy[0] + c * p->sy[1], p->max ? m : (float)(sum / (double)hw));
	}
}

template <typename T> static void h_pool(const struct gpu_cuda_pool *p, const void *x, void *y)
{
	if (p->global) {
		h_gpool<T>(p, (const T *)x, (T *)y);
		return;
	}
	for (int i = 0; i < p->N * p->C * p->OH * p->OW; i++)
		pool_elem(*p, (const T *)x, (T *)y, i);
}

/* Global pools: one warp per (n, c) plane. */
template <typename T> __global__ void k_gpool(const struct gpu_cuda_pool p, const T *x, T *y)
{
	int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
	if (warp >= p.N * p.C)
		return;
	int n = warp / p.C, c = warp % p.C, hw = p.H * p.W;
	const int xb = n * p.sx[0] + c * p.sx[1];
	double s = 0;
	float m = -FLT_MAX;
	for (int k = lane; k < hw; k += 32) {
		float v = ld(x, xb + (k / p.W) * p.sx[2] + (k % p.W) * p.sx[3]);
		s += v;
		m = v > m ? v : m;
	}
	for (int o = 16; o; o >>= 1) {
		s += __shfl_down_sync(0xffffffffu, s, o);
		float mo = __shfl_down_sync(0xffffffffu, m, o);
		m = mo > m ? mo : m;
	}
	if (lane == 0)
		st(y, n * p.sy[0] + c * p.sy[1], p.max ? m : (float)(s / (double)hw));
}

int gpu_cuda_launch_pool(const struct gpu_cuda_pool *p, enum gpu_cuda_dt dt, const void *x, void *y,
			 cudaStream_t s)
{
	if (s == GC_HOST) {
		if (dt == GC_F32)
			h_pool<float>(p, x, y);
		else
			h_pool<__half>(p, x, y);
		return 0;
	}
	if (p->global) {
		int n = p->N * p->C * 32;
		if (n <= 0)
			return 0;
		if (dt == GC_F32)
			k_gpool<float>
				<<<blocks(n), THREADS, 0, s>>>(*p, (const float *)x, (float *)y);
		else
			k_gpool<__half>
				<<<blocks(n), THREADS, 0, s>>>(*p, (const __half *)x, (__half *)y);
	} else {
		int n = p->N * p->C * p->OH * p->OW;
		if (n <= 0)
			return 0;
		if (dt == GC_F32)
			k_pool<float>
				<<<blocks(n), THREADS, 0, s>>>(*p, (const float *)x, (float *)y);
		else
			k_pool<__half>
				<<<blocks(n), THREADS, 0, s>>>(*p, (const __half *)x, (__half *)y);
	}
	GC_CU_RET(cudaGetLastError());
	return 0;
}

/* ---- resize ------------------------------------------------------------------------------ */

template <typename T> HD void resize_elem(const struct gpu_cuda_resize &r, const T *x, T *y, int i)
{
	int n, c, oh, ow, q = i;
	if (r.nhwc) {
		c = q % r.C, q /= r.C;
		ow = q % r.OW, q /= r.OW;
		oh = q % r.OH, n = q / r.OH;
	} else {
		ow = q % r.OW, q /= r.OW;
		oh = q % r.OH, q /= r.OH;
		c = q % r.C, n = q / r.C;
	}
	const int xb = n * r.sx[0] + c * r.sx[1];
	const int y0 = xb + r.iy0[oh] * r.sx[2], x0 = r.ix0[ow] * r.sx[3];
	float v;
	if (!r.linear) {
		v = ld(x, y0 + x0);
	} else {
		const int y1 = xb + r.iy1[oh] * r.sx[2], x1 = r.ix1[ow] * r.sx[3];
		float wx = r.wx[ow], wy = r.wy[oh];
		float a = ld(x, y0 + x0), b = ld(x, y0 + x1), cc = ld(x, y1 + x0),
		      d = ld(x, y1 + x1);
		float top = a + (b - a) * wx, bot = cc + (d - cc) * wx;
		v = top + (bot - top) * wy;
	}
	st(y, n * r.sy[0] + c * r.sy[1] + oh * r.sy[2] + ow * r.sy[3], v);
}

template <typename T> __global__ void k_resize(const struct gpu_cuda_resize r, const T *x, T *y)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < r.N * r.C * r.OH * r.OW)
		resize_elem(r, x, y, i);
}

int gpu_cuda_launch_resize(const struct gpu_cuda_resize *r, enum gpu_cuda_dt dt, const void *x,
			   void *y, cudaStream_t s)
{
	int n = r->N * r->C * r->OH * r->OW;
	if (n <= 0)
		return 0;
	if (s == GC_HOST) {
		for (int i = 0; i < n; i++)
			if (dt == GC_F32)
				resize_elem(*r, (const float *)x, (float *)y, i);
			else
				resize_elem(*r, (const __half *)x, (__half *)y, i);
		return 0;
	}
	if (dt == GC_F32)
		k_resize<float><<<blocks(n), THREADS, 0, s>>>(*r, (const float *)x, (float *)y);
	else
		k_resize<__half><<<blocks(n), THREADS, 0, s>>>(*r, (const __half *)x, (__half *)y);
	GC_CU_RET(cudaGetLastError());
	return 0;
}

/* ---- softmax ----------------------------------------------------------------------------- */

/* Offsets of row `row` (over the dims not in red_mask) and of element `e` of the reduced
 * dims, both row-major over their dims. */
HD void sm_offsets(const struct gpu_cuda_softmax &p, int row, int e, int *ox, int *oy)
{
	int x = 0, y = 0;
	for (int k = p.rank - 1; k >= 0; k--) {
		int idx;
		if ((p.red_mask >> k) & 1) {
			idx = e % p.d[k];
			e /= p.d[k];
		} else {
			idx = row % p.d[k];
			row /= p.d[k];
		}
		x += idx * p.sx[k];
		y += idx * p.sy[k];
	}
	*ox = x;
	*oy = y;
}

template <typename T>
HD void softmax_row(const struct gpu_cuda_softmax &p, const T *x, T *y, int row)
{
	float m = -FLT_MAX;
	int ox, oy;
	for (int e = 0; e < p.nred; e++) {
		sm_offsets(p, row, e, &ox, &oy);
		float v = ld(x, ox);
		m = v > m ? v : m;
	}
	double s = 0;
	for (int e = 0; e < p.nred; e++) {
		sm_offsets(p, row, e, &ox, &oy);
		s += expf(ld(x, ox) - m);
	}
	float inv = (float)(1.0 / s);
	for (int e = 0; e < p.nred; e++) {
		sm_offsets(p, row, e, &ox, &oy);
		st(y, oy, expf(ld(x, ox) - m) * inv);
	}
}

template <typename T> __global__ void k_softmax(const struct gpu_cuda_softmax p, const T *x, T *y)
{
	int row = blockIdx.x * blockDim.x + threadIdx.x;
	if (row < p.rows)
		softmax_row(p, x, y, row);
}

int gpu_cuda_launch_softmax(const struct gpu_cuda_softmax *p, enum gpu_cuda_dt dt, const void *x,
			    void *y, cudaStream_t s)
{
	if (p->rows <= 0)
		return 0;
	if (s == GC_HOST) {
		for (int r = 0; r < p->rows; r++)
			if (dt == GC_F32)
				softmax_row(*p, (const float *)x, (float *)y, r);
			else
				softmax_row(*p, (const __half *)x, (__half *)y, r);
		return 0;
	}
	if (dt == GC_F32)
		k_softmax<float>
			<<<blocks(p->rows), THREADS, 0, s>>>(*p, (const float *)x, (float *)y);
	else
		k_softmax<__half>
			<<<blocks(p->rows), THREADS, 0, s>>>(*p, (const __half *)x, (__half *)y);
	GC_CU_RET(cudaGetLastError());
	return 0;
}

/* ---- Gemm / MatMul ------------------------------------------------------------------------ */

template <typename T>
HD void contract_elem(const struct gpu_cuda_contract &p, const T *a, const T *b, const T *c, T *y,
		      int i)
{
	int oa = 0, ob = 0, oc = 0, oy = 0, rem = i;
	for (int k = p.rank - 1; k >= 0; k--) {
		int idx = rem % p.d[k];
		rem /= p.d[k];
		oa += idx * p.sa[k];
		ob += idx * p.sb[k];
		oc += idx * p.sc[k];
		oy += idx * p.sy[k];
	}
	float acc = 0.0f;
	for (int k = 0; k < p.K; k++)
		acc += ld(a, oa + k * p.ka) * ld(b, ob + k * p.kb);
	float r = p.alpha * acc;
	if (p.has_c)
		r += p.beta * ld(c, oc);
	st(y, oy, r);
}

template <typename T>
__global__ void k_contract(const struct gpu_cuda_contract p, const T *a, const T *b, const T *c,
			   T *y)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < p.n)
		contract_elem(p, a, b, c, y, i);
}

int gpu_cuda_launch_contract(const struct gpu_cuda_contract *p, enum gpu_cuda_dt dt, const void *a,
			     const void *b, const void *c, void *y, cudaStream_t s)
{
	if (p->n <= 0)
		return 0;
	if (s == GC_HOST) {
		for (int i = 0; i < p->n; i++)
			if (dt == GC_F32)
				contract_elem(*p, (const float *)a, (const float *)b,
					      (const float *)c, (float *)y, i);
			else
				contract_elem(*p, (const __half *)a, (const __half *)b,
					      (const __half *)c, (__half *)y, i);
		return 0;
	}
	if (dt == GC_F32)
		k_contract<float><<<blocks(p->n), THREADS, 0, s>>>(
			*p, (const float *)a, (const float *)b, (const float *)c, (float *)y);
	else
		k_contract<__half><<<blocks(p->n), THREADS, 0, s>>>(
			*p, (const __half *)a, (const __half *)b, (const __half *)c, (__half *)y);
	GC_CU_RET(cudaGetLastError());
	return 0;
}

void gpu_cuda_host_convert(const float *src, void *dst, size_t n, enum gpu_cuda_dt dt)
{
	if (dt == GC_F32) {
		memcpy(dst, src, n * sizeof(float));
		return;
	}
	__half *h = (__half *)dst;
	for (size_t i = 0; i < n; i++)
		h[i] = __float2half_rn(src[i]);
}
