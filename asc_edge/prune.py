"""Structured L1-norm filter pruning (AI4EDGE, DCASE 2023 Task 1): smaller dense models, same family.

Each convolution's output filters are ranked by the L1 norm of their kernel weights (Li et al., "Pruning
Filters for Efficient ConvNets", ICLR 2017, the criterion AI4EDGE uses) and the smallest are removed.
The network is then *rebuilt*, dense and smaller: the BatchNorm after a pruned conv loses the same
channels, the consumer (the next conv's input channels, or the dense head's flattened inputs) loses the
matching slices.

The dependency analysis and the surgery are Torch-Pruning's (PyPI ``torch-pruning``,
:class:`torch_pruning.DependencyGraph`, which traces the network and groups every layer coupled to a
conv's output channels: BN, consumers, flatten → linear, residual and concat groups); the ranking is its
``MagnitudeImportance(p=1, normalizer=None, group_reduction="first")``, the documented "standard L1 norm
of the first layer in a group", i.e. the conv's own filter norms.

A pruned model must stay buildable by the registry (export, bench and :func:`load_checkpoint` rebuild
models by name + ``model_kwargs``), so pruning is offered only where the family's keyword arguments can
express the new widths: the AI4EDGE SM family (sm1, sm2, sm3), whose ``convs`` setting holds every
layer's filter count. The result is ``build_model(name, **new_kwargs)`` with the kept weights copied in
(strict load), never the surgically modified module itself. Other families raise one
:class:`~asc_edge.errors.ConfigError`.

>>> pruned, kwargs, report = prune_model(model, "sm3", {}, filters=[20, 22, 22, 24, 24, 16])
>>> kwargs["convs"]            # [[20, 7, 5], [22, 7, 3], [22, 7, 3], [24, 3, 7], [24, 3, 7], [16, 7, 5]]

``prune_run`` is ``asc-edge prune RUN``: prune a run's checkpoint, fine-tune it with the run's own
recipe (:func:`asc_edge.train.train` with ``init_checkpoint`` = the pruned weights) into
``<out>/<run>_pruned``.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .complexity import measure
from .errors import CheckpointError, ConfigError

#: The families whose widths the registry's keyword arguments express (the refusal's hint).
_SUPPORTED = "the AI4EDGE SM family (sm1, sm2, sm3), whose `convs` setting holds every layer's filter count"


def _sm_class():
    from .models.ai4edge_sm import AI4EdgeSM

    return AI4EdgeSM


def _count_params(model: nn.Module) -> int:
    """Trainable + non-trainable parameters (as torchinfo's ``total_params``; BN statistics are buffers)."""
    return sum(p.numel() for p in model.parameters())


def _check_prunable(model: nn.Module, model_name: str, model_kwargs: dict):
    """The registry spec of ``model_name``; ConfigError unless the family is supported and
    ``model_kwargs`` rebuild exactly ``model``'s configuration."""
    from .models import build_model, get_spec

    spec = get_spec(model_name)
    cls = _sm_class()
    if spec.factory is not cls or not isinstance(model, cls):
        raise ConfigError(f"prune: cannot express pruned widths of model {model_name!r} "
                          f"({type(model).__name__}) through its registry settings",
                          hint=f"pruning supports {_SUPPORTED}; other families would need a width setting "
                               "per layer before their pruned models could be exported or reloaded")
    ref = build_model(model_name, n_classes=model.config.n_classes, **dict(model_kwargs or {}))
    if ref.config != model.config:
        raise ConfigError(f"prune: model_kwargs {model_kwargs!r} do not rebuild the given {model_name!r} model "
                          f"(registry + kwargs give {ref.config}, the model is {model.config})",
                          hint="pass the model_kwargs the model was built (or trained) with")
    return spec


def l1_filter_norms(conv: nn.Conv2d) -> torch.Tensor:
    """L1 norm of each output filter's kernel weights, shape ``(out_channels,)`` (bias not included)."""
    return conv.weight.detach().abs().flatten(1).sum(1)


def _input_shape(model: nn.Module, model_name: str) -> tuple[int, int, int]:
    """(channels, n_mels, frames) of the model's frontend preset; the model's own configured input
    where a non-default ``n_mels`` / ``n_frames`` setting makes it differ (SM models accept only that)."""
    from .features import get_frontend
    from .models import get_spec

    preset = tuple(get_frontend(get_spec(model_name).frontend).shape)
    c = model.config
    own = (c.in_channels, c.n_mels, c.n_frames)
    return preset if preset == own else own


def _uniform_counts(model_name: str, base_kwargs: dict, convs: list[tuple[int, int, int]], n_classes: int,
                    target_params: int) -> list[int]:
    """Largest uniform keep ratio r (per layer ``max(1, floor(r · filters))``) whose rebuilt model has
    ≤ ``target_params`` parameters (the candidates are the ratios k / filters_i at which a count
    changes), then filters given back one at a time, to the layer with the smallest kept fraction, while
    the model still fits."""
    from .models import build_model

    def params_for(counts: list[int]) -> int:
        kw = {**base_kwargs, "convs": [[n, kh, kw_] for n, (_, kh, kw_) in zip(counts, convs)]}
        return _count_params(build_model(model_name, n_classes=n_classes, **kw))

    def counts_for(r: float) -> list[int]:
        return [max(1, min(c, math.floor(r * c + 1e-9))) for c, _, _ in convs]

    ratios = sorted({k / c for c, _, _ in convs for k in range(1, c + 1)}, reverse=True)
    lo, hi = 0, len(ratios) - 1            # params decrease with the index; find the first index that fits
    if params_for(counts_for(ratios[hi])) > target_params:
        smallest = params_for([1] * len(convs))
        raise ConfigError(f"prune: no uniform filter ratio reaches {target_params:,} parameters "
                          f"(one filter per layer still has {smallest:,})",
                          hint="give a larger --target-params, or explicit --filters")
    while lo < hi:
        mid = (lo + hi) // 2
        if params_for(counts_for(ratios[mid])) <= target_params:
            hi = mid
        else:
            lo = mid + 1
    counts = counts_for(ratios[lo])
    # Fill the rounding slack: give a filter back to the layer with the smallest kept fraction while the
    # model still fits (keeps the ratios near-uniform).
    while True:
        order = sorted((n / c, i) for i, (n, (c, _, _)) in enumerate(zip(counts, convs)) if n < c)
        for _, i in order:
            trial = counts[:i] + [counts[i] + 1] + counts[i + 1:]
            if params_for(trial) <= target_params:
                counts = trial
                break
        else:
            return counts


def prune_model(model: nn.Module, model_name: str, model_kwargs: dict | None = None, *,
                filters: list[int] | None = None,
                target_params: int | None = None) -> tuple[nn.Module, dict, dict]:
    """Remove each conv's smallest-L1 filters and rebuild a smaller dense model of the same family.

    Args:
        model: the network (left unchanged), e.g. ``load_checkpoint(run).model``.
        model_name, model_kwargs: how the registry builds ``model`` (``build_model(model_name,
            **model_kwargs)``; the checkpoint's ``hyper_parameters``).
        filters: filters to keep per conv, in order (SM3: 6 numbers, e.g. ``[20, 22, 22, 24, 24, 16]``).
        target_params: instead of ``filters``: keep the same fraction r of every conv's filters (at
            least one), r the largest for which the pruned model has ≤ ``target_params`` parameters,
            then single filters given back (to the most-pruned layer first) while it still fits.

    Returns:
        ``(pruned_model, new_model_kwargs, report)``: ``pruned_model`` is ``build_model(model_name,
        **new_model_kwargs)`` holding the kept weights (same train/eval mode as ``model``);
        ``new_model_kwargs`` is ``model_kwargs`` with ``convs`` replaced (JSON lists); ``report`` (JSON-able)
        has per layer ``before`` / ``after`` / ``kept`` / ``removed`` filter indices and their L1 norms,
        and ``before`` / ``after`` complexity (:func:`asc_edge.complexity.measure` at the frontend
        preset's input shape).

    Raises:
        ConfigError: a family whose widths the registry settings cannot express, kwargs that do not
            describe ``model``, neither or both of ``filters`` / ``target_params``, counts outside
            ``1 … current`` or of the wrong length, an unreachable ``target_params``.
    """
    import torch_pruning as tp

    from .models import build_model

    model_kwargs = dict(model_kwargs or {})
    _check_prunable(model, model_name, model_kwargs)
    if (filters is None) == (target_params is None):
        raise ConfigError("prune: give exactly one of filters (per-layer counts) or target_params",
                          hint="e.g. filters=[20, 22, 22, 24, 24, 16] (--filters 20,22,22,24,24,16) or "
                               "target_params=61200 (--target-params 61200)")
    cfg = model.config
    convs = [tuple(int(v) for v in c) for c in cfg.convs]
    current = [c[0] for c in convs]
    if target_params is not None:
        if int(target_params) < 1:
            raise ConfigError(f"prune: target_params {target_params} must be positive",
                              hint="the parameter count the pruned model may have, e.g. 61200")
        counts = _uniform_counts(model_name, model_kwargs, convs, cfg.n_classes, int(target_params))
    else:
        counts = [int(f) for f in filters]
        if len(counts) != len(convs) or any(not 1 <= n <= c for n, c in zip(counts, current)):
            raise ConfigError(f"prune: filters {counts} do not fit {model_name!r}'s {len(convs)} convs with "
                              f"{current} filters",
                              hint=f"give {len(convs)} counts, each between 1 and the layer's current count "
                                   f"(e.g. {','.join(map(str, current))})")

    shape = _input_shape(model, model_name)
    before = measure(model, shape[1], shape[2], shape[0])

    work = copy.deepcopy(model).cpu().eval()   # eval: the tracing forward must not touch BN statistics
    example = torch.zeros(1, *shape)
    with torch.enable_grad():                  # the graph is traced through autograd
        graph = tp.DependencyGraph().build_dependency(work, example_inputs=example)
    importance = tp.importance.MagnitudeImportance(p=1, normalizer=None, group_reduction="first")
    conv_layers = [m for m in work.features if isinstance(m, nn.Conv2d)]
    assert len(conv_layers) == len(convs)
    layers = []
    # Rank every layer on the unpruned network (the AI4EDGE / Li et al. one-shot scheme), prune afterwards.
    plans = []
    for i, (conv, keep) in enumerate(zip(conv_layers, counts)):
        group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))
        scores = importance(group).detach().cpu()
        order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))   # stable: ties keep lower index
        kept, removed = sorted(order[:keep]), sorted(order[keep:])
        plans.append((conv, removed))
        layers.append({"layer": f"conv{i + 1}", "module": _module_name(model, i),
                       "kernel": list(convs[i][1:]), "before": convs[i][0], "after": keep,
                       "kept": kept, "removed": removed,
                       "l1_kept": [round(float(scores[j]), 6) for j in kept],
                       "l1_removed": [round(float(scores[j]), 6) for j in removed]})
    for conv, removed in plans:
        if removed:
            group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=removed)
            if not graph.check_pruning_group(group):
                raise ConfigError(f"prune: removing {len(removed)} filters of {conv} would leave a layer empty",
                                  hint="keep at least one filter per layer")
            group.prune()

    new_kwargs = {**model_kwargs, "convs": [[n, kh, kw] for n, (_, kh, kw) in zip(counts, convs)]}
    pruned = build_model(model_name, n_classes=cfg.n_classes, **new_kwargs)
    try:
        pruned.load_state_dict(work.state_dict(), strict=True)
    except RuntimeError as exc:  # the registry's model and the pruned graph disagree: a bug, say where
        raise ConfigError(f"prune: the rebuilt {model_name!r} does not match the pruned network: "
                          f"{str(exc).splitlines()[0]}",
                          hint="report this: the family's layer layout changed without prune.py") from None
    pruned.train(model.training)
    after = measure(pruned, shape[1], shape[2], shape[0])
    report = {
        "model": model_name, "method": "L1-norm filter pruning (Li et al. 2017; AI4EDGE DCASE 2023), "
                                        f"torch-pruning {_tp_version()}",
        "mode": "filters" if filters is not None else "target_params",
        "target_params": None if target_params is None else int(target_params),
        "filters_before": current, "filters_after": counts, "layers": layers,
        "model_kwargs": new_kwargs, "before": before.to_dict(), "after": after.to_dict(),
    }
    return pruned, new_kwargs, report


