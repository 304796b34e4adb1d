"""Distillation schemes compared (issue 13): a CP-Mobile student on split5 / split25 / split100 of
``../shared/data`` trained with each scheme of the five reports, over several seeds.

Per split: the teacher ensemble (``asc-edge train-teachers --ensemble sntl --frontend dcase2024``:
three 32-BCBL CP-Mobiles trained with Freq-MixStyle only, DIR only and both — SNTL-NTU 2024's CNN
teachers — on the student's own log-mel preset, so that one of them can also be the online teacher;
trained on that split only, seed 0, ``--teacher-epochs``), then per seed the student with
  ce            cross-entropy only (no teacher)
  hinton        Hinton KD from the logit-averaged ensemble (CP-JKU weighting λ = 0.02, KL averaged
                over classes as the CP-JKU code does: the default)
  hinton-batch  the same with the KL averaged per example only (batchmean: 10× the teacher weight)
  online        online KD (KT 2024): the ensemble's first member fine-tuned alongside the student
  rrs           relational then response KD (AI4EDGE 2023) from the ensemble
  focusnet      teacher-focused student (SNTL-NTU 2024) from the ensemble
  mean-teacher  ITMO 2024: a mean-teacher CP-Mobile (unlabelled = the train audio outside the split,
                labels unused; none at split100), then MSE KD (λ 0.5) from it into the student
Students train without DIR augmentation (``--student-dir-p``, default 0): every clip of the pack is
from device a, so simulated devices only cost time; the teachers keep the ensemble's own recipe.
Small splits get smaller batches, teachers and students alike (split5: 16, split25: 32, else 64),
and every split the same number of optimiser steps (``--student-steps``, ``--teacher-steps``; the
epochs follow from the split's size), so that split5 is not trained for a handful of steps.
Temperature τ = 1 for every scheme (``--kd-tau``) instead of CP-JKU's 2: these CPU-trained,
mixup-trained CNN teachers are already soft. One-off measurements (session of 2026-12-07, not
kept in a results file): on split5's train clips a 40-epoch ensemble's mean top probability was
0.49 at τ = 1 and 0.27 at τ = 2, and a split5 trial (20 epochs, 2 seeds) gave the λ = 0.02 KD
student 0.400 at τ = 1 and 0.289 at τ = 2 against 0.379 without KD. Runs go ``--jobs`` at a
time, each on ``--threads`` CPU threads.

Writes ``benchmarks/results/kd_methods.{json,md,png}``: test macro accuracy mean ± half-range over
the seeds, the teachers' accuracy, wall time. ``--reuse`` keeps run directories trained with the
identical config, so an interrupted run continues.

    .venv/bin/python benchmarks/kd_methods.py                                  # 97 min on 2 CPU cores
    .venv/bin/python benchmarks/kd_methods.py --splits 5 --seeds 0 --teacher-steps 8 --student-steps 8 \\
        --results /tmp/kdm                                                     # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import logging
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent
log = logging.getLogger("kd_methods")
METHODS = ("ce", "hinton", "hinton-batch", "online", "rrs", "focusnet", "mean-teacher")
#: batch size per split: at least 4 optimiser steps per epoch on the pack's 64 / 250 / 911 train clips
BATCH_SIZE = {"5": 16, "10": 16, "25": 32}


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


def batch_size(split: str) -> int:
    return BATCH_SIZE.get(split, 64)


def epochs_for(steps: int, n_clips: int, split: str) -> int:
    """Epochs that give at least ``steps`` optimiser steps on ``n_clips`` at the split's batch size."""
    return max(1, math.ceil(steps / math.ceil(n_clips / batch_size(split))))


