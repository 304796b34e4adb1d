"""Arena plan of the generated C model vs naive sum vs tflite-micro, and export wall time per stage.

Runs the full ``asc-edge export --target cmsis-nn`` with its int8 defaults (adaptive rounding, mse
ranges) on a trained checkpoint (default: the bundled CP-Mobile reference ``export/cp-mobile-ref.ckpt``)
and writes
``benchmarks/results/export_arena.json`` and ``export_arena.md`` (all figures measured in this run
on this machine; bytes of activation memory):

- device plan (what the generated C uses): inverted-residual blocks fused row by row, the int8 input
  and the frontend's work area inside the arena; its lower bound (largest sum of simultaneously
  live buffers of any step),
- layer by layer (no fusion): our first-fit plan + the int8 input, its live-tensor lower bound, and
  naive (every activation tensor in its own buffer, no reuse),
- tflite-micro: ``RecordingMicroAllocator``'s total arena (head = planned tensors + scratch,
  tail = persistent structures) for the same ``.tflite``.

    /work/venv-export/bin/python benchmarks/export_arena.py [--run DIR] [--data DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from asc_edge.export.pipeline import export_model
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=HERE.parent / "export" / "cp-mobile-ref.ckpt",
                    help="run folder or checkpoint (default: the bundled CP-Mobile reference checkpoint)")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="export directory (default: a temporary one)")
    ap.add_argument("--n-check", type=int, default=200)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as td:
        out = args.out or Path(td) / "export"
        # the CLI's defaults for int8: adaptive rounding, then the mse activation ranges
        rep = export_model(args.run, "cmsis-nn", out, data=args.data, n_check=args.n_check, adaptive_rounding=True)
    a = rep["c_model"]["arena"]
    result = {
        "run": str(args.run.resolve().relative_to(HERE.parent) if args.run.resolve().is_relative_to(HERE.parent)
                   else args.run), "model": rep["model"], "params": rep["complexity"].get("params"),
        "tflite_ops": rep["tflite"]["n_ops"], "c_layers": rep["c_model"]["n_layers"],
        "rewrites": rep["c_model"]["rewrites"], "arena": a,
        "accuracy": rep["accuracy"], "onnx_parity_max_abs": rep["onnx"]["parity"]["max_abs_logit_diff"],
        "host_check": {k: rep["c_model"]["host_check"][k] for k in ("n_clips", "n_equal", "layer_outputs_compared")},
        "timings_s": rep["timings_s"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0))}, "versions": rep["versions"],
    }
    results = HERE / "results"
    write_json_atomic(results / "export_arena.json", result)
    lbl = a["layer_by_layer"]
    rows = [
        {"quantity": "device plan: fused blocks, input + frontend work inside (the generated C)", "bytes": a["arena_bytes"]},
        {"quantity": "device plan: lower bound of its schedule", "bytes": a["lower_bound_bytes"]},
        {"quantity": "  of which frontend work area (before layer 0, beside the input)", "bytes": a["pre_scratch_bytes"]},
        {"quantity": "layer by layer: planned arena + int8 input", "bytes": lbl["plus_input_bytes"]},
        {"quantity": "layer by layer: live-tensor lower bound + int8 input", "bytes": lbl["lower_bound_bytes"] + a["input_bytes"]},
        {"quantity": "layer by layer: naive sum + int8 input", "bytes": lbl["naive_bytes"] + a["input_bytes"]},
        {"quantity": "tflite-micro arena total (head + tail)", "bytes": a["tflm_arena_total_bytes"]},
        {"quantity": "tflite-micro head (tensors + scratch)", "bytes": a["tflm_arena_head_bytes"]},
        {"quantity": "tflite-micro tail (persistent)", "bytes": a["tflm_arena_tail_bytes"]},
    ]
    trows = [{"stage": k, "wall_s": v} for k, v in rep["timings_s"].items()]
    hc = result["host_check"]
    md = "\n".join([
        f"# Export: arena plan and wall time ({rep['model']}, {result['params']:,} params)", "",
        f"Run `{result['run']}`; {result['tflite_ops']} tflite ops → {result['c_layers']} C layers "
        f"(PAD folded: {result['rewrites']['pad_folded']}, grouped→depthwise: "
        f"{result['rewrites']['grouped_as_depthwise']}, RESHAPE aliased: {result['rewrites']['reshape_alias']}).",
        f"Host C == tflite-micro on {hc['n_equal']}/{hc['n_clips']} clips "
        f"({hc['layer_outputs_compared']} intermediate layer outputs identical). "
        f"Test split: float {rep['accuracy']['float_accuracy']:.4f}, int8 {rep['accuracy']['int8_accuracy']:.4f}, "
        f"top-1 agreement {rep['accuracy']['top1_agreement']:.4f}.", "",
        "## Activation memory", "", markdown_table(rows, ["quantity", "bytes"], floatfmt=".0f"), "",
        f"## Wall time per stage (s; {result['machine']['affinity']} CPUs available to the process)", "",
        markdown_table(trows, ["stage", "wall_s"], floatfmt=".2f"), "",
    ])
    write_text_atomic(results / "export_arena.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
