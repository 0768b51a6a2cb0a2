/* Internal to the CPU backend: the worker pool and the kernel interface. */
#ifndef SHOAL_GPU_CPU_PRIV_H
#define SHOAL_GPU_CPU_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu.h"

struct gpu_cpu_pool;

struct gpu_cpu_pool *gpu_cpu_pool_create(int threads);
void gpu_cpu_pool_destroy(struct gpu_cpu_pool *p);
/* Runs fn(arg, i) for i in [0, n) on the pool's threads and the caller; returns when all done. */
void gpu_cpu_pool_run(struct gpu_cpu_pool *p, int64_t n, void (*fn)(void *arg, int64_t i),
		      void *arg);

/* Everything one kernel call sees. Shapes are those of the batch being run. */
struct gpu_cpu_args {
	const struct mdl_node *n;
	const struct mdl_tensor *in[32];  /* inferred dtype/shape, data when known */
	const struct mdl_tensor *out[16];
	const float *x[32];               /* input elements (NULL for omitted inputs) */
	float *y[16];                     /* output elements */
	struct gpu_cpu_pool *pool;
	float *scratch;                   /* gpu_cpu_scratch() floats */
};

/* Runs node a->n. 0, or -ENOTSUP for an op the kernels do not implement. */
int gpu_cpu_kernel(struct gpu_cpu_args *a);
/* 1 when the op's output is a view of input 0 (no kernel, shared storage). */
int gpu_cpu_is_view(const struct mdl_node *n, const struct mdl_tensor *in0,
		    const struct mdl_tensor *out0);
/* Scratch floats the kernel needs for these shapes. */
size_t gpu_cpu_scratch(const struct mdl_node *n, const struct mdl_tensor *const *in,
		       const struct mdl_tensor *const *out);
/* 0 when the kernels implement this node (for these shapes); -ENOTSUP with why filled. */
int gpu_cpu_supports(const struct mdl_node *n, const struct mdl_tensor *const *in, char *why,
		     size_t len);

#endif
