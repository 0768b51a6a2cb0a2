/* shoal-gen's per-frame accounting (perf_gen_lat.h): send times by RTP timestamp, matching of
 * RESULT/DROP, ASSIGNs, latency histograms, losses and SLO misses. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "perf/perf_gen_lat.h"

enum perf_lat_state {
	PERF_LAT_EMPTY,
	PERF_LAT_SENDING, /* first packet out, last one not yet */
	PERF_LAT_PENDING, /* waiting for its RESULT or DROP */
	PERF_LAT_DONE,    /* answered or counted lost */
};

#define PERF_LAT_SLOTS_BUDGET (8u << 20) /* ring slots for all clients together (128 MiB) */
#define PERF_LAT_HIST_MIN_MS 0.1
#define PERF_LAT_HIST_STEP 1.05

static uint32_t perf_lat_pow2(double v)
{
	uint32_t r = 1;
	while (r < v && r < (1u << 30))
		r <<= 1;
	return r;
}

struct perf_lat *perf_lat_create(unsigned n_clients, double fps, double slo_ms, int per_client)
{
	if (n_clients == 0 || !(slo_ms > 0))
		return NULL;
	struct perf_lat *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->n_clients = n_clients;
	uint64_t slo_ns = (uint64_t)(slo_ms * 1e6);
	uint64_t timeout_ns = slo_ns > PERF_LAT_TIMEOUT_NS ? slo_ns : PERF_LAT_TIMEOUT_NS;
	/* room for every frame a client can have waiting within the timeout, within a budget;
	 * an unpaced client gets its share of the budget */
	uint32_t cap = perf_lat_pow2(PERF_LAT_SLOTS_BUDGET / n_clients + 1) / 2;
	if (cap > 65536)
		cap = 65536;
	if (cap < 16)
		cap = 16;
	uint32_t want = fps > 0 ? perf_lat_pow2(fps * (timeout_ns * 1e-9) * 1.25 + 8) : cap;
	uint32_t slots = want < cap ? want : cap;
	if (slots < 16)
		slots = 16;
	l->mask = slots - 1;
	l->cl = calloc(n_clients, sizeof(*l->cl));
	l->slots = calloc((size_t)n_clients * slots, sizeof(*l->slots));
	if (per_client)
		l->hists = calloc(n_clients, sizeof(*l->hists));
	if (!l->cl || !l->slots || (per_client && !l->hists)) {
		perf_lat_destroy(l);
		return NULL;
	}
	for (unsigned i = 0; i < n_clients; i++) {
		l->cl[i].ring = l->slots + (size_t)i * slots;
		l->cl[i].hist = per_client ? &l->hists[i] : NULL;
		l->cl[i].slo_ns = slo_ns;
		l->cl[i].timeout_ns = timeout_ns;
	}
	return l;
}

void perf_lat_client_set(struct perf_lat *l, unsigned i, double slo_ms,
			 struct perf_lat_hist *group)
{
	struct perf_lat_client *c = &l->cl[i];
	c->slo_ns = (uint64_t)(slo_ms * 1e6);
	c->timeout_ns = c->slo_ns > PERF_LAT_TIMEOUT_NS ? c->slo_ns : PERF_LAT_TIMEOUT_NS;
	c->group = group;
}

void perf_lat_destroy(struct perf_lat *l)
{
	if (!l)
		return;
	free(l->cl);
	free(l->slots);
	free(l->hists);
	free(l);
}

void perf_lat_frame_begin(struct perf_lat *l, unsigned i, uint32_t ts, uint64_t now)
{
	struct perf_lat_client *c = &l->cl[i];
	uint32_t k = (ts / PERF_LAT_TS_STEP) & l->mask;
	struct perf_lat_slot *s = &c->ring[k];
	if (s->state == PERF_LAT_PENDING) /* still unanswered a ring ago: given up */
		c->lost++;
	*s = (struct perf_lat_slot){.sent_ns = now, .ts = ts, .state = PERF_LAT_SENDING};
	c->head = k;
}

void perf_lat_frame_end(struct perf_lat *l, unsigned i, uint64_t now)
{
	struct perf_lat_client *c = &l->cl[i];
	struct perf_lat_slot *s = &c->ring[c->head];
	if (s->state == PERF_LAT_SENDING) {
		s->state = PERF_LAT_PENDING;
		c->end_ns = now;
		c->end_ts = s->ts;
		c->sent++;
	}
}

void perf_lat_frame_abandon(struct perf_lat *l, unsigned i)
{
	struct perf_lat_client *c = &l->cl[i];
	if (c->ring[c->head].state == PERF_LAT_SENDING)
		c->ring[c->head].state = PERF_LAT_EMPTY;
}

