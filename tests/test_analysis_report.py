"""The task-dependence analysis on hand-built Parquet with planted answers, and the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis import sections as S
from analysis import tables
from analysis.answers import generalises, task_answers
from analysis.data import backbone_family, descriptor_used, load_results, modality_label
from analysis.importance import importances
from analysis.report import main, write_report
from analysis.synthetic import DEFAULT_TASKS, write_synthetic
from search.results import read_trials, write_trial

FAST = S.Options(n_resamples=200)
SECTION_IDS = ("heldout", "answers", "confirmation", "overview", "per_task", "matrices",
               "agreement", "friedman", "importance", "effects", "cost", "fairness")


@pytest.fixture(scope="module")
def multi_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tasks, four backbones, a different planted winner per task (DEFAULT_TASKS)."""
    root = tmp_path_factory.mktemp("multi")
    write_synthetic(root, trials_per_backbone=5, noise=0.005,
                    effects={"emotion": {"lr": 0.03}, "deepfake": {"lssat": 0.02}})
    return root


@pytest.fixture(scope="module")
def multi_sections(multi_task: Path) -> dict[str, S.Section]:
    res = load_results(multi_task)
    return {s.key: s for s in S.build_sections(res, FAST)}


@pytest.fixture(scope="module")
def multi_report(multi_task: Path, multi_sections: dict[str, S.Section],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of ``multi_task`` (rendered once; the CLI path is tested below)."""
    out = tmp_path_factory.mktemp("report")
    write_report(load_results(multi_task), list(multi_sections.values()), out)
    return out


def test_labels_and_families() -> None:
    assert modality_label("rgb", "descriptor", "rgb", "ldp", 0.5) == "MRGB/RLDP/CRGB"
    assert modality_label("descriptor", "rgb", "rgb", "ldp", 0.5) == "MLDP/RRGB/CRGB"
    assert modality_label("rgb", "descriptor", "rgb", "ldp", 0.0) == "baseline/CRGB"
    assert descriptor_used("lbp", "rgb", "descriptor", "rgb", 0.3) == "lbp"
    assert descriptor_used("lbp", "rgb", "descriptor", "rgb", 0.0) == "none"
    assert descriptor_used("lbp", "rgb", "rgb", "descriptor", 0.0) == "lbp"
    assert [backbone_family(b) for b in ("vit_tiny_patch16_224", "deit_small_patch16_224",
                                         "swin_tiny_patch4_window7_224", "resnet18",
                                         "convnext_tiny", "efficientnet_b0")] == \
        ["vit", "vit", "vit", "cnn", "cnn", "cnn"]


def test_planted_best_backbone_per_task_is_found(multi_task: Path,
                                                 multi_sections: dict[str, S.Section]) -> None:
    res = load_results(multi_task)
    planted = {t: max(b, key=b.get) for t, b in DEFAULT_TASKS.items()}
    assert set(res.tasks) == set(planted)
    top = tables.top_k(res, 3)
    found = dict(zip(top.loc[top["rank"] == 1, "task"], top.loc[top["rank"] == 1, "backbone"],
                     strict=True))
    assert found == planted
    summary = multi_sections["per_task"].data["summary"]
    for task, bb in planted.items():
        row = summary[(summary["task"] == task) & (summary["backbone"] == bb)].iloc[0]
        assert row["rank_best"] == 1
        assert row["median_lo"] <= row["median"] <= row["median_hi"]
    values, ranks = tables.factor_matrix(res, "backbone")
    assert {t: ranks[t].idxmin() for t in ranks.columns} == planted
    # every planted winner is named in the generated answer to "which backbone for which task"
    rq2 = " ".join(multi_sections["answers"].data["rq2"])
    for task, bb in planted.items():
        assert f"{task}: {bb}" in rq2
    rq3 = " ".join(multi_sections["answers"].data["rq3"])
    assert "Kendall's W over 3 tasks and 4 shared backbones" in rq3
    # no final stage: the answers say so first, and come from the trial population
    assert multi_sections["answers"].text[0].startswith("No confirmation stage ran")


def test_identical_rankings_give_w_one(tmp_path: Path) -> None:
    same = {"vit_base_patch16_224": 0.9, "resnet50": 0.8, "convnext_tiny": 0.7}
    write_synthetic(tmp_path, {"a": same, "b": {k: v - 0.1 for k, v in same.items()}},
                    trials_per_backbone=3, noise=0.002, n_pruned=0, n_failed=0)
    res = load_results(tmp_path)
    agree = S.agreement(res, FAST)
    assert agree.data["w"] == pytest.approx(1.0)
    assert agree.tables["pairwise_tau"]["tau"].tolist() == pytest.approx([1.0])
    gen = generalises(task_answers(res, FAST), FAST)
    assert gen["kendall_w"] == pytest.approx(1.0)
    # two tasks of three backbones: even identical rankings have p = 1/6, so no verdict
    assert gen["p"] == pytest.approx(1 / 6) and gen["verdict"] is None


def test_planted_important_parameter_ranks_first(tmp_path: Path) -> None:
    flat = {"vit_small_patch16_224": 0.8, "resnet50": 0.8}
    write_synthetic(tmp_path, {"deepfake": flat, "emotion": flat}, trials_per_backbone=20,
                    noise=0.005, effects={"deepfake": {"mask_ratio": 0.2}, "emotion": {"lr": 0.2}},
                    baseline_share=0.0, n_pruned=0, n_failed=0)
    res = load_results(tmp_path)
    imp, notes = importances(res.task("emotion"), "max", seed=0)
    assert not notes
    firsts = imp[imp["rank"] == 1].set_index("evaluator")["param"].to_dict()
    assert firsts == {"fanova": "lr", "ped_anova": "lr"}
    assert imp.groupby("evaluator")["importance"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    # side by side across tasks: mask ratio matters for deepfake but not for emotion
    sec = S.importance_section(res, FAST)
    firsts = sec.tables["importance"].query("rank == 1").groupby("task")["param"].agg(set)
    assert firsts.to_dict() == {"deepfake": {"mask_ratio"}, "emotion": {"lr"}}
    assert "mask_ratio matters (fANOVA share >= 0.15) in deepfake but not in emotion" in \
        " ".join(sec.text)


def test_min_mode_metric_ranks_lowest_first(tmp_path: Path) -> None:
    write_synthetic(tmp_path, {"deepfake": DEFAULT_TASKS["deepfake"]}, trials_per_backbone=4,
                    noise=0.002, mode="min")
    res = load_results(tmp_path)
    assert res.metric("deepfake") == ("val_loss", "min")
    best = res.task("deepfake").iloc[0]
    assert best["backbone"] == "vit_base_patch16_224"
    assert best["value"] == res.ranked["value"].min()
    summary = tables.group_summary(res, n_resamples=200)
    row = summary[summary["backbone"] == "vit_base_patch16_224"].iloc[0]
    assert row["rank_best"] == 1 and row["best"] == pytest.approx(best["value"])


def test_report_is_self_contained_with_every_section(multi_report: Path) -> None:
    out = multi_report
    page = (out / "report.html").read_text()
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(pngs) >= 10
    assert page.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from outside the file
    for key in SECTION_IDS:
        assert f'id="{key}"' in page
    csvs = {p.name for p in (out / "tables").glob("*.csv")}
    assert {"per_task-top_k.csv", "matrices-backbone_ranks.csv", "agreement-pairwise_tau.csv",
            "friedman-mean_ranks.csv", "importance-importance.csv", "effects-lssat_gain.csv",
            "cost-pareto_fronts.csv", "fairness-fairness.csv"} <= csvs
    # the overview counts every status
    assert "COMPLETE" in page and "PRUNED" in page and "FAIL" in page


def test_missing_inputs_are_said_not_crashed_on(tmp_path: Path) -> None:
    write_synthetic(tmp_path, {"emotion": {"resnet18": 0.7}}, trials_per_backbone=3,
                    baseline_share=0.0, groups=False, n_pruned=0, n_failed=0)
    res = load_results(tmp_path)
    secs = {s.key: s for s in S.build_sections(res, FAST)}
    notes = " ".join(n for s in secs.values() for n in s.notes)
    assert "at least 2 tasks" in notes
    assert "Friedman test needs" in notes
    assert "No group metrics" in notes
    assert "No aux_weight = 0 baseline" in notes
    assert "importance needs" in notes
    assert secs["answers"].data["rq1"][0] == "Too little data to tell in emotion."
    assert "Only 1 task(s) have rankings" in secs["answers"].data["rq3"][0]
    # one factor without curves next to one with curves (an empty frame must not spoil dtypes)
    res.trials["mask_ratio"] = 0.75
    eff = S.effects_section(res, FAST)
    assert "mask_ratio takes fewer than 2 values" in " ".join(eff.notes)
    assert "effect_curves" in eff.figures



def test_cli_writes_report_and_says_what_is_missing(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    write_synthetic(tmp_path / "res", {"emotion": {"resnet18": 0.7, "vit_tiny_patch16_224": 0.8}},
                    trials_per_backbone=3, groups=False)
    out = tmp_path / "out"
    assert main([str(tmp_path / "res"), "--out", str(out), "--n-resamples", "200"]) == 0
    assert "wrote" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert "No group metrics" in page and "Only 1 task(s)" in page
    doc = json.loads((out / "answers.json").read_text())
    assert doc["tasks"][0]["basis"] == "trials" and doc["generalises"]["verdict"] is None
    assert len(list((out / "figures").glob("*.png"))) == page.count("data:image/png;base64,")
    assert (out / "tables" / "overview-status_counts.csv").exists()


def test_pruned_trials_count_only_with_the_flag(multi_task: Path) -> None:
    plain = load_results(multi_task)
    assert "PRUNED" not in set(plain.ranked["status"])
    with_pruned = load_results(multi_task, include_pruned=True)
    assert "PRUNED" in set(with_pruned.ranked["status"])
    assert "FAIL" not in set(with_pruned.ranked["status"])


def test_bad_input_is_one_sentence_and_exit_2(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    def run(*args: str) -> str:
        assert main([*args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    assert "does not exist" in run(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "no trial Parquet files" in run(str(tmp_path / "empty"))
    bad = tmp_path / "bad" / "trials"
    bad.mkdir(parents=True)
    (bad / "t1.parquet").write_bytes(b"not parquet at all")
    assert "t1.parquet" in run(str(tmp_path / "bad"))
    good = tmp_path / "good"
    write_trial(good, {"task": "x", "experiment": "e", "trial_id": "t", "status": "COMPLETE",
                       "metric": "val_acc", "mode": "max", "best_value": 0.5})
    assert "alpha" in run(str(good), "--alpha", "2")
    assert "n-resamples" in run(str(good), "--n-resamples", "5")
    assert "--seed" in run(str(good), "--seed", "-1")


def test_report_on_demo_search(demo_search: Path, tmp_path: Path) -> None:
    """The report renders from a real demo search's output (one task)."""
    out = tmp_path / "report"
    assert main([str(demo_search), "--out", str(out), "--n-resamples", "200"]) == 0
    page = (out / "report.html").read_text()
    trials = read_trials(demo_search)
    assert f"Read {len(trials)} trials" in page
    assert "data:image/png;base64," in page
    assert "RQ3." in page
    res = load_results(demo_search)
    assert len(res.ranked) > 0
    best = res.ranked.sort_values("score").iloc[-1]
    assert best["trial_id"] in page


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_opens_in_headless_chromium(multi_report: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = multi_report
    shot = tmp_path / "shot.png"
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={shot}", "--window-size=1280,2400",
           (out / "report.html").resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    # figures put many distinct colours on the page (plain text would give a handful)
    colours = np.unique(img.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 500