def student_configs(method: str, split: str, seed: int, teachers: list[str], epochs: int, args) -> list:
    """The TrainConfigs of one student of ``method``, in training order (mean-teacher: two stages)."""
    from asc_edge.augment import AugmentConfig
    from asc_edge.train import TrainConfig

    common = dict(data=args.data, split=split, model="cp-mobile", epochs=epochs, seed=seed, out=args.out,
                  progress=False, val_every=epochs, batch_size=batch_size(split), kd_tau=args.kd_tau,
                  augment=AugmentConfig(dir_p=args.student_dir_p))
    name = f"kdm_cp-mobile_split{split}_{method}_seed{seed}"
    if method == "ce":
        return [TrainConfig(name=name, **common)]
    if method in ("hinton", "rrs", "focusnet"):
        return [TrainConfig(name=name, teachers=teachers, kd_scheme=method, **common)]
    if method == "hinton-batch":
        return [TrainConfig(name=name, teachers=teachers, kd_scheme="hinton", kd_kl_average="batch", **common)]
    if method == "online":
        return [TrainConfig(name=name, teachers=teachers[:1], kd_scheme="online", **common)]
    # mean-teacher: stage 1 on labelled + unlabelled audio, then MSE KD (λ 0.5) from its EMA model
    # under --out, not a temporary folder: the path is part of the stage-1 config that --reuse compares
    unl = unlabelled_folder(args.data, split, Path(args.out) / f"unlabelled_split{split}")
    stage1 = TrainConfig(name=f"{name}_stage1", kd_scheme="mean-teacher",
                         unlabelled=str(unl) if any(unl.iterdir()) else None, **common)
    stage2 = TrainConfig(name=name, teachers=[str(Path(args.out) / stage1.run_name() / "model.ckpt")],
                         kd_scheme="mse", kd_lambda=0.5, **common)
    return [stage1, stage2]


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def _train_chain(configs: list[dict], reuse: bool) -> list[str]:
    """Train (or reuse) each config in order, in a worker process; returns the run directories."""
    from asc_edge.train import TrainConfig
    from asc_edge.train.run import train_or_reuse

    return [str(train_or_reuse(TrainConfig.from_dict(c), reuse)) for c in configs]


