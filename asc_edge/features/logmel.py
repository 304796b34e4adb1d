"""Log-mel frontend of the DCASE 2024 Task 1 baseline, written in plain torch (no torchaudio).

Matches ``torchaudio.transforms.MelSpectrogram`` with its defaults (centred frames, reflect
padding, periodic Hann, power 2, HTK mel scale, no filter normalisation) followed by
``log(x + log_offset)``. Every step is one a microcontroller frontend can do with CMSIS-DSP:
reflect padding, framing, windowing, real FFT, squared magnitude, sparse mel matrix, log.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch

from asc_edge.features.config import FrontendConfig


def _hz_to_mel(freq: float) -> float:
    """HTK mel of a frequency in Hz (Python float, as torchaudio's ``_hz_to_mel``)."""
    return 2595.0 * math.log10(1.0 + (freq / 700.0))


def _mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    """Inverse HTK mel scale on a tensor (as torchaudio's ``_mel_to_hz``)."""
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontendConfig) -> torch.Tensor:
    """Triangular HTK mel filterbank, float32 (n_freqs, n_mels); ``power_spec @ fb`` gives mel power.

    Computed with the same float32 torch operations, in the same order, as
    ``torchaudio.functional.melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None,
    mel_scale="htk")``: bin frequencies ``linspace(0, sample_rate // 2, n_freqs)``, band edges evenly
    spaced on mel(f) = 2595 * log10(1 + f / 700) between f_min and f_max (Hz), each band a triangle
    from edge m to edge m+2 peaking at edge m+1 (no area normalisation). Warns (as torchaudio)
    when a band covers no FFT bin.
    """
    all_freqs = torch.linspace(0, cfg.sample_rate // 2, cfg.n_freqs, dtype=torch.float32)
    m_min = _hz_to_mel(cfg.f_min)
    m_max = _hz_to_mel(cfg.f_max_hz)
    m_pts = torch.linspace(m_min, m_max, cfg.n_mels + 2, dtype=torch.float32)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]                          # (n_mels + 1,)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)     # (n_freqs, n_mels + 2)
    zero = torch.zeros(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]      # (n_freqs, n_mels)
    up_slopes = slopes[:, 2:] / f_diff[1:]                   # (n_freqs, n_mels)
    fb = torch.max(zero, torch.min(down_slopes, up_slopes))
    if (fb.max(dim=0).values == 0.0).any():
        warnings.warn(
            f"mel filterbank: some of the {cfg.n_mels} mel bands cover no FFT bin "
            f"(n_fft={cfg.n_fft}); they will always be log({cfg.log_offset}). "
            "Use fewer mels or a larger n_fft.", stacklevel=2)
    return fb


def hann_window(cfg: FrontendConfig) -> torch.Tensor:
    """Periodic Hann window of ``win_length`` samples, float32: w[n] = 0.5 - 0.5 cos(2 pi n / win_length)."""
    return torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float32)


class LogMel(torch.nn.Module):
    """Waveform (batch, samples) float32 at ``cfg.sample_rate`` -> log-mel (batch, 1, n_mels, frames) float32.

    Steps: reflect-pad n_fft // 2 samples at each end; a frame every hop_length samples
    (frames = 1 + samples // hop_length); multiply by the periodic Hann window of win_length
    zero-padded centrally to n_fft; one-sided real FFT (n_freqs bins); power re^2 + im^2;
    mel = power^T @ fb; log(mel + log_offset). Equivalent to torchaudio
    ``MelSpectrogram(sample_rate, n_fft, win_length, hop_length, f_min, f_max, n_mels=n_mels)``
    then ``(x + 1e-5).log()`` as in the DCASE 2024 Task 1 baseline.
    A 1-D input (samples,) is treated as a batch of one.
    """

    window: torch.Tensor
    fb: torch.Tensor

    def __init__(self, cfg: FrontendConfig | None = None):
        super().__init__()
        self.cfg = cfg if cfg is not None else FrontendConfig()
        self.register_buffer("window", hann_window(self.cfg), persistent=False)
        self.register_buffer("fb", mel_filterbank(self.cfg), persistent=False)

    def power_spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> power spectrogram (batch, n_freqs, frames)."""
        cfg = self.cfg
        spec = torch.stft(wave, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                          window=self.window, center=True, pad_mode="reflect", normalized=False,
                          onesided=True, return_complex=True)
        return spec.real * spec.real + spec.imag * spec.imag

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2:
            raise ValueError(f"LogMel expects a waveform of shape (batch, samples), got {tuple(wave.shape)}")
        if wave.shape[-1] <= self.cfg.n_fft // 2:
            raise ValueError(f"LogMel: {wave.shape[-1]} samples is too short for reflect padding of "
                             f"{self.cfg.n_fft // 2}; pad the clip to cfg.n_samples first")
        power = self.power_spectrogram(wave.to(torch.float32))
        mel = torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)  # (batch, n_mels, frames)
        return torch.log(mel + self.cfg.log_offset).unsqueeze(1)

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"sample_rate={c.sample_rate}, n_fft={c.n_fft}, win_length={c.win_length}, "
                f"hop_length={c.hop_length}, n_mels={c.n_mels}, f_min={c.f_min}, f_max={c.f_max_hz}")


@lru_cache(maxsize=8)
def _module(cfg: FrontendConfig) -> LogMel:
    return LogMel(cfg).eval()


def log_mel(wave: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Log-mel features of one clip: wave (samples,) at ``cfg.sample_rate`` -> (1, n_mels, frames) float32.

    Convenience over ``LogMel`` (no padding/cropping here: pass ``cfg.n_samples`` samples for
    ``cfg.n_frames`` frames).
    """
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if x.dim() != 1:
        raise ValueError(f"log_mel expects one clip of shape (samples,), got {tuple(x.shape)}")
    with torch.inference_mode():
        out = _module(cfg)(x.unsqueeze(0))
    return out[0].numpy().copy()


def sparse_mel(cfg: FrontendConfig) -> list[tuple[int, np.ndarray]]:
    """The mel filterbank in the sparse layout a C frontend keeps in flash.

    One entry per mel band: (index of its first non-zero FFT bin, float32 weights of the bins from
    there to its last non-zero bin, zeros inside included). ``fb[start:start+len(w), m] == w`` and
    ``fb`` is zero elsewhere, so the dense ``mel_filterbank(cfg)`` is reconstructed exactly.
    A band with no non-zero bin gives (0, empty array).
    """
    fb = mel_filterbank(cfg).numpy()
    out: list[tuple[int, np.ndarray]] = []
    for m in range(fb.shape[1]):
        nz = np.flatnonzero(fb[:, m])
        if nz.size == 0:
            out.append((0, np.zeros(0, dtype=np.float32)))
        else:
            out.append((int(nz[0]), fb[nz[0]: nz[-1] + 1, m].astype(np.float32, copy=True)))
    return out
