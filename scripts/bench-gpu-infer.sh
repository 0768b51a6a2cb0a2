#!/usr/bin/env bash
# gpu-infer benchmark: shoal's CUDA backend end to end (staged frame -> detections on the host,
# perf/bench_gpu_infer) against PyTorch on the same GPU running the same ONNX graph
# (perf/torch_onnx.py: fp16, channels_last, cudnn.benchmark, eager and CUDA-graph replay), plus
# H2D bandwidth of staging slots against a plain cudaMemcpy of pinned memory (perf/perf_h2d).
# Prints a table per (family, size, batch) and, last,
#   gpu-infer: fps=<geomean shoal, batch 1-8> torch_fps=<geomean torch graph, same> ratio=... eager_ratio=...
# Exits 77 with one line when there is no CUDA device.
#
# Usage: scripts/bench-gpu-infer.sh [--python PY] [--families nanodet,centernet]
#          [--sizes 320,416,640] [--batches 1,2,4,8,16] [--runs 200] [--model-dir DIR]
#          [--out DIR] [--image JPEG] [--i420] [--skip-shoal] [--skip-torch]
# Environment: SHOAL_BENCH_BUILD (build directory, default build-release; not rebuilt here:
# scripts/bench.sh gpu-infer builds it first), SHOAL_MODEL_DIR (the converted ONNX files).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
build=${SHOAL_BENCH_BUILD:-build-release}
py=
families=nanodet,centernet
sizes=320,416,640
batches=1,2,4,8,16
runs=200
mdir=${SHOAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/models/onnx}
out=
skip_shoal=0
skip_torch=0
shoal_args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--python) py=$2; shift 2 ;;
	--families) families=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--batches) batches=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--model-dir) mdir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--image) shoal_args+=(--image "$2"); shift 2 ;;
	--i420) shoal_args+=(--i420); shift ;;
	--skip-shoal) skip_shoal=1; shift ;;
	--skip-torch) skip_torch=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench-gpu-infer: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
