/* profile_check DIR MAX_BATCH N_VARIANTS
 *
 * Checks a shoal-profile result directory the way the scheduler will use it:
 *   - latency.csv and accuracy.csv start with the exact headers ctl_profile_load wants;
 *   - every row parses, variant names end in their size, every batch 1..MAX_BATCH is present
 *     for each of N_VARIANTS variants, p50 <= p99;
 *   - p50 and p99 are non-decreasing in batch for every size and in size for every batch
 *     (shoal-profile promises a monotone table, not one the loader has to repair);
 *   - F1 values lie in 0..1 and the largest variant's is exactly 1;
 *   - ctl_profile_load accepts the directory with nothing to repair in the latency.
 * Prints the first problem found and exits 1; 0 when all hold; 2 on bad arguments. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl.h"

#define MAXV 64
#define MAXB 32

static int size_of(const char *name)
{
	size_t n = strlen(name), e = n;
	while (n > 0 && isdigit((unsigned char)name[n - 1]))
		n--;
	return n == e ? -1 : atoi(name + n);
}

static int bad(const char *what, const char *path, int line)
{
	fprintf(stderr, "profile_check: %s:%d: %s\n", path, line, what);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: profile_check DIR MAX_BATCH N_VARIANTS\n");
		return 2;
	}
	const char *dir = argv[1];
	int maxb = atoi(argv[2]), nv_want = atoi(argv[3]);
	if (maxb < 1 || maxb > MAXB || nv_want < 1 || nv_want > MAXV) {
		fprintf(stderr, "profile_check: bad MAX_BATCH or N_VARIANTS\n");
		return 2;
	}
	static double p50[MAXV][MAXB], p99[MAXV][MAXB], f1[MAXV];
	int sizes[MAXV], nv = 0, nacc = 0;
	char path[4096], line[1024];
	for (int v = 0; v < MAXV; v++) {
		f1[v] = NAN;
		for (int b = 0; b < MAXB; b++)
			p50[v][b] = p99[v][b] = NAN;
	}

	snprintf(path, sizeof path, "%s/latency.csv", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return bad("cannot open", path, 0);
	for (int ln = 1; fgets(line, sizeof line, f); ln++) {
		line[strcspn(line, "\n")] = '\0';
		if (ln == 1) {
			if (strcmp(line, "variant,batch,p50_ms,p99_ms"))
				return bad("header is not variant,batch,p50_ms,p99_ms", path, ln);
			continue;
		}
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char name[128];
		int b;
		double a, c;
		if (sscanf(line, "%127[^,],%d,%lf,%lf", name, &b, &a, &c) != 4 || b < 1 || b > maxb ||
		    !(a > 0) || !(c >= a) || size_of(name) <= 0)
			return bad("not variant-SIZE,batch,p50,p99 with 0 < p50 <= p99", path, ln);
		int v = 0;
		while (v < nv && sizes[v] != size_of(name))
			v++;
		if (v == nv) {
			if (nv == MAXV || (nv && size_of(name) < sizes[nv - 1]))
				return bad("variants not in ascending size order", path, ln);
			sizes[nv++] = size_of(name);
		}
		if (!isnan(p99[v][b - 1]))
			return bad("duplicate row", path, ln);
		p50[v][b - 1] = a;
		p99[v][b - 1] = c;
	}
	fclose(f);
	if (nv != nv_want) {
		fprintf(stderr, "profile_check: %s: %d variants, want %d\n", path, nv, nv_want);
		return 1;
	}
	for (int v = 0; v < nv; v++)
		for (int b = 0; b < maxb; b++) {
			if (isnan(p99[v][b]))
				return bad("a (variant, batch) row is missing", path, 0);
			if (b && (p50[v][b] < p50[v][b - 1] || p99[v][b] < p99[v][b - 1]))
				return bad("latency decreases with batch", path, 0);
			if (v && (p50[v][b] < p50[v - 1][b] || p99[v][b] < p99[v - 1][b]))
				return bad("latency decreases with size", path, 0);
		}

	snprintf(path, sizeof path, "%s/accuracy.csv", dir);
	f = fopen(path, "r");
	if (!f)
		return bad("cannot open", path, 0);
	for (int ln = 1; fgets(line, sizeof line, f); ln++) {
		line[strcspn(line, "\n")] = '\0';
		if (ln == 1) {
			if (strcmp(line, "variant,f1"))
				return bad("header is not variant,f1", path, ln);
			continue;
		}
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char name[128];
		double x;
		if (sscanf(line, "%127[^,],%lf", name, &x) != 2 || !(x >= 0 && x <= 1))
			return bad("not variant-SIZE,f1 with f1 in 0..1", path, ln);
		int v = 0;
		while (v < nv && sizes[v] != size_of(name))
			v++;
		if (v == nv || !isnan(f1[v]))
			return bad("variant unknown to latency.csv or listed twice", path, ln);
		f1[v] = x;
		nacc++;
	}
	fclose(f);
	if (nacc != nv)
		return bad("not every variant has an F1", path, 0);
	if (f1[nv - 1] != 1.0)
		return bad("the largest variant's F1 is not 1", path, 0);

	struct ctl_profile p;
	char err[512];
	int rc = ctl_profile_load(&p, dir, maxb, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "profile_check: ctl_profile_load refused: %s\n", err);
		return 1;
	}
	if (p.n_variants != nv) {
		fprintf(stderr, "profile_check: ctl_profile_load read %d variants, want %d\n",
			p.n_variants, nv);
		return 1;
	}
	for (int v = 0; v < nv; v++)
		for (int b = 0; b < maxb; b++)
			if (p.v[v].lat_ms[b] != p99[v][b]) {
				fprintf(stderr, "profile_check: ctl_profile_load changed the latency of "
					"size %d batch %d (%g -> %g)\n", sizes[v], b + 1, p99[v][b],
					p.v[v].lat_ms[b]);
				return 1;
			}
	printf("%s: %d variants x %d batches, monotone; F1", dir, nv, maxb);
	for (int v = 0; v < nv; v++)
		printf(" %d:%.3f", sizes[v], f1[v]);
	printf("; ctl_profile_load: %d values repaired (accuracy)\n", rc);
	return 0;
}
