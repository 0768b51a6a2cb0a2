/* The statistics snapshot (dp.h, dp_clients_snapshot) read by other threads without locks:
 * a reader thread copying it continuously while dp_run serves clients that come and go sees
 * only consistent copies (fields that move together agree, epochs and counters never go
 * back), and the final copy equals dp_client_stats_get; capacity, epoch and publication
 * interval on a polled context. */
#include <pthread.h>
#include <sched.h>

#include "test_dp_fixture.h"

#define PKT_BYTES (12 + 8 + RLINE) /* UDP payload of one raw test line */
#define MAXC 16
#define MAX_SSRC 512

/* Field by field: 1 when the snapshot entry equals what dp_client_stats_get says. */
static int same_stats(const struct dp_client_stats *a, const struct dp_client_stats *b)
{
	return a->packets == b->packets && a->bytes == b->bytes &&
	       a->frames_complete == b->frames_complete &&
	       a->frames_incomplete == b->frames_incomplete &&
	       a->frames_dropped == b->frames_dropped && a->dup_packets == b->dup_packets &&
	       a->stale_packets == b->stale_packets && a->ext_seq_max == b->ext_seq_max &&
	       a->fps_x100 == b->fps_x100 && a->bits_per_s == b->bits_per_s &&
	       a->first_seen_ns == b->first_seen_ns && a->last_seen_ns == b->last_seen_ns &&
	       a->slo_ms == b->slo_ms && a->fps_req_x100 == b->fps_req_x100 &&
	       a->managed == b->managed && a->rtcp_port == b->rtcp_port;
}

struct reader {
	const struct dp_ctx *ctx;
	volatile int stop;
	unsigned reads, bad, epochs;
	uint64_t last_packets[MAX_SSRC];
	char why[200];
};

/* The crafted traffic makes these hold in every consistent copy: every packet is one line of
 * PKT_BYTES, sequence numbers start at 0 without gaps, a frame completes at its 16th line. */
static int entry_consistent(struct reader *r, const struct dp_client_snapshot *e)
{
	const struct dp_client_stats *s = &e->st;
	if (e->key.ssrc >= MAX_SSRC || e->key.port != CLI_PORT)
		return snprintf(r->why, sizeof(r->why), "key %u/%u", e->key.ssrc, e->key.port), 0;
	if (s->bytes != s->packets * PKT_BYTES || s->frames_complete != s->packets / RH ||
	    (s->packets && s->ext_seq_max != s->packets - 1) || s->frames_dropped ||
	    s->frames_incomplete)
		return snprintf(r->why, sizeof(r->why),
				"ssrc %u: packets %llu bytes %llu frames %llu ext_seq %u",
				e->key.ssrc, (unsigned long long)s->packets,
				(unsigned long long)s->bytes,
				(unsigned long long)s->frames_complete, s->ext_seq_max),
		       0;
	if (s->packets < r->last_packets[e->key.ssrc])
		return snprintf(r->why, sizeof(r->why), "ssrc %u: packets went back", e->key.ssrc),
		       0;
	r->last_packets[e->key.ssrc] = s->packets;
	return 1;
}

static void *reader_main(void *p)
{
	struct reader *r = p;
	struct dp_client_snapshot buf[MAXC];
	uint64_t last_epoch = 0;
	while (!r->stop) {
		uint64_t epoch;
		int n = dp_clients_snapshot(r->ctx, buf, MAXC, &epoch);
		r->reads++;
		if (n < 0 || n > MAXC || epoch < last_epoch) {
			snprintf(r->why, sizeof(r->why), "n %d epoch %llu after %llu", n,
				 (unsigned long long)epoch, (unsigned long long)last_epoch);
			r->bad++;
			continue;
		}
		r->epochs += epoch != last_epoch;
		last_epoch = epoch;
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < i; j++)
				if (buf[j].key.ssrc == buf[i].key.ssrc) {
					snprintf(r->why, sizeof(r->why), "ssrc %u twice",
						 buf[i].key.ssrc);
					r->bad++;
				}
			if (!entry_consistent(r, &buf[i]))
				r->bad++;
		}
		if (r->reads % 64 == 0)
			sched_yield(); /* 2-core CI: leave room for the poll loop and the sender */
	}
	return NULL;
}

struct run_arg {
	struct dp_ctx *ctx;
	volatile int stop;
};

static void *run_main(void *p)
{
	struct run_arg *a = p;
	dp_run(a->ctx, &a->stop);
	return NULL;
}

static void cfg_snap(struct dp_config *c)
{
	c->max_clients = MAXC;
	c->frame_timeout_ns = 60000 * MS; /* a loaded machine must not time frames out */
	c->idle_timeout_ns = 60000 * MS;
	c->scan_interval_ns = 0; /* scan, and publish, at every poll: the most writes */
}

static void drain_frames(struct fx *f)
{
	struct dp_frame d;
	while (dp_frames_dequeue(f->ctx, &d, 1) == 1)
		dp_frame_release(f->ctx, &d);
}

/* 8 clients at a time; every round each sends one frame (16 lines), then the oldest leaves
 * (BYE) and a new one arrives, for 40 rounds. */
