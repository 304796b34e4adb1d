"""End-to-end tests of ``asc-edge train`` / ``evaluate`` / ``complexity`` through the CLI.

* bad input → one ``error: ... (fix: ...)`` line, exit status 2, no traceback;
* recoverable audio (48 kHz, stereo, short, long clips) → converted, counted, training completes;
* a real run on ../shared/data split5: run-directory contents, ``evaluate`` reproduces its metrics;
* same seed → identical weights and metrics, other seed → other weights;
* offline KD: teacher-logit cache written once and reused, teacher ensembles;
* atomic run directory: crash / Ctrl-C leave nothing behind and never damage a previous run.

Runs on the real pack share one feature cache per session (``<basetemp>/asc-edge-cache``, also used
by test_ddp.py) and stay small: one split5 run (64 clips, 1 epoch) against the full test split; the
reproducibility / KD / crash runs use a 1-clip-per-class subset of split5 and test (10 + 10 clips).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from asc_edge.cli import app

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = ("macro_accuracy", "per_class_accuracy", "per_device_accuracy", "log_loss", "confusion_matrix")
RUN_FILES = ("model.ckpt", "metrics.json", "report.json", "history.json", "confusion_matrix.png",
             "training_curves.png")
# Fast settings for the tiny synthetic data sets (they have no dirs/ folder: DIR augmentation off).
TINY = ("--epochs", "1", "--batch-size", "4", "--val-every", "1", "--no-progress", "--dir-p", "0")
# Settings of the runs on the real pack.
REAL = ("--split", "5", "--val-every", "1", "--no-progress")

runner = CliRunner()


def cli(*args):
    """Invoke ``asc-edge`` in-process; returns typer's Result (output = stdout + stderr)."""
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result):
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output


def assert_one_error_line(result, *needles: object) -> str:
    """Exit status 2, exactly one non-empty output line ``error: ... (fix: ...)`` containing ``needles``."""
    out = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}\n{result.exception!r}"
    assert "Traceback" not in out
    # `evaluate` has no --no-progress: ignore its tqdm bar (stderr, \r-separated), nothing else
    lines = [ln for ln in out.splitlines() if ln.strip() and not ("%|" in ln and "clip" in ln)]
    assert len(lines) == 1, out
    line = lines[0]
    assert line.startswith("error: "), line
    assert "(fix: " in line and line.rstrip().endswith(")"), line
    for needle in needles:
        assert str(needle) in line, (needle, line)
    return line


