/* ctl_srv_route — the control thread's client -> instance routes for shoal-server's
 * dispatcher (ctl_srv.h). Two preallocated tables, sorted by key for binary search; one writer,
 * one reader, C11 atomics, no locks: the writer rewrites a table only after the reader has
 * acknowledged the table published after it, so the reader never sees a table being written. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_srv.h"

struct srv_route_table {
	uint64_t version;
	unsigned n;
	int default_instance;
	struct srv_route_entry *e;
};

struct srv_routes {
	unsigned cap;
	struct srv_route_table t[2];
	_Atomic(struct srv_route_table *) cur; /* NULL before the first publish */
	_Atomic uint64_t ack;                  /* newest version the reader has loaded */
	uint64_t version;                      /* writer's last published version */
};

struct srv_routes *srv_routes_create(unsigned cap)
{
	struct srv_routes *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cap = cap ? cap : 1;
	for (int i = 0; i < 2; i++) {
		r->t[i].e = calloc(r->cap, sizeof(struct srv_route_entry));
		if (!r->t[i].e) {
			srv_routes_destroy(r);
			return NULL;
		}
	}
	atomic_init(&r->cur, NULL);
	atomic_init(&r->ack, 0);
	return r;
}

void srv_routes_destroy(struct srv_routes *r)
{
	if (!r)
		return;
	free(r->t[0].e);
	free(r->t[1].e);
	free(r);
}

int srv_key_cmp(const struct dp_client_key *a, const struct dp_client_key *b)
{
	if (a->ip != b->ip)
		return a->ip < b->ip ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->ssrc != b->ssrc)
		return a->ssrc < b->ssrc ? -1 : 1;
	return 0;
}

static int srv_entry_cmp(const void *a, const void *b)
{
	return srv_key_cmp(&((const struct srv_route_entry *)a)->key,
			   &((const struct srv_route_entry *)b)->key);
}

int srv_routes_writable(const struct srv_routes *r)
{
	return r->version == 0 || atomic_load(&r->ack) == r->version;
}

int srv_routes_publish(struct srv_routes *r, const struct srv_route_entry *e, unsigned n,
		       int default_instance)
{
	if (n > r->cap)
		return -E2BIG;
	if (!srv_routes_writable(r))
		return -EAGAIN;
	struct srv_route_table *cur = atomic_load(&r->cur);
	struct srv_route_table *t = cur == &r->t[0] ? &r->t[1] : &r->t[0];
	memcpy(t->e, e, n * sizeof(*e));
	qsort(t->e, n, sizeof(*e), srv_entry_cmp);
	t->n = n;
	t->default_instance = default_instance;
	t->version = ++r->version;
	atomic_store(&r->cur, t);
	return 0;
}

int srv_routes_lookup(struct srv_routes *r, const struct dp_client_key *key, uint8_t *reason)
{
	struct srv_route_table *t = atomic_load(&r->cur);
	if (!t)
		return 0; /* nothing decided yet: the first instance */
	atomic_store(&r->ack, t->version);
	unsigned lo = 0, hi = t->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		int c = srv_key_cmp(&t->e[mid].key, key);
		if (c == 0) {
			if (t->e[mid].instance < 0 && reason)
				*reason = t->e[mid].reason;
			return t->e[mid].instance;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return t->default_instance;
}
