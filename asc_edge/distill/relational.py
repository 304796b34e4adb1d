"""Relational knowledge distillation (RKD; Park, Kim, Lu, Cho, CVPR 2019) and the AI4EDGE 2023 RRS schedule.

RKD transfers the *structure* of a batch of teacher embeddings instead of the individual
outputs: the student is trained so that the pairwise distances (RKD-D) and the triplet angles
(RKD-A) of its embeddings match the teacher's. Both potentials are free of the embedding
dimension and of the embedding scale, so student and teacher may have different widths (e.g.
pooled features of 64 and 768 channels, or logits) and different magnitudes.

With t_i the teacher embedding of example i (s_i the student's), B the batch size:

* distance potential ``ψ_D(t_i, t_j) = ‖t_i − t_j‖₂ / μ_t``, μ_t the mean distance over the
  B(B−1) pairs i ≠ j (paper, "distance-wise distillation loss");
* angle potential ``ψ_A(t_i, t_j, t_k) = ⟨e_ij, e_kj⟩``, ``e_ij = (t_i − t_j) / ‖t_i − t_j‖₂``:
  the cosine of the angle at t_j (paper, "angle-wise distillation loss");
* both matched with the Huber loss (δ = 1; PyTorch ``smooth_l1_loss`` with ``beta=1``)::

      l_δ(x, y) = ½ (x − y)²      if |x − y| ≤ 1
                  |x − y| − ½     otherwise

* ``L_RKD = w_D · L_RKD-D + w_A · L_RKD-A`` with the paper's w_D = 25, w_A = 50.

Averaging (a choice, stated because it scales the loss): the paper writes the losses as sums
over pairs / triplets; here they are *means* over the pairs i ≠ j and over the triplets of
three distinct examples (leaving out, in the angle loss, any triplet in which the student or the
teacher has two coincident embeddings: the angle is undefined there and its gradient unbounded).
The authors' reference code averages over all B² pairs / B³ triplets
instead (the degenerate ones contribute 0), which is (B−1)/B (distance) and about
(B−1)(B−2)/B² (angle) of the values here, a difference under 3 % at B ≥ 128. The reference code
normalises by the mean of the distances that are > 0; here the mean is over i ≠ j, which is the
same unless two examples of the batch have identical embeddings.

RRS (AI4EDGE, DCASE 2023 Task 1 technical report): the student is first trained with relational
KD (stage 1) and then with Hinton response-based KD (stage 2, :func:`asc_edge.distill.kd.kd_loss`);
:func:`rrs_stage` says which stage an epoch belongs to.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from asc_edge.errors import ConfigError

__all__ = ["rkd_distance_loss", "rkd_angle_loss", "rkd_loss", "rrs_stage"]

_EPS = 1e-12
_DEGENERATE = 1e-6  # a pair closer than this fraction of the mean distance counts as coincident


def _check_embeddings(student_emb: Tensor, teacher_emb: Tensor, min_batch: int) -> tuple[Tensor, Tensor]:
    for name, x in (("student_emb", student_emb), ("teacher_emb", teacher_emb)):
        if not isinstance(x, Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(f"{name} must be a (batch, dim) tensor, got {shape}",
                              hint="flatten pooled features with x.flatten(1) or pass (B, C) logits")
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ConfigError(f"student batch {student_emb.shape[0]} != teacher batch {teacher_emb.shape[0]}",
                          hint="student and teacher embeddings must be for the same clips, in the same order")
    if student_emb.shape[0] < min_batch:
        raise ConfigError(f"relational KD needs a batch of at least {min_batch} examples, got {student_emb.shape[0]}",
                          hint="use a larger batch (or drop_last=True in the data loader)")
    s = student_emb.float() if student_emb.dtype in (torch.float16, torch.bfloat16) else student_emb
    t = teacher_emb.detach()
    t = t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
    return s, t.to(device=s.device, dtype=s.dtype)


def _distance_potential(x: Tensor) -> Tensor:
    """Normalised distances ‖x_i − x_j‖ / μ for the B(B−1)/2 pairs i < j (order of ``triu_indices``)."""
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1, device=x.device)
    d = torch.linalg.vector_norm(x[i] - x[j], dim=-1)
    return d / d.mean().clamp_min(_EPS)  # mean over i<j equals the mean over all i≠j (symmetry)


def rkd_distance_loss(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """RKD distance loss: ``mean_{i≠j} l_δ( ‖s_i−s_j‖/μ_s , ‖t_i−t_j‖/μ_t )``, δ = 1.

    Park et al., "Relational Knowledge Distillation", CVPR 2019, distance-wise loss. μ_s, μ_t are the mean
    pairwise distances over i ≠ j of the student / teacher batch, so the loss is invariant to a
    uniform scaling of either embedding and independent of the embedding dimensions.

    Args:
        student_emb: (batch, d_s) student embeddings (gradients flow here).
        teacher_emb: (batch, d_t) teacher embeddings; detached. ``d_t`` may differ from ``d_s``.

    Returns:
        scalar loss (mean over the unordered pairs, equal to the mean over ordered pairs i ≠ j).

    Raises:
        ConfigError: inputs not 2-D, different batch sizes, or batch < 2.
    """
    s, t = _check_embeddings(student_emb, teacher_emb, min_batch=2)
    return F.smooth_l1_loss(_distance_potential(s), _distance_potential(t), beta=1.0, reduction="mean")


def _angle_potential(x: Tensor) -> tuple[Tensor, Tensor]:
    """cos[i, j, k] = ⟨e_ij, e_kj⟩ for all (B, B, B) index triples, and the mask of usable triples.

    Usable: i, j, k distinct and neither x_i − x_j nor x_k − x_j (numerically) zero — the angle at
    a point that coincides with another is undefined, and the unit vector's gradient 1/‖x_i − x_j‖
    would explode. Degenerate differences get e = 0 with no gradient.
    """
    b = x.shape[0]
    diff = x.unsqueeze(1) - x.unsqueeze(0)  # diff[i, j] = x_i − x_j
    norm = torch.linalg.vector_norm(diff, dim=-1)
    off_diag = ~torch.eye(b, dtype=torch.bool, device=x.device)
    scale = norm.detach()[off_diag].mean()
    ok = norm.detach() > _DEGENERATE * scale  # False on the diagonal and for duplicate examples
    e = torch.where(ok.unsqueeze(-1), diff / norm.clamp_min(_EPS).unsqueeze(-1), torch.zeros_like(diff))
    cos = torch.einsum("ijd,kjd->ijk", e, e)
    idx = torch.arange(b, device=x.device)
    ii, kk = idx.view(b, 1, 1), idx.view(1, 1, b)
    usable = ok.unsqueeze(2) & ok.t().unsqueeze(0) & (ii != kk)  # ok[i, j] & ok[k, j] & i != k
    return cos, usable


def rkd_angle_loss(student_emb: Tensor, teacher_emb: Tensor) -> Tensor:
    """RKD angle loss: ``mean_{i,j,k distinct} l_δ( cos∠s_i s_j s_k , cos∠t_i t_j t_k )``, δ = 1.

    Park et al., CVPR 2019, angle-wise loss: ``cos∠x_i x_j x_k = ⟨e_ij, e_kj⟩`` with
    ``e_ij = (x_i − x_j)/‖x_i − x_j‖₂`` (the angle at x_j). Invariant to scaling, translation and
    rotation of either embedding; student and teacher dimensions may differ. Memory O(B²·d + B³).

    Args:
        student_emb: (batch, d_s) student embeddings (gradients flow here).
        teacher_emb: (batch, d_t) teacher embeddings; detached.

    Returns:
        scalar loss (mean over the B(B−1)(B−2) ordered triplets of distinct examples; triplets
        with coincident embeddings, student or teacher side, are left out; 0 if none is left).

    Raises:
        ConfigError: inputs not 2-D, different batch sizes, or batch < 3.
    """
    s, t = _check_embeddings(student_emb, teacher_emb, min_batch=3)
    cos_s, ok_s = _angle_potential(s)
    cos_t, ok_t = _angle_potential(t)
    mask = ok_s & ok_t
    if not bool(mask.any()):  # every triplet degenerate (e.g. a collapsed batch): nothing to match
        return (s * 0.0).sum()
    return F.smooth_l1_loss(cos_s[mask], cos_t[mask], beta=1.0, reduction="mean")


def rkd_loss(student_emb: Tensor, teacher_emb: Tensor, w_distance: float = 25.0, w_angle: float = 50.0) -> Tensor:
    """``w_D · rkd_distance_loss + w_A · rkd_angle_loss`` (weights of Park et al., CVPR 2019).

    Args:
        student_emb: (batch, d_s) student embeddings (logits or pooled features).
        teacher_emb: (batch, d_t) teacher embeddings; detached.
        w_distance: weight w_D ≥ 0 of the distance term (paper: 25).
        w_angle: weight w_A ≥ 0 of the angle term (paper: 50).

    Returns:
        scalar loss.

    Raises:
        ConfigError: a negative weight, plus the errors of the two terms (batch < 3 when
            ``w_angle > 0``, batch < 2 otherwise).
    """
    if not (w_distance >= 0 and w_angle >= 0):
        raise ConfigError(f"RKD weights must be >= 0, got w_distance={w_distance}, w_angle={w_angle}",
                          hint="use the paper's w_distance=25, w_angle=50")
    loss = w_distance * rkd_distance_loss(student_emb, teacher_emb)
    if w_angle > 0:
        loss = loss + w_angle * rkd_angle_loss(student_emb, teacher_emb)
    return loss


def rrs_stage(epoch: int, relational_epochs: int) -> str:
    """Stage of AI4EDGE's (DCASE 2023 Task 1) two-stage "RRS" distillation at ``epoch`` (0-based).

    The report trains the student first with relational KD (stage 1: :func:`rkd_loss` on the
    embeddings) and then with Hinton response-based KD (stage 2: :func:`asc_edge.distill.kd.kd_loss`
    on the logits). The number of epochs per stage is an argument, not fixed here.

    Args:
        epoch: current epoch, counted from 0.
        relational_epochs: number of stage-1 epochs (0 = response KD only).

    Returns:
        ``"relational"`` for ``epoch < relational_epochs``, else ``"response"``.

    Raises:
        ConfigError: a negative or non-integer ``epoch`` or ``relational_epochs``.
    """
    for name, v in (("epoch", epoch), ("relational_epochs", relational_epochs)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
            raise ConfigError(f"{name} must be a non-negative int, got {v!r}",
                              hint="count epochs from 0; relational_epochs is the length of stage 1")
    return "relational" if epoch < relational_epochs else "response"
