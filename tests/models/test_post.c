/* Detection post-processing (gpu_post_*) on synthetic head outputs: NanoDet GFL decode,
 * CenterNet peaks, thresholds, per-class NMS, the candidate cap, bad heads refused. */
#include <errno.h>
#include <math.h>

#include "gpu/gpu.h"
#include "harness.h"

/* A graph that only has named outputs (all gpu_post_init looks at). */
struct fake {
	struct mdl_graph g;
	struct mdl_value v[8];
	int outs[8];
};

static void fake_graph(struct fake *f, const char *const *names, int n)
{
	memset(f, 0, sizeof *f);
	f->g.path = "fake.onnx";
	f->g.values = f->v;
	f->g.n_values = n;
	f->g.outputs = f->outs;
	f->g.n_outputs = n;
	for (int i = 0; i < n; i++) {
		f->v[i].name = (char *)names[i];
		f->outs[i] = i;
	}
}

static int near(float a, float b) { return fabsf(a - b) < 1e-3f; }

enum { C = 3, H = 4, W = 5 };

static int test_nanodet_decodes_gfl_distances(void)
{
	static const char *const names[] = {"cls8", "reg8"};
	struct fake f;
	fake_graph(&f, names, 2);
	struct gpu_post p;
	char err[128];
	ST_CHECK_EQ(gpu_post_init(&p, &f.g, GPU_HEAD_NANODET, 0.3f, 0.5f, err, sizeof err), 0);
	ST_CHECK_EQ(p.n_levels, 1);
	static float cls[2 * C * H * W], reg[2 * 44 * H * W];
	/* item 1: class 2 at (y 1, x 2) scores 0.8; sides put all mass on bins 1, 2, 3, 0 */
	float *c1 = cls + C * H * W, *r1 = reg + 44 * H * W;
	c1[(2 * H + 1) * W + 2] = 0.8f;
	c1[(0 * H + 3) * W + 4] = 0.2f; /* below the threshold */
	const int bin[4] = {1, 2, 3, 0};
	for (int k = 0; k < 4; k++)
		r1[((k * 11 + bin[k]) * H + 1) * W + 2] = 60.0f;
	const float *outs[2] = {cls, reg};
	struct mdl_shape shapes[2] = {{4, {2, C, H, W}}, {4, {2, 44, H, W}}};
	struct gpu_det d[8];
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 1, d, 8), 1);
	ST_CHECK_EQ(d[0].cls, 2);
	ST_CHECK(near(d[0].score, 0.8f));
	/* centre (2.5 * 8, 1.5 * 8) = (20, 12); distances 8, 16, 24, 0 */
	ST_CHECK(near(d[0].x0, 12) && near(d[0].y0, -4) && near(d[0].x1, 44) && near(d[0].y1, 12));
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 0, d, 8), 0); /* item 0 is empty */
	return ST_PASS;
}

static int test_centernet_peaks_and_per_class_nms(void)
{
	static const char *const names[] = {"wh", "heatmax", "heatmap"};
	struct fake f;
	fake_graph(&f, names, 3);
	struct gpu_post p;
	char err[128];
	ST_CHECK_EQ(gpu_post_init(&p, &f.g, GPU_HEAD_CENTERNET, 0.3f, 0.5f, err, sizeof err), 0);
	static float heat[C * H * W], hmax[C * H * W], wh[4 * H * W];
	for (int i = 0; i < 4 * H * W; i++)
		wh[i] = 10.0f;
	/* class 1: peak 0.9 at (2, 3) and a duplicate 0.7 at (2, 2) overlapping it */
	heat[(1 * H + 2) * W + 3] = hmax[(1 * H + 2) * W + 3] = 0.9f;
	heat[(1 * H + 2) * W + 2] = hmax[(1 * H + 2) * W + 2] = 0.7f;
	/* class 0 at the same place: a different class, kept */
	heat[(0 * H + 2) * W + 3] = hmax[(0 * H + 2) * W + 3] = 0.6f;
	/* class 2: 0.95 but not a local maximum (heatmax larger): not a peak */
	heat[(2 * H + 0) * W + 0] = 0.95f;
	hmax[(2 * H + 0) * W + 0] = 0.97f;
	const float *outs[3] = {wh, hmax, heat};
	struct mdl_shape shapes[3] = {{4, {1, 4, H, W}}, {4, {1, C, H, W}}, {4, {1, C, H, W}}};
	struct gpu_det d[8];
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 0, d, 8), 2);
	ST_CHECK_EQ(d[0].cls, 1);
	ST_CHECK(near(d[0].score, 0.9f));
	/* centre (4 * 3, 4 * 2) = (12, 8), 10 pixels to every side */
	ST_CHECK(near(d[0].x0, 2) && near(d[0].y0, -2) && near(d[0].x1, 22) && near(d[0].y1, 18));
	ST_CHECK_EQ(d[1].cls, 0);
	/* a cap of 1 keeps only the best candidate */
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 0, d, 1), 1);
	ST_CHECK(near(d[0].score, 0.9f));
	return ST_PASS;
}

static int test_rejects_bad_heads(void)
{
	static const char *const names[] = {"cls8", "boxes"};
	struct fake f;
	fake_graph(&f, names, 2);
	struct gpu_post p;
	char err[160] = "";
	ST_CHECK_EQ(gpu_post_init(&p, &f.g, GPU_HEAD_NANODET, 0.3f, 0.5f, err, sizeof err), -EINVAL);
	ST_CHECK(strstr(err, "fake.onnx: ") == err && !strchr(err, '\n'));
	ST_CHECK_EQ(gpu_post_init(&p, &f.g, GPU_HEAD_CENTERNET, 0.3f, 0.5f, err, sizeof err), -EINVAL);
	static const char *const ok[] = {"cls8", "reg8"};
	fake_graph(&f, ok, 2);
	ST_CHECK_EQ(gpu_post_init(&p, &f.g, GPU_HEAD_NANODET, 0.3f, 0.5f, err, sizeof err), 0);
	static float cls[C * H * W], reg[40 * H * W];
	const float *outs[2] = {cls, reg};
	struct mdl_shape shapes[2] = {{4, {1, C, H, W}}, {4, {1, 40, H, W}}}; /* 40 != 4 * 11 */
	struct gpu_det d[4];
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 0, d, 4), -EINVAL);
	shapes[1].d[1] = 44;
	ST_CHECK_EQ(gpu_post_decode(&p, outs, shapes, 1, d, 4), -EINVAL); /* item out of range */
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_nanodet_decodes_gfl_distances), ST_CASE(test_centernet_peaks_and_per_class_nms),
	ST_CASE(test_rejects_bad_heads))
