/* ctl_srv_plan — shoal-server's control thread (DESIGN.md §1, §7): live client statistics
 * into the scheduler, its decision into the executor (variants prepared before they are
 * needed, then instances switched), the dispatcher (route table) and the clients (ASSIGN). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_srv_serve.h"

static int srv_known_cmp(const void *a, const void *b)
{
	return srv_key_cmp(&((const struct srv_known *)a)->key,
			   &((const struct srv_known *)b)->key);
}

static struct srv_known *srv_known_find(struct srv_known *r, unsigned n,
					const struct dp_client_key *key)
{
	unsigned lo = 0, hi = n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		int c = srv_key_cmp(&r[mid].key, key);
		if (c == 0)
			return &r[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The format a client is assigned (DP_APP_FMT_*: JPEG when it registered JPEG or nothing,
 * else its raw format) and, for raw, the bytes per pixel the scheduler plans its frames with. */
static uint8_t srv_client_format(const struct dp_client_stats *st, double *raw_bpp)
{
	*raw_bpp = 0;
	if (!st->formats || (st->formats & DP_APP_FMT_JPEG))
		return DP_APP_FMT_JPEG;
	if (st->formats & DP_APP_FMT_RAW420) {
		*raw_bpp = 1.5;
		return DP_APP_FMT_RAW420;
	}
	if (st->formats & DP_APP_FMT_RAW422) {
		*raw_bpp = 2;
		return DP_APP_FMT_RAW422;
	}
	*raw_bpp = 3;
	return DP_APP_FMT_RAWRGB;
}

/* A client's uplink for the scheduler: its REPORT (registered clients); a stream that never
 * reports is taken as unconstrained (it sends what it sends). The data plane's own upload
 * measurement (dp_client_stats.upload_kbps) is exported as a metric but not used here: on
 * trace-shaped links it read low and left servable clients unserved. */
static double srv_client_bw_mbps(const struct dp_client_stats *st)
{
	return st->managed && st->bw_kbps ? st->bw_kbps / 1000.0 : 1000.0;
}

/* Every context's snapshot into sv->snap; the registry rebuilt from it (clients gone are
 * forgotten, new ones get an id); sv->cl[] filled for the scheduler in registry order. */
unsigned srv_clients_gather(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	unsigned n = 0;
	for (unsigned q = 0; q < s->nq && n < sv->cap_clients; q++) {
		int got = dp_clients_snapshot(s->q[q].ctx, sv->snap + n, sv->cap_clients - n, NULL);
		if (got < 0)
			continue; /* no consistent copy this time: next tick */
		unsigned k = (unsigned)got < sv->cap_clients - n ? (unsigned)got : sv->cap_clients - n;
		for (unsigned i = 0; i < k; i++)
			sv->snap_q[n + i] = q;
		n += k;
	}
	struct srv_known *old = sv->reg[sv->cur_reg], *nw = sv->reg[1 - sv->cur_reg];
	for (unsigned i = 0; i < n; i++) {
		const struct dp_client_snapshot *c = &sv->snap[i];
		struct srv_known *k = srv_known_find(old, sv->n_reg, &c->key);
		if (k) {
			nw[i] = *k;
		} else {
			memset(&nw[i], 0, sizeof(nw[i]));
			nw[i].key = c->key;
			nw[i].id = ++sv->next_id;
			nw[i].instance = -1;
		}
		nw[i].q = (uint16_t)sv->snap_q[i];
		nw[i].managed = c->st.managed;
		nw[i].snap_idx = i;
		nw[i].st = c->st;
	}
	qsort(nw, n, sizeof(*nw), srv_known_cmp);
	for (unsigned i = 0; i < sv->n_reg; i++) /* clients that left: kept for the report */
		if (!srv_known_find(nw, n, &old[i].key))
			sv->gone[sv->n_gone++ % SRV_GONE_MAX] = old[i];
	sv->cur_reg = 1 - sv->cur_reg;
	sv->n_reg = n;
	for (unsigned i = 0; i < n; i++) {
		const struct dp_client_stats *st = &sv->snap[nw[i].snap_idx].st;
		double fps = st->fps_req_x100 / 100.0, measured = st->fps_x100 / 100.0;
		if (measured > fps)
			fps = measured;
		if (!(fps > 0))
			fps = s->o.fps;
		sv->cl[i] = (struct ctl_client){
			.id = nw[i].id,
			.slo_ms = st->slo_ms ? st->slo_ms : s->o.slo_ms,
			.fps = fps,
			.bw_mbps = srv_client_bw_mbps(st),
			.wire_ms = st->rtt_us ? st->rtt_us / 2000.0 : 1.0,
		};
		srv_client_format(st, &sv->cl[i].raw_bpp);
		sv->keys_now[i] = nw[i].key;
	}
	return n;
}

