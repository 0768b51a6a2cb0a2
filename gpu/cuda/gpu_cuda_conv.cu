/* Convolutions through cuDNN 9 (the legacy convolution API, still shipped in cuDNN 9):
 * descriptors per (node, batch), the algorithm chosen by measurement
 * (cudnnFindConvolutionForwardAlgorithmEx) once per distinct geometry and cached in the
 * backend, fp32 with FMA kernels only (no TF32: results stay close to the CPU backend) or fp16
 * NHWC on tensor cores with fp32 accumulation. */
#include <errno.h>
#include <cuda_fp16.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_priv.h"

struct gpu_cuda_algo_entry {
	struct gpu_cuda_conv_geom g;
	cudnnConvolutionFwdAlgo_t algo;
	cudnnMathType_t math;
	size_t ws;
	float ms;
};

struct gpu_cuda_algo_cache {
	struct gpu_cuda_algo_entry *e;
	int n, cap;
};

struct gpu_cuda_algo_cache *gpu_cuda_algo_cache_create(void)
{
	return (struct gpu_cuda_algo_cache *)calloc(1, sizeof(struct gpu_cuda_algo_cache));
}

void gpu_cuda_algo_cache_destroy(struct gpu_cuda_algo_cache *c)
{
	if (!c)
		return;
	free(c->e);
	free(c);
}

static const struct gpu_cuda_algo_entry *cache_find(const struct gpu_cuda_algo_cache *c,
						    const struct gpu_cuda_conv_geom *g)
{
	for (int i = 0; i < c->n; i++)
		if (!memcmp(&c->e[i].g, g, sizeof *g))
			return &c->e[i];
	return NULL;
}

static void cache_add(struct gpu_cuda_algo_cache *c, const struct gpu_cuda_algo_entry *e)
{
	if (c->n == c->cap) {
		int cap = c->cap ? 2 * c->cap : 64;
		void *p = realloc(c->e, (size_t)cap * sizeof *c->e);
		if (!p)
			return; /* not cached: measured again next time */
		c->e = (struct gpu_cuda_algo_entry *)p;
		c->cap = cap;
	}
	c->e[c->n++] = *e;
}

void gpu_cuda_conv_release(struct gpu_cuda_conv *c)
{
	if (c->xd)
		cudnnDestroyTensorDescriptor(c->xd);
	if (c->yd)
		cudnnDestroyTensorDescriptor(c->yd);
	if (c->wd)
		cudnnDestroyFilterDescriptor(c->wd);
	if (c->cd)
		cudnnDestroyConvolutionDescriptor(c->cd);
	memset(c, 0, sizeof *c);
}

