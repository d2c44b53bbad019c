"""End to end: a real search (Ray Tune + Optuna + ASHA) on the demo data, via the CLI.

Uses the session fixture ``demo_search`` (tests/conftest.py): 6 trials, 2 at a time, 2 epochs;
trial 0 is made to fail (batch size 1 under BatchNorm).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from search import results
from search.optimize.study import STUDY_FILE, parquet_status

pytestmark = pytest.mark.slow


def _study(exp: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / STUDY_FILE))
    )
    return optuna.load_study(study_name=f"deepfake/{exp.name}", storage=storage)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)
    return a == b


def test_parquet_rows_match_the_study(demo_search: Path) -> None:
    trials = results.read_trials(demo_search)
    assert len(trials) == 6
    assert sorted(trials["number"]) == list(range(6))
    assert trials["trial_id"].is_unique
    assert set(trials["schema_version"]) == {results.SCHEMA_VERSION}
    study = _study(demo_search)
    assert len(study.trials) == 6
    assert study.metric_names == ["val_auc"]  # optuna-dashboard names the objective
    import duckdb
    import pyarrow.dataset as ds

    folder = demo_search / results.TRIALS_DIR  # FAIL, PRUNED and COMPLETE read as one table
    assert len(ds.dataset(folder).to_table()) == 6
    assert duckdb.sql(f"select count(*) from '{folder}/*.parquet'").fetchall() == [(6,)]
    rows = trials.set_index("number")
    for t in study.trials:
        row = rows.loc[t.number]
        assert parquet_status(t) == row["status"], t.number  # the Parquet -> Optuna mapping
        assert t.user_attrs["trial_id"] == row["trial_id"]
        assert set(json.loads(row["param_distributions"])) == set(t.params)
        if row["status"] == "FAIL":  # an infeasible COMPLETE with the worst value: TPE sees it
            assert t.state == TrialState.COMPLETE and t.value == -math.inf
            assert t.constraints == {"failed": 1.0}
            assert t.user_attrs["error"] == row["error"]
        elif t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(row["final_value"])
            assert row["epochs_run"] == 2 and row["stop_reason"] == "completed"
        if t.state == TrialState.PRUNED:
            assert t.value == pytest.approx(row["final_value"])  # its last value, not a guess
            assert row["epochs_run"] < 2 and row["stop_reason"] == "early_stopped"
        assert json.loads(row["params"]) == t.params
        for key, value in t.params.items():
            assert _same(row[f"cfg_{key}"], value)


def test_failed_and_pruned_trials_tell_the_truth(demo_search: Path) -> None:
    trials = results.read_trials(demo_search).set_index("number")
    failed = trials.loc[0]
    assert failed["status"] == "FAIL"
    assert failed["stop_reason"] == "error"
    assert failed["error"].startswith("ValueError: Expected more than 1 value per channel")
    assert failed["epochs_run"] == 0
    statuses = set(trials["status"])
    assert "COMPLETE" in statuses
    # ASHA at rung 1 keeps the top quarter of 5 working trials: some trial is stopped early
    assert "PRUNED" in statuses, trials[["status", "best_value"]]
    log = (demo_search.parents[2] / "search.log").read_text()
    assert "best trial #" in log and "tensorboard --logdir" in log and STUDY_FILE in log


def test_epoch_rows_match_trial_rows(demo_search: Path) -> None:
    trials = results.read_trials(demo_search).set_index("trial_id")
    epochs = results.read_epochs(demo_search)
    for trial_id, row in trials.iterrows():
        mine = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        assert list(mine["epoch"]) == list(range(1, int(row["epochs_run"]) + 1)), trial_id
        assert set(mine["number"]) <= {row["number"]}
        if len(mine):
            assert _same(float(mine["val_auc"].iloc[-1]), float(row["final_val_auc"]))
            assert mine["samples_per_s"].gt(0).all()


def test_tensorboard_has_scalars_hparams_and_pictures(demo_search: Path) -> None:
    trials = results.read_trials(demo_search)
    tb = demo_search / "tensorboard"
    pictures = 0
    for _, row in trials.iterrows():
        ea = EventAccumulator(str(tb / row["trial_id"]), size_guidance={"images": 0})
        ea.Reload()
        tags = ea.Tags()
        content = ea.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        assert start.hparams["status"].string_value == row["status"]
        assert metadata.SESSION_END_INFO_TAG in content
        if row["epochs_run"] > 0:
            assert "val_auc" in tags["scalars"]
            assert len(ea.Scalars("val_auc")) == row["epochs_run"]
        if row["status"] != "FAIL":
            assert "search/best_val_auc" in tags["scalars"]
        pictures += "reconstruction" in tags["images"]
    assert pictures >= 1  # trial 1 trains the auxiliary task


def test_experiment_folder_layout(demo_search: Path) -> None:
    for name in ("space.yaml", "search.json", STUDY_FILE, "trials", "epochs", "tensorboard"):
        assert (demo_search / name).exists(), name
    assert (demo_search / "ray" / "session-0").is_dir()
    settings = json.loads((demo_search / "search.json").read_text())
    assert settings["trials"] == 6 and len(settings["sessions"]) == 1


def test_trial_columns_are_exactly_the_documented_ones(demo_search: Path) -> None:
    """Every column the Recorder writes, besides the cfg_* / final_* families, is documented
    in ``results.TRIAL_COLUMNS``, and every documented one is written."""
    columns = set(results.read_trials(demo_search).columns)
    families = (results.CFG_PREFIX, results.FINAL_PREFIX)
    plain = {c for c in columns if c in results.TRIAL_COLUMNS or not c.startswith(families)}
    assert plain == set(results.TRIAL_COLUMNS)  # final_value is documented, final_<x> are not
    assert any(c.startswith(results.CFG_PREFIX) for c in columns)
    assert any(c.startswith(results.FINAL_PREFIX) for c in columns)
