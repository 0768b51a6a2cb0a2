/* Scheduler micro-benchmark: one decision for 8 slots x 32 clients (the stand-in profile,
 * random instances like the published evaluation) and the mapping-heavy 16 x 160 case. */
#include "control/ctl.h"
#include "perf/perf_bench.h"

#include <stdlib.h>

struct bench_arg {
	int slots, clients;
};

static void bm_solve(struct perf_state *st, void *arg)
{
	const struct bench_arg *a = arg;
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_client *c = calloc((size_t)a->clients * 64, sizeof(*c));
	struct ctl_sched *s = ctl_sched_create(a->slots, a->clients);
	struct ctl_decision *d = ctl_decision_create(a->slots, a->clients);
	if (!p || !c || !s || !d) {
		perf_state_error(st, "out of memory");
		goto out;
	}
	ctl_profile_standin(p, 8);
	uint64_t rng = 1;
	for (int i = 0; i < 64; i++) /* 64 instances drawn up front, used in turn */
		ctl_instance_random(&rng, c + (size_t)i * a->clients, a->clients);
	struct ctl_params prm;
	ctl_params_default(&prm, a->slots, 8);
	int64_t k = 0;
	while (perf_state_next(st)) {
		if (ctl_sched_solve(s, p, c + (size_t)(k % 64) * a->clients, a->clients, &prm, NULL,
				    d)) {
			perf_state_error(st, ctl_sched_error(s));
			break;
		}
		k++;
	}
	perf_state_set_items(st, perf_state_iterations(st));
out:
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	free(c);
	free(p);
}

int main(int argc, char **argv)
{
	static struct bench_arg a832 = {8, 32}, a4_32 = {4, 32}, a16_160 = {16, 160};
	perf_bench_register("sched_solve/4x32", bm_solve, &a4_32);
	perf_bench_register("sched_solve/8x32", bm_solve, &a832);
	perf_bench_register("sched_solve/16x160", bm_solve, &a16_160);
	return perf_main(argc, argv);
}
