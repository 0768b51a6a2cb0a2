/* The backend-neutral half of the interface: handles that carry their backend's vtable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu/gpu.h"

struct gpu_backend {
	const struct gpu_backend_ops *ops;
	void *impl;
};

struct gpu_family {
	struct gpu_backend *be;
	const struct mdl_graph *g;
	void *impl;
};

struct gpu_variant {
	struct gpu_family *fam;
	void *impl;
	struct mdl_shape in0; /* input 0 at the maximum batch */
};

struct gpu_backend *gpu_backend_create(const struct gpu_backend_ops *ops, void *impl)
{
	struct gpu_backend *be = calloc(1, sizeof *be);
	if (!be)
		return NULL;
	be->ops = ops;
	be->impl = impl;
	return be;
}

void gpu_backend_destroy(struct gpu_backend *be)
{
	if (!be)
		return;
	be->ops->destroy(be->impl);
	free(be);
}

const char *gpu_backend_name(const struct gpu_backend *be) { return be->ops->name; }

/* err may be NULL: the backends then write into a local buffer. */
#define ERR_BUF(err, len)                                                                          \
	char err_local_[256];                                                                       \
	if (!(err)) {                                                                               \
		(err) = err_local_;                                                                 \
		(len) = sizeof err_local_;                                                          \
	}

struct gpu_family *gpu_family_load(struct gpu_backend *be, const struct mdl_graph *g, char *err,
				   size_t err_len)
{
	ERR_BUF(err, err_len);
	struct gpu_family *f = calloc(1, sizeof *f);
	if (!f) {
		snprintf(err, err_len, "%s: out of memory", g->path);
		return NULL;
	}
	f->be = be;
	f->g = g;
	f->impl = be->ops->family_load(be->impl, g, err, err_len);
	if (!f->impl) {
		free(f);
		return NULL;
	}
	return f;
}

void gpu_family_close(struct gpu_family *fam)
{
	if (!fam)
		return;
	fam->be->ops->family_close(fam->impl);
	free(fam);
}

struct gpu_variant *gpu_variant_prepare(struct gpu_family *fam, const struct mdl_shape *inputs,
					char *err, size_t err_len)
{
	ERR_BUF(err, err_len);
	struct gpu_variant *v = calloc(1, sizeof *v);
	if (!v) {
		snprintf(err, err_len, "%s: out of memory", fam->g->path);
		return NULL;
	}
	v->fam = fam;
	v->in0 = inputs[0];
	v->impl = fam->be->ops->variant_prepare(fam->impl, inputs, err, err_len);
	if (!v->impl) {
		free(v);
		return NULL;
	}
	return v;
}

struct gpu_variant *gpu_variant_prepare_image(struct gpu_family *fam, int max_batch, int height,
					      int width, char *err, size_t err_len)
{
	ERR_BUF(err, err_len);
	const struct mdl_graph *g = fam->g;
	if (g->n_inputs != 1 || g->values[g->inputs[0]].shape.rank != 4 ||
	    g->values[g->inputs[0]].shape.d[1] < 1 || max_batch < 1 || height < 1 || width < 1) {
		snprintf(err, err_len, "%s: not a single NCHW-input model with known channels, or a "
			 "bad batch/size (%d, %dx%d)", g->path, max_batch, height, width);
		return NULL;
	}
	struct mdl_shape s = {4, {max_batch, g->values[g->inputs[0]].shape.d[1], height, width}};
	return gpu_variant_prepare(fam, &s, err, err_len);
}

void gpu_variant_close(struct gpu_variant *var)
{
	if (!var)
		return;
	var->fam->be->ops->variant_close(var->impl);
	free(var);
}

float *gpu_variant_input(struct gpu_variant *var, int idx)
{
	return var->fam->be->ops->variant_input(var->impl, idx);
}

int gpu_variant_submit(struct gpu_variant *var, int batch)
{
	return var->fam->be->ops->variant_submit(var->impl, batch);
}

int gpu_variant_poll(struct gpu_variant *var)
{
	return var->fam->be->ops->variant_poll(var->impl);
}

int gpu_variant_run(struct gpu_variant *var, int batch)
{
	int rc = gpu_variant_submit(var, batch);
	if (rc)
		return rc;
	while ((rc = gpu_variant_poll(var)) == 0)
		;
	return rc < 0 ? rc : 0;
}

const float *gpu_variant_output(struct gpu_variant *var, int idx, struct mdl_shape *shape)
{
	return var->fam->be->ops->variant_output(var->impl, idx, shape);
}

/* Generic host versions of the optional hot calls: the backend's input buffer is host memory
 * that the backend reads inside submit, and outputs are host memory. */
int gpu_variant_input_image(struct gpu_variant *var, int item, const struct gpu_image *img,
			    const struct gpu_norm *norm)
{
	const struct gpu_backend_ops *ops = var->fam->be->ops;
	if (ops->variant_input_image)
		return ops->variant_input_image(var->impl, item, img, norm);
	const struct mdl_shape *s = &var->in0;
	if (s->rank != 4 || s->d[1] != 3 || item < 0 || item >= s->d[0])
		return -EINVAL;
	float *in = ops->variant_input(var->impl, 0);
	if (!in)
		return -EINVAL;
	size_t per = (size_t)3 * (size_t)s->d[2] * (size_t)s->d[3];
	return gpu_image_to_tensor(img, norm, in + (size_t)item * per, (int)s->d[2], (int)s->d[3]);
}

int gpu_variant_inputs_done(struct gpu_variant *var)
{
	const struct gpu_backend_ops *ops = var->fam->be->ops;
	return ops->variant_inputs_done ? ops->variant_inputs_done(var->impl) : 1;
}

int gpu_variant_detect(struct gpu_variant *var, const struct gpu_post *p, int item,
		       struct gpu_det *dets, int cap)
{
	const struct gpu_backend_ops *ops = var->fam->be->ops;
	if (ops->variant_detect)
		return ops->variant_detect(var->impl, p, item, dets, cap);
	const struct mdl_graph *g = var->fam->g;
	if (g->n_outputs > 16)
		return -EINVAL;
	const float *outs[16];
	struct mdl_shape shapes[16];
	for (int i = 0; i < g->n_outputs; i++) {
		outs[i] = ops->variant_output(var->impl, i, &shapes[i]);
		if (!outs[i])
			return -EINVAL;
	}
	return gpu_post_decode(p, outs, shapes, item, dets, cap);
}
