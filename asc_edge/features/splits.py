"""A split's clips as model-ready arrays: log-mel features, class indices, device ids.

Used by training, evaluation, export (calibration / check clips) and benchmarks alike, so it lives
with the features (below models and train in the layering).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asc_edge.data import AudioStats, Clip, load_split, open_dataset
from asc_edge.errors import DataError
from asc_edge.features.cache import FeatureCache, default_cache_dir
from asc_edge.features.config import FrontendConfig

__all__ = ["SplitData", "load_split_data", "load_split_waveforms"]

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """One split, ready for a model.

    ``features``: (N, 1, n_mels, frames) float32 log-mel; ``targets``: (N,) int64 indices into
    ``labels``; ``devices``: N device ids; ``clips``: the N :class:`Clip` rows in CSV order; ``frontend``: the
    feature definition that produced ``features``.
    """

    clips: list[Clip]
    features: np.ndarray
    targets: np.ndarray
    devices: list[str]
    labels: tuple[str, ...]
    frontend: FrontendConfig


def load_split_data(data: str | Path, split: str, frontend: FrontendConfig, *,
                    splits_dir: str | Path | None = None, labels: Sequence[str] | None = None,
                    cache_dir: str | Path | None = None, progress: bool = True,
                    with_features: bool = True) -> SplitData:
    """Read a split of a TAU-layout dataset and return its cached log-mel features.

    ``with_features=False`` (``asc-edge train --features online``): no log-mel is computed or read;
    the resampled waveforms are cached instead (:meth:`FeatureCache.ensure`, none held in memory) and
    ``features`` is an empty ``(N, 0)`` array.

    ``labels``: the class order of the model's logits (e.g. from a checkpoint); default: the
    dataset's own sorted label set. Labels are matched by name, never by position. ``cache_dir``:
    the feature cache (default ``default_cache_dir() / "features"``).

    Raises:
        DataError: bad layout / CSV / audio (see :mod:`asc_edge.data`), or a clip whose label the
            model does not know.
    """
    ds = open_dataset(data)
    clips = load_split(ds, split, Path(splits_dir) if splits_dir else None)
    labels = tuple(labels) if labels is not None else ds.labels
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({c.label for c in clips} - set(index))
    if unknown:
        raise DataError(f"split {split!r} of {data} has labels the model does not know: {', '.join(unknown)}",
                        hint=f"the model was trained on: {', '.join(labels)}")
    stats = AudioStats()
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir() / "features", frontend)
    if with_features:
        features = cache.features(clips, stats=stats, progress=progress)
    else:
        cache.ensure(clips, "waveforms", stats=stats, progress=progress)
        features = np.zeros((len(clips), 0), dtype=np.float32)
    if stats.loaded:
        log.info("split %s: %s", split, stats.summary())
    return SplitData(clips=clips, features=features,
                     targets=np.array([index[c.label] for c in clips], dtype=np.int64),
                     devices=[c.device for c in clips], labels=labels, frontend=frontend)


def load_split_waveforms(split: SplitData, frontend: FrontendConfig,
                         cache_dir: str | Path | None = None) -> np.ndarray:
    """Waveforms (N, samples) float32 at the frontend's sample rate, for waveform augmentation."""
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir() / "features", frontend)
    return cache.waveforms(split.clips, progress=False)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_folder_split(folder: str | Path, frontend: FrontendConfig, *, cache_dir: str | Path | None = None,
                      progress: bool = False, what: str = "audio folder", flag: str = "--calib-data") -> SplitData:
    """Every audio file (``.wav``, ``.flac``, ``.ogg``, searched recursively, sorted by path) in
    ``folder`` as an unlabelled :class:`SplitData`: features ``(N, 1, n_mels, frames)`` float32,
    ``targets`` all −1, no labels. For audio that is not in TAU layout (no ``meta.csv``): the
    mean-teacher scheme's unlabelled clips, or int8 calibration on a user's own recordings
    (``asc-edge export --calib-data FOLDER``). Each file is one clip of the frontend's length (longer
    files are cropped, shorter ones zero-padded, other rates resampled, as for the splits), through the
    same :class:`~asc_edge.features.cache.FeatureCache` (``cache_dir``, default
    ``default_cache_dir() / "features"``), so a file already cached — also through a symbolic link —
    is not read again. ``what`` / ``flag``: how error messages name the folder and its option.

    Raises:
        DataError: the folder is missing or holds no audio file, or a file is unreadable.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: {what} not found", hint=f"pass a folder of WAV files ({flag})")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{root}: no audio files (.wav/.flac/.ogg) in the {what}",
                        hint=f"pass a folder that holds the audio clips ({flag})")
    clips = [Clip(path=f, filename=f.relative_to(root).as_posix(), label="", identifier="", device="")
             for f in files]
    stats = AudioStats()
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir() / "features", frontend)
    out = cache.features(clips, stats=stats, progress=progress)
    log.info("audio folder %s: %d clips (%s)", root, len(files), stats.summary())
    return SplitData(clips=clips, features=out, targets=np.full(len(clips), -1, dtype=np.int64),
                     devices=[""] * len(clips), labels=(), frontend=frontend)


def load_folder_features(folder: str | Path, frontend: FrontendConfig, *, cache_dir: str | Path | None = None,
                         progress: bool = False) -> np.ndarray:
    """Log-mel features ``(N, 1, n_mels, frames)`` float32 of every audio file in ``folder``
    (:func:`load_folder_split`): unlabelled audio for the mean-teacher scheme (``--unlabelled``).

    Raises:
        DataError: the folder is missing or holds no audio file, or a file is unreadable.
    """
    return load_folder_split(folder, frontend, cache_dir=cache_dir, progress=progress, what="unlabelled-audio folder",
                             flag="--unlabelled").features


def subset(split: SplitData, index) -> SplitData:
    """The clips of ``split`` at ``index`` (positions, in that order) as a new :class:`SplitData`."""
    idx = np.asarray(index, dtype=np.int64)
    return SplitData(clips=[split.clips[i] for i in idx], features=split.features[idx],
                     targets=split.targets[idx], devices=[split.devices[i] for i in idx],
                     labels=split.labels, frontend=split.frontend)


def holdout_index(clips: Sequence[Clip], fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Carve a validation subset out of a train split's ``clips``: ``(fit_index, val_index)``, positions
    into ``clips``, disjoint, covering every clip, each sorted.

    Whole recordings move together (clips sharing ``Clip.identifier``, TAU's ``<city>-<location>``),
    so no recording is heard in both parts, as the TAU development split keeps train and test apart.
    Per scene label, that label's recordings are shuffled with ``seed`` and taken until they hold at
    least ``round(fraction * clips of the label)`` clips (at least one recording, never the last one: a
    label with one recording is not validated, every label is trained on).
    Used by ``asc-edge tune`` and ``train --val-fraction``: the validation accuracy that steers a
    search never comes from the test split.

    Raises:
        ConfigError: ``fraction`` outside (0, 1).
    """
    from ..errors import ConfigError

    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction {fraction} outside (0, 1)",
                          hint="e.g. 0.2: a fifth of each scene's recordings validate, the rest train")
    rng = np.random.default_rng(seed)
    by_label: dict[str, dict[str, list[int]]] = {}  # label -> recording -> clip positions, one pass
    for i, c in enumerate(clips):
        by_label.setdefault(c.label, {}).setdefault(c.identifier or c.filename, []).append(i)
    val = []
    for label in sorted(by_label):
        by_rec = by_label[label]
        recs = sorted(by_rec)
        if len(recs) < 2:
            continue
        want = max(1, round(fraction * sum(len(v) for v in by_rec.values())))
        taken = 0
        for r in rng.permutation(len(recs))[:-1]:  # one recording of the label always stays in training
            val.extend(by_rec[recs[r]])
            taken += len(by_rec[recs[r]])
            if taken >= want:
                break
    val_set = set(val)
    fit = np.array([i for i in range(len(clips)) if i not in val_set], dtype=np.int64)
    return fit, np.array(sorted(val_set), dtype=np.int64)
