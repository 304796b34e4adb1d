"""asc_edge.features: frontend config, log-mel vs an independent numpy implementation, feature cache."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from asc_edge.data import AudioStats, load_audio, load_split, open_dataset
from asc_edge.errors import ConfigError, DataError
from asc_edge.features import (PRESETS, FeatureCache, FrontendConfig, LogMel, get_frontend, hann_window, log_mel,
                               mel_filterbank, sparse_mel)
from asc_edge.features import cache as cache_mod

REAL_CLIP = "audio/dog_bark-freesound-100032-0-2-a.wav"


# ---------------------------------------------------------------- independent float64 numpy reference

def ref_filterbank(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """HTK triangular mel filterbank written from the formula, float64 (n_freqs, n_mels)."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)

    n_freqs = n_fft // 2 + 1
    freqs = np.arange(n_freqs) * (sr / 2) / (n_freqs - 1)
    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    fb = np.zeros((n_freqs, n_mels))
    for m in range(n_mels):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (freqs - lo) / (centre - lo)
        fall = (hi - freqs) / (hi - centre)
        fb[:, m] = np.clip(np.minimum(rise, fall), 0.0, None)
    return fb


def ref_log_mel(x: np.ndarray, cfg: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
    """(log-mel, mel power), each (1, n_mels, frames) float64, with np.pad reflect + np.fft.rfft."""
    x = np.asarray(x, dtype=np.float64)
    half = cfg.n_fft // 2
    padded = np.pad(x, (half, half), mode="reflect")
    n = np.arange(cfg.win_length)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)  # periodic
    window = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    window[left:left + cfg.win_length] = hann
    n_frames = 1 + len(x) // cfg.hop_length
    frames = np.stack([padded[i * cfg.hop_length: i * cfg.hop_length + cfg.n_fft] for i in range(n_frames)])
    spec = np.fft.rfft(frames * window, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ ref_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max_hz)
    return np.log(mel + cfg.log_offset).T[None], mel.T[None]


# ---------------------------------------------------------------- shapes on real audio

@pytest.mark.parametrize("preset, shape", [("dcase2024", (1, 256, 65)), ("44k-256", (1, 256, 89)),
                                           ("16k-128", (1, 128, 65)), ("8k-140", (1, 140, 65))])
def test_shape_real_clip(shared_data, preset, shape):
    cfg = get_frontend(preset)
    x = load_audio(shared_data / REAL_CLIP, cfg.sample_rate, cfg.clip_seconds)
    feats = log_mel(x, cfg)
    assert feats.shape == shape == cfg.shape == (1, cfg.n_mels, cfg.n_frames)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()


def test_logmel_module_batch(shared_data):
    cfg = FrontendConfig()
    ds = open_dataset(shared_data)
    clips = load_split(ds, "5")[:3]
    waves = np.stack([load_audio(c.path, cfg.sample_rate) for c in clips])
    module = LogMel(cfg)
    assert module.state_dict() == {}  # window and fb are non-persistent buffers
    assert set(dict(module.named_buffers())) == {"window", "fb"}
    with torch.no_grad():
        out = module(torch.from_numpy(waves))
    assert out.shape == (3, 1, 256, 65) and out.dtype == torch.float32
    for i in range(3):
        np.testing.assert_allclose(out[i].numpy(), log_mel(waves[i], cfg), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- torch vs independent numpy
# Measured on 10 ESC-10 test clips: max |torch - numpy| in the log domain where mel power > 1e-3 is
# 2.0e-4 (dcase2024, 44k-256), 7e-5 (16k-128), 1e-4 (8k-140); over all bins <= 1.6e-3.
# Filterbank: max |float32 torch - float64 numpy| <= 2.7e-5.

@pytest.mark.parametrize("preset", list(PRESETS))
def test_logmel_matches_numpy_reference(shared_data, preset):
    cfg = get_frontend(preset)
    ds = open_dataset(shared_data)
    for clip in load_split(ds, "test")[::80]:  # 3 clips of different classes
        x = load_audio(clip.path, cfg.sample_rate, cfg.clip_seconds)
        ours = log_mel(x, cfg).astype(np.float64)
        ref, mel = ref_log_mel(x, cfg)
        mask = mel > 1e-3
        assert mask.mean() > 0.4  # most bins carry signal (0.45 for the short windows of passt-32k / ast-16k)
        np.testing.assert_allclose(ours[mask], ref[mask], rtol=0, atol=1e-3)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-3)


