/* dp_ctx — the data-plane context: set-up (port, rings, pools, client table), the poll loop,
 * RTCP handling (REGISTER, REPORT, BYE), the queues to and from other threads and the
 * statistics snapshot other threads read (seqlock over two buffers). */
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_pause.h>

#include "dataplane/dp_int.h"

static const char *const dp_cnt_names[DP_CNT__COUNT] = {
	[DP_CNT_RX_PKTS] = "rx_pkts",
	[DP_CNT_RX_BYTES] = "rx_bytes",
	[DP_CNT_TX_PKTS] = "tx_pkts",
	[DP_CNT_TX_FAILED] = "tx_failed",
	[DP_CNT_ARP_REPLIES] = "arp_replies",
	[DP_CNT_ICMP_REPLIES] = "icmp_replies",
	[DP_CNT_RTP_PKTS] = "rtp_pkts",
	[DP_CNT_RTCP_PKTS] = "rtcp_pkts",
	[DP_CNT_REGISTERS] = "registers",
	[DP_CNT_REPORTS] = "reports",
	[DP_CNT_BYES] = "byes",
	[DP_CNT_FRAMES_COMPLETE] = "frames_complete",
	[DP_CNT_FRAMES_INCOMPLETE] = "frames_incomplete",
	[DP_CNT_FRAMES_TOO_LARGE] = "frames_too_large",
	[DP_CNT_FRAMES_OVERLOAD] = "frames_overload",
	[DP_CNT_FRAMES_BAD] = "frames_bad",
	[DP_CNT_DROPS_SENT] = "drops_sent",
	[DP_CNT_RESULTS_SENT] = "results_sent",
	[DP_CNT_ASSIGNS_SENT] = "assigns_sent",
	[DP_CNT_RESULTS_TRIMMED] = "results_trimmed",
	[DP_CNT_POST_NO_CLIENT] = "post_no_client",
	[DP_CNT_CLIENTS_NEW] = "clients_new",
	[DP_CNT_CLIENTS_EVICTED] = "clients_evicted",
	[DP_CNT_CLIENTS_REMOVED] = "clients_removed",
	[DP_CNT_FRAMES_TO_DECODER] = "frames_to_decoder",
	[DP_CNT_FRAMES_UNDECODABLE] = "frames_undecodable",
	[DP_CNT_DECODE_OVERLOAD] = "decode_overload",
	[DP_CNT_DROP_RUNT] = "drop_runt",
	[DP_CNT_DROP_MULTISEG] = "drop_multiseg",
	[DP_CNT_DROP_ETHERTYPE] = "drop_ethertype",
	[DP_CNT_DROP_NOT_MINE] = "drop_not_mine",
	[DP_CNT_DROP_ARP] = "drop_arp",
	[DP_CNT_DROP_IP_HDR] = "drop_ip_hdr",
	[DP_CNT_DROP_IP_CKSUM] = "drop_ip_cksum",
	[DP_CNT_DROP_IP_FRAG] = "drop_ip_frag",
	[DP_CNT_DROP_IP_PROTO] = "drop_ip_proto",
	[DP_CNT_DROP_ICMP] = "drop_icmp",
	[DP_CNT_DROP_UDP_HDR] = "drop_udp_hdr",
	[DP_CNT_DROP_UDP_PORT] = "drop_udp_port",
	[DP_CNT_DROP_RTP] = "drop_rtp",
	[DP_CNT_DROP_RTP_PT] = "drop_rtp_pt",
	[DP_CNT_DROP_PAYLOAD] = "drop_payload",
	[DP_CNT_DROP_RTCP] = "drop_rtcp",
	[DP_CNT_DROP_TABLE_FULL] = "drop_table_full",
	[DP_CNT_DROP_DUP] = "drop_dup",
	[DP_CNT_DROP_STALE] = "drop_stale",
	[DP_CNT_FRAMES_LATE] = "frames_late",
	[DP_CNT_FRAMES_REFUSED] = "frames_refused",
	[DP_CNT_RESULTS_LATE] = "results_late",
	[DP_CNT_FRAMES_NOT_ADMITTED] = "frames_not_admitted",
};

