/* Scheduler tests (suite 'sched'): constraints on random instances, annealing monotonicity,
 * determinism, hand-made instances with known optima (also checked with the MILP), bad input,
 * profile and instance file parsing, damping. */
#include "harness.h"

#include "control/ctl.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>

#define MAXS 8
#define MAXC 48

static double rng_unit_test(uint64_t *rng)
{
	return (double)(ctl_rng_next(rng) >> 11) / 9007199254740992.0;
}

/* A random monotone profile with 2..12 variants. */
static void random_profile(uint64_t *rng, struct ctl_profile *p, int max_batch)
{
	memset(p, 0, sizeof(*p));
	p->n_variants = 2 + (int)(ctl_rng_next(rng) % 11);
	p->max_batch = max_batch;
	double acc = 0.2, bytes = 2000, base = 1;
	for (int m = 0; m < p->n_variants; m++) {
		struct ctl_variant *v = &p->v[m];
		v->size = 64 + 32 * m;
		acc += (double)(ctl_rng_next(rng) % 100) / 1000.0;
		v->accuracy = acc > 1 ? 1 : acc;
		bytes += (double)(ctl_rng_next(rng) % 20000);
		v->frame_bytes = bytes;
		base += (double)(ctl_rng_next(rng) % 300) / 100.0;
		double per = 0.5 + (double)(ctl_rng_next(rng) % 100) / 20.0;
		for (int b = 0; b < max_batch; b++)
			v->lat_ms[b] = base + per * (b + 1) + (m > 0 ? p->v[m - 1].lat_ms[b] * 0.1 : 0);
	}
	ctl_profile_make_monotone(p);
}

static void random_clients(uint64_t *rng, struct ctl_client *c, int n, int with_bad)
{
	ctl_instance_random(rng, c, n);
	for (int i = 0; i < n; i++) {
		if (ctl_rng_next(rng) % 3 == 0)
			c[i].fps = 1 + (double)(ctl_rng_next(rng) % 3000) / 100.0; /* fractional fps */
		if (!with_bad || ctl_rng_next(rng) % 20)
			continue;
		switch (ctl_rng_next(rng) % 6) {
		case 0: c[i].fps = NAN; break;
		case 1: c[i].fps = -5; break;
		case 2: c[i].bw_mbps = 0; break;
		case 3: c[i].slo_ms = INFINITY; break;
		case 4: c[i].wire_ms = -1; break;
		default: c[i].bw_mbps = 0.01; break; /* valid but too slow for any frame */
		}
	}
}

static int test_random_decisions_satisfy_constraints(void)
{
	uint64_t rng = 42;
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_client c[MAXC];
	struct ctl_sched *s = ctl_sched_create(MAXS, MAXC);
	struct ctl_decision *d = ctl_decision_create(MAXS, MAXC);
	struct ctl_decision *prev = ctl_decision_create(MAXS, MAXC);
	ST_CHECK(p && s && d && prev);
	char err[256];
	int served_some = 0, unserved_some = 0;
	for (int it = 0; it < 3000; it++) {
		int mb = 1 + (int)(ctl_rng_next(&rng) % 8);
		if (it % 2)
			ctl_profile_standin(p, mb);
		else
			random_profile(&rng, p, mb);
		struct ctl_params prm;
		ctl_params_default(&prm, (int)(ctl_rng_next(&rng) % (MAXS + 1)), mb);
		prm.sa_iters = 60;
		prm.seed = ctl_rng_next(&rng);
		if (it % 3 == 0)
			prm.exact_states = 0; /* force annealing */
		int n = (int)(ctl_rng_next(&rng) % (MAXC + 1));
		random_clients(&rng, c, n, 1);
		int use_prev = it % 4 == 0 && prev->n_slots == prm.n_slots;
		int rc = ctl_sched_solve(s, p, c, n, &prm, use_prev ? prev : NULL, d);
		if (rc) {
			fprintf(stderr, "instance %d: %s\n", it, ctl_sched_error(s));
			ST_CHECK_EQ(rc, 0);
		}
		if (ctl_decision_check(p, c, n, &prm, d, err, sizeof(err))) {
			fprintf(stderr, "instance %d: %s\n", it, err);
			return ST_FAIL;
		}
		ST_CHECK(d->objective >= 0 && d->objective <= 1 + 1e-12);
		for (int i = 0; i < n; i++) {
			served_some |= d->clients[i].slot >= 0;
			unserved_some |= d->clients[i].reason == CTL_REASON_CAPACITY;
		}
		/* keep this decision as the next "previous" one */
		struct ctl_decision *t = prev;
		prev = d;
		d = t;
	}
	ST_CHECK(served_some && unserved_some); /* the draws exercise both */
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	ctl_decision_destroy(prev);
	free(p);
	return ST_PASS;
}

