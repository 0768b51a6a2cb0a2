/* gpu — inference backends and the executor (DESIGN.md §5, §6, §11.8).
 *
 * This header is the module's only public one. It holds no CUDA types, so CPU-only
 * builds include it unchanged. It holds CUDA device discovery and the backend interface
 * (setup calls: load/prepare/close; hot calls: submit/poll/run), which every backend (CPU,
 * CUDA) implements through struct gpu_backend_ops; the staging pool; pre- and post-processing;
 * and the executor (EDF batching and time-slicing of one backend between model instances).
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

/* ---- executor: EDF batching and time-slicing (DESIGN.md §6) ---------------------------------
 * One executor per backend (a CUDA device, or the host CPU), running on its own pthread, which
 * alone calls the backend's hot functions. It holds n_instances model instances (the
 * scheduler's execution slots) of one model family. An instance runs the family at one input
 * size (variant) with a target batch; gpu_exec_instance_set changes both at any time: the
 * executor prepares the variant (on its thread between batches, or with cfg.prepare_async on
 * a preparer thread while batches go on; one preparation at a time), keeps prepared variants in a
 * cache shared by its instances (one batch runs at a time, so instances at one size share one
 * variant; at most max_variants are kept, least recently used closed first) and switches the
 * instance once it is ready. Frames already queued run on whichever variant the instance has
 * when their batch starts (any frame can run at any size). gpu_exec_prepare asks for a variant
 * ahead of time so that the first frame needing it does not wait; gpu_exec_ready says when.
 *
 * Frames (gpu_exec_submit, one producer thread, lock-free ring) carry a staged image, its
 * arrival and absolute deadline and a 64-bit user value. Each instance keeps its frames in
 * deadline order (a heap). A batch of an instance is ready when it holds `batch` frames, or
 * when waiting longer would make its earliest deadline unreachable:
 *     now + est(n) + guard >= earliest deadline,
 * est(n) being the profiled p99 latency of n = min(queued, max_batch) frames at the
 * instance's size times its correction ratio. Before a batch runs, frames that cannot finish
 * by their deadline even in a batch of one are dropped (GPU_EXEC_LATE) without costing device
 * time, and the batch is cut to the largest n whose est(n) still meets its earliest deadline.
 * An instance that has run nothing for 1 s while its frames are judged late runs its earliest
 * frame alone anyway (a probe): the measurement corrects a ratio that grew too large.
 * One batch runs at a time: among the ready instances the one with the earliest deadline goes
 * first (EDF time-slicing of the device). After every batch the ratio measured / profiled is
 * recorded; an instance's correction ratio is the 95th percentile of its last 32 ratios (a
 * deadline must hold for the slow batches too), clamped to [0.25, 8]; est() uses it and
 * gpu_exec_instance_stats reports it, for the scheduler.
 *
 * Every submitted frame gets exactly one call of cfg.done, on the executor thread (or in
 * gpu_exec_submit itself when the ring is full: GPU_EXEC_OVERLOAD): DONE with its detections
 * in the source frame's pixels, or a status saying why it did not run. After that call the
 * executor no longer reads the frame's image (its staging slot may be reused).
 * Memory for queues, rings and detections is reserved at create; the hot path does not
 * allocate (preparing a variant does: setup work).
 */
struct gpu_exec; /* opaque */

enum gpu_exec_status {
	GPU_EXEC_DONE = 0,        /* ran; detections attached */
	GPU_EXEC_LATE = 1,        /* could not make its deadline: dropped before running */
	GPU_EXEC_OVERLOAD = 2,    /* the submit ring or the instance queue was full */
	GPU_EXEC_NO_INSTANCE = 3, /* instance out of range or without a variant (not served) */
	GPU_EXEC_FAILED = 4,      /* the backend failed on its batch (bad image, device error) */
	GPU_EXEC_STOPPED = 5,     /* the executor was destroyed before the frame ran */
};
/* "done", "late", "overload", "no_instance", "failed", "stopped"; NULL when out of range. */
const char *gpu_exec_status_name(int status);

#define GPU_EXEC_MAX_INSTANCES 64
#define GPU_EXEC_MAX_BATCH 32
#define GPU_EXEC_MAX_SIZES 64

struct gpu_exec_frame {
	struct gpu_image img;  /* staged frame; memory untouched until done() is called for it */
	uint64_t arrival_ns;   /* first packet (same clock as cfg.now_ns) */
	uint64_t deadline_ns;  /* absolute: the result must be out by then */
	uint64_t user;         /* handed back in gpu_exec_done */
	int instance;          /* 0 .. n_instances - 1 */
};

struct gpu_exec_done {
	uint64_t user;
	int status;              /* enum gpu_exec_status */
	int instance;
	int size;                /* variant input side that ran it (0 when it did not run) */
	int batch;               /* frames in its batch (0 when it did not run) */
	uint64_t start_ns, end_ns; /* its batch (0 when it did not run) */
	int n_det;
	const struct gpu_det *det; /* n_det detections, best first, in source frame pixels;
				    * valid during the call only */
};

