/* dp — shoal's DPDK data plane (DESIGN.md §1, §3, §4).
 *
 * One dp_ctx per RX/TX poll lcore. It owns one RX and one TX queue of a port, a bounded table
 * of clients keyed by (source IPv4, source UDP port, RTP SSRC), the reassembly state of every
 * client and per-lcore counters. Complete frames land in slots of a gpu_staging pool (gpu.h:
 * page-aligned host memory, pinned when a CUDA device is present) and their descriptors go to the
 * consumer through a ring (dp_frames_dequeue); the consumer gives the slot back with
 * dp_frame_release. Other threads send shoal messages (RESULT, ASSIGN) through
 * dp_result_post/dp_assign_post; the poll lcore builds and transmits them.
 *
 * Threads: dp_poll/dp_run only on the lcore owning the context. dp_frames_dequeue: the
 * single consumer. dp_frame_release, dp_result_post, dp_assign_post, gpu_staging_put and
 * dp_counters_get: any thread. Everything else: set-up/tear-down, or the poll lcore.
 *
 * Memory is reserved by dp_create (worst case); nothing is allocated while polling.
 * Functions return 0 (or a count) on success and -errno on failure; constructors NULL.
 */
#ifndef SHOAL_DP_H
#define SHOAL_DP_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/dp_proto.h"
#include "gpu/gpu.h" /* struct gpu_staging: pinned frame slots */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clients ---------------------------------------------------------------------------- */
struct dp_client_key {
	uint32_t ip;   /* source IPv4, network byte order */
	uint16_t port; /* source UDP port of the RTP stream, host byte order */
	uint32_t ssrc; /* RTP SSRC */
};

enum dp_frame_format {
	DP_FRAME_JPEG = 1,   /* complete JFIF image */
	DP_FRAME_RAW420 = 2, /* I420 planar */
	DP_FRAME_RAW422 = 3, /* packed UYVY */
	DP_FRAME_RAWRGB = 4, /* packed RGB24 */
};

struct dp_client_stats {
	uint64_t packets, bytes;  /* RTP packets and UDP payload bytes accepted */
	uint64_t frames_complete; /* handed to the consumer */
	uint64_t frames_incomplete; /* abandoned with packets missing (DROP sent) */
	uint64_t frames_dropped;  /* complete or not, dropped for another reason (DROP sent) */
	uint64_t dup_packets;     /* duplicates ignored */
	uint64_t stale_packets;   /* packets of a frame already finished or abandoned */
	uint32_t ext_seq_max;     /* highest extended RTP sequence number */
	uint32_t fps_x100;        /* frames per second * 100 over the last rate window */
	uint64_t bits_per_s;      /* RTP payload bit rate over the last rate window */
	uint64_t first_seen_ns, last_seen_ns;
	uint16_t slo_ms, fps_req_x100; /* registered (or default) SLO and frame rate */
	uint8_t managed;          /* 1 when the client sent REGISTER */
	uint16_t rtcp_port;       /* where its RTCP goes (REGISTER's source port, else port + 1) */
};

