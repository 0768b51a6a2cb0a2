/* dp_staging — fixed-size frame slots in one page-aligned host allocation, with a lock-free
 * free list (an rte_ring of slot indices, multi-producer/multi-consumer) so that the slot a
 * consumer releases on another thread goes back without a lock. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_ring.h>

#include "dataplane/dp_int.h"

struct dp_staging {
	uint8_t *base;
	size_t map_len;
	size_t slot_size;
	unsigned n_slots;
	struct rte_ring *free_ring;
	_Atomic uint8_t *taken; /* 1 while a slot is out of the pool */
};

struct dp_staging *dp_staging_create(const char *name, unsigned n_slots, size_t slot_size)
{
	if (!name || n_slots == 0 || slot_size == 0 || n_slots > (1u << 24)) {
		fprintf(stderr, "dp_staging_create: bad arguments\n");
		return NULL;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	slot_size = (slot_size + page - 1) / page * page;
	struct dp_staging *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->slot_size = slot_size;
	st->n_slots = n_slots;
	st->map_len = slot_size * n_slots;
	void *p = mmap(NULL, st->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "dp_staging_create: mmap of %zu bytes: %s\n", st->map_len,
			strerror(errno));
		free(st);
		return NULL;
	}
	st->base = p;
	st->taken = calloc(n_slots, sizeof(*st->taken));
	char rname[RTE_RING_NAMESIZE];
	snprintf(rname, sizeof(rname), "stg_%s", name);
	st->free_ring = rte_ring_create(rname, rte_align32pow2(n_slots + 1), SOCKET_ID_ANY, 0);
	if (!st->taken || !st->free_ring) {
		fprintf(stderr, "dp_staging_create: ring %s: %s\n", rname,
			rte_strerror(rte_errno));
		dp_staging_destroy(st);
		return NULL;
	}
	for (uintptr_t i = 0; i < n_slots; i++)
		rte_ring_enqueue(st->free_ring, (void *)(i + 1));
	return st;
}

void dp_staging_destroy(struct dp_staging *st)
{
	if (!st)
		return;
	rte_ring_free(st->free_ring);
	free((void *)st->taken);
	if (st->base)
		munmap(st->base, st->map_len);
	free(st);
}

int dp_staging_get(struct dp_staging *st, uint32_t *slot)
{
	void *obj;
	if (rte_ring_dequeue(st->free_ring, &obj) != 0)
		return -ENOBUFS;
	uint32_t s = (uint32_t)((uintptr_t)obj - 1);
	atomic_store_explicit(&st->taken[s], 1, memory_order_relaxed);
	*slot = s;
	return 0;
}

int dp_staging_put(struct dp_staging *st, uint32_t slot)
{
	if (slot >= st->n_slots)
		return -EINVAL;
	uint8_t expect = 1;
	if (!atomic_compare_exchange_strong(&st->taken[slot], &expect, 0))
		return -EALREADY;
	/* the ring holds every slot, so it cannot be full */
	rte_ring_enqueue(st->free_ring, (void *)((uintptr_t)slot + 1));
	return 0;
}

uint8_t *dp_staging_slot(const struct dp_staging *st, uint32_t slot)
{
	return slot < st->n_slots ? st->base + (size_t)slot * st->slot_size : NULL;
}

size_t dp_staging_slot_size(const struct dp_staging *st) { return st->slot_size; }

unsigned dp_staging_slot_count(const struct dp_staging *st) { return st->n_slots; }

unsigned dp_staging_free_count(const struct dp_staging *st)
{
	return rte_ring_count(st->free_ring);
}

void *dp_staging_base(const struct dp_staging *st, size_t *len)
{
	if (len)
		*len = st->map_len;
	return st->base;
}
