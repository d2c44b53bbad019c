"""Task registry: label kind, head size, primary loss and validation metrics per task.

``TASKS[name].metric`` is the key the search optimises and ``mode`` its direction.
Label smoothing (``config.label_smoothing``) applies to every task: cross-entropy's own
smoothing for multi-class, targets ``y * (1 - s) + s / 2`` for the BCE tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lssat import metrics as M
from lssat.errors import DataError

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
AFFECTNET_CLASSES: tuple[str, ...] = (
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
)  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """One task: how its labels look, its loss and its metrics."""

    name: str
    label_kind: str  # binary | multiclass | multilabel
    metric: str  # the validation key the search optimises
    mode: str  # "max" | "min"
    default_classes: tuple[str, ...] = ()
    description: str = ""

    # ------------------------------------------------------------------ shape
    def classes(self, meta: Mapping[str, Any] | None = None) -> list[str]:
        """Class (or attribute) names: from the data's meta, else the task's defaults."""
        names = list((meta or {}).get("classes") or self.default_classes)
        if self.label_kind == "binary":
            return names or ["real", "fake"]
        if not names:
            raise DataError(
                f"task {self.name!r} takes its classes from the data, but the dataset meta has "
                "no 'classes' list"
            )
        return names

    def num_outputs(self, meta: Mapping[str, Any] | None = None) -> int:
        """Head width: 1 logit for binary tasks, else one per class / attribute."""
        return 1 if self.label_kind == "binary" else len(self.classes(meta))

    def check_meta(self, meta: Mapping[str, Any]) -> None:
        """DataError when the dataset's label kind does not fit this task."""
        kind = meta.get("label_kind")
        if kind is not None and kind != self.label_kind:
            raise DataError(
                f"dataset meta 'label_kind' is {kind!r}, but task {self.name!r} needs "
                f"{self.label_kind!r} labels"
            )

    # ------------------------------------------------------------------- loss
    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """Mean primary loss; ``logits`` ``[B, K]`` (``[B, 1]`` binary), labels as in the data."""
        logits = logits.float()
        if self.label_kind == "multiclass":
            return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)
        target = labels.float().reshape(logits.shape)
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, target)

    # ---------------------------------------------------------------- metrics
    def metric_keys(self, meta: Mapping[str, Any] | None = None, prefix: str = "val_") -> list[str]:
        """The keys :meth:`evaluate` (plus the engine's ``<prefix>loss``) can give on any dataset,
        declared up front so every result file has the same columns; per-group accuracies
        (``acc_group_*``) come from the data's groups in ``meta`` (none without it)."""
        keys = {
            "binary": ["acc", "balanced_acc", "auc", "ap", "video_auc"],
            "multiclass": ["acc", "balanced_acc", "macro_f1"],
            "multilabel": ["mean_acc"],
        }[self.label_kind]
        if self.label_kind == "multilabel":
            keys = keys + [f"acc_{M.metric_key(c)}" for c in self.classes(meta)]
        keys = [*keys, "worst_group_acc", "group_gap", *M.group_keys(meta), "loss"]
        return [f"{prefix}{k}" for k in keys]

    def correct(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-sample correctness ``[N]`` in [0, 1] (mean over attributes for multi-label);
        NaN for a sample with a non-finite logit (never counted as a class)."""
        if self.label_kind == "binary":
            out = ((logits.reshape(-1) >= 0) == (labels.reshape(-1) >= 0.5)).astype(np.float64)
        elif self.label_kind == "multiclass":
            out = (logits.argmax(axis=1) == labels.reshape(-1)).astype(np.float64)
        else:
            out = ((logits >= 0) == (labels >= 0.5)).mean(axis=1)
        finite = np.isfinite(logits.reshape(len(out), -1)).all(axis=1)
        return np.where(finite, out, np.nan)

    def evaluate(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        video: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        meta: Mapping[str, Any] | None = None,
        prefix: str = "val_",
    ) -> dict[str, float]:
        """All metrics of one split: ``logits`` ``[N, K]``, labels, ``video`` ``[N]``,
        ``groups`` ``[N, G]``; keys get ``prefix`` (``val_acc``, ``val_auc``, ...)."""
        meta = meta or {}
        if self.label_kind == "binary":
            out = M.binary_metrics(logits.reshape(-1), labels, video)
        elif self.label_kind == "multiclass":
            out = M.multiclass_metrics(logits, labels, logits.shape[1])
        else:
            out = M.multilabel_metrics(logits, labels, self.classes(meta))
        out.update(M.group_metrics(self.correct(logits, labels), groups, meta.get("groups", ())))
        return {f"{prefix}{k}": v for k, v in out.items()}


TASKS: dict[str, TaskSpec] = {
    "deepfake": TaskSpec(
        "deepfake", "binary", "val_auc", "max", ("real", "fake"),
        "real vs fake faces; accuracy, ROC-AUC, video-level AUC",
    ),
    "attributes": TaskSpec(
        "attributes", "multilabel", "val_mean_acc", "max", CELEBA_ATTRIBUTES,
        "multi-label facial attributes (CelebA's 40 by default); mean attribute accuracy",
    ),
    "emotion": TaskSpec(
        "emotion", "multiclass", "val_balanced_acc", "max", AFFECTNET_CLASSES,
        "expression classes (AffectNet's 8 by default); selects on balanced accuracy (the "
        "validation carve keeps the training imbalance, the test split is balanced); "
        "accuracy, macro-F1",
    ),
    "classify": TaskSpec(
        "classify", "multiclass", "val_acc", "max", (),
        "any labelled face folder; classes from the data; accuracy, macro-F1",
    ),
}  # fmt: skip


def get_task(name: str) -> TaskSpec:
    """The registered task, or a ConfigError naming the allowed ones."""
    from lssat.errors import ConfigError

    if name not in TASKS:
        raise ConfigError(f"config field 'task' is {name!r}; allowed: {', '.join(sorted(TASKS))}")
    return TASKS[name]
