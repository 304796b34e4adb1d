"""``asc-edge import``: CPJKU DCASE 2024 baseline-family Lightning checkpoints → asc-edge checkpoints.

The CPJKU DCASE 2024 Task 1 baseline (``CPJKU/dcase2024_task1_baseline``, ``run_training.py`` and
``models/baseline.py``) and its forks (e.g. the SNTL-NTU DCASE 2024 students, technical report
"Data efficient acoustic scene classification using teacher-informed confusing class instruction")
save a PyTorch Lightning checkpoint whose ``state_dict`` holds

- ``model.*``: the CP-Mobile network (``in_c``, ``stages.s<i>.b<j>.block``, ``feed_forward``), with
  BatchNorm running statistics and ``num_batches_tracked``;
- ``mel.*``: the buffers of its front end ``nn.Sequential(Resample, MelSpectrogram)`` (torchaudio):
  ``mel.0.kernel`` (only when the resampler changes the rate), ``mel.1.spectrogram.window`` and
  ``mel.1.mel_scale.fb``.

The checkpoint stores no hyper-parameters and no label names. :func:`import_cpjku_checkpoint`
infers everything it can from the tensors, takes the rest from the baseline's code, checks that
asc-edge reproduces it, and writes an asc-edge checkpoint (the format of
:mod:`asc_edge.checkpoint`) so ``asc-edge evaluate`` / ``export`` use it unchanged.

Where each value comes from:

========================  =====================================================================
network                   from ``model.*`` shapes: base channels (``in_c.1.0.weight`` rows),
                          stages / blocks per stage (key names), channel multiplier (stage widths),
                          expansion rate (``block.0.0.weight`` rows), input channels, classes
strides                   not stored (a strided 3×3 depthwise kernel has the same shape): the
                          baseline's ``get_model`` default ``b2=(1,1), b3=(1,2), b4=(2,1)``
front end                 the ``mel.*`` buffers, mapped and checked by
                          :func:`asc_edge.features.cpjku.infer_frontend` (see there)
labels                    not stored: the baseline's ``label_ids`` list (alphabetical TAU22 scenes)
========================  =====================================================================

The frontend part (``mel.*`` → :class:`~asc_edge.features.FrontendConfig`, resampler notes) is
:mod:`asc_edge.features.cpjku`; this module reads the checkpoint, rebuilds the network and writes the
asc-edge checkpoint.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from asc_edge.errors import CheckpointError
from asc_edge.features.config import FrontendConfig
from asc_edge.features.cpjku import BASELINE_HOP_LENGTH, MEL_KEYS, infer_frontend
from asc_edge.models import MODELS, build_model
from asc_edge.models.cp_mobile import CPMobile, CPMobileConfig, make_divisible
from asc_edge.report.io import file_sha256

__all__ = [
    "TAU_LABELS", "FAMILY", "ImportedCheckpoint", "import_cpjku_checkpoint", "read_cpjku_checkpoint", "default_output",
    "infer_cp_mobile_config",
]

IMPORT_FORMAT = 1

# The 10 TAU Urban Acoustic Scenes 2022 scenes in the baselines' class order (``label_ids`` in
# CPJKU/dcase2024_task1_baseline run_training.py: alphabetical).
TAU_LABELS = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall",
              "street_pedestrian", "street_traffic", "tram")

FAMILY = ("the CPJKU DCASE 2024 baseline CP-Mobile family (keys model.in_c.{0,1}.*, "
          "model.stages.s<i>.b<j>.block.{0,1,2}.*, model.feed_forward.{0,1}.*, and front-end buffers "
          "mel.0.kernel (optional), mel.1.spectrogram.window, mel.1.mel_scale.fb)")
_FAMILY_HINT = ("`asc-edge import` reads only CPJKU DCASE 2024 baseline-family checkpoints (CP-Mobile "
                "student + torchaudio Resample/MelSpectrogram front end), e.g. the SNTL-NTU students")

BASELINE_STRIDES = {"b2": (1, 1), "b3": (1, 2), "b4": (2, 1)}   # models/baseline.py get_model default
BASELINE_MULTIPLIER = 1.8         # DCASE 2024 baseline configuration
BASELINE_EXPANSION = 2.1

_BN = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"
_RE_IN_C = re.compile(rf"model\.in_c\.([01])\.(?:0\.weight|1\.{_BN})")
_RE_BLOCK = re.compile(rf"model\.stages\.s(\d+)\.b(\d+)\.block\.[012]\.(?:0\.weight|1\.{_BN})")
_RE_FF = re.compile(rf"model\.feed_forward\.(?:0\.weight|1\.{_BN})")


@dataclass
class ImportedCheckpoint:
    """A CPJKU-family checkpoint read, checked and mapped onto asc-edge's CP-Mobile.

    ``model``: our :class:`~asc_edge.models.CPMobile` with the checkpoint's weights loaded strictly
    (eval mode; input ``(batch, 1, n_mels, frames)``, output ``(batch, len(labels))`` logits).
    ``model_name`` / ``model_kwargs``: how :func:`asc_edge.models.build_model` rebuilds it.
    ``frontend``: the features it was trained on. ``labels``: class order of the logits.
    ``record``: the ``import`` record written into the asc-edge checkpoint (JSON-ready).
    """

    model: CPMobile
    model_name: str
    model_kwargs: dict
    frontend: FrontendConfig
    labels: tuple[str, ...]
    record: dict = field(default_factory=dict)

    def to_checkpoint(self) -> dict:
        """The asc-edge checkpoint dict (what :func:`asc_edge.checkpoint.load_checkpoint` reads)."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        return {
            "state_dict": state,
            "hyper_parameters": {
                "model_name": self.model_name,
                "model_kwargs": self.model_kwargs,
                "labels": list(self.labels),
                "frontend": self.frontend.to_dict(),
                "train": self.record["train"],
            },
            "import": self.record,
        }


