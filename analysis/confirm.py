"""The confirmation stage read back: each backbone's best configuration retrained with seeds and
scored on test (``search.final --per backbone``), compared with paired intervals.

Intervals (for a level's test value, the mean over its seeds, and for the difference between
two levels) come from one two-level bootstrap, drawn once per task and shared by every level:
each replicate draws the seeds with replacement (paired: every level was retrained with the
same seeds) and the test videos with replacement within each label (images where there are no
videos, as the final stage's own per-run intervals), the same videos for every seed and level;
the metric is recomputed from the runs' per-item outputs (``final/items``) with each item
weighted by how often its video was drawn. Percentile intervals; a difference's two-sided p is
twice the smaller share of replicates on either side of 0. Where a run has no per-item outputs
(rows written before them) or the metric cannot be recomputed from items (average precision),
a t interval over seeds is used instead (paired by seed for differences); ``method`` says which.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from search.results import read_final, read_items

BOOT = "bootstrap over seeds and test videos"
T_SEEDS = "t over seeds"
ITEM_METRICS = ("acc", "mean_acc", "balanced_acc", "macro_f1", "auc", "video_auc")
CHUNK = 256  # bootstrap replicates per block (bounds memory on large test sets)


@dataclass
class Level:
    """One level's (backbone's) confirmation: its test value (mean over seeds) and interval."""

    name: str
    rank: int  # 1 = chosen on validation (the selection rule)
    trial_id: str
    selection_value: float
    value: float
    low: float
    high: float
    n_seeds: int
    sd: float


@dataclass
class Confirmation:
    """One task's confirmation stage: levels (rank order), comparisons of the chosen level with
    each other (``diff`` > 0 = chosen better), RQ1's verdict and the interval method."""

    task: str
    metric: str  # test_<metric>
    mode: str
    param: str
    levels: list[Level]
    comparisons: pd.DataFrame
    matters: bool | None
    method: str
    seeds: int
    notes: list[str] = field(default_factory=list)
    n_trials: dict[str, int] = field(default_factory=dict)  # search trials per level
    basis: str = "confirmation"  # or "trials" (analysis.population)

    @property
    def chosen(self) -> Level:
        return min(self.levels, key=lambda lv: lv.rank)

    def ranking(self) -> list[Level]:
        """Levels by test value, best first."""
        sign = -1.0 if self.mode == "min" else 1.0
        return sorted(self.levels, key=lambda lv: -sign * lv.value if np.isfinite(lv.value)
                      else math.inf)  # fmt: skip


# ------------------------------------------------------------------------ weighted metrics
def _wmean(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    tot = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (w @ x) / tot, np.nan)