static int test_annealing_never_worse_than_initial_state(void)
{
	uint64_t rng = 7;
	struct ctl_profile p;
	struct ctl_client c[MAXC];
	struct ctl_sched *s = ctl_sched_create(MAXS, MAXC);
	struct ctl_decision *d = ctl_decision_create(MAXS, MAXC);
	struct ctl_decision *prev = ctl_decision_create(MAXS, MAXC);
	ST_CHECK(s && d && prev);
	ctl_profile_standin(&p, 8);
	for (int it = 0; it < 1000; it++) {
		struct ctl_params prm;
		ctl_params_default(&prm, 3 + (int)(ctl_rng_next(&rng) % 6), 8);
		prm.exact_states = 0;
		prm.sa_iters = 50;
		prm.seed = (uint64_t)it;
		prm.damping = 0;
		int n = 4 * prm.n_slots + (int)(ctl_rng_next(&rng) % 8);
		random_clients(&rng, c, n, 0);
		/* cold start: from all slots at the most accurate variant */
		ST_CHECK_EQ(ctl_sched_solve(s, &p, c, n, &prm, NULL, d), 0);
		ST_CHECK(d->value >= d->init_value - 1e-9);
		/* warm start from a random previous assignment */
		prev->n_slots = prm.n_slots;
		for (int k = 0; k < prm.n_slots; k++)
			prev->slots[k].variant = (int)(ctl_rng_next(&rng) % 17);
		ST_CHECK_EQ(ctl_sched_solve(s, &p, c, n, &prm, prev, d), 0);
		ST_CHECK(d->value >= d->init_value - 1e-9);
	}
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	ctl_decision_destroy(prev);
	return ST_PASS;
}

static int test_same_seed_gives_same_decision(void)
{
	uint64_t rng = 99;
	struct ctl_profile p;
	struct ctl_client c[MAXC];
	struct ctl_sched *s1 = ctl_sched_create(MAXS, MAXC), *s2 = ctl_sched_create(MAXS, MAXC);
	struct ctl_decision *a = ctl_decision_create(MAXS, MAXC);
	struct ctl_decision *b = ctl_decision_create(MAXS, MAXC);
	ST_CHECK(s1 && s2 && a && b);
	ctl_profile_standin(&p, 8);
	for (int it = 0; it < 200; it++) {
		struct ctl_params prm;
		ctl_params_default(&prm, 1 + (int)(ctl_rng_next(&rng) % MAXS), 8);
		prm.seed = 1234 + (uint64_t)it;
		prm.exact_states = 0;
		int n = (int)(ctl_rng_next(&rng) % (MAXC + 1));
		random_clients(&rng, c, n, 1);
		ST_CHECK_EQ(ctl_sched_solve(s1, &p, c, n, &prm, NULL, a), 0);
		/* s2 has solved other instances before: no state may leak between solves */
		ST_CHECK_EQ(ctl_sched_solve(s2, &p, c, n, &prm, NULL, b), 0);
		ST_CHECK_EQ(ctl_sched_solve(s2, &p, c, n, &prm, NULL, b), 0);
		ST_CHECK_MEM(a->slots, b->slots, (size_t)prm.n_slots * sizeof(a->slots[0]));
		ST_CHECK_MEM(a->clients, b->clients, (size_t)n * sizeof(a->clients[0]));
		ST_CHECK(a->objective == b->objective);
	}
	ctl_sched_destroy(s1);
	ctl_sched_destroy(s2);
	ctl_decision_destroy(a);
	ctl_decision_destroy(b);
	return ST_PASS;
}

/* Two variants: lo (size 100, accuracy acc_lo, 5 ms) and hi (size 200, accuracy 1, 10 ms),
 * batch 1 only, tiny frames: thr lo = 200 fps, thr hi = 100 fps. */
