/* The op table: arity, which inputs must be constant, and per-op inference (dtype, shape
 * and, for shape arithmetic, the values themselves). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/mdl_priv.h"

struct op_desc {
	const char *name;
	int min_in, max_in, min_out, max_out;
	unsigned const_mask; /* bit i: input slot i must be constant */
};

static const struct op_desc ops[MDL_OP_COUNT] = {
	[MDL_OP_CONV] = {"Conv", 2, 3, 1, 1, 0x6},
	[MDL_OP_BATCHNORM] = {"BatchNormalization", 5, 5, 1, 1, 0x1e},
	[MDL_OP_GEMM] = {"Gemm", 2, 3, 1, 1, 0},
	[MDL_OP_MATMUL] = {"MatMul", 2, 2, 1, 1, 0},
	[MDL_OP_RELU] = {"Relu", 1, 1, 1, 1, 0},
	[MDL_OP_LEAKYRELU] = {"LeakyRelu", 1, 1, 1, 1, 0},
	[MDL_OP_CLIP] = {"Clip", 1, 3, 1, 1, 0x6},
	[MDL_OP_SIGMOID] = {"Sigmoid", 1, 1, 1, 1, 0},
	[MDL_OP_HARDSIGMOID] = {"HardSigmoid", 1, 1, 1, 1, 0},
	[MDL_OP_HARDSWISH] = {"HardSwish", 1, 1, 1, 1, 0},
	[MDL_OP_TANH] = {"Tanh", 1, 1, 1, 1, 0},
	[MDL_OP_EXP] = {"Exp", 1, 1, 1, 1, 0},
	[MDL_OP_NEG] = {"Neg", 1, 1, 1, 1, 0},
	[MDL_OP_ABS] = {"Abs", 1, 1, 1, 1, 0},
	[MDL_OP_SQRT] = {"Sqrt", 1, 1, 1, 1, 0},
	[MDL_OP_ADD] = {"Add", 2, 2, 1, 1, 0},
	[MDL_OP_SUB] = {"Sub", 2, 2, 1, 1, 0},
	[MDL_OP_MUL] = {"Mul", 2, 2, 1, 1, 0},
	[MDL_OP_DIV] = {"Div", 2, 2, 1, 1, 0},
	[MDL_OP_PRELU] = {"PRelu", 2, 2, 1, 1, 0},
	[MDL_OP_MAXPOOL] = {"MaxPool", 1, 1, 1, 1, 0},
	[MDL_OP_AVGPOOL] = {"AveragePool", 1, 1, 1, 1, 0},
	[MDL_OP_GLOBALAVGPOOL] = {"GlobalAveragePool", 1, 1, 1, 1, 0},
	[MDL_OP_GLOBALMAXPOOL] = {"GlobalMaxPool", 1, 1, 1, 1, 0},
	[MDL_OP_CONCAT] = {"Concat", 1, 32, 1, 1, 0},
	[MDL_OP_RESIZE] = {"Resize", 1, 4, 1, 1, 0xe},
	[MDL_OP_TRANSPOSE] = {"Transpose", 1, 1, 1, 1, 0},
	[MDL_OP_SLICE] = {"Slice", 1, 5, 1, 1, 0x1e},
	[MDL_OP_SPLIT] = {"Split", 1, 2, 1, 16, 0x2},
	[MDL_OP_SOFTMAX] = {"Softmax", 1, 1, 1, 1, 0},
	[MDL_OP_GATHER] = {"Gather", 2, 2, 1, 1, 0x2},
	[MDL_OP_RESHAPE] = {"Reshape", 2, 2, 1, 1, 0x2},
	[MDL_OP_FLATTEN] = {"Flatten", 1, 1, 1, 1, 0},
	[MDL_OP_SQUEEZE] = {"Squeeze", 1, 2, 1, 1, 0x2},
	[MDL_OP_UNSQUEEZE] = {"Unsqueeze", 1, 2, 1, 1, 0x2},
	[MDL_OP_IDENTITY] = {"Identity", 1, 1, 1, 1, 0},
	[MDL_OP_SHAPE] = {"Shape", 1, 1, 1, 1, 0},
	[MDL_OP_CAST] = {"Cast", 1, 1, 1, 1, 0},
	[MDL_OP_CONSTANT] = {"Constant", 0, 0, 1, 1, 0},
};

const char *mdl_op_name(enum mdl_op op)
{
	return (unsigned)op < MDL_OP_COUNT ? ops[op].name : "?";
}

int mdl_op_lookup(const char *onnx_name)
{
	for (int i = 0; i < MDL_OP_COUNT; i++)
		if (strcmp(ops[i].name, onnx_name) == 0)
			return i;
	return -1;
}

int mdl_op_input_const(enum mdl_op op, int slot)
{
	return (unsigned)op < MDL_OP_COUNT && slot < 32 && (ops[op].const_mask >> slot) & 1;
}

