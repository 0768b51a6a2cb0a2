/* dp — shoal's DPDK data plane (DESIGN.md §1, §3, §4).
 *
 * One dp_ctx per RX/TX poll lcore. It owns one RX and one TX queue of a port, a bounded table
 * of clients keyed by (source IPv4, source UDP port, RTP SSRC), the reassembly state of every
 * client and per-lcore counters. Complete frames land in slots of a gpu_staging pool (gpu.h:
 * page-aligned host memory, pinned when a CUDA device is present) and their descriptors go to the
 * consumer through a ring (dp_frames_dequeue); the consumer gives the slot back with
 * dp_frame_release. Other threads send shoal messages (RESULT, ASSIGN) through
 * dp_result_post/dp_assign_post; the poll lcore builds and transmits them. JPEG frames may be
 * decoded on worker threads first (dp_decoder_*, below); other threads read every client's
 * statistics through a lock-free snapshot (dp_clients_snapshot).
 *
 * Threads: dp_poll/dp_run only on the lcore owning the context. dp_frames_dequeue: the
 * single consumer. dp_frame_release, dp_result_post, dp_drop_post, dp_assign_post, gpu_staging_put,
 * dp_counters_get, dp_clients_snapshot and dp_decoder_stats_get: any thread. Everything else:
 * set-up/tear-down, or the poll lcore.
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

/* Server-time histogram of RESULTs: upper bounds in ms of the first DP_LAT_BUCKETS - 1 buckets
 * (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000), the last one above all. */
#define DP_LAT_BUCKETS 15
extern const double dp_lat_bounds_ms[DP_LAT_BUCKETS - 1];

struct dp_client_stats {
	uint64_t packets, bytes;  /* RTP packets and UDP payload bytes accepted */
	uint64_t frames_complete; /* complete, handed to the consumer (or to the JPEG decoder) */
	uint64_t frames_incomplete; /* abandoned with packets missing (DROP sent) */
	uint64_t frames_dropped;  /* complete or not, dropped for another reason (DROP sent);
				   * includes complete JPEG frames the decoder refused */
	uint64_t dup_packets;     /* duplicates ignored */
	uint64_t stale_packets;   /* packets of a frame already finished or abandoned */
	uint32_t ext_seq_max;     /* highest extended RTP sequence number */
	uint32_t fps_x100;        /* frames per second * 100 over the last rate window */
	uint64_t bits_per_s;      /* RTP payload bit rate over the last rate window */
	uint64_t first_seen_ns, last_seen_ns;
	uint16_t slo_ms, fps_req_x100; /* registered (or default) SLO and frame rate */
	uint8_t managed;          /* 1 when the client sent REGISTER */
	uint8_t formats;          /* its latest REGISTER's format bits (DP_APP_FMT_*), 0: none */
	uint16_t rtcp_port;       /* where its RTCP goes (REGISTER's source port, else port + 1) */
	/* what became of its complete frames after the consumer took them */
	uint64_t results_sent;    /* RESULTs transmitted */
	uint64_t results_late;    /* of those, sent after the SLO (server time above slo_ms) */
	uint64_t frames_late;     /* dropped by the consumer: could not make the deadline (DROP
				   * LATE sent); also in frames_dropped */
	uint64_t frames_refused;  /* dropped by the consumer for another reason (not served,
				   * overload, failed; DROP sent); also in frames_dropped */
	uint64_t lat_hist[DP_LAT_BUCKETS]; /* server time of RESULTs (first packet in -> RESULT
					    * sent), bucket i: <= dp_lat_bounds_ms[i], last: above */
	uint64_t lat_sum_us;      /* sum of those server times */
	uint32_t bw_kbps, rtt_us; /* from its latest REPORT (0: none yet) */
	uint32_t upload_kbps;     /* upload rate seen here: a frame's bytes over the spread of
				   * its packets' arrival, smoothed; 0 until a multi-packet frame
				   * took over 100 us to arrive */
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
	/* JPEG decode workers (cfg.decoder set; see "JPEG decode workers" below) */
	DP_CNT_FRAMES_TO_DECODER, /* complete JPEG frames handed to the decoder */
	DP_CNT_FRAMES_UNDECODABLE, /* refused by the decoder: corrupt, or decoded image larger
				    * than a slot (DROP BAD_FRAME / TOO_LARGE sent) */
	DP_CNT_DECODE_OVERLOAD,   /* decoded but no staging slot or consumer ring full (DROP
				   * OVERLOAD sent) */
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
	DP_CNT_DROP_RTCP,       /* RTCP (or a part of a compound datagram) rejected: by the
				 * parser, or a REGISTER while the client table is full */
	DP_CNT_DROP_TABLE_FULL, /* RTP of a new client while the table is full */
	DP_CNT_DROP_DUP,        /* duplicate RTP packet */
	DP_CNT_DROP_STALE,      /* RTP packet of a frame already finished or abandoned */
	/* complete frames the consumer dropped (dp_drop_post) */
	DP_CNT_FRAMES_LATE,     /* could not make their deadline (DROP LATE sent) */
	DP_CNT_FRAMES_REFUSED,  /* not served, overload, failed (DROP sent) */
	DP_CNT_RESULTS_LATE,    /* RESULTs sent after the client's SLO (server time) */
	DP_CNT_FRAMES_NOT_ADMITTED, /* complete frames of refused clients answered with DROP
				     * before decode (dp_client_refuse_post) */
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
	/* added for the decode workers and the statistics snapshot */
	struct dp_decoder *decoder; /* NULL: JPEG frames go to the consumer as DP_FRAME_JPEG;
				     * else decoded by this pool (borrowed, see below) */
	uint64_t snapshot_interval_ns; /* how often the scan publishes dp_clients_snapshot's copy
					* (0: at every scan) */
	unsigned idle_sleep_us; /* dp_run: after 64 polls in a row found nothing, sleep this long
				 * before the next (0: never sleep, pure polling; for machines where
				 * the poll lcore shares its core with inference) */
};

