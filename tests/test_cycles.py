"""The Cortex-M4 cycle estimator (asc_edge/device/cycles.py): exact on loops whose cycle count the TRM
fixes (firmware/app/cycleloop_main.c), and per-step instruction counts equal to the bench's TIM2 counts.

Needs arm-none-eabi-gcc (+ newlib), make and qemu-system-arm like tests/test_device_qemu.py: a missing
tool fails with the DeviceError naming the apt package; the bench test skips without ../shared/data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asc_edge.device import build_firmware
from asc_edge.device.cycles import CycleModel, Insn, _tb_cost, classify, estimate_cycles, ms_at
from asc_edge.errors import DeviceError

REPO = Path(__file__).resolve().parents[1]
REF = REPO / "export" / "cp-mobile-ref"
N = 1000  # ASC_CYCLELOOP_N
LOOP_BOUNDARIES = ("asc_cycleloop_alu_begin", "asc_cycleloop_alu_end", "asc_cycleloop_ldr_begin",
                   "asc_cycleloop_ldr_end")


@pytest.fixture(scope="module")
def known_loops(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cycleloop")
    img = build_firmware("cycleloop", tmp / "fw")
    est = estimate_cycles(img.elf, workdir=tmp / "run", boundaries=LOOP_BOUNDARIES, timeout_s=60)
    return img, {s.boundary: s.counts for s in est.segments}, est


def test_known_alu_loop_matches_the_trm_count(known_loops):
    """N x (8 ALU + SMLAD + SUBS, 1 cycle each, TRM Table 3-1) + BNE (taken 1+P, last not taken 1),
    entered by `movs` and left by a taken `b` (firmware/app/cycleloop_main.c)."""
    _, seg, est = known_loops
    c = seg["asc_cycleloop_alu_begin"]
    assert est.exit_code == 0 and "cycleloop n=1000" in est.stdout and not est.unknown
    assert c.instructions == 11 * N + 2
    assert c.classes["alu"] == 9 * N + 1 and c.classes["mul"] == N and c.classes["branch"] == N + 1
    assert c.taken_branches == N  # N - 1 back edges + the exit `b`
    # the TRM count with P = 1 is the lower bound, with P = 3 the zero-wait-state upper bound
    assert c.cycles_min == 1 + 10 * N + (N - 1) * 2 + 1 + 2 == 12 * N + 2
    assert c.cycles_max_zero_ws == 1 + 10 * N + (N - 1) * 4 + 1 + 4 == 14 * N + 2
    # 5 flash wait states, ART miss on each refill: blocks [begin, bne] (once, taken), [loop, bne]
    # (N-2 taken, 1 not taken), [b] (taken); each spans 2, 2, 1 16-byte lines (6 cycles per line):
    # max(12 + 3, 12) + 5 + (N-2)(max(11 + 3, 12) + 5) + max(11, 12) + max(1 + 3, 6) + 5
    assert c.cycles_max == 20 + (N - 2) * 19 + 12 + 11 == 19 * N + 5
    lo, hi = c.ms()
    assert lo == pytest.approx((12 * N + 2) / 168e3) and hi == pytest.approx((19 * N + 5) / 168e3)


def test_known_load_pair_loop_matches_the_trm_count(known_loops):
    """N x (LDR 2, LDR 1 (pipelined, TRM 3.3.2), SMLAD 1, SUBS 1) + BNE: 7N + 2 cycles at P = 1."""
    _, seg, _ = known_loops
    c = seg["asc_cycleloop_ldr_begin"]
    assert c.instructions == 5 * N + 2 and c.classes["load"] == 2 * N
    assert c.cycles_min == 7 * N + 2
    assert c.cycles_max_zero_ws == 10 * N + 2  # no pipelining (2 + 2), P = 3
    # one 16-byte line per block: 16 + (N-2) * 15 + 7 + 11
    assert c.cycles_max == 15 * N + 4
    assert c.cycles_min <= c.cycles_max_zero_ws <= c.cycles_max


def test_instruction_classes_follow_the_trm_tables():
    assert classify("smlad", "sl, r2, r6, sl")[:3] == ("mul", 1, 1)
    assert classify("umull", "r2, r3, r5, r1")[:3] == ("mul_long", 1, 1)
    assert classify("sdiv", "r0, r2, r3")[:3] == ("div", 2, 12)
    assert classify("vdiv.f32", "s10, s0, s14")[:3] == ("fpu_div_sqrt", 14, 14)
    assert classify("vmla.f32", "s0, s1, s2")[:3] == ("fpu_mac", 3, 3)
    assert classify("vpop", "{d8, d9}")[:3] == ("fpu_load_store", 5, 5)  # 1 + N words
    assert classify("pop", "{r4, r5, r6, pc}")[:4] == ("load_store_multiple", 5, 5, 1)  # 1 + N (PC counts), + P
    assert classify("push.w", "{r4, r5, r6, r7, r8, lr}")[:3] == ("load_store_multiple", 7, 7)
    assert classify("bne", "#0x8000768")[3:] == (2, True)
    assert classify("bls", "#0x80002da")[3] == 2 and classify("bl", "#0x8000838")[3] == 1
    assert classify("movge", "r3, ip", in_it=True)[:3] == ("alu", 1, 1)
    assert classify("ldrgt", "r2, [sp, #0x40]", in_it=True)[1:3] == (1, 2)  # may fail its condition
    assert classify("itte", "ne")[:3] == ("system", 0, 1)
    # LDR after LDR pipelines unless the second address uses the first's result (TRM 3.3.2)
    ld = [Insn(0x100, 2, "ldr", "r0, [r1]", "load", 2, 2, 0, False),
          Insn(0x102, 2, "ldr", "r2, [r1, #4]", "load", 2, 2, 0, False),
          Insn(0x104, 2, "ldr", "r3, [r2]", "load", 2, 2, 0, False)]
    tb = _tb_cost(0x100, ld, CycleModel())
    assert tb.body_min + tb.last_min_not == 2 + 1 + 2 and tb.body_max + tb.last_max_not == 6
    assert ms_at(168_000) == pytest.approx(1.0)


def test_missing_boundary_symbol_is_a_device_error(known_loops, tmp_path):
    img = known_loops[0]
    with pytest.raises(DeviceError, match="no_such_symbol"):
        estimate_cycles(img.elf, workdir=tmp_path, boundaries=("no_such_symbol",))


def test_bench_steps_match_the_tim2_instruction_counts(tmp_path, shared_data):
    """One clip of the reference export with ``bench(..., cycles=True)``: the traced run's per-step
    and per-stage instruction counts equal the bench's TIM2 counts (-icount shift=0), except step 0
    and the first frontend stage, which start at asc_model_invoke's / asc_fe_logmel_s8's entry
    rather than at main's counter read (a fixed handful of instructions fewer); every step gets a
    cycle range and ms at 168 MHz, in bench.json and bench.md."""
    from asc_edge.device.harness import bench

    rep = bench(REF, data=shared_data, limit=1, out_dir=tmp_path / "report", work_dir=tmp_path / "work",
                log=lambda *a: None, cycles=True)
    assert rep["bit_exact"]["all_equal"]
    c = rep["cycles"]
    tim2 = [int(s["instructions"]) for s in rep["instructions"]["steps"]]
    traced = [s["instructions"] for s in c["steps"]]
    assert traced[1:] == tim2[1:]
    assert 0 < tim2[0] - traced[0] < 32
    fe = rep["instructions"]["frontend_parts"]
    for k, v in c["frontend_stages"].items():
        if k == "stream":
            assert 0 < fe[k] - v["instructions"] < 32
        else:
            assert v["instructions"] == fe[k], k
    for v in [*c["steps"], *c["frontend_stages"].values()]:
        assert v["instructions"] <= v["cycles_max_zero_ws"] <= v["cycles_max"]
        assert 0 < v["cycles_min"] <= v["cycles_max_zero_ws"]
    m = c["model"]
    assert m["instructions"] == sum(traced) and m["classes"]["mul"] > m["instructions"] / 3  # SMLAD-dominated
    assert 0 < m["ms_min"] < m["ms_max"] and m["ms_min"] == pytest.approx(m["cycles_min"] / 168e3)
    md = (tmp_path / "report" / "bench.md").read_text()
    assert "ms at 168 MHz (range)" in md and "estimated at 168 MHz" in md
