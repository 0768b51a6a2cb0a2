/* Metrics endpoint (ctl.h part 4): the Prometheus text builder and a small HTTP/1.1 server on
 * a kernel TCP socket, polled by the control thread. See control/README.md. */
#include "control/ctl.h"
#include "control/ctl_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- text builder ------------------------------------------------------------------------ */

#define TRUNC_LINE "# truncated\n"
#define TRUNC_RESERVE (sizeof(TRUNC_LINE)) /* the line and the NUL */

void ctl_prom_init(struct ctl_prom *b, char *buf, size_t cap)
{
	b->buf = buf;
	b->cap = buf ? cap : 0;
	b->len = 0;
	b->truncated = 0;
	if (b->cap)
		b->buf[0] = '\0';
}

size_t ctl_prom_finish(struct ctl_prom *b)
{
	if (b->truncated && b->cap >= TRUNC_RESERVE && b->len + TRUNC_RESERVE <= b->cap &&
	    (b->len < sizeof(TRUNC_LINE) - 1 ||
	     memcmp(b->buf + b->len - (sizeof(TRUNC_LINE) - 1), TRUNC_LINE,
		    sizeof(TRUNC_LINE) - 1) != 0)) {
		memcpy(b->buf + b->len, TRUNC_LINE, sizeof(TRUNC_LINE));
		b->len += sizeof(TRUNC_LINE) - 1;
	}
	return b->len;
}

/* One line being written at b->buf + b->len; committed by line_end() only if it all fit. */
struct line {
	struct ctl_prom *b;
	size_t pos, limit;
	int bad;
};

static int line_begin(struct line *l, struct ctl_prom *b)
{
	l->b = b;
	l->pos = b->len;
	l->limit = b->cap > TRUNC_RESERVE ? b->cap - TRUNC_RESERVE : 0;
	l->bad = b->truncated;
	return !l->bad;
}

static void put(struct line *l, const char *s, size_t n)
{
	if (l->bad)
		return;
	if (n > l->limit - l->pos) {
		l->bad = 1;
		return;
	}
	memcpy(l->b->buf + l->pos, s, n);
	l->pos += n;
}

static void puts_(struct line *l, const char *s)
{
	if (s)
		put(l, s, strlen(s));
}

static void line_end(struct line *l)
{
	put(l, "\n", 1);
	struct ctl_prom *b = l->b;
	if (l->bad) {
		b->truncated = 1;
	} else {
		b->len = l->pos;
	}
	if (b->cap)
		b->buf[b->len] = '\0';
}

/* Prometheus number: NaN, +Inf, -Inf; integral values as integers; otherwise the shortest
 * of %.15g/%.16g/%.17g that reads back exactly. Always '.' as the decimal point. */
static void fmt_num(char *out, size_t cap, double v)
{
	if (isnan(v)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(out, cap, "0");
		return;
	}
	if (v == trunc(v) && fabs(v) < 1e18) {
		snprintf(out, cap, "%.0f", v);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, v);
		if (prec == 17 || strtod(out, NULL) == v)
			break;
	}
	for (char *p = out; *p; p++)
		if (*p == ',')
			*p = '.';
}

static void put_num(struct line *l, double v)
{
	char num[40];
	fmt_num(num, sizeof(num), v);
	puts_(l, num);
}

static void put_u64(struct line *l, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);
	put(l, num, (size_t)n);
}

void ctl_prom_family(struct ctl_prom *b, const char *name, const char *type, const char *help)
{
	struct line l;
	if (help) {
		if (!line_begin(&l, b))
			return;
		puts_(&l, "# HELP ");
		puts_(&l, name);
		put(&l, " ", 1);
		for (const char *p = help; *p; p++) {
			if (*p == '\\')
				put(&l, "\\\\", 2);
			else if (*p == '\n')
				put(&l, "\\n", 2);
			else
				put(&l, p, 1);
		}
		line_end(&l);
	}
	if (!line_begin(&l, b))
		return;
	puts_(&l, "# TYPE ");
	puts_(&l, name);
	put(&l, " ", 1);
	puts_(&l, type);
	line_end(&l);
}

