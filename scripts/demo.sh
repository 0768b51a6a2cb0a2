#!/usr/bin/env bash
# shoal demo: shoal-server serving two real video streams at once, over a veth pair into a
# network namespace made here:
#   - shoal-client (registers an SLO, follows the server's ASSIGN, writes a per-frame CSV),
#   - a stock ffmpeg RTP/JPEG sender (no feedback: served with the server's defaults),
# both streaming vtest.avi at 10 fps. The server runs the nanodet detector (CPU backend, or
# CUDA when a GPU is usable) on DPDK net_af_xdp (net_af_packet when AF_XDP cannot start).
# Live progress every 2 s from the server's /metrics, then a summary table and a plot
# (scripts/demo-report.py); the server log, CSVs and plot stay in the output directory.
# Everything made here (namespace, veth, processes, hugepages setting) is undone on exit.
# Usage: sudo scripts/demo.sh [--duration S] [--slo-ms MS] [--driver af_xdp|af_packet]
#                              [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
dur=30
slo=200
want=af_xdp
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) dur=$2; shift 2 ;;
	--slo-ms) slo=$2; shift 2 ;;
	--build) build=$2; shift 2 ;;
	--driver) want=$2; shift 2 ;;
	-h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$want" in af_xdp|af_packet) ;; *) echo "demo.sh: --driver af_xdp or af_packet" >&2; exit 2 ;; esac
case "$dur$slo" in *[!0-9]*|'') echo "demo.sh: --duration and --slo-ms take whole numbers" >&2; exit 2 ;; esac

if [ "$(id -u)" -eq 0 ]; then scripts/setup.sh; else scripts/setup.sh --check; fi
quiet() { local o; o=$("$@" 2>&1) || { echo "$o" | tail -20; echo "demo.sh: failed: $*"; exit 1; }; }
[ -f "$build/build.ninja" ] || quiet meson setup "$build"
quiet ninja -C "$build" control/shoal-server client/shoal-client
if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: needs root (network namespace, veth pair, DPDK on the host end): sudo $0"
	exit 1
fi
scripts/fetch-models.sh # root's cache, where the server (run as root) looks

video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[ -f "$video" ] || { echo "demo.sh: no $video (opencv-doc, scripts/setup.sh)"; exit 1; }
srv_bin=$build/control/shoal-server
cli_bin=$build/client/shoal-client
out=$(mktemp -d /tmp/shoal-demo.XXXXXX)
chmod 755 "$out" # readable by the user who ran sudo
ns=shoal-demo-$$
hif=shd$$        # host end: DPDK's port
cif=shdc$$       # client end, in the namespace
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
CLI_PORT=41000   # shoal-client's RTP port (RTCP 41001)
FF_PORT=40000    # ffmpeg's RTP port
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
hp_old=
spid='' cpid='' fpid=''

