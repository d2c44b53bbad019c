"""Plain-language answers to the study's three research questions, generated from the numbers.

Nothing here is hard-coded: every sentence is built from the sections' tables and hedged by the
intervals and p-values behind it (see ``stats.evidence``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats
from analysis.data import Results
from analysis.section import Options, Section, fmt, fmt_ci

QUESTIONS = (
    "What is the role of the backbone?",
    "Which backbone suits which task?",
    "Is there one backbone that generalises across tasks?",
)


SUBSTANTIAL = 0.06  # omega squared from which the backbone plays a real role (Cohen: medium)


def _ordered(summary: pd.DataFrame, task: str, by: str = "rank_best") -> pd.DataFrame:
    return summary[summary["task"] == task].sort_values([by, "rank_median"])


def role_of_backbone(res: Results, secs: dict[str, Section], opt: Options) -> list[str]:
    """RQ1 from the effect size: the share of variance the backbone explains and its interval
    (never from a rank alone)."""
    summary = secs["per_task"].data.get("summary")
    if summary is None or summary.empty:
        return ["No ranked trials, so the role of the backbone cannot be judged."]
    if summary["backbone"].nunique() < 2:
        return [f"Only one backbone ({summary['backbone'].iloc[0]}) has ranked trials, so its "
                "role cannot be judged from these results."]
    var = secs["per_task"].data.get("variance", pd.DataFrame())
    imp = secs["importance"].data.get("importance", pd.DataFrame())
    out: list[str] = []
    verdict: dict[str, str] = {}  # task -> large | small | unclear | unknown
    for task in res.tasks:
        v = var[var["task"] == task] if len(var) else var
        if v.empty or not np.isfinite(v["omega2"].iloc[0]):
            if summary[summary["task"] == task]["backbone"].nunique() >= 2:
                verdict[task] = "unknown"
                out.append(f"In {task} too few trials per backbone to measure its share of the "
                           "variance.")
            continue
        w, lo, hi = (float(v[k].iloc[0]) for k in ("omega2", "lo", "hi"))
        metric = res.metric(task)[0]
        line = (f"In {task} the backbone explains {w:.0%} ({opt.level:.0%} CI {lo:.0%}-{hi:.0%})"
                f" of the variance of {metric}")
        if lo >= SUBSTANTIAL:
            verdict[task] = "large"
            line += f", a substantial share (the whole interval is at least {SUBSTANTIAL:.0%})"
        elif hi < SUBSTANTIAL:
            verdict[task] = "small"
            line += f", a small share (the whole interval is below {SUBSTANTIAL:.0%})"
        else:
            verdict[task] = "unclear"
            line += f"; the interval spans {SUBSTANTIAL:.0%}, so its role is not settled"
        g = imp[(imp["task"] == task) & (imp["param"] == "backbone")
                & (imp.get("scope", "all") == "all")] if len(imp) else imp
        ranks = [f"{r['evaluator']} #{int(r['rank'])} ({fmt(r['importance'], 2)})"
                 for _, r in g.iterrows()]
        if ranks:
            line += f"; importance ranks it {', '.join(ranks)}, shown for context"
        out.append(line + ".")
    fr = secs["friedman"].data.get("result")
    if fr is not None:
        out.append(
            f"Across {fr.n_blocks} tasks, the Friedman test gives {stats.evidence(fr.pvalue)} "
            f"(p = {fmt(fr.pvalue, 3)}) that backbones differ consistently at matched budgets."
        )
    large = [t for t, x in verdict.items() if x == "large"]
    small = [t for t, x in verdict.items() if x == "small"]
    unclear = [t for t, x in verdict.items() if x in ("unclear", "unknown")]
    if not verdict:
        lead = "No task tried two or more backbones, so the backbone's role cannot be judged."
    elif len(large) == len(verdict):
        lead = ("The backbone plays a major role: it explains a substantial share of the "
                f"variance in every task that tried several ({', '.join(large)}).")
    elif large:
        lead = (f"The backbone's role is task-dependent: a substantial share of the variance in "
                f"{', '.join(large)}; "
                + (f"small in {', '.join(small)}" if small else "")
                + ("; " if small and unclear else "")
                + (f"not settled in {', '.join(unclear)}" if unclear else "") + ".")
    elif small and not unclear:
        lead = (f"The backbone plays a small role here: it explains little of the variance in "
                f"{', '.join(small)}.")
    else:
        lead = ("These results do not settle the backbone's role: the share of variance it "
                f"explains is uncertain in {', '.join(unclear)}"
                + (f" and small in {', '.join(small)}" if small else "") + ".")
    return [lead, *out]


def backbone_per_task(res: Results, secs: dict[str, Section], opt: Options) -> list[str]:
    """RQ2 at matched budgets: the leader by expected best of n trials, and whether its gain
    over the runner-up (at the smaller count) has an interval above 0."""
    summary = secs["per_task"].data.get("summary")
    if summary is None or summary.empty:
        return ["No ranked trials, so no backbone can be recommended."]
    gains = secs["per_task"].data.get("gains", pd.DataFrame())
    out = []
    for task in res.tasks:
        s = _ordered(summary, task)
        win = s.iloc[0]
        metric = res.metric(task)[0]
        line = (f"{task}: {win['backbone']} (expected best {metric} of {int(win['n_match'])} "
                f"trials {fmt(win['emax'])}; {int(win['n'])} trial(s))")
        if len(s) == 1:
            out.append(line + "; the only backbone tried, so this is no comparison.")
            continue
        ru = s.iloc[1]
        g = gains[(gains["task"] == task) & (gains["backbone"] == ru["backbone"])] \
            if len(gains) else gains
        gain = g.iloc[0] if len(g) else None
        if gain is not None and np.isfinite(gain["gain_lo"]) and gain["gain_lo"] > 0:
            conf = (f"clearly ahead of runner-up {ru['backbone']} ({fmt(ru['emax'])}): gain "
                    f"{fmt(gain['gain'], 3)} {fmt_ci(gain['gain_lo'], gain['gain_hi'])} at "
                    f"{int(gain['n_match'])} trials each")
        elif gain is not None and np.isfinite(gain["gain_lo"]):
            conf = (f"tentative: runner-up {ru['backbone']} ({fmt(ru['emax'])}) is within the "
                    f"uncertainty (gain {fmt(gain['gain'], 3)} "
                    f"{fmt_ci(gain['gain_lo'], gain['gain_hi'])})")
        else:
            conf = (f"tentative: too few trials for an interval against runner-up "
                    f"{ru['backbone']} ({fmt(ru['emax'])})")
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
    winners = {t: _ordered(summary, t).iloc[0]["backbone"] for t in tasks}  # matched budgets
    by_bb: dict[str, list[str]] = {}
    for t, b in winners.items():
        by_bb.setdefault(b, []).append(t)
    agree = secs["agreement"].data
    w, p = agree.get("w", np.nan), agree.get("p", np.nan)
    fr = secs["friedman"].data.get("result")
    out = []
    if len(by_bb) == 1:
        (b,) = by_bb
        lead = f"{b} is best at matched budgets in every task ({', '.join(tasks)})"
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
        cd = f"Nemenyi CD {fmt(fr.cd, 3)}"
        if len(behind) == fr.k - 1:
            tail = f"significantly ahead of every other backbone ({cd})."
        elif behind:
            tail = (f"significantly ahead of {', '.join(map(str, behind))} only ({cd}), so it is "
                    "a reasonable default rather than a proven all-round winner.")
        else:
            tail = (f"not significantly ahead of any other backbone ({cd}), so it is at most a "
                    "reasonable default, not a proven all-round winner.")
        out.append(f"Over {fr.n_blocks} tasks at matched budgets, {best} has the best mean rank "
                   f"({fmt(fr.mean_ranks.iloc[0], 3)} of {fr.k} backbones); it is {tail}")
    if len(tasks) < 5:
        out.append(f"With {len(tasks)} tasks any statement about generalisation is tentative.")
    return out


def answers_section(res: Results, secs: dict[str, Section], opt: Options) -> Section:
    s = Section("answers", "9. Answers to the research questions")
    s.text.append(
        "Generated from the numbers above. Groups are compared at matched budgets (expected best "
        "of n trials, n = the smaller group's count); 'clearly' means a "
        f"{opt.level:.0%} interval of the gain above 0 or p < {opt.alpha}; the backbone's role "
        "follows the share of variance it explains and its interval, never a rank alone."
    )
    parts = (role_of_backbone, backbone_per_task, generalisation)
    for i, (q, fn) in enumerate(zip(QUESTIONS, parts, strict=True), start=1):
        lines = fn(res, secs, opt)
        s.data[f"rq{i}"] = lines
        s.headed[f"RQ{i}. {q}"] = lines
    return s
