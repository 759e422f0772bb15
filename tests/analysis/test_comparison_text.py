"""Tests of the report's comparison sections (lesionres.analysis.comparison_text)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from analysis_tables import paired_table, table_csv

from lesionres.analysis import (
    analyze,
)


def test_model_verdict_follows_the_test_not_the_mean(tmp_path):
    # b is better on 34 of 40 scans (by about 0.02) and far worse on 6 (by 0.45): the mean says
    # a is higher by 0.05, the signed-rank test (median and r) says b is higher
    a = paired_table(40, round_to=None, conditions=("original",), shifts=(0.0,)).assign(model="a")
    b = a.assign(model="b")
    better = 0.02 + np.linspace(-0.004, 0.004, 34)  # distinct: no ties
    b["dice"] = a["dice"].to_numpy() + np.r_[better, -0.45 - np.linspace(0, 0.01, 6)]
    csv = table_csv(tmp_path, pd.concat([a, b]))
    report = analyze(csv, tmp_path / "out", n_boot=500, make_figures=False)
    mc = pd.read_csv(tmp_path / "out" / "model_comparisons.csv").iloc[0]
    assert mc["mean_diff"] > 0.04 and mc["median_diff"] < 0 and mc["effect_size"] < -0.4
    assert mc["significant"] and mc["ci_high"] < 0
    text = report.read_text()
    section = text[text.index("## Models compared") : text.index("## Pairwise comparisons")]
    verdict = next(line for line in section.splitlines() if line.startswith("- `original`"))
    assert "**b higher than a**" in verdict and "a higher than b" not in verdict
    assert re.search(r"Hodges-Lehmann a - b = -0\.0(19|2)", verdict)
    assert "the mean difference points the other way (a - b = +0.05" in verdict
    # the same scans as two conditions of one model: the comparisons section says it too
    conds = pd.concat([a, b.assign(condition="crude_x2", method="crude")]).drop(columns="model")
    text = analyze(table_csv(tmp_path, conds), tmp_path / "c", n_boot=0, make_figures=False)
    care = text.read_text().split("Rows to read with care:")[1]
    assert "the test finds `crude_x2` higher; the mean difference points the other way" in care
