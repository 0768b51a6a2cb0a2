#!/usr/bin/python3
"""PyTorch baseline of the gpu-infer benchmark (perf/README.md).

Builds a torch.nn.Module from an ONNX file (no converter package: the graph is executed node by
node with torch ops; weights become parameters), checks its float32 output against onnxruntime
(CPU) on one random input, then times it in float16, channels_last, cudnn.benchmark on, both
eagerly and replaying a CUDA graph, for every (size, batch):

    pinned host frame --H2D--> GPU --model--> outputs --D2H--> pinned host, synchronised

is the timed region, the same boundary as shoal's bench_gpu_infer (pinned staging slot in,
detections on the host out). The input is a uint8 RGB frame at the variant size (N, H, W, 3),
turned into the model's NCHW input on the GPU (cast, channels_last, the family's 1/255 scale);
--input f32 starts from a float32 NCHW tensor instead.

    torch_onnx.py --model nanodet.onnx --sizes 320,416,640 --batches 1,2,4,8,16 --runs 200 \
        --json out.json

Runs on the GPU machine with its PyTorch (/opt/torch/.venv/bin/python there); --device cpu runs
the check and eager timing on the CPU (slow; for testing the converter).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn.functional as F


def die(msg):
    print(f"torch_onnx: {msg}", file=sys.stderr)
    sys.exit(2)


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


class OnnxModule(torch.nn.Module):
    """Executes an ONNX graph with torch ops. Float initializers are parameters (so .half() and
    channels_last apply to them); integer ones and everything read at build time (pads, scales,
    split sizes, shapes) are Python values."""

    def __init__(self, model):
        super().__init__()
        g = model.graph
        self.consts = {}  # name -> numpy array (initializers and Constant nodes)
        for t in g.initializer:
            self.consts[t.name] = numpy_helper.to_array(t)
        for n in g.node:
            if n.op_type == "Constant":
                a = attrs_of(n)
                if "value" in a:
                    self.consts[n.output[0]] = numpy_helper.to_array(a["value"])
                elif "value_float" in a:
                    self.consts[n.output[0]] = np.array(a["value_float"], np.float32)
                elif "value_int" in a:
                    self.consts[n.output[0]] = np.array(a["value_int"], np.int64)
                elif "value_floats" in a:
                    self.consts[n.output[0]] = np.array(a["value_floats"], np.float32)
                elif "value_ints" in a:
                    self.consts[n.output[0]] = np.array(a["value_ints"], np.int64)
                else:
                    raise ValueError(f"Constant '{n.name}': unsupported value attribute")
        self.pidx = {}
        for name, arr in self.consts.items():
            if arr.dtype in (np.float32, np.float64, np.float16):
                self.register_parameter(f"w{len(self.pidx)}", torch.nn.Parameter(
                    torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)),
                    requires_grad=False))
                self.pidx[name] = len(self.pidx)
        self._plist = []
        self._refresh()
        init_names = set(self.consts)
        self.inputs = [i.name for i in g.input if i.name not in init_names]
        self.outputs = [o.name for o in g.output]
        self.steps = []
        for n in g.node:
            if n.op_type == "Constant":
                continue
            fn = getattr(self, "_op_" + n.op_type, None)
            if fn is None:
                raise ValueError(f"node '{n.name}': op {n.op_type} not supported by torch_onnx")
            srcs = []
            for i in n.input:
                if not i:
                    srcs.append((3, None))
                elif i in self.pidx:
                    srcs.append((1, self.pidx[i]))
                elif i in self.consts:
                    srcs.append((2, torch.from_numpy(np.array(self.consts[i], copy=True))))
                else:
                    srcs.append((0, i))
            while srcs and srcs[-1][0] == 3:
                srcs.pop()
            self.steps.append((fn(n, attrs_of(n)), srcs, list(n.input), list(n.output)))
        # last use of every value, so intermediates are dropped as soon as possible
        last = {}
        for k, (_, _, ins, _) in enumerate(self.steps):
            for i in ins:
                last[i] = k
        self.drop = [[] for _ in self.steps]
        for name, k in last.items():
            if name not in self.outputs and name not in self.pidx:
                self.drop[k].append(name)
        self._interp_cache = {}

    # ---- helpers -----------------------------------------------------------------------------
    def const(self, name):
        if name not in self.consts:
            raise ValueError(f"input '{name}' must be a constant here")
        return self.consts[name]

    def _refresh(self):
        self._plist = [getattr(self, f"w{i}") for i in range(len(self.pidx))]

    def _apply(self, fn, *a, **kw):
        r = super()._apply(fn, *a, **kw)
        self._refresh()
        return r

    def n_weights(self):
        return sum(p.numel() for p in self._plist)

    # ---- ops: each returns fn(*inputs) -> output or tuple of outputs ----------------------------
    def _op_Identity(self, n, a):
        return lambda x: x

    def _op_Conv(self, n, a):
        w = self.consts[n.input[1]]
        k = list(a.get("kernel_shape", w.shape[2:]))
        if len(k) != 2:
            raise ValueError(f"Conv '{n.name}': only 2-D convolutions")
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        groups = a.get("group", 1)
        pads = list(a.get("pads", [0, 0, 0, 0]))
        auto = _s(a.get("auto_pad", "NOTSET"))
        if auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto != "NOTSET":
            raise ValueError(f"Conv '{n.name}': auto_pad {auto} not supported")
        top, left, bottom, right = pads
        if top == bottom and left == right:
            pad_fn, padding = None, (top, left)
        else:
            pad_fn, padding = (left, right, top, bottom), (0, 0)

        def conv(x, wt, b=None):
            if pad_fn is not None:
                x = F.pad(x, pad_fn)
            return F.conv2d(x, wt, b, strides, padding, dil, groups)
        return conv

    def _pool(self, n, a, kind):
        k = tuple(a["kernel_shape"])
        strides = tuple(a.get("strides", [1] * len(k)))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        ceil = bool(a.get("ceil_mode", 0))
        if _s(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise ValueError(f"{n.op_type} '{n.name}': auto_pad not supported")
        top, left, bottom, right = pads
        sym = top == bottom and left == right and 2 * top <= k[0] and 2 * left <= k[1]
        if kind == "max":
            dil = tuple(a.get("dilations", [1, 1]))

            def mp(x):
                if sym:
                    return F.max_pool2d(x, k, strides, (top, left), dil, ceil)
                x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
                return F.max_pool2d(x, k, strides, 0, dil, ceil)
            return mp
        cip = bool(a.get("count_include_pad", 0))
        if not sym:
            raise ValueError(f"AveragePool '{n.name}': asymmetric pads not supported")
        return lambda x: F.avg_pool2d(x, k, strides, (top, left), ceil, cip)

    def _op_MaxPool(self, n, a):
        return self._pool(n, a, "max")

    def _op_AveragePool(self, n, a):
        return self._pool(n, a, "avg")

    def _op_GlobalAveragePool(self, n, a):
        return lambda x: x.mean(dim=(2, 3), keepdim=True)

    def _op_GlobalMaxPool(self, n, a):
        return lambda x: torch.amax(x, dim=(2, 3), keepdim=True)

    def _op_Relu(self, n, a):
        return F.relu

    def _op_LeakyRelu(self, n, a):
        alpha = a.get("alpha", 0.01)
        return lambda x: F.leaky_relu(x, alpha)

    def _op_Sigmoid(self, n, a):
        return torch.sigmoid

    def _op_Tanh(self, n, a):
        return torch.tanh

    def _op_HardSwish(self, n, a):
        return F.hardswish

    def _op_HardSigmoid(self, n, a):
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
            return F.hardsigmoid
        return lambda x: torch.clamp(x * alpha + beta, 0.0, 1.0)

    def _op_Clip(self, n, a):
        lo, hi = a.get("min"), a.get("max")  # opset < 11
        if len(n.input) > 1 and n.input[1]:
            lo = float(self.const(n.input[1]))
        if len(n.input) > 2 and n.input[2]:
            hi = float(self.const(n.input[2]))
        if lo == 0.0 and hi == 6.0:
            return lambda x, *_: F.relu6(x)
        return lambda x, *_: torch.clamp(x, lo, hi)

    def _op_Add(self, n, a):
        return torch.add

    def _op_Sub(self, n, a):
        return torch.sub

    def _op_Mul(self, n, a):
        return torch.mul

    def _op_Div(self, n, a):
        return torch.div

    def _op_Concat(self, n, a):
        axis = a["axis"]
        return lambda *xs: torch.cat(xs, dim=axis)

    def _op_Split(self, n, a):
        axis = a.get("axis", 0)
        if len(n.input) > 1 and n.input[1]:
            sizes = [int(v) for v in self.const(n.input[1])]
        elif "split" in a:
            sizes = list(a["split"])
        else:
            parts = a.get("num_outputs", len(n.output))

            def split_even(x, *_):
                d = x.shape[axis]
                c = -(-d // parts)
                return tuple(torch.split(x, c, dim=axis))
            return split_even
        return lambda x, *_: tuple(torch.split(x, sizes, dim=axis))

    def _op_Softmax(self, n, a):
        axis = a.get("axis", -1)
        return lambda x: torch.softmax(x, dim=axis)

    def _op_Transpose(self, n, a):
        perm = a.get("perm")
        return lambda x: x.permute(*(perm if perm is not None else range(x.dim() - 1, -1, -1)))

    def _op_Reshape(self, n, a):
        def reshape(x, shape):
            shp = [int(v) for v in (shape.tolist() if torch.is_tensor(shape) else shape)]
            shp = [x.shape[i] if v == 0 else v for i, v in enumerate(shp)]
            return x.reshape(shp)
        return reshape

    def _op_Flatten(self, n, a):
        axis = a.get("axis", 1)
        return lambda x: x.reshape(int(np.prod(x.shape[:axis])), -1)

    def _axes(self, n, a):
        if "axes" in a:
            return [int(v) for v in a["axes"]]
        if len(n.input) > 1 and n.input[1]:
            return [int(v) for v in self.const(n.input[1])]
        return None

    def _op_Squeeze(self, n, a):
        axes = self._axes(n, a)

        def squeeze(x, *_):
            if axes is None:
                return x.squeeze()
            for ax in sorted((v % x.dim() for v in axes), reverse=True):
                x = x.squeeze(ax)
            return x
        return squeeze

    def _op_Unsqueeze(self, n, a):
        axes = self._axes(n, a)

        def unsqueeze(x, *_):
            r = x.dim() + len(axes)
            for ax in sorted(v % r for v in axes):
                x = x.unsqueeze(ax)
            return x
        return unsqueeze

    def _op_Slice(self, n, a):
        def arr(i):
            return [int(v) for v in self.const(n.input[i])] if len(n.input) > i and n.input[i] \
                else None
        if "starts" in a:  # opset < 10
            starts, ends, axes, steps = list(a["starts"]), list(a["ends"]), a.get("axes"), None
        else:
            starts, ends, axes, steps = arr(1), arr(2), arr(3), arr(4)

        def slc(x, *_):
            ax = axes if axes is not None else list(range(len(starts)))
            st = steps if steps is not None else [1] * len(starts)
            idx = [slice(None)] * x.dim()
            for s, e, k, p in zip(starts, ends, ax, st):
                if p != 1:
                    raise ValueError("Slice: only step 1 supported")
                d = x.shape[k]
                s = max(0, min(d, s + d if s < 0 else s))
                e = max(0, min(d, e + d if e < 0 else e))
                idx[k] = slice(s, e)
            return x[tuple(idx)]
        return slc

    def _op_Shape(self, n, a):
        return lambda x: torch.tensor(list(x.shape), dtype=torch.int64)

    def _op_Gather(self, n, a):
        axis = a.get("axis", 0)

        def gather(x, ind):
            if not torch.is_tensor(ind):
                ind = torch.as_tensor(ind)
            ind = ind.to(x.device)
            ind = torch.where(ind < 0, ind + x.shape[axis], ind)
            out = torch.index_select(x, axis, ind.reshape(-1))
            return out.reshape(list(x.shape[:axis]) + list(ind.shape) + list(x.shape[axis + 1:]))
        return gather

    def _op_Resize(self, n, a):
        mode = _s(a.get("mode", "nearest"))
        ctm = _s(a.get("coordinate_transformation_mode", "half_pixel"))
        nearest_mode = _s(a.get("nearest_mode", "round_prefer_floor"))
        scales = sizes = None
        if len(n.input) > 2 and n.input[2] and self.const(n.input[2]).size:
            scales = [float(v) for v in self.const(n.input[2])]
        if len(n.input) > 3 and n.input[3]:
            sizes = [int(v) for v in self.const(n.input[3])]
        if scales is not None and (scales[0] != 1 or scales[1] != 1):
            raise ValueError(f"Resize '{n.name}': only spatial scales")
        if sizes is not None:
            sizes = sizes[2:]
        sc = scales[2:] if scales is not None else None

        def out_hw(x):
            if sizes is not None:
                return sizes
            return [int(math.floor(x.shape[2 + i] * sc[i])) for i in range(2)]

        if mode == "nearest":
            if ctm != "asymmetric" or nearest_mode != "floor":
                # torch 'nearest' is asymmetric + floor; 'nearest-exact' is half_pixel + round
                if ctm == "half_pixel" and nearest_mode in ("round_prefer_ceil",):
                    return lambda x, *_: F.interpolate(x, size=out_hw(x), mode="nearest-exact")
                if not (sc is not None and all(float(s).is_integer() for s in sc)):
                    raise ValueError(f"Resize '{n.name}': nearest {ctm}/{nearest_mode} "
                                     "only for integer scales")
            # integer up-scaling: every mode picks the same source pixel
            return lambda x, *_: F.interpolate(x, size=out_hw(x), mode="nearest")
        if mode != "linear":
            raise ValueError(f"Resize '{n.name}': mode {mode} not supported")
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            if sc is not None:
                return lambda x, *_: F.interpolate(x, scale_factor=tuple(sc), mode="bilinear",
                                                   align_corners=False,
                                                   recompute_scale_factor=False)
            return lambda x, *_: F.interpolate(x, size=sizes, mode="bilinear",
                                               align_corners=False)
        if ctm == "align_corners":
            return lambda x, *_: F.interpolate(x, size=out_hw(x), mode="bilinear",
                                               align_corners=True)
        if ctm == "asymmetric":
            def asym(x, *_):
                oh, ow = out_hw(x)
                sh = sc[0] if sc is not None else oh / x.shape[2]
                sw = sc[1] if sc is not None else ow / x.shape[3]
                x = self._lerp_axis(x, 2, oh, sh)
                return self._lerp_axis(x, 3, ow, sw)
            return asym
        raise ValueError(f"Resize '{n.name}': coordinate mode {ctm} not supported")

    def _lerp_axis(self, x, dim, out, scale):
        """Linear resampling along one axis with asymmetric coordinates: src = o / scale."""
        n_in = x.shape[dim]
        key = (dim, n_in, out, scale, x.device, x.dtype)
        c = self._interp_cache.get(key)
        if c is None:
            src = np.arange(out, dtype=np.float64) / scale
            i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
            i1 = np.minimum(i0 + 1, n_in - 1)
            w = np.clip(src - i0, 0.0, 1.0)
            shape = [1] * x.dim()
            shape[dim] = out
            c = (torch.from_numpy(i0).to(x.device), torch.from_numpy(i1).to(x.device),
                 torch.from_numpy(w.astype(np.float32)).to(x.device, x.dtype).reshape(shape))
            self._interp_cache[key] = c
        i0, i1, w = c
        a = torch.index_select(x, dim, i0)
        b = torch.index_select(x, dim, i1)
        return torch.lerp(a, b, w)

    # ---- run -------------------------------------------------------------------------------------
    def forward(self, *xs):
        env = dict(zip(self.inputs, xs))
        pl = self._plist
        for k, (fn, srcs, _, outs) in enumerate(self.steps):
            args = [env[v] if t == 0 else pl[v] if t == 1 else v for t, v in srcs]
            r = fn(*args)
            if len(outs) == 1:
                env[outs[0]] = r
            else:
                for name, v in zip(outs, r):
                    if name:
                        env[name] = v
            for name in self.drop[k]:
                env.pop(name, None)
        return tuple(env[o] for o in self.outputs)


def family_scale(model_path, override):
    if override is not None:
        return override
    # models/zoo/README.md: nanodet takes rgb / 255, centernet takes rgb (0..255)
    return 1.0 / 255.0 if "nanodet" in os.path.basename(model_path) else 1.0


def set_tf32(conv, matmul=None):
    """Sets TF32 for cuDNN convolutions and matmuls; returns the previous settings."""
    matmul = conv if matmul is None else matmul
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        torch.backends.cudnn.allow_tf32 = conv
        torch.backends.cuda.matmul.allow_tf32 = matmul
    except RuntimeError as e:  # a build that only takes the newer fp32_precision settings
        print(f"torch_onnx: cannot switch TF32 ({e}): the float32 check may use it")
    return old


def check_against_ort(path, module, size, scale, device, log):
    """float32 (TF32 off) and float16 outputs against onnxruntime CPU, one random input."""
    try:
        import onnxruntime as ort
    except ImportError:
        log("check: onnxruntime not importable: skipped")
        return {"skipped": "no onnxruntime"}
    rng = np.random.default_rng(1)
    x = (rng.uniform(0, 255, size=(2, 3, size, size)) * scale).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})
    names = [o.name for o in sess.get_outputs()]
    res = {"size": size, "batch": 2, "outputs": {}}
    old = set_tf32(False)
    try:
        m32 = module.float().to(device)
        with torch.no_grad():
            out32 = [o.float().cpu().numpy() for o in m32(torch.from_numpy(x).to(device))]
        m16 = module.half().to(device, memory_format=torch.channels_last)
        xin = torch.from_numpy(x).to(device).half().contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            out16 = [o.float().cpu().numpy() for o in m16(xin)] if device != "cpu" else None
    finally:
        set_tf32(*old)
    worst32 = worst16 = 0.0
    for i, name in enumerate(names):
        r = ref[i]
        den = float(np.abs(r).max()) or 1.0
        if out32[i].shape != r.shape:
            raise SystemExit(f"torch_onnx: check: output {name} shape {out32[i].shape} "
                             f"!= onnxruntime {r.shape}")
        e32 = float(np.abs(out32[i] - r).max()) / den
        e16 = float(np.abs(out16[i] - r).max()) / den if out16 is not None else None
        res["outputs"][name] = {"fp32_rel": e32, "fp16_rel": e16}
        worst32 = max(worst32, e32)
        worst16 = max(worst16, e16) if e16 is not None else None
    res["fp32_max_rel"], res["fp16_max_rel"] = worst32, worst16
    res["pass"] = worst32 <= 1e-3
    log(f"check vs onnxruntime CPU ({size}x{size}, batch 2): fp32 max|d|/max|ref| = {worst32:.2e}"
        f" ({'ok' if res['pass'] else 'FAIL'}), fp16 = "
        f"{'not run (CPU)' if worst16 is None else format(worst16, '.2e')}")
    return res


def percentile(v, q):
    s = sorted(v)
    return s[min(len(s) - 1, max(0, int(math.ceil(q / 100.0 * len(s))) - 1))]


def host_like(t, pin):
    """Host tensor for the D2H copy of t: same strides when t is dense (one plain memcpy)."""
    if t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last):
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cpu",
                                   pin_memory=pin)
    return torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=pin)


def time_config(module, size, batch, mode, args, dtype, device, scale):
    """One (size, batch, eager|graph) measurement: returns the result dict."""
    cl = torch.channels_last
    if args.input == "u8":
        host_in = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
        dev_in = torch.empty((batch, size, size, 3), dtype=torch.uint8, device=device)

        def prologue():
            x = dev_in.permute(0, 3, 1, 2).to(dtype)  # NHWC bytes = channels_last NCHW
            return x * scale if scale != 1.0 else x
    else:
        host_in = torch.rand((batch, 3, size, size)) * (255.0 * scale)
        dev_in = torch.empty((batch, 3, size, size), device=device)

        def prologue():
            return dev_in.to(dtype, memory_format=cl)
    if device != "cpu":
        host_in = host_in.pin_memory()

    def fwd():
        return module(prologue())

    with torch.inference_mode():
        dev_in.copy_(host_in)
        outs = fwd()
        # host copies with the outputs' own strides: the D2H copy is then one plain memcpy
        host_outs = [host_like(o, device != "cpu") for o in outs] if args.d2h == "all" else []
        if mode == "graph":
            cur = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(cur)
            with torch.cuda.stream(side):
                for _ in range(3):
                    fwd()
            cur.wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_outs = fwd()

            def step():
                graph.replay()
                return static_outs
        else:
            step = fwd
        sync = torch.cuda.current_stream().synchronize if device != "cpu" else (lambda: None)
        lat = []
        t_all = 0.0
        for it in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            dev_in.copy_(host_in, non_blocking=True)
            res = step()
            for h, o in zip(host_outs, res):
                h.copy_(o, non_blocking=True)
            sync()
            t1 = time.perf_counter()
            if it >= args.warmup:
                lat.append((t1 - t0) * 1e3)
                t_all += t1 - t0
    return {"size": size, "batch": batch, "mode": mode, "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99), "mean_ms": t_all * 1e3 / len(lat),
            "fps": batch * len(lat) / t_all}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="ONNX file (a zoo family)")
    ap.add_argument("--sizes", default="320,416,640", help="square input sizes, comma separated")
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per configuration")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--modes", default="eager,graph")
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--input", choices=["u8", "f32"], default="u8",
                    help="pinned input: uint8 NHWC frame (default) or float32 NCHW tensor")
    ap.add_argument("--scale", type=float, default=None,
                    help="input scale (default: 1/255 for nanodet, 1 otherwise)")
    ap.add_argument("--d2h", choices=["all", "none"], default="all",
                    help="copy every output map back to pinned host memory (default) or none")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--check-size", type=int, default=320)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()

    def log(msg):
        print(msg, flush=True)

    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        die("--sizes/--batches want comma-separated integers")
    if not sizes or not batches or min(sizes + batches) < 1 or args.runs < 1:
        die("--sizes, --batches and --runs want positive values")
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("eager", "graph") for m in modes):
        die("--modes takes eager and/or graph")
    device = args.device
    if device != "cpu" and not torch.cuda.is_available():
        die("no CUDA device visible to PyTorch")
    if device == "cpu":
        modes = [m for m in modes if m == "eager"]
        if args.dtype == "fp16":
            print("torch_onnx: float16 convolutions need the GPU: timing float32 on the CPU")
            args.dtype = "fp32"
    try:
        model = onnx.load(args.model)
    except Exception as e:  # noqa: BLE001 - any load error is reported the same way
        die(f"cannot load {args.model}: {e}")
    try:
        module = OnnxModule(model)
    except ValueError as e:
        die(f"{args.model}: {e}")
    module.eval()
    name = os.path.splitext(os.path.basename(args.model))[0]
    scale = family_scale(args.model, args.scale)
    torch.backends.cudnn.benchmark = True
    doc = {"model": name, "torch": torch.__version__, "dtype": args.dtype,
           "input": args.input, "d2h": args.d2h, "runs": args.runs,
           "device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu",
           "cudnn": torch.backends.cudnn.version() if device != "cpu" else None,
           "results": []}
    log(f"{name}: torch {torch.__version__}, {doc['device']}, cudnn {doc['cudnn']}, "
        f"{len(module.steps)} nodes, {module.n_weights()} weights")
    if not args.no_check:
        doc["check"] = check_against_ort(args.model, module, args.check_size, scale, device, log)
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    module = module.to(device=device, dtype=dtype)
    if device != "cpu":
        module = module.to(memory_format=torch.channels_last)
    log(f"{'size':>5} {'batch':>5} {'mode':>6} {'p50 ms':>8} {'p99 ms':>8} {'fps':>9}")
    for size in sizes:
        for batch in batches:
            for mode in modes:
                r = time_config(module, size, batch, mode, args, dtype, device, scale)
                doc["results"].append(r)
                log(f"{size:5d} {batch:5d} {mode:>6} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
                    f"{r['fps']:9.1f}")
            if device != "cpu":
                torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if doc.get("check", {}).get("pass") is False:
        die("fp32 output differs from onnxruntime")


if __name__ == "__main__":
    main()
