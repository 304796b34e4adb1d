"""The declared search space of ``asc-edge tune`` and its feasibility check before any training.

A trial is one point of the space, sampled through Optuna's ``Trial.suggest_*`` (the sampler — TPE by
default — decides where to look; nothing here searches): the log-mel frontend (sample rate, mel bands,
window and hop in milliseconds), the model family and its width knobs, and the recipe's main knobs
(peak learning rate, mixup α). :func:`trial_config` turns the point into an ordinary
:class:`~asc_edge.train.config.TrainConfig`, so ``asc-edge train --config`` reproduces any trial.

Feasibility (:func:`check_feasible`) is decided before training, at the cost of one forward pass of an
untrained model: parameters and MACs exactly (:func:`asc_edge.complexity.measure`, the DCASE counts),
and the device's RAM, flash and instructions by lower bounds that hold for every build the export can
make (so a trial rejected here could never meet the limit; the finalists' exact figures come from
``export`` + ``bench``):

* RAM ≥ max(frontend phase, widest layer) + the firmware's stack reserve, where the frontend phase
  holds one float32 FFT buffer (``n_fft`` × 4 B) beside the int8 model input, and a layer holds at
  least its int8 input and output at once;
* flash ≥ one byte per parameter (int8 weights; biases, code and tables only add);
* instructions ≥ MACs / 2 (``SMLAD``, the Cortex-M4's widest multiply-accumulate, does two MACs).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError

#: The firmware's fixed thread-stack reserve in bytes (``firmware/board/stm32f4`` linker script: the
#: ``stack reserve`` of every bench report); part of every image's RAM.
STACK_RESERVE_BYTES = 8192

#: FFT sizes the device frontend can run (32 … 4096 points: the sizes of its FFT tables,
#: ``firmware/frontend/asc_fe_fft_tables.h``, and of CMSIS-DSP's real-FFT split twiddles).
DEVICE_FFT_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class SearchSpace:
    """What ``asc-edge tune`` may choose. Each tuple is a categorical choice, each pair a range.

    Frontend: ``sample_rates`` (Hz), ``n_mels``, ``window_ms`` (Hann window length; ``n_fft`` is the
    next power of two ≥ the window, as in every preset), ``hop_ms`` (frame step). Models:
    ``families`` (``cp-mobile``: base channels, channels multiplier, expansion rate, blocks per stage
    as in the DCASE 2024 baseline's knobs; ``sm``: AI4EDGE's SM CNNs, four or six convs, a filter count
    per conv). Recipe: ``lr`` (peak AdamW learning rate, log scale), ``mixup_alpha``, and whether
    Freq-MixStyle (``mixstyle_p``) and device-impulse-response augmentation (``dir_p``) are on at the
    DCASE 2024 baseline's probabilities (with a few hundred clips they may cost more than they give).
    Defaults: around the DCASE 2024 baseline (32 kHz, 256 mels, 96 ms / 15.6 ms) and AI4EDGE's
    8 kHz / 140 mels, the ranges the five reports span.
    """

    sample_rates: tuple[int, ...] = (8000, 16000, 32000)
    n_mels: tuple[int, ...] = (64, 96, 128, 140, 192, 256)
    window_ms: tuple[float, ...] = (32.0, 64.0, 96.0, 128.0)
    hop_ms: tuple[float, ...] = (10.0, 15.625, 25.0, 32.0)
    families: tuple[str, ...] = ("cp-mobile", "sm")
    base_channels: tuple[int, int, int] = (8, 48, 8)              # low, high, step
    channels_multiplier: tuple[float, ...] = (1.5, 1.8, 2.1)
    expansion_rate: tuple[float, float] = (1.5, 3.0)
    cp_mobile_blocks: tuple[tuple[int, ...], ...] = ((2, 1, 1), (3, 2, 1), (3, 3, 2))
    sm_layers: tuple[int, ...] = (4, 6)
    sm_filters: tuple[int, int, int] = (8, 32, 4)                  # low, high, step
    lr: tuple[float, float] = (1e-3, 1e-2)
    mixup_alpha: tuple[float, ...] = (0.0, 0.3, 1.0)
    mixstyle_p: tuple[float, ...] = (0.0, 0.4)
    dir_p: tuple[float, ...] = (0.0, 0.6)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_yaml(cls, path) -> "SearchSpace":
        """A space from a YAML file of some of these fields (``asc-edge tune --space FILE``; the rest keep
        their defaults), e.g. ``sample_rates: [16000]`` / ``n_mels: [96, 128]`` / ``families: [cp-mobile]``.

        Raises:
            ConfigError: unreadable or invalid YAML, an unknown key, or a value that is not a list of
                choices (or a ``[low, high]`` / ``[low, high, step]`` range where the default is one).
        """
        import yaml
        from pathlib import Path

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read search space {path}: {str(e).splitlines()[0]}",
                              hint="give a readable YAML file of SearchSpace fields") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the search space must be a mapping of fields",
                              hint="e.g. `n_mels: [96, 128]` lines")
        defaults = cls()
        kw = {}
        for key, value in data.items():
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise ConfigError(f"{path}: unknown search-space key {key!r}",
                                  hint=f"valid keys: {', '.join(f.name for f in dataclasses.fields(cls))}")
            default = getattr(defaults, key)
            nested = key == "cp_mobile_blocks"
            if (not isinstance(value, list) or not value
                    or (nested and not all(isinstance(v, list) and v and all(isinstance(i, int) for i in v)
                                           for v in value))
                    or (not nested and not all(isinstance(v, (int, float, str)) and not isinstance(v, bool)
                                               for v in value))
                    or (key in ("base_channels", "sm_filters") and len(value) != 3)
                    or (key in ("expansion_rate", "lr") and len(value) != 2)):
                like = [list(b) for b in default] if nested else list(default)
                raise ConfigError(f"{path}: {key}: expected a list like {like}, got {value!r}",
                                  hint=f"fix {key!r} in the search space")
            kw[key] = tuple(tuple(v) for v in value) if nested else tuple(value)
        if set(kw.get("families", ())) - {"cp-mobile", "sm"}:
            raise ConfigError(f"{path}: families: unknown family in {list(kw['families'])}",
                              hint="families: cp-mobile, sm")
        return cls(**kw)


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def suggest(trial, space: SearchSpace) -> dict:
    """Sample one point: ``{"frontend": FrontendConfig settings, "model": name, "model_kwargs": …,
    "lr": …, "mixup_alpha": …, "mixstyle_p": …, "dir_p": …}`` (JSON-serialisable). Every choice is an
    Optuna parameter of ``trial``, so the study records it and the sampler learns from it."""
    sr = trial.suggest_categorical("sample_rate", list(space.sample_rates))
    n_mels = trial.suggest_categorical("n_mels", list(space.n_mels))
    win_ms = trial.suggest_categorical("window_ms", list(space.window_ms))
    hop_ms = trial.suggest_categorical("hop_ms", list(space.hop_ms))
    win = int(round(win_ms * sr / 1000))
    frontend = {"sample_rate": sr, "n_fft": _next_pow2(win), "win_length": win,
                "hop_length": int(round(hop_ms * sr / 1000)), "n_mels": n_mels}
    family = trial.suggest_categorical("family", list(space.families))
    if family == "cp-mobile":
        lo, hi, step = space.base_channels
        blocks = trial.suggest_categorical("n_blocks", ["-".join(map(str, b)) for b in space.cp_mobile_blocks])
        kwargs = {"base_channels": trial.suggest_int("base_channels", lo, hi, step=step),
                  "channels_multiplier": trial.suggest_categorical("channels_multiplier",
                                                                   list(space.channels_multiplier)),
                  "expansion_rate": round(trial.suggest_float("expansion_rate", *space.expansion_rate), 2),
                  "n_blocks": [int(b) for b in blocks.split("-")]}
        model = "cp-mobile"
    elif family == "sm":
        lo, hi, step = space.sm_filters
        n_layers = trial.suggest_categorical("sm_layers", list(space.sm_layers))
        filters = [trial.suggest_int(f"sm_filters_{i}", lo, hi, step=step) for i in range(n_layers)]
        kwargs = _sm_kwargs(filters)
        from ..features import get_frontend

        try:  # the SM dense layer depends on the feature shape; a bad frontend is reported by check_feasible
            fe = get_frontend(frontend)
            kwargs.update(n_mels=fe.n_mels, n_frames=fe.n_frames)
        except ConfigError:
            pass
        model = "sm1" if n_layers == 4 else "sm2"
    else:
        raise ConfigError(f"tune: unknown model family {family!r}", hint="families: cp-mobile, sm")
    return {"frontend": frontend, "model": model, "model_kwargs": kwargs,
            "lr": round(trial.suggest_float("lr", *space.lr, log=True), 6),
            "mixup_alpha": trial.suggest_categorical("mixup_alpha", list(space.mixup_alpha)),
            "mixstyle_p": trial.suggest_categorical("mixstyle_p", list(space.mixstyle_p)),
            "dir_p": trial.suggest_categorical("dir_p", list(space.dir_p))}


def _sm_kwargs(filters: list[int]) -> dict:
    """SM model settings with the filter counts of ``filters`` and the report's kernel sizes (SM1's for
    four convs, SM2/SM3's for six; :mod:`asc_edge.models.ai4edge_sm`)."""
    from ..models.ai4edge_sm import SM2_CONVS, SMConfig

    kernels = SMConfig().convs if len(filters) == 4 else SM2_CONVS
    return {"convs": [[f, kh, kw] for f, (_, kh, kw) in zip(filters, kernels)]}


