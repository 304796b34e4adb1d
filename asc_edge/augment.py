"""Spectrogram and batch augmentations of the CP-JKU DCASE Task 1 recipes.

Inputs are log-mel batches ``x`` of shape (B, C, M, T) = (batch, channel, mel bins, frames),
e.g. (B, 1, 256, 65) for 1-s clips at 32 kHz with hop 500. Every random draw goes through the
explicit ``torch.Generator`` argument (draws happen on the generator's device and are moved to
``x``'s device), so a training run is reproducible from its seed. Functions never modify
their input in place; a no-op (probability 0, width 0, ...) returns ``x`` itself.

Sources of the defaults (:class:`AugmentConfig`):

* DCASE 2024 Task 1 baseline, github.com/CPJKU/dcase2024_task1_baseline, ``run_training.py``:
  ``--freqm 48`` (torchaudio ``FrequencyMasking(48, iid_masks=True)``), ``--timem 0``,
  ``--roll_sec 0.1`` (waveform roll, ``RollDataset`` in ``dataset/dcase24.py``),
  ``--mixstyle_p 0.4``, ``--mixstyle_alpha 0.3`` (``helpers/utils.py: mixstyle``),
  front-end 32 kHz / hop 500 / 256 mels.
* CP-JKU DCASE 2023 student, github.com/fschmid56/cpjku_dcase23, ``run_training.py``: same
  mixstyle p/alpha and freqm, plus ``--dir_prob 0.6`` (device impulse responses).
* Mixup: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018; per-example
  λ with λ ← max(λ, 1 − λ) as in CP-JKU's ``mixup()`` (github.com/CPJKU/cpjku_dcase22).

The other seed systems' augmentations are in the config too, all off by default (the defaults of
their *strength* are the seed's values, so switching one on with its probability alone gives the
seed's setting; the recipes in ``recipes/`` switch them on):

* Pitch shift and time stretch of the waveform (AI4EDGE, DCASE 2023): :func:`pitch_shift` /
  :func:`time_stretch`, both ``librosa.effects`` (phase vocoder; pitch shift then resamples with
  soxr), applied to a fraction of the batch and the features recomputed — the DIR path of
  :class:`asc_edge.train.module.ASCModule`.
* PaSST-style pitch shift by a random mel-filterbank top frequency (``fmax_aug_range`` of PaSST's
  ``AugmentMelSTFT``, github.com/kkoutini/PaSST; used by SNTL-NTU, DCASE 2024):
  :func:`logmel_random_fmax`, on the same recompute path.
* Time masking and masks relative to the input size (ITMO, DCASE 2024: time and frequency masks up
  to 15 % of the frames / mel bins): :func:`time_mask`, :func:`freq_mask_frac`,
  :func:`time_mask_frac`, torchaudio ``TimeMasking`` / ``FrequencyMasking(iid_masks=True)`` semantics.

Training order (:func:`augment_batch`) follows the DCASE 2024 baseline: the waveform is rolled
in the data set, frequency masking is applied to the mel spectrogram inside the front-end, and
Freq-MixStyle is applied to the finished log-mel batch in ``training_step``. Hence
``time_roll → freq_mask → freq_mixstyle``; time masking, where on, follows the frequency mask
(torchaudio order in PaSST / CP-JKU: ``freqm`` then ``timem``). (Rolling commutes with the other two; only
mask-before-MixStyle vs. after makes a difference.) Mixup touches the labels and is done in
the training step: :func:`mixup` + :func:`mixup_loss`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from asc_edge.errors import ConfigError

__all__ = ["AugmentConfig", "freq_mask", "time_mask", "freq_mask_frac", "time_mask_frac", "time_roll",
           "freq_mixstyle", "mixup", "mixup_loss", "mix_targets", "augment_batch", "pitch_shift", "time_stretch",
           "logmel_random_fmax", "DEFAULT_TIME_ROLL_FRAMES", "AI4EDGE_PITCH_SHIFT_SEMITONES",
           "AI4EDGE_TIME_STRETCH_RANGE", "PASST_FMAX_AUG_RANGE", "ITMO_MASK_FRAC"]

# DCASE 2024 baseline rolls the waveform by up to roll_sec = 0.1 s. In frames of the baseline
# front-end (32 kHz, hop 500 samples = 15.625 ms): 0.1 * 32000 / 500 = 6.4 -> 6 frames.
DEFAULT_TIME_ROLL_FRAMES = int(0.1 * 32000 / 500)

# AI4EDGE (DCASE 2023 Task 1) pitch shift / time stretch. The report names both augmentations; its
# exact ranges are not in the material available here. Our choice of what its authors most likely
# used: shifts drawn uniformly within ±2 semitones and stretch rates within [0.8, 1.2] (moderate,
# commonly used ranges for these librosa effects on scene audio), each applied to half the clips
# (p = 0.5, audiomentations' default). The probabilities go in recipes/ai4edge2023.yaml.
AI4EDGE_PITCH_SHIFT_SEMITONES = 2.0
AI4EDGE_TIME_STRETCH_RANGE = 0.2
# PaSST's AugmentMelSTFT(fmax_aug_range=2000): the top mel edge varies over 2 kHz (SNTL-NTU 2024).
PASST_FMAX_AUG_RANGE = 2000.0
# ITMO (DCASE 2024 Task 1): time and frequency masks of up to 15 % of the frames / mel bins.
ITMO_MASK_FRAC = 0.15


@dataclass(frozen=True)
class AugmentConfig:
    """All augmentation settings in one place; the defaults are the CP-JKU seed recipe."""

    # Max width (mel bins) of one frequency mask per example. DCASE24 baseline run_training.py
    # --freqm 48 -> torchaudio FrequencyMasking(48, iid_masks=True); also cpjku_dcase23. 0 disables.
    freq_mask: int = 48
    # Max circular time shift in frames, shift ~ U{-n..n} per example. DCASE24 baseline rolls the
    # *waveform* by up to roll_sec=0.1 s (RollDataset); 0.1 s at 32 kHz / hop 500 = 6.4 -> 6 frames.
    # Set 0 when the waveform pipeline already rolls. 0 disables.
    time_roll: int = DEFAULT_TIME_ROLL_FRAMES
    # Beta(alpha, alpha) of mixup (Zhang et al. 2018). alpha=1 (uniform lambda, folded to [0.5, 1]) as
    # requested for this project; NB the official DCASE24 baseline run_training.py uses no mixup and
    # the CP-JKU DCASE22 submission used 0.3. 0 disables.
    mixup_alpha: float = 1.0
    # Probability that a batch is mixed. CP-JKU's mixup code mixes every batch when alpha > 0 -> 1.0.
    mixup_p: float = 1.0
    # Freq-MixStyle (Schmid et al., CP-JKU DCASE 2022/2023/2024): batch-level probability.
    # DCASE24 baseline --mixstyle_p 0.4 (also cpjku_dcase23 student). 0 disables.
    mixstyle_p: float = 0.4
    # Beta(alpha, alpha) for the MixStyle statistic weights. DCASE24 baseline --mixstyle_alpha 0.3.
    mixstyle_alpha: float = 0.3
    # Device impulse response (DIR) augmentation probability, applied to waveforms elsewhere; kept
    # here so all augmentation flags live in one place. cpjku_dcase23 run_training.py --dir_prob 0.6.
    dir_p: float = 0.6
    # Max width (frames) of one time mask per example, torchaudio TimeMasking(n, iid_masks=True)
    # semantics as freq_mask. DCASE24 baseline --timem 0 -> off by default.
    time_mask: int = 0
    # Mask widths relative to the input: up to this fraction of the mel bins / frames per example
    # (width ~ floor(U[0, 1) * frac * size)). ITMO 2024: 0.15 for both (recipes/itmo2024.yaml). When
    # > 0 it sets the width and replaces freq_mask / time_mask (absolute). 0 disables.
    freq_mask_frac: float = 0.0
    time_mask_frac: float = 0.0
    # Pitch shift of the waveform (librosa.effects.pitch_shift) for a fraction pitch_shift_p of the
    # batch, shift ~ U(-s, s) semitones, s = pitch_shift_semitones; features recomputed (DIR path).
    # AI4EDGE 2023: p 0.5, s 2 (see AI4EDGE_PITCH_SHIFT_SEMITONES). p 0 disables (default).
    pitch_shift_p: float = 0.0
    pitch_shift_semitones: float = AI4EDGE_PITCH_SHIFT_SEMITONES
    # Time stretch of the waveform (librosa.effects.time_stretch) for a fraction time_stretch_p of the
    # batch, rate ~ U(1 - r, 1 + r), r = time_stretch_range (rate > 1 is faster); the clip keeps its
    # length (see time_stretch). AI4EDGE 2023: p 0.5, r 0.2. p 0 disables (default).
    time_stretch_p: float = 0.0
    time_stretch_range: float = AI4EDGE_TIME_STRETCH_RANGE
    # PaSST-style pitch shift: per training clip the mel filterbank's top edge is drawn from
    # U(f_max - range, f_max] Hz and the features recomputed. PaSST / SNTL-NTU 2024: 2000 Hz. 0 disables.
    # (PaSST's AugmentMelSTFT draws one edge per batch, whole Hz, from [fmax - range/2, fmax + range/2]
    # around its default fmax = sr/2 - range/2, i.e. [sr/2 - range, sr/2]: the same interval as here
    # for a frontend whose f_max is sr/2. Its 10-Hz fmin_aug_range is not reproduced.)
    fmax_aug_range: float = 0.0

    def __post_init__(self) -> None:
        for name in ("freq_mask", "time_roll", "time_mask"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ConfigError(f"augment {name} must be an integer >= 0, got {v!r}",
                                  hint=f"set {name}=0 to disable it, or a positive number of "
                                       f"{'mel bins' if name == 'freq_mask' else 'frames'}")
        for name in ("mixup_p", "mixstyle_p", "dir_p", "pitch_shift_p", "time_stretch_p"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise ConfigError(f"augment {name} must be a probability in [0, 1], got {v!r}",
                                  hint=f"set {name}=0 to disable it")
        for name in ("mixup_alpha", "mixstyle_alpha"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v) >= 0.0:
                raise ConfigError(f"augment {name} must be >= 0, got {v!r}",
                                  hint="use a Beta concentration such as 0.3 or 1.0 (mixup_alpha=0 disables mixup)")
        if self.mixstyle_p > 0 and self.mixstyle_alpha <= 0:
            raise ConfigError("augment mixstyle_alpha must be > 0 when mixstyle_p > 0",
                              hint="set mixstyle_alpha=0.3 (baseline) or mixstyle_p=0 to disable Freq-MixStyle")
        for name in ("freq_mask_frac", "time_mask_frac"):
            v = getattr(self, name)
            if not _is_number(v) or not 0.0 <= float(v) < 1.0:
                raise ConfigError(f"augment {name} must be a fraction in [0, 1), got {v!r}",
                                  hint=f"use e.g. {name}=0.15 (ITMO 2024: masks up to 15 % wide) or 0 to disable")
        v = self.pitch_shift_semitones
        if not _is_number(v) or not 0.0 <= float(v) <= 12.0:
            raise ConfigError(f"augment pitch_shift_semitones must be in [0, 12], got {v!r}",
                              hint=f"use e.g. {AI4EDGE_PITCH_SHIFT_SEMITONES:g} (AI4EDGE: shifts within ±2 semitones)")
        v = self.time_stretch_range
        if not _is_number(v) or not 0.0 <= float(v) < 1.0:
            raise ConfigError(f"augment time_stretch_range must be in [0, 1) (rates 1 - r … 1 + r), got {v!r}",
                              hint=f"use e.g. {AI4EDGE_TIME_STRETCH_RANGE:g} (AI4EDGE: rates 0.8 … 1.2)")
        v = self.fmax_aug_range
        if not _is_number(v) or not float(v) >= 0.0 or not math.isfinite(float(v)):
            raise ConfigError(f"augment fmax_aug_range must be a number of Hz >= 0, got {v!r}",
                              hint=f"use e.g. {PASST_FMAX_AUG_RANGE:g} (PaSST / SNTL-NTU) or 0 to disable")
        for p, amount, name in ((self.pitch_shift_p, self.pitch_shift_semitones, "pitch_shift_semitones"),
                                (self.time_stretch_p, self.time_stretch_range, "time_stretch_range")):
            if p > 0 and amount <= 0:
                prob = name.rsplit("_", 1)[0] + "_p"
                raise ConfigError(f"augment {name} must be > 0 when {prob} > 0 (else it changes nothing)",
                                  hint=f"set {name} > 0 or {prob}=0 to disable it")

    @property
    def waveform_augmentation(self) -> bool:
        """Whether features are recomputed from waveforms for reasons other than DIR: pitch shift,
        time stretch or the random mel top edge is on (the run must load the waveforms)."""
        return self.pitch_shift_p > 0 or self.time_stretch_p > 0 or self.fmax_aug_range > 0

    def check_frontend(self, frontend: Any) -> None:
        """Raise ConfigError for settings that do not fit ``frontend`` (a FrontendConfig): a random
        top edge reaching down to f_min, a time mask wider than the clip's frames."""
        if self.fmax_aug_range > 0 and frontend.f_max_hz - self.fmax_aug_range <= frontend.f_min:
            raise ConfigError(f"augment fmax_aug_range {self.fmax_aug_range:g} Hz reaches below the frontend's "
                              f"f_min {frontend.f_min:g} Hz (its f_max is {frontend.f_max_hz:g} Hz)",
                              hint=f"use fmax_aug_range < {frontend.f_max_hz - frontend.f_min:g} Hz, e.g. "
                                   f"{PASST_FMAX_AUG_RANGE:g} (PaSST)")
        if self.time_mask > frontend.n_frames:
            raise ConfigError(f"augment time_mask {self.time_mask} exceeds the {frontend.n_frames} frames of a clip",
                              hint=f"use time_mask <= {frontend.n_frames}, or time_mask_frac (e.g. 0.15)")

    @classmethod
    def disabled(cls) -> AugmentConfig:
        """Every augmentation switched off (evaluation, debugging). Time masks, relative masks, pitch
        shift, time stretch and the random mel top edge are off by default already."""
        return cls(freq_mask=0, time_roll=0, mixup_alpha=0.0, mixup_p=0.0, mixstyle_p=0.0, dir_p=0.0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AugmentConfig:
        """Build from a mapping; unknown keys are an error (typos must not pass silently)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown augmentation setting(s): {', '.join(unknown)}",
                              hint=f"valid keys: {', '.join(sorted(names))}")
        return cls(**dict(d))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- helpers

def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"augmentations need an explicit torch.Generator, got {type(generator).__name__}",
                          hint="create one per run: g = torch.Generator().manual_seed(seed)")
    return generator


def _check_4d(x: Tensor, fn: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"{fn}: expected a (batch, channel, mel, frames) tensor, got {shape}",
                          hint="add the channel axis: x.unsqueeze(1) for a (B, M, T) batch")


def _check_prob(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {p}", hint=f"set {name}=0 to disable")


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _beta(alpha: float, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """n draws of Beta(alpha, alpha) as float32, seeded from ``generator`` (via numpy's PCG64)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return torch.as_tensor(lam, dtype=torch.float32, device=device)


def _randperm(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.randperm(n, generator=generator, device=generator.device).to(device)


def _bcast(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-example (B,) vector to broadcast against x (B, ...)."""
    return v.to(x.dtype).reshape((x.shape[0],) + (1,) * (x.ndim - 1))


# ----------------------------------------------------------------------------- augmentations

def freq_mask(x: Tensor, max_width: int, generator: torch.Generator, fill: float = 0.0) -> Tensor:
    """Frequency masking (SpecAugment, Park et al. 2019), one band per example (iid across the batch).

    For every example a width ``w ~ U{0, …, max_width − 1}`` and a start ``f0 ~ U{0, …, M − w}``
    are drawn and mel bins ``[f0, f0 + w)`` of all channels and frames are set to ``fill``.
    Mirrors torchaudio ``FrequencyMasking(max_width, iid_masks=True)`` of the DCASE 2024
    baseline (there the mask is applied to the *power* mel, i.e. log(0 + 1e-5) ≈ −11.5 after the
    log; here it acts on the log-mel, hence the ``fill`` argument, default 0).

    x: (B, C, M, T) -> same shape. ``max_width=0`` returns ``x``.
    """
    return _abs_mask(x, 2, max_width, generator, fill, "freq_mask", "mel bins", "use e.g. 48 (baseline) or 0 to disable",
                     "use max_width <= {size} (the baseline masks up to 48 of 256 bins)")


def _abs_mask(x: Tensor, axis: int, max_width: int, generator: torch.Generator, fill: float, fn: str, unit: str,
              hint_value: str, hint_size: str) -> Tensor:
    """:func:`freq_mask` / :func:`time_mask`: check ``max_width`` (an integer in [0, size of
    ``axis``]; ConfigError naming ``fn`` otherwise; ``hint_size`` may use ``{size}``) and apply
    :func:`_band_mask`."""
    _check_4d(x, fn)
    _check_generator(generator)
    size = x.shape[axis]
    if isinstance(max_width, bool) or int(max_width) != max_width or max_width < 0:
        raise ConfigError(f"{fn}: max_width must be an integer >= 0, got {max_width!r}", hint=hint_value)
    if max_width > size:
        raise ConfigError(f"{fn}: max_width {max_width} exceeds the {size} {unit} of the input",
                          hint=hint_size.format(size=size))
    if max_width == 0 or x.shape[0] == 0:
        return x
    return _band_mask(x, axis, max_width, generator, fill)


def _band_mask(x: Tensor, axis: int, max_width: float, generator: torch.Generator, fill: float) -> Tensor:
    """One band per example along ``axis`` (2 = mel, 3 = time) set to ``fill``: width
    ``w = floor(u·max_width)`` (at most ``ceil(max_width) − 1``), start ``floor(u'·(size − w + 1))``,
    ``u, u' ~ U[0, 1)`` per example — torchaudio ``mask_along_axis_iid``'s draw, in whole bins."""
    size = x.shape[axis]
    b = x.shape[0]
    u = _uniform(2 * b, generator, x.device)
    width = torch.floor(u[:b] * max_width).long().clamp_(max=max(0, math.ceil(max_width) - 1))
    start = torch.floor(u[b:] * (size - width + 1).to(u.dtype)).long()
    start = torch.minimum(start, size - width)
    pos = torch.arange(size, device=x.device)
    mask = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + width)[:, None])  # (B, size)
    shape = [b, 1, 1, 1]
    shape[axis] = size
    return x.masked_fill(mask.reshape(shape), fill)


def time_mask(x: Tensor, max_width: int, generator: torch.Generator, fill: float = 0.0) -> Tensor:
    """Time masking (SpecAugment), one block of frames per example (iid across the batch).

    As :func:`freq_mask` along the frame axis: width ``w ~ U{0, …, max_width − 1}`` frames, start
    ``t0 ~ U{0, …, T − w}``, frames ``[t0, t0 + w)`` of all channels and mel bins set to ``fill``
    (torchaudio ``TimeMasking(max_width, iid_masks=True)``; PaSST / CP-JKU ``timem``).

    x: (B, C, M, T) -> same shape. ``max_width=0`` returns ``x``.
    """
    return _abs_mask(x, 3, max_width, generator, fill, "time_mask", "frames", "use a number of frames, or 0 to disable",
                     "use max_width <= {size}, or time_mask_frac (a fraction of the frames)")


def _mask_frac(x: Tensor, frac: float, axis: int, generator: torch.Generator, fill: float, fn: str) -> Tensor:
    _check_4d(x, fn)
    _check_generator(generator)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 <= frac < 1.0:
        raise ConfigError(f"{fn}: frac must be a fraction in [0, 1), got {frac!r}",
                          hint="use e.g. 0.15 (ITMO 2024) or 0 to disable")
    if frac == 0 or x.shape[0] == 0:
        return x
    return _band_mask(x, axis, float(frac) * x.shape[axis], generator, fill)


def freq_mask_frac(x: Tensor, frac: float, generator: torch.Generator, fill: float = 0.0) -> Tensor:
    """Frequency masking with a width relative to the input: per example a band of
    ``floor(u·frac·M)`` mel bins (``u ~ U[0, 1)``, so never more than ``frac`` of the M bins) at a
    uniform start, set to ``fill``. torchaudio ``FrequencyMasking(frac·M, iid_masks=True)`` with a
    fractional mask parameter; ITMO 2024 uses ``frac = 0.15``. x: (B, C, M, T); ``frac=0`` returns ``x``."""
    return _mask_frac(x, frac, 2, generator, fill, "freq_mask_frac")


def time_mask_frac(x: Tensor, frac: float, generator: torch.Generator, fill: float = 0.0) -> Tensor:
    """Time masking with a width relative to the input: per example ``floor(u·frac·T)`` frames
    (never more than ``frac`` of the T frames) at a uniform start, set to ``fill``; ITMO 2024 uses
    ``frac = 0.15``. x: (B, C, M, T); ``frac=0`` returns ``x``."""
    return _mask_frac(x, frac, 3, generator, fill, "time_mask_frac")


def time_roll(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Circular shift along time, ``shift ~ U{−max_shift, …, max_shift}`` per example.

    Output frame t of example b is input frame ``(t − shift_b) mod T`` (``torch.roll``
    semantics). Spectrogram-domain counterpart of the DCASE 2024 baseline's waveform roll
    (``RollDataset``, ``np.random.random_integers(-roll, roll)``); unlike a waveform roll it moves
    whole frames and keeps the STFT frame at the wrap-around point intact.

    x: (B, C, M, T) -> same shape. ``max_shift=0`` returns ``x``.
    """
    _check_4d(x, "time_roll")
    _check_generator(generator)
    if isinstance(max_shift, bool) or int(max_shift) != max_shift or max_shift < 0:
        raise ConfigError(f"time_roll: max_shift must be an integer >= 0, got {max_shift!r}",
                          hint="use e.g. 6 frames (0.1 s at hop 500 / 32 kHz) or 0 to disable")
    if max_shift == 0 or x.shape[0] == 0:
        return x
    b, t = x.shape[0], x.shape[-1]
    shifts = torch.randint(-int(max_shift), int(max_shift) + 1, (b,), generator=generator,
                           device=generator.device).to(x.device)
    idx = torch.remainder(torch.arange(t, device=x.device)[None, :] - shifts[:, None], t)  # (B, T)
    return x.gather(-1, idx[:, None, None, :].expand_as(x))


def freq_mixstyle(x: Tensor, alpha: float, p: float, generator: torch.Generator, eps: float = 1e-6) -> Tensor:
    """Freq-MixStyle (Schmid et al., CP-JKU DCASE 2022–2024; MixStyle: Zhou et al., ICLR 2021).

    With probability ``p`` for the whole batch: per example and per frequency band, the mean and
    standard deviation over (channel, time) — dims (1, 3), keepdim — are computed (unbiased
    variance, ``std = sqrt(var + eps)``, statistics detached), the example is normalised with
    them and re-styled with statistics mixed with those of a randomly permuted partner:
    ``mu = λ·mu + (1−λ)·mu[perm]``, same for std, ``λ ~ Beta(alpha, alpha)`` per example.
    This is ``helpers/utils.py: mixstyle`` of the DCASE 2024 baseline (frequency-wise instead
    of MixStyle's channel-wise statistics), with the randomness taken from ``generator``.

    x: (B, C, M, T) -> same shape. ``p=0`` returns ``x``; ``p=1`` always mixes.
    """
    _check_4d(x, "freq_mixstyle")
    _check_generator(generator)
    _check_prob(p, "mixstyle p")
    if p == 0 or x.shape[0] == 0:
        return x
    if not alpha > 0:
        raise ConfigError(f"freq_mixstyle: alpha must be > 0, got {alpha}",
                          hint="use alpha=0.3 (baseline) or p=0 to disable")
    if x.shape[1] * x.shape[3] < 2:
        raise ConfigError(f"freq_mixstyle: needs >= 2 values per band for a variance, input {tuple(x.shape)}",
                          hint="use inputs with more than one frame, or disable Freq-MixStyle (mixstyle_p=0)")
    if float(_uniform(1, generator, torch.device("cpu"))) >= p:
        return x
    b = x.shape[0]
    f_mu = x.mean(dim=(1, 3), keepdim=True).detach()
    f_sig = (x.var(dim=(1, 3), keepdim=True) + eps).sqrt().detach()
    x_normed = (x - f_mu) / f_sig
    lam = _bcast(_beta(alpha, b, generator, x.device), x)
    perm = _randperm(b, generator, x.device)
    mu_mix = f_mu * lam + f_mu[perm] * (1 - lam)
    sig_mix = f_sig * lam + f_sig[perm] * (1 - lam)
    return x_normed * sig_mix + mu_mix


def mixup(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator,
          p: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Mixup (Zhang et al. 2018) with a per-example weight, as in CP-JKU's ``mixup()``.

    ``λ_i ~ Beta(alpha, alpha)``, folded to ``λ_i ← max(λ_i, 1 − λ_i) ∈ [0.5, 1]`` so each
    mixed example stays closest to its own label; a random permutation gives the partners:
    ``x_mixed[i] = λ_i·x[i] + (1 − λ_i)·x[perm[i]]``.

    Args:
        x: (B, ...) inputs (any shape with the batch first).
        y: labels (B,) or one-hot/soft (B, C); only checked against the batch size here — the
            labels are mixed by the loss (:func:`mixup_loss`) or :func:`mix_targets`.
        alpha: Beta concentration; ``alpha=0`` disables mixup.
        p: probability that this batch is mixed at all (default 1).

    Returns ``(x_mixed, perm, lam)``: perm (B,) long, lam (B,) float32 on x's device. When not
    mixed: ``x`` itself, the identity permutation and ``lam = 1``.
    """
    _check_generator(generator)
    _check_prob(p, "mixup p")
    if not alpha >= 0:
        raise ConfigError(f"mixup: alpha must be >= 0, got {alpha}", hint="use alpha=1.0, or 0 to disable mixup")
    b = x.shape[0]
    if y.shape[0] != b:
        raise ConfigError(f"mixup: {y.shape[0]} labels for a batch of {b}", hint="pass the labels of this batch")
    identity = (x, torch.arange(b, device=x.device), torch.ones(b, dtype=torch.float32, device=x.device))
    if alpha == 0 or p == 0 or b == 0:
        return identity
    if p < 1 and float(_uniform(1, generator, torch.device("cpu"))) >= p:
        return identity
    lam = _beta(alpha, b, generator, x.device)
    lam = torch.maximum(lam, 1 - lam)
    perm = _randperm(b, generator, x.device)
    lam_x = _bcast(lam, x)
    return x * lam_x + x[perm] * (1 - lam_x), perm, lam


def mix_targets(y: Tensor, perm: Tensor, lam: Tensor, num_classes: int | None = None) -> Tensor:
    """Mixed soft targets ``lam_i·t[i] + (1 − lam_i)·t[perm[i]]`` (B, C), t = one-hot(y) for indices."""
    if y.ndim == 1 and not y.is_floating_point():
        if num_classes is None:
            raise ConfigError("mix_targets: num_classes is needed for class-index labels",
                              hint="pass num_classes=10 (or the model's number of outputs)")
        t = torch.nn.functional.one_hot(y.long(), num_classes).float()
    else:
        t = y.float()
    lam = lam.to(t.device, t.dtype)[:, None]
    return lam * t + (1 - lam) * t[perm.to(t.device)]


def mixup_loss(loss_fn: Callable[[Tensor, Tensor], Tensor], logits: Tensor, y: Tensor, perm: Tensor,
               lam: Tensor, reduction: str = "mean") -> Tensor:
    """Mix per-example losses: ``lam_i·ℓ(z_i, y_i) + (1 − lam_i)·ℓ(z_i, y_perm[i])``.

    ``loss_fn(logits, targets)`` must return per-example losses (B,), e.g.
    ``functools.partial(F.cross_entropy, reduction="none")`` or
    ``lambda z, t: kd_loss(z, teacher, t, reduction="none")``. For losses linear in the target
    (cross-entropy) this equals the loss against :func:`mix_targets`. ``reduction``: ``"mean"``,
    ``"sum"`` or ``"none"`` (B,).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ConfigError(f"mixup_loss: unknown reduction {reduction!r}", hint="use 'mean', 'sum' or 'none'")
    b = logits.shape[0]
    la = loss_fn(logits, y)
    lb = loss_fn(logits, y[perm.to(y.device)])
    if la.shape != (b,) or lb.shape != (b,):
        raise ConfigError(f"mixup_loss: loss_fn must return per-example losses of shape ({b},), got {tuple(la.shape)}",
                          hint="use reduction='none', e.g. functools.partial(F.cross_entropy, reduction='none')")
    lam = lam.to(la.device, la.dtype)
    per = lam * la + (1 - lam) * lb
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    return per


def augment_batch(x: Tensor, cfg: AugmentConfig, generator: torch.Generator, mask_fill: float = 0.0) -> Tensor:
    """Training-time spectrogram augmentation of a log-mel batch, in the DCASE 2024 baseline order.

    ``time_roll(cfg.time_roll) → freq_mask(cfg.freq_mask) → time_mask(cfg.time_mask) →
    freq_mixstyle(cfg.mixstyle_alpha, cfg.mixstyle_p)``; see the module docstring for why. A relative
    width ``cfg.freq_mask_frac`` / ``cfg.time_mask_frac`` > 0 replaces the absolute one
    (:func:`freq_mask_frac`, :func:`time_mask_frac`); each mask draws nothing when off. Mixup
    (labels) and the waveform augmentations (DIR, pitch shift, time stretch, random mel top edge)
    are applied elsewhere. x: (B, C, M, T) -> same shape. ``mask_fill``: value of masked log-mel bins;
    pass ``log(log_offset)`` to reproduce the baseline, which masks the power mel before the log.
    """
    if not isinstance(cfg, AugmentConfig):
        raise ConfigError(f"augment_batch: cfg must be an AugmentConfig, got {type(cfg).__name__}",
                          hint="build it with AugmentConfig(...) or AugmentConfig.from_dict(...)")
    _check_4d(x, "augment_batch")
    _check_generator(generator)
    x = time_roll(x, cfg.time_roll, generator)
    if cfg.freq_mask_frac > 0:
        x = freq_mask_frac(x, cfg.freq_mask_frac, generator, fill=mask_fill)
    else:
        x = freq_mask(x, cfg.freq_mask, generator, fill=mask_fill)
    if cfg.time_mask_frac > 0:
        x = time_mask_frac(x, cfg.time_mask_frac, generator, fill=mask_fill)
    else:
        x = time_mask(x, cfg.time_mask, generator, fill=mask_fill)
    x = freq_mixstyle(x, cfg.mixstyle_alpha, cfg.mixstyle_p, generator)
    return x


# ----------------------------------------------------------------------------- waveform augmentations

def _librosa():
    """librosa, imported on first use (it takes a while; only pitch shift / time stretch need it)."""
    try:
        import librosa
    except ImportError:  # pragma: no cover - a dependency of asc-edge (pyproject.toml)
        raise ConfigError("pitch shift / time stretch need librosa, which is not installed",
                          hint="pip install librosa==0.11.0 (asc-edge's dependency), or set pitch_shift_p=0 and "
                               "time_stretch_p=0") from None
    return librosa


def _as_wave(wave: Any, fn: str) -> np.ndarray:
    w = np.ascontiguousarray(wave, dtype=np.float32)
    if w.ndim != 1 or w.size == 0:
        raise ConfigError(f"{fn}: expected one non-empty clip of shape (samples,), got shape {w.shape}",
                          hint="pass a single mono waveform")
    return w


def pitch_shift(wave: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """The clip shifted in pitch by ``semitones`` (12 = one octave up), same duration, float32 (samples,).

    ``librosa.effects.pitch_shift(wave, sr=sample_rate, n_steps=semitones)``: a phase-vocoder time
    stretch by ``2^(−semitones/12)`` (``librosa.stft`` defaults: n_fft 2048, hop 512) followed by
    resampling back to the original duration (soxr, ``res_type="soxr_hq"``); every frequency is
    multiplied by ``2^(semitones/12)``. librosa returns exactly ``len(wave)`` samples.
    ``semitones=0`` returns a float32 copy.
    """
    w = _as_wave(wave, "pitch_shift")
    if semitones == 0:
        return w.copy()
    y = _librosa().effects.pitch_shift(w, sr=int(sample_rate), n_steps=float(semitones))
    return np.ascontiguousarray(y[: w.size], dtype=np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """The clip played ``rate`` times faster without a pitch change, kept at its length: float32 (samples,).

    ``librosa.effects.time_stretch(wave, rate=rate)`` (phase vocoder; ``rate > 1`` is faster, so
    every period becomes ``1/rate`` as long) gives about ``len(wave)/rate`` samples, which are then
    fitted to ``len(wave)``: a longer result (``rate < 1``) keeps its first ``len(wave)`` samples; a
    shorter one (``rate > 1``) is padded circularly, with its own beginning (``np.pad`` mode
    ``"wrap"``), not with silence — a scene clip stays a scene, like :func:`time_roll`'s wrap-around.
    ``rate=1`` returns a float32 copy.
    """
    w = _as_wave(wave, "time_stretch")
    if isinstance(rate, bool) or not rate > 0 or not math.isfinite(rate):
        raise ConfigError(f"time_stretch: rate must be a finite number > 0, got {rate!r}",
                          hint="use rates around 1, e.g. 0.8 … 1.2 (AI4EDGE)")
    if rate == 1:
        return w.copy()
    y = np.asarray(_librosa().effects.time_stretch(w, rate=float(rate)), dtype=np.float32)
    n = w.size
    if y.size >= n:
        return np.ascontiguousarray(y[:n])
    return np.pad(y, (0, n - y.size), mode="wrap")


def logmel_random_fmax(mel: torch.nn.Module, wave: Tensor, f_max: Sequence[float] | Tensor) -> Tensor:
    """Log-mel features with a per-clip top mel edge (PaSST's ``fmax_aug_range`` augmentation).

    ``mel`` is the run's :class:`asc_edge.features.LogMel`; clip ``b`` of ``wave`` (B, samples) gets
    the filterbank of ``mel.cfg`` with ``f_max = f_max[b]`` Hz (:func:`asc_edge.features.mel_filterbank`,
    same HTK triangles), everything else (STFT, power, ``log(x + log_offset)``) as ``mel``. A lower
    top edge spreads the same mel bands over a narrower range of Hz, so a tone lands in a higher band:
    a pitch shift up of the spectrogram (and a higher edge, a shift down). Returns (B, 1, n_mels, frames).
    """
    from asc_edge.features import mel_filterbank

    cfg = mel.cfg
    f_max = [float(f) for f in (f_max.tolist() if isinstance(f_max, Tensor) else f_max)]
    if wave.dim() != 2 or len(f_max) != wave.shape[0]:
        raise ConfigError(f"logmel_random_fmax: {len(f_max)} top edges for waveforms of shape {tuple(wave.shape)}",
                          hint="pass a (batch, samples) waveform and one f_max per clip")
    power = mel.power_spectrogram(wave.to(torch.float32))  # (B, n_freqs, frames)
    out = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*cover no FFT bin.*")  # narrow bands of a low edge: expected here
        for b, fm in enumerate(f_max):
            fb = mel_filterbank(dataclasses.replace(cfg, f_max=fm)).to(power.device)
            out.append(torch.matmul(power[b].transpose(-1, -2), fb).transpose(-1, -2))
    return torch.log(torch.stack(out) + cfg.log_offset).unsqueeze(1)
