"""``asc-edge bench``: run an export on the emulated STM32F405 and prove it bit for bit.

For every clip (float32 audio at the frontend's sample rate, the same waveform the training
pipeline feeds its log-mel, from :class:`~asc_edge.features.cache.FeatureCache`):

* **reference** = the host build of the C log-mel frontend (``firmware/frontend``, x86,
  ``-ffp-contract=off``) → int8 input → the **tflite-micro** interpreter (reference kernels) on the
  exported ``model_int8.tflite`` → int8 logits;
* **device** = ``firmware/app/bench_main.c`` (CMSIS-DSP frontend + the generated model + the
  ``firmware/nn`` kernels, DSP or portable build) on ``qemu-system-arm -M netduinoplus2 -icount
  shift=0``, all clips in one boot, streamed over semihosting.

Every logit byte must agree. On a mismatch the first differing clip is re-run in debug mode: the
device dumps its int8 input and every step's output, which are compared with the host frontend and
tflite-micro's intermediate tensors, and the report names the first diverging stage (frontend or
model), layer and element.

Reported: accuracy (device, reference, float labels), flash (``.text + .rodata + .data`` load
image), RAM (``.data + .bss`` incl. the arena + both stacks; stack high-water by painting),
instructions for the frontend, each model step and in total (one TIM2 tick = one executed
instruction), instructions per MAC overall and per layer type (conv, conv1x1, depthwise, add,
other — inside fused blocks the parts are timed separately). Written to ``bench.json``,
``bench.md``, ``bench_layers.png`` and the firmware (``bench_<kernels>.elf``, ``.map``) in the output
directory (default: the run's ``bench/``).

Raises DeviceError (toolchain, build, link over 128 KiB, emulator fault/hang/timeout, a Renode
request where Renode is absent), DataError (bad clips) or ExportError (an export without C model).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asc_edge.errors import DataError, DeviceError, ExportError

__all__ = ["bench", "build_bench_firmware", "write_clips_bin", "parse_bench_output", "load_graph_record",
           "BACKENDS"]

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = REPO_ROOT / "firmware"
BACKENDS = ("qemu", "renode")
MAGIC = 0x42435341  # 'ASCB'
NO_DEBUG = 0xFFFFFFFF
N_PARTS = 4  # profiled parts of a fused step (firmware/app/bench_main.c: the "P" line)
#: stages of the log-mel frontend, per clip (all frames), in the order of the "F" line
#: (firmware/frontend/asc_frontend.h: ASC_FE_PART_*)
FRONTEND_PARTS = ("stream", "window", "fft", "power", "mel", "log")

# QEMU with -icount shift=0 ran the reference bench at ~0.25 s per clip (232 clips x 98 M instructions
# in 55.5 s; portable kernels: 20 clips x 354 M in 12.1 s; benchmarks/results/device_bench.json);
# 20 s per clip leaves room for a slow shared machine, while a hang still ends.
SECONDS_PER_CLIP = 20.0
BOOT_SECONDS = 30.0
# Renode interprets far slower: on a busy 2-core CI machine a 3-clip reference run had printed its third
# clip's logits but not its report when the 30 + 3 x 20 s limit ended it; 60 s per clip still ends a hang.
RENODE_SECONDS_PER_CLIP = 60.0


def default_limit_s(backend: str, n_clips: int) -> float:
    """Default emulator wall-clock limit in seconds for ``n_clips`` clips on ``backend``."""
    return BOOT_SECONDS + (RENODE_SECONDS_PER_CLIP if backend == "renode" else SECONDS_PER_CLIP) * n_clips


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def write_clips_bin(path, items: np.ndarray, kind: int, debug_item: int | None = None) -> Path:
    """Write the bench input image (see ``firmware/app/bench_main.c``): header + items.

    ``items``: float32 ``(N, n_samples)`` audio (kind 0) or int8 ``(N, input_size)`` model inputs
    (kind 1). Written atomically. Returns the path.
    """
    items = np.ascontiguousarray(items, dtype=np.float32 if kind == 0 else np.int8)
    n, item_bytes = items.shape[0], items[0].nbytes if len(items) else 0
    hdr = struct.pack("<8I", MAGIC, 1, kind, n, item_bytes, NO_DEBUG if debug_item is None else debug_item, 0, 0)
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(hdr)
        f.write(items.tobytes())
    os.replace(tmp, path)
    return path


def parse_bench_output(text: str, n_classes: int, n_steps: int, float_logits: bool = False) -> dict:
    """Parse the device's console lines into ``{"items": {i: {"frontend", "model", "logits",
    "steps", "parts"}}, "stack": (high_water, reserved), "done": bool, "header": str}``; logits are
    int8, or with ``float_logits`` (an fp16 export, printed as 32-bit patterns) float32."""
    items: dict[int, dict] = {}
    out = {"items": items, "stack": None, "done": False, "header": None}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "ASC-BENCH":
            if len(f) > 1 and f[1] == "v1":
                out["header"] = line
            elif len(f) == 4 and f[1] == "stack":
                out["stack"] = (int(f[2]), int(f[3]))
            elif len(f) > 1 and f[1] == "done":
                out["done"] = True
        elif f[0] == "R" and len(f) == 4 + n_classes:
            items.setdefault(int(f[1]), {}).update(
                frontend=int(f[2]), model=int(f[3]),
                logits=np.array([int(v) for v in f[4:]], np.uint32).view(np.float32) if float_logits
                else np.array([int(v) for v in f[4:]], np.int8))
        elif f[0] == "S" and len(f) == 2 + n_steps:
            items.setdefault(int(f[1]), {})["steps"] = [int(v) for v in f[2:]]
        elif f[0] == "P" and len(f) == 2 + N_PARTS:
            items.setdefault(int(f[1]), {})["parts"] = [int(v) for v in f[2:]]
        elif f[0] == "F" and len(f) == 2 + len(FRONTEND_PARTS):
            items.setdefault(int(f[1]), {})["frontend_parts"] = [int(v) for v in f[2:]]
    return out


# ---------------------------------------------------------------------------------------------
# firmware
# ---------------------------------------------------------------------------------------------
def build_bench_firmware(export_dir, build_dir, *, nn: str = "dsp", io: str = "semihost", app: str = "bench",
                         extra_cflags=(), extra_srcs=()):
    """Build ``firmware/app/<app>_main.c`` with the export's generated model + frontend tables
    (``<export>/c``), the C frontend and CMSIS-DSP's FFT (``-Os`` for an ``export --optimize size``
    model, :func:`is_size_build`; else the Makefile's ``-O2``); returns the
    :class:`~asc_edge.device.build.FirmwareImage`. ``io``: ``"semihost"`` (QEMU) or
    ``"memory"`` (Renode: clips at 0x60000000, UART-only image) or ``"board"`` (no bench I/O: the
    board application, semihosting kept for QEMU runs)."""
    from .build import build_firmware
    from .cmsis_dsp import CMSIS_DSP_DEFINES, ensure_cmsis_dsp, frontend_sources

    c_dir = Path(export_dir) / "c"
    for f in ("model.c", "model.h", "asc_frontend_config.h", "asc_frontend_tables.c"):
        if not (c_dir / f).is_file():
            raise ExportError(f"{c_dir / f} is missing", hint="re-run `asc-edge export RUN --target cmsis-nn`")
    if any(ch.isspace() for ch in str(c_dir.resolve())):  # make splits paths on whitespace: build from a copy
        import shutil

        staged = Path(build_dir) / "model_c"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(c_dir, staged)
        c_dir = staged
    root = ensure_cmsis_dsp()
    flags = list(CMSIS_DSP_DEFINES)
    if app == "bench":  # instruction-count hooks defined by bench_main.c
        flags += ["-DASC_MODEL_LAYER_DONE=bench_layer_done", "-DASC_NN_PROFILE=bench_profile",
                  "-DASC_FE_PROFILE=bench_fe_profile"]
    if is_size_build(c_dir):  # after the Makefile's -O2 on the command line: -Os wins
        flags += ["-Os"]
    if io == "semihost":
        flags += ["-DASC_BENCH_IO_SEMIHOST"]
    elif io == "memory":
        flags += ["-DASC_BENCH_IO_MEMORY", "-DASC_BOARD_SEMIHOSTING=0"]
    fe_dir = FIRMWARE / "frontend"
    cmsis_srcs, inc = [str(p) for p in frontend_sources(root)], [str(fe_dir)]
    if is_float_model(c_dir):  # an fp16 export: firmware/nn_f32 and the CMSIS-DSP functions it calls
        from asc_edge.codegen.float_c import CMSIS_DSP_F32_SOURCES, F32_DIR

        cmsis_srcs += [str(root / s) for s in CMSIS_DSP_F32_SOURCES if str(root / s) not in cmsis_srcs]
        extra_srcs = [str(F32_DIR / "asc_nn_f32.c"), *extra_srcs]
        inc.append(str(F32_DIR))
    return build_firmware(app, build_dir, model_dir=c_dir, nn=nn, cmsis_dsp_dir=root, cmsis_dsp_srcs=cmsis_srcs,
                          extra_srcs=[str(fe_dir / "asc_frontend.c"), str(fe_dir / "asc_logf.c"), *extra_srcs],
                          extra_inc=inc, extra_cflags=[*flags, *extra_cflags])


def is_size_build(c_dir) -> bool:
    """Whether ``c_dir/model.h`` comes from ``export --optimize size`` (it defines
    ``ASC_MODEL_OPTIMIZE_SIZE``): the firmware is then compiled with ``-Os``."""
    return "#define ASC_MODEL_OPTIMIZE_SIZE 1" in (Path(c_dir) / "model.h").read_text()


def is_float_model(c_dir) -> bool:
    """Whether ``c_dir/model.h`` is an fp16 export's float model (it defines ``ASC_MODEL_FLOAT``)."""
    return "#define ASC_MODEL_FLOAT 1" in (Path(c_dir) / "model.h").read_text()


