"""Why does an imported student lose accuracy in int8? Weight-rounding sensitivity per layer, in PyTorch.

For each SNTL-NTU checkpoint (``../shared/models/sntl-ntu-dcase2024``) on the 101 genuine TAU clips
(``../shared/data/tau_samples``): BatchNorm folded as in the export, then each convolution's weights
rounded alone to symmetric per-output-channel int8 (``scale = max|w| / 127``, the converter's weight
scheme; activations stay float) — how many predictions change (vs the float model) and the
relative weight error; also all layers at once, and the median top-1 − top-2 logit gap of the float
model (small gaps flip under small perturbations). Writes
``benchmarks/results/quant_sensitivity.{json,md}``.

    /work/venv-export/bin/python benchmarks/quant_sensitivity.py [--only split100]
"""

from __future__ import annotations

import argparse
import copy
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from asc_edge.checkpoint import load_checkpoint
from asc_edge.models.cpjku import import_cpjku_checkpoint
from asc_edge.export.onnx import fold_batchnorm
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.features import load_split_data
from asc_edge.signals import run_script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def round_weights_int8(conv: torch.nn.Conv2d) -> float:
    """Round ``conv``'s weights in place to symmetric per-output-channel int8; returns the relative
    L2 error ``|w_q - w| / |w|``."""
    w = conv.weight.data
    scale = (w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127).clamp_min(1e-12)
    wq = torch.round(w / scale).clamp(-127, 127) * scale
    conv.weight.data = wq
    return float((wq - w).norm() / w.norm())


def analyse(ckpt: Path, tau: Path, work: Path) -> dict:
    lm = load_checkpoint(import_cpjku_checkpoint(ckpt, work / ckpt.stem, log=None))
    d = load_split_data(tau, "all", lm.frontend, labels=lm.labels, progress=False)
    x, y = torch.from_numpy(d.features), d.targets
    model = fold_batchnorm(copy.deepcopy(lm.model)).eval()

    def predict(m) -> np.ndarray:
        with torch.no_grad():
            return m(x).argmax(1).numpy()

    with torch.no_grad():
        logits = model(x)
    top2 = logits.topk(2, dim=1).values
    f = logits.argmax(1).numpy()
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    layers = []
    for name in convs:
        q = copy.deepcopy(model)
        err = round_weights_int8(dict(q.named_modules())[name])
        p = predict(q)
        layers.append({"layer": name, "weight_shape": list(dict(model.named_modules())[name].weight.shape),
                       "relative_weight_error": err, "predictions_changed": float((p != f).mean()),
                       "accuracy": float((p == y).mean())})
    q = copy.deepcopy(model)
    for name in convs:
        round_weights_int8(dict(q.named_modules())[name])
    p_all = predict(q)
    worst = max(layers, key=lambda r: r["predictions_changed"])
    return {"checkpoint": ckpt.name, "n_clips": int(len(y)), "float_accuracy": float((f == y).mean()),
            "median_logit_gap": float((top2[:, 0] - top2[:, 1]).median()), "logit_std": float(logits.std()),
            "all_weights_int8": {"accuracy": float((p_all == y).mean()),
                                 "predictions_changed": float((p_all != f).mean())},
            "most_sensitive_layer": worst, "layers": layers}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=SHARED / "models" / "sntl-ntu-dcase2024")
    ap.add_argument("--tau", type=Path, default=SHARED / "data" / "tau_samples")
    ap.add_argument("--only", default=None, help="only checkpoints whose file name contains this")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    a = ap.parse_args()
    split_no = lambda p: (p.name.split("_split")[0], int(re.search(r"_split(\d+)_", p.name + "_split0_")[1]))  # noqa: E731
    ckpts = sorted((p for p in a.models.glob("*.ckpt") if a.only is None or a.only in p.name), key=split_no)
    if not ckpts:
        raise SystemExit(f"error: no checkpoints in {a.models} (fix: --models DIR)")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [analyse(c, a.tau, Path(tmp)) for c in ckpts]
    write_json_atomic(a.out / "quant_sensitivity.json", {"benchmark": "quant_sensitivity", "rows": rows})
    table = markdown_table([{
        "checkpoint": r["checkpoint"].removesuffix(".ckpt"), "float %": f"{100 * r['float_accuracy']:.1f}",
        "all weights int8 %": f"{100 * r['all_weights_int8']['accuracy']:.1f}",
        "predictions changed": f"{100 * r['all_weights_int8']['predictions_changed']:.0f} %",
        "median logit gap": f"{r['median_logit_gap']:.2f}",
        "most sensitive layer": r["most_sensitive_layer"]["layer"],
        "its weight error": f"{100 * r['most_sensitive_layer']['relative_weight_error']:.2f} %",
        "its changed predictions": f"{100 * r['most_sensitive_layer']['predictions_changed']:.0f} %"} for r in rows])
    md = ("# Weight-rounding sensitivity of the SNTL-NTU students (PyTorch, float activations)\n\n"
          f"Generated by `benchmarks/quant_sensitivity.py` on the {rows[0]['n_clips']} clips of `{a.tau.name}`: "
          "each convolution's weights rounded alone to symmetric per-channel int8 (BatchNorm folded); "
          "'changed' = predictions that differ from the float model's.\n\n" + table + "\n")
    write_text_atomic(a.out / "quant_sensitivity.md", md)
    print(md)


if __name__ == "__main__":
    run_script(main)
