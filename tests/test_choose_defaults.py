"""``bench/choose_defaults.py``: settings are chosen on the other tables' tuning seeds and
reported on the held-out table's disjoint seeds; rows are cached and not replayed twice."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from search import replay

ROOT = Path(__file__).resolve().parents[1]
LRS = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3]
SPACE = {"task": "deepfake", "metric": "val_auc", "mode": "max", "sampler": {"name": "grid"},
         "scheduler": "none", "fixed": {"epochs": 3, "img_size": 32, "patch_size": 8},
         "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": LRS}}}  # fmt: skip


def _module():
    spec = importlib.util.spec_from_file_location("choose_defaults",
                                                  ROOT / "bench" / "choose_defaults.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["choose_defaults"] = mod
    spec.loader.exec_module(mod)
    return mod


def _table(path: Path, shift: float) -> Path:
    curves = [({"lr": lr}, [i / 20, i / 10 + shift, i / 10], [1.0] * 3) for i, lr in enumerate(LRS)]
    return replay.write_table(path, SPACE, curves)


def test_leave_one_table_out_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cd = _module()
    assert cd.parse_grid("n_startup_trials=2,4;reduction_factor=2") == [
        {"n_startup_trials": 2, "reduction_factor": 2},
        {"n_startup_trials": 4, "reduction_factor": 2},
    ]
    two = [{"n_startup_trials": 2, "grace_period": 1}, {"n_startup_trials": 2, "grace_period": 2}]
    assert cd.candidates(["tpe_asha", "tpe"], two) == [  # TPE alone reads no ASHA key
        {"searcher": "tpe_asha", "n_startup_trials": 2, "grace_period": 1},
        {"searcher": "tpe_asha", "n_startup_trials": 2, "grace_period": 2},
        {"searcher": "tpe", "n_startup_trials": 2},
    ]
    with pytest.raises(cd.ConfigError, match="--searchers entry 'bohb'"):
        cd.candidates(["bohb"], two)
    a, b = _table(tmp_path / "a", 0.0), _table(tmp_path / "b", 0.01)
    out = tmp_path / "loto.csv"
    argv = [str(a), str(b), "--grid", "n_startup_trials=2,4;grace_period=1", "--tune-seeds",
            "10:12", "--report-seeds", "0:3", "--top", "0.1", "--out", str(out)]
    assert cd.main(argv) == 0
    text = capsys.readouterr().out
    assert "held out a: chosen on b:" in text and "held out b: chosen on a:" in text
    assert "chosen on every table:" in text
    rows = pd.read_csv(out)
    assert set(rows["seeds"]) == {"10:12", "0:3"}  # tuning and reporting seeds kept apart
    n = len(rows)
    assert cd.main(argv) == 0 and len(pd.read_csv(out)) == n  # every row came from the cache
    assert cd.main([*argv[:-2], "--report-seeds", "11:13", "--out", str(out)]) == 2
    assert "overlap" in capsys.readouterr().err
