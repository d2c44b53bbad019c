"""Issue 22, items 2, 3, 5, 7: the confirmation stage read back. Final rows and per-item test
outputs are written through ``search.results`` (as ``search.final --per backbone`` writes them)
next to synthetic searches; the report answers from them with paired intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import confirm
from analysis.data import load_results
from analysis.report import write_report
from analysis.section import Options
from analysis.sections import build_sections
from analysis.synthetic import write_synthetic
from lssat.metrics import binary_metrics, multiclass_metrics
from search import results
from search.results.selection import select_per

FAST = Options(n_resamples=400)
SEEDS = (11, 12, 13)
BACKBONES = {"vit_base_patch16_224": 0.9, "resnet50": 0.85, "convnext_tiny": 0.8}


def _items(rng: np.random.Generator, sep: float, n_videos: int = 40, frames: int = 4) -> dict:
    video = np.repeat(np.arange(n_videos), frames)
    label = (video % 2).astype(np.int64)  # half real, half fake videos
    score = sep * (2 * label - 1) + rng.normal(0, 1, n_videos)[video] + rng.normal(0, 1, len(video))
    pred = (score >= 0).astype(np.int64)
    return {"set": ["test"] * len(video), "row": np.arange(len(video)) + 1000, "unit": video,
            "label": label, "pred": pred, "score": score,
            "correct": (pred == label).astype(float)}  # fmt: skip


def write_confirmation(root: Path, seps: dict[str, float], seeds=SEEDS, items: bool = True,
                       rng_seed: int = 0) -> Path:  # fmt: skip
    """A synthetic deepfake search and its per-backbone final stage (rows + items)."""
    (exp,) = write_synthetic(root, {"deepfake": BACKBONES}, trials_per_backbone=4, noise=0.01,
                             n_pruned=0, n_failed=0)  # fmt: skip
    best, _ = select_per(results.read_trials(exp), "max", "backbone")
    rng = np.random.default_rng(rng_seed)
    for rank, (_, trial) in enumerate(best.iterrows(), start=1):
        for seed in seeds:
            run_id = results.final_stem(trial["trial_id"], seed)
            cols = _items(rng, seps[trial["group"]])
            m = binary_metrics(cols["score"], cols["label"], cols["unit"])
            path = results.items_path(exp, run_id)
            if items:
                results.write_items(path, {"task": "deepfake", "experiment": "synthetic",
                                           "run_id": run_id}, cols)  # fmt: skip
            results.write_final(exp, {
                "task": "deepfake", "experiment": "synthetic", "run_id": run_id,
                "trial_id": trial["trial_id"], "number": int(trial["number"]), "rank": rank,
                "selection_value": float(trial["final_value"]), "metric": "val_auc",
                "mode": "max", "seed": seed, "status": "COMPLETE", "final_mode": "per",
                "group_param": "backbone", "group": trial["group"],
                "items": str(path.relative_to(exp)) if items else None,
                "eval_sets": json.dumps({"test": {"split": "test"}}),
                **{f"test_{k}": v for k, v in m.items()},
            })  # fmt: skip
    return exp


def test_item_metrics_equal_the_tasks_metrics_with_unit_weights() -> None:
    rng = np.random.default_rng(3)
    cols = pd.DataFrame(_items(rng, 0.7))
    index, _ = confirm._units(cols)
    ones = np.ones((1, index.max() + 1))
    want = binary_metrics(cols["score"].to_numpy(), cols["label"].to_numpy(),
                          cols["unit"].to_numpy())  # fmt: skip
    for base in ("auc", "video_auc", "acc", "balanced_acc"):
        got = confirm.weighted_metric(base, cols, ones, index)[0]
        assert got == pytest.approx(want[base]), base
    logits = rng.normal(size=(90, 4))
    labels = rng.integers(0, 4, 90)
    pred = logits.argmax(axis=1)
    mc = pd.DataFrame({"unit": -1, "label": labels, "pred": pred, "score": np.nan,
                       "correct": (pred == labels).astype(float)})  # fmt: skip
    index, _ = confirm._units(mc)
    want = multiclass_metrics(logits, labels, 4)
    for base in ("acc", "balanced_acc", "macro_f1"):
        got = confirm.weighted_metric(base, mc, np.ones((1, 90)), index)[0]
        assert got == pytest.approx(want[base]), base


def test_confirmation_answers_with_paired_intervals(tmp_path: Path) -> None:
    write_confirmation(tmp_path, {"vit_base_patch16_224": 1.5, "resnet50": 0.6,
                                  "convnext_tiny": 0.5})  # fmt: skip
    res = load_results(tmp_path)
    secs = {s.key: s for s in build_sections(res, FAST)}
    (c,) = secs["confirmation"].data["answers"].values()
    assert c.basis == "confirmation" and c.method == confirm.BOOT and c.seeds == 3
    assert c.chosen.name == "vit_base_patch16_224" and c.matters is True
    rows = results.read_final(tmp_path)
    for lv in c.levels:  # the value is the mean over seeds of the recorded test_auc
        mine = rows[rows["group"] == lv.name]["test_auc"]
        assert lv.value == pytest.approx(mine.mean()) and lv.low < lv.value < lv.high
    assert (c.comparisons["low"] > 0).all() and (c.comparisons["p_holm"] < 0.05).all()
    # the answers say where they come from, first; the headline interval is for the mean
    assert secs["answers"].text[0].startswith("These answers come from the confirmation stage")
    head = secs["heldout"].data["headline"][0]
    assert "interval for the mean over seeds" in head and confirm.BOOT in head
    assert "(backbone vit_base_patch16_224)" in head
    out = write_report(res, list(secs.values()), tmp_path / "report")
    doc = json.loads((out.parent / "answers.json").read_text())
    (task,) = doc["tasks"]
    assert task["basis"] == "confirmation" and task["metric"] == "test_auc"
    assert task["backbone_matters"] is True and task["best_backbone"] == "vit_base_patch16_224"
    assert [b["n_seeds"] for b in task["backbones"]] == [3, 3, 3]
    assert [b["n_trials"] for b in task["backbones"]] == [4, 4, 4]
    assert doc["generalises"] == {"kendall_w": None, "p": None, "verdict": None}
    page = out.read_text()
    assert '<table class="answers">' in page and "vit_base_patch16_224 (chosen)" in page


def test_equal_backbones_support_no_difference(tmp_path: Path) -> None:
    write_confirmation(tmp_path, dict.fromkeys(BACKBONES, 0.8), rng_seed=5)
    (c,) = confirm.confirmations(load_results(tmp_path), n_resamples=400).values()
    assert c.matters is False
    assert (c.comparisons["low"] < 0).all() and (c.comparisons["high"] > 0).all()


def test_without_items_a_t_interval_over_seeds(tmp_path: Path) -> None:
    write_confirmation(tmp_path, {"vit_base_patch16_224": 1.5, "resnet50": 0.6,
                                  "convnext_tiny": 0.5}, items=False)  # fmt: skip
    (c,) = confirm.confirmations(load_results(tmp_path), n_resamples=400).values()
    assert c.method == confirm.T_SEEDS and c.matters is not None
    lv = c.chosen
    assert lv.low < lv.value < lv.high and math.isfinite(lv.sd)


def test_one_seed_is_too_little_to_tell(tmp_path: Path) -> None:
    write_confirmation(tmp_path, {"vit_base_patch16_224": 1.5, "resnet50": 0.6,
                                  "convnext_tiny": 0.5}, seeds=(11,))  # fmt: skip
    (c,) = confirm.confirmations(load_results(tmp_path), n_resamples=400).values()
    assert c.matters is None
