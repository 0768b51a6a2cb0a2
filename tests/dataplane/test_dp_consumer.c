/* Tests of the data plane's consumer side (dataplane/dp.h): DROPs posted by the consumer
 * (dp_drop_post), admission of refused clients (dp_client_refuse_post), the accounting of
 * RESULTs (results_sent / results_late, server-time histogram, dp_latency_get), REPORT's
 * bandwidth and RTT in the client statistics, and dp_run's idle sleep. Same fixture as
 * test_dp_poll (test_dp_fixture.h): crafted packets through a ring ethdev, a chosen clock.
 * meson runs each case in its own process. */
#include <pthread.h>
#include <time.h>

#include "test_dp_fixture.h"

/* Takes exactly n packets from TX, each a well-formed shoal message to the client's UDP port
 * dport, parsed into msg[0..n-1]. 0, or -1 with the reason printed. Packets are freed. */
static int take_apps(struct fx *f, uint16_t dport, struct dp_app_msg *msg, unsigned n)
{
	struct rte_mbuf *out[16];
	unsigned got = take_tx(f, out, 16);
	int rc = got == n ? 0 : -1;
	for (unsigned i = 0; rc == 0 && i < got; i++) {
		size_t len = 0;
		const uint8_t *pl = check_udp_out(out[i], dport, &len);
		if (!pl || parse_app(pl, len, &msg[i]) != 0)
			rc = -1;
	}
	if (rc != 0)
		fprintf(stderr, "expected %u shoal message(s) to port %u: %u packet(s) sent\n", n,
			dport, got);
	free_all(out, got);
	return rc;
}

/* Injects one complete raw test frame (RH lines) of client ssrc with timestamp ts. */
static void send_frame(struct fx *f, uint32_t ssrc, uint16_t *seq, uint32_t ts)
{
	for (unsigned y = 0; y < RH; y++)
		inject(f, mk_raw_line(f, ssrc, CLI_PORT, (*seq)++, ts, y));
}

static struct dp_client_key key_of(uint32_t ssrc)
{
	struct dp_client_key k = {rte_cpu_to_be_32(CLI_IP), CLI_PORT, ssrc};
	return k;
}

/* The consumer drops one frame as LATE and one as NOT_SERVED: one DROP each on the wire with
 * the frame's timestamp and reason, counted per client and per context; the slots stay with
 * the consumer until dp_frame_release. */
static int test_drop_post_counts_and_sends_drop(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint16_t seq = 0;
	send_frame(&f, 50, &seq, 3000);
	send_frame(&f, 50, &seq, 6000);
	poll_all(&f);
	struct dp_frame d[2];
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 2), 2);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(dp_drop_post(f.ctx, &d[0], 0), -EINVAL);
	ST_CHECK_EQ(dp_drop_post(f.ctx, &d[0], DP_APP_DROP_TOO_LARGE + 1), -EINVAL);
	ST_CHECK_EQ(dp_drop_post(NULL, &d[0], DP_APP_DROP_LATE), -EINVAL);
	ST_CHECK_EQ(dp_drop_post(f.ctx, &d[0], DP_APP_DROP_LATE), 0);
	ST_CHECK_EQ(dp_drop_post(f.ctx, &d[1], DP_APP_DROP_NOT_SERVED), 0);
	poll_all(&f);
	struct dp_app_msg msg[2];
	ST_CHECK_EQ(take_apps(&f, CLI_PORT + 1, msg, 2), 0);
	for (int i = 0; i < 2; i++) {
		ST_CHECK_EQ(msg[i].kind, DP_APP_DROP);
		ST_CHECK_EQ(msg[i].ssrc, 50);
	}
	ST_CHECK_EQ(msg[0].u.drop.rtp_ts, 3000);
	ST_CHECK_EQ(msg[0].u.drop.reason, DP_APP_DROP_LATE);
	ST_CHECK_EQ(msg[1].u.drop.rtp_ts, 6000);
	ST_CHECK_EQ(msg[1].u.drop.reason, DP_APP_DROP_NOT_SERVED);
	struct dp_client_key k = key_of(50);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.frames_complete, 2);
	ST_CHECK_EQ(cs.frames_late, 1);
	ST_CHECK_EQ(cs.frames_refused, 1);
	ST_CHECK_EQ(cs.frames_dropped, 2);
	ST_CHECK_EQ(cs.results_sent, 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_LATE), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_REFUSED), 1);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), 2);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_NOT_ADMITTED), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_POST_NO_CLIENT), 0);
	/* the slots are the consumer's until it releases them */
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 2);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[1]), 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	/* OVERLOAD from the consumer counts as refused too */
	send_frame(&f, 50, &seq, 9000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 2), 1);
	ST_CHECK_EQ(dp_drop_post(f.ctx, &d[0], DP_APP_DROP_OVERLOAD), 0);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	poll_all(&f);
	ST_CHECK_EQ(take_apps(&f, CLI_PORT + 1, msg, 1), 0);
	ST_CHECK_EQ(msg[0].u.drop.reason, DP_APP_DROP_OVERLOAD);
	ST_CHECK_EQ(msg[0].u.drop.rtp_ts, 9000);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.frames_refused, 2);
	ST_CHECK_EQ(cs.frames_late, 1);
	ST_CHECK_EQ(cs.frames_dropped, 3);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_REFUSED), 2);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), 3);
	fx_teardown(&f);
	return ST_PASS;
}

