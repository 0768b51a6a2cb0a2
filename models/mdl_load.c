/* ONNX file -> graph IR: protobuf-c parsing, tensor conversion, attribute checking,
 * topological ordering. */
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/mdl_priv.h"
#include "onnx.pb-c.h"

void mdl_one_line(char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int mdl_errf(char *err, size_t len, const struct mdl_graph *g, const struct mdl_node *n,
	     const char *fmt, ...)
{
	if (!err || !len)
		return -EINVAL;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	const char *path = g && g->path ? g->path : "<model>";
	if (n)
		snprintf(err, len, "%s: node '%s' (%s): %s", path, n->name, mdl_op_name(n->op), why);
	else
		snprintf(err, len, "%s: %s", path, why);
	mdl_one_line(err); /* names come from the file */
	return -EINVAL;
}

int64_t mdl_shape_numel(const struct mdl_shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->rank; i++)
		n *= s->d[i];
	return n;
}

int mdl_shape_too_big(const struct mdl_shape *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->rank; i++)
		if (s->d[i] < 0 || __builtin_mul_overflow(n, s->d[i], &n) || n > MDL_MAX_NUMEL)
			return 1;
	return 0;
}

size_t mdl_dtype_size(enum mdl_dtype dt) { return dt == MDL_DTYPE_INT64 ? 8 : 4; }

const char *mdl_shape_str(const struct mdl_shape *s, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, len - o, "[");
	for (int i = 0; i < s->rank && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)s->d[i]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
	return buf;
}

void mdl_tensor_free(struct mdl_tensor *t)
{
	if (!t)
		return;
	free(t->data);
	t->data = NULL;
}

/* ---- TensorProto -> mdl_tensor ---------------------------------------------------------- */

static const char *pb_type_name(int dt)
{
	static const char *names[] = {"undefined", "float",  "uint8", "int8",   "uint16", "int16",
				      "int32",     "int64",  "string", "bool", "float16", "double",
				      "uint32",    "uint64", "complex64", "complex128", "bfloat16"};
	return dt >= 0 && dt < (int)(sizeof names / sizeof names[0]) ? names[dt] : "unknown";
}

/* Element types the IR accepts for graph inputs, outputs and initializers. */
static int pb_type_ok(int dt)
{
	return dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
	       dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
}

/* Converts a TensorProto. lenient: also double (-> float) and all integer widths, for test
 * data files. Returns 0 or -EINVAL with why filled. */
