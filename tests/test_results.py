"""The results table's writer: the printed summary says how many scans each mean is over."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from lesionres.results import ResultsWriter


def test_printed_summary_says_over_how_many_scans_a_mean_runs(capsys):
    rows = [
        {"condition": "acq", "subject_id": f"s{i}", "error": "", "dice": 0.5 if i < 7 else 0.0,
         "precision": 0.5, "recall": 0.5, "lesion_f1": 0.5, "abs_volume_diff_ml": 1.0,
         "hd95_mm": 3.0 if i < 7 else math.nan, "pred_volume_ml": 1.0 if i < 7 else 0.0,
         "gt_volume_ml": 2.0}
        for i in range(9)
    ]  # fmt: skip
    writer = ResultsWriter()
    writer._target = Path("results.csv")
    writer._report(SimpleNamespace(logger=None), rows)
    out = capsys.readouterr().out
    assert "mean over 7 of 9 scans; 2 undefined (empty prediction)" in out