static void perf_lat_hist_add(struct perf_lat_hist *h, uint64_t ns)
{
	double ms = ns * 1e-6;
	unsigned b = 0;
	if (ms > PERF_LAT_HIST_MIN_MS) {
		double x = log(ms / PERF_LAT_HIST_MIN_MS) / log(PERF_LAT_HIST_STEP);
		b = x >= PERF_LAT_BUCKETS - 1 ? PERF_LAT_BUCKETS - 1 : (unsigned)x;
	}
	h->b[b]++;
	h->n++;
}

double perf_lat_quantile(const struct perf_lat_hist *h, double q)
{
	if (!h || h->n == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)h->n), acc = 0;
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < PERF_LAT_BUCKETS; b++) {
		acc += h->b[b];
		if (acc >= want)
			return PERF_LAT_HIST_MIN_MS * pow(PERF_LAT_HIST_STEP, b + 0.5);
	}
	return PERF_LAT_HIST_MIN_MS * pow(PERF_LAT_HIST_STEP, PERF_LAT_BUCKETS - 0.5);
}

/* The slot waiting for an answer to frame ts of client c, or NULL. */
static struct perf_lat_slot *perf_lat_match(struct perf_lat *l, struct perf_lat_client *c,
					    uint32_t ts)
{
	struct perf_lat_slot *s = &c->ring[(ts / PERF_LAT_TS_STEP) & l->mask];
	return s->state == PERF_LAT_PENDING && s->ts == ts ? s : NULL;
}

static void perf_lat_app(struct perf_lat *l, int client, const struct dp_app_msg *m,
			 uint64_t now)
{
	uint32_t i = m->ssrc - PERF_LAT_SSRC0;
	if (i >= l->n_clients || (client >= 0 && i != (uint32_t)client)) {
		l->stray++;
		return;
	}
	struct perf_lat_client *c = &l->cl[i];
	struct perf_lat_slot *s;
	switch (m->kind) {
	case DP_APP_RESULT:
		if (!(s = perf_lat_match(l, c, m->u.result.rtp_ts))) {
			l->stray++; /* answered already, given up, or never sent */
			return;
		}
		uint64_t lat = now > s->sent_ns ? now - s->sent_ns : 0;
		if (c->end_ns && c->end_ts == s->ts) {
			/* round trip of the latest frame: from its last packet out to the RESULT
			 * back, less the server's time */
			uint64_t srv = (uint64_t)m->u.result.server_us * 1000;
			uint64_t rtt = now > c->end_ns + srv ? (now - c->end_ns - srv) / 1000 : 0;
			if (rtt > UINT32_MAX)
				rtt = UINT32_MAX;
			c->rtt_us = c->rtt_us ? (uint32_t)(((uint64_t)c->rtt_us * 7 + rtt) / 8)
					      : (uint32_t)(rtt ? rtt : 1);
		}
		s->state = PERF_LAT_DONE;
		c->results++;
		if (lat > c->slo_ns)
			c->late++;
		perf_lat_hist_add(&l->hist, lat);
		if (c->hist)
			perf_lat_hist_add(c->hist, lat);
		if (c->group)
			perf_lat_hist_add(c->group, lat);
		return;
	case DP_APP_DROP:
		if (!(s = perf_lat_match(l, c, m->u.drop.rtp_ts))) {
			l->stray++;
			return;
		}
		s->state = PERF_LAT_DONE;
		c->drops++;
		l->drops_by_reason[m->u.drop.reason]++; /* 1..6: checked by the parser */
		return;
	case DP_APP_ASSIGN:
		l->assigns++;
		c->assigns++;
		if (!c->assigned && c->next_reg_ns) /* answered: the next REGISTER comes later */
			c->next_reg_ns += PERF_LAT_REG_KEEP_NS - PERF_LAT_REG_RETRY_NS;
		c->assigned = 1;
		c->assign_variant = m->u.assign.variant;
		c->assign_width = m->u.assign.width;
		c->assign_height = m->u.assign.height;
		return;
	default:
		l->stray++; /* client-to-server kinds */
	}
}

int perf_lat_rtcp_rx(struct perf_lat *l, int client, const uint8_t *buf, size_t len,
		     uint64_t now)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	struct dp_app_msg m;
	int n = 0, rc;
	while ((rc = dp_rtcp_next(buf, len, &off, &p)) == 1) {
		if (p.pt != DP_RTCP_PT_APP)
			continue;
		if (dp_app_parse(&p, &m) != 0) {
			l->bad++;
			continue;
		}
		perf_lat_app(l, client, &m, now);
		n++;
	}
	if (rc < 0)
		l->bad++;
	return n;
}