/* The executor's measured/profiled latency ratio for planning: the largest over its
 * instances that have run at least 8 batches of the mean of their median and 95th-percentile
 * ratios, 1 when none has. A client's budget must hold twice its batch's latency (a batch
 * running when its frame arrives, then its own): planned with this ratio that is a typical
 * batch plus a slow one, which is what the executor's deadline check (95th percentile)
 * asks of a frame. The 95th percentile alone (the budget then holds two slow batches)
 * refused clients the device had time for. */
static double srv_exec_ratio(const struct srv_serve *sv, int n_inst)
{
	double r = 0;
	for (int i = 0; i < n_inst; i++) {
		struct gpu_exec_instance_stats st;
		if (gpu_exec_instance_stats(sv->ex, i, &st) != 0 || st.batches < 8)
			continue;
		double m = 0.5 * (st.ratio_p50 + st.ratio);
		if (m > r)
			r = m;
	}
	return r > 0 ? r : 1.0;
}

/* A static policy (a baseline for experiments): every instance runs one fixed variant
 * (the smallest, the middle or the largest of the profile) and every client is served,
 * spread over the instances; no admission, no resolution choice by the server (ASSIGN names
 * the variant's size; a client may still pick a smaller resolution for its bandwidth). The
 * batch of an instance is the smallest whose profiled throughput covers its clients' fps. */
static int srv_static_plan(struct srv *s, int n, struct ctl_decision *d)
{
	struct srv_serve *sv = s->sv;
	const struct ctl_profile *p = &sv->scaled;
	int m = s->o.policy == SRV_POLICY_STATIC_SMALL ? 0
		: s->o.policy == SRV_POLICY_STATIC_MID ? p->n_variants / 2
						       : p->n_variants - 1;
	int k = sv->prm.n_slots;
	if (k > d->cap_slots || n > d->cap_clients)
		return -EINVAL;
	d->n_slots = k;
	d->n_clients = n;
	for (int j = 0; j < k; j++)
		d->slots[j] = (struct ctl_slot_assign){.variant = m, .batch = 1};
	double value = 0, total = 0;
	for (int i = 0; i < n; i++) {
		int j = i % k;
		d->slots[j].n_clients++;
		d->slots[j].load_fps += sv->cl[i].fps;
		d->clients[i] = (struct ctl_client_assign){
			.id = sv->cl[i].id, .reason = CTL_REASON_SERVED, .slot = j, .variant = m,
			.size = p->v[m].size, .frame_bytes = p->v[m].frame_bytes,
			.budget_ms = sv->cl[i].slo_ms};
		value += p->v[m].accuracy * sv->cl[i].fps;
		total += sv->cl[i].fps;
	}
	for (int j = 0; j < k; j++) {
		struct ctl_slot_assign *sl = &d->slots[j];
		int b = 1;
		while (b < sv->prm.max_batch && b * 1000.0 / p->v[m].lat_ms[b - 1] < sl->load_fps)
			b++;
		sl->batch = b;
		sl->thr_fps = b * 1000.0 / p->v[m].lat_ms[b - 1];
	}
	d->value = d->init_value = value;
	d->served_fps = d->total_fps = total;
	d->objective = total > 0 ? value / total : 0;
	d->evaluations = 0;
	d->exhaustive = 1;
	return 0;
}

/* sv->scaled = the profile with every latency times `scale`. */
static void srv_profile_scale(struct srv_serve *sv, double scale)
{
	sv->scaled = sv->prof;
	for (int m = 0; m < sv->scaled.n_variants; m++)
		for (int b = 0; b < sv->scaled.max_batch; b++)
			sv->scaled.v[m].lat_ms[b] *= scale;
}

/* The plan's margin follows the misses it causes: frames the executor dropped late plus
 * RESULTs the data plane sent after their SLO, counted against the frames finished since the
 * last change. Once 3 were missed and that is more than 1 % of them, the latencies the next
 * plan uses grow by a quarter (up to 4x); once 100 were finished with at most 1 % missed,
 * they shrink by a tenth, down to the floor that --headroom sets (1 / (1 - headroom): the
 * plan keeps that share of the measured capacity free); either way counting starts again.
 * The measured ratio alone misses what its model leaves out on a shared machine (a batch's
 * wait behind others, bursts of contention, a queue that builds at full load): this closes
 * the loop on the outcome itself. */
