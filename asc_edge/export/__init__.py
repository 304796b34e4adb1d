"""Export chain of a trained model: PyTorch → ONNX → int8 TFLite → tflite-micro reference oracle.

Modules (imported lazily, because each pulls a heavy dependency that only the export
environment has — see ``scripts/requirements-export.txt``):

- :mod:`asc_edge.export.onnx` — :func:`fold_batchnorm`, :func:`export_onnx` (torch + onnx +
  onnxruntime).
- :mod:`asc_edge.export.tflite` — :func:`convert_int8_tflite` (onnx2tf + TensorFlow's
  TFLiteConverter, full-integer post-training quantisation) and :func:`inspect_tflite`
  (a plain-dict summary of a ``.tflite``, read with :func:`asc_edge.codegen.tflite_reader.read_tflite`).
- :mod:`asc_edge.export.oracle` — :class:`TflmOracle`, the bit-exact int8 reference
  (tflite-micro's Python interpreter, i.e. TFLM's reference kernels).

Importing this package itself is cheap (``ExportError`` lives in :mod:`asc_edge.errors`).
"""

from __future__ import annotations

from asc_edge.errors import ExportError

__all__ = ["ExportError", "fold_batchnorm", "export_onnx", "convert_int8_tflite", "inspect_tflite",
           "TflmOracle"]


_LAZY = {
    "fold_batchnorm": "onnx",
    "export_onnx": "onnx",
    "convert_int8_tflite": "tflite",
    "inspect_tflite": "tflite",
    "TflmOracle": "oracle",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