def _run_all(chains: list[list], args) -> list[list[str]]:
    """Run every chain of TrainConfigs, ``args.jobs`` chains at a time (spawned workers)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_init_worker, initargs=(args.threads,)) as pool:
        futures = [pool.submit(_train_chain, [c.to_dict() for c in chain], args.reuse) for chain in chains]
        return [f.result() for f in futures]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--splits", nargs="+", default=["5", "25", "100"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--ensemble", default="sntl")
    ap.add_argument("--teacher-frontend", default="dcase2024", help="one preset for all members (the student's)")
    ap.add_argument("--teacher-steps", type=int, default=400, help="optimiser steps of each teacher member")
    ap.add_argument("--student-steps", type=int, default=200, help="optimiser steps of each student")
    ap.add_argument("--kd-tau", type=float, default=1.0)
    ap.add_argument("--student-dir-p", type=float, default=0.0)
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at the same time")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    ap.add_argument("--out", default=str(HERE / "runs"))
    ap.add_argument("--results", default=str(HERE / "results" / "kd_methods"))
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from asc_edge.features import get_frontend, load_split_data
    from asc_edge.train.teachers import member_configs, train_teachers

    t0 = time.time()
    fe = get_frontend(args.teacher_frontend)
    n_train = {split: len(load_split_data(args.data, split, fe, progress=False).features) for split in args.splits}
    load_split_data(args.data, "test", fe, progress=False)  # the feature cache filled before the workers read it
    t_epochs = {split: epochs_for(args.teacher_steps, n, split) for split, n in n_train.items()}
    s_epochs = {split: epochs_for(args.student_steps, n, split) for split, n in n_train.items()}
    args.epochs = {"teachers": t_epochs, "students": s_epochs, "train_clips": n_train}
    log.info("epochs per split: %s", args.epochs)

    def teacher_kw(split: str) -> dict:
        return dict(epochs=t_epochs[split], out=Path(args.out) / "teachers", seed=0, frontend=args.teacher_frontend,
                    progress=False, batch_size=batch_size(split))

    largest_first = sorted(args.splits, key=lambda s: -n_train[s])  # the longest runs start first
    member_chains = [[cfg] for split in largest_first
                     for _, cfg in member_configs(args.ensemble, args.data, split, **teacher_kw(split))]
    _run_all(member_chains, args)
    ensembles = {split: train_teachers(args.ensemble, args.data, split, reuse=True, **teacher_kw(split))
                 for split in args.splits}  # every member reused: writes the ensemble's accuracy
    teacher_wall = {split: sum(json.loads((Path(m["run_dir"]) / "report.json").read_text())["wall_time_s"]
                               for m in t["members"]) for split, t in ensembles.items()}
    plan = [(split, method, seed, student_configs(method, split, seed,
                                                   [m["checkpoint"] for m in ensembles[split]["members"]],
                                                   s_epochs[split], args))
            for split in largest_first for method in args.methods for seed in args.seeds]
    runs = _run_all([chain for *_, chain in plan], args)
    rows, teachers_acc = [], {}
    for split, t in ensembles.items():
        teachers_acc[f"split{split}"] = {"ensemble": t["ensemble_test_macro_accuracy"],
                                         **{m["member"]: m["test_macro_accuracy"] for m in t["members"]},
                                         "wall_time_s": round(teacher_wall[split], 1)}
        for method in args.methods:
            done = [run for (s, m, _, _), run in zip(plan, runs) if (s, m) == (split, method)]
            accs = [json.loads((Path(r[-1]) / "metrics.json").read_text())["macro_accuracy"] for r in done]
            wall = sum(json.loads((Path(d) / "report.json").read_text())["wall_time_s"] for r in done for d in r)
            rows.append({"split": f"split{split}", "method": method, "macro_accuracy_mean": float(np.mean(accs)),
                         "half_range": float((max(accs) - min(accs)) / 2), "per_seed": accs,
                         "teacher_ensemble": t["ensemble_test_macro_accuracy"], "wall_time_s": round(wall, 1)})
            print(f"split{split} {method}: {np.mean(accs):.3f} ± {(max(accs) - min(accs)) / 2:.3f}", flush=True)
    _write(rows, teachers_acc, args, time.time() - t0)


def _write(rows, teachers_acc, args, wall_s: float) -> None:
    result = {"benchmark": "kd_methods", "data": args.data, "seeds": args.seeds, "ensemble": args.ensemble,
              "teacher_frontend": args.teacher_frontend, "teacher_steps": args.teacher_steps,
              "student_steps": args.student_steps, "epochs": args.epochs, "kd_tau": args.kd_tau,
              "student_dir_p": args.student_dir_p,
              "batch_size": {f"split{s}": batch_size(s) for s in args.splits},
              "jobs": args.jobs, "threads_per_job": args.threads, "total_wall_time_s": round(wall_s, 1),
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              "teachers": teachers_acc, "rows": rows}
    write_json_atomic(Path(args.results + ".json"), result)
    table = markdown_table([{**r, "macro accuracy": f"{r['macro_accuracy_mean']:.3f} ± {r['half_range']:.3f}",
                             "per seed": " / ".join(f"{a:.3f}" for a in r["per_seed"]),
                             "teacher ensemble": f"{r['teacher_ensemble']:.3f}"} for r in rows],
                           ["split", "method", "macro accuracy", "per seed", "teacher ensemble", "wall_time_s"])
    members = [k for t in teachers_acc.values() for k in t if k not in ("ensemble", "wall_time_s")]
    members = list(dict.fromkeys(members))
    teachers = markdown_table([{"split": s, **{m: f"{t[m]:.3f}" for m in members},
                                "ensemble": f"{t['ensemble']:.3f}", "wall_time_s": t["wall_time_s"]}
                               for s, t in teachers_acc.items()], ["split", *members, "ensemble", "wall_time_s"])
    write_text_atomic(Path(args.results + ".md"),
                      f"# Distillation schemes (CP-Mobile student, {args.ensemble} teacher ensemble)\n\n"
                      f"Test split of `{args.data}` (232 clips), seeds {args.seeds} (mean ± half the range). "
                      f"Teachers: `train-teachers --ensemble {args.ensemble} --frontend {args.teacher_frontend}`, "
                      f"{args.teacher_steps} optimiser steps (epochs {args.epochs['teachers']}), seed 0. "
                      f"Students: CP-Mobile, {args.student_steps} steps (epochs {args.epochs['students']}), "
                      f"DIR p {args.student_dir_p}, batch size {result['batch_size']}, τ = {args.kd_tau} for every "
                      f"scheme, λ = 0.02 (CP-JKU weighting). {args.jobs} runs at a time "
                      f"on {args.threads} thread(s) each, {os.cpu_count()} CPU cores; whole benchmark "
                      f"{wall_s / 60:.0f} min wall. Generated by `benchmarks/kd_methods.py`.\n\n"
                      f"## Teachers (test macro accuracy)\n\n{teachers}\n\n## Students\n\n{table}\n")
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
    run_script(main)
