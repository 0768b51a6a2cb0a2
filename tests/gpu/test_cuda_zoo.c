/* Suite gpu: the converted zoo families (NanoDet-m, CenterNet) on the CUDA backend against the
 * CPU backend on darknet's real images: same detections (fp32; fp16 for the confident ones),
 * every one of the 17 input sizes (128..640 step 32), batches 1..16, and CUDA graph replay
 * against eager execution. Prints the device times it sees (never asserted).
 * Exit 77 when there is no CUDA device, or the models (scripts/fetch-models.sh) or the
 * images (Debian package darknet; SHOAL_IMAGE_DIR overrides) are absent. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "gpu/cuda/gpu_cuda_test.h"
#include "gpu/gpu.h"
#include "harness.h"
#include "test_image.h"

#define N_IMG 3
static const char *img_names[N_IMG] = {"dog.jpg", "person.jpg", "horses.jpg"};

struct img {
	unsigned char *rgb;
	int w, h;
};
static struct img imgs[N_IMG];

static void model_path(const char *family, char *out, size_t len)
{
	mdl_zoo_path(family, out, len);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int use_emul; /* CUDA backends replaced by the host emulator of their plans */

/* Device, images, models present? SHOAL_TEST_EMULATE=1 runs the device cases through the
 * host emulator instead (slow: minutes for the large sizes). */
static int ready_or_skip(void)
{
	char why[256] = "";
	if (getenv("SHOAL_TEST_EMULATE") && atoi(getenv("SHOAL_TEST_EMULATE")))
		use_emul = 1;
	if (!use_emul && gpu_cuda_device_count(why, sizeof why) == 0) {
		printf("skip: %s\n", why);
		return ST_SKIP;
	}
	const char *dir =
		getenv("SHOAL_IMAGE_DIR") ? getenv("SHOAL_IMAGE_DIR") : "/usr/share/darknet/data";
	for (int i = 0; i < N_IMG; i++) {
		if (imgs[i].rgb)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", dir, img_names[i]);
		imgs[i].rgb = test_image_load_rgb(p, &imgs[i].w, &imgs[i].h);
		if (!imgs[i].rgb) {
			printf("skip: %s absent (Debian package darknet)\n", p);
			return ST_SKIP;
		}
	}
	char m[512];
	model_path("nanodet", m, sizeof m);
	FILE *f = fopen(m, "rb");
	if (!f) {
		printf("skip: %s absent (run scripts/fetch-models.sh)\n", m);
		return ST_SKIP;
	}
	fclose(f);
	return ST_PASS;
}

struct fam_info {
	const char *name;
	enum gpu_head head;
	float scale255; /* x = rgb * scale255 / 255 */
	int native;
};
static const struct fam_info FAMS[2] = {
	{"nanodet", GPU_HEAD_NANODET, 1.0f, 416},
	{"centernet", GPU_HEAD_CENTERNET, 255.0f, 512},
};

/* One family on three backends: cpu, cuda fp32, cuda fp16. */
struct setup {
	struct mdl_graph *g;
	struct gpu_backend *be[3];
	struct gpu_family *f[3];
	struct gpu_post post;
};

static int setup_open(struct setup *s, const struct fam_info *fi, int eager)
{
	char m[512], err[512] = "";
	memset(s, 0, sizeof *s);
	model_path(fi->name, m, sizeof m);
	s->g = mdl_graph_load(m, err, sizeof err);
	if (!s->g)
		goto fail;
	if (eager)
		setenv("SHOAL_CUDA_GRAPHS", "0", 1);
	s->be[0] = gpu_backend_cpu_create(8, err, sizeof err);
	if (use_emul) {
		s->be[1] = s->be[0] ? gpu_cuda_emulator_create(0, err, sizeof err) : NULL;
		s->be[2] = s->be[1] ? gpu_cuda_emulator_create(1, err, sizeof err) : NULL;
	} else {
		s->be[1] = s->be[0] ? gpu_backend_cuda_create(0, 0, err, sizeof err) : NULL;
		s->be[2] = s->be[1] ? gpu_backend_cuda_create(0, 1, err, sizeof err) : NULL;
	}
	unsetenv("SHOAL_CUDA_GRAPHS");
	if (!s->be[2])
		goto fail;
	for (int k = 0; k < 3; k++)
		if (!(s->f[k] = gpu_family_load(s->be[k], s->g, err, sizeof err)))
			goto fail;
	if (gpu_post_init(&s->post, s->g, fi->head, 0.3f, 0.5f, err, sizeof err))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", fi->name, err);
	return -1;
}

