"""Two-process DDP smoke run on CPU (gloo) through the real command line.

``python -m asc_edge train --devices 2 --strategy ddp --accelerator cpu`` makes Lightning re-launch
the same command as rank 1; only rank 0 may write the run directory, and the data must be sharded
over both ranks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> Path:
    """Same --cache-dir as test_train_cli.py: features of the real pack are computed once per session."""
    d = tmp_path_factory.getbasetemp() / "asc-edge-cache"
    d.mkdir(exist_ok=True)
    return d


def _small_test_split(shared_data: Path, dest: Path, per_class: int = 1) -> Path:
    """Real split5.csv plus a 1-clip-per-class test.csv (keeps the validation / final evaluation short)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(shared_data / "split_setup" / "split5.csv", dest / "split5.csv")
    lines = (shared_data / "split_setup" / "test.csv").read_text().splitlines()
    kept, seen = [lines[0]], {}
    for ln in lines[1:]:
        label = ln.split("\t")[1]
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            kept.append(ln)
    (dest / "test.csv").write_text("\n".join(kept) + "\n")
    return dest


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(shared_data, feature_cache, tmp_path):
    from asc_edge.features import get_frontend
    from asc_edge.features import load_split_data

    splits = _small_test_split(shared_data, tmp_path / "splits")
    # Warm the feature cache here, so the two ranks do not both compute the same features.
    for split in ("5", "test"):
        load_split_data(shared_data, split, get_frontend("dcase2024"), splits_dir=splits,
                        cache_dir=feature_cache / "features", progress=False)
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "asc_edge", "train", "--data", str(shared_data), "--splits", str(splits),
           "--split", "5", "--epochs", "1", "--batch-size", "16", "--val-every", "1", "--devices", "2",
           "--strategy", "ddp", "--accelerator", "cpu", "--no-progress", "--dir-p", "0",
           "--cache-dir", str(feature_cache), "--out", str(out), "--name", "ddp"]
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE",
                                                            "LOCAL_RANK", "NODE_RANK", "RANK")}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # own process group: rank 1 is killed with it on timeout
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"DDP run did not finish within {TIMEOUT_S} s\n{stdout}\n{stderr[-3000:]}")
    log = stdout + stderr
    assert proc.returncode == 0, log
    assert "Traceback" not in log, log

    # exactly one run directory, written once (by rank 0), nothing half-written next to it
    assert sorted(p.name for p in out.iterdir()) == ["ddp"], log
    run = out / "ddp"
    for f in ("model.ckpt", "metrics.json", "report.json", "history.json"):
        assert (run / f).is_file(), f
    assert stdout.count("run: ") == 1, stdout  # rank 1 prints nothing

    m = json.loads((run / "metrics.json").read_text())
    assert m["n_clips"] == 10 and 0.0 <= m["macro_accuracy"] <= 1.0
    rep = json.loads((run / "report.json").read_text())
    assert rep["config"]["devices"] == 2 and rep["config"]["strategy"] == "ddp"
    assert rep["n_train_clips"] == 64
    hist = json.loads((run / "history.json").read_text())
    assert len(hist) == 1 and "val_macro_accuracy" in hist[0]
    # validation logits were all-gathered from both ranks: the epoch's test loss is the loss on the
    # whole test split, as rank 0 computes it alone afterwards (same weights; float32 vs float64)
    assert hist[0]["val_loss"] == pytest.approx(m["log_loss"], abs=1e-4)

    # Two processes really shared the work: 64 clips / 2 ranks / batch 16 = 2 optimiser steps
    # (one process would take 4).
    ck = torch.load(run / "model.ckpt", map_location="cpu", weights_only=False)
    assert ck["global_step"] == 2, ck["global_step"]
    # Lightning's own startup lines, when its INFO log is shown.
    if "distributed_backend=" in log:
        assert "distributed_backend=gloo" in log
        assert "Starting with 2 processes" in log
