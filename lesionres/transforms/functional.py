"""Plain torch operations behind the resolution-degradation transforms.

The volume functions take and return a tensor shaped ``(C, X, Y, Z)`` (channels first, three
spatial axes, TorchIO's layout; float unless stated) and keep the shape: the degraded image
lives on the original grid, so the affine does not change. Nothing here is random and nothing
touches TorchIO, so the same code serves the transforms, the tests and anyone who wants the raw
operation.

Conventions (the ones a reader needs to reproduce the numbers):

* ``crude``: keep voxels ``0, N, 2N, ...`` along each axis and repeat each one N times.
* ``linear``: ``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)`` down to
  ``round(size / N)`` voxels per axis (Python's ``round``: half to even) and back, no blur.
* ``acquisition``: separable Gaussian blur with ``sigma = 0.75 * target / source`` voxels (the
  SynthSeg rule), linear sampling on a grid of exactly the target spacing centred in the field
  of view, linear interpolation back to the original voxel centres (edges clamped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "SYNTHSEG_SIGMA_COEFFICIENT",
    "acquisition",
    "acquisition_matrices",
    "apply_along_axis",
    "blurring_sigma",
    "crude",
    "degrade_labels",
    "gaussian_blur_matrix",
    "gaussian_kernel1d",
    "linear",
    "linear_interpolation_matrix",
    "restore_dtype",
]

#: SynthSeg's ``blurring_sigma_for_downsampling``: ``sigma = 0.75 * target / source`` voxels.
SYNTHSEG_SIGMA_COEFFICIENT = 0.75

# Spacings are floats read from affines (0.9999999 vs 1.0): compare with a relative tolerance.
_SPACING_RTOL = 1e-6


def _check_volume(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a (C, X, Y, Z) tensor, got shape {tuple(x.shape)}")


def crude(x: torch.Tensor, factor: Sequence[int]) -> torch.Tensor:
    """The reference study's "crude" reduction: keep every Nth voxel, repeat it N times.

    Equivalent to ``a[::n0, ::n1, ::n2]`` followed by ``np.repeat(..., n, axis)`` per axis and a
    crop to the original shape. ``ceil(size / N) * N >= size`` always, so the repeated volume
    never falls short and no padding is needed. Implemented as one gather with the index
    ``(i // N) * N`` per axis, which is the same thing without the intermediate copies.

    The kept voxel ``kN`` is repeated onto ``kN .. kN + N - 1``, whose centre is
    ``kN + (N - 1) / 2``: the content moves by ``(N - 1) / 2`` voxels towards higher indices
    relative to the grid (and the mask), on top of the resolution loss.

    Args:
        x: Tensor ``(C, X, Y, Z)``, any dtype.
        factor: Integer factor per spatial axis (1 leaves that axis unchanged).

    Returns:
        Tensor of the same shape and dtype.
    """
    _check_volume(x)
    if all(int(n) == 1 for n in factor):
        return x.clone()
    index = [
        (torch.arange(size, device=x.device) // int(n)) * int(n)
        for size, n in zip(x.shape[1:], factor, strict=True)
    ]
    # Broadcast the three 1-D indices into one advanced-indexing gather.
    return x[:, index[0][:, None, None], index[1][None, :, None], index[2][None, None, :]]


def linear(x: torch.Tensor, factor: Sequence[float]) -> torch.Tensor:
    """The reference study's "linear" reduction: trilinear down to 1/N, trilinear back.

    Uses ``torch.nn.functional.interpolate(mode="trilinear", align_corners=False)`` both ways:
    down to ``max(1, round(size / N))`` voxels per axis, then back to the original size. A
    low-resolution voxel ``j`` samples the original at ``(j + 0.5) * size / m - 0.5`` (edges
    clamped), so the grid stays centred. No anti-alias blur is applied: each low-resolution voxel
    is a 2-tap interpolation (at N = 2 the mean of two voxels; above 2 some voxels get no weight
    at all), so content above the new Nyquist frequency aliases. That is the study's method,
    not a physical model.

    Args:
        x: Float tensor ``(C, X, Y, Z)``.
        factor: Reduction factor (>= 1, float allowed) per spatial axis.

    Returns:
        Tensor of the same shape.
    """
    _check_volume(x)
    shape = tuple(x.shape[1:])
    low = tuple(max(1, round(size / float(n))) for size, n in zip(shape, factor, strict=True))
    if low == shape:
        return x.clone()
    down = F.interpolate(x[None], size=low, mode="trilinear", align_corners=False)
    return F.interpolate(down, size=shape, mode="trilinear", align_corners=False)[0]


def blurring_sigma(
    source_spacing: Sequence[float],
    target_spacing: Sequence[float],
    coefficient: float = SYNTHSEG_SIGMA_COEFFICIENT,
) -> tuple[float, float, float]:
    """Gaussian standard deviation (in source voxels) to blur with before downsampling.

    SynthSeg's rule, ``sigma = 0.75 * target / source``, on the axes that are downsampled;
    0 on the others (``target <= source``). SynthSeg itself blurs non-downsampled axes with
    sigma 0.5; here they are left untouched so that a factor of 1 is the identity.

    Args:
        source_spacing: Voxel size of the image, mm.
        target_spacing: Simulated acquisition voxel size, mm.
        coefficient: Multiplier (0.75 in SynthSeg).

    Returns:
        Sigma per axis, in voxels of the source grid.
    """
    return tuple(
        coefficient * t / s if t > s * (1 + _SPACING_RTOL) else 0.0
        for s, t in zip(source_spacing, target_spacing, strict=True)
    )  # type: ignore[return-value]


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Normalised 1-D Gaussian, radius ``ceil(truncate * sigma)`` (scipy's default truncation).

    Args:
        sigma: Standard deviation in voxels (> 0).
        truncate: Radius in standard deviations.

    Returns:
        Float32 kernel of odd length summing to 1.
    """
    radius = max(1, math.ceil(truncate * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).float()


def gaussian_blur_matrix(size: int, sigma: float) -> torch.Tensor:
    """The 1-D Gaussian blur of a line of ``size`` voxels as a ``(size, size)`` matrix.

    Edges are replicated (the kernel weight that falls outside goes to the edge voxel), so a
    constant line stays constant.

    Args:
        size: Number of voxels along the axis.
        sigma: Standard deviation in voxels (> 0).

    Returns:
        Float64 matrix ``B`` with ``blurred = B @ line``.
    """
    kernel = gaussian_kernel1d(sigma).double()
    radius = (kernel.numel() - 1) // 2
    rows = torch.arange(size)[:, None].expand(size, kernel.numel())
    cols = (rows + torch.arange(-radius, radius + 1)[None, :]).clamp(0, size - 1)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.index_put_((rows, cols), kernel.expand(size, -1).clone(), accumulate=True)
    return matrix


def linear_interpolation_matrix(size: int, coords: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of a line of ``size`` voxels at ``coords`` as a matrix.

    Coordinates are voxel indices; outside ``[0, size - 1]`` they are clamped (edge
    replication), as torch's own interpolation does.

    Args:
        size: Number of voxels along the axis.
        coords: 1-D tensor of sample positions.

    Returns:
        Float64 matrix ``S`` of shape ``(len(coords), size)`` with ``samples = S @ line``.
    """
    coords = coords.to(torch.float64).clamp(0, size - 1)
    lower = coords.floor().long()
    upper = (lower + 1).clamp(max=size - 1)
    weight = coords - lower
    rows = torch.arange(coords.numel())
    matrix = torch.zeros(coords.numel(), size, dtype=torch.float64)
    matrix.index_put_((rows, lower), 1 - weight, accumulate=True)
    matrix.index_put_((rows, upper), weight, accumulate=True)
    return matrix


def apply_along_axis(x: torch.Tensor, matrix: torch.Tensor, axis: int) -> torch.Tensor:
    """Apply a ``(m, n)`` matrix to every line of ``x`` along ``axis`` (length n -> m).

    One BLAS matrix product: on CPU this beats a 1-D convolution by about 10x for the kernel
    sizes used here, and it fuses blur and resampling into a single pass.
    """
    out = torch.tensordot(x, matrix.to(device=x.device, dtype=x.dtype), dims=([axis], [1]))
    return out.movedim(-1, axis)


def _acquisition_grid(size: int, ratio: float) -> torch.Tensor:
    """Low-resolution sample positions (in source voxel indices) for one axis.

    ``m = max(1, round(size / ratio))`` samples spaced exactly ``ratio`` source voxels apart,
    centred on the field of view: ``c_j = (size - 1) / 2 + (j - (m - 1) / 2) * ratio``. When
    ``ratio`` divides ``size`` this is torch's ``align_corners=False`` grid.
    """
    m = max(1, round(size / ratio))
    j = torch.arange(m, dtype=torch.float64)
    return (size - 1) / 2 + (j - (m - 1) / 2) * ratio


def acquisition_matrices(
    size: int, source: float, target: float, coefficient: float = SYNTHSEG_SIGMA_COEFFICIENT
) -> tuple[torch.Tensor, torch.Tensor]:
    """Down (blur + sample) and up (interpolate back) matrices of one downsampled axis.

    Args:
        size: Number of source voxels along the axis.
        source: Source spacing, mm.
        target: Target spacing, mm (> source).
        coefficient: Blur multiplier (0.75 as in SynthSeg).

    Returns:
        ``(down, up)``: float64 matrices of shapes ``(m, size)`` and ``(size, m)``.
    """
    ratio = target / source
    centres = _acquisition_grid(size, ratio)
    m = centres.numel()
    down = linear_interpolation_matrix(size, centres) @ gaussian_blur_matrix(
        size, coefficient * ratio
    )
    # Inverse of the grid: source voxel i sits at low-resolution coordinate u_i.
    u = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / ratio + (m - 1) / 2
    return down, linear_interpolation_matrix(m, u)


def acquisition(
    x: torch.Tensor,
    source_spacing: Sequence[float],
    target_spacing: Sequence[float],
    coefficient: float = SYNTHSEG_SIGMA_COEFFICIENT,
) -> torch.Tensor:
    """Simulate an acquisition at ``target_spacing`` and bring it back to the original grid.

    Per axis with ``target > source``: Gaussian blur with ``sigma = 0.75 * target / source``
    voxels (the slice/point-spread profile, SynthSeg's rule; edges replicated, kernel truncated
    at 4 sigma), linear sampling at exactly the target spacing on a grid centred in the field of
    view, then linear interpolation back to the original voxel centres (edges clamped). Axes
    with ``target <= source`` are untouched. Each axis is one matrix product (blur and sampling
    fused); operations on different axes commute, so the order (largest reduction first, to
    shrink the volume early) does not change the result.

    Args:
        x: Float tensor ``(C, X, Y, Z)``.
        source_spacing: Voxel size of ``x`` in mm.
        target_spacing: Simulated voxel size in mm (anisotropic allowed, e.g. ``(1, 1, 5)``).
        coefficient: Blur multiplier (0.75 as in SynthSeg).

    Returns:
        Tensor of the same shape.
    """
    _check_volume(x)
    sigmas = blurring_sigma(source_spacing, target_spacing, coefficient)
    ratios = [t / s for s, t in zip(source_spacing, target_spacing, strict=True)]
    axes = sorted((a for a in range(3) if sigmas[a] > 0), key=lambda a: -ratios[a])
    if not axes:
        return x.clone()
    ups = {}
    out = x
    for a in axes:
        down, ups[a] = acquisition_matrices(
            x.shape[a + 1], source_spacing[a], target_spacing[a], coefficient
        )
        out = apply_along_axis(out, down, a + 1)
    for a in reversed(axes):  # the volume grows back as late as possible
        out = apply_along_axis(out, ups[a], a + 1)
    return out.contiguous()


def degrade_labels(
    labels: torch.Tensor, degrade: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Degrade a label map with an interpolating operation and snap it back to labels.

    Binary maps: degrade the float mask and keep voxels ``> 0.5`` (ties go to background).
    Several labels: degrade each label's indicator and take the label with the largest value
    (background first, so ties go to it); for two labels this is the same 0.5 threshold.

    Args:
        labels: Label tensor ``(C, X, Y, Z)`` of any dtype.
        degrade: The float operation, ``(C, X, Y, Z) -> (C, X, Y, Z)``.

    Returns:
        Tensor of the same shape and dtype, values among the input's labels.
    """
    values = torch.unique(labels)
    if values.numel() <= 2 and bool(((values == 0) | (values == 1)).all()):
        return (degrade(labels.float()) > 0.5).to(labels.dtype)
    scores = torch.stack([degrade((labels == v).float()) for v in values])
    return values[scores.argmax(0)].to(labels.dtype)


def restore_dtype(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Cast a float result back to the input's dtype (round and clip for integer types).

    Args:
        x: Float tensor.
        dtype: The original dtype.

    Returns:
        ``x`` in ``dtype``; integers are rounded to nearest and clipped to the type's range
        (interpolation stays within the input range, but float error can cross a bound).
    """
    if dtype == x.dtype:
        return x
    if dtype == torch.bool:
        return x > 0.5
    if dtype.is_floating_point or dtype.is_complex:
        return x.to(dtype)
    info = torch.iinfo(dtype)
    return x.round().clamp(info.min, info.max).to(dtype)
