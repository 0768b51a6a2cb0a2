#!/bin/bash
# Optional cross-check of the converter against TF.js itself: the source graph (TF.js,
# cpu backend) and the converted ONNX (onnxruntime) run on the same random input at the
# native size, 320 and 640, and every output must agree to 1e-4 relative (CenterNet's
# default HardSwish build to 1e-2, see models/zoo/README.md; its --no-hardswish build
# to 1e-4).
#   tests/models/ort/check_tfjs.sh
# Needs the fetch-models.sh cache, `npm install` here and
# `npm install --no-save @tensorflow/tfjs@4.22.0` here. Exits 77 when something is absent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models"
src="$cache/human-models-3.0.4"
if [ ! -f "$src/nanodet.json" ] || [ ! -f "$cache/onnx/centernet.onnx" ]; then
	echo "skip: run scripts/fetch-models.sh first"
	exit 77
fi
[ -d "$here/node_modules/onnxruntime-node" ] || { echo "skip: npm install in $here first"; exit 77; }
[ -d "$here/node_modules/@tensorflow/tfjs" ] ||
	{ echo "skip: npm install --no-save @tensorflow/tfjs@4.22.0 in $here first"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$repo/scripts/tfjs2onnx.py" --no-hardswish --family centernet "$src/centernet.json" \
	"$tmp/centernet_nohs.onnx" >/dev/null
N="PartitionedCall/onnx_tf_prefix"
nano_out=("cls8=$N""_Sigmoid_154:nchw" "reg8=$N""_Split_153:1:nchw" "cls16=$N""_Sigmoid_165:nchw"
	"reg16=$N""_Split_164:1:nchw" "cls32=$N""_Sigmoid_176:nchw" "reg32=$N""_Split_175:1:nchw")
cn_out=("heatmap=tower_0/keypoints:nhwc" "heatmax=tower_0/max_pooling2d/MaxPool:nhwc"
	"wh=tower_0/wh:nhwc")
fail=0
pass=0
run() {	# family onnx rtol size
	local fam="$1" model="$2" rtol="$3" s="$4" scale=1 lay=nchw
	local -a outs=("${nano_out[@]}")
	if [ "$fam" = centernet ]; then scale=255; lay=nhwc; outs=("${cn_out[@]}"); fi
	/usr/bin/python3 -c "import numpy as np,sys; np.random.seed($s); \
(np.random.rand(1,3,$s,$s)*$scale).astype('<f4').tofile(sys.argv[1])" "$tmp/in.f32"
	rm -rf "$tmp/ort" "$tmp/tfjs"
	node "$here/run_ort.js" "$model" "$tmp/in.f32" "1,3,$s,$s" "$tmp/ort" >/dev/null
	node "$here/run_tfjs.js" "$src/$fam.json" "$tmp/in.f32" "1,3,$s,$s" "$lay" "$tmp/tfjs" \
		"${outs[@]}" --size "$s" 2>/dev/null | grep -v '^$' | grep -v -e '====' -e 'Hi, looks' || true
	echo "== $fam $(basename "$model") ${s}x${s} (rtol $rtol)"
	if "$here/compare_outputs.py" --rtol "$rtol" "$tmp/ort" "$tmp/tfjs"; then
		pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
for s in 416 320 640; do run nanodet "$cache/onnx/nanodet.onnx" 1e-4 "$s"; done
for s in 512 320 640; do
	run centernet "$tmp/centernet_nohs.onnx" 1e-4 "$s"
	run centernet "$cache/onnx/centernet.onnx" 1e-2 "$s"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
