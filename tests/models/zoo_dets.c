/* zoo_dets MODEL.onnx nanodet|centernet N,C,H,W DIR_A DIR_B [SCORE_MIN]
 *
 * Decodes the outputs of a zoo family written by two runtimes (cpu_run and run_ort.js:
 * DIR/<output>.f32, raw little-endian float32) with the project's post-processing
 * (gpu_post_decode: decode + per-class NMS at IoU 0.5, score > SCORE_MIN, default 0.2) and
 * checks that every batch item gets the same detections from both: the same count and,
 * paired one to one, the same class, every box edge within 1 px (input pixels) and the score
 * within 1e-3. The only unpaired detections tolerated are those whose score is within 1e-3
 * of SCORE_MIN (the two runtimes may legitimately fall on either side of the threshold);
 * they are reported. Prints every item's detections; exit 0 when they agree, 1 when not,
 * 2 on bad arguments or unreadable files (one line). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"

#define CAP      1024
#define MAX_OUTS 16
#define BOX_TOL  1.0f
#define SCORE_TOL 1e-3f

static int fail(const char *what, const char *arg)
{
	fprintf(stderr, "zoo_dets: %s%s%s\n", arg ? arg : "", arg ? ": " : "", what);
	return 2;
}

/* Reads DIR/<name>.f32 (the name as run_ort.js writes it) of exactly n floats. */
static float *read_output(const char *dir, const char *name, size_t n)
{
	char path[4096], safe[256];
	size_t k = 0;
	for (; name[k] && k + 1 < sizeof safe; k++) {
		char c = name[k];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 c == '_' || c == '.' || c == '-';
		safe[k] = ok ? c : '_';
	}
	safe[k] = '\0';
	snprintf(path, sizeof path, "%s/%s.f32", dir, safe);
	FILE *f = fopen(path, "rb");
	float *v = malloc(n * sizeof(float) + 1);
	size_t got = f && v ? fread(v, sizeof(float), n + 1, f) : 0;
	if (f)
		fclose(f);
	if (got != n) {
		fprintf(stderr, "zoo_dets: %s: missing or not %zu floats\n", path, n);
		free(v);
		return NULL;
	}
	return v;
}

static float max_edge_diff(const struct gpu_det *a, const struct gpu_det *b)
{
	return fmaxf(fmaxf(fabsf(a->x0 - b->x0), fabsf(a->y0 - b->y0)),
		     fmaxf(fabsf(a->x1 - b->x1), fabsf(a->y1 - b->y1)));
}

static void print_det(const char *tag, const struct gpu_det *d)
{
	printf("  %s class %2d score %.4f box %7.2f %7.2f %7.2f %7.2f\n", tag, d->cls, d->score,
	       d->x0, d->y0, d->x1, d->y1);
}

/* Pairs a with b; returns the number of disagreements (unpaired detections away from the
 * threshold). */
static int compare_item(int item, const struct gpu_det *a, int na, const struct gpu_det *b,
			int nb, float score_min)
{
	unsigned char used[CAP] = {0};
	int bad = 0, borderline = 0;
	float worst_box = 0, worst_score = 0;
	printf("item %d: %d detections (A), %d (B)\n", item, na, nb);
	for (int i = 0; i < na; i++) {
		int best = -1;
		float best_d = 0;
		for (int k = 0; k < nb; k++) {
			if (used[k] || b[k].cls != a[i].cls || fabsf(b[k].score - a[i].score) > SCORE_TOL)
				continue;
			float d = max_edge_diff(&a[i], &b[k]);
			if (d <= BOX_TOL && (best < 0 || d < best_d)) {
				best = k;
				best_d = d;
			}
		}
		if (best >= 0) {
			used[best] = 1;
			worst_box = fmaxf(worst_box, best_d);
			worst_score = fmaxf(worst_score, fabsf(b[best].score - a[i].score));
			print_det("=", &a[i]);
		} else if (a[i].score - score_min <= SCORE_TOL) {
			borderline++;
			print_det("A only (at the threshold)", &a[i]);
		} else {
			bad++;
			print_det("A only: MISMATCH", &a[i]);
		}
	}
	for (int k = 0; k < nb; k++) {
		if (used[k])
			continue;
		if (b[k].score - score_min <= SCORE_TOL) {
			borderline++;
			print_det("B only (at the threshold)", &b[k]);
		} else {
			bad++;
			print_det("B only: MISMATCH", &b[k]);
		}
	}
	printf("item %d: %s; max box edge diff %.3g px, max score diff %.3g%s\n", item,
	       bad ? "DIFFERENT" : "same detections", worst_box, worst_score,
	       borderline ? " (threshold cases tolerated)" : "");
	return bad;
}

int main(int argc, char **argv)
{
	if (argc != 6 && argc != 7)
		return fail("usage: zoo_dets MODEL.onnx nanodet|centernet N,C,H,W DIR_A DIR_B "
			    "[SCORE_MIN]", NULL);
	int centernet = !strcmp(argv[2], "centernet");
	if (!centernet && strcmp(argv[2], "nanodet"))
		return fail("unknown family (nanodet or centernet)", argv[2]);
	int n, c, h, w;
	if (sscanf(argv[3], "%d,%d,%d,%d", &n, &c, &h, &w) != 4 || n < 1 || c < 1 || h < 1 || w < 1)
		return fail("shape must be N,C,H,W", argv[3]);
	float score_min = argc == 7 ? strtof(argv[6], NULL) : 0.2f;
	char err[512];
	struct mdl_graph *g = mdl_graph_load(argv[1], err, sizeof err);
	if (!g)
		return fail(err, NULL);
	struct mdl_shape in = {4, {n, c, h, w}};
	struct mdl_infer *inf = g->n_inputs == 1 ? mdl_graph_infer(g, &in, err, sizeof err) : NULL;
	if (!inf)
		return fail(g->n_inputs == 1 ? err : "model must have one input", NULL);
	struct gpu_post post;
	if (gpu_post_init(&post, g, centernet ? GPU_HEAD_CENTERNET : GPU_HEAD_NANODET, score_min,
			  0.5f, err, sizeof err))
		return fail(err, NULL);
	if (g->n_outputs > MAX_OUTS)
		return fail("too many outputs", argv[1]);
	const float *oa[MAX_OUTS], *ob[MAX_OUTS];
	struct mdl_shape shapes[MAX_OUTS];
	for (int i = 0; i < g->n_outputs; i++) {
		shapes[i] = inf->v[g->outputs[i]].shape;
		size_t cnt = (size_t)mdl_shape_numel(&shapes[i]);
		const char *name = g->values[g->outputs[i]].name;
		oa[i] = read_output(argv[4], name, cnt);
		ob[i] = read_output(argv[5], name, cnt);
		if (!oa[i] || !ob[i])
			return 2;
	}
	static struct gpu_det da[CAP], db[CAP];
	int bad = 0;
	for (int item = 0; item < n; item++) {
		int na = gpu_post_decode(&post, oa, shapes, item, da, CAP);
		int nb = gpu_post_decode(&post, ob, shapes, item, db, CAP);
		if (na < 0 || nb < 0)
			return fail("gpu_post_decode refused the outputs", NULL);
		bad += compare_item(item, da, na, db, nb, score_min);
	}
	printf("%s %s: %s\n", argv[2], argv[3],
	       bad ? "detections DIFFER" : "same detections after decode + NMS");
	for (int i = 0; i < g->n_outputs; i++) {
		free((void *)oa[i]);
		free((void *)ob[i]);
	}
	mdl_infer_destroy(inf);
	mdl_graph_destroy(g);
	return bad ? 1 : 0;
}
