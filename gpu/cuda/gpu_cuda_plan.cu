/* Step lists of the CUDA backend: for one variant and one batch size, every node becomes one
 * or more steps (a custom kernel, a cuDNN convolution, a memset/memcpy) with shapes, strides
 * and device pointers resolved, so that running a batch is a loop over launches (or the
 * replay of the CUDA graph captured from that loop).
 *
 * Layout: fp32 mode stores every tensor dense row-major (NCHW); fp16 mode stores 4-D runtime
 * values NHWC (cuDNN's fast layout for tensor cores) and everything else dense. Kernels see
 * logical indices and per-tensor strides, so both layouts share them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_be.h"

#define WHY(...)                                                                                   \
	(snprintf(err, err_len, "%s: node '%s' (%s): ", v->g->path, n->name, mdl_op_name(n->op)),  \
	 snprintf(err + strlen(err), err_len - strlen(err), __VA_ARGS__), -ENOTSUP)

static int is_rt(const struct mdl_infer *inf, int x)
{
	return x >= 0 && !inf->v[x].data;
}

/* 1 when value x is stored NHWC. */
static int nhwc_of(const struct gpu_cuda_variant *v, const struct mdl_infer *inf, int x)
{
	return v->be->nhwc && is_rt(inf, x) && inf->v[x].shape.rank == 4;
}

static void dense_strides(const struct mdl_shape *s, int *st)
{
	int m = 1;
	for (int k = s->rank - 1; k >= 0; k--) {
		st[k] = m;
		m *= (int)s->d[k];
	}
}

/* Element strides of value x per logical dim. */
static void strides_of(const struct gpu_cuda_variant *v, const struct mdl_infer *inf, int x,
		       int *st)
{
	const struct mdl_shape *s = &inf->v[x].shape;
	if (nhwc_of(v, inf, x)) {
		int C = (int)s->d[1], H = (int)s->d[2], W = (int)s->d[3];
		st[0] = H * W * C;
		st[1] = 1;
		st[2] = W * C;
		st[3] = C;
		return;
	}
	dense_strides(s, st);
}

static const void *dptr(const struct gpu_cuda_variant *v, const struct mdl_infer *inf, int x)
{
	if (x < 0)
		return NULL;
	if (is_rt(inf, x))
		return v->arena + v->off[x];
	return v->fam->dconst[x];
}

static void *yptr(const struct gpu_cuda_variant *v, int x)
{
	return v->arena + v->off[x];
}

int gpu_cuda_node_is_view(const struct mdl_node *n)
{
	switch (n->op) {
	case MDL_OP_RESHAPE:
	case MDL_OP_FLATTEN:
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_IDENTITY:
	case MDL_OP_CAST: return 1;
	default: return 0;
	}
}

static int same_shape(const struct mdl_shape *a, const struct mdl_shape *b)
{
	if (a->rank != b->rank)
		return 0;
	for (int k = 0; k < a->rank; k++)
		if (a->d[k] != b->d[k])
			return 0;
	return 1;
}

int gpu_cuda_node_check(struct gpu_cuda_variant *v, int i, const struct mdl_infer *inf, char *err,
			size_t err_len)
{
	const struct mdl_node *n = &v->g->nodes[i];
	const struct gpu_cuda_family *f = v->fam;
	for (int k = 0; k < n->n_in; k++) {
		int x = n->in[k];
		if (x < 0)
			continue;
		const struct mdl_tensor *t = &inf->v[x];
		int cslot = mdl_op_input_const(n->op, k);
		if (t->dtype != MDL_DTYPE_FLOAT && !cslot && !(n->op == MDL_OP_GATHER && k == 1))
			return WHY("integer tensors at run time are not supported");
		if (!t->data)
			continue;
		if (n->op == MDL_OP_CONV && k == 1) {
			if (!f->dconvw[x])
				return WHY("weights must be a 4-D initializer");
		} else if (n->op == MDL_OP_GATHER && k == 1) {
			if (!f->didx[x])
				return WHY("indices must be an int64 initializer");
		} else if (n->op == MDL_OP_BATCHNORM && k > 0) {
			if (!f->dbn[i])
				return WHY("parameters must be float initializers");
		} else if ((!cslot || (n->op == MDL_OP_CONV && k == 2)) && !f->dconst[x]) {
			return WHY("a constant computed from shapes feeds a run-time input "
				   "(not supported by the cuda backend)");
		}
	}
	const struct mdl_tensor *x0 = n->n_in && n->in[0] >= 0 ? &inf->v[n->in[0]] : NULL;
	const struct mdl_tensor *y0 = &inf->v[n->out[0]];
	int r = x0 ? x0->shape.rank : 0;
	switch (n->op) {
	case MDL_OP_SHAPE:
	case MDL_OP_CONSTANT: return WHY("op left unfolded");
	case MDL_OP_CAST:
		if (x0->dtype != MDL_DTYPE_FLOAT || (enum mdl_dtype)n->a.axis != MDL_DTYPE_FLOAT)
			return WHY("Cast between types at run time is not supported");
		break;
	case MDL_OP_CLIP:
		for (int k = 1; k < n->n_in; k++)
			if (n->in[k] >= 0 && inf->v[n->in[k]].dtype != MDL_DTYPE_FLOAT)
				return WHY("integer bounds");
		break;
	case MDL_OP_CONV:
	case MDL_OP_MAXPOOL:
	case MDL_OP_AVGPOOL:
		if (r != 4)
			return WHY("only 2-D (NCHW) windows are supported");
		break;
	case MDL_OP_GLOBALAVGPOOL:
	case MDL_OP_GLOBALMAXPOOL:
		if (r != 3 && r != 4)
			return WHY("input rank %d (3 or 4 supported)", r);
		break;
	case MDL_OP_RESIZE: {
		const struct mdl_tensor *in[32] = {0};
		float sc[MDL_MAX_DIMS];
		for (int k = 0; k < n->n_in; k++)
			in[k] = n->in[k] >= 0 ? &inf->v[n->in[k]] : NULL;
		if (r != 4 || mdl_node_resize_scales(n, in, sc) ||
		    x0->shape.d[0] != y0->shape.d[0] || x0->shape.d[1] != y0->shape.d[1])
			return WHY("only the two last axes of a 4-D tensor can be resized");
		break;
	}
	case MDL_OP_GATHER:
		if (nhwc_of(v, inf, n->out[0]) && inf->v[n->in[1]].shape.rank != 1)
			return WHY("indices of rank != 1 into a 4-D result (fp16 layout)");
		break;
	case MDL_OP_MATMUL: {
		int ra = x0->shape.rank, rb = inf->v[n->in[1]].shape.rank;
		int rr = (ra > rb ? ra : rb);
		if (ra < 1 || rb < 1)
			return WHY("scalar operand");
		if (nhwc_of(v, inf, n->out[0]) && (ra < 2 || rb < 2 || y0->shape.rank != rr))
			return WHY("1-D operand with a 4-D result (fp16 layout)");
		break;
	}
	case MDL_OP_GEMM:
		if (r != 2 || inf->v[n->in[1]].shape.rank != 2)
			return WHY("operands must be 2-D");
		break;
	default: break;
	}
	if (gpu_cuda_node_is_view(n) && x0 && !x0->data) {
		int a = nhwc_of(v, inf, n->in[0]), b = nhwc_of(v, inf, n->out[0]);
		if (a && b && !same_shape(&x0->shape, &y0->shape))
			return WHY("reshape between different 4-D shapes (fp16 layout)");
		v->copy_view[i] = a != b;
	}
	return 0;
}