def build_model(model: str, model_kwargs: dict, frontend) -> nn.Module:
    """The untrained model of a trial, run once on the frontend's feature shape. Raises ConfigError
    when the shape does not fit."""
    from ..models import build_model as registry_build

    try:
        m = registry_build(model, **model_kwargs)
        with torch.no_grad():
            m.eval()(torch.zeros(1, *frontend.shape))
    except (RuntimeError, ValueError, TypeError) as e:
        raise ConfigError(f"tune: {model} {model_kwargs} does not fit features {frontend.shape}: {e}",
                          hint="the space produced a shape the model cannot take") from None
    return m


@dataclass
class Feasibility:
    """Outcome of :func:`check_feasible`: ``ok``, the reasons it is not, the exact complexity
    (``params``, ``macs``) and the device lower bounds (``ram_bytes_min``, ``flash_bytes_min``,
    ``instructions_min``) in bytes / instructions."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    ram_bytes_min: int = 0
    flash_bytes_min: int = 0
    instructions_min: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _widest_layer_bytes(model: nn.Module, shape) -> int:
    """Largest int8 input + output bytes of one leaf module in a forward pass of ``(1, *shape)``."""
    peak = 0

    def hook(mod, inputs, output):
        nonlocal peak
        ins = sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))
        outs = output.numel() if isinstance(output, torch.Tensor) else 0
        peak = max(peak, ins + outs)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return peak


def check_feasible(point: dict, *, budget_params: int, budget_macs: int, max_ram_bytes: int | None = None,
                   max_flash_bytes: int | None = None, max_instructions: int | None = None) -> Feasibility:
    """Whether a sampled point can meet the budget and the device limits, before training
    (see the module docstring for the bounds). Never raises for a bad point: it is infeasible."""
    from ..complexity import measure
    from ..features import get_frontend

    try:
        fe = get_frontend(point["frontend"])
    except ConfigError as e:
        return Feasibility(False, [f"frontend: {e}"])
    reasons = []
    if fe.n_fft not in DEVICE_FFT_SIZES:
        reasons.append(f"n_fft {fe.n_fft} is not a device FFT size ({DEVICE_FFT_SIZES[0]}..{DEVICE_FFT_SIZES[-1]})")
    import warnings

    from ..features import mel_filterbank

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchaudio-style "a band covers no FFT bin": reported below
        empty = int((mel_filterbank(fe).sum(0) == 0).sum())  # (n_freqs, n_mels): a column of zeros
    if empty:
        reasons.append(f"{fe.n_mels} mel bands on {fe.n_freqs} FFT bins leave a band empty")
    try:
        model = build_model(point["model"], point["model_kwargs"], fe)
    except ConfigError as e:
        return Feasibility(False, reasons + [str(e)])
    c = measure(model, n_mels=fe.n_mels, frames=fe.n_frames)
    f = Feasibility(True, reasons, params=c.params, macs=c.macs)
    f.ram_bytes_min = max(fe.n_fft * 4 + fe.n_mels * fe.n_frames,
                          _widest_layer_bytes(model, fe.shape)) + STACK_RESERVE_BYTES
    f.flash_bytes_min = c.params
    f.instructions_min = c.macs // 2
    if c.params > budget_params:
        reasons.append(f"{c.params:,} parameters > {budget_params:,}")
    if c.macs > budget_macs:
        reasons.append(f"{c.macs:,} MACs > {int(budget_macs):,}")
    for value, limit, what in ((f.ram_bytes_min, max_ram_bytes, "RAM"), (f.flash_bytes_min, max_flash_bytes, "flash"),
                               (f.instructions_min, max_instructions, "instructions")):
        if limit is not None and value > limit:
            reasons.append(f"{what} at least {value:,} > {int(limit):,}")
    f.ok = not reasons
    return f
