/* ONNX backend node tests (Debian's libonnx-testdata) run through the CPU backend.
 *
 * usage: test_node NODE_DIR OP MIN_PASS
 * Every case directory whose model.onnx is a single node of op OP is loaded, its inputs that
 * must be constant (or are integers) are frozen, the rest are fed from test_data_set_0, and
 * each output is compared with output_<i>.pb within rtol 1e-3 / atol 1e-5. A case the loader
 * or the backend refuses with a message is counted as unsupported, not failed. The test fails
 * when any case computes a wrong result, a refusal is not one line, or fewer than MIN_PASS
 * cases pass (so the main cases of each op stay covered). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"
#include "models/mdl.h"
#include "onnx.pb-c.h"

#define RTOL 1e-3
#define ATOL 1e-5

enum { R_PASS, R_UNSUPPORTED, R_FAIL };

/* 1 when dir/model.onnx is exactly one node of op `op`. */
static int case_matches(const char *dir, const char *op)
{
	char path[1100];
	snprintf(path, sizeof path, "%s/model.onnx", dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static uint8_t buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, n, buf);
	if (!m)
		return 0;
	int ok = m->graph && m->graph->n_node == 1 && m->graph->node[0]->op_type &&
		 !strcmp(m->graph->node[0]->op_type, op);
	onnx__model_proto__free_unpacked(m, NULL);
	return ok;
}

static int one_line(const char *s) { return *s && !strchr(s, '\n'); }

static int refused(const char *name, const char *err)
{
	printf("  %-55s unsupported: %s\n", name, err);
	if (!one_line(err)) {
		printf("  %-55s FAIL: refusal is not one line\n", name);
		return R_FAIL;
	}
	return R_UNSUPPORTED;
}

static int run_case(struct gpu_backend *be, const char *dir, const char *name)
{
	char path[1200], err[512] = "";
	snprintf(path, sizeof path, "%s/model.onnx", dir);
	struct mdl_graph *g = mdl_graph_load(path, err, sizeof err);
	if (!g)
		return refused(name, err);
	int rc = R_FAIL;
	struct gpu_family *fam = NULL;
	struct gpu_variant *var = NULL;
	struct mdl_tensor in[16] = {0};
	int n_in = g->n_inputs;
	char *names[16] = {0};
	if (n_in > 16)
		goto out;
	for (int i = 0; i < n_in; i++) {
		snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, i);
		if (mdl_tensor_read(path, &in[i], err, sizeof err)) {
			printf("  %-55s FAIL: %s\n", name, err);
			goto out;
		}
		names[i] = strdup(g->values[g->inputs[i]].name);
	}
	/* freeze integer inputs and inputs that must be constant */
	for (int i = 0; i < n_in; i++) {
		int gi = -1;
		for (int k = 0; k < g->n_inputs; k++)
			if (!strcmp(g->values[g->inputs[k]].name, names[i]))
				gi = k;
		if (gi < 0)
			continue;
		if (in[i].dtype == MDL_DTYPE_FLOAT && !mdl_graph_input_needs_const(g, gi))
			continue;
		if (mdl_graph_freeze_input(g, names[i], &in[i], err, sizeof err)) {
			rc = refused(name, err);
			goto out;
		}
	}
	struct mdl_shape shapes[16];
	int live[16], nl = 0;
	for (int k = 0; k < g->n_inputs; k++)
		for (int i = 0; i < n_in; i++)
			if (!strcmp(g->values[g->inputs[k]].name, names[i])) {
				shapes[nl] = in[i].shape;
				live[nl++] = i;
			}
	fam = gpu_family_load(be, g, err, sizeof err);
	if (!fam) {
		rc = refused(name, err);
		goto out;
	}
	var = gpu_variant_prepare(fam, shapes, err, sizeof err);
	if (!var) {
		rc = refused(name, err);
		goto out;
	}
	for (int k = 0; k < nl; k++) {
		float *dst = gpu_variant_input(var, k);
		memcpy(dst, in[live[k]].data, (size_t)mdl_shape_numel(&shapes[k]) * sizeof(float));
	}
	int batch = nl && shapes[0].rank > 0 ? (int)shapes[0].d[0] : 1;
	if (batch < 1)
		batch = 1;
	int r = gpu_variant_run(var, batch);
	if (r) {
		printf("  %-55s FAIL: run returned %d\n", name, r);
		goto out;
	}
	rc = R_PASS;
	for (int o = 0; o < g->n_outputs && rc == R_PASS; o++) {
		struct mdl_tensor exp;
		snprintf(path, sizeof path, "%s/test_data_set_0/output_%d.pb", dir, o);
		if (mdl_tensor_read(path, &exp, err, sizeof err)) {
			printf("  %-55s FAIL: %s\n", name, err);
			rc = R_FAIL;
			break;
		}
		struct mdl_shape s;
		const float *got = gpu_variant_output(var, o, &s);
		char a[128], b[128];
		if (!got || s.rank != exp.shape.rank ||
		    mdl_shape_numel(&s) != mdl_shape_numel(&exp.shape) ||
		    memcmp(s.d, exp.shape.d, sizeof(int64_t) * (size_t)s.rank)) {
			printf("  %-55s FAIL: output %d shape %s, expected %s\n", name, o,
			       mdl_shape_str(&s, a, sizeof a), mdl_shape_str(&exp.shape, b, sizeof b));
			rc = R_FAIL;
		}
		int64_t cnt = rc == R_PASS ? mdl_shape_numel(&s) : 0;
		for (int64_t i = 0; i < cnt; i++) {
			double e = exp.dtype == MDL_DTYPE_INT64 ? (double)((int64_t *)exp.data)[i]
								: ((float *)exp.data)[i];
			double v = got[i];
			if ((isnan(e) && isnan(v)) || fabs(v - e) <= ATOL + RTOL * fabs(e))
				continue;
			printf("  %-55s FAIL: output %d element %lld = %.7g, expected %.7g\n", name, o,
			       (long long)i, v, e);
			rc = R_FAIL;
			break;
		}
		mdl_tensor_free(&exp);
	}
	if (rc == R_PASS)
		printf("  %-55s pass\n", name);
out:
	gpu_variant_close(var);
	gpu_family_close(fam);
	for (int i = 0; i < n_in; i++) {
		mdl_tensor_free(&in[i]);
		free(names[i]);
	}
	mdl_graph_destroy(g);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s NODE_DIR OP MIN_PASS\n", argv[0]);
		return 1;
	}
	const char *root = argv[1], *op = argv[2];
	int min_pass = atoi(argv[3]);
	DIR *d = opendir(root);
	if (!d) {
		printf("skip: %s: %s (install libonnx-testdata)\n", root, strerror(errno));
		return 77;
	}
	char *names[2048];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 2048)
		if (!strncmp(e->d_name, "test_", 5))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	char err[256];
	struct gpu_backend *be = gpu_backend_cpu_create(2, err, sizeof err);
	if (!be) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int count[3] = {0};
	for (int i = 0; i < n; i++) {
		char dir[1024];
		snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
		if (case_matches(dir, op))
			count[run_case(be, dir, names[i])]++;
		free(names[i]);
	}
	gpu_backend_destroy(be);
	printf("%s: %d pass, %d unsupported, %d fail (of %d cases)\n", op, count[R_PASS],
	       count[R_UNSUPPORTED], count[R_FAIL], count[0] + count[1] + count[2]);
	if (count[R_PASS] < min_pass)
		printf("%s: fewer than %d cases pass\n", op, min_pass);
	return count[R_FAIL] || count[R_PASS] < min_pass ? 1 : 0;
}
