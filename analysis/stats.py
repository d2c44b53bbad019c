"""Statistics on score matrices (higher = better), thin over scipy.

Matrices are DataFrames with one row per block (task, or task-seed) and one column per
treatment (backbone, descriptor, ...); ranks are 1 = best, ties get the mean rank.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from search.results.agreement import pairwise_kendall  # noqa: F401  (re-exported)

STATISTICS = {"median": np.median, "mean": np.mean, "max": np.max, "min": np.min}


def _stat(name: str):
    if name not in STATISTICS:
        raise ValueError(f"statistic {name!r} is not one of {', '.join(STATISTICS)}")
    return STATISTICS[name]


def bootstrap_ci(
    values: np.ndarray | pd.Series,
    statistic: str = "median",
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, low, high) of ``statistic`` with a bootstrap interval over the values.

    BCa for the median/mean (percentile when BCa is degenerate), percentile for max/min (a
    resampled maximum never exceeds the observed one, so that interval is only indicative).
    Fewer than 3 values or all equal: the interval is (point, point) for constant data and NaN
    for n < 3.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    fn = _stat(statistic)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = float(fn(x))
    if x.size < 3:
        return point, float("nan"), float("nan")
    if np.all(x == x[0]):
        return point, point, point
    method = "BCa" if statistic in ("median", "mean") else "percentile"
    lo, hi = _bootstrap((x,), lambda a, axis: fn(a, axis=axis), level, n_resamples, seed, method)
    return point, lo, hi


def _bootstrap(data, stat, level, n_resamples, seed, method) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = stats.bootstrap(
                data, stat, n_resamples=n_resamples, confidence_level=level, method=method,
                rng=rng, vectorized=True,
            )
            lo, hi = res.confidence_interval
        except (ValueError, FloatingPointError):
            lo = hi = float("nan")
        if method == "BCa" and not (np.isfinite(lo) and np.isfinite(hi)):
            return _bootstrap(data, stat, level, n_resamples, seed, "percentile")
    return float(lo), float(hi)


def diff_ci(
    a: np.ndarray | pd.Series,
    b: np.ndarray | pd.Series,
    statistic: str = "median",
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(stat(a) - stat(b), low, high): independent two-sample percentile bootstrap.

    The interval is NaN when either sample has fewer than 2 values.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    fn = _stat(statistic)
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan"), float("nan")
    point = float(fn(x) - fn(y))
    if x.size < 2 or y.size < 2:
        return point, float("nan"), float("nan")
    lo, hi = _bootstrap(
        (x, y), lambda p, q, axis: fn(p, axis=axis) - fn(q, axis=axis),
        level, n_resamples, seed, "percentile",
    )
    return point, lo, hi


# --------------------------------------------------------------------------- matched budgets
def emax_weights(size: int, n: int) -> np.ndarray:
    """Weight of the i-th smallest of ``size`` values in the expected maximum of ``n`` trials:
    the chance that it is the largest of a random ``n``-subset, C(i-1, n-1) / C(size, n)."""
    if not 1 <= n <= size:
        raise ValueError(f"the expected maximum of {n} trials needs 1..{size} trials")
    i = np.arange(1, size + 1)
    w = np.zeros(size)
    ok = i >= n
    log_c = gammaln(i[ok]) - gammaln(n) - gammaln(i[ok] - n + 1)
    log_total = gammaln(size + 1) - gammaln(n + 1) - gammaln(size - n + 1)
    w[ok] = np.exp(log_c - log_total)
    return w / w.sum()


def expected_max(values: np.ndarray | pd.Series, n: int) -> tuple[float, float]:
    """(expected best, its standard deviation) of ``n`` trials drawn from these trials' scores.

    Dodge et al. 2019 ("Show Your Work": expected validation performance as a function of the
    number of trials) in its unbiased form, drawing without replacement: for ``n`` equal to the
    number of trials it is their maximum, and for any ``n`` it estimates the expected maximum
    of ``n`` fresh trials without bias, so groups with 48 and 12 trials compare at ``n = 12``.
    NaN when fewer than ``n`` finite values.
    """
    x = np.sort(np.asarray(values, dtype=float))
    x = x[np.isfinite(x)]
    if n < 1 or x.size < n:
        return float("nan"), float("nan")
    w = emax_weights(x.size, n)
    mean = float(w @ x)
    return mean, float(np.sqrt(max(w @ (x - mean) ** 2, 0.0)))


def emax_gain(
    a: np.ndarray | pd.Series,
    b: np.ndarray | pd.Series,
    n: int | None = None,
    level: float = 0.95,
    n_perm: int = 400,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(E[max of n](a) - E[max of n](b), low, high) with ``n`` = the smaller group's size.

    The interval inverts a two-sample permutation test under a location shift: it holds every
    shift ``d`` for which ``a - d`` and ``b`` are exchangeable at level ``1 - level``
    (equal-tailed). A bootstrap of maxima is not used: a resampled maximum never exceeds the
    observed one, and with 48 vs 12 trials and no real difference that interval excluded 0 in
    about 40 % of simulations. NaN interval when a group has fewer than 2 values.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return float("nan"), float("nan"), float("nan")
    n = min(x.size, y.size) if n is None else n
    point = expected_max(x, n)[0] - expected_max(y, n)[0]
    if x.size < 2 or y.size < 2:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_perm, x.size + y.size)), axis=1)
    wa, wb = emax_weights(x.size, n), emax_weights(y.size, n)

    def null(shift: float) -> np.ndarray:
        z = np.concatenate([x - shift, y])[perms]
        return np.sort(z[:, : x.size], axis=1) @ wa - np.sort(z[:, x.size :], axis=1) @ wb

    def bound(q: float) -> float:  # the shift at which the observed gain meets the q-quantile
        span = float(np.ptp(np.concatenate([x, y]))) + abs(point) + 1e-12
        lo, hi = point - 2 * span, point + 2 * span
        for _ in range(24):
            mid = (lo + hi) / 2
            if (point - mid) - np.quantile(null(mid), q) > 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    alpha = 1 - level
    return point, bound(1 - alpha / 2), bound(alpha / 2)


def variance_explained(
    scores: np.ndarray | pd.Series,
    groups: np.ndarray | pd.Series,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(omega squared, low, high): the share of the scores' variance the grouping explains.

    omega^2 = (SS_between - (k - 1) MS_within) / (SS_total + MS_within), the one-way ANOVA
    effect size that, unlike eta^2, is not inflated by many small groups (clipped at 0). The
    interval is a percentile bootstrap resampling trials within each group (group sizes kept).
    NaN for fewer than 2 groups or no within-group replication.
    """
    s = np.asarray(scores, dtype=float)
    g = np.asarray(groups)
    ok = np.isfinite(s)
    s, g = s[ok], g[ok]
    labels, codes = np.unique(g, return_inverse=True)
    k, n = labels.size, s.size
    if k < 2 or n - k < 1:
        return float("nan"), float("nan"), float("nan")

    def omega(v: np.ndarray) -> np.ndarray:  # v: [R, n] resampled scores (same codes)
        counts = np.bincount(codes, minlength=k)
        sums = np.stack([np.bincount(codes, weights=r, minlength=k) for r in v])
        grand = v.mean(axis=1, keepdims=True)
        ss_total = ((v - grand) ** 2).sum(axis=1)
        ss_between = (sums**2 / counts).sum(axis=1) - n * grand[:, 0] ** 2
        ms_within = np.maximum(ss_total - ss_between, 0.0) / (n - k)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = (ss_between - (k - 1) * ms_within) / (ss_total + ms_within)
        return np.clip(np.nan_to_num(w), 0.0, 1.0)

    point = float(omega(s[None, :])[0])
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(codes == c) for c in range(k)]
    idx = np.empty((n_resamples, n), dtype=int)
    for m in members:  # resample within each group, into that group's positions
        idx[:, m] = m[rng.integers(0, m.size, (n_resamples, m.size))]
    boot = omega(s[idx])
    alpha = 1 - level
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return point, float(lo), float(hi)


