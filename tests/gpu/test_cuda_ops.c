/* Suite gpu: every op of the CUDA backend against the CPU backend on single-node graphs
 * (built here with the generated protobuf-c structs), random inputs, batches 1..3:
 * fp32 within 1e-4 (relative to the output's largest magnitude), fp16 within 1.5e-2.
 * Exit 77 when there is no CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda/gpu_cuda_test.h"
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

static unsigned seed = 12345;

static float frand(void)
{
	seed = seed * 1103515245u + 12345u;
	return (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A constant of random values in [lo, hi]. */
static void mb_rand(struct mb *b, const char *name, int rank, const int64_t *dims, float lo,
		    float hi)
{
	static float v[16384];
	int64_t n = 1;
	for (int i = 0; i < rank; i++)
		n *= dims[i];
	for (int64_t i = 0; i < n && i < 16384; i++)
		v[i] = lo + (frand() + 1.0f) * 0.5f * (hi - lo);
	mb_tensor(b, name, rank, dims, v, NULL);
}

static void mb_ints(struct mb *b, const char *name, int n, const int64_t *v)
{
	int64_t d[1] = {n};
	mb_tensor(b, name, 1, d, NULL, v);
}

/* ---- the comparison ------------------------------------------------------------------------- */

static struct gpu_backend *be_cpu, *be_f32, *be_f16;
static int use_emul; /* run the CUDA backend's plans in its host emulator */

static int device_or_skip(void)
{
	char why[256] = "";
	if (!use_emul && gpu_cuda_device_count(why, sizeof why) == 0) {
		printf("skip: %s\n", why);
		return ST_SKIP;
	}
	char err[256] = "";
	if (!be_cpu)
		be_cpu = gpu_backend_cpu_create(2, err, sizeof err);
	if (!be_f32)
		be_f32 = use_emul ? gpu_cuda_emulator_create(0, err, sizeof err)
				  : gpu_backend_cuda_create(0, 0, err, sizeof err);
	if (!be_f16)
		be_f16 = use_emul ? gpu_cuda_emulator_create(1, err, sizeof err)
				  : gpu_backend_cuda_create(0, 1, err, sizeof err);
	if (!be_cpu || !be_f32 || !be_f16) {
		fprintf(stderr, "backend: %s\n", err);
		return ST_FAIL;
	}
	return ST_PASS;
}

/* Runs the graph of b (one 4-D or n-D input "x" of shape xs at max batch xs[0]) on the CPU
 * and on both CUDA modes for every batch 1..xs[0]; compares every output. */
