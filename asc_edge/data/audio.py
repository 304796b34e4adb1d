"""Audio loading: soundfile I/O, mean down-mix, polyphase resampling, fixed clip length.

Everything returns float32 mono at the requested rate. Conversions that change the audio
(resampling, down-mixing, padding, cropping) are counted in an ``AudioStats`` so the caller
can report them once instead of once per clip.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from asc_edge.errors import ConfigError, DataError

log = logging.getLogger(__name__)
_warned_downmix = False  # the stereo warning is logged once per process

# Largest sample magnitude ``load_audio`` accepts (full scale = 1.0). Integer PCM is scaled into
# [-1, 1); float audio is meant to be in [-1, 1] too, and somewhat above 1 (un-clipped float mixes)
# is still plausible. A float WAV with a sample beyond 1000 (60 dB over full scale, e.g. 1e30) is
# broken audio: its float32 power spectrum overflows to inf and training ends in NaN.
MAX_ABS_SAMPLE = 1e3


@dataclass
class AudioStats:
    """Counters filled by ``load_audio``; print ``summary()`` once after loading."""

    loaded: int = 0
    resampled: int = 0
    downmixed: int = 0
    padded: int = 0
    cropped: int = 0
    rates: Counter = field(default_factory=Counter, repr=False)  # (orig_sr, target_sr) -> clips resampled
    duration_s: float | None = field(default=None, repr=False)   # clip length padded/cropped to

    def summary(self) -> str:
        """One line, e.g. ``"1143 clips: 1143 resampled 44100->32000 Hz, 0 stereo down-mixed, 2 padded to 1.0 s, 0 cropped"``."""
        if self.rates:
            pairs = sorted(self.rates.items())
            if len(pairs) == 1:
                (o, t), _ = pairs[0]
                res = f"{self.resampled} resampled {o}->{t} Hz"
            else:
                res = f"{self.resampled} resampled (" + ", ".join(f"{n} {o}->{t} Hz" for (o, t), n in pairs) + ")"
        else:
            res = f"{self.resampled} resampled"
        to = f" to {float(self.duration_s)} s" if self.duration_s is not None else ""
        return (f"{self.loaded} clips: {res}, {self.downmixed} stereo down-mixed, "
                f"{self.padded} padded{to}, {self.cropped} cropped")


def resample(x: np.ndarray, orig_sr: int, target_sr: int, axis: int = -1) -> np.ndarray:
    """Resample ``x`` along ``axis`` (time) from ``orig_sr`` to ``target_sr`` Hz.

    Uses ``scipy.signal.resample_poly`` with the reduced ratio up/down = target/orig divided by
    their gcd (44100 -> 32000 Hz is up 320, down 441) and scipy's default Kaiser (beta 5) FIR.
    Computed in float64, returned as float32; output length is ceil(len * up / down).
    Equal rates return a float32 copy. Raises ConfigError for a rate <= 0.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ConfigError(f"resample: sample rates must be > 0 Hz, got {orig_sr} -> {target_sr}",
                          hint="pass positive integer sample rates in Hz")
    if orig_sr == target_sr:
        return np.array(x, dtype=np.float32, copy=True)
    g = gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    y = resample_poly(np.asarray(x, dtype=np.float64), up, down, axis=axis)
    return y.astype(np.float32)


