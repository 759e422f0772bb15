"""Inputs people have: ``.mha``, ``.mhd`` and ``.nrrd`` read like NIfTI, skipped files listed.

SimpleITK's geometry is LPS and its arrays are ``(z, y, x)``: a NIfTI converted by SimpleITK
must read back with nibabel's affine and voxel order, or every mask lands elsewhere.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from fakes import make_folder_tree, write_volume

from lesionres.cli import main
from lesionres.data.grid import ModelGrid
from lesionres.data.io import read_header, read_nifti
from lesionres.data.scans import ScanDataset, find_scans
from lesionres.results import read_rows

sitk.ProcessObject_SetGlobalWarningDisplay(False)  # ITK's notes on NIfTI header fields it drops


def _oblique_affine() -> np.ndarray:
    a = np.deg2rad(17)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, 1.0, 1.0]) @ rotation @ np.diag([0.9, 1.2, 3.0])  # LAS-ish
    affine[:3, 3] = (12.5, -40.0, 7.0)
    return affine


def _convert(nifti, suffix: str):
    """The NIfTI file written in another format by SimpleITK (as ITK tools would)."""
    target = nifti.with_name(nifti.name.replace(".nii.gz", suffix))
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(target))
    return target


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd"])
def test_itk_formats_read_with_nibabels_affine_and_voxel_order(tmp_path, suffix):
    data = np.random.default_rng(0).normal(size=(7, 6, 5)).astype(np.float32)
    nifti = write_volume(tmp_path / "scan.nii.gz", data, _oblique_affine())
    other = _convert(nifti, suffix)
    values, affine = read_nifti(other)
    np.testing.assert_array_equal(values, data)
    np.testing.assert_allclose(affine, nib.load(str(nifti)).affine, atol=1e-5)
    shape, header_affine = read_header(other)
    assert shape == (7, 6, 5)
    np.testing.assert_allclose(header_affine, affine)


def test_an_unreadable_itk_file_is_named(tmp_path):
    bad = tmp_path / "broken.mha"
    bad.write_text("not an image")
    with pytest.raises(Exception, match="broken.mha"):
        read_nifti(bad)


def test_predict_finds_itk_scans_and_lists_what_it_skips(tmp_path):
    data = np.random.default_rng(1).normal(size=(10, 12, 8)).astype(np.float32)
    nifti = write_volume(tmp_path / "scans" / "a.nii.gz", data, _oblique_affine())
    for name in ("b.mha", "c.mhd"):  # c.mhd: a header, its voxels in c.raw beside it
        sitk.WriteImage(sitk.ReadImage(str(nifti)), str(nifti.with_name(name)))
    (tmp_path / "scans" / "notes.txt").write_text("x")
    write_volume(tmp_path / "scans" / "a_mask.nii.gz", np.zeros((10, 12, 8), np.uint8))
    skipped: list = []
    entries = find_scans(tmp_path / "scans", skipped)
    assert [e.path.name for e in entries] == ["a.nii.gz", "b.mha", "c.mhd"]
    assert entries[1].output().name == "b_desc-lesion_mask.nii.gz"
    reasons = {path.name: reason for path, reason in skipped}
    assert set(reasons) == {"a_mask.nii.gz", "c.raw", "notes.txt"}
    assert "voxel data of c.mhd" in reasons["c.raw"] and "not an image" in reasons["notes.txt"]
    grid = ModelGrid((1.0, 1.0, 1.0), (16, 16, 16))
    items = ScanDataset(entries, grid)
    for item in (items[1], items[2]):  # the same model input as the NIfTI scan's
        np.testing.assert_allclose(item["image"], items[0]["image"], atol=1e-5)


def test_check_score_and_benchmark_read_an_mha_dataset(tmp_path, capsys):
    subjects = make_folder_tree(tmp_path / "nifti", n=2)
    root = tmp_path / "data"
    for subject in subjects:
        for part in ("image", "mask"):
            target = root / f"{part}s" / f"{subject['id']}.mha"
            target.parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.ReadImage(str(subject[part])), str(target))
    assert main(["check", str(root), "--dataset", "folder"]) == 0
    table = tmp_path / "results.csv"
    assert main(["score", str(root / "masks"), str(root), "--dataset", "folder",
                 "--out", str(table)]) == 0  # fmt: skip
    rows = read_rows(table)
    assert len(rows) == 2 and all(float(r["dice"]) == 1.0 for r in rows)
    assert main(["degrade", str(root), "--dataset", "folder", "--condition_preset", "none",
                 "--out", str(tmp_path / "degraded")]) == 0  # fmt: skip
    written = nib.load(str(tmp_path / "degraded" / "original" / "images" / "case001.nii.gz"))
    np.testing.assert_allclose(written.affine, nib.load(str(subjects[0]["image"])).affine)
    np.testing.assert_allclose(written.get_fdata(), nib.load(str(subjects[0]["image"])).get_fdata(),
                               atol=1e-6)  # fmt: skip
