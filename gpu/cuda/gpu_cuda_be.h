/* Internal to the CUDA backend: backend, family and variant objects, and the step lists
 * (gpu_cuda_plan.cu builds them, gpu_cuda_be.cu runs them eagerly or captured in a graph). */
#ifndef SHOAL_GPU_CUDA_BE_H
#define SHOAL_GPU_CUDA_BE_H

#include <stdlib.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_priv.h"

struct gpu_cuda_backend {
	int device;
	enum gpu_cuda_dt dt;
	size_t esize; /* bytes per activation element */
	int nhwc;     /* 4-D activations stored NHWC (fp16 mode) */
	int graphs;   /* capture one CUDA graph per (variant, batch) */
	int emul;     /* host emulator: host memory, steps run on the host (no CUDA call) */
	struct gpu_cuda_conv_ctx cc;
};

/* Memory of the backend: device memory (host memory in the emulator). */
static inline cudaError_t gpu_cuda_dalloc(const struct gpu_cuda_backend *be, void **p, size_t n)
{
	if (!be->emul)
		return cudaMalloc(p, n ? n : 1);
	*p = calloc(1, n ? n : 1);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline void gpu_cuda_dfree(const struct gpu_cuda_backend *be, void *p)
{
	if (be->emul)
		free(p);
	else if (p)
		cudaFree(p);
}
/* Pinned host memory (plain host memory in the emulator). */
static inline cudaError_t gpu_cuda_halloc(const struct gpu_cuda_backend *be, void **p, size_t n)
{
	if (!be->emul)
		return cudaHostAlloc(p, n ? n : 1, cudaHostAllocDefault);
	*p = calloc(1, n ? n : 1);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
static inline void gpu_cuda_hfree(const struct gpu_cuda_backend *be, void *p)
{
	if (be->emul)
		free(p);
	else if (p)
		cudaFreeHost(p);
}
/* Synchronous copy in any direction. */
static inline cudaError_t gpu_cuda_dcopy(const struct gpu_cuda_backend *be, void *dst,
					 const void *src, size_t n)
{
	if (!be->emul)
		return cudaMemcpy(dst, src, n, cudaMemcpyDefault);
	memcpy(dst, src, n);
	return cudaSuccess;
}
static inline cudaError_t gpu_cuda_dset(const struct gpu_cuda_backend *be)
{
	return be->emul ? cudaSuccess : cudaSetDevice(be->device);
}

struct gpu_cuda_family {
	struct gpu_cuda_backend *be;
	const struct mdl_graph *g;
	void **dconst; /* per value: float constant, dense row-major, backend type */
	void **dconvw; /* per value: convolution weights in cuDNN's layout (OIHW / OHWI) */
	int **didx;    /* per value: Gather indices as int */
	void **dbn;    /* per node: BatchNormalization scale[C], shift[C] */
};

enum gpu_cuda_step_kind {
	GC_S_MAP,
	GC_S_CONV,
	GC_S_POOL,
	GC_S_RESIZE,
	GC_S_SOFTMAX,
	GC_S_CONTRACT,
	GC_S_MEMSET,
	GC_S_MEMCPY
};

/* One kernel launch or library call with all its arguments resolved. */
struct gpu_cuda_step {
	enum gpu_cuda_step_kind kind;
	enum gpu_cuda_dt ta, ty;
	union {
		struct gpu_cuda_map map;
		struct gpu_cuda_pool pool;
		struct gpu_cuda_resize rs;
		struct gpu_cuda_softmax sm;
		struct gpu_cuda_contract ct;
		size_t bytes;
	} u;
	int conv; /* GC_S_CONV: index into the plan's convs */
	struct gpu_cuda_conv *cv;
	const void *a, *b, *c;
	void *y;
};

struct gpu_cuda_plan {
	struct gpu_cuda_step *steps;
	int n_steps, cap;
	struct gpu_cuda_conv *convs;
	int n_convs, cap_convs;
	cudaGraphExec_t exec; /* NULL: run eagerly */
};

struct gpu_cuda_variant {
	struct gpu_cuda_family *fam;
	struct gpu_cuda_backend *be;
	const struct mdl_graph *g;
	int max_batch;
	struct mdl_infer **inf;   /* [max_batch + 1]; NULL where that batch does not infer */
	char *arena;              /* device activations, planned at the maximum batch */
	int64_t *off;             /* per value: byte offset in arena, -1 if not a runtime value */
	unsigned char *run_node;  /* per node: 1 when it runs */
	unsigned char *copy_view; /* per node: a view op that must copy (layouts differ) */
	float **hin;              /* per input: pinned host floats (NCHW), max batch */
	void **din;               /* per input: device floats the host input lands in */
	float **hout;             /* per runtime output: pinned host floats */
	float **dout;             /* per runtime output (fp16): device floats (NCHW) */
	float **cout;             /* per output known before run time: host copy */
	void **rtab;              /* per Resize node: source index/weight tables */
	void *ws, *pad;           /* cuDNN workspace; explicitly padded convolution input */
	size_t ws_size;
	struct gpu_cuda_plan *plans; /* [max_batch + 1] */
	cudaStream_t stream;
	cudaEvent_t in_ev, done_ev;
	int use_graphs;
	int pending, last_batch, in_flight;
	/* staged images in (gpu_cuda_pre_launch), detections out (gpu_cuda_post_launch) */
	void *pre_scratch, *post_scratch, *ddets, *hdets;
	size_t pre_scratch_size, post_scratch_size;
	int img_inputs;   /* input 0 of the next batch was written on the device */
	int img_pending;  /* image copies queued since the last inputs_done == 1 */
	unsigned runs;    /* batches completed */
	unsigned det_run; /* runs value whose detections are in hdets (0: none) */
	int det_cap;
	struct gpu_post det_post;
};

/* 1 for ops whose output is a view of input 0 (Reshape, Flatten, …). */
int gpu_cuda_node_is_view(const struct mdl_node *n);
/* Checks node i at the maximum batch (supported, constants present); marks views that must
 * copy. 0 or -errno with err filled. */
int gpu_cuda_node_check(struct gpu_cuda_variant *v, int i, const struct mdl_infer *inf, char *err,
			size_t err_len);
/* Bytes of the explicitly padded input node i needs (asymmetric convolution pads), or 0. */
size_t gpu_cuda_node_pad_bytes(const struct gpu_cuda_variant *v, int i,
			       const struct mdl_infer *inf);
/* Builds v->plans[b] (arena, pad and staging buffers allocated). 0 or -errno, err filled. */
int gpu_cuda_plan_build(struct gpu_cuda_variant *v, int b, char *err, size_t err_len);
void gpu_cuda_plan_release(struct gpu_cuda_plan *p);
int gpu_cuda_step_run(struct gpu_cuda_conv_ctx *cc, const struct gpu_cuda_step *s, void *ws,
		      cudaStream_t st);

/* Staged images and detections on the device (gpu_cuda_io.cu): buffers sized at prepare,
 * and the optional hot calls of struct gpu_backend_ops. */
int gpu_cuda_io_prepare(struct gpu_cuda_variant *v, char *err, size_t err_len);
void gpu_cuda_io_release(struct gpu_cuda_variant *v);
int gpu_cuda_io_input_image(void *var, int item, const struct gpu_image *img,
			    const struct gpu_norm *norm);
int gpu_cuda_io_inputs_done(void *var);
int gpu_cuda_io_detect(void *var, const struct gpu_post *p, int item, struct gpu_det *dets,
		       int cap);

#endif
