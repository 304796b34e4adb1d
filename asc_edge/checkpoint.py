"""Read the checkpoints that ``asc-edge train`` writes.

A checkpoint is a PyTorch Lightning ``.ckpt`` whose ``state_dict`` holds the network under
``model.*`` (the CPJKU DCASE baseline layout) and whose ``hyper_parameters`` say how to rebuild
it: ``model_name``, ``model_kwargs``, ``labels`` (class order of the logits) and ``frontend``
(the :class:`~asc_edge.features.FrontendConfig` the model was trained on).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError
from .features import FrontendConfig
from .models import LogitEnsemble, build_model


def state_dict_sha256(state_dict: dict) -> str:
    """SHA-256 of a state dict's content: every entry in key order, its name, dtype, shape and raw
    bytes. ``asc-edge train`` records it as ``ckpt["asc_edge"]["state_dict_sha256"]`` and
    :func:`load_checkpoint` checks it, so a bit flip or an edit of the weights is caught."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        h.update(key.encode("utf-8") + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode() + b"\0")
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A rebuilt network plus what is needed to feed it and read its logits.

    ``model``: in eval mode, input ``(batch, 1, n_mels, frames)``, output ``(batch, len(labels))``.
    """

    model: nn.Module
    model_name: str
    labels: tuple[str, ...]
    frontend: FrontendConfig
    path: Path
    hparams: dict = field(default_factory=dict)


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Rebuild the model stored in an ``asc-edge train`` checkpoint (strict state-dict load).

    Raises:
        CheckpointError: file missing or unreadable, not written by asc-edge, or weights that do
            not match the recorded architecture.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.ckpt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found",
                              hint="pass a run directory from `asc-edge train` or its model.ckpt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated / foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})",
                              hint="the file is truncated or not a PyTorch checkpoint; re-run training") from None
    hp = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    if "model_name" not in hp or "state_dict" not in ckpt:
        cpjku = isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict) and \
            any(str(k).startswith("mel.") for k in ckpt["state_dict"])
        raise CheckpointError(f"{path}: not an asc-edge checkpoint (no model_name / state_dict)"
                              + (": it looks like a CPJKU DCASE baseline-family checkpoint" if cpjku else ""),
                              hint=f"`asc-edge import {path}` converts it" if cpjku
                              else "use a checkpoint written by `asc-edge train` or `asc-edge import`")
    if not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{path}: its state_dict is not a dict of tensors",
                              hint="use a checkpoint written by `asc-edge train` (or `asc-edge import`)")
    recorded = ckpt.get("asc_edge", {}).get("state_dict_sha256") if isinstance(ckpt.get("asc_edge"), dict) else None
    if recorded is not None and recorded != state_dict_sha256(ckpt["state_dict"]):
        raise CheckpointError(f"{path}: weights changed since training: bit flips or an edit "
                              "(state_dict sha256 differs from the one recorded when it was written)",
                              hint="restore the file from a backup or re-run `asc-edge train`")
    labels = hp.get("labels")
    if not isinstance(labels, (list, tuple)) or not labels or not all(isinstance(x, str) for x in labels):
        raise CheckpointError(f"{path}: hyper_parameters has no labels (the class order of the logits)",
                              hint="use a checkpoint written by `asc-edge train`, or `asc-edge import` "
                                   "for a CPJKU-family one")
    if "frontend" not in hp:
        raise CheckpointError(f"{path}: hyper_parameters has no frontend (the log-mel settings it was trained on)",
                              hint="use a checkpoint written by `asc-edge train`, or `asc-edge import` "
                                   "for a CPJKU-family one")
    labels = tuple(labels)
    model = build_model(hp["model_name"], n_classes=len(labels), **hp.get("model_kwargs", {}))
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise CheckpointError(f"{path}: weights do not match {hp['model_name']!r}: {' '.join(first)}",
                              hint="the checkpoint was written by a different model definition") from None
    model.eval()
    return LoadedModel(model=model, model_name=hp["model_name"], labels=labels,
                       frontend=FrontendConfig.from_dict(hp["frontend"]), path=path, hparams=hp)


def load_ensemble(paths: list[str | Path]) -> LoadedModel:
    """Load one or several checkpoints as one logit-averaged teacher.

    All members must share the label order and the frontend.

    Raises:
        CheckpointError: as :func:`load_checkpoint`, or members that disagree on labels/frontend.
    """
    members = [load_checkpoint(p) for p in paths]
    first = members[0]
    for m in members[1:]:
        if m.labels != first.labels or m.frontend != first.frontend:
            raise CheckpointError(f"{m.path}: labels or frontend differ from {first.path}",
                                  hint="ensemble only teachers trained on the same label set and features")
    if len(members) == 1:
        return first
    ens = LogitEnsemble([m.model for m in members]).eval()
    return LoadedModel(model=ens, model_name="ensemble(" + ",".join(m.model_name for m in members) + ")",
                       labels=first.labels, frontend=first.frontend, path=first.path,
                       hparams={"members": [str(m.path) for m in members]})


@torch.no_grad()
def predict_logits(model: nn.Module, features, batch_size: int = 128) -> "torch.Tensor":
    """Logits ``(N, n_classes)`` float32 for features ``(N, 1, n_mels, frames)`` (numpy or tensor)."""
    x = torch.as_tensor(features)
    model.eval()
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else \
        torch.zeros(0, 0)
