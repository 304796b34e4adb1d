"""The peer: TensorFlow Lite Micro + CMSIS-NN running the same ``model_int8.tflite`` on an emulated
Cortex-M4F, measured with the same counter method as asc-edge's generated C.

Source: the offline bundle ``../shared/tools/tflm/tflm-cmsisnn-bundle.tar.gz`` (its README.md gives
the pinned upstream commits of TFLM, CMSIS-NN, flatbuffers, gemmlowp and ruy). :func:`ensure_bundle`
unpacks it once into ``<cache_root>/tflm-bundle/<first 16 hex of the tarball's sha256>/``
(:func:`asc_edge.paths.cache_root`; temp dir + rename, a file lock against concurrent unpacks), so
a changed tarball gets a fresh tree and a partly unpacked one is never used.

:func:`run_tflm_peer` measures one model in one or two builds of the bundle's Makefile (``make
MODEL=... BOARD=... ARENA_SIZE=... OPT=... BUILD_DIR=...``; build trees under
``<build_root>/tflm/``, :func:`asc_edge.paths.build_root`, kept, so a later call only relinks):

1. probe: ``BOARD=mps2-an386`` with a 1 MiB tensor arena, run once; TFLM's
   ``MicroInterpreter::arena_used_bytes()`` gives the arena the model needs (CMSIS-NN scratch
   buffers included, which the Python interpreter's reference kernels do not request);
2. final, only when the image's static RAM with that arena (rounded up to 16 bytes) fits 128 KiB:
   the arena sized to the need on ``netduinoplus2`` (QEMU's STM32F405, linked with
   ``RAM_SIZE=128K``: the real chip's main SRAM, as asc-edge's own images). Otherwise the probe on
   ``mps2-an386`` (QEMU's Cortex-M4F MPS2 board, 4 MiB + 4 MiB RAM) is the result — an image with a
   smaller arena array has the same code, flash and instructions — and its RAM is computed (static
   RAM minus the probe's arena plus the arena used). The reason is returned in ``board_reason``.

Each image runs as the bundle README says::

    qemu-system-arm -M <board> -nographic -monitor none -serial null
      -semihosting-config enable=on,target=native,arg=tflm_bench.elf[,arg=input.bin]
      -icount shift=<0 on netduinoplus2 | 7 on mps2-an386> -kernel tflm_bench.elf

time-bounded (:func:`asc_edge.device.toolchain.run_bounded`: own process group, SIGKILL on timeout
or interrupt). Instructions are executed Arm instructions between two counter reads around
``Invoke()`` (netduinoplus2: TIM2 at 1 GHz, 1 tick = 1 instruction under ``-icount shift=0``;
mps2-an386: FPGAIO COUNTER at 25 MHz, ``round(ticks * 40 / 128)`` under ``-icount shift=7``; both
checked by the image's calibration loop). Input: the image's fixed pattern (``x(0) = 12345``,
``x(i+1) = x(i)*1664525 + 1013904223 mod 2^32``, byte i = ``x(i+1) >> 24``; :func:`pattern_input`)
unless an input is given (then passed as a semihosting file); the int8 output tensor is compared
with the tflite-micro Python interpreter (:class:`asc_edge.export.oracle.TflmOracle`) on the same
bytes.

Flash and RAM are read from the ELF with pyelftools by the definitions of
:func:`asc_edge.device.elfinfo.memory_usage` (flash: file size of the flash-addressed load
segments; RAM: every allocated section in RAM, i.e. .data + .bss (the arena) + the thread and
handler stacks), with each board's memory regions (elfinfo's own windows are the STM32F405's only).
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from asc_edge.device.toolchain import find_tool, qemu_system_arm, run_bounded, tail, unpack_tar_gz
from asc_edge.errors import DeviceError
from asc_edge.report.io import file_sha256

__all__ = ["BUNDLE_NAME", "DEFAULT_BUNDLE", "BOARDS", "SRAM_LIMIT_BYTES", "PROBE_ARENA_BYTES",
           "bundle_path", "ensure_bundle", "pattern_input", "build_image", "run_image",
           "image_memory", "run_tflm_peer"]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_NAME = "tflm-cmsisnn-bundle.tar.gz"
#: ``../shared/tools/tflm/tflm-cmsisnn-bundle.tar.gz`` beside the checkout (``$ASC_EDGE_TFLM_BUNDLE`` overrides).
DEFAULT_BUNDLE = REPO_ROOT.parent / "shared" / "tools" / "tflm" / BUNDLE_NAME

#: Per board: QEMU ``-icount shift``, flash and RAM windows (origin, bytes) of the bundle's linker
#: script, and the RAM_SIZE passed to make (netduinoplus2: the STM32F405's 128 KiB main SRAM).
BOARDS = {
    "netduinoplus2": {"icount_shift": 0, "flash": (0x0800_0000, 1024 * 1024),
                      "ram": (0x2000_0000, 128 * 1024), "ram_size": "128K"},
    "mps2-an386": {"icount_shift": 7, "flash": (0x0000_0000, 4096 * 1024),
                   "ram": (0x2000_0000, 4096 * 1024), "ram_size": "4096K"},
}
#: Static RAM (bytes) an image may use to run on netduinoplus2: the STM32F405's main SRAM.
SRAM_LIMIT_BYTES = 128 * 1024
#: Tensor arena (bytes) of the probe image that measures what the model needs.
PROBE_ARENA_BYTES = 1024 * 1024
ELF_NAME = "tflm_bench.elf"

#: Exit statuses of the bundle's app/main.cc and board layer.
EXIT_MEANING = {
    2: "assert() failed or abort() was called",
    3: "CPU fault",
    11: "the .tflite has another flatbuffer schema version",
    12: "AllocateTensors failed (arena too small, or an operator the bundle does not register)",
    13: "no input or output tensor 0",
    15: "input file unreadable or not exactly the input tensor's size",
    16: "Invoke failed",
    17: "second Invoke failed",
}

_RAM_OVERFLOW = re.compile(r"region [`']RAM' overflowed by (\d+) bytes")
_RESIZE_FAIL = re.compile(r"Failed to resize buffer\. Requested: (\d+), available (\d+)")
_OUTPUT = re.compile(r"^TFLM output0 type=(\S+) bytes=(\d+) values=(.*)$", re.M)
_KV = re.compile(r"\b([a-z_0-9]+)=(\S+)")
_LIBSTDCXX_HINT = "apt-get install libstdc++-arm-none-eabi-newlib (TFLM is C++: it needs the newlib C++ library)"


def bundle_path() -> Path:
    """``$ASC_EDGE_TFLM_BUNDLE`` or :data:`DEFAULT_BUNDLE`."""
    return Path(os.environ.get("ASC_EDGE_TFLM_BUNDLE") or DEFAULT_BUNDLE)


def _looks_unpacked(root: Path) -> bool:
    return (root / "Makefile").is_file() and (root / "app" / "main.cc").is_file() and \
        (root / "src-bundle" / "tflite-micro").is_dir() and (root / ".unpacked").is_file()


def ensure_bundle(bundle: str | os.PathLike[str] | None = None,
                  cache_root: str | os.PathLike[str] | None = None) -> Path:
    """Root of the unpacked bundle (has ``Makefile``, ``app/``, ``src-bundle/``).

    Unpacks ``bundle`` (default :func:`bundle_path`) once into
    ``<cache_root>/tflm-bundle/<sha256[:16]>/tflm-cmsisnn-bundle`` (default cache root:
    :func:`asc_edge.paths.cache_root`), through a temp dir in the same folder and a rename, under a
    file lock; a ``.unpacked`` marker holding the tarball's sha256 is written last.

    Raises:
        DeviceError: the tarball is missing, unreadable or has no Makefile / app/main.cc.
    """
    tar = Path(bundle) if bundle is not None else bundle_path()
    if not tar.is_file():
        raise DeviceError(f"{tar}: TFLM bundle not found",
                          hint=f"place {BUNDLE_NAME} there, or set ASC_EDGE_TFLM_BUNDLE to its path")
    digest = file_sha256(tar)
    if cache_root is None:
        from asc_edge.paths import cache_root as _cache_root
        cache_root = _cache_root()
    cache = Path(cache_root) / "tflm-bundle" / digest[:16]
    dest = cache / "tflm-cmsisnn-bundle"
    if _looks_unpacked(dest):
        return dest
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeviceError(f"cannot create the TFLM bundle cache {cache}: {exc}",
                          hint="set ASC_EDGE_CACHE to a writable folder") from None
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _looks_unpacked(dest):
            return dest
        def root_of(tmp: Path) -> Path:
            root = tmp / "tflm-cmsisnn-bundle"
            if not ((root / "Makefile").is_file() and (root / "app" / "main.cc").is_file()):
                raise DeviceError(f"{tar}: no tflm-cmsisnn-bundle/Makefile and app/main.cc inside",
                                  hint="pass the TFLM + CMSIS-NN bundle described in its README.md")
            return root

        unpack_tar_gz(tar, dest, root_of, complete=_looks_unpacked,
                      prepare=lambda root: (root / ".unpacked").write_text(f"{digest}  {tar.name}\n"),
                      hint="replace it with an intact copy of the bundle")
    return dest


def pattern_input(n: int) -> bytes:
    """The image's fixed input (``n`` bytes): ``x(0) = 12345``, ``x(i+1) = x(i)*1664525 +
    1013904223 mod 2^32``, byte i = ``x(i+1) >> 24`` (the bundle's tools/pattern_input.py)."""
    x, out = 12345, bytearray(n)
    for i in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFF_FFFF
        out[i] = x >> 24
    return bytes(out)


def _check_tflite(path: Path) -> None:
    if not path.is_file():
        raise DeviceError(f"{path}: .tflite model not found",
                          hint="pass an export's model_int8.tflite (asc-edge export writes it)")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head[4:8] != b"TFL3":
        raise DeviceError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier)",
                          hint="pass the int8 .tflite of an export, e.g. export/<name>/model_int8.tflite")