# ---------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------
def _default_out(rep: dict, export_dir: Path) -> Path:
    ck = Path(rep.get("checkpoint", ""))
    if ck.name == "model.ckpt" and ck.parent.is_dir():
        return ck.parent / "bench"
    return export_dir / "bench"


def _first_divergence(dev_dump: bytes, ref_input: np.ndarray, oracle, rec: dict) -> dict:
    """Compare a device debug dump (int8 input, then (layer, bytes, data) per step) with the host
    frontend's input and tflite-micro's intermediates; returns the first difference. ``rec``: the
    export's graph record (:func:`load_graph_record`)."""
    n_in = ref_input.size
    dev_in = np.frombuffer(dev_dump[:n_in], np.int8)
    ref_flat = ref_input.reshape(-1)
    if not np.array_equal(dev_in, ref_flat):
        k = int(np.argmax(dev_in != ref_flat))
        mel, frame = divmod(k, ref_input.shape[-1] if ref_input.ndim == 2 else 1)
        return {"stage": "frontend", "element": {"mel": mel, "frame": frame}, "device": int(dev_in[k]),
                "reference": int(ref_flat[k]), "n_diff": int((dev_in != ref_flat).sum())}
    refs = {r["tensor"]: np.asarray(r["data"]) for r in oracle.intermediates(ref_flat.reshape(oracle.input_shape))}
    pos = n_in
    while pos + 8 <= len(dev_dump):
        layer, nbytes = struct.unpack_from("<iI", dev_dump, pos)
        pos += 8
        data = np.frombuffer(dev_dump[pos:pos + nbytes], np.int8)
        pos += nbytes
        L = rec["layers"][layer]
        r = refs.get(L["output"])
        if r is None:
            continue
        r = r.astype(np.int8).reshape(-1)
        if not np.array_equal(r, data):
            k = int(np.argmax(r != data))
            t = rec["tensors"][str(L["output"])]
            idx = np.unravel_index(k, t["shape"])
            step = next((st for st in rec["steps"] if st["pattern"] and layer in st["layers"]), None)
            return {"stage": "model", "layer": layer, "op": L["op"], "kind": L["kind"], "tflite_ops": L["tflite_ops"],
                    "fused_layers": None if step is None else step["layers"],
                    "tensor": t["name"], "element": [int(v) for v in idx],
                    "device": int(data[k]), "reference": int(r[k]), "n_diff": int((r != data).sum())}
    return {"stage": "output", "note": "every dumped step output matches; only the final logits differ"}


