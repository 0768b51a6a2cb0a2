/* Exact reference: the scheduling problem as a MILP solved by GLPK (ctl.h ctl_milp_solve).
 *
 * Columns: x[s,c,m] (client c served by slot s running variant m; only created when c's budget
 * on m holds 2·lat[m][1]) and z[s,m,b] (slot s runs variant m at batch b). Rows:
 *   sum_{s,m} x[s,c,m] <= 1                        each client at most once
 *   sum_{m,b} z[s,m,b] = 1                          each slot one (variant, batch)
 *   x[s,c,m] - sum_{b: budget_c,m >= 2 lat[m][b]} z[s,m,b] <= 0   (x <= z, budget fits batch)
 *   sum_c fps_c x[s,c,m] - sum_b thr[m][b] z[s,m,b] <= 0           throughput
 *   sum_{m,b} m·z[s,m,b] - sum_{m,b} m·z[s+1,m,b] >= 0             symmetry: slots sorted
 * Objective, lexicographic as the heuristic's: first max sum fps_c·x (served fps), then, with
 * that held (a row served >= the first optimum), max sum accuracy_m·fps_c·x / sum fps (valid
 * clients): two glp_intopt calls sharing the time limit. This is the brief's
 * x[s,c,m,b] model with x summed over b, which is equivalent because the slot's single z picks
 * b and the budget rows admit exactly the clients whose budget holds that b. */
#include "control/ctl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef CTL_HAVE_GLPK
#include <glpk.h>

struct milp_ctx {
	int K, V, B, n;
	int *xcol; /* [K*n*V] column of x or 0 */
	int *zcol; /* [K*V*B] */
	double bound; /* smallest upper bound seen in the search tree */
};

/* Records the best bound of the open nodes (an upper bound on the optimum). */
static void milp_cb(glp_tree *tree, void *info)
{
	struct milp_ctx *mc = info;
	int r = glp_ios_reason(tree);
	if (r != GLP_ISELECT && r != GLP_IBINGO && r != GLP_IPREPRO)
		return;
	int node = glp_ios_best_node(tree);
	if (node) {
		double b = glp_ios_node_bound(tree, node);
		if (b < mc->bound)
			mc->bound = b;
	}
}

static int valid_client(const struct ctl_client *c)
{
	return isfinite(c->slo_ms) && c->slo_ms > 0 && isfinite(c->fps) && c->fps > 0 &&
	       isfinite(c->bw_mbps) && c->bw_mbps > 0 && isfinite(c->wire_ms) && c->wire_ms >= 0;
}

int ctl_milp_available(void)
{
	return 1;
}

/* Adds the row "objective >= floor" over the current objective's columns (ind/val: scratch
 * of ncols + 1 entries). */
static void milp_add_floor(glp_prob *lp, int *ind, double *val, int ncols, double floor)
{
	int k = 0;
	for (int j = 1; j <= ncols; j++) {
		double cf = glp_get_obj_coef(lp, j);
		if (cf != 0) {
			ind[++k] = j;
			val[k] = cf;
		}
	}
	if (!k)
		return;
	int row = glp_add_rows(lp, 1);
	glp_set_row_bnds(lp, row, GLP_LO, floor * (1 - 1e-9) - 1e-12, 0);
	glp_set_mat_row(lp, row, k, ind, val);
}

/* One glp_intopt within limit_s seconds. Returns 0, or -1 on a GLPK failure other than the
 * time limit or the gap; *obj is the best integer objective when *found. */
static int milp_run(glp_prob *lp, struct milp_ctx *mc, double limit_s, int *found, int *proven,
		    double *obj)
{
	glp_iocp parm;
	glp_init_iocp(&parm);
	parm.presolve = GLP_ON;
	parm.msg_lev = GLP_MSG_OFF;
	parm.tm_lim = limit_s < 2e6 ? (int)(limit_s * 1000) : 0x7fffffff;
	parm.gmi_cuts = GLP_ON;
	parm.mir_cuts = GLP_ON;
	parm.cov_cuts = GLP_ON;
	parm.clq_cuts = GLP_ON;
	parm.br_tech = GLP_BR_PCH;
	parm.bt_tech = GLP_BT_BLB;
	parm.cb_func = milp_cb;
	parm.cb_info = mc;
	int rc = glp_intopt(lp, &parm);
	int st = glp_mip_status(lp);
	*found = st == GLP_OPT || st == GLP_FEAS;
	*proven = rc == 0 && st == GLP_OPT;
	*obj = *found ? glp_mip_obj_val(lp) : 0;
	return rc == 0 || rc == GLP_ETMLIM || rc == GLP_EMIPGAP ? 0 : -1;
}