static void setup_close(struct setup *s)
{
	for (int k = 0; k < 3; k++) {
		gpu_family_close(s->f[k]);
		gpu_backend_destroy(s->be[k]);
	}
	mdl_graph_destroy(s->g);
}

/* Writes image (pick % N_IMG) into batch item `item` of every variant given. */
static int fill(struct gpu_variant **v, int nv, const struct fam_info *fi, int item, int pick)
{
	const struct img *im = &imgs[pick % N_IMG];
	struct gpu_image gi = {GPU_PIX_RGB24, im->w, im->h, {im->rgb}, {im->w * 3}, 0};
	float sd = 1 / fi->scale255;
	struct gpu_norm norm = {{0, 0, 0}, {sd, sd, sd}, 0};
	for (int k = 0; k < nv; k++)
		if (v[k] && gpu_variant_input_image(v[k], item, &gi, &norm))
			return -1;
	return 0;
}

/* max |a - ref| / max |ref| over every output of the last batch. */
static double out_rel(struct gpu_variant *ref, struct gpu_variant *got, int n_out)
{
	double worst = 0;
	for (int o = 0; o < n_out; o++) {
		struct mdl_shape sr, sg;
		const float *r = gpu_variant_output(ref, o, &sr),
			    *q = gpu_variant_output(got, o, &sg);
		int64_t n = mdl_shape_numel(&sr);
		if (!r || !q || n != mdl_shape_numel(&sg))
			return INFINITY;
		double mr = 1e-30, md = 0;
		for (int64_t i = 0; i < n; i++) {
			double d = fabs((double)r[i] - q[i]);
			mr = fabs(r[i]) > mr ? fabs(r[i]) : mr;
			md = d > md || isnan(d) ? (isnan(d) ? INFINITY : d) : md;
		}
		if (getenv("SHOAL_TEST_VERBOSE"))
			printf("  output %d: max |ref| %.3g, max diff %.3g\n", o, mr, md);
		worst = md / mr > worst ? md / mr : worst;
	}
	return worst;
}

static double iou(const struct gpu_det *a, const struct gpu_det *b)
{
	double ix = fmin(a->x1, b->x1) - fmax(a->x0, b->x0),
	       iy = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
	if (ix <= 0 || iy <= 0)
		return 0;
	double in = ix * iy,
	       ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0);
	return in / (ua - in);
}

/* Every detection of want scoring >= min_score has one in got of the same class with IoU >=
 * min_iou and a score within dscore. Prints the first miss. */
static int dets_cover(const struct gpu_det *want, int nw, const struct gpu_det *got, int ng,
		      float min_score, double min_iou, double dscore, const char *what)
{
	for (int i = 0; i < nw; i++) {
		if (want[i].score < min_score)
			continue;
		int hit = 0;
		for (int j = 0; j < ng && !hit; j++)
			hit = got[j].cls == want[i].cls && iou(&want[i], &got[j]) >= min_iou &&
			      fabs(got[j].score - want[i].score) <= dscore;
		if (!hit) {
			fprintf(stderr,
				"%s: detection %d (class %d, score %.3f, box %.1f,%.1f,%.1f,%.1f) "
				"not matched\n",
				what, i, want[i].cls, want[i].score, want[i].x0, want[i].y0,
				want[i].x1, want[i].y1);
			return 0;
		}
	}
	return 1;
}

