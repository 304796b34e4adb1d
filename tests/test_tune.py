"""`asc-edge tune` (issue 18): the space respects the budget before training, the study resumes after an
interruption, validation never touches the test split, and a trial's recipe reproduces its model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from asc_edge.complexity import measure
from asc_edge.data import load_split, open_dataset
from asc_edge.features import get_frontend
from asc_edge.features.splits import holdout_index
from asc_edge.tune import SearchSpace, TuneSettings, check_feasible, run_tune, suggest
from asc_edge.tune import study as study_mod
from asc_edge.tune.space import build_model

# one small point: 8 kHz, 32 mels, 32-ms window and hop (32 frames), an 8-channel CP-Mobile
TINY_SPACE = SearchSpace(sample_rates=(8000,), n_mels=(32,), window_ms=(32.0,), hop_ms=(32.0,), families=("cp-mobile",),
                         base_channels=(8, 16, 8), channels_multiplier=(1.5,), expansion_rate=(1.5, 2.0),
                         cp_mobile_blocks=((1, 1, 1),), lr=(1e-3, 5e-3), mixup_alpha=(0.0,))


def test_holdout_keeps_recordings_together_and_never_touches_test(shared_data):
    ds = open_dataset(shared_data)
    train, test = load_split(ds, "25", None), load_split(ds, "test", None)
    fit, val = holdout_index(train, 0.2, seed=0)
    assert len(val) and len(fit) and not set(fit) & set(val) and len(fit) + len(val) == len(train)
    ids = lambda idx: {train[i].identifier for i in idx}  # noqa: E731
    assert not ids(fit) & ids(val)  # a recording is heard on one side only
    test_files = {c.filename for c in test}
    assert not {train[i].filename for i in val} & test_files  # validation clips are train-split clips, never test
    labels = {c.label for c in train}
    assert {train[i].label for i in fit} == labels  # every scene still trained on
    frac = len(val) / len(train)
    assert 0.15 <= frac <= 0.4, frac
    again, _ = holdout_index(train, 0.2, seed=0)
    assert np.array_equal(again, fit)  # deterministic for a seed


def test_feasibility_matches_exact_complexity():
    """Every point the check accepts is within budget by an independent count, every rejected one names why."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seen_ok = seen_bad = 0
    for _ in range(60):
        t = study.ask()
        p = suggest(t, SearchSpace())
        f = check_feasible(p, budget_params=60_000, budget_macs=10_000_000)
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
        if f.ok:
            fe = get_frontend(p["frontend"])
            c = measure(build_model(p["model"], p["model_kwargs"], fe), n_mels=fe.n_mels, frames=fe.n_frames)
            assert c.params <= 60_000 and c.macs <= 10_000_000
            assert (f.params, f.macs) == (c.params, c.macs)
            assert f.instructions_min == c.macs // 2 and f.flash_bytes_min == c.params
            seen_ok += 1
        else:
            assert f.reasons
            seen_bad += 1
    assert seen_ok and seen_bad


def _fake_trainer(trained: list, interrupt_at: int | None = None):
    """Stands in for training in the study-loop tests: records the point, writes the files a run has."""
    def fake(trial, recipe, s, run_name):
        if interrupt_at is not None and len(trained) == interrupt_at:
            raise KeyboardInterrupt
        trained.append((trial.number, dict(trial.params), recipe))
        run = Path(s.out) / "trials" / run_name
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(json.dumps({"macro_accuracy": 0.5, "val_macro_accuracy": 0.1 * len(trained)}))
        return run
    return fake


def test_no_infeasible_trial_is_trained(tiny_dataset, tmp_path, monkeypatch):
    data = tiny_dataset(per_label=4)
    trained: list = []
    monkeypatch.setattr(study_mod, "_train_trial", _fake_trainer(trained))
    s = TuneSettings(data=str(data), split="100", out=str(tmp_path / "t"), trials=6, epochs=1, finalists=0,
                     budget_params=20_000, budget_macs=3_000_000, max_ram_bytes=60_000)
    r = run_tune(s, log_fn=lambda *a: None)
    assert len(trained) == 6 and r["counts"]["infeasible"] > 0
    for _, _, recipe in trained:
        fe = get_frontend(recipe["frontend"])
        c = measure(build_model(recipe["model"], recipe["model_kwargs"], fe), n_mels=fe.n_mels, frames=fe.n_frames)
        assert c.params <= 20_000 and c.macs <= 3_000_000
    for t in r["trials"]:
        if t["state"] == "infeasible":
            assert t["feasibility"]["reasons"] and t["run_dir"] is None
    assert (tmp_path / "t" / "study.json").is_file() and (tmp_path / "t" / "pareto.md").is_file()


