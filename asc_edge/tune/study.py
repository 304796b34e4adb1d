"""``asc-edge tune``: an Optuna study over frontend, model size and recipe, with the device in the loop.

Flow (one module, data one way): sample a point (:func:`asc_edge.tune.space.suggest`) → reject it
before training when it cannot meet the budget or the device limits
(:func:`~asc_edge.tune.space.check_feasible`, state PRUNED, no cost) → train it with
:func:`asc_edge.train.run.train` on the train split minus a held-out validation part
(``val_fraction`` of its recordings; the test split never steers the search), reporting the
validation macro accuracy every epoch to Optuna's Hyperband pruner → among finished trials, the
finalists (Pareto front of validation accuracy vs MACs) go through ``export --target cmsis-nn`` and
``bench`` on the emulated STM32F405: real RAM, flash and instructions per inference (audio → logits),
device logits compared with the reference → the front of validation accuracy vs device instructions
among the finalists that meet every limit.

Search, pruning and resumption are Optuna's (TPE sampler, ``HyperbandPruner``, SQLite storage in the
output folder, the ask-and-tell interface): rerunning the same command continues the study; a trial
cut off by an interruption is marked FAIL and its point queued again.

Output (``out``): ``study.db`` (Optuna), ``trials/trial_NNNN.yaml`` (each trial's recipe: ``asc-edge
train --config`` reproduces it) and ``trials/trial_NNNN/`` (its run), ``finalists/trial_NNNN/``
(export + bench), ``study.json`` (settings, space, every trial), ``pareto.md``, ``pareto.png``
(validation accuracy vs instructions per inference, point area ∝ RAM) and ``best_recipe.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from ..errors import ConfigError
from .space import SearchSpace, check_feasible, suggest

log = logging.getLogger(__name__)

STUDY_NAME = "asc-edge-tune"

#: Settings that must match when a study is resumed (anything else may change between runs).
_FIXED = ("data", "split", "epochs", "val_fraction", "seed", "budget_params", "budget_macs", "space", "batch_size")


@dataclasses.dataclass
class TuneSettings:
    """One ``asc-edge tune`` invocation. Units: bytes, instructions per inference, MACs per inference."""

    data: str
    split: str = "25"
    out: str = "tune"
    trials: int = 20                 # trials trained (feasible ones; infeasible samples do not count)
    epochs: int = 10
    batch_size: int = 16
    val_fraction: float = 0.2
    seed: int = 0
    budget_params: int = 128_000
    budget_macs: int = 30_000_000
    max_ram_bytes: int | None = None
    max_flash_bytes: int | None = None
    max_instructions: int | None = None
    finalists: int = 4               # at most this many trials exported and benched
    bench_clips: int = 5             # test clips per finalist on the device (bit-exactness check)
    max_samples: int = 0             # cap on samples incl. infeasible ones (0: 50 × trials)
    cache_dir: str | None = None
    progress: bool = False
    space: SearchSpace = dataclasses.field(default_factory=SearchSpace)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["space"] = self.space.to_dict()
        return d


def _recipe(point: dict, s: TuneSettings, number: int) -> dict:
    """The trial's TrainConfig settings (a recipe: ``asc-edge train --config`` reads it). Warm-up: the
    baseline's 5 epochs, capped at a quarter of a short trial's epochs (our choice). Augmentation:
    the DCASE 2024 baseline's, with the trial's mixup α / Freq-MixStyle / DIR choices, its frequency mask
    kept at the same share of the mel bands (48 of 256), and DIR only when the data set has ``dirs/``."""
    augment = {"mixup_alpha": point["mixup_alpha"], "mixstyle_p": point["mixstyle_p"], "dir_p": point["dir_p"],
               "freq_mask": round(48 / 256 * point["frontend"]["n_mels"])}
    if not (Path(s.data) / "dirs").is_dir():
        augment["dir_p"] = 0.0
    return {
        "report": f"asc-edge tune trial {number} (study {Path(s.out).resolve()})",
        "data": str(Path(s.data).resolve()), "split": s.split, "model": point["model"],
        "model_kwargs": point["model_kwargs"], "frontend": point["frontend"], "epochs": s.epochs,
        "batch_size": s.batch_size, "lr": point["lr"], "warmup_epochs": min(5.0, s.epochs / 4),
        "seed": s.seed, "val_fraction": s.val_fraction, "val_every": 1,
        "augment": augment,
    }


def _write_yaml(path: Path, data: dict) -> None:
    import yaml

    from ..report.io import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def _train_trial(trial, recipe: dict, s: TuneSettings, run_name: str):
    """Train one trial; returns its run directory. Raises ``optuna.TrialPruned`` when the pruner stops it."""
    import optuna
    import pytorch_lightning as pl

    from ..train.recipes import merge_config
    from ..train.run import train

    class ReportToPruner(pl.Callback):
        """Each epoch's validation macro accuracy to the trial; stop when the pruner says so."""

        def on_train_epoch_end(self, trainer, module) -> None:
            row = module.history.get(trainer.current_epoch, {})
            if "val_macro_accuracy" in row:
                trial.report(row["val_macro_accuracy"], trainer.current_epoch + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {trainer.current_epoch + 1}")

    cfg = merge_config(recipe, {"out": str(Path(s.out) / "trials"), "name": run_name, "progress": s.progress,
                                "cache_dir": s.cache_dir, "logger": "csv"},
                       {"out", "name", "progress", "cache_dir", "logger"})
    return train(cfg, callbacks=[ReportToPruner()])


def _pareto(rows: list[dict], maximise: str, minimise: str) -> list[dict]:
    """Rows not dominated in (``maximise`` ↑, ``minimise`` ↓), sorted by ``minimise``."""
    front = [r for r in rows if not any(
        o[maximise] >= r[maximise] and o[minimise] <= r[minimise]
        and (o[maximise] > r[maximise] or o[minimise] < r[minimise]) for o in rows)]
    return sorted(front, key=lambda r: (r[minimise], -r[maximise]))


def _device_figures(row: dict, s: TuneSettings, log_fn) -> dict:
    """Export (int8, cmsis-nn) and bench one finalist; cached in ``finalists/trial_NNNN/device.json``."""
    from ..device.harness import bench
    from ..export.pipeline import export_model
    from ..report.io import write_json_atomic

    d = Path(s.out) / "finalists" / f"trial_{row['number']:04d}"
    cached = d / "device.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    t0 = time.time()
    quiet = lambda *a, **k: None  # noqa: E731
    # calibration: the run's own split, or split100 when it has fewer than 200 clips (export's rule)
    rep = export_model(row["run_dir"], "cmsis-nn", d / "export", data=s.data,
                       n_check=50, debug_clips=1, cache_dir=s.cache_dir, log=quiet)
    b = bench(d / "export", data=s.data, split="test", limit=s.bench_clips, out_dir=d / "bench",
              cache_dir=s.cache_dir, log=quiet)
    ins, mem = b["instructions"], b["memory"]
    fig = {
        "ram_bytes": mem["ram_bytes"], "flash_bytes": mem["flash_bytes"], "arena_bytes": mem["arena_bytes"],
        "model_instructions": int(ins["model_mean"]), "frontend_instructions": int(ins["frontend_mean"]),
        "instructions": int(ins["total_mean"]), "instructions_per_mac": ins["model_instructions_per_mac"],
        "device_equal": b["bit_exact"]["n_equal"], "device_clips": b["bit_exact"]["n_clips"],
        "bit_exact": bool(b["bit_exact"]["all_equal"]),
        "int8_top1_agreement": rep["accuracy"]["top1_agreement"], "agreement_clips": rep["accuracy"]["n_clips"],
        "export_dir": str(d / "export"), "wall_s": round(time.time() - t0, 1),
    }
    write_json_atomic(cached, fig)
    log_fn(f"finalist trial {row['number']}: device == reference {fig['device_equal']}/{fig['device_clips']}, "
           f"RAM {fig['ram_bytes']:,} B, flash {fig['flash_bytes']:,} B, {fig['instructions']:,} instructions")
    return fig


def _check_resume(study, s: TuneSettings) -> None:
    stored = study.user_attrs.get("settings")
    if stored is None:
        study.set_user_attr("settings", s.to_dict())
        return
    now = json.loads(json.dumps(s.to_dict()))
    diff = [k for k in _FIXED if stored.get(k) != now.get(k)]
    if diff:
        raise ConfigError(f"{Path(s.out) / 'study.db'} holds a study made with other settings ({', '.join(diff)})",
                          hint="resume with the same settings, or give another --out for a new study")


def run_tune(s: TuneSettings, log_fn=print) -> dict:
    """Run (or resume) the study of ``s``; returns the ``study.json`` dict (also written to ``s.out``).

    Raises:
        ConfigError: bad settings, or a study in ``s.out`` made with other settings.
        DataError: bad data (from training).
    """
    import optuna
    from optuna.trial import TrialState

    if s.trials < 1 or s.epochs < 1 or not 0 < s.val_fraction < 1 or s.finalists < 0 or s.bench_clips < 1:
        raise ConfigError("tune: --trials, --epochs and --bench-clips must be >= 1, --finalists >= 0 and "
                          "--val-fraction in (0, 1)", hint="e.g. --trials 20 --epochs 10 --val-fraction 0.2")
    from ..data import load_split, open_dataset

    load_split(open_dataset(s.data), s.split, None)  # a bad data root or split fails here, before any study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{out.resolve() / 'study.db'}", direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=s.seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=s.epochs, reduction_factor=3),
        load_if_exists=True)
    _check_resume(study, s)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # cut off by an interruption
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)
        log_fn(f"trial {t.number} was interrupted: marked FAIL, its point queued again")

    trained = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
                  if not t.user_attrs.get("infeasible"))  # trials of earlier runs of this study count

    max_samples = s.max_samples or 50 * s.trials
    samples = 0
    while trained < s.trials and samples < max_samples:
        samples += 1
        trial = study.ask()
        point = suggest(trial, s.space)
        feas = check_feasible(point, budget_params=s.budget_params, budget_macs=s.budget_macs,
                              max_ram_bytes=s.max_ram_bytes, max_flash_bytes=s.max_flash_bytes,
                              max_instructions=s.max_instructions)
        trial.set_user_attr("point", point)
        trial.set_user_attr("feasibility", feas.to_dict())
        if not feas.ok:
            trial.set_user_attr("infeasible", True)
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d infeasible (not trained): %s", trial.number, "; ".join(feas.reasons))
            continue
        name = f"trial_{trial.number:04d}"
        recipe = _recipe(point, s, trial.number)
        _write_yaml(out / "trials" / f"{name}.yaml", recipe)
        trial.set_user_attr("recipe", str(out / "trials" / f"{name}.yaml"))
        trained += 1  # pruned by Hyperband or complete, it was trained
        log_fn(f"trial {trial.number} ({trained}/{s.trials}): {point['model']} {point['model_kwargs']}, frontend "
               f"{point['frontend']}, lr {point['lr']}, {feas.params:,} params, {feas.macs:,} MACs")
        try:
            run_dir = _train_trial(trial, recipe, s, name)
        except optuna.TrialPruned as e:
            study.tell(trial, state=TrialState.PRUNED)
            log_fn(f"  trial {trial.number}: {e} (Hyperband)")
            continue
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("test_macro_accuracy", metrics["macro_accuracy"])
        study.tell(trial, metrics["val_macro_accuracy"])
        log_fn(f"  trial {trial.number}: validation macro accuracy {metrics['val_macro_accuracy']:.4f}")
    if trained < s.trials:
        log_fn(f"stopped after {samples} samples: {trained} of {s.trials} trials were feasible "
               "(widen the space or the limits)")
    result = _summarise(study, s, log_fn)
    result["wall_s"] = round(time.time() - t0, 1)
    from ..report.io import write_json_atomic

    write_json_atomic(out / "study.json", result)
    from ..report.io import write_text_atomic

    write_text_atomic(out / "pareto.md", pareto_markdown(result))
    plot_pareto(result, out / "pareto.png")
    return result


