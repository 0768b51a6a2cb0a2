/* shoal-profile: percentiles, monotone latency tables, detection matching, the CSV files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gpu/gpu_profile.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

double gpu_prof_percentile(double *v, int n, double q)
{
	if (n < 1)
		return NAN;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	int k = (int)ceil(q * n) - 1;
	k = k < 0 ? 0 : k >= n ? n - 1 : k;
	return v[k];
}

/* Running maxima of one table along batch, then along size: the result is non-decreasing in
 * both (the batch order survives the second pass because a max of non-decreasing rows is
 * non-decreasing). */
static int monotone(double *x, int n_sizes, int max_batch)
{
	int changed = 0;
	for (int s = 0; s < n_sizes; s++)
		for (int b = 1; b < max_batch; b++) {
			double *c = &x[s * max_batch + b], prev = x[s * max_batch + b - 1];
			if (*c < prev) {
				*c = prev;
				changed++;
			}
		}
	for (int b = 0; b < max_batch; b++)
		for (int s = 1; s < n_sizes; s++) {
			double *c = &x[s * max_batch + b], prev = x[(s - 1) * max_batch + b];
			if (*c < prev) {
				*c = prev;
				changed++;
			}
		}
	return changed;
}

int gpu_prof_lat_make_monotone(struct gpu_prof_lat *t)
{
	return monotone(t->p50, t->n_sizes, t->max_batch) +
	       monotone(t->p99, t->n_sizes, t->max_batch);
}

float gpu_prof_iou(const struct gpu_det *a, const struct gpu_det *b)
{
	float w = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
	float h = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
	if (w <= 0 || h <= 0)
		return 0;
	float inter = w * h;
	float u = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
	return u > 0 ? inter / u : 0;
}

static int by_score_desc(const void *a, const void *b)
{
	float x = ((const struct gpu_det *)a)->score, y = ((const struct gpu_det *)b)->score;
	return x < y ? 1 : x > y ? -1 : 0;
}

void gpu_prof_match(struct gpu_det *pred, int n_pred, const struct gpu_det *ref, int n_ref,
		    float iou_min, struct gpu_prof_counts *c)
{
	unsigned char used[1024];
	if (n_ref > (int)sizeof used)
		n_ref = (int)sizeof used;
	memset(used, 0, (size_t)(n_ref > 0 ? n_ref : 0));
	qsort(pred, (size_t)n_pred, sizeof *pred, by_score_desc);
	long tp = 0;
	for (int i = 0; i < n_pred; i++) {
		int best = -1;
		float best_iou = iou_min;
		for (int k = 0; k < n_ref; k++) {
			if (used[k] || ref[k].cls != pred[i].cls)
				continue;
			float v = gpu_prof_iou(&pred[i], &ref[k]);
			if (v >= best_iou) {
				best_iou = v;
				best = k;
			}
		}
		if (best >= 0) {
			used[best] = 1;
			tp++;
		}
	}
	c->tp += tp;
	c->fp += n_pred - tp;
	c->fn += n_ref - tp;
}

double gpu_prof_f1(const struct gpu_prof_counts *c)
{
	long den = 2 * c->tp + c->fp + c->fn;
	return den ? 2.0 * (double)c->tp / (double)den : 1.0;
}

int gpu_prof_mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char keep = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0777) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = keep;
	}
	return 0;
}

/* Opens dir/name for writing, the error naming the file. */
static FILE *open_out(const char *dir, const char *name, char *path, size_t plen, char *err,
		      size_t err_len, int *rc)
{
	snprintf(path, plen, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		*rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
	}
	return f;
}

static int close_out(FILE *f, const char *path, char *err, size_t err_len)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		snprintf(err, err_len, "%s: write failed", path);
		return -EIO;
	}
	return 0;
}

int gpu_prof_write_latency(const char *dir, const char *family, const struct gpu_prof_lat *t,
			   const char *comment, char *err, size_t err_len)
{
	char path[4096];
	int rc = 0;
	FILE *f = open_out(dir, "latency.csv", path, sizeof path, err, err_len, &rc);
	if (!f)
		return rc;
	fprintf(f, "variant,batch,p50_ms,p99_ms\n");
	if (comment && *comment)
		fprintf(f, "# %s\n", comment);
	for (int s = 0; s < t->n_sizes; s++)
		for (int b = 1; b <= t->max_batch; b++) {
			int i = s * t->max_batch + b - 1;
			fprintf(f, "%s-%d,%d,%.3f,%.3f\n", family, t->sizes[s], b, t->p50[i], t->p99[i]);
		}
	return close_out(f, path, err, err_len);
}

int gpu_prof_write_accuracy(const char *dir, const char *family, const int *sizes,
			    const double *f1, int n, const char *comment, char *err,
			    size_t err_len)
{
	char path[4096];
	int rc = 0;
	FILE *f = open_out(dir, "accuracy.csv", path, sizeof path, err, err_len, &rc);
	if (!f)
		return rc;
	fprintf(f, "variant,f1\n");
	if (comment && *comment)
		fprintf(f, "# %s\n", comment);
	for (int s = 0; s < n; s++)
		fprintf(f, "%s-%d,%.4f\n", family, sizes[s], f1[s]);
	return close_out(f, path, err, err_len);
}
