"""The replay's figures: per-seed runs, the summary over seeds, regret-vs-cost curves, the plot
and the last line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from search.replay.simulate import FRACTIONS, NEVER, Trace, _regret_at
from search.replay.table import Table

CURVE_POINTS = 101  # regret-vs-cost samples in replay_curves.csv


def runs_frame(table: Table, traces: Sequence[Trace]) -> pd.DataFrame:
    """One row per searcher x seed."""
    grid = table.grid_epochs
    rows = []
    for t in traces:
        row = {
            "task": table.task,
            "experiment": Path(table.path).name,
            "searcher": t.searcher,
            "seed": t.seed,
            "reach_epochs": t.reach_epochs,
            "reach_frac": t.reach_epochs / grid,
            # an unreached seed counts as the whole grid (what the mean is taken over)
            "cost_frac": min(t.reach_epochs / grid, 1.0),
            "reached": math.isfinite(t.reach_epochs),
            "reach_hours": t.reach_hours,
            "trials": len(t.events),
        }
        row.update({f"regret_at_{f:g}": t.regret_at[f] for f in FRACTIONS})
        rows.append(row)
    return pd.DataFrame(rows)


def _q(values: Sequence[float], q: float) -> float:
    """Percentile where +inf means "never" (a value interpolated towards it is "never" too)."""
    arr = np.asarray(values, dtype=float)
    out = float(np.percentile(np.where(np.isinf(arr), NEVER, arr), q))
    return math.inf if out >= NEVER / 10 else out


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its ``level`` Student-t interval over seeds (scipy), NaN without two values."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        m = float(v.mean()) if len(v) else math.nan
        return m, math.nan, math.nan
    m, se = float(v.mean()), float(stats.sem(v))
    if se == 0:
        return m, m, m
    lo, hi = stats.t.interval(level, len(v) - 1, loc=m, scale=se)
    return m, float(lo), float(hi)


def summary_frame(table: Table, runs: pd.DataFrame, top: float, concurrency: int) -> pd.DataFrame:
    """Per searcher: the mean cost to reach the target over seeds with its 95 % t interval
    (unreached seeds counted at the full grid, 1.0), how many seeds reached it, and the median
    and interquartile range of the other figures."""
    rows = []
    for name, grp in runs.groupby("searcher", sort=False):
        row: dict[str, Any] = {
            "task": table.task,
            "experiment": Path(table.path).name,
            "searcher": name,
            "seeds": len(grp),
            "top": top,
            "concurrency": concurrency,
            "grid_configs": len(table.configs),
            "grid_epochs": table.grid_epochs,
            "grid_hours": table.grid_seconds / 3600.0,
            "reached": int(np.isfinite(grp["reach_frac"]).sum()),
        }
        row["cost_frac_mean"], row["cost_frac_low"], row["cost_frac_high"] = mean_ci(
            grp["cost_frac"]
        )
        for col in ["reach_frac", "reach_hours"] + [f"regret_at_{f:g}" for f in FRACTIONS]:
            vals = list(grp[col])
            row[f"{col}_median"] = _q(vals, 50)
            row[f"{col}_q25"] = _q(vals, 25)
            row[f"{col}_q75"] = _q(vals, 75)
        rows.append(row)
    return pd.DataFrame(rows)


def curves_frame(table: Table, traces: Sequence[Trace]) -> pd.DataFrame:
    """Regret vs cost fraction (0..1), median and IQR over seeds, per searcher."""
    xs = np.linspace(0.0, 1.0, CURVE_POINTS)
    rows = []
    by: dict[str, list[Trace]] = {}
    for t in traces:
        by.setdefault(t.searcher, []).append(t)
    for name, group in by.items():
        # a replay stops once it reached the target and spent max(FRACTIONS) of the grid:
        # curves are exact up to the earliest such stop
        end = min(t.curve[-1][0] if math.isfinite(t.reach_epochs) else 1.0 for t in group)
        xs = np.linspace(0.0, max(end, max(FRACTIONS)), CURVE_POINTS)
        mat = np.array([[_regret_at(t.curve, x) for x in xs] for t in group])
        med, q25, q75 = (np.percentile(mat, q, axis=0) for q in (50, 25, 75))
        for i, x in enumerate(xs):
            rows.append(
                {
                    "task": table.task,
                    "searcher": name,
                    "cost_frac": float(x),
                    "regret_median": med[i],
                    "regret_q25": q25[i],
                    "regret_q75": q75[i],
                }
            )
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, title: str, path: Path) -> None:
    """Regret vs cost (median line, IQR band) per searcher, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, grp in curves.groupby("searcher", sort=False):
        ax.plot(grp["cost_frac"], grp["regret_median"], label=name, drawstyle="steps-post")
        ax.fill_between(
            grp["cost_frac"], grp["regret_q25"], grp["regret_q75"], alpha=0.2, step="post"
        )
    for f in FRACTIONS:
        ax.axvline(f, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("cost (fraction of the grid's epochs)")
    ax.set_ylabel("regret (grid best - incumbent)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_reach(frac: float) -> str:
    """``0.123``, or ``1.000+`` for a searcher that never reached the top set."""
    return "1.000+" if not math.isfinite(frac) else f"{frac:.3f}"


def top_label(table: Table, top: float) -> str:
    """``top 1 %`` for a fraction, ``top 3 configurations`` for a count."""
    if top >= 1:
        return f"top {table.top_count(top)} configuration(s)"
    return f"top {top * 100:g} %"


def last_line(summary: pd.DataFrame, top_text: str, seeds: int) -> str:
    """The issue's summary line: tpe_asha first (when replayed), then the others in order;
    each searcher's mean cost [95 % interval] over seeds and how many reached the target."""
    rows = {r["searcher"]: r for r in summary.to_dict("records")}
    lead = "tpe_asha" if "tpe_asha" in rows else next(iter(rows))

    def fig(r: dict[str, Any]) -> str:
        return f"{r['cost_frac_mean']:.3f} [{r['cost_frac_low']:.3f}, {r['cost_frac_high']:.3f}]"

    r = rows[lead]
    line = (
        f"replay: {lead} reaches the grid's {top_text} at {fig(r)} of the grid's epochs (mean "
        f"of {r['seeds']} seeds, {r['reached']}/{r['seeds']} reached)"
    )
    rest = "; ".join(
        f"{s} {fig(x)} ({x['reached']}/{x['seeds']})" for s, x in rows.items() if s != lead
    )
    line = f"{line}; {rest}" if rest else line
    if any(x["reached"] < x["seeds"] for x in rows.values()):
        line += "; unreached seeds count as the full grid (1.000)"
    return line
