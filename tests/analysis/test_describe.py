"""Tests of lesionres.analysis.describe: summaries, coverage notes, strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lesionres.analysis import (
    coverage_notes,
    stratify,
    summarize,
)
from lesionres.errors import LesionresError


def test_summarize_is_nan_aware(table):
    df = table.copy()
    idx = df.index[df.condition == "original"]
    df.loc[idx[:2], "dice"] = np.nan
    df.loc[idx[2], "hd95_mm"] = np.inf
    df.loc[idx[3], "error"] = "failed"
    s = summarize(df, ["dice", "hd95_mm"]).set_index(["condition", "metric"])
    assert list(s.columns[:6]) == ["n", "mean", "std", "min", "max", "median"]
    row = s.loc[("original", "dice")]
    assert row["n"] == 27 and row["n_missing"] == 2 and row["n_failed"] == 1
    v = df.loc[idx[2:3].append(idx[4:]), "dice"]  # NaN and failed rows out, inf hd95 row in
    assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
    assert s.loc[("original", "hd95_mm"), "n"] == 28  # one failed row, one inf
    assert summarize(table.assign(model="m")).columns[0] == "model"


def test_stratify_uses_the_ground_truth(table):
    s = stratify(table, "dice", by="gt_volume_ml")
    assert set(s["stratum"]) <= {"<1 ml", "1-5 ml", "5-20 ml", ">=20 ml"}
    orig = s[s.condition == "original"]
    assert orig["n"].sum() == 30
    vol = table[table.condition == "original"]["gt_volume_ml"]
    assert orig.set_index("stratum").loc["<1 ml", "n"] == int((vol < 1).sum())
    counts = stratify(table, "dice", by="gt_lesions")
    assert list(counts[counts.condition == "original"]["stratum"]) == ["1", "2-3", "4+"]
    terts = stratify(table, "dice", bins="tertiles")
    assert terts["stratum"].str.startswith(("low", "middle", "high")).all()
    bad = table.copy()
    bad.loc[bad.index[bad.condition == "crude_x2"][0], "gt_volume_ml"] = 999.0
    with pytest.raises(LesionresError, match="identical under every condition"):
        stratify(bad)


def test_coverage_notes_read_a_results_csv_as_strings():
    # lesionres.results keeps rows as the CSV's strings ("" for an undefined value)
    rows = [
        {"subject_id": f"s{i}", "condition": "acq_6mm", "hd95_mm": "" if i < 2 else "4.5",
         "pred_volume_ml": "0.0" if i < 2 else "3.1", "gt_volume_ml": "2.0", "error": ""}
        for i in range(9)
    ] + [{"subject_id": "s9", "condition": "acq_6mm", "hd95_mm": "", "error": "OOM"}]  # fmt: skip
    summary = summarize(pd.DataFrame(rows), ["hd95_mm"])
    assert coverage_notes(summary, {"hd95_mm": "HD95 mm"}) == [
        "acq_6mm, HD95 mm: mean over 7 of 9 scans; 2 undefined (empty prediction)"
    ]