void mdl_op_arity(enum mdl_op op, int *min_in, int *max_in, int *min_out, int *max_out)
{
	*min_in = ops[op].min_in;
	*max_in = ops[op].max_in;
	*min_out = ops[op].min_out;
	*max_out = ops[op].max_out;
}

int mdl_axis(int64_t axis, int rank)
{
	if (axis < 0)
		axis += rank;
	return axis < 0 || axis >= rank ? -1 : (int)axis;
}

/* ---- geometry helpers ------------------------------------------------------------------- */

void mdl_node_window(const struct mdl_node *n, const struct mdl_shape *x, int64_t pads[4],
		     int64_t out_hw[2])
{
	const struct mdl_attrs *a = &n->a;
	for (int i = 0; i < 2; i++) {
		int64_t in = x->d[2 + i], k = a->kernel[i], s = a->stride[i];
		int64_t ek = a->dil[i] * (k - 1) + 1;
		int64_t pb = a->pad[i], pe = a->pad[i + 2];
		if (a->auto_pad == MDL_PAD_SAME_UPPER || a->auto_pad == MDL_PAD_SAME_LOWER) {
			int64_t o = (in + s - 1) / s;
			int64_t total = (o - 1) * s + ek - in;
			if (total < 0)
				total = 0;
			pb = a->auto_pad == MDL_PAD_SAME_UPPER ? total / 2 : total - total / 2;
			pe = total - pb;
		} else if (a->auto_pad == MDL_PAD_VALID) {
			pb = pe = 0;
		}
		int64_t span = in + pb + pe - ek;
		int64_t o = span < 0 ? 0 : (a->ceil_mode ? (span + s - 1) / s : span / s) + 1;
		pads[i] = pb;
		pads[i + 2] = pe;
		out_hw[i] = o;
	}
}

void mdl_node_perm(const struct mdl_node *n, int rank, int perm[MDL_MAX_DIMS])
{
	for (int i = 0; i < rank; i++)
		perm[i] = n->a.n_perm ? (int)mdl_axis(n->a.perm[i], rank) : rank - 1 - i;
}

int mdl_node_slice(const struct mdl_node *n, const struct mdl_tensor *const *in,
		   int64_t start[MDL_MAX_DIMS], int64_t step[MDL_MAX_DIMS])
{
	const struct mdl_shape *x = &in[0]->shape;
	int r = x->rank, cnt;
	int legacy = n->n_in == 1;
	for (int i = 0; i < r; i++)
		start[i] = 0, step[i] = 1;
	if (legacy) {
		cnt = n->a.n_axes;
	} else {
		if (!in[1] || !in[2] || !in[1]->data || !in[2]->data)
			return -EINVAL;
		cnt = (int)mdl_shape_numel(&in[1]->shape);
		if (cnt != mdl_shape_numel(&in[2]->shape) || cnt > r)
			return -EINVAL;
		if (n->n_in > 3 && in[3] && (!in[3]->data || mdl_shape_numel(&in[3]->shape) != cnt))
			return -EINVAL;
		if (n->n_in > 4 && in[4] && (!in[4]->data || mdl_shape_numel(&in[4]->shape) != cnt))
			return -EINVAL;
	}
	unsigned seen = 0;
	for (int i = 0; i < cnt; i++) {
		int64_t ax, st, sp = 1;
		if (legacy) {
			ax = n->a.axes[i];
			st = n->a.starts[i];
		} else {
			ax = n->n_in > 3 && in[3] ? mdl_t_int(in[3], i) : i;
			st = mdl_t_int(in[1], i);
			if (n->n_in > 4 && in[4])
				sp = mdl_t_int(in[4], i);
		}
		int a = mdl_axis(ax, r);
		if (a < 0 || sp == 0 || (seen >> a) & 1)
			return -EINVAL;
		seen |= 1u << a;
		int64_t dim = x->d[a];
		if (st < 0)
			st += dim;
		if (sp > 0)
			st = st < 0 ? 0 : st > dim ? dim : st;
		else
			st = st < 0 ? 0 : st > dim - 1 ? dim - 1 : st;
		start[a] = st;
		step[a] = sp;
	}
	return 0;
}

/* Output shape of a Slice given start/step (recomputes the counts). */
static int slice_shape(const struct mdl_node *n, const struct mdl_tensor *const *in,
		       struct mdl_shape *out)
{
	int64_t start[MDL_MAX_DIMS], step[MDL_MAX_DIMS];
	if (mdl_node_slice(n, in, start, step))
		return -EINVAL;
	const struct mdl_shape *x = &in[0]->shape;
	*out = *x;
	int cnt = n->n_in == 1 ? n->a.n_axes : (int)mdl_shape_numel(&in[1]->shape);
	for (int i = 0; i < cnt; i++) {
		int64_t ax = n->n_in == 1 ? n->a.axes[i] : n->n_in > 3 && in[3] ? mdl_t_int(in[3], i) : i;
		int a = mdl_axis(ax, x->rank);
		int64_t en = n->n_in == 1 ? n->a.ends[i] : mdl_t_int(in[2], i), dim = x->d[a];
		int64_t st = start[a], sp = step[a];
		if (en < 0)
			en += dim;
		if (sp > 0) {
			en = en < 0 ? 0 : en > dim ? dim : en;
			out->d[a] = en > st ? (en - st + sp - 1) / sp : 0;
		} else {
			en = en < -1 ? -1 : en > dim - 1 ? dim - 1 : en;
			out->d[a] = st > en ? (st - en - sp - 1) / (-sp) : 0;
		}
	}
	return 0;
}