const char *dp_cnt_name(unsigned cnt) { return cnt < DP_CNT__COUNT ? dp_cnt_names[cnt] : NULL; }

void dp_config_defaults(struct dp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_clients = 1024;
	cfg->frames_per_client = 2;
	cfg->frame_timeout_ns = 100ull * 1000000;
	cfg->idle_timeout_ns = 10ull * 1000000000;
	cfg->scan_interval_ns = 1000000;
	cfg->rate_window_ns = 1000000000;
	cfg->default_slo_ms = 100;
	cfg->default_fps_x100 = 3000;
	cfg->raw_pt = 96;
	cfg->default_raw_format = DP_FRAME_RAW420;
	cfg->default_raw_width = 640;
	cfg->default_raw_height = 480;
	cfg->frame_ring_size = 1024;
	cfg->post_ring_size = 1024;
	cfg->tx_pool_size = 4095;
	cfg->burst = 32;
}

int dp_port_init(uint16_t port_id, unsigned n_mbufs, uint16_t nb_desc)
{
	if (!rte_eth_dev_is_valid_port(port_id)) {
		fprintf(stderr, "dp_port_init: no port %u\n", port_id);
		return -ENODEV;
	}
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "dp_rx_p%u", port_id);
	int socket = rte_eth_dev_socket_id(port_id);
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	struct rte_mempool *mp = rte_pktmbuf_pool_create(name, n_mbufs, 256, 0,
							 RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!mp) {
		fprintf(stderr, "dp_port_init: pool %s: %s\n", name, rte_strerror(rte_errno));
		return -rte_errno;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int rc;
	if ((rc = DP_CHECK(rte_eth_dev_configure(port_id, 1, 1, &conf))) < 0 ||
	    (rc = DP_CHECK(rte_eth_rx_queue_setup(port_id, 0, nb_desc, (unsigned)socket, NULL,
						   mp))) < 0 ||
	    (rc = DP_CHECK(rte_eth_tx_queue_setup(port_id, 0, nb_desc, (unsigned)socket,
						   NULL))) < 0 ||
	    (rc = DP_CHECK(rte_eth_dev_start(port_id))) < 0) {
		rte_mempool_free(mp);
		return rc;
	}
	rte_eth_promiscuous_enable(port_id); /* not every driver has it; harmless */
	return 0;
}

int dp_port_fini(uint16_t port_id)
{
	if (!rte_eth_dev_is_valid_port(port_id))
		return -ENODEV;
	DP_CHECK(rte_eth_dev_stop(port_id));
	int rc = DP_CHECK(rte_eth_dev_close(port_id));
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "dp_rx_p%u", port_id);
	rte_mempool_free(rte_mempool_lookup(name));
	return rc;
}