/* Fills cfg with defaults: 1024 clients, 2 frames per client, 100 ms frame timeout, 10 s idle
 * timeout, 1 ms scan, 1 s rate window, SLO 100 ms at 30 fps, raw PT 96 as 640x480 I420,
 * rings of 1024, 4095 TX mbufs, burst 32, no decoder, snapshot at every scan. name, ip,
 * media_port and staging must be set. */
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
/* Polls until *stop becomes non-zero (sleeping cfg.idle_sleep_us when idle). Returns 0. */
int dp_run(struct dp_ctx *ctx, volatile int *stop);

/* Counter values of this context (a snapshot; any thread). */
void dp_counters_get(const struct dp_ctx *ctx, uint64_t out[DP_CNT__COUNT]);
/* Server-time histogram of every RESULT this context sent (clients that left included;
 * buckets as dp_client_stats.lat_hist) and the sum of those times in us (any thread). */
void dp_latency_get(const struct dp_ctx *ctx, uint64_t hist[DP_LAT_BUCKETS], uint64_t *sum_us);

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
	uint8_t full_range;   /* YUV formats: 1 = full range 0..255 (decoded JPEG/JFIF),
			       * 0 = as the sender sent it (RFC 4175: video range) */
};

/* Takes up to n complete frames (single consumer). Returns how many. */
unsigned dp_frames_dequeue(struct dp_ctx *ctx, struct dp_frame *out, unsigned n);
/* Gives the frame's slot back to the staging pool. */
int dp_frame_release(struct dp_ctx *ctx, const struct dp_frame *f);

/* Queues a RESULT for the client that sent frame f (any thread, no allocation). The packet
 * goes to that client's address only, and detections are cut so that it is never larger than
 * f->wire_bytes. -ENOBUFS when the queue is full. */
int dp_result_post(struct dp_ctx *ctx, const struct dp_frame *f, const struct dp_app_result *r);
/* Queues a DROP for the client that sent frame f (any thread, no allocation): the consumer
 * could not or would not serve it (reason: DP_APP_DROP_LATE, _NOT_SERVED, _OVERLOAD, ...).
 * Counted per client (frames_dropped and frames_late / frames_refused) and per context
 * (DP_CNT_FRAMES_LATE / DP_CNT_FRAMES_REFUSED). The slot is not released here
 * (dp_frame_release). -ENOBUFS when the queue is full, -EINVAL for a bad reason. */
int dp_drop_post(struct dp_ctx *ctx, const struct dp_frame *f, uint8_t reason);
/* Admission (any thread): reason != 0 makes the poll lcore answer every complete frame of
 * that client with DROP(reason) at once, before it is decoded or handed to the consumer (per
 * client in frames_refused, per context DP_CNT_FRAMES_NOT_ADMITTED); 0 lets its frames
 * through again. For clients the scheduler does not serve. Applies to a client in the table
 * when the poll lcore takes the message (no effect on one not there yet); a client that
 * leaves and comes back starts admitted. -ENOBUFS when the queue is full, -EINVAL for a bad
 * reason. */
