"""C code generator: IR rewrites, arena planner, emitted C, host C == tflite-micro (layer by layer).

Needs the export environment (onnx2tf + TensorFlow, tflite, tflite-micro) and the host gcc. The
slow part — one ONNX export and one onnx2tf conversion (~40 s on 2 cores) — runs once per module
on a random CP-Mobile with BatchNorm statistics calibrated on real clips (as tests/test_export.py),
so quantisation ranges are realistic and onnx2tf emits the same 43 operators as for the trained
baseline (3 PAD, 2 grouped CONV_2D, STRIDED_SLICE/MUL/CONCATENATION, MEAN, RESHAPE).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from asc_edge.codegen.emit_c import emit_model, render_model
from asc_edge.codegen.graph import build_graph
from asc_edge.codegen.host_model import HostModel, build_host_model, compare_with_oracle
from asc_edge.codegen.planner import plan_arena, plan_for_device, validate_plan
from asc_edge.errors import BudgetError, ExportError
from asc_edge.export.oracle import TflmOracle
from asc_edge.export.tflite import inspect_tflite
from asc_edge.models import build_model
from conftest import bn_calibrated_cp_mobile


@pytest.fixture(scope="module")
def tfl(clips, shared_data, tmp_path_factory):
    """One full ``export_model(..., "cmsis-nn")`` of a BN-calibrated random CP-Mobile, saved as an
    asc-edge checkpoint whose run config points at split 25 of ../shared/data."""
    from asc_edge.export.pipeline import export_model
    from asc_edge.features import get_frontend

    root = tmp_path_factory.mktemp("codegen")
    model = bn_calibrated_cp_mobile(clips["calib"][:96])
    run = root / "run"
    run.mkdir()
    torch.save({"hyper_parameters": {"model_name": "cp-mobile", "model_kwargs": {}, "labels": list(clips["labels"]),
                                     "frontend": get_frontend("dcase2024").to_dict(),
                                     "train": {"data": str(shared_data), "split": "25"}},
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, run / "model.ckpt")
    lines = []
    out = root / "export"
    report = export_model(run, "cmsis-nn", out, n_check=40, debug_clips=2, log=lines.append)
    path = out / "model_int8.tflite"
    graph = build_graph(path)
    plan = plan_for_device(graph, report["c_model"]["arena"]["pre_scratch_bytes"])
    host = HostModel(build_host_model(out / "c"), graph, plan.arena)
    return {"dir": out, "path": path, "info": inspect_tflite(path), "graph": graph, "plan": plan, "host": host,
            "oracle": TflmOracle(path), "report": report, "lines": lines, "run": run}


def test_export_pipeline_report_and_files(tfl):
    import hashlib
    import json

    out, rep, lines = tfl["dir"], tfl["report"], tfl["lines"]
    for f in ("model.onnx", "model_int8.tflite", "onnx2tf.log", "c/model.h", "c/model.c", "graph.json", "report.json"):
        assert (out / f).is_file(), f
    assert not list(out.parent.glob(".export.*"))  # temp dir renamed, nothing left behind
    # the model card: contract (frontend, input quantisation, label order), provenance, measured accuracy
    card = (out / "model_card.md").read_text()
    assert "model_card.md" not in rep["hashes"] and rep["git_commit"] and rep["training_recipe"]["split"] == "25"
    t_in = rep["tflite"]["input"]
    for needle in (f"scale {t_in['scale']:.9g}, zero point {t_in['zero_point']}", "0: " + rep["labels"][0],
                   rep["checkpoint_sha256"], rep["git_commit"], "n_fft 4096", "split 25", "not benched yet"):
        assert needle in card, needle
    disk = json.loads((out / "report.json").read_text())
    for f, h in disk["hashes"].items():
        assert hashlib.sha256((out / f).read_bytes()).hexdigest() == h
    assert disk["onnx"]["parity"]["max_abs_logit_diff"] <= 1e-4
    assert disk["data"]["n_calibration"] == 200 and disk["tflite"]["calibration"]["n_clips"] == 200
    assert 0 <= disk["accuracy"]["top1_agreement"] <= 1 and disk["accuracy"]["n_clips"] > 0
    hc = disk["c_model"]["host_check"]
    assert hc["n_equal"] == hc["n_clips"] == 40
    a = disk["c_model"]["arena"]
    assert a["lower_bound_bytes"] <= a["arena_bytes"] <= a["naive_bytes"] and a["tflm_arena_total_bytes"] > 0
    assert set(disk["timings_s"]) >= {"onnx", "tflite_convert", "codegen", "host_build", "host_check", "total"}
    text = "\n".join(lines)
    assert "ONNX parity" in text and "int8 vs float" in text and "arena plan" in text
    assert "host C == tflite-micro on 40/40 test clips" in text
    assert disk["c_model"]["files"]["model.c"] == hashlib.sha256((out / "c" / "model.c").read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ IR rewrites


def test_pad_is_folded_into_the_following_convolution(tfl):
    info, g = tfl["info"], tfl["graph"]
    pads = [o["index"] for o in info["ops"] if o["op"] == "PAD"]
    assert len(pads) == 3 and g.rewrites["pad_folded"] == pads
    assert all(L.op != "PAD" for L in g.layers)
    for p in pads:
        (L,) = [L for L in g.layers if p in L.op_indices]
        assert L.op_indices == [p, p + 1] and L.kind in ("conv", "depthwise")
        before = info["ops"][p]["inputs"][1]["values"]
        assert L.params.padding == (before[1][0], before[2][0])  # VALID conv on the padded input
        assert L.inputs[0] == info["ops"][p]["inputs"][0]["tensor"]  # reads the unpadded tensor
        assert info["ops"][p]["outputs"][0]["tensor"] not in g.tensors  # PAD output never materialised


def test_grouped_conv_becomes_depthwise(tfl):
    info, g = tfl["info"], tfl["graph"]
    assert len(info["grouped_conv"]) == 2 and g.rewrites["grouped_as_depthwise"] == info["grouped_conv"]
    for idx in info["grouped_conv"]:
        (L,) = [L for L in g.layers if idx in L.op_indices]
        c_out = info["ops"][idx]["outputs"][0]["shape"][3]
        assert L.kind == "depthwise" and L.params.ch_mult == 1
        assert L.consts["filter"].shape == (1, 3, 3, c_out)
        assert len(L.consts["multiplier"]) == c_out


def test_reshape_is_an_alias_and_multipliers_are_tflite_exact(tfl):
    from asc_edge.codegen.quant import quantize_multiplier

    g = tfl["graph"]
    (R,) = [L for L in g.layers if L.kind == "reshape"]
    assert g.tensors[R.output].alias_of == R.inputs[0] and g.root(g.output) == R.inputs[0]
    assert tfl["plan"].offsets[R.output] == tfl["plan"].offsets[R.inputs[0]]
    for L in g.layers:
        if L.kind in ("conv", "conv1x1", "depthwise"):
            m, s = L.consts["multiplier"], L.consts["shift"]
            assert np.all((m >= 2**30) & (m < 2**31)) and np.all(s <= 0)
    L0 = g.layers[0]  # re-derive one multiplier from first principles
    x, y = g.tensors[L0.inputs[0]], g.tensors[L0.output]
    assert (int(L0.consts["multiplier"][0]), int(L0.consts["shift"][0])) == quantize_multiplier(
        float(np.float32(x.scale)) * float(_filter_scales(tfl["path"], 1)[0]) / float(np.float32(y.scale)))


def _filter_scales(path, op_index):
    from asc_edge.codegen.tflite_reader import read_tflite

    m = read_tflite(path)
    return m.tensors[m.ops[op_index].inputs[1]].scales


def _with_op_replaced(path, op_name: str, new_code_name: str) -> bytes:
    import flatbuffers
    from asc_edge.codegen.tflite_reader import schema

    fb = schema()
    data = path.read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    code = getattr(fb.BuiltinOperator, op_name)
    for oc in model.operatorCodes:
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            oc.builtinCode = oc.deprecatedBuiltinCode = getattr(fb.BuiltinOperator, new_code_name)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_unsupported_operator_fails_with_operator_index_and_hint(tfl):
    reshape_idx = [o["index"] for o in tfl["info"]["ops"] if o["op"] == "RESHAPE"][0]
    bad = _with_op_replaced(tfl["path"], "RESHAPE", "SQUEEZE")
    with pytest.raises(ExportError, match=rf"operator {reshape_idx} \(SQUEEZE\): unsupported operator") as exc:
        build_graph(bad)
    assert exc.value.hint and "supported" in exc.value.hint


def test_unsupported_mean_axes_fail(tfl):
    import flatbuffers

    from asc_edge.codegen.tflite_reader import schema

    fb = schema()
    data = tfl["path"].read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    mean_idx = [o["index"] for o in tfl["info"]["ops"] if o["op"] == "MEAN"][0]
    axes_t = sg.tensors[sg.operators[mean_idx].inputs[1]]
    model.buffers[axes_t.buffer].data = np.array([1, 3], np.int32).view(np.uint8)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ExportError, match=rf"operator {mean_idx} \(MEAN\)"):
        build_graph(bytes(b.Output()))


# ------------------------------------------------------------------------------ planner


def test_plan_is_valid_and_beats_naive(tfl):
    """The layer-by-layer plan (no fusion, input outside the arena)."""
    g = tfl["graph"]
    plan = plan_arena(g)
    validate_plan(plan)
    assert plan.lower_bound <= plan.arena <= plan.naive
    assert plan.arena < 0.5 * plan.naive
    assert all(o % 16 == 0 for o in plan.offsets.values())
    assert graph_input_not_planned(g, plan)
    p4 = plan_arena(g, alignment=4)
    validate_plan(p4)
    assert p4.lower_bound == plan.lower_bound and p4.arena <= p4.naive
    # the validator catches an overlap: put two tensors that are live together at one offset
    bad = copy.deepcopy(plan)
    L = g.layers[1]
    a, b = bad.buffers[g.root(L.inputs[0])], bad.buffers[g.root(L.output)]
    b.offset = a.offset
    with pytest.raises(ExportError, match="overlap"):
        validate_plan(bad)


def test_fused_device_plan(tfl):
    """CP-Mobile baseline: its six inverted-residual blocks run fused row by row (the three with a
    residual ADD in place), which is what brings the arena under the 128 KiB SRAM (layer by layer
    it needs ~174 KB + the input); the export's host check (== tflite-micro) ran on this plan."""
    g, plan = tfl["graph"], tfl["plan"]
    validate_plan(plan)
    blocks = [st for st in plan.steps if not isinstance(st, int)]
    assert len(blocks) == 6 and sum(b.in_place for b in blocks) == 3
    assert sum(len(b.layers) == 4 for b in blocks) == 3
    covered = sorted(i for st in plan.steps for i in ([st] if isinstance(st, int) else st.layers))
    assert covered == list(range(len(g.layers)))
    for b in blocks:
        assert all(t not in plan.offsets or g.root(t) not in plan.buffers for t in b.internal)
        if b.in_place:
            assert plan.offsets[b.output] == plan.offsets[b.input]
    assert plan.input_offset is not None and g.root(g.input) in plan.buffers
    layer = plan_arena(g)
    in_bytes = g.tensors[g.input].size
    assert plan.arena < 0.5 * (layer.arena + in_bytes)
    assert layer.lower_bound > 128 * 1024 > plan.arena + 8 * 1024
    # where the memory goes: the step with the most live bytes, named with its layers and buffers
    pk = plan.peak()
    assert pk["live_bytes"] == sum(b["bytes"] for b in pk["buffers"]) <= plan.arena
    assert pk["layers"] and plan.to_dict()["peak"] == pk
    # overlapped buffers: the second stem conv (128x33x8 -> 64x17x32) and the shortcut's average pool
    # write their outputs over their dying inputs, starting `lead` bytes before them
    outputs = {y for y, _ in plan.overlaps.values()}
    kinds = {g.layers[st].kind for st in plan.steps if isinstance(st, int) and g.root(g.layers[st].output) in outputs}
    assert kinds == {"conv", "avgpool"}, plan.overlaps
    for x, (y, lead) in plan.overlaps.items():
        assert plan.buffers[x].offset - plan.buffers[y].offset >= lead > 0
        assert plan.buffers[x].offset < plan.buffers[y].offset + plan.buffers[y].size  # they do overlap
    plain = plan_arena(g, steps=plan.steps, input_in_arena=True, pre_scratch=plan.pre_scratch)
    assert not plain.overlaps and plan.arena <= plain.arena - 8 * 1024
    x, (y, lead) = next(iter(plan.overlaps.items()))
    short = copy.deepcopy(plan)  # one alignment step short of the kernel's lead: rejected
    short.buffers[y].offset = short.buffers[x].offset - lead + 16
    with pytest.raises(ExportError, match="overlap"):
        validate_plan(short)
    # the frontend's work area is placed beside the input at step -1, never over it
    p = plan_for_device(g, pre_scratch=44_000)
    validate_plan(p)
    lo, hi = p.pre_scratch_offset, p.pre_scratch_offset + 44_000
    assert hi <= p.input_offset or p.input_offset + in_bytes <= lo