void perf_lat_sweep(struct perf_lat *l, uint64_t now, int all)
{
	for (unsigned i = 0; i < l->n_clients; i++) {
		struct perf_lat_client *c = &l->cl[i];
		for (;;) {
			struct perf_lat_slot *s = &c->ring[c->tail];
			if (s->state == PERF_LAT_PENDING) {
				if (!all && now - s->sent_ns < c->timeout_ns)
					break;
				s->state = PERF_LAT_DONE;
				c->lost++;
			}
			if (c->tail == c->head)
				break;
			c->tail = (c->tail + 1) & l->mask;
		}
	}
}

ssize_t perf_lat_register_build(uint8_t *buf, size_t cap, unsigned i, uint16_t slo_ms,
				double fps, uint16_t media_port, const struct dp_app_res *res,
				unsigned n_res)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REGISTER;
	m.ssrc = PERF_LAT_SSRC0 + i;
	double f = fps * 100 + 0.5;
	m.u.reg.slo_ms = slo_ms;
	m.u.reg.fps_x100 = (uint16_t)(f > 65535 ? 65535 : f);
	m.u.reg.media_port = media_port;
	m.u.reg.formats = DP_APP_FMT_JPEG;
	m.u.reg.n_res = (uint8_t)(n_res > DP_APP_MAX_RES ? DP_APP_MAX_RES : n_res);
	memcpy(m.u.reg.res, res, m.u.reg.n_res * sizeof(*res));
	return dp_app_build(buf, cap, &m);
}

ssize_t perf_lat_report_build(uint8_t *buf, size_t cap, const struct perf_lat *l, unsigned i,
			      uint32_t bw_kbps)
{
	const struct perf_lat_client *c = &l->cl[i];
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REPORT;
	m.ssrc = PERF_LAT_SSRC0 + i;
	m.u.report.bw_kbps = bw_kbps;
	m.u.report.rtt_us = c->rtt_us;
	m.u.report.frames_sent = (uint32_t)c->sent;
	m.u.report.results_rcvd = (uint32_t)c->results;
	return dp_app_build(buf, cap, &m);
}

void perf_lat_totals(const struct perf_lat *l, struct perf_lat_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < l->n_clients; i++) {
		const struct perf_lat_client *c = &l->cl[i];
		t->sent += c->sent;
		t->results += c->results;
		t->late += c->late;
		t->drops += c->drops;
		t->lost += c->lost;
	}
	t->missed = t->late + t->drops + t->lost;
}

void perf_lat_print_rtcp(const struct perf_lat *l, FILE *f)
{
	struct perf_lat_totals t;
	perf_lat_totals(l, &t);
	const uint64_t *d = l->drops_by_reason;
	fprintf(f,
		"gen: rtcp registers=%llu reports=%llu assigns=%llu late_results=%llu drop_late=%llu "
		"drop_incomplete=%llu drop_overload=%llu drop_not_served=%llu drop_bad_frame=%llu "
		"drop_too_large=%llu stray=%llu bad=%llu\n",
		(unsigned long long)l->registers_sent, (unsigned long long)l->reports_sent,
		(unsigned long long)l->assigns,
		(unsigned long long)t.late, (unsigned long long)d[DP_APP_DROP_LATE],
		(unsigned long long)d[DP_APP_DROP_INCOMPLETE],
		(unsigned long long)d[DP_APP_DROP_OVERLOAD],
		(unsigned long long)d[DP_APP_DROP_NOT_SERVED],
		(unsigned long long)d[DP_APP_DROP_BAD_FRAME],
		(unsigned long long)d[DP_APP_DROP_TOO_LARGE], (unsigned long long)l->stray,
		(unsigned long long)l->bad);
}

int perf_lat_write_csv(const struct perf_lat *l, const char *path, const double *bw_mbps,
		       const struct perf_lat_csv_class *cls)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "client,ssrc,sent,results,drops,lost,missed,p50_ms,p99_ms%s%s\n",
		bw_mbps ? ",bw_mbps" : "", cls ? ",fps,slo_ms,width,height" : "");
	for (unsigned i = 0; i < l->n_clients; i++) {
		const struct perf_lat_client *c = &l->cl[i];
		fprintf(f, "%u,%u,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f", i, PERF_LAT_SSRC0 + i,
			(unsigned long long)c->sent, (unsigned long long)c->results,
			(unsigned long long)c->drops, (unsigned long long)c->lost,
			(unsigned long long)(c->late + c->drops + c->lost),
			perf_lat_quantile(c->hist, 0.5), perf_lat_quantile(c->hist, 0.99));
		if (bw_mbps)
			fprintf(f, ",%.3f", bw_mbps[i]);
		if (cls)
			fprintf(f, ",%g,%g,%u,%u", cls[i].fps, cls[i].slo_ms, cls[i].width,
				cls[i].height);
		fputc('\n', f);
	}
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}
