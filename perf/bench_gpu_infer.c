/* bench_gpu_infer — shoal's side of the gpu-infer benchmark (perf/README.md).
 *
 * Frames sit in staging slots (gpu_staging_*: pinned host memory when a CUDA device is there),
 * as the data plane leaves them. For every (size, batch) the timed region is what the executor
 * does for one batch:
 *
 *   gpu_variant_input_image per item (slot -> preprocessed input), gpu_variant_submit,
 *   gpu_variant_poll until done, gpu_variant_detect per item (detections on the host)
 *
 * and the figures are latency p50/p99 per batch and frames per second (batch * runs / total
 * time, one batch in flight). One variant per size is prepared at the largest batch, as the
 * executor does. --h2d also times how fast staged frames reach the backend: a batch of
 * gpu_variant_input_image calls until gpu_variant_inputs_done says every slot was read.
 *
 *   bench_gpu_infer --backend cuda|cpu --model nanodet.onnx [--sizes 320,416,640]
 *                   [--batches 1,2,4,8,16] [--runs 200] [--json OUT | --csv] ...
 *
 * The frame is darknet's dog.jpg (libturbojpeg) as RGB24 or I420; a synthetic frame of
 * --frame WxH when the file is absent. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "gpu/gpu.h"

#define BGI_MAX_LIST 16
#define BGI_MAX_DETS 100
#define BGI_DOG_JPG "/usr/share/darknet/data/dog.jpg"

struct bgi_opts {
	const char *backend, *model, *family, *image, *json;
	int csv, runs, warmup, threads, fp16, h2d, i420;
	int frame_w, frame_h;
	int sizes[BGI_MAX_LIST], n_sizes;
	int batches[BGI_MAX_LIST], n_batches;
};

struct bgi_result {
	int size, batch, dets;
	double p50_ms, p99_ms, mean_ms, fps;
};

static double bgi_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bgi_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array (the same rule as torch_onnx.py). */
static double bgi_pct(const double *sorted, int n, double q)
{
	int k = (int)ceil(q / 100.0 * n) - 1;
	if (k < 0)
		k = 0;
	if (k > n - 1)
		k = n - 1;
	return sorted[k];
}

static int bgi_parse_list(const char *s, int *out, int cap)
{
	int n = 0;
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s || v < 1 || v > 8192 || n == cap || (*end && *end != ','))
			return -1;
		out[n++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return n;
}

/* RGB24 of the JPEG at path, or NULL. */
static uint8_t *bgi_load_jpeg(const char *path, int *w, int *h)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *rgb = NULL, *jpg = NULL;
	long len = -1;
	if (fseek(f, 0, SEEK_END) == 0)
		len = ftell(f);
	if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (jpg = malloc((size_t)len)) &&
	    fread(jpg, 1, (size_t)len, f) == (size_t)len) {
		tjhandle tj = tjInitDecompress();
		int ss, cs;
		if (tj && !tjDecompressHeader3(tj, jpg, (unsigned long)len, w, h, &ss, &cs) &&
		    (rgb = malloc((size_t)*w * (size_t)*h * 3)) &&
		    tjDecompress2(tj, jpg, (unsigned long)len, rgb, *w, 0, *h, TJPF_RGB, 0)) {
			free(rgb);
			rgb = NULL;
		}
		if (tj)
			tjDestroy(tj);
	}
	free(jpg);
	fclose(f);
	return rgb;
}

/* A synthetic frame: smooth gradients with a few bright blocks (not zeros: DESIGN.md §9). */
static uint8_t *bgi_synthetic(int w, int h)
{
	uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
	if (!rgb)
		return NULL;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
			int blk = ((x / 64) + (y / 48)) % 5 == 0;
			p[0] = (uint8_t)(blk ? 230 : (x * 255) / (w > 1 ? w - 1 : 1));
			p[1] = (uint8_t)(blk ? 40 : (y * 255) / (h > 1 ? h - 1 : 1));
			p[2] = (uint8_t)((x + y) & 0xff);
		}
	return rgb;
}

static uint8_t bgi_clamp_u8(float v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)lrintf(v);
}