static int pb_tensor_convert(const Onnx__TensorProto *tp, struct mdl_tensor *t, int lenient,
			     char *why, size_t wlen)
{
	memset(t, 0, sizeof *t);
	if (tp->n_dims > MDL_MAX_DIMS) {
		snprintf(why, wlen, "tensor '%s' has %zu dimensions (max %d)",
			 tp->name ? tp->name : "", tp->n_dims, MDL_MAX_DIMS);
		return -EINVAL;
	}
	if (tp->n_external_data || (tp->has_data_location && tp->data_location)) {
		snprintf(why, wlen, "tensor '%s' uses external data (not supported)",
			 tp->name ? tp->name : "");
		return -EINVAL;
	}
	t->shape.rank = (int)tp->n_dims;
	for (size_t i = 0; i < tp->n_dims; i++) {
		if (tp->dims[i] < 0) {
			snprintf(why, wlen, "tensor '%s' has a negative dimension", tp->name ? tp->name : "");
			return -EINVAL;
		}
		t->shape.d[i] = tp->dims[i];
	}
	if (mdl_shape_too_big(&t->shape)) {
		snprintf(why, wlen, "tensor '%s' is too large", tp->name ? tp->name : "");
		return -EINVAL;
	}
	int64_t n = mdl_shape_numel(&t->shape);
	int dt = tp->data_type;
	size_t esz;
	int is_float = 0;
	switch (dt) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: esz = 4; is_float = 1; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: esz = 8; is_float = 1; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: esz = 8; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: esz = 4; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: esz = 1; break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: esz = 2; break;
	default: esz = 0; break;
	}
	if (!esz || (!lenient && !pb_type_ok(dt))) {
		snprintf(why, wlen, "tensor '%s' has unsupported element type %s",
			 tp->name ? tp->name : "", pb_type_name(dt));
		return -EINVAL;
	}
	t->dtype = is_float ? MDL_DTYPE_FLOAT : MDL_DTYPE_INT64;
	size_t have;
	if (tp->has_raw_data)
		have = tp->raw_data.len / esz;
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		have = tp->n_float_data;
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
		have = tp->n_double_data;
	else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
		have = tp->n_int64_data;
	else
		have = tp->n_int32_data;
	if ((int64_t)have != n || (tp->has_raw_data && tp->raw_data.len != (size_t)n * esz)) {
		snprintf(why, wlen, "tensor '%s' holds %zu elements, its shape needs %lld",
			 tp->name ? tp->name : "", have, (long long)n);
		return -EINVAL;
	}
	t->data = malloc((size_t)(n ? n : 1) * mdl_dtype_size(t->dtype));
	if (!t->data) {
		snprintf(why, wlen, "out of memory");
		return -ENOMEM;
	}
	const uint8_t *raw = tp->has_raw_data ? tp->raw_data.data : NULL;
	for (int64_t i = 0; i < n; i++) {
		if (is_float) {
			float v;
			if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
				if (raw)
					memcpy(&v, raw + i * 4, 4);
				else
					v = tp->float_data[i];
			} else {
				double d;
				if (raw)
					memcpy(&d, raw + i * 8, 8);
				else
					d = tp->double_data[i];
				v = (float)d;
			}
			((float *)t->data)[i] = v;
			continue;
		}
		int64_t v = 0;
		if (!raw) {
			v = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? tp->int64_data[i] : tp->int32_data[i];
		} else {
			switch (dt) {
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(&v, raw + i * 8, 8); break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
				int32_t x;
				memcpy(&x, raw + i * 4, 4);
				v = x;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
				int16_t x;
				memcpy(&x, raw + i * 2, 2);
				v = x;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
				uint16_t x;
				memcpy(&x, raw + i * 2, 2);
				v = x;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: v = (int8_t)raw[i]; break;
			default: v = raw[i]; break;
			}
		}
		((int64_t *)t->data)[i] = v;
	}
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len, char *err, size_t err_len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				snprintf(err, err_len, "%s: out of memory", path);
				return NULL;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		snprintf(err, err_len, "%s: read error", path);
		return NULL;
	}
	*len = n;
	return buf;
}

int mdl_tensor_read(const char *path, struct mdl_tensor *t, char *err, size_t err_len)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		err_len = sizeof dummy;
	}
	size_t len;
	uint8_t *buf = read_file(path, &len, err, err_len);
	if (!buf)
		return -EIO;
	Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
	free(buf);
	if (!tp) {
		snprintf(err, err_len, "%s: not a TensorProto (truncated or not protobuf)", path);
		return -EINVAL;
	}
	char why[200];
	int rc = pb_tensor_convert(tp, t, 1, why, sizeof why);
	onnx__tensor_proto__free_unpacked(tp, NULL);
	if (rc)
		snprintf(err, err_len, "%s: %s", path, why);
	return rc;
}

/* ---- graph building --------------------------------------------------------------------- */

int mdl_graph_find_value(const struct mdl_graph *g, const char *name)
{
	for (int i = g->n_values - 1; i >= 0; i--)
		if (strcmp(g->values[i].name, name) == 0)
			return i;
	return -1;
}

static int add_value(struct mdl_graph *g, const char *name, int *cap)
{
	if (g->n_values == *cap) {
		int nc = *cap ? *cap * 2 : 64;
		struct mdl_value *nv = realloc(g->values, (size_t)nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		g->values = nv;
		*cap = nc;
	}
	struct mdl_value *v = &g->values[g->n_values];
	memset(v, 0, sizeof *v);
	v->name = strdup(name);
	if (!v->name)
		return -ENOMEM;
	v->dtype = MDL_DTYPE_FLOAT;
	v->producer = -1;
	return g->n_values++;
}

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *p, const char *name)
{
	for (size_t i = 0; i < p->n_attribute; i++)
		if (p->attribute[i]->name && strcmp(p->attribute[i]->name, name) == 0)
			return p->attribute[i];
	return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *p, const char *name, int64_t def)
{
	const Onnx__AttributeProto *a = attr_find(p, name);
	return a && a->has_i ? a->i : def;
}

static float attr_float(const Onnx__NodeProto *p, const char *name, float def)
{
	const Onnx__AttributeProto *a = attr_find(p, name);
	return a && a->has_f ? a->f : def;
}