static void tiny_profile(struct ctl_profile *p, double acc_lo)
{
	memset(p, 0, sizeof(*p));
	p->n_variants = 2;
	p->max_batch = 1;
	p->v[0] = (struct ctl_variant){.size = 100, .accuracy = acc_lo, .frame_bytes = 100};
	p->v[0].lat_ms[0] = 5;
	p->v[1] = (struct ctl_variant){.size = 200, .accuracy = 1.0, .frame_bytes = 100};
	p->v[1].lat_ms[0] = 10;
}

static struct ctl_client mk(uint32_t id, double slo, double fps)
{
	return (struct ctl_client){.id = id, .slo_ms = slo, .fps = fps, .bw_mbps = 1000,
				   .wire_ms = 0};
}

static int solve_known(const struct ctl_profile *p, const struct ctl_client *c, int n, int slots,
		       double expect, struct ctl_decision *d)
{
	struct ctl_params prm;
	ctl_params_default(&prm, slots, p->max_batch);
	prm.response_bytes = 0;
	prm.overhead_ms = 0;
	struct ctl_sched *s = ctl_sched_create(slots, n);
	ST_CHECK(s);
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, n, &prm, NULL, d), 0);
	ctl_sched_destroy(s);
	char err[256];
	if (ctl_decision_check(p, c, n, &prm, d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return ST_FAIL;
	}
	if (fabs(d->objective - expect) > 1e-9) {
		fprintf(stderr, "objective %.9f, expected %.9f\n", d->objective, expect);
		return ST_FAIL;
	}
	if (ctl_milp_available()) {
		struct ctl_milp_result mr;
		ST_CHECK_EQ(ctl_milp_solve(p, c, n, &prm, 30, NULL, &mr), 0);
		ST_CHECK(mr.proven);
		ST_CHECK(fabs(mr.served - (d->total_fps > 0 ? d->served_fps / d->total_fps : 0)) <
			 1e-7);
		if (fabs(mr.objective - expect) > 1e-7) {
			fprintf(stderr, "milp objective %.9f, expected %.9f\n", mr.objective, expect);
			return ST_FAIL;
		}
	}
	return ST_PASS;
}

static int test_known_optima_match_heuristic_and_milp(void)
{
	struct ctl_profile p;
	struct ctl_decision *d = ctl_decision_create(4, 8);
	ST_CHECK(d);
	/* 1 slot, 3 x 50 fps: serving every client comes first (DESIGN.md §7): lo serving all
	 * (0.5 x 150 = 75) beats hi serving two, although that has more accuracy·fps (100) */
	struct ctl_client a[3] = {mk(1, 1000, 50), mk(2, 1000, 50), mk(3, 1000, 50)};
	tiny_profile(&p, 0.5);
	ST_CHECK_EQ(solve_known(&p, a, 3, 1, 75.0 / 150.0, d), ST_PASS);
	ST_CHECK_EQ(d->slots[0].variant, 0);
	ST_CHECK(fabs(d->served_fps - 150) < 1e-9);
	for (int i = 0; i < 3; i++)
		ST_CHECK_EQ(d->clients[i].reason, CTL_REASON_SERVED);
	/* 2 slots, 4 x 50 fps: hi + hi serves all 200 fps at accuracy 1 */
	struct ctl_client a4[4] = {mk(1, 1000, 50), mk(2, 1000, 50), mk(3, 1000, 50),
				   mk(4, 1000, 50)};
	ST_CHECK_EQ(solve_known(&p, a4, 4, 2, 1.0, d), ST_PASS);
	/* 5 x 50 fps on 2 slots: only lo + lo (400 fps) or lo + hi (300) serve all 250 fps;
	 * lo + hi wins on accuracy: hi takes 100 fps, lo 150 → (100 + 75) / 250 */
	struct ctl_client a5[5] = {mk(1, 1000, 50), mk(2, 1000, 50), mk(3, 1000, 50),
				   mk(4, 1000, 50), mk(5, 1000, 50)};
	ST_CHECK_EQ(solve_known(&p, a5, 5, 2, 175.0 / 250.0, d), ST_PASS);
	ST_CHECK(fabs(d->served_fps - 250) < 1e-9);
	/* lo at 0.8 serving all (120) beats hi (100) */
	tiny_profile(&p, 0.8);
	ST_CHECK_EQ(solve_known(&p, a, 3, 1, 0.8, d), ST_PASS);
	ST_CHECK_EQ(d->slots[0].variant, 0);
	/* 2 slots, one client only fits lo (budget 15 ms < 2 x 10): hi + lo = (100 + 25) / 150 */
	tiny_profile(&p, 0.5);
	struct ctl_client b[3] = {mk(1, 15, 50), mk(2, 1000, 50), mk(3, 1000, 50)};
	ST_CHECK_EQ(solve_known(&p, b, 3, 2, 125.0 / 150.0, d), ST_PASS);
	ST_CHECK_EQ(d->clients[0].size, 100);
	ST_CHECK_EQ(d->clients[1].size, 200);
	/* knapsack (hi only): hi holds 100 fps; {60, 30} = 90 is the best subset of
	 * {60, 30, 30, 25} */
	struct ctl_client k[4] = {mk(1, 1000, 60), mk(2, 1000, 30), mk(3, 1000, 30),
				  mk(4, 1000, 25)};
	p.n_variants = 1;
	p.v[0] = p.v[1];
	ST_CHECK_EQ(solve_known(&p, k, 4, 1, 90.0 / 145.0, d), ST_PASS);
	ST_CHECK(fabs(d->slots[0].load_fps - 90) < 1e-9);
	tiny_profile(&p, 0.5);
	/* no slot holds the SLO: every client reports slo */
	struct ctl_client t[2] = {mk(1, 9, 10), mk(2, 9.5, 10)};
	ST_CHECK_EQ(solve_known(&p, t, 2, 2, 0, d), ST_PASS);
	ST_CHECK_EQ(d->clients[0].reason, CTL_REASON_SLO);
	ST_CHECK_EQ(d->clients[1].reason, CTL_REASON_SLO);
	ctl_decision_destroy(d);
	return ST_PASS;
}

