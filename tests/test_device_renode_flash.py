"""The Renode backend files (firmware/renode/), its runner (asc_edge.device.renode) and the flash /
serial tooling (asc_edge.device.flash).

Renode itself cannot be installed here, so nothing in this file emulates firmware on it. What is
checked for real: the platform description against the linker script and the board code, the
.resc / .robot contract with the runner, the RCC model's register behaviour (run with CPython),
the runner's handling of renode-test's outputs (through a stand-in `renode-test` executable that
writes what bench.robot writes: it verifies our parsing and error paths, not Renode), the
missing-tool errors, pyOCD's real probe listing and target knowledge (when pyOCD is installed),
and the serial reader on a pseudo-terminal.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from asc_edge.device import build_firmware
from asc_edge.device import flash as flash_mod
from asc_edge.device import renode as renode_mod
from asc_edge.device.flash import TARGETS, flash_image, openocd_command, pyocd_command, read_serial_output
from asc_edge.device.renode import (
    BENCH_RESC,
    BENCH_ROBOT,
    CLIPS_ADDRESS,
    PLATFORM_REPL,
    RCC_MODEL,
    find_renode,
    renode_command,
    repl_peripherals,
    run_renode,
)
from asc_edge.errors import DeviceError

REPO = Path(__file__).resolve().parents[1]
LINKER_SCRIPT = REPO / "firmware" / "board" / "stm32f4" / "stm32f405.ld"
BOARD_DIR = REPO / "firmware" / "board" / "stm32f4"


def _empty_path(monkeypatch, tmp_path: Path) -> Path:
    """PATH = one empty directory (so `renode`, `renode-test`, `openocd` are absent even where
    they are installed); returns the directory, where a test may place executables."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(d))
    monkeypatch.setattr(renode_mod, "LOCAL_RENODE", tmp_path / "no-local-renode")  # nor the checkout's copy
    return d


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _linker_regions() -> dict[str, tuple[int, int]]:
    text = re.sub(r"/\*.*?\*/", "", LINKER_SCRIPT.read_text(), flags=re.S)
    block = re.search(r"MEMORY\s*\{(.*?)\}", text, re.S).group(1)
    units = {"": 1, "K": 1024, "M": 1024 * 1024}
    out = {}
    for m in re.finditer(r"(\w+)\s*\([^)]*\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+|\d+)\s*,\s*"
                         r"LENGTH\s*=\s*(\d+)\s*([KM]?)", block):
        out[m.group(1)] = (int(m.group(2), 0), int(m.group(3)) * units[m.group(4)])
    return out


# ---- platform description ----------------------------------------------------------------------


def test_repl_is_self_contained():
    text = PLATFORM_REPL.read_text()
    code = "\n".join(re.sub(r"//.*$", "", ln) for ln in text.splitlines())
    assert not re.search(r"^\s*using\s", code, re.M), "the .repl must not include Renode's stock platforms"
    assert "http://" not in text and "https://" not in text, "nothing may be downloaded at load time"
    assert "ApplySVD" not in code
    for p in (BENCH_RESC, BENCH_ROBOT, RCC_MODEL):
        assert "http://" not in p.read_text() and "https://" not in p.read_text(), p


def test_repl_memories_match_the_linker_script():
    ld = _linker_regions()
    assert set(ld) == {"FLASH", "RAM", "EXTRAM"}, ld
    per = repl_peripherals()
    mapped = {p.name: (p.address, p.size) for p in per.values() if p.type == "Memory.MappedMemory"}
    assert mapped["flash"] == ld["FLASH"] == (0x08000000, 1024 * 1024)
    assert mapped["sram"] == ld["RAM"] == (0x20000000, 128 * 1024)
    # bench input region: where bench.resc / bench_main.c put clips.bin, 64 MiB
    assert mapped["clipmem"] == (CLIPS_ADDRESS, 64 * 1024 * 1024)
    # external SRAM on the FSMC (bench --external-ram): the arena's section .ext_ram
    assert mapped["extram"] == ld["EXTRAM"] == (0x64000000, 4 * 1024 * 1024)
    # Renode maps memories in whole pages: sizes must be page multiples (1 KiB at least)
    for name, (addr, size) in mapped.items():
        assert addr % 0x1000 == 0 and size % 0x1000 == 0, name
    # no two regions overlap
    spans = sorted((p.address, p.address + (p.size or 4), p.name) for p in per.values() if p.address is not None)
    for (a0, a1, n0), (b0, b1, n1) in zip(spans, spans[1:]):
        assert a1 <= b0, f"{n0} overlaps {n1}"