def _tp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch-pruning")
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        return "?"


def _module_name(model: nn.Module, conv_index: int) -> str:
    """``features.<k>`` of the conv_index-th conv (the state-dict prefix)."""
    convs = [f"features.{k}" for k, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    return convs[conv_index]


def parse_filters(text: str) -> list[int]:
    """``"20,22,22,24,24,16"`` → ``[20, 22, 22, 24, 24, 16]``.

    Raises:
        ConfigError: anything but comma-separated positive integers."""
    try:
        counts = [int(t) for t in text.replace(" ", "").split(",")]
    except ValueError:
        counts = []
    if not counts or any(n < 1 for n in counts):
        raise ConfigError(f"--filters {text!r} is not a comma-separated list of filter counts",
                          hint="one positive integer per conv layer, e.g. --filters 20,22,22,24,24,16")
    return counts


def format_summary(report: dict) -> list[str]:
    """Human-readable lines: per layer filters before → after, params and MACs before → after."""
    b, a = report["before"], report["after"]
    lines = [f"{lay['layer']}: {lay['before']} -> {lay['after']} filters" for lay in report["layers"]]
    lines.append(f"params {b['params']:,} -> {a['params']:,} ({a['params'] / b['params'] - 1:+.1%}), "
                 f"MACs {b['macs'] / 1e6:.2f} M -> {a['macs'] / 1e6:.2f} M ({a['macs'] / b['macs'] - 1:+.1%})")
    return lines


def prune_run(run: str | Path, *, filters: list[int] | None = None, target_params: int | None = None,
              epochs: int | None = None, out: str | Path | None = None, progress: bool | None = None,
              logger: str | None = None, log: Callable[[str], None] = print) -> tuple[Path | None, dict]:
    """``asc-edge prune``: prune a run's checkpoint and fine-tune it with the run's own recipe.

    The run's saved :class:`~asc_edge.train.TrainConfig` (``report.json["config"]``) is reused with
    ``model_kwargs`` = the pruned widths, ``init_checkpoint`` = the pruned weights, ``epochs`` (default:
    the run's), name ``<run>_pruned`` and ``out`` (default: the run's parent folder); teachers / KD
    settings stay as they were. The new run directory gets ``pruned_init.ckpt`` (the pruned weights
    before fine-tuning, a loadable asc-edge checkpoint; the config's ``init_checkpoint`` points at it)
    and ``report.json["prune"]`` (the pruning report).

    Returns:
        (new run directory, or None in non-zero DDP ranks; pruning report).

    Raises:
        ConfigError, CheckpointError: not a run directory, unsupported model, bad counts / epochs;
            DataError etc. from training.
    """
    from .checkpoint import load_checkpoint, state_dict_sha256
    from .report.io import write_json_atomic
    from .train import train
    from .train.config import TrainConfig

    run = Path(run)
    run_dir = run.parent if run.is_file() else run
    report_path = run_dir / "report.json"
    if not (run_dir / "model.ckpt").is_file() or not report_path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (needs model.ckpt and report.json)",
                              hint="pass a run directory written by `asc-edge train`")
    try:
        cfg = TrainConfig.from_dict(json.loads(report_path.read_text(encoding="utf-8"))["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{report_path}: no readable training config ({type(exc).__name__}: {exc})",
                              hint="prune a run written by `asc-edge train` (its report.json holds the recipe)") \
            from None
    if epochs is not None and epochs < 1:
        raise ConfigError(f"--epochs {epochs} must be at least 1", hint="fine-tuning epochs, e.g. --epochs 10")
    loaded = load_checkpoint(run_dir / "model.ckpt")
    model_kwargs = dict(loaded.hparams.get("model_kwargs", {}))
    pruned, new_kwargs, report = prune_model(loaded.model, loaded.model_name, model_kwargs, filters=filters,
                                             target_params=target_params)
    for line in format_summary(report):
        log(line)

    old_epochs = cfg.epochs
    cfg.model_kwargs = new_kwargs
    cfg.epochs = int(epochs) if epochs is not None else cfg.epochs
    if cfg.rrs_relational_epochs is not None:   # keep the relational / response split of the run
        cfg.rrs_relational_epochs = min(cfg.epochs, round(cfg.rrs_relational_epochs * cfg.epochs / old_epochs))
    cfg.name = f"{run_dir.name}_pruned"
    cfg.out = str(out) if out is not None else str(run_dir.parent)
    if progress is not None:
        cfg.progress = progress
    if logger is not None:  # --logger (default: the run's own setting)
        cfg.logger = logger

    with tempfile.TemporaryDirectory(prefix="asc-edge-prune-") as tmp:
        init = Path(tmp) / "pruned_init.ckpt"
        hp = dict(loaded.hparams)
        hp["model_kwargs"] = new_kwargs
        state = {"model." + k: v for k, v in pruned.state_dict().items()}
        torch.save({"state_dict": state, "hyper_parameters": hp,
                    "asc_edge": {"state_dict_sha256": state_dict_sha256(state)}}, init)
        cfg.init_checkpoint = str(init)
        new_run = train(cfg)
        if new_run is None:
            return None, report
        shutil.copyfile(init, new_run / "pruned_init.ckpt")
    run_report = json.loads((new_run / "report.json").read_text(encoding="utf-8"))
    run_report["config"]["init_checkpoint"] = str(new_run / "pruned_init.ckpt")
    run_report["prune"] = {**report, "source_run": str(run_dir)}
    write_json_atomic(new_run / "report.json", run_report)
    return new_run, report
