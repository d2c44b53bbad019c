"""Hyperparameter importance per task with Optuna's evaluators, over a study rebuilt from Parquet.

Rebuilding from the trial rows (rather than opening the search's journal) works for any results
folder, merged experiments included. What counts is what the sampler really drew:

- each trial's *active* parameters, from its ``params`` JSON (a conditional parameter such as
  ``mask_ratio`` is absent when ``aux_weight = 0``; its ``cfg_*`` default there is not a value
  the search chose, so it is not scored there);
- the *real* distributions, from the row's ``param_distributions`` (Optuna's JSON form, written
  by the search), so a log-scaled ``lr`` is log-scaled here and the analysis needs no search
  space. Rows without it (older files) get distributions inferred from the values, said in a note.

Parameters active in every trial are scored together over all trials (scope ``all``). Each
conditional group (parameters active in the same trials) is scored within those trials, with
the always-active parameters alongside (scope ``active in k/N``). fANOVA and PED-ANOVA are run
side by side; :func:`side_by_side` says where they disagree.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)

from search.results import CFG_PREFIX

EXCLUDED = frozenset(
    {"seed", "extra", "task", "device", "precision", "num_workers", "checkpoint_every"}
)
MIN_TRIALS = 8
EVALUATORS = ("fanova", "ped_anova")
ALL = "all"
COLUMNS = ["param", "evaluator", "importance", "rank", "scope", "n_trials"]


def searched_params(trials: pd.DataFrame) -> list[str]:
    """``cfg_*`` columns (without prefix) that take more than one value in these trials (the
    fallback for rows without a ``params`` JSON)."""
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


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def infer_distribution(values: pd.Series) -> BaseDistribution:
    """An Optuna distribution covering the observed values of one parameter (the fallback when
    rows carry no recorded distribution)."""
    v = pd.Series([_py(x) for x in values if not _missing(x)])
    numeric = len(v) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in v
    )
    if not numeric:
        return CategoricalDistribution(sorted({str(x) for x in v}))
    lo, hi = float(v.min()), float(v.max())
    log = lo > 0 and hi / lo >= 100
    if all(isinstance(x, int) for x in v):
        return IntDistribution(int(lo), int(hi), log=log)
    return FloatDistribution(lo, hi, log=log)


def _merge(dists: list[BaseDistribution]) -> BaseDistribution | None:
    """One distribution covering several experiments' versions of a parameter (None when they
    are of different kinds)."""
    first = dists[0]
    if all(d == first for d in dists):
        return first
    if all(isinstance(d, CategoricalDistribution) for d in dists):
        choices: list[Any] = []
        for d in dists:
            choices += [c for c in d.choices if c not in choices]
        return CategoricalDistribution(choices)
    for kind in (FloatDistribution, IntDistribution):
        if all(isinstance(d, kind) for d in dists):
            log = all(d.log for d in dists)
            return kind(min(d.low for d in dists), max(d.high for d in dists), log=log)
    return None


def _json(v: object) -> dict[str, Any]:
    if isinstance(v, str) and v.strip():
        try:
            out = json.loads(v)
        except json.JSONDecodeError:
            return {}
        return out if isinstance(out, dict) else {}
    return {}


def active_params(
    trials: pd.DataFrame,
) -> tuple[list[dict[str, Any]], dict[str, BaseDistribution], list[str]]:
    """(each row's active parameters, one distribution per parameter, notes).

    From the ``params`` and ``param_distributions`` JSON columns; rows without ``params``
    fall back to the varying ``cfg_*`` columns (every parameter then counts as active)."""
    notes: list[str] = []
    has_params = "params" in trials and trials["params"].map(_json).map(bool).any()
    if not has_params:
        names = searched_params(trials)
        notes.append("no 'params' JSON in the rows: every varying config column counts as "
                     "sampled (defaults of inactive parameters included)")
        rows = [
            {p: _py(r[CFG_PREFIX + p]) for p in names if not _missing(r[CFG_PREFIX + p])}
            for _, r in trials.iterrows()
        ]
    else:
        rows = [
            {k: v for k, v in _json(p).items() if k not in EXCLUDED}
            for p in trials["params"]
        ]
    recorded: dict[str, list[BaseDistribution]] = {}
    if "param_distributions" in trials:
        for raw in trials["param_distributions"]:
            for k, d in _json(raw).items():
                try:
                    recorded.setdefault(k, []).append(json_to_distribution(json.dumps(d)))
                except (ValueError, KeyError, TypeError):
                    continue
    dists: dict[str, BaseDistribution] = {}
    inferred = []
    for name in sorted({k for r in rows for k in r}):
        merged = _merge(recorded[name]) if name in recorded else None
        if merged is None:
            merged = infer_distribution(pd.Series([r[name] for r in rows if name in r]))
            inferred.append(name)
        dists[name] = merged
    if inferred and has_params:
        notes.append("distributions inferred from the values (not recorded in the rows) for "
                     + ", ".join(inferred))
    return rows, dists, notes


def _value(v: object, dist: BaseDistribution) -> object:
    v = _py(v)
    if isinstance(dist, CategoricalDistribution):
        if v in dist.choices:
            return v
        return str(v)  # inferred categorical choices are text
    if isinstance(dist, IntDistribution):
        return int(v)
    return float(v)


def rebuild_study(
    trials: pd.DataFrame,
    direction: str,
    params: list[str] | None = None,
    rows: list[dict[str, Any]] | None = None,
    dists: Mapping[str, BaseDistribution] | None = None,
) -> optuna.Study:
    """An in-memory study holding one COMPLETE trial per row (value = ``value`` column) with
    the row's active parameters among ``params``."""
    if rows is None or dists is None:
        rows, dists, _ = active_params(trials)
    params = sorted(dists) if params is None else params
    study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
    frozen = []
    for row, value in zip(rows, trials["value"], strict=True):
        used = {p: dists[p] for p in params if p in row and not _missing(row[p])}
        values = {p: _value(row[p], d) for p, d in used.items()}
        try:
            frozen.append(
                optuna.trial.create_trial(value=float(value), params=values, distributions=used)
            )
        except ValueError:  # a value outside its distribution (a hand-edited row): left out
            continue
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


def _scopes(rows: list[dict[str, Any]]) -> list[tuple[str, list[int], list[str]]]:
    """(label, row indices, parameters): all trials with the always-active parameters, then each
    group of parameters active in the same subset of trials, with the always-active ones."""
    n = len(rows)
    active: dict[str, frozenset[int]] = {}
    for i, r in enumerate(rows):
        for k, v in r.items():
            if not _missing(v):
                active[k] = active.get(k, frozenset()) | {i}
    always = sorted(k for k, s in active.items() if len(s) == n)
    out = [(ALL, list(range(n)), always)]
    groups: dict[frozenset[int], list[str]] = {}
    for k, s in active.items():
        if len(s) < n:
            groups.setdefault(s, []).append(k)
    for s, names in sorted(groups.items(), key=lambda kv: (-len(kv[0]), sorted(kv[1]))):
        out.append((f"active in {len(s)}/{n}", sorted(s), always + sorted(names)))
    return out


def importances(
    trials: pd.DataFrame, direction: str, seed: int = 0, evaluators: tuple[str, ...] = EVALUATORS
) -> tuple[pd.DataFrame, list[str]]:
    """Normalised importances of the sampled parameters for one task, per scope.

    Returns (frame with ``COLUMNS``; notes). Only COMPLETE trials count; a scope with fewer
    than ``MIN_TRIALS`` trials or no varying parameter is skipped with a note. Importances sum
    to 1 within a task, scope and evaluator; ``rank`` is within the same.
    """
    notes: list[str] = []
    done = trials[trials["status"] == "COMPLETE"] if "status" in trials else trials
    done = done[np.isfinite(done["value"])].reset_index(drop=True)
    if len(done) < MIN_TRIALS:
        notes.append(f"only {len(done)} COMPLETE trials (importance needs {MIN_TRIALS})")
        return pd.DataFrame(columns=COLUMNS), notes
    rows, dists, more = active_params(done)
    notes += more
    out = []
    for label, idx, params in _scopes(rows):
        sub = done.iloc[idx]
        sub_rows = [rows[i] for i in idx]
        varying = [p for p in params if len({str(r.get(p)) for r in sub_rows}) > 1]
        if len(sub) < MIN_TRIALS:
            notes.append(f"{', '.join(p for p in params if p in varying) or 'parameters'} "
                         f"{label}: only {len(sub)} trials (importance needs {MIN_TRIALS})")
            continue
        if not varying:
            if label == ALL:
                notes.append("no searched parameter varies across its trials")
            continue
        with _quiet_optuna():
            study = rebuild_study(sub, direction, varying, sub_rows, dists)
            for name in evaluators:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        imp = optuna.importance.get_param_importances(
                            study, evaluator=_evaluator(name, len(sub), seed), params=varying
                        )
                except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                    notes.append(f"{name} failed {label} ({exc})")
                    continue
                ordered = sorted(imp.items(), key=lambda kv: -kv[1])
                for rank, (p, v) in enumerate(ordered, start=1):
                    out.append({"param": p, "evaluator": name, "importance": float(v),
                                "rank": rank, "scope": label, "n_trials": len(sub)})
    return pd.DataFrame(out, columns=COLUMNS), notes


def side_by_side(imp: pd.DataFrame) -> pd.DataFrame:
    """fANOVA and PED-ANOVA per (task, scope, param) in one row; ``disagree`` when one ranks the
    parameter first and the other does not, or their ranks differ by 2 or more."""
    keys = [k for k in ("task", "scope", "param") if k in imp.columns]
    cols = keys + ["fanova", "ped_anova", "fanova_rank", "ped_anova_rank", "disagree"]
    if imp.empty or set(imp["evaluator"]) != set(EVALUATORS):
        return pd.DataFrame(columns=cols)
    wide = imp.pivot_table(index=keys, columns="evaluator", values=["importance", "rank"])
    out = pd.DataFrame({
        "fanova": wide[("importance", "fanova")], "ped_anova": wide[("importance", "ped_anova")],
        "fanova_rank": wide[("rank", "fanova")], "ped_anova_rank": wide[("rank", "ped_anova")],
    }).reset_index()
    a, b = out["fanova_rank"], out["ped_anova_rank"]
    out["disagree"] = ((a == 1) != (b == 1)) | ((a - b).abs() >= 2)
    return out[cols]
