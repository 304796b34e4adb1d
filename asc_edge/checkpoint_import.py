"""``asc-edge import``: CPJKU DCASE 2024 baseline-family Lightning checkpoints → asc-edge checkpoints.

The CPJKU DCASE 2024 Task 1 baseline (``CPJKU/dcase2024_task1_baseline``, ``run_training.py`` and
``models/baseline.py``) and its forks (e.g. the SNTL-NTU DCASE 2024 students, technical report
"Data efficient acoustic scene classification using teacher-informed confusing class instruction")
save a PyTorch Lightning checkpoint whose ``state_dict`` holds

- ``model.*``: the CP-Mobile network (``in_c``, ``stages.s<i>.b<j>.block``, ``feed_forward``), with
  BatchNorm running statistics and ``num_batches_tracked``;
- ``mel.*``: the buffers of its front end ``nn.Sequential(Resample, MelSpectrogram)`` (torchaudio):
  ``mel.0.kernel`` (only when the resampler changes the rate), ``mel.1.spectrogram.window`` and
  ``mel.1.mel_scale.fb``.

The checkpoint stores no hyper-parameters and no label names. :func:`import_cpjku_checkpoint`
infers everything it can from the tensors, takes the rest from the baseline's code, checks that
asc-edge reproduces it, and writes an asc-edge checkpoint (the format of
:mod:`asc_edge.checkpoint`) so ``asc-edge evaluate`` / ``export`` use it unchanged.

Where each value comes from:

========================  =====================================================================
network                   from ``model.*`` shapes: base channels (``in_c.1.0.weight`` rows),
                          stages / blocks per stage (key names), channel multiplier (stage widths),
                          expansion rate (``block.0.0.weight`` rows), input channels, classes
strides                   not stored (a strided 3×3 depthwise kernel has the same shape): the
                          baseline's ``get_model`` default ``b2=(1,1), b3=(1,2), b4=(2,1)``
sample rate               ``mel.0.kernel`` (new, 1, 2·width + orig) gives the reduced ratio
                          new:orig (320:441); the source audio is TAU22's 44.1 kHz (the
                          baseline's ``--orig_sample_rate 44100``), so 44.1 → 32 kHz. No kernel:
                          the audio stays at 44.1 kHz.
window length             ``len(mel.1.spectrogram.window)``; checked to be a periodic Hann window
n_fft                     ``2 · (fb rows − 1)`` (2049 → 4096)
n_mels                    fb columns
f_min, f_max              band edges fitted to the triangles of ``fb`` (then snapped to 0 Hz /
                          sample_rate / 2 when within 0.5 Hz); the whole filterbank is then
                          checked against :func:`asc_edge.features.mel_filterbank`
hop length                not stored: 500 samples, the baseline's ``--hop_length`` default (also
                          stated by the SNTL-NTU checkpoints' README)
power, centring, log      not stored: torchaudio ``MelSpectrogram`` defaults (power 2, centred
                          reflect-padded frames) and the baseline's ``(x + 1e-5).log()``
labels                    not stored: the baseline's ``label_ids`` list (alphabetical TAU22 scenes)
========================  =====================================================================

Resampling: asc-edge's data loader resamples with :func:`asc_edge.data.audio.resample` (scipy
polyphase, Kaiser window), not with the checkpoint's torchaudio windowed-sinc kernel. The import
checks that the kernel is the standard torchaudio ``sinc_interp_hann`` design (lowpass filter
width 6, roll-off 0.99) so the substitution is a known one; :func:`cpjku_resample` applies the
checkpoint's own kernel exactly as the baseline does, for comparisons. Measured on the 101
``tau_samples`` clips the two resamplers give the same predictions for 504 of 505
(model, clip) pairs over the five KD-Ensemble checkpoints, so the imported frontend keeps ours
(the import record says so).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import CheckpointError
from .features import FrontendConfig, hann_window, mel_filterbank
from .models import MODELS, build_model
from .models.cp_mobile import CPMobile, CPMobileConfig, make_divisible
from .report.io import file_sha256

__all__ = [
    "TAU_LABELS", "FAMILY", "ImportedCheckpoint", "import_cpjku_checkpoint", "read_cpjku_checkpoint", "default_output",
    "infer_cp_mobile_config", "infer_frontend", "sinc_resample_kernel", "cpjku_resample",
]

IMPORT_FORMAT = 1

# The 10 TAU Urban Acoustic Scenes 2022 scenes in the baselines' class order (``label_ids`` in
# CPJKU/dcase2024_task1_baseline run_training.py: alphabetical).
TAU_LABELS = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
              "street_pedestrian", "street_traffic", "tram")

FAMILY = ("the CPJKU DCASE 2024 baseline CP-Mobile family (keys model.in_c.{0,1}.*, "
          "model.stages.s<i>.b<j>.block.{0,1,2}.*, model.feed_forward.{0,1}.*, and front-end buffers "
          "mel.0.kernel (optional), mel.1.spectrogram.window, mel.1.mel_scale.fb)")
_FAMILY_HINT = ("`asc-edge import` reads only CPJKU DCASE 2024 baseline-family checkpoints (CP-Mobile "
                "student + torchaudio Resample/MelSpectrogram front end), e.g. the SNTL-NTU students")

SOURCE_SAMPLE_RATE = 44100        # TAU22 development audio; the baseline's --orig_sample_rate
BASELINE_HOP_LENGTH = 500         # the baseline's --hop_length (not stored in the checkpoint)
BASELINE_LOG_OFFSET = 1e-5        # the baseline's mel_forward: (x + 1e-5).log()
BASELINE_CLIP_SECONDS = 1.0       # TAU22 clips are 1 s
BASELINE_STRIDES = {"b2": (1, 1), "b3": (1, 2), "b4": (2, 1)}   # models/baseline.py get_model default
BASELINE_MULTIPLIER = 1.8         # DCASE 2024 baseline configuration
BASELINE_EXPANSION = 2.1

# Tolerances of the front-end checks. The stored filterbank differs from ours by up to 2.6e-5
# (float32 rounding of the band edges, a few ulp of the Hz values in another torch build); a
# different f_max by 1 Hz already moves it by > 1e-3. Window: identical in practice (torch.hann_window).
# Resampler kernel: ours (float64, then float32) differs from the stored one by up to 7.4e-6 (peak
# 0.72); another roll-off (0.98) or filter width changes it by > 1e-3.
FB_ATOL = 1e-4
WINDOW_ATOL = 1e-6
KERNEL_ATOL = 1e-4

_BN = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"
_RE_IN_C = re.compile(rf"model\.in_c\.([01])\.(?:0\.weight|1\.{_BN})")
_RE_BLOCK = re.compile(rf"model\.stages\.s(\d+)\.b(\d+)\.block\.[012]\.(?:0\.weight|1\.{_BN})")
_RE_FF = re.compile(rf"model\.feed_forward\.(?:0\.weight|1\.{_BN})")
_MEL_KEYS = ("mel.0.kernel", "mel.1.spectrogram.window", "mel.1.mel_scale.fb")


@dataclass
class ImportedCheckpoint:
    """A CPJKU-family checkpoint read, checked and mapped onto asc-edge's CP-Mobile.

    ``model``: our :class:`~asc_edge.models.CPMobile` with the checkpoint's weights loaded strictly
    (eval mode; input ``(batch, 1, n_mels, frames)``, output ``(batch, len(labels))`` logits).
    ``model_name`` / ``model_kwargs``: how :func:`asc_edge.models.build_model` rebuilds it.
    ``frontend``: the features it was trained on. ``labels``: class order of the logits.
    ``record``: the ``import`` record written into the asc-edge checkpoint (JSON-ready).
    """

    model: CPMobile
    model_name: str
    model_kwargs: dict
    frontend: FrontendConfig
    labels: tuple[str, ...]
    record: dict = field(default_factory=dict)

    def to_checkpoint(self) -> dict:
        """The asc-edge checkpoint dict (what :func:`asc_edge.checkpoint.load_checkpoint` reads)."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        return {
            "state_dict": state,
            "hyper_parameters": {
                "model_name": self.model_name,
                "model_kwargs": self.model_kwargs,
                "labels": list(self.labels),
                "frontend": self.frontend.to_dict(),
                "train": self.record["train"],
            },
            "import": self.record,
        }


