#!/usr/bin/python3
"""Convert a TF.js graph model (model.json + .bin shards) to an NCHW ONNX model.

  tfjs2onnx.py --family nanodet   SRC/nanodet.json   OUT/nanodet.onnx
  tfjs2onnx.py --family centernet SRC/centernet.json OUT/centernet.onnx
  tfjs2onnx.py --output TFNODE=NAME:nhwc ... --input-layout nhwc model.json out.onnx

The ONNX input is "input", float32 (N, 3, H, W) with symbolic N, H, W; the outputs are the
per-level head maps (N, C, h, w) listed in models/zoo/README.md. No constant in the graph
depends on H or W; H and W must be multiples of 32. Opset 14 (HardSwish needs it); only the ops the shoal
backends implement are emitted (checked before writing).
"""

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402

import tfjs_convert  # noqa: E402
import tfjs_graph  # noqa: E402

ALLOWED_OPS = {
	"Conv", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSwish", "Add", "Mul", "Sub", "Div",
	"MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Resize", "Reshape",
	"Transpose", "Slice", "Split", "Softmax", "Identity", "Flatten", "MatMul", "Gemm",
}

# TF node -> ONNX output name, and the TF layout of that node.
FAMILIES = {
	"nanodet": {
		"input_layout": "nchw",
		"doc": "NanoDet (GFL head, reg_max 10), COCO-80. Input RGB/255, NCHW. "
			"Outputs per stride s in 8,16,32: cls_s (sigmoid scores, 80 ch) and "
			"reg_s (4 x 11 distance-bin logits). See models/zoo/README.md.",
		"outputs": [
			("PartitionedCall/onnx_tf_prefix_Sigmoid_154", "cls8", "nchw"),
			("PartitionedCall/onnx_tf_prefix_Split_153:1", "reg8", "nchw"),
			("PartitionedCall/onnx_tf_prefix_Sigmoid_165", "cls16", "nchw"),
			("PartitionedCall/onnx_tf_prefix_Split_164:1", "reg16", "nchw"),
			("PartitionedCall/onnx_tf_prefix_Sigmoid_176", "cls32", "nchw"),
			("PartitionedCall/onnx_tf_prefix_Split_175:1", "reg32", "nchw"),
		],
	},
	"centernet": {
		"input_layout": "nhwc",
		"doc": "MobileNetV3-CenterNet, COCO-80. Input RGB 0..255, NCHW. Outputs at stride 4: "
			"heatmap (sigmoid, 80 ch), heatmax (3x3 max-pooled heatmap, for peak picking), "
			"wh (4 ch: left, top, right, bottom distances in input pixels). "
			"See models/zoo/README.md.",
		"outputs": [
			("tower_0/keypoints", "heatmap", "nhwc"),
			("tower_0/max_pooling2d/MaxPool", "heatmax", "nhwc"),
			("tower_0/wh", "wh", "nhwc"),
		],
	},
}


def parse_output(spec):
	try:
		ref, rest = spec.split("=", 1)
		name, lay = rest.rsplit(":", 1)
	except ValueError:
		raise SystemExit("tfjs2onnx: bad --output %r (want TFNODE[:k]=NAME:nhwc|nchw)" % spec)
	if lay not in ("nhwc", "nchw"):
		raise SystemExit("tfjs2onnx: bad layout in --output %r" % spec)
	return (ref, name, lay)


def signature_size(meta, layout):
	try:
		inp = list(meta["signature"]["inputs"].values())[0]
		dims = [int(d["size"]) for d in inp["tensorShape"]["dim"]]
	except (KeyError, TypeError, ValueError, IndexError):
		return None
	return (dims[1], dims[2]) if layout == "nhwc" else (dims[2], dims[3])


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("model_json")
	ap.add_argument("out_onnx")
	ap.add_argument("--family", choices=sorted(FAMILIES))
	ap.add_argument("--output", action="append", default=[],
		help="TFNODE[:k]=ONNXNAME:nhwc|nchw (repeatable; overrides the family outputs)")
	ap.add_argument("--input-layout", choices=("nhwc", "nchw"))
	ap.add_argument("--no-hardswish", action="store_true",
		help="keep x*relu6(x+3)*c as Mul/Add/Clip (bit-faithful to the float16 c = 0.16663) "
		"instead of fusing it into HardSwish (exact 1/6)")
	ap.add_argument("--ref-size", type=int, help="reference H=W for shape inference")
	args = ap.parse_args()

	fam = FAMILIES.get(args.family, {})
	outputs = [parse_output(s) for s in args.output] or fam.get("outputs")
	layout = args.input_layout or fam.get("input_layout")
	if not outputs or not layout:
		raise SystemExit("tfjs2onnx: give --family, or --output and --input-layout")
	try:
		nodes, consts, meta = tfjs_graph.load(args.model_json)
	except (OSError, ValueError, tfjs_graph.TfjsError) as e:
		raise SystemExit("tfjs2onnx: %s" % e)
	size = (args.ref_size, args.ref_size) if args.ref_size else signature_size(meta, layout)
	if size is None:
		raise SystemExit("tfjs2onnx: no input size in the signature; give --ref-size")
	doc = fam.get("doc", "") + " Source: %s (%s)." % (
		os.path.basename(args.model_json), meta.get("generatedBy") or "?")
	try:
		model = tfjs_convert.convert(nodes, consts, outputs, layout, size, doc,
			not args.no_hardswish)
	except tfjs_convert.ConvertError as e:
		raise SystemExit("tfjs2onnx: %s" % e)
	hist = collections.Counter(n.op_type for n in model.graph.node)
	bad = sorted(set(hist) - ALLOWED_OPS)
	if bad:
		raise SystemExit("tfjs2onnx: graph needs ops outside the backend set: %s" % bad)
	onnx.checker.check_model(model)
	tmp = args.out_onnx + ".tmp"
	onnx.save(model, tmp)
	os.replace(tmp, args.out_onnx)
	params = sum(int(__import__("numpy").prod(i.dims)) for i in model.graph.initializer)
	print("%s: opset %d, %d nodes, %d parameters, ref size %dx%d" % (
		args.out_onnx, tfjs_convert.OPSET, len(model.graph.node), params, size[0], size[1]))
	print("  inputs:  " + ", ".join("%s%s" % (i.name, _dims(i)) for i in model.graph.input))
	print("  outputs: " + ", ".join("%s%s" % (o.name, _dims(o)) for o in model.graph.output))
	print("  ops:     " + ", ".join("%s=%d" % kv for kv in sorted(hist.items())))


def _dims(vi):
	return "(" + ", ".join(d.dim_param or str(d.dim_value)
		for d in vi.type.tensor_type.shape.dim) + ")"


if __name__ == "__main__":
	main()
