/* Metrics endpoint tests (suite 'fast'): the Prometheus text builder and the HTTP server over
 * real TCP connections on 127.0.0.1. The server is polled from the test's main thread; clients
 * are non-blocking sockets pumped in the same loop, or threads where a client must be slow. */
#include "harness.h"

#include "control/ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SAFETY_MS 20000 /* a hung exchange fails the test instead of hanging it */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- a test client ------------------------------------------------------------------------ */

struct client {
	int fd;
	int eof; /* the server closed (or reset) the connection */
	char *buf;
	size_t len, cap;
};

static int client_connect(struct client *c, uint16_t port)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return -1;
	return 0;
}

static int client_send(struct client *c, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int client_open(struct client *c, uint16_t port, const char *req)
{
	if (client_connect(c, port) != 0)
		return -1;
	return req ? client_send(c, req, strlen(req)) : 0;
}

/* Reads what is there without blocking; sets eof on EOF or reset. */
static void client_read(struct client *c)
{
	while (!c->eof) {
		if (c->cap - c->len < 65536) {
			size_t nc = c->cap ? c->cap * 2 : 131072;
			char *nb = realloc(c->buf, nc + 1);
			if (!nb) {
				c->eof = 1;
				return;
			}
			c->buf = nb;
			c->cap = nc;
		}
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (r > 0) {
			c->len += (size_t)r;
			c->buf[c->len] = '\0';
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->eof = 1;
	}
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

typedef void (*render_fn)(void *, struct ctl_prom *);

/* Polls the server and reads the clients until every one has seen the server close. */
static int pump(struct ctl_metrics *m, render_fn render, void *arg, struct client *cs, int n)
{
	uint64_t end = mono_ms() + SAFETY_MS;
	for (;;) {
		int r = ctl_metrics_poll(m, 5, render, arg);
		if (r < 0) {
			fprintf(stderr, "ctl_metrics_poll: %d\n", r);
			return -1;
		}
		int open = 0;
		for (int i = 0; i < n; i++) {
			client_read(&cs[i]);
			open += !cs[i].eof;
		}
		if (!open)
			return 0;
		if (mono_ms() > end) {
			fprintf(stderr, "exchange did not finish\n");
			return -1;
		}
	}
}

/* ---- a response parser -------------------------------------------------------------------- */

struct resp {
	int status;
	long clen; /* Content-Length, -1 when absent */
	char ctype[128], connection[64], allow[64];
	const char *body;
	size_t body_len;
};

static void header_value(const char *hdr, size_t hlen, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = hdr; p < hdr + hlen;) {
		const char *e = strstr(p, "\r\n");
		if (!e || e > hdr + hlen)
			e = hdr + hlen;
		if ((size_t)(e - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			size_t k = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
			memcpy(out, v, k);
			out[k] = '\0';
			return;
		}
		p = e + 2;
	}
}

static int parse_resp(const struct client *c, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	r->clen = -1;
	if (!c->buf)
		return -1;
	const char *end = strstr(c->buf, "\r\n\r\n");
	if (!end || sscanf(c->buf, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	size_t hlen = (size_t)(end - c->buf) + 2;
	char v[64];
	header_value(c->buf, hlen, "Content-Length", v, sizeof(v));
	if (v[0])
		r->clen = strtol(v, NULL, 10);
	header_value(c->buf, hlen, "Content-Type", r->ctype, sizeof(r->ctype));
	header_value(c->buf, hlen, "Connection", r->connection, sizeof(r->connection));
	header_value(c->buf, hlen, "Allow", r->allow, sizeof(r->allow));
	r->body = end + 4;
	r->body_len = c->len - (size_t)(r->body - c->buf);
	return 0;
}

/* One request on its own connection, pumped to completion; the response in r, raw in c. */
static int get1(struct ctl_metrics *m, render_fn render, void *arg, const char *req,
		struct client *c, struct resp *r)
{
	if (client_open(c, ctl_metrics_port(m), req) != 0)
		return -1;
	if (pump(m, render, arg, c, 1) != 0)
		return -1;
	return parse_resp(c, r);
}

static const char PROM_CT[] = "text/plain; version=0.0.4; charset=utf-8";

/* ---- render callbacks --------------------------------------------------------------------- */

struct counted {
	int calls;
};

static void render_basic(void *arg, struct ctl_prom *out)
{
	((struct counted *)arg)->calls++;
	ctl_prom_family(out, "shoal_frames_total", "counter", "Frames received.");
	ctl_prom_sample(out, "shoal_frames_total", "client=\"10.0.0.2:5004/0x1234\",instance=\"0\"", 12);
	ctl_prom_sample(out, "shoal_frames_total", "client=\"10.0.0.3:5004/0x1\",instance=\"0\"", 1e15);
	ctl_prom_family(out, "shoal_queue_depth", "gauge", "Frames waiting.");
	ctl_prom_sample(out, "shoal_queue_depth", NULL, 0.25);
	ctl_prom_sample(out, "shoal_queue_depth", "", 3);
}

static const char BASIC_BODY[] =
	"# HELP shoal_frames_total Frames received.\n"
	"# TYPE shoal_frames_total counter\n"
	"shoal_frames_total{client=\"10.0.0.2:5004/0x1234\",instance=\"0\"} 12\n"
	"shoal_frames_total{client=\"10.0.0.3:5004/0x1\",instance=\"0\"} 1000000000000000\n"
	"# HELP shoal_queue_depth Frames waiting.\n"
	"# TYPE shoal_queue_depth gauge\n"
	"shoal_queue_depth 0.25\n"
	"shoal_queue_depth 3\n";

/* ---- cases -------------------------------------------------------------------------------- */

static int test_get_metrics_returns_families_with_headers(void)
{
	char err[160];
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 4, err, sizeof(err));
	ST_CHECK(m);
	ST_CHECK(ctl_metrics_port(m) != 0);
	struct counted cnt = {0};
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_basic, &cnt,
			 "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n", &c, &r),
		    0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK(strcmp(r.ctype, PROM_CT) == 0);
	ST_CHECK(strcasecmp(r.connection, "close") == 0);
	ST_CHECK_EQ(r.clen, (long)strlen(BASIC_BODY));
	ST_CHECK_EQ(r.body_len, strlen(BASIC_BODY));
	ST_CHECK_MEM(r.body, BASIC_BODY, r.body_len);
	ST_CHECK_EQ(cnt.calls, 1);
	client_close(&c);

	/* a query string and HTTP/1.0 are fine too; render runs once per request */
	ST_CHECK_EQ(get1(m, render_basic, &cnt, "GET /metrics?x=1 HTTP/1.0\n\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK_EQ(r.body_len, strlen(BASIC_BODY));
	ST_CHECK_EQ(cnt.calls, 2);
	client_close(&c);

	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.requests, 2);
	ST_CHECK_EQ(st.responses_2xx, 2);
	ST_CHECK_EQ(st.responses_4xx, 0);
	ST_CHECK_EQ(st.truncated, 0);
	ST_CHECK_EQ(st.conns_accepted, 2);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_head_and_index(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_basic, &cnt, "HEAD /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK(strcmp(r.ctype, PROM_CT) == 0);
	ST_CHECK_EQ(r.clen, (long)strlen(BASIC_BODY));
	ST_CHECK_EQ(r.body_len, 0);
	ST_CHECK_EQ(cnt.calls, 1);
	client_close(&c);

	ST_CHECK_EQ(get1(m, render_basic, &cnt, "GET / HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK(strncmp(r.ctype, "text/plain", 10) == 0);
	ST_CHECK_EQ(r.clen, (long)r.body_len);
	ST_CHECK(r.body_len > 0 && strstr(r.body, "/metrics") != NULL);
	ST_CHECK_EQ(cnt.calls, 1); /* the index does not render */
	client_close(&c);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_numbers_print_as_prometheus_spells_them(void)
{
	char buf[1024];
	struct ctl_prom b;
	ctl_prom_init(&b, buf, sizeof(buf));
	const double v[] = {12, -3, 0, -0.0, 0.1, 1.5e-7, 1e300, 123456789012.0,
			    9007199254740993.0, NAN, INFINITY, -INFINITY, 0.25};
	const char *want[] = {"12", "-3", "0", "0", "0.1", "1.5e-07", "1e+300", "123456789012",
			      "9007199254740992", "NaN", "+Inf", "-Inf", "0.25"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		ctl_prom_sample(&b, "x", NULL, v[i]);
	ST_CHECK_EQ(ctl_prom_finish(&b), strlen(buf));
	ST_CHECK(!b.truncated);
	const char *p = buf;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "x %s\n", want[i]);
		if (strncmp(p, line, strlen(line)) != 0) {
			fprintf(stderr, "value %zu: want '%s', text continues '%.30s'\n", i, line, p);
			return ST_FAIL;
		}
		p += strlen(line);
	}
	ST_CHECK_EQ(*p, '\0');

	/* non-integers read back exactly */
	const double odd[] = {1.0 / 3, 2.0 / 3e-9, 0.1 + 0.2, 1e-300, -7.0 / 11};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		ctl_prom_init(&b, buf, sizeof(buf));
		ctl_prom_sample(&b, "y", NULL, odd[i]);
		ST_CHECK(strncmp(buf, "y ", 2) == 0);
		char *e;
		double back = strtod(buf + 2, &e);
		ST_CHECK(back == odd[i]);
		ST_CHECK_EQ(*e, '\n');
		ST_CHECK(strlen(buf + 2) <= 24);
	}
	return ST_PASS;
}

/* ---- histogram ---- */

static const double HB[] = {0.005, 0.01, 0.1, 1, 10};
static const uint64_t HC[] = {1, 2, 0, 4, 3, 5};

static void render_hist(void *arg, struct ctl_prom *out)
{
	(void)arg;
	ctl_prom_family(out, "shoal_latency_seconds", "histogram", "Frame latency.");
	ctl_prom_histogram(out, "shoal_latency_seconds", "instance=\"0\"", HB, HC, 5, 123.5);
	ctl_prom_histogram(out, "shoal_latency_seconds", NULL, HB, HC, 5, 0.75);
}

/* One sample line: name{labels} value. */
struct sample {
	char name[96], labels[160];
	double value;
};

static int parse_sample(const char *line, size_t n, struct sample *s)
{
	char tmp[512];
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	s->labels[0] = '\0';
	char *sp = strrchr(tmp, ' ');
	if (!sp)
		return -1;
	*sp = '\0';
	const char *val = sp + 1;
	if (strcmp(val, "+Inf") == 0)
		s->value = INFINITY;
	else if (strcmp(val, "-Inf") == 0)
		s->value = -INFINITY;
	else if (strcmp(val, "NaN") == 0)
		s->value = NAN;
	else {
		char *e;
		s->value = strtod(val, &e);
		if (*e || e == val)
			return -1;
	}
	char *br = strchr(tmp, '{');
	if (br) {
		size_t l = strlen(br);
		if (l < 2 || br[l - 1] != '}' || l - 2 >= sizeof(s->labels))
			return -1;
		memcpy(s->labels, br + 1, l - 2);
		s->labels[l - 2] = '\0';
		*br = '\0';
	}
	if (strlen(tmp) >= sizeof(s->name))
		return -1;
	strcpy(s->name, tmp);
	return 0;
}

/* Checks one histogram series (labels without le) in body against HB/HC and sum. */
static int check_hist(const char *body, size_t len, const char *base, const char *labels,
		      double sum)
{
	char bucket[128], sumn[128], countn[128];
	snprintf(bucket, sizeof(bucket), "%s_bucket", base);
	snprintf(sumn, sizeof(sumn), "%s_sum", base);
	snprintf(countn, sizeof(countn), "%s_count", base);
	double les[8], cums[8], got_sum = NAN, got_count = NAN;
	int nb = 0;
	for (const char *p = body; p < body + len;) {
		const char *e = memchr(p, '\n', (size_t)(body + len - p));
		ST_CHECK(e != NULL);
		if (*p != '#') {
			struct sample s;
			ST_CHECK_EQ(parse_sample(p, (size_t)(e - p), &s), 0);
			if (strcmp(s.name, bucket) == 0) {
				/* labels: [labels,]le="X" */
				char *le = strstr(s.labels, "le=\"");
				ST_CHECK(le != NULL);
				size_t pre = (size_t)(le - s.labels);
				int match = labels[0] ? pre == strlen(labels) + 1 &&
								strncmp(s.labels, labels, pre - 1) == 0
						      : pre == 0;
				if (match) {
					ST_CHECK(nb < 8);
					char *q = strchr(le + 4, '"');
					ST_CHECK(q && q[1] == '\0');
					*q = '\0';
					les[nb] = strcmp(le + 4, "+Inf") == 0 ? INFINITY : strtod(le + 4, NULL);
					cums[nb++] = s.value;
				}
			} else if (strcmp(s.labels, labels) == 0) {
				if (strcmp(s.name, sumn) == 0)
					got_sum = s.value;
				else if (strcmp(s.name, countn) == 0)
					got_count = s.value;
			}
		}
		p = e + 1;
	}
	ST_CHECK_EQ(nb, 6);
	double cum = 0;
	for (int i = 0; i < 6; i++) {
		cum += (double)HC[i];
		ST_CHECK(les[i] == (i < 5 ? HB[i] : INFINITY));
		ST_CHECK(cums[i] == cum);
		ST_CHECK(i == 0 || cums[i] >= cums[i - 1]);
	}
	ST_CHECK(got_count == cum);
	ST_CHECK(got_sum == sum);
	return ST_PASS;
}

static int test_histogram_is_cumulative_and_parses_back(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 4, NULL, 0);
	ST_CHECK(m);
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_hist, NULL, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK_EQ(r.clen, (long)r.body_len);
	ST_CHECK(strstr(r.body, "# TYPE shoal_latency_seconds histogram\n") != NULL);
	ST_CHECK(strstr(r.body, "shoal_latency_seconds_bucket{instance=\"0\",le=\"0.005\"} 1\n"));
	ST_CHECK(strstr(r.body, "shoal_latency_seconds_bucket{instance=\"0\",le=\"+Inf\"} 15\n"));
	ST_CHECK(strstr(r.body, "shoal_latency_seconds_bucket{le=\"10\"} 10\n"));
	ST_CHECK(strstr(r.body, "shoal_latency_seconds_count 15\n"));
	if (check_hist(r.body, r.body_len, "shoal_latency_seconds", "instance=\"0\"", 123.5) != ST_PASS)
		return ST_FAIL;
	if (check_hist(r.body, r.body_len, "shoal_latency_seconds", "", 0.75) != ST_PASS)
		return ST_FAIL;
	client_close(&c);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- escaping ---- */

static void render_escaped(void *arg, struct ctl_prom *out)
{
	char v[128], labels[160];
	ctl_prom_escape(v, sizeof(v), "cam \"north\"\nC:\\video");
	snprintf(labels, sizeof(labels), "client=\"%s\"", v);
	ctl_prom_family(out, "shoal_x", "gauge", "Help with a\nnewline and a \\ backslash.");
	ctl_prom_sample(out, "shoal_x", labels, 1);
	ctl_prom_sample(out, "shoal_y", NULL, 2);
}

static int test_label_values_and_help_are_escaped(void)
{
	char d[64];
	ST_CHECK_EQ(ctl_prom_escape(d, sizeof(d), "a\\b\"c\nd"), 10);
	ST_CHECK(strcmp(d, "a\\\\b\\\"c\\nd") == 0);
	ST_CHECK_EQ(ctl_prom_escape(d, sizeof(d), "plain"), 5);
	ST_CHECK(strcmp(d, "plain") == 0);
	ST_CHECK_EQ(ctl_prom_escape(d, sizeof(d), ""), 0);
	ST_CHECK_EQ(ctl_prom_escape(d, sizeof(d), NULL), 0);
	ST_CHECK_EQ(d[0], '\0');
	ST_CHECK_EQ(ctl_prom_escape(d, 5, "a\"b"), 4); /* exactly fits with the NUL */
	ST_CHECK(strcmp(d, "a\\\"b") == 0);
	ST_CHECK_EQ(ctl_prom_escape(d, 4, "a\"b"), -ENOSPC);
	ST_CHECK_EQ(ctl_prom_escape(d, 0, "a"), -ENOSPC);

	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 2, NULL, 0);
	ST_CHECK(m);
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_escaped, NULL, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	static const char want[] =
		"# HELP shoal_x Help with a\\nnewline and a \\\\ backslash.\n"
		"# TYPE shoal_x gauge\n"
		"shoal_x{client=\"cam \\\"north\\\"\\nC:\\\\video\"} 1\n"
		"shoal_y 2\n";
	ST_CHECK_EQ(r.body_len, strlen(want));
	ST_CHECK_MEM(r.body, want, r.body_len);
	client_close(&c);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- error statuses ---- */

static int expect_status(struct ctl_metrics *m, struct counted *cnt, const char *req, int status)
{
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_basic, cnt, req, &c, &r), 0);
	if (r.status != status) {
		fprintf(stderr, "request '%s': status %d, want %d\n", req, r.status, status);
		client_close(&c);
		return ST_FAIL;
	}
	if (strncmp(req, "HEAD ", 5) == 0)
		ST_CHECK(r.body_len == 0 && r.clen > 0);
	else
		ST_CHECK_EQ(r.clen, (long)r.body_len);
	ST_CHECK(strcasecmp(r.connection, "close") == 0);
	if (status == 405)
		ST_CHECK(strcmp(r.allow, "GET, HEAD") == 0);
	client_close(&c);
	return ST_PASS;
}

static int test_unknown_path_gives_404(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	const char *reqs[] = {"GET /nope HTTP/1.1\r\n\r\n", "GET /metrics/ HTTP/1.1\r\n\r\n",
			      "GET /metricsx HTTP/1.1\r\n\r\n", "HEAD /favicon.ico HTTP/1.1\r\n\r\n"};
	for (int i = 0; i < 4; i++)
		if (expect_status(m, &cnt, reqs[i], 404) != ST_PASS)
			return ST_FAIL;
	ST_CHECK_EQ(cnt.calls, 0);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.responses_4xx, 4);
	ST_CHECK_EQ(st.responses_2xx, 0);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_other_method_gives_405(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	const char *reqs[] = {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
			      "DELETE / HTTP/1.1\r\n\r\n", "PUT /metrics HTTP/1.0\r\n\r\n"};
	for (int i = 0; i < 3; i++)
		if (expect_status(m, &cnt, reqs[i], 405) != ST_PASS)
			return ST_FAIL;
	ST_CHECK_EQ(cnt.calls, 0);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_malformed_request_gives_400(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	const char *reqs[] = {"GARBAGE\r\n\r\n",
			      "GET /metrics\r\n\r\n",
			      "GET /metrics HTTP/2.0\r\n\r\n",
			      "GET  /metrics HTTP/1.1\r\n\r\n",
			      "GET metrics HTTP/1.1\r\n\r\n",
			      "G(T /metrics HTTP/1.1\r\n\r\n",
			      "GET /metrics HTTP/1.1\r\nNoColonHere\r\n\r\n",
			      "GET /metrics HTTP/1.1\r\n folded: header\r\n\r\n",
			      "GET /met\x01rics HTTP/1.1\r\n\r\n"};
	int n = (int)(sizeof(reqs) / sizeof(reqs[0]));
	for (int i = 0; i < n; i++)
		if (expect_status(m, &cnt, reqs[i], 400) != ST_PASS)
			return ST_FAIL;
	ST_CHECK_EQ(cnt.calls, 0);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.requests, n);
	ST_CHECK_EQ(st.responses_4xx, n);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_oversized_header_gives_431(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	size_t n = 20000;
	char *req = malloc(n + 64);
	ST_CHECK(req);
	int k = snprintf(req, n + 64, "GET /metrics HTTP/1.1\r\nX-Big: ");
	memset(req + k, 'a', n);
	strcpy(req + k + n, "\r\n\r\n");
	int rc = expect_status(m, &cnt, req, 431);
	free(req);
	ST_CHECK_EQ(rc, ST_PASS);
	ST_CHECK_EQ(cnt.calls, 0);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- a large body to a slow reader ---- */

#define BIG_LINES 150000 /* ~6 MB: more than the socket buffers hold */

static size_t big_line(char *out, size_t cap, int i)
{
	return (size_t)snprintf(out, cap, "shoal_big_metric{series=\"%07d\",kind=\"slow\"} %d\n", i,
				i * 7);
}

static void render_big(void *arg, struct ctl_prom *out)
{
	((struct counted *)arg)->calls++;
	char labels[64];
	for (int i = 0; i < BIG_LINES; i++) {
		snprintf(labels, sizeof(labels), "series=\"%07d\",kind=\"slow\"", i);
		ctl_prom_sample(out, "shoal_big_metric", labels, (double)i * 7);
	}
}

struct slow_arg {
	uint16_t port;
	struct client c;
	atomic_int done;
	int ok;
};

static void *slow_reader(void *p)
{
	struct slow_arg *a = p;
	struct client *c = &a->c;
	a->ok = 0;
	if (client_connect(c, a->port) == 0) {
		int small = 16384;
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
		if (client_send(c, req, strlen(req)) == 0) {
			c->cap = 8u << 20;
			c->buf = malloc(c->cap + 1);
			while (c->buf) {
				size_t want = c->cap - c->len < 8192 ? c->cap - c->len : 8192;
				if (!want)
					break;
				ssize_t r = recv(c->fd, c->buf + c->len, want, 0);
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0) {
					a->ok = r == 0;
					break;
				}
				c->len += (size_t)r;
				c->buf[c->len] = '\0';
				usleep(200); /* slow */
			}
		}
	}
	atomic_store(&a->done, 1);
	return NULL;
}

static int test_large_body_reaches_slow_reader_complete(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 8u << 20, 2, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	struct slow_arg a = {.port = ctl_metrics_port(m)};
	atomic_init(&a.done, 0);
	pthread_t th;
	ST_CHECK_EQ(pthread_create(&th, NULL, slow_reader, &a), 0);
	uint64_t end = mono_ms() + 60000;
	int polls_after_render = 0, completed = 0, failed = 0;
	while (!atomic_load(&a.done)) {
		int r = ctl_metrics_poll(m, 10, render_big, &cnt);
		if (r < 0 || mono_ms() > end) {
			failed = 1;
			break;
		}
		completed += r;
		polls_after_render += cnt.calls > 0 && completed == 0;
	}
	if (failed)
		shutdown(a.c.fd, SHUT_RDWR); /* lets the reader finish */
	pthread_join(th, NULL);
	ST_CHECK(!failed);
	ST_CHECK(a.ok);
	ST_CHECK_EQ(completed, 1);
	ST_CHECK_EQ(cnt.calls, 1);
	/* the body went out over several calls: the first call did not block until done */
	ST_CHECK(polls_after_render >= 1);

	struct resp r;
	ST_CHECK_EQ(parse_resp(&a.c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK(r.body_len > (4u << 20));
	ST_CHECK_EQ(r.clen, (long)r.body_len);
	char line[96];
	const char *p = r.body;
	for (int i = 0; i < BIG_LINES; i++) {
		size_t n = big_line(line, sizeof(line), i);
		if ((size_t)(r.body + r.body_len - p) < n || memcmp(p, line, n) != 0) {
			fprintf(stderr, "line %d differs\n", i);
			return ST_FAIL;
		}
		p += n;
	}
	ST_CHECK(p == r.body + r.body_len);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.truncated, 0);
	client_close(&a.c);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- max_body overflow ---- */

static void render_many(void *arg, struct ctl_prom *out)
{
	char labels[32];
	ctl_prom_family(out, "shoal_many", "gauge", "Many samples.");
	for (int i = 0; i < 200; i++) {
		snprintf(labels, sizeof(labels), "i=\"%d\"", i);
		ctl_prom_sample(out, "shoal_many", labels, i);
	}
}

static int test_overflow_cuts_at_line_and_says_truncated(void)
{
	/* the builder alone: sticky, whole lines, within the buffer */
	char buf[100];
	struct ctl_prom b;
	ctl_prom_init(&b, buf, sizeof(buf));
	ctl_prom_sample(&b, "a", NULL, 1);
	ctl_prom_sample(&b, "a_very_long_metric_name_that_cannot_fit_in_what_is_left_of_the_buffer",
			"le=\"and_these_labels_make_sure_of_it\"", 2);
	ctl_prom_sample(&b, "b", NULL, 3); /* would fit, but comes after a dropped line */
	ST_CHECK(b.truncated);
	size_t n = ctl_prom_finish(&b);
	ST_CHECK(strcmp(buf, "a 1\n# truncated\n") == 0);
	ST_CHECK_EQ(n, strlen(buf));
	ST_CHECK_EQ(ctl_prom_finish(&b), n); /* finishing twice adds nothing */

	/* over HTTP */
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 1000, 2, NULL, 0);
	ST_CHECK(m);
	struct client c;
	struct resp r;
	ST_CHECK_EQ(get1(m, render_many, NULL, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK_EQ(r.clen, (long)r.body_len);
	ST_CHECK(r.body_len <= 1000);
	ST_CHECK(r.body_len > 1000 - 40); /* cut at the last line that fit */
	static const char tail[] = "\n# truncated\n";
	ST_CHECK(r.body_len > strlen(tail));
	ST_CHECK_MEM(r.body + r.body_len - strlen(tail), tail, strlen(tail));
	/* every line before is complete and in order */
	const char *p = strstr(r.body, "# TYPE shoal_many gauge\n");
	ST_CHECK(p);
	p += strlen("# TYPE shoal_many gauge\n");
	int i = 0;
	for (;; i++) {
		char want[64];
		int k = snprintf(want, sizeof(want), "shoal_many{i=\"%d\"} %d\n", i, i);
		if (strncmp(p, want, (size_t)k) != 0)
			break;
		p += k;
	}
	ST_CHECK(i > 10 && i < 200);
	ST_CHECK(strcmp(p, "# truncated\n") == 0);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.truncated, 1);
	client_close(&c);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- several connections ---- */

static int test_concurrent_connections_are_all_answered(void)
{
	enum { N = 6 };
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 8, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	struct client cs[N];
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";
	size_t half = 17;
	for (int i = 0; i < N; i++) { /* all connected, every request half sent */
		ST_CHECK_EQ(client_connect(&cs[i], ctl_metrics_port(m)), 0);
		ST_CHECK_EQ(client_send(&cs[i], req, half), 0);
	}
	for (int k = 0; k < 3; k++)
		ST_CHECK(ctl_metrics_poll(m, 5, render_basic, &cnt) >= 0);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.responses_2xx, 0);
	for (int i = N - 1; i >= 0; i--) /* the rest, in reverse order */
		ST_CHECK_EQ(client_send(&cs[i], req + half, strlen(req) - half), 0);
	ST_CHECK_EQ(pump(m, render_basic, &cnt, cs, N), 0);
	for (int i = 0; i < N; i++) {
		struct resp r;
		ST_CHECK_EQ(parse_resp(&cs[i], &r), 0);
		ST_CHECK_EQ(r.status, 200);
		ST_CHECK_EQ(r.body_len, strlen(BASIC_BODY));
		ST_CHECK_MEM(r.body, BASIC_BODY, r.body_len);
		client_close(&cs[i]);
	}
	ST_CHECK_EQ(cnt.calls, N);
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.responses_2xx, N);
	ST_CHECK_EQ(st.conns_accepted, N);
	ST_CHECK_EQ(st.conns_refused, 0);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_connections_over_max_are_refused_503(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 2, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	struct client idle[2], c;
	struct ctl_metrics_stats st;
	for (int i = 0; i < 2; i++)
		ST_CHECK_EQ(client_connect(&idle[i], ctl_metrics_port(m)), 0);
	uint64_t end = mono_ms() + SAFETY_MS;
	do {
		ST_CHECK(ctl_metrics_poll(m, 5, render_basic, &cnt) >= 0);
		ctl_metrics_stats_get(m, &st);
		ST_CHECK(mono_ms() < end);
	} while (st.conns_accepted < 2);

	struct resp r;
	ST_CHECK_EQ(get1(m, render_basic, &cnt, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 503);
	client_close(&c);
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.conns_refused, 1);
	ST_CHECK_EQ(cnt.calls, 0);

	/* a slot frees when its client goes away */
	client_close(&idle[0]);
	for (int k = 0; k < 3; k++) /* the server sees the close */
		ST_CHECK(ctl_metrics_poll(m, 5, render_basic, &cnt) >= 0);
	ST_CHECK_EQ(get1(m, render_basic, &cnt, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	client_close(&c);
	client_close(&idle[1]);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

static int test_silent_client_does_not_block_others_and_times_out(void)
{
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 4, NULL, 0);
	ST_CHECK(m);
	ST_CHECK_EQ(ctl_metrics_set_idle_timeout(m, 0), -EINVAL);
	ST_CHECK_EQ(ctl_metrics_set_idle_timeout(m, 300), 0);
	struct counted cnt = {0};
	struct client silent[2], c;
	ST_CHECK_EQ(client_open(&silent[0], ctl_metrics_port(m), NULL), 0);           /* nothing */
	ST_CHECK_EQ(client_open(&silent[1], ctl_metrics_port(m), "GET /metr"), 0);   /* incomplete */
	ST_CHECK(ctl_metrics_poll(m, 5, render_basic, &cnt) >= 0);

	struct resp r;
	ST_CHECK_EQ(get1(m, render_basic, &cnt, "GET /metrics HTTP/1.1\r\n\r\n", &c, &r), 0);
	ST_CHECK_EQ(r.status, 200);
	ST_CHECK_EQ(r.body_len, strlen(BASIC_BODY));
	client_close(&c);

	/* both silent connections are closed by the server, with no response */
	ST_CHECK_EQ(pump(m, render_basic, &cnt, silent, 2), 0);
	ST_CHECK_EQ(silent[0].len, 0);
	ST_CHECK_EQ(silent[1].len, 0);
	struct ctl_metrics_stats st;
	ctl_metrics_stats_get(m, &st);
	ST_CHECK_EQ(st.conns_timed_out, 2);
	ST_CHECK_EQ(st.responses_2xx, 1);
	ST_CHECK_EQ(st.requests, 1);
	client_close(&silent[0]);
	client_close(&silent[1]);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- curl ---- */

struct curl_arg {
	char cmd[256];
	char out[8192];
	size_t len;
	int rc;
	atomic_int done;
};

static void *run_curl(void *p)
{
	struct curl_arg *a = p;
	FILE *f = popen(a->cmd, "r");
	a->rc = -1;
	if (f) {
		size_t r;
		while ((r = fread(a->out + a->len, 1, sizeof(a->out) - 1 - a->len, f)) > 0)
			a->len += r;
		a->out[a->len] = '\0';
		a->rc = pclose(f);
	}
	atomic_store(&a->done, 1);
	return NULL;
}

static int test_curl_reads_metrics(void)
{
	ST_SKIP_IF(system("command -v curl >/dev/null 2>&1") != 0, "curl is not installed");
	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 65536, 4, NULL, 0);
	ST_CHECK(m);
	struct counted cnt = {0};
	static struct curl_arg a;
	memset(&a, 0, sizeof(a));
	atomic_init(&a.done, 0);
	snprintf(a.cmd, sizeof(a.cmd),
		 "curl -sS -i --max-time 15 --noproxy '*' http://127.0.0.1:%u/metrics 2>&1",
		 (unsigned)ctl_metrics_port(m));
	pthread_t th;
	ST_CHECK_EQ(pthread_create(&th, NULL, run_curl, &a), 0);
	while (!atomic_load(&a.done))
		if (ctl_metrics_poll(m, 10, render_basic, &cnt) < 0)
			break;
	pthread_join(th, NULL);
	if (a.rc != 0)
		fprintf(stderr, "curl: %s\n", a.out);
	ST_CHECK_EQ(a.rc, 0);
	ST_CHECK(strncmp(a.out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	ST_CHECK(strstr(a.out, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	const char *body = strstr(a.out, "\r\n\r\n");
	ST_CHECK(body);
	ST_CHECK(strcmp(body + 4, BASIC_BODY) == 0);
	ST_CHECK_EQ(cnt.calls, 1);
	ctl_metrics_destroy(m);
	return ST_PASS;
}

/* ---- creation errors ---- */

static int test_create_errors_name_the_problem(void)
{
	char err[160] = "";
	ST_CHECK(ctl_metrics_create("300.1.2.3", 0, 4096, 2, err, sizeof(err)) == NULL);
	ST_CHECK(strstr(err, "bad listen address") && strstr(err, "300.1.2.3"));
	ST_CHECK(ctl_metrics_create("localhost", 0, 4096, 2, err, sizeof(err)) == NULL);
	ST_CHECK(ctl_metrics_create("127.0.0.1", 0, 10, 2, err, sizeof(err)) == NULL);
	ST_CHECK(strstr(err, "body limit"));
	ST_CHECK(ctl_metrics_create("127.0.0.1", 0, 4096, 0, err, sizeof(err)) == NULL);
	ST_CHECK(strstr(err, "connections"));

	struct ctl_metrics *m = ctl_metrics_create("127.0.0.1", 0, 4096, 2, err, sizeof(err));
	ST_CHECK(m);
	uint16_t port = ctl_metrics_port(m);
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%u is in use", (unsigned)port);
	ST_CHECK(ctl_metrics_create("127.0.0.1", port, 4096, 2, err, sizeof(err)) == NULL);
	if (!strstr(err, want)) {
		fprintf(stderr, "err: %s\n", err);
		return ST_FAIL;
	}
	ST_CHECK(strchr(err, '\n') == NULL);
	ST_CHECK_EQ(ctl_metrics_poll(m, -1, NULL, NULL), -EINVAL);
	ST_CHECK_EQ(ctl_metrics_poll(m, 0, NULL, NULL), 0);
	ctl_metrics_destroy(m);
	ctl_metrics_destroy(NULL);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_get_metrics_returns_families_with_headers),
	ST_CASE(test_head_and_index),
	ST_CASE(test_numbers_print_as_prometheus_spells_them),
	ST_CASE(test_histogram_is_cumulative_and_parses_back),
	ST_CASE(test_label_values_and_help_are_escaped),
	ST_CASE(test_unknown_path_gives_404),
	ST_CASE(test_other_method_gives_405),
	ST_CASE(test_malformed_request_gives_400),
	ST_CASE(test_oversized_header_gives_431),
	ST_CASE(test_large_body_reaches_slow_reader_complete),
	ST_CASE(test_overflow_cuts_at_line_and_says_truncated),
	ST_CASE(test_concurrent_connections_are_all_answered),
	ST_CASE(test_connections_over_max_are_refused_503),
	ST_CASE(test_silent_client_does_not_block_others_and_times_out),
	ST_CASE(test_curl_reads_metrics),
	ST_CASE(test_create_errors_name_the_problem))
