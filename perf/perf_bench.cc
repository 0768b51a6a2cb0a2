// Maps the C API of perf_bench.h onto Google Benchmark.
#include "perf/perf_bench.h"

#include <benchmark/benchmark.h>

#include <cerrno>

struct perf_state {
	benchmark::State *st;
	bool started;
};

extern "C" int perf_state_next(struct perf_state *s)
{
	s->started = true;
	return s->st->KeepRunning() ? 1 : 0;
}

extern "C" int64_t perf_state_iterations(const struct perf_state *s)
{
	return (int64_t)s->st->iterations();
}

extern "C" void perf_state_set_items(struct perf_state *s, int64_t items)
{
	s->st->SetItemsProcessed(items);
}

extern "C" void perf_state_set_bytes(struct perf_state *s, int64_t bytes)
{
	s->st->SetBytesProcessed(bytes);
}

extern "C" void perf_state_counter(struct perf_state *s, const char *name, double value,
				   int per_iteration)
{
	s->st->counters[name] = benchmark::Counter(
		value, per_iteration ? benchmark::Counter::kAvgIterations : benchmark::Counter::kDefaults);
}

extern "C" void perf_state_pause(struct perf_state *s) { s->st->PauseTiming(); }
extern "C" void perf_state_resume(struct perf_state *s) { s->st->ResumeTiming(); }
extern "C" void perf_state_error(struct perf_state *s, const char *msg) { s->st->SkipWithError(msg); }

extern "C" int perf_bench_register(const char *name, void (*fn)(struct perf_state *, void *),
				   void *arg)
{
	if (!name || !fn)
		return -EINVAL;
	benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &st) {
		struct perf_state s;
		s.st = &st;
		s.started = false;
		fn(&s, arg);
		// A function that stopped early must still drain the iterator.
		if (!s.started)
			for (auto _ : st)
				(void)_;
	});
	return 0;
}

extern "C" int perf_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
