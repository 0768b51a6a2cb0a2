/* Loader and CPU backend behaviour on models built here with the generated protobuf-c structs:
 * refusals of bad files, BatchNormalization folding, shape inference for any batch and size,
 * shape arithmetic evaluated per variant, batch consistency and convolution kernels against
 * a direct reference. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu/gpu.h"
#include "harness.h"
#include "models/mdl.h"
#include "onnx.pb-c.h"
#include "test_onnx_build.h"

static struct mdl_graph *mb_load(struct mb *b, const char *name, char *err, size_t len)
{
	size_t n;
	uint8_t *buf = mb_pack(b, &n);
	struct mdl_graph *g = mdl_graph_load_mem(buf, n, name, err, len);
	free(buf);
	return g;
}

static int refusal_ok(const char *err, const char *name, const char *want)
{
	if (!*err || strchr(err, '\n') || strncmp(err, name, strlen(name)) || !strstr(err, want)) {
		fprintf(stderr, "unexpected refusal: '%s' (want '%s' naming %s)\n", err, want, name);
		return 0;
	}
	return 1;
}

static float frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* ---- refusals --------------------------------------------------------------------------------- */

static int test_refuses_not_protobuf(void)
{
	char path[] = "/tmp/shoal_notonnx_XXXXXX", err[256] = "";
	int fd = mkstemp(path);
	ST_CHECK(fd >= 0);
	const char junk[] = "this is a text file, not an ONNX model\n";
	ST_CHECK_EQ(write(fd, junk, sizeof junk - 1), (long long)(sizeof junk - 1));
	close(fd);
	struct mdl_graph *g = mdl_graph_load(path, err, sizeof err);
	unlink(path);
	ST_CHECK(g == NULL);
	ST_CHECK(refusal_ok(err, path, "not an ONNX model"));
	return ST_PASS;
}

static int test_refuses_missing_file(void)
{
	char err[256] = "";
	ST_CHECK(mdl_graph_load("/nonexistent/model.onnx", err, sizeof err) == NULL);
	ST_CHECK(refusal_ok(err, "/nonexistent/model.onnx", "cannot open"));
	return ST_PASS;
}

static void conv_model(struct mb *b, int64_t opset)
{
	static const int64_t xd[4] = {-1, 3, -1, -1}, wd[4] = {4, 3, 3, 3};
	float w[108];
	unsigned s = 1;
	for (int i = 0; i < 108; i++)
		w[i] = frand(&s);
	mb_init(b, opset);
	mb_input(b, "x", 4, xd);
	mb_tensor(b, "w", 4, wd, w, NULL);
	Onnx__NodeProto *n = mb_node(b, "Conv", "conv0", "x,w", "c");
	attr_ints(n, "strides", 2, (const int64_t[]){2, 2});
	attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
	mb_node(b, "Relu", "relu0", "c", "r");
	n = mb_node(b, "MaxPool", "pool0", "r", "y");
	attr_ints(n, "kernel_shape", 2, (const int64_t[]){2, 2});
	attr_ints(n, "strides", 2, (const int64_t[]){2, 2});
	mb_output(b, "y");
}

