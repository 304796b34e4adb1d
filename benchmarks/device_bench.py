"""Device benchmark of an export on the emulated STM32F405: DSP kernels on every test clip
(bit-exactness, accuracy, memory, instructions per stage / layer type / MAC) and the portable
kernels on the first ``--portable-clips`` clips in the same run (the DSP vs portable ratio), and the
peer measured in the same run: TensorFlow Lite Micro + CMSIS-NN built from the offline bundle
(``../shared/tools/tflm``) for the same ``model_int8.tflite`` and run on QEMU
(:func:`asc_edge.device.tflm_peer.run_tflm_peer`): instructions / inference and / MAC, arena, flash,
RAM, each as a TFLM / asc-edge ratio, the board TFLM ran on, and whether its output equals the oracle's.

Writes ``benchmarks/results/device_bench.json`` and ``device_bench.md``.

    /work/venv-export/bin/python benchmarks/device_bench.py [--export export/cp-mobile-ref] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from asc_edge.device.harness import bench
from asc_edge.device.tflm_peer import run_tflm_peer
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export", type=Path, default=REPO / "export" / "cp-mobile-ref")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--split", default="test")
    ap.add_argument("--portable-clips", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dsp = bench(a.export, data=a.data, split=a.split, nn="dsp", out_dir=Path(tmp) / "dsp")
        port = bench(a.export, data=a.data, split=a.split, nn="portable", limit=a.portable_clips,
                     out_dir=Path(tmp) / "portable")
    d, p = dsp["instructions"], port["instructions"]
    tflm = run_tflm_peer(a.export / "model_int8.tflite", macs=d["model_macs"])
    tflm.pop("qemu_command", None)
    tflm["tflite"] = str(Path(tflm["tflite"]).relative_to(REPO)) if Path(tflm["tflite"]).is_relative_to(REPO) \
        else tflm["tflite"]
    peer = {**tflm, "vs_asc_edge": peer_vs_asc_edge(dsp, tflm)}
    result = {"export": str(a.export.relative_to(REPO) if a.export.is_relative_to(REPO) else a.export),
              "dsp": dsp, "portable": port, "peer": peer, "baseline": BASELINE,
              "portable_over_dsp_model_instructions": p["model_mean"] / d["model_mean"]}
    for r in (result["dsp"], result["portable"]):
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
        f"- model: {d['model_mean']:,.0f} instructions/inference = **{d['model_instructions_per_mac']:.2f} "
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
        markdown_table([{"stage": k, "instructions": f"{v:,.0f}", "share": f"{100 * v / d['frontend_mean']:.1f} %"}
                        for k, v in d["frontend_parts"].items()]), "",
        "## asc-edge vs TensorFlow Lite Micro + CMSIS-NN (same model, same run)", "",
        markdown_table(peer_rows), ""])
    write_text_atomic(a.out / "device_bench.md", md)
    print(md)


if __name__ == "__main__":
    main()
