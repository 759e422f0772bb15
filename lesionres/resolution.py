"""Resolutions as text and as numbers: the one place that writes "1x1x5" and reads it back.

A resolution (voxel size, reduction factor or measured FWHM) is one number for all three axes
or three numbers, written ``"2"`` or ``"1x1x5"``. The results table stores them this way
(``factor``, ``spacing_mm``, ``effective_fwhm_mm``), the conditions name themselves with them
(``acquisition_1x1x5mm``) and the analysis reads them back. Pure Python and numpy: no torch, so
the analysis side can use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from lesionres.errors import LesionresError

__all__ = [
    "Resolution",
    "coarser",
    "format_resolution",
    "parse_resolution",
    "per_axis",
    "degraded_spacing",
]

Resolution = tuple[float, float, float]


def per_axis(values: Sequence[float]) -> list[float]:
    """One number (isotropic) or three as three per-axis floats."""
    values = [float(v) for v in values]
    return values * 3 if len(values) == 1 else values


def format_resolution(values: Sequence[float], fmt: str = "g", *, compact: bool = True) -> str:
    """``[2, 2, 2] -> "2"``, ``[1, 1, 5] -> "1x1x5"``, ``[1.5] -> "1.5"``.

    Args:
        values: one number or one per axis.
        fmt: format of each number (``"g"``; ``".1f"`` for a measured FWHM).
        compact: write one number when every axis reads the same; ``False`` writes them all
            (``"2x2x2"``).
    """
    text = [format(float(v), fmt) for v in values]
    return text[0] if compact and len(set(text)) == 1 else "x".join(text)


def parse_resolution(text: Any) -> Resolution | None:
    """Parse ``"2"``, ``"2x2x1"``, ``"1x1x5"`` (or ``"1x1x5mm"``) into three per-axis numbers.

    Args:
        text: the ``factor`` or ``spacing_mm`` cell.

    Returns:
        ``(x, y, z)``; a single number is isotropic; ``None`` for an empty / missing cell.

    Raises:
        LesionresError: text that is not 1 or 3 positive numbers joined by ``x``.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    s = str(text).strip().lower().removesuffix("mm").strip()
    if not s or s == "nan":
        return None
    parts = re.split(r"\s*[x×,]\s*", s)
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise LesionresError(
            f"cannot read a resolution from {text!r}: expected e.g. '2' or '1x1x5'"
        ) from None
    if len(nums) == 1:
        nums = nums * 3
    if len(nums) != 3 or any(not np.isfinite(n) or n <= 0 for n in nums):
        raise LesionresError(
            f"cannot read a resolution from {text!r}: expected 1 or 3 positive numbers"
        )
    return (nums[0], nums[1], nums[2])


def coarser(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per axis the coarser (larger) of two resolutions."""
    return [max(x, y) for x, y in zip(per_axis(a), per_axis(b), strict=True)]


def degraded_spacing(
    native: Sequence[float],
    *,
    factor: Sequence[float] | None = None,
    spacing: Sequence[float] | None = None,
) -> list[float]:
    """The voxel size (mm) a scan of ``native`` spacing has after a degradation.

    A target ``spacing`` coarsens only the axes it is coarser on (a 1x1x5 mm target on a 2 mm
    scan gives 2x2x5 mm); else a ``factor`` multiplies the native spacing; with neither the
    scan keeps its spacing.

    Args:
        native: the scan's spacing (one number or three).
        factor: per-axis (or one isotropic) reduction factor.
        spacing: target voxel size in mm (one number or three).
    """
    native = per_axis(native)
    if spacing is not None:
        return coarser(native, spacing)
    if factor is not None:
        return [n * f for n, f in zip(native, per_axis(factor), strict=True)]
    return native