static int check(struct mb *b, const char *name, int rank, const int64_t *xs, float lo, float hi)
{
	char err[512] = "";
	struct mdl_graph *g = mb_load(b, name, err, sizeof err);
	if (!g) {
		fprintf(stderr, "%s: load: %s\n", name, err);
		return ST_FAIL;
	}
	struct mdl_shape s = {rank, {0}};
	for (int i = 0; i < rank; i++)
		s.d[i] = xs[i];
	struct gpu_backend *bes[3] = {be_cpu, be_f32, be_f16};
	struct gpu_family *f[3] = {0};
	struct gpu_variant *v[3] = {0};
	int rc = ST_PASS;
	for (int k = 0; k < 3; k++) {
		f[k] = gpu_family_load(bes[k], g, err, sizeof err);
		v[k] = f[k] ? gpu_variant_prepare(f[k], &s, err, sizeof err) : NULL;
		if (!v[k]) {
			fprintf(stderr, "%s on %s: %s\n", name,
				k ? (k == 1 ? "cuda fp32" : "cuda fp16") : "cpu", err);
			rc = ST_FAIL;
			goto out;
		}
	}
	int64_t per = mdl_shape_numel(&s) / xs[0];
	double worst[3] = {0, 0, 0};
	int compared = 0;
	for (int batch = 1; batch <= xs[0]; batch++) {
		float *x0 = gpu_variant_input(v[0], 0);
		for (int64_t i = 0; i < per * batch; i++)
			x0[i] = lo + (frand() + 1.0f) * 0.5f * (hi - lo);
		for (int k = 1; k < 3; k++)
			memcpy(gpu_variant_input(v[k], 0), x0,
			       (size_t)(per * batch) * sizeof(float));
		for (int k = 0; k < 3; k++)
			if (gpu_variant_run(v[k], batch)) {
				fprintf(stderr, "%s: run failed on backend %d at batch %d\n", name,
					k, batch);
				rc = ST_FAIL;
				goto out;
			}
		for (int o = 0; o < g->n_outputs; o++) {
			struct mdl_shape sr, sg;
			const float *ref = gpu_variant_output(v[0], o, &sr);
			for (int k = 1; k < 3; k++) {
				const float *got = gpu_variant_output(v[k], o, &sg);
				int64_t n = mdl_shape_numel(&sr);
				if (!ref || !got || sg.rank != sr.rank ||
				    mdl_shape_numel(&sg) != n) {
					fprintf(stderr,
						"%s: output %d missing or of another shape\n", name,
						o);
					rc = ST_FAIL;
					goto out;
				}
				double maxref = 1e-30, maxd = 0;
				int64_t at = 0;
				for (int64_t i = 0; i < n; i++)
					maxref = fabs(ref[i]) > maxref ? fabs(ref[i]) : maxref;
				for (int64_t i = 0; i < n; i++) {
					double d = fabs((double)ref[i] - got[i]);
					if (!(d <=
					      maxd)) { /* NaN counts as the largest difference */
						maxd = isnan(d) ? INFINITY : d;
						at = i;
					}
				}
				double rel = maxd / (maxref > 1 ? maxref : 1);
				double tol = k == 1 ? 1e-4 : 1.5e-2;
				worst[k] = rel > worst[k] ? rel : worst[k];
				compared += (int)n;
				if (rel > tol) {
					fprintf(stderr,
						"%s: %s batch %d output %d: max diff %.3g (rel "
						"%.3g > "
						"%.1g) at %lld: ref %g got %g\n",
						name, k == 1 ? "fp32" : "fp16", batch, o, maxd, rel,
						tol, (long long)at, ref[at], got[at]);
					rc = ST_FAIL;
				}
			}
		}
		if (rc != ST_PASS)
			break;
	}
	printf("%-28s %s: %d values compared, max rel diff fp32 %.2e, fp16 %.2e\n", name,
	       gpu_backend_name(be_f32), compared, worst[1], worst[2]);
	if (rc == ST_PASS && compared == 0)
		rc = ST_FAIL;
out:
	for (int k = 0; k < 3; k++) {
		gpu_variant_close(v[k]);
		gpu_family_close(f[k]);
	}
	mdl_graph_destroy(g);
	return rc;
}

static const int64_t NX[4] = {-1, 8, 12, 10}; /* declared input: N symbolic */
static const int64_t X3[4] = {3, 8, 12, 10};  /* run: batches 1..3 */

/* x -> op -> y with one input of shape [N, 8, 12, 10]. */
static void one_op(struct mb *b, const char *op, Onnx__NodeProto **n, const char *ins)
{
	mb_init(b, 13);
	mb_input(b, "x", 4, NX);
	mb_output(b, "y");
	*n = mb_node(b, op, op, ins, "y");
}

