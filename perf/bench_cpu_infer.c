/* bench_cpu_infer MODEL.onnx SIZE BATCH THREADS [--min-time S] [--warmup K]
 *
 * shoal side of the cpu-infer benchmark (scripts/bench-cpu-infer.sh): frames/s of a
 * single-image-input model on the CPU backend. Prepares the variant SIZE x SIZE at max batch
 * BATCH with THREADS threads, fills the input with the pattern perf/bench_ort.js uses
 * (x[i] = ((i * 2654435761) mod 2^32) / 2^32), runs K warm-up batches (default 3), then
 * batches until S seconds (default 2) and at least 5 batches have passed. Prints one line:
 *   shoal: size=S batch=B threads=T runs=R fps=F p50_ms=M min_ms=L
 * (fps = frames / wall time of the timed batches; p50 / min = median / fastest batch
 * latency, the fastest being the least disturbed by other load). Errors: one
 * line on stderr, exit 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu.h"

#define MAX_RUNS 200000

static int fail(const char *msg)
{
	fprintf(stderr, "bench_cpu_infer: %s\n", msg);
	return 2;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int pos_int(const char *s, int *v)
{
	char *end;
	long x = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || x < 1 || x > 1 << 20)
		return -1;
	*v = (int)x;
	return 0;
}

int main(int argc, char **argv)
{
	const char *usage = "usage: bench_cpu_infer MODEL.onnx SIZE BATCH THREADS [--min-time S] "
			    "[--warmup K]";
	double min_time = 2.0;
	int warmup = 3, size, batch, threads;
	const char *pos[4];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
			min_time = strtod(argv[++i], NULL);
			if (!(min_time > 0))
				return fail("--min-time wants seconds > 0");
		} else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
			if (strcmp(argv[++i], "0") ? pos_int(argv[i], &warmup) : (warmup = 0))
				return fail("--warmup wants an integer >= 0");
		} else if (npos < 4 && argv[i][0] != '-') {
			pos[npos++] = argv[i];
		} else {
			return fail(usage);
		}
	}
	if (npos != 4)
		return fail(usage);
	if (pos_int(pos[1], &size) || pos_int(pos[2], &batch) || pos_int(pos[3], &threads))
		return fail("SIZE, BATCH and THREADS must be positive integers");

	char err[512];
	struct mdl_graph *g = mdl_graph_load(pos[0], err, sizeof err);
	if (!g)
		return fail(err);
	if (g->n_inputs != 1 || g->values[g->inputs[0]].shape.rank != 4) {
		mdl_graph_destroy(g);
		return fail("the model must have one NCHW input");
	}
	struct gpu_backend *be = gpu_backend_cpu_create(threads, err, sizeof err);
	struct gpu_family *f = be ? gpu_family_load(be, g, err, sizeof err) : NULL;
	struct gpu_variant *v = f ? gpu_variant_prepare_image(f, batch, size, size, err, sizeof err)
				  : NULL;
	double *lat = malloc(MAX_RUNS * sizeof *lat);
	int rc = 2;
	if (!v || !lat) {
		fail(lat ? err : "out of memory");
		goto out;
	}
	int64_t c = g->values[g->inputs[0]].shape.d[1];
	int64_t cnt = (int64_t)batch * (c > 0 ? c : 3) * size * size;
	float *in = gpu_variant_input(v, 0);
	for (int64_t i = 0; i < cnt; i++)
		in[i] = (float)(((uint64_t)i * 2654435761u) & 0xffffffffu) / 4294967296.0f;
	for (int i = 0; i < warmup; i++)
		if (gpu_variant_run(v, batch)) {
			fail("run failed");
			goto out;
		}
	int runs = 0;
	double t0 = now_s(), t = t0;
	while ((t - t0 < min_time || runs < 5) && runs < MAX_RUNS) {
		double a = t;
		if (gpu_variant_run(v, batch)) {
			fail("run failed");
			goto out;
		}
		t = now_s();
		lat[runs++] = t - a;
	}
	double elapsed = t - t0;
	qsort(lat, (size_t)runs, sizeof *lat, cmp_double);
	printf("shoal: size=%d batch=%d threads=%d runs=%d fps=%.2f p50_ms=%.2f min_ms=%.2f\n", size,
	       batch, threads, runs, (double)runs * batch / elapsed, lat[runs / 2] * 1e3,
	       lat[0] * 1e3);
	rc = 0;
out:
	free(lat);
	gpu_variant_close(v);
	gpu_family_close(f);
	gpu_backend_destroy(be);
	mdl_graph_destroy(g);
	return rc;
}
