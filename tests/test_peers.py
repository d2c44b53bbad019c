"""bench/peers.py (issue 25, item 3): the peers' metric is charged every trained epoch, takes the
incumbent only from trials that ran every epoch and counts an unreached seed at 1.0; Optuna's
TPE + HyperbandPruner runs on the replay's asynchronous clock; the CSVs resume. The Syne Tune
half runs only where syne_tune imports (the peers venv), else it is skipped."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from search.replay.table import key, load_table, write_table

ROOT = Path(__file__).resolve().parents[1]
LRS = [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3]  # config i = LRS[i]
SPACE = {
    "task": "deepfake",
    "metric": "val_auc",
    "mode": "max",
    "sampler": {"name": "grid"},
    "scheduler": "none",
    "fixed": {"epochs": 3, "img_size": 32, "patch_size": 8},
    "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": LRS}},
}


def _peers():
    spec = importlib.util.spec_from_file_location("peers", ROOT / "bench/peers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peers"] = mod  # its dataclasses resolve their module
    spec.loader.exec_module(mod)
    return mod


def _table(tmp_path: Path) -> Path:
    """8 configs x 3 epochs, final value i/10 (config 7 the planted best, the top set at any
    top <= 1/8), epoch times 1 + i/10 s so no two events tie."""
    curves = [({"lr": lr}, [i / 20, i / 15, i / 10], [1 + i / 10] * 3) for i, lr in enumerate(LRS)]
    return write_table(tmp_path / "exp", SPACE, curves)


def test_account_charges_epochs_and_takes_only_finished_trials(tmp_path: Path) -> None:
    peers = _peers()
    table = load_table(_table(tmp_path))
    assert table.grid_epochs == 24
    best, other = key({"lr": LRS[7]}), key({"lr": LRS[0]})
    # the best's first two epochs do not count (not finished); a full weak trial is the
    # incumbent but not in the top set; the best's third epoch reaches at 6 epochs spent
    events = [(1.0, best, 1), (2.0, other, 1), (3.0, best, 2), (4.0, other, 2),
              (5.0, other, 3), (7.2, best, 3), (8.0, other, 1)]  # fmt: skip
    run = peers.account(table, events, top=0.05)
    assert run.reached and run.epochs == 6 and run.reach == pytest.approx(6 / 24)
    assert run.hours == pytest.approx(7.2 / 3600) and run.end == "reached"
    # the best stopped after 2 epochs: never reached; counted at the full grid
    stopped = peers.account(table, [e for e in events if e[1] != best or e[2] < 3], top=0.05)
    assert not stopped.reached and stopped.reach == 1.0 and stopped.epochs == 6
    assert stopped.end == "stopped"
    # a budget: unreached once the grid's epochs are spent
    many = [(float(i), other, 1 + i % 3) for i in range(40)]
    capped = peers.account(table, many, top=0.05)
    assert capped.reach == 1.0 and capped.epochs == 24 and capped.end == "budget"


def test_optuna_hyperband_runs_on_the_async_clock(tmp_path: Path) -> None:
    peers = _peers()
    table = load_table(_table(tmp_path))
    events = []
    for ev in peers.optuna_events(table, seed=0, concurrency=2):
        events.append(ev)
        if len(events) == table.grid_epochs:
            break
    clocks = [c for c, _, _ in events]
    assert clocks == sorted(clocks)  # one clock, events in order
    # each trial's epochs run 1, 2, ... on its slot, each charged its recorded time
    by_key: dict[str, list[int]] = {}
    for _, k, ep in events:
        by_key.setdefault(k, []).append(ep)
    for eps in by_key.values():
        starts = [i for i, e in enumerate(eps) if e == 1]
        runs = [eps[a:b] for a, b in zip(starts, [*starts[1:], len(eps)], strict=True)]
        assert all(r == list(range(1, len(r) + 1)) for r in runs)
    # two slots: at most two trials are mid-training at any clock
    first = events[0]
    assert first[2] == 1 and first[0] == pytest.approx(table.configs[first[1]].times[0])
    # Hyperband pruned at least one trial before its last epoch (24 epochs, 3 per full trial)
    n_trials = sum(1 for _, _, ep in events if ep == 1)
    assert n_trials > table.grid_epochs // table.epochs
    again = peers.optuna_events(table, seed=0, concurrency=2)
    again = list(zip(range(len(events)), again, strict=False))
    assert [e for _, e in again] == events  # seeded: the same run
    run = peers.account(table, events, top=0.05)
    assert math.isclose(run.reach, 1.0) or run.reach == run.epochs / 24


def test_cli_writes_resumable_csvs_and_reports_missing_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    peers = _peers()
    exp, out = _table(tmp_path), tmp_path / "out"
    have_st = importlib.util.find_spec("syne_tune") is not None
    methods = "optuna_tpe_hyperband" + ("" if have_st else ",st_asha")
    argv = [str(exp), "--seeds", "3", "--top", "0.05", "--out", str(out), "--methods",
            methods, "--peers-python", str(tmp_path / "no-such-python")]  # fmt: skip
    assert peers.main(argv) == 0
    text = capsys.readouterr().out
    assert "peers exp optuna_tpe_hyperband: " in text and "reached " in text
    if not have_st:
        assert "peers exp st_asha: not run: syne_tune is not importable here" in text
    runs = pd.read_csv(out / "peers_runs.csv")
    assert len(runs) == 3 and set(runs["method"]) == {"optuna_tpe_hyperband"}
    assert ((runs["reach"] == 1.0) | runs["reached"]).all()
    assert (runs[~runs["reached"]]["reach"] == 1.0).all()
    assert peers.main(argv) == 0  # resumed: nothing new
    assert len(pd.read_csv(out / "peers_runs.csv")) == 3
    summary = pd.read_csv(out / "peers_summary.csv")
    row = summary.iloc[0]
    assert row["seeds"] == 3 and row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert row["reached_share"] == pytest.approx(runs["reached"].mean(), abs=1e-3)


def test_syne_tune_asha_on_the_table(tmp_path: Path) -> None:
    pytest.importorskip("syne_tune")
    peers = _peers()
    table = load_table(_table(tmp_path))
    spec = peers.table_spec(table, 0.05)
    events = peers._peers_syne().run(spec, "st_asha", seed=0, concurrency=2)
    run = peers.account(table, map(tuple, events), top=0.05)
    assert 0 < run.epochs <= table.grid_epochs
    assert run.reached == (run.end == "reached")