/* ---- counters (per lcore, cache aligned) -------------------------------------------------- */
enum dp_cnt {
	DP_CNT_RX_PKTS,      /* packets received */
	DP_CNT_RX_BYTES,
	DP_CNT_TX_PKTS,      /* packets transmitted */
	DP_CNT_TX_FAILED,    /* built but not taken by the port, or no mbuf */
	DP_CNT_ARP_REPLIES,
	DP_CNT_ICMP_REPLIES,
	DP_CNT_RTP_PKTS,     /* RTP packets accepted into reassembly */
	DP_CNT_RTCP_PKTS,    /* RTCP datagrams handled */
	DP_CNT_REGISTERS, DP_CNT_REPORTS, DP_CNT_BYES,
	DP_CNT_FRAMES_COMPLETE,
	DP_CNT_FRAMES_INCOMPLETE, /* abandoned after a timeout or pushed out by newer frames */
	DP_CNT_FRAMES_TOO_LARGE,
	DP_CNT_FRAMES_OVERLOAD,   /* no staging slot or consumer ring full */
	DP_CNT_FRAMES_BAD,        /* reassembled frame failed to finish */
	DP_CNT_DROPS_SENT,        /* DROP messages transmitted */
	DP_CNT_RESULTS_SENT, DP_CNT_ASSIGNS_SENT,
	DP_CNT_RESULTS_TRIMMED,   /* RESULTs cut to stay below the bytes that earned them */
	DP_CNT_POST_NO_CLIENT,    /* posted message for a client no longer in the table */
	DP_CNT_CLIENTS_NEW, DP_CNT_CLIENTS_EVICTED, DP_CNT_CLIENTS_REMOVED,
	/* packets dropped, by kind */
	DP_CNT_DROP_RUNT,       /* shorter than its headers */
	DP_CNT_DROP_MULTISEG,   /* chained mbuf */
	DP_CNT_DROP_ETHERTYPE,  /* neither IPv4 nor ARP (VLAN included) */
	DP_CNT_DROP_NOT_MINE,   /* destination MAC or IPv4 not this server */
	DP_CNT_DROP_ARP,        /* ARP not a request for our address, or malformed */
	DP_CNT_DROP_IP_HDR,     /* IPv4 version, IHL or total length wrong */
	DP_CNT_DROP_IP_CKSUM,   /* IPv4 header checksum wrong */
	DP_CNT_DROP_IP_FRAG,    /* IPv4 fragment */
	DP_CNT_DROP_IP_PROTO,   /* neither UDP nor ICMP */
	DP_CNT_DROP_ICMP,       /* ICMP other than echo request, or bad checksum */
	DP_CNT_DROP_UDP_HDR,    /* UDP length wrong, or checksum flagged bad by the NIC */
	DP_CNT_DROP_UDP_PORT,   /* not the media port or media port + 1 */
	DP_CNT_DROP_RTP,        /* RTP header rejected by dp_rtp_parse */
	DP_CNT_DROP_RTP_PT,     /* payload type neither JPEG nor the configured raw PT */
	DP_CNT_DROP_PAYLOAD,    /* RFC 2435 / RFC 4175 payload rejected */
	DP_CNT_DROP_RTCP,       /* RTCP rejected by the parser */
	DP_CNT_DROP_TABLE_FULL, /* new client while the table is full */
	DP_CNT_DROP_DUP,        /* duplicate RTP packet */
	DP_CNT_DROP_STALE,      /* RTP packet of a frame already finished or abandoned */
	DP_CNT__COUNT
};
/* Static name of a counter ("rx_pkts", "drop_ip_cksum", ...), NULL when out of range. */
const char *dp_cnt_name(unsigned cnt);

/* ---- configuration ------------------------------------------------------------------------ */
struct dp_config {
	const char *name;       /* unique per context: names its rings and pools */
	uint16_t port_id;       /* DPDK port, already started (dp_port_init) */
	uint16_t rx_queue, tx_queue;
	uint32_t ip;            /* server IPv4, network byte order */
	uint16_t media_port;    /* RTP; RTCP on media_port + 1 */
	unsigned max_clients;   /* client table size */
	unsigned frames_per_client; /* frames in reassembly per client at once (1..4) */
	uint64_t frame_timeout_ns;  /* incomplete frame abandoned this long after its 1st packet */
	uint64_t idle_timeout_ns;   /* client evicted after this long without a packet */
	uint64_t scan_interval_ns;  /* how often dp_poll looks for timeouts and updates rates */
	uint64_t rate_window_ns;    /* window of dp_client_stats.fps_x100 / bits_per_s */
	uint16_t default_slo_ms, default_fps_x100; /* for streams that never register */
	uint8_t raw_pt;             /* dynamic payload type carrying RFC 4175 */
	uint8_t default_raw_format; /* DP_FRAME_RAW* for unregistered raw streams */
	uint16_t default_raw_width, default_raw_height;
	unsigned frame_ring_size;   /* consumer ring (power of two) */
	unsigned post_ring_size;    /* RESULT/ASSIGN requests from other threads (power of two) */
	unsigned tx_pool_size;      /* mbufs for transmitted packets */
	unsigned burst;             /* RX burst size (<= 64) */
	struct gpu_staging *staging; /* borrowed; outlives the context */
};

