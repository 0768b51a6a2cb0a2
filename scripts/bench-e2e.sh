#!/usr/bin/env bash
# End-to-end serving benchmark (issue: shoal-server end to end): the largest number of
# clients at FPS frames/s and SLO ms that shoal-server serves with an SLO miss rate <= 1%.
# The server runs on a net_af_packet port on the host end of a veth pair; shoal-gen emulates
# the clients from a network namespace over kernel UDP sockets: each REGISTERs (SLO, fps),
# follows ASSIGN (sends at the resolution the scheduler chose) and measures every frame end to
# end (RESULT in time = hit; late RESULT, DROP or no answer = miss).
# Ladder: N = 1, 2, 4, ... while the miss rate stays <= 1%, then bisection between the last
# good and the first bad N. Each trial streams for --seconds after a --warmup period that is
# not counted (clients join, the scheduler plans); one server serves every trial.
# Baseline in the same run: the backend's raw throughput (perf/bench_cpu_infer, same threads)
# at the variant and batch the server used most, as clients at FPS: ratio = served / raw.
# Last line: e2e: clients=N fps=F slo_ms=S miss=M p99_ms=X backend=B raw_clients=R ratio=Q
# Options: --fps F (15) --slo-ms S (150) --seconds S (10) --warmup S (4) --max N (256)
#          --threads N (CPU backend threads, 1) --backend auto|cpu|cuda (auto)
# Needs root (namespace). Builds nothing: $SHOAL_BENCH_BUILD (default build-release).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${SHOAL_BENCH_BUILD:-build-release}
fps=15 slo=150 secs=10 warm=4 max=256 threads=1 backend=auto
while [ $# -gt 0 ]; do
	case "$1" in
	--fps) fps=$2; shift ;;
	--slo-ms) slo=$2; shift ;;
	--seconds) secs=$2; shift ;;
	--warmup) warm=$2; shift ;;
	--max) max=$2; shift ;;
	--threads) threads=$2; shift ;;
	--backend) backend=$2; shift ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "bench-e2e.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "bench-e2e.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespace, DPDK af_packet)"
srv=$build/control/shoal-server gen=$build/perf/shoal-gen raw=$build/perf/bench_cpu_infer
[ -x "$srv" ] && [ -x "$gen" ] || die "$srv or $gen missing: build first (ninja -C $build)"
model=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/nanodet.onnx
[ -f "$model" ] || die "$model absent (run scripts/fetch-models.sh)"

tmp=$(mktemp -d /tmp/shoal-bench-e2e.XXXXXX)
ns=shbe$$ sif=shbe$$s cif=shbe$$c
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	ip link del "$sif" 2>/dev/null
}
trap cleanup EXIT
ip netns add "$ns" && ip link add "$sif" type veth peer name "$cif" &&
	ip link set "$cif" netns "$ns" &&
	ip netns exec "$ns" ip addr add 10.88.0.2/24 dev "$cif" &&
	ip netns exec "$ns" ip link set "$cif" up && ip netns exec "$ns" ip link set lo up &&
	ip link set "$sif" up || die "cannot make the namespace and veth pair"
ip netns exec "$ns" ethtool -K "$cif" tx off >/dev/null 2>&1

"$srv" --no-huge -m 1024 --no-shconf --no-telemetry --file-prefix "$ns" -l 0,1 \
	"--vdev=net_af_packet0,iface=$sif" -- --ip 10.88.0.1 --poll-idle-us 50 --idle-timeout 1 \
	--backend "$backend" --threads "$threads" --max-clients 1024 --slots 512 \
	--metrics 127.0.0.1:0 --stats-interval 5 >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 600); do
	grep -q '^ready:' "$tmp/server.log" && break
	kill -0 "$spid" 2>/dev/null || { cat "$tmp/server.log" >&2; die "server did not start"; }
	sleep 0.1
done
grep -q '^ready:' "$tmp/server.log" || die "server not ready after 60 s"
be=$(sed -n 's/^ready:.* backend=\([a-z0-9]*\) .*/\1/p' "$tmp/server.log")
echo "server: $(grep '^ready:' "$tmp/server.log" | cut -c1-160)"

kv() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
# one trial: N clients, warm-up (not counted) then the measured run; prints "miss p99"
trial() {
	local n=$1
	ip netns exec "$ns" "$gen" --udp 10.88.0.1:5004 --clients "$n" --fps "$fps" \
		--size 320x240 --register "$slo" --follow-assign --seconds "$warm" --drain-ms 300 \
		>"$tmp/warm$n.out" 2>&1
	ip netns exec "$ns" "$gen" --udp 10.88.0.1:5004 --clients "$n" --fps "$fps" \
		--size 320x240 --register "$slo" --follow-assign --seconds "$secs" --drain-ms 1000 \
		--per-client "$tmp/clients$n.csv" >"$tmp/run$n.out" 2>&1
	local last; last=$(tail -1 "$tmp/run$n.out")
	echo "$(echo "$last" | kv miss) $(echo "$last" | kv p99_ms)"
	sleep 2 # the clients leave (idle timeout 1 s) before the next trial
}
ok() { awk -v m="$1" 'BEGIN { exit !(m <= 0.01) }'; }

good=0 bad=0 good_miss=0 good_p99=0
n=1
printf '%8s %10s %10s\n' clients miss p99_ms
while [ "$n" -le "$max" ]; do
	read -r m p < <(trial "$n")
	printf '%8d %10s %10s\n' "$n" "$m" "$p"
	if ok "$m"; then good=$n good_miss=$m good_p99=$p; n=$((n * 2)); else bad=$n; break; fi
done
if [ "$bad" -gt 0 ]; then
	lo=$good hi=$bad
	while [ $((hi - lo)) -gt 1 ]; do
		mid=$(((lo + hi) / 2))
		read -r m p < <(trial "$mid")
		printf '%8d %10s %10s\n' "$mid" "$m" "$p"
		if ok "$m"; then lo=$mid good=$mid good_miss=$m good_p99=$p; else hi=$mid; fi
	done
fi
kill -INT "$spid"
wait "$spid"
spid=
grep -E '^(instance|serve):' "$tmp/server.log" | tail -4

# baseline: raw backend throughput at the size and batch the server ran most
read -r size batch < <(grep '^instance:' "$tmp/server.log" | /usr/bin/python3 -c '
import sys, collections
best = collections.Counter()
for line in sys.stdin:
    kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
    hist = kv.get("batch_hist", "")
    for item in filter(None, hist.split(",")):
        b, n = item.split(":")
        best[(int(kv["size"]), int(b))] += int(n) * int(b)
(s, b), _ = best.most_common(1)[0] if best else ((320, 1), 0)
print(s, b)')
raw_clients=0 ratio=0
if [ "$be" = cpu ] && [ -x "$raw" ]; then
	rfps=$("$raw" "$model" "$size" "$batch" "$threads" --min-time 3 2>/dev/null | tail -1 | kv fps)
	raw_clients=$(awk -v f="${rfps:-0}" -v r="$fps" 'BEGIN { printf "%.1f", f / r }')
	ratio=$(awk -v g="$good" -v c="$raw_clients" 'BEGIN { printf "%.3f", (c > 0 ? g / c : 0) }')
	echo "baseline: bench_cpu_infer size $size batch $batch threads $threads: ${rfps:-?} fps = $raw_clients clients at $fps fps"
fi
echo "logs: $tmp"
echo "e2e: clients=$good fps=$fps slo_ms=$slo miss=$good_miss p99_ms=$good_p99 backend=$be raw_clients=$raw_clients ratio=$ratio"
