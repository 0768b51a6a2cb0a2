/* dp_reasm — per-client frame reassembly by RTP timestamp, straight into a staging slot.
 *
 * A client has up to cfg.frames_per_client frames open at once (so the tail of one frame may
 * arrive after the head of the next). A packet whose timestamp matches no open frame opens
 * one, unless the timestamp is not newer than the newest frame already finished (a straggler:
 * counted stale and dropped). When every frame is open the oldest is abandoned. Duplicates
 * are found by sequence number (bitmap of seq mod DP_FRAME_MAX_PKTS per frame). A frame still
 * open frame_timeout_ns after its first packet is abandoned and DROP(INCOMPLETE) is sent.
 * A complete frame goes to the consumer ring, or, when it is JPEG and the context has a decoder,
 * to the decode workers (dp_decode.c), which deliver it decoded. */
#include "dataplane/dp_int.h"

static enum dp_raw_sampling dp_sampling_of(uint8_t format)
{
	switch (format) {
	case DP_FRAME_RAW422:
		return DP_RAW_SAMPLING_YCBCR422;
	case DP_FRAME_RAWRGB:
		return DP_RAW_SAMPLING_RGB;
	default:
		return DP_RAW_SAMPLING_YCBCR420;
	}
}

static void dp_mark_done(struct dp_client *c, uint32_t ts)
{
	if (!c->have_done || (int32_t)(ts - c->last_done_ts) > 0)
		c->last_done_ts = ts;
	c->have_done = 1;
}

/* Sends DROP unless it would be larger than the traffic that earned it (no amplification). */
void dp_drop_send(struct dp_ctx *ctx, struct dp_client *c, uint32_t ts, uint8_t reason,
		  uint32_t earned)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_DROP;
	m.ssrc = c->key.ssrc;
	m.u.drop.rtp_ts = ts;
	m.u.drop.reason = reason;
	ssize_t sz = dp_app_size(&m);
	if (sz <= 0 || (uint32_t)sz > earned)
		return;
	if (dp_pkt_send_app(ctx, c, &m) == 0)
		DP_CNT_INC(ctx, DP_CNT_DROPS_SENT);
}

void dp_reasm_abandon(struct dp_ctx *ctx, struct dp_client *c, struct dp_reasm *fr,
		      uint8_t reason)
{
	if (!fr->active)
		return;
	gpu_staging_put(ctx->cfg.staging, fr->slot);
	fr->active = 0;
	dp_mark_done(c, fr->rtp_ts);
	switch (reason) {
	case 0:
		return;
	case DP_APP_DROP_INCOMPLETE:
		c->st.frames_incomplete++;
		DP_CNT_INC(ctx, DP_CNT_FRAMES_INCOMPLETE);
		break;
	case DP_APP_DROP_TOO_LARGE:
		c->st.frames_dropped++;
		DP_CNT_INC(ctx, DP_CNT_FRAMES_TOO_LARGE);
		break;
	case DP_APP_DROP_OVERLOAD:
		c->st.frames_dropped++;
		DP_CNT_INC(ctx, DP_CNT_FRAMES_OVERLOAD);
		break;
	default:
		c->st.frames_dropped++;
		DP_CNT_INC(ctx, DP_CNT_FRAMES_BAD);
		break;
	}
	dp_drop_send(ctx, c, fr->rtp_ts, reason, fr->wire_bytes);
}

/* Drops a frame that never got a slot (counted like an abandoned one). */
static void dp_refuse(struct dp_ctx *ctx, struct dp_client *c, uint32_t ts, uint8_t reason,
		      uint32_t earned)
{
	dp_mark_done(c, ts);
	c->st.frames_dropped++;
	DP_CNT_INC(ctx, reason == DP_APP_DROP_TOO_LARGE ? DP_CNT_FRAMES_TOO_LARGE
							: DP_CNT_FRAMES_OVERLOAD);
	dp_drop_send(ctx, c, ts, reason, earned);
}