/* name suffix {labels extra} */
static void put_series(struct line *l, const char *name, const char *suffix, const char *labels,
		       const char *extra)
{
	int have = labels && *labels, more = extra && *extra;
	puts_(l, name);
	puts_(l, suffix);
	if (have || more) {
		put(l, "{", 1);
		if (have)
			puts_(l, labels);
		if (have && more)
			put(l, ",", 1);
		if (more)
			puts_(l, extra);
		put(l, "}", 1);
	}
	put(l, " ", 1);
}

void ctl_prom_sample(struct ctl_prom *b, const char *name, const char *labels, double v)
{
	struct line l;
	if (!line_begin(&l, b))
		return;
	put_series(&l, name, NULL, labels, NULL);
	put_num(&l, v);
	line_end(&l);
}

void ctl_prom_histogram(struct ctl_prom *b, const char *name, const char *labels,
			const double *bounds, const uint64_t *counts, int n, double sum)
{
	uint64_t cum = 0;
	char le[64], num[40];
	struct line l;
	if (n < 0)
		n = 0;
	for (int i = 0; i <= n; i++) {
		cum += counts ? counts[i] : 0;
		if (i < n)
			fmt_num(num, sizeof(num), bounds[i]);
		snprintf(le, sizeof(le), "le=\"%s\"", i < n ? num : "+Inf");
		if (!line_begin(&l, b))
			return;
		put_series(&l, name, "_bucket", labels, le);
		put_u64(&l, cum);
		line_end(&l);
	}
	if (!line_begin(&l, b))
		return;
	put_series(&l, name, "_sum", labels, NULL);
	put_num(&l, sum);
	line_end(&l);
	if (!line_begin(&l, b))
		return;
	put_series(&l, name, "_count", labels, NULL);
	put_u64(&l, cum);
	line_end(&l);
}

int ctl_prom_escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0;
	if (!dst || !cap)
		return -ENOSPC;
	for (const char *p = s ? s : ""; *p; p++) {
		const char *rep = NULL;
		if (*p == '\\')
			rep = "\\\\";
		else if (*p == '"')
			rep = "\\\"";
		else if (*p == '\n')
			rep = "\\n";
		size_t k = rep ? 2 : 1;
		if (o + k + 1 > cap) {
			dst[0] = '\0';
			return -ENOSPC;
		}
		memcpy(dst + o, rep ? rep : p, k);
		o += k;
	}
	dst[o] = '\0';
	return o > INT32_MAX ? -ENOSPC : (int)o;
}

/* ---- HTTP server ------------------------------------------------------------------------- */

#define REQ_MAX (8 * 1024)     /* request line + headers */
#define ACCEPT_BURST 32        /* accepts per call at most */
#define DEFAULT_IDLE_MS 5000

enum conn_state { CONN_FREE, CONN_READ, CONN_WRITE, CONN_DRAIN };

struct conn {
	int fd;
	enum conn_state state;
	int status;        /* of the response being written */
	uint64_t deadline; /* ms, CLOCK_MONOTONIC */
	size_t in_len;
	size_t hdr_len, hdr_off;
	const char *body;
	size_t body_len, body_off;
	char *bodybuf; /* max_body + 1 bytes, this connection's /metrics text */
	char hdr[320];
	char in[REQ_MAX];
};

