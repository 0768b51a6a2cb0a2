/* Internal to the CUDA/cuDNN backend (gpu/cuda/): the checking macros, the kernel launch
 * descriptors shared by gpu_cuda_be.cu (planning, hot calls), gpu_cuda_ops.cu (custom
 * kernels) and gpu_cuda_conv.cu (cuDNN convolutions). C++ (nvcc) only. */
#ifndef SHOAL_GPU_CUDA_PRIV_H
#define SHOAL_GPU_CUDA_PRIV_H

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"

/* ---- checking macros: every CUDA/cuDNN status is checked and a failure names file:line ----
 * gpu_cuda_fail writes "<file>:<line>: <call>: <reason>" into err when err is not NULL (setup
 * calls), else prints it on stderr (hot calls: an error path only). Returns -EIO. */
int gpu_cuda_fail(const char *file, int line, const char *call, const char *why, char *err,
		  size_t err_len);

/* Needs `int rc`, a `fail:` label and err/err_len (NULL/0 in hot calls) in scope. */
#define GC_CU(call)                                                                                \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess) {                                                           \
			rc = gpu_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorString(e_), err, \
					   err_len);                                               \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)
#define GC_DNN(call)                                                                               \
	do {                                                                                       \
		cudnnStatus_t s_ = (call);                                                         \
		if (s_ != CUDNN_STATUS_SUCCESS) {                                                  \
			rc = gpu_cuda_fail(__FILE__, __LINE__, #call, cudnnGetErrorString(s_),     \
					   err, err_len);                                          \
			goto fail;                                                                 \
		}                                                                                  \
	} while (0)
/* Returning forms, for the launch helpers (errors go to stderr). */
#define GC_CU_RET(call)                                                                            \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return gpu_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorString(e_),    \
					     NULL, 0);                                             \
	} while (0)
#define GC_DNN_RET(call)                                                                           \
	do {                                                                                       \
		cudnnStatus_t s_ = (call);                                                         \
		if (s_ != CUDNN_STATUS_SUCCESS)                                                    \
			return gpu_cuda_fail(__FILE__, __LINE__, #call, cudnnGetErrorString(s_),   \
					     NULL, 0);                                             \
	} while (0)

/* Element types of device tensors. Activations and constants are GC_F32 in fp32 mode and
 * GC_F16 in fp16 mode; graph inputs/outputs cross to the host as GC_F32. */
enum gpu_cuda_dt { GC_F32, GC_F16 };

#define GC_MAXR MDL_MAX_DIMS

/* Strided elementwise map over an iteration space of `rank` dims (row-major, the output's
 * physical order): y[oy] = f(a[oa], b[ob], c[oc]) with per-operand element strides (0 =
 * broadcast) and base offsets. gdim >= 0: along iteration dim gdim the offset into a is
 * gidx[i] * sa[gdim] (Gather; negative indices + glen). */
enum gpu_cuda_mop {
	GC_M_COPY, /* y = a (also type conversion) */
	GC_M_RELU,
	GC_M_LEAKY,
	GC_M_CLIP,
	GC_M_SIGMOID,
	GC_M_HSIGMOID,
	GC_M_HSWISH,
	GC_M_TANH,
	GC_M_EXP,
	GC_M_NEG,
	GC_M_ABS,
	GC_M_SQRT,
	GC_M_ADD,
	GC_M_SUB,
	GC_M_MUL,
	GC_M_DIV,
	GC_M_PRELU,
	GC_M_AFFINE,  /* y = a * b + c */
	GC_M_BIAS_ACT /* y = act(a + b), act = (enum mdl_act) iact with p0, p1 */
};

struct gpu_cuda_map {
	int op, iact, rank, gdim;
	int n; /* elements */
	int d[GC_MAXR];
	int sa[GC_MAXR], sb[GC_MAXR], sc[GC_MAXR], sy[GC_MAXR];
	int base_a, base_b, base_c, base_y;
	int glen;
	float p0, p1;
	const int *gidx;
};

/* 2-D pooling over logical NCHW with per-tensor strides (NCHW or NHWC storage). */
struct gpu_cuda_pool {
	int max, global, count_include_pad, nhwc; /* nhwc: threads walk y as N, H, W, C */
	int N, C, H, W, OH, OW;
	int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
	int sx[4], sy[4];
};

/* Resize of the two last dims of logical NCHW, per-axis source tables (device). */
struct gpu_cuda_resize {
	int linear, nhwc;
	int N, C, H, W, OH, OW;
	int sx[4], sy[4];
	const int *iy0, *iy1, *ix0, *ix1;
	const float *wy, *wx;
};

