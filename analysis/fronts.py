"""The report's view of multi-objective searches: the Pareto front of the objectives each
study searched (``objectives`` / ``objective_values`` trial columns, :mod:`search.results.pareto`)
and a plain-language reading of it ("+0.02 val_auc costs 3.1x the GFLOPs")."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from search.results import pareto

COLUMNS = ["task", "experiment", "objectives", "number", "trial_id", "backbone", "values"]


def searched_fronts(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict[str, tuple]]:
    """(one row per trial on a multi-objective study's front, reading lines, {unit: (objectives,
    all COMPLETE trials, front)} for the figure), per task unit and experiment."""
    rows, lines, fig_data = [], [], {}
    if "objectives" not in trials:
        return pd.DataFrame(columns=COLUMNS), lines, fig_data
    for (task, exp), t in trials.groupby(["task_key", "experiment"], sort=True):
        got = pareto.front(t)
        if got is None:
            continue
        objectives, front = got
        shown = ", ".join(f"{k} {v}" for k, v in objectives.items())
        done = t[t["status"] == "COMPLETE"]
        for _, r in front.iterrows():
            vals = ", ".join(f"{k} {r[pareto.col(k)]:.4g}" for k in objectives)
            rows.append({"task": task, "experiment": exp, "objectives": shown,
                         "number": int(r["number"]), "trial_id": r["trial_id"],
                         "backbone": r.get("backbone"), "values": vals})  # fmt: skip
        reading = pareto.reading(objectives, front)
        lines.append(
            f"{task} ({exp}) searched {shown}: {len(front)} of {len(done)} COMPLETE trials on "
            "the front. " + " ".join(f"{s[0].upper()}{s[1:]}." for s in reading)
        )
        values = pareto.trial_values(done)
        fig_data[f"{task} ({exp})"] = (objectives, values[1] if values else None, front)
    return pd.DataFrame(rows, columns=COLUMNS), lines, fig_data


def front_plot(fig_data: dict[str, tuple]) -> Figure:
    """One panel per study: first objective against the second, front as steps."""
    fig = Figure(figsize=(4.6 * len(fig_data), 3.4), layout="constrained")
    axes = fig.subplots(1, len(fig_data), squeeze=False)[0]
    for ax, (title, (objectives, values, front)) in zip(axes, fig_data.items(), strict=True):
        a, b = list(objectives)[:2]
        if values is not None:
            ax.scatter(values[:, 1], values[:, 0], s=14, alpha=0.5, color="tab:blue",
                       label="COMPLETE trials")  # fmt: skip
        ca, cb = pareto.col(a), pareto.col(b)
        f = front.sort_values(cb)
        ax.step(f[cb], f[ca], where="post" if objectives[b] == "min" else "pre", color="k",
                lw=1, marker="o", ms=4, label="Pareto front")  # fmt: skip
        for _, r in f.iterrows():
            ax.annotate(f"#{int(r['number'])}", (r[cb], r[ca]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(f"{b} ({objectives[b]})")
        ax.set_ylabel(f"{a} ({objectives[a]})")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig
