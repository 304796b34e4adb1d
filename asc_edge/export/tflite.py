"""ONNX → full-integer int8 TFLite with onnx2tf, and a summary of the resulting flatbuffer.

Conversion (:func:`convert_int8_tflite`) runs onnx2tf 1.29.24 in a subprocess (its own
TensorFlow, its log captured, a timeout) with

    -oiqt -qt per-channel -iqd int8 -oqd int8 -nuo
    -cind <input> calib.npy "[[[[0.0]]]]" "[[[[1.0]]]]"

- ``-oiqt``: integer-quantised outputs (TF's ``TFLiteConverter`` post-training quantisation with
  a representative data set; onnx2tf writes four variants, we take ``*_full_integer_quant.tflite``:
  int8 activations, int8 input and output, per-channel symmetric int8 weights, int32 biases).
- ``-qt per-channel``: one weight scale per output channel (``quantized_dimension`` 0 for
  CONV_2D, 3 for DEPTHWISE_CONV_2D).
- ``-iqd int8 -oqd int8``: the graph's input and output are int8 (no QUANTIZE/DEQUANTIZE op at
  the ends); the caller quantises features with the input scale / zero point.
- ``-cind NAME FILE MEAN STD``: calibration data as a NumPy file in TF (NHWC) order,
  ``(N, n_mels, frames, 1)``; onnx2tf feeds ``(x - MEAN) / STD`` to the calibrator, so mean 0 and
  std 1 calibrate on the raw log-mel values the model was trained on (without ``-cind`` onnx2tf
  would calibrate on 20 MS-COCO images).
- ``-nuo``: skip onnx-simplifier (not installed: it pins old onnx; the legacy exporter already
  constant-folds and BatchNorm is folded before export).

onnx2tf converts NCHW to NHWC, so the TFLite input is ``(1, n_mels, frames, 1)`` int8. It inserts a
PAD before each stride-2 convolution whose PyTorch padding is not TF ``SAME``, writes a depthwise
convolution with unequal strides as a grouped CONV_2D (filter ``(C, kh, kw, 1)``, groups = C),
and emulates ``AvgPool2d(count_include_pad=True)`` as a ``SAME`` AVERAGE_POOL_2D followed by
STRIDED_SLICE/MUL/CONCATENATION border corrections. :func:`inspect_tflite` lists exactly what
was emitted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import ExportError

__all__ = ["convert_int8_tflite", "inspect_tflite", "format_ops", "rewrite_grouped_conv_as_depthwise",
           "MIN_CALIBRATION_CLIPS", "ONNX2TF_ARGS"]

MIN_CALIBRATION_CLIPS = 200
"""Issue 3: full-integer calibration on at least this many real training clips."""

ONNX2TF_ARGS = ("-oiqt", "-qt", "per-channel", "-iqd", "int8", "-oqd", "int8", "-nuo")
"""The fixed onnx2tf flags (the ``-i``/``-o``/``-cind`` arguments are added per call)."""

_WEIGHTED_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
"""Operators with a weight tensor (input 1) → the per-channel quantised dimension TFLite uses."""


# ----------------------------------------------------------------------------- flatbuffer summary

_OPTION_FIELDS = {
    "padding": ("padding",), "stride": ("strideH", "strideW"), "dilation": ("dilationHFactor", "dilationWFactor"),
    "filter": ("filterHeight", "filterWidth"), "activation": ("fusedActivationFunction",),
    "depth_multiplier": ("depthMultiplier",), "axis": ("axis",), "begin_mask": ("beginMask",),
    "end_mask": ("endMask",), "ellipsis_mask": ("ellipsisMask",), "new_axis_mask": ("newAxisMask",),
    "shrink_axis_mask": ("shrinkAxisMask",), "keep_dims": ("keepDims",), "keep_num_dims": ("keepNumDims",),
}
"""Summary option key → the schema field(s) of :func:`~asc_edge.codegen.tflite_reader.read_tflite`'s
generic options it is made of (two fields: an ``[h, w]`` pair)."""

_BOOL_OPTIONS = ("keep_dims", "keep_num_dims")

_POOL = ("padding", "stride", "filter", "activation")
_SLICE = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
_SUMMARY_OPTIONS = {
    "CONV_2D": ("padding", "stride", "dilation", "activation"),
    "DEPTHWISE_CONV_2D": ("padding", "stride", "dilation", "activation", "depth_multiplier"),
    "AVERAGE_POOL_2D": _POOL, "MAX_POOL_2D": _POOL,
    "ADD": ("activation",), "MUL": ("activation",), "SUB": ("activation",),
    "CONCATENATION": ("axis", "activation"), "STRIDED_SLICE": _SLICE, "MEAN": ("keep_dims",),
    "FULLY_CONNECTED": ("activation", "keep_num_dims"),
}
"""Operator → the options :func:`inspect_tflite` reports for it (all others: none)."""


def _summary_options(op_name: str, options: dict) -> dict:
    """The reader's generic schema options → the summary's keys (see ``_SUMMARY_OPTIONS``)."""
    if not options:
        return {}
    out = {}
    for key in _SUMMARY_OPTIONS.get(op_name, ()):
        vals = [options.get(f) for f in _OPTION_FIELDS[key]]
        v = vals if len(vals) > 1 else vals[0]
        out[key] = bool(v) if key in _BOOL_OPTIONS else v
    return out


def _tensor_summary(t) -> dict:
    """One :class:`~asc_edge.codegen.tflite_reader.TensorInfo` (or None: an absent optional
    input) as a plain dict (see :func:`inspect_tflite`)."""
    if t is None:
        return {"tensor": -1}
    d = {"tensor": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "const": t.const}
    if t.const and t.dtype in ("INT32", "INT64") and len(t.shape) <= 2 and t.data.size <= 16:
        d["values"] = t.data.tolist() if t.shape else t.data.reshape(-1).tolist()  # paddings, slice bounds, axes
    if t.quantized:
        d.update(scale=t.scale, zero_point=t.zero_point, n_scales=len(t.scales),
                 quantized_dimension=t.quantized_dimension, zero_points_all_zero=bool(np.all(t.zero_points == 0)))
    return d


def inspect_tflite(model) -> dict:
    """Describe a ``.tflite`` flatbuffer (path or bytes): operators, tensors, quantisation.

    Read once with :func:`asc_edge.codegen.tflite_reader.read_tflite` (the project's one
    ``.tflite`` reader) and summarised as plain values (JSON-ready) for reports and checks.

    Returns a dict:

    - ``ops``: one entry per operator in execution order: ``index``, ``op`` (builtin name, e.g.
      ``"CONV_2D"``), ``inputs``/``outputs`` (lists of tensor summaries: ``tensor`` index,
      ``name``, ``shape`` (NHWC for activations; filters ``(out, kh, kw, in)`` for CONV_2D and
      ``(1, kh, kw, out)`` for DEPTHWISE_CONV_2D), ``dtype``, ``const`` (has data), and for
      quantised tensors ``scale``/``zero_point`` (first element) and ``n_scales``,
      ``quantized_dimension``; small constant int32 tensors also carry their ``values``, e.g.
      PAD paddings ``[[0, 0], [1, 1], [1, 1], [0, 0]]``, STRIDED_SLICE begin/end/strides, MEAN
      axes, RESHAPE shape), ``options`` (padding, stride ``[h, w]``, dilation, filter, fused
      activation, depth_multiplier, axis, slice masks, keep_dims, …) and for CONV_2D ``groups``
      (input channels / filter input channels; > 1 means a grouped conv).
    - ``op_counts``: op name → count; ``n_ops``; ``n_tensors``.
    - ``input`` / ``output``: the graph's (first) input and output tensor summaries;
      ``n_inputs`` / ``n_outputs``; ``bytes``: the file size.
    - ``weights``: for each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: op index, weight
      dtype, whether it is per-channel (``n_scales`` == output channels on the expected
      dimension), weight zero points all 0, bias dtype.
    - ``grouped_conv``: indices of CONV_2D ops with groups > 1.
    - ``non_builtin``: custom / Flex operators (must be empty for tflite-micro).
    - ``float_tensors``: non-constant float tensors (must be empty for a full-integer model).

    Raises:
        ExportError: missing file, or not a readable TFLite flatbuffer.
    """
    from asc_edge.codegen.tflite_reader import read_tflite

    tm = read_tflite(model if isinstance(model, (str, os.PathLike)) else bytes(model))
    summaries = [_tensor_summary(t) for t in tm.tensors]

    def tensor(i: int) -> dict:
        return {"tensor": -1} if i < 0 else summaries[i]

    ops, weights, grouped, non_builtin = [], [], [], []
    for op in tm.ops:
        i, name = op.index, op.op
        if name.startswith("CUSTOM:"):
            non_builtin.append({"index": i, "op": name})
        ins = [tensor(j) for j in op.inputs]
        outs = [tensor(j) for j in op.outputs]
        entry = {"index": i, "op": name, "inputs": ins, "outputs": outs,
                 "options": _summary_options(name, op.options)}
        if name in _WEIGHTED_OPS and len(ins) >= 2:
            w = ins[1]
            qdim = _WEIGHTED_OPS[name]
            n_out = w["shape"][qdim] if w.get("shape") else 0
            if name == "CONV_2D" and ins[0].get("shape") and w.get("shape"):
                in_ch, f_in = ins[0]["shape"][-1], w["shape"][-1]
                entry["groups"] = in_ch // f_in if f_in else 0
                if entry["groups"] > 1:
                    grouped.append(i)
            bias = ins[2] if len(ins) > 2 else {"tensor": -1}
            weights.append({
                "index": i, "op": name, "weight_dtype": w.get("dtype"), "weight_shape": w.get("shape"),
                "per_channel": w.get("n_scales") == n_out and w.get("quantized_dimension") == qdim and n_out > 1,
                "n_scales": w.get("n_scales", 0), "quantized_dimension": w.get("quantized_dimension"),
                "weight_zero_points_zero": w.get("zero_points_all_zero", False),
                "bias_dtype": bias.get("dtype") if bias["tensor"] >= 0 else None,
            })
        ops.append(entry)

    float_tensors = [t["name"] for t in summaries if t["dtype"] in ("FLOAT32", "FLOAT16", "FLOAT64") and not t["const"]]
    return {
        "ops": ops,
        "op_counts": dict(Counter(o["op"] for o in ops)),
        "n_ops": len(ops),
        "n_tensors": len(tm.tensors),
        "input": tensor(tm.inputs[0]) if tm.inputs else None,
        "output": tensor(tm.outputs[0]) if tm.outputs else None,
        "n_inputs": len(tm.inputs),
        "n_outputs": len(tm.outputs),
        "weights": weights,
        "grouped_conv": grouped,
        "non_builtin": non_builtin,
        "float_tensors": float_tensors,
        "bytes": tm.bytes,
    }


def format_ops(info: dict) -> str:
    """The op list of :func:`inspect_tflite` as text, one line per operator:
    ``index OP in-shape(s) -> out-shape [options]`` (constants omitted except filters)."""
    lines = []
    for o in info["ops"]:
        ins = [t for t in o["inputs"] if t.get("tensor", -1) >= 0 and (not t["const"] or o["op"] in _WEIGHTED_OPS)]
        shapes = " ".join("x".join(map(str, t["shape"])) + ("(w)" if t["const"] else "") for t in ins
                          if t["dtype"] != "INT32")
        out = " ".join("x".join(map(str, t["shape"])) for t in o["outputs"])
        opts = {k: v for k, v in o["options"].items() if v not in (None, "NONE")}
        if o.get("groups", 1) > 1:
            opts["groups"] = o["groups"]
        lines.append(f"{o['index']:3d} {o['op']:<18} {shapes} -> {out}" + (f"  {opts}" if opts else ""))
    return "\n".join(lines)


def _check_full_integer(info: dict) -> list[str]:
    """Violations of 'int8 in/out, per-channel int8 weights, int32 biases, builtin ops only'."""
    problems = []
    if info["n_inputs"] != 1 or info["n_outputs"] != 1:
        problems.append(f"{info['n_inputs']} inputs / {info['n_outputs']} outputs (expected 1 / 1)")
    for end in ("input", "output"):
        t = info[end]
        if t is None or t["dtype"] != "INT8" or "scale" not in t:
            problems.append(f"graph {end} is {t and t['dtype']}, not quantised int8")
    for w in info["weights"]:
        if w["weight_dtype"] != "INT8":
            problems.append(f"op {w['index']} {w['op']}: weights are {w['weight_dtype']}, not int8")
        elif not w["per_channel"] and (w["weight_shape"] or [0])[_WEIGHTED_OPS[w["op"]]] > 1:
            problems.append(f"op {w['index']} {w['op']}: weights not per-channel "
                            f"({w['n_scales']} scales on dim {w['quantized_dimension']})")
        if not w["weight_zero_points_zero"]:
            problems.append(f"op {w['index']} {w['op']}: weight zero points not 0 (not symmetric)")
        if w["bias_dtype"] not in (None, "INT32"):
            problems.append(f"op {w['index']} {w['op']}: bias is {w['bias_dtype']}, not int32")
    for nb in info["non_builtin"]:
        problems.append(f"op {nb['index']}: non-builtin operator {nb['op']} (tflite-micro cannot run it)")
    loose = _unenclosed_float_tensors(info)
    if loose:
        problems.append(f"{len(loose)} float activation tensors outside a DEQUANTIZE → … → QUANTIZE chain, "
                        f"e.g. {loose[0]}")
    return problems


def _unenclosed_float_tensors(info: dict) -> list[str]:
    """Float activation tensors that are not strictly inside a DEQUANTIZE → float ops → QUANTIZE
    chain. Such chains (onnx2tf writes Snake's sine as DEQUANTIZE → SIN → QUANTIZE) run on int8
    tensors at both ends and become lookup tables in the code generator
    (:mod:`asc_edge.codegen.ops.lut`); a float tensor anywhere else cannot run in int8."""
    floats = {"FLOAT32", "FLOAT16", "FLOAT64"}
    is_float = lambda t: t.get("tensor", -1) >= 0 and t["dtype"] in floats and not t["const"]  # noqa: E731
    ends = {info["input"]["tensor"] if info["input"] else -1, info["output"]["tensor"] if info["output"] else -1}
    bad = set()
    for op in info["ops"]:
        f_in = [t for t in op["inputs"] if is_float(t)]
        f_out = [t for t in op["outputs"] if is_float(t)]
        act_in = [t for t in op["inputs"] if t.get("tensor", -1) >= 0 and not t["const"]]
        if op["op"] == "DEQUANTIZE" or op["op"] == "QUANTIZE" and f_in:
            continue  # the chain's ends: int8 → float, float → int8
        if f_out and len(f_in) != len(act_in):  # a float op reading an int8 activation
            bad.update(t["name"] for t in f_out)
        if f_in and not f_out:  # a float tensor read by an int8 op
            bad.update(t["name"] for t in f_in)
    bad.update(t["name"] for op in info["ops"] for t in op["outputs"] if is_float(t) and t["tensor"] in ends)
    return sorted(bad)


# ----------------------------------------------------------------------------- rewrite


def rewrite_grouped_conv_as_depthwise(data: bytes) -> tuple[bytes, list[int]]:
    """Rewrite every depthwise-shaped grouped CONV_2D as the equivalent DEPTHWISE_CONV_2D.

    A CONV_2D whose filter is ``(C_out, kh, kw, 1)`` on an input with ``C_in > 1`` channels and
    ``C_out % C_in == 0`` is a grouped convolution with ``groups = C_in``: output channel ``o``
    reads input channel ``o // (C_out / C_in)`` only — exactly DEPTHWISE_CONV_2D with
    ``depth_multiplier = C_out / C_in``. The rewrite transposes the filter to
    ``(1, kh, kw, C_out)``, moves its per-channel quantisation axis from 0 to 3 (scales and zero
    points unchanged, same order), keeps bias, padding, strides, dilation and fused activation,
    and switches the operator code. Both reference kernels accumulate the same products in int32
    and requantise with the same per-channel multipliers, so outputs are bit-identical
    (checked with tflite-micro in tests/test_export.py). onnx2tf emits such ops for CP-Mobile's
    two depthwise convolutions with unequal strides ((1, 2) and (2, 1)).

    Input/returns: ``.tflite`` bytes → (new ``.tflite`` bytes, indices of the rewritten ops).
    Operator order and tensor indices are unchanged. The output is re-serialised with the
    flatbuffer object API (tflite-micro's bundled schema), so buffers lose the converter's
    16-byte alignment (irrelevant on the host; run tflite-micro's ``tflite_flatbuffer_align``
    before using the file as a device blob). Returns the input unchanged when nothing matches.

    Raises:
        ExportError: not a TFLite flatbuffer.
    """
    import flatbuffers

    from asc_edge.codegen.tflite_reader import read_tflite, schema

    fb = schema()
    data = bytes(data)
    model = read_tflite(data).model  # the mutable ModelT, changed in place below
    buffer_users = Counter(t.buffer for sg in model.subgraphs for t in (sg.tensors or []))

    def code_of(oc) -> int:
        return max(oc.builtinCode, oc.deprecatedBuiltinCode)

    dw_index = next((i for i, oc in enumerate(model.operatorCodes)
                     if code_of(oc) == fb.BuiltinOperator.DEPTHWISE_CONV_2D), None)
    rewritten: list[int] = []
    for sg in model.subgraphs:
        for i, op in enumerate(sg.operators or []):
            if code_of(model.operatorCodes[op.opcodeIndex]) != fb.BuiltinOperator.CONV_2D:
                continue
            x, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
            if x.shape is None or w.shape is None or len(w.shape) != 4:
                continue
            in_ch = int(x.shape[3])
            c_out, kh, kw, f_in = (int(s) for s in w.shape)
            if f_in != 1 or in_ch <= 1 or c_out % in_ch:
                continue
            q = w.quantization
            if w.type != fb.TensorType.INT8 or q is None or q.scale is None or len(q.scale) != c_out:
                continue  # only per-channel int8 filters (what convert_int8_tflite produces)
            raw = np.asarray(model.buffers[w.buffer].data, dtype=np.uint8)
            filt = raw.view(np.int8).reshape(c_out, kh, kw)
            new = np.ascontiguousarray(filt.transpose(1, 2, 0)).reshape(-1).view(np.uint8)
            if buffer_users[w.buffer] > 1:  # shared filter buffer: give this tensor its own copy
                nb = fb.BufferT()
                model.buffers.append(nb)
                w.buffer = len(model.buffers) - 1
            model.buffers[w.buffer].data = new
            w.shape = np.array([1, kh, kw, c_out], dtype=np.int32)
            if w.shapeSignature is not None:
                w.shapeSignature = np.array([1, kh, kw, c_out], dtype=np.int32)
            q.quantizedDimension = 3
            conv = op.builtinOptions
            dw = fb.DepthwiseConv2DOptionsT()
            dw.padding, dw.strideW, dw.strideH = conv.padding, conv.strideW, conv.strideH
            dw.depthMultiplier = c_out // in_ch
            dw.fusedActivationFunction = conv.fusedActivationFunction
            dw.dilationWFactor, dw.dilationHFactor = conv.dilationWFactor, conv.dilationHFactor
            if dw_index is None:
                oc = fb.OperatorCodeT()
                oc.builtinCode = oc.deprecatedBuiltinCode = fb.BuiltinOperator.DEPTHWISE_CONV_2D
                oc.version = 3  # per-channel int8 depthwise
                model.operatorCodes.append(oc)
                dw_index = len(model.operatorCodes) - 1
            op.opcodeIndex = dw_index
            op.builtinOptionsType = fb.BuiltinOptions.DepthwiseConv2DOptions
            op.builtinOptions = dw
            rewritten.append(i)
    if not rewritten:
        return data, []
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), rewritten


# ----------------------------------------------------------------------------- conversion


def _onnx_input(onnx_path: Path) -> tuple[str, list[int]]:
    """Name and static shape of the single graph input of an ONNX file."""
    import onnx

    if not onnx_path.is_file():
        raise ExportError(f"{onnx_path}: ONNX model not found", hint="run the ONNX export first (export_onnx)")
    try:
        proto = onnx.load(str(onnx_path))
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"{onnx_path}: not a valid ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                          hint="re-run the ONNX export; the file is truncated or corrupt") from None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ExportError(f"{onnx_path}: {len(inputs)} graph inputs, expected 1",
                          hint="export a single-input classifier")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or min(dims) < 1:
        raise ExportError(f"{onnx_path}: input {inputs[0].name!r} has shape {dims}, expected static (1, C, M, T)",
                          hint="export with a static input_shape such as (1, 1, 256, 65)")
    return inputs[0].name, dims


def _log_tail(log_path: Path, n: int = 15) -> str:
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    import re

    strip = re.compile(r"\x1b\[[0-9;]*m")
    return " | ".join(strip.sub("", ln).strip() for ln in lines[-n:])


def _recalibrate(saved_model: Path, calib_path: Path, method: str, percentile: float | None, workdir: Path,
                 timeout_s: float, env: dict) -> dict:
    """Run :mod:`asc_edge.export.calibration` on onnx2tf's SavedModel; returns its report."""
    from .calibration import DEFAULT_PERCENTILE, METHODS

    if method not in METHODS:
        raise ExportError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    log_path = workdir / "calibration.log"
    cmd = [sys.executable, "-m", "asc_edge.export.calibration", "--saved-model", str(saved_model),
           "--data", str(calib_path), "--method", method,
           "--percentile", repr(DEFAULT_PERCENTILE if percentile is None else float(percentile)),
           "--out", str(workdir / "recalibrated.tflite"), "--report", str(workdir / "calibration.json")]
    _run_logged(cmd, log_path, env, timeout_s, workdir, f"{method} calibration",
                timeout_hint="use fewer calibration clips or --calibration minmax",
                fail_hint="read the log; --calibration minmax uses the converter's own ranges")
    return json.loads((workdir / "calibration.json").read_text())


def _run_logged(cmd: list[str], log_path: Path, env: dict, timeout_s: float, cwd: Path, what: str, *,
                timeout_hint: str, fail_hint: str) -> None:
    """Run ``cmd`` with stdout and stderr appended to ``log_path`` (the command line first), at most
    ``timeout_s`` seconds; ExportError naming ``what`` and the log's tail on a timeout, a program that
    cannot start or a non-zero exit status."""
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, timeout=timeout_s, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise ExportError(f"{what} did not finish within {timeout_s:.0f} s (log: {log_path})",
                              hint=timeout_hint) from None
        except OSError as exc:
            raise ExportError(f"cannot run {what} ({exc})",
                              hint="install the export environment: scripts/requirements-export.txt") from None
    if proc.returncode != 0:
        raise ExportError(f"{what} failed (exit {proc.returncode}): {_log_tail(log_path)} (log: {log_path})",
                          hint=fail_hint)


def convert_int8_tflite(onnx_path: str | Path, calibration_features, out_path: str | Path,
                        workdir: str | Path, *, timeout_s: float = 900.0,
                        min_calibration: int = MIN_CALIBRATION_CLIPS,
                        rewrite_grouped_conv: bool = False, calibration: str = "minmax",
                        percentile: float | None = None) -> dict:
    """Full-integer int8 post-training quantisation of an ONNX classifier with onnx2tf.

    Args:
        onnx_path: ONNX model with one static input ``(1, C, M, T)`` float32 (from
            :func:`~asc_edge.export.onnx.export_onnx`; it is copied into ``workdir`` because
            onnx2tf rewrites its input file).
        calibration_features: ``(N, C, M, T)`` float32 real training-clip features (log-mel,
            natural-log units, the frontend of the model), ``N >= min_calibration``. Saved to
            ``workdir/calibration_nhwc.npy`` as ``(N, M, T, C)``.
        out_path: where the int8 ``.tflite`` goes (written atomically).
        workdir: scratch folder for onnx2tf (``onnx2tf/`` SavedModel and all its variants,
            ``onnx2tf.log``); kept for debugging.
        timeout_s: wall-clock limit of the onnx2tf subprocess (about 45 s for CP-Mobile with 200
            clips on 2 cores).
        min_calibration: minimum number of calibration clips (issue 3: 200).
        rewrite_grouped_conv: apply :func:`rewrite_grouped_conv_as_depthwise` to the converter's
            output (exact; default off: ``out_path`` is then byte-identical to onnx2tf's
            ``*_full_integer_quant.tflite``).
        calibration: activation-range calibration (:mod:`asc_edge.export.calibration`):
            ``minmax`` keeps onnx2tf's file (TFLite's min/max ranges); ``percentile`` / ``mse``
            re-quantise onnx2tf's SavedModel with those ranges in a second subprocess.
        percentile: the percentile for ``percentile`` (default 99.999).

    Returns a report dict: ``path``, ``bytes``, ``sha256``, ``input`` / ``output`` (shape,
    dtype, scale, zero_point), ``op_counts``, ``n_ops``, ``ops`` (see :func:`inspect_tflite`),
    ``ops_text`` (:func:`format_ops`), ``grouped_conv`` (CONV_2D ops with groups > 1 in the
    written file), ``rewritten_as_depthwise`` (op indices), ``weights``, ``calibration``
    (``n_clips``, NHWC ``shape``, ``min``/``max``), ``converter`` (tool, version, args, log
    path, TensorFlow version), ``wall_s``.

    Raises:
        ExportError: missing/corrupt ONNX, calibration data of the wrong shape / too few clips /
            non-finite, onnx2tf failing or timing out (the message carries the log tail), no
            ``*_full_integer_quant.tflite`` produced, or a produced model that is not
            full-integer (float input/output, per-tensor weights, non-int32 biases,
            custom/Flex ops).
    """
    from asc_edge.report.io import write_bytes_atomic

    t0 = time.perf_counter()
    onnx_path, out_path, workdir = Path(onnx_path), Path(out_path), Path(workdir).resolve()
    input_name, in_shape = _onnx_input(onnx_path)

    x = np.asarray(calibration_features)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(in_shape[1:]):
        raise ExportError(f"calibration features have shape {tuple(x.shape)}, expected (N, {', '.join(map(str, in_shape[1:]))})",
                          hint="pass training-split features computed with the model's frontend")
    if len(x) < min_calibration:
        raise ExportError(f"{len(x)} calibration clips, at least {min_calibration} required",
                          hint="use more training clips (e.g. split 100) for calibration")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ExportError("calibration features contain NaN or Inf", hint="recompute the features")

    workdir.mkdir(parents=True, exist_ok=True)
    model_copy = workdir / "model.onnx"
    shutil.copyfile(onnx_path, model_copy)
    calib_path = workdir / "calibration_nhwc.npy"
    np.save(calib_path, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    out_dir = workdir / "onnx2tf"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    log_path = workdir / "onnx2tf.log"
    args = ["-i", str(model_copy), "-o", str(out_dir), *ONNX2TF_ARGS,
            "-cind", input_name, str(calib_path), "[[[[0.0]]]]", "[[[[1.0]]]]"]
    cmd = [sys.executable, "-m", "onnx2tf", *args]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "1",
           "PYTHONUNBUFFERED": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}
    t_conv = time.perf_counter()
    log_path.unlink(missing_ok=True)
    _run_logged(cmd, log_path, env, timeout_s, workdir, "onnx2tf",
                timeout_hint="raise timeout_s, or check the log for a conversion stuck on an operator",
                fail_hint="a missing package (see scripts/requirements-export.txt) or an unsupported operator; "
                          "read the log")
    convert_s = time.perf_counter() - t_conv
    found = sorted(out_dir.glob("*_full_integer_quant.tflite"))
    if len(found) != 1:
        raise ExportError(f"onnx2tf wrote no *_full_integer_quant.tflite in {out_dir}: {_log_tail(log_path)}",
                          hint=f"full-integer quantisation failed; read {log_path}")
    data = found[0].read_bytes()
    source_sha256 = hashlib.sha256(data).hexdigest()
    calib_info = {"method": "minmax", "percentile": None}
    if calibration != "minmax":
        calib_info = _recalibrate(out_dir, calib_path, calibration, percentile, workdir, timeout_s, env)
        data = (workdir / "recalibrated.tflite").read_bytes()
    rewritten: list[int] = []
    if rewrite_grouped_conv:
        data, rewritten = rewrite_grouped_conv_as_depthwise(data)
    info = inspect_tflite(data)
    problems = _check_full_integer(info)
    if problems:
        raise ExportError(f"{found[0]} is not a full-integer int8 model: " + "; ".join(problems[:5]),
                          hint="an operator TFLite cannot quantise; change the model or the converter flags")
    write_bytes_atomic(out_path, data)

    import importlib.metadata as md

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {
        "path": str(out_path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "input": {k: info["input"][k] for k in ("shape", "dtype", "scale", "zero_point")},
        "output": {k: info["output"][k] for k in ("shape", "dtype", "scale", "zero_point")},
        "n_ops": info["n_ops"],
        "op_counts": info["op_counts"],
        "ops": info["ops"],
        "ops_text": format_ops(info),
        "grouped_conv": info["grouped_conv"],
        "rewritten_as_depthwise": rewritten,
        "weights": info["weights"],
        "calibration": {"n_clips": int(len(x)), "shape_nhwc": [int(s) for s in x.transpose(0, 2, 3, 1).shape],
                        "min": float(x.min()), "max": float(x.max()), "mean": 0.0, "std": 1.0,
                        "activation_ranges": calib_info},
        "converter": {"tool": "onnx2tf", "version": version("onnx2tf"), "args": args, "log": str(log_path),
                      "source": found[0].name, "source_sha256": source_sha256,
                      "tensorflow": version("tensorflow"), "wall_s": round(convert_s, 3)},
        "wall_s": round(time.perf_counter() - t0, 3),
    }
