#!/usr/bin/env bash
# bench-ingest.sh — sustained ingest of the data plane (scripts/bench.sh ingest).
#
# A DPDK sender (shoal-gen, its own --file-prefix) streams 1400-byte RTP/JPEG packets of
# 640x480 frames over memif to, in turn:
#   1. dpdk-testpmd --forward-mode=rxonly   (the baseline: receive and free)
#   2. shoal-server --sink --decode-workers 0  (parse, client table, reassembly into staging,
#                                             empty RESULT back per frame)
# and shoal-gen --udp sends the same packets over loopback to shoal-krecv (recvmmsg + the same
# reassembly) for the kernel-socket comparison. Where there are two cores, each receiver is
# confined to CPU 1 (testpmd's forwarding lcore; shoal-server's poll lcore and its main lcore,
# the sink consumer, together) and the sender has CPU 0 to itself: with the server's main lcore
# on CPU 0 the sender is starved and the figure measures the sender (SRV_LCORES overrides).
# For shoal-krecv, the receiver is pinned to CPU 1 and the sender to CPU 0 as well.
# Last line: ingest: mpps=… testpmd_mpps=… ratio=… fps=… krecv_mpps=… vs_kernel=… rss_kb=…
# Usage: bench-ingest.sh [--seconds S] [--clients N]   (needs root; SHOAL_BUILD = build dir)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SHOAL_BUILD:-build-release}
secs=8
clients=4
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) secs=$2; shift 2 ;;
	--clients) clients=$2; shift 2 ;;
	*) echo "bench-ingest: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-ingest: needs root (DPDK memif sockets, no hugepages)" >&2; exit 77; }
for b in perf/shoal-gen perf/shoal-krecv control/shoal-server; do
	[ -x "$build/$b" ] || { echo "bench-ingest: $build/$b not built" >&2; exit 1; }
done
command -v dpdk-testpmd >/dev/null || { echo "bench-ingest: dpdk-testpmd absent (apt install dpdk-dev)" >&2; exit 1; }

tmp=$(mktemp -d)
sock=$tmp/memif.sock
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

ncpu=$(nproc)
rx_cpu=$(( ncpu > 1 ? 1 : 0 ))
eal_common=(--no-huge -m 1024 --no-pci --no-telemetry)
server_ip=10.99.0.1
gen() { # gen LOG [shoal-gen options...]
	local log=$1; shift
	"$build/perf/shoal-gen" --lcores "0@0" --file-prefix "shoal-gen-$$" "${eal_common[@]}" \
		--vdev="net_memif0,role=client,socket=$sock" -- \
		--dst-ip "$server_ip" --clients "$clients" --size 640x480 --payload 1400 \
		--seconds "$secs" "$@" >"$log" 2>&1
}

# ---- 1. testpmd rxonly ------------------------------------------------------------------------
echo "ingest: testpmd rxonly on memif (${secs} s) ..." >&2
dpdk-testpmd --lcores "0@0,1@$rx_cpu" --file-prefix "shoal-tp-$$" "${eal_common[@]}" \
	--vdev="net_memif0,role=server,socket=$sock" -- \
	--forward-mode=rxonly --nb-cores=1 --total-num-mbufs=16384 --stats-period 1 \
	>"$tmp/testpmd.log" 2>&1 &
tp=$!
pids+=("$tp")
sleep 2
gen "$tmp/gen-tp.log" --dst-mac 02:00:00:00:00:01 || { cat "$tmp/gen-tp.log" "$tmp/testpmd.log" >&2; exit 1; }
kill -INT "$tp"; wait "$tp" 2>/dev/null || true
testpmd_mpps=$(/usr/bin/python3 - "$tmp/testpmd.log" <<'PY'
import re, sys, statistics
pps = [int(m) for m in re.findall(r"Rx-pps:\s+(\d+)", open(sys.argv[1]).read())]
busy = [p for p in pps if p > 0]
# the steady state: drop the first and last busy second (ramp up / down)
core = busy[1:-1] if len(busy) > 3 else busy
print(f"{statistics.median(core) / 1e6:.4f}" if core else "0")
PY
)
gen_tp=$(tail -n1 "$tmp/gen-tp.log")

