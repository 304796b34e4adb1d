"""``asc-edge report RUN_OR_EXPORT``: one self-contained HTML page (``report.html``).

The page gathers what a run, its export and its device bench measured: training curves, confusion
matrix, per-class / per-device accuracy, complexity against the DCASE budget, int8 against float,
the device's instructions per step and RAM / flash use. Every figure is drawn with matplotlib (Agg,
through :mod:`asc_edge.report.plots` where a plot exists) and embedded as a base64 ``data:`` PNG;
the CSS is inline; there is no JavaScript and no external URL, so the page opens offline and can be
mailed as one file.

Inputs are found from either end of the chain:

- a **run** directory (``report.json`` + ``metrics.json`` from ``asc-edge train``): its export is
  ``export/<run name>/`` (beside the checkout) when that folder's checkpoint is this run's;
- an **export** directory (``report.json`` with ``tflite`` / ``c_model`` from ``asc-edge export``):
  its run is the folder of its ``checkpoint`` when that is a run's ``model.ckpt``;
- a **bench** report: ``--bench`` (a ``bench.json`` or a folder holding one), else
  ``<export>/bench/bench.json``, else ``<run>/bench/bench.json`` (where ``asc-edge bench`` writes).

A section whose data is missing is replaced by a one-line note; only an input that is neither a run
nor an export (or unreadable JSON) is an error.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asc_edge.errors import ConfigError
from asc_edge.paths import REPO_ROOT
from asc_edge.report.io import write_text_atomic

__all__ = ["ReportInputs", "find_inputs", "render_html", "write_report"]

#: DCASE 2024 Task 1 limits (asc_edge.complexity.MAX_PARAM_BYTES / MAX_MACS), used when a report lacks them.
_DEFAULT_LIMITS = {"param_bytes": 128_000, "macs": 30_000_000}
#: STM32F405: 1 MiB flash, 128 KiB SRAM (asc_edge.device.elfinfo; the bench report carries the SRAM size).
_FLASH_BYTES = 1024 * 1024
_SRAM_BYTES = 128 * 1024

_WHAT = "pass a run folder (from `asc-edge train`) or an export folder (from `asc-edge export`)"
_BLUE, _ORANGE, _GREEN, _GREY, _RED = "#1f77b4", "#ff7f0e", "#2ca02c", "#9e9e9e", "#d62728"


@dataclass
class ReportInputs:
    """What the page is made of; ``None`` where that part was not found."""

    target: Path                      # the folder given on the command line
    run_dir: Path | None = None
    run_report: dict | None = None
    metrics: dict | None = None
    history: list | None = None
    export_dir: Path | None = None
    export_report: dict | None = None
    bench_path: Path | None = None
    bench: dict | None = None


# --------------------------------------------------------------------------------------- inputs
def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc})",
                          hint=f"regenerate it (the {what} is written by asc-edge) or pass another folder") from exc


def _read_optional(path: Path):
    """JSON of ``path`` or None when it is absent or unreadable (an optional section is then left out)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _is_run(d: Path) -> bool:
    return (d / "report.json").is_file() and (d / "metrics.json").is_file()


def _resolve(p: str | None, base: Path) -> Path | None:
    """A path recorded in a report: absolute, else relative to the working directory, the report's
    folder or the checkout (export reports record ``export/<name>.ckpt`` relative to the checkout)."""
    if not p:
        return None
    path = Path(p)
    if path.is_absolute():
        return path
    for root in (Path.cwd(), base, REPO_ROOT):
        if (root / path).exists():
            return (root / path).resolve()
    return None


def _same_file(a: Path | None, b: Path | None) -> bool:
    try:
        return a is not None and b is not None and a.resolve() == b.resolve()
    except OSError:
        return False