struct dp_ctx *dp_create(const struct dp_config *cfg)
{
	if (!cfg || !cfg->name || !cfg->staging || cfg->max_clients == 0 ||
	    cfg->frames_per_client == 0 || cfg->frames_per_client > DP_MAX_FRAMES_PER_CLIENT ||
	    cfg->burst == 0 || cfg->burst > DP_BURST_MAX || cfg->media_port == 0 ||
	    cfg->media_port == 65535 || !rte_is_power_of_2(cfg->frame_ring_size) ||
	    !rte_is_power_of_2(cfg->post_ring_size) || cfg->tx_pool_size == 0) {
		fprintf(stderr, "dp_create: bad configuration\n");
		return NULL;
	}
	struct dp_ctx *ctx = rte_zmalloc("dp_ctx", sizeof(*ctx), RTE_CACHE_LINE_SIZE);
	if (!ctx)
		return NULL;
	ctx->cfg = *cfg;
	if (DP_CHECK(rte_eth_macaddr_get(cfg->port_id, &ctx->mac)) < 0)
		goto fail;
	if (dp_table_init(ctx) != 0)
		goto fail;
	char name[RTE_RING_NAMESIZE];
	snprintf(name, sizeof(name), "dpf_%s", cfg->name);
	/* decode workers enqueue decoded frames too: multi-producer then */
	ctx->frames = rte_ring_create_elem(name, sizeof(struct dp_frame), cfg->frame_ring_size,
					   SOCKET_ID_ANY,
					   cfg->decoder ? RING_F_SC_DEQ
							: RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "dpp_%s", cfg->name);
	ctx->posts = rte_ring_create(name, cfg->post_ring_size, SOCKET_ID_ANY, RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "dpo_%s", cfg->name);
	ctx->post_pool = rte_mempool_create(name, cfg->post_ring_size - 1, sizeof(struct dp_post),
					    0, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	snprintf(name, sizeof(name), "dpt_%s", cfg->name);
	ctx->tx_pool = rte_pktmbuf_pool_create(name, cfg->tx_pool_size, 0, 0,
					       RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!ctx->frames || !ctx->posts || !ctx->post_pool || !ctx->tx_pool) {
		fprintf(stderr, "dp_create: rings/pools for '%s': %s\n", cfg->name,
			rte_strerror(rte_errno));
		goto fail;
	}
	for (unsigned b = 0; b < 2; b++) {
		ctx->snap[b].e = rte_zmalloc("dp_snap",
					     sizeof(struct dp_client_snapshot) * cfg->max_clients,
					     RTE_CACHE_LINE_SIZE);
		if (!ctx->snap[b].e) {
			fprintf(stderr, "dp_create: no memory for the snapshot of '%s'\n", cfg->name);
			goto fail;
		}
	}
	return ctx;
fail:
	dp_destroy(ctx);
	return NULL;
}

void dp_destroy(struct dp_ctx *ctx)
{
	if (!ctx)
		return;
	/* frames of this context still in decode workers' hands come back first */
	while (__atomic_load_n(&ctx->dec_inflight, __ATOMIC_ACQUIRE) != 0) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	if (ctx->clients) {
		for (unsigned i = 0; i < ctx->cfg.max_clients; i++)
			if (ctx->clients[i].in_use)
				dp_client_remove(ctx, &ctx->clients[i]);
	}
	for (unsigned i = 0; i < ctx->n_tx; i++)
		rte_pktmbuf_free(ctx->tx[i]);
	ctx->n_tx = 0;
	if (ctx->frames) { /* frames nobody took: their slots go back */
		struct dp_frame f;
		while (rte_ring_sc_dequeue_elem(ctx->frames, &f, sizeof(f)) == 0)
			gpu_staging_put(ctx->cfg.staging, f.slot);
	}
	if (ctx->posts) {
		void *p;
		while (rte_ring_sc_dequeue(ctx->posts, &p) == 0)
			rte_mempool_put(ctx->post_pool, p);
	}
	rte_ring_free(ctx->frames);
	rte_ring_free(ctx->posts);
	rte_mempool_free(ctx->post_pool);
	rte_mempool_free(ctx->tx_pool);
	rte_free(ctx->snap[0].e);
	rte_free(ctx->snap[1].e);
	dp_table_fini(ctx);
	rte_free(ctx);
}

uint64_t dp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void dp_counters_get(const struct dp_ctx *ctx, uint64_t out[DP_CNT__COUNT])
{
	for (unsigned i = 0; i < DP_CNT__COUNT; i++)
		out[i] = __atomic_load_n(&ctx->cnt.v[i], __ATOMIC_RELAXED);
}

/* ---- RTCP ---------------------------------------------------------------------------------- */
static void dp_register_rx(struct dp_ctx *ctx, const struct rte_ether_addr *mac, uint32_t ip,
			   uint16_t sport, const struct dp_app_msg *msg, uint64_t now_ns)
{
	const struct dp_app_register *r = &msg->u.reg;
	struct dp_client_key key = {.ip = ip, .port = r->media_port, .ssrc = msg->ssrc};
	int created;
	struct dp_client *c = dp_client_get(ctx, &key, now_ns, &created);
	if (!c) {
		/* a part of an RTCP datagram (counted as one), not a packet: drop_table_full
		 * counts RTP packets, one outcome each */
		DP_CNT_INC(ctx, DP_CNT_DROP_RTCP);
		return;
	}
	DP_CNT_INC(ctx, DP_CNT_REGISTERS);
	c->mac = *mac;
	c->st.managed = 1;
	c->st.last_seen_ns = now_ns;
	c->st.rtcp_port = sport;
	if (r->slo_ms)
		c->st.slo_ms = r->slo_ms;
	if (r->fps_x100)
		c->st.fps_req_x100 = r->fps_x100;
	c->st.formats = r->formats;
	uint8_t fmt = 0;
	if (r->formats & DP_APP_FMT_RAW420)
		fmt = DP_FRAME_RAW420;
	else if (r->formats & DP_APP_FMT_RAW422)
		fmt = DP_FRAME_RAW422;
	else if (r->formats & DP_APP_FMT_RAWRGB)
		fmt = DP_FRAME_RAWRGB;
	if (fmt && r->n_res > 0 && r->res[0].width && r->res[0].height) {
		c->raw_format = fmt;
		c->raw_width = r->res[0].width;
		c->raw_height = r->res[0].height;
	}
}

void dp_rtcp_rx(struct dp_ctx *ctx, const struct rte_ether_addr *src_mac, uint32_t src_ip,
		uint16_t src_port, const uint8_t *buf, size_t len, uint64_t now_ns)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	int rc;
	DP_CNT_INC(ctx, DP_CNT_RTCP_PKTS);
	/* REPORT and BYE come from the RTCP port: the stream is on the port below it */
	struct dp_client_key key = {.ip = src_ip, .port = (uint16_t)(src_port - 1)};
	while ((rc = dp_rtcp_next(buf, len, &off, &p)) == 1) {
		if (p.pt == DP_RTCP_PT_APP) {
			struct dp_app_msg msg;
			if (dp_app_parse(&p, &msg) != 0) {
				DP_CNT_INC(ctx, DP_CNT_DROP_RTCP);
				continue;
			}
			if (msg.kind == DP_APP_REGISTER) {
				dp_register_rx(ctx, src_mac, src_ip, src_port, &msg, now_ns);
			} else if (msg.kind == DP_APP_REPORT) {
				key.ssrc = msg.ssrc;
				struct dp_client *c = dp_client_find(ctx, &key);
				DP_CNT_INC(ctx, DP_CNT_REPORTS);
				if (c) {
					c->rtt_us = msg.u.report.rtt_us;
					c->bw_kbps = msg.u.report.bw_kbps;
					c->st.rtt_us = c->rtt_us;
					c->st.bw_kbps = c->bw_kbps;
					c->st.last_seen_ns = now_ns;
				}
			} else {
				DP_CNT_INC(ctx, DP_CNT_DROP_RTCP); /* server-to-client kinds */
			}
		} else if (p.pt == DP_RTCP_PT_BYE) {
			struct dp_rtcp_bye bye;
			if (dp_rtcp_bye_parse(&p, &bye) != 0) {
				DP_CNT_INC(ctx, DP_CNT_DROP_RTCP);
				continue;
			}
			DP_CNT_INC(ctx, DP_CNT_BYES);
			for (unsigned i = 0; i < bye.n_ssrc; i++) {
				key.ssrc = bye.ssrc[i];
				struct dp_client *c = dp_client_find(ctx, &key);
				if (c) {
					dp_client_remove(ctx, c);
					DP_CNT_INC(ctx, DP_CNT_CLIENTS_REMOVED);
				}
			}
		}
		/* SR, RR, SDES: accepted, not used yet */
	}
	if (rc < 0)
		DP_CNT_INC(ctx, DP_CNT_DROP_RTCP);
}

