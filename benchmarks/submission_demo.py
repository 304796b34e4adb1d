"""A DCASE 2024 Task 1 submission package from the bundled pack's real students, checked by the
validator's rules (issue 17 item 1).

The five SNTL-NTU 24-BCBL students (``../shared/models/sntl-ntu-dcase2024``, TAU22-trained, imported
with ``asc-edge import``) are packaged by :func:`asc_edge.submit.build_submission` with int8
predictions (tflite-micro, mse ranges, 200 calibration clips of ``../shared/data`` split100) on the
101 genuine TAU clips of ``../shared/data/tau_samples`` standing in for the evaluation set (their
names are not ``<index>.wav``, so they are numbered 0..100: ``filename_map.csv``), and the zip is
checked with :func:`asc_edge.submit.validate_package` at the folder's file count (101). The package
goes to ``benchmarks/runs/submission_demo/package/``. Per split, the accuracy of the package's int8
predictions (read back from the zip through the filename map) against the float PyTorch model's on the
same clips. Writes ``benchmarks/results/submission_demo.{json,md}``.

    .venv/bin/python benchmarks/submission_demo.py     # about 5 min on 2 cores cold, 1 min with cached conversions
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from asc_edge.checkpoint import load_checkpoint, predict_logits
from asc_edge.features.splits import load_folder_split
from asc_edge.models.cpjku import import_cpjku_checkpoint
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.submit import SPLITS, TAU_SCENES, build_submission, validate_package
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
LABEL = "Demo_ASCEdge_task1_1"


def main() -> None:
    t0 = time.perf_counter()
    work = HERE / "runs" / "submission_demo"
    tau = SHARED / "data" / "tau_samples"
    runs = []
    for s in SPLITS:
        ckpt = next((SHARED / "models" / "sntl-ntu-dcase2024").glob(f"24-BCBL_split{s}_*.ckpt"))
        runs.append(import_cpjku_checkpoint(ckpt, work / "runs" / f"split{s}", log=None).parent)
    meta = work / "partial_meta.yaml"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text("submission:\n  name: SNTL-NTU 24-BCBL students, int8 on Cortex-M4 (asc-edge demo)\n"
                    "  abbreviation: ASCEdge24\n  authors:\n  - lastname: Demo\n    firstname: Asc\n"
                    "    email: demo@example.org\n    affiliation: asc-edge\n    corresponding: true\n")
    rep = build_submission(runs, tau / "audio", LABEL, work / "package", meta_yaml=meta, n_eval_files=101,
                           calib_data=SHARED / "data", log=print)
    zpath = Path(rep["package"])
    errors = validate_package(zpath, 101)

    # ground truth through the filename map; float predictions on the same clips, same order
    truth = {Path(r["filename"]).name: r["scene_label"]
             for r in csv.DictReader((tau / "meta.csv").open(), delimiter="\t")}
    fmap = {r["filename"]: Path(r["source"]).name
            for r in csv.DictReader((work / "package" / "filename_map.csv").open(), delimiter="\t")}
    rows = []
    with zipfile.ZipFile(zpath) as z:
        for s, run in zip(SPLITS, runs):
            text = z.read(f"task1/{LABEL}/{LABEL}.output.split_{s}.csv").decode()
            out = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
            y = np.array([TAU_SCENES.index(truth[fmap[r["filename"]]]) for r in out])
            q = np.array([TAU_SCENES.index(r["scene_label"]) for r in out])
            lm = load_checkpoint(run)
            x = load_folder_split(tau / "audio", lm.frontend, what="evaluation folder").features
            order = [lm.labels.index(c) for c in TAU_SCENES]
            f = predict_logits(lm.model, x).numpy()[:, order].argmax(1)
            rows.append({"split": f"split{s}", "n_clips": int(len(y)), "float_accuracy": float((f == y).mean()),
                         "int8_accuracy": float((q == y).mean()), "int8_float_agreement": float((q == f).mean()),
                         "int8_model": rep["splits"][f"split{s}"]["from"]})
    wall = time.perf_counter() - t0
    res = {"benchmark": "submission_demo", "label": LABEL, "package": str(zpath.relative_to(HERE.parent)),
           "files": rep["files"], "extra_files": ["filename_map.csv", "submission.json"],
           "validator": {"errors": errors, "accepted": not errors, "n_eval_files": 101,
                         "rules": "asc_edge.submit.validate_package (official validator's rules re-implemented; "
                                  "the validator is not on PyPI)"},
           "meta_not_measured": rep["meta_not_measured"], "rows": rows, "wall_s": round(wall, 1)}
    write_json_atomic(HERE / "results" / "submission_demo.json", res)
    table = [{"split": r["split"], "clips": r["n_clips"], "float": f"{r['float_accuracy']:.3f}",
              "int8 (package)": f"{r['int8_accuracy']:.3f}", "int8 = float top-1": f"{r['int8_float_agreement']:.2f}"}
             for r in rows]
    md = "\n".join([
        "# DCASE 2024 Task 1 submission package from the bundled students", "",
        "Generated by `benchmarks/submission_demo.py`: `asc_edge.submit.build_submission` on the five SNTL-NTU "
        "24-BCBL students (imported), int8 predictions through tflite-micro (mse ranges, 200 calibration clips of "
        "`../shared/data` split100) for the 101 genuine TAU clips of `../shared/data/tau_samples` (numbered 0..100, "
        "`filename_map.csv`), standing in for the 2024 evaluation set (135,730 files).", "",
        f"Package: `{res['package']}`", "",
        *[f"- `{f}`" for f in rep["files"]], "",
        f"Validator's rules (`asc_edge.submit.validate_package`, unique-file count 101): "
        + ("**accepted, no errors**" if not errors else f"**{len(errors)} errors**: " + "; ".join(errors[:5])), "",
        "Accuracy on the 101 clips (plain top-1; int8 = the package's `scene_label` column):", "",
        markdown_table(table), "",
        f"Meta fields asc-edge does not measure, written as `.nan` for the user to fill in (`--meta-yaml`): "
        f"{len(rep['meta_not_measured'])} (development-set results of a TAU-trained run without metrics.json, "
        "energy). Wall time: " + f"{wall:.0f} s.", ""])
    write_text_atomic(HERE / "results" / "submission_demo.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
