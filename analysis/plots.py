"""Figures for the report and notebooks, built with matplotlib's object API (no pyplot state).

Every function returns a ``matplotlib.figure.Figure``; ``png_bytes`` renders one with Agg.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FAMILY_COLORS = {"vit": "tab:blue", "cnn": "tab:orange", "all": "tab:gray"}
DPI = 100


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _grid(n: int, ncols: int = 3, w: float = 4.6, h: float = 3.4) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(w * ncols, h * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _color(family: str) -> str:
    return FAMILY_COLORS.get(family, "tab:green")


def group_summary_plot(
    summary: pd.DataFrame,
    by: str = "backbone",
    metrics: dict[str, str] | None = None,
    level: float = 0.95,
) -> Figure:
    """Per task: median (dot, ``level`` CI bar), expected best at the matched budget (diamond)
    and observed best (cross) of each group."""
    tasks = list(dict.fromkeys(summary["task"]))
    height = 1.6 + 0.32 * max(summary.groupby("task").size().max(), 1)
    fig, axes = _grid(len(tasks), ncols=3, w=4.8, h=height)
    for ax, task in zip(axes, tasks, strict=True):
        s = summary[summary["task"] == task].sort_values("rank_median", ascending=False)
        y = np.arange(len(s))
        colors = [_color(f) for f in s.get("family", pd.Series("", index=s.index))]
        err = np.vstack([s["median"] - s["median_lo"], s["median_hi"] - s["median"]])
        err = np.nan_to_num(np.abs(err))
        ax.errorbar(s["median"], y, xerr=err, fmt="none", ecolor="0.4", capsize=3)
        ax.scatter(s["median"], y, c=colors, zorder=3, label=f"median ({level * 100:.3g}% CI)")
        ax.scatter(s["best"], y, marker="x", c="0.6", zorder=3, label="observed best")
        ax.scatter(s["emax"], y, marker="D", c="k", s=14, zorder=4,
                   label="expected best of n (matched)")
        ax.set_yticks(y, [f"{n} (n={k})" for n, k in zip(s[by], s["n"], strict=True)])
        metric = (metrics or {}).get(task, "value")
        ax.set_xlabel(metric)
        ax.set_title(task)
        ax.grid(axis="x", alpha=0.3)
    if axes:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
                   fontsize=8)
    return fig


def rank_heatmap(values: pd.DataFrame, ranks: pd.DataFrame, title: str) -> Figure:
    """Rows = levels, columns = tasks; colour = rank within task, text = value and rank."""
    n_rows, n_cols = values.shape
    fig = Figure(figsize=(4.0 + 1.7 * n_cols, 1.6 + 0.5 * n_rows), layout="constrained")
    ax = fig.subplots()
    r = ranks.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(r), cmap="viridis_r", aspect="auto",
                   vmin=1, vmax=max(2.0, np.nanmax(r) if np.isfinite(r).any() else 2.0))
    for i in range(n_rows):
        for j in range(n_cols):
            v = values.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3g}\n#{r[i, j]:g}", ha="center", va="center", fontsize=9,
                        color="black" if r[i, j] <= (np.nanmax(r) + 1) / 2 else "white")
    ax.set_xticks(range(n_cols), [str(c) for c in values.columns], rotation=30, ha="right",
                  fontsize=10)
    ax.set_yticks(range(n_rows), [str(i) for i in values.index], fontsize=10)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="rank within task (1 = best)", shrink=0.8)
    return fig


def matrix_heatmap(m: pd.DataFrame, title: str, label: str, vmin: float = -1.0,
                   vmax: float = 1.0) -> Figure:
    """A symmetric-style heatmap (e.g. Kendall tau between tasks) with values written in."""
    fig = Figure(figsize=(3.2 + 1.1 * m.shape[1], 1.4 + 0.8 * m.shape[0]), layout="constrained")
    ax = fig.subplots()
    a = m.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(a), cmap="coolwarm", vmin=vmin, vmax=vmax)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if np.isfinite(a[i, j]):
                ax.text(j, i, f"{a[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(a.shape[1]), [str(c) for c in m.columns], rotation=30, ha="right")
    ax.set_yticks(range(a.shape[0]), [str(i) for i in m.index])
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    return fig


def cd_diagram(mean_ranks: pd.Series, cd: float, groups: list[list], title: str) -> Figure:
    """Critical-difference diagram (Demsar 2006): mean ranks on an axis, rank 1 (best) on the
    left, thick bars join treatments whose difference is below the critical difference."""
    r = mean_ranks.sort_values()
    k = len(r)
    half = math.ceil(k / 2)
    fig = Figure(figsize=(7.5, 1.6 + 0.32 * half + 0.15 * len(groups)), layout="constrained")
    ax = fig.subplots()
    lo, hi = 1, max(k, 2)
    ax.set_xlim(lo - 0.6, hi + 0.6)
    top = 0.0
    ax.hlines(top, lo, hi, color="k")
    for x in range(lo, hi + 1):
        ax.vlines(x, top, top + 0.08, color="k")
        ax.text(x, top + 0.12, str(x), ha="center", va="bottom", fontsize=8)
    # CD bar
    ax.hlines(top + 0.45, lo, lo + cd, color="k", lw=2)
    ax.text(lo + cd / 2, top + 0.5, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    # clique bars
    for i, g in enumerate(groups):
        y = top - 0.12 - 0.1 * i
        ax.hlines(y, r[g].min() - 0.03, r[g].max() + 0.03, color="k", lw=3)
    base = top - 0.25 - 0.1 * len(groups)
    for i, (name, rank) in enumerate(r.items()):
        left = i < half
        row = i if left else k - 1 - i
        y = base - 0.22 * row
        x_end = lo - 0.5 if left else hi + 0.5
        ax.plot([rank, rank, x_end], [top, y, y], color="0.3", lw=0.8)
        ax.text(x_end + (-0.05 if left else 0.05), y, f"{name} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=8)
    ax.set_ylim(base - 0.22 * half - 0.1, top + 0.75)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return fig


def importance_heatmaps(imp: pd.DataFrame) -> Figure:
    """Side by side per evaluator: parameters x tasks, colour and text = normalised importance."""
    evaluators = list(dict.fromkeys(imp["evaluator"]))
    tasks = sorted(imp["task"].unique())
    params = sorted(imp["param"].unique())
    fig = Figure(figsize=(1.5 + (1.3 * len(tasks) + 1.6) * len(evaluators),
                          1.2 + 0.4 * len(params)), layout="constrained")
    axes = fig.subplots(1, len(evaluators), squeeze=False).ravel()
    for ax, ev in zip(axes, evaluators, strict=True):
        m = (imp[imp["evaluator"] == ev].pivot_table(index="param", columns="task",
                                                      values="importance")
             .reindex(index=params, columns=tasks))
        a = m.to_numpy(dtype=float)
        im = ax.imshow(np.ma.masked_invalid(a), cmap="magma_r", vmin=0, vmax=1, aspect="auto")
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                if np.isfinite(a[i, j]):
                    ax.text(j, i, f"{a[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if a[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
        ax.set_yticks(range(len(params)), params)
        ax.set_title({"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}.get(ev, ev))
    fig.colorbar(im, ax=list(axes), label="importance (normalised per task)", shrink=0.8)
    return fig


def effect_plot(trials: pd.DataFrame, curves: pd.DataFrame, factors: list[str],
                metrics: dict[str, str]) -> Figure:
    """Rows = tasks, columns = factors: trial points and median curves (CI band) per family."""
    tasks = sorted(curves["task"].unique())
    fig = Figure(figsize=(4.6 * len(factors), 3.2 * len(tasks)), layout="constrained")
    axes = fig.subplots(len(tasks), len(factors), squeeze=False)
    for i, task in enumerate(tasks):
        for j, factor in enumerate(factors):
            ax = axes[i, j]
            t = trials[trials["task_key"] == task]
            if factor == "mask_ratio":
                t = t[t["aux_weight"].fillna(1.0) > 0]
            c = curves[(curves["task"] == task) & (curves["factor"] == factor)]
            for fam, g in c.groupby("family"):
                pts = t[t["family"] == fam]
                ax.scatter(pts[factor], pts["value"], s=10, alpha=0.35, color=_color(fam))
                g = g.sort_values("x")[["x", "median", "lo", "hi"]].astype(float)
                ax.plot(g["x"], g["median"], marker="o", color=_color(fam), label=fam)
                ax.fill_between(g["x"], g["lo"], g["hi"], color=_color(fam), alpha=0.15)
            if c.empty:
                ax.text(0.5, 0.5, "too few distinct values", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8)
            ax.set_xlabel(factor)
            ax.set_ylabel(metrics.get(task, "value"))
            ax.set_title(task, fontsize=9)
            ax.grid(alpha=0.3)
            if not c.empty:
                ax.legend(fontsize=7)
    return fig


def gain_plot(gain: pd.DataFrame) -> Figure:
    """L-SSAT gain over the aux_weight = 0 baseline per task and family at matched budgets."""
    fig = Figure(figsize=(5.0, 1.0 + 0.35 * len(gain)), layout="constrained")
    ax = fig.subplots()
    labels = [f"{t} / {f} (n={n})"
              for t, f, n in zip(gain["task"], gain["family"], gain["n_match"], strict=True)]
    y = np.arange(len(gain))[::-1]
    pt = gain["gain"].to_numpy(dtype=float)
    err = np.vstack([pt - gain["gain_lo"], gain["gain_hi"] - pt])
    ax.errorbar(pt, y, xerr=np.nan_to_num(np.abs(err)), fmt="o", capsize=3, color="tab:purple")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("gain in expected best of n trials (L-SSAT - baseline)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_yticks(y, labels)
    return fig


def cost_plot(trials: pd.DataFrame, fronts: pd.DataFrame, costs: dict[str, tuple[str, bool]],
              metrics: dict[str, str]) -> Figure:
    """Rows = tasks, columns = measured costs: trials coloured by family, Pareto front as a line."""
    tasks = sorted(fronts["task"].unique())
    cols = [c for c in costs if c in set(fronts["cost"])]
    fig = Figure(figsize=(4.4 * len(cols), 3.2 * len(tasks)), layout="constrained")
    axes = fig.subplots(len(tasks), len(cols), squeeze=False)
    for i, task in enumerate(tasks):
        t = trials[trials["task_key"] == task]
        for j, col in enumerate(cols):
            ax = axes[i, j]
            x = pd.to_numeric(t[col], errors="coerce")
            for fam in sorted(t["family"].unique()):
                sel = t["family"] == fam
                ax.scatter(x[sel], t.loc[sel, "value"], s=12, alpha=0.6, color=_color(fam),
                           label=fam)
            f = fronts[(fronts["task"] == task) & (fronts["cost"] == col)]
            f = f.sort_values("cost_value")
            # attainment staircase: cheaper-is-better costs hold a value until the next point
            ax.step(f["cost_value"], f["value"], where="post" if costs[col][1] else "pre",
                    color="k", lw=1, label="Pareto front")
            if x.min() > 0 and x.max() / x.min() > 50:
                ax.set_xscale("log")
            ax.set_xlabel(costs[col][0])
            ax.set_ylabel(metrics.get(task, "value"))
            ax.set_title(task, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    return fig


def fairness_plot(fair: pd.DataFrame) -> Figure:
    """Per task: worst-group accuracy and group gap of each backbone's best trial."""
    tasks = sorted(fair["task"].unique())
    fig, axes = _grid(len(tasks), ncols=3, w=4.8,
                      h=1.6 + 0.35 * max(fair.groupby("task").size().max(), 1))
    for ax, task in zip(axes, tasks, strict=True):
        f = fair[fair["task"] == task]
        y = np.arange(len(f))
        ax.barh(y - 0.2, f["worst_group"].fillna(0), height=0.4, label="worst-group acc.",
                color="tab:green")
        ax.barh(y + 0.2, f["gap"].fillna(0), height=0.4, label="group gap", color="tab:red")
        ax.set_yticks(y, f["backbone"])
        ax.set_title(task)
        ax.grid(axis="x", alpha=0.3)
    if axes:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
                   fontsize=8)
    return fig


def learning_curves(epochs: pd.DataFrame, top: pd.DataFrame, metrics: dict[str, str]) -> Figure:
    """Per task: the task metric against epoch for its top trials."""
    tasks = sorted(top["task"].unique())
    fig, axes = _grid(len(tasks), ncols=3, w=4.6, h=3.2)
    for ax, task in zip(axes, tasks, strict=True):
        metric = metrics.get(task, "value")
        ids = top.loc[top["task"] == task, ["trial_id", "backbone", "rank"]]
        for _, row in ids.iterrows():
            e = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch")
            if metric in e:
                ax.plot(e["epoch"], e[metric], marker=".",
                        label=f"#{row['rank']} {row['backbone']}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return fig
