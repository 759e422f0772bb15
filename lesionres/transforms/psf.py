"""Measure the resolution a degradation really leaves: a thin-plane phantom, per axis.

A plane one source voxel apart from nothing (unit integral, infinitely thin) is placed at
sub-voxel positions along one axis, each position one channel, and sent through the
transform; the response of one output sample as the plane moves through it is the slice
sensitivity profile (through-plane) or line spread function (in-plane). Its full width at
half maximum is the effective resolution, to be compared with the nominal voxel size.

A plane at a fractional position is split linearly between its two neighbouring voxels
(its integral and centroid are exact); a source voxel's own 1-voxel width therefore shows:
the untouched original measures exactly one voxel.

``grid="acquired"`` reads the sample nearest the centre on the simulated scan's own coarse
grid (what the acquisition model models: the FWHM of a box slice profile is the slice
thickness); ``grid="native"`` reads the voxel at the centre after interpolation back to the
original grid (what the model is fed, broadened a little by the linear interpolation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

__all__ = ["effective_fwhm", "fwhm", "plane_phantom", "slice_sensitivity_profile"]

Grid = Literal["acquired", "native"]


def plane_phantom(size: int, positions: torch.Tensor) -> torch.Tensor:
    """Thin planes of unit integral along one axis: ``(len(positions), size)``, float32.

    Position ``p`` (in voxel indices) puts ``1 - frac(p)`` on voxel ``floor(p)`` and
    ``frac(p)`` on the next.
    """
    lower = positions.floor().long()
    weight = (positions - lower).float()
    rows = torch.arange(positions.numel())
    lines = torch.zeros(positions.numel(), size)
    lines[rows, lower] = 1 - weight
    lines[rows, (lower + 1).clamp(max=size - 1)] += weight
    return lines


def fwhm(offsets: np.ndarray, values: np.ndarray) -> float:
    """Full width at half maximum of a sampled single-peaked profile (linear crossings).

    Args:
        offsets: Increasing sample positions.
        values: Profile values there.

    Returns:
        The width, in the unit of ``offsets``; ``nan`` if the profile does not fall below half
        its maximum on both sides.
    """
    values = np.asarray(values, dtype=float)
    offsets = np.asarray(offsets, dtype=float)
    peak = int(np.argmax(values))
    half = values[peak] / 2
    below_left = np.flatnonzero(values[:peak] < half)
    below_right = np.flatnonzero(values[peak:] < half)
    if not below_left.size or not below_right.size:
        return math.nan
    i = below_left[-1]  # values[i] < half <= values[i + 1]
    left = np.interp(half, [values[i], values[i + 1]], [offsets[i], offsets[i + 1]])
    j = peak + below_right[0]  # values[j - 1] >= half > values[j]
    right = np.interp(half, [values[j], values[j - 1]], [offsets[j], offsets[j - 1]])
    return float(right - left)


def slice_sensitivity_profile(
    transform: object,
    spacing: Sequence[float],
    axis: int,
    grid: Grid = "acquired",
    step: float = 0.05,
    extent: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The response of one output sample to a thin plane moved through it along ``axis``.

    Args:
        transform: A :class:`~lesionres.transforms.DegradationTransform` (anything else, e.g.
            :class:`~lesionres.transforms.Identity`, is taken as the identity).
        spacing: Source voxel size, mm.
        axis: Axis the plane moves along (0, 1, 2).
        grid: ``acquired`` (the coarse sample nearest the centre) or ``native`` (the centre
            voxel after interpolation back).
        step: Plane step in source voxels (sub-voxel).
        extent: Size of the phantom along the other two axes (1 is exact, as the transforms
            are separable and a plane is constant along them; more is a literal 3-D check).

    Returns:
        ``(offsets in mm from the sample's centre, response)``.
    """
    spacing = tuple(float(s) for s in spacing)
    target = getattr(transform, "target_for", lambda s: s)(spacing)
    factor = getattr(transform, "factor", None) or (1.0, 1.0, 1.0)
    ratio = max(max(t / s for t, s in zip(target, spacing, strict=True)), *factor)
    # room for the widest kernel (sinc, cut at 8 pixels) on both sides of the centre
    size = 2 * math.ceil(12 * ratio) + 16
    centre = (size - 1) / 2
    positions = torch.arange(centre - 4 * ratio - 2, centre + 4 * ratio + 2, step)
    shape = [extent, extent, extent]
    shape[axis] = size
    lines = plane_phantom(size, positions.double())
    volume = lines.reshape(-1, *[size if a == axis else 1 for a in range(3)])
    volume = volume.expand(-1, *shape).contiguous()
    if grid == "acquired" and hasattr(transform, "acquire"):
        out, index_map = transform.acquire(volume, spacing)
        count = out.shape[axis + 1]
        sample_positions = index_map[axis, 3] + index_map[axis, axis] * np.arange(count)
    elif grid in ("acquired", "native"):
        out = transform.degrade(volume, spacing) if hasattr(transform, "degrade") else volume
        sample_positions = np.arange(size, dtype=float)
    else:
        raise ValueError(f"grid must be acquired or native, got {grid!r}")
    j = int(np.argmin(np.abs(sample_positions - centre)))
    middle = [o // 2 for o in out.shape[1:]]
    middle[axis] = j
    response = out[:, middle[0], middle[1], middle[2]].double().numpy()
    offsets = (positions.numpy() - sample_positions[j]) * spacing[axis]
    return offsets, response


def effective_fwhm(
    transform: object,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    grid: Grid = "acquired",
    step: float = 0.05,
) -> tuple[float, float, float]:
    """Measured FWHM (mm) of ``transform`` along each axis for a scan of ``spacing`` mm.

    See :func:`slice_sensitivity_profile`; the untouched original measures its own spacing.
    """
    return tuple(  # type: ignore[return-value]
        fwhm(*slice_sensitivity_profile(transform, spacing, axis, grid, step)) for axis in range(3)
    )
