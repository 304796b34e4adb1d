"""Knowledge-distillation loss (Hinton et al. 2015) in the two weightings used by DCASE Task 1 reports.

``convention="cpjku"`` (default; CP-JKU 2023, KT/CPJKU 2024) — λ weighs the *label* term::

    L = λ · CE(z_s, y) + (1 − λ) · τ² · KL( softmax(z_t / τ) ‖ softmax(z_s / τ) )

``convention="sntl"`` (SNTL-NTU DCASE 2024, Yeo et al., arXiv 2409.11964) — λ weighs the
*distillation* term::

    L = (1 − λ) · H(z_s, y) + λ · τ² · KL( softmax(z_t / τ) ‖ softmax(z_s / τ) )

The two are the same family: ``sntl`` with λ equals ``cpjku`` with 1 − λ. Only the meaning of
λ flips, so a λ copied from a report must be used with that report's convention (the default
λ = 0.02 is a CP-JKU value; under ``sntl`` it would give the teacher only 2 % of the weight).

z_s: student logits, z_t: teacher logits (e.g. a logit-averaged ensemble, see
:mod:`asc_edge.distill.teacher_cache`), y: labels, H / CE: cross-entropy against the labels,
λ: weight, τ: temperature. The τ² factor keeps the soft-target gradients on the scale of the
hard-label ones. Temperatures in the reports: CP-JKU τ = 2; Tencent DCASE 2023 uses τ = 3
(pass ``tau=3.0``).

Defaults λ = 0.02, τ = 2.0: the CP-JKU DCASE 2023 student recipe
(github.com/fschmid56/cpjku_dcase23, ``run_training.py``: ``--kd_lambda 0.02``,
``--temperature 2.0``), carried into the CP-JKU DCASE 2024 "knowledge transfer" set-up
(Schmid et al.).

Averaging: the KL term is the true per-example KL divergence (sum over classes), averaged
over examples — PyTorch's ``reduction="batchmean"``. Note that the CP-JKU code uses
``nn.KLDivLoss(reduction="none")(...).mean()``, i.e. it *also* divides by the number of
classes C; with that convention the same λ gives the teacher term 1/C of the weight it has
here. Pass ``kl_mean_over_classes=True`` to reproduce that scaling exactly; ``asc-edge train``
does by default (``TrainConfig.kd_kl_average = "classes"``), so the reports' λ keeps its meaning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from asc_edge.errors import ConfigError

__all__ = ["kd_loss", "kl_term", "ce_term"]

_REDUCTIONS = ("mean", "sum", "none")
_CONVENTIONS = ("cpjku", "sntl")


def _as_float(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_logits(name: str, z: Tensor) -> None:
    if not isinstance(z, Tensor) or z.ndim != 2:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ConfigError(f"{name} must be a (B, C) tensor, got {shape}",
                          hint="pass raw (pre-softmax) logits with one row per example")


def check_pair(student_logits: Tensor, teacher_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Both logits (B, C) of one shape, else ConfigError. Returns (student logits as float32 when
    half precision, teacher logits detached on the student's device and dtype)."""
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ConfigError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                          f"{tuple(teacher_logits.shape)} differ in shape",
                          hint="the teacher must score exactly the clips of this batch, same classes")
    zs = _as_float(student_logits)
    return zs, teacher_logits.detach().to(device=zs.device, dtype=zs.dtype)


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}", hint=f"use one of {', '.join(_REDUCTIONS)}")


def ce_term(logits: Tensor, targets: Tensor, reduction: str = "none") -> Tensor:
    """Cross-entropy of ``logits`` (B, C) against ``targets``.

    ``targets``: class indices (B,) (integer dtype) or soft targets (B, C) (float, each row a
    distribution, e.g. mixup-mixed one-hots): ``−Σ_c t_c · log softmax(z)_c``.
    Returns (B,) for ``reduction="none"``, else a scalar.
    """
    _check_reduction(reduction)
    _check_logits("logits", logits)
    b, c = logits.shape
    if targets.ndim == 1 and not targets.is_floating_point():
        if targets.shape[0] != b:
            raise ConfigError(f"targets has {targets.shape[0]} entries for {b} examples",
                              hint="pass one class index per example")
        if b and (int(targets.min()) < 0 or int(targets.max()) >= c):
            raise ConfigError(f"target class index out of range [0, {c})",
                              hint="check the label encoding against the number of model outputs")
        per = F.cross_entropy(_as_float(logits), targets.long(), reduction="none")
    elif targets.ndim == 2 and targets.is_floating_point():
        if tuple(targets.shape) != (b, c):
            raise ConfigError(f"soft targets of shape {tuple(targets.shape)} for logits {(b, c)}",
                              hint="soft targets need one probability row per example and class")
        per = -(targets.to(logits.device, torch.float32) * F.log_softmax(_as_float(logits), dim=-1)).sum(dim=-1)
    else:
        raise ConfigError(f"targets must be class indices (B,) of integer dtype or soft targets (B, C) of float "
                          f"dtype, got shape {tuple(targets.shape)} dtype {targets.dtype}",
                          hint="use labels.long() for hard labels, or float probabilities for soft labels")
    return _reduce(per, reduction)


