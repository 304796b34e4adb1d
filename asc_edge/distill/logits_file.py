"""Teacher logits from a file: bring your own (ensemble) teacher logits, computed elsewhere.

DCASE baseline authors publish their teachers' ensemble logits, and a researcher with a GPU runs
PaSST / EfficientAT / EAT once over the training clips; this module reads such a file so the
student can distil from it without running any teacher here.

File format (one file, the format :func:`save_teacher_logits` writes):

* **NumPy ``.npz``** (``np.savez`` / ``np.savez_compressed``, read with ``allow_pickle=False``)
  with three arrays:

  ``filenames``  (N,) str      — the meta.csv ``filename`` values, e.g. ``audio/airport-lisbon-1000-40000-0-a.wav``
  ``logits``     (N, C) float  — one row of class logits per clip (stored and returned as float32)
  ``labels``     (C,) str      — the class of each logit column, e.g. ``airport``, ``bus``, ...

  Store strings as NumPy string arrays (``np.asarray(names, dtype=str)``), not object arrays.
  Other keys in the archive are ignored (room for provenance such as the teacher names).
* **PyTorch ``.pt``** (``torch.save``) holding a dict with the same three keys: ``filenames`` and
  ``labels`` as lists of str, ``logits`` as a tensor (or nested lists). It is read with
  ``torch.load(weights_only=True)``, so no arbitrary pickled objects (numpy arrays included).

The format is recognised from the content (a ``torch.save`` zip holds a ``data.pkl``), the legacy
non-zip ``torch.save`` format from a ``.pt`` / ``.pth`` suffix.

    save_teacher_logits("teacher_logits.npz", filenames, logits, labels)
    z = load_teacher_logits("teacher_logits.npz", train_files, dataset_labels)   # (len(train_files), C)

:func:`load_teacher_logits` returns the rows in the order of the requested clips and the columns
in the requested class order, so the file may list clips and classes in any order and hold more
clips than requested (e.g. train + test). Everything a file can get wrong raises
:class:`~asc_edge.errors.DataError` naming the file and the fix.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asc_edge.errors import DataError
from asc_edge.report.io import atomic_write

__all__ = ["save_teacher_logits", "load_teacher_logits", "KEYS"]

KEYS = ("filenames", "logits", "labels")
_PT_SUFFIXES = (".pt", ".pth")
_SHOW = 3  # how many offending names an error message lists
_FORMAT_HINT = ("write it with asc_edge.distill.logits_file.save_teacher_logits, or as an .npz / .pt "
                "dict with keys 'filenames' (N,) str, 'logits' (N, C) float, 'labels' (C,) str")


def _first(names: Sequence[str], n: int = _SHOW) -> str:
    shown = ", ".join(repr(s) for s in names[:n])
    return shown + (", ..." if len(names) > n else "")


def _duplicates(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dups: list[str] = []
    for s in names:
        if s in seen and s not in dups:
            dups.append(s)
        seen.add(s)
    return dups


def _str_list(value: Any, key: str, where: str) -> list[str]:
    """A 1-D sequence of str (numpy U/S/object array, list, tuple) as a list of str."""
    bad = DataError(f"{where}: '{key}' must be a 1-D array of strings, got {_describe(value)}",
                    hint=f"store '{key}' as np.asarray(values, dtype=str) (.npz) or a list of str (.pt)")
    if isinstance(value, (list, tuple)):
        try:
            value = np.asarray(value, dtype=object) if value else np.asarray([], dtype=str)
        except ValueError:
            raise bad from None
    if not isinstance(value, np.ndarray) or value.ndim != 1:
        raise bad
    if value.dtype.kind == "U":
        return value.tolist()
    if value.dtype.kind == "S":
        try:
            return [v.decode("utf-8") for v in value.tolist()]
        except UnicodeDecodeError:
            raise bad from None
    if value.dtype.kind == "O" and all(isinstance(v, str) for v in value.tolist()):
        return value.tolist()
    if value.size == 0:
        return []
    raise bad


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(value).__name__


def _float_matrix(value: Any, where: str) -> np.ndarray:
    """``logits`` (tensor, array or nested lists) as a float32 numpy array (shape not checked)."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            value = (value.float() if value.is_floating_point() else value).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency of the package
        pass
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: 'logits' is not a numeric array ({exc})",
                        hint="store 'logits' as one (N, C) float array") from None
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{where}: 'logits' must be numeric, got {_describe(arr)}",
                        hint="store 'logits' as one (N, C) float32 array")
    with np.errstate(over="ignore"):  # float64 beyond the float32 range becomes inf: caught below
        return np.ascontiguousarray(arr, dtype=np.float32)


