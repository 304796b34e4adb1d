"""Activation-range calibration for the int8 conversion: min/max, percentile or MSE ranges.

TFLite's post-training quantiser sets every activation tensor's int8 range to the minimum and
maximum seen on the representative data set. One outlier then costs every other value resolution:
on the KT Ghost-BC-Res2Net students the calibrated ranges are 2–6× the typical clip's, and the int8
model predicts one class for every clip (``benchmarks/results/int8_calibration.md``). This module
replaces the ranges before quantisation, with the converter's own machinery:

1. ``TFLiteConverter.from_saved_model`` (the SavedModel onnx2tf wrote) with the flags onnx2tf uses
   for its full-integer model and ``_experimental_calibrate_only``: TFLite's calibrator records each
   float activation's min/max in the tensor's ``quantization.min/max`` fields (this is what
   ``tf.lite.experimental.QuantizationDebugger`` does);
2. the calibrated float model runs on the calibration clips (TFLite built-in kernels, no delegate,
   all tensors kept) and a 2048-bin histogram of each recorded tensor is taken over its min/max;
3. each recorded range is replaced (the graph input keeps its min/max, so the frontend's input
   quantisation is unchanged):

   - ``minmax``: unchanged (the converter's own result; bit-identical logits to onnx2tf's file);
   - ``percentile``: the central ``percentile`` % of all values (default 99.999 %, onnxruntime's
     ``HistogramCalibrater`` default; TensorRT offers 99.9–99.999), widened to include 0;
   - ``mse``: the range ``[f·min, f·max]``, ``f`` in 60 steps over (0, 1], minimising the expected
     squared quantisation error (rounding inside, clipping outside) over the histogram
     (TensorRT's/onnxruntime's MSE calibration, on the histogram's bin centres);

   and, for ``percentile`` and ``mse``, every RSQRT's output range is capped at ``1/√s``, ``s`` the
   int8 step of its input: no smaller positive input can be represented, so larger outputs only come
   from inputs that are exactly 0 — in the ResNorm / InstanceNorm of the KT students, dead channels
   (variance 0, ``1/√eps`` = 316) that stretch the range of every live channel's ``1/σ`` (0.2–3) to
   [0, 316] with a step of 1.24; their ``x − mean`` is 0, so the cap changes nothing there.
4. ``mlir_quantize`` (the converter's MLIR quantiser, the default path of ``convert()``) turns the
   calibrated model into the full-integer int8 model: int8 input/output, per-channel int8 weights,
   int32 biases, and every range constraint of the TFLite int8 op set (shared scales of
   concatenation, pooling, fixed LOGISTIC output, …) applied by the quantiser itself.

Run as ``python -m asc_edge.export.calibration`` in the export environment (TensorFlow), a
subprocess of :func:`asc_edge.export.tflite.convert_int8_tflite` with a timeout.

Raises (:func:`recalibrate`): ``ExportError`` for an unknown method or a calibration data set of the
wrong shape; TensorFlow's own errors propagate to the subprocess log.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import ExportError

METHODS = ("minmax", "percentile", "mse")
"""Activation-range calibration methods, in the order of ``export --calibration``."""

DEFAULT_PERCENTILE = 99.999
N_BINS = 2048


def _representative(x: np.ndarray):
    def gen():
        for i in range(len(x)):
            yield [x[i:i + 1]]
    return gen


def calibrate_only(saved_model: Path, x: np.ndarray) -> bytes:
    """The float TFLite model with TFLite's calibrated min/max in every activation tensor.

    ``x``: ``(N, n_mels, frames, 1)`` float32 calibration features (NHWC, as onnx2tf feeds them).
    Converter flags are onnx2tf's full-integer ones (``TFLITE_BUILTINS_INT8`` + ``SELECT_TF_OPS``,
    per-channel weights, int8 input/output)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.SELECT_TF_OPS]
    conv.representative_dataset = _representative(x)
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_calibrate_only = True  # noqa: SLF001 (the QuantizationDebugger's route)
    return bytes(conv.convert())


def _recorded(model) -> dict[int, tuple[float, float]]:
    """Tensor index → (min, max) recorded by the calibrator (per-tensor ranges only)."""
    out = {}
    for i, t in enumerate(model.subgraphs[0].tensors):
        q = t.quantization
        if q is not None and q.min is not None and q.max is not None and len(q.min) == 1:
            out[i] = (float(q.min[0]), float(q.max[0]))
    return out


def histograms(calibrated: bytes, x: np.ndarray, ranges: dict[int, tuple[float, float]],
               n_bins: int = N_BINS) -> dict[int, np.ndarray]:
    """Counts of each recorded tensor's values over all calibration clips, ``n_bins`` equal bins over
    its recorded [min, max] (float TFLite kernels, no delegate, so intermediate tensors are kept)."""
    import tensorflow as tf

    it = tf.lite.Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    hist = {i: np.zeros(n_bins, np.int64) for i in ranges}
    for k in range(len(x)):
        it.set_tensor(inp, x[k:k + 1])
        it.invoke()
        for i, (lo, hi) in ranges.items():
            v = it.get_tensor(i)
            hist[i] += np.histogram(v, bins=n_bins, range=(lo, hi if hi > lo else lo + 1e-6))[0]
    return hist


