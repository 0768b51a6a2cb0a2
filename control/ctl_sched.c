/* The scheduler heuristic (DESIGN.md §7, ctl.h part 2).
 *
 * A search state is the multiset of the slots' variants, kept as a byte vector sorted most
 * accurate first (slots are interchangeable, so this is canonical). Its mapping is computed
 * greedily: slot by slot, most accurate first, a 0/1 knapsack (weight = value = fps) over the
 * clients still free, trying every batch b from the largest down: only clients whose budget
 * holds 2·lat[b] take part, the capacity is thr[b]; the best b wins. Mappings are memoised by
 * the state's hash. The state is chosen by exhaustive enumeration when the number of
 * multisets is small, else by two-phase simulated annealing (phase 1 degrades until every
 * servable client is served, phase 2 maximises sum(accuracy·fps)) and a final hill climb.
 * States compare lexicographically: served fps first, then sum(accuracy·fps) (`better`). */
#include "control/ctl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KS_MAX_UNITS 8192   /* knapsack capacity cap (bits); weights are scaled to fit */
#define MEMO_BITS 14        /* 16384 memo entries */
#define FPS_Q 100.0         /* fps quantum: 0.01 fps */

struct memo_ent {
	uint64_t key;
	double value, served;
	int used;
};

struct ctl_sched {
	int max_slots, max_clients;
	char err[256];

	/* per solve */
	const struct ctl_profile *p;
	int n, V, B, K;
	double total_fps, servable_fps;
	double acc[CTL_MAX_VARIANTS];
	uint32_t capu[CTL_MAX_VARIANTS][CTL_MAX_BATCH + 1]; /* capacity in weight units */
	int nv;             /* valid clients */
	int *vidx;          /* [max_clients] indices of valid clients */
	uint32_t *w;        /* [max_clients] weight units, by client index */
	uint8_t *maxb;      /* [max_clients * CTL_MAX_VARIANTS]: largest b with budget >= 2 lat */

	/* mapping scratch */
	uint8_t *taken;     /* [max_clients] */
	int *list, *elig, *set, *bestset;
	int *pos_of;        /* [max_clients] state position of each client or -1 */
	int pos_batch[256], pos_n[256];
	double pos_load[256];
	uint64_t *rows;     /* knapsack bitsets: (max_clients + 1) * words */
	int words;

	struct memo_ent *memo;
	uint8_t *memo_state; /* [memo entries * max_slots] */
	int memo_used;
	int evaluations;

	uint8_t *cur, *cand, *best, *tmp, *prev;
};

