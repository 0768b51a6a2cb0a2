#!/bin/sh
# CPU inference benchmark (gpu/README.md, perf/RESULTS.md): frames/s of NanoDet-m on shoal's
# CPU backend (perf/bench_cpu_infer) against onnxruntime-node's CPU provider
# (perf/bench_ort.js), same machine, same threads, same input, measured back to back for
# sizes {320, 416} x batch {1, 8}. Each pair is measured --repeat times, alternating, and the
# best frames/s of each side is kept (robust to other load on the machine). The table also
# shows the median and the fastest batch latency (ms) of each side.
# Last line: cpu-infer: fps=<geomean shoal> ort_fps=<geomean onnxruntime> ratio=<fps/ort_fps>
# followed by threads=N.
# Options: --threads N (default: number of cores), --min-time S (seconds per measurement,
#          default 2), --repeat R (default 2), --model PATH (default: the zoo's nanodet.onnx).
# Builds nothing: runs $BUILD/perf/bench_cpu_infer (BUILD defaults to build-release).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-release}
BIN="$BUILD/perf/bench_cpu_infer"
THREADS=$(nproc)
MIN_TIME=2
REPEAT=2
MODEL=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/nanodet.onnx
while [ $# -gt 0 ]; do
	case "$1" in
	--threads) shift; THREADS=${1:?--threads needs a count} ;;
	--min-time) shift; MIN_TIME=${1:?--min-time needs seconds} ;;
	--repeat) shift; REPEAT=${1:?--repeat needs a count} ;;
	--model) shift; MODEL=${1:?--model needs a path} ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "bench-cpu-infer.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
	esac
	shift
done
die() { echo "bench-cpu-infer.sh: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN not found: build first (ninja -C $BUILD) or set BUILD"
[ -f "$MODEL" ] || die "$MODEL absent (run scripts/fetch-models.sh)"
[ -d tests/models/ort/node_modules/onnxruntime-node ] ||
	die "onnxruntime-node absent (cd tests/models/ort && npm install)"
command -v node >/dev/null || die "node not found"

kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }
least() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 < b + 0) ? a : b }'; }

echo "== cpu-infer: $(basename "$MODEL"), threads $THREADS, $REPEAT x ${MIN_TIME}s per measurement"
fmt='%-5s %-5s %10s %10s %7s %10s %10s %10s %10s\n'
# shellcheck disable=SC2059
printf "$fmt" size batch shoal_fps ort_fps ratio shoal_p50 ort_p50 shoal_min ort_min
results=""
for size in 320 416; do
	for batch in 1 8; do
		sf=0 of=0 sp="" op="" sm=1e30 om=1e30
		r=0
		while [ "$r" -lt "$REPEAT" ]; do
			s=$("$BIN" "$MODEL" "$size" "$batch" "$THREADS" --min-time "$MIN_TIME")
			o=$(node perf/bench_ort.js "$MODEL" "$size" "$batch" "$THREADS" --min-time "$MIN_TIME")
			if [ "$(best "$(kv "$s" fps)" "$sf")" != "$sf" ]; then
				sf=$(kv "$s" fps) sp=$(kv "$s" p50_ms)
			fi
			if [ "$(best "$(kv "$o" fps)" "$of")" != "$of" ]; then
				of=$(kv "$o" fps) op=$(kv "$o" p50_ms)
			fi
			sm=$(least "$(kv "$s" min_ms)" "$sm") om=$(least "$(kv "$o" min_ms)" "$om")
			r=$((r + 1))
		done
		ratio=$(awk -v a="$sf" -v b="$of" 'BEGIN { printf "%.3f", a / b }')
		# shellcheck disable=SC2059
		printf "$fmt" "$size" "$batch" "$sf" "$of" "$ratio" "$sp" "$op" "$sm" "$om"
		results="$results $sf:$of"
	done
done
echo "$results" | tr ' ' '\n' | awk -F: -v t="$THREADS" 'NF == 2 { s += log($1); o += log($2); n++ }
	END { fs = exp(s / n); fo = exp(o / n)
	      printf "cpu-infer: fps=%.2f ort_fps=%.2f ratio=%.3f threads=%d\n", fs, fo, fs / fo, t }'