# --------------------------------------------------------------------------- reading

def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape)


def _load_source(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found",
                              hint="pass the .ckpt file of a CPJKU-baseline-family run (e.g. "
                                   "../shared/models/sntl-ntu-dcase2024/*.ckpt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated / foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or not a PyTorch checkpoint") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a PyTorch Lightning checkpoint (no state_dict)", hint=_FAMILY_HINT)
    hp = ckpt.get("hyper_parameters")
    if isinstance(hp, dict) and "model_name" in hp and "frontend" in hp:
        raise CheckpointError(f"{path}: already an asc-edge checkpoint (model {hp['model_name']!r})",
                              hint="use it directly with `asc-edge evaluate` / `asc-edge export`")
    return ckpt


def _check_key_layout(path: Path, sd: dict) -> None:
    """Every key must belong to the family; the first one that does not is named."""
    for key, value in sd.items():
        ok = isinstance(key, str) and (key in MEL_KEYS or _RE_IN_C.fullmatch(key) or _RE_BLOCK.fullmatch(key)
                                       or _RE_FF.fullmatch(key))
        if not ok:
            raise CheckpointError(f"{path}: first unmatched key {key!r}: not part of {FAMILY}", hint=_FAMILY_HINT)
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a tensor", hint=_FAMILY_HINT)
    for key in ("model.in_c.0.0.weight", "model.in_c.1.0.weight", "model.feed_forward.0.weight",
                "mel.1.spectrogram.window", "mel.1.mel_scale.fb"):
        if key not in sd:
            raise CheckpointError(f"{path}: missing key {key!r} of {FAMILY}", hint=_FAMILY_HINT)



# --------------------------------------------------------------------------- network

def _pick(values: list[float], default: float) -> float:
    """The baseline value when it is among ``values``, else the coarsest-grid value closest to it."""
    if any(abs(v - default) < 1e-9 for v in values):
        return default

    def rank(v: float) -> tuple[int, float]:
        k = round(v * 100)
        return (0 if k % 10 == 0 else 1 if k % 5 == 0 else 2, abs(v - default))

    return min(values, key=rank)