static int test_heuristic_within_milp_optimum_on_random_small(void)
{
	ST_SKIP_IF(!ctl_milp_available(), "built without GLPK");
	uint64_t rng = 5;
	struct ctl_profile p;
	struct ctl_client c[16];
	struct ctl_sched *s = ctl_sched_create(3, 16);
	struct ctl_decision *d = ctl_decision_create(3, 16);
	ST_CHECK(s && d);
	ctl_profile_standin(&p, 4);
	for (int it = 0; it < 40; it++) {
		struct ctl_params prm;
		ctl_params_default(&prm, 1 + it % 3, 4);
		int n = 2 + (int)(ctl_rng_next(&rng) % 9);
		random_clients(&rng, c, n, 0);
		ST_CHECK_EQ(ctl_sched_solve(s, &p, c, n, &prm, NULL, d), 0);
		struct ctl_milp_result mr;
		ST_CHECK_EQ(ctl_milp_solve(&p, c, n, &prm, 30, NULL, &mr), 0);
		ST_CHECK(mr.proven);
		/* the heuristic is feasible, so it never serves more than the optimum; it serves as
		 * much, and then its accuracy is close to the optimum's */
		double served = d->total_fps > 0 ? d->served_fps / d->total_fps : 0;
		ST_CHECK(served <= mr.served + 1e-7);
		if (served < mr.served - 1e-7)
			fprintf(stderr, "instance %d: served %.6f, milp %.6f\n", it, served,
				mr.served);
		ST_CHECK(served >= mr.served - 1e-7);
		ST_CHECK(d->objective <= mr.objective + 1e-7);
		ST_CHECK(d->objective >= 0.95 * mr.objective);
	}
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	return ST_PASS;
}

/* A raw (uncompressed) sender's frames are raw_bpp · size² bytes: its link carries smaller
 * resolutions than a JPEG sender's on the same bandwidth, and its target is that size. */
