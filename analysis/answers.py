"""Plain-language answers to the study's three research questions, generated from the numbers.

Nothing here is hard-coded: every sentence is built from the sections' tables and hedged by the
intervals and p-values behind it (see ``stats.evidence``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats
from analysis.data import Results
from analysis.sections import Options, Section, fmt

QUESTIONS = (
    "What is the role of the backbone?",
    "Which backbone suits which task?",
    "Is there one backbone that generalises across tasks?",
)


def _disjoint_above(a: pd.Series, b: pd.Series) -> bool:
    """True when a's median interval lies entirely above b's (both on the value scale)."""
    return bool(np.isfinite(a["median_lo"]) and np.isfinite(b["median_hi"])
                and a["median_lo"] > b["median_hi"])


def _ordered(summary: pd.DataFrame, task: str, by: str = "rank_best") -> pd.DataFrame:
    return summary[summary["task"] == task].sort_values([by, "rank_median"])


def _above(res: Results, task: str, a: pd.Series, b: pd.Series) -> bool:
    """a's median interval is strictly better than b's, in the task's direction."""
    if res.metric(task)[1] == "min":
        return bool(np.isfinite(a["median_hi"]) and np.isfinite(b["median_lo"])
                    and a["median_hi"] < b["median_lo"])
    return _disjoint_above(a, b)


def role_of_backbone(res: Results, secs: dict[str, Section], opt: Options) -> list[str]:
    summary = secs["per_task"].data.get("summary")
    if summary is None or summary.empty:
        return ["No ranked trials, so the role of the backbone cannot be judged."]
    if summary["backbone"].nunique() < 2:
        return [f"Only one backbone ({summary['backbone'].iloc[0]}) has ranked trials, so its "
                "role cannot be judged from these results."]
    imp = secs["importance"].data.get("importance", pd.DataFrame())
    out: list[str] = []
    verdict: dict[str, str] = {}  # task -> clear | unclear | unknown
    for task in res.tasks:
        s = _ordered(summary, task, "rank_median")
        if len(s) < 2:
            continue
        metric = res.metric(task)[0]
        top, bottom = s.iloc[0], s.iloc[-1]
        spread = abs(s["best"].max() - s["best"].min())
        have_ci = all(np.isfinite(r[k]) for r in (top, bottom) for k in ("median_lo", "median_hi"))
        separated = have_ci and _above(res, task, top, bottom)
        parts = [f"In {task} the backbones' best trials span {fmt(spread, 3)} {metric}"]
        if separated:
            parts.append(f"the median trial of {top['backbone']} is clearly better than that of "
                         f"{bottom['backbone']} (non-overlapping {opt.level:.0%} intervals)")
        elif have_ci:
            parts.append(f"the median trials of {top['backbone']} and {bottom['backbone']} are "
                         "within each other's uncertainty")
        else:
            parts.append(f"too few trials to give {top['backbone']} and {bottom['backbone']} "
                         "intervals")
        g = imp[(imp["task"] == task) & (imp["param"] == "backbone")] if len(imp) else imp
        first = False
        for _, row in g.iterrows():
            n = int(((imp["task"] == task) & (imp["evaluator"] == row["evaluator"])).sum())
            parts.append(f"{row['evaluator']} ranks the backbone {int(row['rank'])} of {n} "
                         f"parameters (importance {fmt(row['importance'], 2)})")
            first |= row["evaluator"] == "fanova" and int(row["rank"]) == 1
        judged_imp = len(g) > 0
        if separated or first:
            verdict[task] = "clear"
        elif have_ci or judged_imp:
            verdict[task] = "unclear"
        else:
            verdict[task] = "unknown"
        out.append("; ".join(parts) + ".")
    fr = secs["friedman"].data.get("result")
    if fr is not None:
        out.append(
            f"Across {fr.n_blocks} blocks, the Friedman test gives {stats.evidence(fr.pvalue)} "
            f"(p = {fmt(fr.pvalue, 3)}) that backbones differ consistently."
        )
    clear = [t for t, v in verdict.items() if v == "clear"]
    unclear = [t for t, v in verdict.items() if v == "unclear"]
    if not verdict:
        lead = "No task tried two or more backbones, so the backbone's role cannot be judged."
    elif len(clear) == len(verdict):
        lead = (f"The backbone appears to play a major role: it clearly matters in every task "
                f"that tried several ({', '.join(clear)}).")
    elif clear:
        lead = (f"The backbone's role seems task-dependent: it clearly matters in "
                f"{', '.join(clear)} but not measurably in "
                f"{', '.join(t for t in verdict if t not in clear)}.")
    elif unclear:
        lead = (f"These results show no clear role of the backbone in {', '.join(unclear)}: its "
                "differences stay within the uncertainty"
                + (" and fANOVA does not rank it first" if len(imp) else "") + ".")
    else:
        lead = ("Too few trials to judge the role of the backbone: no task has intervals for two "
                "backbones or enough trials for importance.")
    return [lead, *out]