static struct dp_reasm *dp_frame_open(struct dp_ctx *ctx, struct dp_client *c, uint32_t ts,
				      uint8_t format, uint32_t udp_len, uint64_t now_ns)
{
	unsigned n = ctx->cfg.frames_per_client;
	struct dp_reasm *fr = NULL, *oldest = NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!c->fr[i].active) {
			fr = &c->fr[i];
			break;
		}
		if (!oldest || (int32_t)(c->fr[i].rtp_ts - oldest->rtp_ts) < 0)
			oldest = &c->fr[i];
	}
	if (!fr) {
		if ((int32_t)(ts - oldest->rtp_ts) < 0) { /* older than every open frame */
			c->st.stale_packets++;
			DP_CNT_INC(ctx, DP_CNT_DROP_STALE);
			return NULL;
		}
		dp_reasm_abandon(ctx, c, oldest, DP_APP_DROP_INCOMPLETE);
		fr = oldest;
	}
	struct gpu_staging *st = ctx->cfg.staging;
	size_t cap = gpu_staging_slot_size(st);
	uint32_t raw_size = 0;
	if (format != DP_FRAME_JPEG) {
		ssize_t sz = dp_raw_frame_size(dp_sampling_of(format), c->raw_width,
					       c->raw_height);
		if (sz <= 0 || (size_t)sz > cap) {
			dp_refuse(ctx, c, ts, DP_APP_DROP_TOO_LARGE, udp_len);
			return NULL;
		}
		raw_size = (uint32_t)sz;
	}
	uint32_t slot;
	if (gpu_staging_get(st, &slot) != 0) {
		dp_refuse(ctx, c, ts, DP_APP_DROP_OVERLOAD, udp_len);
		return NULL;
	}
	fr->active = 1;
	fr->format = format;
	fr->have_marker = 0;
	fr->rtp_ts = ts;
	fr->slot = slot;
	fr->n_pkts = 0;
	fr->wire_bytes = 0;
	fr->raw_bytes = 0;
	fr->raw_size = raw_size;
	fr->first_ns = fr->last_ns = now_ns;
	memset(fr->seen, 0, sizeof(fr->seen));
	if (format == DP_FRAME_JPEG) {
		fr->width = fr->height = 0;
		if (dp_jpeg_frame_init(&fr->jpeg, gpu_staging_slot(st, slot), cap) != 0) {
			dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_TOO_LARGE);
			return NULL;
		}
	} else {
		fr->width = c->raw_width;
		fr->height = c->raw_height;
	}
	return fr;
}

/* The client's upload rate as the data plane sees it: a frame's packets leave the client
 * back to back, so their spread at arrival (first to last packet) is the time the link took
 * for all but the first packet. Smoothed over frames (1/4 new); frames of one packet, or
 * spread over less than 100 us (no link in the way), say nothing. */
static void dp_upload_rate(struct dp_client *c, const struct dp_reasm *fr, uint64_t now_ns)
{
	uint64_t dt = now_ns > fr->first_ns ? now_ns - fr->first_ns : 0;
	if (fr->n_pkts < 2 || dt < 100000)
		return;
	double bytes = (double)fr->wire_bytes * (double)(fr->n_pkts - 1) / (double)fr->n_pkts;
	double kbps = bytes * 8e6 / (double)dt;
	double prev = c->st.upload_kbps;
	c->st.upload_kbps = (uint32_t)(prev > 0 ? 0.75 * prev + 0.25 * kbps : kbps);
}

