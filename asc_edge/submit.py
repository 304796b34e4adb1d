"""A DCASE 2024 Task 1 submission package (``asc-edge submit``) and the official validator's rules.

The 2024 task is one system trained five times, once per development train split (5, 10, 25, 50,
100 %). The package the organisers' validator (GitHub ``toni-heittola/dcase2024_task1_submission_validator``,
``main.py`` + ``validators.py``; not on PyPI) accepts is a zip holding, for a label
``Lastname_Institute_task1_N`` (N in 1..4)::

    task1/<Label>/<Label>.output.split_5.csv   ... split_10, split_25, split_50, split_100
    task1/<Label>/<Label>.meta.yaml

Each output CSV is tab-separated, header ``filename scene_label airport bus metro metro_station park
public_square shopping_mall street_pedestrian street_traffic tram``, one row per evaluation file
(``<index>.wav``, index 0..135,729; 135,730 unique files in the 2024 evaluation set), the predicted
scene and the ten class scores (here: softmax probabilities of the model's logits). The meta YAML has
the ``submission``, ``system`` and ``results`` blocks listed in :data:`META_RULES`.

Predictions come from the int8 model that goes on the device: each run is converted to an int8
TFLite file (ONNX → onnx2tf, activation ranges ``mse`` as ``asc-edge export``, 200 calibration
clips) and run by tflite-micro (:class:`asc_edge.export.oracle.TflmOracle`, the reference the
device matches bit for bit); the dequantised int8 logits give the scores. A run argument may also be
an ``asc-edge export`` folder (``model_int8.tflite`` + ``report.json``), which is used as is. The
conversions are cached under ``<cache root>/submit-int8/`` by checkpoint hash and calibration set.
``float_splits`` (``--float``) uses the PyTorch float model instead.

Evaluation file names: the official evaluation set names its clips ``<integer>.wav``; a folder whose
audio files all have integer stems is written with those names. Any other folder (a trial on
development clips) has its files, sorted by relative path, numbered 0..N-1, and
``filename_map.csv`` (``filename`` → ``source``) is written beside the package, outside the zip.

:func:`validate_package` re-implements the validator's checks (its ``validate_output``,
``validate_meta_data``, label checks); stricter where the validator is lax or would crash, and says
so in each message: the header must be in exactly the official order, all five split files must be
present and list the same files, the scores must be finite, a non-integer file stem is an error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import AscEdgeError, ConfigError, DataError

SPLITS = (5, 10, 25, 50, 100)
TAU_SCENES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
              "street_pedestrian", "street_traffic", "tram")
HEADER = ("filename", "scene_label") + TAU_SCENES   # validator main.py param['output']['fields'], that order
OFFICIAL_EVAL_FILES = 135_730                         # param['output']['unique_file_count'] (2024)
INDEX_MIN, INDEX_MAX = 0, 135_729                     # param['output']['filename']
DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
META_RULES = {  # validator main.py param['meta']: required fields per block
    "submission": ("label", "name", "abbreviation", "authors"),
    "author": ("lastname", "firstname", "email", "affiliation"),
    "system": ("description", "complexity", "energy_consumption", "external_datasets", "source_code"),
    "description": ("input_sampling_rate", "acoustic_features", "embeddings", "data_augmentation",
                    "machine_learning_method", "ensemble_method_subsystem_count", "decision_making",
                    "external_data_usage", "complexity_management", "pipeline", "framework"),
    "complexity": ("total_model_size", "total_parameters", "total_parameters_non_zero", "memory_use", "macs"),
    "energy_consumption": ("training", "inference", "baseline_inference"),
    "external_dataset": ("name", "url", "total_audio_length"),
    "development_dataset": ("overall", "class_wise", "device_wise"),
    "overall": ("accuracy", "logloss"),
}
LABEL_HINT = "use Lastname_Institute_task1_N with N in 1..4 (four parts separated by '_', e.g. Smith_TUW_task1_1)"
BYTES_PER_PARAM = {"int8": 1, "fp32": 4}


# ------------------------------------------------------------------------------------------ rules
def label_problems(label: str) -> list[str]:
    """The validator's label rules: four ``_``-separated parts, the third ``task1``, the fourth 1..4."""
    parts = str(label).split("_")
    if len(parts) != 4 or not all(parts):
        return [f"submission label {label!r} is wrongly constructed (needs 4 non-empty '_'-separated parts)"]
    if parts[2] != "task1":
        return [f"submission label {label!r}: third part must be 'task1'"]
    if not parts[3].isdigit() or not 1 <= int(parts[3]) <= 4:
        return [f"submission label {label!r}: submission index (fourth part) must be 1..4"]
    return []


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _missing(block, fields: Sequence[str]) -> list[str]:
    return [f for f in fields if not isinstance(block, dict) or f not in block]


