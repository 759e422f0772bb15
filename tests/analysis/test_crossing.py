"""Tests of lesionres.analysis.crossing: the crossing resolution per method."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_tables import sweep

from lesionres.analysis.crossing import margin_crossing
from lesionres.analysis.noninferiority import (
    compare_to_reference,
)


def test_crossing_is_read_off_the_curve_and_the_largest_noninferior_level_from_the_tests():
    df = sweep({"2": -0.005, "3": -0.01, "4": -0.03})
    table = compare_to_reference(df, {"dice": 0.02}, n_boot=100, n_resamples=10)
    assert list(table["verdict"]) == ["equivalent", "equivalent", "inferior"]
    crossing = margin_crossing(df, table, n_boot=100)
    row = crossing.iloc[0]
    assert row["method"] == "linear" and row["largest_noninferior"] == "linear_x3"
    assert row["largest_noninferior_mm"] == pytest.approx(3.0)
    # -0.01 at 3 mm, -0.03 at 4 mm: the margin -0.02 is crossed half-way, at 3.5 mm
    assert row["crossing_mm"] == pytest.approx(3.5)
    assert row["crossing_low"] == pytest.approx(3.5) and row["crossing_high"] == pytest.approx(3.5)


def test_crossing_beyond_the_sweep_is_infinite_and_said():
    df = sweep({"2": 0.0, "3": -0.005})
    table = compare_to_reference(df, {"dice": 0.02}, n_boot=50, n_resamples=10)
    row = margin_crossing(df, table, n_boot=50).iloc[0]
    assert np.isinf(row["crossing_mm"]) and "within the margin" in row["note"]
    assert row["largest_noninferior"] == "linear_x3"