/* RGB24 -> I420, BT.601 full range (JFIF); chroma from the mean of each 2x2 block. */
static void bgi_rgb_to_i420(const uint8_t *rgb, int w, int h, uint8_t *y, uint8_t *u, uint8_t *v)
{
	for (int r = 0; r < h; r++)
		for (int c = 0; c < w; c++) {
			const uint8_t *p = rgb + ((size_t)r * (size_t)w + (size_t)c) * 3;
			y[(size_t)r * (size_t)w + (size_t)c] =
				bgi_clamp_u8(0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]);
		}
	for (int r = 0; r < h / 2; r++)
		for (int c = 0; c < w / 2; c++) {
			float R = 0, G = 0, B = 0;
			for (int k = 0; k < 4; k++) {
				const uint8_t *p = rgb + ((size_t)(2 * r + k / 2) * (size_t)w +
							  (size_t)(2 * c + k % 2)) * 3;
				R += p[0];
				G += p[1];
				B += p[2];
			}
			R /= 4;
			G /= 4;
			B /= 4;
			size_t o = (size_t)r * (size_t)(w / 2) + (size_t)c;
			u[o] = bgi_clamp_u8(128.0f - 0.168736f * R - 0.331264f * G + 0.5f * B);
			v[o] = bgi_clamp_u8(128.0f + 0.5f * R - 0.418688f * G - 0.081312f * B);
		}
}

static size_t bgi_frame_bytes(const struct bgi_opts *o, int w, int h)
{
	return o->i420 ? (size_t)w * (size_t)h * 3 / 2 : (size_t)w * (size_t)h * 3;
}

/* Writes the frame into a slot and describes it. */
static void bgi_fill_slot(const struct bgi_opts *o, const uint8_t *rgb, int w, int h, uint8_t *slot,
			  struct gpu_image *img)
{
	memset(img, 0, sizeof *img);
	img->width = w;
	img->height = h;
	if (o->i420) {
		uint8_t *y = slot, *u = y + (size_t)w * (size_t)h, *v = u + (size_t)(w / 2) * (size_t)(h / 2);
		bgi_rgb_to_i420(rgb, w, h, y, u, v);
		img->fmt = GPU_PIX_I420;
		img->plane[0] = y;
		img->plane[1] = u;
		img->plane[2] = v;
		img->stride[0] = w;
		img->stride[1] = img->stride[2] = w / 2;
		img->full_range = 1;
	} else {
		memcpy(slot, rgb, (size_t)w * (size_t)h * 3);
		img->fmt = GPU_PIX_RGB24;
		img->plane[0] = slot;
		img->stride[0] = w * 3;
	}
}

static int bgi_wait_batch(struct gpu_variant *v)
{
	int rc;
	while ((rc = gpu_variant_poll(v)) == 0)
		;
	if (rc < 0)
		return rc;
	while ((rc = gpu_variant_inputs_done(v)) == 0)
		;
	return rc < 0 ? rc : 0;
}

/* One batch end to end; returns the detection count of item 0 or -errno. */
static int bgi_one_batch(struct gpu_variant *v, const struct gpu_post *post, const struct gpu_norm *norm,
			 const struct gpu_image *imgs, int batch, struct gpu_det *dets)
{
	int rc, n0 = 0;
	for (int i = 0; i < batch; i++)
		if ((rc = gpu_variant_input_image(v, i, &imgs[i], norm)) < 0)
			return rc;
	if ((rc = gpu_variant_submit(v, batch)) < 0)
		return rc;
	if ((rc = bgi_wait_batch(v)) < 0)
		return rc;
	for (int i = 0; i < batch; i++) {
		rc = gpu_variant_detect(v, post, i, dets, BGI_MAX_DETS);
		if (rc < 0)
			return rc;
		if (i == 0)
			n0 = rc;
	}
	return n0;
}

static void bgi_usage(FILE *f)
{
	fprintf(f,
		"usage: bench_gpu_infer --model FILE.onnx [--backend cuda|cpu] [--family nanodet|centernet]\n"
		"         [--sizes 320,416,640] [--batches 1,2,4,8,16] [--runs 200] [--warmup 20]\n"
		"         [--threads N (cpu)] [--fp32 (cuda)] [--image JPEG] [--frame WxH] [--i420]\n"
		"         [--h2d] [--json OUT | --csv]\n");
}