static int test_refuses_truncated_file(void)
{
	struct mb b;
	conv_model(&b, 13);
	size_t len;
	uint8_t *buf = mb_pack(&b, &len);
	char err[256] = "";
	struct mdl_graph *g = mdl_graph_load_mem(buf, len, "whole.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	mdl_graph_destroy(g);
	size_t cuts[] = {len - 1, len / 2, 3};
	for (size_t i = 0; i < 3; i++) {
		err[0] = 0;
		g = mdl_graph_load_mem(buf, cuts[i], "cut.onnx", err, sizeof err);
		if (g) {
			free(buf);
			mdl_graph_destroy(g);
			ST_CHECK(!"truncated model was accepted");
		}
		ST_CHECK(refusal_ok(err, "cut.onnx", "cut.onnx: "));
	}
	free(buf);
	return ST_PASS;
}

static int test_refuses_unknown_op(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", 2, (const int64_t[]){2, 3});
	mb_node(&b, "FancyOp", "n0", "x", "y");
	mb_output(&b, "y");
	char err[256] = "";
	ST_CHECK(mb_load(&b, "fancy.onnx", err, sizeof err) == NULL);
	ST_CHECK(refusal_ok(err, "fancy.onnx", "node 'n0' (FancyOp): unsupported op"));
	return ST_PASS;
}

static int test_refuses_unsupported_opset(void)
{
	struct mb b;
	conv_model(&b, 99);
	char err[256] = "";
	ST_CHECK(mb_load(&b, "future.onnx", err, sizeof err) == NULL);
	ST_CHECK(refusal_ok(err, "future.onnx", "opset 99 is not supported"));
	return ST_PASS;
}

static int test_refuses_inconsistent_shapes(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "a", 2, (const int64_t[]){2, 3});
	mb_input(&b, "b", 2, (const int64_t[]){4, 5});
	mb_node(&b, "Add", "add0", "a,b", "y");
	mb_output(&b, "y");
	char err[256] = "";
	ST_CHECK(mb_load(&b, "bad.onnx", err, sizeof err) == NULL);
	ST_CHECK(refusal_ok(err, "bad.onnx", "node 'add0' (Add): shapes [2,3] and [4,5] do not broadcast"));
	/* a Conv whose weights do not match the input channels, found when a variant is prepared */
	struct mb c;
	conv_model(&c, 13);
	c.in[0] = value_info("x", 4, (const int64_t[]){-1, 5, -1, -1});
	struct mdl_graph *g = mb_load(&c, "conv.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	struct mdl_shape s = {4, {1, 5, 16, 16}};
	err[0] = 0;
	struct mdl_infer *inf = mdl_graph_infer(g, &s, err, sizeof err);
	mdl_graph_destroy(g);
	ST_CHECK(inf == NULL);
	ST_CHECK(refusal_ok(err, "conv.onnx", "node 'conv0' (Conv): X has 5 channels"));
	return ST_PASS;
}

static int test_refuses_unsupported_attribute(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, (const int64_t[]){1, 1, 4, 4});
	mb_tensor(&b, "sc", 1, (const int64_t[]){4}, (const float[]){1, 1, 2, 2}, NULL);
	Onnx__NodeProto *n = mb_node(&b, "Resize", "up", "x,,sc", "y");
	attr_str(n, "mode", "cubic");
	mb_output(&b, "y");
	char err[256] = "";
	ST_CHECK(mb_load(&b, "cubic.onnx", err, sizeof err) == NULL);
	ST_CHECK(refusal_ok(err, "cubic.onnx", "node 'up' (Resize): mode 'cubic' is not supported"));
	return ST_PASS;
}

/* ---- folding and inference -------------------------------------------------------------------- */

