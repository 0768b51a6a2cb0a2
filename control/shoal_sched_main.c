/* shoal-sched: offline evaluation of the scheduler (solve a file, compare with the MILP,
 * time it). See `shoal-sched --help` and control/README.md. */
#include "control/ctl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
	"usage: shoal-sched COMMAND [options]\n"
	"\n"
	"Offline evaluation of shoal's scheduler (control/README.md).\n"
	"\n"
	"commands:\n"
	"  solve FILE     read an instance (format in control/README.md) and print the decision:\n"
	"                 per slot its variant, batch and load; per client its slot, resolution\n"
	"                 and frame bytes or the reason it is not served\n"
	"  compare        draw random instances (SLO 75/100/150 ms, fps 10/15/25, 7.5-50 Mbps)\n"
	"                 and print the heuristic/MILP (GLPK) approximation ratio per size\n"
	"  time           draw random instances and print the heuristic's runtime p50/p99 per size\n"
	"\n"
	"options:\n"
	"  --slots LIST       slot counts, comma separated (compare: 2,4; time: 2,4,8,16)\n"
	"  --factors LIST     clients per slot, comma separated (compare: 4,6,8; time: 4,6,8,10)\n"
	"  --instances N      instances per size (default 100)\n"
	"  --seed N           seed of the random instances and of the annealing (default 1)\n"
	"  --max-batch B      largest batch (default 8; solve: the file's max_batch)\n"
	"  --time-limit S     GLPK time limit per instance in seconds (default 10)\n"
	"  --sa-iters N       annealing steps per phase (default 400)\n"
	"  --exact-states N   enumerate every variant multiset when there are at most N (2000)\n"
	"  --profile DIR      read DIR/latency.csv and DIR/accuracy.csv instead of the stand-in\n"
	"  --milp             solve: also solve the MILP and print its objective\n"
	"  --quick            compare/time: 20 instances per size, time limit 2 s\n"
	"  --csv FILE         compare/time: also write one line per instance/size to FILE\n"
	"  -h, --help         this text\n"
	"\n"
	"The last line of compare is `compare: mean_ratio=R min_ratio=R proven=P/N ...`, of time\n"
	"`time: ... p99_ms=T` for the largest size. Exit status 0, 1 on bad input.\n";

struct opts {
	const char *cmd, *file, *profile_dir, *csv;
	int slots[16], nslots, factors[16], nfactors;
	int instances, max_batch, sa_iters, exact_states, milp, quick, max_batch_set;
	long seed;
	double time_limit;
};

static int parse_list(const char *s, int *out, int max, int lo, int hi)
{
	int n = 0;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < lo || v > hi || n == max)
			return -1;
		out[n++] = (int)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return n;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of this thread: what one core spends on a decision, not counting preemption by
 * other processes on a shared machine. */
static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *v, int n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	int i = (int)ceil(q * n) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static int load_profile(const struct opts *o, struct ctl_profile *p)
{
	char err[300];
	if (o->profile_dir) {
		int r = ctl_profile_load(p, o->profile_dir, o->max_batch, err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "shoal-sched: %s\n", err);
			return -1;
		}
		if (r > 0)
			fprintf(stderr, "shoal-sched: note: %s: %d profile values raised to make it "
					"monotone\n", o->profile_dir, r);
		return 0;
	}
	ctl_profile_standin(p, o->max_batch);
	return 0;
}

static void print_decision(const struct ctl_profile *p, const struct ctl_client *c, int n,
			   const struct ctl_decision *d)
{
	printf("slot  variant  batch  clients  load_fps  thr_fps\n");
	for (int k = 0; k < d->n_slots; k++) {
		const struct ctl_slot_assign *s = &d->slots[k];
		printf("%4d  %7d  %5d  %7d  %8.1f  %7.1f\n", k, p->v[s->variant].size, s->batch,
		       s->n_clients, s->load_fps, s->thr_fps);
	}
	printf("client  slo_ms  fps  bw_mbps  slot  size  frame_bytes  budget_ms  status\n");
	for (int i = 0; i < n; i++) {
		const struct ctl_client_assign *a = &d->clients[i];
		if (a->slot >= 0)
			printf("%6u  %6g  %3g  %7.2f  %4d  %4d  %11.0f  %9.2f  served\n", a->id,
			       c[i].slo_ms, c[i].fps, c[i].bw_mbps, a->slot, a->size, a->frame_bytes,
			       a->budget_ms);
		else
			printf("%6u  %6g  %3g  %7.2f  %4s  %4s  %11s  %9s  not served (%s)\n", a->id,
			       c[i].slo_ms, c[i].fps, c[i].bw_mbps, "-", "-", "-", "-",
			       ctl_reason_name(a->reason));
	}
	printf("objective %.6f  served %.1f of %.1f fps  evaluations %d%s\n", d->objective,
	       d->served_fps, d->total_fps, d->evaluations, d->exhaustive ? "  (exhaustive)" : "");
}