static int sched_err(struct ctl_sched *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sched_err(struct ctl_sched *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *ctl_sched_error(const struct ctl_sched *s)
{
	return s ? s->err : "no scheduler";
}

const char *ctl_reason_name(enum ctl_reason r)
{
	switch (r) {
	case CTL_REASON_SERVED: return "served";
	case CTL_REASON_BANDWIDTH: return "bandwidth";
	case CTL_REASON_SLO: return "slo";
	case CTL_REASON_CAPACITY: return "capacity";
	case CTL_REASON_INVALID: return "invalid";
	}
	return "?";
}

void ctl_params_default(struct ctl_params *p, int n_slots, int max_batch)
{
	memset(p, 0, sizeof(*p));
	p->n_slots = n_slots;
	p->max_batch = max_batch;
	p->response_bytes = 200;
	p->overhead_ms = 2;
	p->seed = 1;
	p->sa_iters = 400;
	p->damping = 0.01;
	p->exact_states = 2000;
}

uint64_t ctl_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *st)
{
	return (double)(ctl_rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
}

static int client_valid(const struct ctl_client *c)
{
	return isfinite(c->slo_ms) && c->slo_ms > 0 && isfinite(c->fps) && c->fps > 0 &&
	       isfinite(c->bw_mbps) && c->bw_mbps > 0 && isfinite(c->wire_ms) && c->wire_ms >= 0;
}

double ctl_budget_ms(const struct ctl_profile *p, const struct ctl_client *c, int m,
		     const struct ctl_params *prm)
{
	if (!client_valid(c))
		return 0;
	double bps = c->bw_mbps * 125000.0; /* bytes per second */
	double s = ctl_frame_bytes(p, c, m);
	if (bps / s <= c->fps)
		return 0;
	double b = c->slo_ms - (s + prm->response_bytes) / bps * 1000.0 - 2.0 * c->wire_ms -
		   prm->overhead_ms;
	return b > 0 ? b : 0;
}

double ctl_frame_bytes(const struct ctl_profile *p, const struct ctl_client *c, int m)
{
	if (c->raw_bpp > 0 && isfinite(c->raw_bpp))
		return c->raw_bpp * p->v[m].size * p->v[m].size;
	return p->v[m].frame_bytes;
}

static int bw_feasible(const struct ctl_profile *p, const struct ctl_client *c, int m)
{
	return c->bw_mbps * 125000.0 / ctl_frame_bytes(p, c, m) > c->fps;
}

/* Why client c is not served, given it was not mapped. */
static enum ctl_reason unserved_reason(const struct ctl_profile *p, const struct ctl_client *c,
				       const struct ctl_params *prm)
{
	if (!client_valid(c))
		return CTL_REASON_INVALID;
	int any_bw = 0;
	for (int m = 0; m < p->n_variants; m++) {
		if (!bw_feasible(p, c, m))
			continue;
		any_bw = 1;
		if (ctl_budget_ms(p, c, m, prm) >= 2.0 * p->v[m].lat_ms[0])
			return CTL_REASON_CAPACITY;
	}
	return any_bw ? CTL_REASON_SLO : CTL_REASON_BANDWIDTH;
}

struct ctl_decision *ctl_decision_create(int max_slots, int max_clients)
{
	if (max_slots < 0 || max_clients < 0)
		return NULL;
	struct ctl_decision *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->slots = calloc((size_t)max_slots + 1, sizeof(*d->slots));
	d->clients = calloc((size_t)max_clients + 1, sizeof(*d->clients));
	if (!d->slots || !d->clients) {
		ctl_decision_destroy(d);
		return NULL;
	}
	d->cap_slots = max_slots;
	d->cap_clients = max_clients;
	return d;
}

void ctl_decision_destroy(struct ctl_decision *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d->clients);
	free(d);
}

struct ctl_sched *ctl_sched_create(int max_slots, int max_clients)
{
	if (max_slots < 0 || max_slots > 255 || max_clients < 0 || max_clients > 100000)
		return NULL;
	struct ctl_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	size_t mc = (size_t)max_clients + 1, ms = (size_t)max_slots + 1;
	size_t me = (size_t)1 << MEMO_BITS;
	s->max_slots = max_slots;
	s->max_clients = max_clients;
	/* rounded-up weights may exceed KS_MAX_UNITS by one unit per client */
	s->words = (KS_MAX_UNITS + max_clients) / 64 + 2;
	s->vidx = calloc(mc, sizeof(int));
	s->w = calloc(mc, sizeof(uint32_t));
	s->maxb = calloc(mc * CTL_MAX_VARIANTS, 1);
	s->taken = calloc(mc, 1);
	s->list = calloc(mc, sizeof(int));
	s->elig = calloc(mc, sizeof(int));
	s->set = calloc(mc, sizeof(int));
	s->bestset = calloc(mc, sizeof(int));
	s->pos_of = calloc(mc, sizeof(int));
	s->rows = calloc((mc + 1) * (size_t)s->words, sizeof(uint64_t));
	s->memo = calloc(me, sizeof(*s->memo));
	s->memo_state = calloc(me * ms, 1);
	s->cur = calloc(ms, 1);
	s->cand = calloc(ms, 1);
	s->best = calloc(ms, 1);
	s->tmp = calloc(ms, 1);
	s->prev = calloc(ms, 1);
	if (!s->vidx || !s->w || !s->maxb || !s->taken || !s->list || !s->elig || !s->set ||
	    !s->bestset || !s->pos_of || !s->rows || !s->memo || !s->memo_state || !s->cur ||
	    !s->cand || !s->best || !s->tmp || !s->prev) {
		ctl_sched_destroy(s);
		return NULL;
	}
	return s;
}

void ctl_sched_destroy(struct ctl_sched *s)
{
	if (!s)
		return;
	free(s->vidx);
	free(s->w);
	free(s->maxb);
	free(s->taken);
	free(s->list);
	free(s->elig);
	free(s->set);
	free(s->bestset);
	free(s->pos_of);
	free(s->rows);
	free(s->memo);
	free(s->memo_state);
	free(s->cur);
	free(s->cand);
	free(s->best);
	free(s->tmp);
	free(s->prev);
	free(s);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* ---- knapsack (subset sum with weight = value) -------------------------------------------- */

static void row_shift_or(uint64_t *dst, const uint64_t *src, int words, uint32_t w)
{
	int ws = (int)(w / 64), bs = (int)(w % 64);
	for (int j = 0; j < words; j++) {
		uint64_t v = 0;
		int k = j - ws;
		if (k >= 0) {
			v = src[k] << bs;
			if (bs && k > 0)
				v |= src[k - 1] >> (64 - bs);
		}
		dst[j] = src[j] | v;
	}
}

static int bit_get(const uint64_t *row, uint32_t t)
{
	return (int)((row[t / 64] >> (t % 64)) & 1u);
}

/* Best subset of items e[0..ne) with sum of weights <= cap; writes it to out; returns sum. */
static uint32_t knapsack(struct ctl_sched *s, const int *e, int ne, uint32_t cap, int *out,
			 int *nout)
{
	int words = (int)(cap / 64) + 1;
	uint64_t *rows = s->rows;
	memset(rows, 0, (size_t)words * sizeof(uint64_t));
	rows[0] = 1;
	uint64_t lastmask = (cap % 64 == 63) ? ~0ull : ((1ull << (cap % 64 + 1)) - 1);
	for (int i = 0; i < ne; i++) {
		uint64_t *src = rows + (size_t)i * words, *dst = src + words;
		row_shift_or(dst, src, words, s->w[e[i]]);
		dst[words - 1] &= lastmask;
	}
	const uint64_t *last = rows + (size_t)ne * words;
	uint32_t t = cap;
	while (t > 0 && !bit_get(last, t))
		t--;
	uint32_t sum = t;
	*nout = 0;
	for (int i = ne - 1; i >= 0 && t > 0; i--) {
		const uint64_t *before = rows + (size_t)i * words;
		if (!bit_get(before, t)) {
			out[(*nout)++] = e[i];
			t -= s->w[e[i]];
		}
	}
	return sum;
}

/* ---- mapping ------------------------------------------------------------------------------ */

/* Maps the state st (sorted most accurate first). With record, fills pos_of/pos_batch/...*/
static void map_state(struct ctl_sched *s, const uint8_t *st, double *value, double *served,
		      int record, const struct ctl_client *c)
{
	double val = 0, srv = 0;
	memset(s->taken, 0, (size_t)s->n);
	if (record)
		for (int i = 0; i < s->n; i++)
			s->pos_of[i] = -1;
	for (int i = 0; i < s->K; i++) {
		int m = st[i];
		int nl = 0;
		uint64_t sum_all = 0;
		for (int k = 0; k < s->nv; k++) {
			int ci = s->vidx[k];
			if (!s->taken[ci] && s->maxb[(size_t)ci * CTL_MAX_VARIANTS + m] >= 1) {
				s->list[nl++] = ci;
				sum_all += s->w[ci];
			}
		}
		int nbest = 0;
		int64_t best_val = -1;
		uint64_t prev_sum = UINT64_MAX;
		uint32_t prev_cap = 0;
		for (int b = s->B; b >= 1 && nl > 0; b--) {
			int ne = 0;
			uint64_t sum_e = 0;
			for (int k = 0; k < nl; k++) {
				int ci = s->list[k];
				if (s->maxb[(size_t)ci * CTL_MAX_VARIANTS + m] >= b) {
					s->elig[ne++] = ci;
					sum_e += s->w[ci];
				}
			}
			uint32_t cap = s->capu[m][b];
			/* same set as at b+1 with no more capacity cannot do better */
			if (sum_e == prev_sum && cap <= prev_cap)
				continue;
			prev_sum = sum_e;
			prev_cap = cap;
			if (ne == 0)
				continue;
			int64_t v;
			if (sum_e <= cap) {
				v = (int64_t)sum_e;
				if (v > best_val) {
					memcpy(s->bestset, s->elig, (size_t)ne * sizeof(int));
					nbest = ne;
				}
			} else {
				int nset = 0;
				v = knapsack(s, s->elig, ne, cap, s->set, &nset);
				if (v > best_val) {
					memcpy(s->bestset, s->set, (size_t)nset * sizeof(int));
					nbest = nset;
				}
			}
			if (v > best_val)
				best_val = v;
			if ((uint64_t)best_val == sum_all)
				break;
		}
		double load = 0;
		for (int k = 0; k < nbest; k++) {
			int ci = s->bestset[k];
			s->taken[ci] = 1;
			load += c[ci].fps;
			if (record)
				s->pos_of[ci] = i;
		}
		val += s->acc[m] * load;
		srv += load;
		if (record) {
			s->pos_load[i] = load;
			s->pos_n[i] = nbest;
			int bb = 1;
			const double *lat = s->p->v[m].lat_ms;
			while (bb < s->B && bb * 1000.0 / lat[bb - 1] < load * (1 - 1e-12))
				bb++;
			s->pos_batch[i] = bb;
		}
	}
	*value = val;
	*served = srv;
}

static uint64_t state_hash(const uint8_t *st, int K)
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < K; i++) {
		h ^= st[i];
		h *= 1099511628211ull;
	}
	return h | 1; /* never 0 */
}

