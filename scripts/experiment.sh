#!/usr/bin/env bash
# Trace-driven experiment (DESIGN.md §9): shoal's adaptive scheduler against static baselines
# (every instance at the profile's smallest / middle / largest variant) with real clients whose
# uplinks follow a bandwidth trace.
# Each shoal-client runs in its own network namespace; its uplink (namespace -> server) is a
# token bucket (tc tbf on the client's veth, inside the namespace) whose rate follows the trace
# from a random offset per client (seeded: client i gets the same offset in every run, so
# every policy sees the same conditions), one `tc qdisc change` per trace step. The host ends
# of the veth pairs are on a bridge; shoal-server runs on net_af_packet on the bridge and is
# restarted for every run with --policy. Static policies run the clients with
# `--policy-resolution bandwidth --max-size V` (the client picks the largest square up to the
# static variant's size V that its bandwidth estimate carries), the adaptive one with the
# default (`assign`: the resolution the scheduler chose).
# Matrix: clients {1,2,4,8,16} x SLO {75,100,150} ms x fps {15,25} x policies {adaptive,
# static-small, static-mid, static-large}. Every run streams --warmup seconds (clients
# register, the scheduler plans; not counted) and then --duration measured seconds.
# Per frame: a hit is a RESULT within the SLO; a miss is anything else (DROP, lost, late
# RESULT); accuracy is the F1 of the RESULT's variant against the largest variant
# (models/profiles/<family>/cpu/accuracy.csv) for a hit and 0 for a miss.
# Outputs under --out: runs.csv (policy,clients,slo_ms,fps,trace,frames,results,drops,lost,
# miss,acc,p50_ms,p99_ms,refused: one row per run; refused = DROP not_served, the adaptive
# server's admission control, also in drops and miss), runs/<policy>-c<N>-slo<S>-fps<F>-<trace>/
# (client-<i>.csv per-frame, client-<i>.out, server.log), accuracy.png, miss.png,
# latency_cdf.png, summary.txt, window.txt (the measured window). Last line:
#   experiment: adaptive miss=… acc=… | static-small miss=… acc=… | static-mid … | static-large …
# (means over the runs of each policy).
# Options:
#   --quick            clients {1,4}, SLO {150}, fps {15}, 4 policies, 20 s each (a few minutes)
#   --duration S       measured seconds per run (default 30; 20 with --quick)
#   --warmup S         seconds streamed before the measured window (default 3)
#   --trace lte|synthetic  lte_upload_mbps_1s.txt (1 s steps, default) or
#                      synthetic_mbps_20s.txt (20 s steps), from $SHOAL_TRACE_DIR
#                      (default ../shared/data/traces next to the checkout)
#   --out DIR          output folder (default /tmp/shoal-experiment-<UTC time>)
#   --seed N           seed of the trace offsets (default 1)
#   --clients L --slo L --fps L --policies L   comma-separated lists replacing the matrix's
#   --threads N        CPU backend threads of the server (default 1: the other core runs the
#                      data plane, the clients and the shaping)
#   --build DIR        where shoal-server and shoal-client are (default $SHOAL_BUILD or build)
#   (environment) SHOAL_EXP_SERVER_ARGS: extra shoal-server options for every run
# Needs root (namespaces, tc, DPDK af_packet), the model (scripts/fetch-models.sh) and the
# video /usr/share/doc/opencv-doc/examples/data/vtest.avi. Ctrl-C stops and cleans up.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "experiment.sh: $*" >&2; exit 1; }