def validate_meta(meta) -> list[str]:
    """Errors of a meta YAML document (a dict) by the validator's ``validate_meta_data`` rules."""
    errs: list[str] = []
    if not isinstance(meta, dict):
        return ["meta: the YAML document is not a mapping with submission / system / results blocks"]
    sub = meta.get("submission")
    if not isinstance(sub, dict):
        errs.append("meta: 'submission' block missing")
    else:
        if miss := _missing(sub, META_RULES["submission"]):
            errs.append(f"meta: 'submission' lacks {', '.join(miss)}")
        authors = sub.get("authors")
        if not isinstance(authors, list) or not authors:
            errs.append("meta: 'submission.authors' must be a non-empty list")
            authors = []
        for i, a in enumerate(authors):
            if miss := _missing(a, META_RULES["author"]):
                errs.append(f"meta: 'submission.authors[{i}]' lacks {', '.join(miss)}")
        n_corr = sum(1 for a in authors if isinstance(a, dict) and a.get("corresponding"))
        if n_corr != 1:
            errs.append(f"meta: 'submission.authors' must mark exactly one corresponding author ({n_corr} marked)")
        if "label" in sub:
            errs += ["meta: " + p for p in label_problems(sub["label"])]
        if "abbreviation" in sub and len(str(sub["abbreviation"])) > 10:
            errs.append(f"meta: submission abbreviation {sub['abbreviation']!r} is longer than 10 characters")
    system = meta.get("system")
    if not isinstance(system, dict):
        errs.append("meta: 'system' block missing")
    else:
        if miss := _missing(system, META_RULES["system"]):
            errs.append(f"meta: 'system' lacks {', '.join(miss)}")
        for block in ("description", "complexity", "energy_consumption"):
            if block in system and (miss := _missing(system[block], META_RULES[block])):
                errs.append(f"meta: 'system.{block}' lacks {', '.join(miss)}")
        cx = system.get("complexity")
        if not isinstance(cx, dict) or not isinstance(cx.get("total_parameters"), int) \
                or isinstance(cx.get("total_parameters"), bool):
            errs.append("meta: 'system.complexity.total_parameters' is not an integer")
        for i, item in enumerate(system.get("external_datasets") or []):
            if miss := _missing(item, META_RULES["external_dataset"]):
                errs.append(f"meta: 'system.external_datasets[{i}]' lacks {', '.join(miss)}")
    res = meta.get("results")
    dev = res.get("development_dataset") if isinstance(res, dict) else None
    if not isinstance(res, dict) or dev is None:
        errs.append("meta: 'results.development_dataset' block missing")
    else:
        if miss := _missing(dev, META_RULES["development_dataset"]):
            errs.append(f"meta: 'results.development_dataset' lacks {', '.join(miss)}")
        blocks = {"overall": (None, dev.get("overall")),
                  "class_wise": (TAU_SCENES, dev.get("class_wise")),
                  "device_wise": (DEVICES, dev.get("device_wise"))}
        for name, (items, block) in blocks.items():
            if not block:
                continue
            per_item = {"": block} if items is None else block
            if items is not None and (miss := _missing(block, items)):
                errs.append(f"meta: 'results.development_dataset.{name}' lacks {', '.join(miss)}")
            for key, entry in (per_item.items() if isinstance(per_item, dict) else []):
                where = f"results.development_dataset.{name}" + (f".{key}" if key else "")
                if miss := _missing(entry, META_RULES["overall"]):
                    errs.append(f"meta: '{where}' lacks {', '.join(miss)}")
                for k, v in (entry.items() if isinstance(entry, dict) else []):
                    if not _numeric(v):
                        errs.append(f"meta: '{where}.{k}' value is not numeric ({v!r})")
    return errs