int mdl_node_split(const struct mdl_node *n, const struct mdl_tensor *const *in, int *axis,
		   int64_t *sizes)
{
	const struct mdl_shape *x = &in[0]->shape;
	int a = mdl_axis(n->a.axis, x->rank);
	if (a < 0)
		return -EINVAL;
	*axis = a;
	int64_t total = 0;
	if (n->n_in > 1 && in[1]) {
		if (!in[1]->data || mdl_shape_numel(&in[1]->shape) != n->n_out)
			return -EINVAL;
		for (int i = 0; i < n->n_out; i++)
			total += sizes[i] = mdl_t_int(in[1], i);
	} else if (n->a.n_split) {
		if (n->a.n_split != n->n_out)
			return -EINVAL;
		for (int i = 0; i < n->n_out; i++)
			total += sizes[i] = n->a.split[i];
	} else {
		int64_t part = (x->d[a] + n->n_out - 1) / n->n_out;
		for (int i = 0; i < n->n_out; i++) {
			sizes[i] = x->d[a] - total < part ? x->d[a] - total : part;
			total += sizes[i];
		}
	}
	for (int i = 0; i < n->n_out; i++)
		if (sizes[i] < 0)
			return -EINVAL;
	return total == x->d[a] ? 0 : -EINVAL;
}

int mdl_node_resize_scales(const struct mdl_node *n, const struct mdl_tensor *const *in,
			   float scales[MDL_MAX_DIMS])
{
	const struct mdl_shape *x = &in[0]->shape;
	const struct mdl_tensor *sc = n->n_in > 2 ? in[2] : NULL;
	const struct mdl_tensor *sz = n->n_in > 3 ? in[3] : NULL;
	if (sc && mdl_shape_numel(&sc->shape) == 0)
		sc = NULL;
	if (sz && mdl_shape_numel(&sz->shape) == 0)
		sz = NULL;
	if (!!sc == !!sz)
		return -EINVAL;
	const struct mdl_tensor *t = sc ? sc : sz;
	if (!t->data || mdl_shape_numel(&t->shape) != x->rank)
		return -EINVAL;
	for (int i = 0; i < x->rank; i++) {
		if (sc) {
			scales[i] = mdl_t_float(sc, i);
		} else {
			if (x->d[i] == 0)
				return -EINVAL;
			scales[i] = (float)mdl_t_int(sz, i) / (float)x->d[i];
		}
		if (!(scales[i] > 0))
			return -EINVAL;
	}
	return 0;
}

/* ---- inference ---------------------------------------------------------------------------- */

#define WHY(...) (snprintf(c->why, sizeof c->why, __VA_ARGS__), -EINVAL)

static int alloc_out(struct mdl_tensor *o)
{
	int64_t cnt = mdl_shape_numel(&o->shape);
	o->data = malloc((size_t)(cnt ? cnt : 1) * mdl_dtype_size(o->dtype));
	return o->data ? 0 : -ENOMEM;
}

static int broadcast(struct mdl_infer_ctx *c, const struct mdl_shape *a, const struct mdl_shape *b,
		     struct mdl_shape *o)
{
	int r = a->rank > b->rank ? a->rank : b->rank;
	o->rank = r;
	for (int i = 0; i < r; i++) {
		int ia = i - (r - a->rank), ib = i - (r - b->rank);
		int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
		if (da != db && da != 1 && db != 1) {
			char sa[96], sb[96];
			return WHY("shapes %s and %s do not broadcast", mdl_shape_str(a, sa, sizeof sa),
				   mdl_shape_str(b, sb, sizeof sb));
		}
		o->d[i] = da == 1 ? db : da;
	}
	return 0;
}

/* Offset into a (broadcast to o) of the flat output index i. */
static int64_t bcast_off(const struct mdl_shape *a, const struct mdl_shape *o, int64_t i)
{
	int64_t off = 0, mul = 1;
	for (int k = o->rank - 1; k >= 0; k--) {
		int64_t idx = i % o->d[k];
		i /= o->d[k];
		int ka = k - (o->rank - a->rank);
		if (ka >= 0) {
			if (a->d[ka] != 1)
				off += idx * mul;
			mul *= a->d[ka];
		}
	}
	return off;
}