def build_image(tflite: str | os.PathLike[str], *, board: str, arena_bytes: int, opt: str = "-O2",
                jobs: int = 2, build_dir: str | os.PathLike[str] | None = None,
                bundle: str | os.PathLike[str] | None = None, timeout_s: float = 3600) -> Path:
    """Build the bundle's TFLM image for ``tflite``; returns the path of ``tflm_bench.elf``.

    ``arena_bytes``: the static tensor arena (ARENA_SIZE). ``build_dir`` default:
    ``<build_root>/tflm/<bundle sha256[:12]>-<board>-a<arena>-<opt>`` (kept: the next model only
    reassembles model_data.S and relinks). ``jobs``: make -j. ``timeout_s``: wall-clock limit in
    seconds for make (the whole process group is killed after it).

    Raises:
        DeviceError: the cross-compiler, g++, make or the C++ library is missing (hint: the apt
            package), the link overflows the board's RAM ("region `RAM' overflowed by N bytes"),
            another compile / link failure, or the timeout.
    """
    if board not in BOARDS:
        raise DeviceError(f"board {board!r} is not one of {', '.join(BOARDS)}", hint="pick netduinoplus2 or mps2-an386")
    model = Path(tflite).resolve()
    _check_tflite(model)
    root = ensure_bundle(bundle)
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size"):
        find_tool(tool)
    try:
        find_tool("arm-none-eabi-g++")
    except DeviceError:
        raise DeviceError("arm-none-eabi-g++ not found on PATH",
                          hint="apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
                               "libstdc++-arm-none-eabi-newlib") from None
    make = find_tool("make")
    if build_dir is None:
        from asc_edge.paths import build_root
        tag = re.sub(r"[^A-Za-z0-9]+", "", opt) or "default"
        build_dir = build_root() / "tflm" / f"{root.parent.name[:12]}-{board}-a{int(arena_bytes)}-{tag}"
    bdir = Path(build_dir).resolve()
    bdir.mkdir(parents=True, exist_ok=True)
    cmd = [make, "-C", str(root), f"-j{max(1, int(jobs))}", f"MODEL={model}", f"BOARD={board}",
           f"ARENA_SIZE={int(arena_bytes)}", f"RAM_SIZE={BOARDS[board]['ram_size']}", f"OPT={opt}",
           f"BUILD_DIR={bdir}", "all"]
    with open(bdir / ".lock", "w") as lock:  # one make per build tree at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = run_bounded(cmd, cwd=str(root), timeout_s=timeout_s)
    elf = bdir / ELF_NAME
    if res.timed_out:
        raise DeviceError(f"TFLM build did not finish within {timeout_s:g} s; last output:\n{tail(res.output, 8)}",
                          hint="raise build_timeout_s (a cold build compiles ~150 files: minutes on 2 cores)")
    if res.returncode != 0 or not elf.is_file():
        out = res.output
        m = _RAM_OVERFLOW.search(out)
        if m:
            raise DeviceError(f"TFLM image for {board} with a {int(arena_bytes):,}-byte arena overflows RAM "
                              f"by {int(m.group(1)):,} bytes",
                              hint="run it on mps2-an386 (4 MiB RAM)")
        if re.search(r"cannot find -l(stdc\+\+|supc\+\+)_nano|fatal error: (cstddef|cstdint|new|cstring)", out):
            raise DeviceError(f"TFLM build failed: the newlib C++ library or headers are missing:\n{tail(out, 4)}",
                              hint=_LIBSTDCXX_HINT)
        raise DeviceError(f"TFLM build failed (make exit {res.returncode}):\n{tail(out, 12)}",
                          hint=f"see the compiler's message above; rebuild with V=1 in {root}")
    return elf


