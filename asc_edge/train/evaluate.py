"""``asc-edge evaluate``: metrics of a checkpoint on a split."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import LoadedModel, load_checkpoint, predict_logits
from ..features import SplitData, load_split_data
from ..metrics import classification_metrics


def evaluate_loaded(loaded: LoadedModel, split: SplitData) -> dict:
    """Metrics (see :func:`asc_edge.metrics.classification_metrics`) of ``loaded`` on ``split``."""
    logits = predict_logits(loaded.model, split.features).numpy()
    return classification_metrics(logits, split.targets, loaded.labels, split.devices)


def evaluate_checkpoint(ckpt: str | Path, data: str | Path, split: str = "test", *,
                        splits_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                        progress: bool = True) -> dict:
    """Load ``ckpt``, compute features of ``split`` with the checkpoint's own frontend, evaluate.

    Raises:
        CheckpointError, DataError: see :func:`load_checkpoint` and :func:`load_split_data`.
    """
    loaded = load_checkpoint(ckpt)
    # ``cache_dir`` is the cache root, as `asc-edge train --cache-dir`: features live in <cache_dir>/features
    split_data = load_split_data(data, split, loaded.frontend, splits_dir=splits_dir, labels=loaded.labels,
                                 cache_dir=Path(cache_dir) / "features" if cache_dir else None, progress=progress)
    metrics = evaluate_loaded(loaded, split_data)
    metrics["checkpoint"] = str(loaded.path)
    metrics["split"] = split
    return metrics
