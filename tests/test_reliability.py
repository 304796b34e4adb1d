"""Bad inputs that must end in one clear line (issue 15, classes 3 and 4).

* damaged export folders read by ``asc-edge bench``: report.json records the sha256 of every file,
  bench verifies them before building anything and names the file that changed or is missing;
  an unreadable report.json / one lacking a key is one error naming report.json;
* checkpoints: asc-edge records a content hash of the state dict in model.ckpt and checks it on load
  (bit flips, edits), a checkpoint without labels is a CheckpointError;
* numeric flags out of range (``--epochs -1``, ``--lr nan``, ``bench --limit 0`` ...) are rejected
  before any work.

Each case: exit status 2, exactly one ``error: ... (fix: ...)`` line naming the file where one is
involved, no traceback, nothing written.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from test_train_cli import assert_one_error_line, cli, tiny_run  # noqa: F401  (tiny_run: fixture)

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "export" / "cp-mobile-ref"


# ------------------------------------------------------------------ 3a. damaged export folders
def _copy_ref(tmp_path: Path) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(REF, dst, ignore=shutil.ignore_patterns("bench"))
    return dst


def _flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * where)
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


def _edit_report(exp: Path, fn) -> None:
    rep = json.loads((exp / "report.json").read_text())
    rep = fn(rep)
    (exp / "report.json").write_text(json.dumps(rep))


def _drop(key):
    def fn(rep):
        del rep[key]
        return rep
    return fn


def _damage_c_model(exp):
    f = exp / "c" / "model.c"
    f.write_text(f.read_text().replace("int32_t", "int32_t /* edited */", 1))


EXPORT_CASES = {
    # id: (damage, needles in the one error line)
    "tflite-bit-flip": (lambda e: _flip_byte(e / "model_int8.tflite"), ["model_int8.tflite", "changed since export"]),
    "tflite-missing": (lambda e: (e / "model_int8.tflite").unlink(), ["model_int8.tflite", "is missing"]),
    "model-c-edited": (_damage_c_model, ["c/model.c", "changed since export"]),
    "model-h-missing": (lambda e: (e / "c" / "model.h").unlink(), ["c/model.h", "is missing"]),
    "onnx-bit-flip": (lambda e: _flip_byte(e / "model.onnx", 0.9), ["model.onnx", "changed since export"]),
    "graph-json-truncated": (lambda e: (e / "graph.json").write_text((e / "graph.json").read_text()[:100]),
                             ["graph.json"]),
    "report-invalid-json": (lambda e: (e / "report.json").write_text('{"labels": [,]}'),
                            ["report.json", "not valid JSON"]),
    "report-truncated": (lambda e: (e / "report.json").write_text((e / "report.json").read_text()[:500]),
                         ["report.json", "not valid JSON"]),
    "report-not-utf8": (lambda e: (e / "report.json").write_bytes(b"\xff\xfe\x00garbage"), ["report.json"]),
    "report-a-list": (lambda e: (e / "report.json").write_text("[1, 2]"), ["report.json", "not a JSON object"]),
    "report-no-hashes": (lambda e: _edit_report(e, _drop("hashes")), ["report.json", "hashes"]),
    "report-no-labels": (lambda e: _edit_report(e, _drop("labels")), ["report.json", "labels"]),
    "report-no-data": (lambda e: _edit_report(e, _drop("data")), ["report.json", "data"]),
    "report-no-c-model": (lambda e: _edit_report(e, _drop("c_model")), ["report.json", "c_model"]),
    "report-hash-path-escapes": (lambda e: _edit_report(e, lambda r: {**r, "hashes": {**r["hashes"], "../x": "0"}}),
                                 ["report.json", "../x"]),
    "no-report": (lambda e: (e / "report.json").unlink(), ["no report.json"]),
}


def test_reference_export_verifies():
    """The committed reference export still matches its recorded hashes (its bench/ output is not listed)."""
    from asc_edge.device.harness import verify_export

    rep = verify_export(REF)
    assert "model_int8.tflite" in rep["hashes"] and not any(k.startswith("bench/") for k in rep["hashes"])


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_bench_damaged_export_is_one_line_before_any_build(case, tmp_path, monkeypatch):
    import asc_edge.device.harness as harness

    def no_build(*a, **k):  # verification comes first: nothing may be built or run
        raise AssertionError("bench built firmware for a damaged export")

    monkeypatch.setattr(harness, "build_bench_firmware", no_build)
    monkeypatch.setattr(harness, "_load_clips", no_build)
    exp = _copy_ref(tmp_path)
    damage, needles = EXPORT_CASES[case]
    damage(exp)
    before = sorted(p.name for p in exp.rglob("*"))
    r = cli("bench", exp, "--limit", "1", "--out", tmp_path / "bench_out")
    line = assert_one_error_line(r, *needles)
    assert "re-run `asc-edge export" in line or "asc-edge export" in line
    assert "JSONDecodeError" not in line and "KeyError" not in line
    assert sorted(p.name for p in exp.rglob("*")) == before  # nothing written into the export
    assert not (tmp_path / "bench_out").exists()


# ------------------------------------------------------------------ 3b. damaged checkpoints
def _largest_tensor_offset(ckpt: Path) -> tuple[int, int]:
    """(byte offset, size) of the largest stored tensor's raw data inside a torch.save zip."""
    with zipfile.ZipFile(ckpt) as z:
        infos = [i for i in z.infolist() if "/data/" in i.filename and i.compress_type == zipfile.ZIP_STORED]
        info = max(infos, key=lambda i: i.file_size)
    with open(ckpt, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_train_records_the_state_dict_hash(tiny_run):  # noqa: F811
    from asc_edge.checkpoint import load_checkpoint, state_dict_sha256

    ckpt = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["asc_edge"]["state_dict_sha256"] == state_dict_sha256(ckpt["state_dict"])
    assert load_checkpoint(tiny_run).labels


def test_checkpoint_without_recorded_hash_still_loads(tiny_run, tmp_path):  # noqa: F811
    from asc_edge.checkpoint import load_checkpoint

    ckpt = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=False)
    del ckpt["asc_edge"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    assert load_checkpoint(old).labels == load_checkpoint(tiny_run).labels


def _bit_flipped(tiny_run, tmp_path):  # noqa: F811
    path = tmp_path / "flipped.ckpt"
    shutil.copy(tiny_run / "model.ckpt", path)
    off, size = _largest_tensor_offset(path)
    data = bytearray(path.read_bytes())
    data[off + size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path, ["flipped.ckpt", "weights changed since training"]


def _edited(tiny_run, tmp_path):  # noqa: F811
    ckpt = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=False)
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    ckpt["state_dict"][key] = ckpt["state_dict"][key] * 1.5
    path = tmp_path / "edited.ckpt"
    torch.save(ckpt, path)
    return path, ["edited.ckpt", "weights changed since training"]


def _no_labels(tiny_run, tmp_path):  # noqa: F811
    ckpt = torch.load(tiny_run / "model.ckpt", map_location="cpu", weights_only=False)
    del ckpt["hyper_parameters"]["labels"]
    path = tmp_path / "nolabels.ckpt"
    torch.save(ckpt, path)
    return path, ["nolabels.ckpt", "no labels"]


CKPT_CASES = {"bit-flip": _bit_flipped, "edited-weights": _edited, "no-labels": _no_labels}


@pytest.mark.parametrize("case", list(CKPT_CASES))
def test_evaluate_damaged_checkpoint(case, tiny_run, tiny_dataset, tmp_path):  # noqa: F811
    root = tiny_dataset()
    path, needles = CKPT_CASES[case](tiny_run, tmp_path)
    r = cli("evaluate", path, "--data", root, "--cache-dir", tmp_path / "cache", "-o", tmp_path / "m.json")
    assert_one_error_line(r, *needles)
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("case", ["bit-flip", "no-labels"])
def test_export_damaged_checkpoint(case, tiny_run, tmp_path):  # noqa: F811
    path, needles = CKPT_CASES[case](tiny_run, tmp_path)
    r = cli("export", path, "--target", "onnx", "--out", tmp_path / "exp")
    assert_one_error_line(r, *needles)
    assert not (tmp_path / "exp").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exp")]


# ------------------------------------------------------------------ 4. numeric flags
FLAG_CASES = [
    ("train", ["--epochs", "-1"], "--epochs"),
    ("train", ["--epochs", "0"], "--epochs"),
    ("train", ["--batch-size", "0"], "--batch-size"),
    ("train", ["--lr", "nan"], "--lr"),
    ("train", ["--lr", "-0.1"], "--lr"),  # 0 is allowed (a frozen run, used by the prune test)
    ("train", ["--weight-decay", "inf"], "--weight-decay"),
    ("train", ["--warmup-epochs", "-1"], "--warmup-epochs"),
    ("train", ["--kd-lambda", "1.5"], "--kd-lambda"),
    ("train", ["--kd-tau", "0"], "--kd-tau"),
    ("train", ["--mixstyle-p", "-0.1"], "--mixstyle-p"),
    ("train", ["--dir-p", "2"], "--dir-p"),
    ("train", ["--ema-decay", "nan"], "--ema-decay"),
    ("train", ["--val-every", "0"], "--val-every"),
    ("train", ["--freq-mask", "-3"], "--freq-mask"),
    ("train", ["--devices", "0"], "--devices"),
    ("train", ["--seed", "-1"], "--seed"),
    ("train-teachers", ["--split", "5", "--ensemble", "sntl", "--epochs", "0"], "--epochs"),
    ("train-teachers", ["--split", "5", "--ensemble", "sntl", "--batch-size", "-4"], "--batch-size"),
    ("export", ["--n-calibration", "0"], "--n-calibration"),
    ("export", ["--n-check", "-1"], "--n-check"),
    ("export", ["--debug-clips", "-1"], "--debug-clips"),
    ("export", ["--qat-epochs", "-1"], "--qat-epochs"),
    ("export", ["--qat-lr", "0"], "--qat-lr"),
    ("bench", ["--limit", "-1"], "--limit"),
    ("bench", ["--limit", "0"], "--limit"),
    ("bench", ["--timeout", "-5"], "--timeout"),
    ("bench", ["--timeout", "nan"], "--timeout"),
    ("prune", ["--filters", "1,2", "--epochs", "0"], "--epochs"),
    ("prune", ["--target-params", "0"], "--target-params"),
]


@pytest.mark.parametrize("command,flags,flag", FLAG_CASES,
                         ids=[f"{c}{''.join(f)}" for c, f, _ in FLAG_CASES])
def test_numeric_flag_out_of_range(command, flags, flag, tiny_dataset, tmp_path):
    out = tmp_path / "out"
    if command in ("train", "train-teachers"):
        args = [command, "--data", tiny_dataset(), "--out", out, "--cache-dir", tmp_path / "cache", *flags]
    elif command == "bench":
        args = [command, REF, "--out", out, *flags]
    elif command == "export":
        args = [command, tmp_path / "run", "--out", out, *flags]
    else:
        args = [command, tmp_path / "run", "--out", out, *flags]
    r = cli(*args)
    line = assert_one_error_line(r, flag, "out of range")
    assert line.startswith(f"error: {flag} ")
    assert not out.exists()
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------ 9-11. import and bench frictions
SNTL = REPO.parent / "shared" / "models" / "sntl-ntu-dcase2024"


def test_import_default_folder_does_not_overwrite_another_checkpoint(tmp_path, monkeypatch):
    ckpts = sorted(SNTL.glob("*.ckpt"))[:2]
    if len(ckpts) < 2:
        pytest.skip("../shared/models/sntl-ntu-dcase2024 not present")
    for d, src in zip("ab", ckpts):
        (tmp_path / d).mkdir()
        shutil.copyfile(src, tmp_path / d / "last.ckpt")
    monkeypatch.chdir(tmp_path)
    r = cli("import", tmp_path / "a" / "last.ckpt")
    assert r.exit_code == 0, r.output
    assert cli("import", tmp_path / "a" / "last.ckpt").exit_code == 0  # the same file again: fine
    first = (tmp_path / "runs" / "imported" / "last" / "model.ckpt").read_bytes()
    line = assert_one_error_line(cli("import", tmp_path / "b" / "last.ckpt"),
                                 "runs/imported/last", "another checkpoint", "--out runs/imported/last-")
    assert "Traceback" not in line
    assert (tmp_path / "runs" / "imported" / "last" / "model.ckpt").read_bytes() == first


def test_bench_without_split_file_suggests_split_all(tiny_dataset, tmp_path):
    root = tiny_dataset()
    (root / "split_setup" / "test.csv").unlink()
    line = assert_one_error_line(cli("bench", REF, "--data", root, "--out", tmp_path / "b"), "test.csv",
                                 "--split all")
    assert "splits_dir" not in line
    assert not (tmp_path / "b").exists()


def test_evaluate_on_a_cpjku_checkpoint_points_at_import(tiny_dataset):
    ckpt = sorted(SNTL.glob("*.ckpt"))[:1]
    if not ckpt:
        pytest.skip("../shared/models/sntl-ntu-dcase2024 not present")
    line = assert_one_error_line(cli("evaluate", ckpt[0], "--data", tiny_dataset()), ckpt[0].name, "CPJKU",
                                 f"asc-edge import {ckpt[0]}")
    assert "KeyError" not in line


@pytest.mark.parametrize("flag,value", [("--tool", "jlink"), ("--target", "stm32h743")])
def test_flash_rejects_unknown_tool_or_target_before_building(flag, value, tmp_path, monkeypatch):
    import asc_edge.device.flash as flash

    def no_build(*a, **k):
        raise AssertionError("built the board image for a flag that cannot work")

    monkeypatch.setattr(flash, "build_board_image", no_build)
    assert_one_error_line(cli("flash", REF, "--clip", tmp_path / "x.wav", flag, value, "--out", tmp_path / "b"),
                          flag, value)


def test_truncated_tflite_names_the_file(tmp_path):
    from asc_edge.codegen.tflite_reader import read_tflite
    from asc_edge.export import ExportError

    bad = tmp_path / "model_int8.tflite"
    bad.write_bytes((REF / "model_int8.tflite").read_bytes()[:3000])
    with pytest.raises(ExportError) as err:
        read_tflite(bad)
    assert str(bad) in str(err.value) and "not a TFLite flatbuffer" in str(err.value)


def test_flash_build_failure_leaves_no_generated_files(tmp_path, monkeypatch):
    import asc_edge.device.flash as flash
    import asc_edge.device.harness as harness
    from asc_edge.errors import DeviceError

    def failing_build(*a, **k):
        raise DeviceError("arm-none-eabi-gcc failed", hint="see the compiler output")

    monkeypatch.setattr(harness, "build_bench_firmware", failing_build)
    wav = sorted((REPO.parent / "shared" / "data" / "audio").glob("*.wav"))[:1]
    if not wav:
        pytest.skip("../shared/data not present")
    with pytest.raises(DeviceError):
        flash.build_board_image(REF, wav[0], tmp_path / "board")
    assert not (tmp_path / "board").exists()


def test_flash_missing_clip_is_named_without_a_csv_hint(tmp_path):
    line = assert_one_error_line(cli("flash", REF, "--clip", tmp_path / "none.wav", "--out", tmp_path / "b"),
                                 "--clip", "none.wav", "not found")
    assert "CSV" not in line and not (tmp_path / "b").exists()
