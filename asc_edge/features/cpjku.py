"""The front end of CPJKU DCASE 2024 baseline-family checkpoints → a :class:`FrontendConfig`.

The CPJKU DCASE 2024 Task 1 baseline (``CPJKU/dcase2024_task1_baseline``, ``run_training.py``) keeps
its front end ``nn.Sequential(Resample, MelSpectrogram)`` (torchaudio) in the checkpoint as buffers:
``mel.0.kernel`` (only when the resampler changes the rate), ``mel.1.spectrogram.window`` and
``mel.1.mel_scale.fb``. :func:`infer_frontend` maps them onto asc-edge's log-mel settings and checks
that asc-edge reproduces them; the network part of the import is
:mod:`asc_edge.models.cpjku` (which calls this module).

Where each value comes from:

========================  =====================================================================
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
========================  =====================================================================

Resampling: the import checks that ``mel.0.kernel`` is the standard torchaudio ``sinc_interp_hann``
design (lowpass filter width 6, roll-off 0.99) and sets the frontend's ``resampler="sinc_hann"``: the
feature cache then resamples with :class:`SincResampler`, which rebuilds that kernel
(:func:`sinc_resample_kernel`, equal to the stored one bit for bit) and applies it like the baseline
(:func:`cpjku_resample`), so the float and int8 references and the audio sent to the device use the
checkpoint's own resampler rather than asc-edge's default (scipy ``resample_poly``). How much the
two differ on real clips is measured per checkpoint by ``benchmarks/tau_checkpoints.py``.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from asc_edge.errors import CheckpointError, ConfigError
from asc_edge.features.config import FrontendConfig
from asc_edge.features.logmel import hann_window, mel_filterbank

__all__ = ["MEL_KEYS", "BASELINE_HOP_LENGTH", "SOURCE_SAMPLE_RATE", "infer_frontend", "sinc_resample_kernel",
           "cpjku_resample", "SincResampler", "SINC_HANN"]

MEL_KEYS = ("mel.0.kernel", "mel.1.spectrogram.window", "mel.1.mel_scale.fb")
"""The front-end buffers of a baseline-family checkpoint's ``state_dict`` (the kernel is optional)."""

SOURCE_SAMPLE_RATE = 44100        # TAU22 development audio; the baseline's --orig_sample_rate
BASELINE_HOP_LENGTH = 500         # the baseline's --hop_length (not stored in the checkpoint)
BASELINE_LOG_OFFSET = 1e-5        # the baseline's mel_forward: (x + 1e-5).log()
BASELINE_CLIP_SECONDS = 1.0       # TAU22 clips are 1 s

# Tolerances of the front-end checks. The stored filterbank differs from ours by up to 2.6e-5
# (float32 rounding of the band edges, a few ulp of the Hz values in another torch build); a
# different f_max by 1 Hz already moves it by > 1e-3. Window: identical in practice (torch.hann_window).
# Resampler kernel: ours equals the stored one bit for bit (0.0 on the five KD-Ensemble checkpoints;
# 7.4e-6 before the phase offsets were computed in float32 as torchaudio does; peak 0.72); another
# roll-off (0.98) or filter width changes it by > 1e-3.
FB_ATOL = 1e-4
WINDOW_ATOL = 1e-6
KERNEL_ATOL = 1e-4


# --------------------------------------------------------------------------- resampler

def sinc_resample_kernel(orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
                         rolloff: float = 0.99) -> tuple[torch.Tensor, int]:
    """The windowed-sinc (Hann) resampling kernel of torchaudio's ``Resample`` (``sinc_interp_hann``).

    Written from torchaudio's documented algorithm (``torchaudio.functional.resample``): rates are
    reduced by their gcd (44100 → 32000 Hz: orig 441, new 320); the low-pass cut-off is
    ``min(orig, new) · rolloff`` (in reduced units); ``width = ceil(lowpass_filter_width · orig /
    cut-off)``; output phase ``i`` (0 … new−1) gets the taps ``sinc(t) · cos²(t / (2 · lpw))`` at
    ``t = cut-off · (j / orig − i / new)``, ``j = −width … width + orig − 1``, clamped to ±lpw, scaled
    by ``cut-off / orig``. Computed in float64 except the phase offsets ``i / new``, which torchaudio
    (default dtype) computes in float32, returned as float32: equal, bit for bit, to the stored
    ``mel.0.kernel`` of the CPJKU-family checkpoints.

    Returns:
        ``(kernel, width)``: kernel (new, 1, 2 · width + orig) float32 — (320, 1, 459) for 44.1 → 32 kHz,
        the shape of the CPJKU baseline's ``mel.0.kernel`` — and the zero padding ``width`` in samples.
    """
    g = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // g, int(new_freq) // g
    cutoff = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / cutoff)
    j = torch.arange(-width, width + orig, dtype=torch.float64) / orig
    phase = torch.arange(new, dtype=torch.float32) / new               # float32, as torchaudio
    t = (j[None, :] - phase.to(torch.float64)[:, None]) * cutoff
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    kernel = (sinc * (window * (cutoff / orig))).unsqueeze(1)
    return kernel.to(torch.float32), width


