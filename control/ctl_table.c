/* Control-thread interface (ctl.h part 3): triggers, the published assignment table with
 * epoch-based reclamation, and the control step that ties them to the scheduler. */
#include "control/ctl.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- triggers ---------------------------------------------------------------------------- */

struct idbw {
	uint32_t id;
	double bw;
};

struct ctl_trigger {
	int max_clients;
	double period_ms, bw_rel, last_ms;
	int have, n;
	struct idbw *base, *scratch;
};

struct ctl_trigger *ctl_trigger_create(int max_clients, double period_ms, double bw_rel)
{
	if (max_clients < 0 || !(period_ms > 0) || !(bw_rel >= 0))
		return NULL;
	struct ctl_trigger *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->max_clients = max_clients;
	t->period_ms = period_ms;
	t->bw_rel = bw_rel;
	t->base = calloc((size_t)max_clients + 1, sizeof(struct idbw));
	t->scratch = calloc((size_t)max_clients + 1, sizeof(struct idbw));
	if (!t->base || !t->scratch) {
		ctl_trigger_destroy(t);
		return NULL;
	}
	return t;
}

void ctl_trigger_destroy(struct ctl_trigger *t)
{
	if (!t)
		return;
	free(t->base);
	free(t->scratch);
	free(t);
}

static int cmp_idbw(const void *a, const void *b)
{
	const struct idbw *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

int ctl_trigger_check(struct ctl_trigger *t, double now_ms, const struct ctl_client *c, int n)
{
	if (!t || n < 0 || n > t->max_clients || (n > 0 && !c))
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		t->scratch[i].id = c[i].id;
		t->scratch[i].bw = c[i].bw_mbps;
	}
	qsort(t->scratch, (size_t)n, sizeof(struct idbw), cmp_idbw);
	int mask = 0;
	if (!t->have)
		mask |= CTL_TRIG_FIRST;
	else if (now_ms - t->last_ms >= t->period_ms)
		mask |= CTL_TRIG_PERIOD;
	int i = 0, j = 0;
	while (t->have && (i < t->n || j < n)) {
		if (j >= n || (i < t->n && t->base[i].id < t->scratch[j].id)) {
			mask |= CTL_TRIG_LEAVE;
			i++;
		} else if (i >= t->n || t->scratch[j].id < t->base[i].id) {
			mask |= CTL_TRIG_JOIN;
			j++;
		} else {
			double b0 = t->base[i].bw, b1 = t->scratch[j].bw;
			if (!(fabs(b1 - b0) <= t->bw_rel * fabs(b0)))
				mask |= CTL_TRIG_BANDWIDTH;
			i++;
			j++;
		}
	}
	if (mask) {
		memcpy(t->base, t->scratch, (size_t)n * sizeof(struct idbw));
		t->n = n;
		t->have = 1;
		t->last_ms = now_ms;
	}
	return mask;
}

/* ---- published table --------------------------------------------------------------------- */

enum { TBL_FREE, TBL_CURRENT, TBL_RETIRED };

struct pub_table {
	struct ctl_table t;
	struct ctl_slot_assign *slots;
	struct ctl_client_assign *clients;
	uint64_t retire_epoch;
	int state; /* publisher-private */
};

struct reader_slot {
	_Atomic uint64_t epoch; /* 0: quiescent, else the global epoch seen at acquire */
	char pad[64 - sizeof(uint64_t)];
};

struct ctl_pub {
	int max_readers, max_slots, max_clients, pool;
	_Atomic(struct pub_table *) cur;
	_Atomic uint64_t epoch; /* starts at 1, advanced by every publish */
	_Atomic uint64_t version;
	struct reader_slot *readers;
	struct pub_table *tables;
};

struct ctl_pub *ctl_pub_create(int max_readers, int max_slots, int max_clients, int pool)
{
	if (max_readers < 1 || max_slots < 0 || max_clients < 0 || pool < 0)
		return NULL;
	if (pool == 0)
		pool = 2 * max_readers + 2;
	if (pool < 2)
		pool = 2;
	struct ctl_pub *pb = calloc(1, sizeof(*pb));
	if (!pb)
		return NULL;
	pb->max_readers = max_readers;
	pb->max_slots = max_slots;
	pb->max_clients = max_clients;
	pb->pool = pool;
	atomic_init(&pb->cur, NULL);
	atomic_init(&pb->epoch, 1);
	atomic_init(&pb->version, 0);
	pb->readers = calloc((size_t)max_readers, sizeof(struct reader_slot));
	pb->tables = calloc((size_t)pool, sizeof(struct pub_table));
	if (!pb->readers || !pb->tables) {
		ctl_pub_destroy(pb);
		return NULL;
	}
	for (int r = 0; r < max_readers; r++)
		atomic_init(&pb->readers[r].epoch, 0);
	for (int i = 0; i < pool; i++) {
		pb->tables[i].slots = calloc((size_t)max_slots + 1, sizeof(struct ctl_slot_assign));
		pb->tables[i].clients =
			calloc((size_t)max_clients + 1, sizeof(struct ctl_client_assign));
		if (!pb->tables[i].slots || !pb->tables[i].clients) {
			ctl_pub_destroy(pb);
			return NULL;
		}
	}
	return pb;
}

void ctl_pub_destroy(struct ctl_pub *pb)
{
	if (!pb)
		return;
	if (pb->tables)
		for (int i = 0; i < pb->pool; i++) {
			free(pb->tables[i].slots);
			free(pb->tables[i].clients);
		}
	free(pb->tables);
	free(pb->readers);
	free(pb);
}