def ranks(matrix: pd.DataFrame) -> pd.DataFrame:
    """Rank treatments within each block (row): 1 = highest score, ties share the mean rank."""
    r = stats.rankdata(-matrix.to_numpy(dtype=float), axis=1)
    return pd.DataFrame(r, index=matrix.index, columns=matrix.columns)


def complete_matrix(matrix: pd.DataFrame) -> tuple[pd.DataFrame, list, list]:
    """Drop the row or column with most missing cells until none is missing.

    Returns (complete matrix, dropped rows, dropped columns).
    """
    m = matrix.copy()
    dropped_rows: list = []
    dropped_cols: list = []
    while m.size and m.isna().to_numpy().any():
        col_na = m.isna().sum(axis=0)
        row_na = m.isna().sum(axis=1)
        # dropping a column costs one treatment; a row one block: drop the relatively worse one
        if col_na.max() / max(len(m), 1) >= row_na.max() / max(m.shape[1], 1):
            name = col_na.idxmax()
            dropped_cols.append(name)
            m = m.drop(columns=name)
        else:
            name = row_na.idxmax()
            dropped_rows.append(name)
            m = m.drop(index=name)
    return m, dropped_rows, dropped_cols


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for k treatments over n blocks (Demsar 2006)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass
class FriedmanResult:
    """Friedman test over a complete block x treatment matrix, with Kendall's W and Nemenyi CD."""

    statistic: float
    pvalue: float
    kendall_w: float
    n_blocks: int
    k: int
    mean_ranks: pd.Series
    cd: float


