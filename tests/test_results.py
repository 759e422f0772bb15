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


def test_rows_carry_the_scan_image_and_mask_paths():
    from lesionres.results import RESULT_COLUMNS, _scan_paths

    assert {"image_path", "mask_path"} <= set(RESULT_COLUMNS)
    record = SimpleNamespace(image="data/sub-1_T1w.nii.gz", mask="data/sub-1_mask.nii.gz")
    assert _scan_paths({"record": record}) == {
        "image_path": "data/sub-1_T1w.nii.gz",
        "mask_path": "data/sub-1_mask.nii.gz",
    }
    assert _scan_paths({"record": SimpleNamespace(image="x.nii", mask=None)})["mask_path"] == ""
    assert _scan_paths({}) == {"image_path": "", "mask_path": ""}