def find_inputs(target: Path | str, run: Path | str | None = None, bench: Path | str | None = None) -> ReportInputs:
    """Classify ``target`` (run or export folder) and find the other parts; see the module docstring.

    ``run`` pairs an export with a run explicitly (e.g. the reference export, whose checkpoint is not
    in a run folder); ``bench`` names the bench report. Raises :class:`ConfigError` for a ``target`` that
    is neither a run nor an export folder and for a ``run`` / ``bench`` given but unusable."""
    target = Path(target)
    if not target.is_dir():
        raise ConfigError(f"{target}: " + ("not a folder" if target.exists() else "no such folder"), hint=_WHAT)
    inp = ReportInputs(target=target)
    if _is_run(target):
        inp.run_dir = target
    elif (target / "report.json").is_file():
        rep = _read_json(target / "report.json", "export report")
        if not isinstance(rep, dict) or not ({"tflite", "c_model", "onnx"} & rep.keys()):
            raise ConfigError(f"{target}: report.json is neither a run's (no metrics.json beside it) nor an export's "
                              "(no tflite / c_model section)", hint=_WHAT)
        inp.export_dir, inp.export_report = target, rep
    else:
        raise ConfigError(f"{target}: not a run folder (report.json + metrics.json) nor an export folder (report.json)",
                          hint=_WHAT)

    if run is not None:
        if not _is_run(Path(run)):
            raise ConfigError(f"--run {run}: not a run folder (report.json + metrics.json)",
                              hint="pass the folder `asc-edge train` wrote (runs/<name>/)")
        inp.run_dir = Path(run)
    elif inp.run_dir is None:  # export -> its run, through the checkpoint it was made from
        ck = _resolve(inp.export_report.get("checkpoint"), inp.export_dir)
        if ck is not None and ck.name == "model.ckpt" and _is_run(ck.parent):
            inp.run_dir = ck.parent
    if inp.export_dir is None:  # run -> export/<run name>/, if it was exported from this run
        cand = REPO_ROOT / "export" / inp.run_dir.resolve().name
        rep = _read_optional(cand / "report.json")
        if isinstance(rep, dict) and _same_file(_resolve(rep.get("checkpoint"), cand), inp.run_dir / "model.ckpt"):
            inp.export_dir, inp.export_report = cand, rep

    if inp.run_dir is not None:
        inp.run_report = _read_json(inp.run_dir / "report.json", "run report")
        inp.metrics = _read_json(inp.run_dir / "metrics.json", "run metrics")
        hist = _read_optional(inp.run_dir / "history.json")
        inp.history = hist if isinstance(hist, list) else None

    if bench is not None:
        b = Path(bench)
        b = b / "bench.json" if b.is_dir() else b
        if not b.is_file():
            raise ConfigError(f"--bench {bench}: no bench.json there",
                              hint="pass the bench.json (or its folder) that `asc-edge bench EXPORT` wrote")
        inp.bench_path, inp.bench = b, _read_json(b, "bench report")
    else:
        for d in (inp.export_dir, inp.run_dir):
            if d is not None and (d / "bench" / "bench.json").is_file():
                data = _read_optional(d / "bench" / "bench.json")
                if isinstance(data, dict):
                    inp.bench_path, inp.bench = d / "bench" / "bench.json", data
                    break
    return inp


# -------------------------------------------------------------------------------------- figures
def _png(draw: Callable[[Path], None]) -> str:
    """Run ``draw(path)`` (a plots.py-style writer) into a temporary file; return a data URI."""
    with tempfile.TemporaryDirectory(prefix="asc_report_") as tmp:
        path = Path(tmp) / "figure.png"
        draw(path)
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig) -> Callable[[Path], None]:
    from asc_edge.report.plots import save_figure_atomic

    def draw(path: Path) -> None:
        fig.tight_layout()
        save_figure_atomic(fig, path, dpi=100)
    return draw


def _bar_labels(ax, bars, texts: Sequence[str], horizontal: bool = False) -> None:
    for bar, text in zip(bars, texts):
        if horizontal:
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + text, va="center", fontsize=8)
        else:
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), text, ha="center", va="bottom", fontsize=8)