size_t gpu_cuda_node_pad_bytes(const struct gpu_cuda_variant *v, int i, const struct mdl_infer *inf)
{
	const struct mdl_node *n = &v->g->nodes[i];
	if (n->op != MDL_OP_CONV)
		return 0;
	const struct mdl_shape *xs = &inf->v[n->in[0]].shape;
	int64_t pads[4], hw[2];
	mdl_node_window(n, xs, pads, hw);
	if (pads[0] == pads[2] && pads[1] == pads[3])
		return 0;
	return (size_t)(xs->d[0] * xs->d[1] * (xs->d[2] + pads[0] + pads[2]) *
			(xs->d[3] + pads[1] + pads[3])) *
	       v->be->esize;
}

/* ---- step list ------------------------------------------------------------------------------- */

static struct gpu_cuda_step *add_step(struct gpu_cuda_plan *p, enum gpu_cuda_step_kind kind,
				      enum gpu_cuda_dt dt)
{
	if (p->n_steps == p->cap) {
		int cap = p->cap ? 2 * p->cap : 64;
		void *q = realloc(p->steps, (size_t)cap * sizeof *p->steps);
		if (!q)
			return NULL;
		p->steps = (struct gpu_cuda_step *)q;
		p->cap = cap;
	}
	struct gpu_cuda_step *s = &p->steps[p->n_steps++];
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->ta = s->ty = dt;
	return s;
}

/* Fills a map over logical dims d[0..rank) with strides per operand (NULL: 0). phys: walk
 * 4-D dims as N, H, W, C (the NHWC output's memory order). */
static void map_fill(struct gpu_cuda_map *m, int op, int rank, const int64_t *d, const int *sy,
		     const int *sa, const int *sb, const int *sc, int phys)
{
	static const int nhwc_ord[4] = {0, 2, 3, 1};
	memset(m, 0, sizeof *m);
	m->op = op;
	m->rank = rank;
	m->gdim = -1;
	m->n = 1;
	for (int k = 0; k < rank; k++) {
		int j = phys && rank == 4 ? nhwc_ord[k] : k;
		m->d[k] = (int)d[j];
		m->sy[k] = sy ? sy[j] : 0;
		m->sa[k] = sa ? sa[j] : 0;
		m->sb[k] = sb ? sb[j] : 0;
		m->sc[k] = sc ? sc[j] : 0;
		m->n *= (int)d[j];
	}
}

/* Strides of x right-aligned to rank, 0 along broadcast (size-1) dims. */
static void bcast_strides(const struct gpu_cuda_variant *v, const struct mdl_infer *inf, int x,
			  int rank, int *s)
{
	int st[GC_MAXR];
	const struct mdl_shape *xs = &inf->v[x].shape;
	strides_of(v, inf, x, st);
	for (int k = 0; k < rank; k++) {
		int j = k - (rank - xs->rank);
		s[k] = j >= 0 && xs->d[j] != 1 ? st[j] : 0;
	}
}