# Input samples per conv1d call of cpjku_resample (rounded up to whole output frames of orig samples).
RESAMPLE_CHUNK_SAMPLES = 65536


def cpjku_resample(wave: torch.Tensor, kernel: torch.Tensor, orig: int) -> torch.Tensor:
    """Resample with a stored torchaudio ``Resample`` kernel, as the CPJKU baseline's ``mel.0`` does.

    ``wave`` (..., samples) float32 at the source rate; ``kernel`` (new, 1, 2 · width + orig) with
    ``orig`` the reduced source rate (441 for 44.1 → 32 kHz). Steps (torchaudio's
    ``_apply_sinc_resample_kernel``): zero-pad ``width`` samples before and ``width + orig`` after,
    ``conv1d`` with stride ``orig`` (each of the ``new`` output channels is one output phase),
    interleave the phases, keep the first ``ceil(new · samples / orig)`` samples.

    The convolution runs on blocks of a fixed number of output frames (``RESAMPLE_CHUNK_SAMPLES``
    input samples, the last block zero-padded), every ``conv1d`` call with the same shape: torch
    picks its algorithm by shape, so this makes each output sample independent of the clip's
    length, bit for bit (resampling a clip's first seconds equals resampling all of it, cropped).
    Values equal torchaudio's single ``conv1d`` to float32 rounding (~1e-7).

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
    n_frames = n // orig + 1                                  # conv1d output frames of the padded signal
    block = max(1, math.ceil(RESAMPLE_CHUNK_SAMPLES / orig))  # frames per call
    n_blocks = math.ceil(n_frames / block)
    span = (block - 1) * orig + taps                          # input samples of one call
    x = torch.nn.functional.pad(x, (width, (n_blocks - 1) * block * orig + span - width - n))
    k = kernel.to(torch.float32)
    parts = [torch.nn.functional.conv1d(x[:, None, b * block * orig:b * block * orig + span].contiguous(), k,
                                        stride=orig)                            # (B, new, block)
             for b in range(n_blocks)]
    y = torch.cat(parts, dim=2).transpose(1, 2).reshape(x.shape[0], -1)[:, :math.ceil(new * n / orig)]
    return y.reshape(*shape[:-1], y.shape[-1])


@functools.lru_cache(maxsize=8)
def _sinc_kernel(orig_sr: int, target_sr: int) -> tuple[torch.Tensor, int, int, int]:
    g = math.gcd(orig_sr, target_sr)
    kernel, width = sinc_resample_kernel(orig_sr, target_sr)
    return kernel, width, orig_sr // g, target_sr // g


class SincResampler:
    """torchaudio's ``sinc_interp_hann`` resampler (lowpass filter width 6, roll-off 0.99), the design
    of the CPJKU baseline's ``mel.0``, as a ``resample_fn`` of :func:`asc_edge.data.audio.load_audio`
    (the frontend setting ``resampler="sinc_hann"``).

    ``resampler(x, orig_sr, target_sr)``: ``x`` (samples,) float at ``orig_sr`` Hz → float32
    (ceil(samples · target_sr / orig_sr),) at ``target_sr`` Hz: :func:`sinc_resample_kernel` (cached per
    rate pair) applied by :func:`cpjku_resample`. Equal rates return a float32 copy. Raises
    ConfigError for a rate <= 0.
    """

    def __call__(self, x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
        orig_sr, target_sr = self._rates(orig_sr, target_sr)
        if orig_sr == target_sr:
            return np.array(x, dtype=np.float32, copy=True)
        kernel, _, orig, _ = _sinc_kernel(orig_sr, target_sr)
        wave = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.no_grad():
            return cpjku_resample(wave, kernel, orig).numpy()

    def frames_needed(self, n_out: int, orig_sr: int, target_sr: int) -> int:
        """Input samples (at ``orig_sr``) that the first ``n_out`` output samples depend on, exactly:
        output ``k`` is conv1d frame ``k // new``, which reads inputs up to
        ``(k // new + 1) · orig + width − 1``. Resampling only these gives the same first ``n_out``
        samples, bit for bit, as resampling the whole signal. Equal rates: ``n_out`` (at least 1)."""
        orig_sr, target_sr = self._rates(orig_sr, target_sr)
        if orig_sr == target_sr:
            return max(int(n_out), 1)
        _, width, orig, new = _sinc_kernel(orig_sr, target_sr)
        return ((max(int(n_out), 1) - 1) // new + 1) * orig + width

    @staticmethod
    def _rates(orig_sr: int, target_sr: int) -> tuple[int, int]:
        orig_sr, target_sr = int(orig_sr), int(target_sr)
        if orig_sr <= 0 or target_sr <= 0:
            raise ConfigError(f"resample: sample rates must be > 0 Hz, got {orig_sr} -> {target_sr}",
                              hint="pass positive integer sample rates in Hz")
        return orig_sr, target_sr


SINC_HANN = SincResampler()
"""The resampler of frontends with ``resampler="sinc_hann"``."""



# --------------------------------------------------------------------------- mel filterbank and window

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
        raise CheckpointError(f"{path}: mel.0.kernel has shape {tuple(kernel.shape)}, expected (new, 1, taps)",
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
        f"{path}: mel.0.kernel {tuple(kernel.shape)} is not torchaudio's sinc_interp_hann resampler (lowpass filter "
        f"width 6, roll-off 0.99) from {SOURCE_SAMPLE_RATE} Hz"
        + (f" (closest design differs by {best:.3g})" if best < math.inf else ""),
        hint="asc-edge reproduces only the baseline's standard Resample(44100, new rate); re-train or extend "
             "asc_edge.features.cpjku for this resampler")


def infer_frontend(mel_sd: dict, path: str | Path = "checkpoint",
                   hop_length: int = BASELINE_HOP_LENGTH) -> tuple[FrontendConfig, dict]:
    """The :class:`FrontendConfig` described by a baseline checkpoint's ``mel.*`` buffers, checked.

    ``mel_sd``: ``mel.1.spectrogram.window`` (win_length,), ``mel.1.mel_scale.fb`` (n_fft // 2 + 1,
    n_mels) and, when the audio was resampled, ``mel.0.kernel`` (new, 1, taps). ``hop_length``
    (samples) is not stored; the default is the baseline's 500.

    Returns ``(frontend, notes)``; the frontend's ``resampler`` is "sinc_hann" when the kernel is
    present (the checkpoint's own resampler), else "poly" (no resampling of 44.1 kHz TAU audio).
    ``notes`` records the source of every field and the measured
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
        notes["sample_rate"] = (f"mel.0.kernel {tuple(mel_sd['mel.0.kernel'].shape)}: torchaudio sinc_interp_hann "
                                f"resampler {orig}:{new} from the {SOURCE_SAMPLE_RATE} Hz TAU22 audio "
                                f"→ {sample_rate} Hz")
        notes["resampler"] = {
            "present": True, "kernel_shape": list(mel_sd["mel.0.kernel"].shape), "orig": orig, "new": new,
            "design": "torchaudio Resample sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99",
            "frontend_resampler": "sinc_hann",
            "host": "asc_edge.features.cpjku.SincResampler: sinc_resample_kernel applied by cpjku_resample "
                    "(float and int8 references, and the audio sent to the device)",
            "resampler_kernel_max_abs_diff": kdiff,
            "substitute": "asc_edge.data.audio.resample (scipy resample_poly, Kaiser beta 5), the default "
                          "frontend resampler, no longer used for this model",
            "agreement_with_substitute": "not measured at import (needs audio): benchmarks/tau_checkpoints.py "
                                         "measures changed predictions and mean |logit difference| per "
                                         "checkpoint on the 101 tau_samples clips",
        }
    else:
        sample_rate = SOURCE_SAMPLE_RATE
        notes["sample_rate"] = f"no mel.0.kernel: the model ran on the {SOURCE_SAMPLE_RATE} Hz TAU22 audio"
        notes["resampler"] = {"present": False}
    if window.dim() != 1 or fb.dim() != 2:
        raise CheckpointError(f"{path}: window {tuple(window.shape)} / filterbank {tuple(fb.shape)} have the "
                              "wrong rank",
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
                             log_offset=BASELINE_LOG_OFFSET, clip_seconds=BASELINE_CLIP_SECONDS,
                             resampler="sinc_hann" if "mel.0.kernel" in mel_sd else "poly")
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
            f"{path}: mel.1.mel_scale.fb {tuple(fb.shape)} differs from asc-edge's HTK filterbank (sample rate "
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

