"""Quantisation-aware fine-tuning before the int8 conversion, by self-distillation (``export --qat-epochs N``).

Why: per-channel int8 rounding of the weights alone can move a trained student's predictions a lot —
the SNTL-NTU 24-BCBL split100 student loses 10 points on the 101 TAU clips, most of it from its first
convolution's weights (``benchmarks/results/quant_sensitivity.md``). Quantisation-aware training
(Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference"; Krishnamoorthi 2018) lets the float weights settle where their int8 rounding costs little.

What, exactly:

- the model is BatchNorm-folded first (:func:`asc_edge.export.onnx.fold_batchnorm`: the weights the
  converter quantises), so the fake quantisation sees the very tensors TFLite rounds;
- every ``Conv2d`` / ``Linear`` weight goes through TFLite's int8 weight scheme in the forward pass —
  symmetric, per output channel, ``scale = max|w| / 127``, ``q = clamp(round(w / scale), −127, 127)`` —
  with the straight-through estimator in the backward pass (a ``torch.nn.utils.parametrize``
  parametrisation, removed afterwards: the result is a plain float model whose int8 rounding is the one
  it was trained with);
- the target is the float model itself (the *teacher* is the folded model before fine-tuning, frozen):
  mean squared error between logits on the calibration pool's log-mel features. No labels are used, so
  an imported checkpoint can be fine-tuned on any real audio (the SNTL-NTU students on the bundled
  pack's ESC-10 audio), and the model cannot drift towards another label set;
- Adam, learning rate ``lr`` (default 1e-4), batch 32, ``epochs`` passes over the pool, seed 0.

Activations are not fake-quantised (their ranges come from the calibration,
:mod:`asc_edge.export.calibration`). Measured in ``benchmarks/results/int8_calibration.md``.

The cheaper remedy for the same weight rounding, :func:`bias_correct` (``export --bias-correction``),
fine-tunes nothing: it moves each layer's bias by the mean output shift its rounding causes.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from . import ExportError


class Int8WeightFakeQuant(nn.Module):
    """TFLite's per-output-channel symmetric int8 weight rounding with a straight-through gradient.

    ``forward(w)``: ``w`` of shape ``(out, ...)`` → same shape, each output channel rounded to
    ``scale · clamp(round(w / scale), −127, 127)`` with ``scale = max|w_channel| / 127``; the
    gradient passes through unchanged (STE)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, w.dim()))
        scale = (w.detach().abs().amax(dim=dims, keepdim=True) / 127.0).clamp_min(1e-12)
        q = torch.round(w / scale).clamp(-127, 127) * scale
        return w + (q - w).detach()


