#!/usr/bin/env bash
# shoal-gen in kernel mode against shoal-krecv on loopback: paced clients' frames all arrive
# complete and decode (the generator's RTP/JPEG is what a real receiver accepts), and bad
# flags are refused with one line and exit 2. Against an answerer (below: a stand-in for the
# server's RTCP side, messages built byte by byte from dataplane/PROTOCOL.md): every frame
# sent is counted once as a RESULT, a DROP or lost, misses include every frame without a
# timely RESULT, REGISTERs parse, and --follow-assign switches to the ASSIGNed resolution.
# DPDK mode is checked the same way through a net_tap port in a namespace made by the test,
# the answerer on the kernel side of the tap (exit 77 when not root or without namespaces).
# --trace: a low-rate trace spreads each frame's packets in time at the answerer, the
# received bitrate follows the trace (±40 %), REPORTs carry the trace's rate, bad trace
# files are refused; --stress: the answerer counts exactly the garbage, malformed packets,
# unknown SSRCs, duplicates and swaps the generator claims, while the real frames' answers
# still add up. Per-client lists (--fps/--register/--slo-ms/--size A,B,...; client i takes
# element i mod n of each): each client's REGISTER carries its own SLO, fps and size, its
# frames arrive at its size and in proportion to its fps, misses count against its own SLO,
# --follow-assign follows a ladder in the aspect of the client's size, one `gen: group` line
# per (fps, SLO, size) with its client count; bad lists are refused. --mix FILE: classes
# dealt out by weight, each client REGISTERing and sending its class's; bad files refused.
# Usage: test_gen.sh GEN KRECV CASE   (CASE: kernel_frames_decode | bad_flags |
#        kernel_results | kernel_follow_assign | dpdk_tap_results | kernel_trace_shaped |
#        bad_trace | kernel_stress | kernel_mix_register | kernel_mix_fps_slo |
#        kernel_mix_follow_assign | bad_mix | kernel_mix_file)
set -uo pipefail
gen=$1 krecv=$2 case=$3
tmp=$(mktemp -d)
rpid=
ns=
trap 'kill $rpid 2>/dev/null; [ -n "$ns" ] && ip netns del $ns 2>/dev/null; rm -rf "$tmp"' EXIT
port=$((30000 + (RANDOM % 15000) * 2))

# the answerer: RESULT for complete frames, DROP (overload) every 5th, no answer every 7th,
# a RESULT 300 ms late every 4th, a duplicate RESULT for each client's first frame; checks
# every REGISTER and answers it with an ASSIGN (--assign WxH); writes key=value stats on TERM,
# and one line per client (SSRC) to STATS.clients: what its last REGISTER said, its frames
cat >"$tmp/answerer.py" <<'PYEOF'
#!/usr/bin/python3
# Test-side shoal server stand-in: takes RTP/JPEG on PORT, REGISTERs on PORT+1, and answers
# from PORT+1 to the sender's port + 1 (PROTOCOL.md §5, built byte by byte).
import argparse, select, signal, socket, struct, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--port', type=int, required=True)
ap.add_argument('--addr', default='127.0.0.1')
ap.add_argument('--stats', required=True)
ap.add_argument('--drop-every', type=int, default=5)   # DROP (overload) every Nth frame
ap.add_argument('--skip-every', type=int, default=7)   # no answer at all
ap.add_argument('--delay-every', type=int, default=4)  # RESULT after --delay-ms
ap.add_argument('--delay-ms', type=float, default=300)
ap.add_argument('--slo', type=int, default=0)          # what REGISTERs must say
ap.add_argument('--fps-x100', type=int, default=0)
ap.add_argument('--size', default='320x240')            # 'any': each client's own
ap.add_argument('--n-res', type=int, default=1)
ap.add_argument('--assign', default='')                # WxH: ASSIGN every REGISTER
ap.add_argument('--assign-after', type=int, default=0)  # ... or once, after N frames
a = ap.parse_args()
want_w, want_h = map(int, a.size.split('x')) if a.size != 'any' else (None, None)

media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
media.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
media.bind((a.addr, a.port))
rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rtcp.bind((a.addr, a.port + 1))

st = dict(frames=0, results=0, drops=0, skipped=0, delayed=0, dups=0, registers_ok=0,
          registers_bad=0, assigns=0, bad_rtp=0, frames_at_size=0, rtcp_bad=0, reports=0,
          reports_bad=0, report_rtt=0, unknown_ssrc=0, dup_rx=0, reorder_rx=0)
reg_addr, first_size, last_size, frames_by_ssrc = {}, {}, {}, {}
reg_info, sizes_by_ssrc = {}, {}  # ssrc -> (slo, fps_x100, 'WxH,...'); ssrc -> {(w, h)}
pending = {}   # (ssrc, ts) -> [bytes, end or None, addr, w, h, first arrival]
seen_seq, top_seq, report_bw = set(), {}, set()
spreads = []   # per complete frame: last packet's arrival - first's (s)
rx = {}        # ssrc -> [wire bytes (+ IPv4/UDP headers), first arrival, last arrival]
later = []     # (time, datagram, addr)
stop = False