def test_resume_after_interruption(tiny_dataset, tmp_path, monkeypatch):
    data = tiny_dataset(per_label=4)
    s = TuneSettings(data=str(data), split="100", out=str(tmp_path / "t"), trials=3, epochs=1, finalists=0,
                     space=TINY_SPACE)
    first: list = []
    monkeypatch.setattr(study_mod, "_train_trial", _fake_trainer(first, interrupt_at=1))
    with pytest.raises(KeyboardInterrupt):
        run_tune(s, log_fn=lambda *a: None)
    assert len(first) == 1
    st = optuna.load_study(study_name=study_mod.STUDY_NAME, storage=f"sqlite:///{tmp_path / 't' / 'study.db'}")
    running = [t for t in st.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 1
    cut = running[0]
    second: list = []
    monkeypatch.setattr(study_mod, "_train_trial", _fake_trainer(second))
    r = run_tune(s, log_fn=lambda *a: None)
    assert len(second) == 2  # 1 finished before + 2 now = 3 trials
    assert second[0][1] == cut.params  # the cut-off point is trained again first
    states = {t["number"]: t["state"] for t in r["trials"]}
    assert states[cut.number] == "fail" and sum(v == "complete" for v in states.values()) == 3
    with pytest.raises(Exception, match="other settings"):
        run_tune(TuneSettings(**{**s.__dict__, "epochs": 2}), log_fn=lambda *a: None)


def test_trial_recipe_reproduces_its_model(tiny_dataset, tmp_path):
    """A real (one-trial, two-epoch) study; `asc-edge train --config` on the trial's recipe gives the same weights."""
    data = tiny_dataset(per_label=4)
    s = TuneSettings(data=str(data), split="100", out=str(tmp_path / "t"), trials=1, epochs=2, finalists=0,
                     space=TINY_SPACE, cache_dir=str(tmp_path / "cache"))
    r = run_tune(s, log_fn=lambda *a: None)
    (trial,) = [t for t in r["trials"] if t["state"] == "complete"]
    assert trial["val_macro_accuracy"] is not None and sorted(trial["intermediate"]) == [1, 2]
    report = json.loads((Path(trial["run_dir"]) / "report.json").read_text())
    assert report["config"]["val_fraction"] == 0.2 and report["n_train_clips"] < 8
    proc = subprocess.run([sys.executable, "-m", "asc_edge", "train", "--config", trial["recipe"], "--out",
                           str(tmp_path / "again"), "--name", "again", "--cache-dir", str(tmp_path / "cache"),
                           "--no-progress", "--logger", "none"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(Path(trial["run_dir"]) / "model.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "again" / "again" / "model.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_space_from_yaml_and_bad_space_is_one_error_line(tmp_path):
    from typer.testing import CliRunner

    from asc_edge.cli import app

    f = tmp_path / "space.yaml"
    f.write_text("sample_rates: [16000]\nn_mels: [96, 128]\ncp_mobile_blocks: [[2, 1, 1]]\nfamilies: [cp-mobile]\n")
    sp = SearchSpace.from_yaml(f)
    assert sp.sample_rates == (16000,) and sp.n_mels == (96, 128) and sp.cp_mobile_blocks == ((2, 1, 1),)
    assert sp.families == ("cp-mobile",) and sp.window_ms == SearchSpace().window_ms
    bad = tmp_path / "bad.yaml"
    for text, needle in (("n_mel: [64]\n", "unknown search-space key 'n_mel'"),
                         ("lr: [0.001]\n", "lr: expected a list like"),
                         ("families: [resnet]\n", "unknown family")):
        bad.write_text(text)
        r = CliRunner().invoke(app, ["tune", "--data", str(tmp_path), "--space", str(bad), "--out", str(tmp_path / "o")])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1 and needle in lines[0], r.output
        assert not (tmp_path / "o").exists()
