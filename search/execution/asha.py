"""ASHA's rung records survive ``--resume``: rebuilt from the epoch Parquet.

Ray's ``ASHAScheduler`` keeps, per bracket, a list of rungs ``(milestone, {trial_id: value})``
(``value`` = the metric times +1 for ``max``, -1 for ``min``) and judges a trial that reaches a
milestone against the values recorded there. A resumed search starts a fresh scheduler, so
without this module every rung is empty again and a trial resumed at epoch 5 is judged at the
highest rung below 5 against whatever the new session has recorded.

:func:`replay` feeds a trial's epoch rows to the bracket exactly as its results arrived in the
uninterrupted run (``_Bracket.on_result``, which records a value at the first epoch that reaches
each milestone), so the records equal those of a run that never stopped:

- trials that finished (COMPLETE, PRUNED, FAIL rows) are replayed under their ``trial_id``
  before the resumed session schedules anything (:func:`restore_rungs`), COMPLETE and PRUNED
  ones with the extra record ``on_trial_complete`` makes from their last result;
- a trial run again from its checkpoint at epoch ``e`` is replayed (its epochs ``<= e``) under
  the new Ray trial id it gets in this session, when the searcher hands it out
  (:func:`resumed_hook`); ASHA then judges it next at the first rung above ``e``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search import results


class _Key:
    """Stands in for a Tune trial (the bracket only reads ``trial_id``)."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def _bracket(scheduler: Any) -> Any:
    brackets = getattr(scheduler, "_brackets", None)
    if not brackets or len(brackets) != 1:
        raise ValueError("expected an ASHAScheduler with one bracket (Ray's default)")
    return brackets[0]


def replay(
    scheduler: Any,
    trial_id: str,
    rows: Any,
    metric: str,
    mode: str,
    upto: int | None = None,
    ended: bool = False,
) -> int:
    """Feed ``rows`` (a trial's epoch rows, a DataFrame) to the scheduler's bracket under
    ``trial_id``, in epoch order, up to epoch ``upto``, as ``on_trial_result`` did (no record
    at ``max_t``); ``ended``: the trial ended normally (COMPLETE or PRUNED), so its last result
    also went through ``on_trial_complete``. Returns the rows replayed."""
    if rows is None or len(rows) == 0 or metric not in rows:
        return 0
    bracket, op, n = _bracket(scheduler), (1.0 if mode == "max" else -1.0), 0
    max_t = getattr(scheduler, "_max_t", math.inf)
    stop_last = getattr(scheduler, "_stop_last_trials", True)
    last: tuple[int, float] | None = None
    for _, row in rows.sort_values("epoch").iterrows():
        epoch, value = int(row["epoch"]), row[metric]
        if upto is not None and epoch > upto:
            break
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # no metric in that result: ASHA skipped it too
        last = (epoch, op * float(value))
        n += 1
        if epoch >= max_t and stop_last:
            continue  # on_trial_result stops it there without recording
        bracket.on_result(_Key(trial_id), *last)
    if ended and last is not None:
        bracket.on_result(_Key(trial_id), *last)  # on_trial_complete's record
    return n


def restore_rungs(scheduler: Any, exp_dir: Path, metric: str, mode: str) -> int:
    """Replay every finished trial's epochs (rows in ``trials/``); returns the trials."""
    trials = results.read_trials(exp_dir) if (exp_dir / results.TRIALS_DIR).is_dir() else None
    if trials is None or trials.empty:
        return 0
    count = 0
    for trial_id, status in zip(trials["trial_id"], trials["status"], strict=True):
        path = exp_dir / results.EPOCHS_DIR / f"{trial_id}.parquet"
        rows = results.read_epochs(path) if path.is_file() else None
        ended = status in ("COMPLETE", "PRUNED")
        if replay(scheduler, str(trial_id), rows, metric, mode, ended=ended):
            count += 1
    return count


def resumed_hook(
    scheduler: Any, exp_dir: Path, metric: str, mode: str
) -> Callable[[str, str, int], None]:
    """``searcher.on_resumed``: replay a re-run trial's epochs up to its checkpoint under its
    new Ray trial id."""

    def hook(ray_trial_id: str, stable_id: str, checkpoint_epoch: int) -> None:
        path = exp_dir / results.EPOCHS_DIR / f"{stable_id}.parquet"
        if path.is_file():
            rows = results.read_epochs(path)
            replay(scheduler, ray_trial_id, rows, metric, mode, checkpoint_epoch)

    return hook


def rung_records(scheduler: Any) -> dict[int, dict[str, float]]:
    """``{milestone: {trial_id: value}}`` of the scheduler's bracket (for tests and logs)."""
    return {int(m): dict(rec) for m, rec in _bracket(scheduler)._rungs}


# ASHA's defaults where neither the flags nor the space set them: tuned by replaying the
# learning-curve tables (bench/tune_replay.py, docs/search.md "Learning-curve tables")
GRACE_FRACTION = 0.33  # grace period = ceil(0.33 x the trial's epochs)
REDUCTION_FACTOR = 2


def grace_epochs(fraction: float, epochs: int) -> int:
    """Grace period of ``scheduler.grace_fraction``: ceil(fraction x epochs), 1..epochs."""
    return min(epochs, max(1, math.ceil(fraction * epochs - 1e-9)))


def asha_settings(
    space: Any, grace_period: int | None = None, reduction_factor: int | None = None
) -> tuple[int, int]:
    """ASHA's grace period and reduction factor: the given values (the flags), else the
    space's (grace_period or grace_fraction x epochs), else GRACE_FRACTION x epochs and
    REDUCTION_FACTOR."""
    sched = space.scheduler
    grace = (
        grace_period
        or sched.get("grace_period")
        or grace_epochs(sched.get("grace_fraction", GRACE_FRACTION), space.epochs)
    )
    rf = reduction_factor or sched.get("reduction_factor", REDUCTION_FACTOR)
    return grace, rf


def make_scheduler(
    space: Any, grace_period: int | None = None, reduction_factor: int | None = None
) -> Any:
    """ASHA with the space's (or the given) settings; under ``scheduler: none`` (recording
    mode) Tune's FIFOScheduler, so every trial runs all its epochs."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if not space.early_stopping:
        return FIFOScheduler()
    epochs = space.epochs
    grace, rf = asha_settings(space, grace_period, reduction_factor)
    return ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=min(grace, epochs), reduction_factor=rf
    )
