/* Shape inference over the whole graph and the load-time passes: constant folding,
 * BatchNormalization folded into Conv, activation fused into Conv, dead-node removal. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/mdl_priv.h"

void mdl_infer_destroy(struct mdl_infer *inf)
{
	if (!inf)
		return;
	for (int i = 0; i < inf->n_values; i++)
		if (inf->owned[i])
			free(inf->v[i].data);
	free(inf->v);
	free(inf->owned);
	free(inf);
}

/* Runs inference of node n over the tensors t (indexed by value). */
static int infer_node(const struct mdl_graph *g, const struct mdl_node *n, struct mdl_tensor *t,
		      unsigned char *owned, char *err, size_t len)
{
	struct mdl_infer_ctx c;
	memset(&c, 0, sizeof c);
	c.g = g;
	c.n = n;
	c.all_known = 1;
	for (int i = 0; i < n->n_in; i++) {
		c.in[i] = n->in[i] >= 0 ? &t[n->in[i]] : NULL;
		if (c.in[i] && !c.in[i]->data)
			c.all_known = 0;
	}
	for (int i = 0; i < n->n_out; i++) {
		c.out[i] = &t[n->out[i]];
		memset(c.out[i], 0, sizeof *c.out[i]);
	}
	int rc = mdl_op_infer(&c);
	for (int i = 0; i < n->n_out; i++) {
		if (c.out[i]->data)
			owned[n->out[i]] = 1;
		if (!rc && mdl_shape_too_big(&c.out[i]->shape))
			rc = (snprintf(c.why, sizeof c.why, "output %d would be too large or has a negative "
				       "dimension", i), -EINVAL);
	}
	if (rc == -ENOMEM)
		return mdl_errf(err, len, g, n, "out of memory");
	if (rc)
		return mdl_errf(err, len, g, n, "%s", c.why);
	return 0;
}

struct mdl_infer *mdl_graph_infer(const struct mdl_graph *g, const struct mdl_shape *inputs,
				  char *err, size_t err_len)
{
	char dummy[8];
	if (!err) {
		err = dummy;
		err_len = sizeof dummy;
	}
	struct mdl_infer *inf = calloc(1, sizeof *inf);
	if (!inf)
		return NULL;
	inf->n_values = g->n_values;
	inf->v = calloc((size_t)g->n_values + 1, sizeof *inf->v);
	inf->owned = calloc((size_t)g->n_values + 1, 1);
	if (!inf->v || !inf->owned) {
		mdl_infer_destroy(inf);
		return NULL;
	}
	for (int i = 0; i < g->n_values; i++) {
		const struct mdl_value *v = &g->values[i];
		if (v->data)
			inf->v[i] = (struct mdl_tensor){v->dtype, v->shape, v->data};
	}
	for (int i = 0; i < g->n_inputs; i++) {
		const struct mdl_value *v = &g->values[g->inputs[i]];
		struct mdl_tensor *t = &inf->v[g->inputs[i]];
		t->dtype = v->dtype;
		t->shape = inputs ? inputs[i] : v->shape;
		char a[96], b[96];
		if (t->shape.rank < 0 || (v->shape.rank >= 0 && t->shape.rank != v->shape.rank)) {
			mdl_errf(err, err_len, g, NULL, "input '%s': shape %s does not match declared %s",
				 v->name, mdl_shape_str(&t->shape, a, sizeof a),
				 mdl_shape_str(&v->shape, b, sizeof b));
			goto fail;
		}
		for (int k = 0; k < t->shape.rank; k++)
			if (t->shape.d[k] < 0 || mdl_shape_too_big(&t->shape)) {
				mdl_errf(err, err_len, g, NULL, "input '%s': shape %s is not fully known",
					 v->name, mdl_shape_str(&t->shape, a, sizeof a));
				goto fail;
			}
	}
	for (int i = 0; i < g->n_nodes; i++)
		if (infer_node(g, &g->nodes[i], inf->v, inf->owned, err, err_len))
			goto fail;
	return inf;
fail:
	mdl_infer_destroy(inf);
	return NULL;
}

