"""Host training pipeline throughput (issue 17 item 3): the on-disk feature cache vs the online
frontend (``asc-edge train --features online``), and Lightning vs a plain PyTorch loop.

On ``../shared/data`` split100 (911 clips, 44.1 kHz WAVs) with the CP-Mobile student, dcase2024
frontend (256 mels × 65 frames), all in one process, one after the other:

1. Feature extraction, clips/s: cold cache (read WAV, resample 44.1 → 32 kHz, log-mel, write .npy
   into a fresh temporary cache), warm cache (read the .npy files back), cold waveform cache (what
   ``--features online`` stores instead), and the online frontend: ``LogMel`` per batch of 64
   waveforms already in memory, and end to end through the online data loader (one waveform file
   read per clip, batched, then ``LogMel``).
2. Training samples/s over ``--epochs`` epochs (the last epoch is reported, the first includes
   start-up): ``asc_edge.train.train`` (Lightning) with cached features, the same with online
   features, and a plain PyTorch loop — same model, batch size 64, same seeded shuffling, AdamW
   (lr 0.005, wd 1e-4) with the same warm-up/cosine schedule, cross-entropy, no Lightning — on the
   cached features. Augmentations are off in all three, so that the same work is timed; a
   Lightning epoch is timed from its first batch's start to its last batch's end (a callback
   added to the ``pl.Trainer`` that ``train`` builds), validation and the final evaluation excluded.

    .venv/bin/python benchmarks/host_pipeline.py [--data ../shared/data] [--epochs 2] [--out benchmarks/results]

No GPU on the machine that produced the committed results (2 CPU cores); on a GPU machine pass
``--accelerator gpu`` for the training rows (the plain loop follows onto the same device).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

import asc_edge.train.run as run_mod
from asc_edge.augment import AugmentConfig
from asc_edge.data import load_split, open_dataset
from asc_edge.features import FeatureCache, LogMel, get_frontend, load_split_data
from asc_edge.models import build_model
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.train import TrainConfig
from asc_edge.train.data import training_loader
from asc_edge.signals import run_script

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
NO_AUG = AugmentConfig(freq_mask=0, time_roll=0, mixup_alpha=0.0, mixstyle_p=0.0, dir_p=0.0)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def feature_rows(data: str, split: str, tmp: Path) -> tuple[list[dict], np.ndarray]:
    fe = get_frontend("dcase2024")
    clips = load_split(open_dataset(data), split, None)
    n = len(clips)
    rows = []
    t = time.perf_counter()
    FeatureCache(tmp / "features", fe).features(clips, progress=False)
    rows.append({"path": "cache, cold (WAV → resample → log-mel → .npy)", "clips": n,
                 "seconds": time.perf_counter() - t})
    t = time.perf_counter()
    FeatureCache(tmp / "features", fe).features(clips, progress=False)
    rows.append({"path": "cache, warm (read .npy)", "clips": n, "seconds": time.perf_counter() - t})
    t = time.perf_counter()
    FeatureCache(tmp / "features", fe).ensure(clips, "waveforms", progress=False)
    rows.append({"path": "online, cold waveform cache (WAV → resample → .npy)", "clips": n,
                 "seconds": time.perf_counter() - t})
    waves = FeatureCache(tmp / "features", fe).waveforms(clips, progress=False)
    mel = LogMel(fe).eval()
    with torch.inference_mode():
        mel(torch.from_numpy(waves[:BATCH]))  # warm-up
        t = time.perf_counter()
        for i in range(0, n, BATCH):
            mel(torch.from_numpy(waves[i:i + BATCH]))
    rows.append({"path": f"online, LogMel per batch of {BATCH} (waveforms in memory)", "clips": n,
                 "seconds": time.perf_counter() - t})
    split_data = load_split_data(data, split, fe, cache_dir=tmp / "features", progress=False, with_features=False)
    loader = training_loader(split_data, np.zeros((n, 0), np.float32), BATCH, False, 0,
                             waveforms=FeatureCache(tmp / "features", fe))
    with torch.inference_mode():
        t = time.perf_counter()
        for b in loader:
            mel(b[0])
    rows.append({"path": "online, loader (read waveform .npy per clip) + LogMel", "clips": n,
                 "seconds": time.perf_counter() - t})
    for r in rows:
        r["clips_per_s"] = _rate(r["clips"], r["seconds"])
    return rows, waves


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, first batch start → last batch end."""

    def __init__(self):
        self.epochs: list[dict] = []
        self._t0 = None
        self._n = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 0:
            self._t0, self._n = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._n += len(batch[1])
        if batch_idx == trainer.num_training_batches - 1:
            self.epochs.append({"seconds": time.perf_counter() - self._t0, "samples": self._n})