/* ---- posted messages ------------------------------------------------------------------------- */
static int dp_post(struct dp_ctx *ctx, const struct dp_client_key *key, uint32_t wire_bytes,
		   const struct dp_app_msg *msg, uint8_t from_consumer)
{
	void *obj;
	if (rte_mempool_get(ctx->post_pool, &obj) != 0)
		return -ENOBUFS;
	struct dp_post *p = obj;
	p->key = *key;
	p->wire_bytes = wire_bytes;
	p->from_consumer = from_consumer;
	p->refuse = 0;
	p->arrival_ns = 0;
	p->msg = *msg;
	if (rte_ring_mp_enqueue(ctx->posts, p) != 0) {
		rte_mempool_put(ctx->post_pool, p);
		return -ENOBUFS;
	}
	return 0;
}

int dp_post_drop(struct dp_ctx *ctx, const struct dp_client_key *key, uint32_t rtp_ts,
		 uint8_t reason, uint32_t wire_bytes)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_DROP;
	m.ssrc = key->ssrc;
	m.u.drop.rtp_ts = rtp_ts;
	m.u.drop.reason = reason;
	return dp_post(ctx, key, wire_bytes, &m, 0);
}

int dp_client_refuse_post(struct dp_ctx *ctx, const struct dp_client_key *key, uint8_t reason)
{
	if (!ctx || !key || reason > DP_APP_DROP_TOO_LARGE)
		return -EINVAL;
	void *obj;
	if (rte_mempool_get(ctx->post_pool, &obj) != 0)
		return -ENOBUFS;
	struct dp_post *p = obj;
	memset(p, 0, offsetof(struct dp_post, msg));
	p->key = *key;
	p->refuse = 1;
	p->msg.u.drop.reason = reason;
	if (rte_ring_mp_enqueue(ctx->posts, p) != 0) {
		rte_mempool_put(ctx->post_pool, p);
		return -ENOBUFS;
	}
	return 0;
}