/* Same detections on CPU, CUDA fp32 (all, both ways) and fp16 (confident ones) for every
 * image at the family's native size, batch N_IMG. */
static int detections_match(const struct fam_info *fi)
{
	int rc = ready_or_skip();
	if (rc != ST_PASS)
		return rc;
	struct setup s;
	ST_CHECK(setup_open(&s, fi, 0) == 0);
	char err[512] = "";
	struct gpu_variant *v[3];
	for (int k = 0; k < 3; k++) {
		v[k] = gpu_variant_prepare_image(s.f[k], N_IMG, fi->native, fi->native, err,
						 sizeof err);
		if (!v[k])
			fprintf(stderr, "prepare: %s\n", err);
		ST_CHECK(v[k] != NULL);
	}
	for (int i = 0; i < N_IMG; i++)
		ST_CHECK(fill(v, 3, fi, i, i) == 0);
	for (int k = 0; k < 3; k++)
		ST_CHECK_EQ(gpu_variant_run(v[k], N_IMG), 0);
	printf("%s %d: outputs vs cpu: fp32 rel %.2e, fp16 rel %.2e\n", fi->name, fi->native,
	       out_rel(v[0], v[1], s.g->n_outputs), out_rel(v[0], v[2], s.g->n_outputs));
	int total = 0;
	for (int i = 0; i < N_IMG; i++) {
		struct gpu_det d[3][100];
		int n[3];
		for (int k = 0; k < 3; k++)
			n[k] = gpu_variant_detect(v[k], &s.post, i, d[k], 100);
		printf("%s %s: %d detections (cpu), %d (fp32), %d (fp16)\n", fi->name, img_names[i],
		       n[0], n[1], n[2]);
		for (int j = 0; j < n[0] && j < 5; j++)
			printf("  class %d score %.3f | fp32 %.3f | fp16 %.3f\n", d[0][j].cls,
			       d[0][j].score, j < n[1] ? d[1][j].score : -1,
			       j < n[2] ? d[2][j].score : -1);
		ST_CHECK(n[0] > 0);
		total += n[0];
		ST_CHECK(dets_cover(d[0], n[0], d[1], n[1], 0.0f, 0.95, 2e-3, "fp32 vs cpu"));
		ST_CHECK(dets_cover(d[1], n[1], d[0], n[0], 0.0f, 0.95, 2e-3, "cpu vs fp32"));
		ST_CHECK(dets_cover(d[0], n[0], d[2], n[2], 0.45f, 0.8, 0.1, "fp16 vs cpu"));
	}
	ST_CHECK(total >= N_IMG);
	for (int k = 0; k < 3; k++)
		gpu_variant_close(v[k]);
	setup_close(&s);
	return ST_PASS;
}

static int test_nanodet_detections_match_cpu(void)
{
	return detections_match(&FAMS[0]);
}
static int test_centernet_detections_match_cpu(void)
{
	return detections_match(&FAMS[1]);
}

static double median_run_ms(struct gpu_variant *v, int batch, int reps)
{
	double t[32];
	for (int r = 0; r < reps && r < 32; r++) {
		double t0 = now_ms();
		if (gpu_variant_run(v, batch))
			return -1;
		t[r] = now_ms() - t0;
	}
	for (int i = 1; i < reps; i++)
		for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
			double x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return t[reps / 2];
}

/* All 17 sizes of both families at batch 1: fp32 outputs within 1e-3 of the CPU's
 * (relative to each output's largest magnitude), fp16 within 1e-1 (CenterNet's box sizes in
 * pixels carry the largest fp16 error; confident detections are checked elsewhere). */
