/* models — ONNX loader, graph IR and shape inference (DESIGN.md §5).
 *
 * This header is the module's only public one. A model file is read with protobuf-c (the C
 * code is generated at build time from Debian's onnx.proto) into a graph IR:
 *
 *   - values: every tensor of the graph (inputs, initializers, node outputs), by index;
 *   - nodes: topologically ordered, each with an op from one op table and its attributes
 *     already parsed and checked (struct mdl_attrs);
 *   - constants: initializers, Constant nodes and every node whose inputs are all constant
 *     are folded at load; BatchNormalization after a Conv is folded into the Conv weights.
 *
 * Shapes are inferred per input shape (any batch size, any input height/width) by
 * mdl_graph_infer(); it also evaluates the nodes whose result only depends on shapes
 * (Shape -> Gather -> Concat -> Reshape chains), so a backend sees them as constants.
 *
 * Errors: every function that can fail writes one line into err (when err is not NULL) that
 * names the file, the node when there is one, and the reason; nothing is printed.
 * Data types: float32 is the compute type; int64 (int32 and bool are widened to it) exists for
 * shape tensors and indices. Other element types are refused at load.
 */
#ifndef SHOAL_MDL_H
#define SHOAL_MDL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MDL_MAX_DIMS 8
#define MDL_OPSET_MIN 1  /* oldest default-domain opset accepted */
#define MDL_OPSET_MAX 18 /* newest default-domain opset accepted */

/* Element types, numbered as ONNX's TensorProto.DataType. */
enum mdl_dtype {
	MDL_DTYPE_FLOAT = 1,
	MDL_DTYPE_INT64 = 7,
};

struct mdl_shape {
	int rank;
	int64_t d[MDL_MAX_DIMS]; /* -1: not known (only in declared graph-input shapes) */
};

/* A tensor: dtype, shape and (for constants) its elements, densely packed, row-major. */
struct mdl_tensor {
	enum mdl_dtype dtype;
	struct mdl_shape shape;
	void *data; /* float or int64_t elements; NULL for a value computed at run time */
};

/* The op table (models/mdl_ops.c): one entry per supported ONNX op. */
enum mdl_op {
	MDL_OP_CONV,
	MDL_OP_BATCHNORM,
	MDL_OP_GEMM,
	MDL_OP_MATMUL,
	/* unary elementwise */
	MDL_OP_RELU,
	MDL_OP_LEAKYRELU,
	MDL_OP_CLIP,
	MDL_OP_SIGMOID,
	MDL_OP_HARDSIGMOID,
	MDL_OP_HARDSWISH,
	MDL_OP_TANH,
	MDL_OP_EXP,
	MDL_OP_NEG,
	MDL_OP_ABS,
	MDL_OP_SQRT,
	/* binary elementwise with broadcasting */
	MDL_OP_ADD,
	MDL_OP_SUB,
	MDL_OP_MUL,
	MDL_OP_DIV,
	MDL_OP_PRELU,
	/* pooling */
	MDL_OP_MAXPOOL,
	MDL_OP_AVGPOOL,
	MDL_OP_GLOBALAVGPOOL,
	MDL_OP_GLOBALMAXPOOL,
	/* data movement */
	MDL_OP_CONCAT,
	MDL_OP_RESIZE,
	MDL_OP_TRANSPOSE,
	MDL_OP_SLICE,
	MDL_OP_SPLIT,
	MDL_OP_SOFTMAX,
	MDL_OP_GATHER,
	/* views: the output shares the input's elements */
	MDL_OP_RESHAPE,
	MDL_OP_FLATTEN,
	MDL_OP_SQUEEZE,
	MDL_OP_UNSQUEEZE,
	MDL_OP_IDENTITY,
	/* shape arithmetic (always folded away before a backend sees it, or a view) */
	MDL_OP_SHAPE,
	MDL_OP_CAST,
	MDL_OP_CONSTANT,
	MDL_OP_COUNT
};

enum mdl_auto_pad { MDL_PAD_NOTSET, MDL_PAD_SAME_UPPER, MDL_PAD_SAME_LOWER, MDL_PAD_VALID };
enum mdl_resize_mode { MDL_RESIZE_NEAREST, MDL_RESIZE_LINEAR };
enum mdl_resize_coord {
	MDL_COORD_HALF_PIXEL,
	MDL_COORD_PYTORCH_HALF_PIXEL,
	MDL_COORD_ALIGN_CORNERS,
	MDL_COORD_ASYMMETRIC,
	MDL_COORD_TF_HALF_PIXEL_FOR_NN,
};
enum mdl_resize_nearest {
	MDL_NEAREST_ROUND_PREFER_FLOOR,
	MDL_NEAREST_ROUND_PREFER_CEIL,
	MDL_NEAREST_FLOOR,
	MDL_NEAREST_CEIL,
};
/* Activation fused into a Conv/Gemm output (set by the loader's fusion pass). */
enum mdl_act { MDL_ACT_NONE, MDL_ACT_RELU, MDL_ACT_CLIP, MDL_ACT_LEAKYRELU };

/* Attributes of a node, parsed and checked at load; each op reads the fields it documents.
 * Spatial ops (Conv, pools) are 2-D: index 0 = height, 1 = width; pads = top, left, bottom,
 * right. */
struct mdl_attrs {
	int64_t kernel[2], stride[2], dil[2], pad[4];
	enum mdl_auto_pad auto_pad;
	int64_t group;             /* Conv */
	int ceil_mode;             /* pools */
	int count_include_pad;     /* AveragePool */
	int64_t axis;              /* Concat, Softmax, Split, Gather, Flatten (normalised >= 0 at infer) */
	float alpha, beta;         /* LeakyRelu, HardSigmoid, Gemm, Clip(min, max), BN epsilon */
	int trans_a, trans_b;      /* Gemm */
	int n_perm;                /* Transpose (0: reverse) */
	int64_t perm[MDL_MAX_DIMS];
	int n_axes;                /* Squeeze/Unsqueeze/Slice axes given as attribute (old opsets) */
	int64_t axes[MDL_MAX_DIMS];
	int64_t starts[MDL_MAX_DIMS], ends[MDL_MAX_DIMS]; /* Slice (opset < 10) */
	int n_split;               /* Split sizes given as attribute (opset < 13) */
	int64_t split[16];
	int allowzero;             /* Reshape */
	int64_t start, end;        /* Shape (end = INT64_MAX: to the end) */
	int has_end;
	enum mdl_resize_mode mode;
	enum mdl_resize_coord coord;
	enum mdl_resize_nearest nearest;
	int legacy_softmax;        /* Softmax before opset 13: coerced to 2-D at axis */
	enum mdl_act act;          /* fused activation (Conv); alpha/beta hold its parameters */
	float act_a, act_b;
};

struct mdl_node {
	enum mdl_op op;
	char *name;   /* the node's name in the file, or "<op>#<index>" when it has none */
	int n_in, n_out;
	int *in;      /* value indices; -1 for an omitted optional input */
	int *out;
	struct mdl_attrs a;
};

struct mdl_value {
	char *name;
	enum mdl_dtype dtype;
	struct mdl_shape shape; /* declared shape (graph inputs), or the constant's shape */
	void *data;             /* constant elements (initializer or folded), else NULL */
	int producer;           /* index of the node computing it, -1 for inputs and constants */
};

struct mdl_graph {
	char *path;             /* the file it came from (for messages) */
	int64_t opset;          /* default-domain opset */
	int n_values;
	struct mdl_value *values;
	int n_nodes;
	struct mdl_node *nodes; /* topological order */
	int n_inputs, n_outputs;
	int *inputs, *outputs;  /* value indices; inputs exclude initializers */
	int n_folded_bn;        /* BatchNormalization nodes folded into a Conv at load */
	int n_folded;           /* nodes replaced by constants at load */
};

/* Per-value results of shape inference for one set of input shapes. */
struct mdl_infer {
	int n_values;
	struct mdl_tensor *v; /* dtype, shape; data != NULL for every value known before run time */
	unsigned char *owned; /* v[i].data was computed by the inference (freed with it) */
};

/* ---- loading ---------------------------------------------------------------------------- */

/* Reads and checks an ONNX file, builds the IR, folds constants and BatchNormalization.
 * NULL on failure with err = "<path>: node '<name>' (<Op>): <reason>" or "<path>: <reason>". */
struct mdl_graph *mdl_graph_load(const char *path, char *err, size_t err_len);