def app(subtype, ssrc, data):
    body = b'SHOL' + data
    return struct.pack('!BBHI', 0x80 | subtype, 204, (8 + len(body)) // 4 - 1, ssrc) + body


def result(ssrc, ts):
    det = struct.pack('!HHHHHH', 16, 50000, 10, 20, 30, 40)
    return app(4, ssrc, struct.pack('!BBHIHHI', 1, 0, 1, ts, 320, 0, 1500) + det)


def drop(ssrc, ts, reason):
    return app(5, ssrc, struct.pack('!BBHI', 1, reason, 0, ts))


def assign(ssrc, w, h):
    return app(3, ssrc, struct.pack('!BBBBI16sHHHHI', 1, 1, 1, 0, 7, b'nanodet', 320, w, h,
                                    3000, 20000))


def on_register(d, addr):
    ok = (len(d) >= 24 and d[0] == 0x81 and d[1] == 204 and
          (struct.unpack('!H', d[2:4])[0] + 1) * 4 == len(d) and d[8:12] == b'SHOL')
    if ok:
        ssrc = struct.unpack('!I', d[4:8])[0]
        ver, fmts, n, _, slo, fps, mport, _ = struct.unpack('!BBBBHHHH', d[12:24])
        ok = (ver == 1 and fmts == 1 and n == a.n_res and len(d) == 24 + 4 * n and
              mport == addr[1] - 1 and 0x5000 <= ssrc < 0x5000 + 1024 and
              (not a.slo or slo == a.slo) and (not a.fps_x100 or fps == a.fps_x100) and
              (want_w is None or struct.unpack('!HH', d[24:28]) == (want_w, want_h)))
    if not ok:
        st['registers_bad'] += 1
        return
    st['registers_ok'] += 1
    reg_addr[ssrc] = addr
    res = [struct.unpack('!HH', d[24 + 4 * k:28 + 4 * k]) for k in range(n)]
    reg_info[ssrc] = (slo, fps, ','.join('%dx%d' % r for r in res))
    if a.assign and not a.assign_after:
        w, h = map(int, a.assign.split('x'))
        rtcp.sendto(assign(ssrc, w, h), addr)
        st['assigns'] += 1


def on_report(d, addr):
    if len(d) != 32 or d[0] != 0x82:
        st['reports_bad'] += 1
        return
    bw, rtt, sent, results = struct.unpack('!IIII', d[16:32])
    st['reports'] += 1
    report_bw.add(bw)
    st['report_rtt'] += rtt > 0


def on_frame(ssrc, ts, addr, w, h):
    n = frames_by_ssrc.get(ssrc, 0) + 1
    frames_by_ssrc[ssrc] = n
    st['frames'] += 1
    first_size.setdefault(ssrc, (w, h))
    last_size[ssrc] = (w, h)
    sizes_by_ssrc.setdefault(ssrc, set()).add((w, h))
    if (w, h) == (want_w, want_h):
        st['frames_at_size'] += 1
    if a.assign and n == a.assign_after and ssrc in reg_addr:
        aw, ah = map(int, a.assign.split('x'))
        rtcp.sendto(assign(ssrc, aw, ah), reg_addr[ssrc])
        st['assigns'] += 1
    to = (addr[0], addr[1] + 1)
    if n % a.drop_every == 0:
        rtcp.sendto(drop(ssrc, ts, 3), to)
        st['drops'] += 1
    elif n % a.skip_every == 0:
        st['skipped'] += 1
    elif n % a.delay_every == 0:
        later.append((time.monotonic() + a.delay_ms / 1000, result(ssrc, ts), to))
        st['delayed'] += 1
        st['results'] += 1
    else:
        rtcp.sendto(result(ssrc, ts), to)
        st['results'] += 1
        if n == 1:  # a second answer to the same frame: the generator must not count it
            rtcp.sendto(result(ssrc, ts), to)
            st['dups'] += 1


def on_rtp(d, addr):
    # the generator's packets: version 2, no padding, extension or CSRCs, PT 26, a full
    # JPEG header; anything else is bad
    if len(d) < 21 or d[0] != 0x80 or d[1] & 0x7f != 26:
        st['bad_rtp'] += 1
        return
    marker = d[1] >> 7
    seq, ts, ssrc = struct.unpack('!HII', d[2:12])
    if not 0x5000 <= ssrc < 0x5000 + 1024:
        st['unknown_ssrc'] += 1
        return
    if (ssrc, seq) in seen_seq:
        st['dup_rx'] += 1
        return
    seen_seq.add((ssrc, seq))
    if seq < top_seq.get(ssrc, -1):
        st['reorder_rx'] += 1
    top_seq[ssrc] = max(seq, top_seq.get(ssrc, -1))
    now = time.monotonic()
    r = rx.setdefault(ssrc, [0, now, now])
    r[0] += len(d) + 28
    r[2] = now
    off = int.from_bytes(d[13:16], 'big')
    typ, w, h = d[16], d[18] * 8, d[19] * 8
    hdr = 12 + 8 + (4 if typ >= 64 else 0)
    f = pending.setdefault((ssrc, ts), [0, None, addr, w, h, now])
    f[0] += len(d) - hdr
    if marker:
        f[1] = off + len(d) - hdr
    if f[1] is not None and f[0] == f[1]:
        del pending[(ssrc, ts)]
        spreads.append(now - f[5])
        on_frame(ssrc, ts, addr, w, h)


def rtcp_ok(d):
    return (len(d) >= 13 and d[0] >> 6 == 2 and d[1] == 204 and
            (struct.unpack('!H', d[2:4])[0] + 1) * 4 == len(d) and d[8:12] == b'SHOL' and
            d[12] == 1)


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
open(a.stats + '.ready', 'w').close()
while not stop:
    now = time.monotonic()
    for item in [x for x in later if x[0] <= now]:
        rtcp.sendto(item[1], item[2])
        later.remove(item)
    try:
        r, _, _ = select.select([media, rtcp], [], [], 0.005)
    except InterruptedError:
        continue
    for s in r:
        while True:
            try:
                d, addr = s.recvfrom(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            if s is media:
                on_rtp(d, addr)
            elif not rtcp_ok(d):
                st['rtcp_bad'] += 1
            elif d[0] & 0x1f == 1:
                on_register(d, addr)
            elif d[0] & 0x1f == 2:
                on_report(d, addr)
            else:
                st['registers_bad'] += 1
st['register_ssrcs'] = len(reg_addr)
st['incomplete'] = len(pending)
st['first_sizes'] = ','.join('%dx%d' % first_size[k] for k in sorted(first_size))
st['last_sizes'] = ','.join('%dx%d' % last_size[k] for k in sorted(last_size))
st['report_bw'] = ','.join(str(b) for b in sorted(report_bw))
# mean per frame of the first-to-last packet spread; received kbit/s per client (mean)
st['spread_ms'] = '%.3f' % (1000 * sum(spreads) / len(spreads) if spreads else 0)
rates = [r[0] * 8 / (r[2] - r[1]) / 1000 for r in rx.values() if r[2] > r[1]]
st['rx_kbps'] = '%.1f' % (sum(rates) / len(rates) if rates else 0)
with open(a.stats + '.clients', 'w') as f:
    for k in sorted(set(reg_info) | set(frames_by_ssrc)):
        slo, fps, res = reg_info.get(k, (0, 0, ''))
        f.write('ssrc=%d reg_slo=%d reg_fps=%d reg_res=%s frames=%d first=%s last=%s sizes=%s\n' % (
            k, slo, fps, res, frames_by_ssrc.get(k, 0),
            '%dx%d' % first_size.get(k, (0, 0)), '%dx%d' % last_size.get(k, (0, 0)),
            ','.join('%dx%d' % s for s in sorted(sizes_by_ssrc.get(k, ())))))
with open(a.stats, 'w') as f:
    f.write(' '.join('%s=%s' % kv for kv in st.items()) + '\n')
PYEOF

# KEY: value of KEY=… in FILE (last occurrence)
val() { grep -o "\b$1=[0-9.a-z,]*" "$2" | tail -1 | cut -d= -f2; }
fail() { echo "FAIL: $*"; cat "$tmp/gen" "$tmp/stats" "$tmp/stats.clients" 2>/dev/null; exit 1; }
# KEY of client I (SSRC 0x5000 + I) in the answerer's STATS.clients
cval() { grep "^ssrc=$((0x5000 + $1)) " "$tmp/stats.clients" | grep -o "\b$2=[^ ]*" | cut -d= -f2; }
# the per-client CSV's COLUMN (by header name) of client I
csv() { awk -F, -v c="$2" -v i="$1" 'NR == 1 { for (k = 1; k <= NF; k++) if ($k == c) n = k }
	NR > 1 && $1 == i { print $n }' "$tmp/pc.csv"; }
# the last-line format every run keeps
last_re='^gen: clients=[0-9]* pkts=[0-9]* frames=[0-9]* seconds=[0-9.]* mpps=[0-9.]* fps=[0-9.]* gbps=[0-9.]* rx_rtcp=[0-9]* results=[0-9]* drops=[0-9]* lost=[0-9]* miss=[0-9.]* p50_ms=[0-9.]* p99_ms=[0-9.]*$'


# starts the answerer with ARGS on $port and waits until it listens
answerer() {
	${inns:-} /usr/bin/python3 "$tmp/answerer.py" --port $port --stats "$tmp/stats" "$@" & rpid=$!
	for _ in $(seq 100); do [ -e "$tmp/stats.ready" ] && return 0; sleep 0.05; done
	fail "answerer did not start"
}
answerer_stop() { kill -TERM $rpid; wait $rpid; rpid=; }

case "$case" in
kernel_frames_decode)
	"$krecv" --port $port --decode --seconds 6 >"$tmp/krecv" & rpid=$!
	sleep 0.3
	"$gen" --udp 127.0.0.1:$port --clients 3 --fps 20 --seconds 2 --size 320x240 >"$tmp/gen" ||
		{ echo "FAIL: shoal-gen exited $?"; cat "$tmp/gen"; exit 1; }
	kill -INT $rpid; wait $rpid
	sent=$(grep -o 'frames=[0-9]*' "$tmp/gen" | tail -1 | cut -d= -f2)
	got=$(grep -o 'krecv: packets=[0-9]* frames=[0-9]*' "$tmp/krecv" | grep -o '[0-9]*$')
	dec=$(grep -o 'decoded=[0-9]*' "$tmp/krecv" | tail -1 | cut -d= -f2)
	streams=$(grep -c '^stream ssrc=' "$tmp/krecv")
	cat "$tmp/gen" "$tmp/krecv"
	[ "${sent:-0}" -ge 90 ] || { echo "FAIL: only $sent frames sent (3 clients x 20 fps x 2 s)"; exit 1; }
	[ "$got" = "$sent" ] || { echo "FAIL: krecv got $got frames, gen sent $sent"; exit 1; }
	[ "$dec" = "$sent" ] || { echo "FAIL: $dec of $sent frames decoded"; exit 1; }
	[ "$streams" = 3 ] || { echo "FAIL: $streams streams, want 3"; exit 1; }
	grep -q 'size=320x240' "$tmp/krecv" || { echo "FAIL: frame size"; exit 1; }
	;;
bad_flags)
	for args in "--udp 127.0.0.1:$port --clients 0" "--udp 127.0.0.1:$port --size 17x9" \
		"--udp nowhere --seconds 1" "--udp 127.0.0.1:$port --quality 100" \
		"--udp 127.0.0.1:$port --bogus" "--udp 127.0.0.1:$port --register 0" \
		"--udp 127.0.0.1:$port --register 70000" "--udp 127.0.0.1:$port --register 1.5" \
		"--udp 127.0.0.1:$port --slo-ms 0" "--udp 127.0.0.1:$port --drain-ms -1" \
		"--udp 127.0.0.1:$port --drain-ms x"; do
		# shellcheck disable=SC2086
		"$gen" $args >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] || { echo "FAIL: '$args' exited $rc, want 2"; cat "$tmp/out"; exit 1; }
		[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "FAIL: '$args' printed:"; cat "$tmp/out"; exit 1; }
		grep -q '^shoal-gen: ' "$tmp/out" || { echo "FAIL: '$args': no 'shoal-gen:' line"; exit 1; }
	done
	;;