/* Copies the ints attribute into out (at most max); returns the count, -1 when absent, -2
 * when longer than max. */
static int attr_ints(const Onnx__NodeProto *p, const char *name, int64_t *out, int max)
{
	const Onnx__AttributeProto *a = attr_find(p, name);
	if (!a)
		return -1;
	if (a->n_ints > (size_t)max)
		return -2;
	for (size_t i = 0; i < a->n_ints; i++)
		out[i] = a->ints[i];
	return (int)a->n_ints;
}

/* 1 when the string attribute equals val (or is absent and def_match). */
static int attr_str_is(const Onnx__NodeProto *p, const char *name, const char *val)
{
	const Onnx__AttributeProto *a = attr_find(p, name);
	if (!a || !a->has_s)
		return 0;
	return a->s.len == strlen(val) && memcmp(a->s.data, val, a->s.len) == 0;
}

static const char *attr_str(const Onnx__NodeProto *p, const char *name, char *buf, size_t len)
{
	const Onnx__AttributeProto *a = attr_find(p, name);
	if (!a || !a->has_s)
		return NULL;
	size_t n = a->s.len < len - 1 ? a->s.len : len - 1;
	memcpy(buf, a->s.data, n);
	buf[n] = 0;
	return buf;
}

/* Spatial attributes shared by Conv and the pools (2-D only). */
static int parse_window(struct mdl_graph *g, struct mdl_node *n, const Onnx__NodeProto *p,
			int need_kernel, char *err, size_t len)
{
	struct mdl_attrs *a = &n->a;
	int64_t tmp[8];
	int k = attr_ints(p, "kernel_shape", tmp, 8);
	if (k == -1 && need_kernel)
		return mdl_errf(err, len, g, n, "missing attribute kernel_shape");
	if (k >= 0 && k != 2)
		return mdl_errf(err, len, g, n, "only 2-D windows are supported (kernel_shape has %d)", k);
	if (k == 2)
		a->kernel[0] = tmp[0], a->kernel[1] = tmp[1];
	a->stride[0] = a->stride[1] = a->dil[0] = a->dil[1] = 1;
	k = attr_ints(p, "strides", tmp, 8);
	if (k >= 0 && k != 2)
		return mdl_errf(err, len, g, n, "only 2-D windows are supported (strides has %d)", k);
	if (k == 2)
		a->stride[0] = tmp[0], a->stride[1] = tmp[1];
	k = attr_ints(p, "dilations", tmp, 8);
	if (k >= 0 && k != 2)
		return mdl_errf(err, len, g, n, "only 2-D windows are supported (dilations has %d)", k);
	if (k == 2)
		a->dil[0] = tmp[0], a->dil[1] = tmp[1];
	k = attr_ints(p, "pads", tmp, 8);
	if (k >= 0 && k != 4)
		return mdl_errf(err, len, g, n, "only 2-D windows are supported (pads has %d)", k);
	if (k == 4)
		for (int i = 0; i < 4; i++)
			a->pad[i] = tmp[i];
	for (int i = 0; i < 2; i++)
		if (a->stride[i] < 1 || a->dil[i] < 1 || (k == 4 && (a->pad[i] < 0 || a->pad[i + 2] < 0)))
			return mdl_errf(err, len, g, n, "strides/dilations must be >= 1 and pads >= 0");
	char s[32];
	if (!attr_str(p, "auto_pad", s, sizeof s) || strcmp(s, "NOTSET") == 0)
		a->auto_pad = MDL_PAD_NOTSET;
	else if (strcmp(s, "SAME_UPPER") == 0)
		a->auto_pad = MDL_PAD_SAME_UPPER;
	else if (strcmp(s, "SAME_LOWER") == 0)
		a->auto_pad = MDL_PAD_SAME_LOWER;
	else if (strcmp(s, "VALID") == 0)
		a->auto_pad = MDL_PAD_VALID;
	else
		return mdl_errf(err, len, g, n, "unknown auto_pad '%s'", s);
	return 0;
}