static void apply_opts(const struct opts *o, struct ctl_params *prm)
{
	if (o->sa_iters > 0)
		prm->sa_iters = o->sa_iters;
	if (o->exact_states >= 0)
		prm->exact_states = o->exact_states;
	prm->seed = (uint64_t)o->seed;
}

static int cmd_solve(const struct opts *o)
{
	struct ctl_profile *p = malloc(sizeof(*p));
	struct ctl_params prm;
	struct ctl_client *c = NULL;
	int n = 0, rc = 1;
	char err[400];
	if (!p)
		return 1;
	if (ctl_instance_read(o->file, p, &prm, &c, &n, err, sizeof(err))) {
		fprintf(stderr, "shoal-sched: %s\n", err);
		free(p);
		return 1;
	}
	if (o->profile_dir) {
		int mb = prm.max_batch;
		struct opts o2 = *o;
		o2.max_batch = mb;
		if (load_profile(&o2, p))
			goto out;
	}
	if (o->max_batch_set)
		prm.max_batch = o->max_batch < p->max_batch ? o->max_batch : p->max_batch;
	apply_opts(o, &prm);
	struct ctl_sched *s = ctl_sched_create(prm.n_slots, n);
	struct ctl_decision *d = ctl_decision_create(prm.n_slots, n);
	if (!s || !d) {
		fprintf(stderr, "shoal-sched: out of memory\n");
	} else if (ctl_sched_solve(s, p, c, n, &prm, NULL, d)) {
		fprintf(stderr, "shoal-sched: %s: %s\n", o->file, ctl_sched_error(s));
	} else {
		print_decision(p, c, n, d);
		rc = 0;
		if (o->milp) {
			struct ctl_milp_result mr;
			int r = ctl_milp_solve(p, c, n, &prm, o->time_limit, NULL, &mr);
			if (r)
				fprintf(stderr, "shoal-sched: milp: %s\n",
					r == -ENOTSUP ? "built without GLPK" : strerror(-r));
			else
				printf("milp served %.6f objective %.6f (%s, %.2f s, %d columns, %d "
				       "rows)  ratio %.4f\n",
				       mr.served, mr.objective,
				       mr.proven ? "proven optimal" : "not proven",
				       mr.seconds, mr.n_cols, mr.n_rows,
				       mr.objective > 0 ? d->objective / mr.objective : 1.0);
		}
	}
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
out:
	free(c);
	free(p);
	return rc;
}

/* Largest slot count and client count over the sizes of a compare/time run. */
static void sizes_max(const struct opts *o, int *maxs, int *maxc)
{
	*maxs = *maxc = 0;
	for (int i = 0; i < o->nslots; i++)
		for (int j = 0; j < o->nfactors; j++) {
			if (o->slots[i] * o->factors[j] > *maxc)
				*maxc = o->slots[i] * o->factors[j];
			if (o->slots[i] > *maxs)
				*maxs = o->slots[i];
		}
}

