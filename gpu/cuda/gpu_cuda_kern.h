/* Private to gpu/cuda/: the preprocessing and post-processing kernels of the CUDA backend.
 *
 * Plain C-callable functions (C and C++ both include this header) taking a cudaStream_t and
 * device pointers. They are the device versions of gpu_image_to_tensor (gpu_cpu_pre.c) and
 * gpu_post_decode (gpu_cpu_post.c) and give the same numbers (float32 within 1e-4 absolute;
 * detections identical up to the order of equal scores).
 *
 * Threads: every function may be called from any thread; calls that share a stream, a scratch
 * buffer or a detection buffer must not run at the same time (the executor's one thread).
 * Launch functions allocate nothing, never synchronise, and only queue work on `stream`:
 * the sizes of every scratch/detection buffer come from the *_size functions at setup.
 * Errors: -EINVAL for bad arguments (checked on the host before anything is queued), -EIO
 * for a CUDA error, which is also written to stderr as "file:line: call: error" (rare path).
 */
#ifndef SHOAL_GPU_CUDA_KERN_H
#define SHOAL_GPU_CUDA_KERN_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

enum gpu_cuda_layout {
	GPU_CUDA_NCHW, /* channel planes */
	GPU_CUDA_NHWC, /* channels interleaved per pixel */
};

enum gpu_cuda_dtype {
	GPU_CUDA_F32, /* float */
	GPU_CUDA_F16, /* IEEE half (__half), round to nearest even */
};

/* ---- preprocessing ---------------------------------------------------------------------- */

/* Extra bytes that gpu_cuda_pre_scratch_size may add to the packed size of the planes
 * (alignment of each plane to 256 bytes). */
#define GPU_CUDA_PRE_SLACK 512

/* Bytes of device scratch gpu_cuda_pre_launch needs for an image of this format and size
 * (planes packed without row padding, each aligned to 256 bytes); 0 for a bad size. The
 * packed planes are never larger than the memory they come from, so a scratch of
 * slot_size + GPU_CUDA_PRE_SLACK bytes fits any image held in one staging slot. */
size_t gpu_cuda_pre_scratch_size(enum gpu_pix_fmt fmt, int width, int height);

/* Preprocesses one image into a device tensor, like gpu_image_to_tensor:
 *  1. cudaMemcpy2DAsync of each used plane of img (host memory, pinned for the copy to be
 *     asynchronous DMA; any row stride) into `scratch` (device, scratch_size bytes, at least
 *     gpu_cuda_pre_scratch_size), rows packed;
 *  2. if `copied` is not NULL, cudaEventRecord(copied, stream): when that event has
 *     completed the image memory has been read and may be reused (staging slot back to the
 *     pool); before that it must stay alive and untouched;
 *  3. one kernel: BT.601 colour conversion (img->full_range), bilinear resize with half-pixel
 *     centres to dst_h x dst_w, out = (v / 255 - mean) / std, channel order RGB or BGR
 *     (norm->bgr), written to `dst` (device) as dtype in layout:
 *       NCHW: 3 planes of dst_h * dst_w elements (dst_c must be 3);
 *       NHWC: dst_h * dst_w pixels of dst_c elements (dst_c >= 3; channels 3..dst_c-1 are
 *             written as 0, e.g. dst_c = 4 or 8 for vectorised fp16 convolutions).
 * img and norm are read during the call only (the struct; the pixels until `copied`).
 * The scratch is reused in stream order: a later launch on the same stream with the same
 * scratch is safe; on another stream it is not until this one's kernel has completed.
 * dst is written when the kernel runs (stream order). 0, -EINVAL (bad image as for
 * gpu_image_to_tensor, scratch too small, dst_c, sizes) or -EIO. */
int gpu_cuda_pre_launch(cudaStream_t stream, const struct gpu_image *img,
			const struct gpu_norm *norm, void *scratch, size_t scratch_size,
			cudaEvent_t copied, void *dst, int dst_h, int dst_w, int dst_c,
			enum gpu_cuda_layout layout, enum gpu_cuda_dtype dtype);

/* ---- post-processing -------------------------------------------------------------------- */

/* Largest cap (detections per item) the device post-processing keeps. */
#define GPU_CUDA_POST_MAX_CAP 1024

/* The graph outputs of one batch on the device, as gpu_post_decode takes them on the host:
 * outs[i] / shapes[i] is graph output i (shape in logical NCHW order, dimension 0 the batch,
 * whatever the memory layout). Only the outputs named by the struct gpu_post are read. */
struct gpu_cuda_outputs {
	const void *const *outs;       /* device pointers, indexed by graph output */
	const struct mdl_shape *shapes; /* logical (N, C, H, W) */
	enum gpu_cuda_dtype dtype;     /* of every output read */
	enum gpu_cuda_layout layout;   /* of every output read */
};

/* Bytes of device scratch (candidate lists + counters) for decoding up to max_batch items of
 * outputs of these shapes (shapes at the largest batch / input size the variant runs); 0 when
 * the shapes do not fit the head (as gpu_post_decode's -EINVAL). */
size_t gpu_cuda_post_scratch_size(const struct gpu_post *p, const struct mdl_shape *shapes,
				  int max_batch);

/* Bytes of one detection buffer (device or pinned host) holding up to `cap` detections for
 * each of max_batch items: per item a count followed by cap struct gpu_det. */
size_t gpu_cuda_post_dets_size(int max_batch, int cap);

/* Decodes items item0 .. item0 + n_items - 1 of the batch on the device: candidates above
 * p->score_min, the best `cap` kept (centernet: the best min(cap, 100)), per-class greedy NMS
 * at p->iou_max, best first: as gpu_post_decode. Then one cudaMemcpyAsync of those items'
 * areas (count + cap detections each) from dev_dets into host_dets (pinned host memory).
 * cap: 1..GPU_CUDA_POST_MAX_CAP, the same value for the matching gpu_cuda_post_result.
 * dev_dets / host_dets: gpu_cuda_post_dets_size(max_batch, cap) bytes, item i at its own
 * offset (items outside the range are left as they are). scratch: gpu_cuda_post_scratch_size
 * bytes for the shapes and batch given here (or larger ones). The outputs, scratch and both
 * detection buffers must stay alive, and the outputs unchanged, until the stream has passed
 * this work (record an event after the call and wait for it, or synchronise the stream).
 * 0, -EINVAL (bad arguments, shapes not of the head, item out of the batch, scratch too
 * small) or -EIO. */
int gpu_cuda_post_launch(cudaStream_t stream, const struct gpu_post *p,
			 const struct gpu_cuda_outputs *o, int item0, int n_items, void *scratch,
			 size_t scratch_size, void *dev_dets, void *host_dets, int cap);

/* After the work of gpu_cuda_post_launch has completed (event/stream synchronised): copies
 * the detections of `item` from host_dets (the buffer passed to the launch, same cap) into
 * dets, at most dets_cap of them, best first. Returns the count, or -EINVAL. Host only;
 * no CUDA call. */
int gpu_cuda_post_result(const void *host_dets, int cap, int item, struct gpu_det *dets,
			 int dets_cap);

#ifdef __cplusplus
}
#endif
#endif