static int bgi_parse(int argc, char **argv, struct bgi_opts *o)
{
	static const struct option lo[] = {
		{"backend", 1, 0, 'b'}, {"model", 1, 0, 'm'},   {"family", 1, 0, 'f'},
		{"sizes", 1, 0, 's'},   {"batches", 1, 0, 'B'}, {"runs", 1, 0, 'r'},
		{"warmup", 1, 0, 'w'},  {"threads", 1, 0, 't'}, {"fp32", 0, 0, '3'},
		{"image", 1, 0, 'i'},   {"frame", 1, 0, 'F'},   {"i420", 0, 0, 'y'},
		{"h2d", 0, 0, 'H'},     {"json", 1, 0, 'j'},    {"csv", 0, 0, 'c'},
		{"help", 0, 0, 'h'},    {0, 0, 0, 0}};
	*o = (struct bgi_opts){.backend = "cuda", .image = BGI_DOG_JPG, .runs = 200, .warmup = 20,
			       .threads = 2, .fp16 = 1, .frame_w = 640, .frame_h = 480};
	o->n_sizes = bgi_parse_list("320,416,640", o->sizes, BGI_MAX_LIST);
	o->n_batches = bgi_parse_list("1,2,4,8,16", o->batches, BGI_MAX_LIST);
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'b': o->backend = optarg; break;
		case 'm': o->model = optarg; break;
		case 'f': o->family = optarg; break;
		case 's': o->n_sizes = bgi_parse_list(optarg, o->sizes, BGI_MAX_LIST); break;
		case 'B': o->n_batches = bgi_parse_list(optarg, o->batches, BGI_MAX_LIST); break;
		case 'r': o->runs = atoi(optarg); break;
		case 'w': o->warmup = atoi(optarg); break;
		case 't': o->threads = atoi(optarg); break;
		case '3': o->fp16 = 0; break;
		case 'i': o->image = optarg; break;
		case 'F':
			if (sscanf(optarg, "%dx%d", &o->frame_w, &o->frame_h) != 2 || o->frame_w < 2 ||
			    o->frame_h < 2 || o->frame_w > 8192 || o->frame_h > 8192) {
				fprintf(stderr, "bench_gpu_infer: --frame wants WxH, e.g. 640x480\n");
				return -1;
			}
			break;
		case 'y': o->i420 = 1; break;
		case 'H': o->h2d = 1; break;
		case 'j': o->json = optarg; break;
		case 'c': o->csv = 1; break;
		case 'h': bgi_usage(stdout); return 1;
		default: bgi_usage(stderr); return -1;
		}
	}
	if (!o->model) {
		fprintf(stderr, "bench_gpu_infer: --model FILE.onnx is required\n");
		return -1;
	}
	if (o->n_sizes < 1 || o->n_batches < 1) {
		fprintf(stderr, "bench_gpu_infer: --sizes/--batches want positive integers, comma separated\n");
		return -1;
	}
	if (o->runs < 1 || o->warmup < 0 || o->threads < 1) {
		fprintf(stderr, "bench_gpu_infer: --runs and --threads want >= 1, --warmup >= 0\n");
		return -1;
	}
	if (strcmp(o->backend, "cuda") && strcmp(o->backend, "cpu")) {
		fprintf(stderr, "bench_gpu_infer: --backend is cuda or cpu, not '%s'\n", o->backend);
		return -1;
	}
	if (!o->family) {
		const char *b = strrchr(o->model, '/');
		b = b ? b + 1 : o->model;
		o->family = strstr(b, "centernet") ? "centernet" : strstr(b, "nanodet") ? "nanodet" : NULL;
		if (!o->family) {
			fprintf(stderr, "bench_gpu_infer: cannot tell the family from '%s': pass --family\n", b);
			return -1;
		}
	}
	if (strcmp(o->family, "nanodet") && strcmp(o->family, "centernet")) {
		fprintf(stderr, "bench_gpu_infer: --family is nanodet or centernet\n");
		return -1;
	}
	return 0;
}

