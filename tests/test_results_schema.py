"""Issue 14: one explicit schema for every result file, readable by any Parquet tool."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lssat.errors import DataError
from search import results


def _row(trial_id: str, number: int, status: str, **extra) -> dict:
    row = {
        "task": "deepfake",
        "experiment": "mixed",
        "trial_id": trial_id,
        "number": number,
        "status": status,
        "metric": "val_auc",
        "mode": "max",
        "params": {"lr": 0.001},
        "attempts": 1,
        **results.config_columns({"lr": 0.001, "backbone": "resnet18", "epochs": 3, "extra": {}}),
    }
    return {**row, **extra}


def _mixed(exp: Path) -> None:
    """A FAIL first (file names sort it first), then PRUNED and COMPLETE trials."""
    # a FAIL of an invalid config: no metrics at all, a string where an int belongs
    results.write_trial(
        exp,
        _row("a_fail", 0, "FAIL", error="OutOfMemoryError: boom", cfg_epochs="three",
             stop_reason="out_of_memory"),
    )  # fmt: skip
    metrics = {"val_auc": 0.61, "val_acc": 0.55, "train_loss": 0.7, "step": 12, "gflops": 0.2}
    results.write_trial(
        exp,
        _row("b_pruned", 1, "PRUNED", final_value=0.61, epochs_run=1,
             stop_reason="early_stopped", **results.final_columns(metrics)),
    )  # fmt: skip
    done = {**metrics, "val_auc": 0.8, "val_video_auc": 0.82}
    results.write_trial(
        exp,
        _row("c_done", 2, "COMPLETE", final_value=0.8, epochs_run=3, val_is_test=False,
             dataset="demo", weights_source=None, **results.final_columns(done)),
    )  # fmt: skip
    ident = {"task": "deepfake", "experiment": "mixed", "number": 0}
    results.write_epochs(exp, {**ident, "trial_id": "a_fail"}, [])
    results.write_epochs(
        exp, {**ident, "trial_id": "b_pruned", "number": 1},
        [{"epoch": 1, "val_auc": 0.61, "checkpoint": None, "node_id": "n1", "step": 4}],
    )  # fmt: skip
    results.write_epochs(
        exp, {**ident, "trial_id": "c_done", "number": 2},
        [{"epoch": e, "val_auc": 0.6 + e / 10, "val_video_auc": 0.7, "checkpoint": "/ck"}
         for e in (1, 2, 3)],
    )  # fmt: skip


@pytest.mark.parametrize("kind", [results.TRIALS_DIR, results.EPOCHS_DIR])
def test_mixed_statuses_read_as_one_table_with_every_tool(tmp_path: Path, kind: str) -> None:
    exp = tmp_path / "deepfake" / "mixed"
    _mixed(exp)
    folder = exp / kind
    files = sorted(folder.glob("*.parquet"))
    schemas = [pq.read_schema(f).remove_metadata() for f in files]
    assert len(files) == 3 and all(s == schemas[0] for s in schemas), "schemas differ"
    rows = 3 if kind == results.TRIALS_DIR else 4
    via_pandas = pd.read_parquet(folder)
    via_arrow = ds.dataset(folder, format="parquet").to_table()
    via_duckdb = duckdb.sql(f"select * from '{folder}/*.parquet'").df()
    ours = (results.read_trials if kind == results.TRIALS_DIR else results.read_epochs)(exp)
    for df in (via_pandas, via_arrow.to_pandas(), via_duckdb, ours):
        assert len(df) == rows
        # the FAIL file comes first and lacks the metric; the column is still there
        col = "final_val_video_auc" if kind == results.TRIALS_DIR else "val_video_auc"
        assert df[col].notna().sum() == (1 if kind == results.TRIALS_DIR else 3)
    assert via_arrow.schema.field("number").type == pa.int64()
    if kind == results.TRIALS_DIR:
        t = ours.set_index("trial_id")
        assert t.loc["c_done", "dataset"] == "demo" and t.loc["c_done", "val_is_test"] is False
        assert pd.isna(t.loc["a_fail", "cfg_epochs"])  # an invalid value never breaks the type
        assert t.loc["a_fail", "cfg_backbone"] == "resnet18"
        assert via_arrow.schema.field("cfg_epochs").type == pa.int64()
        assert via_arrow.schema.field("final_step").type == pa.float64()
        for name in ("val_set", "weights_sha256", "warm_start_from", "param_distributions"):
            assert name in via_arrow.schema.names
        n = duckdb.sql(
            f"select status, count(*) from '{folder}/*.parquet' group by status order by status"
        ).fetchall()
        assert n == [("COMPLETE", 1), ("FAIL", 1), ("PRUNED", 1)]


def test_version_1_files_read_with_new_columns_null(tmp_path: Path) -> None:
    exp = tmp_path / "deepfake" / "old"
    old = {"schema_version": 1, "task": "deepfake", "experiment": "old", "trial_id": "v1",
           "number": 0, "status": "FAIL", "final_value": None, "error": None}  # fmt: skip
    (exp / results.TRIALS_DIR).mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([old]), exp / results.TRIALS_DIR / "v1.parquet")
    results.write_trial(exp, _row("v2", 1, "COMPLETE", final_value=0.7))
    df = results.read_trials(exp).set_index("trial_id")
    assert sorted(df["schema_version"]) == [1, results.SCHEMA_VERSION]
    assert pd.isna(df.loc["v1", "dataset"]) and pd.isna(df.loc["v1", "attempts"])
    assert df.loc["v2", "final_value"] == 0.7


def test_newer_schema_version_is_one_sentence(tmp_path: Path) -> None:
    exp = tmp_path / "x"
    results.write_trial(exp, _row("t", 0, "COMPLETE", final_value=0.5))
    path = exp / results.TRIALS_DIR / "t.parquet"
    table = pq.read_table(path)
    i = table.schema.get_field_index("schema_version")
    table = table.set_column(i, "schema_version", pa.array([99], pa.int64()))
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"t\.parquet' has schema version 99, newer than the 2"):
        results.read_trials(exp)


def test_overlapping_paths_count_each_trial_once(tmp_path: Path) -> None:
    _mixed(tmp_path / "deepfake" / "mixed")
    both = [tmp_path, tmp_path / "deepfake" / "mixed", tmp_path / "deepfake"]
    assert len(results.read_trials(both)) == 3
    assert len(results.read_epochs(both)) == 4


def test_every_column_has_a_type_and_tasks_declare_their_metrics() -> None:
    for name, doc in {**results.TRIAL_COLUMNS, **results.EPOCH_COLUMNS}.items():
        assert isinstance(results.column_type(doc), pa.DataType), name
    from lssat.tasks import TASKS

    rng = np.random.default_rng(0)
    for name, spec in TASKS.items():
        meta = {"classes": ["a", "b", "c"]} if name == "classify" else None
        k = spec.num_outputs(meta)
        logits = rng.normal(size=(20, k))
        labels = (rng.random((20, k)) > 0.5) if spec.label_kind == "multilabel" else (
            rng.integers(0, max(k, 2), 20))  # fmt: skip
        got = set(spec.evaluate(logits, labels, np.arange(20) % 4, None, meta)) | {"val_loss"}
        assert got <= set(spec.metric_keys(meta)), name