def _wauc(w: np.ndarray, label: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of weights ``w`` ``[B, N]`` (ties count one half)."""
    order = np.argsort(score, kind="mergesort")
    s, y, wo = score[order], label[order].astype(float), w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(wo * y, starts, axis=1)
    neg = np.add.reduceat(wo * (1.0 - y), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (pos * (below + 0.5 * neg)).sum(axis=1) / den, np.nan)


def _wbalanced(w: np.ndarray, label: np.ndarray, correct: np.ndarray) -> np.ndarray:
    classes = np.unique(label)
    onehot = (label[:, None] == classes[None, :]).astype(float)
    seen = w @ onehot
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a replicate without any class
        recall = np.where(seen > 0, (w @ (onehot * correct[:, None])) / seen, np.nan)
        out = np.nanmean(np.where(seen > 0, recall, np.nan), axis=1)
    return np.where((seen > 0).sum(axis=1) >= 2, out, np.nan)


def _wmacro_f1(w: np.ndarray, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    classes = np.union1d(label, pred)
    is_l = (label[:, None] == classes[None, :]).astype(float)
    is_p = (pred[:, None] == classes[None, :]).astype(float)
    tp, fp, fn = w @ (is_l * is_p), w @ (is_p * (1 - is_l)), w @ (is_l * (1 - is_p))
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f1 = np.where(den > 0, 2 * tp / den, np.nan)
        return np.nanmean(f1, axis=1)


def weighted_metric(base: str, items: pd.DataFrame, unit_w: np.ndarray,
                    unit_index: np.ndarray) -> np.ndarray:  # fmt: skip
    """Metric ``base`` (``auc``, ``acc``, ...) of one run's items for each row of unit weights
    ``unit_w`` ``[B, U]`` (``unit_index``: each item's unit); with all weights 1 it is the
    metric of the whole set (``lssat.metrics``)."""
    w = unit_w[:, unit_index]
    label = items["label"].to_numpy(dtype=np.int64)
    if base in ("acc", "mean_acc"):
        return _wmean(w, items["correct"].to_numpy(dtype=float))
    if base == "balanced_acc":
        return _wbalanced(w, label, items["correct"].to_numpy(dtype=float))
    if base == "macro_f1":
        return _wmacro_f1(w, label, items["pred"].to_numpy(dtype=np.int64))
    score = items["score"].to_numpy(dtype=float)
    if base == "auc":
        return _wauc(w, label, score)
    if base == "video_auc":  # a video: its mean frame logit, labelled by its majority
        video = items["unit"].to_numpy(dtype=np.int64)
        keep = video >= 0
        vids, inv = np.unique(unit_index[keep], return_inverse=True)
        cnt = np.bincount(inv)
        v_score = np.bincount(inv, weights=score[keep]) / cnt
        v_label = (np.bincount(inv, weights=label[keep]) / cnt >= 0.5).astype(np.int64)
        return _wauc(unit_w[:, vids], v_label, v_score)
    raise ValueError(f"metric {base!r} cannot be recomputed from items")


# ------------------------------------------------------------------------ the bootstrap
def _units(items: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """(each item's unit index, unit indices per stratum): videos (an image without one is its
    own unit), stratified by the label of the unit's first item when every class has 2 units."""
    video = items["unit"].to_numpy(dtype=np.int64)
    key = np.where(video >= 0, video, -1 - np.arange(len(video)))
    uniq, first, index = np.unique(key, return_index=True, return_inverse=True)
    units = np.arange(len(uniq))
    label = items["label"].to_numpy(dtype=np.int64)[first]
    if (label < 0).all():
        return index, [units]
    strata = [units[label == c] for c in np.unique(label)]
    return index, strata if all(len(s) >= 2 for s in strata) else [units]


def _draws(strata: list[np.ndarray], n_units: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """Unit multiplicities ``[b, U]`` of ``b`` stratified bootstrap resamples."""
    out = np.zeros((b, n_units))
    for s in strata:
        out[:, s] = rng.multinomial(len(s), np.full(len(s), 1.0 / len(s)), size=b)
    return out


def paired_bootstrap(runs: dict[str, list[pd.DataFrame]], base: str, n_resamples: int,
                     seed: int) -> tuple[dict[str, float], np.ndarray]:  # fmt: skip
    """Point values (mean over seeds) and bootstrap replicates ``[B, G]`` of every level;
    ``runs``: level -> its runs' test items, in the same seed order for every level."""
    names = list(runs)
    first = runs[names[0]][0]
    index, strata = _units(first)
    n_units = int(index.max()) + 1 if len(index) else 0
    n_seeds = len(runs[names[0]])
    ones = np.ones((1, n_units))
    point = {g: float(np.mean([weighted_metric(base, it, ones, index)[0] for it in runs[g]]))
             for g in names}  # fmt: skip
    rng = np.random.default_rng([seed, 0xC0F1])
    reps = np.empty((n_resamples, len(names)))
    for lo in range(0, n_resamples, CHUNK):
        b = min(CHUNK, n_resamples - lo)
        unit_w = _draws(strata, n_units, b, rng)
        pick = rng.integers(0, n_seeds, (b, n_seeds))  # seeds drawn with replacement
        for j, g in enumerate(names):
            per_seed = np.stack([weighted_metric(base, it, unit_w, index) for it in runs[g]])
            reps[lo : lo + b, j] = np.take_along_axis(per_seed.T, pick, axis=1).mean(axis=1)
    return point, reps


def _percentile(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return math.nan, math.nan
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def boot_p(d: np.ndarray) -> float:
    """Two-sided bootstrap p of a difference's replicates against 0."""
    d = d[np.isfinite(d)]
    if not len(d):
        return math.nan
    return float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))


# ------------------------------------------------------------------------ one task
def confirm_task(task: str, rows: pd.DataFrame, items: pd.DataFrame, level: float = 0.95,
                 alpha: float = 0.05, n_resamples: int = 2000,
                 seed: int = 0) -> Confirmation | None:  # fmt: skip
    """The confirmation stage of one task from its COMPLETE per-level final rows (and their
    per-item outputs): every level's test value with its interval, the chosen level (rank 1,
    picked on validation) against each other, Holm over those comparisons."""
    from analysis.stats import holm

    if rows.empty:
        return None
    metric = "test_" + str(rows["metric"].iloc[0])[len("val_") :]
    base = metric[len("test_") :]
    mode = str(rows["mode"].iloc[0])
    param = str(rows["group_param"].dropna().iloc[0]) if rows["group_param"].notna().any() \
        else "backbone"  # fmt: skip
    notes: list[str] = []
    groups = {str(g): r for g, r in rows.groupby("group", sort=False)}
    seeds = sorted(set.intersection(*(set(r["seed"]) for r in groups.values())))
    if not seeds:
        return None
    dropped = sum(len(set(r["seed"]) - set(seeds)) for r in groups.values())
    if dropped:
        notes.append(f"{dropped} run(s) whose seed not every level has are left out (pairing).")
    by_seed = {g: r.set_index("seed").loc[seeds] for g, r in groups.items()}
    runs = _item_runs(by_seed, items) if base in ITEM_METRICS else None
    sign = -1.0 if mode == "min" else 1.0
    levels: list[Level] = []
    chosen = min(groups, key=lambda g: int(groups[g]["rank"].min()))
    comp = []
    if runs is not None:
        method = BOOT
        point, reps = paired_bootstrap(runs, base, n_resamples, seed)
        names = list(runs)
        for j, g in enumerate(names):
            lo, hi = _percentile(reps[:, j], level)
            vals = by_seed[g][metric].to_numpy(dtype=float)
            levels.append(_level(g, by_seed[g], point[g], lo, hi, vals))
        c = names.index(chosen)
        for j, g in enumerate(names):
            if g == chosen:
                continue
            d = sign * (reps[:, c] - reps[:, j])
            lo, hi = _percentile(d, level)
            comp.append({"task": task, "chosen": chosen, "other": g,
                         "diff": sign * (point[chosen] - point[g]), "low": lo, "high": hi,
                         "p": boot_p(d)})  # fmt: skip
    else:
        method = T_SEEDS
        if base in ITEM_METRICS:
            notes.append("Some runs have no per-item test outputs; intervals are t intervals "
                         "over seeds (the test items' own uncertainty is not in them).")
        else:
            notes.append(f"{metric} cannot be recomputed from items; intervals are t intervals "
                         "over seeds.")
        for g, r in by_seed.items():
            vals = r[metric].to_numpy(dtype=float)
            lo, hi = _t_interval(vals, level)
            levels.append(_level(g, r, float(np.mean(vals)), lo, hi, vals))
        a = by_seed[chosen][metric].to_numpy(dtype=float)
        for g, r in by_seed.items():
            if g == chosen:
                continue
            d = sign * (a - r[metric].to_numpy(dtype=float))
            lo, hi = _t_interval(d, level)
            p = _t_p(d)
            comp.append({"task": task, "chosen": chosen, "other": g, "diff": float(np.mean(d)),
                         "low": lo, "high": hi, "p": p})  # fmt: skip
    comparisons = pd.DataFrame(comp, columns=["task", "chosen", "other", "diff", "low", "high",
                                              "p"])  # fmt: skip
    comparisons["p_holm"] = holm(comparisons["p"].to_numpy()) if len(comparisons) else []
    if len(levels) < 2 or len(seeds) < 2 or comparisons["p_holm"].isna().all():
        matters = None
        if len(seeds) < 2:
            notes.append("One seed per level: too little to tell whether the backbone matters.")
    else:
        matters = bool((comparisons["p_holm"] < alpha).any())
    levels.sort(key=lambda lv: lv.rank)
    return Confirmation(task, metric, mode, param, levels, comparisons, matters, method,
                        len(seeds), notes)  # fmt: skip


def _level(g: str, r: pd.DataFrame, value: float, lo: float, hi: float,
           vals: np.ndarray) -> Level:  # fmt: skip
    return Level(name=g, rank=int(r["rank"].min()), trial_id=str(r["trial_id"].iloc[0]),
                 selection_value=float(r["selection_value"].iloc[0]), value=value, low=lo,
                 high=hi, n_seeds=len(vals),
                 sd=float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)  # fmt: skip


def _t_interval(x: np.ndarray, level: float) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    ci = sps.ttest_1samp(x, 0.0).confidence_interval(level)
    return float(ci.low), float(ci.high)


def _t_p(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    if len(d) < 2 or np.all(d == d[0]):
        return math.nan if len(d) < 2 else (1.0 if d[0] == 0 else 0.0)
    return float(sps.ttest_1samp(d, 0.0).pvalue)


def _item_runs(by_seed: dict[str, pd.DataFrame],
               items: pd.DataFrame) -> dict[str, list[pd.DataFrame]] | None:  # fmt: skip
    """Each level's runs' test items (seed order), or None unless every run has them over the
    same test rows."""
    if items.empty:
        return None
    test = items[items["set"] == "test"]
    groups = {k: g.sort_values("row") for k, g in test.groupby("run_id", sort=False)}
    out: dict[str, list[pd.DataFrame]] = {}
    rows_ref = None
    for g, r in by_seed.items():
        out[g] = []
        for run_id in r["run_id"]:
            it = groups.get(run_id)
            if it is None:
                return None
            rows = it["row"].to_numpy()
            if rows_ref is None:
                rows_ref = rows
            elif len(rows) != len(rows_ref) or (rows != rows_ref).any():
                return None
            out[g].append(it.reset_index(drop=True))
    return out


# ------------------------------------------------------------------------ reading
def read_confirmation(res: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(COMPLETE per-level final rows keyed by ``task_key``, their per-item outputs)."""
    final = read_final(res.sources)
    if final.empty or "final_mode" not in final:
        return pd.DataFrame(), pd.DataFrame()
    rows = final[(final["final_mode"] == "per") & (final["status"] == "COMPLETE")
                 & final["group"].notna()]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    units = res.trials.drop_duplicates("trial_id").set_index("trial_id")["task_key"]
    rows = rows.assign(task_key=rows["trial_id"].map(units).fillna(rows["task"]))
    items = read_items(res.sources)
    if not items.empty:
        keep = set(zip(rows["experiment"], rows["run_id"], strict=True))
        items = items[[(e, r) in keep for e, r in zip(items["experiment"], items["run_id"],
                                                      strict=True)]]  # fmt: skip
    return rows, items


def confirmations(res: Any, level: float = 0.95, alpha: float = 0.05, n_resamples: int = 2000,
                  seed: int = 0) -> dict[str, Confirmation]:  # fmt: skip
    """Every task's confirmation stage (tasks without one are absent)."""
    rows, items = read_confirmation(res)
    out: dict[str, Confirmation] = {}
    if rows.empty:
        return out
    for task, r in rows.groupby("task_key", sort=True):
        it = items[items["run_id"].isin(r["run_id"])] if not items.empty else items
        c = confirm_task(str(task), r, it, level, alpha, n_resamples, seed)
        if c is not None:
            out[str(task)] = c
    return out


def mean_interval(rows: pd.DataFrame, items: pd.DataFrame, level: float = 0.95,
                  n_resamples: int = 2000, seed: int = 0) -> tuple[float, float, str]:  # fmt: skip
    """Interval for one configuration's test value, the mean over its seeds (its final rows):
    the two-level bootstrap when every run kept its items, else a t interval over seeds."""
    metric = "test_" + str(rows["metric"].iloc[0])[len("val_") :]
    base = metric[len("test_") :]
    r = rows.set_index("seed")
    runs = _item_runs({"x": r}, items) if base in ITEM_METRICS and not items.empty else None
    if runs is not None:
        _, reps = paired_bootstrap(runs, base, n_resamples, seed)
        lo, hi = _percentile(reps[:, 0], level)
        return lo, hi, BOOT
    lo, hi = _t_interval(r[metric].to_numpy(dtype=float), level)
    return lo, hi, T_SEEDS
