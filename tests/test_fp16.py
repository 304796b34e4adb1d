"""fp16 export (`asc-edge export --precision fp16`, issue 14): weights stored as IEEE half, float32
kernels (firmware/nn_f32, CMSIS-DSP), the C checked against ONNX Runtime with the same fp16-rounded
weights, and the device build equal to the host build bit for bit."""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from asc_edge.cli import app
from asc_edge.codegen.float_c import (CMSIS_DSP_F32_SOURCES, F32_DIR, HOST_FLOAT_CFLAGS, HostFloatModel,
                                      build_float_graph, build_host_float_model, emit_float_model,
                                      fp16_reference_onnx)
from asc_edge.codegen.kernels_host import build_shared_library
from asc_edge.device.cmsis_dsp import ensure_cmsis_dsp, include_dirs
from asc_edge.errors import ExportError
from asc_edge.export.onnx import export_onnx
from test_train_cli import tiny_run  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """firmware/nn_f32 + its CMSIS-DSP sources as a host library (the flags of the model build)."""
    root = ensure_cmsis_dsp()
    lib = build_shared_library("asc_nn_f32_test", [F32_DIR / "asc_nn_f32.c", *[root / s for s in CMSIS_DSP_F32_SOURCES]],
                               [F32_DIR, *include_dirs(root)], [*HOST_FLOAT_CFLAGS, "-lm"],
                               build_dir=tmp_path_factory.mktemp("f32"))
    return C.CDLL(str(lib))


def test_every_half_expands_exactly(kernels):
    """asc_f32_from_f16 on all 65,536 bit patterns equals NumPy's float16 → float32 (NaNs stay NaN
    with their sign)."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    out = np.zeros(bits.size, np.float32)
    kernels.asc_f32_from_f16(C.c_void_p(bits.ctypes.data), C.c_void_p(out.ctypes.data), C.c_int32(bits.size))
    want = bits.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    assert nan.sum() == 2 * 1023 and np.isnan(out[nan]).all()
    assert np.array_equal(np.signbit(out[nan]), np.signbit(want[nan]))
    assert np.array_equal(out[~nan].view(np.uint32), want[~nan].view(np.uint32))


def test_round_trip_through_the_generated_tables(kernels, tmp_path):
    """fp16 round trip: the generator's weight table, expanded by the kernel, is the float32 weight
    rounded to the nearest half (ties to even), subnormal halves included."""
    from asc_edge.codegen.float_c import _f16_array, fp16_round

    w = np.array([0.1, -2.5e-6, 1e-7, 65504.0, 3.0e-5, -0.33325195, 1.0 + 2 ** -11], np.float32)
    text = _f16_array("t", w)
    bits = np.array([int(v, 16) for v in text.split("{")[1].split("}")[0].replace(",", " ").split()], np.uint16)
    out = np.zeros(w.size, np.float32)
    kernels.asc_f32_from_f16(C.c_void_p(bits.ctypes.data), C.c_void_p(out.ctypes.data), C.c_int32(w.size))
    assert np.array_equal(out, fp16_round(w))
    assert out[6] == 1.0  # 1 + 2^-11 is a tie: rounds to the even half, 1.0
    assert out[2] == np.float32(np.float16(1e-7)) and out[2] != 0  # a subnormal half survives


def test_asc_expf(kernels):
    """asc_expf: relative error < 2e-7 against float64 over the normal range; +inf above 88.72, 0
    below -103.97, NaN stays NaN."""
    f = kernels.asc_expf
    f.argtypes, f.restype = [C.c_float], C.c_float
    x = np.linspace(-87.0, 88.7, 20001, dtype=np.float32)
    got = np.array([f(float(v)) for v in x], np.float64)
    rel = np.abs(got - np.exp(x.astype(np.float64))) / np.exp(x.astype(np.float64))
    assert rel.max() < 2e-7, rel.max()
    assert f(0.0) == 1.0 and f(89.0) == np.inf and f(-104.0) == 0.0 and np.isnan(f(float("nan")))


class OpZoo(nn.Module):
    """Every operator the fp16 kernels cover, on a (1, 1, 24, 20) input."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.grouped = nn.Conv2d(8, 8, (3, 1), padding=(1, 0), groups=2)
        self.pw = nn.Conv2d(16, 12, 1)
        self.alpha = nn.Parameter(torch.linspace(0.5, 1.5, 12).view(1, 12, 1, 1))
        self.gate = nn.Conv2d(12, 12, 1)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))                                 # Conv, Relu
        y = self.dw(x)                                               # depthwise (in place)
        y = torch.clamp(self.grouped(y), -1.0, 1.0)                  # grouped conv, Clip
        z = self.pw(torch.cat([x, y], 1))                            # Concat, pointwise Conv
        z = z + torch.sin(self.alpha * z) ** 2 / self.alpha          # Snake: Mul, Sin, Pow, Div, Add
        g = torch.sigmoid(self.gate(nn.functional.avg_pool2d(z, 2)))  # AveragePool, Sigmoid
        z = z * nn.functional.interpolate(g, scale_factor=2.0)       # Resize (nearest)
        z = nn.functional.max_pool2d(z, 2)                            # MaxPool
        m = z.mean(dim=(2, 3), keepdim=True)
        z = (z - m) / torch.sqrt(((z - m) ** 2).mean(dim=(1, 2, 3), keepdim=True) + 1e-5)  # Sub, Sqrt, ReduceMean
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(z, 1), 1))  # GlobalAveragePool, Gemm