static void srv_margin_update(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	uint64_t late = 0, total = 0;
	for (unsigned i = 0; i < s->o.instances; i++) {
		struct gpu_exec_instance_stats st;
		if (gpu_exec_instance_stats(sv->ex, (int)i, &st) != 0)
			continue;
		late += st.frames_late;
		total += st.frames_done + st.frames_late;
	}
	for (unsigned q = 0; q < s->nq; q++) {
		uint64_t c[DP_CNT__COUNT];
		dp_counters_get(s->q[q].ctx, c);
		late += c[DP_CNT_RESULTS_LATE];
	}
	uint64_t dl = late - sv->m_late, dt = total - sv->m_total;
	int up = dl >= 3 && dl * 100 > dt, down = dt >= 100 && dl * 100 <= dt;
	if (!up && !down)
		return;
	sv->m_late = late;
	sv->m_total = total;
	/* within [floor, 4], or at the floor when --headroom puts it above 4 */
	double floor = srv_margin_floor(&s->o), m = sv->margin * (up ? 1.25 : 0.9);
	sv->margin = m > 4.0 ? 4.0 : m;
	if (sv->margin < floor)
		sv->margin = floor;
}

/* Lexicographic like the scheduler: more fps served, then more accuracy·fps by more than
 * the damping fraction. */
static int srv_plan_better(const struct ctl_decision *a, const struct ctl_decision *b,
			   double damping)
{
	if (a->served_fps > b->served_fps + 1e-9)
		return 1;
	if (a->served_fps < b->served_fps - 1e-9)
		return 0;
	return a->value > b->value * (1 + damping) + 1e-12;
}

/* Extends a decision over fewer slots to k: the extra instances get no clients and keep slot
 * 0's variant (nothing more to prepare). */
static void srv_decision_pad(struct ctl_decision *d, int k)
{
	for (int j = d->n_slots; j < k; j++)
		d->slots[j] = (struct ctl_slot_assign){
			.variant = d->n_slots > 0 ? d->slots[0].variant : 0, .batch = 1};
	d->n_slots = k;
}

/* The adaptive plan for n clients at a measured/profiled ratio into *out (sv->dec_try is
 * scratch; buffers are swapped, not copied): for K = --instances slots, then every smaller K,
 * the best by served fps then accuracy; *best = its K. */
static int srv_plan_adaptive(struct srv *s, const struct ctl_decision *prev, int n,
			     double ratio, struct ctl_decision **out, int *best)
{
	struct srv_serve *sv = s->sv;
	int share = (int)s->o.instances;
	struct ctl_params prm = sv->prm;
	struct ctl_decision pv;
	srv_profile_scale(sv, ratio * share);
	int rc = ctl_sched_solve(sv->sched, &sv->scaled, sv->cl, n, &prm, prev, *out);
	*best = share;
	for (int k = share - 1; rc == 0 && k >= 1; k--) {
		prm.n_slots = k;
		srv_profile_scale(sv, ratio * k);
		const struct ctl_decision *warm = NULL;
		if (prev && sv->share == k) { /* its first k slots are the planned ones */
			pv = *prev;
			pv.n_slots = k;
			warm = &pv;
		}
		if (ctl_sched_solve(sv->sched, &sv->scaled, sv->cl, n, &prm, warm, sv->dec_try) != 0)
			break;
		/* the share in use is kept unless another plan is better */
		int in_use = sv->share == k;
		if (in_use ? !srv_plan_better(*out, sv->dec_try, sv->prm.damping)
			   : srv_plan_better(sv->dec_try, *out, sv->prm.damping)) {
			srv_decision_pad(sv->dec_try, share);
			struct ctl_decision *t = *out;
			*out = sv->dec_try;
			sv->dec_try = t;
			*best = k;
		}
	}
	return rc;
}

