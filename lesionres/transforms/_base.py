"""Shared base of the deterministic resolution-degradation transforms and argument checks.

A degradation changes voxel values only: every image keeps its shape and affine. By default it
touches intensity images (``tio.ScalarImage``) and leaves label maps alone, because the study
scores predictions against the full-resolution ground truth; ``include_mask=True`` degrades
label maps too, to reproduce analyses that did so.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torchio as tio

from lesionres.conditions import check_factor, check_spacing
from lesionres.transforms.functional import degrade_labels, restore_dtype

__all__ = ["DegradationTransform", "parse_factor", "parse_spacing"]


def _triple(value: object, name: str) -> tuple[float, float, float]:
    """One number or a sequence of 1 or 3 numbers -> a 3-tuple of floats."""
    if hasattr(value, "tolist") and not isinstance(value, numbers.Real):
        value = value.tolist()  # torch tensors and numpy arrays
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = [float(value)]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = list(value)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{name} must contain numbers, got {value!r}")
        values = [float(v) for v in values]
    else:
        raise ValueError(f"{name} must be a number or a sequence of 3 numbers, got {value!r}")
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ValueError(
            f"{name} must be one number or three (one per spatial axis), got {len(values)}: "
            f"{value!r}"
        )
    return values[0], values[1], values[2]


def parse_factor(value: object, *, integer: bool = False) -> tuple[float, float, float]:
    """Validate a reduction factor: one number or three, each >= 1 (whole if ``integer``), by
    the rule of :func:`lesionres.conditions.check_factor`.

    Raises:
        ValueError: With the offending value and what was expected.
    """
    factor = _triple(value, "factor")
    check_factor(factor, whole=integer)
    if integer:
        return tuple(int(f) for f in factor)  # type: ignore[return-value]
    return factor


def parse_spacing(value: object, name: str = "target_spacing") -> tuple[float, float, float]:
    """Validate a voxel spacing in mm: one number or three, each finite and > 0, by the rule of
    :func:`lesionres.conditions.check_spacing`.

    Raises:
        ValueError: With the offending value and what was expected.
    """
    spacing = _triple(value, name)
    check_spacing(spacing, name)
    return spacing


class DegradationTransform(tio.Transform):
    """Base class: degrade intensity images (and, optionally, label maps) in place.

    Subclasses implement :meth:`degrade` on a float32 tensor. Images are processed one by one
    with their own spacing; the dtype is restored afterwards (integers rounded and clipped).
    Label maps, when included, go through :func:`~lesionres.transforms.functional.
    degrade_labels` (interpolate indicators, then threshold at 0.5 / argmax), unless the
    subclass degrades labels exactly (crude reduction is already nearest-neighbour).

    The transforms are deterministic and not invertible (information is destroyed).

    Args:
        include_mask: Degrade ``tio.LabelMap`` entries too (default: leave them untouched).
        **kwargs: See :class:`torchio.transforms.Transform` (``include``, ``exclude``, ``copy``).
    """

    def __init__(self, include_mask: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(include_mask, bool):
            raise ValueError(f"include_mask must be True or False, got {include_mask!r}")
        self.include_mask = include_mask

    def degrade(self, x: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
        """Degrade a float32 ``(C, X, Y, Z)`` tensor whose voxels measure ``spacing`` mm."""
        raise NotImplementedError

    def acquire(
        self, x: torch.Tensor, spacing: tuple[float, float, float]
    ) -> tuple[torch.Tensor, np.ndarray]:
        """The simulated low-resolution scan on its own coarse grid, before going back.

        Args:
            x: Float32 ``(C, X, Y, Z)`` tensor whose voxels measure ``spacing`` mm.
            spacing: Voxel size of ``x``.

        Returns:
            ``(coarse, index_map)``: the coarse volume and the 4x4 matrix from its voxel
            indices to ``x``'s (its affine is ``affine @ index_map``).
        """
        raise NotImplementedError

    def degrade_image(
        self, data: torch.Tensor, spacing: tuple[float, float, float]
    ) -> torch.Tensor:
        """Degrade an intensity tensor of any dtype, computing in float32."""
        return restore_dtype(self.degrade(data.to(torch.float32), spacing), data.dtype)

    def degrade_label_map(
        self, data: torch.Tensor, spacing: tuple[float, float, float]
    ) -> torch.Tensor:
        """Degrade a label tensor and snap it back to its labels (binary stays binary)."""
        return degrade_labels(data, lambda x: self.degrade(x, spacing))

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        images = subject.get_images(
            intensity_only=not self.include_mask, include=self.include, exclude=self.exclude
        )
        for image in images:
            spacing = tuple(float(s) for s in image.spacing)
            if isinstance(image, tio.LabelMap):
                image.set_data(self.degrade_label_map(image.data, spacing))
            else:
                image.set_data(self.degrade_image(image.data, spacing))
        return subject