def validate_output(text: str, n_eval_files: int = OFFICIAL_EVAL_FILES, where: str = "output") -> tuple[list[str], list[str]]:
    """Errors of one output CSV (the validator's ``validate_output``) and its file names (basenames)."""
    errs: list[str] = []
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        return [f"{where}: empty file"], []
    header = rows[0]
    if "filename" not in header:
        errs.append(f"{where}: no header row (no 'filename' field)")
    if tuple(header) != HEADER:
        errs.append(f"{where}: header fields {header} differ from the official ones in order [{','.join(HEADER)}]")
    fi = header.index("filename") if "filename" in header else 0
    si = header.index("scene_label") if "scene_label" in header else None
    score_idx = [(c, header.index(c)) for c in TAU_SCENES if c in header]
    seen: set[str] = set()
    names: list[str] = []
    for r, row in enumerate(rows[1:], start=1):
        if len(row) != len(HEADER):
            errs.append(f"{where}: wrong field count at row {r} ({len(row)} != {len(HEADER)})")
        if fi >= len(row):
            continue
        name = os.path.basename(row[fi])
        if name in seen:
            errs.append(f"{where}: duplicate file [{row[fi]}] at row {r}")
        else:
            seen.add(name)
            names.append(name)
        stem, ext = os.path.splitext(name)
        if ext != ".wav":
            errs.append(f"{where}: wrong file extension for [{row[fi]}] at row {r} (use '.wav')")
        if not stem.isdigit():
            errs.append(f"{where}: illegal filename [{row[fi]}] at row {r} (not <integer>.wav; stricter than "
                        "the validator, which crashes on it)")
        elif not INDEX_MIN <= int(stem) <= INDEX_MAX:
            errs.append(f"{where}: illegal filename [{row[fi]}] at row {r} (file index outside "
                        f"{INDEX_MIN}..{INDEX_MAX})")
        if si is not None and si < len(row) and row[si] not in TAU_SCENES:
            errs.append(f"{where}: illegal scene label [{row[si]}] at row {r}")
        for cls, ci in score_idx:
            if ci < len(row):
                try:
                    ok = math.isfinite(float(row[ci]))
                except ValueError:
                    ok = False
                if not ok:
                    errs.append(f"{where}: wrong field type at row {r} for [{cls}={row[ci]}] (a finite float)")
    if len(seen) != n_eval_files:
        errs.append(f"{where}: incorrect number of entries [{len(seen)} != {n_eval_files}] (unique filenames)")
    return errs, names


def validate_package(zip_path, n_eval_files: int = OFFICIAL_EVAL_FILES) -> list[str]:
    """Every error the official validator's rules find in a submission zip (empty list: accepted).

    ``n_eval_files``: the unique-file count the outputs must have (the 2024 evaluation set: 135,730;
    a trial package on other clips passes its own count).
    """
    import yaml

    try:
        z = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"zip: cannot open {zip_path}: {exc}"]
    errs: list[str] = []
    with z:
        if z.testzip():
            errs.append("zip: bad files found in the package")
        systems: dict[str, dict] = {}
        for info in z.infolist():
            name = info.filename
            if info.is_dir() or "task1" not in name or ".pdf" in name:
                continue
            parts = os.path.dirname(name).split("/")
            if parts[0] != "task1" or len(parts) != 2:
                errs.append(f"zip: {name} is not under task1/<Label>/ (unknown task indicator {parts[0]!r})")
                continue
            entry = systems.setdefault(parts[1], {"outputs": {}, "meta": None})
            m = re.search(r"\.output\.split_(\d+)\.csv$", name)
            if m and int(m.group(1)) in SPLITS:
                entry["outputs"][int(m.group(1))] = name
            elif name.endswith(".meta.yaml"):
                entry["meta"] = name
            else:
                errs.append(f"zip: possibly wrongly formatted filename {name}")
        if not systems:
            errs.append("zip: no task1/<Label>/ files (outputs and meta YAML) in the package")
        for label, entry in systems.items():
            errs += [f"{label}: {p}" for p in label_problems(label)]
            if missing := [s for s in SPLITS if s not in entry["outputs"]]:
                errs.append(f"{label}: output files missing for split(s) {', '.join(map(str, missing))} "
                            "(the 2024 task wants one output per train split)")
            file_sets = []
            for split, name in sorted(entry["outputs"].items()):
                base = os.path.basename(name)
                if base.split(".")[0] != label:
                    errs.append(f"{label}: output file {base} does not start with the submission label")
                e, names = validate_output(z.read(name).decode("utf-8", errors="replace"), n_eval_files, base)
                errs += e
                file_sets.append((split, set(names)))
            for split, names in file_sets[1:]:
                if names != file_sets[0][1]:
                    errs.append(f"{label}: split {split}'s output lists other files than split {file_sets[0][0]}'s "
                                "(stricter than the validator)")
            if entry["meta"] is None:
                errs.append(f"{label}: meta file <Label>.meta.yaml missing")
                continue
            try:
                meta = yaml.safe_load(z.read(entry["meta"]))
            except yaml.YAMLError as exc:
                errs.append(f"{label}: meta YAML does not parse: {str(exc).splitlines()[0]}")
                continue
            errs += [f"{label}: {e}" for e in validate_meta(meta)]
            meta_label = meta.get("submission", {}).get("label") if isinstance(meta, dict) and \
                isinstance(meta.get("submission"), dict) else None
            if os.path.basename(entry["meta"]).split(".")[0] != label:
                errs.append(f"{label}: meta file {os.path.basename(entry['meta'])} does not start with the label")
            if meta_label != label:
                errs.append(f"{label}: submission.label in the meta file ({meta_label!r}) differs from the "
                            "label in the directory / file names")
    return errs


