/* dp_int — private structures shared by the dataplane/dp_*.c files (not installed, not
 * included outside dataplane/). */
#ifndef SHOAL_DP_INT_H
#define SHOAL_DP_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/dp.h"

/* Logs file:line and the failing call when a DPDK status is negative; evaluates to it. */
#define DP_CHECK(call)                                                                      \
	({                                                                                      \
		int dp_rc_ = (int)(call);                                                           \
		if (dp_rc_ < 0)                                                                     \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                  \
				strerror(-dp_rc_));                                                         \
		dp_rc_;                                                                             \
	})

#define DP_MAX_FRAMES_PER_CLIENT 4
#define DP_FRAME_MAX_PKTS 4096 /* packets one frame may take (duplicate bitmap size) */
#define DP_BURST_MAX 64
#define DP_TX_BUF 128
#define DP_UDP_PAYLOAD_MAX 1472 /* 1500-byte MTU */

/* One frame being reassembled, straight into its staging slot. */
struct dp_reasm {
	uint8_t active;
	uint8_t format; /* enum dp_frame_format */
	uint8_t have_marker;
	uint16_t width, height;
	uint32_t rtp_ts;
	uint32_t slot;
	uint32_t n_pkts;
	uint32_t wire_bytes;
	uint32_t raw_bytes, raw_size;
	uint64_t first_ns, last_ns;
	uint64_t seen[DP_FRAME_MAX_PKTS / 64]; /* by seq % DP_FRAME_MAX_PKTS */
	struct dp_jpeg_frame jpeg;
};

struct dp_client {
	struct dp_client_key key;
	uint32_t hash;
	uint8_t in_use;
	uint8_t have_done;   /* last_done_ts valid */
	uint8_t raw_format;  /* enum dp_frame_format, RAW* */
	uint16_t raw_width, raw_height;
	uint32_t last_done_ts; /* newest RTP timestamp finished or abandoned */
	uint32_t rtt_us;
	uint32_t bw_kbps;
	uint8_t refuse_reason; /* != 0: complete frames answered with DROP(reason) at once
				* (dp_client_refuse_post: the consumer does not serve it) */
	struct rte_ether_addr mac; /* source MAC of its latest packet */
	struct dp_rtp_seq seq;
	struct dp_client_stats st;
	uint64_t rate_t0, rate_frames0, rate_bytes0;
	uint64_t post_dropped; /* complete frames the decoder refused or the consumer dropped (in
				* st.frames_complete and st.frames_dropped: counted once in the rate) */
	struct dp_reasm *fr; /* cfg.frames_per_client entries */
};

struct dp_counters {
	uint64_t v[DP_CNT__COUNT];
} __rte_cache_aligned;

/* A message posted by another thread for the poll lcore to send: RESULT and ASSIGN from the
 * consumer and the control thread, DROP from a decode worker (msg.u.drop.reason: BAD_FRAME,
 * TOO_LARGE or OVERLOAD; the poll lcore counts it and sends it). */
struct dp_post {
	struct dp_client_key key;
	uint32_t wire_bytes; /* RESULT, DROP: bytes that earned it */
	uint8_t from_consumer; /* DROP: 1 from dp_drop_post, 0 from a decode worker */
	uint64_t arrival_ns;   /* RESULT: first packet of its frame (server-time accounting) */
	uint8_t refuse;        /* 1: not a message: sets the client's refuse_reason to
				* msg.u.drop.reason (dp_client_refuse_post) */
	struct dp_app_msg msg;
};

/* Statistics snapshot buffer (seqlock: seq odd while the poll lcore writes it). */
struct dp_snap_buf {
	uint64_t seq;
	uint64_t epoch;
	uint32_t n;
	struct dp_client_snapshot *e; /* cfg.max_clients entries */
} __rte_cache_aligned;

struct dp_ctx {
	struct dp_counters cnt;
	uint64_t lat_hist[DP_LAT_BUCKETS]; /* every RESULT sent (poll lcore writes, relaxed) */
	uint64_t lat_sum_us;
	struct dp_config cfg;
	struct rte_ether_addr mac;
	uint16_t ip_id;
	/* client table: open addressing (linear probing, backward-shift deletion) */
	uint32_t *slots; /* client index + 1, 0 = empty */
	uint32_t mask;
	uint64_t seed;
	struct dp_client *clients;
	struct dp_reasm *reasm;
	uint32_t *free_idx;
	unsigned n_free, n_clients;
	uint64_t next_scan_ns;
	/* rings and pools */
	struct rte_ring *frames;
	struct rte_ring *posts;
	struct rte_mempool *post_pool;
	struct rte_mempool *tx_pool;
	struct rte_mbuf *tx[DP_TX_BUF];
	unsigned n_tx;
	/* decode workers: frames of this context in their hands (queued or being decoded) */
	uint32_t dec_inflight; /* atomic */
	/* statistics snapshot: the poll lcore writes snap[snap_w], readers read snap[snap_cur] */
	struct dp_snap_buf snap[2];
	uint32_t snap_cur; /* atomic: last published buffer */
	uint32_t snap_w;
	uint64_t snap_epoch;
	uint64_t next_snap_ns;
};

