"""Model-grid mapping: reorientation as nibabel does it, exact round trips, native shapes."""

import nibabel as nib
import numpy as np
import pytest
import torch

from lesionres.data.grid import GridMapping, ModelGrid, pad_or_crop, spacing_of

RAS = np.diag([1.0, 1.0, 1.0, 1.0])
LPS_OBLIQUE = np.array(
    [[-0.9 * np.cos(0.1), 0.0, 0.9 * np.sin(0.1), 90.0],
     [0.0, -0.9, 0.0, 100.0],
     [0.9 * np.sin(0.1), 0.0, 5.0 * np.cos(0.1), -50.0],
     [0.0, 0.0, 0.0, 1.0]]
)
PERMUTED = np.array([[0, 0, 2.0, 0], [2.0, 0, 0, 0], [0, -2.0, 0, 0], [0, 0, 0, 1]])


@pytest.mark.parametrize("affine", [RAS, LPS_OBLIQUE, PERMUTED])
def test_to_model_reorients_like_nibabel_and_round_trips(affine):
    rng = np.random.default_rng(0)
    data = rng.random((11, 9, 7)).astype(np.float32)
    ras_spacing = tuple(np.array(spacing_of(affine))[np.argsort(nib.io_orientation(affine)[:, 0])])
    grid = ModelGrid(ras_spacing, (16, 16, 16))
    mapping = GridMapping.plan(data.shape, affine, grid)
    on_grid = mapping.to_model(torch.from_numpy(data)[None])
    expected = nib.orientations.apply_orientation(data, nib.io_orientation(affine))
    _, _, destination = pad_or_crop(torch.from_numpy(expected.copy()), grid.shape)
    assert on_grid.shape == (1, 16, 16, 16)
    np.testing.assert_array_equal(on_grid[0][destination].numpy(), expected)
    np.testing.assert_array_equal(mapping.to_native(on_grid)[0].numpy(), data)


def test_resampling_keeps_field_of_view_and_returns_native_shape():
    data = np.zeros((56, 56, 20), np.float32)
    data[20:36, 20:36, 8:12] = 1
    affine = np.diag([2.0, 2.0, 5.0, 1.0])
    mapping = GridMapping.plan(data.shape, affine, ModelGrid((1.0, 1.0, 1.0), (128, 128, 96)))
    assert mapping.model_shape == (112, 112, 100)
    back = mapping.to_native(mapping.to_model(torch.from_numpy(data)[None]))[0].numpy()
    assert back.shape == data.shape
    assert ((back >= 0.5) == (data > 0)).mean() > 0.99


def test_crop_fills_uncovered_native_voxels():
    data = torch.ones(1, 20, 8, 8)
    mapping = GridMapping.plan((20, 8, 8), RAS, ModelGrid((1.0, 1.0, 1.0), (16, 8, 8)))
    back = mapping.to_native(mapping.to_model(data), fill=0.0)
    assert back[0, 2:18].min() == 1 and back[0, :2].max() == 0 and back[0, 18:].max() == 0
