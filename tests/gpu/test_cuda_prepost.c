/* Suite gpu: the CUDA preprocessing and post-processing kernels (gpu/cuda/gpu_cuda_kern.h)
 * against their CPU references, gpu_image_to_tensor and gpu_post_decode.
 *  - preprocessing of I420 / UYVY / RGB24, both YUV ranges, up- and downscaling, fp32 and
 *    fp16, NCHW and NHWC (padded channels too), from padded rows of pinned memory;
 *  - staging: many asynchronous launches from a few pinned slots on two streams; each slot is
 *    overwritten as soon as its copy event fires, and every result must still be that of the
 *    image the slot held when it was handed over;
 *  - post-processing of real head outputs (the CPU backend runs nanodet and centernet on
 *    darknet's dog.jpg and horses.jpg inside the test): identical detections, for several
 *    thresholds and caps, fp32/fp16 outputs, NCHW/NHWC.
 * Exit 77 without a CUDA device, or without the converted models / images. */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "gpu/cuda/gpu_cuda_kern.h"
#include "gpu/gpu.h"
#include "harness.h"
#include "test_image.h"

#define IMG_DIR "/usr/share/darknet/data/"

#define CK(call)                                                                            \
	do {                                                                                    \
		cudaError_t e_ = (call);                                                            \
		if (e_ != cudaSuccess) {                                                            \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                   \
				cudaGetErrorString(e_));                                                    \
			return ST_FAIL;                                                                 \
		}                                                                                   \
	} while (0)

static int device_or_skip(void)
{
	char why[256] = "";
	if (gpu_cuda_device_count(why, sizeof why) == 0) {
		printf("skip: %s\n", why);
		return ST_SKIP;
	}
	return ST_PASS;
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static float half_to_float(uint16_t h)
{
	int e = (h >> 10) & 31, m = h & 1023;
	float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY)
							     : ldexpf((float)(m | 1024), e - 25);
	return (h & 0x8000) ? -v : v;
}

/* Round to nearest even; values in the normal/subnormal range of half. */
static uint16_t float_to_half(float f)
{
	uint16_t sign = signbit(f) ? 0x8000 : 0;
	float a = fabsf(f);
	if (a >= 65520.0f)
		return sign | 0x7c00;
	int e;
	frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
	int q = e - 11 < -24 ? -24 : e - 11; /* quantum exponent: 11 significant bits */
	float n = nearbyintf(ldexpf(a, -q));  /* default rounding mode: to nearest even */
	float r = ldexpf(n, q);
	/* re-encode */
	if (r == 0)
		return sign;
	frexpf(r, &e);
	if (e - 1 < -14) /* subnormal */
		return sign | (uint16_t)ldexpf(r, 24);
	int m = (int)ldexpf(r, 11 - e) - 1024;
	return sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)m;
}

/* ---- preprocessing ---------------------------------------------------------------------- */

/* A random image of fmt in pinned memory, rows padded with junk. */
struct test_img {
	struct gpu_image im;
	uint8_t *mem;
};

static int img_make(struct test_img *t, enum gpu_pix_fmt fmt, int w, int h, int full,
		    uint32_t seed)
{
	memset(t, 0, sizeof *t);
	int row0 = fmt == GPU_PIX_RGB24 ? 3 * w : fmt == GPU_PIX_UYVY ? 2 * w : w;
	int s0 = row0 + 24, s1 = w / 2 + 8;
	size_t n0 = (size_t)s0 * h, n1 = fmt == GPU_PIX_I420 ? (size_t)s1 * (h / 2) : 0;
	CK(cudaHostAlloc((void **)&t->mem, n0 + 2 * n1 + 64, cudaHostAllocDefault));
	for (size_t i = 0; i < n0 + 2 * n1 + 64; i++)
		t->mem[i] = (uint8_t)lcg(&seed);
	t->im.fmt = fmt;
	t->im.width = w;
	t->im.height = h;
	t->im.full_range = full;
	t->im.plane[0] = t->mem;
	t->im.stride[0] = s0;
	if (fmt == GPU_PIX_I420) {
		t->im.plane[1] = t->mem + n0;
		t->im.plane[2] = t->mem + n0 + n1;
		t->im.stride[1] = t->im.stride[2] = s1;
	}
	return ST_PASS;
}

