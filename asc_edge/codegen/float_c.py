"""fp16-weight float C model: ONNX (float32, BatchNorm folded) → ``model.h`` / ``model.c`` with the
weights stored as IEEE-754 half and float32 kernels (``firmware/nn_f32``), for ``asc-edge export
--precision fp16`` (KT 2024 submits its Ghost-BC-Res2Net-Snake in fp16: 2 bytes a parameter).

The Cortex-M4F has no half-precision arithmetic, so every float constant of the graph (weights,
biases, Snake's α and β, ...) is stored as binary16 in flash and expanded to float32 into a
scratch buffer of the arena right before its layer runs (``asc_f32_from_f16``, exact); the layer
computes in float32. The graph is read with the ``onnx`` library (shape inference gives every
tensor's shape); tensors stay NCHW, batch 1, as in the ONNX file, so a 1×1 convolution is
CMSIS-DSP's ``arm_mat_mult_f32``.

Supported ONNX operators (anything else is one ExportError naming it): Conv (any kernel, stride,
padding, dilation, groups), Gemm (alpha = beta = 1, transA = 0), Relu, Sigmoid, Sin, Sqrt, Clip,
Pow with the constant exponent 2, Add / Sub / Mul / Div with NumPy broadcasting, AveragePool /
MaxPool (ceil_mode 0), GlobalAveragePool, ReduceMean, Concat over channels, Resize (nearest,
asymmetric, floor: what ``F.interpolate(mode="nearest")`` exports) and the data-free
Identity / Flatten / Reshape / Squeeze / Unsqueeze / Dropout (aliases of their input's buffer).

The reference the C is checked against is the same ONNX file with every float constant rounded
to fp16 (:func:`fp16_reference_onnx`), run by ONNX Runtime: both then hold the same weights and
differ only by float32 rounding (summation order, ``arm_sin_f32``'s table interpolation,
``asc_expf``). The device build must equal the host build of the same C bit for bit.

Generated API (``model.h``; ``ASC_MODEL_FLOAT`` is defined)::

    int asc_model_invoke(const float *input, float *output, uint8_t *arena);

``input``: float32 ``(1, 1, n_mels, frames)`` log-mel, the frontend's float output as is;
``output``: ``ASC_MODEL_OUTPUT_SIZE`` float32 logits; ``arena``: ``ASC_MODEL_ARENA_SIZE`` bytes,
16-byte aligned (activations, the per-layer expanded weights and, on the device, the input and
the frontend's work area at ``ASC_MODEL_INPUT_OFFSET`` / ``ASC_MODEL_FRONTEND_WORK_OFFSET``).
"""

from __future__ import annotations

import ctypes as C
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError
from asc_edge.paths import build_root
from asc_edge.report.io import write_text_atomic

from .graph import PRE_SCRATCH_ID, Buffer
from .kernels_host import KernelError, build_shared_library
from .planner import place

__all__ = ["FloatGraph", "build_float_graph", "fp16_reference_onnx", "plan_float", "render_float_model",
           "emit_float_model", "float_graph_record", "build_host_float_model", "HostFloatModel", "F32_DIR",
           "CMSIS_DSP_F32_SOURCES", "HOST_FLOAT_CFLAGS"]

REPO_ROOT = Path(__file__).resolve().parents[2]
F32_DIR = REPO_ROOT / "firmware" / "nn_f32"
#: CMSIS-DSP sources the float kernels call (relative to the unpacked cmsisdsp tree).
CMSIS_DSP_F32_SOURCES = (
    "Source/MatrixFunctions/arm_mat_mult_f32.c",
    "Source/MatrixFunctions/arm_mat_init_f32.c",
    "Source/BasicMathFunctions/arm_dot_prod_f32.c",
    "Source/FastMathFunctions/arm_sin_f32.c",
    "Source/CommonTables/arm_common_tables.c",
)
HOST_FLOAT_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-ffp-contract=off",
                     "-DARM_MATH_LOOPUNROLL"]
BUILD_DIR = build_root() / "host_float_model"

_ALIAS_OPS = {"Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Dropout"}
_UNARY = {"Relu": "ASC_F32_RELU", "Sigmoid": "ASC_F32_SIGMOID", "Sin": "ASC_F32_SIN", "Sqrt": "ASC_F32_SQRT"}
_BINARY = {"Add": "ASC_F32_ADD", "Sub": "ASC_F32_SUB", "Mul": "ASC_F32_MUL", "Div": "ASC_F32_DIV"}


