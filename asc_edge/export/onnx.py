"""PyTorch → ONNX: BatchNorm folding, the legacy (TorchScript-based) exporter, checker and
onnxruntime parity.

Exporter choice: ``torch.onnx.export(..., dynamo=False)`` — the legacy TorchScript-tracing exporter.
At opset 17 it emits plain ``Conv`` / ``Relu`` / ``Add`` / ``AveragePool`` /
``GlobalAveragePool`` / ``Flatten`` nodes for CP-Mobile (the dynamo exporter writes global pooling
as ``ReduceMean``), which is the graph onnx2tf converts best. The batch dimension is static
(``input_shape[0]``, normally 1): a microcontroller runs one clip at a time and tflite-micro
needs static shapes.

BatchNorm folding (Ioffe & Szegedy 2015 inference form; the standard Conv+BN fusion, e.g.
``torch.nn.utils.fusion.fuse_conv_bn_eval``): for a convolution ``y = W * x + b`` followed by
``BN(y) = γ (y − μ) / sqrt(σ² + ε) + β`` with running statistics μ, σ²,

    W' = W · s,   b' = (b − μ) · s + β,   s = γ / sqrt(σ² + ε)   (per output channel),

computed here in float64 and stored as float32.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import ExportError

log = logging.getLogger(__name__)

__all__ = ["fold_batchnorm", "export_onnx", "onnx_parity", "INPUT_NAME", "OUTPUT_NAME",
           "PARITY_TOL"]

INPUT_NAME = "input"
"""Name of the ONNX graph input (and, after onnx2tf, of the TFLite input / calibration key)."""
OUTPUT_NAME = "logits"
"""Name of the ONNX graph output."""
PARITY_TOL = 1e-4
"""Maximum tolerated |ONNX − PyTorch| logit difference (issue 3), unless the model's own float32
rounding floor is higher (:data:`FOLD_NOISE_FACTOR`)."""
FOLD_NOISE_FACTOR = 4.0
"""The tolerance is at least this many times the model's own float32 rounding, measured on the same
clips (the larger of the logit difference BatchNorm folding alone causes and that of float32 vs
float64 evaluation): an operator exported with other semantics (padding, pooling) differs by orders
of magnitude more."""


def _float32_rounding(model: nn.Module, x: torch.Tensor) -> float:
    """Largest |logit| difference of ``model`` evaluated in float32 vs float64 on ``x``: its own
    float32 rounding, the floor any other float32 implementation (ONNX Runtime) is compared against.
    0.0 when there is no input or a module cannot run in float64."""
    if not len(x):
        return 0.0
    try:
        with torch.no_grad():
            ref = copy.deepcopy(model).double().eval()(x.double())
            return float((model(x).double() - ref).abs().max())
    except (RuntimeError, TypeError):
        return 0.0


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return ``conv`` with ``bn`` folded into its weight and (new or updated) bias, in place."""
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError(f"BatchNorm2d {bn} has no running statistics (track_running_stats=False)",
                          hint="only BatchNorm layers with running statistics can be folded for inference")
    if bn.num_features != conv.out_channels:
        raise ExportError(f"BatchNorm2d({bn.num_features}) follows Conv2d with {conv.out_channels} output channels",
                          hint="the model definition is inconsistent; check the layer order")
    with torch.no_grad():
        w = conv.weight.detach().double()
        mean = bn.running_mean.detach().double()
        var = bn.running_var.detach().double()
        gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
        beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
        b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)
        new_w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
        new_b = (b - mean) * scale + beta
        conv.weight = nn.Parameter(new_w.to(conv.weight.dtype), requires_grad=False)
        conv.bias = nn.Parameter(new_b.to(conv.weight.dtype), requires_grad=False)
    return conv


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every ``Conv2d → BatchNorm2d`` pair folded.

    A pair is two consecutive children of an ``nn.Sequential`` (the only container whose child
    order is its execution order): CP-Mobile's ``ConvNormAct`` (children ``0`` conv, ``1`` norm)
    and the head ``feed_forward`` (conv, norm, pool). The conv gets the folded weight and a bias
    (see the module docstring for the formula); the BatchNorm is replaced by ``nn.Identity`` so
    module names and the state-dict layout of the remaining layers stay the same. The input
    model is not modified. Input/output shapes are those of ``model`` (CP-Mobile:
    ``(B, 1, 256, 65) → (B, 10)``); outputs agree with ``model.eval()`` to float32 rounding
    (~1e-6 relative).

    A BatchNorm2d that does not directly follow a Conv2d inside a Sequential is left in place
    and logged (the exporters still handle it, unfused).

    Raises:
        ExportError: a BatchNorm without running statistics, or channel counts that do not match.
    """
    folded = copy.deepcopy(model).eval()
    n_folded = 0
    for module in list(folded.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules.keys())
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _fold_pair(conv, bn)
                module._modules[second] = nn.Identity()
                n_folded += 1
    left = [name for name, m in folded.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        log.warning("fold_batchnorm: %d BatchNorm layer(s) not after a Conv2d in a Sequential, left unfused: %s",
                    len(left), ", ".join(left))
    log.debug("fold_batchnorm: folded %d Conv2d+BatchNorm2d pairs", n_folded)
    folded._asc_edge_bn_folded = n_folded  # type: ignore[attr-defined]  # read by export_onnx's report
    return folded


def _as_features(features, input_shape: Sequence[int]) -> np.ndarray:
    """Features ``(N, C, M, T)`` (or one clip ``(C, M, T)``) as a float32 array, shape-checked."""
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if x.ndim == len(input_shape) - 1:
        x = x[None]
    if x.ndim != len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise ExportError(f"check features have shape {tuple(x.shape)}, expected (N, {', '.join(map(str, input_shape[1:]))})",
                          hint="pass features computed with the frontend the model was trained on")
    if not np.all(np.isfinite(x)):
        raise ExportError("check features contain NaN or Inf", hint="recompute the features")
    return np.ascontiguousarray(x, dtype=np.float32)


@torch.no_grad()
def onnx_parity(onnx_path: str | Path, model: nn.Module, features) -> dict:
    """Run the ONNX file with onnxruntime (CPU) clip by clip and compare with ``model``.

    ``features``: ``(N, 1, M, T)`` float32 (one clip per run: the graph's batch is static).
    Returns ``{"n_clips", "max_abs_logit_diff", "mean_abs_logit_diff", "top1_agreement"}``
    (top-1 agreement as a fraction of clips). Raises nothing on a large difference: the caller
    decides (see :func:`export_onnx`).

    Raises:
        ExportError: onnxruntime cannot load or run the file.
    """
    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"{onnx_path}: onnxruntime cannot load the model ({type(exc).__name__}: {exc})",
                          hint="re-export the ONNX file; it is corrupt or uses an unsupported operator") from None
    inp = sess.get_inputs()[0]
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else 1
    x = np.asarray(features, dtype=np.float32)
    model = model.eval()
    got = []
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        if len(chunk) < batch:  # static batch > 1: pad the last chunk
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
        got.append(sess.run(None, {inp.name: chunk})[0][: len(x) - i])
    ref = [model(torch.from_numpy(x[i:i + 64])).numpy() for i in range(0, len(x), 64)]
    ref_a, got_a = np.concatenate(ref), np.concatenate(got)
    diff = np.abs(ref_a.astype(np.float64) - got_a.astype(np.float64))
    return {
        "n_clips": int(len(x)),
        "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": float(np.mean(ref_a.argmax(1) == got_a.argmax(1))) if len(x) else 1.0,
    }


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int] = (1, 1, 256, 65),
                opset: int = 17, check_features=None, *, tol: float = PARITY_TOL,
                fold_bn: bool = True) -> dict:
    """Export ``model`` to ONNX at ``path`` (written atomically) and verify it.

    Steps: :func:`fold_batchnorm` (unless ``fold_bn=False``); ``torch.onnx.export`` with the
    legacy TorchScript exporter (``dynamo=False``), static ``input_shape`` (batch, channels,
    n_mels, frames), graph input ``"input"`` float32 and output ``"logits"`` ``(batch,
    n_classes)``, constant folding on; ``onnx.checker.check_model(full_check=True)``; onnxruntime
    parity against the *unfolded* ``model`` in eval mode on ``check_features`` (N, 1, M, T)
    float32 real log-mel features — or, when ``None``, on 4 seeded standard-normal inputs (the
    report says ``"real_features": false``). The file is written to a temporary sibling and
    ``os.replace``-d over ``path`` only after all checks pass.

    Returns a report dict: ``path``, ``exporter``, ``opset``, ``input_name``/``input_shape``,
    ``output_name``/``output_shape``, ``bn_folded`` (pairs), ``fold_max_abs_diff`` (folded vs
    unfolded PyTorch on the check inputs), ``onnx_ops`` (op type → count), ``n_nodes``,
    ``parity`` (see :func:`onnx_parity`, plus ``tol`` and ``real_features``), ``bytes``,
    ``sha256``, library versions and ``wall_s``.

    Raises:
        ExportError: the exporter or the checker fails, the check features have the wrong shape,
            or ``max_abs_logit_diff > max(tol, 4 × the model's float32 rounding)`` (1e-4: logits of
            a float export must agree to float32 rounding, whose size for this model the BN-folding and
            float32-vs-float64 differences measure; a larger gap means an operator exported with
            different semantics).
    """
    import onnx
    import onnxruntime

    t0 = time.perf_counter()
    path = Path(path)
    input_shape = tuple(int(s) for s in input_shape)
    model = model.eval()
    exported = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    real = check_features is not None
    if real:
        x_check = _as_features(check_features, input_shape)
    else:
        x_check = np.random.default_rng(0).standard_normal((4, *input_shape[1:])).astype(np.float32)

    with torch.no_grad():
        xt = torch.from_numpy(x_check[: min(len(x_check), 32)])
        fold_diff = float((model(xt) - exported(xt)).abs().max()) if len(xt) else 0.0
        f64_diff = _float32_rounding(exported, xt)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        dummy = torch.zeros(input_shape, dtype=torch.float32)
        try:
            with warnings.catch_warnings():
                # torch >= 2.9 flags the TorchScript exporter as deprecated; it is our deliberate choice
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
                warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
                torch.onnx.export(exported, (dummy,), tmp, dynamo=False, opset_version=opset,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  do_constant_folding=True, export_params=True)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {type(exc).__name__}: {exc}",
                              hint=f"the model uses an operator the legacy exporter cannot write at opset {opset}") from None
        try:
            proto = onnx.load(tmp)
            onnx.checker.check_model(proto, full_check=True)
        except Exception as exc:
            raise ExportError(f"exported ONNX fails onnx.checker: {type(exc).__name__}: {exc}",
                              hint="a torch/onnx version mismatch; see scripts/requirements-export.txt") from None
        parity = onnx_parity(tmp, model, x_check)
        # the model's own float32 rounding, measured two ways: BN folding (only the order of exactly-equal
        # operations changes) and float32 vs float64 evaluation; deep Snake / Ghost models reach 1e-4
        tol_eff = max(tol, FOLD_NOISE_FACTOR * max(fold_diff, f64_diff)) if tol > 0 else tol  # tol <= 0: strict
        parity.update(tol=tol, tol_effective=tol_eff, bn_fold_diff=fold_diff, float32_rounding=f64_diff,
                      real_features=real)
        if parity["max_abs_logit_diff"] > tol_eff:
            raise ExportError(
                f"ONNX parity failed: max |onnxruntime - PyTorch| logit difference "
                f"{parity['max_abs_logit_diff']:.3g} > {tol_eff:g} on {parity['n_clips']} clips "
                f"(BN folding alone: {fold_diff:.3g})",
                hint="an operator exports with different semantics (padding, pooling, count_include_pad); "
                     "compare per-layer outputs or try fold_bn=False to isolate the folding")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

    data = path.read_bytes()
    graph = proto.graph

    def dims(value_info) -> list:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in value_info.type.tensor_type.shape.dim]

    return {
        "path": str(path),
        "exporter": "torch.onnx.export(dynamo=False) — legacy TorchScript exporter",
        "opset": opset,
        "input_name": graph.input[0].name,
        "input_shape": dims(graph.input[0]),
        "output_name": graph.output[0].name,
        "output_shape": dims(graph.output[0]),
        "bn_folded": int(getattr(exported, "_asc_edge_bn_folded", 0)),
        "fold_max_abs_diff": fold_diff,
        "onnx_ops": dict(Counter(node.op_type for node in graph.node)),
        "n_nodes": len(graph.node),
        "parity": parity,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "wall_s": round(time.perf_counter() - t0, 3),
    }