def _host_vs_onnxruntime(model, shape, tmp_path, n: int = 3) -> tuple[dict, float]:
    import onnxruntime as ort

    path = tmp_path / "m.onnx"
    rep = export_onnx(model.eval(), path, input_shape=shape)
    graph, plan, _ = emit_float_model(path, tmp_path / "c", pre_scratch=4096)
    root = ensure_cmsis_dsp()
    host = HostFloatModel(build_host_float_model(tmp_path / "c", root, include_dirs(root), build_dir=tmp_path / "b"),
                          graph.tensors[graph.input].numel, graph.tensors[graph.output].numel, plan.arena)
    sess = ort.InferenceSession(str(fp16_reference_onnx(path, tmp_path / "ref.onnx")), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(n):
        x = rng.standard_normal(shape).astype(np.float32)
        ref = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
        worst = max(worst, float(np.abs(host.invoke(x) - ref).max() / max(1.0, np.abs(ref).max())))
    return rep["onnx_ops"], worst


def test_every_operator_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    ops, worst = _host_vs_onnxruntime(OpZoo(), (1, 1, 24, 20), tmp_path)
    for op in ("Conv", "Relu", "Clip", "Concat", "Mul", "Sin", "Pow", "Div", "Add", "AveragePool", "Sigmoid",
               "Resize", "MaxPool", "ReduceMean", "Sub", "Sqrt", "GlobalAveragePool", "Gemm"):
        assert op in ops, op  # the model exercises what it claims to
    assert worst < 1e-5, worst


@pytest.mark.parametrize("name,shape", [("cp-mobile", (1, 1, 256, 65)),
                                        ("ghost-bcres2net-snake-small", (1, 1, 288, 65))])
def test_report_models_match_onnxruntime(name, shape, tmp_path):
    """The two models compression.md runs in fp16, untrained (random weights), host C vs ONNX
    Runtime; and the weights are 2 bytes each."""
    from asc_edge.models import build_model

    torch.manual_seed(0)
    _, worst = _host_vs_onnxruntime(build_model(name), shape, tmp_path, n=2)
    assert worst < 1e-5, worst
    graph = build_float_graph(tmp_path / "m.onnx")
    assert 0.95 * sum(p.numel() for p in build_model(name).parameters()) < graph.n_params
    assert (tmp_path / "c" / "model.c").read_text().count("static const uint16_t") > 10


def test_unsupported_operator_is_one_clear_error(tmp_path):
    class Tanh(nn.Module):
        def forward(self, x):
            return torch.tanh(x)

    export_onnx(Tanh(), tmp_path / "t.onnx", input_shape=(1, 1, 4, 4))
    with pytest.raises(ExportError, match=r"\(Tanh\): operator not supported by the fp16 C kernels") as e:
        build_float_graph(tmp_path / "t.onnx")
    assert "export int8 instead" in e.value.hint


@pytest.mark.parametrize("args,msg", [(["--precision", "fp8"], "unknown precision 'fp8'"),
                                      (["--precision", "fp16", "--target", "tflite"], "--precision fp16 with --target"),
                                      (["--precision", "fp16", "--qat-epochs", "1"], "and --qat-epochs"),
                                      (["--precision", "fp16", "--bias-correction"], "and --bias-correction"),
                                      (["--precision", "fp16", "--adaptive-rounding"], "and --adaptive-rounding"),
                                      (["--precision", "fp16", "--optimize", "size"], "--optimize size with"),
                                      (["--optimize", "fast"], "--optimize fast with")])
def test_cli_refuses_bad_precision_in_one_line(args, msg, tmp_path):
    ckpt = Path(__file__).resolve().parents[1] / "export" / "cp-mobile-ref.ckpt"
    r = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(tmp_path / "x"), *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "x").exists()


def test_fp16_export_runs_bit_exact_on_the_device(renode, shared_data, tmp_path):
    """KT's Ghost-BC-Res2Net-Snake-SMALL layout at base width 8 in fp16: export (host C vs ONNX
    Runtime on 10 clips), then Renode with the float arena in external SRAM: device logits == host
    logits, every float32 bit, on 2 test clips; the weights take 2 bytes each."""
    from conftest import export_and_bench
    from test_external_ram import WIDE_KWARGS

    rep, b = export_and_bench("ghost-bcres2net-snake-small", shared_data, tmp_path, WIDE_KWARGS, n_check=10, limit=2,
                              precision="fp16", bench_kwargs={"backend": "renode", "external_ram": True})
    assert rep["precision"] == "fp16" and "tflite" not in rep
    c = rep["c_model"]
    assert c["onnxruntime_check"]["n_within_tol"] == c["onnxruntime_check"]["n_clips"] == 10
    assert c["fp16_bytes"] == 2 * c["fp16_constants"]
    assert b["precision"] == "fp16" and b["bit_exact"]["n_equal"] == 2
    assert all(isinstance(v, float) for v in b["clips"][0]["logits"])


def test_fp16_export_needs_no_calibration_clips(tiny_run, tmp_path):  # noqa: F811
    """fp16 calibrates nothing: a run whose data set has 4 clips (int8 would need 200) exports in fp16,
    host C checked against ONNX Runtime; int8 on the same run is refused for the missing clips."""
    from asc_edge.export.pipeline import export_model

    rep = export_model(tiny_run, "cmsis-nn", tmp_path / "fp16", precision="fp16", log=lambda *a: None)
    chk = rep["c_model"]["onnxruntime_check"]
    assert chk["n_clips"] >= 1 and chk["n_within_tol"] == chk["n_clips"]
    assert rep["data"]["n_calibration"] == 0 and rep["data"]["calibration_split"] is None  # none read
    assert "calibration: none (fp16" in (tmp_path / "fp16" / "model_card.md").read_text()
    assert (tmp_path / "fp16" / "c" / "model.c").is_file() and (tmp_path / "fp16" / "graph.json").is_file()
    with pytest.raises(ExportError, match="needed for calibration"):
        export_model(tiny_run, "tflite", tmp_path / "int8", log=lambda *a: None)