/* ---- load-time passes ------------------------------------------------------------------- */

/* Number of node inputs reading value v, plus one when v is a graph output. */
static int uses(const struct mdl_graph *g, const unsigned char *dead, int v)
{
	int u = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		if (dead && dead[i])
			continue;
		for (int k = 0; k < g->nodes[i].n_in; k++)
			u += g->nodes[i].in[k] == v;
	}
	for (int i = 0; i < g->n_outputs; i++)
		u += g->outputs[i] == v;
	return u;
}

/* Replaces every node whose inputs are all constant and whose op can be evaluated. */
static int fold_constants(struct mdl_graph *g, unsigned char *dead, char *err, size_t len)
{
	struct mdl_tensor *t = calloc((size_t)g->n_values + 1, sizeof *t);
	unsigned char *owned = calloc((size_t)g->n_values + 1, 1);
	int rc = -ENOMEM;
	if (!t || !owned)
		goto out;
	for (int i = 0; i < g->n_values; i++)
		if (g->values[i].data)
			t[i] = (struct mdl_tensor){g->values[i].dtype, g->values[i].shape, g->values[i].data};
	rc = 0;
	for (int i = 0; i < g->n_nodes && !rc; i++) {
		struct mdl_node *n = &g->nodes[i];
		int all = 1;
		for (int k = 0; k < n->n_in; k++)
			if (n->in[k] >= 0 && !g->values[n->in[k]].data)
				all = 0;
		if (!all || dead[i])
			continue;
		if ((rc = infer_node(g, n, t, owned, err, len)))
			break;
		int got = 1;
		for (int k = 0; k < n->n_out; k++)
			got &= t[n->out[k]].data != NULL;
		if (!got)
			continue;
		for (int k = 0; k < n->n_out; k++) {
			struct mdl_value *v = &g->values[n->out[k]];
			v->dtype = t[n->out[k]].dtype;
			v->shape = t[n->out[k]].shape;
			v->data = t[n->out[k]].data;
			v->producer = -1;
			owned[n->out[k]] = 0;
		}
		dead[i] = 1;
		g->n_folded++;
	}
out:
	if (owned)
		for (int i = 0; i < g->n_values; i++)
			if (owned[i])
				free(t[i].data);
	free(t);
	free(owned);
	return rc;
}

