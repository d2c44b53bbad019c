"""analysis.stats against scipy's own functions and known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import stats


def _matrix(rng: np.random.Generator, n: int = 7, k: int = 4) -> pd.DataFrame:
    return pd.DataFrame(rng.normal(size=(n, k)), columns=[f"b{i}" for i in range(k)])


def test_friedman_agrees_with_scipy_and_kendall_w_formula() -> None:
    m = _matrix(np.random.default_rng(1))
    fr = stats.friedman(m)
    ref = sps.friedmanchisquare(*[m[c] for c in m.columns])
    assert fr.statistic == pytest.approx(ref.statistic)
    assert fr.pvalue == pytest.approx(ref.pvalue)
    # Kendall's W from its definition (no ties): 12 S / (n^2 (k^3 - k))
    n, k = m.shape
    r = sps.rankdata(-m.to_numpy(), axis=1)
    s = ((r.sum(axis=0) - n * (k + 1) / 2) ** 2).sum()
    assert fr.kendall_w == pytest.approx(12 * s / (n**2 * (k**3 - k)))
    assert list(fr.mean_ranks.index) == list(m.columns[np.argsort(r.mean(axis=0))])


def test_identical_rankings_give_w_one_and_reversed_give_zero() -> None:
    rng = np.random.default_rng(2)
    # different values per block, same order of the 5 treatments in every block
    base = np.sort(rng.uniform(size=(6, 5)), axis=1)[:, ::-1]
    fr = stats.friedman(pd.DataFrame(base, columns=list("abcde")))
    assert fr.kendall_w == pytest.approx(1.0)
    assert fr.pvalue < 0.01
    assert list(fr.mean_ranks.index) == list("abcde")
    rev = pd.DataFrame([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]], columns=list("xyz"))
    assert stats.friedman(rev).kendall_w == pytest.approx(0.0)


def test_friedman_refuses_too_small_or_incomplete_input() -> None:
    with pytest.raises(ValueError, match="3 treatments"):
        stats.friedman(pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 1.0]}))
    with pytest.raises(ValueError, match="2 blocks"):
        stats.friedman(pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}))
    with pytest.raises(ValueError, match="complete"):
        stats.friedman(pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, 1], "c": [3.0, 0]}))


def test_pairwise_kendall_agrees_with_scipy() -> None:
    m = _matrix(np.random.default_rng(3), n=3, k=6).T.T  # rows = tasks, columns = backbones
    m.iloc[2, 0] = np.nan
    tau = stats.pairwise_kendall(m)
    assert len(tau) == 3
    for _, row in tau.iterrows():
        both = m.loc[[row["task_a"], row["task_b"]]].dropna(axis=1)
        ref = sps.kendalltau(both.iloc[0], both.iloc[1])
        assert row["n_common"] == both.shape[1]
        assert row["tau"] == pytest.approx(ref.statistic)
        assert row["p"] == pytest.approx(ref.pvalue)


def test_wilcoxon_holm_agrees_with_scipy_and_holm_steps_down() -> None:
    m = _matrix(np.random.default_rng(4), n=12, k=3)
    m["b0"] += 1.5  # b0 clearly best
    w = stats.wilcoxon_holm(m)
    for _, row in w.iterrows():
        ref = sps.wilcoxon(m[row["a"]], m[row["b"]])
        assert row["p"] == pytest.approx(ref.pvalue)
    assert w.set_index(["a", "b"]).loc[("b0", "b1"), "significant"]
    # Holm by hand: sorted p 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert stats.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert np.isnan(stats.holm([np.nan, 0.2])[0]) and stats.holm([np.nan, 0.2])[1] == 0.2
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_nemenyi_cd_matches_demsar_table() -> None:
    # Demsar (2006), Table 5: q_0.05 = 2.569 for k = 4 classifiers
    assert stats.nemenyi_cd(4, 10) == pytest.approx(2.569 * np.sqrt(4 * 5 / 60), rel=1e-3)
    assert stats.nemenyi_cd(2, 10) == pytest.approx(1.960 * np.sqrt(2 * 3 / 60), rel=1e-3)


def test_bootstrap_ci_agrees_with_scipy() -> None:
    x = np.random.default_rng(5).normal(size=30)
    point, lo, hi = stats.bootstrap_ci(x, "median", n_resamples=999, seed=7)
    ref = sps.bootstrap((x,), np.median, n_resamples=999, method="BCa",
                        rng=np.random.default_rng(7))
    assert point == pytest.approx(np.median(x))
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval))
    assert np.isnan(stats.bootstrap_ci([1.0, 2.0])[1])
    assert stats.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)


def test_bootstrap_ci_coverage_is_roughly_nominal() -> None:
    """In repeated samples, the 90% intervals of median and of a median difference contain the
    true value at roughly the nominal rate."""
    rng = np.random.default_rng(11)
    reps, hit, hit_diff = 150, 0, 0
    for i in range(reps):
        x = rng.normal(0.8, 0.05, size=25)
        y = rng.normal(0.75, 0.05, size=20)
        _, lo, hi = stats.bootstrap_ci(x, "median", level=0.9, n_resamples=400, seed=i)
        hit += lo <= 0.8 <= hi
        _, lo, hi = stats.diff_ci(x, y, "median", level=0.9, n_resamples=400, seed=i)
        hit_diff += lo <= 0.05 <= hi
    # nominal 0.90; the binomial sd over 150 reps is 0.025, so allow about 3 sd either way
    assert 0.80 <= hit / reps <= 0.98
    assert 0.80 <= hit_diff / reps <= 0.98


def test_pareto_front_cliques_and_complete_matrix() -> None:
    cost = np.array([1.0, 2.0, 3.0, 2.5, 4.0])
    score = np.array([0.5, 0.7, 0.6, 0.8, 0.8])
    assert stats.pareto_front(cost, score).tolist() == [True, True, False, True, False]
    thr = np.array([10.0, 5.0, 20.0])  # throughput: higher is better
    assert stats.pareto_front(thr, np.array([0.5, 0.9, 0.4]), cost_lower_better=False).tolist() \
        == [True, True, True]
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2})
    assert stats.cliques(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert stats.cliques(ranks, 5.0) == [["a", "b", "c", "d"]]
    m = pd.DataFrame({"x": [1, 2, 3.0], "y": [1, np.nan, np.nan], "z": [1, 2, np.nan]})
    full, rows, cols = stats.complete_matrix(m)
    assert cols == ["y"] and rows == [2] and full.shape == (2, 2)
    assert stats.evidence(0.001) == "strong evidence" and stats.evidence(0.5).startswith("no")