struct ctl_metrics {
	int lfd;
	uint16_t port;
	int max_conns, idle_ms;
	size_t max_body;
	struct conn *conns;
	struct pollfd *pfd;
	int *pfd_conn; /* pfd[k] belongs to conns[pfd_conn[k]] (k >= 1) */
	struct ctl_metrics_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct ctl_metrics *ctl_metrics_create(const char *addr, uint16_t port, size_t max_body,
				       int max_conns, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
		struct sockaddr_storage ss;
	} sa;
	socklen_t salen;
	const char *a = addr ? addr : "0.0.0.0";
	int v6 = 0;

	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, a, &sa.v4.sin_addr) == 1) {
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(port);
		salen = sizeof(sa.v4);
	} else if (inet_pton(AF_INET6, a, &sa.v6.sin6_addr) == 1) {
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(port);
		salen = sizeof(sa.v6);
		v6 = 1;
	} else {
		ctl_err_set(err, errlen, 0, "metrics: bad listen address '%s' (want numeric IPv4 or IPv6)", a);
		errno = EINVAL;
		return NULL;
	}
	if (max_body < 64 || max_body > SIZE_MAX / 2) {
		ctl_err_set(err, errlen, 0, "metrics: body limit %zu bytes out of range (at least 64)",
			    max_body);
		errno = EINVAL;
		return NULL;
	}
	if (max_conns < 1 || max_conns > 1024) {
		ctl_err_set(err, errlen, 0, "metrics: %d connections out of 1..1024", max_conns);
		errno = EINVAL;
		return NULL;
	}
	const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";

	struct ctl_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	m->lfd = -1;
	m->max_conns = max_conns;
	m->max_body = max_body;
	m->idle_ms = DEFAULT_IDLE_MS;
	m->conns = calloc((size_t)max_conns, sizeof(*m->conns));
	m->pfd = calloc((size_t)max_conns + 1, sizeof(*m->pfd));
	m->pfd_conn = calloc((size_t)max_conns + 1, sizeof(*m->pfd_conn));
	if (!m->conns || !m->pfd || !m->pfd_conn)
		goto nomem;
	for (int i = 0; i < max_conns; i++) {
		m->conns[i].fd = -1;
		m->conns[i].bodybuf = malloc(max_body + 1);
		if (!m->conns[i].bodybuf)
			goto nomem;
	}

	m->lfd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->lfd < 0) {
		int e = errno;
		ctl_err_set(err, errlen, 0, "metrics: socket: %s", strerror(e));
		ctl_metrics_destroy(m);
		errno = e;
		return NULL;
	}
	int one = 1;
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->lfd, &sa.sa, salen) != 0) {
		int e = errno;
		if (e == EADDRINUSE)
			ctl_err_set(err, errlen, 0, "metrics: %s%s%s:%u is in use", lb, a, rb,
				    (unsigned)port);
		else
			ctl_err_set(err, errlen, 0, "metrics: cannot listen on %s%s%s:%u: %s", lb, a,
				    rb, (unsigned)port, strerror(e));
		ctl_metrics_destroy(m);
		errno = e;
		return NULL;
	}
	if (listen(m->lfd, 64) != 0) {
		int e = errno;
		ctl_err_set(err, errlen, 0, "metrics: listen on %s%s%s:%u: %s", lb, a, rb,
			    (unsigned)port, strerror(e));
		ctl_metrics_destroy(m);
		errno = e;
		return NULL;
	}
	salen = sizeof(sa);
	if (getsockname(m->lfd, &sa.sa, &salen) != 0) {
		int e = errno;
		ctl_err_set(err, errlen, 0, "metrics: getsockname: %s", strerror(e));
		ctl_metrics_destroy(m);
		errno = e;
		return NULL;
	}
	m->port = ntohs(v6 ? sa.v6.sin6_port : sa.v4.sin_port);
	return m;

nomem:
	ctl_err_set(err, errlen, 0, "metrics: out of memory (%d connections x %zu bytes)",
		    max_conns, max_body);
	ctl_metrics_destroy(m);
	errno = ENOMEM;
	return NULL;
}