def _accuracy_bars(metrics: dict) -> Callable[[Path], None]:
    """Per-class (left) and per-device (right) test accuracy with the clip counts."""
    panels = [("per class", metrics.get("per_class_accuracy") or {}, metrics.get("per_class_count") or {}),
              ("per device", metrics.get("per_device_accuracy") or {}, metrics.get("per_device_count") or {})]
    n_class = max(1, len(panels[0][1]))
    fig = _figure(11.0, 3.8)
    gs = fig.add_gridspec(1, 2, width_ratios=[max(n_class, 3), max(len(panels[1][1]), 3)])
    macro = metrics.get("macro_accuracy")
    for k, (name, acc, count) in enumerate(panels):
        ax = fig.add_subplot(gs[0, k])
        keys = list(acc)
        vals = [float(acc[key]) if acc[key] is not None else 0.0 for key in keys]
        bars = ax.bar(range(len(keys)), vals, color=_BLUE if k == 0 else _ORANGE)
        _bar_labels(ax, bars, [f"{v:.2f}\nn={count.get(key, '?')}" for key, v in zip(keys, vals)])
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(keys, rotation=45 if len(keys) > 4 else 0, ha="right" if len(keys) > 4 else "center",
                           fontsize=8)
        ax.set_ylim(0, 1.18)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"accuracy {name}")
        if isinstance(macro, (int, float)):
            ax.axhline(float(macro), color=_GREY, linestyle="--", linewidth=1, label=f"macro {macro:.3f}")
            ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, axis="y", alpha=0.3)
        if not keys:
            ax.text(0.5, 0.5, f"no {name} data", ha="center", va="center", transform=ax.transAxes)
    return _save(fig)


def _budget_bars(cx: dict, precision: str = "int8") -> Callable[[Path], None]:
    """Parameter bytes at the deployed ``precision`` and MACs as a share of the DCASE budget."""
    limits = {**_DEFAULT_LIMITS, **(cx.get("limits") or {})}
    pb = cx.get("param_bytes") or {}
    rows = [(f"parameter bytes ({dtype})", pb[dtype], limits["param_bytes"], "B") for dtype in (precision,)
            if pb.get(dtype) is not None]
    if cx.get("macs") is not None:
        rows.append(("MACs per inference", cx["macs"], limits["macs"], ""))
    fig = _figure(11.0, 0.55 * len(rows) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    shares = [100.0 * v / lim for _, v, lim, _ in rows]
    colors = [_GREEN if s <= 100 else _RED for s in shares]
    bars = ax.barh(range(len(rows)), shares, color=colors)
    _bar_labels(ax, bars, [f"{v:,} {u} of {lim:,} {u} ({s:.0f} %)".replace("  ", " ")
                           for (_, v, lim, u), s in zip(rows, shares)], horizontal=True)
    ax.axvline(100, color=_RED, linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, max(150.0, max(shares, default=0) * 1.5))
    ax.set_xlabel("% of the DCASE 2024 Task 1 limit (dashed line)")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig)