kernel_results)
	answerer --slo 150 --fps-x100 2000 --size 320x240 --assign 320x240
	"$gen" --udp 127.0.0.1:$port --clients 3 --fps 20 --seconds 2 --size 320x240 \
		--register 150 --per-client "$tmp/pc.csv" >"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/pc.csv"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	grep -q '^gen: clients=3 pkts=[0-9]* frames=[0-9]* seconds=[0-9.]* mpps=[0-9.]* fps=[0-9.]* gbps=[0-9.]* rx_rtcp=[0-9]* results=[0-9]* drops=[0-9]* lost=[0-9]* miss=[0-9.]* p50_ms=[0-9.]* p99_ms=[0-9.]*$' "$last" ||
		fail "last line format"
	frames=$(val frames "$last") results=$(val results "$last") drops=$(val drops "$last")
	lost=$(val lost "$last") miss=$(val miss "$last")
	[ "$frames" -ge 60 ] || fail "only $frames frames sent"
	[ $((results + drops + lost)) = "$frames" ] || fail "results+drops+lost != frames"
	[ "$(val frames "$tmp/stats")" = "$frames" ] || fail "answerer saw other frames"
	[ "$(val incomplete "$tmp/stats")" = 0 ] || fail "incomplete frames"
	[ "$(val results "$tmp/stats")" = "$results" ] || fail "RESULTs sent != results"
	[ "$(val drops "$tmp/stats")" = "$drops" ] || fail "DROPs sent != drops"
	[ "$(val skipped "$tmp/stats")" = "$lost" ] || fail "frames not answered != lost"
	{ [ "$drops" -gt 0 ] && [ "$lost" -gt 0 ]; } || fail "no DROP or no loss to count"
	grep -q "drop_overload=$drops " "$tmp/gen" || fail "DROPs not counted by reason"
	grep -q "stray=$(val dups "$tmp/stats") " "$tmp/gen" || fail "duplicate RESULTs not stray"
	grep -q " bad=0$" "$tmp/gen" || fail "answers that did not parse"
	[ "$(val rtcp_bad "$tmp/stats")" = 0 ] || fail "RTCP that did not parse at the answerer"
	[ "$(val reports "$tmp/stats")" = 0 ] || fail "REPORTs without --trace"
	# misses: every DROP, loss and 300 ms late RESULT at least (SLO 150 ms), at most all
	delayed=$(val delayed "$tmp/stats")
	awk -v m="$miss" -v f="$frames" -v lo=$((drops + lost + delayed)) \
		'BEGIN { exit !(m * f + 0.5 >= lo && m <= 1) }' || fail "miss=$miss"
	late=$(val late_results "$tmp/gen")
	awk -v m="$miss" -v f="$frames" -v k=$((drops + lost + late)) \
		'BEGIN { d = m * f - k; exit !(d < 0.5 && d > -0.5) }' || fail "miss != (drops+lost+late)/frames"
	# REGISTERs: each client's, well formed, answered; the ASSIGN stops the 2 s repeats
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val register_ssrcs "$tmp/stats")" = 3 ] || fail "REGISTERs from 3 clients wanted"
	[ "$(val registers "$tmp/gen")" = "$(val registers_ok "$tmp/stats")" ] || fail "REGISTERs sent != received"
	[ "$(val registers "$tmp/gen")" = 3 ] || fail "REGISTERs repeated after the ASSIGN"
	[ "$(val assigns "$tmp/gen")" = 3 ] || fail "ASSIGNs"
	# per-client CSV: one row per client, adding up to the totals
	[ "$(head -1 "$tmp/pc.csv")" = client,ssrc,sent,results,drops,lost,missed,p50_ms,p99_ms,fps,slo_ms,width,height ] ||
		fail "CSV header"
	awk -F, 'NR > 1 && $10 "," $11 "," $12 "," $13 != "20,150,320,240" { bad = 1 } END { exit bad }' "$tmp/pc.csv" ||
		fail "CSV fps,slo_ms,width,height"
	[ "$(grep -c '^gen: group ' "$tmp/gen")" = 0 ] || fail "group lines with one group"
	[ "$(wc -l <"$tmp/pc.csv")" = 4 ] || fail "CSV rows"
	awk -F, -v f="$frames" -v r="$results" -v d="$drops" -v l="$lost" 'NR > 1 {
		s += $3; rr += $4; dd += $5; ll += $6
		if ($3 != $4 + $5 + $6 || $7 < $5 + $6 || $2 != 20480 + $1) bad = 1 }
		END { exit !(s == f && rr == r && dd == d && ll == l && !bad) }' "$tmp/pc.csv" ||
		fail "CSV does not add up"
	;;