static void memo_clear(struct ctl_sched *s)
{
	memset(s->memo, 0, sizeof(*s->memo) << MEMO_BITS);
	s->memo_used = 0;
}

static void eval_state(struct ctl_sched *s, const uint8_t *st, const struct ctl_client *c,
		       double *value, double *served)
{
	uint64_t h = state_hash(st, s->K);
	size_t mask = ((size_t)1 << MEMO_BITS) - 1, ms = (size_t)s->max_slots + 1;
	size_t i = (size_t)h & mask;
	while (s->memo[i].used) {
		if (s->memo[i].key == h && memcmp(s->memo_state + i * ms, st, (size_t)s->K) == 0) {
			*value = s->memo[i].value;
			*served = s->memo[i].served;
			return;
		}
		i = (i + 1) & mask;
	}
	map_state(s, st, value, served, 0, c);
	s->evaluations++;
	if (s->memo_used >= (int)(mask * 7 / 10)) {
		memo_clear(s);
		i = (size_t)h & mask;
	}
	s->memo[i].used = 1;
	s->memo[i].key = h;
	s->memo[i].value = *value;
	s->memo[i].served = *served;
	memcpy(s->memo_state + i * ms, st, (size_t)s->K);
	s->memo_used++;
}

/* Sorts descending (insertion sort: K is small). */
static void state_sort(uint8_t *st, int K)
{
	for (int i = 1; i < K; i++) {
		uint8_t x = st[i];
		int j = i - 1;
		while (j >= 0 && st[j] < x) {
			st[j + 1] = st[j];
			j--;
		}
		st[j + 1] = x;
	}
}