# ------------------------------------------------------------------------------------ evaluation files
def evaluation_files(folder, n_eval_files: int | None = None) -> tuple[list[Path], list[str], bool]:
    """The evaluation folder's audio files (recursive, sorted by relative path), their output names and
    whether names were mapped: integer stems are kept (the official ``<index>.wav``), otherwise every
    file is numbered 0..N-1 in sorted order.

    Raises:
        DataError: no folder / no audio, two files with one integer stem, or a count other than
            ``n_eval_files``.
    """
    from asc_edge.features.splits import AUDIO_SUFFIXES

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"--eval {root}: evaluation folder not found",
                        hint="pass the evaluation set's audio folder (files named <index>.wav)")
    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    if not files:
        raise DataError(f"--eval {root}: no audio files (.wav/.flac/.ogg)", hint="pass the evaluation set's audio folder")
    if n_eval_files is not None and len(files) != n_eval_files:
        raise DataError(f"--eval {root} has {len(files):,} audio files; the package must list {n_eval_files:,}"
                        + (" (the official 2024 evaluation set)" if n_eval_files == OFFICIAL_EVAL_FILES else ""),
                        hint=f"point --eval at the evaluation set's audio, or pass --n-eval-files {len(files)} "
                             "for a trial package")
    stems = [p.stem for p in files]
    if all(s.isdigit() and INDEX_MIN <= int(s) <= INDEX_MAX for s in stems):
        dup = sorted({s for s in stems if stems.count(s) > 1}) if len(set(map(int, stems))) != len(stems) else []
        if dup:
            raise DataError(f"--eval {root}: several files share the index {dup[0]} (e.g. in sub-folders)",
                            hint="keep one file per <index>.wav")
        return files, [f"{int(s)}.wav" for s in stems], False
    return files, [f"{i}.wav" for i in range(len(files))], True


# ------------------------------------------------------------------------------------------ members
@dataclass
class Member:
    """One split's model: where it came from, the loaded float model, its int8 file (when used)."""

    split: int
    source: Path
    checkpoint: Path
    lm: object
    export_tflite: Path | None = None
    precision: str = "int8"
    tflite: Path | None = None
    info: dict = field(default_factory=dict)


def _resolve_member(split: int, source, use_float: bool) -> Member:
    from asc_edge.checkpoint import load_checkpoint

    src = Path(source)
    ckpt, tfl = src, None
    if src.is_dir() and (src / "model_int8.tflite").is_file() and (src / "report.json").is_file():
        rep = json.loads((src / "report.json").read_text())
        ckpt, tfl = Path(rep.get("checkpoint", "")), src / "model_int8.tflite"
        if not ckpt.is_file():
            raise ConfigError(f"{src}: export folder whose checkpoint {ckpt} is gone",
                              hint="pass the run directory instead, or re-export")
    elif not src.exists():
        raise ConfigError(f"split-{split} run {src} not found",
                          hint="pass five run directories (or export folders) in the order split5 split10 split25 "
                               "split50 split100")
    lm = load_checkpoint(ckpt)
    if sorted(lm.labels) != sorted(TAU_SCENES):
        raise DataError(f"{lm.path}: its labels ({', '.join(lm.labels)}) are not the ten TAU scenes",
                        hint="a DCASE Task 1 submission needs models trained on TAU22 Mobile's ten scenes "
                             f"({', '.join(TAU_SCENES)})")
    tr = lm.hparams.get("train") if isinstance(lm.hparams.get("train"), dict) else {}
    recorded = str(tr.get("split") or "").removeprefix("split")
    if recorded.isdigit() and int(recorded) != split:
        raise ConfigError(f"{lm.path} was trained on split {recorded} but is given as the split-{split} run",
                          hint="pass the runs in the order split5 split10 split25 split50 split100")
    return Member(split=split, source=src, checkpoint=lm.path, lm=lm, export_tflite=tfl,
                  precision="fp32" if use_float else "int8")


