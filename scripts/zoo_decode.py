#!/usr/bin/python3
"""Run a zoo detector on an image and print its detections (reference decode + NMS).

  zoo_decode.py --family nanodet   --model nanodet.onnx   --size 416 IMAGE.jpg
  zoo_decode.py --family centernet --model centernet.onnx --size 512 IMAGE.jpg
  zoo_decode.py --family nanodet --outputs DIR --orig-size W,H   (decode a run_ort.js dir)

Preprocessing, output layout and decoding follow models/zoo/README.md. The network is run
with tests/models/ort/run_ort.js (onnxruntime-node; `npm install` in that folder first).
Boxes are printed in original-image pixels as x1,y1,x2,y2.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

COCO80 = [
	"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
	"traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
	"dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
	"umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
	"kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
	"bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
	"sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
	"couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
	"remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
	"refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
	"toothbrush",
]

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_ORT = os.path.join(HERE, "..", "tests", "models", "ort", "run_ort.js")


def preprocess(path, family, size):
	"""Image -> float32 (1, 3, size, size) NCHW RGB, and the original (W, H)."""
	from PIL import Image
	img = Image.open(path).convert("RGB")
	orig = img.size
	img = img.resize((size, size), Image.BILINEAR)
	x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None]
	if family == "nanodet":
		x = x / 255.0
	return np.ascontiguousarray(x, dtype=np.float32), orig


def run_ort(model, x, outdir):
	inp = os.path.join(outdir, "input.f32")
	x.astype("<f4").tofile(inp)
	shape = ",".join(str(d) for d in x.shape)
	subprocess.run(["node", RUN_ORT, model, inp, shape, outdir], check=True,
		stdout=subprocess.DEVNULL)


def load_outputs(outdir):
	with open(os.path.join(outdir, "manifest.json"), encoding="utf-8") as f:
		man = json.load(f)
	res = {}
	for name, o in man["outputs"].items():
		res[name] = np.fromfile(os.path.join(outdir, o["file"]), "<f4").reshape(o["shape"])
	return res, man.get("input", {}).get("shape")


def decode_nanodet(out, in_h, in_w, thr):
	"""Candidates (x1, y1, x2, y2, score, cls) in input pixels from cls{s}/reg{s} maps."""
	dets = []
	for s in (8, 16, 32):
		cls = out["cls%d" % s][0]	# (80, h, w), sigmoid scores
		reg = out["reg%d" % s][0]	# (44, h, w) = 4 sides x 11 bins, logits
		_, h, w = cls.shape
		if h * s != in_h or w * s != in_w:
			raise SystemExit("zoo_decode: level %d has %dx%d for input %dx%d" % (s, h, w, in_h, in_w))
		score = cls.max(0)
		label = cls.argmax(0)
		ys, xs = np.nonzero(score > thr)
		if ys.size == 0:
			continue
		r = reg[:, ys, xs].reshape(4, 11, -1)
		r = np.exp(r - r.max(1, keepdims=True))
		r /= r.sum(1, keepdims=True)
		dist = (r * np.arange(11, dtype=np.float32)[None, :, None]).sum(1) * s	# (4, n)
		cx = (xs + 0.5) * s
		cy = (ys + 0.5) * s
		box = np.stack([cx - dist[0], cy - dist[1], cx + dist[2], cy + dist[3]], 1)
		dets.append(np.concatenate([box, score[ys, xs][:, None],
			label[ys, xs][:, None].astype(np.float32)], 1))
	return np.concatenate(dets, 0) if dets else np.zeros((0, 6), np.float32)


def decode_centernet(out, in_h, in_w, thr, topk=100):
	hm = out["heatmap"][0]	# (80, h, w)
	hmax = out["heatmax"][0]
	wh = out["wh"][0]	# (4, h, w): left, top, right, bottom in input pixels
	c, h, w = hm.shape
	stride = in_h // h
	peaks = np.where(hm == hmax, hm, 0.0).reshape(-1)
	idx = np.argsort(-peaks)[:topk]
	idx = idx[peaks[idx] > thr]
	cls, rem = np.divmod(idx, h * w)
	ys, xs = np.divmod(rem, w)
	cx, cy = xs * stride, ys * stride
	box = np.stack([cx - wh[0, ys, xs], cy - wh[1, ys, xs], cx + wh[2, ys, xs],
		cy + wh[3, ys, xs]], 1)
	return np.concatenate([box, peaks[idx][:, None], cls[:, None].astype(np.float32)], 1)


def iou(a, b):
	x1 = np.maximum(a[0], b[:, 0])
	y1 = np.maximum(a[1], b[:, 1])
	x2 = np.minimum(a[2], b[:, 2])
	y2 = np.minimum(a[3], b[:, 3])
	inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
	area = lambda d: np.clip(d[..., 2] - d[..., 0], 0, None) * np.clip(d[..., 3] - d[..., 1], 0, None)
	return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def nms(dets, iou_thr, max_out):
	"""Greedy per-class NMS, highest score first."""
	order = np.argsort(-dets[:, 4], kind="stable")
	dets = dets[order]
	keep = []
	alive = np.ones(len(dets), bool)
	for i in range(len(dets)):
		if not alive[i]:
			continue
		keep.append(i)
		if len(keep) == max_out:
			break
		same = (dets[:, 5] == dets[i, 5]) & alive
		same[: i + 1] = False
		j = np.nonzero(same)[0]
		alive[j[iou(dets[i], dets[j]) > iou_thr]] = False
	return dets[keep]


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	ap.add_argument("image", nargs="?")
	ap.add_argument("--family", required=True, choices=("nanodet", "centernet"))
	ap.add_argument("--model")
	ap.add_argument("--size", type=int, default=416, help="square input size (multiple of 32)")
	ap.add_argument("--outputs", help="decode an existing run_ort.js output dir instead")
	ap.add_argument("--orig-size", help="W,H of the original image (with --outputs)")
	ap.add_argument("--thr", type=float, default=0.3)
	ap.add_argument("--iou", type=float, default=0.5)
	ap.add_argument("--top", type=int, default=20)
	args = ap.parse_args()
	if args.size % 32 or not 32 <= args.size <= 4096:
		raise SystemExit("zoo_decode: --size must be a multiple of 32")
	tmp = None
	if args.outputs:
		outdir = args.outputs
		if not args.orig_size:
			raise SystemExit("zoo_decode: --outputs needs --orig-size W,H")
		orig = tuple(int(v) for v in args.orig_size.split(","))
	else:
		if not args.image or not args.model:
			raise SystemExit("zoo_decode: give IMAGE and --model (or --outputs)")
		x, orig = preprocess(args.image, args.family, args.size)
		tmp = tempfile.TemporaryDirectory()
		outdir = tmp.name
		run_ort(args.model, x, outdir)
	out, in_shape = load_outputs(outdir)
	in_h, in_w = (in_shape[2], in_shape[3]) if in_shape else (args.size, args.size)
	if args.family == "nanodet":
		dets = decode_nanodet(out, in_h, in_w, args.thr)
	else:
		dets = decode_centernet(out, in_h, in_w, args.thr)
	dets = nms(dets, args.iou, args.top)
	sx, sy = orig[0] / in_w, orig[1] / in_h
	print("%s %dx%d on %s (%dx%d): %d detections" % (args.family, in_w, in_h,
		os.path.basename(args.image or outdir), orig[0], orig[1], len(dets)))
	for d in dets:
		x1 = min(max(d[0] * sx, 0), orig[0])
		y1 = min(max(d[1] * sy, 0), orig[1])
		x2 = min(max(d[2] * sx, 0), orig[0])
		y2 = min(max(d[3] * sy, 0), orig[1])
		print("  %-14s %.3f  box %4.0f,%4.0f,%4.0f,%4.0f" % (COCO80[int(d[5])], d[4], x1, y1, x2, y2))
	if tmp:
		tmp.cleanup()
	return 0


if __name__ == "__main__":
	sys.exit(main())
