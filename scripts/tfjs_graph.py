"""Reading a TF.js graph model (model.json + weight shards) into numpy.

model.json holds `modelTopology` (a TF GraphDef written as JSON) and
`weightsManifest` (groups of shard files; each weight has name, shape, dtype
and an optional `quantization` block). Weights are stored back to back in
manifest order across the shards of all groups.
"""

import base64
import json
import os

import numpy as np

_TF_DTYPES = {
	"DT_FLOAT": np.float32,
	"DT_INT32": np.int32,
	"DT_INT64": np.int64,
	"DT_BOOL": np.bool_,
	"DT_HALF": np.float16,
}

_WEIGHT_DTYPES = {
	"float32": np.float32,
	"int32": np.int32,
	"bool": np.bool_,
	"float16": np.float16,
}


class TfjsError(Exception):
	"""Malformed or unsupported model file."""


def _count(shape):
	n = 1
	for d in shape:
		n *= int(d)
	return n


def _dequantise(buf, off, w):
	"""Return (array float32/int32, bytes used) for one manifest entry."""
	shape = [int(d) for d in w.get("shape", [])]
	n = _count(shape)
	q = w.get("quantization")
	if q is None:
		dt = _WEIGHT_DTYPES.get(w["dtype"])
		if dt is None:
			raise TfjsError("weight %s: unsupported dtype %s" % (w["name"], w["dtype"]))
		size = np.dtype(dt).itemsize * n
		arr = np.frombuffer(buf, dt, n, off).copy()
	elif q["dtype"] == "float16":
		size = 2 * n
		arr = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
	elif q["dtype"] in ("uint8", "uint16"):
		qdt = np.uint8 if q["dtype"] == "uint8" else np.uint16
		size = np.dtype(qdt).itemsize * n
		raw = np.frombuffer(buf, qdt, n, off).astype(np.float32)
		arr = raw * np.float32(q["scale"]) + np.float32(q["min"])
		if w["dtype"] == "int32":
			arr = np.round(arr).astype(np.int32)
	else:
		raise TfjsError("weight %s: unsupported quantization %s" % (w["name"], q["dtype"]))
	if off + size > len(buf):
		raise TfjsError("weight %s: shard data too short" % w["name"])
	if w["dtype"] == "float32":
		arr = arr.astype(np.float32)
	return arr.reshape(shape), size


def _inline_const(node):
	"""Value of a Const node whose data is inside the GraphDef itself."""
	t = node.get("attr", {}).get("value", {}).get("tensor")
	if t is None:
		return None
	dt = _TF_DTYPES.get(t.get("dtype", "DT_FLOAT"))
	if dt is None:
		raise TfjsError("const %s: unsupported dtype %s" % (node["name"], t.get("dtype")))
	shape = [int(d.get("size", 0)) for d in t.get("tensorShape", {}).get("dim", [])]
	n = _count(shape)
	if "tensorContent" in t:
		arr = np.frombuffer(base64.b64decode(t["tensorContent"]), dt).copy()
	else:
		vals = t.get("floatVal") or t.get("intVal") or t.get("int64Val") or t.get("boolVal")
		if vals is None:
			return None
		arr = np.array(vals, dtype=dt)
		if arr.size == 1 and n != 1:
			arr = np.full(n, arr[0], dtype=dt)
	return arr.reshape(shape)


def load(model_json):
	"""Load a graph model. Returns (nodes: list of dict, consts: name -> ndarray, meta)."""
	with open(model_json, "r", encoding="utf-8") as f:
		model = json.load(f)
	if "modelTopology" not in model or "weightsManifest" not in model:
		raise TfjsError("%s: not a TF.js graph model (modelTopology/weightsManifest missing)"
				% model_json)
	topo = model["modelTopology"]
	nodes = topo.get("node", [])
	base = os.path.dirname(os.path.abspath(model_json))
	consts = {}
	for group in model["weightsManifest"]:
		buf = b""
		for p in group["paths"]:
			with open(os.path.join(base, os.path.basename(p)), "rb") as f:
				buf += f.read()
		off = 0
		for w in group["weights"]:
			arr, used = _dequantise(buf, off, w)
			consts[w["name"]] = arr
			off += used
		if off != len(buf):
			raise TfjsError("weights group %s: %d bytes described, %d present"
					% (group["paths"], off, len(buf)))
	for n in nodes:
		if n["op"] == "Const" and n["name"] not in consts:
			v = _inline_const(n)
			if v is None:
				raise TfjsError("const %s has no data" % n["name"])
			consts[n["name"]] = v
	meta = {k: model.get(k) for k in ("format", "generatedBy", "convertedBy", "signature")}
	return nodes, consts, meta


def attr_list_i(node, key):
	return [int(x) for x in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def attr_s(node, key, default=None):
	v = node.get("attr", {}).get(key, {}).get("s")
	return base64.b64decode(v).decode() if v is not None else default


def attr_list_s(node, key):
	return [base64.b64decode(s).decode()
		for s in node.get("attr", {}).get(key, {}).get("list", {}).get("s", [])]


def attr_f(node, key, default=None):
	v = node.get("attr", {}).get(key, {}).get("f")
	return float(v) if v is not None else default


def attr_b(node, key, default=False):
	v = node.get("attr", {}).get(key, {}).get("b")
	return bool(v) if v is not None else default


def attr_i(node, key, default=None):
	v = node.get("attr", {}).get(key, {}).get("i")
	return int(v) if v is not None else default