quick=0 dur="" warm=3 trace=lte out="" seed=1 threads=1
build=${SHOAL_BUILD:-build}
l_clients=1,2,4,8,16 l_slo=75,100,150 l_fps=15,25
l_pol=adaptive,static-small,static-mid,static-large
o_clients="" o_slo="" o_fps="" o_pol=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick|-h|--help) ;;
	*) [ $# -ge 2 ] || { echo "experiment.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;
	esac
	case "$1" in
	--quick) quick=1 ;;
	--duration) dur=$2; shift ;;
	--warmup) warm=$2; shift ;;
	--trace) trace=$2; shift ;;
	--out) out=$2; shift ;;
	--seed) seed=$2; shift ;;
	--clients) o_clients=$2; shift ;;
	--slo) o_slo=$2; shift ;;
	--fps) o_fps=$2; shift ;;
	--policies) o_pol=$2; shift ;;
	--threads) threads=$2; shift ;;
	--build) build=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "experiment.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	l_clients=1,4 l_slo=150 l_fps=15
	dur=${dur:-20}
fi
dur=${dur:-30}
l_clients=${o_clients:-$l_clients} l_slo=${o_slo:-$l_slo} l_fps=${o_fps:-$l_fps}
l_pol=${o_pol:-$l_pol}
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
isnum "$dur" && [ "$dur" -gt 0 ] || { echo "experiment.sh: bad --duration '$dur'" >&2; exit 2; }
isnum "$warm" || { echo "experiment.sh: bad --warmup '$warm'" >&2; exit 2; }
isnum "$seed" || { echo "experiment.sh: bad --seed '$seed'" >&2; exit 2; }
isnum "$threads" && [ "$threads" -gt 0 ] || { echo "experiment.sh: bad --threads '$threads'" >&2; exit 2; }
IFS=, read -ra clients_l <<<"$l_clients"
IFS=, read -ra slo_l <<<"$l_slo"
IFS=, read -ra fps_l <<<"$l_fps"
IFS=, read -ra pol_l <<<"$l_pol"
for v in "${clients_l[@]}"; do
	isnum "$v" && [ "$v" -ge 1 ] && [ "$v" -le 200 ] || { echo "experiment.sh: bad client count '$v' (1..200)" >&2; exit 2; }
done
for v in "${slo_l[@]}" "${fps_l[@]}"; do
	isnum "$v" && [ "$v" -gt 0 ] || { echo "experiment.sh: bad SLO or fps '$v'" >&2; exit 2; }
done
for v in "${pol_l[@]}"; do
	case "$v" in adaptive|static-small|static-mid|static-large) ;;
	*) echo "experiment.sh: bad policy '$v'" >&2; exit 2 ;; esac
done
tdir=${SHOAL_TRACE_DIR:-$root/../shared/data/traces}
case "$trace" in
lte) tfile=$tdir/lte_upload_mbps_1s.txt step=1 ;;
synthetic) tfile=$tdir/synthetic_mbps_20s.txt step=20 ;;
*) echo "experiment.sh: bad --trace '$trace' (lte or synthetic)" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, tc, DPDK af_packet)"
srv=$build/control/shoal-server cli=$build/client/shoal-client
[ -x "$srv" ] && [ -x "$cli" ] || die "$srv or $cli missing: build first (ninja -C $build)"
model=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/nanodet.onnx
[ -f "$model" ] || die "$model absent (run scripts/fetch-models.sh)"
acc=$root/models/profiles/nanodet/cpu/accuracy.csv
[ -f "$acc" ] || die "$acc absent"
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[ -f "$video" ] || die "$video absent (Debian package opencv-doc)"
[ -f "$tfile" ] || die "trace $tfile absent"
mapfile -t tvals < <(grep -E '^[0-9.]+$' "$tfile")
[ "${#tvals[@]}" -gt 0 ] || die "no values in $tfile"
command -v tc >/dev/null || die "tc absent (Debian package iproute2)"
plot=$root/scripts/experiment-plot.py
# the variants' input sizes, ascending: static-small/mid/large run sizes[0], [n/2], [n-1]
mapfile -t sizes < <(sed -n 's/^[A-Za-z0-9_]*-\([0-9]*\),.*/\1/p' "$acc" | sort -n)
[ "${#sizes[@]}" -gt 0 ] || die "no variants in $acc"
bwres=0
if "$cli" --help 2>&1 | grep -q -- '--policy-resolution'; then
	bwres=1