def _validate(filenames: list[str], logits: np.ndarray, labels: list[str], where: str, fix: str) -> None:
    """Shape, uniqueness and finiteness of one (filenames, logits, labels) triple."""
    if logits.ndim != 2 or logits.shape != (len(filenames), len(labels)):
        raise DataError(f"{where}: 'logits' has shape {tuple(logits.shape)} but there are {len(filenames)} "
                        f"filenames and {len(labels)} labels (expected ({len(filenames)}, {len(labels)}))",
                        hint=f"{fix}: one row per filename, one column per label")
    if not labels:
        raise DataError(f"{where}: no class labels", hint=f"{fix} with one label per logit column")
    dups = _duplicates(filenames)
    if dups:
        raise DataError(f"{where}: {len(dups)} filename(s) appear more than once, e.g. {_first(dups)}",
                        hint=f"{fix} with one row per clip")
    dups = _duplicates(labels)
    if dups:
        raise DataError(f"{where}: label(s) appear more than once: {_first(dups, len(dups))}",
                        hint=f"{fix} with one column per class")
    finite = np.isfinite(logits)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(f"{where}: {len(bad_rows)} clip(s) have NaN/inf logits, e.g. "
                        f"{_first([filenames[i] for i in bad_rows])}",
                        hint=f"{fix}: check the teacher checkpoints and their front-end settings")


def save_teacher_logits(path: Path | str, filenames: Sequence[str], logits: Any, labels: Sequence[str]) -> Path:
    """Write teacher logits to ``path`` atomically (temp file + ``os.replace``); returns the path.

    ``filenames``: the N meta.csv ``filename`` values; ``logits``: (N, C) array or tensor;
    ``labels``: the C class names in column order. A ``.pt`` / ``.pth`` path is written with
    ``torch.save`` (a dict of two lists of str and a float32 tensor), anything else as a compressed
    ``.npz`` (the file is written under exactly ``path``; numpy adds no suffix). The data are
    checked first (DataError, nothing written): shape (N, C), unique filenames and labels, finite.
    """
    path = Path(path)
    where = f"{path} (being written)"
    names = _str_list(np.asarray([os.fspath(f) if isinstance(f, os.PathLike) else f for f in filenames], dtype=str),
                      "filenames", where)
    classes = _str_list(np.asarray(list(labels), dtype=str), "labels", where)
    arr = _float_matrix(logits, where)
    _validate(names, arr, classes, where, "pass the logits")
    if path.suffix.lower() in _PT_SUFFIXES:
        import torch

        payload = {"filenames": names, "logits": torch.from_numpy(arr), "labels": classes}
        atomic_write(path, lambda fh: torch.save(payload, fh))
    else:
        atomic_write(path, lambda fh: np.savez_compressed(
            fh, filenames=np.asarray(names, dtype=str), logits=arr, labels=np.asarray(classes, dtype=str)))
    return path


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = set(archive.files)
            data = {k: archive[k] for k in KEYS if k in present}
    except ValueError as exc:  # object arrays (pickled) or a malformed member
        raise DataError(f"{path}: cannot read the .npz arrays ({exc})",
                        hint="store strings as np.asarray(values, dtype=str), not object arrays; " + _FORMAT_HINT
                        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})", hint=_FORMAT_HINT) from None
    not_npy = [k for k, v in data.items() if not isinstance(v, np.ndarray)]
    if not_npy:  # np.load hands back the raw bytes of a member that is not a .npy array
        raise DataError(f"{path}: cannot read the .npz arrays ({', '.join(map(repr, not_npy))} not .npy data)",
                        hint=_FORMAT_HINT)
    return data | {"_keys": sorted(present)}


def _read_pt(path: Path) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (UnpicklingError, RuntimeError, ...)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable .pt file for torch.load(weights_only=True) ({msg})",
                        hint="store 'filenames'/'labels' as lists of str and 'logits' as a tensor "
                             "(no numpy arrays or other objects), or use .npz; " + _FORMAT_HINT) from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: the .pt file holds a {type(obj).__name__}, not a dict", hint=_FORMAT_HINT)
    return {k: obj[k] for k in KEYS if k in obj} | {"_keys": sorted(map(str, obj))}


