"""The report's sections: each turns ``Results`` into text, tables, figures and notes.

A ``Section`` is what both the HTML report and the notebooks show; ``data`` keeps the numbers
that the generated answers (``analysis.answers``) are built from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import plots, stats, tables
from analysis.answers import answers_section, confirmation_section
from analysis.data import UNKNOWN, VALUE_CHOICES, Results
from analysis.heldout import heldout_section
from analysis.importance import ALL, importances, side_by_side
from analysis.section import BLOCKS, MATTERS, Options, Section, fmt, fmt_ci  # noqa: F401


def _metrics(res: Results) -> dict[str, str]:
    return {t: res.metric(t)[0] for t in res.trials["task_key"].unique()}


# --------------------------------------------------------------------------- 0. overview
def overview(res: Results, opt: Options) -> Section:
    s = Section("overview", "Data")
    counts = tables.status_counts(res)
    tot = counts[["COMPLETE", "PRUNED", "FAIL"]].sum()
    s.text.append(
        f"Read {len(res.trials)} trials from {', '.join(res.sources)}: "
        f"{tot['COMPLETE']} COMPLETE, {tot['PRUNED']} PRUNED, {tot['FAIL']} FAIL, "
        f"over {res.trials['task_key'].nunique()} task(s)."
    )
    ranked = " and ".join(res.statuses)
    s.text.append(
        f"Each trial's value is its {VALUE_CHOICES[res.value]} (the task metric "
        f"{'best over its epochs' if res.value == 'best' else 'at its last epoch'}). Rankings "
        f"and statistics use {ranked} trials only ({len(res.ranked)} trials)"
        + ("; PRUNED trials carry truncated values and are marked in the tables." if
           res.include_pruned else "; PRUNED trials stopped early and are left out.")
    )
    s.tables["status_counts"] = counts
    s.tables["tasks"] = tables.task_metrics(res)
    from analysis import warm

    origin = warm.provenance(res.trials)  # search.run --warm-start: which trials came from where
    if not origin.empty:
        s.tables["warm_start"] = origin
        s.text.extend(warm.provenance_lines(origin))
    s.notes.extend(res.notes)
    return s


# --------------------------------------------------------------------------- 1. per task
def per_task(res: Results, opt: Options) -> Section:
    s = Section("per_task", "1. Best configurations and backbones per task (descriptive)")
    if res.ranked.empty:
        s.notes.append("No ranked trials: nothing to show.")
        return s
    top = tables.top_k(res, opt.top_k)
    summary = tables.group_summary(res, "backbone", opt.level, opt.n_resamples, opt.seed)
    s.tables["best_configs"] = top[top["rank"] == 1].reset_index(drop=True)
    s.tables["top_k"] = top
    s.tables["best_config_full"] = tables.best_config(res).reset_index(names="field")
    s.tables["backbone_summary"] = summary
    metrics = _metrics(res)
    for task in res.tasks:
        b = top[(top["task"] == task) & (top["rank"] == 1)].iloc[0]
        keys = ["descriptor", "modality", "mask_ratio", "aux_weight"]
        if b["aux_weight"] == 0:  # the supervised baseline masks nothing
            keys.remove("mask_ratio")
        extra = ", ".join(
            f"{k} {fmt(b[k], 3) if isinstance(b[k], float) else b[k]}" for k in keys if k in b
        )
        s.text.append(
            f"{task}: best {metrics[task]} = {fmt(b['value'])} with {b['backbone']} ({extra}); "
            f"{len(res.task(task))} ranked trials."
        )
    s.text.append(
        "Per backbone, compared at matched budgets: the expected best of n trials (n = the "
        "smallest backbone's trial count in the task; Dodge et al. 2019), which ranks the "
        "backbones, with its spread (sd of the best of n); the observed best (more trials, "
        f"higher best: not compared); the median with a {opt.level:.0%} BCa bootstrap interval. "
        "'leader vs' gives the leader's gain over each backbone at the smaller count, with a "
        "permutation interval."
    )
    gains = tables.group_gains(res, "backbone", opt.level, min(opt.n_resamples, 400), opt.seed)
    s.tables["backbone_gains"] = gains
    s.data["gains"] = gains
    variance = backbone_variance(res, opt)
    s.tables["backbone_variance"] = variance
    s.data["variance"] = variance
    for _, v in variance.iterrows():
        if np.isfinite(v["omega2"]):
            s.text.append(
                f"{v['task']}: the backbone explains {v['omega2']:.0%} "
                f"({opt.level:.0%} CI {v['lo']:.0%}-{v['hi']:.0%}) of the variance of "
                f"{metrics[v['task']]} over {int(v['n'])} trials of {int(v['k'])} backbones "
                "(omega squared)."
            )
    small = summary[summary["n"] < 3]
    if len(small):
        s.notes.append(
            f"{len(small)} task/backbone cell(s) have fewer than 3 trials: no interval there "
            "(" + ", ".join(f"{t}/{b}" for t, b in list(zip(small["task"], small["backbone"],
                                                             strict=True))[:8]) + ")."
        )
    s.figures["backbone_summary"] = plots.group_summary_plot(
        summary, "backbone", metrics, level=opt.level
    )
    if not res.epochs.empty and "epoch" in res.epochs:
        s.figures["learning_curves"] = plots.learning_curves(res.epochs, top, metrics)
    s.data["summary"] = summary
    return s


def backbone_variance(res: Results, opt: Options) -> pd.DataFrame:
    """Per task: omega squared of the backbone (share of the metric's variance over the ranked
    trials it explains) with a bootstrap interval; ``stats.variance_explained``."""
    rows = []
    for task in res.tasks:
        t = res.task(task)
        w, lo, hi = stats.variance_explained(t["score"], t["backbone"], opt.level,
                                             min(opt.n_resamples, 1000), opt.seed)
        rows.append({"task": task, "n": len(t), "k": t["backbone"].nunique(), "omega2": w,
                     "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["task", "n", "k", "omega2", "lo", "hi"])


# --------------------------------------------------------------------------- 2. matrices
def matrices(res: Results, opt: Options) -> Section:
    s = Section("matrices", "2. Backbone, descriptor and configuration x task (descriptive)")
    if res.ranked.empty:
        s.notes.append("No ranked trials: nothing to show.")
        return s
    s.text.append(
        "Each cell is the expected best value of n trials of that level in that task, n = the "
        "smallest level's trial count there (matched budgets); colour and '#' give its rank "
        "within the task (1 = best). The mean rank is over the tasks where the level was tried. "
        "'none' descriptor = the trial used RGB only; 'baseline/C..' = aux_weight 0."
    )
    for by in tables.FACTORS:
        values, ranks = tables.factor_matrix(res, by)
        ranks = ranks.assign(mean_rank=ranks.mean(axis=1)).sort_values("mean_rank")
        values = values.loc[ranks.index]
        s.tables[f"{by}_values"] = values.reset_index()
        s.tables[f"{by}_ranks"] = ranks.reset_index()
        if len(values.index) < 2 and values.index[0] == UNKNOWN:
            s.notes.append(f"The results do not record the {by}.")
        elif len(values.index) < 2:
            s.notes.append(f"Only one {by} level ({values.index[0]}) was searched.")
        s.figures[f"{by}_matrix"] = plots.rank_heatmap(
            values, ranks.drop(columns="mean_rank"), f"{by} x task (best value, rank)"
        )
        s.data[by] = (values, ranks)
    return s


# --------------------------------------------------------------------------- 3. agreement
def agreement(res: Results, opt: Options) -> Section:
    s = Section("agreement", "3. Do tasks agree on the backbone ranking? (descriptive)")
    m = tables.score_matrix(res, "backbone", "task")
    n_tasks = len(m.index)
    s.data.update(n_tasks=n_tasks, w=np.nan, p=np.nan)
    if n_tasks < 2:
        s.notes.append(
            f"Rank agreement needs at least 2 tasks; found {n_tasks}. Kendall's W and tau are "
            "left out."
        )
        return s
    full, drop_rows, drop_cols = stats.complete_matrix(m)
    if drop_cols:
        s.notes.append(
            "Backbones not tried in every task are left out of Kendall's W: "
            + ", ".join(map(str, drop_cols)) + "."
        )
    if drop_rows:
        s.notes.append("Tasks left out of Kendall's W: " + ", ".join(map(str, drop_rows)) + ".")
    if full.shape[0] >= 2 and full.shape[1] >= 3:
        fr = stats.friedman(full, opt.alpha)
        s.data.update(w=fr.kendall_w, p=fr.pvalue, k=fr.k, n=fr.n_blocks)
        s.text.append(
            f"Kendall's W over {fr.n_blocks} tasks and {fr.k} backbones = {fmt(fr.kendall_w, 3)} "
            f"(0 = no agreement, 1 = identical rankings), Friedman p = {fmt(fr.pvalue, 3)}: "
            f"{stats.evidence(fr.pvalue)} that the tasks rank the backbones alike."
        )
        s.tables["kendall_w"] = pd.DataFrame([{
            "tasks": fr.n_blocks, "backbones": fr.k, "kendall_w": fr.kendall_w,
            "friedman_chi2": fr.statistic, "p": fr.pvalue}])
    else:
        s.notes.append(
            f"Kendall's W needs at least 2 tasks sharing at least 3 backbones; the complete "
            f"part has {full.shape[0]} task(s) x {full.shape[1]} backbone(s)."
        )
    tau = stats.pairwise_kendall(m)
    s.tables["pairwise_tau"] = tau
    s.data["tau"] = tau
    if tau["tau"].notna().any():
        square = pd.DataFrame(np.eye(n_tasks), index=m.index, columns=m.index)
        for _, row in tau.iterrows():
            square.loc[row["task_a"], row["task_b"]] = row["tau"]
            square.loc[row["task_b"], row["task_a"]] = row["tau"]
        s.figures["pairwise_tau"] = plots.matrix_heatmap(
            square, "Kendall tau between tasks' backbone rankings", "tau"
        )
        for _, row in tau.dropna(subset=["tau"]).iterrows():
            s.text.append(
                f"{row['task_a']} vs {row['task_b']}: tau = {fmt(row['tau'], 3)} over "
                f"{row['n_common']} common backbones, p = {fmt(row['p'], 3)}."
            )
    else:
        s.notes.append("No pair of tasks shares 3 or more backbones: pairwise tau left out.")
    from analysis import warm

    advice = warm.advice(tau, list(m.index))  # which other task to warm-start each one from
    s.tables["warm_start_advice"] = advice
    s.data["warm_start_advice"] = advice
    s.headed["Best warm start per task"] = warm.advice_lines(advice)
    return s


# --------------------------------------------------------------------------- 4. Friedman
def _blocks(res: Results, blocks: str) -> tuple[str, pd.DataFrame, list, list]:
    """(kind, complete matrix, dropped blocks, dropped backbones); blocks are always tasks."""
    return ("task", *stats.complete_matrix(tables.score_matrix(res, "backbone", "task")))


def friedman_section(res: Results, opt: Options) -> Section:
    s = Section("friedman",
                "4. Friedman test and critical differences over backbones (descriptive)")
    kind, full, drop_rows, drop_cols = _blocks(res, opt.blocks)
    s.data.update(blocks=kind, result=None)
    label = "tasks"
    s.text.append(
        f"Blocks are {label} (value = the backbone's expected best of n trials, n = the "
        "smallest backbone's trial count in that task); only backbones present in every block "
        "count. Post-hoc: Nemenyi critical difference (diagram) and "
        "pairwise Wilcoxon signed-rank tests with Holm's correction (table)."
    )
    if drop_cols:
        s.notes.append("Backbones missing from some blocks, left out: "
                       + ", ".join(map(str, drop_cols)) + ".")
    if drop_rows:
        s.notes.append(f"{len(drop_rows)} block(s) lacking some backbone were left out.")
    if full.shape[0] < 2 or full.shape[1] < 3:
        s.notes.append(
            f"The Friedman test needs at least 2 blocks and 3 backbones; the complete part has "
            f"{full.shape[0]} block(s) x {full.shape[1]} backbone(s). Test left out."
        )
        return s
    fr = stats.friedman(full, opt.alpha)
    groups = stats.cliques(fr.mean_ranks, fr.cd)
    wil = stats.wilcoxon_holm(full, opt.alpha)
    s.data.update(result=fr, cliques=groups, wilcoxon=wil)
    best = fr.mean_ranks.index[0]
    beats = [b for b, r in fr.mean_ranks.items() if r - fr.mean_ranks.iloc[0] > fr.cd]
    s.text.append(
        f"Friedman chi2 = {fmt(fr.statistic, 3)} over {fr.n_blocks} {label} and {fr.k} "
        f"backbones, p = {fmt(fr.pvalue, 3)}: {stats.evidence(fr.pvalue)} that the backbones "
        f"differ. Best mean rank: {best} ({fmt(fr.mean_ranks.iloc[0], 3)}); Nemenyi CD at "
        f"alpha {opt.alpha} = {fmt(fr.cd, 3)}; {best} is significantly ahead of "
        + (", ".join(map(str, beats)) if beats else "no other backbone") + "."
    )
    if fr.n_blocks < 6:
        s.notes.append(
            f"Only {fr.n_blocks} blocks: the Wilcoxon tests cannot reach p < 0.05 with fewer "
            "than 6 blocks, and the Friedman chi-square approximation is rough."
        )
    s.tables["mean_ranks"] = pd.DataFrame({
        "backbone": fr.mean_ranks.index, "mean_rank": fr.mean_ranks.to_numpy(),
        "differs_from_best": [r - fr.mean_ranks.iloc[0] > fr.cd for r in fr.mean_ranks],
    })
    s.tables["friedman"] = pd.DataFrame([{
        "blocks": kind, "n_blocks": fr.n_blocks, "backbones": fr.k, "chi2": fr.statistic,
        "p": fr.pvalue, "kendall_w": fr.kendall_w, "nemenyi_cd": fr.cd, "alpha": opt.alpha}])
    s.tables["wilcoxon_holm"] = wil
    s.figures["cd_diagram"] = plots.cd_diagram(
        fr.mean_ranks, fr.cd, groups,
        f"Mean rank over {fr.n_blocks} {label} (Friedman p = {fmt(fr.pvalue, 3)})",
    )
    return s


# --------------------------------------------------------------------------- 5. importance
def importance_section(res: Results, opt: Options) -> Section:
    s = Section("importance", "5. Hyperparameter importance per task (descriptive)")
    s.text.append(
        "Optuna's fANOVA and PED-ANOVA evaluators side by side, over a study rebuilt from each "
        "task's COMPLETE trials with each trial's active (sampled) parameters and the "
        "distributions the search recorded. Parameters sampled in every trial are scored over "
        "all trials (scope 'all'); a conditional parameter (e.g. mask_ratio, absent when "
        "aux_weight = 0) only within the trials where it was active ('active in k/N'), never at "
        "its default. Importances sum to 1 within a task, scope and evaluator. fANOVA splits the "
        "variance of the metric over all trials; PED-ANOVA asks which parameters set the top "
        "trials (at least 5, or 10%) apart, and is noisy in searches of fewer than about 50 "
        "trials."
    )
    parts = []
    for task in res.tasks:
        t = res.task(task)
        imp, notes = importances(t, res.metric(task)[1], seed=opt.seed)
        s.notes.extend(f"{task}: {n}." for n in notes)
        if not imp.empty:
            parts.append(imp.assign(task=task))
    cols = ["task", "scope", "evaluator", "param", "importance", "rank", "n_trials"]
    if not parts:
        s.data["importance"] = pd.DataFrame(columns=cols)
        s.notes.append("No task had enough trials for importance.")
        return s
    imp = pd.concat(parts, ignore_index=True)[cols]
    s.data["importance"] = imp
    s.tables["importance"] = imp
    both = side_by_side(imp)
    s.tables["importance_side_by_side"] = both
    main = imp[imp["scope"] == ALL]
    wide = main.pivot_table(index="param", columns=["evaluator", "task"], values="importance")
    wide.columns = [f"{e}:{t}" for e, t in wide.columns]
    s.tables["importance_wide"] = wide.reset_index()
    if not main.empty:
        s.figures["importance"] = plots.importance_heatmaps(main)
    for task, g in main.groupby("task"):
        tops = []
        for ev, ge in g.groupby("evaluator"):
            top = ge.sort_values("rank").iloc[0]
            tops.append(f"{ev}: {top['param']} ({fmt(top['importance'], 2)})")
        focus = []
        for p in ("backbone", "mask_ratio", "aux_weight", "descriptor"):
            ge = g[(g["param"] == p) & (g["evaluator"] == "fanova")]
            if len(ge):
                n_params = (g["evaluator"] == "fanova").sum()
                focus.append(f"{p} #{int(ge['rank'].iloc[0])}/{n_params}")
        s.text.append(f"{task}: most important over all trials {'; '.join(tops)}."
                      + (f" fANOVA ranks {', '.join(focus)}." if focus else ""))
        firsts = set(g.loc[g["rank"] == 1, "param"])
        if len(firsts) > 1:
            s.notes.append(f"{task}: the evaluators disagree on the most important parameter "
                           f"({', '.join(sorted(firsts))}); read its importances with care.")
    split = both[both["disagree"]]
    for task, g in split.groupby("task"):
        main_rows = g[g["scope"] == ALL]
        said = "; ".join(
            f"{r['param']} (fANOVA #{int(r['fanova_rank'])}, {fmt(r['fanova'], 2)}; PED-ANOVA "
            f"#{int(r['ped_anova_rank'])}, {fmt(r['ped_anova'], 2)})"
            for _, r in main_rows.iterrows()
        )
        more = len(g) - len(main_rows)
        s.text.append(
            f"{task}: fANOVA and PED-ANOVA disagree over all trials on "
            + (said or "no parameter")
            + (f"; and on {more} parameter(s) within conditional scopes (table "
               "importance_side_by_side)" if more else "") + "."
        )
    fan = main[main["evaluator"] == "fanova"]
    if fan["task"].nunique() >= 2:
        for p in ("mask_ratio", "aux_weight", "backbone", "descriptor"):
            g = fan[fan["param"] == p]
            if g.empty:
                continue
            big = sorted(g.loc[g["importance"] >= MATTERS, "task"])
            small = sorted(g.loc[g["importance"] < MATTERS, "task"])
            if big and small:
                where = f"in {', '.join(big)} but not in {', '.join(small)}"
            elif big:
                where = f"in every task ({', '.join(big)})"
            else:
                where = "in no task"
            s.text.append(f"Across tasks, {p} matters (fANOVA share >= {MATTERS}) {where}.")
    return s


# --------------------------------------------------------------------------- 6. effects
def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame(columns=["task", "family", "factor", "x", "n", "median", "lo", "hi"])


def effects_section(res: Results, opt: Options) -> Section:
    s = Section("effects", "6. Effect of mask ratio and auxiliary weight; gain over the "
                "baseline (descriptive)")
    factors = [f for f in ("mask_ratio", "aux_weight") if res.ranked[f].notna().any()]
    s.data["gain"] = pd.DataFrame()
    if not factors:
        s.notes.append("No trial records mask_ratio or aux_weight: effect curves left out.")
        return s
    parts = [tables.effect_curves(res, f, level=opt.level,
                                  n_resamples=min(opt.n_resamples, 1000), seed=opt.seed)
             for f in factors]
    parts = [p for p in parts if not p.empty]  # concat with an empty frame turns floats to object
    curves = pd.concat(parts, ignore_index=True) if parts else _empty_curves()
    for f in factors:
        missing = [t for t in res.tasks if not ((curves["task"] == t)
                                                & (curves["factor"] == f)).any()]
        if missing:
            s.notes.append(f"{f} takes fewer than 2 values in: {', '.join(missing)}.")
    s.text.append(
        "Median value per backbone family at each value (or quantile bin) of the factor, with "
        f"{opt.level:.0%} bootstrap bands; the mask-ratio curve uses L-SSAT trials only "
        "(aux_weight > 0). The loss is aux_weight * aux + (1 - aux_weight) * primary."
    )
    if not curves.empty:
        s.tables["effect_curves"] = curves
        s.figures["effect_curves"] = plots.effect_plot(
            res.ranked, curves, [f for f in factors if f in set(curves["factor"])], _metrics(res)
        )
    gain = tables.lssat_gain(res, opt.level, opt.n_resamples, opt.seed)
    s.data["gain"] = gain
    no_base = [t for t in res.tasks if not (gain["task"] == t).any()]
    if no_base:
        s.notes.append(
            "No aux_weight = 0 baseline (or no L-SSAT trial) to compare with in: "
            + ", ".join(no_base) + "; gain left out there."
        )
    if gain.empty:
        return s
    s.tables["lssat_gain"] = gain
    s.figures["lssat_gain"] = plots.gain_plot(gain)
    s.text.append(
        "The gain is the expected best of n L-SSAT trials minus the expected best of n baseline "
        "trials, n = the smaller group's count (matched budgets, docs/analysis.md), with a "
        f"{opt.level:.0%} permutation interval; positive = L-SSAT better."
    )
    for _, g in gain[gain["family"] == "all"].iterrows():
        s.text.append(
            f"{g['task']}: L-SSAT minus baseline at {g['n_match']} trials each "
            f"{fmt(g['gain'], 3)} {fmt_ci(g['gain_lo'], g['gain_hi'])} "
            f"({g['n_lssat']} vs {g['n_baseline']} trials)."
        )
    return s


# --------------------------------------------------------------------------- 7. cost
def cost_section(res: Results, opt: Options) -> Section:
    s = Section("cost", "7. Cost: value against size, compute and throughput (descriptive)")
    from analysis.fronts import front_plot, searched_fronts

    searched, reading, fig_data = searched_fronts(res.trials)
    if not searched.empty:  # multi-objective studies: the front of what they searched
        s.headed["Searched objectives (multi-objective studies)"] = reading
        s.tables["searched_fronts"] = searched
        s.figures["searched_fronts"] = front_plot(fig_data)
    fronts = tables.cost_fronts(res)
    if fronts.empty:
        s.notes.append("No trial records params_count, gflops or samples_per_s: cost left out.")
        return s
    measured = [c for c in tables.COSTS if c in set(fronts["cost"])]
    missing = [c for c in tables.COSTS if c not in measured]
    if missing:
        s.notes.append(f"Not measured in any trial: {', '.join(missing)}.")
    s.text.append(
        "Black steps: each task's Pareto front (no other trial is both cheaper and better)."
    )
    s.tables["pareto_fronts"] = fronts
    s.figures["cost"] = plots.cost_plot(res.ranked, fronts, tables.COSTS, _metrics(res))
    for task in res.tasks:
        f = fronts[(fronts["task"] == task) & (fronts["cost"] == measured[0])]
        if f.empty:
            continue
        sign = tables._sign(res, task)
        best = f.loc[(f["value"] * sign).idxmax()]
        near = f[f["value"] * sign >= sign * best["value"] - 0.01 * abs(best["value"])]
        cheap = near.sort_values("cost_value").iloc[0]
        s.text.append(
            f"{task}: {len(f)} trials on the {measured[0]} front; the best ({fmt(best['value'])},"
            f" {best['backbone']}) costs {fmt(best['cost_value'], 3)}, the cheapest within 1% "
            f"of it ({fmt(cheap['value'])}, {cheap['backbone']}) {fmt(cheap['cost_value'], 3)}."
        )
    return s


# --------------------------------------------------------------------------- 8. fairness
def fairness_section(res: Results, opt: Options) -> Section:
    s = Section("fairness", "8. Fairness: worst-group accuracy and group gap (descriptive)")
    fair = tables.fairness(res)
    if fair.empty:
        s.notes.append(
            "No group metrics (final_*worst_group* / final_*group_gap*) in any trial: the data "
            "had no group labels, so fairness is left out."
        )
        return s
    worst, gap = tables.group_metric_columns(res.ranked)
    s.text.append(f"Read from {worst or '-'} and {gap or '-'} of each backbone's best trial.")
    no_groups = [t for t in res.tasks if not (fair["task"] == t).any()]
    if no_groups:
        s.notes.append(f"No group metrics in: {', '.join(no_groups)}.")
    s.tables["fairness"] = fair
    s.figures["fairness"] = plots.fairness_plot(fair)
    for task, f in fair.groupby("task"):
        parts = []
        if f["worst_group"].notna().any():
            w = f.loc[f["worst_group"].idxmax()]
            parts.append(f"highest worst-group accuracy {fmt(w['worst_group'], 3)} "
                         f"({w['backbone']})")
        if f["gap"].notna().any():
            g = f.loc[f["gap"].idxmin()]
            parts.append(f"smallest gap {fmt(g['gap'], 3)} ({g['backbone']})")
        s.text.append(f"{task}: " + "; ".join(parts) + ".")
    return s


SECTIONS = (overview, per_task, matrices, agreement, friedman_section, importance_section,
            effects_section, cost_section, fairness_section)


DESCRIPTIVE = (
    "Descriptive: the search's trial population as it came out of TPE and ASHA (unequal "
    "counts, pruned trials), at the value told to Optuna; these numbers describe the search and "
    "do not decide the answers above."
)


def build_sections(res: Results, opt: Options | None = None) -> list[Section]:
    """Every section of the report, in order: the held-out headline, the answers and the
    per-backbone test values they rest on, then the descriptive sections."""

    opt = opt or Options()
    conf = confirmation_section(res, opt)
    answers = answers_section(res, {conf.key: conf}, opt)
    out = [fn(res, opt) for fn in SECTIONS]
    for s in out[1:]:
        s.text.insert(0, DESCRIPTIVE)
    return [heldout_section(res, opt, conf), answers, conf, *out]