static int infer_binary(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *a = c->in[0], *b = c->in[1];
	struct mdl_tensor *o = c->out[0];
	int rc = broadcast(c, &a->shape, &b->shape, &o->shape);
	if (rc)
		return rc;
	if (c->n->op == MDL_OP_PRELU && o->shape.rank != a->shape.rank)
		return WHY("slope does not broadcast to X");
	o->dtype = a->dtype == MDL_DTYPE_INT64 && b->dtype == MDL_DTYPE_INT64 ? MDL_DTYPE_INT64
									      : MDL_DTYPE_FLOAT;
	if (!c->all_known || c->n->op == MDL_OP_PRELU)
		return 0;
	if ((rc = alloc_out(o)))
		return rc;
	int64_t cnt = mdl_shape_numel(&o->shape);
	for (int64_t i = 0; i < cnt; i++) {
		int64_t ia = bcast_off(&a->shape, &o->shape, i), ib = bcast_off(&b->shape, &o->shape, i);
		if (o->dtype == MDL_DTYPE_INT64) {
			int64_t x = mdl_t_int(a, ia), y = mdl_t_int(b, ib), r = 0;
			switch (c->n->op) {
			case MDL_OP_ADD: r = x + y; break;
			case MDL_OP_SUB: r = x - y; break;
			case MDL_OP_MUL: r = x * y; break;
			default:
				if (!y)
					return WHY("integer division by zero");
				r = x / y;
				break;
			}
			((int64_t *)o->data)[i] = r;
		} else {
			float x = mdl_t_float(a, ia), y = mdl_t_float(b, ib), r;
			switch (c->n->op) {
			case MDL_OP_ADD: r = x + y; break;
			case MDL_OP_SUB: r = x - y; break;
			case MDL_OP_MUL: r = x * y; break;
			default: r = x / y; break;
			}
			((float *)o->data)[i] = r;
		}
	}
	return 0;
}

static int infer_conv(struct mdl_infer_ctx *c)
{
	const struct mdl_shape *x = &c->in[0]->shape, *w = &c->in[1]->shape;
	const struct mdl_attrs *a = &c->n->a;
	if (x->rank != 4 || w->rank != 4)
		return WHY("only 2-D convolution on NCHW is supported (X rank %d, W rank %d)", x->rank,
			   w->rank);
	if (x->d[1] != w->d[1] * a->group || w->d[0] % a->group)
		return WHY("X has %lld channels, W expects %lld x group %lld", (long long)x->d[1],
			   (long long)w->d[1], (long long)a->group);
	if (a->kernel[0] != w->d[2] || a->kernel[1] != w->d[3])
		return WHY("kernel_shape differs from the weights");
	if (c->n->n_in > 2 && c->in[2] &&
	    (c->in[2]->shape.rank != 1 || c->in[2]->shape.d[0] != w->d[0]))
		return WHY("bias does not have %lld elements", (long long)w->d[0]);
	int64_t pads[4], hw[2];
	mdl_node_window(c->n, x, pads, hw);
	if (hw[0] < 1 || hw[1] < 1)
		return WHY("input %lldx%lld is smaller than the kernel", (long long)x->d[2],
			   (long long)x->d[3]);
	struct mdl_tensor *o = c->out[0];
	o->dtype = MDL_DTYPE_FLOAT;
	o->shape = (struct mdl_shape){4, {x->d[0], w->d[0], hw[0], hw[1]}};
	return 0;
}

static int infer_pool(struct mdl_infer_ctx *c)
{
	const struct mdl_shape *x = &c->in[0]->shape;
	struct mdl_tensor *o = c->out[0];
	o->dtype = MDL_DTYPE_FLOAT;
	o->shape = *x;
	if (c->n->op == MDL_OP_GLOBALAVGPOOL || c->n->op == MDL_OP_GLOBALMAXPOOL) {
		if (x->rank < 3)
			return WHY("input rank %d < 3", x->rank);
		for (int i = 2; i < x->rank; i++)
			o->shape.d[i] = 1;
		return 0;
	}
	if (x->rank != 4)
		return WHY("only 2-D pooling on NCHW is supported (rank %d)", x->rank);
	int64_t pads[4], hw[2];
	mdl_node_window(c->n, x, pads, hw);
	if (hw[0] < 1 || hw[1] < 1)
		return WHY("input %lldx%lld is smaller than the window", (long long)x->d[2],
			   (long long)x->d[3]);
	o->shape.d[2] = hw[0];
	o->shape.d[3] = hw[1];
	return 0;
}

/* Generic element copy used by the data-movement ops when evaluating constants: out element
 * i comes from input element map(i). */
static void copy_elem(const struct mdl_tensor *src, int64_t si, struct mdl_tensor *dst, int64_t di)
{
	size_t es = mdl_dtype_size(src->dtype);
	memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, es);
}