def infer_cp_mobile_config(model_sd: dict, path: str | Path = "checkpoint") -> tuple[dict, dict]:
    """Infer the CP-Mobile configuration from the shapes of a baseline-family ``model.*`` state dict.

    ``model_sd``: keys with the ``model.`` prefix (e.g. ``model.in_c.1.0.weight``) → tensors.

    Returns ``(model_kwargs, notes)``: ``model_kwargs`` for :class:`~asc_edge.models.CPMobileConfig`
    (``in_channels``, ``base_channels``, ``channels_multiplier``, ``expansion_rate``, ``n_blocks``,
    ``strides``; ``n_classes`` is passed separately) and ``notes`` saying where each came from.
    The multiplier / expansion rate are the baseline's (1.8 / 2.1) when those reproduce every
    channel count after ``make_divisible(·, 8)``, else the consistent value on the coarsest grid
    (0.1, 0.05, 0.01) nearest to them. Strides are not stored; the baseline's default is used.

    Raises:
        CheckpointError: blocks not numbered b1, b2, … across stages s1, s2, …, or channel counts
            that no multiplier in [1, 4] / expansion rate in [1, 6] reproduces.
    """
    w = {k[len("model."):]: _shape(v) for k, v in model_sd.items()}
    base = w["in_c.1.0.weight"][0]
    in_channels = w["in_c.0.0.weight"][1]
    stages: dict[int, list[int]] = {}
    for key in model_sd:
        m = _RE_BLOCK.fullmatch(key)
        if m:
            blocks = stages.setdefault(int(m.group(1)), [])
            if int(m.group(2)) not in blocks:
                blocks.append(int(m.group(2)))
    if sorted(stages) != list(range(1, len(stages) + 1)) or not stages:
        raise CheckpointError(f"{path}: stages {sorted(stages)} are not s1, s2, … (no stage missing)",
                              hint=_FAMILY_HINT)
    order = [b for s in sorted(stages) for b in sorted(stages[s])]
    if order != list(range(1, len(order) + 1)):
        raise CheckpointError(f"{path}: blocks {order} are not numbered b1, b2, … across the stages",
                              hint=_FAMILY_HINT)
    n_blocks = tuple(len(stages[s]) for s in sorted(stages))
    for b_stage in sorted(stages):
        for b in stages[b_stage]:
            for part in ("0.0.weight", "2.0.weight"):
                if f"stages.s{b_stage}.b{b}.block.{part}" not in w:
                    raise CheckpointError(f"{path}: missing key 'model.stages.s{b_stage}.b{b}.block.{part}' "
                                          f"of {FAMILY}", hint=_FAMILY_HINT)
    stage_out = [w[f"stages.s{s}.b{stages[s][-1]}.block.2.0.weight"][0] for s in sorted(stages)]
    blocks = [(w[f"stages.s{s}.b{b}.block.0.0.weight"][1], w[f"stages.s{s}.b{b}.block.0.0.weight"][0])
              for s in sorted(stages) for b in stages[s]]          # (in channels, expanded channels)

    def widths(mult: float) -> list[int]:
        return CPMobileConfig(base_channels=base, channels_multiplier=mult,
                              n_blocks=n_blocks).channels_per_stage()[1:]

    mults = [k / 100 for k in range(100, 401) if widths(k / 100) == stage_out]
    if not mults:
        raise CheckpointError(f"{path}: stage widths {stage_out} are not make_divisible(base {base} × m^s, 8) "
                              f"for any channel multiplier m in 1.00–4.00", hint=_FAMILY_HINT)
    exps = [k / 100 for k in range(100, 601)
            if all(make_divisible(c_in * (k / 100), 8) == c_exp for c_in, c_exp in blocks)]
    if not exps:
        raise CheckpointError(f"{path}: expanded widths {[e for _, e in blocks]} of blocks with inputs "
                              f"{[i for i, _ in blocks]} match no expansion rate in 1.00–6.00", hint=_FAMILY_HINT)
    kwargs = {
        "in_channels": in_channels,
        "base_channels": base,
        "channels_multiplier": _pick(mults, BASELINE_MULTIPLIER),
        "expansion_rate": _pick(exps, BASELINE_EXPANSION),
        "n_blocks": list(n_blocks),
        "strides": {k: list(v) for k, v in BASELINE_STRIDES.items()},
    }
    notes = {
        "base_channels": f"rows of model.in_c.1.0.weight ({base}); stem conv has {w['in_c.0.0.weight'][0]} = base // 4",
        "in_channels": "columns of model.in_c.0.0.weight",
        "n_blocks": f"block keys per stage: {dict((f's{s}', [f'b{b}' for b in stages[s]]) for s in sorted(stages))}",
        "channels_multiplier": (f"stage widths {stage_out}; multipliers reproducing them: "
                                f"{mults[0]:.2f}–{mults[-1]:.2f} (step 0.01)"),
        "expansion_rate": (f"expanded widths {[e for _, e in blocks]} from inputs {[i for i, _ in blocks]}; "
                           f"rates reproducing them: {exps[0]:.2f}–{exps[-1]:.2f} (step 0.01)"),
        "strides": "not stored in the weights: CPJKU baseline get_model default b2=(1,1), b3=(1,2), b4=(2,1)",
    }
    return kwargs, notes


