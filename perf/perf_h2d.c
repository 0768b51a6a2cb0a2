/* perf_h2d — host-to-device bandwidth of staged frames against a plain cudaMemcpy of pinned
 * memory (the baseline of the gpu-infer benchmark, perf/README.md).
 *
 * For N frames of B bytes each (default: 1, 8 and 16 frames of 640x480 RGB24):
 *   memcpy    one cudaMemcpy of N*B bytes from one cudaHostAlloc buffer (the baseline);
 *   staging   N cudaMemcpyAsync, one per gpu_staging slot, on one stream, then one
 *             synchronise: how a backend reads a batch of frames that the data plane staged;
 *   pageable  one cudaMemcpy of N*B bytes from malloc'd memory (what pinning saves).
 * Each figure is the median of --runs copies after a few warm-up copies, in GB/s (1e9 B/s).
 * Exit 77 with one line when there is no CUDA device. */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu/gpu.h"

#define H2D_MAX 16

static double h2d_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int h2d_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double h2d_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, h2d_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define H2D_CK(call)                                                                              \
	do {                                                                                      \
		cudaError_t e_ = (call);                                                          \
		if (e_ != cudaSuccess) {                                                          \
			fprintf(stderr, "perf_h2d: %s: %s\n", #call, cudaGetErrorString(e_));     \
			goto fail;                                                                \
		}                                                                                 \
	} while (0)

struct h2d_row {
	int frames;
	size_t frame_bytes;
	double memcpy_gbs, staging_gbs, pageable_gbs;
	int pinned;
};

/* Fills frames with a pattern that is neither zeros nor constant. */
static void h2d_pattern(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = 2463534242u ^ seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static int h2d_measure(int frames, size_t fb, int runs, struct h2d_row *row)
{
	const int warm = 3;
	size_t total = (size_t)frames * fb;
	uint8_t *pinned = NULL, *pageable = NULL, *dev = NULL;
	struct gpu_staging *st = NULL;
	cudaStream_t s = NULL;
	double *t = malloc(sizeof *t * (size_t)runs);
	uint32_t slots[H2D_MAX];
	char err[256];
	int got = 0, rc = -1;
	if (!t)
		goto fail;
	H2D_CK(cudaHostAlloc((void **)&pinned, total, cudaHostAllocDefault));
	H2D_CK(cudaMalloc((void **)&dev, total));
	H2D_CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	pageable = malloc(total);
	st = gpu_staging_create((unsigned)frames, fb, err, sizeof err);
	if (!pageable || !st) {
		fprintf(stderr, "perf_h2d: %s\n", st ? "out of memory" : err);
		goto fail;
	}
	for (got = 0; got < frames; got++) {
		if (gpu_staging_get(st, &slots[got]) < 0) {
			fprintf(stderr, "perf_h2d: staging: no free slot\n");
			goto fail;
		}
		h2d_pattern(gpu_staging_slot(st, slots[got]), fb, (unsigned)got);
	}
	h2d_pattern(pinned, total, 99);
	h2d_pattern(pageable, total, 98);
	row->frames = frames;
	row->frame_bytes = fb;
	row->pinned = gpu_staging_pinned(st);

	for (int i = 0; i < warm + runs; i++) {
		double t0 = h2d_now();
		H2D_CK(cudaMemcpy(dev, pinned, total, cudaMemcpyHostToDevice));
		if (i >= warm)
			t[i - warm] = h2d_now() - t0;
	}
	row->memcpy_gbs = (double)total / h2d_median(t, runs) / 1e9;
	for (int i = 0; i < warm + runs; i++) {
		double t0 = h2d_now();
		for (int k = 0; k < frames; k++)
			H2D_CK(cudaMemcpyAsync(dev + (size_t)k * fb, gpu_staging_slot(st, slots[k]), fb,
					       cudaMemcpyHostToDevice, s));
		H2D_CK(cudaStreamSynchronize(s));
		if (i >= warm)
			t[i - warm] = h2d_now() - t0;
	}
	row->staging_gbs = (double)total / h2d_median(t, runs) / 1e9;
	for (int i = 0; i < warm + runs; i++) {
		double t0 = h2d_now();
		H2D_CK(cudaMemcpy(dev, pageable, total, cudaMemcpyHostToDevice));
		if (i >= warm)
			t[i - warm] = h2d_now() - t0;
	}
	row->pageable_gbs = (double)total / h2d_median(t, runs) / 1e9;
	/* the last copy must have landed: compare the first and last bytes */
	uint8_t chk[2];
	H2D_CK(cudaMemcpy(&chk[0], dev, 1, cudaMemcpyDeviceToHost));
	H2D_CK(cudaMemcpy(&chk[1], dev + total - 1, 1, cudaMemcpyDeviceToHost));
	if (chk[0] != pageable[0] || chk[1] != pageable[total - 1]) {
		fprintf(stderr, "perf_h2d: device copy differs from the host buffer\n");
		goto fail;
	}
	rc = 0;
fail:
	for (int k = 0; st && k < got; k++)
		gpu_staging_put(st, slots[k]);
	gpu_staging_destroy(st);
	if (s)
		cudaStreamDestroy(s);
	cudaFree(dev);
	cudaFreeHost(pinned);
	free(pageable);
	free(t);
	return rc;
}

static int h2d_list(const char *s, int *out, int cap)
{
	int n = 0;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > H2D_MAX || n == cap || (*end && *end != ','))
			return -1;
		out[n++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"frames", 1, 0, 'f'}, {"frame-bytes", 1, 0, 'b'},
					   {"runs", 1, 0, 'r'},   {"json", 1, 0, 'j'},
					   {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
	int frames[H2D_MAX], n_frames = h2d_list("1,8,16", frames, H2D_MAX), runs = 50, c;
	long long fb = 640 * 480 * 3;
	const char *json = NULL;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'f': n_frames = h2d_list(optarg, frames, H2D_MAX); break;
		case 'b': fb = atoll(optarg); break;
		case 'r': runs = atoi(optarg); break;
		case 'j': json = optarg; break;
		case 'h':
			printf("usage: perf_h2d [--frames 1,8,16] [--frame-bytes 921600] [--runs 50] "
			       "[--json OUT]\n");
			return 0;
		default: return 2;
		}
	}
	if (n_frames < 1 || fb < 1 || fb > (1LL << 30) || runs < 1) {
		fprintf(stderr, "perf_h2d: --frames wants 1..%d (comma separated), --frame-bytes and "
				"--runs positive values\n", H2D_MAX);
		return 2;
	}
	int ndev = 0;
	cudaError_t de = cudaGetDeviceCount(&ndev);
	if (de != cudaSuccess || ndev < 1) { /* any error means no usable device (DESIGN.md §10) */
		printf("perf_h2d: skipped: no CUDA device (%s)\n",
		       de != cudaSuccess ? cudaGetErrorString(de) : "none found");
		return 77;
	}
	struct h2d_row rows[H2D_MAX];
	printf("%7s %12s %12s %12s %12s %7s\n", "frames", "MB", "memcpy GB/s", "staging GB/s",
	       "pageable GB/s", "pinned");
	for (int i = 0; i < n_frames; i++) {
		if (h2d_measure(frames[i], (size_t)fb, runs, &rows[i]))
			return 1;
		printf("%7d %12.2f %12.2f %12.2f %12.2f %7d\n", rows[i].frames,
		       (double)rows[i].frames * (double)fb / 1e6, rows[i].memcpy_gbs, rows[i].staging_gbs,
		       rows[i].pageable_gbs, rows[i].pinned);
	}
	if (json) {
		FILE *f = fopen(json, "w");
		if (!f) {
			fprintf(stderr, "perf_h2d: cannot write %s: %s\n", json, strerror(errno));
			return 1;
		}
		fprintf(f, "{\"frame_bytes\": %lld, \"runs\": %d, \"rows\": [\n", fb, runs);
		for (int i = 0; i < n_frames; i++)
			fprintf(f,
				" {\"frames\": %d, \"memcpy_gbs\": %.3f, \"staging_gbs\": %.3f, "
				"\"pageable_gbs\": %.3f, \"pinned\": %d}%s\n",
				rows[i].frames, rows[i].memcpy_gbs, rows[i].staging_gbs, rows[i].pageable_gbs,
				rows[i].pinned, i + 1 < n_frames ? "," : "");
		fprintf(f, "]}\n");
		fclose(f);
	}
	const struct h2d_row *last = &rows[n_frames - 1];
	printf("h2d: frames=%d frame_bytes=%lld memcpy_gbs=%.2f staging_gbs=%.2f pageable_gbs=%.2f "
	       "ratio=%.3f\n", last->frames, fb, last->memcpy_gbs, last->staging_gbs, last->pageable_gbs,
	       last->staging_gbs / last->memcpy_gbs);
	return 0;
}
