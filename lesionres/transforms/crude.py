"""The reference study's "crude" reduction: keep every Nth voxel, repeat it N times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lesionres.transforms import functional
from lesionres.transforms._base import DegradationTransform, parse_factor

__all__ = ["CrudeDegradation"]


class CrudeDegradation(DegradationTransform):
    """Keep voxels ``0, N, 2N, ...`` along each axis, repeat each N times, crop to the shape.

    Exactly ``a[::n0, ::n1, ::n2]`` followed by ``np.repeat(..., n, axis)`` per axis and a crop
    to the original shape (``ceil(size / N) * N >= size``, so the repeated volume is never short
    and no padding is needed). This is nearest-neighbour down and nearest-neighbour up, with no
    blur: it aliases. The values are copied, never interpolated, so any dtype works unchanged
    and label maps (``include_mask=True``) go through the very same operation.

    Grid shift: the kept voxel ``kN`` covers voxels ``kN .. kN + N - 1``, whose centre is
    ``kN + (N - 1) / 2``. The image content therefore moves by ``(N - 1) / 2`` voxels towards
    higher indices relative to the grid, and relative to the untouched ground-truth mask
    (half a voxel for N = 2). That voxel-centre sampling offset, not only the lost resolution,
    is part of why the study saw surprising numbers for this condition.

    Args:
        factor: Whole reduction factor, one for all axes or one per axis (1 = axis unchanged).
        include_mask: Degrade label maps too (default: only intensity images).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ...).

    Raises:
        ValueError: If a factor is below 1, not whole, or not one/three numbers.

    Example:
        >>> import torch, torchio as tio
        >>> subject = tio.Subject(t1=tio.ScalarImage(tensor=torch.rand(1, 9, 9, 9)))
        >>> CrudeDegradation(2)(subject).t1.shape
        (1, 9, 9, 9)
    """

    def __init__(self, factor: int | Sequence[int], include_mask: bool = False, **kwargs) -> None:
        super().__init__(include_mask=include_mask, **kwargs)
        # Whole numbers were checked; the ints make repr and history read as the study's N.
        self.factor = tuple(int(f) for f in parse_factor(factor, integer=True))
        self.args_names = ["factor", "include_mask"]

    def degrade(self, x: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
        return functional.crude(x, self.factor)

    def acquire(
        self, x: torch.Tensor, spacing: tuple[float, float, float]
    ) -> tuple[torch.Tensor, np.ndarray]:
        return functional.crude_sample(x, self.factor)

    # Copying values is exact for every dtype: no float round trip, no thresholding.
    def degrade_image(
        self, data: torch.Tensor, spacing: tuple[float, float, float]
    ) -> torch.Tensor:
        return functional.crude(data, self.factor)

    def degrade_label_map(
        self, data: torch.Tensor, spacing: tuple[float, float, float]
    ) -> torch.Tensor:
        return functional.crude(data, self.factor)