static int parse_resize(struct mdl_graph *g, struct mdl_node *n, const Onnx__NodeProto *p,
			char *err, size_t len)
{
	struct mdl_attrs *a = &n->a;
	char s[40];
	if (g->opset < 11)
		return mdl_errf(err, len, g, n, "Resize before opset 11 is not supported");
	if (!attr_str(p, "mode", s, sizeof s) || strcmp(s, "nearest") == 0)
		a->mode = MDL_RESIZE_NEAREST;
	else if (strcmp(s, "linear") == 0)
		a->mode = MDL_RESIZE_LINEAR;
	else
		return mdl_errf(err, len, g, n, "mode '%s' is not supported", s);
	if (!attr_str(p, "coordinate_transformation_mode", s, sizeof s) || !strcmp(s, "half_pixel"))
		a->coord = MDL_COORD_HALF_PIXEL;
	else if (!strcmp(s, "pytorch_half_pixel"))
		a->coord = MDL_COORD_PYTORCH_HALF_PIXEL;
	else if (!strcmp(s, "align_corners"))
		a->coord = MDL_COORD_ALIGN_CORNERS;
	else if (!strcmp(s, "asymmetric"))
		a->coord = MDL_COORD_ASYMMETRIC;
	else if (!strcmp(s, "tf_half_pixel_for_nn"))
		a->coord = MDL_COORD_TF_HALF_PIXEL_FOR_NN;
	else
		return mdl_errf(err, len, g, n, "coordinate_transformation_mode '%s' is not supported",
				s);
	if (!attr_str(p, "nearest_mode", s, sizeof s) || !strcmp(s, "round_prefer_floor"))
		a->nearest = MDL_NEAREST_ROUND_PREFER_FLOOR;
	else if (!strcmp(s, "round_prefer_ceil"))
		a->nearest = MDL_NEAREST_ROUND_PREFER_CEIL;
	else if (!strcmp(s, "floor"))
		a->nearest = MDL_NEAREST_FLOOR;
	else if (!strcmp(s, "ceil"))
		a->nearest = MDL_NEAREST_CEIL;
	else
		return mdl_errf(err, len, g, n, "nearest_mode '%s' is not supported", s);
	if (attr_int(p, "exclude_outside", 0) || attr_int(p, "antialias", 0))
		return mdl_errf(err, len, g, n, "exclude_outside/antialias are not supported");
	if (attr_find(p, "axes") || (attr_find(p, "keep_aspect_ratio_policy") &&
				     !attr_str_is(p, "keep_aspect_ratio_policy", "stretch")))
		return mdl_errf(err, len, g, n, "axes/keep_aspect_ratio_policy are not supported");
	return 0;
}