static int test_raw_sender_planned_with_raw_frame_bytes(void)
{
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_sched *s = ctl_sched_create(2, 2);
	struct ctl_decision *d = ctl_decision_create(2, 2);
	ST_CHECK(p && s && d);
	struct ctl_params prm;
	ctl_params_default(&prm, 2, 8);
	ctl_profile_standin(p, 8);
	/* 20 Mbps at 10 fps: 250 kB a frame at most; I420 at 384 is 221 kB, at 416 260 kB */
	struct ctl_client c[2] = {{1, 1000, 10, 20, 1, 0}, {2, 1000, 10, 20, 1, 1.5}};
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 2, &prm, NULL, d), 0);
	ST_CHECK_EQ(d->clients[0].reason, CTL_REASON_SERVED);
	ST_CHECK_EQ(d->clients[1].reason, CTL_REASON_SERVED);
	ST_CHECK_EQ(d->clients[0].size, 640);
	ST_CHECK(d->clients[1].size <= 384);
	double sz = d->clients[1].size;
	ST_CHECK(fabs(d->clients[1].frame_bytes - 1.5 * sz * sz) < 1e-6);
	ST_CHECK(fabs(ctl_frame_bytes(p, &c[1], 0) - 1.5 * 128 * 128) < 1e-6);
	ST_CHECK(fabs(ctl_frame_bytes(p, &c[0], 0) - p->v[0].frame_bytes) < 1e-9);
	char err[256];
	ST_CHECK_EQ(ctl_decision_check(p, c, 2, &prm, d, err, sizeof(err)), 0);
	/* too slow for raw even at 128 (24.6 kB x 10 fps = 1.97 Mbps): bandwidth */
	c[1].bw_mbps = 1.5;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 2, &prm, NULL, d), 0);
	ST_CHECK_EQ(d->clients[1].reason, CTL_REASON_BANDWIDTH);
	free(p);
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	return ST_PASS;
}

static int test_bad_input_gives_errors_or_honest_not_served(void)
{
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_sched *s = ctl_sched_create(4, 8);
	struct ctl_decision *d = ctl_decision_create(4, 8);
	ST_CHECK(p && s && d);
	struct ctl_params prm;
	ctl_params_default(&prm, 2, 8);
	ctl_profile_standin(p, 8);
	struct ctl_client c[8] = {
		{1, 100, NAN, 20, 2, 0}, {2, 100, -10, 20, 2, 0}, {3, 100, 0, 20, 2, 0},
		{4, 100, 10, 0, 2, 0},   {5, 100, 10, -3, 2, 0},  {6, NAN, 10, 20, 2, 0},
		{7, 100, 10, 0.001, 2, 0}, /* valid but far too slow: bandwidth */
		{8, 100, 10, 20, 2, 0},
	};
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), 0);
	for (int i = 0; i < 6; i++)
		ST_CHECK_EQ(d->clients[i].reason, CTL_REASON_INVALID);
	ST_CHECK_EQ(d->clients[6].reason, CTL_REASON_BANDWIDTH);
	ST_CHECK_EQ(d->clients[7].reason, CTL_REASON_SERVED);
	ST_CHECK(fabs(d->total_fps - 20) < 1e-12);
	char err[256];
	ST_CHECK_EQ(ctl_decision_check(p, c, 8, &prm, d, err, sizeof(err)), 0);

	/* zero slots: everybody servable is "capacity" */
	prm.n_slots = 0;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), 0);
	ST_CHECK_EQ(d->clients[7].reason, CTL_REASON_CAPACITY);
	ST_CHECK(d->objective == 0);

	/* more clients than the slots can carry: some are "capacity", all constraints hold */
	prm.n_slots = 1;
	prm.max_batch = 1; /* at most 1000 / 3.24 = 309 fps on one slot, 480 asked */
	struct ctl_client many[8];
	for (int i = 0; i < 8; i++)
		many[i] = (struct ctl_client){(uint32_t)i, 150, 60, 50, 1, 0};
	ST_CHECK_EQ(ctl_sched_solve(s, p, many, 8, &prm, NULL, d), 0);
	ST_CHECK_EQ(ctl_decision_check(p, many, 8, &prm, d, err, sizeof(err)), 0);
	int cap = 0;
	for (int i = 0; i < 8; i++)
		cap += d->clients[i].reason == CTL_REASON_CAPACITY;
	ST_CHECK(cap > 0);
	prm.max_batch = 8;

	/* more clients or slots than the scheduler was sized for: error, not overflow */
	struct ctl_client nine[9] = {0};
	ST_CHECK_EQ(ctl_sched_solve(s, p, nine, 9, &prm, NULL, d), -EINVAL);
	ST_CHECK(strstr(ctl_sched_error(s), "clients") != NULL);
	prm.n_slots = 5;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), -EINVAL);
	prm.n_slots = 1;

	/* empty profile */
	p->n_variants = 0;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), -EINVAL);
	ST_CHECK(strstr(ctl_sched_error(s), "variants") != NULL);
	/* non-monotone: accuracy falls with size; latency falls with batch */
	ctl_profile_standin(p, 8);
	p->v[5].accuracy = 0.1;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), -EINVAL);
	ST_CHECK(strstr(ctl_sched_error(s), "not monotone") != NULL);
	ctl_profile_standin(p, 8);
	p->v[3].lat_ms[4] = 1;
	ST_CHECK_EQ(ctl_profile_check(p, err, sizeof(err)), -EINVAL);
	ST_CHECK(strstr(err, "not monotone") != NULL);
	ST_CHECK(ctl_profile_make_monotone(p) > 0);
	ST_CHECK_EQ(ctl_profile_check(p, err, sizeof(err)), 0);
	p->v[2].lat_ms[0] = NAN;
	ST_CHECK_EQ(ctl_profile_check(p, err, sizeof(err)), -EINVAL);
	ctl_profile_standin(p, 8);
	prm.max_batch = 0;
	ST_CHECK_EQ(ctl_sched_solve(s, p, c, 8, &prm, NULL, d), -EINVAL);
	ST_CHECK_EQ(ctl_sched_solve(s, NULL, c, 8, &prm, NULL, d), -EINVAL);
	ST_CHECK(ctl_sched_create(-1, 4) == NULL);
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	free(p);
	return ST_PASS;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return 0;
}

