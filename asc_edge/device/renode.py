"""Run a bench firmware image on Renode's emulation of the STM32F405 (``firmware/renode/``).

The Renode side is three files: ``stm32f405.repl`` (a self-contained platform description that
matches ``firmware/board/stm32f4/stm32f405.ld``, plus a 64 MiB ``clipmem`` region at 0x60000000),
``bench.resc`` (loads the platform, the ELF and ``clips.bin``; logs USART1 to a file) and
``bench.robot`` (a Robot Framework test for ``renode-test`` that waits for ``ASC-BENCH done``
and records ``sysbus.cpu ExecutedInstructions``). :func:`run_renode` runs::

    renode-test --variable ELF:<elf> --variable CLIPS:<clips.bin> --variable OUT_DIR:<dir>
                --variable UART_TIMEOUT_S:<s> --results-dir <dir>/robot firmware/renode/bench.robot

time-bounded, and returns the USART1 text and the executed-instruction count. The image must be
built UART-only for memory input (``-DASC_BOARD_SEMIHOSTING=0 -DASC_BENCH_IO_MEMORY``): Renode
provides no semihosting host, and a bare-metal program cannot exit, so the run ends at the
``ASC-BENCH done`` line (or at a fault / error line). Nothing model-specific is parsed here; the
bench harness parses the UART lines.

Which Renode: ``renode`` on PATH, else the copy ``scripts/setup.sh`` unpacks into the checkout
(``.tools/renode/``, from ``$ASC_EDGE_RENODE`` or ``../shared/tools/renode/``). Which Python runs
``renode-test``: ``$RENODE_PYTHON`` if set, else this interpreter when it has Robot Framework (set-up
installs Renode's test requirements into the project's environment), else ``python3`` on PATH.
:func:`renode_info` reports both (``asc-edge bench --renode --check``).

Counts: ``bench.resc`` replaces TIM2 with ``asc_icount_timer.py``, whose CNT returns
``sysbus.cpu ExecutedInstructions`` (exact; Renode's own timer model advances once per time quantum),
so the firmware's per-step counts mean what they mean under QEMU ``-icount shift=0``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asc_edge.device.toolchain import run_bounded, tail
from asc_edge.errors import DeviceError

#: firmware/renode/ of this checkout.
RENODE_DIR = Path(__file__).resolve().parents[2] / "firmware" / "renode"
PLATFORM_REPL = RENODE_DIR / "stm32f405.repl"
BENCH_RESC = RENODE_DIR / "bench.resc"
BENCH_ROBOT = RENODE_DIR / "bench.robot"
RCC_MODEL = RENODE_DIR / "stm32f4_rcc.py"
ICOUNT_TIMER = RENODE_DIR / "asc_icount_timer.py"
#: Where scripts/setup.sh unpacks Renode when it is not on PATH (ignored by git).
LOCAL_RENODE = Path(__file__).resolve().parents[2] / ".tools" / "renode"

#: Where bench.resc loads clips.bin (the ``clipmem`` region of the .repl).
CLIPS_ADDRESS = 0x6000_0000
DONE_LINE = "ASC-BENCH done"

RENODE_HINT = (
    "install Renode 1.14 from its release packages (https://github.com/renode/renode/releases: "
    "renode_1.14.0_amd64.deb or the portable .tar.gz, which provide `renode` and `renode-test`), "
    "or run scripts/setup.sh with $ASC_EDGE_RENODE naming a Renode tarball or folder; "
    "or use `asc-edge bench --qemu`"
)
ROBOT_DEPS_HINT = (
    "renode-test needs Renode's test requirements in the Python it runs ($RENODE_PYTHON): "
    "<python> -m pip install -r <renode install dir>/tests/requirements.txt (scripts/setup.sh installs "
    "them into .venv)"
)

# Lines after which the bench prints nothing more (same alternatives as bench.robot).
_FAULT = re.compile(r"asc board: |HARDFAULT")
_BENCH_ERROR = re.compile(r"^ASC-BENCH error.*$", re.M)
_PC = re.compile(r"\bpc=(0x[0-9a-fA-F]{8})")
_LR = re.compile(r"\blr=(0x[0-9a-fA-F]{8})")


@dataclass(frozen=True)
class RenodeResult:
    """One Renode run: ``uart_text`` (everything the firmware sent on USART1),
    ``executed_instructions`` (``sysbus.cpu ExecutedInstructions`` when ``ASC-BENCH done`` was
    seen: every instruction since reset, startup and printing included), ``wall_s`` (host seconds),
    the ``command`` as run (its OUT_DIR is the staging directory that was then renamed to
    ``results_dir``, which holds renode-test's Robot logs and the raw outputs)."""

    uart_text: str
    executed_instructions: int
    wall_s: float
    command: list[str] = field(default_factory=list)
    results_dir: Path | None = None


@dataclass(frozen=True)
class ReplPeripheral:
    """One creating entry of a Renode platform description: variable ``name``, ``type`` (e.g.
    ``Memory.MappedMemory``), bus ``address`` and ``size`` in bytes (from a ``<addr, +size>``
    registration or a ``size:`` attribute; None when neither is given) and the other
    ``name: value`` attributes as text."""

    name: str
    type: str
    address: int | None
    size: int | None
    attributes: dict[str, str]


_ENTRY = re.compile(r"^(?P<name>\w+):\s*(?P<type>[A-Za-z_][\w.]*)\s*(?:@\s*(?P<reg>.*?))?\s*$")
_RANGE = re.compile(r"^sysbus\s*<\s*(0x[0-9A-Fa-f]+|\d+)\s*,\s*\+\s*(0x[0-9A-Fa-f]+|\d+)\s*>$")
_POINT = re.compile(r"^sysbus\s+(0x[0-9A-Fa-f]+|\d+)$")
_ATTR = re.compile(r"^\s+(?P<key>\w+):\s*(?P<value>.+?)\s*$")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*$", "", line).rstrip() for line in text.splitlines())


def repl_peripherals(path: str | os.PathLike[str] = PLATFORM_REPL) -> dict[str, ReplPeripheral]:
    """Parse the creating entries of a Renode ``.repl`` file (the subset of the format that
    ``stm32f405.repl`` uses: one entry per line at column 0, sysbus registrations as an address or
    ``<address, +size>``, indented ``key: value`` attributes).

    Returns:
        ``{variable name: ReplPeripheral}`` in file order.

    Raises:
        DeviceError: the file is missing or an entry's registration cannot be read.
    """
    p = Path(path)
    if not p.is_file():
        raise DeviceError(f"{p}: Renode platform description not found",
                          hint="restore firmware/renode/ from the repository")
    out: dict[str, ReplPeripheral] = {}
    current: dict | None = None
    for raw in _strip_comments(p.read_text(encoding="utf-8")).splitlines():
        if not raw.strip():
            continue
        m = _ENTRY.match(raw)
        if m and not raw[0].isspace():
            address = size = None
            reg = (m.group("reg") or "").strip()
            if reg:
                rm, pm = _RANGE.match(reg), _POINT.match(reg)
                if rm:
                    address, size = int(rm.group(1), 0), int(rm.group(2), 0)
                elif pm:
                    address = int(pm.group(1), 0)
                elif reg != "sysbus":
                    raise DeviceError(
                        f"{p}: cannot read the registration {reg!r} of {m.group('name')}",
                        hint="register peripherals as `@ sysbus <address>` or `@ sysbus <address, +size>`")
            current = {"name": m.group("name"), "type": m.group("type"), "address": address, "size": size,
                       "attributes": {}}
            out[current["name"]] = current  # type: ignore[assignment]
            continue
        a = _ATTR.match(raw)
        if a and current is not None and not a.group("value").startswith("->"):
            current["attributes"][a.group("key")] = a.group("value")
    result = {}
    for name, e in out.items():
        e = dict(e)  # type: ignore[arg-type]
        if e["size"] is None and "size" in e["attributes"]:
            e["size"] = int(e["attributes"]["size"], 0)
        result[name] = ReplPeripheral(**e)
    return result


def find_renode() -> str:
    """Absolute path of ``renode``: on ``PATH``, else the checkout's ``.tools/renode/bin/renode``.

    Raises:
        DeviceError: Renode is not installed (the hint names the release packages, set-up and the
            QEMU backend).
    """
    path = shutil.which("renode")
    local = LOCAL_RENODE / "bin" / "renode"
    if path is None and local.is_file() and os.access(local, os.X_OK):
        path = str(local)
    if path is None:
        raise DeviceError("Renode is not installed (`renode` is not on PATH nor in .tools/renode/ of this "
                          "checkout; it is not available from the package registries this project uses)",
                          hint=RENODE_HINT)
    return path


def find_renode_test() -> str:
    """Absolute path of ``renode-test`` (Renode's Robot Framework runner) beside ``renode``.

    Raises:
        DeviceError: Renode is not installed, or its package lacks ``renode-test``.
    """
    renode = Path(find_renode())
    on_path = shutil.which("renode-test")
    for cand in [renode.with_name("renode-test")] + ([Path(on_path)] if on_path else []):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    raise DeviceError(f"`renode` is at {renode} but `renode-test` is not beside it (run_renode drives Renode "
                      "through its Robot Framework runner)", hint=RENODE_HINT)


def renode_python() -> str:
    """The Python interpreter ``renode-test`` will run: ``$RENODE_PYTHON``, else this interpreter
    when it can import Robot Framework, else ``python3``."""
    env = os.environ.get("RENODE_PYTHON")
    if env:
        return env
    try:
        import robot  # noqa: F401

        return sys.executable
    except ImportError:
        return shutil.which("python3") or "python3"


def renode_info() -> dict:
    """Which Renode and which Python ``asc-edge bench --renode`` would use, and their versions.

    Returns ``{"renode": path, "renode_version": str, "renode_test": path, "python": path,
    "robotframework": version or None}``.

    Raises:
        DeviceError: Renode or renode-test is not installed.
    """
    renode, renode_test, py = find_renode(), find_renode_test(), renode_python()
    out = subprocess.run([renode, "--version"], capture_output=True, text=True, timeout=60)
    version = (out.stdout.strip().splitlines() or [out.stderr.strip()])[0]
    rf = subprocess.run([py, "-c", "import robot; print(robot.__version__)"], capture_output=True, text=True,
                        timeout=60)
    return {"renode": renode, "renode_version": version, "renode_test": renode_test, "python": py,
            "robotframework": rf.stdout.strip() if rf.returncode == 0 else None}


def _check_monitor_path(p: Path, what: str) -> None:
    # Renode's Monitor splits its command line on whitespace; Robot's --variable splits on ':'
    # only once, so colons are fine.
    if any(ch.isspace() for ch in str(p)) or '"' in str(p):
        raise DeviceError(f"{what} path {str(p)!r} contains whitespace or a quote, which Renode's Monitor "
                          f"cannot take as a path", hint="move the file to a path without spaces")


def renode_command(
    elf: str | os.PathLike[str],
    clips_bin: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    uart_timeout_s: float = 3600.0,
    renode_test: str | None = None,
) -> list[str]:
    """The ``renode-test`` argument list that :func:`run_renode` executes (nothing is run, and
    Renode need not be installed).

    Args:
        elf / clips_bin: the firmware ELF and the bench input image (made absolute).
        out_dir: directory for ``uart.log``, ``executed_instructions.txt`` and the Robot results
            (``<out_dir>/robot``).
        uart_timeout_s: seconds the Robot test waits for the stop line (Renode's terminal-tester
            timeout; recent Renode versions count it in emulated time).
        renode_test: the program to run (default: ``renode-test`` from PATH, or the bare name).

    Raises:
        DeviceError: a path contains whitespace, or ``uart_timeout_s`` is not positive.
    """
    elf_p, clips_p, out_p = Path(elf).resolve(), Path(clips_bin).resolve(), Path(out_dir).resolve()
    for p, what in ((elf_p, "ELF"), (clips_p, "clips.bin"), (out_p, "output directory")):
        _check_monitor_path(p, what)
    if not uart_timeout_s > 0:
        raise DeviceError(f"uart_timeout_s={uart_timeout_s}: must be positive", hint="e.g. 3600")
    prog = renode_test or shutil.which("renode-test") or "renode-test"
    return [
        prog,
        "--variable", f"ELF:{elf_p}",
        "--variable", f"CLIPS:{clips_p}",
        "--variable", f"OUT_DIR:{out_p}",
        "--variable", f"UART_TIMEOUT_S:{int(round(uart_timeout_s))}",
        "--results-dir", str(out_p / "robot"),
        str(BENCH_ROBOT),
    ]


def _parse_count(text: str) -> int | None:
    """``sysbus.cpu ExecutedInstructions`` as printed by the Monitor (hex ``0x...`` or decimal)."""
    s = text.strip().splitlines()[-1].strip() if text.strip() else ""
    if re.fullmatch(r"0x[0-9a-fA-F]+", s):
        return int(s, 16)
    if re.fullmatch(r"\d+", s):
        return int(s, 10)
    return None


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an older ``dst`` (rename, so no half-written result)."""
    if dst.exists():
        old = dst.with_name(dst.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        dst.rename(old)
        src.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        src.rename(dst)


def run_renode(
    elf: str | os.PathLike[str],
    clips_bin: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str],
    timeout_s: float,
    uart_timeout_s: float | None = None,
) -> RenodeResult:
    """Run a UART-only, memory-input bench image on Renode until it prints ``ASC-BENCH done``.

    Args:
        elf: the firmware ELF (built with ``-DASC_BOARD_SEMIHOSTING=0 -DASC_BENCH_IO_MEMORY``).
        clips_bin: the bench input image (at most the 64 MiB ``clipmem`` region).
        workdir: directory (created) that receives ``renode-run/`` (``uart.log``,
            ``executed_instructions.txt``, ``robot/`` logs), replaced as a whole after each run.
        timeout_s: host wall-clock limit in seconds for the whole renode-test run (start-up of
            Renode included); its process group is killed after it.
        uart_timeout_s: the Robot test's own wait for the stop line, in seconds of emulated time
            (Renode 1.14's terminal tester; default: ``timeout_s``).

    Returns:
        The :class:`RenodeResult`.

    Raises:
        DeviceError: Renode / renode-test is not installed (hint: the release packages or
            ``--qemu``); the ELF or clips.bin is missing or clips.bin is larger than the clipmem
            region; renode-test's Python requirements are missing; the run exceeded ``timeout_s``;
            the firmware faulted, failed an assertion or printed ``ASC-BENCH error`` (the message
            holds the UART lines, with an addr2line hint for faults); it never printed
            ``ASC-BENCH done``; or no instruction count was recorded.
    """
    elf_p, clips_p = Path(elf).resolve(), Path(clips_bin).resolve()
    if not elf_p.is_file():
        raise DeviceError(f"{elf_p}: firmware ELF not found",
                          hint="build it first (asc_edge.device.build_firmware with "
                          "-DASC_BOARD_SEMIHOSTING=0 -DASC_BENCH_IO_MEMORY)")
    if not clips_p.is_file():
        raise DeviceError(f"{clips_p}: bench input image not found", hint="write clips.bin first")
    clipmem = repl_peripherals(PLATFORM_REPL).get("clipmem")
    if clipmem is None or clipmem.address != CLIPS_ADDRESS or clipmem.size is None:
        raise DeviceError(f"{PLATFORM_REPL}: no clipmem region at 0x{CLIPS_ADDRESS:08x}",
                          hint="restore firmware/renode/stm32f405.repl from the repository")
    size = clips_p.stat().st_size
    if size > clipmem.size:
        raise DeviceError(f"{clips_p} is {size} bytes; Renode's clipmem region at 0x{CLIPS_ADDRESS:08x} "
                          f"holds {clipmem.size} bytes", hint="bench fewer clips per run")
    renode_test = find_renode_test()

    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="renode-run.tmp-", dir=wd))
    final = wd / "renode-run"
    uart_wait = uart_timeout_s if uart_timeout_s is not None else timeout_s
    cmd = renode_command(elf_p, clips_p, out_dir=staging, renode_test=renode_test, uart_timeout_s=uart_wait)
    env = {**os.environ, "RENODE_PYTHON": renode_python()}
    try:
        res = run_bounded(cmd, cwd=str(wd), timeout_s=timeout_s, env=env)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Results appear under their final name only once complete; messages name that final directory.
    _replace_dir(staging, final)
    output = res.output.replace(str(staging), str(final))
    uart_path, count_path = final / "uart.log", final / "executed_instructions.txt"
    uart = uart_path.read_text(encoding="utf-8", errors="replace") if uart_path.is_file() else ""
    count = _parse_count(count_path.read_text(encoding="utf-8", errors="replace")) if count_path.is_file() else None
    last = tail(uart) or tail(output)
    where = f"(logs: {final})"

    if res.timed_out:
        raise DeviceError(
            f"Renode did not finish within {timeout_s:g} s running {elf_p.name} {where}; last UART output:\n"
            f"{tail(uart) or '(none)'}",
            hint="raise timeout_s (Renode runs far slower than QEMU), or look for a hang: the image must be "
            "UART-only with memory input (-DASC_BOARD_SEMIHOSTING=0 -DASC_BENCH_IO_MEMORY)",
        )
    # renode-test only *warns* about a Robot Framework version other than the one it pins; it stops
    # (with this line) when a requirement cannot be imported at all.
    if "Please install required dependencies" in output:
        raise DeviceError(f"renode-test cannot run Robot Framework with {env['RENODE_PYTHON']}:\n{tail(output, 8)}",
                          hint=ROBOT_DEPS_HINT)
    fault = _FAULT.search(uart)
    if fault:
        text = uart[fault.start():]
        pc, lr = _PC.search(text), _LR.search(text)
        addrs = " ".join(m.group(1) for m in (pc, lr) if m)
        raise DeviceError(
            f"{elf_p.name} stopped on Renode with a board error report {where}:\n{tail(text, 12)}",
            hint=(f"locate the faulting code: arm-none-eabi-addr2line -f -e {elf_p} {addrs}" if addrs
                  else "see the report above (assertion / abort / stack overflow)"),
        )
    err = _BENCH_ERROR.search(uart)
    if err:
        raise DeviceError(f"{elf_p.name} reported an error on Renode {where}: {err.group(0)}",
                          hint="check that clips.bin was written for this model and loaded at 0x60000000")
    if DONE_LINE not in uart and "Terminal tester failed!" in output and "event: failure" in output:
        # the Robot test's own wait for the stop line ran out; Renode counts it in emulated time
        raise DeviceError(
            f"Renode did not finish within {uart_wait:g} s running {elf_p.name} (the Robot test's wait for the end "
            f"line, in emulated time) {where}; last UART output:\n{tail(uart) or '(none)'}",
            hint="raise the time limit, or look for a hang: the image must be UART-only with memory input "
            "(-DASC_BOARD_SEMIHOSTING=0 -DASC_BENCH_IO_MEMORY)",
        )
    if DONE_LINE not in uart:
        raise DeviceError(
            f"{elf_p.name} never printed {DONE_LINE!r} on Renode (renode-test exit status {res.returncode}) "
            f"{where}; last output:\n{last or '(none)'}",
            hint="the image must be the UART-only memory-input bench build (-DASC_BOARD_SEMIHOSTING=0 "
            "-DASC_BENCH_IO_MEMORY); see the Robot log in the results directory",
        )
    if count is None or count <= 0:
        raise DeviceError(f"no executed-instruction count was recorded {where} (renode-test exit status "
                          f"{res.returncode}); last output:\n{tail(output, 12) or '(none)'}",
                          hint="see robot/ in the results directory for the failing keyword")
    if res.returncode != 0:
        raise DeviceError(f"renode-test failed (exit status {res.returncode}) although the bench finished "
                          f"{where}:\n{tail(output, 12)}", hint="see robot/ in the results directory")
    return RenodeResult(uart_text=uart, executed_instructions=count, wall_s=res.wall_s, command=cmd,
                        results_dir=final)
