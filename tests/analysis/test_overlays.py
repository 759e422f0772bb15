"""Tests of lesionres.analysis.overlays: finding example scans and drawing them."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_tables import paired_table, write_nifti

from lesionres.analysis import (
    find_prediction_examples,
    overlay_figure,
)
from lesionres.errors import LesionresError


def test_overlay_finds_lesionres_test_output_and_atlas_ground_truth(tmp_path):
    """Predictions as ``lesionres test`` writes them; ground truth in an ATLAS-layout dataset."""
    df = paired_table(3, conditions=("original", "linear_x2"), shifts=(0, 0), prefix="sub-r001s00")
    sid = df.subject_id.iloc[0]
    gt = np.zeros((16, 18, 12), np.uint8)
    gt[6:10, 7:11, 4:8] = 1
    anat = tmp_path / "ATLAS_2" / "Training" / "R001" / sid / "ses-1" / "anat"
    stem = f"{sid}_ses-1_space-MNI152NLin2009aSym"
    write_nifti(anat / f"{stem}_T1w.nii.gz", gt.astype(np.float32) * -30 + 100)
    write_nifti(anat / f"{stem}_label-L_desc-T1lesion_mask.nii.gz", gt)
    preds = tmp_path / "run" / "predictions"
    for cond in ("original", "linear_x2"):
        write_nifti(preds / cond / f"{sid}_desc-lesion_mask.nii.gz", gt)
        write_nifti(preds / cond / f"{sid}_desc-lesion_probseg.nii.gz", gt.astype(np.float32))
    assert find_prediction_examples(preds, df) == []  # no ground truth beside the predictions
    (ex,) = find_prediction_examples(preds, df, data_root=tmp_path / "ATLAS_2")
    assert ex["gt"].name.endswith("T1lesion_mask.nii.gz")
    assert ex["image"].name.endswith("_T1w.nii.gz")
    assert {k: v.name for k, v in ex["preds"].items()} == {
        c: f"{sid}_desc-lesion_mask.nii.gz" for c in ("original", "linear_x2")
    }


def test_overlay_figure_and_discovery(predictions, tmp_path):
    df, root = predictions
    examples = find_prediction_examples(root, df)
    assert len(examples) == 1 and set(examples[0]["preds"]) == {"original", "crude_x2"}
    ex = examples[0]
    fig = overlay_figure(ex["image"], ex["gt"], ex["preds"], out=tmp_path / "ov")
    assert (tmp_path / "ov.png").exists() and (tmp_path / "ov.pdf").exists()
    titles = [ax.get_title() for ax in fig.axes]
    assert any("Dice 1.000" in t for t in titles)
    bad = root / "bad_pred.nii.gz"
    write_nifti(bad, np.zeros((5, 5, 5), np.uint8))
    with pytest.raises(LesionresError, match="grid"):
        overlay_figure(None, ex["gt"], {"x": bad})
    with pytest.raises(LesionresError, match="does not exist"):
        find_prediction_examples(tmp_path / "nope", df)


def test_overlay_reads_the_rows_mask_and_image_paths(tmp_path):
    """Ground truth with any name is found when the rows carry its path (no name pattern)."""
    df = paired_table(3, conditions=("original", "linear_x2"), shifts=(0, 0))
    sid = df.subject_id.iloc[0]
    gt = np.zeros((16, 18, 12), np.uint8)
    gt[6:10, 7:11, 4:8] = 1
    write_nifti(tmp_path / "elsewhere" / "truth.nii.gz", gt)
    write_nifti(tmp_path / "elsewhere" / "scan.nii.gz", gt.astype(np.float32))
    df["mask_path"] = np.where(
        df.subject_id == sid, str(tmp_path / "elsewhere" / "truth.nii.gz"), ""
    )
    df["image_path"] = np.where(
        df.subject_id == sid, str(tmp_path / "elsewhere" / "scan.nii.gz"), ""
    )
    preds = tmp_path / "predictions"
    for cond in ("original", "linear_x2"):
        write_nifti(preds / cond / f"{sid}_desc-lesion_mask.nii.gz", gt)
    (ex,) = find_prediction_examples(preds, df)
    assert ex["gt"].name == "truth.nii.gz" and ex["image"].name == "scan.nii.gz"
