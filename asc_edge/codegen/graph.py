"""A small int8 IR built from a full-integer ``.tflite`` flatbuffer, ready for C code generation.

:func:`build_graph` turns :func:`~asc_edge.export.tflite.inspect_tflite`'s operator list (plus the
constant buffers and full per-channel scale arrays, read here with the ``tflite`` package) into a
:class:`Graph`: a list of :class:`Layer` (one ``firmware/nn`` kernel call each, with integer
parameters computed exactly like TFLite(-Micro)'s ``Prepare`` via :mod:`asc_edge.codegen.quant`)
and a table of :class:`Tensor` (activation buffers; shapes NHWC, sizes in bytes, quantisation).

Rewrites (all exact):

* ``PAD`` (H/W only, pad value = zero point) followed by its only consumer ``CONV_2D`` /
  ``DEPTHWISE_CONV_2D`` → the convolution's explicit ``pad_top``/``pad_left`` (the kernels skip
  out-of-image taps, which equals padding with the input zero point, because ``x + input_offset``
  is then 0). The PAD output tensor disappears.
* Grouped ``CONV_2D`` with ``groups == in_channels`` (filter ``(C_out, kh, kw, 1)``) → the
  depthwise kernel with ``ch_mult = C_out / C_in`` (filter transposed to ``(1, kh, kw, C_out)``,
  per-channel scales in the same order).
* ``RESHAPE`` → an alias of its input buffer (no copy, same bytes in NHWC/row-major order).

Anything else that the kernels cannot express raises :class:`~asc_edge.errors.ExportError` naming
the operator, its index in the ``.tflite`` and a hint.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError

from . import quant

__all__ = ["Tensor", "Layer", "Graph", "build_graph", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "AVERAGE_POOL_2D", "STRIDED_SLICE",
                 "CONCATENATION", "MEAN", "RESHAPE", "FULLY_CONNECTED")


@dataclass
class Tensor:
    """An int8 activation tensor. ``shape``: NHWC (rank ≤ 4 as in the .tflite); ``size``: bytes;
    ``alias_of``: tensor id whose buffer this one shares (RESHAPE), else None."""
    id: int
    name: str
    shape: list
    scale: float
    zero_point: int
    alias_of: int | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def dims(self) -> tuple:
        """(n, h, w, c) as the kernels' ``asc_nn_dims`` (rank-2 ``[n, c]`` → ``(n, 1, 1, c)``)."""
        s = [int(v) for v in self.shape]
        if len(s) == 2:
            s = [s[0], 1, 1, s[1]]
        while len(s) < 4:
            s = [1] + s
        if len(s) != 4:
            raise ExportError(f"tensor {self.name!r} has rank {len(self.shape)}", hint="only rank ≤ 4 is supported")
        return tuple(s)


@dataclass
class Layer:
    """One kernel call. ``kind``: conv / conv1x1 / depthwise / add / mul / avgpool / mean /
    strided_slice / concat / fc / reshape (alias, no call); ``inputs`` / ``output``: tensor ids
    (-1 = none); ``consts``: name → numpy array (int8 filters, int32 bias / multipliers / shifts,
    int8 scalar operands); ``params``: integers for the parameter struct; ``op_indices``: the
    .tflite operators this layer implements (a folded PAD + its conv)."""
    index: int
    kind: str
    op: str
    op_indices: list
    inputs: list
    output: int
    params: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict
    layers: list
    input: int
    output: int
    source_ops: int
    rewrites: dict = field(default_factory=dict)
    source_sha256: str = ""

    def root(self, tid: int) -> int:
        """The tensor id that owns ``tid``'s buffer (follows RESHAPE aliases)."""
        while self.tensors[tid].alias_of is not None:
            tid = self.tensors[tid].alias_of
        return tid


