#!/usr/bin/env bash
# End-to-end tests of shoal-server serving real clients (suite e2e, DESIGN.md §9): the server
# on a DPDK net_af_packet port on the host end of veth pairs, clients in network namespaces
# made here: shoal-client (follows ASSIGN, writes per-frame CSV), shoal-gen (many emulated
# clients, end-to-end accounting), stock ffmpeg. The CPU backend with the nanodet family.
# Exit 77 when not root, without namespaces, or without the model (scripts/fetch-models.sh).
# Usage: test_e2e.sh SERVER CLIENT GEN CASE
#   CASE: two_clients_slos | overload_sheds | churn_200 | shutdown_under_load | raw_client |
#         bad_config
set -uo pipefail
srv=$1 cli=$2 gen=$3 case=$4
tmp=$(mktemp -d)
tag=e$$
spid=
nss=()
cleanup() {
	[ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
	for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null; done
	ip link del "br$tag" 2>/dev/null
	for i in 1 2 3; do ip link del "v$tag$i" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/srv.log" ] && tail -40 "$tmp/srv.log"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
kv() { # FILE PREFIX KEY: value of KEY= on the last line starting with PREFIX
	grep "^$2" "$1" | tail -1 | tr ' ' '\n' | sed -n "s/^$3=//p"
}

model="${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/nanodet.onnx"
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi

# --- bad configuration: no root, no EAL needed (refused before the EAL starts) -------------
if [ "$case" = bad_config ]; then
	one_line_exit2() { # DESC ARGS...
		local d=$1; shift
		"$srv" --no-huge -- "$@" >"$tmp/out" 2>"$tmp/err"
		local rc=$?
		[ $rc -eq 2 ] || fail "$d: exit $rc, want 2 ($(cat "$tmp/err"))"
		local n; n=$(grep -c . "$tmp/err")
		[ "$n" -eq 1 ] || fail "$d: $n lines on stderr, want 1: $(cat "$tmp/err")"
		echo "ok: $d: $(cat "$tmp/err")"
	}
	printf 'ip = 10.1.2.3\nbogus-key = 1\n' >"$tmp/bad.conf"
	one_line_exit2 "unknown config key" --config "$tmp/bad.conf"
	grep -q "bad.conf:2" "$tmp/err" || fail "config error does not name file:line"
	printf 'ip = 10.1.2.3\ninstances = 0\n' >"$tmp/bad2.conf"
	one_line_exit2 "bad config value" --config "$tmp/bad2.conf"
	one_line_exit2 "missing model file" --ip 10.1.2.3 --model-file "$tmp/none.onnx"
	head -c 4096 /dev/urandom >"$tmp/garbage.onnx"
	one_line_exit2 "garbage model file" --ip 10.1.2.3 --model-file "$tmp/garbage.onnx"
	one_line_exit2 "bad backend" --ip 10.1.2.3 --backend tpu
	one_line_exit2 "bad model family" --ip 10.1.2.3 --model yolo
	one_line_exit2 "bad metrics address" --ip 10.1.2.3 --metrics nowhere
	one_line_exit2 "no decode workers" --ip 10.1.2.3 --decode-workers 0
	if [ -f "$model" ]; then
		one_line_exit2 "missing profile" --ip 10.1.2.3 --profile "$tmp/noprof"
		mkdir -p "$tmp/badprof"
		printf 'variant,batch,p50_ms,p99_ms\nnanodet-128,1,x,y\n' >"$tmp/badprof/latency.csv"
		printf 'variant,f1\nnanodet-128,0.5\n' >"$tmp/badprof/accuracy.csv"
		one_line_exit2 "malformed profile" --ip 10.1.2.3 --profile "$tmp/badprof"
	fi
	exit 0
fi

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, DPDK af_packet)"
ip netns add "probe$tag" 2>/dev/null || skip "network namespaces unavailable"
ip netns del "probe$tag"
[ -f "$model" ] || skip "no model at $model (scripts/fetch-models.sh)"

SRV_IP=10.79.$(( $$ % 200 + 20 )).1
NET=${SRV_IP%.1}

# N namespaces e<pid>n<i> with CLIENT IPs NET.(10+i); one veth pair each; N > 1 puts the host
# ends on a bridge and the server on the bridge
net_up() {
	local n=$1
	local sif
	if [ "$n" -gt 1 ]; then
		ip link add "br$tag" type bridge || return 1
		ip link set "br$tag" up
		sif="br$tag"
	fi
	for i in $(seq 1 "$n"); do
		local ns="${tag}n$i"
		ip netns add "$ns" || return 1
		nss+=("$ns")
		ip link add "v$tag$i" type veth peer name "c$tag$i" || return 1
		ip link set "c$tag$i" netns "$ns"
		ip netns exec "$ns" ip addr add "$NET.$((10 + i))/24" dev "c$tag$i"
		ip netns exec "$ns" ip link set "c$tag$i" up
		ip netns exec "$ns" ip link set lo up
		ip netns exec "$ns" ethtool -K "c$tag$i" tx off >/dev/null 2>&1
		ip link set "v$tag$i" up
		if [ "$n" -gt 1 ]; then
			ip link set "v$tag$i" master "br$tag"
		else
			sif="v$tag$i"
		fi
	done
	SIF=$sif
}

# server in the background: srv_start DURATION [options...]; sets spid, MPORT (metrics)
srv_start() {
	local dur=$1; shift
	"$srv" --no-huge -m 1024 --no-shconf --no-telemetry --file-prefix "$tag" -l 0,1 \
		"--vdev=net_af_packet0,iface=$SIF" -- --ip "$SRV_IP" --duration "$dur" \
		--poll-idle-us 50 --metrics 127.0.0.1:0 --stats-interval 1 "$@" \
		>"$tmp/srv.log" 2>&1 &
	spid=$!
	for _ in $(seq 1 600); do
		grep -q '^ready:' "$tmp/srv.log" 2>/dev/null && break
		kill -0 "$spid" 2>/dev/null || fail "server did not start"
		sleep 0.1
	done
	grep -q '^ready:' "$tmp/srv.log" || fail "server not ready after 60 s"
	MPORT=$(sed -n 's/^ready:.* metrics=[0-9.]*:\([0-9]*\) .*/\1/p' "$tmp/srv.log")
}
srv_wait() {
	wait "$spid"
	local rc=$?
	spid=
	[ $rc -eq 0 ] || fail "server exit $rc"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# answered NAME OUT MIN_SENT: shoal-client's summary in OUT: at least MIN_SENT frames sent,
# each answered once (RESULT or DROP, none lost), some RESULTs; sets sent and res
answered() {
	local drops lost
	sent=$(kv "$2" client: sent)
	res=$(kv "$2" client: results)
	drops=$(kv "$2" client: drops)
	lost=$(kv "$2" client: lost)
	[ "$sent" -ge "$3" ] || fail "$1 sent only $sent frames"
	[ "$lost" -eq 0 ] || fail "$1: $lost frames got neither RESULT nor DROP"
	[ $((res + drops)) -eq "$sent" ] || fail "$1: results $res + drops $drops != sent $sent"
	[ "$res" -gt 0 ] || fail "$1: no RESULT"
}

case "$case" in
two_clients_slos)
	# two registered clients in two namespaces, SLO 150 and 400 ms, 10 fps for 6 s each
	net_up 2 || skip "cannot make veth/bridge"
	srv_start 14
	src=(--synthetic)
	[ -f "$video" ] && src=(--video "$video" --loop)
	ip netns exec "${tag}n1" "$cli" --server "$SRV_IP:5004" "${src[@]}" --fps 10 \
		--slo-ms 150 --duration 6 --csv "$tmp/c1.csv" >"$tmp/c1.out" 2>"$tmp/c1.err" &
	c1=$!
	ip netns exec "${tag}n2" "$cli" --server "$SRV_IP:5004" "${src[@]}" --fps 10 \
		--slo-ms 400 --duration 6 --csv "$tmp/c2.csv" >"$tmp/c2.out" 2>"$tmp/c2.err" &
	c2=$!
	sleep 4 # metrics while both stream
	curl -s "127.0.0.1:$MPORT/metrics" >"$tmp/metrics.txt"
	wait $c1 || fail "client 1 exit $?: $(cat "$tmp/c1.err")"
	wait $c2 || fail "client 2 exit $?: $(cat "$tmp/c2.err")"
	kill -INT "$spid"
	srv_wait
	cat "$tmp/c1.out" "$tmp/c2.out"
	for c in c1 c2; do
		answered "$c" "$tmp/$c.out" 40
		# one CSV row per frame, each frame once
		rows=$(tail -n +2 "$tmp/$c.csv" | wc -l)
		[ "$rows" -eq "$sent" ] || fail "$c: $rows CSV rows for $sent frames"
		dups=$(tail -n +2 "$tmp/$c.csv" | cut -d, -f2 | sort | uniq -d | wc -l)
		[ "$dups" -eq 0 ] || fail "$c: $dups RTP timestamps answered twice in the CSV"
		# the client followed an ASSIGN: some RESULTs name a variant
		v=$(kv "$tmp/$c.out" client: variants)
		[ -n "$v" ] && [ "$v" != "-" ] || fail "$c: no variant in its results"
	done
	# the server saw both SLOs; its answers add up: every frame it completed was answered
	# once (RESULT or DROP). (Its per-client lines of clients that left hold their
	# statistics at the last control round before the BYE: at most a few frames short.)
	grep '^client:' "$tmp/srv.log"
	grep -q '^client: .* managed=1 slo_ms=150 ' "$tmp/srv.log" || fail "SLO 150 not registered"
	grep -q '^client: .* managed=1 slo_ms=400 ' "$tmp/srv.log" || fail "SLO 400 not registered"
	cnt() { grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	complete=$(cnt frames_complete)
	answered=$(( $(cnt results_sent) + $(cnt frames_late) + $(cnt frames_refused) ))
	[ "$complete" -eq 120 ] || fail "server completed $complete frames, clients sent 120"
	[ "$answered" -eq "$complete" ] || fail "server answered $answered of $complete frames"
	n=$(grep -c '^shoal_client_frames_served_total{client=' "$tmp/metrics.txt")
	[ "$n" -eq 2 ] || fail "metrics: served frames of $n clients, want 2"
	grep -q '^shoal_client_server_latency_seconds_bucket{client=.*le="+Inf"}' \
		"$tmp/metrics.txt" || fail "metrics lack the per-client latency histogram"
	grep -q 'shoal_instance_batches_total{instance=' "$tmp/metrics.txt" ||
		fail "metrics lack per-instance batch sizes"
	;;
overload_sheds)
	# offered load far above what two cores infer: the server sheds with DROP, what it
	# serves stays within the SLO, its memory stays flat
	net_up 1 || skip "cannot make veth"
	srv_start 16 --slo-ms 150
	ip netns exec "${tag}n1" "$gen" --udp "$SRV_IP:5004" --clients 40 --fps 15 \
		--size 320x240 --seconds 10 --register 150 --drain-ms 1000 \
		--per-client "$tmp/gen.csv" >"$tmp/gen.out" 2>&1 &
	g=$!
	sleep 4
	rss1=$(rss_kb "$spid")
	sleep 5
	rss2=$(rss_kb "$spid")
	wait $g || fail "shoal-gen exit $?: $(tail -3 "$tmp/gen.out")"
	kill -INT "$spid"
	srv_wait
	tail -1 "$tmp/gen.out"
	grep '^serve:' "$tmp/srv.log" | tail -1
	frames=$(kv "$tmp/gen.out" gen: frames)
	res=$(kv "$tmp/gen.out" gen: results)
	drops=$(kv "$tmp/gen.out" gen: drops)
	lost=$(kv "$tmp/gen.out" gen: lost)
	[ "$drops" -gt 0 ] || fail "no DROP under overload"
	[ "$res" -gt 0 ] || fail "nothing served under overload"
	[ $((lost * 100)) -le "$frames" ] || fail "$lost of $frames frames unanswered (> 1%)"
	# served frames within the SLO: the server's late RESULTs are at most 5% of its RESULTs
	# (typically ~1% here: a batch that ran longer than its 95th-percentile estimate)
	sres=$(kv "$tmp/srv.log" serve: results)
	late=$(grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n 's/^results_late=//p')
	echo "server results $sres, late results $late; rss $rss1 -> $rss2 kB"
	[ $((late * 20)) -le "$sres" ] || fail "$late of $sres RESULTs after the SLO"
	# flat: 3,000 frames later no more than a variant preparation's worth of growth (a plan
	# may still switch an instance to a variant not prepared before; the cache is bounded)
	[ "$rss2" -le $((rss1 + rss1 / 4 + 65536)) ] || fail "memory grew: $rss1 -> $rss2 kB"
	;;
churn_200)
	# 200 clients join (REGISTER + frames) and leave (silent past the idle timeout), twice;
	# the tables return to empty and, in a sanitizer build, nothing leaks at exit
	net_up 1 || skip "cannot make veth"
	srv_start 30 --idle-timeout 1 --max-clients 256
	for round in 1 2; do
		ip netns exec "${tag}n1" "$gen" --udp "$SRV_IP:5004" --clients 200 --fps 2 \
			--size 320x240 --seconds 3 --register 400 --drain-ms 300 \
			>"$tmp/gen$round.out" 2>&1 &
		g=$!
		# joined: the control thread's table fills while they stream
		most=0
		while kill -0 "$g" 2>/dev/null; do
			c=$(curl -s "127.0.0.1:$MPORT/metrics" | sed -n 's/^shoal_clients \([0-9]*\)$/\1/p')
			[ "${c:-0}" -gt "$most" ] && most=$c
			sleep 0.1
		done
		wait "$g" || fail "shoal-gen round $round: $(tail -2 "$tmp/gen$round.out")"
		tail -1 "$tmp/gen$round.out"
		echo "round $round: at most $most clients in the control table"
		[ "$most" -ge 150 ] || fail "round $round: only $most of 200 clients seen joining"
		# gone after the idle timeout
		for _ in $(seq 1 60); do
			c=$(curl -s "127.0.0.1:$MPORT/metrics" | sed -n 's/^shoal_clients \([0-9]*\)$/\1/p')
			[ "${c:-1}" = 0 ] && break
			sleep 0.1
		done
		[ "${c:-1}" = 0 ] || fail "round $round: $c clients still in the control table"
	done
	kill -INT "$spid"
	srv_wait
	grep -q '^clients: total=0 ' "$tmp/srv.log" || fail "data-plane table not empty at the end"
	new=$(grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n 's/^clients_new=//p')
	ev=$(grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n 's/^clients_evicted=//p')
	echo "clients new $new evicted $ev"
	[ "$new" -ge 400 ] || fail "only $new clients joined"
	[ "$new" -eq "$ev" ] || fail "$new joined but $ev left"
	grep -q 'staging: free=\([0-9]*\) total=\1$' "$tmp/srv.log" || fail "staging slots not all back"
	! grep -q 'LeakSanitizer' "$tmp/srv.log" || fail "leaks reported"
	;;
