"""Run a firmware ELF on QEMU's emulated STM32F405 board (machine ``netduinoplus2``).

The command is::

    qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial file:<tmp>/uart.log
        -semihosting-config enable=on,target=native,arg=<elf name>[,arg=...]
        -icount shift=0 -kernel <elf>

run with ``cwd = workdir`` so semihosting file I/O (SYS_OPEN with a relative path) resolves
there. Semihosting console output arrives on QEMU's stdout; USART1 (the first ``-serial``) goes
to a temporary file that is returned as text. ``-icount shift=0`` makes every guest instruction
advance virtual time by exactly 1 ns, so the board's TIM2 counter (1 GHz in QEMU's model) counts
executed instructions, deterministically.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asc_edge.device.toolchain import qemu_system_arm, run_bounded, tail
from asc_edge.errors import DeviceError

MACHINE = "netduinoplus2"

#: Exit statuses set by firmware/board/stm32f4 (board.h), for error messages.
EXIT_MEANING = {
    1: "the application reported a failure",
    2: "assert() failed or abort() was called",
    3: "the firmware faulted (HardFault / BusFault / UsageFault / MemManage / unexpected interrupt)",
    4: "stack overflow: the thread stack reached the last word of its reservation",
}

_PC = re.compile(r"\bpc=(0x[0-9a-fA-F]{8})")
_LR = re.compile(r"\blr=(0x[0-9a-fA-F]{8})")
_QEMU_ERROR = re.compile(r"^qemu-system-arm: ", re.M)


@dataclass(frozen=True)
class QemuResult:
    """One emulator run: the firmware's exit status (from semihosting SYS_EXIT_EXTENDED),
    ``stdout`` (the semihosting console, plus any messages of QEMU itself), ``uart`` (what the
    firmware sent on USART1), ``wall_s`` (host wall-clock seconds) and the command line."""

    exit_code: int
    stdout: str
    uart: str
    wall_s: float
    command: list[str] = field(default_factory=list)


def _semihosting_arg(value: str) -> str:
    """One ``arg=`` of -semihosting-config (QEMU option syntax: a literal comma is doubled)."""
    return "arg=" + value.replace(",", ",,")


def qemu_info() -> dict:
    """Which ``qemu-system-arm`` :func:`run_qemu` uses: ``{"qemu": path, "version": first line of
    --version, "machine": MACHINE}``.

    Raises:
        DeviceError: qemu-system-arm is not installed."""
    exe = qemu_system_arm()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    return {"qemu": exe, "version": (out.stdout.strip().splitlines() or ["?"])[0], "machine": MACHINE}


def qemu_command(
    elf: str | os.PathLike[str], *, uart_path: str | os.PathLike[str], args: Sequence[str] = (), icount: bool = True
) -> list[str]:
    """The qemu-system-arm argument list used by :func:`run_qemu` (without running it).

    Raises:
        DeviceError: qemu-system-arm is not installed.
    """
    elf = Path(elf).resolve()
    semi = ",".join(["enable=on", "target=native", _semihosting_arg(elf.name), *(_semihosting_arg(a) for a in args)])
    cmd = [
        qemu_system_arm(),
        "-M", MACHINE,
        "-nographic",
        "-monitor", "none",
        "-serial", f"file:{uart_path}",
        "-semihosting-config", semi,
    ]
    if icount:
        cmd += ["-icount", "shift=0"]
    cmd += ["-kernel", str(elf)]
    return cmd


def run_qemu(
    elf: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str],
    timeout_s: float,
    args: Sequence[str] = (),
    icount: bool = True,
    check: bool = True,
) -> QemuResult:
    """Run ``elf`` on the emulated STM32F405 until the firmware exits via semihosting.

    Args:
        elf: the firmware ELF (e.g. ``FirmwareImage.elf``).
        workdir: working directory of the emulator (created if missing); semihosting file names
            are relative to it.
        timeout_s: wall-clock limit in seconds; the emulator's process group is killed after it.
        args: semihosting command-line arguments (SYS_GET_CMDLINE returns
            ``"<elf name> <args...>"``; no argument may contain whitespace).
        icount: pass ``-icount shift=0`` (TIM2 then counts instructions, deterministically).
            Without it the counter follows host time.
        check: raise on a non-zero exit status (otherwise it is returned in ``exit_code``).

    Returns:
        The :class:`QemuResult`.

    Raises:
        DeviceError: qemu-system-arm is missing (hint: apt-get install qemu-system-arm), the ELF is
            missing, the emulator ran past ``timeout_s`` ("emulator did not finish within N s",
            with the last output), QEMU itself failed or crashed, or (with ``check``) the firmware
            exited non-zero; a fault's message contains the printed registers (pc, lr, CFSR, ...).
    """
    elf_path = Path(elf).resolve()
    if not elf_path.is_file():
        raise DeviceError(f"{elf_path}: firmware ELF not found", hint="build it first (asc_edge.device.build_firmware)")
    for a in args:
        if not a or any(ch.isspace() for ch in a):
            raise DeviceError(f"semihosting argument {a!r} is empty or contains whitespace",
                              hint="pass whitespace-free arguments (the firmware splits the command line on spaces)")
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="asc-qemu-") as tmp:
        uart_path = Path(tmp) / "uart.log"
        cmd = qemu_command(elf_path, uart_path=uart_path, args=args, icount=icount)
        res = run_bounded(cmd, cwd=str(wd), timeout_s=timeout_s)
        uart = uart_path.read_text(encoding="utf-8", errors="replace") if uart_path.is_file() else ""

    last = tail(res.output) or tail(uart)
    if res.timed_out:
        raise DeviceError(
            f"emulator did not finish within {timeout_s:g} s running {elf_path.name} (firmware hung?); "
            f"last output:\n{last or '(none)'}",
            hint="look for an endless loop or a wait on hardware QEMU does not model, "
            "or raise timeout_s for a longer run",
        )
    result = QemuResult(exit_code=res.returncode, stdout=res.output, uart=uart, wall_s=res.wall_s, command=cmd)
    if res.returncode < 0:
        raise DeviceError(
            f"emulator crashed (signal {-res.returncode}) running {elf_path.name}; last output:\n{last or '(none)'}",
            hint="a CPU lockup or QEMU bug: check the firmware's fault handling and the QEMU version "
            "(Debian's 7.2 is tested)",
        )
    if res.returncode != 0 and check:
        meaning = EXIT_MEANING.get(res.returncode, "non-zero exit status")
        if res.returncode == 1 and _QEMU_ERROR.search(res.output):
            meaning = "QEMU reported an error, or the application a failure"
            hint = "see QEMU's message above (a rejected option or image) or the firmware's output"
        elif res.returncode == 3 and "STACK OVERFLOW" in res.output + uart:
            meaning = "stack overflow: the thread stack ran past its reservation and faulted"
            hint = "rebuild with a larger stack_bytes (STACK_SIZE) or reduce stack use (large local arrays, recursion)"
        elif res.returncode == 3:
            pc, lr = _PC.search(res.output + uart), _LR.search(res.output + uart)
            where = " ".join(m.group(1) for m in (pc, lr) if m)
            hint = (f"locate the faulting code: arm-none-eabi-addr2line -f -e {elf_path} {where}" if where
                    else "see the fault registers above")
        elif res.returncode == 4:
            hint = "rebuild with a larger stack_bytes (STACK_SIZE) or reduce stack use"
        else:
            hint = "see the firmware output above"
        raise DeviceError(
            f"{elf_path.name} exited with status {res.returncode} ({meaning}); last output:\n{last or '(none)'}",
            hint=hint,
        )
    return result