int dp_client_refuse_post(struct dp_ctx *ctx, const struct dp_client_key *key, uint8_t reason);
/* Queues an ASSIGN for a client in the table (any thread). -ENOBUFS when the queue is full. */
int dp_assign_post(struct dp_ctx *ctx, const struct dp_client_key *key,
		   const struct dp_app_assign *a);

/* ---- ports with several queues, lcore placement (dp_port.c, dp_lcore.c) ------------------
 * Set-up only (main lcore, after rte_eal_init). dp_port_setup works with any DPDK port: PCI
 * NICs and the vdevs (net_af_xdp, net_af_packet, net_memif, net_tap, net_null, net_ring). */
struct dp_port_info {
	uint16_t port_id;
	uint16_t n_queues;   /* RX queues = TX queues configured; queue i belongs to poll lcore i */
	int socket;          /* NUMA socket of the device, -1 when the device does not say (vdevs) */
	uint8_t rss;         /* 1: RSS on IPv4 addresses spreads clients over the queues */
	uint8_t link_up;     /* link state when dp_port_setup returned */
	uint32_t link_mbps;  /* link speed, 0 when unknown */
	uint16_t max_queues; /* what the device offers (min of its RX and TX maximum) */
	char driver[32];     /* "net_af_packet", "mlx5_pci", ... */
	char device[64];     /* device name: PCI address or vdev name */
};

/* Configures port_id with min(n_queues, device maximum) RX and TX queues of nb_desc
 * descriptors each, with RSS on the IPv4 source and destination addresses (RTE_ETH_RSS_IPV4,
 * so a client's RTP and RTCP on port + 1 land on the same queue and the same client table;
 * plus UDP by source address only where the NIC hashes UDP apart and offers that input set)
 * when the device offers RSS, one queue otherwise (and for net_tap, whose kernel side picks
 * queues by a hash over the ports). The RX mbuf pool (at least n_mbufs, raised
 * to what the queues need) lives on the device's NUMA socket. Starts the port and waits at most
 * 3 s for the link (a port whose link stays down, e.g. memif without its peer yet, is still
 * started). Fills *out; returns the number of queues (>= 1) or -errno. */
int dp_port_setup(uint16_t port_id, unsigned n_queues, uint16_t nb_desc, unsigned n_mbufs,
		  struct dp_port_info *out);
/* Stops and closes a port set up by dp_port_setup and frees its pool. 0 or -errno. */
int dp_port_teardown(uint16_t port_id);

#define DP_LCORE_MAX 128
struct dp_lcore_plan {
	unsigned n;                  /* poll lcores chosen, best first */
	unsigned lcore[DP_LCORE_MAX]; /* EAL lcore ids (never the main lcore) */
	int port_node;               /* NUMA node of the port, -1 when unknown */
	int gpu_node;                /* NUMA node of the GPU, -1 when unknown or none given */
	unsigned n_near;             /* how many of lcore[] sit near the port (or the GPU) */
	uint8_t near[DP_LCORE_MAX];  /* 1 when lcore[i] sits near the port (or the GPU) */
	uint8_t user;                /* 1: the user chose the lcores (-l/-c/--lcores); order kept */
};

/* 1 when the EAL arguments choose the lcores themselves (-l, -c, --lcores, in any spelling). */
int dp_lcore_user_given(int argc, char *const argv[]);
/* Chooses up to `want` worker lcores (0: all) for the poll loops of port_id. With user_given,
 * the EAL's worker lcores in their order. Otherwise hwloc places them: lcores whose CPU lies on
 * the NUMA node of the port (its PCI device, or rte_eth_dev_socket_id) first, then on the node
 * of the GPU whose PCI bus id is gpu_pci ("0000:65:00.0"; NULL when none), then the rest;
 * lcores sharing a physical core with the main lcore last. Returns the count (>= 1), or
 * -ENOENT when the EAL has no worker lcore. */
int dp_lcore_plan_make(uint16_t port_id, const char *gpu_pci, unsigned want, int user_given,
		       struct dp_lcore_plan *out);
/* ---- end of ports and placement -------------------------------------------------------------- */