int dp_drop_post(struct dp_ctx *ctx, const struct dp_frame *f, uint8_t reason)
{
	if (!ctx || !f || reason < DP_APP_DROP_LATE || reason > DP_APP_DROP_TOO_LARGE)
		return -EINVAL;
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_DROP;
	m.ssrc = f->client.ssrc;
	m.u.drop.rtp_ts = f->rtp_ts;
	m.u.drop.reason = reason;
	return dp_post(ctx, &f->client, f->wire_bytes, &m, 1);
}

int dp_result_post(struct dp_ctx *ctx, const struct dp_frame *f, const struct dp_app_result *r)
{
	if (!ctx || !f || !r || r->n_det > DP_APP_MAX_DET)
		return -EINVAL;
	struct dp_app_msg m;
	m.kind = DP_APP_RESULT;
	m.ssrc = f->client.ssrc;
	m.u.result = *r;
	void *obj;
	if (rte_mempool_get(ctx->post_pool, &obj) != 0)
		return -ENOBUFS;
	struct dp_post *p = obj;
	p->key = f->client;
	p->wire_bytes = f->wire_bytes;
	p->from_consumer = 0;
	p->refuse = 0;
	p->arrival_ns = f->arrival_ns;
	p->msg = m;
	if (rte_ring_mp_enqueue(ctx->posts, p) != 0) {
		rte_mempool_put(ctx->post_pool, p);
		return -ENOBUFS;
	}
	return 0;
}

int dp_assign_post(struct dp_ctx *ctx, const struct dp_client_key *key,
		   const struct dp_app_assign *a)
{
	if (!ctx || !key || !a)
		return -EINVAL;
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_ASSIGN;
	m.ssrc = key->ssrc;
	m.u.assign = *a;
	return dp_post(ctx, key, 0, &m, 0);
}

/* Cuts a RESULT's detections until its UDP payload fits both the MTU and the bytes of the
 * frame that earned it. */