def test_repl_parser_detects_a_divergent_region(tmp_path):
    """The comparison above is only meaningful if the parser really reads the sizes."""
    bad = tmp_path / "bad.repl"
    bad.write_text(PLATFORM_REPL.read_text().replace("size: 0x20000\n", "size: 0x30000\n", 1))
    assert repl_peripherals(bad)["sram"].size == 0x30000 != _linker_regions()["RAM"][1]
    with pytest.raises(DeviceError, match="registration"):
        (tmp_path / "odd.repl").write_text("x: Memory.MappedMemory @ cpu 5\n    size: 0x1000\n")
        repl_peripherals(tmp_path / "odd.repl")


def test_repl_peripherals_and_counter_clocks():
    per = repl_peripherals()
    assert per["cpu"].type == "CPU.CortexM"
    assert per["cpu"].attributes["cpuType"] == '"cortex-m4"'
    assert (per["nvic"].type, per["nvic"].address) == ("IRQControllers.NVIC", 0xE000E000)
    assert (per["usart1"].type, per["usart1"].address) == ("UART.STM32_UART", 0x40011000)
    assert (per["usart2"].type, per["usart2"].address) == ("UART.STM32_UART", 0x40004400)
    # TIM2 is not a timer model: bench.resc attaches the exact instruction counter there
    assert "timer2" not in per
    resc = (REPO / "firmware" / "renode" / "bench.resc").read_text()
    assert re.search(r"^machine PyDevFromFile \$ORIGIN/asc_icount_timer.py 0x40000000 0x400 True \"timer2\"$", resc, re.M)
    assert "ExecutedInstructions" in (REPO / "firmware" / "renode" / "asc_icount_timer.py").read_text()
    # Renode 1.14 has Miscellaneous.DWT (CYCCNT); the .repl declares it at the ARMv7-M address
    assert (per["dwt"].type, per["dwt"].address) == ("Miscellaneous.DWT", 0xE0001000)
    mips = int(per["cpu"].attributes["PerformanceInMips"])
    for name, key in (("dwt", "frequency"), ("nvic", "systickFrequency")):
        assert int(per[name].attributes[key]) == mips * 1_000_000, name
    assert "CYCCNT" in PLATFORM_REPL.read_text() and "time quantum" in PLATFORM_REPL.read_text()


def test_every_peripheral_the_board_code_touches_is_modelled():
    """Each register block board.c / startup / fault handler accesses is backed by a .repl entry, the
    RCC model attached by bench.resc, or the Cortex-M core (NVIC/SCB region)."""
    per = repl_peripherals()
    spans = [(p.address, p.address + p.size, p.name) for p in per.values()
             if p.address is not None and p.size is not None]
    spans.append((0x40023800, 0x40023C00, "rcc (PyDevFromFile in bench.resc)"))
    spans.append((0x40000000, 0x40000400, "timer2 (asc_icount_timer.py, PyDevFromFile in bench.resc)"))
    spans.append((0xE000E000, 0xE000F000, "nvic"))  # NVIC, SysTick and the SCB (CPACR, CFSR, ...)
    spans.append((0xE0001000, 0xE0002000, "dwt"))
    addrs = set()
    for src in sorted(BOARD_DIR.glob("*.[ch]")):
        text = src.read_text()
        for m in re.finditer(r"#define\s+ASC_\w+_BASE\s+(0x[0-9A-Fa-f]+)u", text):
            addrs.add(int(m.group(1), 16))
        for m in re.finditer(r"\(volatile uint32_t \*\)(0x[0-9A-Fa-f]+)u", text):
            addrs.add(int(m.group(1), 16))
    assert {0x40023800, 0x40020000, 0x40011000, 0x40000000} <= addrs  # the parse found the blocks
    for a in sorted(addrs):
        assert any(lo <= a < hi for lo, hi, _ in spans), f"0x{a:08x} used by the board code is not modelled"