static int unary_op(enum mdl_op op)
{
	switch (op) {
	case MDL_OP_RELU: return GC_M_RELU;
	case MDL_OP_LEAKYRELU: return GC_M_LEAKY;
	case MDL_OP_CLIP: return GC_M_CLIP;
	case MDL_OP_SIGMOID: return GC_M_SIGMOID;
	case MDL_OP_HARDSIGMOID: return GC_M_HSIGMOID;
	case MDL_OP_HARDSWISH: return GC_M_HSWISH;
	case MDL_OP_TANH: return GC_M_TANH;
	case MDL_OP_EXP: return GC_M_EXP;
	case MDL_OP_NEG: return GC_M_NEG;
	case MDL_OP_ABS: return GC_M_ABS;
	case MDL_OP_SQRT: return GC_M_SQRT;
	case MDL_OP_ADD: return GC_M_ADD;
	case MDL_OP_SUB: return GC_M_SUB;
	case MDL_OP_MUL: return GC_M_MUL;
	case MDL_OP_DIV: return GC_M_DIV;
	case MDL_OP_PRELU: return GC_M_PRELU;
	default: return -1;
	}
}

/* Source index tables of one resized axis (same arithmetic as the CPU backend). */
static float src_coord(enum mdl_resize_coord m, int64_t o, float scale, int64_t in)
{
	float out = (float)in * scale;
	switch (m) {
	case MDL_COORD_PYTORCH_HALF_PIXEL: return out > 1 ? ((float)o + 0.5f) / scale - 0.5f : 0.0f;
	case MDL_COORD_ALIGN_CORNERS:
		return out == 1 ? 0.0f : (float)o * (float)(in - 1) / (out - 1);
	case MDL_COORD_ASYMMETRIC: return (float)o / scale;
	case MDL_COORD_TF_HALF_PIXEL_FOR_NN: return ((float)o + 0.5f) / scale;
	default: return ((float)o + 0.5f) / scale - 0.5f;
	}
}

static void resize_axis(const struct mdl_attrs *at, int64_t in, int64_t out, float scale, int *i0,
			int *i1, float *w)
{
	for (int64_t o = 0; o < out; o++) {
		float c = src_coord(at->coord, o, scale, in);
		if (at->mode == MDL_RESIZE_NEAREST) {
			float f = floorf(c), frac = c - f;
			int64_t q;
			switch (at->nearest) {
			case MDL_NEAREST_FLOOR: q = (int64_t)f; break;
			case MDL_NEAREST_CEIL: q = (int64_t)ceilf(c); break;
			case MDL_NEAREST_ROUND_PREFER_CEIL:
				q = (int64_t)(frac >= 0.5f ? f + 1 : f);
				break;
			default: q = (int64_t)(frac > 0.5f ? f + 1 : f); break;
			}
			q = q < 0 ? 0 : q >= in ? in - 1 : q;
			i0[o] = i1[o] = (int)q;
			w[o] = 0.0f;
		} else {
			c = c < 0 ? 0 : c > (float)(in - 1) ? (float)(in - 1) : c;
			int64_t q = (int64_t)floorf(c);
			i0[o] = (int)q;
			i1[o] = (int)(q + 1 < in ? q + 1 : in - 1);
			w[o] = c - (float)q;
		}
	}
}

static int build_resize(struct gpu_cuda_variant *v, const struct mdl_infer *inf, int i,
			struct gpu_cuda_step *s, char *err, size_t err_len)
{
	const struct mdl_node *n = &v->g->nodes[i];
	const struct mdl_shape *xs = &inf->v[n->in[0]].shape, *os = &inf->v[n->out[0]].shape;
	const struct mdl_tensor *in[32] = {0};
	float sc[MDL_MAX_DIMS];
	int rc = -EIO;
	for (int k = 0; k < n->n_in; k++)
		in[k] = n->in[k] >= 0 ? &inf->v[n->in[k]] : NULL;
	if (mdl_node_resize_scales(n, in, sc))
		return WHY("bad scales");
	int H = (int)xs->d[2], W = (int)xs->d[3], OH = (int)os->d[2], OW = (int)os->d[3];
	/* tables: iy0, iy1 [OH], ix0, ix1 [OW] (int), wy [OH], wx [OW] (float); one per batch
	 * size (they only depend on H, W, OH, OW, so a later batch finds them the same) */
	size_t words = (size_t)(3 * OH + 3 * OW);
	int *t = (int *)malloc(words * sizeof(int));
	if (!t)
		return -ENOMEM;
	int *iy0 = t, *iy1 = t + OH, *ix0 = t + 2 * OH, *ix1 = t + 2 * OH + OW;
	float *wy = (float *)(t + 2 * OH + 2 * OW), *wx = wy + OH;
	resize_axis(&n->a, H, OH, sc[2], iy0, iy1, wy);
	resize_axis(&n->a, W, OW, sc[3], ix0, ix1, wx);
	if (!v->rtab[i])
		GC_CU(gpu_cuda_dalloc(v->be, &v->rtab[i], words * sizeof(int)));
	GC_CU(gpu_cuda_dcopy(v->be, v->rtab[i], t, words * sizeof(int)));
	free(t);
	t = NULL;
	{
		struct gpu_cuda_resize *r = &s->u.rs;
		const int *d = (const int *)v->rtab[i];
		r->linear = n->a.mode == MDL_RESIZE_LINEAR;
		r->nhwc = nhwc_of(v, inf, n->out[0]);
		r->N = (int)xs->d[0], r->C = (int)xs->d[1], r->H = H, r->W = W, r->OH = OH,
		r->OW = OW;
		strides_of(v, inf, n->in[0], r->sx);
		strides_of(v, inf, n->out[0], r->sy);
		r->iy0 = d, r->iy1 = d + OH, r->ix0 = d + 2 * OH, r->ix1 = d + 2 * OH + OW;
		r->wy = (const float *)(d + 2 * OH + 2 * OW), r->wx = r->wy + OH;
	}
	return 0;
fail:
	free(t);
	return rc;
}