shutdown_under_load)
	# SIGTERM while 20 clients stream: clean exit, and the statistics add up: every frame
	# the data plane completed was answered (RESULT/DROP) or counted as left at stop
	net_up 1 || skip "cannot make veth"
	srv_start 60
	ip netns exec "${tag}n1" "$gen" --udp "$SRV_IP:5004" --clients 20 --fps 15 \
		--size 320x240 --seconds 20 >"$tmp/gen.out" 2>&1 &
	g=$!
	[ -f "$video" ] && ip netns exec "${tag}n1" ffmpeg -nostdin -loglevel error -re \
		-stream_loop -1 -i "$video" -t 20 -vf scale=320:240 -c:v mjpeg -huffman default \
		-pix_fmt yuvj420p -q:v 5 -r 10 -f rtp \
		"rtp://$SRV_IP:5004?localrtpport=40000&pkt_size=1400" >/dev/null 2>&1 &
	sleep 5
	kill -TERM "$spid"
	srv_wait
	kill $g 2>/dev/null
	wait 2>/dev/null
	tail -12 "$tmp/srv.log"
	line=$(grep '^serve:' "$tmp/srv.log" | tail -1)
	[ -n "$line" ] || fail "no final serve: line"
	grep -q '^counters:' "$tmp/srv.log" || fail "no final counters"
	get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	c() { grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	complete=$(c frames_complete)
	dispatched=$(get dispatched)
	left=$(get left_at_stop)
	results=$(c results_sent)
	late=$(c frames_late)
	refused=$(c frames_refused)
	full=$(get post_full)
	echo "complete $complete dispatched $dispatched left $left results $results late $late refused $refused post_full $full"
	[ "$complete" -gt 0 ] || fail "nothing received"
	# decoded frames all reached the dispatcher or were left in the rings at the stop
	undec=$(c frames_undecodable)
	decov=$(c decode_overload)
	noadm=$(c frames_not_admitted)
	unrouted=$(get not_routed)
	[ $((dispatched + unrouted + left + undec + decov + noadm)) -eq "$complete" ] ||
		fail "frames: $complete complete != dispatched $dispatched + not routed $unrouted + left $left + undecodable $undec + decode overload $decov + not admitted $noadm"
	[ $((results + late + refused + full)) -eq $((dispatched + unrouted)) ] ||
		fail "answers: results $results + late $late + refused $refused + unposted $full != dispatched $dispatched + not routed $unrouted"
	grep -q 'staging: free=\([0-9]*\) total=\1$' "$tmp/srv.log" || fail "staging slots not all back"
	;;
raw_client)
	# an uncompressed (RFC 4175, I420) sender reporting 8 Mbit/s: the server plans it with
	# raw frame bytes (1.5 per pixel: at 5 fps nothing above 352x352 fits; planned as JPEG
	# it would get 640); it starts at 320x240, is assigned a square and re-registers before
	# sending at it; every frame reassembles at its size and is answered, most with RESULTs
	net_up 1 || skip "cannot make veth"
	srv_start 16
	ip netns exec "${tag}n1" "$cli" --server "$SRV_IP:5004" --synthetic --format raw \
		--fps 5 --slo-ms 400 --bw-kbps 8000 --duration 10 --csv "$tmp/c1.csv" \
		>"$tmp/c1.out" 2>"$tmp/c1.err" || fail "raw client exit $?: $(cat "$tmp/c1.err")"
	kill -INT "$spid"
	srv_wait
	cat "$tmp/c1.out"
	answered "raw client" "$tmp/c1.out" 25
	sizes=$(kv "$tmp/c1.out" client: sizes)
	[ $((res * 2)) -ge "$sent" ] || fail "raw client: only $res RESULTs for $sent frames"
	[ "$(echo "$sizes" | tr ',' '\n' | grep -c .)" -ge 2 ] ||
		fail "raw client never changed size (sizes=$sizes): the ASSIGN path is not exercised"
	# planned for raw frames: the server's last plan for the client, and the variants that
	# answered its last 10 frames (CSV column 7). Not every frame: until its first REPORT
	# the client's bandwidth is unknown (planned as unlimited: 544 px), and an instance
	# keeps its variant until the next one is prepared, so the first frames may be answered
	# by the larger one (the client itself backs off to what 8 Mbit/s carries at once)
	vplan=$(kv "$tmp/srv.log" client: variant)
	[ -n "$vplan" ] && [ "$vplan" -le 352 ] ||
		fail "raw client planned at variant ${vplan:-none}: not with raw frame bytes"
	vmax=$(tail -n +2 "$tmp/c1.csv" | cut -d, -f7 | grep . | tail -10 | sort -n | tail -1)
	[ -n "$vmax" ] && [ "$vmax" -le 352 ] ||
		fail "raw client's last frames served at variant ${vmax:-none}: not planned with raw frame bytes"
	cnt() { grep '^counters:' "$tmp/srv.log" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	[ "$(cnt frames_complete)" -eq "$sent" ] ||
		fail "server completed $(cnt frames_complete) raw frames of $sent"
	[ "$(cnt frames_incomplete)" -eq 0 ] || fail "$(cnt frames_incomplete) raw frames incomplete"
	[ "$(cnt drop_payload)" -eq 0 ] || fail "$(cnt drop_payload) raw payloads refused"
	[ "$(cnt registers)" -ge 2 ] || fail "the raw client did not re-register at its new size"
	;;
*)
	echo "unknown case $case" >&2
	exit 2
	;;
esac
echo "PASS: $case"
exit 0