def _flatbuffer_consts(buf: bytes) -> tuple[dict, dict]:
    """tensor index → constant ndarray (dtype from the schema, shape applied); tensor index →
    full float32 scale array and int zero points (per-channel)."""
    import tflite

    m = tflite.Model.GetRootAsModel(buf, 0)
    sg = m.Subgraphs(0)
    np_types = {tflite.TensorType.INT8: np.int8, tflite.TensorType.INT32: np.int32,
                tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT16: np.int16,
                tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.INT64: np.int64}
    consts, qparams = {}, {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        b = m.Buffers(t.Buffer())
        shape = [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []
        if t.Buffer() > 0 and b is not None and b.DataLength() > 0 and t.Type() in np_types:
            consts[i] = b.DataAsNumpy().view(np_types[t.Type()]).reshape(shape).copy()
        q = t.Quantization()
        if q is not None and q.ScaleLength() > 0:
            qparams[i] = (q.ScaleAsNumpy().astype(np.float32).copy(),
                          q.ZeroPointAsNumpy().astype(np.int64).copy() if q.ZeroPointLength()
                          else np.zeros(q.ScaleLength(), np.int64))
    return consts, qparams


def _fail(op: dict, what: str, hint: str):
    raise ExportError(f"operator {op['index']} ({op['op']}): {what}", hint=hint)


def _slice_begin(op: dict, in_shape: list, out_shape: list) -> tuple[list, list]:
    """TFLite StridedSlice begin/stride per dim for a 4-D input (masks applied; no ellipsis /
    new-axis / shrink). Returns (begin, stride) and checks the count against ``out_shape``."""
    o = op["options"]
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("shrink_axis_mask"):
        _fail(op, "ellipsis / new-axis / shrink-axis masks", "only plain 4-D slices are supported")
    vals = [t.get("values") for t in op["inputs"][1:4]]
    if any(v is None for v in vals) or len(in_shape) != 4:
        _fail(op, "non-constant begin/end/strides or a non-4-D input", "export a static graph")
    begin, end, strides = (list(v) for v in vals)
    b_out, s_out = [], []
    for k in range(4):
        d, s = in_shape[k], strides[k]
        if s == 0:
            _fail(op, "stride 0", "invalid model")
        if o.get("begin_mask", 0) >> k & 1:
            b = 0 if s > 0 else d - 1
        else:
            b = begin[k] + d if begin[k] < 0 else begin[k]
            b = min(max(b, 0), d - 1) if s < 0 else min(max(b, 0), d)
        if o.get("end_mask", 0) >> k & 1:
            e = d if s > 0 else -1
        else:
            e = end[k] + d if end[k] < 0 else end[k]
            e = min(max(e, -1), d - 1) if s < 0 else min(max(e, 0), d)
        n = max(0, math.ceil((e - b) / s))
        if n != out_shape[k]:
            _fail(op, f"slice count {n} on dim {k} differs from the output shape {out_shape}",
                  "unexpected STRIDED_SLICE semantics; report the model")
        b_out.append(int(b))
        s_out.append(int(s))
    return b_out, s_out


def build_graph(tflite_model) -> Graph:
    """Build the IR from a full-integer int8 ``.tflite`` (path or bytes).

    Returns a :class:`Graph` whose layers are in the .tflite execution order (folded PADs and
    aliasing RESHAPEs removed from the kernel sequence; a RESHAPE stays as a ``reshape`` layer
    with no call, so its output can still be reported per layer).

    Raises:
        ExportError: not a TFLite file; an operator outside :data:`SUPPORTED_OPS` or with
            parameters the kernels do not support (the message names the operator and its index);
            non-int8 activations; more than one input/output.
    """
    from asc_edge.export.tflite import inspect_tflite

    buf = Path(tflite_model).read_bytes() if isinstance(tflite_model, (str, Path)) else bytes(tflite_model)
    info = inspect_tflite(buf)
    consts, qparams = _flatbuffer_consts(buf)
    if info["n_inputs"] != 1 or info["n_outputs"] != 1:
        raise ExportError(f"{info['n_inputs']} inputs / {info['n_outputs']} outputs", hint="export a single-input classifier")
    tensors: dict[int, Tensor] = {}

    def act_tensor(t: dict, op: dict) -> int:
        if t.get("tensor", -1) < 0:
            _fail(op, "missing tensor", "invalid model")
        if t["dtype"] != "INT8" or "scale" not in t:
            _fail(op, f"tensor {t.get('name')!r} is {t['dtype']}, not quantised int8",
                  "convert with full-integer quantisation (convert_int8_tflite)")
        if t["tensor"] not in tensors:
            tensors[t["tensor"]] = Tensor(t["tensor"], t["name"], list(t["shape"]), float(t["scale"]),
                                          int(t["zero_point"]))
        return t["tensor"]

    g_in = act_tensor(info["input"], {"index": -1, "op": "INPUT"})
    consumers: dict[int, list[int]] = {}
    for op in info["ops"]:
        for t in op["inputs"]:
            consumers.setdefault(t.get("tensor", -1), []).append(op["index"])
    ops = info["ops"]
    folded_pad: dict[int, tuple[int, int, int]] = {}  # conv op index → (pad_top, pad_left, source tensor)
    layers: list[Layer] = []
    rewrites = {"pad_folded": [], "grouped_as_depthwise": [], "reshape_alias": []}

    for op in ops:
        name = op["op"]
        if name not in SUPPORTED_OPS:
            _fail(op, "unsupported operator", f"supported: {', '.join(SUPPORTED_OPS)}; change the model "
                                               "or add a kernel to firmware/nn and graph.py")
        out = op["outputs"][0]
        if name == "PAD":
            pads = op["inputs"][1].get("values")
            users = consumers.get(out["tensor"], [])
            nxt = ops[users[0]] if len(users) == 1 else None
            if pads is None or len(pads) != 4:
                _fail(op, "non-constant or non-4-D paddings", "export a static graph")
            if pads[0] != [0, 0] or pads[3] != [0, 0]:
                _fail(op, f"padding {pads} on batch/channels", "only H/W padding can be folded")
            if nxt is None or nxt["op"] not in ("CONV_2D", "DEPTHWISE_CONV_2D") or nxt["inputs"][0]["tensor"] != out["tensor"]:
                _fail(op, "PAD not followed by its only consumer CONV_2D / DEPTHWISE_CONV_2D",
                      "only PAD → convolution is supported (asc_pad_s8 exists but is not wired in)")
            src = op["inputs"][0]
            if src.get("scale") != out.get("scale") or src.get("zero_point") != out.get("zero_point"):
                _fail(op, "PAD changes quantisation", "invalid int8 PAD")
            act_tensor(src, op)
            folded_pad[nxt["index"]] = (pads[1][0], pads[2][0], src["tensor"])
            rewrites["pad_folded"].append(op["index"])
            continue

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, w = op["inputs"][0], op["inputs"][1]
            b = op["inputs"][2] if len(op["inputs"]) > 2 else {"tensor": -1}
            o = op["options"]
            pad_extra_t = pad_extra_l = 0
            idx = [op["index"]]
            if op["index"] in folded_pad:
                pad_extra_t, pad_extra_l, src = folded_pad[op["index"]]
                idx = [op["index"] - 1, op["index"]] if ops[op["index"] - 1]["op"] == "PAD" else idx
                x_id = src
            else:
                x_id = act_tensor(x, op)
            y_id = act_tensor(out, op)
            xs, ys = x["shape"], out["shape"]  # x: the (possibly padded) conv input
            if w["tensor"] not in consts or w["dtype"] != "INT8":
                _fail(op, "filter is not a constant int8 tensor", "full-integer quantisation needed")
            filt = consts[w["tensor"]]
            wscales, wzps = qparams.get(w["tensor"], (None, None))
            if wscales is None or np.any(wzps != 0):
                _fail(op, "filter not symmetric per-channel int8", "convert with -qt per-channel")
            kh, kw = filt.shape[1], filt.shape[2]
            sh, sw = o["stride"]
            dh, dw = o.get("dilation", [1, 1])
            if o["padding"] == "SAME":
                pt, _ = quant.tflite_padding(xs[1], kh, sh, dh, "SAME")
                pl, _ = quant.tflite_padding(xs[2], kw, sw, dw, "SAME")
            else:
                pt = pl = 0
            in_ch = tensors[x_id].dims[3]
            kind = "conv"
            ch_mult = int(o.get("depth_multiplier", 1) or 1)
            if name == "CONV_2D":
                groups = in_ch // filt.shape[3]
                if groups == 1:
                    kind = "conv"
                elif filt.shape[3] == 1 and filt.shape[0] % in_ch == 0:
                    kind = "depthwise"
                    ch_mult = filt.shape[0] // in_ch
                    filt = np.ascontiguousarray(filt.transpose(3, 1, 2, 0))  # (1, kh, kw, C_out)
                    rewrites["grouped_as_depthwise"].append(op["index"])
                else:
                    _fail(op, f"grouped convolution with groups={groups} ≠ in_channels", "use groups=1 or depthwise")
                n_out = ys[3]
            else:
                kind = "depthwise"
                n_out = filt.shape[3]
                if n_out != in_ch * ch_mult:
                    _fail(op, f"{n_out} output channels ≠ {in_ch}·{ch_mult}", "invalid depthwise filter")
            scales = np.broadcast_to(wscales, (n_out,)) if len(wscales) == 1 else wscales
            if len(scales) != n_out:
                _fail(op, f"{len(wscales)} filter scales for {n_out} output channels", "per-channel quantisation needed")
            yq = tensors[y_id]
            mult, shift = quant.conv_multipliers(tensors[x_id].scale, scales, yq.scale)
            bias = consts.get(b["tensor"]) if b.get("tensor", -1) >= 0 else None
            if b.get("tensor", -1) >= 0 and (bias is None or bias.dtype != np.int32):
                _fail(op, "bias is not a constant int32 tensor", "full-integer quantisation needed")
            lo, hi = quant.activation_range(o.get("activation"), yq.scale, yq.zero_point)
            if kind == "conv" and kh == 1 and kw == 1 and pt + pad_extra_t == 0 and pl + pad_extra_l == 0 and (dh, dw) == (1, 1):
                kind = "conv1x1"
            layers.append(Layer(len(layers), kind, name, idx, [x_id], y_id, params=dict(
                input_offset=-tensors[x_id].zero_point, output_offset=yq.zero_point, stride=(sh, sw),
                padding=(pt + pad_extra_t, pl + pad_extra_l), dilation=(dh, dw), activation=(lo, hi),
                ch_mult=ch_mult, filter_dims=tuple(int(v) for v in filt.shape)),
                consts=dict(filter=np.ascontiguousarray(filt, dtype=np.int8),
                            bias=None if bias is None else bias.astype(np.int32),
                            multiplier=mult, shift=shift)))
            continue

        if name == "FULLY_CONNECTED":
            x_id, y_id = act_tensor(op["inputs"][0], op), act_tensor(out, op)
            w = op["inputs"][1]
            b = op["inputs"][2] if len(op["inputs"]) > 2 else {"tensor": -1}
            filt = consts.get(w["tensor"])
            if filt is None or filt.dtype != np.int8 or filt.ndim != 2:
                _fail(op, "filter is not a constant 2-D int8 tensor", "full-integer quantisation needed")
            wscales, wzps = qparams[w["tensor"]]
            yq = tensors[y_id]
            mult, shift = quant.conv_multipliers(tensors[x_id].scale, wscales, yq.scale)
            lo, hi = quant.activation_range(op["options"].get("activation"), yq.scale, yq.zero_point)
            bias = consts.get(b["tensor"]) if b.get("tensor", -1) >= 0 else None
            layers.append(Layer(len(layers), "fc", name, [op["index"]], [x_id], y_id, params=dict(
                input_offset=-tensors[x_id].zero_point, filter_offset=-int(wzps[0]), output_offset=yq.zero_point,
                activation=(lo, hi), per_channel=int(len(wscales) > 1), filter_dims=(filt.shape[0], 1, 1, filt.shape[1])),
                consts=dict(filter=filt, bias=None if bias is None else bias.astype(np.int32), multiplier=mult, shift=shift)))
            continue

        if name in ("ADD", "MUL"):
            ins = op["inputs"][:2]
            y_id = act_tensor(out, op)
            yq = tensors[y_id]
            ids, scal = [], []
            layer_consts = {}
            for k, t in enumerate(ins):
                if t.get("const"):
                    c = consts.get(t["tensor"])
                    if c is None or c.dtype != np.int8 or "scale" not in t:
                        _fail(op, f"constant operand {k} is not int8", "full-integer quantisation needed")
                    layer_consts[f"const{k}"] = np.ascontiguousarray(c.reshape(-1))
                    layer_consts[f"const{k}_dims"] = Tensor(-1, "", list(c.shape), t["scale"], t["zero_point"]).dims
                    ids.append(-1)
                    scal.append((float(t["scale"]), int(t["zero_point"])))
                else:
                    tid = act_tensor(t, op)
                    ids.append(tid)
                    scal.append((tensors[tid].scale, tensors[tid].zero_point))
            for k in range(2):
                d = tensors[ids[k]].dims if ids[k] >= 0 else layer_consts[f"const{k}_dims"]
                if any(a != b and a != 1 for a, b in zip(d, yq.dims)):
                    _fail(op, f"operand {k} shape {list(d)} does not broadcast to {yq.shape}", "NumPy-style 4-D broadcasting only")
            fn = quant.add_params if name == "ADD" else quant.mul_params
            p = fn(scal[0][0], scal[0][1], scal[1][0], scal[1][1], yq.scale, yq.zero_point)
            p["activation"] = quant.activation_range(op["options"].get("activation"), yq.scale, yq.zero_point)
            layers.append(Layer(len(layers), name.lower(), name, [op["index"]], ids, y_id, params=p, consts=layer_consts))
            continue

        x_id = act_tensor(op["inputs"][0], op)
        y_id = act_tensor(out, op)
        xq, yq = tensors[x_id], tensors[y_id]
        if name == "AVERAGE_POOL_2D":
            o = op["options"]
            if (xq.scale, xq.zero_point) != (yq.scale, yq.zero_point):
                _fail(op, "input and output quantisation differ", "TFLite int8 AVERAGE_POOL_2D shares them")
            fh, fw = o["filter"]
            sh, sw = o["stride"]
            pt, oh = quant.tflite_padding(xq.dims[1], fh, sh, 1, o["padding"])
            pl, ow = quant.tflite_padding(xq.dims[2], fw, sw, 1, o["padding"])
            if (oh, ow) != yq.dims[1:3]:
                _fail(op, f"output {yq.shape} ≠ computed {oh}x{ow}", "unexpected pooling geometry")
            lo, hi = quant.activation_range(o.get("activation"), yq.scale, yq.zero_point)
            layers.append(Layer(len(layers), "avgpool", name, [op["index"]], [x_id], y_id, params=dict(
                filter=(fh, fw), stride=(sh, sw), padding=(pt, pl), activation=(lo, hi))))
        elif name == "MEAN":
            axes = op["inputs"][1].get("values")
            if axes is None or sorted(int(a) % 4 for a in axes) != [1, 2] or len(xq.shape) != 4:
                _fail(op, f"MEAN over axes {axes}", "only the mean over H and W (axes 1, 2) of a 4-D tensor is supported")
            p = quant.mean_params(xq.scale, xq.zero_point, yq.scale, yq.zero_point)
            p["activation"] = (-128, 127)
            layers.append(Layer(len(layers), "mean", name, [op["index"]], [x_id], y_id, params=p))
        elif name == "STRIDED_SLICE":
            if (xq.scale, xq.zero_point) != (yq.scale, yq.zero_point):
                _fail(op, "input and output quantisation differ", "int8 STRIDED_SLICE copies bytes")
            begin, stride = _slice_begin(op, xq.shape, yq.shape)
            layers.append(Layer(len(layers), "strided_slice", name, [op["index"]], [x_id], y_id,
                                params=dict(begin=tuple(begin), stride=tuple(stride))))
        elif name == "CONCATENATION":
            ids = [act_tensor(t, op) for t in op["inputs"]]
            axis = int(op["options"].get("axis", 0))
            axis = axis + len(yq.shape) if axis < 0 else axis
            if len(yq.shape) != 4:
                _fail(op, f"rank-{len(yq.shape)} concatenation", "4-D only")
            if op["options"].get("activation") not in (None, "NONE"):
                _fail(op, "fused activation", "not supported on CONCATENATION")
            for t in ids:
                if (tensors[t].scale, tensors[t].zero_point) != (yq.scale, yq.zero_point):
                    _fail(op, "inputs with another quantisation than the output",
                          "tflite-micro copies bytes; requantising concatenation is not implemented")
            layers.append(Layer(len(layers), "concat", name, [op["index"]], ids, y_id, params=dict(axis=axis)))
        elif name == "RESHAPE":
            if (xq.scale, xq.zero_point) != (yq.scale, yq.zero_point) or xq.size != yq.size:
                _fail(op, "RESHAPE changes quantisation or size", "invalid int8 RESHAPE")
            # alias: same bytes (row-major); the planner gives both ids one buffer
            if x_id != g_in:
                yq.alias_of = x_id
                rewrites["reshape_alias"].append(op["index"])
            layers.append(Layer(len(layers), "reshape", name, [op["index"]], [x_id], y_id))
    g_out = info["output"]["tensor"]
    if g_out not in tensors:
        raise ExportError("graph output is not produced by any supported layer", hint="check the model")
    return Graph(tensors=tensors, layers=layers, input=g_in, output=g_out, source_ops=len(ops), rewrites=rewrites,
                 source_sha256=hashlib.sha256(buf).hexdigest())