def _calibration(lm, calib_data, calib_split, cache_dir, log) -> tuple[np.ndarray, dict]:
    """200 evenly spread calibration clips (as ``asc-edge export``): ``calib_data`` / ``calib_split``, by
    default the run's own training data and split, else ``../shared/data`` split 100; labels unused."""
    from asc_edge.export.pipeline import DEFAULT_DATA, _spread
    from asc_edge.features import load_split_data
    from asc_edge.features.splits import load_folder_split

    tr = lm.hparams.get("train") if isinstance(lm.hparams.get("train"), dict) else {}
    root = Path(calib_data) if calib_data else (Path(tr["data"]) if tr.get("data") and Path(tr["data"]).exists()
                                                else DEFAULT_DATA)
    if (root / "meta.csv").is_file():
        split = str(calib_split or "100")
        data = load_split_data(root, split, lm.frontend, labels=None, cache_dir=cache_dir, progress=False)
    else:
        split = "all audio files"
        data = load_folder_split(root, lm.frontend, cache_dir=cache_dir, what="calibration folder")
    if len(data.features) < 200:
        raise DataError(f"calibration data {root} ({split}) has {len(data.features)} clips, 200 needed",
                        hint="pass --calib-data with at least 200 training clips")
    return data.features[_spread(len(data.features), 200)], {"root": str(root.resolve()), "split": split, "n_clips": 200}


def _int8_model(m: Member, eval_features: np.ndarray, calib_data, calib_split, cache_dir, log) -> dict:
    """The member's int8 TFLite (its export folder's, a cached conversion, or a new one); returns info."""
    from asc_edge.paths import cache_root
    from asc_edge.report.io import file_sha256, write_json_atomic

    if m.export_tflite is not None:
        m.tflite = m.export_tflite
        return {"tflite": str(m.tflite), "from": "export folder", "sha256": file_sha256(m.tflite)}
    import hashlib
    import tempfile

    from asc_edge.export.onnx import export_onnx
    from asc_edge.export.tflite import convert_int8_tflite

    calib, cinfo = _calibration(m.lm, calib_data, calib_split, cache_dir, log)
    from asc_edge.checkpoint import state_dict_sha256

    weights = state_dict_sha256(m.lm.model.state_dict())  # not the file's hash: a re-import rewrites its record
    key = hashlib.sha256(json.dumps([m.lm.model_name, weights, m.lm.frontend.to_dict(), cinfo, "mse"],
                                    sort_keys=True, default=str).encode()).hexdigest()[:20]
    folder = cache_root() / "submit-int8" / key
    if (folder / "model_int8.tflite").is_file():
        m.tflite = folder / "model_int8.tflite"
        return {"tflite": str(m.tflite), "from": "cache", "sha256": file_sha256(m.tflite), "calibration": cinfo}
    log(f"split{m.split}: converting {m.checkpoint} to int8 (onnx2tf, mse ranges, 200 calibration clips)")
    t0 = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    try:
        export_onnx(m.lm.model, tmp / "model.onnx", input_shape=(1, *eval_features.shape[1:]),
                    check_features=eval_features[:20])
        tfl = convert_int8_tflite(tmp / "model.onnx", calib, tmp / "model_int8.tflite", tmp / "work",
                                  calibration="mse")
        shutil.rmtree(tmp / "work", ignore_errors=True)
        write_json_atomic(tmp / "conversion.json", {"checkpoint": str(m.checkpoint), "calibration": cinfo,
                                                    "tflite_sha256": tfl["sha256"], "wall_s": time.perf_counter() - t0})
        try:
            os.replace(tmp, folder)
        except OSError:  # a concurrent conversion won the race: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    m.tflite = folder / "model_int8.tflite"
    return {"tflite": str(m.tflite), "from": "converted", "sha256": file_sha256(m.tflite), "calibration": cinfo,
            "wall_s": round(time.perf_counter() - t0, 1)}


