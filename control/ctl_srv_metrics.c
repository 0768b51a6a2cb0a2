/* ctl_srv_metrics — shoal-server's Prometheus metrics (rendered on the control thread for
 * ctl_metrics_poll), its periodic `serve:` statistics line and its final statistics. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_srv_serve.h"

static void srv_client_label(const struct dp_client_key *k, char *out, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &k->ip, ip, sizeof(ip));
	snprintf(out, len, "client=\"%s:%u/0x%08x\"", ip, k->port, k->ssrc);
}

/* Quantile q of a histogram over dp_lat_bounds_ms (upper bound of the bucket holding it; the
 * last bucket reads as twice the largest bound). */
static double srv_hist_quantile(const uint64_t h[DP_LAT_BUCKETS], double q)
{
	uint64_t tot = 0;
	for (int b = 0; b < DP_LAT_BUCKETS; b++)
		tot += h[b];
	if (!tot)
		return 0;
	uint64_t want = (uint64_t)(q * (double)tot + 0.999999), acc = 0;
	for (int b = 0; b < DP_LAT_BUCKETS; b++) {
		acc += h[b];
		if (acc >= want)
			return b < DP_LAT_BUCKETS - 1 ? dp_lat_bounds_ms[b]
						      : 2 * dp_lat_bounds_ms[DP_LAT_BUCKETS - 2];
	}
	return 2 * dp_lat_bounds_ms[DP_LAT_BUCKETS - 2];
}

