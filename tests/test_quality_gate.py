"""int8 quality gate of ``asc-edge export`` (issue 14, item 3): int8 vs float top-1 agreement and
logit cosine similarity on held-out clips, thresholds as flags, a failed gate = one error line and
nothing at the output path.

The metric is checked on hand-made logits; the gate on one small real export (a BN-calibrated
random SM1, 8 kHz input, target ``tflite``: ONNX + int8, no C model) that fails through the CLI and
one that passes through :func:`export_model`.
"""

from __future__ import annotations

import inspect
import json
import math

import numpy as np
import pytest
import torch

from asc_edge.errors import ExportError
from asc_edge.export.quality import GATE_DEFAULTS, gate_failures, int8_float_agreement
from conftest import bn_calibrated
from test_train_cli import cli

# ------------------------------------------------------------------------------------- metric


def test_metric_on_hand_made_logits():
    f = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], np.float32)
    q = np.array([[2, 0, 0], [1, 0, 0], [0, 0, -1], [1, 0, 0]], np.float32)
    m = int8_float_agreement(f, q)
    # argmax f = 0 1 2 0, argmax q = 0 0 0 0: clips 0 and 3 agree
    assert m["n_clips"] == 4 and m["top1_agreement"] == 0.5
    # cosines 1 (scaled copy), 0 (orthogonal), -1 (opposite), 1/sqrt(2)
    assert m["cosine_mean"] == pytest.approx((1 + 0 - 1 + 1 / math.sqrt(2)) / 4, abs=1e-12)
    assert m["n_worst"] == 1 and m["cosine_worst5_mean"] == pytest.approx(-1.0) and m["cosine_min"] == -1.0


def test_metric_worst_five_percent_and_edge_cases():
    rng = np.random.default_rng(0)
    f = rng.standard_normal((40, 10))
    q = 3.0 * f  # same direction: cosine 1, same argmax
    q[7] = -f[7]            # cosine -1
    q[20] = np.zeros(10)    # one zero vector against a non-zero one: 0
    m = int8_float_agreement(f, q)
    assert m["top1_agreement"] == pytest.approx(38 / 40)
    assert m["n_worst"] == 2 and m["cosine_worst5_mean"] == pytest.approx(-0.5)  # ceil(5 % of 40) = 2 clips
    assert m["cosine_mean"] == pytest.approx(38 / 40 - 1 / 40)
    assert int8_float_agreement(f[:20], f[:20])["n_worst"] == 1                # 5 % of 20 = 1
    assert int8_float_agreement(f[:21], f[:21])["n_worst"] == 2                # ceil(1.05) = 2
    both_zero = int8_float_agreement(np.zeros((1, 3)), np.zeros((1, 3)))
    assert both_zero["cosine_mean"] == 1.0 and both_zero["top1_agreement"] == 1.0
    for a, b in [(f, f[:, :5]), (f[0], q[0]), (f[:0], q[:0])]:
        with pytest.raises(ValueError):
            int8_float_agreement(a, b)


def test_gate_failures_name_value_threshold_and_flag():
    m = {"top1_agreement": 0.85, "cosine_mean": 0.97, "cosine_worst5_mean": 0.8}
    assert gate_failures(m, GATE_DEFAULTS) == ["top-1 agreement 0.8500 < 0.9 (lower --gate-agreement to accept it)"]
    assert gate_failures(m, {"agreement": 0.85, "cosine": 0.97, "cosine_worst5": 0.8}) == []  # equal passes
    two = gate_failures(m, {"agreement": 0.0, "cosine": 0.99, "cosine_worst5": 0.9})
    assert [s.split(" (")[0] for s in two] == ["mean logit cosine 0.9700 < 0.99", "worst-5 % logit cosine 0.8000 < 0.9"]
    assert "--gate-cosine to" in two[0] and "--gate-cosine-worst5" in two[1]


def test_cli_and_library_defaults_agree():
    from asc_edge.cli import export
    from asc_edge.export.pipeline import export_model

    cli_params = inspect.signature(export).parameters
    lib_params = inspect.signature(export_model).parameters
    for name, flag in [("agreement", "gate_agreement"), ("cosine", "gate_cosine"),
                       ("cosine_worst5", "gate_cosine_worst5")]:
        assert cli_params[flag].default.default == lib_params[flag].default == GATE_DEFAULTS[name]
    assert cli_params["no_gate"].default.default is False        # the CLI enforces the gate by default
    assert lib_params["gate"].default is False                   # library callers opt in