def tree_digest(d: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``d``."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def leftovers(out: Path) -> list[str]:
    """Hidden partial / old directories that a finished (or failed) run must not leave behind."""
    return sorted(p.name for p in out.glob(".*") if ".partial-" in p.name or ".old-" in p.name)


def state_dict(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.ckpt", map_location="cpu", weights_only=False)["state_dict"]


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread for these tiny runs: with the 2 cores shared (another job), OpenMP spin-waiting
    of 2 threads made each run 5-10x slower. Every run in this module uses the same setting."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> Path:
    """One --cache-dir per session for the real pack (features computed once; shared with test_ddp.py)."""
    d = tmp_path_factory.getbasetemp() / "asc-edge-cache"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def base_run(shared_data, feature_cache, runs) -> Path:
    """split5 (64 clips) against the full test split (232 clips), 1 epoch of 2 steps, seed 0, default
    augmentation (incl. DIRs from <data>/dirs)."""
    r = cli("train", "--data", shared_data, *REAL, "--epochs", "1", "--batch-size", "32", "--seed", "0",
            "--cache-dir", feature_cache, "--out", runs, "--name", "base")
    assert_ok(r)
    assert f"run: {runs / 'base'}" in r.output
    return runs / "base"


def write_mini_splits(shared_data: Path, dest: Path, per_class: int = 1) -> Path:
    """split5.csv / test.csv with the first ``per_class`` rows per class of the real ones (features are
    cache hits of the real split5 / test)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("split5.csv", "test.csv"):
        lines = (shared_data / "split_setup" / name).read_text().splitlines()
        kept, seen = [lines[0]], {}
        for ln in lines[1:]:
            label = ln.split("\t")[1]
            if seen.get(label, 0) < per_class:
                seen[label] = seen.get(label, 0) + 1
                kept.append(ln)
        (dest / name).write_text("\n".join(kept) + "\n")
    return dest


@pytest.fixture(scope="module")
def mini(shared_data, tmp_path_factory) -> tuple:
    """CLI flags for quick runs on the real pack: 10 train / 10 test clips (1 per class), 1 epoch of 2 steps."""
    splits = write_mini_splits(shared_data, tmp_path_factory.mktemp("mini_splits"))
    return ("--data", shared_data, "--splits", splits, *REAL, "--epochs", "1", "--batch-size", "5")


def skip_plot_rendering(mp: pytest.MonkeyPatch) -> None:
    """Empty PNG files instead of matplotlib rendering (~1-2 s a run); the plots are checked on ``base_run``."""
    import asc_edge.train.run as run_mod

    mp.setattr(run_mod, "plot_confusion_matrix", lambda cm, labels, path, **kw: Path(path).write_bytes(b""))
    mp.setattr(run_mod, "plot_training_curves", lambda history, path, **kw: Path(path).write_bytes(b""))


def mini_train(mini, feature_cache, out, name, *extra):
    with pytest.MonkeyPatch.context() as mp:
        skip_plot_rendering(mp)
        r = cli("train", *mini, "--cache-dir", feature_cache, "--out", out, "--name", name, *extra)
    assert_ok(r)
    return out / name


@pytest.fixture(scope="module")
def mini_seed0(mini, feature_cache, runs) -> Path:
    return mini_train(mini, feature_cache, runs, "mini_seed0", "--seed", "0")


@pytest.fixture(scope="module")
def mini_seed1(mini, feature_cache, runs) -> Path:
    return mini_train(mini, feature_cache, runs, "mini_seed1", "--seed", "1")


def _write_tiny(root: Path, labels=("park", "tram"), per_label: int = 2, sr: int = 44100) -> Path:
    """Same layout as conftest's ``tiny_dataset`` (usable from module-scoped fixtures)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    rows = []
    for k, label in enumerate(labels):
        for i in range(per_label):
            fn = f"audio/{label}-city{i}-{i}-0-0-a.wav"
            (root / "audio").mkdir(parents=True, exist_ok=True)
            x = 0.1 * np.sin(2 * np.pi * (300 + 200 * k + 50 * i) * t) + 0.02 * rng.standard_normal(sr)
            sf.write(str(root / fn), x.astype(np.float32), sr, subtype="PCM_16")
            rows.append([fn, label, f"city{i}-{i}", "a"])

    def tsv(path: Path, header, body):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join("\t".join(r) for r in [header, *body]) + "\n", encoding="utf-8")

    tsv(root / "meta.csv", ["filename", "scene_label", "identifier", "source_label"], rows)
    tsv(root / "split_setup" / "split100.csv", ["filename", "scene_label"], [r[:2] for r in rows])
    tsv(root / "split_setup" / "test.csv", ["filename", "scene_label"], [r[:2] for r in rows[::per_label]])
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A checkpoint trained for one epoch on a 4-clip synthetic park/tram data set (no shared data needed)."""
    base = tmp_path_factory.mktemp("tiny_run")
    data = _write_tiny(base / "ds")
    r = cli("train", "--data", data, *TINY, "--cache-dir", base / "cache", "--out", base / "runs", "--name", "tiny")
    assert_ok(r)
    return base / "runs" / "tiny"


# ------------------------------------------------------------------- 1. bad input: one error line
def _missing_wav(root, make):
    wav = root / "audio" / "park-city0-0-0-0-a.wav"
    wav.unlink()
    return ["CSV row points at missing file", wav]


def _corrupt_wav(root, make):
    wav = root / "audio" / "park-city1-1-0-0-a.wav"
    wav.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return [wav, "not a readable audio file", "re-export"]


def _empty_wav(root, make):
    wav = root / "audio" / "tram-city0-0-0-0-a.wav"
    make.write_wav(wav, np.zeros(0, np.float32), 44100)
    return [wav, "empty (0 frames)"]


def _row_not_in_meta(root, make):
    split = root / "split_setup" / "split100.csv"
    make.write_tsv(split, ["filename", "scene_label"],
                   [["audio/park-city0-0-0-0-a.wav", "park"], ["audio/park-nowhere-9-0-0-a.wav", "park"]])
    return [split, "line 3", "audio/park-nowhere-9-0-0-a.wav", "not in"]


def _row_file_absent(root, make):
    # listed in meta.csv and in the split, but the WAV was never there
    ghost = "audio/tram-ghost-7-0-0-a.wav"
    rows = [ln.split("\t") for ln in (root / "meta.csv").read_text().splitlines()[1:]]
    make.write_tsv(root / "meta.csv", ["filename", "scene_label", "identifier", "source_label"],
                   rows + [[ghost, "tram", "ghost-7", "a"]])
    split = root / "split_setup" / "split100.csv"
    make.write_tsv(split, ["filename", "scene_label"], [r[:2] for r in rows] + [[ghost, "tram"]])
    return [split, "CSV row points at missing file", root / ghost]


def _unknown_label(root, make):
    split = root / "split_setup" / "split100.csv"
    make.write_tsv(split, ["filename", "scene_label"],
                   [["audio/park-city0-0-0-0-a.wav", "park"], ["audio/tram-city0-0-0-0-a.wav", "beach"]])
    return [split, "unknown label", "'beach'", "line 3"]


def _empty_split(root, make):
    split = root / "split_setup" / "split100.csv"
    make.write_tsv(split, ["filename", "scene_label"], [])
    return [split, "is empty"]


def _empty_test_split(root, make):
    split = root / "split_setup" / "test.csv"
    make.write_tsv(split, ["filename", "scene_label"], [])
    return [split, "'test' is empty"]


def _no_meta(root, make):
    (root / "meta.csv").unlink()
    return [root / "meta.csv", "meta.csv not found"]


def _no_split_file(root, make):
    (root / "split_setup" / "split100.csv").unlink()
    return ["split100.csv not found", root / "split_setup"]


BAD_DATA = {
    "missing-wav": _missing_wav,
    "corrupt-wav": _corrupt_wav,
    "empty-wav": _empty_wav,
    "row-not-in-meta": _row_not_in_meta,
    "row-file-absent": _row_file_absent,
    "unknown-label": _unknown_label,
    "empty-split": _empty_split,
    "empty-test-split": _empty_test_split,
    "no-meta-csv": _no_meta,
    "no-split-csv": _no_split_file,
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_train_bad_data_one_error_line(case, tiny_dataset, tmp_path):
    root = tiny_dataset()
    needles = BAD_DATA[case](root, tiny_dataset)
    r = cli("train", "--data", root, *TINY, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")
    assert_one_error_line(r, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("flags, needles", [
    (["--model", "cp-nope"], ["unknown model 'cp-nope'", "cp-mobile"]),
    (["--split", "7"], ["unknown split '7'", "5, 10, 25, 50, 100"]),
    (["--frontend", "96k"], ["unknown frontend '96k'", "dcase2024"]),
    (["--dir-p", "0.5"], ["device impulse response folder not found", "dirs"]),
    (["--kd-scheme", "dml"], ["unknown --kd-scheme 'dml'", "hinton, focusnet, mse, rrs"]),
    (["--teacher-logits", "/nonexistent/t.npz"], ["/nonexistent/t.npz"]),
], ids=["model", "split", "frontend", "dirs-missing", "kd-scheme", "teacher-logits-missing"])
def test_train_bad_settings_one_error_line(flags, needles, tiny_dataset, tmp_path):
    root = tiny_dataset()
    args = list(TINY)
    del args[args.index("--dir-p"):args.index("--dir-p") + 2]
    r = cli("train", "--data", root, *args, *flags, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")
    assert_one_error_line(r, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_train_missing_data_root(tmp_path):
    r = cli("train", "--data", tmp_path / "nowhere", *TINY, "--cache-dir", tmp_path / "c", "--out", tmp_path / "r")
    assert_one_error_line(r, tmp_path / "nowhere", "does not exist")


def _bad_checkpoints(tmp_path: Path, good: Path) -> dict[str, tuple[Path, list]]:
    random_bytes = tmp_path / "random.ckpt"
    random_bytes.write_bytes(np.random.default_rng(2).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.ckpt"
    data = (good / "model.ckpt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty_run = tmp_path / "empty_run"
    empty_run.mkdir()
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    return {
        "missing": (tmp_path / "nope.ckpt", ["checkpoint not found"]),
        "empty-run-dir": (empty_run, ["empty_run/model.ckpt: checkpoint not found"]),
        "random-bytes": (random_bytes, ["cannot read checkpoint", "re-run training"]),
        "truncated": (truncated, ["cannot read checkpoint"]),
        "foreign": (foreign, ["not an asc-edge checkpoint"]),
    }


CKPT_CASES = ["missing", "empty-run-dir", "random-bytes", "truncated", "foreign"]


@pytest.mark.parametrize("case", CKPT_CASES)
def test_evaluate_bad_checkpoint(case, tiny_run, tiny_dataset, tmp_path):
    root = tiny_dataset()
    path, needles = _bad_checkpoints(tmp_path, tiny_run)[case]
    r = cli("evaluate", path, "--data", root, "--cache-dir", tmp_path / "cache", "-o", tmp_path / "m.json")
    assert_one_error_line(r, path.name, *needles)
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("case", CKPT_CASES)
def test_train_bad_teacher_checkpoint(case, tiny_run, tiny_dataset, tmp_path):
    root = tiny_dataset()
    path, needles = _bad_checkpoints(tmp_path, tiny_run)[case]
    r = cli("train", "--data", root, *TINY, "--teacher", path, "--cache-dir", tmp_path / "cache",
            "--out", tmp_path / "runs")
    assert_one_error_line(r, path.name, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_teacher_and_evaluate_with_other_label_set(tiny_run, tiny_dataset, tmp_path):
    """A park/tram model cannot teach or be evaluated on a bus/metro data set."""
    root = tiny_dataset(labels=("bus", "metro"))
    r = cli("train", "--data", root, *TINY, "--teacher", tiny_run / "model.ckpt", "--cache-dir", tmp_path / "c",
            "--out", tmp_path / "runs")
    assert_one_error_line(r, "teacher labels", "differ")
    r = cli("evaluate", tiny_run, "--data", root, "--cache-dir", tmp_path / "c")
    assert_one_error_line(r, "labels the model does not know", "bus", "park, tram")


@pytest.mark.parametrize("case", ["corrupt-wav", "missing-wav", "empty-test-split"])
def test_evaluate_bad_data(case, tiny_run, tiny_dataset, tmp_path):
    root = tiny_dataset()
    needles = BAD_DATA[case](root, tiny_dataset)
    if case == "corrupt-wav":  # the corrupted clip must be in the evaluated split
        needles = [root / "audio" / "park-city1-1-0-0-a.wav", "not a readable audio file"]
        r = cli("evaluate", tiny_run, "--data", root, "--split", "100", "--cache-dir", tmp_path / "cache")
    else:
        r = cli("evaluate", tiny_run, "--data", root, "--cache-dir", tmp_path / "cache")
    assert_one_error_line(r, *needles)


def test_bad_input_in_a_real_process(tiny_dataset, tmp_path):
    """The same single line on the real stderr of ``python -m asc_edge`` (logging set up for real)."""
    root = tiny_dataset()
    needles = _corrupt_wav(root, tiny_dataset)
    p = subprocess.run([sys.executable, "-m", "asc_edge", "train", "--data", str(root), *TINY,
                        "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stdout + p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    assert p.stdout == ""
    for n in needles:
        assert str(n) in errors[0]


# ------------------------------------------------------------ 1b. recoverable audio is converted
def test_recoverable_audio_is_converted_and_counted(tiny_dataset, tmp_path, caplog, monkeypatch):
    import asc_edge.data.audio as audio

    monkeypatch.setattr(audio, "_warned_downmix", False)  # "said once" per process: reset for this test
    root = tiny_dataset(labels=("park", "tram"), per_label=3)
    rng = np.random.default_rng(3)
    a = root / "audio"
    tiny_dataset.write_wav(a / "park-city0-0-0-0-a.wav", 0.1 * rng.standard_normal(48000), 48000)      # 48 kHz
    tiny_dataset.write_wav(a / "park-city1-1-0-0-a.wav", 0.1 * rng.standard_normal((44100, 2)), 44100)  # stereo
    tiny_dataset.write_wav(a / "park-city2-2-0-0-a.wav", 0.1 * rng.standard_normal((44100, 2)), 44100)  # stereo
    tiny_dataset.write_wav(a / "tram-city0-0-0-0-a.wav", 0.1 * rng.standard_normal(22050), 44100)      # 0.5 s
    tiny_dataset.write_wav(a / "tram-city1-1-0-0-a.wav", 0.1 * rng.standard_normal(88200), 44100)      # 2 s
    caplog.set_level(logging.INFO, logger="asc_edge")
    r = cli("train", "--data", root, *TINY, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs",
            "--name", "ok")
    assert_ok(r)
    assert (tmp_path / "runs" / "ok" / "metrics.json").is_file()
    msgs = [rec.getMessage() for rec in caplog.records]
    summary = [m for m in msgs if m.startswith("split 100:")]
    assert len(summary) == 1, msgs
    s = summary[0]
    assert "6 clips: 6 resampled (" in s and "1 48000->32000 Hz" in s and "5 44100->32000 Hz" in s, s
    assert "2 stereo down-mixed" in s and "1 padded to 1.0 s" in s and "1 cropped" in s, s
    downmix = [m for m in msgs if "down-mixing" in m]
    assert len(downmix) == 1, downmix  # said once although two files are stereo
    # the test split (first clip of each label) is served from the feature cache: counted once only
    assert not [m for m in msgs if m.startswith("split test:")], msgs


# --------------------------------------------------------------- 2. end to end on the real pack
def test_run_directory_contents(base_run, runs):
    for f in RUN_FILES:
        assert (base_run / f).is_file() and (base_run / f).stat().st_size > 0, f
    assert leftovers(runs) == []
    m = json.loads((base_run / "metrics.json").read_text())
    for k in METRIC_KEYS:
        assert k in m, k
    assert m["n_clips"] == 232 and m["split"] == "test"
    assert len(m["per_class_accuracy"]) == 10 and set(m["per_device_accuracy"]) == {"a"}
    assert np.asarray(m["confusion_matrix"]).shape == (10, 10)
    assert int(np.asarray(m["confusion_matrix"]).sum()) == 232
    assert 0.0 <= m["macro_accuracy"] <= 1.0 and np.isfinite(m["log_loss"]) and m["log_loss"] > 0
    hist = json.loads((base_run / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0]
    for h in hist:
        assert {"train_loss", "lr", "val_loss", "val_macro_accuracy"} <= set(h), h
    rep = json.loads((base_run / "report.json").read_text())
    assert rep["n_train_clips"] == 64 and rep["n_test_clips"] == 232
    assert rep["config"]["epochs"] == 1 and rep["config"]["seed"] == 0
    assert rep["complexity"]["params"] == 61148 and rep["complexity"]["macs"] == 29419156
    assert len(rep["labels"]) == 10
    ck = torch.load(base_run / "model.ckpt", map_location="cpu", weights_only=False)
    assert ck["hyper_parameters"]["model_name"] == "cp-mobile"
    assert all(k.startswith("model.") for k in ck["state_dict"])
    assert ck["global_step"] == 2  # 64 clips / batch 32


def test_evaluate_reproduces_metrics(base_run, shared_data, feature_cache, tmp_path):
    out = tmp_path / "out.json"
    r = cli("evaluate", base_run, "--data", shared_data, "--split", "test", "--cache-dir", feature_cache, "-o", out)
    assert_ok(r)
    m = json.loads((base_run / "metrics.json").read_text())
    e = json.loads(out.read_text())
    assert e["macro_accuracy"] == m["macro_accuracy"]
    assert e["log_loss"] == m["log_loss"]
    assert e["confusion_matrix"] == m["confusion_matrix"]
    assert e["per_class_accuracy"] == m["per_class_accuracy"]
    assert e["split"] == "test" and e["checkpoint"].endswith("model.ckpt")
    assert f"test: macro accuracy {m['macro_accuracy']:.4f}" in r.output
    # same --cache-dir layout as train: the features were reused, not recomputed elsewhere
    assert {p.name for p in feature_cache.iterdir()} <= {"features", "teacher_logits"}


# ---------------------------------------------------------------------------- 3. reproducibility
def test_same_seed_same_result_other_seed_other_weights(mini, mini_seed0, mini_seed1, feature_cache, runs):
    """Default augmentation (DIRs, time roll, freq mask, MixStyle, mixup) included: all seeded."""
    again = mini_train(mini, feature_cache, runs, "mini_seed0_again", "--seed", "0")
    m0 = json.loads((mini_seed0 / "metrics.json").read_text())
    m1 = json.loads((again / "metrics.json").read_text())
    assert m0 == m1
    assert m0["n_clips"] == 10
    h0 = json.loads((mini_seed0 / "history.json").read_text())
    h1 = json.loads((again / "history.json").read_text())
    assert h0 == h1 and len(h0) == 1
    s0, s1 = state_dict(mini_seed0), state_dict(again)
    assert s0.keys() == s1.keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    s2 = state_dict(mini_seed1)
    assert any(not torch.equal(s0[k], s2[k]) for k in s0 if s0[k].is_floating_point())
    h2 = json.loads((mini_seed1 / "history.json").read_text())
    assert h2 != h0


# --------------------------------------------------------------------------------- 4. distillation
def test_kd_teacher_logit_cache_and_ensemble(mini, mini_seed0, mini_seed1, feature_cache, runs, monkeypatch):
    import asc_edge.train.run as run_mod

    cache = feature_cache / "teacher_logits"
    before = set(cache.glob("*")) if cache.is_dir() else set()
    t0, t1 = mini_seed0 / "model.ckpt", mini_seed1 / "model.ckpt"
    kd = ("--dir-p", "0")
    kd1 = mini_train(mini, feature_cache, runs, "kd1", *kd, "--teacher", t0)
    new = sorted(set(cache.glob("*")) - before)
    assert [p.suffix for p in new] == [".json", ".npy"], new
    npy = new[1]
    assert np.load(npy).shape == (10, 10)
    stamp = {p: p.stat().st_mtime_ns for p in new}
    rep = json.loads((kd1 / "report.json").read_text())
    assert rep["config"]["teachers"] == [str(t0)]

    # second run: the teacher is not run again (its forward would raise) and the entry is untouched
    def no_teacher_forward(*a, **k):
        raise AssertionError("teacher logits recomputed although they are cached")

    with monkeypatch.context() as mp:
        mp.setattr(run_mod, "predict_logits", no_teacher_forward)
        kd2 = mini_train(mini, feature_cache, runs, "kd2", *kd, "--teacher", t0)
    assert set(cache.glob("*")) - before == set(new)
    assert {p: p.stat().st_mtime_ns for p in new} == stamp
    s1, s2 = state_dict(kd1), state_dict(kd2)  # same KD targets, same seed: same student
    assert all(torch.equal(s1[k], s2[k]) for k in s1)

    # two --teacher flags: logit-averaged ensemble with its own cache entry
    ens = mini_train(mini, feature_cache, runs, "kd_ens", *kd, "--teacher", t0, "--teacher", t1)
    ens_new = sorted(set(cache.glob("*")) - before - set(new))
    assert [p.suffix for p in ens_new] == [".json", ".npy"], ens_new
    ens_logits = np.load(ens_new[1])
    assert ens_logits.shape == (10, 10)
    assert not np.array_equal(ens_logits, np.load(npy))
    assert json.loads((ens / "report.json").read_text())["config"]["teachers"] == [str(t0), str(t1)]
    assert (ens / "metrics.json").is_file()
    assert leftovers(runs) == []


# ------------------------------------------------------------------------ 5. atomic run directory
def test_crash_after_fit_leaves_nothing_and_keeps_previous_run(mini, mini_seed0, feature_cache, tmp_path,
                                                               monkeypatch):
    import asc_edge.train.run as run_mod

    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(mini_seed0, out / "victim")  # a previous good run of the same name
    good = tree_digest(out / "victim")

    def boom(*a, **k):
        raise RuntimeError("simulated crash while writing the run directory")

    skip_plot_rendering(monkeypatch)
    monkeypatch.setattr(run_mod, "plot_training_curves", boom)
    quick = (*mini, "--dir-p", "0", "--cache-dir", feature_cache, "--out", out)
    r = cli("train", *quick, "--name", "victim")
    assert r.exit_code != 0
    assert isinstance(r.exception, RuntimeError)
    assert tree_digest(out / "victim") == good
    assert sorted(p.name for p in out.iterdir()) == ["victim"]  # no .victim.partial-*

    r = cli("train", *quick, "--name", "fresh")
    assert r.exit_code != 0 and isinstance(r.exception, RuntimeError)
    assert sorted(p.name for p in out.iterdir()) == ["victim"]  # no fresh/, no .fresh.partial-*


def test_failed_final_rename_restores_previous_run(tiny_run, tmp_path, monkeypatch):
    """The one non-atomic moment: old run moved aside, new one not yet renamed into place."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(tiny_run, out / "tiny")
    good = tree_digest(out / "tiny")
    data = _write_tiny(tmp_path / "ds")
    real_rename = Path.rename

    def rename(self, target):
        if ".partial-" in self.name:
            raise OSError("simulated failure of the final rename")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    r = cli("train", "--data", data, *TINY, "--cache-dir", tmp_path / "cache", "--out", out, "--name", "tiny")
    monkeypatch.undo()
    assert_one_error_line(r, "simulated failure of the final rename")  # OSError: one line, exit 2
    assert sorted(p.name for p in out.iterdir()) == ["tiny"]
    assert tree_digest(out / "tiny") == good


def test_keyboard_interrupt_in_training_writes_nothing(tiny_dataset, tmp_path, monkeypatch):
    import signal

    from asc_edge.train.module import ASCModule

    def interrupted(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(ASCModule, "training_step", interrupted)
    sigint = signal.getsignal(signal.SIGINT)
    root = tiny_dataset()
    out = tmp_path / "runs"
    r = cli("train", "--data", root, *TINY, "--cache-dir", tmp_path / "cache", "--out", out, "--name", "x")
    assert r.exit_code == 130, f"{r.output}\n{r.exception!r}"
    assert "nothing was written" in r.output
    assert "Traceback" not in r.output
    assert not (out / "x").exists()
    assert not out.exists() or leftovers(out) == []
    assert signal.getsignal(signal.SIGINT) == sigint  # Ctrl-C works again afterwards


# ---------------------------------------------------------------------------------- 6. complexity
def test_complexity_json_and_list():
    r = cli("complexity", "cp-mobile", "--json")
    assert_ok(r)
    c = json.loads(r.stdout)
    assert c["model"] == "cp-mobile" and c["params"] == 61148 and c["macs"] == 29419156
    r = cli("complexity", "--list")
    assert_ok(r)
    names = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    assert "cp-mobile" in names and "cp-resnet" in names
    r = cli("complexity", "cp-nope")
    assert_one_error_line(r, "unknown model 'cp-nope'")
