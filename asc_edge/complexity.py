"""Model complexity against the DCASE Task 1 limits: parameters, MACs, parameter bytes.

MACs come from torchinfo's ``summary`` (``total_mult_adds``), the counter the DCASE 2024 Task 1
baseline and NeSsi use, on a single input of shape ``(1, 1, n_mels, frames)``. Parameters are
trainable + non-trainable parameters (BatchNorm running statistics are buffers and not counted,
as in the challenge rules).

Limits (DCASE 2024 Task 1): 128,000 bytes of parameter memory and 30,000,000 MACs per 1-s clip.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from torch import nn

from .errors import BudgetError

MAX_PARAM_BYTES = 128_000        # DCASE 2024 Task 1: 128 kB of parameters
MAX_MACS = 30_000_000            # DCASE 2024 Task 1: 30 M MACs per inference (1 s)
BYTES_PER_PARAM = {"int8": 1, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class Complexity:
    """Cost of one model for one input shape.

    ``params``: count; ``macs``: multiply-accumulates per inference; ``input_shape``:
    (batch, channels, n_mels, frames); ``param_bytes``: bytes at int8 / fp16 / fp32.
    """

    params: int
    macs: int
    input_shape: tuple[int, int, int, int]

    @property
    def param_bytes(self) -> dict[str, int]:
        return {k: self.params * b for k, b in BYTES_PER_PARAM.items()}

    def within_budget(self, dtype: str = "int8") -> bool:
        """True when ``params`` at ``dtype`` fit 128,000 bytes and MACs fit 30 M."""
        return self.param_bytes[dtype] <= MAX_PARAM_BYTES and self.macs <= MAX_MACS

    def budget_problems(self, dtype: str = "int8") -> list[str]:
        """Human-readable reasons the model is over budget at ``dtype`` (empty when within)."""
        out = []
        if self.param_bytes[dtype] > MAX_PARAM_BYTES:
            out.append(f"{self.param_bytes[dtype]:,} parameter bytes at {dtype} > {MAX_PARAM_BYTES:,}")
        if self.macs > MAX_MACS:
            out.append(f"{self.macs:,} MACs > {MAX_MACS:,}")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["param_bytes"] = self.param_bytes
        d["limits"] = {"param_bytes": MAX_PARAM_BYTES, "macs": MAX_MACS}
        return d


def measure(model: nn.Module, n_mels: int = 256, frames: int = 65, in_channels: int = 1) -> Complexity:
    """Count parameters and MACs of ``model`` for one input ``(1, in_channels, n_mels, frames)``.

    Uses torchinfo (the DCASE baselines' counter). The model is put in eval mode for the count and
    restored afterwards.
    """
    from torchinfo import summary

    was_training = model.training
    shape = (1, in_channels, n_mels, frames)
    try:
        stats = summary(model, input_size=shape, verbose=0, device="cpu")
    finally:
        model.train(was_training)
    return Complexity(params=int(stats.total_params), macs=int(stats.total_mult_adds), input_shape=shape)


def check_budget(c: Complexity, dtype: str = "int8", allow_over_budget: bool = False,
                 what: str = "model") -> None:
    """Refuse (``BudgetError``) or, with ``allow_over_budget``, warn about an over-budget model (one
    ``warning: ...`` line on the ``asc_edge`` logger, not a Python warning with a source path).

    Raises:
        BudgetError: over 128,000 parameter bytes at ``dtype`` or 30 M MACs and not allowed.
    """
    problems = c.budget_problems(dtype)
    if not problems:
        return
    msg = f"{what} is over the DCASE Task 1 budget: " + "; ".join(problems)
    if not allow_over_budget:
        raise BudgetError(msg, hint="shrink the model (fewer base channels / blocks) or pass --allow-over-budget")
    logging.getLogger("asc_edge").warning("warning: %s (--allow-over-budget given)", msg)
