/* cl_client.c — the client loop: pacing, JPEG encode, RTP/JPEG packetising, REGISTER/REPORT/
 * BYE, ASSIGN/RESULT/DROP handling, per-frame accounting and the CSV. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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

enum cl_status { CL_PENDING, CL_RESULT, CL_DROP, CL_LOST };

struct cl_rec { /* one sent frame */
	uint64_t idx;
	uint64_t send_ns; /* first packet handed to the socket */
	uint32_t rtp_ts;
	uint32_t latency_us;
	uint32_t bytes;   /* UDP payload bytes of the frame's packets */
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
	/* buffers sized at creation for CL_SIZE_MAX x CL_SIZE_MAX */
	uint8_t *i420;
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
	uint32_t rtt_win[CL_RTT_WIN];
	unsigned rtt_n, rtt_i;
	double bw_est_kbps;
	uint16_t seq;
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
	c->quality = CL_Q_START;
	if (!o->server || cl_parse_server(o->server, &c->media_dst, &c->rtcp_dst) ||
	    !(o->fps > 0) || !o->slo_ms || o->width < 16 || o->height < 16 || o->width % 8 ||
	    o->height % 8 || o->width > CL_SIZE_MAX || o->height > CL_SIZE_MAX ||
	    o->payload < CL_PAYLOAD_MIN || o->payload > CL_PAYLOAD_MAX || (o->local_port & 1)) {
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
	c->width = o->width;
	c->height = o->height;
	/* buffers for the largest frame RFC 2435 can carry */
	c->i420 = malloc((size_t)CL_SIZE_MAX * CL_SIZE_MAX * 3 / 2);
	c->jpeg_cap = tjBufSize(CL_SIZE_MAX, CL_SIZE_MAX, TJSAMP_420);
	c->jpeg = tjAlloc((int)c->jpeg_cap);
	c->tj = tjInitCompress();
	c->pkt = calloc(CL_BATCH, CL_PKT_MAX);
	c->rx = malloc(CL_RX_MAX);
	uint64_t slo_ns = (uint64_t)o->slo_ms * 1000000ull;
	c->win_ns = slo_ns > CL_NS ? slo_ns : CL_NS;
	c->ring_cap = (size_t)ceil(o->fps * (double)c->win_ns / 1e9) + 16;
	c->ring = calloc(c->ring_cap, sizeof(*c->ring));
	c->hist_n = (size_t)(c->win_ns / 100000) + 1;
	c->hist = calloc(c->hist_n, sizeof(*c->hist));
	if (!c->i420 || !c->jpeg || !c->tj || !c->pkt || !c->rx || !c->ring || !c->hist) {
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
				"height,bytes\n");
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
	fprintf(c->csv, "%u,%u,%u\n", r->width, r->height, r->bytes);
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

/* Bandwidth: --bw-kbps when given; else a moving average of each answered frame's bytes over
 * the part of its latency not spent in the server (a lower bound of the uplink rate: the
 * path delay is in the denominator too); 0 (unknown) before any RESULT. */
static uint32_t cl_bw_kbps(const struct cl_client *c)
{
	if (c->o.bw_kbps)
		return c->o.bw_kbps;
	return c->bw_est_kbps > 4e9 ? 4000000000u : (uint32_t)c->bw_est_kbps;
}

/* ---- RTCP out ------------------------------------------------------------------------------ */
static void cl_rtcp_send(struct cl_client *c, const uint8_t *buf, size_t len)
{
	/* a failure (server not up yet: ECONNREFUSED) is not fatal: REGISTER is repeated */
	if (sendto(c->rtcp_fd, buf, len, 0, (struct sockaddr *)&c->rtcp_dst, sizeof(c->rtcp_dst)) <
	    0)
		c->st.rtcp_send_errors++;
}

static void cl_send_register(struct cl_client *c, uint64_t now)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REGISTER;
	m.ssrc = c->ssrc;
	m.u.reg.slo_ms = (uint16_t)(c->o.slo_ms > 65535 ? 65535 : c->o.slo_ms);
	double fx = c->o.fps * 100 + 0.5;
	m.u.reg.fps_x100 = (uint16_t)(fx > 65535 ? 65535 : fx);
	m.u.reg.media_port = c->port;
	m.u.reg.formats = DP_APP_FMT_JPEG;
	m.u.reg.n_res = (uint8_t)c->n_res;
	memcpy(m.u.reg.res, c->res, c->n_res * sizeof(c->res[0]));
	uint8_t buf[512];
	ssize_t n = dp_app_build(buf, sizeof(buf), &m);
	if (n > 0)
		cl_rtcp_send(c, buf, (size_t)n);
	if (!c->reg_sent_ns)
		c->reg_sent_ns = now;
}

