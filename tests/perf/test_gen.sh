#!/usr/bin/env bash
# shoal-gen in kernel mode against shoal-krecv on loopback: paced clients' frames all arrive
# complete and decode (the generator's RTP/JPEG is what a real receiver accepts), and bad
# flags are refused with one line and exit 2.
# Usage: test_gen.sh GEN KRECV CASE   (CASE: kernel_frames_decode | bad_flags)
set -uo pipefail
gen=$1 krecv=$2 case=$3
tmp=$(mktemp -d)
rpid=
trap 'kill $rpid 2>/dev/null; rm -rf "$tmp"' EXIT
port=$((30000 + (RANDOM % 15000) * 2))

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
		"--udp 127.0.0.1:$port --bogus"; do
		# shellcheck disable=SC2086
		"$gen" $args >"$tmp/out" 2>&1
		rc=$?
		[ $rc = 2 ] || { echo "FAIL: '$args' exited $rc, want 2"; cat "$tmp/out"; exit 1; }
		[ "$(wc -l <"$tmp/out")" = 1 ] || { echo "FAIL: '$args' printed:"; cat "$tmp/out"; exit 1; }
		grep -q '^shoal-gen: ' "$tmp/out" || { echo "FAIL: '$args': no 'shoal-gen:' line"; exit 1; }
	done
	;;
*) echo "unknown case $case"; exit 2 ;;
esac
exit 0