def backbone_per_task(res: Results, secs: dict[str, Section], opt: Options) -> list[str]:
    summary = secs["per_task"].data.get("summary")
    if summary is None or summary.empty:
        return ["No ranked trials, so no backbone can be recommended."]
    out = []
    for task in res.tasks:
        s = _ordered(summary, task)
        win = s.iloc[0]
        metric = res.metric(task)[0]
        line = (f"{task}: {win['backbone']} (best {metric} {fmt(win['best'])}, "
                f"{int(win['n'])} trial(s))")
        if len(s) == 1:
            out.append(line + "; the only backbone tried, so this is no comparison.")
            continue
        ru = s.iloc[1]
        by_median = _ordered(summary, task, "rank_median").iloc[0]["backbone"]
        if _above(res, task, win, ru) and by_median == win["backbone"]:
            conf = (f"clearly ahead: its median trial beats runner-up {ru['backbone']} "
                    f"({fmt(ru['best'])}) with non-overlapping intervals")
        elif by_median == win["backbone"]:
            conf = (f"likely, as it also has the best median trial, but runner-up "
                    f"{ru['backbone']} ({fmt(ru['best'])}) is within the uncertainty")
        else:
            conf = (f"tentative: runner-up {ru['backbone']} ({fmt(ru['best'])}) is close and "
                    f"{by_median} has the best median trial")
        if win["n"] < 3:
            conf += f"; with only {int(win['n'])} trial(s) of {win['backbone']}, treat as a hint"
        out.append(f"{line}; {conf}.")
    return out


def generalisation(res: Results, secs: dict[str, Section], opt: Options) -> list[str]:
    summary = secs["per_task"].data.get("summary")
    tasks = res.tasks
    if summary is None or summary.empty:
        return ["No ranked trials, so generalisation cannot be judged."]
    if len(tasks) < 2:
        return [f"Only one task ({tasks[0]}) is in these results, so whether a backbone "
                "generalises across tasks cannot be answered here; add the other tasks' results."]
    winners = {t: _ordered(summary, t).iloc[0]["backbone"] for t in tasks}
    by_bb: dict[str, list[str]] = {}
    for t, b in winners.items():
        by_bb.setdefault(b, []).append(t)
    agree = secs["agreement"].data
    w, p = agree.get("w", np.nan), agree.get("p", np.nan)
    fr = secs["friedman"].data.get("result")
    out = []
    if len(by_bb) == 1:
        (b,) = by_bb
        lead = f"{b} has the best trial in every task ({', '.join(tasks)})"
        if np.isfinite(p) and p < opt.alpha:
            lead += (f", and the tasks rank backbones alike (Kendall's W = {fmt(w, 3)}, "
                     f"p = {fmt(p, 3)}): it looks like a backbone that generalises across these "
                     "tasks.")
        else:
            lead += (". That is suggestive, but the agreement of whole rankings is not "
                     "statistically established "
                     + (f"(W = {fmt(w, 3)}, p = {fmt(p, 3)})" if np.isfinite(w) else
                        "(too few shared backbones for Kendall's W)")
                     + f" with {len(tasks)} tasks.")
    else:
        wins = "; ".join(f"{b} wins {', '.join(ts)}" for b, ts in by_bb.items())
        lead = f"No single backbone wins every task: {wins}."
        if np.isfinite(w):
            lead += (f" Rank agreement across tasks is W = {fmt(w, 3)} (p = {fmt(p, 3)}, "
                     f"{stats.evidence(p)} of agreement).")
    out.append(lead)
    if fr is not None:
        best = fr.mean_ranks.index[0]
        behind = [b for b, r in fr.mean_ranks.items() if r - fr.mean_ranks.iloc[0] > fr.cd]
        kind = secs["friedman"].data.get("blocks", "task")
        cd = f"Nemenyi CD {fmt(fr.cd, 3)}"
        if len(behind) == fr.k - 1:
            tail = f"significantly ahead of every other backbone ({cd})."
        elif behind:
            tail = (f"significantly ahead of {', '.join(map(str, behind))} only ({cd}), so it is "
                    "a reasonable default rather than a proven all-round winner.")
        else:
            tail = (f"not significantly ahead of any other backbone ({cd}), so it is at most a "
                    "reasonable default, not a proven all-round winner.")
        blocks = "tasks" if kind == "task" else "task-seed blocks"
        out.append(f"Over {fr.n_blocks} {blocks}, {best} has the best mean rank "
                   f"({fmt(fr.mean_ranks.iloc[0], 3)} of {fr.k} backbones); it is {tail}")
    if len(tasks) < 5:
        out.append(f"With {len(tasks)} tasks any statement about generalisation is tentative.")
    return out


def answers_section(res: Results, secs: dict[str, Section], opt: Options) -> Section:
    s = Section("answers", "9. Answers to the research questions")
    s.text.append(
        "Generated from the numbers above; 'clearly' means non-overlapping "
        f"{opt.level:.0%} intervals or p < {opt.alpha}, weaker words mean weaker evidence."
    )
    parts = (role_of_backbone, backbone_per_task, generalisation)
    for i, (q, fn) in enumerate(zip(QUESTIONS, parts, strict=True), start=1):
        lines = fn(res, secs, opt)
        s.data[f"rq{i}"] = lines
        s.headed[f"RQ{i}. {q}"] = lines
    return s