def kl_term(student_logits: Tensor, teacher_logits: Tensor, tau: float = 2.0, reduction: str = "none",
            *, kl_mean_over_classes: bool = False) -> Tensor:
    """KL( softmax(z_t/τ) ‖ softmax(z_s/τ) ) per example (sum over classes), *without* the τ² factor.

    Computed from ``log_softmax`` of both sides (stable for confident teachers). The teacher is
    detached: no gradient flows into it. ``kl_mean_over_classes=True`` divides by C (the
    CP-JKU ``KLDivLoss(reduction="none").mean()`` convention). Returns (B,) for
    ``reduction="none"``, else a scalar (``"mean"`` = batchmean).
    """
    _check_reduction(reduction)
    check_pair(student_logits, teacher_logits)
    if not tau > 0:
        raise ConfigError(f"KD temperature tau must be > 0, got {tau}", hint="use tau=2.0 (the CP-JKU default)")
    log_p_s = F.log_softmax(_as_float(student_logits) / tau, dim=-1)
    log_p_t = F.log_softmax(_as_float(teacher_logits.detach()).to(log_p_s.device) / tau, dim=-1)
    per = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=-1)
    if kl_mean_over_classes:
        per = per / student_logits.shape[-1]
    return _reduce(per, reduction)


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, lam: float = 0.02,
            tau: float = 2.0, reduction: str = "mean", *, kl_mean_over_classes: bool = False,
            convention: str = "cpjku") -> Tensor:
    """``λ·CE(z_s, y) + (1−λ)·τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ))`` (``convention="cpjku"``)
    or ``(1−λ)·CE(z_s, y) + λ·τ²·KL(...)`` (``convention="sntl"``).

    Args:
        student_logits: (B, C) student logits (gradients flow here).
        teacher_logits: (B, C) teacher logits (treated as constants, detached).
        targets: class indices (B,) or soft targets (B, C) for the label term.
        lam: weight λ ∈ [0, 1]. Under ``"cpjku"`` it weighs the label loss (``lam=1`` is plain
            cross-entropy, ``lam=0`` pure distillation); under ``"sntl"`` it weighs the KL term
            (``lam=0`` is plain cross-entropy). Default 0.02 (CP-JKU DCASE 2023/2024).
        tau: temperature τ > 0 applied to both student and teacher. Default 2.0.
        reduction: ``"mean"`` (average over examples; the KL part is batchmean), ``"sum"`` or
            ``"none"`` → per-example losses (B,).
        kl_mean_over_classes: divide the KL by C as the CP-JKU code does (see module doc).
        convention: ``"cpjku"`` (default) or ``"sntl"``: which term λ weighs (see module doc).

    Returns:
        a scalar, or (B,) per-example losses for ``reduction="none"``.

    Raises:
        ConfigError: ``lam`` outside [0, 1], ``tau`` ≤ 0, an unknown ``reduction`` or
            ``convention``, logits that are not (B, C) or differ in shape, bad targets.

    Mixup: the KL term depends only on the (mixed) input, the label term is linear in the
    targets, so either pass mixed soft targets ``lam_i·onehot(y) + (1−lam_i)·onehot(y[perm])``
    or call with ``reduction="none"`` for ``y`` and ``y[perm]`` and mix the two per-example
    losses with :func:`asc_edge.augment.mixup_loss`.
    """
    _check_reduction(reduction)
    if convention not in _CONVENTIONS:
        raise ConfigError(f"unknown KD convention {convention!r}",
                          hint="use 'cpjku' (lam weighs the label loss) or 'sntl' (lam weighs the KL term)")
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"KD weight lam must be in [0, 1], got {lam}",
                          hint="use lam=0.02 (CP-JKU default) or lam=1 for training without a teacher"
                          if convention == "cpjku" else "under convention='sntl' lam weighs the KL term; "
                          "lam=0 trains without a teacher")
    kl = kl_term(student_logits, teacher_logits, tau, reduction="none", kl_mean_over_classes=kl_mean_over_classes)
    ce = ce_term(student_logits, targets, reduction="none")
    w_ce = lam if convention == "cpjku" else 1.0 - lam
    per = w_ce * ce + (1.0 - w_ce) * (tau ** 2) * kl
    return _reduce(per, reduction)