/* A refused client's complete frames are answered with DROP(reason) by the poll lcore and
 * never reach the consumer; their slots come back at once. Reason 0 admits it again, and a
 * client that leaves and comes back starts admitted. */
static int test_refuse_post_answers_before_consumer(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint16_t seq = 0;
	struct dp_frame d[4];
	struct dp_app_msg msg[4];
	struct dp_client_key k = key_of(60);
	/* the client enters the table with one served frame */
	send_frame(&f, 60, &seq, 1000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 4), 1);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(dp_client_refuse_post(f.ctx, &k, DP_APP_DROP_TOO_LARGE + 1), -EINVAL);
	ST_CHECK_EQ(dp_client_refuse_post(NULL, &k, DP_APP_DROP_NOT_SERVED), -EINVAL);
	ST_CHECK_EQ(dp_client_refuse_post(f.ctx, &k, DP_APP_DROP_NOT_SERVED), 0);
	poll_all(&f);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0); /* refusing sends nothing by itself */
	send_frame(&f, 60, &seq, 4000);
	send_frame(&f, 60, &seq, 7000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 4), 0);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	ST_CHECK_EQ(take_apps(&f, CLI_PORT + 1, msg, 2), 0);
	ST_CHECK_EQ(msg[0].kind, DP_APP_DROP);
	ST_CHECK_EQ(msg[0].ssrc, 60);
	ST_CHECK_EQ(msg[0].u.drop.rtp_ts, 4000);
	ST_CHECK_EQ(msg[0].u.drop.reason, DP_APP_DROP_NOT_SERVED);
	ST_CHECK_EQ(msg[1].kind, DP_APP_DROP);
	ST_CHECK_EQ(msg[1].u.drop.rtp_ts, 7000);
	ST_CHECK_EQ(msg[1].u.drop.reason, DP_APP_DROP_NOT_SERVED);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.frames_complete, 3);
	ST_CHECK_EQ(cs.frames_refused, 2);
	ST_CHECK_EQ(cs.frames_dropped, 2);
	ST_CHECK_EQ(cs.frames_late, 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_NOT_ADMITTED), 2);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_COMPLETE), 3);
	ST_CHECK_EQ(cnt(&f, DP_CNT_DROPS_SENT), 2);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_REFUSED), 0); /* that one is the consumer's */
	/* another client is not affected */
	send_frame(&f, 61, &seq, 7000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 4), 1);
	ST_CHECK_EQ(d[0].client.ssrc, 61);
	ST_CHECK(raw_frame_ok(&f, &d[0], 7000));
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	/* admitted again */
	ST_CHECK_EQ(dp_client_refuse_post(f.ctx, &k, 0), 0);
	poll_all(&f);
	send_frame(&f, 60, &seq, 10000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 4), 1);
	ST_CHECK_EQ(d[0].client.ssrc, 60);
	ST_CHECK(raw_frame_ok(&f, &d[0], 10000));
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_NOT_ADMITTED), 2);
	/* refused, then it leaves (BYE) and comes back: admitted */
	ST_CHECK_EQ(dp_client_refuse_post(f.ctx, &k, DP_APP_DROP_NOT_SERVED), 0);
	poll_all(&f);
	inject(&f, mk_bye(&f, 60));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), -ENOENT);
	send_frame(&f, 60, &seq, 13000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, d, 4), 1);
	ST_CHECK(raw_frame_ok(&f, &d[0], 13000));
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d[0]), 0);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_FRAMES_NOT_ADMITTED), 2);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

