"""Output locations and termination (issue 15, classes 1 and 2).

* Output locations are checked before any work: an ``--out`` that is a file or lies under one, an
  ``evaluate --output`` that is a folder, a folder that is not writable — one line, exit 2, nothing
  written. An OSError met while working (full disk, read-only mount) is one line naming the path.
* SIGTERM during ``export`` and ``bench`` ends like Ctrl-C: one line, exit 143, no temporary folder
  left (``.<out>.tmpNNN``, ``asc_export_work_*``, ``asc_bench_*``), no onnx2tf / QEMU process left.
  The benchmark scripts do the same (``asc_edge.signals.run_script``): no Renode left, no result file.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_train_cli import assert_one_error_line, cli

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "export" / "cp-mobile-ref"
REF_CKPT = REPO / "export" / "cp-mobile-ref.ckpt"


# ------------------------------------------------------------------ 1. output locations
def _file(tmp_path: Path) -> Path:
    f = tmp_path / "a_file"
    f.write_text("x")
    return f


OUT_CASES = {
    # id: (argv builder (tmp_path, file) -> args, needles)
    "train-out-under-file": (lambda t, f: ["train", "--data", t, "--out", f / "runs"], ["--out", "is a file"]),
    "train-out-is-file": (lambda t, f: ["train", "--data", t, "--out", f], ["--out", "is a file, not a folder"]),
    "teachers-out-under-file": (lambda t, f: ["train-teachers", "--data", t, "--split", "5", "--ensemble", "sntl",
                                              "--out", f / "x"], ["--out", "is a file"]),
    "export-out-under-file": (lambda t, f: ["export", REF_CKPT, "--out", f / "deep" / "exp"], ["--out", "is a file"]),
    "export-out-is-file": (lambda t, f: ["export", REF_CKPT, "--out", f], ["--out", "not a folder"]),
    "bench-out-under-file": (lambda t, f: ["bench", REF, "--out", f / "bench"], ["--out", "is a file"]),
    "evaluate-output-is-folder": (lambda t, f: ["evaluate", REF_CKPT, "--data", t, "--output", t],
                                  ["--output", "is a folder, not a file", "metrics.json"]),
    "evaluate-output-under-file": (lambda t, f: ["evaluate", REF_CKPT, "--data", t, "--output", f / "m.json"],
                                   ["--output", "is a file"]),
    "import-out-under-file": (lambda t, f: ["import", REF_CKPT, "--out", f / "imported.ckpt"], ["--out", "is a file"]),
    "prune-out-under-file": (lambda t, f: ["prune", t, "--filters", "1,2", "--out", f / "p"], ["--out", "is a file"]),
    "flash-out-under-file": (lambda t, f: ["flash", REF, "--clip", t / "none.wav", "--out", f / "board"],
                             ["--out", "is a file"]),
}


@pytest.mark.parametrize("case", list(OUT_CASES))
def test_unwritable_output_is_one_line_before_any_work(case, tmp_path):
    f = _file(tmp_path)
    build, needles = OUT_CASES[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    line = assert_one_error_line(cli(*build(tmp_path, f)), *needles)
    assert str(tmp_path if case == "evaluate-output-is-folder" else f) in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_one_error_line(cli("bench", REF, "--out", ro / "bench"), "--out", "not writable")
    finally:
        ro.chmod(0o755)


def test_oserror_while_working_is_one_line_naming_the_path(monkeypatch, tmp_path):
    import asc_edge.train as train

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "features" / "x.npy"))

    monkeypatch.setattr(train, "evaluate_checkpoint", full_disk)
    line = assert_one_error_line(cli("evaluate", REF_CKPT, "--data", tmp_path), "No space left on device",
                                 "x.npy", "free space")
    assert "OSError" not in line


# ------------------------------------------------------------------ 2. SIGTERM
def _children_under(marker: str) -> list[psutil.Process]:
    """Processes whose command line or working folder mentions ``marker`` (our private TMPDIR), other
    than this one."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            if p.info["pid"] != os.getpid() and (any(marker in a for a in (p.info["cmdline"] or []))
                                                 or marker in (p.info["cwd"] or "")):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _alive(p: psutil.Process) -> bool:
    """Running and not a zombie (a killed process its dead parent never reaped)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _sessions_under(marker: str) -> list[psutil.Process]:
    """:func:`_children_under` plus every process in their sessions: Renode.exe runs in Renode's own
    folder, but in the session that ``run_bounded`` opened for ``renode-test`` under our TMPDIR."""
    sids = set()
    for p in _children_under(marker):
        try:
            sids.add(os.getsid(p.pid))
        except OSError:
            pass
    sids.discard(os.getsid(0))
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.info["pid"] != os.getpid() and os.getsid(p.info["pid"]) in sids:
                found.append(p)
        except (OSError, psutil.NoSuchProcess):
            pass
    return found


def _terminate_when(args: list, tmpdir: Path, program: str, timeout_s: float = 300.0, argv0: list | None = None,
                    under=_children_under):
    """Run ``asc-edge ARGS`` (or ``argv0 + ARGS``) with TMPDIR=tmpdir, send SIGTERM once a process whose
    command line holds ``program`` is among ``under(str(tmpdir))``; returns (exit code, stderr, those
    processes still alive)."""
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
    argv0 = argv0 or [sys.executable, "-m", "asc_edge"]
    proc = subprocess.Popen([*argv0, *map(str, args)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout_s:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"finished before {program} started: {out}\n{err}")
            if any(program in " ".join(p.info["cmdline"] or []) for p in under(str(tmpdir)) if p.pid != proc.pid):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{program} never started")
        seen = [p for p in under(str(tmpdir)) if p.pid != proc.pid]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    alive = {p.pid: p for p in seen + under(str(tmpdir)) if p.pid != proc.pid and _alive(p)}
    return proc.returncode, err, list(alive.values())


def _assert_terminated(rc: int, err: str, alive: list, tmpdir: Path, out: Path) -> None:
    assert rc == 128 + signal.SIGTERM, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1] == "terminated by SIGTERM: nothing was written", err
    assert "Traceback" not in err
    assert not alive, [p.info["cmdline"] for p in alive]
    # ".ses": a 51-byte session-id file that a native library of the export stack (onnxruntime /
    # ai-edge-litert) keeps in $TMPDIR by design (also in /tmp outside tests); not ours to remove
    left = [p for p in tmpdir.iterdir() if p.name != ".ses"]
    assert left == [], left
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]


def test_sigterm_during_bench_kills_qemu_and_cleans_up(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "bench_out"
    rc, err, alive = _terminate_when(["bench", REF, "--limit", "40", "--out", out], tmpdir, "qemu-system-arm")
    _assert_terminated(rc, err, alive, tmpdir, out)


def test_sigterm_during_export_kills_onnx2tf_and_cleans_up(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "exp"
    # no adaptive rounding: it runs before onnx2tf (up to minutes on a busy machine) and is not what is tested
    rc, err, alive = _terminate_when(["export", REF_CKPT, "--out", out, "--no-adaptive-rounding"], tmpdir, "onnx2tf")
    _assert_terminated(rc, err, alive, tmpdir, out)


def test_sigterm_during_a_benchmark_script_kills_renode_and_writes_nothing(tmp_path):
    """The benchmark scripts end like the CLI (``asc_edge.signals.run_script``): a ``timeout`` that stops
    one while Renode runs leaves no Renode process behind and no half-written result file."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    results = tmp_path / "rq"
    script = REPO / "benchmarks" / "renode_vs_qemu.py"
    rc, err, alive = _terminate_when([script, "--limit", "1", "--results", results], tmpdir, "Renode.exe",
                                     argv0=[sys.executable], under=_sessions_under)
    assert rc == 128 + signal.SIGTERM, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("terminated by SIGTERM: temporary files and emulators cleaned up"), err
    assert "Traceback" not in err
    assert not alive, [p.info["cmdline"] for p in alive]
    assert [p for p in tmpdir.iterdir() if p.name != ".ses"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]