int ctl_milp_solve(const struct ctl_profile *p, const struct ctl_client *c, int n,
		   const struct ctl_params *prm, double time_limit_s,
		   const struct ctl_decision *seed, struct ctl_milp_result *res)
{
	if (!p || !prm || !res || n < 0 || (n > 0 && !c) || prm->n_slots < 0)
		return -EINVAL;
	if (ctl_profile_check(p, NULL, 0))
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct milp_ctx mc = {0};
	mc.bound = 1.0; /* the objective is at most 1 */
	int K = mc.K = prm->n_slots, V = mc.V = p->n_variants;
	int B = mc.B = prm->max_batch < p->max_batch ? prm->max_batch : p->max_batch;
	mc.n = n;
	double total = 0;
	for (int i = 0; i < n; i++)
		if (valid_client(&c[i]))
			total += c[i].fps;
	if (K == 0 || total <= 0) {
		res->found = res->proven = 1;
		res->bound = 0;
		return 0;
	}
	mc.xcol = calloc((size_t)K * n * V + 1, sizeof(int));
	mc.zcol = calloc((size_t)K * V * B + 1, sizeof(int));
	double *bud = calloc((size_t)n * V + 1, sizeof(double));
	if (!mc.xcol || !mc.zcol || !bud) {
		free(mc.xcol);
		free(mc.zcol);
		free(bud);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		for (int m = 0; m < V; m++)
			bud[(size_t)i * V + m] = valid_client(&c[i]) ? ctl_budget_ms(p, &c[i], m, prm)
								      : 0;

	glp_term_out(GLP_OFF);
	glp_prob *lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MAX);
	for (int s = 0; s < K; s++)
		for (int m = 0; m < V; m++)
			for (int b = 1; b <= B; b++) {
				int col = glp_add_cols(lp, 1);
				glp_set_col_kind(lp, col, GLP_BV);
				mc.zcol[((size_t)s * V + m) * B + b - 1] = col;
			}
	for (int s = 0; s < K; s++)
		for (int i = 0; i < n; i++)
			for (int m = 0; m < V; m++) {
				if (!valid_client(&c[i]) ||
				    bud[(size_t)i * V + m] < 2.0 * p->v[m].lat_ms[0])
					continue;
				int col = glp_add_cols(lp, 1);
				glp_set_col_kind(lp, col, GLP_BV);
				glp_set_obj_coef(lp, col, c[i].fps / total);
				mc.xcol[((size_t)s * n + i) * V + m] = col;
			}

	int cap = 4 * (K * V * B + 2) + 8;
	int *ind = malloc(sizeof(int) * ((size_t)cap + (size_t)K * n * V + 1));
	double *val = malloc(sizeof(double) * ((size_t)cap + (size_t)K * n * V + 1));
	if (!ind || !val) {
		free(ind);
		free(val);
		glp_delete_prob(lp);
		free(mc.xcol);
		free(mc.zcol);
		free(bud);
		return -ENOMEM;
	}
	int row, k;
	for (int i = 0; i < n; i++) { /* each client at most once */
		k = 0;
		for (int s = 0; s < K; s++)
			for (int m = 0; m < V; m++) {
				int col = mc.xcol[((size_t)s * n + i) * V + m];
				if (col) {
					ind[++k] = col;
					val[k] = 1;
				}
			}
		if (!k)
			continue;
		row = glp_add_rows(lp, 1);
		glp_set_row_bnds(lp, row, GLP_UP, 0, 1);
		glp_set_mat_row(lp, row, k, ind, val);
	}
	for (int s = 0; s < K; s++) { /* one (variant, batch) per slot */
		k = 0;
		for (int j = 0; j < V * B; j++) {
			ind[++k] = mc.zcol[(size_t)s * V * B + j];
			val[k] = 1;
		}
		row = glp_add_rows(lp, 1);
		glp_set_row_bnds(lp, row, GLP_FX, 1, 1);
		glp_set_mat_row(lp, row, k, ind, val);
	}
	for (int s = 0; s < K; s++)
		for (int i = 0; i < n; i++)
			for (int m = 0; m < V; m++) { /* x <= z at a batch the budget holds */
				int col = mc.xcol[((size_t)s * n + i) * V + m];
				if (!col)
					continue;
				k = 0;
				ind[++k] = col;
				val[k] = 1;
				for (int b = 1; b <= B; b++)
					if (bud[(size_t)i * V + m] >= 2.0 * p->v[m].lat_ms[b - 1]) {
						ind[++k] = mc.zcol[((size_t)s * V + m) * B + b - 1];
						val[k] = -1;
					}
				row = glp_add_rows(lp, 1);
				glp_set_row_bnds(lp, row, GLP_UP, 0, 0);
				glp_set_mat_row(lp, row, k, ind, val);
			}
	for (int s = 0; s < K; s++)
		for (int m = 0; m < V; m++) { /* throughput */
			k = 0;
			for (int i = 0; i < n; i++) {
				int col = mc.xcol[((size_t)s * n + i) * V + m];
				if (col) {
					ind[++k] = col;
					val[k] = c[i].fps;
				}
			}
			if (!k)
				continue;
			for (int b = 1; b <= B; b++) {
				ind[++k] = mc.zcol[((size_t)s * V + m) * B + b - 1];
				val[k] = -(b * 1000.0 / p->v[m].lat_ms[b - 1]);
			}
			row = glp_add_rows(lp, 1);
			glp_set_row_bnds(lp, row, GLP_UP, 0, 0);
			glp_set_mat_row(lp, row, k, ind, val);
		}
	for (int s = 0; s + 1 < K; s++) { /* symmetry: variant index non-increasing */
		k = 0;
		for (int m = 1; m < V; m++)
			for (int b = 1; b <= B; b++) {
				ind[++k] = mc.zcol[((size_t)s * V + m) * B + b - 1];
				val[k] = m;
				ind[++k] = mc.zcol[((size_t)(s + 1) * V + m) * B + b - 1];
				val[k] = -m;
			}
		row = glp_add_rows(lp, 1);
		glp_set_row_bnds(lp, row, GLP_LO, 0, 0);
		glp_set_mat_row(lp, row, k, ind, val);
	}
	res->n_cols = glp_get_num_cols(lp);
	res->n_rows = glp_get_num_rows(lp);

	/* stage 1: served fps; a heuristic seed's served fps bounds it from below (prunes) */
	int ncols = glp_get_num_cols(lp);
	if (seed && seed->n_slots == K && seed->n_clients == n && seed->served_fps > 0)
		milp_add_floor(lp, ind, val, ncols, seed->served_fps / total);
	double limit = time_limit_s > 0 ? time_limit_s : 1e9;
	int proven1 = 0, found1 = 0;
	double served = 0;
	int rc = milp_run(lp, &mc, limit, &found1, &proven1, &served);
	res->proven = proven1;
	res->found = found1;
	if (rc == 0 && found1) {
		/* stage 2: hold the served fps, maximise accuracy */
		res->served = served;
		milp_add_floor(lp, ind, val, ncols, served);
		for (int j = 1; j <= ncols; j++)
			glp_set_obj_coef(lp, j, 0);
		for (int s = 0; s < K; s++)
			for (int i = 0; i < n; i++)
				for (int m = 0; m < V; m++) {
					int col = mc.xcol[((size_t)s * n + i) * V + m];
					if (col)
						glp_set_obj_coef(lp, col,
								 p->v[m].accuracy * c[i].fps / total);
				}
		if (seed && seed->n_slots == K && seed->n_clients == n && seed->objective > 0 &&
		    seed->served_fps / total >= served * (1 - 1e-9))
			milp_add_floor(lp, ind, val, ncols, seed->objective);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double spent = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
		double left = limit - spent > 0.05 ? limit - spent : 0.05;
		mc.bound = 1.0;
		int found2 = 0, proven2 = 0;
		double obj = 0;
		rc = milp_run(lp, &mc, left, &found2, &proven2, &obj);
		res->found = found2;
		res->proven = proven1 && proven2;
		res->objective = found2 ? obj : 0;
		res->bound = res->proven ? res->objective : mc.bound;
		if (res->bound < res->objective)
			res->bound = res->objective;
	} else {
		/* the served optimum is unknown: nothing bounds the accuracy below 1 */
		res->objective = 0;
		res->bound = 1.0;
	}
	free(ind);
	free(val);
	res->n_rows = glp_get_num_rows(lp);
	glp_delete_prob(lp);
	free(mc.xcol);
	free(mc.zcol);
	free(bud);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	return rc == 0 ? 0 : -EIO;
}

#else /* no GLPK */

int ctl_milp_available(void)
{
	return 0;
}

int ctl_milp_solve(const struct ctl_profile *p, const struct ctl_client *c, int n,
		   const struct ctl_params *prm, double time_limit_s,
		   const struct ctl_decision *seed, struct ctl_milp_result *res)
{
	return -ENOTSUP;
}

#endif