# --------------------------------------------------------------------------- resampler

def sinc_resample_kernel(orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
                         rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """The windowed-sinc (Hann) resampling kernel of torchaudio's ``Resample`` (``sinc_interp_hann``).

    Written from torchaudio's documented algorithm (``torchaudio.functional.resample``): rates are
    reduced by their gcd (44100 → 32000 Hz: orig 441, new 320); the low-pass cut-off is
    ``min(orig, new) · rolloff`` (in reduced units); ``width = ceil(lowpass_filter_width · orig /
    cut-off)``; output phase ``i`` (0 … new−1) gets the taps ``sinc(t) · cos²(t / (2 · lpw))`` at
    ``t = cut-off · (j / orig − i / new)``, ``j = −width … width + orig − 1``, clamped to ±lpw, scaled
    by ``cut-off / orig``. Computed in float64, returned as float32.

    Returns:
        ``(kernel, width)``: kernel (new, 1, 2 · width + orig) float32 — (320, 1, 459) for 44.1 → 32 kHz,
        the shape of the CPJKU baseline's ``mel.0.kernel`` — and the zero padding ``width`` in samples.
    """
    g = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // g, int(new_freq) // g
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    j = torch.arange(-width, width + orig, dtype=torch.float64) / orig
    t = (j[None, :] - torch.arange(new, dtype=torch.float64)[:, None] / new) * cutoff
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    kernel = (sinc * window * (cutoff / orig)).unsqueeze(1)
    return kernel.to(torch.float32), width


def cpjku_resample(wave: torch.Tensor, kernel: torch.Tensor, orig: int) -> torch.Tensor:
    """Resample with a stored torchaudio ``Resample`` kernel, as the CPJKU baseline's ``mel.0`` does.

    ``wave`` (..., samples) float32 at the source rate; ``kernel`` (new, 1, 2 · width + orig) with
    ``orig`` the reduced source rate (441 for 44.1 → 32 kHz). Steps (torchaudio's
    ``_apply_sinc_resample_kernel``): zero-pad ``width`` samples before and ``width + orig`` after,
    ``conv1d`` with stride ``orig`` (each of the ``new`` output channels is one output phase),
    interleave the phases, keep the first ``ceil(new · samples / orig)`` samples.

    Returns (..., ceil(new · samples / orig)) float32 (32,000 samples for a 1-s 44.1 kHz clip).

    Raises:
        CheckpointError: a kernel whose length is not ``orig`` plus an even padding.
    """
    new, _, taps = kernel.shape
    if taps <= orig or (taps - orig) % 2:
        raise CheckpointError(f"resampler kernel of shape {tuple(kernel.shape)} does not fit orig={orig}",
                              hint="pass the reduced source rate the kernel was made for (441 for 44.1 kHz)")
    width = (taps - orig) // 2
    shape = wave.shape
    x = wave.reshape(-1, shape[-1]).to(torch.float32)
    n = x.shape[-1]
    x = torch.nn.functional.pad(x, (width, width + orig))
    y = torch.nn.functional.conv1d(x[:, None], kernel.to(torch.float32), stride=orig)   # (B, new, frames)
    y = y.transpose(1, 2).reshape(x.shape[0], -1)[:, :math.ceil(new * n / orig)]
    return y.reshape(*shape[:-1], y.shape[-1])


# --------------------------------------------------------------------------- reading

def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


def _load_source(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found",
                              hint="pass the .ckpt file of a CPJKU-baseline-family run (e.g. "
                                   "../shared/models/sntl-ntu-dcase2024/*.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated / foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or not a PyTorch checkpoint") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a PyTorch Lightning checkpoint (no state_dict)", hint=_FAMILY_HINT)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict) and "model_name" in hp and "frontend" in hp:
        raise CheckpointError(f"{path}: already an asc-edge checkpoint (model {hp['model_name']!r})",
                              hint="use it directly with `asc-edge evaluate` / `asc-edge export`")
    return ckpt


def _check_key_layout(path: Path, sd: dict) -> None:
    """Every key must belong to the family; the first one that does not is named."""
    for key, value in sd.items():
        ok = isinstance(key, str) and (key in _MEL_KEYS or _RE_IN_C.fullmatch(key) or _RE_BLOCK.fullmatch(key)
                                       or _RE_FF.fullmatch(key))
        if not ok:
            raise CheckpointError(f"{path}: first unmatched key {key!r}: not part of {FAMILY}", hint=_FAMILY_HINT)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a tensor", hint=_FAMILY_HINT)
    for key in ("model.in_c.0.0.weight", "model.in_c.1.0.weight", "model.feed_forward.0.weight",
                "mel.1.spectrogram.window", "mel.1.mel_scale.fb"):
        if key not in sd:
            raise CheckpointError(f"{path}: missing key {key!r} of {FAMILY}", hint=_FAMILY_HINT)


# --------------------------------------------------------------------------- network

def _pick(values: list[float], default: float) -> float:
    """The baseline value when it is among ``values``, else the coarsest-grid value closest to it."""
    if any(abs(v - default) < 1e-9 for v in values):
        return default

    def rank(v: float) -> tuple[int, float]:
        k = round(v * 100)
        return (0 if k % 10 == 0 else 1 if k % 5 == 0 else 2, abs(v - default))

    return min(values, key=rank)


def infer_cp_mobile_config(model_sd: dict, path: str | Path = "checkpoint") -> tuple[dict, dict]:
    """Infer the CP-Mobile configuration from the shapes of a baseline-family ``model.*`` state dict.

    ``model_sd``: keys with the ``model.`` prefix (e.g. ``model.in_c.1.0.weight``) → tensors.

    Returns ``(model_kwargs, notes)``: ``model_kwargs`` for :class:`~asc_edge.models.CPMobileConfig`
    (``in_channels``, ``base_channels``, ``channels_multiplier``, ``expansion_rate``, ``n_blocks``,
    ``strides``; ``n_classes`` is passed separately) and ``notes`` saying where each came from.
    The multiplier / expansion rate are the baseline's (1.8 / 2.1) when those reproduce every
    channel count after ``make_divisible(·, 8)``, else the consistent value on the coarsest grid
    (0.1, 0.05, 0.01) nearest to them. Strides are not stored; the baseline's default is used.

    Raises:
        CheckpointError: blocks not numbered b1, b2, … across stages s1, s2, …, or channel counts
            that no multiplier in [1, 4] / expansion rate in [1, 6] reproduces.
    """
    w = {k[len("model."):]: _shape(v) for k, v in model_sd.items()}
    base = w["in_c.1.0.weight"][0]
    in_channels = w["in_c.0.0.weight"][1]
    stages: dict[int, list[int]] = {}
    for key in model_sd:
        m = _RE_BLOCK.fullmatch(key)
        if m:
            blocks = stages.setdefault(int(m.group(1)), [])
            if int(m.group(2)) not in blocks:
                blocks.append(int(m.group(2)))
    if sorted(stages) != list(range(1, len(stages) + 1)) or not stages:
        raise CheckpointError(f"{path}: stages {sorted(stages)} are not s1, s2, … (no stage missing)",
                              hint=_FAMILY_HINT)
    order = [b for s in sorted(stages) for b in sorted(stages[s])]
    if order != list(range(1, len(order) + 1)):
        raise CheckpointError(f"{path}: blocks {order} are not numbered b1, b2, … across the stages",
                              hint=_FAMILY_HINT)
    n_blocks = tuple(len(stages[s]) for s in sorted(stages))
    for b_stage in sorted(stages):
        for b in stages[b_stage]:
            for part in ("0.0.weight", "2.0.weight"):
                if f"stages.s{b_stage}.b{b}.block.{part}" not in w:
                    raise CheckpointError(f"{path}: missing key 'model.stages.s{b_stage}.b{b}.block.{part}' "
                                          f"of {FAMILY}", hint=_FAMILY_HINT)
    stage_out = [w[f"stages.s{s}.b{stages[s][-1]}.block.2.0.weight"][0] for s in sorted(stages)]
    blocks = [(w[f"stages.s{s}.b{b}.block.0.0.weight"][1], w[f"stages.s{s}.b{b}.block.0.0.weight"][0])
              for s in sorted(stages) for b in stages[s]]          # (in channels, expanded channels)

    def widths(mult: float) -> list[int]:
        return CPMobileConfig(base_channels=base, channels_multiplier=mult,
                              n_blocks=n_blocks).channels_per_stage()[1:]

    mults = [k / 100 for k in range(100, 401) if widths(k / 100) == stage_out]
    if not mults:
        raise CheckpointError(f"{path}: stage widths {stage_out} are not make_divisible(base {base} × m^s, 8) "
                              f"for any channel multiplier m in 1.00–4.00", hint=_FAMILY_HINT)
    exps = [k / 100 for k in range(100, 601)
            if all(make_divisible(c_in * (k / 100), 8) == c_exp for c_in, c_exp in blocks)]
    if not exps:
        raise CheckpointError(f"{path}: expanded widths {[e for _, e in blocks]} of blocks with inputs "
                              f"{[i for i, _ in blocks]} match no expansion rate in 1.00–6.00", hint=_FAMILY_HINT)
    kwargs = {
        "in_channels": in_channels,
        "base_channels": base,
        "channels_multiplier": _pick(mults, BASELINE_MULTIPLIER),
        "expansion_rate": _pick(exps, BASELINE_EXPANSION),
        "n_blocks": list(n_blocks),
        "strides": {k: list(v) for k, v in BASELINE_STRIDES.items()},
    }
    notes = {
        "base_channels": f"rows of model.in_c.1.0.weight ({base}); stem conv has {w['in_c.0.0.weight'][0]} = base // 4",
        "in_channels": "columns of model.in_c.0.0.weight",
        "n_blocks": f"block keys per stage: {dict((f's{s}', [f'b{b}' for b in stages[s]]) for s in sorted(stages))}",
        "channels_multiplier": (f"stage widths {stage_out}; multipliers reproducing them: "
                                f"{mults[0]:.2f}–{mults[-1]:.2f} (step 0.01)"),
        "expansion_rate": (f"expanded widths {[e for _, e in blocks]} from inputs {[i for i, _ in blocks]}; "
                           f"rates reproducing them: {exps[0]:.2f}–{exps[-1]:.2f} (step 0.01)"),
        "strides": "not stored in the weights: CPJKU baseline get_model default b2=(1,1), b3=(1,2), b4=(2,1)",
    }
    return kwargs, notes


def _registry_name(kwargs: dict, n_classes: int) -> str:
    """The registered CP-Mobile name whose defaults give exactly this configuration, else 'cp-mobile'."""
    want = CPMobileConfig(n_classes=n_classes, **kwargs).to_dict()
    for name in ("cp-mobile", "cp-mobile-24"):
        spec = MODELS.get(name)
        if spec is not None and spec.factory is CPMobile and \
                CPMobileConfig(**{**spec.defaults, "n_classes": n_classes}).to_dict() == want:
            return name
    return "cp-mobile"


def _load_strict(path: Path, model: torch.nn.Module, model_sd: dict) -> None:
    """Every checkpoint key and shape must match the rebuilt model, and vice versa."""
    ours = {f"model.{k}": _shape(v) for k, v in model.state_dict().items()}
    for key, value in model_sd.items():
        if key not in ours:
            raise CheckpointError(f"{path}: first unmatched key {key!r}: not produced by the inferred CP-Mobile "
                                  f"configuration of {FAMILY}", hint=_FAMILY_HINT)
        if _shape(value) != ours[key]:
            raise CheckpointError(f"{path}: {key!r} has shape {_shape(value)}, the inferred CP-Mobile expects "
                                  f"{ours[key]}", hint=_FAMILY_HINT)
    missing = [k for k in ours if k not in model_sd]
    if missing:
        raise CheckpointError(f"{path}: missing key {missing[0]!r} ({len(missing)} missing) of {FAMILY}",
                              hint=_FAMILY_HINT)
    model.load_state_dict({k[len("model."):]: v for k, v in model_sd.items()}, strict=True)


# --------------------------------------------------------------------------- front end

def _hz_to_mel(f):
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _fit_band_edges(fb: torch.Tensor, sample_rate: int) -> tuple[float, float]:
    """(f_min, f_max) in Hz of a triangular HTK filterbank (n_freqs, n_mels), from its straight edges.

    Each band rises linearly from edge m to edge m+1 and falls to edge m+2; two non-zero bins on a
    slope give that slope and its zero crossing, i.e. two edges. The HTK edges are evenly spaced in
    mel, so a line fitted through (index, mel(edge)) gives mel(f_min) at 0 and mel(f_max) at n_mels+1.
    """
    fb = fb.to(torch.float64)
    n_freqs, n_mels = fb.shape
    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    idx, hz = [], []
    for m in range(n_mels):
        col = fb[:, m]
        nz = torch.nonzero(col > 0).flatten().tolist()
        if not nz:
            continue
        peak = int(col.argmax())
        rise = [k for k in nz if k < peak]
        fall = [k for k in nz if k > peak]
        if len(rise) >= 2:
            k1, k2 = rise[-2], rise[-1]
            slope = (col[k2] - col[k1]) / (freqs[k2] - freqs[k1])
            if slope > 0:
                lo = freqs[k1] - col[k1] / slope
                idx += [m, m + 1]
                hz += [float(lo), float(lo + 1.0 / slope)]
        if len(fall) >= 2:
            k1, k2 = fall[0], fall[1]
            slope = (col[k1] - col[k2]) / (freqs[k2] - freqs[k1])
            if slope > 0:
                hi = freqs[k2] + col[k2] / slope
                idx += [m + 2, m + 1]
                hz += [float(hi), float(hi - 1.0 / slope)]
    if len(set(idx)) < 2:
        raise CheckpointError("mel.1.mel_scale.fb: too few non-zero bins to locate the band edges",
                              hint="asc-edge reproduces only triangular HTK mel filterbanks")
    x = torch.tensor(idx, dtype=torch.float64)
    y = _hz_to_mel(torch.tensor(hz, dtype=torch.float64).clamp(min=0.0))
    xm, ym = x.mean(), y.mean()
    slope = ((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum()
    m_min = float(ym - slope * xm)
    m_max = float(m_min + slope * (n_mels + 1))
    return float(_mel_to_hz(torch.tensor(m_min))), float(_mel_to_hz(torch.tensor(m_max)))


def _snap(value: float) -> float:
    """Round a fitted frequency to whole Hz when it is that close, else to 0.01 Hz."""
    r = round(value)
    return float(r) if abs(value - r) < 0.05 else round(value, 2)


def _find_resampler(path: Path, kernel: torch.Tensor) -> tuple[int, int, float]:
    """(orig, new) reduced rates and max |difference| of the torchaudio design matching ``kernel``."""
    if kernel.dim() != 3 or kernel.shape[1] != 1:
        raise CheckpointError(f"{path}: mel.0.kernel has shape {_shape(kernel)}, expected (new, 1, taps)",
                              hint="the resampler is not torchaudio's Resample; asc-edge cannot reproduce it")
    new, _, taps = kernel.shape
    best = math.inf
    for orig in range(1, taps):
        if SOURCE_SAMPLE_RATE % orig or math.gcd(orig, new) != 1 or (taps - orig) % 2:
            continue
        cutoff = min(orig, new) * 0.99
        if math.ceil(6 * orig / cutoff) != (taps - orig) // 2:
            continue
        ours, _ = sinc_resample_kernel(orig, new)
        diff = float((ours - kernel.to(torch.float32)).abs().max())
        best = min(best, diff)
        if diff <= KERNEL_ATOL:
            return orig, new, diff
    raise CheckpointError(
        f"{path}: mel.0.kernel {_shape(kernel)} is not torchaudio's sinc_interp_hann resampler (lowpass filter "
        f"width 6, roll-off 0.99) from {SOURCE_SAMPLE_RATE} Hz"
        + (f" (closest design differs by {best:.3g})" if best < math.inf else ""),
        hint="asc-edge reproduces only the baseline's standard Resample(44100, new rate); re-train or extend "
             "asc_edge.checkpoint_import for this resampler")


def infer_frontend(mel_sd: dict, path: str | Path = "checkpoint",
                   hop_length: int = BASELINE_HOP_LENGTH) -> tuple[FrontendConfig, dict]:
    """The :class:`FrontendConfig` described by a baseline checkpoint's ``mel.*`` buffers, checked.

    ``mel_sd``: ``mel.1.spectrogram.window`` (win_length,), ``mel.1.mel_scale.fb`` (n_fft // 2 + 1,
    n_mels) and, when the audio was resampled, ``mel.0.kernel`` (new, 1, taps). ``hop_length``
    (samples) is not stored; the default is the baseline's 500.

    Returns ``(frontend, notes)``; ``notes`` records the source of every field and the measured
    differences between the stored buffers and asc-edge's own (``fb_max_abs_diff``,
    ``window_max_abs_diff``, ``resampler_kernel_max_abs_diff``).

    Raises:
        CheckpointError: naming the part asc-edge cannot reproduce — a resampler kernel that is not
            torchaudio's standard design from 44.1 kHz, a window that is not periodic Hann, or a mel
            filterbank that differs from :func:`asc_edge.features.mel_filterbank` by more than 1e-4.
    """
    path = Path(path)
    window = mel_sd["mel.1.spectrogram.window"].to(torch.float32)
    fb = mel_sd["mel.1.mel_scale.fb"].to(torch.float32)
    notes: dict = {}
    if "mel.0.kernel" in mel_sd:
        orig, new, kdiff = _find_resampler(path, mel_sd["mel.0.kernel"])
        sample_rate = SOURCE_SAMPLE_RATE * new // orig
        notes["sample_rate"] = (f"mel.0.kernel {_shape(mel_sd['mel.0.kernel'])}: torchaudio sinc_interp_hann "
                                f"resampler {orig}:{new} from the {SOURCE_SAMPLE_RATE} Hz TAU22 audio "
                                f"→ {sample_rate} Hz")
        notes["resampler"] = {
            "present": True, "kernel_shape": list(_shape(mel_sd["mel.0.kernel"])), "orig": orig, "new": new,
            "design": "torchaudio Resample sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99",
            "resampler_kernel_max_abs_diff": kdiff,
            "host_substitute": "asc_edge.data.audio.resample (scipy resample_poly, Kaiser beta 5)",
            "effect": "measured on the 101 tau_samples clips, 5 KD-Ensemble checkpoints: same prediction for "
                      "504 of 505 clips, mean |logit difference| 0.016-0.030",
        }
    else:
        sample_rate = SOURCE_SAMPLE_RATE
        notes["sample_rate"] = f"no mel.0.kernel: the model ran on the {SOURCE_SAMPLE_RATE} Hz TAU22 audio"
        notes["resampler"] = {"present": False}
    if window.dim() != 1 or fb.dim() != 2:
        raise CheckpointError(f"{path}: window {_shape(window)} / filterbank {_shape(fb)} have the wrong rank",
                              hint="expected window (win_length,) and fb (n_fft // 2 + 1, n_mels)")
    n_fft = 2 * (fb.shape[0] - 1)
    n_mels = fb.shape[1]
    try:
        f_min, f_max = _fit_band_edges(fb, sample_rate)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc.message}", hint=exc.hint) from None
    f_min = 0.0 if abs(f_min) < 0.5 else _snap(f_min)
    f_max_cfg = None if abs(f_max - sample_rate // 2) < 0.5 else _snap(f_max)
    try:
        cfg = FrontendConfig(sample_rate=sample_rate, n_fft=n_fft, win_length=int(window.shape[0]),
                             hop_length=hop_length, n_mels=n_mels, f_min=f_min, f_max=f_max_cfg,
                             log_offset=BASELINE_LOG_OFFSET, clip_seconds=BASELINE_CLIP_SECONDS)
    except Exception as exc:
        raise CheckpointError(f"{path}: the front-end buffers give no valid asc-edge frontend ({exc})",
                              hint="asc-edge cannot reproduce this checkpoint's features") from None
    ours_w = hann_window(cfg)
    wdiff = float((ours_w - window).abs().max())
    if wdiff > WINDOW_ATOL:
        raise CheckpointError(f"{path}: mel.1.spectrogram.window ({window.shape[0]} samples) is not a periodic Hann "
                              f"window (max difference {wdiff:.3g})",
                              hint="asc-edge's frontend uses torch.hann_window(periodic=True) only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # empty bands are compared like any other
        ours_fb = mel_filterbank(cfg)
    fdiff = float((ours_fb - fb).abs().max())
    if fdiff > FB_ATOL:
        raise CheckpointError(
            f"{path}: mel.1.mel_scale.fb {_shape(fb)} differs from asc-edge's HTK filterbank (sample rate "
            f"{sample_rate}, n_fft {n_fft}, {n_mels} mels, {f_min:g}–{cfg.f_max_hz:g} Hz) by {fdiff:.3g} "
            f"> {FB_ATOL:g}",
            hint="asc-edge reproduces only torchaudio MelSpectrogram's HTK mel scale without normalisation")
    notes.update({
        "n_fft": f"2 · (mel.1.mel_scale.fb rows {fb.shape[0]} − 1)",
        "n_mels": "mel.1.mel_scale.fb columns",
        "win_length": "length of mel.1.spectrogram.window (periodic Hann, checked)",
        "f_min_f_max": (f"fitted to the filterbank's triangles: {f_min:.3f} / {f_max:.3f} Hz → f_min {f_min:g}, "
                        f"f_max {'None (= sample_rate // 2)' if f_max_cfg is None else f_max_cfg}"),
        "hop_length": f"not stored: {hop_length} (CPJKU baseline --hop_length default; SNTL-NTU README)",
        "power_center_log": "not stored: torchaudio MelSpectrogram defaults (power 2, centred reflect-padded "
                            "frames) and the baseline's log(x + 1e-5)",
        "fb_max_abs_diff": fdiff,
        "window_max_abs_diff": wdiff,
    })
    return cfg, notes


# --------------------------------------------------------------------------- import

def read_cpjku_checkpoint(path: str | Path, hop_length: int = BASELINE_HOP_LENGTH) -> ImportedCheckpoint:
    """Read a CPJKU-baseline-family Lightning checkpoint and map it onto asc-edge (nothing is written).

    Steps: ``torch.load(map_location="cpu", weights_only=False)``; every ``state_dict`` key must be
    one of the family's (else the first unmatched key is named); CP-Mobile configuration from the
    ``model.*`` shapes (:func:`infer_cp_mobile_config`); our model built and loaded strictly (every
    key and shape, BatchNorm running statistics and ``num_batches_tracked`` included); frontend from
    the ``mel.*`` buffers, checked against ours (:func:`infer_frontend`); labels: :data:`TAU_LABELS`.

    Raises:
        CheckpointError: missing / unreadable file, an asc-edge checkpoint, a foreign key layout (names
            the first unmatched key and the expected family), a missing key, a shape mismatch, a head
            with other than 10 classes, or a front end asc-edge cannot reproduce (names the part).
    """
    path = Path(path)
    ckpt = _load_source(path)
    sd = ckpt["state_dict"]
    _check_key_layout(path, sd)
    model_sd = {k: v for k, v in sd.items() if k.startswith("model.")}
    mel_sd = {k: v for k, v in sd.items() if k.startswith("mel.")}
    n_classes = _shape(model_sd["model.feed_forward.0.weight"])[0]
    if n_classes != len(TAU_LABELS):
        raise CheckpointError(f"{path}: the classifier has {n_classes} outputs, the TAU22 scene list has "
                              f"{len(TAU_LABELS)}", hint="import only checkpoints trained on the 10 TAU22 scenes")
    kwargs, model_notes = infer_cp_mobile_config(model_sd, path)
    model_name = _registry_name(kwargs, n_classes)
    model = build_model(model_name, n_classes=n_classes, **kwargs)
    _load_strict(path, model, model_sd)
    model.eval()
    frontend, fe_notes = infer_frontend(mel_sd, path, hop_length=hop_length)

    from .complexity import measure

    cx = measure(model, n_mels=frontend.n_mels, frames=frontend.n_frames, in_channels=kwargs["in_channels"])
    split = re.search(r"split(\d+)", path.stem)
    train = {
        "source": "imported: CPJKU DCASE 2024 baseline-family Lightning checkpoint (asc-edge import)",
        "dataset": "TAU Urban Acoustic Scenes 2022 Mobile development (not part of this repository)",
        "data": None, "splits_dir": None,
        "split": split.group(1) if split else None,
        "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
    }
    record = {
        "format": IMPORT_FORMAT,
        "source": str(path.resolve()),
        "source_sha256": file_sha256(path),
        "source_bytes": path.stat().st_size,
        "source_pytorch_lightning_version": ckpt.get("pytorch-lightning_version"),
        "family": "CPJKU DCASE 2024 baseline CP-Mobile (models/baseline.py) + torchaudio Resample/MelSpectrogram",
        "model_name": model_name,
        "inferred": {"model_kwargs": kwargs, "n_classes": n_classes, "frontend": frontend.to_dict()},
        "sources": {"model": model_notes, "frontend": {k: v for k, v in fe_notes.items() if k != "resampler"},
                    "labels": "not stored: CPJKU baseline run_training.py label_ids (alphabetical TAU22 scenes)"},
        "resampler": fe_notes["resampler"],
        "mapping": {
            "model.*": f"identity onto asc-edge CPMobile ({len(model_sd)} tensors incl. BatchNorm running "
                       f"statistics and num_batches_tracked), strict load",
            "mel.*": "dropped: asc_edge.features.LogMel recomputes them from the frontend settings "
                     "(checked equal within the recorded differences)",
            "ignored": sorted(k for k in ckpt if k not in ("state_dict",)),
        },
        "complexity": cx.to_dict(),
        "train": train,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return ImportedCheckpoint(model=model, model_name=model_name, model_kwargs=kwargs, frontend=frontend,
                              labels=TAU_LABELS, record=record)


def default_output(path: str | Path) -> Path:
    """``runs/imported/<checkpoint stem>/model.ckpt`` (relative to the working directory; runs/ is git-ignored)."""
    return Path("runs") / "imported" / Path(path).stem / "model.ckpt"


def import_cpjku_checkpoint(path: str | Path, out: str | Path | None = None, *,
                            hop_length: int = BASELINE_HOP_LENGTH,
                            log: Callable[[str], None] | None = None) -> Path:
    """Import a CPJKU-baseline-family Lightning checkpoint as an asc-edge checkpoint; returns its path.

    ``out``: a ``.ckpt`` file, or a folder that gets ``model.ckpt``; default
    ``runs/imported/<checkpoint stem>/model.ckpt``. Written atomically (temp file + rename) with an
    ``import.json`` copy of the import record beside it. The checkpoint holds ``state_dict``
    (``model.*``), ``hyper_parameters`` (``model_name``, ``model_kwargs``, ``labels``, ``frontend``,
    ``train``) and ``import`` (source path, sha256, inferred configuration, where each value came
    from, mapping notes, complexity); :func:`asc_edge.checkpoint.load_checkpoint` reads it.

    Raises:
        CheckpointError: see :func:`read_cpjku_checkpoint`; also an unwritable output path.
    """
    from .report.io import atomic_write, write_json_atomic

    imported = read_cpjku_checkpoint(path, hop_length=hop_length)
    target = Path(out) if out is not None else default_output(path)
    if target.suffix != ".ckpt":
        target = target / "model.ckpt"
    ckpt = imported.to_checkpoint()
    try:
        atomic_write(target, lambda fh: torch.save(ckpt, fh))
        write_json_atomic(target.parent / "import.json", imported.record)
    except OSError as exc:
        raise CheckpointError(f"{target}: cannot write the imported checkpoint ({exc.strerror or exc})",
                              hint="choose a writable --out path") from None
    if log is not None:
        fe, cx = imported.frontend, imported.record["complexity"]
        kw = imported.model_kwargs
        log(f"imported {path} -> {target}")
        log(f"model {imported.model_name}: base {kw['base_channels']}, multiplier {kw['channels_multiplier']}, "
            f"expansion {kw['expansion_rate']}, blocks {kw['n_blocks']}; {cx['params']:,} params, "
            f"{cx['macs']:,} MACs for input {tuple(cx['input_shape'])}")
        log(f"frontend: {fe.sample_rate} Hz, n_fft {fe.n_fft}, window {fe.win_length}, hop {fe.hop_length}, "
            f"{fe.n_mels} mels {fe.f_min:g}-{fe.f_max_hz:g} Hz; resampler in checkpoint: "
            f"{'yes (host uses asc-edge resample)' if imported.record['resampler']['present'] else 'no'}")
        log(f"labels: {', '.join(imported.labels)}")
    return target
