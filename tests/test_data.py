"""asc_edge.data: TAU layout, split CSVs, audio loading edge cases, device impulse responses."""

from __future__ import annotations

import csv
import logging
import os

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from asc_edge.data import (AudioStats, Clip, convolve_dir, find_split_file, load_audio, load_dirs, load_split,
                           open_dataset, resample)
from asc_edge.data import audio as audio_mod
from asc_edge.errors import ConfigError, DataError

SPLIT_COUNTS = {"5": 64, "10": 126, "25": 250, "50": 460, "100": 911, "test": 232}


def assert_helpful(err: pytest.ExceptionInfo, *needles: str) -> None:
    """The error names the file/problem (all needles in the message) and carries a fix hint."""
    msg = str(err.value)
    for needle in needles:
        assert str(needle) in msg, f"{needle!r} not in {msg!r}"
    assert err.value.hint, f"no hint in {msg!r}"
    assert "(fix: " in msg
    assert "\n" not in msg


# ---------------------------------------------------------------- real data pack

def test_open_shared_dataset(shared_data):
    ds = open_dataset(shared_data)
    assert len(ds.clips) == 1143
    with open(shared_data / "meta.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert ds.labels == tuple(sorted({r["scene_label"] for r in rows}))
    assert len(ds.labels) == 10
    assert ds.labels[ds.label_index("dog_bark")] == "dog_bark"
    clip = ds.clips["audio/dog_bark-freesound-100032-0-2-a.wav"]
    assert clip == Clip(path=shared_data.resolve() / "audio/dog_bark-freesound-100032-0-2-a.wav",
                        filename="audio/dog_bark-freesound-100032-0-2-a.wav", label="dog_bark",
                        identifier="freesound-100032", device="a")
    assert clip.path.is_absolute() and clip.path.is_file()
    with pytest.raises(DataError) as err:
        ds.label_index("airport")
    assert_helpful(err, "airport", "dog_bark")


@pytest.mark.parametrize("split", list(SPLIT_COUNTS))
def test_shared_split_counts(shared_data, split):
    ds = open_dataset(shared_data)
    clips = load_split(ds, split)
    assert len(clips) == SPLIT_COUNTS[split]
    assert all(isinstance(c, Clip) and c.path.is_file() for c in clips)


def test_shared_split_name_forms_and_disjoint_test(shared_data):
    ds = open_dataset(shared_data)
    assert [c.filename for c in load_split(ds, "split5")] == [c.filename for c in load_split(ds, "5.csv")]
    train = {c.identifier for c in load_split(ds, "100")}
    test = {c.identifier for c in load_split(ds, "test")}
    assert not train & test
    assert {c.filename for c in load_split(ds, "5")} <= {c.filename for c in load_split(ds, "10")}


def test_tau_samples(shared_data):
    ds = open_dataset(shared_data / "tau_samples")
    assert len(ds.clips) == 101
    assert len(ds.labels) == 10 and "airport" in ds.labels and "tram" in ds.labels
    clip = ds.clips["audio/airport-barcelona-0-0-0-a.wav"]
    assert clip.identifier == "barcelona-0" and clip.device == "a"
    stats = AudioStats()
    x = load_audio(clip.path, 32000, 1.0, stats)
    assert x.shape == (32000,) and x.dtype == np.float32
    assert stats.loaded == 1 and stats.resampled == 1


def test_load_real_clip_resampled(shared_data):
    path = shared_data / "audio/dog_bark-freesound-100032-0-2-a.wav"
    raw, sr = sf.read(path, dtype="float32")
    assert sr == 44100 and raw.shape == (44100,)
    stats = AudioStats()
    x = load_audio(path, 32000, 1.0, stats)
    ref = resample_poly(raw.astype(np.float64), 320, 441).astype(np.float32)
    np.testing.assert_array_equal(x, ref)
    assert (stats.loaded, stats.resampled, stats.padded, stats.cropped) == (1, 1, 0, 0)
    assert stats.summary() == ("1 clips: 1 resampled 44100->32000 Hz, 0 stereo down-mixed, "
                               "0 padded to 1.0 s, 0 cropped")
    native = load_audio(path, 44100, None)
    np.testing.assert_array_equal(native, raw)


def test_load_dirs_shared(shared_data):
    irs = load_dirs(shared_data / "dirs", 32000)
    assert len(irs) == 66
    assert all(ir.dtype == np.float32 and ir.ndim == 1 and 0.3 * 32000 < len(ir) < 0.55 * 32000 for ir in irs)
    assert all(np.abs(ir).max() > 0 for ir in irs)
    wave = load_audio(shared_data / "audio/dog_bark-freesound-100032-0-2-a.wav", 32000)
    y = convolve_dir(wave, irs[0])
    assert y.shape == wave.shape and y.dtype == np.float32 and np.isfinite(y).all()


# ---------------------------------------------------------------- resampling / convolution

def test_resample_ratio_and_tone():
    sr_in, sr_out = 44100, 32000
    t = np.arange(sr_in) / sr_in
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == np.float32 and y.shape == (32000,)
    np.testing.assert_array_equal(y, resample_poly(x.astype(np.float64), 320, 441).astype(np.float32))
    tt = np.arange(32000) / sr_out
    mid = slice(1000, 31000)  # skip filter edges
    np.testing.assert_allclose(y[mid], np.sin(2 * np.pi * 1000 * tt)[mid], atol=2e-3)
    same = resample(x, 16000, 16000)
    assert same is not x and np.array_equal(same, x)
    with pytest.raises(ConfigError):
        resample(x, 0, 16000)


def test_convolve_dir_matches_numpy():
    rng = np.random.default_rng(1)
    wave = rng.standard_normal(200).astype(np.float32)
    ir = rng.standard_normal(37).astype(np.float32)
    y = convolve_dir(wave, ir)
    assert y.shape == (200,) and y.dtype == np.float32
    np.testing.assert_allclose(y, np.convolve(wave.astype(np.float64), ir)[:200], rtol=1e-5, atol=1e-5)
    # IR longer than the wave, and the identity IR
    long_ir = rng.standard_normal(500)
    np.testing.assert_allclose(convolve_dir(wave, long_ir), np.convolve(wave, long_ir)[:200], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(convolve_dir(wave, np.array([1.0])), wave, atol=1e-6)


def test_load_dirs_errors(tmp_path):
    with pytest.raises(DataError) as err:
        load_dirs(tmp_path / "nodirs", 32000)
    assert_helpful(err, "nodirs", "not found")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "SOURCE.md").write_text("x")
    with pytest.raises(DataError) as err:
        load_dirs(tmp_path / "empty", 32000)
    assert_helpful(err, "empty", "no *.wav")


# ---------------------------------------------------------------- audio edge cases

def test_missing_wav(tmp_path):
    with pytest.raises(DataError) as err:
        load_audio(tmp_path / "gone.wav", 32000)
    assert_helpful(err, "gone.wav", "not found")


def test_corrupt_wav(tmp_path):
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError) as err:
        load_audio(p, 32000)
    assert_helpful(err, "noise.wav", "not a readable audio file")
    txt = tmp_path / "notes.wav"
    txt.write_text("this is not audio")
    with pytest.raises(DataError) as err:
        load_audio(txt, 32000)
    assert_helpful(err, "notes.wav")