def _summarise(study, s: TuneSettings, log_fn) -> dict:
    from optuna.trial import TrialState

    trials = []
    for t in study.get_trials(deepcopy=False):
        feas = t.user_attrs.get("feasibility", {})
        state = "infeasible" if t.user_attrs.get("infeasible") else t.state.name.lower()
        trials.append({"number": t.number, "state": state, "params": t.params, "point": t.user_attrs.get("point"),
                       "feasibility": feas, "val_macro_accuracy": t.value if t.state == TrialState.COMPLETE else None,
                       "intermediate": {int(k): v for k, v in t.intermediate_values.items()},
                       "test_macro_accuracy": t.user_attrs.get("test_macro_accuracy"),
                       "run_dir": t.user_attrs.get("run_dir"), "recipe": t.user_attrs.get("recipe")})
    done = [dict(r, macs=r["feasibility"]["macs"]) for r in trials if r["state"] == "complete" and r["run_dir"]]
    finalists = sorted(_pareto(done, "val_macro_accuracy", "macs"), key=lambda r: -r["val_macro_accuracy"])
    finalists = finalists[:s.finalists]
    for r in finalists:
        r["device"] = _device_figures(r, s, log_fn)
        limits = ((r["device"]["ram_bytes"], s.max_ram_bytes, "RAM"), (r["device"]["flash_bytes"], s.max_flash_bytes,
                  "flash"), (r["device"]["instructions"], s.max_instructions, "instructions"))
        r["device"]["violates"] = [w for v, lim, w in limits if lim is not None and v > lim]
    by_number = {r["number"]: r for r in trials}
    for r in finalists:
        by_number[r["number"]]["device"] = r["device"]
    ok = [dict(r, instructions=r["device"]["instructions"]) for r in finalists if not r["device"]["violates"]]
    front = _pareto(ok, "val_macro_accuracy", "instructions")
    for r in front:
        by_number[r["number"]]["on_front"] = True
    best = max(front, key=lambda r: r["val_macro_accuracy"]) if front else None
    if best is not None:
        import yaml

        recipe = yaml.safe_load(Path(best["recipe"]).read_text())
        recipe["report"] = f"asc-edge tune: best validation accuracy on the device Pareto front (trial {best['number']})"
        _write_yaml(Path(s.out) / "best_recipe.yaml", recipe)
    counts = {k: sum(1 for r in trials if r["state"] == k) for k in ("complete", "pruned", "infeasible", "fail")}
    return {"settings": s.to_dict(), "counts": counts, "trials": trials,
            "finalists": [r["number"] for r in finalists], "front": [r["number"] for r in front],
            "best": best["number"] if best else None}


