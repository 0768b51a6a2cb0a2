#!/bin/sh
# run_fuzz.sh — the 'fuzz' suite's driver for fuzz_proto and fuzz_reasm (registered in
# meson.build): seeds WORKDIR/corpus from the real-sender fixtures (FUZZ_SEED), replays every
# saved crash input in CRASHES (default FIXTURES/crashes; they must no longer fail), then
# fuzzes for SECONDS seconds with inputs up to MAX_LEN bytes (default 16384).
# Fails when a saved input still fails or the fuzzer finds a new one (written to
# WORKDIR/artifacts/). The corpus is kept between runs.
#
#   run_fuzz.sh FUZZ_TARGET FUZZ_SEED FIXTURES WORKDIR SECONDS [MAX_LEN [CRASHES]]
set -u
if [ $# -lt 5 ] || [ $# -gt 7 ]; then
	echo "usage: run_fuzz.sh FUZZ_TARGET FUZZ_SEED FIXTURES WORKDIR SECONDS [MAX_LEN [CRASHES]]" >&2
	exit 2
fi
fuzz=$1 seed=$2 fixtures=$3 work=$4 secs=$5 maxlen=${6:-16384} crashes=${7:-$3/crashes}
mkdir -p "$work/corpus" || exit 1
rm -rf "$work/artifacts"
mkdir -p "$work/artifacts" || exit 1
"$seed" "$fixtures" "$work/corpus" || exit 1
status=0
if [ -d "$crashes" ]; then
	for f in "$crashes"/*; do
		[ -f "$f" ] || continue
		case "$f" in *.md) continue ;; esac
		if "$fuzz" -runs=1 "$f" >"$work/artifacts/replay.log" 2>&1; then
			echo "run_fuzz: saved input $(basename "$f"): passes now"
		else
			echo "run_fuzz: saved input $(basename "$f") STILL FAILS:"
			grep -E 'invariant failed|ERROR:|SUMMARY' "$work/artifacts/replay.log"
			status=1
		fi
	done
fi
echo "run_fuzz: fuzzing for $secs s (corpus $work/corpus)"
"$fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" || status=1
exit $status