/* ---- search ----------------------------------------------------------------------------- */

struct cand_val {
	double value, served;
};

/* Lexicographic (DESIGN.md §7): more fps served first, then more sum(accuracy·fps). A plan that
 * refuses a client it could have served to raise the others' accuracy is never preferred. */
static int better(struct cand_val a, struct cand_val b)
{
	const double eps = 1e-9;
	if (a.served > b.served + eps)
		return 1;
	if (a.served < b.served - eps)
		return 0;
	return a.value > b.value + eps;
}

/* Number of multisets of size K from V, saturated at limit+1. */
static double multisets(int V, int K)
{
	double r = 1;
	for (int i = 1; i <= K; i++)
		r = r * (V - 1 + i) / i;
	return r;
}

static void search_exhaustive(struct ctl_sched *s, const struct ctl_client *c,
			      struct cand_val *bv)
{
	int K = s->K;
	uint8_t *st = s->tmp;
	for (int i = 0; i < K; i++)
		st[i] = (uint8_t)(s->V - 1);
	for (;;) {
		struct cand_val v;
		eval_state(s, st, c, &v.value, &v.served);
		if (better(v, *bv)) {
			*bv = v;
			memcpy(s->best, st, (size_t)K);
		}
		/* next non-increasing sequence in decreasing lexicographic order */
		int i = K - 1;
		while (i >= 0 && st[i] == 0)
			i--;
		if (i < 0)
			break;
		st[i]--;
		for (int j = i + 1; j < K; j++)
			st[j] = st[i];
	}
}