def load_graph_record(export_dir) -> dict:
    """The export's ``graph.json`` (:mod:`asc_edge.codegen.record`): the graph, execution steps and
    arena plan its C was generated from.

    Raises:
        ExportError: missing, unreadable, of another format, or recorded for another
            ``model_int8.tflite`` than the one in ``export_dir`` (re-export)."""
    from asc_edge.codegen.record import FORMAT
    from asc_edge.report.io import file_sha256

    path = Path(export_dir) / "graph.json"
    hint = "re-run `asc-edge export RUN --target cmsis-nn` (exports before this version have no graph.json)"
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path} is missing", hint=hint) from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path} is unreadable ({exc})", hint=hint) from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise ExportError(f"{path} has an unknown format", hint=hint)
    src = Path(export_dir) / ("model.onnx" if rec.get("precision") == "fp16" else "model_int8.tflite")
    if src.is_file() and rec.get("source_sha256") != file_sha256(src):
        raise ExportError(f"{path} was written for another {src.name} than {src}", hint=hint)
    return rec


_REEXPORT = "re-run `asc-edge export RUN --target cmsis-nn` to write a fresh export folder"
#: report.json keys that ``bench`` reads.
_REPORT_KEYS = ("labels", "frontend", "c_model", "data", "hashes")