int srv_control_plan(struct srv *s, double now_ms, int first)
{
	struct srv_serve *sv = s->sv;
	(void)now_ms;
	srv_margin_update(s);
	sv->ratio = srv_exec_ratio(sv, (int)s->o.instances) * sv->margin;
	/* The scheduler treats its slots as running side by side; here every instance shares
	 * one device, time-sliced one batch at a time. So each slot is planned with its share
	 * of the device: latencies times the number K of instances in use (a slot's throughput
	 * is then at most 1/K of the device's, and a frame's budget covers the batches of the
	 * other instances that may run before its own), and times the measured/profiled ratio.
	 * K = every instance first, then fewer (fewer variants, each with more of the device:
	 * larger batches fit the budgets); the best plan by served fps, then accuracy, wins. */
	int share = (int)s->o.instances;
	int idx = sv->last < 0 ? 0 : 1 - sv->last;
	const struct ctl_decision *prev = sv->last < 0 ? NULL : sv->dec[sv->last];
	int n = first ? 0 : (int)sv->n_reg;
	uint64_t t0 = dp_now_ns();
	int rc;
	if (s->o.policy != SRV_POLICY_ADAPTIVE) {
		srv_profile_scale(sv, sv->ratio * share);
		rc = srv_static_plan(s, n, sv->dec[idx]);
	} else {
		int best = share;
		double with_margin = sv->ratio;
		rc = srv_plan_adaptive(s, prev, n, with_margin, &sv->dec[idx], &best);
		const struct ctl_decision *d = sv->dec[idx];
		if (rc == 0 && sv->margin > 1.0 && d->served_fps < d->total_fps - 1e-9) {
			/* the margin may lower accuracy but never refuse a client the measured
			 * ratio alone would serve; then the largest margin (steps of 1.25 down)
			 * that serves as much is kept, not the measured ratio's most accurate plan
			 * (that one fills the device: the queue the margin was raised against) */
			int b2 = share;
			double plain = with_margin / sv->margin;
			if (srv_plan_adaptive(s, prev, n, plain, &sv->dec_alt, &b2) == 0 &&
			    sv->dec_alt->served_fps > d->served_fps + 1e-9) {
				double want = sv->dec_alt->served_fps, used = plain;
				struct ctl_decision **pick = &sv->dec_alt;
				for (double m = sv->margin / 1.25; m > 1.0 + 1e-9; m /= 1.25) {
					int b3 = share;
					if (srv_plan_adaptive(s, prev, n, plain * m, &sv->dec_mid, &b3) ==
						    0 &&
					    sv->dec_mid->served_fps >= want - 1e-9) {
						pick = &sv->dec_mid;
						b2 = b3;
						used = plain * m;
						break;
					}
				}
				struct ctl_decision *t = sv->dec[idx];
				sv->dec[idx] = *pick;
				*pick = t;
				best = b2;
				sv->ratio = used;
			}
		}
		sv->share = best;
	}
	double ms = (double)(dp_now_ns() - t0) * 1e-6;
	if (rc != 0) {
		sv->plan_errors++;
		return -1;
	}
	sv->solve_ms_last = ms;
	if (ms > sv->solve_ms_max)
		sv->solve_ms_max = ms;
	if (first && s->o.policy == SRV_POLICY_ADAPTIVE) /* no client yet: start every instance
		    * at the cheapest variant, so the first frames (routed before their client is
		    * planned) are served quickly */
		for (int k = 0; k < sv->dec[idx]->n_slots; k++)
			sv->dec[idx]->slots[k].variant = 0;
	memcpy(sv->plan_keys, sv->keys_now, (size_t)n * sizeof(*sv->plan_keys));
	sv->plans++;
	sv->pending = 1;
	sv->pend_idx = idx;
	sv->pending_since = dp_now_ns();
	const struct ctl_decision *d = sv->dec[idx];
	for (int k = 0; k < d->n_slots; k++)
		gpu_exec_prepare(sv->ex, sv->prof.v[d->slots[k].variant].size);
	return 0;
}

/* Cheapest instance of the applied decision: where clients not yet planned go. */
static int srv_default_instance(const struct srv_serve *sv)
{
	if (sv->last < 0)
		return 0;
	const struct ctl_decision *d = sv->dec[sv->last];
	int best = 0;
	for (int k = 1; k < d->n_slots; k++)
		if (d->slots[k].variant < d->slots[best].variant)
			best = k;
	return best;
}

static void srv_routes_update(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	if (!sv->routes_dirty || !srv_routes_writable(sv->routes))
		return;
	unsigned n = 0;
	const struct srv_known *r = sv->reg[sv->cur_reg];
	for (unsigned i = 0; i < sv->n_reg; i++) {
		if (!r[i].have_assign)
			continue;
		sv->route_tmp[n++] = (struct srv_route_entry){
			.key = r[i].key,
			.instance = r[i].instance,
			.reason = DP_APP_DROP_NOT_SERVED,
		};
	}
	if (srv_routes_publish(sv->routes, sv->route_tmp, n, srv_default_instance(sv)) == 0)
		sv->routes_dirty = 0;
}

