"""Issue 14: failed trials steer TPE (Parquet FAIL -> infeasible COMPLETE), and a resume checks
that study and Parquet agree on that mapping.

``python tests/test_search_failures.py`` prints how often a region that always fails is proposed
when failures are told as Optuna FAIL (invisible to TPE) and as infeasible COMPLETE.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lssat.errors import DataError
from search import results
from search.optimize.study import (
    ATTR_TRIAL_ID,
    StudyRef,
    distributions_json,
    optuna_outcome,
    parquet_status,
    reconcile,
)

STARTUP, TRIALS = 10, 40


def failing_region_share(tmp: Path, seed: int, steer: bool) -> float:
    """Share of the post-start-up TPE proposals in a region that always fails (``x > 0.6``;
    the best feasible value sits at its edge, x = 0.55). ``steer``: tell failures through the
    search's mapping; else as Optuna FAIL (what the search did before)."""
    ref = StudyRef(
        str(tmp / f"{seed}-{steer}"),
        "t/fail",
        "max",
        sampler_seed=seed,
        sampler_opts={"n_startup_trials": STARTUP},
    )
    hits = 0
    for _ in range(TRIALS):
        trial = ref.study.ask()
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        fails = x > 0.6
        if trial.number >= STARTUP:
            hits += fails
        value = 1.0 - (x - 0.55) ** 2 - (y - 0.5) ** 2
        if steer:
            ref.tell(trial.number, "FAIL" if fails else "COMPLETE", value, {})
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = TrialState.FAIL if fails else TrialState.COMPLETE
                ref.study.tell(trial.number, None if fails else value, state=state)
    return hits / (TRIALS - STARTUP)


def test_failures_steer_tpe_away_from_a_failing_region(tmp_path: Path) -> None:
    before = [failing_region_share(tmp_path, s, steer=False) for s in range(3)]
    after = [failing_region_share(tmp_path, s, steer=True) for s in range(3)]
    print(f"failing-region share after start-up: before {before}, after {after}")
    assert sum(after) < sum(before) / 2, (before, after)


def test_the_mapping_round_trips() -> None:
    for status, value in (("COMPLETE", 0.7), ("PRUNED", None), ("FAIL", None)):
        state, told, violation = optuna_outcome(status, value, "max")
        frozen = optuna.trial.create_trial(
            state=state,
            value=told,
            system_attrs={"constraints:failed": violation},
        )
        assert parquet_status(frozen) == status
    assert optuna_outcome("FAIL", None, "min")[1] == float("inf")
    assert parquet_status(optuna.trial.create_trial(state=TrialState.FAIL)) == "FAIL"  # old
    with pytest.raises(ValueError, match="'COMPLETE' with value nan"):
        optuna_outcome("COMPLETE", float("nan"), "max")


def _row(exp: Path, number: int, status: str, value: float | None) -> dict:
    return {
        "task": "deepfake",
        "experiment": exp.name,
        "trial_id": f"r{number}",
        "number": number,
        "status": status,
        "final_value": value,
        "metric": "val_auc",
    }


def test_resume_repairs_a_fail_and_refuses_a_disagreeing_study(tmp_path: Path) -> None:
    ref = StudyRef(str(tmp_path), "deepfake/m", "max", metric="val_auc")
    for i in range(3):
        t = ref.study.ask()
        t.suggest_float("lr", 1e-4, 1e-2, log=True)
        t.set_user_attr(ATTR_TRIAL_ID, f"r{i}")
        assert distributions_json(t.distributions) == {
            "lr": json.loads(optuna.distributions.distribution_to_json(t.distributions["lr"]))
        }
    assert ref.study.metric_names == ["val_auc"]
    results.write_trial(tmp_path, _row(tmp_path, 0, "COMPLETE", 0.7))
    ref.tell(0, "COMPLETE", 0.7, {})
    results.write_trial(tmp_path, _row(tmp_path, 1, "FAIL", None))  # the tell never happened
    state = reconcile(StudyRef(str(tmp_path), "deepfake/m", "max"))
    assert state.repaired == [1] and state.finished == 2
    assert parquet_status(ref.study.trials[1]) == "FAIL"
    assert ref.study.trials[1].state == TrialState.COMPLETE  # visible to TPE
    # a row that says something else than the study (here: a FAIL rewritten as COMPLETE)
    results.write_trial(tmp_path, _row(tmp_path, 1, "COMPLETE", 0.9))
    with pytest.raises(
        DataError,
        match="trial 1 is COMPLETE in its Parquet row but COMPLETE "
        r"\(infeasible\) in the study",
    ):
        reconcile(StudyRef(str(tmp_path), "deepfake/m", "max"))


if __name__ == "__main__":  # the figures for the issue note
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seeds = range(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
        for steer in (False, True):
            shares = [failing_region_share(Path(tmp), s, steer) for s in seeds]
            label = "infeasible COMPLETE (now)" if steer else "Optuna FAIL (before)"
            mean = sum(shares) / len(shares)
            print(
                f"{label:27s}: {mean:.1%} of {TRIALS - STARTUP} post-start-up proposals in the "
                f"failing region (x > 0.6, 40% of the space), mean over {len(shares)} seeds"
            )