/* Fills n->a from the node's attributes and checks them. */
static int parse_attrs(struct mdl_graph *g, struct mdl_node *n, const Onnx__NodeProto *p,
		       char *err, size_t len)
{
	struct mdl_attrs *a = &n->a;
	int k;
	switch (n->op) {
	case MDL_OP_ADD:
	case MDL_OP_SUB:
	case MDL_OP_MUL:
	case MDL_OP_DIV:
	case MDL_OP_GEMM:
		if (g->opset < 7 && attr_find(p, "broadcast"))
			return mdl_errf(err, len, g, n, "legacy broadcasting (opset < 7) is not supported");
		if (n->op != MDL_OP_GEMM)
			return 0;
		a->alpha = attr_float(p, "alpha", 1.0f);
		a->beta = attr_float(p, "beta", 1.0f);
		a->trans_a = (int)attr_int(p, "transA", 0);
		a->trans_b = (int)attr_int(p, "transB", 0);
		return 0;
	case MDL_OP_CONV:
		a->group = attr_int(p, "group", 1);
		if (a->group < 1)
			return mdl_errf(err, len, g, n, "group must be >= 1");
		return parse_window(g, n, p, 0, err, len);
	case MDL_OP_MAXPOOL:
	case MDL_OP_AVGPOOL:
		a->ceil_mode = (int)attr_int(p, "ceil_mode", 0);
		a->count_include_pad = (int)attr_int(p, "count_include_pad", 0);
		if (attr_int(p, "storage_order", 0))
			return mdl_errf(err, len, g, n, "storage_order=1 is not supported");
		if (n->op == MDL_OP_AVGPOOL && attr_find(p, "dilations"))
			return mdl_errf(err, len, g, n, "dilations are not supported");
		return parse_window(g, n, p, 1, err, len);
	case MDL_OP_BATCHNORM:
		a->alpha = attr_float(p, "epsilon", 1e-5f);
		if (attr_int(p, "training_mode", 0) || !attr_int(p, "spatial", 1))
			return mdl_errf(err, len, g, n, "training_mode/spatial=0 are not supported");
		return 0;
	case MDL_OP_LEAKYRELU:
		a->alpha = attr_float(p, "alpha", 0.01f);
		return 0;
	case MDL_OP_HARDSIGMOID:
		a->alpha = attr_float(p, "alpha", 0.2f);
		a->beta = attr_float(p, "beta", 0.5f);
		return 0;
	case MDL_OP_CLIP:
		a->alpha = attr_float(p, "min", -FLT_MAX);
		a->beta = attr_float(p, "max", FLT_MAX);
		return 0;
	case MDL_OP_CONCAT:
		if (!attr_find(p, "axis"))
			return mdl_errf(err, len, g, n, "missing attribute axis");
		a->axis = attr_int(p, "axis", 0);
		return 0;
	case MDL_OP_SOFTMAX:
		a->legacy_softmax = g->opset < 13;
		a->axis = attr_int(p, "axis", g->opset < 13 ? 1 : -1);
		return 0;
	case MDL_OP_GATHER:
	case MDL_OP_SPLIT:
		a->axis = attr_int(p, "axis", 0);
		if (n->op == MDL_OP_SPLIT) {
			k = attr_ints(p, "split", a->split, 16);
			if (k == -2)
				return mdl_errf(err, len, g, n, "more than 16 split parts");
			a->n_split = k < 0 ? 0 : k;
			if (attr_find(p, "num_outputs") && attr_int(p, "num_outputs", 0) != n->n_out)
				return mdl_errf(err, len, g, n, "num_outputs differs from the outputs");
		}
		return 0;
	case MDL_OP_FLATTEN:
		a->axis = attr_int(p, "axis", 1);
		return 0;
	case MDL_OP_TRANSPOSE:
		k = attr_ints(p, "perm", a->perm, MDL_MAX_DIMS);
		if (k == -2)
			return mdl_errf(err, len, g, n, "perm longer than %d", MDL_MAX_DIMS);
		a->n_perm = k < 0 ? 0 : k;
		return 0;
	case MDL_OP_SQUEEZE:
	case MDL_OP_UNSQUEEZE:
	case MDL_OP_SLICE:
		k = attr_ints(p, "axes", a->axes, MDL_MAX_DIMS);
		if (k == -2)
			return mdl_errf(err, len, g, n, "axes longer than %d", MDL_MAX_DIMS);
		a->n_axes = k < 0 ? 0 : k;
		if (n->op == MDL_OP_SLICE && g->opset < 10) {
			int ks = attr_ints(p, "starts", a->starts, MDL_MAX_DIMS);
			int ke = attr_ints(p, "ends", a->ends, MDL_MAX_DIMS);
			if (ks < 0 || ke != ks)
				return mdl_errf(err, len, g, n, "starts/ends missing or of different length");
			if (k < 0) {
				a->n_axes = ks;
				for (int i = 0; i < ks; i++)
					a->axes[i] = i;
			} else if (k != ks) {
				return mdl_errf(err, len, g, n, "axes and starts differ in length");
			}
		}
		return 0;
	case MDL_OP_RESHAPE:
		a->allowzero = (int)attr_int(p, "allowzero", 0);
		return 0;
	case MDL_OP_SHAPE:
		a->start = attr_int(p, "start", 0);
		a->has_end = attr_find(p, "end") != NULL;
		a->end = attr_int(p, "end", INT64_MAX);
		return 0;
	case MDL_OP_CAST: {
		int64_t to = attr_int(p, "to", 0);
		if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
			a->axis = MDL_DTYPE_FLOAT;
		else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
			 to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
			a->axis = MDL_DTYPE_INT64;
		else
			return mdl_errf(err, len, g, n, "Cast to %s is not supported",
					pb_type_name((int)to));
		return 0;
	}
	case MDL_OP_RESIZE:
		return parse_resize(g, n, p, err, len);
	default:
		return 0;
	}
}

