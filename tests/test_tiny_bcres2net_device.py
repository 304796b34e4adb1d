"""End to end on the emulated STM32F405 for the operators the seed students need beyond CP-Mobile.

``TinyBCRes2Net`` is not a report model: it is the smallest network that contains what a
BC-Res2Net / GhostNetV2 student (KT 2024) converts to — Snake with per-channel α, β (onnx2tf
writes MUL → DEQUANTIZE → SIN → QUANTIZE → MUL → MUL → ADD: one lookup-table layer), MAX_POOL_2D, a
frequency-wise depthwise conv, the mean over frequency (MEAN over one axis), a temporal depthwise
conv + SiLU (LOGISTIC → MUL: a table), the broadcast residual ((N, 1, T, C) onto (N, F, T, C)), a
sigmoid gate from an average-pooled 1×1 conv, nearest up-sampling (RESIZE_NEAREST_NEIGHBOR),
Res2Net-style channel groups (onnx2tf: TRANSPOSE → STRIDED_SLICE → TRANSPOSE, CONCATENATION), ResNorm
(MEAN over one axis, SUB, RSQRT as a table), global mean and a linear head. Random weights, BatchNorm-free, realistic inputs (real log-mel
clips). It goes through the real chain: ONNX → onnx2tf int8 (calibrated on 200 real clips) → the
code generator → host C == tflite-micro (portable and DSP builds, every layer) → the bench firmware
(CMSIS-DSP log-mel frontend + the generated model) under QEMU == host C frontend → tflite-micro,
bit for bit, on real audio.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asc_edge.report.io import file_sha256


class Snake(nn.Module):
    """``x + sin²(αx)/β`` with learnable per-channel α, β (Ziyin et al. 2020; KT 2024 report)."""

    def __init__(self, c: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(1, c, 1, 1).uniform_(0.5, 2.0))
        self.beta = nn.Parameter(torch.empty(1, c, 1, 1).uniform_(0.5, 2.0))

    def forward(self, x):
        return x + torch.sin(self.alpha * x) ** 2 / self.beta


class ResNorm(nn.Module):
    """BC-ResNet's ResNorm ``λ·x + InstanceNorm(x)`` over frequency (per channel and frame; KT 2024
    report, after stage 3). Converts to MEAN over one axis, SUB, MUL, ADD and RSQRT (a table)."""

    def __init__(self, c: int, eps: float = 1e-5):
        super().__init__()
        self.lam = nn.Parameter(torch.full((1, c, 1, 1), 0.1))
        self.eps = eps

    def forward(self, x):
        m = x.mean(dim=2, keepdim=True)
        v = ((x - m) ** 2).mean(dim=2, keepdim=True)
        return self.lam * x + (x - m) / torch.sqrt(v + self.eps)


class TinyBCRes2Net(nn.Module):
    """Input ``(batch, 1, 256, 65)`` log-mel → ``(batch, n_classes)`` logits (see the module docstring)."""

    def __init__(self, n_classes: int = 10, c: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.snake = Snake(c)
        self.pool = nn.MaxPool2d(2)
        self.freq_dw = nn.Conv2d(c, c, (3, 1), padding=(1, 0), groups=c)
        self.time_dw = nn.Conv2d(c, c, (1, 3), padding=(0, 1), groups=c)
        self.pw = nn.Conv2d(c, c, 1)
        self.gate = nn.Conv2d(c, c, 1)
        self.res2 = nn.Conv2d(c // 2, c // 2, 3, padding=1)
        self.norm = ResNorm(c)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x):
        x = self.snake(self.stem(x))                          # (N, C, 128, 33)
        a, b = x[:, : x.shape[1] // 2], x[:, x.shape[1] // 2:]  # Res2Net-style channel groups
        x = self.pool(torch.cat([a, self.res2(b) + a], dim=1))  # (N, C, 64, 16)
        f = self.freq_dw(x)
        t = F.silu(self.time_dw(f.mean(dim=2, keepdim=True)))  # mean over frequency: (N, C, 1, 16)
        x = x + f + self.pw(t)                                # broadcast residual
        g = torch.sigmoid(self.gate(F.avg_pool2d(x, 2)))     # (N, C, 32, 8)
        x = x * F.interpolate(g, scale_factor=2, mode="nearest")
        return self.head(self.norm(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny_export(clips, shared_data, tmp_path_factory):
    """The export directory of TinyBCRes2Net, laid out as `asc-edge export` writes it."""
    from asc_edge.codegen.emit_c import emit_model
    from asc_edge.codegen.graph import build_graph
    from asc_edge.codegen.host_model import HostModel, build_host_model, compare_with_oracle
    from asc_edge.codegen.planner import plan_for_device
    from asc_edge.codegen.record import graph_record
    from asc_edge.device.frontend_c import emit_frontend_tables, work_bytes
    from asc_edge.export.onnx import export_onnx
    from asc_edge.export.oracle import TflmOracle
    from asc_edge.export.tflite import convert_int8_tflite
    from asc_edge.features import get_frontend

    out = tmp_path_factory.mktemp("tiny") / "export"
    out.mkdir()
    torch.manual_seed(0)
    model = TinyBCRes2Net().eval()
    export_onnx(model, out / "model.onnx", check_features=clips["check"][:8])
    convert_int8_tflite(out / "model.onnx", clips["calib"], out / "model_int8.tflite", out.parent / "work")
    fe = get_frontend("dcase2024")
    graph = build_graph(out / "model_int8.tflite")
    plan = plan_for_device(graph, pre_scratch=work_bytes(fe))
    emit_model(graph, plan, out / "c")
    t_in = graph.tensors[graph.input]
    emit_frontend_tables(fe, t_in.scale, t_in.zero_point, out / "c")
    (out / "graph.json").write_text(json.dumps(graph_record(graph, plan)))
    (out / "report.json").write_text(json.dumps({
        "model": "tiny-bc-res2net (test)", "labels": list(clips["labels"]), "frontend": fe.to_dict(),
        "data": {"root": str(shared_data)}, "c_model": {"arena": plan.to_dict()},
        # what `export` records and `bench` verifies first
        "hashes": {p.relative_to(out).as_posix(): file_sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}}))
    oracle = TflmOracle(out / "model_int8.tflite")
    host = {v: HostModel(build_host_model(out / "c", variant=v, build_dir=out.parent / v), graph, plan.arena)
            for v in ("portable", "dsp")}
    return {"dir": out, "graph": graph, "plan": plan, "oracle": oracle, "host": host,
            "compare": compare_with_oracle}


def test_tiny_model_uses_the_new_operators(tiny_export):
    g = tiny_export["graph"]
    kinds = [L.kind for L in g.layers]
    ops = [L.op for L in g.layers]
    assert "MUL+DEQUANTIZE+SIN+QUANTIZE+MUL+MUL+ADD" in ops or any("SIN" in o for o in ops), ops  # Snake
    assert "LOGISTIC+MUL" in ops, ops  # SiLU as one table
    for k in ("lut", "max_pool", "resize_nearest", "mean_axis", "depthwise", "fc", "avgpool", "sub", "transpose",
              "strided_slice", "concat"):
        assert k in kinds, (k, kinds)
    assert any(L.kind == "add" and g.tensors[L.inputs[1]].dims[1] == 1 for L in g.layers if len(L.inputs) == 2
               and L.inputs[1] >= 0)  # the broadcast residual
    assert tiny_export["plan"].arena <= 128 * 1024


@pytest.mark.parametrize("variant", ["portable", "dsp"])
def test_tiny_host_c_equals_tflite_micro_every_layer(tiny_export, clips, variant):
    rep = tiny_export["compare"](tiny_export["oracle"], tiny_export["host"][variant], clips["check"], 20,
                                 debug_layers=3)
    assert rep["all_equal"] and rep["first_mismatch"] is None, rep


def test_tiny_model_on_the_emulated_device_bit_exact(tiny_export, shared_data, tmp_path):
    """Real audio → CMSIS-DSP log-mel → generated model on the emulated STM32F405 (QEMU, DSP
    kernels) == host C frontend → tflite-micro, every logit byte."""
    from asc_edge.device.harness import bench

    rep = bench(tiny_export["dir"], data=shared_data, split="test", limit=4, out_dir=tmp_path / "bench",
                log=lambda *a: None)
    b = rep["bit_exact"]
    assert b["all_equal"] and b["n_equal"] == b["n_clips"] == 4, b
    assert rep["memory"]["ram_bytes"] <= 128 * 1024
