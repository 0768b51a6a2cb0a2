/* Internal to models/: shared by the loader, the op table and the folding passes. */
#ifndef SHOAL_MDL_PRIV_H
#define SHOAL_MDL_PRIV_H

#include <stdarg.h>

#include "models/mdl.h"

/* Largest tensor accepted (elements); bigger shapes are refused as inconsistent. */
#define MDL_MAX_NUMEL ((int64_t)1 << 31)
/* 1 when the shape has a negative dimension or more than MDL_MAX_NUMEL elements. */
int mdl_shape_too_big(const struct mdl_shape *s);

/* Replaces control characters (from names in the file) so a message stays one line. */
void mdl_one_line(char *s);

/* Formats "<path>: node '<name>' (<Op>): <reason>" (node may be NULL) into err. Returns -EINVAL. */
int mdl_errf(char *err, size_t len, const struct mdl_graph *g, const struct mdl_node *n,
	     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Inference of one node: in[i] describes input slot i (NULL when omitted), with data when it
 * is known. The op fills out[] dtype and shape and, when every input is known and the op can
 * be evaluated, out[].data (malloc'ed). Returns 0 or -EINVAL with why filled. */
struct mdl_infer_ctx {
	const struct mdl_graph *g;
	const struct mdl_node *n;
	const struct mdl_tensor *in[32];
	struct mdl_tensor *out[16];
	int all_known;
	char why[200];
};
int mdl_op_infer(struct mdl_infer_ctx *c);
/* Minimum/maximum number of inputs and outputs of op. */
void mdl_op_arity(enum mdl_op op, int *min_in, int *max_in, int *min_out, int *max_out);

/* Passes run at load and after freezing an input (models/mdl_fold.c). */
int mdl_graph_optimize(struct mdl_graph *g, char *err, size_t err_len);
/* Checks shape consistency with the declared input shapes when they are all known. */
int mdl_graph_check(struct mdl_graph *g, char *err, size_t err_len);

/* Element i of a known tensor as int64 / float whatever its dtype. */
static inline int64_t mdl_t_int(const struct mdl_tensor *t, int64_t i)
{
	return t->dtype == MDL_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
					   : (int64_t)((const float *)t->data)[i];
}
static inline float mdl_t_float(const struct mdl_tensor *t, int64_t i)
{
	return t->dtype == MDL_DTYPE_INT64 ? (float)((const int64_t *)t->data)[i]
					   : ((const float *)t->data)[i];
}

#endif