static int test_conv_forms_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct mb b;
	Onnx__NodeProto *n;
	/* name, kernel, stride, pads (t, l, b, r), group, dilation, M, bias, activation */
	static const struct {
		const char *name;
		int k, s, pt, pl, pb, pr, group, dil, m, bias;
		const char *act;
	} cs[] = {
		{"conv3x3_pad1", 3, 1, 1, 1, 1, 1, 1, 1, 16, 1, NULL},
		{"conv3x3_s2_asym", 3, 2, 0, 0, 1, 1, 1, 1, 16, 1, "LeakyRelu"},
		{"conv1x1_relu", 1, 1, 0, 0, 0, 0, 1, 1, 24, 1, "Relu"},
		{"conv_depthwise_clip", 3, 1, 1, 1, 1, 1, 8, 1, 8, 1, "Clip"},
		{"conv_depthwise_s2_asym", 5, 2, 1, 1, 2, 2, 8, 1, 8, 1, NULL},
		{"conv_grouped_nobias", 3, 1, 1, 1, 1, 1, 2, 1, 12, 0, NULL},
		{"conv_dilated", 3, 1, 2, 2, 2, 2, 1, 2, 16, 1, "Relu"},
		{"conv5x5_s2", 5, 2, 2, 2, 2, 2, 1, 1, 16, 1, NULL},
	};
	for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
		mb_init(&b, 13);
		mb_input(&b, "x", 4, NX);
		mb_output(&b, "y");
		int64_t wd[4] = {cs[i].m, 8 / cs[i].group, cs[i].k, cs[i].k}, bd[1] = {cs[i].m};
		mb_rand(&b, "w", 4, wd, -0.5f, 0.5f);
		if (cs[i].bias)
			mb_rand(&b, "bias", 1, bd, -0.5f, 0.5f);
		n = mb_node(&b, "Conv", cs[i].name, cs[i].bias ? "x,w,bias" : "x,w",
			    cs[i].act ? "c" : "y");
		int64_t k2[2] = {cs[i].k, cs[i].k}, s2[2] = {cs[i].s, cs[i].s};
		int64_t d2[2] = {cs[i].dil, cs[i].dil};
		int64_t p4[4] = {cs[i].pt, cs[i].pl, cs[i].pb, cs[i].pr};
		attr_ints(n, "kernel_shape", 2, k2);
		attr_ints(n, "strides", 2, s2);
		attr_ints(n, "dilations", 2, d2);
		attr_ints(n, "pads", 4, p4);
		attr_int(n, "group", cs[i].group);
		if (cs[i].act && !strcmp(cs[i].act, "Clip")) {
			float lo = 0, hi = 0.6f;
			int64_t none[1] = {0};
			mb_tensor(&b, "lo", 0, none, &lo, NULL);
			mb_tensor(&b, "hi", 0, none, &hi, NULL);
			mb_node(&b, "Clip", "act", "c,lo,hi", "y");
		} else if (cs[i].act) {
			n = mb_node(&b, cs[i].act, "act", "c", "y");
			if (!strcmp(cs[i].act, "LeakyRelu"))
				attr_float(n, "alpha", 0.1f);
		}
		if ((rc = check(&b, cs[i].name, 4, X3, -1, 1)) != ST_PASS)
			return rc;
	}
	return ST_PASS;
}

static int test_unary_ops_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	static const char *ops[] = {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish",
				    "Tanh", "Exp",       "Neg",     "Abs",         "Clip"};
	struct mb b;
	Onnx__NodeProto *n;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (!strcmp(ops[i], "Clip")) {
			float lo = -0.3f, hi = 0.5f;
			one_op(&b, "Clip", &n, "x,lo,hi");
			mb_tensor(&b, "lo", 0, NULL, &lo, NULL);
			mb_tensor(&b, "hi", 0, NULL, &hi, NULL);
		} else {
			one_op(&b, ops[i], &n, "x");
		}
		if (!strcmp(ops[i], "LeakyRelu"))
			attr_float(n, "alpha", 0.2f);
		if (!strcmp(ops[i], "HardSigmoid")) {
			attr_float(n, "alpha", 0.3f);
			attr_float(n, "beta", 0.4f);
		}
		if ((rc = check(&b, ops[i], 4, X3, -4, 4)) != ST_PASS)
			return rc;
	}
	/* Sqrt on non-negative inputs */
	one_op(&b, "Abs", &n, "x");
	n->output[0] = ar_str("a");
	mb_node(&b, "Sqrt", "sqrt", "a", "y");
	return check(&b, "Sqrt", 4, X3, -4, 4);
}

