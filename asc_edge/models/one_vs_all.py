"""AI4EDGE's one-vs-all teacher (DCASE 2023 Task 1): C binary experts form a C-class teacher.

The AI4EDGE report trains ten binary SM1 models, one per scene, each saying "this scene vs the
rest", and combines the experts' scores into the 10-class output the students distil from.

**How the scores are combined (our reading; the report gives no formula).** Expert c outputs one
logit z_c = log-odds of "the clip is scene c". The teacher's logits are these log-odds stacked,
``(batch, C)``; the KD loss's softmax then normalises them: p_c ∝ exp(z_c) = σ(z_c) / (1 − σ(z_c)),
i.e. the experts' odds renormalised to a distribution. This is the natural reading of "combine the
binary scores into a 10-class output": it needs no extra parameters, keeps the teacher a logit
model like every other teacher here (temperature-scaled KD works unchanged), and preserves each
expert's ranking. A constant shift shared by all experts cancels in the softmax — in particular
the log(C − 1) shift that ``pos_weight = C − 1`` (below) puts on every expert's logit.

An expert may output one logit per clip, ``(batch, 1)`` = the log-odds of "is class c", or two,
``(batch, 2)`` = logits of ("rest", "class c"); the log-odds is then ``logit[:, 1] − logit[:, 0]``
(the binary softmax's log-odds). :func:`to_binary_logit` does that conversion.

Training expert c (our setting): BCE-with-logits on :func:`binary_targets` with ``pos_weight =
C − 1`` (:func:`binary_loss`): with balanced scenes 1 clip in C is positive, and the weight makes
positives and negatives count equally.

    teacher = build_one_vs_all("sm1")                 # 10 × SM1 with one output each
    for c in range(teacher.n_classes):                # per expert, on (batch, 1, 140, 8) log-mels
        loss = binary_loss(teacher.expert_logit(x, c), y, c, n_classes=teacher.n_classes)
    z = teacher(x)                                    # (batch, 10) teacher logits for KD
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from asc_edge.errors import ConfigError
from asc_edge.models import build_model, register_model

__all__ = ["OneVsAllTeacher", "to_binary_logit", "binary_targets", "binary_loss", "build_one_vs_all"]


def to_binary_logit(out: Tensor) -> Tensor:
    """A binary expert's output as one log-odds per clip, shape (batch,).

    ``(batch, 1)`` → ``out[:, 0]``; ``(batch, 2)`` → ``out[:, 1] − out[:, 0]``; ``(batch,)`` as is.
    Raises ConfigError for any other shape.
    """
    if out.dim() == 1:
        return out
    if out.dim() == 2 and out.shape[1] == 1:
        return out[:, 0]
    if out.dim() == 2 and out.shape[1] == 2:
        return out[:, 1] - out[:, 0]
    raise ConfigError(f"one-vs-all: a binary expert returned shape {tuple(out.shape)}",
                      hint="build each expert with n_classes=1 (log-odds) or 2 ([rest, class] logits)")


class OneVsAllTeacher(nn.Module):
    """C binary experts ("class c vs the rest") as one C-class teacher.

    ``experts[c]`` maps (batch, 1, n_mels, frames) to (batch, 1) or (batch, 2) logits (see
    :func:`to_binary_logit`); ``forward`` stacks the C log-odds into (batch, C) logits, column c
    from expert c (the module docstring explains the choice).
    """

    def __init__(self, experts: Sequence[nn.Module]):
        super().__init__()
        experts = list(experts)
        if len(experts) < 2:
            raise ConfigError(f"one-vs-all: {len(experts)} expert(s) given",
                              hint="give one binary expert per class (at least 2)")
        self.experts = nn.ModuleList(experts)

    @property
    def n_classes(self) -> int:
        return len(self.experts)

    def expert_logit(self, x: Tensor, c: int) -> Tensor:
        """Expert ``c``'s log-odds of "is class c" for the batch ``x``, shape (batch,)."""
        if not 0 <= c < self.n_classes:
            raise ConfigError(f"one-vs-all: class index {c} out of range",
                              hint=f"use 0 <= c < {self.n_classes}")
        return to_binary_logit(self.experts[c](x))

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([to_binary_logit(expert(x)) for expert in self.experts], dim=1)

    def classification_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """The training loss ``asc-edge train`` uses for this model instead of cross-entropy:
        every expert's :func:`binary_loss` at once, per example (batch,) = Σ_c BCE_c with
        ``pos_weight = C − 1``; its batch mean equals ``Σ_c binary_loss(logits[:, c], targets, c)``.
        ``logits``: (batch, C) from :meth:`forward`; ``targets``: class indices (batch,) or soft (batch, C)."""
        C = self.n_classes
        y = torch.stack([binary_targets(targets, c) for c in range(C)], dim=1).to(logits.device, logits.dtype)
        w = torch.full((C,), float(C - 1), device=logits.device, dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=w, reduction="none").sum(dim=1)


