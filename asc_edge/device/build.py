"""Build a Cortex-M4 firmware image with ``firmware/Makefile`` (arm-none-eabi-gcc, STM32F405).

:func:`build_firmware` runs make time-bounded, turns linker failures into one-line errors (an
image over the 128 KiB SRAM reports by how many bytes) and returns the artefact paths with the
image's flash / RAM use.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asc_edge.device.elfinfo import FLASH_BYTES, SRAM_BYTES, MemoryUsage, memory_usage
from asc_edge.device.toolchain import GCC_APT_HINT, build_tools, run_bounded, tail
from asc_edge.errors import DeviceError

#: firmware/ of this checkout (Makefile, board/, app/, nn/).
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
#: Default stack reservation in bytes (the Makefile's STACK_SIZE default).
DEFAULT_STACK_BYTES = 8192

_RAM_OVERFLOW = re.compile(r"region [`']RAM' overflowed by (\d+) bytes")
_FLASH_OVERFLOW = re.compile(r"region [`']FLASH' overflowed by (\d+) bytes")
# Only the linker's / compiler's own complaints: every link command line echoes --specs=nano.specs,
# so the bare name would classify any link failure (e.g. an undefined reference) as "newlib missing".
_NEWLIB_MISSING = re.compile(r"cannot read spec file '?nano\.specs|nano\.specs: No such file|cannot find -lc\b|"
                             r"cannot find -lm\b|stdint\.h: No such file")
_ERROR_LINE = re.compile(r"error|warning|undefined reference|multiple definition|\*\*\*|note:|^\s+\d+ \||\^")
_NO_SYSCALL = re.compile(r"undefined reference to [`'](_sbrk|_write|_read|_close|_lseek|_fstat|_isatty|_kill|_getpid)'")


@dataclass(frozen=True)
class FirmwareImage:
    """A linked firmware image: paths of the ``.elf``, ``.bin`` (raw flash image), ``.hex``
    (Intel HEX) and ``.map`` (linker map), and its memory use in bytes (see
    :class:`asc_edge.device.elfinfo.MemoryUsage`); ``log`` is make's output."""

    app: str
    elf: Path
    bin: Path
    hex: Path
    map: Path
    memory: MemoryUsage
    log: str

    @property
    def flash_bytes(self) -> int:
        """Bytes programmed into flash (code + read-only data + .data initialisers)."""
        return self.memory.flash_bytes

    @property
    def ram_bytes(self) -> int:
        """Static SRAM bytes (.data + .bss + the thread and handler stacks)."""
        return self.memory.ram_bytes

    @property
    def stack_bytes(self) -> int:
        """Thread-stack reservation in bytes (what main() runs on)."""
        return self.memory.stack_bytes


def _make_value(items: Sequence[str | os.PathLike[str]], what: str) -> str:
    """Space-separated absolute paths for a make variable; rejects whitespace (make splits on it)."""
    out = []
    for item in items:
        p = str(Path(item).resolve())
        if any(ch.isspace() for ch in p):
            raise DeviceError(f"{what} path {p!r} contains whitespace, which make cannot handle",
                              hint="move the files to a path without spaces")
        out.append(p.replace("$", "$$"))
    return " ".join(out)


def _check_paths(paths: Sequence[Path], what: str, want_dir: bool) -> None:
    for p in paths:
        ok = p.is_dir() if want_dir else p.is_file()
        if not ok:
            kind = "directory" if want_dir else "file"
            raise DeviceError(f"{what}: {kind} {p} does not exist", hint=f"pass an existing {kind}")


