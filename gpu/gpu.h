/* gpu — inference backends and the executor (DESIGN.md §5, §6, §11.8).
 *
 * This header is the module's only public one. It holds no CUDA types, so CPU-only
 * builds include it unchanged. It holds CUDA device discovery and the backend interface
 * (setup calls: load/prepare/close; hot calls: submit/poll/run), which every backend (CPU
 * here, CUDA later) implements through struct gpu_backend_ops.
 */
#ifndef SHOAL_GPU_H
#define SHOAL_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "models/mdl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CUDA device discovery ------------------------------------------------------------- */
struct gpu_device_info {
	char name[128];
	int sm_major, sm_minor;
	int multiprocessors;
	uint64_t mem_bytes;
	int driver_version;  /* e.g. 13000 */
	int runtime_version; /* e.g. 13000 */
};

/* 1 when this build contains the CUDA backend. */
int gpu_cuda_built(void);

/* Number of usable CUDA devices. 0 when there is none for any reason (built without CUDA,
 * no driver, no device, any runtime error: DESIGN.md §10 notes error 35 rather than 100);
 * then why (if not NULL) receives a one-line reason. */
int gpu_cuda_device_count(char *why, size_t why_len);

/* Fills info for device idx; 0 or -ENODEV. */
int gpu_cuda_device_info(int idx, struct gpu_device_info *info);

/* Runs a small kernel (y = a*x + y over n floats) on device idx and checks it against the
 * same arithmetic on the host: proves the device code of this build loads and runs there.
 * Returns 0, -ENODEV, or -EIO with why filled. */
int gpu_cuda_selftest(int idx, size_t n, char *why, size_t why_len);

/* ---- backend interface (DESIGN.md §11.8) ----------------------------------------------------
 *
 * Three opaque handles:
 *   gpu_backend  one device (or the host CPU) with its threads/streams;
 *   gpu_family   a model family loaded on a backend: the weights, held once and shared by every
 *                variant of the family (parameter sharing, DESIGN.md §5);
 *   gpu_variant  a family prepared for given input shapes (e.g. 3 x H x W) and a maximum batch:
 *                shapes inferred and activation memory planned once; nothing is allocated
 *                by the hot calls.
 *
 * Setup calls (may allocate, may be slow): *_create, gpu_family_load, gpu_variant_prepare*,
 * *_close/destroy. Hot calls (no allocation, no logging): gpu_variant_input,
 * gpu_variant_submit, gpu_variant_poll, gpu_variant_run, gpu_variant_output.
 * A variant runs one batch at a time; several variants of one backend are used from one thread
 * (the executor) at a time.
 */
struct gpu_backend;
struct gpu_family;
struct gpu_variant;
struct gpu_image;
struct gpu_norm;
struct gpu_post;
struct gpu_det;

/* What a backend implements. Handles are the backend's own objects (void *). */
struct gpu_backend_ops {
	const char *name; /* "cpu", "cuda" */
	void (*destroy)(void *be);
	void *(*family_load)(void *be, const struct mdl_graph *g, char *err, size_t err_len);
	void (*family_close)(void *fam);
	/* inputs: one shape per graph input at the maximum batch (dimension 0). */
	void *(*variant_prepare)(void *fam, const struct mdl_shape *inputs, char *err,
				 size_t err_len);
	void (*variant_close)(void *var);
	float *(*variant_input)(void *var, int idx);
	int (*variant_submit)(void *var, int batch);
	int (*variant_poll)(void *var);
	const float *(*variant_output)(void *var, int idx, struct mdl_shape *shape);
	/* Optional (NULL: the generic host version in gpu_backend.c is used). See
	 * gpu_variant_input_image, gpu_variant_inputs_done, gpu_variant_detect. */
	int (*variant_input_image)(void *var, int item, const struct gpu_image *img,
				   const struct gpu_norm *norm);
	int (*variant_inputs_done)(void *var);
	int (*variant_detect)(void *var, const struct gpu_post *p, int item, struct gpu_det *dets,
			      int cap);
};

/* Wraps a backend implementation (impl is handed to ops->destroy at the end). NULL on ENOMEM. */
struct gpu_backend *gpu_backend_create(const struct gpu_backend_ops *ops, void *impl);
void gpu_backend_destroy(struct gpu_backend *be);
const char *gpu_backend_name(const struct gpu_backend *be);