def frames_needed(n_out: int, orig_sr: int, target_sr: int) -> int:
    """Input frames (at ``orig_sr`` Hz) that the first ``n_out`` output samples of
    ``resample(x, orig_sr, target_sr)`` depend on, plus 16 frames of slack.

    scipy's ``resample_poly`` filter reaches half_len = 10 * max(up, down) taps (at the up-sampled
    rate) past each output sample, so output k < n_out needs inputs up to
    ((n_out - 1) * down + half_len) // up. Resampling only those frames gives the same first
    ``n_out`` samples, bit for bit, as resampling the whole signal. Equal rates: ``n_out``
    (at least 1).
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return max(int(n_out), 1)
    g = gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    half_len = 10 * max(up, down)
    return ((n_out - 1) * down + half_len) // up + 1 + 16


def load_audio(path: Path, sample_rate: int, duration_s: float | None = 1.0,
               stats: AudioStats | None = None,
               resample_fn: Callable[[np.ndarray, int, int], np.ndarray] | None = None) -> np.ndarray:
    """Load an audio file as float32 mono samples, shape (samples,), at ``sample_rate`` Hz.

    * I/O with soundfile (WAV/FLAC/OGG..., integer PCM scaled to [-1, 1)).
    * More than one channel: mean over channels (logged once per process, counted in ``stats.downmixed``).
    * Another rate: ``resample`` (counted in ``stats.resampled``).
    * ``duration_s`` given: shorter clips are zero-padded at the end, longer ones cropped to
      their first round(sample_rate * duration_s) samples (counted). Only the frames that these
      samples depend on are read from the file (``frames_needed``), so a 10-hour WAV costs no
      more than a 1-s one; the result is bit-identical to resampling the whole file and cropping.
      ``duration_s=None`` reads and keeps the whole file.
    * ``resample_fn``: another resampler, called as ``resample_fn(x, orig_sr, target_sr)`` on the
      float32 mono samples (returns float32 (ceil(len · target / orig),)), e.g.
      :class:`asc_edge.features.cpjku.SincResampler`. If it has a method
      ``frames_needed(n_out, orig_sr, target_sr)`` (its exact reach, like ``frames_needed`` here),
      only those frames are read; without one the whole file is read.

    Raises DataError (naming the file, with a fix) for a missing file, a corrupt / non-audio file,
    an empty file (0 frames), a header sample rate <= 0, or, among the frames read, a NaN or
    infinite sample or one of magnitude above ``MAX_ABS_SAMPLE`` (broken float audio);
    ConfigError for ``sample_rate <= 0`` or ``duration_s <= 0``.
    """
    global _warned_downmix
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ConfigError(f"load_audio: target sample rate must be a positive integer in Hz, got {sample_rate!r}",
                          hint="use e.g. 32000")
    sample_rate = int(sample_rate)
    if duration_s is not None and not duration_s > 0:
        raise ConfigError(f"load_audio: duration_s must be > 0 seconds or None, got {duration_s!r}",
                          hint="use e.g. 1.0 for TAU clips, or None to keep the file's length")
    n = None if duration_s is None else int(round(sample_rate * duration_s))  # output samples
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: audio file not found",
                        hint="check the data set root and the CSV filename, or restore the file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file", hint="point the CSV row at a WAV file")
    try:
        with sf.SoundFile(str(path)) as f:
            file_sr = int(f.samplerate)
            frames = f.frames
            if file_sr <= 0:
                raise DataError(f"{path}: header says sample rate {file_sr} Hz",
                                hint="re-export the clip with a valid sample rate (e.g. 44.1 kHz)")
            if frames == 0:
                raise DataError(f"{path}: audio file is empty (0 frames)",
                                hint="re-export the clip or drop it from the CSV")
            if n is None:
                n_read = frames
            elif resample_fn is None or file_sr == sample_rate:
                n_read = min(frames, frames_needed(n, file_sr, sample_rate))
            else:
                reach = getattr(resample_fn, "frames_needed", None)
                n_read = frames if reach is None else min(frames, int(reach(n, file_sr, sample_rate)))
            data = f.read(frames=n_read, dtype="float32", always_2d=True)
    except DataError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        msg = str(exc).replace("\n", " ")
        msg = msg.split("': ", 1)[1] if msg.startswith("Error opening") and "': " in msg else msg
        raise DataError(f"{path}: not a readable audio file (soundfile: {msg})",
                        hint="re-export the clip as 16-bit PCM WAV or drop it from the CSV") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: audio file is empty (0 frames)",
                        hint="re-export the clip or drop it from the CSV")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: audio contains NaN or infinite samples",
                        hint="re-export the clip as PCM WAV or drop it from the CSV")
    peak = float(np.abs(data).max())
    if peak > MAX_ABS_SAMPLE:
        raise DataError(f"{path}: audio has a sample of magnitude {peak:.3g}; full scale is 1.0 and "
                        f"more than {MAX_ABS_SAMPLE:g} means broken float audio",
                        hint="re-export the clip as PCM WAV (or float scaled to [-1, 1]) or drop it from the CSV")
    if data.shape[1] > 1:
        x = data.mean(axis=1, dtype=np.float64).astype(np.float32)
        if stats is not None:
            stats.downmixed += 1
        if not _warned_downmix:
            _warned_downmix = True
            log.warning("%s has %d channels: down-mixing multichannel audio to mono by the channel mean "
                        "(logged once; see AudioStats for the count)", path, data.shape[1])
    else:
        x = data[:, 0]
    if file_sr != sample_rate:
        x = (resample if resample_fn is None else resample_fn)(x, file_sr, sample_rate)
        if stats is not None:
            stats.resampled += 1
            stats.rates[(file_sr, sample_rate)] += 1
    if n is not None:
        if stats is not None:
            stats.duration_s = duration_s
        if len(x) < n:
            x = np.concatenate([x, np.zeros(n - len(x), dtype=np.float32)])
            if stats is not None:
                stats.padded += 1
        elif len(x) > n or n_read < frames:
            x = x[:n]
            if stats is not None:
                stats.cropped += 1
    if stats is not None:
        stats.loaded += 1
    return np.ascontiguousarray(x, dtype=np.float32)