struct bgi_run {
	struct bgi_opts o;
	struct mdl_graph *g;
	struct gpu_backend *be;
	struct gpu_family *fam;
	struct gpu_staging *st;
	struct gpu_image *imgs;
	uint32_t *slots;
	int n_slots, frame_w, frame_h, synthetic;
	struct gpu_post post;
	struct gpu_norm norm;
	struct bgi_result res[BGI_MAX_LIST * BGI_MAX_LIST];
	int n_res;
	double h2d_gbs, h2d_mb;
	int h2d_batch, h2d_size;
	char device[160];
};

static int bgi_setup(struct bgi_run *R)
{
	char err[512];
	const struct bgi_opts *o = &R->o;
	R->g = mdl_graph_load(o->model, err, sizeof err);
	if (!R->g) {
		fprintf(stderr, "bench_gpu_infer: %s\n", err);
		return -1;
	}
	if (!strcmp(o->backend, "cuda")) {
		R->be = gpu_backend_cuda_create(0, o->fp16, err, sizeof err);
		struct gpu_device_info info;
		if (R->be && gpu_cuda_device_info(0, &info) == 0)
			snprintf(R->device, sizeof R->device, "%s", info.name);
	} else {
		R->be = gpu_backend_cpu_create(o->threads, err, sizeof err);
		snprintf(R->device, sizeof R->device, "cpu, %d threads", o->threads);
	}
	if (!R->be) {
		fprintf(stderr, "bench_gpu_infer: %s backend: %s\n", o->backend, err);
		return -1;
	}
	R->fam = gpu_family_load(R->be, R->g, err, sizeof err);
	int centernet = !strcmp(o->family, "centernet");
	if (!R->fam ||
	    gpu_post_init(&R->post, R->g, centernet ? GPU_HEAD_CENTERNET : GPU_HEAD_NANODET, 0.3f, 0.5f,
			  err, sizeof err)) {
		fprintf(stderr, "bench_gpu_infer: %s\n", err);
		return -1;
	}
	/* models/zoo/README.md: nanodet takes rgb / 255, centernet rgb in 0..255 */
	float sd = centernet ? 1.0f / 255.0f : 1.0f;
	R->norm = (struct gpu_norm){{0, 0, 0}, {sd, sd, sd}, 0};

	uint8_t *rgb = bgi_load_jpeg(o->image, &R->frame_w, &R->frame_h);
	if (!rgb) {
		R->synthetic = 1;
		R->frame_w = o->frame_w;
		R->frame_h = o->frame_h;
		rgb = bgi_synthetic(R->frame_w, R->frame_h);
		if (!rgb) {
			fprintf(stderr, "bench_gpu_infer: out of memory\n");
			return -1;
		}
		fprintf(stderr, "bench_gpu_infer: %s not readable: synthetic %dx%d frame\n", o->image,
			R->frame_w, R->frame_h);
	}
	int src_w = R->frame_w;
	if (o->i420 && (R->frame_w & 1 || R->frame_h & 1)) { /* I420 wants even sizes */
		R->frame_w &= ~1;
		R->frame_h &= ~1;
	}
	int maxb = 1;
	for (int i = 0; i < o->n_batches; i++)
		maxb = o->batches[i] > maxb ? o->batches[i] : maxb;
	R->n_slots = maxb;
	R->st = gpu_staging_create((unsigned)R->n_slots, bgi_frame_bytes(o, R->frame_w, R->frame_h), err,
				   sizeof err);
	R->imgs = calloc((size_t)R->n_slots, sizeof *R->imgs);
	R->slots = calloc((size_t)R->n_slots, sizeof *R->slots);
	if (!R->st || !R->imgs || !R->slots) {
		fprintf(stderr, "bench_gpu_infer: staging: %s\n", R->st ? "out of memory" : err);
		free(rgb);
		return -1;
	}
	/* the frame's RGB rows keep their stride when it was cropped to even sizes for I420 */
	uint8_t *crop = rgb;
	if (o->i420 && src_w != R->frame_w) {
		crop = malloc((size_t)R->frame_w * (size_t)R->frame_h * 3);
		for (int y = 0; crop && y < R->frame_h; y++)
			memcpy(crop + (size_t)y * (size_t)R->frame_w * 3, rgb + (size_t)y * (size_t)src_w * 3,
			       (size_t)R->frame_w * 3);
	}
	for (int i = 0; crop && i < R->n_slots; i++) {
		if (gpu_staging_get(R->st, &R->slots[i]) < 0) {
			fprintf(stderr, "bench_gpu_infer: staging: no free slot\n");
			return -1;
		}
		bgi_fill_slot(o, crop, R->frame_w, R->frame_h, gpu_staging_slot(R->st, R->slots[i]),
			      &R->imgs[i]);
	}
	if (crop != rgb)
		free(crop);
	free(rgb);
	return crop ? 0 : -1;
}

