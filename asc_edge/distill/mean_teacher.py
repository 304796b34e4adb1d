"""Mean teacher (Tarvainen & Valpola, NeurIPS 2017) and MSE distillation, as in ITMO's DCASE 2024 Task 1 report.

The mean teacher is an exponential moving average (EMA) of the student's weights::

    θ'_t = α · θ'_{t−1} + (1 − α) · θ_t          (α = ``decay``, e.g. 0.999)

and the student is trained with a *consistency* loss towards the teacher's predictions,
``J = w(step) · MSE(softmax(z_s), softmax(z_t))``, the weight w ramped up and down by
:func:`consistency_weight`. ITMO (DCASE 2024 Task 1) distils into CP-Mobile with the mean
squared error between the class probabilities instead of the KL divergence
(:func:`mse_kd_loss`).

Ramp-up: ``exp(−5 (1 − t)²)`` for t going from 0 to 1 is the "sigmoid-shaped" ramp of Laine &
Aila ("Temporal Ensembling for Semi-Supervised Learning", ICLR 2017) that Tarvainen & Valpola
reuse; it starts at e⁻⁵ ≈ 0.0067 and reaches 1 with zero slope.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asc_edge.distill.kd import _REDUCTIONS, ce_term, check_pair
from asc_edge.errors import ConfigError

__all__ = ["ema_decay_at", "ema_update", "consistency_weight", "consistency_loss", "mse_kd_loss"]

_RAMP_UP = 0.1    # fraction of the steps spent ramping up
_CONSTANT = 0.1   # fraction of the steps at max_weight after the ramp-up


def ema_update(teacher: nn.Module, student: nn.Module, decay: float = 0.999) -> None:
    """In place: ``θ_teacher ← decay · θ_teacher + (1 − decay) · θ_student`` for every parameter.

    Tarvainen & Valpola 2017, sec. 2. Buffers (BatchNorm running mean / var,
    ``num_batches_tracked``) are *copied* from the student, not averaged. Runs under
    ``torch.no_grad()``; call it after each optimiser step.

    Args:
        teacher: the EMA model (same architecture as ``student``; its parameters need no grad).
        student: the model being trained.
        decay: EMA decay α ∈ [0, 1]; 0 copies the student, 1 freezes the teacher. Default 0.999.

    Raises:
        ConfigError: ``decay`` outside [0, 1], or parameters / buffers whose names or shapes differ.
    """
    if not 0.0 <= decay <= 1.0:
        raise ConfigError(f"EMA decay must be in [0, 1], got {decay}", hint="use decay=0.999 (Tarvainen & Valpola)")
    t_params, s_params = dict(teacher.named_parameters()), dict(student.named_parameters())
    t_bufs, s_bufs = dict(teacher.named_buffers()), dict(student.named_buffers())
    for kind, t_d, s_d in (("parameters", t_params, s_params), ("buffers", t_bufs, s_bufs)):
        if t_d.keys() != s_d.keys():
            diff = sorted(set(t_d) ^ set(s_d))
            raise ConfigError(f"teacher and student {kind} differ: {diff[:5]}",
                              hint="the mean teacher must be a copy of the student (copy.deepcopy(student))")
        for name, t in t_d.items():
            if t.shape != s_d[name].shape:
                raise ConfigError(f"{kind[:-1]} {name!r}: teacher shape {tuple(t.shape)} != student "
                                  f"{tuple(s_d[name].shape)}",
                                  hint="the mean teacher must be a copy of the student (copy.deepcopy(student))")
    with torch.no_grad():
        for name, t in t_params.items():
            t.mul_(decay).add_(s_params[name].detach().to(device=t.device, dtype=t.dtype), alpha=1.0 - decay)
        for name, t in t_bufs.items():
            t.copy_(s_bufs[name])


def ema_decay_at(step: int, decay: float = 0.999) -> float:
    """The EMA decay used after optimiser step ``step`` (0-based): ``min(1 − 1/(step + 1), decay)``.

    Tarvainen & Valpola's reference code (``update_ema_variables`` in the authors' mean-teacher
    repository) warms the decay up like this, so that the teacher is the plain average of the student
    weights seen so far until that average's effective decay reaches ``decay``: step 0 copies the
    student (0), step 1 averages (0.5), ... and 0.999 from step 999 on. Without it a short run (a few
    hundred steps at decay 0.999) leaves the teacher mostly at its random initialisation.

    Raises:
        ConfigError: ``step`` < 0 or ``decay`` outside [0, 1].
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ConfigError(f"step must be an integer ≥ 0, got {step!r}", hint="pass the 0-based optimiser step")
    if not 0.0 <= decay <= 1.0:
        raise ConfigError(f"EMA decay must be in [0, 1], got {decay}", hint="use decay=0.999 (Tarvainen & Valpola)")
    return min(1.0 - 1.0 / (step + 1), decay)


