"""`asc-edge bench`: the committed reference export on the emulated STM32F405 (QEMU), bit for bit.

Short runs (a few clips) so that CI stays fast; the full 232-clip run is README command 1 /
benchmarks. A corrupted copy of the export shows that a mismatch is found and named (first
diverging stage, layer and element), and the time limit / backend errors are clear.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asc_edge.device.harness import bench, parse_bench_output, write_clips_bin
from asc_edge.errors import DeviceError
from conftest import corrupt_block_bias

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "export" / "cp-mobile-ref"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("bench")
    lines = []
    rep = bench(REF, data=shared_data, limit=4, out_dir=out / "report", work_dir=out / "work", log=lines.append)
    return {"rep": rep, "out": out, "lines": lines}


def test_short_emulator_run_is_bit_exact_and_reports(short_run):
    rep, out = short_run["rep"], short_run["out"]
    b = rep["bit_exact"]
    assert b["n_clips"] == 4 and b["n_equal"] == 4 and b["all_equal"] and b["first_divergence"] is None
    assert "device == reference on 4/4 clips" in "\n".join(short_run["lines"])
    assert rep["accuracy"]["device"] == rep["accuracy"]["reference"]
    m = rep["memory"]
    assert m["ram_bytes"] <= 128 * 1024 and m["arena_bytes"] < m["ram_bytes"]
    assert 0 < m["stack_high_water_bytes"] < m["stack_reserved_bytes"]
    assert m["flash_bytes"] > 61_148  # the int8 weights alone
    ins = rep["instructions"]
    assert ins["model_macs"] > 29_000_000 and ins["model_mean"] > ins["model_macs"] / 2
    assert ins["frontend_mean"] > 0 and ins["model_min"] <= ins["model_mean"] <= ins["model_max"]
    steps = sum(s["instructions"] for s in ins["steps"])
    assert abs(steps - ins["model_mean"]) < 0.001 * ins["model_mean"]  # steps add up to the invoke
    by_type = sum(v["instructions"] for v in ins["by_layer_type"].values())
    assert abs(by_type - ins["model_mean"]) < 0.01 * ins["model_mean"]
    for f in ("bench.json", "bench.md", "bench_layers.png", "bench_dsp.elf", "bench_dsp.map"):
        assert (out / "report" / f).is_file()
    disk = json.loads((out / "report" / "bench.json").read_text())
    assert disk["bit_exact"]["n_equal"] == 4
    card = (out / "report" / "model_card.md").read_text()  # the export's card with the device figures
    assert "device == reference on 4/4" in card and f"RAM {m['ram_bytes']:,} B" in card and "Label order" in card


def test_instruction_counts_barely_depend_on_the_clip(short_run):
    """The model's instruction count hardly depends on the clip (the kernels' control flow is
    data-independent apart from requantisation fall-backs): < 1 % spread over the clips, which is
    why per-inference means are comparable across runs. (Run-to-run determinism of the TIM2 count
    itself is tested in tests/test_device_qemu.py.)"""
    rep = short_run["rep"]
    assert rep["instructions"]["model_max"] - rep["instructions"]["model_min"] < 0.01 * rep["instructions"]["model_mean"]


def test_model_mismatch_is_found_and_named(tmp_path, shared_data):
    dst = tmp_path / "export"
    shutil.copytree(REF, dst, ignore=shutil.ignore_patterns("bench"))
    f = dst / "c" / "model.c"
    f.write_text(corrupt_block_bias(f.read_text()))
    exp = dst
    # verify_hashes=False: the edit is deliberate (bench otherwise refuses an export whose files changed)
    rep = bench(exp, data=shared_data, limit=2, out_dir=tmp_path / "r", work_dir=tmp_path / "w", log=lambda s: None,
                verify_hashes=False)
    b = rep["bit_exact"]
    assert not b["all_equal"]
    fd = b["first_divergence"]
    assert fd["stage"] == "model" and fd["layer"] == 5 and fd["fused_layers"] == [2, 3, 4, 5]
    assert fd["element"][-1] == 0 and fd["device"] != fd["reference"]


def test_missing_or_stale_graph_record_is_a_clear_error(tmp_path):
    """bench reads the graph and plan the export wrote (graph.json): a missing one, or one recorded
    for another .tflite, is one clear error naming the file and the fix, before any build."""
    import shutil

    from asc_edge.device.harness import load_graph_record
    from asc_edge.errors import ExportError

    exp = tmp_path / "exp"
    shutil.copytree(REF, exp)
    assert load_graph_record(exp)["source_sha256"]
    rec = json.loads((exp / "graph.json").read_text())
    rec["source_sha256"] = "0" * 64
    (exp / "graph.json").write_text(json.dumps(rec))
    with pytest.raises(ExportError, match="another model_int8.tflite") as e:
        bench(exp, limit=1, log=lambda s: None)
    assert "re-run `asc-edge export" in e.value.hint
    (exp / "graph.json").unlink()
    with pytest.raises(ExportError, match="graph.json is missing"):
        bench(exp, limit=1, log=lambda s: None)


def test_frontend_mismatch_is_named():
    """A device dump whose int8 input differs from the host C frontend's is reported as a frontend
    divergence with its (mel, frame) position (the reference is built from the same tables, so a
    corrupted export cannot make the two differ; the comparison itself is checked here)."""
    from asc_edge.device.harness import _first_divergence

    ref = np.zeros((256, 65), np.int8)
    dev = ref.copy()
    dev[7, 30] = 5
    fd = _first_divergence(dev.tobytes(), ref, oracle=None, rec=None)
    assert fd["stage"] == "frontend" and fd["element"] == {"mel": 7, "frame": 30} and fd["n_diff"] == 1


def test_emulator_time_limit_is_a_clear_error(tmp_path, shared_data, monkeypatch):
    """`asc-edge bench --timeout` on a firmware that really hangs (the self-test image in its "hang"
    mode stands in for the bench image, so the outcome does not depend on how fast the machine
    is): the CLI prints one clear `error:` line naming the time limit, exit status 2, no traceback."""
    from typer.testing import CliRunner

    from asc_edge.cli import app
    from asc_edge.device import build_firmware
    from asc_edge.device import harness

    def hanging_firmware(export_dir, build_dir, **kw):
        (Path(build_dir).parent / "mode.txt").write_text("hang\n")  # the emulator runs in build_dir's parent
        return build_firmware("selftest", build_dir)

    monkeypatch.setattr(harness, "build_bench_firmware", hanging_firmware)
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["bench", str(REF), "--data", str(shared_data), "--limit", "1", "--timeout", "2",
                                   "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    first = res.output.strip().splitlines()[0]
    assert first.startswith("error: emulator did not finish within 2 s running selftest.elf"), res.output
    assert "selftest: hanging on purpose" in res.output and "Traceback" not in res.output
    assert time.monotonic() - t0 < 120


def test_bad_clip_image_is_rejected_by_the_device(tmp_path):
    from asc_edge.device.harness import build_bench_firmware
    from asc_edge.device.qemu import run_qemu

    img = build_bench_firmware(REF, tmp_path / "fw")
    write_clips_bin(tmp_path / "clips.bin", np.zeros((1, 100), np.float32), kind=0)  # wrong item size
    with pytest.raises(DeviceError) as e:
        run_qemu(img.elf, workdir=tmp_path, timeout_s=60)
    assert "bad clips.bin header" in str(e.value)


def test_parse_bench_output():
    text = "ASC-BENCH v1 items=1\nR 0 10 20 1 -2 3\nS 0 5 15\nP 0 1 2 3 4\nASC-BENCH stack 100 8192\nASC-BENCH done\n"
    r = parse_bench_output(text, n_classes=3, n_steps=2)
    assert r["done"] and r["stack"] == (100, 8192)
    assert r["items"][0]["logits"].tolist() == [1, -2, 3] and r["items"][0]["steps"] == [5, 15]


def test_cli_bench_renode_absent_points_to_qemu(tmp_path):
    """Run with a PATH that holds no renode (none is installable here; the restriction keeps the
    test meaningful on a machine that has one)."""
    code = ("from pathlib import Path; import asc_edge.device.renode as r; r.LOCAL_RENODE = Path('/nonexistent'); "
            "from asc_edge.cli import app; app()")  # nor the copy set-up unpacks into the checkout
    res = subprocess.run([sys.executable, "-c", code, "bench", str(REF), "--renode",
                          "--limit", "1"], capture_output=True, text=True, timeout=120, env={"PATH": str(tmp_path)})
    assert res.returncode == 2, res.stderr
    assert "renode" in res.stderr.lower() and "--qemu" in res.stderr
    assert "Traceback" not in res.stderr


def test_board_app_builds_images_and_classifies_under_qemu(tmp_path, shared_data):
    """`asc-edge flash`'s board image: .elf/.bin/.hex with a clip in flash; run twice under QEMU it
    prints the class and timing (on a board this goes to USART1)."""
    from asc_edge.device.flash import build_board_image
    from asc_edge.device.qemu import run_qemu

    wav = next((shared_data / "audio").glob("*.wav"))
    img = build_board_image(REF, wav, tmp_path / "board", iterations=2)
    for p in (img.elf, img.bin, img.hex, img.map):
        assert Path(p).is_file()
    assert img.ram_bytes <= 128 * 1024
    res = run_qemu(img.elf, workdir=tmp_path, timeout_s=120)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("asc-edge: class=")]
    assert len(lines) == 2 and lines[0] == lines[1]  # deterministic, instruction-exact timing
    labels = json.loads((REF / "report.json").read_text())["labels"]
    assert lines[0].split()[1].removeprefix("class=") in labels


def test_size_build_is_bit_exact_and_stores_each_weight_once(short_run, shared_data, tmp_path):
    """``export --optimize size``: the reference model's C regenerated without the pre-widened int16
    copies of the 1x1 filters and the requantisation / depthwise tables (the kernels compute them
    at run time), with the frontend's compact tables
    (half window, uint16 mel weights, one quarter-wave table for its own radix-2 FFT instead of
    CMSIS-DSP's) and built with -Os: device == reference (the host build of the same compact
    frontend + tflite-micro) on 3 clips, and the whole image fits 128 KiB of flash (issue 16)."""
    from asc_edge.export.pipeline import reemit_c

    exp = tmp_path / "size"
    rep = reemit_c(REF, exp, optimize="size")
    assert rep["optimize"] == "size" and (exp / "model_int8.tflite").read_bytes() == (REF / "model_int8.tflite").read_bytes()
    size_c, speed_c = (exp / "c" / "model.c").read_text(), (REF / "c" / "model.c").read_text()
    for table in ("_w16[", "_rq[", "_dw3["):  # the speed build's constant tables (asc_edge.codegen.speed_tables)
        assert table not in size_c and table in speed_c, table
    size = bench(exp, data=shared_data, limit=3, out_dir=tmp_path / "r", work_dir=tmp_path / "w", log=lambda s: None)
    speed = short_run["rep"]
    assert size["bit_exact"]["n_equal"] == size["bit_exact"]["n_clips"] == 3
    assert (size["firmware"]["optimize"], speed["firmware"]["optimize"]) == ("size", "speed")
    assert size["memory"]["flash_bytes"] < speed["memory"]["flash_bytes"] - 90_000
    assert size["memory"]["flash_bytes"] <= 128 * 1024
    assert "#define ASC_FE_COMPACT_TABLES 1" in (exp / "c" / "asc_frontend_config.h").read_text()
    # the image's constant tables (asc_edge.device.elfinfo.flash_objects): the quarter-wave table, no CMSIS-DSP FFT's
    from asc_edge.device.elfinfo import flash_objects

    objs = flash_objects(size["firmware"]["elf"])
    assert objs["asc_fe_cos_quarter"] == 4 * (4096 // 4 + 1) and objs["asc_fe_window_half"] == 4 * (3072 // 2 + 1)
    assert not [k for k in objs if k.startswith(("twiddleCoef", "armBitRev"))]
    assert "twiddleCoef_rfft_4096" in flash_objects(speed["firmware"]["elf"])
