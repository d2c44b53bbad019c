"""Task registry, losses and metrics (including fairness and video-level AUC)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lssat.errors import DataError
from lssat.metrics import group_metrics
from lssat.tasks import AFFECTNET_CLASSES, CELEBA_ATTRIBUTES, TASKS


def test_registry_names_metrics_and_modes() -> None:
    assert {k: (t.metric, t.mode) for k, t in TASKS.items()} == {
        "deepfake": ("val_auc", "max"),
        "attributes": ("val_mean_acc", "max"),
        "emotion": ("val_balanced_acc", "max"),
        "classify": ("val_acc", "max"),
    }
    assert TASKS["deepfake"].num_outputs() == 1
    assert TASKS["attributes"].num_outputs() == 40 == len(CELEBA_ATTRIBUTES)
    assert TASKS["emotion"].num_outputs() == 8 == len(AFFECTNET_CLASSES)
    assert TASKS["classify"].num_outputs({"classes": ["a", "b", "c"]}) == 3
    with pytest.raises(DataError, match="classes"):
        TASKS["classify"].num_outputs({})


def test_meta_label_kind_must_fit_the_task() -> None:
    with pytest.raises(DataError, match="label_kind"):
        TASKS["deepfake"].check_meta({"label_kind": "multiclass"})
    TASKS["emotion"].check_meta({"label_kind": "multiclass"})


def test_losses_per_kind() -> None:
    logits = torch.tensor([[2.0], [-1.0]])
    bce = TASKS["deepfake"].loss(logits, torch.tensor([1, 0]))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.view(-1), torch.tensor([1.0, 0.0])
    )
    assert torch.isclose(bce, expected)
    ce = TASKS["emotion"].loss(torch.zeros(2, 8), torch.tensor([0, 3]), label_smoothing=0.1)
    assert torch.isclose(ce, torch.tensor(math.log(8)))
    ml = TASKS["attributes"].loss(torch.zeros(2, 40), torch.ones(2, 40))
    assert torch.isclose(ml, torch.tensor(math.log(2)))


def test_deepfake_metrics_with_video_auc() -> None:
    logits = np.array([3.0, 2.0, -1.0, 1.0, -2.0, -3.0])
    labels = np.array([1, 1, 1, 0, 0, 0])
    video = np.array([0, 0, 1, 2, 3, 3])
    m = TASKS["deepfake"].evaluate(logits, labels, video=video)
    assert m["val_acc"] == pytest.approx(4 / 6)
    assert m["val_auc"] == pytest.approx(8 / 9)
    # per-video mean probabilities: v0 high, v1 low (fake), v2 mid (real), v3 low (real)
    assert m["val_video_auc"] == pytest.approx(3 / 4)
    assert "val_video_auc" not in TASKS["deepfake"].evaluate(logits, labels, video=-np.ones(6))


def test_auc_is_nan_with_one_class() -> None:
    m = TASKS["deepfake"].evaluate(np.array([1.0, 2.0]), np.array([1, 1]))
    assert math.isnan(m["val_auc"]) and m["val_acc"] == 1.0


def test_emotion_accuracy_and_macro_f1() -> None:
    logits = np.eye(3)[[0, 1, 2, 2]]
    m = TASKS["classify"].evaluate(logits, np.array([0, 1, 2, 1]), meta={"classes": list("abc")})
    assert m["val_acc"] == pytest.approx(0.75)
    assert m["val_macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_attribute_mean_and_per_attribute_accuracy() -> None:
    logits = np.array([[1.0, -1.0], [1.0, 1.0]])
    labels = np.array([[1.0, 0.0], [0.0, 0.0]])
    m = TASKS["attributes"].evaluate(logits, labels, meta={"classes": ["Smiling", "Male"]})
    assert m["val_acc_Smiling"] == 0.5 and m["val_acc_Male"] == 0.5
    assert m["val_mean_acc"] == 0.5


def test_fairness_per_group_worst_and_gap() -> None:
    correct = np.array([1, 1, 0, 1, 0, 0], dtype=float)
    groups = np.array([[0, 1], [0, 1], [1, 1], [1, 0], [1, -1], [0, -1]])
    m = group_metrics(correct, groups, ["Male", "Young"])
    assert m["acc_group_Male_0"] == pytest.approx(2 / 3)
    assert m["acc_group_Male_1"] == pytest.approx(1 / 3)
    assert m["acc_group_Young_0"] == 1.0 and m["acc_group_Young_1"] == pytest.approx(2 / 3)
    assert m["worst_group_acc"] == pytest.approx(1 / 3)
    assert m["group_gap"] == pytest.approx(1 / 3)
    assert group_metrics(correct, np.zeros((6, 0), dtype=int), []) == {}
    full = TASKS["deepfake"].evaluate(
        np.array([1.0, -1.0]), np.array([1, 1]), groups=np.array([[0], [1]]),
        meta={"groups": ["Male"]},
    )  # fmt: skip
    assert full["val_worst_group_acc"] == 0.0 and full["val_group_gap"] == 1.0


def test_balanced_accuracy_beside_accuracy_on_imbalanced_sets() -> None:
    """FF++ is 1 real to 4 fake: an all-fake predictor scores accuracy 0.8 but balanced 0.5."""
    labels = np.array([0, 1, 1, 1, 1] * 4)
    m = TASKS["deepfake"].evaluate(np.full(20, 3.0), labels)
    assert m["val_acc"] == pytest.approx(0.8) and m["val_balanced_acc"] == pytest.approx(0.5)
    assert "val_balanced_acc" in TASKS["deepfake"].metric_keys()
    logits = np.eye(3)[[0, 0, 0, 0, 1, 2]]  # 4 of class 0, all right; classes 1, 2 half right
    m = TASKS["emotion"].evaluate(logits, np.array([0, 0, 0, 0, 1, 1]), meta={})
    assert m["val_acc"] == pytest.approx(5 / 6)
    assert m["val_balanced_acc"] == pytest.approx((1 + 0.5) / 2)
    assert {"val_balanced_acc", "val_macro_f1"} <= set(TASKS["emotion"].metric_keys())