static void dp_frame_deliver(struct dp_ctx *ctx, struct dp_client *c, struct dp_reasm *fr,
			     uint64_t now_ns)
{
	struct gpu_staging *st = ctx->cfg.staging;
	uint8_t *base = gpu_staging_slot(st, fr->slot);
	if (c->refuse_reason) { /* the consumer will not serve this client: answer at once,
				 * before decoding or queueing costs anything */
		gpu_staging_put(st, fr->slot);
		fr->active = 0;
		dp_mark_done(c, fr->rtp_ts);
		c->st.frames_complete++;
		c->st.frames_dropped++;
		c->st.frames_refused++;
		c->post_dropped++;
		DP_CNT_INC(ctx, DP_CNT_FRAMES_COMPLETE);
		DP_CNT_INC(ctx, DP_CNT_FRAMES_NOT_ADMITTED);
		dp_drop_send(ctx, c, fr->rtp_ts, c->refuse_reason, fr->wire_bytes);
		return;
	}
	struct dp_frame d;
	memset(&d, 0, sizeof(d));
	if (fr->format == DP_FRAME_JPEG) {
		const uint8_t *img;
		size_t len;
		if (dp_jpeg_frame_finish(&fr->jpeg, &img, &len) != 0) {
			dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_BAD_FRAME);
			return;
		}
		d.offset = (uint32_t)(img - base);
		d.len = (uint32_t)len;
		d.width = fr->jpeg.width;
		d.height = fr->jpeg.height;
	} else {
		d.offset = 0;
		d.len = fr->raw_size;
		d.width = fr->width;
		d.height = fr->height;
	}
	d.client = c->key;
	d.rtp_ts = fr->rtp_ts;
	d.arrival_ns = fr->first_ns;
	d.complete_ns = now_ns;
	uint64_t slo = (uint64_t)c->st.slo_ms * 1000000ull;
	uint64_t back = (uint64_t)c->rtt_us * 500ull; /* half an RTT for the way back */
	d.deadline_ns = fr->first_ns + (slo > back ? slo - back : 0);
	d.format = fr->format;
	d.slot = fr->slot;
	d.wire_bytes = fr->wire_bytes;
	if (d.format == DP_FRAME_JPEG && ctx->cfg.decoder) {
		if (dp_decoder_submit(ctx->cfg.decoder, ctx, &d) != 0) {
			dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_OVERLOAD);
			return;
		}
		DP_CNT_INC(ctx, DP_CNT_FRAMES_TO_DECODER);
	} else if (rte_ring_enqueue_elem(ctx->frames, &d, sizeof(d)) != 0) {
		/* single producer, or multi-producer when decode workers deliver too */
		dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_OVERLOAD);
		return;
	}
	fr->active = 0; /* the slot now belongs to the consumer (or a decode worker) */
	dp_mark_done(c, fr->rtp_ts);
	dp_upload_rate(c, fr, now_ns);
	c->st.frames_complete++;
	DP_CNT_INC(ctx, DP_CNT_FRAMES_COMPLETE);
}