static int test_binary_broadcast_ops_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	static const char *ops[] = {"Add", "Sub", "Mul", "Div", "PRelu"};
	/* constant operand shapes: per channel, per column, scalar, full */
	static const int64_t shp[4][4] = {{8, 1, 1}, {1, 1, 1, 10}, {1}, {1, 8, 12, 10}};
	static const int rk[4] = {3, 4, 1, 4};
	struct mb b;
	Onnx__NodeProto *n;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		for (int s = 0; s < 4; s++) {
			char name[64];
			snprintf(name, sizeof name, "%s_const%d", ops[i], s);
			one_op(&b, ops[i], &n, "x,c");
			mb_rand(&b, "c", rk[s], shp[s], 0.5f, 1.5f);
			if ((rc = check(&b, name, 4, X3, -2, 2)) != ST_PASS)
				return rc;
		}
	/* two run-time operands, one broadcast along H and W */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	n = mb_node(&b, "GlobalAveragePool", "gap", "x", "g");
	n = mb_node(&b, "Sigmoid", "sig", "x", "s");
	n = mb_node(&b, "Mul", "mul", "s,g", "m");
	n = mb_node(&b, "Sub", "sub", "x,m", "y");
	return check(&b, "runtime_broadcast", 4, X3, -2, 2);
}

static int test_pools_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct mb b;
	Onnx__NodeProto *n;
	static const struct {
		const char *op;
		int k, s, p, ceil, incl;
	} ps[] = {
		{"MaxPool", 3, 2, 1, 0, 0},     {"MaxPool", 2, 2, 0, 1, 0},
		{"MaxPool", 5, 1, 2, 0, 0},     {"AveragePool", 3, 2, 1, 0, 0},
		{"AveragePool", 3, 2, 1, 1, 1}, {"AveragePool", 2, 1, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
		one_op(&b, ps[i].op, &n, "x");
		int64_t k2[2] = {ps[i].k, ps[i].k}, s2[2] = {ps[i].s, ps[i].s};
		int64_t p4[4] = {ps[i].p, ps[i].p, ps[i].p, ps[i].p};
		attr_ints(n, "kernel_shape", 2, k2);
		attr_ints(n, "strides", 2, s2);
		attr_ints(n, "pads", 4, p4);
		attr_int(n, "ceil_mode", ps[i].ceil);
		if (!strcmp(ps[i].op, "AveragePool"))
			attr_int(n, "count_include_pad", ps[i].incl);
		if ((rc = check(&b, ps[i].op, 4, X3, -3, 3)) != ST_PASS)
			return rc;
	}
	one_op(&b, "GlobalAveragePool", &n, "x");
	if ((rc = check(&b, "GlobalAveragePool", 4, X3, -3, 3)) != ST_PASS)
		return rc;
	one_op(&b, "GlobalMaxPool", &n, "x");
	return check(&b, "GlobalMaxPool", 4, X3, -3, 3);
}

static int test_resize_modes_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	static const struct {
		const char *mode, *coord, *nearest;
		float sh, sw;
	} rs[] = {
		{"linear", "half_pixel", NULL, 2, 2},
		{"linear", "asymmetric", NULL, 2, 2},
		{"linear", "align_corners", NULL, 1.5f, 0.5f},
		{"linear", "pytorch_half_pixel", NULL, 0.5f, 3},
		{"nearest", "asymmetric", "floor", 2, 2},
		{"nearest", "half_pixel", "round_prefer_floor", 1.5f, 2.5f},
		{"nearest", "align_corners", "round_prefer_ceil", 3, 0.5f},
	};
	struct mb b;
	Onnx__NodeProto *n;
	for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
		one_op(&b, "Resize", &n, "x,,scales");
		float sc[4] = {1, 1, rs[i].sh, rs[i].sw};
		int64_t d[1] = {4};
		mb_tensor(&b, "scales", 1, d, sc, NULL);
		attr_str(n, "mode", rs[i].mode);
		attr_str(n, "coordinate_transformation_mode", rs[i].coord);
		if (rs[i].nearest)
			attr_str(n, "nearest_mode", rs[i].nearest);
		char name[96];
		snprintf(name, sizeof name, "Resize_%s_%s", rs[i].mode, rs[i].coord);
		if ((rc = check(&b, name, 4, X3, -3, 3)) != ST_PASS)
			return rc;
	}
	return ST_PASS;
}