#define DP_CNT_INC(ctx, c) ((ctx)->cnt.v[(c)]++)
#define DP_CNT_ADD(ctx, c, n) ((ctx)->cnt.v[(c)] += (n))

/* dp_client.c */
int dp_table_init(struct dp_ctx *ctx);
void dp_table_fini(struct dp_ctx *ctx);
struct dp_client *dp_client_find(const struct dp_ctx *ctx, const struct dp_client_key *key);
/* Finds or inserts (with the server defaults); NULL when the table is full. *created set. */
struct dp_client *dp_client_get(struct dp_ctx *ctx, const struct dp_client_key *key,
				uint64_t now_ns, int *created);
/* Abandons its frames (no DROP sent) and removes it. */
void dp_client_remove(struct dp_ctx *ctx, struct dp_client *c);

/* dp_reasm.c */
/* Sends DROP(reason) for frame ts of client c unless larger than `earned` bytes. */
void dp_drop_send(struct dp_ctx *ctx, struct dp_client *c, uint32_t ts, uint8_t reason,
		  uint32_t earned);
void dp_reasm_rtp(struct dp_ctx *ctx, struct dp_client *c, const struct dp_rtp_hdr *h,
		  uint32_t udp_len, uint64_t now_ns);
/* Abandons a frame; reason != 0 queues a DROP with that dp_app_drop_reason. */
void dp_reasm_abandon(struct dp_ctx *ctx, struct dp_client *c, struct dp_reasm *fr,
		      uint8_t reason);
/* Timeouts, idle eviction and rates for every client. */
void dp_reasm_scan(struct dp_ctx *ctx, uint64_t now_ns);

/* dp_pkt.c */
/* Handles one received packet; returns 1 when the mbuf was reused for TX, 0 to free it. */
int dp_pkt_rx(struct dp_ctx *ctx, struct rte_mbuf *m, uint64_t now_ns);
/* Builds and queues an RTCP APP packet to client c (its IP, its RTCP port, its MAC). */
int dp_pkt_send_app(struct dp_ctx *ctx, const struct dp_client *c, const struct dp_app_msg *msg);
void dp_tx_push(struct dp_ctx *ctx, struct rte_mbuf *m);
void dp_tx_flush(struct dp_ctx *ctx);

/* dp_decode.c: the decode workers' pool. Defined here so that the poll lcore's side
 * (dp_decoder_submit) is inline and dp_reasm.c does not link with TurboJPEG. */
#define DP_DEC_MAX_WORKERS 64

struct dp_decode_job {
	struct dp_ctx *ctx;
	struct dp_frame f;
};

struct dp_dec_worker {
	struct dp_decoder_stats cnt; /* written by this worker only, read atomically */
	struct dp_decoder *dec;
	void *tj; /* tjhandle */
	pthread_t th;
	unsigned idx;
	int started;
} __rte_cache_aligned;

struct dp_decoder {
	struct dp_decoder_config cfg;
	int cpus[DP_DEC_MAX_WORKERS];
	int pinned;
	struct rte_ring *jobs; /* multi-producer (poll lcores), multi-consumer (workers) */
	uint32_t stop;         /* atomic */
	struct dp_dec_worker w[DP_DEC_MAX_WORKERS];
};

/* Poll lcore: hands complete JPEG frame f of ctx to a worker (no allocation, no system call).
 * 0, or -ENOBUFS when the queue is full (the caller keeps the slot). */
static inline int dp_decoder_submit(struct dp_decoder *dec, struct dp_ctx *ctx,
				    const struct dp_frame *f)
{
	struct dp_decode_job j;
	j.ctx = ctx;
	j.f = *f;
	__atomic_fetch_add(&ctx->dec_inflight, 1, __ATOMIC_RELAXED);
	if (rte_ring_enqueue_elem(dec->jobs, &j, sizeof(j)) != 0) {
		__atomic_fetch_sub(&ctx->dec_inflight, 1, __ATOMIC_RELAXED);
		return -ENOBUFS;
	}
	return 0;
}

/* dp_ctx.c */
/* Queues DROP(reason) for the poll lcore of ctx (any thread). 0 or -ENOBUFS. */
int dp_post_drop(struct dp_ctx *ctx, const struct dp_client_key *key, uint32_t rtp_ts,
		 uint8_t reason, uint32_t wire_bytes);
/* Poll lcore: copies every client's statistics into the next snapshot buffer, publishes it. */
void dp_snapshot_publish(struct dp_ctx *ctx);
void dp_rtcp_rx(struct dp_ctx *ctx, const struct rte_ether_addr *src_mac, uint32_t src_ip,
		uint16_t src_port, const uint8_t *buf, size_t len, uint64_t now_ns);

#endif
