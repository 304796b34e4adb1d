"""``--logger tensorboard|csv|none`` (issue 17): Lightning's experiment log lands in ``<run>/logs/`` of the
finished run directory (written into the hidden ``.<name>.partial-<pid>`` sibling while training and
renamed with it), with the epoch's train / validation metrics; nothing with ``none``; a bad value is one
error line. Each run: 2 epochs on conftest's 4-clip synthetic data set (a few seconds).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from asc_edge.cli import app

# two epochs, validation after each: two rows of per-epoch metrics (tiny data: no DIR folder)
TINY = ("--epochs", "2", "--batch-size", "4", "--val-every", "1", "--no-progress", "--dir-p", "0")
EPOCH_METRICS = ("train_loss_epoch", "lr", "val_loss", "val_macro_accuracy")
IN_HISTORY = {"train_loss_epoch": "train_loss"}  # history.json's name, where it differs

runner = CliRunner()


def train(root: Path, tmp_path: Path, *flags, name: str = "run"):
    return runner.invoke(app, [str(a) for a in ("train", "--data", root, *TINY, "--cache-dir", tmp_path / "cache",
                                                 "--out", tmp_path / "runs", "--name", name, *flags)])


def assert_ok(result):
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output


def only_the_run(out: Path, name: str = "run") -> Path:
    """``out`` holds the finished run and nothing else (no ``.run.partial-*`` with logs left behind)."""
    assert sorted(p.name for p in out.iterdir()) == [name]
    return out / name


def history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())


def test_csv_logger_writes_metrics_csv_in_the_run_directory(tiny_dataset, tmp_path):
    assert_ok(train(tiny_dataset(), tmp_path, "--logger", "csv"))
    run = only_the_run(tmp_path / "runs")
    rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    assert not list(run.rglob("events.out.tfevents.*"))
    assert json.loads((run / "report.json").read_text())["config"]["logger"] == "csv"
    # per epoch: each metric in exactly one row (Lightning writes one row per logging call)
    by_epoch: dict[int, dict] = {}
    for row in rows:
        for key, value in row.items():
            if value != "" and key in EPOCH_METRICS:
                assert key not in by_epoch.setdefault(int(row["epoch"]), {}), (key, rows)
                by_epoch[int(row["epoch"])][key] = float(value)
    assert sorted(by_epoch) == [0, 1], rows
    for h in history(run):  # the same numbers as history.json (what the curves are drawn from)
        logged = by_epoch[h["epoch"]]
        assert set(logged) == set(EPOCH_METRICS), logged
        for key in EPOCH_METRICS:
            assert logged[key] == pytest.approx(h[IN_HISTORY.get(key, key)], rel=1e-6, abs=1e-7), key
    assert (run / "logs" / "hparams.yaml").is_file()


def test_tensorboard_logger_writes_event_file_with_scalars(tiny_dataset, tmp_path, monkeypatch):
    import socket

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    attempts = []  # local files only: no connection is even tried while training and logging

    def no_network(self, address, *args):
        attempts.append(address)
        raise OSError("network use in a test that must not need it")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    assert_ok(train(tiny_dataset(), tmp_path, "--logger", "tensorboard"))
    monkeypatch.undo()
    assert attempts == []
    run = only_the_run(tmp_path / "runs")
    events = list((run / "logs").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert not (run / "logs" / "metrics.csv").exists()
    acc = EventAccumulator(str(run / "logs"))
    acc.Reload()
    assert set(EPOCH_METRICS) <= set(acc.Tags()["scalars"]), acc.Tags()["scalars"]
    val = [e.value for e in acc.Scalars("val_macro_accuracy")]
    assert val == pytest.approx([h["val_macro_accuracy"] for h in history(run)])
    assert [e.value for e in acc.Scalars("train_loss_epoch")] == pytest.approx([h["train_loss"] for h in history(run)])


def test_tensorboard_is_the_default(tiny_dataset, tmp_path):
    assert_ok(train(tiny_dataset(), tmp_path))
    run = only_the_run(tmp_path / "runs")
    assert list((run / "logs").glob("events.out.tfevents.*"))
    assert json.loads((run / "report.json").read_text())["config"]["logger"] == "tensorboard"


def test_no_logger_writes_no_logs(tiny_dataset, tmp_path):
    assert_ok(train(tiny_dataset(), tmp_path, "--logger", "none"))
    run = only_the_run(tmp_path / "runs")
    assert not (run / "logs").exists()
    assert not list(run.rglob("events.out.tfevents.*")) and not list(run.rglob("metrics.csv"))
    assert (run / "model.ckpt").is_file() and len(history(run)) == 2  # the run itself is complete


@pytest.mark.parametrize("command", [
    ("train", "--data", "{data}", "--out", "{tmp}/runs"),
    ("train-teachers", "--ensemble", "sntl", "--data", "{data}", "--split", "100", "--out", "{tmp}/runs"),
    ("prune", "{tmp}/no-run", "--filters", "4,4", "--out", "{tmp}/runs"),
], ids=["train", "train-teachers", "prune"])
def test_bad_logger_is_one_error_line(command, tiny_dataset, tmp_path):
    root = tiny_dataset()
    args = [a.format(data=root, tmp=tmp_path) for a in command]
    r = runner.invoke(app, [*args, "--logger", "wandb"])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2, f"{r.output}\n{r.exception!r}"
    assert len(lines) == 1 and lines[0].startswith("error: unknown --logger 'wandb'"), r.output
    assert "(fix: use one of tensorboard, csv, none)" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_crash_during_training_leaves_no_logs(tiny_dataset, tmp_path, monkeypatch):
    """The logs are written while training: a failure removes them with the partial run directory."""
    from asc_edge.train.module import ASCModule

    out = tmp_path / "runs"
    seen: list[str] = []

    def boom(self):
        seen.extend(str(p.relative_to(out)) for p in out.glob(".run.partial-*/logs/events.out.tfevents.*"))
        raise RuntimeError("simulated crash at the end of an epoch")

    monkeypatch.setattr(ASCModule, "on_train_epoch_end", boom)
    r = train(tiny_dataset(), tmp_path, "--logger", "tensorboard")
    assert isinstance(r.exception, RuntimeError), r.output
    assert seen, "the event file is written while training, in the hidden partial directory"
    assert list(out.iterdir()) == []


def test_reuse_ignores_the_logger(tmp_path):
    """``train-teachers --reuse`` keeps a member trained with another --logger (logs are not results)."""
    from asc_edge.train.config import TrainConfig
    from asc_edge.train.run import reusable_run

    run = tmp_path / "member"
    run.mkdir()
    torch.save({}, run / "model.ckpt")
    (run / "metrics.json").write_text("{}")
    (run / "report.json").write_text(json.dumps({"config": TrainConfig(data="d", logger="csv").to_dict()}))
    assert reusable_run(TrainConfig(data="d", logger="tensorboard"), run)
    assert reusable_run(TrainConfig(data="d", logger="none"), run)
    assert not reusable_run(TrainConfig(data="d", logger="csv", epochs=3), run)