# ------------------------------------------------------------------ 7. device fault messages
def test_device_fault_is_one_line_and_the_elf_survives(tmp_path, monkeypatch):
    import asc_edge.device.harness as harness
    from asc_edge.errors import DeviceError

    def faulting_run(backend, image, work, limit_s):  # a HardFault as run_qemu reports it (multi-line)
        raise DeviceError(f"{image.elf.name} exited with status 3 (HardFault); last output:\nCFSR=0x00008200\n"
                          "PC=0x08001234", hint=f"locate the faulting code: arm-none-eabi-addr2line -f -e "
                                                f"{image.elf} 0x08001234")

    default = harness._fault_elf_path(Path("bench_dsp.elf"))
    assert default.parent == Path.home() / ".cache" / "asc-edge" / "faults" or "ASC_EDGE_CACHE" in os.environ
    monkeypatch.setattr(harness, "_fault_elf_path", lambda elf: tmp_path / "cache" / "faults" / default.name)
    monkeypatch.setattr(harness, "_run_device_once", faulting_run)
    line = assert_one_error_line(cli("bench", REF, "--limit", "1", "--out", tmp_path / "b"), "HardFault",
                                 "CFSR=0x00008200 | PC=0x08001234", "addr2line")
    kept = sorted((tmp_path / "cache" / "faults").glob("*.elf"))
    assert len(kept) == 1 and str(kept[0]) in line.split("(fix:")[1]  # the hint names the kept copy
    assert kept[0].read_bytes()[:4] == b"\x7fELF"
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------ 12. build trees outside the checkout
def test_build_trees_and_caches_live_outside_the_checkout(tmp_path):
    from asc_edge.codegen import host_model, kernels_host
    from asc_edge.device import cmsis_dsp, frontend_c
    from asc_edge.paths import build_root

    for d in (kernels_host.BUILD_DIR, host_model.BUILD_DIR, frontend_c.DEFAULT_BUILD_DIR,
              cmsis_dsp.default_cache_root(), build_root()):
        assert REPO not in Path(d).resolve().parents, d
    env = {**os.environ, "ASC_EDGE_BUILD": str(tmp_path / "b")}
    out = subprocess.run([sys.executable, "-c", "from asc_edge.codegen import kernels_host as k; print(k.BUILD_DIR)"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(tmp_path / "b" / "host")


def test_bench_an_export_under_a_path_with_spaces(tmp_path):
    """make cannot take paths with spaces: bench builds from a copy of the export's C files."""
    exp = tmp_path / "my exports" / "cp mobile"
    shutil.copytree(REF, exp, ignore=shutil.ignore_patterns("bench"))
    r = cli("bench", exp, "--limit", "1", "--out", tmp_path / "bench out")
    assert r.exit_code == 0, r.output
    assert "device == reference on 1/1 clips" in r.output
    assert (tmp_path / "bench out" / "bench.json").is_file()