static int new_const(struct mdl_graph *g, const char *name, int64_t cnt)
{
	struct mdl_value *nv = realloc(g->values, ((size_t)g->n_values + 1) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	g->values = nv;
	struct mdl_value *v = &g->values[g->n_values];
	memset(v, 0, sizeof *v);
	v->name = malloc(strlen(name) + 6);
	v->data = calloc((size_t)cnt, sizeof(float));
	if (!v->name || !v->data) {
		free(v->name);
		free(v->data);
		return -ENOMEM;
	}
	sprintf(v->name, "%s.bias", name);
	v->dtype = MDL_DTYPE_FLOAT;
	v->shape = (struct mdl_shape){1, {cnt}};
	v->producer = -1;
	return g->n_values++;
}

/* Conv (constant float weights, output read only by `next`) followed by next: returns the Conv
 * node index or -1. */
static int conv_before(struct mdl_graph *g, const unsigned char *dead, const struct mdl_node *next)
{
	int x = next->in[0];
	int p = g->values[x].producer;
	if (p < 0 || dead[p] || g->nodes[p].op != MDL_OP_CONV || uses(g, dead, x) != 1)
		return -1;
	const struct mdl_node *c = &g->nodes[p];
	if (!g->values[c->in[1]].data || g->values[c->in[1]].dtype != MDL_DTYPE_FLOAT)
		return -1;
	return p;
}

/* y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta folded into the Conv's W and B. */
static int fold_batchnorm(struct mdl_graph *g, unsigned char *dead, int bi)
{
	struct mdl_node *bn = &g->nodes[bi];
	int ci = conv_before(g, dead, bn);
	if (ci < 0)
		return 0;
	struct mdl_node *c = &g->nodes[ci];
	if (c->a.act != MDL_ACT_NONE || uses(g, dead, c->in[1]) != 1)
		return 0;
	for (int k = 1; k < 5; k++)
		if (!g->values[bn->in[k]].data || g->values[bn->in[k]].dtype != MDL_DTYPE_FLOAT)
			return 0;
	struct mdl_value *w = &g->values[c->in[1]];
	int64_t m = w->shape.d[0], per = mdl_shape_numel(&w->shape) / (m ? m : 1);
	if (mdl_shape_numel(&g->values[bn->in[1]].shape) != m)
		return 0;
	int bias = c->n_in > 2 ? c->in[2] : -1;
	if (bias >= 0 && (!g->values[bias].data || uses(g, dead, bias) != 1 ||
			  g->values[bias].dtype != MDL_DTYPE_FLOAT))
		return 0;
	if (bias < 0) {
		int *ni = malloc(4 * sizeof *ni);
		if (!ni)
			return -ENOMEM;
		bias = new_const(g, c->name, m);
		if (bias < 0) {
			free(ni);
			return bias;
		}
		w = &g->values[c->in[1]];
		ni[0] = c->in[0];
		ni[1] = c->in[1];
		ni[2] = bias;
		ni[3] = c->out[0];
		free(c->in);
		c->in = ni;
		c->out = ni + 3;
		c->n_in = 3;
	}
	const float *gam = g->values[bn->in[1]].data, *bet = g->values[bn->in[2]].data;
	const float *mean = g->values[bn->in[3]].data, *var = g->values[bn->in[4]].data;
	float *wd = w->data, *bd = g->values[bias].data;
	for (int64_t o = 0; o < m; o++) {
		float s = gam[o] / sqrtf(var[o] + bn->a.alpha);
		for (int64_t e = 0; e < per; e++)
			wd[o * per + e] *= s;
		bd[o] = (bd[o] - mean[o]) * s + bet[o];
	}
	g->values[c->out[0]].producer = -1; /* orphaned: nothing reads it any more */
	c->out[0] = bn->out[0];
	g->values[bn->out[0]].producer = ci;
	dead[bi] = 1;
	g->n_folded_bn++;
	return 0;
}

/* Relu / LeakyRelu / Clip (constant bounds) after a Conv becomes the Conv's activation. */
static void fuse_activation(struct mdl_graph *g, unsigned char *dead, int ai)
{
	struct mdl_node *an = &g->nodes[ai];
	int ci = conv_before(g, dead, an);
	if (ci < 0 || g->nodes[ci].a.act != MDL_ACT_NONE)
		return;
	struct mdl_node *c = &g->nodes[ci];
	float lo = an->a.alpha, hi = an->a.beta;
	if (an->op == MDL_OP_CLIP) {
		for (int k = 1; k < an->n_in; k++) {
			if (an->in[k] < 0)
				continue;
			const struct mdl_value *b = &g->values[an->in[k]];
			if (!b->data || b->dtype != MDL_DTYPE_FLOAT || mdl_shape_numel(&b->shape) != 1)
				return;
			*(k == 1 ? &lo : &hi) = *(const float *)b->data;
		}
		c->a.act = MDL_ACT_CLIP;
		c->a.act_a = lo;
		c->a.act_b = hi;
	} else if (an->op == MDL_OP_RELU) {
		c->a.act = MDL_ACT_RELU;
	} else {
		c->a.act = MDL_ACT_LEAKYRELU;
		c->a.act_a = an->a.alpha;
	}
	g->values[c->out[0]].producer = -1;
	c->out[0] = an->out[0];
	g->values[an->out[0]].producer = ci;
	dead[ai] = 1;
}

/* Drops dead nodes and nodes nothing reads, then renumbers producers. */
static void compact(struct mdl_graph *g, unsigned char *dead)
{
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = g->n_nodes - 1; i >= 0; i--) {
			if (dead[i])
				continue;
			int used = 0;
			for (int k = 0; k < g->nodes[i].n_out; k++)
				used += uses(g, dead, g->nodes[i].out[k]);
			if (!used) {
				dead[i] = 1;
				changed = 1;
			}
		}
	}
	int j = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		if (dead[i]) {
			free(g->nodes[i].name);
			free(g->nodes[i].in);
			continue;
		}
		g->nodes[j] = g->nodes[i];
		for (int k = 0; k < g->nodes[j].n_out; k++)
			g->values[g->nodes[j].out[k]].producer = j;
		j++;
	}
	g->n_nodes = j;
}