def test_logmel_synthetic_tone_matches_reference():
    cfg = get_frontend("16k-128")
    t = np.arange(cfg.n_samples) / cfg.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 1234.5 * t) + 0.01 * np.random.default_rng(3).standard_normal(len(t)))
    ours = log_mel(x.astype(np.float32), cfg)
    ref, mel = ref_log_mel(x.astype(np.float32), cfg)
    np.testing.assert_allclose(ours[mel > 1e-3], ref[mel > 1e-3], rtol=0, atol=1e-3)
    band = int(np.argmax(ref[0, :, 30]))
    assert int(np.argmax(ours[0, :, 30])) == band


@pytest.mark.parametrize("preset", list(PRESETS))
def test_filterbank_matches_formula(preset):
    cfg = get_frontend(preset)
    fb = mel_filterbank(cfg)
    assert fb.dtype == torch.float32 and fb.shape == (cfg.n_freqs, cfg.n_mels)
    ref = ref_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max_hz)
    np.testing.assert_allclose(fb.numpy(), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_filterbank_properties(preset):
    cfg = get_frontend(preset)
    fb = mel_filterbank(cfg).numpy().astype(np.float64)
    assert (fb >= 0).all()
    peaks = fb.max(axis=0)
    edges = 700.0 * (10.0 ** (np.linspace(0, 2595.0 * math.log10(1 + cfg.f_max_hz / 700.0), cfg.n_mels + 2)
                              / 2595.0) - 1.0)
    # peak = 1 where a bin hits the apex; otherwise the nearest bin is at most half a bin spacing
    # away, on a slope of half-width w: peak >= 1 - (spacing / 2) / w (narrow low bands of presets with
    # many mels and a short FFT, e.g. tencent-32k: 256 mels from 1,025 bins, sit well below 1)
    spacing = cfg.sample_rate / cfg.n_fft
    half = np.minimum(np.diff(edges)[:-1], np.diff(edges)[1:])
    assert (peaks <= 1.0 + 1e-6).all() and (peaks >= 1.0 - spacing / 2 / half - 1e-6).all() and (peaks > 0).all()
    assert (peaks[-cfg.n_mels // 4:] > 0.9).all() and np.median(peaks) > 0.9  # wide high bands ~1
    assert (np.diff(fb.argmax(axis=0)) >= 0).all()               # bands ordered by frequency
    # triangles overlap to a partition of unity between the first and the last band centre
    freqs = np.linspace(0, cfg.sample_rate // 2, cfg.n_freqs)
    inside = (freqs > edges[1] + 1.0) & (freqs < edges[-2] - 1.0)
    np.testing.assert_allclose(fb[inside].sum(axis=1), 1.0, atol=1e-4)
    assert fb[freqs > edges[-1] + 1.0].sum() == 0


def test_hann_window():
    cfg = FrontendConfig()
    w = hann_window(cfg)
    assert w.dtype == torch.float32 and w.shape == (3072,)
    n = np.arange(3072)
    np.testing.assert_allclose(w.numpy(), 0.5 - 0.5 * np.cos(2 * np.pi * n / 3072), atol=1e-6)
    assert w[0] == 0 and abs(float(w[1536]) - 1.0) < 1e-6


@pytest.mark.parametrize("preset", list(PRESETS))
def test_sparse_mel_reconstructs_dense(preset):
    cfg = get_frontend(preset)
    dense = mel_filterbank(cfg).numpy()
    sparse = sparse_mel(cfg)
    assert len(sparse) == cfg.n_mels
    rebuilt = np.zeros_like(dense)
    for m, (start, weights) in enumerate(sparse):
        assert weights.dtype == np.float32 and weights.size > 0
        assert weights[0] != 0 and weights[-1] != 0
        rebuilt[start:start + weights.size, m] = weights
    np.testing.assert_array_equal(rebuilt, dense)
    assert sum(w.size for _, w in sparse) < dense.size // 50  # what a C frontend saves in flash


# ---------------------------------------------------------------- config

def test_presets_and_defaults():
    cfg = FrontendConfig()
    assert PRESETS["dcase2024"] == cfg
    assert (cfg.sample_rate, cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.n_mels) == (32000, 4096, 3072, 500, 256)
    assert (cfg.n_samples, cfg.n_freqs, cfg.n_frames, cfg.f_max_hz) == (32000, 2049, 65, 16000.0)
    assert PRESETS["44k-256"].f_max_hz == 22050.0 and PRESETS["44k-256"].n_frames == 89
    with pytest.raises(ConfigError) as err:
        get_frontend("mfcc")
    assert "mfcc" in str(err.value) and all(name in err.value.hint for name in PRESETS)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(win_length=5000), "win_length"),
    (dict(f_max=20000.0), "Nyquist"),
    (dict(sample_rate=0), "sample_rate"),
    (dict(n_fft=-1), "n_fft"),
    (dict(hop_length=0), "hop_length"),
    (dict(n_mels=0), "n_mels"),
    (dict(f_min=-5.0), "f_min"),
    (dict(f_min=9000.0, f_max=8000.0), "f_min"),
    (dict(log_offset=0.0), "log_offset"),
    (dict(clip_seconds=0.0), "clip_seconds"),
    (dict(clip_seconds=0.05), "too short"),
    (dict(n_mels=12.5), "integer"),
    (dict(f_min=float("nan")), "f_min"),
])
def test_config_validation(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        FrontendConfig(**kwargs)
    assert needle in str(err.value) and err.value.hint


def test_config_dict_roundtrip_and_key():
    cfg = PRESETS["16k-128"]
    d = json.loads(json.dumps(cfg.to_dict()))
    assert FrontendConfig.from_dict(d) == cfg and FrontendConfig.from_dict(d).key() == cfg.key()
    assert FrontendConfig.from_dict({}) == FrontendConfig()
    with pytest.raises(ConfigError) as err:
        FrontendConfig.from_dict({"nfft": 1024})
    assert "nfft" in str(err.value) and "n_fft" in err.value.hint
    # stable across processes and versions (caches are named by it)
    assert FrontendConfig().key() == "539d8fcdece26bc0"
    assert FrontendConfig(f_min=0, sample_rate=32000.0).key() == FrontendConfig().key()
    changed = dict(sample_rate=16000, n_fft=8192, win_length=2048, hop_length=320, n_mels=128, f_min=20.0,
                   f_max=15000.0, log_offset=1e-6, clip_seconds=2.0, resampler="sinc_hann")
    assert set(changed) == {f.name for f in dataclasses.fields(FrontendConfig)}
    keys = {FrontendConfig().key()}
    for name, value in changed.items():
        keys.add(dataclasses.replace(FrontendConfig(), **{name: value}).key())
    assert len(keys) == 1 + len(changed)


# ---------------------------------------------------------------- feature cache

@pytest.fixture
def tiny_clips(tiny_dataset):
    root = tiny_dataset(per_label=2, sample_rate=44100)
    return load_split(open_dataset(root), "100")


def _fail(*args, **kwargs):
    raise AssertionError("cache miss: should have been served from disk")


def test_cache_hits_second_time(tmp_path, tiny_clips, monkeypatch):
    cfg = get_frontend("16k-128")
    stats = AudioStats()
    cache = FeatureCache(tmp_path / "cache", cfg)
    first = cache.features(tiny_clips, stats=stats, progress=False)
    assert first.shape == (4, 1, 128, 65) and first.dtype == np.float32
    assert (cache.hits, cache.misses) == (0, 4) and stats.loaded == 4 and stats.resampled == 4
    for i, clip in enumerate(tiny_clips):
        np.testing.assert_array_equal(first[i], log_mel(load_audio(clip.path, cfg.sample_rate), cfg))
    assert json.loads((tmp_path / "cache" / cfg.key() / "config.json").read_text())["frontend"] == cfg.to_dict()

    again = FeatureCache(tmp_path / "cache", cfg)
    monkeypatch.setattr(FeatureCache, "_compute_features", _fail)
    monkeypatch.setattr(cache_mod, "load_audio", _fail)
    second = again.features(list(reversed(tiny_clips)), progress=False)
    np.testing.assert_array_equal(second, first[::-1])
    assert (again.hits, again.misses) == (4, 0)


def test_cache_waveforms(tmp_path, tiny_clips, monkeypatch):
    cfg = get_frontend("8k-140")
    cache = FeatureCache(tmp_path / "cache", cfg)
    waves = cache.waveforms(tiny_clips, progress=False)
    assert waves.shape == (4, 8000) and waves.dtype == np.float32
    np.testing.assert_array_equal(waves[1], load_audio(tiny_clips[1].path, 8000, 1.0))
    monkeypatch.setattr(FeatureCache, "_compute_waveform", _fail)
    np.testing.assert_array_equal(FeatureCache(tmp_path / "cache", cfg).waveforms(tiny_clips, progress=False), waves)


def test_cache_recomputes_corrupt_and_changed_entries(tmp_path, tiny_clips, tiny_dataset):
    cfg = get_frontend("8k-140")
    cache = FeatureCache(tmp_path / "cache", cfg)
    first = cache.features(tiny_clips, progress=False)
    bad = cache.entry_path(tiny_clips[2])
    bad.write_bytes(b"\x93NUMPY garbage")            # corrupt entry
    truncated = cache.entry_path(tiny_clips[0])
    truncated.write_bytes(truncated.read_bytes()[:200])  # truncated entry
    again = FeatureCache(tmp_path / "cache", cfg)
    np.testing.assert_array_equal(again.features(tiny_clips, progress=False), first)
    assert (again.hits, again.misses) == (2, 2)
    assert np.load(bad).shape == cfg.shape
    # a changed WAV (new content, new size/mtime) gets a new entry
    clip = tiny_clips[3]
    tiny_dataset.write_wav(clip.path, np.zeros(22050, dtype=np.float32), 44100)
    third = FeatureCache(tmp_path / "cache", cfg)
    out = third.features(tiny_clips, progress=False)
    assert (third.hits, third.misses) == (3, 1)
    np.testing.assert_allclose(out[3], np.log(cfg.log_offset), atol=1e-6)


def test_cache_atomic_writes_leave_no_temp_files(tmp_path, tiny_clips, monkeypatch):
    cfg = get_frontend("8k-140")
    cache = FeatureCache(tmp_path / "cache", cfg)
    cache.features(tiny_clips, progress=False)
    cache.waveforms(tiny_clips, progress=False)
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) == 1 + 4 + 4
    assert not [p for p in files if p.name.endswith(".tmp")]

    # a write that dies half-way leaves neither a temp file nor a partial entry
    def boom(f, arr, allow_pickle=False):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_mod.np, "save", boom)
    other = FeatureCache(tmp_path / "cache2", cfg)
    with pytest.raises(ConfigError) as err:
        other.features(tiny_clips[:1], progress=False)
    assert "No space left" in str(err.value) and err.value.hint
    leftovers = [p.name for p in (tmp_path / "cache2").rglob("*.npy")]
    assert leftovers == []


def test_empty_mel_band_warns():
    cfg = FrontendConfig(sample_rate=16000, n_fft=256, win_length=256, hop_length=128, n_mels=128)
    with pytest.warns(UserWarning, match="cover no FFT bin"):
        fb = mel_filterbank(cfg)
    assert (fb.max(dim=0).values == 0).any()


def test_log_mel_input_checks():
    cfg = get_frontend("8k-140")
    with pytest.raises(ValueError):
        log_mel(np.zeros((2, 8000), dtype=np.float32), cfg)
    with pytest.raises(ValueError):
        LogMel(cfg)(torch.zeros(1, 100))
    np.testing.assert_allclose(log_mel(np.zeros(8000, dtype=np.float32), cfg), np.log(cfg.log_offset), atol=1e-7)


def test_cache_missing_clip_is_data_error(tmp_path, tiny_clips):
    tiny_clips[0].path.unlink()
    with pytest.raises(DataError) as err:
        FeatureCache(tmp_path / "cache", get_frontend("8k-140")).features(tiny_clips, progress=False)
    assert tiny_clips[0].path.name in str(err.value) and err.value.hint
