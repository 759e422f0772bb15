"""A physically modelled low-resolution acquisition (SynthSeg-style blur, sample, back)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lesionres.transforms import functional
from lesionres.transforms._base import DegradationTransform, parse_factor, parse_spacing

__all__ = ["AcquisitionDegradation"]


class AcquisitionDegradation(DegradationTransform):
    """Simulate acquiring the image at a coarser voxel size, then return to the original grid.

    Per axis whose target spacing exceeds the image's spacing (read from its affine):

    1. Gaussian blur with ``sigma = 0.75 * target / source`` voxels: SynthSeg's
       ``blurring_sigma_for_downsampling`` (a Gaussian stand-in for the slice profile / point
       spread function). Edges are replicated, the kernel is truncated at 4 sigma.
    2. Linear sampling at exactly the target spacing, ``round(size * source / target)`` samples
       centred in the field of view.
    3. Linear interpolation back to the original voxel centres (edges clamped).

    Axes whose target spacing is not above the source spacing are untouched (SynthSeg blurs
    them with sigma 0.5; skipping them keeps a factor of 1 the identity). Thick clinical slices
    are e.g. ``target_spacing=(1, 1, 5)``. The blur removes most content above the target's
    Nyquist frequency ``1 / (2 * target)`` cycles/mm before sampling, so, unlike
    :class:`~lesionres.transforms.LinearDegradation`, little aliasing is introduced.

    Differences from SynthSeg, for the record: SynthSeg samples nearest-neighbour after the
    blur and may use a slice thickness below the spacing (less blur); here thickness equals
    spacing and sampling is linear. Label maps (``include_mask=True``) are degraded as floats
    and thresholded at 0.5 (several labels: argmax of the indicators).

    Args:
        target_spacing: Simulated voxel size in mm, one number or one per axis. Exclusive with
            ``factor``.
        factor: Target spacing as a multiple of each image's own spacing (>= 1), one number or
            one per axis. Exclusive with ``target_spacing``.
        include_mask: Degrade label maps too (default: only intensity images).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ...).

    Raises:
        ValueError: If both or neither of ``target_spacing`` and ``factor`` are given, a
            spacing is not positive, or a factor is below 1.
    """

    def __init__(
        self,
        target_spacing: float | Sequence[float] | None = None,
        factor: float | Sequence[float] | None = None,
        include_mask: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(include_mask=include_mask, **kwargs)
        if (target_spacing is None) == (factor is None):
            raise ValueError(
                "AcquisitionDegradation needs exactly one of target_spacing (mm, e.g. (1, 1, 5)) "
                f"or factor (multiple of the image spacing); got target_spacing={target_spacing!r},"
                f" factor={factor!r}"
            )
        self.target_spacing = None if target_spacing is None else parse_spacing(target_spacing)
        self.factor = None if factor is None else parse_factor(factor)
        self.args_names = ["target_spacing", "factor", "include_mask"]

    def target_for(self, spacing: Sequence[float]) -> tuple[float, float, float]:
        """The target spacing (mm) for an image of voxel size ``spacing``."""
        if self.target_spacing is not None:
            return self.target_spacing
        assert self.factor is not None
        return tuple(s * f for s, f in zip(spacing, self.factor, strict=True))  # type: ignore[return-value]

    def degrade(self, x: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
        return functional.acquisition(x, spacing, self.target_for(spacing))
