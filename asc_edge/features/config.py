"""Log-mel frontend settings; the defaults are the DCASE 2024 Task 1 baseline.

The baseline (``CPJKU/dcase2024_task1_baseline``) resamples to 32 kHz and uses torchaudio's
``MelSpectrogram(sample_rate=32000, n_fft=4096, win_length=3072, hop_length=500, n_mels=256,
f_min=0, f_max=None)`` followed by ``log(x + 1e-5)``: a 1-s clip gives 256 x 65 features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from asc_edge.errors import ConfigError

_INT_FIELDS = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels")
_FLOAT_FIELDS = ("f_min", "log_offset", "clip_seconds")

RESAMPLERS = ("poly", "sinc_hann")
"""Values of ``FrontendConfig.resampler``: ``"poly"`` = :func:`asc_edge.data.audio.resample` (scipy
``resample_poly``, Kaiser window; the default), ``"sinc_hann"`` = torchaudio ``Resample``'s
``sinc_interp_hann`` design, lowpass filter width 6, roll-off 0.99 (what CPJKU-family checkpoints store
as ``mel.0.kernel``), applied by :class:`asc_edge.features.cpjku.SincResampler`."""


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of the log-mel frontend (``asc_edge.features.logmel.LogMel``).

    sample_rate: Hz the audio is resampled to.
    n_fft: FFT size in samples; ``n_freqs = n_fft // 2 + 1`` one-sided bins.
    win_length: periodic Hann window length in samples, zero-padded centrally to n_fft (as torch.stft).
    hop_length: frame step in samples. Frames are centred (reflect padding of n_fft // 2 each side).
    n_mels: mel bands (HTK scale, triangular, no area normalisation).
    f_min, f_max: band edges in Hz; ``f_max=None`` means sample_rate / 2 (sample_rate // 2 for odd rates).
    log_offset: features are ``log(mel_power + log_offset)``.
    clip_seconds: clip length in seconds (audio is padded/cropped to ``n_samples``).
    resampler: how audio at another rate is brought to sample_rate, one of ``RESAMPLERS``: "poly"
        (default, scipy polyphase) or "sinc_hann" (torchaudio's windowed-sinc kernel, as the CPJKU
        baseline's ``mel.0``). Only a non-default value enters ``to_dict()`` and ``key()``.

    Raises ConfigError on construction for non-integer / non-positive sizes, win_length > n_fft,
    f_min < 0, f_max <= f_min or f_max > sample_rate / 2, log_offset <= 0, a clip too short to
    be reflect-padded (n_samples <= n_fft // 2), or a resampler not in ``RESAMPLERS``.
    """

    sample_rate: int = 32000
    n_fft: int = 4096
    win_length: int = 3072
    hop_length: int = 500
    n_mels: int = 256
    f_min: float = 0.0
    f_max: float | None = None
    log_offset: float = 1e-5
    clip_seconds: float = 1.0
    resampler: str = "poly"

    def __post_init__(self) -> None:
        if self.resampler not in RESAMPLERS:
            raise ConfigError(f"frontend: unknown resampler {self.resampler!r}",
                              hint=f"use one of: {', '.join(RESAMPLERS)}")
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                if isinstance(v, float) and v.is_integer():
                    object.__setattr__(self, name, int(v))  # e.g. 32000.0 read from JSON
                else:
                    raise ConfigError(f"frontend: {name} must be an integer, got {v!r}",
                                      hint=f"set {name} to a whole number (samples or Hz)")
            if getattr(self, name) <= 0:
                raise ConfigError(f"frontend: {name} must be > 0, got {getattr(self, name)}",
                                  hint=f"set {name} to a positive integer")
        for name in _FLOAT_FIELDS + (("f_max",) if self.f_max is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"frontend: {name} must be a finite number, got {v!r}",
                                  hint=f"set {name} to a number")
            object.__setattr__(self, name, float(v))  # 0 and 0.0 give the same key()
        nyq = self.sample_rate / 2
        if self.win_length > self.n_fft:
            raise ConfigError(f"frontend: win_length {self.win_length} > n_fft {self.n_fft}",
                              hint="use win_length <= n_fft (the window is zero-padded to n_fft)")
        if self.f_min < 0:
            raise ConfigError(f"frontend: f_min {self.f_min} Hz is negative", hint="use f_min >= 0 Hz")
        if self.f_max is not None and self.f_max > nyq:
            raise ConfigError(f"frontend: f_max {self.f_max} Hz is above the Nyquist frequency {nyq:g} Hz",
                              hint=f"use f_max <= {nyq:g} Hz or None (= sample_rate / 2)")
        if self.f_max_hz <= self.f_min:
            raise ConfigError(f"frontend: f_max {self.f_max_hz} Hz must be above f_min {self.f_min} Hz",
                              hint="raise f_max or lower f_min")
        if self.log_offset <= 0:
            raise ConfigError(f"frontend: log_offset must be > 0, got {self.log_offset}",
                              hint="use e.g. 1e-5 (DCASE 2024 baseline)")
        if self.clip_seconds <= 0:
            raise ConfigError(f"frontend: clip_seconds must be > 0, got {self.clip_seconds}",
                              hint="use e.g. 1.0 for TAU 2022 clips")
        if self.n_samples <= self.n_fft // 2:
            raise ConfigError(
                f"frontend: a {self.clip_seconds:g}-s clip ({self.n_samples} samples) is too short for "
                f"reflect padding of n_fft // 2 = {self.n_fft // 2} samples",
                hint="use a longer clip_seconds or a smaller n_fft",
            )

    # ---- derived sizes -------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Samples per clip: round(sample_rate * clip_seconds)."""
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def n_freqs(self) -> int:
        """One-sided FFT bins: n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def n_frames(self) -> int:
        """Frames per clip with centred frames: 1 + n_samples // hop_length."""
        return 1 + self.n_samples // self.hop_length

    @property
    def f_max_hz(self) -> float:
        """Upper band edge in Hz: f_max, or sample_rate // 2 when f_max is None (torchaudio's default)."""
        return float(self.f_max) if self.f_max is not None else float(self.sample_rate // 2)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Feature shape of one clip: (1, n_mels, n_frames)."""
        return (1, self.n_mels, self.n_frames)

    # ---- (de)serialisation -------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields (JSON-serialisable), except ``resampler`` when it is the default
        "poly": the dicts (and so ``key()``, cache folders, export reports and generated C headers) of
        frontends made before that setting existed stay as they were."""
        d = dataclasses.asdict(self)
        if d["resampler"] == "poly":
            del d["resampler"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        """Build from a dict such as ``to_dict()`` gives; missing keys take the defaults.

        Raises ConfigError for a non-dict, unknown keys, or invalid values.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"frontend: expected a dict of settings, got {type(d).__name__}",
                              hint="pass FrontendConfig.to_dict() output")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"frontend: unknown setting(s) {', '.join(map(str, unknown))}",
                              hint=f"valid settings: {', '.join(names)}")
        return cls(**d)

    def key(self) -> str:
        """Short stable id of these settings (first 16 hex digits of sha256 of the sorted-key JSON of
        ``to_dict()``); used to name feature caches. Changes when any field changes (``resampler``
        counts only when it is not the default "poly", so default keys are those of earlier versions)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


PRESETS: dict[str, FrontendConfig] = {
    # DCASE 2024 Task 1 baseline: 32 kHz, 256 mels x 65 frames per 1-s clip.
    "dcase2024": FrontendConfig(),
    # Same FFT/window/hop at the native 44.1 kHz (no resampling): 256 x 89.
    "44k-256": FrontendConfig(sample_rate=44100),
    # Half rate, half sizes: 128 x 65.
    "16k-128": FrontendConfig(sample_rate=16000, n_fft=2048, win_length=1536, hop_length=250, n_mels=128),
    # Quarter rate: 140 x 65.
    "8k-140": FrontendConfig(sample_rate=8000, n_fft=1024, win_length=768, hop_length=125, n_mels=140),
    # KT (DCASE 2024) Ghost-BC-Res2Net students: the baseline's STFT with 288 mel bins: 288 x 65.
    "kt-288": FrontendConfig(n_mels=288),
    # ITMO (DCASE 2024) CP-Mobile: 16 kHz, 128 mels, 128-ms window, 10-ms hop: 128 x 101.
    "itmo-16k": FrontendConfig(sample_rate=16000, n_fft=2048, win_length=2048, hop_length=160, n_mels=128),
    # AI4EDGE (DCASE 2023) SM1-SM3: 8 kHz, 140 mels, window 2048, hop 1024 (our choice, models/ai4edge_sm.py): 140 x 8.
    "ai4edge-8k": FrontendConfig(sample_rate=8000, n_fft=2048, win_length=2048, hop_length=1024, n_mels=140),
    # Tencent (DCASE 2023) CP-ResNet s1-s4: 32 kHz, 256 mels, 2048 window, hop 744 (43 hops span the 1-s clip): 256 x 44.
    "tencent-32k": FrontendConfig(sample_rate=32000, n_fft=2048, win_length=2048, hop_length=744, n_mels=256),
    # PaSST teacher (models/transformer_teachers.py): hear21passt's AugmentMelSTFT in eval mode, 32 kHz,
    # 128 mels, window 800, hop 320, n_fft 1024, f_min 0, f_max 15 kHz (its fmax=None with
    # fmax_aug_range=2000 as in hear21passt.base: sr // 2 - 1000): 128 x 101. What differs from the
    # original: no 0.97 pre-emphasis, periodic (not symmetric) Hann window, torchaudio-style HTK
    # triangles in Hz instead of Kaldi's triangles in mel; its "(x + 4.5) / 5" scaling is done by the
    # model wrapper (input_mean / input_std), not here.
    "passt-32k": FrontendConfig(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320, n_mels=128,
                                f_min=0.0, f_max=15000.0),
    # AST teacher: 16 kHz, 128 mels, 25-ms window (400), 10-ms hop (160), f_max 8 kHz, log floor 1.19e-7
    # (Kaldi's float epsilon; Kaldi takes log(max(x, eps)), we log(x + eps)): 128 x 101. AST's own
    # features are torchaudio.compliance.kaldi.fbank (what transformers' ASTFeatureExtractor calls):
    # snip-edges framing (98 frames per 1-s clip, not 101 centred ones), DC removal, 0.97 pre-emphasis,
    # symmetric Hann, Kaldi mel triangles from low_freq 20 Hz (0 Hz here, as every preset: the filterbank
    # checks in tests/test_features.py assume f_min = 0), n_fft 400 -> 512.
    # n_fft is 1024 here, not 512: with 512 one of the 128 bands covers no FFT bin (a constant
    # feature; Kaldi has the same empty band); the denser bins put band energies about 2x (+0.69 in
    # log, median on noise) above the 512-point ones. AST's (x + 4.27) / 9.14 normalisation is done
    # by the model wrapper.
    "ast-16k": FrontendConfig(sample_rate=16000, n_fft=1024, win_length=400, hop_length=160, n_mels=128,
                              log_offset=1.1920928955078125e-07),
}


def get_frontend(name: str | dict) -> FrontendConfig:
    """The preset called ``name``, or a frontend from a dict of :class:`FrontendConfig` settings
    (missing ones take the defaults, e.g. ``{"sample_rate": 16000, "n_fft": 2048, "win_length": 1536,
    "hop_length": 250, "n_mels": 128}``: how ``asc-edge tune`` writes a searched frontend into a
    recipe). ConfigError listing the presets for an unknown name, or for a bad setting."""
    if isinstance(name, dict):
        return FrontendConfig.from_dict(name)
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown frontend {name!r}",
                          hint=f"use one of: {', '.join(PRESETS)}") from None
