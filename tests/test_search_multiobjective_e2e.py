"""Issue 17, end to end (real Ray, Optuna, timm on the demo data): a multi-objective search
(val_auc max, gflops min) with ASHA on the first objective (one ``search.run``, one Ray
instance), the report on it, and the held-out stage's plan for the whole Pareto front
(``search.final --front``; its runs are the final stage's own machinery, tested in
test_final_stage.py). The front is checked against ``optuna.load_study(...).best_trials``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search import results
from search.optimize.study import STUDY_FILE
from search.results import pareto

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SPACE = """\
task: deepfake
trials: 4
objectives: {val_auc: max, gflops: min}
scheduler: {grace_period: 1, reduction_factor: 2}
sampler: {n_startup_trials: 3}
fixed: {epochs: 2, img_size: 32, patch_size: 8, train_subset: 8, val_subset: 4, batch_size: 32,
        warmup_epochs: 0.5, decoder_dim: 32, decoder_depth: 1, checkpoint_every: 2}
params:
  backbone: {choices: [test_resnet, test_convnext, test_vit]}
  lr: {low: 1.0e-3, high: 4.0e-3, log: true}
enqueue:
  - {backbone: test_resnet, lr: 2.0e-3}
  - {backbone: test_convnext, lr: 2.0e-3}
  - {backbone: test_vit, lr: 2.0e-3}
"""


def _cli(module: str, args: list[str], log: Path) -> str:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    out = proc.stdout + proc.stderr
    log.write_text(out)
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def mo(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> tuple[Path, str, Path]:
    """(experiment folder, the search's output, the report folder)."""
    root = tmp_path_factory.mktemp("mo")
    (root / "space.yaml").write_text(SPACE)
    out = _cli("search.run", ["--task", "deepfake", "--space", str(root / "space.yaml"),
                              "--data", str(demo_data), "--results", str(root / "results"),
                              "--name", "mo", "--max-concurrent", "2", "--no-dashboard"],
               root / "search.log")  # fmt: skip
    # the report in this process (no Ray in it): one interpreter and torch import fewer
    from analysis.report import main as report_main

    assert report_main([str(root / "results"), "--out", str(root / "report")]) == 0
    return root / "results" / "deepfake" / "mo", out, root / "report"


def _study(exp: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / STUDY_FILE))
    )
    return optuna.load_study(study_name="deepfake/mo", storage=storage)


def test_study_is_multi_objective_and_its_front_matches_the_rows(mo) -> None:
    exp, _, _ = mo
    study = _study(exp)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_auc", "gflops"]
    trials = results.read_trials(exp)
    assert len(trials) == len(study.trials) == 4
    rows = trials.set_index("number")
    for t in study.trials:
        row = rows.loc[t.number]
        assert json.loads(row["objectives"]) == {"val_auc": "max", "gflops": "min"}
        if t.state == TrialState.COMPLETE and row["status"] == "COMPLETE":
            vals = json.loads(row["objective_values"])
            assert t.values == pytest.approx(vals)
            assert vals == pytest.approx([row["final_val_auc"], row["gflops"]])
        if t.state == TrialState.PRUNED:  # told without a learning curve (MO TPE needs it)
            assert not t.intermediate_values and row["status"] == "PRUNED"
    front = pareto.front(trials)
    assert front is not None
    assert set(front[1]["number"]) == {t.number for t in study.best_trials}


def test_summary_prints_the_front_and_its_reading(mo) -> None:
    exp, out, _ = mo
    front = pareto.front(results.read_trials(exp))[1]
    assert "Pareto front (val_auc max, gflops min):" in out
    for n in front["number"]:
        assert f"  #{int(n)}  val_auc " in out
    assert "best trial (the first objective) #" in out
    if len(front) > 1:  # e.g. "+0.05 val_auc (0.6 -> 0.65) costs 3.29x the GFLOPs"
        assert "  reading: +" in out and "x the GFLOPs" in out


def test_final_front_plans_the_whole_front(mo) -> None:
    import dataclasses

    from lssat.errors import ConfigError
    from search.stages import final

    exp, _, _ = mo
    front = pareto.front(results.read_trials(exp))[1]
    req = final.FinalRequest(experiment=str(exp), top_k=None, seeds=2, resume=False,
                             n_resamples=10, front=True)  # fmt: skip
    plan = final.prepare(req)  # plans only: writes nothing
    assert [r.trial_id for r in plan.runs[::2]] == list(front["trial_id"])
    assert len(plan.runs) == 2 * len(front) and plan.top_k == len(front)
    assert not (exp / results.FINAL_DIR).exists()
    with pytest.raises(ConfigError, match="--front and --top-k exclude each other"):
        final.prepare(dataclasses.replace(req, top_k=2))


def test_report_reads_the_searched_front(mo) -> None:
    exp, _, report = mo
    html = (report / "report.html").read_text()
    assert "Searched objectives (multi-objective studies)" in html
    assert "searched val_auc max, gflops min" in html
    csvs = {p.name for p in report.rglob("*.csv")}
    assert "cost-searched_fronts.csv" in csvs, csvs