def _read_export_report(export_dir: Path, need_hashes: bool = True) -> dict:
    """``<export_dir>/report.json`` as a dict with the keys bench needs, or one ExportError naming it."""
    rep_path = export_dir / "report.json"
    if not rep_path.is_file():
        raise ExportError(f"{export_dir}: no report.json", hint="pass a directory written by `asc-edge export`")
    try:
        rep = json.loads(rep_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        msg = " ".join(str(exc).split())[:160]
        raise ExportError(f"{rep_path} is unreadable or not valid JSON ({msg})",
                          hint=_REEXPORT) from None
    if not isinstance(rep, dict):
        raise ExportError(f"{rep_path} is not a JSON object", hint=_REEXPORT)
    missing = [k for k in _REPORT_KEYS if k not in rep and (need_hashes or k != "hashes")]
    if "c_model" in missing or "frontend" in missing:
        raise ExportError(f"{rep_path} has no generated C model / frontend record (missing {', '.join(missing)})",
                          hint="re-export with `asc-edge export RUN --target cmsis-nn`")
    if missing:
        raise ExportError(f"{rep_path} lacks the key(s) {', '.join(missing)}", hint=_REEXPORT)
    bad = ("hashes" if need_hashes and (not isinstance(rep["hashes"], dict) or not rep["hashes"]) else
           "labels" if not isinstance(rep["labels"], list) or not rep["labels"] else
           "frontend" if not isinstance(rep["frontend"], dict) else
           "data" if not isinstance(rep["data"], dict) else None)
    if bad:
        raise ExportError(f"{rep_path}: key {bad!r} has an unexpected value", hint=_REEXPORT)
    return rep


def verify_export(export_dir) -> dict:
    """Check an export folder against the sha256 its ``report.json`` records for every file
    (``report["hashes"]``, written by :func:`asc_edge.export.pipeline.export_model`); files it does not
    list (e.g. a later ``bench/``) are not checked. Returns the report.

    Raises:
        ExportError: report.json missing, not valid JSON or lacking a key bench needs; a listed file
            missing or changed (named, with the fix)."""
    from asc_edge.report.io import file_sha256

    export_dir = Path(export_dir)
    rep = _read_export_report(export_dir)
    rep_path = export_dir / "report.json"
    # graph.json last: its own check (recorded for this model_int8.tflite?) gives the sharper message
    entries = sorted(rep["hashes"].items(), key=lambda kv: (kv[0] == "graph.json", kv[0]))
    for rel, recorded in entries:
        if rel == "graph.json" and (export_dir / rel).is_file():
            load_graph_record(export_dir)
        rel_path = Path(str(rel))
        if rel_path.is_absolute() or ".." in rel_path.parts or not isinstance(recorded, str):
            raise ExportError(f"{rep_path}: bad hashes entry {rel!r}", hint=_REEXPORT)
        path = export_dir / rel_path
        if not path.is_file():
            raise ExportError(f"{path} is missing (report.json lists it)", hint=_REEXPORT)
        try:
            actual = file_sha256(path)
        except OSError as exc:
            raise ExportError(f"{path} is unreadable ({exc.strerror or exc})", hint=_REEXPORT) from None
        if actual != recorded:
            raise ExportError(f"{path} changed since export (sha256 differs from report.json: a bit flip or an edit)",
                              hint=_REEXPORT)
    return rep


def bench(export_dir, *, data=None, split: str = "test", limit: int | None = None, backend: str = "qemu",
          nn: str = "dsp", out_dir=None, timeout_s: float | None = None, cache_dir=None, work_dir=None,
          log=print, verify_hashes: bool = True, external_ram: bool = False, cycles: bool = False) -> dict:
    """Run ``export_dir`` (from ``asc-edge export --target cmsis-nn``) on the emulated device.

    Args:
        export_dir: the export directory (``report.json``, ``model_int8.tflite``, ``c/``).
        data: dataset root (TAU layout; default: the export's own data root).
        split: the split whose clips are run (default ``test``).
        limit: run only the first ``limit`` clips (CSV order).
        backend: ``"qemu"`` (default) or ``"renode"`` (Renode on PATH or in .tools/renode; both tested in CI).
        nn: kernel build, ``"dsp"`` (Cortex-M4 DSP extension paths) or ``"portable"``.
        out_dir: where the report goes (default: the run's ``bench/``, else ``<export>/bench``), with
            the firmware's ``bench_<nn>.elf`` and ``.map``.
        work_dir: build and clip files (default: a temporary directory, removed afterwards).
        timeout_s: emulator time limit (default ``30 s + 20 s per clip``, 60 s per clip on Renode).
        verify_hashes: first check every file against the sha256 that report.json records
            (:func:`verify_export`); off only for tests that edit an export on purpose.
        external_ram: put the activation arena in external SRAM on the FSMC (4 MiB at
            0x64000000; the STM3240G-EVAL carries 2 MiB there; section ``.ext_ram`` of the linker script) instead
            of the 128 KiB SRAM: for a model whose arena does not fit. Renode only (QEMU's
            netduinoplus2 maps no FSMC memory); instruction counts are unchanged, but on silicon
            every arena access pays the FSMC's wait states, which no emulator here models.
        cycles: also estimate Cortex-M4 cycles and milliseconds at 168 MHz per step and in total
            (:mod:`asc_edge.device.cycles`: the first clip once more under QEMU's execution trace,
            folded over the TRM's instruction timings; a zero-wait-state .. 5-flash-wait-state
            range). QEMU only.

    Returns the report dict (also written as ``bench.json``).

    Raises:
        DeviceError / DataError / ExportError: see the module docstring. A device result that is
        not bit-identical is *reported* (``all_equal`` false, ``first_divergence``), not raised.
    """
    from asc_edge.export.oracle import TflmOracle
    from asc_edge.features.config import FrontendConfig
    from asc_edge.report.io import staged_files, write_bytes_atomic, write_json_atomic, write_text_atomic
    from asc_edge.report.model_card import write_model_card

    from .frontend_c import HostFrontend, build_host_frontend

    if backend not in BACKENDS:
        raise DeviceError(f"unknown backend {backend!r}", hint="use --qemu (default) or --renode")
    if external_ram and backend != "renode":
        raise DeviceError("--external-ram needs the Renode backend: QEMU's netduinoplus2 maps no memory on the FSMC",
                          hint="add --renode")
    if backend == "renode":
        from .renode import find_renode

        find_renode()  # a clear DeviceError where Renode is not installed
    export_dir = Path(export_dir)
    rep = verify_export(export_dir) if verify_hashes else _read_export_report(export_dir, need_hashes=False)
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    fe = FrontendConfig.from_dict(rep["frontend"])
    fp16 = rep.get("precision") == "fp16"
    rec = load_graph_record(export_dir)
    n_classes = int(np.prod(rec["tensors"][str(rec["output"])]["shape"]))
    n_steps = len(rec["steps"])
    out_dir = Path(out_dir) if out_dir else _default_out(rep, export_dir)

    t0 = time.perf_counter()
    root = Path(data) if data else Path(rep["data"]["root"])
    clips, targets, audio = _load_clips(root, split, limit, list(rep["labels"]), fe, cache_dir)
    timings["clips"] = round(time.perf_counter() - t0, 3)

    # ---- reference: host C frontend -> tflite-micro (int8), or -> the host build of the same fp16 C
    t0 = time.perf_counter()
    host_fe = HostFrontend(build_host_frontend(export_dir / "c"))
    oracle = None
    if fp16:
        from asc_edge.codegen.float_c import HostFloatModel, build_host_float_model

        n_in = int(np.prod(rec["tensors"][str(rec["input"])]["shape"]))
        from .cmsis_dsp import ensure_cmsis_dsp, include_dirs

        root = ensure_cmsis_dsp()
        host_model = HostFloatModel(build_host_float_model(export_dir / "c", root, include_dirs(root)), n_in,
                                    n_classes, rec["plan"]["arena_bytes"])
        ref_in = np.stack([host_fe.logmel(a) for a in audio])  # (N, n_mels, n_frames) float32
        ref_logits = np.stack([host_model.invoke(x) for x in ref_in])
    else:
        oracle = TflmOracle(export_dir / "model_int8.tflite")
        ref_in = np.stack([host_fe.quantized(a) for a in audio])  # (N, n_mels, n_frames) int8
        ref_logits = np.stack([oracle.invoke(q.reshape(oracle.input_shape)) for q in ref_in]).astype(np.int8)
    timings["reference"] = round(time.perf_counter() - t0, 3)

    with staged_files(out_dir) as stage:  # the report appears as a whole, or not at all
        # ---- device (build and clip files in a work directory; the ELF and map file are kept with the report)
        with contextlib.ExitStack() as stack:
            work = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="asc_bench_")))
            work.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            try:
                image = build_bench_firmware(export_dir, work / f"fw_{nn}", nn=nn,
                                             io="semihost" if backend == "qemu" else "memory",
                                             extra_cflags=["-DASC_ARENA_EXTERNAL_RAM"] if external_ram else ())
            except DeviceError as e:
                if "does not fit in the" in e.message and "SRAM" in e.message:
                    e.hint = (f"{e.hint}; or run it with its {rec['plan']['arena_bytes']:,}-byte arena in external "
                              "SRAM on the FSMC: asc-edge bench --renode --external-ram")
                raise
            mem = image.memory
            timings["firmware_build"] = round(time.perf_counter() - t0, 3)
            write_clips_bin(work / "clips.bin", audio, kind=0)
            limit_s = timeout_s or default_limit_s(backend, len(clips))
            t0 = time.perf_counter()
            run = _run_device(backend, image, work, limit_s)
            text = run.text
            timings["device_run"] = round(time.perf_counter() - t0, 3)
            res = parse_bench_output(text, n_classes, n_steps, float_logits=fp16)
            if not res["done"] or len(res["items"]) != len(clips):
                tail = "\n".join(text.splitlines()[-8:])
                raise DeviceError(f"the device reported {len(res['items'])}/{len(clips)} clips and no end marker; "
                                  f"last output:\n{tail}", hint="see the error line above; a fault prints its registers")
            dev_logits = np.stack([res["items"][i]["logits"] for i in range(len(clips))])
            # every logit's bits (int8 values, or the float32 patterns of an fp16 export)
            equal = np.all(dev_logits.view(np.uint32 if fp16 else np.int8) ==
                           ref_logits.view(np.uint32 if fp16 else np.int8), axis=1)
            n_equal = int(equal.sum())

            # ---- divergence
            first = None
            if n_equal != len(clips) and fp16:  # the layer-by-layer dump compares with tflite-micro (int8 only)
                bad = int(np.argmin(equal))
                first = {"clip": bad, "file": clips[bad].filename,
                         "max_abs_logit_diff": float(np.abs(dev_logits[bad] - ref_logits[bad]).max())}
            elif n_equal != len(clips):
                bad = int(np.argmin(equal))
                log(f"device != reference on {len(clips) - n_equal} clips; re-running clip {bad} in layer-debug mode")
                write_clips_bin(work / "clips.bin", audio[bad:bad + 1], kind=0, debug_item=0)
                dbg = _run_device(backend, image, work, default_limit_s(backend, 4)).debug
                if not dbg.is_file():
                    raise DeviceError(f"the layer-debug re-run on {backend} wrote no {dbg}",
                                      hint="see the device output; the bench image writes it in debug mode")
                first = {"clip": bad, "file": clips[bad].filename,
                         **_first_divergence(dbg.read_bytes(), ref_in[bad], oracle, rec)}
            cyc = None
            if cycles:  # the first clip once more, traced: instruction mix -> cycle range
                from .cycles import BENCH_BOUNDARIES, CPU_HZ, bench_cycles, estimate_cycles

                t0 = time.perf_counter()
                entry = "asc_fe_logmel_f32" if fp16 else "asc_fe_logmel_s8"
                (work / "cycles").mkdir(exist_ok=True)
                write_clips_bin(work / "cycles" / "clips.bin", audio[:1], kind=0)
                est = estimate_cycles(image.elf, workdir=work / "cycles", boundaries=(entry, *BENCH_BOUNDARIES[1:]),
                                      timeout_s=BOOT_SECONDS + 60 * SECONDS_PER_CLIP)
                c0 = bench_cycles(est, n_steps, frontend_entry=entry)[0]
                cyc = {"clip": clips[0].filename, "cpu_hz": CPU_HZ, "model": c0["model"].to_dict(),
                       "frontend": c0["frontend_total"].to_dict(),
                       "frontend_plus_model": (c0["frontend_total"] + c0["model"]).to_dict(),
                       "steps": [c.to_dict() for c in c0["steps"]],
                       "frontend_stages": {k: v.to_dict() for k, v in c0["frontend"].items()},
                       "assumptions": CYCLE_ASSUMPTIONS}
                timings["cycle_trace"] = round(time.perf_counter() - t0, 3)
            kept = {kind: out_dir / f"bench_{nn}.{kind}" for kind in ("elf", "map")}
            write_bytes_atomic(stage / kept["elf"].name, image.elf.read_bytes())
            write_bytes_atomic(stage / kept["map"].name, image.map.read_bytes())

        ins = _instruction_report(res, len(clips), rec)
        ins["counter"] = COUNTERS[backend]
        # Renode: every instruction since reset (boot, frontend, model, printing), from sysbus.cpu
        ins["executed_instructions_total"] = run.executed_instructions
        dev_pred = dev_logits.astype(np.float64 if fp16 else np.int32).argmax(1)
        ref_pred = ref_logits.astype(np.float64 if fp16 else np.int32).argmax(1)
        stack_hw, stack_res = res["stack"] or (None, None)
        report = {
            "export": str(export_dir), "model": rep.get("model"), "precision": rep.get("precision", "int8"),
            "backend": backend, "kernels": nn,
            "data": {"root": str(root), "split": split, "n_clips": len(clips)},
            "bit_exact": {"n_equal": n_equal, "n_clips": len(clips), "all_equal": n_equal == len(clips),
                          "first_divergence": first},
            "accuracy": {"device": float((dev_pred == targets).mean()), "reference": float((ref_pred == targets).mean()),
                         "labels_by_name": True},
            "memory": {"flash_bytes": mem.flash_bytes, "ram_bytes": mem.ram_bytes, "sram_bytes": 128 * 1024,
                       "arena_location": "external SRAM (FSMC NE2, 0x64000000)" if external_ram else "SRAM",
                       "ext_ram_bytes": mem.ext_ram_bytes,
                       "data_bytes": mem.data_bytes, "bss_bytes": mem.bss_bytes, "arena_bytes": rec["plan"]["arena_bytes"],
                       "stack_reserved_bytes": stack_res, "stack_high_water_bytes": stack_hw,
                       "handler_stack_bytes": mem.handler_stack_bytes},
            "instructions": ins,
            **({"cycles": cyc} if cyc else {}),
            # clip by clip: the device's int8 logits and its frontend / model instruction counts
            "clips": [{"file": c.filename, "logits": [float(v) if fp16 else int(v) for v in dev_logits[i]],
                       "frontend_instructions": int(res["items"][i]["frontend"]),
                       "model_instructions": int(res["items"][i]["model"])} for i, c in enumerate(clips)],
            "firmware": {"elf": str(kept["elf"]), "map": str(kept["map"]),
                         "optimize": "size" if is_size_build(export_dir / "c") else "speed",
                         "sections": {k: int(v) for k, v in mem.sections.items()}},
            "timings_s": timings,
        }
        timings["total"] = round(time.perf_counter() - t_all, 3)
        write_json_atomic(stage / "bench.json", report)
        write_text_atomic(stage / "bench.md", _markdown(report))
        write_model_card(stage / "model_card.md", rep, report)  # the export's card with the device figures
        _plot(report, stage / "bench_layers.png")
    report["out_dir"] = str(out_dir)
    acc = report["accuracy"]
    log(f"device: {ins['model_mean'] / 1e6:.2f} M instructions/inference for {ins['model_macs'] / 1e6:.2f} M MACs "
        f"({ins['model_instructions_per_mac']:.2f} instructions/MAC), frontend {ins['frontend_mean'] / 1e6:.2f} M; "
        f"flash {mem.flash_bytes:,} B, RAM {mem.ram_bytes:,} B of 131,072 (arena {rec['plan']['arena_bytes']:,}"
        f"{' in external SRAM' if external_ram else ''}, stack high-water {stack_hw} of {stack_res})")
    log(f"accuracy on {len(clips)} clips: device {acc['device']:.4f}, reference {acc['reference']:.4f}")
    log(f"device == reference on {n_equal}/{len(clips)} clips" + ("" if first is None else f"; first divergence: {first}"))
    log(f"report: {out_dir / 'bench.md'}")
    return report


