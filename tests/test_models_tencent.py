"""Tencent (DCASE 2023) CP-ResNet students cp-resnet-s1 … s4: counts against the report (±3 %,
torchinfo, input 1×256×44 from the ``tencent-32k`` preset), forward shape, CLI, and one device test
(BN-calibrated random s4 → export → emulated STM32F405, bit-exact on 3 clips)."""

from __future__ import annotations

import json

import pytest
import torch

from asc_edge.complexity import measure
from asc_edge.features import get_frontend
from asc_edge.models import build_model, get_spec

# Report figures: int8 bytes (= params), MACs.
REPORT = {"cp-resnet-s1": (127_600, 28_800_000), "cp-resnet-s2": (79_900, 21_400_000),
          "cp-resnet-s3": (79_900, 21_400_000), "cp-resnet-s4": (63_500, 19_500_000)}


def test_preset_gives_256x44():
    fe = get_frontend("tencent-32k")
    assert fe.shape == (1, 256, 44)
    assert (fe.sample_rate, fe.n_fft, fe.win_length, fe.n_mels) == (32000, 2048, 2048, 256)


@pytest.mark.parametrize("name", sorted(REPORT))
def test_counts_match_report(name):
    spec = get_spec(name)
    assert spec.role == "student" and spec.frontend == "tencent-32k"
    fe = get_frontend(spec.frontend)
    c = measure(build_model(name), n_mels=fe.n_mels, frames=fe.n_frames)
    params, macs = REPORT[name]
    assert c.input_shape == (1, 1, 256, 44)
    assert abs(c.params / params - 1) <= 0.03, (c.params, params)
    assert abs(c.macs / macs - 1) <= 0.03, (c.macs, macs)
    assert c.within_budget("int8")


def test_variants_differ_only_in_first_stage_kernels():
    s1, s2, s3, s4 = (measure(build_model(f"cp-resnet-s{i}"), 256, 44) for i in (1, 2, 3, 4))
    assert s1.params - s2.params == 8 * 64 * 92       # first stage-3 conv 3×3 → 1×1
    assert s2.params - s4.params == 8 * 32 * 64       # first stage-2 conv 3×3 → 1×1
    assert (s2.params, s2.macs) == (s3.params, s3.macs)


def test_teacher_unchanged():
    c = measure(build_model("cp-resnet"), 256, 65)
    assert (c.params, c.macs) == (143_604, 126_654_676)


@pytest.mark.parametrize("name", sorted(REPORT))
def test_forward_shape(name):
    model = build_model(name, n_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 256, 44)).shape == (2, 10)


def test_cli_complexity():
    from typer.testing import CliRunner

    from asc_edge.cli import app

    r = CliRunner().invoke(app, ["complexity", "cp-resnet-s1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["model"] == "cp-resnet-s1" and d["input_shape"] == [1, 1, 256, 44]
    assert abs(d["params"] / 127_600 - 1) <= 0.03
    r = CliRunner().invoke(app, ["complexity", "--list"])
    assert r.exit_code == 0 and "cp-resnet-s4" in r.output and "tencent-32k" in r.output


def test_cp_resnet_s4_exports_and_runs_bit_exact(shared_data, tmp_path):
    """BN-calibrated random cp-resnet-s4 → export (cmsis-nn) → bench on 3 test clips, RAM ≤ 128 KiB."""
    from conftest import export_and_bench

    _, b = export_and_bench("cp-resnet-s4", shared_data, tmp_path)
    assert b["memory"]["ram_bytes"] <= 128 * 1024, b["memory"]