/* Fills cfg with defaults: 1024 clients, 2 frames per client, 100 ms frame timeout, 10 s idle
 * timeout, 1 ms scan, 1 s rate window, SLO 100 ms at 30 fps, raw PT 96 as 640x480 I420,
 * rings of 1024, 4095 TX mbufs, burst 32. name, ip, media_port and staging must be set. */
void dp_config_defaults(struct dp_config *cfg);

/* Configures port_id with one RX and one TX queue of nb_desc descriptors, an RX pool of
 * n_mbufs mbufs, and starts it. */
int dp_port_init(uint16_t port_id, unsigned n_mbufs, uint16_t nb_desc);
/* Stops and closes a port set up by dp_port_init and frees its RX pool. */
int dp_port_fini(uint16_t port_id);

struct dp_ctx; /* opaque */
struct dp_ctx *dp_create(const struct dp_config *cfg);
/* Releases every staging slot the context holds (frames in reassembly), then its memory. */
void dp_destroy(struct dp_ctx *ctx);

/* Monotonic clock used by dp_run, in nanoseconds. */
uint64_t dp_now_ns(void);
/* One iteration: drains posted messages, receives and handles one RX burst, runs the
 * timeout scan when due, flushes TX. now_ns is the time to use (dp_now_ns() in production,
 * a chosen value in tests). Returns the number of packets received. */
unsigned dp_poll(struct dp_ctx *ctx, uint64_t now_ns);
/* Polls until *stop becomes non-zero. Returns 0. */
int dp_run(struct dp_ctx *ctx, volatile int *stop);

/* Counter values of this context (a snapshot; any thread). */
void dp_counters_get(const struct dp_ctx *ctx, uint64_t out[DP_CNT__COUNT]);

/* Clients in the table. */
unsigned dp_client_count(const struct dp_ctx *ctx);
/* Statistics of one client: 0, or -ENOENT. Poll lcore (or while it is stopped). */
int dp_client_stats_get(const struct dp_ctx *ctx, const struct dp_client_key *key,
			struct dp_client_stats *out);
/* Sets how a client's raw (RFC 4175) frames are laid out: DP_FRAME_RAW*, width, height.
 * Creates nothing: -ENOENT when absent, -EINVAL for a bad format or size. Poll lcore. */
int dp_client_raw_set(struct dp_ctx *ctx, const struct dp_client_key *key, uint8_t format,
		      uint16_t width, uint16_t height);

/* ---- frames to the consumer ---------------------------------------------------------------- */
struct dp_frame {
	struct dp_client_key client;
	uint32_t rtp_ts;
	uint64_t arrival_ns;  /* first packet of the frame */
	uint64_t complete_ns; /* last packet */
	uint64_t deadline_ns; /* arrival + the client's SLO */
	uint8_t format;       /* enum dp_frame_format */
	uint16_t width, height;
	uint32_t slot;        /* staging slot holding the frame */
	uint32_t offset;      /* the frame starts at gpu_staging_slot(slot) + offset */
	uint32_t len;         /* bytes */
	uint32_t wire_bytes;  /* UDP payload bytes that carried it (bounds the RESULT size) */
};

/* Takes up to n complete frames (single consumer). Returns how many. */
unsigned dp_frames_dequeue(struct dp_ctx *ctx, struct dp_frame *out, unsigned n);
/* Gives the frame's slot back to the staging pool. */
int dp_frame_release(struct dp_ctx *ctx, const struct dp_frame *f);

/* Queues a RESULT for the client that sent frame f (any thread, no allocation). The packet
 * goes to that client's address only, and detections are cut so that it is never larger than
 * f->wire_bytes. -ENOBUFS when the queue is full. */
int dp_result_post(struct dp_ctx *ctx, const struct dp_frame *f, const struct dp_app_result *r);
/* Queues an ASSIGN for a client in the table (any thread). -ENOBUFS when the queue is full. */
int dp_assign_post(struct dp_ctx *ctx, const struct dp_client_key *key,
		   const struct dp_app_assign *a);

#ifdef __cplusplus
}
#endif
#endif
