"""The ten SNTL-NTU DCASE 2024 students (real TAU22-trained) imported, exported and run on the emulated
STM32F405, evaluated on the 101 genuine TAU clips of ``../shared/data/tau_samples``.

For each checkpoint in ``../shared/models/sntl-ntu-dcase2024/``:

1. ``asc-edge import`` (strict load into our CP-Mobile, frontend from the checkpoint's ``mel.*`` buffers);
2. ``asc-edge export --target cmsis-nn`` with int8 calibration on 200 clips of the real-audio pack's
   split100 (``../shared/data``: ESC-10 recordings, disjoint from the TAU evaluation clips) and accuracy
   on ``tau_samples`` (float PyTorch, int8 through tflite-micro's reference kernels);
3. ``asc-edge bench`` on all 101 ``tau_samples`` clips (QEMU netduinoplus2, DSP kernels): device logits vs
   host C frontend -> tflite-micro, bit for bit; flash, RAM, instructions per inference;
4. for checkpoints with a resampler (``mel.0.kernel``, 32 kHz): the imported frontend resamples with the
   checkpoint's own torchaudio sinc kernel (``resampler="sinc_hann"``, used by steps 2 and 3); the float
   model is also run on the same clips resampled with asc-edge's default scipy ``resample_poly``
   (``resampler="poly"``): changed predictions, mean |logit difference|, accuracy either way.

The report's own development-test accuracy (macro, full TAU22 development-test split, float) is read
from the models folder's README table. Writes ``benchmarks/results/tau_checkpoints.{json,md}``.

    .venv/bin/python benchmarks/tau_checkpoints.py                 # all ten (~40 min on 2 cores)
    .venv/bin/python benchmarks/tau_checkpoints.py --only split100 # a subset (name substring)
    ... --reuse-exports   # keep exports already in --work (re-run only the device bench and the table)

Accuracies here are plain accuracy over 101 clips (about 10 per scene: one clip is ±1 point), not the
report's macro accuracy over 29,680 clips; they are shown side by side for orientation only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from asc_edge.checkpoint import load_checkpoint
from asc_edge.features import load_split_data
from asc_edge.models.cpjku import import_cpjku_checkpoint
from asc_edge.device.harness import bench
from asc_edge.export.pipeline import export_model
from asc_edge.report.io import file_sha256, markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# | 24-BCBL_split5_dhrckv13.ckpt | 24-BCBL | 5 | 35,062 | 43.68 |
_README_ROW = re.compile(r"^\|\s*(\S+\.ckpt)\s*\|\s*([^|]+?)\s*\|\s*(\d+)\s*\|\s*([\d,]+)\s*\|\s*([\d.]+)\s*\|\s*$")


def reported_accuracies(models_dir: Path) -> dict[str, dict]:
    """``{file name: {system, split, params, dev_test_macro_accuracy}}`` from the models README's table.

    Raises:
        SystemExit: no README or no table rows (the folder is not the SNTL-NTU pack).
    """
    readme = models_dir / "README.md"
    if not readme.is_file():
        raise SystemExit(f"error: {readme} not found (fix: pass --models pointing at the sntl-ntu-dcase2024 folder)")
    rows = {}
    for line in readme.read_text().splitlines():
        m = _README_ROW.match(line)
        if m:
            rows[m[1]] = {"system": m[2], "split": int(m[3]), "params_reported": int(m[4].replace(",", "")),
                          "dev_test_macro_accuracy": float(m[5]) / 100.0}
    if not rows:
        raise SystemExit(f"error: no checkpoint table in {readme}")
    return rows


def resampler_agreement(run_dir: Path, tau: Path) -> dict | None:
    """Float predictions of an imported checkpoint on ``tau`` (split "all") with its own resampler vs
    asc-edge's default scipy substitute; None when its frontend does not resample (no ``mel.0.kernel``).

    Returns ``{n_clips, changed_predictions, mean_abs_logit_diff, max_abs_logit_diff, float_accuracy,
    float_accuracy_substitute}`` (accuracies as fractions).
    """
    lm = load_checkpoint(run_dir / "model.ckpt")
    if lm.frontend.resampler == "poly":
        return None
    logits, targets = [], None
    for fe in (lm.frontend, dataclasses.replace(lm.frontend, resampler="poly")):
        split = load_split_data(tau, "all", fe, labels=lm.labels, progress=False)
        with torch.no_grad():
            logits.append(torch.cat([lm.model(torch.from_numpy(split.features[i:i + 32]))
                                     for i in range(0, len(split.features), 32)]).numpy())
        targets = np.asarray(split.targets)
    own, sub = logits
    diff = np.abs(own - sub)
    return {"n_clips": int(len(own)), "changed_predictions": int((own.argmax(1) != sub.argmax(1)).sum()),
            "mean_abs_logit_diff": float(diff.mean()), "max_abs_logit_diff": float(diff.max()),
            "float_accuracy": float((own.argmax(1) == targets).mean()),
            "float_accuracy_substitute": float((sub.argmax(1) == targets).mean())}


def run_one(ckpt: Path, info: dict, work: Path, tau: Path, calib: Path, reuse: bool) -> dict:
    """Import, export and bench one checkpoint; returns its table row (plus the full reports' paths)."""
    t0 = time.perf_counter()
    run_dir, export_dir = work / ckpt.stem / "run", work / ckpt.stem / "export"
    if not (reuse and (export_dir / "report.json").is_file()):
        import_cpjku_checkpoint(ckpt, run_dir, log=print)
        export_model(run_dir, "cmsis-nn", export_dir, data=tau, calib_data=calib, calib_split="100",
                     test_split="all", adaptive_rounding=True, log=print)  # `asc-edge export`'s defaults
    ex = json.loads((export_dir / "report.json").read_text())
    b = bench(export_dir, data=tau, split="all", out_dir=work / ckpt.stem / "bench", log=print)
    fe, acc, ins, mem = ex["frontend"], ex["accuracy"], b["instructions"], b["memory"]
    agree = resampler_agreement(run_dir, tau)
    imp = json.loads((run_dir / "import.json").read_text())["resampler"]
    return {
        "checkpoint": ckpt.name, "checkpoint_sha256": file_sha256(ckpt),
        "system": info["system"], "split": info["split"],
        "sample_rate": fe["sample_rate"], "input_shape": ex["complexity"]["input_shape"],
        "resampler": fe.get("resampler", "poly"),
        "resampler_kernel_max_abs_diff": imp.get("resampler_kernel_max_abs_diff"),
        "resampler_vs_substitute": agree,
        "params": ex["complexity"]["params"], "macs": ex["complexity"]["macs"],
        "n_clips": b["bit_exact"]["n_clips"],
        "float_accuracy": acc["float_accuracy"], "int8_tflm_accuracy": acc["int8_accuracy"],
        "device_accuracy": b["accuracy"]["device"],
        "device_equals_tflm": f"{b['bit_exact']['n_equal']}/{b['bit_exact']['n_clips']}",
        "bit_exact": b["bit_exact"]["all_equal"],
        "dev_test_macro_accuracy_reported": info["dev_test_macro_accuracy"],
        "flash_bytes": mem["flash_bytes"], "ram_bytes": mem["ram_bytes"], "arena_bytes": mem["arena_bytes"],
        "stack_high_water_bytes": mem["stack_high_water_bytes"],
        "frontend_instructions": round(ins["frontend_mean"]), "model_instructions": round(ins["model_mean"]),
        "model_instructions_per_mac": ins["model_instructions_per_mac"],
        "calibration": {"root": ex["data"]["calibration_root"], "split": ex["data"]["calibration_split"],
                        "n_clips": ex["data"]["n_calibration"],
                        "method": ex["tflite"]["calibration"]["activation_ranges"]["method"],
                        "adaptive_rounding": "adaptive_rounding" in ex},
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--models", type=Path, default=SHARED / "models" / "sntl-ntu-dcase2024")
    ap.add_argument("--tau", type=Path, default=SHARED / "data" / "tau_samples", help="genuine TAU clips (split all)")
    ap.add_argument("--calib", type=Path, default=SHARED / "data", help="calibration dataset (its split100)")
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "runs" / "tau_checkpoints",
                    help="imports/exports/bench reports (git-ignored: never commit these models' exports)")
    ap.add_argument("--only", default=None, help="only checkpoints whose file name contains this")
    ap.add_argument("--reuse-exports", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()

    reported = reported_accuracies(a.models)
    ckpts = sorted((p for p in a.models.glob("*.ckpt") if a.only is None or a.only in p.name),
                   key=lambda p: (reported.get(p.name, {}).get("system", p.name), reported.get(p.name, {}).get("split", 0)))
    if not ckpts:
        raise SystemExit(f"error: no checkpoints matching {a.only!r} in {a.models}")
    rows = []
    for ckpt in ckpts:
        if ckpt.name not in reported:
            raise SystemExit(f"error: {ckpt.name} is not in {a.models / 'README.md'}'s table")
        print(f"== {ckpt.name}", flush=True)
        rows.append(run_one(ckpt, reported[ckpt.name], a.work, a.tau, a.calib, a.reuse_exports))

    name = "tau_checkpoints" if a.only is None else f"tau_checkpoints_{re.sub(r'[^A-Za-z0-9]+', '_', a.only)}"
    write_json_atomic(a.out / f"{name}.json", {
        "benchmark": "tau_checkpoints", "models": str(a.models), "evaluation": {"root": str(a.tau), "split": "all"},
        "device": "QEMU netduinoplus2 (STM32F405, Cortex-M4F), -icount shift=0, DSP kernels",
        "accuracy_note": "plain accuracy on the evaluation clips; dev_test_macro_accuracy_reported is the "
                         "SNTL-NTU report's Table 3 (macro, 29,680 TAU22 development-test clips, float)",
        "rows": rows})
    table_rows = [{
        "system": r["system"], "split": f"split{r['split']}", "kHz": f"{r['sample_rate'] / 1000:g}",
        "input": f"{r['input_shape'][2]}x{r['input_shape'][3]}", "params": f"{r['params']:,}",
        "MACs": f"{r['macs'] / 1e6:.2f} M", "float": f"{100 * r['float_accuracy']:.1f}",
        "int8 (tflm)": f"{100 * r['int8_tflm_accuracy']:.1f}", "device": f"{100 * r['device_accuracy']:.1f}",
        "device == tflm": r["device_equals_tflm"], "report dev-test (macro)": f"{100 * r['dev_test_macro_accuracy_reported']:.2f}",
        "flash B": f"{r['flash_bytes']:,}", "RAM B": f"{r['ram_bytes']:,}",
        "model instr": f"{r['model_instructions'] / 1e6:.1f} M", "instr/MAC": f"{r['model_instructions_per_mac']:.2f}",
        "frontend instr": f"{r['frontend_instructions'] / 1e6:.1f} M"} for r in rows]
    agree_rows = [{
        "system": r["system"], "split": f"split{r['split']}",
        "kernel vs stored (max abs)": f"{r['resampler_kernel_max_abs_diff']:.2g}",
        "changed predictions": f"{agr['changed_predictions']}/{agr['n_clips']}",
        "mean abs logit diff": f"{agr['mean_abs_logit_diff']:.4f}",
        "max abs logit diff": f"{agr['max_abs_logit_diff']:.3f}",
        "float, own resampler": f"{100 * agr['float_accuracy']:.1f}",
        "float, scipy substitute": f"{100 * agr['float_accuracy_substitute']:.1f}"}
        for r in rows if (agr := r["resampler_vs_substitute"]) is not None]
    n_exact = sum(r["bit_exact"] for r in rows)
    md = "\n".join([
        "# SNTL-NTU DCASE 2024 students on the emulated STM32F405, genuine TAU clips", "",
        f"Generated by `benchmarks/tau_checkpoints.py`. Evaluation: the {rows[0]['n_clips']} clips of "
        f"`{a.tau.name}` (genuine TAU Urban Acoustic Scenes 2022 Mobile recordings, 10 scenes). Accuracy in %, "
        "plain accuracy over these clips (one clip ≈ 1 point). int8 calibration: 200 clips of the real-audio "
        f"pack's split100 (ESC-10, disjoint from the evaluation clips), activation ranges by "
        f"`{'/'.join(sorted({r['calibration']['method'] for r in rows}))}`"
        + (", weights by adaptive rounding" if all(r["calibration"].get("adaptive_rounding") for r in rows) else "")
        + " (export's defaults). "
        "Device: QEMU netduinoplus2 (STM32F405, "
        "Cortex-M4F), instructions counted exactly (-icount). `report dev-test` = the SNTL-NTU report's own "
        "float macro accuracy on the full TAU22 development-test split (29,680 clips), for orientation.", "",
        f"**device == tflite-micro bit for bit on every clip: {n_exact}/{len(rows)} checkpoints.**", "",
        markdown_table(table_rows), "",
        "## The checkpoint's own resampler vs asc-edge's default", "",
        "The 32 kHz checkpoints store their torchaudio resampler (`mel.0.kernel`, sinc_interp_hann 441:320). The "
        "imported frontend (`resampler: sinc_hann`) rebuilds that kernel (`kernel vs stored`: max |difference| "
        "to the stored one) and applies it like the baseline, for the float and int8 references above and the "
        "audio sent to the device. Below, the float model on the same clips resampled with the default scipy "
        "`resample_poly` instead: predictions that change, mean / max |logit difference| over all clips and "
        "classes, float accuracy (%) both ways. The 44.1 kHz checkpoints resample nothing.", "",
        markdown_table(agree_rows) if agree_rows else "(no checkpoint with a resampler)", ""])
    write_text_atomic(a.out / f"{name}.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
