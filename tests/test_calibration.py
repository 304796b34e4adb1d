"""Activation-range calibration (asc_edge/export/calibration.py): the range rules on hand-computed
histograms, and one real conversion of a ResNorm network (RSQRT) re-quantised with percentile ranges:
full-integer, the RSQRT range capped, ranges narrowed, and the generated C equal to tflite-micro."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from asc_edge.export.calibration import METHODS, mse_range, percentile_range
from test_train_cli import tiny_run  # noqa: F401  (fixture)


def test_percentile_range_hand_computed():
    # 1000 values: 998 in bin 1 of 10 over [-1, 9] (bin width 1), one in bin 0, one in bin 9.
    h = np.zeros(10, np.int64)
    h[0], h[1], h[9] = 1, 998, 1
    # keep 99.8 %: 0.1 % = 1 value may fall off each end -> [edge of bin 1, right edge of bin 1]
    assert percentile_range(-1.0, 9.0, h, 99.8) == (0.0, 1.0)  # lower edge 0 (bin 1 starts at 0)
    # keep 100 %: the min/max edges
    assert percentile_range(-1.0, 9.0, h, 100.0) == (-1.0, 9.0)


def test_percentile_range_always_contains_zero():
    h = np.zeros(8, np.int64)
    h[5:] = 10  # all values in [2.5, 4] over [-2, 4]
    lo, hi = percentile_range(-2.0, 4.0, h, 90.0)
    assert lo == 0.0 and hi == 4.0


def test_mse_range_clips_a_lone_outlier_and_keeps_a_uniform_range():
    h = np.zeros(1000, np.int64)
    h[:100] = 100_000  # 10^7 values in [0, 1) of [0, 10)
    h[-1] = 1          # one outlier near 10
    # full range: step 10/255, rounding error 10^7 · step²/12 ≈ 1280; range [0, 1]: ≈ 13 rounding
    # + 9² = 81 for clipping the outlier -> clipped
    lo, hi = mse_range(0.0, 10.0, h)
    assert lo == 0.0 and hi < 2.0
    h[:100] = 1_000  # 10^5 values: rounding at full range ≈ 13 < 81 -> the outlier is kept
    assert mse_range(0.0, 10.0, h)[1] > 8.0
    u = np.full(100, 50, np.int64)  # uniform: clipping only adds error
    assert mse_range(-1.0, 1.0, u) == (-1.0, 1.0)


def test_empty_histogram_keeps_the_range():
    h = np.zeros(16, np.int64)
    assert percentile_range(-3.0, 5.0, h, 99.0) == (-3.0, 5.0)
    assert mse_range(-3.0, 5.0, h) == (-3.0, 5.0)


class _ResNormNet(nn.Module):
    """conv → ReLU (some channels dead: bias −10) → ResNorm over frequency → mean → linear."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, stride=2, padding=1)
        with torch.no_grad():
            self.conv.bias[:2] = -100.0  # dead after ReLU: variance 0 -> 1/sqrt(eps) = 316
        self.lam = nn.Parameter(torch.full((1, c, 1, 1), 0.1))
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        m = x.mean(dim=2, keepdim=True)
        v = ((x - m) ** 2).mean(dim=2, keepdim=True)
        x = self.lam * x + (x - m) / torch.sqrt(v + 1e-5)
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def converted(clips, tmp_path_factory):
    from asc_edge.export.onnx import export_onnx
    from asc_edge.export.tflite import convert_int8_tflite

    out = tmp_path_factory.mktemp("calib")
    torch.manual_seed(0)
    export_onnx(_ResNormNet().eval(), out / "model.onnx", check_features=clips["check"][:4])
    reps = {m: convert_int8_tflite(out / "model.onnx", clips["calib"], out / f"{m}.tflite", out / f"w_{m}",
                                   calibration=m) for m in ("minmax", "percentile")}
    return out, reps


def _rsqrt_out_scale(path) -> float:
    from asc_edge.codegen.tflite_reader import read_tflite, schema

    m = read_tflite(path.read_bytes()).model
    fb, sg = schema(), read_tflite(path.read_bytes()).model.subgraphs[0]
    codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in m.operatorCodes]
    (op,) = [op for op in sg.operators if codes[op.opcodeIndex] == fb.BuiltinOperator.RSQRT]
    return float(sg.tensors[op.outputs[0]].quantization.scale[0])


def test_percentile_requantisation_caps_rsqrt_and_narrows_ranges(converted):
    out, reps = converted
    info = reps["percentile"]["calibration"]["activation_ranges"]
    assert info["method"] == "percentile" and info["percentile"] == 99.999
    assert info["rsqrt_capped"] and info["n_narrowed"] >= 1
    assert reps["minmax"]["calibration"]["activation_ranges"]["method"] == "minmax"
    # min/max: the dead channels' 1/sqrt(1e-5) = 316 sets the RSQRT output range; capped: far smaller
    assert _rsqrt_out_scale(out / "minmax.tflite") * 255 > 300
    assert _rsqrt_out_scale(out / "percentile.tflite") < _rsqrt_out_scale(out / "minmax.tflite") / 10


