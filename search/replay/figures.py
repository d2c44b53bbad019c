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


def summary_frame(table: Table, runs: pd.DataFrame, top: float, concurrency: int) -> pd.DataFrame:
    """Median and interquartile range over seeds, per searcher."""
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


def last_line(summary: pd.DataFrame, top: float, seeds: int) -> str:
    """The issue's summary line: tpe_asha first (when replayed), then the others in order."""
    med = dict(zip(summary["searcher"], summary["reach_frac_median"], strict=True))
    lead = "tpe_asha" if "tpe_asha" in med else next(iter(med))
    rest = "; ".join(f"{s} {fmt_reach(v)}" for s, v in med.items() if s != lead)
    line = (
        f"replay: {lead} reaches the grid's top {top * 100:g} % at {fmt_reach(med[lead])} of "
        f"the grid's epochs (median of {seeds} seeds)"
    )
    return f"{line}; {rest}" if rest else line