def predict_scores(m: Member, features: np.ndarray) -> np.ndarray:
    """Softmax scores ``(N, 10)`` in the member's label order: int8 through tflite-micro (dequantised
    logits) or the float PyTorch model."""
    import torch

    if m.precision == "int8":
        from asc_edge.export.oracle import TflmOracle

        logits = TflmOracle(m.tflite).predict(features)[1].astype(np.float64)
    else:
        from asc_edge.checkpoint import predict_logits

        with torch.no_grad():
            logits = predict_logits(m.lm.model, features).numpy().astype(np.float64)
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------------ meta
def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _dev_results(m: Member) -> tuple[dict, list[str]]:
    """results.development_dataset from the split-100 run's metrics.json; unmeasured values are NaN."""
    nan = float("nan")
    path = m.checkpoint.parent / "metrics.json"
    mt = json.loads(path.read_text()) if path.is_file() else {}
    pc, pd = mt.get("per_class_accuracy") or {}, mt.get("per_device_accuracy") or {}
    num = lambda v: float(v) if _numeric(v) else nan  # noqa: E731
    dev = {"overall": {"accuracy": num(mt.get("macro_accuracy")),
                       "logloss": num(mt.get("macro_log_loss", mt.get("log_loss")))},
           "class_wise": {c: {"accuracy": num(pc.get(c)), "logloss": nan} for c in TAU_SCENES},
           "device_wise": {d: {"accuracy": num(pd.get(d)), "logloss": nan} for d in DEVICES}}
    unset = [f"{b}.{k}.{q}" for b in ("class_wise", "device_wise") for k, v in dev[b].items()
             for q, x in v.items() if math.isnan(x)]
    unset = [f"overall.{q}" for q, x in dev["overall"].items() if math.isnan(x)] + unset
    return dev, unset


def build_meta(label: str, members: list[Member], overrides: dict | None = None, bench: dict | None = None) -> tuple[dict, list[str]]:
    """The meta YAML document and the list of fields written as NaN (not measured here).

    Complexity follows the 2024 rules per model (the five split models are alternatives, one used at a
    time, so the largest is reported): ``total_parameters`` (torchinfo, as the DCASE baselines),
    ``total_parameters_non_zero``, ``total_model_size`` and ``memory_use`` = parameter bytes at the
    precision the predictions were made with (int8: 1 byte; fp32: 4), ``macs`` per 1-s inference.
    ``bench``: an ``asc-edge bench`` report whose device RAM / flash / instructions go into
    ``system.description.complexity_management`` (free text).
    """
    import torch

    from asc_edge.complexity import measure

    rows = []
    for m in members:
        fe = m.lm.frontend
        cx = measure(m.lm.model, n_mels=fe.n_mels, frames=fe.n_frames)
        with torch.no_grad():
            nz = int(sum(int((p != 0).sum()) for p in m.lm.model.parameters()))
        rows.append({"split": m.split, "params": cx.params, "non_zero": nz, "macs": cx.macs,
                     "bytes": cx.params * BYTES_PER_PARAM[m.precision], "precision": m.precision,
                     "model": m.lm.model_name, "frontend": fe})
    big = max(rows, key=lambda r: (r["bytes"], r["macs"]))
    fe = big["frontend"]
    precisions = sorted({r["precision"] for r in rows})
    prec_text = "int8 (tflite-micro reference kernels)" if precisions == ["int8"] else \
        ", ".join(f"split{r['split']} {r['precision']}" for r in rows)
    device = ""
    if bench:
        mem, ins = bench.get("memory", {}), bench.get("instructions", {})
        device = (f" Measured on an emulated STM32F405 (Cortex-M4, asc-edge bench): RAM {mem.get('ram_bytes')} B, "
                  f"flash {mem.get('flash_bytes')} B, {ins.get('model_mean')} model + {ins.get('frontend_mean')} "
                  f"frontend instructions per 1-s clip.")
    lastname, inst = label.split("_")[0], label.split("_")[1] if "_" in label else ""
    meta = {
        "submission": {"label": label, "name": f"{big['model']} ({lastname} {inst})", "abbreviation": inst[:10] or "asc",
                       "authors": [{"lastname": lastname, "firstname": "", "email": "", "affiliation": inst,
                                    "corresponding": True}]},
        "system": {
            "description": {
                "input_sampling_rate": fe.sample_rate / 1000.0,
                "acoustic_features": f"log-mel energies ({fe.n_mels} bands, {fe.n_frames} frames per 1-s clip)",
                "embeddings": None,
                "data_augmentation": "see the training recipe in each run's report.json",
                "machine_learning_method": f"CNN ({big['model']})",
                "ensemble_method_subsystem_count": None,
                "decision_making": None,
                "external_data_usage": None,
                "complexity_management": f"{prec_text} predictions"
                                         + ("; int8 post-training quantisation (mse activation ranges, 200 "
                                            "calibration clips)" if "int8" in precisions else "")
                                         + f".{device}",
                "pipeline": "log-mel -> CNN -> softmax (one model per train split)",
                "framework": "pytorch, onnx2tf / tflite-micro (asc-edge)",
            },
            "complexity": {"total_model_size": int(big["bytes"]), "total_parameters": int(big["params"]),
                           "total_parameters_non_zero": int(max(r["non_zero"] for r in rows)),
                           "memory_use": int(big["bytes"]), "macs": int(big["macs"])},
            "energy_consumption": {"training": float("nan"), "inference": float("nan"),
                                   "baseline_inference": float("nan")},
            "external_datasets": [],
            "source_code": "asc-edge",
        },
        "results": {"development_dataset": None},
    }
    split100 = next((m for m in members if m.split == 100), members[-1])
    meta["results"]["development_dataset"], unset = _dev_results(split100)
    unset = [f"results.development_dataset.{u}" for u in unset] + \
        [f"system.energy_consumption.{k}" for k in META_RULES["energy_consumption"]]
    overrides = overrides or {}
    meta = _deep_merge(meta, overrides)

    def still_nan(dotted: str) -> bool:
        node = meta
        for k in dotted.split("."):
            if not isinstance(node, dict) or k not in node:
                return False
            node = node[k]
        return _numeric(node) and math.isnan(node)
    unset = [u for u in unset if still_nan(u)]
    if not (isinstance(overrides.get("submission"), dict) and overrides["submission"].get("authors")):
        unset.append("submission.authors (a placeholder from the label: firstname and email empty)")
    return meta, unset