static int test_snapshot_consistent_while_clients_come_and_go(void)
{
	FX_BEGIN(f, cfg_snap, 256, 4096);
	static struct reader r;
	memset(&r, 0, sizeof(r));
	r.ctx = f.ctx;
	struct run_arg a = {f.ctx, 0};
	pthread_t th_run, th_read;
	ST_CHECK(pthread_create(&th_run, NULL, run_main, &a) == 0);
	ST_CHECK(pthread_create(&th_read, NULL, reader_main, &r) == 0);
	uint32_t first = 1, next = 9; /* active ssrcs: [first, next) */
	uint16_t seq[MAX_SSRC] = {0};
	for (unsigned round = 0; round < 40; round++) {
		for (uint32_t s = first; s < next; s++) {
			for (unsigned y = 0; y < RH; y++) {
				uint16_t q = seq[s]++;
				struct rte_mbuf *m = mk_raw_line(&f, s, CLI_PORT, q,
								 (uint32_t)(q / RH) * 3000, y);
				while (rte_ring_enqueue(f.rx, m) != 0)
					drain_frames(&f);
			}
			drain_frames(&f);
		}
		/* the leaving client's lines must be handled before its BYE */
		while (rte_ring_count(f.rx) != 0)
			drain_frames(&f);
		struct rte_mbuf *m = mk_bye(&f, first++);
		while (rte_ring_enqueue(f.rx, m) != 0)
			;
		next++;
	}
	while (rte_ring_count(f.rx) != 0)
		drain_frames(&f);
	a.stop = 1;
	pthread_join(th_run, NULL);
	drain_frames(&f);
	r.stop = 1;
	pthread_join(th_read, NULL);
	if (r.bad)
		fprintf(stderr, "inconsistent snapshot (%u): %s\n", r.bad, r.why);
	printf("%u snapshots read, %u distinct epochs\n", r.reads, r.epochs);
	ST_CHECK_EQ(r.bad, 0);
	ST_CHECK(r.reads > 0);
	/* after the stop: the final snapshot is the table */
	struct dp_client_snapshot buf[MAXC];
	uint64_t epoch;
	int n = dp_clients_snapshot(f.ctx, buf, MAXC, &epoch);
	ST_CHECK_EQ(n, 7); /* the client that joined last has not sent yet */
	ST_CHECK_EQ((unsigned)n, dp_client_count(f.ctx));
	ST_CHECK(epoch > 0);
	for (int i = 0; i < n; i++) {
		struct dp_client_stats cs;
		ST_CHECK_EQ(dp_client_stats_get(f.ctx, &buf[i].key, &cs), 0);
		ST_CHECK(same_stats(&buf[i].st, &cs));
		ST_CHECK(buf[i].key.ssrc >= first && buf[i].key.ssrc < next - 1);
		ST_CHECK_EQ(cs.packets, (uint64_t)seq[buf[i].key.ssrc]);
		ST_CHECK(entry_consistent(&r, &buf[i]));
	}
	ST_CHECK_EQ(cnt(&f, DP_CNT_CLIENTS_REMOVED), 40);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 256);
	fx_teardown(&f);
	return ST_PASS;
}

static void cfg_interval(struct dp_config *c) { c->snapshot_interval_ns = 10 * MS; }

/* Polled context: nothing before the first scan (epoch 0); the copy is the table; cap smaller
 * than the table copies cap entries and says how many there are; with an interval of 10 ms
 * the epoch moves only when the interval passed; BYE shows in the next copy. */
static int test_snapshot_epoch_capacity_interval(void)
{
	FX_BEGIN(f, cfg_interval, 8, 4096);
	struct dp_client_snapshot buf[4];
	uint64_t epoch = 99;
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, buf, 4, &epoch), 0);
	ST_CHECK_EQ(epoch, 0);
	for (uint32_t s = 1; s <= 3; s++)
		for (unsigned y = 0; y < 5; y++)
			inject(&f, mk_raw_line(&f, s, CLI_PORT, (uint16_t)y, 100, y));
	poll_all(&f);
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, buf, 4, &epoch), 3);
	ST_CHECK_EQ(epoch, 1);
	for (unsigned i = 0; i < 3; i++) {
		struct dp_client_stats cs;
		ST_CHECK_EQ(dp_client_stats_get(f.ctx, &buf[i].key, &cs), 0);
		ST_CHECK(same_stats(&buf[i].st, &cs));
		ST_CHECK_EQ(cs.packets, 5);
		ST_CHECK_EQ(cs.ext_seq_max, 4);
	}
	memset(buf, 0xab, sizeof(buf));
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, buf, 1, NULL), 3);
	ST_CHECK(buf[0].key.ssrc >= 1 && buf[0].key.ssrc <= 3);
	ST_CHECK_EQ(buf[1].key.ssrc, 0xabababab); /* beyond cap: untouched */
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, NULL, 0, NULL), 3);
	inject(&f, mk_bye(&f, 2));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_count(f.ctx), 2);
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, buf, 4, &epoch), 3); /* same time: not yet */
	ST_CHECK_EQ(epoch, 1);
	f.now += 10 * MS;
	poll_all(&f);
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, buf, 4, &epoch), 2);
	ST_CHECK_EQ(epoch, 2);
	for (unsigned i = 0; i < 2; i++)
		ST_CHECK(buf[i].key.ssrc != 2);
	fx_teardown(&f);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_snapshot_consistent_while_clients_come_and_go),
	ST_CASE(test_snapshot_epoch_capacity_interval))