static int dp_result_fit(struct dp_app_msg *m, uint32_t wire_bytes)
{
	uint16_t n = m->u.result.n_det;
	m->u.result.n_det = 0;
	ssize_t base = dp_app_size(m);
	m->u.result.n_det = 1;
	ssize_t per = dp_app_size(m) - base;
	m->u.result.n_det = n;
	uint32_t limit = wire_bytes < DP_UDP_PAYLOAD_MAX ? wire_bytes : DP_UDP_PAYLOAD_MAX;
	if (base <= 0 || per <= 0 || (uint32_t)base > limit)
		return -EMSGSIZE;
	uint32_t fit = (limit - (uint32_t)base) / (uint32_t)per;
	if (n > fit) {
		m->u.result.n_det = (uint16_t)fit;
		return 1;
	}
	return 0;
}

const double dp_lat_bounds_ms[DP_LAT_BUCKETS - 1] = {1,  2,   5,   10,  20,  30,  50,
						      75, 100, 150, 200, 300, 500, 1000};

/* A RESULT went out: per-client count, SLO miss (server side) and server-time histogram. */
static void dp_result_account(struct dp_ctx *ctx, struct dp_client *c, uint32_t server_us)
{
	c->st.results_sent++;
	if (server_us > (uint32_t)c->st.slo_ms * 1000u) {
		c->st.results_late++;
		DP_CNT_INC(ctx, DP_CNT_RESULTS_LATE);
	}
	c->st.lat_sum_us += server_us;
	double ms = server_us / 1000.0;
	unsigned b = 0;
	while (b < DP_LAT_BUCKETS - 1 && ms > dp_lat_bounds_ms[b])
		b++;
	c->st.lat_hist[b]++;
	__atomic_store_n(&ctx->lat_hist[b], ctx->lat_hist[b] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->lat_sum_us, ctx->lat_sum_us + server_us, __ATOMIC_RELAXED);
}

void dp_latency_get(const struct dp_ctx *ctx, uint64_t hist[DP_LAT_BUCKETS], uint64_t *sum_us)
{
	for (unsigned b = 0; b < DP_LAT_BUCKETS; b++)
		hist[b] = __atomic_load_n(&ctx->lat_hist[b], __ATOMIC_RELAXED);
	if (sum_us)
		*sum_us = __atomic_load_n(&ctx->lat_sum_us, __ATOMIC_RELAXED);
}

static void dp_posts_drain(struct dp_ctx *ctx, uint64_t now_ns)
{
	void *objs[DP_BURST_MAX];
	unsigned n = rte_ring_sc_dequeue_burst(ctx->posts, objs, DP_BURST_MAX, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct dp_post *p = objs[i];
		struct dp_client *c = dp_client_find(ctx, &p->key);
		if (p->refuse) {
			if (c)
				c->refuse_reason = p->msg.u.drop.reason;
			continue;
		}
		if (p->msg.kind == DP_APP_DROP && p->from_consumer)
			DP_CNT_INC(ctx, p->msg.u.drop.reason == DP_APP_DROP_LATE
						? DP_CNT_FRAMES_LATE
						: DP_CNT_FRAMES_REFUSED);
		else if (p->msg.kind == DP_APP_DROP) /* a decode worker refused a complete frame */
			DP_CNT_INC(ctx, p->msg.u.drop.reason == DP_APP_DROP_OVERLOAD
						? DP_CNT_DECODE_OVERLOAD
						: DP_CNT_FRAMES_UNDECODABLE);
		if (!c) {
			DP_CNT_INC(ctx, DP_CNT_POST_NO_CLIENT);
			continue;
		}
		if (p->msg.kind == DP_APP_DROP) {
			c->st.frames_dropped++;
			c->post_dropped++;
			if (p->from_consumer && p->msg.u.drop.reason == DP_APP_DROP_LATE)
				c->st.frames_late++;
			else if (p->from_consumer)
				c->st.frames_refused++;
			dp_drop_send(ctx, c, p->msg.u.drop.rtp_ts, p->msg.u.drop.reason,
				     p->wire_bytes);
		} else if (p->msg.kind == DP_APP_RESULT) {
			int fit = dp_result_fit(&p->msg, p->wire_bytes);
			if (fit < 0) {
				DP_CNT_INC(ctx, DP_CNT_RESULTS_TRIMMED);
				continue;
			}
			if (fit > 0)
				DP_CNT_INC(ctx, DP_CNT_RESULTS_TRIMMED);
			if (dp_pkt_send_app(ctx, c, &p->msg) == 0) {
				DP_CNT_INC(ctx, DP_CNT_RESULTS_SENT);
				/* server time from the frame's first packet (RESULT's server_us
				 * counts from its last) */
				uint64_t us = p->arrival_ns && now_ns > p->arrival_ns
						      ? (now_ns - p->arrival_ns) / 1000
						      : p->msg.u.result.server_us;
				dp_result_account(ctx, c, (uint32_t)(us < UINT32_MAX ? us : UINT32_MAX));
			}
		} else if (dp_pkt_send_app(ctx, c, &p->msg) == 0) {
			DP_CNT_INC(ctx, DP_CNT_ASSIGNS_SENT);
		}
	}
	if (n)
		rte_mempool_put_bulk(ctx->post_pool, objs, n);
}