@pytest.fixture(scope="module")
def uart_only_selftest(tmp_path_factory):
    """A UART-only board image (the configuration Renode runs)."""
    return build_firmware("selftest", tmp_path_factory.mktemp("fw") / "selftest",
                          extra_cflags=["-DASC_BOARD_SEMIHOSTING=0"], jobs=2)


def test_elf_load_segments_land_in_repl_memories(uart_only_selftest):
    """Every byte sysbus LoadELF writes (PT_LOAD file contents, at their physical addresses) and
    every run-time address of the sections falls inside a MappedMemory of the .repl."""
    mem = [(p.address, p.address + p.size) for p in repl_peripherals().values() if p.type == "Memory.MappedMemory"]
    with open(uart_only_selftest.elf, "rb") as f:
        elf = ELFFile(f)
        segs = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert segs
        for s in segs:
            for base, n in ((s["p_paddr"], s["p_filesz"]), (s["p_vaddr"], s["p_memsz"])):
                if n:
                    assert any(lo <= base and base + n <= hi for lo, hi in mem), (hex(base), n)
        # the vector table (initial SP, reset vector) is where bench.resc points VTOR
        vec = elf.get_section_by_name(".isr_vector")
        assert vec["sh_addr"] == 0x08000000
    assert re.search(r"^cpu VectorTableOffset 0x08000000$", BENCH_RESC.read_text(), re.M)


# ---- the RCC model (IronPython script, exercised with CPython) -----------------------------------


class _Request:
    """The fields Renode passes to a Python peripheral (older lower-case spelling)."""

    def __init__(self, kind: str, offset: int = 0, value: int = 0):
        self.isInit, self.isRead, self.isWrite = kind == "init", kind == "read", kind == "write"
        self.offset, self.value = offset, value


class _RequestNew:
    """Renode >= 1.15 spelling."""

    def __init__(self, kind: str, offset: int = 0, value: int = 0):
        self.IsInit, self.IsRead, self.IsWrite = kind == "init", kind == "read", kind == "write"
        self.Offset, self.Value = offset, value


@pytest.mark.parametrize("req_cls", [_Request, _RequestNew])
def test_rcc_model_register_behaviour(req_cls):
    code = compile(RCC_MODEL.read_text(), str(RCC_MODEL), "exec")
    scope: dict = {}

    def access(kind, offset=0, value=0):
        req = req_cls(kind, offset, value)
        scope["request"] = req
        exec(code, scope)
        return getattr(req, "Value", getattr(req, "value", None))

    def rd(off):
        return access("read", off)

    access("init")
    assert rd(0x00) == 0x83                     # CR reset: HSION + HSIRDY + trim
    assert rd(0x04) == 0x24003010 and rd(0x74) == 0x0E000000 and rd(0x30) == 0x00100000
    # board.c's read-modify-write of the enable registers reads back
    for off, bit in ((0x30, 0), (0x44, 4), (0x40, 0)):
        access("write", off, rd(off) | (1 << bit))
        assert rd(off) & (1 << bit)
    assert rd(0x30) == 0x00100001
    # HSE and PLL become ready when switched on, and not before
    assert not rd(0x00) & (1 << 17)
    access("write", 0x00, rd(0x00) | (1 << 16) | (1 << 24))
    assert rd(0x00) & (1 << 17) and rd(0x00) & (1 << 25)
    access("write", 0x00, 0x1)                 # HSEON/PLLON off, and an attempt to clear HSIRDY ...
    assert rd(0x00) == 0x3                      # ... which is read-only: HSI on -> HSIRDY
    access("write", 0x00, 1 << 17)              # writing a ready bit alone does not set it
    assert rd(0x00) == 0
    # CFGR: the requested system clock is reported in SWS at once; SWS itself is read-only
    access("write", 0x08, 0x2 | (0x5 << 10))
    assert rd(0x08) == 0x2 | (0x2 << 2) | (0x5 << 10)
    access("write", 0x08, 0xC)
    assert rd(0x08) == 0
    # LSE / LSI ready flags
    access("write", 0x70, 1)
    access("write", 0x74, rd(0x74) | 1)
    assert rd(0x70) == 0x3 and rd(0x74) & 0x3 == 0x3
    assert rd(0x3FC) == 0                       # unimplemented offsets read as zero


# ---- bench.resc / bench.robot and the runner ------------------------------------------------------


