"""Issue 17: the multi-objective replay on a shipped table (bench/curves/sbi): objective vectors
from the recording, the grid's true front, a replayed TPE + ASHA search told as the Recorder
tells a multi-objective study, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lssat.errors import ConfigError, DataError
from search import results
from search.replay.mo import FRACTIONS, load_mo_table, simulate_mo
from search.replay_mo import main
from search.results import pareto

CURVES = Path(__file__).resolve().parents[1] / "bench" / "curves"


@pytest.fixture(scope="module")
def sbi():
    return load_mo_table(CURVES / "sbi")


def test_objective_vectors_and_true_front_come_from_the_recording(sbi) -> None:
    assert sbi.objectives == {"val_auc": "max", "gflops": "min"}
    rows = results.read_trials(CURVES / "sbi")
    points = rows[["final_val_auc", "gflops"]].to_numpy(dtype=float)
    want = points[pareto.pareto_mask(points, ["max", "min"])]
    got = sbi.true_front()
    assert sorted(map(tuple, got)) == sorted(map(tuple, want))
    assert sbi.hv(got) == pytest.approx(sbi.hv(sbi.values)) and sbi.hv(got) > 0
    gap = load_mo_table(CURVES / "sbi", "val_auc:max,val_group_gap:min")
    assert np.isfinite(gap.values).all()


def test_replayed_tpe_asha_search_measures_hypervolume(sbi) -> None:
    out = simulate_mo(sbi, "tpe_asha", 0, 4, until=0.25)
    ratios = [out[f"hv_at_{f:g}"] for f in FRACTIONS if f <= 0.25]
    assert all(0.0 <= r <= 1.0 + 1e-9 for r in ratios) and ratios == sorted(ratios)
    assert out["trials"] > 10  # well past TPE's start-up trials, PRUNED ones included


@pytest.mark.parametrize(
    "objectives, error, words",
    [
        ("gflops:min,val_auc:max", ConfigError, "must start with the table's metric"),
        ("val_auc:max,gflops:up", ConfigError, "write NAME:max or NAME:min"),
        ("val_auc:max", ConfigError, "at least one more objective"),
        ("val_auc:max,flops:min", ConfigError, "names 'flops'"),
    ],
)
def test_bad_objectives(objectives: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        load_mo_table(CURVES / "sbi", objectives)


def test_unrecorded_objective_and_cli_exit(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="objective 'val_group_gap' is not recorded"):
        load_mo_table(CURVES / "digits", "val_acc:max,val_group_gap:min")  # digits: no groups
    code = main([str(CURVES / "sbi"), "--objectives", "val_auc:max,gflops:down",
                 "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "gflops:down" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_takes_the_objectives_of_a_multi_objective_space(tmp_path: Path) -> None:
    import json

    import pandas as pd

    space = CURVES.parents[1] / "spaces" / "demo_deepfake_mo.yaml"
    out = tmp_path / "out"
    args = [str(CURVES / "sbi"), "--space", str(space), "--searchers", "random", "--seeds", "2"]
    assert main([*args, "--out", str(out)]) == 0
    summary = pd.read_csv(out / "replay_mo_summary.csv")
    assert json.loads(summary["objectives"].iloc[0]) == {"val_auc": "max", "gflops": "min"}
    assert len(pd.read_csv(out / "replay_mo_runs.csv")) == 2
