"""Device benchmark of an export on the emulated STM32F405: DSP kernels on every test clip
(bit-exactness, accuracy, memory, instructions per stage / layer type / MAC) and the portable
kernels on the first ``--portable-clips`` clips in the same run (the DSP vs portable ratio), and the
peer measured in the same run: TensorFlow Lite Micro + CMSIS-NN built from the offline bundle
(``../shared/tools/tflm``) for the same ``model_int8.tflite`` and run on QEMU
(:func:`asc_edge.device.tflm_peer.run_tflm_peer`): instructions / inference and / MAC, arena, flash,
RAM, each as a TFLM / asc-edge ratio, the board TFLM ran on, and whether its output equals the oracle's.
Also in the same run: the ``export --optimize size`` build of the same ``.tflite``
(:func:`asc_edge.export.pipeline.reemit_c`) on every clip, estimated Cortex-M4 cycles and ms at
168 MHz per step (``bench(..., cycles=True)``: the first clip traced, :mod:`asc_edge.device.cycles`),
and where the RAM of audio → logits goes.

Writes ``benchmarks/results/device_bench.json`` and ``device_bench.md``.

    .venv/bin/python benchmarks/device_bench.py [--export export/cp-mobile-ref] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from asc_edge.device.elfinfo import flash_objects, section_sizes
from asc_edge.device.harness import bench
from asc_edge.device.tflm_peer import run_tflm_peer
from asc_edge.export.pipeline import reemit_c
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

REPO = Path(__file__).resolve().parents[1]
# This benchmark's result for the same export before the issue-4 kernel work (232 clips, bit-exact)
BASELINE = {"what": "asc_nn int8-operand DSP kernels, this benchmark before issue 4's pw16 / dw3 kernels",
            "model_instructions": 74_029_164, "instructions_per_mac": 2.52, "conv": 3.22, "conv1x1": 1.87,
            "depthwise": 6.23, "flash_bytes": 178_720, "ram_bytes": 80_540}


def peer_vs_asc_edge(dsp: dict, tflm: dict) -> dict:
    """asc-edge (DSP kernels, ``dsp`` = bench report) vs TFLM + CMSIS-NN (``tflm`` = run_tflm_peer):
    each quantity for both and the ratio TFLM / asc-edge (> 1: TFLM needs more)."""
    d, m = dsp["instructions"], dsp["memory"]
    pairs = {"instructions_per_inference": (d["model_mean"], tflm["invoke_instructions"]),
             "instructions_per_mac": (d["model_instructions_per_mac"], tflm["instructions_per_mac"]),
             "arena_bytes": (m["arena_bytes"], tflm["arena_used_bytes"]),
             "flash_bytes": (m["flash_bytes"], tflm["flash_bytes"]),
             "ram_bytes": (m["ram_bytes"], tflm["ram_bytes"])}
    return {k: {"asc_edge": a, "tflm": t, "tflm_over_asc_edge": t / a} for k, (a, t) in pairs.items()}


def cyc(c: dict) -> str:
    """``a – b M cycles = x – y ms`` of a cycle-estimate entry."""
    return (f"{c['cycles_min'] / 1e6:.2f} – {c['cycles_max'] / 1e6:.2f} M cycles = "
            f"**{c['ms_min']:.1f} – {c['ms_max']:.1f} ms**")


def build_row(name: str, r: dict) -> dict:
    """One row of the speed / size table from a bench report."""
    i, m, b = r["instructions"], r["memory"], r["bit_exact"]
    return {"build": name, "device == reference": f"{b['n_equal']}/{b['n_clips']}",
            "model instructions": f"{i['model_mean']:,.0f}", "instructions/MAC": f"{i['model_instructions_per_mac']:.3f}",
            "frontend instructions": f"{i['frontend_mean']:,.0f}", "flash (B)": f"{m['flash_bytes']:,}",
            "RAM (B)": f"{m['ram_bytes']:,}",
            "model ms at 168 MHz (est.)": f"{r['cycles']['model']['ms_min']:.0f} – {r['cycles']['model']['ms_max']:.0f}"}


def flash_parts(elf, flash_bytes: int) -> dict:
    """Flash of a firmware image (``flash_bytes`` in all, as the bench reports it) by part, bytes: the
    model's constants (``L<n>_*`` objects of the generated ``model.c``: weights, biases, quantisation;
    apart from a speed build's ``L<n>_w16`` / ``_rq`` / ``_dw3`` tables, asc_edge.codegen.speed_tables), the frontend's tables
    (``asc_fe_*``), CMSIS-DSP's tables (``twiddleCoef*``, ``armBitRev*``, ``arm_*``), all code
    (``.text``) and the rest (other read-only data, vector table, ``.data`` initialisers, alignment);
    from :func:`asc_edge.device.elfinfo.flash_objects` and ``section_sizes``."""
    def part(name: str) -> str | None:
        if re.match(r"L\d+_(w16|rq|dw3)$", name):
            return "speed tables"
        if re.match(r"L\d+_", name):
            return "model constants"
        if name.startswith("asc_fe_"):
            return "frontend tables"
        if name.startswith(("twiddleCoef", "armBitRev", "arm_")):
            return "CMSIS-DSP tables"
        return None

    parts = {"model constants": 0, "speed tables": 0, "frontend tables": 0, "CMSIS-DSP tables": 0,
             "code": section_sizes(elf).get(".text", 0)}
    for name, size in flash_objects(elf).items():
        if (k := part(name)) is not None:
            parts[k] += size
    parts["other"] = flash_bytes - sum(parts.values())
    parts["total"] = flash_bytes
    return parts


def ram_breakdown(dsp: dict, graph: dict) -> dict:
    """Where the device RAM of audio → logits goes (bytes): the arena's two phases — the frontend
    (its work area + the int8 model input it fills, frame by frame; the clip itself is never
    resident) and the model's peak step (from ``graph.json``: its layers and live buffers) — plus
    the stack reservation and the other static data."""
    m, plan = dsp["memory"], graph["plan"]
    input_bytes = 1
    for v in graph["tensors"][str(graph["input"])]["shape"]:
        input_bytes *= int(v)  # int8
    frontend = plan["pre_scratch_bytes"] + input_bytes
    return {"ram_bytes": m["ram_bytes"], "arena_bytes": m["arena_bytes"],
            "stack_reserved_bytes": m["stack_reserved_bytes"], "stack_high_water_bytes": m["stack_high_water_bytes"],
            "other_static_bytes": m["ram_bytes"] - m["arena_bytes"] - m["stack_reserved_bytes"],
            "frontend_work_bytes": plan["pre_scratch_bytes"], "frontend_phase_bytes": frontend,
            "model_peak": plan["peak"], "overlaps": plan.get("overlaps", [])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", type=Path, default=REPO / "export" / "cp-mobile-ref")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--split", default="test")
    ap.add_argument("--portable-clips", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsp = bench(a.export, data=a.data, split=a.split, nn="dsp", out_dir=Path(tmp) / "dsp", cycles=True)
        port = bench(a.export, data=a.data, split=a.split, nn="portable", limit=a.portable_clips,
                     out_dir=Path(tmp) / "portable")
        # the same .tflite generated again for `export --optimize size` (weights stored once, -Os)
        reemit_c(a.export, Path(tmp) / "size_export", optimize="size")
        size = bench(Path(tmp) / "size_export", data=a.data, split=a.split, nn="dsp", out_dir=Path(tmp) / "size",
                     cycles=True)
        flash = {k: flash_parts(r["firmware"]["elf"], r["memory"]["flash_bytes"]) for k, r in (("speed", dsp), ("size", size))}
    d, p, sz = dsp["instructions"], port["instructions"], size["instructions"]
    tflm = run_tflm_peer(a.export / "model_int8.tflite", macs=d["model_macs"])
    tflm.pop("qemu_command", None)
    tflm["tflite"] = str(Path(tflm["tflite"]).relative_to(REPO)) if Path(tflm["tflite"]).is_relative_to(REPO) \
        else tflm["tflite"]
    peer = {**tflm, "vs_asc_edge": peer_vs_asc_edge(dsp, tflm)}
    graph = json.loads((a.export / "graph.json").read_text())
    ram = ram_breakdown(dsp, graph)
    result = {"export": str(a.export.relative_to(REPO) if a.export.is_relative_to(REPO) else a.export),
              "dsp": dsp, "portable": port, "size": size, "peer": peer, "baseline": BASELINE, "ram": ram,
              "flash_parts": flash,
              "portable_over_dsp_model_instructions": p["model_mean"] / d["model_mean"]}
    for r in (result["dsp"], result["portable"], result["size"]):
        r.pop("out_dir", None)
        r["firmware"].pop("elf", None)
    write_json_atomic(a.out / "device_bench.json", result)
    rows = []
    for t in d["by_layer_type"]:
        dt, pt = d["by_layer_type"][t], p["by_layer_type"][t]
        rows.append({"layer type": t, "MACs": f"{dt['macs']:,}",
                     "DSP instr/MAC": "-" if dt["instructions_per_mac"] is None else f"{dt['instructions_per_mac']:.2f}",
                     "portable instr/MAC": "-" if pt["instructions_per_mac"] is None else f"{pt['instructions_per_mac']:.2f}",
                     "DSP share": f"{100 * dt['share_of_model']:.1f} %"})
    b, m = dsp["bit_exact"], dsp["memory"]
    fmt = {"instructions_per_inference": "{:,.0f}", "instructions_per_mac": "{:.2f}"}
    label = {"instructions_per_inference": "instructions / inference", "instructions_per_mac": "instructions / MAC",
             "arena_bytes": "arena (B)", "flash_bytes": "flash (B)", "ram_bytes": "RAM (B)"}
    peer_rows = [{"quantity": label[k], "asc-edge (DSP kernels)": fmt.get(k, "{:,}").format(v["asc_edge"]),
                  "TFLM + CMSIS-NN": fmt.get(k, "{:,}").format(v["tflm"]),
                  "TFLM / asc-edge": f"{v['tflm_over_asc_edge']:.2f}x"} for k, v in peer["vs_asc_edge"].items()]
    md = "\n".join([
        f"# Device bench: {dsp['model']} ({result['export']}) on emulated STM32F405 (QEMU netduinoplus2, -icount)", "",
        f"- DSP kernels, {b['n_clips']} {a.split} clips: **device == reference on {b['n_equal']}/{b['n_clips']}**; "
        f"accuracy device {dsp['accuracy']['device']:.4f}, reference {dsp['accuracy']['reference']:.4f}",
        f"- model: {d['model_mean']:,.0f} instructions/inference = **{d['model_instructions_per_mac']:.3f} "
        f"instructions/MAC** ({d['model_macs']:,} MACs); frontend {d['frontend_mean']:,.0f}",
        f"- portable kernels ({port['bit_exact']['n_equal']}/{port['bit_exact']['n_clips']} clips bit-exact): "
        f"{p['model_mean']:,.0f} = {p['model_instructions_per_mac']:.2f}/MAC; portable / DSP = "
        f"{result['portable_over_dsp_model_instructions']:.2f}x (same run)",
        f"- peer, same run: {peer['name']} ({peer['opt']}) on QEMU {peer['board']} ({peer['board_reason']}); "
        f"input: its fixed pattern; **TFLM output == oracle: {peer['output_equals_oracle']}**; "
        f"arena = TFLM's arena_used_bytes (image built with a {peer['arena_size_bytes']:,}-byte arena); "
        f"asc-edge flash also holds the frontend",
        f"- baseline ({BASELINE['what']}): {BASELINE['model_instructions']:,} instructions/inference = "
        f"{BASELINE['instructions_per_mac']}/MAC (conv {BASELINE['conv']}, conv1x1 {BASELINE['conv1x1']}, depthwise "
        f"{BASELINE['depthwise']}); flash {BASELINE['flash_bytes']:,} B, RAM {BASELINE['ram_bytes']:,} B",
        f"- flash {m['flash_bytes']:,} B; RAM {m['ram_bytes']:,} B of {m['sram_bytes']:,} B (arena {m['arena_bytes']:,} B, "
        f"stack high-water {m['stack_high_water_bytes']} of {m['stack_reserved_bytes']} B)", "",
        markdown_table(rows), "", "## Frontend by stage (instructions per clip, all 65 frames)", "",
        "speed: the full tables and the frontend's M4 paths (the radix-4 FFT `asc_fe_cfft_fast` in inline asm "
        "with fixed twiddle tables, CMSIS-DSP's real-FFT split twiddles), -O2; size: the compact tables "
        "(half window, uint16 mel weights, one quarter-wave cosine table) and the compact radix-4 FFT in C, "
        "-Os (`firmware/frontend/asc_frontend.c`, `ASC_FE_COMPACT_TABLES`).", "",
        markdown_table([{"stage": k, "speed build": f"{v:,.0f}", "share": f"{100 * v / d['frontend_mean']:.1f} %",
                         "size build": f"{sz['frontend_parts'][k]:,.0f}",
                         "size share": f"{100 * sz['frontend_parts'][k] / sz['frontend_mean']:.1f} %"}
                        for k, v in d["frontend_parts"].items()]
                       + [{"stage": "total", "speed build": f"{d['frontend_mean']:,.0f}", "share": "100 %",
                           "size build": f"{sz['frontend_mean']:,.0f}", "size share": "100 %"}]), "",
        "## asc-edge vs TensorFlow Lite Micro + CMSIS-NN (same model, same run)", "",
        markdown_table(peer_rows), "",
        "## Estimated Cortex-M4 cycles and milliseconds at 168 MHz (first clip, speed build)", "",
        f"Assumes: {dsp['cycles']['assumptions']}. Total: model {cyc(dsp['cycles']['model'])}; frontend "
        f"{cyc(dsp['cycles']['frontend'])}; audio → logits {cyc(dsp['cycles']['frontend_plus_model'])}.", "",
        markdown_table([{"step": st["name"], "instructions (TIM2)": f"{st['instructions']:,.0f}",
                         "estimated cycles (range)": f"{c['cycles_min']:,} – {c['cycles_max']:,}",
                         "ms at 168 MHz (range)": f"{c['ms_min']:.2f} – {c['ms_max']:.2f}"}
                        for st, c in zip(d["steps"], dsp["cycles"]["steps"])]
                       + [{"step": f"frontend: {k}", "instructions (TIM2)": f"{d['frontend_parts'][k]:,.0f}",
                           "estimated cycles (range)": f"{c['cycles_min']:,} – {c['cycles_max']:,}",
                           "ms at 168 MHz (range)": f"{c['ms_min']:.2f} – {c['ms_max']:.2f}"}
                          for k, c in dsp["cycles"]["frontend_stages"].items()]), "",
        "## Speed and size builds (`export --optimize speed|size`, same .tflite, same run)", "",
        markdown_table([build_row(name, r) for name, r in (("speed (-O2, 1x1 filters also pre-widened, requantisation records and depthwise tables in flash)", dsp),
                                                            ("size (-Os, every weight once, int8, compact "
                                                             "frontend tables)", size))]), "",
        "Flash by part (bytes, from each image's symbol table; the bench images also hold the bench I/O code):", "",
        markdown_table([{"part": k, "speed build": f"{flash['speed'][k]:,}", "size build": f"{flash['size'][k]:,}"}
                        for k in flash["speed"]]), "",
        "## RAM of audio → logits (bytes)", "",
        f"- total {ram['ram_bytes']:,} = arena {ram['arena_bytes']:,} + stack reserve {ram['stack_reserved_bytes']:,} "
        f"(high-water {ram['stack_high_water_bytes']:,}) + other static data {ram['other_static_bytes']:,} "
        "(bench I/O, logits, counters)",
        f"- frontend phase: work area {ram['frontend_work_bytes']:,} (sample ring + one in-place FFT buffer; the "
        f"audio streams in a hop at a time, the clip is never resident) + the int8 model input it fills = "
        f"{ram['frontend_phase_bytes']:,}",
        f"- model peak: step {ram['model_peak']['step']} (layers {ram['model_peak']['layers']}), "
        f"{ram['model_peak']['live_bytes']:,} live: "
        + ", ".join(f"buffer {b['id']} {b['bytes']:,}" for b in ram["model_peak"]["buffers"]),
        f"- overlapped input/output buffers (a layer writing over its dying input): "
        + (", ".join(f"{o['input']}→{o['output']} (lead {o['lead_bytes']:,})" for o in ram["overlaps"]) or "none"),
        ""])
    write_text_atomic(a.out / "device_bench.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
