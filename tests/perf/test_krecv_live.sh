#!/usr/bin/env bash
# shoal-krecv against live stock senders on loopback: every frame ffmpeg (RFC 2435) or
# GStreamer (RFC 4175) sends is reassembled, and every JPEG frame decodes.
# Usage: test_krecv_live.sh KRECV CASE   (CASE: ffmpeg_jpeg | gst_raw420 | gst_raw422 | bad_flags)
set -uo pipefail
krecv=$1 case=$2
tmp=$(mktemp -d)
trap 'kill $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
rpid=
port=$((30000 + (RANDOM % 15000) * 2))

expect() { # KEY VALUE
	local got
	got=$(grep -o "$1=[0-9.]*" "$tmp/out" | tail -1 | cut -d= -f2)
	if [ "$got" != "$2" ]; then
		echo "FAIL: $1=$got, want $2"; cat "$tmp/out"; exit 1
	fi
}

case "$case" in
ffmpeg_jpeg)
	command -v ffmpeg >/dev/null || { echo "skip: ffmpeg not installed"; exit 77; }
	"$krecv" --port $port --decode --frames 20 --seconds 20 >"$tmp/out" & rpid=$!
	sleep 0.3
	# -re paces the sender so the loopback socket buffer never overflows
	ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc=size=352x288:rate=25 \
		-frames:v 20 -c:v mjpeg -huffman default -pix_fmt yuvj420p -f rtp "rtp://127.0.0.1:$port"
	wait $rpid
	expect frames 20; expect decoded 20; expect decode_failed 0; expect incomplete 0
	grep -q "size=352x288" "$tmp/out" || { echo "FAIL: size"; cat "$tmp/out"; exit 1; }
	;;
gst_raw420|gst_raw422)
	command -v gst-launch-1.0 >/dev/null || { echo "skip: GStreamer not installed"; exit 77; }
	fmt=I420 arg=420
	[ "$case" = gst_raw422 ] && fmt=UYVY arg=422
	"$krecv" --port $port --raw 320x240:$arg --frames 10 --seconds 20 >"$tmp/out" & rpid=$!
	sleep 0.3
	gst-launch-1.0 -q videotestsrc num-buffers=10 ! \
		video/x-raw,format=$fmt,width=320,height=240,framerate=25/1 ! rtpvrawpay ! \
		udpsink host=127.0.0.1 port=$port sync=true
	wait $rpid
	expect frames 10; expect incomplete 0; expect bad 0
	;;
bad_flags)
	for a in "--port 0" "--port x" "--raw 10x10:444" "--frames -1" "--bogus"; do
		# shellcheck disable=SC2086
		if "$krecv" $a >"$tmp/out" 2>&1; then echo "FAIL: '$a' accepted"; exit 1; fi
		[ "$(wc -l <"$tmp/out")" -ge 1 ] || { echo "FAIL: '$a' gave no message"; exit 1; }
	done
	;;
*) echo "unknown case $case"; exit 1 ;;
esac
echo "pass: $case"