static int test_infers_any_batch_and_size(void)
{
	struct mb b;
	conv_model(&b, 13);
	char err[256] = "";
	struct mdl_graph *g = mb_load(&b, "net.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	ST_CHECK_EQ(g->n_nodes, 2); /* Relu fused into the Conv */
	struct {
		struct mdl_shape in;
		int64_t out[4];
	} cases[] = {{{4, {1, 3, 32, 32}}, {1, 4, 8, 8}}, {{4, {5, 3, 65, 47}}, {5, 4, 16, 12}},
		     {{4, {2, 3, 320, 192}}, {2, 4, 80, 48}}};
	for (int i = 0; i < 3; i++) {
		struct mdl_infer *inf = mdl_graph_infer(g, &cases[i].in, err, sizeof err);
		ST_CHECK(inf != NULL);
		const struct mdl_tensor *y = &inf->v[g->outputs[0]];
		ST_CHECK_EQ(y->shape.rank, 4);
		for (int k = 0; k < 4; k++)
			ST_CHECK_EQ(y->shape.d[k], cases[i].out[k]);
		mdl_infer_destroy(inf);
	}
	mdl_graph_destroy(g);
	return ST_PASS;
}

static float conv_ref(const float *x, const float *w, const float *bias, int C, int H, int W,
		      int M, int group, int k, int s, int d, int pt, int pl, int m, int oh, int ow)
{
	int cg = C / group, g = m / (M / group);
	float acc = bias ? bias[m] : 0.0f;
	for (int c = 0; c < cg; c++)
		for (int i = 0; i < k; i++)
			for (int j = 0; j < k; j++) {
				int ih = oh * s - pt + i * d, iw = ow * s - pl + j * d;
				if (ih < 0 || ih >= H || iw < 0 || iw >= W)
					continue;
				acc += x[((g * cg + c) * H + ih) * W + iw] * w[((m * cg + c) * k + i) * k + j];
			}
	return acc;
}

static int test_folds_batchnorm_into_conv(void)
{
	enum { C = 2, M = 3, H = 5, W = 6 };
	float w[M * C * 9], gam[M], bet[M], mean[M], var[M], x[C * H * W];
	unsigned s = 7;
	for (int i = 0; i < M * C * 9; i++)
		w[i] = frand(&s);
	for (int i = 0; i < M; i++) {
		gam[i] = frand(&s) + 1.5f;
		bet[i] = frand(&s);
		mean[i] = frand(&s);
		var[i] = frand(&s) + 1.2f;
	}
	for (int i = 0; i < C * H * W; i++)
		x[i] = frand(&s);
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, (const int64_t[]){1, C, H, W});
	mb_tensor(&b, "w", 4, (const int64_t[]){M, C, 3, 3}, w, NULL);
	mb_tensor(&b, "gam", 1, (const int64_t[]){M}, gam, NULL);
	mb_tensor(&b, "bet", 1, (const int64_t[]){M}, bet, NULL);
	mb_tensor(&b, "mean", 1, (const int64_t[]){M}, mean, NULL);
	mb_tensor(&b, "var", 1, (const int64_t[]){M}, var, NULL);
	Onnx__NodeProto *n = mb_node(&b, "Conv", "conv", "x,w", "c");
	attr_ints(n, "pads", 4, (const int64_t[]){1, 1, 1, 1});
	mb_node(&b, "BatchNormalization", "bn", "c,gam,bet,mean,var", "y");
	mb_output(&b, "y");
	char err[256] = "";
	struct mdl_graph *g = mb_load(&b, "bn.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	ST_CHECK_EQ(g->n_nodes, 1);
	ST_CHECK_EQ(g->n_folded_bn, 1);
	ST_CHECK_EQ(g->nodes[0].op, MDL_OP_CONV);
	struct gpu_backend *be = gpu_backend_cpu_create(2, err, sizeof err);
	struct gpu_family *f = gpu_family_load(be, g, err, sizeof err);
	struct gpu_variant *v = gpu_variant_prepare_image(f, 1, H, W, err, sizeof err);
	ST_CHECK(v != NULL);
	memcpy(gpu_variant_input(v, 0), x, sizeof x);
	ST_CHECK_EQ(gpu_variant_run(v, 1), 0);
	struct mdl_shape ys;
	const float *y = gpu_variant_output(v, 0, &ys);
	double worst = 0;
	for (int m = 0; m < M; m++)
		for (int i = 0; i < H; i++)
			for (int j = 0; j < W; j++) {
				float c = conv_ref(x, w, NULL, C, H, W, M, 1, 3, 1, 1, 1, 1, m, i, j);
				float r = gam[m] * (c - mean[m]) / sqrtf(var[m] + 1e-5f) + bet[m];
				double e = fabs(r - y[(m * H + i) * W + j]);
				worst = e > worst ? e : worst;
			}
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	ST_CHECK(worst < 1e-4);
	return ST_PASS;
}

/* Nodes whose inputs are all constant are evaluated at load; the rest runs. */
static int test_folds_constant_subgraph(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", 2, (const int64_t[]){-1, 3});
	mb_tensor(&b, "a", 1, (const int64_t[]){3}, (const float[]){1, 2, 3}, NULL);
	mb_tensor(&b, "c", 1, (const int64_t[]){3}, (const float[]){10, 20, 30}, NULL);
	mb_node(&b, "Add", "k", "a,c", "k0");                 /* constant: [11, 22, 33] */
	Onnx__NodeProto *n = mb_node(&b, "Constant", "two", "", "t");
	Onnx__AttributeProto *at = attr(n, "value_float");
	at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	at->has_f = 1;
	at->f = 2.0f;
	mb_node(&b, "Mul", "k2", "k0,t", "k1");               /* constant: [22, 44, 66] */
	mb_node(&b, "Mul", "y", "x,k1", "y");                 /* runs */
	mb_output(&b, "y");
	b.node[1]->n_input = 0;
	char err[256] = "";
	struct mdl_graph *g = mb_load(&b, "fold.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	ST_CHECK_EQ(g->n_nodes, 1);
	ST_CHECK_EQ(g->n_folded, 2);
	struct gpu_backend *be = gpu_backend_cpu_create(1, err, sizeof err);
	struct gpu_family *f = gpu_family_load(be, g, err, sizeof err);
	struct mdl_shape in = {2, {2, 3}};
	struct gpu_variant *v = gpu_variant_prepare(f, &in, err, sizeof err);
	ST_CHECK(v != NULL);
	float *x = gpu_variant_input(v, 0);
	for (int i = 0; i < 6; i++)
		x[i] = (float)(i + 1);
	ST_CHECK_EQ(gpu_variant_run(v, 2), 0);
	const float *y = gpu_variant_output(v, 0, NULL);
	const float want[6] = {22, 88, 198, 88, 220, 396};
	for (int i = 0; i < 6; i++)
		ST_CHECK(y[i] == want[i]);
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	return ST_PASS;
}

/* x [N,2,3,4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) = [N, 24] */
static int test_shape_chain_evaluated_per_batch(void)
{
	struct mb b;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, (const int64_t[]){-1, 2, 3, 4});
	mb_tensor(&b, "zero", 0, NULL, NULL, (const int64_t[]){0});
	mb_tensor(&b, "ax0", 1, (const int64_t[]){1}, NULL, (const int64_t[]){0});
	mb_tensor(&b, "rest", 1, (const int64_t[]){1}, NULL, (const int64_t[]){-1});
	mb_node(&b, "Shape", "shape", "x", "s");
	mb_node(&b, "Gather", "n", "s,zero", "n0");
	mb_node(&b, "Unsqueeze", "u", "n0,ax0", "n1");
	Onnx__NodeProto *c = mb_node(&b, "Concat", "cat", "n1,rest", "shp");
	attr_int(c, "axis", 0);
	mb_node(&b, "Reshape", "flat", "x,shp", "y");
	mb_output(&b, "y");
	char err[256] = "";
	struct mdl_graph *g = mb_load(&b, "chain.onnx", err, sizeof err);
	ST_CHECK(g != NULL);
	ST_CHECK_EQ(g->n_nodes, 5);
	struct gpu_backend *be = gpu_backend_cpu_create(1, err, sizeof err);
	struct gpu_family *f = gpu_family_load(be, g, err, sizeof err);
	struct mdl_shape in = {4, {3, 2, 3, 4}};
	struct gpu_variant *v = gpu_variant_prepare(f, &in, err, sizeof err);
	ST_CHECK(v != NULL);
	float *x = gpu_variant_input(v, 0);
	for (int i = 0; i < 72; i++)
		x[i] = (float)i;
	ST_CHECK_EQ(gpu_variant_run(v, 2), 0);
	struct mdl_shape ys;
	const float *y = gpu_variant_output(v, 0, &ys);
	ST_CHECK_EQ(ys.rank, 2);
	ST_CHECK_EQ(ys.d[0], 2);
	ST_CHECK_EQ(ys.d[1], 24);
	for (int i = 0; i < 48; i++)
		ST_CHECK(y[i] == (float)i);
	ST_CHECK_EQ(gpu_variant_run(v, 4), -EINVAL); /* above the prepared maximum */
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	return ST_PASS;
}

/* Runs conv_model at max batch 4 with `threads`; out receives batch-4 output then batch-1
 * output of image 2. */
static int run_net(int threads, float *out4, float *out1, size_t *n_img)
{
	struct mb b;
	conv_model(&b, 13);
	char err[256] = "";
	struct mdl_graph *g = mb_load(&b, "net.onnx", err, sizeof err);
	struct gpu_backend *be = gpu_backend_cpu_create(threads, err, sizeof err);
	struct gpu_family *f = g && be ? gpu_family_load(be, g, err, sizeof err) : NULL;
	struct gpu_variant *v = f ? gpu_variant_prepare_image(f, 4, 40, 36, err, sizeof err) : NULL;
	int rc = -1;
	if (v) {
		float *x = gpu_variant_input(v, 0);
		unsigned s = 3;
		for (int i = 0; i < 4 * 3 * 40 * 36; i++)
			x[i] = frand(&s);
		struct mdl_shape ys;
		rc = gpu_variant_run(v, 4);
		const float *y = gpu_variant_output(v, 0, &ys);
		*n_img = (size_t)(mdl_shape_numel(&ys) / 4);
		memcpy(out4, y, 4 * *n_img * sizeof(float));
		memmove(x, x + 2 * 3 * 40 * 36, 3 * 40 * 36 * sizeof(float));
		rc |= gpu_variant_run(v, 1);
		y = gpu_variant_output(v, 0, &ys);
		if (ys.d[0] != 1)
			rc = -1;
		memcpy(out1, y, *n_img * sizeof(float));
	} else {
		fprintf(stderr, "%s\n", err);
	}
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	return rc;
}

static int test_batch_and_threads_consistent(void)
{
	static float a4[4 * 4 * 10 * 9], a1[4 * 10 * 9], b4[4 * 4 * 10 * 9], b1[4 * 10 * 9];
	size_t n;
	ST_CHECK_EQ(run_net(1, a4, a1, &n), 0);
	ST_CHECK_EQ(n, 4 * 10 * 9);
	ST_CHECK_EQ(run_net(3, b4, b1, &n), 0);
	for (size_t i = 0; i < n; i++) {
		ST_CHECK(fabsf(a4[2 * n + i] - a1[i]) < 1e-5f);
		ST_CHECK(fabsf(a4[2 * n + i] - b4[2 * n + i]) < 1e-5f);
		ST_CHECK(fabsf(a1[i] - b1[i]) < 1e-5f);
	}
	return ST_PASS;
}

/* Conv geometries through the loader and the CPU backend against conv_ref. */
static int test_conv_kernels_match_reference(void)
{
	struct {
		int C, M, group, k, s, d, pt, pl, pb, pr, H, W;
	} cfg[] = {
		{3, 8, 1, 3, 1, 1, 1, 1, 1, 1, 9, 7},   /* im2col */
		{8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 6, 5},  /* 1x1 direct sgemm */
		{8, 8, 8, 3, 1, 1, 1, 1, 1, 1, 9, 11},  /* depthwise */
		{8, 8, 8, 3, 2, 1, 0, 1, 1, 0, 10, 9},  /* depthwise, stride 2, asymmetric pads */
		{8, 8, 8, 5, 1, 2, 4, 4, 4, 4, 12, 12}, /* depthwise, dilation 2 */
		{6, 4, 2, 3, 2, 1, 1, 0, 2, 1, 11, 8},  /* grouped */
		{4, 8, 4, 3, 1, 1, 1, 1, 1, 1, 7, 7},   /* depthwise with multiplier 2 */
		{3, 5, 1, 3, 3, 2, 2, 2, 2, 2, 13, 10}, /* stride 3, dilation 2 */
		/* dense fast path: 20 channels (panels of 8, 8, 4: a half-empty AVX2 pass), 247
		 * pixels (several blocks, panels of 1, 2 and 3 vectors), row-crossing lane maps */
		{16, 20, 1, 3, 1, 1, 1, 1, 1, 1, 13, 17},
		{24, 12, 1, 1, 2, 1, 0, 0, 0, 0, 15, 15}, /* 1x1 stride 2: stride-2 phase planes */
		{10, 3, 1, 5, 2, 1, 2, 2, 2, 2, 21, 6},   /* 3 channels, 5x5 stride 2, tall */
	};
	for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
		int C = cfg[t].C, M = cfg[t].M, G = cfg[t].group, k = cfg[t].k, H = cfg[t].H,
		    W = cfg[t].W;
		int nw = M * (C / G) * k * k;
		float *w = malloc((size_t)nw * sizeof(float)), bias[32], *x = malloc(2 * (size_t)C * H * W * 4);
		unsigned s = 11 + (unsigned)t;
		for (int i = 0; i < nw; i++)
			w[i] = frand(&s);
		for (int i = 0; i < M; i++)
			bias[i] = frand(&s);
		for (int i = 0; i < 2 * C * H * W; i++)
			x[i] = frand(&s);
		struct mb b;
		mb_init(&b, 13);
		mb_input(&b, "x", 4, (const int64_t[]){-1, C, -1, -1});
		mb_tensor(&b, "w", 4, (const int64_t[]){M, C / G, k, k}, w, NULL);
		mb_tensor(&b, "b", 1, (const int64_t[]){M}, bias, NULL);
		Onnx__NodeProto *n = mb_node(&b, "Conv", "conv", "x,w,b", "y");
		attr_int(n, "group", G);
		attr_ints(n, "strides", 2, (const int64_t[]){cfg[t].s, cfg[t].s});
		attr_ints(n, "dilations", 2, (const int64_t[]){cfg[t].d, cfg[t].d});
		attr_ints(n, "pads", 4, (const int64_t[]){cfg[t].pt, cfg[t].pl, cfg[t].pb, cfg[t].pr});
		mb_output(&b, "y");
		char err[256] = "";
		struct mdl_graph *g = mb_load(&b, "conv.onnx", err, sizeof err);
		struct gpu_backend *be = gpu_backend_cpu_create(2, err, sizeof err);
		struct gpu_family *f = g ? gpu_family_load(be, g, err, sizeof err) : NULL;
		struct gpu_variant *v = f ? gpu_variant_prepare_image(f, 2, H, W, err, sizeof err) : NULL;
		if (!v)
			fprintf(stderr, "config %zu: %s\n", t, err);
		ST_CHECK(v != NULL);
		memcpy(gpu_variant_input(v, 0), x, 2 * (size_t)C * H * W * sizeof(float));
		ST_CHECK_EQ(gpu_variant_run(v, 2), 0);
		struct mdl_shape ys;
		const float *y = gpu_variant_output(v, 0, &ys);
		int OH = (int)ys.d[2], OW = (int)ys.d[3];
		ST_CHECK_EQ(OH, (H + cfg[t].pt + cfg[t].pb - cfg[t].d * (k - 1) - 1) / cfg[t].s + 1);
		ST_CHECK_EQ(OW, (W + cfg[t].pl + cfg[t].pr - cfg[t].d * (k - 1) - 1) / cfg[t].s + 1);
		double worst = 0;
		for (int im = 0; im < 2; im++)
			for (int m = 0; m < M; m++)
				for (int i = 0; i < OH; i++)
					for (int j = 0; j < OW; j++) {
						float r = conv_ref(x + im * C * H * W, w, bias, C, H, W, M, G, k,
								   cfg[t].s, cfg[t].d, cfg[t].pt, cfg[t].pl, m, i, j);
						double e = fabs(r - y[((im * M + m) * OH + i) * OW + j]);
						worst = e > worst ? e : worst;
					}
		gpu_variant_close(v);
		gpu_family_close(f);
		gpu_backend_destroy(be);
		mdl_graph_destroy(g);
		free(w);
		free(x);
		if (worst > 1e-4)
			fprintf(stderr, "config %zu: max error %g\n", t, worst);
		ST_CHECK(worst <= 1e-4);
	}
	return ST_PASS;
}

