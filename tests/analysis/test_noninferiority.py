"""Tests of lesionres.analysis.noninferiority against scipy on tables built for the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import ISSUE_COLUMNS, paired_table, two_conditions, with_other_cohort
from scipy import stats as sps

from lesionres.analysis import (
    adjust_pvalues,
    compare_conditions,
)
from lesionres.analysis.bootstrap import _bootstrap_pseudomedian, _pseudomedian
from lesionres.analysis.noninferiority import (
    DEFAULT_MARGINS,
    NONINFERIORITY_COLUMNS,
    compare_to_reference,
    parse_margins,
)
from lesionres.errors import LesionresError


def _diffs(df: pd.DataFrame, condition: str, metric: str) -> np.ndarray:
    wide = df.pivot(index="subject_id", columns="condition", values=metric)
    return (wide[condition] - wide["original"]).dropna().to_numpy()


@pytest.mark.parametrize("n", [8, 30, 80])
@pytest.mark.parametrize("round_to", [None, 2])
def test_p_values_are_scipys_one_sided_wilcoxon_on_the_shifted_differences(n, round_to):
    df = with_other_cohort(paired_table(n, round_to=round_to))
    margins = {"dice": 0.02, "hd95_mm": 2.0}
    table = compare_to_reference(df, margins, n_boot=50, n_resamples=20)
    assert list(table.columns[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS
    assert list(table.columns) == list(NONINFERIORITY_COLUMNS)
    assert len(table) == 4 and table.attrs["not_paired"] == ["isles22"]
    for r in table.itertuples():
        d, m = _diffs(df, r.condition, r.metric), margins[r.metric]
        if r.metric == "dice":  # higher is better: H1 d > -m
            p_ni = sps.wilcoxon(np.round(d + m, 12), alternative="greater").pvalue
            p_up = sps.wilcoxon(np.round(d - m, 12), alternative="less").pvalue
            p_inf = sps.wilcoxon(np.round(d + m, 12), alternative="less").pvalue
        else:  # an error metric: the direction flips, H1 d < m
            assert r.direction == "lower"
            p_ni = sps.wilcoxon(np.round(d - m, 12), alternative="less").pvalue
            p_up = sps.wilcoxon(np.round(d + m, 12), alternative="greater").pvalue
            p_inf = sps.wilcoxon(np.round(d - m, 12), alternative="greater").pvalue
        assert r.p_noninferiority == pytest.approx(p_ni, rel=1e-9, abs=1e-12)
        assert r.p_equivalence == pytest.approx(max(p_ni, p_up), rel=1e-9, abs=1e-12)
        assert r.p_inferiority == pytest.approx(p_inf, rel=1e-9, abs=1e-12)
        assert r.n == n and r.reference == "original" and r.margin == m
    np.testing.assert_allclose(table["p_adjusted"], adjust_pvalues(table["p_noninferiority"]))
    np.testing.assert_allclose(
        table["p_equivalence_adjusted"], adjust_pvalues(table["p_equivalence"])
    )


def test_estimate_is_the_pseudomedian_with_its_bootstrap_ci_at_the_tost_level():
    rng = np.random.default_rng(3)
    d = rng.normal(-0.005, 0.02, 40)
    df = two_conditions(d)
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=400, seed=7, alpha=0.05).iloc[0]
    exact = _diffs(df, "linear_x2", "dice")
    assert row["estimate"] == pytest.approx(_pseudomedian(exact))
    lo, hi = _bootstrap_pseudomedian(exact, 400, 7, level=0.90)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    lo95, hi95 = _bootstrap_pseudomedian(exact, 400, 7)  # the two-sided tests' 95%
    assert lo95 <= lo and hi <= hi95 and row["ci_level"] == pytest.approx(0.9)


def test_a_difference_equal_to_the_margin_is_a_zero_not_float_noise():
    d = np.array([-0.02] * 4 + [0.01, -0.01, 0.015, 0.005, -0.005, 0.02])
    df = two_conditions(d).round(2)  # 0.78 - 0.80 + 0.02 is 1e-17 without rounding
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=0, n_resamples=10).iloc[0]
    shifted = np.round(_diffs(df, "linear_x2", "dice") + 0.02, 12)
    assert (shifted == 0).sum() == 4
    expected = sps.wilcoxon(shifted, alternative="greater").pvalue  # zeros dropped ('wilcox')
    assert row["p_noninferiority"] == pytest.approx(expected)


def test_small_noisy_sample_without_a_significant_difference_is_inconclusive_not_equivalent():
    # 9 scans, differences of up to 9 Dice points either way: the two-sided p is 0.82
    d = np.array([-0.09, 0.07, -0.05, 0.04, -0.03, 0.06, -0.08, 0.02, 0.01])
    df = two_conditions(d)
    two_sided = compare_conditions(df, "dice", n_boot=0)
    assert not two_sided["significant"].any()  # "no difference" is what a naive reading says
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=200).iloc[0]
    assert row["verdict"] == "inconclusive"
    assert row["p_equivalence"] > 0.05
    assert row["ci_low"] < -0.02 < row["ci_high"]  # the CI spans the margin
    assert "spans the margin" in row["note"]
    # and it says how many scans would settle it
    assert row["power_noninferiority"] < 0.8 and row["n_for_noninferiority"] > 9


def test_large_sample_within_the_margin_is_equivalent():
    d = np.random.default_rng(5).normal(0.002, 0.02, 400)
    row = compare_to_reference(two_conditions(d), {"dice": 0.02}, n_boot=200).iloc[0]
    assert row["verdict"] == "equivalent"
    assert -0.02 < row["ci_low"] < row["ci_high"] < 0.02


@pytest.mark.parametrize(
    ("shift", "metric", "margin", "verdict"),
    [
        (-0.06, "dice", 0.02, "inferior"),  # worse by more than the margin
        (0.06, "dice", 0.02, "non-inferior"),  # better by more than the margin: not equivalent
        (-3.0, "hd95_mm", 1.0, "non-inferior"),  # HD95 3 mm lower: better
        (3.0, "hd95_mm", 1.0, "inferior"),  # HD95 3 mm higher: worse
        (0.2, "hd95_mm", 1.0, "equivalent"),
    ],
)
def test_verdict_follows_the_metric_direction(shift, metric, margin, verdict):
    sd = 0.02 if metric == "dice" else 1.0
    d = np.random.default_rng(2).normal(shift, sd, 200)
    df = two_conditions(d, metric=metric)
    row = compare_to_reference(df, {metric: margin}, n_boot=100).iloc[0]
    assert row["verdict"] == verdict
    assert row["direction"] == ("higher" if metric == "dice" else "lower")


def test_verdicts_use_the_holm_adjusted_p_values():
    conds = ("original", "a_x2", "b_x2", "c_x2", "d_x2")
    df = paired_table(12, conditions=conds, shifts=(0, -0.01, -0.01, -0.01, -0.01), round_to=None)
    table = compare_to_reference(df, {"dice": 0.05}, n_boot=0, n_resamples=10)
    assert (table["p_adjusted"] >= table["p_noninferiority"]).all()
    assert table["correction"].iloc[0] == "holm over 4 rows"
    for r in table.itertuples():
        claimed = {"equivalent": r.p_equivalence_adjusted, "non-inferior": r.p_adjusted}
        if r.verdict in claimed:
            assert claimed[r.verdict] < 0.05


def test_margins_parse_and_refuse_what_has_no_better_direction():
    assert parse_margins(None) == DEFAULT_MARGINS == {"dice": 0.02}
    assert parse_margins(["none"]) == {}
    assert parse_margins(["dice=0.03", "hd95_mm=2"]) == {"dice": 0.03, "hd95_mm": 2.0}
    for bad in (["dice"], ["dice=-1"], ["dice=x"], ["gt_volume_ml=1"], ["rel_volume_diff=0.1"]):
        with pytest.raises(LesionresError, match="--margin"):
            parse_margins(bad)


def test_reference_and_margin_errors_name_the_problem():
    df = paired_table(10)
    with pytest.raises(LesionresError, match="--reference: no condition 'bogus'"):
        compare_to_reference(df, {"dice": 0.02}, reference="bogus")
    with pytest.raises(LesionresError, match="no column lesion_f1"):
        compare_to_reference(df, {"lesion_f1": 0.05})
    other = compare_to_reference(df, {"dice": 0.02}, reference="crude_x2", n_boot=0, n_resamples=10)
    assert set(other["condition"]) == {"original", "linear_x2"}
