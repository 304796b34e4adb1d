"""Issue 17 item 3, the GPU and scale path, on the CPU: ``asc-edge train --features online`` (the
loader yields waveforms, the LightningModule computes the log-mel per batch), ``--precision`` and
``--num-workers``.

* a tiny online / bf16-mixed / 2-worker run trains and writes a complete run directory;
* the online log-mel equals the cached features of the same clips (same LogMel, float tolerance);
* the waveform augmentations (DIR, random mel top edge) give the same features on both paths for the
  same random draws;
* bad ``--precision 16-mixed`` on the CPU and ``--num-workers -1`` are one error line each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train_cli import RUN_FILES, TINY, assert_ok, assert_one_error_line, cli

from asc_edge.augment import AugmentConfig
from asc_edge.features import FeatureCache, LogMel, get_frontend, load_split_data
from asc_edge.train.config import TrainConfig
from asc_edge.train.data import training_loader
from asc_edge.train.module import ASCModule


def test_tiny_online_bf16_workers_run(tiny_dataset, tmp_path):
    root = tiny_dataset()
    r = cli("train", "--data", root, *TINY, "--features", "online", "--precision", "bf16-mixed",
            "--num-workers", "2", "--fmax-aug-range", "2000", "--logger", "none",
            "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--name", "online")
    assert_ok(r)
    run = tmp_path / "runs" / "online"
    for f in RUN_FILES:
        assert (run / f).is_file(), f
    cfg = json.loads((run / "report.json").read_text())["config"]
    assert (cfg["features"], cfg["precision"], cfg["num_workers"]) == ("online", "bf16-mixed", 2)
    assert json.loads((run / "metrics.json").read_text())["n_clips"] == 2
    # online: the training split's log-mel was never written to the cache, only its waveforms
    fe = get_frontend("dcase2024")
    cache_dir = tmp_path / "cache" / "features" / fe.key()
    assert len(list((cache_dir / "waveforms").glob("*.npy"))) == 4
    assert len(list((cache_dir / "features").glob("*.npy"))) == 2  # the test split (validation, metrics)


def test_online_features_equal_cached(tiny_dataset, tmp_path):
    root = tiny_dataset(per_label=3)
    fe = get_frontend("dcase2024")
    cached = load_split_data(root, "100", fe, cache_dir=tmp_path / "c", progress=False)
    split = load_split_data(root, "100", fe, cache_dir=tmp_path / "c", progress=False, with_features=False)
    assert split.features.shape == (6, 0) and split.targets.tolist() == cached.targets.tolist()
    loader = training_loader(split, np.zeros((6, 0), np.float32), 4, False, 0, num_workers=0,
                             waveforms=FeatureCache(tmp_path / "c", fe))
    batches = list(loader)
    assert [tuple(b[0].shape) for b in batches] == [(4, fe.n_samples), (2, fe.n_samples)]
    online = torch.cat([LogMel(fe)(b[0]) for b in batches])
    np.testing.assert_allclose(online.numpy(), cached.features, rtol=0, atol=1e-4)
    assert torch.equal(torch.cat([b[3] for b in batches]), torch.arange(6))


def test_waveform_augmentations_same_on_both_paths(tiny_dataset, tmp_path):
    """DIR + random mel top edge with the same generator state: the cache path (features, rows
    recomputed from ``module.waveforms``) and the online path (waveforms in the batch) agree."""
    root = tiny_dataset(per_label=3)
    fe = get_frontend("dcase2024")
    split = load_split_data(root, "100", fe, cache_dir=tmp_path / "c", progress=False)
    waves = FeatureCache(tmp_path / "c", fe).waveforms(split.clips, progress=False)
    cfg = TrainConfig(data=str(root), epochs=1, augment=AugmentConfig(dir_p=0.6, fmax_aug_range=2000.0))
    rng = np.random.default_rng(1)
    outs = []
    for mode in ("cache", "online"):
        train = cfg.to_dict() | {"features": mode}
        m = ASCModule("cp-mobile", {}, list(split.labels), fe.to_dict(), train)
        m.dirs = [np.r_[1.0, 0.3 * rng.standard_normal(63)].astype(np.float32) for _ in range(3)] if not outs \
            else outs[0][1]
        m._gen = torch.Generator().manual_seed(7)
        index = torch.tensor([4, 0, 5, 2])
        if mode == "cache":
            m.waveforms = waves
            x = m._augment_waveforms(torch.from_numpy(split.features[index.numpy()]), index)
        else:
            x = m._online_features(torch.from_numpy(waves[index.numpy()]))
        outs.append((x, m.dirs))
    np.testing.assert_allclose(outs[1][0].numpy(), outs[0][0].numpy(), rtol=0, atol=1e-4)
    assert not np.allclose(outs[0][0].numpy(), split.features[[4, 0, 5, 2]], atol=1e-3)  # augmented


@pytest.mark.parametrize("flags, needles", [
    (["--precision", "16-mixed"], ["--precision 16-mixed needs a GPU", "bf16-mixed or 32"]),
    (["--num-workers", "-1"], ["--num-workers -1 is out of range", ">= 0"]),
    (["--features", "disk"], ["unknown --features 'disk'", "cache, online"]),
    (["--precision", "64"], ["unknown --precision '64'", "bf16-mixed"]),
])
def test_bad_scale_flags_one_error_line(flags, needles, tiny_dataset, tmp_path):
    root = tiny_dataset()
    r = cli("train", "--data", root, *TINY, *flags, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")
    assert_one_error_line(r, *needles)
    assert not (tmp_path / "cache").exists()  # rejected before any audio was read


def test_train_teachers_passes_the_scale_flags_to_every_member(tiny_dataset, tmp_path):
    """`train-teachers` takes the same --features / --precision / --num-workers as `train`: every member's
    config carries them, and a bad one is refused before any member trains."""
    from asc_edge.train.teachers import member_configs

    configs = member_configs("sntl", "d", "100", features="online", precision="bf16-mixed", num_workers=1)
    assert len(configs) == 3
    assert all((c.features, c.precision, c.num_workers) == ("online", "bf16-mixed", 1) for _, c in configs)
    root = tiny_dataset()
    r = cli("train-teachers", "--ensemble", "sntl", "--data", root, "--split", "100", "--precision", "16-mixed",
            "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs")
    assert_one_error_line(r, "--precision 16-mixed needs a GPU")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()