/* Profiled p99 latency (ms) of a batch of b frames at each input size: lat_ms[i][b - 1] for
 * size[i], b = 1 .. max_batch. Sizes ascending. A size not listed uses the next larger one
 * (the largest when above all). */
struct gpu_exec_profile {
	int n_sizes;
	int size[GPU_EXEC_MAX_SIZES];
	double lat_ms[GPU_EXEC_MAX_SIZES][GPU_EXEC_MAX_BATCH];
};

struct gpu_exec_config {
	const char *name;              /* for messages and the thread name ("cpu", "cuda0") */
	struct gpu_backend *backend;   /* borrowed; only the executor thread uses it once created */
	struct gpu_family *family;     /* loaded on backend; borrowed */
	const struct gpu_post *post;   /* detection decoding (NULL: n_det = 0 for every frame) */
	struct gpu_norm norm;          /* input normalisation of the family */
	int n_instances;               /* 1 .. GPU_EXEC_MAX_INSTANCES */
	int max_batch;                 /* variants are prepared at this batch (1 .. 32) */
	int max_variants;              /* prepared variants kept at most (>= 1) */
	int max_det;                   /* detections per frame at most (1 .. 255) */
	unsigned queue_size;           /* frames queued per instance at most */
	unsigned ring_size;            /* submit ring (power of two) */
	struct gpu_exec_profile profile; /* copied */
	double guard_ms;               /* slack kept before a deadline (queueing, result send) */
	int cpu;                       /* CPU to pin the executor thread to, -1: unpinned */
	int prepare_async;             /* 1: variants are prepared on a preparer thread while
					* batches go on running (the backend must allow preparing
					* a variant while another of the family runs: the CPU
					* backend does); 0: on the executor thread, between batches */
	uint64_t (*now_ns)(void);      /* clock of arrival/deadline (NULL: CLOCK_MONOTONIC) */
	void (*done)(void *arg, const struct gpu_exec_done *d); /* required */
	void *done_arg;
};

/* Defaults: 1 instance, max batch 8, 4 variants kept, 100 detections, queue 256, ring 1024,
 * guard 2 ms, unpinned, CLOCK_MONOTONIC; the rest zero (backend, family, profile, done must
 * be set; norm: mean 0, std 1, RGB). */
void gpu_exec_config_defaults(struct gpu_exec_config *cfg);
/* Checks cfg and starts the executor thread. NULL with err filled (one line) on a bad
 * configuration or when a thread or memory cannot be had. */
struct gpu_exec *gpu_exec_create(const struct gpu_exec_config *cfg, char *err, size_t err_len);
/* Stops the thread; every frame still queued gets done() with GPU_EXEC_STOPPED (on the
 * calling thread), then closes the prepared variants. The backend and family stay. */
void gpu_exec_destroy(struct gpu_exec *ex);

/* Hands one frame to the executor (the single producer thread). 0, or -ENOBUFS when the ring
 * is full (done() was then already called with GPU_EXEC_OVERLOAD). */
int gpu_exec_submit(struct gpu_exec *ex, const struct gpu_exec_frame *f);

/* Control side (one control thread; commands go through their own ring, applied by the
 * executor between batches). size 0 takes the instance out of service: its queued frames and
 * later ones get GPU_EXEC_NO_INSTANCE. batch is clamped to 1 .. max_batch. 0, -EINVAL, or
 * -EAGAIN when the command ring is full. */
int gpu_exec_instance_set(struct gpu_exec *ex, int instance, int size, int batch);
/* Prepares the variant of input side `size` ahead (no effect when already prepared). */
int gpu_exec_prepare(struct gpu_exec *ex, int size);
/* 1 when a variant of that size is prepared, 0 when not (yet), -EIO when preparing it failed
 * (reason in gpu_exec_error). */
int gpu_exec_ready(const struct gpu_exec *ex, int size);
/* The last preparation error, "" when none (control thread). */
const char *gpu_exec_error(const struct gpu_exec *ex);

struct gpu_exec_instance_stats {
	int size, batch;         /* what the instance runs now (size 0: out of service) */
	uint64_t frames_in;      /* frames taken from the ring for this instance */
	uint64_t frames_done, frames_late, frames_overload, frames_failed, frames_no_instance;
	uint64_t batches;
	uint64_t batch_hist[GPU_EXEC_MAX_BATCH]; /* batch_hist[b - 1]: batches of b frames */
	uint64_t busy_ns;        /* summed batch times */
	unsigned queued;         /* frames waiting now */
	double ratio;            /* latency correction: measured / profiled (1 before any batch),
				  * the 95th percentile of the last 32 batches (deadlines use it) */
	double ratio_p50;        /* their median */
	uint64_t probes;         /* single frames run although judged late, to measure again
				  * (the instance had not run for 1 s) */
};
/* Counters of one instance (any thread; each value read atomically). 0 or -EINVAL. */
int gpu_exec_instance_stats(const struct gpu_exec *ex, int instance,
			    struct gpu_exec_instance_stats *out);
/* Device-wide: summed batch time and the time since create, for a utilisation figure. */
void gpu_exec_busy(const struct gpu_exec *ex, uint64_t *busy_ns, uint64_t *elapsed_ns);

#ifdef __cplusplus
}
#endif
#endif
