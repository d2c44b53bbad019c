"""Issue 17, warm start: ``search.run --warm-start`` enqueues the source's top-k first with
``warm_start_from`` on their rows, TPE's prior stays out of the study, bad input is one
sentence with exit 2 and nothing written, and ``search.replay --warm-start`` counts the same
mechanism exactly on a tiny table. The end-to-end search (real Ray, Optuna, timm on the demo
data, one Ray per module) warm-starts from the shipped ``bench/curves/sbi`` table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from search import replay, results
from search.optimize import warm
from search.optimize.space import parse_space
from search.optimize.study import STUDY_FILE
from search.run import main

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench" / "curves" / "sbi"  # a shipped recorded grid: a search's folder
SPACE = """\
task: deepfake
trials: 3
scheduler: {grace_period: 1, reduction_factor: 4}
fixed: {epochs: 1, img_size: 32, patch_size: 8, train_subset: 8, val_subset: 4,
        batch_size: 16, warmup_epochs: 0.5, decoder_dim: 32, decoder_depth: 1}
params:
  backbone: {choices: [test_resnet, test_vit]}
  lr: {low: 1.0e-3, high: 3.0e-3, log: true}
  aux_weight: {choices: [0.0, 0.5]}
  descriptor: {choices: [lbp, ldp], when: {aux_weight: {gt: 0}}}
"""
LRS = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3]
TABLE_SPACE = {
    "task": "deepfake",
    "sampler": {"name": "grid"},
    "scheduler": "none",
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": LRS}},
}


def _table(path: Path, finals: list[float], space: dict | None = None) -> Path:
    """A recorded 8-config grid (2 epochs of 1 s each) with config i's final value finals[i]."""
    curves = [({"lr": lr}, [v / 2, v], [1.0, 1.0]) for lr, v in zip(LRS, finals, strict=True)]
    return replay.write_table(path, space or TABLE_SPACE, curves)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


# ------------------------------------------------------------------------- the plan itself
def test_plan_ranks_projects_skips_and_keeps_the_prior_out(tmp_path: Path) -> None:
    """Top-k by the told value; a value outside this space is listed and skipped; the prior
    is rank-normalised, numbered before the study's trials and never enters the study."""
    src = warm.read_source(_table(tmp_path / "src", [i / 10 for i in range(8)]))
    space = parse_space(
        {**TABLE_SPACE, "sampler": {}, "scheduler": {},
         "params": {"lr": {"low": 2e-4, "high": 2e-3, "log": True}}}, "t.yaml")  # fmt: skip
    plan = warm.plan(space, src, 2)
    assert plan.enqueue == [{"lr": 2e-3}, {"lr": 1e-3}]  # 3e-3 (the best) is out of range
    assert len(plan.skipped) == 1 and "lr=0.003 is not in this space" in plan.skipped[0]
    assert [t.number for t in plan.prior] == [-6, -5, -4, -3, -2, -1]  # 1e-4, 3e-3 left out
    assert [t.params["lr"] for t in plan.prior] == LRS[1:7]
    values = [t.value for t in plan.prior]
    assert values == sorted(values) and 0 < values[0] and values[-1] < 1
    study = optuna.create_study(
        direction="maximize", sampler=warm.wrap(optuna.samplers.TPESampler(seed=0), plan.prior)
    )
    assert isinstance(study.sampler, warm.PriorSampler)
    for _ in range(4):
        trial = study.ask()
        study.tell(trial, space.suggest(trial)["lr"] * 100)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]  # no observation leaked in
    assert warm.fade(plan.prior, 0, 20) == plan.prior and warm.fade(plan.prior, 20, 20) == []
    half = warm.fade(plan.prior, 10, 20)
    assert len(half) == 3 and half[0] is plan.prior[0] and half[-1] is plan.prior[-1]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("case", "culprit"),
    [
        ("empty", "is not an experiment folder"),
        ("missing", "is not a folder"),
        ("no_shared", "share none with this space's"),
        ("k0", "--warm-start-k is 0; it must be at least 1"),
        ("kneg", "--warm-start-k is -3; it must be at least 1"),
        ("k_alone", "--warm-start-k is given without --warm-start"),
    ],
)
def test_bad_warm_start_is_one_sentence_exit_2_nothing_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, demo_data: Path, case: str, culprit: str
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    source = {"empty": tmp_path / "empty", "missing": tmp_path / "nowhere"}.get(case, SOURCE)
    (tmp_path / "empty").mkdir()
    if case == "no_shared":  # a recorded grid searching only mask_ratio
        source = replay.write_table(
            tmp_path / "other",
            {**TABLE_SPACE, "params": {"mask_ratio": {"choices": [0.5, 0.75]}}},
            [({"mask_ratio": m}, [0.5, 0.6], [1.0, 1.0]) for m in (0.5, 0.75)],
        )
    flags = {"k0": ["--warm-start-k", "0"], "kneg": ["--warm-start-k", "-3"]}.get(case, [])
    warm_flags = [] if case == "k_alone" else ["--warm-start", str(source)]
    if case == "k_alone":
        flags = ["--warm-start-k", "2"]
    res = tmp_path / "results"
    code, out, err = _run(capsys, "--task", "deepfake", "--space", str(space), "--data",
                          str(demo_data), "--results", str(res), "--no-dashboard",
                          *warm_flags, *flags)  # fmt: skip
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert culprit in err, err
    assert not res.exists()  # nothing written


