"""The held-out headline of the report and the one-validation-set rule of the rankings.

- :func:`split_by_fingerprint`: per task, only the largest group of trials scored on one
  validation set (``val_set`` fingerprint) is ranked; the rest are listed in a note.
- :func:`heldout_section`: per task, the test value of the configuration chosen on validation
  (mean ± sd over the final stage's seeds, n, and a 95 % interval for that mean: a bootstrap
  over seeds and test videos from the runs' per-item outputs, or a t interval over seeds
  where a run kept none; :func:`analysis.confirm.mean_interval`),
  from ``final/*.parquet`` (:mod:`search.final`). Where no final stage ran, one sentence says
  so at the top of the report. Everything else in the report is a validation (selection)
  number.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import split_by_fingerprint  # noqa: F401  (re-exported)
from analysis.section import Section
from search.results import CI_HIGH, CI_LOW, read_final, read_items


def _num(x: Any) -> str:
    try:
        return str(int(x)) if math.isfinite(float(x)) else "?"
    except (TypeError, ValueError):
        return "?"


def _mean_sd(v: pd.Series) -> tuple[float, float, int]:
    x = pd.to_numeric(v, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(x):
        return math.nan, math.nan, 0
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else math.nan, len(x)


def _f(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.4f}"


COMPANIONS = ("acc", "balanced_acc", "macro_f1")  # shown beside the selection metric on test


def heldout_table(final: pd.DataFrame) -> pd.DataFrame:
    """One line per (task, configuration, held-out set, metric): the selection metric's test
    twin on every set, and on test also accuracy, balanced accuracy and macro-F1 where the task
    has them (set ``test``, metric e.g. ``test_macro_f1``): mean, sd, n seeds, per-seed
    intervals averaged."""
    out = []
    done = final[final["status"] == "COMPLETE"]
    key = "task_key" if "task_key" in done else "task"
    for (task, exp, tid), g in done.groupby([key, "experiment", "trial_id"], sort=True):
        base = str(g["metric"].iloc[0])[len("val_") :]
        sets = ["test", *sorted(set().union(*(json.loads(s) for s in g["eval_sets"])) - {"test"})]
        pairs = [(name, f"{name}_{base}") for name in sets]
        pairs += [("test", f"test_{m}") for m in COMPANIONS if m != base]
        for name, col in pairs:
            if col not in g or g[col].isna().all():
                continue
            mean, sd, n = _mean_sd(g[col])
            lo = pd.to_numeric(g.get(f"{col}{CI_LOW}"), errors="coerce").mean()
            hi = pd.to_numeric(g.get(f"{col}{CI_HIGH}"), errors="coerce").mean()
            out.append(
                {
                    "task": task,
                    "experiment": exp,
                    "trial_id": tid,
                    "rank": int(g["rank"].min()),
                    "selection_metric": g["metric"].iloc[0],
                    "selection_value": float(g["selection_value"].iloc[0]),
                    "mode": g["mode"].iloc[0],
                    "set": name,
                    "metric": col,
                    "mean": mean,
                    "sd": sd,
                    "n_seeds": n,
                    "per_seed_ci_low": lo,
                    "per_seed_ci_high": hi,
                    "val_is_test": bool(g["val_is_test"].fillna(False).any())
                    if "val_is_test" in g
                    else False,
                }
            )
    return pd.DataFrame(out)


def headline(res: Any, level: float = 0.95, n_resamples: int = 2000,
             seed: int = 0) -> tuple[list[str], pd.DataFrame]:  # fmt: skip
    """Sentences for the top of the report and the held-out table (empty without a final)."""
    from analysis.confirm import mean_interval

    try:
        final = read_final(res.sources)
        items = read_items(res.sources) if not final.empty else pd.DataFrame()
    except Exception as exc:  # noqa: BLE001 - the report still renders the selection numbers
        return [f"The final stage's rows could not be read ({exc})."], pd.DataFrame()
    # one line per analysis unit (task/dataset, as in every other section): a final row joins
    # its unit through the search trial it retrained
    units = res.trials.drop_duplicates("trial_id").set_index("trial_id")["task_key"]
    if not final.empty:
        final = final.assign(task_key=final["trial_id"].map(units).fillna(final["task"]))
    tasks = sorted(res.trials["task_key"].astype(str).unique())
    table = heldout_table(final) if not final.empty else pd.DataFrame()
    lines = []
    for task in tasks:
        t = table[table["task"] == task] if not table.empty else table
        vit = res.trials[res.trials["task_key"] == task]
        if "val_is_test" in vit and vit["val_is_test"].fillna(False).astype(bool).any():
            lines.append(
                f"{task}: validation was the test split (--allow-test-selection), "
                "so its numbers also selected the configuration (biased upward)."
            )
        if t.empty:
            lines.append(
                f"{task}: no final stage ran, so this report has no held-out test "
                "number; every value below is a validation (selection) number, biased "
                "upward as a maximum over trials (run python -m search.final "
                "EXPERIMENT_DIR)."
            )
            continue
        mode = str(t["mode"].iloc[0])
        sel = t.drop_duplicates("trial_id")
        best = sel.sort_values("selection_value", ascending=mode == "min", kind="stable").iloc[0]
        rows = t[t["trial_id"] == best["trial_id"]]
        main_col = "test_" + str(best["selection_metric"])[len("val_") :]
        test = rows[rows["metric"] == main_col].iloc[0]
        runs = final[(final["trial_id"] == best["trial_id"]) & (final["status"] == "COMPLETE")]
        runs = runs.drop_duplicates("seed")
        its = items[items["run_id"].isin(runs["run_id"])] if not items.empty else items
        lo, hi, how = mean_interval(runs, its, level, n_resamples, seed)
        text = (
            f"{task}: held-out {test['metric']} = {_f(test['mean'])} ± {_f(test['sd'])} "
            f"(mean ± sd over n = {test['n_seeds']} seeds; {level:.0%} interval for the mean "
            f"over seeds [{_f(lo)}, {_f(hi)}], {how}) "
            f"for trial {best['trial_id']} of {best['experiment']}"
            + (f" ({runs['group_param'].dropna().iloc[0]} {runs['group'].dropna().iloc[0]})"
               if "group" in runs and runs["group"].notna().any() else "")
            + f", chosen on validation ({best['selection_metric']} "
            f"{_f(best['selection_value'])}, a selection number)"
        )
        also = rows[(rows["set"] == "test") & (rows["metric"] != main_col)]
        if not also.empty:
            text += "; also on test: " + ", ".join(
                f"{r['metric']} = {_f(r['mean'])} ± {_f(r['sd'])}" for _, r in also.iterrows()
            )
        extra = rows[rows["set"] != "test"]
        if not extra.empty:
            text += "; cross-dataset: " + ", ".join(
                f"{r['metric']} = {_f(r['mean'])} ± {_f(r['sd'])} (per-seed intervals, "
                f"averaged: [{_f(r['per_seed_ci_low'])}, {_f(r['per_seed_ci_high'])}])"
                for _, r in extra.iterrows()
            )
        lines.append(text + ".")
    return lines, table


def heldout_section(res: Any, opt: Any, conf: Any = None) -> Any:
    """The report section "Held-out test (final stage)" (its sentences head the report)."""

    s = Section("heldout", "Held-out test (final stage)")
    lines, table = headline(res, opt.level, opt.n_resamples, opt.seed)
    s.text.extend(lines)
    s.text.append(
        "Only this section and the answers' per-backbone test values (confirmation stage) "
        "report held-out test numbers; every other value in this report is a validation "
        "(selection) number."
    )
    if not table.empty:
        s.tables["heldout"] = table
    s.data["headline"] = lines
    return s