/* RESULTs with chosen server times: counted as sent, late above the SLO (100 ms by default,
 * strictly above), in the histogram bucket whose bound is the first >= the time, summed; the
 * context's histogram (dp_latency_get) holds the same and keeps it after the client left. */
static int test_result_accounting_histogram(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint16_t seq = 0;
	send_frame(&f, 70, &seq, 3000);
	poll_all(&f);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	/* server times (us) and the bucket each lands in (bounds 1, 2, 5, 10, 20, 30, 50, 75,
	 * 100, 150, 200, 300, 500, 1000 ms, then above) */
	static const uint32_t us[] = {0, 500, 1000, 1001, 4999, 100000, 100001, 999999,
				      1000000, 1000001, 3000000};
	static const unsigned bucket[] = {0, 0, 0, 1, 2, 8, 9, 13, 13, 14, 14};
	const unsigned n = sizeof(us) / sizeof(us[0]);
	uint64_t want_hist[DP_LAT_BUCKETS] = {0}, want_sum = 0;
	unsigned want_late = 0;
	struct dp_app_result r;
	memset(&r, 0, sizeof(r));
	r.variant = 320;
	r.n_det = 1;
	/* the data plane's server time runs from the frame's first packet to the RESULT going
	 * out (the RESULT's own server_us, from the last packet, is carried unchanged): each
	 * post names a frame that arrived us[i] before the poll that sends it */
	f.now += 5000 * MS;
	struct dp_frame df = d;
	for (unsigned i = 0; i < n; i++) {
		r.rtp_ts = 3000 + i;
		r.server_us = us[i];
		df.arrival_ns = f.now - (uint64_t)us[i] * 1000;
		ST_CHECK_EQ(dp_result_post(f.ctx, &df, &r), 0);
		want_hist[bucket[i]]++;
		want_sum += us[i];
		want_late += us[i] > 100000;
	}
	poll_all(&f);
	struct dp_app_msg msg[16];
	ST_CHECK_EQ(take_apps(&f, CLI_PORT + 1, msg, n), 0);
	for (unsigned i = 0; i < n; i++) {
		ST_CHECK_EQ(msg[i].kind, DP_APP_RESULT);
		ST_CHECK_EQ(msg[i].u.result.rtp_ts, 3000 + i);
		ST_CHECK_EQ(msg[i].u.result.server_us, us[i]);
	}
	struct dp_client_key k = key_of(70);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.slo_ms, 100);
	ST_CHECK_EQ(cs.results_sent, n);
	ST_CHECK_EQ(cs.results_late, want_late);
	ST_CHECK_EQ(want_late, 5);
	ST_CHECK_EQ(cs.lat_sum_us, want_sum);
	for (unsigned b = 0; b < DP_LAT_BUCKETS; b++)
		ST_CHECK_EQ(cs.lat_hist[b], want_hist[b]);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_SENT), n);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_LATE), want_late);
	uint64_t hist[DP_LAT_BUCKETS], sum = 0;
	dp_latency_get(f.ctx, hist, &sum);
	ST_CHECK_EQ(sum, want_sum);
	for (unsigned b = 0; b < DP_LAT_BUCKETS; b++)
		ST_CHECK_EQ(hist[b], want_hist[b]);
	dp_latency_get(f.ctx, hist, NULL); /* the sum is optional */
	/* a RESULT for a client no longer in the table is neither sent nor counted */
	inject(&f, mk_bye(&f, 70));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), -ENOENT);
	r.server_us = 1234;
	ST_CHECK_EQ(dp_result_post(f.ctx, &d, &r), 0);
	poll_all(&f);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(cnt(&f, DP_CNT_POST_NO_CLIENT), 1);
	dp_latency_get(f.ctx, hist, &sum); /* the context keeps what the client had */
	ST_CHECK_EQ(sum, want_sum);
	for (unsigned b = 0; b < DP_LAT_BUCKETS; b++)
		ST_CHECK_EQ(hist[b], want_hist[b]);
	/* a client registered with a 50 ms SLO: 60 ms is late for it */
	struct dp_app_msg reg;
	memset(&reg, 0, sizeof(reg));
	reg.kind = DP_APP_REGISTER;
	reg.ssrc = 71;
	reg.u.reg.slo_ms = 50;
	reg.u.reg.fps_x100 = 3000;
	reg.u.reg.media_port = CLI_PORT;
	reg.u.reg.formats = DP_APP_FMT_RAWRGB;
	reg.u.reg.n_res = 1;
	reg.u.reg.res[0].width = RW;
	reg.u.reg.res[0].height = RH;
	inject(&f, mk_app(&f, CLI_PORT + 1, &reg));
	poll_all(&f);
	send_frame(&f, 71, &seq, 9000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	r.rtp_ts = 9000;
	r.server_us = 1000; /* from the last packet; 60 ms from the first */
	d.arrival_ns = f.now - 60 * MS;
	ST_CHECK_EQ(dp_result_post(f.ctx, &d, &r), 0);
	poll_all(&f);
	ST_CHECK_EQ(take_apps(&f, CLI_PORT + 1, msg, 1), 0);
	k = key_of(71);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.slo_ms, 50);
	ST_CHECK_EQ(cs.results_sent, 1);
	ST_CHECK_EQ(cs.results_late, 1);
	ST_CHECK_EQ(cs.lat_hist[7], 1); /* 60 ms: <= 75 */
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_LATE), want_late + 1);
	dp_latency_get(f.ctx, hist, &sum);
	ST_CHECK_EQ(sum, want_sum + 60000);
	ST_CHECK_EQ(hist[7], want_hist[7] + 1);
	fx_teardown(&f);
	return ST_PASS;
}

