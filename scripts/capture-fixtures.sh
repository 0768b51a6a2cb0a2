#!/usr/bin/env bash
# capture-fixtures.sh — records RTP streams from stock senders (ffmpeg, GStreamer) on the
# loopback interface into the pcap fixtures that tests/dataplane/test_senders.c replays,
# together with the exact source frames each sender encoded.
#
#   scripts/capture-fixtures.sh [OUTDIR]     (default: tests/dataplane/fixtures)
#
# Needs root (tcpdump on lo), tcpdump, ffmpeg, gst-launch-1.0 (plugins-good) and
# /usr/bin/python3. Idempotent: every run rewrites the same files; only the pcaps' SSRCs,
# sequence numbers and capture times change between runs, the frames do not (checked).
# Traffic goes to 127.0.0.1 only; each capture has a small UDP sink bound to its port so
# the senders never see ICMP port-unreachable.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/tests/dataplane/fixtures}
port_base=${SHOAL_FIXTURE_PORT:-47100}

die() { echo "capture-fixtures: $*" >&2; exit 1; }
say() { echo "capture-fixtures: $*"; }

for tool in tcpdump ffmpeg gst-launch-1.0 /usr/bin/python3 sha256sum; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
[ "$(id -u)" = 0 ] || die "must run as root (tcpdump on lo)"