static void hill_climb(struct ctl_sched *s, const struct ctl_client *c, struct cand_val *bv)
{
	int K = s->K;
	for (int pass = 0; pass < 4 * K + 8; pass++) {
		struct cand_val pass_best = *bv;
		int found = 0;
		memcpy(s->tmp, s->best, (size_t)K);
		for (int i = 0; i < K; i++) {
			if (i > 0 && s->best[i] == s->best[i - 1])
				continue;
			for (int m = 0; m < s->V; m++) {
				if (m == s->best[i])
					continue;
				memcpy(s->cand, s->best, (size_t)K);
				s->cand[i] = (uint8_t)m;
				state_sort(s->cand, K);
				struct cand_val v;
				eval_state(s, s->cand, c, &v.value, &v.served);
				if (better(v, pass_best)) {
					pass_best = v;
					memcpy(s->tmp, s->cand, (size_t)K);
					found = 1;
				}
			}
		}
		if (!found)
			break;
		*bv = pass_best;
		memcpy(s->best, s->tmp, (size_t)K);
	}
}

static void search_anneal(struct ctl_sched *s, const struct ctl_client *c,
			  const struct ctl_params *prm, struct cand_val *bv, uint64_t *rng)
{
	int K = s->K, V = s->V;
	struct cand_val cv;
	memcpy(s->cur, s->best, (size_t)K);
	cv = *bv;
	double scale = s->total_fps > 0 ? s->total_fps : 1;
	int iters = prm->sa_iters > 0 ? prm->sa_iters : 1;

	/* phase 1: degrade until everything servable is served; energy favours served fps */
	struct cand_val p1best = cv;
	double T = 0.05 * scale, alpha = pow(1e-3, 1.0 / iters);
	for (int it = 0; it < iters && p1best.served < s->servable_fps - 1e-9; it++, T *= alpha) {
		int i = (int)(ctl_rng_next(rng) % (uint64_t)K);
		if (s->cur[i] == 0)
			continue;
		int d = 1 + (int)(ctl_rng_next(rng) % 3);
		memcpy(s->cand, s->cur, (size_t)K);
		s->cand[i] = (uint8_t)(s->cand[i] > d ? s->cand[i] - d : 0);
		state_sort(s->cand, K);
		struct cand_val v;
		eval_state(s, s->cand, c, &v.value, &v.served);
		double de = (v.served + 0.5 * v.value) - (cv.served + 0.5 * cv.value);
		if (de >= 0 || rng_unit(rng) < exp(de / T)) {
			memcpy(s->cur, s->cand, (size_t)K);
			cv = v;
		}
		if (v.served > p1best.served + 1e-9 ||
		    (v.served > p1best.served - 1e-9 && v.value > p1best.value + 1e-9)) {
			p1best = v;
			memcpy(s->tmp, s->cand, (size_t)K);
		}
		if (better(v, *bv)) {
			*bv = v;
			memcpy(s->best, s->cand, (size_t)K);
		}
	}
	if (p1best.served > cv.served + 1e-9) {
		memcpy(s->cur, s->tmp, (size_t)K);
		cv = p1best;
	}

	/* phase 2: maximise sum(accuracy·fps); upgrade-biased moves */
	T = 0.02 * scale;
	for (int it = 0; it < iters; it++, T *= alpha) {
		int i = (int)(ctl_rng_next(rng) % (uint64_t)K);
		uint64_t r = ctl_rng_next(rng);
		int m = s->cur[i];
		int kind = (int)(r % 10), d = 1 + (int)((r >> 8) % 2);
		if (kind < 5)
			m = m + d < V ? m + d : V - 1;
		else if (kind < 8)
			m = m >= d ? m - d : 0;
		else
			m = (int)((r >> 16) % (uint64_t)V);
		if (m == s->cur[i])
			continue;
		memcpy(s->cand, s->cur, (size_t)K);
		s->cand[i] = (uint8_t)m;
		state_sort(s->cand, K);
		struct cand_val v;
		eval_state(s, s->cand, c, &v.value, &v.served);
		/* losing served fps costs more than any accuracy can win back per fps */
		double de = (v.value - cv.value) + 2.0 * (v.served - cv.served);
		if (de >= 0 || rng_unit(rng) < exp(de / T)) {
			memcpy(s->cur, s->cand, (size_t)K);
			cv = v;
		}
		if (better(v, *bv)) {
			*bv = v;
			memcpy(s->best, s->cand, (size_t)K);
		}
	}
	hill_climb(s, c, bv);
}

