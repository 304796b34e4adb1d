"""Shared fixtures: the real-audio pack beside the repo, and tiny synthetic TAU-layout data sets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (ESC-10 pack in TAU layout); skips the test when it is absent."""
    if not (SHARED_DATA / "meta.csv").is_file():
        pytest.skip("../shared/data not present: the real-audio pack lives beside the repo")
    return SHARED_DATA


def write_tsv(path: Path, header: list[str], rows: list[list[str]] | list[tuple[str, ...]]) -> Path:
    """Write a tab-separated file with a header line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_dataset(tmp_path):
    """Factory writing a small synthetic TAU-layout data set under tmp_path; returns its root.

    ``make(name="ds", labels=("park", "tram"), per_label=2, sample_rate=44100, seconds=1.0)``
    writes audio/<label>-city<i>-<i>-0-0-a.wav (16-bit mono noise + tone), meta.csv, and
    split_setup/split100.csv (all clips) and split_setup/test.csv (the first clip of each label).
    ``make.write_tsv(path, header, rows)`` writes extra CSVs; ``make.write_wav(path, x, sr)`` audio.
    """

    def write_wav(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x, sr, subtype=subtype)
        return path

    def make(name: str = "ds", labels=("park", "tram"), per_label: int = 2,
             sample_rate: int = 44100, seconds: float = 1.0) -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(0)
        rows = []
        n = int(round(sample_rate * seconds))
        t = np.arange(n) / sample_rate
        for k, label in enumerate(labels):
            for i in range(per_label):
                fn = f"audio/{label}-city{i}-{i}-0-0-a.wav"
                x = 0.1 * np.sin(2 * np.pi * (300 + 200 * k + 50 * i) * t) + 0.02 * rng.standard_normal(n)
                write_wav(root / fn, x.astype(np.float32), sample_rate)
                rows.append([fn, label, f"city{i}-{i}", "a"])
        write_tsv(root / "meta.csv", ["filename", "scene_label", "identifier", "source_label"], rows)
        write_tsv(root / "split_setup" / "split100.csv", ["filename", "scene_label"], [r[:2] for r in rows])
        write_tsv(root / "split_setup" / "test.csv", ["filename", "scene_label"],
                  [r[:2] for r in rows[::per_label]])
        return root

    make.write_tsv = write_tsv
    make.write_wav = write_wav
    return make


def corrupt_block_bias(model_c: str) -> str:
    """``model.c`` of the reference export with one bias of the fused block 2-5's projection (layer 4,
    channel 0) raised by 3000. A speed build's kernel reads it from the requantisation record (2 *
    bias for each pixel of a pair: words 0 and 2, asc_edge.codegen.speed_tables.pack_1x1_requant),
    so both words change; the first divergence must then be named at layer 5 (the fused ADD)."""
    new, n = re.subn(r"(static const int32_t L4_rq\[\d+\] = \{\n    )(-?\d+)(, -?\d+, )(-?\d+)",
                     lambda m: (m.group(1) + str(int(m.group(2)) + 6000) + m.group(3)
                                + str(int(m.group(4)) + 6000)), model_c, count=1)
    assert n == 1, "no L4_rq table in model.c (a size build?)"
    return new


def bn_calibrated(name: str, features, seed: int = 0, **kwargs):
    """A random registered model ``name`` whose BatchNorm running statistics are those of real clips
    (cumulative average over ``features`` (N, 1, n_mels, frames), batches of 32): realistic
    activations, hence realistic int8 ranges, without training. Used by the export, code-generator
    and device tests."""
    import torch

    from asc_edge.models import build_model

    torch.manual_seed(seed)
    model = build_model(name, n_classes=10, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative moving average over the calibration batches
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for i in range(0, len(features), 32):
            model(torch.from_numpy(features[i:i + 32]))
    return model.eval()


def bn_calibrated_cp_mobile(features, seed: int = 0):
    """:func:`bn_calibrated` for the DCASE 2024 baseline CP-Mobile."""
    return bn_calibrated("cp-mobile", features, seed)


def export_and_bench(name: str, shared_data, tmp_path, model_kwargs: dict | None = None, tweak=None,
                     n_check: int = 40, limit: int = 3, bench_kwargs: dict | None = None,
                     precision: str = "int8") -> tuple[dict, dict]:
    """The device path of a registered student: :func:`bn_calibrated` on 96 split-25 clips of the
    model's own preset, saved as an asc-edge checkpoint (``tweak(model)`` may adjust it first),
    ``export_model(..., "cmsis-nn", precision=precision)`` and ``bench`` (with ``bench_kwargs``, e.g.
    the backend) on the first ``limit`` test clips. Returns (export report, bench report); asserts
    host C == tflite-micro (int8; an fp16 export checks host C against ONNX Runtime itself) and
    device == reference."""
    import torch

    from asc_edge.device.harness import bench
    from asc_edge.export.pipeline import export_model
    from asc_edge.features import get_frontend, load_split_data
    from asc_edge.models import get_spec

    fe = get_frontend(get_spec(name).frontend)
    sd = load_split_data(shared_data, "25", fe, progress=False)
    model = bn_calibrated(name, sd.features[:96], **(model_kwargs or {}))
    if tweak is not None:
        with torch.no_grad():
            tweak(model)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"hyper_parameters": {"model_name": name, "model_kwargs": dict(model_kwargs or {}),
                                     "labels": list(sd.labels), "frontend": fe.to_dict(),
                                     "train": {"data": str(shared_data), "split": "25"}},
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, run / "model.ckpt")
    rep = export_model(run, "cmsis-nn", tmp_path / "export", n_check=n_check, debug_clips=1, log=lambda *a: None,
                       precision=precision)
    if precision == "int8":
        hc = rep["c_model"]["host_check"]
        assert hc["all_equal"] and hc["n_equal"] == hc["n_clips"], hc
    b = bench(tmp_path / "export", data=shared_data, split="test", limit=limit, out_dir=tmp_path / "bench",
              log=lambda *a: None, **(bench_kwargs or {}))
    assert b["bit_exact"]["all_equal"] and b["bit_exact"]["n_equal"] == b["bit_exact"]["n_clips"] == limit, \
        b["bit_exact"]
    return rep, b


@pytest.fixture(scope="module")
def clips(shared_data):
    """Real split-25 clips: 200 for calibration, the other 50 for parity / oracle checks."""
    from asc_edge.features import get_frontend
    from asc_edge.features import load_split_data

    sd = load_split_data(shared_data, "25", get_frontend("dcase2024"), progress=False)
    assert sd.features.shape[1:] == (1, 256, 65) and len(sd.features) >= 250
    return {"calib": sd.features[:200], "check": sd.features[200:250], "labels": sd.labels}


@pytest.fixture
def soundfile_reads(monkeypatch):
    """Factory: ``asked = soundfile_reads()`` spies on ``soundfile.SoundFile.read`` from then on; ``asked``
    collects the ``frames`` argument of every call (-1: the whole file)."""
    import soundfile as sf

    def start() -> list[int]:
        asked: list[int] = []
        real_read = sf.SoundFile.read

        def spy(self, frames=-1, *args, **kwargs):
            asked.append(frames)
            return real_read(self, frames, *args, **kwargs)

        monkeypatch.setattr(sf.SoundFile, "read", spy)
        return asked
    return start


SHARED_RENODE = Path(__file__).resolve().parents[2] / "shared" / "tools" / "renode" / "renode-1.14-mono.tar.gz"


@pytest.fixture(scope="module")
def renode():
    """Renode's :func:`~asc_edge.device.renode.renode_info`; the test fails where
    ../shared/tools/renode holds the package but set-up did not install it, and is skipped on a
    machine without one."""
    from asc_edge.device.renode import renode_info
    from asc_edge.errors import DeviceError

    try:
        info = renode_info()
    except DeviceError as e:
        if SHARED_RENODE.is_file():
            pytest.fail(f"Renode is not set up although {SHARED_RENODE} exists (run scripts/setup.sh): {e}")
        pytest.skip(f"Renode is not installed: {e}")
    assert info["robotframework"], f"{info['python']} lacks Robot Framework (scripts/setup.sh installs it)"
    return info
