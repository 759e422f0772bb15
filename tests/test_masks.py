"""The mask rules: :func:`read_mask` and the affine tolerance."""

import numpy as np
import pytest
from bad_inputs import mask_data
from fakes import truncate_file, write_volume

from lesionres.data.masks import DEFAULT_ATOL_MM, affine_difference, read_mask
from lesionres.errors import LesionresError


def test_read_mask_rules(tmp_path):
    path = write_volume(tmp_path / "m.nii.gz", mask_data(255))
    with pytest.raises(LesionresError, match=r"m\.nii\.gz: mask is not binary"):
        read_mask(path)
    mask, affine = read_mask(path, binarize="nonzero")
    assert mask.dtype == np.uint8 and mask.sum() == 64 and affine.shape == (4, 4)

    rounded, _ = read_mask(write_volume(tmp_path / "f.nii.gz", mask_data(0.9999999998, np.float64)))
    assert rounded.dtype == np.uint8 and set(np.unique(rounded)) == {0, 1} and rounded.sum() == 64

    probabilities = mask_data(0.8, np.float32) + np.float32(0.3)
    half, _ = read_mask(write_volume(tmp_path / "p.nii.gz", probabilities), binarize="half")
    assert half.sum() == 64  # 1.1 >= 0.55 > 0.3


def test_read_mask_rejects_truncated_and_nan(tmp_path):
    path = truncate_file(write_volume(tmp_path / "m.nii.gz", mask_data()))
    with pytest.raises(LesionresError, match="truncated file"):
        read_mask(path)
    nan = mask_data(1, np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(LesionresError, match="1 NaN"):
        read_mask(write_volume(tmp_path / "n.nii.gz", nan), binarize="nonzero")


def test_affine_tolerance_passes_isles_rounding_and_fails_another_grid():
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    rounded, moved = affine.copy(), affine.copy()
    rounded[0, 3] += 1e-7  # what ISLES image and mask affines differ by
    moved[0, 3] += 1e-3
    assert affine_difference(affine, affine) == 0
    assert affine_difference(affine, rounded) <= DEFAULT_ATOL_MM < affine_difference(affine, moved)