# ---- 2. shoal-server --sink -------------------------------------------------------------------
echo "ingest: shoal-server --sink on memif (${secs} s) ..." >&2
rm -f "$sock"
"$build/control/shoal-server" --lcores "${SRV_LCORES:-0@$rx_cpu,1@$rx_cpu}" --file-prefix "shoal-srv-$$" \
	"${eal_common[@]}" --vdev="net_memif0,role=server,socket=$sock" -- \
	--sink --decode-workers 0 --ip "$server_ip" --media-port 5004 --queues 1 --duration $((secs + 4)) \
	--stats-interval 1 >"$tmp/server.log" 2>&1 &
srv=$!
pids+=("$srv")
sleep 2
gen "$tmp/gen-srv.log" || { cat "$tmp/gen-srv.log" "$tmp/server.log" >&2; exit 1; }
kill -INT "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
read -r shoal_mpps shoal_fps rss_kb < <(/usr/bin/python3 - "$tmp/server.log" <<'PY'
import re, sys, statistics
text = open(sys.argv[1]).read()
# periodic lines carry mpps=… fps=…; the steady state is their median while busy
mp = [float(x) for x in re.findall(r"\bmpps=([0-9.]+)", text)]
fp = [float(x) for x in re.findall(r"\bfps=([0-9.]+)", text)]
pairs = [(a, b) for a, b in zip(mp, fp) if a > 0]
core = pairs[1:-1] if len(pairs) > 3 else pairs
rss = re.findall(r"\brss_kb=(\d+)", text)
m = statistics.median([a for a, _ in core]) if core else 0
f = statistics.median([b for _, b in core]) if core else 0
print(f"{m:.4f} {f:.1f} {rss[-1] if rss else 0}")
PY
)
gen_srv=$(tail -n1 "$tmp/gen-srv.log")

# ---- 3. kernel sockets on loopback ------------------------------------------------------------
echo "ingest: shoal-krecv on loopback (${secs} s) ..." >&2
taskset -c "$rx_cpu" "$build/perf/shoal-krecv" -p 6004 -t $((secs + 2)) >"$tmp/krecv.log" 2>&1 &
kr=$!
pids+=("$kr")
sleep 0.5
taskset -c 0 "$build/perf/shoal-gen" --udp 127.0.0.1:6004 --clients "$clients" --size 640x480 \
	--payload 1400 --seconds "$secs" >"$tmp/gen-k.log" 2>&1
wait "$kr" 2>/dev/null || true
krecv_pkts=$(grep -o 'krecv: packets=[0-9]*' "$tmp/krecv.log" | grep -o '[0-9]*$' || echo 0)
krecv_mpps=$(/usr/bin/python3 -c "print(f'{$krecv_pkts / $secs / 1e6:.4f}')")

echo "  testpmd rxonly : ${testpmd_mpps} Mpps   (sender: $gen_tp)"
echo "  shoal --sink   : ${shoal_mpps} Mpps, ${shoal_fps} frames/s, RSS ${rss_kb} kB   (sender: $gen_srv)"
echo "  shoal-krecv    : ${krecv_mpps} Mpps   ($(tail -n1 "$tmp/krecv.log"))"
grep -E '^sink:' "$tmp/server.log" | tail -n1 | sed 's/^/  /' || true
/usr/bin/python3 - "$shoal_mpps" "$testpmd_mpps" "$shoal_fps" "$krecv_mpps" "$rss_kb" <<'PY'
import sys
m, t, f, k, rss = (float(x) for x in sys.argv[1:])
ratio = m / t if t else 0
vk = m / k if k else 0
print(f"ingest: mpps={m:.4f} testpmd_mpps={t:.4f} ratio={ratio:.2f} fps={f:.1f} "
      f"krecv_mpps={k:.4f} vs_kernel={vk:.2f} rss_kb={int(rss)}")
PY
