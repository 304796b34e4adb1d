"""int8 accuracy by activation-range calibration (min/max, TFLite's; percentile; MSE) and with
quantisation-aware fine-tuning of the weights first (``qat+minmax``, ``qat+mse``; ``--qat-epochs``).

For each model: ONNX export, one onnx2tf conversion (its SavedModel and its min/max int8 model), then
the same SavedModel re-quantised with percentile (99.999 %) and MSE ranges
(:mod:`asc_edge.export.calibration`); each int8 model is run by tflite-micro (the oracle the device
matches bit for bit) on every evaluation clip. Calibration: 200 evenly spread clips of
``../shared/data`` split100, as ``asc-edge export`` does.

Models:

- the ten SNTL-NTU DCASE 2024 students (``../shared/models/sntl-ntu-dcase2024``, imported), evaluated
  on the 101 genuine TAU clips (``../shared/data/tau_samples``): issue 14's target;
- every ``benchmarks/runs/zoo_*_split100`` run of ``benchmarks/zoo.py`` (20 epochs) and the bundled
  reference ``export/cp-mobile-ref.ckpt``, evaluated on the 232 test clips of ``../shared/data``.

Accuracy is plain accuracy (top-1 share); "agreement" is the share of clips where the int8 model's
top-1 equals the float PyTorch model's. Writes ``benchmarks/results/int8_calibration.{json,md}``.

    .venv/bin/python benchmarks/int8_calibration.py                 # all (about an hour on 2 cores)
    .venv/bin/python benchmarks/int8_calibration.py --only split100 # names containing a substring
    ... --reuse --only BCBL   # keep the calibration columns already in the results, add the QAT columns
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asc_edge.checkpoint import load_checkpoint, predict_logits
from asc_edge.export.calibration import METHODS, recalibrate
from asc_edge.export.onnx import export_onnx
from asc_edge.export.oracle import TflmOracle
from asc_edge.export.pipeline import _spread
from asc_edge.export.qat import adaptive_round, bias_correct, qat_finetune
from asc_edge.export.tflite import convert_int8_tflite
from asc_edge.features import load_split_data
from asc_edge.models.cpjku import import_cpjku_checkpoint
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent
QAT_METHODS = ("qat+minmax", "qat+mse")
BC_METHODS = ("bc+mse",)
ADA_METHODS = ("ada+mse", "qat+ada+mse")
KEEP = set(METHODS) | set(QAT_METHODS) | set(BC_METHODS) | set(ADA_METHODS) | {"onnx2tf_s", "qat"}
SHARED = HERE.parent.parent / "shared"


def discordance(float_ok: np.ndarray, int8_ok: np.ndarray) -> dict:
    """Paired comparison of float and int8 on the same clips: clips only the float model gets right,
    clips only the int8 model gets right, and the exact two-sided McNemar p-value (binomial test of
    the discordant clips against 1/2, ``scipy.stats.binomtest``): how likely an accuracy difference
    at least this large is when int8 and float are equally accurate and only disagree by chance."""
    from scipy.stats import binomtest

    b, c = int((float_ok & ~int8_ok).sum()), int((~float_ok & int8_ok).sum())
    return {"float_only_correct": b, "int8_only_correct": c,
            "mcnemar_p": float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0}


def evaluate(ckpt: Path, test_data: Path, test_split: str, calib_data: Path, work: Path, qat_epochs: int,
             done: dict | None = None, bias_correction: bool = False, adaptive: bool = False) -> dict:
    """Float and per-method int8 accuracy of one checkpoint (see the module docstring); ``done``: this
    row from an earlier run, whose calibration-method columns are kept (only the QAT columns are added)."""
    lm = load_checkpoint(ckpt)
    fe = lm.frontend
    test = load_split_data(test_data, test_split, fe, labels=lm.labels, progress=False)
    train = load_split_data(calib_data, "100", fe, labels=None, progress=False)
    calib = train.features[_spread(len(train.features), 200)]
    with torch.no_grad():
        fpred = predict_logits(lm.model, test.features).numpy().argmax(1)
    y = test.targets
    row = {"model": lm.model_name, "n_clips": int(len(y)), "float_accuracy": float((fpred == y).mean())}
    if done and all(m in done for m in METHODS):
        row.update({k: v for k, v in done.items() if k in KEEP})
    else:
        export_onnx(lm.model, work / "model.onnx", input_shape=(1, *test.features.shape[1:]))
        t0 = time.perf_counter()
        convert_int8_tflite(work / "model.onnx", calib, work / "minmax.tflite", work / "conv")
        row["onnx2tf_s"] = round(time.perf_counter() - t0, 1)
    if qat_epochs:  # quantisation-aware fine-tuning (asc_edge/export/qat.py) on the same pool, then each method
        t0 = time.perf_counter()
        qmodel, qrep = qat_finetune(lm.model, train.features, epochs=qat_epochs)
        with torch.no_grad():
            row["float_accuracy_after_qat"] = float((predict_logits(qmodel, test.features).numpy().argmax(1) == y).mean())
        row["qat"] = {k: qrep[k] for k in ("epochs", "lr", "n_clips", "mse_int8_weights_before",
                                           "mse_int8_weights_after")}
        row["qat"]["wall_s"] = round(time.perf_counter() - t0, 1)
        export_onnx(qmodel, work / "qat.onnx", input_shape=(1, *test.features.shape[1:]))
        convert_int8_tflite(work / "qat.onnx", calib, work / "qat+minmax.tflite", work / "qconv")
        for method in ("minmax", "mse"):
            path = work / f"qat+{method}.tflite"
            if method != "minmax":
                recalibrate(work / "qconv" / "onnx2tf", work / "qconv" / "calibration_nhwc.npy", method, path)
            qpred = TflmOracle(path).predict(test.features)[0].astype(np.int32).argmax(1)
            row[f"qat+{method}"] = {"int8_accuracy": float((qpred == y).mean()),
                                    "agreement": float((qpred == fpred).mean())}
    if adaptive:  # adaptive rounding of the int8 weights (asc_edge/export/qat.py), then MSE ranges; after QAT too
        for col, base in (("ada+mse", lm.model), ("qat+ada+mse", qmodel if qat_epochs else None)):
            if base is None:
                continue
            t0 = time.perf_counter()
            amodel, arep = adaptive_round(base, train.features)
            tag = col.replace("+", "_")
            export_onnx(amodel, work / f"{tag}.onnx", input_shape=(1, *test.features.shape[1:]))
            convert_int8_tflite(work / f"{tag}.onnx", calib, work / f"{tag}_minmax.tflite", work / f"{tag}_conv")
            recalibrate(work / f"{tag}_conv" / "onnx2tf", work / f"{tag}_conv" / "calibration_nhwc.npy", "mse",
                        work / f"{tag}.tflite")
            qpred = TflmOracle(work / f"{tag}.tflite").predict(test.features)[0].astype(np.int32).argmax(1)
            row[col] = {"int8_accuracy": float((qpred == y).mean()), "agreement": float((qpred == fpred).mean()),
                        **discordance(fpred == y, qpred == y),
                        **{k: arep[k] for k in ("changed_fraction", "output_mse_nearest", "output_mse_adaptive")},
                        "wall_s": round(time.perf_counter() - t0, 1)}
    if bias_correction:  # empirical bias correction (asc_edge/export/qat.py) on the same pool, then MSE ranges
        bmodel, brep = bias_correct(lm.model, train.features)
        export_onnx(bmodel, work / "bc.onnx", input_shape=(1, *test.features.shape[1:]))
        convert_int8_tflite(work / "bc.onnx", calib, work / "bc+minmax.tflite", work / "bconv")
        recalibrate(work / "bconv" / "onnx2tf", work / "bconv" / "calibration_nhwc.npy", "mse", work / "bc+mse.tflite")
        qpred = TflmOracle(work / "bc+mse.tflite").predict(test.features)[0].astype(np.int32).argmax(1)
        row["bc+mse"] = {"int8_accuracy": float((qpred == y).mean()), "agreement": float((qpred == fpred).mean()),
                         "mean_abs_shift": brep["mean_abs_shift"]}
    for method in [m for m in METHODS if m not in row]:
        path = work / f"{method}.tflite"
        t0 = time.perf_counter()
        info = {"method": "minmax"} if method == "minmax" else \
            recalibrate(work / "conv" / "onnx2tf", work / "conv" / "calibration_nhwc.npy", method, path)
        qpred = TflmOracle(path).predict(test.features)[0].astype(np.int32).argmax(1)
        row[method] = {"int8_accuracy": float((qpred == y).mean()), "agreement": float((qpred == fpred).mean()),
                       "calibration_s": round(time.perf_counter() - t0, 1),
                       **{k: v for k, v in info.items() if k in ("n_narrowed", "n_tensors", "median_width_ratio",
                                                                   "rsqrt_capped")}}
    return row


def discordance_table(rows: list[dict]) -> list[str]:
    """Markdown lines: the export default (ada+mse) against float on the SNTL-NTU students, paired
    per clip (:func:`discordance`); empty when no row has it."""
    have = [r for r in rows if r.get("source") == "sntl" and "float_only_correct" in r.get("ada+mse", {})]
    if not have:
        return []
    t = [{"model": r["name"], "float": f"{r['float_accuracy']:.3f}", "ada+mse": f"{r['ada+mse']['int8_accuracy']:.3f}",
          "points": f"{100 * (r['ada+mse']['int8_accuracy'] - r['float_accuracy']):+.1f}",
          "clips only float gets right": r["ada+mse"]["float_only_correct"],
          "clips only int8 gets right": r["ada+mse"]["int8_only_correct"],
          "McNemar p (exact)": f"{r['ada+mse']['mcnemar_p']:.2f}"} for r in have]
    return ["The export default (ada+mse) against float on the SNTL-NTU students, paired per clip: the "
            "clips only one of the two classifies correctly, and the exact McNemar p-value of the difference "
            "(`discordance` in this script; p near 1: the int8 model is no less accurate than float beyond "
            "what these 101 clips can resolve).", "", markdown_table(t), ""]


def write(rows: list[dict], args, wall: float) -> None:
    res = Path(args.results)
    write_json_atomic(res.with_suffix(".json"), {
        "benchmark": "int8_calibration", "methods": list(METHODS), "percentile": 99.999, "n_calibration": 200,
        "machine": platform.machine(), "wall_s": round(wall, 1), "rows": rows})
    table = []
    cols = list(METHODS) + [m for m in QAT_METHODS + BC_METHODS + ADA_METHODS if any(m in r for r in rows)]
    for r in rows:
        have = [m for m in cols if m in r]
        best = max(have, key=lambda m: (r[m]["int8_accuracy"], -cols.index(m)))
        table.append({"model": r["name"], "clips": r["n_clips"], "float": f"{r['float_accuracy']:.3f}",
                      **{m: f"{r[m]['int8_accuracy']:.3f} ({r[m]['agreement']:.2f})" if m in r else "-" for m in cols},
                      "best": best,
                      "best − float (points)": f"{100 * (r[best]['int8_accuracy'] - r['float_accuracy']):+.1f}"})
    mean = {m: np.mean([r[m]["int8_accuracy"] - r["float_accuracy"] for r in rows if m in r]) for m in cols}
    qat_epochs = sorted({r["qat"]["epochs"] for r in rows if "qat" in r}) or [args.qat_epochs]
    md = "\n".join([
        "# int8 accuracy by activation-range calibration (tflite-micro)", "",
        "Generated by `benchmarks/int8_calibration.py`. Each cell: int8 accuracy (top-1 agreement with the float "
        "model). min/max = TFLite's converter ranges; percentile = central 99.999 %; mse = range minimising the "
        "squared int8 error; percentile and mse also cap each RSQRT's output range at 1/√(input step) "
        "(`asc_edge/export/calibration.py`). Calibration: 200 clips of `../shared/data` split100. "
        "SNTL-NTU rows: the real TAU22-trained students on the 101 genuine TAU clips; zoo rows: "
        f"`benchmarks/zoo.py` split100 runs (20 epochs) on the 232 test clips. Wall time of the last run (`--reuse` "
        f"adds rows and columns to earlier ones): {wall / 60:.0f} min.", "",
        markdown_table(table), "",
        "Mean int8 − float accuracy over the rows that have the column (points): "
        + ", ".join(f"{m} {100 * v:+.2f}" for m, v in mean.items()), "",
        *discordance_table(rows),
        "Int8 vs float top-1 agreement over the ten SNTL-NTU students (mean / worst): "
        + ", ".join(f"{m} {np.mean(a):.3f} / {np.min(a):.3f}" for m in cols
                    if (a := [r[m]["agreement"] for r in rows if r.get("source") == "sntl" and m in r])), "",
        "qat+minmax / qat+mse: the weights first fine-tuned for the int8 rounding (`asc_edge/export/qat.py`: "
        "BatchNorm folded, TFLite's per-channel int8 weight rounding with a straight-through gradient, MSE to the "
        "float model's own logits on the 911 split100 clips of `../shared/data`, labels unused, Adam 1e-4, "
        f"{'/'.join(map(str, qat_epochs))} epochs), then converted with that calibration; agreement is with the "
        "original float "
        "model. bc+mse: empirical bias correction of the int8 weight rounding first (Nagel et al. 2019, §4.2; "
        "`bias_correct` in `asc_edge/export/qat.py`: each layer's bias minus the mean output shift its rounding "
        "causes on the same 911 clips), then the mse ranges. ada+mse: each weight rounded up or down to "
        "TFLite's int8 grid by the layer's output error instead of to nearest (AdaRound's layer-wise objective, "
        "Nagel et al. 2020; `adaptive_round` in `asc_edge/export/qat.py`: solved exactly per filter with ≤ 12 "
        "free weights, by coordinate descent otherwise, on 256 of the same clips), then the mse ranges; "
        "qat+ada+mse: the QAT weights, then adaptive rounding, then mse.", ""])
    write_text_atomic(res.with_suffix(".md"), md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="only models whose name contains this")
    ap.add_argument("--results", default=str(HERE / "results" / "int8_calibration"))
    ap.add_argument("--qat-epochs", type=int, default=5, help="0: no quantisation-aware fine-tuning columns")
    ap.add_argument("--reuse", action="store_true", help="keep the rows in the results file; for the selected "
                    "models keep their calibration columns too (unless --fresh)")
    ap.add_argument("--fresh", action="store_true", help="with --reuse: recompute every column of the selected models")
    ap.add_argument("--bias-correction", action="store_true", help="add the bc+mse column (bias correction + mse)")
    ap.add_argument("--adaptive-rounding", action="store_true",
                    help="add the ada+mse column (and qat+ada+mse with --qat-epochs)")
    args = ap.parse_args()
    data, tau = SHARED / "data", SHARED / "data" / "tau_samples"
    jobs = [(p.stem, p, "sntl") for p in sorted((SHARED / "models" / "sntl-ntu-dcase2024").glob("*.ckpt"))]
    jobs += [(p.name.removeprefix("zoo_"), p / "model.ckpt", "zoo")
             for p in sorted((HERE / "runs").glob("zoo_*_split100")) if (p / "model.ckpt").is_file()]
    ref = HERE.parent / "export" / "cp-mobile-ref.ckpt"  # the bundled reference (README command 1's model)
    jobs += [("cp-mobile-ref", ref, "zoo")] if ref.is_file() else []
    jobs = [j for j in jobs if args.only in j[0]]
    old = Path(args.results).with_suffix(".json")
    prev = {r["name"]: r for r in json.loads(old.read_text())["rows"]} if args.reuse and old.is_file() else {}
    done, t0 = dict(prev), time.perf_counter()  # name -> row; an interrupted run keeps every earlier row
    with tempfile.TemporaryDirectory(prefix="asc_int8_calib_") as tmp:
        for name, path, kind in jobs:
            print(f"== {name}", flush=True)
            work = Path(tmp) / name
            work.mkdir()
            ckpt = import_cpjku_checkpoint(path, work / "run", log=None) if kind == "sntl" else path
            row = evaluate(ckpt, tau if kind == "sntl" else data, "all" if kind == "sntl" else "test", data, work,
                           args.qat_epochs, None if args.fresh else prev.get(name), args.bias_correction,
                           args.adaptive_rounding)
            done[name] = {"name": name, "source": kind, **row}
            rows = [done[k] for k in sorted(done)]
            print({m: row[m]["int8_accuracy"] for m in METHODS}, "float", row["float_accuracy"], flush=True)
            write(rows, args, time.perf_counter() - t0)
            shutil.rmtree(work, ignore_errors=True)
    print(Path(args.results).with_suffix(".md").read_text())


if __name__ == "__main__":
    run_script(main)
