"""``asc-edge export``: checkpoint → ONNX → int8 TFLite → generated C model, each stage verified.

:func:`export_model` runs, in order (wall time of each stage in ``report["timings_s"]``):

1. load the checkpoint; refuse an over-budget model (:func:`asc_edge.complexity.check_budget`)
   unless ``allow_over_budget``;
2. features: the run's training split (calibration, default ``split100``) and the test split,
   computed with the checkpoint's own frontend (:func:`asc_edge.features.load_split_data`);
3. ONNX (``target`` ≥ onnx): BatchNorm folded, legacy exporter, opset 17, onnxruntime parity with
   PyTorch on real test clips (≤ 1e-4 or ExportError);
4. int8 TFLite (``target`` ≥ tflite): onnx2tf full-integer PTQ calibrated on ``n_calibration``
   (≥ 200) real training clips; float vs int8 accuracy and top-1 agreement on the test split,
   int8 from the tflite-micro oracle; the **quality gate** (:mod:`asc_edge.export.quality`): int8 vs
   float top-1 agreement and logit cosine similarity (mean, worst 5 %) on the test clips not used for
   calibration (nor for QAT), each against its threshold, else ExportError and nothing written;
5. C model (``target == "cmsis-nn"``): :mod:`asc_edge.codegen` graph → arena plan → ``model.h`` /
   ``model.c``; host build; host C vs tflite-micro on ≥ ``n_check`` clips (test clips, then
   training clips if fewer), every output byte, the first ``debug_clips`` also layer by layer;
   arena plan vs naive vs tflite-micro's arena.

Everything is written to a temporary sibling of ``out_dir`` which is renamed over it at the end
(an existing ``out_dir`` is replaced only after success). ``out_dir`` then holds ``model.onnx``,
``model_int8.tflite`` (onnx2tf's full-integer output, unmodified: grouped CONV_2D are mapped to the
depthwise kernel by the code generator, not rewritten in the file), ``onnx2tf.log``, ``c/model.h``,
``c/model.c`` (inverted-residual blocks fused row by row; the int8 input and the frontend's work
area planned inside the arena), ``c/asc_frontend_config.h`` + ``c/asc_frontend_tables.c`` (the C
log-mel frontend's tables for the checkpoint's frontend, quantising to the model's input scale),
``graph.json`` (the layer graph, execution steps and arena plan the C was generated from:
:mod:`asc_edge.codegen.record`; ``asc-edge bench`` reads it) and ``report.json`` (versions, sha256 of every file, wall time per stage, all checks).
onnx2tf's scratch (SavedModel and its other variants) goes to a temporary directory that is deleted.
The generated C is compiled fresh for the host check (``host_build`` time) and the library is not
kept in ``out_dir``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError
from asc_edge.report.io import file_sha256

from .quality import GATE_DEFAULTS, GATE_FLAGS, gate_failures, int8_float_agreement

__all__ = ["export_model", "TARGETS", "PRECISIONS", "DEFAULT_DATA"]

TARGETS = ("onnx", "tflite", "cmsis-nn")
PRECISIONS = ("int8", "fp16")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _resolve_data(data, hp: dict) -> Path:
    if data is not None:
        return Path(data)
    cand = (hp.get("train") or {}).get("data") if isinstance(hp.get("train"), dict) else None
    for base in ([Path(cand), REPO_ROOT / cand] if cand else []):
        if base.exists():
            return base
    return DEFAULT_DATA


def _spread(n_total: int, n: int) -> np.ndarray:
    """``n`` deterministic, evenly spread indices of ``range(n_total)``."""
    if n >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def _quality_gate(flog, qlog, held, gate: bool, thresholds: dict, clips: str, source: str, what: str, log) -> dict:
    """The quality gate's record (:func:`asc_edge.export.quality.int8_float_agreement` of the
    ``held`` clips' logits, each against its threshold); raises ExportError when ``gate`` is on and a
    bound fails (before anything reaches the output directory)."""
    qg: dict = {"enabled": bool(gate), "thresholds": dict(thresholds), "clips": clips, f"{what}_from": source}
    if held.any():
        qg.update(int8_float_agreement(flog[held], qlog[held]))
        failed = gate_failures(qg, thresholds)
        qg["failed"] = failed
        qg["passed"] = not failed if gate else None
    elif gate:
        raise ExportError(f"quality gate: none of the {len(held)} test clips is held out (all were used for "
                          "calibration)", hint="evaluate on another split (--test-split test) or pass --no-gate")
    else:
        qg.update({"n_clips": 0, "failed": [], "passed": None})
    if qg["n_clips"] and not (gate and qg["failed"]):  # a failure is the error line below
        verdict = "passed" if gate else "not enforced"
        log(f"{what} quality gate on {qg['n_clips']} held-out clips: top-1 agreement {qg['top1_agreement']:.4f} "
            f"(>= {thresholds['agreement']:g}), logit cosine mean {qg['cosine_mean']:.4f} "
            f"(>= {thresholds['cosine']:g}), worst 5 % {qg['cosine_worst5_mean']:.4f} "
            f"(>= {thresholds['cosine_worst5']:g}): {verdict}")
    if gate and qg["failed"]:
        fix = "--calibration, --qat-epochs N" if what == "int8" else "--precision int8"
        raise ExportError(f"{what} quality gate failed on {qg['n_clips']} held-out clips: " + "; ".join(qg["failed"])
                          + "; nothing was written",
                          hint=f"improve the {what} model ({fix}) or relax the named threshold (or --no-gate)")
    return qg


def export_model(ckpt_or_run_dir, target: str = "cmsis-nn", out_dir=None, *, data=None, split: str | None = None,
                 calib_data=None, calib_split: str | None = None, test_split: str = "test",
                 n_calibration: int = 200, n_check: int = 200, debug_clips: int = 2,
                 allow_over_budget: bool = False, calibration: str = "mse", percentile: float | None = None,
                 qat_epochs: int = 0, qat_lr: float = 1e-4, adaptive_rounding: bool = False,
                 bias_correction: bool = False, gate: bool = False,
                 gate_agreement: float = GATE_DEFAULTS["agreement"], gate_cosine: float = GATE_DEFAULTS["cosine"],
                 gate_cosine_worst5: float = GATE_DEFAULTS["cosine_worst5"],
                 precision: str = "int8", optimize: str = "speed", cache_dir=None, log=print,
                 progress: bool = False) -> dict:
    """Export a trained checkpoint; returns the report dict (also written as ``report.json``).

    Args:
        ckpt_or_run_dir: run directory of ``asc-edge train`` or its ``model.ckpt``.
        target: ``"onnx"``, ``"tflite"`` (ONNX + int8 TFLite) or ``"cmsis-nn"`` (all + C model).
        out_dir: output directory (default ``export/<run name>/``); replaced atomically.
        data: dataset root (default: the run's own ``data`` if it exists, else ``../shared/data``).
        split: calibration split (default: the run's own, else ``"100"``).
        calib_data, calib_split: calibrate on another dataset's split instead (labels ignored:
            only the audio's feature distribution matters), e.g. real audio kept apart from the
            evaluation clips when the evaluation set is too small to spare 200 clips. A folder
            without ``meta.csv`` is a plain folder of the user's own recordings: every audio file in
            it (recursively; :func:`asc_edge.features.splits.load_folder_split`) calibrates, and
            ``calib_split`` must be left out.
        test_split: the split for accuracy and the host check (``"all"`` = every clip of meta.csv).
        n_calibration: calibration clips (≥ 200, issue 3).
        n_check: clips for the host-C vs tflite-micro check (≥ 200 by default).
        debug_clips: clips also compared layer by layer (every intermediate tensor).
        allow_over_budget: export a model over the DCASE budget (with a loud warning).
        calibration: activation ranges of the int8 model: ``mse`` (default: the best of the three in
            ``benchmarks/results/int8_calibration.md``, mean int8 − float −0.16 points over 22 models vs
            −3.04 for min/max), ``minmax`` (TFLite's) or ``percentile``
            (:mod:`asc_edge.export.calibration`); ``percentile``: its percentile in %.
        qat_epochs, qat_lr: quantisation-aware fine-tuning of the weights before the conversion
            (:mod:`asc_edge.export.qat`; self-distillation on the calibration split's clips, labels
            unused); 0 skips it. The checkpoint itself is not changed.
        adaptive_rounding: round each int8 weight up or down by its layer's output error instead of
            to nearest (:func:`asc_edge.export.qat.adaptive_round`, AdaRound's objective, on the
            calibration split's clips; after QAT when both are given). ``asc-edge export`` turns it
            on by default (``--no-adaptive-rounding`` off): the best remedy measured on the ten
            SNTL-NTU students (``int8_calibration.md``: int8 vs float top-1 agreement mean 0.958,
            worst 0.911, vs 0.926 / 0.772 for the mse ranges alone); library callers opt in, as
            for the quality gate (the tests export random-weight models by the dozen).
        bias_correction: empirical bias correction of the int8 weight rounding before the
            conversion (:func:`asc_edge.export.qat.bias_correct`, on the calibration split's clips;
            after QAT when both are given).
        gate, gate_agreement, gate_cosine, gate_cosine_worst5: the int8 quality gate (targets tflite
            and cmsis-nn): lower bounds of int8 vs float top-1 agreement (0..1), mean logit cosine and
            mean logit cosine of the worst 5 % of clips, on the held-out test clips
            (:func:`asc_edge.export.quality.int8_float_agreement`). The values are always measured
            and recorded in ``report["quality_gate"]``; with ``gate=True`` (``asc-edge export``'s
            default, ``--no-gate`` turns it off) a failed bound raises ExportError before anything
            reaches ``out_dir``. Library callers opt in: the tests and benchmarks export random-weight
            models (bit-exactness checks) and known-lossy int8 models on purpose.
        precision: ``"int8"`` (default: ONNX → int8 TFLite → int8 C) or ``"fp16"`` (KT 2024's fp16
            submission: ONNX → C with the weights stored as IEEE half and float32 kernels,
            :mod:`asc_edge.export.fp16`; no TFLite, no calibration; target ``cmsis-nn``; the budget
            counts 2 bytes a parameter). The quality gate then compares the host build of the fp16
            C with the float model on every test clip.
        optimize: the int8 C model's goal (``export --optimize``, as X-CUBE-AI offers): ``"speed"``
            (default: the kernels' per-layer tables also stored in flash: filters pre-widened to
            int16, requantisation records, depthwise tables; :mod:`asc_edge.codegen.speed_tables`) or
            ``"size"`` (every weight stored once, int8, widened at run time; the C frontend's compact
            tables and its own radix-4 FFT instead of CMSIS-DSP's; the firmware built with ``-Os``).
            The model's arithmetic is bit-identical; the compact frontend's float rounding differs from
            CMSIS-DSP's, so a rare int8 input element may differ by one step between the two builds
            (each build is bit-exact against its own host reference); ``benchmarks/results/device_bench.md``
            measures both (the same accuracy on the 232 test clips).
        log: a ``print``-like callable for progress lines.
        progress: progress bars while features are computed (a cold cache takes minutes for split100).

    Raises:
        BudgetError: over budget and not allowed. CheckpointError: unreadable checkpoint.
        DataError: bad dataset. ExportError: any failed stage or check (ONNX parity, a non
            full-integer TFLite, an unsupported operator, host C ≠ tflite-micro, a failed quality
            gate), or bad args.
    """
    from asc_edge.checkpoint import load_checkpoint, predict_logits
    from asc_edge.complexity import check_budget, measure
    from asc_edge.report.io import write_json_atomic
    from asc_edge.report.model_card import git_commit, write_model_card

    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}", hint=f"use one of {', '.join(TARGETS)}")
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and (target != "cmsis-nn" or qat_epochs or bias_correction or adaptive_rounding):
        raise ExportError(f"--precision fp16 with --target {target}" + (" and --qat-epochs" if qat_epochs else "")
                          + (" and --adaptive-rounding" if adaptive_rounding else "")
                          + (" and --bias-correction" if bias_correction else ""),
                          hint="fp16 exports the C model directly from ONNX: use --target cmsis-nn, no --qat-epochs, "
                               "--adaptive-rounding or --bias-correction (int8 remedies)")
    from asc_edge.codegen.emit_c import OPTIMIZE

    if optimize not in OPTIMIZE or (optimize != "speed" and precision != "int8"):
        raise ExportError(f"--optimize {optimize} with --precision {precision}",
                          hint=f"use --optimize {' or '.join(OPTIMIZE)} (size applies to int8 builds)")
    from .calibration import METHODS

    if calibration not in METHODS:
        raise ExportError(f"unknown calibration method {calibration!r}", hint=f"use one of {', '.join(METHODS)}")
    if n_calibration < 200:
        raise ExportError(f"n_calibration={n_calibration}", hint="issue 3 requires ≥ 200 calibration clips")
    thresholds = {"agreement": gate_agreement, "cosine": gate_cosine, "cosine_worst5": gate_cosine_worst5}
    for name, value in thresholds.items():
        lo = 0.0 if name == "agreement" else -1.0
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not lo <= value <= 1.0:
            raise ExportError(f"quality gate threshold {GATE_FLAGS[name]} {value} is outside [{lo:g}, 1]",
                              hint=f"pass {GATE_FLAGS[name]} in [{lo:g}, 1], or --no-gate")
    t_all = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    lm = load_checkpoint(ckpt_or_run_dir)
    run_name = lm.path.parent.name if lm.path.name == "model.ckpt" else lm.path.stem
    out_dir = Path(out_dir) if out_dir else REPO_ROOT / "export" / run_name
    fe = lm.frontend
    cx = measure(lm.model, n_mels=fe.n_mels, frames=fe.n_frames)
    check_budget(cx, precision, allow_over_budget=allow_over_budget, what=f"{lm.model_name} ({lm.path})")
    stage("load_checkpoint", t0)

    t0 = time.perf_counter()
    from asc_edge.features import load_split_data

    hp = lm.hparams
    data = _resolve_data(data, hp)
    tr = hp.get("train") if isinstance(hp.get("train"), dict) else {}
    explicit_split = split is not None
    split = split or tr.get("split") or "100"
    if precision == "fp16":  # fp16 calibrates nothing: no training-split features are read
        train, split = None, None
    elif calib_data is not None and not (Path(calib_data) / "meta.csv").is_file():
        # a plain folder of the user's own recordings (no TAU layout): every audio file, labels not needed
        if calib_split is not None:
            raise ExportError(f"--calib-split {calib_split}: {calib_data} has no meta.csv, so it has no splits",
                              hint="leave --calib-split out to calibrate on every audio file in the folder")
        from asc_edge.features.splits import load_folder_split

        split = "all audio files"
        train = load_folder_split(calib_data, fe, cache_dir=cache_dir, progress=progress, what="calibration folder")
        calib_note = f"calibrating on the {len(train.features)} audio files in {calib_data} (a folder, no labels)"
    elif calib_data is not None:
        split = calib_split or "100"
        train = load_split_data(calib_data, split, fe, labels=None, cache_dir=cache_dir, progress=progress)
        calib_note = f"calibrating on {calib_data} split {split} ({len(train.features)} clips; labels not used)"
    else:
        train = load_split_data(data, split, fe, labels=lm.labels, cache_dir=cache_dir, progress=progress,
                                splits_dir=tr.get("splits_dir"))
        if len(train.features) < n_calibration and not explicit_split and split.removeprefix("split") != "100":
            # A small-split student (split5 has ~5 % of the clips): calibrate on the full training set,
            # split100, which contains its split and never a test clip.
            log(f"split {split} has {len(train.features)} clips (< {n_calibration}): calibrating on split100")
            split = "100"
            train = load_split_data(data, split, fe, labels=lm.labels, cache_dir=cache_dir, progress=progress,
                                    splits_dir=tr.get("splits_dir"))
    test = load_split_data(data, test_split, fe, labels=lm.labels, cache_dir=cache_dir, progress=progress,
                           splits_dir=tr.get("splits_dir") if test_split != "all" else None)
    if train is not None and len(train.features) < n_calibration:
        source = f"{calib_data} ({split})" if calib_data is not None else f"split {split}"
        raise ExportError(f"{source} has {len(train.features)} clips, {n_calibration} needed for calibration",
                          hint=f"calibrate on at least {n_calibration} clips: a larger split, or more audio "
                               "in --calib-data")
    if calib_data is not None and train is not None:
        log(calib_note)
    calib_idx = _spread(len(train.features), n_calibration) if train is not None else np.zeros(0, np.int64)
    calib = train.features[calib_idx] if train is not None else test.features[:0]
    stage("features", t0)
    log(f"model {lm.model_name}: {cx.params:,} params, {cx.macs:,} MACs; data {data} ("
        + (f"train split {split}: {len(train.features)} clips, " if train is not None else "")
        + f"test: {len(test.features)} clips)")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    report: dict = {"checkpoint": str(lm.path), "checkpoint_sha256": file_sha256(lm.path), "model": lm.model_name,
                    "labels": list(lm.labels), "frontend": fe.to_dict(), "target": target, "precision": precision,
                    "optimize": optimize, "training_recipe": lm.hparams.get("train"),
                    "complexity": cx.to_dict(),
                    "data": {"root": str(data), "test_split": test_split,
                             "calibration_root": str(calib_data or data) if train is not None else None,
                             "calibration_split": split,
                             "n_calibration": int(len(calib)),
                             "n_test": int(len(test.features))}}
    try:
        model = lm.model
        if qat_epochs:
            from .qat import qat_finetune

            t0 = time.perf_counter()
            model, report["qat"] = qat_finetune(lm.model, train.features, epochs=qat_epochs, lr=qat_lr, log=log)
            stage("qat", t0)
        if adaptive_rounding:
            from .qat import adaptive_round

            t0 = time.perf_counter()
            model, report["adaptive_rounding"] = adaptive_round(model, train.features)
            stage("adaptive_rounding", t0)
            ar = report["adaptive_rounding"]
            log(f"adaptive rounding of the int8 weights: {ar['changed_fraction']:.1%} of them rounded away from "
                f"nearest, layer output MSE {ar['output_mse_nearest']:.3g} -> {ar['output_mse_adaptive']:.3g} "
                f"on {ar['n_clips']} clips")
        if bias_correction:
            from .qat import bias_correct

            t0 = time.perf_counter()
            model, report["bias_correction"] = bias_correct(model, train.features)
            stage("bias_correction", t0)
            log(f"bias correction of the int8 weight rounding: {report['bias_correction']['n_layers']} layers, "
                f"mean |shift| {report['bias_correction']['mean_abs_shift']:.3g} on {len(train.features)} clips")
        # ---- ONNX
        from .onnx import export_onnx

        t0 = time.perf_counter()
        in_shape = (1, *test.features.shape[1:])
        onnx_rep = export_onnx(model, tmp / "model.onnx", input_shape=in_shape,
                               check_features=test.features[:min(50, len(test.features))])
        report["onnx"] = {k: v for k, v in onnx_rep.items() if k != "path"}
        stage("onnx", t0)
        par = onnx_rep["parity"]
        log(f"ONNX parity: max |onnxruntime - PyTorch| = {par['max_abs_logit_diff']:.3g} on {par['n_clips']} "
            f"real clips (tol {par.get('tol', 1e-4):g}), exporter {onnx_rep.get('exporter')}, opset {onnx_rep.get('opset')}")

        if precision == "fp16":
            from .fp16 import export_fp16_c

            t0 = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix="asc_export_fp16_"))
            try:
                c_rep, report["c_frontend"], hlog = export_fp16_c(tmp / "model.onnx", tmp / "c", fe, test.features,
                                                                  n_check, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            report["c_model"] = c_rep
            stage("fp16_c", t0)
            import torch

            with torch.no_grad():
                flog = predict_logits(lm.model, test.features).numpy()
            y = test.targets
            acc = {"float_accuracy": float((flog.argmax(1) == y).mean()),
                   "fp16_accuracy": float((hlog.argmax(1) == y).mean()),
                   "top1_agreement": float((flog.argmax(1) == hlog.argmax(1)).mean()), "n_clips": int(len(y)),
                   "fp16_from": "host build of the generated fp16 C"}
            report["accuracy"] = acc
            chk = c_rep["onnxruntime_check"]
            log(f"fp16 C: {c_rep['fp16_constants']:,} fp16 constants ({c_rep['fp16_bytes']:,} B), arena "
                f"{c_rep['arena']['arena_bytes']:,} B; host C vs ONNX Runtime (fp16 weights) on {chk['n_clips']} clips: "
                f"max |diff| {chk['max_abs_logit_diff']:.3g} (relative {chk['max_rel_logit_diff']:.3g} <= "
                f"{chk['tol_rel']:g})")
            log(f"fp16 vs float on the test split ({len(y)} clips): float {acc['float_accuracy']:.4f}, fp16 "
                f"{acc['fp16_accuracy']:.4f}, top-1 agreement {acc['top1_agreement']:.4f}")
            report["quality_gate"] = _quality_gate(flog, hlog, np.ones(len(y), bool), gate, thresholds,
                                                   f"{test_split} split (fp16 needs no calibration clips)",
                                                   "host build of the generated fp16 C", "fp16", log)

        if target in ("tflite", "cmsis-nn") and precision == "int8":
            from .oracle import TflmOracle
            from .tflite import convert_int8_tflite

            t0 = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix="asc_export_work_"))  # onnx2tf scratch (SavedModel, variants)
            try:
                tfl = convert_int8_tflite(tmp / "model.onnx", calib, tmp / "model_int8.tflite", work,
                                          calibration=calibration, percentile=percentile)
            finally:
                if (work / "onnx2tf.log").is_file():
                    shutil.copyfile(work / "onnx2tf.log", tmp / "onnx2tf.log")
                shutil.rmtree(work, ignore_errors=True)
            tfl["converter"]["log"] = "onnx2tf.log"
            report["tflite"] = {k: v for k, v in tfl.items() if k not in ("ops", "path")}
            stage("tflite_convert", t0)

            t0 = time.perf_counter()
            import torch

            oracle = TflmOracle(tmp / "model_int8.tflite")
            with torch.no_grad():
                flog = predict_logits(lm.model, test.features).numpy()
            qlog, qdeq = oracle.predict(test.features)
            y = test.targets
            fpred, qpred = flog.argmax(1), qlog.astype(np.int32).argmax(1)
            acc = {"float_accuracy": float((fpred == y).mean()), "int8_accuracy": float((qpred == y).mean()),
                   "top1_agreement": float((fpred == qpred).mean()), "n_clips": int(len(y)),
                   "int8_from": "tflite-micro (reference kernels)"}
            if model is not lm.model:  # the float model that was converted (after QAT / rounding / bias correction)
                with torch.no_grad():
                    acc["float_accuracy_after_qat"] = float((predict_logits(model, test.features).numpy().argmax(1)
                                                             == y).mean())
            report["accuracy"] = acc
            stage("int8_accuracy", t0)
            after = f" (with the remedied weights {acc['float_accuracy_after_qat']:.4f})" if "float_accuracy_after_qat" in acc \
                else ""
            log(f"int8 vs float on the test split ({len(y)} clips): float {acc['float_accuracy']:.4f}{after}, "
                f"int8 {acc['int8_accuracy']:.4f}, top-1 agreement {acc['top1_agreement']:.4f} "
                f"({tfl['n_ops']} tflite ops: {tfl['op_counts']})")

            # ---- quality gate: the arrays above, on the test clips the int8 model never saw
            remedied = bool(qat_epochs or bias_correction or adaptive_rounding)
            used = train.clips if remedied else [train.clips[i] for i in calib_idx]
            seen = {Path(c.path).resolve() for c in used}
            held = np.array([Path(c.path).resolve() not in seen for c in test.clips], dtype=bool)
            excluded = "calibration split (weight remedies)" if remedied else "calibration"
            report["quality_gate"] = _quality_gate(
                flog, qdeq, held, gate, thresholds, f"{test_split} split minus its {excluded} clips "
                f"({int((~held).sum())} excluded)", "tflite-micro (reference kernels), dequantised", "int8", log)

        if target == "cmsis-nn" and precision == "int8":
            from asc_edge.codegen.host_model import HOST_MODEL_CFLAGS, HostModel, build_host_model, compare_with_oracle
            from asc_edge.codegen.planner import PRE_SCRATCH_ID, plan_arena

            t0 = time.perf_counter()
            graph, plan, emitted, fe_tables = _emit_device_c(tmp, fe, optimize)
            layer_plan = plan_arena(graph)  # unfused, input outside: the layer-by-layer reference
            stage("codegen", t0)
            t0 = time.perf_counter()
            lib = build_host_model(tmp / "c", build_dir=tmp / ".host_build")  # fresh build, timed
            host = HostModel(lib, graph, plan.arena)
            stage("host_build", t0)

            t0 = time.perf_counter()
            pool = test.features
            n_from_test = min(len(pool), n_check)
            if len(pool) < n_check:
                pool = np.concatenate([pool, train.features[:n_check - len(pool)]])
            cmp = compare_with_oracle(oracle, host, pool, n_check, debug_layers=debug_clips)
            stage("host_check", t0)
            if not cmp["all_equal"] or cmp["first_mismatch"] is not None:
                raise ExportError(f"host C differs from tflite-micro on {cmp['n_clips'] - cmp['n_equal']}/"
                                  f"{cmp['n_clips']} clips; first diverging: {cmp['first_mismatch']}",
                                  hint="a kernel or code generator bug; see the layer named above")
            t0 = time.perf_counter()
            tflm = oracle.arena_usage()
            stage("tflm_arena", t0)
            in_bytes = graph.tensors[graph.input].size
            arena = {**plan.to_dict(), "input_bytes": in_bytes,
                     "layer_by_layer": {**layer_plan.to_dict(), "plus_input_bytes": layer_plan.arena + in_bytes},
                     "tflm_arena_total_bytes": tflm["total"], "tflm_arena_head_bytes": tflm["head"],
                     "tflm_arena_tail_bytes": tflm["tail"]}
            report["c_frontend"] = {k: v for k, v in fe_tables.items() if k not in ("config_h", "tables_c")}
            report["c_model"] = {"files": {"model.h": emitted["model.h"], "model.c": emitted["model.c"]},
                                 "bytes": emitted["bytes"], "n_layers": len(graph.layers),
                                 "rewrites": graph.rewrites, "arena": arena,
                                 "layers": [{"index": L.index, "kind": L.kind, "op": L.op, "tflite_ops": L.op_indices,
                                             "output_shape": graph.tensors[L.output].shape,
                                             "offset": plan.offsets.get(L.output)} for L in graph.layers],
                                 "host_check": cmp, "host_cflags": " ".join(HOST_MODEL_CFLAGS)}
            n_fused = sum(not isinstance(st, int) for st in plan.steps)
            pk = plan.peak()
            names = [graph.tensors[b["id"]].name if b["id"] >= 0 else ("frontend work" if b["id"] == PRE_SCRATCH_ID
                                                                      else "scratch") for b in pk["buffers"][:2]]
            log(f"memory peak at step {pk['step']} (layers {pk['layers']}): {pk['live_bytes']:,} B live, largest "
                + ", ".join(f"{n} {b['bytes']:,} B" for n, b in zip(names, pk["buffers"])))
            log(f"arena plan: {plan.arena:,} B incl. the {in_bytes:,}-B input ({n_fused} inverted-residual blocks "
                f"fused row by row; lower bound of this schedule {plan.lower_bound:,} B) vs layer by layer "
                f"{layer_plan.arena + in_bytes:,} B (lower bound {layer_plan.lower_bound + in_bytes:,} B) vs "
                f"naive {layer_plan.naive + in_bytes:,} B vs tflite-micro {tflm['total']:,} B")
            src = f"{test_split} clips" if n_from_test == cmp["n_clips"] else \
                f"clips: {n_from_test} {test_split} + {cmp['n_clips'] - n_from_test} calibration"
            log(f"host C == tflite-micro on {cmp['n_equal']}/{cmp['n_clips']} {src} "
                f"(every output byte; {cmp['layer_outputs_compared']} intermediate layer outputs on "
                f"{cmp['layers_checked_clips']} clips identical)")

        gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
        import torch

        # torch's CPU kernel level (e.g. AVX512): the same code and pinned tools gave int8 models that differ
        # by a clip's worth of accuracy on two machines (session 12's tau_checkpoints rerun); recorded so
        # exports can be traced to the CPU their adaptive rounding ran on
        report["versions"] = {"python": platform.python_version(), "gcc": gcc[0] if gcc else None,
                              **{d: _version(d) for d in ("torch", "onnx", "onnxruntime", "onnx2tf", "tensorflow",
                                                          "tflite-micro", "numpy")},
                              "torch CPU kernels": torch.backends.cpu.get_cpu_capability()}
        shutil.rmtree(tmp / ".host_build", ignore_errors=True)  # the loaded .so stays mapped (POSIX)
        report["git_commit"] = git_commit()
        report["hashes"] = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*"))
                            if p.is_file()}
        write_model_card(tmp / "model_card.md", report)  # not hashed: `bench` writes the device version beside it
        timings["total"] = round(time.perf_counter() - t_all, 3)
        report["timings_s"] = timings
        write_json_atomic(tmp / "report.json", report)
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old{os.getpid()}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report["out_dir"] = str(out_dir)
    log(f"wrote {out_dir} in {timings['total']:.1f} s")
    return report


def _emit_device_c(export_dir: Path, fe, optimize: str):
    """``export_dir/model_int8.tflite`` → graph, device plan (the frontend's work area of ``fe``
    inside the arena), ``c/model.{h,c}`` for ``optimize``, the C frontend's tables for the model's
    input quantisation (``optimize == "size"``: the compact tables,
    :func:`asc_edge.device.frontend_c.emit_frontend_tables`) and ``graph.json`` (what `bench` reads).
    Returns ``(graph, plan, emit_model's record, emit_frontend_tables' record)``."""
    from asc_edge.codegen.emit_c import emit_model
    from asc_edge.codegen.graph import build_graph
    from asc_edge.codegen.planner import plan_for_device
    from asc_edge.codegen.record import graph_record
    from asc_edge.device.frontend_c import emit_frontend_tables, work_bytes
    from asc_edge.report.io import write_json_atomic

    graph = build_graph(export_dir / "model_int8.tflite")
    plan = plan_for_device(graph, pre_scratch=work_bytes(fe))
    emitted = emit_model(graph, plan, export_dir / "c", optimize=optimize)
    t_in = graph.tensors[graph.input]
    fe_tables = emit_frontend_tables(fe, t_in.scale, t_in.zero_point, export_dir / "c", compact=optimize == "size")
    write_json_atomic(export_dir / "graph.json", graph_record(graph, plan))
    return graph, plan, emitted, fe_tables


def reemit_c(export_dir, out_dir, *, optimize: str = "size") -> dict:
    """Copy an int8 ``cmsis-nn`` export to ``out_dir`` with its C model generated again from the
    same ``model_int8.tflite`` for another ``optimize`` goal (see :func:`export_model`), without a
    new conversion: ``c/model.{c,h}``, the C frontend's tables (compact for ``size``), ``graph.json``,
    ``report.json`` (``optimize``, ``c_frontend`` and the file
    hashes) change; everything else is the original's. Written to a temporary folder, then renamed.
    Returns the new report.

    Raises:
        ExportError: not an int8 cmsis-nn export (no report.json / model_int8.tflite / c/), or an
            unknown ``optimize``.
    """
    import json

    from asc_edge.codegen.emit_c import OPTIMIZE
    from asc_edge.features.config import FrontendConfig
    from asc_edge.report.io import file_sha256, write_json_atomic
    from asc_edge.report.model_card import write_model_card

    src, out_dir = Path(export_dir), Path(out_dir)
    if optimize not in OPTIMIZE:
        raise ExportError(f"unknown optimisation goal {optimize!r}", hint=f"use one of {', '.join(OPTIMIZE)}")
    for f in ("report.json", "model_int8.tflite", "c/model.c"):
        if not (src / f).is_file():
            raise ExportError(f"{src / f} is missing: not an int8 cmsis-nn export",
                              hint="export with `asc-edge export RUN --target cmsis-nn`")
    tmp = out_dir.parent / f".{out_dir.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("bench", ".host_build"))
        rep = json.loads((tmp / "report.json").read_text())
        fe_tables = _emit_device_c(tmp, FrontendConfig.from_dict(rep["frontend"]), optimize)[3]
        rep["optimize"] = optimize
        if "c_frontend" in rep:
            rep["c_frontend"] = {k: v for k, v in fe_tables.items() if k not in ("config_h", "tables_c")}
        rep["hashes"] = {k: file_sha256(tmp / k) for k in rep.get("hashes", {}) if (tmp / k).is_file()}
        write_json_atomic(tmp / "report.json", rep)
        write_model_card(tmp / "model_card.md", rep)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rep
