"""Resolution-degradation transforms (TorchIO) for test-time conditions and augmentation.

Deterministic conditions, one per file, all keeping every image's shape and affine and, by
default, leaving label maps untouched:

* :class:`CrudeDegradation` (the study's "crude": keep every Nth voxel, repeat; shifts the
  content by ``(N - 1) / 2`` voxels),
* :class:`LinearDegradation` (the study's "linear": trilinear down and up, no blur),
* :class:`AcquisitionDegradation` (physical model: the slice profile through-plane and k-space
  truncation in-plane, sample at the target spacing, interpolate back; SynthSeg's
  over-blurring augmentation as the ``synthseg_augmentation`` profile),
* :class:`Identity` (the untouched "original" condition),

plus :class:`RandomResolution` for training-time augmentation and :func:`build_degradation`,
the factory the test conditions use. The raw tensor operations are in
:mod:`lesionres.transforms.functional`; :mod:`lesionres.transforms.psf` measures what
resolution a transform really leaves (thin-plane phantom).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torchio as tio

from lesionres.transforms import functional
from lesionres.transforms._base import DegradationTransform
from lesionres.transforms.acquisition import AcquisitionDegradation
from lesionres.transforms.crude import CrudeDegradation
from lesionres.transforms.functional import InplanePSF, SliceProfile
from lesionres.transforms.identity import Identity
from lesionres.transforms.linear import LinearDegradation
from lesionres.transforms.random_resolution import RandomMethod, RandomResolution

__all__ = [
    "AcquisitionDegradation",
    "CrudeDegradation",
    "DegradationMethod",
    "DegradationTransform",
    "Identity",
    "LinearDegradation",
    "RandomMethod",
    "RandomResolution",
    "build_degradation",
    "functional",
]

DegradationMethod = Literal["original", "crude", "linear", "acquisition"]


def build_degradation(
    method: DegradationMethod,
    factor: float | Sequence[float] | None = None,
    spacing: float | Sequence[float] | None = None,
    include_mask: bool = False,
    profile: SliceProfile = "box",
    inplane: InplanePSF = "kspace",
    slice_thickness: float | None = None,
) -> tio.Transform:
    """The deterministic transform of one test-time resolution condition.

    Args:
        method: ``original`` (identity), ``crude``, ``linear`` or ``acquisition``.
        factor: Reduction factor, one number or one per axis: required by ``crude`` (whole
            numbers) and ``linear``; for ``acquisition`` a multiple of the image spacing.
        spacing: Target spacing in mm for ``acquisition`` (e.g. ``(1, 1, 5)``); exclusive with
            ``factor``.
        include_mask: Degrade label maps too (default: images only).
        profile: ``acquisition`` only: slice profile (``box``, ``gaussian`` or
            ``synthseg_augmentation``); see :class:`AcquisitionDegradation`.
        inplane: ``acquisition`` only: ``kspace`` (sinc) or ``profile``.
        slice_thickness: ``acquisition`` only: slice thickness in mm (default: the spacing).

    Returns:
        A ``tio.Transform`` that keeps shapes and affines.

    Raises:
        ValueError: For an unknown method, or a factor/spacing the method does not take.
    """
    if method == "original":
        if factor is not None or spacing is not None:
            raise ValueError(
                f"method 'original' takes no factor or spacing, got factor={factor!r}, "
                f"spacing={spacing!r}"
            )
        return Identity()
    if method in ("crude", "linear"):
        if factor is None or spacing is not None:
            raise ValueError(
                f"method {method!r} needs a factor and no spacing (spacing is for "
                f"'acquisition'), got factor={factor!r}, spacing={spacing!r}"
            )
        cls = CrudeDegradation if method == "crude" else LinearDegradation
        return cls(factor, include_mask=include_mask)
    if method == "acquisition":
        return AcquisitionDegradation(
            target_spacing=spacing,
            factor=factor,
            profile=profile,
            inplane=inplane,
            slice_thickness=slice_thickness,
            include_mask=include_mask,
        )
    raise ValueError(
        f"unknown degradation method {method!r} (expected original, crude, linear or acquisition)"
    )
