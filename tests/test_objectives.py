"""Issue 17, multi-objective without Ray: the space's ``objectives`` key and its bad input, how
the Recorder tells PRUNED trials to a multi-objective study (TPE must still ``ask()``), the
Pareto front, its hypervolume and its plain-language reading."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from lssat.errors import ConfigError
from search import results
from search.execution.recorder import Recorder, _Live
from search.optimize.space import parse_space
from search.optimize.study import STUDY_FILE, StudyRef, reconcile
from search.results import pareto

BASE = {
    "task": "deepfake",
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "params": {"backbone": {"choices": ["test_resnet", "test_vit"]}},
}


def _space(**extra: object) -> object:
    return parse_space({**BASE, **extra}, "x.yaml")


def test_objectives_key_sets_metric_mode_and_round_trips(tmp_path: Path) -> None:
    space = _space(objectives={"val_auc": "max", "gflops": "min", "params": "min"})
    assert space.multi_objective and space.metric == "val_auc" and space.mode == "max"
    assert list(space.objectives) == ["val_auc", "gflops", "params"]
    space.dump(tmp_path / "space.yaml")
    from search.optimize.space import load_space

    again = load_space(tmp_path / "space.yaml")
    assert again.objectives == space.objectives and again.metric == "val_auc"
    fair = parse_space(
        {
            **BASE,
            "task": "attributes",
            "objectives": {"val_mean_acc": "max", "val_group_gap": "min"},
        },
        "a.yaml",
    )
    assert fair.metric == "val_mean_acc" and fair.objectives["val_group_gap"] == "min"
    one = _space(objectives={"val_auc": "max"})  # one objective = the metric form
    assert not one.multi_objective and one.metric == "val_auc" and one.objectives == {}


@pytest.mark.parametrize(
    "objectives, words",
    [
        ({"val_auc": "max", "flops": "min"}, "names 'flops', which is not an objective"),
        ({"val_auc": "max", "gflops": "minimize"}, "objectives'.gflops is 'minimize'; a direction"),
        ({"val_auc": "up"}, "objectives'.val_auc is 'up'"),
        ({"gflops": "min", "val_auc": "max"}, "starts with 'gflops'; the first objective must"),
        ({"val_mean_acc": "max", "gflops": "min"}, "names 'val_mean_acc'"),  # not deepfake's
        ([], "must be a mapping"),
    ],
)
def test_bad_objectives_are_one_sentence(objectives: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        _space(objectives=objectives)
    assert words in str(err.value) and str(err.value).startswith("x.yaml: key 'objectives")
    assert "\n" not in str(err.value)


def test_metric_next_to_objectives_must_agree() -> None:
    with pytest.raises(ConfigError, match="key 'metric' is 'val_acc', but the first objective"):
        _space(metric="val_acc", objectives={"val_auc": "max", "gflops": "min"})
    with pytest.raises(ConfigError, match="key 'mode' is 'min'"):
        _space(mode="min", objectives={"val_auc": "max", "gflops": "min"})


@pytest.mark.parametrize(
    "objectives, gpus, words",
    [
        ("{val_auc: max, gflops: minimize}", "0", "a direction is max or min"),
        ("{val_auc: max, val_nope: min}", "0", "names 'val_nope'"),
        ("{val_auc: max, latency_ms: min}", "0", "'latency_ms' is only measured on a GPU"),
    ],
)
def test_cli_refuses_bad_objectives_and_writes_nothing(
    tmp_path: Path,
    demo_data: Path,
    capsys: pytest.CaptureFixture,
    objectives: str,
    gpus: str,
    words: str,
) -> None:
    from search.run import main

    space = tmp_path / "s.yaml"
    space.write_text(
        "task: deepfake\nfixed: {epochs: 1, img_size: 32, patch_size: 8}\n"
        f"objectives: {objectives}\nparams:\n  lr: {{low: 1.0e-3, high: 2.0e-3}}\n"
    )
    out = tmp_path / "results"
    code = main(["--task", "deepfake", "--space", str(space), "--data", str(demo_data),
                 "--results", str(out), "--gpus-per-trial", gpus])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# ------------------------------------------------------------------ PRUNED in an MO study
OBJ = {"val_auc": "max", "gflops": "min"}


def _recorder(exp: Path, ref: StudyRef) -> Recorder:
    return Recorder(exp, task="deepfake", experiment="t", metric="val_auc", mode="max", ref=ref,
                    budget=20, finished_before=0, provenance={}, objectives=OBJ)  # fmt: skip


def _finish(rec: Recorder, ref: StudyRef, values: list[float], gflops: float, status: str) -> int:
    """One trial asked from the study and finished through the Recorder's own path."""
    trial = ref.study.ask()
    lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    n = trial.number
    live = _Live(meta={"number": n, "trial_id": f"t{n}", "params": {"lr": lr},
                       "tb_dir": str(rec.exp_dir / "tb" / f"t{n}")},
                 config={"epochs": 3, "lr": lr})  # fmt: skip
    live.rows = [{"epoch": e + 1, "val_auc": v, "gflops": gflops, "params_count": 100}
                 for e, v in enumerate(values)]  # fmt: skip
    rec._finish(SimpleNamespace(path=None, trial_id=f"t{n}"), live, status,
                "completed" if status == "COMPLETE" else "early_stopped", None)  # fmt: skip
    return n


