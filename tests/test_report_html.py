"""``asc-edge report RUN_OR_EXPORT`` → one self-contained ``report.html``.

* the full page (committed reference export + a tiny run + the committed device-bench result):
  every section drawn, every ``<img>`` a base64 PNG that PIL decodes, no script, no external URL;
* discovery: an export finds its run through its checkpoint and its ``bench/bench.json``; a run
  alone gives notes (not errors) for the export and device sections; default output path;
* bad input → one ``error: ... (fix: ...)`` line, exit status 2;
* headless Chromium (Debian's ``chromium``): the page renders to a non-blank screenshot, and a probe
  copy of the page (the report itself has no JavaScript) counts the images Chromium decoded.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from test_train_cli import assert_ok, assert_one_error_line, cli, tiny_run  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
REF_EXPORT = REPO / "export" / "cp-mobile-ref"
SECTIONS = ("Training curves", "Confusion matrix", "Per-class and per-device accuracy",
            "Complexity vs the DCASE budget", "int8 vs float", "Device: instructions per step, RAM and flash")
N_FULL_IMAGES = 7  # curves, confusion, per-class/device, budget, int8 vs float, device steps, RAM/flash


@pytest.fixture(scope="module")
def ref_bench(tmp_path_factory) -> Path:
    """The committed bench of the reference export (benchmarks/results/device_bench.json, dsp kernels)."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    path.write_text(json.dumps(json.loads((REPO / "benchmarks/results/device_bench.json").read_text())["dsp"]))
    return path


def images(page: str) -> list[Image.Image]:
    """Decode every <img>'s data-URI PNG (fails on any other kind of src)."""
    srcs = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(srcs) == len(re.findall(r"<img\b", page))
    out = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        im.load()
        assert im.format == "PNG" and im.width > 100 and im.height > 100
        out.append(im)
    return out


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    for attr, value in re.findall(r"\b(src|href)\s*=\s*[\"']([^\"']*)", page, flags=re.I):
        assert "http" not in value.lower(), (attr, value[:80])
    assert "url(" not in page.lower() and "@import" not in page.lower()


def test_full_report(tiny_run, ref_bench, tmp_path):  # noqa: F811
    out = tmp_path / "page" / "report.html"
    r = cli("report", REF_EXPORT, "--run", tiny_run, "--bench", ref_bench, "--out", out)
    assert_ok(r)
    assert f"report: {out}" in r.output
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert len(images(page)) == N_FULL_IMAGES
    for title in SECTIONS:
        assert title in page
    assert 'class="note"' not in page  # nothing missing
    assert "0.8319" in page and "0.8276" in page  # float / int8 accuracy of the reference export
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left


def test_export_finds_its_run_and_bench(tiny_run, ref_bench, tmp_path):  # noqa: F811
    exp = tmp_path / "exp"
    exp.mkdir()
    rep = json.loads((REF_EXPORT / "report.json").read_text())
    rep["checkpoint"] = str(tiny_run / "model.ckpt")
    (exp / "report.json").write_text(json.dumps(rep))
    (exp / "bench").mkdir()
    shutil.copy(ref_bench, exp / "bench" / "bench.json")
    assert_ok(cli("report", exp))
    page = (exp / "report.html").read_text(encoding="utf-8")  # default: inside the folder given
    assert str(tiny_run) in page and str(exp / "bench" / "bench.json") in page
    assert len(images(page)) == N_FULL_IMAGES and 'class="note"' not in page


def test_run_alone_notes_missing_sections(tiny_run, tmp_path):  # noqa: F811
    out = tmp_path / "run.html"
    assert_ok(cli("report", tiny_run, "--out", out))
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert len(images(page)) == 4  # curves, confusion, per-class/device, budget (from the run's complexity)
    notes = re.findall(r'<p class="note">([^<]*)</p>', page)
    assert len(notes) == 2 and "no export report" in notes[0] and "no bench report" in notes[1]


def test_reference_export_alone(tmp_path):
    out = tmp_path / "ref.html"
    assert_ok(cli("report", REF_EXPORT, "--out", out))  # its checkpoint is not in a run folder
    page = out.read_text(encoding="utf-8")
    assert len(images(page)) == 2 and page.count('class="note"') == 3
    assert not (REF_EXPORT / "report.html").exists()


def _empty(tmp_path):
    (tmp_path / "d").mkdir()
    return [tmp_path / "d"], ["not a run folder"]


def _other_json(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "report.json").write_text('{"a": 1}')
    return [tmp_path / "d"], ["neither a run's", "nor an export's"]


def _bad_json(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "report.json").write_text("{oops")
    return [tmp_path / "d"], ["cannot read the export report"]


BAD = {
    "missing": lambda tmp: ([tmp / "nope"], ["no such folder"]),
    "file": lambda tmp: ([REF_EXPORT / "report.json"], ["not a folder"]),
    "empty": _empty,
    "other_json": _other_json,
    "bad_json": _bad_json,
    "bad_bench": lambda tmp: ([REF_EXPORT, "--bench", tmp / "nope", "--out", tmp / "x.html"],
                              ["--bench", "bench.json"]),
    "bad_run": lambda tmp: ([REF_EXPORT, "--run", REF_EXPORT, "--out", tmp / "x.html"], ["--run", "not a run folder"]),
    "out_is_dir": lambda tmp: ([REF_EXPORT, "--out", tmp], ["--out", "is a folder"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_error_line(case, tmp_path):
    args, needles = BAD[case](tmp_path)
    assert_one_error_line(cli("report", *args), *needles)
    assert not list(tmp_path.rglob("*.html"))


# ------------------------------------------------------------------------------ headless Chromium
def chromium(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run headless Chromium in its own process group; the whole group is killed on timeout."""
    p = subprocess.Popen(["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                          "--no-first-run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"chromium {' '.join(args[-2:])}: no result within {timeout} s")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


# Appended to a *copy* of the page (the report has no script): after load, count the images Chromium
# decoded. One deliberately broken image shows that the probe would see a failure.
PROBE = ('<img src="data:image/png;base64,AAAA" alt="broken on purpose">'
         "<script>window.addEventListener('load',function(){var a=Array.prototype.slice.call(document.images);"
         "document.body.setAttribute('data-decoded',a.filter(function(i){return i.complete&&i.naturalWidth>0})"
         ".length+'/'+a.length);});</script>")


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian's `chromium` package is not installed (apt-get install chromium)")
def test_chromium_renders_every_image(tiny_run, ref_bench, tmp_path):  # noqa: F811
    out = tmp_path / "report.html"
    assert_ok(cli("report", REF_EXPORT, "--run", tiny_run, "--bench", ref_bench, "--out", out))
    profile = f"--user-data-dir={tmp_path / 'profile'}"

    shot = tmp_path / "shot.png"
    r = chromium(profile, f"--screenshot={shot}", "--window-size=1200,3000", out.as_uri())
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    im = Image.open(shot).convert("RGB")
    assert im.size == (1200, 3000)
    colours = im.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50, "blank screenshot"

    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    r = chromium(profile, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'data-decoded="(\d+)/(\d+)"', r.stdout)
    assert m, r.stdout[:500]
    assert (int(m.group(1)), int(m.group(2))) == (N_FULL_IMAGES, N_FULL_IMAGES + 1)