/* fp32: accept FMA kernels only; fp16: anything (tensor cores with fp32 accumulation). */
static int math_ok(const struct gpu_cuda_conv_ctx *ctx, cudnnMathType_t m)
{
	return ctx->dt == GC_F16 || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

int gpu_cuda_conv_setup(struct gpu_cuda_conv_ctx *ctx, struct gpu_cuda_conv *c,
			const struct gpu_cuda_conv_geom *g, const void *x, const void *w, void *y,
			char *err, size_t err_len)
{
	int rc = -EIO;
	cudnnDataType_t dt = ctx->dt == GC_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
	cudnnTensorFormat_t fmt = ctx->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
	int n, oc, oh, ow;
	struct gpu_cuda_algo_entry e;
	const struct gpu_cuda_algo_entry *hit;
	memset(c, 0, sizeof *c);
	c->g = *g;
	if (ctx->emul)
		return 0;
	GC_DNN(cudnnCreateTensorDescriptor(&c->xd));
	GC_DNN(cudnnCreateTensorDescriptor(&c->yd));
	GC_DNN(cudnnCreateFilterDescriptor(&c->wd));
	GC_DNN(cudnnCreateConvolutionDescriptor(&c->cd));
	GC_DNN(cudnnSetTensor4dDescriptor(c->xd, fmt, dt, g->N, g->C, g->H, g->W));
	GC_DNN(cudnnSetFilter4dDescriptor(c->wd, dt, fmt, g->M, g->C / g->group, g->KH, g->KW));
	GC_DNN(cudnnSetConvolution2dDescriptor(c->cd, g->ph, g->pw, g->sh, g->sw, g->dh, g->dw,
					       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	GC_DNN(cudnnSetConvolutionGroupCount(c->cd, g->group));
	GC_DNN(cudnnSetConvolutionMathType(c->cd, ctx->dt == GC_F16 ? CUDNN_TENSOR_OP_MATH
								    : CUDNN_FMA_MATH));
	GC_DNN(cudnnGetConvolution2dForwardOutputDim(c->cd, c->xd, c->wd, &n, &oc, &oh, &ow));
	GC_DNN(cudnnSetTensor4dDescriptor(c->yd, fmt, dt, n, oc, oh, ow));
	GC_DNN(cudnnSetStream(ctx->dnn, 0)); /* measure on the default stream, never a variant's */
	hit = cache_find(ctx->cache, g);
	if (hit) {
		e = *hit;
	} else {
		cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
		int got = 0, pick = -1;
		if (ctx->find)
			GC_DNN(cudnnFindConvolutionForwardAlgorithmEx(
				ctx->dnn, c->xd, x, c->wd, w, c->cd, c->yd, y,
				CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, ctx->find_ws,
				ctx->find_ws_size));
		else
			GC_DNN(cudnnGetConvolutionForwardAlgorithm_v7(
				ctx->dnn, c->xd, c->wd, c->cd, c->yd,
				CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
		for (int i = 0; i < got && pick < 0; i++)
			if (perf[i].status == CUDNN_STATUS_SUCCESS &&
			    math_ok(ctx, perf[i].mathType) && perf[i].memory <= ctx->find_ws_size)
				pick = i;
		memset(&e, 0, sizeof e);
		e.g = *g;
		if (pick >= 0) {
			e.algo = perf[pick].algo;
			e.math = perf[pick].mathType;
			e.ws = perf[pick].memory;
			e.ms = ctx->find ? perf[pick].time : 0.0f;
		} else { /* implicit GEMM supports every geometry */
			e.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
			e.math = ctx->dt == GC_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
			GC_DNN(cudnnSetConvolutionMathType(c->cd, e.math));
			GC_DNN(cudnnGetConvolutionForwardWorkspaceSize(
				ctx->dnn, c->xd, c->wd, c->cd, c->yd, e.algo, &e.ws));
		}
		cache_add(ctx->cache, &e);
	}
	GC_DNN(cudnnSetConvolutionMathType(c->cd, e.math));
	c->algo = e.algo;
	c->ws = e.ws;
	c->ms = e.ms;
	return 0;
fail:
	gpu_cuda_conv_release(c);
	return rc;
}

/* The emulator's convolution: direct loops, float accumulation, the backend's layouts. */
static float hld(const void *p, size_t i, enum gpu_cuda_dt dt)
{
	return dt == GC_F32 ? ((const float *)p)[i] : __half2float(((const __half *)p)[i]);
}

static void host_conv(const struct gpu_cuda_conv_ctx *ctx, const struct gpu_cuda_conv_geom *g,
		      const void *x, const void *w, void *y)
{
	int OH = (g->H + 2 * g->ph - (g->dh * (g->KH - 1) + 1)) / g->sh + 1;
	int OW = (g->W + 2 * g->pw - (g->dw * (g->KW - 1) + 1)) / g->sw + 1;
	int cg = g->C / g->group, mg = g->M / g->group;
	for (int n = 0; n < g->N; n++)
		for (int m = 0; m < g->M; m++)
			for (int oh = 0; oh < OH; oh++)
				for (int ow = 0; ow < OW; ow++) {
					float acc = 0;
					int c0 = (m / mg) * cg;
					for (int c = 0; c < cg; c++)
						for (int kh = 0; kh < g->KH; kh++) {
							int ih = oh * g->sh - g->ph + kh * g->dh;
							if (ih < 0 || ih >= g->H)
								continue;
							for (int kw = 0; kw < g->KW; kw++) {
								int iw = ow * g->sw - g->pw +
									 kw * g->dw;
								if (iw < 0 || iw >= g->W)
									continue;
								size_t xi =
									ctx->nhwc ? (((size_t)n *
											      g->H +
										      ih) * g->W +
										     iw) * g->C +
											    c0 + c
										  : (((size_t)n *
											      g->C +
										      c0 + c) *
											     g->H +
										     ih) * g->W +
											    iw;
								size_t wi =
									ctx->nhwc
										? (((size_t)m *
											    g->KH +
										    kh) * g->KW +
										   kw) * cg +
											  c
										: (((size_t)m * cg +
										    c) * g->KH +
										   kh) * g->KW +
											  kw;
								acc += hld(x, xi, ctx->dt) *
								       hld(w, wi, ctx->dt);
							}
						}
					size_t yi =
						ctx->nhwc
							? (((size_t)n * OH + oh) * OW + ow) * g->M +
								  m
							: (((size_t)n * g->M + m) * OH + oh) * OW +
								  ow;
					if (ctx->dt == GC_F32)
						((float *)y)[yi] = acc;
					else
						((__half *)y)[yi] = __float2half_rn(acc);
				}
}

int gpu_cuda_conv_run(struct gpu_cuda_conv_ctx *ctx, const struct gpu_cuda_conv *c, const void *x,
		      const void *w, void *y, void *ws, cudaStream_t s)
{
	if (s == GC_HOST) {
		host_conv(ctx, &c->g, x, w, y);
		return 0;
	}
	const float one = 1.0f, zero = 0.0f;
	GC_DNN_RET(cudnnSetStream(ctx->dnn, s));
	GC_DNN_RET(cudnnConvolutionForward(ctx->dnn, &one, c->xd, x, c->wd, w, c->cd, c->algo, ws,
					   c->ws, &zero, c->yd, y));
	return 0;
}