/* The CUDA/cuDNN backend on device `device` (gpu/cuda/): fp16 = 1 runs NHWC half precision
 * with fp32 accumulation, 0 runs fp32. NULL with err filled when the build has no CUDA or
 * the device is absent or unusable (one line saying why). */
struct gpu_backend *gpu_backend_cuda_create(int device, int fp16, char *err, size_t err_len);

/* The CPU backend (C + OpenBLAS, float32; the numeric reference). threads >= 1 sizes its
 * worker pool and OpenBLAS's thread count (process-wide setting of OpenBLAS). */
struct gpu_backend *gpu_backend_cpu_create(int threads, char *err, size_t err_len);

/* Loads the weights of graph g. g must stay alive and unchanged until the family is closed
 * (the CPU backend reads the weights in place). NULL with err filled on failure. */
struct gpu_family *gpu_family_load(struct gpu_backend *be, const struct mdl_graph *g, char *err,
				   size_t err_len);
void gpu_family_close(struct gpu_family *fam);

/* Prepares a variant: inputs[i] is the shape of graph input i at the maximum batch (its
 * dimension 0). Every batch 1..max whose shapes infer consistently can then be run.
 * NULL with err filled ("<model>: node '<n>' (<Op>): <reason>") on failure. */
struct gpu_variant *gpu_variant_prepare(struct gpu_family *fam, const struct mdl_shape *inputs,
					char *err, size_t err_len);
/* Shorthand for a single-image-input model: input 0 is [max_batch, C, height, width] with C
 * taken from the declared input shape. */
struct gpu_variant *gpu_variant_prepare_image(struct gpu_family *fam, int max_batch, int height,
					      int width, char *err, size_t err_len);
void gpu_variant_close(struct gpu_variant *var);

/* Staging buffer of graph input idx, sized for the maximum batch; batch items are contiguous
 * along dimension 0. Write the first `batch` items, then submit. NULL for a bad idx. */
float *gpu_variant_input(struct gpu_variant *var, int idx);
/* Starts the model on the first `batch` items (1..max batch). 0, -EINVAL (batch not
 * available), -EBUSY (a batch is in flight). The CPU backend computes inside this call. */
int gpu_variant_submit(struct gpu_variant *var, int batch);
/* 1 when the submitted batch is done, 0 while it runs, -errno on failure. */
int gpu_variant_poll(struct gpu_variant *var);
/* submit + wait. */
int gpu_variant_run(struct gpu_variant *var, int batch);
/* Output idx of the last completed batch and its shape (dimension 0 = that batch). NULL for a
 * bad idx. Valid until the next submit. */
const float *gpu_variant_output(struct gpu_variant *var, int idx, struct mdl_shape *shape);

/* ---- staged frames in, detections out (hot) ---------------------------------------------------
 * gpu_variant_input_image: preprocesses one staged image (colour conversion, resize to the
 * variant's input size, normalisation) into batch item `item` (0..max batch - 1) of input 0.
 * The CPU backend does it inside the call. The CUDA backend copies the image from its (pinned)
 * memory asynchronously on the variant's stream and converts it on the device: the image
 * memory must stay untouched until gpu_variant_inputs_done returns 1. 0 or -EINVAL.
 * gpu_variant_inputs_done: 1 when every image passed to gpu_variant_input_image so far has been
 * read (its staging slot may go back to the pool), 0 while copies are in flight, -errno.
 * gpu_variant_detect: detections of batch item `item` of the last completed batch, decoded and
 * suppressed per class as gpu_post_decode does (on the device for CUDA: only detections come
 * back). Best first, at most cap; returns the count or -errno. */
int gpu_variant_input_image(struct gpu_variant *var, int item, const struct gpu_image *img,
			    const struct gpu_norm *norm);
int gpu_variant_inputs_done(struct gpu_variant *var);
int gpu_variant_detect(struct gpu_variant *var, const struct gpu_post *p, int item,
		       struct gpu_det *dets, int cap);

/* ---- staging: fixed-size slots of pinned host memory (DESIGN.md §1) -------------------------
 * Complete frames are written by the data plane straight into a slot; the consumer (executor)
 * hands the slot to a backend and gives it back when gpu_variant_inputs_done says it was read.
 * Slots are page-aligned and pinned with cudaHostAlloc when a CUDA device is present (so H2D
 * copies are asynchronous DMA), plain page-aligned memory otherwise. get/put are lock-free and
 * may be called from any thread; nothing is allocated after create. */
struct gpu_staging;
struct gpu_staging *gpu_staging_create(unsigned n_slots, size_t slot_size, char *err,
				       size_t err_len);