def test_resc_loads_the_platform_elf_and_clips():
    text = BENCH_RESC.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert "machine LoadPlatformDescription $ORIGIN/stm32f405.repl" in lines
    assert "sysbus LoadELF $elf" in lines
    m = [ln for ln in lines if ln.startswith("sysbus LoadBinary $clips ")]
    assert len(m) == 1 and int(m[0].split()[-1], 0) == CLIPS_ADDRESS == repl_peripherals()["clipmem"].address
    pydev = [ln for ln in lines if ln.startswith("machine PyDevFromFile ")]
    assert len(pydev) == 2
    _, _, path, addr, size, initable, name = pydev[0].split()
    assert path == "$ORIGIN/" + RCC_MODEL.name and RCC_MODEL.is_file()
    assert (int(addr, 0), int(size, 0), initable, name) == (0x40023800, 0x400, "True", '"rcc"')
    assert "sysbus.usart1 CreateFileBackend $uart_log true" in lines
    assert "sysbus.usart2 CreateFileBackend $debug_log true" in lines  # the layer-debug dump channel
    assert not any(ln == "start" or ln.startswith("start ") for ln in lines), \
        "bench.resc must leave starting to the caller (the Robot test attaches its tester first)"
    assert "$uart_log?=" in text


def test_robot_file_matches_the_runner_contract(tmp_path):
    text = BENCH_ROBOT.read_text()
    cmd = renode_command(tmp_path / "a.elf", tmp_path / "clips.bin", out_dir=tmp_path / "out", renode_test="rt")
    names = [cmd[i + 1].split(":", 1)[0] for i, a in enumerate(cmd) if a == "--variable"]
    assert names == ["ELF", "CLIPS", "OUT_DIR", "UART_TIMEOUT_S"]
    variables = text.split("*** Variables ***", 1)[1].split("***", 1)[0]
    for n in names:
        assert re.search(rf"^\$\{{{n}\}}\s", variables, re.M), f"bench.robot does not declare ${{{n}}}"
    assert "include @${CURDIR}/bench.resc" in text
    assert "Create Terminal Tester  sysbus.usart1" in text
    # one wait per clip result line (R ...) or a stop line, leaving the loop on the stop line
    assert re.search(r"Wait For Line On Uart\s+\^R \|\$\{STOP_PATTERN\}.*treatAsRegex=true.*pauseEmulation=true", text)
    assert "re.search($STOP_PATTERN, $m['line'])" in text and "IF    ${stop}    BREAK" in text
    stop = re.search(r"^\$\{STOP_PATTERN\}\s+(.+)$", text, re.M).group(1)
    for line in ("ASC-BENCH done", "ASC-BENCH error: short header", "*** asc board: HardFault ***",
                 "asc board: assertion failed: x"):
        assert re.search(stop, line), line
    assert not re.search(stop, "R 0 12 34 5 -3")
    assert "Execute Command    sysbus.cpu ExecutedInstructions" in text
    assert "${OUT_DIR}/uart.log" in text and "${OUT_DIR}/executed_instructions.txt" in text
    assert "Should Contain" in text and "${DONE_LINE}" in text and "Should Be True          ${n} > 0" in text


def test_renode_command_uses_the_repo_robot_file(tmp_path):
    elf, clips = tmp_path / "bench.elf", tmp_path / "clips.bin"
    cmd = renode_command(elf, clips, out_dir=tmp_path / "out", uart_timeout_s=90.4, renode_test="/opt/x/renode-test")
    assert cmd == [
        "/opt/x/renode-test",
        "--variable", f"ELF:{elf.resolve()}",
        "--variable", f"CLIPS:{clips.resolve()}",
        "--variable", f"OUT_DIR:{(tmp_path / 'out').resolve()}",
        "--variable", "UART_TIMEOUT_S:90",
        "--results-dir", str((tmp_path / "out" / "robot").resolve()),
        str(REPO / "firmware" / "renode" / "bench.robot"),
    ]
    assert Path(cmd[-1]).is_file()
    with pytest.raises(DeviceError, match="whitespace"):
        renode_command(tmp_path / "my bench.elf", clips, out_dir=tmp_path)
    with pytest.raises(DeviceError, match="positive"):
        renode_command(elf, clips, out_dir=tmp_path, uart_timeout_s=0)


