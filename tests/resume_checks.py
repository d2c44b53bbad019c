"""Shared checks for searches that were interrupted (driver killed, disk full) and resumed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna

from search import results
from search.optimize.study import STUDY_FILE, parquet_status


def wait_one_done_one_running(
    proc: subprocess.Popen, exp: Path, log: Callable[[], str], timeout: float = 600
) -> None:
    """Poll until a trial has its row while another has epochs but no row, the driver alive;
    fails with the end of ``log()`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = {p.stem for p in (exp / results.TRIALS_DIR).glob("*.parquet")}
        running = {p.stem for p in (exp / results.EPOCHS_DIR).glob("*.parquet")} - done
        if done and running:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"never saw one trial done and one running (exit {proc.poll()}):\n{log()[-3000:]}"
    )


def end_group(pgid: int, grace: float = 3.0) -> None:
    """Give what is left of a killed driver's process group (its local Ray) up to ``grace``
    seconds to exit by itself, then SIGKILL whatever remains."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def rows(exp: Path) -> dict[int, dict]:
    """Trial rows by number (empty when none was written)."""
    df = results.read_trials(exp) if (exp / results.TRIALS_DIR).is_dir() else None
    return {} if df is None or df.empty else {int(r["number"]): r for r in df.to_dict("records")}


def same_row(a: dict, b: dict) -> bool:
    """Equal rows, NaN equal to NaN."""
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) and isinstance(w, float) and math.isnan(v) and math.isnan(w):
            continue
        if v != w:
            return False
    return True


def assert_resumed_exactly(exp: Path, before: dict[int, dict], study: str, budget: int) -> None:
    """The budget is met exactly: one row per trial number, rows finished ``before`` the
    interruption unchanged, the Optuna study agreeing with the Parquet row by row, and each
    trial's epochs 1..epochs_run once, all from that trial."""
    after = rows(exp)
    assert sorted(after) == list(range(budget))
    trials = results.read_trials(exp)
    assert len(trials) == budget and trials["trial_id"].is_unique
    for number, row in before.items():
        assert same_row(row, after[number]), number  # finished trials are not run again
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / STUDY_FILE))
    )
    loaded = optuna.load_study(study_name=study, storage=storage)
    assert len(loaded.trials) == budget
    for t in loaded.trials:
        assert parquet_status(t) == after[t.number]["status"]  # docs/search.md mapping
        assert t.user_attrs["trial_id"] == after[t.number]["trial_id"]
    epochs = results.read_epochs(exp)
    for number, row in after.items():
        mine = epochs[epochs["number"] == number]
        assert sorted(mine["epoch"]) == list(range(1, int(row["epochs_run"]) + 1))
        assert set(mine["trial_id"]) == {row["trial_id"]}
