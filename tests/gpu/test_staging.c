/* Tests of the staging pool (gpu.h gpu_staging_*): bounds, page alignment, double returns,
 * and a multi-thread stress in which every slot taken is owned by exactly one thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "gpu/gpu.h"
#include "harness.h"

static int test_staging_get_put_bounds(void)
{
	char err[256] = "";
	struct gpu_staging *st = gpu_staging_create(4, 5000, err, sizeof(err));
	ST_CHECK(st != NULL);
	ST_CHECK_EQ(gpu_staging_slot_count(st), 4);
	ST_CHECK_EQ(gpu_staging_slot_size(st) % 4096, 0);
	ST_CHECK(gpu_staging_slot_size(st) >= 5000);
	uint32_t s[4], extra;
	int seen = 0;
	for (int i = 0; i < 4; i++) {
		ST_CHECK_EQ(gpu_staging_get(st, &s[i]), 0);
		ST_CHECK(s[i] < 4);
		seen |= 1 << s[i];
		uint8_t *p = gpu_staging_slot(st, s[i]);
		ST_CHECK_EQ((uintptr_t)p % 4096, 0);
		memset(p, i, gpu_staging_slot_size(st)); /* writable end to end */
	}
	ST_CHECK_EQ(seen, 0xf);
	/* slots do not overlap */
	for (int i = 0; i < 4; i++)
		ST_CHECK_EQ(gpu_staging_slot(st, s[i])[gpu_staging_slot_size(st) - 1], i);
	ST_CHECK_EQ(gpu_staging_free_count(st), 0);
	ST_CHECK_EQ(gpu_staging_get(st, &extra), -ENOBUFS);
	ST_CHECK_EQ(gpu_staging_put(st, s[2]), 0);
	ST_CHECK_EQ(gpu_staging_put(st, s[2]), -EALREADY);
	ST_CHECK_EQ(gpu_staging_put(st, 4), -EINVAL);
	ST_CHECK_EQ(gpu_staging_free_count(st), 1);
	ST_CHECK_EQ(gpu_staging_get(st, &extra), 0);
	ST_CHECK_EQ(extra, s[2]);
	ST_CHECK(gpu_staging_slot(st, 4) == NULL);
	gpu_staging_destroy(st);
	return ST_PASS;
}

static int test_staging_bad_sizes_refused_with_reason(void)
{
	char err[256] = "";
	ST_CHECK(gpu_staging_create(0, 4096, err, sizeof(err)) == NULL);
	ST_CHECK(strstr(err, "staging") != NULL);
	ST_CHECK(gpu_staging_create(4, 0, err, sizeof(err)) == NULL);
	ST_CHECK(gpu_staging_create(4, 0, NULL, 0) == NULL);
	return ST_PASS;
}

/* Pinning follows the device: pinned exactly when a CUDA device is usable. */
static int test_staging_pinned_iff_device(void)
{
	struct gpu_staging *st = gpu_staging_create(2, 4096, NULL, 0);
	ST_CHECK(st != NULL);
	ST_CHECK_EQ(gpu_staging_pinned(st), gpu_cuda_device_count(NULL, 0) > 0 ? 1 : 0);
	gpu_staging_destroy(st);
	return ST_PASS;
}

struct stress {
	struct gpu_staging *st;
	_Atomic int *owner; /* thread id + 1 holding each slot, 0 when free */
	_Atomic int bad;
	int id;
};

/* Each thread takes slots, claims them in owner[], writes its id through the slot, checks the
 * bytes are still its own, and gives them back. Two threads holding one slot would collide. */
static void *stress_run(void *arg)
{
	struct stress *s = arg;
	const int me = s->id + 1;
	for (int it = 0; it < 200000; it++) {
		uint32_t slot;
		if (gpu_staging_get(s->st, &slot) != 0)
			continue;
		int expect = 0;
		if (!atomic_compare_exchange_strong(&s->owner[slot], &expect, me))
			atomic_fetch_add(&s->bad, 1);
		uint8_t *p = gpu_staging_slot(s->st, slot);
		memset(p, me, 64);
		for (int i = 0; i < 64; i++)
			if (p[i] != me)
				atomic_fetch_add(&s->bad, 1);
		atomic_store(&s->owner[slot], 0);
		if (gpu_staging_put(s->st, slot) != 0)
			atomic_fetch_add(&s->bad, 1);
	}
	return NULL;
}

static int test_staging_concurrent_get_put_exclusive(void)
{
	enum { N_THREADS = 4, N_SLOTS = 3 };
	struct gpu_staging *st = gpu_staging_create(N_SLOTS, 4096, NULL, 0);
	ST_CHECK(st != NULL);
	_Atomic int owner[N_SLOTS] = {0};
	_Atomic int bad = 0;
	struct stress s[N_THREADS];
	pthread_t th[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		s[i] = (struct stress){.st = st, .owner = owner, .id = i};
		ST_CHECK_EQ(pthread_create(&th[i], NULL, stress_run, &s[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_THREADS; i++)
		bad += atomic_load(&s[i].bad);
	ST_CHECK_EQ(bad, 0);
	ST_CHECK_EQ(gpu_staging_free_count(st), N_SLOTS);
	/* every slot is in the pool exactly once */
	int seen = 0;
	uint32_t slot;
	for (int i = 0; i < N_SLOTS; i++) {
		ST_CHECK_EQ(gpu_staging_get(st, &slot), 0);
		ST_CHECK_EQ(seen & (1 << slot), 0);
		seen |= 1 << slot;
	}
	ST_CHECK_EQ(gpu_staging_get(st, &slot), -ENOBUFS);
	gpu_staging_destroy(st);
	return ST_PASS;
}

ST_MAIN(ST_CASE(test_staging_get_put_bounds), ST_CASE(test_staging_bad_sizes_refused_with_reason),
	ST_CASE(test_staging_pinned_iff_device), ST_CASE(test_staging_concurrent_get_put_exclusive))