kernel_follow_assign)
	# 640x480 frames until the ASSIGN (sent after a client's 5th frame) asks for 320x240;
	# REGISTER lists the 18 resolutions it can send, --size first
	answerer --size 640x480 --n-res 18 --assign 320x240 --assign-after 5 --drop-every 1000 \
		--skip-every 1000
	"$gen" --udp 127.0.0.1:$port --clients 3 --fps 20 --seconds 1 --size 640x480 \
		--register 100 --follow-assign --drain-ms 300 >"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val assigns "$tmp/gen")" = 3 ] || fail "ASSIGNs"
	[ "$(val first_sizes "$tmp/stats")" = 640x480,640x480,640x480 ] || fail "first frames' size"
	[ "$(val frames_at_size "$tmp/stats")" -ge 15 ] || fail "switched before the ASSIGN"
	[ "$(val last_sizes "$tmp/stats")" = 320x240,320x240,320x240 ] || fail "resolution not followed"
	[ "$(val lost "$tmp/gen")" = 0 ] || fail "frames lost"
	;;
dpdk_tap_results | dpdk_tap_trace_stress)
	# shoal-gen on net_tap0 (clients 10.99.0.2..4), the kernel side of the tap is the server
	# 10.99.1.1 (answers ARP); static neighbours send the answers back to the clients.
	# dpdk_tap_trace_stress: the same with a 2 Mbit/s trace and every stress mode
	extra=
	if [ "$case" = dpdk_tap_trace_stress ]; then
		printf '2\n' >"$tmp/trace"
		extra="--trace $tmp/trace --stress garbage,malformed,ssrc-flood,dup,reorder"
	fi
	ns=shoal-gen-$$ tap=sgtap$$ inns="ip netns exec shoal-gen-$$"
	{ [ "$(id -u)" = 0 ] && ip netns add $ns 2>/dev/null; } ||
		{ ns=; echo "skip: needs root and namespaces"; exit 77; }
	$inns ip link set lo up
	$inns "$gen" --no-huge -m 512 --no-shconf --no-telemetry --file-prefix sg$$ \
		--vdev "net_tap0,iface=$tap" -- --dst-ip 10.99.1.1 --media-port $port \
		--clients 3 --fps 10 --seconds 3 --size 320x240 --register 150 --per-client "$tmp/pc.csv" \
		$extra >"$tmp/gen" 2>"$tmp/eal" & gpid=$!
	for _ in $(seq 100); do $inns ip link show $tap >/dev/null 2>&1 && break; sleep 0.1; done
	mac=$($inns cat /sys/class/net/$tap/address)
	$inns ip addr add 10.99.1.1/16 dev $tap || fail "tap address"
	for i in 2 3 4; do $inns ip neigh replace 10.99.0.$i lladdr "$mac" dev $tap; done
	# the answerer listens before the link comes up (shoal-gen starts sending then)
	answerer --addr 10.99.1.1 --slo 150 --fps-x100 1000 --size 320x240 --assign 320x240
	$inns ip link set $tap up || fail "tap up"
	wait $gpid || { cat "$tmp/eal"; fail "shoal-gen exited"; }
	answerer_stop
	cat "$tmp/gen" "$tmp/stats"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	frames=$(val frames "$last") results=$(val results "$last") drops=$(val drops "$last")
	lost=$(val lost "$last")
	# (a shaped client skips the frames it could not send in time, so a stall of the tap
	# under load costs frames there: half is enough)
	min=30
	[ "$case" = dpdk_tap_trace_stress ] && min=15
	[ "${frames:-0}" -ge $min ] || fail "only $frames frames sent"
	[ $((results + drops + lost)) = "$frames" ] || fail "results+drops+lost != frames"
	# the tap may lose the first packets after it comes up: those frames are lost too, and
	# a lost REGISTER is sent again 2 s later
	seen=$(val frames "$tmp/stats")
	[ "$seen" -le "$frames" ] || fail "answerer saw more frames than sent"
	[ "$(val results "$tmp/stats")" = "$results" ] || fail "RESULTs sent != results"
	[ "$(val drops "$tmp/stats")" = "$drops" ] || fail "DROPs sent != drops"
	[ $(($(val skipped "$tmp/stats") + frames - seen)) = "$lost" ] ||
		fail "frames not answered or not received != lost"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val register_ssrcs "$tmp/stats")" = 3 ] || fail "REGISTERs from 3 clients wanted"
	[ "$(val assigns "$tmp/gen")" = 3 ] || fail "ASSIGNs"
	[ "$(wc -l <"$tmp/pc.csv")" = 4 ] || fail "CSV rows"
	[ "$case" = dpdk_tap_trace_stress ] || exit 0
	# what the tap delivers of each stress kind: never more than was sent, and some of it
	# when a few were sent (the tap may lose packets while it comes up)
	g=$tmp/gen st=$tmp/stats
	le() { [ "$1" -le "$2" ] && { [ "$2" -lt 3 ] || [ "$1" -gt 0 ]; } ||
		fail "$3: received $1 of $2 sent"; }
	le "$(val bad_rtp $st)" $(($(val garbage_media $g) + $(val malformed_rtp $g))) "bad RTP"
	le "$(val rtcp_bad $st)" $(($(val garbage_rtcp $g) + $(val malformed_rtcp $g))) "bad RTCP"
	le "$(val unknown_ssrc $st)" "$(val ssrc_flood $g)" "unknown SSRCs"
	le "$(val dup_rx $st)" "$(val dup $g)" "duplicates"
	le "$(val reorder_rx $st)" "$(val reorder $g)" "swaps"
	[ "$(val report_bw $st)" = 2000 ] || fail "REPORT bw_kbps is not the trace's rate"
	[ "$(val reports_bad $st)" = 0 ] || fail "bad REPORTs"
	[ "$(head -1 "$tmp/pc.csv" | cut -d, -f10)" = bw_mbps ] || fail "CSV bandwidth column"
	;;