def _read(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path}: teacher logits file not found",
                        hint="check the path, or compute the teacher logits and save them with save_teacher_logits")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file", hint="point at the .npz (or .pt) teacher logits file")
    try:
        is_zip = zipfile.is_zipfile(path)
        members: list[str] = []
        if is_zip:
            with zipfile.ZipFile(path) as zf:
                members = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read the teacher logits file ({exc})",
                        hint="check the file permissions, or re-export the logits") from None
    if any(m == "data.pkl" or m.endswith("/data.pkl") for m in members) or (
            not is_zip and path.suffix.lower() in _PT_SUFFIXES):
        return _read_pt(path)
    if not is_zip:
        raise DataError(f"{path}: not an .npz or .pt file", hint=_FORMAT_HINT)
    return _read_npz(path)


def load_teacher_logits(path: Path | str, filenames: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Teacher logits for ``filenames`` (meta.csv ``filename`` values), columns in ``labels`` order.

    Returns a float32 array of shape (len(filenames), len(labels)): row i belongs to
    ``filenames[i]``, column j to ``labels[j]``. The file may hold more clips than requested and
    its classes in any order, but the same set of classes. Raises DataError (naming the file and
    the fix) when the file is missing, unreadable or neither .npz nor .pt, lacks a key, has
    inconsistent shapes, duplicate filenames or labels, NaN/inf logits (anywhere in the file),
    another set of labels (the message names the missing and extra ones), or lacks some requested
    clips (the message gives how many and the first few).
    """
    path = Path(os.fspath(path))
    data = _read(path)
    missing_keys = [k for k in KEYS if k not in data]
    if missing_keys:
        raise DataError(f"{path}: missing key(s) {', '.join(map(repr, missing_keys))} "
                        f"(found: {', '.join(map(repr, data['_keys'])) or 'none'})", hint=_FORMAT_HINT)
    fix = "re-export the teacher logits"
    file_names = _str_list(data["filenames"], "filenames", str(path))
    file_labels = _str_list(data["labels"], "labels", str(path))
    logits = _float_matrix(data["logits"], str(path))
    _validate(file_names, logits, file_labels, str(path), fix)

    want_labels = [str(s) for s in labels]
    dups = _duplicates(want_labels)
    if dups:
        raise DataError(f"{path}: the requested labels repeat {_first(dups, len(dups))}",
                        hint="request each class once, in the order of the student's outputs")
    if set(want_labels) != set(file_labels):
        missing = [s for s in want_labels if s not in set(file_labels)]
        extra = [s for s in file_labels if s not in set(want_labels)]
        parts = ([f"missing {missing}"] if missing else []) + ([f"extra {extra}"] if extra else [])
        raise DataError(f"{path}: the file's class labels differ from the data set's: {'; '.join(parts)}",
                        hint="compute the teacher logits for the data set's classes (same label names), "
                             "or train on the classes the file has")
    col_of = {s: j for j, s in enumerate(file_labels)}
    cols = np.asarray([col_of[s] for s in want_labels], dtype=np.intp)

    want = [str(f) for f in filenames]
    row_of = {s: i for i, s in enumerate(file_names)}
    absent = [f for f in want if f not in row_of]
    if absent:
        hint = "compute teacher logits for every requested clip (keyed by the meta.csv 'filename' values)"
        base_of = {}
        for s in file_names:
            base_of.setdefault(s.replace("\\", "/").rsplit("/", 1)[-1], s)
        near = next((base_of[b] for b in (f.replace("\\", "/").rsplit("/", 1)[-1] for f in absent) if b in base_of),
                    None)
        if near is not None:
            hint = (f"the file names clips differently (e.g. {near!r}): key the rows by the meta.csv "
                    f"'filename' values, e.g. {absent[0]!r}")
        raise DataError(f"{path}: {len(absent)} of {len(want)} requested clips have no teacher logits, "
                        f"e.g. {_first(absent)}", hint=hint)
    rows = np.asarray([row_of[f] for f in want], dtype=np.intp)
    return np.ascontiguousarray(logits[np.ix_(rows, cols)], dtype=np.float32)
