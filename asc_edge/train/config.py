"""All training settings in one dataclass; serialised into every run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..augment import AugmentConfig


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
    frontend: str = "dcase2024"                 # asc_edge.features.PRESETS name
    epochs: int = 100
    batch_size: int = 64                        # baseline: 256 on the 139k-clip split100; 64 suits ~1k clips
    lr: float = 0.005                           # DCASE24 baseline --lr 0.005
    weight_decay: float = 0.0001                # DCASE24 baseline --weight_decay 0.0001
    warmup_epochs: float = 5.0                  # linear warm-up, then cosine decay to 0 (per step)
    seed: int = 0
    teachers: list[str] = field(default_factory=list)  # checkpoints; several are logit-averaged
    kd_lambda: float = 0.02                     # KT report eq. 3: weight of the label loss
    kd_tau: float = 2.0                         # KT report eq. 3: temperature
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dirs: str | None = None                     # device impulse responses (default: <data>/dirs)
    out: str = "runs"
    name: str | None = None                     # run directory name (default derived from the settings)
    cache_dir: str | None = None                # feature/teacher cache (default: ~/.cache/asc-edge)
    val_every: int = 5                          # epochs between validation passes on the test split
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    progress: bool = True

    def run_name(self) -> str:
        """Deterministic default run name, identical in every DDP process."""
        if self.name:
            return self.name
        kd = "kd" if self.teachers else "ce"
        split = self.split.removeprefix("split")
        return f"{self.model}_split{split}_{kd}_seed{self.seed}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["augment"] = AugmentConfig.from_dict(d.get("augment", {}))
        return cls(**d)
