"""Offline knowledge distillation: teacher-ensemble logits computed once and cached on disk.

Teachers (large models, e.g. the CP-JKU PaSST / CP-ResNet ensembles) are run once over the
training clips; their logit-averaged ensemble is stored and the student reads it every
epoch. A cache entry is addressed by a SHA-256 over a canonical JSON of ``key_parts`` —
typically the teacher checkpoint *file hashes*, the teacher front-end settings and a digest
of the ordered clip list — so changing any of them gives a new entry instead of stale logits:

    cache = TeacherLogitCache(Path("cache/teacher_logits"))
    key = {"teachers": [file_sha256(p) for p in ckpts], "frontend": "mel256-hop500",
           "clips": clip_list_digest(files)}
    logits = cache.get_or_compute(key, lambda: run_teachers(files))   # (N, C) float32

On disk: ``<key>.npy`` (the array) and ``<key>.json`` (key parts, shape, dtype and a SHA-256
of the array bytes). Both are written atomically (temp file + ``os.replace``), the JSON last:
an entry only counts when its JSON exists and the checksum matches, so a crash mid-write or a
corrupted file just triggers a recomputation.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from asc_edge.errors import CheckpointError, ConfigError
from asc_edge.report.io import atomic_write, write_json_atomic

__all__ = ["ensemble_logits", "TeacherLogitCache", "file_sha256", "clip_list_digest", "cache_key"]

_FORMAT_VERSION = 1


def ensemble_logits(logit_list: Sequence[Tensor]) -> Tensor:
    """Logit-averaged teacher ensemble: the element-wise mean of M teachers' (N, C) logits.

    Averaging logits (rather than probabilities) is what the CP-JKU DCASE teacher ensembles
    use. Returns an (N, C) tensor (float32 unless the inputs are float64).
    """
    if len(logit_list) == 0:
        raise ConfigError("ensemble_logits: no teacher logits given", hint="pass at least one teacher's (N, C) logits")
    tensors = [torch.as_tensor(z) for z in logit_list]
    shape = tensors[0].shape
    for i, z in enumerate(tensors):
        if z.ndim != 2 or z.shape != shape:
            raise ConfigError(f"ensemble_logits: teacher {i} logits have shape {tuple(z.shape)}, "
                              f"teacher 0 has {tuple(shape)}",
                              hint="run every teacher on the same clips in the same order with the same classes")
    dtype = torch.float64 if all(z.dtype == torch.float64 for z in tensors) else torch.float32
    device = tensors[0].device
    return torch.stack([z.to(device=device, dtype=dtype) for z in tensors]).mean(dim=0)


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a teacher checkpoint (for cache keys); CheckpointError if unreadable."""
    from asc_edge.report.io import file_sha256 as _digest

    try:
        return _digest(path, chunk_size)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read teacher checkpoint ({exc})",
                              hint="check the checkpoint path in the teacher list") from exc


def clip_list_digest(clips: Sequence[str]) -> str:
    """SHA-256 of an *ordered* clip list (row i of the cached logits belongs to clips[i])."""
    h = hashlib.sha256()
    for clip in clips:
        h.update(str(clip).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _canonical(key_parts: dict) -> str:
    if not isinstance(key_parts, dict) or not key_parts:
        raise ConfigError("teacher cache key_parts must be a non-empty dict",
                          hint="describe the entry, e.g. {'teachers': [sha256...], 'frontend': ..., 'clips': digest}")
    try:
        return json.dumps(key_parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"teacher cache key_parts are not plain JSON ({exc})",
                          hint="use only str/int/float/bool/None/lists/dicts (convert Paths to str, hash files)") from exc


def cache_key(key_parts: dict) -> str:
    """The cache key: SHA-256 hex of the canonical (sorted-keys, compact) JSON of ``key_parts``."""
    return hashlib.sha256(_canonical(key_parts).encode("utf-8")).hexdigest()


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class TeacherLogitCache:
    """Directory of cached teacher logits, one ``<sha256>.npy`` + ``<sha256>.json`` pair per entry."""

    def __init__(self, cache_dir: Path | str):
        self.cache_dir = Path(cache_dir)

    def paths(self, key_parts: dict) -> tuple[Path, Path]:
        """(npy path, json path) of the entry for ``key_parts``."""
        key = cache_key(key_parts)
        return self.cache_dir / f"{key}.npy", self.cache_dir / f"{key}.json"

    def load(self, key_parts: dict) -> np.ndarray | None:
        """The cached (N, C) float32 logits, or ``None`` if missing, incomplete or corrupted."""
        npy_path, json_path = self.paths(key_parts)
        if not (npy_path.is_file() and json_path.is_file()):
            return None
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
            arr = np.load(npy_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if (meta.get("format") != _FORMAT_VERSION or meta.get("key") != cache_key(key_parts)
                or arr.dtype != np.float32 or arr.ndim != 2 or list(arr.shape) != meta.get("shape")
                or hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() != meta.get("sha256")):
            return None
        return arr

    def store(self, key_parts: dict, logits: Any) -> np.ndarray:
        """Validate ``logits`` ((N, C), finite), write them as float32 and return the stored array."""
        arr = _to_numpy(logits)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ConfigError(f"teacher logits must be a non-empty (N, C) array, got shape {arr.shape}",
                              hint="the compute function must return one row of class logits per clip")
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
            raise CheckpointError("teacher logits contain NaN/inf or are not numeric",
                                  hint="check the teacher checkpoints and the teacher front-end settings")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        npy_path, json_path = self.paths(key_parts)
        meta = {
            "format": _FORMAT_VERSION,
            "key": cache_key(key_parts),
            "key_parts": key_parts,
            "shape": list(arr.shape),
            "dtype": "float32",
            "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        }
        atomic_write(npy_path, lambda fh: np.save(fh, arr, allow_pickle=False))
        write_json_atomic(json_path, meta)  # written last: the entry's commit marker
        return arr

    def get_or_compute(self, key_parts: dict, compute: Callable[[], Any]) -> np.ndarray:
        """Cached logits for ``key_parts``; on a miss call ``compute()`` once, store and return its result.

        ``compute`` returns (N, C) logits (numpy array or tensor); the result is always an
        (N, C) float32 numpy array.
        """
        cached = self.load(key_parts)
        if cached is not None:
            return cached
        return self.store(key_parts, compute())

    def __repr__(self) -> str:
        return f"TeacherLogitCache({os.fspath(self.cache_dir)!r})"