static int test_all_17_variants_match_cpu(void)
{
	int rc = ready_or_skip();
	if (rc != ST_PASS)
		return rc;
	char err[512] = "";
	for (int fi = 0; fi < 2; fi++) {
		struct setup s;
		ST_CHECK(setup_open(&s, &FAMS[fi], 0) == 0);
		printf("%-9s size  fp32 rel   fp16 rel   prepare32 ms  run32 ms  run16 ms  cpu "
		       "ms\n",
		       FAMS[fi].name);
		for (int size = 128; size <= 640; size += 32) {
			struct gpu_variant *v[3];
			double tp = 0;
			for (int k = 0; k < 3; k++) {
				double t0 = now_ms();
				v[k] = gpu_variant_prepare_image(s.f[k], 1, size, size, err,
								 sizeof err);
				if (k == 1)
					tp = now_ms() - t0;
				if (!v[k])
					fprintf(stderr, "prepare %d: %s\n", size, err);
				ST_CHECK(v[k] != NULL);
			}
			ST_CHECK(fill(v, 3, &FAMS[fi], 0, size / 32) == 0);
			double tc = now_ms();
			ST_CHECK_EQ(gpu_variant_run(v[0], 1), 0);
			tc = now_ms() - tc;
			double t32 = median_run_ms(v[1], 1, 9), t16 = median_run_ms(v[2], 1, 9);
			double r32 = out_rel(v[0], v[1], s.g->n_outputs);
			double r16 = out_rel(v[0], v[2], s.g->n_outputs);
			printf("%-9s %4d  %.2e   %.2e   %10.1f  %8.3f  %8.3f  %6.1f\n",
			       FAMS[fi].name, size, r32, r16, tp, t32, t16, tc);
			ST_CHECK(t32 > 0 && t16 > 0);
			ST_CHECK(r32 <= 1e-3);
			ST_CHECK(r16 <= 1e-1);
			for (int k = 0; k < 3; k++)
				gpu_variant_close(v[k]);
		}
		setup_close(&s);
	}
	return ST_PASS;
}

/* NanoDet at 320, one variant prepared for batch 16, run at every batch 1..16 with distinct
 * items: each batch's outputs equal the CPU's for the same items. */