int mdl_graph_optimize(struct mdl_graph *g, char *err, size_t err_len)
{
	for (int i = 0; i < g->n_nodes; i++) {
		struct mdl_node *n = &g->nodes[i];
		const struct mdl_value *w = n->n_in > 1 ? &g->values[n->in[1]] : NULL;
		if (n->op == MDL_OP_CONV && !n->a.kernel[0] && w && w->data && w->shape.rank == 4) {
			n->a.kernel[0] = w->shape.d[2];
			n->a.kernel[1] = w->shape.d[3];
		}
	}
	unsigned char *dead = calloc((size_t)g->n_nodes + 1, 1);
	if (!dead)
		return -ENOMEM;
	int rc = fold_constants(g, dead, err, err_len);
	for (int i = 0; i < g->n_nodes && !rc; i++) {
		enum mdl_op op = g->nodes[i].op;
		if (dead[i])
			continue;
		if (op == MDL_OP_BATCHNORM)
			rc = fold_batchnorm(g, dead, i);
		else if (op == MDL_OP_RELU || op == MDL_OP_CLIP || op == MDL_OP_LEAKYRELU)
			fuse_activation(g, dead, i);
	}
	if (!rc)
		compact(g, dead);
	free(dead);
	return rc;
}

int mdl_graph_input_needs_const(const struct mdl_graph *g, int idx)
{
	if (idx < 0 || idx >= g->n_inputs)
		return 0;
	int v = g->inputs[idx];
	for (int i = 0; i < g->n_nodes; i++)
		for (int k = 0; k < g->nodes[i].n_in; k++)
			if (g->nodes[i].in[k] == v && mdl_op_input_const(g->nodes[i].op, k))
				return 1;
	return 0;
}

int mdl_graph_check(struct mdl_graph *g, char *err, size_t err_len)
{
	for (int i = 0; i < g->n_inputs; i++) {
		const struct mdl_shape *s = &g->values[g->inputs[i]].shape;
		if (s->rank < 0 || mdl_graph_input_needs_const(g, i))
			return 0;
		for (int k = 0; k < s->rank; k++)
			if (s->d[k] < 0)
				return 0;
	}
	struct mdl_infer *inf = mdl_graph_infer(g, NULL, err, err_len);
	if (!inf)
		return -EINVAL;
	mdl_infer_destroy(inf);
	return 0;
}

int mdl_graph_freeze_input(struct mdl_graph *g, const char *name, const struct mdl_tensor *t,
			   char *err, size_t err_len)
{
	int idx = -1;
	for (int i = 0; i < g->n_inputs; i++)
		if (!strcmp(g->values[g->inputs[i]].name, name))
			idx = i;
	if (idx < 0)
		return -ENOENT;
	struct mdl_value *v = &g->values[g->inputs[idx]];
	if (v->shape.rank >= 0 && v->shape.rank != t->shape.rank)
		return mdl_errf(err, err_len, g, NULL, "input '%s': frozen value has rank %d, not %d",
				name, t->shape.rank, v->shape.rank);
	size_t bytes = (size_t)mdl_shape_numel(&t->shape) * mdl_dtype_size(t->dtype);
	v->data = malloc(bytes ? bytes : 1);
	if (!v->data)
		return -ENOMEM;
	memcpy(v->data, t->data, bytes);
	v->dtype = t->dtype;
	v->shape = t->shape;
	memmove(&g->inputs[idx], &g->inputs[idx + 1], (size_t)(g->n_inputs - idx - 1) * sizeof(int));
	g->n_inputs--;
	int rc = mdl_graph_optimize(g, err, err_len);
	return rc ? rc : mdl_graph_check(g, err, err_len);
}
