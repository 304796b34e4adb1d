"""Logit-averaged teacher ensembles (as in CP-JKU's DCASE 2023/2024 teacher ensembles)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class LogitEnsemble(nn.Module):
    """Mean of the members' logits.

    Input ``(batch, 1, n_mels, frames)``; output ``(batch, n_classes)`` = mean over members of
    each member's logits. Members must share the input definition and label order.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
