"""Scans to predict: found under a folder, a file or a CSV, and prepared for the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import write_volume
from scan_trees import GRID, SCANS, scan_tree

from lesionres.data.scans import ScanDataset, find_scans
from lesionres.errors import LesionresError


def test_find_scans_skips_masks_derivatives_and_hidden_files(tmp_path):
    scan_tree(tmp_path)
    found = {str(entry.relative) for entry in find_scans(tmp_path)}
    # the scans' masks (written beside them as *_mask.nii*) and every SKIPPED file are left out
    assert found == {relative for relative, _, _ in SCANS.values()} | {"broken/sub-06_T1w.nii.gz"}


def test_find_scans_takes_one_file_or_a_csv(tmp_path):
    scans = scan_tree(tmp_path / "scans")
    single = find_scans(scans["clinical"]["image"])
    assert [(e.path, str(e.relative)) for e in single] == [
        (scans["clinical"]["image"], "sub-03_FLAIR.nii.gz")
    ]
    listing = tmp_path / "scans" / "list.csv"
    listing.write_text(
        f"image,note\nclinical/sub-03_FLAIR.nii.gz,x\n{scans['oblique']['image']},y\n"
    )
    entries = find_scans(listing)
    assert [str(e.relative) for e in entries] == ["clinical/sub-03_FLAIR.nii.gz", "sub-04.nii.gz"]
    assert entries[0].output() == Path("clinical/sub-03_FLAIR_desc-lesion_mask.nii.gz")


def test_find_scans_errors_name_the_problem(tmp_path):
    with pytest.raises(LesionresError, match="does not exist"):
        find_scans(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LesionresError, match="no scans found"):
        find_scans(tmp_path / "empty")
    (tmp_path / "bad.csv").write_text("path\na.nii.gz\n")
    with pytest.raises(LesionresError, match="'image' column"):
        find_scans(tmp_path / "bad.csv")
    write_volume(tmp_path / "twice" / "a.nii", np.zeros((2, 2, 2), np.float32))
    write_volume(tmp_path / "twice" / "a.nii.gz", np.zeros((2, 2, 2), np.float32))
    with pytest.raises(LesionresError, match="same output"):
        find_scans(tmp_path / "twice")


def test_scan_dataset_reports_unreadable_scans_and_zeroes_non_finite_voxels(tmp_path):
    image = np.ones((8, 8, 8), np.float32)
    image[0, 0, 0] = np.nan
    good = write_volume(tmp_path / "nan.nii.gz", image, np.diag([2.0, 2.0, 2.0, 1.0]))
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"<html>not found</html>")
    dataset = ScanDataset(find_scans(tmp_path), GRID)
    items = {item["entry"].path.name: item for item in dataset}
    assert "error" in items["bad.nii.gz"] and "image" not in items["bad.nii.gz"]
    assert items[good.name]["warnings"] == ["1 non-finite voxels set to 0"]
    image = items[good.name]["image"]
    assert torch.isfinite(image).all() and image.shape == (1, 32, 32, 32)
