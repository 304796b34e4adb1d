"""Device impulse responses (DIRs) for device augmentation.

As in the CP-JKU DCASE 2023 submission (Schmid et al., "CP-JKU submission to DCASE23",
``fschmid56/cpjku_dcase23``): every ``*.wav`` of a folder of MicIRP microphone impulse
responses is loaded mono at the training rate, and a device-``a`` waveform is convolved with
one of them (full linear convolution, truncated to the original length, no gain change).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import oaconvolve

from asc_edge.data.audio import load_audio
from asc_edge.errors import DataError


def load_dirs(dirs_dir: Path, sample_rate: int) -> list[np.ndarray]:
    """Load every ``*.wav`` in ``dirs_dir`` (sorted by name), mono float32 (samples,) at ``sample_rate`` Hz.

    The impulse responses keep their length (no padding/cropping). Raises DataError when the folder
    is missing or holds no WAV files, or (via ``load_audio``) when one file is unreadable.
    """
    d = Path(dirs_dir).expanduser()
    if not d.is_dir():
        raise DataError(f"{d}: device impulse response folder not found",
                        hint="pass the folder of DIR WAVs (e.g. ../shared/data/dirs) or turn DIR augmentation off")
    paths = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() == ".wav")
    if not paths:
        raise DataError(f"{d}: no *.wav device impulse responses in this folder",
                        hint="copy the MicIRP DIR WAVs there (e.g. from ../shared/data/dirs) or turn DIR augmentation off")
    return [load_audio(p, sample_rate, duration_s=None) for p in paths]


def convolve_dir(wave: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve ``wave`` (samples,) with impulse response ``ir`` (taps,); float32 (samples,).

    Full linear convolution (overlap-add FFT, ``scipy.signal.oaconvolve``, computed in float64),
    truncated to ``len(wave)``: output[n] = sum_k ir[k] * wave[n - k]. Same as CP-JKU's
    ``convolve(x, dir, 'full')[:, :x.shape[1]]``. Raises ValueError for non-1-D or empty input.
    """
    w = np.asarray(wave, dtype=np.float64)
    h = np.asarray(ir, dtype=np.float64)
    if w.ndim != 1 or h.ndim != 1 or h.size == 0:
        raise ValueError(f"convolve_dir expects 1-D wave and non-empty 1-D ir, got shapes {w.shape} and {h.shape}")
    if w.size == 0:
        return np.zeros(0, dtype=np.float32)
    y = oaconvolve(w, h, mode="full")[: w.size]
    return y.astype(np.float32)
