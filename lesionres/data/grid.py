"""Map a scan between its own voxel grid and the model's grid, and back.

The model sees RAS-oriented volumes at a fixed voxel spacing, zero-padded or centre-cropped to
a fixed shape. A :class:`GridMapping` remembers every step taken for one scan so a prediction
made on the model grid returns to exactly the scan's shape and affine: reorientation is a
permutation/flip of voxel axes (an oblique affine keeps its obliqueness, as the voxels never
move in world space beyond resampling), resampling uses trilinear interpolation of the same
field of view (label maps: centre-aligned ``nearest-exact``), and padding/cropping is undone by
slicing. On the way back, an axis where the scan's voxels are coarser than the model's is
averaged over each native voxel's footprint (area averaging) instead of point-sampled: a 2 mm
lesion inside a 5 mm slice keeps its 0.4 share of the slice instead of vanishing between two
sample points; finer or equal axes are linearly interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["GridMapping", "ModelGrid", "pad_or_crop", "spacing_of"]


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each voxel axis of ``affine``."""
    return tuple(float(s) for s in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))


def _center_slices(size: int, target: int) -> tuple[slice, slice]:
    """Slices (source, destination) that centre-crop or centre-pad ``size`` into ``target``."""
    if size >= target:
        start = (size - target) // 2
        return slice(start, start + target), slice(0, target)
    start = (target - size) // 2
    return slice(0, size), slice(start, start + size)


def pad_or_crop(
    volume: torch.Tensor, shape: Sequence[int], value: float = 0.0
) -> tuple[torch.Tensor, tuple[slice, ...], tuple[slice, ...]]:
    """Centre-pad with ``value`` and/or centre-crop the last three axes of ``volume`` to ``shape``.

    Returns:
        The new tensor and the (source, destination) slices, which undo it:
        ``original[..., *source] == new[..., *destination]``.
    """
    pairs = [_center_slices(s, t) for s, t in zip(volume.shape[-3:], shape, strict=True)]
    source = tuple(p[0] for p in pairs)
    destination = tuple(p[1] for p in pairs)
    out = volume.new_full((*volume.shape[:-3], *shape), value)
    out[(..., *destination)] = volume[(..., *source)]
    return out, source, destination


@dataclass(frozen=True)
class ModelGrid:
    """The grid a model was trained on: voxel spacing (mm, RAS axes) and volume shape."""

    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    def to_dict(self) -> dict[str, list]:
        return {"spacing": list(self.spacing), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict) -> ModelGrid:
        return cls(tuple(float(s) for s in data["spacing"]), tuple(int(s) for s in data["shape"]))