static void bgi_teardown(struct bgi_run *R)
{
	if (R->st && R->slots)
		for (int i = 0; i < R->n_slots; i++)
			gpu_staging_put(R->st, R->slots[i]);
	gpu_staging_destroy(R->st);
	free(R->imgs);
	free(R->slots);
	gpu_family_close(R->fam);
	gpu_backend_destroy(R->be);
	mdl_graph_destroy(R->g);
}

/* All batches of one size on one variant prepared at the largest batch. */
static int bgi_run_size(struct bgi_run *R, int size, double *lat)
{
	const struct bgi_opts *o = &R->o;
	char err[512];
	struct gpu_variant *v = gpu_variant_prepare_image(R->fam, R->n_slots, size, size, err, sizeof err);
	if (!v) {
		fprintf(stderr, "bench_gpu_infer: %s at %d: %s\n", o->family, size, err);
		return -1;
	}
	struct gpu_det dets[BGI_MAX_DETS];
	for (int b = 0; b < o->n_batches; b++) {
		int batch = o->batches[b], dets0 = 0;
		double total = 0;
		for (int it = 0; it < o->warmup + o->runs; it++) {
			double t0 = bgi_now();
			int rc = bgi_one_batch(v, &R->post, &R->norm, R->imgs, batch, dets);
			double t1 = bgi_now();
			if (rc < 0) {
				fprintf(stderr, "bench_gpu_infer: %s %d batch %d: %s\n", o->family, size, batch,
					strerror(-rc));
				gpu_variant_close(v);
				return -1;
			}
			dets0 = rc;
			if (it >= o->warmup) {
				lat[it - o->warmup] = (t1 - t0) * 1e3;
				total += t1 - t0;
			}
		}
		qsort(lat, (size_t)o->runs, sizeof *lat, bgi_cmp_double);
		struct bgi_result *r = &R->res[R->n_res++];
		*r = (struct bgi_result){.size = size, .batch = batch, .dets = dets0,
					 .p50_ms = bgi_pct(lat, o->runs, 50), .p99_ms = bgi_pct(lat, o->runs, 99),
					 .mean_ms = total * 1e3 / o->runs, .fps = batch * o->runs / total};
		if (!o->json && !o->csv)
			printf("%5d %5d %8.3f %8.3f %9.1f %5d\n", size, batch, r->p50_ms, r->p99_ms, r->fps,
			       dets0);
		fflush(stdout);
	}
	if (o->h2d && size == o->sizes[0]) {
		/* staged frames to the backend: input_image for a full batch until every slot is read */
		double t = 0;
		int n = 0;
		for (int it = 0; it < o->warmup + o->runs; it++) {
			double t0 = bgi_now();
			int rc = 0;
			for (int i = 0; i < R->n_slots && rc >= 0; i++)
				rc = gpu_variant_input_image(v, i, &R->imgs[i], &R->norm);
			while (rc >= 0 && (rc = gpu_variant_inputs_done(v)) == 0)
				;
			double t1 = bgi_now();
			if (rc < 0) {
				fprintf(stderr, "bench_gpu_infer: h2d: %s\n", strerror(-rc));
				break;
			}
			if (it >= o->warmup) {
				lat[n++] = t1 - t0;
				t += t1 - t0;
			}
		}
		if (n) {
			qsort(lat, (size_t)n, sizeof *lat, bgi_cmp_double);
			double bytes = (double)R->n_slots * (double)bgi_frame_bytes(o, R->frame_w, R->frame_h);
			R->h2d_gbs = bytes / bgi_pct(lat, n, 50) / 1e9;
			R->h2d_mb = bytes / 1e6;
			R->h2d_batch = R->n_slots;
			R->h2d_size = size;
		}
	}
	gpu_variant_close(v);
	return 0;
}

