"""The three research questions answered, in words and as ``answers.json``.

Per task the answers come from the **confirmation stage** (``search.final --per backbone``:
each backbone's best configuration retrained with seeds and scored on test;
:mod:`analysis.confirm`) when it ran, else from the **trial population** with statistics that
hold under TPE and ASHA (:mod:`analysis.population`); ``basis`` says which.

- RQ1, does the backbone matter: the backbone chosen on validation (the one selection rule)
  against each other on test; ``true`` when one difference's Holm-adjusted p is below alpha
  (its interval excludes 0), ``false`` when none is (the data support no difference at that
  level), ``null`` with too little data (one level, one seed, < 3 trials per level).
- RQ2, which backbone for which task: the ranking with intervals.
- RQ3, does one generalise: Kendall's W over the tasks' rankings with its permutation p
  (:func:`analysis.stats.kendall_w_test`); ``verdict`` true when p < alpha, false otherwise,
  null with fewer than 2 tasks or 2 shared backbones, or when even identical rankings could
  not reach alpha.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.confirm import Confirmation, confirmations
from analysis.data import Results
from analysis.population import population_task
from analysis.section import Options, Section, fmt

QUESTIONS = (
    "What is the role of the backbone?",
    "Which backbone suits which task?",
    "Is there one backbone that generalises across tasks?",
)


def task_answers(res: Results, opt: Options) -> dict[str, Confirmation]:
    """Each task's answer object: its confirmation stage where one ran, else its trials."""
    conf = confirmations(res, opt.level, opt.alpha, opt.n_resamples, opt.seed)
    out: dict[str, Confirmation] = {}
    for task in sorted(set(res.trials["task_key"].astype(str))):
        c = conf.get(task)
        if c is None:
            c = population_task(res, task, opt.level, opt.alpha, min(opt.n_resamples, 1000),
                                opt.seed)  # fmt: skip
        else:
            t = res.trials[res.trials["task_key"] == task]
            c.n_trials = {lv.name: int((t["backbone"] == lv.name).sum()) for lv in c.levels}
        if c is not None:
            out[task] = c
    return out


def generalises(answers: dict[str, Confirmation], opt: Options) -> dict[str, Any]:
    """Kendall's W over the tasks' rankings (backbones every task has), its p and verdict."""
    cells = {t: {lv.name: (-1 if c.mode == "min" else 1) * lv.value for lv in c.levels}
             for t, c in answers.items()}  # fmt: skip
    m = pd.DataFrame(cells).T
    m = m.dropna(axis=1) if not m.empty else m
    w, p, min_p = stats.kendall_w_test(m, seed=opt.seed) if m.shape[0] >= 2 else (
        math.nan, math.nan, math.nan)  # fmt: skip
    verdict: bool | None = None
    if np.isfinite(p) and min_p < opt.alpha:
        verdict = bool(p < opt.alpha)
    bases = sorted({c.basis for c in answers.values()})
    return {"kendall_w": _num(w), "p": _num(p), "verdict": verdict, "tasks": list(m.index),
            "backbones": list(m.columns), "min_p": _num(min_p), "basis": bases}  # fmt: skip