def lightning_row(label: str, cfg: TrainConfig) -> dict:
    timer = EpochTimer()
    real = pl.Trainer

    class Timed(real):  # the Trainer train() builds, plus the timing callback
        def __init__(self, *a, **kw):
            super().__init__(*a, callbacks=[timer], **kw)

    run_mod.pl.Trainer = Timed
    try:
        t = time.perf_counter()
        run_mod.train(cfg)
        total = time.perf_counter() - t
    finally:
        run_mod.pl.Trainer = real
    return {"path": label, "epochs": [dict(e, samples_per_s=_rate(e["samples"], e["seconds"])) for e in timer.epochs],
            "train_call_s": total}


def plain_row(data: str, split: str, cache: Path, epochs: int, seed: int, device: str) -> dict:
    fe = get_frontend("dcase2024")
    sd = load_split_data(data, split, fe, cache_dir=cache, progress=False)
    loader = training_loader(sd, np.zeros((len(sd.targets), 0), np.float32), BATCH, True, seed)
    torch.manual_seed(seed)
    model = build_model("cp-mobile", n_classes=len(sd.labels)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.005, weight_decay=1e-4)
    total = epochs * len(loader)
    warmup = min(total - 1, int(round(5.0 * total / max(1, epochs))))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    out = []
    for _ in range(epochs):
        t, n = time.perf_counter(), 0
        for x, y, _, _ in loader:
            x, y = x.to(device), y.to(device)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            n += len(y)
        dt = time.perf_counter() - t
        out.append({"seconds": dt, "samples": n, "samples_per_s": _rate(n, dt)})
    return {"path": "plain PyTorch loop, cached features", "epochs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--split", default="100")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--accelerator", default="cpu")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    t_all = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="host_pipeline-"))
    try:
        feats, _ = feature_rows(args.data, args.split, tmp)
        cache = tmp / "features"  # warm by now (features + waveforms of the split); train() adds the test split
        base = dict(data=args.data, split=args.split, epochs=args.epochs, batch_size=BATCH, val_every=args.epochs,
                    augment=NO_AUG, out=str(tmp / "runs"), cache_dir=str(tmp), progress=False, logger="none",
                    accelerator=args.accelerator)
        train_rows = [lightning_row("Lightning, cached features", TrainConfig(**base, name="cache")),
                      lightning_row("Lightning, online features", TrainConfig(**base, name="online", features="online")),
                      plain_row(args.data, args.split, cache, args.epochs, 0,
                                "cuda" if args.accelerator in ("gpu", "cuda") else "cpu")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    plain = train_rows[-1]["epochs"][-1]["samples_per_s"]
    for r in train_rows:
        r["last_epoch_samples_per_s"] = r["epochs"][-1]["samples_per_s"]
        r["ratio_vs_plain"] = r["last_epoch_samples_per_s"] / plain
    rep = {
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "processor": platform.processor(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "accelerator": args.accelerator},
        "versions": {"torch": torch.__version__, "pytorch_lightning": pl.__version__,
                     "python": platform.python_version()},
        "data": args.data, "split": args.split, "model": "cp-mobile", "frontend": "dcase2024", "batch_size": BATCH,
        "epochs": args.epochs, "features": feats, "training": train_rows,
        "wall_time_s": round(time.perf_counter() - t_all, 1),
    }
    outd = Path(args.out)
    outd.mkdir(parents=True, exist_ok=True)
    write_json_atomic(outd / "host_pipeline.json", rep)
    m = rep["machine"]
    gpu = m["gpu"] or "none (no GPU on this machine: CPU only)"
    lines = [
        "# Host pipeline throughput: feature cache vs online frontend, Lightning vs a plain loop",
        "",
        f"Generated by `benchmarks/host_pipeline.py` on {rep['generated']}: `{args.data}` split{args.split} "
        f"({feats[0]['clips']} clips), CP-Mobile, dcase2024 frontend (256 × 65), batch {BATCH}. Machine: "
        f"{m['cpu_cores']} CPU cores, torch threads {m['torch_threads']}, GPU: {gpu}; torch "
        f"{torch.__version__}, Lightning {pl.__version__}. Other jobs may have shared the cores: compare rows "
        f"of this run with each other, not with other files. Wall time {rep['wall_time_s']:.0f} s.",
        "",
        "## Feature extraction",
        "",
        markdown_table([{"path": r["path"], "clips": r["clips"], "seconds": r["seconds"],
                         "clips/s": r["clips_per_s"]} for r in feats], floatfmt=".1f"),
        "## Training samples/s (same run)",
        "",
        f"{args.epochs} epochs each, augmentations off, AdamW + warm-up/cosine, cross-entropy. The last epoch is "
        "the figure; epoch 1 includes start-up. Lightning epochs are timed first batch → last batch "
        "(validation and the final test evaluation excluded).",
        "",
        markdown_table([{"path": r["path"],
                         "epoch 1 samples/s": r["epochs"][0]["samples_per_s"],
                         "last epoch samples/s": r["last_epoch_samples_per_s"],
                         "ratio vs plain loop": r["ratio_vs_plain"]} for r in train_rows], floatfmt=".2f"),
    ]
    write_text_atomic(outd / "host_pipeline.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    run_script(main)
