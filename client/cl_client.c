/* cl_client.c — the client loop: pacing, JPEG encode, RTP/JPEG and RFC 4175 packetising,
 * REGISTER/REPORT/BYE, ASSIGN/RESULT/DROP handling, bandwidth estimate and resolution
 * policy, per-frame accounting and the CSV. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <turbojpeg.h>

#include "client/cl.h"
#include "dataplane/dp_proto.h"

#define CL_BATCH 32            /* RTP packets per sendmmsg */
#define CL_PKT_MAX 1500
#define CL_RX_MAX 4096         /* largest RTCP datagram accepted */
#define CL_Q_MIN 20            /* adaptive JPEG quality range */
#define CL_Q_MAX 95
#define CL_Q_START 75
#define CL_RTT_WIN 32          /* RESULTs in the RTT minimum window */
#define CL_SYNTH_W 640         /* synthetic source size */
#define CL_SYNTH_H 480
#define CL_NS 1000000000ull
#define CL_TX_MIN_US 100.0     /* floor of a frame's transfer time in a rate sample */
#define CL_SND_HOLD_NS (5 * CL_NS) /* a send-backlog estimate caps the rate this long */
#define CL_UP_DWELL 8          /* frames (at least fps/2) before a move up */

enum cl_status { CL_PENDING, CL_RESULT, CL_DROP, CL_LOST };

struct cl_rec { /* one sent frame */
	uint64_t idx;
	uint64_t send_ns; /* first packet handed to the socket */
	uint32_t rtp_ts;
	uint32_t latency_us;
	uint32_t bytes;   /* UDP payload bytes of the frame's packets */
	uint32_t bw_kbps; /* the estimate when it was sent */
	uint16_t variant, n_det, width, height;
	uint8_t status, reason;
};

struct cl_client {
	struct cl_opts o;
	struct cl_video *video;
	int rtp_fd, rtcp_fd;
	struct sockaddr_in media_dst, rtcp_dst;
	uint16_t port;
	uint32_t ssrc;
	FILE *csv;
	/* resolutions REGISTER lists */
	struct dp_app_res res[DP_APP_MAX_RES];
	unsigned n_res;
	/* current output */
	unsigned width, height;
	uint32_t target_bytes;
	double quality;
	int served; /* -1 before any ASSIGN */
	/* resolution policy */
	unsigned aw, ah;        /* ASSIGN's resolution (before any: --width x --height) */
	uint32_t assign_bytes;  /* bytes of the latest frame sent at aw x ah (0: none yet) */
	double bpp;             /* UDP payload bytes per pixel of the latest frame (0: none) */
	int limited;            /* below the policy's size for bandwidth */
	double q_ref;           /* quality not exceeded while limited */
	uint64_t last_change;   /* frames sent when the size last changed */
	uint32_t bw_now;        /* the estimate the latest frame was sized with */
	uint64_t dwell;         /* frames before a move up */
	/* buffers sized at creation for CL_SIZE_MAX x CL_SIZE_MAX */
	uint8_t *i420;
	uint8_t *pgroups;       /* raw: the frame's 4:2:0 pgroups in line order */
	unsigned reg_w, reg_h;  /* raw: res[0] of the latest REGISTER */
	uint8_t *jpeg;
	unsigned long jpeg_cap;
	tjhandle tj;
	uint8_t (*pkt)[CL_PKT_MAX];
	struct mmsghdr msg[CL_BATCH];
	struct iovec iov[CL_BATCH];
	uint8_t *rx;
	/* pending and finished frames, oldest first, written to the CSV in order */
	struct cl_rec *ring;
	size_t ring_cap, ring_head, ring_n;
	uint64_t win_ns; /* answer window */
	/* latency histogram, 0.1 ms bins over the answer window */
	uint32_t *hist;
	size_t hist_n;
	/* estimates */
	uint64_t reg_sent_ns;   /* REGISTER waiting for an ASSIGN (0: none) */
	uint32_t rtt_reg_us;    /* REGISTER -> ASSIGN sample */
	uint32_t rtt_reg_min_us; /* smallest REGISTER -> ASSIGN sample (0: none) */
	uint32_t rtt_win[CL_RTT_WIN];
	uint32_t rtt_bytes[CL_RTT_WIN]; /* the frames' bytes, for the fit of the base delay */
	unsigned rtt_n, rtt_i;
	double base_fit_us;     /* base delay fitted from frames of different sizes (<0: none) */
	struct cl_bw bw_res;    /* from RESULT timings */
	struct cl_bw bw_snd;    /* from the send socket's backlog */
	uint64_t snd_last_ns;   /* latest backlog sample */
	uint64_t prev_idx, prev_done_ns; /* the latest RESULT's frame and its arrival */
	int have_prev;
	int outq_after;         /* SIOCOUTQ after the previous frame's send (-1: none) */
	uint64_t outq_after_ns;
	double wmem_per_pkt;    /* largest socket memory one packet was seen to take */
	double payload_per_pkt; /* of the previous frame */
	uint32_t seq;           /* extended (RFC 4175); RTP carries the low 16 bits */
	uint64_t t0_ns;
	struct cl_stats st;
};

static uint64_t cl_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * CL_NS + (uint64_t)t.tv_nsec;
}

static const char *cl_reason_name(unsigned r)
{
	static const char *const names[CL_DROP_REASONS] = {
		"", "late", "incomplete", "overload", "not_served", "bad_frame", "too_large"};
	return r < CL_DROP_REASONS ? names[r] : "unknown";
}

/* ---- set-up ------------------------------------------------------------------------------ */
static int cl_parse_server(const char *s, struct sockaddr_in *media, struct sockaddr_in *rtcp)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	*media = (struct sockaddr_in){.sin_family = AF_INET};
	if (*end || port < 1 || port > 65534 || inet_pton(AF_INET, host, &media->sin_addr) != 1)
		return -EINVAL;
	media->sin_port = htons((uint16_t)port);
	*rtcp = *media;
	rtcp->sin_port = htons((uint16_t)(port + 1));
	return 0;
}

static int cl_bind(int fd, struct in_addr ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = ip, .sin_port = htons(port)};
	return bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
}

/* RTP socket on an even port P and RTCP on P+1 (the given P, or the first free even pair the
 * kernel hands out). */
