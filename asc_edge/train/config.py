"""All training settings in one dataclass; serialised into every run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..augment import AugmentConfig
from ..errors import ConfigError

#: Distillation losses selectable with ``--kd-scheme`` (all use the cached or file teacher logits):
#: ``hinton`` — Hinton KD, :func:`asc_edge.distill.kd.kd_loss` (KT / CPJKU / Tencent; SNTL-NTU with
#: ``kd_convention="sntl"``); ``focusnet`` — SNTL-NTU's teacher-focused student,
#: :func:`asc_edge.distill.focusnet.focusnet_loss`; ``mse`` — ITMO's MSE between probabilities,
#: :func:`asc_edge.distill.mean_teacher.mse_kd_loss`; ``rrs`` — AI4EDGE's relational (RKD on the
#: logits, :func:`asc_edge.distill.relational.rkd_loss`) then response (Hinton) stages; ``online`` —
#: KT 2024's online KD: the ``--teacher`` network is fine-tuned alongside the student (deep mutual
#: learning, teacher learning rate × ``online_teacher_lr_factor``), no cached logits; ``mean-teacher`` —
#: ITMO 2024's first stage: the model trains against its own EMA copy (consistency on labelled +
#: ``unlabelled`` audio) and the run saves the EMA (mean) teacher, which a second run distils with
#: ``--kd-scheme mse --teacher``; no teacher input.
KD_SCHEMES = ("hinton", "focusnet", "mse", "rrs", "online", "mean-teacher")

#: ``kd_kl_average`` values: ``classes`` divides the per-example KL by the number of classes as the
#: CP-JKU code does (``kl_mean_over_classes=True`` in :func:`asc_edge.distill.kd.kd_loss`), ``batch``
#: is PyTorch's ``batchmean``. Measured on the bundled pack in ``benchmarks/results/kd_methods.md``.
KL_AVERAGES = ("classes", "batch")

#: ``--logger`` values (issue 17): Lightning's experiment logger, writing into ``<run>/logs/``:
#: ``tensorboard`` — TensorBoard event files (default; ``tensorboard --logdir runs/<name>/logs``),
#: ``csv`` — ``metrics.csv`` + ``hparams.yaml`` (no extra package), ``none`` — no logs (history.json
#: and the plots are written either way). All local files: no logger sends anything over the network.
LOGGERS = ("tensorboard", "csv", "none")

#: ``--features`` values (issue 17): ``cache`` — the data loader yields log-mel features from the
#: on-disk feature cache (default); ``online`` — it yields the resampled waveforms (one cache file
#: per clip, read per item, so the split need not fit in memory) and the LightningModule computes the
#: log-mel per batch on the training device, the spectrogram augmentations after it (the CPJKU way).
FEATURE_MODES = ("cache", "online")

#: ``--precision`` values passed to ``pl.Trainer(precision=...)``; ``16-mixed`` needs a GPU.
PRECISIONS = ("32", "16-mixed", "bf16-mixed")


@dataclass
class TrainConfig:
    """One training run. Defaults follow the DCASE 2024 Task 1 baseline where it applies.

    Paths are strings so the config serialises to JSON unchanged.
    """

    data: str                                   # dataset root (TAU 2022 Mobile layout)
    split: str = "100"                          # split5 … split100 ("5" … "100")
    splits_dir: str | None = None               # folder with split*.csv (default: data root or split_setup/)
    model: str = "cp-mobile"                    # registry name (asc_edge.models)
    model_kwargs: dict = field(default_factory=dict)
    frontend: str | dict = "dcase2024"          # asc_edge.features.PRESETS name, or FrontendConfig settings
    epochs: int = 100
    batch_size: int = 64                        # baseline: 256 on the 139k-clip split100; 64 suits ~1k clips
    lr: float = 0.005                           # DCASE24 baseline --lr 0.005
    weight_decay: float = 0.0001                # DCASE24 baseline --weight_decay 0.0001
    warmup_epochs: float = 5.0                  # linear warm-up, then cosine decay to 0 (per step)
    seed: int = 0
    teachers: list[str] = field(default_factory=list)  # checkpoints; several are logit-averaged
    kd_lambda: float = 0.02                     # KT report eq. 3: weight of the label loss
    kd_tau: float = 2.0                         # KT report eq. 3: temperature
    teacher_logits: str | None = None           # per-clip teacher logits file (asc_edge.distill.logits_file)
    kd_scheme: str = "hinton"                   # hinton | focusnet | mse | rrs (see KD_SCHEMES)
    kd_convention: str = "cpjku"                # hinton: cpjku λ·CE+(1−λ)τ²KL, sntl (1−λ)·CE+λτ²KL
    # hinton/rrs/online: how the KL term is averaged. "classes" = the CP-JKU code's
    # KLDivLoss(reduction="none").mean() (over examples *and* the C classes: the recipe the reports
    # copied, default); "batch" = batchmean, the true per-example KL (C× the teacher weight at one λ).
    kd_kl_average: str = "classes"
    rrs_relational_epochs: int | None = None    # rrs: stage-1 (relational) epochs (default: half)
    online_teacher_lr_factor: float = 0.01      # online: teacher lr = lr × this (KT 2024)
    unlabelled: str | None = None               # mean-teacher: folder of unlabelled audio (ITMO 2024)
    ema_decay: float = 0.999                    # mean-teacher: EMA decay of the teacher's weights
    consistency_max: float = 1.0                # mean-teacher: peak weight of the consistency loss
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dirs: str | None = None                     # device impulse responses (default: <data>/dirs)
    out: str = "runs"
    name: str | None = None                     # run directory name (default derived from the settings)
    cache_dir: str | None = None                # feature/teacher cache (default: ~/.cache/asc-edge)
    val_every: int = 5                          # epochs between validation passes (curves; tune's pruner)
    # > 0: validate on this fraction of the train split's recordings (features.splits.holdout_index,
    # seeded by `seed`), trained on the rest; 0: validate on the test split (curves only). `asc-edge
    # tune` steers its search with it, so the test split never picks a model.
    val_fraction: float = 0.0
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    progress: bool = True
    init_checkpoint: str | None = None          # start from this checkpoint's model.* weights (e.g. `asc-edge prune`)
    logger: str = "tensorboard"                 # experiment logs in <run>/logs/: tensorboard | csv | none (LOGGERS)
    features: str = "cache"                     # cache (on-disk log-mel) | online (log-mel per batch on the device)
    precision: str = "32"                       # 32 | 16-mixed (GPU only) | bf16-mixed (PRECISIONS)
    num_workers: int = 0                        # DataLoader worker processes (persistent when > 0)

    def run_name(self) -> str:
        """Deterministic default run name, identical in every DDP process."""
        if self.name:
            return self.name
        kd = "ce" if self.kd_scheme != "mean-teacher" else "mean-teacher"
        if self.teachers or self.teacher_logits:
            kd = "kd" if self.kd_scheme == "hinton" else f"kd-{self.kd_scheme}"
        split = self.split.removeprefix("split")
        return f"{self.model}_split{split}_{kd}_seed{self.seed}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    def check(self) -> None:
        """Raise ConfigError for settings that cannot work together (before any data is read)."""
        check_logger(self.logger)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction {self.val_fraction} outside [0, 1)",
                              hint="e.g. 0.2 validates on a fifth of the train split's recordings; 0 uses the test split")
        check_scale(self.features, self.precision, self.num_workers, self.accelerator)
        if self.kd_scheme not in KD_SCHEMES:
            raise ConfigError(f"unknown --kd-scheme {self.kd_scheme!r}",
                              hint=f"use one of {', '.join(KD_SCHEMES)}")
        if self.kd_convention not in ("cpjku", "sntl"):
            raise ConfigError(f"unknown --kd-convention {self.kd_convention!r}", hint="cpjku or sntl")
        if self.kd_kl_average not in KL_AVERAGES:
            raise ConfigError(f"unknown --kd-kl-average {self.kd_kl_average!r}",
                              hint="classes (CP-JKU code: mean over examples and classes) or batch (batchmean)")
        if self.teachers and self.teacher_logits:
            raise ConfigError("both --teacher checkpoints and --teacher-logits given",
                              hint="distil from one source: checkpoints (logits computed here) or a logits file")
        if self.kd_scheme == "online" and (len(self.teachers) != 1 or self.teacher_logits):
            raise ConfigError("--kd-scheme online needs exactly one --teacher checkpoint (it is fine-tuned with the "
                              "student)", hint="pass --teacher RUN_DIR once; logits files cannot be trained")
        if self.kd_scheme == "mean-teacher" and (self.teachers or self.teacher_logits):
            raise ConfigError("--kd-scheme mean-teacher trains its own EMA teacher: no --teacher / --teacher-logits",
                              hint="distil the resulting run afterwards with --kd-scheme mse --teacher RUN_DIR")
        if self.model_kwargs.get("checkpoint") is not None:
            from ..models import get_spec

            if "checkpoint" not in get_spec(self.model).defaults:
                raise ConfigError(f"--model-checkpoint: model {self.model!r} does not start from pretrained weights",
                                  hint="only the transformer teachers take one (--model passt or --model ast)")
        if self.rrs_relational_epochs is not None and not 0 <= self.rrs_relational_epochs <= self.epochs:
            raise ConfigError(f"--rrs-relational-epochs {self.rrs_relational_epochs} outside [0, {self.epochs}]",
                              hint="stage 1 (relational KD) takes part of the --epochs")
        if self.augment.fmax_aug_range > 0 or self.augment.time_mask > 0:
            from ..features import get_frontend

            self.augment.check_frontend(get_frontend(self.frontend))  # e.g. --fmax-aug-range above f_max

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["augment"] = AugmentConfig.from_dict(d.get("augment", {}))
        return cls(**d)


def check_logger(logger: str) -> None:
    """Raise ConfigError for a ``--logger`` that is not one of :data:`LOGGERS`, or ``tensorboard``
    without the tensorboard package (a project dependency; missing only in a partial install)."""
    if logger not in LOGGERS:
        raise ConfigError(f"unknown --logger {logger!r}", hint=f"use one of {', '.join(LOGGERS)}")
    if logger == "tensorboard":
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("--logger tensorboard: the tensorboard package is not installed",
                              hint="pip install 'tensorboard>=2.20,<3' (or bash scripts/setup.sh), "
                                   "or use --logger csv")


def check_scale(features: str, precision: str, num_workers: int, accelerator: str) -> None:
    """Raise ConfigError for a bad ``--features`` / ``--precision`` / ``--num-workers``, for
    ``--precision 16-mixed`` on the CPU (Lightning has no float16 mixed precision there) and for
    ``--accelerator gpu`` without a visible CUDA GPU."""
    if features not in FEATURE_MODES:
        raise ConfigError(f"unknown --features {features!r}", hint=f"use one of {', '.join(FEATURE_MODES)}")
    if str(precision) not in PRECISIONS:
        raise ConfigError(f"unknown --precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"--num-workers {num_workers} is out of range: it must be an integer >= 0",
                          hint="pass --num-workers as an integer >= 0 (0: load batches in the main process)")
    gpu = accelerator in ("gpu", "cuda")
    if gpu or (precision == "16-mixed" and accelerator != "cpu"):
        import torch

        if not torch.cuda.is_available():
            if gpu:
                raise ConfigError(f"--accelerator {accelerator}: no CUDA GPU is visible to PyTorch",
                                  hint="train with --accelerator cpu, or install a CUDA build of torch on a GPU machine")
            accelerator = "cpu"  # auto → CPU
    if precision == "16-mixed" and accelerator == "cpu":
        raise ConfigError("--precision 16-mixed needs a GPU (Lightning has no float16 mixed precision on the CPU)",
                          hint="use --precision bf16-mixed or 32 on the CPU, or --accelerator gpu")