/* Where the zoo's converted file of `family` lives: $SHOAL_MODEL_DIR/<family>.onnx, else the
 * cache of scripts/fetch-models.sh (${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx/).
 * Writes the path (truncated to len) and returns what snprintf returns. */
int mdl_zoo_path(const char *family, char *out, size_t len);

/* Same from bytes in memory; name is used in messages. */
struct mdl_graph *mdl_graph_load_mem(const void *buf, size_t len, const char *name, char *err,
				     size_t err_len);

void mdl_graph_destroy(struct mdl_graph *g);

/* Turns graph input `name` into a constant with the given elements (copied) and folds again.
 * Used for inputs that must be known before running (Resize scales, Reshape shape …).
 * 0, -ENOENT (no such input), -EINVAL (dtype/shape mismatch, err filled). */
int mdl_graph_freeze_input(struct mdl_graph *g, const char *name, const struct mdl_tensor *t,
			   char *err, size_t err_len);

/* 1 when graph input idx (0..n_inputs-1) feeds an op input that must be a constant. */
int mdl_graph_input_needs_const(const struct mdl_graph *g, int idx);

/* Index of the value named name, or -1. */
int mdl_graph_find_value(const struct mdl_graph *g, const char *name);

/* ---- shape inference -------------------------------------------------------------------- */

/* Infers dtype and shape of every value for the given input shapes (one per graph input, in
 * order; NULL uses the declared shapes, which must then be fully known) and evaluates what
 * depends only on shapes and constants. NULL on failure with err naming node and reason. */
struct mdl_infer *mdl_graph_infer(const struct mdl_graph *g, const struct mdl_shape *inputs,
				  char *err, size_t err_len);
void mdl_infer_destroy(struct mdl_infer *inf);

/* Geometry helpers shared by inference and backends. `in` are the node's inputs as given by
 * an mdl_infer (in[i] = &inf->v[n->in[i]], NULL for omitted ones); operands that must be
 * constant are read from their data. */

/* Output size and effective pads (top, left, bottom, right) of a 2-D Conv/pool on NCHW x. */
void mdl_node_window(const struct mdl_node *n, const struct mdl_shape *x, int64_t pads[4],
		     int64_t out_hw[2]);
/* Slice: per-axis first index and step of the output (unsliced axes: 0 and 1). 0 or -EINVAL. */
int mdl_node_slice(const struct mdl_node *n, const struct mdl_tensor *const *in,
		   int64_t start[MDL_MAX_DIMS], int64_t step[MDL_MAX_DIMS]);
/* Split: normalised axis and the size of each output along it. */
int mdl_node_split(const struct mdl_node *n, const struct mdl_tensor *const *in, int *axis,
		   int64_t *sizes);
/* Resize: scale factor of every axis (output / input when sizes are given). */
int mdl_node_resize_scales(const struct mdl_node *n, const struct mdl_tensor *const *in,
			   float scales[MDL_MAX_DIMS]);
/* Transpose: the permutation (default: reversed axes). */
void mdl_node_perm(const struct mdl_node *n, int rank, int perm[MDL_MAX_DIMS]);
/* Normalises axis (may be negative) for rank; -1 when out of range. */
int mdl_axis(int64_t axis, int rank);

/* ---- tensors and ops -------------------------------------------------------------------- */

/* Reads a serialized TensorProto file (ONNX test data) into t (data malloc'ed; float types
 * become float, integer and bool types int64). 0 or -errno with err filled. */
int mdl_tensor_read(const char *path, struct mdl_tensor *t, char *err, size_t err_len);
void mdl_tensor_free(struct mdl_tensor *t);

int64_t mdl_shape_numel(const struct mdl_shape *s);
size_t mdl_dtype_size(enum mdl_dtype dt);
/* "[1,3,224,224]" into buf; returns buf. */
const char *mdl_shape_str(const struct mdl_shape *s, char *buf, size_t len);

/* ONNX name of an op ("Conv"), and the op for an ONNX name (-1 when unsupported). */
const char *mdl_op_name(enum mdl_op op);
int mdl_op_lookup(const char *onnx_name);
/* 1 when input slot `slot` of op must be a constant at load or infer time (weights, shape
 * operands, Resize scales, Clip bounds, Gather indices). */
int mdl_op_input_const(enum mdl_op op, int slot);

#ifdef __cplusplus
}
#endif
#endif
