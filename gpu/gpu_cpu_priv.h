/* Internal to the CPU backend: the worker pool and the kernel interface. */
#ifndef SHOAL_GPU_CPU_PRIV_H
#define SHOAL_GPU_CPU_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"

struct gpu_cpu_pool;

struct gpu_cpu_pool *gpu_cpu_pool_create(int threads);
void gpu_cpu_pool_destroy(struct gpu_cpu_pool *p);
/* Runs fn(arg, i) for i in [0, n) on the pool's threads and the caller; returns when all done.
 * Thread t first runs the t-th contiguous share of [0, n), then helps with the others' (so
 * kernels that split tensors the same way keep each part on one core). Idle workers spin
 * briefly before sleeping, so back-to-back calls cost no system call. */
void gpu_cpu_pool_run(struct gpu_cpu_pool *p, int64_t n, void (*fn)(void *arg, int64_t i),
		      void *arg);
/* Same, fn also told which thread runs it (0 = the caller, up to gpu_cpu_pool_threads() - 1):
 * for per-thread scratch. */
void gpu_cpu_pool_run_tid(struct gpu_cpu_pool *p, int64_t n,
			  void (*fn)(void *arg, int64_t i, int tid), void *arg);
/* Threads that run tasks, the caller included. */
int gpu_cpu_pool_threads(const struct gpu_cpu_pool *p);

/* Everything one kernel call sees. Shapes are those of the batch being run. */
struct gpu_cpu_args {
	const struct mdl_node *n;
	const struct mdl_tensor *in[32];  /* inferred dtype/shape, data when known */
	const struct mdl_tensor *out[16];
	const float *x[32];               /* input elements (NULL for omitted inputs) */
	float *y[16];                     /* output elements */
	struct gpu_cpu_pool *pool;
	float *scratch;                   /* gpu_cpu_scratch() floats */
	const float *wpack;               /* Conv: weights packed by gpu_cpu_conv_pack, or NULL */
};

/* Runs node a->n. 0, or -ENOTSUP for an op the kernels do not implement. */
int gpu_cpu_kernel(struct gpu_cpu_args *a);
/* 1 when the op's output is a view of input 0 (no kernel, shared storage). */
int gpu_cpu_is_view(const struct mdl_node *n, const struct mdl_tensor *in0,
		    const struct mdl_tensor *out0);
/* Scratch floats the kernel needs for these shapes with a pool of `threads`; packed says
 * whether a->wpack will be set for this node. */
size_t gpu_cpu_scratch(const struct mdl_node *n, const struct mdl_tensor *const *in,
		       const struct mdl_tensor *const *out, int threads, int packed);

/* ---- instruction sets (gpu_cpu_simd.c) ---- */
enum { GPU_CPU_ISA_PORTABLE, GPU_CPU_ISA_AVX2, GPU_CPU_ISA_AVX512 };
/* The best the CPU has of AVX-512F, AVX2 with FMA and neither, capped by the environment's
 * SHOAL_CPU_ISA (avx512, avx2 or portable; another value is ignored with a warning); decided
 * at the first call. */
int gpu_cpu_isa(void);
int gpu_cpu_has_avx512(void); /* gpu_cpu_isa() >= GPU_CPU_ISA_AVX512 */
int gpu_cpu_has_avx2(void);   /* gpu_cpu_isa() >= GPU_CPU_ISA_AVX2 */

/* ---- AVX-512 kernels (gpu_cpu_simd.c), used only where gpu_cpu_has_avx512() ---- */
/* y = 1 / (1 + e^-x) over n elements (about 2 ulp). */
void gpu_cpu_sigmoid_avx512(const float *x, float *y, int64_t n);
/* y = x * clamp(x / 6 + 1/2, 0, 1) over n elements (same arithmetic as the scalar loop). */
void gpu_cpu_hardswish_avx512(const float *x, float *y, int64_t n);
/* Sum of n floats (16 x 4 partial sums). */
float gpu_cpu_sum_avx512(const float *x, int64_t n);
/* y[i] = x[2 * i] for i < n (reads x[0 .. 2n - 2] only). */
void gpu_cpu_stride2_avx512(const float *x, float *y, int64_t n);

/* ---- dense convolution fast path (gpu_cpu_conv.c) ---- */
/* 1 when Conv node n with weights wdata (shape ws; NULL when not constant) runs on the
 * packed-weight GEMM kernels on this machine (group 1, 2-D, AVX-512F or AVX2 + FMA). */
int gpu_cpu_conv_fast_ok(const struct mdl_node *n, const void *wdata, const struct mdl_shape *ws);
/* Packs the weights once (setup; free() the result). NULL on ENOMEM. */
float *gpu_cpu_conv_pack(const struct mdl_node *n, const float *w, const struct mdl_shape *ws);
/* Scratch floats of the fast path for input shape xs, weight shape ws. */
size_t gpu_cpu_conv_scratch(const struct mdl_node *n, const struct mdl_shape *xs,
			    const struct mdl_shape *ws);
/* Runs Conv a->n with a->wpack (bias and fused activation included). 0. */
int gpu_cpu_conv_run(struct gpu_cpu_args *a);
/* Depthwise Conv (group = channels = output channels, at most CV_DW_TAPS = 64 taps) on
 * AVX-512 or AVX2 + FMA: use only where gpu_cpu_dw_ok(). Scratch floats for a pool
 * of `threads`; the run returns 0. */
int gpu_cpu_dw_ok(const struct mdl_node *n);
size_t gpu_cpu_dw_scratch(const struct mdl_node *n, const struct mdl_shape *xs, int threads);
int gpu_cpu_dw_run(struct gpu_cpu_args *a);
/* 0 when the kernels implement this node (for these shapes); -ENOTSUP with why filled. */
int gpu_cpu_supports(const struct mdl_node *n, const struct mdl_tensor *const *in, char *why,
		     size_t len);

#endif
