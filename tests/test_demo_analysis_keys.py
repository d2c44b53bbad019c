"""The analysis keys tasks by (task, dataset): two deepfake sets are two tasks (#15)."""

from __future__ import annotations

import pandas as pd

from analysis.data import prepare


def _rows(datasets: list[object], metric: str = "val_auc") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": ["deepfake"] * len(datasets),
            "trial_id": [f"t{i}" for i in range(len(datasets))],
            "status": ["COMPLETE"] * len(datasets),
            "metric": [metric] * len(datasets),
            "mode": ["max"] * len(datasets),
            "best_value": [0.6] * len(datasets),
            "dataset": datasets,
        }
    )


def test_two_datasets_of_one_task_are_two_tasks() -> None:
    t, _ = prepare(_rows(["sbi", "swap", "sbi"]))
    assert list(t["task_key"]) == ["deepfake/sbi", "deepfake/swap", "deepfake/sbi"]


def test_rows_without_a_dataset_keep_the_task_name() -> None:
    t, _ = prepare(_rows([None, "sbi"]))
    assert list(t["task_key"]) == ["deepfake", "deepfake/sbi"]
    t, _ = prepare(_rows(["x"]).drop(columns="dataset"))  # version-1 rows
    assert list(t["task_key"]) == ["deepfake"]


def test_one_dataset_under_two_metrics_is_split_by_metric() -> None:
    rows = pd.concat([_rows(["sbi"]), _rows(["sbi"], "val_video_auc"), _rows(["swap"])])
    rows["trial_id"] = ["a", "b", "c"]
    t, notes = prepare(rows)
    assert list(t["task_key"]) == [
        "deepfake/sbi [val_auc]",
        "deepfake/sbi [val_video_auc]",
        "deepfake/swap",
    ]
    assert any("several metrics" in n for n in notes)