static struct rte_mbuf *mk_report(struct fx *f, uint16_t sport, uint32_t ssrc, uint32_t bw,
				  uint32_t rtt)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REPORT;
	m.ssrc = ssrc;
	m.u.report.bw_kbps = bw;
	m.u.report.rtt_us = rtt;
	m.u.report.frames_sent = 10;
	m.u.report.results_rcvd = 9;
	return mk_app(f, sport, &m);
}

/* REPORT from the client's RTCP port (media port + 1) sets bw_kbps / rtt_us in its statistics
 * and the snapshot; half the RTT then comes off its frames' deadlines. A REPORT for a stream
 * not in the table changes nothing. */
static int test_report_sets_bw_rtt_in_stats(void)
{
	FX_BEGIN(f, NULL, 4, 65536);
	uint16_t seq = 0;
	send_frame(&f, 80, &seq, 3000);
	poll_all(&f);
	struct dp_frame d;
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(d.deadline_ns, d.arrival_ns + 100 * MS);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	struct dp_client_key k = key_of(80);
	struct dp_client_stats cs;
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.bw_kbps, 0);
	ST_CHECK_EQ(cs.rtt_us, 0);
	f.now += 10 * MS;
	inject(&f, mk_report(&f, CLI_PORT + 1, 80, 12345, 6000));
	/* another SSRC, and the right SSRC from another source port: no such stream */
	inject(&f, mk_report(&f, CLI_PORT + 1, 81, 1, 2));
	inject(&f, mk_report(&f, CLI_PORT + 3, 80, 1, 2));
	poll_all(&f);
	ST_CHECK_EQ(cnt(&f, DP_CNT_REPORTS), 3);
	ST_CHECK_EQ(rte_ring_count(f.tx), 0);
	ST_CHECK_EQ(dp_client_count(f.ctx), 1);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.bw_kbps, 12345);
	ST_CHECK_EQ(cs.rtt_us, 6000);
	ST_CHECK_EQ(cs.last_seen_ns, f.now);
	struct dp_client_snapshot snap[4];
	ST_CHECK_EQ(dp_clients_snapshot(f.ctx, snap, 4, NULL), 1);
	ST_CHECK_EQ(snap[0].st.bw_kbps, 12345);
	ST_CHECK_EQ(snap[0].st.rtt_us, 6000);
	/* the result must travel back: half the RTT (3 ms) comes off the deadline */
	send_frame(&f, 80, &seq, 6000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(d.arrival_ns, f.now);
	ST_CHECK_EQ(d.deadline_ns, d.arrival_ns + 100 * MS - 3 * MS);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	/* a later REPORT replaces the values */
	inject(&f, mk_report(&f, CLI_PORT + 1, 80, 800, 250000));
	poll_all(&f);
	ST_CHECK_EQ(dp_client_stats_get(f.ctx, &k, &cs), 0);
	ST_CHECK_EQ(cs.bw_kbps, 800);
	ST_CHECK_EQ(cs.rtt_us, 250000);
	/* an RTT above twice the SLO leaves no time at all: the deadline is the arrival */
	send_frame(&f, 80, &seq, 9000);
	poll_all(&f);
	ST_CHECK_EQ(dp_frames_dequeue(f.ctx, &d, 1), 1);
	ST_CHECK_EQ(d.deadline_ns, d.arrival_ns);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	fx_teardown(&f);
	return ST_PASS;
}

