"""Export chain: BatchNorm folding, ONNX parity, int8 TFLite (onnx2tf), tflite-micro oracle.

Needs the export environment (``scripts/requirements-export.txt``: onnx, onnxruntime, onnx2tf +
TensorFlow, tflite, tflite-micro), which scripts/setup.sh installs into the project venv. The slow part — one ONNX export
and one onnx2tf conversion (~35–45 s on 2 cores) — runs once per module on a randomly
initialised CP-Mobile whose BatchNorm statistics are calibrated on real clips (so activations,
and hence quantisation ranges, are realistic without training).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asc_edge.export import ExportError
from asc_edge.export.onnx import PARITY_TOL, export_onnx, fold_batchnorm, onnx_parity
from asc_edge.export.oracle import TflmOracle, dequantize_affine, quantize_affine
from asc_edge.export.tflite import (
    convert_int8_tflite,
    inspect_tflite,
    rewrite_grouped_conv_as_depthwise,
)
from asc_edge.models import build_model
from conftest import bn_calibrated_cp_mobile


@pytest.fixture(scope="module")
def exported(clips, tmp_path_factory):
    """One ONNX export + one int8 conversion for the whole module."""
    out = tmp_path_factory.mktemp("export")
    model = bn_calibrated_cp_mobile(clips["calib"][:96])
    onnx_report = export_onnx(model, out / "model.onnx", check_features=clips["check"])
    tfl_report = convert_int8_tflite(out / "model.onnx", clips["calib"], out / "model_int8.tflite", out / "work")
    print("\n" + tfl_report["ops_text"])
    return {"dir": out, "model": model, "onnx": onnx_report, "tflite": tfl_report}


# ------------------------------------------------------------------------------ BatchNorm folding


def test_fold_batchnorm_is_exact_and_leaves_source_untouched():
    torch.manual_seed(1)
    model = build_model("cp-mobile", n_classes=10).eval()
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():  # non-trivial statistics so that folding really changes weights
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=gen) * 0.5 + 1)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)
    x = torch.randn(4, 1, 256, 65, generator=gen)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 21  # source untouched
    assert folded._asc_edge_bn_folded == 21  # 20 ConvNormAct + the head conv
    with torch.no_grad():
        ref, got = model(x), folded(x)
    assert torch.allclose(ref, got, atol=1e-5, rtol=1e-5), float((ref - got).abs().max())
    assert not folded.training


def test_fold_batchnorm_without_running_stats_is_an_error():
    seq = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ExportError, match="running statistics"):
        fold_batchnorm(seq)


# ------------------------------------------------------------------------------ ONNX


def test_onnx_export_parity_on_real_clips(exported, clips):
    rep = exported["onnx"]
    assert rep["parity"]["real_features"] and rep["parity"]["n_clips"] == 50
    assert rep["parity"]["max_abs_logit_diff"] <= PARITY_TOL
    assert rep["bn_folded"] == 21
    assert rep["input_shape"] == [1, 1, 256, 65] and rep["output_shape"] == [1, 10]
    assert "BatchNormalization" not in rep["onnx_ops"] and rep["onnx_ops"]["Conv"] == 21
    assert rep["onnx_ops"].get("GlobalAveragePool") == 1  # legacy exporter, not ReduceMean
    # independent re-check on the file that was written
    again = onnx_parity(exported["dir"] / "model.onnx", exported["model"], clips["check"][:10])
    assert again["max_abs_logit_diff"] <= PARITY_TOL and again["top1_agreement"] == 1.0
    print(f"\nONNX parity: max |diff| = {rep['parity']['max_abs_logit_diff']:.3g} on 50 real clips")


def test_onnx_parity_failure_raises_and_writes_nothing(tmp_path, clips):
    model = bn_calibrated_cp_mobile(clips["calib"][:32])
    target = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="parity") as exc:
        export_onnx(model, target, check_features=clips["check"][:2], tol=-1.0)
    assert exc.value.hint
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no temp file left behind


def test_onnx_rejects_features_of_the_wrong_shape(tmp_path):
    model = build_model("cp-mobile", n_classes=10).eval()
    with pytest.raises(ExportError, match="shape"):
        export_onnx(model, tmp_path / "m.onnx", check_features=np.zeros((2, 1, 128, 65), np.float32))


# ------------------------------------------------------------------------------ int8 TFLite


def test_int8_model_is_full_integer_per_channel(exported):
    rep = exported["tflite"]
    info = inspect_tflite(rep["path"])
    assert info["input"]["dtype"] == "INT8" and info["output"]["dtype"] == "INT8"
    assert info["input"]["shape"] == [1, 256, 65, 1] and info["output"]["shape"] == [1, 10]
    assert info["non_builtin"] == [] and info["float_tensors"] == []
    weighted = info["weights"]
    assert len(weighted) == 21  # every convolution of CP-Mobile
    for w in weighted:
        assert w["weight_dtype"] == "INT8" and w["bias_dtype"] == "INT32", w
        assert w["per_channel"] and w["weight_zero_points_zero"], w
        n_out = w["weight_shape"][3 if w["op"] == "DEPTHWISE_CONV_2D" else 0]
        assert w["n_scales"] == n_out
    assert rep["calibration"]["n_clips"] == 200
    assert set(info["op_counts"]) <= {"PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D",
                                      "STRIDED_SLICE", "MUL", "CONCATENATION", "MEAN", "RESHAPE"}
    print(f"\nint8 TFLite: {info['n_ops']} ops {info['op_counts']}, grouped CONV_2D at {info['grouped_conv']}")


def test_conversion_rejects_corrupt_or_missing_onnx(tmp_path, clips):
    calib = clips["calib"]
    with pytest.raises(ExportError, match="not found"):
        convert_int8_tflite(tmp_path / "missing.onnx", calib, tmp_path / "m.tflite", tmp_path / "w")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage-not-a-protobuf" * 10)
    with pytest.raises(ExportError, match="not a valid ONNX") as exc:
        convert_int8_tflite(bad, calib, tmp_path / "m.tflite", tmp_path / "w")
    assert exc.value.hint and not (tmp_path / "m.tflite").exists()


def test_conversion_rejects_too_few_or_misshapen_calibration_clips(exported, tmp_path, clips):
    onnx_path = exported["dir"] / "model.onnx"
    with pytest.raises(ExportError, match="at least 200"):
        convert_int8_tflite(onnx_path, clips["calib"][:50], tmp_path / "m.tflite", tmp_path / "w")
    with pytest.raises(ExportError, match="shape"):
        convert_int8_tflite(onnx_path, clips["calib"][:, :, :128], tmp_path / "m.tflite", tmp_path / "w")


def test_grouped_conv_rewrite_is_bit_exact(exported, clips, tmp_path):
    src = exported["tflite"]["path"]
    data = open(src, "rb").read()
    new, rewritten = rewrite_grouped_conv_as_depthwise(data)
    before, after = inspect_tflite(data), inspect_tflite(new)
    assert rewritten == before["grouped_conv"]  # CP-Mobile: the (1, 2)- and (2, 1)-strided depthwise convs
    assert after["grouped_conv"] == [] and after["n_ops"] == before["n_ops"]
    for i in rewritten:
        op = after["ops"][i]
        assert op["op"] == "DEPTHWISE_CONV_2D" and op["options"]["depth_multiplier"] == 1
        assert op["options"]["stride"] == before["ops"][i]["options"]["stride"]
    assert all(w["per_channel"] for w in after["weights"])
    assert rewrite_grouped_conv_as_depthwise(new) == (new, [])  # idempotent
    dst = tmp_path / "dw.tflite"
    dst.write_bytes(new)
    a, b = TflmOracle(src), TflmOracle(dst)
    q = a.quantize(clips["check"][:20])
    assert np.array_equal(a.invoke(q), b.invoke(q))
    for k in range(2):
        ia, ib = a.intermediates(q[k:k + 1]), b.intermediates(q[k:k + 1])
        assert all(np.array_equal(x["data"], y["data"]) for x, y in zip(ia, ib))
    print(f"\ngrouped CONV_2D ops {rewritten} -> DEPTHWISE_CONV_2D: bit-identical on 20 clips")


def test_inspect_rejects_non_flatbuffer(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\x00" * 64)
    with pytest.raises(ExportError, match="not a TFLite flatbuffer"):
        inspect_tflite(p)


# ------------------------------------------------------------------------------ oracle


def test_quantize_rounds_half_away_from_zero_and_clamps():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 1000.0, -1000.0], np.float32)
    q = quantize_affine(x, 1.0, 0)
    assert q.tolist() == [1, 2, 3, -1, -2, -3, 0, 127, -128]
    assert quantize_affine(np.float32(0.25), 0.5, -3).item() == -2  # 0.5 rounds away from zero, + zp
    assert np.allclose(dequantize_affine(np.array([-3, 7], np.int8), 0.5, -3), [0.0, 5.0])


def test_oracle_runs_real_clips_and_agrees_with_float(exported, clips):
    oracle = TflmOracle(exported["tflite"]["path"], arena_size=512 * 1024)
    scale, zp = oracle.input_quant
    assert scale > 0 and -128 <= zp <= 127
    x = clips["check"][:20]
    q_in = oracle.quantize(x)
    assert q_in.dtype == np.int8 and q_in.shape == (20, 256, 65, 1)
    assert np.array_equal(oracle.quantize(x[0]), q_in[:1])
    q_logits = oracle.invoke(q_in)
    assert q_logits.dtype == np.int8 and q_logits.shape == (20, 10)
    assert oracle.invoke(q_in[0]).shape == (10,)
    assert np.array_equal(oracle.invoke(q_in[:1]), q_logits[0])  # deterministic, stateless
    with torch.no_grad():
        ref = exported["model"](torch.from_numpy(x)).numpy()
    deq = oracle.dequantize(q_logits)
    agree = int((deq.argmax(1) == ref.argmax(1)).sum())
    print(f"\nint8 (tflite-micro) vs float top-1 agreement: {agree}/20, "
          f"max |logit diff| {np.abs(deq - ref).max():.4f} (float logits span {np.ptp(ref):.3f})")
    assert agree >= 12  # most clips; the number itself is what the report shows


def test_oracle_intermediates_and_arena(exported, clips):
    oracle = TflmOracle(exported["tflite"]["path"])
    q = oracle.quantize(clips["check"][0])
    inter = oracle.intermediates(q)
    assert len(inter) == exported["tflite"]["n_ops"]
    assert [t["op_index"] for t in inter] == list(range(len(inter)))
    assert np.array_equal(inter[-1]["data"].reshape(-1), oracle.invoke(q))  # same kernels, same result
    assert inter[1]["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D") and inter[1]["data"].dtype == np.int8
    usage = oracle.arena_usage()
    assert usage["total"] == usage["head"] + usage["tail"] and 50_000 < usage["total"] < 512 * 1024
    print(f"\ntflite-micro arena: {usage['total']:,} bytes (head {usage['head']:,}, tail {usage['tail']:,})")
    with pytest.raises(ExportError, match="arena"):
        TflmOracle(exported["tflite"]["path"], arena_size=16 * 1024)


def test_oracle_equals_tensorflow_builtin_ref_kernels(exported, clips):
    """Cross-check of the oracle itself: TF's reference kernels (BUILTIN_REF) give the same bytes,
    outputs and every intermediate (TF's default/XNNPACK kernels do not; never the oracle)."""
    import warnings

    import tensorflow as tf

    path = exported["tflite"]["path"]
    oracle = TflmOracle(path)
    q = oracle.quantize(clips["check"][:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation notice
        ref = tf.lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    i_in, i_out = ref.get_input_details()[0]["index"], ref.get_output_details()[0]["index"]
    for k in range(len(q)):
        ref.set_tensor(i_in, q[k:k + 1])
        ref.invoke()
        assert np.array_equal(ref.get_tensor(i_out).reshape(-1), oracle.invoke(q[k]))
    for t in oracle.intermediates(q[-1:]):  # the TF interpreter still holds clip 4's tensors
        assert np.array_equal(ref.get_tensor(t["tensor"]).reshape(-1), t["data"].reshape(-1)), t["op_index"]


def test_oracle_rejects_bad_input(exported):
    oracle = TflmOracle(exported["tflite"]["path"])
    with pytest.raises(ExportError, match="int8"):
        oracle.invoke(np.zeros((1, 256, 65, 1), np.float32))
    with pytest.raises(ExportError, match="shape"):
        oracle.invoke(np.zeros((1, 128, 65, 1), np.int8))
    with pytest.raises(ExportError, match="not found"):
        TflmOracle(exported["dir"] / "missing.tflite")


def test_float_tensors_only_inside_dequantize_quantize_chains():
    """Float activations are accepted between DEQUANTIZE and QUANTIZE (onnx2tf's Snake sine, which
    the code generator turns into a table) and refused anywhere else."""
    from asc_edge.export.tflite import _unenclosed_float_tensors

    def t(i, dtype, name=None):
        return {"tensor": i, "dtype": dtype, "const": False, "name": name or f"t{i}"}

    def info(ops, out=3):
        return {"ops": [{"op": o, "inputs": ins, "outputs": outs} for o, ins, outs in ops],
                "input": t(0, "INT8"), "output": t(out, "INT8")}

    chain = [("DEQUANTIZE", [t(0, "INT8")], [t(1, "FLOAT32")]), ("SIN", [t(1, "FLOAT32")], [t(2, "FLOAT32")]),
             ("QUANTIZE", [t(2, "FLOAT32")], [t(3, "INT8")])]
    assert _unenclosed_float_tensors(info(chain)) == []
    leak = chain[:2] + [("ADD", [t(2, "FLOAT32"), t(0, "INT8")], [t(3, "INT8")])]  # int8 op reads a float
    assert _unenclosed_float_tensors(info(leak)) == ["t2"]
    mixed = [("MUL", [t(0, "INT8"), t(1, "FLOAT32")], [t(2, "FLOAT32")]),  # float op reads an int8 activation
             ("QUANTIZE", [t(2, "FLOAT32")], [t(3, "INT8")])]
    assert "t2" in _unenclosed_float_tensors(info(mixed))
    float_out = chain[:2]
    assert _unenclosed_float_tensors({**info(float_out), "output": t(2, "FLOAT32")}) == ["t2"]
