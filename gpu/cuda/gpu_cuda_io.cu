/* Staged images in and detections out for the CUDA backend: wires the device preprocessing
 * and post-processing kernels (gpu_cuda_kern.h) into the variant's stream.
 *
 * Images: gpu_cuda_pre_launch copies the image (pinned staging slot) into a per-variant
 * scratch, records the variant's input event, and converts it into the float NCHW buffer the
 * host input would land in (fp32: input 0 itself; fp16: the staging that the batch's first
 * step converts to NHWC halves), so one graph serves both input paths. inputs_done polls the
 * input event: a staging slot is released exactly when its copy has completed.
 * Detections: the first gpu_variant_detect of a completed batch decodes every item on the
 * device (outputs read in place: fp32 NCHW or fp16 NHWC) and copies only the detections
 * back; later calls for that batch read them from pinned memory.
 * The emulator (no device) uses the generic host versions. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_be.h"
#include "gpu/cuda/gpu_cuda_kern.h"

/* Largest image one variant's preprocessing scratch holds: 4K I420 or 1080p RGB24/UYVY. */
#define IO_MAX_W 3840
#define IO_MAX_H 2160

int gpu_cuda_io_prepare(struct gpu_cuda_variant *v, char *err, size_t err_len)
{
	const struct gpu_cuda_backend *be = v->be;
	const struct mdl_graph *g = v->g;
	const struct mdl_infer *top = v->inf[v->max_batch];
	int rc = -EIO;
	if (be->emul || !g->n_inputs || !v->din[0])
		return 0;
	const struct mdl_shape *in0 = &top->v[g->inputs[0]].shape;
	if (in0->rank == 4 && in0->d[1] == 3) {
		size_t a = gpu_cuda_pre_scratch_size(GPU_PIX_I420, IO_MAX_W, IO_MAX_H);
		size_t b = gpu_cuda_pre_scratch_size(GPU_PIX_RGB24, 1920, 1088);
		v->pre_scratch_size = a > b ? a : b;
		GC_CU(cudaMalloc(&v->pre_scratch, v->pre_scratch_size));
	}
	/* detections: scratch for whichever zoo head the graph has (none: host decoding) */
	if (g->n_outputs <= 16) {
		struct mdl_shape shapes[16];
		for (int i = 0; i < g->n_outputs; i++)
			shapes[i] = top->v[g->outputs[i]].shape;
		for (int h = 0; h < 2; h++) {
			struct gpu_post p;
			char why[160];
			if (gpu_post_init(&p, g, h ? GPU_HEAD_CENTERNET : GPU_HEAD_NANODET, 0.3f,
					  0.5f, why, sizeof why))
				continue;
			size_t s = gpu_cuda_post_scratch_size(&p, shapes, v->max_batch);
			v->post_scratch_size = s > v->post_scratch_size ? s : v->post_scratch_size;
		}
	}
	if (v->post_scratch_size) {
		size_t d = gpu_cuda_post_dets_size(v->max_batch, GPU_CUDA_POST_MAX_CAP);
		GC_CU(cudaMalloc(&v->post_scratch, v->post_scratch_size));
		GC_CU(cudaMalloc(&v->ddets, d));
		GC_CU(cudaHostAlloc(&v->hdets, d, cudaHostAllocDefault));
	}
	return 0;
fail:
	return rc;
}

void gpu_cuda_io_release(struct gpu_cuda_variant *v)
{
	if (v->be->emul)
		return;
	cudaFree(v->pre_scratch);
	cudaFree(v->post_scratch);
	cudaFree(v->ddets);
	cudaFreeHost(v->hdets);
}