def test_pruned_trials_in_a_multi_objective_study_keep_tpe_asking(tmp_path: Path) -> None:
    """Optuna's multi-objective TPE ranks PRUNED trials by their last intermediate value with
    ``study.direction``, which raises in a multi-objective study: so the Recorder writes no
    intermediate values there (break StudyRef.report's guard and ask() raises RuntimeError)."""
    opts = {"n_startup_trials": 3}
    ref = StudyRef(str(tmp_path), "deepfake/t", "max", sampler_opts=opts, objectives=OBJ)
    rec = _recorder(tmp_path, ref)
    rng = np.random.default_rng(0)
    for i in range(10):
        if i % 3 == 0:
            _finish(rec, ref, [0.6, 0.7, 0.7 + i / 100], 0.01 * (1 + i % 4), "COMPLETE")
        else:
            _finish(rec, ref, [float(rng.uniform(0.4, 0.6))], 0.02, "PRUNED")
    for _ in range(3):  # past the start-up trials: TPE splits COMPLETE and PRUNED trials
        ref.study.ask().suggest_float("lr", 1e-4, 1e-2, log=True)
    study = optuna.load_study(
        study_name="deepfake/t",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / STUDY_FILE))),
    )  # fmt: skip
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_auc", "gflops"]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert len(pruned) == 6 and all(not t.intermediate_values for t in pruned)
    rows = results.read_trials(tmp_path).set_index("number")
    for t in study.trials:
        if t.state != TrialState.COMPLETE:
            continue
        assert t.values == json.loads(rows.loc[t.number, "objective_values"])
        assert json.loads(rows.loc[t.number, "objectives"]) == OBJ
    front = {t.number for t in study.best_trials}
    got = pareto.front(results.read_trials(tmp_path))
    assert got is not None and set(got[1]["number"]) == front
    # a resume reads every finished trial back against its row without complaint
    assert reconcile(ref).finished == 10


def test_fail_and_missing_objective_in_a_multi_objective_study(tmp_path: Path) -> None:
    ref = StudyRef(str(tmp_path), "deepfake/t", "max", objectives=OBJ)
    rec = _recorder(tmp_path, ref)
    n = _finish(rec, ref, [0.6, 0.7, 0.8], math.nan, "COMPLETE")  # FLOP count failed
    t = ref.study.trials[n]
    row = results.read_trials(tmp_path).iloc[0]
    assert row["status"] == "FAIL" and "objective 'gflops' is NaN" in row["error"]
    assert t.state == TrialState.COMPLETE and t.values == [-math.inf, math.inf]
    assert t.constraints == {"failed": 1.0} and ref.study.best_trials == []
    assert pd.isna(row["objective_values"])


# ---------------------------------------------------------------------- front and reading
def _trials(points: list[tuple[float, float]], status: str = "COMPLETE") -> pd.DataFrame:
    return pd.DataFrame({
        "number": range(len(points)), "status": status, "params": "{}",
        "objectives": json.dumps(OBJ),
        "objective_values": [json.dumps(list(p)) for p in points],
    })  # fmt: skip


def test_front_hypervolume_and_reading() -> None:
    points = [(0.70, 0.0025), (0.72, 0.0082), (0.69, 0.0090), (0.71, 0.0025), (0.72, 0.0100)]
    objectives, front = pareto.front(_trials(points))
    assert list(front["number"]) == [1, 3]  # best val_auc first; 0, 2, 4 are dominated
    lines = pareto.reading(objectives, front)
    assert lines == ["+0.01 val_auc (0.71 -> 0.72) costs 3.28x the GFLOPs (0.0025 -> 0.0082; "
                     "#3 -> #1)"]  # fmt: skip
    loss = pareto.as_loss(np.array(points), ["max", "min"])
    ref = np.array([-0.6, 0.02])
    hv = pareto.hypervolume(loss, ref)
    assert hv == pytest.approx((0.72 - 0.6) * (0.02 - 0.0082) + (0.71 - 0.6) * (0.0082 - 0.0025))
    assert pareto.hypervolume(loss[[1, 3]], ref) == pytest.approx(hv)  # the front holds it all
    from optuna._hypervolume import compute_hypervolume

    assert compute_hypervolume(loss, ref) == pytest.approx(hv)  # Optuna's WFG agrees
    gap = pareto.reading({"val_mean_acc": "max", "val_group_gap": "min"},
                         pd.DataFrame({"number": [0, 1], "obj_val_mean_acc": [0.9, 0.88],
                                       "obj_val_group_gap": [0.05, 0.02]}))  # fmt: skip
    assert gap[0].startswith("+0.02 val_mean_acc (0.88 -> 0.9) costs +0.03 val_group_gap")
    assert pareto.front(_trials(points).drop(columns=["objectives"])) is None  # old rows