/* ---- solve ------------------------------------------------------------------------------ */

static int prepare(struct ctl_sched *s, const struct ctl_profile *p, const struct ctl_client *c,
		   int n, const struct ctl_params *prm)
{
	s->p = p;
	s->n = n;
	s->V = p->n_variants;
	s->B = prm->max_batch < p->max_batch ? prm->max_batch : p->max_batch;
	s->K = prm->n_slots;
	s->nv = 0;
	s->total_fps = 0;
	s->servable_fps = 0;
	s->evaluations = 0;
	uint64_t g = 0, sum_w = 0;
	for (int i = 0; i < n; i++) {
		memset(s->maxb + (size_t)i * CTL_MAX_VARIANTS, 0, CTL_MAX_VARIANTS);
		if (!client_valid(&c[i]))
			continue;
		s->total_fps += c[i].fps;
		double wq = ceil(c[i].fps * FPS_Q - 1e-9);
		if (wq > 1e12)
			return sched_err(s, "client %u: fps %g too large", c[i].id, c[i].fps);
		s->w[i] = 0;
		uint64_t wi = (uint64_t)wq;
		int any = 0;
		for (int m = 0; m < s->V; m++) {
			double bud = ctl_budget_ms(p, &c[i], m, prm);
			int mb = 0;
			while (mb < s->B && bud >= 2.0 * p->v[m].lat_ms[mb])
				mb++;
			s->maxb[(size_t)i * CTL_MAX_VARIANTS + m] = (uint8_t)mb;
			any |= mb > 0;
		}
		if (!any)
			continue;
		s->servable_fps += c[i].fps;
		s->vidx[s->nv++] = i;
		g = gcd64(g, wi);
		sum_w += wi;
		s->w[i] = (uint32_t)(wi > UINT32_MAX ? UINT32_MAX : wi); /* rescaled below */
	}
	/* weights in units: exact (divide by the gcd) when the total fits, else rounded up */
	double unit = 1;
	if (s->nv > 0) {
		uint64_t units = sum_w / g;
		uint64_t div = g;
		if (units > KS_MAX_UNITS)
			div = (sum_w + KS_MAX_UNITS - 1) / KS_MAX_UNITS;
		unit = (double)div;
		for (int k = 0; k < s->nv; k++) {
			int i = s->vidx[k];
			double wq = ceil(c[i].fps * FPS_Q - 1e-9);
			s->w[i] = (uint32_t)(((uint64_t)wq + div - 1) / div);
		}
		sum_w = 0;
		for (int k = 0; k < s->nv; k++)
			sum_w += s->w[s->vidx[k]];
	}
	for (int m = 0; m < s->V; m++) {
		s->acc[m] = p->v[m].accuracy;
		for (int b = 1; b <= s->B; b++) {
			double thr = b * 1000.0 / p->v[m].lat_ms[b - 1];
			double cu = floor(thr * FPS_Q / unit * (1 + 1e-12)); /* exact fits stay */
			s->capu[m][b] = cu >= (double)sum_w ? (uint32_t)sum_w : (uint32_t)cu;
		}
	}
	return 0;
}

/* Physical slot of each state position, keeping slots at their previous variant. */
static void place_slots(const uint8_t *st, int K, const struct ctl_decision *prev, int *phys)
{
	int used[256] = {0};
	for (int i = 0; i < K; i++)
		phys[i] = -1;
	if (prev && prev->n_slots == K) {
		for (int i = 0; i < K; i++)
			for (int j = 0; j < K; j++)
				if (!used[j] && prev->slots[j].variant == st[i]) {
					phys[i] = j;
					used[j] = 1;
					break;
				}
	}
	for (int i = 0, j = 0; i < K; i++) {
		if (phys[i] >= 0)
			continue;
		while (used[j])
			j++;
		phys[i] = j;
		used[j] = 1;
	}
}