for v in "$sizes" "$batches" "$runs"; do
	[[ $v =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "bench-gpu-infer: '$v' is not a list of integers" >&2; exit 2; }
done

# a CUDA device, or exit 77
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
	echo "bench-gpu-infer: skipped: no CUDA device (nvidia-smi lists none)"
	exit 77
fi
if [ -z "$py" ]; then
	if [ -x /opt/torch/.venv/bin/python ]; then py=/opt/torch/.venv/bin/python; else py=python3; fi
fi
if [ "$skip_torch" = 0 ] && ! "$py" -c 'import torch, onnx' >/dev/null 2>&1; then
	echo "bench-gpu-infer: $py cannot import torch and onnx (pass --python)" >&2
	exit 1
fi
# cuDNN: the system's, or the one of the Python environment's nvidia-cudnn package
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so'; then
	d=$("$py" -c 'import nvidia.cudnn, os; print(os.path.join(list(nvidia.cudnn.__path__)[0], "lib"))' 2>/dev/null || true)
	[ -n "$d" ] && [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -d /usr/local/cuda/lib64 ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64"

if [ -z "$out" ]; then
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
export PYTHONUNBUFFERED=1
fail=0
if [ "$skip_shoal" = 0 ] && [ ! -x "$build/perf/bench_gpu_infer" ]; then
	echo "bench-gpu-infer: $build/perf/bench_gpu_infer not built (SHOAL_BENCH_BUILD)" >&2
	exit 1
fi

IFS=, read -r -a fams <<<"$families"
for fam in "${fams[@]}"; do
	model=$mdir/$fam.onnx
	[ -f "$model" ] || { echo "bench-gpu-infer: $model absent (scripts/fetch-models.sh)" >&2; exit 1; }
	if [ "$skip_shoal" = 0 ]; then
		echo "== shoal $fam"
		if ! "$build/perf/bench_gpu_infer" --backend cuda --model "$model" --sizes "$sizes" \
			--batches "$batches" --runs "$runs" --h2d --json "$out/shoal-$fam.json" \
			${shoal_args[@]+"${shoal_args[@]}"}; then
			echo "bench-gpu-infer: shoal $fam failed" >&2
			fail=1
		fi
	fi
	if [ "$skip_torch" = 0 ]; then
		echo "== torch $fam"
		if ! "$py" perf/torch_onnx.py --model "$model" --sizes "$sizes" --batches "$batches" \
			--runs "$runs" --json "$out/torch-$fam.json"; then
			echo "bench-gpu-infer: torch $fam failed" >&2
			fail=1
		fi
	fi
done
if [ -x "$build/perf/perf_h2d" ]; then
	echo "== H2D"
	"$build/perf/perf_h2d" --json "$out/h2d.json" || { echo "bench-gpu-infer: perf_h2d failed" >&2; fail=1; }
fi

"$py" - "$out" "$families" <<'PY'
import json, math, os, sys
out, fams = sys.argv[1], sys.argv[2].split(",")

def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None

def gm(v):
    v = [x for x in v if x and x > 0]
    return math.exp(sum(map(math.log, v)) / len(v)) if v else None

def f(v, fmt="{:10.1f}"):
    return fmt.format(v) if v is not None else "{:>10}".format("-")

rows = []
print(f"{'family':10} {'size':>4} {'batch':>5} {'shoal fps':>10} {'eager fps':>10} {'graph fps':>10}"
      f" {'vs eager':>9} {'vs graph':>9} {'shoal p99':>10} {'graph p99':>10}")
for fam in fams:
    sh, th = load(f"shoal-{fam}.json"), load(f"torch-{fam}.json")
    s = {(r["size"], r["batch"]): r for r in (sh or {}).get("results", [])}
    t = {(r["size"], r["batch"], r["mode"]): r for r in (th or {}).get("results", [])}
    if th and "check" in th and "fp32_max_rel" in th["check"]:
        c = th["check"]
        h = c.get("fp16_max_rel")
        print(f"# {fam}: torch module vs onnxruntime CPU: fp32 {c['fp32_max_rel']:.1e}, "
              f"fp16 {'-' if h is None else format(h, '.1e')} (max|d|/max|ref|)")
    keys = sorted(set(s) | {k[:2] for k in t})
    for k in keys:
        a = s.get(k, {}).get("fps")
        e = t.get(k + ("eager",), {}).get("fps")
        g = t.get(k + ("graph",), {}).get("fps")
        rows.append((fam, k[0], k[1], a, e, g))
        print(f"{fam:10} {k[0]:4d} {k[1]:5d} {f(a)} {f(e)} {f(g)} "
              f"{f(a / e if a and e else None, '{:9.2f}')} {f(a / g if a and g else None, '{:9.2f}')} "
              f"{f(s.get(k, {}).get('p99_ms'), '{:10.3f}')} "
              f"{f(t.get(k + ('graph',), {}).get('p99_ms'), '{:10.3f}')}")
    if sh and "h2d" in sh:
        h = sh["h2d"]
        print(f"# {fam}: staged frames through the backend: {h['batch']} frames, {h['mb']:.2f} MB,"
              f" {h['gbs']:.2f} GB/s (copy and preprocessing, size {h['size']})")
h2d = load("h2d.json")
if h2d:
    for r in h2d["rows"]:
        print(f"# H2D {r['frames']:2d} x {h2d['frame_bytes']} B: staging slots {r['staging_gbs']:.2f} GB/s,"
              f" cudaMemcpy pinned {r['memcpy_gbs']:.2f} GB/s (ratio {r['staging_gbs'] / r['memcpy_gbs']:.3f}),"
              f" pageable {r['pageable_gbs']:.2f} GB/s, slots pinned={r['pinned']}")
# batch 1-8: the issue's target range; pairs where both sides exist
sel = [r for r in rows if 1 <= r[2] <= 8]
both_g = [r for r in sel if r[3] and r[5]]
both_e = [r for r in sel if r[3] and r[4]]
fps = gm([r[3] for r in both_g]) if both_g else gm([r[3] for r in sel])
tfps = gm([r[5] for r in both_g]) if both_g else gm([r[5] for r in sel])
ratio = gm([r[3] / r[5] for r in both_g])
eratio = gm([r[3] / r[4] for r in both_e])
teager = gm([r[4] for r in sel])

def kv(v, fmt):
    return fmt.format(v) if v is not None else "-"

print(f"# batch 1-8 geomeans: shoal {kv(fps, '{:.1f}')} fps, torch eager {kv(teager, '{:.1f}')},"
      f" torch graph {kv(tfps, '{:.1f}')} (targets: >= 1.5x eager, >= 1.0x graph)")
print(f"gpu-infer: fps={kv(fps, '{:.1f}')} torch_fps={kv(tfps, '{:.1f}')} ratio={kv(ratio, '{:.3f}')}"
      f" eager_ratio={kv(eratio, '{:.3f}')}")
PY
exit $fail