def _load_clips(root: Path, split: str, limit: int | None, labels: list[str], fe, cache_dir):
    """The split's clips (first ``limit``), their class indices mapped **by name** onto the model's
    ``labels``, and their waveforms ``(n_clips, n_samples)`` float32 at ``fe.sample_rate``.

    Raises:
        DataError: an empty split, or clip labels the model does not know."""
    from asc_edge.data.tau import find_split_file, load_split, open_dataset
    from asc_edge.features.cache import FeatureCache, default_cache_dir

    ds = open_dataset(root)
    if split != "all":
        try:
            find_split_file(ds.root, split)
        except DataError as exc:  # bench has no --splits: say what it does have
            raise DataError(exc.message, hint="bench every clip of meta.csv with --split all, or put the split "
                                              f"file into {Path(root) / 'split_setup'}") from None
    clips = load_split(ds, split)
    if limit is not None:
        clips = clips[:int(limit)]
    if not clips:
        raise DataError(f"split {split!r} of {root} has no clips", hint="check --data / --split")
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({c.label for c in clips} - set(index))
    if unknown:
        raise DataError(f"clips with labels the model does not know: {', '.join(unknown)}",
                        hint=f"the model's labels: {', '.join(labels)}")
    targets = np.array([index[c.label] for c in clips])
    cache = FeatureCache(Path(cache_dir) if cache_dir else default_cache_dir() / "features", fe)
    return clips, targets, cache.waveforms(clips, progress=False)


