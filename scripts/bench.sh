#!/usr/bin/env bash
# Runs one named benchmark in a release build and prints, as its last line,
#   NAME: key=value ...
# Usage: scripts/bench.sh NAME [args passed to the benchmark]
# Names:
#   proto   RTP/RFC 2435 parse, RTCP APP build/parse, JPEG frame reassembly (ns per packet),
#           against a 1400-byte memcpy measured in the same run
#   sched   scheduler approximation ratio vs the GLPK MILP optimum, and its runtime
#   ingest  data-plane ingest (shoal-server --sink) vs dpdk-testpmd rxonly over memif, and vs
#           a kernel recvmmsg receiver on loopback (root)
#   gpu-infer  CUDA backend fps, staged frame to detections, vs PyTorch eager/CUDA graphs (GPU)
#   cpu-infer  CPU backend fps of NanoDet-m at 320/416, batch 1/8, vs onnxruntime (same threads,
#           same run; --threads N, default all cores)
#   e2e     largest number of clients at 15 fps / 150 ms SLO that shoal-server serves with an
#           SLO miss rate <= 1% (shoal-gen clients in a namespace), vs the backend's raw
#           throughput in the same run (root)
# Figures and the machines they ran on are kept in perf/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
name=$1; shift
case "$name" in -h|--help) usage; exit 0 ;; esac

build=${SHOAL_BENCH_BUILD:-build-release}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --buildtype=release >"$build.setup.log" 2>&1 || { cat "$build.setup.log" >&2; exit 1; }
	rm -f "$build.setup.log"
fi
ninja -C "$build" >/dev/null

case "$name" in
proto)
	out=$(mktemp)
	"$build/perf/bench_proto" --benchmark_format=json --benchmark_out="$out" \
		--benchmark_out_format=json --benchmark_min_time=0.5 "$@" >/dev/null
	/usr/bin/python3 - "$out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ns = {}
for b in doc["benchmarks"]:
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    per = b.get("items_per_second")
    ns[b["name"]] = 1e9 / per if per else b["cpu_time"] * unit
for k, v in ns.items():
    print(f"  {k:28s} {v:10.1f} ns/item")
base = ns.get("memcpy_1400")
keys = ["rtp_jpeg_parse", "rtcp_app_parse_result10", "rtcp_app_build_result10",
        "jpeg_frame_reassemble", "raw_frame_reassemble"]
parts = [f"{k}_ns={ns[k]:.1f}" for k in keys if k in ns]
if base:
    parts.append(f"memcpy1400_ns={base:.1f}")
    if "rtp_jpeg_parse" in ns:
        parts.append(f"parse_vs_memcpy={ns['rtp_jpeg_parse'] / base:.2f}")
print("proto: " + " ".join(parts))
PY
	rm -f "$out"
	;;
sched)
	BUILD=$build exec scripts/bench-sched.sh "$@"
	;;
ingest)
	SHOAL_BUILD=$build exec scripts/bench-ingest.sh "$@"
	;;
gpu-infer)
	SHOAL_BENCH_BUILD=$build exec scripts/bench-gpu-infer.sh "$@"
	;;
cpu-infer)
	BUILD=$build exec scripts/bench-cpu-infer.sh "$@"
	;;
e2e)
	SHOAL_BENCH_BUILD=$build exec scripts/bench-e2e.sh "$@"
	;;
*)
	echo "bench.sh: unknown benchmark '$name'" >&2; usage >&2; exit 2 ;;
esac