static int cl_sockets(struct cl_client *c)
{
	struct in_addr ip = {.s_addr = htonl(INADDR_ANY)};
	if (c->o.bind_ip && inet_pton(AF_INET, c->o.bind_ip, &ip) != 1)
		return -EINVAL;
	int rc = -EADDRINUSE;
	for (int attempt = 0; attempt < 64; attempt++) {
		c->rtp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		c->rtcp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c->rtp_fd < 0 || c->rtcp_fd < 0)
			return -errno;
		uint16_t p = c->o.local_port;
		rc = cl_bind(c->rtp_fd, ip, p);
		if (rc == 0 && !p) {
			struct sockaddr_in a;
			socklen_t al = sizeof(a);
			getsockname(c->rtp_fd, (struct sockaddr *)&a, &al);
			p = ntohs(a.sin_port);
			if ((p & 1) || p == 65534)
				rc = -EADDRINUSE;
		}
		if (rc == 0)
			rc = cl_bind(c->rtcp_fd, ip, (uint16_t)(p + 1));
		if (rc == 0) {
			c->port = p;
			int sz = 4 << 20;
			setsockopt(c->rtp_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			setsockopt(c->rtcp_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
			/* kernel receive times for the answers' latencies */
			int on = 1;
			setsockopt(c->rtcp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
			setsockopt(c->rtp_fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
			return 0;
		}
		close(c->rtp_fd);
		close(c->rtcp_fd);
		c->rtp_fd = c->rtcp_fd = -1;
		if (c->o.local_port)
			break; /* the port asked for is taken */
	}
	return rc;
}

static void cl_res_add(struct cl_client *c, unsigned w, unsigned h)
{
	for (unsigned i = 0; i < c->n_res; i++)
		if (c->res[i].width == w && c->res[i].height == h)
			return;
	if (c->n_res < DP_APP_MAX_RES)
		c->res[c->n_res++] = (struct dp_app_res){(uint16_t)w, (uint16_t)h};
}

/* Rounds a size to what RFC 2435 can carry: a multiple of 8 in 16..CL_SIZE_MAX. */
static unsigned cl_size_fit(unsigned v)
{
	v &= ~7u;
	return v < 16 ? 16 : v > CL_SIZE_MAX ? CL_SIZE_MAX : v;
}

struct cl_client *cl_client_create(const struct cl_opts *o)
{
	struct cl_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->o = *o;
	c->rtp_fd = c->rtcp_fd = -1;
	c->served = -1;
	c->quality = c->q_ref = CL_Q_START;
	c->outq_after = -1;
	c->base_fit_us = -1;
	if (!o->server || cl_parse_server(o->server, &c->media_dst, &c->rtcp_dst) ||
	    !(o->fps > 0) || !o->slo_ms || o->width < 16 || o->height < 16 || o->width % 8 ||
	    o->height % 8 || o->width > CL_SIZE_MAX || o->height > CL_SIZE_MAX ||
	    o->payload < CL_PAYLOAD_MIN || o->payload > CL_PAYLOAD_MAX || (o->local_port & 1) ||
	    (o->policy != CL_POLICY_ASSIGN && o->policy != CL_POLICY_BANDWIDTH) ||
	    o->max_size < CL_SQ_MIN || o->max_size > CL_SQ_MAX ||
	    (o->format != CL_FORMAT_JPEG && o->format != CL_FORMAT_RAW) ||
	    o->raw_pt < CL_RAW_PT_MIN || o->raw_pt > CL_RAW_PT_MAX) {
		fprintf(stderr, "client: bad options\n");
		goto fail;
	}
	c->video = o->video ? cl_video_open(o->video, o->loop)
			    : cl_video_synthetic(CL_SYNTH_W, CL_SYNTH_H);
	if (!c->video)
		goto fail;
	int rc = cl_sockets(c);
	if (rc) {
		fprintf(stderr, "client: cannot bind the RTP/RTCP port pair: %s\n", strerror(-rc));
		goto fail;
	}
	if (o->have_ssrc)
		c->ssrc = o->ssrc;
	else if (getrandom(&c->ssrc, sizeof(c->ssrc), 0) != sizeof(c->ssrc))
		c->ssrc = (uint32_t)(cl_now_ns() ^ ((uint64_t)getpid() << 16));
	/* the variants' square inputs, the source size and the starting size */
	for (unsigned s = 128; s <= 640; s += 32)
		cl_res_add(c, s, s);
	unsigned sw, sh;
	cl_video_size(c->video, &sw, &sh);
	cl_res_add(c, cl_size_fit(sw), cl_size_fit(sh));
	cl_res_add(c, o->width, o->height);
	c->width = c->aw = o->width;
	c->height = c->ah = o->height;
	c->dwell = (uint64_t)ceil(o->fps / 2);
	if (c->dwell < CL_UP_DWELL)
		c->dwell = CL_UP_DWELL;
	/* buffers for the largest frame RFC 2435 can carry */
	c->i420 = malloc((size_t)CL_SIZE_MAX * CL_SIZE_MAX * 3 / 2);
	c->jpeg_cap = tjBufSize(CL_SIZE_MAX, CL_SIZE_MAX, TJSAMP_420);
	c->jpeg = tjAlloc((int)c->jpeg_cap);
	c->tj = tjInitCompress();
	c->pkt = calloc(CL_BATCH, CL_PKT_MAX);
	c->rx = malloc(CL_RX_MAX);
	if (o->format == CL_FORMAT_RAW)
		c->pgroups = malloc((size_t)CL_SIZE_MAX * CL_SIZE_MAX * 3 / 2);
	uint64_t slo_ns = (uint64_t)o->slo_ms * 1000000ull;
	c->win_ns = slo_ns > CL_NS ? slo_ns : CL_NS;
	c->ring_cap = (size_t)ceil(o->fps * (double)c->win_ns / 1e9) + 16;
	c->ring = calloc(c->ring_cap, sizeof(*c->ring));
	c->hist_n = (size_t)(c->win_ns / 100000) + 1;
	c->hist = calloc(c->hist_n, sizeof(*c->hist));
	if (!c->i420 || !c->jpeg || !c->tj || !c->pkt || !c->rx || !c->ring || !c->hist ||
	    (o->format == CL_FORMAT_RAW && !c->pgroups)) {
		fprintf(stderr, "client: out of memory\n");
		goto fail;
	}
	if (o->csv) {
		c->csv = fopen(o->csv, "w");
		if (!c->csv) {
			fprintf(stderr, "client: cannot write '%s': %s\n", o->csv, strerror(errno));
			goto fail;
		}
		fprintf(c->csv, "frame,rtp_ts,send_ms,status,reason,latency_ms,variant,n_det,width,"
				"height,bytes,bw_kbps\n");
	}
	c->st.ssrc = c->ssrc;
	c->st.local_port = c->port;
	c->st.served = -1;
	return c;
fail:
	cl_client_destroy(c);
	return NULL;
}

void cl_client_destroy(struct cl_client *c)
{
	if (!c)
		return;
	if (c->csv)
		fclose(c->csv);
	if (c->rtp_fd >= 0)
		close(c->rtp_fd);
	if (c->rtcp_fd >= 0)
		close(c->rtcp_fd);
	if (c->tj)
		tjDestroy(c->tj);
	tjFree(c->jpeg);
	cl_video_destroy(c->video);
	free(c->i420);
	free(c->pgroups);
	free(c->pkt);
	free(c->rx);
	free(c->ring);
	free(c->hist);
	free(c);
}

/* ---- frame records ----------------------------------------------------------------------- */
static struct cl_rec *cl_rec_at(struct cl_client *c, size_t i)
{
	return &c->ring[(c->ring_head + i) % c->ring_cap];
}

static void cl_csv_row(struct cl_client *c, const struct cl_rec *r)
{
	if (!c->csv)
		return;
	static const char *const status[] = {"pending", "result", "drop", "lost"};
	double send_ms = (double)(r->send_ns - c->t0_ns) / 1e6;
	fprintf(c->csv, "%llu,%u,%.3f,%s,%s,", (unsigned long long)r->idx, r->rtp_ts, send_ms,
		status[r->status], r->status == CL_DROP ? cl_reason_name(r->reason) : "");
	if (r->status == CL_RESULT)
		fprintf(c->csv, "%.3f,%u,%u,", r->latency_us / 1e3, r->variant, r->n_det);
	else if (r->status == CL_DROP)
		fprintf(c->csv, "%.3f,,,", r->latency_us / 1e3);
	else
		fputs(",,,", c->csv);
	fprintf(c->csv, "%u,%u,%u,%u\n", r->width, r->height, r->bytes, r->bw_kbps);
}

/* Marks frames older than the answer window (all pending ones with force) lost, and writes
 * the finished frames at the front of the ring to the CSV. */
static void cl_recs_retire(struct cl_client *c, uint64_t now, int force)
{
	while (c->ring_n) {
		struct cl_rec *r = cl_rec_at(c, 0);
		if (r->status == CL_PENDING) {
			if (!force && now - r->send_ns < c->win_ns)
				break;
			r->status = CL_LOST;
			c->st.lost++;
		}
		cl_csv_row(c, r);
		c->ring_head = (c->ring_head + 1) % c->ring_cap;
		c->ring_n--;
	}
}

static size_t cl_pending(struct cl_client *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->ring_n; i++)
		n += cl_rec_at(c, i)->status == CL_PENDING;
	return n;
}

static struct cl_rec *cl_rec_find(struct cl_client *c, uint32_t rtp_ts)
{
	for (size_t i = c->ring_n; i-- > 0;) {
		struct cl_rec *r = cl_rec_at(c, i);
		if (r->rtp_ts == rtp_ts && r->status == CL_PENDING)
			return r;
	}
	return NULL;
}

/* ---- estimates --------------------------------------------------------------------------- */
/* RTT: the smallest (latency - server time) of the last CL_RTT_WIN RESULTs (it still holds
 * the upload time of that frame, so it is an upper bound); before any RESULT, the
 * REGISTER -> ASSIGN round trip (which may also hold the server's wait for its next
 * scheduling round). */
static uint32_t cl_rtt_us(const struct cl_client *c)
{
	if (!c->rtt_n)
		return c->rtt_reg_us;
	uint32_t m = UINT32_MAX;
	for (unsigned i = 0; i < c->rtt_n; i++)
		m = c->rtt_win[i] < m ? c->rtt_win[i] : m;
	return m;
}

void cl_bw_add(struct cl_bw *b, double kbps)
{
	if (!(kbps > 0) || !isfinite(kbps))
		return;
	b->win[b->i] = kbps;
	b->i = (b->i + 1) % CL_BW_WIN;
	if (b->n < CL_BW_WIN)
		b->n++;
	double w[CL_BW_WIN];
	for (unsigned k = 0; k < b->n; k++) { /* insertion sort of at most CL_BW_WIN */
		unsigned j = k;
		for (; j > 0 && w[j - 1] > b->win[k]; j--)
			w[j] = w[j - 1];
		w[j] = b->win[k];
	}
	double med = b->n & 1 ? w[b->n / 2] : (w[b->n / 2 - 1] + w[b->n / 2]) / 2;
	b->kbps = b->kbps > 0 ? b->kbps + (med - b->kbps) / 4 : med;
}

int cl_bw_fits(double bytes, double fps, uint32_t bw_kbps, int up)
{
	double room = CL_BW_HEADROOM * (double)bw_kbps * 1000.0 / (up ? CL_BW_HYST : 1.0);
	return bytes * 8.0 * fps <= room;
}

unsigned cl_square_fit(uint32_t bw_kbps, double fps, double bpp, unsigned cap, unsigned cur)
{
	if (cap < CL_SQ_MIN)
		return CL_SQ_MIN;
	if (cap > CL_SQ_MAX)
		cap = CL_SQ_MAX;
	cap = CL_SQ_MIN + (cap - CL_SQ_MIN) / CL_SQ_STEP * CL_SQ_STEP;
	if (!bw_kbps || !(bpp > 0) || !(fps > 0))
		return cap;
	for (unsigned s = cap; s > CL_SQ_MIN; s -= CL_SQ_STEP)
		if (cl_bw_fits(bpp * s * s, fps, bw_kbps, s > cur))
			return s;
	return CL_SQ_MIN;
}

/* Bandwidth: --bw-kbps when given; else the estimate from the RESULTs' timings, capped by the
 * one from the send socket's backlog for CL_SND_HOLD_NS after its latest sample; 0
 * (unknown) before either has a sample. */
static uint32_t cl_bw_kbps(const struct cl_client *c, uint64_t now)
{
	if (c->o.bw_kbps)
		return c->o.bw_kbps;
	double r = c->bw_res.kbps;
	if (c->bw_snd.kbps > 0 && c->snd_last_ns && now - c->snd_last_ns < CL_SND_HOLD_NS &&
	    (!(r > 0) || c->bw_snd.kbps < r))
		r = c->bw_snd.kbps;
	return r > 4e9 ? 4000000000u : (uint32_t)(r + 0.5);
}

/* The path's base delay from frames of different sizes: the intercept of the least-squares
 * line of net_us against bytes over the RTT window, kept once found (when the bytes vary by
 * more than 20 % and the line rises; clamped to 0..the smallest net_us). */
static void cl_base_fit(struct cl_client *c, uint32_t net_min)
{
	unsigned n = c->rtt_n;
	if (n < 8)
		return;
	double mb = 0, mt = 0, sbb = 0, sbt = 0;
	for (unsigned i = 0; i < n; i++) {
		mb += c->rtt_bytes[i];
		mt += c->rtt_win[i];
	}
	mb /= n;
	mt /= n;
	for (unsigned i = 0; i < n; i++) {
		double db = c->rtt_bytes[i] - mb;
		sbb += db * db;
		sbt += db * (c->rtt_win[i] - mt);
	}
	if (!(mb > 0) || sbb / n < 0.04 * mb * mb || !(sbt > 0))
		return;
	double b = mt - sbt / sbb * mb;
	c->base_fit_us = b < 0 ? 0 : b > net_min ? net_min : b;
}

/* A rate sample from an answered frame. Its transfer time is the part of the latency not
 * spent in the server (net_us) less the path's base delay: the smallest of the REGISTER ->
 * ASSIGN round trip (small messages both ways), half the smallest net_us and the fit above;
 * and, when the previous frame was answered too and had not arrived yet when this one was
 * sent (the link was backlogged), at most the time between the two frames' arrivals at
 * the server (a frame queued behind the previous one arrives one transfer time after it).
 * Arrivals are seen from here as answer time - server_us (one downlink later). */
static void cl_bw_result(struct cl_client *c, const struct cl_rec *r, uint64_t net_us,
			 uint64_t done_ns)
{
	uint32_t net_min = UINT32_MAX;
	for (unsigned i = 0; i < c->rtt_n; i++)
		net_min = c->rtt_win[i] < net_min ? c->rtt_win[i] : net_min;
	cl_base_fit(c, net_min);
	double base = net_min / 2.0;
	if (c->rtt_reg_min_us && c->rtt_reg_min_us < base)
		base = c->rtt_reg_min_us;
	if (c->base_fit_us >= 0 && c->base_fit_us < base)
		base = c->base_fit_us;
	double tx = (double)net_us - base;
	if (c->have_prev && r->idx == c->prev_idx + 1 && done_ns > c->prev_done_ns &&
	    c->prev_done_ns > r->send_ns + (uint64_t)(base * 1000)) {
		double gap = (double)(done_ns - c->prev_done_ns) / 1000.0;
		tx = gap < tx ? gap : tx;
	}
	c->have_prev = 1;
	c->prev_idx = r->idx;
	c->prev_done_ns = done_ns;
	if (tx < CL_TX_MIN_US)
		tx = CL_TX_MIN_US;
	cl_bw_add(&c->bw_res, (double)r->bytes * 8000.0 / tx);
}

/* Socket memory of the datagrams the RTP socket still holds (queued below it, e.g. in a
 * shaping qdisc); -1 when unknown. */
static int cl_outq(const struct cl_client *c)
{
	int q;
	return ioctl(c->rtp_fd, SIOCOUTQ, &q) == 0 ? q : -1;
}

/* Before a frame's send: when the socket still holds data of the previous frames, the link
 * was busy since the previous send and what left in between left at its rate. */
static void cl_bw_send_before(struct cl_client *c, int q0, uint64_t now)
{
	if (q0 <= 0 || c->outq_after <= q0 || !(c->wmem_per_pkt > 0) || now <= c->outq_after_ns)
		return;
	c->st.send_backlog++;
	double pkts = (double)(c->outq_after - q0) / c->wmem_per_pkt;
	double dt_us = (double)(now - c->outq_after_ns) / 1000.0;
	cl_bw_add(&c->bw_snd, pkts * c->payload_per_pkt * 8000.0 / dt_us);
	c->snd_last_ns = now;
}

/* After it: socket memory per packet (the largest seen: packets leaving during the send
 * only lower it) and the queue left behind. */
static void cl_bw_send_after(struct cl_client *c, int q0, unsigned pkts, uint64_t bytes)
{
	int q1 = cl_outq(c);
	if (q0 >= 0 && q1 > q0 && pkts) {
		double w = (double)(q1 - q0) / pkts;
		c->wmem_per_pkt = w > c->wmem_per_pkt ? w : c->wmem_per_pkt;
	}
	if (pkts)
		c->payload_per_pkt = (double)bytes / pkts;
	c->outq_after = q1;
	c->outq_after_ns = cl_now_ns();
}

/* ---- RTCP out ------------------------------------------------------------------------------ */
static void cl_rtcp_send(struct cl_client *c, const uint8_t *buf, size_t len)
{
	/* a failure (server not up yet: ECONNREFUSED) is not fatal: REGISTER is repeated */
	if (sendto(c->rtcp_fd, buf, len, 0, (struct sockaddr *)&c->rtcp_dst, sizeof(c->rtcp_dst)) <
	    0)
		c->st.rtcp_send_errors++;
}

/* REGISTER. JPEG: the sizes of c->res. Raw: the size about to be sent (c->width x
 * c->height, from which the server sizes the stream's frames) first, then the others. timed:
 * start a REGISTER -> ASSIGN round trip when none is running. */
static void cl_send_register(struct cl_client *c, uint64_t now, int timed)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REGISTER;
	m.ssrc = c->ssrc;
	m.u.reg.slo_ms = (uint16_t)(c->o.slo_ms > 65535 ? 65535 : c->o.slo_ms);
	double fx = c->o.fps * 100 + 0.5;
	m.u.reg.fps_x100 = (uint16_t)(fx > 65535 ? 65535 : fx);
	m.u.reg.media_port = c->port;
	if (c->o.format == CL_FORMAT_RAW) {
		m.u.reg.formats = DP_APP_FMT_RAW420;
		m.u.reg.res[0] = (struct dp_app_res){(uint16_t)c->width, (uint16_t)c->height};
		unsigned n = 1;
		for (unsigned i = 0; i < c->n_res && n < DP_APP_MAX_RES; i++)
			if (c->res[i].width != c->width || c->res[i].height != c->height)
				m.u.reg.res[n++] = c->res[i];
		m.u.reg.n_res = (uint8_t)n;
		c->reg_w = c->width;
		c->reg_h = c->height;
	} else {
		m.u.reg.formats = DP_APP_FMT_JPEG;
		m.u.reg.n_res = (uint8_t)c->n_res;
		memcpy(m.u.reg.res, c->res, c->n_res * sizeof(c->res[0]));
	}
	uint8_t buf[512];
	ssize_t n = dp_app_build(buf, sizeof(buf), &m);
	if (n > 0)
		cl_rtcp_send(c, buf, (size_t)n);
	if (timed && !c->reg_sent_ns)
		c->reg_sent_ns = now;
}

static void cl_send_report(struct cl_client *c)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REPORT;
	m.ssrc = c->ssrc;
	c->st.bw_kbps = m.u.report.bw_kbps = cl_bw_kbps(c, cl_now_ns());
	c->st.rtt_us = m.u.report.rtt_us = cl_rtt_us(c);
	m.u.report.frames_sent = (uint32_t)c->st.sent;
	m.u.report.results_rcvd = (uint32_t)c->st.results;
	uint8_t buf[64];
	ssize_t n = dp_app_build(buf, sizeof(buf), &m);
	if (n > 0)
		cl_rtcp_send(c, buf, (size_t)n);
}

