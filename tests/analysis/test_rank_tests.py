"""Tests of lesionres.analysis.rank_tests against scipy and pingouin called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from analysis_tables import brute_pseudomedian
from scipy import stats as sps

from lesionres.analysis import (
    adjust_pvalues,
    paired_test,
    unpaired_test,
)
from lesionres.errors import LesionresError


def _series(values, prefix="s"):
    return pd.Series(values, index=[f"{prefix}{i}" for i in range(len(values))], dtype=float)


@pytest.mark.parametrize("n", [6, 12, 30, 80])
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
@pytest.mark.parametrize("decimals", [None, 2])
def test_wilcoxon_equals_scipy_and_pingouin(n, zero_method, decimals):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.2, 0.9, n)
    b = a - rng.normal(0.02, 0.05, n)
    if decimals is not None:  # ties and zero differences
        a, b = a.round(decimals), b.round(decimals)
        b[:2] = a[:2]
    res = paired_test(_series(a), _series(b), zero_method=zero_method, n_boot=50)
    ref = sps.wilcoxon(a, b, zero_method=zero_method)  # scipy's own defaults ('auto')
    assert res["statistic"] == pytest.approx(float(ref.statistic), abs=1e-12)
    assert res["p_value"] == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)
    pg_res = pg.wilcoxon(a, b, correction=False, zero_method=zero_method)
    assert res["p_value"] == pytest.approx(float(pg_res["p_val"].iloc[0]), rel=1e-9, abs=1e-12)
    assert res["effect_size"] == pytest.approx(float(pg_res["RBC"].iloc[0]), abs=1e-9)
    d = a - b
    assert res["n_zero_diff"] == int((d == 0).sum())
    assert res["n"] == (int((d != 0).sum()) if zero_method == "wilcox" else n)
    assert res["median_of_diffs"] == pytest.approx(np.median(d))
    ranked = d[d != 0] if zero_method == "wilcox" else d
    assert res["median_diff"] == pytest.approx(brute_pseudomedian(ranked), abs=1e-12)
    assert res["zero_method"] == zero_method


def test_paired_estimate_is_the_shift_the_signed_rank_test_is_about():
    # the Hodges-Lehmann pseudomedian is the shift theta at which the signed-rank statistic of
    # d - theta balances: scipy's test of the shifted differences finds nothing there
    rng = np.random.default_rng(4)
    a = rng.uniform(0.3, 0.9, 31)
    b = a - rng.gamma(1.5, 0.03, 31)  # skewed: mean, median and pseudomedian all differ
    res = paired_test(_series(a), _series(b), n_boot=0)
    d = a - b
    assert res["median_diff"] == pytest.approx(brute_pseudomedian(d), abs=1e-12)
    assert res["median_diff"] != pytest.approx(np.median(d))
    assert sps.wilcoxon(d - res["median_diff"]).pvalue > 0.9
    assert abs(pg.wilcoxon(d - res["median_diff"])["RBC"].iloc[0]) < 0.05


def test_paired_ci_agrees_with_the_test_when_the_median_difference_is_zero():
    # 16 scans unchanged, 12 improve by about 0.05, 2 get slightly worse: the median of the
    # differences is 0 (its CI was [0.000, 0.05] next to p = 0.002), the test finds a shift
    d = np.r_[np.zeros(16), 0.05 + np.linspace(-0.01, 0.01, 12), [-0.01, -0.02]]
    b = np.linspace(0.4, 0.7, d.size).round(3)
    res = paired_test(_series(b + d), _series(b), n_boot=2000)
    assert res["median_of_diffs"] == 0.0
    assert res["p_value"] < 0.01 and res["effect_size"] > 0
    assert res["median_diff"] == pytest.approx(brute_pseudomedian((b + d - b)[d != 0]))
    assert 0 < res["ci_low"] <= res["median_diff"] <= res["ci_high"]


def test_wilcoxon_p_method_is_stated():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=20)
    exact = paired_test(_series(a), _series(a - rng.normal(0.1, 0.1, 20)), n_boot=0)
    assert exact["p_method"] == "exact"
    a2 = rng.uniform(size=30).round(1)
    approx = paired_test(_series(a2), _series((a2 + rng.normal(0, 0.2, 30)).round(1)), n_boot=0)
    assert approx["p_method"].startswith("normal approximation")
    small = a2[:10]
    other = np.r_[small[:1], (small[1:] + 0.1).round(1)]  # one zero difference
    perm = paired_test(_series(small), _series(other), n_boot=0)
    assert perm["p_method"].startswith("exact permutation")


def test_effect_size_sign_positive_means_a_larger():
    a = np.arange(1, 11, dtype=float)
    res = paired_test(_series(a + 1), _series(a), n_boot=0)
    assert res["effect_size"] == 1.0 and res["mean_diff"] == 1.0
    res = paired_test(_series(a), _series(a + 1), n_boot=0)
    assert res["effect_size"] == -1.0
    res = unpaired_test(a + 100, a, n_boot=0)
    assert res["effect_size"] == 1.0


@pytest.mark.parametrize("n", [5, 13, 14, 40])
def test_all_zero_differences_give_p_one(n):
    a = np.linspace(0.1, 0.9, n)
    res = paired_test(_series(a), _series(a.copy()), n_boot=100)
    assert res["p_value"] == 1.0
    assert res["effect_size"] == 0.0
    assert res["n"] == 0 and res["n_zero_diff"] == n
    assert "all differences zero" in res["note"]
    assert (res["ci_low"], res["ci_high"]) == (0.0, 0.0)


def test_small_n_note_and_floor():
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    res = paired_test(_series(a), _series(a - [0.1, 0.2, 0.3, 0.4, 0.5]), n_boot=0)
    assert res["p_value"] == pytest.approx(0.0625)
    assert "0.0625" in res["note"]


def test_paired_test_on_different_subjects_raises():
    a = _series([0.1, 0.2, 0.3], prefix="atlas-")
    b = _series([0.1, 0.2, 0.3], prefix="isles-")
    with pytest.raises(LesionresError, match="do not hold the same scans"):
        paired_test(a, b)
    with pytest.raises(LesionresError, match="more than once"):
        paired_test(
            pd.Series([1.0, 2.0], index=["x", "x"]), pd.Series([1.0, 2.0], index=["x", "y"])
        )


def test_paired_test_aligns_by_id_not_position():
    a = pd.Series([0.1, 0.5, 0.9, 0.3, 0.7, 0.2], index=list("abcdef"))
    b = (a - [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]).iloc[::-1]  # same ids, reversed order
    res = paired_test(a, b, n_boot=0)
    assert res["effect_size"] == 1.0


def test_unpaired_test_refuses_shared_ids():
    a = _series([0.1, 0.2, 0.3])
    with pytest.raises(LesionresError, match="not independent"):
        unpaired_test(a, a + 1)


@pytest.mark.parametrize(
    ("n1", "n2", "decimals"), [(5, 7, None), (8, 30, None), (30, 25, 1), (60, 45, 2)]
)
def test_mann_whitney_equals_scipy_and_pingouin(n1, n2, decimals):
    rng = np.random.default_rng(n1 * n2)
    a, b = rng.uniform(0.2, 0.9, n1), rng.uniform(0.1, 0.8, n2)
    if decimals is not None:
        a, b = a.round(decimals), b.round(decimals)
    res = unpaired_test(a, b, n_boot=50)
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert res["statistic"] == pytest.approx(float(ref.statistic), abs=1e-12)
    assert res["p_value"] == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)
    pg_res = pg.mwu(a, b, alternative="two-sided")
    assert res["p_value"] == pytest.approx(float(pg_res["p_val"].iloc[0]), rel=1e-9, abs=1e-12)
    assert res["effect_size"] == pytest.approx(float(pg_res["RBC"].iloc[0]), abs=1e-9)
    assert res["median_diff"] == pytest.approx(np.median(np.subtract.outer(a, b)))
    assert res["n"] == n1 + n2 and res["design"] == "unpaired"


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_corrections_equal_pingouin(method):
    rng = np.random.default_rng(7)
    for _ in range(20):
        p = rng.uniform(0, 0.2, rng.integers(1, 15)) ** rng.uniform(0.5, 3)
        p[rng.uniform(size=p.size) < 0.2] = p[0]  # ties
        ours = adjust_pvalues(p, method)
        _, theirs = pg.multicomp(p, method=method)
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    p = np.array([0.5, 0.003, np.nan, 0.054, 0.0003])
    _, theirs = pg.multicomp(p, method=method)
    np.testing.assert_allclose(adjust_pvalues(p, method), theirs, atol=1e-12)
    with pytest.raises(LesionresError):
        adjust_pvalues(p, "bonferroni")  # type: ignore[arg-type]