def _int8_bars(values: list[tuple[str, float]]) -> Callable[[Path], None]:
    fig = _figure(7.0, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    colors = [_BLUE, _ORANGE, _GREEN, _GREY, _GREY][:len(values)]
    bars = ax.bar(range(len(values)), [v for _, v in values], color=colors)
    _bar_labels(ax, bars, [f"{v:.4f}" for _, v in values])
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels([n for n, _ in values], fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("fraction of test clips")
    ax.set_title("float vs int8 (same clips)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig)


def _step_bars(ins: dict, cyc: dict | None) -> Callable[[Path], None]:
    """Instructions per model step (bars) with instructions per MAC (line) and the frontend's stages."""
    steps = ins.get("steps") or []
    parts = ins.get("frontend_parts") or {}
    fig = _figure(11.0, 4.4)
    gs = fig.add_gridspec(1, 2, width_ratios=[max(len(steps), 1), max(len(parts), 1) + 2])
    ax = fig.add_subplot(gs[0, 0])
    xs = range(len(steps))
    ax.bar(xs, [float(s.get("instructions") or 0) / 1e6 for s in steps], color=_BLUE, label="instructions")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([str(s.get("name", k)) for k, s in enumerate(steps)], rotation=90, fontsize=7)
    ax.set_ylabel("million instructions")
    title = f"model: {float(ins.get('model_mean') or 0) / 1e6:.1f} M instructions per inference"
    if cyc and isinstance(cyc.get("model"), dict) and "ms_min" in cyc["model"]:
        title += f" (≈ {cyc['model']['ms_min']:.0f}–{cyc['model']['ms_max']:.0f} ms at 168 MHz)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ipm = [(k, s["instructions_per_mac"]) for k, s in enumerate(steps) if s.get("instructions_per_mac")]
    if ipm:
        ax2 = ax.twinx()
        ax2.plot([k for k, _ in ipm], [v for _, v in ipm], "o", color=_ORANGE, markersize=4, label="instr / MAC")
        ax2.set_ylabel("instructions per MAC", color=_ORANGE)
        ax2.set_ylim(0, max(v for _, v in ipm) * 1.2)
    ax = fig.add_subplot(gs[0, 1])
    names = list(parts)
    bars = ax.bar(range(len(names)), [float(parts[n]) / 1e6 for n in names], color=_GREEN)
    _bar_labels(ax, bars, [f"{float(parts[n]) / 1e6:.1f}" for n in names])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_title(f"frontend: {float(ins.get('frontend_mean') or 0) / 1e6:.1f} M instructions per clip", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    if not names:
        ax.text(0.5, 0.5, "no frontend stages", ha="center", va="center", transform=ax.transAxes)
    return _save(fig)


def _memory_bars(mem: dict) -> Callable[[Path], None]:
    """RAM (arena, stacks, other static data) against the SRAM and flash against 1 MiB, in KiB."""
    kib = 1024.0
    ram = float(mem.get("ram_bytes") or 0)
    arena = float(mem.get("arena_bytes") or 0) if mem.get("arena_location", "SRAM") == "SRAM" else 0.0
    stack = float(mem.get("stack_reserved_bytes") or 0) + float(mem.get("handler_stack_bytes") or 0)
    other = max(0.0, ram - arena - stack)
    sram = float(mem.get("sram_bytes") or _SRAM_BYTES)
    flash = float(mem.get("flash_bytes") or 0)
    fig = _figure(11.0, 2.8)
    ax = fig.add_subplot(2, 1, 1)
    left = 0.0
    for value, name, color in ((arena, "tensor arena", _BLUE), (stack, "stacks (reserved)", _ORANGE),
                               (other, "other data / bss", _GREY)):
        ax.barh(0, value / kib, left=left / kib, color=color, label=name)
        left += value
    ax.set_xlim(0, max(sram, ram) / kib)
    ax.set_title(f"RAM {ram / kib:,.1f} of {sram / kib:,.0f} KiB SRAM ({100 * ram / sram:.0f} %)", fontsize=10)
    ax.set_yticks([])
    ax.legend(fontsize=8, loc="center right", ncol=3)
    ax = fig.add_subplot(2, 1, 2)
    ax.barh(0, flash / kib, color=_GREEN, label="code + weights + tables")
    ax.set_xlim(0, max(float(_FLASH_BYTES), flash) / kib)
    ax.set_title(f"flash {flash / kib:,.1f} of {_FLASH_BYTES / kib:,.0f} KiB ({100 * flash / _FLASH_BYTES:.0f} %)",
                 fontsize=10)
    ax.set_yticks([])
    ax.set_xlabel("KiB (axis = STM32F405 capacity)")
    ax.legend(fontsize=8, loc="center right")
    return _save(fig)


# ----------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1120px;margin:24px auto;
 padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:3px;
 margin-top:28px}
.sub{color:#666;font-size:.9em}.note{color:#8a6d3b;background:#fcf8e3;padding:4px 8px;border-radius:3px}
.kpi{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.kpi div{border:1px solid #ddd;border-radius:4px;padding:6px 12px;min-width:120px}
.kpi b{display:block;font-size:1.3em}.kpi span{color:#666;font-size:.8em}
img{max-width:100%;height:auto;display:block;margin:8px 0}img.narrow{max-width:560px}
.row{display:flex;gap:24px;align-items:flex-start}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
 text-align:left}th{background:#f5f5f5}.ok{color:#2a7a2a;font-weight:bold}.bad{color:#b02020;font-weight:bold}
code{background:#f5f5f5;padding:0 3px}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _img(uri: str, alt: str, cls: str = "") -> str:
    return f'<img src="{uri}" alt="{_e(alt)}"' + (f' class="{cls}"' if cls else "") + ">"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(v, spec: str = ".4f") -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return format(v, spec)
    return str(v)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{body}\n</section>"


def render_html(inp: ReportInputs) -> str:
    """The page as one string (figures drawn now, embedded as data URIs)."""
    run_rep, exp_rep, metrics, bench = inp.run_report, inp.export_report, inp.metrics, inp.bench
    name = inp.target.resolve().name  # the folder given on the command line
    model = (exp_rep or {}).get("model") or ((run_rep or {}).get("config") or {}).get("model") or "?"
    acc = (exp_rep or {}).get("accuracy") or {}
    cx = (exp_rep or {}).get("complexity") or (run_rep or {}).get("complexity") or {}
    precision = str((exp_rep or {}).get("precision") or "int8")  # the DCASE budget counts the deployed weights

    kpis: list[tuple[str, str]] = []
    if metrics and metrics.get("macro_accuracy") is not None:
        kpis.append((_fmt(metrics["macro_accuracy"]), f"run test macro accuracy ({metrics.get('n_clips', '?')} clips)"))
    if acc.get("float_accuracy") is not None:
        kpis.append((_fmt(acc["float_accuracy"]), "export float accuracy"))
    if acc.get("int8_accuracy") is not None:
        kpis.append((_fmt(acc["int8_accuracy"]), "export int8 accuracy"))
    n_bench = ((bench or {}).get("data") or {}).get("n_clips", "?")
    if bench and (bench.get("accuracy") or {}).get("device") is not None:
        kpis.append((_fmt(bench["accuracy"]["device"]), f"device accuracy ({n_bench} clips)"))
    if cx.get("params") is not None:
        kpis.append((f"{cx['params']:,}", "parameters"))
    if cx.get("macs") is not None:
        kpis.append((f"{cx['macs'] / 1e6:.2f} M", "MACs per inference"))
    if bench:
        mem = bench.get("memory") or {}
        if mem.get("ram_bytes") is not None:
            kpis.append((f"{mem['ram_bytes'] / 1024:.1f} KiB", "device RAM"))
        if mem.get("flash_bytes") is not None:
            kpis.append((f"{mem['flash_bytes'] / 1024:.1f} KiB", "device flash"))
        c = (bench.get("cycles") or {}).get("frontend_plus_model")
        if isinstance(c, dict) and "ms_min" in c:
            kpis.append((f"{c['ms_min']:.0f}–{c['ms_max']:.0f} ms", "audio → logits at 168 MHz (est.)"))

    sources = [("run", inp.run_dir), ("export", inp.export_dir), ("bench", inp.bench_path)]
    src_rows = [(k, str(v) if v is not None else "not found") for k, v in sources]
    commit = (exp_rep or {}).get("git_commit") or (run_rep or {}).get("git_commit")
    if commit:
        src_rows.append(("git commit", commit))
    sections = [
        f"<h1>{_e(name)} <span class='sub'>({_e(model)})</span></h1>",
        f"<p class='sub'>asc-edge report, generated {_e(_dt.datetime.now().strftime('%Y-%m-%d %H:%M'))}; "
        "figures drawn from the JSON reports listed below.</p>",
        "<div class='kpi'>" + "".join(f"<div><b>{_e(v)}</b><span>{_e(t)}</span></div>" for v, t in kpis) + "</div>",
        _table(src_rows),
    ]

    # training
    if inp.history:
        from asc_edge.report.plots import plot_training_curves

        body = _img(_png(lambda p: plot_training_curves(inp.history, p)), "training curves")
    else:
        body = _note("no training history (history.json of a run folder): pass the run with --run or report the run")
    sections.append(_section("Training curves", body))

    if metrics and metrics.get("confusion_matrix") and metrics.get("labels"):
        from asc_edge.report.plots import plot_confusion_matrix

        macro = metrics.get("macro_accuracy")
        title = f"test macro accuracy {macro:.3f}" if isinstance(macro, (int, float)) else ""
        body = "<div class='row'>" + _img(_png(lambda p: plot_confusion_matrix(
            metrics["confusion_matrix"], metrics["labels"], p, title=title)), "confusion matrix", "narrow")
        body += _table([("split", metrics.get("split", "-")), ("clips", metrics.get("n_clips", "-")),
                        ("accuracy", _fmt(metrics.get("accuracy"))), ("macro accuracy", _fmt(macro)),
                        ("log loss", _fmt(metrics.get("log_loss")))]) + "</div>"
        sections.append(_section("Confusion matrix (float model, test split)", body))
        sections.append(_section("Per-class and per-device accuracy", _img(_png(_accuracy_bars(metrics)),
                                                                            "per-class and per-device accuracy")))
    else:
        sections.append(_section("Confusion matrix and per-device accuracy",
                                 _note("no test metrics (metrics.json of a run folder)")))

    if cx.get("params") is not None or cx.get("macs") is not None:
        sections.append(_section("Complexity vs the DCASE budget",
                                 _img(_png(_budget_bars(cx, precision)), "complexity vs budget")))
    else:
        sections.append(_section("Complexity vs the DCASE budget", _note("no complexity section in the reports")))

    vals = [(label, float(acc[k])) for label, k in (("float", "float_accuracy"), ("int8", "int8_accuracy"))
            if isinstance(acc.get(k), (int, float))]
    if bench and isinstance((bench.get("accuracy") or {}).get("device"), (int, float)):
        vals.append((f"device ({n_bench} clips)", float(bench["accuracy"]["device"])))
    if isinstance(acc.get("top1_agreement"), (int, float)):
        vals.append(("int8 = float top-1", float(acc["top1_agreement"])))
    if vals:
        body = _img(_png(_int8_bars(vals)), "int8 vs float accuracy")
        gate = (exp_rep or {}).get("quality_gate") or {}
        rows = [("clips", acc.get("n_clips", "-")), ("int8 from", acc.get("int8_from", "-"))]
        if gate:
            ok = gate.get("passed")
            rows += [("quality gate", "passed" if ok else ("failed: " + ", ".join(map(str, gate.get("failed") or []))
                                                          if ok is False else "-")),
                     ("mean logit cosine", _fmt(gate.get("cosine_mean"))),
                     ("worst-5 % cosine", _fmt(gate.get("cosine_worst5_mean")))]
        arena = ((exp_rep or {}).get("c_model") or {}).get("arena") or {}
        if arena.get("arena_bytes") is not None:
            rows.append(("C model arena",
                         f"{arena['arena_bytes']:,} B (lower bound {arena.get('lower_bound_bytes', 0):,} B)"))
        body += _table(rows)
    else:
        body = _note("no export report (asc-edge export RUN writes export/<run name>/report.json)")
    sections.append(_section("int8 vs float", body))

    if bench and isinstance(bench.get("instructions"), dict):
        ins, mem = bench["instructions"], bench.get("memory") or {}
        b = bench.get("bit_exact") or {}
        body = _img(_png(_step_bars(ins, bench.get("cycles"))), "device instructions per step")
        body += _img(_png(_memory_bars(mem)), "device RAM and flash")
        rows = [("backend", f"{bench.get('backend', '-')} (emulated STM32F405), {bench.get('kernels', '-')} kernels"),
                ("device == reference", f"{b.get('n_equal', '-')}/{b.get('n_clips', '-')} clips"),
                ("RAM", f"{mem.get('ram_bytes', 0):,} B of {mem.get('sram_bytes', _SRAM_BYTES):,} B "
                        f"(arena {mem.get('arena_bytes', 0):,} B, stack high-water "
                        f"{mem.get('stack_high_water_bytes', '-')} of {mem.get('stack_reserved_bytes', '-')} B)"),
                ("flash", f"{mem.get('flash_bytes', 0):,} B of {_FLASH_BYTES:,} B"),
                ("instructions per MAC (model)", _fmt(ins.get("model_instructions_per_mac"), ".3f")),
                ("counter", ins.get("counter", "-"))]
        c = bench.get("cycles") or {}
        if isinstance(c.get("model"), dict) and "ms_min" in c["model"]:
            rows.append(("estimated at 168 MHz", f"model {c['model']['ms_min']:.1f}–{c['model']['ms_max']:.1f} ms; "
                                                 f"audio → logits {c['frontend_plus_model']['ms_min']:.1f}–"
                                                 f"{c['frontend_plus_model']['ms_max']:.1f} ms"))
        body += _table(rows)
    else:
        body = _note("no bench report (asc-edge bench EXPORT writes bench/bench.json; or pass --bench)")
    sections.append(_section("Device: instructions per step, RAM and flash", body))

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>asc-edge report: {_e(name)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def write_report(target: Path | str, out: Path | str | None = None, run: Path | str | None = None,
                 bench: Path | str | None = None) -> Path:
    """Find the inputs (:func:`find_inputs`), render the page and write it atomically to ``out``
    (default ``<target>/report.html``); returns the path written."""
    inp = find_inputs(target, run=run, bench=bench)
    out = Path(out) if out is not None else Path(target) / "report.html"
    write_text_atomic(out, render_html(inp))
    return out
