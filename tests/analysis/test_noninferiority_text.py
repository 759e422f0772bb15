"""Tests of the report's margin section (lesionres.analysis.noninferiority_text)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import ISSUE_COLUMNS, sweep, two_conditions, with_other_cohort

from lesionres.analysis import (
    analyze,
)


def test_analyze_writes_the_margin_table_and_report_section(tmp_path):
    csv = tmp_path / "results.csv"
    with_other_cohort(sweep({"2": -0.005, "3": -0.01, "4": -0.03})).to_csv(csv, index=False)
    report = analyze(csv, tmp_path / "out", n_boot=50).read_text()
    table = pd.read_csv(tmp_path / "out" / "noninferiority.csv")
    assert list(table.columns[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS
    assert list(table["verdict"]) == ["equivalent", "equivalent", "inferior"]
    assert (tmp_path / "out" / "crossing.csv").exists()
    assert "Non-inferiority and equivalence against `original`" in report
    assert "Dice 0.02** (the default" in report
    assert "**inconclusive**: none of these can be shown" in report
    assert "non-inferior up to **linear_x3** (3 mm)" in report
    assert "crosses the margin at 3.5 mm" in report
    assert "`isles22`: other scans" in report
    assert "Non-inferiority and equivalence to the reference condition" in report  # methods


def test_report_tells_a_user_with_9_scans_how_many_would_settle_it(tmp_path):
    d = np.array([-0.09, 0.07, -0.05, 0.04, -0.03, 0.06, -0.08, 0.02, 0.01])
    csv = tmp_path / "results.csv"
    two_conditions(d).to_csv(csv, index=False)
    report = analyze(csv, tmp_path / "out", n_boot=100, make_figures=False).read_text()
    row = pd.read_csv(tmp_path / "out" / "noninferiority.csv").iloc[0]
    assert row["verdict"] == "inconclusive" and 9 < row["n_for_noninferiority"] <= 1000
    assert "inconclusive with 9 scans (power to show non-inferiority now about" in report
    assert f"about {int(row['n_for_noninferiority'])} scans would give 80%" in report


def test_a_row_left_open_by_the_correction_says_so(tmp_path):
    # 6 scans all inside the margin: one-sided p = 1/64 each, 4 x 1/64 > 0.05 after Holm
    d = np.array([0.0, 0.005, -0.005, 0.01, 0.002, -0.003])
    base = np.linspace(0.4, 0.7, 6)
    ids = [f"sub-{i}" for i in range(6)]
    conds = ("original", "a_x2", "b_x2", "c_x2", "d_x2")
    df = pd.concat(
        [pd.DataFrame({"subject_id": ids, "condition": c, "dice": base + (d if k else 0)})
         for k, c in enumerate(conds)]
    )  # fmt: skip
    df.to_csv(tmp_path / "r.csv", index=False)
    report = analyze(tmp_path / "r.csv", tmp_path / "out", n_boot=50, make_figures=False)
    table = pd.read_csv(tmp_path / "out" / "noninferiority.csv")
    assert table["p_noninferiority"].to_numpy() == pytest.approx([1 / 64] * 4)
    assert (table["verdict"] == "inconclusive").all()
    assert (
        "non-inferior at alpha before the correction (one-sided p = 0.0156), not after it "
        "over 4 rows" in report.read_text()
    )
