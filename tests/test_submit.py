"""``asc-edge submit``: a DCASE 2024 Task 1 package from the five real SNTL-NTU 24-BCBL students
(imported) on 10 genuine TAU clips, checked with the official validator's rules re-implemented in
:func:`asc_edge.submit.validate_package` (toni-heittola/dcase2024_task1_submission_validator is not on
PyPI). To stay fast, split100 is predicted int8 (onnx2tf conversion, cached under
``<cache root>/submit-int8``: about 55 s cold, a second on later runs) and the other four splits with
the float model; ``benchmarks/submission_demo.py`` runs all five in int8. Negative tests: each
rule violation is caught.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from asc_edge.submit import HEADER, SPLITS, build_submission, evaluation_files, validate_meta, validate_package

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "models" / "sntl-ntu-dcase2024"
TAU = SHARED / "data" / "tau_samples"
LABEL = "Doe_TUW_task1_1"

pytestmark = pytest.mark.skipif(not (MODELS.is_dir() and (TAU / "meta.csv").is_file()
                                     and (SHARED / "data" / "split_setup" / "split100.csv").is_file()),
                                reason="../shared/models/sntl-ntu-dcase2024 or ../shared/data absent")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    from asc_edge.models.cpjku import import_cpjku_checkpoint

    tmp = tmp_path_factory.mktemp("submit")
    runs = [import_cpjku_checkpoint(next(MODELS.glob(f"24-BCBL_split{s}_*.ckpt")), tmp / f"split{s}", log=None).parent
            for s in SPLITS]
    ev = tmp / "eval"
    ev.mkdir()
    for p in sorted((TAU / "audio").glob("*.wav"))[::10][:10]:  # 10 clips, every scene
        (ev / p.name).symlink_to(p)
    (tmp / "partial.yaml").write_text(yaml.safe_dump({"submission": {"name": "Test system", "abbreviation": "TestSys",
        "authors": [{"lastname": "Doe", "firstname": "Jane", "email": "jane@example.org", "affiliation": "TUW",
                     "corresponding": True}]}}))
    rep = build_submission(runs, ev, LABEL, tmp / "out", meta_yaml=tmp / "partial.yaml", float_splits=(5, 10, 25, 50),
                           n_eval_files=10, calib_data=SHARED / "data", log=lambda s: None)
    return tmp / "out", rep


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a zip, passing each member through ``edit(name, text) -> (name, text)``."""
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for n in zi.namelist():
            name, text = edit(n, zi.read(n).decode())
            zo.writestr(name, text)
    return dst


def _set_field(text: str, row: int, col: int, value: str) -> str:
    """``text`` (a tab-separated output file) with data row ``row`` (1-based), column ``col`` set to ``value``."""
    lines = text.splitlines()
    fields = lines[row].split("\t")
    fields[col] = value
    lines[row] = "\t".join(fields)
    return "\n".join(lines) + "\n"


def test_package_from_real_students_passes_the_validator_rules(package):
    out, rep = package
    zpath = out / f"{LABEL}.zip"
    assert validate_package(zpath, 10) == []
    names = sorted(zipfile.ZipFile(zpath).namelist())
    assert names == sorted([f"task1/{LABEL}/{LABEL}.output.split_{s}.csv" for s in SPLITS]
                           + [f"task1/{LABEL}/{LABEL}.meta.yaml"])
    assert rep["splits"]["split100"]["precision"] == "int8" and rep["splits"]["split5"]["precision"] == "fp32"
    assert Path(rep["splits"]["split100"]["tflite"]).is_file()
    rows = list(csv.reader(io.StringIO((out / "task1" / LABEL / f"{LABEL}.output.split_100.csv").read_text()),
                           delimiter="\t"))
    assert tuple(rows[0]) == HEADER and len(rows) == 11
    assert [r[0] for r in rows[1:]] == [f"{i}.wav" for i in range(10)]
    for r in rows[1:]:
        scores = [float(v) for v in r[2:]]
        assert abs(sum(scores) - 1) < 1e-4 and r[1] == HEADER[2 + scores.index(max(scores))]
    fmap = list(csv.reader((out / "filename_map.csv").open(), delimiter="\t"))
    assert fmap[0] == ["filename", "source"] and len(fmap) == 11 and fmap[1][1].endswith(".wav")
    meta = yaml.safe_load((out / "task1" / LABEL / f"{LABEL}.meta.yaml").read_text())
    assert meta["submission"]["name"] == "Test system" and meta["submission"]["authors"][0]["firstname"] == "Jane"
    assert meta["system"]["complexity"]["total_parameters"] == 35_062
    # parameter bytes of the largest member at its precision: here a float32 one (4 B; int8 alone: 35,062 B)
    assert meta["system"]["complexity"]["memory_use"] == meta["system"]["complexity"]["total_model_size"] == 4 * 35_062
    assert meta["system"]["complexity"]["macs"] == 22_649_568
    assert json.loads((out / "submission.json").read_text())["validator"]["errors"] == []


def test_the_official_count_is_the_default(package):
    out, _ = package
    errs = validate_package(out / f"{LABEL}.zip")
    assert errs and all("incorrect number of entries [10 != 135730]" in e for e in errs)


@pytest.mark.parametrize("case, edit, expect", [
    ("header order", lambda n, t: (n, t.replace("airport\tbus", "bus\tairport", 1)), "header fields"),
    ("bad label", lambda n, t: (n.replace("task1_1", "task1_7"), t.replace("task1_1", "task1_7")),
     "submission index (fourth part) must be 1..4"),
    ("no corresponding author", lambda n, t: (n, t.replace("corresponding: true", "corresponding: false")),
     "exactly one corresponding author (0 marked)"),
    ("duplicate file", lambda n, t: (n, t + t.splitlines()[1] + "\n" if n.endswith("split_25.csv") else t),
     "duplicate file [0.wav]"),
    ("illegal scene", lambda n, t: (n, _set_field(t, 1, 1, "beach") if n.endswith(".csv") else t),
     "illegal scene label [beach] at row 1"),
    ("missing split", lambda n, t: (n.replace("split_50", "split_51"), t), "missing for split(s) 50"),
    ("abbreviation", lambda n, t: (n, t.replace("abbreviation: TestSys", "abbreviation: TestSystem11")),
     "longer than 10 characters"),
    ("score not a float", lambda n, t: (n, _set_field(t, 3, 11, "x") if n.endswith("split_5.csv") else t),
     "wrong field type at row 3 for [tram=x]"),
])
def test_each_rule_violation_is_caught(package, tmp_path, case, edit, expect):
    out, _ = package
    bad = _rewrite(out / f"{LABEL}.zip", tmp_path / "bad.zip", edit)
    errs = validate_package(bad, 10)
    assert any(expect in e for e in errs), (case, errs)


def test_meta_rules():
    assert any("'system' block missing" in e for e in validate_meta({"submission": {}, "results": {}}))
    doc = {"submission": {"label": LABEL, "name": "n", "abbreviation": "a",
                          "authors": [{"lastname": "a", "firstname": "b", "email": "c", "affiliation": "d",
                                       "corresponding": True}] * 2}}
    assert any("(2 marked)" in e for e in validate_meta(doc))


def test_evaluation_file_names(tmp_path):
    (tmp_path / "ev").mkdir()
    for i in (3, 0, 12):
        (tmp_path / "ev" / f"{i}.wav").write_bytes(b"")
    files, names, mapped = evaluation_files(tmp_path / "ev", 3)
    assert not mapped and names == ["0.wav", "12.wav", "3.wav"] and [f.name for f in files] == names
    from asc_edge.errors import DataError

    with pytest.raises(DataError, match="has 3 audio files; the package must list 135,730"):
        evaluation_files(tmp_path / "ev", 135_730)
    (tmp_path / "ev" / "sub").mkdir()
    (tmp_path / "ev" / "sub" / "3.wav").write_bytes(b"")
    with pytest.raises(DataError, match="share the index 3"):
        evaluation_files(tmp_path / "ev")


def test_cli_bad_label_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from asc_edge.cli import app

    res = CliRunner().invoke(app, ["submit", *([str(tmp_path)] * 5), "--eval", str(tmp_path), "--label",
                                   "Doe_task1_1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "error: --label: submission label 'Doe_task1_1' is wrongly constructed" in res.output