mkdir -p "$out"
work=$(mktemp -d /tmp/shoal-capture.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# UDP sink: binds 127.0.0.1:PORT, counts datagrams, exits after 3 s of silence, prints count.
sink_py='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()  # ready flag
s.settimeout(15.0)
n = 0
try:
    while True:
        s.recv(65536)
        n += 1
        s.settimeout(3.0)
except socket.timeout:
    pass
print(n)
'

# capture NAME PORT -- SENDER ARGS...: runs the sender while tcpdump records UDP datagrams
# to 127.0.0.1:PORT into $out/NAME.pcap; checks tcpdump saw what the sink received.
capture() {
	local name=$1 port=$2
	shift 3
	local pcap=$work/$name.pcap
	/usr/bin/python3 -c "$sink_py" "$port" "$work/$name.ready" >"$work/$name.sink" &
	local sink=$!
	pids+=("$sink")
	tcpdump -i lo -n -U -Z root -B 16384 -s 0 -w "$pcap" "udp and dst host 127.0.0.1 and dst port $port" \
		2>"$work/$name.tcpdump" &
	local tcpd=$!
	pids+=("$tcpd")
	for _ in $(seq 100); do
		grep -q 'listening on' "$work/$name.tcpdump" 2>/dev/null && [ -e "$work/$name.ready" ] && break
		sleep 0.1
	done
	grep -q 'listening on' "$work/$name.tcpdump" || die "$name: tcpdump did not start: $(cat "$work/$name.tcpdump")"
	say "$name: $*"
	"$@" >"$work/$name.sender.out" 2>"$work/$name.sender.err" ||
		die "$name: sender failed: $(tail -5 "$work/$name.sender.err")"
	wait "$sink"
	sleep 0.5
	kill -INT "$tcpd"
	wait "$tcpd" || true
	local got captured
	got=$(cat "$work/$name.sink")
	captured=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$work/$name.tcpdump")
	[ "$got" -gt 0 ] || die "$name: sink received nothing"
	[ "$captured" = "$got" ] || die "$name: tcpdump captured $captured datagrams, sink got $got"
	cp "$pcap" "$out/$name.pcap"
	say "$name: $got RTP packets -> $(basename "$out")/$name.pcap ($(stat -c %s "$pcap") bytes)"
}

# reference DEST CMD...: runs CMD twice, with @REF@ in its arguments replaced by a scratch
# file, checks both runs wrote identical bytes (the reference must be deterministic), says
# whether DEST changed from the previous capture and installs it as $out/DEST.
reference() {
	local dest=$1
	shift
	local a=$work/ref.a b=$work/ref.b
	"${@//@REF@/$a}" >/dev/null 2>"$work/ref.err" || die "reference for $dest failed: $(tail -3 "$work/ref.err")"
	"${@//@REF@/$b}" >/dev/null 2>"$work/ref.err" || die "reference for $dest failed: $(tail -3 "$work/ref.err")"
	cmp -s "$a" "$b" || die "reference for $dest differs between runs"
	local was="new"
	if [ -e "$out/$dest" ]; then
		cmp -s "$a" "$out/$dest" && was="unchanged" || was="CHANGED from the previous file"
	fi
	cp "$a" "$out/$dest"
	say "reference $dest: $(stat -c %s "$a") bytes, identical across two runs, $was"
}

manifest=$work/manifest.txt
cat >"$manifest" <<'EOF'
# Fixtures replayed by tests/dataplane/test_senders.c; written by scripts/capture-fixtures.sh.
# name          pcap                 reference            payload  format  width  height  frames  pt
EOF

# ---- ffmpeg: RFC 2435 (JPEG, PT 26) -------------------------------------------------------
ff_w=320 ff_h=240 ff_frames=5
ff_src="testsrc=size=${ff_w}x${ff_h}:rate=10"
ff_port=$port_base
capture ffmpeg_mjpeg "$ff_port" -- ffmpeg -hide_banner -nostdin -y -f lavfi -i "$ff_src" \
	-frames:v $ff_frames -c:v mjpeg -huffman default -pix_fmt yuvj420p -q:v 3 \
	-f rtp "rtp://127.0.0.1:$ff_port?pkt_size=1400"
ff_reported=$(grep -o 'frame= *[0-9]*' "$work/ffmpeg_mjpeg.sender.err" | tail -1 | tr -dc 0-9)
[ -n "$ff_reported" ] || die "ffmpeg did not report a frame count"
say "ffmpeg reports $ff_reported frames sent"
# The encoder input: the same source and pixel format (full-range 4:2:0) as raw planar YUV.
reference ffmpeg_mjpeg.yuv ffmpeg -hide_banner -nostdin -y -f lavfi -i "$ff_src" \
	-frames:v $ff_frames -f rawvideo -pix_fmt yuvj420p @REF@
printf '%-15s %-20s %-20s %-8s %-7s %-6s %-7s %-7s %s\n' ffmpeg_mjpeg ffmpeg_mjpeg.pcap \
	ffmpeg_mjpeg.yuv jpeg 420 $ff_w $ff_h "$ff_reported" 26 >>"$manifest"

# ---- GStreamer: RFC 2435 and RFC 4175 -----------------------------------------------------
gst_w=160 gst_h=120 gst_frames=4
gst_src="videotestsrc num-buffers=$gst_frames pattern=smpte horizontal-speed=4 is-live=false"
port=$((port_base + 10))
# gst_jpeg NAME GSTFORMAT MANIFESTFORMAT
gst_jpeg() {
	local name=$1 fmt=$2 mfmt=$3
	port=$((port + 2))
	local caps="video/x-raw,format=$fmt,width=$gst_w,height=$gst_h,framerate=10/1"
	capture "$name" "$port" -- gst-launch-1.0 -q $gst_src ! "$caps" ! jpegenc quality=90 ! \
		rtpjpegpay mtu=1000 ! udpsink host=127.0.0.1 port=$port sync=false
	reference "$name.yuv" gst-launch-1.0 -q $gst_src ! "$caps" ! filesink location=@REF@
	printf '%-15s %-20s %-20s %-8s %-7s %-6s %-7s %-7s %s\n' "$name" "$name.pcap" "$name.yuv" \
		jpeg "$mfmt" $gst_w $gst_h $gst_frames 26 >>"$manifest"
}
# gst_raw NAME GSTFORMAT MANIFESTFORMAT MTU
gst_raw() {
	local name=$1 fmt=$2 mfmt=$3 mtu=$4
	port=$((port + 2))
	local caps="video/x-raw,format=$fmt,width=$gst_w,height=$gst_h,framerate=10/1"
	capture "$name" "$port" -- gst-launch-1.0 -q $gst_src ! "$caps" ! \
		rtpvrawpay mtu="$mtu" pt=96 ! udpsink host=127.0.0.1 port=$port sync=false
	reference "$name.raw" gst-launch-1.0 -q $gst_src ! "$caps" ! filesink location=@REF@
	printf '%-15s %-20s %-20s %-8s %-7s %-6s %-7s %-7s %s\n' "$name" "$name.pcap" "$name.raw" \
		raw "$mfmt" $gst_w $gst_h $gst_frames 96 >>"$manifest"
}
gst_jpeg gst_jpeg420 I420 420
gst_jpeg gst_jpeg422 Y42B 422
gst_raw gst_raw420 I420 420 1400
gst_raw gst_raw422 UYVY 422 900
gst_raw gst_rawrgb RGB rgb 1200

cp "$manifest" "$out/manifest.txt"
say "wrote $out/manifest.txt; total fixture size: $(du -shc "$out"/*.pcap "$out"/*.yuv "$out"/*.raw | tail -1 | cut -f1)"
