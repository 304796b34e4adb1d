"""Model registry: every architecture asc-edge trains is built by name.

>>> model = build_model("cp-mobile", n_classes=10)      # DCASE 2024 baseline student

A model family is one module of this package that registers its names with :func:`register_model`
(a factory, its defaults written out, role, source and the family's log-mel preset); every module
here is imported below, so adding a family touches no other file. ``asc-edge complexity --list``
shows them.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: factory, default keyword arguments, role, source and the name of
    the log-mel preset (:data:`asc_edge.features.PRESETS`) its report uses."""

    factory: Callable[..., nn.Module]
    defaults: dict = field(default_factory=dict)
    role: str = "student"      # "student" (must fit the Task 1 budget) or "teacher"
    source: str = ""
    frontend: str = "dcase2024"


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, factory: Callable[..., nn.Module], defaults: dict | None = None, *,
                   role: str = "student", source: str = "", frontend: str = "dcase2024") -> None:
    """Register ``name`` (called by the family modules at import).

    Raises:
        ValueError: the name is taken."""
    if name in MODELS:
        raise ValueError(f"model {name!r} registered twice")
    MODELS[name] = ModelSpec(factory, dict(defaults or {}), role, source, frontend)


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


for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):  # the families register themselves
    importlib.import_module(f"{__name__}.{_m.name}")

from .cp_mobile import CPMobile, CPMobileConfig  # noqa: E402
from .cp_resnet import CPResNet, CPResNetConfig  # noqa: E402
from .ensemble import LogitEnsemble  # noqa: E402

__all__ = ["MODELS", "ModelSpec", "register_model", "build_model", "get_spec", "model_names", "CPMobile",
           "CPMobileConfig", "CPResNet", "CPResNetConfig", "LogitEnsemble"]