def _meta_yaml_text(meta: dict, members: list[Member]) -> str:
    import yaml

    head = ["# DCASE 2024 Task 1 system meta information, written by asc-edge submit.",
            "# Complexity per model (the five split models are alternatives): parameter bytes at the precision",
            "# the predictions were made with; .nan = not measured by asc-edge, fill it in (--meta-yaml).",
            *[f"# split{m.split}: {m.precision}, {m.checkpoint}" for m in members]]
    return "\n".join(head) + "\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=110)


# ------------------------------------------------------------------------------------------ build
def _load_overrides(meta_yaml, label: str) -> dict:
    import yaml

    if meta_yaml is None:
        return {}
    p = Path(meta_yaml)
    if not p.is_file():
        raise ConfigError(f"--meta-yaml {p}: file not found", hint="pass a YAML file with submission / system blocks")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--meta-yaml {p}: not valid YAML ({str(exc).splitlines()[0]})",
                          hint="fix the YAML syntax") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"--meta-yaml {p}: not a mapping", hint="top-level keys submission / system / results")
    given = doc.get("submission", {}).get("label") if isinstance(doc.get("submission"), dict) else None
    if given is not None and given != label:
        raise ConfigError(f"--meta-yaml {p}: submission.label {given!r} differs from --label {label!r}",
                          hint="drop submission.label from the file or pass the same --label")
    return doc


