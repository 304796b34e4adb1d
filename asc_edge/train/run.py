"""``asc-edge train``: from a TAU-layout dataset to a run directory.

Run directory (``<out>/<name>/``), written only when training finished, via a temporary sibling
directory renamed into place (no half-written checkpoint on Ctrl-C or crash):

- ``model.ckpt``       Lightning checkpoint (``state_dict`` with ``model.*`` keys + ``hyper_parameters``)
- ``metrics.json``     test-split metrics of the final model (macro / per-class / per-device accuracy, log loss)
- ``report.json``      what produced it: config, complexity, versions, git commit, wall time
- ``history.json``     per-epoch train loss, learning rate, validation loss / macro accuracy
- ``confusion_matrix.png``, ``training_curves.png``
- ``logs/``            Lightning's experiment log (``--logger``): TensorBoard event files (default) or
                       ``metrics.csv``; written during training into the temporary sibling, so it is
                       there only when the run is complete (none with ``--logger none``)
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from ..checkpoint import LoadedModel, load_checkpoint, load_ensemble, predict_logits
from ..complexity import check_budget, measure
from ..data import load_dirs
from ..distill.teacher_cache import TeacherLogitCache, clip_list_digest, file_sha256
from ..errors import CheckpointError, ConfigError
from ..report.model_card import git_commit
from ..features import FeatureCache, SplitData, default_cache_dir, get_frontend, load_split_data, load_split_waveforms
from ..features.splits import holdout_index, load_folder_features, subset
from ..models import get_spec
from ..report.io import write_json_atomic
from ..report.plots import plot_confusion_matrix, plot_training_curves
from .config import TrainConfig
from .data import training_loader
from .evaluate import evaluate_loaded
from .module import ASCModule

log = logging.getLogger(__name__)


def teacher_logits_for(teacher_paths: list[str], split: SplitData, data: str, split_name: str,
                       splits_dir: str | None, cache_root: Path, progress: bool = True) -> np.ndarray:
    """Offline KD targets: the (logit-averaged) teachers' logits ``(N, C)`` for ``split``'s clips,
    columns in ``split.labels`` order. Computed once and cached by (teacher file hashes, teacher
    frontend, clip list).

    Raises:
        CheckpointError: unreadable teacher, or a teacher whose label set differs from the data's.
    """
    # a run directory stands for its model.ckpt (as everywhere else)
    teacher_paths = [str(Path(p) / "model.ckpt") if Path(p).is_dir() else p for p in teacher_paths]
    teacher: LoadedModel = load_ensemble(teacher_paths)
    if set(teacher.labels) != set(split.labels):
        raise CheckpointError(f"teacher labels {list(teacher.labels)} differ from the data's {list(split.labels)}",
                              hint="distil only from teachers trained on the same label set")
    key_parts = {"teachers": sorted(file_sha256(p) for p in teacher_paths),
                 "frontend": teacher.frontend.key(),
                 "clips": clip_list_digest([c.filename for c in split.clips])}

    def compute() -> np.ndarray:
        feats = split.features
        if teacher.frontend != split.frontend or feats.shape[1:] == (0,):  # (N, 0): --features online
            feats = load_split_data(data, split_name, teacher.frontend, splits_dir=splits_dir,
                                    labels=split.labels, cache_dir=cache_root / "features",
                                    progress=progress).features
        return predict_logits(teacher.model, feats).numpy()

    logits = TeacherLogitCache(cache_root / "teacher_logits").get_or_compute(key_parts, compute)
    order = [teacher.labels.index(name) for name in split.labels]  # map by name, never by position
    return np.ascontiguousarray(logits[:, order])


def make_logger(kind: str, log_dir: Path):
    """Lightning logger for ``--logger kind`` (:data:`~asc_edge.train.config.LOGGERS`) writing into
    ``log_dir`` itself (no ``version_N`` sub-folder), created on the first write: ``tensorboard`` →
    TensorBoard event files + ``hparams.yaml``, ``csv`` → ``metrics.csv`` + ``hparams.yaml``, ``none``
    → ``False`` (no logger). Both are local files only; nothing goes over the network."""
    if kind == "none":
        return False
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    if kind == "csv":
        return CSVLogger(save_dir=str(log_dir), name="", version="")
    if kind == "tensorboard":
        _tensorboard_without_tensorflow()
        return TensorBoardLogger(save_dir=str(log_dir), name="", version="", default_hp_metric=False)
    raise ConfigError(f"unknown --logger {kind!r}", hint="use one of tensorboard, csv, none")


def _tensorboard_without_tensorflow() -> None:
    """Make TensorBoard's event writer use its bundled file I/O instead of TensorFlow's.

    With TensorFlow installed (the export environment), ``tensorboard.compat`` imports it for
    ``gfile`` alone: seconds of start-up, and CUDA / CPU-feature messages on stderr in every training
    run. TensorBoard's own switch for TensorFlow-free builds is the presence of the module
    ``tensorboard.compat.notf``; registered here unless TensorFlow is already loaded in this process.
    The event files are the same."""
    import sys
    import types

    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _partial_dir(out: Path, name: str) -> Path:
    """The hidden sibling ``.<name>.partial-<pid>`` a run directory is built in (logs during training,
    the rest by :func:`_write_run_dir`), renamed to ``<name>`` when complete."""
    return out / f".{name}.partial-{os.getpid()}"


def _load_init_weights(module: ASCModule, cfg: TrainConfig) -> None:
    """Copy ``cfg.init_checkpoint``'s weights into ``module.model`` (strict), read through
    :func:`~asc_edge.checkpoint.load_checkpoint` (same file checks and content hash).

    Raises:
        CheckpointError: the checkpoint cannot be loaded, or its weights do not fit ``cfg.model`` /
            ``cfg.model_kwargs`` (the message names the file)."""
    init = load_checkpoint(cfg.init_checkpoint)
    try:
        module.model.load_state_dict(init.model.state_dict(), strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).splitlines()[0:2])
        raise CheckpointError(f"{init.path}: init weights do not match {cfg.model!r} with model_kwargs "
                              f"{cfg.model_kwargs}: {first}",
                              hint="train with the model / model_kwargs the init checkpoint was written for") from None


def train(cfg: TrainConfig, callbacks: list | None = None) -> Path | None:
    """Train ``cfg.model`` on ``cfg.split`` and write the run directory; returns its path
    (``None`` in non-zero DDP ranks, which write nothing). ``callbacks``: extra Lightning callbacks
    (``asc-edge tune`` reports each validation to its Optuna pruner through one).

    Validation (every ``cfg.val_every`` epochs) runs on the test split, or, with ``cfg.val_fraction``
    > 0, on that fraction of the train split's recordings (:func:`~asc_edge.features.splits.holdout_index`),
    which are then left out of training; ``metrics.json`` is always the test split's, with
    ``val_macro_accuracy`` of the held-out part added in that case.

    Raises:
        DataError, ConfigError, CheckpointError: bad data, settings or teacher checkpoints.
    """
    t0 = time.time()
    cfg.check()
    for name in ("pytorch_lightning", "lightning_fabric"):  # Lightning sets INFO on import
        logging.getLogger(name).setLevel(logging.WARNING)
    frontend = get_frontend(cfg.frontend)
    role = get_spec(cfg.model).role  # unknown names fail before any audio is read
    cache_root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    online_features = cfg.features == "online"  # the loader yields waveforms, the module computes the log-mel
    train_split = load_split_data(cfg.data, cfg.split, frontend, splits_dir=cfg.splits_dir,
                                  cache_dir=cache_root / "features", progress=cfg.progress,
                                  with_features=not online_features)
    test_split = load_split_data(cfg.data, "test", frontend, splits_dir=cfg.splits_dir, labels=train_split.labels,
                                 cache_dir=cache_root / "features", progress=cfg.progress)
    n = len(train_split.targets)
    teacher = np.zeros((n, 0), dtype=np.float32)
    online = None
    if cfg.kd_scheme == "online":
        online = load_checkpoint(cfg.teachers[0])
        if online.frontend.to_dict() != frontend.to_dict() or list(online.labels) != list(train_split.labels):
            raise ConfigError(f"online KD: the teacher {online.path} uses another frontend or label set than the "
                              f"student (its {online.frontend.to_dict()} / {list(online.labels)})",
                              hint="train the teacher on the student's --frontend and data, or use offline KD")
    elif cfg.teachers:
        teacher = teacher_logits_for(cfg.teachers, train_split, cfg.data, cfg.split, cfg.splits_dir, cache_root,
                                     cfg.progress)
    elif cfg.teacher_logits:
        from ..distill.logits_file import load_teacher_logits

        teacher = load_teacher_logits(cfg.teacher_logits, [c.filename for c in train_split.clips],
                                      list(train_split.labels))

    val_split = test_split
    if cfg.val_fraction > 0:  # hold out recordings of the train split; teacher logits follow the same rows
        fit_idx, val_idx = holdout_index(train_split.clips, cfg.val_fraction, cfg.seed)
        if len(val_idx) == 0:
            raise ConfigError(f"--val-fraction {cfg.val_fraction}: split {cfg.split} of {cfg.data} has no scene "
                              "with two or more recordings to hold one out", hint="use --val-fraction 0 (test split)")
        train_split, val_split = subset(train_split, fit_idx), subset(train_split, val_idx)
        teacher = teacher[fit_idx]
        n = len(fit_idx)
    module = ASCModule(cfg.model, cfg.model_kwargs, list(train_split.labels), frontend.to_dict(), cfg.to_dict())
    if cfg.init_checkpoint:
        _load_init_weights(module, cfg)
    if online is not None:
        module.online_teacher = [online.model]
    if cfg.kd_scheme == "mean-teacher":
        import copy

        module.mean_teacher = [copy.deepcopy(module.model)]
        if cfg.unlabelled:
            module.unlabelled = torch.from_numpy(load_folder_features(cfg.unlabelled, frontend,
                                                                      cache_dir=cache_root / "features",
                                                                      progress=cfg.progress))
    complexity = measure(module.model, n_mels=frontend.n_mels, frames=frontend.n_frames)
    if role == "student":
        check_budget(complexity, "int8", allow_over_budget=True, what=f"student {cfg.model!r}")
    if (cfg.augment.dir_p > 0 or cfg.augment.waveform_augmentation) and not online_features:  # DIR, pitch, …
        module.waveforms = load_split_waveforms(train_split, frontend, cache_root / "features")
    if cfg.augment.dir_p > 0:
        module.dirs = load_dirs(Path(cfg.dirs) if cfg.dirs else Path(cfg.data) / "dirs", frontend.sample_rate)

    out, name = Path(cfg.out), cfg.run_name()
    tmp = _partial_dir(out, name)  # the logs go to tmp/logs while training; the rest is added at the end
    shutil.rmtree(tmp, ignore_errors=True)
    trainer = pl.Trainer(
        max_epochs=cfg.epochs, accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy=cfg.strategy, precision=cfg.precision, deterministic=True,
        logger=make_logger(cfg.logger, tmp / "logs"),
        log_every_n_steps=max(1, min(50, math.ceil(n / cfg.batch_size))), enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=cfg.progress, num_sanity_val_steps=0,
        check_val_every_n_epoch=max(1, min(cfg.val_every, cfg.epochs)), callbacks=list(callbacks or []))
    try:  # a crash, Ctrl-C or a non-zero DDP rank leave no half-written logs (after success tmp is renamed)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", ".*does not have many workers.*")
                warnings.filterwarnings("ignore", ".*GPU available but not used.*")
                warnings.filterwarnings("ignore", ".*LeafSpec.*")
                warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")  # DDP: shorter loaders
                no_teacher = np.zeros((len(val_split.targets), 0), np.float32)
                waves = FeatureCache(cache_root / "features", frontend) if online_features else None
                trainer.fit(module, training_loader(train_split, teacher, cfg.batch_size, True, cfg.seed,
                                                    cfg.num_workers, waveforms=waves),
                            training_loader(val_split, no_teacher, 256, False, cfg.seed, cfg.num_workers))
        except SystemExit:
            # Lightning turns Ctrl-C into sys.exit(1): re-raise it as the interrupt it is (CLI: exit 130).
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
        if not trainer.is_global_zero:
            return None

        module.model.eval()
        loaded = LoadedModel(model=module.model, model_name=cfg.model, labels=train_split.labels,
                             frontend=frontend, path=Path())
        metrics = evaluate_loaded(loaded, test_split)
        metrics["split"] = "test"
        if cfg.val_fraction > 0:
            val = evaluate_loaded(loaded, val_split)
            metrics["val_macro_accuracy"] = val["macro_accuracy"]
            metrics["n_val_clips"] = len(val_split.targets)
        history = [module.history[e] for e in sorted(module.history)]
        report = {
            "config": cfg.to_dict(), "frontend": frontend.to_dict(), "labels": list(train_split.labels),
            "complexity": complexity.to_dict(), "role": role, "n_train_clips": n,
            "n_test_clips": len(test_split.targets), "wall_time_s": round(time.time() - t0, 1),
            "git_commit": git_commit(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "pytorch_lightning": pl.__version__},
            "torch_threads": torch.get_num_threads(),
        }
        return _write_run_dir(out, name, module, trainer, metrics, report, history)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Settings that say where a run's by-products go, not what is trained: left out of :func:`reusable_run`.
_NOT_COMPARED = ("logger", "num_workers")


def reusable_run(cfg: TrainConfig, run_dir: Path) -> bool:
    """True when ``run_dir`` is a finished run trained with exactly ``cfg`` (compared through
    :class:`TrainConfig`, so runs recorded before a setting existed still match its default;
    ``logger`` and ``num_workers`` are not compared)."""
    report = Path(run_dir) / "report.json"
    if not (report.is_file() and (Path(run_dir) / "model.ckpt").is_file() and (Path(run_dir) / "metrics.json").is_file()):
        return False
    try:
        stored = TrainConfig.from_dict(json.loads(report.read_text())["config"]).to_dict()
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return False
    want = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_COMPARED}
    stored = {k: v for k, v in stored.items() if k not in _NOT_COMPARED}
    return json.loads(json.dumps(stored)) == json.loads(json.dumps(want))


def train_or_reuse(cfg: TrainConfig, reuse: bool) -> Path | None:
    """:func:`train`, unless ``reuse`` and :func:`reusable_run` finds that run already there."""
    run_dir = Path(cfg.out) / cfg.run_name()
    return run_dir if reuse and reusable_run(cfg, run_dir) else train(cfg)


def _write_run_dir(out: Path, name: str, module: ASCModule, trainer: pl.Trainer, metrics: dict, report: dict,
                   history: list[dict]) -> Path:
    """Write everything into ``.<name>.partial-<pid>`` (which may already hold the training logs,
    ``logs/``) and rename it to ``<name>`` at the end."""
    out.mkdir(parents=True, exist_ok=True)
    final = out / name
    tmp = _partial_dir(out, name)
    old = out / f".{name}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    tmp.mkdir(exist_ok=True)
    try:
        from ..checkpoint import state_dict_sha256

        state = module.state_dict()
        ckpt = {"state_dict": state, "hyper_parameters": dict(module.hparams),
                "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                "pytorch-lightning_version": pl.__version__,
                "asc_edge": {"state_dict_sha256": state_dict_sha256(state)}}  # checked by load_checkpoint
        torch.save(ckpt, tmp / "model.ckpt")
        write_json_atomic(tmp / "metrics.json", metrics)
        write_json_atomic(tmp / "report.json", report)
        write_json_atomic(tmp / "history.json", history)
        plot_confusion_matrix(metrics["confusion_matrix"], metrics["labels"], tmp / "confusion_matrix.png",
                              title=f"{name}: test macro accuracy {metrics['macro_accuracy']:.3f}")
        plot_training_curves(history, tmp / "training_curves.png")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            old.rename(final)  # put the previous run back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final
