/* Control-thread interface tests (suite 'sched'): publish/acquire under concurrent readers,
 * pool exhaustion, triggers, the control step. */
#include "harness.h"

#include "control/ctl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define NREADERS 3
#define NPUB 20000
#define TSLOTS 4
#define TCLIENTS 16

struct reader_arg {
	struct ctl_pub *pb;
	int idx;
	atomic_int *stop;
	atomic_long reads;
	long bad;
};

/* Every table published has all fields derived from its version: a reader seeing a mix of
 * two versions (a torn or reused table) counts it as bad. */
static void fill(struct ctl_decision *d, uint64_t v)
{
	d->n_slots = TSLOTS;
	d->n_clients = TCLIENTS;
	for (int k = 0; k < TSLOTS; k++)
		d->slots[k] = (struct ctl_slot_assign){.variant = (int)(v % 17), .batch = (int)v,
						       .n_clients = (int)v};
	for (int i = 0; i < TCLIENTS; i++)
		d->clients[i] = (struct ctl_client_assign){.id = (uint32_t)v, .slot = (int)(v % 4)};
	d->objective = (double)v;
}

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint64_t last = 0;
	while (!atomic_load(a->stop)) {
		const struct ctl_table *t = ctl_pub_acquire(a->pb, a->idx);
		if (t) {
			uint64_t v = t->version;
			int ok = v >= last && t->n_slots == TSLOTS && t->n_clients == TCLIENTS &&
				 t->objective == (double)v;
			for (int k = 0; k < TSLOTS && ok; k++)
				ok = t->slots[k].batch == (int)v && t->slots[k].n_clients == (int)v;
			for (int i = 0; i < TCLIENTS && ok; i++)
				ok = t->clients[i].id == (uint32_t)v;
			/* re-read after a pause: a reclaimed-and-reused table would change here */
			for (volatile int spin = 0; spin < 50; spin++)
				;
			ok = ok && t->version == v && t->clients[TCLIENTS - 1].id == (uint32_t)v;
			a->bad += !ok;
			last = v;
			atomic_fetch_add(&a->reads, 1);
		}
		ctl_pub_release(a->pb, a->idx);
	}
	return NULL;
}

static int test_publish_acquire_many_swaps_with_reader_threads(void)
{
	struct ctl_pub *pb = ctl_pub_create(NREADERS, TSLOTS, TCLIENTS, 0);
	struct ctl_decision *d = ctl_decision_create(TSLOTS, TCLIENTS);
	ST_CHECK(pb && d);
	ST_CHECK(ctl_pub_acquire(pb, 0) == NULL); /* nothing published yet */
	ctl_pub_release(pb, 0);
	ST_CHECK_EQ(ctl_pub_version(pb), 0);
	atomic_int stop;
	atomic_init(&stop, 0);
	struct reader_arg ra[NREADERS];
	pthread_t th[NREADERS];
	for (int r = 0; r < NREADERS; r++) {
		ra[r] = (struct reader_arg){.pb = pb, .idx = r, .stop = &stop};
		atomic_init(&ra[r].reads, 0);
		ST_CHECK_EQ(pthread_create(&th[r], NULL, reader, &ra[r]), 0);
	}
	/* Publish at least NPUB versions, and go on until every reader has read published
	 * tables while swaps were happening: on a loaded 2-core machine the publisher can
	 * otherwise finish before a reader thread is first scheduled. */
	long again = 0;
	uint64_t v = 1;
	for (;;) {
		if (v > NPUB) {
			long least = LONG_MAX;
			for (int r = 0; r < NREADERS; r++) {
				long n = atomic_load(&ra[r].reads);
				least = n < least ? n : least;
			}
			if (least >= 100 || v > 50 * NPUB)
				break;
			sched_yield();
		}
		fill(d, v);
		int rc = ctl_pub_publish(pb, d);
		if (rc == -EAGAIN) { /* every spare table pinned right now: retry */
			again++;
			continue;
		}
		ST_CHECK_EQ(rc, 0);
		ST_CHECK_EQ(ctl_pub_version(pb), v);
		v++;
	}
	atomic_store(&stop, 1);
	long reads = 0, bad = 0, least = LONG_MAX;
	for (int r = 0; r < NREADERS; r++) {
		pthread_join(th[r], NULL);
		long n = atomic_load(&ra[r].reads);
		reads += n;
		least = n < least ? n : least;
		bad += ra[r].bad;
	}
	printf("versions %llu, reads %ld (least %ld), bad %ld, publish retries %ld\n",
	       (unsigned long long)(v - 1), reads, least, bad, again);
	ST_CHECK_EQ(bad, 0);
	ST_CHECK(least >= 100);
	const struct ctl_table *t = ctl_pub_acquire(pb, 1);
	ST_CHECK(t && t->version == v - 1);
	ctl_pub_release(pb, 1);
	ctl_pub_destroy(pb);
	ctl_decision_destroy(d);
	return ST_PASS;
}

