/* Detection post-processing of the zoo heads (models/zoo/README.md): NanoDet GFL decode,
 * CenterNet peak picking, per-class greedy NMS. Works in the caller's buffer. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/gpu.h"

#define GFL_BINS 11
#define CENTERNET_STRIDE 4
#define CENTERNET_TOP 100

static int find_output(const struct mdl_graph *g, const char *name)
{
	for (int i = 0; i < g->n_outputs; i++)
		if (!strcmp(g->values[g->outputs[i]].name, name))
			return i;
	return -1;
}

int gpu_post_init(struct gpu_post *p, const struct mdl_graph *g, enum gpu_head head,
		  float score_min, float iou_max, char *err, size_t err_len)
{
	memset(p, 0, sizeof *p);
	p->head = head;
	p->score_min = score_min;
	p->iou_max = iou_max;
	char name[32];
	if (head == GPU_HEAD_CENTERNET) {
		p->n_levels = 1;
		p->stride[0] = CENTERNET_STRIDE;
		p->out_a[0] = find_output(g, "heatmap");
		p->out_b[0] = find_output(g, "heatmax");
		p->out_wh = find_output(g, "wh");
		if (p->out_a[0] < 0 || p->out_b[0] < 0 || p->out_wh < 0) {
			snprintf(err, err_len, "%s: not a centernet head (needs outputs heatmap, heatmax, wh)",
				 g->path);
			return -EINVAL;
		}
		return 0;
	}
	static const int strides[] = {8, 16, 32, 64};
	for (int i = 0; i < GPU_POST_MAX_LEVELS; i++) {
		snprintf(name, sizeof name, "cls%d", strides[i]);
		int a = find_output(g, name);
		snprintf(name, sizeof name, "reg%d", strides[i]);
		int b = find_output(g, name);
		if (a < 0 && b < 0)
			continue;
		if (a < 0 || b < 0) {
			snprintf(err, err_len, "%s: nanodet level %d has only one of cls/reg", g->path,
				 strides[i]);
			return -EINVAL;
		}
		p->stride[p->n_levels] = strides[i];
		p->out_a[p->n_levels] = a;
		p->out_b[p->n_levels++] = b;
	}
	if (!p->n_levels) {
		snprintf(err, err_len, "%s: not a nanodet head (no cls8/reg8 … outputs)", g->path);
		return -EINVAL;
	}
	return 0;
}

/* Adds a candidate, keeping the best cap when full. */
static void push(struct gpu_det *d, int *n, int cap, const struct gpu_det *c)
{
	if (*n < cap) {
		d[(*n)++] = *c;
		return;
	}
	int worst = 0;
	for (int i = 1; i < cap; i++)
		if (d[i].score < d[worst].score)
			worst = i;
	if (c->score > d[worst].score)
		d[worst] = *c;
}

static int by_score(const void *a, const void *b)
{
	float x = ((const struct gpu_det *)a)->score, y = ((const struct gpu_det *)b)->score;
	return x < y ? 1 : x > y ? -1 : 0;
}

static float iou(const struct gpu_det *a, const struct gpu_det *b)
{
	float w = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
	float h = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
	if (w <= 0 || h <= 0)
		return 0;
	float inter = w * h;
	float ua = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
	return ua > 0 ? inter / ua : 0;
}

/* Sorts best first and drops boxes overlapping a better one of the same class. */
static int nms(struct gpu_det *d, int n, float iou_max)
{
	qsort(d, (size_t)n, sizeof *d, by_score);
	int kept = 0;
	for (int i = 0; i < n; i++) {
		int drop = 0;
		for (int k = 0; k < kept && !drop; k++)
			drop = d[k].cls == d[i].cls && iou(&d[k], &d[i]) > iou_max;
		if (!drop)
			d[kept++] = d[i];
	}
	return kept;
}

