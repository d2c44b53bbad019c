"""Evaluation metrics on whole validation sets (numpy in, plain floats out; scikit-learn inside).

Every function returns keys without a split prefix (``acc``, ``auc``, ...); the task adds one.
A metric that is undefined on the data (e.g. AUC with one class present) is NaN.

Ranking metrics (ROC-AUC, AP) rank the logits themselves, never probabilities: in float64
``sigmoid`` saturates to exactly 1.0 above a logit of about 37, so confident scores would tie
and the ranking would change. A video's score is the mean of its frames' logits.

Non-finite logits (NaN/inf) are never thresholded or ranked: a metric that would read one is
NaN (a NaN logit is not "real", nor any class), never a scikit-learn error.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
)


def metric_key(text: str) -> str:
    """A name made safe for a metric key: letters, digits and ``_`` only."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_") or "x"


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(roc_auc_score(labels, scores))


def _ap(labels: np.ndarray, scores: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(average_precision_score(labels, scores))


def binary_metrics(
    logits: np.ndarray, labels: np.ndarray, video: np.ndarray | None = None
) -> dict[str, float]:
    """``logits`` ``[N]``, ``labels`` ``[N]`` in {0, 1}, ``video`` ``[N]`` (-1 = none).

    Frame-level accuracy at p = 0.5 (logit >= 0), balanced accuracy (the mean of the two
    classes' recalls, so an all-fake predictor scores 0.5 whatever the class ratio; NaN with
    one class present), ROC-AUC and average precision of the logits;
    ``video_auc`` when any video id is >= 0: a video's score is its mean frame logit, its label
    the majority of its frames' labels (fake when at least half are).
    """
    labels = labels.astype(np.int64).reshape(-1)
    scores = logits.astype(np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        keys = ["acc", "auc", "ap"]
        if video is not None and (np.asarray(video) >= 0).any():
            keys.append("video_auc")
        return dict.fromkeys(keys, math.nan)
    out = {
        "acc": float(accuracy_score(labels, scores >= 0)),
        "balanced_acc": _balanced(labels, (scores >= 0).astype(np.int64)),
        "auc": _auc(labels, scores),
        "ap": _ap(labels, scores),
    }
    if video is not None and (video >= 0).any():
        video = np.asarray(video).reshape(-1)
        keep = video >= 0
        vids, inverse = np.unique(video[keep], return_inverse=True)
        counts = np.bincount(inverse, minlength=len(vids))
        v_score = np.bincount(inverse, weights=scores[keep], minlength=len(vids)) / counts
        v_label = np.bincount(inverse, weights=labels[keep], minlength=len(vids)) / counts
        out["video_auc"] = _auc((v_label >= 0.5).astype(np.int64), v_score)
    return out


def _balanced(labels: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels`` (NaN with fewer than 2)."""
    if len(np.unique(labels)) < 2:
        return math.nan
    with warnings.catch_warnings():  # a predicted class no label has: its recall is not counted
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(labels, pred))


def multiclass_metrics(
    logits: np.ndarray, labels: np.ndarray, num_classes: int
) -> dict[str, float]:
    """``logits`` ``[N, K]``, ``labels`` ``[N]`` int: accuracy, balanced accuracy (mean recall
    over the classes present in the labels) and macro-F1.

    Macro-F1 averages the F1 of the classes of ``range(num_classes)`` that occur in the labels
    or the predictions; a class absent from both has no F1 (0 / 0) and is left out rather than
    counted as 0. A class that is predicted but never true (or true but never predicted) counts
    as 0. NaN when no class occurs (an empty set).
    """
    if not np.isfinite(logits).all():
        return {"acc": math.nan, "macro_f1": math.nan}
    pred = logits.argmax(axis=1)
    labels = labels.astype(np.int64).reshape(-1)
    present = np.intersect1d(np.union1d(labels, pred), np.arange(num_classes))
    if len(labels) == 0 or len(present) == 0:
        return {"acc": math.nan, "balanced_acc": math.nan, "macro_f1": math.nan}
    return {
        "acc": float(accuracy_score(labels, pred)),
        "balanced_acc": _balanced(labels, pred),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=present, zero_division=0)),
    }


def multilabel_metrics(
    logits: np.ndarray, labels: np.ndarray, names: list[str] | tuple[str, ...]
) -> dict[str, float]:
    """``logits``/``labels`` ``[N, K]``: mean attribute accuracy and ``acc_<attribute>`` each
    (NaN for an attribute with a non-finite logit, and then for the mean)."""
    correct = (logits >= 0) == (labels >= 0.5)
    per_attr = np.where(np.isfinite(logits).all(axis=0), correct.mean(axis=0), math.nan)
    out = {"mean_acc": float(per_attr.mean())}
    for i, acc in enumerate(per_attr):
        name = names[i] if i < len(names) else str(i)
        out[f"acc_{metric_key(name)}"] = float(acc)
    return out


def group_keys(meta: Mapping[str, Any] | None) -> list[str]:
    """Every ``acc_group_<column>_<value>`` key :func:`group_metrics` can give on a dataset
    with ``meta`` (``groups``: column names, ``group_values``: {column: values}), in order."""
    meta = meta or {}
    values = meta.get("group_values") or {}
    return [
        f"acc_group_{metric_key(name)}_{i}"
        for name in meta.get("groups") or ()
        for i in range(len(values.get(name) or ()))
    ]


def group_metrics(
    correct: np.ndarray, groups: np.ndarray | None, names: list[str] | tuple[str, ...]
) -> dict[str, float]:
    """Fairness from per-sample correctness ``correct`` ``[N]`` in [0, 1].

    ``groups`` ``[N, G]`` int (-1 = unknown), ``names`` the G column names. Gives
    ``acc_group_<column>_<value>`` for every group, ``worst_group_acc`` (the lowest of them) and
    ``group_gap`` (the largest best-minus-worst gap within one column). Empty without groups.
    """
    if groups is None or groups.size == 0 or groups.ndim != 2 or groups.shape[1] == 0:
        return {}
    out: dict[str, float] = {}
    accs: list[float] = []
    gaps: list[float] = []
    for g in range(groups.shape[1]):
        column = groups[:, g]
        name = metric_key(names[g] if g < len(names) else f"g{g}")
        col_accs = []
        for value in np.unique(column[column >= 0]):
            acc = float(correct[column == value].mean())
            out[f"acc_group_{name}_{int(value)}"] = acc
            col_accs.append(acc)
        accs += col_accs
        if len(col_accs) > 1:
            gaps.append(max(col_accs) - min(col_accs))
    if not accs:
        return {}
    out["worst_group_acc"] = float(np.min(accs))  # NaN when a group's accuracy is NaN
    out["group_gap"] = float(np.max(gaps)) if gaps else 0.0
    return out