static int test_pinned_tables_are_not_reused(void)
{
	/* one reader, pool of 2: while the reader holds version 1, version 2 is current and the
	 * pool is empty, so a third publish must wait */
	struct ctl_pub *pb = ctl_pub_create(1, TSLOTS, TCLIENTS, 2);
	struct ctl_decision *d = ctl_decision_create(TSLOTS, TCLIENTS);
	ST_CHECK(pb && d);
	fill(d, 1);
	ST_CHECK_EQ(ctl_pub_publish(pb, d), 0);
	const struct ctl_table *t = ctl_pub_acquire(pb, 0);
	ST_CHECK(t && t->version == 1);
	fill(d, 2);
	ST_CHECK_EQ(ctl_pub_publish(pb, d), 0);
	fill(d, 3);
	ST_CHECK_EQ(ctl_pub_publish(pb, d), -EAGAIN);
	ST_CHECK(t->version == 1 && t->clients[0].id == 1); /* still intact */
	ctl_pub_release(pb, 0);
	ST_CHECK_EQ(ctl_pub_publish(pb, d), 0);
	t = ctl_pub_acquire(pb, 0);
	ST_CHECK(t && t->version == 3 && t->clients[5].id == 3);
	ctl_pub_release(pb, 0);
	/* a decision larger than the tables is refused */
	struct ctl_decision *big = ctl_decision_create(TSLOTS + 1, TCLIENTS);
	ST_CHECK(big);
	big->n_slots = TSLOTS + 1;
	ST_CHECK_EQ(ctl_pub_publish(pb, big), -EINVAL);
	ST_CHECK(ctl_pub_acquire(pb, 7) == NULL); /* no such reader */
	ctl_decision_destroy(big);
	ctl_pub_destroy(pb);
	ctl_decision_destroy(d);
	return ST_PASS;
}

static int test_triggers_fire_on_period_join_leave_and_bandwidth(void)
{
	struct ctl_trigger *t = ctl_trigger_create(8, 500, 0.2);
	ST_CHECK(t);
	struct ctl_client c[3] = {{1, 100, 15, 20, 2, 0}, {2, 100, 15, 30, 2, 0},
				  {3, 100, 15, 40, 2, 0}};
	ST_CHECK_EQ(ctl_trigger_check(t, 0, c, 2), CTL_TRIG_FIRST);
	ST_CHECK_EQ(ctl_trigger_check(t, 100, c, 2), 0);
	ST_CHECK_EQ(ctl_trigger_check(t, 500, c, 2), CTL_TRIG_PERIOD);
	ST_CHECK_EQ(ctl_trigger_check(t, 600, c, 3), CTL_TRIG_JOIN);
	ST_CHECK_EQ(ctl_trigger_check(t, 650, c + 1, 2), CTL_TRIG_LEAVE);
	c[1].bw_mbps = 35; /* +16.7 %: below the threshold */
	ST_CHECK_EQ(ctl_trigger_check(t, 700, c + 1, 2), 0);
	c[1].bw_mbps = 37; /* +23 % of the last planned 30 */
	ST_CHECK_EQ(ctl_trigger_check(t, 710, c + 1, 2), CTL_TRIG_BANDWIDTH);
	c[2].bw_mbps = NAN; /* a broken estimate re-plans (and is then reported invalid) */
	ST_CHECK(ctl_trigger_check(t, 720, c + 1, 2) & CTL_TRIG_BANDWIDTH);
	ST_CHECK_EQ(ctl_trigger_check(t, 730, c, 9), -EINVAL);
	ST_CHECK(ctl_trigger_create(4, 0, 0.2) == NULL);
	ctl_trigger_destroy(t);
	return ST_PASS;
}

static int test_control_step_publishes_when_triggered(void)
{
	struct ctl_profile p;
	struct ctl_params prm;
	ctl_profile_standin(&p, 8);
	ctl_params_default(&prm, 2, 8);
	struct ctl_ctrl *cc = ctl_ctrl_create(&p, &prm, 16, 1, 500, 0.2);
	ST_CHECK(cc);
	struct ctl_client c[4] = {{1, 100, 15, 20, 2, 0}, {2, 150, 25, 30, 2, 0},
				  {3, 75, 10, 40, 2, 0},  {4, 100, 15, 45, 2, 0}};
	ST_CHECK(ctl_ctrl_step(cc, 0, c, 3) & CTL_TRIG_FIRST);
	struct ctl_pub *pb = ctl_ctrl_pub(cc);
	ST_CHECK_EQ(ctl_pub_version(pb), 1);
	ST_CHECK_EQ(ctl_ctrl_step(cc, 10, c, 3), 0);
	ST_CHECK_EQ(ctl_pub_version(pb), 1);
	ST_CHECK(ctl_ctrl_step(cc, 20, c, 4) & CTL_TRIG_JOIN);
	const struct ctl_table *t = ctl_pub_acquire(pb, 0);
	ST_CHECK(t && t->version == 2 && t->n_clients == 4 && t->n_slots == 2);
	int served = 0;
	for (int i = 0; i < 4; i++)
		served += t->clients[i].slot >= 0;
	ST_CHECK(served > 0);
	ctl_pub_release(pb, 0);
	ST_CHECK(ctl_ctrl_step(cc, 600, c, 4) & CTL_TRIG_PERIOD);
	ST_CHECK_EQ(ctl_pub_version(pb), 3);
	ctl_ctrl_destroy(cc);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_publish_acquire_many_swaps_with_reader_threads),
	ST_CASE(test_pinned_tables_are_not_reused),
	ST_CASE(test_triggers_fire_on_period_join_leave_and_bandwidth),
	ST_CASE(test_control_step_publishes_when_triggered))
