"""The STM32F405 board layer, firmware/Makefile and asc_edge.device on QEMU's netduinoplus2.

Needs arm-none-eabi-gcc (+ newlib), make and qemu-system-arm; a missing tool fails the tests with
the DeviceError naming the apt package (nothing is skipped).
"""

from __future__ import annotations

import os
import random
import re
import struct
import time
from pathlib import Path

import pytest

from asc_edge.device import (
    FLASH_BYTES,
    SRAM_BYTES,
    build_firmware,
    memory_usage,
    run_qemu,
    section_sizes,
    symbol,
)
from asc_edge.errors import DeviceError

COUNTER_LINE = re.compile(r"^counter: (asm|mix|api) n=(\d+) delta=(\d+)$", re.M)


@pytest.fixture(scope="module")
def selftest(tmp_path_factory):
    """The self-test image with default settings (8 KiB stack, no model)."""
    return build_firmware("selftest", tmp_path_factory.mktemp("fw") / "selftest")


def run_mode(elf, workdir: Path, mode: str, **kw):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "mode.txt").write_text(mode + "\n")
    return run_qemu(elf, workdir=workdir, timeout_s=kw.pop("timeout_s", 20), **kw)


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


# ---- build -------------------------------------------------------------------------------------


def test_build_artifacts_sizes_and_vector_table(selftest):
    for p in (selftest.elf, selftest.bin, selftest.hex, selftest.map):
        assert p.is_file() and p.stat().st_size > 0, p
    assert not list(selftest.elf.parent.glob("*.tmp"))
    map_text = selftest.map.read_text()
    assert re.search(r"RAM\s+0x0*20000000\s+0x0*20000", map_text)  # 128 KiB at 0x20000000
    assert re.search(r"FLASH\s+0x0*8000000\s+0x0*100000", map_text)
    assert ".stack" in map_text

    mem = selftest.memory
    assert (mem.stack_bytes, mem.handler_stack_bytes) == (8192, 512)
    assert mem.ram_bytes == mem.data_bytes + mem.bss_bytes + mem.stack_bytes + mem.handler_stack_bytes
    # the two 4 KiB file buffers of the self-test are in .bss
    assert 8192 <= mem.bss_bytes < 12 * 1024
    assert 1024 < mem.flash_bytes < 32 * 1024
    # flash bytes = what the raw image holds (code, rodata and the .data initialisers)
    assert mem.flash_bytes == selftest.bin.stat().st_size
    assert mem.flash_free_bytes == FLASH_BYTES - mem.flash_bytes
    assert mem.ram_free_bytes == SRAM_BYTES - mem.ram_bytes
    assert section_sizes(selftest.elf) == mem.sections
    assert set(mem.sections) >= {".isr_vector", ".text", ".bss", ".stack"}

    # vector table at the start of flash: initial MSP = top of the handler stack, reset vector =
    # Reset_Handler (Thumb bit set); the thread stack sits at the very bottom of the SRAM
    vt = symbol(selftest.elf, "asc_vector_table")
    assert (vt.address, vt.size, vt.section) == (0x0800_0000, (16 + 82) * 4, ".isr_vector")
    sp0, reset = struct.unpack_from("<II", selftest.bin.read_bytes(), 0)
    top, bottom = symbol(selftest.elf, "__stack_top"), symbol(selftest.elf, "__stack_bottom")
    assert bottom.address == 0x2000_0000 and top.address - bottom.address == 8192
    assert sp0 == symbol(selftest.elf, "__handler_stack_top").address == top.address + 512
    assert sp0 % 8 == 0
    assert reset == symbol(selftest.elf, "Reset_Handler").address | 1


def test_elfinfo_errors(selftest, tmp_path):
    with pytest.raises(DeviceError, match="symbol 'no_such_symbol' not found"):
        symbol(selftest.elf, "no_such_symbol")
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"not an elf at all")
    with pytest.raises(DeviceError, match="not an ELF"):
        memory_usage(junk)
    with pytest.raises(DeviceError, match="not found"):
        memory_usage(tmp_path / "missing.elf")