def _registry_name(kwargs: dict, n_classes: int) -> str:
    """The registered CP-Mobile name whose defaults give exactly this configuration, else 'cp-mobile'."""
    want = CPMobileConfig(n_classes=n_classes, **kwargs).to_dict()
    for name in ("cp-mobile", "cp-mobile-24"):
        spec = MODELS.get(name)
        if spec is not None and spec.factory is CPMobile and \
                CPMobileConfig(**{**spec.defaults, "n_classes": n_classes}).to_dict() == want:
            return name
    return "cp-mobile"


def _load_strict(path: Path, model: torch.nn.Module, model_sd: dict) -> None:
    """Every checkpoint key and shape must match the rebuilt model, and vice versa."""
    ours = {f"model.{k}": _shape(v) for k, v in model.state_dict().items()}
    for key, value in model_sd.items():
        if key not in ours:
            raise CheckpointError(f"{path}: first unmatched key {key!r}: not produced by the inferred CP-Mobile "
                                  f"configuration of {FAMILY}", hint=_FAMILY_HINT)
        if _shape(value) != ours[key]:
            raise CheckpointError(f"{path}: {key!r} has shape {_shape(value)}, the inferred CP-Mobile expects "
                                  f"{ours[key]}", hint=_FAMILY_HINT)
    missing = [k for k in ours if k not in model_sd]
    if missing:
        raise CheckpointError(f"{path}: missing key {missing[0]!r} ({len(missing)} missing) of {FAMILY}",
                              hint=_FAMILY_HINT)
    model.load_state_dict({k[len("model."):]: v for k, v in model_sd.items()}, strict=True)



# --------------------------------------------------------------------------- import

