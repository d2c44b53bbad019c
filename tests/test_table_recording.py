"""Large learning-curve tables: ``bench/record_table.py`` trains every grid point in-process
into a folder the replay reads, resumes without training anything twice, records the seed
check, and ``bench/table_signal.py`` compares the spread across configurations with the
seed-to-seed spread."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import yaml

from search import replay, results

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


GRID = {
    "task": "deepfake",
    "metric": "val_auc",
    "mode": "max",
    "sampler": {"name": "grid"},
    "scheduler": "none",
    "fixed": {"epochs": 1, "img_size": 32, "patch_size": 8, "batch_size": 16,
              "train_subset": 2, "val_subset": 4, "aux_weight": 0.0, "backbone": "test_resnet",
              "warmup_epochs": 0.0, "checkpoint_every": 1},
    "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": [1e-4, 3e-3]}},
}  # fmt: skip


def test_record_table_writes_a_replayable_grid_and_resumes(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = _module("record_table")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({**GRID, "data": str(demo_data)}))
    out = tmp_path / "table"
    assert rec.main([str(grid), "--out", str(out), "--seed-check", "1"]) == 0
    table = replay.load_table(out)
    assert len(table.configs) == 2 and table.epochs == 1
    trials = results.read_trials(out)
    assert sorted(trials["number"]) == [0, 1] and list(trials["cfg_seed"]) == [0, 1]
    assert (out / "seeds" / "trials" / "t00000.parquet").is_file()  # the seed check
    again = results.read_trials(out / "seeds")
    assert list(again["cfg_seed"]) == [rec.SEED_OFFSET]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir()}
    capsys.readouterr()
    assert rec.main([str(grid), "--out", str(out)]) == 0  # resumed: nothing trained again
    assert "2 recorded (shard 0/1 has 0 to go)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trials").iterdir()} == before


def test_signal_compares_config_spread_with_seed_spread(tmp_path: Path) -> None:
    sig = _module("table_signal")
    space = {**GRID, "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True,
                                       "grid": [1e-4, 2e-4, 5e-4, 1e-3, 3e-3]}}}  # fmt: skip
    lrs = space["params"]["lr"]["grid"]
    finals = [0.5, 0.6, 0.7, 0.8, 0.9]
    replay.write_table(tmp_path / "t", space,
                       [({"lr": lr}, [v], [1.0]) for lr, v in zip(lrs, finals, strict=True)])
    replay.write_table(tmp_path / "t" / "seeds", space,
                       [({"lr": lr}, [v + d], [1.0]) for lr, v, d in
                        zip(lrs, finals, [0.02, -0.02, 0.02, -0.02, 0.02], strict=True)])
    s = sig.signal(tmp_path / "t")
    assert s["pairs"] == 5 and s["across_sd"] == pytest.approx(0.158114, rel=1e-4)
    assert s["seed_sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert s["ratio_low"] < s["ratio"] < s["ratio_high"] and s["ratio"] > 3
    assert sig.main([str(tmp_path / "t")]) == 0 and (tmp_path / "t" / "signal.csv").is_file()
