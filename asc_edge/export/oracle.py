"""The int8 reference oracle: tflite-micro's Python interpreter.

Why tflite-micro: its kernels are TFLite's reference integer kernels (``BUILTIN_REF``), which
is what a CMSIS-NN-semantics C implementation must match bit for bit. TensorFlow's default /
XNNPACK interpreter (``tf.lite.Interpreter``, ``ai_edge_litert``) uses optimised kernels that
differ by ±1 LSB on some elements (MEAN worst), so it is never the oracle here; it may only
cross-check with a tolerance.

API used (``tflite_micro.runtime``, PyPI ``tflite-micro``, checked on
``0.dev20261023182759-g8f6596d``): ``Interpreter.from_file(path, arena_size=...,
intrepreter_config=InterpreterConfig.kAllocationRecording | kPreserveAllTensors)`` (the keyword
is spelled ``intrepreter_config`` there), ``set_input(array, 0)``, ``invoke()``,
``get_output(0)``, ``get_input_details(0)`` / ``get_output_details(0)`` (shape, dtype,
``quantization_parameters`` scales / zero_points), ``print_allocations()`` (the
RecordingMicroAllocator's arena report, printed by C++ to the process's stderr; only meaningful
in the default ``kAllocationRecording`` mode) and ``GetTensor(tensor_index, subgraph_index)``
(any tensor's ``{"dtype", "shape", "tensor_data"}``; refused with RuntimeError unless the
interpreter was built with ``kPreserveAllTensors``, which gives every tensor its own arena
space so intermediates survive ``invoke()``; an out-of-range index crashes the process, so
indices are checked against the flatbuffer first).

Input quantisation follows TFLite's QUANTIZE reference kernel (``reference_ops::AffineQuantize``):
``q = clamp(round(x / scale) + zero_point, -128, 127)`` with ``x / scale`` computed in float32
and ``round`` = ``std::round``, i.e. round half away from zero. Dequantisation follows
DEQUANTIZE: ``x = scale · (q − zero_point)``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from . import ExportError

__all__ = ["TflmOracle", "quantize_affine", "dequantize_affine", "DEFAULT_ARENA_SIZE"]

DEFAULT_ARENA_SIZE = 512 * 1024
"""Arena for the normal (recording) interpreter; CP-Mobile baseline needs ≈ 232,000 bytes."""


def quantize_affine(x, scale: float, zero_point: int) -> np.ndarray:
    """TFLite int8 affine quantisation of float ``x`` (any shape): ``clamp(round(x/scale) + zp)``.

    ``x / scale`` in float32 (as ``TfLiteRound(val / static_cast<float>(scale))``), rounding half
    away from zero (``std::round``), clamped to [-128, 127]. Returns int8 of ``x``'s shape.
    """
    v = np.asarray(x, dtype=np.float32) / np.float32(scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))  # round half away from zero
    return np.clip(r.astype(np.int64) + int(zero_point), -128, 127).astype(np.int8)


def dequantize_affine(q, scale: float, zero_point: int) -> np.ndarray:
    """``scale · (q − zero_point)`` as float32 (product in float64, as TFLite's DEQUANTIZE)."""
    return (float(scale) * (np.asarray(q, dtype=np.int64) - int(zero_point))).astype(np.float32)


def _capture_stderr(fn) -> str:
    """Run ``fn()`` with the process-level stderr (fd 2) redirected; return what was written."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode("utf-8", "replace")


class TflmOracle:
    """Bit-exact int8 reference for a full-integer ``.tflite`` classifier (tflite-micro).

    Args:
        tflite_path: int8 model from :func:`~asc_edge.export.tflite.convert_int8_tflite`
            (input ``(1, M, T, 1)`` int8, output ``(1, n_classes)`` int8).
        arena_size: tensor arena in bytes for the interpreter (explicit, as on the device).
            Default: 512 KiB (CP-Mobile needs ~232 KB), or the sum of all tensor sizes + 256 KiB
            where that is larger (an upper bound of what tflite-micro plans: e.g. the full-size KT
            Ghost-BC-Res2Net students need ~0.6–1 MB).
        debug_arena_size: arena of the second, lazily built ``kPreserveAllTensors`` interpreter
            used by :meth:`intermediates` (default: 2 × the sum of all tensor sizes + 256 KiB).

    Raises:
        ExportError: missing file, not a flatbuffer, an operator tflite-micro does not register,
            or an arena too small (the message says so; raise ``arena_size``).
    """

    def __init__(self, tflite_path: str | Path, arena_size: int | None = None, *,
                 debug_arena_size: int | None = None):
        from .tflite import inspect_tflite

        self.path = Path(tflite_path)
        if not self.path.is_file():
            raise ExportError(f"{self.path}: TFLite model not found", hint="run the int8 conversion first")
        self.info = inspect_tflite(self.path)
        if self.info["non_builtin"]:
            nb = self.info["non_builtin"][0]
            raise ExportError(f"{self.path}: op {nb['index']} is {nb['op']}, which tflite-micro cannot run",
                              hint="convert without Flex/custom operators")
        self.arena_size = int(arena_size) if arena_size is not None else \
            max(DEFAULT_ARENA_SIZE, self._all_tensor_bytes() + 256 * 1024)
        self._debug_arena_size = debug_arena_size
        self._interp = self._make(self.arena_size, preserve=False)
        self._debug = None
        self._invoked = False
        din = self._interp.get_input_details(0)
        dout = self._interp.get_output_details(0)
        self.input_shape = tuple(int(s) for s in din["shape"])
        self.output_shape = tuple(int(s) for s in dout["shape"])
        if din["dtype"] is not np.int8 or dout["dtype"] is not np.int8:
            raise ExportError(f"{self.path}: input {din['dtype'].__name__} / output {dout['dtype'].__name__}, expected int8",
                              hint="convert with -iqd int8 -oqd int8 (convert_int8_tflite)")
        self._in_q = (float(din["quantization_parameters"]["scales"][0]),
                      int(din["quantization_parameters"]["zero_points"][0]))
        self._out_q = (float(dout["quantization_parameters"]["scales"][0]),
                       int(dout["quantization_parameters"]["zero_points"][0]))

    def _make(self, arena: int, preserve: bool):
        from tflite_micro import runtime

        cfg = (runtime.InterpreterConfig.kPreserveAllTensors if preserve
               else runtime.InterpreterConfig.kAllocationRecording)
        try:
            return runtime.Interpreter.from_file(str(self.path), arena_size=int(arena), intrepreter_config=cfg)
        except (RuntimeError, ValueError) as exc:
            raise ExportError(f"{self.path}: tflite-micro cannot set up the model with a {arena:,}-byte arena "
                              f"({type(exc).__name__}: {exc})",
                              hint="raise arena_size (the arena is too small) or check that every operator "
                                   "is one tflite-micro implements") from None

    # -- quantisation -------------------------------------------------------------------------
    @property
    def input_quant(self) -> tuple[float, int]:
        """(scale, zero_point) of the int8 input: ``x ≈ scale · (q − zero_point)``."""
        return self._in_q

    @property
    def output_quant(self) -> tuple[float, int]:
        """(scale, zero_point) of the int8 output logits."""
        return self._out_q

    def quantize(self, features) -> np.ndarray:
        """Float features → int8 model input, NCHW → NHWC.

        ``features``: one clip ``(C, M, T)`` → ``(1, M, T, C)``, or a batch ``(N, C, M, T)`` →
        ``(N, M, T, C)``; float log-mel as fed to the PyTorch model. Rounding: see
        :func:`quantize_affine` (TFLite QUANTIZE semantics).

        Raises:
            ExportError: a shape other than the model's input.
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.transpose(0, 2, 3, 1).shape[1:]) != self.input_shape[1:]:
            raise ExportError(f"features of shape {np.shape(features)} do not fit the model input {self.input_shape} "
                              f"(NHWC; expected NCHW (N, {self.input_shape[3]}, {self.input_shape[1]}, {self.input_shape[2]}))",
                              hint="use the frontend the model was exported with")
        return quantize_affine(x.transpose(0, 2, 3, 1), *self._in_q)

    def dequantize(self, q) -> np.ndarray:
        """int8 output logits → float32 logits (``scale · (q − zero_point)``)."""
        return dequantize_affine(q, *self._out_q)

    # -- inference ----------------------------------------------------------------------------
    def _check_input(self, q) -> np.ndarray:
        q = np.asarray(q)
        if q.dtype != np.int8:
            raise ExportError(f"oracle input has dtype {q.dtype}, expected int8", hint="quantize() the features first")
        if q.shape == self.input_shape[1:]:
            q = q[None]
        if q.ndim != 4 or q.shape[1:] != self.input_shape[1:]:
            raise ExportError(f"oracle input has shape {q.shape}, expected (N, {', '.join(map(str, self.input_shape[1:]))})",
                              hint="quantize() NCHW features; they come out NHWC")
        return np.ascontiguousarray(q)

    def invoke(self, q) -> np.ndarray:
        """Run the int8 model. ``q``: int8 NHWC ``(1, M, T, C)`` or ``(M, T, C)`` → int8 logits
        ``(n_classes,)``; a batch ``(N, M, T, C)`` → ``(N, n_classes)`` (one invoke per clip).

        Raises:
            ExportError: wrong dtype/shape, or tflite-micro reports an invoke error.
        """
        q = self._check_input(q)
        out = []
        for clip in q:
            self._interp.set_input(clip[None], 0)
            try:
                self._interp.invoke()
            except RuntimeError as exc:
                raise ExportError(f"tflite-micro invoke failed: {exc}", hint="check the model and the arena size") from None
            out.append(np.array(self._interp.get_output(0), dtype=np.int8).reshape(-1))
        self._invoked = True
        return out[0] if len(out) == 1 and np.asarray(q).shape[0] == 1 else np.stack(out)

    def predict(self, features) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(N, C, M, T)`` float → (int8 logits ``(N, n_classes)``, dequantised float32)."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        q = np.stack([self.invoke(self.quantize(clip)) for clip in x]) if len(x) else \
            np.zeros((0, self.output_shape[-1]), np.int8)
        return q, self.dequantize(q)

    # -- memory -------------------------------------------------------------------------------
    def arena_usage(self) -> dict:
        """tflite-micro's own arena accounting (RecordingMicroAllocator), in bytes:
        ``total`` (= head + tail: the arena size the model needs), ``head`` (non-persistent:
        the planned activation buffers and scratch), ``tail`` (persistent: tensor structs,
        quantisation data, kernels' op data), plus per-kind ``records`` {name: bytes}.
        Runs one invoke on a zero input first if none ran yet (scratch buffers are requested
        in Prepare, so the figures do not depend on the input).

        Raises:
            ExportError: the report could not be parsed (another tflite-micro version).
        """
        if not self._invoked:
            self.invoke(np.zeros(self.input_shape, np.int8))
        text = _capture_stderr(self._interp.print_allocations)
        def grab(key: str) -> int | None:
            m = re.search(rf"Arena allocation {key} (\d+) bytes", text)
            return int(m.group(1)) if m else None
        total, head, tail = grab("total"), grab("head"), grab("tail")
        if total is None:
            raise ExportError(f"cannot parse tflite-micro's allocation report: {text[:200]!r}",
                              hint="the tflite-micro version prints another format; update oracle.arena_usage")
        records = {m.group(1): int(m.group(2))
                   for m in re.finditer(r"'([^']+)' used (\d+) bytes", text)}
        return {"total": total, "head": head, "tail": tail, "records": records,
                "arena_size_given": self.arena_size}

    def arena_used_bytes(self) -> int:
        """Bytes of arena the model really uses (``arena_usage()["total"]``)."""
        return self.arena_usage()["total"]

    # -- debugging: every tensor ----------------------------------------------------------------
    def intermediates(self, q) -> list[dict]:
        """Run one clip on a second interpreter that keeps every tensor, and return each
        operator's output: a list in execution order of ``{"op_index", "op", "tensor", "name",
        "shape", "data"}`` (``data``: int8/int32 ndarray, NHWC) — the per-layer reference for a
        bit-exactness check. ``q``: int8 ``(1, M, T, C)`` or ``(M, T, C)``.

        The debug interpreter (``kPreserveAllTensors``: no buffer reuse, so it needs a larger
        arena) gives the same outputs as the normal one: the memory plan does not change any
        kernel's arithmetic.
        """
        q = self._check_input(q)
        if q.shape[0] != 1:
            raise ExportError("intermediates() takes one clip", hint="pass q[i:i+1]")
        if self._debug is None:
            size = self._debug_arena_size or self._all_tensor_bytes() * 2 + 256 * 1024
            self._debug = self._make(size, preserve=True)
        self._debug.set_input(q, 0)
        self._debug.invoke()
        out = []
        for op in self.info["ops"]:
            for t in op["outputs"]:
                idx = t["tensor"]
                if not 0 <= idx < self.info["n_tensors"]:
                    continue
                got = self._debug.GetTensor(idx, 0)
                data = np.array(got["tensor_data"]).reshape([int(s) for s in got["shape"]])
                out.append({"op_index": op["index"], "op": op["op"], "tensor": idx, "name": t["name"],
                            "shape": list(data.shape), "data": data})
        return out

    def tensor(self, index: int) -> np.ndarray:
        """Any tensor (by flatbuffer index) of the last :meth:`intermediates` run, or a
        constant (weights, biases)."""
        if not 0 <= int(index) < self.info["n_tensors"]:
            raise ExportError(f"tensor index {index} out of range 0..{self.info['n_tensors'] - 1}",
                              hint="take indices from oracle.info['ops']")
        if self._debug is None:
            raise ExportError("no debug run yet", hint="call intermediates(q) first")
        got = self._debug.GetTensor(int(index), 0)
        return np.array(got["tensor_data"]).reshape([int(s) for s in got["shape"]])

    def _all_tensor_bytes(self) -> int:
        sizes = {"INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4, "FLOAT32": 4, "INT64": 8}
        seen, total = set(), 0
        for op in self.info["ops"]:
            for t in op["inputs"] + op["outputs"]:
                if t.get("tensor", -1) < 0 or t["tensor"] in seen or t.get("const"):
                    continue
                seen.add(t["tensor"])
                n = int(np.prod(t["shape"])) if t["shape"] else 1
                total += (n * sizes.get(t["dtype"], 4) + 15) // 16 * 16
        return total