static int test_batches_1_to_16_match_cpu(void)
{
	int rc = ready_or_skip();
	if (rc != ST_PASS)
		return rc;
	char err[512] = "";
	struct setup s;
	const struct fam_info *fi = &FAMS[0];
	ST_CHECK(setup_open(&s, fi, 0) == 0);
	struct gpu_variant *v[3];
	for (int k = 0; k < 3; k++) {
		v[k] = gpu_variant_prepare_image(s.f[k], 16, 320, 320, err, sizeof err);
		if (!v[k])
			fprintf(stderr, "prepare: %s\n", err);
		ST_CHECK(v[k] != NULL);
	}
	printf("batch  fp32 rel   fp16 rel   run32 ms  run16 ms\n");
	for (int b = 1; b <= 16; b++) {
		/* host input buffers: a different mix of images at every batch, item i darkened by
		 * i % so that no two items are the same */
		for (int k = 0; k < 3; k++) {
			float *x = gpu_variant_input(v[k], 0);
			for (int i = 0; i < b; i++) {
				const struct img *im = &imgs[(i + b) % N_IMG];
				struct gpu_image gi = {GPU_PIX_RGB24, im->w,       im->h,
						       {im->rgb},     {im->w * 3}, 0};
				struct gpu_norm norm = {{0, 0, 0}, {1, 1, 1}, 0};
				float *item = x + (size_t)i * 3 * 320 * 320;
				ST_CHECK_EQ(gpu_image_to_tensor(&gi, &norm, item, 320, 320), 0);
				for (int e = 0; e < 3 * 320 * 320; e++)
					item[e] *= 1.0f - 0.01f * (float)i;
			}
		}
		ST_CHECK_EQ(gpu_variant_run(v[0], b), 0);
		double t32 = median_run_ms(v[1], b, 5), t16 = median_run_ms(v[2], b, 5);
		ST_CHECK(t32 > 0 && t16 > 0);
		struct mdl_shape sh;
		ST_CHECK(gpu_variant_output(v[1], 0, &sh) != NULL);
		ST_CHECK_EQ(sh.d[0], b);
		double r32 = out_rel(v[0], v[1], s.g->n_outputs),
		       r16 = out_rel(v[0], v[2], s.g->n_outputs);
		printf("%5d  %.2e   %.2e   %8.3f  %8.3f\n", b, r32, r16, t32, t16);
		ST_CHECK(r32 <= 1e-3);
		ST_CHECK(r16 <= 1e-1);
		/* per-item detections agree at every batch (last item checked) */
		struct gpu_det d0[100], d1[100];
		int n0 = gpu_variant_detect(v[0], &s.post, b - 1, d0, 100);
		int n1 = gpu_variant_detect(v[1], &s.post, b - 1, d1, 100);
		ST_CHECK(dets_cover(d0, n0, d1, n1, 0.0f, 0.95, 2e-3, "batch fp32 vs cpu"));
	}
	/* busy and bad-batch answers */
	ST_CHECK_EQ(gpu_variant_submit(v[1], 17), -EINVAL);
	ST_CHECK_EQ(gpu_variant_submit(v[1], 0), -EINVAL);
	ST_CHECK_EQ(gpu_variant_submit(v[1], 4), 0);
	ST_CHECK_EQ(gpu_variant_submit(v[1], 4), -EBUSY);
	while ((rc = gpu_variant_poll(v[1])) == 0)
		;
	ST_CHECK_EQ(rc, 1);
	for (int k = 0; k < 3; k++)
		gpu_variant_close(v[k]);
	setup_close(&s);
	return ST_PASS;
}

/* The same variant with CUDA graphs and run eagerly (SHOAL_CUDA_GRAPHS=0), algorithms by
 * heuristics in both (SHOAL_CUDA_FIND=0) so that both run the same kernels: outputs equal
 * (expected bit for bit; printed), and a replay repeated gives the same outputs. Both
 * families, fp32 and fp16, batch 4. */
static int test_graph_replay_equals_eager(void)
{
	int rc = ready_or_skip();
	if (rc != ST_PASS)
		return rc;
	char err[512] = "";
	setenv("SHOAL_CUDA_FIND", "0", 1);
	for (int fi = 0; fi < 2; fi++) {
		struct setup sg, se;
		ST_CHECK(setup_open(&sg, &FAMS[fi], 0) == 0);
		ST_CHECK(setup_open(&se, &FAMS[fi], 1) == 0);
		for (int k = 1; k < 3; k++) {
			struct gpu_variant *vg =
				gpu_variant_prepare_image(sg.f[k], 4, 320, 256, err, sizeof err);
			struct gpu_variant *ve =
				gpu_variant_prepare_image(se.f[k], 4, 320, 256, err, sizeof err);
			if (!vg || !ve)
				fprintf(stderr, "prepare: %s\n", err);
			ST_CHECK(vg && ve);
			struct gpu_variant *both[2] = {vg, ve};
			for (int i = 0; i < 4; i++)
				ST_CHECK(fill(both, 2, &FAMS[fi], i, i) == 0);
			ST_CHECK_EQ(gpu_variant_run(vg, 4), 0);
			ST_CHECK_EQ(gpu_variant_run(ve, 4), 0);
			double r = out_rel(ve, vg, sg.g->n_outputs);
			double te = median_run_ms(ve, 4, 9), tg = median_run_ms(vg, 4, 9);
			double r2 = out_rel(ve, vg, sg.g->n_outputs);
			printf("%s %s batch 4 320x256: graph vs eager rel %.2e (again %.2e); "
			       "eager %.3f ms, graph %.3f ms\n",
			       FAMS[fi].name, k == 1 ? "fp32" : "fp16", r, r2, te, tg);
			/* the same kernels on the same data: equal (a margin only for a cuDNN
			 * kernel that splits its sums nondeterministically) */
			double tol = k == 1 ? 1e-5 : 1e-3;
			ST_CHECK(r <= tol && r2 <= tol);
			gpu_variant_close(vg);
			gpu_variant_close(ve);
		}
		setup_close(&sg);
		setup_close(&se);
	}
	unsetenv("SHOAL_CUDA_FIND");
	return ST_PASS;
}

