"""Task-dependence tables from ``Results`` (pure pandas/scipy, no plotting).

Values in tables are in the task's metric units (``value``); every ranking uses ``score``
(higher = better), so ``mode == "min"`` metrics rank correctly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats
from analysis.data import Results, cfg, final
from search.results import CFG_PREFIX, FINAL_PREFIX, STATUSES

FACTORS = ("backbone", "descriptor", "modality")
SHOWN = (
    "value", "backbone", "family", "descriptor", "modality", "mask_ratio", "aux_weight",
    cfg("encoding"), cfg("lr"), "seed_key", "status", "epochs_run", "trial_id", "experiment",
)
COSTS = {  # column -> (label, lower is better)
    "params_count": ("parameters", True),
    "gflops": ("GFLOPs per image", True),
    "samples_per_s": ("training samples / s", False),
}
WORST_GROUP = "worst_group"
GROUP_GAP = "group_gap"


def _sign(res: Results, task: str) -> float:
    return -1.0 if res.metric(task)[1] == "min" else 1.0


def _to_value(sign: float, point: float, lo: float, hi: float) -> tuple[float, float, float]:
    """Map a (point, lo, hi) on the score scale back to metric units."""
    a, b = sign * lo, sign * hi
    return sign * point, min(a, b), max(a, b)


def status_counts(res: Results) -> pd.DataFrame:
    """Trials per task, experiment and status (all statuses, ranked or not)."""
    t = res.trials
    exp = t["experiment"] if "experiment" in t else pd.Series("?", index=t.index)
    counts = (
        t.assign(experiment=exp.fillna("?"))
        .groupby(["task_key", "experiment", "status"]).size().unstack("status", fill_value=0)
    )
    for s in STATUSES:
        if s not in counts:
            counts[s] = 0
    counts = counts[list(STATUSES)]
    counts["total"] = counts.sum(axis=1)
    counts.columns.name = None
    return counts.reset_index().rename(columns={"task_key": "task"})


def task_metrics(res: Results) -> pd.DataFrame:
    """Per task: the metric, its direction and the trials that count for rankings."""
    rows = []
    for task in sorted(res.trials["task_key"].unique()):
        metric, mode = res.metric(task)
        r = res.task(task)
        rows.append({"task": task, "metric": metric, "mode": mode, "ranked_trials": len(r),
                     "backbones": r["backbone"].nunique()})
    return pd.DataFrame(rows, columns=["task", "metric", "mode", "ranked_trials", "backbones"])


def _shown(df: pd.DataFrame) -> list[str]:
    return [c for c in SHOWN if c in df.columns]


def top_k(res: Results, k: int = 5) -> pd.DataFrame:
    """The k best ranked trials of every task (rank 1 = best)."""
    parts = []
    for task in res.tasks:
        t = res.task(task).head(k)
        part = t[_shown(t)].copy()
        part.insert(0, "rank", np.arange(1, len(part) + 1))
        part.insert(0, "task", task)
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["task", "rank"])


def best_config(res: Results) -> pd.DataFrame:
    """Full configuration of each task's best trial: rows = config fields, columns = tasks."""
    cols = {}
    for task in res.tasks:
        best = res.task(task).iloc[0]
        fields = {c[len(CFG_PREFIX):]: best[c] for c in best.index if c.startswith(CFG_PREFIX)}
        cols[task] = {"trial_id": best["trial_id"], "value": best["value"],
                      "modality": best["modality"], **fields}
    return pd.DataFrame(cols).astype(object)


def matched_n(grouped: pd.core.groupby.SeriesGroupBy) -> int:
    """The budget groups are compared at: the smallest group's trial count."""
    sizes = grouped.size()
    return int(sizes.min()) if len(sizes) else 0