/* A Constant node becomes a constant value directly. */
static int load_constant(struct mdl_graph *g, struct mdl_node *n, const Onnx__NodeProto *p,
			 struct mdl_value *v, char *err, size_t len)
{
	const Onnx__AttributeProto *a;
	char why[200];
	if ((a = attr_find(p, "value")) && a->t) {
		struct mdl_tensor t;
		if (pb_tensor_convert(a->t, &t, 0, why, sizeof why))
			return mdl_errf(err, len, g, n, "%s", why);
		v->dtype = t.dtype;
		v->shape = t.shape;
		v->data = t.data;
		return 0;
	}
	int is_float = 0;
	size_t cnt = 1;
	int scalar = 1;
	if ((a = attr_find(p, "value_float")))
		is_float = 1;
	else if ((a = attr_find(p, "value_floats")))
		is_float = 1, cnt = a->n_floats, scalar = 0;
	else if ((a = attr_find(p, "value_int")))
		;
	else if ((a = attr_find(p, "value_ints")))
		cnt = a->n_ints, scalar = 0;
	else
		return mdl_errf(err, len, g, n, "Constant without a tensor/float/int value");
	v->dtype = is_float ? MDL_DTYPE_FLOAT : MDL_DTYPE_INT64;
	v->shape.rank = scalar ? 0 : 1;
	v->shape.d[0] = (int64_t)cnt;
	v->data = malloc((cnt ? cnt : 1) * 8);
	if (!v->data)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		if (is_float)
			((float *)v->data)[i] = scalar ? a->f : a->floats[i];
		else
			((int64_t *)v->data)[i] = scalar ? a->i : a->ints[i];
	}
	return 0;
}

static int value_info_shape(struct mdl_graph *g, const Onnx__ValueInfoProto *vi,
			    struct mdl_value *v, char *err, size_t len)
{
	if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
		return mdl_errf(err, len, g, NULL, "value '%s' is not a tensor", v->name);
	const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
	if (!pb_type_ok(tt->elem_type))
		return mdl_errf(err, len, g, NULL, "value '%s' has unsupported element type %s",
				v->name, pb_type_name(tt->elem_type));
	v->dtype = tt->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? MDL_DTYPE_FLOAT
									  : MDL_DTYPE_INT64;
	v->shape.rank = -1; /* unknown rank */
	if (!tt->shape)
		return 0;
	if (tt->shape->n_dim > MDL_MAX_DIMS)
		return mdl_errf(err, len, g, NULL, "value '%s' has more than %d dimensions", v->name,
				MDL_MAX_DIMS);
	v->shape.rank = (int)tt->shape->n_dim;
	for (size_t i = 0; i < tt->shape->n_dim; i++) {
		const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
		v->shape.d[i] = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
					? d->dim_value
					: -1;
	}
	return 0;
}

void mdl_graph_destroy(struct mdl_graph *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n_values; i++) {
		free(g->values[i].name);
		free(g->values[i].data);
	}
	for (int i = 0; i < g->n_nodes; i++) {
		free(g->nodes[i].name);
		free(g->nodes[i].in);
	}
	free(g->values);
	free(g->nodes);
	free(g->inputs);
	free(g->outputs);
	free(g->path);
	free(g);
}

/* Orders g->nodes topologically (Kahn); refuses cycles and dangling inputs. */
static int topo_sort(struct mdl_graph *g, char *err, size_t len)
{
	int n = g->n_nodes;
	if (!n)
		return 0;
	int *indeg = calloc((size_t)n, sizeof *indeg);
	int *order = malloc((size_t)n * sizeof *order);
	struct mdl_node *sorted = malloc((size_t)n * sizeof *sorted);
	int rc = -ENOMEM;
	if (!indeg || !order || !sorted)
		goto out;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < g->nodes[i].n_in; j++) {
			int v = g->nodes[i].in[j];
			if (v >= 0 && g->values[v].producer >= 0)
				indeg[i]++;
		}
	int head = 0, tail = 0;
	for (int i = 0; i < n; i++)
		if (!indeg[i])
			order[tail++] = i;
	while (head < tail) {
		int i = order[head++];
		for (int k = 0; k < g->nodes[i].n_out; k++) {
			int v = g->nodes[i].out[k];
			for (int j = 0; j < n; j++)
				for (int s = 0; s < g->nodes[j].n_in; s++)
					if (g->nodes[j].in[s] == v && --indeg[j] == 0)
						order[tail++] = j;
		}
	}
	if (tail != n) {
		for (int i = 0; i < n; i++)
			if (indeg[i] > 0) {
				rc = mdl_errf(err, len, g, &g->nodes[i], "graph has a cycle");
				goto out;
			}
	}
	for (int i = 0; i < n; i++)
		sorted[i] = g->nodes[order[i]];
	for (int i = 0; i < n; i++)
		for (int k = 0; k < sorted[i].n_out; k++)
			g->values[sorted[i].out[k]].producer = i;
	free(g->nodes);
	g->nodes = sorted;
	sorted = NULL;
	rc = 0;
