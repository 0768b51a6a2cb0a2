/* Profiles: the stand-in, validation, monotone repair, CSV loading (ctl.h part 1). */
#include "control/ctl.h"
#include "control/ctl_priv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_err_set(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static double standin_bytes(int size)
{
	return 0.25 * (double)size * (double)size;
}

int ctl_profile_standin(struct ctl_profile *p, int max_batch)
{
	if (!p || max_batch < 1 || max_batch > CTL_MAX_BATCH)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->max_batch = max_batch;
	for (int s = 128; s <= 640; s += 32) {
		struct ctl_variant *v = &p->v[p->n_variants++];
		double r = (double)s / 640.0;
		v->size = s;
		v->accuracy = pow(r, 0.4);
		v->frame_bytes = standin_bytes(s);
		for (int b = 1; b <= max_batch; b++)
			v->lat_ms[b - 1] = 3.0 + 6.0 * b * r * r;
	}
	return 0;
}

static int finite_pos(double x)
{
	return isfinite(x) && x > 0;
}

int ctl_profile_check(const struct ctl_profile *p, char *err, size_t errlen)
{
	if (!p)
		return ctl_err_set(err, errlen, -EINVAL, "no profile");
	if (p->n_variants < 1 || p->n_variants > CTL_MAX_VARIANTS)
		return ctl_err_set(err, errlen, -EINVAL, "profile has %d variants (need 1..%d)",
			       p->n_variants, CTL_MAX_VARIANTS);
	if (p->max_batch < 1 || p->max_batch > CTL_MAX_BATCH)
		return ctl_err_set(err, errlen, -EINVAL, "profile max batch %d out of 1..%d",
			       p->max_batch, CTL_MAX_BATCH);
	for (int m = 0; m < p->n_variants; m++) {
		const struct ctl_variant *v = &p->v[m];
		if (v->size <= 0)
			return ctl_err_set(err, errlen, -EINVAL, "variant %d: size %d", m, v->size);
		if (!isfinite(v->accuracy) || v->accuracy < 0 || v->accuracy > 1)
			return ctl_err_set(err, errlen, -EINVAL,
				       "variant %d (size %d): accuracy %g not in [0,1]", m,
				       v->size, v->accuracy);
		if (!finite_pos(v->frame_bytes))
			return ctl_err_set(err, errlen, -EINVAL, "variant %d (size %d): frame bytes %g",
				       m, v->size, v->frame_bytes);
		for (int b = 0; b < p->max_batch; b++) {
			if (!finite_pos(v->lat_ms[b]))
				return ctl_err_set(err, errlen, -EINVAL,
					       "variant %d (size %d): latency at batch %d is %g", m,
					       v->size, b + 1, v->lat_ms[b]);
			if (b > 0 && v->lat_ms[b] < v->lat_ms[b - 1])
				return ctl_err_set(err, errlen, -EINVAL,
					       "profile not monotone: variant size %d latency at "
					       "batch %d (%g ms) below batch %d (%g ms)",
					       v->size, b + 1, v->lat_ms[b], b, v->lat_ms[b - 1]);
		}
		if (m == 0)
			continue;
		const struct ctl_variant *u = &p->v[m - 1];
		if (v->size <= u->size)
			return ctl_err_set(err, errlen, -EINVAL,
				       "variants not sorted by size: %d after %d", v->size, u->size);
		if (v->accuracy < u->accuracy)
			return ctl_err_set(err, errlen, -EINVAL,
				       "profile not monotone: accuracy of size %d (%g) below "
				       "size %d (%g)",
				       v->size, v->accuracy, u->size, u->accuracy);
		if (v->frame_bytes < u->frame_bytes)
			return ctl_err_set(err, errlen, -EINVAL,
				       "profile not monotone: frame bytes of size %d below size %d",
				       v->size, u->size);
		for (int b = 0; b < p->max_batch; b++)
			if (v->lat_ms[b] < u->lat_ms[b])
				return ctl_err_set(err, errlen, -EINVAL,
					       "profile not monotone: latency of size %d at batch "
					       "%d (%g ms) below size %d (%g ms)",
					       v->size, b + 1, v->lat_ms[b], u->size, u->lat_ms[b]);
	}
	return 0;
}

static int raise_to(double *x, double floor_v)
{
	if (*x < floor_v) {
		*x = floor_v;
		return 1;
	}
	return 0;
}

int ctl_profile_make_monotone(struct ctl_profile *p)
{
	int changed = 0;
	if (!p)
		return 0;
	for (int m = 0; m < p->n_variants; m++) {
		struct ctl_variant *v = &p->v[m];
		for (int b = 1; b < p->max_batch; b++)
			changed += raise_to(&v->lat_ms[b], v->lat_ms[b - 1]);
		if (m == 0)
			continue;
		const struct ctl_variant *u = &p->v[m - 1];
		changed += raise_to(&v->accuracy, u->accuracy);
		changed += raise_to(&v->frame_bytes, u->frame_bytes);
		for (int b = 0; b < p->max_batch; b++)
			changed += raise_to(&v->lat_ms[b], u->lat_ms[b]);
	}
	return changed;
}

