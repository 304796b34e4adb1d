"""Bad audio and bad CSVs (issue 15, classes 5 and 6) end in one ``error:`` line naming the file.

* Audio: only the frames a clip needs are read (a 20-minute WAV costs what a 1-s one does), results
  stay bit-identical to reading the whole file; non-finite or absurd float samples (|x| > 1000) are
  rejected at load, before anything reaches the feature cache.
* CSV: TAU CSVs are read with quoting off, so a stray quote is just a character and never swallows
  the rest of the file; text quoted back in an error is capped; a malformed line is named by number.

Every bad-input case runs ``asc-edge train`` through the CLI and asserts exit status 2, exactly one
line naming the file, no traceback, and no run directory written.
"""

from __future__ import annotations

import tracemalloc
from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from test_train_cli import TINY, assert_one_error_line, cli

import asc_edge.data.audio as audio_mod
from asc_edge.data.audio import MAX_ABS_SAMPLE, load_audio
from asc_edge.data.tau import load_split, open_dataset

META_HEADER = ["filename", "scene_label", "identifier", "source_label"]
BAD_WAV = "audio/park-city1-1-0-0-a.wav"  # a clip of the tiny data set (split100 lists it)


def train(root: Path, tmp_path: Path):
    return cli("train", "--data", root, *TINY, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")


def assert_nothing_written(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def cache_entries_of(tmp_path: Path, wav: Path) -> list[Path]:
    """Feature-cache files (features or waveforms) written for ``wav``."""
    cache = tmp_path / "cache"
    return [p for p in cache.rglob("*.npy") if p.name.startswith(wav.stem + "-")] if cache.exists() else []


def old_load_audio(path: Path, sample_rate: int, duration_s: float = 1.0) -> np.ndarray:
    """load_audio as it was before issue 15: the whole file read, down-mixed, resampled, then cropped."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = data.mean(axis=1, dtype=np.float64).astype(np.float32) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        g = gcd(sr, sample_rate)
        x = resample_poly(x.astype(np.float64), sample_rate // g, sr // g).astype(np.float32)
    n = int(round(sample_rate * duration_s))
    x = np.concatenate([x, np.zeros(n - len(x), dtype=np.float32)]) if len(x) < n else x[:n]
    return np.ascontiguousarray(x, dtype=np.float32)



def assert_short_error(result, tmp_path, *needles, max_len: int = 400) -> str:
    """One error line containing ``needles``, shorter than ``max_len`` characters, and nothing written."""
    line = assert_one_error_line(result, *needles)
    assert len(line) < max_len, len(line)
    assert_nothing_written(tmp_path)
    return line

# ------------------------------------------------------------------------------------ 5. audio
def test_long_wav_reads_only_the_needed_frames(tiny_dataset, tmp_path, soundfile_reads):
    """A 20-minute 8-kHz WAV: load_audio asks soundfile for ~1 s of frames and allocates ~1 s of audio."""
    sr, minutes = 8000, 20
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal(sr * 60 * minutes)).astype(np.float32)
    p = tiny_dataset.write_wav(tmp_path / "long.wav", x, sr)
    expected = old_load_audio(p, 32000)
    del x

    asked = soundfile_reads()  # frame counts passed to SoundFile.read
    tracemalloc.start()
    try:
        y = load_audio(p, 32000, 1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert asked and all(0 < f <= 2 * sr for f in asked), asked  # not -1 (whole file): ~1 s of frames
    # the whole file as float32 is 38 MB (and twice that as float64 for resampling); 1 s is ~100 kB
    assert peak < 4_000_000, peak
    assert np.array_equal(y.view(np.uint32), expected.view(np.uint32))


def test_long_wav_with_broken_first_second_is_one_line(tiny_dataset, tmp_path, soundfile_reads):
    """Through the CLI: a 20-minute WAV with 1e30 at 0.5 s is rejected, and only ~1 s of it was read."""
    root = tiny_dataset()
    sr = 8000
    x = np.zeros(sr * 60 * 20, dtype=np.float32)
    x[sr // 2] = 1e30
    bad = tiny_dataset.write_wav(root / BAD_WAV, x, sr, subtype="FLOAT")
    asked = soundfile_reads()  # frame counts passed to SoundFile.read
    r = train(root, tmp_path)
    assert_one_error_line(r, bad, "magnitude 1e+30")
    assert asked and all(0 < f <= 2 * 44100 for f in asked), asked  # no whole-file read of any clip
    assert_nothing_written(tmp_path)
    assert cache_entries_of(tmp_path, bad) == []


@pytest.mark.parametrize("value, needle", [
    (1e30, "magnitude 1e+30"),
    (2 * MAX_ABS_SAMPLE, "magnitude 2e+03"),
    (np.nan, "NaN or infinite"),
    (np.inf, "NaN or infinite"),
    (-np.inf, "NaN or infinite"),
], ids=["1e30", "just-over-bound", "nan", "inf", "-inf"])
def test_broken_float_wav_is_one_line_and_not_cached(value, needle, tiny_dataset, tmp_path):
    root = tiny_dataset()
    x = 0.1 * np.random.default_rng(1).standard_normal(44100)
    x[1234] = value
    bad = tiny_dataset.write_wav(root / BAD_WAV, x.astype(np.float32), 44100, subtype="FLOAT")
    r = train(root, tmp_path)
    assert_one_error_line(r, bad, needle)
    assert_nothing_written(tmp_path)
    assert cache_entries_of(tmp_path, bad) == []  # no NaN / inf features left behind in the cache


def test_float_wav_above_full_scale_but_within_bound_loads(tiny_dataset, tmp_path):
    x = np.full(32000, 0.5, dtype=np.float32)
    x[100] = 10.0  # hot, but plausible float audio
    p = tiny_dataset.write_wav(tmp_path / "hot.wav", x, 32000, subtype="FLOAT")
    y = load_audio(p, 32000, 1.0)
    assert y[100] == 10.0 and np.isfinite(y).all()


def test_normal_clips_load_bit_identically(shared_data, tiny_dataset, tmp_path):
    """Real pack clips and synthetic ones of other rates / lengths / channels: same bits as the old
    whole-file algorithm (the feature cache and the bit-exact device tests rely on it)."""
    wavs = sorted((shared_data / "audio").glob("*.wav"))[::200][:6]
    assert wavs
    rng = np.random.default_rng(7)
    for sr, seconds, ch in [(44100, 3.0, 1), (48000, 2.5, 2), (8000, 4.0, 1), (22050, 0.7, 1),
                            (32000, 2.0, 1), (96000, 1.3, 2), (44100, 1.0, 1)]:
        shape = (int(sr * seconds), ch) if ch > 1 else (int(sr * seconds),)
        wavs.append(tiny_dataset.write_wav(tmp_path / f"s{sr}-{seconds}-{ch}.wav",
                                           (0.3 * rng.standard_normal(shape)).astype(np.float32), sr,
                                           subtype="PCM_24"))
    for p in wavs:
        for target, dur in [(32000, 1.0), (44100, 1.0), (16000, 0.5)]:
            new = load_audio(p, target, dur)
            old = old_load_audio(p, target, dur)
            assert new.dtype == old.dtype == np.float32 and new.shape == old.shape, p
            assert np.array_equal(new.view(np.uint32), old.view(np.uint32)), (p, target, dur)


def test_crop_is_counted_for_a_partially_read_file(tiny_dataset, tmp_path):
    p = tiny_dataset.write_wav(tmp_path / "3s.wav", np.zeros(3 * 44100, dtype=np.float32), 44100)
    stats = audio_mod.AudioStats()
    load_audio(p, 32000, 1.0, stats)
    assert (stats.cropped, stats.padded, stats.loaded) == (1, 0, 1)


# -------------------------------------------------------------------------------------- 6. CSV
def _meta_rows(n: int) -> list[list[str]]:
    return [[f"audio/park-city{i}-{i}-0-0-a.wav", "park", f"city{i}-{i}", "a"] for i in range(n)]


def test_unclosed_quote_in_big_meta_csv_is_short_line(tiny_dataset, tmp_path):
    """~84 KB of meta.csv after an unclosed quote used to be pasted into the error line."""
    root = tiny_dataset()
    rows = _meta_rows(1600)
    rows[9] = [rows[9][0], '"park', rows[9][2]]  # unclosed quote, and a field short
    tiny_dataset.write_tsv(root / "meta.csv", META_HEADER, rows)
    assert (root / "meta.csv").stat().st_size > 80_000
    assert_short_error(train(root, tmp_path), tmp_path, root / "meta.csv", "line 11",
                       "has 3 tab-separated field(s)")


def test_unclosed_quote_in_4000_row_meta_csv(tiny_dataset, tmp_path):
    """Used to raise ``_csv.Error: field larger than field limit`` (the quote swallowed 200 KB)."""
    root = tiny_dataset()
    rows = _meta_rows(4000)
    rows[16] = [rows[16][0], '"park', rows[16][2]]
    tiny_dataset.write_tsv(root / "meta.csv", META_HEADER, rows)
    assert (root / "meta.csv").stat().st_size > 131072  # more than the csv module's field limit
    assert_short_error(train(root, tmp_path), tmp_path, root / "meta.csv", "line 18")


def test_unclosed_quote_in_split_csv(tiny_dataset, tmp_path):
    root = tiny_dataset()
    split = root / "split_setup" / "split100.csv"
    lines = split.read_text().splitlines()
    lines[2] = '"' + lines[2].split("\t")[0]  # unclosed quote, label missing
    split.write_text("\n".join(lines + [lines[1]] * 3000) + "\n")
    assert_short_error(train(root, tmp_path), tmp_path, split, "line 3", "has 1 tab-separated field(s)")


def test_quote_in_filename_is_just_a_character(tiny_dataset, tmp_path):
    """Quotes (leading, unbalanced) in fields are data, not CSV syntax: such a clip is found and loaded."""
    root = tiny_dataset()
    names = ['"quoted" park.wav', 'audio/"park-city9-9-0-0-a.wav']
    rows = [ln.split("\t") for ln in (root / "meta.csv").read_text().splitlines()[1:]]
    for i, fn in enumerate(names):
        tiny_dataset.write_wav(root / fn, np.zeros(44100, dtype=np.float32), 44100)
        rows.append([fn, "park", f'"city9-{i}', "a"])
    tiny_dataset.write_tsv(root / "meta.csv", META_HEADER, rows)
    tiny_dataset.write_tsv(root / "split_setup" / "split100.csv", ["filename", "scene_label"],
                           [r[:2] for r in rows])
    ds = open_dataset(root)
    clips = load_split(ds, "100")
    got = {c.filename: c for c in clips}
    for i, fn in enumerate(names):
        assert got[fn].path == root.resolve() / fn and got[fn].identifier == f'"city9-{i}'
        assert load_audio(got[fn].path, 32000).shape == (32000,)


@pytest.mark.parametrize("where", ["meta", "split"])
def test_row_with_wrong_number_of_columns(where, tiny_dataset, tmp_path):
    root = tiny_dataset()
    path = root / "meta.csv" if where == "meta" else root / "split_setup" / "split100.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].split("\t")[0] + "  " + "x" * 500  # spaces instead of tabs, long junk
    path.write_text("\n".join(lines) + "\n")
    assert_short_error(train(root, tmp_path), tmp_path, path, "line 4", "has 1 tab-separated field(s)", "…")


def test_line_over_the_csv_field_limit(tiny_dataset, tmp_path):
    """A 200 KB line (no tabs) exceeds the csv module's 128 KiB field limit: one line, its number."""
    root = tiny_dataset()
    meta = root / "meta.csv"
    lines = meta.read_text().splitlines()
    lines.insert(2, "a" * 200_000)
    meta.write_text("\n".join(lines) + "\n")
    assert_short_error(train(root, tmp_path), tmp_path, meta, "line 3", "field larger than field limit")


def test_garbage_header_is_capped(tiny_dataset, tmp_path):
    root = tiny_dataset()
    meta = root / "meta.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(['"' + "filename,scene_label," * 2000] + lines[1:]) + "\n")
    assert_short_error(train(root, tmp_path), tmp_path, meta, "lacks column(s)", "…", max_len=600)