out:
	free(indeg);
	free(order);
	free(sorted);
	return rc;
}

static int build(struct mdl_graph *g, const Onnx__ModelProto *m, char *err, size_t len)
{
	const Onnx__GraphProto *gp = m->graph;
	int cap = 0, rc;
	g->opset = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const char *d = m->opset_import[i]->domain;
		if (!d || !*d || !strcmp(d, "ai.onnx"))
			g->opset = m->opset_import[i]->version;
	}
	if (g->opset < 0)
		return mdl_errf(err, len, g, NULL, "no default-domain opset import");
	if (g->opset < MDL_OPSET_MIN || g->opset > MDL_OPSET_MAX)
		return mdl_errf(err, len, g, NULL, "opset %lld is not supported (%d..%d)",
				(long long)g->opset, MDL_OPSET_MIN, MDL_OPSET_MAX);
	char why[200];
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *tp = gp->initializer[i];
		if ((rc = add_value(g, tp->name ? tp->name : "", &cap)) < 0)
			return rc;
		struct mdl_tensor t;
		if (pb_tensor_convert(tp, &t, 0, why, sizeof why))
			return mdl_errf(err, len, g, NULL, "initializer: %s", why);
		g->values[rc].dtype = t.dtype;
		g->values[rc].shape = t.shape;
		g->values[rc].data = t.data;
	}
	if (gp->n_sparse_initializer)
		return mdl_errf(err, len, g, NULL, "sparse initializers are not supported");
	g->inputs = malloc((gp->n_input + 1) * sizeof *g->inputs);
	g->outputs = malloc((gp->n_output + 1) * sizeof *g->outputs);
	g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
	if (!g->inputs || !g->outputs || !g->nodes)
		return -ENOMEM;
	for (size_t i = 0; i < gp->n_input; i++) {
		const char *name = gp->input[i]->name ? gp->input[i]->name : "";
		int idx = mdl_graph_find_value(g, name);
		if (idx >= 0 && g->values[idx].data)
			continue; /* an initializer listed as input (old exporters): a constant */
		if (idx >= 0)
			return mdl_errf(err, len, g, NULL, "input '%s' listed twice", name);
		if ((idx = add_value(g, name, &cap)) < 0)
			return idx;
		if ((rc = value_info_shape(g, gp->input[i], &g->values[idx], err, len)))
			return rc;
		g->inputs[g->n_inputs++] = idx;
	}
	/* nodes: create outputs first, resolve inputs once every output exists */
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *p = gp->node[i];
		struct mdl_node *n = &g->nodes[g->n_nodes];
		char nm[160];
		const char *op = p->op_type ? p->op_type : "";
		int opi = mdl_op_lookup(op);
		if (p->name && *p->name)
			snprintf(nm, sizeof nm, "%s", p->name);
		else
			snprintf(nm, sizeof nm, "%s#%zu", op, i);
		if ((p->domain && *p->domain && strcmp(p->domain, "ai.onnx")) || opi < 0) {
			snprintf(err, len, "%s: node '%s' (%s%s%s): unsupported op", g->path, nm,
				 p->domain && *p->domain ? p->domain : "", p->domain && *p->domain ? "." : "",
				 op);
			mdl_one_line(err);
			return -EINVAL;
		}
		n->op = (enum mdl_op)opi;
		n->name = strdup(nm);
		mdl_one_line(n->name);
		n->in = malloc((p->n_input + p->n_output + 1) * sizeof *n->in);
		g->n_nodes++; /* owned by the graph from here on (freed on failure) */
		if (!n->name || !n->in)
			return -ENOMEM;
		n->out = n->in + p->n_input;
		n->n_in = (int)p->n_input;
		n->n_out = (int)p->n_output;
		int min_in, max_in, min_out, max_out;
		mdl_op_arity(n->op, &min_in, &max_in, &min_out, &max_out);
		if (n->n_in < min_in || n->n_in > max_in || n->n_out < min_out || n->n_out > max_out)
			return mdl_errf(err, len, g, n, "%d inputs and %d outputs (expected %d..%d, %d..%d)",
					n->n_in, n->n_out, min_in, max_in, min_out, max_out);
		if ((rc = parse_attrs(g, n, p, err, len)))
			return rc;
		for (int k = 0; k < n->n_out; k++) {
			const char *on = p->output[k] ? p->output[k] : "";
			if (!*on)
				return mdl_errf(err, len, g, n, "output %d has no name", k);
			if (mdl_graph_find_value(g, on) >= 0)
				return mdl_errf(err, len, g, n, "value '%s' is produced twice", on);
			if ((rc = add_value(g, on, &cap)) < 0)
				return rc;
			n->out[k] = rc;
			g->values[rc].producer = g->n_nodes - 1;
		}
		if (n->op == MDL_OP_CONSTANT) {
			rc = load_constant(g, n, p, &g->values[n->out[0]], err, len);
			g->values[n->out[0]].producer = -1;
			free(n->name);
			free(n->in);
			memset(n, 0, sizeof *n);
			g->n_nodes--;
			if (rc)
				return rc;
		}
	}
	for (int i = 0, pi = 0; i < g->n_nodes; pi++) {
		const Onnx__NodeProto *p = gp->node[pi];
		if (!strcmp(p->op_type, "Constant"))
			continue;
		struct mdl_node *n = &g->nodes[i++];
		for (int k = 0; k < n->n_in; k++) {
			const char *in = p->input[k] ? p->input[k] : "";
			n->in[k] = *in ? mdl_graph_find_value(g, in) : -1;
			if (*in && n->in[k] < 0)
				return mdl_errf(err, len, g, n, "input '%s' is not produced by anything", in);
		}
	}
	for (size_t i = 0; i < gp->n_output; i++) {
		const char *name = gp->output[i]->name ? gp->output[i]->name : "";
		int idx = mdl_graph_find_value(g, name);
		if (idx < 0)
			return mdl_errf(err, len, g, NULL, "graph output '%s' is not produced", name);
		struct mdl_value decl = {.name = g->values[idx].name};
		if ((rc = value_info_shape(g, gp->output[i], &decl, err, len)))
			return rc;
		g->outputs[g->n_outputs++] = idx;
	}
	if ((rc = topo_sort(g, err, len)))
		return rc;
	return 0;
}

