"""``asc-edge train-teachers``: train a teacher ensemble of the seed systems in one command.

Each ensemble is a list of members; a member is a set of :class:`~asc_edge.train.config.TrainConfig`
settings (``model``, ``model_kwargs``, ``frontend``, ``augment``, ...) plus a short ``member`` name.
Every member is trained with :func:`asc_edge.train.run.train` on the same data, split and seed, into
``<out>/<ensemble>_split<N>_<member>_seed<S>/``; afterwards ``<out>/<ensemble>_split<N>_teachers.json``
(``<ensemble>-<preset>_...`` when ``--frontend`` replaces the members' presets)
lists the checkpoints, each member's test macro accuracy and that of the logit-averaged ensemble
(what a student distilled with ``--teacher A --teacher B ...`` learns from).

Ensembles (:data:`ENSEMBLES`):

``sntl``         SNTL-NTU DCASE 2024 (Yeo et al., arXiv 2409.11964): three 32-BCBL CP-Mobile teachers
                 (``cp-mobile``, ``base_channels`` 32) on the 44.1 kHz input of the report
                 (preset ``44k-256``), trained with Freq-MixStyle only (DIR off), device impulse
                 responses only (Freq-MixStyle off) and both. Probabilities and α are the project's
                 DCASE 2024 baseline values (Freq-MixStyle p 0.4, α 0.3; DIR p 0.6): the report's
                 PaSST members need pretrained weights and are not part of it (use
                 ``--teacher-logits`` for them).
``cpjku``        CP-JKU (DCASE 2023/2024 teachers trainable on a CPU): CP-ResNet and the wide CP-Mobile.
``ai4edge-ova``  AI4EDGE DCASE 2023: the one-vs-all teacher ``sm1-ova`` (ten binary SM1 experts whose
                 outputs form the 10-class teacher).

The DIR members need the device impulse responses (``<data>/dirs`` or ``--dirs``).
"""

from __future__ import annotations

import copy
import json
import logging
import shlex
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError

__all__ = ["ENSEMBLES", "member_configs", "train_teachers", "teachers_json_path"]

log = logging.getLogger(__name__)

_SNTL_BASE = {"model": "cp-mobile", "model_kwargs": {"base_channels": 32}, "frontend": "44k-256"}

#: name → members; each member: ``member`` (short name for the run directory) + TrainConfig settings
#: (``augment`` a mapping of AugmentConfig fields; ``frontend`` defaults to the model's preset).
ENSEMBLES: dict[str, list[dict[str, Any]]] = {
    "sntl": [
        {"member": "mixstyle", **_SNTL_BASE, "augment": {"mixstyle_p": 0.4, "dir_p": 0.0}},
        {"member": "dir", **_SNTL_BASE, "augment": {"mixstyle_p": 0.0, "dir_p": 0.6}},
        {"member": "mixstyle-dir", **_SNTL_BASE, "augment": {"mixstyle_p": 0.4, "dir_p": 0.6}},
    ],
    "cpjku": [
        {"member": "cp-resnet", "model": "cp-resnet"},
        {"member": "cp-mobile-wide", "model": "cp-mobile-wide"},
    ],
    "ai4edge-ova": [
        {"member": "sm1-ova", "model": "sm1-ova"},
    ],
}


def _split_number(split: str) -> str:
    return str(split).removeprefix("split")


def _label(ensemble: str, frontend: str | None) -> str:
    """File-name stem of an ensemble: its name, plus the preset when one replaces the members' own."""
    return f"{ensemble}-{frontend}" if frontend else ensemble


def teachers_json_path(out: str | Path, ensemble: str, split: str, frontend: str | None = None) -> Path:
    """``<out>/<ensemble>_split<N>_teachers.json`` (``<ensemble>-<frontend>_...`` with a ``frontend`` override)."""
    return Path(out) / f"{_label(ensemble, frontend)}_split{_split_number(split)}_teachers.json"


def member_configs(ensemble: str, data: str | Path, split: str, *, epochs: int | None = None,
                   out: str | Path = "runs/teachers", seed: int = 0, frontend: str | None = None,
                   **common: Any) -> list[tuple[str, Any]]:
    """``[(member name, TrainConfig)]`` of ``ensemble``, every config checked (``check()``, the model and
    frontend names) before anything is trained.

    ``frontend``: one log-mel preset for every member instead of the ensemble's own (an online-KD
    teacher must share the student's, e.g. ``kt-288`` for the KT recipe).

    ``common``: further TrainConfig settings shared by all members (``splits_dir``, ``cache_dir``,
    ``batch_size``, ``dirs``, ``progress``, ...); ``None`` values are left at the defaults.

    Raises:
        ConfigError: unknown ensemble, unknown model / frontend of a member, or settings that clash.
    """
    from ..augment import AugmentConfig
    from ..features import get_frontend
    from ..models import get_spec
    from .config import TrainConfig

    if ensemble not in ENSEMBLES:
        raise ConfigError(f"unknown teacher ensemble {ensemble!r}", hint=f"use one of {', '.join(ENSEMBLES)}")
    common = {k: v for k, v in common.items() if v is not None}
    configs = []
    for spec in ENSEMBLES[ensemble]:
        spec = copy.deepcopy(spec)
        member = spec.pop("member")
        model = spec.pop("model")
        own = spec.pop("frontend", None) or get_spec(model).frontend  # unknown model → ConfigError
        member_frontend = frontend or own
        get_frontend(member_frontend)
        augment = AugmentConfig.from_dict(spec.pop("augment", {}))
        kw = {**spec, **common}
        if epochs is not None:
            kw["epochs"] = epochs
        cfg = TrainConfig(data=str(data), split=_split_number(split), model=model, frontend=member_frontend,
                          augment=augment, seed=seed, out=str(out),
                          name=f"{_label(ensemble, frontend)}_split{_split_number(split)}_{member}_seed{seed}", **kw)
        cfg.check()
        configs.append((member, cfg))
    return configs


def _check_dirs(cfg) -> None:
    """The DIR folder of a member that uses DIR augmentation, checked before any member trains (the
    same errors :func:`asc_edge.data.load_dirs` raises when the member gets there)."""
    from ..errors import DataError

    if cfg.augment.dir_p <= 0:
        return
    d = (Path(cfg.dirs) if cfg.dirs else Path(cfg.data) / "dirs").expanduser()
    if not d.is_dir():
        raise DataError(f"{d}: device impulse response folder not found",
                        hint="pass the folder of DIR WAVs with --dirs (e.g. ../shared/data/dirs)")
    if not any(p.is_file() and p.suffix.lower() == ".wav" for p in d.iterdir()):
        raise DataError(f"{d}: no *.wav device impulse responses in this folder",
                        hint="copy the MicIRP DIR WAVs there (e.g. from ../shared/data/dirs) or pass --dirs")


def _check_data(cfg) -> None:
    """Read the train and test splits once before the first member trains, so that bad data is one
    error before any training (the features land in the cache that :func:`~asc_edge.train.run.train`
    reads next)."""
    from ..features import default_cache_dir, get_frontend, load_split_data

    cache = (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()) / "features"
    fe = get_frontend(cfg.frontend)
    train_split = load_split_data(cfg.data, cfg.split, fe, splits_dir=cfg.splits_dir, cache_dir=cache,
                                  progress=cfg.progress)
    load_split_data(cfg.data, "test", fe, splits_dir=cfg.splits_dir, labels=train_split.labels, cache_dir=cache,
                    progress=cfg.progress)


def _ensemble_accuracy(checkpoints: list[Path], cfg) -> float | None:
    """Test macro accuracy of the logit-averaged members (None when they cannot be averaged: other
    frontends or label sets)."""
    from ..checkpoint import load_ensemble
    from ..errors import CheckpointError
    from ..features import default_cache_dir, load_split_data
    from .evaluate import evaluate_loaded

    try:
        ens = load_ensemble([str(c) for c in checkpoints])
    except CheckpointError as exc:
        log.warning("ensemble accuracy not computed: %s", exc)
        return None
    cache_root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    test = load_split_data(cfg.data, "test", ens.frontend, splits_dir=cfg.splits_dir, labels=ens.labels,
                           cache_dir=cache_root / "features", progress=cfg.progress)
    return float(evaluate_loaded(ens, test)["macro_accuracy"])


def train_teachers(ensemble: str, data: str | Path, split: str, *, epochs: int | None = None,
                   out: str | Path = "runs/teachers", seed: int = 0, frontend: str | None = None,
                   reuse: bool = False, echo: Callable[[str], None] = log.info, **common: Any) -> dict | None:
    """Train every member of ``ensemble`` and write :func:`teachers_json_path`; returns its content
    (``None`` in non-zero DDP ranks, which write nothing).

    ``reuse``: keep a member's run directory that was trained with the identical config (resume an
    interrupted ensemble). ``frontend``, ``common``: see :func:`member_configs`.

    Raises:
        ConfigError, DataError, CheckpointError: as :func:`asc_edge.train.run.train`; all member
            configs are checked before the first is trained.
    """
    from ..report.io import write_json_atomic
    from .run import reusable_run, train

    configs = member_configs(ensemble, data, split, epochs=epochs, out=out, seed=seed, frontend=frontend, **common)
    for _, cfg in configs:
        _check_dirs(cfg)
    _check_data(configs[0][1])
    members = []
    for i, (member, cfg) in enumerate(configs, 1):
        run_dir = Path(cfg.out) / cfg.run_name()
        if reuse and reusable_run(cfg, run_dir):
            echo(f"[{i}/{len(configs)}] {member}: reusing {run_dir} (same config)")
        else:
            echo(f"[{i}/{len(configs)}] {member}: training {cfg.model} ({cfg.epochs} epochs) → {run_dir}")
            run_dir = train(cfg)
            if run_dir is None:
                return None  # non-zero DDP rank
        metrics = json.loads((run_dir / "metrics.json").read_text())
        members.append({"member": member, "model": cfg.model, "model_kwargs": cfg.model_kwargs,
                        "frontend": cfg.frontend, "augment": cfg.augment.to_dict(), "run_dir": str(run_dir),
                        "checkpoint": str(run_dir / "model.ckpt"),
                        "test_macro_accuracy": float(metrics["macro_accuracy"])})
        echo(f"[{i}/{len(configs)}] {member}: test macro accuracy {metrics['macro_accuracy']:.4f}")
    checkpoints = [Path(m["checkpoint"]) for m in members]
    first = configs[0][1]
    ens_acc = _ensemble_accuracy(checkpoints, first) if len(checkpoints) > 1 else members[0]["test_macro_accuracy"]
    result = {
        "ensemble": ensemble, "frontend_override": frontend, "data": str(data), "split": _split_number(split),
        "seed": seed,
        "epochs": first.epochs, "members": members, "ensemble_test_macro_accuracy": ens_acc,
        "teacher_flags": " ".join(f"--teacher {shlex.quote(str(c))}" for c in checkpoints),
    }
    path = teachers_json_path(out, ensemble, split, frontend)
    write_json_atomic(path, result)
    result["json"] = str(path)
    return result
