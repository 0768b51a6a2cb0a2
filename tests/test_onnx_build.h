/* Test helper: a tiny ONNX model builder over the generated protobuf-c structs (link
 * shoal_models for onnx.pb-c). Everything lives in one arena, reset by mb_init per model; one
 * model at a time per test process. */
#ifndef SHOAL_TEST_ONNX_BUILD_H
#define SHOAL_TEST_ONNX_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

static _Alignas(16) char arena[1 << 21];
static size_t arena_used;

static inline void *ar(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > sizeof arena)
		return NULL;
	void *p = arena + arena_used;
	arena_used += n;
	memset(p, 0, n);
	return p;
}

static inline char *ar_str(const char *s) { return strcpy(ar(strlen(s) + 1), s); }

struct mb {
	Onnx__ModelProto m;
	Onnx__GraphProto g;
	Onnx__OperatorSetIdProto os, *osp[1];
	Onnx__NodeProto *node[32];
	Onnx__ValueInfoProto *in[8], *out[8];
	Onnx__TensorProto *init[32];
};

static inline void mb_init(struct mb *b, int64_t opset)
{
	arena_used = 0;
	memset(b, 0, sizeof *b);
	b->m = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
	b->g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
	b->os = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
	b->os.has_version = 1;
	b->os.version = opset;
	b->os.domain = ar_str("");
	b->osp[0] = &b->os;
	b->m.has_ir_version = 1;
	b->m.ir_version = 8;
	b->m.n_opset_import = 1;
	b->m.opset_import = b->osp;
	b->m.graph = &b->g;
	b->g.name = ar_str("g");
	b->g.node = b->node;
	b->g.input = b->in;
	b->g.output = b->out;
	b->g.initializer = b->init;
}

/* rank < 0: no shape; dims < 0 become the symbolic dimension "N". */
static inline Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims)
{
	Onnx__ValueInfoProto *v = ar(sizeof *v);
	*v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
	v->name = ar_str(name);
	Onnx__TypeProto *t = ar(sizeof *t);
	*t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
	Onnx__TypeProto__Tensor *tt = ar(sizeof *tt);
	*tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	t->tensor_type = tt;
	v->type = t;
	if (rank < 0)
		return v;
	Onnx__TensorShapeProto *s = ar(sizeof *s);
	*s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
	s->n_dim = (size_t)rank;
	s->dim = ar((size_t)rank * sizeof *s->dim);
	for (int i = 0; i < rank; i++) {
		Onnx__TensorShapeProto__Dimension *d = ar(sizeof *d);
		*d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		if (dims[i] >= 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = ar_str("N");
		}
		s->dim[i] = d;
	}
	tt->shape = s;
	return v;
}

static inline void mb_input(struct mb *b, const char *name, int rank, const int64_t *dims)
{
	b->in[b->g.n_input++] = value_info(name, rank, dims);
}

static inline void mb_output(struct mb *b, const char *name)
{
	b->out[b->g.n_output++] = value_info(name, -1, NULL);
}

static inline void mb_tensor(struct mb *b, const char *name, int rank, const int64_t *dims,
			     const float *f, const int64_t *i64)
{
	Onnx__TensorProto *t = ar(sizeof *t);
	*t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
	t->name = ar_str(name);
	t->has_data_type = 1;
	t->data_type = f ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
	t->n_dims = (size_t)rank;
	t->dims = ar((size_t)(rank ? rank : 1) * sizeof(int64_t));
	size_t n = 1;
	for (int i = 0; i < rank; i++) {
		t->dims[i] = dims[i];
		n *= (size_t)dims[i];
	}
	if (f) {
		t->n_float_data = n;
		t->float_data = ar(n * sizeof(float));
		memcpy(t->float_data, f, n * sizeof(float));
	} else {
		t->n_int64_data = n;
		t->int64_data = ar(n * sizeof(int64_t));
		if (i64) /* NULL: zeros */
			memcpy(t->int64_data, i64, n * sizeof(int64_t));
	}
	b->init[b->g.n_initializer++] = t;
}

/* ins/outs: comma-separated value names ("" entries allowed for omitted inputs). */
static inline Onnx__NodeProto *mb_node(struct mb *b, const char *op, const char *name,
				       const char *ins, const char *outs)
{
	Onnx__NodeProto *n = ar(sizeof *n);
	*n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
	n->op_type = ar_str(op);
	n->name = ar_str(name);
	n->attribute = ar(16 * sizeof *n->attribute);
	const char *lists[2] = {ins, outs};
	for (int l = 0; l < 2; l++) {
		char **arr = ar(16 * sizeof *arr);
		size_t cnt = 0;
		char *s = ar_str(lists[l]);
		for (char *p = s;; p++) {
			char *c = strchr(p, ',');
			if (c)
				*c = 0;
			arr[cnt++] = p;
			if (!c)
				break;
			p = c;
		}
		if (l == 0)
			n->input = arr, n->n_input = cnt;
		else
			n->output = arr, n->n_output = cnt;
	}
	b->node[b->g.n_node++] = n;
	return n;
}

static inline Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name)
{
	Onnx__AttributeProto *a = ar(sizeof *a);
	*a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
	a->name = ar_str(name);
	a->has_type = 1;
	n->attribute[n->n_attribute++] = a;
	return a;
}

static inline void attr_ints(Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v)
{
	Onnx__AttributeProto *a = attr(n, name);
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	a->n_ints = (size_t)cnt;
	a->ints = ar((size_t)cnt * sizeof(int64_t));
	memcpy(a->ints, v, (size_t)cnt * sizeof(int64_t));
}

static inline void attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(n, name);
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	a->has_i = 1;
	a->i = v;
}

static inline void attr_float(Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a = attr(n, name);
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	a->has_f = 1;
	a->f = v;
}

static inline void attr_str(Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a = attr(n, name);
	a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
	a->has_s = 1;
	a->s.data = (uint8_t *)ar_str(v);
	a->s.len = strlen(v);
}

static inline uint8_t *mb_pack(struct mb *b, size_t *len)
{
	*len = onnx__model_proto__get_packed_size(&b->m);
	uint8_t *buf = malloc(*len);
	onnx__model_proto__pack(&b->m, buf);
	return buf;
}

#endif