def _num(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def answers_json(answers: dict[str, Confirmation], gen: dict[str, Any]) -> dict[str, Any]:
    """The ``report/answers.json`` document (the issue's shape, nothing more)."""
    tasks = []
    for task, c in answers.items():
        tasks.append({
            "task": task, "metric": c.metric, "basis": c.basis,
            "backbone_matters": c.matters, "best_backbone": c.chosen.name,
            "backbones": [{"name": lv.name, "value": _num(lv.value), "low": _num(lv.low),
                           "high": _num(lv.high),
                           "n_seeds": lv.n_seeds if c.basis == "confirmation" else None,
                           "n_trials": int(c.n_trials.get(lv.name, 0))}
                          for lv in c.ranking()],
        })  # fmt: skip
    g = {k: gen.get(k) for k in ("kendall_w", "p", "verdict")}
    return {"tasks": tasks, "generalises": g}


def basis_sentence(answers: dict[str, Confirmation], opt: Options) -> str:
    """The report's first sentence: where the answers come from."""
    conf = [t for t, c in answers.items() if c.basis == "confirmation"]
    trials = [t for t, c in answers.items() if c.basis == "trials"]
    if answers and not trials:
        seeds = sorted({c.seeds for c in answers.values()})
        return ("These answers come from the confirmation stage: each backbone's best "
                "configuration (chosen on validation by the value told to Optuna) retrained with "
                f"{'/'.join(map(str, seeds))} seeds and scored once on the test split; "
                "everything after the answers is descriptive.")  # fmt: skip
    if not conf:
        return ("No confirmation stage ran (python -m search.final EXP --per backbone), so these "
                "answers come from the search's trial population, which TPE and ASHA shape: "
                "each backbone's median at the last epoch every trial reached, compared with a "
                "bootstrap within each backbone; treat them as provisional.")  # fmt: skip
    return (f"The answers for {', '.join(conf)} come from the confirmation stage (each "
            "backbone's best configuration retrained with seeds and scored on test); no "
            f"confirmation stage ran for {', '.join(trials)}, whose answers come from the "
            "search's trial population (medians at a common epoch, provisional).")  # fmt: skip


def _ci(lo: float, hi: float, d: int = 3) -> str:
    if np.isfinite(lo) and np.isfinite(hi):
        return f"[{fmt(lo, d)}, {fmt(hi, d)}]"
    return "(no interval)"


def _p(p: float) -> str:
    """``= 0.034``, or ``< 0.001`` (a bootstrap p of 0 only says p < 1 / resamples)."""
    return "< 0.001" if np.isfinite(p) and p < 0.001 else f"= {fmt(p, 2)}"


def rq1(answers: dict[str, Confirmation], opt: Options) -> list[str]:
    """Does the backbone matter, per task, and the lead sentence over tasks."""
    yes, no, unknown, out = [], [], [], []
    for task, c in answers.items():
        ch = c.chosen
        where = "on test" if c.basis == "confirmation" else "in the trials"
        head = (f"{task} ({c.basis}): {ch.name}, chosen on validation, scores {c.metric} "
                f"{fmt(ch.value, 3)} {_ci(ch.low, ch.high)} {where}")
        if c.basis == "confirmation":
            head += f" (mean over {ch.n_seeds} seeds; {c.method})"
        else:
            head += f" ({c.method})"
        parts = []
        for _, r in c.comparisons.iterrows():
            parts.append(f"vs {r['other']} {fmt(r['diff'], 3)} {_ci(r['low'], r['high'])} "
                         f"(Holm p {_p(r['p_holm'])})")  # fmt: skip
        if c.matters is None:
            unknown.append(task)
            verdict = "too little data to tell whether the backbone matters"
        elif c.matters:
            yes.append(task)
            verdict = f"the backbone matters (a difference excludes 0 at the {opt.alpha:g} level)"
        else:
            no.append(task)
            verdict = (f"the data support no difference at the {opt.alpha:g} level (Holm), "
                       "which is not proof of none")  # fmt: skip
        body = "; ".join(parts)
        out.append(f"{head}" + (f"; {body}" if body else "") + f": {verdict}.")
    lead = []
    if yes:
        lead.append(f"the backbone matters in {', '.join(yes)}")
    if no:
        lead.append(f"no difference is supported in {', '.join(no)}")
    if unknown:
        lead.append(f"too little data to tell in {', '.join(unknown)}")
    if not lead:
        return ["No task has data to judge the backbone's role."]
    text = "; ".join(lead)
    return [text[0].upper() + text[1:] + ".", *out]


def rq2(answers: dict[str, Confirmation], opt: Options) -> list[str]:
    """The ranking per task with intervals, and the chosen backbone."""
    out = []
    for task, c in answers.items():
        ranking = c.ranking()
        listed = ", ".join(f"{i}. {lv.name} {fmt(lv.value, 3)} {_ci(lv.low, lv.high)}"
                           for i, lv in enumerate(ranking, start=1))  # fmt: skip
        what = c.metric if c.basis == "confirmation" else f"median {c.metric}"
        line = f"{task}: {c.chosen.name} (chosen on validation); {what}: {listed}"
        if ranking and ranking[0].name != c.chosen.name:
            line += (f"; {ranking[0].name} ranks first here, but the choice stays with the "
                     "selection rule (validation)")
        out.append(line + ".")
    return out or ["No task has data to rank backbones."]


def rq3(gen: dict[str, Any], opt: Options) -> list[str]:
    """Agreement of the tasks' rankings."""
    tasks, bbs = gen.get("tasks", []), gen.get("backbones", [])
    if len(tasks) < 2:
        return [f"Only {len(tasks)} task(s) have rankings, so whether one backbone generalises "
                "cannot be answered here (null)."]
    w, p = gen.get("kendall_w"), gen.get("p")
    head = (f"Kendall's W over {len(tasks)} tasks and {len(bbs)} shared backbones = "
            f"{fmt(w if w is not None else math.nan, 3)} (permutation p = "
            f"{fmt(p if p is not None else math.nan, 3)})")
    if gen.get("verdict") is None:
        return [head + ": too little data to tell (even identical rankings could not reach p < "
                f"{opt.alpha:g}, smallest possible p {fmt(gen.get('min_p') or math.nan, 3)})."]
    if gen["verdict"]:
        return [head + ": the tasks rank the backbones alike, so a backbone that leads them all "
                "is a candidate that generalises."]
    return [head + f": no agreement is supported at the {opt.alpha:g} level; no backbone is "
            "shown to generalise across these tasks."]


def confirmation_section(res: Results, opt: Options) -> Section:
    """Per task, each backbone's test value with its interval and the comparisons."""
    s = Section("confirmation", "Answers: each backbone on test (confirmation stage)")
    answers = task_answers(res, opt)
    gen = generalises(answers, opt)
    s.data.update(answers=answers, generalises=gen, basis=basis_sentence(answers, opt),
                  json=answers_json(answers, gen))  # fmt: skip
    rows, comps = [], []
    for task, c in answers.items():
        for lv in c.ranking():
            rows.append({"task": task, "basis": c.basis, "backbone": lv.name,
                         "chosen": "yes" if lv.name == c.chosen.name else "",
                         "metric": c.metric, "value": lv.value, "low": lv.low, "high": lv.high,
                         "seeds": lv.n_seeds, "trials": c.n_trials.get(lv.name, 0)})  # fmt: skip
        comps.append(c.comparisons.assign(basis=c.basis))
        s.notes.extend(f"{task}: {n}" for n in c.notes)
    if rows:
        s.tables["per_backbone"] = pd.DataFrame(rows)
    comps = [c for c in comps if not c.empty]
    if comps:
        s.tables["comparisons"] = pd.concat(comps, ignore_index=True)
    s.text.append(s.data["basis"])
    s.text.append(
        "Confirmation basis: a level's value is its test metric, the mean over its seeds, with "
        f"a {opt.level:.0%} interval from a two-level bootstrap (seeds with replacement, then "
        "test videos with replacement within each label; the same draws for every backbone, so "
        "differences are paired), or a t interval over seeds where per-item outputs are "
        "missing. Trial basis: the median over trials at the last epoch every trial reached, "
        "differences by a bootstrap within each backbone. Comparisons: the backbone chosen on "
        "validation against each other, Holm-adjusted."
    )
    return s


def answers_section(res: Results, secs: dict[str, Section], opt: Options) -> Section:
    s = Section("answers", "Answers to the research questions")
    conf = secs["confirmation"].data
    answers, gen = conf["answers"], conf["generalises"]
    s.text.append(conf["basis"])
    parts = (rq1(answers, opt), rq2(answers, opt), rq3(gen, opt))
    for i, (q, lines) in enumerate(zip(QUESTIONS, parts, strict=True), start=1):
        s.data[f"rq{i}"] = lines
        s.headed[f"RQ{i}. {q}"] = lines
    return s