static void cl_send_bye(struct cl_client *c)
{
	struct dp_rtcp_bye b;
	memset(&b, 0, sizeof(b));
	b.n_ssrc = 1;
	b.ssrc[0] = c->ssrc;
	uint8_t buf[64];
	ssize_t n = dp_rtcp_bye_build(buf, sizeof(buf), &b);
	if (n > 0)
		cl_rtcp_send(c, buf, (size_t)n);
}

/* ---- RTCP in ------------------------------------------------------------------------------- */
static void cl_on_assign(struct cl_client *c, const struct dp_app_assign *a, uint64_t now)
{
	c->st.assigns++;
	if (c->reg_sent_ns) {
		uint64_t us = (now - c->reg_sent_ns) / 1000;
		c->rtt_reg_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
		if (!c->rtt_reg_min_us || (c->rtt_reg_us && c->rtt_reg_us < c->rtt_reg_min_us))
			c->rtt_reg_min_us = c->rtt_reg_us;
		c->reg_sent_ns = 0;
	}
	int was = c->served;
	c->served = a->served;
	unsigned aw = c->aw, ah = c->ah;
	if (a->served && a->width && a->height) {
		c->aw = cl_size_fit(a->width);
		c->ah = cl_size_fit(a->height);
		c->target_bytes = a->target_bytes;
	} else if (!a->served) {
		/* keep streaming at the smallest size listed; the server may place us later */
		unsigned best = 0;
		for (unsigned i = 1; i < c->n_res; i++)
			if ((unsigned)c->res[i].width * c->res[i].height <
			    (unsigned)c->res[best].width * c->res[best].height)
				best = i;
		c->aw = c->res[best].width;
		c->ah = c->res[best].height;
		c->target_bytes = 0;
		if (was != 0)
			fprintf(stderr, "client: not served (%s), sending %ux%u\n",
				cl_reason_name(a->reason), c->aw, c->ah);
	}
	if (c->aw == aw && c->ah == ah && c->served == was)
		return; /* a repeat: the policy's state stands */
	c->assign_bytes = 0;
	if (c->o.policy == CL_POLICY_ASSIGN || !a->served) {
		/* the new size applies from the next frame; the policy may lower it */
		c->width = c->aw;
		c->height = c->ah;
		c->limited = 0;
	}
}

