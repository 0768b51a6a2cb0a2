/* gpu_staging — fixed-size frame slots in one page-aligned host allocation, pinned with
 * cudaHostAlloc when a CUDA device is present, with a lock-free free list so that a slot
 * released on one thread (executor) goes back to the pool used by another (poll lcore).
 *
 * The free list is a bounded multi-producer/multi-consumer queue of slot indices (one
 * sequence number per cell: a cell is writable when seq == position, readable when
 * seq == position + 1). A per-slot "taken" flag catches double returns. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpu/gpu.h"

#ifdef SHOAL_STAGING_CUDA
#include <cuda_runtime_api.h>
#endif

struct stg_cell {
	_Atomic uint64_t seq;
	uint32_t slot;
};

struct gpu_staging {
	uint8_t *base;
	size_t len;
	size_t slot_size;
	unsigned n_slots;
	int pinned;
	uint64_t mask; /* queue capacity - 1 (power of two >= n_slots) */
	struct stg_cell *cells;
	_Atomic uint8_t *taken; /* 1 while a slot is out of the pool */
	_Alignas(64) _Atomic uint64_t head; /* next position to dequeue */
	_Alignas(64) _Atomic uint64_t tail; /* next position to enqueue */
	_Alignas(64) _Atomic unsigned n_free;
};

static void stg_err(char *err, size_t len, const char *fmt, ...)
{
	if (!err || !len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* Pinned memory when a device is there; any CUDA error means "no device" (DESIGN.md §10). */
static void *stg_pinned_alloc(size_t len)
{
#ifdef SHOAL_STAGING_CUDA
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
		cudaGetLastError();
		return NULL;
	}
	void *p = NULL;
	if (cudaHostAlloc(&p, len, cudaHostAllocPortable) != cudaSuccess) {
		cudaGetLastError();
		return NULL;
	}
	return p;
#else
	(void)len;
	return NULL;
#endif
}

static void stg_pinned_free(void *p)
{
#ifdef SHOAL_STAGING_CUDA
	cudaFreeHost(p);
#else
	(void)p;
#endif
}

static void stg_push(struct gpu_staging *st, uint32_t slot)
{
	uint64_t pos = atomic_load_explicit(&st->tail, memory_order_relaxed);
	for (;;) {
		struct stg_cell *c = &st->cells[pos & st->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&st->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				c->slot = slot;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return;
			}
		} else {
			/* dif < 0: the cell's previous slot is being taken by a get that has moved
			 * head but not yet marked the cell; it is never truly full (capacity >=
			 * n_slots), so wait for it. dif > 0: another put moved tail. */
			pos = atomic_load_explicit(&st->tail, memory_order_relaxed);
		}
	}
}

static int stg_pop(struct gpu_staging *st, uint32_t *slot)
{
	uint64_t pos = atomic_load_explicit(&st->head, memory_order_relaxed);
	for (;;) {
		struct stg_cell *c = &st->cells[pos & st->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&st->head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				*slot = c->slot;
				atomic_store_explicit(&c->seq, pos + st->mask + 1,
						      memory_order_release);
				return 0;
			}
		} else if (dif < 0) {
			return -ENOBUFS;
		} else {
			pos = atomic_load_explicit(&st->head, memory_order_relaxed);
		}
	}
}

struct gpu_staging *gpu_staging_create(unsigned n_slots, size_t slot_size, char *err,
				       size_t err_len)
{
	if (n_slots == 0 || slot_size == 0 || n_slots > (1u << 24) || slot_size > ((size_t)1 << 32)) {
		stg_err(err, err_len, "staging: bad size (%u slots of %zu bytes)", n_slots, slot_size);
		return NULL;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	slot_size = (slot_size + page - 1) / page * page;
	struct gpu_staging *st = calloc(1, sizeof(*st));
	if (!st) {
		stg_err(err, err_len, "staging: out of memory");
		return NULL;
	}
	st->slot_size = slot_size;
	st->n_slots = n_slots;
	st->len = slot_size * n_slots;
	uint64_t cap = 1;
	while (cap < n_slots)
		cap <<= 1;
	st->mask = cap - 1;
	st->cells = calloc(cap, sizeof(*st->cells));
	st->taken = calloc(n_slots, sizeof(*st->taken));
	if (!st->cells || !st->taken) {
		stg_err(err, err_len, "staging: out of memory");
		gpu_staging_destroy(st);
		return NULL;
	}
	st->base = stg_pinned_alloc(st->len);
	if (st->base) {
		st->pinned = 1;
	} else {
		void *p = mmap(NULL, st->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED) {
			stg_err(err, err_len, "staging: %u slots of %zu bytes: %s", n_slots,
				slot_size, strerror(errno));
			gpu_staging_destroy(st);
			return NULL;
		}
		st->base = p;
	}
	for (uint64_t i = 0; i < cap; i++)
		atomic_init(&st->cells[i].seq, i);
	for (uint32_t i = 0; i < n_slots; i++)
		stg_push(st, i);
	atomic_store(&st->n_free, n_slots);
	return st;
}

void gpu_staging_destroy(struct gpu_staging *st)
{
	if (!st)
		return;
	if (st->base) {
		if (st->pinned)
			stg_pinned_free(st->base);
		else
			munmap(st->base, st->len);
	}
	free(st->cells);
	free((void *)st->taken);
	free(st);
}

int gpu_staging_pinned(const struct gpu_staging *st) { return st->pinned; }

int gpu_staging_get(struct gpu_staging *st, uint32_t *slot)
{
	uint32_t s;
	if (stg_pop(st, &s) != 0)
		return -ENOBUFS;
	atomic_store_explicit(&st->taken[s], 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&st->n_free, 1, memory_order_relaxed);
	*slot = s;
	return 0;
}

int gpu_staging_put(struct gpu_staging *st, uint32_t slot)
{
	if (slot >= st->n_slots)
		return -EINVAL;
	if (atomic_exchange_explicit(&st->taken[slot], 0, memory_order_acq_rel) != 1)
		return -EALREADY;
	stg_push(st, slot);
	atomic_fetch_add_explicit(&st->n_free, 1, memory_order_relaxed);
	return 0;
}

uint8_t *gpu_staging_slot(const struct gpu_staging *st, uint32_t slot)
{
	return slot < st->n_slots ? st->base + (size_t)slot * st->slot_size : NULL;
}

size_t gpu_staging_slot_size(const struct gpu_staging *st) { return st->slot_size; }

unsigned gpu_staging_slot_count(const struct gpu_staging *st) { return st->n_slots; }

unsigned gpu_staging_free_count(const struct gpu_staging *st)
{
	return atomic_load_explicit(&st->n_free, memory_order_relaxed);
}
