"""Training batches: a split's features (or waveforms), targets and teacher logits as a torch ``DataLoader``.

The split itself (cached log-mel features, class indices, device ids) comes from
:func:`asc_edge.features.load_split_data`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from asc_edge.features.cache import FeatureCache
from asc_edge.features.splits import SplitData

__all__ = ["WaveformDataset", "training_loader"]


class WaveformDataset(Dataset):
    """``--features online``: item ``i`` is ``(waveform (samples,) float32, target, teacher logits (C,), i)``,
    the waveform read from its feature-cache file (:meth:`FeatureCache.one`) when the item is asked
    for, so that a 139k-clip split never sits in memory and ``num_workers`` processes read in parallel.
    The log-mel is computed by the LightningModule, per batch, on the training device."""

    def __init__(self, split: SplitData, teacher: np.ndarray, cache: FeatureCache):
        self.clips = split.clips
        self.targets = torch.from_numpy(split.targets)
        self.teacher = torch.from_numpy(teacher)
        self.cache = cache

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        wave = torch.from_numpy(self.cache.one(self.clips[i], "waveforms"))
        return wave, self.targets[i], self.teacher[i], torch.tensor(i, dtype=torch.int64)


def training_loader(split: SplitData, teacher: np.ndarray, batch_size: int, shuffle: bool, seed: int,
                    num_workers: int = 0, waveforms: FeatureCache | None = None) -> DataLoader:
    """Batches of ``(features (B, 1, n_mels, frames) float32, targets (B,) int64, teacher logits
    (B, C) float32 — C = 0 without teachers, clip indices (B,) int64)``; with ``waveforms`` (the
    split's feature cache, ``--features online``) the first element is the waveforms ``(B, samples)``
    instead (:class:`WaveformDataset`).

    ``shuffle``: a seeded order (``torch.Generator().manual_seed(seed)``) and the last incomplete
    batch dropped when the split has more than one batch; otherwise CSV order, every clip.
    ``num_workers`` > 0: that many persistent loader processes (the order is the same)."""
    if waveforms is not None:
        ds = WaveformDataset(split, teacher, waveforms)
    else:
        ds = TensorDataset(torch.from_numpy(split.features), torch.from_numpy(split.targets),
                           torch.from_numpy(teacher), torch.arange(len(split.targets)))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      persistent_workers=num_workers > 0,
                      drop_last=shuffle and len(ds) > batch_size,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)