def graph_input_not_planned(g, plan) -> bool:
    return g.input not in plan.buffers


# ------------------------------------------------------------------------------ emitted C


def test_emitted_c_is_deterministic_and_compiles(tfl, tmp_path):
    g2 = build_graph(tfl["path"])
    p2 = plan_for_device(g2, tfl["plan"].pre_scratch)
    h1, c1 = render_model(tfl["graph"], tfl["plan"])
    h2, c2 = render_model(g2, p2)
    assert h1 == h2 and c1 == c2
    emit_model(g2, p2, tmp_path / "again")
    assert (tmp_path / "again" / "model.c").read_text() == (tfl["dir"] / "c" / "model.c").read_text()
    assert f"#define ASC_MODEL_ARENA_SIZE {tfl['plan'].arena}" in h1
    for macro in ("ASC_MODEL_INPUT_SCALE", "ASC_MODEL_INPUT_ZERO_POINT", "ASC_MODEL_OUTPUT_SCALE",
                  "ASC_MODEL_OUTPUT_ZERO_POINT", "ASC_MODEL_INPUT_H", "ASC_MODEL_OUTPUT_SIZE"):
        assert f"#define {macro} " in h1
    assert "int asc_model_invoke(const int8_t *input, int8_t *output, uint8_t *arena);" in h1
    assert tfl["host"].path.is_file()  # built with -Wall -Wextra -Werror in the fixture
    assert list(tmp_path.glob("again/*.tmp*")) == []


