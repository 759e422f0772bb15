"""A physically modelled low-resolution acquisition: slice profile / k-space PSF, sample, back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lesionres.transforms import functional
from lesionres.transforms._base import DegradationTransform, parse_factor, parse_spacing
from lesionres.transforms.functional import InplanePSF, SliceProfile

__all__ = ["AcquisitionDegradation"]


class AcquisitionDegradation(DegradationTransform):
    """Simulate acquiring the image at a coarser voxel size, then return to the original grid.

    Per axis whose target spacing exceeds the image's spacing (read from its affine), see
    :func:`lesionres.transforms.functional.acquisition`:

    1. The point spread function of the acquisition, integrated over each source voxel. The
       slice axis (by default the single coarsest axis, e.g. z for ``(1, 1, 5)``) gets the
       slice profile, ``box`` by default (slice-selective excitation), whose FWHM is the slice
       thickness (by default the slice spacing; set ``slice_thickness`` for a gap or an
       overlap). The other degraded axes lose resolution by k-space truncation to the target
       matrix (``inplane="kspace"``: a sinc, FWHM about 1.2 pixels) or by the slice profile
       (``inplane="profile"``). An isotropic target is a 3-D acquisition: no slice axis.
    2. Sampling at exactly the target spacing, ``round(size * source / target)`` samples
       centred on the field of view (:meth:`acquire` stops here: the acquired scan).
    3. Linear interpolation back to the original voxel centres (edges clamped).

    Axes whose target spacing is not above the source spacing are untouched (a factor of 1 is
    the identity). The measured slice sensitivity profile has the nominal thickness as its
    FWHM (``benchmarks/bench_psf.py``). ``profile="synthseg_augmentation"`` is SynthSeg's
    training augmentation instead (Gaussian ``sigma = 0.75 * target / source`` voxels on every
    degraded axis, linear sampling): about 1.8x the nominal FWHM on purpose, so not the
    acquisition of that voxel size. Label maps (``include_mask=True``) are degraded as floats
    and thresholded at 0.5 (several labels: argmax of the indicators).

    Args:
        target_spacing: Simulated voxel size in mm, one number or one per axis. Exclusive with
            ``factor``.
        factor: Target spacing as a multiple of each image's own spacing (>= 1), one number or
            one per axis. Exclusive with ``target_spacing``.
        profile: Slice profile: ``box``, ``gaussian`` (same FWHM) or ``synthseg_augmentation``.
        inplane: In-plane resolution loss: ``kspace`` (sinc) or ``profile``.
        slice_thickness: FWHM of the slice profile in mm (default: the slice spacing).
        slice_axis: The slice axis (0, 1 or 2); default the single coarsest target axis.
        include_mask: Degrade label maps too (default: only intensity images).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ...).

    Raises:
        ValueError: If both or neither of ``target_spacing`` and ``factor`` are given, a
            spacing or thickness is not positive, a factor is below 1, or a profile or
            in-plane model is unknown.
    """

    def __init__(
        self,
        target_spacing: float | Sequence[float] | None = None,
        factor: float | Sequence[float] | None = None,
        profile: SliceProfile = "box",
        inplane: InplanePSF = "kspace",
        slice_thickness: float | None = None,
        slice_axis: int | None = None,
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
        if slice_axis is not None and slice_axis not in (0, 1, 2):
            raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
        self.target_spacing = None if target_spacing is None else parse_spacing(target_spacing)
        self.factor = None if factor is None else parse_factor(factor)
        self.profile = profile
        self.inplane = inplane
        self.slice_thickness = slice_thickness
        self.slice_axis = slice_axis
        # validates profile, in-plane model and thickness now rather than at the first image
        functional.acquisition_kernels(
            (1.0, 1.0, 1.0), (1.0, 1.0, 2.0), profile, inplane, slice_thickness, slice_axis
        )
        self.args_names = [
            "target_spacing", "factor", "profile", "inplane", "slice_thickness", "slice_axis",
            "include_mask",
        ]  # fmt: skip

    def target_for(self, spacing: Sequence[float]) -> tuple[float, float, float]:
        """The target spacing (mm) for an image of voxel size ``spacing``."""
        if self.target_spacing is not None:
            return self.target_spacing
        assert self.factor is not None
        return tuple(s * f for s, f in zip(spacing, self.factor, strict=True))  # type: ignore[return-value]

    def _model(self) -> dict:
        return {
            "profile": self.profile,
            "inplane": self.inplane,
            "thickness": self.slice_thickness,
            "slice_axis": self.slice_axis,
        }

    def degrade(self, x: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
        return functional.acquisition(x, spacing, self.target_for(spacing), **self._model())

    def acquire(
        self, x: torch.Tensor, spacing: tuple[float, float, float]
    ) -> tuple[torch.Tensor, np.ndarray]:
        return functional.acquire(x, spacing, self.target_for(spacing), **self._model())
