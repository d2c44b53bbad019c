"""Pareto fronts of a multi-objective search (no Ray, no torch): which trials are on the front,
its hypervolume, and a plain-language reading of what moving along it costs.

Objectives are ``{name: max|min}`` in order (:mod:`search.optimize.objectives`); values are
one row per trial, one column per objective. Used by the end-of-search summary,
``search.final --front``, the report's cost section and the multi-objective replay
(:mod:`search.replay_mo`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# objectives read as costs: "x times the GFLOPs" rather than a difference
RATIO_OBJECTIVES = ("gflops", "params", "latency_ms")
LABELS = {"gflops": "GFLOPs", "params": "parameters", "latency_ms": "latency"}


def col(name: str) -> str:
    """The column of objective ``name`` in a front frame (``params`` is a trial row column)."""
    return f"obj_{name}"


def as_loss(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``[N, M]`` values -> ``[N, M]`` losses (lower is better: max objectives negated)."""
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * sign


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """``[N]`` bool: rows no other row dominates (as good on every objective, better on one);
    rows with a non-finite value are never on the front; duplicates are all kept."""
    loss = as_loss(values, directions)
    ok = np.isfinite(loss).all(axis=1)
    keep = np.zeros(len(loss), dtype=bool)
    for i in np.flatnonzero(ok):
        others = loss[ok]
        dominated = ((others <= loss[i]).all(axis=1) & (others < loss[i]).any(axis=1)).any()
        keep[i] = not dominated
    return keep


def hypervolume(loss: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by ``loss`` points ``[N, M]`` (lower is better) up to ``ref``
    ``[M]``: exact sweep for two objectives, Optuna's WFG algorithm for more."""
    pts = np.asarray(loss, dtype=float)
    pts = pts[np.isfinite(pts).all(axis=1) & (pts < ref).all(axis=1)]
    if not len(pts):
        return 0.0
    if pts.shape[1] == 2:
        pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
        area, best = 0.0, float(ref[1])
        for x, y in pts:
            if y < best:
                area += (ref[0] - x) * (best - y)
                best = y
        return float(area)
    from optuna._hypervolume import compute_hypervolume  # private, pinned with Optuna 5

    return float(compute_hypervolume(pts, np.asarray(ref, dtype=float)))


def trial_values(trials: pd.DataFrame) -> tuple[dict[str, str], np.ndarray] | None:
    """The study's objectives and each row's objective values ``[N, M]`` (NaN where a row has
    none), from the ``objectives`` / ``objective_values`` columns; None for a single-objective
    search (or rows written before multi-objective searches)."""
    if "objectives" not in trials or trials["objectives"].dropna().empty:
        return None
    objectives = json.loads(trials["objectives"].dropna().iloc[0])
    if len(objectives) < 2:
        return None
    rows = []
    for raw in trials.get("objective_values", pd.Series([None] * len(trials))):
        vals = json.loads(raw) if isinstance(raw, str) else None
        ok = isinstance(vals, list) and len(vals) == len(objectives)
        rows.append([math.nan if v is None else float(v) for v in vals] if ok else
                    [math.nan] * len(objectives))  # fmt: skip
    return objectives, np.asarray(rows, dtype=float).reshape(-1, len(objectives))


def front(trials: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame] | None:
    """The COMPLETE trials on the Pareto front of the searched objectives (one column
    :func:`col` per objective added), best first objective first; None for a single-objective
    search."""
    got = trial_values(trials)
    if got is None:
        return None
    objectives, values = got
    done = (trials["status"] == "COMPLETE").to_numpy()
    values = np.where(done[:, None], values, np.nan)
    on = pareto_mask(values, list(objectives.values()))
    out = trials.loc[on].copy()
    for j, name in enumerate(objectives):
        out[col(name)] = values[on, j]
    first, d = next(iter(objectives.items()))
    out = out.sort_values([col(first), "number"], ascending=[d == "min", True])
    return objectives, out.reset_index(drop=True)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def reading(objectives: Mapping[str, str], rows: pd.DataFrame) -> list[str]:
    """Plain-language lines, one per other objective: what the front's best first objective
    costs in that objective against the front's best trial there, e.g.
    ``+0.02 val_auc (0.71 -> 0.73) costs 3.1x the GFLOPs (#4 -> #7)``. ``rows``: the front,
    one column :func:`col` per objective."""
    names = list(objectives)
    if len(rows) == 0 or len(names) < 2:
        return []
    f0, d0 = col(names[0]), objectives[names[0]]
    top = rows.loc[rows[f0].idxmax() if d0 == "max" else rows[f0].idxmin()]
    lines = []
    for name in names[1:]:
        d, c = objectives[name], col(name)
        cands = rows[rows[c] == (rows[c].max() if d == "max" else rows[c].min())]
        # among the trials best on `name`, the one best on the first objective
        cheap = cands.loc[cands[f0].idxmax() if d0 == "max" else cands[f0].idxmin()]
        if int(cheap["number"]) == int(top["number"]):
            lines.append(
                f"#{int(top['number'])} is best on both {names[0]} ({_fmt(top[f0])}) and "
                f"{name} ({_fmt(top[c])}): no trade-off on the front"
            )
            continue
        gain = top[f0] - cheap[f0]
        sign = "+" if gain >= 0 else "-"
        what = f"{sign}{_fmt(abs(gain))} {names[0]} ({_fmt(cheap[f0])} -> {_fmt(top[f0])})"
        a, b = float(cheap[c]), float(top[c])
        if name in RATIO_OBJECTIVES and a > 0 and b > 0:
            cost = f"{b / a:.3g}x the {LABELS.get(name, name)}"
        else:
            delta = b - a
            cost = f"{'+' if delta >= 0 else '-'}{_fmt(abs(delta))} {name}"
        lines.append(
            f"{what} costs {cost} ({_fmt(a)} -> {_fmt(b)}; #{int(cheap['number'])} -> "
            f"#{int(top['number'])})"
        )
    return lines


def front_lines(trials: pd.DataFrame, limit: int = 12) -> list[str]:
    """The summary's lines: the front (up to ``limit`` trials) and its reading; [] for a
    single-objective search."""
    got = front(trials)
    if got is None:
        return []
    objectives, rows = got
    n_done = int((trials["status"] == "COMPLETE").sum())
    shown = ", ".join(f"{k} {v}" for k, v in objectives.items())
    lines = [f"Pareto front ({shown}): {len(rows)} of {n_done} COMPLETE trials"]
    for _, r in rows.head(limit).iterrows():
        vals = "  ".join(f"{k} {_fmt(r[col(k)])}" for k in objectives)
        params = json.loads(r["params"]) if isinstance(r.get("params"), str) else {}
        shown_p = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        lines.append(f"  #{int(r['number'])}  {vals}  ({shown_p or 'fixed config'})")
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more (search.results.pareto.front)")
    lines += [f"  reading: {line}" for line in reading(objectives, rows)]
    return lines


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