static int test_data_movement_matches_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct mb b;
	Onnx__NodeProto *n;
	/* Concat along channels (input with a computed tensor) and along width */
	for (int ax = 1; ax <= 3; ax += 2) {
		mb_init(&b, 13);
		mb_input(&b, "x", 4, NX);
		mb_output(&b, "y");
		mb_node(&b, "Sigmoid", "sig", "x", "s");
		n = mb_node(&b, "Concat", "cat", "x,s,x", "y");
		attr_int(n, "axis", ax);
		if ((rc = check(&b, ax == 1 ? "Concat_c" : "Concat_w", 4, X3, -2, 2)) != ST_PASS)
			return rc;
	}
	/* Split channels 3 + 5, each output through an op */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	mb_output(&b, "z");
	int64_t sp[2] = {3, 5};
	mb_ints(&b, "split", 2, sp);
	n = mb_node(&b, "Split", "split", "x,split", "a,c");
	attr_int(n, "axis", 1);
	mb_node(&b, "Relu", "r", "a", "y");
	mb_node(&b, "Neg", "ng", "c", "z");
	if ((rc = check(&b, "Split", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Transpose NCHW -> NHWC-order values */
	one_op(&b, "Transpose", &n, "x");
	int64_t perm[4] = {0, 2, 3, 1};
	attr_ints(n, "perm", 4, perm);
	if ((rc = check(&b, "Transpose", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Slice with steps on H and W, negative end on C */
	one_op(&b, "Slice", &n, "x,st,en,ax,stp");
	int64_t st[3] = {1, 1, 9}, en[3] = {-1, 11, 0}, axs[3] = {1, 2, 3}, stp[3] = {1, 2, -3};
	mb_ints(&b, "st", 3, st);
	mb_ints(&b, "en", 3, en);
	mb_ints(&b, "ax", 3, axs);
	mb_ints(&b, "stp", 3, stp);
	if ((rc = check(&b, "Slice", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Gather along channels (negative index too) */
	one_op(&b, "Gather", &n, "x,idx");
	int64_t idx[4] = {5, 0, -1, 2};
	mb_ints(&b, "idx", 4, idx);
	attr_int(n, "axis", 1);
	if ((rc = check(&b, "Gather", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Reshape to 2-D then a 2-D op (a layout change in fp16 mode), Flatten, Identity */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	mb_output(&b, "z");
	int64_t shape[2] = {0, -1};
	mb_ints(&b, "shape", 2, shape);
	mb_node(&b, "Reshape", "rs", "x,shape", "r");
	mb_node(&b, "Sigmoid", "sig", "r", "y");
	n = mb_node(&b, "Flatten", "fl", "x", "f");
	attr_int(n, "axis", 1);
	mb_node(&b, "Identity", "id", "f", "z");
	if ((rc = check(&b, "Reshape_Flatten", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Unsqueeze to 5-D, a 5-D op, Squeeze back to 4-D, a 4-D op (copies in fp16) */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	int64_t ax2[1] = {2};
	mb_ints(&b, "ax", 1, ax2);
	mb_node(&b, "Unsqueeze", "us", "x,ax", "u");
	mb_node(&b, "Tanh", "t5", "u", "t");
	mb_node(&b, "Squeeze", "sq", "t,ax", "q");
	mb_node(&b, "Sigmoid", "s4", "q", "y");
	if ((rc = check(&b, "Unsqueeze_Squeeze", 4, X3, -2, 2)) != ST_PASS)
		return rc;
	/* Concat along the batch axis: [N] + [N] -> [2N] */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	mb_node(&b, "Neg", "ng", "x", "m");
	n = mb_node(&b, "Concat", "cat0", "x,m", "y");
	attr_int(n, "axis", 0);
	return check(&b, "Concat_batch", 4, X3, -2, 2);
}

/* auto_pad SAME_UPPER with stride 2 (asymmetric pads derived at infer time), a legacy
 * Softmax (opset 11: coerced to 2-D at axis 1) and a pool with auto_pad */
static int test_auto_pad_and_legacy_softmax_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct mb b;
	Onnx__NodeProto *n;
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	int64_t wd[4] = {6, 8, 3, 3}, k2[2] = {3, 3}, s2[2] = {2, 2};
	mb_rand(&b, "w", 4, wd, -0.5f, 0.5f);
	n = mb_node(&b, "Conv", "conv_same", "x,w", "c");
	attr_ints(n, "kernel_shape", 2, k2);
	attr_ints(n, "strides", 2, s2);
	attr_str(n, "auto_pad", "SAME_UPPER");
	n = mb_node(&b, "MaxPool", "pool_same", "c", "y");
	attr_ints(n, "kernel_shape", 2, k2);
	attr_ints(n, "strides", 2, s2);
	attr_str(n, "auto_pad", "SAME_LOWER");
	if ((rc = check(&b, "auto_pad", 4, X3, -1, 1)) != ST_PASS)
		return rc;
	mb_init(&b, 11);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	n = mb_node(&b, "Softmax", "sm11", "x", "y");
	attr_int(n, "axis", 1);
	return check(&b, "Softmax_legacy", 4, X3, -3, 3);
}

static int test_softmax_gemm_matmul_batchnorm_match_cpu(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct mb b;
	Onnx__NodeProto *n;
	/* Softmax over channels of a 4-D tensor, and over the last axis */
	for (int ax = 1; ax <= 3; ax += 2) {
		one_op(&b, "Softmax", &n, "x");
		attr_int(n, "axis", ax);
		if ((rc = check(&b, ax == 1 ? "Softmax_c" : "Softmax_w", 4, X3, -3, 3)) != ST_PASS)
			return rc;
	}
	/* Gemm: [N, 960] x B^T (B: [7, 960]) + C */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	n = mb_node(&b, "Flatten", "fl", "x", "f");
	attr_int(n, "axis", 1);
	int64_t bd[2] = {7, 960}, cd[1] = {7};
	mb_rand(&b, "B", 2, bd, -0.1f, 0.1f);
	mb_rand(&b, "C", 1, cd, -1, 1);
	n = mb_node(&b, "Gemm", "gemm", "f,B,C", "y");
	attr_int(n, "transB", 1);
	attr_float(n, "alpha", 0.7f);
	attr_float(n, "beta", 1.3f);
	if ((rc = check(&b, "Gemm", 4, X3, -1, 1)) != ST_PASS)
		return rc;
	/* MatMul: [N, 8, 12, 10] x [10, 6] */
	one_op(&b, "MatMul", &n, "x,W");
	int64_t wd[2] = {10, 6};
	mb_rand(&b, "W", 2, wd, -0.5f, 0.5f);
	if ((rc = check(&b, "MatMul", 4, X3, -1, 1)) != ST_PASS)
		return rc;
	/* BatchNormalization on its own (not after a Conv: not folded) */
	mb_init(&b, 13);
	mb_input(&b, "x", 4, NX);
	mb_output(&b, "y");
	mb_node(&b, "Relu", "r", "x", "r0");
	int64_t c8[1] = {8};
	mb_rand(&b, "s", 1, c8, 0.5f, 1.5f);
	mb_rand(&b, "bb", 1, c8, -1, 1);
	mb_rand(&b, "m", 1, c8, -0.2f, 0.2f);
	mb_rand(&b, "v", 1, c8, 0.5f, 2);
	n = mb_node(&b, "BatchNormalization", "bn", "r0,s,bb,m,v", "y");
	attr_float(n, "epsilon", 1e-3f);
	return check(&b, "BatchNormalization", 4, X3, -2, 2);
}

static int test_refusals_are_one_line(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	char err[512] = "";
	/* Conv 1-D: refused with the node named */
	struct mb b;
	Onnx__NodeProto *n;
	mb_init(&b, 13);
	int64_t x3[3] = {-1, 4, 16};
	mb_input(&b, "x", 3, x3);
	mb_output(&b, "y");
	int64_t wd[3] = {4, 4, 3};
	mb_rand(&b, "w", 3, wd, -1, 1);
	n = mb_node(&b, "Conv", "conv1d", "x,w", "y");
	int64_t k1[1] = {3};
	attr_ints(n, "kernel_shape", 1, k1);
	struct mdl_graph *g = mb_load(&b, "conv1d", err, sizeof err);
	if (!g) /* the loader refusing it is fine too */
		return ST_PASS;
	struct gpu_family *f = gpu_family_load(be_f32, g, err, sizeof err);
	struct mdl_shape s = {3, {2, 4, 16}};
	struct gpu_variant *v = f ? gpu_variant_prepare(f, &s, err, sizeof err) : NULL;
	ST_CHECK(v == NULL);
	printf("refused: %s\n", err);
	ST_CHECK(strchr(err, '\n') == NULL);
	ST_CHECK(strstr(err, "conv1d") != NULL);
	gpu_family_close(f);
	mdl_graph_destroy(g);
	/* bad device index: one line */
	ST_CHECK(gpu_backend_cuda_create(999, 0, err, sizeof err) == NULL);
	ST_CHECK(strchr(err, '\n') == NULL && err[0]);
	return ST_PASS;
}

/* Without a device the constructor fails in one line that says why (the caller then uses
 * the CPU backend); with one it succeeds in both modes. */
static int test_create_says_why_without_device(void)
{
	char why[256] = "", err[256] = "";
	int n = gpu_cuda_device_count(why, sizeof why);
	for (int fp16 = 0; fp16 <= 1; fp16++) {
		struct gpu_backend *be = gpu_backend_cuda_create(0, fp16, err, sizeof err);
		if (n == 0) {
			ST_CHECK(be == NULL);
			printf("no device: %s\n", err);
			ST_CHECK(strncmp(err, "no CUDA device", 14) == 0);
			ST_CHECK(strchr(err, '\n') == NULL);
		} else {
			if (!be)
				fprintf(stderr, "create: %s\n", err);
			ST_CHECK(be != NULL);
			ST_CHECK(strcmp(gpu_backend_name(be), "cuda") == 0);
			gpu_backend_destroy(be);
		}
	}
	return ST_PASS;
}

/* Every case above with the CUDA backend's plans run by its host emulator: checks layouts,
 * strides, padding, memory planning and step lists against the CPU backend without a device. */
static int test_emulated_plans_match_cpu(void)
{
	int (*const cases[])(void) = {
		test_conv_forms_match_cpu,
		test_unary_ops_match_cpu,
		test_binary_broadcast_ops_match_cpu,
		test_pools_match_cpu,
		test_resize_modes_match_cpu,
		test_data_movement_matches_cpu,
		test_softmax_gemm_matmul_batchnorm_match_cpu,
		test_auto_pad_and_legacy_softmax_match_cpu,
		test_refusals_are_one_line,
	};
	use_emul = 1;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = cases[i]();
		if (rc != ST_PASS)
			return rc;
	}
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_create_says_why_without_device), ST_CASE(test_emulated_plans_match_cpu),
	ST_CASE(test_conv_forms_match_cpu), ST_CASE(test_unary_ops_match_cpu),
	ST_CASE(test_binary_broadcast_ops_match_cpu), ST_CASE(test_pools_match_cpu),
	ST_CASE(test_resize_modes_match_cpu), ST_CASE(test_data_movement_matches_cpu),
	ST_CASE(test_softmax_gemm_matmul_batchnorm_match_cpu),
	ST_CASE(test_auto_pad_and_legacy_softmax_match_cpu), ST_CASE(test_refusals_are_one_line))