static void cl_on_result(struct cl_client *c, const struct dp_app_result *res, uint64_t now)
{
	struct cl_rec *r = cl_rec_find(c, res->rtp_ts);
	if (!r) {
		c->st.unmatched++;
		return;
	}
	now = now > r->send_ns ? now : r->send_ns;
	uint64_t lat_us = (now - r->send_ns) / 1000;
	r->status = CL_RESULT;
	r->latency_us = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us;
	r->variant = res->variant;
	r->n_det = res->n_det;
	c->st.results++;
	if (lat_us <= (uint64_t)c->o.slo_ms * 1000)
		c->st.in_slo++;
	size_t b = (size_t)(lat_us / 100);
	c->hist[b < c->hist_n ? b : c->hist_n - 1]++;
	unsigned v;
	for (v = 0; v < c->st.n_variants; v++)
		if (c->st.variants[v].variant == res->variant)
			break;
	if (v == c->st.n_variants && v < CL_MAX_VARIANTS)
		c->st.variants[c->st.n_variants++].variant = res->variant;
	if (v < c->st.n_variants)
		c->st.variants[v].results++;
	/* estimates from the part of the latency not spent in the server */
	uint64_t net_us = lat_us > res->server_us ? lat_us - res->server_us : 1;
	c->rtt_win[c->rtt_i] = net_us > UINT32_MAX ? UINT32_MAX : (uint32_t)net_us;
	c->rtt_bytes[c->rtt_i] = r->bytes;
	c->rtt_i = (c->rtt_i + 1) % CL_RTT_WIN;
	if (c->rtt_n < CL_RTT_WIN)
		c->rtt_n++;
	uint64_t srv_ns = (uint64_t)res->server_us * 1000;
	cl_bw_result(c, r, net_us, now > srv_ns ? now - srv_ns : 0);
}