def _instruction_report(res: dict, n_clips: int, rec: dict) -> dict:
    """Instructions (means over the clips) per stage, per plan step and per layer type, and per MAC.

    ``rec``: the export's graph record. Layer types are the registry's report types
    (:func:`asc_edge.codegen.ops.report_types`); a fused step is split into layer types by its
    profiled parts (the pattern's ``parts``), a single-layer step counts for its layer's type."""
    from asc_edge.codegen.ops import report_types

    items = [res["items"][i] for i in range(n_clips)]
    layers = rec["layers"]
    total_macs = int(sum(L["macs"] for L in layers))
    mean_steps = np.array([it["steps"] for it in items], dtype=np.int64).mean(0)
    mean_parts = np.array([it["parts"] for it in items], dtype=np.int64).mean(0)
    fe_instr = np.array([it["frontend"] for it in items], dtype=np.int64)
    fe_parts = np.array([it.get("frontend_parts", [0] * len(FRONTEND_PARTS)) for it in items], np.int64).mean(0)
    model_instr = np.array([it["model"] for it in items], dtype=np.int64)
    by_type = {t: {"instructions": 0.0, "macs": 0} for t in report_types()}
    step_rows, part_types = [], None
    for k, st in enumerate(rec["steps"]):
        ids = st["layers"]
        m = sum(layers[i]["macs"] for i in ids)
        if st["pattern"] is None:
            L = layers[ids[0]]
            t = L["report_type"]
            by_type[t]["instructions"] += float(mean_steps[k])
            by_type[t]["macs"] += L["macs"]
            name = f"{ids[0]}: {L['kind']}"
        else:
            part_types = st["parts"]
            name = f"{ids[0]}-{ids[-1]}: fused {st['pattern']}" + (" +add" if len(ids) == 4 else "")
            for i in ids:
                by_type[layers[i]["report_type"]]["macs"] += layers[i]["macs"]
        step_rows.append({"step": k, "name": name, "layers": ids, "macs": int(m),
                          "instructions": float(mean_steps[k]),
                          "instructions_per_mac": float(mean_steps[k] / m) if m else None})
    for p, t in enumerate(part_types or []):
        by_type[t]["instructions"] += float(mean_parts[p])
    for v in by_type.values():
        v["instructions_per_mac"] = v["instructions"] / v["macs"] if v["macs"] else None
        v["share_of_model"] = v["instructions"] / float(model_instr.mean())
    return {"frontend_mean": float(fe_instr.mean()),
            # by stage (all frames of a clip); the rest of frontend_mean is the call, the FFT set-up and
            # the profiling hooks themselves
            "frontend_parts": {k: float(v) for k, v in zip(FRONTEND_PARTS, fe_parts)},
            "model_mean": float(model_instr.mean()),
            "model_min": int(model_instr.min()), "model_max": int(model_instr.max()),
            "total_mean": float((fe_instr + model_instr).mean()), "model_macs": total_macs,
            "model_instructions_per_mac": float(model_instr.mean() / total_macs),
            "by_layer_type": by_type, "steps": step_rows}


