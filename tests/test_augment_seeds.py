"""The seed systems' remaining augmentations (issue 14 item 4), each checked on a known signal.

* pitch shift (AI4EDGE 2023, librosa): a sine moves by the factor 2^(semitones/12);
* time stretch (AI4EDGE 2023, librosa): a pitch-preserving change of tempo — an amplitude-modulated
  tone keeps its carrier, its modulation period is divided by the rate; the clip keeps its length;
* random mel top edge (PaSST ``fmax_aug_range``, SNTL-NTU 2024): where a tone lands among the mel
  bands, and a tone above the drawn edge vanishes;
* time / frequency masks relative to the input (ITMO 2024, 15 %): fractions of frames / bins masked;
* the training module's waveform path: p = 0 leaves the batch alone, DIR alone draws and computes
  exactly as before, the new augmentations recompute the features of the rows they touch;
* bad values: one ConfigError (one CLI error line).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_train_cli import TINY, assert_ok, assert_one_error_line, cli

from asc_edge.augment import (AugmentConfig, augment_batch, freq_mask, freq_mask_frac, freq_mixstyle,
                              logmel_random_fmax, pitch_shift, time_mask, time_mask_frac, time_roll, time_stretch)
from asc_edge.data.dirs import convolve_dir
from asc_edge.errors import ConfigError
from asc_edge.features import LogMel, get_frontend
from asc_edge.train.config import TrainConfig
from asc_edge.train.recipes import load_recipe


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sine(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the largest (Hann-windowed) FFT bin."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec)) * sr / len(y)


# ------------------------------------------------------------------------------------- config
def test_new_augmentations_are_off_by_default_with_the_reports_strengths():
    cfg = AugmentConfig()
    assert (cfg.pitch_shift_p, cfg.time_stretch_p, cfg.fmax_aug_range) == (0.0, 0.0, 0.0)
    assert (cfg.time_mask, cfg.freq_mask_frac, cfg.time_mask_frac) == (0, 0.0, 0.0)
    assert (cfg.pitch_shift_semitones, cfg.time_stretch_range) == (2.0, 0.2)  # AI4EDGE (our reading)
    assert not cfg.waveform_augmentation
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    # a config saved before these settings existed loads with all of them off
    old = {k: v for k, v in cfg.to_dict().items()
           if k in ("freq_mask", "time_roll", "mixup_alpha", "mixup_p", "mixstyle_p", "mixstyle_alpha", "dir_p")}
    assert AugmentConfig.from_dict(old) == cfg
    assert AugmentConfig(fmax_aug_range=2000.0).waveform_augmentation
    assert AugmentConfig(pitch_shift_p=0.5).waveform_augmentation


def test_recipes_carry_the_reports_values():
    assert load_recipe("ai4edge2023")["augment"] == {"pitch_shift_p": 0.5, "pitch_shift_semitones": 2.0,
                                                     "time_stretch_p": 0.5, "time_stretch_range": 0.2}
    assert load_recipe("itmo2024")["augment"] == {"freq_mask": 0, "freq_mask_frac": 0.15, "time_mask_frac": 0.15}
    assert load_recipe("sntl2024")["augment"] == {"fmax_aug_range": 2000.0}


@pytest.mark.parametrize("kwargs, needle", [
    (dict(pitch_shift_p=1.5), "pitch_shift_p"), (dict(time_stretch_p=-0.1), "time_stretch_p"),
    (dict(pitch_shift_semitones=-1.0), "pitch_shift_semitones"), (dict(pitch_shift_semitones=13.0), "pitch_shift"),
    (dict(pitch_shift_p=0.5, pitch_shift_semitones=0.0), "pitch_shift_semitones must be > 0"),
    (dict(time_stretch_range=1.0), "time_stretch_range"), (dict(time_stretch_range=-0.1), "time_stretch_range"),
    (dict(time_stretch_p=0.5, time_stretch_range=0.0), "time_stretch_range must be > 0"),
    (dict(fmax_aug_range=-5.0), "fmax_aug_range"), (dict(fmax_aug_range=math.nan), "fmax_aug_range"),
    (dict(fmax_aug_range=math.inf), "fmax_aug_range"), (dict(freq_mask_frac=1.0), "freq_mask_frac"),
    (dict(time_mask_frac=-0.1), "time_mask_frac"), (dict(time_mask_frac="0.15"), "time_mask_frac"),
    (dict(time_mask=-1), "time_mask"), (dict(time_mask=2.5), "time_mask"),
])
def test_bad_values_are_one_config_error(kwargs, needle):
    with pytest.raises(ConfigError) as exc:
        AugmentConfig(**kwargs)
    assert needle in exc.value.message and exc.value.hint
    assert "\n" not in str(exc.value)


def test_settings_checked_against_the_frontend():
    fe = get_frontend("dcase2024")  # f_max 16 kHz, 65 frames
    AugmentConfig(fmax_aug_range=2000.0, time_mask=65).check_frontend(fe)
    with pytest.raises(ConfigError, match="fmax_aug_range 16000 Hz reaches below"):
        AugmentConfig(fmax_aug_range=16000.0).check_frontend(fe)
    with pytest.raises(ConfigError, match="time_mask 66 exceeds the 65 frames"):
        AugmentConfig(time_mask=66).check_frontend(fe)
    with pytest.raises(ConfigError, match="fmax_aug_range"):
        TrainConfig(data="d", augment=AugmentConfig(fmax_aug_range=20000.0)).check()


@pytest.mark.parametrize("flags, needles", [
    (["--pitch-shift-semitones", "20"], ["pitch_shift_semitones must be in [0, 12]"]),
    (["--time-stretch-range", "1.5"], ["time_stretch_range"]),
    (["--pitch-shift-p", "2"], ["--pitch-shift-p 2.0 is out of range"]),
    (["--freqm-frac", "1"], ["freq_mask_frac"]),
    (["--fmax-aug-range", "20000"], ["fmax_aug_range 20000 Hz", "f_max is 16000 Hz"]),
    (["--time-mask", "100"], ["time_mask 100 exceeds the 65 frames"]),
], ids=["semitones", "stretch-range", "pitch-p", "freqm-frac", "fmax-range", "time-mask"])
def test_train_bad_flag_one_error_line(flags, needles, tmp_path):
    r = cli("train", "--data", tmp_path / "no-data", *flags, "--out", tmp_path / "runs")
    assert_one_error_line(r, *needles)


# -------------------------------------------------------------------- pitch shift / time stretch
@pytest.mark.parametrize("semitones, factor", [(12.0, 2.0), (-12.0, 0.5), (7.0, 2 ** (7 / 12))])
def test_pitch_shift_multiplies_a_sines_frequency(semitones, factor):
    sr, f0 = 16000, 440.0
    x = sine(f0, sr)
    y = pitch_shift(x, sr, semitones)
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(peak_hz(y, sr) - f0 * factor) <= 2.0  # 1-Hz bins
    assert abs(peak_hz(x, sr) - f0) <= 1.0
    assert np.array_equal(pitch_shift(x, sr, 0.0), x)


def am_tone(sr: int, seconds: float, carrier: float, mod_hz: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * (1 + 0.9 * np.sin(2 * np.pi * mod_hz * t)) * np.sin(2 * np.pi * carrier * t)).astype(np.float32)


def envelope_hz(y: np.ndarray, sr: int, frame: int) -> float:
    """Frequency of the amplitude envelope (frame RMS, mean removed, largest FFT bin)."""
    env = np.sqrt((y[: len(y) // frame * frame].reshape(-1, frame) ** 2).mean(1))
    spec = np.abs(np.fft.rfft(env - env.mean()))
    return float(np.argmax(spec)) * (sr / frame) / len(env)


@pytest.mark.parametrize("rate", [0.5, 1.5])
def test_time_stretch_scales_the_modulation_period_keeps_pitch_and_length(rate):
    import librosa

    sr, carrier, mod = 8000, 1000.0, 2.0
    x = am_tone(sr, 4.0, carrier, mod)  # 4 s: 0.25-Hz resolution of the envelope spectrum
    y = time_stretch(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32
    raw = librosa.effects.time_stretch(x, rate=rate)
    m = min(len(raw), len(x))
    assert abs(len(raw) - len(x) / rate) <= 1
    # envelope period divided by the rate (measured on the stretched part only), carrier unchanged
    assert envelope_hz(y[:m], sr, 80) == pytest.approx(mod * rate, abs=0.3)
    assert abs(peak_hz(y[:m], sr) - carrier) <= 1.0
    if rate > 1:  # shorter: padded circularly with its own beginning, no silence
        assert np.array_equal(y[:m], raw) and np.array_equal(y[m:], raw[: len(x) - m])
    else:         # longer: its first len(x) samples
        assert np.array_equal(y, raw[: len(x)])
    assert np.array_equal(time_stretch(x, 1.0), x)


def test_waveform_functions_reject_bad_input():
    with pytest.raises(ConfigError, match="rate must be"):
        time_stretch(np.zeros(100, np.float32), 0.0)
    with pytest.raises(ConfigError, match="one non-empty clip"):
        pitch_shift(np.zeros((2, 100), np.float32), 8000, 1.0)


# ------------------------------------------------------------------------- random mel top edge
def band_of(feats: torch.Tensor) -> int:
    return int(feats[0, 0].mean(-1).argmax())


def expected_band(freq: float, f_max: float, n_mels: int) -> int:
    """Mel band whose triangle peaks nearest to ``freq`` (HTK mel, bands evenly spaced to f_max)."""
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # noqa: E731
    return round(mel(freq) / mel(f_max) * (n_mels + 1)) - 1


def test_random_top_edge_moves_a_tone_up_the_mel_bands():
    fe = get_frontend("16k-128")  # 16 kHz, n_fft 2048, 128 mels up to 8 kHz
    mel = LogMel(fe)
    wave = torch.from_numpy(sine(3000.0, fe.sample_rate))[None]
    # the frontend's own top edge: the run's LogMel features
    same = logmel_random_fmax(mel, wave, [fe.f_max_hz])
    assert torch.allclose(same, mel(wave), atol=1e-4)
    bands = {}
    for f_max in (8000.0, 7000.0, 6000.0):
        feats = logmel_random_fmax(mel, wave, [f_max])
        assert feats.shape == (1, 1, fe.n_mels, fe.n_frames)
        bands[f_max] = band_of(feats)
        assert abs(bands[f_max] - expected_band(3000.0, f_max, fe.n_mels)) <= 1
    assert bands[8000.0] < bands[7000.0] < bands[6000.0]  # lower edge -> higher band: pitched up


def test_a_tone_above_the_drawn_top_edge_vanishes():
    fe = get_frontend("16k-128")
    mel = LogMel(fe)
    wave = torch.from_numpy(sine(7500.0, fe.sample_rate))[None]
    feats = logmel_random_fmax(mel, wave.repeat(2, 1), [8000.0, 7000.0])  # one edge per clip
    top = feats[:, 0].mean(-1).amax(-1)  # loudest band of each clip
    assert top[0] > top[1] + 10.0        # e^10 in power: the 7 kHz filterbank does not see 7.5 kHz
    with pytest.raises(ConfigError, match="one f_max per clip"):
        logmel_random_fmax(mel, wave, [8000.0, 7000.0])


# ------------------------------------------------------------------------------ ITMO 15 % masks
def masked(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (y != x)


@pytest.mark.parametrize("shape", [(256, 1, 128, 101), (256, 1, 40, 20)])
def test_relative_masks_cover_at_most_15_percent(shape):
    x = torch.ones(shape)
    b, _, m, t = shape
    yt = time_mask_frac(x, 0.15, gen(1))
    mt = masked(x, yt)[:, 0]                        # (B, M, T)
    cols = mt.any(1)                                # masked frames
    assert torch.equal(mt, cols[:, None, :].expand_as(mt))  # whole frames, every mel bin
    w = cols.sum(1).float()
    assert float(w.max()) <= 0.15 * t and float(w.max()) >= math.floor(0.15 * t) - 2
    assert float(w.mean()) == pytest.approx((math.ceil(0.15 * t) - 1) / 2, abs=1.0)  # E floor(U*0.15T)
    assert len(set(w.tolist())) > 1                 # iid widths across the batch
    for row in cols:                                # one contiguous block
        idx = torch.nonzero(row).flatten()
        assert len(idx) == 0 or int(idx[-1] - idx[0]) + 1 == len(idx)

    yf = freq_mask_frac(x, 0.15, gen(2))
    mf = masked(x, yf)[:, 0]
    rows = mf.any(2)                                # masked bins
    assert torch.equal(mf, rows[:, :, None].expand_as(mf))
    w = rows.sum(1).float()
    assert float(w.max()) <= 0.15 * m and float(w.mean()) == pytest.approx((math.ceil(0.15 * m) - 1) / 2, abs=1.0)
    assert float(yf[mf[:, None]].abs().max()) == 0.0  # filled with 0
    assert freq_mask_frac(x, 0.0, gen()) is x and time_mask_frac(x, 0.0, gen()) is x


def test_absolute_time_mask_like_torchaudio():
    x = torch.ones(128, 1, 16, 50)
    y = time_mask(x, 10, gen(3), fill=-5.0)
    cols = (y != x)[:, 0].any(1)
    w = cols.sum(1)
    assert int(w.max()) <= 9 and int(w.max()) >= 7 and set(y[y != x].tolist()) == {-5.0}
    assert time_mask(x, 0, gen()) is x
    with pytest.raises(ConfigError, match="exceeds the 50 frames"):
        time_mask(x, 51, gen())


def test_augment_batch_draws_as_before_when_the_new_masks_are_off():
    x = torch.randn(8, 1, 64, 30, generator=gen(4))
    cfg = AugmentConfig(mixstyle_p=1.0)
    g = gen(5)
    want = freq_mixstyle(freq_mask(time_roll(x, cfg.time_roll, g), cfg.freq_mask, g, fill=-3.0),
                         cfg.mixstyle_alpha, cfg.mixstyle_p, g)
    assert torch.equal(augment_batch(x, cfg, gen(5), mask_fill=-3.0), want)
    # a relative width replaces the absolute one: 48 bins would not fit a 32-bin input
    small = torch.ones(8, 1, 32, 30)
    out = augment_batch(small, AugmentConfig(freq_mask=48, freq_mask_frac=0.15, time_mask_frac=0.15, time_roll=0,
                                             mixstyle_p=0.0), gen(6))
    m = (out != small)[:, 0]                      # (B, M, T)
    assert int(m.all(2).sum(1).max()) <= 0.15 * 32   # bins masked in every frame: the frequency mask
    assert int(m.all(1).sum(1).max()) <= 0.15 * 30   # frames masked in every bin: the time mask
    assert int(m.all(2).sum(1).max()) > 0 and int(m.all(1).sum(1).max()) > 0


# ----------------------------------------------------------------- the training module's path
def make_module(augment: AugmentConfig, n: int = 8, seed: int = 0):
    from asc_edge.train.module import ASCModule

    cfg = TrainConfig(data="d", model="sm1", frontend="ai4edge-8k", augment=augment)
    fe = get_frontend(cfg.frontend)
    module = ASCModule(cfg.model, {}, ["a", "b"], fe.to_dict(), cfg.to_dict())
    rng = np.random.default_rng(seed)
    t = np.arange(fe.n_samples) / fe.sample_rate
    waves = np.stack([0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t) + 0.01 * rng.standard_normal(fe.n_samples)
                      for i in range(n)]).astype(np.float32)
    module.waveforms = waves
    module.on_fit_start()  # seeds module._gen
    x = module.mel(torch.from_numpy(waves))
    return module, x, torch.arange(n)


def test_off_leaves_the_batch_and_the_generator_untouched():
    module, x, index = make_module(AugmentConfig(dir_p=0.0))
    state = module._gen.get_state()
    assert module._augment_waveforms(x, index) is x
    assert torch.equal(module._gen.get_state(), state)
    module, x, index = make_module(AugmentConfig())  # dir_p 0.6 but no DIRs loaded: as before, nothing
    assert module._augment_waveforms(x, index) is x


def test_dir_alone_draws_and_computes_exactly_as_before():
    module, x, index = make_module(AugmentConfig(dir_p=0.6))
    ir = np.zeros(64, np.float32)
    ir[0], ir[7] = 1.0, -0.5
    module.dirs = [ir, ir[::-1].copy()]
    g = torch.Generator().set_state(module._gen.get_state())
    out = module._augment_waveforms(x, index)
    # the DIR step as it was written before the other waveform augmentations
    pick = torch.rand(len(index), generator=g) < 0.6
    which = torch.randint(len(module.dirs), (int(pick.sum()),), generator=g)
    rows = torch.nonzero(pick).flatten()
    waves = np.stack([convolve_dir(module.waveforms[int(index[r])], module.dirs[int(d)]) for r, d in zip(rows, which)])
    want = x.clone()
    want[rows] = module.mel(torch.from_numpy(waves))
    assert torch.equal(out, want) and 0 < len(rows) < len(index)
    assert torch.equal(module._gen.get_state(), g.get_state())


def record(monkeypatch, name):
    import asc_edge.train.module as mod

    calls = []
    real = getattr(mod, name)

    def wrapper(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(mod, name, wrapper)
    return calls


def test_pitch_shift_and_time_stretch_recompute_the_rows_they_touch(monkeypatch):
    shifts = record(monkeypatch, "pitch_shift")
    stretches = record(monkeypatch, "time_stretch")
    module, x, index = make_module(AugmentConfig(dir_p=0.0, pitch_shift_p=0.5, time_stretch_p=0.5), n=16)
    out = module._augment_waveforms(x, index)
    assert 3 <= len(shifts) <= 13 and 3 <= len(stretches) <= 13           # about half of 16 each
    assert all(abs(s) <= 2.0 for _, sr, s in shifts) and {sr for _, sr, _ in shifts} == {8000}
    assert all(0.8 <= r <= 1.2 for _, r in stretches)
    assert len({round(s, 6) for _, _, s in shifts}) == len(shifts)           # a shift per clip
    changed = (out != x).flatten(1).any(1)
    assert 3 <= int(changed.sum()) <= 16 and out.shape == x.shape
    # a touched row is exactly LogMel of the augmented waveform (pitch shift first, then the stretch)
    r = int(torch.nonzero(changed)[0])
    w = module.waveforms[r]
    s = [c[2] for c in shifts if np.array_equal(c[0], w)]
    if s:
        w = pitch_shift(w, 8000, s[0])
    rt = [c[1] for c in stretches if np.array_equal(c[0], w)]
    if rt:
        w = time_stretch(w, rt[0])
    assert s or rt
    assert torch.equal(out[r], module.mel(torch.from_numpy(w[None]))[0])


def test_fmax_range_draws_one_top_edge_per_clip(monkeypatch):
    edges = record(monkeypatch, "logmel_random_fmax")
    module, x, index = make_module(AugmentConfig(dir_p=0.0, fmax_aug_range=1000.0), n=12)
    out = module._augment_waveforms(x, index)
    ((_, wave, f_max),) = edges
    f_max = f_max.tolist()
    assert wave.shape == (12, 8000) and len(f_max) == 12 and len(set(f_max)) == 12
    assert all(3000.0 < f <= 4000.0 for f in f_max)  # ai4edge-8k: f_max 4 kHz, range 1 kHz
    assert not torch.equal(out, x) and out.shape == x.shape


def test_waveform_augmentations_without_waveforms_fail_clearly():
    from asc_edge.train.module import ASCModule

    cfg = TrainConfig(data="d", model="sm1", frontend="ai4edge-8k", augment=AugmentConfig(pitch_shift_p=0.5))
    module = ASCModule(cfg.model, {}, ["a", "b"], get_frontend(cfg.frontend).to_dict(), cfg.to_dict())
    with pytest.raises(ConfigError, match="need the training waveforms"):
        module.on_fit_start()


def test_train_with_every_new_augmentation(tiny_dataset, tmp_path):
    root = tiny_dataset(sample_rate=8000)
    r = cli("train", "--data", root, *TINY, "--model", "sm1", "--pitch-shift-p", "1", "--time-stretch-p", "1",
            "--fmax-aug-range", "1000", "--freqm-frac", "0.15", "--timem-frac", "0.15", "--time-stretch-range", "0.1",
            "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--name", "seeds")
    assert_ok(r)
    aug = json.loads((tmp_path / "runs" / "seeds" / "report.json").read_text())["config"]["augment"]
    assert (aug["pitch_shift_p"], aug["time_stretch_p"], aug["time_stretch_range"], aug["fmax_aug_range"],
            aug["freq_mask_frac"], aug["time_mask_frac"]) == (1.0, 1.0, 0.1, 1000.0, 0.15, 0.15)
