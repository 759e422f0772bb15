"""Tests of lesionres.analysis.sample_size: resampled power and scans needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import paired_table, with_other_cohort
from scipy import stats as sps

from lesionres.analysis import (
    compare_conditions,
    compare_models,
)
from lesionres.analysis.sample_size import (
    _signed_rank_pvalues,
    resampled_power,
    scans_for_comparisons,
    scans_needed,
)


def test_resampled_p_values_equal_scipys_normal_approximation_on_the_resamples():
    rng = np.random.default_rng(0)
    x = rng.normal(0.01, 0.03, 15).round(2)  # ties (also between +v and -v) and zeros
    x[:2] = 0.0
    counts = rng.integers(0, 4, size=(6, x.size))
    for alternative in ("two-sided", "greater", "less"):
        ours = _signed_rank_pvalues(x, counts, alternative)
        for row, p in zip(counts, ours, strict=True):
            sample = np.repeat(x, row)
            ref = sps.wilcoxon(sample, alternative=alternative, method="asymptotic")
            assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_scans_needed_is_the_first_grid_size_with_80_percent_power():
    d = np.random.default_rng(4).normal(-0.005, 0.03, 9) + 0.02  # shifted for non-inferiority
    n = scans_needed(d, "greater", n_resamples=300, seed=0)
    grid = (5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100)
    assert 9 < n < 1000
    power = resampled_power(d, int(n), "greater", n_resamples=300, seed=0)
    assert power >= 0.8
    previous = max(g for g in grid if g < n) if n > 5 else None
    if previous:
        assert resampled_power(d, previous, "greater", n_resamples=300, seed=0) < 0.8
    assert np.isnan(scans_needed(np.zeros(9), "two-sided"))  # nothing to detect


def test_every_paired_comparison_gets_its_sample_size_and_unpaired_ones_none():
    df = with_other_cohort(paired_table(12))
    comp = compare_conditions(df, "dice", n_boot=0)
    sizes = scans_for_comparisons(df, comp, "dice", n_resamples=100)
    for r, n in zip(comp.itertuples(), sizes, strict=True):
        if r.design == "unpaired":
            assert np.isnan(n)
            continue
        wide = df.pivot(index="subject_id", columns="condition", values="dice")
        d = (wide[r.condition_a] - wide[r.condition_b]).dropna().to_numpy()
        expected = scans_needed(np.round(d, 12), "two-sided", n_resamples=100)
        assert n == expected or (np.isnan(n) and np.isnan(expected))
    models = pd.concat([paired_table(12).assign(model=m) for m in ("a", "b")])
    models.loc[models["model"] == "b", "dice"] += 0.03
    mc = compare_models(models, "dice", n_boot=0)
    assert (scans_for_comparisons(models, mc, "dice", n_resamples=100) == 5).all()