def test_bad_build_arguments(tmp_path):
    with pytest.raises(DeviceError, match="no firmware application 'nope'") as ei:
        build_firmware("nope", tmp_path / "b")
    assert "selftest" in str(ei.value)
    with pytest.raises(DeviceError, match="nn='fast'"):
        build_firmware("selftest", tmp_path / "b", nn="fast")
    with pytest.raises(DeviceError, match="stack_bytes=1000"):
        build_firmware("selftest", tmp_path / "b", stack_bytes=1000)
    with pytest.raises(DeviceError, match="compiler / linker error") as ei:
        build_firmware("selftest", tmp_path / "b", extra_cflags=["-fno-such-flag-xyz"])
    assert "-fno-such-flag-xyz" in str(ei.value)


def test_link_error_is_not_reported_as_missing_newlib(tmp_path):
    """Every link command echoes --specs=nano.specs; a plain link error must still be reported as
    itself (here a second definition of a board function), not as a missing C library."""
    src = tmp_path / "dup.c"
    src.write_text("void asc_board_init(void) {}\n")
    with pytest.raises(DeviceError) as ei:
        build_firmware("selftest", tmp_path / "b", extra_srcs=[str(src)])
    msg = str(ei.value)
    assert "multiple definition" in msg and "asc_board_init" in msg and "newlib" not in msg


def test_ram_overflow_reports_bytes_over(selftest, tmp_path):
    extra = 140 * 1024
    with pytest.raises(DeviceError) as ei:
        build_firmware("selftest", tmp_path / "big", extra_cflags=[f"-DASC_SELFTEST_EXTRA_BSS_BYTES={extra}"])
    msg = str(ei.value)
    m = re.search(r"does not fit in the 128 KiB SRAM by (\d+) bytes", msg)
    assert m, msg
    # ld's overflow = the normal image's RAM + the extra buffer - 128 KiB (up to alignment)
    expected = selftest.ram_bytes + extra - SRAM_BYTES
    assert expected <= int(m.group(1)) <= expected + 8
    assert "fix:" in msg


def test_flash_overflow_reports_bytes_over(selftest, tmp_path):
    extra = FLASH_BYTES + 4096
    with pytest.raises(DeviceError) as ei:
        build_firmware("selftest", tmp_path / "bigflash", extra_cflags=[f"-DASC_SELFTEST_EXTRA_RODATA_BYTES={extra}"])
    m = re.search(r"does not fit in the 1 MiB flash by (\d+) bytes", str(ei.value))
    assert m, str(ei.value)
    assert int(m.group(1)) >= selftest.flash_bytes + 4096 - 64


