"""Warm start in the report: where trials came from, and which task to start a search from.

- :func:`provenance`: per experiment, the trials enqueued from another experiment by
  ``search.run --warm-start`` (the ``warm_start_from`` column), how many and how they did.
- :func:`advice`: per task, the other task whose results would have been the best warm start,
  from the pairwise Kendall tau between the tasks' backbone rankings that the agreement section
  computes (the most similar ranking; ties broken by more common backbones, then name). It is
  recommended only when tau > 0; the replay benchmark (docs/search.md, Warm start) measured
  the gain growing with tau.
"""

from __future__ import annotations

import math

import pandas as pd

COLUMN = "warm_start_from"
TAU_GOOD = 0.5  # the threshold: rankings that agree


def provenance(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, experiment, source): trials enqueued from the source, their numbers,
    how many completed and the best value among them."""
    cols = ["task", "experiment", "source", "trials", "numbers", "complete", "best_value"]
    if COLUMN not in trials or not trials[COLUMN].notna().any():
        return pd.DataFrame(columns=cols)
    rows = []
    warm = trials[trials[COLUMN].notna()]
    for (task, exp, src), grp in warm.groupby(["task_key", "experiment", COLUMN], sort=True):
        done = grp[grp["status"] == "COMPLETE"]
        sign = 1.0 if str(grp["mode"].iloc[0]) == "max" else -1.0
        best = (done["final_value"] * sign).max() * sign if not done.empty else math.nan
        rows.append({
            "task": task, "experiment": exp, "source": src, "trials": len(grp),
            "numbers": ", ".join(f"#{int(n)}" for n in sorted(grp["number"])),
            "complete": len(done), "best_value": best,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def advice(tau: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Per task: the best warm-start source among the other tasks (highest pairwise tau)."""
    cols = ["task", "best_source", "tau", "n_common", "recommended"]
    rows = []
    pairs = tau.dropna(subset=["tau"]) if not tau.empty else tau
    for task in tasks:
        cands = []
        for _, r in pairs.iterrows():
            if task in (r["task_a"], r["task_b"]):
                other = r["task_b"] if r["task_a"] == task else r["task_a"]
                cands.append((-float(r["tau"]), -int(r["n_common"]), str(other)))
        if not cands:
            rows.append({"task": task, "best_source": None, "tau": math.nan, "n_common": 0,
                         "recommended": False})  # fmt: skip
            continue
        t, n, other = min(cands)
        rows.append({"task": task, "best_source": other, "tau": -t, "n_common": -n,
                     "recommended": -t > 0})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def advice_lines(table: pd.DataFrame) -> list[str]:
    """Plain-language lines of :func:`advice`."""
    out = []
    for r in table.to_dict("records"):
        if not isinstance(r["best_source"], str):
            out.append(f"{r['task']}: no other task shares 3 or more backbones with it, so "
                       "no warm-start source can be recommended.")  # fmt: skip
        elif not r["recommended"]:
            out.append(f"{r['task']}: no other task ranks the backbones alike (best tau "
                       f"{r['tau']:.3g}, {r['best_source']}): start its search cold.")  # fmt: skip
        else:
            strength = "agree" if r["tau"] > TAU_GOOD else "agree only partly"
            out.append(
                f"{r['task']}: the best warm start would have been {r['best_source']} "
                f"(tau = {r['tau']:.3g} over {r['n_common']} backbones: the rankings {strength}); "
                f"search.run --warm-start <its experiment folder>."
            )
    return out


def provenance_lines(table: pd.DataFrame) -> list[str]:
    """Plain-language lines of :func:`provenance`."""
    return [
        f"{r['task']} ({r['experiment']}): trials {r['numbers']} were enqueued from "
        f"{r['source']} (--warm-start); {r['complete']} of {r['trials']} completed"
        + (f", best {r['best_value']:.4g}." if math.isfinite(r["best_value"]) else ".")
        for r in table.to_dict("records")
    ]
