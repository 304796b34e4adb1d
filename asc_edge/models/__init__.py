"""Model registry: every architecture asc-edge trains is built by name.

>>> model = build_model("cp-mobile", n_classes=10)      # DCASE 2024 baseline student

Names map to a factory and its defaults; ``asc-edge complexity NAME`` shows their cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import ConfigError
from .cp_mobile import CPMobile, CPMobileConfig
from .cp_resnet import CPResNet, CPResNetConfig
from .ensemble import LogitEnsemble


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: factory, default keyword arguments, role and source."""

    factory: Callable[..., nn.Module]
    defaults: dict = field(default_factory=dict)
    role: str = "student"      # "student" (must fit the Task 1 budget) or "teacher"
    source: str = ""


MODELS: dict[str, ModelSpec] = {
    "cp-mobile": ModelSpec(CPMobile, {}, "student",
                           "DCASE 2024 Task 1 baseline (Schmid et al.): 32 base ch., ×1.8, expansion 2.1"),
    "cp-mobile-24": ModelSpec(CPMobile, {"base_channels": 24}, "student",
                              "24-base-channel CP-Mobile (SNTL-NTU DCASE 2024 '24-BCBL')"),
    "cp-mobile-wide": ModelSpec(CPMobile, {"base_channels": 64, "channels_multiplier": 2.0,
                                           "expansion_rate": 3.0}, "teacher",
                                "wider CP-Mobile teacher (CP-JKU DCASE 2023 used widths up to 128)"),
    "cp-resnet": ModelSpec(CPResNet, {}, "teacher",
                           "CP-ResNet (Koutini et al., DCASE 2019 / TASLP 2021)"),
}


def model_names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones).
    """
    spec = MODELS.get(name)
    if spec is None:
        raise ConfigError(f"unknown model {name!r}", hint=f"choose one of: {', '.join(model_names())}")
    return spec


def build_model(name: str, n_classes: int = 10, **kwargs) -> nn.Module:
    """Build a registered model with its defaults, ``n_classes`` outputs and ``kwargs`` overrides.

    Input of every model: ``(batch, 1, n_mels, frames)``; output logits ``(batch, n_classes)``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones) or bad keyword.
    """
    spec = get_spec(name)
    try:
        return spec.factory(**{**spec.defaults, **kwargs, "n_classes": n_classes})
    except TypeError as exc:
        raise ConfigError(f"bad settings for model {name!r}: {exc}",
                          hint="check the keyword names of its config dataclass") from None


__all__ = ["MODELS", "ModelSpec", "build_model", "get_spec", "model_names", "CPMobile", "CPMobileConfig",
           "CPResNet", "CPResNetConfig", "LogitEnsemble"]