def test_summary_lines_and_report_section_read_the_front() -> None:
    from analysis.fronts import searched_fronts

    points = [(0.70, 0.0025), (0.72, 0.0082), (0.69, 0.0090), (0.71, 0.0025)]
    trials = _trials(points).assign(
        params=['{"backbone": "test_convnext"}', '{"backbone": "test_resnet"}', "{}", "{}"]
    )
    lines = pareto.front_lines(trials)
    assert lines[0] == "Pareto front (val_auc max, gflops min): 2 of 4 COMPLETE trials"
    assert lines[1].startswith("  #1  val_auc 0.72  gflops 0.0082  (backbone=test_resnet)")
    assert lines[-1].startswith("  reading: +0.01 val_auc (0.71 -> 0.72) costs 3.28x the GFLOPs")
    report = trials.assign(task_key="deepfake/sbi", experiment="mo", trial_id=["a", "b", "c", "d"],
                           backbone="x")  # fmt: skip
    table, reading, figs = searched_fronts(report)
    assert list(table["trial_id"]) == ["b", "d"] and list(figs) == ["deepfake/sbi (mo)"]
    assert reading[0].startswith("deepfake/sbi (mo) searched val_auc max, gflops min: 2 of 4")
    assert "+0.01 val_auc (0.71 -> 0.72) costs 3.28x the GFLOPs" in reading[0]
    assert pareto.front_lines(trials.assign(objectives=None)) == []  # single-objective rows


def test_latency_hook_reports_once_after_the_last_epoch() -> None:
    """The ``latency_ms`` objective's plumbing (timed on CPU here; the search offers it only on
    a GPU): run_trial's final_eval hook adds it to the last epoch's report only."""
    from test_train import _data

    from lssat.config import TrialConfig
    from lssat.latency import final_eval, measure
    from lssat.model import build
    from lssat.train import run_trial

    cfg = TrialConfig.from_dict(dict(
        task="deepfake", backbone="test_resnet", img_size=32, patch_size=8, epochs=2,
        batch_size=8, aux_weight=0.0, lr=1e-3, warmup_epochs=0.5, seed=3))  # fmt: skip
    got = measure(build(cfg), __import__("torch").device("cpu"), None, 32, warmup=1, repeats=3)
    assert got["latency_ms"] > 0 and got["latency_ms_p90"] >= got["latency_ms"]
    reports: list[dict] = []
    run_trial(cfg, _data(), lambda m, ckpt=None: reports.append(dict(m)),
              final_eval=final_eval(32))  # fmt: skip
    assert "latency_ms" not in reports[0] and reports[-1]["latency_ms"] > 0
    from search.optimize.objectives import values_from_epoch

    assert values_from_epoch({"val_auc": "max", "latency_ms": "min"}, reports[-1])[1] > 0


def test_resume_repairs_a_multi_objective_study_from_its_rows(tmp_path: Path) -> None:
    """Rows written but never told (driver killed between the two writes): ``--resume`` tells
    them from the rows, every objective value, no curve for the PRUNED one."""
    ref = StudyRef(str(tmp_path), "deepfake/t", "max", objectives=OBJ)
    for number, (status, vals) in enumerate([("COMPLETE", [0.8, 0.01]), ("PRUNED", [0.4, 0.02])]):
        ref.study.ask().suggest_float("lr", 1e-4, 1e-2, log=True)
        ident = {"task": "deepfake", "experiment": "t", "trial_id": f"t{number}",
                 "number": number}  # fmt: skip
        results.write_epochs(tmp_path, ident, [{"epoch": 1, "val_auc": vals[0]}])
        results.write_trial(tmp_path, {**ident, "status": status, "metric": "val_auc",
                                       "final_value": vals[0], "objectives": json.dumps(OBJ),
                                       "objective_values": vals})  # fmt: skip
    state = reconcile(StudyRef(str(tmp_path), "deepfake/t", "max", objectives=OBJ))
    assert state.repaired == [0, 1] and state.finished == 2
    t0, t1 = StudyRef(str(tmp_path), "deepfake/t", "max", objectives=OBJ).study.trials
    assert t0.state == TrialState.COMPLETE and t0.values == [0.8, 0.01]
    assert t1.state == TrialState.PRUNED and not t1.intermediate_values


def test_final_front_on_a_one_metric_search_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from search.final import main

    exp = tmp_path / "deepfake" / "one"
    exp.mkdir(parents=True)
    (exp / "search.json").write_text(json.dumps({"task": "deepfake", "name": "one"}))
    _space().dump(exp / "space.yaml")
    assert main([str(exp), "--front"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--front needs a multi-objective search" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in exp.iterdir()) == ["search.json", "space.yaml"]