def test_recalibrated_model_generates_c_equal_to_tflite_micro(converted, clips, tmp_path):
    from asc_edge.codegen.emit_c import emit_model
    from asc_edge.codegen.graph import build_graph
    from asc_edge.codegen.host_model import HostModel, build_host_model, compare_with_oracle
    from asc_edge.codegen.planner import plan_for_device
    from asc_edge.export.oracle import TflmOracle

    out, _ = converted
    graph = build_graph(out / "percentile.tflite")
    plan = plan_for_device(graph)
    emit_model(graph, plan, tmp_path / "c")
    host = HostModel(build_host_model(tmp_path / "c", variant="dsp", build_dir=tmp_path / "b"), graph, plan.arena)
    rep = compare_with_oracle(TflmOracle(out / "percentile.tflite"), host, clips["check"], debug_layers=2)
    assert rep["n_equal"] == rep["n_clips"] == len(clips["check"]), rep


def test_unknown_method_is_one_clear_error(tmp_path):
    from asc_edge.export import ExportError
    from asc_edge.export.calibration import recalibrate

    assert METHODS == ("minmax", "percentile", "mse")
    with pytest.raises(ExportError, match="unknown calibration method"):
        recalibrate(tmp_path, tmp_path / "x.npy", "kl", tmp_path / "o.tflite")


def test_export_calibrates_on_a_plain_folder_of_the_users_wavs(tiny_run, tiny_dataset, tmp_path):  # noqa: F811
    """``--calib-data FOLDER`` without meta.csv: every audio file in it, searched recursively, at any
    rate and length, calibrates (no labels); ``--calib-split`` and too few files are one error line."""
    import soundfile as sf

    from asc_edge.export.pipeline import export_model
    from test_train_cli import assert_one_error_line, cli

    root = tiny_dataset()
    folder, few = tmp_path / "my_recordings", tmp_path / "three"
    rng = np.random.default_rng(0)
    rates = [(48000, 1.5), (16000, 0.5), (44100, 1.0), (32000, 1.0)]
    for i in range(203):  # 200 (the least export calibrates on) in sub-folders, at several rates / lengths
        sr, seconds = rates[i % len(rates)]
        path = (folder / f"day{i % 3}" / f"rec{i:03d}.wav") if i < 200 else few / f"rec{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), 0.1 * rng.standard_normal(int(sr * seconds)), sr)
    rep = export_model(tiny_run, "onnx", tmp_path / "exp", data=root, calib_data=folder,
                       cache_dir=tmp_path / "cache", log=lambda *a: None)
    assert rep["data"]["calibration_root"] == str(folder)
    assert (rep["data"]["calibration_split"], rep["data"]["n_calibration"]) == ("all audio files", 200)
    # --bias-correction on the same clips: the exported biases move, the weights do not
    import onnx
    from onnx import numpy_helper

    bc = export_model(tiny_run, "onnx", tmp_path / "exp_bc", data=root, calib_data=folder, bias_correction=True,
                      cache_dir=tmp_path / "cache", log=lambda *a: None)
    assert bc["bias_correction"]["n_layers"] > 3 and bc["bias_correction"]["n_clips"] == 200
    plain, moved = ({i.name: numpy_helper.to_array(i) for i in onnx.load(str(d / "model.onnx")).graph.initializer}
                    for d in (tmp_path / "exp", tmp_path / "exp_bc"))
    biases = [k for k, v in plain.items() if v.ndim == 1 and k in moved and v.shape == moved[k].shape]
    assert any(not np.array_equal(plain[k], moved[k]) for k in biases)
    assert all(np.array_equal(plain[k], moved[k]) for k, v in plain.items() if v.ndim == 4)
    # --adaptive-rounding: every exported conv weight already sits on TFLite's per-channel int8 grid
    ar = export_model(tiny_run, "onnx", tmp_path / "exp_ar", data=root, calib_data=folder, adaptive_rounding=True,
                      cache_dir=tmp_path / "cache", log=lambda *a: None)
    assert ar["adaptive_rounding"]["n_clips"] == 200 and ar["adaptive_rounding"]["n_layers"] > 3
    for v in (numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "exp_ar" / "model.onnx")).graph.initializer):
        if v.ndim == 4:
            q = v.reshape(len(v), -1) / (np.abs(v.reshape(len(v), -1)).max(1, keepdims=True) / 127)
            assert np.allclose(q, np.round(q), atol=1e-3)
    common = ("export", tiny_run, "--target", "onnx", "--data", root, "--cache-dir", tmp_path / "cache",
              "--no-progress")
    assert_one_error_line(cli(*common, "--calib-data", folder, "--calib-split", "100", "--out", tmp_path / "e2"),
                          "has no meta.csv")
    assert_one_error_line(cli(*common, "--calib-data", few, "--out", tmp_path / "e3"),
                          str(few), "has 3 clips, 200 needed")
    assert not (tmp_path / "e2").exists() and not (tmp_path / "e3").exists()
