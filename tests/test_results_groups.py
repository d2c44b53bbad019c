"""Issue 24, item 1: per-group metric columns are declared up front, so a folder with a
group-column COMPLETE file and an early FAIL (no epoch, no metrics) reads as one table with the
README's DuckDB query, pandas and ``pyarrow.dataset``, whichever file sorts first; a folder a
reader cannot unify is one sentence."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from tune_events import Events, dataset

from lssat.errors import DataError
from search import results

GROUPS = {"sex": ["female", "male"], "age": ["young", "old", "senior"]}
GROUP_COLS = [f"val_acc_group_{g}_{i}" for g, v in GROUPS.items() for i in range(len(v))]


def _experiment(root: Path, fail_first: bool) -> Path:
    exp = root / "deepfake" / ("fail-first" if fail_first else "done-first")
    ev = Events(exp, dataset(root / "data", GROUPS))
    done_id, fail_id = ("b_done", "a_fail") if fail_first else ("a_done", "b_fail")
    done = ev.trial(done_id, 0)
    fail = ev.trial(fail_id, 1, img_size="abc")
    ev.own_error(fail, "ConfigError: img_size is 'abc'")  # before its first epoch
    ev.complete(fail)
    for epoch in (1, 2):
        # the validation split holds no 'senior' rows: that group's column is never reported
        groups = {c: 0.5 + epoch / 10 for c in GROUP_COLS if c != "val_acc_group_age_2"}
        ev.result(done, epoch, val_auc=0.6 + epoch / 10, train_loss=0.5, **groups)
    ev.complete(done)
    ev.close()
    return exp


@pytest.mark.parametrize("fail_first", [True, False], ids=["fail-sorts-first", "done-first"])
def test_group_columns_survive_every_reader(tmp_path: Path, fail_first: bool) -> None:
    exp = _experiment(tmp_path, fail_first)
    trials = exp / results.TRIALS_DIR
    readme = duckdb.sql(
        "select cfg_backbone, count(*) as trials, max(final_value) as best "
        f"from '{trials}/*.parquet' where status <> 'FAIL' group by cfg_backbone "
        "order by best desc"
    ).fetchall()
    assert readme == [("resnet18", 1, pytest.approx(0.8))]
    cols = [f"final_{c}" for c in GROUP_COLS]
    for kind, names, rows in ((trials, cols, 2), (exp / results.EPOCHS_DIR, GROUP_COLS, 2)):
        schemas = [pq.read_schema(f).remove_metadata() for f in sorted(kind.glob("*.parquet"))]
        assert all(s == schemas[0] for s in schemas), f"{kind.name}: files differ in schema"
        frames = {
            "duckdb": duckdb.sql(f"select * from '{kind}/*.parquet'").df(),
            "pandas": pd.read_parquet(kind),
            "pyarrow.dataset": ds.dataset(kind, format="parquet").to_table().to_pandas(),
            "read_*": (results.read_trials if kind == trials else results.read_epochs)(exp),
        }
        for reader, df in frames.items():
            assert len(df) == rows, reader
            missing = [c for c in names if c not in df.columns]
            assert not missing, f"{reader} dropped {missing}"
            assert df[names[0]].notna().sum() == (1 if kind == trials else 2), reader
            assert df[names[-1]].isna().all(), reader  # declared, never reported
    t = results.read_trials(exp).set_index("status")
    assert pd.isna(t.loc["FAIL", "final_val_acc_group_sex_0"])
    assert t.loc["COMPLETE", "final_val_acc_group_sex_1"] == pytest.approx(0.7)


def test_a_metric_null_in_every_row_of_one_file_reads(tmp_path: Path) -> None:
    exp = tmp_path / "deepfake" / "x"
    ident = {"task": "deepfake", "experiment": "x", "number": 0}
    results.write_epochs(exp, {**ident, "trial_id": "a"}, [{"epoch": 1, "val_custom": None}])
    results.write_epochs(exp, {**ident, "trial_id": "b"}, [{"epoch": 1, "val_custom": 0.5}])
    # and a file from before this issue, where such a column was typed as text
    old = pq.read_table(exp / results.EPOCHS_DIR / "a.parquet").to_pylist()
    old[0]["trial_id"] = "c"
    table = pa.Table.from_pylist(old).set_column(
        pa.Table.from_pylist(old).schema.get_field_index("val_custom"), "val_custom",
        pa.array([None], pa.string()))  # fmt: skip
    pq.write_table(table, exp / results.EPOCHS_DIR / "c.parquet")
    df = results.read_epochs(exp).set_index("trial_id")
    assert df.loc["b", "val_custom"] == 0.5 and df["val_custom"].isna().sum() == 2


def test_an_uncastable_value_is_one_sentence(tmp_path: Path) -> None:
    exp = tmp_path / "deepfake" / "old"
    (exp / results.TRIALS_DIR).mkdir(parents=True)
    v1 = {"schema_version": 1, "task": "deepfake", "experiment": "old", "trial_id": "v1",
          "number": 0, "status": "COMPLETE", "cfg_img_size": "abc"}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([v1]), exp / results.TRIALS_DIR / "v1.parquet")
    with pytest.raises(DataError) as err:
        results.read_trials(exp)
    text = str(err.value)
    assert "v1.parquet" in text and "cfg_img_size" in text and "'abc'" in text
    assert "\n" not in text
    # a metric that is text in one file and a number in another: one sentence too
    ident = {"task": "deepfake", "experiment": "old", "number": 0}
    results.write_epochs(exp, {**ident, "trial_id": "a"}, [{"epoch": 1, "val_x": 0.5}])
    bad = pa.table({"schema_version": [2], "task": ["deepfake"], "experiment": ["old"],
                    "trial_id": ["b"], "number": [1], "epoch": [1], "val_x": ["high"]})  # fmt: skip
    pq.write_table(bad, exp / results.EPOCHS_DIR / "b.parquet")
    with pytest.raises(DataError, match=r"column 'val_x'.*'high'"):
        results.read_epochs(exp)
