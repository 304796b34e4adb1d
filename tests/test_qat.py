"""Quantisation-aware fine-tuning (asc_edge/export/qat.py): TFLite's int8 weight rounding with a
straight-through gradient, checked by hand; the fine-tuning lowers the int8-rounded model's error to the
float model and returns a plain folded float model; bad settings are one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from asc_edge.export import ExportError
from asc_edge.export.qat import Int8WeightFakeQuant, qat_finetune


def test_fake_quant_rounds_like_tflite_per_output_channel():
    w = torch.tensor([[0.5, -1.27, 0.004], [0.02, 0.0101, -0.0049]], requires_grad=True)
    q = Int8WeightFakeQuant()(w)
    # channel 0: scale 1.27/127 = 0.01 -> 50, -127, 0; channel 1: scale 0.02/127 -> 127, 64.1 -> 64, -31.1 -> -31
    s1 = 0.02 / 127
    expected = torch.tensor([[0.5, -1.27, 0.0], [127 * s1, 64 * s1, -31 * s1]])
    assert torch.allclose(q, expected, atol=1e-7)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight-through


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.BatchNorm2d(6), nn.ReLU())
        self.head = nn.Linear(6, 10)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def test_finetuning_reduces_the_int8_weight_error_and_returns_a_plain_model():
    torch.manual_seed(0)
    model = _Tiny().eval()
    with torch.no_grad():  # one large tap per filter: a coarse int8 step for all the others
        for conv in (model.body[0], model.body[3]):
            conv.weight.mul_(10.0)
            conv.weight[:, 0, 0, 0] = 40.0
        model.body[1].running_var.uniform_(0.5, 2.0)
    before_sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = np.random.default_rng(0).normal(size=(96, 1, 16, 12)).astype(np.float32)
    lines = []
    out, rep = qat_finetune(model, x, epochs=4, lr=1e-3, log=lines.append)
    assert rep["mse_int8_weights_after"] < rep["mse_int8_weights_before"]
    assert len(rep["mse_per_epoch"]) == 4 and len(lines) == 4 and "epoch 4/4" in lines[-1]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in out.modules())  # folded
    assert not any(parametrize.is_parametrized(m) for m in out.modules())
    assert not out.training and not any(p.requires_grad for p in out.parameters())
    assert all(torch.equal(v, before_sd[k]) for k, v in model.state_dict().items())  # input untouched


@pytest.mark.parametrize("kwargs,needle", [({"epochs": 0}, "qat epochs"), ({"epochs": 1, "lr": float("nan")}, "learning rate"),
                                           ({"epochs": 1, "lr": -1.0}, "learning rate")])
def test_bad_settings_are_one_clear_error(kwargs, needle):
    with pytest.raises(ExportError, match=needle):
        qat_finetune(_Tiny(), np.zeros((64, 1, 8, 8), np.float32), **kwargs)


def test_too_few_clips():
    with pytest.raises(ExportError, match="at least 32 needed"):
        qat_finetune(_Tiny(), np.zeros((8, 1, 8, 8), np.float32), epochs=1)


def test_bias_correction_removes_the_mean_output_shift_of_the_weight_rounding():
    """After bias_correct, the layer with TFLite-rounded int8 weights has the float layer's mean output
    per channel on the correction clips (borders included), and a layer without bias gets one."""
    import torch
    from torch import nn

    from asc_edge.export.qat import Int8WeightFakeQuant, bias_correct

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.mul_(7.3)  # coarse int8 steps: a visible shift
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(5 * 6 * 4, 4))
    x = torch.randn(40, 3, 6, 4) + 0.8  # a non-zero mean input, so the rounding shifts the mean output
    fixed, rep = bias_correct(model, x.numpy())
    assert rep["n_layers"] == 2 and rep["n_clips"] == 40 and rep["max_abs_shift"] > 1e-4
    c = fixed[0]
    assert c.bias is not None
    with torch.no_grad():
        want = conv(x).mean(dim=(0, 2, 3))
        wq = Int8WeightFakeQuant()(c.weight)
        got = nn.functional.conv2d(x, wq, c.bias, padding=1).mean(dim=(0, 2, 3))
        before = nn.functional.conv2d(x, wq, None, padding=1).mean(dim=(0, 2, 3))
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    assert (before - want).abs().max() > 10 * (got - want).abs().max()
    assert model[0].bias is None  # the input model is not modified


def test_adaptive_rounding_rounds_correlated_weights_up_or_down_by_the_output_error():
    """Hand-made case (AdaRound's motivating example): two weights at 0.4 of an int8 step on perfectly
    correlated inputs. Round-to-nearest drops both (output error 0.8 steps · x); the output-error
    objective rounds exactly one of them up (error 0.2 steps · x). The largest weight stays at 127."""
    from asc_edge.export.qat import adaptive_round

    lin = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.27, 0.004, 0.004]]))  # scale 0.01: 127, 0.4, 0.4 steps
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    x[:, 2] = x[:, 1]
    out, rep = adaptive_round(lin, x.numpy(), n_clips=500)
    q = (out.weight.detach()[0] / 0.01).numpy()
    assert np.allclose(q, np.round(q), atol=1e-4)
    q = np.round(q).astype(int)
    assert q[0] == 127 and sorted(q[1:].tolist()) == [0, 1], q
    assert rep["changed_fraction"] == pytest.approx(1 / 3, abs=1e-5)
    # E(0.8·0.01·x)² = 6.4e-5 · E x² vs E(0.2·0.01·x)² = 4e-6 · E x²
    assert rep["output_mse_nearest"] == pytest.approx(6.4e-5 * float((x[:, 1] ** 2).mean()), rel=1e-3)
    assert rep["output_mse_adaptive"] == pytest.approx(4e-6 * float((x[:, 1] ** 2).mean()), rel=1e-3)
    assert torch.equal(lin.weight.detach(), torch.tensor([[1.27, 0.004, 0.004]]))  # input model untouched


def test_adaptive_rounding_solver_is_exact_for_small_filters_and_a_local_minimum_otherwise():
    """``_best_rounding``: enumeration equals a brute force over all 2^k choices; coordinate descent
    (``exhaustive_max=0``) never ends worse than nearest and no single flip improves its result."""
    import itertools

    from asc_edge.export.qat import _best_rounding

    rng = np.random.default_rng(1)
    k, C = 7, 5
    A = torch.as_tensor(rng.normal(size=(40, k)))
    H = A.T @ A / 40 + 0.05 * torch.ones(k, k, dtype=torch.float64)  # correlated inputs (PSD)
    t = torch.as_tensor(rng.uniform(-20, 20, size=(C, k)))
    scale = torch.as_tensor(rng.uniform(0.5, 2.0, size=C))
    lo, near = torch.floor(t), torch.round(t)
    free = torch.ones(C, k, dtype=torch.bool)
    b = (t * scale[:, None]) @ H  # objective ‖(w − ŵ)‖²_H up to a constant

    def f(c, q):
        w = q * scale[c]
        return float(w @ H @ w - 2 * w @ b[c])

    exact = _best_rounding(lo, free, scale, H, b, near, exhaustive_max=12, max_passes=20)
    descent = _best_rounding(lo, free, scale, H, b, near, exhaustive_max=0, max_passes=20)
    for c in range(C):
        brute = min(f(c, lo[c] + torch.tensor(bits, dtype=torch.float64))
                    for bits in itertools.product((0, 1), repeat=k))
        assert f(c, exact[c]) == pytest.approx(brute, rel=1e-12, abs=1e-12)
        assert f(c, descent[c]) <= f(c, near[c]) + 1e-12
        for i in range(k):  # local minimum: flipping any one weight does not help
            flipped = descent[c].clone()
            flipped[i] = lo[c, i] + (1 - (descent[c, i] - lo[c, i]))
            assert f(c, flipped) >= f(c, descent[c]) - 1e-9


def test_adaptive_rounding_exports_the_chosen_integers_through_the_tflite_converter(tmp_path):
    """A BatchNorm'd conv / depthwise / linear model: adaptive_round puts every weight on TFLite's
    per-channel int8 grid (largest |q| = 127), lowers the summed layer-output error, and the real
    converter (onnx2tf + TFLite) stores exactly the chosen integers."""
    from asc_edge.codegen.tflite_reader import read_tflite
    from asc_edge.export.onnx import export_onnx
    from asc_edge.export.qat import _weighted, adaptive_round
    from asc_edge.export.tflite import convert_int8_tflite

    torch.manual_seed(0)
    model = _Tiny().eval()
    with torch.no_grad():
        model.body[1].running_var.uniform_(0.5, 2.0)
        model.body[4].running_mean.uniform_(-0.5, 0.5)
    x = np.random.default_rng(0).normal(size=(200, 1, 16, 12)).astype(np.float32)
    out, rep = adaptive_round(model, x, n_clips=64)
    assert rep["n_layers"] == 3 and rep["n_clips"] == 64 and rep["changed_fraction"] > 0
    assert rep["output_mse_adaptive"] < rep["output_mse_nearest"]
    chosen = []
    for layer in _weighted(out):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        q = w / (w.abs().amax(1, keepdim=True) / 127)
        assert torch.allclose(q, q.round(), atol=1e-3) and torch.all(q.abs().amax(1).round() == 127)
        chosen.append(np.sort(q.round().numpy().astype(np.int64).ravel()))
    export_onnx(out, tmp_path / "m.onnx", input_shape=(1, 1, 16, 12))
    convert_int8_tflite(tmp_path / "m.onnx", x, tmp_path / "m.tflite", tmp_path / "w")
    tfl = read_tflite((tmp_path / "m.tflite").read_bytes())
    stored = [np.sort(tfl.tensors[op.inputs[1]].data.astype(np.int64).ravel()) for op in tfl.ops
              if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(stored) == len(chosen)
    for got, want in zip(stored, chosen):
        assert np.array_equal(got, want)
