"""The one ``.tflite`` reader of asc-edge (flatbuffer → plain Python objects).

Built on the flatbuffer schema bundled with tflite-micro
(``tflite_micro.tensorflow.lite.micro.python.schema_py_generated``, object API), the same binding
the tflite-micro oracle ships and the one used to *write* rewritten or cut-down models
(:attr:`TfliteModel.model` is the mutable ``ModelT``). Every other module (export checks, the code
generator, the oracle's debug tools, the kernel tests) reads ``.tflite`` files through
:func:`read_tflite`.

Operator options are returned generically: every field of the operator's ``*OptionsT`` object under
its schema name (``strideH``, ``padding``, ``fusedActivationFunction``, ``depthMultiplier``, …),
with the enum fields ``padding`` and ``fusedActivationFunction`` as their names (``"SAME"``,
``"RELU6"``). An operator module reads the fields it needs; nothing here knows about operators.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError

__all__ = ["TensorInfo", "OpInfo", "TfliteModel", "read_tflite", "schema"]

_NP_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
             "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "BOOL": np.bool_}


def schema():
    """tflite-micro's bundled ``schema_py_generated`` module (flatbuffer object API)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    return fb


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of subgraph 0.

    ``shape``: as stored (activations NHWC); ``dtype``: schema name (``"INT8"``, ``"INT32"``,
    ``"FLOAT32"`` …); ``data``: the constant's values as a shaped ndarray, or None for an activation;
    ``scales`` (float32) / ``zero_points`` (int64): full per-channel arrays (empty when not
    quantised); ``quantized_dimension``: the per-channel axis."""
    index: int
    name: str
    shape: tuple
    dtype: str
    data: np.ndarray | None
    scales: np.ndarray
    zero_points: np.ndarray
    quantized_dimension: int

    @property
    def const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return len(self.scales) > 0

    @property
    def scale(self) -> float:
        """The first (per-tensor) scale; raises ExportError when the tensor is not quantised."""
        if not self.quantized:
            raise ExportError(f"tensor {self.name!r} is not quantised", hint="full-integer quantisation needed")
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if len(self.zero_points) else 0

    @property
    def size(self) -> int:
        """Elements (= bytes for int8)."""
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class OpInfo:
    """One operator: ``index`` in execution order, builtin ``op`` name (``"CONV_2D"``; custom ops
    ``"CUSTOM:<code>"``), ``inputs`` / ``outputs`` tensor indices (-1: optional input absent),
    ``options`` (see the module docstring)."""
    index: int
    op: str
    inputs: tuple
    outputs: tuple
    options: dict


@dataclass(frozen=True)
class TfliteModel:
    """A parsed ``.tflite`` (subgraph 0). ``model``: the schema's mutable ``ModelT`` (for writers);
    ``sha256``: of the file's bytes; ``bytes``: its size."""
    tensors: tuple
    ops: tuple
    inputs: tuple
    outputs: tuple
    sha256: str
    bytes: int
    model: object

    def tensor(self, index: int) -> TensorInfo | None:
        return None if index < 0 else self.tensors[index]

    def consumers(self) -> dict:
        """tensor index → indices of the operators that read it."""
        out: dict[int, list[int]] = {}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0:
                    out.setdefault(t, []).append(op.index)
        return out


def _options(obj, pad: dict, act: dict) -> dict:
    if obj is None:
        return {}
    d = {}
    for k, v in vars(obj).items():
        if k == "padding":
            v = pad.get(v, v)
        elif k == "fusedActivationFunction":
            v = act.get(v, v)
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        d[k] = v
    return d


def read_tflite(model) -> TfliteModel:
    """Parse a ``.tflite`` flatbuffer (path or bytes).

    Raises:
        ExportError: the file is missing, not a TFLite flatbuffer (no ``TFL3`` identifier,
            truncated or corrupt) or has no subgraph.
    """
    fb = schema()
    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        if not p.is_file():
            raise ExportError(f"{p}: TFLite model not found", hint="run the int8 conversion first")
        buf = p.read_bytes()
        where = f"{p}: "
    else:
        buf = bytes(model)
        where = ""
    try:
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise ValueError("missing the TFL3 file identifier")
        m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(buf, 0))
        if not m.subgraphs:
            raise ValueError("no subgraph")
        sg = m.subgraphs[0]
        dtypes, ops_by_code = _enum_names(fb.TensorType), _enum_names(fb.BuiltinOperator)
        pad, act = _enum_names(fb.Padding), _enum_names(fb.ActivationFunctionType)
        tensors = []
        for i, t in enumerate(sg.tensors or []):
            dtype = dtypes.get(t.type, str(t.type))
            shape = tuple(int(s) for s in t.shape) if t.shape is not None else ()
            b = m.buffers[t.buffer] if 0 < t.buffer < len(m.buffers) else None
            data = None
            if b is not None and b.data is not None and len(b.data) and dtype in _NP_TYPES:
                data = np.asarray(b.data, np.uint8).view(_NP_TYPES[dtype]).reshape(shape).copy()
            q = t.quantization
            scales = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
            zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
            if len(scales) and not len(zps):
                zps = np.zeros(len(scales), np.int64)
            name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or "")
            tensors.append(TensorInfo(i, name, shape, dtype, data, scales, zps,
                                      int(q.quantizedDimension) if q is not None else 0))
        ops = []
        for i, op in enumerate(sg.operators or []):
            oc = m.operatorCodes[op.opcodeIndex]
            name = ops_by_code.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "UNKNOWN")
            if name == "CUSTOM":
                cc = oc.customCode
                name = "CUSTOM:" + (cc.decode("utf-8", "replace") if isinstance(cc, bytes) else str(cc or "?"))
            ins = tuple(int(j) for j in (op.inputs if op.inputs is not None else []))
            outs = tuple(int(j) for j in (op.outputs if op.outputs is not None else []))
            ops.append(OpInfo(i, name, ins, outs, _options(op.builtinOptions, pad, act)))
        g_in = tuple(int(j) for j in (sg.inputs if sg.inputs is not None else []))
        g_out = tuple(int(j) for j in (sg.outputs if sg.outputs is not None else []))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"{where}not a TFLite flatbuffer ({type(exc).__name__}: {exc})",
                          hint="re-run the int8 conversion; the file is truncated or of another format") from None
    return TfliteModel(tuple(tensors), tuple(ops), g_in, g_out, hashlib.sha256(buf).hexdigest(), len(buf), m)