/* ---- frames ---------------------------------------------------------------------------------- */
unsigned dp_frames_dequeue(struct dp_ctx *ctx, struct dp_frame *out, unsigned n)
{
	return rte_ring_sc_dequeue_burst_elem(ctx->frames, out, sizeof(*out), n, NULL);
}

int dp_frame_release(struct dp_ctx *ctx, const struct dp_frame *f)
{
	return gpu_staging_put(ctx->cfg.staging, f->slot);
}

/* ---- the loop -------------------------------------------------------------------------------- */
unsigned dp_poll(struct dp_ctx *ctx, uint64_t now_ns)
{
	struct rte_mbuf *pkts[DP_BURST_MAX], *to_free[DP_BURST_MAX];
	unsigned n_free = 0;
	dp_posts_drain(ctx, now_ns);
	uint16_t n = rte_eth_rx_burst(ctx->cfg.port_id, ctx->cfg.rx_queue, pkts,
				      (uint16_t)ctx->cfg.burst);
	for (uint16_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (!dp_pkt_rx(ctx, pkts[i], now_ns))
			to_free[n_free++] = pkts[i];
	}
	if (n_free)
		rte_pktmbuf_free_bulk(to_free, n_free);
	if (now_ns >= ctx->next_scan_ns) {
		dp_reasm_scan(ctx, now_ns);
		ctx->next_scan_ns = now_ns + ctx->cfg.scan_interval_ns;
		if (now_ns >= ctx->next_snap_ns) {
			dp_snapshot_publish(ctx);
			ctx->next_snap_ns = now_ns + ctx->cfg.snapshot_interval_ns;
		}
	}
	dp_tx_flush(ctx);
	return n;
}

/* dp_run's clock: CLOCK_MONOTONIC read once a second, extrapolated in between with the TSC.
 * clock_gettime costs hundreds of ns in some VMs (it was 40 % of the poll lcore's time under
 * memif load here); rte_rdtsc costs a few. */
struct dp_run_clock {
	uint64_t base_ns, base_tsc, next_sync_tsc, hz;
	double ns_per_tsc;
};

static void dp_run_clock_sync(struct dp_run_clock *c)
{
	c->base_tsc = rte_rdtsc();
	c->base_ns = dp_now_ns();
	c->next_sync_tsc = c->base_tsc + c->hz;
}

static inline uint64_t dp_run_clock_now(struct dp_run_clock *c)
{
	uint64_t t = rte_rdtsc();
	if (t >= c->next_sync_tsc) {
		/* keep time monotonic across the re-sync: never step backwards */
		uint64_t ext = c->base_ns + (uint64_t)((double)(t - c->base_tsc) * c->ns_per_tsc);
		dp_run_clock_sync(c);
		if (c->base_ns < ext)
			c->base_ns = ext;
		return c->base_ns;
	}
	return c->base_ns + (uint64_t)((double)(t - c->base_tsc) * c->ns_per_tsc);
}

