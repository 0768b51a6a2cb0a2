#!/bin/bash
# zoo_vs_ort.sh CPU_RUN FAMILY N,C,H,W
# Runs a converted zoo family (scripts/fetch-models.sh) on the CPU backend and on
# onnxruntime (tests/models/ort/run_ort.js) over the same random input and compares every
# output (relative difference <= 1e-4). Exit 77 when the model or onnxruntime-node is absent.
set -u
cpu_run=$1 family=$2 shape=$3
here=$(cd "$(dirname "$0")" && pwd)
model=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}/$family.onnx
[ -f "$model" ] || { echo "skip: $model absent (run scripts/fetch-models.sh)"; exit 77; }
[ -d "$here/ort/node_modules/onnxruntime-node" ] && command -v node >/dev/null ||
  { echo "skip: onnxruntime-node absent (cd tests/models/ort && npm install)"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/cpu" "$tmp/ort"
/usr/bin/python3 -c "
import numpy as np, sys
n = [int(v) for v in sys.argv[1].split(',')]
np.random.default_rng(7).random(n, dtype=np.float32).tofile(sys.argv[2])" "$shape" "$tmp/in.f32" || exit 1
"$cpu_run" "$model" "$tmp/in.f32" "$shape" "$tmp/cpu" || exit 1
node "$here/ort/run_ort.js" "$model" "$tmp/in.f32" "$shape" "$tmp/ort" >/dev/null || exit 1
/usr/bin/python3 "$here/ort/compare_outputs.py" "$tmp/cpu" "$tmp/ort" --rtol 1e-4