def build_firmware(
    app: str,
    build_dir: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    nn: str = "dsp",
    cmsis_dsp_dir: str | os.PathLike[str] | None = None,
    cmsis_dsp_srcs: Sequence[str | os.PathLike[str]] = (),
    extra_srcs: Sequence[str | os.PathLike[str]] = (),
    extra_inc: Sequence[str | os.PathLike[str]] = (),
    extra_cflags: Sequence[str] = (),
    stack_bytes: int = DEFAULT_STACK_BYTES,
    nn_always: bool = False,
    jobs: int | None = None,
    timeout_s: float = 600.0,
) -> FirmwareImage:
    """Compile and link ``firmware/app/<app>_main.c`` with the STM32F405 board layer.

    Args:
        app: application name (``firmware/app/<app>_main.c``).
        build_dir: output directory (created; objects are rebuilt when any flag changes).
        model_dir: directory with the generated ``model.c`` / ``model.h``; its ``*.c`` and the
            ``firmware/nn`` kernels are compiled and it is put on the include path.
        nn: ``"dsp"`` (Cortex-M4 DSP instructions) or ``"portable"`` (``-DASC_NN_FORCE_PORTABLE``).
        cmsis_dsp_dir: root of an unpacked CMSIS-DSP source tree (``Include/``, ``PrivateInclude/``);
            adds ``firmware/cmsis_shim`` and ``-DARM_MATH_LOOPUNROLL``.
        cmsis_dsp_srcs: CMSIS-DSP ``.c`` files (absolute, or relative to ``cmsis_dsp_dir``).
        extra_srcs / extra_inc / extra_cflags: more sources, include directories, compiler flags.
        stack_bytes: stack reservation in bytes (multiple of 8, at least 1024).
        nn_always: compile ``firmware/nn`` even without ``model_dir``.
        jobs: parallel compiler jobs (default: the CPU count, at most 8).
        timeout_s: wall-clock limit of the whole build in seconds.

    Returns:
        The :class:`FirmwareImage` (``.elf`` / ``.bin`` / ``.hex`` / ``.map`` and sizes in bytes).

    Raises:
        DeviceError: a missing tool (hint: the apt command), a bad argument, a compile error, an
            image that does not fit in the 128 KiB SRAM ("does not fit in the 128 KiB SRAM by N
            bytes") or the 1 MiB flash, or a build that ran past ``timeout_s``.
    """
    if not (FIRMWARE_DIR / "Makefile").is_file():
        raise DeviceError(f"{FIRMWARE_DIR}/Makefile not found: the firmware sources are not installed",
                          hint="run from a checkout of asc-edge (pip install -e .)")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", app):
        raise DeviceError(f"app name {app!r} is not a plain identifier",
                          hint="use the <app> of firmware/app/<app>_main.c")
    app_src = FIRMWARE_DIR / "app" / f"{app}_main.c"
    if not app_src.is_file():
        known = sorted(p.name[: -len("_main.c")] for p in (FIRMWARE_DIR / "app").glob("*_main.c"))
        raise DeviceError(f"no firmware application {app!r} ({app_src} does not exist)",
                          hint=f"use one of: {', '.join(known) or '(none)'}")
    if nn not in ("dsp", "portable"):
        raise DeviceError(f"nn={nn!r}: unknown kernel build", hint="use nn='dsp' or nn='portable'")
    if stack_bytes < 1024 or stack_bytes % 8:
        raise DeviceError(f"stack_bytes={stack_bytes}: must be a multiple of 8 and at least 1024",
                          hint="e.g. 8192 (the default)")
    if cmsis_dsp_srcs and cmsis_dsp_dir is None:
        raise DeviceError("cmsis_dsp_srcs given without cmsis_dsp_dir",
                          hint="pass the CMSIS-DSP source root as cmsis_dsp_dir")

    tools = build_tools()
    out_dir = Path(build_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    cmd = [
        tools.make, "-C", str(FIRMWARE_DIR), "--no-print-directory",
        f"-j{jobs if jobs else min(os.cpu_count() or 1, 8)}",
        f"APP={app}",
        f"BUILD_DIR={_make_value([out_dir], 'build_dir')}",
        f"NN={nn}",
        f"NN_ALWAYS={1 if nn_always else 0}",
        f"STACK_SIZE={stack_bytes}",
        f"CC={tools.gcc}",
        f"OBJCOPY={tools.objcopy}",
    ]
    if model_dir is not None:
        md = Path(model_dir).resolve()
        _check_paths([md], "model_dir", want_dir=True)
        cmd.append(f"MODEL_DIR={_make_value([md], 'model_dir')}")
    if cmsis_dsp_dir is not None:
        cd = Path(cmsis_dsp_dir).resolve()
        _check_paths([cd], "cmsis_dsp_dir", want_dir=True)
        srcs = [Path(s) if Path(s).is_absolute() else cd / s for s in cmsis_dsp_srcs]
        _check_paths(srcs, "cmsis_dsp_srcs", want_dir=False)
        cmd.append(f"CMSIS_DSP_DIR={_make_value([cd], 'cmsis_dsp_dir')}")
        cmd.append(f"CMSIS_DSP_SRCS={_make_value(srcs, 'cmsis_dsp_srcs')}")
    srcs = [Path(s) for s in extra_srcs]
    _check_paths(srcs, "extra_srcs", want_dir=False)
    incs = [Path(s) for s in extra_inc]
    _check_paths(incs, "extra_inc", want_dir=True)
    cmd.append(f"EXTRA_SRCS={_make_value(srcs, 'extra_srcs')}")
    cmd.append(f"EXTRA_INC={_make_value(incs, 'extra_inc')}")
    # The flags reach a shell command line inside make: quote each, and escape make's '$'.
    cmd.append("EXTRA_CFLAGS=" + " ".join(shlex.quote(f).replace("$", "$$") for f in extra_cflags))

    env = dict(os.environ, LC_ALL="C")  # English linker messages (parsed below)
    res = run_bounded(cmd, cwd=str(FIRMWARE_DIR), timeout_s=timeout_s, env=env)
    if res.timed_out:
        raise DeviceError(
            f"firmware build of {app!r} did not finish within {timeout_s:g} s; last output:\n{tail(res.output)}",
            hint="raise timeout_s (a first build of large generated sources is slow) or check for a stuck compiler",
        )
    if res.returncode != 0:
        _raise_build_failure(app, res.output, res.returncode, stack_bytes)

    elf = out_dir / f"{app}.elf"
    paths = {ext: out_dir / f"{app}.{ext}" for ext in ("elf", "bin", "hex", "map")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DeviceError(f"firmware build of {app!r} succeeded but produced no {', '.join(missing)}",
                          hint="check firmware/Makefile's output rules")
    return FirmwareImage(
        app=app, elf=elf, bin=paths["bin"], hex=paths["hex"], map=paths["map"],
        memory=memory_usage(elf), log=res.output,
    )


def _raise_build_failure(app: str, output: str, returncode: int, stack_bytes: int) -> None:
    """Turn make's failure output into the most specific DeviceError."""
    m = _RAM_OVERFLOW.search(output)
    if m:
        over = int(m.group(1))
        raise DeviceError(
            f"firmware {app!r} does not fit in the {SRAM_BYTES // 1024} KiB SRAM by {over} bytes "
            f"(.data + .bss + the {stack_bytes}-byte stack + the 512-byte handler stack exceed {SRAM_BYTES} bytes)",
            hint="use a smaller model / activation arena or fewer static buffers, or lower stack_bytes "
            "if the measured stack high-water leaves room",
        )
    m = _FLASH_OVERFLOW.search(output)
    if m:
        raise DeviceError(
            f"firmware {app!r} does not fit in the {FLASH_BYTES // (1024 * 1024)} MiB flash by {int(m.group(1))} bytes",
            hint="use a smaller model (fewer weight bytes) or drop unused code",
        )
    if _NEWLIB_MISSING.search(output):
        raise DeviceError(
            f"firmware build of {app!r} failed: the Arm C library (newlib) is missing; last output:\n{tail(output, 8)}",
            hint=GCC_APT_HINT,
        )
    m = _NO_SYSCALL.search(output)
    if m:
        raise DeviceError(
            f"firmware {app!r} needs the C library system call {m.group(1)} (heap or stdio), which the "
            f"board does not provide; last output:\n{tail(output, 8)}",
            hint="do not use malloc/printf/FILE in firmware: use static buffers and asc_board_puts / asc_board_put_*",
        )
    # diagnostics only: skip make's echo of the compiler command lines
    errors = [ln for ln in output.splitlines() if _ERROR_LINE.search(ln) and "-mcpu=cortex-m4" not in ln]
    shown = "\n".join(errors[-20:]) if errors else tail(output)
    raise DeviceError(
        f"firmware build of {app!r} failed (make exit status {returncode}):\n{shown}",
        hint="fix the compiler / linker error shown above",
    )
