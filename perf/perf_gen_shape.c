/* shoal-gen --trace: each client's uplink is a token bucket filled at the rate of a bandwidth
 * trace (Mbit/s, one value per --trace-step seconds, looped from a per-client offset drawn
 * from --seed), as a tc token-bucket filter shapes a real client's link. The bucket holds
 * 10 ms of the current rate (at least two full packets), so a frame takes about its size
 * over the rate to leave. Bytes on the link: UDP payload + IPv4 and UDP headers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/perf_gen.h"

#define GEN_TRACE_MAX_MBPS 100000.0 /* 100 Gbit/s */
#define GEN_TRACE_MAX_VALUES 10000000u
#define GEN_BUCKET_NS 10000000ull  /* the bucket holds this long of the current rate */

static int perf_gen_trace_bad(FILE *f, double *v, const char *path, const char *why,
			      unsigned line)
{
	if (line)
		fprintf(stderr, "shoal-gen: --trace %s: line %u: %s\n", path, line, why);
	else
		fprintf(stderr, "shoal-gen: --trace %s: %s\n", path, why);
	if (f)
		fclose(f);
	free(v);
	return -1;
}

int perf_gen_trace_load(struct perf_gen_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return perf_gen_trace_bad(NULL, NULL, path, strerror(errno), 0);
	double *v = NULL;
	unsigned n = 0, cap = 0, line = 0;
	int positive = 0;
	char buf[256];
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		size_t len = strlen(buf);
		if (len == sizeof(buf) - 1 && buf[len - 1] != '\n' && !feof(f))
			return perf_gen_trace_bad(f, v, path, "line too long", line);
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *s = buf + strspn(buf, " \t\r\n");
		if (!*s)
			continue;
		char *end;
		errno = 0;
		double x = strtod(s, &end);
		if (end == s || errno || end[strspn(end, " \t\r\n")] || !isfinite(x))
			return perf_gen_trace_bad(f, v, path, "not a bandwidth in Mbit/s", line);
		if (x < 0 || x > GEN_TRACE_MAX_MBPS)
			return perf_gen_trace_bad(f, v, path, "bandwidth out of 0..100000 Mbit/s",
						  line);
		if (n == GEN_TRACE_MAX_VALUES)
			return perf_gen_trace_bad(f, v, path, "too many values", line);
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			double *nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				return perf_gen_trace_bad(f, v, path, "out of memory", line);
			v = nv;
		}
		positive |= x > 0;
		v[n++] = x;
	}
	if (ferror(f))
		return perf_gen_trace_bad(f, v, path, "read error", 0);
	if (n == 0)
		return perf_gen_trace_bad(f, v, path, "no bandwidth values", 0);
	if (!positive)
		return perf_gen_trace_bad(f, v, path, "every value is 0", 0);
	fclose(f);
	o->trace = path;
	o->trace_mbps = v;
	o->trace_n = n;
	return 0;
}

static uint64_t perf_gen_splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t perf_gen_step_ns(const struct perf_gen_opts *o)
{
	uint64_t s = (uint64_t)(o->trace_step * 1e9);
	return s ? s : 1;
}

void perf_gen_shape_start(struct perf_gen_run *r, uint64_t now)
{
	const struct perf_gen_opts *o = r->o;
	r->start_ns = now;
	if (!o->trace_n)
		return;
	uint64_t period = perf_gen_step_ns(o) * o->trace_n;
	for (unsigned i = 0; i < o->clients; i++) {
		struct perf_gen_client *c = &r->cl[i];
		c->trace_off_ns = perf_gen_splitmix(o->seed * 0x100000001b3ull + i) % period;
		c->tb_ns = now;
		c->bits = 0;
		c->tokens = 0;
		c->next_report_ns = now;
	}
	for (unsigned i = 0; i < o->clients; i++) { /* start with a full bucket */
		double rate = perf_gen_shape_rate(r, i, now) * 1e6 / 8;
		double depth = rate * (GEN_BUCKET_NS * 1e-9);
		r->cl[i].tokens = depth > 2.0 * (GEN_PKT_MAX + GEN_WIRE_HDRS)
					  ? depth
					  : 2.0 * (GEN_PKT_MAX + GEN_WIRE_HDRS);
	}
}

/* Position (ns into one loop of the trace) of client c at now. */
static uint64_t perf_gen_trace_pos(const struct perf_gen_run *r, const struct perf_gen_client *c,
				   uint64_t now)
{
	uint64_t period = perf_gen_step_ns(r->o) * r->o->trace_n;
	uint64_t t = now > r->start_ns ? now - r->start_ns : 0;
	return (c->trace_off_ns + t % period) % period;
}

double perf_gen_shape_rate(const struct perf_gen_run *r, unsigned i, uint64_t now)
{
	const struct perf_gen_opts *o = r->o;
	if (!o->trace_n)
		return 0;
	return o->trace_mbps[perf_gen_trace_pos(r, &r->cl[i], now) / perf_gen_step_ns(o)];
}

/* Bits the trace carries over dur ns from position pos (looping). */
static double perf_gen_trace_bits(const struct perf_gen_opts *o, uint64_t pos, uint64_t dur)
{
	uint64_t step = perf_gen_step_ns(o), period = step * o->trace_n;
	double bits = 0;
	while (dur) {
		uint64_t k = pos / step, left = (k + 1) * step - pos, d = left < dur ? left : dur;
		bits += o->trace_mbps[k] * 1e6 * (double)d * 1e-9;
		dur -= d;
		pos += d;
		if (pos >= period)
			pos = 0;
	}
	return bits;
}

int perf_gen_shape_ok(struct perf_gen_run *r, unsigned i, uint64_t now)
{
	const struct perf_gen_opts *o = r->o;
	if (!o->trace_n)
		return 1;
	struct perf_gen_client *c = &r->cl[i];
	if (now > c->tb_ns) {
		double bits = perf_gen_trace_bits(o, perf_gen_trace_pos(r, c, c->tb_ns), now - c->tb_ns);
		c->bits += bits;
		c->tokens += bits / 8;
		c->tb_ns = now;
		double depth = perf_gen_shape_rate(r, i, now) * 1e6 / 8 * (GEN_BUCKET_NS * 1e-9);
		if (depth < 2.0 * (GEN_PKT_MAX + GEN_WIRE_HDRS))
			depth = 2.0 * (GEN_PKT_MAX + GEN_WIRE_HDRS);
		if (c->tokens > depth)
			c->tokens = depth;
	}
	const struct perf_gen_frame *fr = &r->fr[c->fr];
	return c->tokens >= (double)(fr->len[c->next_pkt < fr->n ? c->next_pkt : 0] + GEN_WIRE_HDRS);
}