void srv_metrics_render(void *arg, struct ctl_prom *out)
{
	struct srv *s = arg;
	struct srv_serve *sv = s->sv;
	char lab[160], lab2[200];
	/* data plane counters, summed over the queues */
	uint64_t v[DP_CNT__COUNT];
	srv_counters_sum(s, v);
	for (unsigned c = 0; c < DP_CNT__COUNT; c++) {
		char name[80];
		snprintf(name, sizeof(name), "shoal_dp_%s_total", dp_cnt_name(c));
		ctl_prom_family(out, name, "counter", "data-plane counter (dataplane/dp.h enum dp_cnt)");
		ctl_prom_sample(out, name, NULL, (double)v[c]);
	}
	/* clients: from the control thread's latest snapshot (sv->snap, registry order) */
	const struct srv_known *r = sv->reg[sv->cur_reg];
	static const struct {
		const char *name, *help;
	} cf[] = {
		{"shoal_client_frames_in_total", "frames received (complete or abandoned incomplete)"},
		{"shoal_client_frames_served_total", "frames answered with a RESULT"},
		{"shoal_client_frames_dropped_total", "frames answered with a DROP (any reason)"},
		{"shoal_client_frames_missed_total",
		 "SLO misses seen by the server: RESULT later than the SLO, or dropped as late"},
		{"shoal_client_assigned_variant", "input size of the variant serving it (0: none)"},
		{"shoal_client_fps", "measured frames per second"},
		{"shoal_client_bandwidth_kbps", "uplink estimate from its REPORT (0: none)"},
		{"shoal_client_upload_kbps", "upload rate measured on its frames (0: none)"},
		{"shoal_client_rtt_seconds",
		 "round trip from its REPORT (half of it is taken off its frames' deadlines)"},
	};
	for (unsigned f = 0; f < sizeof(cf) / sizeof(cf[0]); f++) {
		ctl_prom_family(out, cf[f].name, f < 4 ? "counter" : "gauge", cf[f].help);
		for (unsigned i = 0; i < sv->n_reg; i++) {
			const struct dp_client_stats *st = &sv->snap[r[i].snap_idx].st;
			double val = 0;
			switch (f) {
			case 0: val = (double)(st->frames_complete + st->frames_incomplete); break;
			case 1: val = (double)st->results_sent; break;
			case 2: val = (double)(st->frames_dropped + st->frames_incomplete); break;
			case 3: val = (double)(st->results_late + st->frames_late); break;
			case 4: val = r[i].instance >= 0 ? r[i].size : 0; break;
			case 5: val = st->fps_x100 / 100.0; break;
			case 6: val = st->bw_kbps; break;
			case 7: val = st->upload_kbps; break;
			default: val = st->rtt_us * 1e-6; break;
			}
			srv_client_label(&r[i].key, lab, sizeof(lab));
			ctl_prom_sample(out, cf[f].name, lab, val);
		}
	}
	double bounds[DP_LAT_BUCKETS - 1];
	for (int b = 0; b < DP_LAT_BUCKETS - 1; b++)
		bounds[b] = dp_lat_bounds_ms[b] / 1000.0;
	ctl_prom_family(out, "shoal_client_server_latency_seconds", "histogram",
			"server time of answered frames: first packet in to RESULT out");
	for (unsigned i = 0; i < sv->n_reg; i++) {
		const struct dp_client_stats *st = &sv->snap[r[i].snap_idx].st;
		srv_client_label(&r[i].key, lab, sizeof(lab));
		ctl_prom_histogram(out, "shoal_client_server_latency_seconds", lab, bounds,
				   st->lat_hist, DP_LAT_BUCKETS - 1, (double)st->lat_sum_us * 1e-6);
	}
	uint64_t all[DP_LAT_BUCKETS] = {0}, all_sum = 0;
	for (unsigned q = 0; q < s->nq; q++) {
		uint64_t h[DP_LAT_BUCKETS], sum;
		dp_latency_get(s->q[q].ctx, h, &sum);
		for (int b = 0; b < DP_LAT_BUCKETS; b++)
			all[b] += h[b];
		all_sum += sum;
	}
	ctl_prom_family(out, "shoal_server_latency_seconds", "histogram",
			"server time of every RESULT sent (clients that left included)");
	ctl_prom_histogram(out, "shoal_server_latency_seconds", NULL, bounds, all,
			   DP_LAT_BUCKETS - 1, (double)all_sum * 1e-6);
	/* instances */
	static const struct {
		const char *name, *type, *help;
	} inf[] = {
		{"shoal_instance_variant", "gauge", "input size it runs (0: out of service)"},
		{"shoal_instance_target_batch", "gauge", "batch the scheduler chose"},
		{"shoal_instance_queue_depth", "gauge", "frames waiting"},
		{"shoal_instance_busy_seconds_total", "counter", "device time of its batches"},
		{"shoal_instance_frames_done_total", "counter", "frames run"},
		{"shoal_instance_frames_late_total", "counter", "frames dropped as late before running"},
		{"shoal_instance_latency_ratio", "gauge", "measured / profiled batch latency"},
	};
	int ni = (int)s->o.instances;
	for (unsigned f = 0; f < sizeof(inf) / sizeof(inf[0]); f++) {
		ctl_prom_family(out, inf[f].name, inf[f].type, inf[f].help);
		for (int i = 0; i < ni; i++) {
			struct gpu_exec_instance_stats st;
			if (gpu_exec_instance_stats(sv->ex, i, &st) != 0)
				continue;
			double val;
			switch (f) {
			case 0: val = st.size; break;
			case 1: val = st.batch; break;
			case 2: val = st.queued; break;
			case 3: val = (double)st.busy_ns * 1e-9; break;
			case 4: val = (double)st.frames_done; break;
			case 5: val = (double)st.frames_late; break;
			default: val = st.ratio; break;
			}
			snprintf(lab, sizeof(lab), "instance=\"%d\"", i);
			ctl_prom_sample(out, inf[f].name, lab, val);
		}
	}
	ctl_prom_family(out, "shoal_instance_batches_total", "counter", "batches run, by size");
	for (int i = 0; i < ni; i++) {
		struct gpu_exec_instance_stats st;
		if (gpu_exec_instance_stats(sv->ex, i, &st) != 0)
			continue;
		for (int b = 0; b < GPU_EXEC_MAX_BATCH; b++) {
			if (!st.batch_hist[b])
				continue;
			snprintf(lab2, sizeof(lab2), "instance=\"%d\",batch=\"%d\"", i, b + 1);
			ctl_prom_sample(out, "shoal_instance_batches_total", lab2,
					(double)st.batch_hist[b]);
		}
	}
	uint64_t busy, elapsed;
	gpu_exec_busy(sv->ex, &busy, &elapsed);
	snprintf(lab, sizeof(lab), "backend=\"%s\"", sv->backend);
	ctl_prom_family(out, "shoal_device_busy_seconds_total", "counter",
			"time the device ran batches");
	ctl_prom_sample(out, "shoal_device_busy_seconds_total", lab, (double)busy * 1e-9);
	ctl_prom_family(out, "shoal_device_seconds_total", "counter", "time since the start");
	ctl_prom_sample(out, "shoal_device_seconds_total", lab, (double)elapsed * 1e-9);
	/* scheduler */
	const struct ctl_decision *d = sv->last >= 0 ? sv->dec[sv->last] : NULL;
	ctl_prom_family(out, "shoal_sched_plans_total", "counter", "scheduler decisions applied");
	ctl_prom_sample(out, "shoal_sched_plans_total", NULL, (double)sv->plans_applied);
	ctl_prom_family(out, "shoal_sched_objective", "gauge",
			"fps-weighted accuracy of the applied decision (0..1)");
	ctl_prom_sample(out, "shoal_sched_objective", NULL, d ? d->objective : 0);
	ctl_prom_family(out, "shoal_sched_solve_seconds", "gauge", "time of the last solve");
	ctl_prom_sample(out, "shoal_sched_solve_seconds", NULL, sv->solve_ms_last * 1e-3);
	ctl_prom_family(out, "shoal_sched_latency_ratio", "gauge",
			"measured/profiled ratio the last plan used, times its margin");
	ctl_prom_sample(out, "shoal_sched_latency_ratio", NULL, sv->ratio);
	ctl_prom_family(out, "shoal_sched_margin", "gauge",
			"safety factor on the ratio, raised while frames are dropped late");
	ctl_prom_sample(out, "shoal_sched_margin", NULL, sv->margin);
	ctl_prom_family(out, "shoal_sched_solve_seconds_max", "gauge", "longest solve so far");
	ctl_prom_sample(out, "shoal_sched_solve_seconds_max", NULL, sv->solve_ms_max * 1e-3);
	ctl_prom_family(out, "shoal_sched_device_share", "gauge",
			"instances in use the last adaptive plan divided the device among");
	ctl_prom_sample(out, "shoal_sched_device_share", NULL, sv->share);
	ctl_prom_family(out, "shoal_sched_plan_errors_total", "counter",
			"plans the scheduler refused (bad input)");
	ctl_prom_sample(out, "shoal_sched_plan_errors_total", NULL, (double)sv->plan_errors);
	ctl_prom_family(out, "shoal_assigns_sent_total", "counter", "ASSIGN messages queued");
	ctl_prom_sample(out, "shoal_assigns_sent_total", NULL, (double)sv->assigns_sent);
	ctl_prom_family(out, "shoal_assigns_queue_full_total", "counter",
			"ASSIGNs not queued (message ring full; retried next round)");
	ctl_prom_sample(out, "shoal_assigns_queue_full_total", NULL, (double)sv->assign_full);
	ctl_prom_family(out, "shoal_clients", "gauge", "clients in the tables");
	ctl_prom_sample(out, "shoal_clients", NULL, (double)sv->n_reg);
	ctl_prom_family(out, "shoal_staging_free_slots", "gauge", "free staging slots");
	ctl_prom_sample(out, "shoal_staging_free_slots", NULL,
			(double)gpu_staging_free_count(s->staging));
}

