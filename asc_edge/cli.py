"""``asc-edge`` command line: thin — parse flags, call one function per command, print errors as one line."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import AscEdgeError
from .signals import Terminated, terminate_as_interrupt

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Tiny acoustic scene classification (DCASE Task 1): train, export, benchmark on a Cortex-M4.")

_AUG = None  # AugmentConfig defaults, read lazily (importing torch is slow)


def _errors_as_one_line(fn):
    """Turn an AscEdgeError into ``error: <message> (fix: <hint>)`` and exit status 2; Ctrl-C into exit
    130 and SIGTERM / SIGHUP into 128 + the signal number, each after the same clean-up, with one line."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with terminate_as_interrupt():
                return fn(*args, **kwargs)
        except AscEdgeError as exc:  # one line, also when the message quotes several lines of device output
            typer.echo("error: " + " | ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()), err=True)
            raise typer.Exit(2)
        except OSError as exc:  # a full disk, a read-only mount, a path that vanished while working
            name = f": {exc.filename}" if exc.filename else ""
            typer.echo(f"error: {exc.strerror or exc}{name} (fix: check that the location exists, is writable "
                       "and has free space; the command's temporary files were removed)", err=True)
            raise typer.Exit(2)
        except Terminated as exc:
            typer.echo(f"terminated by {signal.Signals(exc.signum).name}: nothing was written", err=True)
            raise typer.Exit(128 + exc.signum)
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing was written", err=True)
            raise typer.Exit(130)
    return wrapper


def _check_range(flag: str, value, *, ge=None, gt=None, le=None) -> None:
    """Reject a numeric flag outside its range (or NaN / infinite) as one ConfigError line, before any
    work; ``None`` (flag not given) passes. Bounds: ``ge`` (>=), ``gt`` (>), ``le`` (<=)."""
    import math

    from .errors import ConfigError

    if value is None:
        return
    parts = [f">= {ge}" if ge is not None else None, f"> {gt}" if gt is not None else None,
             f"<= {le}" if le is not None else None]
    want = ("an integer " if isinstance(value, int) else "a finite number ") + " and ".join(p for p in parts if p)
    ok = (isinstance(value, int) or math.isfinite(value)) and (ge is None or value >= ge) \
        and (gt is None or value > gt) and (le is None or value <= le)
    if not ok:
        raise ConfigError(f"{flag} {value} is out of range: it must be {want}", hint=f"pass {flag} as {want}")


def _check_ranges(checks: dict) -> None:
    """``{flag: (value, bounds)}`` → :func:`_check_range` for each, in order."""
    for flag, (value, bounds) in checks.items():
        _check_range(flag, value, **bounds)


def _check_output(flag: str, path: Optional[Path], *, kind: str = "dir") -> None:
    """Refuse an output location that cannot be written, before any work (one ConfigError line):
    ``kind="dir"``: ``path`` is an existing file; ``kind="file"``: ``path`` is an existing folder; for
    both, the nearest existing ancestor is a regular file (nothing can be created under it) or is not
    writable (a read-only mount or folder). ``None`` (flag not given) passes."""
    import os

    from .errors import ConfigError

    if path is None:
        return
    p = Path(path).expanduser()
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} is a file, not a folder", hint=f"pass a folder path as {flag}")
    if kind == "file" and p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder, not a file", hint=f"name a file, e.g. {flag} {p / 'metrics.json'}")
    a = (p if kind == "dir" else p.parent).absolute()
    while not a.exists() and a != a.parent:
        a = a.parent
    if not a.is_dir():
        raise ConfigError(f"{flag} {p}: {a} is a file, so nothing can be created under it",
                          hint=f"choose a {flag} outside {a}")
    if not os.access(a, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {p}: {a} is not writable", hint=f"choose a writable {flag} (e.g. under your home)")


_GE0, _GE1, _GT0, _P = {"ge": 0}, {"ge": 1}, {"gt": 0}, {"ge": 0, "le": 1}
_SEED = {"ge": 0, "le": 2**32 - 1}


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


#: ``train`` option (parameter name) → the setting it sets: a TrainConfig field, ``augment.<name>`` or
#: ``model_kwargs.<name>`` (see :func:`asc_edge.train.recipes.merge_config`).
_TRAIN_SETTINGS = {
    "data": "data", "split": "split", "splits": "splits_dir", "model": "model", "frontend": "frontend",
    "base_channels": "model_kwargs.base_channels", "model_checkpoint": "model_kwargs.checkpoint", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr",
    "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs", "seed": "seed", "teacher": "teachers",
    "kd_lambda": "kd_lambda", "kd_tau": "kd_tau", "teacher_logits": "teacher_logits", "kd_scheme": "kd_scheme",
    "kd_convention": "kd_convention", "kd_kl_average": "kd_kl_average",
    "rrs_relational_epochs": "rrs_relational_epochs",
    "online_teacher_lr_factor": "online_teacher_lr_factor", "ema_decay": "ema_decay",
    "consistency_max": "consistency_max", "unlabelled": "unlabelled",
    "freq_mask": "augment.freq_mask", "time_roll": "augment.time_roll", "mixup_alpha": "augment.mixup_alpha",
    "mixstyle_p": "augment.mixstyle_p", "mixstyle_alpha": "augment.mixstyle_alpha", "dir_p": "augment.dir_p",
    "time_mask": "augment.time_mask", "freqm_frac": "augment.freq_mask_frac", "timem_frac": "augment.time_mask_frac",
    "pitch_shift_p": "augment.pitch_shift_p", "pitch_shift_semitones": "augment.pitch_shift_semitones",
    "time_stretch_p": "augment.time_stretch_p", "time_stretch_range": "augment.time_stretch_range",
    "fmax_aug_range": "augment.fmax_aug_range",
    "dirs": "dirs", "out": "out", "name": "name", "cache_dir": "cache_dir", "val_every": "val_every",
    "val_fraction": "val_fraction",
    "accelerator": "accelerator", "devices": "devices", "num_nodes": "num_nodes", "strategy": "strategy",
    "progress": "progress", "logger": "logger", "features": "features", "precision": "precision",
    "num_workers": "num_workers",
}

_LOGGER_HELP = ("Experiment logs in <run>/logs/: tensorboard (event files; `tensorboard --logdir runs`), csv "
                "(metrics.csv) or none. Local files only, nothing is sent over the network.")


def _check_logger(logger: Optional[str]) -> None:
    """Reject a bad ``--logger`` as one ConfigError line before any work (``None``: not given)."""
    if logger is not None:
        from .train.config import check_logger

        check_logger(logger)


def _given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed option ``name`` (or set it through an environment variable), as opposed
    to its default: click's parameter source, not a comparison with the default value."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _as_setting(value):
    """Flag value → TrainConfig value (paths as strings, lists of paths as lists of strings)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return value


@app.command()
@_errors_as_one_line
def train(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (recipes/*.yaml, or a shipped name "
                                          "such as kt2024): its settings, then the flags given here on top."),
    data: Optional[Path] = typer.Option(None, help="Dataset root in TAU Urban Acoustic Scenes 2022 Mobile layout "
                                        "(required unless the recipe names one)."),
    split: str = typer.Option("100", help="Train subset: 5, 10, 25, 50 or 100 (split5 … split100)."),
    splits: Optional[Path] = typer.Option(None, help="Folder with split*.csv / test.csv (default: data root or split_setup/)."),
    model: str = typer.Option("cp-mobile", help="Model name (see `asc-edge complexity --list`)."),
    frontend: Optional[str] = typer.Option(None, help="Log-mel preset (default: the model's; `asc-edge complexity --list`)."),
    base_channels: Optional[int] = typer.Option(None, help="CP-Mobile base channels N (SNTL-NTU N-BCBL: 24, 32)."),
    model_checkpoint: Optional[Path] = typer.Option(
        None, help="Local pretrained weights the model starts from (passt: a .pt file; ast: a file or a "
                   "save_pretrained folder); never downloaded."),
    epochs: int = typer.Option(100),
    batch_size: int = typer.Option(64),
    lr: float = typer.Option(0.005, help="Peak learning rate (AdamW), DCASE24 baseline."),
    weight_decay: float = typer.Option(0.0001),
    warmup_epochs: float = typer.Option(5.0, help="Linear warm-up length, then cosine decay."),
    seed: int = typer.Option(0),
    teacher: List[Path] = typer.Option([], help="Teacher checkpoint; repeat for a logit-averaged ensemble."),
    kd_lambda: float = typer.Option(0.02, help="KD: weight λ of the label loss (KT report eq. 3)."),
    kd_tau: float = typer.Option(2.0, help="KD: temperature τ."),
    teacher_logits: Optional[Path] = typer.Option(None, help="Teacher logits file (.npz: filenames, logits, labels; "
                                                             "or .pt), keyed by meta.csv filename."),
    kd_scheme: str = typer.Option("hinton", help="hinton | focusnet (SNTL-NTU TFS) | mse (ITMO) | rrs (AI4EDGE) | "
                                  "online (KT) | mean-teacher (ITMO)."),
    kd_convention: str = typer.Option("cpjku", help="Hinton weighting: cpjku λ·CE+(1−λ)τ²KL or sntl (1−λ)·CE+λτ²KL."),
    kd_kl_average: str = typer.Option("classes", help="KL averaging: classes (CP-JKU code, mean over examples and "
                                      "classes) or batch (batchmean: C× the teacher weight at the same λ)."),
    rrs_relational_epochs: Optional[int] = typer.Option(None, help="rrs: relational-stage epochs (default half)."),
    online_teacher_lr_factor: Optional[float] = typer.Option(
        None, help="online: teacher learning rate = --lr × this (default 0.01, KT 2024)."),
    ema_decay: Optional[float] = typer.Option(None, help="mean-teacher: EMA decay of the teacher (default 0.999)."),
    consistency_max: Optional[float] = typer.Option(
        None, help="mean-teacher: maximum consistency-loss weight (default 1.0)."),
    unlabelled: Optional[Path] = typer.Option(None, help="mean-teacher: folder of unlabelled WAVs (labels unused)."),
    freq_mask: int = typer.Option(48, help="Max masked mel bins (0 = off)."),
    time_roll: int = typer.Option(6, help="Max time roll in frames (0 = off)."),
    mixup_alpha: float = typer.Option(1.0, help="Mixup Beta α (0 = off)."),
    mixstyle_p: float = typer.Option(0.4, help="Freq-MixStyle probability (0 = off)."),
    mixstyle_alpha: float = typer.Option(0.3, help="Freq-MixStyle Beta α."),
    dir_p: float = typer.Option(0.6, help="Device-impulse-response augmentation probability (0 = off)."),
    time_mask: int = typer.Option(0, help="Max masked frames, one time mask per clip (0 = off)."),
    freqm_frac: float = typer.Option(0.0, help="Frequency mask up to this fraction of the mel bins; replaces "
                                     "--freq-mask when > 0 (ITMO 2024: 0.15; 0 = off)."),
    timem_frac: float = typer.Option(0.0, help="Time mask up to this fraction of the frames; replaces --time-mask "
                                     "when > 0 (ITMO 2024: 0.15; 0 = off)."),
    pitch_shift_p: float = typer.Option(0.0, help="Fraction of each batch pitch-shifted on the waveform with librosa, "
                                        "features recomputed (AI4EDGE 2023: 0.5; 0 = off)."),
    pitch_shift_semitones: float = typer.Option(2.0, help="Max |pitch shift| in semitones, shift ~ U(-s, s) "
                                                "(AI4EDGE 2023: 2)."),
    time_stretch_p: float = typer.Option(0.0, help="Fraction of each batch time-stretched on the waveform with "
                                         "librosa, length kept (AI4EDGE 2023: 0.5; 0 = off)."),
    time_stretch_range: float = typer.Option(0.2, help="Time-stretch rates ~ U(1 - r, 1 + r) (AI4EDGE 2023: 0.2, "
                                             "rates 0.8 … 1.2)."),
    fmax_aug_range: float = typer.Option(0.0, help="PaSST-style pitch shift: per clip the mel top edge is drawn from "
                                         "f_max - HZ … f_max (PaSST / SNTL-NTU 2024: 2000; 0 = off)."),
    dirs: Optional[Path] = typer.Option(None, help="Folder of device impulse responses (default: <data>/dirs)."),
    out: Path = typer.Option(Path("runs"), help="Parent folder of run directories."),
    name: Optional[str] = typer.Option(None, help="Run directory name (default: <model>_split<N>_<ce|kd>_seed<S>)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Feature / teacher-logit cache (default ~/.cache/asc-edge)."),
    val_every: int = typer.Option(5, help="Validate on the test split every N epochs (curves only)."),
    val_fraction: float = typer.Option(0.0, help="Validate on this fraction of the train split's recordings "
                                       "(held out of training, seeded by --seed) instead of the test split; "
                                       "0 = test split. metrics.json stays the test split's."),
    accelerator: str = typer.Option("cpu"),
    devices: int = typer.Option(1, help="Processes/GPUs per node (DDP when > 1)."),
    num_nodes: int = typer.Option(1),
    strategy: str = typer.Option("auto", help="Lightning strategy, e.g. ddp."),
    progress: bool = typer.Option(True, help="Progress bars."),
    logger: str = typer.Option("tensorboard", help=_LOGGER_HELP),
    features: str = typer.Option("cache", help="cache: log-mel from the on-disk feature cache; online: the loader "
                                 "yields waveforms and the log-mel is computed per batch on the training device "
                                 "(CPJKU way; for large splits and GPUs)."),
    precision: str = typer.Option("32", help="32, bf16-mixed (CPU or GPU) or 16-mixed (GPU only); "
                                  "pl.Trainer(precision=...). The log-mel is always float32."),
    num_workers: int = typer.Option(0, help="DataLoader worker processes (persistent); 0 = main process."),
) -> None:
    """Train a student (or teacher), optionally distilled from teacher checkpoints.

    With --config, the recipe's settings are used and every flag typed here overrides them
    (e.g. `--config recipes/kt2024.yaml --epochs 10 --teacher T.ckpt`)."""
    _check_ranges({
        "--base-channels": (base_channels, _GE1), "--epochs": (epochs, _GE1), "--batch-size": (batch_size, _GE1),
        "--lr": (lr, _GE0), "--weight-decay": (weight_decay, _GE0), "--warmup-epochs": (warmup_epochs, _GE0),
        "--seed": (seed, _SEED), "--kd-lambda": (kd_lambda, _P), "--kd-tau": (kd_tau, _GT0),
        "--rrs-relational-epochs": (rrs_relational_epochs, _GE0),
        "--online-teacher-lr-factor": (online_teacher_lr_factor, _GT0), "--ema-decay": (ema_decay, _P),
        "--consistency-max": (consistency_max, _GE0), "--freq-mask": (freq_mask, _GE0),
        "--time-roll": (time_roll, _GE0), "--mixup-alpha": (mixup_alpha, _GE0), "--mixstyle-p": (mixstyle_p, _P),
        "--mixstyle-alpha": (mixstyle_alpha, _GT0), "--dir-p": (dir_p, _P), "--val-every": (val_every, _GE1),
        "--val-fraction": (val_fraction, _GE0),
        "--time-mask": (time_mask, _GE0), "--freqm-frac": (freqm_frac, _P), "--timem-frac": (timem_frac, _P),
        "--pitch-shift-p": (pitch_shift_p, _P), "--pitch-shift-semitones": (pitch_shift_semitones, _GE0),
        "--time-stretch-p": (time_stretch_p, _P), "--time-stretch-range": (time_stretch_range, _GE0),
        "--fmax-aug-range": (fmax_aug_range, _GE0),
        "--devices": (devices, _GE1), "--num-nodes": (num_nodes, _GE1), "--num-workers": (num_workers, _GE0)})
    _check_output("--out", out)
    _check_logger(logger)
    _setup_logging()
    from .errors import ConfigError
    from .train import train as run_train
    from .train.recipes import load_recipe, merge_config, resolve_recipe

    values = dict(ctx.params)
    flags = {setting: _as_setting(values[param]) for param, setting in _TRAIN_SETTINGS.items()}
    given = {setting for param, setting in _TRAIN_SETTINGS.items() if _given_on_command_line(ctx, param)}
    recipe: dict = {}
    recipe_path = None
    if config is not None:
        recipe_path = resolve_recipe(config)
        recipe = load_recipe(recipe_path)
        recipe_text = recipe_path.read_text(encoding="utf-8")  # kept as read: copied into the run directory
    cfg = merge_config(recipe, flags, given)
    if recipe.get("teachers_recipe") and not cfg.teachers and not cfg.teacher_logits:
        tr = recipe["teachers_recipe"]
        fe = f" --frontend {tr['frontend']}" if tr.get("frontend") else ""
        raise ConfigError(f"recipe {recipe_path} distils from a teacher (kd_scheme {cfg.kd_scheme}) but no --teacher "
                          "or --teacher-logits was given",
                          hint=f"train one with `asc-edge train-teachers --ensemble {tr['ensemble']}{fe} --data ... "
                               f"--split {cfg.split}` and add the --teacher flags it prints (see the recipe's notes)")
    run_dir = run_train(cfg)
    if run_dir is not None:
        if recipe_path is not None:
            from .report.io import write_text_atomic

            write_text_atomic(run_dir / "recipe.yaml", recipe_text)
        m = json.loads((run_dir / "metrics.json").read_text())
        r = json.loads((run_dir / "report.json").read_text())
        typer.echo(f"run: {run_dir}")
        typer.echo(f"test macro accuracy {m['macro_accuracy']:.4f}, accuracy {m['accuracy']:.4f}, "
                   f"log loss {m['log_loss']:.4f} on {m['n_clips']} clips; wall time {r['wall_time_s']:.0f} s")


@app.command("train-teachers")
@_errors_as_one_line
def train_teachers_cmd(
    data: Path = typer.Option(..., help="Dataset root in TAU Urban Acoustic Scenes 2022 Mobile layout."),
    split: str = typer.Option(..., help="Train subset: 5, 10, 25, 50 or 100."),
    ensemble: str = typer.Option(..., help="sntl (three 32-BCBL CP-Mobiles: Freq-MixStyle / DIR / both), "
                                 "cpjku (CP-ResNet + wide CP-Mobile) or ai4edge-ova (one-vs-all SM1 teacher)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs of every member (default: asc-edge train's, 100)."),
    frontend: Optional[str] = typer.Option(None, help="One log-mel preset for every member (default: the "
                                           "ensemble's; an online-KD teacher needs the student's, e.g. kt-288)."),
    out: Path = typer.Option(Path("runs") / "teachers", help="Parent folder of the members' run directories "
                             "and of <ensemble>_split<N>_teachers.json."),
    seed: int = typer.Option(0),
    splits: Optional[Path] = typer.Option(None, help="Folder with split*.csv / test.csv "
                                          "(default: data root or split_setup/)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size of every member (default 64)."),
    dirs: Optional[Path] = typer.Option(None, help="Folder of device impulse responses (default: <data>/dirs)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Feature cache (default ~/.cache/asc-edge)."),
    val_every: Optional[int] = typer.Option(None, help="Validate on the test split every N epochs (curves only)."),
    accelerator: str = typer.Option("cpu"),
    devices: int = typer.Option(1, help="Processes/GPUs per node (DDP when > 1)."),
    reuse: bool = typer.Option(False, "--reuse", help="Keep members already trained with the identical config "
                               "(--logger is not compared)."),
    progress: bool = typer.Option(True, help="Progress bars."),
    logger: str = typer.Option("tensorboard", help=_LOGGER_HELP),
    features: str = typer.Option("cache", help="cache (on-disk log-mel) or online (log-mel per batch on the "
                                 "training device), as `asc-edge train --features`."),
    precision: str = typer.Option("32", help="32, bf16-mixed (CPU or GPU) or 16-mixed (GPU only)."),
    num_workers: int = typer.Option(0, help="DataLoader worker processes (persistent); 0 = main process."),
) -> None:
    """Train a teacher ensemble in one command; prints the --teacher flags that distil from it."""
    _check_ranges({"--epochs": (epochs, _GE1), "--seed": (seed, _SEED), "--batch-size": (batch_size, _GE1),
                   "--val-every": (val_every, _GE1), "--devices": (devices, _GE1),
                   "--num-workers": (num_workers, _GE0)})
    _check_output("--out", out)
    _check_logger(logger)
    _setup_logging()
    from .train.teachers import train_teachers

    result = train_teachers(
        ensemble, str(data), split, epochs=epochs, out=str(out), seed=seed, frontend=frontend, reuse=reuse,
        echo=typer.echo,
        splits_dir=str(splits) if splits else None, batch_size=batch_size, dirs=str(dirs) if dirs else None,
        cache_dir=str(cache_dir) if cache_dir else None, val_every=val_every, accelerator=accelerator,
        devices=devices, progress=progress, logger=logger, features=features, precision=precision,
        num_workers=num_workers)
    if result is None:
        return
    acc = result["ensemble_test_macro_accuracy"]
    typer.echo(f"ensemble {ensemble}: test macro accuracy " + (f"{acc:.4f}" if acc is not None else "n/a")
               + f" ({len(result['members'])} members); wrote {result['json']}")
    typer.echo(f"distil with: {result['teacher_flags']}")


@app.command()
@_errors_as_one_line
def evaluate(
    ckpt: Path = typer.Argument(..., help="Run directory or model.ckpt from `asc-edge train`."),
    data: Path = typer.Option(..., help="Dataset root (TAU 2022 Mobile layout)."),
    split: str = typer.Option("test", help="Split to evaluate: test, or 5 … 100."),
    splits: Optional[Path] = typer.Option(None, help="Folder with split CSVs."),
    cache_dir: Optional[Path] = typer.Option(None),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the metrics JSON here."),
    progress: bool = typer.Option(True, help="Progress bars."),
) -> None:
    """Re-compute metrics of a checkpoint on a split (features from the checkpoint's own frontend)."""
    _check_output("--output", output, kind="file")
    _setup_logging()
    from .report.io import write_json_atomic
    from .train import evaluate_checkpoint

    m = evaluate_checkpoint(ckpt, data, split, splits_dir=splits, cache_dir=cache_dir, progress=progress)
    if output:
        write_json_atomic(output, m)
    typer.echo(f"{m['split']}: macro accuracy {m['macro_accuracy']:.4f}, accuracy {m['accuracy']:.4f}, "
               f"log loss {m['log_loss']:.4f} on {m['n_clips']} clips")
    for label, acc in m["per_class_accuracy"].items():
        typer.echo(f"  {label:<24} {acc:.3f}" if acc is not None else f"  {label:<24} -")
    for dev, acc in m["per_device_accuracy"].items():
        typer.echo(f"  device {dev:<17} {acc:.3f}")


@app.command()
@_errors_as_one_line
def complexity(
    model: Optional[str] = typer.Argument(None, help="Model name, e.g. cp-mobile."),
    frontend: Optional[str] = typer.Option(None, help="Log-mel preset fixing the input shape (default: the model's)."),
    base_channels: Optional[int] = typer.Option(None, help="CP-Mobile base channels N (SNTL-NTU N-BCBL)."),
    list_models: bool = typer.Option(False, "--list", help="List the registered models and their presets."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Parameters, MACs and parameter bytes of a model against the DCASE Task 1 limits."""
    _check_range("--base-channels", base_channels, ge=1)
    from rich.console import Console
    from rich.table import Table

    from .complexity import MAX_MACS, MAX_PARAM_BYTES, measure
    from .features import get_frontend
    from .models import MODELS, build_model, get_spec

    if list_models or model is None:
        for n in sorted(MODELS):
            typer.echo(f"{n:<16} {MODELS[n].role:<8} {MODELS[n].frontend:<10} {MODELS[n].source}")
        return
    frontend = frontend or get_spec(model).frontend
    fe = get_frontend(frontend)
    kwargs = {} if base_channels is None else {"base_channels": base_channels}
    c = measure(build_model(model, **kwargs), n_mels=fe.n_mels, frames=fe.n_frames)
    if as_json:
        typer.echo(json.dumps({"model": model, **c.to_dict()}, indent=2))
        return
    t = Table(title=f"{model}: input {c.input_shape} ({frontend})")
    for col in ("quantity", "value", "limit", "within"):
        t.add_column(col)
    t.add_row("parameters", f"{c.params:,}", "", "")
    t.add_row("MACs", f"{c.macs:,}", f"{MAX_MACS:,}", "yes" if c.macs <= MAX_MACS else "NO")
    for dtype, nbytes in c.param_bytes.items():
        t.add_row(f"parameter bytes ({dtype})", f"{nbytes:,}", f"{MAX_PARAM_BYTES:,}",
                  "yes" if nbytes <= MAX_PARAM_BYTES else "NO")
    Console().print(t)


@app.command()
@_errors_as_one_line
def export(
    run: Path = typer.Argument(..., help="Run directory or model.ckpt from `asc-edge train`."),
    target: str = typer.Option("cmsis-nn", help="onnx, tflite (ONNX + int8 TFLite) or cmsis-nn (all + C model)."),
    precision: str = typer.Option("int8", help="int8 (default) or fp16: weights stored as IEEE half, float32 "
                                               "kernels on the device (KT 2024; no TFLite, no calibration)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default export/<run name>/)."),
    data: Optional[Path] = typer.Option(None, help="Dataset root (default: the run's own, else ../shared/data)."),
    calib_data: Optional[Path] = typer.Option(None, help="Calibrate on this dataset's split instead, or on every "
                                              "audio file of a plain folder without meta.csv (labels ignored)."),
    calib_split: Optional[str] = typer.Option(None, help="Split of --calib-data (default 100)."),
    test_split: str = typer.Option("test", help="Split for accuracy and the host check (test, 5..100, all)."),
    n_calibration: int = typer.Option(200, help="Calibration clips from the training split (>= 200)."),
    n_check: int = typer.Option(200, help="Clips for the host C vs tflite-micro check."),
    debug_clips: int = typer.Option(2, help="Of those, clips also compared layer by layer (every intermediate tensor)."),
    allow_over_budget: bool = typer.Option(False, "--allow-over-budget", help="Export a model over the DCASE budget."),
    calibration: str = typer.Option("mse", help="int8 activation ranges: mse (least squared int8 error; default), "
                                    "minmax (TFLite's) or percentile (benchmarks/results/int8_calibration.md)."),
    percentile: Optional[float] = typer.Option(None, help="For --calibration percentile: the central share kept, "
                                                          "in % (default 99.999)."),
    qat_epochs: int = typer.Option(0, help="Quantisation-aware fine-tuning epochs before the conversion "
                                           "(self-distillation on the calibration split, labels unused; 0: none)."),
    qat_lr: float = typer.Option(1e-4, help="Learning rate of the quantisation-aware fine-tuning (Adam)."),
    optimize: str = typer.Option("speed", help="Generated int8 C: speed (pre-widened filters, requantisation and depthwise tables in flash, the frontend's asm FFT, "
                                 "-O2) or size (every weight stored once, compact frontend tables with the frontend's "
                                 "own FFT, -Os); each bit-exact on the device."),
    adaptive_rounding: Optional[bool] = typer.Option(None, "--adaptive-rounding/--no-adaptive-rounding",
                                                     help="Round each int8 weight up or down by its layer's output "
                                                     "error on the calibration clips instead of to nearest (AdaRound's "
                                                     "objective, Nagel et al. 2020). Default: on for int8 (the best "
                                                     "remedy in benchmarks/results/int8_calibration.md)."),
    bias_correction: bool = typer.Option(False, "--bias-correction", help="Correct each layer's bias for the mean "
                                         "output shift of its int8 weight rounding (Nagel et al. 2019) before the "
                                         "conversion."),
    gate_agreement: float = typer.Option(0.90, help="Quality gate: least int8 vs float top-1 agreement on the "
                                                    "held-out test clips (0..1)."),
    gate_cosine: float = typer.Option(0.95, help="Quality gate: least mean int8 vs float logit cosine similarity."),
    gate_cosine_worst5: float = typer.Option(0.80, "--gate-cosine-worst5", help="Quality gate: least mean logit "
                                             "cosine of the worst 5 % of held-out clips."),
    no_gate: bool = typer.Option(False, "--no-gate", help="Measure the quality gate's values but never fail on them."),
    progress: bool = typer.Option(True, help="Progress bars while features are computed."),
    cache_dir: Optional[Path] = typer.Option(None),
) -> None:
    """Export a checkpoint: ONNX (parity), int8 TFLite (tflite-micro oracle, int8 quality gate), generated C model
    (host == tflite-micro)."""
    _check_ranges({"--n-calibration": (n_calibration, _GE1), "--n-check": (n_check, _GE1),
                   "--debug-clips": (debug_clips, _GE0), "--qat-epochs": (qat_epochs, _GE0),
                   "--qat-lr": (qat_lr, _GT0), "--gate-agreement": (gate_agreement, {"ge": 0, "le": 1}),
                   "--gate-cosine": (gate_cosine, {"ge": -1, "le": 1}),
                   "--gate-cosine-worst5": (gate_cosine_worst5, {"ge": -1, "le": 1})})
    from .errors import ConfigError

    if percentile is not None and not 0.0 < percentile <= 100.0:
        raise ConfigError(f"--percentile {percentile} is outside (0, 100]", hint="e.g. --percentile 99.999")
    _check_output("--out", out)
    _setup_logging()
    from .export.pipeline import export_model

    export_model(run, target, out, data=data, calib_data=calib_data, calib_split=calib_split, test_split=test_split,
                 n_calibration=n_calibration, n_check=n_check,
                 debug_clips=debug_clips, allow_over_budget=allow_over_budget, calibration=calibration,
                 percentile=percentile, qat_epochs=qat_epochs, qat_lr=qat_lr,
                 adaptive_rounding=(precision == "int8") if adaptive_rounding is None else adaptive_rounding,
                 bias_correction=bias_correction, optimize=optimize,
                 gate=not no_gate,
                 gate_agreement=gate_agreement, gate_cosine=gate_cosine, gate_cosine_worst5=gate_cosine_worst5,
                 precision=precision, cache_dir=cache_dir, log=typer.echo, progress=progress)


@app.command()
@_errors_as_one_line
def bench(
    export_dir: Optional[Path] = typer.Argument(None, help="Export directory from `asc-edge export --target cmsis-nn`."),
    qemu: bool = typer.Option(False, "--qemu", help="Emulate with qemu-system-arm (netduinoplus2); the default."),
    renode: bool = typer.Option(False, "--renode", help="Emulate with Renode 1.14 (on PATH or set up in .tools/renode)."),
    check: bool = typer.Option(False, "--check", help="Only say which emulator (and, for Renode, which Python) "
                                                      "would run, with versions."),
    data: Optional[Path] = typer.Option(None, help="Dataset root (default: the export's own data root)."),
    split: str = typer.Option("test", help="Split whose clips run on the device (5..100, test, or all)."),
    limit: Optional[int] = typer.Option(None, help="Run only the first N clips."),
    kernels: str = typer.Option("dsp", help="dsp (Cortex-M4 DSP extension paths) or portable."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report directory (default: the run's bench/)."),
    timeout: Optional[float] = typer.Option(None, help="Emulator time limit in seconds (default 30 + 20 per clip; "
                                            "60 per clip on Renode)."),
    cache_dir: Optional[Path] = typer.Option(None),
    cycles: bool = typer.Option(False, "--cycles", help="Also estimate Cortex-M4 cycles and ms at 168 MHz per step "
                                "(the first clip traced once more on QEMU; TRM timings, a range)."),
    external_ram: bool = typer.Option(False, "--external-ram",
                                      help="Put the activation arena in 4 MiB of external SRAM on the FSMC "
                                           "(0x64000000; the STM3240G-EVAL carries 2 MiB), for a model whose arena "
                                           "exceeds the 128 KiB SRAM; needs --renode."),
) -> None:
    """Run the export on the emulated STM32F405: device logits == host C frontend -> tflite-micro, bit for bit;
    accuracy, flash, RAM, instructions per stage/layer."""
    from .device.harness import bench as run_bench
    from .errors import ConfigError

    _check_ranges({"--limit": (limit, _GE1), "--timeout": (timeout, _GT0)})
    _check_output("--out", out)
    if qemu and renode:
        raise ConfigError("--qemu and --renode both given", hint="pick one backend")
    if cycles and renode:
        raise ConfigError("--cycles needs QEMU's execution trace", hint="drop --renode (QEMU is the default)")
    if external_ram and not renode:
        raise ConfigError("--external-ram needs --renode: QEMU's netduinoplus2 maps no memory on the FSMC",
                          hint="add --renode")
    if kernels not in ("dsp", "portable"):
        raise ConfigError(f"unknown --kernels {kernels!r}", hint="dsp or portable")
    if check:
        if renode:
            from .device.renode import renode_info

            i = renode_info()
            typer.echo(f"renode: {i['renode']} ({i['renode_version']})\nrenode-test: {i['renode_test']}\n"
                       f"python for renode-test: {i['python']} (robotframework {i['robotframework'] or 'MISSING'})")
            if i["robotframework"] is None:
                from .device.renode import ROBOT_DEPS_HINT

                raise ConfigError(f"{i['python']} cannot import Robot Framework, which renode-test needs",
                                  hint=ROBOT_DEPS_HINT)
        else:
            from .device.qemu import qemu_info

            i = qemu_info()
            typer.echo(f"qemu: {i['qemu']} ({i['version']}), machine {i['machine']}")
        return
    if export_dir is None:
        raise ConfigError("no export directory given", hint="asc-edge bench EXPORT_DIR (from `asc-edge export`)")
    run_bench(export_dir, data=data, split=split, limit=limit, backend="renode" if renode else "qemu", nn=kernels,
              out_dir=out, timeout_s=timeout, cache_dir=cache_dir, log=typer.echo, external_ram=external_ram,
              cycles=cycles)


@app.command()
@_errors_as_one_line
def flash(
    export_dir: Path = typer.Argument(..., help="Export directory from `asc-edge export --target cmsis-nn`."),
    clip: Path = typer.Option(..., help="WAV clip to embed; the board classifies it in a loop."),
    tool: str = typer.Option("auto", help="auto, pyocd or openocd."),
    target: str = typer.Option("stm32f405rg", help="stm32f405rg or stm32f407vg (same memory map)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Image directory (default <export>/board)."),
) -> None:
    """Build .elf/.bin/.hex of the board app (log-mel + model, class and timing on USART1) and flash
    an STM32F4 board through pyOCD or OpenOCD. Without a probe it says so and keeps the images."""
    from .device.flash import TARGETS, build_board_image, flash_image
    from .errors import ConfigError

    _check_output("--out", out)
    if tool not in ("auto", "pyocd", "openocd"):  # before the build, not after it
        raise ConfigError(f"unknown --tool {tool!r}", hint="auto, pyocd or openocd")
    if target.lower() not in TARGETS:
        raise ConfigError(f"unknown --target {target!r}", hint=f"use one of: {', '.join(TARGETS)}")
    if not clip.is_file():
        raise ConfigError(f"--clip {clip}: audio file not found", hint="pass the path of a WAV clip to embed")

    image = build_board_image(export_dir, clip, out)
    typer.echo(f"built {image.elf}, {image.bin}, {image.hex} (flash {image.flash_bytes:,} B, RAM {image.ram_bytes:,} B)")
    res = flash_image(image.hex, tool=tool, target=target)
    typer.echo(f"flashed {res['image']} with {res['tool']} ({res['target']}, probe {res['probe']}); "
               "the board prints the class and timing on USART1 (115200 8N1)")


@app.command("import")
@_errors_as_one_line
def import_ckpt(
    ckpt: Path = typer.Argument(..., help="CPJKU DCASE 2024 baseline-family Lightning .ckpt (e.g. SNTL-NTU)."),
    out: Optional[Path] = typer.Option(None, "--out",
                                       help="Output .ckpt or folder (default runs/imported/<ckpt stem>/model.ckpt)."),
) -> None:
    """Import a CPJKU-baseline-family checkpoint as an asc-edge checkpoint (for evaluate / export)."""
    from .models.cpjku import import_cpjku_checkpoint

    _check_output("--out", out, kind="file" if out is not None and out.suffix == ".ckpt" else "dir")
    import_cpjku_checkpoint(ckpt, out, log=typer.echo)


@app.command()
@_errors_as_one_line
def prune(
    run: Path = typer.Argument(..., help="Run directory from `asc-edge train` (an AI4EDGE SM model: sm1, sm2, sm3)."),
    target_params: Optional[int] = typer.Option(None, help="Keep the same fraction of every conv's filters, the "
                                                "largest that leaves at most N parameters."),
    filters: Optional[str] = typer.Option(None, help="Filters to keep per conv, comma-separated "
                                          "(SM3 as AI4EDGE: 20,22,22,24,24,16)."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs (default: the run's)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Parent folder of <run>_pruned (default: the run's)."),
    progress: bool = typer.Option(True, help="Progress bars."),
    logger: Optional[str] = typer.Option(None, help="Fine-tuning logs in <run>_pruned/logs/: tensorboard, csv or "
                                         "none (default: the run's setting; local files only)."),
) -> None:
    """Structured L1-norm filter pruning (AI4EDGE): drop each conv's smallest-L1 filters, rebuild a smaller
    dense model and fine-tune it with the run's own recipe (KD included) into <run>_pruned."""
    from .errors import ConfigError

    _check_ranges({"--target-params": (target_params, _GE1), "--epochs": (epochs, _GE1)})
    _check_output("--out", out)
    _check_logger(logger)
    if (target_params is None) == (filters is None):
        raise ConfigError("give exactly one of --target-params and --filters",
                          hint="e.g. --filters 20,22,22,24,24,16 or --target-params 61200")
    _setup_logging()
    from .prune import parse_filters, prune_run

    counts = parse_filters(filters) if filters is not None else None
    new_run, report = prune_run(run, filters=counts, target_params=target_params, epochs=epochs, out=out,
                                progress=progress, logger=logger, log=typer.echo)
    if new_run is not None:
        m = json.loads((new_run / "metrics.json").read_text())
        b, a = report["before"], report["after"]
        typer.echo(f"run: {new_run}")
        typer.echo(f"params {b['params']:,} -> {a['params']:,}, MACs {b['macs']:,} -> {a['macs']:,}; "
                   f"test macro accuracy after fine-tuning {m['macro_accuracy']:.4f}")


@app.command()
@_errors_as_one_line
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON instead of lines."),
) -> None:
    """Check every tool the commands need: OK or MISSING, with the line that installs it (installs nothing).

    Exit status 0 when the core commands (train, evaluate, export, bench on QEMU) have all they need, else 1.

    Optional tools (bench --renode, flash, transformer teachers) do not change the exit status."""
    from .doctor import exit_status, format_report, run_checks, to_json

    checks = run_checks()
    if as_json:
        typer.echo(json.dumps(to_json(checks), indent=2))
    else:
        for line in format_report(checks):
            typer.echo(line)
    if exit_status(checks):
        raise typer.Exit(1)



@app.command()
@_errors_as_one_line
def submit(
    runs: List[Path] = typer.Argument(..., help="Five run directories (or export folders), split5 split10 split25 "
                                      "split50 split100, in that order."),
    eval_dir: Path = typer.Option(..., "--eval", help="Evaluation audio folder (official: <index>.wav; other names "
                                  "are numbered 0..N-1 and listed in filename_map.csv)."),
    label: str = typer.Option(..., "--label", help="Submission label Lastname_Institute_task1_N (N in 1..4)."),
    out: Path = typer.Option(..., "--out", help="Output folder: task1/<Label>/, <Label>.zip, submission.json."),
    meta_yaml: Optional[Path] = typer.Option(None, "--meta-yaml", help="Partial meta YAML (names, authors, "
                                             "results, energy ...) merged over the measured one."),
    use_float: bool = typer.Option(False, "--float", help="Predict with the float PyTorch models instead of int8."),
    n_eval_files: int = typer.Option(135_730, "--n-eval-files", help="Files the package must list (the official "
                                     "2024 evaluation set: 135,730; a trial package: its folder's count)."),
    calib_data: Optional[Path] = typer.Option(None, "--calib-data", help="int8 calibration data (default: each "
                                              "run's training data, else ../shared/data)."),
    calib_split: Optional[str] = typer.Option(None, "--calib-split", help="Its split (default 100)."),
    bench_json: Optional[Path] = typer.Option(None, "--bench", help="An `asc-edge bench` bench.json: device RAM, "
                                              "flash, instructions go into the meta YAML's free text."),
) -> None:
    """DCASE 2024 Task 1 submission package: per-split outputs, meta YAML and zip, checked with the official
    validator's rules (int8 predictions through tflite-micro unless --float)."""
    from .submit import SPLITS, build_submission

    _check_output("--out", out)
    _check_ranges({"--n-eval-files": (n_eval_files, _GE1)})
    _setup_logging()
    rep = build_submission(runs, eval_dir, label, out, meta_yaml=meta_yaml,
                           float_splits=SPLITS if use_float else (), n_eval_files=n_eval_files,
                           calib_data=calib_data, calib_split=calib_split, bench_json=bench_json, log=typer.echo)
    typer.echo(f"submission: {rep['package']}")


@app.command()
@_errors_as_one_line
def report(
    target: Path = typer.Argument(..., help="A run folder (from `asc-edge train`) or an export folder "
                                  "(from `asc-edge export`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default RUN_OR_EXPORT/report.html)."),
    run: Optional[Path] = typer.Option(None, "--run", help="The run to show with an export (default: the folder of "
                                       "the export's checkpoint, when that is a run)."),
    bench_json: Optional[Path] = typer.Option(None, "--bench", help="A bench.json or its folder (default: "
                                              "EXPORT/bench/ or RUN/bench/ when there)."),
) -> None:
    """One self-contained HTML page (embedded PNGs, no JavaScript, no network): training curves, confusion
    matrix, per-device accuracy, complexity vs budget, int8 vs float, device instructions and RAM / flash."""
    from .report.html import write_report

    _check_output("--out", out, kind="file")
    typer.echo(f"report: {write_report(target, out=out, run=run, bench=bench_json)}")


@app.command()
@_errors_as_one_line
def tune(
    data: Path = typer.Option(..., help="Dataset root in TAU Urban Acoustic Scenes 2022 Mobile layout."),
    split: str = typer.Option("25", help="Train subset searched on: 5, 10, 25, 50 or 100; a fraction of its "
                              "recordings validates (the test split is never used to choose)."),
    out: Path = typer.Option(Path("tune"), help="Study folder (study.db, trials/, finalists/, study.json, "
                             "pareto.md/png, best_recipe.yaml); the same command resumes it."),
    trials: int = typer.Option(20, help="Trials to train (samples rejected before training do not count)."),
    epochs: int = typer.Option(10, help="Epochs of a trial that Hyperband does not stop."),
    budget_params: int = typer.Option(128_000, help="Parameter limit (DCASE Task 1: 128 kB at int8)."),
    budget_macs: float = typer.Option(30e6, help="MACs per inference limit (DCASE Task 1: 30 M)."),
    max_ram_bytes: Optional[int] = typer.Option(None, help="Device RAM limit in bytes (arena + stack + static)."),
    max_flash_bytes: Optional[int] = typer.Option(None, help="Device flash limit in bytes (whole image)."),
    max_instructions: Optional[int] = typer.Option(None, help="Instructions per inference limit, audio -> logits."),
    space: Optional[Path] = typer.Option(None, help="YAML of SearchSpace fields to change (asc_edge/tune/space.py), "
                                         "e.g. `sample_rates: [16000]`, `n_mels: [96, 128]`."),
    families: Optional[str] = typer.Option(None, help="Model families searched, comma-separated: cp-mobile, sm "
                                           "(default: the space's, both)."),
    val_fraction: float = typer.Option(0.2, help="Fraction of the train split's recordings held out to validate."),
    finalists: int = typer.Option(4, help="At most this many trials (the accuracy-vs-MACs front) are exported "
                                  "and benched on the emulated STM32F405."),
    bench_clips: int = typer.Option(5, help="Test clips each finalist runs on the device (bit-exactness)."),
    batch_size: int = typer.Option(16, help="Batch size of every trial (a split25 of a few hundred clips "
                                   "needs small batches to take enough steps in a short run)."),
    seed: int = typer.Option(0, help="Sampler seed and each trial's training seed."),
    cache_dir: Optional[Path] = typer.Option(None, help="Feature cache (default ~/.cache/asc-edge)."),
    progress: bool = typer.Option(False, help="Lightning progress bars per trial."),
) -> None:
    """Hardware-aware search (Optuna TPE + Hyperband) over frontend, model size and recipe under the DCASE
    budget and device limits; finalists exported and benched; Pareto front of accuracy vs device cost."""
    from .errors import ConfigError

    _check_ranges({"--trials": (trials, _GE1), "--epochs": (epochs, _GE1), "--budget-params": (budget_params, _GE1),
                   "--budget-macs": (budget_macs, _GE1), "--max-ram-bytes": (max_ram_bytes, _GE1),
                   "--max-flash-bytes": (max_flash_bytes, _GE1), "--max-instructions": (max_instructions, _GE1),
                   "--finalists": (finalists, _GE0), "--bench-clips": (bench_clips, _GE1),
                   "--batch-size": (batch_size, _GE1), "--seed": (seed, _SEED),
                   "--val-fraction": (val_fraction, {"gt": 0, "le": 0.9})})
    _check_output("--out", out)
    from .tune import SearchSpace, TuneSettings, run_tune

    search = SearchSpace.from_yaml(space) if space is not None else SearchSpace()
    if families is not None:
        fams = tuple(f.strip() for f in families.split(",") if f.strip())
        if not fams or set(fams) - {"cp-mobile", "sm"}:
            raise ConfigError(f"--families {families!r}: unknown family", hint="use cp-mobile, sm or cp-mobile,sm")
        search = dataclasses.replace(search, families=fams)
    _setup_logging()

    settings = TuneSettings(
        data=str(data), split=split.removeprefix("split"), out=str(out), trials=trials, epochs=epochs,
        batch_size=batch_size, val_fraction=val_fraction, seed=seed, budget_params=budget_params,
        budget_macs=int(budget_macs), max_ram_bytes=max_ram_bytes, max_flash_bytes=max_flash_bytes,
        max_instructions=max_instructions, finalists=finalists, bench_clips=bench_clips,
        cache_dir=str(cache_dir) if cache_dir else None, progress=progress, space=search)
    try:
        result = run_tune(settings, log_fn=typer.echo)
    except KeyboardInterrupt:
        typer.echo(f"the study in {out} keeps its finished trials: run the same command again to resume", err=True)
        raise
    c = result["counts"]
    typer.echo(f"{c['complete'] + c['pruned']} trials trained, {c['infeasible']} rejected before training; "
               f"Pareto front: trials {result['front']}; best: {result['best']}")
    typer.echo(f"report: {out / 'pareto.md'}, {out / 'pareto.png'}, {out / 'study.json'}"
               + (f"; recipe: {out / 'best_recipe.yaml'}" if result["best"] is not None else ""))


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