@dataclass
class FTensor:
    """An activation tensor: ``shape`` as in the ONNX graph (batch 1), ``size`` in bytes (float32)."""
    id: int
    name: str
    shape: tuple

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def size(self) -> int:
        return 4 * self.numel

    def chw(self) -> tuple:
        """``(c, h, w)`` of the shape left-padded with 1s to rank 4, batch dropped."""
        return _chw(self.shape)


@dataclass
class FLayer:
    """One kernel call: ``kind`` (the ONNX operator), activation inputs (tensor ids), the output,
    float constants (name → float32 array, stored as fp16), kernel parameters and MACs."""
    index: int
    kind: str
    name: str
    inputs: list
    output: int
    consts: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    macs: int = 0
    report_type: str = "other"
    plane: int = 0  # floats of scratch of an in-place depthwise conv

    @property
    def scratch_floats(self) -> int:
        """float32 values of scratch during the layer: its expanded constants, then the plane."""
        return int(sum(v.size for v in self.consts.values())) + self.plane


@dataclass
class FloatGraph:
    tensors: list
    layers: list
    input: int
    output: int
    alias: dict  # tensor id -> id of the tensor whose buffer it shares
    source_sha256: str

    def root(self, tid: int) -> int:
        while tid in self.alias:
            tid = self.alias[tid]
        return tid

    @property
    def n_params(self) -> int:
        return int(sum(a.size for L in self.layers for a in L.consts.values()))