def build_submission(runs: Sequence, eval_dir, label: str, out_dir, *, meta_yaml=None,
                     float_splits: Iterable[int] = (), n_eval_files: int | None = OFFICIAL_EVAL_FILES,
                     calib_data=None, calib_split=None, bench_json=None, cache_dir=None,
                     log: Callable[[str], None] = print) -> dict:
    """Write the package for ``label`` into ``out_dir`` (replaced atomically); returns its report.

    ``runs``: five run directories (or ``asc-edge export`` folders), split5 … split100 in that order;
    ``eval_dir``: the evaluation audio; ``float_splits``: splits predicted with the float model instead
    of int8 (``--float``: all); ``n_eval_files``: required file count (``None``: whatever the folder
    holds); ``calib_data`` / ``calib_split``: int8 calibration clips (default: see :func:`_calibration`);
    ``bench_json``: an ``asc-edge bench`` report for the device figures.

    ``out_dir`` gets ``task1/<Label>/`` (the five outputs + meta YAML), ``<Label>.zip`` (the package),
    ``filename_map.csv`` when names were mapped, and ``submission.json`` (what produced it).

    Raises:
        ConfigError / DataError / CheckpointError / ExportError: bad label, runs, folder or meta file,
            or a package the validator's rules reject.
    """
    from asc_edge.features.splits import load_folder_split
    from asc_edge.report.io import write_json_atomic

    if problems := label_problems(label):
        raise ConfigError(f"--label: {problems[0]}", hint=LABEL_HINT)
    if len(runs) != len(SPLITS):
        raise ConfigError(f"{len(runs)} runs given, 5 needed", hint="pass the split5 split10 split25 split50 split100 "
                          "runs in that order")
    overrides = _load_overrides(meta_yaml, label)
    bench = None
    if bench_json is not None:
        try:
            bench = json.loads(Path(bench_json).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--bench {bench_json}: not a readable bench.json ({exc})",
                              hint="pass the bench.json that `asc-edge bench` wrote") from None
    files, names, mapped = evaluation_files(eval_dir, n_eval_files)
    float_splits = set(float_splits)
    members = [_resolve_member(s, r, s in float_splits) for s, r in zip(SPLITS, runs)]
    meta, unset = build_meta(label, members, overrides, bench)
    if errs := validate_meta(meta):
        raise ConfigError(f"meta YAML: {errs[0]}" + (f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""),
                          hint="fix it in --meta-yaml")
    log(f"{len(files)} evaluation files in {eval_dir}" + (" (names mapped to 0..N-1: filename_map.csv)" if mapped else ""))

    features: dict = {}
    report = {"label": label, "eval_dir": str(Path(eval_dir).resolve()), "n_files": len(files),
              "names_mapped": mapped, "splits": {}}
    outputs: dict[int, str] = {}
    for m in members:
        key = json.dumps(m.lm.frontend.to_dict(), sort_keys=True)
        if key not in features:
            folder = load_folder_split(eval_dir, m.lm.frontend, cache_dir=cache_dir, what="evaluation folder",
                                       flag="--eval")
            features[key] = folder.features
        x = features[key]
        info = _int8_model(m, x, calib_data, calib_split, cache_dir, log) if m.precision == "int8" else {}
        scores = predict_scores(m, x)
        order = [m.lm.labels.index(c) for c in TAU_SCENES]
        scores = scores[:, order]
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t", lineterminator="\n")
        w.writerow(HEADER)
        for name, s in zip(names, scores):
            w.writerow([name, TAU_SCENES[int(s.argmax())], *(f"{v:.7g}" for v in s)])
        outputs[m.split] = buf.getvalue()
        report["splits"][f"split{m.split}"] = {"source": str(m.source), "checkpoint": str(m.checkpoint),
                                               "precision": m.precision, **info,
                                               "predicted_counts": {c: int((scores.argmax(1) == i).sum())
                                                                    for i, c in enumerate(TAU_SCENES)}}
        log(f"split{m.split}: {m.precision} predictions for {len(x)} files")

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        sysdir = tmp / "task1" / label
        sysdir.mkdir(parents=True)
        for split, text in outputs.items():
            (sysdir / f"{label}.output.split_{split}.csv").write_text(text)
        (sysdir / f"{label}.meta.yaml").write_text(_meta_yaml_text(meta, members))
        zpath = tmp / f"{label}.zip"
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(sysdir.iterdir()):
                z.write(p, f"task1/{label}/{p.name}")
        if mapped:
            with open(tmp / "filename_map.csv", "w", newline="") as fh:
                w = csv.writer(fh, delimiter="\t", lineterminator="\n")
                w.writerow(["filename", "source"])
                w.writerows([n, f.relative_to(Path(eval_dir)).as_posix()] for n, f in zip(names, files))
        errs = validate_package(zpath, len(files) if n_eval_files is None else n_eval_files)
        if errs:
            raise AscEdgeError(f"the package fails the validator's checks: {errs[0]}"
                               + (f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""),
                               hint="fix the input named there and re-run")
        report.update({"package": str(out / f"{label}.zip"), "files": [f"task1/{label}/{p.name}" for p in sorted(sysdir.iterdir())],
                       "validator": {"errors": errs, "n_eval_files": len(files) if n_eval_files is None else n_eval_files,
                                     "rules": "asc_edge.submit.validate_package (the official validator's rules "
                                              "re-implemented; it is not on PyPI)"},
                       "meta_not_measured": unset})
        write_json_atomic(tmp / "submission.json", report)
        old = out.parent / f".{out.name}.old{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if unset:
        log(f"note: {len(unset)} meta fields are not measured by asc-edge and were written as .nan or placeholders "
            f"(e.g. {unset[0]}): fill them in with --meta-yaml")
    log(f"package: {out / f'{label}.zip'} (validator's checks: no errors)")
    return report