void srv_control_apply_when_ready(struct srv *s, uint64_t now)
{
	struct srv_serve *sv = s->sv;
	if (!sv->pending)
		return;
	const struct ctl_decision *d = sv->dec[sv->pend_idx];
	int ready = 1;
	for (int k = 0; k < d->n_slots; k++)
		if (gpu_exec_ready(sv->ex, sv->prof.v[d->slots[k].variant].size) == 0)
			ready = 0; /* -EIO (failed) does not hold the plan back */
	if (!ready && now - sv->pending_since < SRV_PREPARE_WAIT_NS)
		return;
	for (int k = 0; k < d->n_slots; k++) {
		int size = sv->prof.v[d->slots[k].variant].size;
		int batch = d->slots[k].batch > 0 ? d->slots[k].batch : 1;
		if (gpu_exec_instance_set(sv->ex, k, size, batch) == -EAGAIN)
			return; /* command ring full: next tick */
	}
	sv->last = sv->pend_idx;
	sv->pending = 0;
	sv->epoch++;
	sv->plans_applied++;
	struct srv_known *r = sv->reg[sv->cur_reg];
	for (int i = 0; i < d->n_clients; i++) {
		const struct ctl_client_assign *a = &d->clients[i];
		struct srv_known *k = srv_known_find(r, sv->n_reg, &sv->plan_keys[i]);
		if (!k || k->id != a->id)
			continue; /* left meanwhile (or left and came back: planned next time) */
		int inst = a->reason == CTL_REASON_SERVED ? a->slot : -1;
		int size = inst >= 0 ? a->size : 0;
		if (!k->have_assign || k->instance != inst || k->size != size)
			k->assign_dirty = 1;
		k->have_assign = 1;
		k->instance = (int16_t)inst;
		k->size = (uint16_t)size;
		k->reason = (uint8_t)a->reason;
		k->frame_bytes = a->frame_bytes;
	}
	sv->routes_dirty = 1;
	srv_routes_update(s);
}

static void srv_assign_send(struct srv *s, struct srv_known *k, uint64_t now)
{
	struct srv_serve *sv = s->sv;
	const struct dp_client_stats *st = &sv->snap[k->snap_idx].st;
	struct dp_app_assign a;
	memset(&a, 0, sizeof(a));
	a.epoch = sv->epoch;
	snprintf(a.family, sizeof(a.family), "%s", s->o.model);
	int served = k->instance >= 0;
	int size = served ? k->size : sv->prof.v[0].size; /* not served: the smallest */
	a.variant = (uint16_t)size;
	a.width = a.height = (uint16_t)size;
	double raw_bpp;
	a.format = srv_client_format(st, &raw_bpp);
	a.target_bytes = (uint32_t)(served    ? k->frame_bytes
				    : raw_bpp ? raw_bpp * size * size
					      : sv->prof.v[0].frame_bytes);
	a.fps_x100 = st->fps_req_x100;
	a.served = (uint8_t)served;
	a.reason = served ? 0 : DP_APP_DROP_NOT_SERVED;
	if (dp_assign_post(s->q[k->q].ctx, &k->key, &a) != 0) {
		sv->assign_full++;
		return;
	}
	sv->assigns_sent++;
	k->assign_dirty = 0;
	k->last_assign_ns = now;
}

void srv_control_tick(struct srv *s, uint64_t now)
{
	struct srv_serve *sv = s->sv;
	unsigned n = srv_clients_gather(s);
	double now_ms = (double)now * 1e-6;
	if (!sv->pending) {
		int mask = ctl_trigger_check(sv->trig, now_ms, sv->cl, (int)n);
		if (mask > 0)
			srv_control_plan(s, now_ms, 0);
	}
	srv_control_apply_when_ready(s, now);
	srv_routes_update(s);
	struct srv_known *r = sv->reg[sv->cur_reg];
	for (unsigned i = 0; i < sv->n_reg; i++) {
		struct srv_known *k = &r[i];
		/* admission: the data plane answers frames of clients not served at once */
		uint8_t refuse = k->have_assign && k->instance < 0 ? DP_APP_DROP_NOT_SERVED : 0;
		if (refuse != k->refused &&
		    dp_client_refuse_post(s->q[k->q].ctx, &k->key, refuse) == 0)
			k->refused = refuse;
		if (!k->managed || !k->have_assign)
			continue;
		if (k->assign_dirty || now - k->last_assign_ns >= SRV_ASSIGN_REFRESH_NS)
			srv_assign_send(s, k, now);
	}
}