void gpu_staging_destroy(struct gpu_staging *st);
/* 1 when the slots are pinned (cudaHostAlloc), 0 when plain host memory. */
int gpu_staging_pinned(const struct gpu_staging *st);
/* Takes a free slot: 0 and *slot set, or -ENOBUFS when none is free. */
int gpu_staging_get(struct gpu_staging *st, uint32_t *slot);
/* Returns a slot: -EINVAL for an index out of range, -EALREADY when it is already free. */
int gpu_staging_put(struct gpu_staging *st, uint32_t slot);
uint8_t *gpu_staging_slot(const struct gpu_staging *st, uint32_t slot);
size_t gpu_staging_slot_size(const struct gpu_staging *st);
unsigned gpu_staging_slot_count(const struct gpu_staging *st);
unsigned gpu_staging_free_count(const struct gpu_staging *st);

/* ---- preprocessing (CPU reference implementation) ------------------------------------------
 * A staged frame becomes one NCHW float image: colour conversion (BT.601), bilinear resize
 * with half-pixel centres (stretch, aspect ratio not kept) and normalisation, in one pass. */
enum gpu_pix_fmt {
	GPU_PIX_I420,  /* planar Y, U, V; chroma halved in both directions */
	GPU_PIX_UYVY,  /* packed 4:2:2, bytes U0 Y0 V0 Y1 (RFC 4175 YCbCr-4:2:2 order) */
	GPU_PIX_RGB24, /* packed R G B */
};

struct gpu_image {
	enum gpu_pix_fmt fmt;
	int width, height;       /* I420/UYVY: even width; I420: even height */
	const uint8_t *plane[3]; /* I420: Y, U, V; UYVY and RGB24: plane[0] only */
	int stride[3];           /* bytes per row of each plane used */
	int full_range;          /* YUV: 1 = full range (JPEG/JFIF), 0 = video range 16..235 */
};

/* Per output channel: out = (value / 255 - mean) / std; bgr = 1 writes the channels as B, G, R
 * (mean and std are then in B, G, R order too). */
struct gpu_norm {
	float mean[3], std[3];
	int bgr;
};

/* Writes 3 x dst_h x dst_w floats (channel planes) at dst. Hot: no allocation.
 * 0, or -EINVAL for a bad image/size (odd YUV sizes, missing plane, zero std). */
int gpu_image_to_tensor(const struct gpu_image *img, const struct gpu_norm *norm, float *dst,
			int dst_h, int dst_w);

/* ---- detection post-processing (host side) ---------------------------------------------------
 * Decodes the output maps of a zoo family (models/zoo/README.md) into boxes in input pixels,
 * then per-class greedy NMS. gpu_post_init (setup) finds the outputs by name;
 * gpu_post_decode (hot, no allocation) decodes one batch item. */
enum gpu_head {
	GPU_HEAD_NANODET,   /* cls{s} (N,C,h,w) sigmoid scores + reg{s} (N,4*11,h,w) GFL bins */
	GPU_HEAD_CENTERNET, /* heatmap, heatmax (N,C,h,w) + wh (N,4,h,w), stride 4, top 100 */
};

struct gpu_det {
	float x0, y0, x1, y1; /* input pixels */
	float score;
	int cls;
};

#define GPU_POST_MAX_LEVELS 4
struct gpu_post {
	enum gpu_head head;
	float score_min, iou_max;
	int n_levels;
	int stride[GPU_POST_MAX_LEVELS];
	int out_a[GPU_POST_MAX_LEVELS]; /* graph output index: cls{s} / heatmap */
	int out_b[GPU_POST_MAX_LEVELS]; /* reg{s} / heatmax */
	int out_wh;                     /* centernet wh */
};

/* 0, or -EINVAL with err naming the missing output. */
int gpu_post_init(struct gpu_post *p, const struct mdl_graph *g, enum gpu_head head,
		  float score_min, float iou_max, char *err, size_t err_len);
/* outs[i] / shapes[i]: graph output i of the batch (as from gpu_variant_output). Writes at
 * most cap detections of batch item `item`, best first; when more candidates pass the
 * threshold than cap, the best cap are kept. Returns the count or -EINVAL. */
int gpu_post_decode(const struct gpu_post *p, const float *const *outs,
		    const struct mdl_shape *shapes, int item, struct gpu_det *dets, int cap);

#ifdef __cplusplus
}
#endif
#endif
