#!/bin/bash
# profile_cli.sh CASE SHOAL_PROFILE PROFILE_CHECK
# Checks of the shoal-profile program (gpu/gpu_profile_main.c). Cases:
#   tiny_nanodet, tiny_centernet  2 sizes, batch 1..2, 3 runs, 8 vtest frames: the CSV files
#                                 pass profile_check (headers, monotone, largest F1 = 1,
#                                 accepted by ctl_profile_load); the plot is a PNG when
#                                 matplotlib is there; --latency-only/--accuracy-only write
#                                 one file each
#   bad_flags                     each bad command line: exit 2, one line on stderr, no stdout
#   missing_files                 a missing model (given or from $SHOAL_MODEL_DIR) or video:
#                                 exit 1, one line naming the file
#   help                          --help: exit 0, every option explained
# Exit 77 when the model, the video (Debian opencv-doc) or ffmpeg is absent.
set -u
case_=$1 prof=$2 check=$3
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
model_dir=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

need_model() {
	[ -f "$model_dir/$1.onnx" ] || { echo "skip: $model_dir/$1.onnx absent (run scripts/fetch-models.sh)"; exit 77; }
}
need_video() {
	[ -f "$video" ] || { echo "skip: $video absent (Debian package opencv-doc)"; exit 77; }
	command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null ||
		{ echo "skip: ffmpeg/ffprobe absent"; exit 77; }
}

# expect_one_line RC CMD...: exit status RC, exactly one line on stderr, nothing on stdout
expect_one_line() {
	local want=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	[ "$rc" = "$want" ] || fail "'${*:2}' exited $rc, want $want: $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/err")" = 1 ] || fail "'${*:2}' wrote $(wc -l <"$tmp/err") lines to stderr: $(cat "$tmp/err")"
	[ -s "$tmp/out" ] && fail "'${*:2}' wrote to stdout: $(cat "$tmp/out")"
	echo "ok ($rc): ${*:2} -> $(cat "$tmp/err")"
}

tiny() {
	local fam=$1
	need_model "$fam"
	need_video
	local args=(--family "$fam" --sizes 128,160 --max-batch 2 --runs 3 --warmup 1 --frames 8)
	"$prof" "${args[@]}" --out "$tmp/p" || fail "shoal-profile exited $?"
	local d=$tmp/p/$fam/cpu
	cat "$d/latency.csv" "$d/accuracy.csv"
	"$check" "$d" 2 2 || fail "profile_check refused $d"
	if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
		[ "$(head -c 8 "$d/profile.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
			fail "$d/profile.png is not a PNG"
	fi
	"$prof" "${args[@]}" --out "$tmp/l" --latency-only --no-plot --quiet 2>"$tmp/err" ||
		fail "--latency-only exited $?"
	[ -f "$tmp/l/$fam/cpu/latency.csv" ] && [ ! -e "$tmp/l/$fam/cpu/accuracy.csv" ] ||
		fail "--latency-only did not write latency.csv alone"
	[ -s "$tmp/err" ] && fail "--quiet still wrote: $(cat "$tmp/err")"
	"$prof" "${args[@]}" --out "$tmp/l" --accuracy-only --no-plot --quiet ||
		fail "--accuracy-only exited $?"
	"$check" "$tmp/l/$fam/cpu" 2 2 || fail "profile_check refused the two one-sided runs"
	echo "ok: $fam tiny profile"
}

case $case_ in
tiny_nanodet) tiny nanodet ;;
tiny_centernet) tiny centernet ;;
bad_flags)
	expect_one_line 2 "$prof"
	expect_one_line 2 "$prof" --family nanodet --bogus
	expect_one_line 2 "$prof" --family yolo
	expect_one_line 2 "$prof" --family nanodet --backend tpu
	expect_one_line 2 "$prof" --family nanodet --runs 0
	expect_one_line 2 "$prof" --family nanodet --runs 3x
	expect_one_line 2 "$prof" --family nanodet --warmup -1
	expect_one_line 2 "$prof" --family nanodet --threads 0
	expect_one_line 2 "$prof" --family nanodet --max-batch 99
	expect_one_line 2 "$prof" --family nanodet --frames 0
	expect_one_line 2 "$prof" --family nanodet --sizes 100:200:32
	expect_one_line 2 "$prof" --family nanodet --sizes 640:128:32
	expect_one_line 2 "$prof" --family nanodet --sizes 128,128
	expect_one_line 2 "$prof" --family nanodet --sizes 128:640
	expect_one_line 2 "$prof" --family nanodet --latency-only --accuracy-only
	expect_one_line 2 "$prof" --family nanodet extra
	expect_one_line 2 "$prof" --family nanodet --runs
	;;
missing_files)
	expect_one_line 1 "$prof" --family nanodet --model "$tmp/nowhere/nanodet.onnx" --no-plot
	grep -qF "$tmp/nowhere/nanodet.onnx" "$tmp/err" || fail "the message does not name the model"
	mkdir "$tmp/empty"
	expect_one_line 1 env SHOAL_MODEL_DIR="$tmp/empty" "$prof" --family centernet --no-plot
	grep -qF "$tmp/empty/centernet.onnx" "$tmp/err" || fail "the message does not name \$SHOAL_MODEL_DIR's model"
	need_model nanodet
	expect_one_line 1 "$prof" --family nanodet --sizes 128 --video "$tmp/none.avi" --quiet --no-plot
	grep -qF "$tmp/none.avi" "$tmp/err" || fail "the message does not name the video"
	echo garbage >"$tmp/bad.onnx"
	expect_one_line 1 "$prof" --family nanodet --model "$tmp/bad.onnx" --quiet --no-plot
	grep -qF "$tmp/bad.onnx" "$tmp/err" || fail "the message does not name the bad model"
	;;
help)
	"$prof" --help >"$tmp/out" 2>&1 || fail "--help exited $?"
	for o in family model backend threads sizes max-batch runs warmup video frames out \
		latency-only accuracy-only no-plot quiet help; do
		grep -q -- "--$o" "$tmp/out" || fail "--help does not explain --$o"
	done
	echo "ok: --help explains every option"
	;;
*) echo "unknown case $case_"; exit 2 ;;
esac
exit 0
