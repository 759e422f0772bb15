"""Tests of lesionres.analysis.resolution_axis: each condition's resolution."""

from __future__ import annotations

import numpy as np
import pytest

from lesionres.analysis import (
    parse_resolution,
    plot_resolution_curve,
    resolution_table,
    synthetic_results,
)
from lesionres.errors import LesionresError


def test_resolution_parsing_and_sweep_detection():
    assert parse_resolution("2") == (2.0, 2.0, 2.0)
    assert parse_resolution("1x1x5") == (1.0, 1.0, 5.0)
    assert parse_resolution("1x1x5mm") == (1.0, 1.0, 5.0)
    assert parse_resolution("") is None and parse_resolution(np.nan) is None
    with pytest.raises(LesionresError):
        parse_resolution("2x2")
    df = synthetic_results(n_subjects=8, n_other_cohort=4)
    res = resolution_table(df).set_index("condition")
    assert res.loc["linear_x3", "voxel_volume_mm3"] == 27 and res.loc["original", "is_reference"]
    only_x2 = df[df.condition.isin(["original", "crude_x2", "linear_x2"])]
    assert plot_resolution_curve(only_x2) is None  # no method at two resolutions
    no_spacing = df.assign(spacing_mm="")
    tab = resolution_table(no_spacing).set_index("condition")
    assert tab.loc["linear_x2", "voxel_volume_mm3"] == 8 and tab.loc["linear_x2", "assumed_source"]