void ctl_metrics_destroy(struct ctl_metrics *m)
{
	if (!m)
		return;
	if (m->conns) {
		for (int i = 0; i < m->max_conns; i++) {
			if (m->conns[i].fd >= 0)
				close(m->conns[i].fd);
			free(m->conns[i].bodybuf);
		}
	}
	if (m->lfd >= 0)
		close(m->lfd);
	free(m->conns);
	free(m->pfd);
	free(m->pfd_conn);
	free(m);
}

uint16_t ctl_metrics_port(const struct ctl_metrics *m)
{
	return m ? m->port : 0;
}

int ctl_metrics_set_idle_timeout(struct ctl_metrics *m, int timeout_ms)
{
	if (!m || timeout_ms <= 0)
		return -EINVAL;
	m->idle_ms = timeout_ms;
	return 0;
}

void ctl_metrics_stats_get(const struct ctl_metrics *m, struct ctl_metrics_stats *out)
{
	if (m && out)
		*out = m->st;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_FREE;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* Sets up the response: status line and headers in c->hdr, body (not sent for HEAD). */
static void respond(struct conn *c, int status, const char *ctype, const char *body,
		    size_t body_len, int head, uint64_t now, int idle_ms)
{
	int n = snprintf(c->hdr, sizeof(c->hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 status, reason(status), ctype, body_len,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	c->hdr_len = n > 0 && (size_t)n < sizeof(c->hdr) ? (size_t)n : 0;
	c->hdr_off = 0;
	c->body = body;
	c->body_len = head ? 0 : body_len;
	c->body_off = 0;
	c->status = status;
	c->state = CONN_WRITE;
	c->deadline = now + (uint64_t)idle_ms;
}

static const char TEXT_PLAIN[] = "text/plain; charset=utf-8";
static const char PROM_TYPE[] = "text/plain; version=0.0.4; charset=utf-8";
static const char INDEX_BODY[] = "shoal metrics: GET /metrics (Prometheus text format 0.0.4)\n";

static int is_tchar(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The request in c->in[0 .. end) is complete: parse it and set up the response. */
static void handle_request(struct ctl_metrics *m, struct conn *c, size_t end, uint64_t now,
			   void (*render)(void *, struct ctl_prom *), void *arg)
{
	static const char bad[] = "bad request\n", notfound[] = "not found\n",
			  notallowed[] = "method not allowed\n";
	char *p = c->in, *e = c->in + end;
	m->st.requests++;
	while (p < e && (*p == '\r' || *p == '\n')) /* empty lines before the request line */
		p++;
	char *eol = memchr(p, '\n', (size_t)(e - p));
	if (!eol)
		goto malformed;
	char *lend = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
	/* METHOD SP target SP HTTP/1.x */
	char *meth = p, *sp1 = memchr(p, ' ', (size_t)(lend - p));
	if (!sp1 || sp1 == meth)
		goto malformed;
	char *tgt = sp1 + 1, *sp2 = memchr(tgt, ' ', (size_t)(lend - tgt));
	if (!sp2 || sp2 == tgt)
		goto malformed;
	char *ver = sp2 + 1;
	size_t mlen = (size_t)(sp1 - meth), tlen = (size_t)(sp2 - tgt), vlen = (size_t)(lend - ver);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar(meth[i]))
			goto malformed;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)tgt[i] <= ' ' || tgt[i] == 0x7f)
			goto malformed;
	if (!(tgt[0] == '/' || (tlen == 1 && tgt[0] == '*')))
		goto malformed;
	if (!(vlen == 8 && (memcmp(ver, "HTTP/1.1", 8) == 0 || memcmp(ver, "HTTP/1.0", 8) == 0)))
		goto malformed;
	/* header fields: "name: value", no folding */
	for (char *h = eol + 1; h < e;) {
		char *hn = memchr(h, '\n', (size_t)(e - h));
		char *hend = hn ? hn : e;
		if (hend > h && hend[-1] == '\r')
			hend--;
		if (hend == h)
			break; /* the empty line ending the header */
		char *colon = memchr(h, ':', (size_t)(hend - h));
		if (*h == ' ' || *h == '\t' || !colon || colon == h)
			goto malformed;
		for (char *q = h; q < colon; q++)
			if (!is_tchar(*q))
				goto malformed;
		h = hn ? hn + 1 : e;
	}

	int head = mlen == 4 && memcmp(meth, "HEAD", 4) == 0;
	int get = mlen == 3 && memcmp(meth, "GET", 3) == 0;
	if (!get && !head) {
		respond(c, 405, TEXT_PLAIN, notallowed, sizeof(notallowed) - 1, 0, now, m->idle_ms);
		return;
	}
	char *q = memchr(tgt, '?', tlen);
	size_t plen = q ? (size_t)(q - tgt) : tlen;
	if (plen == 8 && memcmp(tgt, "/metrics", 8) == 0) {
		struct ctl_prom b;
		ctl_prom_init(&b, c->bodybuf, m->max_body + 1);
		if (render)
			render(arg, &b);
		if (b.truncated)
			m->st.truncated++;
		size_t n = ctl_prom_finish(&b);
		respond(c, 200, PROM_TYPE, c->bodybuf, n, head, now, m->idle_ms);
	} else if (plen == 1 && tgt[0] == '/') {
		respond(c, 200, TEXT_PLAIN, INDEX_BODY, sizeof(INDEX_BODY) - 1, head, now, m->idle_ms);
	} else {
		respond(c, 404, TEXT_PLAIN, notfound, sizeof(notfound) - 1, head, now, m->idle_ms);
	}
	return;
malformed:
	respond(c, 400, TEXT_PLAIN, bad, sizeof(bad) - 1, 0, now, m->idle_ms);
}

/* Reads and discards until EAGAIN; closes on EOF or error. */
static void conn_drain(struct conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		if (r > 0)
			continue;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_close(c);
		return;
	}
}

