"""Distillation schemes compared (issue 13): a CP-Mobile student on split5 / split25 / split100 of
``../shared/data`` trained with each scheme of the five reports, over several seeds.

Per split: the teacher ensemble (``asc-edge train-teachers --ensemble cpjku``: CP-ResNet + wide
CP-Mobile, trained on that split only, seed 0), then per seed the student with
  ce            cross-entropy only (no teacher)
  hinton        Hinton KD from the logit-averaged ensemble (CP-JKU convention)
  online        online KD (KT 2024): the ensemble's first member fine-tuned alongside the student
  rrs           relational then response KD (AI4EDGE 2023) from the ensemble
  focusnet      teacher-focused student (SNTL-NTU 2024) from the ensemble
  mean-teacher  ITMO 2024: a mean-teacher CP-Mobile (unlabelled = the train audio outside the split,
                labels unused; none at split100), then MSE KD from it into the student
Writes ``benchmarks/results/kd_methods.{json,md,png}``: test macro accuracy mean ± half-range over
the seeds, the teachers' accuracy, wall time. ``--reuse`` keeps run directories trained with the
identical config, so an interrupted run continues.

    .venv/bin/python benchmarks/kd_methods.py                                  # hours on 2 CPU cores
    .venv/bin/python benchmarks/kd_methods.py --splits 5 --seeds 0 --teacher-epochs 2 --student-epochs 2 \\
        --results /tmp/kdm                                                     # quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
METHODS = ("ce", "hinton", "online", "rrs", "focusnet", "mean-teacher")


def unlabelled_folder(data: str, split: str, dest: Path) -> Path:
    """A folder of symbolic links to the split100 clips that are not in ``split`` (labels unused)."""
    from asc_edge.data import load_split, open_dataset

    ds = open_dataset(data)
    inside = {c.filename for c in load_split(ds, split, None)}
    dest.mkdir(parents=True, exist_ok=True)
    for c in load_split(ds, "100", None):
        if c.filename not in inside:
            link = dest / c.filename.replace("/", "__")
            if not link.exists():
                link.symlink_to(Path(c.path).resolve())
    return dest


def student_config(method: str, split: str, seed: int, teachers: list[str], args, tmp: Path):
    """(stage-1 config or None, the student's config) of ``method``."""
    from asc_edge.train import TrainConfig

    common = dict(data=args.data, split=split, model="cp-mobile", epochs=args.student_epochs, seed=seed,
                  out=args.out, progress=False, val_every=args.student_epochs)
    name = f"kdm_cp-mobile_split{split}_{method}_seed{seed}"
    if method == "ce":
        return None, TrainConfig(name=name, **common)
    if method in ("hinton", "rrs", "focusnet"):
        return None, TrainConfig(name=name, teachers=teachers, kd_scheme=method, **common)
    if method == "online":
        return None, TrainConfig(name=name, teachers=teachers[:1], kd_scheme="online", **common)
    # mean-teacher: stage 1 on labelled + unlabelled audio, then MSE KD (λ 0.5) from its EMA model
    unl = unlabelled_folder(args.data, split, tmp / f"unlabelled_split{split}")
    stage1 = TrainConfig(name=f"{name}_stage1", kd_scheme="mean-teacher",
                         unlabelled=str(unl) if any(unl.iterdir()) else None, **common)
    stage2 = TrainConfig(name=name, teachers=[str(Path(args.out) / stage1.run_name() / "model.ckpt")],
                         kd_scheme="mse", kd_lambda=0.5, **common)
    return stage1, stage2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--splits", nargs="+", default=["5", "25", "100"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--ensemble", default="cpjku")
    ap.add_argument("--teacher-epochs", type=int, default=40)
    ap.add_argument("--student-epochs", type=int, default=100)
    ap.add_argument("--out", default=str(HERE / "runs"))
    ap.add_argument("--results", default=str(HERE / "results" / "kd_methods"))
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from asc_edge.train.run import train_or_reuse
    from asc_edge.train.teachers import train_teachers

    rows, teachers_acc = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for split in args.splits:
            t = train_teachers(args.ensemble, args.data, split, epochs=args.teacher_epochs, out=Path(args.out) / "teachers",
                               seed=0, reuse=args.reuse, progress=False)
            teachers = [m["checkpoint"] for m in t["members"]]
            teachers_acc[f"split{split}"] = {"ensemble": t["ensemble_test_macro_accuracy"],
                                             **{m["member"]: m["test_macro_accuracy"] for m in t["members"]}}
            for method in args.methods:
                accs, wall = [], 0.0
                for seed in args.seeds:
                    stage1, cfg = student_config(method, split, seed, teachers, args, Path(tmp))
                    for c in (stage1, cfg):
                        if c is None:
                            continue
                        run = train_or_reuse(c, args.reuse)
                        wall += json.loads((run / "report.json").read_text())["wall_time_s"]
                    accs.append(json.loads((run / "metrics.json").read_text())["macro_accuracy"])
                rows.append({"split": f"split{split}", "method": method, "macro_accuracy_mean": float(np.mean(accs)),
                             "half_range": float((max(accs) - min(accs)) / 2), "per_seed": accs,
                             "teacher_ensemble": t["ensemble_test_macro_accuracy"], "wall_time_s": round(wall, 1)})
                print(f"split{split} {method}: {np.mean(accs):.3f} ± {(max(accs) - min(accs)) / 2:.3f}", flush=True)
                _write(rows, teachers_acc, args)


def _write(rows, teachers_acc, args) -> None:
    result = {"benchmark": "kd_methods", "data": args.data, "seeds": args.seeds, "ensemble": args.ensemble,
              "teacher_epochs": args.teacher_epochs, "student_epochs": args.student_epochs,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              "teachers": teachers_acc, "rows": rows}
    write_json_atomic(Path(args.results + ".json"), result)
    table = markdown_table([{**r, "macro accuracy": f"{r['macro_accuracy_mean']:.3f} ± {r['half_range']:.3f}",
                             "teacher ensemble": f"{r['teacher_ensemble']:.3f}"} for r in rows],
                           ["split", "method", "macro accuracy", "teacher ensemble", "wall_time_s"])
    write_text_atomic(Path(args.results + ".md"),
                      f"# Distillation schemes (CP-Mobile student, {args.ensemble} teacher ensemble)\n\n"
                      f"Test split of `{args.data}`, seeds {args.seeds} (mean ± half the range), teachers "
                      f"{args.teacher_epochs} / students {args.student_epochs} epochs, {os.cpu_count()} CPU "
                      f"cores. Generated by `benchmarks/kd_methods.py`.\n\n{table}\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [(int(r["split"].removeprefix("split")), r["macro_accuracy_mean"], r["half_range"])
               for r in rows if r["method"] == method]
        x, y, e = zip(*sorted(pts))
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("train split (% of the training set)")
    ax.set_ylabel("test macro accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(args.results + ".png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
