"""The reference study's "linear" reduction: trilinear down to 1/N, trilinear back up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lesionres.transforms import functional
from lesionres.transforms._base import DegradationTransform, parse_factor

__all__ = ["LinearDegradation"]


class LinearDegradation(DegradationTransform):
    """Trilinear interpolation down to ``round(size / N)`` voxels per axis, then back.

    Both steps are ``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)``:
    low-resolution voxel ``j`` samples the original at ``(j + 0.5) * size / m - 0.5`` (edges
    clamped), i.e. both grids share the field of view and stay centred. ``round`` is Python's
    (half to even: 189 / 2 -> 94). There is deliberately no anti-alias blur: this reproduces the
    study's method (interpolation-based resampling, which aliases for N >= 2), not an
    acquisition; see :class:`~lesionres.transforms.AcquisitionDegradation` for that.

    Label maps (``include_mask=True``) are interpolated as floats and thresholded at 0.5
    (ties to background); several labels use the argmax of their interpolated indicators.

    Args:
        factor: Reduction factor >= 1 (float allowed), one for all axes or one per axis.
        include_mask: Degrade label maps too (default: only intensity images).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ...).

    Raises:
        ValueError: If a factor is below 1 or not one/three numbers.
    """

    def __init__(
        self, factor: float | Sequence[float], include_mask: bool = False, **kwargs
    ) -> None:
        super().__init__(include_mask=include_mask, **kwargs)
        self.factor = parse_factor(factor)
        self.args_names = ["factor", "include_mask"]

    def degrade(self, x: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
        return functional.linear(x, self.factor)

    def acquire(
        self, x: torch.Tensor, spacing: tuple[float, float, float]
    ) -> tuple[torch.Tensor, np.ndarray]:
        return functional.linear_sample(x, self.factor)