static void cl_on_drop(struct cl_client *c, const struct dp_app_drop *d, uint64_t now)
{
	struct cl_rec *r = cl_rec_find(c, d->rtp_ts);
	if (!r) {
		c->st.unmatched++;
		return;
	}
	now = now > r->send_ns ? now : r->send_ns;
	uint64_t lat_us = (now - r->send_ns) / 1000;
	r->status = CL_DROP;
	r->reason = d->reason;
	r->latency_us = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us;
	c->st.drops++;
	if (d->reason < CL_DROP_REASONS)
		c->st.drop_reasons[d->reason]++;
}

static void cl_rtcp_in(struct cl_client *c, const uint8_t *buf, size_t len, uint64_t now)
{
	size_t off = 0;
	struct dp_rtcp_pkt p;
	struct dp_app_msg m;
	int rc;
	while ((rc = dp_rtcp_next(buf, len, &off, &p)) == 1) {
		if (p.pt != DP_RTCP_PT_APP)
			continue; /* SR/RR/SDES/BYE from the server: not used */
		if (dp_app_parse(&p, &m) != 0) {
			c->st.bad_msgs++;
			continue;
		}
		if (m.ssrc != c->ssrc)
			continue; /* about another stream */
		if (m.kind == DP_APP_ASSIGN)
			cl_on_assign(c, &m.u.assign, now);
		else if (m.kind == DP_APP_RESULT)
			cl_on_result(c, &m.u.result, now);
		else if (m.kind == DP_APP_DROP)
			cl_on_drop(c, &m.u.drop, now);
	}
	if (rc < 0)
		c->st.bad_msgs++;
}

/* Reads every datagram waiting on both sockets (the server answers on RTCP; anything on the
 * RTP port is parsed the same way), each at its kernel receive time (on the monotonic clock;
 * the time it is read when the kernel gave none). */
static void cl_rx(struct cl_client *c)
{
	int fds[2] = {c->rtcp_fd, c->rtp_fd};
	for (int k = 0; k < 2; k++) {
		for (;;) {
			struct iovec iov = {c->rx, CL_RX_MAX};
			union {
				char b[CMSG_SPACE(sizeof(struct timespec))];
				struct cmsghdr align;
			} cb;
			struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
					    .msg_controllen = sizeof(cb.b)};
			ssize_t n = recvmsg(fds[k], &mh, MSG_DONTWAIT);
			if (n < 0)
				break;
			uint64_t now = cl_now_ns();
			struct timespec rt;
			clock_gettime(CLOCK_REALTIME, &rt);
			uint64_t real = (uint64_t)rt.tv_sec * CL_NS + (uint64_t)rt.tv_nsec;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
				if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS)
					continue;
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
				uint64_t t = (uint64_t)ts.tv_sec * CL_NS + (uint64_t)ts.tv_nsec;
				if (t <= real && real - t < CL_NS)
					now -= real - t;
			}
			cl_rtcp_in(c, c->rx, (size_t)n, now);
		}
	}
}

/* ---- media out ----------------------------------------------------------------------------- */
static int cl_flush(struct cl_client *c, unsigned n)
{
	unsigned done = 0;
	while (done < n) {
		int k = sendmmsg(c->rtp_fd, c->msg + done, n - done, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN)
				return 0; /* packets lost, as on any network */
			return -errno;
		}
		done += (unsigned)k;
	}
	return 0;
}

/* Queues packet n (len bytes in c->pkt[n]) for the media port and sends the batch when it is
 * full or last. */
static int cl_pkt_queue(struct cl_client *c, unsigned *n, size_t len, int last)
{
	uint8_t *p = c->pkt[*n];
	c->iov[*n] = (struct iovec){p, len};
	c->msg[*n] = (struct mmsghdr){.msg_hdr = {.msg_name = &c->media_dst,
						  .msg_namelen = sizeof(c->media_dst),
						  .msg_iov = &c->iov[*n], .msg_iovlen = 1}};
	c->st.pkts++;
	if (++*n < CL_BATCH && !last)
		return 0;
	int rc = cl_flush(c, *n);
	*n = 0;
	if (rc)
		fprintf(stderr, "client: send: %s\n", strerror(-rc));
	return rc;
}