static int infer_concat(struct mdl_infer_ctx *c)
{
	const struct mdl_shape *x0 = &c->in[0]->shape;
	int ax = mdl_axis(c->n->a.axis, x0->rank);
	if (ax < 0)
		return WHY("axis %lld out of range for rank %d", (long long)c->n->a.axis, x0->rank);
	struct mdl_tensor *o = c->out[0];
	o->dtype = c->in[0]->dtype;
	o->shape = *x0;
	o->shape.d[ax] = 0;
	for (int i = 0; i < c->n->n_in; i++) {
		const struct mdl_shape *s = &c->in[i]->shape;
		if (s->rank != x0->rank)
			return WHY("input %d has rank %d, input 0 rank %d", i, s->rank, x0->rank);
		for (int k = 0; k < s->rank; k++)
			if (k != ax && s->d[k] != x0->d[k])
				return WHY("input %d differs from input 0 in dimension %d", i, k);
		o->shape.d[ax] += s->d[ax];
	}
	if (!c->all_known)
		return 0;
	if (alloc_out(o))
		return -ENOMEM;
	int64_t outer = 1, inner = 1;
	for (int k = 0; k < ax; k++)
		outer *= x0->d[k];
	for (int k = ax + 1; k < x0->rank; k++)
		inner *= x0->d[k];
	int64_t di = 0;
	for (int64_t q = 0; q < outer; q++)
		for (int i = 0; i < c->n->n_in; i++) {
			int64_t blk = c->in[i]->shape.d[ax] * inner;
			for (int64_t e = 0; e < blk; e++)
				copy_elem(c->in[i], q * blk + e, o, di++);
		}
	return 0;
}

static int infer_gather(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0], *idx = c->in[1];
	int ax = mdl_axis(c->n->a.axis, x->shape.rank);
	if (ax < 0)
		return WHY("axis out of range");
	if (idx->dtype != MDL_DTYPE_INT64 || !idx->data)
		return WHY("indices must be constant integers");
	int r = x->shape.rank - 1 + idx->shape.rank;
	if (r > MDL_MAX_DIMS)
		return WHY("output rank %d too large", r);
	struct mdl_tensor *o = c->out[0];
	o->dtype = x->dtype;
	o->shape.rank = 0;
	for (int k = 0; k < ax; k++)
		o->shape.d[o->shape.rank++] = x->shape.d[k];
	for (int k = 0; k < idx->shape.rank; k++)
		o->shape.d[o->shape.rank++] = idx->shape.d[k];
	for (int k = ax + 1; k < x->shape.rank; k++)
		o->shape.d[o->shape.rank++] = x->shape.d[k];
	int64_t ni = mdl_shape_numel(&idx->shape), dim = x->shape.d[ax];
	for (int64_t i = 0; i < ni; i++) {
		int64_t v = ((const int64_t *)idx->data)[i];
		if (v < -dim || v >= dim)
			return WHY("index %lld out of range for dimension %lld", (long long)v,
				   (long long)dim);
	}
	if (!c->all_known)
		return 0;
	if (alloc_out(o))
		return -ENOMEM;
	int64_t outer = 1, inner = 1;
	for (int k = 0; k < ax; k++)
		outer *= x->shape.d[k];
	for (int k = ax + 1; k < x->shape.rank; k++)
		inner *= x->shape.d[k];
	int64_t di = 0;
	for (int64_t q = 0; q < outer; q++)
		for (int64_t i = 0; i < ni; i++) {
			int64_t v = ((const int64_t *)idx->data)[i];
			if (v < 0)
				v += dim;
			for (int64_t e = 0; e < inner; e++)
				copy_elem(x, (q * dim + v) * inner + e, o, di++);
		}
	return 0;
}

static int infer_transpose(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0];
	int r = x->shape.rank, perm[MDL_MAX_DIMS];
	if (c->n->a.n_perm && c->n->a.n_perm != r)
		return WHY("perm has %d entries for rank %d", c->n->a.n_perm, r);
	mdl_node_perm(c->n, r, perm);
	unsigned seen = 0;
	struct mdl_tensor *o = c->out[0];
	o->dtype = x->dtype;
	o->shape.rank = r;
	for (int i = 0; i < r; i++) {
		if (perm[i] < 0 || (seen >> perm[i]) & 1)
			return WHY("perm is not a permutation");
		seen |= 1u << perm[i];
		o->shape.d[i] = x->shape.d[perm[i]];
	}
	if (!c->all_known)
		return 0;
	if (alloc_out(o))
		return -ENOMEM;
	int64_t cnt = mdl_shape_numel(&o->shape), str[MDL_MAX_DIMS], s = 1;
	for (int k = r - 1; k >= 0; k--)
		str[k] = s, s *= x->shape.d[k];
	for (int64_t i = 0; i < cnt; i++) {
		int64_t rem = i, si = 0;
		for (int k = r - 1; k >= 0; k--) {
			si += (rem % o->shape.d[k]) * str[perm[k]];
			rem /= o->shape.d[k];
		}
		copy_elem(x, si, o, i);
	}
	return 0;
}