def test_renode_absent_is_a_clear_error(monkeypatch, tmp_path):
    _empty_path(monkeypatch, tmp_path)
    with pytest.raises(DeviceError) as ei:
        find_renode()
    msg = str(ei.value)
    assert "Renode is not installed" in msg and "registries" in msg
    assert "Renode 1.14" in msg and "asc-edge bench --qemu" in msg
    (tmp_path / "a.elf").write_bytes(b"\x7fELF")
    (tmp_path / "clips.bin").write_bytes(b"\0" * 64)
    with pytest.raises(DeviceError, match="Renode is not installed"):
        run_renode(tmp_path / "a.elf", tmp_path / "clips.bin", workdir=tmp_path / "w", timeout_s=5)
    assert not (tmp_path / "w").exists()  # nothing was started or written


def test_find_renode_on_path(monkeypatch, tmp_path):
    d = _empty_path(monkeypatch, tmp_path)
    exe = _executable(d / "renode", "#!/bin/sh\nexit 0\n")
    assert find_renode() == str(exe)
    with pytest.raises(DeviceError, match="renode-test"):
        renode_mod.find_renode_test()


def test_run_renode_input_checks(monkeypatch, tmp_path):
    _empty_path(monkeypatch, tmp_path)
    with pytest.raises(DeviceError, match="firmware ELF not found"):
        run_renode(tmp_path / "none.elf", tmp_path / "c.bin", workdir=tmp_path, timeout_s=5)
    (tmp_path / "a.elf").write_bytes(b"\x7fELF")
    with pytest.raises(DeviceError, match="bench input image not found"):
        run_renode(tmp_path / "a.elf", tmp_path / "c.bin", workdir=tmp_path, timeout_s=5)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:  # sparse: 64 MiB + 1 byte
        f.truncate(64 * 1024 * 1024 + 1)
    with pytest.raises(DeviceError, match="clipmem region"):
        run_renode(tmp_path / "a.elf", big, workdir=tmp_path, timeout_s=5)


# A stand-in for Renode's renode-test: parses the same --variable arguments and writes the two
# files bench.robot writes (OUT_DIR/uart.log, OUT_DIR/executed_instructions.txt), according to the
# scenario in $FAKE_SCENARIO. It exercises run_renode's result handling; it does not emulate.
_FAKE_RENODE_TEST = textwrap.dedent(f"""\
    #!{sys.executable}
    import os, sys, time
    args = sys.argv[1:]
    v = {{}}
    for i, a in enumerate(args):
        if a == "--variable":
            k, _, val = args[i + 1].partition(":")
            v[k] = val
    assert args[args.index("--results-dir") + 1] == os.path.join(v["OUT_DIR"], "robot")
    assert args[-1].endswith("firmware/renode/bench.robot"), args[-1]
    assert os.path.isfile(v["ELF"]) and os.path.isfile(v["CLIPS"])
    sc = os.environ["FAKE_SCENARIO"]
    os.makedirs(os.path.join(v["OUT_DIR"], "robot"), exist_ok=True)
    def put(name, text):
        with open(os.path.join(v["OUT_DIR"], name), "w") as f:
            f.write(text)
    if sc == "hang":
        put("uart.log", "ASC-BENCH v1 items=2 kind=0\\n")
        time.sleep(30)
    if sc == "rfwarn":  # renode-test's warning for another Robot Framework version; the run goes on
        print("Required `robotframework` version is `6.0.2`, while `7.0.1` is installed. Tests may not work.")
        put("uart.log", "ASC-BENCH v1 items=1 kind=0 classes=10\\nR 0 100 200 1 2\\nASC-BENCH done\\n")
        put("executed_instructions.txt", "42")
        sys.exit(0)
    if sc == "nodeps":
        print("No module named 'robot'\\nPlease install required dependencies with `pip install -r x`")
        sys.exit(1)
    if sc == "ok":
        put("uart.log", "ASC-BENCH v1 items=1 kind=0 classes=10\\nR 0 100 200 1 2\\nASC-BENCH done\\n")
        put("executed_instructions.txt", "0x00000000000F4240")
        print("Tests finished successfully :)")
        sys.exit(0)
    if sc == "fault":
        put("uart.log", "ASC-BENCH v1 items=1\\n\\n*** asc board: HardFault ***\\n r0=0x00000000 "
            "lr=0x08000123 pc=0x08000456 xpsr=0x61000000\\n CFSR=0x00008200 EXC_RETURN=0xfffffffd\\n")
        put("executed_instructions.txt", "5000")
        sys.exit(1)
    if sc == "error":
        put("uart.log", "ASC-BENCH error: bad clips.bin header (magic/version/kind/item size)\\n")
        put("executed_instructions.txt", "5000")
        sys.exit(1)
    if sc == "silent":
        print("Output:  " + os.path.join(v["OUT_DIR"], "robot", "output.xml"))
        put("uart.log", "")
        sys.exit(1)
    sys.exit(2)
""")