/* "yolov5n_320" -> 320; "320" -> 320; 0 when no trailing number. */
static int variant_size(const char *name)
{
	size_t n = strlen(name);
	while (n > 0 && isspace((unsigned char)name[n - 1]))
		n--;
	size_t e = n;
	while (n > 0 && isdigit((unsigned char)name[n - 1]))
		n--;
	if (n == e || e - n > 6)
		return 0;
	return atoi(name + n);
}

static int find_or_add(struct ctl_profile *p, int size)
{
	for (int m = 0; m < p->n_variants; m++)
		if (p->v[m].size == size)
			return m;
	if (p->n_variants >= CTL_MAX_VARIANTS)
		return -1;
	struct ctl_variant *v = &p->v[p->n_variants];
	memset(v, 0, sizeof(*v));
	v->size = size;
	v->accuracy = NAN;
	v->frame_bytes = standin_bytes(size);
	for (int b = 0; b < CTL_MAX_BATCH; b++)
		v->lat_ms[b] = NAN;
	return p->n_variants++;
}

static int cmp_variant(const void *a, const void *b)
{
	const struct ctl_variant *x = a, *y = b;
	return (x->size > y->size) - (x->size < y->size);
}

static void strip_eol(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

int ctl_profile_load(struct ctl_profile *p, const char *dir, int max_batch, char *err,
		     size_t errlen)
{
	char path[4096], line[512];
	if (!p || !dir || max_batch < 1 || max_batch > CTL_MAX_BATCH)
		return ctl_err_set(err, errlen, -EINVAL, "bad arguments to profile load");
	memset(p, 0, sizeof(*p));
	p->max_batch = max_batch;

	snprintf(path, sizeof(path), "%s/latency.csv", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return ctl_err_set(err, errlen, -errno, "%s: %s", path, strerror(errno));
	int ln = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		strip_eol(line);
		if (ln == 1) {
			if (strncmp(line, "variant,batch,p50_ms,p99_ms", 27) != 0) {
				rc = ctl_err_set(err, errlen, -EINVAL,
					     "%s:1: header must be variant,batch,p50_ms,p99_ms", path);
				break;
			}
			continue;
		}
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char name[128];
		int b;
		double p50, p99;
		if (sscanf(line, "%127[^,],%d,%lf,%lf", name, &b, &p50, &p99) != 4) {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: expected variant,batch,p50,p99",
				     path, ln);
			break;
		}
		int size = variant_size(name);
		if (size <= 0) {
			rc = ctl_err_set(err, errlen, -EINVAL,
				     "%s:%d: variant '%s' does not end in its input size", path, ln,
				     name);
			break;
		}
		if (!finite_pos(p99) || b < 1) {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: bad batch %d or p99 %g", path, ln,
				     b, p99);
			break;
		}
		if (b > max_batch)
			continue;
		int m = find_or_add(p, size);
		if (m < 0) {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: more than %d variants", path, ln,
				     CTL_MAX_VARIANTS);
			break;
		}
		p->v[m].lat_ms[b - 1] = p99;
	}
	fclose(f);
	if (rc)
		return rc;

	snprintf(path, sizeof(path), "%s/accuracy.csv", dir);
	f = fopen(path, "r");
	if (!f)
		return ctl_err_set(err, errlen, -errno, "%s: %s", path, strerror(errno));
	ln = 0;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		strip_eol(line);
		if (ln == 1) {
			if (strncmp(line, "variant,f1", 10) != 0) {
				rc = ctl_err_set(err, errlen, -EINVAL, "%s:1: header must be variant,f1",
					     path);
				break;
			}
			continue;
		}
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char name[128];
		double f1;
		if (sscanf(line, "%127[^,],%lf", name, &f1) != 2) {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: expected variant,f1", path, ln);
			break;
		}
		int size = variant_size(name), m = -1;
		for (int i = 0; i < p->n_variants; i++)
			if (p->v[i].size == size)
				m = i;
		if (m < 0) {
			rc = ctl_err_set(err, errlen, -EINVAL, "%s:%d: variant '%s' has no latency rows",
				     path, ln, name);
			break;
		}
		p->v[m].accuracy = f1;
	}
	fclose(f);
	if (rc)
		return rc;
	if (p->n_variants == 0)
		return ctl_err_set(err, errlen, -EINVAL, "%s: empty profile", dir);
	for (int m = 0; m < p->n_variants; m++) {
		if (!isfinite(p->v[m].accuracy))
			return ctl_err_set(err, errlen, -EINVAL, "%s: variant %d has no accuracy row", dir,
				       p->v[m].size);
		for (int b = 0; b < max_batch; b++)
			if (!isfinite(p->v[m].lat_ms[b]))
				return ctl_err_set(err, errlen, -EINVAL,
					       "%s: variant %d has no latency row for batch %d", dir,
					       p->v[m].size, b + 1);
	}
	qsort(p->v, (size_t)p->n_variants, sizeof(p->v[0]), cmp_variant);
	int fixed = ctl_profile_make_monotone(p);
	rc = ctl_profile_check(p, err, errlen);
	return rc ? rc : fixed;
}