static int cmd_compare(const struct opts *o)
{
	if (!ctl_milp_available()) {
		fprintf(stderr, "shoal-sched: compare needs GLPK (built without it)\n");
		return 1;
	}
	struct ctl_profile *p = malloc(sizeof(*p));
	if (!p || load_profile(o, p)) {
		free(p);
		return 1;
	}
	FILE *csv = NULL;
	if (o->csv) {
		csv = fopen(o->csv, "w");
		if (!csv) {
			fprintf(stderr, "shoal-sched: %s: %s\n", o->csv, strerror(errno));
			free(p);
			return 1;
		}
		fprintf(csv, "slots,clients,instance,heuristic,milp,proven,ratio,milp_bound,"
			     "ratio_vs_bound,heur_ms,milp_s\n");
	}
	int maxc, maxs;
	sizes_max(o, &maxs, &maxc);
	struct ctl_client *c = calloc((size_t)maxc + 1, sizeof(*c));
	struct ctl_sched *s = ctl_sched_create(maxs, maxc);
	struct ctl_decision *d = ctl_decision_create(maxs, maxc);
	double *hms = calloc((size_t)o->instances + 1, sizeof(double));
	double *mss = calloc((size_t)o->instances + 1, sizeof(double));
	int rc = 1;
	if (!c || !s || !d || !hms || !mss) {
		fprintf(stderr, "shoal-sched: out of memory\n");
		goto out;
	}
	printf("heuristic / MILP optimum (GLPK, time limit %g s per instance); the ratio of a\n"
	       "not-proven instance is against GLPK's best incumbent and is counted apart\n",
	       o->time_limit);
	printf("ratio_vs_bound divides by GLPK's upper bound (its optimum when proven): a lower\n"
	       "bound on the true ratio that holds for every instance\n");
	printf("slots  clients  n    proven  mean_ratio  min_ratio  mean(proven)  min(proven)  "
	       "min_vs_bound  exhaustive  heur_p50_ms  milp_p50_s  milp_max_s\n");
	double all_sum = 0, all_min = 1e9, pr_sum = 0, pr_min = 1e9, lb_min = 1e9, lb_sum = 0;
	int served_short = 0; /* instances where the heuristic served fewer fps than the MILP */
	int all_n = 0, pr_n = 0;
	uint64_t rng = (uint64_t)o->seed * 7919 + 17;
	for (int i = 0; i < o->nslots; i++)
		for (int j = 0; j < o->nfactors; j++) {
			int K = o->slots[i], n = K * o->factors[j];
			struct ctl_params prm;
			ctl_params_default(&prm, K, o->max_batch);
			apply_opts(o, &prm);
			double sum = 0, mn = 1e9, psum = 0, pmn = 1e9, lmn = 1e9;
			int proven = 0, exh = 0;
			for (int t = 0; t < o->instances; t++) {
				ctl_instance_random(&rng, c, n);
				double t0 = now_s();
				if (ctl_sched_solve(s, p, c, n, &prm, NULL, d)) {
					fprintf(stderr, "shoal-sched: %s\n", ctl_sched_error(s));
					goto out;
				}
				hms[t] = (now_s() - t0) * 1e3;
				exh += d->exhaustive;
				struct ctl_milp_result mr;
				int r = ctl_milp_solve(p, c, n, &prm, o->time_limit, d, &mr);
				if (r) {
					fprintf(stderr, "shoal-sched: milp failed: %s\n", strerror(-r));
					goto out;
				}
				mss[t] = mr.seconds;
				if (mr.found && d->total_fps > 0 &&
				    d->served_fps / d->total_fps < mr.served - 1e-9)
					served_short++;
				/* nothing found above the heuristic's value: the heuristic is the best */
				double best = mr.found ? mr.objective : d->objective;
				if (best < d->objective)
					best = d->objective;
				double ratio = best > 0 ? d->objective / best : 1.0;
				sum += ratio;
				if (ratio < mn)
					mn = ratio;
				if (mr.proven) {
					proven++;
					psum += ratio;
					if (ratio < pmn)
						pmn = ratio;
				}
				double bnd = mr.bound > best ? mr.bound : best;
				double lratio = bnd > 0 ? d->objective / bnd : 1.0;
				if (lratio < lmn)
					lmn = lratio;
				lb_sum += lratio;
				if (csv)
					fprintf(csv, "%d,%d,%d,%.6f,%.6f,%d,%.6f,%.6f,%.6f,%.4f,%.3f\n", K,
						n, t, d->objective, best, mr.proven, ratio, bnd, lratio,
						hms[t], mr.seconds);
			}
			double mmax = 0;
			for (int t = 0; t < o->instances; t++)
				if (mss[t] > mmax)
					mmax = mss[t];
			printf("%5d  %7d  %3d  %6d  %10.4f  %9.4f  %12.4f  %11.4f  %12.4f  %10d  %11.3f  "
			       "%10.3f  %10.3f\n",
			       K, n, o->instances, proven, sum / o->instances, mn,
			       proven ? psum / proven : NAN, proven ? pmn : NAN, lmn, exh,
			       pct(hms, o->instances, 0.5), pct(mss, o->instances, 0.5), mmax);
			fflush(stdout);
			all_sum += sum;
			all_n += o->instances;
			if (mn < all_min)
				all_min = mn;
			pr_sum += psum;
			pr_n += proven;
			if (proven && pmn < pr_min)
				pr_min = pmn;
			if (lmn < lb_min)
				lb_min = lmn;
		}
	printf("compare: mean_ratio=%.4f min_ratio=%.4f proven=%d/%d mean_ratio_proven=%.4f "
	       "min_ratio_proven=%.4f mean_ratio_vs_bound=%.4f min_ratio_vs_bound=%.4f "
	       "served_short=%d\n",
	       all_n ? all_sum / all_n : 0, all_n ? all_min : 0, pr_n, all_n,
	       pr_n ? pr_sum / pr_n : 0, pr_n ? pr_min : 0, all_n ? lb_sum / all_n : 0,
	       all_n ? lb_min : 0, served_short);
	rc = 0;
out:
	if (csv)
		fclose(csv);
	free(hms);
	free(mss);
	free(c);
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	free(p);
	return rc;
}