def _chw(shape) -> tuple:
    s = [int(v) for v in shape]
    if len(s) > 4 or any(v < 1 for v in s):
        raise ExportError(f"tensor shape {tuple(s)} is not a batch-1 tensor of rank <= 4",
                          hint="the fp16 C kernels take (1, C, H, W) tensors")
    s = [1] * (4 - len(s)) + s
    if s[0] != 1:
        raise ExportError(f"tensor shape {tuple(shape)} has batch {s[0]}", hint="export with batch 1")
    return tuple(s[1:])


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def build_float_graph(onnx_path) -> FloatGraph:
    """Parse a float32 ONNX model (batch-1 input, BatchNorm folded) into kernel calls.

    Raises ExportError naming the first node whose operator or attributes the float kernels do
    not support."""
    import onnx
    from onnx import numpy_helper

    onnx_path = Path(onnx_path)
    m = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    shapes = {}
    for v in [*g.input, *g.value_info, *g.output]:
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = tuple(int(d.dim_value) for d in dims)
    tensors: list[FTensor] = []
    by_name: dict[str, int] = {}

    def tensor(name: str) -> int:
        if name not in by_name:
            if name not in shapes or any(d < 1 for d in shapes[name]):
                raise ExportError(f"{onnx_path.name}: no static shape for tensor {name!r}",
                                  hint="export with a static input shape")
            by_name[name] = len(tensors)
            tensors.append(FTensor(len(tensors), name, shapes[name]))
        return by_name[name]

    graph_inputs = [i for i in g.input if i.name not in consts]
    if len(graph_inputs) != 1 or len(g.output) != 1:
        raise ExportError(f"{onnx_path.name}: {len(graph_inputs)} inputs / {len(g.output)} outputs",
                          hint="the fp16 C model takes one input and gives one output")
    inp = tensor(graph_inputs[0].name)
    layers: list[FLayer] = []
    alias: dict[int, int] = {}

    def fail(node, why: str):
        raise ExportError(f"{onnx_path.name}: node {node.name or node.op_type} ({node.op_type}): {why}",
                          hint="the fp16 C kernels (firmware/nn_f32) do not cover it; export int8 instead")

    def const(node, name: str) -> np.ndarray:
        if name not in consts:
            fail(node, f"input {name!r} must be a constant")
        return consts[name]

    for node in g.node:
        op, a = node.op_type, _attrs(node)
        ins = [n for n in node.input]
        if op == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
            continue
        if op in _ALIAS_OPS:
            if ins[0] in consts:
                if op == "Identity":
                    consts[node.output[0]] = consts[ins[0]]
                    continue
                fail(node, "a data-free operator on a constant")
            out = tensor(node.output[0])
            src = tensor(ins[0])
            if tensors[out].numel != tensors[src].numel:
                fail(node, "changes the number of elements")
            alias[out] = src
            continue
        act = [n for n in ins if n and n not in consts]
        if not act:
            fail(node, "all inputs are constant (constant folding should have removed it)")
        L = FLayer(len(layers), op, node.name or f"{op}_{len(layers)}", [tensor(n) for n in act],
                   tensor(node.output[0]))
        yo = tensors[L.output]
        if op == "Conv":
            w = const(node, ins[1]).astype(np.float32)
            b = const(node, ins[2]).astype(np.float32) if len(ins) > 2 and ins[2] else None
            if w.ndim != 4:
                fail(node, f"{w.ndim - 2}-D convolution")
            xc, xh, xw = tensors[L.inputs[0]].chw()
            oc, oh, ow = yo.chw()
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if _s(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
                fail(node, "auto_pad SAME")
            groups = int(a.get("group", 1))
            kh, kw = int(w.shape[2]), int(w.shape[3])
            L.consts = {"w": w} if b is None else {"w": w, "b": b}
            L.params = dict(in_c=xc, in_h=xh, in_w=xw, out_c=oc, out_h=oh, out_w=ow, kernel_h=kh, kernel_w=kw,
                            stride_h=int(a.get("strides", [1, 1])[0]), stride_w=int(a.get("strides", [1, 1])[1]),
                            pad_top=int(pads[0]), pad_left=int(pads[1]),
                            dilation_h=int(a.get("dilations", [1, 1])[0]),
                            dilation_w=int(a.get("dilations", [1, 1])[1]), groups=groups)
            L.macs = oc * oh * ow * (xc // groups) * kh * kw
            L.report_type = ("depthwise" if groups == xc and groups > 1 else
                             "conv1x1" if kh == kw == 1 and groups == 1 else "conv")
        elif op == "Gemm":
            if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
                fail(node, "only transA = 0, alpha = beta = 1")
            w = const(node, ins[1]).astype(np.float32)
            w = w if a.get("transB", 0) else w.T
            L.consts = {"w": np.ascontiguousarray(w)}
            if len(ins) > 2 and ins[2]:
                L.consts["b"] = np.broadcast_to(const(node, ins[2]).astype(np.float32), (w.shape[0],)).copy()
            if tensors[L.inputs[0]].numel != w.shape[1]:
                fail(node, "input size differs from the weight matrix")
            L.params = {"n_in": int(w.shape[1]), "n_out": int(w.shape[0])}
            L.macs = int(w.size)
        elif op in _UNARY:
            L.params = {"op": _UNARY[op]}
        elif op == "Clip":
            lo = float(const(node, ins[1])) if len(ins) > 1 and ins[1] else float(a.get("min", -np.inf))
            hi = float(const(node, ins[2])) if len(ins) > 2 and ins[2] else float(a.get("max", np.inf))
            L.params = {"op": "ASC_F32_CLIP", "lo": lo, "hi": hi}
        elif op == "Pow":
            e = const(node, ins[1])
            if e.size != 1 or float(e.reshape(-1)[0]) != 2.0:
                fail(node, "only the constant exponent 2")
            L.params = {"op": "ASC_F32_SQUARE"}
        elif op in _BINARY:
            operands = []
            for k, n in enumerate(ins[:2]):
                if n in consts:
                    cv = consts[n].astype(np.float32)
                    L.consts[f"c{k}"] = cv
                    operands.append(("const", f"c{k}", _chw(cv.shape) if cv.ndim else (1, 1, 1)))
                else:
                    operands.append(("tensor", tensor(n), tensors[tensor(n)].chw()))
            L.params = {"op": _BINARY[op], "operands": operands}
            L.report_type = "add" if op == "Add" and all(o[0] == "tensor" for o in operands) else "other"
        elif op in ("AveragePool", "MaxPool"):
            if a.get("ceil_mode", 0):
                fail(node, "ceil_mode 1")
            if any(d != 1 for d in a.get("dilations", [1, 1])):
                fail(node, "dilated pooling")
            xc, xh, xw = tensors[L.inputs[0]].chw()
            _, oh, ow = yo.chw()
            pads = list(a.get("pads", [0, 0, 0, 0]))
            k, s = a["kernel_shape"], a.get("strides", [1, 1])
            L.params = dict(c=xc, in_h=xh, in_w=xw, out_h=oh, out_w=ow, kernel_h=int(k[0]), kernel_w=int(k[1]),
                            stride_h=int(s[0]), stride_w=int(s[1]), pad_top=int(pads[0]), pad_left=int(pads[1]),
                            count_include_pad=int(a.get("count_include_pad", 0)))
        elif op in ("GlobalAveragePool", "ReduceMean"):
            x = tensors[L.inputs[0]]
            rank = len(x.shape)
            if op == "GlobalAveragePool":
                axes = [2, 3]
            else:
                axes = a.get("axes")
                if axes is None and len(ins) > 1 and ins[1]:
                    axes = const(node, ins[1]).tolist()
                axes = list(range(rank)) if axes is None else [int(v) % rank for v in axes]
            axes4 = [ax + 4 - rank for ax in axes]
            if 0 in axes4 or rank > 4:
                fail(node, "a mean over the batch axis")
            L.params = {"mask": sum(1 << (ax - 1) for ax in axes4)}
        elif op == "Concat":
            rank = len(yo.shape)
            axis = int(a["axis"]) % rank
            if rank - axis != 3 and not all(d == 1 for d in yo.shape[:axis]):
                fail(node, "only a concatenation whose pieces are contiguous (over channels, batch 1)")
            if any(n in consts for n in ins):
                fail(node, "a constant piece")
        elif op == "Resize":
            if (_s(a.get("mode", "nearest")) != "nearest" or _s(a.get("coordinate_transformation_mode", "half_pixel"))
                    != "asymmetric" or _s(a.get("nearest_mode", "round_prefer_floor")) != "floor"):
                fail(node, "only mode nearest, coordinate_transformation_mode asymmetric, nearest_mode floor")
            xc, xh, xw = tensors[L.inputs[0]].chw()
            oc, oh, ow = yo.chw()
            scales = const(node, ins[2]).astype(np.float32) if len(ins) > 2 and ins[2] and \
                consts.get(ins[2], np.zeros(0)).size else None
            if scales is None or scales.size != 4:
                sh, sw = np.float32(oh) / np.float32(xh), np.float32(ow) / np.float32(xw)
            else:
                sh, sw = scales[2], scales[3]
            rows = np.minimum(np.floor(np.arange(oh, dtype=np.float32) / np.float32(sh)), xh - 1).astype(np.int32)
            cols = np.minimum(np.floor(np.arange(ow, dtype=np.float32) / np.float32(sw)), xw - 1).astype(np.int32)
            L.params = {"c": xc, "in_h": xh, "in_w": xw, "out_h": oh, "out_w": ow, "rows": rows, "cols": cols}
        else:
            fail(node, "operator not supported by the fp16 C kernels")
        layers.append(L)
    _run_in_place(layers, tensors, alias, inp)
    out = by_name.get(g.output[0].name)
    if out is None:
        raise ExportError(f"{onnx_path.name}: the output {g.output[0].name!r} is not computed by any kernel",
                          hint="a constant model cannot be exported")
    return FloatGraph(tensors, layers, inp, out, alias, hashlib.sha256(onnx_path.read_bytes()).hexdigest())


def _run_in_place(layers: list, tensors: list, alias: dict, graph_input: int) -> None:
    """Element-wise layers (unary, and binary with an operand of the output's shape) write over an
    input that no later layer reads: the output becomes an alias of that input's buffer, which
    halves the memory of every conv → ReLU pair. The graph input is never overwritten."""
    def root(t):
        while t in alias:
            t = alias[t]
        return t

    last_read = {}
    for L in layers:
        for t in L.inputs:
            last_read[root(t)] = L.index
    for L in layers:
        q = L.params
        if L.kind in _UNARY or L.kind in ("Clip", "Pow"):
            cands = [L.inputs[0]]
        elif L.kind == "Conv" and q["groups"] == q["in_c"] == q["out_c"] and (q["in_h"], q["in_w"]) == \
                (q["out_h"], q["out_w"]):
            cands = [L.inputs[0]]  # depthwise, same shape: one channel plane of scratch
        elif L.kind in _BINARY:
            cands = [ref for what, ref, dims in L.params["operands"] if what == "tensor"]
        else:
            continue
        for t in cands:
            r = root(t)
            if r == graph_input or last_read.get(r) != L.index:
                continue
            if tensors[t].chw() != tensors[L.output].chw():  # a broadcast operand
                continue
            if L.output in alias or L.output == r:
                continue
            alias[L.output] = r
            L.params["in_place"] = True
            if L.kind == "Conv":
                L.plane = q["out_h"] * q["out_w"]
            # the output's readers now read r: keep r alive through them
            for M in layers[L.index + 1:]:
                if any(root(u) == r for u in M.inputs):
                    last_read[r] = M.index
            break


def fp16_round(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest IEEE half (round to nearest even), as float32."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def fp16_reference_onnx(onnx_path, out_path) -> Path:
    """Write a copy of ``onnx_path`` with every float32 initializer and Constant rounded to fp16
    (still stored as float32): the float model the fp16 C computes, for ONNX Runtime."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(onnx_path))
    for init in m.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(fp16_round(arr), init.name))
    for node in m.graph.node:
        if node.op_type == "Constant":
            for at in node.attribute:
                if at.name == "value":
                    arr = numpy_helper.to_array(at.t)
                    if arr.dtype == np.float32:
                        at.t.CopyFrom(numpy_helper.from_array(fp16_round(arr), at.t.name))
    out_path = Path(out_path)
    onnx.save(m, str(out_path))
    return out_path


@dataclass
class FloatPlan:
    offsets: dict       # tensor root id -> arena byte offset
    scratch: dict       # layer index -> (offset, bytes) of its expanded constants
    arena: int
    naive: int
    input_offset: int | None
    pre_scratch_offset: int | None
    pre_scratch: int


def plan_float(graph: FloatGraph, *, input_in_arena: bool = True, pre_scratch: int = 0) -> FloatPlan:
    """Arena plan (first fit, :func:`asc_edge.codegen.planner.place`): every activation tensor from
    the layer that writes it to the last layer that reads it (aliases share their root's
    buffer; the output lives to the end), each layer's expanded float32 constants during its own
    step, and — device layout — the input and ``pre_scratch`` bytes of frontend work at step -1."""
    n = len(graph.layers)
    first, last = {}, {}
    if input_in_arena:
        first[graph.input] = -1
        last[graph.input] = -1
    for L in graph.layers:
        first.setdefault(graph.root(L.output), L.index)
        last[graph.root(L.output)] = max(last.get(graph.root(L.output), L.index), L.index)
        for t in L.inputs:
            r = graph.root(t)
            if r in first:
                last[r] = max(last[r], L.index)
    last[graph.root(graph.output)] = n
    bufs = [Buffer(t, graph.tensors[t].size, first[t], last[t]) for t in sorted(first)]
    scratch_ids = {}
    for L in graph.layers:
        nb = 4 * L.scratch_floats
        if nb:
            sid = -(1000 + L.index)
            scratch_ids[sid] = L.index
            bufs.append(Buffer(sid, nb, L.index, L.index))
    if pre_scratch:
        bufs.append(Buffer(PRE_SCRATCH_ID, pre_scratch, -1, -1))
    arena = place(bufs, alignment=16)
    offsets = {b.tensor: b.offset for b in bufs if b.tensor >= 0}
    scratch = {scratch_ids[b.tensor]: (b.offset, b.size) for b in bufs if b.tensor in scratch_ids}
    pre = next((b.offset for b in bufs if b.tensor == PRE_SCRATCH_ID), None)
    return FloatPlan(offsets, scratch, arena, sum(b.size for b in bufs),
                     offsets.get(graph.input) if input_in_arena else None, pre, pre_scratch)


def _f16_array(name: str, values: np.ndarray) -> str:
    bits = np.asarray(values, np.float32).astype(np.float16).view(np.uint16).reshape(-1)
    rows = [", ".join(f"0x{int(v):04x}" for v in bits[i:i + 16]) for i in range(0, len(bits), 16)]
    return f"static const uint16_t {name}[{len(bits)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def _i32_array(name: str, values) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(vals[i:i + 24]) for i in range(0, len(vals), 24)]
    return f"static const int32_t {name}[{len(vals)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def _cfloat(v: float) -> str:
    if np.isinf(v):
        return "(-3.402823466e38f)" if v < 0 else "3.402823466e38f"
    t = f"{float(np.float32(v)):.9g}"
    return (t if any(ch in t for ch in ".e") else t + ".0") + "f"


def render_float_model(graph: FloatGraph, plan: FloatPlan) -> tuple[str, str]:
    """(model.h, model.c) text of the fp16-weight float model (see the module docstring)."""
    T = graph.tensors
    xin, xout = T[graph.input], T[graph.output]

    def ptr(tid: int) -> str:
        r = graph.root(tid)
        if r == graph.input:  # the caller's buffer (on the device: arena + ASC_MODEL_INPUT_OFFSET)
            return "((float *)input)"
        return f"((float *)(arena + {plan.offsets[r]}))"

    consts: list[str] = []
    body: list[str] = []
    for L in graph.layers:
        y = ptr(L.output)
        lines = []
        cptr = {}
        pos = 0
        if L.consts:
            off, _ = plan.scratch[L.index]
            for nm, arr in L.consts.items():
                cname = f"L{L.index}_{nm}"
                consts.append(_f16_array(cname, arr))
                lines.append(f"asc_f32_from_f16({cname}, (float *)(arena + {off + 4 * pos}), {arr.size});")
                cptr[nm] = f"((const float *)(arena + {off + 4 * pos}))"
                pos += int(arr.size)
        p = L.params
        x = ptr(L.inputs[0])
        if L.kind == "Conv":
            init = ", ".join(f".{k} = {v}" for k, v in p.items() if k != "in_place")
            plane = f"(float *)(arena + {plan.scratch[L.index][0] + 4 * pos})" if L.plane else "0"
            lines += [f"static const asc_f32_conv_params p = {{{init}}};",
                      f"st = asc_f32_conv2d(&p, {x}, {cptr['w']}, {cptr.get('b', '0')}, {y}, {plane});"]
        elif L.kind == "Gemm":
            lines.append(f"st = asc_f32_fully_connected({x}, {p['n_in']}, {cptr['w']}, {cptr.get('b', '0')}, {y}, "
                         f"{p['n_out']});")
        elif L.kind in _UNARY or L.kind in ("Clip", "Pow"):
            lo, hi = p.get("lo", 0.0), p.get("hi", 0.0)
            lines.append(f"st = asc_f32_unary({p['op']}, {x}, {y}, {T[L.output].numel}, {_cfloat(lo)}, {_cfloat(hi)});")
        elif L.kind in _BINARY:
            args = []
            for k, (what, ref, dims) in enumerate(p["operands"]):
                lines.append(f"static const int32_t d{k}[3] = {{{dims[0]}, {dims[1]}, {dims[2]}}};")
                args.append((cptr[ref] if what == "const" else ptr(ref), f"d{k}"))
            yd = T[L.output].chw()
            lines += [f"static const int32_t dy[3] = {{{yd[0]}, {yd[1]}, {yd[2]}}};",
                      f"st = asc_f32_binary({p['op']}, {args[0][0]}, {args[0][1]}, {args[1][0]}, {args[1][1]}, {y}, dy);"]
        elif L.kind in ("AveragePool", "MaxPool"):
            init = ", ".join(f".{k} = {v}" for k, v in p.items())
            fn = "asc_f32_avg_pool" if L.kind == "AveragePool" else "asc_f32_max_pool"
            lines += [f"static const asc_f32_pool_params p = {{{init}}};", f"st = {fn}(&p, {x}, {y});"]
        elif L.kind in ("GlobalAveragePool", "ReduceMean"):
            c, h, w = T[L.inputs[0]].chw()
            lines.append(f"st = asc_f32_mean({x}, {c}, {h}, {w}, {p['mask']}, {y});")
        elif L.kind == "Concat":
            pos = 0
            for t in L.inputs:
                lines.append(f"memmove((uint8_t *){y} + {pos}, {ptr(t)}, {T[t].size});")
                pos += T[t].size
            lines.append("st = ASC_F32_OK;")
        elif L.kind == "Resize":
            rn, cn = f"L{L.index}_rows", f"L{L.index}_cols"
            consts += [_i32_array(rn, p["rows"]), _i32_array(cn, p["cols"])]
            lines.append(f"st = asc_f32_resize_nearest({x}, {p['c']}, {p['in_h']}, {p['in_w']}, {y}, {p['out_h']}, "
                         f"{p['out_w']}, {rn}, {cn});")
        else:  # build_float_graph refuses anything else
            raise ExportError(f"no C emitter for {L.kind}", hint="a code generator bug")
        where = "input" if graph.root(L.output) == graph.input else f"arena+{plan.offsets[graph.root(L.output)]}"
        body.append(f"    /* layer {L.index}: {L.kind} {L.name}, out {T[L.output].shape} @ {where} */")
        body += (["    {"] + [f"        {ln}" for ln in lines] +
                 [f"        if (st != ASC_F32_OK) return -{L.index + 1};",
                  f"        if (cb) cb({L.index}, (const int8_t *){y}, {T[L.output].size}, user);",
                  f"        ASC_MODEL_LAYER_DONE({L.index});", "    }"])

    ci, hi_, wi = xin.chw()
    co = xout.numel
    h = ["/* model.h - generated by asc_edge.codegen.float_c (fp16 weights, float32 kernels); do not edit. */",
         f"/* source .onnx sha256: {graph.source_sha256} */",
         "#ifndef ASC_MODEL_H", "#define ASC_MODEL_H", "", "#include <stdint.h>", "",
         "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
         "#define ASC_MODEL_FLOAT 1",
         f"#define ASC_MODEL_ARENA_SIZE {plan.arena}",
         f"#define ASC_MODEL_NUM_LAYERS {len(graph.layers)}",
         f"#define ASC_MODEL_NUM_STEPS {len(graph.layers)}",
         f"#define ASC_MODEL_PARAMS {graph.n_params}",
         "/* Device layout: the input tensor and the frontend's work area inside the arena (-1: not planned). */",
         f"#define ASC_MODEL_INPUT_OFFSET {-1 if plan.input_offset is None else plan.input_offset}",
         f"#define ASC_MODEL_FRONTEND_WORK_OFFSET {-1 if plan.pre_scratch_offset is None else plan.pre_scratch_offset}",
         f"#define ASC_MODEL_FRONTEND_WORK_SIZE {plan.pre_scratch}",
         f"#define ASC_MODEL_INPUT_N 1", f"#define ASC_MODEL_INPUT_H {hi_}", f"#define ASC_MODEL_INPUT_W {wi}",
         f"#define ASC_MODEL_INPUT_C {ci}",
         f"#define ASC_MODEL_INPUT_SIZE {xin.numel}", f"#define ASC_MODEL_OUTPUT_SIZE {co}", "",
         "/* Debug hook: called after each layer with its float32 output (bytes = 4 x elements). */",
         "typedef void (*asc_model_layer_fn)(int32_t layer, const int8_t *data, int32_t bytes, void *user);", "",
         "/* input: float32 (1, 1, H, W) log-mel, ASC_MODEL_INPUT_SIZE values; output: ASC_MODEL_OUTPUT_SIZE float32",
         " * logits; arena: ASC_MODEL_ARENA_SIZE bytes, 16-byte aligned. Returns 0 or -(layer+1) on a kernel error. */",
         "int asc_model_invoke(const float *input, float *output, uint8_t *arena);",
         "int asc_model_invoke_debug(const float *input, float *output, uint8_t *arena,",
         "                           asc_model_layer_fn callback, void *user);",
         "", "#ifdef __cplusplus", "}", "#endif", "", "#endif /* ASC_MODEL_H */", ""]
    c = ["/* model.c - generated by asc_edge.codegen.float_c (fp16 weights, float32 kernels); do not edit. */",
         f"/* source .onnx sha256: {graph.source_sha256} */",
         f"/* {len(graph.layers)} layers; {graph.n_params} fp16 constants ({2 * graph.n_params} bytes); arena "
         f"{plan.arena} bytes (naive {plan.naive}) */",
         "#include <string.h>", '#include "asc_nn_f32.h"', '#include "model.h"', "",
         "#ifndef ASC_MODEL_LAYER_DONE", "#define ASC_MODEL_LAYER_DONE(layer) ((void)0)", "#else",
         "void ASC_MODEL_LAYER_DONE(int32_t layer);", "#endif", "",
         *consts, "",
         "static int asc_model_run(const float *input, float *output, uint8_t *arena,",
         "                         asc_model_layer_fn cb, void *user)", "{", "    int st;", *body,
         f"    memcpy(output, {ptr(graph.output)}, {xout.size});", "    return 0;", "}", "",
         "int asc_model_invoke(const float *input, float *output, uint8_t *arena)",
         "{", "    return asc_model_run(input, output, arena, 0, 0);", "}", "",
         "int asc_model_invoke_debug(const float *input, float *output, uint8_t *arena,",
         "                           asc_model_layer_fn callback, void *user)",
         "{", "    return asc_model_run(input, output, arena, callback, user);", "}", ""]
    return "\n".join(h), "\n".join(c)


def emit_float_model(onnx_path, out_dir, *, pre_scratch: int = 0) -> tuple[FloatGraph, FloatPlan, dict]:
    """Parse, plan (device layout: input and ``pre_scratch`` bytes of frontend work in the arena)
    and write ``out_dir/model.h`` + ``model.c`` atomically. Returns (graph, plan, info) with the
    files' sha256 and sizes."""
    graph = build_float_graph(onnx_path)
    plan = plan_float(graph, input_in_arena=True, pre_scratch=pre_scratch)
    htext, ctext = render_float_model(graph, plan)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "model.h", htext)
    write_text_atomic(out_dir / "model.c", ctext)
    info = {"files": {k: hashlib.sha256(t.encode()).hexdigest() for k, t in (("model.h", htext), ("model.c", ctext))},
            "bytes": {"model.h": len(htext.encode()), "model.c": len(ctext.encode())}}
    return graph, plan, info


def float_graph_record(graph: FloatGraph, plan: FloatPlan) -> dict:
    """``graph.json`` of an fp16 export: what ``asc-edge bench`` reads (layers with kind, MACs and
    report type; one step per layer; tensors; the arena plan)."""
    from .record import FORMAT

    return {"format": FORMAT, "precision": "fp16", "source_sha256": graph.source_sha256, "input": graph.input, "output": graph.output,
            "tensors": {str(t.id): {"name": t.name, "shape": list(t.shape), "bytes": t.size} for t in graph.tensors},
            "layers": [{"index": L.index, "kind": L.kind, "name": L.name, "inputs": L.inputs, "output": L.output,
                        "macs": int(L.macs), "report_type": L.report_type,
                        "fp16_constants": int(sum(v.size for v in L.consts.values()))} for L in graph.layers],
            "steps": [{"layers": [L.index], "pattern": None} for L in graph.layers],
            "plan": {"arena_bytes": plan.arena, "naive_bytes": plan.naive, "input_offset": plan.input_offset,
                     "frontend_work_offset": plan.pre_scratch_offset, "frontend_work_bytes": plan.pre_scratch,
                     "offsets": {str(k): v for k, v in sorted(plan.offsets.items())}}}


def build_host_float_model(c_dir, cmsis_root, cmsis_include_dirs, cc: str | None = None, build_dir=None) -> Path:
    """Host shared library of ``c_dir/model.c`` + ``firmware/nn_f32`` + the CMSIS-DSP sources it
    calls (:data:`CMSIS_DSP_F32_SOURCES` under the unpacked ``cmsis_root``, with
    ``cmsis_include_dirs``: :func:`asc_edge.device.cmsis_dsp.ensure_cmsis_dsp` /
    :func:`~asc_edge.device.cmsis_dsp.include_dirs`, which the caller passes so that codegen does
    not depend on device), with :data:`HOST_FLOAT_CFLAGS` (the flags the device build uses for
    bit-identical float arithmetic). Raises ExportError with the compiler's message."""
    root = Path(cmsis_root)
    srcs = [Path(c_dir) / "model.c", F32_DIR / "asc_nn_f32.c", *[root / s for s in CMSIS_DSP_F32_SOURCES]]
    try:
        return build_shared_library("asc_float_model", srcs, [Path(c_dir), F32_DIR, *map(Path, cmsis_include_dirs)],
                                    [*HOST_FLOAT_CFLAGS, "-lm"], cc=cc, build_dir=build_dir or BUILD_DIR)
    except KernelError as exc:
        raise ExportError(f"host build of the fp16 C model failed:\n{exc}", hint="a code generator bug") from exc


class HostFloatModel:
    """ctypes wrapper of :func:`build_host_float_model`'s library: ``invoke(x)`` with ``x`` the
    float32 input ``(1, 1, n_mels, frames)`` (or its ``n_in`` values) → ``n_out`` float32 logits;
    ``arena_size``: ``ASC_MODEL_ARENA_SIZE`` bytes."""

    def __init__(self, lib_path, n_in: int, n_out: int, arena_size: int):
        self.lib = C.CDLL(str(lib_path))
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.arena = np.zeros(arena_size + 16, np.uint8)
        fn = self.lib.asc_model_invoke
        fn.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
        fn.restype = C.c_int
        self._fn = fn

    def invoke(self, x) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, np.float32).reshape(-1))
        if x.size != self.n_in:
            raise ExportError(f"input has {x.size} values, the model takes {self.n_in}", hint="a caller bug")
        y = np.zeros(self.n_out, np.float32)
        base = self.arena.ctypes.data
        arena = base + (-base) % 16
        rc = self._fn(x.ctypes.data, y.ctypes.data, arena)
        if rc != 0:
            raise ExportError(f"fp16 C model: kernel error in layer {-rc - 1}", hint="a code generator bug")
        return y

    def predict(self, features) -> np.ndarray:
        """float32 logits ``(N, n_classes)`` for features ``(N, 1, n_mels, frames)``."""
        return np.stack([self.invoke(f) for f in np.asarray(features, np.float32)])