kernel_trace_shaped)
	# one client at 20 fps of 640x480 frames (~20 kB, ~3 Mbit/s) on a 1.5 Mbit/s link: frames
	# leave (and arrive) spread over ~100 ms, the answerer receives ~1.5 Mbit/s, REPORTs say
	# 1500 kbit/s
	printf '# constant 1.5 Mbit/s\n1.5\n\n1.50  # again\n' >"$tmp/trace"
	answerer --slo 150 --size 640x480 --assign 640x480
	"$gen" --udp 127.0.0.1:$port --clients 1 --fps 20 --seconds 3 --size 640x480 \
		--register 150 --trace "$tmp/trace" --seed 7 --per-client "$tmp/pc.csv" \
		>"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/pc.csv"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	grep -q '^gen: clients=1 pkts=[0-9]* frames=[0-9]* seconds=[0-9.]* mpps=[0-9.]* fps=[0-9.]* gbps=[0-9.]* rx_rtcp=[0-9]* results=[0-9]* drops=[0-9]* lost=[0-9]* miss=[0-9.]* p50_ms=[0-9.]* p99_ms=[0-9.]*$' "$last" ||
		fail "last line format"
	frames=$(val frames "$last") results=$(val results "$last") drops=$(val drops "$last")
	lost=$(val lost "$last") fps=$(val fps "$last")
	[ "$frames" -ge 5 ] || fail "only $frames frames sent"
	awk -v f="$fps" 'BEGIN { exit !(f < 16) }' || fail "the link did not slow the client (fps=$fps)"
	[ $((results + drops + lost)) = "$frames" ] || fail "results+drops+lost != frames"
	[ "$(val frames "$tmp/stats")" = "$frames" ] || fail "answerer saw other frames"
	# the frame on its way when the sending ended is not counted (not complete either)
	[ "$(val incomplete "$tmp/stats")" -le 1 ] || fail "incomplete frames"
	[ "$(val results "$tmp/stats")" = "$results" ] || fail "RESULTs sent != results"
	# received rate within 40 % of the trace's; frames spread over tens of ms (unshaped on
	# loopback: well under a millisecond)
	awk -v r="$(val rx_kbps "$tmp/stats")" 'BEGIN { exit !(r > 900 && r < 2100) }' ||
		fail "received rate is not the trace's 1500 kbit/s"
	awk -v s="$(val spread_ms "$tmp/stats")" 'BEGIN { exit !(s > 30) }' ||
		fail "frames not spread in time by the link"
	# REPORTs: about one a second, the trace's rate, an RTT once RESULTs came
	[ "$(val reports_bad "$tmp/stats")" = 0 ] || fail "bad REPORTs"
	[ "$(val rtcp_bad "$tmp/stats")" = 0 ] || fail "RTCP that did not parse"
	[ "$(val reports "$tmp/stats")" -ge 2 ] || fail "REPORTs missing"
	[ "$(val reports "$tmp/stats")" = "$(val reports "$tmp/gen")" ] || fail "REPORTs sent != received"
	[ "$(val report_bw "$tmp/stats")" = 1500 ] || fail "REPORT bw_kbps is not the trace's rate"
	[ "$(val report_rtt "$tmp/stats")" -ge 1 ] || fail "no REPORT carried an RTT"
	[ "$(head -1 "$tmp/pc.csv")" = client,ssrc,sent,results,drops,lost,missed,p50_ms,p99_ms,bw_mbps,fps,slo_ms,width,height ] ||
		fail "CSV header"
	[ "$(tail -1 "$tmp/pc.csv" | cut -d, -f10)" = 1.500 ] || fail "CSV mean bandwidth"
	;;