struct mdl_graph *mdl_graph_load_mem(const void *buf, size_t len, const char *name, char *err,
				     size_t err_len)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		err_len = sizeof dummy;
	}
	struct mdl_graph *g = calloc(1, sizeof *g);
	if (!g || !(g->path = strdup(name ? name : "<model>"))) {
		free(g);
		snprintf(err, err_len, "%s: out of memory", name);
		return NULL;
	}
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	if (!m) {
		mdl_errf(err, err_len, g, NULL, "not an ONNX model (truncated, or not protobuf)");
		mdl_graph_destroy(g);
		return NULL;
	}
	int rc;
	if (!m->has_ir_version || !m->graph)
		rc = mdl_errf(err, err_len, g, NULL, "not an ONNX model (no ir_version or graph)");
	else
		rc = build(g, m, err, err_len);
	onnx__model_proto__free_unpacked(m, NULL);
	if (!rc)
		rc = mdl_graph_optimize(g, err, err_len);
	if (!rc)
		rc = mdl_graph_check(g, err, err_len);
	if (rc) {
		if (rc == -ENOMEM)
			mdl_errf(err, err_len, g, NULL, "out of memory");
		mdl_graph_destroy(g);
		return NULL;
	}
	return g;
}

struct mdl_graph *mdl_graph_load(const char *path, char *err, size_t err_len)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		err_len = sizeof dummy;
	}
	size_t len;
	uint8_t *buf = read_file(path, &len, err, err_len);
	if (!buf)
		return NULL;
	struct mdl_graph *g = mdl_graph_load_mem(buf, len, path, err, err_len);
	free(buf);
	return g;
}

int mdl_zoo_path(const char *family, char *out, size_t len)
{
	const char *dir = getenv("SHOAL_MODEL_DIR"), *cache = getenv("XDG_CACHE_HOME"),
		   *home = getenv("HOME");
	if (dir && *dir)
		return snprintf(out, len, "%s/%s.onnx", dir, family);
	if (cache && *cache)
		return snprintf(out, len, "%s/shoal/models/onnx/%s.onnx", cache, family);
	return snprintf(out, len, "%s/.cache/shoal/models/onnx/%s.onnx", home ? home : "", family);
}