def consistency_weight(step: int, total_steps: int, max_weight: float = 1.0) -> float:
    """Consistency-loss weight of the ITMO DCASE 2024 schedule at ``step`` (0-based).

    With R = 0.1 · total_steps::

        step < R               max_weight · exp(−5 (1 − step/R)²)      sigmoid-shaped ramp-up
        R ≤ step < 2R          max_weight                              constant
        2R ≤ step ≤ total      max_weight · (total − step) / (total − 2R)   linear decay to 0
        step > total           0

    The ramp-up is Laine & Aila's (ICLR 2017) ``exp(−5(1−t)²)``, used by Tarvainen & Valpola
    (2017); at step 0 it is max_weight · e⁻⁵.

    Args:
        step: current optimiser step, ≥ 0.
        total_steps: number of training steps, > 0.
        max_weight: peak weight, ≥ 0. Default 1.

    Returns:
        the weight (float).

    Raises:
        ConfigError: a negative or non-integer ``step``, ``total_steps`` ≤ 0, ``max_weight`` < 0.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ConfigError(f"step must be a non-negative int, got {step!r}", hint="count optimiser steps from 0")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or total_steps <= 0:
        raise ConfigError(f"total_steps must be a positive int, got {total_steps!r}",
                          hint="pass epochs × batches per epoch")
    if not max_weight >= 0:
        raise ConfigError(f"max_weight must be >= 0, got {max_weight}", hint="use max_weight=1.0")
    ramp = _RAMP_UP * total_steps
    flat_end = (_RAMP_UP + _CONSTANT) * total_steps
    if step < ramp:
        t = step / ramp
        return float(max_weight * math.exp(-5.0 * (1.0 - t) ** 2))
    if step < flat_end:
        return float(max_weight)
    if step >= total_steps:
        return 0.0
    return float(max_weight * (total_steps - step) / (total_steps - flat_end))


def _prob_mse(zs: Tensor, zt: Tensor) -> Tensor:
    """(B,) mean over classes of (softmax(z_s) − softmax(z_t))²."""
    return (F.softmax(zs, dim=-1) - F.softmax(zt, dim=-1)).pow(2).mean(dim=-1)


def consistency_loss(student_logits: Tensor, teacher_logits: Tensor, reduction: str = "mean") -> Tensor:
    """``mean_{b,c} (softmax(z_s)_{b,c} − softmax(z_t)_{b,c})²`` — the mean-teacher consistency cost.

    Tarvainen & Valpola 2017 (MSE between the class probabilities; the teacher is detached).

    Args:
        student_logits: (batch, n_classes) student logits (gradients flow here).
        teacher_logits: (batch, n_classes) mean-teacher logits; detached.
        reduction: ``"mean"`` (over batch and classes, as ``nn.MSELoss``), ``"sum"`` (of the
            per-example class means) or ``"none"`` → (batch,) per-example class means.

    Returns:
        a scalar, or (batch,) for ``reduction="none"``.

    Raises:
        ConfigError: logits not (B, C), different shapes, or an unknown ``reduction``.
    """
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}", hint=f"use one of {', '.join(_REDUCTIONS)}")
    per = _prob_mse(*check_pair(student_logits, teacher_logits))
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per


def mse_kd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, lam: float = 0.5,
                reduction: str = "mean") -> Tensor:
    """``λ · CE(z_s, y) + (1 − λ) · mean_c (softmax(z_s)_c − softmax(z_t)_c)²`` per example.

    ITMO DCASE 2024 Task 1 report: distillation into CP-Mobile with the MSE between the student's
    and the teacher's probabilities (no temperature) in place of the KL divergence. λ weighs the
    *label* term, as in the CP-JKU convention of :func:`asc_edge.distill.kd.kd_loss`.

    Choice of λ: the default 0.5 weighs the two terms equally; it is our default, not a value
    taken from the report. Mind the scales: the MSE is a mean over C classes of squared
    probability differences, at most 2/C per example (0.2 for 10 classes) and typically
    0.001–0.05, while the cross-entropy is O(1) — so at λ = 0.5 the label term dominates and
    the teacher acts as a regulariser; lower λ (or rescale) for a stronger pull to the teacher.

    Args:
        student_logits: (batch, n_classes) student logits (gradients flow here).
        teacher_logits: (batch, n_classes) teacher logits; detached.
        targets: class indices (batch,) or soft targets (batch, n_classes) (see ``ce_term``).
        lam: λ ∈ [0, 1], weight of the cross-entropy; ``lam=1`` is plain cross-entropy.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` → (batch,).

    Returns:
        a scalar, or (batch,) per-example losses for ``reduction="none"``.

    Raises:
        ConfigError: ``lam`` outside [0, 1], logits not (B, C) or of different shapes, bad
            targets, an unknown ``reduction``.
    """
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}", hint=f"use one of {', '.join(_REDUCTIONS)}")
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"MSE-KD label weight lam must be in [0, 1], got {lam}",
                          hint="use lam=0.5, or lam=1 for training without a teacher")
    zs, zt = check_pair(student_logits, teacher_logits)
    per = lam * ce_term(zs, targets, reduction="none") + (1.0 - lam) * _prob_mse(zs, zt)
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per
