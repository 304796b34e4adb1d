"""Classification metrics for DCASE Task 1 style evaluation.

DCASE Task 1 ranks by *macro* (class-wise averaged) accuracy: the accuracy of each scene
class is computed separately and the ten values are averaged, so every class counts the
same whatever its number of clips. The CP-JKU baselines log the same quantity as
``macro_avg_acc`` (mean of per-label accuracies). Overall (micro) top-1 accuracy and the
cross-entropy (log loss) are reported next to it, plus per-class and per-device breakdowns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asc_edge.errors import DataError

__all__ = ["classification_metrics", "log_softmax_np"]


def log_softmax_np(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def classification_metrics(logits: np.ndarray, targets: np.ndarray, labels: Sequence[str],
                           devices: Sequence[str]) -> dict:
    """Metrics of ``N`` clip predictions over ``C`` classes.

    Args:
        logits: (N, C) raw scores (pre-softmax); the prediction is the arg-max.
        targets: (N,) integer class indices in ``[0, C)``.
        labels: the ``C`` class names, index-aligned with the logit columns.
        devices: (N,) recording-device id of each clip (e.g. ``"a"``, ``"s4"``).

    Returns a JSON-ready dict (plain Python numbers):

    * ``n_clips``: N.
    * ``accuracy``: overall top-1 accuracy (micro average over clips).
    * ``macro_accuracy``: mean of the per-class accuracies (DCASE's class-wise average).
      Classes without any clip have per-class accuracy ``None`` and are left out of the mean
      (a class that cannot be evaluated neither helps nor hurts).
    * ``log_loss``: mean over clips of ``-ln softmax(logits)[target]`` (natural log).
    * ``macro_log_loss``: mean over classes (with clips) of the per-class mean log loss
      (the class-wise averaged variant); equals ``log_loss`` on a balanced set.
    * ``per_class_accuracy``: ``{label: acc or None}`` in label order.
    * ``per_class_count``: ``{label: n clips}``.
    * ``per_device_accuracy`` / ``per_device_count``: ``{device: ...}`` for the devices that
      occur, sorted by name (``a, b, c, s1, ...``).
    * ``confusion_matrix``: C×C ``list[list[int]]``, rows = true class, columns = predicted.
    * ``labels``: the class names (row/column order of the matrix).
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    labels = [str(label) for label in labels]
    devices = [str(d) for d in devices]
    hint = "pass logits (N, C), integer targets (N,), C labels and N device ids from the same clips"
    if logits.ndim != 2:
        raise DataError(f"classification_metrics: logits must be 2-D (N, C), got shape {logits.shape}", hint=hint)
    n, c = logits.shape
    if n == 0:
        raise DataError("classification_metrics: no clips to evaluate", hint="check that the evaluation split is not empty")
    if len(labels) != c:
        raise DataError(f"classification_metrics: {len(labels)} labels for {c} logit columns", hint=hint)
    if len(set(labels)) != c:
        raise DataError("classification_metrics: duplicate class labels", hint="give every class a distinct name")
    if targets.shape != (n,):
        raise DataError(f"classification_metrics: targets of shape {targets.shape} for {n} clips", hint=hint)
    if len(devices) != n:
        raise DataError(f"classification_metrics: {len(devices)} device ids for {n} clips", hint=hint)
    if not np.issubdtype(targets.dtype, np.integer):
        if np.issubdtype(targets.dtype, np.floating) and np.all(np.mod(targets, 1) == 0):
            targets = targets.astype(np.int64)
        else:
            raise DataError(f"classification_metrics: targets must be integer class indices, got {targets.dtype}",
                            hint=hint)
    targets = targets.astype(np.int64)
    if targets.min() < 0 or targets.max() >= c:
        raise DataError(f"classification_metrics: target index out of range [0, {c}) "
                        f"(min {targets.min()}, max {targets.max()})", hint=hint)
    if not np.all(np.isfinite(logits)):
        raise DataError("classification_metrics: logits contain NaN or inf",
                        hint="the model diverged or the checkpoint is broken; inspect the training log")

    logp = log_softmax_np(logits)
    nll = -logp[np.arange(n), targets]
    preds = logits.argmax(axis=1)
    correct = preds == targets

    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (targets, preds), 1)

    per_class_acc: dict[str, float | None] = {}
    per_class_n: dict[str, int] = {}
    class_accs, class_losses = [], []
    for k, label in enumerate(labels):
        sel = targets == k
        cnt = int(sel.sum())
        per_class_n[label] = cnt
        if cnt == 0:
            per_class_acc[label] = None
            continue
        acc = float(correct[sel].mean())
        per_class_acc[label] = acc
        class_accs.append(acc)
        class_losses.append(float(nll[sel].mean()))

    dev_arr = np.asarray(devices, dtype=object)
    per_dev_acc: dict[str, float] = {}
    per_dev_n: dict[str, int] = {}
    for d in sorted(set(devices)):
        sel = dev_arr == d
        per_dev_n[d] = int(sel.sum())
        per_dev_acc[d] = float(correct[sel].mean())

    return {
        "n_clips": int(n),
        "accuracy": float(correct.mean()),
        "macro_accuracy": float(np.mean(class_accs)),
        "log_loss": float(nll.mean()),
        "macro_log_loss": float(np.mean(class_losses)),
        "per_class_accuracy": per_class_acc,
        "per_class_count": per_class_n,
        "per_device_accuracy": per_dev_acc,
        "per_device_count": per_dev_n,
        "confusion_matrix": cm.tolist(),
        "labels": labels,
    }
