/* cpu_run MODEL.onnx INPUT.f32 N,C,H,W OUTDIR [THREADS [RUNS]]
 *
 * Runs a single-input model on the CPU backend over a raw little-endian float32 NCHW input
 * and writes OUTDIR/<output>.f32 and OUTDIR/manifest.json in the format of
 * tests/models/ort/run_ort.js, so compare_outputs.py can diff the two; "ms" is the best of
 * RUNS (default 1) timed runs after a first untimed one, also printed. Errors: one line,
 * exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gpu/gpu.h"

static int fail(const char *msg)
{
	fprintf(stderr, "cpu_run: %s\n", msg);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 7)
		return fail("usage: cpu_run MODEL.onnx INPUT.f32 N,C,H,W OUTDIR [THREADS [RUNS]]");
	int n, c, h, w, threads = argc > 5 ? atoi(argv[5]) : 2, runs = argc > 6 ? atoi(argv[6]) : 1;
	if (runs < 1)
		return fail("RUNS must be >= 1");
	if (sscanf(argv[3], "%d,%d,%d,%d", &n, &c, &h, &w) != 4 || n < 1 || c < 1 || h < 1 || w < 1)
		return fail("shape must be N,C,H,W with positive sizes");
	char err[512], path[1024];
	struct mdl_graph *g = mdl_graph_load(argv[1], err, sizeof err);
	if (!g)
		return fail(err);
	struct gpu_backend *be = gpu_backend_cpu_create(threads, err, sizeof err);
	struct gpu_family *f = be ? gpu_family_load(be, g, err, sizeof err) : NULL;
	struct mdl_shape in = {4, {n, c, h, w}};
	struct gpu_variant *v = f && g->n_inputs == 1 ? gpu_variant_prepare(f, &in, err, sizeof err)
						      : NULL;
	if (!v)
		return fail(f && g->n_inputs != 1 ? "model must have one input" : err);
	size_t cnt = (size_t)n * c * h * w;
	FILE *fi = fopen(argv[2], "rb");
	if (!fi || fread(gpu_variant_input(v, 0), sizeof(float), cnt, fi) != cnt)
		return fail("cannot read the input file (missing or too short)");
	fclose(fi);
	if (gpu_variant_run(v, n))
		return fail("run failed");
	double best = 1e30;
	for (int r = 0; r < runs; r++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (gpu_variant_run(v, n))
			return fail("run failed");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		best = ms < best ? ms : best;
	}
	printf("%s %s threads %d: best of %d runs %.1f ms\n", argv[1], argv[3], threads, runs, best);
	snprintf(path, sizeof path, "%s/manifest.json", argv[4]);
	FILE *m = fopen(path, "w");
	if (!m)
		return fail("cannot write OUTDIR/manifest.json");
	fprintf(m, "{\"model\": \"%s\", \"outputs\": {", argv[1]);
	for (int i = 0; i < g->n_outputs; i++) {
		struct mdl_shape s;
		const float *y = gpu_variant_output(v, i, &s);
		const char *name = g->values[g->outputs[i]].name;
		snprintf(path, sizeof path, "%s/%s.f32", argv[4], name);
		FILE *fo = fopen(path, "wb");
		if (!fo || fwrite(y, sizeof(float), (size_t)mdl_shape_numel(&s), fo) !=
				   (size_t)mdl_shape_numel(&s))
			return fail("cannot write an output file");
		fclose(fo);
		fprintf(m, "%s\"%s\": {\"shape\": [", i ? ", " : "", name);
		for (int k = 0; k < s.rank; k++)
			fprintf(m, "%s%lld", k ? ", " : "", (long long)s.d[k]);
		fprintf(m, "], \"file\": \"%s.f32\"}", name);
	}
	fprintf(m, "}, \"ms\": %.3f}\n", best);
	fclose(m);
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	return 0;
}
