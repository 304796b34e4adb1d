"""Deploying a real 44.1 kHz DCASE checkpoint end to end: SNTL-NTU 24-BCBL (no resampler, input
256 x 89) imported → exported (int8 TFLite + generated C model + C frontend at 44.1 kHz) → run on
the emulated STM32F405, bit for bit against host C frontend → tflite-micro on genuine TAU clips.

The 32 kHz family (KD-Ensemble 32-BCBL) shares every code path with the committed 32 kHz reference
export that tests/test_bench.py runs; this test covers the other frontend configuration. The
checkpoint may not be redistributed: its export lives in pytest's tmp_path only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asc_edge.models.cpjku import import_cpjku_checkpoint
from asc_edge.device.harness import bench
from asc_edge.export.pipeline import export_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
B24 = SHARED / "models" / "sntl-ntu-dcase2024" / "24-BCBL_split100_92gangv6.ckpt"
TAU = SHARED / "data" / "tau_samples"
CALIB = SHARED / "data"

pytestmark = pytest.mark.skipif(not (B24.is_file() and (TAU / "meta.csv").is_file()
                                     and (CALIB / "split_setup" / "split100.csv").is_file()),
                                reason="../shared/models/sntl-ntu-dcase2024 or ../shared/data absent")


def test_24_bcbl_44k1_exports_and_runs_bit_exact_on_device(tmp_path):
    run = import_cpjku_checkpoint(B24, tmp_path / "run", log=lambda s: None)
    ex = export_model(run, "cmsis-nn", tmp_path / "export", data=TAU, calib_data=CALIB, calib_split="100",
                      test_split="all", n_check=20, debug_clips=1, log=lambda s: None)
    assert ex["frontend"]["sample_rate"] == 44100 and ex["complexity"]["input_shape"] == [1, 1, 256, 89]
    assert ex["c_frontend"]["n_samples"] == 44100 and ex["c_frontend"]["n_frames"] == 89
    assert ex["c_model"]["host_check"]["all_equal"] and ex["c_model"]["host_check"]["n_clips"] == 20
    assert ex["data"]["calibration_root"] == str(CALIB) and ex["data"]["n_test"] == 101

    lines: list[str] = []
    rep = bench(tmp_path / "export", data=TAU, split="all", limit=3, out_dir=tmp_path / "bench",
                work_dir=tmp_path / "work", log=lines.append)
    assert rep["bit_exact"]["n_clips"] == 3 and rep["bit_exact"]["all_equal"], rep["bit_exact"]
    assert "device == reference on 3/3 clips" in "\n".join(lines)
    assert rep["memory"]["ram_bytes"] <= 128 * 1024
    assert rep["instructions"]["model_macs"] > 22_000_000
    # labels reach the report by name, in the baselines' alphabetical TAU order
    assert json.loads((tmp_path / "export" / "report.json").read_text())["labels"][0] == "airport"
