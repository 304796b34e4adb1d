"""Cortex-M4 cycle estimate from the executed instruction mix, as a range (zero-wait-state best case ..
flash-wait-state worst case), from an execution trace of QEMU's emulated STM32F405.

QEMU counts instructions, not cycles. This module runs the firmware once more **without** ``-icount``
and with ``-d in_asm,exec,nochain`` (Debian's QEMU 7.2 ships no ``qemu-plugin.h``, so no TCG plugin
can be built): ``in_asm`` prints every translation block (TB) once, with the address, encoding and
disassembly of each Thumb instruction; ``exec`` with ``nochain`` prints the start PC of every executed
TB. The log streams through a FIFO and is folded in Python (one bench clip: ~57 M instructions,
~2.7 M TB executions, ~200 MB of log that never touches the disk). Each TB execution runs all its
instructions (without ``-icount`` QEMU never ends a TB early at an I/O access); the next TB's start PC
says whether the TB's final branch was taken.

Timings: ARM Cortex-M4 Technical Reference Manual (DDI 0439B, r0p1), section 3.3.1 "Cortex-M4
instructions", Table 3-1 (integer and DSP instructions; P = pipeline refill, 1 to 3 cycles; N =
registers in the list) with the pairing rules of section 3.3.2 "Load/store timings", and chapter 7
"Floating Point Unit", Table 7-1 (FPU instructions). Flash: STM32F405 reference manual RM0090,
section 3.5.1 Table 10 (5 wait states at 150-168 MHz, 2.7-3.6 V) and section 3.5.2 (ART
accelerator: 128-bit flash lines, instruction prefetch, 64 I-cache and 8 D-cache lines).

Bounds, in CPU cycles (:class:`CycleModel`):

* ``cycles_min``: zero wait states, every best case of the TRM: P = 1, SDIV/UDIV 2, a single load
  that follows a single load (its address not depending on that load) pipelined to 1 cycle, a store
  1, an IT instruction folded (0), a conditional instruction of an IT block that fails its condition
  1 (we cannot see the flags, so every one is assumed to fail).
* ``cycles_max_zero_ws``: zero wait states, every worst case of the TRM: P = 3, divides 12, no
  load pipelining, stores 2, IT 1, conditional instructions executed, +1 for a load/store whose
  address register the previous data-processing instruction wrote (no forwarding path, 3.3.2) and
  +1 for a literal load ``LDR Rx,[PC,#imm]`` (fetch contention, 3.3.2).
* ``cycles_max``: ``cycles_max_zero_ws`` on the STM32F405 at 168 MHz with 5 flash wait states and an
  ART accelerator that misses on every pipeline refill: each taken branch adds the 5 wait states;
  sequential fetch is the prefetch buffer's 128-bit line per 1 + 5 cycles, so a TB takes at least
  6 cycles per flash line it spans; every literal-pool load (PC-relative, always in flash) adds the
  5 wait states.

Not modelled (so neither bound covers them): wait states of data loads from flash other than
literal pools (the int8 weights and ``const`` tables live in flash and go through the ART's 8-line
D-cache), unaligned accesses, bus contention (no DMA runs in the bench), interrupt entry/exit and
the host time of semihosting calls (BKPT 0xAB counts as one cycle). The cycle counts here are an
estimate from the TRM's tables, not a measurement: no cycle-accurate model of the Cortex-M4 exists
in this toolchain.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asc_edge.errors import DeviceError

__all__ = ["CLASSES", "CycleModel", "Counts", "Segment", "CycleEstimate", "classify", "estimate_cycles",
           "bench_cycles", "BENCH_BOUNDARIES", "CPU_HZ", "FLASH_WAIT_STATES", "ms_at"]

#: STM32F405 maximum core clock in Hz (RM0090 section 6: SYSCLK up to 168 MHz).
CPU_HZ = 168_000_000
#: Flash wait states at 150 < HCLK <= 168 MHz, 2.7-3.6 V (RM0090 section 3.5.1, Table 10).
FLASH_WAIT_STATES = 5
#: Bytes of one flash read / ART cache line (RM0090 section 3.5.2: 128-bit lines).
FLASH_LINE_BYTES = 16

#: Instruction classes of the report, in this order: ``name: (cycles_min, cycles_max, source)``.
#: The cycles are the TRM's per-instruction timing *without* the pipeline refill P of a taken branch
#: (added per executed branch) and before the pairing rules of TRM 3.3.2 (applied per TB);
#: ``n`` stands for the registers (32-bit words) transferred.
CLASSES: dict[str, tuple[str, str, str]] = {
    "alu": ("1", "1", "TRM Table 3-1: MOV/ADD/SUB/logical/shift/compare/bit-field/extend/reverse, 1"),
    "dsp_simd": ("1", "1", "TRM Table 3-1: saturate, SIMD add/sub, pack/unpack, SEL, USAD8, 1"),
    "mul": ("1", "1", "TRM Table 3-1: MUL/MLA/MLS, SMULxy/SMLAxy/SMLAD/SMUAD/SMMLA/SMMUL ..., 1"),
    "mul_long": ("1", "1", "TRM Table 3-1: UMULL/SMULL/UMLAL/SMLAL/SMLALD/UMAAL, 1 on the M4"),
    "div": ("2", "12", "TRM Table 3-1: SDIV/UDIV 2 to 12 (early termination on the operands)"),
    "load": ("1", "2", "TRM Table 3-1: LDR{B,H,SB,SH} 2; 3.3.2: 1 when pipelined after an LDR; "
                       "+1 address-dependency stall, +1 PC-relative (upper)"),
    "store": ("1", "2", "TRM Table 3-1: STR{B,H} 2; 3.3.2: STR Rx,[Ry,#imm] 1 (write buffer)"),
    "load_store_double": ("3", "3", "TRM 3.3.2: LDRD/STRD 3 (never pipelined with neighbours)"),
    "load_store_multiple": ("1+n", "1+n", "TRM Table 3-1: LDM/STM/PUSH/POP 1+N (+P with PC)"),
    "branch": ("1", "1+P", "TRM Table 3-1: B/BL/BX/BLX/CBZ/CBNZ and PC writes: 1 not taken, 1+P taken, P 1..3"),
    "table_branch": ("2+P", "2+P", "TRM Table 3-1: TBB/TBH 2+P"),
    "fpu_alu": ("1", "1", "TRM Table 7-1: VADD/VSUB/VMUL/VNMUL/VABS/VNEG/VCMP/VCVT/VMOV(imm, reg)/VMRS/VMSR, 1"),
    "fpu_mac": ("3", "3", "TRM Table 7-1: VMLA/VMLS/VNMLA/VNMLS/VFMA/VFMS/VFNMA/VFNMS, 3"),
    "fpu_div_sqrt": ("14", "14", "TRM Table 7-1: VDIV/VSQRT, 14"),
    "fpu_mov_core": ("1", "2", "TRM Table 7-1: VMOV core <-> S register(s) 2, half of a double 1"),
    "fpu_load_store": ("2", "1+n", "TRM Table 7-1: VLDR/VSTR .F32 2, .F64 3; VLDM/VSTM/VPUSH/VPOP 1+N"),
    "system": ("0", "2", "TRM Table 3-1: NOP 1, IT 0 (folded) or 1, MRS/MSR/CPS 1-2, DMB/DSB/ISB 1+B, "
                         "PLD 1-2, BKPT/SVC (semihosting) 1"),
    "unknown": ("1", "14", "not in the tables above (counted 1..14, the longest single instruction)"),
}
_CLASS_NAMES = tuple(CLASSES)
_CLASS_INDEX = {c: i for i, c in enumerate(_CLASS_NAMES)}

_CONDS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al")

_ALU = set("""mov movw movt mvn mvns add adc sub sbc rsb rsc addw subw adr and orr orn eor bic tst teq cmp cmn
lsl lsr asr ror rrx neg cpy ubfx sbfx bfi bfc clz rbit rev rev16 revsh sxtb sxth uxtb uxth sxtab sxtah uxtab
uxtah""".split())
_DSP = set("""ssat usat ssat16 usat16 sxtb16 uxtb16 sxtab16 uxtab16 sel usad8 usada8 pkhbt pkhtb qadd qsub qdadd
qdsub sadd16 sadd8 ssub16 ssub8 sasx ssax uadd16 uadd8 usub16 usub8 uasx usax qadd16 qadd8 qsub16 qsub8 qasx qsax
uqadd16 uqadd8 uqsub16 uqsub8 uqasx uqsax shadd16 shadd8 shsub16 shsub8 shasx shsax uhadd16 uhadd8 uhsub16 uhsub8
uhasx uhsax""".split())
_MUL = set("""mul mla mls smulbb smulbt smultb smultt smulwb smulwt smlabb smlabt smlatb smlatt smlawb smlawt smlad
smladx smlsd smlsdx smuad smuadx smusd smusdx smmul smmulr smmla smmlar smmls smmlsr""".split())
_MUL_LONG = set("umull smull umlal smlal smlalbb smlalbt smlaltb smlaltt smlald smlaldx smlsld smlsldx umaal".split())
_DIV = {"sdiv", "udiv"}
_LOAD = set("ldr ldrb ldrh ldrsb ldrsh ldrt ldrbt ldrht ldrsbt ldrsht ldrex ldrexb ldrexh".split())
_STORE = set("str strb strh strt strbt strht strex strexb strexh".split())
_DOUBLE = {"ldrd", "strd"}
_MULTIPLE = set("ldm ldmia ldmfd ldmdb ldmea stm stmia stmea stmdb stmfd push pop".split())
_BRANCH = {"b", "bl", "blx", "bx", "cbz", "cbnz"}
_TABLE = {"tbb", "tbh"}
_FPU_ALU = set("vadd vsub vmul vnmul vabs vneg vcmp vcmpe vcvt vcvtr vcvtb vcvtt vmrs vmsr".split())
_FPU_MAC = set("vmla vmls vnmla vnmls vfma vfms vfnma vfnms".split())
_FPU_DIV = {"vdiv", "vsqrt"}
_FPU_LS = set("vldr vstr vldm vldmia vldmdb vstm vstmia vstmdb vpush vpop".split())
_SYSTEM = set("nop it dmb dsb isb mrs msr cpsid cpsie pld pli bkpt svc wfi wfe sev yield udf".split())
_NO_DEST = {"cmp", "cmn", "tst", "teq"}

_INSN = re.compile(rb"^0x([0-9a-f]{8}):\s+([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s+(\S+)[ \t]*([^\n]*)$", re.M)
_BLOCK = re.compile(rb"IN:[^\n]*\n((?:0x[^\n]*\n)+)")
_TRACE = re.compile(rb"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
_TRACE_OR_STOP = re.compile(rb"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/|(Stopped execution)")
_REG = re.compile(r"\b(r1[0-5]|r[0-9]|sb|sl|fp|ip|sp|lr|pc)\b")
_TARGET = re.compile(r"#(0x[0-9a-f]+)\s*$")

# branch kinds of a TB's last instruction
_NONE, _ALWAYS, _COND = 0, 1, 2


@dataclass(frozen=True)
class CycleModel:
    """The assumptions of the two bounds (see the module docstring).

    ``cpu_hz``: core clock in Hz (168 MHz, RM0090). ``flash_wait_states``: wait states of a flash
    access that misses the ART (5 at 168 MHz, RM0090 Table 10). ``flash_line_bytes``: bytes per
    flash line (16). ``refill_min`` / ``refill_max``: P of TRM Table 3-1 (1 .. 3 cycles)."""

    cpu_hz: int = CPU_HZ  # RM0090 section 6.2: SYSCLK <= 168 MHz
    flash_wait_states: int = FLASH_WAIT_STATES  # RM0090 section 3.5.1, Table 10
    flash_line_bytes: int = FLASH_LINE_BYTES  # RM0090 section 3.5.2
    refill_min: int = 1  # TRM Table 3-1 note: P ranges from 1 to 3
    refill_max: int = 3


@dataclass(frozen=True)
class Insn:
    """One decoded Thumb instruction of a TB: ``address`` and ``size`` in bytes, the QEMU (capstone)
    ``mnemonic`` / ``operands`` text, its report class, and its cycles (min, max) before the pairing
    rules and without P. ``branch``: ``_NONE`` / ``_ALWAYS`` / ``_COND``; ``target``: the immediate
    branch target or None."""

    address: int
    size: int
    mnemonic: str
    operands: str
    cls: str
    cycles_min: int
    cycles_max: int
    branch: int
    conditional: bool
    target: int | None = None


def _reg_list_words(ops: str) -> int:
    m = re.search(r"\{([^}]*)\}", ops)
    if not m:
        return 1
    regs = [r.strip() for r in m.group(1).split(",") if r.strip()]
    return sum(2 if r.startswith("d") else 1 for r in regs)


def classify(mnemonic: str, operands: str = "", in_it: bool = False) -> tuple[str, int, int, int, bool]:
    """Class and cycle range of one instruction in QEMU's (capstone's) Thumb syntax.

    Args:
        mnemonic: e.g. ``"smlad"``, ``"ldr.w"``, ``"addlt.w"``, ``"vadd.f32"``, ``"bne"``.
        operands: the operand text, e.g. ``"r0, [pc, #0x28]"`` or ``"{r4, r5, pc}"``.
        in_it: the instruction is inside an IT block (its mnemonic carries a condition).

    Returns:
        ``(class, cycles_min, cycles_max, branch kind, conditional)``: class one of :data:`CLASSES`;
        cycles per TRM Table 3-1 / 7-1 without P (the pipeline refill of a taken branch, added by
        the folder); branch kind 0 (none), 1 (always taken), 2 (conditional). A conditional
        non-branch instruction has cycles_min 1 (its condition may fail)."""
    base = mnemonic.split(".", 1)[0]
    dtype = mnemonic.split(".", 1)[1] if "." in mnemonic else ""
    cond = False
    if in_it and len(base) > 2 and base[-2:] in _CONDS and base != "it":
        base, cond = base[:-2], True
    elif base[:1] == "b" and len(base) == 3 and base[1:] in _CONDS:  # b<cc> outside an IT block
        base, cond = "b", True
    ops = operands.replace(" ", "")
    writes_pc = ops.startswith("pc,") or ops == "pc"
    n = _reg_list_words(operands)
    cls, lo, hi, br = "unknown", 1, 14, _NONE
    if base in _BRANCH or base in _TABLE:
        cls = "table_branch" if base in _TABLE else "branch"
        lo = hi = 2 if base in _TABLE else 1
        br = _COND if base in ("cbz", "cbnz") or cond else _ALWAYS
    elif base in _MULTIPLE:
        cls, lo, hi = "load_store_multiple", 1 + n, 1 + n
        if base.startswith(("ldm", "pop")) and re.search(r"\bpc\b", operands):
            br = _COND if cond else _ALWAYS
    elif base in _DOUBLE:
        cls, lo, hi = "load_store_double", 3, 3
    elif base in _LOAD:
        cls, lo, hi = "load", 2, 2  # pairing (1 when pipelined) applied per TB
        if writes_pc:
            br = _COND if cond else _ALWAYS
    elif base in _STORE:
        cls, lo, hi = "store", 1, 2
    elif base in _DIV:
        cls, lo, hi = "div", 2, 12
    elif base in _MUL or (base.endswith("s") and base[:-1] in _MUL):
        cls, lo, hi = "mul", 1, 1
    elif base in _MUL_LONG or (base.endswith("s") and base[:-1] in _MUL_LONG):
        cls, lo, hi = "mul_long", 1, 1
    elif base in _DSP:
        cls, lo, hi = "dsp_simd", 1, 1
    elif base in _ALU or (base.endswith("s") and base[:-1] in _ALU):
        cls, lo, hi = "alu", 1, 1
        if writes_pc:  # MOV PC / ADD PC: 1 + P
            cls, br = "branch", (_COND if cond else _ALWAYS)
    elif base in _FPU_MAC:
        cls, lo, hi = "fpu_mac", 3, 3
    elif base in _FPU_DIV:
        cls, lo, hi = "fpu_div_sqrt", 14, 14
    elif base in _FPU_LS:
        cls = "fpu_load_store"
        if base in ("vldr", "vstr"):
            lo = hi = 3 if (dtype == "64" or re.match(r"\s*d\d", operands)) else 2
        else:
            lo = hi = 1 + n
    elif base == "vmov":
        core = _REG.findall(operands.replace("pc", ""))
        if core:  # to/from core register(s)
            cls, lo, hi = "fpu_mov_core", 2, 2
            if re.search(r"d\d+\[", operands):
                lo = hi = 1
        else:
            cls, lo, hi = "fpu_alu", 1, 1
    elif base in _FPU_ALU:
        cls, lo, hi = "fpu_alu", 1, 1
    elif base in _SYSTEM or base.startswith("it"):
        cls = "system"
        if base.startswith("it") and set(base[2:]) <= {"t", "e"}:
            lo, hi = 0, 1  # folded onto the previous 16-bit instruction, or 1
        elif base in ("dmb", "dsb"):
            lo, hi = 1, 4  # 1 + B, B >= 0; bounded by a refill
        elif base == "isb":
            lo, hi = 2, 4  # 1 + B, B = P
        elif base in ("mrs", "msr", "cpsid", "cpsie", "pld", "pli"):
            lo, hi = 1, 2
        else:
            lo, hi = 1, 1
    if cond and br == _NONE:
        lo = min(lo, 1)  # a failed condition: the instruction executes as a 1-cycle NOP
    return cls, lo, hi, br, cond


def _it_length(base: str) -> int:
    return len(base) - 1 if base.startswith("it") and len(base) <= 5 and set(base[2:]) <= {"t", "e"} else 0


def _parse_block(text: bytes) -> list[Insn]:
    out: list[Insn] = []
    it_left = 0
    for m in _INSN.finditer(text):
        addr = int(m.group(1), 16)
        size = 4 if m.group(3) else 2
        mnem = m.group(4).decode()
        ops = m.group(5).decode().strip()
        in_it = it_left > 0
        cls, lo, hi, br, cond = classify(mnem, ops, in_it=in_it)
        it_left = it_left - 1 if in_it else 0
        n_it = _it_length(mnem.split(".", 1)[0])
        if n_it:
            it_left = n_it
        tgt = None
        if br and cls == "branch":
            t = _TARGET.search(ops)
            tgt = int(t.group(1), 16) if t else None
        out.append(Insn(addr, size, mnem, ops, cls, lo, hi, br, cond, tgt))
    return out


def _mem_regs(ops: str) -> set[str]:
    m = re.search(r"\[([^\]]*)\]", ops)
    return set(_REG.findall(m.group(1))) if m else set()


def _dest(insn: Insn) -> str | None:
    base = insn.mnemonic.split(".", 1)[0]
    if any(base.startswith(x) for x in _NO_DEST):
        return None
    m = _REG.match(insn.operands)
    return m.group(1) if m else None


@dataclass
class _TB:
    """A translation block and its precomputed cost (all in cycles)."""

    pc: int
    insns: list[Insn]
    end: int  # address after the last instruction (the fall-through PC)
    kind: int  # branch kind of the last instruction
    body_min: int  # every instruction but the last, with the pairing rules
    body_max: int
    last_min_taken: int
    last_min_not: int
    last_max_taken: int  # without P
    last_max_not: int
    literal_loads: int
    lines: int
    classes: np.ndarray  # instructions per class
    call_site: int  # address of the last instruction


def _tb_cost(pc: int, insns: list[Insn], model: CycleModel) -> _TB:
    if not insns:
        raise DeviceError(f"QEMU printed an empty translation block at 0x{pc:08x}",
                          hint="check the QEMU version (Debian's 7.2 is tested)")
    mins, maxs = [], []
    literal = 0
    prev = None
    for ins in insns:
        lo, hi = ins.cycles_min, ins.cycles_max
        regs = _mem_regs(ins.operands) if ins.cls in ("load", "store", "load_store_double", "fpu_load_store") else set()
        if ins.cls == "load":
            pipelined = (prev is not None and prev.cls == "load" and not prev.branch
                         and _dest(prev) not in regs)
            lo = 1 if pipelined else 2
            if "pc" in regs:  # literal pool: fetch contention (TRM 3.3.2), in flash
                hi += 1
                literal += 1
        if ins.cls == "fpu_load_store" and "pc" in regs:
            literal += 1
        if regs and prev is not None and prev.cls in ("alu", "dsp_simd", "mul", "mul_long") and _dest(prev) in regs:
            hi += 1  # address depends on the previous data-processing result: no forwarding (TRM 3.3.2)
        if ins.conditional and not ins.branch:
            lo = min(lo, 1)
        mins.append(lo)
        maxs.append(hi)
        prev = ins
    last = insns[-1]
    end = last.address + last.size
    cls = np.zeros(len(_CLASS_NAMES), np.int64)
    for ins in insns:
        cls[_CLASS_INDEX[ins.cls]] += 1
    line = model.flash_line_bytes
    lines = (end - 1) // line - pc // line + 1
    kind = last.branch
    lmin_t, lmax_t = mins[-1], maxs[-1]
    lmin_n = 1 if kind == _COND else mins[-1]
    lmax_n = maxs[-1]
    return _TB(pc, insns, end, kind, sum(mins[:-1]), sum(maxs[:-1]), lmin_t, lmin_n, lmax_t, lmax_n,
               literal, lines, cls, last.address)


@dataclass
class Counts:
    """Executed instructions and estimated cycles of a stretch of code.

    ``instructions``: executed instructions (the same unit as the bench's TIM2 count under
    ``-icount shift=0``). ``classes``: instructions per class of :data:`CLASSES`. ``cycles_min``:
    zero-wait-state best case; ``cycles_max_zero_ws``: zero-wait-state worst case;
    ``cycles_max``: worst case with 5 flash wait states and ART misses (see :class:`CycleModel`), all
    in CPU cycles. ``taken_branches``: executed branches that were taken (pipeline refills)."""

    instructions: int = 0
    cycles_min: int = 0
    cycles_max_zero_ws: int = 0
    cycles_max: int = 0
    taken_branches: int = 0
    classes: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Counts) -> Counts:
        cls = dict(self.classes)
        for k, v in other.classes.items():
            cls[k] = cls.get(k, 0) + v
        return Counts(self.instructions + other.instructions, self.cycles_min + other.cycles_min,
                      self.cycles_max_zero_ws + other.cycles_max_zero_ws, self.cycles_max + other.cycles_max,
                      self.taken_branches + other.taken_branches, cls)

    def ms(self, cpu_hz: int = CPU_HZ) -> tuple[float, float]:
        """(min, max) milliseconds at ``cpu_hz`` (default 168 MHz): cycles / cpu_hz x 1e3."""
        return ms_at(self.cycles_min, cpu_hz), ms_at(self.cycles_max, cpu_hz)

    def to_dict(self, cpu_hz: int = CPU_HZ) -> dict:
        """JSON-ready: instructions, cycles (min, max zero-wait, max), ms at ``cpu_hz``, class mix."""
        lo, hi = self.ms(cpu_hz)
        return {"instructions": int(self.instructions), "cycles_min": int(self.cycles_min),
                "cycles_max_zero_ws": int(self.cycles_max_zero_ws), "cycles_max": int(self.cycles_max),
                "ms_min": lo, "ms_max": hi, "taken_branches": int(self.taken_branches),
                "classes": {k: int(v) for k, v in self.classes.items() if v}}


def ms_at(cycles: float, cpu_hz: int = CPU_HZ) -> float:
    """Milliseconds for ``cycles`` CPU cycles at ``cpu_hz`` Hz: cycles / cpu_hz x 1e3."""
    return float(cycles) / float(cpu_hz) * 1e3


@dataclass
class Segment:
    """The trace from one boundary hit to the next.

    ``boundary``: the symbol at whose entry the segment starts (``"(reset)"`` for the first);
    ``call_site``: the address of the instruction that branched to it (the caller's BL / B), or
    None for the first segment; ``counts``: its :class:`Counts`."""

    index: int
    boundary: str
    call_site: int | None
    counts: Counts


@dataclass
class CycleEstimate:
    """Result of :func:`estimate_cycles`: ``segments`` in execution order, ``total`` (their sum),
    the firmware's ``exit_code`` and semihosting console ``stdout``, ``wall_s`` (host seconds),
    the :class:`CycleModel` used, and ``unknown``: mnemonics the class table does not know
    (counted in class ``unknown``)."""

    segments: list[Segment]
    total: Counts
    exit_code: int
    stdout: str
    wall_s: float
    model: CycleModel
    unknown: list[str]
    command: list[str] = field(default_factory=list)


class _Folder:
    """Streams QEMU's in_asm/exec log and accumulates (prev TB, next TB) pair counts per segment."""

    def __init__(self, boundaries: dict[int, str], model: CycleModel):
        self.model = model
        self.boundaries = boundaries
        self.tbs: list[_TB | None] = []
        self.tb_pc: list[int] = []
        self.tb_of_pc: dict[int, int] = {}
        self.id_of_hex: dict[bytes, int] = {}
        self.is_boundary: list[bool] = []
        self.pending: dict[int, list[Insn]] = {}
        self.seg_pairs: list[dict[int, int]] = [{}]  # segment -> {prev * K + next: count}
        self.seg_start: list[tuple[str, int | None]] = [("(reset)", None)]
        self.last: int = -1
        self.unknown: set[str] = set()
        self.K = 1 << 20

    def _tb_id(self, pc_hex: bytes) -> int:
        i = self.id_of_hex.get(pc_hex)
        if i is None:
            pc = int(pc_hex, 16)
            i = self.tb_of_pc.get(pc)
            if i is None:
                i = len(self.tb_pc)
                self.tb_pc.append(pc)
                self.tbs.append(None)
                self.tb_of_pc[pc] = i
                self.is_boundary.append(pc in self.boundaries)
            self.id_of_hex[pc_hex] = i
        return i

    def _blocks(self, text: bytes) -> None:
        for m in _BLOCK.finditer(text):
            insns = _parse_block(m.group(1))
            if not insns:
                continue
            pc = insns[0].address
            for ins in insns:
                if ins.cls == "unknown":
                    self.unknown.add(ins.mnemonic)
            i = self.tb_of_pc.get(pc)
            if i is not None and self.tbs[i] is not None:
                old = self.tbs[i].insns
                if [(x.address, x.mnemonic) for x in old] != [(x.address, x.mnemonic) for x in insns]:
                    raise DeviceError(f"QEMU translated the code at 0x{pc:08x} twice into different blocks "
                                      f"({len(old)} vs {len(insns)} instructions); the trace cannot be folded",
                                      hint="self-modifying code or a run with -icount; run without -icount")
                continue
            tb = _tb_cost(pc, insns, self.model)
            if i is None:
                self._tb_id(b"%x" % pc)
                i = self.tb_of_pc[pc]
            self.tbs[i] = tb

    def feed(self, text: bytes) -> None:
        """Fold one chunk of complete log lines (every in_asm block in it complete)."""
        if b"IN:" in text:
            self._blocks(text)
        if b"Stopped execution" in text:  # a TB logged but not entered (exit request): drop it
            ids: list[int] = []
            for m in _TRACE_OR_STOP.finditer(text):
                if m.group(2):
                    if ids:
                        ids.pop()
                else:
                    ids.append(self._tb_id(m.group(1)))
        else:
            get = self.id_of_hex.get
            hexes = _TRACE.findall(text)
            ids = [get(h) for h in hexes]
            if None in ids:
                ids = [self._tb_id(h) for h in hexes]
        if not ids:
            return
        arr = np.asarray(ids, np.int64)
        bnd = np.asarray(self.is_boundary, bool)[arr]
        prev = np.empty_like(arr)
        prev[0] = self.last
        prev[1:] = arr[:-1]
        # the pair (prev[j], arr[j]) belongs to the segment of prev[j]: segments before position j
        seg_of_prev = np.concatenate(([0], np.cumsum(bnd)[:-1]))
        keep = prev >= 0
        keys = prev * self.K + arr
        base = len(self.seg_pairs) - 1
        if bnd.any():
            for j in np.flatnonzero(bnd):
                p = int(prev[j])
                site = self.tbs[p].call_site if p >= 0 and self.tbs[p] is not None else None
                self.seg_start.append((self.boundaries[self.tb_pc[int(arr[j])]], site))
                self.seg_pairs.append({})
        segs = seg_of_prev[keep]
        keys = keys[keep]
        if len(keys):
            comb = segs * (self.K * self.K) + keys
            uniq, cnt = np.unique(comb, return_counts=True)
            for u, c in zip(uniq.tolist(), cnt.tolist()):
                s, k = divmod(u, self.K * self.K)
                d = self.seg_pairs[base + s]
                d[k] = d.get(k, 0) + c
        self.last = int(arr[-1])

    def finish(self) -> list[Segment]:
        if self.last >= 0:  # the final TB: no successor, counted as not taken
            d = self.seg_pairs[-1]
            k = self.last * self.K + self.K - 1
            d[k] = d.get(k, 0) + 1
        m = self.model
        ws = m.flash_wait_states
        out = []
        for idx, (pairs, (name, site)) in enumerate(zip(self.seg_pairs, self.seg_start)):
            c = Counts(classes={k: 0 for k in _CLASS_NAMES})
            cls = np.zeros(len(_CLASS_NAMES), np.int64)
            n = lo = hi0 = hi = taken_n = 0
            for key, cnt in pairs.items():
                p, nx = divmod(key, self.K)
                tb = self.tbs[p]
                if tb is None:
                    raise DeviceError(f"the trace executed a block at 0x{self.tb_pc[p]:08x} that QEMU never printed",
                                      hint="the in_asm log is incomplete; rerun")
                nx_pc = self.tb_pc[nx] if nx < len(self.tb_pc) else None
                taken = tb.kind == _ALWAYS or (tb.kind == _COND and nx_pc is not None and nx_pc != tb.end)
                n += cnt * len(tb.insns)
                cls += cnt * tb.classes
                if taken:
                    t_lo = tb.body_min + tb.last_min_taken + m.refill_min
                    t_hi0 = tb.body_max + tb.last_max_taken + m.refill_max
                    t_hi = max(t_hi0, (1 + ws) * tb.lines) + ws
                    taken_n += cnt
                else:
                    t_lo = tb.body_min + tb.last_min_not
                    t_hi0 = tb.body_max + tb.last_max_not
                    t_hi = max(t_hi0, (1 + ws) * tb.lines)
                t_hi += ws * tb.literal_loads
                lo += cnt * t_lo
                hi0 += cnt * t_hi0
                hi += cnt * t_hi
            c.instructions, c.cycles_min, c.cycles_max_zero_ws, c.cycles_max = n, lo, hi0, hi
            c.taken_branches = taken_n
            c.classes = {k: int(v) for k, v in zip(_CLASS_NAMES, cls)}
            out.append(Segment(idx, name, site, c))
        return out


def _boundary_addresses(elf: Path, names: Sequence[str]) -> dict[int, str]:
    from .elfinfo import symbol

    out = {}
    for name in names:
        out[symbol(elf, name).address] = name
    return out


def estimate_cycles(elf, *, workdir, args: Sequence[str] = (), boundaries: Sequence[str] = (),
                    timeout_s: float = 120.0, model: CycleModel = CycleModel(), check: bool = True,
                    chunk_bytes: int = 4 << 20) -> CycleEstimate:
    """Run ``elf`` on QEMU's netduinoplus2 (STM32F405) with an execution trace and fold it into
    instruction counts and a Cortex-M4 cycle range, split at the entries of ``boundaries``.

    Args:
        elf: the firmware ELF (as :func:`asc_edge.device.qemu.run_qemu` runs it; semihosting files
            are relative to ``workdir``).
        workdir: the emulator's working directory (created).
        args: semihosting command-line arguments.
        boundaries: function symbols; every executed entry of one starts a new :class:`Segment`
            (e.g. ``("bench_layer_done", "bench_fe_profile")``).
        timeout_s: wall-clock limit in seconds; the emulator's process group is killed after it.
        model: the bound assumptions (:class:`CycleModel`).
        check: raise when the firmware exits non-zero.
        chunk_bytes: bytes of log read per fold step.

    Returns:
        :class:`CycleEstimate`: per segment and in total, executed instructions, instructions per
        class, and cycles (``cycles_min`` .. ``cycles_max``, CPU cycles; milliseconds via
        :meth:`Counts.ms`, at 168 MHz by default).

    Raises:
        DeviceError: qemu-system-arm missing, a boundary symbol missing from the ELF, the run past
            ``timeout_s``, QEMU failing, the firmware exiting non-zero (with ``check``), or a trace
            that cannot be folded (a block translated twice differently)."""
    from ..signals import terminate_as_interrupt
    from .qemu import EXIT_MEANING, qemu_command
    from .toolchain import kill_group, tail

    elf = Path(elf).resolve()
    if not elf.is_file():
        raise DeviceError(f"{elf}: firmware ELF not found", hint="build it first (asc_edge.device.build_firmware)")
    bmap = _boundary_addresses(elf, boundaries)
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    folder = _Folder(bmap, model)
    t0 = time.monotonic()
    with terminate_as_interrupt():  # SIGTERM / SIGHUP: the same clean-up as Ctrl-C
        with tempfile.TemporaryDirectory(prefix="asc-cycles-") as tmp:
            fifo = Path(tmp) / "trace.fifo"
            os.mkfifo(fifo)
            out_path = Path(tmp) / "stdout.txt"
            cmd = qemu_command(elf, uart_path=Path(tmp) / "uart.log", args=args, icount=False)
            cmd[-2:-2] = ["-d", "in_asm,exec,nochain", "-D", str(fifo)]
            # the reader exists before QEMU opens the FIFO, so neither side blocks on open()
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            proc = None
            timed_out = threading.Event()
            try:
                with open(out_path, "wb") as out_f:
                    proc = subprocess.Popen(cmd, cwd=str(wd), stdin=subprocess.DEVNULL, stdout=out_f,
                                            stderr=subprocess.STDOUT, start_new_session=True)

                def _kill():
                    timed_out.set()
                    kill_group(proc, wait=False)
                timer = threading.Timer(timeout_s, _kill)
                timer.daemon = True
                timer.start()
                try:
                    os.set_blocking(fd, True)
                    carry = b""
                    seen = False
                    while True:
                        data = os.read(fd, chunk_bytes)
                        if not data:
                            if not seen and proc.poll() is None:  # QEMU has not opened the FIFO yet
                                time.sleep(0.01)
                                continue
                            break
                        seen = True
                        buf = carry + data
                        cut = buf.rfind(b"\n") + 1
                        i = buf.rfind(b"IN:", 0, cut)
                        if i >= 0 and buf.find(b"\n\n", i, cut) < 0:  # an in_asm block still open
                            cut = buf.rfind(b"\n", 0, i) + 1
                        folder.feed(buf[:cut])
                        carry = buf[cut:]
                    if carry:
                        folder.feed(carry + b"\n")
                    rc = proc.wait()
                finally:
                    timer.cancel()
            except BaseException:
                if proc is not None and proc.poll() is None:
                    kill_group(proc)
                raise
            finally:
                os.close(fd)
            stdout = out_path.read_text(encoding="utf-8", errors="replace")
    wall = time.monotonic() - t0
    last = tail(stdout)
    if timed_out.is_set():
        raise DeviceError(f"the traced emulator run did not finish within {timeout_s:g} s running {elf.name}; "
                          f"last output:\n{last or '(none)'}",
                          hint="a traced run is ~20x slower than -icount: raise timeout_s or run fewer clips")
    if rc < 0:
        raise DeviceError(f"emulator crashed (signal {-rc}) running {elf.name}; last output:\n{last or '(none)'}",
                          hint="check the firmware's fault handling and the QEMU version (Debian's 7.2 is tested)")
    if rc != 0 and check:
        raise DeviceError(f"{elf.name} exited with status {rc} ({EXIT_MEANING.get(rc, 'non-zero exit status')}) "
                          f"in the traced run; last output:\n{last or '(none)'}",
                          hint="run it with asc_edge.device.run_qemu first; the traced run must behave the same")
    segments = folder.finish()
    total = Counts()
    for s in segments:
        total = total + s.counts
    return CycleEstimate(segments, total, rc, stdout, wall, model, sorted(folder.unknown), cmd)


# ---------------------------------------------------------------------------------------------
# the bench image: segments -> frontend stages and model steps
# ---------------------------------------------------------------------------------------------
#: Boundaries of a bench image (firmware/app/bench_main.c, built by harness.build_bench_firmware):
#: the frontend's entry, its per-stage hook, the model's entry and its per-step hook (an fp16 export:
#: ``asc_fe_logmel_f32`` in place of the first).
BENCH_BOUNDARIES = ("asc_fe_logmel_s8", "bench_fe_profile", "asc_model_invoke", "bench_layer_done")


def bench_cycles(est: CycleEstimate, n_steps: int, frontend_entry: str = "asc_fe_logmel_s8") -> list[dict]:
    """Map the segments of a traced bench run (boundaries :data:`BENCH_BOUNDARIES`) onto the bench's
    own accounting, clip by clip.

    A segment runs from one hook entry to the next, so it holds exactly the instructions between the
    two hooks' TIM2 reads (the hook's own instructions included once, as in the bench); it is
    attributed to the hook that *ends* it: a ``bench_fe_profile`` call ends a frontend stage, the
    k-th ``bench_layer_done`` call of a clip ends model step k. The frontend runs its stages in
    ``ASC_FE_PART_*`` order (stream, window, fft, power, mel, log) every frame, and each stage has
    one call site of the hook, so the k-th distinct call site (in order of first execution) is
    stage k. The first stage of a clip (from the frontend's entry) and step 0 (from
    ``asc_model_invoke``'s entry) start at the function entry instead of main's TIM2 read: they
    differ from the bench's count by the few instructions between that read and the call.

    Args:
        est: :func:`estimate_cycles` of a bench image with ``boundaries=BENCH_BOUNDARIES``.
        n_steps: the model's execution steps (``len(graph["steps"])``).
        frontend_entry: the frontend's entry symbol (``asc_fe_logmel_f32`` for an fp16 export).

    Returns:
        One dict per clip: ``{"frontend": {stage: Counts}, "frontend_total": Counts, "steps": [Counts],
        "model": Counts, "other": Counts}`` (``other``: main's code between the hooks: clip I/O,
        printing; ``model`` = the steps; ``frontend_total`` = the stages).

    Raises:
        DeviceError: the segments do not follow the bench's hook order (a step count other than
            ``n_steps``, or not one hook call site per frontend stage)."""
    from asc_edge.device.harness import FRONTEND_PARTS

    segs = est.segments
    sites: list[int | None] = []
    for s in segs:
        if s.boundary == "bench_fe_profile" and s.call_site not in sites:
            sites.append(s.call_site)
    if segs and any(s.boundary == frontend_entry for s in segs) and len(sites) != len(FRONTEND_PARTS):
        raise DeviceError(f"the traced frontend calls bench_fe_profile from {len(sites)} places, "
                          f"not once per stage ({len(FRONTEND_PARTS)}: {', '.join(FRONTEND_PARTS)})",
                          hint="keep one ASC_FE_PROFILE(ASC_FE_PART_X) call per stage in asc_frontend.c")
    part_of = dict(zip(sites, FRONTEND_PARTS))
    clips: list[dict] = []
    cur = None
    for i, s in enumerate(segs):
        nxt = segs[i + 1] if i + 1 < len(segs) else None
        if s.boundary == frontend_entry:
            cur = {"frontend": {p: Counts() for p in FRONTEND_PARTS}, "steps": [], "other": Counts()}
            clips.append(cur)
        if cur is None:
            continue
        end = nxt.boundary if nxt is not None else None
        if end == "bench_fe_profile" and s.boundary in (frontend_entry, "bench_fe_profile"):
            part = part_of[nxt.call_site]
            cur["frontend"][part] = cur["frontend"][part] + s.counts
        elif end == "bench_layer_done" and s.boundary in ("asc_model_invoke", "bench_layer_done"):
            cur["steps"].append(s.counts)
        else:
            cur["other"] = cur["other"] + s.counts
    for c in clips:
        if len(c["steps"]) != n_steps:
            raise DeviceError(f"the traced run shows {len(c['steps'])} model steps per clip, the export {n_steps}",
                              hint="trace a bench image built from this export (debug mode off)")
        c["model"] = sum(c["steps"], Counts())
        c["frontend_total"] = sum(c["frontend"].values(), Counts())
    return clips