/* Softmax: reduced dims marked in red; other dims are rows (one thread each). */
struct gpu_cuda_softmax {
	int rank, red_mask;
	int d[GC_MAXR], sx[GC_MAXR], sy[GC_MAXR];
	int rows, nred;
};

/* y[i] = alpha * sum_k a[i, k] b[i, k] + beta * c[i] over iteration dims (output logical,
 * row-major); ka, kb: strides of k in a and b. */
struct gpu_cuda_contract {
	int rank, n, K;
	int d[GC_MAXR], sa[GC_MAXR], sb[GC_MAXR], sc[GC_MAXR], sy[GC_MAXR];
	int ka, kb, has_c;
	float alpha, beta;
};

/* The stream value that makes every launch below run on the host, synchronously, over host
 * memory: the emulator (gpu_cuda_test.h) that checks plans on machines without a device. */
#define GC_HOST ((cudaStream_t)(intptr_t)-1)

/* Launches (gpu_cuda_ops.cu). dt: the activation type; for the map, ta is the type of a and
 * ty of y (type conversions), b and c are of type ta. 0 or -EIO (logged). */
int gpu_cuda_launch_map(const struct gpu_cuda_map *m, enum gpu_cuda_dt ta, enum gpu_cuda_dt ty,
			const void *a, const void *b, const void *c, void *y, cudaStream_t s);
int gpu_cuda_launch_pool(const struct gpu_cuda_pool *p, enum gpu_cuda_dt dt, const void *x, void *y,
			 cudaStream_t s);
int gpu_cuda_launch_resize(const struct gpu_cuda_resize *r, enum gpu_cuda_dt dt, const void *x,
			   void *y, cudaStream_t s);
int gpu_cuda_launch_softmax(const struct gpu_cuda_softmax *p, enum gpu_cuda_dt dt, const void *x,
			    void *y, cudaStream_t s);
int gpu_cuda_launch_contract(const struct gpu_cuda_contract *p, enum gpu_cuda_dt dt, const void *a,
			     const void *b, const void *c, void *y, cudaStream_t s);
/* n floats at src (host) converted to dt at dst (host memory, n * element size bytes). */
void gpu_cuda_host_convert(const float *src, void *dst, size_t n, enum gpu_cuda_dt dt);

/* ---- convolutions through cuDNN (gpu_cuda_conv.cu) ------------------------------------------ */

/* Geometry of one convolution (after explicit padding of asymmetric pads). */
struct gpu_cuda_conv_geom {
	int N, C, H, W, M, KH, KW, sh, sw, dh, dw, ph, pw, group;
};

/* One convolution at one batch size: descriptors and the algorithm chosen. */
struct gpu_cuda_conv {
	struct gpu_cuda_conv_geom g;
	cudnnTensorDescriptor_t xd, yd;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cudnnConvolutionFwdAlgo_t algo;
	size_t ws;
	float ms; /* measured time of the chosen algorithm (0 when chosen by heuristics) */
};

/* Cache of measured algorithms of one backend (key: geometry). */
struct gpu_cuda_algo_cache;

struct gpu_cuda_conv_ctx {
	cudnnHandle_t dnn;
	enum gpu_cuda_dt dt;
	int nhwc, find; /* find = 1: measure (cudnnFindConvolutionForwardAlgorithmEx) */
	int emul;       /* host emulator: no cuDNN, a direct convolution on the host */
	struct gpu_cuda_algo_cache *cache;
	void *find_ws; /* workspace for the measurements */
	size_t find_ws_size;
};

struct gpu_cuda_algo_cache *gpu_cuda_algo_cache_create(void);
void gpu_cuda_algo_cache_destroy(struct gpu_cuda_algo_cache *c);

/* Sets up c for geometry g; x, w, y: device buffers of the right size (y is overwritten by
 * the measurement). 0 or -errno with err filled. */
int gpu_cuda_conv_setup(struct gpu_cuda_conv_ctx *ctx, struct gpu_cuda_conv *c,
			const struct gpu_cuda_conv_geom *g, const void *x, const void *w, void *y,
			char *err, size_t err_len);
void gpu_cuda_conv_release(struct gpu_cuda_conv *c);
/* Runs c on stream s: y = conv(x, w); ws: at least c->ws bytes. */
int gpu_cuda_conv_run(struct gpu_cuda_conv_ctx *ctx, const struct gpu_cuda_conv *c, const void *x,
		      const void *w, void *y, void *ws, cudaStream_t s);

#endif