@dataclass
class GridMapping:
    """How one scan was brought onto a :class:`ModelGrid`; :meth:`to_native` undoes it."""

    native_shape: tuple[int, int, int]
    orientation: np.ndarray  # nibabel ornt from native voxel axes to RAS axes
    resampled_shape: tuple[int, int, int]  # RAS-oriented shape before resampling
    model_shape: tuple[int, int, int]  # after resampling, before pad/crop
    grid_shape: tuple[int, int, int]
    source: tuple[slice, ...]
    destination: tuple[slice, ...]

    @classmethod
    def plan(cls, shape: Sequence[int], affine: np.ndarray, grid: ModelGrid) -> GridMapping:
        """Plan the mapping of a volume of ``shape`` with ``affine`` onto ``grid``."""
        ornt = nib.orientations.io_orientation(affine)
        to_ras = np.argsort(ornt[:, 0])  # native axis feeding each RAS axis
        ras_shape = tuple(int(shape[axis]) for axis in to_ras)
        ras_spacing = np.array(spacing_of(affine))[to_ras]
        if np.allclose(ras_spacing, grid.spacing, rtol=1e-3):
            model_shape = ras_shape
        else:
            model_shape = tuple(
                max(1, int(round(n * s / t)))
                for n, s, t in zip(ras_shape, ras_spacing, grid.spacing, strict=True)
            )
        pairs = [_center_slices(s, t) for s, t in zip(model_shape, grid.shape, strict=True)]
        return cls(
            tuple(int(s) for s in shape),
            ornt,
            ras_shape,
            model_shape,
            tuple(grid.shape),
            tuple(p[0] for p in pairs),
            tuple(p[1] for p in pairs),
        )

    def to_model(
        self, volume: torch.Tensor, mode: str = "trilinear", value: float = 0.0
    ) -> torch.Tensor:
        """Bring a ``(C, X, Y, Z)`` native volume onto the model grid.

        ``mode="nearest-exact"`` suits label maps (centre-aligned; torch's legacy
        ``"nearest"`` is off by up to half a voxel); padding uses ``value``.
        """
        volume = _resize(_reorient(volume, self.orientation), self.model_shape, mode)
        out = volume.new_full((*volume.shape[:-3], *self.grid_shape), value)
        out[(..., *self.destination)] = volume[(..., *self.source)]
        return out

    def to_native(self, volume: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Return a ``(C, X, Y, Z)`` model-grid volume (e.g. probabilities) to the native grid.

        Voxels the model grid cropped away get ``fill``. Along an axis where native voxels are
        coarser, each native voxel gets the mean over its footprint (anti-aliased); along the
        others, trilinear interpolation. Threshold probabilities only after this step.
        """
        out = volume.new_full((*volume.shape[:-3], *self.model_shape), fill)
        out[(..., *self.source)] = volume[(..., *self.destination)]
        out = _average_to(out, self.resampled_shape)
        identity = np.column_stack([np.arange(3), np.ones(3)])
        return _reorient(out, nib.orientations.ornt_transform(identity, self.orientation))


def _reorient(volume: torch.Tensor, ornt: np.ndarray) -> torch.Tensor:
    """``nibabel.orientations.apply_orientation`` on the last three axes of a torch tensor."""
    lead = volume.ndim - 3
    flips = [lead + axis for axis in range(3) if ornt[axis, 1] < 0]
    if flips:
        volume = volume.flip(flips)
    order = [lead + int(axis) for axis in np.argsort(ornt[:, 0])]
    return volume.permute(*range(lead), *order)


def _average_to(volume: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resample the last three axes to ``shape`` over the same field of view.

    Per axis of ``n`` voxels going to ``m``: native voxel ``i`` covers model voxels
    ``[i r, (i + 1) r]`` (``r = n / m``, torch's ``align_corners=False`` geometry). When
    ``r > 1`` it takes the mean over that footprint (a box of width ``r`` integrated over the
    model voxels); otherwise the linear interpolation at its centre.
    """
    from lesionres.transforms.functional import (  # shared with the acquisition model
        apply_along_axis,
        kernel_matrix,
        linear_interpolation_matrix,
    )

    if tuple(volume.shape[-3:]) == tuple(shape):
        return volume
    out = volume.float()
    for axis, (n, m) in enumerate(zip(volume.shape[-3:], shape, strict=True)):
        if n == m:
            continue
        ratio = n / m
        centres = (torch.arange(m, dtype=torch.float64) + 0.5) * ratio - 0.5
        if ratio > 1:
            matrix = kernel_matrix(n, centres, "box", ratio)
        else:
            matrix = linear_interpolation_matrix(n, centres)
        out = apply_along_axis(out, matrix, volume.ndim - 3 + axis)
    return out.contiguous().to(volume.dtype)


def _resize(volume: torch.Tensor, shape: Sequence[int], mode: str) -> torch.Tensor:
    if tuple(volume.shape[-3:]) == tuple(shape):
        return volume
    batch = volume.unsqueeze(0) if volume.ndim == 4 else volume
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    out = F.interpolate(batch.float(), size=tuple(shape), mode=mode, **kwargs).to(volume.dtype)
    return out[0] if volume.ndim == 4 else out