def test_cli_passes_gate_flags_to_export_model(monkeypatch, tmp_path):
    import asc_edge.export.pipeline as pipeline

    seen = []
    monkeypatch.setattr(pipeline, "export_model", lambda *a, **kw: seen.append(kw))
    assert cli("export", tmp_path / "r", "--out", tmp_path / "o").exit_code == 0
    assert cli("export", tmp_path / "r", "--out", tmp_path / "o", "--no-gate", "--gate-agreement", "0.5",
               "--gate-cosine", "0.6", "--gate-cosine-worst5", "-0.1").exit_code == 0
    assert [(kw["gate"], kw["gate_agreement"], kw["gate_cosine"], kw["gate_cosine_worst5"]) for kw in seen] == \
        [(True, 0.9, 0.95, 0.8), (False, 0.5, 0.6, -0.1)]


def test_bad_thresholds_are_refused_before_any_work(tmp_path):
    from asc_edge.export.pipeline import export_model

    with pytest.raises(ExportError, match="--gate-cosine 1.5 is outside"):
        export_model(tmp_path / "nothing.ckpt", "tflite", tmp_path / "o", gate_cosine=1.5)
    r = cli("export", tmp_path / "nothing.ckpt", "--gate-agreement", "1.2", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--gate-agreement 1.2 is out of range" in r.output
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------- real exports
@pytest.fixture(scope="module")
def sm1_run(shared_data, tmp_path_factory):
    """A BN-calibrated random SM1 (ai4edge-8k frontend) saved as an asc-edge run on split 25."""
    from asc_edge.features import get_frontend, load_split_data
    from asc_edge.models import get_spec

    fe = get_frontend(get_spec("sm1").frontend)
    sd = load_split_data(shared_data, "25", fe, progress=False)
    model = bn_calibrated("sm1", sd.features[:96])
    run = tmp_path_factory.mktemp("qg") / "run"
    run.mkdir()
    torch.save({"hyper_parameters": {"model_name": "sm1", "model_kwargs": {}, "labels": list(sd.labels),
                                     "frontend": fe.to_dict(), "train": {"data": str(shared_data), "split": "25"}},
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, run / "model.ckpt")
    return run


def test_failed_gate_is_one_line_and_writes_nothing(sm1_run, tmp_path):
    out = tmp_path / "exp"
    # a mean cosine of exactly 1 cannot survive int8 rounding
    r = cli("export", sm1_run, "--target", "tflite", "--out", out, "--gate-cosine", "1", "--no-progress")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and r.output.rstrip().splitlines()[-1] == errors[0], r.output
    line = errors[0]
    assert "int8 quality gate failed" in line and "mean logit cosine 0." in line and "< 1 " in line
    assert "--gate-cosine" in line and "nothing was written" in line and "(fix: " in line
    assert "quality gate on" not in r.output  # no 'passed' progress line before the error
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [], list(tmp_path.iterdir())  # no .exp.tmp<pid> left


def test_passing_gate_is_recorded_on_held_out_clips(sm1_run, tmp_path):
    from asc_edge.export.pipeline import export_model

    lines: list[str] = []
    out = tmp_path / "exp"
    # evaluate on split 25 itself: its 200 calibration clips must be left out of the gate
    rep = export_model(sm1_run, "tflite", out, test_split="25", gate=True, log=lines.append)  # default thresholds
    disk = json.loads((out / "report.json").read_text())
    qg = disk["quality_gate"]
    assert qg == json.loads(json.dumps(rep["quality_gate"]))
    assert qg["enabled"] is True and qg["passed"] is True and qg["failed"] == []
    assert qg["thresholds"] == GATE_DEFAULTS == {"agreement": 0.9, "cosine": 0.95, "cosine_worst5": 0.8}
    n_test = disk["data"]["n_test"]
    assert n_test > 200 and qg["n_clips"] == n_test - 200 and "(200 excluded)" in qg["clips"]
    assert 0.9 <= qg["top1_agreement"] <= 1 and qg["cosine_worst5_mean"] <= qg["cosine_mean"] <= 1
    assert qg["cosine_min"] <= qg["cosine_worst5_mean"]
    assert any(ln.startswith(f"int8 quality gate on {qg['n_clips']} held-out clips") and ln.endswith("passed")
               for ln in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