static int build_conv(struct gpu_cuda_variant *v, const struct mdl_infer *inf, int i,
		      struct gpu_cuda_plan *p, char *err, size_t err_len)
{
	const struct mdl_node *n = &v->g->nodes[i];
	const struct mdl_shape *xs = &inf->v[n->in[0]].shape, *ws = &inf->v[n->in[1]].shape;
	const struct mdl_shape *os = &inf->v[n->out[0]].shape;
	enum gpu_cuda_dt dt = v->be->dt;
	int64_t pads[4], hw[2];
	struct gpu_cuda_conv_geom geo;
	struct gpu_cuda_step *s;
	const void *x = dptr(v, inf, n->in[0]);
	void *y = yptr(v, n->out[0]);
	int st_y[4], rc;
	mdl_node_window(n, xs, pads, hw);
	memset(&geo, 0, sizeof geo);
	geo.N = (int)xs->d[0], geo.C = (int)xs->d[1], geo.H = (int)xs->d[2], geo.W = (int)xs->d[3];
	geo.M = (int)ws->d[0], geo.KH = (int)ws->d[2], geo.KW = (int)ws->d[3];
	geo.sh = (int)n->a.stride[0], geo.sw = (int)n->a.stride[1];
	geo.dh = (int)n->a.dil[0], geo.dw = (int)n->a.dil[1];
	geo.group = (int)n->a.group;
	if (geo.group < 1 || geo.C % geo.group || geo.M % geo.group ||
	    ws->d[1] != geo.C / geo.group)
		return WHY("weights do not match the input channels and groups");
	if (pads[0] == pads[2] && pads[1] == pads[3]) {
		geo.ph = (int)pads[0], geo.pw = (int)pads[1];
	} else { /* cuDNN pads symmetrically: pad explicitly into v->pad first */
		struct mdl_shape ps = *xs;
		int sp[4], sx[4];
		ps.d[2] += pads[0] + pads[2];
		ps.d[3] += pads[1] + pads[3];
		if (v->be->nhwc) {
			int C = (int)ps.d[1], H = (int)ps.d[2], W = (int)ps.d[3];
			sp[0] = H * W * C, sp[1] = 1, sp[2] = W * C, sp[3] = C;
		} else {
			dense_strides(&ps, sp);
		}
		if (!(s = add_step(p, GC_S_MEMSET, dt)))
			return -ENOMEM;
		s->y = v->pad;
		s->u.bytes = (size_t)mdl_shape_numel(&ps) * v->be->esize;
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, n->in[0], sx);
		map_fill(&s->u.map, GC_M_COPY, 4, xs->d, sp, sx, NULL, NULL, v->be->nhwc);
		s->u.map.base_y = (int)(pads[0] * sp[2] + pads[1] * sp[3]);
		s->a = x;
		s->y = v->pad;
		x = v->pad;
		geo.H = (int)ps.d[2], geo.W = (int)ps.d[3];
	}
	int eh = geo.dh * (geo.KH - 1) + 1, ew = geo.dw * (geo.KW - 1) + 1;
	if ((geo.H + 2 * geo.ph - eh) / geo.sh + 1 != os->d[2] ||
	    (geo.W + 2 * geo.pw - ew) / geo.sw + 1 != os->d[3] || os->d[1] != geo.M)
		return WHY("output shape does not match the convolution geometry");
	if (p->n_convs == p->cap_convs) {
		int cap = p->cap_convs ? 2 * p->cap_convs : 32;
		void *q = realloc(p->convs, (size_t)cap * sizeof *p->convs);
		if (!q)
			return -ENOMEM;
		p->convs = (struct gpu_cuda_conv *)q;
		p->cap_convs = cap;
	}
	if ((rc = gpu_cuda_conv_setup(&v->be->cc, &p->convs[p->n_convs], &geo, x,
				      v->fam->dconvw[n->in[1]], y, err, err_len))) {
		char m[256];
		snprintf(m, sizeof m, "%s", err);
		snprintf(err, err_len, "%s: node '%s' (Conv): %s", v->g->path, n->name, m);
		return rc;
	}
	if (!(s = add_step(p, GC_S_CONV, dt)))
		return -ENOMEM;
	s->conv = p->n_convs++;
	s->a = x;
	s->b = v->fam->dconvw[n->in[1]];
	s->y = y;
	int has_bias = n->n_in > 2 && n->in[2] >= 0;
	if (!has_bias && n->a.act == MDL_ACT_NONE)
		return 0;
	/* epilogue: y = act(y + bias[c]) in place */
	static const int chan[4] = {0, 1, 0, 0};
	if (!(s = add_step(p, GC_S_MAP, dt)))
		return -ENOMEM;
	strides_of(v, inf, n->out[0], st_y);
	map_fill(&s->u.map, GC_M_BIAS_ACT, 4, os->d, st_y, st_y, has_bias ? chan : NULL, NULL,
		 v->be->nhwc);
	s->u.map.iact = n->a.act;
	s->u.map.p0 = n->a.act_a;
	s->u.map.p1 = n->a.act_b;
	s->a = y;
	s->b = has_bias ? v->fam->dconst[n->in[2]] : NULL;
	s->y = y;
	return 0;
}