@pytest.fixture
def fake_renode(monkeypatch, tmp_path):
    d = _empty_path(monkeypatch, tmp_path)
    _executable(d / "renode", "#!/bin/sh\nexit 0\n")
    _executable(d / "renode-test", _FAKE_RENODE_TEST)
    (tmp_path / "bench.elf").write_bytes(b"\x7fELF")
    (tmp_path / "clips.bin").write_bytes(b"ASCB" + b"\0" * 60)

    def run(scenario, timeout_s=20.0):
        monkeypatch.setenv("FAKE_SCENARIO", scenario)
        return run_renode(tmp_path / "bench.elf", tmp_path / "clips.bin", workdir=tmp_path / "work",
                          timeout_s=timeout_s)

    return run


def test_run_renode_parses_the_robot_outputs(fake_renode, tmp_path):
    res = fake_renode("ok")
    assert res.executed_instructions == 1_000_000
    assert res.uart_text.endswith("ASC-BENCH done\n") and "R 0 100 200" in res.uart_text
    assert res.results_dir == (tmp_path / "work" / "renode-run").resolve()
    assert (res.results_dir / "uart.log").is_file() and (res.results_dir / "robot").is_dir()
    assert res.command[0].endswith("renode-test") and res.command[-1] == str(BENCH_ROBOT)
    assert res.wall_s > 0
    # a second run replaces the results atomically; no staging directories are left behind
    res2 = fake_renode("ok")
    assert res2.results_dir == res.results_dir
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["renode-run"]


def test_run_renode_failures(fake_renode, tmp_path):
    with pytest.raises(DeviceError) as ei:
        fake_renode("fault")
    msg = str(ei.value)
    assert "HardFault" in msg and "pc=0x08000456" in msg
    assert "arm-none-eabi-addr2line" in msg and "0x08000456 0x08000123" in msg
    with pytest.raises(DeviceError, match=r"error on Renode \(logs: .*\): ASC-BENCH error: bad clips.bin header"):
        fake_renode("error")
    with pytest.raises(DeviceError, match="never printed 'ASC-BENCH done'") as ei:
        fake_renode("silent")
    # messages name the results directory under its final name, not the staging name it had while running
    final = str((tmp_path / "work" / "renode-run").resolve())
    assert f"{final}/robot/output.xml" in str(ei.value) and "renode-run.tmp-" not in str(ei.value)
    with pytest.raises(DeviceError, match="Robot Framework") as ei:
        fake_renode("nodeps")
    assert "requirements.txt" in str(ei.value)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="did not finish within 2 s") as ei:
        fake_renode("hang", timeout_s=2)
    assert time.monotonic() - t0 < 15
    assert "ASC-BENCH v1 items=2" in str(ei.value)


def test_other_robot_framework_version_only_warns(fake_renode):
    """renode-test prints a warning for a Robot Framework other than 6.0.2 and runs: so must we."""
    assert fake_renode("rfwarn").executed_instructions == 42


def test_renode_test_gets_a_python_with_robot_framework(monkeypatch):
    monkeypatch.delenv("RENODE_PYTHON", raising=False)
    assert renode_mod.renode_python() == sys.executable  # the project's environment has the requirements
    monkeypatch.setenv("RENODE_PYTHON", "/opt/py/bin/python3")
    assert renode_mod.renode_python() == "/opt/py/bin/python3"


def test_count_parser():
    assert renode_mod._parse_count("0x00000000000F4240\n") == 1_000_000
    assert renode_mod._parse_count("1234") == 1234
    assert renode_mod._parse_count("There is no such property") is None
    assert renode_mod._parse_count("") is None