static int cmd_time(const struct opts *o)
{
	struct ctl_profile *p = malloc(sizeof(*p));
	if (!p || load_profile(o, p)) {
		free(p);
		return 1;
	}
	FILE *csv = NULL;
	if (o->csv) {
		csv = fopen(o->csv, "w");
		if (!csv) {
			fprintf(stderr, "shoal-sched: %s: %s\n", o->csv, strerror(errno));
			free(p);
			return 1;
		}
		fprintf(csv, "slots,clients,p50_ms,p99_ms,max_ms,mean_evaluations\n");
	}
	int maxc, maxs;
	sizes_max(o, &maxs, &maxc);
	struct ctl_client *c = calloc((size_t)maxc + 1, sizeof(*c));
	struct ctl_sched *s = ctl_sched_create(maxs, maxc);
	struct ctl_decision *d = ctl_decision_create(maxs, maxc);
	double *ms = calloc((size_t)o->instances + 1, sizeof(double));
	double *wall = calloc((size_t)o->instances + 1, sizeof(double));
	int rc = 1;
	if (!c || !s || !d || !ms || !wall) {
		fprintf(stderr, "shoal-sched: out of memory\n");
		goto out;
	}
	printf("heuristic runtime per decision: thread CPU time (one core), %d instances per size;\n"
	       "wall_p99_ms is wall-clock time and includes preemption on a shared machine\n",
	       o->instances);
	printf("slots  clients  p50_ms  p99_ms  max_ms  wall_p99_ms  mean_evals  exhaustive\n");
	uint64_t rng = (uint64_t)o->seed * 104729 + 3;
	int lastK = 0, lastN = 0, have832 = 0;
	double last99 = 0, last50 = 0;
	for (int i = 0; i < o->nslots; i++)
		for (int j = 0; j < o->nfactors; j++) {
			int K = o->slots[i], n = K * o->factors[j];
			struct ctl_params prm;
			ctl_params_default(&prm, K, o->max_batch);
			apply_opts(o, &prm);
			double evals = 0;
			int exh = 0;
			for (int t = 0; t < o->instances; t++) {
				ctl_instance_random(&rng, c, n);
				double t0 = cpu_s(), w0 = now_s();
				if (ctl_sched_solve(s, p, c, n, &prm, NULL, d)) {
					fprintf(stderr, "shoal-sched: %s\n", ctl_sched_error(s));
					goto out;
				}
				ms[t] = (cpu_s() - t0) * 1e3;
				wall[t] = (now_s() - w0) * 1e3;
				evals += d->evaluations;
				exh += d->exhaustive;
			}
			double mx = pct(ms, o->instances, 1.0);
			double p50 = pct(ms, o->instances, 0.5), p99 = pct(ms, o->instances, 0.99);
			printf("%5d  %7d  %6.3f  %6.3f  %6.3f  %11.3f  %10.0f  %10d\n", K, n, p50, p99, mx,
			       pct(wall, o->instances, 0.99), evals / o->instances, exh);
			if (csv)
				fprintf(csv, "%d,%d,%.4f,%.4f,%.4f,%.1f\n", K, n, p50, p99, mx,
					evals / o->instances);
			fflush(stdout);
			if (!have832 || (K == 8 && n == 32)) {
				lastK = K;
				lastN = n;
				last50 = p50;
				last99 = p99;
				have832 = K == 8 && n == 32;
			}
		}
	printf("time: slots=%d clients=%d p50_ms=%.3f p99_ms=%.3f\n", lastK, lastN, last50, last99);
	rc = 0;
out:
	if (csv)
		fclose(csv);
	free(ms);
	free(wall);
	free(c);
	ctl_sched_destroy(s);
	ctl_decision_destroy(d);
	free(p);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	memset(&o, 0, sizeof(o));
	o.instances = 100;
	o.max_batch = 8;
	o.seed = 1;
	o.time_limit = 10;
	o.exact_states = -1;
	int inst_set = 0, tl_set = 0;
	const char *slots = NULL, *factors = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		long lv;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--milp")) {
			o.milp = 1;
		} else if (!strcmp(a, "--quick")) {
			o.quick = 1;
		} else if (a[0] == '-' && a[1] == '-') {
			if (!v) {
				fprintf(stderr, "shoal-sched: %s needs a value\n", a);
				return 1;
			}
			i++;
			if (!strcmp(a, "--slots")) {
				slots = v;
			} else if (!strcmp(a, "--factors")) {
				factors = v;
			} else if (!strcmp(a, "--instances")) {
				if (parse_long(v, 1, 1000000, &lv))
					goto badval;
				o.instances = (int)lv;
				inst_set = 1;
			} else if (!strcmp(a, "--seed")) {
				if (parse_long(v, 0, 0x7fffffffL, &lv))
					goto badval;
				o.seed = lv;
			} else if (!strcmp(a, "--max-batch")) {
				if (parse_long(v, 1, CTL_MAX_BATCH, &lv))
					goto badval;
				o.max_batch = (int)lv;
				o.max_batch_set = 1;
			} else if (!strcmp(a, "--time-limit")) {
				char *end;
				o.time_limit = strtod(v, &end);
				if (end == v || *end || !(o.time_limit > 0) || o.time_limit > 86400)
					goto badval;
				tl_set = 1;
			} else if (!strcmp(a, "--sa-iters")) {
				if (parse_long(v, 1, 10000000, &lv))
					goto badval;
				o.sa_iters = (int)lv;
			} else if (!strcmp(a, "--exact-states")) {
				if (parse_long(v, 0, 100000000, &lv))
					goto badval;
				o.exact_states = (int)lv;
			} else if (!strcmp(a, "--profile")) {
				o.profile_dir = v;
			} else if (!strcmp(a, "--csv")) {
				o.csv = v;
			} else {
				fprintf(stderr, "shoal-sched: unknown option '%s' (see --help)\n", a);
				return 1;
			}
			continue;
badval:
			fprintf(stderr, "shoal-sched: bad value '%s' for %s\n", v, a);
			return 1;
		} else if (a[0] == '-') {
			fprintf(stderr, "shoal-sched: unknown option '%s' (see --help)\n", a);
			return 1;
		} else if (!o.cmd) {
			o.cmd = a;
		} else if (!o.file) {
			o.file = a;
		} else {
			fprintf(stderr, "shoal-sched: unexpected argument '%s'\n", a);
			return 1;
		}
	}
	if (!o.cmd) {
		fprintf(stderr, "shoal-sched: no command (solve, compare, time; see --help)\n");
		return 1;
	}
	int is_cmp = !strcmp(o.cmd, "compare"), is_time = !strcmp(o.cmd, "time");
	if (o.quick) {
		if (!inst_set)
			o.instances = 20;
		if (!tl_set)
			o.time_limit = 2;
	}
	if (slots) {
		o.nslots = parse_list(slots, o.slots, 16, 1, 255);
		if (o.nslots <= 0) {
			fprintf(stderr, "shoal-sched: bad --slots '%s' (e.g. 2,4)\n", slots);
			return 1;
		}
	} else if (is_time) {
		o.nslots = parse_list("2,4,8,16", o.slots, 16, 1, 255);
	} else {
		o.nslots = parse_list("2,4", o.slots, 16, 1, 255);
	}
	if (factors) {
		o.nfactors = parse_list(factors, o.factors, 16, 1, 1000);
		if (o.nfactors <= 0) {
			fprintf(stderr, "shoal-sched: bad --factors '%s' (e.g. 4,6,8)\n", factors);
			return 1;
		}
	} else if (is_time) {
		o.nfactors = parse_list("4,6,8,10", o.factors, 16, 1, 1000);
	} else {
		o.nfactors = parse_list("4,6,8", o.factors, 16, 1, 1000);
	}
	if (!strcmp(o.cmd, "solve")) {
		if (!o.file) {
			fprintf(stderr, "shoal-sched: solve needs a FILE\n");
			return 1;
		}
		return cmd_solve(&o);
	}
	if (o.file) {
		fprintf(stderr, "shoal-sched: unexpected argument '%s'\n", o.file);
		return 1;
	}
	if (is_cmp)
		return cmd_compare(&o);
	if (is_time)
		return cmd_time(&o);
	fprintf(stderr, "shoal-sched: unknown command '%s' (solve, compare, time)\n", o.cmd);
	return 1;
}