int gpu_cuda_io_input_image(void *var, int item, const struct gpu_image *img,
			    const struct gpu_norm *norm)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)var;
	const struct mdl_graph *g = v->g;
	if (!g->n_inputs)
		return -EINVAL;
	const struct mdl_shape *s = &v->inf[v->max_batch]->v[g->inputs[0]].shape;
	if (s->rank != 4 || s->d[1] != 3 || item < 0 || item >= s->d[0] || !img || !norm)
		return -EINVAL;
	int H = (int)s->d[2], W = (int)s->d[3];
	size_t per = (size_t)3 * (size_t)H * (size_t)W;
	if (v->be->emul || !v->pre_scratch) /* host path: into the host input buffer */
		return gpu_image_to_tensor(img, norm, v->hin[0] + (size_t)item * per, H, W);
	int rc = gpu_cuda_pre_launch(v->stream, img, norm, v->pre_scratch, v->pre_scratch_size,
				     v->in_ev, (float *)v->din[0] + (size_t)item * per, H, W, 3,
				     GPU_CUDA_NCHW, GPU_CUDA_F32);
	if (rc == 0) {
		v->img_inputs = 1;
		v->img_pending = 1;
	}
	return rc;
}

int gpu_cuda_io_inputs_done(void *var)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)var;
	char *err = NULL;
	size_t err_len = 0;
	int rc = -EIO;
	if (v->be->emul || !v->img_pending)
		return 1;
	cudaError_t e = cudaEventQuery(v->in_ev);
	if (e == cudaErrorNotReady)
		return 0;
	GC_CU(e);
	v->img_pending = 0;
	return 1;
fail:
	return rc;
}

static int host_detect(struct gpu_cuda_variant *v, const struct gpu_post *p, int item,
		       struct gpu_det *dets, int cap)
{
	const struct mdl_graph *g = v->g;
	const float *outs[16];
	struct mdl_shape shapes[16];
	if (g->n_outputs > 16)
		return -EINVAL;
	for (int i = 0; i < g->n_outputs; i++) {
		int o = g->outputs[i];
		shapes[i] = v->inf[v->last_batch]->v[o].shape;
		outs[i] = v->cout[i] ? v->cout[i] : v->hout[i];
	}
	return gpu_post_decode(p, outs, shapes, item, dets, cap);
}

int gpu_cuda_io_detect(void *var, const struct gpu_post *p, int item, struct gpu_det *dets, int cap)
{
	struct gpu_cuda_variant *v = (struct gpu_cuda_variant *)var;
	const struct mdl_graph *g = v->g;
	char *err = NULL;
	size_t err_len = 0;
	int rc = -EIO;
	if (!v->last_batch || !p || item < 0 || item >= v->last_batch || cap < 1 || !dets)
		return -EINVAL;
	if (v->be->emul || !v->post_scratch || g->n_outputs > 16)
		return host_detect(v, p, item, dets, cap);
	int dcap = cap < GPU_CUDA_POST_MAX_CAP ? cap : GPU_CUDA_POST_MAX_CAP;
	if (v->det_run != v->runs || v->det_cap != dcap || memcmp(&v->det_post, p, sizeof *p)) {
		const struct mdl_infer *inf = v->inf[v->last_batch];
		const void *outs[16];
		struct mdl_shape shapes[16];
		for (int i = 0; i < g->n_outputs; i++) {
			int o = g->outputs[i];
			shapes[i] = inf->v[o].shape;
			outs[i] = v->off[o] >= 0 && !inf->v[o].data ? v->arena + v->off[o] : NULL;
		}
		struct gpu_cuda_outputs o = {outs, shapes,
					     v->be->dt == GC_F32 ? GPU_CUDA_F32 : GPU_CUDA_F16,
					     v->be->nhwc ? GPU_CUDA_NHWC : GPU_CUDA_NCHW};
		v->det_run = 0;
		rc = gpu_cuda_post_launch(v->stream, p, &o, 0, v->last_batch, v->post_scratch,
					  v->post_scratch_size, v->ddets, v->hdets, dcap);
		if (rc)
			return rc;
		rc = -EIO;
		GC_CU(cudaStreamSynchronize(v->stream));
		v->det_run = v->runs;
		v->det_cap = dcap;
		v->det_post = *p;
	}
	return gpu_cuda_post_result(v->hdets, dcap, item, dets, cap);
fail:
	return rc;
}
