"""Metrics on a hand case; report writers (atomic JSON/text, Markdown, PNG figures)."""

from __future__ import annotations

import json
import math
import os

import matplotlib.image
import numpy as np
import pytest

from asc_edge.errors import ConfigError, DataError
from asc_edge.metrics import classification_metrics
from asc_edge.report import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.report.plots import plot_confusion_matrix, plot_training_curves

LABELS = ["airport", "bus", "park", "tram"]  # 'tram' has no clips
# 4 x airport (all correct), 1 x bus (predicted airport), 1 x park (correct)
LOGITS = np.array([[2, 0, 0, 0]] * 4 + [[2, 0, 0, 0], [0, 0, 2, 0]], dtype=np.float32)
TARGETS = np.array([0, 0, 0, 0, 1, 2])
DEVICES = ["a", "a", "b", "s1", "b", "s1"]
# hand values: softmax of [2,0,0,0] gives the arg-max class e^2/(e^2+3)
NLL_RIGHT = 0.3407529539131309   # ln(e^2 + 3) - 2
NLL_WRONG = 2.340752953913131    # ln(e^2 + 3)


def test_hand_numbers():
    assert math.isclose(NLL_RIGHT, math.log(math.e**2 + 3) - 2, rel_tol=1e-12)
    assert math.isclose(NLL_WRONG, math.log(math.e**2 + 3), rel_tol=1e-12)


def test_classification_metrics_hand_case():
    m = classification_metrics(LOGITS, TARGETS, LABELS, DEVICES)
    assert m["n_clips"] == 6
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["macro_accuracy"] == pytest.approx(2 / 3)  # (1 + 0 + 1) / 3; empty 'tram' excluded
    assert m["per_class_accuracy"] == {"airport": 1.0, "bus": 0.0, "park": 1.0, "tram": None}
    assert m["per_class_count"] == {"airport": 4, "bus": 1, "park": 1, "tram": 0}
    assert m["per_device_accuracy"] == {"a": 1.0, "b": 0.5, "s1": 1.0}
    assert m["per_device_count"] == {"a": 2, "b": 2, "s1": 2}
    assert m["confusion_matrix"] == [[4, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert m["labels"] == LABELS
    assert m["log_loss"] == pytest.approx((5 * NLL_RIGHT + NLL_WRONG) / 6, rel=1e-6)  # 0.67408628...
    assert m["macro_log_loss"] == pytest.approx((2 * NLL_RIGHT + NLL_WRONG) / 3, rel=1e-6)
    json.dumps(m)  # plain Python types only


def test_log_loss_is_stable_for_huge_logits():
    m = classification_metrics(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]), ["x", "y"], ["a", "a"])
    assert m["log_loss"] == pytest.approx(500.0)
    assert m["accuracy"] == 0.5


@pytest.mark.parametrize("args", [
    (LOGITS[:, :3], TARGETS, LABELS, DEVICES),          # labels vs columns
    (LOGITS, TARGETS[:5], LABELS, DEVICES),              # targets length
    (LOGITS, TARGETS, LABELS, DEVICES[:5]),              # devices length
    (LOGITS, TARGETS + 4, LABELS, DEVICES),              # out of range
    (LOGITS[:0], TARGETS[:0], LABELS, []),               # empty
    (np.full_like(LOGITS, np.nan), TARGETS, LABELS, DEVICES),
])
def test_metrics_input_errors(args):
    with pytest.raises(DataError) as exc:
        classification_metrics(*args)
    assert exc.value.hint


# ---------------------------------------------------------------- io

def test_write_json_atomic(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    obj = {"z": 1, "a": [1.5, None], "n": np.float32(0.25), "arr": np.arange(3)}
    write_json_atomic(path, obj)
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "z": 1,')  # indent 2, insertion order kept
    assert json.loads(text) == {"z": 1, "a": [1.5, None], "n": 0.25, "arr": [0, 1, 2]}
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert os.listdir(path.parent) == ["metrics.json"]  # no temp files left
    assert (path.stat().st_mode & 0o777) == 0o644


def test_write_json_atomic_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"old": True})
    with pytest.raises(ConfigError):
        write_json_atomic(path, {"bad": object()})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_json_atomic(path, {"new": True})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["m.json"]


def test_write_text_atomic(tmp_path):
    path = tmp_path / "r.md"
    write_text_atomic(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"


def test_markdown_table():
    rows = [{"model": "cp-mini", "acc": 0.51234, "params": 61148},
            {"model": "a|b", "acc": None, "params": 1000, "note": "x"}]
    out = markdown_table(rows)
    assert out == (
        "| model | acc | params | note |\n"
        "|---|---:|---:|---|\n"
        "| cp-mini | 0.512 | 61148 |  |\n"
        "| a\\|b |  | 1000 | x |\n"
    )
    assert markdown_table(rows, columns=["acc"], floatfmt=".1%") == "| acc |\n|---:|\n| 51.2% |\n|  |\n"
    assert markdown_table([]) == ""
    with pytest.raises(ConfigError):
        markdown_table(rows, floatfmt="nope")


# ---------------------------------------------------------------- plots

def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_confusion_matrix(tmp_path):
    m = classification_metrics(LOGITS, TARGETS, LABELS, DEVICES)
    path = tmp_path / "figs" / "cm.png"
    plot_confusion_matrix(m["confusion_matrix"], m["labels"], path, title="dev-test")
    _assert_png(path)
    with pytest.raises(ConfigError):
        plot_confusion_matrix([[1, 2]], ["a"], tmp_path / "bad.png")


def test_plot_training_curves(tmp_path):
    history = [
        {"epoch": 0, "train_loss": 2.2, "val_loss": 2.0, "val_macro_accuracy": 0.2},
        {"epoch": 1, "train_loss": 1.8},                                   # val keys missing
        {"epoch": 2, "train_loss": 1.5, "val_loss": 1.6, "val_macro_accuracy": 0.4, "val_accuracy": None},
    ]
    path = tmp_path / "curves.png"
    plot_training_curves(history, path)
    _assert_png(path)
    empty = tmp_path / "empty.png"
    plot_training_curves([], empty)
    _assert_png(empty)