static int infer_slice(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0];
	struct mdl_tensor *o = c->out[0];
	o->dtype = x->dtype;
	if (slice_shape(c->n, c->in, &o->shape))
		return WHY("starts/ends/axes/steps are missing, not constant or inconsistent");
	if (!c->all_known)
		return 0;
	int64_t start[MDL_MAX_DIMS], step[MDL_MAX_DIMS], str[MDL_MAX_DIMS], s = 1;
	mdl_node_slice(c->n, c->in, start, step);
	if (alloc_out(o))
		return -ENOMEM;
	int r = x->shape.rank;
	for (int k = r - 1; k >= 0; k--)
		str[k] = s, s *= x->shape.d[k];
	int64_t cnt = mdl_shape_numel(&o->shape);
	for (int64_t i = 0; i < cnt; i++) {
		int64_t rem = i, si = 0;
		for (int k = r - 1; k >= 0; k--) {
			si += (start[k] + (rem % o->shape.d[k]) * step[k]) * str[k];
			rem /= o->shape.d[k];
		}
		copy_elem(x, si, o, i);
	}
	return 0;
}

static int infer_split(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0];
	int ax;
	int64_t sizes[16], off = 0;
	if (mdl_node_split(c->n, c->in, &ax, sizes))
		return WHY("split sizes are missing, not constant or do not add up");
	int64_t outer = 1, inner = 1;
	for (int k = 0; k < ax; k++)
		outer *= x->shape.d[k];
	for (int k = ax + 1; k < x->shape.rank; k++)
		inner *= x->shape.d[k];
	for (int i = 0; i < c->n->n_out; i++) {
		struct mdl_tensor *o = c->out[i];
		o->dtype = x->dtype;
		o->shape = x->shape;
		o->shape.d[ax] = sizes[i];
		if (c->all_known) {
			if (alloc_out(o))
				return -ENOMEM;
			int64_t di = 0;
			for (int64_t q = 0; q < outer; q++)
				for (int64_t e = 0; e < sizes[i] * inner; e++)
					copy_elem(x, (q * x->shape.d[ax] + off) * inner + e, o, di++);
		}
		off += sizes[i];
	}
	return 0;
}

/* Reshape, Flatten, Squeeze, Unsqueeze, Identity: a new shape over the same elements. */
static int infer_view(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0];
	const struct mdl_shape *xs = &x->shape;
	struct mdl_tensor *o = c->out[0];
	const struct mdl_attrs *a = &c->n->a;
	o->dtype = x->dtype;
	struct mdl_shape s = {0, {0}};
	switch (c->n->op) {
	case MDL_OP_RESHAPE: {
		const struct mdl_tensor *t = c->in[1];
		if (!t->data || t->dtype != MDL_DTYPE_INT64 || t->shape.rank != 1 ||
		    t->shape.d[0] > MDL_MAX_DIMS)
			return WHY("shape must be a constant 1-D integer tensor");
		s.rank = (int)t->shape.d[0];
		int neg = -1;
		int64_t known = 1;
		for (int i = 0; i < s.rank; i++) {
			int64_t v = ((const int64_t *)t->data)[i];
			if (v == 0 && !a->allowzero) {
				if (i >= xs->rank)
					return WHY("0 in shape refers to a missing input dimension");
				v = xs->d[i];
			}
			if (v == -1) {
				if (neg >= 0)
					return WHY("more than one -1 in shape");
				neg = i;
				v = 1;
			} else if (v < 0) {
				return WHY("negative dimension %lld in shape", (long long)v);
			}
			s.d[i] = v;
			known *= v;
		}
		int64_t cnt = mdl_shape_numel(xs);
		if (neg >= 0) {
			if (!known || cnt % known)
				return WHY("cannot reshape %lld elements", (long long)cnt);
			s.d[neg] = cnt / known;
		}
		break;
	}
	case MDL_OP_FLATTEN: {
		int ax = (int)(a->axis < 0 ? a->axis + xs->rank : a->axis);
		if (ax < 0 || ax > xs->rank)
			return WHY("axis out of range");
		s.rank = 2;
		s.d[0] = s.d[1] = 1;
		for (int i = 0; i < xs->rank; i++)
			s.d[i < ax ? 0 : 1] *= xs->d[i];
		break;
	}
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE: {
		int64_t axes[MDL_MAX_DIMS];
		int na = a->n_axes;
		memcpy(axes, a->axes, sizeof axes);
		if (c->n->n_in > 1 && c->in[1]) {
			const struct mdl_tensor *t = c->in[1];
			na = (int)mdl_shape_numel(&t->shape);
			if (!t->data || na > MDL_MAX_DIMS)
				return WHY("axes must be constant");
			for (int i = 0; i < na; i++)
				axes[i] = mdl_t_int(t, i);
		}
		int orank = c->n->op == MDL_OP_SQUEEZE ? xs->rank : xs->rank + na;
		if (orank > MDL_MAX_DIMS)
			return WHY("rank too large");
		unsigned mask = 0;
		for (int i = 0; i < na; i++) {
			int ax = mdl_axis(axes[i], orank);
			if (ax < 0 || (mask >> ax) & 1)
				return WHY("axis %lld out of range or repeated", (long long)axes[i]);
			mask |= 1u << ax;
		}
		if (c->n->op == MDL_OP_SQUEEZE) {
			for (int i = 0; i < xs->rank; i++) {
				int drop = na ? (int)((mask >> i) & 1) : xs->d[i] == 1;
				if (drop && xs->d[i] != 1)
					return WHY("cannot squeeze dimension %d of size %lld", i,
						   (long long)xs->d[i]);
				if (!drop)
					s.d[s.rank++] = xs->d[i];
			}
		} else {
			for (int i = 0, k = 0; i < orank; i++)
				s.d[s.rank++] = (mask >> i) & 1 ? 1 : xs->d[k++];
		}
		break;
	}
	default: /* Identity */
		s = *xs;
		break;
	}
	if (mdl_shape_numel(&s) != mdl_shape_numel(xs))
		return WHY("cannot reshape %lld elements to %lld", (long long)mdl_shape_numel(xs),
			   (long long)mdl_shape_numel(&s));
	o->shape = s;
	if (!c->all_known)
		return 0;
	if (alloc_out(o))
		return -ENOMEM;
	memcpy(o->data, x->data, (size_t)mdl_shape_numel(&s) * mdl_dtype_size(x->dtype));
	return 0;
}

