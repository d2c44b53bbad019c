"""The result format: atomic per-trial Parquet files, read back through search.results."""

from __future__ import annotations

from pathlib import Path

import pytest

from lssat.errors import DataError
from search import results


def _row(trial_id: str, number: int, status: str = "COMPLETE", **extra) -> dict:
    return {
        "task": "deepfake",
        "experiment": "unit",
        "trial_id": trial_id,
        "number": number,
        "status": status,
        "final_value": 0.5 + number / 10,
        "params": {"lr": 0.001, "backbone": "resnet18"},
        **results.config_columns({"lr": 0.001, "extra": {}}),
        **extra,
    }


def test_trial_rows_round_trip_and_rewrite_replaces(tmp_path: Path) -> None:
    exp = tmp_path / "deepfake" / "unit"
    results.write_trial(exp, _row("a_00000", 0))
    results.write_trial(exp, _row("a_00001", 1, "PRUNED", stop_reason="early_stopped"))
    results.write_trial(exp, _row("a_00001", 1, "FAIL", error="boom"))  # same trial again
    df = results.read_trials(tmp_path)
    assert sorted(df["trial_id"]) == ["a_00000", "a_00001"]
    assert set(df["schema_version"]) == {results.SCHEMA_VERSION}
    again = df.set_index("trial_id")
    assert again.loc["a_00001", "status"] == "FAIL"
    assert again.loc["a_00001", "error"] == "boom"
    assert again.loc["a_00000", "params"] == '{"backbone": "resnet18", "lr": 0.001}'
    assert again.loc["a_00000", "cfg_extra"] == "{}"
    # no temporary files are left behind
    assert sorted(p.name for p in (exp / results.TRIALS_DIR).iterdir()) == [
        "a_00000.parquet",
        "a_00001.parquet",
    ]


def test_epoch_rows_and_empty_reads(tmp_path: Path) -> None:
    ident = {"task": "deepfake", "experiment": "unit", "trial_id": "b_1", "number": 3}
    rows = [{"epoch": 1, "val_auc": 0.6, "checkpoint": None}, {"epoch": 2, "val_auc": 0.7}]
    results.write_epochs(tmp_path, ident, rows)
    ep = results.read_epochs(tmp_path)
    assert list(ep["epoch"]) == [1, 2]
    assert list(ep["number"]) == [3, 3]
    results.write_epochs(tmp_path, ident, [])  # a restarted trial truncates its epochs
    assert results.read_epochs(tmp_path).empty
    assert results.read_trials(tmp_path).empty


def test_bad_rows_and_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status 'DONE'"):
        results.write_trial(tmp_path, _row("c", 0, "DONE"))
    with pytest.raises(ValueError, match="lacks required column 'trial_id'"):
        results.write_trial(tmp_path, {"task": "t", "experiment": "e", "status": "COMPLETE"})
    bad = tmp_path / results.TRIALS_DIR / "broken.parquet"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="broken.parquet"):
        results.read_trials(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        results.read_trials(tmp_path / "missing")


def test_columns_are_documented() -> None:
    for name in ("status", "stop_reason", "error", "params", "session", "final_value"):
        assert name in results.TRIAL_COLUMNS
    assert "checkpoint" in results.EPOCH_COLUMNS
