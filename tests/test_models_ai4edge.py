"""AI4EDGE (DCASE 2023) students sm1, sm2, sm3: counts against the report (±3 %, torchinfo, input
1×140×8 from the ``ai4edge-8k`` preset), forward shape, CLI, and one device test (BN-calibrated
random sm1 → export → emulated STM32F405, bit-exact on 3 clips, RAM ≤ 128 KiB)."""

from __future__ import annotations

import json

import pytest
import torch

from asc_edge.complexity import measure
from asc_edge.errors import ConfigError
from asc_edge.features import get_frontend
from asc_edge.models import build_model, get_spec

# The AI4EDGE DCASE 2023 report's figures: parameters, MACs.
REPORT = {"sm1": (52_852, 25_470_000), "sm2": (68_996, 29_300_000), "sm3": (86_116, 37_000_000)}


def test_preset_gives_the_report_input():
    fe = get_frontend("ai4edge-8k")
    assert (fe.sample_rate, fe.n_fft, fe.win_length, fe.n_mels) == (8000, 2048, 2048, 140)
    assert fe.shape == (1, 140, 8)


@pytest.mark.parametrize("name", sorted(REPORT))
def test_counts_match_the_report(name):
    spec = get_spec(name)
    assert spec.frontend == "ai4edge-8k" and spec.role == "student"
    model = build_model(name)
    _, n_mels, frames = get_frontend(spec.frontend).shape
    c = measure(model, n_mels, frames)
    params, macs = REPORT[name]
    assert abs(c.params / params - 1) <= 0.03, (c.params, params)
    assert abs(c.macs / macs - 1) <= 0.03, (c.macs, macs)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 1, 140, 8)).shape == (2, 10)


def test_sm3_is_over_the_mac_budget_on_purpose():
    from asc_edge.complexity import MAX_MACS

    assert measure(build_model("sm3"), 140, 8).macs > MAX_MACS
    assert "over the 30 M MAC budget" in get_spec("sm3").source


def test_wrong_input_shape_is_one_clear_error():
    with pytest.raises(ConfigError, match="expected input"):
        build_model("sm1")(torch.randn(1, 1, 256, 65))


def test_cli_complexity():
    from typer.testing import CliRunner

    from asc_edge.cli import app

    r = CliRunner().invoke(app, ["complexity", "sm1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["model"] == "sm1" and d["input_shape"] == [1, 1, 140, 8]
    assert abs(d["params"] / 52_852 - 1) <= 0.03
    r = CliRunner().invoke(app, ["complexity", "--list"])
    assert r.exit_code == 0 and all(n in r.output for n in REPORT) and "ai4edge-8k" in r.output


def test_sm1_exports_and_runs_bit_exact(shared_data, tmp_path):
    """BN-calibrated random sm1 → export (cmsis-nn) → bench on 3 test clips, bit-exact, RAM ≤ 128 KiB."""
    from conftest import export_and_bench

    _, b = export_and_bench("sm1", shared_data, tmp_path)
    assert b["memory"]["ram_bytes"] <= 128 * 1024, b["memory"]
