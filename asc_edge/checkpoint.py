"""Read the checkpoints that ``asc-edge train`` writes.

A checkpoint is a PyTorch Lightning ``.ckpt`` whose ``state_dict`` holds the network under
``model.*`` (the CPJKU DCASE baseline layout) and whose ``hyper_parameters`` say how to rebuild
it: ``model_name``, ``model_kwargs``, ``labels`` (class order of the logits) and ``frontend``
(the :class:`~asc_edge.features.FrontendConfig` the model was trained on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError
from .features import FrontendConfig
from .models import LogitEnsemble, build_model


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
        raise CheckpointError(f"{path}: not an asc-edge checkpoint (no model_name / state_dict)",
                              hint="use a checkpoint written by `asc-edge train`")
    labels = tuple(hp["labels"])
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