struct run_arg {
	struct dp_ctx *ctx;
	volatile int stop;
	clockid_t cpu_clock;
	volatile int have_clock;
};

static void *run_thread(void *p)
{
	struct run_arg *a = p;
	if (pthread_getcpuclockid(pthread_self(), &a->cpu_clock) == 0)
		a->have_clock = 1;
	dp_run(a->ctx, &a->stop);
	return NULL;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void cfg_idle_sleep(struct dp_config *c)
{
	c->idle_sleep_us = 20000; /* 20 ms after 64 empty polls */
	c->frame_timeout_ns = 5000 * MS;
	c->scan_interval_ns = MS;
}

/* dp_run with idle_sleep_us: while nothing arrives the poll lcore sleeps (it uses a small
 * part of its core, where pure polling uses all of it), and a frame sent while it sleeps is
 * still delivered and answered. */
static int test_run_idle_sleep_still_serves(void)
{
	FX_BEGIN(f, cfg_idle_sleep, 4, 65536);
	struct run_arg a = {f.ctx, 0, 0, 0};
	pthread_t th;
	ST_CHECK(pthread_create(&th, NULL, run_thread, &a) == 0);
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	ST_CHECK(a.have_clock);
	uint64_t cpu0 = clock_ns(a.cpu_clock), wall0 = clock_ns(CLOCK_MONOTONIC);
	ts.tv_nsec = 400 * 1000000L;
	nanosleep(&ts, NULL);
	uint64_t cpu = clock_ns(a.cpu_clock) - cpu0, wall = clock_ns(CLOCK_MONOTONIC) - wall0;
	/* at most 64 polls per 20 ms sleep: far below half a core whatever the machine */
	ST_CHECK(cpu * 2 < wall);
	uint16_t seq = 0;
	for (unsigned y = 0; y < RH; y++) {
		struct rte_mbuf *m = mk_raw_line(&f, 90, CLI_PORT, seq++, 3000, y);
		while (rte_ring_enqueue(f.rx, m) != 0)
			;
	}
	struct dp_frame d;
	uint64_t t_end = dp_now_ns() + 10000 * MS;
	unsigned got = 0;
	while (got == 0 && dp_now_ns() < t_end) {
		got = dp_frames_dequeue(f.ctx, &d, 1);
		if (!got) {
			ts.tv_nsec = 1000000L;
			nanosleep(&ts, NULL);
		}
	}
	ST_CHECK_EQ(got, 1);
	ST_CHECK(raw_frame_ok(&f, &d, 3000));
	struct dp_app_result r;
	memset(&r, 0, sizeof(r));
	r.rtp_ts = 3000;
	r.n_det = 1;
	ST_CHECK_EQ(dp_result_post(f.ctx, &d, &r), 0);
	ST_CHECK_EQ(dp_frame_release(f.ctx, &d), 0);
	struct rte_mbuf *out[4];
	unsigned n = 0;
	while (n == 0 && dp_now_ns() < t_end) {
		n = take_tx(&f, out, 4);
		if (!n) {
			ts.tv_nsec = 1000000L;
			nanosleep(&ts, NULL);
		}
	}
	a.stop = 1;
	pthread_join(th, NULL);
	ST_CHECK_EQ(n, 1);
	size_t plen;
	const uint8_t *pl = check_udp_out(out[0], CLI_PORT + 1, &plen);
	struct dp_app_msg msg;
	ST_CHECK(pl && parse_app(pl, plen, &msg) == 0);
	ST_CHECK_EQ(msg.kind, DP_APP_RESULT);
	ST_CHECK_EQ(msg.u.result.rtp_ts, 3000);
	free_all(out, n);
	ST_CHECK_EQ(cnt(&f, DP_CNT_RESULTS_SENT), 1);
	ST_CHECK_EQ(gpu_staging_free_count(f.st), 4);
	fx_teardown(&f);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_drop_post_counts_and_sends_drop),
	ST_CASE(test_refuse_post_answers_before_consumer),
	ST_CASE(test_result_accounting_histogram), ST_CASE(test_report_sets_bw_rtt_in_stats),
	ST_CASE(test_run_idle_sleep_still_serves))
