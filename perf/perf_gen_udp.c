/* shoal-gen kernel mode (--udp HOST:PORT): each client has a media socket on a free port P
 * and an RTCP socket on P + 1, both connected to the server (media port, media port + 1);
 * packets go out with sendmmsg, answers come in through epoll over the RTCP sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf/perf_gen.h"

struct perf_gen_udp_socks {
	int *mfd, *rfd; /* per client: media socket, RTCP socket (media port + 1) */
	int ep;         /* epoll over the RTCP sockets, data = client index */
};

/* Binds a media socket to a free port P and an RTCP socket to P + 1, both connected to the
 * server (dst, dst + 1). 0 or -errno. */
static int perf_gen_udp_pair(const struct sockaddr_in *dst, int *mfd, int *rfd, uint16_t *sport)
{
	struct sockaddr_in dst_rtcp = *dst;
	dst_rtcp.sin_port = htons((uint16_t)(ntohs(dst->sin_port) + 1));
	for (int attempt = 0; attempt < 256; attempt++) {
		int m = socket(AF_INET, SOCK_DGRAM, 0);
		int r = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (m < 0 || r < 0) {
			int e = errno;
			if (m >= 0)
				close(m);
			if (r >= 0)
				close(r);
			return -e;
		}
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof(a);
		if (bind(m, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(m, (struct sockaddr *)&a, &al) == 0 && ntohs(a.sin_port) < 65535) {
			*sport = ntohs(a.sin_port);
			a.sin_port = htons((uint16_t)(*sport + 1));
			if (bind(r, (struct sockaddr *)&a, sizeof(a)) == 0) {
				if (connect(m, (const struct sockaddr *)dst, sizeof(*dst)) != 0 ||
				    connect(r, (const struct sockaddr *)&dst_rtcp, sizeof(dst_rtcp)) != 0) {
					int e = errno;
					close(m);
					close(r);
					return -e;
				}
				*mfd = m;
				*rfd = r;
				return 0;
			}
		}
		close(m);
		close(r);
	}
	return -EADDRINUSE;
}

static int perf_gen_udp_reg_send(void *arg, unsigned i, const uint8_t *buf, size_t len)
{
	const struct perf_gen_udp_socks *sk = arg;
	return send(sk->rfd[i], buf, len, MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

/* Reads what the RTCP sockets hold (waiting up to wait_ms for the first) into the
 * accounting. Returns datagrams read. */
static unsigned perf_gen_udp_rx(struct perf_gen_run *r, const struct perf_gen_udp_socks *sk,
				int wait_ms)
{
	struct epoll_event ev[64];
	uint8_t buf[4096];
	int n = epoll_wait(sk->ep, ev, 64, wait_ms);
	unsigned got = 0;
	for (int e = 0; e < n; e++) {
		unsigned i = ev[e].data.u32;
		for (int k = 0; k < 64; k++) {
			ssize_t len = recv(sk->rfd[i], buf, sizeof(buf), MSG_DONTWAIT);
			if (len < 0 && errno == ECONNREFUSED) /* an ICMP for a REGISTER: nobody there */
				continue;
			if (len < 0)
				break;
			got++;
			perf_lat_rtcp_rx(r->lat, (int)i, buf, (size_t)len, perf_gen_now_ns());
		}
	}
	return got;
}

static void perf_gen_udp_close(struct perf_gen_udp_socks *sk, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (sk->mfd[i] >= 0)
			close(sk->mfd[i]);
		if (sk->rfd[i] >= 0)
			close(sk->rfd[i]);
	}
	if (sk->ep >= 0)
		close(sk->ep);
	free(sk->mfd);
	free(sk->rfd);
}

int perf_gen_udp(struct perf_gen_run *r)
{
	const struct perf_gen_opts *o = r->o;
	char host[64];
	int port;
	const char *colon = strrchr(o->udp, ':');
	if (!colon || colon - o->udp >= (long)sizeof(host) ||
	    sscanf(colon + 1, "%d", &port) != 1 || port < 1 || port > 65534) {
		fprintf(stderr, "shoal-gen: --udp wants HOST:PORT, got '%s'\n", o->udp);
		return 2;
	}
	memcpy(host, o->udp, (size_t)(colon - o->udp));
	host[colon - o->udp] = '\0';
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fprintf(stderr, "shoal-gen: bad address '%s'\n", host);
		return 2;
	}
	if (o->clients > 1024) {
		fprintf(stderr, "shoal-gen: kernel mode supports at most 1024 clients\n");
		return 2;
	}
	/* two sockets per client */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct perf_gen_udp_socks sk = {.mfd = malloc(o->clients * sizeof(int)),
					.rfd = malloc(o->clients * sizeof(int)),
					.ep = epoll_create1(0)};
	if (!sk.mfd || !sk.rfd || sk.ep < 0) {
		fprintf(stderr, "shoal-gen: sockets: %s\n", strerror(errno));
		perf_gen_udp_close(&sk, 0);
		return 1;
	}
	for (unsigned i = 0; i < o->clients; i++)
		sk.mfd[i] = sk.rfd[i] = -1;
	for (unsigned i = 0; i < o->clients; i++) {
		int rc = perf_gen_udp_pair(&dst, &sk.mfd[i], &sk.rfd[i], &r->cl[i].sport);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		if (rc == 0 && epoll_ctl(sk.ep, EPOLL_CTL_ADD, sk.rfd[i], &ev) != 0)
			rc = -errno;
		if (rc) {
			fprintf(stderr, "shoal-gen: socket pair to %s: %s\n", o->udp, strerror(-rc));
			perf_gen_udp_close(&sk, o->clients);
			return 1;
		}
		int sz = 4 << 20;
		setsockopt(sk.mfd[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sk.rfd[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	static uint8_t buf[GEN_BURST][GEN_PKT_MAX];
	struct mmsghdr msg[GEN_BURST * (1 + GEN_STRESS_XMAX)];
	struct iovec iov[GEN_BURST * (1 + GEN_STRESS_XMAX)];
	struct perf_gen_totals t = {0};
	/* REGISTERs before the first frames */
	perf_gen_house(r, perf_gen_now_ns(), 1, perf_gen_udp_reg_send, &sk);
	uint64_t start = perf_gen_now_ns(), end = start + (uint64_t)(o->seconds * 1e9), next_rx = 0;
	perf_gen_shape_start(r, start);
	unsigned rr = 0;
	int ret = 0;
	while (!perf_gen_stop) {
		uint64_t now = perf_gen_now_ns();
		if (now >= end)
			break;
		if (now >= next_rx) { /* answers: read at least every 100 us */
			t.rx_rtcp += perf_gen_udp_rx(r, &sk, 0);
			perf_gen_house(r, now, 0, perf_gen_udp_reg_send, &sk);
			next_rx = now + 100000;
		}
		if (o->pps > 0 && t.pkts > (now - start) * 1e-9 * o->pps)
			continue;
		int i = perf_gen_pick(r, &rr, now);
		if (i < 0)
			continue;
		/* a burst of the same client's packets through its socket */
		struct perf_gen_client *c = &r->cl[i];
		const struct perf_gen_frame *fr =
			c->next_pkt ? &r->fr[c->fr] : perf_gen_frame_start(r, (unsigned)i, now);
		unsigned n = 0, nx = 0;
		int frames = 0;
		while (n < GEN_BURST) {
			unsigned k = c->next_pkt;
			if (n > 0 && !perf_gen_shape_ok(r, (unsigned)i, now))
				break; /* the link's bucket is empty */
			memcpy(buf[n], fr->pkt[k], fr->len[k]);
			perf_gen_rtp_patch(buf[n], c->seq, c->ts, c->ssrc);
			iov[n] = (struct iovec){buf[n], fr->len[k]};
			msg[n] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[n], .msg_iovlen = 1}};
			t.bytes += fr->len[k];
			if (o->stress)
				nx += perf_gen_stress_extra(&r->stress, buf[n], fr->len[k], c->ssrc,
							    r->xp + nx);
			n++;
			if (perf_gen_advance(r, (unsigned)i, now)) {
				frames++;
				break;
			}
		}
		for (unsigned k = 0; k + 1 < n; k++) /* --stress reorder (one frame's packets) */
			if (perf_gen_stress_swap(&r->stress)) {
				struct iovec x = iov[k];
				iov[k] = iov[k + 1];
				iov[++k] = x;
			}
		/* --stress: RTCP-port packets now, media-port ones after the burst */
		unsigned nm = n;
		for (unsigned k = 0; k < nx; k++) {
			struct perf_gen_xpkt *x = &r->xp[k];
			if (x->rtcp) {
				if (send(sk.rfd[i], x->data, x->len, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
				    errno != ENOBUFS && errno != ECONNREFUSED)
					fprintf(stderr, "shoal-gen: send: %s\n", strerror(errno));
				continue;
			}
			iov[nm] = (struct iovec){x->data, x->len};
			msg[nm] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[nm], .msg_iovlen = 1}};
			nm++;
		}
		int sent = 0;
		while (sent < (int)nm && !perf_gen_stop) {
			int rs = sendmmsg(sk.mfd[i], msg + sent, nm - (unsigned)sent, 0);
			if (rs < 0 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED) {
				fprintf(stderr, "shoal-gen: sendmmsg: %s\n", strerror(errno));
				ret = 1;
				break;
			}
			if (rs > 0)
				sent += rs;
		}
		if (ret)
			break;
		t.pkts += n;
		t.frames += (uint64_t)frames;
	}
	t.seconds = (perf_gen_now_ns() - start) * 1e-9;
	perf_gen_stop_frames(r);
	/* answers still in flight */
	uint64_t drain_end = perf_gen_now_ns() + (uint64_t)(o->drain_ms * 1e6);
	for (uint64_t now = perf_gen_now_ns(); now < drain_end && !ret; now = perf_gen_now_ns()) {
		uint64_t left_ms = (drain_end - now) / 1000000;
		t.rx_rtcp += perf_gen_udp_rx(r, &sk, left_ms > 0 ? 1 : 0);
		perf_gen_house(r, perf_gen_now_ns(), 0, perf_gen_udp_reg_send, &sk);
	}
	t.rx_rtcp += perf_gen_udp_rx(r, &sk, 0);
	perf_lat_sweep(r->lat, perf_gen_now_ns(), 1);
	if (!ret)
		ret = perf_gen_report(r, &t);
	perf_gen_udp_close(&sk, o->clients);
	return ret;
}