static int test_profile_csv_load_and_monotone_repair(void)
{
	char dir[] = "/tmp/shoal-ctl-XXXXXX", path[256], err[256];
	ST_CHECK(mkdtemp(dir) != NULL);
	struct ctl_profile *p = malloc(sizeof(*p));
	ST_CHECK(p);
	snprintf(path, sizeof(path), "%s/latency.csv", dir);
	/* size 320's batch 2 is faster than its batch 1 (noise): repaired */
	ST_CHECK_EQ(write_file(path, "variant,batch,p50_ms,p99_ms\n"
				     "det_320,1,4.0,5.0\ndet_320,2,4.5,4.8\n"
				     "det_160,1,2.0,2.5\ndet_160,2,3.0,3.5\n"), 0);
	snprintf(path, sizeof(path), "%s/accuracy.csv", dir);
	ST_CHECK_EQ(write_file(path, "variant,f1\ndet_160,0.6\ndet_320,0.8\n"), 0);
	int r = ctl_profile_load(p, dir, 2, err, sizeof(err));
	ST_CHECK_EQ(r, 1);
	ST_CHECK_EQ(p->n_variants, 2);
	ST_CHECK_EQ(p->v[0].size, 160);
	ST_CHECK(p->v[1].lat_ms[1] == 5.0);
	ST_CHECK(fabs(p->v[1].accuracy - 0.8) < 1e-12);
	/* batch 3 is missing */
	r = ctl_profile_load(p, dir, 3, err, sizeof(err));
	ST_CHECK_EQ(r, -EINVAL);
	ST_CHECK(strstr(err, "batch 3") != NULL);
	/* bad header and missing files */
	ST_CHECK_EQ(write_file(path, "name,acc\n"), 0);
	ST_CHECK(ctl_profile_load(p, dir, 2, err, sizeof(err)) < 0);
	ST_CHECK(strstr(err, "header") != NULL);
	unlink(path);
	ST_CHECK(ctl_profile_load(p, dir, 2, err, sizeof(err)) == -ENOENT);
	snprintf(path, sizeof(path), "%s/latency.csv", dir);
	unlink(path);
	rmdir(dir);
	free(p);
	return ST_PASS;
}