def friedman(matrix: pd.DataFrame, alpha: float = 0.05) -> FriedmanResult:
    """Friedman chi-square (scipy, tie-corrected) over blocks = rows, treatments = columns.

    Kendall's W = chi2 / (n (k - 1)), which is the tie-corrected W. Needs a complete matrix with
    at least 2 blocks and 3 treatments (ValueError otherwise). A block whose treatments all tie
    contributes nothing to the statistic.
    """
    if matrix.isna().to_numpy().any():
        raise ValueError("the Friedman test needs a complete matrix (no missing cells)")
    n, k = matrix.shape
    if k < 3:
        raise ValueError(f"the Friedman test needs at least 3 treatments, got {k}")
    if n < 2:
        raise ValueError(f"the Friedman test needs at least 2 blocks, got {n}")
    cols = [matrix[c].to_numpy(dtype=float) for c in matrix.columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.friedmanchisquare(*cols)
    stat, p = float(res.statistic), float(res.pvalue)
    if not np.isfinite(stat):  # every block tied: no evidence of any difference
        stat, p = 0.0, 1.0
    r = ranks(matrix)
    return FriedmanResult(
        statistic=stat,
        pvalue=p,
        kendall_w=stat / (n * (k - 1)),
        n_blocks=n,
        k=k,
        mean_ranks=r.mean(axis=0).sort_values(),
        cd=nemenyi_cd(k, n, alpha),
    )


def kendall_w_test(
    matrix: pd.DataFrame, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float, float]:
    """(Kendall's W, its permutation p, the smallest p the design allows) of a complete
    block (task) x treatment (backbone) score matrix, higher = better.

    W = 12 S / (m^2 (k^3 - k)) over the within-task ranks (ties: mean ranks, no correction).
    The p-value is ``scipy.stats.permutation_test`` shuffling each task's scores over the
    backbones (``permutation_type="samples"``; exact when k!^m fits in ``n_resamples``), one
    sided (agreement). The smallest attainable p is (1/k!)^(m-1) (every task ranks alike):
    when it is not below the level, the design cannot show agreement. NaN for m < 2 or k < 2.
    """
    m, k = matrix.shape
    if m < 2 or k < 2 or matrix.isna().to_numpy().any():
        return float("nan"), float("nan"), float("nan")
    x = matrix.to_numpy(dtype=float)

    def w_stat(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
        v = np.stack(cols, axis=0)  # [k, ..., m]
        r = stats.rankdata(-v, axis=0)
        rsum = r.sum(axis=-1)
        dev = ((rsum - rsum.mean(axis=0, keepdims=True)) ** 2).sum(axis=0)
        return 12.0 * dev / (m**2 * (k**3 - k))

    w = float(w_stat(*[x[:, j] for j in range(k)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.permutation_test(
            [x[:, j] for j in range(k)], w_stat, permutation_type="samples",
            vectorized=True, n_resamples=n_resamples, alternative="greater",
            rng=np.random.default_rng(seed),
        )  # fmt: skip
    min_p = float(np.exp(-(m - 1) * gammaln(k + 1)))
    return w, float(res.pvalue), min_p


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=float)
    adj = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for j, idx in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[idx]))
        adj[idx] = running
    return adj


def wilcoxon_holm(matrix: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests (scipy) between columns over blocks, Holm-adjusted."""
    cols = list(matrix.columns)
    rows = []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            d = matrix[a].to_numpy(dtype=float) - matrix[b].to_numpy(dtype=float)
            stat = p = float("nan")
            if np.any(d != 0):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = stats.wilcoxon(matrix[a], matrix[b])
                stat, p = float(res.statistic), float(res.pvalue)
            else:
                p = 1.0
            rows.append({"a": a, "b": b, "n": len(d), "statistic": stat, "p": p,
                         "median_diff": float(np.median(d))})
    df = pd.DataFrame(rows, columns=["a", "b", "n", "statistic", "p", "median_diff"])
    df["p_holm"] = holm(df["p"].to_numpy()) if len(df) else []
    df["significant"] = df["p_holm"] < alpha
    return df


def cliques(mean_ranks: pd.Series, cd: float) -> list[list]:
    """Maximal groups of treatments whose mean ranks differ by at most ``cd`` (not significant)."""
    r = mean_ranks.sort_values()
    names, vals = list(r.index), r.to_numpy()
    groups: list[list] = []
    last_end = -1
    for i in range(len(vals)):
        j = i
        while j + 1 < len(vals) and vals[j + 1] - vals[i] <= cd:
            j += 1
        if j > i and j > last_end:
            groups.append(names[i : j + 1])
            last_end = j
    return groups


def pareto_front(cost: np.ndarray, score: np.ndarray, cost_lower_better: bool = True) -> np.ndarray:
    """Boolean mask of points no other point beats on both cost and score (higher score better)."""
    c = np.asarray(cost, dtype=float)
    s = np.asarray(score, dtype=float)
    if not cost_lower_better:
        c = -c
    keep = np.zeros(c.size, dtype=bool)
    best = -np.inf
    for idx in np.lexsort((-s, c)):  # cheapest first, best score first among equal cost
        if not (np.isfinite(c[idx]) and np.isfinite(s[idx])):
            continue
        if s[idx] > best:
            keep[idx] = True
            best = s[idx]
    return keep


def evidence(p: float) -> str:
    """Words for a p-value, for the generated text."""
    if not np.isfinite(p):
        return "no test"
    if p < 0.01:
        return "strong evidence"
    if p < 0.05:
        return "evidence"
    if p < 0.1:
        return "weak evidence"
    return "no clear evidence"
