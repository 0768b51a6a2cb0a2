"""TF graph (from a TF.js graph model) to ONNX, NCHW, resolution independent.

Every TF tensor of rank 4 is carried as an ONNX tensor plus a layout tag L
(a permutation): onnx = transpose(tf, L), so onnx.shape[i] == tf.shape[L[i]].
TF Transpose nodes then cost nothing (only the tag changes); an ONNX Transpose
is emitted only where an op needs another layout (convolutions, pools and
resizes want the NHWC TF tensor as NCHW, i.e. L == (0, 3, 1, 2)).

TF Pad / PadV2 are not emitted: they stay pending on the tensor and are folded
into the pads of the Conv / MaxPool that consumes them (the ONNX op set of the
target backend has no Pad).

Only the nodes needed for the requested outputs are converted, so reshapes of
head outputs to fixed (H*W) sizes and in-graph decoding are simply cut off.
The reference input size (from the model signature) is used to infer shapes;
the constants derived from it (SAME padding of stride-2 layers, resize scales)
hold for every input whose H and W are multiples of the network stride (32).
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import tfjs_graph as tg

OPSET = 14
NHWC_AS_NCHW = (0, 3, 1, 2)
IDENT4 = (0, 1, 2, 3)


class ConvertError(Exception):
	pass


def _inv(p):
	r = [0] * len(p)
	for i, v in enumerate(p):
		r[v] = i
	return tuple(r)


class Tensor:
	"""A converted TF tensor: ONNX name, layout tag, TF shape, pending pads."""

	def __init__(self, name, shape, layout=None, pads=None):
		self.name = name
		self.shape = list(shape)	# TF shape at the reference size (unpadded)
		self.layout = tuple(layout) if layout is not None else tuple(range(len(shape)))
		self.pads = pads	# per TF dim [before, after] still to apply, or None
		self.conv_node = None	# ONNX Conv producing it, bias still foldable


class Converter:
	def __init__(self, nodes, consts, input_layout, size_hw, fuse_hswish=True):
		self.fuse_hswish = fuse_hswish
		self.nodes = {n["name"]: n for n in nodes}
		self.consts = consts
		self.input_layout = input_layout	# 'nhwc' or 'nchw': TF placeholder layout
		self.size_hw = size_hw
		self.vals = {}
		self.onnx_nodes = []
		self.inits = {}
		self.uid = 0
		self.tcache = {}
		self.users = {}
		for n in nodes:
			for i in n.get("input", []):
				if i.startswith("^"):
					continue
				src = i.split(":")[0]
				self.users[src] = self.users.get(src, 0) + 1
		self.graph_input = None

	# ---- helpers ----
	def fresh(self, base):
		self.uid += 1
		return "%s_%d" % (base.replace("/", "_").replace(":", "_"), self.uid)

	def init(self, base, arr):
		name = self.fresh(base)
		self.inits[name] = numpy_helper.from_array(np.ascontiguousarray(arr), name)
		return name

	def emit(self, op, inputs, base, nout=1, **attrs):
		outs = [self.fresh(base) for _ in range(nout)]
		node = helper.make_node(op, inputs, outs, name=outs[0], **attrs)
		self.onnx_nodes.append(node)
		return node, outs

	def const(self, ref):
		name = ref.split(":")[0]
		if name in self.consts:
			return self.consts[name]
		n = self.nodes.get(name)
		if n is not None and n["op"] == "Identity":
			return self.const(n["input"][0])
		raise ConvertError("%s is not a constant" % ref)

	def const_or_none(self, ref):
		try:
			return self.const(ref)
		except ConvertError:
			return None

	def ensure(self, t, want):
		"""ONNX name of t in layout `want` (emits a Transpose when needed)."""
		if t.pads is not None and any(b or a for b, a in t.pads):
			raise ConvertError("pad on %s is consumed by an op that cannot absorb it" % t.name)
		if t.layout == tuple(want):
			return t.name
		key = (t.name, tuple(want))
		if key not in self.tcache:
			inv = _inv(t.layout)
			perm = [inv[w] for w in want]
			_, outs = self.emit("Transpose", [t.name], t.name + "_T", perm=perm)
			self.tcache[key] = outs[0]
		return self.tcache[key]

	# ---- evaluation ----
	def get(self, ref):
		if ref.startswith("^"):
			raise ConvertError("control input %s" % ref)
		name, _, idx = ref.partition(":")
		key = name if not idx or idx == "0" else "%s:%s" % (name, idx)
		if key in self.vals:
			return self.vals[key]
		if name in self.consts and self.nodes.get(name, {}).get("op", "Const") == "Const":
			raise ConvertError("constant %s used as a tensor" % name)
		node = self.nodes.get(name)
		if node is None:
			raise ConvertError("no node %s" % name)
		fn = getattr(self, "op_" + node["op"], None)
		if fn is None:
			raise ConvertError("unsupported TF op %s (node %s)" % (node["op"], name))
		res = fn(node)
		if isinstance(res, list):
			for i, r in enumerate(res):
				self.vals[name if i == 0 else "%s:%d" % (name, i)] = r
		else:
			self.vals[name] = res
		if key not in self.vals:
			raise ConvertError("node %s has no output %s" % (name, key))
		return self.vals[key]

	def inputs(self, node):
		return [i for i in node.get("input", []) if not i.startswith("^")]

	# ---- ops ----
	def op_Placeholder(self, node):
		dims = [int(d.get("size", -1)) for d in
			node["attr"]["shape"]["shape"].get("dim", [])]
		if len(dims) != 4:
			raise ConvertError("input %s: rank %d, expected 4" % (node["name"], len(dims)))
		h, w = self.size_hw
		if self.input_layout == "nhwc":
			shape = [1, h, w, dims[3]]
			layout = NHWC_AS_NCHW
			c = dims[3]
		else:
			shape = [1, dims[1], h, w]
			layout = IDENT4
			c = dims[1]
		self.graph_input = helper.make_tensor_value_info(
			"input", TensorProto.FLOAT, ["N", c, "H", "W"])
		return Tensor("input", shape, layout)

	def op_Identity(self, node):
		return self.get(self.inputs(node)[0])

	op_StopGradient = op_Identity

	def op_Transpose(self, node):
		src, permref = self.inputs(node)
		t = self.get(src)
		perm = [int(p) for p in self.const(permref)]
		invp = _inv(perm)
		out = Tensor(t.name, [t.shape[p] for p in perm], [invp[l] for l in t.layout])
		if t.pads is not None:
			out.pads = [t.pads[p] for p in perm]
			out.pad_value = getattr(t, "pad_value", 0.0)
		out.conv_node = t.conv_node
		return out

	def _pad(self, node, value):
		src, padref = self.inputs(node)[:2]
		t = self.get(src)
		p = self.const(padref).astype(np.int64).reshape(-1, 2).tolist()
		if len(p) != len(t.shape):
			raise ConvertError("%s: paddings rank mismatch" % node["name"])
		old = t.pads or [[0, 0] for _ in t.shape]
		out = Tensor(t.name, t.shape, t.layout,
			[[a[0] + b[0], a[1] + b[1]] for a, b in zip(old, p)])
		out.pad_value = value
		return out

	def op_Pad(self, node):
		return self._pad(node, 0.0)

	def op_PadV2(self, node):
		v = float(self.const(self.inputs(node)[2]))
		return self._pad(node, v)

	def _spatial(self, node):
		fmt = tg.attr_s(node, "data_format", "NHWC")
		if fmt == "NHWC":
			return (1, 2), NHWC_AS_NCHW
		if fmt == "NCHW":
			return (2, 3), IDENT4
		raise ConvertError("%s: data_format %s" % (node["name"], fmt))

	def _window(self, node, t, sp, k, s, d, pad_value):
		"""Explicit ONNX pads [hb, wb, ha, wa] and output spatial size."""
		mode = tg.attr_s(node, "padding", "VALID")
		pend = t.pads or [[0, 0] for _ in t.shape]
		for i, (b, a) in enumerate(pend):
			if (b or a) and i not in sp:
				raise ConvertError("%s: padding of a non-spatial dim" % node["name"])
		if any(pend[i][0] or pend[i][1] for i in sp) and pad_value is not None:
			pv = getattr(t, "pad_value", 0.0)
			if pv != pad_value and not (pad_value == -np.inf and pv < -1e30):
				raise ConvertError("%s: pad value %r cannot be folded" % (node["name"], pv))
		before, after, outsz = [], [], []
		for j, ax in enumerate(sp):
			n = t.shape[ax] + pend[ax][0] + pend[ax][1]
			ke = (k[j] - 1) * d[j] + 1
			if mode == "SAME":
				o = -(-n // s[j])
				tot = max((o - 1) * s[j] + ke - n, 0)
				pb, pa = tot // 2, tot - tot // 2
			elif mode == "VALID":
				o = (n - ke) // s[j] + 1
				pb = pa = 0
			else:
				raise ConvertError("%s: padding %s" % (node["name"], mode))
			before.append(pend[ax][0] + pb)
			after.append(pend[ax][1] + pa)
			outsz.append(o)
		return before + after, outsz

	def _conv(self, node, depthwise, fused):
		ins = self.inputs(node)
		t = self.get(ins[0])
		w = self.const(ins[1]).astype(np.float32)
		sp, want = self._spatial(node)
		strides = tg.attr_list_i(node, "strides") or [1, 1, 1, 1]
		dil = tg.attr_list_i(node, "dilations") or [1, 1, 1, 1]
		s = [strides[a] for a in sp]
		d = [dil[a] for a in sp]
		kh, kw, cin, cm = w.shape
		cdim = 3 if want == NHWC_AS_NCHW else 1
		if t.shape[cdim] != cin:
			raise ConvertError("%s: input has %d channels, filter %d"
				% (node["name"], t.shape[cdim], cin))
		if depthwise:
			wo = w.reshape(kh, kw, cin * cm).transpose(2, 0, 1)[:, None, :, :]
			group, cout = cin, cin * cm
		else:
			wo = w.transpose(3, 2, 0, 1)
			group, cout = 1, cm
		pads, outsz = self._window(node, t, sp, (kh, kw), s, d, 0.0)
		x = self.ensure(Tensor(t.name, t.shape, t.layout), want)
		cin_inputs = [x, self.init(node["name"] + "_w", np.ascontiguousarray(wo))]
		acts = []
		if fused:
			ops = tg.attr_list_s(node, "fused_ops")
			if not ops or ops[0] not in ("BiasAdd", "FusedBatchNorm"):
				raise ConvertError("%s: fused ops %s" % (node["name"], ops))
			if ops[0] == "FusedBatchNorm":
				raise ConvertError("%s: FusedBatchNorm fusion not supported" % node["name"])
			bias = self.const(ins[2]).astype(np.float32).reshape(-1)
			cin_inputs.append(self.init(node["name"] + "_b", bias))
			acts = ops[1:]
		attrs = dict(kernel_shape=[kh, kw], strides=s, dilations=d, pads=pads, group=group)
		cnode, outs = self.emit("Conv", cin_inputs, node["name"], **attrs)
		shape = list(t.shape)
		for j, ax in enumerate(sp):
			shape[ax] = outsz[j]
		shape[cdim] = cout
		name = outs[0]
		for a in acts:
			name = self._act(a, name, node)
		out = Tensor(name, shape, want)
		if not acts and len(cin_inputs) == 2:
			out.conv_node = cnode
		return out

	def _act(self, act, name, node):
		if act == "Relu":
			return self.emit("Relu", [name], node["name"] + "_relu")[1][0]
		if act == "Relu6":
			return self._clip(name, 0.0, 6.0, node["name"])
		if act == "LeakyRelu":
			alpha = tg.attr_f(node, "leakyrelu_alpha", 0.2)
			return self.emit("LeakyRelu", [name], node["name"] + "_lrelu", alpha=alpha)[1][0]
		if act == "Sigmoid":
			return self.emit("Sigmoid", [name], node["name"] + "_sigm")[1][0]
		raise ConvertError("%s: fused activation %s" % (node["name"], act))

	def _clip(self, name, lo, hi, base):
		lo_n = self.init(base + "_min", np.array(lo, np.float32))
		hi_n = self.init(base + "_max", np.array(hi, np.float32))
		return self.emit("Clip", [name, lo_n, hi_n], base + "_clip")[1][0]

	def op_Conv2D(self, node):
		return self._conv(node, False, False)

	def op__FusedConv2D(self, node):
		return self._conv(node, False, True)

	def op_DepthwiseConv2dNative(self, node):
		return self._conv(node, True, False)

	def op_FusedDepthwiseConv2dNative(self, node):
		return self._conv(node, True, True)

	def _pool(self, node, op):
		t = self.get(self.inputs(node)[0])
		sp, want = self._spatial(node)
		ks = tg.attr_list_i(node, "ksize")
		st = tg.attr_list_i(node, "strides")
		k = [ks[a] for a in sp]
		s = [st[a] for a in sp]
		pads, outsz = self._window(node, t, sp, k, s, (1, 1),
			-np.inf if op == "MaxPool" else None)
		x = self.ensure(Tensor(t.name, t.shape, t.layout), want)
		attrs = dict(kernel_shape=k, strides=s, pads=pads)
		if op == "AveragePool":
			if t.pads is not None and any(b or a for b, a in t.pads):
				raise ConvertError("%s: explicit pad before AvgPool" % node["name"])
			attrs["count_include_pad"] = 0
		_, outs = self.emit(op, [x], node["name"], **attrs)
		shape = list(t.shape)
		for j, ax in enumerate(sp):
			shape[ax] = outsz[j]
		return Tensor(outs[0], shape, want)

	def op_MaxPool(self, node):
		return self._pool(node, "MaxPool")

	def op_AvgPool(self, node):
		return self._pool(node, "AveragePool")

	def op_Mean(self, node):
		src, axref = self.inputs(node)
		t = self.get(src)
		axes = sorted(int(a) % len(t.shape) for a in np.atleast_1d(self.const(axref)))
		if len(t.shape) != 4 or axes not in ([1, 2], [2, 3]):
			raise ConvertError("%s: Mean over %s is not a global pool" % (node["name"], axes))
		want = NHWC_AS_NCHW if axes == [1, 2] else IDENT4
		x = self.ensure(t, want)
		_, outs = self.emit("GlobalAveragePool", [x], node["name"])
		shape = [1 if i in axes else d for i, d in enumerate(t.shape)]
		out = Tensor(outs[0], shape, want)
		if not tg.attr_b(node, "keep_dims"):
			_, outs = self.emit("Flatten", [outs[0]], node["name"] + "_flat", axis=1)
			out = Tensor(outs[0], [d for i, d in enumerate(t.shape) if i not in axes])
		return out

	def _unary(self, node, op, **attrs):
		t = self.get(self.inputs(node)[0])
		_, outs = self.emit(op, [self.ensure(t, t.layout)], node["name"], **attrs)
		return Tensor(outs[0], t.shape, t.layout)

	def op_Relu(self, node):
		return self._unary(node, "Relu")

	def op_Sigmoid(self, node):
		return self._unary(node, "Sigmoid")

	def op_LeakyRelu(self, node):
		return self._unary(node, "LeakyRelu", alpha=tg.attr_f(node, "alpha", 0.2))

	def op_Relu6(self, node):
		t = self.get(self.inputs(node)[0])
		return Tensor(self._clip(self.ensure(t, t.layout), 0.0, 6.0, node["name"]),
			t.shape, t.layout)

	def op_Softmax(self, node):
		t = self.get(self.inputs(node)[0])
		axis = _inv(t.layout)[len(t.shape) - 1] if len(t.shape) == 4 else len(t.shape) - 1
		_, outs = self.emit("Softmax", [self.ensure(t, t.layout)], node["name"], axis=axis)
		return Tensor(outs[0], t.shape, t.layout)

	def _hard_swish_input(self, node):
		"""x when node is Mul(Mul(c, x), Relu6(Add(x, 3))) with c ~ 1/6, else None."""
		ins = self.inputs(node)
		if len(ins) != 2:
			return None
		for a, b in (ins, ins[::-1]):
			na, nb = self.nodes.get(a.split(":")[0]), self.nodes.get(b.split(":")[0])
			if not na or not nb or na["op"] != "Mul" or nb["op"] != "Relu6":
				continue
			add = self.nodes.get(self.inputs(nb)[0].split(":")[0])
			if not add or add["op"] not in ("Add", "AddV2"):
				continue
			ai = self.inputs(add)
			three = [i for i in ai if self.const_or_none(i) is not None]
			xs = [i for i in ai if self.const_or_none(i) is None]
			if len(three) != 1 or len(xs) != 1:
				continue
			if abs(float(np.asarray(self.const(three[0])).ravel()[0]) - 3.0) > 1e-3 or \
					np.asarray(self.const(three[0])).size != 1:
				continue
			mi = self.inputs(na)
			sixth = [i for i in mi if self.const_or_none(i) is not None]
			mx = [i for i in mi if self.const_or_none(i) is None]
			if len(sixth) != 1 or mx != xs or np.asarray(self.const(sixth[0])).size != 1:
				continue
			if abs(float(np.asarray(self.const(sixth[0])).ravel()[0]) - 1.0 / 6.0) > 1e-3:
				continue
			return xs[0]
		return None

	def _bcast_const(self, c, t):
		"""Constant c broadcast against TF tensor t, arranged in t's ONNX layout."""
		c = np.asarray(c, dtype=np.float32)
		if c.ndim == 0 or c.size == 1:
			return c.reshape(())
		r = len(t.shape)
		if c.ndim > r:
			raise ConvertError("constant rank %d above tensor rank %d" % (c.ndim, r))
		c = c.reshape((1,) * (r - c.ndim) + c.shape)
		return np.ascontiguousarray(c.transpose(t.layout))

	def _binary(self, node, op):
		if op == "Mul" and self.fuse_hswish:
			x = self._hard_swish_input(node)
			if x is not None:
				t = self.get(x)
				_, outs = self.emit("HardSwish", [self.ensure(t, t.layout)], node["name"])
				return Tensor(outs[0], t.shape, t.layout)
		a, b = self.inputs(node)
		ca, cb = self.const_or_none(a), self.const_or_none(b)
		if ca is not None and cb is not None:
			raise ConvertError("%s: constant-only arithmetic is not folded" % node["name"])
		if ca is not None or cb is not None:
			tref, c = (b, ca) if ca is not None else (a, cb)
			t = self.get(tref)
			cc = self._bcast_const(c, t)
			# bias add straight after a Conv: fold into the Conv bias
			if op in ("Add", "Sub") and t.conv_node is not None and ca is None and \
					self.users.get(tref.split(":")[0], 0) == 1 and \
					self._channel_vector(cc, t) is not None:
				bias = self._channel_vector(cc, t)
				if op == "Sub":
					bias = -bias
				t.conv_node.input.append(self.init(node["name"] + "_b", bias))
				return Tensor(t.name, t.shape, t.layout)
			cn = self.init(node["name"] + "_c", cc)
			x = self.ensure(t, t.layout)
			ins = [cn, x] if ca is not None else [x, cn]
			_, outs = self.emit(op, ins, node["name"])
			shape = list(np.broadcast_shapes(tuple(t.shape), np.asarray(c).shape))
			return Tensor(outs[0], shape, t.layout)
		ta, tb = self.get(a), self.get(b)
		if len(ta.shape) != len(tb.shape):
			raise ConvertError("%s: rank mismatch %s %s" % (node["name"], ta.shape, tb.shape))
		lay = ta.layout
		xa, xb = self.ensure(ta, lay), self.ensure(tb, lay)
		_, outs = self.emit(op, [xa, xb], node["name"])
		shape = list(np.broadcast_shapes(tuple(ta.shape), tuple(tb.shape)))
		return Tensor(outs[0], shape, lay)

	def _channel_vector(self, cc, t):
		"""Per-output-channel vector if cc only varies along the Conv channel axis."""
		if cc.ndim == 0:
			return None
		if cc.ndim != 4 or any(cc.shape[i] != 1 for i in (0, 2, 3)):
			return None
		# t is a Conv output in NCHW ONNX layout: channel is ONNX axis 1
		if len(t.conv_node.input) != 2:
			return None
		n = t.shape[t.layout[1]]
		v = cc.reshape(-1)
		if v.size != n:
			return None
		return v.astype(np.float32)

	def op_Add(self, node):
		return self._binary(node, "Add")

	op_AddV2 = op_Add

	def op_Mul(self, node):
		return self._binary(node, "Mul")

	def op_Sub(self, node):
		return self._binary(node, "Sub")

	def op_RealDiv(self, node):
		return self._binary(node, "Div")

	def op_BiasAdd(self, node):
		return self._binary(node, "Add")

	def op_ConcatV2(self, node):
		ins = self.inputs(node)
		axis = int(self.const(ins[-1]))
		ts = [self.get(i) for i in ins[:-1]]
		r = len(ts[0].shape)
		axis %= r
		lay = ts[0].layout
		names = [self.ensure(t, lay) for t in ts]
		oaxis = _inv(lay)[axis]
		_, outs = self.emit("Concat", names, node["name"], axis=oaxis)
		shape = list(ts[0].shape)
		shape[axis] = sum(t.shape[axis] for t in ts)
		return Tensor(outs[0], shape, lay)

	def _resize(self, node, mode):
		src, sref = self.inputs(node)
		t = self.get(src)
		size = [int(v) for v in self.const(sref)]
		if len(t.shape) != 4:
			raise ConvertError("%s: resize of rank %d" % (node["name"], len(t.shape)))
		scales = [size[0] / t.shape[1], size[1] / t.shape[2]]
		x = self.ensure(t, NHWC_AS_NCHW)
		align = tg.attr_b(node, "align_corners")
		half = tg.attr_b(node, "half_pixel_centers")
		if align:
			ctm = "align_corners"
		elif half:
			ctm = "half_pixel" if mode == "linear" else "tf_half_pixel_for_nn"
		else:
			ctm = "asymmetric"
		attrs = dict(mode=mode, coordinate_transformation_mode=ctm)
		if mode == "nearest":
			attrs["nearest_mode"] = "round_prefer_ceil" if half else "floor"
		sc = self.init(node["name"] + "_scales",
			np.array([1.0, 1.0] + scales, np.float32))
		# roi is unused by these modes: left out (empty name), so no empty tensor appears
		_, outs = self.emit("Resize", [x, "", sc], node["name"], **attrs)
		return Tensor(outs[0], [t.shape[0], size[0], size[1], t.shape[3]], NHWC_AS_NCHW)

	def op_ResizeBilinear(self, node):
		return self._resize(node, "linear")

	def op_ResizeNearestNeighbor(self, node):
		return self._resize(node, "nearest")

	def _split(self, node, t, axis, sizes):
		r = len(t.shape)
		axis %= r
		if -1 in sizes:
			k = sizes.index(-1)
			sizes[k] = t.shape[axis] - (sum(sizes) + 1)
		x = self.ensure(t, t.layout)
		sp = self.init(node["name"] + "_split", np.array(sizes, np.int64))
		_, outs = self.emit("Split", [x, sp], node["name"], nout=len(sizes),
			axis=_inv(t.layout)[axis])
		res = []
		for o, s in zip(outs, sizes):
			shape = list(t.shape)
			shape[axis] = s
			res.append(Tensor(o, shape, t.layout))
		return res

	def op_SplitV(self, node):
		src, sref, aref = self.inputs(node)
		return self._split(node, self.get(src), int(self.const(aref)),
			[int(v) for v in self.const(sref)])

	def op_Split(self, node):
		aref, src = self.inputs(node)
		t = self.get(src)
		n = tg.attr_i(node, "num_split")
		axis = int(self.const(aref)) % len(t.shape)
		if t.shape[axis] % n:
			raise ConvertError("%s: uneven split" % node["name"])
		return self._split(node, t, axis, [t.shape[axis] // n] * n)

	def op_Reshape(self, node):
		raise ConvertError("%s: Reshape depends on the input size; cut the graph before it "
			"(choose outputs upstream)" % node["name"])


def convert(nodes, consts, outputs, input_layout, size_hw, doc="", fuse_hswish=True):
	"""outputs: list of (tf_ref, onnx_name, tf_layout) with tf_layout 'nhwc' or 'nchw'."""
	cv = Converter(nodes, consts, input_layout, size_hw, fuse_hswish)
	outs = []
	for ref, oname, lay in outputs:
		t = cv.get(ref)
		if len(t.shape) != 4:
			raise ConvertError("output %s has rank %d" % (ref, len(t.shape)))
		want = NHWC_AS_NCHW if lay == "nhwc" else IDENT4
		x = cv.ensure(t, want)
		cv.onnx_nodes.append(helper.make_node("Identity", [x], [oname], name=oname))
		c = t.shape[3] if lay == "nhwc" else t.shape[1]
		outs.append(helper.make_tensor_value_info(oname, TensorProto.FLOAT,
			["N", c, "h_" + oname, "w_" + oname]))
	graph = helper.make_graph(cv.onnx_nodes, "shoal_zoo", [cv.graph_input], outs,
		initializer=list(cv.inits.values()))
	model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
		producer_name="shoal-tfjs2onnx", doc_string=doc)
	model.ir_version = 7
	return model
