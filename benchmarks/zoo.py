"""The seed student zoo (issue 11): every student of the five reports, trained with one recipe, exported
to int8 C and run on the emulated STM32F405.

For each student: train on split25 and split100 of ``../shared/data`` (seed 0, the same recipe and epochs
for all, each on its own report's frontend preset), export the split100 model with
``export --target cmsis-nn`` (host C == tflite-micro checked on every test clip), and ``bench`` it on
QEMU on every test clip (device logits == reference bytes). Writes ``benchmarks/results/zoo.json`` and
``zoo.md``; the files are rewritten after every student, so an interrupted run leaves the rows done so far
and ``--reuse`` continues it (run directories trained with the identical config are not retrained).

A student whose activation arena does not fit the STM32F405's 128 KiB SRAM (the KT models: the stem
output alone is 304,128 bytes) runs on Renode with the arena in external SRAM on the FSMC
(``bench --renode --external-ram``; QEMU's netduinoplus2 maps no FSMC memory); its row gives the
internal and external RAM, the step holding the memory peak and its layers (``graph.json``).
``--refresh NAME ...`` re-exports and re-benches those rows from their trained run directories
(``--reuse-exports``: keeps an earlier export of the same checkpoint, whatever its calibration).

    .venv/bin/python benchmarks/zoo.py                       # all students (hours on 2 cores)
    .venv/bin/python benchmarks/zoo.py --models sm1 --epochs 2 --splits 25 --results /tmp/zoo   # quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
from pathlib import Path

import numpy as np

from asc_edge.errors import DeviceError
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent

# name → (report, reported params, reported MACs): the figures each report gives for its student
# (KT 2024 Table 1; AI4EDGE 2023; Tencent 2023 — int8 bytes = params; SNTL-NTU 2024; ITMO 2024).
REPORTED = {
    "sm1": ("AI4EDGE 2023", 52_852, 25_470_000),
    "sm2": ("AI4EDGE 2023", 68_996, 29_300_000),
    "sm3": ("AI4EDGE 2023 (over budget before pruning)", 86_116, 37_000_000),
    "cp-resnet-s1": ("Tencent 2023", 127_600, 28_800_000),
    "cp-resnet-s2": ("Tencent 2023", 79_900, 21_400_000),
    "cp-resnet-s3": ("Tencent 2023 (= s2 layout; differs by KD)", 79_900, 21_400_000),
    "cp-resnet-s4": ("Tencent 2023", 63_500, 19_500_000),
    "cp-mobile": ("DCASE 2024 baseline / SNTL-NTU 32-BCBL", None, None),
    "cp-mobile-24": ("SNTL-NTU 2024 24-BCBL", None, None),
    "cp-mobile-itmo": ("ITMO 2024", 61_148, 21_900_000),
    "ghost-bcres2net-snake-large": ("KT 2024", 85_824, 28_560_000),
    "ghost-bcres2net-snake-small": ("KT 2024", 63_992, 26_480_000),
    "ghost-bcres2net": ("KT 2024 (ablation: Swish)", None, None),
}


def int8_macro_accuracy(export_dir: Path, data: str) -> float:
    """Macro accuracy of the int8 model (tflite-micro) on the test split."""
    from asc_edge.export.oracle import TflmOracle
    from asc_edge.features import load_split_data
    from asc_edge.features.config import FrontendConfig
    from asc_edge.metrics import classification_metrics

    rep = json.loads((export_dir / "report.json").read_text())
    test = load_split_data(data, "test", FrontendConfig.from_dict(rep["frontend"]), labels=rep["labels"],
                           progress=False)
    q, _ = TflmOracle(export_dir / "model_int8.tflite").predict(test.features)
    return float(classification_metrics(q.astype(np.float32), test.targets, rep["labels"], test.devices)["macro_accuracy"])


def _reusable_export(export_dir: Path, run_dir: Path) -> dict | None:
    """The report of an earlier export of this very checkpoint (``--reuse-exports``; its calibration
    method goes into the row), else None."""
    from asc_edge.report.io import file_sha256

    p = export_dir / "report.json"
    if not p.is_file():
        return None
    ex = json.loads(p.read_text())
    return ex if ex.get("checkpoint_sha256") == file_sha256(run_dir / "model.ckpt") else None


def student_row(name: str, args) -> dict:
    from asc_edge.device.harness import bench
    from asc_edge.export.pipeline import export_model
    from asc_edge.models import get_spec
    from asc_edge.train import TrainConfig
    from asc_edge.train.run import train_or_reuse

    source, rep_params, rep_macs = REPORTED[name]
    row: dict = {"model": name, "report": source, "reported_params": rep_params, "reported_macs": rep_macs,
                 "frontend": get_spec(name).frontend, "splits": {}}
    run_dirs = {}
    for split in args.splits:
        cfg = TrainConfig(data=args.data, split=split, model=name, frontend=get_spec(name).frontend,
                          epochs=args.epochs, seed=args.seed, out=args.out, name=f"zoo_{name}_split{split}",
                          val_every=args.epochs, progress=False)
        run_dirs[split] = train_or_reuse(cfg, args.reuse)
        m = json.loads((run_dirs[split] / "metrics.json").read_text())
        r = json.loads((run_dirs[split] / "report.json").read_text())
        row["splits"][f"split{split}"] = {"macro_accuracy": m["macro_accuracy"], "accuracy": m["accuracy"],
                                          "wall_time_s": r["wall_time_s"], "run": str(run_dirs[split])}
    dev_split = args.splits[-1]
    export_dir = Path(args.out) / "export" / f"zoo_{name}_split{dev_split}"
    n_test = 232
    ex = _reusable_export(export_dir, run_dirs[dev_split]) if args.reuse_exports else None
    if ex is None:
        ex = export_model(run_dirs[dev_split], "cmsis-nn", export_dir, data=args.data, n_check=n_test, debug_clips=1,
                          allow_over_budget=True, log=lambda *a: None)
    cx = ex["complexity"]
    arena = ex["c_model"]["arena"]
    host = ex["c_model"]["host_check"]
    row.update({"params": cx["params"], "macs": cx["macs"], "int8_param_bytes": cx["param_bytes"]["int8"],
                "device_split": f"split{dev_split}",
                "int8_macro_accuracy": int8_macro_accuracy(export_dir, args.data),
                "calibration": ex["tflite"]["calibration"].get("activation_ranges", {}).get("method", "minmax"),
                "float_macro_accuracy": row["splits"][f"split{dev_split}"]["macro_accuracy"],
                "host_c_equal": [host["n_equal"], host["n_clips"]],
                "arena_bytes": arena["arena_bytes"], "peak": arena.get("peak")})
    with tempfile.TemporaryDirectory() as tmp:
        try:
            b = bench(export_dir, data=args.data, split="test", out_dir=Path(tmp) / "bench", log=lambda *a: None)
        except DeviceError as e:
            if "does not fit in the 128 KiB SRAM" not in str(e):
                row["device"] = {"error": str(e)}
                return row
            print(f"   arena {arena['arena_bytes']:,} B does not fit the SRAM: Renode, arena in external SRAM", flush=True)
            b = bench(export_dir, data=args.data, split="test", out_dir=Path(tmp) / "bench", log=lambda *a: None,
                      backend="renode", external_ram=True)
    ins, mem, be = b["instructions"], b["memory"], b["bit_exact"]
    row["device"] = {"equal": [be["n_equal"], be["n_clips"]], "model_instructions": ins["model_mean"],
                     "instructions_per_mac": ins["model_instructions_per_mac"], "backend": b["backend"],
                     "frontend_instructions": ins["frontend_mean"], "ram_bytes": mem["ram_bytes"],
                     "ext_ram_bytes": mem.get("ext_ram_bytes", 0), "arena_location": mem.get("arena_location", "SRAM"),
                     "flash_bytes": mem["flash_bytes"], "arena_bytes": mem["arena_bytes"],
                     "stack_high_water_bytes": mem["stack_high_water_bytes"]}
    return row


def _fmt(v, spec=","):
    return "-" if v is None else format(v, spec)


def write_results(rows: list[dict], args) -> None:
    result = {"epochs": args.epochs, "seed": args.seed, "splits": [f"split{s}" for s in args.splits],
              "data": args.data, "machine": f"{platform.machine()}, {platform.python_version()}",
              "device": "emulated STM32F405 (QEMU netduinoplus2, -icount shift=0, TIM2 = executed instructions)",
              "rows": rows}
    write_json_atomic(Path(args.results).with_suffix(".json"), result)
    table = []
    for r in rows:
        d = r.get("device", {})
        acc = {k: f"{v['macro_accuracy']:.3f}" for k, v in r["splits"].items()}
        if "error" in d:
            pk = r.get("peak") or {}
            dev = {"instr/inference": "-", "instr/MAC": "-",
                   "RAM B": f"does not fit: arena {r['arena_bytes']:,} (peak: step {pk.get('step')}, "
                            f"layers {pk.get('layers')})", "flash B": "-",
                   "device == ref": f"host C == tflite-micro {r['host_c_equal'][0]}/{r['host_c_equal'][1]}"}
        else:
            ram = f"{d['ram_bytes']:,}"
            if d.get("ext_ram_bytes"):
                pk = r.get("peak") or {}
                ram += (f" + {d['ext_ram_bytes']:,} external (arena; peak: step {pk.get('step')}, "
                        f"layers {pk.get('layers')})")
            dev = {"instr/inference": f"{d['model_instructions']:,.0f}", "instr/MAC": f"{d['instructions_per_mac']:.2f}",
                   "RAM B": ram, "flash B": f"{d['flash_bytes']:,}",
                   "device == ref": f"{d['equal'][0]}/{d['equal'][1]}" + (" (Renode)" if d.get("backend") == "renode"
                                                                            else "")}
        table.append({"model": r["model"], "report": r["report"],
                      "params (report)": f"{r['params']:,} ({_fmt(r['reported_params'])})",
                      "MACs (report)": f"{r['macs']:,} ({_fmt(r['reported_macs'])})",
                      "int8 B": f"{r['int8_param_bytes']:,}",
                      **{f"macro acc {k}": v for k, v in acc.items()},
                      f"int8 macro acc {r['device_split']}": f"{r['int8_macro_accuracy']:.3f}",
                      "calibration": r.get("calibration", "minmax"), **dev})
    md = "\n".join([
        "# Seed student zoo on the emulated STM32F405", "",
        f"Every student trained on `{args.data}` ({', '.join(result['splits'])}, seed {args.seed}, "
        f"{args.epochs} epochs, the default `asc-edge train` recipe, each on its report's frontend preset), "
        f"the {result['splits'][-1]} model exported to int8 C and run on {result['device']} on every test clip. "
        "Accuracies: test-split macro accuracy (the pack is ESC-10 in TAU layout, see ../shared/data/README.md). "
        "instr = executed instructions of the model per inference (frontend excluded). "
        "A model whose arena exceeds the 128 KiB SRAM runs on Renode's STM32F405 with the arena in 2 MiB of "
        "external SRAM on the FSMC (0x64000000, as on the STM3240G-EVAL; `bench --renode --external-ram`): "
        "RAM B = internal SRAM + external bytes; instruction counts are exact on both emulators, but on silicon "
        "every arena access to the FSMC pays wait states that no emulator here models. "
        "Generated by `benchmarks/zoo.py`.", "",
        markdown_table(table) if table else "(no rows yet)", ""])
    write_text_atomic(Path(args.results).with_suffix(".md"), md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--models", nargs="+", default=list(REPORTED), choices=list(REPORTED))
    ap.add_argument("--splits", nargs="+", default=["25", "100"], help="the last one goes to the device")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "runs"))
    ap.add_argument("--results", default=str(HERE / "results" / "zoo"))
    ap.add_argument("--reuse", action="store_true", help="reuse run directories trained with the identical config")
    ap.add_argument("--refresh", nargs="+", default=[], choices=list(REPORTED), metavar="NAME",
                    help="with --reuse: export and bench these rows again (training reused)")
    ap.add_argument("--reuse-exports", action="store_true",
                    help="keep an earlier export of the same checkpoint (the row names its calibration)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    old = Path(args.results).with_suffix(".json")
    prev = json.loads(old.read_text()) if args.reuse and old.is_file() else {}
    same = prev.get("epochs") == args.epochs and prev.get("splits") == [f"split{s}" for s in args.splits]
    done = {r["model"]: r for r in prev.get("rows", []) if r["model"] not in args.refresh} if same else {}
    rows = []
    for name in args.models:
        print(f"== {name}", flush=True)
        rows.append(done.get(name) or student_row(name, args))
        write_results(rows, args)
    print(Path(args.results).with_suffix(".md").read_text())


if __name__ == "__main__":
    run_script(main)