static int build_contract(struct gpu_cuda_variant *v, const struct mdl_infer *inf, int i,
			  struct gpu_cuda_step *s)
{
	const struct mdl_node *n = &v->g->nodes[i];
	struct gpu_cuda_contract *c = &s->u.ct;
	const struct mdl_shape *as = &inf->v[n->in[0]].shape, *bs = &inf->v[n->in[1]].shape;
	const struct mdl_shape *os = &inf->v[n->out[0]].shape;
	int sa[GC_MAXR], sb[GC_MAXR], sy[GC_MAXR];
	strides_of(v, inf, n->in[0], sa);
	strides_of(v, inf, n->in[1], sb);
	memset(c, 0, sizeof *c);
	s->a = dptr(v, inf, n->in[0]);
	s->b = dptr(v, inf, n->in[1]);
	s->y = yptr(v, n->out[0]);
	if (n->op == MDL_OP_GEMM) {
		const struct mdl_attrs *at = &n->a;
		c->rank = 2;
		c->d[0] = (int)os->d[0], c->d[1] = (int)os->d[1];
		c->K = (int)(at->trans_a ? as->d[0] : as->d[1]);
		c->sa[0] = at->trans_a ? sa[1] : sa[0];
		c->ka = at->trans_a ? sa[0] : sa[1];
		c->sb[1] = at->trans_b ? sb[0] : sb[1];
		c->kb = at->trans_b ? sb[1] : sb[0];
		strides_of(v, inf, n->out[0], sy);
		c->sy[0] = sy[0], c->sy[1] = sy[1];
		c->alpha = at->alpha;
		c->beta = at->beta;
		if (n->n_in > 2 && n->in[2] >= 0) {
			bcast_strides(v, inf, n->in[2], 2, c->sc);
			c->has_c = 1;
			s->c = dptr(v, inf, n->in[2]);
		}
		c->n = c->d[0] * c->d[1];
		return 0;
	}
	/* MatMul: iteration dims = broadcast batch dims, M, N */
	int ra = as->rank, rb = bs->rank;
	int bra = ra >= 2 ? ra - 2 : 0, brb = rb >= 2 ? rb - 2 : 0;
	int r = bra > brb ? bra : brb;
	int64_t M = ra >= 2 ? as->d[ra - 2] : 1, N = rb >= 2 ? bs->d[rb - 1] : 1;
	c->rank = r + 2;
	for (int k = 0; k < r; k++) {
		int ja = k - (r - bra), jb = k - (r - brb);
		int64_t da = ja >= 0 ? as->d[ja] : 1, db = jb >= 0 ? bs->d[jb] : 1;
		c->d[k] = (int)(da > db ? da : db);
		c->sa[k] = ja >= 0 && da != 1 ? sa[ja] : 0;
		c->sb[k] = jb >= 0 && db != 1 ? sb[jb] : 0;
	}
	c->d[r] = (int)M, c->d[r + 1] = (int)N;
	c->sa[r] = ra >= 2 ? sa[ra - 2] : 0;
	c->ka = sa[ra - 1];
	c->sb[r + 1] = rb >= 2 ? sb[rb - 1] : 0;
	c->kb = rb >= 2 ? sb[rb - 2] : sb[0];
	c->K = (int)as->d[ra - 1];
	if (os->rank == r + 2) {
		strides_of(v, inf, n->out[0], sy);
		for (int k = 0; k < r + 2; k++)
			c->sy[k] = sy[k];
	} else { /* a 1-D operand: the result drops that dim; it is dense (checked) */
		struct mdl_shape full;
		full.rank = r + 2;
		for (int k = 0; k < r + 2; k++)
			full.d[k] = c->d[k];
		dense_strides(&full, c->sy);
	}
	c->alpha = 1.0f;
	c->n = 1;
	for (int k = 0; k < r + 2; k++)
		c->n *= c->d[k];
	return 0;
}