def _weighted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def qat_finetune(model: nn.Module, features, *, epochs: int, lr: float = 1e-4, batch_size: int = 32, seed: int = 0,
                 log: Callable[[str], None] | None = None) -> tuple[nn.Module, dict]:
    """Fine-tune a BatchNorm-folded copy of ``model`` so its int8-rounded weights reproduce its float logits.

    Args:
        model: the trained float student (not modified), ``(batch, 1, n_mels, frames) → (batch, n_classes)``.
        features: ``(N, 1, n_mels, frames)`` float32 log-mel features of real audio (labels unused).
        epochs: passes over ``features`` (≥ 1).
        lr: Adam learning rate. batch_size: clips per step. seed: shuffling and initial state.
        log: progress lines (one per epoch).

    Returns ``(folded fine-tuned float model in eval mode, report)``; the report holds ``epochs``,
    ``lr``, ``batch_size``, ``n_clips``, ``mse_per_epoch`` (mean logit MSE to the teacher over the
    epoch, fake-quantised weights), ``mse_int8_weights_before`` / ``_after`` (the same on the whole
    pool, no gradient) and ``wall_s``.

    Raises:
        ExportError: ``epochs`` < 1, ``lr`` not finite and > 0, or fewer than ``batch_size`` clips.
    """
    from .onnx import fold_batchnorm

    if epochs < 1:
        raise ExportError(f"qat epochs {epochs} < 1", hint="pass --qat-epochs N with N >= 1 (0 skips it)")
    if not (np.isfinite(lr) and lr > 0):
        raise ExportError(f"qat learning rate {lr} is not a positive number", hint="e.g. --qat-lr 1e-4")
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if len(x) < batch_size:
        raise ExportError(f"{len(x)} clips for quantisation-aware fine-tuning, at least {batch_size} needed",
                          hint="use a larger calibration split")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    teacher = fold_batchnorm(model).eval()
    with torch.no_grad():
        target = torch.cat([teacher(x[i:i + 128]) for i in range(0, len(x), 128)])
    student = copy.deepcopy(teacher)
    for m in _weighted(student):
        for p in m.parameters(recurse=False):
            p.requires_grad_(True)
        parametrize.register_parametrization(m, "weight", Int8WeightFakeQuant())

    def pool_mse() -> float:
        student.eval()
        with torch.no_grad():
            out = torch.cat([student(x[i:i + 128]) for i in range(0, len(x), 128)])
        return float(nn.functional.mse_loss(out, target))

    before = pool_mse()
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    per_epoch = []
    for ep in range(epochs):
        student.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.mse_loss(student(x[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        per_epoch.append(total / len(x))
        if log is not None:
            log(f"quantisation-aware fine-tuning: epoch {ep + 1}/{epochs}, logit MSE to the float model "
                f"{per_epoch[-1]:.4g} (int8-rounded weights)")
    after = pool_mse()
    for m in _weighted(student):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
    student.eval()
    return student, {"epochs": int(epochs), "lr": float(lr), "batch_size": int(batch_size), "n_clips": int(len(x)),
                     "target": "the float model's logits (self-distillation, MSE; labels unused)",
                     "mse_per_epoch": [float(f"{v:.4g}") for v in per_epoch],
                     "mse_int8_weights_before": float(f"{before:.4g}"), "mse_int8_weights_after": float(f"{after:.4g}"),
                     "wall_s": round(time.perf_counter() - t0, 3)}


def bias_correct(model: nn.Module, features, *, batch_size: int = 64) -> tuple[nn.Module, dict]:
    """Empirical bias correction of the int8 weight rounding (Nagel et al. 2019, "Data-Free Quantization
    Through Weight Equalization and Bias Correction", §4.2, the empirical variant; ``export
    --bias-correction``).

    Rounding a layer's weights to int8 adds ``ε = W_q − W`` to them, which shifts the layer's mean
    output by ``E[ε ⊛ x]`` per output channel; subtracting that expectation from the bias removes the
    shift. For every ``Conv2d`` / ``Linear`` of a BatchNorm-folded copy of ``model`` (the tensors
    TFLite rounds), with ``W_q`` TFLite's per-channel symmetric int8 rounding
    (:class:`Int8WeightFakeQuant`), ``E[ε ⊛ x]`` is the mean over clips, rows and columns of the layer
    applied with weights ``ε`` to its float input on ``features``: exact, borders included. The inputs
    are the float model's (every layer corrected in one pass), not the already-quantised upstream
    layers' (the sequential variant); a layer without a bias gets one.

    Args:
        model: the trained float student (not modified), ``(batch, 1, n_mels, frames) → (batch, n_classes)``.
        features: ``(N, 1, n_mels, frames)`` float32 log-mel features of real audio (labels unused), N ≥ 1.

    Returns ``(folded, corrected float model in eval mode, report)``: ``n_layers``, ``n_clips``,
    ``max_abs_shift`` / ``mean_abs_shift`` (of the subtracted per-channel shifts) and ``wall_s``.

    Raises:
        ExportError: no features.
    """
    from .onnx import fold_batchnorm

    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if len(x) == 0:
        raise ExportError("no clips for bias correction", hint="use a calibration split with audio in it")
    t0 = time.perf_counter()
    m = copy.deepcopy(fold_batchnorm(model)).eval()
    layers = _weighted(m)
    rounding = Int8WeightFakeQuant()
    sums = {id(L): torch.zeros(L.weight.shape[0], dtype=torch.float64) for L in layers}
    counts = {id(L): 0 for L in layers}

    def hook(layer, inputs):
        eps = rounding(layer.weight) - layer.weight
        if isinstance(layer, nn.Conv2d):
            y = nn.functional.conv2d(inputs[0], eps, None, layer.stride, layer.padding, layer.dilation, layer.groups)
            sums[id(layer)] += y.double().sum(dim=(0, 2, 3))
            counts[id(layer)] += y.shape[0] * y.shape[2] * y.shape[3]
        else:
            y = nn.functional.linear(inputs[0], eps)
            sums[id(layer)] += y.double().reshape(-1, y.shape[-1]).sum(0)
            counts[id(layer)] += y.numel() // y.shape[-1]

    handles = [L.register_forward_pre_hook(hook) for L in layers]
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                m(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
    shifts = []
    with torch.no_grad():
        for L in layers:
            shift = (sums[id(L)] / max(counts[id(L)], 1)).float()
            if L.bias is None:
                L.bias = nn.Parameter(torch.zeros(L.weight.shape[0]), requires_grad=False)
            L.bias -= shift
            shifts.append(shift.abs())
    allshift = torch.cat(shifts) if shifts else torch.zeros(1)
    return m, {"n_layers": len(layers), "n_clips": int(len(x)), "max_abs_shift": float(allshift.max()),
               "mean_abs_shift": float(allshift.mean()), "wall_s": round(time.perf_counter() - t0, 3),
               "method": "empirical bias correction (Nagel et al. 2019, §4.2), float inputs, one pass"}


class _Captured(Exception):
    """Stops a forward pass once the hooked layer's input has been captured."""


def _layer_input(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input tensor ``layer`` receives when ``model`` runs on ``x`` (the rest of the pass is skipped)."""
    got: list[torch.Tensor] = []

    def hook(_m, inputs):
        got.append(inputs[0])
        raise _Captured

    h = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            model(x)
    except _Captured:
        pass
    finally:
        h.remove()
    if not got:
        raise ExportError(f"layer {type(layer).__name__} is not reached by the forward pass",
                          hint="adaptive rounding needs every Conv2d/Linear on the inference path")
    return got[0]


def _patches(layer: nn.Module, inp: torch.Tensor) -> torch.Tensor:
    """``(groups, positions, k)``: the receptive-field vectors each output position of ``layer`` sees, per
    group, in the order of ``layer.weight[c].flatten()`` (``k = in/groups · kh · kw``)."""
    if isinstance(layer, nn.Linear):
        return inp.reshape(-1, inp.shape[-1])[None]
    cols = nn.functional.unfold(inp, layer.kernel_size, layer.dilation, layer.padding, layer.stride)  # (N, C·kh·kw, L)
    g = layer.groups
    n, ck, L = cols.shape
    return cols.reshape(n, g, ck // g, L).permute(1, 0, 3, 2).reshape(g, n * L, ck // g)


def _best_rounding(lo: torch.Tensor, free: torch.Tensor, scale: torch.Tensor, H: torch.Tensor, b: torch.Tensor,
                   start: torch.Tensor, exhaustive_max: int, max_passes: int) -> torch.Tensor:
    """Choose ``q = lo + bits`` (bits ∈ {0, 1} where ``free``) minimising ``f = ŵᵀHŵ − 2ŵᵀb`` with
    ``ŵ = scale · q``, for the channels of one group. ``lo, free, start: (C, k)``; ``scale: (C,)``;
    ``H: (k, k)``; ``b: (C, k)``. Channels with ≤ ``exhaustive_max`` free weights are solved exactly
    by enumeration; the others by coordinate descent from ``start`` (each flip taken when it lowers f),
    at most ``max_passes`` sweeps. Returns the int grid values ``(C, k)`` (float64)."""
    q = start.clone()
    for c in range(q.shape[0]):
        idx = torch.nonzero(free[c]).flatten()
        if 0 < len(idx) <= exhaustive_max:
            bits = ((torch.arange(2 ** len(idx))[:, None] >> torch.arange(len(idx))[None]) & 1).double()
            cand = lo[c].repeat(len(bits), 1)
            cand[:, idx] += bits
            w = cand * scale[c]
            f = ((w @ H) * w).sum(1) - 2 * (w @ b[c])
            q[c] = cand[int(torch.argmin(f))]
    big = (free.sum(1) > exhaustive_max)
    if big.any():
        qb, s, bb, fb, lob = q[big], scale[big], b[big], free[big], lo[big]
        r = (qb * s[:, None]) @ H - bb  # ½ ∂f/∂ŵ
        diag = torch.diagonal(H)
        for _ in range(max_passes):
            changed = False
            for i in range(qb.shape[1]):
                step = torch.where(qb[:, i] > lob[:, i], -1.0, 1.0).double() * fb[:, i] * s
                delta = 2 * step * r[:, i] + step * step * diag[i]
                take = delta < -1e-12 * (1 + (r[:, i] * r[:, i]).sqrt())
                if take.any():
                    step = step * take
                    qb[:, i] += torch.sign(step)
                    r += step[:, None] * H[i][None]
                    changed = True
            if not changed:
                break
        q[big] = qb
    return q


def adaptive_round(model: nn.Module, features, *, n_clips: int = 256, batch_size: int = 32,
                   exhaustive_max: int = 12, max_passes: int = 20) -> tuple[nn.Module, dict]:
    """Round every weight to TFLite's int8 grid up or down by the layer's output error, not to the
    nearest grid point (``export --adaptive-rounding``).

    Source: Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"
    (AdaRound): rounding each weight to nearest is not what minimises the layer's output error
    ``E‖W x − Ŵ x̃‖²`` once the weights interact through the input's correlations. AdaRound minimises
    that layer-wise objective over the floor/ceil choice of every weight through a continuous
    relaxation; here the same objective is a quadratic form in the choices, so it is solved directly:
    per output channel, exactly (all ``2^k`` choices) when the channel has ≤ ``exhaustive_max``
    weights with a choice (the first convolution's 3×3 filters, every depthwise filter), else by
    coordinate descent from round-to-nearest (a flip is kept when it lowers the objective). Layers are
    rounded in forward order; ``x`` is the float model's input to the layer and ``x̃`` the input with
    the layers before it already rounded (AdaRound's asymmetric reconstruction, §5), on ``n_clips``
    clips spread over ``features``.

    The grid is TFLite's per-channel symmetric int8 (:class:`Int8WeightFakeQuant`): ``scale =
    max|w_c| / 127``; the channel's largest-magnitude weight stays at ±127 so the converter derives
    the same scale from the rounded weights and reproduces every chosen integer. Biases and
    activations are not changed (their ranges come from :mod:`asc_edge.export.calibration`).

    Args:
        model: the trained float student (not modified), ``(batch, 1, n_mels, frames) → (batch, n_classes)``.
        features: ``(N, 1, n_mels, frames)`` float32 log-mel features of real audio (labels unused), N ≥ 1.
        n_clips: clips used for the layer statistics (spread evenly over ``features``).
        batch_size: clips per forward pass. exhaustive_max: see above (2^k candidates, k ≤ 16).
        max_passes: coordinate-descent sweeps per layer.

    Returns ``(folded model with int8-grid float weights, in eval mode, report)``: ``n_layers``,
    ``n_clips``, ``changed_fraction`` (weights rounded away from nearest), ``output_mse_nearest`` /
    ``output_mse_adaptive`` (the objective with nearest / chosen rounding, mean over every layer's
    output channels) and ``wall_s``.

    Raises:
        ExportError: no features, ``exhaustive_max`` outside 0..16, or a layer off the forward path.
    """
    from .onnx import fold_batchnorm
    from .pipeline import _spread

    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if len(x) == 0:
        raise ExportError("no clips for adaptive rounding", hint="use a calibration split with audio in it")
    if not 0 <= exhaustive_max <= 16:
        raise ExportError(f"exhaustive_max {exhaustive_max} outside 0..16", hint="2^k candidates per filter")
    t0 = time.perf_counter()
    x = x[_spread(len(x), n_clips)]
    ref = copy.deepcopy(fold_batchnorm(model)).eval()
    out = copy.deepcopy(ref)
    n_changed = n_total = n_out = 0
    err_near = err_ada = 0.0
    for L_ref, L in zip(_weighted(ref), _weighted(out)):
        w = L.weight.detach().double().reshape(L.weight.shape[0], -1)  # (C_out, groups·k) → per group below
        groups = getattr(L, "groups", 1)
        c_out, k = w.shape
        H = torch.zeros(groups, k, k, dtype=torch.float64)
        G = torch.zeros(groups, k, k, dtype=torch.float64)
        Hx = torch.zeros(groups, k, k, dtype=torch.float64)
        n = 0
        for i in range(0, len(x), batch_size):
            px = _patches(L, _layer_input(ref, L_ref, x[i:i + batch_size])).double()
            pq = _patches(L, _layer_input(out, L, x[i:i + batch_size])).double()
            H += pq.transpose(1, 2) @ pq
            G += pq.transpose(1, 2) @ px
            Hx += px.transpose(1, 2) @ px
            n += px.shape[1]
        H /= n
        G /= n
        Hx /= n
        scale = (w.abs().amax(1) / 127.0).clamp_min(1e-30)
        t = w / scale[:, None]
        lo = torch.floor(t).clamp(-127, 127)
        near = torch.round(t).clamp(-127, 127)
        is_max = w.abs() == w.abs().amax(1, keepdim=True)
        lo = torch.where(is_max, near, lo)
        free = (~is_max) & (t != lo) & (lo < 127)
        q = near.clone()
        per = c_out // groups
        for g in range(groups):
            sl = slice(g * per, (g + 1) * per)
            b = w[sl] @ G[g].T  # b[c] = E[x̃ (w_c · x)]
            q[sl] = _best_rounding(lo[sl], free[sl], scale[sl], H[g], b, near[sl], exhaustive_max, max_passes)
            const = float(((w[sl] @ Hx[g]) * w[sl]).sum())  # E(w·x)² summed over the group's channels

            def objective(qq: torch.Tensor) -> float:  # E‖w·x − ŵ·x̃‖², summed over the group's channels
                wh = qq * scale[sl, None]
                return float(((wh @ H[g]) * wh).sum() - 2 * (wh * b).sum()) + const

            err_near += objective(near[sl])
            err_ada += objective(q[sl])
        n_out += c_out
        n_changed += int((q != near).sum())
        n_total += q.numel()
        with torch.no_grad():
            L.weight.copy_((q * scale[:, None]).reshape(L.weight.shape).to(L.weight.dtype))
    return out.eval(), {"n_layers": len(_weighted(out)), "n_clips": int(len(x)),
                        "changed_fraction": round(n_changed / max(n_total, 1), 5),
                        "output_mse_nearest": float(f"{err_near / max(n_out, 1):.4g}"),
                        "output_mse_adaptive": float(f"{err_ada / max(n_out, 1):.4g}"),
                        "wall_s": round(time.perf_counter() - t0, 3),
                        "method": "AdaRound's layer-wise output objective (Nagel et al. 2020), solved per channel "
                                  f"exactly (≤ {exhaustive_max} free weights) or by coordinate descent"}