# ------------------------------------------------------------------------------ host C == tflite-micro


def test_host_c_equals_tflite_micro_on_real_clips_every_layer(tfl, clips):
    n = 24
    rep = compare_with_oracle(tfl["oracle"], tfl["host"], clips["check"], n,
                              debug_layers=n)
    assert rep["n_clips"] == n and rep["n_equal"] == n and rep["all_equal"], rep
    assert rep["first_mismatch"] is None
    assert rep["layers_checked_clips"] == n
    # fused plan: every materialised step output (a fused block's result under its last layer)
    assert rep["layer_outputs_compared"] == n * len(tfl["plan"].steps)
    print(f"\nhost C == tflite-micro on {n}/{n} clips, {rep['layer_outputs_compared']} step outputs identical")


def test_unfused_host_c_equals_tflite_micro_every_layer(tfl, clips, tmp_path):
    """The same graph emitted layer by layer (no fusion): every layer output of every clip."""
    g = tfl["graph"]
    plan = plan_arena(g)
    emit_model(g, plan, tmp_path / "layers")
    host = HostModel(build_host_model(tmp_path / "layers"), g, plan.arena)
    n = 8
    rep = compare_with_oracle(tfl["oracle"], host, clips["check"], n, debug_layers=n)
    assert rep["all_equal"] and rep["first_mismatch"] is None
    assert rep["layer_outputs_compared"] == n * len(g.layers)