/* Idle back-off of dp_run: after 64 empty polls in a row, one sleep of idle_sleep_us. */
static inline void dp_run_idle(const struct dp_ctx *ctx, unsigned got, unsigned *empty)
{
	if (got || ctx->cfg.idle_sleep_us == 0) {
		*empty = 0;
		return;
	}
	if (++*empty < 64)
		return;
	*empty = 0;
	struct timespec ts = {0, (long)ctx->cfg.idle_sleep_us * 1000L};
	nanosleep(&ts, NULL);
}

int dp_run(struct dp_ctx *ctx, volatile int *stop)
{
	struct dp_run_clock clk = {.hz = rte_get_tsc_hz()};
	unsigned empty = 0;
	if (clk.hz == 0) {
		while (!*stop)
			dp_run_idle(ctx, dp_poll(ctx, dp_now_ns()), &empty);
	} else {
		clk.ns_per_tsc = 1e9 / (double)clk.hz;
		dp_run_clock_sync(&clk);
		while (!*stop)
			dp_run_idle(ctx, dp_poll(ctx, dp_run_clock_now(&clk)), &empty);
	}
	dp_tx_flush(ctx);
	dp_snapshot_publish(ctx); /* the final state, for readers after the stop */
	return 0;
}

/* ---- statistics snapshot ----------------------------------------------------------------------
 * Two buffers, each with a sequence number that is odd while the poll lcore writes it. The poll
 * lcore always writes the buffer readers were not sent to (snap_cur names the other), so a
 * reader only has to retry when the poll lcore published twice during its copy. */
void dp_snapshot_publish(struct dp_ctx *ctx)
{
	struct dp_snap_buf *b = &ctx->snap[ctx->snap_w];
	uint64_t seq = b->seq;
	__atomic_store_n(&b->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE); /* odd sequence visible before the data */
	uint32_t n = 0;
	for (unsigned i = 0; i < ctx->cfg.max_clients && n < ctx->n_clients; i++) {
		const struct dp_client *c = &ctx->clients[i];
		if (!c->in_use)
			continue;
		struct dp_client_snapshot *e = &b->e[n++];
		e->key = c->key;
		e->st = c->st;
		e->st.ext_seq_max = c->seq.cycles + c->seq.max_seq; /* as dp_client_stats_get */
	}
	__atomic_store_n(&b->n, n, __ATOMIC_RELAXED);
	__atomic_store_n(&b->epoch, ++ctx->snap_epoch, __ATOMIC_RELAXED);
	__atomic_store_n(&b->seq, seq + 2, __ATOMIC_RELEASE);
	__atomic_store_n(&ctx->snap_cur, ctx->snap_w, __ATOMIC_RELEASE);
	ctx->snap_w ^= 1;
}

int dp_clients_snapshot(const struct dp_ctx *ctx, struct dp_client_snapshot *out, unsigned cap,
			uint64_t *epoch)
{
	if (!ctx || (cap && !out))
		return -EINVAL;
	for (unsigned tries = 0; tries < 100000; tries++) {
		const struct dp_snap_buf *b =
			&ctx->snap[__atomic_load_n(&ctx->snap_cur, __ATOMIC_ACQUIRE) & 1];
		uint64_t s1 = __atomic_load_n(&b->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			rte_pause();
			continue;
		}
		uint32_t n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
		uint64_t ep = __atomic_load_n(&b->epoch, __ATOMIC_RELAXED);
		if (n > ctx->cfg.max_clients) /* torn: retried below */
			n = 0;
		if (cap && n)
			memcpy(out, b->e, sizeof(*out) * (n < cap ? n : cap));
		__atomic_thread_fence(__ATOMIC_ACQUIRE); /* the copy is done before seq is read */
		if (__atomic_load_n(&b->seq, __ATOMIC_RELAXED) != s1)
			continue;
		if (epoch)
			*epoch = ep;
		return (int)n;
	}
	return -EAGAIN;
}
