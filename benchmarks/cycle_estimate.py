"""Estimated Cortex-M4 cycles and milliseconds at 168 MHz of an export, per model step and frontend
stage, from the executed instruction mix (asc_edge/device/cycles.py).

One clip (default: the first test clip) is benched as ``asc-edge bench`` does (bit-exact check and the
TIM2 instruction counts under ``-icount shift=0``), then run once more with QEMU's execution trace,
which is folded over the Cortex-M4 TRM's instruction timings into a cycle range: zero wait states
with every best case .. 5 flash wait states with ART misses and every worst case. The known loops of
firmware/app/cycleloop_main.c are estimated too (the method's validation against hand counts).
Writes ``benchmarks/results/cycle_estimate.json`` and ``.md``.

    .venv/bin/python benchmarks/cycle_estimate.py                      # export/cp-mobile-ref, 1 clip
    .venv/bin/python benchmarks/cycle_estimate.py --export RUN/export --results /tmp/ce
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from asc_edge.device.cycles import (BENCH_BOUNDARIES, CLASSES, CPU_HZ, CycleModel, bench_cycles,
                                    estimate_cycles)
from asc_edge.device.harness import bench, load_graph_record
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

REPO = Path(__file__).resolve().parents[1]
LOOP_N = 1000  # firmware/app/cycleloop_main.c: ASC_CYCLELOOP_N

ASSUMPTIONS = [
    "Instruction counts and the instruction mix come from QEMU 7.2's execution trace "
    "(`-d in_asm,exec,nochain`, no `-icount`) of the same firmware image; per step they equal the bench's "
    "TIM2 counts (step 0 and the first frontend stage start at the function entry instead of main's "
    "counter read: a few instructions fewer).",
    "Timings: ARM Cortex-M4 TRM (DDI 0439B) Table 3-1 and 3.3.2 'Load/store timings', FPU Table 7-1. "
    "P (pipeline refill of a taken branch) is 1..3 cycles; whether a conditional branch was taken is read "
    "from the trace (the next block's address).",
    "**min** = zero wait states and every best case: P = 1, SDIV/UDIV 2, an LDR after an LDR pipelined to "
    "1 cycle, STR 1, IT folded (0), conditional instructions in IT blocks failing (1).",
    "**max** = STM32F405 at 168 MHz with 5 flash wait states (RM0090 Table 10) and an ART accelerator "
    "that misses on every pipeline refill: every worst case (P = 3, divides 12, no load pipelining, "
    "STR 2, +1 for an address computed by the previous instruction, +1 for literal loads), +5 cycles per "
    "taken branch, +5 per literal-pool load, and at least 6 cycles per 16-byte flash line a block spans.",
    "Not modelled: wait states of data loads from flash other than literal pools (the int8 weights and "
    "const tables are in flash, read through the ART's 8-line D-cache), unaligned accesses, bus contention, "
    "interrupts; a semihosting BKPT counts 1 cycle. The estimate is not a measurement on silicon.",
    f"ms = cycles / {CPU_HZ / 1e6:.0f} MHz.",
]


def _known_loops(work: Path) -> dict:
    from asc_edge.device import build_firmware

    img = build_firmware("cycleloop", work / "cycleloop")
    est = estimate_cycles(img.elf, workdir=work / "cycleloop_run", timeout_s=60,
                          boundaries=("asc_cycleloop_alu_begin", "asc_cycleloop_alu_end",
                                      "asc_cycleloop_ldr_begin", "asc_cycleloop_ldr_end"))
    seg = {s.boundary: s.counts for s in est.segments}
    n = LOOP_N
    # hand counts from the TRM (see firmware/app/cycleloop_main.c)
    expect = {"alu": {"instructions": 11 * n + 2, "cycles_min": 12 * n + 2, "cycles_max_zero_ws": 14 * n + 2,
                      "cycles_max": 19 * n + 5},
              "ldr": {"instructions": 5 * n + 2, "cycles_min": 7 * n + 2, "cycles_max_zero_ws": 10 * n + 2,
                      "cycles_max": 15 * n + 4}}
    out = {}
    for k in ("alu", "ldr"):
        c = seg[f"asc_cycleloop_{k}_begin"].to_dict()
        out[k] = {"n": n, "expected": expect[k], "estimated": {f: c[f] for f in expect[k]},
                  "equal": all(c[f] == v for f, v in expect[k].items())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", type=Path, default=REPO / "export" / "cp-mobile-ref")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "cycle_estimate")
    a = ap.parse_args()
    from asc_edge.device.qemu import qemu_info

    rec = load_graph_record(a.export)
    with tempfile.TemporaryDirectory(prefix="asc_cycles_") as tmp:
        work = Path(tmp) / "work"
        rep = bench(a.export, data=a.data, limit=1, out_dir=Path(tmp) / "bench", work_dir=work, log=lambda s: None)
        est = estimate_cycles(work / "fw_dsp" / "bench.elf", workdir=work, boundaries=BENCH_BOUNDARIES, timeout_s=600)
        clip = bench_cycles(est, len(rec["steps"]))[0]
        loops = _known_loops(Path(tmp))
    ins = rep["instructions"]
    steps = []
    for s, c in zip(ins["steps"], clip["steps"]):
        steps.append({"step": s["step"], "name": s["name"], "macs": s["macs"],
                      "tim2_instructions": int(s["instructions"]), **c.to_dict()})
    fe = {k: {"tim2_instructions": int(ins["frontend_parts"][k]), **v.to_dict()} for k, v in clip["frontend"].items()}
    per_inference = clip["frontend_total"] + clip["model"]
    result = {
        "export": str(a.export.relative_to(REPO) if a.export.is_relative_to(REPO) else a.export),
        "clip": rep["clips"][0]["file"], "bit_exact": rep["bit_exact"]["all_equal"], "kernels": rep["kernels"],
        "qemu": qemu_info()["version"], "cpu_hz": CPU_HZ, "model_assumptions": CycleModel().__dict__,
        "assumptions": ASSUMPTIONS,
        "model": clip["model"].to_dict(), "frontend": clip["frontend_total"].to_dict(),
        "frontend_plus_model": per_inference.to_dict(),
        "whole_run": est.total.to_dict(),  # boot, clip I/O over semihosting and printing included
        "tim2": {"model": ins["model_mean"], "frontend": ins["frontend_mean"]},
        "steps": steps, "frontend_stages": fe, "known_loops": loops,
        "classes": {k: v[2] for k, v in CLASSES.items()}, "trace_wall_s": round(est.wall_s, 2),
    }
    write_json_atomic(a.results.with_suffix(".json"), result)

    def rng(d, f="ms"):
        return (f"{d['ms_min']:.2f} – {d['ms_max']:.2f}" if f == "ms"
                else f"{d['cycles_min'] / 1e6:.3f} – {d['cycles_max'] / 1e6:.3f}")

    m, f, t = result["model"], result["frontend"], result["frontend_plus_model"]
    lines = [f"# Estimated Cortex-M4 cycles: {result['export']} ({result['kernels']} kernels), one clip", "",
             f"- clip `{result['clip']}`, device == reference: {result['bit_exact']}; {result['qemu']}",
             f"- **model: {rng(m, 'c')} M cycles = {rng(m)} ms per inference at 168 MHz** "
             f"({m['instructions']:,} instructions; {m['cycles_min'] / m['instructions']:.2f} – "
             f"{m['cycles_max'] / m['instructions']:.2f} cycles/instruction)",
             f"- frontend (all stages, one clip): {rng(f, 'c')} M cycles = {rng(f)} ms",
             f"- frontend + model: {rng(t, 'c')} M cycles = {rng(t)} ms "
             f"(zero-wait-state worst case {t['cycles_max_zero_ws'] / 1e6:.3f} M)", "",
             "## What the estimate assumes", ""] + [f"- {x}" for x in ASSUMPTIONS] + ["", "## By model step", ""]
    rows = [{"step": s["name"], "MACs": f"{s['macs']:,}", "instructions": f"{s['instructions']:,}",
             "TIM2": f"{s['tim2_instructions']:,}", "cycles (min – max)": f"{s['cycles_min']:,} – {s['cycles_max']:,}",
             "ms at 168 MHz": rng(s)} for s in steps]
    rows.append({"step": "**total (model)**", "MACs": f"{ins['model_macs']:,}", "instructions": f"{m['instructions']:,}",
                 "TIM2": f"{ins['model_mean']:,.0f}", "cycles (min – max)": f"{m['cycles_min']:,} – {m['cycles_max']:,}",
                 "ms at 168 MHz": rng(m)})
    lines += [markdown_table(rows), "", "## Frontend by stage (all frames of the clip)", ""]
    rows = [{"stage": k, "instructions": f"{v['instructions']:,}", "TIM2": f"{v['tim2_instructions']:,}",
             "cycles (min – max)": f"{v['cycles_min']:,} – {v['cycles_max']:,}", "ms at 168 MHz": rng(v)}
            for k, v in fe.items()]
    rows.append({"stage": "**total (stages)**", "instructions": f"{f['instructions']:,}",
                 "TIM2": f"{ins['frontend_mean']:,.0f} (incl. set-up)",
                 "cycles (min – max)": f"{f['cycles_min']:,} – {f['cycles_max']:,}", "ms at 168 MHz": rng(f)})
    lines += [markdown_table(rows), "", "## Instruction mix (executed instructions by class)", ""]
    rows = [{"class": k, "model": f"{m['classes'].get(k, 0):,}", "frontend": f"{f['classes'].get(k, 0):,}",
             "TRM timing": CLASSES[k][2]} for k in CLASSES if m["classes"].get(k) or f["classes"].get(k)]
    lines += [markdown_table(rows), "", "## Validation: the known loops (firmware/app/cycleloop_main.c, n = "
              f"{LOOP_N})", "",
              "Hand counts from the TRM: ALU loop `12n+2` (P = 1) / `14n+2` (P = 3) cycles, LDR-pair loop `7n+2` / "
              "`10n+2`; the flash bound from the blocks and lines by hand (`19n+5`, `15n+4`).", ""]
    rows = [{"loop": k, "quantity": q, "hand count": f"{v['expected'][q]:,}", "estimated": f"{v['estimated'][q]:,}"}
            for k, v in loops.items() for q in v["expected"]]
    lines += [markdown_table(rows), ""]
    write_text_atomic(a.results.with_suffix(".md"), "\n".join(lines))
    print(f"model {rng(m)} ms, frontend {rng(f)} ms, total {rng(t)} ms at 168 MHz; "
          f"known loops equal: {all(v['equal'] for v in loops.values())}; {a.results}.md")


if __name__ == "__main__":
    run_script(main)