static void cl_send_report(struct cl_client *c)
{
	struct dp_app_msg m;
	memset(&m, 0, sizeof(m));
	m.kind = DP_APP_REPORT;
	m.ssrc = c->ssrc;
	c->st.bw_kbps = m.u.report.bw_kbps = cl_bw_kbps(c);
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
		c->reg_sent_ns = 0;
	}
	int was = c->served;
	c->served = a->served;
	if (a->served && a->width && a->height) {
		c->width = cl_size_fit(a->width);
		c->height = cl_size_fit(a->height);
		c->target_bytes = a->target_bytes;
	} else if (!a->served) {
		/* keep streaming at the smallest size listed; the server may place us later */
		unsigned best = 0;
		for (unsigned i = 1; i < c->n_res; i++)
			if ((unsigned)c->res[i].width * c->res[i].height <
			    (unsigned)c->res[best].width * c->res[best].height)
				best = i;
		c->width = c->res[best].width;
		c->height = c->res[best].height;
		c->target_bytes = 0;
		if (was != 0)
			fprintf(stderr, "client: not served (%s), sending %ux%u\n",
				cl_reason_name(a->reason), c->width, c->height);
	}
}

static void cl_on_result(struct cl_client *c, const struct dp_app_result *res, uint64_t now)
{
	struct cl_rec *r = cl_rec_find(c, res->rtp_ts);
	if (!r) {
		c->st.unmatched++;
		return;
	}
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
	c->rtt_i = (c->rtt_i + 1) % CL_RTT_WIN;
	if (c->rtt_n < CL_RTT_WIN)
		c->rtt_n++;
	double sample = (double)r->bytes * 8000.0 / (double)net_us; /* kbit/s */
	c->bw_est_kbps = c->bw_est_kbps > 0 ? c->bw_est_kbps * 0.875 + sample * 0.125 : sample;
}

static void cl_on_drop(struct cl_client *c, const struct dp_app_drop *d, uint64_t now)
{
	struct cl_rec *r = cl_rec_find(c, d->rtp_ts);
	if (!r) {
		c->st.unmatched++;
		return;
	}
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
 * RTP port is parsed the same way). */
