"""SNTL-NTU DCASE 2024 "Teacher-Focused Student" (TFS) loss: FocusNet's focus-picking loss with a teacher.

Source: Yeo, Tan, Bai, Peksi, Gan, "Data Efficient Acoustic Scene Classification using
Teacher-Informed Confusing Class Instruction", SNTL-NTU DCASE 2024 Task 1 technical report
(arXiv 2409.11964), which trains the baseline-sized student with FocusNet (Zhang, Sheng, Shen,
"FocusNet: Classifying better by focusing on confusing classes", Pattern Recognition 2022,
arXiv 2110.07307), using its own KD-trained student as the "baseline branch" (the teacher) that
points at the confusing classes.

**Reconstruction.** The report's eqs. 2–8 are reconstructed here from its description (the report
is not available offline). Certain: the difference of the probability vectors
``d = softmax(z_s) − softmax(z_t)``; the classification loss is taken on the *focused* logits
``z_s + d``; an attention term towards the teacher's (multi-)warm labels; the student's entropy
is *subtracted*; α = β = 1. The chosen reading (default ``warm_labels="soft"``): the warm labels
are the teacher's soft labels ``w = softmax(z_t / τ)``. FocusNet's own reference code instead
uses a *multi-hot* warm label — uniform over the classes whose ``softmax(z_t / 2)`` exceeds 1/C,
plus the true class — available as ``warm_labels="multi_hot"`` (with ``tau=2.0`` to match it);
the same code also applies 0.1 label smoothing to the classification term, which callers can
reproduce by passing smoothed soft targets.

Per example, with C classes, p_s = softmax(z_s), p_t = softmax(z_t) (teacher detached)::

    d      = p_s − p_t
    L_cls  = CE(z_s + d, y)                         = −Σ_c y_c · log softmax(z_s + d)_c
    L_att  = −Σ_c w_c · log p_s,c
    H      = −Σ_c p_s,c · log p_s,c
    L      = L_cls + α · L_att − β · H

Gradients flow into the student through all three terms (including p_s inside d).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from asc_edge.distill.kd import _REDUCTIONS, ce_term, check_pair
from asc_edge.errors import ConfigError

__all__ = ["focusnet_loss"]

_WARM_LABELS = ("soft", "multi_hot")


def _target_support(targets: Tensor, n_classes: int) -> Tensor:
    """(B, C) bool: the labelled class (hard targets) or the classes with mass > 0 (soft targets)."""
    if targets.ndim == 1:
        return F.one_hot(targets.long(), n_classes).bool()
    return targets > 0


def focusnet_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, alpha: float = 1.0,
                  beta: float = 1.0, tau: float = 1.0, reduction: str = "mean", *,
                  warm_labels: str = "soft") -> Tensor:
    """``L = CE(z_s + d, y) + α·(−Σ_c w_c log softmax(z_s)_c) − β·H(softmax(z_s))``, ``d = p_s − p_t``.

    SNTL-NTU DCASE 2024 Teacher-Focused Student / FocusNet focus-picking loss; see the module
    docstring for which parts are certain and which are the chosen reading.

    Args:
        student_logits: (batch, n_classes) student logits z_s (gradients flow here).
        teacher_logits: (batch, n_classes) teacher logits z_t; detached.
        targets: class indices (batch,) (integer dtype) or soft targets (batch, n_classes)
            (float rows summing to 1, e.g. mixup), as for :func:`asc_edge.distill.kd.ce_term`.
        alpha: weight α ≥ 0 of the attention (warm-label) term. Default 1.
        beta: weight β ≥ 0 of the subtracted entropy term. Default 1.
        tau: temperature τ > 0 of the teacher's warm labels. Default 1.
        reduction: ``"mean"`` (over the batch), ``"sum"``, or ``"none"`` → (batch,).
        warm_labels: ``"soft"`` (w = softmax(z_t/τ), default) or ``"multi_hot"`` (w uniform over
            {c : softmax(z_t/τ)_c > 1/C} ∪ {labelled classes}, the FocusNet reference code).

    Returns:
        a scalar, or (batch,) per-example losses for ``reduction="none"``. Note the loss can be
        negative (the entropy is subtracted).

    Raises:
        ConfigError: logits not (B, C) or of different shapes, bad targets (see ``ce_term``),
            ``alpha`` or ``beta`` < 0, ``tau`` ≤ 0, an unknown ``reduction`` or ``warm_labels``.
    """
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}", hint=f"use one of {', '.join(_REDUCTIONS)}")
    if warm_labels not in _WARM_LABELS:
        raise ConfigError(f"unknown warm_labels {warm_labels!r}",
                          hint="use 'soft' (teacher soft labels) or 'multi_hot' (FocusNet reference code)")
    check_pair(student_logits, teacher_logits)
    if not (alpha >= 0 and beta >= 0):
        raise ConfigError(f"FocusNet weights must be >= 0, got alpha={alpha}, beta={beta}",
                          hint="use alpha=1, beta=1 (the SNTL-NTU / FocusNet setting)")
    if not tau > 0:
        raise ConfigError(f"FocusNet warm-label temperature tau must be > 0, got {tau}",
                          hint="use tau=1.0 (soft warm labels) or tau=2.0 with warm_labels='multi_hot'")

    zs = student_logits.float() if student_logits.dtype in (torch.float16, torch.bfloat16) else student_logits
    zt = teacher_logits.detach().to(device=zs.device, dtype=zs.dtype)
    n_classes = zs.shape[-1]

    log_p_s = F.log_softmax(zs, dim=-1)
    p_s = log_p_s.exp()
    d = p_s - F.softmax(zt, dim=-1)
    l_cls = ce_term(zs + d, targets, reduction="none")  # also validates targets

    w = F.softmax(zt / tau, dim=-1)
    if warm_labels == "multi_hot":
        support = (w > 1.0 / n_classes) | _target_support(targets.to(zs.device), n_classes)
        w = support.to(zs.dtype)
        w = w / w.sum(dim=-1, keepdim=True)
    l_att = -(w * log_p_s).sum(dim=-1)
    entropy = -(p_s * log_p_s).sum(dim=-1)

    per = l_cls + alpha * l_att - beta * entropy
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    return per