cleanup() {
	trap - EXIT INT TERM
	for p in $cpid $fpid; do kill "$p" 2>/dev/null || true; done
	if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
		kill -INT "$spid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$spid" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip link del "$hif" 2>/dev/null || true
	[ -n "$hp_old" ] && echo "$hp_old" >"$hp" 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "demo.sh: interrupted; cleaning up (output so far in $out)"; exit 130' INT TERM

# the children run in their own sessions (setsid): Ctrl-C reaches this script alone, which
# stops them in order in cleanup
step() { printf '\n=== %s\n' "$*"; }

step "network: namespace $ns ($CLI_IP on $cif) <-veth-> $hif (server $SRV_IP, DPDK)"
ip netns add "$ns"
ip link add "$hif" type veth peer name "$cif"
ip link set "$cif" netns "$ns"
ip netns exec "$ns" ip addr add "$CLI_IP/24" dev "$cif"
ip netns exec "$ns" ip link set "$cif" up
ip netns exec "$ns" ip link set lo up
# the veth would leave UDP checksums to an offload that never happens
ip netns exec "$ns" ethtool -K "$cif" tx off >/dev/null 2>&1 || true
ip link set "$hif" up

# server: srv_start EAL-ARGS...; returns 1 when it exits before `ready:`
srv_start() {
	setsid "$srv_bin" --no-telemetry --file-prefix "shoal-demo-$$" -l 0,1 "$@" -- \
		--ip "$SRV_IP" --duration $((dur + 120)) --stats-interval 2 --poll-idle-us 50 \
		--metrics 127.0.0.1:0 >"$out/server.log" 2>&1 &
	spid=$!
	for _ in $(seq 1 1800); do # model load, and on a GPU the first CUDA/cuDNN set-up
		grep -q '^ready:' "$out/server.log" 2>/dev/null && return 0
		kill -0 "$spid" 2>/dev/null || { wait "$spid" 2>/dev/null || true; spid=; return 1; }
		sleep 0.1
	done
	echo "demo.sh: server not ready after 180 s; its log: $out/server.log"
	exit 1
}

step "server: shoal-server, nanodet, 2 model instances, log $out/server.log"
drv=
cur=$(cat "$hp" 2>/dev/null || echo 0)
# net_af_xdp needs the EAL on hugepages (dataplane/README.md): 512 x 2 MiB while the demo runs
if [ "$want" = af_xdp ] && [ "$cur" -lt 512 ] && echo 512 >"$hp" 2>/dev/null; then hp_old=$cur; fi
if [ "$want" = af_xdp ] && [ "$(cat "$hp" 2>/dev/null || echo 0)" -ge 512 ] &&
	srv_start --in-memory "--vdev=net_af_xdp0,iface=$hif"; then
	drv=net_af_xdp
else
	why="no 512 hugepages of 2 MiB"
	[ "$want" = af_packet ] && why="--driver af_packet"
	[ "$want" = af_xdp ] && [ "$(cat "$hp" 2>/dev/null || echo 0)" -ge 512 ] &&
		why="net_af_xdp did not start: $(grep -v '^EAL:\|^libbpf:\|^libxdp:' "$out/server.log" | tail -1)"
	cp "$out/server.log" "$out/server-af_xdp.log" 2>/dev/null || true
	[ -n "$hp_old" ] && { echo "$hp_old" >"$hp"; hp_old=; }
	[ "$want" = af_xdp ] && echo "falling back to net_af_packet ($why)"
	srv_start --no-huge -m 1024 --no-shconf "--vdev=net_af_packet0,iface=$hif" ||
		{ echo "demo.sh: server failed; its log: $out/server.log"; tail -5 "$out/server.log"; exit 1; }
	drv=net_af_packet
fi
ready=$(grep '^ready:' "$out/server.log")
maddr=$(echo "$ready" | tr ' ' '\n' | sed -n 's/^metrics=//p')
backend=$(echo "$ready" | tr ' ' '\n' | sed -n 's/^backend=//p')
echo "ready: driver=$drv backend=$backend metrics=http://$maddr/metrics"

step "streams: vtest.avi 10 fps for $dur s from $CLI_IP: shoal-client (port $CLI_PORT, SLO $slo ms) + ffmpeg (port $FF_PORT, no feedback)"
setsid ip netns exec "$ns" "$cli_bin" --server "$SRV_IP:5004" --local-port "$CLI_PORT" \
	--video "$video" --loop --fps 10 --slo-ms "$slo" --duration "$dur" \
	--csv "$out/shoal-client.csv" --progress >"$out/shoal-client.out" 2>"$out/shoal-client.err" &
cpid=$!
setsid ip netns exec "$ns" ffmpeg -nostdin -loglevel error -re -stream_loop -1 -i "$video" -t "$dur" \
	-vf scale=320:240 -c:v mjpeg -huffman default -pix_fmt yuvj420p -q:v 5 -r 10 \
	-progress "$out/ffmpeg.progress" -f rtp \
	"rtp://$SRV_IP:5004?localrtpport=$FF_PORT&pkt_size=1400" >"$out/ffmpeg.log" 2>&1 &
fpid=$!

# one sample of the per-client metrics: t client in served dropped missed variant lat_sum lat_n
sample() {
	curl -s --max-time 1 "http://$maddr/metrics" | awk -v t="$1" '
	/^shoal_client_/ {
		if (!match($0, /client="[^"]*"/)) next
		c = substr($0, RSTART + 8, RLENGTH - 9); seen[c] = 1; v = $NF
		if ($0 ~ /^shoal_client_frames_in_total/) fin[c] = v
		else if ($0 ~ /^shoal_client_frames_served_total/) fse[c] = v
		else if ($0 ~ /^shoal_client_frames_dropped_total/) fdr[c] = v
		else if ($0 ~ /^shoal_client_frames_missed_total/) fmi[c] = v
		else if ($0 ~ /^shoal_client_assigned_variant/) var[c] = v
		else if ($0 ~ /^shoal_client_server_latency_seconds_sum/) ls[c] = v
		else if ($0 ~ /^shoal_client_server_latency_seconds_count/) ln[c] = v
	}
	END { for (c in seen) printf "%s %s %d %d %d %d %d %s %d\n", t, c, fin[c], fse[c],
		fdr[c], fmi[c], var[c], (ls[c] == "" ? 0 : ls[c]), ln[c] }'
}
echo "t client in served dropped missed variant lat_sum_s lat_n" >"$out/metrics-samples.tsv"
echo "live, every 2 s from the server's /metrics, per stream: frames in, served (RESULT),"
echo "dropped (DROP), missed (late, or dropped as late), model input size assigned now,"
echo "server-side mean latency (ms) of the frames served in the last 2 s"
printf '        %-38s  %s\n' "shoal-client (SLO $slo ms)" "ffmpeg (server default SLO)"
printf '  t(s)  %-38s  %s\n' "   in served drop miss size  lat_ms" "   in served drop miss size  lat_ms"
prev=
t0=$(date +%s.%N)
while kill -0 "$cpid" 2>/dev/null || kill -0 "$fpid" 2>/dev/null; do
	sleep 2
	t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	cur=$(sample "$t" || true)
	[ -n "$cur" ] && echo "$cur" >>"$out/metrics-samples.tsv"
	printf '%s\n%s\n' "$prev" "$cur" | awk -v t="$t" -v cp=":$CLI_PORT/" -v fp=":$FF_PORT/" '
	NF == 9 { k = ($2 ~ cp) ? "c" : ($2 ~ fp) ? "f" : ""; if (k == "") next
		if (seen[k]++) { dl[k] = $9 - n0[k]; ds[k] = $8 - s0[k] }
		n0[k] = $9; s0[k] = $8
		l[k] = sprintf("%5d %6d %4d %4d %4d  %6s", $3, $4, $5, $6, $7,
			dl[k] > 0 ? sprintf("%.1f", 1e3 * ds[k] / dl[k]) : "-") }
	END { printf "%6s  %-38s  %s\n", t, ("c" in l) ? l["c"] : "    (not seen yet)",
		("f" in l) ? l["f"] : "    (not seen yet)" }'
	prev=$cur
done
wait "$cpid" || echo "shoal-client exited with $? (see $out/shoal-client.err)"
cpid=
wait "$fpid" || echo "ffmpeg exited with $? (see $out/ffmpeg.log)"
fpid=
sleep 1 # the last answers
kill -INT "$spid" 2>/dev/null || true
wait "$spid" || echo "shoal-server exited with $? (see $out/server.log)"
spid=
ffn=$(sed -n 's/^frame=//p' "$out/ffmpeg.progress" 2>/dev/null | tail -1)

step "server's last lines"
grep '^client:\|^serve: frames=' "$out/server.log" | sed 's/^/  /'

step "summary (driver $drv, backend $backend)"
scripts/demo-report.py "$out/server.log" "$out/shoal-client.csv" "$out/shoal-client.out" \
	"${ffn:-0}" "$out/demo.png" --slo-ms "$slo" --client-port "$CLI_PORT" \
	--ffmpeg-port "$FF_PORT" --samples "$out/metrics-samples.tsv"
echo "output directory: $out (server.log, shoal-client.csv/.out/.err, ffmpeg.log," \
	"metrics-samples.tsv, demo.png)"
