/* shoal-gen --mix FILE: client classes from a CSV, one line per class,
 * `fps,slo_ms,width,height[,weight]` ('#' comments, blank lines, an optional header line of
 * those names). Each class goes into position k of the per-client lists (fps, REGISTER SLO,
 * SLO, size), so a client takes all four from one class; clients are dealt to the classes by
 * smooth weighted round-robin: over any sum-of-weights consecutive clients each class gets
 * exactly its weight, interleaved (weights 1: client i has class i mod n). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/perf_gen.h"

static int perf_gen_mix_bad(FILE *f, const char *path, unsigned line, const char *why)
{
	if (line)
		fprintf(stderr, "shoal-gen: --mix %s: line %u: %s\n", path, line, why);
	else
		fprintf(stderr, "shoal-gen: --mix %s: %s\n", path, why);
	if (f)
		fclose(f);
	return -1;
}

/* An integer lo..hi in s (surrounding blanks allowed); 0 or -1. */
static int perf_gen_mix_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || end[strspn(end, " \t")] || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int perf_gen_mix_load(struct perf_gen_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return perf_gen_mix_bad(NULL, path, 0, strerror(errno));
	char buf[256];
	unsigned line = 0, n = 0;
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		size_t len = strlen(buf);
		if (len == sizeof(buf) - 1 && buf[len - 1] != '\n' && !feof(f))
			return perf_gen_mix_bad(f, path, line, "line too long");
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		buf[strcspn(buf, "\r\n")] = '\0';
		char *s = buf + strspn(buf, " \t");
		if (!*s)
			continue;
		size_t e = strlen(s);
		while (e > 0 && (s[e - 1] == ' ' || s[e - 1] == '\t'))
			s[--e] = '\0';
		if (n == 0 && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) {
			if (strcmp(s, "fps,slo_ms,width,height") &&
			    strcmp(s, "fps,slo_ms,width,height,weight"))
				return perf_gen_mix_bad(f, path, line,
							"header is not fps,slo_ms,width,height[,weight]");
			continue;
		}
		char *col[6] = {0};
		unsigned nc = 0;
		for (char *p = s; nc < 6;) {
			col[nc++] = p;
			char *comma = strchr(p, ',');
			if (!comma)
				break;
			*comma = '\0';
			p = comma + 1;
		}
		if (nc < 4 || nc > 5)
			return perf_gen_mix_bad(f, path, line,
						"want fps,slo_ms,width,height[,weight]");
		if (n == GEN_LIST_MAX)
			return perf_gen_mix_bad(f, path, line, "more than 32 classes");
		char *end;
		errno = 0;
		double fps = strtod(col[0], &end);
		if (errno || end == col[0] || end[strspn(end, " \t")] || !(fps > 0 && fps <= 1000))
			return perf_gen_mix_bad(f, path, line, "fps not in (0, 1000]");
		long slo, w, h, weight = 1;
		if (perf_gen_mix_int(col[1], 1, 65535, &slo))
			return perf_gen_mix_bad(f, path, line, "slo_ms not an integer 1..65535");
		if (perf_gen_mix_int(col[2], 16, 2040, &w) || perf_gen_mix_int(col[3], 16, 2040, &h) ||
		    w % 16 || h % 16)
			return perf_gen_mix_bad(f, path, line,
						"width and height not multiples of 16 in 16..2040");
		if (nc == 5 && perf_gen_mix_int(col[4], 1, 65535, &weight))
			return perf_gen_mix_bad(f, path, line, "weight not an integer 1..65535");
		o->fps[n] = fps;
		o->register_slo[n] = (uint16_t)slo;
		o->slo_ms[n] = (double)slo;
		o->width[n] = (uint16_t)w;
		o->height[n] = (uint16_t)h;
		o->mix_weight[n] = (unsigned)weight;
		n++;
	}
	if (ferror(f))
		return perf_gen_mix_bad(f, path, 0, "read error");
	if (n == 0)
		return perf_gen_mix_bad(f, path, 0, "no classes");
	fclose(f);
	o->mix = path;
	o->n_mix = o->n_fps = o->n_register = o->n_slo = o->n_size = n;
	return 0;
}

unsigned perf_gen_mix_next(const struct perf_gen_opts *o, long *cur)
{
	long total = 0;
	unsigned best = 0;
	for (unsigned k = 0; k < o->n_mix; k++) {
		cur[k] += (long)o->mix_weight[k];
		total += (long)o->mix_weight[k];
		if (cur[k] > cur[best])
			best = k;
	}
	cur[best] -= total;
	return best;
}
