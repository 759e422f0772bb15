"""Tests of lesionres.analysis.bootstrap: the count-vector bootstraps equal naive resampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
from analysis_tables import brute_pseudomedian

from lesionres.analysis import (
    compare_conditions,
)
from lesionres.analysis.bootstrap import _bootstrap_hodges_lehmann, _bootstrap_pseudomedian


def test_bootstrap_matches_naive_resampling():
    rng = np.random.default_rng(11)
    for n in (17, 16):  # odd (153) and even (136) numbers of Walsh averages, ties from rounding
        d = rng.normal(size=n).round(1)
        idx = np.random.default_rng(5).integers(0, n, size=(300, n))
        naive = np.percentile([brute_pseudomedian(d[k]) for k in idx], [2.5, 97.5])
        np.testing.assert_allclose(_bootstrap_pseudomedian(d, 300, 5), naive, atol=1e-12)
    a, b = rng.uniform(size=13).round(2), rng.uniform(size=9).round(2)
    r = np.random.default_rng(5)
    ia, ib = r.integers(0, 13, (300, 13)), r.integers(0, 9, (300, 9))
    meds = [np.median(np.subtract.outer(a[x], b[y])) for x, y in zip(ia, ib, strict=True)]
    ours = _bootstrap_hodges_lehmann(a, b, 300, 5)
    np.testing.assert_allclose(ours, np.percentile(meds, [2.5, 97.5]), atol=1e-12)


def test_bootstrap_ci_is_seeded(table):
    one = compare_conditions(table, n_boot=300, seed=1)
    again = compare_conditions(table, n_boot=300, seed=1)
    other = compare_conditions(table, n_boot=300, seed=2)
    pd.testing.assert_frame_equal(one, again)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    assert ((one["ci_low"] <= one["median_diff"]) & (one["median_diff"] <= one["ci_high"])).all()