int ctl_sched_solve(struct ctl_sched *s, const struct ctl_profile *p, const struct ctl_client *c,
		    int n, const struct ctl_params *prm, const struct ctl_decision *prev,
		    struct ctl_decision *out)
{
	char perr[200];
	if (!s)
		return -EINVAL;
	s->err[0] = '\0';
	if (!p || !prm || !out || (n > 0 && !c) || n < 0)
		return sched_err(s, "missing profile, parameters, clients or output");
	if (ctl_profile_check(p, perr, sizeof(perr)))
		return sched_err(s, "bad profile: %s", perr);
	if (prm->n_slots < 0 || prm->n_slots > s->max_slots || prm->n_slots > out->cap_slots)
		return sched_err(s, "slots %d out of range 0..%d", prm->n_slots,
				 s->max_slots < out->cap_slots ? s->max_slots : out->cap_slots);
	if (prm->max_batch < 1 || prm->max_batch > CTL_MAX_BATCH)
		return sched_err(s, "max batch %d out of range 1..%d", prm->max_batch,
				 CTL_MAX_BATCH);
	if (n > s->max_clients || n > out->cap_clients)
		return sched_err(s, "%d clients, more than the %d this scheduler was sized for", n,
				 s->max_clients < out->cap_clients ? s->max_clients
								   : out->cap_clients);
	if (!isfinite(prm->response_bytes) || prm->response_bytes < 0 ||
	    !isfinite(prm->overhead_ms) || prm->overhead_ms < 0 || !isfinite(prm->damping))
		return sched_err(s, "bad response bytes, overhead or damping");
	int rc = prepare(s, p, c, n, prm);
	if (rc)
		return rc;
	int K = s->K;
	uint64_t rng = prm->seed * 0x2545f4914f6cdd1dull + 0x1234567ull;
	memo_clear(s);

	struct cand_val bv = {-1, -1}, init = {0, 0}, pv = {-1, -1};
	int have_prev = prev && prev->n_slots == K && K > 0;
	if (K > 0) {
		for (int i = 0; i < K; i++) {
			int m = have_prev ? prev->slots[i].variant : s->V - 1;
			if (m < 0 || m >= s->V)
				m = s->V - 1;
			s->best[i] = (uint8_t)m;
		}
		state_sort(s->best, K);
		memcpy(s->prev, s->best, (size_t)K);
		eval_state(s, s->best, c, &init.value, &init.served);
		bv = init;
		pv = init;
	}
	out->exhaustive = 0;
	if (K > 0 && s->nv > 0) {
		if (multisets(s->V, K) <= prm->exact_states) {
			search_exhaustive(s, c, &bv);
			out->exhaustive = 1;
		} else {
			search_anneal(s, c, prm, &bv, &rng);
		}
		/* damping: stay on the previous variants unless the gain is worth a change */
		if (have_prev && pv.served >= bv.served - 1e-9 &&
		    bv.value <= pv.value * (1 + prm->damping) + 1e-12) {
			memcpy(s->best, s->prev, (size_t)K);
			bv = pv;
		}
	}

	int phys[256];
	double value = 0, served = 0;
	if (K > 0)
		map_state(s, s->best, &value, &served, 1, c);
	else
		for (int i = 0; i < n; i++)
			s->pos_of[i] = -1;
	place_slots(s->best, K, have_prev ? prev : NULL, phys);
	out->n_slots = K;
	out->n_clients = n;
	for (int i = 0; i < K; i++) {
		struct ctl_slot_assign *sa = &out->slots[phys[i]];
		int m = s->best[i];
		sa->variant = m;
		sa->batch = s->pos_batch[i];
		sa->n_clients = s->pos_n[i];
		sa->load_fps = s->pos_load[i];
		sa->thr_fps = sa->batch * 1000.0 / p->v[m].lat_ms[sa->batch - 1];
	}
	for (int i = 0; i < n; i++) {
		struct ctl_client_assign *ca = &out->clients[i];
		ca->id = c[i].id;
		int pos = s->pos_of[i];
		if (pos >= 0) {
			int m = s->best[pos];
			ca->reason = CTL_REASON_SERVED;
			ca->slot = phys[pos];
			ca->variant = m;
			ca->size = p->v[m].size;
			ca->frame_bytes = ctl_frame_bytes(p, &c[i], m);
			ca->budget_ms = ctl_budget_ms(p, &c[i], m, prm);
		} else {
			ca->reason = unserved_reason(p, &c[i], prm);
			ca->slot = -1;
			ca->variant = -1;
			ca->size = 0;
			ca->frame_bytes = 0;
			ca->budget_ms = 0;
		}
	}
	out->value = value;
	out->served_fps = served;
	out->total_fps = s->total_fps;
	out->objective = s->total_fps > 0 ? value / s->total_fps : 0;
	out->init_value = init.value;
	out->evaluations = s->evaluations;
	return 0;
}