/* Compares a device result (dtype, layout, dc) with the NCHW float reference. */
static int pre_compare(const float *ref, const void *got, int dh, int dw, int dc,
		       enum gpu_cuda_layout layout, enum gpu_cuda_dtype dtype, double *max_err)
{
	size_t plane = (size_t)dh * dw;
	for (size_t p = 0; p < plane; p++)
		for (int c = 0; c < (layout == GPU_CUDA_NHWC ? dc : 3); c++) {
			size_t gi = layout == GPU_CUDA_NHWC ? p * dc + c : c * plane + p;
			float g = dtype == GPU_CUDA_F16 ? half_to_float(((const uint16_t *)got)[gi])
							: ((const float *)got)[gi];
			float r = c < 3 ? ref[c * plane + p] : 0.0f;
			double err = fabs((double)g - r);
			double tol = dtype == GPU_CUDA_F16 ? fabs(r) * (1.0 / 2048) * 1.001 + 1e-6 : 1e-4;
			if (err > *max_err)
				*max_err = err;
			if (!(err <= tol)) {
				fprintf(stderr, "pixel %zu channel %d: gpu %.7g cpu %.7g\n", p, c, g, r);
				return ST_FAIL;
			}
		}
	return ST_PASS;
}

static int pre_matches_cpu(enum gpu_cuda_dtype dtype)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	static const int sizes[][4] = {
		{64, 48, 96, 128},   /* upscale, non-square */
		{640, 480, 160, 224}, /* downscale */
		{98, 62, 62, 98},    /* mixed */
		{320, 240, 17, 33},  /* strong downscale, odd sizes */
		{1920, 1080, 416, 416},
	};
	static const struct gpu_norm norms[] = {
		{{0, 0, 0}, {1, 1, 1}, 0},                                   /* nanodet: rgb / 255 */
		{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 1},     /* BGR, mean/std */
		{{0, 0, 0}, {1 / 255.0f, 1 / 255.0f, 1 / 255.0f}, 0},       /* centernet: 0..255 */
	};
	cudaStream_t s;
	CK(cudaStreamCreate(&s));
	int runs = 0;
	double max_err = 0;
	for (int fmt = GPU_PIX_I420; fmt <= GPU_PIX_RGB24; fmt++)
		for (int full = 0; full < 2; full++)
			for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
				int w = sizes[z][0], h = sizes[z][1], dh = sizes[z][2], dw = sizes[z][3];
				struct test_img ti;
				if (img_make(&ti, (enum gpu_pix_fmt)fmt, w, h, full, (uint32_t)(fmt * 100 + z)))
					return ST_FAIL;
				size_t scr = gpu_cuda_pre_scratch_size((enum gpu_pix_fmt)fmt, w, h);
				ST_CHECK(scr > 0);
				void *dscr, *ddst, *hdst;
				size_t dst_bytes = (size_t)dh * dw * 8 * 4;
				CK(cudaMalloc(&dscr, scr));
				CK(cudaMalloc(&ddst, dst_bytes));
				CK(cudaHostAlloc(&hdst, dst_bytes, cudaHostAllocDefault));
				float *ref = malloc((size_t)dh * dw * 3 * sizeof *ref);
				ST_CHECK(ref);
				for (int lay = 0; lay < 2; lay++)
					for (int dc = 3; dc <= (lay ? 4 : 3); dc++) {
						const struct gpu_norm *nm = &norms[(z + lay + dc) % 3];
						ST_CHECK_EQ(gpu_image_to_tensor(&ti.im, nm, ref, dh, dw), 0);
						memset(hdst, 0x7b, dst_bytes);
						CK(cudaMemsetAsync(ddst, 0x7b, dst_bytes, s));
						ST_CHECK_EQ(gpu_cuda_pre_launch(s, &ti.im, nm, dscr, scr, NULL, ddst,
										dh, dw, dc, (enum gpu_cuda_layout)lay,
										dtype),
							    0);
						CK(cudaMemcpyAsync(hdst, ddst, dst_bytes, cudaMemcpyDeviceToHost, s));
						CK(cudaStreamSynchronize(s));
						if (pre_compare(ref, hdst, dh, dw, dc, (enum gpu_cuda_layout)lay,
								dtype, &max_err)) {
							fprintf(stderr, "fmt %d full %d %dx%d -> %dx%d layout %d dc %d\n",
								fmt, full, w, h, dw, dh, lay, dc);
							return ST_FAIL;
						}
						runs++;
					}
				free(ref);
				CK(cudaFree(dscr));
				CK(cudaFree(ddst));
				CK(cudaFreeHost(hdst));
				CK(cudaFreeHost(ti.mem));
			}
	printf("%d conversions, max abs error %.3g\n", runs, max_err);
	/* time: 1080p I420 (3 MB copy) -> 416x416 fp16 NHWC x4, copy + kernel */
	struct test_img ti;
	if (img_make(&ti, GPU_PIX_I420, 1920, 1080, 0, 7))
		return ST_FAIL;
	size_t scr = gpu_cuda_pre_scratch_size(GPU_PIX_I420, 1920, 1080);
	void *dscr, *ddst;
	CK(cudaMalloc(&dscr, scr));
	CK(cudaMalloc(&ddst, (size_t)416 * 416 * 4 * 4));
	struct gpu_norm nm = {{0, 0, 0}, {1, 1, 1}, 0};
	cudaEvent_t e0, e1, ec;
	CK(cudaEventCreate(&e0));
	CK(cudaEventCreate(&e1));
	CK(cudaEventCreate(&ec));
	for (int warm = 0; warm < 2; warm++) {
		CK(cudaEventRecord(e0, s));
		for (int i = 0; i < 50; i++)
			ST_CHECK_EQ(gpu_cuda_pre_launch(s, &ti.im, &nm, dscr, scr, ec, ddst, 416, 416, 4,
							GPU_CUDA_NHWC, dtype),
				    0);
		CK(cudaEventRecord(e1, s));
		CK(cudaEventSynchronize(e1));
	}
	float ms;
	CK(cudaEventElapsedTime(&ms, e0, e1));
	printf("1920x1080 I420 -> 416x416 %s NHWC4, copy + kernel: %.1f us per image\n",
	       dtype == GPU_CUDA_F16 ? "fp16" : "fp32", ms * 1000 / 50);
	CK(cudaEventDestroy(e0));
	CK(cudaEventDestroy(e1));
	CK(cudaEventDestroy(ec));
	CK(cudaFree(dscr));
	CK(cudaFree(ddst));
	CK(cudaFreeHost(ti.mem));
	CK(cudaStreamDestroy(s));
	return ST_PASS;
}

