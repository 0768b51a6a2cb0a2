#!/bin/sh
# Scheduler benchmark (control/README.md, perf/RESULTS.md). Builds nothing: runs
# $BUILD/control/shoal-sched (BUILD defaults to build).
#   compare: heuristic / MILP (GLPK) ratio, slots {2,4} x clients {4,6,8} x slots,
#            100 instances each (SLO 75/100/150 ms, fps 10/15/25, 7.5-50 Mbps, batch <= 8)
#   time:    heuristic runtime, slots {2,4,8,16} x clients {4,6,8,10} x slots
# Last line: sched: mean_ratio=... min_ratio=... p99_ms=...  (p99_ms: 8 slots x 32 clients,
# one thread's CPU time), followed by proven=P/N and min_ratio_vs_bound (a lower bound on the
# true ratio for every instance, from GLPK's best bound where it did not prove optimality) and
# served_short (instances where the heuristic served fewer fps than the MILP: both maximise the
# served fps first, then accuracy; the ratios compare the accuracy objective).
# Options: --quick (20 instances per size, GLPK limit 1 s; about a minute),
#          --time-limit S (GLPK limit per instance, default 1.5), --out DIR (CSV files).
set -eu
BUILD=${BUILD:-build}
BIN="$BUILD/control/shoal-sched"
N=100
TL=1.5
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=20; TL=1 ;;
	--time-limit) shift; TL=${1:?--time-limit needs seconds} ;;
	--out) shift; OUT=${1:?--out needs a directory} ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "bench-sched.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
	esac
	shift
done
if [ ! -x "$BIN" ]; then
	echo "bench-sched.sh: $BIN not found: build first (ninja -C $BUILD) or set BUILD" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
csv_c=""; csv_t=""
if [ -n "$OUT" ]; then
	mkdir -p "$OUT"
	csv_c="--csv $OUT/sched-compare.csv"; csv_t="--csv $OUT/sched-time.csv"
fi
echo "== shoal-sched compare --instances $N --time-limit $TL"
# shellcheck disable=SC2086
"$BIN" compare --slots 2,4 --factors 4,6,8 --instances "$N" --time-limit "$TL" $csv_c \
	| tee "$tmp/compare.txt"
echo "== shoal-sched time --instances $N"
# shellcheck disable=SC2086
"$BIN" time --slots 2,4,8,16 --factors 4,6,8,10 --instances "$N" $csv_t | tee "$tmp/time.txt"
cmp_line=$(grep '^compare:' "$tmp/compare.txt")
time_line=$(grep '^time:' "$tmp/time.txt")
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo "sched: mean_ratio=$(kv "$cmp_line" mean_ratio) min_ratio=$(kv "$cmp_line" min_ratio)" \
	"p99_ms=$(kv "$time_line" p99_ms) proven=$(kv "$cmp_line" proven)" \
	"min_ratio_vs_bound=$(kv "$cmp_line" min_ratio_vs_bound)" \
	"served_short=$(kv "$cmp_line" served_short)"