/* ---- verification ------------------------------------------------------------------------ */

static int chk(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int chk(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int ctl_decision_check(const struct ctl_profile *p, const struct ctl_client *c, int n,
		       const struct ctl_params *prm, const struct ctl_decision *d, char *err,
		       size_t errlen)
{
	if (d->n_clients != n || d->n_slots != prm->n_slots)
		return chk(err, errlen, "decision has %d clients/%d slots, expected %d/%d",
			   d->n_clients, d->n_slots, n, prm->n_slots);
	int B = prm->max_batch < p->max_batch ? prm->max_batch : p->max_batch;
	double value = 0, total = 0;
	for (int k = 0; k < d->n_slots; k++) {
		const struct ctl_slot_assign *sa = &d->slots[k];
		if (sa->variant < 0 || sa->variant >= p->n_variants || sa->batch < 1 ||
		    sa->batch > B)
			return chk(err, errlen, "slot %d: variant %d batch %d out of range", k,
				   sa->variant, sa->batch);
		double thr = sa->batch * 1000.0 / p->v[sa->variant].lat_ms[sa->batch - 1];
		double load = 0;
		int cnt = 0;
		for (int i = 0; i < n; i++)
			if (d->clients[i].slot == k) {
				load += c[i].fps;
				cnt++;
			}
		if (cnt != sa->n_clients || fabs(load - sa->load_fps) > 1e-6 * (1 + load))
			return chk(err, errlen, "slot %d: counts %d clients/%g fps, says %d/%g", k,
				   cnt, load, sa->n_clients, sa->load_fps);
		if (load > thr * (1 + 1e-9) + 1e-9)
			return chk(err, errlen, "slot %d: load %g fps above throughput %g", k, load,
				   thr);
		if (sa->batch > 1) {
			double t1 = (sa->batch - 1) * 1000.0 /
				    p->v[sa->variant].lat_ms[sa->batch - 2];
			if (t1 >= load * (1 + 1e-9) + 1e-9 && cnt > 0)
				return chk(err, errlen, "slot %d: batch %d larger than needed", k,
					   sa->batch);
		}
	}
	for (int i = 0; i < n; i++) {
		const struct ctl_client_assign *ca = &d->clients[i];
		int valid = client_valid(&c[i]);
		if (valid)
			total += c[i].fps;
		if (ca->id != c[i].id)
			return chk(err, errlen, "client %d: id %u, expected %u", i, ca->id, c[i].id);
		if (ca->slot < 0) {
			if (ca->reason == CTL_REASON_SERVED)
				return chk(err, errlen, "client %u: no slot but marked served", c[i].id);
			enum ctl_reason r = unserved_reason(p, &c[i], prm);
			if (r != ca->reason)
				return chk(err, errlen, "client %u: reason %s, expected %s", c[i].id,
					   ctl_reason_name(ca->reason), ctl_reason_name(r));
			continue;
		}
		if (!valid)
			return chk(err, errlen, "client %u: invalid but served", c[i].id);
		if (ca->slot >= d->n_slots || ca->reason != CTL_REASON_SERVED)
			return chk(err, errlen, "client %u: slot %d reason %d", c[i].id, ca->slot,
				   ca->reason);
		const struct ctl_slot_assign *sa = &d->slots[ca->slot];
		if (ca->variant != sa->variant || ca->size != p->v[sa->variant].size)
			return chk(err, errlen, "client %u: variant %d but slot runs %d", c[i].id,
				   ca->variant, sa->variant);
		double bud = ctl_budget_ms(p, &c[i], sa->variant, prm);
		double need = 2.0 * p->v[sa->variant].lat_ms[sa->batch - 1];
		if (bud < need)
			return chk(err, errlen, "client %u: budget %g ms below 2 x latency %g ms",
				   c[i].id, bud, need);
		value += p->v[sa->variant].accuracy * c[i].fps;
	}
	double obj = total > 0 ? value / total : 0;
	if (fabs(obj - d->objective) > 1e-9)
		return chk(err, errlen, "objective %g, recomputed %g", d->objective, obj);
	return 0;
}