# ---- flash -----------------------------------------------------------------------------------------


@pytest.fixture
def built_images(tmp_path):
    """A build directory's artefact set (flash_image only reads the files' names and existence
    before a programmer runs)."""
    d = tmp_path / "build"
    d.mkdir()
    for ext in (".elf", ".bin", ".hex", ".map"):
        (d / f"board{ext}").write_bytes(b"x")
    return d


def test_flash_without_probe_names_the_built_images(monkeypatch, built_images):
    monkeypatch.setattr(flash_mod, "_pyocd_available", lambda: True)
    monkeypatch.setattr(flash_mod, "_pyocd_probes", lambda: [])
    with pytest.raises(DeviceError) as ei:
        flash_image(built_images / "board.hex", tool="pyocd")
    msg = str(ei.value)
    assert msg.startswith("no debug probe found (ST-LINK/CMSIS-DAP); the built images are at ")
    for ext in (".hex", ".elf", ".bin"):
        assert str(built_images / f"board{ext}") in msg
    assert "board.map" not in msg
    assert "connect the board's ST-LINK USB" in msg
    assert f"flash {built_images / 'board.hex'} with STM32CubeProgrammer" in msg


def test_flash_without_probe_real_pyocd(built_images):
    """pyOCD's real USB probe enumeration (no probe is attached on the test machines)."""
    pytest.importorskip("pyocd")
    if flash_mod._pyocd_probes():
        pytest.skip("a debug probe is attached: this test would program it")
    with pytest.raises(DeviceError, match="no debug probe found") as ei:
        flash_image(built_images / "board.elf", tool="pyocd", timeout_s=30)
    assert str(built_images / "board.hex") in str(ei.value)


def test_pyocd_target_knowledge_without_a_pack(monkeypatch, built_images):
    """pyOCD's built-in targets lack the STM32F405/F407: without an installed pack the error says
    how to get one (checked against the installed pyOCD, offline)."""
    pytest.importorskip("pyocd")
    t = TARGETS["stm32f405rg"]
    name = flash_mod.pyocd_target_name(t)
    if name is not None:
        pytest.skip(f"a pack providing {name} is installed here")
    from pyocd.target import TARGET

    assert not any(k.startswith(("stm32f405", "stm32f407")) for k in TARGET)
    assert any(k.startswith("stm32f4") for k in TARGET)  # the lookup itself works
    assert flash_mod.pyocd_target_name(t, pack=Path("/some/Keil.STM32F4xx_DFP.pack")) == "stm32f405rgtx"

    class Probe:
        unique_id = "066DFF123456"

    monkeypatch.setattr(flash_mod, "_pyocd_probes", lambda: [Probe()])
    with pytest.raises(DeviceError) as ei:
        flash_image(built_images / "board.hex", tool="pyocd")
    assert "pyocd pack install stm32f405rg" in str(ei.value) and "tool='openocd'" in str(ei.value)


def test_flash_tool_selection_and_missing_tools(monkeypatch, tmp_path, built_images):
    d = _empty_path(monkeypatch, tmp_path)
    img = built_images / "board.bin"
    # neither programmer
    monkeypatch.setattr(flash_mod, "_pyocd_available", lambda: False)
    with pytest.raises(DeviceError) as ei:
        flash_image(img)
    assert "pip install pyocd" in str(ei.value) and "apt-get install openocd" in str(ei.value)
    with pytest.raises(DeviceError, match="apt-get install openocd"):
        flash_image(img, tool="openocd")
    with pytest.raises(DeviceError, match="pyOCD is not installed"):
        flash_image(img, tool="pyocd")
    # auto -> OpenOCD when pyOCD is missing; a programmer that finds no probe -> the probe error
    log = tmp_path / "openocd.args"
    _executable(d / "openocd", f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\n"
                "echo 'Error: open failed' >&2\nexit 1\n")
    with pytest.raises(DeviceError, match="no debug probe found") as ei:
        flash_image(img, target="stm32f407vg")
    assert str(built_images / "board.hex") in str(ei.value)
    assert log.read_text().splitlines() == [
        "-f", "interface/stlink.cfg", "-f", "target/stm32f4x.cfg",
        "-c", f"program {{{img}}} 0x08000000 verify reset exit"]
    # auto prefers pyOCD only when it can use the target offline; otherwise OpenOCD
    monkeypatch.setattr(flash_mod, "_pyocd_available", lambda: True)
    monkeypatch.setattr(flash_mod, "pyocd_target_name", lambda t, pack=None: None)
    log.unlink()
    with pytest.raises(DeviceError, match="no debug probe found"):
        flash_image(img)
    assert log.is_file()
    # a successful programmer run returns the record
    _executable(d / "openocd", "#!/bin/sh\necho '** Programming Finished **'\necho '** Verified OK **'\nexit 0\n")
    out = flash_image(built_images / "board.elf", tool="openocd", timeout_s=10)
    assert out["tool"] == "openocd" and out["target"] == "stm32f405rg" and "Verified OK" in out["output"]
    assert out["command"][-1] == f"program {{{built_images / 'board.elf'}}} verify reset exit"
    # other programmer failures are not mistaken for a missing probe
    _executable(d / "openocd", "#!/bin/sh\necho 'Error: stm32x device protected'\nexit 1\n")
    with pytest.raises(DeviceError, match="failed to program board.elf") as ei:
        flash_image(built_images / "board.elf", tool="openocd")
    assert "device protected" in str(ei.value)


