#!/bin/sh
# run_fuzz.sh — the 'fuzz' suite's driver for fuzz_proto (registered in meson.build):
# seeds WORKDIR/corpus from the real-sender fixtures (fuzz_seed), replays every saved crash
# input in FIXTURES/crashes (they must no longer fail), then fuzzes for SECONDS seconds.
# Fails when a saved input still fails or the fuzzer finds a new one (written to
# WORKDIR/artifacts/). The corpus is kept between runs.
#
#   run_fuzz.sh FUZZ_PROTO FUZZ_SEED FIXTURES WORKDIR SECONDS
set -u
if [ $# -ne 5 ]; then
	echo "usage: run_fuzz.sh FUZZ_PROTO FUZZ_SEED FIXTURES WORKDIR SECONDS" >&2
	exit 2
fi
fuzz=$1 seed=$2 fixtures=$3 work=$4 secs=$5
mkdir -p "$work/corpus" || exit 1
rm -rf "$work/artifacts"
mkdir -p "$work/artifacts" || exit 1
"$seed" "$fixtures" "$work/corpus" || exit 1
status=0
if [ -d "$fixtures/crashes" ]; then
	for f in "$fixtures"/crashes/*; do
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
"$fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" || status=1
exit $status