/* Writes what the socket takes. Returns 1 when the response was completed by this call. */
static int conn_write(struct ctl_metrics *m, struct conn *c, uint64_t now)
{
	for (;;) {
		struct iovec iov[2];
		int k = 0;
		if (c->hdr_off < c->hdr_len)
			iov[k++] = (struct iovec){c->hdr + c->hdr_off, c->hdr_len - c->hdr_off};
		if (c->body_off < c->body_len)
			iov[k++] = (struct iovec){(void *)(c->body + c->body_off),
						  c->body_len - c->body_off};
		if (k == 0)
			break;
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_close(c); /* the peer went away */
			return 0;
		}
		size_t left = (size_t)w, hl = c->hdr_len - c->hdr_off;
		size_t dh = left < hl ? left : hl;
		c->hdr_off += dh;
		c->body_off += left - dh;
		c->deadline = now + (uint64_t)m->idle_ms;
	}
	if (c->status >= 200 && c->status < 300)
		m->st.responses_2xx++;
	else if (c->status >= 400 && c->status < 500)
		m->st.responses_4xx++;
	/* Close gracefully: send FIN, then read until the peer closes, so unread request bytes
	 * do not turn the close into a reset that could destroy the response in flight. */
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_DRAIN;
	c->deadline = now + (uint64_t)m->idle_ms;
	conn_drain(c);
	return 1;
}

