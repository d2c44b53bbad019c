"""Agreement between rankings read from results: Kendall's tau-b between tables or tasks
(used by the analysis and by the replay's warm-start figures)."""

from __future__ import annotations

import warnings

import pandas as pd
from scipy import stats


def pairwise_kendall(matrix: pd.DataFrame, min_common: int = 3) -> pd.DataFrame:
    """Kendall tau-b (scipy) between every pair of rows (tasks) over their common columns.

    Rows with fewer than ``min_common`` common non-missing columns get NaN tau and p.
    """
    out = []
    names = list(matrix.index)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = matrix.loc[[a, b]].dropna(axis=1)
            n = both.shape[1]
            tau = p = float("nan")
            if n >= min_common:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = stats.kendalltau(both.loc[a].to_numpy(), both.loc[b].to_numpy())
                tau, p = float(res.statistic), float(res.pvalue)
            out.append({"task_a": a, "task_b": b, "n_common": n, "tau": tau, "p": p})
    return pd.DataFrame(out, columns=["task_a", "task_b", "n_common", "tau", "p"])
