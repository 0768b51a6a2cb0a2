/* dp_decode — JPEG decode workers (dp.h, "JPEG decode workers").
 *
 * Poll lcores enqueue {context, frame descriptor} on one multi-producer/multi-consumer
 * rte_ring; plain pthreads (optionally pinned, one TurboJPEG handle each) dequeue, decode the
 * JFIF straight into a fresh slot of the context's staging pool as I420 (4:2:2 chroma averaged
 * in row pairs, in place), give the JFIF slot back and enqueue the decoded frame on the
 * context's consumer ring (multi-producer when a decoder is configured). Refusals go back to
 * the poll lcore as DROP messages through the context's post queue, so that only the poll
 * lcore touches its client table, its counters and its TX queue. Each worker counts in its own
 * cache line; readers load the counters atomically.
 *
 * The structures are in dp_int.h, with dp_decoder_submit (inline: the poll lcore's side).
 * ctx->dec_inflight counts the frames of a context held here (queued or being decoded); a
 * worker's last access to the context is the decrement, so dp_destroy may free the context
 * once it reads 0. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_attr_setaffinity_np, CPU_SET */
#endif
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <turbojpeg.h>

#include <rte_malloc.h>

#include "dataplane/dp_int.h"

/* single writer: a plain add stored atomically (no torn value for readers) */
#define DP_DEC_ADD(w, field, n)                                                             \
	__atomic_store_n(&(w)->cnt.field, (w)->cnt.field + (n), __ATOMIC_RELAXED)

void dp_decoder_config_defaults(struct dp_decoder_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n_workers = 2;
	cfg->queue_size = 256;
	cfg->idle_sleep_max_us = 200;
}

static uint64_t dp_dec_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Planar 4:2:2 (U then V, w/2 x h each, after the w x h luma) becomes I420 in place: each
 * output chroma row is the rounded mean of two input rows. Output rows never overtake the rows
 * still to be read (U420 row r <= U422 row 2r; V420 starts before V422). */
static void dp_dec_422_to_420(uint8_t *y, unsigned w, unsigned h)
{
	size_t cw = w / 2, ysz = (size_t)w * h;
	for (unsigned p = 0; p < 2; p++) {
		const uint8_t *src = y + ysz + (size_t)p * cw * h;
		uint8_t *dst = y + ysz + (size_t)p * cw * (h / 2);
		for (unsigned r = 0; r < h / 2; r++) {
			const uint8_t *a = src + (size_t)2 * r * cw, *b = a + cw;
			uint8_t *o = dst + (size_t)r * cw;
			for (size_t x = 0; x < cw; x++)
				o[x] = (uint8_t)((a[x] + b[x] + 1) >> 1);
		}
	}
}

/* Decodes job j into a new slot; returns 0 and fills *out, or a dp_app_drop_reason. */
static uint8_t dp_dec_frame(struct dp_dec_worker *w, const struct dp_decode_job *j,
			    struct dp_frame *out)
{
	struct gpu_staging *st = j->ctx->cfg.staging;
	const struct dp_frame *in = &j->f;
	const uint8_t *jfif = gpu_staging_slot(st, in->slot) + in->offset;
	int width, height, sub, cs;
	if (tjDecompressHeader3(w->tj, jfif, in->len, &width, &height, &sub, &cs) != 0 ||
	    (sub != TJSAMP_420 && sub != TJSAMP_422) || width <= 0 || height <= 0 ||
	    (width & 1) || (height & 1)) {
		DP_DEC_ADD(w, corrupt, 1);
		return DP_APP_DROP_BAD_FRAME;
	}
	unsigned uw = (unsigned)width, uh = (unsigned)height;
	size_t ysz = (size_t)uw * uh, cw = uw / 2, ch = sub == TJSAMP_420 ? uh / 2 : uh;
	size_t need = ysz + 2 * cw * ch; /* 4:2:2 is decoded whole, then made 4:2:0 in place */
	if (need > gpu_staging_slot_size(st)) {
		DP_DEC_ADD(w, too_large, 1);
		return DP_APP_DROP_TOO_LARGE;
	}
	uint32_t slot;
	if (gpu_staging_get(st, &slot) != 0) {
		DP_DEC_ADD(w, no_slot, 1);
		return DP_APP_DROP_OVERLOAD;
	}
	uint8_t *y = gpu_staging_slot(st, slot);
	unsigned char *planes[3] = {y, y + ysz, y + ysz + cw * ch};
	int strides[3] = {width, (int)cw, (int)cw};
	uint64_t t0 = dp_dec_now_ns();
	/* warnings (corrupt entropy data, premature end) are errors: no half-grey images */
	if (tjDecompressToYUVPlanes(w->tj, jfif, in->len, planes, width, strides, height,
				    TJFLAG_STOPONWARNING) != 0) {
		gpu_staging_put(st, slot);
		DP_DEC_ADD(w, corrupt, 1);
		return DP_APP_DROP_BAD_FRAME;
	}
	if (sub == TJSAMP_422)
		dp_dec_422_to_420(y, uw, uh);
	uint64_t dt = dp_dec_now_ns() - t0;
	DP_DEC_ADD(w, decode_ns, dt);
	if (dt > w->cnt.decode_ns_max)
		__atomic_store_n(&w->cnt.decode_ns_max, dt, __ATOMIC_RELAXED);
	*out = *in;
	out->format = DP_FRAME_RAW420;
	out->width = (uint16_t)uw;
	out->height = (uint16_t)uh;
	out->slot = slot;
	out->offset = 0;
	out->len = (uint32_t)(ysz + 2 * cw * (uh / 2));
	out->full_range = 1;
	return 0;
}