/* Without a device: both families' plans (fp32 NCHW, fp16 NHWC) run by the host emulator at
 * 128x160, batch 2, on real images: outputs as the CPU's (fp32 within 1e-4, fp16 1e-1) and
 * the same detections in fp32; then all 17 sizes (and batch 16) are planned. */
static int test_emulated_zoo_plans_match_cpu(void)
{
	use_emul = 1;
	int rc = ready_or_skip();
	if (rc != ST_PASS)
		return rc;
	char err[512] = "";
	for (int fi = 0; fi < 2; fi++) {
		struct setup s;
		ST_CHECK(setup_open(&s, &FAMS[fi], 0) == 0);
		struct gpu_variant *v[3];
		for (int k = 0; k < 3; k++) {
			v[k] = gpu_variant_prepare_image(s.f[k], 2, 128, 160, err, sizeof err);
			if (!v[k])
				fprintf(stderr, "prepare: %s\n", err);
			ST_CHECK(v[k] != NULL);
		}
		for (int b = 1; b <= 2; b++) {
			for (int i = 0; i < b; i++)
				ST_CHECK(fill(v, 3, &FAMS[fi], i, i + b) == 0);
			for (int k = 0; k < 3; k++)
				ST_CHECK_EQ(gpu_variant_run(v[k], b), 0);
			double r32 = out_rel(v[0], v[1], s.g->n_outputs);
			double r16 = out_rel(v[0], v[2], s.g->n_outputs);
			printf("%s 128x160 batch %d (emulated): fp32 rel %.2e, fp16 rel %.2e\n",
			       FAMS[fi].name, b, r32, r16);
			ST_CHECK(r32 <= 1e-4);
			ST_CHECK(r16 <= 1e-1);
			for (int i = 0; i < b; i++) {
				struct gpu_det d0[100], d1[100];
				int n0 = gpu_variant_detect(v[0], &s.post, i, d0, 100);
				int n1 = gpu_variant_detect(v[1], &s.post, i, d1, 100);
				ST_CHECK(n0 >= 0 && n1 >= 0);
				ST_CHECK(dets_cover(d0, n0, d1, n1, 0.0f, 0.95, 2e-3,
						    "emulated fp32 vs cpu"));
				ST_CHECK(dets_cover(d1, n1, d0, n0, 0.0f, 0.95, 2e-3,
						    "cpu vs emulated fp32"));
			}
		}
		for (int k = 0; k < 3; k++)
			gpu_variant_close(v[k]);
		/* every size plans in both modes (batch 1), and batch 16 plans at 128 */
		for (int size = 128; size <= 640; size += 32)
			for (int k = 1; k < 3; k++) {
				struct gpu_variant *p = gpu_variant_prepare_image(
					s.f[k], size == 128 ? 16 : 1, size, size, err, sizeof err);
				if (!p)
					fprintf(stderr, "prepare %d: %s\n", size, err);
				ST_CHECK(p != NULL);
				gpu_variant_close(p);
			}
		setup_close(&s);
	}
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_emulated_zoo_plans_match_cpu), ST_CASE(test_nanodet_detections_match_cpu),
	ST_CASE(test_centernet_detections_match_cpu), ST_CASE(test_all_17_variants_match_cpu),
	ST_CASE(test_batches_1_to_16_match_cpu), ST_CASE(test_graph_replay_equals_eager))