bad_trace)
	printf '# nothing but comments\n\n' >"$tmp/empty"
	printf '5\nfast\n' >"$tmp/word"
	printf '5\n-2\n' >"$tmp/neg"
	printf '5 6\n' >"$tmp/two"
	printf '0\n0\n' >"$tmp/zero"
	printf '5\n' >"$tmp/ok"
	for args in "--trace $tmp/missing" "--trace $tmp/empty" "--trace $tmp/word" \
		"--trace $tmp/neg" "--trace $tmp/two" "--trace $tmp/zero" \
		"--trace $tmp/ok --trace-step 0" "--trace $tmp/ok --seed -1" \
		"--trace $tmp/ok --seed x" "--stress bogus" "--stress dup,,reorder" "--stress dup,"; do
		# shellcheck disable=SC2086
		"$gen" --udp 127.0.0.1:$port $args >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] || { echo "FAIL: '$args' exited $rc, want 2"; cat "$tmp/out"; exit 1; }
		[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "FAIL: '$args' printed:"; cat "$tmp/out"; exit 1; }
		grep -q '^shoal-gen: ' "$tmp/out" || { echo "FAIL: '$args': no 'shoal-gen:' line"; exit 1; }
	done
	;;
kernel_stress)
	# every stress mode at once, 3 clients: the answerer (which refuses anything but the
	# generator's own RTP and well-formed shoal RTCP) counts what the stress line claims
	answerer --slo 150 --size 640x480 --assign 640x480
	"$gen" --udp 127.0.0.1:$port --clients 3 --fps 15 --seconds 2 --size 640x480 \
		--register 150 --seed 3 --stress garbage,malformed,ssrc-flood,dup,reorder \
		>"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	grep -q '^gen: clients=3 pkts=[0-9]* frames=[0-9]* seconds=[0-9.]* mpps=[0-9.]* fps=[0-9.]* gbps=[0-9.]* rx_rtcp=[0-9]* results=[0-9]* drops=[0-9]* lost=[0-9]* miss=[0-9.]* p50_ms=[0-9.]* p99_ms=[0-9.]*$' "$last" ||
		fail "last line format"
	grep -q '^gen: stress ' "$(tail -2 "$tmp/gen" | head -1 >"$tmp/sl"; echo "$tmp/sl")" ||
		fail "no stress line before the last line"
	for k in garbage_media garbage_rtcp malformed_rtp malformed_rtcp ssrc_flood dup reorder; do
		[ "$(val $k "$tmp/gen")" -gt 0 ] || fail "no $k sent"
	done
	g=$tmp/gen
	[ "$(val bad_rtp "$tmp/stats")" = $(($(val garbage_media $g) + $(val malformed_rtp $g))) ] ||
		fail "bad RTP received != garbage + malformed RTP sent"
	[ "$(val rtcp_bad "$tmp/stats")" = $(($(val garbage_rtcp $g) + $(val malformed_rtcp $g))) ] ||
		fail "bad RTCP received != garbage + malformed RTCP sent"
	[ "$(val unknown_ssrc "$tmp/stats")" = "$(val ssrc_flood $g)" ] || fail "unknown SSRCs != flood"
	[ "$(val dup_rx "$tmp/stats")" = "$(val dup $g)" ] || fail "duplicates received != sent"
	[ "$(val reorder_rx "$tmp/stats")" = "$(val reorder $g)" ] || fail "swaps received != sent"
	# the real frames: all complete at the answerer, every one answered or lost once
	frames=$(val frames "$last") results=$(val results "$last") drops=$(val drops "$last")
	lost=$(val lost "$last")
	[ "$frames" -ge 45 ] || fail "only $frames frames sent"
	[ "$(val frames "$tmp/stats")" = "$frames" ] || fail "answerer saw other frames"
	[ "$(val incomplete "$tmp/stats")" = 0 ] || fail "incomplete frames"
	[ $((results + drops + lost)) = "$frames" ] || fail "results+drops+lost != frames"
	[ "$(val results "$tmp/stats")" = "$results" ] || fail "RESULTs sent != results"
	[ "$(val drops "$tmp/stats")" = "$drops" ] || fail "DROPs sent != drops"
	[ "$(val skipped "$tmp/stats")" = "$lost" ] || fail "frames not answered != lost"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val registers "$tmp/gen")" = "$(val registers_ok "$tmp/stats")" ] || fail "REGISTERs"
	;;
