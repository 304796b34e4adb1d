"""Issue 15 item 8: an imported 32-kHz CPJKU-family checkpoint resamples with its own torchaudio sinc
kernel (``FrontendConfig.resampler = "sinc_hann"``), exactly; default frontends keep their keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asc_edge.data.audio import load_audio
from asc_edge.data.tau import Clip
from asc_edge.errors import ConfigError
from asc_edge.features import PRESETS, FeatureCache, FrontendConfig, log_mel
from asc_edge.features.cache import resample_fn
from asc_edge.features.cpjku import SINC_HANN, cpjku_resample, sinc_resample_kernel
from asc_edge.models.cpjku import import_cpjku_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODELS = SHARED / "models" / "sntl-ntu-dcase2024"
TAU = SHARED / "data" / "tau_samples"
KD100 = MODELS / "KD-Ensemble-32-BCBL_split100_mqzabiyn.ckpt"
B24_100 = MODELS / "24-BCBL_split100_92gangv6.ckpt"

needs_models = pytest.mark.skipif(not (KD100.is_file() and B24_100.is_file() and (TAU / "meta.csv").is_file()),
                                  reason="../shared/models/sntl-ntu-dcase2024 or ../shared/data/tau_samples absent")

# FrontendConfig.key() of every preset, computed with the code before the resampler setting existed:
# cache folders, export reports and the committed reference export are named by these.
KEYS_BEFORE = {
    "dcase2024": "539d8fcdece26bc0", "44k-256": "1d3900ab696f5e46", "16k-128": "3f9c5b554e7038aa",
    "8k-140": "0e6ee495e24b25ba", "kt-288": "a9acc1011e84fb7e", "itmo-16k": "1b2656b52c803bc7",
    "ai4edge-8k": "47a3c9148c807e3d", "tencent-32k": "d84163b1f8272ff8", "passt-32k": "6c4ad91bb7d68ed1",
    "ast-16k": "749490d91bafcada",
}


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a.view(np.uint32),
                                                                                      b.view(np.uint32))


def _whole_then_crop(path: Path, n_out: int) -> np.ndarray:
    """The reference: the whole file, resampled by cpjku_resample with torchaudio's kernel, cropped/padded."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    kernel, _ = sinc_resample_kernel(sr, 32000)
    y = cpjku_resample(torch.from_numpy(np.ascontiguousarray(x[:, 0])), kernel, sr // math.gcd(sr, 32000)).numpy()
    return np.concatenate([y, np.zeros(max(0, n_out - len(y)), np.float32)])[:n_out]


# ------------------------------------------------------------------------------- frontend setting

def test_default_frontends_keep_their_keys_and_dicts():
    for name, key in KEYS_BEFORE.items():
        assert PRESETS[name].resampler == "poly"
        assert PRESETS[name].key() == key, name
        assert "resampler" not in PRESETS[name].to_dict()
    assert FrontendConfig().key() == "539d8fcdece26bc0"
    # the committed reference export's frontend (and the header generated from it) are unchanged
    rep = json.loads((REPO / "export" / "cp-mobile-ref" / "report.json").read_text())
    fe = FrontendConfig.from_dict(rep["frontend"])
    assert fe.resampler == "poly" and fe.to_dict() == rep["frontend"]
    header = (REPO / "export" / "cp-mobile-ref" / "c" / "asc_frontend_config.h").read_text()
    assert f"FrontendConfig {fe.key()}: {fe.to_dict()}" in header


def test_resampler_setting_round_trips_and_enters_the_key_only_when_not_default():
    old = {"sample_rate": 32000, "n_fft": 4096, "win_length": 3072, "hop_length": 500, "n_mels": 256,
           "f_min": 0.0, "f_max": None, "log_offset": 1e-05, "clip_seconds": 1.0}     # a dict from before
    assert FrontendConfig.from_dict(old) == FrontendConfig() and FrontendConfig.from_dict(old).resampler == "poly"
    assert FrontendConfig.from_dict(dict(old, resampler="poly")).key() == "539d8fcdece26bc0"
    sinc = FrontendConfig(resampler="sinc_hann")
    d = json.loads(json.dumps(sinc.to_dict()))
    assert d == dict(old, resampler="sinc_hann")
    assert FrontendConfig.from_dict(d) == sinc and FrontendConfig.from_dict(d).key() == sinc.key()
    assert sinc.key() != FrontendConfig().key() and sinc != FrontendConfig()
    with pytest.raises(ConfigError) as err:
        FrontendConfig(resampler="kaiser")
    assert "kaiser" in str(err.value) and "sinc_hann" in err.value.hint
    assert resample_fn(FrontendConfig()) is None and resample_fn(sinc) is SINC_HANN


# ------------------------------------------------------------------------------- the sinc path, exactly

@needs_models
def test_sinc_path_equals_cpjku_resample_on_a_real_clip():
    wav = sorted(TAU.rglob("*.wav"))[0]
    y = load_audio(wav, 32000, 1.0, resample_fn=SINC_HANN)
    assert _same_bits(y, _whole_then_crop(wav, 32000))
    assert _same_bits(load_audio(wav, 32000, None, resample_fn=SINC_HANN), _whole_then_crop(wav, 32000))
    # the default path is still scipy's
    assert not np.array_equal(load_audio(wav, 32000, 1.0), y)


@pytest.mark.parametrize("sr, seconds, duration", [(44100, 10.0, 1.0), (44100, 10.0, 2.5), (48000, 3.0, 1.0),
                                                   (22050, 2.0, 1.0), (44100, 0.4, 1.0)])
def test_sinc_path_reads_only_needed_frames_bit_exactly(tmp_path, monkeypatch, soundfile_reads, sr, seconds, duration):
    """A long clip: load_audio reads only SINC_HANN.frames_needed frames, and the result equals
    cpjku_resample on the whole file, cropped (shorter clips: zero-padded), bit for bit."""
    rng = np.random.default_rng(sr)
    x = (0.3 * rng.standard_normal(int(sr * seconds))).astype(np.float32)
    wav = tmp_path / "clip.wav"
    sf.write(str(wav), x, sr, subtype="FLOAT")
    n_out = int(round(32000 * duration))
    asked = soundfile_reads()  # frame counts passed to SoundFile.read
    y = load_audio(wav, 32000, duration, resample_fn=SINC_HANN)
    monkeypatch.undo()
    assert asked == [min(len(x), SINC_HANN.frames_needed(n_out, sr, 32000))]
    assert _same_bits(y, _whole_then_crop(wav, n_out))


def test_frames_needed_is_enough_and_tight():
    """Whatever follows the first frames_needed input frames does not touch the first n_out outputs;
    frames_needed is at most one output frame (orig samples) plus the kernel's reach past them."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(44100 * 3).astype(np.float32)
    full = SINC_HANN(x, 44100, 32000)
    for n_out in (1, 320, 321, 32000, 50001):
        need = SINC_HANN.frames_needed(n_out, 44100, 32000)
        assert need <= math.ceil(n_out * 441 / 320) + 441 + 9
        other = x.copy()
        other[need:] = 1e3
        assert _same_bits(SINC_HANN(other, 44100, 32000)[:n_out], full[:n_out])
        assert _same_bits(SINC_HANN(x[:need], 44100, 32000)[:n_out], full[:n_out])


# ------------------------------------------------------------------------------- import of real checkpoints

@needs_models
def test_imported_32k_checkpoint_uses_its_own_resampler(tmp_path):
    sd = torch.load(KD100, map_location="cpu", weights_only=False)["state_dict"]
    stored = sd["mel.0.kernel"]
    ours, width = sinc_resample_kernel(44100, 32000)
    assert width == 9 and torch.equal(ours, stored)                     # bit for bit
    import_cpjku_checkpoint(KD100, tmp_path / "kd", log=lambda s: None)
    rec = json.loads((tmp_path / "kd" / "import.json").read_text())
    assert rec["inferred"]["frontend"]["resampler"] == "sinc_hann"
    assert rec["resampler"]["frontend_resampler"] == "sinc_hann"
    assert rec["resampler"]["resampler_kernel_max_abs_diff"] == 0.0
    assert "effect" not in rec["resampler"]
    from asc_edge.checkpoint import load_checkpoint

    fe = load_checkpoint(tmp_path / "kd" / "model.ckpt").frontend
    assert fe == FrontendConfig(resampler="sinc_hann")

    # features through the feature cache == the checkpoint's own mel.0 (stored kernel) then our log-mel
    wav = sorted(TAU.rglob("*.wav"))[5]
    clip = Clip(path=wav, filename=wav.name, label="park", identifier="x", device="a")
    cache = FeatureCache(tmp_path / "cache", fe)
    feats = cache.features([clip], progress=False)[0]
    x, sr = sf.read(str(wav), dtype="float32")
    assert sr == 44100
    mel0 = cpjku_resample(torch.from_numpy(x), stored, orig=441).numpy()
    np.testing.assert_allclose(feats, log_mel(mel0, fe), rtol=0, atol=1e-5)
    # also against torchaudio's single conv1d (its _apply_sinc_resample_kernel), to float32 rounding
    padded = torch.nn.functional.pad(torch.from_numpy(x)[None, None], (9, 9 + 441))
    ta = torch.nn.functional.conv1d(padded, stored, stride=441).transpose(1, 2).reshape(-1)[:32000].numpy()
    np.testing.assert_allclose(cache.waveforms([clip], progress=False)[0], ta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(feats, log_mel(ta, fe), rtol=0, atol=1e-3)


@needs_models
def test_imported_44k_checkpoint_keeps_the_default(tmp_path):
    import_cpjku_checkpoint(B24_100, tmp_path / "b24", log=lambda s: None)
    rec = json.loads((tmp_path / "b24" / "import.json").read_text())
    assert rec["resampler"] == {"present": False}
    assert "resampler" not in rec["inferred"]["frontend"]
    assert FrontendConfig.from_dict(rec["inferred"]["frontend"]) == FrontendConfig(sample_rate=44100)