def _parse(out: str) -> dict:
    """The image's ``TFLM key=value`` lines → dict (numbers as int), plus the output tensor."""
    vals: dict = {}
    for line in out.splitlines():
        if not line.startswith("TFLM ") or line.startswith("TFLM output0 "):
            continue
        for k, v in _KV.findall(line):
            vals.setdefault(k, int(v) if v.isdigit() else v)
    m = _OUTPUT.search(out)
    if m:
        vals["output_type"] = m.group(1)
        vals["output"] = [int(v) for v in m.group(3).split()]
    if "calib_loop" in out:
        vals["calib_exact"] = "(exact)" in out
    hw = re.search(r"^TFLM stack_high_water=(\d+)/(\d+)", out, re.M)
    if hw:
        vals["stack_high_water"] = int(hw.group(1))
    return vals


def run_image(elf: str | os.PathLike[str], board: str, *, input_data: bytes | None = None,
              timeout_s: float = 300) -> dict:
    """Run a built image on ``qemu-system-arm -M <board>`` with the bundle README's options
    (``-icount shift=0`` on netduinoplus2, ``shift=7`` on mps2-an386) and parse its output.

    ``input_data``: input tensor 0 as raw bytes (written to a semihosting file ``input.bin``);
    None: the image's fixed pattern. ``timeout_s``: wall-clock limit in seconds.

    Returns the ``TFLM key=value`` fields (``invoke_instructions``, ``invoke_instructions_2``,
    ``allocate_instructions``: executed instructions; ``arena_used_bytes``, ``arena_size``,
    ``input_bytes``, ``model_bytes``: bytes; ``stack_high_water``: bytes), ``output`` (int8 values
    of output tensor 0), ``output_type``, ``calib_exact``, ``qemu_s`` (host seconds), ``command``.

    Raises:
        DeviceError: qemu-system-arm missing, timeout, a crash, a non-zero exit (12: arena too
            small, with the size needed), an uncalibrated counter or output that cannot be parsed.
    """
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise DeviceError(f"{elf}: TFLM image not found", hint="build it first (build_image)")
    qemu = qemu_system_arm()
    with tempfile.TemporaryDirectory(prefix="asc-tflm-") as wd:
        semi = f"enable=on,target=native,arg={ELF_NAME}"
        if input_data is not None:
            (Path(wd) / "input.bin").write_bytes(bytes(input_data))
            semi += ",arg=input.bin"
        cmd = [qemu, "-M", board, "-nographic", "-monitor", "none", "-serial", "null",
               "-semihosting-config", semi, "-icount", f"shift={BOARDS[board]['icount_shift']}",
               "-kernel", str(elf)]
        res = run_bounded(cmd, cwd=wd, timeout_s=timeout_s)
    out = res.output
    if res.timed_out:
        raise DeviceError(f"TFLM image did not finish within {timeout_s:g} s on {board}; last output:\n"
                          f"{tail(out, 6) or '(none)'}", hint="raise run_timeout_s, or look for a hang in the output")
    if res.returncode != 0:
        msg = f"TFLM image exited with status {res.returncode} on {board} " \
              f"({EXIT_MEANING.get(res.returncode, 'QEMU error or crash')}); last output:\n{tail(out, 6) or '(none)'}"
        m = _RESIZE_FAIL.search(out)
        size = re.search(r"arena_size=(\d+)", out)
        if res.returncode == 12 and m and size:
            size = int(size.group(1))
            raise DeviceError(msg, hint=f"rebuild with an arena of at least ~{size - int(m.group(2)) + int(m.group(1)):,} bytes")
        raise DeviceError(msg, hint="see the image's output above (an unregistered operator is named there)")
    vals = _parse(out)
    need = ("invoke_instructions", "invoke_instructions_2", "arena_used_bytes", "output")
    if "done" not in out or any(k not in vals for k in need):
        raise DeviceError(f"TFLM image output lacks {[k for k in need if k not in vals]}:\n{tail(out, 6)}",
                          hint="use the bundle's app/main.cc unmodified")
    if not vals.get("calib_exact"):
        raise DeviceError(f"instruction counter not exact on {board} (calib_loop): {tail(out, 12)}",
                          hint=f"run QEMU with -icount shift={BOARDS[board]['icount_shift']} (Debian's QEMU 7.2 is tested)")
    vals["qemu_s"] = round(res.wall_s, 2)
    vals["command"] = cmd
    return vals