kernel_mix_register)
	# 6 clients, lists of 2 and 3 values cycling independently: client i has fps
	# (10,20)[i%2], SLO (75,100,150)[i%3], size (320x240,640x480,160x128)[i%3]; its REGISTER
	# says so, its frames arrive at its size, the CSV and the 6 group lines say so
	answerer --size any --assign 320x240 --drop-every 1000 --skip-every 1000
	"$gen" --udp 127.0.0.1:$port --clients 6 --fps 10,20 --register 75,100,150 \
		--size 320x240,640x480,160x128 --seconds 2 --drain-ms 300 --per-client "$tmp/pc.csv" \
		>"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/stats.clients" "$tmp/pc.csv"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	grep -q "$last_re" "$last" || fail "last line format"
	[ "$(val clients "$last")" = 6 ] || fail "clients on the last line"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val register_ssrcs "$tmp/stats")" = 6 ] || fail "REGISTERs from 6 clients wanted"
	[ "$(val incomplete "$tmp/stats")" = 0 ] || fail "incomplete frames"
	fpss=(10 20) slos=(75 100 150) sizes=(320x240 640x480 160x128)
	for i in 0 1 2 3 4 5; do
		f=${fpss[i % 2]} s=${slos[i % 3]} z=${sizes[i % 3]}
		[ "$(cval $i reg_slo)" = "$s" ] || fail "client $i REGISTER SLO $(cval $i reg_slo), want $s"
		[ "$(cval $i reg_fps)" = $((f * 100)) ] || fail "client $i REGISTER fps_x100 $(cval $i reg_fps)"
		[ "$(cval $i reg_res)" = "$z" ] || fail "client $i REGISTER resolutions $(cval $i reg_res), want $z"
		[ "$(cval $i sizes)" = "$z" ] || fail "client $i frames at $(cval $i sizes), want $z"
		[ "$(cval $i frames)" -ge "$f" ] || fail "client $i sent $(cval $i frames) frames"
		[ "$(csv $i fps),$(csv $i slo_ms),$(csv $i width)x$(csv $i height)" = "$f,$s,$z" ] ||
			fail "client $i CSV fps,slo_ms,size"
		grep -q "^gen: group fps=$f slo_ms=$s size=$z clients=1 sent=$(csv $i sent) results=$(csv $i results) drops=$(csv $i drops) lost=$(csv $i lost) miss=[0-9.]* p50_ms=[0-9.]* p99_ms=[0-9.]*$" "$tmp/gen" ||
			fail "no group line for client $i ($f fps, $s ms, $z)"
	done
	[ "$(grep -c '^gen: group ' "$tmp/gen")" = 6 ] || fail "6 group lines wanted"
	# the group lines come after the rtcp line and before the last one
	[ "$(grep -n '^gen: ' "$tmp/gen" | sed -n 2,7p | grep -c ':gen: group ')" = 6 ] ||
		fail "group lines out of place"
	frames=$(val frames "$last")
	[ "$(grep '^gen: group ' "$tmp/gen" | grep -o ' sent=[0-9]*' | cut -d= -f2 |
		awk '{ s += $1 } END { print s }')" = "$frames" ] || fail "groups' frames != frames"
	[ "$(val frames "$tmp/stats")" = "$frames" ] || fail "answerer saw other frames"
	;;
kernel_mix_fps_slo)
	# 8 clients at 10 and 30 fps (SLO 100 and 400 ms) for 4 s: the answerer counts three
	# times the frames from the 30 fps clients (±10 %); every 4th RESULT comes 200 ms late:
	# a miss for the 100 ms clients only
	answerer --size 320x240 --assign 320x240 --drop-every 1000 --skip-every 1000 \
		--delay-every 4 --delay-ms 200
	"$gen" --udp 127.0.0.1:$port --clients 8 --fps 10,30 --register 100,400 --size 320x240 \
		--seconds 4 --drain-ms 600 --per-client "$tmp/pc.csv" >"$tmp/gen" ||
		fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/stats.clients" "$tmp/pc.csv"
	tail -1 "$tmp/gen" >"$tmp/last"; last=$tmp/last
	grep -q "$last_re" "$last" || fail "last line format"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	slow=0 fast=0
	for i in 0 1 2 3 4 5 6 7; do
		n=$(cval $i frames)
		[ "$n" = "$(csv $i sent)" ] || fail "client $i: answerer saw $n frames, CSV says $(csv $i sent)"
		late=$(($(csv $i missed) - $(csv $i drops) - $(csv $i lost)))
		if [ $((i % 2)) = 0 ]; then
			slow=$((slow + n))
			[ "$(cval $i reg_slo)/$(cval $i reg_fps)" = 100/1000 ] || fail "client $i REGISTER"
			# RESULTs 200 ms late: past its 100 ms SLO
			[ "$late" -ge $((n / 4 - 1)) ] || fail "client $i: $late late of $n, SLO 100"
		else
			fast=$((fast + n))
			[ "$(cval $i reg_slo)/$(cval $i reg_fps)" = 400/3000 ] || fail "client $i REGISTER"
			[ "$late" = 0 ] || fail "client $i: $late late RESULTs with a 400 ms SLO"
		fi
	done
	[ "$slow" -ge 100 ] || fail "only $slow frames from the 10 fps clients"
	awk -v s="$slow" -v f="$fast" 'BEGIN { exit !(f >= 2.7 * s && f <= 3.3 * s) }' ||
		fail "30 fps clients sent $fast frames, 10 fps ones $slow: not 3 times (±10 %)"
	grep -q "^gen: group fps=10 slo_ms=100 size=320x240 clients=4 sent=$slow " "$tmp/gen" ||
		fail "group line of the 10 fps clients"
	grep -q "^gen: group fps=30 slo_ms=400 size=320x240 clients=4 sent=$fast " "$tmp/gen" ||
		fail "group line of the 30 fps clients"
	[ "$(grep -c '^gen: group ' "$tmp/gen")" = 2 ] || fail "2 group lines wanted"
	# the 400 ms group misses nothing, the 100 ms one about a quarter
	g400=$(grep '^gen: group fps=30' "$tmp/gen") g100=$(grep '^gen: group fps=10' "$tmp/gen")
	[ "$(echo "$g400" | val miss /dev/stdin)" = 0.0000 ] || fail "misses in the 400 ms group"
	awk -v m="$(echo "$g100" | val miss /dev/stdin)" 'BEGIN { exit !(m >= 0.2 && m <= 0.3) }' ||
		fail "miss of the 100 ms group is not ~1/4"
	[ $((slow + fast)) = "$(val frames "$last")" ] || fail "frames on the last line"
	;;
kernel_mix_follow_assign)
	# two sizes of different aspects (4:3 and 5:4): each REGISTER lists its size then a ladder
	# in its own aspect; an ASSIGN of 320x240 (after 5 frames) moves each client to the
	# nearest rung of its own ladder: 320x240 and 320x256
	answerer --size any --n-res 18 --assign 320x240 --assign-after 5 --drop-every 1000 \
		--skip-every 1000
	"$gen" --udp 127.0.0.1:$port --clients 4 --fps 20 --seconds 1 --size 640x480,400x320 \
		--register 100 --follow-assign --drain-ms 300 >"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/stats.clients"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val assigns "$tmp/gen")" = 4 ] || fail "ASSIGNs"
	l43=640x480 l54=400x320
	for w in 128 160 192 224 256 288 320 352 384 416 448 480 512 544 576 608 640; do
		l43="$l43,${w}x$(((w * 3 / 4 + 8) / 16 * 16))"
		l54="$l54,${w}x$(((w * 4 / 5 + 8) / 16 * 16))"
	done
	for i in 0 1 2 3; do
		if [ $((i % 2)) = 0 ]; then z=640x480 l=$l43 to=320x240; else z=400x320 l=$l54 to=320x256; fi
		[ "$(cval $i reg_res)" = "$l" ] || fail "client $i REGISTER resolutions: $(cval $i reg_res)"
		[ "$(cval $i first)" = "$z" ] || fail "client $i first frames at $(cval $i first)"
		[ "$(cval $i last)" = "$to" ] || fail "client $i followed to $(cval $i last), want $to"
	done
	[ "$(grep -c '^gen: group ' "$tmp/gen")" = 2 ] || fail "2 group lines wanted"
	grep -q '^gen: group fps=20 slo_ms=100 size=400x320 clients=2 ' "$tmp/gen" ||
		fail "group line of the 400x320 clients"
	;;
kernel_mix_file)
	# weights 3:1 over 8 clients: classes 0,0,1,0 twice (smooth weighted round-robin)
	printf '# two classes\nfps,slo_ms,width,height,weight\n10, 120, 320, 240, 3  # most\n\n20,300,640,480,1\n' \
		>"$tmp/mix.csv"
	answerer --size any --assign 320x240 --drop-every 1000 --skip-every 1000
	"$gen" --udp 127.0.0.1:$port --clients 8 --mix "$tmp/mix.csv" --seconds 2 --drain-ms 300 \
		--per-client "$tmp/pc.csv" >"$tmp/gen" || fail "shoal-gen exited $?"
	answerer_stop
	cat "$tmp/gen" "$tmp/stats" "$tmp/stats.clients" "$tmp/pc.csv"
	grep -q "$last_re" "$(tail -1 "$tmp/gen" >"$tmp/last"; echo "$tmp/last")" || fail "last line format"
	[ "$(val registers_bad "$tmp/stats")" = 0 ] || fail "bad REGISTERs"
	[ "$(val register_ssrcs "$tmp/stats")" = 8 ] || fail "REGISTERs from 8 clients wanted"
	for i in 0 1 2 3 4 5 6 7; do
		if [ $((i % 4)) = 2 ]; then want="300 2000 640x480" c=20,300,640,480
		else want="120 1000 320x240" c=10,120,320,240; fi
		[ "$(cval $i reg_slo) $(cval $i reg_fps) $(cval $i reg_res)" = "$want" ] ||
			fail "client $i REGISTER: $(cval $i reg_slo) $(cval $i reg_fps) $(cval $i reg_res)"
		[ "$(cval $i sizes)" = "${want##* }" ] || fail "client $i frames at $(cval $i sizes)"
		[ "$(csv $i fps),$(csv $i slo_ms),$(csv $i width),$(csv $i height)" = "$c" ] ||
			fail "client $i CSV class"
	done
	grep -q '^gen: group fps=10 slo_ms=120 size=320x240 clients=6 ' "$tmp/gen" || fail "group 0"
	grep -q '^gen: group fps=20 slo_ms=300 size=640x480 clients=2 ' "$tmp/gen" || fail "group 1"
	[ "$(grep -c '^gen: group ' "$tmp/gen")" = 2 ] || fail "2 group lines wanted"
	;;
bad_mix)
	printf '15,75,320,240\n' >"$tmp/ok.csv"
	printf '# none\n\n' >"$tmp/m_empty"
	printf '15,75,320x240\n' >"$tmp/m_cols"
	printf '0,75,320,240\n' >"$tmp/m_fps0"
	printf 'x,75,320,240\n' >"$tmp/m_fpsx"
	printf '15,70000,320,240\n' >"$tmp/m_slo"
	printf '15,75.5,320,240\n' >"$tmp/m_slof"
	printf '15,75,17,240\n' >"$tmp/m_w"
	printf '15,75,320,240,0\n' >"$tmp/m_weight"
	printf '15,75,320,240,1,2\n' >"$tmp/m_six"
	printf 'fps,slo,width,height\n15,75,320,240\n' >"$tmp/m_header"
	printf '15,75,320,,\n' >"$tmp/m_emptycol"
	for k in $(seq 33); do echo "15,75,320,240"; done >"$tmp/m_many"
	for m in missing m_empty m_cols m_fps0 m_fpsx m_slo m_slof m_w m_weight m_six m_header \
		m_emptycol m_many; do
		"$gen" --udp 127.0.0.1:$port --seconds 1 --mix "$tmp/$m" >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] || { echo "FAIL: --mix $m exited $rc, want 2"; cat "$tmp/out"; exit 1; }
		[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "FAIL: --mix $m printed:"; cat "$tmp/out"; exit 1; }
		grep -q '^shoal-gen: --mix ' "$tmp/out" || { echo "FAIL: --mix $m: $(cat "$tmp/out")"; exit 1; }
	done
	for args in "--fps 10" "--register 100" "--slo-ms 100" "--size 320x240"; do
		# shellcheck disable=SC2086
		"$gen" --udp 127.0.0.1:$port --seconds 1 --mix "$tmp/ok.csv" $args >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] && [ "$(wc -l <"$tmp/out")" = 1 ] ||
			{ echo "FAIL: --mix with '$args' exited $rc"; cat "$tmp/out"; exit 1; }
	done
	many=$(printf '10,%.0s' $(seq 32))10
	for args in "--fps 15,,25" "--fps 15," "--fps ,15" "--fps 0,15" "--fps 15,x" "--fps 15,-1" \
		"--fps 15,2000" "--fps $many" "--register 75,0" "--register 75,70000" \
		"--register 75,1.5" "--register 75,," "--slo-ms 10,0" "--slo-ms 10,70000" \
		"--slo-ms 10,y" "--size 320x240,17x9" "--size 320x240,320x240x" "--size 320x240," \
		"--size 320x240,0x0" "--size 320x240,320"; do
		# shellcheck disable=SC2086
		"$gen" --udp 127.0.0.1:$port --seconds 1 $args >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] || { echo "FAIL: '$args' exited $rc, want 2"; cat "$tmp/out"; exit 1; }
		[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "FAIL: '$args' printed:"; cat "$tmp/out"; exit 1; }
		grep -q '^shoal-gen: bad value' "$tmp/out" || { echo "FAIL: '$args': $(cat "$tmp/out")"; exit 1; }
	done
	;;
*) echo "unknown case $case"; exit 2 ;;
esac
exit 0
