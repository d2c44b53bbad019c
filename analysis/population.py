"""The research questions from the search's trial population, when no confirmation stage ran.

An adaptive search bends group comparisons: TPE gives promising backbones more trials and
narrower spreads, and ASHA stops slow learners, so COMPLETE trials are a selected subset. The
statistics here hold under both (tests/test_analysis_simulation.py):

- **a common epoch**: every trial (COMPLETE or PRUNED) is valued at the last epoch every one of
  them reached (the first ASHA rung when ASHA stopped any; the last epoch otherwise, where the
  value is the one told to Optuna), from the epoch rows, so no trial is dropped or truncated;
- **medians compared with a bootstrap within each group**: a level's value is its trials'
  median there; the chosen level (the backbone of the trial the selection rule picks) is
  compared with each other by a percentile bootstrap of the difference of medians that
  resamples each group from itself (``scipy.stats.bootstrap``, unpaired), which needs no equal
  spreads (a permutation across groups does), Holm over the comparisons.

It answers "does the typical trial of one backbone beat another's", a location shift; the
expected best of n trials (section 1) stays as a description.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.confirm import Confirmation, Level, boot_p
from search.results.selection import best

MIN_TRIALS = 3  # trials a level needs at the common epoch to be compared


def common_epoch(t: pd.DataFrame) -> int | None:
    """The last epoch every COMPLETE or PRUNED trial of a task reached (None without any)."""
    runs = pd.to_numeric(t["epochs_run"], errors="coerce").dropna() if "epochs_run" in t \
        else pd.Series(dtype=float)  # fmt: skip
    return int(runs.min()) if len(runs) and runs.min() >= 1 else None


def values_at(t: pd.DataFrame, epochs: pd.DataFrame, epoch: int, metric: str) -> pd.Series:
    """Each trial's ``metric`` at ``epoch`` (its epoch rows; ``final_value`` where the trial
    ended there and has no epoch rows), indexed like ``t``."""
    out = pd.Series(np.nan, index=t.index, dtype=float)
    if not epochs.empty and metric in epochs and "epoch" in epochs:
        e = epochs[(epochs["epoch"] == epoch) & epochs["trial_id"].isin(t["trial_id"])]
        by_id = e.drop_duplicates("trial_id", keep="last").set_index("trial_id")[metric]
        out = pd.to_numeric(t["trial_id"].map(by_id), errors="coerce").astype(float)
    ended = pd.to_numeric(t["epochs_run"], errors="coerce") == epoch
    return out.where(out.notna() | ~ended, t["final_value"].astype(float))


def _median_diff(a: np.ndarray, b: np.ndarray, level: float, n_resamples: int,
                 seed: int) -> tuple[float, float, float, float]:  # fmt: skip
    """(median(a) - median(b), low, high, p): percentile bootstrap within each group."""
    point = float(np.median(a) - np.median(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.bootstrap((a, b), lambda x, y, axis: np.median(x, axis=axis)
                            - np.median(y, axis=axis), n_resamples=n_resamples,
                            confidence_level=level, method="percentile", vectorized=True,
                            paired=False, rng=np.random.default_rng(seed))  # fmt: skip
    ci = res.confidence_interval
    return point, float(ci.low), float(ci.high), boot_p(np.asarray(res.bootstrap_distribution))


def _median_ci(x: np.ndarray, level: float, n_resamples: int, seed: int) -> tuple[float, float]:
    if len(x) < MIN_TRIALS or np.all(x == x[0]):
        v = float(x[0]) if len(x) and np.all(x == x[0]) else math.nan
        return v, v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = sps.bootstrap((x,), np.median, n_resamples=n_resamples, confidence_level=level,
                           method="percentile", vectorized=True,
                           rng=np.random.default_rng(seed)).confidence_interval  # fmt: skip
    return float(ci.low), float(ci.high)


def population_task(res: Any, task: str, level: float = 0.95, alpha: float = 0.05,
                    n_resamples: int = 1000, seed: int = 0) -> Confirmation | None:  # fmt: skip
    """RQ1/RQ2 of one task from its trials (see the module docstring); the same shape as a
    confirmation stage's result (``n_seeds`` 0, ``method`` names the epoch)."""
    from analysis.stats import holm

    all_t = res.trials[res.trials["task_key"] == task]
    t = all_t[all_t["status"].isin(("COMPLETE", "PRUNED"))]
    epoch = common_epoch(t)
    if epoch is None:
        return None
    metric, mode = res.metric(task)
    sign = -1.0 if mode == "min" else 1.0
    vals = values_at(t, res.epochs, epoch, metric)
    t = t.assign(_v=vals)[np.isfinite(vals)]
    if t.empty:
        return None
    groups = {str(g): r["_v"].to_numpy(dtype=float) for g, r in t.groupby("backbone")}
    chosen_row = best(all_t, mode)
    chosen = str(chosen_row["backbone"]) if chosen_row and "backbone" in chosen_row else None
    if chosen not in groups:  # no COMPLETE trial: the best median leads
        chosen = max(groups, key=lambda g: sign * float(np.median(groups[g])))
    last = int(pd.to_numeric(all_t["epochs_run"], errors="coerce").max())
    pruned = int((t["status"] == "PRUNED").sum())
    where = (f"median {metric} at epoch {epoch}, the last epoch every trial reached"
             + (f" ({pruned} stopped early by ASHA)" if epoch < last else ""))
    levels = []
    for g, x in groups.items():
        lo, hi = _median_ci(x, level, n_resamples, seed)
        rank = 1 if g == chosen else 2
        levels.append(Level(g, rank, "", math.nan, float(np.median(x)), lo, hi, 0,
                            float(np.std(x, ddof=1)) if len(x) > 1 else math.nan))  # fmt: skip
    comp = []
    a = sign * groups[chosen]
    for i, (g, x) in enumerate(groups.items()):
        if g == chosen or len(x) < MIN_TRIALS or len(a) < MIN_TRIALS:
            continue
        d, lo, hi, p = _median_diff(a, sign * x, level, n_resamples, seed + i)
        comp.append({"task": task, "chosen": chosen, "other": g, "diff": d, "low": lo,
                     "high": hi, "p": p})  # fmt: skip
    comparisons = pd.DataFrame(comp, columns=["task", "chosen", "other", "diff", "low", "high",
                                              "p"])  # fmt: skip
    comparisons["p_holm"] = holm(comparisons["p"].to_numpy()) if len(comparisons) else []
    matters = bool((comparisons["p_holm"] < alpha).any()) if len(comparisons) else None
    notes = []
    small = sorted(g for g, x in groups.items() if len(x) < MIN_TRIALS)
    if small:
        notes.append(f"Fewer than {MIN_TRIALS} trials at epoch {epoch}, not compared: "
                     + ", ".join(small) + ".")
    levels.sort(key=lambda lv: (lv.rank, -sign * lv.value))
    n_trials = {g: int((all_t["backbone"] == g).sum()) for g in groups}
    return Confirmation(task, metric, mode, "backbone", levels, comparisons, matters, where, 0,
                        notes, n_trials, "trials")  # fmt: skip