/* A retired table is free once no reader can still hold it. */
static void pub_reclaim(struct ctl_pub *pb)
{
	uint64_t oldest = UINT64_MAX; /* smallest epoch announced by an active reader */
	for (int r = 0; r < pb->max_readers; r++) {
		uint64_t e = atomic_load(&pb->readers[r].epoch);
		if (e && e < oldest)
			oldest = e;
	}
	for (int i = 0; i < pb->pool; i++) {
		struct pub_table *t = &pb->tables[i];
		if (t->state == TBL_RETIRED && oldest >= t->retire_epoch)
			t->state = TBL_FREE;
	}
}

int ctl_pub_publish(struct ctl_pub *pb, const struct ctl_decision *d)
{
	if (!pb || !d || d->n_slots > pb->max_slots || d->n_clients > pb->max_clients ||
	    d->n_slots < 0 || d->n_clients < 0)
		return -EINVAL;
	pub_reclaim(pb);
	struct pub_table *t = NULL;
	for (int i = 0; i < pb->pool && !t; i++)
		if (pb->tables[i].state == TBL_FREE)
			t = &pb->tables[i];
	if (!t)
		return -EAGAIN;
	memcpy(t->slots, d->slots, (size_t)d->n_slots * sizeof(*t->slots));
	memcpy(t->clients, d->clients, (size_t)d->n_clients * sizeof(*t->clients));
	uint64_t ver = atomic_load(&pb->version) + 1;
	t->t.version = ver;
	t->t.n_slots = d->n_slots;
	t->t.n_clients = d->n_clients;
	t->t.slots = t->slots;
	t->t.clients = t->clients;
	t->t.objective = d->objective;
	t->state = TBL_CURRENT;
	struct pub_table *old = atomic_exchange(&pb->cur, t);
	uint64_t e = atomic_fetch_add(&pb->epoch, 1) + 1;
	atomic_store(&pb->version, ver);
	if (old) {
		old->retire_epoch = e; /* readers announcing >= e loaded the pointer after the swap */
		old->state = TBL_RETIRED;
	}
	return 0;
}

const struct ctl_table *ctl_pub_acquire(struct ctl_pub *pb, int reader)
{
	if (!pb || reader < 0 || reader >= pb->max_readers)
		return NULL;
	atomic_store(&pb->readers[reader].epoch, atomic_load(&pb->epoch));
	struct pub_table *t = atomic_load(&pb->cur);
	return t ? &t->t : NULL;
}

void ctl_pub_release(struct ctl_pub *pb, int reader)
{
	if (!pb || reader < 0 || reader >= pb->max_readers)
		return;
	atomic_store(&pb->readers[reader].epoch, 0);
}

uint64_t ctl_pub_version(const struct ctl_pub *pb)
{
	return pb ? atomic_load(&((struct ctl_pub *)pb)->version) : 0;
}

/* ---- control step ------------------------------------------------------------------------ */

struct ctl_ctrl {
	struct ctl_profile prof;
	struct ctl_params prm;
	struct ctl_sched *sched;
	struct ctl_trigger *trig;
	struct ctl_pub *pub;
	struct ctl_decision *dec[2];
	int last;    /* index of the last decision, -1 none */
	int pending; /* a decision could not be published yet */
};

struct ctl_ctrl *ctl_ctrl_create(const struct ctl_profile *p, const struct ctl_params *prm,
				 int max_clients, int max_readers, double period_ms, double bw_rel)
{
	if (!p || !prm || ctl_profile_check(p, NULL, 0) || prm->n_slots < 0 ||
	    prm->n_slots > 255)
		return NULL;
	struct ctl_ctrl *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return NULL;
	cc->prof = *p;
	cc->prm = *prm;
	cc->last = -1;
	cc->sched = ctl_sched_create(prm->n_slots, max_clients);
	cc->trig = ctl_trigger_create(max_clients, period_ms, bw_rel);
	cc->pub = ctl_pub_create(max_readers, prm->n_slots, max_clients, 0);
	cc->dec[0] = ctl_decision_create(prm->n_slots, max_clients);
	cc->dec[1] = ctl_decision_create(prm->n_slots, max_clients);
	if (!cc->sched || !cc->trig || !cc->pub || !cc->dec[0] || !cc->dec[1]) {
		ctl_ctrl_destroy(cc);
		return NULL;
	}
	return cc;
}

void ctl_ctrl_destroy(struct ctl_ctrl *cc)
{
	if (!cc)
		return;
	ctl_sched_destroy(cc->sched);
	ctl_trigger_destroy(cc->trig);
	ctl_pub_destroy(cc->pub);
	ctl_decision_destroy(cc->dec[0]);
	ctl_decision_destroy(cc->dec[1]);
	free(cc);
}

struct ctl_pub *ctl_ctrl_pub(struct ctl_ctrl *cc)
{
	return cc ? cc->pub : NULL;
}

int ctl_ctrl_step(struct ctl_ctrl *cc, double now_ms, const struct ctl_client *c, int n)
{
	if (!cc)
		return -EINVAL;
	int mask = ctl_trigger_check(cc->trig, now_ms, c, n);
	if (mask < 0)
		return mask;
	if (mask) {
		int next = cc->last < 0 ? 0 : 1 - cc->last;
		const struct ctl_decision *prev = cc->last < 0 ? NULL : cc->dec[cc->last];
		int rc = ctl_sched_solve(cc->sched, &cc->prof, c, n, &cc->prm, prev, cc->dec[next]);
		if (rc)
			return rc;
		cc->last = next;
		cc->pending = 1;
	}
	if (!cc->pending)
		return 0;
	int rc = ctl_pub_publish(cc->pub, cc->dec[cc->last]);
	if (rc)
		return rc;
	cc->pending = 0;
	return mask ? mask : CTL_TRIG_PERIOD;
}