def binary_targets(targets: Tensor, c: int) -> Tensor:
    """Targets of expert ``c``, float (batch,): 1.0 where ``targets == c``, else 0.0.

    Class indices (batch,) are compared with ``c``; one-hot / soft targets (batch, C) (e.g. after
    mixup) give their column c, the probability that the clip is class c.
    """
    if targets.dim() == 1:
        if targets.is_floating_point():
            raise ConfigError("binary_targets: 1-D targets must be class indices (an integer tensor)",
                              hint="pass labels as a LongTensor, or one-hot/soft targets as (batch, C)")
        return (targets == c).float()
    if targets.dim() == 2:
        if not 0 <= c < targets.shape[1]:
            raise ConfigError(f"binary_targets: class index {c} out of range for {targets.shape[1]} classes",
                              hint=f"use 0 <= c < {targets.shape[1]}")
        return targets[:, c].float()
    raise ConfigError(f"binary_targets: targets of shape {tuple(targets.shape)}",
                      hint="pass class indices (batch,) or one-hot/soft targets (batch, C)")


def binary_loss(logit_c: Tensor, targets: Tensor, c: int, pos_weight: float | None = None,
                n_classes: int = 10) -> Tensor:
    """Mean BCE-with-logits of expert ``c`` on the batch.

    ``logit_c``: the expert's log-odds (batch,) or its raw output (batch, 1) / (batch, 2)
    (converted with :func:`to_binary_logit`); ``targets``: class indices (batch,) or soft
    targets (batch, C) (see :func:`binary_targets`).

    ``pos_weight`` multiplies the positive term: loss_i = −[w·y_i·log σ(z_i) + (1 − y_i)·log(1 − σ(z_i))],
    averaged over the batch (divided by the batch size, not by the weights). Default ``C − 1``
    with C = ``targets.shape[1]`` for soft targets, else ``n_classes``: with balanced classes one
    clip in C is positive, so the C − 1 weight makes positives and negatives count equally and
    keeps the expert from learning "always rest". Pass ``pos_weight=1.0`` for plain BCE.
    """
    z = to_binary_logit(logit_c)
    y = binary_targets(targets, c).to(device=z.device, dtype=z.dtype)
    if z.shape != y.shape:
        raise ConfigError(f"binary_loss: {z.shape[0]} logits for {y.shape[0]} targets",
                          hint="pass the expert's output and the labels of the same batch")
    if pos_weight is None:
        C = targets.shape[1] if targets.dim() == 2 else n_classes
        if C < 2:
            raise ConfigError(f"binary_loss: n_classes={C}", hint="one-vs-all needs at least 2 classes")
        pos_weight = float(C - 1)
    w = torch.as_tensor(float(pos_weight), device=z.device, dtype=z.dtype)
    return F.binary_cross_entropy_with_logits(z, y, pos_weight=w)


def build_one_vs_all(n_classes: int = 10, model_name: str = "sm1", **kwargs) -> OneVsAllTeacher:
    """``n_classes`` experts ``build_model(model_name, n_classes=1, **kwargs)`` as a OneVsAllTeacher.

    Default: AI4EDGE's ten SM1 experts, input (batch, 1, 140, 8), output (batch, 10). The experts
    are independent (own weights); each outputs one log-odds.
    """
    if int(n_classes) < 2:
        raise ConfigError(f"one-vs-all: n_classes={n_classes}", hint="one-vs-all needs at least 2 classes")
    return OneVsAllTeacher([build_model(model_name, n_classes=1, **kwargs) for _ in range(int(n_classes))])



register_model("sm1-ova", build_one_vs_all, {"model_name": "sm1"}, role="teacher", frontend="ai4edge-8k",
               source="AI4EDGE DCASE 2023 Task 1: one-vs-all teacher, ten binary SM1 experts (one per scene) "
                      "whose log-odds form the 10-class teacher")