def test_flash_argument_errors(tmp_path, built_images):
    with pytest.raises(DeviceError, match="firmware image not found"):
        flash_image(tmp_path / "nope.hex")
    with pytest.raises(DeviceError, match="cannot flash a .map file"):
        flash_image(built_images / "board.map")
    with pytest.raises(DeviceError, match="unknown flash target"):
        flash_image(built_images / "board.hex", target="stm32f103c8")
    with pytest.raises(DeviceError, match="unknown flash tool"):
        flash_image(built_images / "board.hex", tool="jlink")
    with pytest.raises(DeviceError, match="CMSIS pack file not found"):
        flash_image(built_images / "board.hex", pack=tmp_path / "missing.pack")


def test_programmer_command_lines(tmp_path):
    img = tmp_path / "a.hex"
    assert openocd_command(img)[-1] == f"program {{{img}}} verify reset exit"
    cmd = pyocd_command(tmp_path / "a.bin", "stm32f405rgtx", probe_uid="0670FF", pack=tmp_path / "p.pack")
    assert cmd[:4] == [sys.executable, "-m", "pyocd", "load"]
    assert cmd[cmd.index("-t") + 1] == "stm32f405rgtx" and cmd[cmd.index("--format") + 1] == "bin"
    assert cmd[cmd.index("-u") + 1] == "0670FF" and cmd[cmd.index("--pack") + 1] == str(tmp_path / "p.pack")
    assert cmd[-1] == f"{tmp_path / 'a.bin'}@0x08000000"
    assert pyocd_command(tmp_path / "a.elf", "stm32f405rgtx")[-1] == str(tmp_path / "a.elf")
    with pytest.raises(DeviceError, match="braces"):
        openocd_command(tmp_path / "we{ird}.hex")


# ---- serial output -------------------------------------------------------------------------------


def test_read_serial_output_on_a_pty():
    master, slave = os.openpty()
    port = os.ttyname(slave)
    lines = [b"boot\r\n", b"class=park ms=12\r\n", b"ASC-BENCH do", b"ne\r\n", b"after\r\n"]

    def board():
        for chunk in lines:
            time.sleep(0.05)
            os.write(master, chunk)

    th = threading.Thread(target=board)
    th.start()
    try:
        text = read_serial_output(port, timeout_s=10, until="ASC-BENCH done")
    finally:
        th.join()
    assert "class=park ms=12" in text and "ASC-BENCH done" in text
    # nothing more arrives: the wait ends at the time limit with what was received
    os.write(master, b"partial line")
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="did not arrive") as ei:
        read_serial_output(port, timeout_s=0.5, until="ASC-BENCH done")
    assert time.monotonic() - t0 < 5
    os.close(master)
    os.close(slave)
    with pytest.raises(DeviceError, match="cannot open serial port"):
        read_serial_output("/dev/nonexistent-tty", timeout_s=0.1)
    with pytest.raises(DeviceError, match="baud rate"):
        read_serial_output(port, timeout_s=0.1, baud=12345)
