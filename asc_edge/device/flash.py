"""Program a built firmware image into an STM32F405/F407 board over its debug probe, and read the
board's USART1 output from a serial port.

Two programmers are supported:

* **pyOCD** (``pip install pyocd``; not a core dependency). Probes are listed with its Python API;
  the programming itself runs as ``python -m pyocd load ...`` in a time-bounded subprocess.
  pyOCD's built-in targets do **not** include the STM32F405/F407 (pyOCD 0.46 ships only
  STM32F412/F429/F439 among the F4s): it needs the Keil.STM32F4xx_DFP CMSIS pack, installed once
  with ``pyocd pack install stm32f405rg`` (a download) or passed as a local ``.pack`` file. Nothing
  is downloaded at run time; a missing pack is reported as a :class:`DeviceError`.
* **OpenOCD** (``apt-get install openocd``), whose ``target/stm32f4x.cfg`` covers the whole F4
  family: ``openocd -f interface/stlink.cfg -f target/stm32f4x.cfg -c "program <image> verify reset exit"``.

Every failure raises :class:`asc_edge.errors.DeviceError` naming the problem and the fix; a board
that is not connected names the built images, so they can be programmed with another tool
(e.g. STM32CubeProgrammer).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from asc_edge.device.toolchain import run_bounded, tail
from asc_edge.errors import DeviceError

#: Flash base address of the STM32F405/F407 (where a raw .bin image is programmed).
FLASH_BASE = 0x0800_0000
OPENOCD_APT_HINT = "apt-get install openocd"
PYOCD_PIP_HINT = "pip install pyocd"


@dataclass(frozen=True)
class FlashTarget:
    """A supported part: the ``pyocd`` target names (CMSIS-pack part numbers, lower case) and the
    OpenOCD interface / target scripts."""

    name: str
    pyocd_names: tuple[str, ...]
    openocd_interface: str = "interface/stlink.cfg"
    openocd_target: str = "target/stm32f4x.cfg"


#: Parts this firmware runs on (same core, flash size and memory map: 1 MiB flash, 128 KiB SRAM).
TARGETS = {
    "stm32f405rg": FlashTarget("stm32f405rg", ("stm32f405rgtx", "stm32f405rg")),
    "stm32f407vg": FlashTarget("stm32f407vg", ("stm32f407vgtx", "stm32f407vg")),
}

_FORMATS = {".hex": "hex", ".bin": "bin", ".elf": "elf"}
_NO_PROBE = re.compile(
    r"open failed|unable to find a matching|no device found|libusb_open\(\) failed|"
    r"couldn't open|No available debug probes|No connected debug probes|Error connecting to DP",
    re.I,
)


def _built_images(image: Path) -> list[Path]:
    """The image and its siblings from the same build (``<stem>.elf/.bin/.hex``) that exist."""
    out = [image]
    for ext in (".elf", ".bin", ".hex"):
        p = image.with_suffix(ext)
        if p != image and p.is_file():
            out.append(p)
    return out


def _no_probe_error(image: Path) -> DeviceError:
    paths = ", ".join(str(p) for p in _built_images(image))
    hex_file = next((p for p in _built_images(image) if p.suffix == ".hex"), image)
    return DeviceError(
        f"no debug probe found (ST-LINK/CMSIS-DAP); the built images are at {paths}",
        hint=f"connect the board's ST-LINK USB and retry, or flash {hex_file} with STM32CubeProgrammer",
    )


def _pyocd_available() -> bool:
    """Whether the pyOCD package can be imported."""
    try:
        import pyocd  # noqa: F401
    except ImportError:
        return False
    return True


def _pyocd_probes() -> list:
    """The debug probes pyOCD sees now (its Python API, non-blocking USB enumeration)."""
    from pyocd.core.helpers import ConnectHelper

    return list(ConnectHelper.get_all_connected_probes(blocking=False))


def pyocd_target_name(target: FlashTarget, pack: Path | None = None) -> str | None:
    """The pyOCD target name for ``target`` that is usable offline: built into pyOCD, provided by an
    installed (cmsis-pack-manager) CMSIS pack, or by the local ``pack`` file given. None when pyOCD
    knows no such target without a download."""
    if pack is not None:
        return target.pyocd_names[0]
    from pyocd.target import TARGET

    for name in target.pyocd_names:
        if name in TARGET:
            return name
    try:  # packs installed earlier with `pyocd pack install` (read from the local cache only)
        from pyocd.target.pack.pack_target import ManagedPacks

        for name in target.pyocd_names:
            ManagedPacks.populate_target(name)
            if name in TARGET:
                return name
    except Exception:  # pyOCD without cmsis-pack-manager, or an unreadable cache
        return None
    return None


def openocd_command(
    image: str | os.PathLike[str], target: str = "stm32f405rg", *, openocd: str = "openocd"
) -> list[str]:
    """The OpenOCD command line that programs ``image`` (.elf/.hex at their own addresses, .bin at
    0x08000000), verifies it and resets the board.

    Raises:
        DeviceError: unknown target, unsupported file type, or a path OpenOCD's Tcl cannot quote.
    """
    t = _target(target)
    img = Path(image).resolve()
    fmt = _format(img)
    if any(ch in str(img) for ch in "{}\\"):
        raise DeviceError(f"image path {str(img)!r} contains braces or backslashes, which OpenOCD's "
                          "`program` command cannot take", hint="copy the image to a plain path")
    where = f" 0x{FLASH_BASE:08x}" if fmt == "bin" else ""
    return [openocd, "-f", t.openocd_interface, "-f", t.openocd_target,
            "-c", f"program {{{img}}}{where} verify reset exit"]


def pyocd_command(image: str | os.PathLike[str], target_name: str, *, probe_uid: str | None = None,
                  pack: str | os.PathLike[str] | None = None) -> list[str]:
    """The ``python -m pyocd load`` command line that programs ``image`` (a .bin at 0x08000000)
    and resets the board."""
    img = Path(image).resolve()
    fmt = _format(img)
    cmd = [sys.executable, "-m", "pyocd", "load", "--no-config", "-t", target_name, "--format", fmt]
    if probe_uid:
        cmd += ["-u", probe_uid]
    if pack is not None:
        cmd += ["--pack", str(Path(pack).resolve())]
    cmd.append(f"{img}@0x{FLASH_BASE:08x}" if fmt == "bin" else str(img))
    return cmd


def _target(target: str) -> FlashTarget:
    t = TARGETS.get(target.lower())
    if t is None:
        raise DeviceError(f"unknown flash target {target!r}", hint=f"use one of: {', '.join(TARGETS)}")
    return t


def _format(img: Path) -> str:
    fmt = _FORMATS.get(img.suffix.lower())
    if fmt is None:
        raise DeviceError(f"{img}: cannot flash a {img.suffix or 'suffix-less'} file",
                          hint="pass the .hex, .bin or .elf from asc_edge.device.build_firmware")
    return fmt


def _flash_pyocd(img: Path, t: FlashTarget, pack: Path | None, timeout_s: float) -> dict:
    probes = _pyocd_probes()
    if not probes:
        raise _no_probe_error(img)
    name = pyocd_target_name(t, pack)
    if name is None:
        raise DeviceError(
            f"pyOCD has no {t.name} target without a CMSIS pack (its built-in STM32F4 targets are "
            f"F412/F429/F439 only), and no installed pack provides it",
            hint=f"install the pack once with `pyocd pack install {t.name}` (downloads Keil.STM32F4xx_DFP), "
            "pass a local .pack file (pack=...), or use tool='openocd'",
        )
    uid = getattr(probes[0], "unique_id", None)
    cmd = pyocd_command(img, name, probe_uid=uid, pack=pack)
    res = run_bounded(cmd, cwd=str(img.parent), timeout_s=timeout_s)
    return _check_result(res, cmd, img, t, "pyocd", uid)


def _flash_openocd(img: Path, t: FlashTarget, timeout_s: float) -> dict:
    exe = shutil.which("openocd")
    if exe is None:
        raise DeviceError("openocd not found on PATH", hint=OPENOCD_APT_HINT)
    cmd = openocd_command(img, t.name, openocd=exe)
    res = run_bounded(cmd, cwd=str(img.parent), timeout_s=timeout_s)
    return _check_result(res, cmd, img, t, "openocd", None)


def _check_result(res, cmd: list[str], img: Path, t: FlashTarget, tool: str, probe: str | None) -> dict:
    if res.timed_out:
        raise DeviceError(f"{tool} did not finish programming {img.name} within the time limit; last output:\n"
                          f"{tail(res.output, 10) or '(none)'}",
                          hint="check the probe's USB connection and the board's power, then retry")
    if res.returncode != 0:
        if _NO_PROBE.search(res.output):
            raise _no_probe_error(img)
        raise DeviceError(f"{tool} failed to program {img.name} into the {t.name} (exit status "
                          f"{res.returncode}):\n{tail(res.output, 12) or '(no output)'}",
                          hint="see the programmer's message above (wrong target, read-out protection, "
                          "or a board held in reset)")
    return {"tool": tool, "target": t.name, "image": str(img), "probe": probe, "command": cmd,
            "wall_s": res.wall_s, "output": tail(res.output, 20)}


def flash_image(
    image_path: str | os.PathLike[str],
    *,
    tool: str = "auto",
    target: str = "stm32f405rg",
    timeout_s: float = 120.0,
    pack: str | os.PathLike[str] | None = None,
) -> dict:
    """Program ``image_path`` (.hex, .bin at 0x08000000, or .elf) into the board, verify, reset.

    Args:
        image_path: an artefact of :func:`asc_edge.device.build_firmware`.
        tool: ``"pyocd"``, ``"openocd"`` or ``"auto"``: pyOCD when it is importable and knows the
            target offline (built in, installed pack, or ``pack``), else OpenOCD when on PATH,
            else pyOCD if importable (to report what it lacks), else an error naming both fixes.
        target: ``"stm32f405rg"`` or ``"stm32f407vg"``.
        timeout_s: wall-clock limit in seconds of the programming subprocess.
        pack: a local Keil.STM32F4xx_DFP ``.pack`` file for pyOCD (no download happens).

    Returns:
        ``{"tool", "target", "image", "probe", "command", "wall_s", "output"}``.

    Raises:
        DeviceError: missing or unsupported image, unknown target or tool, neither programmer
            installed (hints: ``pip install pyocd`` / ``apt-get install openocd``), no debug probe
            connected (the message lists the built images), pyOCD without the STM32F4 pack, a
            programming failure, or a run past ``timeout_s``.
    """
    img = Path(image_path).resolve()
    if not img.is_file():
        raise DeviceError(f"{img}: firmware image not found", hint="build it first (asc_edge.device.build_firmware)")
    _format(img)
    t = _target(target)
    pack_p = Path(pack).resolve() if pack is not None else None
    if pack_p is not None and not pack_p.is_file():
        raise DeviceError(f"{pack_p}: CMSIS pack file not found", hint="pass the downloaded Keil.STM32F4xx_DFP .pack")
    if tool not in ("auto", "pyocd", "openocd"):
        raise DeviceError(f"unknown flash tool {tool!r}", hint="use tool='auto', 'pyocd' or 'openocd'")

    if tool == "auto":
        have_pyocd, have_openocd = _pyocd_available(), shutil.which("openocd") is not None
        if have_pyocd and (pyocd_target_name(t, pack_p) is not None or not have_openocd):
            tool = "pyocd"
        elif have_openocd:
            tool = "openocd"
        else:
            raise DeviceError("no flash programmer found: neither pyOCD (Python package) nor OpenOCD (on PATH) "
                              "is installed", hint=f"{PYOCD_PIP_HINT} (then `pyocd pack install {t.name}`), "
                              f"or {OPENOCD_APT_HINT}")
    if tool == "pyocd":
        if not _pyocd_available():
            raise DeviceError("pyOCD is not installed", hint=f"{PYOCD_PIP_HINT}, or use tool='openocd'")
        return _flash_pyocd(img, t, pack_p, timeout_s)
    return _flash_openocd(img, t, timeout_s)


_BAUDS = {9600: termios.B9600, 19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
          115200: termios.B115200, 230400: termios.B230400, 460800: termios.B460800, 921600: termios.B921600}


def read_serial_output(
    port: str | os.PathLike[str],
    *,
    timeout_s: float,
    until: str | None = None,
    baud: int = 115200,
) -> str:
    """Read text from a serial port (e.g. the ST-LINK's virtual COM port ``/dev/ttyACM0``, wired to
    the board's USART1) in raw 8N1 mode, POSIX termios only (no pyserial).

    Args:
        port: the serial device.
        timeout_s: wall-clock limit in seconds.
        until: stop as soon as a complete received line contains this text (None: read for the
            whole ``timeout_s``).
        baud: line rate in bit/s (the board layer uses 115200).

    Returns:
        The text received (UTF-8, undecodable bytes replaced).

    Raises:
        DeviceError: the port cannot be opened or configured, the baud rate is unsupported, or
            ``until`` did not arrive within ``timeout_s`` (the message holds what was received).
    """
    if baud not in _BAUDS:
        raise DeviceError(f"baud rate {baud} is not supported", hint=f"use one of {sorted(_BAUDS)}")
    try:
        fd = os.open(os.fspath(port), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise DeviceError(f"cannot open serial port {port}: {exc}",
                          hint="check the device name (ls /dev/ttyACM* /dev/ttyUSB*) and that you are in "
                          "the dialout group") from exc
    buf = bytearray()
    try:
        try:
            attrs = termios.tcgetattr(fd)
            attrs[0] = 0                                                  # iflag: no CR/LF mapping
            attrs[1] = 0                                                  # oflag
            attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL      # 8N1, receiver on
            attrs[3] = 0                                                  # lflag: raw, no echo
            attrs[4] = attrs[5] = _BAUDS[baud]
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except termios.error as exc:
            raise DeviceError(f"cannot configure serial port {port}: {exc}",
                              hint="pass a serial device (a tty), not a regular file") from exc
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    chunk = b""
                except OSError:  # the other end went away (e.g. the probe was unplugged)
                    break
                buf += chunk
                if until is not None:
                    done = buf.rfind(b"\n")
                    if done >= 0 and until.encode() in buf[: done + 1]:
                        break
    finally:
        os.close(fd)
    text = buf.decode("utf-8", errors="replace")
    if until is not None and not any(until in ln for ln in text.splitlines(keepends=True) if ln.endswith("\n")):
        raise DeviceError(f"{until!r} did not arrive on {port} within {timeout_s:g} s; received:\n"
                          f"{tail(text) or '(nothing)'}",
                          hint="check the baud rate, the USART1 wiring (PA9 -> the probe's RX) and that the "
                          "board runs the image")
    return text


def build_board_image(export_dir, clip_wav, out_dir=None, *, nn: str = "dsp", iterations: int | None = None):
    """Build the board application (``firmware/app/board_main.c``) for ``export_dir`` with one clip
    embedded in flash; returns the :class:`~asc_edge.device.build.FirmwareImage` (``.elf``,
    ``.bin``, ``.hex`` and ``.map`` in ``out_dir``, default ``<export>/board``).

    ``clip_wav``: any WAV; it is loaded like training audio (mono, resampled to the export's
    frontend rate, padded/cropped to the clip length) and stored as 16-bit PCM (``round(x·32767)``,
    clipped). ``iterations``: classify that many times and exit (tests / QEMU); default forever.

    Raises DataError (unreadable WAV), ExportError (no C model), DeviceError (build / link).
    """
    import json

    import numpy as np

    from asc_edge.data.audio import load_audio
    from asc_edge.features.cache import resample_fn
    from asc_edge.features.config import FrontendConfig

    from .harness import build_bench_firmware

    export_dir = Path(export_dir)
    rep = json.loads((export_dir / "report.json").read_text())
    fe = FrontendConfig.from_dict(rep["frontend"])
    audio = load_audio(Path(clip_wav), fe.sample_rate, fe.clip_seconds, resample_fn=resample_fn(fe))  # the export's resampler
    pcm = np.clip(np.round(np.asarray(audio, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    out = Path(out_dir) if out_dir else export_dir / "board"
    existed = out.exists()
    gen = out / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    labels = ", ".join('"' + str(x).replace('"', "") + '"' for x in rep["labels"])
    name = Path(clip_wav).name.replace('"', "")
    body = ",\n".join(", ".join(str(int(v)) for v in pcm[i:i + 16]) for i in range(0, len(pcm), 16))
    text = ("/* generated by asc_edge.device.flash.build_board_image; do not edit */\n#include <stdint.h>\n"
            f"const char asc_board_clip_name[] = \"{name}\";\n"
            f"const char *const asc_board_labels[] = {{{labels}}};\n"
            f"const int16_t asc_board_clip_pcm[{len(pcm)}] = {{\n{body}\n}};\n")
    tmp = gen / f"clip_data.c.tmp{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, gen / "clip_data.c")
    flags = [] if iterations is None else [f"-DASC_BOARD_ITERATIONS={int(iterations)}"]
    try:
        return build_bench_firmware(export_dir, out, nn=nn, app="board", io="board",
                                    extra_cflags=flags, extra_srcs=[str(gen / "clip_data.c")])
    except BaseException:  # a failed build (or Ctrl-C) leaves nothing it wrote behind
        import shutil

        if existed:
            (gen / "clip_data.c").unlink(missing_ok=True)
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise
