"""ITMO 2024's CP-Mobile on its own frontend (16 kHz, 128 mels, 128-ms window, 10-ms hop: 128×101)
through export and the emulated STM32F405: the CMSIS-DSP log-mel at 16 kHz with a 2048-point FFT +
the generated model, device == host C frontend → tflite-micro on 3 real clips."""

from __future__ import annotations

import torch


def test_cp_mobile_itmo_exports_and_runs_bit_exact(shared_data, tmp_path):
    from asc_edge.device.harness import bench
    from asc_edge.export.pipeline import export_model
    from asc_edge.features import get_frontend, load_split_data
    from asc_edge.models import build_model

    fe = get_frontend("itmo-16k")
    sd = load_split_data(shared_data, "25", fe, progress=False)
    torch.manual_seed(0)
    model = build_model("cp-mobile-itmo", n_classes=len(sd.labels))
    for m in model.modules():  # BatchNorm statistics of real clips: realistic int8 ranges without training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(sd.features[:96]))
    model.eval()
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"hyper_parameters": {"model_name": "cp-mobile-itmo", "model_kwargs": {}, "labels": list(sd.labels),
                                     "frontend": fe.to_dict(), "train": {"data": str(shared_data), "split": "25"}},
                "state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, run / "model.ckpt")
    out = tmp_path / "export"
    rep = export_model(run, "cmsis-nn", out, n_check=20, debug_clips=1, log=lambda *a: None)
    assert rep["c_model"]["host_check"]["all_equal"]
    b = bench(out, data=shared_data, split="test", limit=3, out_dir=tmp_path / "bench", log=lambda *a: None)
    assert b["bit_exact"]["all_equal"] and b["bit_exact"]["n_clips"] == 3, b["bit_exact"]
    assert b["memory"]["ram_bytes"] <= 128 * 1024
