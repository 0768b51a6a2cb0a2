#!/bin/bash
# zoo_real_vs_ort.sh CPU_RUN ZOO_INPUT ZOO_DETS FAMILY SIZE BATCH
# A converted zoo family (scripts/fetch-models.sh) on real images, on the CPU backend and on
# onnxruntime (tests/models/ort/run_ort.js), fed the same input bytes: the tensor comes from
# zoo_input (the project's gpu_image_to_tensor with the family's normalisation) over darknet's
# dog.jpg (batch 1) or dog.jpg, person.jpg, horses.jpg and frame 120 of opencv-doc's vtest.avi
# (batch 4). Checks every output within 1e-3 relative (compare_outputs.py) and the same
# detections after decode + NMS (zoo_dets: count, classes, boxes within 1 px, scores within
# 1e-3). Exit 77 when the model, onnxruntime-node, the images or ffmpeg are absent.
set -u
cpu_run=$1 zoo_input=$2 zoo_dets=$3 family=$4 size=$5 batch=$6
here=$(cd "$(dirname "$0")" && pwd)
model=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/$family.onnx
data=/usr/share/darknet/data
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[ -f "$model" ] || { echo "skip: $model absent (run scripts/fetch-models.sh)"; exit 77; }
[ -d "$here/ort/node_modules/onnxruntime-node" ] && command -v node >/dev/null ||
	{ echo "skip: onnxruntime-node absent (cd tests/models/ort && npm install)"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
case $batch in
1) images=("$data/dog.jpg") ;;
4)
	[ -f "$video" ] || { echo "skip: $video absent (Debian package opencv-doc)"; exit 77; }
	command -v ffmpeg >/dev/null || { echo "skip: ffmpeg absent"; exit 77; }
	ffmpeg -nostdin -v error -i "$video" -vf 'select=eq(n\,120)' -frames:v 1 -c:v ppm \
		-f image2 "$tmp/vtest120.ppm" || exit 1
	images=("$data/dog.jpg" "$data/person.jpg" "$data/horses.jpg" "$tmp/vtest120.ppm")
	;;
*) echo "BATCH must be 1 or 4"; exit 2 ;;
esac
for f in "${images[@]}"; do
	[ -f "$f" ] || { echo "skip: $f absent (Debian package darknet)"; exit 77; }
done
shape=$batch,3,$size,$size
mkdir "$tmp/cpu" "$tmp/ort"
"$zoo_input" "$family" "$size" "$tmp/in.f32" "${images[@]}" || exit 1
"$cpu_run" "$model" "$tmp/in.f32" "$shape" "$tmp/cpu" || exit 1
node "$here/ort/run_ort.js" "$model" "$tmp/in.f32" "$shape" "$tmp/ort" || exit 1
rc=0
/usr/bin/python3 "$here/ort/compare_outputs.py" "$tmp/cpu" "$tmp/ort" --rtol 1e-3 || rc=1
"$zoo_dets" "$model" "$family" "$shape" "$tmp/cpu" "$tmp/ort" 0.2 || rc=1
exit $rc