static int infer_resize(struct mdl_infer_ctx *c)
{
	const struct mdl_shape *x = &c->in[0]->shape;
	float sc[MDL_MAX_DIMS];
	if (mdl_node_resize_scales(c->n, c->in, sc))
		return WHY("needs exactly one of constant scales/sizes with one value per dimension");
	struct mdl_tensor *o = c->out[0];
	o->dtype = MDL_DTYPE_FLOAT;
	o->shape = *x;
	int sized = c->n->n_in > 3 && c->in[3] && mdl_shape_numel(&c->in[3]->shape) > 0;
	for (int i = 0; i < x->rank; i++)
		o->shape.d[i] = sized ? mdl_t_int(c->in[3], i) : (int64_t)floorf((float)x->d[i] * sc[i]);
	if (x->rank != 4 || o->shape.d[0] != x->d[0] || o->shape.d[1] != x->d[1])
		return WHY("only resizing height and width of NCHW tensors is supported");
	if (o->shape.d[2] < 1 || o->shape.d[3] < 1)
		return WHY("empty output");
	return 0;
}

static int infer_matmul(struct mdl_infer_ctx *c)
{
	struct mdl_shape a = c->in[0]->shape, b = c->in[1]->shape;
	struct mdl_tensor *o = c->out[0];
	o->dtype = MDL_DTYPE_FLOAT;
	if (c->n->op == MDL_OP_GEMM) {
		if (a.rank != 2 || b.rank != 2)
			return WHY("A and B must be 2-D");
		int64_t m = c->n->a.trans_a ? a.d[1] : a.d[0], ka = c->n->a.trans_a ? a.d[0] : a.d[1];
		int64_t kb = c->n->a.trans_b ? b.d[1] : b.d[0], nn = c->n->a.trans_b ? b.d[0] : b.d[1];
		if (ka != kb)
			return WHY("inner dimensions differ (%lld vs %lld)", (long long)ka, (long long)kb);
		o->shape = (struct mdl_shape){2, {m, nn}};
		if (c->n->n_in > 2 && c->in[2]) {
			struct mdl_shape t;
			if (broadcast(c, &c->in[2]->shape, &o->shape, &t) || t.rank != 2 ||
			    t.d[0] != m || t.d[1] != nn)
				return WHY("C does not broadcast to [%lld,%lld]", (long long)m, (long long)nn);
		}
		return 0;
	}
	if (a.rank < 1 || b.rank < 1)
		return WHY("scalar operand");
	int a1 = a.rank == 1, b1 = b.rank == 1;
	if (a1)
		a = (struct mdl_shape){2, {1, a.d[0]}};
	if (b1)
		b = (struct mdl_shape){2, {b.d[0], 1}};
	if (a.d[a.rank - 1] != b.d[b.rank - 2])
		return WHY("inner dimensions differ (%lld vs %lld)", (long long)a.d[a.rank - 1],
			   (long long)b.d[b.rank - 2]);
	struct mdl_shape ba = a, bb = b, bo;
	ba.rank -= 2;
	bb.rank -= 2;
	int rc = broadcast(c, &ba, &bb, &bo);
	if (rc)
		return rc;
	o->shape = bo;
	if (!a1)
		o->shape.d[o->shape.rank++] = a.d[a.rank - 2];
	if (!b1)
		o->shape.d[o->shape.rank++] = b.d[b.rank - 1];
	return 0;
}

