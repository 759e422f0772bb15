"""NIfTI reading and writing: named errors for bad files, 4D squeeze, atomic writes."""

import nibabel as nib
import numpy as np
import pytest
from fakes import affine_for, truncate_file, write_volume

from lesionres.data import io
from lesionres.data.io import NiftiError, load_volume, read_nifti, save_volume
from lesionres.errors import LesionresError


@pytest.fixture
def volume(tmp_path):
    data = np.random.default_rng(0).normal(size=(12, 10, 8)).astype(np.float32)
    return write_volume(tmp_path / "scan.nii.gz", data, affine_for((1.0, 1.0, 2.0))), data


def test_load_volume_reads_data_and_affine(volume):
    path, data = volume
    loaded, affine = load_volume(path)
    assert loaded.dtype == np.float32 and loaded.shape == (12, 10, 8)
    np.testing.assert_array_equal(loaded, data)
    np.testing.assert_allclose(affine, affine_for((1.0, 1.0, 2.0)))


@pytest.mark.parametrize("keep", [0.5, 0.02])  # cut in the voxel data / in the header
def test_truncated_gzip_names_the_file(volume, keep):
    path, _ = volume
    truncate_file(path, keep)
    with pytest.raises(LesionresError, match="truncated file") as info:
        load_volume(path)
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, NiftiError) and info.value.path == path


def test_truncated_uncompressed_nifti(tmp_path):
    path = write_volume(tmp_path / "scan.nii", np.ones((8, 8, 8), np.float32))
    truncate_file(path)
    with pytest.raises(LesionresError, match="truncated file"):
        load_volume(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty file"), (b"<html>404 Not Found</html>", "not a gzip file")],
)
def test_broken_downloads_are_explained(tmp_path, content, expected):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(content)
    with pytest.raises(NiftiError, match=expected):
        load_volume(path)


def test_missing_file(tmp_path):
    with pytest.raises(NiftiError, match="does not exist"):
        load_volume(tmp_path / "nope.nii.gz")


def test_4d_with_one_volume_is_squeezed(tmp_path):
    path = write_volume(tmp_path / "scan.nii.gz", np.ones((6, 5, 4, 1), np.float32))
    data, _ = load_volume(path)
    assert data.shape == (6, 5, 4)


def test_4d_with_two_volumes_is_an_error(tmp_path):
    path = write_volume(tmp_path / "scan.nii.gz", np.ones((6, 5, 4, 2), np.float32))
    with pytest.raises(NiftiError, match="2 volumes") as info:
        load_volume(path)
    assert str(path) in str(info.value)


def test_read_nifti_keeps_the_stored_dtype(tmp_path):
    path = write_volume(tmp_path / "mask.nii.gz", np.full((4, 4, 4), 0.9999999998))
    data, _ = read_nifti(path, dtype=None)
    assert data.dtype == np.float64 and data.flat[0] == 0.9999999998


def test_save_volume_round_trip_and_no_temp_files(tmp_path):
    target = tmp_path / "out" / "pred.nii.gz"
    save_volume(target, np.eye(4, dtype=bool)[:, :, None].repeat(3, 2), affine_for())
    save_volume(tmp_path / "out" / "prob.nii.gz", np.full((4, 4, 3), 0.25), affine_for())
    assert sorted(p.name for p in target.parent.iterdir()) == ["pred.nii.gz", "prob.nii.gz"]
    assert nib.load(target).get_data_dtype() == np.uint8
    prob = nib.load(tmp_path / "out" / "prob.nii.gz")
    assert prob.get_data_dtype() == np.float32 and prob.header.get_xyzt_units()[0] == "mm"


def test_save_volume_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = save_volume(tmp_path / "pred.nii.gz", np.zeros((4, 4, 4), np.uint8), affine_for())
    before = target.read_bytes()

    def half_written(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(io.nib, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        save_volume(target, np.ones((4, 4, 4), np.uint8), affine_for())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pred.nii.gz"]