else
	echo "note: this shoal-client has no --policy-resolution: static policies run with the" \
		"resolution of the server's ASSIGN (the static variant's size), not a bandwidth choice"
fi

out=${out:-/tmp/shoal-experiment-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out/runs" || die "cannot make $out"
out=$(cd "$out" && pwd)

tag=shx$$
SRV_IP=10.87.$(($$ % 200 + 20)).1
NET=${SRV_IP%.1}
maxc=1
for c in "${clients_l[@]}"; do [ "$c" -gt "$maxc" ] && maxc=$c; done

spid="" cpids=() tpids=()
stop_run() { # the shaping loops, clients and server of the current run
	local p
	for p in "${tpids[@]}" "${cpids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${tpids[@]}" "${cpids[@]}"; do wait "$p" 2>/dev/null; done
	tpids=() cpids=()
	if [ -n "$spid" ]; then
		kill -INT "$spid" 2>/dev/null
		for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		spid=
	fi
}
cleanup() {
	trap '' INT TERM
	stop_run
	local i
	for i in $(seq 1 "$maxc"); do
		ip netns del "${tag}n$i" 2>/dev/null
		ip link del "${tag}v$i" 2>/dev/null
	done
	ip link del "${tag}br" 2>/dev/null
}
trap cleanup EXIT
trap 'echo "experiment.sh: interrupted, cleaning up" >&2; exit 130' INT TERM

# the network: bridge with the server's port, namespaces <tag>n<i> (client i at NET.(10+i)),
# each with a veth pair whose namespace end carries the token bucket
ip link add "${tag}br" type bridge || die "cannot make a bridge"
ip link set "${tag}br" up
for i in $(seq 1 "$maxc"); do
	ns=${tag}n$i cif=${tag}c$i hif=${tag}v$i
	ip netns add "$ns" && ip link add "$hif" type veth peer name "$cif" &&
		ip link set "$cif" netns "$ns" &&
		ip -n "$ns" addr add "$NET.$((10 + i))/24" dev "$cif" &&
		ip -n "$ns" link set "$cif" up && ip -n "$ns" link set lo up &&
		ip link set "$hif" master "${tag}br" && ip link set "$hif" up ||
		die "cannot make namespace $ns and its veth pair"
	ip netns exec "$ns" ethtool -K "$cif" tx off >/dev/null 2>&1
	tc -n "$ns" qdisc add dev "$cif" root tbf rate "${tvals[0]}mbit" burst 1540 latency 300ms ||
		die "cannot add a tbf qdisc in $ns"
done

# trace offsets: client i starts at offsets[i-1] in every run (same seed, same offsets)
mapfile -t offsets < <(awk -v s="$seed" -v n="${#tvals[@]}" -v c="$maxc" \
	'BEGIN { srand(s); for (i = 0; i < c; i++) print int(rand() * n) }')
# shape NS IF OFFSET: the qdisc's rate follows the trace from OFFSET, one step per $step s
shape() {
	local ns=$1 cif=$2 k=$3 n=${#tvals[@]} sp=
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	while :; do
		tc -n "$ns" qdisc change dev "$cif" root tbf rate "${tvals[$k]}mbit" burst 1540 \
			latency 300ms 2>/dev/null
		sleep "$step" &
		sp=$!
		wait "$sp"
		k=$(((k + 1) % n))
	done
}

echo "warmup=$warm duration=$dur" >"$out/window.txt"
echo "policy,clients,slo_ms,fps,trace,frames,results,drops,lost,miss,acc,p50_ms,p99_ms,refused" \
	>"$out/runs.csv"
total=$((${#clients_l[@]} * ${#slo_l[@]} * ${#fps_l[@]} * ${#pol_l[@]}))
secs=$((total * (dur + warm + 8)))
echo "experiment: $total runs of ${warm}+${dur} s, trace $trace ($tfile, ${step} s steps," \
	"seed $seed), server threads $threads, about $((secs / 60)) min; out $out"
run=0
t_start=$(date +%s)
for pol in "${pol_l[@]}"; do
	for n in "${clients_l[@]}"; do
		for slo in "${slo_l[@]}"; do
			for fps in "${fps_l[@]}"; do
				run=$((run + 1))
				name=$pol-c$n-slo$slo-fps$fps-$trace
				rd=$out/runs/$name
				rm -rf "$rd"
				mkdir -p "$rd"
				res=()
				case "$pol" in
				static-small) vs=${sizes[0]} ;;
				static-mid) vs=${sizes[$((${#sizes[@]} / 2))]} ;;
				static-large) vs=${sizes[$((${#sizes[@]} - 1))]} ;;
				*) vs= ;;
				esac
				[ -n "$vs" ] && [ "$bwres" = 1 ] &&
					res=(--policy-resolution bandwidth --max-size "$vs")
				rmode=assign
				[ ${#res[@]} -gt 0 ] && rmode="bandwidth<=$vs"
				printf 'run %d/%d: policy=%s clients=%d slo_ms=%d fps=%d trace=%s resolution=%s (%ds elapsed)\n' \
					"$run" "$total" "$pol" "$n" "$slo" "$fps" "$trace" "$rmode" \
					$(($(date +%s) - t_start))
				"$srv" --no-huge -m 1024 --no-shconf --no-telemetry --file-prefix "$tag$run" \
					-l 0,1 "--vdev=net_af_packet0,iface=${tag}br" -- --ip "$SRV_IP" \
					--poll-idle-us 50 --metrics off --stats-interval 5 --policy "$pol" \
					--threads "$threads" ${SHOAL_EXP_SERVER_ARGS:-} >"$rd/server.log" 2>&1 &
				spid=$!
				for _ in $(seq 1 600); do
					grep -q '^ready:' "$rd/server.log" 2>/dev/null && break
					kill -0 "$spid" 2>/dev/null || break
					sleep 0.1
				done
				if ! grep -q '^ready:' "$rd/server.log"; then
					tail -5 "$rd/server.log" >&2
					die "server not ready (run $name, log $rd/server.log)"
				fi
				for i in $(seq 1 "$n"); do
					ns=${tag}n$i cif=${tag}c$i
					shape "$ns" "$cif" "${offsets[$((i - 1))]}" &
					tpids+=($!)
					ip netns exec "$ns" "$cli" --server "$SRV_IP:5004" --video "$video" --loop \
						--fps "$fps" --slo-ms "$slo" --duration $((warm + dur)) \
						--csv "$rd/client-$i.csv" "${res[@]}" \
						>"$rd/client-$i.out" 2>"$rd/client-$i.err" &
					cpids+=($!)
				done
				fail=0
				for p in "${cpids[@]}"; do wait "$p" || fail=$((fail + 1)); done
				cpids=()
				stop_run
				[ "$fail" -eq 0 ] || echo "  warning: $fail client(s) exited with an error" \
					"(see $rd/client-*.err)"
				row=$("$plot" row --accuracy "$acc" --slo-ms "$slo" --warmup "$warm" \
					--duration "$dur" "$rd"/client-*.csv) || die "cannot summarise $rd"
				echo "$pol,$n,$slo,$fps,$trace,$row" >>"$out/runs.csv"
				IFS=, read -r fr rs dr lo mi ac p5 p9 rf <<<"$row"
				echo "  frames=$fr results=$rs drops=$dr lost=$lo miss=$mi acc=$ac" \
					"p50_ms=$p5 p99_ms=$p9 refused=$rf | $(grep '^serve:' "$rd/server.log" | tail -1 |
					tr ' ' '\n' | grep -E '^(drops|late|device_busy)=' | tr '\n' ' ')"
			done
		done
	done
done
echo "experiment: finished $total runs in $(($(date +%s) - t_start)) s"
"$plot" plot "$out" || die "plotting failed"