static int test_instance_file_parse_and_errors(void)
{
	char path[] = "/tmp/shoal-ctl-inst-XXXXXX", err[300];
	int fd = mkstemp(path);
	ST_CHECK(fd >= 0);
	close(fd);
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_params prm;
	struct ctl_client *c = NULL;
	int n = 0;
	ST_CHECK(p);
	ST_CHECK_EQ(write_file(path, "# two slots\nslots 2\nmax_batch 4\nseed 9\n"
				     "client 1 100 15 20 2\nclient 2 75 nan 20 2  # bad fps\n"), 0);
	ST_CHECK_EQ(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)), 0);
	ST_CHECK_EQ(n, 2);
	ST_CHECK_EQ(prm.n_slots, 2);
	ST_CHECK_EQ(prm.max_batch, 4);
	ST_CHECK_EQ(p->n_variants, 17);
	ST_CHECK(isnan(c[1].fps));
	free(c);
	c = NULL;
	ST_CHECK_EQ(write_file(path, "slots 2\nclient 1 100 15 20\n"), 0);
	ST_CHECK_EQ(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)), -EINVAL);
	ST_CHECK(strstr(err, ":2:") != NULL);
	ST_CHECK_EQ(write_file(path, "slots two\n"), 0);
	ST_CHECK_EQ(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)), -EINVAL);
	ST_CHECK(strstr(err, ":1:") != NULL);
	ST_CHECK_EQ(write_file(path, "frobnicate 1\n"), 0);
	ST_CHECK_EQ(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)), -EINVAL);
	ST_CHECK(strstr(err, "unknown directive") != NULL);
	/* explicit variants that are not monotone are refused */
	ST_CHECK_EQ(write_file(path, "max_batch 2\nvariant 100 0.9 1000 5 6\n"
				     "variant 200 0.5 2000 7 8\n"), 0);
	ST_CHECK_EQ(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)), -EINVAL);
	ST_CHECK(strstr(err, "not monotone") != NULL);
	unlink(path);
	ST_CHECK(ctl_instance_read(path, p, &prm, &c, &n, err, sizeof(err)) == -ENOENT);
	free(p);
	return ST_PASS;
}

static int test_damping_keeps_previous_variants_on_small_change(void)
{
	uint64_t rng = 3;
	struct ctl_profile p;
	struct ctl_client c[32];
	struct ctl_sched *s = ctl_sched_create(8, 32);
	struct ctl_decision *a = ctl_decision_create(8, 32), *b = ctl_decision_create(8, 32);
	ST_CHECK(s && a && b);
	ctl_profile_standin(&p, 8);
	int kept = 0, rounds = 100;
	for (int it = 0; it < rounds; it++) {
		struct ctl_params prm;
		ctl_params_default(&prm, 4, 8);
		prm.damping = 0.05;
		random_clients(&rng, c, 24, 0);
		ST_CHECK_EQ(ctl_sched_solve(s, &p, c, 24, &prm, NULL, a), 0);
		for (int i = 0; i < 24; i++) /* +-1 % bandwidth noise */
			c[i].bw_mbps *= 1 + 0.02 * (rng_unit_test(&rng) - 0.5);
		prm.seed = 77 + (uint64_t)it; /* a different annealing run */
		ST_CHECK_EQ(ctl_sched_solve(s, &p, c, 24, &prm, a, b), 0);
		char err[256];
		ST_CHECK_EQ(ctl_decision_check(&p, c, 24, &prm, b, err, sizeof(err)), 0);
		int same = 1;
		for (int k = 0; k < 4; k++)
			same &= a->slots[k].variant == b->slots[k].variant;
		kept += same;
	}
	/* the search may still move when it must, but noise alone should rarely move it */
	ST_CHECK(kept >= rounds * 8 / 10);
	ctl_sched_destroy(s);
	ctl_decision_destroy(a);
	ctl_decision_destroy(b);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_random_decisions_satisfy_constraints),
	ST_CASE(test_annealing_never_worse_than_initial_state),
	ST_CASE(test_same_seed_gives_same_decision),
	ST_CASE(test_known_optima_match_heuristic_and_milp),
	ST_CASE(test_heuristic_within_milp_optimum_on_random_small),
	ST_CASE(test_bad_input_gives_errors_or_honest_not_served),
	ST_CASE(test_raw_sender_planned_with_raw_frame_bytes),
	ST_CASE(test_profile_csv_load_and_monotone_repair),
	ST_CASE(test_instance_file_parse_and_errors),
	ST_CASE(test_damping_keeps_previous_variants_on_small_change))
