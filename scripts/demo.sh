#!/usr/bin/env bash
# shoal demo. shoal-server (data plane + inference + control) is not built yet; this demo runs,
# on their real inputs, the parts that exist today and says plainly what each one shows:
#   1. a stock ffmpeg RTP/JPEG sender (RFC 2435) on loopback, its frames reassembled by
#      shoal's codec on a kernel socket (shoal-krecv) and decoded by libjpeg-turbo;
#   2. a stock GStreamer RFC 4175 raw-video sender, frames rebuilt by the same codec;
#   3. the collective adaptation scheduler deciding model variant, resolution and batch for a
#      set of clients (shoal-sched solve), checked against the exact MILP (GLPK).
# Usage: scripts/demo.sh [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
[ "${1:-}" = "--build" ] && build=$2

if [ "$(id -u)" -eq 0 ]; then scripts/setup.sh; else scripts/setup.sh --check; fi
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
out=$(mktemp -d /tmp/shoal-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step() { printf '\n=== %s\n' "$*"; }

port=$((20000 + RANDOM % 20000))
step "1. ffmpeg testsrc 640x480 @ 25 fps, 3 s, RTP/JPEG (RFC 2435) -> 127.0.0.1:$port -> shoal codec"
"$build/perf/shoal-krecv" --port "$port" --decode --seconds 8 --frames 75 --save "$out" \
	>"$out/krecv-jpeg.txt" &
pids+=($!)
sleep 0.5
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=640x480:rate=25 -t 3 \
	-c:v mjpeg -huffman default -pix_fmt yuvj420p -q:v 5 -f rtp "rtp://127.0.0.1:$port" >/dev/null
wait "${pids[-1]}" || true
cat "$out/krecv-jpeg.txt"
echo "ffmpeg sent 75 frames; the decoded first frames are in $out/"

port=$((port + 2))
step "2. GStreamer videotestsrc 320x240 I420, RTP raw video (RFC 4175) -> 127.0.0.1:$port"
"$build/perf/shoal-krecv" --port "$port" --raw 320x240:420 --seconds 8 --frames 30 \
	>"$out/krecv-raw.txt" &
pids+=($!)
sleep 0.5
gst-launch-1.0 -q videotestsrc num-buffers=30 pattern=smpte ! \
	video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! rtpvrawpay ! \
	udpsink host=127.0.0.1 port="$port" sync=true >/dev/null
wait "${pids[-1]}" || true
cat "$out/krecv-raw.txt"
echo "GStreamer sent 30 frames"

if [ -x "$build/control/shoal-sched" ]; then
	step "3. scheduler: variants, resolutions and batches for the clients of control/examples/demo.txt"
	"$build/control/shoal-sched" solve control/examples/demo.txt --milp
fi

step "not shown yet: shoal-server (DPDK ingest, batched inference, live adaptation) - see README.md"