#: What one tick of the firmware's TIM2 counter is, per backend.
COUNTERS = {
    "qemu": "TIM2 under qemu -icount shift=0: one tick per executed instruction",
    "renode": "TIM2 replaced by firmware/renode/asc_icount_timer.py (CNT = sysbus.cpu ExecutedInstructions): "
              "one tick per executed instruction",
}


@dataclass(frozen=True)
class _DeviceRun:
    text: str  # console output
    debug: Path  # where a layer-debug run leaves its dump
    executed_instructions: int | None  # Renode's total since reset (None on QEMU)


def _fault_elf_path(elf: Path) -> Path:
    """``<cache_root>/faults/<elf stem>-<local time>.elf`` (:func:`asc_edge.paths.cache_root`)."""
    from asc_edge.paths import cache_root

    return cache_root() / "faults" / f"{elf.stem}-{time.strftime('%Y%m%d-%H%M%S')}.elf"


def _run_device(backend: str, image, work: Path, limit_s: float) -> _DeviceRun:
    """Run the bench image; on a DeviceError (fault, hang) the ELF, which lives in the temporary work
    folder, is kept (:func:`_fault_elf_path`) and the error names that copy, so the
    addr2line hint still works after the command has cleaned up."""
    try:
        return _run_device_once(backend, image, work, limit_s)
    except DeviceError as exc:
        import shutil

        kept = _fault_elf_path(image.elf)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image.elf, kept)
        except OSError:
            raise exc from None
        raise DeviceError(exc.message.replace(str(image.elf), str(kept)) + f" (ELF kept as {kept})",
                          hint=(exc.hint or "").replace(str(image.elf), str(kept)) or None) from None