static int build_node(struct gpu_cuda_variant *v, int b, int i, struct gpu_cuda_plan *p, char *err,
		      size_t err_len)
{
	const struct mdl_node *n = &v->g->nodes[i];
	const struct mdl_infer *inf = v->inf[b];
	enum gpu_cuda_dt dt = v->be->dt;
	const struct mdl_tensor *xt = n->n_in && n->in[0] >= 0 ? &inf->v[n->in[0]] : NULL;
	const struct mdl_shape *os = &inf->v[n->out[0]].shape;
	int y0 = n->out[0], phys = nhwc_of(v, inf, y0);
	int sy[GC_MAXR], sa[GC_MAXR], sb[GC_MAXR];
	struct gpu_cuda_step *s;
	int op = unary_op(n->op);
	if (op >= 0 && n->op < MDL_OP_ADD) { /* unary */
		float p0 = n->a.alpha, p1 = n->a.beta;
		if (n->op == MDL_OP_CLIP) {
			if (n->n_in > 1 && n->in[1] >= 0)
				p0 = ((const float *)inf->v[n->in[1]].data)[0];
			if (n->n_in > 2 && n->in[2] >= 0)
				p1 = ((const float *)inf->v[n->in[2]].data)[0];
		}
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, y0, sy);
		strides_of(v, inf, n->in[0], sa);
		map_fill(&s->u.map, op, os->rank, os->d, sy, sa, NULL, NULL, phys);
		s->u.map.p0 = p0, s->u.map.p1 = p1;
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	if (op >= 0) { /* binary with broadcasting */
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, y0, sy);
		bcast_strides(v, inf, n->in[0], os->rank, sa);
		bcast_strides(v, inf, n->in[1], os->rank, sb);
		map_fill(&s->u.map, op, os->rank, os->d, sy, sa, sb, NULL, phys);
		s->a = dptr(v, inf, n->in[0]);
		s->b = dptr(v, inf, n->in[1]);
		s->y = yptr(v, y0);
		return 0;
	}
	switch (n->op) {
	case MDL_OP_CONV: return build_conv(v, inf, i, p, err, err_len);
	case MDL_OP_BATCHNORM: {
		int ch[GC_MAXR] = {0};
		ch[1] = 1;
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, y0, sy);
		strides_of(v, inf, n->in[0], sa);
		map_fill(&s->u.map, GC_M_AFFINE, os->rank, os->d, sy, sa, ch, ch, phys);
		s->a = dptr(v, inf, n->in[0]);
		s->b = v->fam->dbn[i];
		s->c = (const char *)v->fam->dbn[i] + xt->shape.d[1] * v->be->esize;
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_GEMM:
	case MDL_OP_MATMUL:
		if (!(s = add_step(p, GC_S_CONTRACT, dt)))
			return -ENOMEM;
		return build_contract(v, inf, i, s);
	case MDL_OP_MAXPOOL:
	case MDL_OP_AVGPOOL:
	case MDL_OP_GLOBALAVGPOOL:
	case MDL_OP_GLOBALMAXPOOL: {
		if (!(s = add_step(p, GC_S_POOL, dt)))
			return -ENOMEM;
		struct gpu_cuda_pool *q = &s->u.pool;
		const struct mdl_shape *xs = &xt->shape;
		int sx[GC_MAXR], syy[GC_MAXR];
		strides_of(v, inf, n->in[0], sx);
		strides_of(v, inf, y0, syy);
		q->max = n->op == MDL_OP_MAXPOOL || n->op == MDL_OP_GLOBALMAXPOOL;
		q->global = n->op == MDL_OP_GLOBALAVGPOOL || n->op == MDL_OP_GLOBALMAXPOOL;
		q->N = (int)xs->d[0], q->C = (int)xs->d[1], q->H = (int)xs->d[2];
		q->W = xs->rank == 4 ? (int)xs->d[3] : 1;
		for (int k = 0; k < 4; k++) {
			q->sx[k] = k < xs->rank ? sx[k] : 0;
			q->sy[k] = k < os->rank ? syy[k] : 0;
		}
		if (!q->global) {
			int64_t pads[4], hw[2];
			mdl_node_window(n, xs, pads, hw);
			q->OH = (int)hw[0], q->OW = (int)hw[1];
			q->kh = (int)n->a.kernel[0], q->kw = (int)n->a.kernel[1];
			q->sh = (int)n->a.stride[0], q->sw = (int)n->a.stride[1];
			q->dh = (int)n->a.dil[0], q->dw = (int)n->a.dil[1];
			q->pt = (int)pads[0], q->pl = (int)pads[1], q->pb = (int)pads[2];
			q->pr = (int)pads[3];
			q->count_include_pad = n->a.count_include_pad;
			q->nhwc = phys;
		}
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_RESIZE:
		if (!(s = add_step(p, GC_S_RESIZE, dt)))
			return -ENOMEM;
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return build_resize(v, inf, i, s, err, err_len);
	case MDL_OP_SOFTMAX: {
		if (!(s = add_step(p, GC_S_SOFTMAX, dt)))
			return -ENOMEM;
		struct gpu_cuda_softmax *q = &s->u.sm;
		const struct mdl_shape *xs = &xt->shape;
		int ax = mdl_axis(n->a.axis, xs->rank);
		q->rank = xs->rank;
		strides_of(v, inf, n->in[0], q->sx);
		strides_of(v, inf, y0, q->sy);
		q->rows = q->nred = 1;
		for (int k = 0; k < xs->rank; k++) {
			q->d[k] = (int)xs->d[k];
			int red = n->a.legacy_softmax ? k >= ax : k == ax;
			q->red_mask |= red << k;
			*(red ? &q->nred : &q->rows) *= (int)xs->d[k];
		}
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_CONCAT: {
		int ax = mdl_axis(n->a.axis, os->rank);
		int64_t at = 0;
		strides_of(v, inf, y0, sy);
		for (int k = 0; k < n->n_in; k++) {
			const struct mdl_shape *is = &inf->v[n->in[k]].shape;
			if (!(s = add_step(p, GC_S_MAP, dt)))
				return -ENOMEM;
			strides_of(v, inf, n->in[k], sa);
			map_fill(&s->u.map, GC_M_COPY, is->rank, is->d, sy, sa, NULL, NULL, phys);
			s->u.map.base_y = (int)(at * sy[ax]);
			s->a = dptr(v, inf, n->in[k]);
			s->y = yptr(v, y0);
			at += is->d[ax];
		}
		return 0;
	}
	case MDL_OP_SPLIT: {
		int ax;
		int64_t sizes[16], at = 0;
		const struct mdl_tensor *in[32] = {0};
		for (int k = 0; k < n->n_in; k++)
			in[k] = n->in[k] >= 0 ? &inf->v[n->in[k]] : NULL;
		if (mdl_node_split(n, in, &ax, sizes))
			return WHY("bad split");
		strides_of(v, inf, n->in[0], sa);
		for (int k = 0; k < n->n_out; k++) {
			int o = n->out[k];
			if (is_rt(inf, o) && v->off[o] >= 0) {
				const struct mdl_shape *ss = &inf->v[o].shape;
				if (!(s = add_step(p, GC_S_MAP, dt)))
					return -ENOMEM;
				strides_of(v, inf, o, sy);
				map_fill(&s->u.map, GC_M_COPY, ss->rank, ss->d, sy, sa, NULL, NULL,
					 nhwc_of(v, inf, o));
				s->u.map.base_a = (int)(at * sa[ax]);
				s->a = dptr(v, inf, n->in[0]);
				s->y = yptr(v, o);
			}
			at += sizes[k];
		}
		return 0;
	}
	case MDL_OP_TRANSPOSE: {
		int perm[MDL_MAX_DIMS], sx[GC_MAXR];
		mdl_node_perm(n, xt->shape.rank, perm);
		strides_of(v, inf, n->in[0], sx);
		for (int k = 0; k < os->rank; k++)
			sa[k] = sx[perm[k]];
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, y0, sy);
		map_fill(&s->u.map, GC_M_COPY, os->rank, os->d, sy, sa, NULL, NULL, phys);
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_SLICE: {
		int64_t start[MDL_MAX_DIMS], step[MDL_MAX_DIMS], base = 0;
		const struct mdl_tensor *in[32] = {0};
		for (int k = 0; k < n->n_in; k++)
			in[k] = n->in[k] >= 0 ? &inf->v[n->in[k]] : NULL;
		if (mdl_node_slice(n, in, start, step))
			return WHY("bad slice");
		strides_of(v, inf, n->in[0], sa);
		for (int k = 0; k < xt->shape.rank; k++) {
			base += start[k] * sa[k];
			sa[k] = (int)(sa[k] * step[k]);
		}
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		strides_of(v, inf, y0, sy);
		map_fill(&s->u.map, GC_M_COPY, os->rank, os->d, sy, sa, NULL, NULL, phys);
		s->u.map.base_a = (int)base;
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_GATHER: {
		const struct mdl_shape *xs = &xt->shape, *is = &inf->v[n->in[1]].shape;
		int ax = mdl_axis(n->a.axis, xs->rank), ir = is->rank, sx[GC_MAXR], so[GC_MAXR];
		int64_t d[GC_MAXR], ni = mdl_shape_numel(is);
		strides_of(v, inf, n->in[0], sx);
		strides_of(v, inf, y0, so);
		/* iteration dims: x[:ax], all indices (flattened), x[ax+1:] */
		for (int k = 0; k < xs->rank; k++) {
			d[k] = k == ax ? ni : xs->d[k];
			sa[k] = sx[k];
			if (k < ax)
				sy[k] = so[k];
			else if (k > ax)
				sy[k] = so[k + ir - 1];
			else
				sy[k] = ir == 0 ? 0 : so[ax + ir - 1];
		}
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		map_fill(&s->u.map, GC_M_COPY, xs->rank, d, sy, sa, NULL, NULL, phys && ir == 1);
		s->u.map.gdim = phys && ir == 1 && xs->rank == 4 ? (ax == 1   ? 3
								    : ax >= 2 ? ax - 1
									      : 0)
								 : ax;
		s->u.map.gidx = v->fam->didx[n->in[1]];
		s->u.map.glen = (int)xs->d[ax];
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	case MDL_OP_RESHAPE:
	case MDL_OP_FLATTEN:
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_IDENTITY:
	case MDL_OP_CAST: {
		if (!v->copy_view[i])
			return 0; /* storage shared with input 0 */
		const struct mdl_shape *xs = &xt->shape;
		if (!(s = add_step(p, GC_S_MAP, dt)))
			return -ENOMEM;
		if (phys) { /* dense input -> NHWC result: walk the result */
			strides_of(v, inf, y0, sy);
			dense_strides(os, sa);
			map_fill(&s->u.map, GC_M_COPY, os->rank, os->d, sy, sa, NULL, NULL, 1);
		} else { /* NHWC input -> dense result: walk the input */
			strides_of(v, inf, n->in[0], sa);
			dense_strides(xs, sy);
			map_fill(&s->u.map, GC_M_COPY, xs->rank, xs->d, sy, sa, NULL, NULL, 1);
		}
		s->a = dptr(v, inf, n->in[0]);
		s->y = yptr(v, y0);
		return 0;
	}
	default: return WHY("op not implemented by the cuda backend");
	}
}

/* Merges adjacent iteration dims that every operand walks contiguously (stride of the outer
 * = stride of the inner * its size), so most maps index over one to three dims. */
static void map_collapse(struct gpu_cuda_map *m)
{
	if (m->gdim >= 0)
		return;
	int r = 0; /* dims kept so far, in m->d[0..r) */
	for (int k = 0; k < m->rank; k++) {
		if (r > 0) {
			int j = r - 1;
			int ok = m->sy[j] == m->sy[k] * m->d[k] && m->sa[j] == m->sa[k] * m->d[k] &&
				 m->sb[j] == m->sb[k] * m->d[k] && m->sc[j] == m->sc[k] * m->d[k];
			if (ok || m->d[j] == 1) {
				m->d[j] *= m->d[k];
				m->sy[j] = m->sy[k], m->sa[j] = m->sa[k];
				m->sb[j] = m->sb[k], m->sc[j] = m->sc[k];
				continue;
			}
		}
		m->d[r] = m->d[k];
		m->sy[r] = m->sy[k], m->sa[r] = m->sa[k], m->sb[r] = m->sb[k], m->sc[r] = m->sc[k];
		r++;
	}
	m->rank = r;
}

void gpu_cuda_plan_release(struct gpu_cuda_plan *p)
{
	if (p->exec)
		cudaGraphExecDestroy(p->exec);
	for (int i = 0; i < p->n_convs; i++)
		gpu_cuda_conv_release(&p->convs[i]);
	free(p->steps);
	free(p->convs);
	memset(p, 0, sizeof *p);
}

int gpu_cuda_plan_build(struct gpu_cuda_variant *v, int b, char *err, size_t err_len)
{
	struct gpu_cuda_plan *p = &v->plans[b];
	const struct mdl_infer *inf = v->inf[b];
	const struct mdl_graph *g = v->g;
	enum gpu_cuda_dt dt = v->be->dt;
	struct gpu_cuda_step *s;
	int sy[GC_MAXR], sa[GC_MAXR], rc;
	/* fp16: host floats (dense NCHW) -> activations */
	for (int i = 0; dt != GC_F32 && i < g->n_inputs; i++) {
		int x = g->inputs[i];
		if (!v->din[i])
			continue;
		const struct mdl_shape *xs = &inf->v[x].shape;
		if (!(s = add_step(p, GC_S_MAP, dt)))
			goto nomem;
		s->ta = GC_F32;
		strides_of(v, inf, x, sy);
		dense_strides(xs, sa);
		map_fill(&s->u.map, GC_M_COPY, xs->rank, xs->d, sy, sa, NULL, NULL,
			 nhwc_of(v, inf, x));
		s->a = v->din[i];
		s->y = yptr(v, x);
	}
	for (int i = 0; i < g->n_nodes; i++) {
		if (!v->run_node[i])
			continue;
		if ((rc = build_node(v, b, i, p, err, err_len))) {
			if (rc == -ENOMEM)
				goto nomem;
			return rc;
		}
	}
	/* outputs: (fp16: to dense floats) then to the pinned host buffers */
	for (int i = 0; i < g->n_outputs; i++) {
		int o = g->outputs[i];
		if (!is_rt(inf, o))
			continue;
		const struct mdl_shape *os = &inf->v[o].shape;
		size_t bytes = (size_t)mdl_shape_numel(os) * sizeof(float);
		const void *src = yptr(v, o);
		if (dt != GC_F32) {
			if (!(s = add_step(p, GC_S_MAP, dt)))
				goto nomem;
			s->ty = GC_F32;
			strides_of(v, inf, o, sa);
			dense_strides(os, sy);
			map_fill(&s->u.map, GC_M_COPY, os->rank, os->d, sy, sa, NULL, NULL, 0);
			s->a = src;
			s->y = v->dout[i];
			src = v->dout[i];
		}
		if (!(s = add_step(p, GC_S_MEMCPY, dt)))
			goto nomem;
		s->a = src;
		s->y = v->hout[i];
		s->u.bytes = bytes;
	}
	for (int i = 0; i < p->n_steps; i++) {
		if (p->steps[i].kind == GC_S_CONV)
			p->steps[i].cv = &p->convs[p->steps[i].conv];
		if (p->steps[i].kind == GC_S_MAP)
			map_collapse(&p->steps[i].u.map);
	}
	return 0;
nomem:
	snprintf(err, err_len, "%s: out of memory", g->path);
	return -ENOMEM;
}

int gpu_cuda_step_run(struct gpu_cuda_conv_ctx *cc, const struct gpu_cuda_step *s, void *ws,
		      cudaStream_t st)
{
	switch (s->kind) {
	case GC_S_MAP:
		return gpu_cuda_launch_map(&s->u.map, s->ta, s->ty, s->a, s->b, s->c, s->y, st);
	case GC_S_CONV: return gpu_cuda_conv_run(cc, s->cv, s->a, s->b, s->y, ws, st);
	case GC_S_POOL: return gpu_cuda_launch_pool(&s->u.pool, s->ty, s->a, s->y, st);
	case GC_S_RESIZE: return gpu_cuda_launch_resize(&s->u.rs, s->ty, s->a, s->y, st);
	case GC_S_SOFTMAX: return gpu_cuda_launch_softmax(&s->u.sm, s->ty, s->a, s->y, st);
	case GC_S_CONTRACT:
		return gpu_cuda_launch_contract(&s->u.ct, s->ty, s->a, s->b, s->c, s->y, st);
	case GC_S_MEMSET:
		if (st == GC_HOST)
			memset(s->y, 0, s->u.bytes);
		else
			GC_CU_RET(cudaMemsetAsync(s->y, 0, s->u.bytes, st));
		return 0;
	case GC_S_MEMCPY:
		if (st == GC_HOST)
			memcpy(s->y, s->a, s->u.bytes);
		else
			GC_CU_RET(cudaMemcpyAsync(s->y, s->a, s->u.bytes, cudaMemcpyDefault, st));
		return 0;
	}
	return -EINVAL;
}