/* Sends an RTP/JPEG frame (the JFIF split in ji, quality q); counts its packets and bytes. */
static int cl_send_jpeg(struct cl_client *c, const struct dp_jfif_info *ji, int q,
			uint32_t rtp_ts, unsigned *pkts, uint64_t *bytes)
{
	/* Q 1..99 when the tables are the RFC 2435 formula's for q (libjpeg's are), else the
	 * tables go in-band with Q 255 */
	uint8_t luma[64], chroma[64], qt[128];
	int formula = ji->n_qt == 2 && dp_jpeg_qtables((uint8_t)q, luma, chroma) == 0 &&
		      !memcmp(luma, ji->qt[0], 64) && !memcmp(chroma, ji->qt[1], 64);
	memcpy(qt, ji->qt[0], 64);
	memcpy(qt + 64, ji->qt[ji->n_qt > 1], 64);
	size_t off = 0;
	unsigned n = 0;
	int rc;
	do {
		uint8_t *p = c->pkt[n];
		struct dp_rtp_hdr rh = {.payload_type = DP_RTP_PT_JPEG, .seq = (uint16_t)c->seq++,
					.timestamp = rtp_ts, .ssrc = c->ssrc};
		struct dp_jpeg_hdr jh = {.frag_offset = (uint32_t)off, .type = ji->type,
					 .q = formula ? (uint8_t)q : 255, .width = ji->width,
					 .height = ji->height,
					 .restart_interval = ji->restart_interval,
					 .restart_first = 1, .restart_last = 1,
					 .restart_count = 0x3fff, .qt_len = 128, .qt = qt};
		ssize_t a = dp_rtp_build(p, CL_PKT_MAX, &rh);
		ssize_t b = a < 0 ? -1 : dp_jpeg_build(p + a, CL_PKT_MAX - (size_t)a, &jh);
		if (b < 0 || (size_t)(a + b) >= c->o.payload)
			return -EPROTO;
		size_t room = c->o.payload - (size_t)(a + b);
		size_t len = ji->scan_len - off < room ? ji->scan_len - off : room;
		int last = off + len == ji->scan_len;
		if (last)
			p[1] |= 0x80; /* marker: last packet of the frame */
		memcpy(p + a + b, ji->scan + off, len);
		off += len;
		*bytes += (size_t)(a + b) + len;
		++*pkts;
		if ((rc = cl_pkt_queue(c, &n, (size_t)(a + b) + len, last)) != 0)
			return rc;
	} while (off < ji->scan_len);
	return 0;
}

/* Sends c->i420 (w x h, both even) as RFC 4175 YCbCr-4:2:0: the pgroups (Y00 Y01 Y10 Y11 Cb
 * Cr per 2x2 pixels) in line order, as many whole pgroups per packet as fit, a line pair
 * continued in the next packet where it does not; line headers name the pair's top line. */
static int cl_send_raw(struct cl_client *c, unsigned w, unsigned h, uint32_t rtp_ts,
		       unsigned *pkts, uint64_t *bytes)
{
	const size_t cw = w / 2, pair = (size_t)w * 3; /* pgroup bytes of a line pair */
	const uint8_t *yp = c->i420, *cb = yp + (size_t)w * h, *cr = cb + cw * (h / 2);
	for (unsigned j = 0; j < h / 2; j++) {
		const uint8_t *y0 = yp + (size_t)2 * j * w, *y1 = y0 + w;
		const uint8_t *u = cb + (size_t)j * cw, *v = cr + (size_t)j * cw;
		uint8_t *g = c->pgroups + (size_t)j * pair;
		for (size_t k = 0; k < cw; k++, g += 6) {
			g[0] = y0[2 * k];
			g[1] = y0[2 * k + 1];
			g[2] = y1[2 * k];
			g[3] = y1[2 * k + 1];
			g[4] = u[k];
			g[5] = v[k];
		}
	}
	unsigned line = 0, px = 0, n = 0; /* next pgroup: its line pair's top line, pixel */
	int rc;
	while (line < h) {
		uint8_t *p = c->pkt[n];
		uint32_t seq = c->seq++;
		struct dp_rtp_hdr rh = {.payload_type = (uint8_t)c->o.raw_pt, .seq = (uint16_t)seq,
					.timestamp = rtp_ts, .ssrc = c->ssrc};
		ssize_t a = dp_rtp_build(p, CL_PKT_MAX, &rh);
		if (a < 0)
			return -EPROTO;
		/* line headers of 6 bytes, each with at least one pgroup */
		struct dp_raw_line seg[DP_RAW_MAX_LINES];
		unsigned ns = 0;
		size_t room = c->o.payload - (size_t)a - DP_RAW_HDR_MIN;
		while (line < h && ns < DP_RAW_MAX_LINES && room >= 12) {
			size_t groups = (w - px) / 2, fit = (room - 6) / 6;
			if (fit < groups)
				groups = fit;
			seg[ns++] = (struct dp_raw_line){
				.length = (uint16_t)(groups * 6), .line = (uint16_t)line,
				.offset = (uint16_t)px,
				.data = c->pgroups + (size_t)(line / 2) * pair + px / 2 * 6u};
			room -= 6 + groups * 6;
			px += (unsigned)groups * 2;
			if (px == w) {
				px = 0;
				line += 2;
			}
		}
		ssize_t b = dp_raw_build(p + a, CL_PKT_MAX - (size_t)a, (uint16_t)(seq >> 16), seg,
					 ns);
		if (b < 0 || (size_t)(a + b) > c->o.payload)
			return -EPROTO;
		int last = line >= h;
		if (last)
			p[1] |= 0x80; /* marker: last packet of the frame */
		*bytes += (size_t)(a + b);
		++*pkts;
		if ((rc = cl_pkt_queue(c, &n, (size_t)(a + b), last)) != 0)
			return rc;
	}
	return 0;
}

/* Sends c->i420 (w x h) in the chosen format (JPEG: encoded at the current quality, which is
 * then steered); fills r. */