def image_memory(elf: str | os.PathLike[str], board: str) -> dict:
    """Flash and static RAM of an image in bytes, by :func:`asc_edge.device.elfinfo.memory_usage`'s
    definitions with ``board``'s regions: ``flash_bytes`` (flash-addressed PT_LOAD file sizes),
    ``ram_bytes`` (allocated sections in RAM: .data + .bss + stacks), ``stack_bytes`` (.stack),
    ``handler_stack_bytes``, ``bss_bytes`` (incl. the arena), ``data_bytes``.

    Raises:
        DeviceError: not a readable 32-bit Arm ELF.
    """
    (f0, fn), (r0, rn) = BOARDS[board]["flash"], BOARDS[board]["ram"]
    mem = dict.fromkeys(("flash_bytes", "ram_bytes", "stack_bytes", "handler_stack_bytes", "bss_bytes",
                         "data_bytes"), 0)
    try:
        with open(elf, "rb") as fh:
            ef = ELFFile(fh)
            if ef["e_machine"] != "EM_ARM" or ef.elfclass != 32:
                raise DeviceError(f"{elf}: not a 32-bit Arm ELF", hint="pass the tflm_bench.elf the build wrote")
            mem["flash_bytes"] = sum(s["p_filesz"] for s in ef.iter_segments()
                                     if s["p_type"] == "PT_LOAD" and f0 <= s["p_paddr"] < f0 + fn)
            for s in ef.iter_sections():
                size = s["sh_size"]
                if not s["sh_flags"] & SH_FLAGS.SHF_ALLOC or size == 0 or not r0 <= s["sh_addr"] < r0 + rn:
                    continue
                mem["ram_bytes"] += size
                key = {".stack": "stack_bytes", ".handler_stack": "handler_stack_bytes"}.get(s.name) or \
                    ("bss_bytes" if s["sh_type"] == "SHT_NOBITS" else "data_bytes")
                mem[key] += size
    except (OSError, ELFError) as exc:
        raise DeviceError(f"{elf}: cannot read the ELF ({exc})", hint="rebuild the image") from None
    return mem