def _run_device_once(backend: str, image, work: Path, limit_s: float) -> _DeviceRun:
    if backend == "qemu":
        from .qemu import run_qemu

        text = run_qemu(image.elf, workdir=work, timeout_s=limit_s, icount=True).stdout
        return _DeviceRun(text, work / "debug.bin", None)
    from .renode import run_renode

    r = run_renode(image.elf, work / "clips.bin", workdir=work, timeout_s=limit_s)
    return _DeviceRun(r.uart_text, r.results_dir / "debug.bin", r.executed_instructions)


CYCLE_ASSUMPTIONS = ("Cortex-M4 TRM instruction timings over the traced instruction mix; min = zero wait states and "
                     "every best case, max = 5 flash wait states with an ART miss on every taken branch and every "
                     "worst case; data loads from flash beyond literal pools are not charged (README, 'Cycles and "
                     "milliseconds')")


def _markdown(r: dict) -> str:
    from asc_edge.report.io import markdown_table

    b, a, m, i = r["bit_exact"], r["accuracy"], r["memory"], r["instructions"]
    lines = [f"# Device bench: {r['model']} on emulated STM32F405 ({r['backend']}, {r['kernels']} kernels)", "",
             f"- clips: {r['data']['n_clips']} ({r['data']['split']} split of {r['data']['root']})",
             f"- **device == reference (host C frontend → "
             f"{'host build of the same fp16 C' if r.get('precision') == 'fp16' else 'tflite-micro'}) "
             f"on {b['n_equal']}/{b['n_clips']} clips**"
             + ("" if b["first_divergence"] is None else f"; first divergence: `{b['first_divergence']}`"),
             f"- accuracy: device {a['device']:.4f}, reference {a['reference']:.4f}",
             f"- flash {m['flash_bytes']:,} B; RAM {m['ram_bytes']:,} B of {m['sram_bytes']:,} B "
             f"(arena {m['arena_bytes']:,} B" + (f" in {m['arena_location']}, {m['ext_ram_bytes']:,} B used there"
                                                  if m.get("ext_ram_bytes") else "")
             + f", stack high-water {m['stack_high_water_bytes']} of {m['stack_reserved_bytes']} B)",
             f"- instructions per inference: model {i['model_mean']:,.0f} ({i['model_instructions_per_mac']:.3f}/MAC "
             f"over {i['model_macs']:,} MACs), frontend {i['frontend_mean']:,.0f}, total {i['total_mean']:,.0f}",
             f"- counter: {i['counter']}", "", "## Frontend by stage (all frames of a clip)", "",
             markdown_table([{"stage": k, "instructions": f"{v:,.0f}",
                              "share": f"{100 * v / i['frontend_mean']:.1f} %" if i["frontend_mean"] else "-"}
                             for k, v in i.get("frontend_parts", {}).items()]), "", "## By layer type", ""]
    rows = [{"type": t, "MACs": f"{v['macs']:,}", "instructions": f"{v['instructions']:,.0f}",
             "instr/MAC": "-" if v["instructions_per_mac"] is None else f"{v['instructions_per_mac']:.3f}",
             "share": f"{100 * v['share_of_model']:.1f} %"} for t, v in i["by_layer_type"].items()]
    c = r.get("cycles")
    if c:
        ms = lambda d: f"{d['ms_min']:.1f} – {d['ms_max']:.1f}"  # noqa: E731
        cy = lambda d: f"{d['cycles_min'] / 1e6:.2f} – {d['cycles_max'] / 1e6:.2f} M"  # noqa: E731
        at = next(k for k, ln in enumerate(lines) if ln.startswith("- counter:")) + 1
        lines[at:at] = [f"- **estimated at 168 MHz** (clip `{c['clip']}`; {c['assumptions']}): model {cy(c['model'])} "
                        f"cycles = **{ms(c['model'])} ms per inference**; frontend {cy(c['frontend'])} = "
                        f"{ms(c['frontend'])} ms; together {ms(c['frontend_plus_model'])} ms"]
    lines += [markdown_table(rows), "", "## By step", ""]
    rows = [{"step": s["name"], "MACs": f"{s['macs']:,}", "instructions": f"{s['instructions']:,.0f}",
             "instr/MAC": "-" if s["instructions_per_mac"] is None else f"{s['instructions_per_mac']:.3f}",
             **({"estimated cycles (range)": f"{c['steps'][k]['cycles_min']:,} – {c['steps'][k]['cycles_max']:,}",
                 "ms at 168 MHz (range)": f"{c['steps'][k]['ms_min']:.2f} – {c['steps'][k]['ms_max']:.2f}"} if c else {})}
            for k, s in enumerate(i["steps"])]
    lines += [markdown_table(rows), ""]
    return "\n".join(lines)


def _plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = r["instructions"]["steps"]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(range(len(steps)), [s["instructions"] / 1e6 for s in steps], color="tab:blue")
    ax.set_xticks(range(len(steps)))
    ax.set_xticklabels([s["name"] for s in steps], rotation=75, fontsize=7)
    ax.set_ylabel("M instructions / inference")
    ax.set_title(f"{r['model']}: {r['instructions']['model_instructions_per_mac']:.2f} instructions/MAC "
                 f"({r['kernels']} kernels, {r['backend']})")
    fig.tight_layout()
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