void dp_reasm_rtp(struct dp_ctx *ctx, struct dp_client *c, const struct dp_rtp_hdr *h,
		  uint32_t udp_len, uint64_t now_ns)
{
	uint8_t format;
	if (h->payload_type == DP_RTP_PT_JPEG)
		format = DP_FRAME_JPEG;
	else if (h->payload_type == ctx->cfg.raw_pt)
		format = c->raw_format;
	else {
		DP_CNT_INC(ctx, DP_CNT_DROP_RTP_PT);
		return;
	}
	c->st.last_seen_ns = now_ns;

	struct dp_reasm *fr = NULL;
	for (unsigned i = 0; i < ctx->cfg.frames_per_client; i++)
		if (c->fr[i].active && c->fr[i].rtp_ts == h->timestamp) {
			fr = &c->fr[i];
			break;
		}
	if (!fr) {
		if (c->have_done && (int32_t)(h->timestamp - c->last_done_ts) <= 0) {
			c->st.stale_packets++;
			DP_CNT_INC(ctx, DP_CNT_DROP_STALE);
			return;
		}
		fr = dp_frame_open(ctx, c, h->timestamp, format, udp_len, now_ns);
		if (!fr)
			return;
	}
	if (fr->format != format) { /* payload type changed inside a frame */
		DP_CNT_INC(ctx, DP_CNT_DROP_RTP_PT);
		return;
	}
	uint32_t bit = h->seq % DP_FRAME_MAX_PKTS;
	uint64_t m = 1ull << (bit % 64);
	if (fr->seen[bit / 64] & m) {
		c->st.dup_packets++;
		DP_CNT_INC(ctx, DP_CNT_DROP_DUP);
		return;
	}
	if (++fr->n_pkts >= DP_FRAME_MAX_PKTS) {
		dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_TOO_LARGE);
		return;
	}
	fr->seen[bit / 64] |= m;
	dp_rtp_seq_update(&c->seq, h->seq);
	c->st.packets++;
	c->st.bytes += udp_len;
	fr->wire_bytes += udp_len;
	fr->last_ns = now_ns;
	DP_CNT_INC(ctx, DP_CNT_RTP_PKTS);

	if (format == DP_FRAME_JPEG) {
		struct dp_jpeg_hdr jh;
		if (dp_jpeg_parse(h->payload, h->payload_len, &jh) != 0) {
			DP_CNT_INC(ctx, DP_CNT_DROP_PAYLOAD);
			return;
		}
		size_t room = gpu_staging_slot_size(ctx->cfg.staging) - DP_JPEG_HEADERS_MAX - 2;
		if ((size_t)jh.frag_offset + jh.data_len > room) {
			dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_TOO_LARGE);
			return;
		}
		int rc = dp_jpeg_frame_add(&fr->jpeg, &jh, h->marker);
		if (rc == DP_PROTO_ERR_NOSPACE) {
			/* the size fits (checked above): too many disjoint pieces; the refused
			 * bytes never come back, so the frame cannot complete */
			DP_CNT_INC(ctx, DP_CNT_DROP_PAYLOAD);
			dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_INCOMPLETE);
			return;
		}
		if (rc != 0) {
			DP_CNT_INC(ctx, DP_CNT_DROP_PAYLOAD);
			return;
		}
		if (dp_jpeg_frame_complete(&fr->jpeg))
			dp_frame_deliver(ctx, c, fr, now_ns);
		return;
	}
	struct dp_raw_hdr rh;
	if (dp_raw_parse(h->payload, h->payload_len, &rh) != 0) {
		DP_CNT_INC(ctx, DP_CNT_DROP_PAYLOAD);
		return;
	}
	ssize_t n = dp_raw_frame_copy(&rh, dp_sampling_of(format), fr->width, fr->height,
				      gpu_staging_slot(ctx->cfg.staging, fr->slot), fr->raw_size);
	if (n < 0) {
		DP_CNT_INC(ctx, DP_CNT_DROP_PAYLOAD);
		return;
	}
	fr->raw_bytes += (uint32_t)n;
	if (h->marker)
		fr->have_marker = 1;
	if (fr->have_marker && fr->raw_bytes >= fr->raw_size)
		dp_frame_deliver(ctx, c, fr, now_ns);
}

void dp_reasm_scan(struct dp_ctx *ctx, uint64_t now_ns)
{
	const struct dp_config *cfg = &ctx->cfg;
	for (unsigned i = 0; i < cfg->max_clients; i++) {
		struct dp_client *c = &ctx->clients[i];
		if (!c->in_use)
			continue;
		/* times before a client's last packet (a caller's clock going back) expire nothing */
		if (now_ns >= c->st.last_seen_ns &&
		    now_ns - c->st.last_seen_ns >= cfg->idle_timeout_ns) {
			dp_client_remove(ctx, c);
			DP_CNT_INC(ctx, DP_CNT_CLIENTS_EVICTED);
			continue;
		}
		for (unsigned f = 0; f < cfg->frames_per_client; f++) {
			struct dp_reasm *fr = &c->fr[f];
			if (fr->active && now_ns >= fr->first_ns &&
			    now_ns - fr->first_ns >= cfg->frame_timeout_ns)
				dp_reasm_abandon(ctx, c, fr, DP_APP_DROP_INCOMPLETE);
		}
		uint64_t dt = now_ns > c->rate_t0 ? now_ns - c->rate_t0 : 0;
		if (dt >= cfg->rate_window_ns && dt > 0) {
			uint64_t frames = c->st.frames_complete + c->st.frames_incomplete +
					  c->st.frames_dropped - c->post_dropped;
			c->st.fps_x100 = (uint32_t)((double)(frames - c->rate_frames0) * 1e11 / (double)dt);
			c->st.bits_per_s = (uint64_t)((double)(c->st.bytes - c->rate_bytes0) * 8e9 /
						      (double)dt);
			c->rate_t0 = now_ns;
			c->rate_frames0 = frames;
			c->rate_bytes0 = c->st.bytes;
		}
	}
}