static int infer_shape_op(struct mdl_infer_ctx *c)
{
	const struct mdl_shape *x = &c->in[0]->shape;
	const struct mdl_attrs *a = &c->n->a;
	int64_t r = x->rank, st = a->start, en = a->has_end ? a->end : r;
	if (st < 0)
		st += r;
	if (en < 0)
		en += r;
	st = st < 0 ? 0 : st > r ? r : st;
	en = en < 0 ? 0 : en > r ? r : en;
	struct mdl_tensor *o = c->out[0];
	o->dtype = MDL_DTYPE_INT64;
	o->shape = (struct mdl_shape){1, {en > st ? en - st : 0}};
	if (alloc_out(o))
		return -ENOMEM;
	for (int64_t i = st; i < en; i++)
		((int64_t *)o->data)[i - st] = x->d[i];
	return 0;
}

static int infer_cast(struct mdl_infer_ctx *c)
{
	const struct mdl_tensor *x = c->in[0];
	struct mdl_tensor *o = c->out[0];
	o->dtype = (enum mdl_dtype)c->n->a.axis;
	o->shape = x->shape;
	if (!c->all_known)
		return 0;
	if (alloc_out(o))
		return -ENOMEM;
	int64_t cnt = mdl_shape_numel(&x->shape);
	for (int64_t i = 0; i < cnt; i++) {
		if (o->dtype == MDL_DTYPE_INT64)
			((int64_t *)o->data)[i] = mdl_t_int(x, i);
		else
			((float *)o->data)[i] = mdl_t_float(x, i);
	}
	return 0;
}

int mdl_op_infer(struct mdl_infer_ctx *c)
{
	const struct mdl_node *n = c->n;
	/* required inputs present */
	int min_in, max_in, min_out, max_out;
	mdl_op_arity(n->op, &min_in, &max_in, &min_out, &max_out);
	for (int i = 0; i < min_in; i++)
		if (!c->in[i])
			return WHY("required input %d is missing", i);
	for (int i = 0; i < n->n_in; i++)
		if (c->in[i] && mdl_op_input_const(n->op, i) && !c->in[i]->data)
			return WHY("input %d must be a constant", i);
	struct mdl_tensor *o = c->out[0];
	switch (n->op) {
	case MDL_OP_CONV:
		return infer_conv(c);
	case MDL_OP_BATCHNORM:
		if (c->in[0]->shape.rank < 2)
			return WHY("input rank < 2");
		for (int i = 1; i < 5; i++)
			if (mdl_shape_numel(&c->in[i]->shape) != c->in[0]->shape.d[1])
				return WHY("input %d does not have one value per channel", i);
		o->dtype = MDL_DTYPE_FLOAT;
		o->shape = c->in[0]->shape;
		return 0;
	case MDL_OP_GEMM:
	case MDL_OP_MATMUL:
		return infer_matmul(c);
	case MDL_OP_RELU:
	case MDL_OP_LEAKYRELU:
	case MDL_OP_CLIP:
	case MDL_OP_SIGMOID:
	case MDL_OP_HARDSIGMOID:
	case MDL_OP_HARDSWISH:
	case MDL_OP_TANH:
	case MDL_OP_EXP:
	case MDL_OP_NEG:
	case MDL_OP_ABS:
	case MDL_OP_SQRT:
	case MDL_OP_SOFTMAX:
		if (c->in[0]->dtype != MDL_DTYPE_FLOAT)
			return WHY("only float input is supported");
		for (int i = 1; i < n->n_in; i++)
			if (c->in[i] && mdl_shape_numel(&c->in[i]->shape) != 1)
				return WHY("min/max must be scalars");
		if (n->op == MDL_OP_SOFTMAX && mdl_axis(n->a.axis, c->in[0]->shape.rank) < 0)
			return WHY("axis out of range");
		o->dtype = MDL_DTYPE_FLOAT;
		o->shape = c->in[0]->shape;
		return 0;
	case MDL_OP_ADD:
	case MDL_OP_SUB:
	case MDL_OP_MUL:
	case MDL_OP_DIV:
	case MDL_OP_PRELU:
		return infer_binary(c);
	case MDL_OP_MAXPOOL:
	case MDL_OP_AVGPOOL:
	case MDL_OP_GLOBALAVGPOOL:
	case MDL_OP_GLOBALMAXPOOL:
		return infer_pool(c);
	case MDL_OP_CONCAT:
		return infer_concat(c);
	case MDL_OP_RESIZE:
		return infer_resize(c);
	case MDL_OP_TRANSPOSE:
		return infer_transpose(c);
	case MDL_OP_SLICE:
		return infer_slice(c);
	case MDL_OP_SPLIT:
		return infer_split(c);
	case MDL_OP_GATHER:
		return infer_gather(c);
	case MDL_OP_RESHAPE:
	case MDL_OP_FLATTEN:
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_IDENTITY:
		return infer_view(c);
	case MDL_OP_SHAPE:
		return infer_shape_op(c);
	case MDL_OP_CAST:
		return infer_cast(c);
	default:
		return WHY("op cannot be inferred");
	}
}