def test_mismatch_report_names_first_diverging_layer(tfl, clips, tmp_path):
    g = copy.deepcopy(tfl["graph"])
    target = [L for L in g.layers if L.kind == "conv1x1"][2]
    target.consts["bias"] = target.consts["bias"].copy()
    target.consts["bias"][3] += 100000  # one bias of one channel
    plan = plan_arena(g)  # layer by layer, so that the corrupted layer's own output is visible
    emit_model(g, plan, tmp_path / "bad")
    host = HostModel(build_host_model(tmp_path / "bad"), g, plan.arena)
    rep = compare_with_oracle(tfl["oracle"], host, clips["check"], 3)
    fm = rep["first_mismatch"]
    assert not rep["all_equal"] or fm is not None
    assert fm is not None and fm["layer"] == target.index and fm["op"] == "CONV_2D"
    assert fm["element"][-1] == 3 and fm["host"] != fm["oracle"]


# ------------------------------------------------------------------------------ pipeline


def test_over_budget_model_is_refused(tmp_path):
    from asc_edge.export.pipeline import export_model
    from asc_edge.features import get_frontend

    model = build_model("cp-mobile-wide", n_classes=10)
    ckpt = {"hyper_parameters": {"model_name": "cp-mobile-wide", "model_kwargs": {},
                                 "labels": [f"c{i}" for i in range(10)],
                                 "frontend": get_frontend("dcase2024").to_dict()},
            "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}
    torch.save(ckpt, tmp_path / "model.ckpt")
    out = tmp_path / "export"
    with pytest.raises(BudgetError, match="over the DCASE Task 1 budget"):
        export_model(tmp_path, "cmsis-nn", out, data=tmp_path / "nodata", log=lambda *a: None)
    assert not out.exists()
    with pytest.raises(ExportError, match="unknown target"):
        export_model(tmp_path, "c", out, log=lambda *a: None)


def test_cli_export_onnx_target_and_budget_error(tfl, tmp_path):
    from typer.testing import CliRunner

    from asc_edge.cli import app

    res = CliRunner().invoke(app, ["export", str(tfl["run"]), "--target", "onnx", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "ONNX parity" in res.output and (tmp_path / "o" / "model.onnx").is_file()
    assert not (tmp_path / "o" / "model_int8.tflite").exists()
    res = CliRunner().invoke(app, ["export", str(tfl["run"]), "--target", "c-code"])
    assert res.exit_code == 2 and "unknown target" in res.output


def test_dsp_variant_equals_portable_and_oracle(tfl, clips):
    """The Cortex-M4 DSP paths (ACLE intrinsics emulated on the host; the general convolution uses
    its planned im2col scratch buffer) give the same bytes as the portable build and tflite-micro."""
    dsp = HostModel(build_host_model(tfl["dir"] / "c", variant="dsp"), tfl["graph"], tfl["plan"].arena)
    rep = compare_with_oracle(tfl["oracle"], dsp, clips["check"], 6, debug_layers=1)
    assert rep["all_equal"] and rep["first_mismatch"] is None, rep
    q = tfl["oracle"].quantize(clips["check"][:3])
    for i in range(3):
        assert np.array_equal(dsp.invoke(q[i:i + 1]), tfl["host"].invoke(q[i:i + 1]))
    assert any("const asc_nn_context ctx" in ln for ln in (tfl["dir"] / "c" / "model.c").read_text().splitlines())


def test_generated_model_cross_compiles_for_cortex_m4(tfl, tmp_path):
    import shutil
    import subprocess

    from asc_edge.codegen.kernels_host import CORTEX_M4_FLAGS, NN_DIR

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    obj = tmp_path / "model.o"
    res = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{NN_DIR}", f"-I{tfl['dir'] / 'c'}", "-c",
                          str(tfl["dir"] / "c" / "model.c"), "-o", str(obj)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    size = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True).stdout
    text, data, bss = (int(v) for v in size.splitlines()[1].split()[:3])
    assert data == 0 and bss == 0  # weights and parameters are const (flash); no RAM besides the arena
    print(f"\nmodel.o for Cortex-M4: text {text:,} B (weights + code), data {data}, bss {bss}")
