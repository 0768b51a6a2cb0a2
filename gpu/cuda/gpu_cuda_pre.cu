/* Preprocessing on the device: a staged image (I420, UYVY or RGB24 in host memory) is copied
 * into a device scratch buffer, then one kernel converts BT.601 colour, resizes (bilinear,
 * half-pixel centres) and normalises into an fp32/fp16 NCHW/NHWC tensor. The arithmetic is
 * that of gpu_image_to_tensor (gpu_cpu_pre.c), operation by operation with explicit rounding
 * (no fused multiply-add), so float32 results equal the CPU reference. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "gpu/cuda/gpu_cuda_kern.h"

#define PRE_CHECK(call)                                                                     \
	do {                                                                                    \
		cudaError_t e_ = (call);                                                            \
		if (e_ != cudaSuccess) {                                                            \
			fprintf(stderr, "%s:%d: %s: %s (%d)\n", __FILE__, __LINE__, #call,              \
				cudaGetErrorString(e_), (int)e_);                                           \
			return -EIO;                                                                    \
		}                                                                                   \
	} while (0)

#define PRE_ALIGN 256

static size_t pre_align(size_t n) { return (n + PRE_ALIGN - 1) & ~(size_t)(PRE_ALIGN - 1); }

/* Packed plane sizes (bytes) of an image; 0 for a bad size. */
static int pre_planes(enum gpu_pix_fmt fmt, int w, int h, size_t row[3], int rows[3])
{
	if (w < 1 || h < 1)
		return -EINVAL;
	row[1] = row[2] = 0;
	rows[1] = rows[2] = 0;
	rows[0] = h;
	switch (fmt) {
	case GPU_PIX_RGB24:
		row[0] = (size_t)w * 3;
		return 0;
	case GPU_PIX_UYVY:
		if (w & 1)
			return -EINVAL;
		row[0] = (size_t)w * 2;
		return 0;
	case GPU_PIX_I420:
		if ((w & 1) || (h & 1))
			return -EINVAL;
		row[0] = (size_t)w;
		row[1] = row[2] = (size_t)w / 2;
		rows[1] = rows[2] = h / 2;
		return 0;
	}
	return -EINVAL;
}

extern "C" size_t gpu_cuda_pre_scratch_size(enum gpu_pix_fmt fmt, int width, int height)
{
	size_t row[3];
	int rows[3];
	if (pre_planes(fmt, width, height, row, rows))
		return 0;
	size_t n = 0;
	for (int i = 0; i < 3; i++)
		n += pre_align(row[i] * (size_t)rows[i]);
	return n;
}

/* What the kernel sees. */
struct pre_args {
	const uint8_t *p0, *p1, *p2; /* packed planes in the scratch */
	int w, h;                    /* source size */
	int p0_stride, p12_stride;   /* packed row bytes */
	int full_range;
	int dh, dw, dc;              /* destination */
	int bgr;
	float scale[3], bias[3];     /* per output channel */
};

