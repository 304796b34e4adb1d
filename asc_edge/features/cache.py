"""On-disk cache of per-clip log-mel features and resampled waveforms.

Layout: ``<cache_dir>/<cfg.key()>/{features,waveforms}/<clip stem>-<hash>.npy`` plus a
``config.json`` naming the frontend settings. An entry's hash covers the frontend key, the
clip's absolute path, file size and mtime (ns), so editing or replacing a WAV invalidates it.
Entries are written atomically (temp file in the same folder, then ``os.replace``); an
unreadable or wrong-shaped entry is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from asc_edge.data.audio import AudioStats, load_audio
from asc_edge.data.tau import Clip
from asc_edge.errors import ConfigError, DataError
from asc_edge.features.config import FrontendConfig
from asc_edge.features.logmel import log_mel
from asc_edge.report.io import atomic_write

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored arrays change meaning


def default_cache_dir() -> Path:
    """``$ASC_EDGE_CACHE`` or ``~/.cache/asc-edge`` (:func:`asc_edge.paths.cache_root`): the root of the
    feature cache (``features/``) and of the teacher-logit cache (``teacher_logits/``)."""
    from asc_edge.paths import cache_root

    return cache_root()


def resample_fn(cfg: FrontendConfig) -> Callable[[np.ndarray, int, int], np.ndarray] | None:
    """The ``resample_fn`` argument of :func:`asc_edge.data.audio.load_audio` for ``cfg.resampler``:
    None for "poly" (load_audio's own scipy resampler), :data:`asc_edge.features.cpjku.SINC_HANN` for
    "sinc_hann" (torchaudio's windowed-sinc design, as CPJKU-family checkpoints store it)."""
    if cfg.resampler == "sinc_hann":
        from asc_edge.features.cpjku import SINC_HANN

        return SINC_HANN
    return None


class FeatureCache:
    """Cache of log-mel features / waveforms for clips, under ``cache_dir/<cfg.key()>/``.

    Audio is loaded with ``load_audio(clip.path, cfg.sample_rate, cfg.clip_seconds)`` (resampled as
    ``cfg.resampler`` says, see :func:`resample_fn`) and features computed with ``log_mel``; only
    cache misses touch the audio (and the ``stats`` counters).
    ``hits`` / ``misses`` count entries served from disk / computed since construction.
    Raises ConfigError when the cache folder cannot be created or written, DataError (from
    ``load_audio``) for a missing or unreadable clip.
    """

    def __init__(self, cache_dir: Path, cfg: FrontendConfig):
        self.cfg = cfg
        self.dir = Path(cache_dir).expanduser().resolve() / cfg.key()
        self.hits = 0
        self.misses = 0
        try:
            for sub in ("features", "waveforms"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
            cfg_file = self.dir / "config.json"
            if not cfg_file.is_file():
                text = json.dumps({"format": CACHE_FORMAT, "frontend": cfg.to_dict()}, indent=2, sort_keys=True)
                atomic_write(cfg_file, lambda f: f.write(text.encode("utf-8")))
        except OSError as exc:
            raise ConfigError(f"{self.dir}: cannot create feature cache folder ({exc.strerror or exc})",
                              hint="choose a writable cache_dir") from None

    # ---- hooks (monkeypatched in tests) ---------------------------------
    def _compute_waveform(self, clip: Clip, stats: AudioStats | None) -> np.ndarray:
        fn = resample_fn(self.cfg)
        if fn is None:
            return load_audio(clip.path, self.cfg.sample_rate, self.cfg.clip_seconds, stats)
        return load_audio(clip.path, self.cfg.sample_rate, self.cfg.clip_seconds, stats, resample_fn=fn)

    def _compute_features(self, clip: Clip, stats: AudioStats | None) -> np.ndarray:
        return log_mel(self._compute_waveform(clip, stats), self.cfg)

    # ---- public API -------------------------------------------------------
    def features(self, clips: Sequence[Clip], stats: AudioStats | None = None, progress: bool = True) -> np.ndarray:
        """Log-mel features of ``clips`` in order: float32 (N, 1, n_mels, n_frames)."""
        return self._get(clips, "features", self.cfg.shape, self._compute_features, stats, progress)

    def waveforms(self, clips: Sequence[Clip], stats: AudioStats | None = None, progress: bool = True) -> np.ndarray:
        """Resampled, padded/cropped mono audio of ``clips`` in order: float32 (N, n_samples) at
        ``cfg.sample_rate`` Hz (the input of DIR augmentation + ``LogMel`` at training time)."""
        return self._get(clips, "waveforms", (self.cfg.n_samples,), self._compute_waveform, stats, progress)

    def ensure(self, clips: Sequence[Clip], kind: str = "waveforms", stats: AudioStats | None = None,
               progress: bool = True) -> None:
        """Compute and write the missing ``kind`` entries of ``clips`` without keeping them in memory
        (the online-features path of a large split: the data loader then reads one clip at a time
        with :meth:`one`). An entry is only checked for existence here; :meth:`one` recomputes a
        corrupt one."""
        shape, compute = self._kind(kind)
        missing: dict[Path, Clip] = {}
        for clip in clips:
            path = self.entry_path(clip, kind)
            if path in missing or path.is_file():
                self.hits += path not in missing
                continue
            missing[path] = clip
        bar = tqdm(missing.items(), total=len(missing), disable=not progress or not missing, unit="clip",
                   desc=f"{kind} {self.cfg.key()[:8]}")
        for path, clip in bar:
            arr = np.ascontiguousarray(compute(clip, stats), dtype=np.float32)
            if arr.shape != tuple(shape):
                raise DataError(f"{clip.path}: computed {kind} of shape {arr.shape}, expected {tuple(shape)}",
                                hint="check the frontend settings (clip_seconds, sample_rate)")
            self._write(path, arr)
            self.misses += 1

    def one(self, clip: Clip, kind: str = "waveforms") -> np.ndarray:
        """One clip's ``kind`` entry (read from disk; computed and written when missing or corrupt)."""
        shape, compute = self._kind(kind)
        return self._get([clip], kind, shape, compute, None, False)[0]

    def _kind(self, kind: str):
        if kind == "features":
            return self.cfg.shape, self._compute_features
        if kind == "waveforms":
            return (self.cfg.n_samples,), self._compute_waveform
        raise ValueError(f"kind must be 'features' or 'waveforms', got {kind!r}")

    def entry_path(self, clip: Clip, kind: str = "features") -> Path:
        """Cache file of ``clip`` (kind "features" or "waveforms"); DataError if the clip's file is missing."""
        if kind not in ("features", "waveforms"):
            raise ValueError(f"kind must be 'features' or 'waveforms', got {kind!r}")
        path = Path(clip.path).resolve()
        try:
            st = path.stat()
        except OSError:
            raise DataError(f"{path}: audio file not found",
                            hint="check the data set root and the CSV filename, or restore the file") from None
        ident = json.dumps([CACHE_FORMAT, kind, self.cfg.key(), str(path), st.st_size, st.st_mtime_ns])
        digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:24]
        return self.dir / kind / f"{path.stem[:80]}-{digest}.npy"

    # ---- internals ------------------------------------------------------------
    def _read(self, path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
        if not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.dtype != np.float32 or arr.shape != shape:
                raise ValueError(f"holds {arr.dtype} {arr.shape}, expected float32 {shape}")
            return arr
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is recomputed
            log.warning("feature cache: %s is corrupt (%s); recomputing it", path, exc)
            return None

    def _write(self, path: Path, arr: np.ndarray) -> None:
        try:
            atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write feature cache entry ({exc.strerror or exc})",
                              hint=f"free disk space or choose a writable cache_dir (now {self.dir.parent})") from None

    def _get(self, clips: Sequence[Clip], kind: str, shape: tuple[int, ...],
             compute: Callable[[Clip, AudioStats | None], np.ndarray],
             stats: AudioStats | None, progress: bool) -> np.ndarray:
        out = np.empty((len(clips),) + tuple(shape), dtype=np.float32)
        todo: dict[Path, list[int]] = {}
        for i, clip in enumerate(clips):
            path = self.entry_path(clip, kind)
            if path in todo:
                todo[path].append(i)
                continue
            arr = self._read(path, shape)
            if arr is None:
                todo[path] = [i]
            else:
                out[i] = arr
                self.hits += 1
        if todo:
            bar = tqdm(todo.items(), total=len(todo), disable=not progress, unit="clip",
                       desc=f"{kind} {self.cfg.key()[:8]}")
            for path, idx in bar:
                clip = clips[idx[0]]
                arr = np.ascontiguousarray(compute(clip, stats), dtype=np.float32)
                if arr.shape != tuple(shape):
                    raise DataError(f"{clip.path}: computed {kind} of shape {arr.shape}, expected {tuple(shape)}",
                                    hint="check the frontend settings (clip_seconds, sample_rate)")
                self._write(path, arr)
                out[idx] = arr
                self.misses += 1
        return out