static int test_pre_fp32_matches_cpu_reference(void) { return pre_matches_cpu(GPU_CUDA_F32); }
static int test_pre_fp16_matches_cpu_reference(void) { return pre_matches_cpu(GPU_CUDA_F16); }

/* Argument checks happen on the host before any CUDA call: runs without a device. */
static int test_prepost_reject_bad_arguments(void)
{
	uint8_t px[64] = {0};
	char fake[16];
	struct gpu_image im = {GPU_PIX_I420, 4, 4, {px, px + 16, px + 24}, {4, 2, 2}, 0};
	struct gpu_norm nm = {{0, 0, 0}, {1, 1, 1}, 0}, zero = {{0, 0, 0}, {1, 0, 1}, 0};
	size_t scr = gpu_cuda_pre_scratch_size(GPU_PIX_I420, 4, 4);
	ST_CHECK(scr >= 16 + 4 + 4);
	ST_CHECK_EQ(gpu_cuda_pre_scratch_size(GPU_PIX_I420, 5, 4), 0);
	ST_CHECK_EQ(gpu_cuda_pre_scratch_size(GPU_PIX_UYVY, 3, 4), 0);
	ST_CHECK_EQ(gpu_cuda_pre_scratch_size(GPU_PIX_RGB24, 0, 4), 0);
	ST_CHECK(gpu_cuda_pre_scratch_size(GPU_PIX_RGB24, 3, 3) >= 27);
	void *d = fake;
#define PRE(img, norm, sz, h, w, c, lay, dt)                                                  \
	gpu_cuda_pre_launch(NULL, img, norm, d, sz, NULL, d, h, w, c, lay, dt)
	ST_CHECK_EQ(PRE(&im, &zero, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	ST_CHECK_EQ(PRE(&im, &nm, scr - 1, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	ST_CHECK_EQ(PRE(&im, &nm, scr, 0, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	ST_CHECK_EQ(PRE(&im, &nm, scr, 8, 8, 4, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	ST_CHECK_EQ(PRE(&im, &nm, scr, 8, 8, 2, GPU_CUDA_NHWC, GPU_CUDA_F16), -EINVAL);
	ST_CHECK_EQ(PRE(&im, &nm, scr, 8, 8, 3, GPU_CUDA_NHWC, (enum gpu_cuda_dtype)7), -EINVAL);
	ST_CHECK_EQ(PRE(NULL, &nm, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	struct gpu_image bad = im;
	bad.height = 5;
	ST_CHECK_EQ(PRE(&bad, &nm, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	bad = im;
	bad.plane[2] = NULL;
	ST_CHECK_EQ(PRE(&bad, &nm, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	bad = im;
	bad.stride[0] = 3;
	ST_CHECK_EQ(PRE(&bad, &nm, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
	bad = im;
	bad.fmt = GPU_PIX_UYVY;
	bad.stride[0] = 7; /* < 2 * width */
	ST_CHECK_EQ(PRE(&bad, &nm, scr, 8, 8, 3, GPU_CUDA_NCHW, GPU_CUDA_F32), -EINVAL);
#undef PRE
	/* post: a nanodet head of one level (outputs 0 = cls8, 1 = reg8) */
	struct gpu_post p = {GPU_HEAD_NANODET, 0.3f, 0.5f, 1, {8}, {0}, {1}, 0};
	struct mdl_shape sh[2] = {{4, {2, 80, 4, 4}}, {4, {2, 44, 4, 4}}};
	ST_CHECK(gpu_cuda_post_scratch_size(&p, sh, 2) >= 2 * 16 * 8);
	ST_CHECK_EQ(gpu_cuda_post_scratch_size(&p, sh, 3), 0); /* batch larger than the shapes */
	ST_CHECK_EQ(gpu_cuda_post_dets_size(2, 0), 0);
	ST_CHECK_EQ(gpu_cuda_post_dets_size(2, GPU_CUDA_POST_MAX_CAP + 1), 0);
	ST_CHECK(gpu_cuda_post_dets_size(2, 10) >= 2 * 10 * sizeof(struct gpu_det));
	const void *outs[2] = {d, d};
	struct gpu_cuda_outputs o = {outs, sh, GPU_CUDA_F32, GPU_CUDA_NCHW};
	size_t ps = gpu_cuda_post_scratch_size(&p, sh, 2);
	ST_CHECK_EQ(gpu_cuda_post_launch(NULL, &p, &o, 0, 2, d, ps, d, d, 0), -EINVAL);
	ST_CHECK_EQ(gpu_cuda_post_launch(NULL, &p, &o, 1, 2, d, ps, d, d, 10), -EINVAL);
	ST_CHECK_EQ(gpu_cuda_post_launch(NULL, &p, &o, 0, 2, d, ps - 1, d, d, 10), -EINVAL);
	sh[1].d[1] = 40;
	ST_CHECK_EQ(gpu_cuda_post_launch(NULL, &p, &o, 0, 2, d, ps, d, d, 10), -EINVAL);
	sh[1].d[1] = 44;
	outs[1] = NULL;
	ST_CHECK_EQ(gpu_cuda_post_launch(NULL, &p, &o, 0, 2, d, ps, d, d, 10), -EINVAL);
	p.head = GPU_HEAD_CENTERNET; /* outputs heatmap / heatmax / wh do not match */
	ST_CHECK_EQ(gpu_cuda_post_scratch_size(&p, sh, 2), 0);
	/* result of a host buffer */
	unsigned char host[1024] = {0};
	struct gpu_det dets[4];
	ST_CHECK_EQ(gpu_cuda_post_result(host, 4, 0, dets, 4), 0);
	int bogus = 9;
	memcpy(host, &bogus, sizeof bogus);
	ST_CHECK_EQ(gpu_cuda_post_result(host, 4, 0, dets, 4), -EINVAL);
	ST_CHECK_EQ(gpu_cuda_post_result(host, 0, 0, dets, 4), -EINVAL);
	return ST_PASS;
}

/* ---- staging stress ------------------------------------------------------------------------ */

#define STG_SLOTS 4
#define STG_ITERS 192
#define STG_W 1280
#define STG_H 720
#define STG_DW 160
#define STG_DH 96

/* Image of iteration it: a UYVY frame whose every byte depends on it. */
static void stg_fill(uint8_t *p, int it)
{
	uint32_t seed = 0x9e3779b9u * (uint32_t)(it + 1);
	for (size_t i = 0; i < (size_t)STG_W * 2 * STG_H; i += 4) {
		uint32_t r = lcg(&seed);
		p[i] = (uint8_t)r, p[i + 1] = (uint8_t)(r >> 8), p[i + 2] = (uint8_t)(r >> 16),
		p[i + 3] = (uint8_t)(it * 37);
	}
}

static int test_pre_staging_slot_reused_only_after_copy(void)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	size_t slot_bytes = (size_t)STG_W * 2 * STG_H, out_px = (size_t)STG_DW * STG_DH * 3;
	uint8_t *slots[STG_SLOTS];
	cudaEvent_t copied[STG_SLOTS];
	int busy[STG_SLOTS] = {0};
	cudaStream_t st[2];
	void *scr[2];
	float *dout, *hout;
	size_t scr_bytes = gpu_cuda_pre_scratch_size(GPU_PIX_UYVY, STG_W, STG_H);
	for (int i = 0; i < STG_SLOTS; i++) {
		CK(cudaHostAlloc((void **)&slots[i], slot_bytes, cudaHostAllocDefault));
		CK(cudaEventCreateWithFlags(&copied[i], cudaEventDisableTiming));
	}
	for (int i = 0; i < 2; i++) {
		CK(cudaStreamCreateWithFlags(&st[i], cudaStreamNonBlocking));
		CK(cudaMalloc(&scr[i], scr_bytes));
	}
	CK(cudaMalloc((void **)&dout, STG_ITERS * out_px * sizeof(float)));
	CK(cudaHostAlloc((void **)&hout, STG_ITERS * out_px * sizeof(float), cudaHostAllocDefault));
	struct gpu_norm nm = {{0, 0, 0}, {1, 1, 1}, 0};
	int it = 0, overwritten = 0, polls_busy = 0;
	while (it < STG_ITERS || overwritten < STG_ITERS) {
		/* a slot whose copy completed: overwrite at once (a new frame arriving) */
		for (int i = 0; i < STG_SLOTS; i++) {
			if (!busy[i])
				continue;
			cudaError_t q = cudaEventQuery(copied[i]);
			if (q == cudaErrorNotReady) {
				polls_busy++;
				continue;
			}
			CK(q);
			memset(slots[i], 0xa5 ^ overwritten, slot_bytes);
			busy[i] = 0;
			overwritten++;
		}
		if (it == STG_ITERS)
			continue;
		for (int i = 0; i < STG_SLOTS && it < STG_ITERS; i++) {
			if (busy[i])
				continue;
			stg_fill(slots[i], it);
			struct gpu_image im = {GPU_PIX_UYVY, STG_W, STG_H, {slots[i]}, {STG_W * 2}, it & 1};
			ST_CHECK_EQ(gpu_cuda_pre_launch(st[it & 1], &im, &nm, scr[it & 1], scr_bytes,
							copied[i], dout + it * out_px, STG_DH, STG_DW, 3,
							GPU_CUDA_NCHW, GPU_CUDA_F32),
				    0);
			busy[i] = 1;
			it++;
		}
	}
	for (int i = 0; i < 2; i++)
		CK(cudaStreamSynchronize(st[i]));
	CK(cudaMemcpy(hout, dout, STG_ITERS * out_px * sizeof(float), cudaMemcpyDeviceToHost));
	uint8_t *img = malloc(slot_bytes);
	float *ref = malloc(out_px * sizeof *ref);
	ST_CHECK(img && ref);
	int bad = 0;
	for (int k = 0; k < STG_ITERS && !bad; k++) {
		stg_fill(img, k);
		struct gpu_image im = {GPU_PIX_UYVY, STG_W, STG_H, {img}, {STG_W * 2}, k & 1};
		ST_CHECK_EQ(gpu_image_to_tensor(&im, &nm, ref, STG_DH, STG_DW), 0);
		for (size_t j = 0; j < out_px; j++)
			if (!(fabsf(hout[k * out_px + j] - ref[j]) <= 1e-4f)) {
				fprintf(stderr, "iteration %d element %zu: %g, image at copy time gives %g\n",
					k, j, hout[k * out_px + j], ref[j]);
				bad = 1;
				break;
			}
	}
	printf("%d launches from %d slots on 2 streams, %d polls found a copy in flight\n",
	       STG_ITERS, STG_SLOTS, polls_busy);
	free(img);
	free(ref);
	for (int i = 0; i < STG_SLOTS; i++) {
		CK(cudaFreeHost(slots[i]));
		CK(cudaEventDestroy(copied[i]));
	}
	for (int i = 0; i < 2; i++) {
		CK(cudaStreamDestroy(st[i]));
		CK(cudaFree(scr[i]));
	}
	CK(cudaFree(dout));
	CK(cudaFreeHost(hout));
	ST_CHECK(!bad);
	return ST_PASS;
}

/* ---- post-processing ------------------------------------------------------------------------ */

#define MAX_OUT 8

struct head_run {
	struct mdl_graph *g;
	struct gpu_post post;
	int n_out;
	float *out[MAX_OUT];
	struct mdl_shape shape[MAX_OUT];
	double cpu_ms;
};

static void head_run_free(struct head_run *r)
{
	for (int i = 0; i < MAX_OUT; i++)
		free(r->out[i]);
	if (r->g)
		mdl_graph_destroy(r->g);
	memset(r, 0, sizeof *r);
}

/* Runs family on the CPU backend, batch 2 (dog.jpg, horses.jpg), and keeps the outputs. */
static int head_run_make(struct head_run *r, const char *family, enum gpu_head head, int size,
			 float scale255)
{
	char model[512], err[512];
	memset(r, 0, sizeof *r);
	mdl_zoo_path(family, model, sizeof model);
	FILE *probe = fopen(model, "rb");
	ST_SKIP_IF(!probe, "converted model absent (run scripts/fetch-models.sh)");
	fclose(probe);
	const char *img_dir = getenv("SHOAL_IMAGE_DIR") ? getenv("SHOAL_IMAGE_DIR") : IMG_DIR;
	char path[2][512];
	snprintf(path[0], sizeof path[0], "%s/dog.jpg", img_dir);
	snprintf(path[1], sizeof path[1], "%s/horses.jpg", img_dir);
	int w[2], h[2];
	unsigned char *rgb[2] = {test_image_load_rgb(path[0], &w[0], &h[0]), test_image_load_rgb(path[1], &w[1], &h[1])};
	if (!rgb[0] || !rgb[1]) {
		free(rgb[0]);
		free(rgb[1]);
		ST_SKIP_IF(1, "darknet's dog.jpg / horses.jpg absent (Debian package darknet)");
	}
	r->g = mdl_graph_load(model, err, sizeof err);
	struct gpu_backend *be = r->g ? gpu_backend_cpu_create(4, err, sizeof err) : NULL;
	struct gpu_family *f = be ? gpu_family_load(be, r->g, err, sizeof err) : NULL;
	struct gpu_variant *v = f ? gpu_variant_prepare_image(f, 2, size, size, err, sizeof err) : NULL;
	int ok = v && !gpu_post_init(&r->post, r->g, head, 0.3f, 0.5f, err, sizeof err);
	if (ok) {
		struct gpu_norm norm = {{0, 0, 0}, {1 / scale255, 1 / scale255, 1 / scale255}, 0};
		for (int i = 0; i < 2 && ok; i++) {
			struct gpu_image im = {GPU_PIX_RGB24, w[i], h[i], {rgb[i]}, {w[i] * 3}, 0};
			ok = !gpu_image_to_tensor(&im, &norm,
						  gpu_variant_input(v, 0) + (size_t)i * 3 * size * size,
						  size, size);
		}
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ok = ok && !gpu_variant_run(v, 2);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		r->cpu_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		r->n_out = r->g->n_outputs < MAX_OUT ? r->g->n_outputs : MAX_OUT;
		for (int i = 0; i < r->n_out && ok; i++) {
			const float *o = gpu_variant_output(v, i, &r->shape[i]);
			size_t n = (size_t)mdl_shape_numel(&r->shape[i]);
			r->out[i] = o ? malloc(n * sizeof(float)) : NULL;
			ok = r->out[i] != NULL;
			if (ok)
				memcpy(r->out[i], o, n * sizeof(float));
		}
	} else {
		fprintf(stderr, "%s: %s\n", family, err);
	}
	gpu_variant_close(v);
	gpu_family_close(f);
	if (be)
		gpu_backend_destroy(be);
	free(rgb[0]);
	free(rgb[1]);
	if (!ok) {
		head_run_free(r);
		fprintf(stderr, "%s: the CPU backend did not run\n", family);
		return ST_FAIL;
	}
	printf("%s %d: CPU backend, batch 2: %.0f ms\n", family, size, r->cpu_ms);
	return ST_PASS;
}

static int det_cmp(const void *a, const void *b)
{
	const struct gpu_det *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->cls != y->cls)
		return x->cls - y->cls;
	return x->x0 < y->x0 ? -1 : x->x0 > y->x0;
}

static int close_rel(float a, float b, float rel)
{
	return fabsf(a - b) <= rel * fmaxf(1.0f, fabsf(b));
}

static int det_same(const struct gpu_det *a, const struct gpu_det *b)
{
	return a->cls == b->cls && fabsf(a->score - b->score) <= 1e-4f &&
	       close_rel(a->x0, b->x0, 1e-3f) && close_rel(a->y0, b->y0, 1e-3f) &&
	       close_rel(a->x1, b->x1, 1e-3f) && close_rel(a->y1, b->y1, 1e-3f);
}

/* Same detections, in the same order up to equal scores. Where candidates with exactly the
 * lowest kept score compete for the last places (cap reached), which of them is kept is the
 * implementation's choice (gpu_post_decode's bounded insertion does not define it): both
 * lists must then end at that same score and agree on everything above it. */
static int dets_match(const struct gpu_det *gpu, int ng, const struct gpu_det *cpu, int nc)
{
	if (!ng || !nc) {
		if (ng != nc)
			fprintf(stderr, "gpu %d detections, cpu %d\n", ng, nc);
		return ng == nc;
	}
	struct gpu_det *a = malloc(sizeof *a * (size_t)ng), *b = malloc(sizeof *b * (size_t)nc);
	memcpy(a, gpu, sizeof *a * (size_t)ng);
	memcpy(b, cpu, sizeof *b * (size_t)nc);
	int ok = 1;
	for (int i = 1; i < ng; i++) /* best first */
		ok &= !(a[i].score > a[i - 1].score);
	if (!ok)
		fprintf(stderr, "gpu detections not best first\n");
	qsort(a, (size_t)ng, sizeof *a, det_cmp);
	qsort(b, (size_t)nc, sizeof *b, det_cmp);
	float last = a[ng - 1].score;
	int exact = ng == nc, above_g = 0, above_c = 0;
	for (int i = 0; i < ng && exact; i++)
		exact = det_same(&a[i], &b[i]);
	if (ok && !exact) {
		while (above_g < ng && a[above_g].score > last)
			above_g++;
		while (above_c < nc && b[above_c].score > last)
			above_c++;
		ok = b[nc - 1].score == last && above_g == above_c;
		for (int i = 0; i < above_g && ok; i++)
			ok = det_same(&a[i], &b[i]);
		if (ok)
			printf("  (equal scores %.6g compete for the last places: gpu keeps %d, cpu %d)\n",
			       last, ng - above_g, nc - above_c);
	}
	if (!ok) {
		fprintf(stderr, "gpu %d detections, cpu %d\n", ng, nc);
		for (int i = 0; i < ng || i < nc; i++) {
			if (i < ng && i < nc && det_same(&a[i], &b[i]))
				continue;
			if (i < ng)
				fprintf(stderr, "  %d gpu: class %d %.6f (%.3f %.3f %.3f %.3f)\n", i, a[i].cls,
					a[i].score, a[i].x0, a[i].y0, a[i].x1, a[i].y1);
			if (i < nc)
				fprintf(stderr, "  %d cpu: class %d %.6f (%.3f %.3f %.3f %.3f)\n", i, b[i].cls,
					b[i].score, b[i].x0, b[i].y0, b[i].x1, b[i].y1);
		}
	}
	free(a);
	free(b);
	return ok;
}

/* Uploads the outputs as dtype/layout, decodes on the device with each (threshold, cap), and
 * compares with gpu_post_decode on the same values (fp16-rounded for fp16). */
static int post_check(const struct head_run *r, enum gpu_cuda_dtype dtype,
		      enum gpu_cuda_layout layout)
{
	static const struct {
		float score_min;
		int cap;
	} cfg[] = {{0.3f, 100}, {0.2f, 5}, {0.05f, 64}, {0.0f, GPU_CUDA_POST_MAX_CAP}, {-1.0f, 300}};
	void *dout[MAX_OUT] = {0};
	const void *douts[MAX_OUT] = {0};
	float *ref[MAX_OUT] = {0};
	for (int i = 0; i < r->n_out; i++) {
		const struct mdl_shape *s = &r->shape[i];
		size_t n = (size_t)mdl_shape_numel(s);
		int64_t N = s->d[0], C = s->d[1], hw = s->d[2] * s->d[3];
		ref[i] = malloc(n * sizeof(float));
		uint16_t *h16 = malloc(n * sizeof(uint16_t));
		float *h32 = malloc(n * sizeof(float));
		ST_CHECK(ref[i] && h16 && h32);
		for (int64_t b = 0; b < N; b++)
			for (int64_t c = 0; c < C; c++)
				for (int64_t p = 0; p < hw; p++) {
					size_t src = (size_t)((b * C + c) * hw + p);
					size_t dst = layout == GPU_CUDA_NHWC ? (size_t)((b * hw + p) * C + c) : src;
					float v = r->out[i][src];
					if (dtype == GPU_CUDA_F16) {
						h16[dst] = float_to_half(v);
						v = half_to_float(h16[dst]);
					}
					h32[dst] = v;
					ref[i][src] = v;
				}
		size_t bytes = n * (dtype == GPU_CUDA_F16 ? 2 : 4);
		CK(cudaMalloc(&dout[i], bytes));
		CK(cudaMemcpy(dout[i], dtype == GPU_CUDA_F16 ? (void *)h16 : (void *)h32, bytes,
			      cudaMemcpyHostToDevice));
		douts[i] = dout[i];
		free(h16);
		free(h32);
	}
	struct gpu_cuda_outputs o = {douts, r->shape, dtype, layout};
	cudaStream_t s;
	CK(cudaStreamCreate(&s));
	size_t scr_bytes = gpu_cuda_post_scratch_size(&r->post, r->shape, 2);
	ST_CHECK(scr_bytes > 0);
	void *scr, *ddets, *hdets;
	size_t det_bytes = gpu_cuda_post_dets_size(2, GPU_CUDA_POST_MAX_CAP);
	CK(cudaMalloc(&scr, scr_bytes));
	CK(cudaMalloc(&ddets, det_bytes));
	CK(cudaHostAlloc(&hdets, det_bytes, cudaHostAllocDefault));
	struct gpu_det *gd = malloc(sizeof *gd * GPU_CUDA_POST_MAX_CAP);
	struct gpu_det *cd = malloc(sizeof *cd * GPU_CUDA_POST_MAX_CAP);
	ST_CHECK(gd && cd);
	cudaEvent_t e0, e1;
	CK(cudaEventCreate(&e0));
	CK(cudaEventCreate(&e1));
	for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
		struct gpu_post p = r->post;
		p.score_min = cfg[k].score_min;
		int cap = cfg[k].cap;
		for (int split = 0; split < 2; split++) {
			memset(hdets, 0xff, det_bytes);
			if (!split) {
				ST_CHECK_EQ(gpu_cuda_post_launch(s, &p, &o, 0, 2, scr, scr_bytes, ddets, hdets,
								 cap),
					    0);
			} else { /* items one at a time, item 1 first */
				ST_CHECK_EQ(gpu_cuda_post_launch(s, &p, &o, 1, 1, scr, scr_bytes, ddets, hdets,
								 cap),
					    0);
				ST_CHECK_EQ(gpu_cuda_post_launch(s, &p, &o, 0, 1, scr, scr_bytes, ddets, hdets,
								 cap),
					    0);
			}
			CK(cudaStreamSynchronize(s));
			for (int item = 0; item < 2; item++) {
				int ng = gpu_cuda_post_result(hdets, cap, item, gd, GPU_CUDA_POST_MAX_CAP);
				int nc = gpu_post_decode(&p, (const float *const *)ref, r->shape, item, cd, cap);
				ST_CHECK(ng >= 0 && nc >= 0);
				if (!dets_match(gd, ng, cd, nc)) {
					fprintf(stderr, "threshold %g cap %d item %d dtype %d layout %d split %d\n",
						p.score_min, cap, item, dtype, layout, split);
					return ST_FAIL;
				}
				if (!split)
					printf("  threshold %5.2f cap %4d item %d: %3d detections match\n",
					       p.score_min, cap, item, ng);
			}
		}
		/* time the whole launch for the batch: decode, NMS, copy back */
		CK(cudaEventRecord(e0, s));
		for (int i = 0; i < 20; i++)
			ST_CHECK_EQ(gpu_cuda_post_launch(s, &p, &o, 0, 2, scr, scr_bytes, ddets, hdets, cap),
				    0);
		CK(cudaEventRecord(e1, s));
		CK(cudaEventSynchronize(e1));
		float ms;
		CK(cudaEventElapsedTime(&ms, e0, e1));
		printf("  threshold %5.2f cap %4d: batch of 2 decoded on the device in %.1f us\n",
		       p.score_min, cap, ms * 1000 / 20);
	}
	CK(cudaEventDestroy(e0));
	CK(cudaEventDestroy(e1));
	free(gd);
	free(cd);
	CK(cudaFree(scr));
	CK(cudaFree(ddets));
	CK(cudaFreeHost(hdets));
	CK(cudaStreamDestroy(s));
	for (int i = 0; i < r->n_out; i++) {
		CK(cudaFree(dout[i]));
		free(ref[i]);
	}
	return ST_PASS;
}

static int post_family(const char *family, enum gpu_head head, int size, float scale255,
		       int variants)
{
	int rc = device_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct head_run r;
	rc = head_run_make(&r, family, head, size, scale255);
	if (rc != ST_PASS)
		return rc;
	static const int combos[][2] = {{GPU_CUDA_F32, GPU_CUDA_NCHW},
					{GPU_CUDA_F16, GPU_CUDA_NHWC},
					{GPU_CUDA_F16, GPU_CUDA_NCHW},
					{GPU_CUDA_F32, GPU_CUDA_NHWC}};
	for (int i = 0; i < variants && rc == ST_PASS; i++) {
		printf("%s: outputs %s %s\n", family, combos[i][0] == GPU_CUDA_F16 ? "fp16" : "fp32",
		       combos[i][1] == GPU_CUDA_NHWC ? "NHWC" : "NCHW");
		rc = post_check(&r, (enum gpu_cuda_dtype)combos[i][0], (enum gpu_cuda_layout)combos[i][1]);
	}
	head_run_free(&r);
	return rc;
}

static int test_post_nanodet_matches_cpu_decode(void)
{
	return post_family("nanodet", GPU_HEAD_NANODET, 416, 1.0f, 1);
}

static int test_post_centernet_matches_cpu_decode(void)
{
	return post_family("centernet", GPU_HEAD_CENTERNET, 512, 255.0f, 1);
}

static int test_post_fp16_nhwc_outputs_match_cpu_decode(void)
{
	int rc = post_family("nanodet", GPU_HEAD_NANODET, 320, 1.0f, 4);
	if (rc == ST_PASS)
		rc = post_family("centernet", GPU_HEAD_CENTERNET, 320, 255.0f, 4);
	return rc;
}

ST_MAIN(ST_CASE(test_prepost_reject_bad_arguments), ST_CASE(test_pre_fp32_matches_cpu_reference),
	ST_CASE(test_pre_fp16_matches_cpu_reference),
	ST_CASE(test_pre_staging_slot_reused_only_after_copy),
	ST_CASE(test_post_nanodet_matches_cpu_decode), ST_CASE(test_post_centernet_matches_cpu_decode),
	ST_CASE(test_post_fp16_nhwc_outputs_match_cpu_decode))
