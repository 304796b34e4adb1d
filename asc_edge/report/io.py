"""Atomic file writes and small text helpers for reports.

Every writer puts the content into a temporary file *in the destination directory*
and then ``os.replace``-s it over the target, so a reader (or a crashed run) never
sees a half-written file: the path holds either the old content or the new one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from asc_edge.errors import ConfigError

__all__ = ["atomic_write", "staged_files", "write_json_atomic", "write_text_atomic", "write_bytes_atomic",
           "json_default", "markdown_table", "file_sha256"]


def file_sha256(path: Path | str, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes, read in ``chunk_size``-byte blocks (OSError propagates)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def staged_files(out_dir: Path | str):
    """Context manager for a report folder written as a whole: yields a hidden sibling folder
    ``.<name>.tmp<pid>`` to write into; on success each file in it is moved into ``out_dir`` with
    ``os.replace`` (other files already in ``out_dir`` are kept); on any exception — an error, Ctrl-C,
    SIGTERM — the sibling is removed and ``out_dir`` is left as it was."""
    import shutil

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Create ``path`` atomically: ``write(fh)`` fills a binary temp file next to it.

    The temp file lives in ``path.parent`` (so ``os.replace`` never crosses a file
    system), is flushed and fsync-ed, gets mode 0644 and then replaces ``path``.
    Parent directories are created. On any error the temp file is removed and the
    old ``path`` (if any) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(data))


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the text is written as given."""
    write_bytes_atomic(path, text.encode("utf-8"))


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars/arrays, torch tensors, paths, sets, dataclasses."""
    import dataclasses

    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalar/array, torch tensor
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as JSON (indent=2, keys in insertion order, trailing newline) atomically.

    numpy/torch values, paths and dataclasses are converted (see :func:`json_default`).
    Raises :class:`ConfigError` for objects JSON cannot represent; the target is not touched.
    """
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot write as JSON ({exc})",
                          hint="pass only dicts/lists/str/numbers/bool/None (convert other objects first)") from exc
    write_text_atomic(path, text + "\n")


def _format_cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0
                                      and "float" in str(value.dtype)):
        v = float(value)
        text = str(v) if (math.isnan(v) or math.isinf(v)) else format(v, floatfmt)
    else:
        text = str(value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and (
        "float" in str(value.dtype) or "int" in str(value.dtype))


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    """Render ``rows`` as a GitHub-flavoured Markdown table (ends with a newline).

    ``columns``: the columns in order; default = every key, in order of first appearance.
    Floats use ``format(v, floatfmt)`` (NaN/inf printed as such), ``None``/missing keys give an
    empty cell, ``|`` and newlines inside cells are escaped. Columns whose non-empty cells are
    all numbers are right-aligned. No columns at all gives ``""``.
    """
    try:
        format(1.0, floatfmt)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"markdown_table: bad floatfmt {floatfmt!r} ({exc})",
                          hint="use a format spec such as '.3f' or '.2%'") from exc
    if columns is None:
        cols: list[str] = []
        for row in rows:
            for key in row:
                if key not in cols:
                    cols.append(key)
    else:
        cols = list(columns)
    if not cols:
        return ""
    header = "| " + " | ".join(_format_cell(c, floatfmt) for c in cols) + " |"
    aligns = []
    for c in cols:
        vals = [row.get(c) for row in rows if row.get(c) is not None]
        aligns.append("---:" if vals and all(_is_number(v) for v in vals) else "---")
    sep = "|" + "|".join(aligns) + "|"
    lines = [header, sep]
    for row in rows:
        lines.append("| " + " | ".join(_format_cell(row.get(c), floatfmt) for c in cols) + " |")
    return "\n".join(lines) + "\n"