/* Reads request bytes; answers once the header is complete. Returns responses completed. */
static int conn_read(struct ctl_metrics *m, struct conn *c, uint64_t now,
		     void (*render)(void *, struct ctl_prom *), void *arg)
{
	for (;;) {
		if (c->in_len == sizeof(c->in)) {
			static const char big[] = "request header too large\n";
			m->st.requests++;
			respond(c, 431, TEXT_PLAIN, big, sizeof(big) - 1, 0, now, m->idle_ms);
			return conn_write(m, c, now);
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r <= 0) {
			conn_close(c); /* closed before a complete request */
			return 0;
		}
		size_t from = c->in_len >= 2 ? c->in_len - 2 : 0;
		c->in_len += (size_t)r;
		for (size_t i = from; i + 1 < c->in_len; i++) {
			/* end of header: "\n\r\n" or "\n\n", after at least one non-empty line */
			if (c->in[i] != '\n')
				continue;
			size_t j = i + 1;
			if (c->in[j] == '\r' && j + 1 < c->in_len)
				j++;
			if (c->in[j] != '\n')
				continue;
			size_t k = 0;
			while (k < i && (c->in[k] == '\r' || c->in[k] == '\n'))
				k++;
			if (k >= i)
				continue; /* only empty lines so far */
			handle_request(m, c, j + 1, now, render, arg);
			return conn_write(m, c, now);
		}
	}
}

static void refuse(struct ctl_metrics *m, int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
				   "charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
				   "busy\n";
	char sink[1024];
	for (int i = 0; i < 8 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		; /* what already arrived, so the close is less likely to be a reset */
	ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	shutdown(fd, SHUT_WR);
	close(fd);
	m->st.conns_refused++;
}

static int accept_new(struct ctl_metrics *m, uint64_t now,
		      void (*render)(void *, struct ctl_prom *), void *arg)
{
	int done = 0;
	for (int burst = 0; burst < ACCEPT_BURST; burst++) {
		int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break; /* EAGAIN, or EMFILE & co: try again on the next call */
		}
		struct conn *c = NULL;
		for (int i = 0; i < m->max_conns && !c; i++)
			if (m->conns[i].state == CONN_FREE)
				c = &m->conns[i];
		if (!c) {
			refuse(m, fd);
			continue;
		}
		c->fd = fd;
		c->state = CONN_READ;
		c->in_len = 0;
		c->deadline = now + (uint64_t)m->idle_ms;
		m->st.conns_accepted++;
		done += conn_read(m, c, now, render, arg);
	}
	return done;
}

int ctl_metrics_poll(struct ctl_metrics *m, int timeout_ms,
		     void (*render)(void *arg, struct ctl_prom *out), void *arg)
{
	if (!m || timeout_ms < 0)
		return -EINVAL;
	uint64_t now = now_ms();
	int nfd = 1, wait_ms = timeout_ms;
	m->pfd[0] = (struct pollfd){.fd = m->lfd, .events = POLLIN};
	for (int i = 0; i < m->max_conns; i++) {
		struct conn *c = &m->conns[i];
		if (c->state == CONN_FREE)
			continue;
		m->pfd[nfd] = (struct pollfd){.fd = c->fd,
					      .events = c->state == CONN_WRITE ? POLLOUT : POLLIN};
		m->pfd_conn[nfd++] = i;
		uint64_t left = c->deadline > now ? c->deadline - now : 0;
		if (left < (uint64_t)wait_ms)
			wait_ms = (int)left;
	}
	int r = poll(m->pfd, (nfds_t)nfd, wait_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	now = now_ms();
	int done = 0;
	for (int k = 1; k < nfd && r > 0; k++) {
		if (!m->pfd[k].revents)
			continue;
		struct conn *c = &m->conns[m->pfd_conn[k]];
		if (c->state == CONN_READ)
			done += conn_read(m, c, now, render, arg);
		else if (c->state == CONN_WRITE)
			done += conn_write(m, c, now);
		else if (c->state == CONN_DRAIN)
			conn_drain(c);
	}
	if (r > 0 && (m->pfd[0].revents & POLLIN))
		done += accept_new(m, now, render, arg);
	for (int i = 0; i < m->max_conns; i++) {
		struct conn *c = &m->conns[i];
		if (c->state == CONN_FREE || now < c->deadline)
			continue;
		if (c->state != CONN_DRAIN)
			m->st.conns_timed_out++;
		conn_close(c);
	}
	return done;
}
