"""Model-grid mapping: reorientation as nibabel does it, exact round trips, native shapes."""

import nibabel as nib
import numpy as np
import pytest
import torch

from lesionres.data.grid import GridMapping, ModelGrid, pad_or_crop, spacing_of

RAS = np.diag([1.0, 1.0, 1.0, 1.0])
LPS_OBLIQUE = np.array(
    [
        [-0.9 * np.cos(0.1), 0.0, 0.9 * np.sin(0.1), 90.0],
        [0.0, -0.9, 0.0, 100.0],
        [0.9 * np.sin(0.1), 0.0, 5.0 * np.cos(0.1), -50.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
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


def test_coarse_native_grid_averages_over_each_voxel_footprint():
    # 5 mm slices, a 1 mm model grid: a 2 mm lesion inside one slab, away from its centre
    mapping = GridMapping.plan(
        (4, 4, 6), np.diag([1.0, 1.0, 5.0, 1.0]), ModelGrid((1.0,) * 3, (4, 4, 30))
    )
    probability = torch.zeros(1, 4, 4, 30)
    probability[..., 10:12] = 1.0  # model slices 10, 11: inside native slice 2 (model 10-14)
    back = mapping.to_native(probability)[0].numpy()
    np.testing.assert_allclose(back[..., 2], 0.4, atol=1e-6)  # point sampling at 12 gave 0
    np.testing.assert_allclose(np.delete(back, 2, axis=2), 0.0, atol=1e-6)


def test_finer_native_grid_keeps_trilinear_interpolation():
    mapping = GridMapping.plan(
        (8, 8, 8), np.diag([0.5, 0.5, 0.5, 1.0]), ModelGrid((1.0,) * 3, (4, 4, 4))
    )
    volume = torch.rand(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.interpolate(
        volume[None], size=(8, 8, 8), mode="trilinear", align_corners=False
    )[0]
    torch.testing.assert_close(mapping.to_native(volume), expected)


@pytest.mark.parametrize(("mode", "centred"), [("nearest-exact", True), ("nearest", False)])
def test_label_resampling_is_centre_aligned(mode, centred):
    # 1.6 mm masks onto a 1 mm model grid: the lesions' centre of mass stays in place (mean
    # over random spheres, so single-voxel quantisation averages out); legacy nearest shifts it
    shape = (25, 25, 25)
    mapping = GridMapping.plan(
        shape, np.diag([1.6, 1.6, 1.6, 1.0]), ModelGrid((1.0,) * 3, (40, 40, 40))
    )
    assert mapping.model_shape == (40, 40, 40)
    voxels = np.stack(np.meshgrid(*[np.arange(25)] * 3, indexing="ij"), -1)
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(20):
        centre, radius = rng.uniform(8, 16, 3), rng.uniform(2, 5)
        mask = (((voxels - centre) ** 2).sum(-1) < radius**2).astype(np.float32)
        on_grid = mapping.to_model(torch.from_numpy(mask)[None], mode=mode)[0].numpy()
        native_mm = (np.array(np.nonzero(mask)).mean(axis=1) + 0.5) * 1.6  # from the FOV edge
        model_mm = np.array(np.nonzero(on_grid)).mean(axis=1) + 0.5
        errors.append(model_mm - native_mm)
    bias = np.abs(np.mean(errors, axis=0))  # in model voxels (1 mm)
    assert (bias < 0.1).all() if centred else (bias > 0.3).all()