__device__ static inline float pre_clamp255(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* RGB of source pixel (x, y); rounding as in gpu_cpu_pre.c (each product rounded). */
template <int FMT>
__device__ static inline void pre_pixel(const pre_args &a, int x, int y, float rgb[3])
{
	float Y, U, V;
	if (FMT == GPU_PIX_RGB24) {
		const uint8_t *p = a.p0 + (size_t)y * a.p0_stride + (size_t)x * 3;
		rgb[0] = p[0], rgb[1] = p[1], rgb[2] = p[2];
		return;
	} else if (FMT == GPU_PIX_UYVY) {
		const uint8_t *p = a.p0 + (size_t)y * a.p0_stride + (size_t)(x >> 1) * 4;
		U = p[0], Y = p[1 + 2 * (x & 1)], V = p[2];
	} else {
		Y = a.p0[(size_t)y * a.p0_stride + x];
		U = a.p1[(size_t)(y >> 1) * a.p12_stride + (x >> 1)];
		V = a.p2[(size_t)(y >> 1) * a.p12_stride + (x >> 1)];
	}
	float d = __fsub_rn(U, 128.0f), e = __fsub_rn(V, 128.0f);
	if (a.full_range) {
		rgb[0] = pre_clamp255(__fadd_rn(Y, __fmul_rn(1.402f, e)));
		rgb[1] = pre_clamp255(
			__fsub_rn(__fsub_rn(Y, __fmul_rn(0.344136f, d)), __fmul_rn(0.714136f, e)));
		rgb[2] = pre_clamp255(__fadd_rn(Y, __fmul_rn(1.772f, d)));
	} else {
		float c = __fmul_rn(1.164383f, __fsub_rn(Y, 16.0f));
		rgb[0] = pre_clamp255(__fadd_rn(c, __fmul_rn(1.596027f, e)));
		rgb[1] = pre_clamp255(
			__fsub_rn(__fsub_rn(c, __fmul_rn(0.391762f, d)), __fmul_rn(0.812968f, e)));
		rgb[2] = pre_clamp255(__fadd_rn(c, __fmul_rn(2.017232f, d)));
	}
}

/* Source index pair and weight of output coordinate o (half-pixel centres, clamped). */
__device__ static inline void pre_src_pos(int o, int in, int out, int *i0, int *i1, float *w)
{
	float c = __fsub_rn(__fdiv_rn(__fmul_rn(__fadd_rn((float)o, 0.5f), (float)in), (float)out),
			    0.5f);
	c = c < 0 ? 0 : c > (float)(in - 1) ? (float)(in - 1) : c;
	*i0 = (int)floorf(c);
	*i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
	*w = __fsub_rn(c, (float)*i0);
}

template <typename T> __device__ static inline T pre_cvt(float v);
template <> __device__ inline float pre_cvt<float>(float v) { return v; }
template <> __device__ inline __half pre_cvt<__half>(float v) { return __float2half_rn(v); }

/* One thread per output pixel: its three channels (plus zeroed padding channels in NHWC). */
template <int FMT, typename T, bool NHWC>
__global__ static void pre_kernel(pre_args a, T *dst)
{
	int ox = blockIdx.x * blockDim.x + threadIdx.x;
	int oy = blockIdx.y * blockDim.y + threadIdx.y;
	if (ox >= a.dw || oy >= a.dh)
		return;
	int x0, x1, y0, y1;
	float wx, wy, p00[3], p01[3], p10[3], p11[3];
	pre_src_pos(oy, a.h, a.dh, &y0, &y1, &wy);
	pre_src_pos(ox, a.w, a.dw, &x0, &x1, &wx);
	pre_pixel<FMT>(a, x0, y0, p00);
	pre_pixel<FMT>(a, x1, y0, p01);
	pre_pixel<FMT>(a, x0, y1, p10);
	pre_pixel<FMT>(a, x1, y1, p11);
	size_t plane = (size_t)a.dh * a.dw, pix = (size_t)oy * a.dw + ox;
	float v[3];
#pragma unroll
	for (int k = 0; k < 3; k++) {
		float top = __fadd_rn(p00[k], __fmul_rn(__fsub_rn(p01[k], p00[k]), wx));
		float bot = __fadd_rn(p10[k], __fmul_rn(__fsub_rn(p11[k], p10[k]), wx));
		v[k] = __fadd_rn(top, __fmul_rn(__fsub_rn(bot, top), wy));
	}
	float src[3] = {a.bgr ? v[2] : v[0], v[1], a.bgr ? v[0] : v[2]}; /* output channel order */
	T out[3];
#pragma unroll
	for (int c = 0; c < 3; c++)
		out[c] = pre_cvt<T>(__fadd_rn(__fmul_rn(src[c], a.scale[c]), a.bias[c]));
	if (NHWC) {
		T *p = dst + pix * a.dc;
		p[0] = out[0], p[1] = out[1], p[2] = out[2];
		for (int c = 3; c < a.dc; c++)
			p[c] = pre_cvt<T>(0.0f);
	} else {
#pragma unroll
		for (int c = 0; c < 3; c++)
			dst[(size_t)c * plane + pix] = out[c];
	}
}

template <int FMT, typename T>
static void pre_launch_fmt(cudaStream_t s, const pre_args &a, void *dst, bool nhwc)
{
	dim3 block(32, 8), grid((unsigned)(a.dw + 31) / 32, (unsigned)(a.dh + 7) / 8);
	if (nhwc)
		pre_kernel<FMT, T, true><<<grid, block, 0, s>>>(a, (T *)dst);
	else
		pre_kernel<FMT, T, false><<<grid, block, 0, s>>>(a, (T *)dst);
}

template <typename T>
static void pre_launch_t(cudaStream_t s, enum gpu_pix_fmt fmt, const pre_args &a, void *dst,
			 bool nhwc)
{
	if (fmt == GPU_PIX_RGB24)
		pre_launch_fmt<GPU_PIX_RGB24, T>(s, a, dst, nhwc);
	else if (fmt == GPU_PIX_UYVY)
		pre_launch_fmt<GPU_PIX_UYVY, T>(s, a, dst, nhwc);
	else
		pre_launch_fmt<GPU_PIX_I420, T>(s, a, dst, nhwc);
}

extern "C" int gpu_cuda_pre_launch(cudaStream_t stream, const struct gpu_image *img,
				   const struct gpu_norm *norm, void *scratch, size_t scratch_size,
				   cudaEvent_t copied, void *dst, int dst_h, int dst_w, int dst_c,
				   enum gpu_cuda_layout layout, enum gpu_cuda_dtype dtype)
{
	size_t row[3];
	int rows[3];
	if (!img || !norm || !scratch || !dst || dst_h < 1 || dst_w < 1 || !img->plane[0] ||
	    (layout != GPU_CUDA_NCHW && layout != GPU_CUDA_NHWC) ||
	    (dtype != GPU_CUDA_F32 && dtype != GPU_CUDA_F16) ||
	    (layout == GPU_CUDA_NCHW ? dst_c != 3 : dst_c < 3 || dst_c > 64) ||
	    pre_planes(img->fmt, img->width, img->height, row, rows))
		return -EINVAL;
	int np = img->fmt == GPU_PIX_I420 ? 3 : 1;
	for (int i = 0; i < np; i++)
		if (!img->plane[i] || img->stride[i] < 1 || (size_t)img->stride[i] < row[i])
			return -EINVAL;
	if (scratch_size < gpu_cuda_pre_scratch_size(img->fmt, img->width, img->height))
		return -EINVAL;
	pre_args a;
	for (int c = 0; c < 3; c++) {
		if (!(norm->std[c] != 0))
			return -EINVAL;
		a.scale[c] = 1.0f / (255.0f * norm->std[c]);
		a.bias[c] = -norm->mean[c] / norm->std[c];
	}
	uint8_t *base = (uint8_t *)scratch, *planes[3] = {NULL, NULL, NULL};
	size_t off = 0;
	for (int i = 0; i < np; i++) {
		planes[i] = base + off;
		PRE_CHECK(cudaMemcpy2DAsync(planes[i], row[i], img->plane[i], (size_t)img->stride[i],
					    row[i], (size_t)rows[i], cudaMemcpyHostToDevice, stream));
		off += pre_align(row[i] * (size_t)rows[i]);
	}
	if (copied)
		PRE_CHECK(cudaEventRecord(copied, stream));
	a.p0 = planes[0], a.p1 = planes[1], a.p2 = planes[2];
	a.w = img->width, a.h = img->height;
	a.p0_stride = (int)row[0], a.p12_stride = (int)row[1];
	a.full_range = img->full_range;
	a.dh = dst_h, a.dw = dst_w, a.dc = dst_c;
	a.bgr = norm->bgr;
	bool nhwc = layout == GPU_CUDA_NHWC;
	if (dtype == GPU_CUDA_F16)
		pre_launch_t<__half>(stream, img->fmt, a, dst, nhwc);
	else
		pre_launch_t<float>(stream, img->fmt, a, dst, nhwc);
	PRE_CHECK(cudaGetLastError());
	return 0;
}
