"""Hyperparameter importance per task with Optuna's evaluators, over a study rebuilt from Parquet.

Rebuilding from the trial rows (rather than opening the search's journal) works for any results
folder, merged experiments included. Searched parameters are the ``cfg_*`` columns that vary
within the task, minus ``EXCLUDED`` (seeds and runtime knobs). Distributions are inferred:
text/bool columns -> categorical, integers -> int, floats -> float, log scale when the positive
range spans at least a factor of 100.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from search.results import CFG_PREFIX

EXCLUDED = frozenset(
    {"seed", "extra", "task", "device", "precision", "num_workers", "checkpoint_every"}
)
MIN_TRIALS = 8
EVALUATORS = ("fanova", "ped_anova")


def searched_params(trials: pd.DataFrame) -> list[str]:
    """``cfg_*`` columns (without prefix) that take more than one value in these trials."""
    out = []
    for col in trials.columns:
        if not col.startswith(CFG_PREFIX):
            continue
        name = col[len(CFG_PREFIX) :]
        if name in EXCLUDED:
            continue
        if trials[col].dropna().astype(str).nunique() > 1:
            out.append(name)
    return sorted(out)


def _py(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v


def infer_distribution(values: pd.Series) -> BaseDistribution:
    """An Optuna distribution covering the observed values of one config column."""
    v = values.dropna()
    if pd.api.types.is_bool_dtype(v) or not pd.api.types.is_numeric_dtype(v):
        return CategoricalDistribution(sorted({str(_py(x)) for x in v}))
    lo, hi = float(v.min()), float(v.max())
    log = lo > 0 and hi / lo >= 100
    if pd.api.types.is_integer_dtype(v):
        return IntDistribution(int(lo), int(hi), log=log)
    return FloatDistribution(lo, hi, log=log)


def rebuild_study(
    trials: pd.DataFrame, direction: str, params: list[str] | None = None
) -> optuna.Study:
    """An in-memory study holding one COMPLETE trial per row (value = ``value`` column)."""
    params = searched_params(trials) if params is None else params
    dists = {p: infer_distribution(trials[CFG_PREFIX + p]) for p in params}
    study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
    frozen = []
    for _, row in trials.iterrows():
        values, used = {}, {}
        for p, dist in dists.items():
            v = row[CFG_PREFIX + p]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            v = _py(v)
            if isinstance(dist, CategoricalDistribution):
                v = str(v)
            elif isinstance(dist, IntDistribution):
                v = int(v)
            else:
                v = float(v)
            values[p], used[p] = v, dist
        frozen.append(
            optuna.trial.create_trial(value=float(row["value"]), params=values, distributions=used)
        )
    study.add_trials(frozen)
    return study


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs errors only inside the block; its previous verbosity comes back after."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _evaluator(name: str, n_trials: int, seed: int):
    if name == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
    if name == "ped_anova":
        # the default top 10% leaves too few trials in small searches: keep at least 5
        q = min(0.5, max(0.1, 5.0 / max(n_trials, 1)))
        return optuna.importance.PedAnovaImportanceEvaluator(target_quantile=q)
    raise ValueError(f"importance evaluator {name!r} is not one of {', '.join(EVALUATORS)}")


def importances(
    trials: pd.DataFrame, direction: str, seed: int = 0, evaluators: tuple[str, ...] = EVALUATORS
) -> tuple[pd.DataFrame, list[str]]:
    """Normalised importances of the searched parameters for one task.

    Returns (frame with columns param, evaluator, importance, rank; notes). Only COMPLETE trials
    count; fewer than ``MIN_TRIALS`` or no varying parameter gives an empty frame and a note.
    """
    notes: list[str] = []
    done = trials[trials["status"] == "COMPLETE"] if "status" in trials else trials
    done = done[np.isfinite(done["value"])]
    params = searched_params(done)
    cols = ["param", "evaluator", "importance", "rank"]
    if len(done) < MIN_TRIALS:
        notes.append(f"only {len(done)} COMPLETE trials (importance needs {MIN_TRIALS})")
        return pd.DataFrame(columns=cols), notes
    if not params:
        notes.append("no searched parameter varies across its trials")
        return pd.DataFrame(columns=cols), notes
    rows = []
    with _quiet_optuna():
        study = rebuild_study(done, direction, params)
        for name in evaluators:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    imp = optuna.importance.get_param_importances(
                        study, evaluator=_evaluator(name, len(done), seed), params=params
                    )
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                notes.append(f"{name} failed ({exc})")
                continue
            ordered = sorted(imp.items(), key=lambda kv: -kv[1])
            for rank, (p, v) in enumerate(ordered, start=1):
                rows.append({"param": p, "evaluator": name, "importance": float(v), "rank": rank})
    return pd.DataFrame(rows, columns=cols), notes