# ------------------------------------------------------------------------------ replay
def test_replay_warm_start_accounting_on_a_tiny_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One slot, no early stopping: warm-started from a table that ranks alike, the planted
    best (config 7) is the first trial and costs exactly its 2 epochs; the enqueued configs
    are the first events in order, and the cold search pays for every trial before it."""
    target = replay.load_table(_table(tmp_path / "tgt", [i / 10 for i in range(8)]))
    source = replay.load_table(_table(tmp_path / "src", [0.5 + i / 100 for i in range(8)]))
    assert replay.tables_tau(target, source) == pytest.approx(1.0)
    plan = replay.warm_plan(target, source, 3)
    assert plan.enqueue == [{"lr": LRS[7]}, {"lr": LRS[6]}, {"lr": LRS[5]}]
    assert len(plan.prior) == 8
    [t] = replay.replay(target, ["tpe"], 1, 1, 0.05, warm=plan, full=True)
    assert [e["key"] for e in t.events[:3]] == [replay.key(p) for p in plan.enqueue]
    assert t.reach_epochs == 2 and t.events[0]["cum_epochs"] == 2
    assert sum(e["epochs"] for e in t.events) == target.grid_epochs  # same budget as cold
    cold = replay.simulate(target, "tpe", 0, 1, 0.05)
    first = [e["key"] for e in cold.events].index(replay.key({"lr": LRS[7]})) + 1
    assert cold.reach_epochs == 2 * first
    # a source that ranks the other way round enqueues the target's worst configs first
    flipped = replay.load_table(_table(tmp_path / "flip", [0.9 - i / 10 for i in range(8)]))
    assert replay.tables_tau(target, flipped) == pytest.approx(-1.0)
    [bad] = replay.replay(target, ["tpe"], 1, 1, 0.05,
                          warm=replay.warm_plan(target, flipped, 2))  # fmt: skip
    assert [e["key"] for e in bad.events[:2]] == [replay.key({"lr": LRS[i]}) for i in (0, 1)]
    assert bad.reach_epochs >= 6  # the two enqueued configs are paid for first
    # the CLI: same plan, one line with tau; k 0 is one sentence, exit 2
    code = replay.main([str(target.path), "--searchers", "tpe", "--seeds", "2",
                        "--warm-start", str(source.path), "--warm-start-k", "3",
                        "--out", str(tmp_path / "out")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "3 of its top 3 configurations first" in out and "tau" in out
    assert (tmp_path / "out" / "replay_summary.csv").is_file()
    code = replay.main([str(target.path), "--warm-start", str(source.path),
                        "--warm-start-k", "0", "--out", str(tmp_path / "k0")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: --warm-start-k is 0; it must be at least 1"
    assert not (tmp_path / "k0").exists()


# ---------------------------------------------------------------- end to end (real Ray)
def _sources(rows) -> list[str | None]:
    return [v if isinstance(v, str) else None for v in rows["warm_start_from"]]


@pytest.fixture(scope="module")
def ray_once():
    """One local Ray for this module's searches (search.run reuses a connected Ray)."""
    from search.execution.ray_init import RayOptions, ray_init

    ray = ray_init(RayOptions(dashboard=False))
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_warm_started_search_runs_the_source_top_k_first(
    ray_once, tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    res = tmp_path / "results"
    base = ["--task", "deepfake", "--space", str(space), "--data", str(demo_data),
            "--results", str(res), "--name", "w", "--max-concurrent", "1",
            "--no-dashboard"]  # fmt: skip
    code, out, err = _run(capsys, *base, "--warm-start", str(SOURCE), "--warm-start-k", "2")
    assert code == 0, out[-3000:] + err[-3000:]
    exp = res / "deepfake" / "w"
    expected = warm.plan(parse_space(__import__("yaml").safe_load(SPACE), "s"),
                         warm.read_source(SOURCE), 2)  # fmt: skip
    rows = results.read_trials(exp).sort_values("number")
    assert list(rows["number"]) == [0, 1, 2]
    src = str(SOURCE.resolve())
    assert _sources(rows) == [src, src, None]
    assert [json.loads(p) for p in rows["params"][:2]] == expected.enqueue  # ran first
    assert rows["started_at"].iloc[1] < rows["started_at"].iloc[2]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / STUDY_FILE))
    )
    study = optuna.load_study(study_name="deepfake/w", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2]  # exactly the budget: no prior
    assert [t.user_attrs.get("warm_start_from") for t in study.trials] == [src, src, None]
    assert "warm start:  from " in out and "#0 enqueued from it" in out
    settings = json.loads((exp / "search.json").read_text())["warm_start"]
    assert settings["from"] == src and settings["enqueued"] == expected.enqueue
    assert settings["prior_trials"] == len(expected.prior) > 0
    # resume to 4 trials: nothing enqueued again, the prior rebuilt, budget still exact
    code, out, err = _run(capsys, *base, "--resume", "--trials", "4")
    assert code == 0, out[-3000:] + err[-3000:]
    study = optuna.load_study(study_name="deepfake/w", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    rows = results.read_trials(exp).sort_values("number")
    assert _sources(rows) == [src, src, None, None]
    assert json.loads((exp / "search.json").read_text())["warm_start"] == settings
    assert all(math.isfinite(v) or s != "COMPLETE"
               for v, s in zip(rows["final_value"], rows["status"], strict=True))  # fmt: skip
    # the report shows where those trials came from
    from analysis.data import load_results
    from analysis.sections import Options, overview

    sec = overview(load_results([exp]), Options(n_resamples=100))
    [line] = [t for t in sec.text if "--warm-start" in t]
    assert "trials #0, #1 were enqueued from" in line and src in line
    assert list(sec.tables["warm_start"]["trials"]) == [2]


def test_report_recommends_the_best_warm_start_per_task() -> None:
    """From the agreement section's pairwise tau: the most similar task, only when tau > 0."""
    import pandas as pd

    from analysis import warm as report_warm

    tau = pd.DataFrame([("a", "b", 3, 1.0, 0.1), ("a", "c", 3, -1 / 3, 0.6),
                        ("b", "c", 3, -1.0, 0.1), ("a", "d", 2, float("nan"), float("nan"))],
                       columns=["task_a", "task_b", "n_common", "tau", "p"])  # fmt: skip
    adv = report_warm.advice(tau, ["a", "b", "c", "d"]).set_index("task")
    assert adv.loc["a", "best_source"] == "b" and adv.loc["b", "best_source"] == "a"
    assert adv.loc["c", "best_source"] == "a" and not adv.loc["c", "recommended"]
    assert not isinstance(adv.loc["d", "best_source"], str)
    lines = report_warm.advice_lines(adv.reset_index())
    assert lines[0].startswith("a: the best warm start would have been b (tau = 1")
    assert "start its search cold" in lines[2] and "no warm-start source" in lines[3]
