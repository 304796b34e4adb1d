"""Training batches: a split's features, targets and teacher logits as a torch ``DataLoader``.

The split itself (cached log-mel features, class indices, device ids) comes from
:func:`asc_edge.features.load_split_data`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from asc_edge.features.splits import SplitData

__all__ = ["training_loader"]


def training_loader(split: SplitData, teacher: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Batches of ``(features (B, 1, n_mels, frames) float32, targets (B,) int64, teacher logits
    (B, C) float32 — C = 0 without teachers, clip indices (B,) int64)``.

    ``shuffle``: a seeded order (``torch.Generator().manual_seed(seed)``) and the last incomplete
    batch dropped when the split has more than one batch; otherwise CSV order, every clip."""
    ds = TensorDataset(torch.from_numpy(split.features), torch.from_numpy(split.targets),
                       torch.from_numpy(teacher), torch.arange(len(split.targets)))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=0,
                      drop_last=shuffle and len(ds) > batch_size,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)