static void cl_rx(struct cl_client *c)
{
	int fds[2] = {c->rtcp_fd, c->rtp_fd};
	for (int k = 0; k < 2; k++) {
		for (;;) {
			ssize_t n = recv(fds[k], c->rx, CL_RX_MAX, MSG_DONTWAIT);
			if (n < 0)
				break;
			cl_rtcp_in(c, c->rx, (size_t)n, cl_now_ns());
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

/* Encodes c->i420 (w x h) and sends it as RTP/JPEG; fills r. */
static int cl_send_frame(struct cl_client *c, struct cl_rec *r, unsigned w, unsigned h)
{
	int q = (int)lround(c->quality);
	const unsigned char *planes[3] = {c->i420, c->i420 + (size_t)w * h,
					  c->i420 + (size_t)w * h + (size_t)(w / 2) * (h / 2)};
	int strides[3] = {(int)w, (int)w / 2, (int)w / 2};
	unsigned char *jpeg = c->jpeg;
	unsigned long jlen = c->jpeg_cap;
	if (tjCompressFromYUVPlanes(c->tj, planes, (int)w, strides, (int)h, TJSAMP_420, &jpeg,
				    &jlen, q, TJFLAG_NOREALLOC) != 0) {
		fprintf(stderr, "client: JPEG encode failed: %s\n", tjGetErrorStr2(c->tj));
		return -EIO;
	}
	struct dp_jfif_info ji;
	int rc = dp_jfif_split(jpeg, jlen, &ji);
	if (rc) {
		fprintf(stderr, "client: JPEG not sendable: %s\n", dp_proto_strerror(rc));
		return -EPROTO;
	}
	/* Q 1..99 when the tables are the RFC 2435 formula's for q (libjpeg's are), else the
	 * tables go in-band with Q 255 */
	uint8_t luma[64], chroma[64], qt[128];
	int formula = ji.n_qt == 2 && dp_jpeg_qtables((uint8_t)q, luma, chroma) == 0 &&
		      !memcmp(luma, ji.qt[0], 64) && !memcmp(chroma, ji.qt[1], 64);
	memcpy(qt, ji.qt[0], 64);
	memcpy(qt + 64, ji.qt[ji.n_qt > 1], 64);
	uint32_t rtp_ts = r->rtp_ts;
	size_t off = 0;
	unsigned n = 0;
	uint64_t bytes = 0;
	r->send_ns = cl_now_ns();
	while (off < ji.scan_len || (off == 0 && ji.scan_len == 0)) {
		uint8_t *p = c->pkt[n];
		struct dp_rtp_hdr rh = {.payload_type = DP_RTP_PT_JPEG, .seq = c->seq++,
					.timestamp = rtp_ts, .ssrc = c->ssrc};
		struct dp_jpeg_hdr jh = {.frag_offset = (uint32_t)off, .type = ji.type,
					 .q = formula ? (uint8_t)q : 255, .width = ji.width,
					 .height = ji.height,
					 .restart_interval = ji.restart_interval,
					 .restart_first = 1, .restart_last = 1,
					 .restart_count = 0x3fff, .qt_len = 128, .qt = qt};
		ssize_t a = dp_rtp_build(p, CL_PKT_MAX, &rh);
		ssize_t b = a < 0 ? -1 : dp_jpeg_build(p + a, CL_PKT_MAX - (size_t)a, &jh);
		if (b < 0 || (size_t)(a + b) >= c->o.payload)
			return -EPROTO;
		size_t room = c->o.payload - (size_t)(a + b);
		size_t len = ji.scan_len - off < room ? ji.scan_len - off : room;
		if (off + len == ji.scan_len)
			p[1] |= 0x80; /* marker: last packet of the frame */
		memcpy(p + a + b, ji.scan + off, len);
		off += len;
		c->iov[n] = (struct iovec){p, (size_t)(a + b) + len};
		c->msg[n] = (struct mmsghdr){.msg_hdr = {.msg_name = &c->media_dst,
							 .msg_namelen = sizeof(c->media_dst),
							 .msg_iov = &c->iov[n], .msg_iovlen = 1}};
		bytes += (size_t)(a + b) + len;
		c->st.pkts++;
		if (++n == CL_BATCH || off == ji.scan_len) {
			if ((rc = cl_flush(c, n)) != 0) {
				fprintf(stderr, "client: send: %s\n", strerror(-rc));
				return rc;
			}
			n = 0;
		}
		if (ji.scan_len == 0)
			break;
	}
	r->bytes = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
	r->width = (uint16_t)w;
	r->height = (uint16_t)h;
	c->st.bytes += bytes;
	/* adaptive quality: scale by the square root of target / size, kept in 20..95 */
	if (c->target_bytes && jlen) {
		double qn = c->quality * sqrt((double)c->target_bytes / (double)jlen);
		c->quality = qn < CL_Q_MIN ? CL_Q_MIN : qn > CL_Q_MAX ? CL_Q_MAX : qn;
	}
	return 0;
}

/* ---- loop ---------------------------------------------------------------------------------- */
static void cl_progress(struct cl_client *c, uint64_t now)
{
	fprintf(stderr,
		"client: t=%.0fs sent=%llu results=%llu drops=%llu lost=%llu size=%ux%u q=%d "
		"target=%u served=%d rtt_us=%u bw_kbps=%u\n",
		(double)(now - c->t0_ns) / 1e9, (unsigned long long)c->st.sent,
		(unsigned long long)c->st.results, (unsigned long long)c->st.drops,
		(unsigned long long)c->st.lost, c->width, c->height, (int)lround(c->quality),
		c->target_bytes, c->served, c->st.rtt_us, c->st.bw_kbps);
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
			cl_send_register(c, now);
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
	return n;
}