def test_empty_wav(tmp_path, tiny_dataset):
    p = tiny_dataset.write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 44100)
    with pytest.raises(DataError) as err:
        load_audio(p, 32000)
    assert_helpful(err, "empty.wav", "empty (0 frames)")


def test_zero_sample_rate_header(tmp_path, tiny_dataset):
    p = tiny_dataset.write_wav(tmp_path / "sr0.wav", np.zeros(100, dtype=np.float32), 44100)
    data = bytearray(p.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:28] = (0).to_bytes(4, "little")  # fmt chunk: sample rate field
    p.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_audio(p, 32000)
    assert_helpful(err, "sr0.wav")


def test_bad_target_rate_and_duration(tmp_path, tiny_dataset):
    p = tiny_dataset.write_wav(tmp_path / "ok.wav", np.zeros(100, dtype=np.float32), 8000)
    with pytest.raises(ConfigError):
        load_audio(p, 0)
    with pytest.raises(ConfigError):
        load_audio(p, 8000, duration_s=0)


def test_other_rate_resampled(tmp_path, tiny_dataset):
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    p = tiny_dataset.write_wav(tmp_path / "r48.wav", x, 48000, subtype="PCM_24")
    stats = AudioStats()
    y = load_audio(p, 32000, 1.0, stats)
    assert y.shape == (32000,) and y.dtype == np.float32
    assert stats.resampled == 1 and stats.padded == 0 and stats.cropped == 0
    assert "1 resampled 48000->32000 Hz" in stats.summary()
    np.testing.assert_allclose(y, resample_poly(sf.read(p)[0], 2, 3), atol=1e-6)