def group_summary(
    res: Results, by: str = "backbone", level: float = 0.95, n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per task and group: trial count, the expected best of ``n_match`` trials (the smallest
    group's count; ``stats.expected_max``) with its spread, the observed best, and the median
    with a bootstrap interval. ``rank_best`` ranks on the expected best at the matched budget,
    so a group does not win by having had more trials.
    """
    rows = []
    for task in res.tasks:
        t = res.task(task)
        sign = _sign(res, task)
        grouped = t.groupby(by, sort=True)
        n_match = matched_n(grouped["score"])
        for name, g in grouped:
            emax, sd = stats.expected_max(g["score"], n_match)
            med = _to_value(sign, *stats.bootstrap_ci(g["score"], "median", level, n_resamples,
                                                      seed))
            rows.append({
                "task": task, by: name, "family": g["family"].iloc[0] if by == "backbone" else "",
                "n": len(g), "n_match": n_match, "seeds": g["seed_key"].nunique(),
                "emax": sign * emax, "emax_sd": sd, "best": sign * g["score"].max(),
                "median": med[0], "median_lo": med[1], "median_hi": med[2],
                "emax_score": emax, "median_score": g["score"].median(),
            })
    cols = ["task", by, "family", "n", "n_match", "seeds", "emax", "emax_sd", "best", "median",
            "median_lo", "median_hi"]
    if not rows:
        return pd.DataFrame(columns=cols + ["rank_best", "rank_median"])
    df = pd.DataFrame(rows)
    df["rank_best"] = df.groupby("task")["emax_score"].rank(ascending=False, method="average")
    df["rank_median"] = df.groupby("task")["median_score"].rank(ascending=False, method="average")
    if by != "backbone":
        cols.remove("family")
    return df[cols + ["rank_best", "rank_median"]]


def group_gains(
    res: Results, by: str = "backbone", level: float = 0.95, n_perm: int = 400, seed: int = 0
) -> pd.DataFrame:
    """Per task: the leading group (best expected maximum at the matched budget) minus every
    other group, ``stats.emax_gain`` at n = the smaller of the two counts, in metric units
    signed so that positive = the leader is better."""
    cols = ["task", "leader", by, "n_leader", "n", "n_match", "gain", "gain_lo", "gain_hi"]
    rows = []
    summary = group_summary(res, by, level, 100, seed)
    for task in res.tasks:
        s = summary[summary["task"] == task].sort_values("rank_best")
        if len(s) < 2:
            continue
        t = res.task(task)
        lead = s[by].iloc[0]
        a = t.loc[t[by] == lead, "score"]
        for other in s[by].iloc[1:]:
            b = t.loc[t[by] == other, "score"]
            gain, lo, hi = stats.emax_gain(a, b, level=level, n_perm=n_perm, seed=seed)
            rows.append({"task": task, "leader": lead, by: other, "n_leader": len(a),
                         "n": len(b), "n_match": min(len(a), len(b)),
                         "gain": gain, "gain_lo": lo, "gain_hi": hi})
    return pd.DataFrame(rows, columns=cols)


def score_matrix(res: Results, by: str = "backbone", blocks: str = "task") -> pd.DataFrame:
    """Expected best score per task (row) and group (column) at the task's matched budget
    (the smallest group's trial count in that task; ``stats.expected_max``).

    Trials are never paired across tasks: a block is a task (``blocks`` must be ``task``).
    """
    if blocks != "task":
        raise ValueError(f"blocks {blocks!r}: only 'task' blocks pair like with like")
    r = res.ranked
    if r.empty:
        return pd.DataFrame()
    cells = {}
    for task, t in r.groupby("task_key"):
        grouped = t.groupby(by)["score"]
        n_match = matched_n(grouped)
        cells[task] = {name: stats.expected_max(g, n_match)[0] for name, g in grouped}
    m = pd.DataFrame.from_dict(cells, orient="index")
    m.index.name, m.columns.name = "task_key", by
    return m.sort_index(axis=0).sort_index(axis=1)


def factor_matrix(res: Results, by: str = "backbone") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best value, rank within task) with rows = levels of ``by``, columns = tasks."""
    scores = score_matrix(res, by, "task")
    if scores.empty:
        return pd.DataFrame(), pd.DataFrame()
    signs = pd.Series({t: _sign(res, t) for t in scores.index})
    values = scores.mul(signs, axis=0).T
    ranks = scores.rank(axis=1, ascending=False, method="average").T
    values.columns.name = ranks.columns.name = None
    values.index.name = ranks.index.name = by
    return values, ranks


def effect_curves(res: Results, factor: str, max_bins: int = 6, level: float = 0.95,
                  n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Median value (with bootstrap CI) per task, backbone family and bin of ``factor``.

    ``factor`` is ``mask_ratio`` (L-SSAT trials only: it has no effect when aux_weight = 0) or
    ``aux_weight``. Up to ``max_bins`` distinct values are kept as they are; more are binned by
    quantiles (x = the bin's median).
    """
    cols = ["task", "family", "factor", "x", "n", "median", "lo", "hi"]
    rows = []
    for task in res.tasks:
        t = res.task(task)
        if factor == "mask_ratio":
            t = t[t["aux_weight"].fillna(1.0) > 0]
        t = t[np.isfinite(t[factor])]
        if t[factor].nunique() < 2:
            continue
        sign = _sign(res, task)
        if t[factor].nunique() > max_bins:
            bins = pd.qcut(t[factor], max_bins, duplicates="drop")
            x = t.groupby(bins, observed=True)[factor].transform("median")
        else:
            x = t[factor]
        for (fam, xv), g in t.assign(_x=x).groupby(["family", "_x"]):
            point, lo, hi = _to_value(
                sign, *stats.bootstrap_ci(g["score"], "median", level, n_resamples, seed)
            )
            rows.append({"task": task, "family": fam, "factor": factor, "x": float(xv),
                         "n": len(g), "median": point, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=cols)


def lssat_gain(res: Results, level: float = 0.95, n_resamples: int = 2000,
               seed: int = 0) -> pd.DataFrame:
    """L-SSAT (aux_weight > 0) minus the supervised baseline (aux_weight = 0), per task and
    backbone family (and ``all``): the difference of expected best values at the matched budget
    (n = the smaller group's count, ``stats.emax_gain``) with a permutation interval. Gains are
    in metric units, signed so that positive = L-SSAT better. (``n_resamples`` sets the
    permutations, at most 400.)"""
    cols = ["task", "family", "n_lssat", "n_baseline", "n_match", "gain", "gain_lo", "gain_hi"]
    rows = []
    for task in res.tasks:
        t = res.task(task)
        t = t[np.isfinite(t["aux_weight"])]
        for fam in ["all"] + sorted(t["family"].unique()):
            g = t if fam == "all" else t[t["family"] == fam]
            a = g.loc[g["aux_weight"] > 0, "score"]
            b = g.loc[g["aux_weight"] == 0, "score"]
            if a.empty or b.empty:
                continue
            gain, lo, hi = stats.emax_gain(a, b, level=level, n_perm=min(n_resamples, 400),
                                           seed=seed)
            rows.append({"task": task, "family": fam, "n_lssat": len(a), "n_baseline": len(b),
                         "n_match": min(len(a), len(b)), "gain": gain, "gain_lo": lo,
                         "gain_hi": hi})
    return pd.DataFrame(rows, columns=cols)


def cost_fronts(res: Results) -> pd.DataFrame:
    """Each task's Pareto front of value against every measured cost column."""
    cols = ["task", "cost", "cost_value", "value", "backbone", "trial_id"]
    rows = []
    for task in res.tasks:
        t = res.task(task)
        for col, (_, lower) in COSTS.items():
            if col not in t or not np.isfinite(pd.to_numeric(t[col], errors="coerce")).any():
                continue
            c = pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=float)
            on = stats.pareto_front(c, t["score"].to_numpy(), cost_lower_better=lower)
            for i in np.flatnonzero(on):
                row = t.iloc[i]
                rows.append({"task": task, "cost": col, "cost_value": c[i], "value": row["value"],
                             "backbone": row["backbone"], "trial_id": row["trial_id"]})
    return pd.DataFrame(rows, columns=cols).sort_values(["task", "cost", "cost_value"])


def group_metric_columns(df: pd.DataFrame) -> tuple[str | None, str | None]:
    """The ``final_*`` columns holding worst-group accuracy and the group gap, if any."""
    def pick(key: str) -> str | None:
        found = sorted(c for c in df.columns
                       if c.startswith(FINAL_PREFIX) and key in c and df[c].notna().any())
        val = [c for c in found if c.startswith(final("val_"))]
        return (val or found or [None])[0]
    return pick(WORST_GROUP), pick(GROUP_GAP)


def fairness(res: Results) -> pd.DataFrame:
    """Per task and backbone: worst-group accuracy and gap of the best trial, and their medians."""
    worst, gap = group_metric_columns(res.ranked)
    cols = ["task", "backbone", "n", "best_trial", "value", "worst_group", "gap",
            "median_worst_group", "median_gap"]
    if worst is None and gap is None:
        return pd.DataFrame(columns=cols)
    rows = []
    for task in res.tasks:
        t = res.task(task)
        have = [c for c in (worst, gap) if c is not None]
        t = t[t[have].notna().any(axis=1)]
        for bb, g in t.groupby("backbone"):
            best = g.iloc[0]  # task() is sorted best first
            rows.append({
                "task": task, "backbone": bb, "n": len(g), "best_trial": best["trial_id"],
                "value": best["value"],
                "worst_group": best[worst] if worst else np.nan,
                "gap": best[gap] if gap else np.nan,
                "median_worst_group": g[worst].median() if worst else np.nan,
                "median_gap": g[gap].median() if gap else np.nan,
            })
    return pd.DataFrame(rows, columns=cols)
