"""Device benchmark of an export on the emulated STM32F405: DSP kernels on every test clip
(bit-exactness, accuracy, memory, instructions per stage / layer type / MAC) and the portable
kernels on the first ``--portable-clips`` clips in the same run (the DSP vs portable ratio).

Writes ``benchmarks/results/device_bench.json`` and ``device_bench.md``.

    /work/venv-export/bin/python benchmarks/device_bench.py [--export export/cp-mobile-ref] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from asc_edge.device.harness import bench
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
# This benchmark's result for the same export before the issue-4 kernel work (232 clips, bit-exact)
BASELINE = {"what": "asc_nn int8-operand DSP kernels, this benchmark before issue 4's pw16 / dw3 kernels",
            "model_instructions": 74_029_164, "instructions_per_mac": 2.52, "conv": 3.22, "conv1x1": 1.87,
            "depthwise": 6.23, "flash_bytes": 178_720, "ram_bytes": 80_540}
PEER = {"name": "TFLite Micro + CMSIS-NN, same model, emulated Cortex-M4F -O2 (issue 4)",
        "instructions_per_mac": 3.21, "conv": 2.40, "depthwise": 8.0}


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
    result = {"export": str(a.export.relative_to(REPO) if a.export.is_relative_to(REPO) else a.export),
              "dsp": dsp, "portable": port, "peer": PEER, "baseline": BASELINE,
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
    md = "\n".join([
        f"# Device bench: {dsp['model']} ({result['export']}) on emulated STM32F405 (QEMU netduinoplus2, -icount)", "",
        f"- DSP kernels, {b['n_clips']} {a.split} clips: **device == reference on {b['n_equal']}/{b['n_clips']}**; "
        f"accuracy device {dsp['accuracy']['device']:.4f}, reference {dsp['accuracy']['reference']:.4f}",
        f"- model: {d['model_mean']:,.0f} instructions/inference = **{d['model_instructions_per_mac']:.2f} "
        f"instructions/MAC** ({d['model_macs']:,} MACs); frontend {d['frontend_mean']:,.0f}",
        f"- portable kernels ({port['bit_exact']['n_equal']}/{port['bit_exact']['n_clips']} clips bit-exact): "
        f"{p['model_mean']:,.0f} = {p['model_instructions_per_mac']:.2f}/MAC; portable / DSP = "
        f"{result['portable_over_dsp_model_instructions']:.2f}x (same run)",
        f"- peer: {PEER['name']}: {PEER['instructions_per_mac']}/MAC (conv {PEER['conv']}, depthwise {PEER['depthwise']})",
        f"- baseline ({BASELINE['what']}): {BASELINE['model_instructions']:,} instructions/inference = "
        f"{BASELINE['instructions_per_mac']}/MAC (conv {BASELINE['conv']}, conv1x1 {BASELINE['conv1x1']}, depthwise "
        f"{BASELINE['depthwise']}); flash {BASELINE['flash_bytes']:,} B, RAM {BASELINE['ram_bytes']:,} B",
        f"- flash {m['flash_bytes']:,} B; RAM {m['ram_bytes']:,} B of {m['sram_bytes']:,} B (arena {m['arena_bytes']:,} B, "
        f"stack high-water {m['stack_high_water_bytes']} of {m['stack_reserved_bytes']} B)", "",
        markdown_table(rows), ""])
    write_text_atomic(a.out / "device_bench.md", md)
    print(md)


if __name__ == "__main__":
    main()