def pareto_markdown(result: dict) -> str:
    """The Pareto front (and the other finalists) as a Markdown table."""
    s, c = result["settings"], result["counts"]
    lines = [f"# asc-edge tune: {s['data']} split{s['split']}", "",
             f"{c['complete'] + c['pruned']} trials trained ({c['complete']} to the end, {c['pruned']} stopped by "
             f"Hyperband), {c['infeasible']} samples rejected before training; {s['epochs']} epochs at most; "
             f"validation: {s['val_fraction']:.0%} of the train split's recordings. Budget {s['budget_params']:,} "
             f"params, {s['budget_macs']:,} MACs. Device: emulated STM32F405 (QEMU), int8, speed build; "
             f"instructions = audio → logits per 1-s clip.", "",
             "| trial | on front | model | frontend (sr, mels, n_fft/win/hop) | params | MACs | val acc | test acc (float) "
             "| int8 agreement | device == ref | RAM (B) | flash (B) | instructions | instr/MAC (model) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    rows = [r for r in result["trials"] if r.get("device")]
    for r in sorted(rows, key=lambda r: r["device"]["instructions"]):
        p, f, d = r["point"], r["feasibility"], r["device"]
        fe = p["frontend"]
        kw = {k: v for k, v in p["model_kwargs"].items() if k not in ("n_mels", "n_frames")}
        lines.append(
            f"| {r['number']} | {'yes' if r.get('on_front') else 'no'} | {p['model']} {json.dumps(kw)} | "
            f"{fe['sample_rate']}, {fe['n_mels']}, {fe['n_fft']}/{fe['win_length']}/{fe['hop_length']} | "
            f"{f['params']:,} | {f['macs']:,} | {r['val_macro_accuracy']:.3f} | {r['test_macro_accuracy']:.3f} | "
            f"{d['int8_top1_agreement']:.3f} | "
            f"{d['device_equal']}/{d['device_clips']} | {d['ram_bytes']:,} | {d['flash_bytes']:,} | "
            f"{d['instructions']:,} | {d['instructions_per_mac']:.2f} |")
    if result.get("wall_s") is not None:
        lines += ["", f"Wall time: {result['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def plot_pareto(result: dict, path: Path) -> None:
    """Validation accuracy vs instructions per inference of the finalists; point area ∝ RAM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["trials"] if r.get("device")]
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        d = r["device"]
        ax.scatter(d["instructions"] / 1e6, r["val_macro_accuracy"], s=d["ram_bytes"] / 500,
                   c="tab:red" if r.get("on_front") else "tab:gray", alpha=0.7)
        ax.annotate(str(r["number"]), (d["instructions"] / 1e6, r["val_macro_accuracy"]), fontsize=8)
    front = sorted((r for r in rows if r.get("on_front")), key=lambda r: r["device"]["instructions"])
    if front:
        ax.plot([r["device"]["instructions"] / 1e6 for r in front], [r["val_macro_accuracy"] for r in front],
                "r--", lw=1)
    ax.set_xlabel("instructions per inference, audio → logits (M)")
    ax.set_ylabel("validation macro accuracy")
    ax.set_title("asc-edge tune: Pareto front (red); point area ∝ RAM")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["TuneSettings", "run_tune", "pareto_markdown", "plot_pareto", "STUDY_NAME"]