static void dp_dec_job(struct dp_dec_worker *w, const struct dp_decode_job *j)
{
	struct dp_ctx *ctx = j->ctx;
	struct gpu_staging *st = ctx->cfg.staging;
	struct dp_frame d;
	uint8_t reason = dp_dec_frame(w, j, &d);
	gpu_staging_put(st, j->f.slot); /* the JFIF is no longer needed */
	if (reason == 0) {
		if (rte_ring_enqueue_elem(ctx->frames, &d, sizeof(d)) == 0) {
			DP_DEC_ADD(w, decoded, 1);
		} else {
			gpu_staging_put(st, d.slot);
			DP_DEC_ADD(w, ring_full, 1);
			reason = DP_APP_DROP_OVERLOAD;
		}
	}
	if (reason != 0 &&
	    dp_post_drop(ctx, &j->f.client, j->f.rtp_ts, reason, j->f.wire_bytes) != 0)
		DP_DEC_ADD(w, drops_unsent, 1);
	/* last access to the context */
	__atomic_fetch_sub(&ctx->dec_inflight, 1, __ATOMIC_RELEASE);
}

static void *dp_dec_main(void *arg)
{
	struct dp_dec_worker *w = arg;
	struct dp_decoder *dec = w->dec;
	unsigned sleep_us = 0;
	struct dp_decode_job j;
	while (!__atomic_load_n(&dec->stop, __ATOMIC_ACQUIRE)) {
		if (rte_ring_dequeue_elem(dec->jobs, &j, sizeof(j)) == 0) {
			sleep_us = 0;
			dp_dec_job(w, &j);
			continue;
		}
		/* idle: back off so that a quiet server leaves its cores alone */
		sleep_us = sleep_us ? sleep_us * 2 : 1;
		if (sleep_us > dec->cfg.idle_sleep_max_us)
			sleep_us = dec->cfg.idle_sleep_max_us ? dec->cfg.idle_sleep_max_us : 1;
		struct timespec ts = {0, (long)sleep_us * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct dp_decoder *dp_decoder_create(const struct dp_decoder_config *cfg)
{
	if (!cfg || !cfg->name || cfg->n_workers == 0 || cfg->n_workers > DP_DEC_MAX_WORKERS ||
	    !rte_is_power_of_2(cfg->queue_size) || cfg->queue_size < 2 ||
	    cfg->idle_sleep_max_us > 1000000) {
		fprintf(stderr, "dp_decoder_create: bad configuration\n");
		return NULL;
	}
	struct dp_decoder *dec = rte_zmalloc("dp_decoder", sizeof(*dec), RTE_CACHE_LINE_SIZE);
	if (!dec) {
		fprintf(stderr, "dp_decoder_create: out of memory\n");
		return NULL;
	}
	dec->cfg = *cfg;
	if (cfg->cpus) {
		for (unsigned i = 0; i < cfg->n_workers; i++) {
			if (cfg->cpus[i] < 0 || cfg->cpus[i] >= CPU_SETSIZE) {
				fprintf(stderr, "dp_decoder_create: bad CPU %d for worker %u\n",
					cfg->cpus[i], i);
				rte_free(dec);
				return NULL;
			}
			dec->cpus[i] = cfg->cpus[i];
		}
		dec->pinned = 1;
	}
	dec->cfg.cpus = NULL; /* borrowed pointer not kept */
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "dpd_%s", cfg->name);
	dec->jobs = rte_ring_create_elem(name, sizeof(struct dp_decode_job), cfg->queue_size,
					 SOCKET_ID_ANY, 0 /* multi-producer, multi-consumer */);
	if (!dec->jobs) {
		fprintf(stderr, "dp_decoder_create: ring %s: %s\n", name, rte_strerror(rte_errno));
		goto fail;
	}
	for (unsigned i = 0; i < cfg->n_workers; i++) {
		struct dp_dec_worker *w = &dec->w[i];
		w->dec = dec;
		w->idx = i;
		w->tj = tjInitDecompress();
		if (!w->tj) {
			fprintf(stderr, "dp_decoder_create: TurboJPEG: %s\n", tjGetErrorStr());
			goto fail;
		}
	}
	for (unsigned i = 0; i < cfg->n_workers; i++) {
		struct dp_dec_worker *w = &dec->w[i];
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		int rc = 0;
		if (dec->pinned) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(dec->cpus[i], &set);
			rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		if (rc == 0)
			rc = pthread_create(&w->th, &attr, dp_dec_main, w);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			fprintf(stderr, "dp_decoder_create: worker %u%s: %s\n", i,
				dec->pinned ? " (pinned)" : "", strerror(rc));
			goto fail;
		}
		w->started = 1;
		char tname[16];
		snprintf(tname, sizeof(tname), "dp-jpeg-%u", i % DP_DEC_MAX_WORKERS);
		pthread_setname_np(w->th, tname);
	}
	return dec;
fail:
	dp_decoder_destroy(dec);
	return NULL;
}

void dp_decoder_destroy(struct dp_decoder *dec)
{
	if (!dec)
		return;
	__atomic_store_n(&dec->stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < DP_DEC_MAX_WORKERS; i++) {
		if (dec->w[i].started)
			pthread_join(dec->w[i].th, NULL);
		if (dec->w[i].tj)
			tjDestroy(dec->w[i].tj);
	}
	if (dec->jobs) { /* frames nobody decoded: their slots go back, their contexts are told */
		struct dp_decode_job j;
		while (rte_ring_dequeue_elem(dec->jobs, &j, sizeof(j)) == 0) {
			gpu_staging_put(j.ctx->cfg.staging, j.f.slot);
			__atomic_fetch_sub(&j.ctx->dec_inflight, 1, __ATOMIC_RELEASE);
		}
		rte_ring_free(dec->jobs);
	}
	rte_free(dec);
}

void dp_decoder_stats_get(const struct dp_decoder *dec, struct dp_decoder_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < dec->cfg.n_workers; i++) {
		const struct dp_decoder_stats *c = &dec->w[i].cnt;
		out->decoded += __atomic_load_n(&c->decoded, __ATOMIC_RELAXED);
		out->corrupt += __atomic_load_n(&c->corrupt, __ATOMIC_RELAXED);
		out->too_large += __atomic_load_n(&c->too_large, __ATOMIC_RELAXED);
		out->no_slot += __atomic_load_n(&c->no_slot, __ATOMIC_RELAXED);
		out->ring_full += __atomic_load_n(&c->ring_full, __ATOMIC_RELAXED);
		out->drops_unsent += __atomic_load_n(&c->drops_unsent, __ATOMIC_RELAXED);
		out->decode_ns += __atomic_load_n(&c->decode_ns, __ATOMIC_RELAXED);
		uint64_t mx = __atomic_load_n(&c->decode_ns_max, __ATOMIC_RELAXED);
		if (mx > out->decode_ns_max)
			out->decode_ns_max = mx;
	}
}

unsigned dp_decoder_queued(const struct dp_decoder *dec) { return rte_ring_count(dec->jobs); }