def run_tflm_peer(tflite: str | os.PathLike[str], *, opt: str = "-O2", jobs: int = 2,
                  input_data: bytes | None = None, macs: int | None = None, oracle: bool = True,
                  bundle: str | os.PathLike[str] | None = None, build_timeout_s: float = 3600,
                  run_timeout_s: float = 300) -> dict:
    """Build and run TFLM + CMSIS-NN for ``tflite`` (probe, then — when the model fits the STM32F405 —
    the arena-sized final image on netduinoplus2; when it does not, the probe run on mps2-an386 is
    the result and its RAM is the probe's static RAM with the arena it used: one bundle build instead
    of two) and return one JSON-ready dict:

    - ``board`` (netduinoplus2 | mps2-an386) and ``board_reason``;
    - ``invoke_instructions``: executed instructions of one ``Invoke()`` (per inference; first
      Invoke), ``invoke_instructions_2`` (second Invoke, same input), ``allocate_instructions``
      (interpreter construction + ``AllocateTensors``), ``instructions_per_mac`` (when ``macs``,
      the model's multiply-accumulates, is given);
    - ``arena_used_bytes`` (TFLM's ``arena_used_bytes()``), ``arena_size_bytes`` (the image's static
      arena), ``flash_bytes``, ``ram_bytes`` (see :func:`image_memory`), ``stack_high_water_bytes``;
    - ``input`` ("pattern", or "given": ``input_data``, the raw int8 bytes of input tensor 0),
      ``output`` (int8 list of output tensor 0),
      ``oracle_output`` and ``output_equals_oracle`` (tflite-micro Python interpreter on the same
      input bytes; None with ``oracle=False``);
    - ``probe`` (board, arena, instructions of the probe run), ``opt``, ``kernels``, ``bundle_sha256``,
      ``build_s`` / ``run_s`` (host seconds).

    Raises:
        DeviceError: a missing or non-TFLite ``tflite``, a missing bundle / tool (hint: the apt
            package), a build or run failure or timeout (see :func:`build_image`, :func:`run_image`).
        ExportError: the oracle cannot run the model.
    """
    model = Path(tflite)
    _check_tflite(model)
    root = ensure_bundle(bundle)
    t0 = time.monotonic()
    probe_elf = build_image(model, board="mps2-an386", arena_bytes=PROBE_ARENA_BYTES, opt=opt, jobs=jobs,
                            bundle=bundle, timeout_s=build_timeout_s)
    build_s = time.monotonic() - t0
    t1 = time.monotonic()
    probe = run_image(probe_elf, "mps2-an386", input_data=input_data, timeout_s=run_timeout_s)
    run_s = time.monotonic() - t1
    arena = -(-probe["arena_used_bytes"] // 16) * 16
    rest = image_memory(probe_elf, "mps2-an386")["ram_bytes"] - PROBE_ARENA_BYTES
    need = rest + arena
    board = "netduinoplus2" if need <= SRAM_LIMIT_BYTES else "mps2-an386"
    reason = (f"arena {arena:,} B + other static RAM {rest:,} B = {need:,} B "
              f"{'fits' if board == 'netduinoplus2' else 'exceeds'} the STM32F405's {SRAM_LIMIT_BYTES:,} B SRAM")
    if board == "mps2-an386":
        # the final image would differ from the probe only in the size of the arena's .bss array (same
        # code, flash and instructions): its RAM is computed instead of compiling the bundle again
        elf, run, final_built = probe_elf, probe, False
        mem = image_memory(probe_elf, "mps2-an386")
        mem["bss_bytes"] += arena - PROBE_ARENA_BYTES
        mem["ram_bytes"] = need
    else:
        t0 = time.monotonic()
        try:
            elf = build_image(model, board=board, arena_bytes=arena, opt=opt, jobs=jobs, bundle=bundle,
                              timeout_s=build_timeout_s)
        except DeviceError as exc:
            if "overflows RAM" not in exc.message:
                raise
            board, reason = "mps2-an386", f"{reason} by the estimate, but the netduinoplus2 link overflowed: " \
                                          f"{exc.message}"
            elf = build_image(model, board=board, arena_bytes=arena, opt=opt, jobs=jobs, bundle=bundle,
                              timeout_s=build_timeout_s)
        build_s += time.monotonic() - t0
        t1 = time.monotonic()
        run = run_image(elf, board, input_data=input_data, timeout_s=run_timeout_s)
        run_s += time.monotonic() - t1
        mem, final_built = image_memory(elf, board), True

    result = {
        "name": "TensorFlow Lite Micro + CMSIS-NN", "tflite": str(model), "board": board, "board_reason": reason,
        "opt": opt, "kernels": "cmsis_nn", "counter": "TIM2 (netduinoplus2, -icount shift=0) / FPGAIO COUNTER "
        "(mps2-an386, -icount shift=7), converted to executed instructions, calib_loop exact",
        "invoke_instructions": run["invoke_instructions"], "invoke_instructions_2": run["invoke_instructions_2"],
        "allocate_instructions": run.get("allocate_instructions"),
        "instructions_per_mac": run["invoke_instructions"] / macs if macs else None, "macs": macs,
        "arena_used_bytes": run["arena_used_bytes"], "arena_size_bytes": arena, **mem,
        "stack_high_water_bytes": run.get("stack_high_water"),
        "input": "pattern" if input_data is None else "given", "input_bytes": run.get("input_bytes"),
        "output_type": run.get("output_type"), "output": run["output"],
        "output_repeat_equal": run.get("output_repeat_equal") == 1,
        "oracle_output": None, "output_equals_oracle": None,
        "final_image_built": final_built,
        "probe": {"board": "mps2-an386", "arena_size_bytes": PROBE_ARENA_BYTES,
                  "arena_used_bytes": probe["arena_used_bytes"], "invoke_instructions": probe["invoke_instructions"],
                  "output": probe["output"],
                  "equals_final": probe["output"] == run["output"]
                  and probe["invoke_instructions"] == run["invoke_instructions"]},
        "bundle_sha256": (root / ".unpacked").read_text().split()[0],
        "build_s": round(build_s, 1), "run_s": round(run_s, 1), "qemu_command": run["command"],
    }
    if oracle:
        from asc_edge.export.oracle import TflmOracle

        orc = TflmOracle(model)
        raw = input_data if input_data is not None else pattern_input(int(np.prod(orc.input_shape)))
        ref = orc.invoke(np.frombuffer(raw, dtype=np.int8).reshape(orc.input_shape))
        result["oracle_output"] = [int(v) for v in np.asarray(ref).reshape(-1)]
        result["output_equals_oracle"] = run.get("output_type") == "int8" and result["oracle_output"] == run["output"]
    return result