def read_cpjku_checkpoint(path: str | Path, hop_length: int = BASELINE_HOP_LENGTH) -> ImportedCheckpoint:
    """Read a CPJKU-baseline-family Lightning checkpoint and map it onto asc-edge (nothing is written).

    Steps: ``torch.load(map_location="cpu", weights_only=False)``; every ``state_dict`` key must be
    one of the family's (else the first unmatched key is named); CP-Mobile configuration from the
    ``model.*`` shapes (:func:`infer_cp_mobile_config`); our model built and loaded strictly (every
    key and shape, BatchNorm running statistics and ``num_batches_tracked`` included); frontend from
    the ``mel.*`` buffers, checked against ours (:func:`infer_frontend`); labels: :data:`TAU_LABELS`.

    Raises:
        CheckpointError: missing / unreadable file, an asc-edge checkpoint, a foreign key layout (names
            the first unmatched key and the expected family), a missing key, a shape mismatch, a head
            with other than 10 classes, or a front end asc-edge cannot reproduce (names the part).
    """
    path = Path(path)
    ckpt = _load_source(path)
    sd = ckpt["state_dict"]
    _check_key_layout(path, sd)
    model_sd = {k: v for k, v in sd.items() if k.startswith("model.")}
    mel_sd = {k: v for k, v in sd.items() if k.startswith("mel.")}
    n_classes = _shape(model_sd["model.feed_forward.0.weight"])[0]
    if n_classes != len(TAU_LABELS):
        raise CheckpointError(f"{path}: the classifier has {n_classes} outputs, the TAU22 scene list has "
                              f"{len(TAU_LABELS)}", hint="import only checkpoints trained on the 10 TAU22 scenes")
    kwargs, model_notes = infer_cp_mobile_config(model_sd, path)
    model_name = _registry_name(kwargs, n_classes)
    model = build_model(model_name, n_classes=n_classes, **kwargs)
    _load_strict(path, model, model_sd)
    model.eval()
    frontend, fe_notes = infer_frontend(mel_sd, path, hop_length=hop_length)

    from asc_edge.complexity import measure

    cx = measure(model, n_mels=frontend.n_mels, frames=frontend.n_frames, in_channels=kwargs["in_channels"])
    split = re.search(r"split(\d+)", path.stem)
    train = {
        "source": "imported: CPJKU DCASE 2024 baseline-family Lightning checkpoint (asc-edge import)",
        "dataset": "TAU Urban Acoustic Scenes 2022 Mobile development (not part of this repository)",
        "data": None, "splits_dir": None,
        "split": split.group(1) if split else None,
        "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
    }
    record = {
        "format": IMPORT_FORMAT,
        "source": str(path.resolve()),
        "source_sha256": file_sha256(path),
        "source_bytes": path.stat().st_size,
        "source_pytorch_lightning_version": ckpt.get("pytorch-lightning_version"),
        "family": "CPJKU DCASE 2024 baseline CP-Mobile (models/baseline.py) + torchaudio Resample/MelSpectrogram",
        "model_name": model_name,
        "inferred": {"model_kwargs": kwargs, "n_classes": n_classes, "frontend": frontend.to_dict()},
        "sources": {"model": model_notes, "frontend": {k: v for k, v in fe_notes.items() if k != "resampler"},
                    "labels": "not stored: CPJKU baseline run_training.py label_ids (alphabetical TAU22 scenes)"},
        "resampler": fe_notes["resampler"],
        "mapping": {
            "model.*": f"identity onto asc-edge CPMobile ({len(model_sd)} tensors incl. BatchNorm running "
                       f"statistics and num_batches_tracked), strict load",
            "mel.*": "dropped: asc_edge.features.LogMel recomputes the window and filterbank from the "
                     "frontend settings, asc_edge.features.cpjku.SincResampler the resampler kernel "
                     "(when mel.0.kernel is present: frontend resampler sinc_hann; checked equal within the "
                     "recorded differences)",
            "ignored": sorted(k for k in ckpt if k not in ("state_dict",)),
        },
        "complexity": cx.to_dict(),
        "train": train,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return ImportedCheckpoint(model=model, model_name=model_name, model_kwargs=kwargs, frontend=frontend,
                              labels=TAU_LABELS, record=record)


def _resampler_line(rec: dict) -> str:
    """The import log's resampler summary, from the record's ``resampler`` notes."""
    if not rec.get("present"):
        return "no resampler in the checkpoint (audio used at 44.1 kHz)"
    return (f"resampler: the checkpoint's own ({rec['orig']}:{rec['new']} torchaudio sinc_interp_hann, stored "
            f"kernel reproduced to {rec['resampler_kernel_max_abs_diff']:.2g})")


def _previous_source_sha256(import_json: Path) -> str | None:
    """``source_sha256`` recorded in an existing ``import.json`` (None: no file or unreadable)."""
    try:
        return json.loads(import_json.read_text(encoding="utf-8")).get("source_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def default_output(path: str | Path) -> Path:
    """``runs/imported/<checkpoint stem>/model.ckpt`` (relative to the working directory; runs/ is git-ignored)."""
    return Path("runs") / "imported" / Path(path).stem / "model.ckpt"


def import_cpjku_checkpoint(path: str | Path, out: str | Path | None = None, *,
                            hop_length: int = BASELINE_HOP_LENGTH,
                            log: Callable[[str], None] | None = None) -> Path:
    """Import a CPJKU-baseline-family Lightning checkpoint as an asc-edge checkpoint; returns its path.

    ``out``: a ``.ckpt`` file, or a folder that gets ``model.ckpt``; default
    ``runs/imported/<checkpoint stem>/model.ckpt``. Written atomically (temp file + rename) with an
    ``import.json`` copy of the import record beside it. The checkpoint holds ``state_dict``
    (``model.*``), ``hyper_parameters`` (``model_name``, ``model_kwargs``, ``labels``, ``frontend``,
    ``train``) and ``import`` (source path, sha256, inferred configuration, where each value came
    from, mapping notes, complexity); :func:`asc_edge.checkpoint.load_checkpoint` reads it.

    Raises:
        CheckpointError: see :func:`read_cpjku_checkpoint`; also an unwritable output path.
    """
    from asc_edge.report.io import atomic_write, write_json_atomic

    imported = read_cpjku_checkpoint(path, hop_length=hop_length)
    target = Path(out) if out is not None else default_output(path)
    if target.suffix != ".ckpt":
        target = target / "model.ckpt"
    if out is None:  # the default folder is named after the file's stem: two last.ckpt must not collide
        prev = _previous_source_sha256(target.parent / "import.json")
        if prev is not None and prev != imported.record["source_sha256"]:
            alt = target.parent.with_name(f"{target.parent.name}-{imported.record['source_sha256'][:8]}")
            raise CheckpointError(f"{target.parent} already holds the import of another checkpoint "
                                  f"(sha256 {prev[:12]}…, not {imported.record['source_sha256'][:12]}…)",
                                  hint=f"import this one elsewhere: --out {alt}")
    ckpt = imported.to_checkpoint()
    try:
        atomic_write(target, lambda fh: torch.save(ckpt, fh))
        write_json_atomic(target.parent / "import.json", imported.record)
    except OSError as exc:
        raise CheckpointError(f"{target}: cannot write the imported checkpoint ({exc.strerror or exc})",
                              hint="choose a writable --out path") from None
    if log is not None:
        fe, cx = imported.frontend, imported.record["complexity"]
        kw = imported.model_kwargs
        log(f"imported {path} -> {target}")
        log(f"model {imported.model_name}: base {kw['base_channels']}, multiplier {kw['channels_multiplier']}, "
            f"expansion {kw['expansion_rate']}, blocks {kw['n_blocks']}; {cx['params']:,} params, "
            f"{cx['macs']:,} MACs for input {tuple(cx['input_shape'])}")
        log(f"frontend: {fe.sample_rate} Hz, n_fft {fe.n_fft}, window {fe.win_length}, hop {fe.hop_length}, "
            f"{fe.n_mels} mels {fe.f_min:g}-{fe.f_max_hz:g} Hz; " + _resampler_line(imported.record["resampler"]))
        log(f"labels: {', '.join(imported.labels)}")
        from asc_edge.complexity import Complexity

        problems = Complexity(params=cx["params"], macs=cx["macs"], input_shape=tuple(cx["input_shape"])) \
            .budget_problems("int8")
        if problems:
            log(f"warning: over the DCASE Task 1 budget ({'; '.join(problems)}); `asc-edge export` needs "
                "--allow-over-budget")
    return target