def test_stereo_downmixed_and_warned_once(tmp_path, tiny_dataset, caplog, monkeypatch):
    monkeypatch.setattr(audio_mod, "_warned_downmix", False)
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal((32000, 2))).astype(np.float32)
    p = tiny_dataset.write_wav(tmp_path / "st.wav", x, 32000, subtype="FLOAT")
    stats = AudioStats()
    with caplog.at_level(logging.WARNING, logger="asc_edge.data.audio"):
        y1 = load_audio(p, 32000, 1.0, stats)
        y2 = load_audio(p, 32000, 1.0, stats)
    np.testing.assert_allclose(y1, x.mean(axis=1), atol=1e-7)
    np.testing.assert_array_equal(y1, y2)
    assert stats.downmixed == 2 and stats.resampled == 0 and stats.loaded == 2
    warnings = [r for r in caplog.records if "down-mix" in r.getMessage()]
    assert len(warnings) == 1 and "st.wav" in warnings[0].getMessage()


def test_short_clip_padded(tmp_path, tiny_dataset):
    x = np.full(16000, 0.25, dtype=np.float32)
    p = tiny_dataset.write_wav(tmp_path / "short.wav", x, 32000)
    stats = AudioStats()
    y = load_audio(p, 32000, 1.0, stats)
    assert y.shape == (32000,)
    np.testing.assert_allclose(y[:16000], 0.25, atol=1e-4)
    assert np.all(y[16000:] == 0)
    assert stats.padded == 1 and stats.cropped == 0
    assert "1 padded to 1.0 s" in stats.summary()
    assert load_audio(p, 32000, None).shape == (16000,)


def test_long_clip_cropped(tmp_path, tiny_dataset):
    x = np.linspace(-0.5, 0.5, 48000).astype(np.float32)
    p = tiny_dataset.write_wav(tmp_path / "long.wav", x, 32000)
    stats = AudioStats()
    y = load_audio(p, 32000, 1.0, stats)
    full = load_audio(p, 32000, None, stats)
    assert y.shape == (32000,) and full.shape == (48000,)
    np.testing.assert_array_equal(y, full[:32000])
    assert stats.cropped == 1 and stats.padded == 0 and stats.loaded == 2


# ---------------------------------------------------------------- meta.csv / split CSV errors

def test_tiny_dataset_ok(tiny_dataset):
    root = tiny_dataset()
    ds = open_dataset(root)
    assert ds.labels == ("park", "tram") and len(ds.clips) == 4
    assert [c.filename for c in load_split(ds, "100")] == list(ds.clips)
    assert len(load_split(ds, "test")) == 2


def test_open_dataset_errors(tmp_path, tiny_dataset):
    with pytest.raises(DataError) as err:
        open_dataset(tmp_path / "nowhere")
    assert_helpful(err, "nowhere", "does not exist")
    root = tiny_dataset()
    meta = root / "meta.csv"
    text = meta.read_text()
    meta.unlink()
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "not found")
    meta.write_text(text.replace("\t", ","))
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "tab-separated", "scene_label")
    meta.write_text("filename\tscene_label\tidentifier\n" + "audio/x.wav\tpark\tc-1\n")
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "source_label")
    meta.write_text("filename\tscene_label\tidentifier\tsource_label\n")
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "no clips")
    meta.write_text("")
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "empty")
    meta.write_text(text + text.splitlines()[1] + "\n")
    with pytest.raises(DataError) as err:
        open_dataset(root)
    assert_helpful(err, "meta.csv", "line 6", "repeats")


