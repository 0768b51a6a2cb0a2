/* dp_client — the bounded client table: clients preallocated in an array, indexed by an
 * open-addressing hash table (linear probing, backward-shift deletion, keyed hash seeded at
 * start-up so that chosen keys cannot build long probe chains). No allocation after init. */
#include <stdlib.h>

#include <rte_malloc.h>
#include <rte_random.h>

#include "dataplane/dp_int.h"

static inline uint64_t dp_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline uint32_t dp_key_hash(const struct dp_ctx *ctx, const struct dp_client_key *k)
{
	uint64_t a = ((uint64_t)k->ip << 32 | k->ssrc) ^ ctx->seed;
	uint64_t b = dp_mix64(a) ^ ((uint64_t)k->port * 0x9E3779B97F4A7C15ULL);
	return (uint32_t)dp_mix64(b);
}

static inline int dp_key_eq(const struct dp_client_key *a, const struct dp_client_key *b)
{
	return a->ip == b->ip && a->port == b->port && a->ssrc == b->ssrc;
}

int dp_table_init(struct dp_ctx *ctx)
{
	unsigned n = ctx->cfg.max_clients, fpc = ctx->cfg.frames_per_client;
	uint32_t cap = rte_align32pow2(2 * n);
	ctx->mask = cap - 1;
	ctx->seed = rte_rand();
	ctx->slots = rte_zmalloc("dp_slots", sizeof(uint32_t) * cap, RTE_CACHE_LINE_SIZE);
	ctx->clients = rte_zmalloc("dp_clients", sizeof(struct dp_client) * n,
				   RTE_CACHE_LINE_SIZE);
	ctx->reasm = rte_zmalloc("dp_reasm", sizeof(struct dp_reasm) * n * fpc,
				 RTE_CACHE_LINE_SIZE);
	ctx->free_idx = rte_zmalloc("dp_free", sizeof(uint32_t) * n, 0);
	if (!ctx->slots || !ctx->clients || !ctx->reasm || !ctx->free_idx) {
		fprintf(stderr, "dp_create: cannot reserve the table of %u clients\n", n);
		dp_table_fini(ctx);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		ctx->clients[i].fr = &ctx->reasm[(size_t)i * fpc];
		ctx->free_idx[i] = n - 1 - i; /* pop order 0, 1, 2, ... */
	}
	ctx->n_free = n;
	ctx->n_clients = 0;
	return 0;
}

void dp_table_fini(struct dp_ctx *ctx)
{
	rte_free(ctx->slots);
	rte_free(ctx->clients);
	rte_free(ctx->reasm);
	rte_free(ctx->free_idx);
	ctx->slots = NULL;
	ctx->clients = NULL;
	ctx->reasm = NULL;
	ctx->free_idx = NULL;
}

struct dp_client *dp_client_find(const struct dp_ctx *ctx, const struct dp_client_key *key)
{
	uint32_t h = dp_key_hash(ctx, key);
	for (uint32_t i = h & ctx->mask;; i = (i + 1) & ctx->mask) {
		uint32_t v = ctx->slots[i];
		if (v == 0)
			return NULL;
		struct dp_client *c = &ctx->clients[v - 1];
		if (c->hash == h && dp_key_eq(&c->key, key))
			return c;
	}
}

struct dp_client *dp_client_get(struct dp_ctx *ctx, const struct dp_client_key *key,
				uint64_t now_ns, int *created)
{
	uint32_t h = dp_key_hash(ctx, key);
	uint32_t i;
	*created = 0;
	for (i = h & ctx->mask;; i = (i + 1) & ctx->mask) {
		uint32_t v = ctx->slots[i];
		if (v == 0)
			break;
		struct dp_client *c = &ctx->clients[v - 1];
		if (c->hash == h && dp_key_eq(&c->key, key))
			return c;
	}
	if (ctx->n_free == 0)
		return NULL;
	uint32_t idx = ctx->free_idx[--ctx->n_free];
	struct dp_client *c = &ctx->clients[idx];
	struct dp_reasm *fr = c->fr;
	memset(c, 0, sizeof(*c));
	c->fr = fr;
	for (unsigned f = 0; f < ctx->cfg.frames_per_client; f++)
		fr[f].active = 0;
	c->key = *key;
	c->hash = h;
	c->in_use = 1;
	c->raw_format = ctx->cfg.default_raw_format;
	c->raw_width = ctx->cfg.default_raw_width;
	c->raw_height = ctx->cfg.default_raw_height;
	c->st.slo_ms = ctx->cfg.default_slo_ms;
	c->st.fps_req_x100 = ctx->cfg.default_fps_x100;
	c->st.rtcp_port = (uint16_t)(key->port + 1);
	c->st.first_seen_ns = c->st.last_seen_ns = now_ns;
	c->rate_t0 = now_ns;
	ctx->slots[i] = idx + 1;
	ctx->n_clients++;
	DP_CNT_INC(ctx, DP_CNT_CLIENTS_NEW);
	*created = 1;
	return c;
}

void dp_client_remove(struct dp_ctx *ctx, struct dp_client *c)
{
	for (unsigned f = 0; f < ctx->cfg.frames_per_client; f++)
		if (c->fr[f].active)
			dp_reasm_abandon(ctx, c, &c->fr[f], 0);
	uint32_t idx = (uint32_t)(c - ctx->clients);
	uint32_t i = c->hash & ctx->mask;
	while (ctx->slots[i] != idx + 1)
		i = (i + 1) & ctx->mask;
	/* backward shift: pull later members of the probe run into the hole */
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & ctx->mask;
		uint32_t v = ctx->slots[j];
		if (v == 0)
			break;
		uint32_t home = ctx->clients[v - 1].hash & ctx->mask;
		/* the entry at j may move to i unless its home lies cyclically in (i, j] */
		int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		ctx->slots[i] = v;
		i = j;
	}
	ctx->slots[i] = 0;
	c->in_use = 0;
	ctx->free_idx[ctx->n_free++] = idx;
	ctx->n_clients--;
}

unsigned dp_client_count(const struct dp_ctx *ctx) { return ctx->n_clients; }

int dp_client_stats_get(const struct dp_ctx *ctx, const struct dp_client_key *key,
			struct dp_client_stats *out)
{
	const struct dp_client *c = dp_client_find(ctx, key);
	if (!c)
		return -ENOENT;
	*out = c->st;
	out->ext_seq_max = c->seq.cycles + c->seq.max_seq;
	return 0;
}

int dp_client_raw_set(struct dp_ctx *ctx, const struct dp_client_key *key, uint8_t format,
		      uint16_t width, uint16_t height)
{
	struct dp_client *c = dp_client_find(ctx, key);
	if (!c)
		return -ENOENT;
	if (format < DP_FRAME_RAW420 || format > DP_FRAME_RAWRGB || width == 0 || height == 0)
		return -EINVAL;
	c->raw_format = format;
	c->raw_width = width;
	c->raw_height = height;
	return 0;
}