/* ---- JPEG decode workers (dp_decode.c) -----------------------------------------------------
 * A pool of plain pthreads shared by every context. Create it before the contexts and name it
 * in their dp_config.decoder. When a context completes a JPEG frame, the poll lcore hands the
 * frame's descriptor to the pool through a lock-free ring (no allocation, no system call); a
 * worker decodes it with libjpeg-turbo straight into a fresh slot of the same staging pool as
 * the JFIF, gives the JFIF slot back and enqueues a DP_FRAME_RAW420 frame (I420, full range;
 * 4:2:2 JPEGs have their chroma rows averaged in pairs) on the consumer ring of the context the
 * frame came from. That ring is then multi-producer (poll lcore + workers) with a single
 * consumer, and a client's frames may come out of it in another order than they completed
 * (two workers); deadlines and RTP timestamps say which is which.
 * A frame the worker cannot decode (corrupt data; decoded image larger than a slot) or place
 * (no free slot, consumer ring full) goes back to the poll lcore through the context's message
 * queue: the client gets DROP (BAD_FRAME, TOO_LARGE, OVERLOAD) and the counters move
 * (DP_CNT_FRAMES_UNDECODABLE, DP_CNT_DECODE_OVERLOAD). Idle workers poll their ring, sleeping
 * from 1 us doubling up to idle_sleep_max_us between empty polls.
 * Order: stop the poll lcores first; dp_destroy waits for the frames of its context still in
 * the workers' hands; destroy the pool after every context using it, or before (then frames
 * still queued are dropped and their slots given back). */
struct dp_decoder; /* opaque */

struct dp_decoder_config {
	const char *name;      /* unique: names its ring */
	unsigned n_workers;    /* 1..64 */
	const int *cpus;       /* n_workers CPU numbers to pin each worker to, or NULL (unpinned) */
	unsigned queue_size;   /* frames waiting for a worker (power of two) */
	unsigned idle_sleep_max_us; /* longest sleep of an idle worker between polls */
};

/* Fills cfg: 2 workers unpinned, queue of 256, idle sleep up to 200 us. name must be set. */
void dp_decoder_config_defaults(struct dp_decoder_config *cfg);
/* Starts the workers (after rte_eal_init). NULL on a bad configuration, when a ring, a
 * TurboJPEG handle or a thread cannot be made, or a CPU cannot be pinned (message on stderr). */
struct dp_decoder *dp_decoder_create(const struct dp_decoder_config *cfg);
/* Stops and joins the workers; frames still queued are dropped (slots given back, no DROP). */
void dp_decoder_destroy(struct dp_decoder *dec);

struct dp_decoder_stats {
	uint64_t decoded;        /* frames delivered decoded */
	uint64_t corrupt;        /* refused: the JPEG did not decode (warnings count as errors),
				  * or is not 4:2:0/4:2:2 with even sizes */
	uint64_t too_large;      /* refused: decoded image larger than a slot */
	uint64_t no_slot;        /* decoded frame lost: no free staging slot */
	uint64_t ring_full;      /* decoded frame lost: the context's consumer ring was full */
	uint64_t drops_unsent;   /* a refusal whose DROP could not be queued (message queue full) */
	uint64_t decode_ns;      /* time spent decoding, summed over the workers */
	uint64_t decode_ns_max;  /* longest single decode */
};
/* Sums of the workers' counters (any thread, no lock; each counter read atomically). */
void dp_decoder_stats_get(const struct dp_decoder *dec, struct dp_decoder_stats *out);
/* Frames waiting in the queue now (any thread). */
unsigned dp_decoder_queued(const struct dp_decoder *dec);

/* ---- statistics for other threads (snapshot) ------------------------------------------------
 * At every scan (or every cfg.snapshot_interval_ns) the poll lcore copies the key and
 * statistics of every client into one of two buffers preallocated by dp_create, each guarded
 * by a sequence number (seqlock), and publishes it; dp_run publishes once more when it stops.
 * dp_clients_snapshot may be called from any thread, never blocks the poll lcore and never
 * takes a lock: it copies the latest published buffer and retries when the poll lcore
 * overwrote it meanwhile. */
struct dp_client_snapshot {
	struct dp_client_key key;
	struct dp_client_stats st; /* as dp_client_stats_get returns it */
};
/* Copies up to cap clients of the latest snapshot into out and sets *epoch (if not NULL) to
 * its number (1, 2, ...; 0 when nothing was published yet). Returns the number of clients in
 * the snapshot (more than cap: only cap were copied), or -EAGAIN when no consistent copy could
 * be made after many tries. Any thread. */
int dp_clients_snapshot(const struct dp_ctx *ctx, struct dp_client_snapshot *out, unsigned cap,
			uint64_t *epoch);

#ifdef __cplusplus
}
#endif
#endif