static int decode_nanodet(const struct gpu_post *p, const float *const *outs,
			  const struct mdl_shape *shapes, int item, struct gpu_det *dets, int cap)
{
	int n = 0;
	for (int l = 0; l < p->n_levels; l++) {
		const struct mdl_shape *cs = &shapes[p->out_a[l]], *rs = &shapes[p->out_b[l]];
		if (cs->rank != 4 || rs->rank != 4 || rs->d[1] != 4 * GFL_BINS || cs->d[2] != rs->d[2] ||
		    cs->d[3] != rs->d[3] || item >= cs->d[0] || item >= rs->d[0])
			return -EINVAL;
		int64_t C = cs->d[1], h = cs->d[2], w = cs->d[3], hw = h * w;
		const float *cls = outs[p->out_a[l]] + item * C * hw;
		const float *reg = outs[p->out_b[l]] + item * 4 * GFL_BINS * hw;
		float s = (float)p->stride[l];
		for (int64_t y = 0; y < h; y++)
			for (int64_t x = 0; x < w; x++) {
				int64_t cell = y * w + x;
				int best = 0;
				for (int64_t c = 1; c < C; c++)
					if (cls[c * hw + cell] > cls[best * hw + cell])
						best = (int)c;
				float score = cls[best * hw + cell];
				if (!(score > p->score_min))
					continue;
				float dist[4];
				for (int k = 0; k < 4; k++) {
					const float *r = reg + (int64_t)k * GFL_BINS * hw + cell;
					float m = r[0];
					for (int b = 1; b < GFL_BINS; b++)
						m = fmaxf(m, r[b * hw]);
					float sum = 0, acc = 0;
					for (int b = 0; b < GFL_BINS; b++) {
						float e = expf(r[b * hw] - m);
						sum += e;
						acc += e * (float)b;
					}
					dist[k] = s * acc / sum;
				}
				float cx = ((float)x + 0.5f) * s, cy = ((float)y + 0.5f) * s;
				struct gpu_det d = {cx - dist[0], cy - dist[1], cx + dist[2], cy + dist[3],
						    score, best};
				push(dets, &n, cap, &d);
			}
	}
	return nms(dets, n, p->iou_max);
}

static int decode_centernet(const struct gpu_post *p, const float *const *outs,
			    const struct mdl_shape *shapes, int item, struct gpu_det *dets, int cap)
{
	const struct mdl_shape *hs = &shapes[p->out_a[0]], *ms = &shapes[p->out_b[0]],
			       *ws = &shapes[p->out_wh];
	if (hs->rank != 4 || ms->rank != 4 || memcmp(hs->d, ms->d, 4 * sizeof hs->d[0]) ||
	    ws->rank != 4 || ws->d[1] != 4 ||
	    ws->d[2] != hs->d[2] || ws->d[3] != hs->d[3] || item >= hs->d[0] || item >= ws->d[0])
		return -EINVAL;
	int64_t C = hs->d[1], hw = hs->d[2] * hs->d[3], w = hs->d[3];
	const float *heat = outs[p->out_a[0]] + item * C * hw, *hmax = outs[p->out_b[0]] + item * C * hw;
	const float *wh = outs[p->out_wh] + item * 4 * hw;
	int lim = cap < CENTERNET_TOP ? cap : CENTERNET_TOP, n = 0;
	for (int64_t c = 0; c < C; c++)
		for (int64_t cell = 0; cell < hw; cell++) {
			float v = heat[c * hw + cell];
			if (!(v > p->score_min) || v != hmax[c * hw + cell])
				continue;
			float cx = (float)(CENTERNET_STRIDE * (cell % w));
			float cy = (float)(CENTERNET_STRIDE * (cell / w));
			struct gpu_det d = {cx - wh[cell], cy - wh[hw + cell], cx + wh[2 * hw + cell],
					    cy + wh[3 * hw + cell], v, (int)c};
			push(dets, &n, lim, &d);
		}
	return nms(dets, n, p->iou_max);
}

int gpu_post_decode(const struct gpu_post *p, const float *const *outs,
		    const struct mdl_shape *shapes, int item, struct gpu_det *dets, int cap)
{
	if (!p || !outs || !shapes || !dets || cap < 1 || item < 0)
		return -EINVAL;
	return p->head == GPU_HEAD_CENTERNET ? decode_centernet(p, outs, shapes, item, dets, cap)
					     : decode_nanodet(p, outs, shapes, item, dets, cap);
}