static int cl_send_frame(struct cl_client *c, struct cl_rec *r, unsigned w, unsigned h)
{
	int q = (int)lround(c->quality), rc;
	unsigned long jlen = 0;
	struct dp_jfif_info ji;
	if (c->o.format == CL_FORMAT_JPEG) {
		const unsigned char *planes[3] = {
			c->i420, c->i420 + (size_t)w * h,
			c->i420 + (size_t)w * h + (size_t)(w / 2) * (h / 2)};
		int strides[3] = {(int)w, (int)w / 2, (int)w / 2};
		unsigned char *jpeg = c->jpeg;
		jlen = c->jpeg_cap;
		if (tjCompressFromYUVPlanes(c->tj, planes, (int)w, strides, (int)h, TJSAMP_420,
					    &jpeg, &jlen, q, TJFLAG_NOREALLOC) != 0) {
			fprintf(stderr, "client: JPEG encode failed: %s\n", tjGetErrorStr2(c->tj));
			return -EIO;
		}
		if ((rc = dp_jfif_split(jpeg, jlen, &ji)) != 0) {
			fprintf(stderr, "client: JPEG not sendable: %s\n", dp_proto_strerror(rc));
			return -EPROTO;
		}
	} else if (w != c->reg_w || h != c->reg_h) {
		/* the server sizes a raw stream's frames from REGISTER's first size: a new size
		 * is announced right before its first frame (w x h is c->width x c->height) */
		cl_send_register(c, cl_now_ns(), 0);
	}
	unsigned pkts = 0;
	uint64_t bytes = 0;
	int q0 = cl_outq(c);
	r->send_ns = cl_now_ns();
	cl_bw_send_before(c, q0, r->send_ns);
	rc = c->o.format == CL_FORMAT_JPEG ? cl_send_jpeg(c, &ji, q, r->rtp_ts, &pkts, &bytes)
					   : cl_send_raw(c, w, h, r->rtp_ts, &pkts, &bytes);
	if (rc)
		return rc;
	cl_bw_send_after(c, q0, pkts, bytes);
	r->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
	r->width = (uint16_t)w;
	r->height = (uint16_t)h;
	r->bw_kbps = c->bw_now;
	c->st.bytes += bytes;
	c->bpp = (double)bytes / ((double)w * h);
	if (w == c->aw && h == c->ah && !c->limited)
		c->assign_bytes = r->bytes;
	if (c->o.format != CL_FORMAT_JPEG)
		return 0; /* a raw frame's size is fixed by its resolution */
	/* adaptive quality: scale by the square root of target / size, kept in 20..95; the
	 * target is ASSIGN's (policy assign), and while limited by bandwidth at most what the
	 * estimate carries per frame, the quality then held at most where it was */
	double tgt = c->o.policy == CL_POLICY_ASSIGN ? (double)c->target_bytes : 0, size = jlen;
	double qmax = CL_Q_MAX;
	if (c->limited && c->bw_now) {
		double budget = CL_BW_HEADROOM * c->bw_now * 1000.0 / 8.0 / c->o.fps;
		if (!tgt || budget < tgt) {
			tgt = budget;
			size = (double)bytes;
		}
		qmax = c->q_ref < qmax ? c->q_ref : qmax;
	}
	if (tgt > 0 && size > 0) {
		double qn = c->quality * sqrt(tgt / size);
		c->quality = qn < CL_Q_MIN ? CL_Q_MIN : qn > qmax ? qmax : qn;
	}
	return 0;
}

/* Frames sent per resolution. */
static void cl_size_count(struct cl_client *c, unsigned w, unsigned h)
{
	unsigned i;
	for (i = 0; i < c->st.n_sizes; i++)
		if (c->st.sizes[i].width == w && c->st.sizes[i].height == h)
			break;
	if (i == c->st.n_sizes && i < CL_MAX_SIZES) {
		c->st.sizes[i].width = (uint16_t)w;
		c->st.sizes[i].height = (uint16_t)h;
		c->st.n_sizes++;
	}
	if (i < c->st.n_sizes)
		c->st.sizes[i].frames++;
}

/* The resolution of the next frame (enum cl_policy). Not served: ASSIGN's (the smallest
 * listed). Assign: ASSIGN's while the estimate carries ASSIGN's frame size (its target for
 * JPEG, else the latest frame sent at that size, else the latest bytes per pixel times its
 * pixels; CL_BW_HYST more room to come back to it), else the largest square no larger than
 * it that cl_square_fit gives. Bandwidth: cl_square_fit up to --max-size. Unknown estimate or bytes
 * per pixel: no change. Moves up wait c->dwell frames after a change. */
static void cl_choose_size(struct cl_client *c, uint64_t now)
{
	uint32_t bw = cl_bw_kbps(c, now);
	double fps = c->o.fps;
	unsigned w = c->width, h = c->height;
	int limited = c->limited;
	int settled = c->st.sent - c->last_change >= c->dwell;
	c->bw_now = bw;
	if (c->served == 0) {
		w = c->aw;
		h = c->ah;
		limited = 0;
	} else if (!bw || !(c->bpp > 0)) {
		/* nothing to go by yet */
	} else if (c->o.policy == CL_POLICY_BANDWIDTH) {
		unsigned cur = w == h ? w : c->o.max_size;
		unsigned side = cl_square_fit(bw, fps, c->bpp, c->o.max_size, cur);
		if (side > cur && !settled && w == h)
			side = cur;
		w = h = side;
		limited = side < c->o.max_size;
	} else {
		unsigned cap = c->aw < c->ah ? c->aw : c->ah;
		/* raw: ASSIGN's target (an encoded size) does not apply */
		int tgt = c->target_bytes && c->o.format == CL_FORMAT_JPEG;
		double ab = tgt		  ? (double)c->target_bytes
			    : c->assign_bytes ? (double)c->assign_bytes
					      : c->bpp * c->aw * c->ah;
		if (cap < CL_SQ_MIN ||
		    (cl_bw_fits(ab, fps, bw, c->limited) && (!c->limited || settled))) {
			w = c->aw;
			h = c->ah;
			limited = 0;
		} else {
			unsigned cur = c->limited && w == h ? w : cap;
			unsigned side = cl_square_fit(bw, fps, c->bpp, cap, cur);
			if (side > cur && !settled)
				side = cur;
			w = h = side;
			limited = 1;
		}
	}
	if (limited && !c->limited)
		c->q_ref = c->quality;
	if (limited && (uint64_t)w * h < (uint64_t)c->width * c->height)
		c->st.backoffs++;
	if (w != c->width || h != c->height)
		c->last_change = c->st.sent;
	c->limited = limited;
	c->width = w;
	c->height = h;
}

/* ---- loop ---------------------------------------------------------------------------------- */
static void cl_progress(struct cl_client *c, uint64_t now)
{
	fprintf(stderr,
		"client: t=%.0fs sent=%llu results=%llu drops=%llu lost=%llu size=%ux%u q=%d "
		"target=%u served=%d limited=%d rtt_us=%u bw_kbps=%u (results %.0f, backlog %.0f)\n",
		(double)(now - c->t0_ns) / 1e9, (unsigned long long)c->st.sent,
		(unsigned long long)c->st.results, (unsigned long long)c->st.drops,
		(unsigned long long)c->st.lost, c->width, c->height, (int)lround(c->quality),
		c->target_bytes, c->served, c->limited, c->st.rtt_us, c->st.bw_kbps,
		c->bw_res.kbps, c->bw_snd.kbps);
}

static uint64_t cl_min3(uint64_t a, uint64_t b, uint64_t d)
{
	uint64_t m = a < b ? a : b;
	return m < d ? m : d;
}

static void cl_wait(struct cl_client *c, uint64_t now, uint64_t until)
{
	struct pollfd pf[2] = {{.fd = c->rtcp_fd, .events = POLLIN},
			       {.fd = c->rtp_fd, .events = POLLIN}};
	int ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
	if (ms > 100)
		ms = 100; /* look at the stop flag now and then */
	if (poll(pf, 2, ms) > 0)
		cl_rx(c);
}