static void bgi_report(const struct bgi_run *R, FILE *f)
{
	const struct bgi_opts *o = &R->o;
	if (o->csv) {
		fprintf(f, "backend,family,size,batch,p50_ms,p99_ms,mean_ms,fps,dets\n");
		for (int i = 0; i < R->n_res; i++) {
			const struct bgi_result *r = &R->res[i];
			fprintf(f, "%s,%s,%d,%d,%.4f,%.4f,%.4f,%.2f,%d\n", gpu_backend_name(R->be), o->family,
				r->size, r->batch, r->p50_ms, r->p99_ms, r->mean_ms, r->fps, r->dets);
		}
		return;
	}
	fprintf(f, "{\n \"backend\": \"%s\",\n \"family\": \"%s\",\n \"device\": \"%s\",\n",
		gpu_backend_name(R->be), o->family, R->device);
	fprintf(f, " \"fp16\": %d,\n \"format\": \"%s\",\n \"frame\": [%d, %d],\n \"synthetic\": %d,\n",
		!strcmp(o->backend, "cuda") ? o->fp16 : 0, o->i420 ? "i420" : "rgb24", R->frame_w,
		R->frame_h, R->synthetic);
	fprintf(f, " \"pinned\": %d,\n \"runs\": %d,\n", gpu_staging_pinned(R->st), o->runs);
	if (R->h2d_mb > 0)
		fprintf(f, " \"h2d\": {\"size\": %d, \"batch\": %d, \"mb\": %.3f, \"gbs\": %.3f},\n",
			R->h2d_size, R->h2d_batch, R->h2d_mb, R->h2d_gbs);
	fprintf(f, " \"results\": [\n");
	for (int i = 0; i < R->n_res; i++) {
		const struct bgi_result *r = &R->res[i];
		fprintf(f,
			"  {\"size\": %d, \"batch\": %d, \"p50_ms\": %.4f, \"p99_ms\": %.4f, "
			"\"mean_ms\": %.4f, \"fps\": %.2f, \"dets\": %d}%s\n",
			r->size, r->batch, r->p50_ms, r->p99_ms, r->mean_ms, r->fps, r->dets,
			i + 1 < R->n_res ? "," : "");
	}
	fprintf(f, " ]\n}\n");
}

int main(int argc, char **argv)
{
	struct bgi_run *R = calloc(1, sizeof *R);
	if (!R) {
		fprintf(stderr, "bench_gpu_infer: out of memory\n");
		return 1;
	}
	int prc = bgi_parse(argc, argv, &R->o);
	if (prc) {
		free(R);
		return prc < 0 ? 2 : 0;
	}
	const struct bgi_opts *o = &R->o;
	int rc = 1;
	double *lat = malloc(sizeof *lat * (size_t)(o->runs + o->warmup));
	if (!lat || bgi_setup(R))
		goto out;
	if (!o->json && !o->csv) {
		printf("%s on %s (%s), %s frame %dx%d%s, staging %s\n", o->family, gpu_backend_name(R->be),
		       R->device, o->i420 ? "I420" : "RGB24", R->frame_w, R->frame_h,
		       R->synthetic ? " (synthetic)" : "", gpu_staging_pinned(R->st) ? "pinned" : "not pinned");
		printf("%5s %5s %8s %8s %9s %5s\n", "size", "batch", "p50 ms", "p99 ms", "fps", "dets");
	}
	for (int s = 0; s < o->n_sizes; s++)
		if (bgi_run_size(R, o->sizes[s], lat))
			goto out;
	if (o->json) {
		FILE *f = fopen(o->json, "w");
		if (!f) {
			fprintf(stderr, "bench_gpu_infer: cannot write %s: %s\n", o->json, strerror(errno));
			goto out;
		}
		bgi_report(R, f);
		if (fclose(f)) {
			fprintf(stderr, "bench_gpu_infer: cannot write %s\n", o->json);
			goto out;
		}
	} else if (o->csv) {
		bgi_report(R, stdout);
	} else if (R->h2d_mb > 0) {
		printf("h2d through the backend: %d staged frames (%.2f MB) in %.3f GB/s\n", R->h2d_batch,
		       R->h2d_mb, R->h2d_gbs);
	}
	rc = 0;
out:
	bgi_teardown(R);
	free(lat);
	free(R);
	return rc;
}
