"""``lesionres score``: dataset labels, every ground truth a row, settings kept, paired analysis.

The end-to-end case is the one a reviewer checks: two tools' masks scored on the same ground
truth into one table must be compared with the paired Wilcoxon test over every scan.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fakes import affine_for, make_atlas_tree, make_folder_tree, write_volume
from scipy import ndimage

from lesionres.analysis import compare_models, load_results
from lesionres.cli import main
from lesionres.results import read_rows


def _predictions(subjects, out, dilate: int, skip=()):
    """Masks of a fake tool: the truth dilated (``dilate`` > 0) or eroded, named like nnU-Net's."""
    for subject in subjects:
        if subject["id"] in skip:
            continue
        truth = np.asarray(__import__("nibabel").load(subject["mask"]).dataobj) > 0
        op = ndimage.binary_dilation if dilate > 0 else ndimage.binary_erosion
        mask = op(truth, iterations=abs(dilate)) if dilate else truth
        write_volume(out / f"{subject['id']}.nii.gz", mask.astype(np.uint8), affine_for())
    return out


def _score(pred, gt, table, *extra):
    return main(["score", str(pred), str(gt), "--out", str(table), *extra])


def test_score_labels_the_dataset_like_test(tmp_path):
    subjects = make_atlas_tree(tmp_path / "atlas", n=3)
    pred = _predictions(subjects, tmp_path / "pred", 1)
    table = tmp_path / "results.csv"
    assert _score(pred, tmp_path / "atlas", table, "--dataset", "atlas") == 0
    rows = read_rows(table)
    assert {r["dataset"] for r in rows} == {"atlas"}  # was "" (another cohort to analyze)
    assert {r["modality"] for r in rows} == {"T1w"}
    assert {r["space"] for r in rows} == {"MNI152NLin2009aSym"}
    assert sorted(r["subject_id"] for r in rows) == sorted(s["id"] for s in subjects)


def test_every_ground_truth_gets_a_row(tmp_path, capsys):
    subjects = make_folder_tree(tmp_path / "data", n=5)
    missing = {subjects[1]["id"], subjects[3]["id"]}
    pred = _predictions(subjects, tmp_path / "pred", 1, skip=missing)
    write_volume(pred / "stranger.nii.gz", np.zeros((16, 16, 16), np.uint8), affine_for())
    table = tmp_path / "results.csv"
    _score(pred, tmp_path / "data", table, "--dataset", "folder")
    out = capsys.readouterr().out
    rows = {r["subject_id"]: r for r in read_rows(table)}
    assert len(rows) == 5  # was 3: the scans without prediction were dropped
    assert {s for s, r in rows.items() if r["error"] == "no prediction"} == missing
    assert "2 ground truth(s) have no prediction" in out
    assert "stranger.nii.gz" in out and "match no ground truth" in out

    empty = tmp_path / "empty.csv"
    _score(pred, tmp_path / "data", empty, "--dataset", "folder", "--missing", "empty")
    rows = {r["subject_id"]: r for r in read_rows(empty)}
    assert all(not rows[s]["error"] and float(rows[s]["dice"]) == 0.0 for s in missing)
    assert float(rows[subjects[0]["id"]]["dice"]) > 0.5


def test_two_predictions_for_one_scan_are_an_error_row_not_a_stop(tmp_path):
    subjects = make_folder_tree(tmp_path / "data", n=3)
    pred = _predictions(subjects, tmp_path / "pred", 0)
    sub = pred / "again"
    _predictions(subjects[:1], sub, 1)
    table = tmp_path / "results.csv"
    _score(pred, tmp_path / "data", table, "--dataset", "folder")
    rows = {r["subject_id"]: r for r in read_rows(table)}
    assert rows[subjects[0]["id"]]["error"].startswith("2 predictions")
    assert not rows[subjects[1]["id"]]["error"]


def test_settings_are_recorded_and_a_mixed_rerun_stops(tmp_path, capsys):
    subjects = make_folder_tree(tmp_path / "data", n=2)
    pred = _predictions(subjects, tmp_path / "pred", 1)
    table = tmp_path / "results.csv"
    _score(pred, tmp_path / "data", table, "--dataset", "folder", "--model", "a")
    settings = json.loads(table.with_suffix(".json").read_text())
    assert settings["conventions"]["hd95"] == "pooled"
    assert settings["conventions"]["connectivity"] == 26
    assert "6-neighbour" in settings["conventions"]["surface"]
    assert settings["models"]["a"]["threshold"] == 0.5
    with pytest.raises(SystemExit) as stop:
        _score(pred, tmp_path / "data", table, "--dataset", "folder", "--hd95", "max")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "hd95" in err and "'pooled'" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        _score(
            pred, tmp_path / "data", table, "--dataset", "folder", "--model", "a",
            "--threshold", "0.3",
        )  # fmt: skip
    assert "threshold of model 'a'" in capsys.readouterr().err


@pytest.mark.parametrize("labelled", [True, False])
def test_two_tools_on_the_same_scans_are_compared_paired(tmp_path, labelled):
    subjects = make_folder_tree(tmp_path / "data", n=8, seed=3)
    table = tmp_path / "results.csv"
    gt = ["data", "--dataset", "folder"] if labelled else ["data/masks"]
    for model, dilate in (("A", 0), ("B", 2)):
        pred = _predictions(subjects, tmp_path / f"pred-{model}", dilate)
        _score(pred, tmp_path / gt[0], table, *gt[1:], "--model", model, "--condition", "orig")
    df = load_results(table)  # pandas 3 reads empty label cells as missing: must not crash
    comparison = compare_models(df, "dice")
    assert list(comparison["test"]) == ["Wilcoxon signed-rank"]
    assert int(comparison["n_pairs"].iloc[0]) == 8
    assert main(["analyze", str(table), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "6-neighbour (face) element" in report and "pooled (medpy)" in report
    assert "A: threshold 0.5, masks of another tool" in report


def test_analyze_refuses_same_subjects_under_two_dataset_labels(tmp_path, capsys):
    subjects = make_folder_tree(tmp_path / "data", n=6, seed=1)
    table = tmp_path / "results.csv"
    pred = _predictions(subjects, tmp_path / "pred", 1)
    _score(pred, tmp_path / "data", table, "--dataset", "folder", "--model", "A")
    _score(pred, tmp_path / "data" / "masks", table, "--model", "B")  # no dataset label
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(table), "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert "dataset labels" in err and "--match" in err
    assert main(["analyze", str(table), "--out", str(tmp_path / "r2"), "--match", "subject"]) == 0
    comparison = pd.read_csv(tmp_path / "r2" / "model_comparisons.csv")
    assert set(comparison["test"]) == {"Wilcoxon signed-rank"}