/* Random bit flips and truncations of a valid model: every result is either a one-line
 * refusal or a graph that prepares and runs (or is refused) without crashing. */
static int test_corrupted_models_never_crash(void)
{
	struct mb b;
	conv_model(&b, 13);
	size_t len;
	uint8_t *good = mb_pack(&b, &len), *m = malloc(len);
	char err[256];
	struct gpu_backend *be = gpu_backend_cpu_create(1, err, sizeof err);
	unsigned s = 99;
	int loaded = 0, refused = 0;
	for (int it = 0; it < 3000; it++) {
		memcpy(m, good, len);
		for (int k = 0; k <= it % 4; k++) {
			s = s * 1103515245u + 12345u;
			m[(s >> 4) % len] ^= (uint8_t)(1u << ((s >> 20) & 7));
		}
		size_t n = it % 7 == 0 ? (s >> 3) % len : len;
		err[0] = 0;
		struct mdl_graph *g = mdl_graph_load_mem(m, n, "corrupt.onnx", err, sizeof err);
		if (!g) {
			refused++;
			if (!refusal_ok(err, "corrupt.onnx", "corrupt.onnx: "))
				break;
			continue;
		}
		loaded++;
		struct gpu_family *f = gpu_family_load(be, g, err, sizeof err);
		const struct mdl_value *x = g->n_inputs == 1 ? &g->values[g->inputs[0]] : NULL;
		struct gpu_variant *v = NULL;
		if (f && x && x->shape.rank == 4 && x->shape.d[1] > 0 && x->shape.d[1] < 16)
			v = gpu_variant_prepare_image(f, 2, 24, 20, err, sizeof err);
		if (v) {
			memset(gpu_variant_input(v, 0), 0, (size_t)(2 * x->shape.d[1] * 24 * 20) * 4);
			gpu_variant_run(v, 2);
		} else if (!strchr(err, '\n')) {
			err[0] = 0;
		}
		gpu_variant_close(v);
		gpu_family_close(f);
		mdl_graph_destroy(g);
		ST_CHECK(!strchr(err, '\n'));
	}
	gpu_backend_destroy(be);
	free(good);
	free(m);
	printf("%d loaded, %d refused\n", loaded, refused);
	ST_CHECK_EQ(loaded + refused, 3000);
	ST_CHECK(refused > 0 && loaded > 0);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_refuses_not_protobuf), ST_CASE(test_refuses_missing_file),
	ST_CASE(test_refuses_truncated_file), ST_CASE(test_refuses_unknown_op),
	ST_CASE(test_refuses_unsupported_opset), ST_CASE(test_refuses_inconsistent_shapes),
	ST_CASE(test_refuses_unsupported_attribute), ST_CASE(test_corrupted_models_never_crash),
	ST_CASE(test_infers_any_batch_and_size),
	ST_CASE(test_folds_batchnorm_into_conv), ST_CASE(test_folds_constant_subgraph),
	ST_CASE(test_shape_chain_evaluated_per_batch),
	ST_CASE(test_batch_and_threads_consistent), ST_CASE(test_conv_kernels_match_reference))