def test_split_row_points_at_missing_file(tiny_dataset):
    root = tiny_dataset()
    (root / "audio/park-city1-1-0-0-a.wav").unlink()
    ds = open_dataset(root)  # meta.csv alone does not need the audio
    with pytest.raises(DataError) as err:
        load_split(ds, "100")
    assert_helpful(err, "split100.csv", "CSV row points at missing file", "1 of 4 missing",
                   "park-city1-1-0-0-a.wav")
    assert len(load_split(ds, "test")) == 2  # test split does not use the missing clip


def test_split_row_not_in_meta(tiny_dataset):
    root = tiny_dataset()
    tiny_dataset.write_tsv(root / "split_setup/split5.csv", ["filename", "scene_label"],
                           [["audio/park-city0-0-0-0-a.wav", "park"], ["audio/park-ghost-9-0-0-a.wav", "park"]])
    with pytest.raises(DataError) as err:
        load_split(open_dataset(root), "5")
    assert_helpful(err, "split5.csv", "line 3", "audio/park-ghost-9-0-0-a.wav", "not in")


def test_split_unknown_label(tiny_dataset):
    root = tiny_dataset()
    tiny_dataset.write_tsv(root / "split_setup/split10.csv", ["filename", "scene_label"],
                           [["audio/park-city0-0-0-0-a.wav", "airport"]])
    with pytest.raises(DataError) as err:
        load_split(open_dataset(root), "10")
    assert_helpful(err, "split10.csv", "unknown label", "airport", "line 2")


def test_split_label_disagrees_with_meta(tiny_dataset):
    root = tiny_dataset()
    tiny_dataset.write_tsv(root / "split_setup/split10.csv", ["filename", "scene_label"],
                           [["audio/park-city0-0-0-0-a.wav", "tram"]])
    with pytest.raises(DataError) as err:
        load_split(open_dataset(root), "10")
    assert_helpful(err, "split10.csv", "park-city0-0-0-0-a.wav", "disagree")


def test_empty_split(tiny_dataset):
    root = tiny_dataset()
    tiny_dataset.write_tsv(root / "split_setup/split25.csv", ["filename", "scene_label"], [])
    with pytest.raises(DataError) as err:
        load_split(open_dataset(root), "25")
    assert_helpful(err, "split25.csv", "empty")


def test_split_wrong_header(tiny_dataset):
    root = tiny_dataset()
    (root / "split_setup/split25.csv").write_text("file,label\naudio/park-city0-0-0-0-a.wav,park\n")
    with pytest.raises(DataError) as err:
        load_split(open_dataset(root), "25")
    assert_helpful(err, "split25.csv", "filename", "tab-separated")


def test_missing_split_file_lists_places(tiny_dataset, tmp_path):
    root = tiny_dataset()
    ds = open_dataset(root)
    with pytest.raises(DataError) as err:
        load_split(ds, "50")
    assert_helpful(err, "split50.csv", str(root / "split50.csv"), str(root / "split_setup" / "split50.csv"))
    other = tmp_path / "my_splits"
    other.mkdir()
    with pytest.raises(DataError) as err:
        find_split_file(root, "split100", splits_dir=other)
    assert_helpful(err, str(other / "split100.csv"))
    with pytest.raises(ConfigError) as err:
        find_split_file(root, "7")
    assert_helpful(err, "'7'", "test")


def test_split_lookup_order(tiny_dataset, tmp_path):
    root = tiny_dataset()
    assert find_split_file(root, "100") == (root / "split_setup/split100.csv").resolve()
    os.replace(root / "split_setup/test.csv", root / "test.csv")  # a split beside meta.csv
    assert find_split_file(root, "test") == (root / "test.csv").resolve()
    mine = tiny_dataset.write_tsv(tmp_path / "mine" / "split5.csv", ["filename", "scene_label", "extra"],
                                  [["audio/tram-city1-1-0-0-a.wav", "tram", "x"]])
    assert find_split_file(root, "5", splits_dir=mine.parent) == mine.resolve()
    clips = load_split(open_dataset(root), "5", splits_dir=mine.parent)
    assert [c.filename for c in clips] == ["audio/tram-city1-1-0-0-a.wav"]
