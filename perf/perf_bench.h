/* perf_bench — a small C API over Google Benchmark (DESIGN.md §2 perf/).
 *
 * A benchmark is a C function that loops while perf_state_next() returns 1 and reports
 * how many items (packets, frames, ...) it processed; perf_bench.cc maps this onto
 * benchmark::State. A benchmark program registers its functions and calls perf_main().
 *
 *   static void bm_parse(struct perf_state *st, void *arg) {
 *       while (perf_state_next(st)) { ... one packet ... }
 *       perf_state_set_items(st, perf_state_iterations(st));
 *   }
 *   int main(int argc, char **argv) {
 *       perf_bench_register("rtp_parse", bm_parse, NULL);
 *       return perf_main(argc, argv);
 *   }
 *
 * Run with `meson test --benchmark` or directly (Google Benchmark flags apply, e.g.
 * --benchmark_format=json). */
#ifndef SHOAL_PERF_BENCH_H
#define SHOAL_PERF_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct perf_state; /* opaque: one running benchmark */

/* 1 while the benchmark should run another iteration; starts the timer on first call. */
int perf_state_next(struct perf_state *st);
/* Iterations run so far. */
int64_t perf_state_iterations(const struct perf_state *st);
/* Items processed in total: reported as items_per_second. */
void perf_state_set_items(struct perf_state *st, int64_t items);
/* Bytes processed in total: reported as bytes_per_second. */
void perf_state_set_bytes(struct perf_state *st, int64_t bytes);
/* A named figure in the output; when
 * per_iteration is 1 the value is averaged over iterations (e.g. ns per packet). */
void perf_state_counter(struct perf_state *st, const char *name, double value, int per_iteration);
/* Excludes work between pause and resume from the timing. */
void perf_state_pause(struct perf_state *st);
void perf_state_resume(struct perf_state *st);
/* Marks the run failed with a message (the benchmark function should then return). */
void perf_state_error(struct perf_state *st, const char *msg);

/* Registers fn under name; arg is passed to it unchanged. Returns 0 or -EINVAL. */
int perf_bench_register(const char *name, void (*fn)(struct perf_state *st, void *arg), void *arg);
/* Parses Google Benchmark flags and runs the registered benchmarks; returns an exit code. */
int perf_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
