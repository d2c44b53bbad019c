"""The one selection rule, shared by ``search.final``, the end-of-search summary, the demo and
the report: a configuration is chosen by the value told to Optuna (``final_value``, its last
epoch; the first objective of a multi-objective search), among COMPLETE trials scored on the
task's largest validation set (``val_set``), ties broken by the lower Optuna number.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from search.results.schema import CFG_PREFIX


def eligible(trials: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The COMPLETE trials with a value, on the largest validation set, and a note when
    trials were scored on several validation sets (only the largest group is ranked)."""
    if trials.empty or "status" not in trials:
        return trials.iloc[0:0], None
    done = trials[(trials["status"] == "COMPLETE") & trials["final_value"].notna()]
    note = None
    if "val_set" in done and done["val_set"].nunique() > 1:
        sizes = done["val_set"].value_counts()
        keep = sizes.index[0]
        note = (
            f"trials were scored on {len(sizes)} validation sets; ranking the {sizes.iloc[0]} "
            f"trials of the largest (val_set {str(keep)[:12]}), not the other "
            f"{len(done) - sizes.iloc[0]}"
        )
        done = done[done["val_set"] == keep]
    return done, note


def ranked(trials: pd.DataFrame, mode: str) -> tuple[pd.DataFrame, str | None]:
    """:func:`eligible` trials best first by the selection rule (``final_value``; ``mode``
    max or min), ties by Optuna number."""
    done, note = eligible(trials)
    order = ["final_value", "number"] if "number" in done else ["final_value"]
    asc = [mode == "min", True][: len(order)]
    return done.sort_values(order, ascending=asc, kind="stable"), note


def select(trials: pd.DataFrame, mode: str, top_k: int) -> tuple[pd.DataFrame, str | None]:
    """The top-k trials by the selection rule (and the note of :func:`eligible`)."""
    done, note = ranked(trials, mode)
    return done.head(top_k), note


def select_per(
    trials: pd.DataFrame, mode: str, param: str
) -> tuple[pd.DataFrame, str | None]:
    """The best trial of each level of ``param`` (its ``cfg_<param>`` column) by the selection
    rule, best level first (the first row is :func:`select`'s top 1); a column ``group`` holds
    the level as text. Empty when no trial records ``param``."""
    done, note = ranked(trials, mode)
    col = f"{CFG_PREFIX}{param}"
    if col not in done or done.empty:
        return done.iloc[0:0].assign(group=pd.Series(dtype=str)), note
    done = done[done[col].notna()]
    best = done.drop_duplicates(subset=[col], keep="first")
    return best.assign(group=best[col].astype(str)), note


def best(trials: pd.DataFrame, mode: str) -> dict[str, Any] | None:
    """The chosen trial's row (as a dict), or None when no trial is eligible."""
    top, _ = select(trials, mode, 1)
    return None if top.empty else top.iloc[0].to_dict()
