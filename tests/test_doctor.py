"""``asc-edge doctor`` (issue 17): one line per tool with OK / MISSING, what needs it, the version found
and the install line; exit status 0 when the core commands have everything, 1 otherwise; never a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from asc_edge.cli import app

runner = CliRunner()


def doctor(*args):
    r = runner.invoke(app, ["doctor", *args])
    assert "Traceback" not in r.output and r.exit_code in (0, 1), f"{r.output}\n{r.exception!r}"
    return r


def line_of(output: str, name: str) -> tuple[str, str]:
    """The report line of check ``name`` and the line after it (its ``install:`` line when missing)."""
    lines = output.splitlines()
    for i, ln in enumerate(lines):
        if ln[:8].strip() in ("OK", "MISSING") and ln[9:].split("  ")[0] == name:  # status: 8 columns
            return ln, lines[i + 1] if i + 1 < len(lines) else ""
    raise AssertionError(f"no line for {name!r} in:\n{output}")


@pytest.mark.parametrize("tool", ["arm-none-eabi-gcc", "qemu-system-arm"])
def test_tools_on_this_machine_are_ok_with_their_version(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed here (scripts/setup.sh installs it)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
    r = doctor()
    line, _ = line_of(r.output, tool)
    assert line.startswith("OK ") and version.strip() in line and path in line, line


def test_exit_status_and_json_agree():
    text, as_json = doctor(), doctor("--json")
    report = json.loads(as_json.output)
    core_missing = [c["name"] for c in report["checks"] if c["core"] and c["status"] == "MISSING"]
    assert report["exit_status"] == as_json.exit_code == text.exit_code == (1 if core_missing else 0)
    assert {c["status"] for c in report["checks"]} <= {"OK", "MISSING"}
    for c in report["checks"]:
        assert c["install"], c  # every check knows how it is installed
        line, after = line_of(text.output, c["name"])
        assert line.startswith(c["status"] + " ")
        if c["status"] == "MISSING":
            assert after.strip() == f"install: {c['install']}"
    names = {c["name"] for c in report["checks"]}
    for expected in ("python", "python: torch", "python: tensorboard", "python: onnx2tf", "python: tensorflow",
                     "arm-none-eabi-gcc", "make", "qemu-system-arm", "renode", "openocd", "python: pyocd"):
        assert expected in names, expected
    assert any(n.startswith("CMSIS-DSP") for n in names)


def test_empty_path_reports_the_tools_missing_with_apt_lines(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CC", raising=False)
    r = doctor()
    assert r.exit_code == 1, r.output
    for tool, apt in [("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"),
                      ("qemu-system-arm", "apt-get install qemu-system-arm"), ("make", "apt-get install make"),
                      ("gcc", "apt-get install gcc")]:
        line, after = line_of(r.output, tool)
        assert line.startswith("MISSING ") and "not on PATH" in line, line
        assert after.strip().startswith(f"install: {apt}"), after
    summary = r.output.strip().splitlines()[-1]
    assert "missing for the core commands" in summary and "arm-none-eabi-gcc" in summary
    assert "qemu-system-arm" in summary and "bash scripts/setup.sh" in summary


def test_missing_or_wrong_python_package_gets_its_pip_line(monkeypatch):
    import asc_edge.doctor as d

    monkeypatch.setattr(d, "_dependencies", lambda: ["no-such-package-asc>=1", "numpy<1"])
    r = doctor()
    assert r.exit_code == 1
    line, after = line_of(r.output, "python: no-such-package-asc")
    assert line.startswith("MISSING ") and after.strip().endswith("-m pip install 'no-such-package-asc>=1'"), after
    line, after = line_of(r.output, "python: numpy")
    assert line.startswith("MISSING ") and "needs <1" in line and after.strip().endswith("pip install 'numpy<1'")


def test_empty_cmsis_dsp_cache_is_missing_with_its_fetch_line(monkeypatch, tmp_path):
    monkeypatch.setenv("ASC_EDGE_CACHE", str(tmp_path / "cache"))
    r = doctor()
    assert r.exit_code == 1
    line, after = line_of(r.output, "CMSIS-DSP 1.10.3 sources")
    assert line.startswith("MISSING ") and str(tmp_path / "cache") in line, line
    assert "ensure_cmsis_dsp()" in after
    assert not (tmp_path / "cache").exists()  # the doctor looks, it downloads nothing


def test_a_failing_check_is_a_line_not_a_traceback(monkeypatch):
    import asc_edge.device.qemu as qemu

    def broken():
        raise RuntimeError("simulated: qemu-system-arm --version hangs")

    monkeypatch.setattr(qemu, "qemu_info", broken)
    r = doctor()
    assert r.exit_code == 1
    line, _ = line_of(r.output, "QEMU" if shutil.which("qemu-system-arm") else "qemu-system-arm")
    assert line.startswith("MISSING ")