int cl_client_run(struct cl_client *c, volatile sig_atomic_t *stop)
{
	const uint64_t period = (uint64_t)(1e9 / c->o.fps + 0.5);
	uint64_t now = cl_now_ns();
	c->t0_ns = now;
	const uint64_t end = c->o.duration_s > 0 ? now + (uint64_t)(c->o.duration_s * 1e9) : 0;
	uint64_t last_reg = 0, next_report = now + CL_NS, slot = 0;
	uint64_t next_frame = now;
	uint32_t ts0;
	if (getrandom(&ts0, sizeof(ts0), 0) != sizeof(ts0))
		ts0 = (uint32_t)now;
	if (getrandom(&c->seq, sizeof(c->seq), 0) != sizeof(c->seq))
		c->seq = (uint16_t)now;
	int rc = 0, sending = 1;
	while (sending && !(stop && *stop)) {
		now = cl_now_ns();
		/* every 2 s until the first ASSIGN, then every 10 s as a keep-alive */
		uint64_t next_reg = last_reg + (c->served < 0 ? 2 : 10) * CL_NS;
		if (!last_reg || now >= next_reg) {
			cl_send_register(c, now, 1);
			last_reg = now;
			next_reg = now + (c->served < 0 ? 2 : 10) * CL_NS;
		}
		if (now >= next_report) {
			cl_send_report(c);
			if (c->o.progress)
				cl_progress(c, now);
			next_report += CL_NS;
			if (next_report <= now)
				next_report = now + CL_NS;
		}
		cl_recs_retire(c, now, 0);
		if (end && now >= end)
			break;
		if (now >= next_frame) {
			/* a sender that fell more than a period behind skips slots (the schedule
			 * itself never moves) */
			uint64_t behind = (now - next_frame) / period;
			if (behind) {
				slot += behind;
				c->st.skipped += behind;
			}
			if (c->ring_n == c->ring_cap) { /* not expected: sized for the window */
				struct cl_rec *old = cl_rec_at(c, 0);
				if (old->status == CL_PENDING) {
					old->status = CL_LOST;
					c->st.lost++;
				}
				cl_recs_retire(c, now, 0);
			}
			cl_choose_size(c, now);
			unsigned w = c->width, h = c->height;
			rc = cl_video_next(c->video, w, h, c->i420);
			if (rc == -ENODATA) {
				rc = 0;
				break;
			}
			if (rc) {
				fprintf(stderr, "client: frame source: %s\n", strerror(-rc));
				break;
			}
			struct cl_rec *r = &c->ring[(c->ring_head + c->ring_n) % c->ring_cap];
			*r = (struct cl_rec){.idx = c->st.sent,
					     .rtp_ts = ts0 + (uint32_t)llround((double)slot *
									       90000.0 / c->o.fps)};
			rc = cl_send_frame(c, r, w, h);
			if (rc)
				break;
			c->ring_n++;
			c->st.sent++;
			cl_size_count(c, w, h);
			slot++;
			next_frame = c->t0_ns + (uint64_t)llround((double)slot * 1e9 / c->o.fps);
			if (c->o.max_frames && c->st.sent >= c->o.max_frames)
				sending = 0;
			continue;
		}
		cl_wait(c, now, cl_min3(next_frame < next_reg ? next_frame : next_reg, next_report,
					end ? end : UINT64_MAX));
	}
	/* drain: answers still due, then BYE */
	uint64_t drain_end = cl_now_ns() + c->win_ns;
	while (cl_pending(c) && (now = cl_now_ns()) < drain_end) {
		cl_recs_retire(c, now, 0);
		cl_wait(c, now, drain_end);
	}
	cl_rx(c);
	cl_recs_retire(c, cl_now_ns(), 1);
	cl_send_report(c);
	cl_send_bye(c);
	if (c->csv)
		fflush(c->csv);
	return rc;
}

/* ---- results ------------------------------------------------------------------------------- */
static double cl_percentile(const struct cl_client *c, double p)
{
	uint64_t n = 0;
	for (size_t i = 0; i < c->hist_n; i++)
		n += c->hist[i];
	if (!n)
		return 0;
	uint64_t want = (uint64_t)ceil(p * (double)n), acc = 0;
	if (!want)
		want = 1;
	for (size_t i = 0; i < c->hist_n; i++) {
		acc += c->hist[i];
		if (acc >= want)
			return (double)i * 0.1;
	}
	return (double)(c->hist_n - 1) * 0.1;
}

void cl_client_stats(const struct cl_client *c, struct cl_stats *out)
{
	*out = c->st;
	out->served = c->served;
	out->width = c->width;
	out->height = c->height;
	out->target_bytes = c->target_bytes;
	out->quality = (int)lround(c->quality);
	out->bw_result_kbps = (uint32_t)fmin(c->bw_res.kbps + 0.5, 4e9);
	out->bw_send_kbps = (uint32_t)fmin(c->bw_snd.kbps + 0.5, 4e9);
	out->bw_limited = c->limited;
	out->miss = c->st.sent ? (double)(c->st.sent - c->st.in_slo) / (double)c->st.sent : 0;
	out->p50_ms = cl_percentile(c, 0.50);
	out->p99_ms = cl_percentile(c, 0.99);
}

int cl_stats_format(const struct cl_stats *s, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "client: ssrc=0x%08x sent=%llu results=%llu drops=%llu lost=%llu "
			 "miss=%.4f p50_ms=%.1f p99_ms=%.1f variants=",
			 s->ssrc, (unsigned long long)s->sent, (unsigned long long)s->results,
			 (unsigned long long)s->drops, (unsigned long long)s->lost, s->miss,
			 s->p50_ms, s->p99_ms);
	for (unsigned i = 0; i < s->n_variants && n >= 0; i++) {
		int k = snprintf(buf && (size_t)n < cap ? buf + n : NULL,
				 (size_t)n < cap ? cap - (size_t)n : 0, "%s%u:%llu", i ? "," : "",
				 s->variants[i].variant, (unsigned long long)s->variants[i].results);
		n = k < 0 ? k : n + k;
	}
	if (n >= 0) {
		int k = snprintf(buf && (size_t)n < cap ? buf + n : NULL,
				 (size_t)n < cap ? cap - (size_t)n : 0, " bw_kbps=%u sizes=", s->bw_kbps);
		n = k < 0 ? k : n + k;
	}
	for (unsigned i = 0; i < s->n_sizes && n >= 0; i++) {
		char *p = buf && (size_t)n < cap ? buf + n : NULL;
		size_t room = (size_t)n < cap ? cap - (size_t)n : 0;
		unsigned w = s->sizes[i].width, h = s->sizes[i].height;
		unsigned long long f = (unsigned long long)s->sizes[i].frames;
		int k = w == h ? snprintf(p, room, "%s%u:%llu", i ? "," : "", w, f)
			       : snprintf(p, room, "%s%ux%u:%llu", i ? "," : "", w, h, f);
		n = k < 0 ? k : n + k;
	}
	return n;
}
