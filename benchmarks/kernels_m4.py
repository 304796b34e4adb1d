"""Executed instructions per MAC of the firmware/nn kernels on the CP-Mobile workload (emulated M4).

Builds ``firmware/app/kernelbench_main.c`` twice (``NN=dsp`` and ``NN=portable``, both with
``NN_ALWAYS=1``), runs both on the emulated STM32F405 (QEMU ``netduinoplus2``, ``-icount shift=0``:
TIM2 counts executed instructions exactly) and writes ``benchmarks/results/kernels_m4.json`` and
``kernels_m4.md``: per kernel call instructions, instructions/MAC (per element for ADD), the
DSP/portable ratio (both measured in this run), whether both builds produced identical outputs, and
a weighted estimate for the whole CP-Mobile baseline int8 model (29.4 M MACs): every conv /
depthwise / ADD layer of the model mapped to the benchmark case of its shape, weighted by its MACs
(ADD: elements). Not included: PAD / AVERAGE_POOL / STRIDED_SLICE / MUL / CONCATENATION / MEAN
(about 0.2 M elements of data movement in total).

    nice /work/venv-export/bin/python benchmarks/kernels_m4.py [--out DIR] [--label TEXT]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import tempfile
from pathlib import Path

from asc_edge.device.build import build_firmware
from asc_edge.device.qemu import run_qemu
from asc_edge.report.io import markdown_table, write_json_atomic, write_text_atomic
from asc_edge.signals import run_script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# CP-Mobile baseline int8 model (export/cp-mobile-ref/model_int8.tflite): layer -> benchmark case,
# total MACs (ADD: output elements) of all layers of that shape.
WORKLOAD = [
    # (case, total MACs or elements, layers)
    ("pw_17x32x64", 3 * 2228224, "3 expand 1x1 32->64, 64x17 map"),
    ("pw_17x64x32", 2 * 2228224, "2 project 1x1 64->32, 64x17 map"),
    ("pw_9x64x32", 1179648, "project 1x1 64->32 after the (1,2)-strided depthwise"),
    ("pw_9x32x64", 1179648, "expand 1x1 32->64, 64x9 map"),
    ("pw_9x64x56", 1032192, "project 1x1 64->56, 32x9 map"),
    ("pw_9x56x120", 2 * 1935360, "2 expand 1x1 56->120"),
    ("pw_9x120x56", 1935360, "project 1x1 120->56"),
    ("pw_9x120x104", 3594240, "project 1x1 120->104"),
    ("pw_4x9x104x10", 299520, "classifier 1x1 104->10 (layer level)"),
    ("conv3x3s2_33x8x32", 2506752, "3x3 s2 conv 8->32 (layer level)"),
    ("conv3x3s2_65x1x8", 304128, "3x3 s2 conv 1->8 (layer level)"),
    ("dw_17x64_s11", 2 * 626688, "2 depthwise 3x3 64 ch, W17, stride 1"),
    ("dw_17x64_s12", 331776, "depthwise 3x3 64 ch, stride (1,2)"),
    ("dw_9x64_s21", 165888, "depthwise 3x3 64 ch, stride (2,1)"),
    ("dw_9x120_s11", 2 * 311040, "2 depthwise 3x3 120 ch, W9"),
    ("add_17x32", 2 * 34816, "2 residual ADD 64x17x32 (elements)"),
    ("add_9x32", 18432, "ADD 64x9x32 (elements)"),
    ("add_9x56", 16128, "residual ADD 32x9x56 (elements)"),
]
MODEL_MACS = 29416448  # conv + depthwise MACs of the model
PEER = {"overall": 3.21, "conv": 2.40, "dw": 8.0, "add_share": 0.09,
        "what": "TFLite Micro + CMSIS-NN, same model, emulated M4 -O2"}

_LINE = re.compile(r"^KB (\S+) (\S+) (\d+) (\d+) (0x[0-9a-fA-F]+)\s*$")


def run_variant(nn: str, build_root: Path, timeout_s: float) -> dict[str, dict]:
    img = build_firmware("kernelbench", build_root / nn, nn=nn, nn_always=True, jobs=2, timeout_s=600.0)
    res = run_qemu(img.elf, workdir=build_root / f"{nn}_run", timeout_s=timeout_s, icount=True)
    text = res.stdout
    if "KB_DONE" not in text:
        raise RuntimeError(f"kernelbench ({nn}) did not finish:\n{text[-3000:]}")
    out: dict[str, dict] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            name, kind, macs, instr, h = m.groups()
            out[name] = {"kind": kind, "macs": int(macs), "instructions": int(instr), "hash": h.lower()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--build", type=Path, default=None, help="build directory (default: a temporary one)")
    ap.add_argument("--label", default="", help="free text stored with the results")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="asc-kb-") as tmp:
        root = args.build or Path(tmp)
        dsp = run_variant("dsp", root, args.timeout)
        por = run_variant("portable", root, args.timeout)

    rows = []
    for name, d in dsp.items():
        p = por[name]
        unit = "element" if d["kind"] == "add" else "MAC"
        rows.append({
            "case": name, "kind": d["kind"], "macs_or_elements": d["macs"],
            "dsp_instructions": d["instructions"], "dsp_per_unit": d["instructions"] / d["macs"],
            "portable_instructions": p["instructions"], "portable_per_unit": p["instructions"] / p["macs"],
            "dsp_over_portable": d["instructions"] / p["instructions"], "unit": unit,
            "outputs_identical": d["hash"] == p["hash"],
        })
    by = {r["case"]: r for r in rows}
    wl_rows, tot = [], {"dsp": 0.0, "portable": 0.0}
    per_kind = {}
    for case, amount, what in WORKLOAD:
        r = by[case]
        di, pi = r["dsp_per_unit"] * amount, r["portable_per_unit"] * amount
        tot["dsp"] += di
        tot["portable"] += pi
        k = per_kind.setdefault(r["kind"], {"dsp": 0.0, "portable": 0.0, "amount": 0})
        k["dsp"] += di
        k["portable"] += pi
        k["amount"] += amount
        wl_rows.append({"layers": what, "case": case, "macs_or_elements": amount,
                        "dsp_instructions_M": di / 1e6, "portable_instructions_M": pi / 1e6})
    summary = {
        "model_macs": MODEL_MACS,
        "dsp_instructions_per_mac": tot["dsp"] / MODEL_MACS,
        "portable_instructions_per_mac": tot["portable"] / MODEL_MACS,
        "dsp_total_instructions_M": tot["dsp"] / 1e6,
        "portable_total_instructions_M": tot["portable"] / 1e6,
        "per_kind": {k: {"dsp_per_unit": v["dsp"] / v["amount"], "portable_per_unit": v["portable"] / v["amount"],
                         "dsp_share": v["dsp"] / tot["dsp"], "amount": v["amount"]} for k, v in per_kind.items()},
        "all_outputs_identical": all(r["outputs_identical"] for r in rows),
    }
    result = {
        "what": "executed instructions (TIM2 under qemu-system-arm -M netduinoplus2 -icount shift=0) of one "
                "kernel call per case; firmware/app/kernelbench_main.c, -mcpu=cortex-m4 -O2",
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "label": args.label,
        "cases": rows,
        "workload": wl_rows,
        "summary": summary,
        "peer": PEER,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "kernels_m4.json", result)
    pk = summary["per_kind"]
    md = [
        "# asc_nn kernels on the emulated Cortex-M4: executed instructions per MAC\n",
        f"Generated by `benchmarks/kernels_m4.py` ({result['date']}{', ' + args.label if args.label else ''}). "
        "One kernel call per case on pseudo-random data; instruction counts are exact (QEMU `-icount shift=0`, "
        "TIM2 = one tick per executed instruction). DSP = `NN=dsp` (SXTB16/SMLAD paths), portable = "
        "`NN=portable` (`-DASC_NN_FORCE_PORTABLE`), both built and run in this run. ADD: per element.\n",
        markdown_table(rows, ["case", "kind", "macs_or_elements", "dsp_instructions", "dsp_per_unit",
                              "portable_instructions", "portable_per_unit", "dsp_over_portable",
                              "outputs_identical"]),
        "\n## Weighted CP-Mobile workload (29.4 M MACs)\n",
        markdown_table(wl_rows, floatfmt=".3f"),
        "\n| | DSP | portable |\n|---|---:|---:|\n"
        f"| instructions / MAC, whole workload | {summary['dsp_instructions_per_mac']:.3f} | "
        f"{summary['portable_instructions_per_mac']:.3f} |\n"
        f"| total instructions (M) | {summary['dsp_total_instructions_M']:.2f} | "
        f"{summary['portable_total_instructions_M']:.2f} |\n",
    ]
    for k in ("conv1x1", "conv", "dw", "add"):
        if k in pk:
            unit = "element" if k == "add" else "MAC"
            md.append(f"| {k}: instructions / {unit} (share of DSP total) | {pk[k]['dsp_per_unit']:.3f} "
                      f"({pk[k]['dsp_share']:.1%}) | {pk[k]['portable_per_unit']:.3f} |\n")
    md.append(f"\nPeer ({PEER['what']}): {PEER['overall']} instructions/MAC overall, conv {PEER['conv']}/MAC, "
              f"depthwise {PEER['dw']}/MAC, ADD {PEER['add_share']:.0%} of the total. "
              f"DSP and portable outputs identical in every case: {summary['all_outputs_identical']}.\n")
    md.append("\nThis is a per-call estimate, not the model: in the generated model the fused blocks give the "
              "1x1 kernels pre-widened filters and requantisation records (flash, speed_tables) and 4 rows per call (68 / 36 pixels), where these cases "
              "widen the filter at run time for one row; `conv3x3s2_65x1x8` uses a clamped activation "
              "(min = its input zero point), so it takes the int8 fallback instead of the pw16 path the "
              "model's first layer uses. The whole model is measured by `benchmarks/device_bench.py` "
              "(`benchmarks/results/device_bench.md`).\n")
    write_text_atomic(args.out / "kernels_m4.md", "".join(md))
    print("".join(md))


if __name__ == "__main__":
    run_script(main)