void srv_serve_stats_line(const struct srv *s)
{
	const struct srv_serve *sv = s->sv;
	printf("serve: clients=%u plans=%llu ratio=%.2f margin=%.2f", sv->n_reg,
	       (unsigned long long)sv->plans_applied, sv->ratio, sv->margin);
	for (int i = 0; i < (int)s->o.instances; i++) {
		struct gpu_exec_instance_stats st;
		if (gpu_exec_instance_stats(sv->ex, i, &st) == 0)
			printf(" i%d=%d/b%d/q%u/done%llu/late%llu", i, st.size, st.batch, st.queued,
			       (unsigned long long)st.frames_done, (unsigned long long)st.frames_late);
	}
	printf("\n");
	fflush(stdout);
}

void srv_serve_final_stats(struct srv *s)
{
	struct srv_serve *sv = s->sv;
	uint64_t v[DP_CNT__COUNT];
	srv_counters_sum(s, v);
	uint64_t hist[DP_LAT_BUCKETS] = {0};
	/* the final snapshots (dp_run publishes one when it stops) through the registry, so that
	 * clients that left since the last tick join the gone ring; then every client seen */
	srv_clients_gather(s);
	const struct srv_known *r = sv->reg[sv->cur_reg];
	uint64_t first_gone = sv->n_gone > SRV_GONE_MAX ? sv->n_gone - SRV_GONE_MAX : 0;
	if (first_gone)
		printf("clients: %llu left before the end are not listed (only the latest %d)\n",
		       (unsigned long long)first_gone, SRV_GONE_MAX);
	for (uint64_t g = first_gone; g < sv->n_gone + sv->n_reg; g++) {
		const struct srv_known *k = g < sv->n_gone ? &sv->gone[g % SRV_GONE_MAX]
							   : &r[g - sv->n_gone];
		const struct dp_client_stats *st = &k->st;
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &k->key.ip, ip, sizeof(ip));
		printf("client: addr=%s:%u ssrc=0x%08x managed=%u slo_ms=%u frames=%llu "
		       "results=%llu dropped=%llu late=%llu missed=%llu p50_ms=%.0f p99_ms=%.0f "
		       "variant=%d state=%s\n", ip, k->key.port, k->key.ssrc, st->managed,
		       st->slo_ms, (unsigned long long)(st->frames_complete + st->frames_incomplete),
		       (unsigned long long)st->results_sent,
		       (unsigned long long)(st->frames_dropped + st->frames_incomplete),
		       (unsigned long long)st->frames_late,
		       (unsigned long long)(st->results_late + st->frames_late),
		       srv_hist_quantile(st->lat_hist, 0.5), srv_hist_quantile(st->lat_hist, 0.99),
		       k->instance >= 0 ? k->size : 0, g < sv->n_gone ? "left" : "present");
	}
	for (int i = 0; i < (int)s->o.instances; i++) {
		struct gpu_exec_instance_stats st;
		if (gpu_exec_instance_stats(sv->ex, i, &st) != 0)
			continue;
		printf("instance: id=%d size=%d batch=%d done=%llu late=%llu overload=%llu "
		       "failed=%llu batches=%llu busy_s=%.3f ratio=%.2f batch_hist=", i, st.size,
		       st.batch, (unsigned long long)st.frames_done, (unsigned long long)st.frames_late,
		       (unsigned long long)st.frames_overload, (unsigned long long)st.frames_failed,
		       (unsigned long long)st.batches, (double)st.busy_ns * 1e-9, st.ratio);
		int first = 1;
		for (int b = 0; b < GPU_EXEC_MAX_BATCH; b++)
			if (st.batch_hist[b]) {
				printf("%s%d:%llu", first ? "" : ",", b + 1,
				       (unsigned long long)st.batch_hist[b]);
				first = 0;
			}
		printf("\n");
	}
	uint64_t busy, elapsed;
	gpu_exec_busy(sv->ex, &busy, &elapsed);
	long rss_kb, huge_kb;
	srv_mem_kb(&rss_kb, &huge_kb);
	double secs = (double)(s->t_stop - s->t_start) * 1e-9;
	/* totals from the data-plane counters and histograms: clients that left count too */
	for (unsigned q = 0; q < s->nq; q++) {
		uint64_t h[DP_LAT_BUCKETS];
		dp_latency_get(s->q[q].ctx, h, NULL);
		for (int b = 0; b < DP_LAT_BUCKETS; b++)
			hist[b] += h[b];
	}
	snprintf(sv->summary, sizeof(sv->summary),
		 "serve: frames=%llu results=%llu drops=%llu late=%llu missed=%llu "
		 "left_at_stop=%llu dispatched=%llu not_routed=%llu post_full=%llu plans=%llu "
		 "device_busy=%.3f p50_ms=%.0f p99_ms=%.0f seconds=%.3f rss_kb=%ld backend=%s",
		 (unsigned long long)(v[DP_CNT_FRAMES_COMPLETE] + v[DP_CNT_FRAMES_INCOMPLETE]),
		 (unsigned long long)v[DP_CNT_RESULTS_SENT],
		 (unsigned long long)v[DP_CNT_DROPS_SENT], (unsigned long long)v[DP_CNT_FRAMES_LATE],
		 (unsigned long long)(v[DP_CNT_RESULTS_LATE] + v[DP_CNT_FRAMES_LATE]),
		 (unsigned long long)s->sink_left_at_stop,
		 (unsigned long long)atomic_load(&sv->dispatched),
		 (unsigned long long)atomic_load(&sv->not_routed),
		 (unsigned long long)atomic_load(&sv->post_full),
		 (unsigned long long)sv->plans_applied,
		 elapsed ? (double)busy / (double)elapsed : 0.0, srv_hist_quantile(hist, 0.5),
		 srv_hist_quantile(hist, 0.99), secs, rss_kb, sv->backend);
}

void srv_serve_summary(const struct srv *s)
{
	if (s->sv)
		printf("%s\n", s->sv->summary);
}
