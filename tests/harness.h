/* Minimal test harness shared by every tests/<module>/test_*.c file.
 *
 * A test file lists its cases in a table and calls st_main(); meson registers each case as
 * its own test (`test_x CASE`), so every case is named in `meson test` output. Exit codes:
 * 0 pass, 1 fail, 77 skip (only for something absent: GPU, root, a namespace). */
#ifndef SHOAL_TESTS_HARNESS_H
#define SHOAL_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_PASS 0
#define ST_FAIL 1
#define ST_SKIP 77

struct st_case {
	const char *name;
	int (*fn)(void);
};

#define ST_CHECK(cond)                                                                      \
	do {                                                                                    \
		if (!(cond)) {                                                                      \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
			return ST_FAIL;                                                                 \
		}                                                                                   \
	} while (0)

#define ST_CHECK_INT(a, op, b)                                                              \
	do {                                                                                    \
		long long st_a_ = (long long)(a), st_b_ = (long long)(b);                           \
		if (!(st_a_ op st_b_)) {                                                            \
			fprintf(stderr, "%s:%d: check failed: %s %s %s (%lld vs %lld)\n", __FILE__,     \
				__LINE__, #a, #op, #b, st_a_, st_b_);                                       \
			return ST_FAIL;                                                                 \
		}                                                                                   \
	} while (0)

#define ST_CHECK_EQ(a, b) ST_CHECK_INT(a, ==, b)

#define ST_CHECK_MEM(a, b, n)                                                               \
	do {                                                                                    \
		if (memcmp((a), (b), (n)) != 0) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s and %s differ in %zu bytes\n",         \
				__FILE__, __LINE__, #a, #b, (size_t)(n));                                   \
			return ST_FAIL;                                                                 \
		}                                                                                   \
	} while (0)

#define ST_SKIP_IF(cond, why)                                                               \
	do {                                                                                    \
		if (cond) {                                                                         \
			printf("skip: %s\n", (why));                                                    \
			return ST_SKIP;                                                                 \
		}                                                                                   \
	} while (0)

/* Runs the case named by argv[1], or every case in order when none is named. */
static inline int st_main(int argc, char **argv, const struct st_case *cases, size_t n)
{
	int worst = ST_PASS;
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		int rc = cases[i].fn();
		printf("%s: %s\n", cases[i].name,
		       rc == ST_PASS ? "pass" : rc == ST_SKIP ? "skip" : "FAIL");
		if (argc > 1)
			return rc;
		if (rc == ST_FAIL || (rc == ST_SKIP && worst == ST_PASS))
			worst = rc;
	}
	if (argc > 1) {
		fprintf(stderr, "no test case named '%s'\n", argv[1]);
		return ST_FAIL;
	}
	return worst;
}

#define ST_MAIN(...)                                                                        \
	int main(int argc, char **argv)                                                         \
	{                                                                                       \
		static const struct st_case st_cases_[] = {__VA_ARGS__};                            \
		return st_main(argc, argv, st_cases_, sizeof st_cases_ / sizeof st_cases_[0]);      \
	}

#define ST_CASE(fn) {#fn, fn}

#endif