def test_model_dir_nn_portable_and_cmsis_dsp_variables(selftest, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.h").write_text("#include <stdint.h>\nint32_t asc_model_probe(void);\n")
    (model / "model.c").write_text(
        '#include "model.h"\n#include "asc_nn.h"\nint32_t asc_model_probe(void) { return 7; }\n'
    )
    cmsis = tmp_path / "cmsisdsp"
    for d in ("Include", "PrivateInclude", "Source"):
        (cmsis / d).mkdir(parents=True)
    (cmsis / "Include" / "fake_arm_math.h").write_text("#define FAKE_ARM_MATH 1\n")
    (cmsis / "PrivateInclude" / "fake_private.h").write_text("#define FAKE_PRIVATE 1\n")
    (cmsis / "Source" / "fake_dsp.c").write_text(
        '#include "fake_arm_math.h"\n#include "fake_private.h"\n'
        "#ifndef ARM_MATH_LOOPUNROLL\n#error ARM_MATH_LOOPUNROLL not defined\n#endif\n"
        "int fake_dsp(void) { return FAKE_ARM_MATH + FAKE_PRIVATE; }\n"
    )
    img = build_firmware(
        "selftest", tmp_path / "b", model_dir=model, nn="portable",
        cmsis_dsp_dir=cmsis, cmsis_dsp_srcs=["Source/fake_dsp.c"],
    )
    objs = {p.name for p in (img.elf.parent / "obj").rglob("*.o")}
    nn_srcs = {p.name + ".o" for p in (Path(__file__).resolve().parents[1] / "firmware" / "nn").glob("*.c")}
    assert nn_srcs and nn_srcs <= objs
    assert {"model.c.o", "fake_dsp.c.o", "selftest_main.c.o", "board.c.o"} <= objs
    flags = (img.elf.parent / "build-flags.txt").read_text()
    assert "-DASC_NN_FORCE_PORTABLE" in flags and "-DARM_MATH_LOOPUNROLL" in flags
    assert "firmware/cmsis_shim" in flags
    # without a model the kernels are not compiled at all
    plain = {p.name for p in (selftest.elf.parent / "obj").rglob("*.o")}
    assert not (nn_srcs & plain)


def test_missing_toolchain_and_emulator_name_the_apt_package(selftest, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(DeviceError) as ei:
        build_firmware("selftest", tmp_path / "b")
    assert "arm-none-eabi-gcc not found" in str(ei.value)
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in str(ei.value)
    with pytest.raises(DeviceError) as ei:
        run_qemu(selftest.elf, workdir=tmp_path / "w", timeout_s=5)
    assert "qemu-system-arm not found" in str(ei.value)
    assert "apt-get install qemu-system-arm" in str(ei.value)


# ---- QEMU --------------------------------------------------------------------------------------


def test_selftest_console_uart_cmdline_files_fpu_stack(selftest, tmp_path):
    rng = random.Random(1234)
    data = bytes(rng.randrange(256) for _ in range(777))
    wd = tmp_path / "run"
    wd.mkdir()
    (wd / "in.bin").write_bytes(data)
    res = run_mode(selftest.elf, wd, "normal in.bin", args=["alpha", "b,c"])
    assert res.exit_code == 0
    out = res.stdout
    assert "selftest: start" in out and "selftest: done" in out
    assert "cmdline: selftest.elf alpha b,c" in out
    assert f"file: in=in.bin bytes=777 fnv1a=0x{fnv1a(data):08x}" in out
    assert (wd / "in.bin.out").read_bytes() == bytes(b ^ 0x5A for b in reversed(data))
    assert "fpu: 4.25*1000=4250" in out
    # the UART carries the same console text plus its own line
    assert "uart: hello" in res.uart and "selftest: done" in res.uart
    assert "uart: hello" not in out
    m = re.search(r"stack: before=(\d+) after=(\d+) size=(\d+) sum=(\d+)", out)
    before, after, size, total = map(int, m.groups())
    assert size == 8192
    assert total == sum(i & 0xFF for i in range(2048))
    # before: the deepest call so far (semihosting helpers); after: the 2 KiB buffer below main
    assert 0 < before < 1024 and max(before, 2048) < after < 4096


def test_instruction_counter_is_exact_and_deterministic(selftest, tmp_path):
    runs = [COUNTER_LINE.findall(run_mode(selftest.elf, tmp_path / f"r{i}", "normal").stdout) for i in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 8
    asm = [(int(n), int(d)) for kind, n, d in runs[0] if kind == "asm"]
    mix = [(int(n), int(d)) for kind, n, d in runs[0] if kind == "mix"]
    api = [(int(n), int(d)) for kind, n, d in runs[0] if kind == "api"]
    # `subs; bne` x n between two TIM2->CNT loads: 2n instructions + the first load itself
    assert asm == [(1000, 2001), (1000, 2001), (4000, 8001)]
    # `ldr; udiv; subs; bne`: one tick per instruction, not per cycle (udiv/ldr are multi-cycle)
    assert mix == [(1000, 4001), (1000, 4001)]
    # through the board API: the same per-instruction slope plus a constant call overhead
    assert api[0] == api[1]
    assert api[2][1] - api[0][1] == 2 * (4000 - 1000)
    assert 0 < api[0][1] - 2 * 1000 < 50


def test_counter_without_icount_is_not_instruction_exact(selftest, tmp_path):
    """Control: without -icount TIM2 follows host time, so the exact count above is icount's doing."""
    res = run_mode(selftest.elf, tmp_path / "r", "normal", icount=False)
    asm = [(int(n), int(d)) for kind, n, d in COUNTER_LINE.findall(res.stdout) if kind == "asm"]
    assert len(asm) == 3 and asm != [(1000, 2001), (1000, 2001), (4000, 8001)]


@pytest.mark.parametrize(
    "mode, cfsr, extra",
    [("fault", "0x00008200", "BFAR=0x30000000"),  # BFARVALID | PRECISERR, escalated to HardFault
     ("udf", "0x00010000", "BFAR=")],  # UNDEFINSTR
)
def test_fault_prints_registers_and_exits_3(selftest, tmp_path, mode, cfsr, extra):
    with pytest.raises(DeviceError) as ei:
        run_mode(selftest.elf, tmp_path / "w", mode)
    msg = str(ei.value)
    assert "exited with status 3" in msg and "HardFault" in msg
    for reg in ("r0=0x", "r1=0x", "r2=0x", "r3=0x", "r12=0x", "lr=0x", "pc=0x", "xpsr=0x",
                "HFSR=0x40000000", "MMFAR=0x", extra):
        assert reg in msg, (reg, msg)
    assert f"CFSR={cfsr}" in msg
    assert "arm-none-eabi-addr2line" in msg
    # the stacked pc lies inside main (where the self-test provokes the fault)
    pc = int(re.search(r"pc=(0x[0-9a-f]{8})", msg).group(1), 16)
    main = symbol(selftest.elf, "main")
    assert main.address <= pc < main.address + main.size
    res = run_mode(selftest.elf, tmp_path / "w2", mode, check=False)
    assert res.exit_code == 3 and "*** asc board: HardFault ***" in res.uart


def test_stack_high_water_and_overflow(selftest, tmp_path):
    out = run_mode(selftest.elf, tmp_path / "ok", "recurse 4000").stdout
    hw = int(re.search(r"recurse: high_water=(\d+)", out).group(1))
    assert 4000 <= hw < 4000 + 1024
    # past the 8 KiB thread stack: the push below 0x20000000 faults (STKERR) and the handler,
    # on its own stack, reports it
    with pytest.raises(DeviceError) as ei:
        run_mode(selftest.elf, tmp_path / "over", "recurse 20000")
    msg = str(ei.value)
    assert "exited with status 3" in msg and "STACK OVERFLOW" in msg and "8192-byte reservation" in msg
    cfsr = int(re.search(r"CFSR=(0x[0-9a-f]{8})", msg).group(1), 16)
    assert cfsr & (1 << 12)  # BusFault on exception stacking (STKERR)
    assert int(re.search(r"BFAR=(0x[0-9a-f]{8})", msg).group(1), 16) < 0x2000_0000
    assert "larger stack_bytes" in msg


def test_exit_status_propagates(selftest, tmp_path):
    assert run_mode(selftest.elf, tmp_path / "a", "exit 0").exit_code == 0
    assert run_mode(selftest.elf, tmp_path / "b", "exit 7", check=False).exit_code == 7
    with pytest.raises(DeviceError, match="exited with status 7"):
        run_mode(selftest.elf, tmp_path / "c", "exit 7")


def test_hang_is_killed_at_the_timeout(selftest, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as ei:
        run_mode(selftest.elf, tmp_path / "w", "hang", timeout_s=3)
    elapsed = time.monotonic() - t0
    msg = str(ei.value)
    assert "emulator did not finish within 3 s" in msg
    assert "selftest: hanging on purpose" in msg  # the last output is part of the message
    assert 2.5 < elapsed < 15


def test_stack_size_is_configurable(tmp_path):
    img = build_firmware("selftest", tmp_path / "b", stack_bytes=4096)
    assert img.stack_bytes == 4096
    top, bottom = symbol(img.elf, "__stack_top"), symbol(img.elf, "__stack_bottom")
    assert top.address - bottom.address == 4096
    out = run_mode(img.elf, tmp_path / "w", "normal").stdout
    assert re.search(r"stack: before=\d+ after=\d+ size=4096 ", out)


def test_run_qemu_rejects_missing_elf_and_bad_args(selftest, tmp_path):
    with pytest.raises(DeviceError, match="firmware ELF not found"):
        run_qemu(tmp_path / "nope.elf", workdir=tmp_path, timeout_s=5)
    with pytest.raises(DeviceError, match="whitespace"):
        run_qemu(selftest.elf, workdir=tmp_path, timeout_s=5, args=["a b"])
    assert os.listdir(tmp_path) == []