def percentile_range(lo: float, hi: float, h: np.ndarray, percentile: float) -> tuple[float, float]:
    """The central ``percentile`` % of the histogram ``h`` over [lo, hi] (bin edges, outward),
    widened to include 0."""
    c = np.cumsum(h)
    n = c[-1]
    if n == 0 or hi <= lo:
        return lo, hi
    tail = (1.0 - percentile / 100.0) / 2.0
    edges = np.linspace(lo, hi, len(h) + 1)
    a = int(np.searchsorted(c, n * tail, side="right"))
    b = int(np.searchsorted(c, n * (1.0 - tail), side="left"))
    return min(float(edges[a]), 0.0), max(float(edges[min(b + 1, len(h))]), 0.0)


def mse_range(lo: float, hi: float, h: np.ndarray, n_steps: int = 60) -> tuple[float, float]:
    """``[f·lo, f·hi]`` (0 included) minimising the expected squared int8 error over ``h``'s bin centres."""
    n = h.sum()
    if n == 0 or hi <= lo:
        return lo, hi
    centres = lo + (np.arange(len(h)) + 0.5) * (hi - lo) / len(h)
    best = (np.inf, lo, hi)
    for f in np.linspace(1.0 / n_steps, 1.0, n_steps):
        a, b = min(lo * f, 0.0), max(hi * f, 0.0)
        step = (b - a) / 255.0
        if step <= 0:
            continue
        q = np.clip(np.round((centres - a) / step), 0, 255) * step + a
        err = float(((q - centres) ** 2 * h).sum())
        if err < best[0]:
            best = (err, a, b)
    return best[1], best[2]


def recalibrate(saved_model: str | Path, calibration_nhwc: str | Path, method: str, out_path: str | Path, *,
                percentile: float = DEFAULT_PERCENTILE) -> dict:
    """Write the full-integer int8 model of ``saved_model`` with ``method``'s activation ranges.

    Args:
        saved_model: onnx2tf's SavedModel folder.
        calibration_nhwc: ``.npy`` of ``(N, n_mels, frames, 1)`` float32 calibration features.
        method: one of :data:`METHODS`.
        out_path: the int8 ``.tflite`` to write.
        percentile: for ``percentile``: the central share of values kept, in % (0, 100].

    Returns ``{"method", "percentile", "n_tensors", "n_narrowed", "median_width_ratio",
    "rsqrt_capped": [tensor names]}`` (``median_width_ratio``: new / min-max range width, median
    over the recorded tensors).

    Raises:
        ExportError: unknown method, percentile outside (0, 100], features not ``(N, M, T, 1)``.
    """
    import flatbuffers
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    from asc_edge.codegen.tflite_reader import read_tflite, schema

    if method not in METHODS:
        raise ExportError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if not 0.0 < percentile <= 100.0:
        raise ExportError(f"percentile {percentile} outside (0, 100]", hint="e.g. 99.999")
    x = np.load(calibration_nhwc).astype(np.float32, copy=False)
    if x.ndim != 4:
        raise ExportError(f"{calibration_nhwc}: calibration features have shape {x.shape}, expected (N, M, T, 1)",
                          hint="pass the NHWC array convert_int8_tflite writes")
    calibrated = calibrate_only(Path(saved_model), x)
    model = read_tflite(calibrated).model
    sg = model.subgraphs[0]
    ranges = _recorded(model)
    fixed = set(int(i) for i in sg.inputs)  # the graph input keeps the frontend's quantisation
    new = dict(ranges)
    capped: list[str] = []
    if method != "minmax":
        hist = histograms(calibrated, x, ranges)
        for i, (lo, hi) in ranges.items():
            if i in fixed:
                continue
            new[i] = percentile_range(lo, hi, hist[i], percentile) if method == "percentile" \
                else mse_range(lo, hi, hist[i])
        fb = schema()
        codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in model.operatorCodes]
        for op in sg.operators:
            if codes[op.opcodeIndex] == fb.BuiltinOperator.RSQRT and op.outputs[0] in new and op.inputs[0] in new:
                a, b = new[op.inputs[0]]
                cap = 1.0 / np.sqrt((b - min(a, 0.0)) / 255.0)
                lo, hi = new[op.outputs[0]]
                if hi > cap:
                    new[op.outputs[0]] = (lo, float(cap))
                    capped.append(sg.tensors[op.outputs[0]].name.decode(errors="replace"))
    for i, (lo, hi) in new.items():
        q = sg.tensors[i].quantization
        q.min, q.max = np.array([lo], np.float32), np.array([hi], np.float32)
    builder = flatbuffers.Builder(len(calibrated) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    data = mlir_quantize(bytes(builder.Output()), False, input_data_type=tf.int8, output_data_type=tf.int8)
    Path(out_path).write_bytes(data)
    ratios = [(new[i][1] - new[i][0]) / (hi - lo) for i, (lo, hi) in ranges.items() if hi > lo]
    return {"method": method, "percentile": percentile if method == "percentile" else None,
            "n_tensors": len(ranges), "n_narrowed": int(sum(r < 1.0 - 1e-6 for r in ratios)),
            "median_width_ratio": round(float(np.median(ratios)), 4) if ratios else 1.0,
            "rsqrt_capped": capped}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="re-calibrate onnx2tf's SavedModel into a full-integer int8 TFLite model")
    ap.add_argument("--saved-model", required=True)
    ap.add_argument("--data", required=True, help="(N, n_mels, frames, 1) float32 .npy")
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE)
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", required=True)
    a = ap.parse_args(argv)
    try:
        rep = recalibrate(a.saved_model, a.data, a.method, a.out, percentile=a.percentile)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(a.report).write_text(json.dumps(rep, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
