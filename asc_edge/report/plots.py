"""Report figures (PNG), drawn with matplotlib's Agg canvas and written atomically.

The figures are built on :class:`matplotlib.figure.Figure` with an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never through ``pyplot``:
this needs no display, does not change the process-wide backend of an interactive
user, and leaks no global figure state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from asc_edge.errors import ConfigError
from asc_edge.report.io import write_bytes_atomic

__all__ = ["plot_confusion_matrix", "plot_training_curves", "save_figure_atomic"]


def save_figure_atomic(fig: Figure, path: Path | str, dpi: int = 120) -> None:
    """Render ``fig`` to PNG in memory, then write it to ``path`` atomically (temp file + os.replace)."""
    FigureCanvasAgg(fig)  # attach an Agg canvas (no-op if the figure already has one)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())


def plot_confusion_matrix(cm: Sequence[Sequence[int]], labels: Sequence[str], path: Path | str,
                          title: str = "") -> None:
    """Confusion-matrix heat map: rows = true class, columns = predicted class.

    Colours are row-normalised (fraction of each true class, 0..1, so classes of different
    size are comparable); every cell is annotated with its raw count. Rows without any
    example are drawn as zeros. Written as PNG to ``path`` atomically.
    """
    mat = np.asarray(cm, dtype=np.float64)
    n = len(labels)
    if mat.ndim != 2 or mat.shape != (n, n):
        raise ConfigError(f"plot_confusion_matrix: matrix of shape {mat.shape} does not fit {n} labels",
                          hint="pass the square confusion matrix from classification_metrics() with its 'labels'")
    if n == 0:
        raise ConfigError("plot_confusion_matrix: empty confusion matrix",
                          hint="evaluate at least one class before plotting")
    row_sum = mat.sum(axis=1, keepdims=True)
    norm = np.divide(mat, row_sum, out=np.zeros_like(mat), where=row_sum > 0)

    side = max(4.0, 0.6 * n + 2.5)
    fig = Figure(figsize=(side + 1.0, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of true class")
    fontsize = 9 if n <= 10 else max(5, 9 - (n - 10) // 3)
    for i in range(n):
        for j in range(n):
            count = int(round(mat[i, j]))
            ax.text(j, i, str(count), ha="center", va="center", fontsize=fontsize,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([str(label) for label in labels], rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels([str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure_atomic(fig, path)


def _series(history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, row in enumerate(history):
        value = row.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            y = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(y):
            continue
        epoch = row.get("epoch", i)
        try:
            x = float(epoch)
        except (TypeError, ValueError):
            x = float(i)
        xs.append(x)
        ys.append(y)
    return xs, ys


def _keys(history: Sequence[dict], want) -> list[str]:
    keys: list[str] = []
    for row in history:
        for key in row:
            if key != "epoch" and key not in keys and want(key):
                keys.append(key)
    return keys


def plot_training_curves(history: Sequence[dict], path: Path | str) -> None:
    """Two panels over epochs: losses (left) and accuracies (right); written as PNG atomically.

    ``history`` rows look like ``{"epoch": 0, "train_loss": 2.1, "val_loss": 1.9,
    "val_macro_accuracy": 0.31}``; any key may be missing in any row (that point is skipped),
    a missing ``"epoch"`` falls back to the row index. The loss panel plots every key
    containing ``"loss"``, the accuracy panel every key containing ``"acc"``; non-numeric or
    non-finite values are skipped. A panel without data says so instead of failing.
    """
    history = list(history)
    fig = Figure(figsize=(11.0, 4.2))
    FigureCanvasAgg(fig)
    panels = [
        ("loss", _keys(history, lambda k: "loss" in k.lower())),
        ("accuracy", _keys(history, lambda k: "acc" in k.lower() and "loss" not in k.lower())),
    ]
    for idx, (name, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 2, idx)
        plotted = 0
        for key in keys:
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
                plotted += 1
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {name} data", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    save_figure_atomic(fig, path)
