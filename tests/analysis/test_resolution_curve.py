"""Tests of the resolution curve figure (lesionres.analysis.resolution_curve)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import sweep

from lesionres.analysis import (
    plot_resolution_curve,
    resolution_table,
    synthetic_results,
)
from lesionres.analysis.crossing import margin_crossing
from lesionres.analysis.noninferiority import (
    compare_to_reference,
)


def test_resolution_curve_shows_the_margin_band_and_marks_the_crossing():
    from lesionres.analysis import plot_resolution_curve

    df = sweep({"2": -0.005, "3": -0.01, "4": -0.03})
    crossing = margin_crossing(df, compare_to_reference(df, n_boot=20, n_resamples=10), n_boot=20)
    fig = plot_resolution_curve(df, n_boot=20, margin=0.02, crossings=crossing)
    ax = fig.axes[0]
    limit = df.loc[df["condition"] == "original", "dice"].mean() - 0.02
    assert any(np.allclose(line.get_ydata(), limit) for line in ax.get_lines())  # the limit
    assert len(ax.patches) == 1  # the band (axhspan; the curve itself draws no patch)
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert diamonds and diamonds[0].get_xdata()[0] == pytest.approx(3.5)


def test_resolution_curve_uses_measured_effective_resolution_when_present():
    df = synthetic_results(n_subjects=8, n_other_cohort=4)
    assert (resolution_table(df)["effective"] == "").all()  # older tables: nominal only
    effective = {c: f"{2.1 * i + 1:.1f}" for i, c in enumerate(pd.unique(df["condition"]))}
    df = df.assign(effective_fwhm_mm=df["condition"].map(effective))
    res = resolution_table(df).set_index("condition")
    assert res.loc["linear_x3", "spacing"] == "3x3x3"  # nominal kept beside the measured
    assert res.loc["linear_x3", "effective"] == "x".join([effective["linear_x3"]] * 3)
    fig = plot_resolution_curve(df, n_boot=20)
    assert fig is not None and "effective resolution" in fig.axes[0].get_xlabel()
    # sampling limits resolution too: linear interpolation aliases with a narrow line spread
    narrow = df.assign(effective_fwhm_mm="1.0")
    res = resolution_table(narrow).set_index("condition")
    assert res.loc["linear_x3", "effective"] == "3x3x3"
    assert res.loc["linear_x2", "effective"] == "2x2x2"
