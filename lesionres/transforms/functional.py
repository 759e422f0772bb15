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
* ``acquisition``: per degraded axis, the point spread function of a scan acquired at the
  target voxel size (the slice axis: a box slice profile whose FWHM is the slice thickness, or a
  Gaussian of that FWHM; the other axes: k-space truncation to the target matrix, a sinc of
  FWHM 1.2 pixels), integrated over each source voxel, sampled on a grid of exactly the target
  spacing centred in the field of view; then linear interpolation back to the original voxel
  centres (edges clamped). The ``synthseg_augmentation`` profile instead blurs with SynthSeg's
  ``sigma = 0.75 * target / source`` voxels (FWHM about 1.8x the spacing: an augmentation that
  over-blurs on purpose, not the acquisition of that voxel size).

``acquire``, ``crude_sample`` and ``linear_sample`` stop at the coarse grid and return it with
the 4x4 matrix from its voxel indices to the source's, so ``affine @ index_map`` places every
coarse voxel where the model sampled it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FWHM_PER_SIGMA",
    "SYNTHSEG_SIGMA_COEFFICIENT",
    "InplanePSF",
    "KernelKind",
    "SliceProfile",
    "acquire",
    "acquisition",
    "acquisition_kernels",
    "acquisition_matrices",
    "apply_along_axis",
    "blurring_sigma",
    "crude",
    "crude_sample",
    "degrade_labels",
    "gaussian_blur_matrix",
    "gaussian_kernel1d",
    "kernel_matrix",
    "linear",
    "linear_interpolation_matrix",
    "linear_sample",
    "restore_dtype",
]

#: Point spread functions :func:`kernel_matrix` integrates.
KernelKind = Literal["box", "gaussian", "sinc"]
#: Slice profile of the ``acquisition`` condition (``synthseg_augmentation``: SynthSeg's blur).
SliceProfile = Literal["box", "gaussian", "synthseg_augmentation"]
#: In-plane resolution loss: k-space truncation (sinc) or the slice profile.
InplanePSF = Literal["kspace", "profile"]
#: FWHM of a Gaussian over its standard deviation, ``2 sqrt(2 ln 2)``.
FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))

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


def crude_sample(x: torch.Tensor, factor: Sequence[int]) -> tuple[torch.Tensor, np.ndarray]:
    """The kept voxels of :func:`crude` (``x[:, ::N0, ::N1, ::N2]``) and their index map."""
    _check_volume(x)
    n = [int(f) for f in factor]
    return x[:, :: n[0], :: n[1], :: n[2]].contiguous(), np.diag([*map(float, n), 1.0])


def linear_sample(x: torch.Tensor, factor: Sequence[float]) -> tuple[torch.Tensor, np.ndarray]:
    """The low-resolution volume of :func:`linear` and its index map.

    Low-resolution voxel ``j`` of an axis of ``m`` samples sits at source index
    ``(j + 0.5) * size / m - 0.5`` (``align_corners=False``).
    """
    _check_volume(x)
    shape = tuple(x.shape[1:])
    low = tuple(max(1, round(size / float(n))) for size, n in zip(shape, factor, strict=True))
    index_map = np.eye(4)
    for axis, (size, m) in enumerate(zip(shape, low, strict=True)):
        index_map[axis, axis] = size / m
        index_map[axis, 3] = 0.5 * size / m - 0.5
    if low == shape:
        return x.clone(), index_map
    return F.interpolate(x[None], size=low, mode="trilinear", align_corners=False)[0], index_map


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


def _kernel_cdf(u: torch.Tensor, kind: str, width: float) -> torch.Tensor:
    """Integral of the unit-area kernel from -inf to ``u`` (source voxels)."""
    if kind == "box":
        return (u / width + 0.5).clamp(0, 1)
    if kind == "gaussian":
        sigma = width / FWHM_PER_SIGMA
        return 0.5 * (1 + torch.erf(u / (sigma * math.sqrt(2))))
    raise ValueError(f"unknown kernel {kind!r} (expected box or gaussian)")


def kernel_matrix(size: int, centres: torch.Tensor, kind: KernelKind, width: float) -> torch.Tensor:
    """Sample a line of ``size`` voxels at ``centres`` through a point spread function.

    Row ``j`` is the kernel centred at ``centres[j]``: profiles (``box``, ``gaussian``) are
    integrated over each source voxel ``[i - 1/2, i + 1/2]`` (a voxel holds the object
    averaged over its extent, so a thin feature anywhere inside it counts); ``sinc`` is taken
    at the voxel centres, which is what truncating the source's own discrete k-space does.
    Weight falling past an edge goes to the edge voxel (replication, so a constant line stays
    constant); rows are normalised to sum to 1.

    Kernels (``width`` in source voxels):

    * ``box``: a rectangle of full width ``width`` (its FWHM): an ideal slice profile, or
      area averaging over a voxel's footprint;
    * ``gaussian``: FWHM ``width`` (``sigma = width / 2.355``): a smooth slice profile;
    * ``sinc``: ``sinc(u / width) / width``, the point spread function of k-space truncated
      to a matrix of pixel ``width`` (FWHM 1.207 ``width``, with ringing); cut at 8 pixels
      either side (the tail beyond holds about 1 % of the weight).

    Args:
        size: Number of source voxels along the axis.
        centres: Sample positions in source voxel indices.
        kind: ``box``, ``gaussian`` or ``sinc``.
        width: Kernel width in source voxels (> 0).

    Returns:
        Float64 matrix ``(len(centres), size)`` with ``samples = K @ line``.
    """
    if not width > 0:
        raise ValueError(f"kernel width must be positive, got {width!r}")
    if kind not in ("box", "gaussian", "sinc"):
        raise ValueError(f"unknown kernel {kind!r} (expected box, gaussian or sinc)")
    support = {"box": width / 2, "gaussian": 4 * width / FWHM_PER_SIGMA, "sinc": 8 * width}[kind]
    reach = math.ceil(support) + 1
    centres = centres.to(torch.float64)
    voxels = centres.round()[:, None] + torch.arange(-reach, reach + 1, dtype=torch.float64)
    offsets = voxels - centres[:, None]
    if kind == "sinc":  # truncating the source's discrete k-space: the sinc at voxel centres
        weights = torch.sinc(offsets / width) / width
    else:
        weights = _kernel_cdf(offsets + 0.5, kind, width) - _kernel_cdf(offsets - 0.5, kind, width)
    rows = torch.arange(centres.numel())[:, None].expand_as(voxels)
    cols = voxels.long().clamp(0, size - 1)
    matrix = torch.zeros(centres.numel(), size, dtype=torch.float64)
    matrix.index_put_((rows, cols), weights, accumulate=True)
    return matrix / matrix.sum(1, keepdim=True)


def acquisition_kernels(
    source_spacing: Sequence[float],
    target_spacing: Sequence[float],
    profile: SliceProfile = "box",
    inplane: InplanePSF = "kspace",
    thickness: float | None = None,
    slice_axis: int | None = None,
) -> list[tuple[KernelKind | Literal["synthseg_augmentation"], float] | None]:
    """The point spread function of each axis of a simulated acquisition.

    An axis is degraded when its target spacing exceeds the source spacing; the others get
    ``None`` (untouched, so a factor of 1 is the identity). The slice axis (``slice_axis``, by
    default the one axis whose target spacing is strictly the largest: a 2-D multi-slice scan;
    with several equally coarse axes, a 3-D acquisition with no slice axis) gets the slice
    profile ``profile`` with FWHM ``thickness`` (default: its spacing; less leaves a gap, more
    an overlap). The other degraded axes are phase/frequency-encoded: ``kspace`` truncates
    k-space to the target matrix (``sinc``, FWHM 1.207 pixel); ``profile`` uses the slice
    profile at the pixel size instead. ``synthseg_augmentation`` ignores all that and blurs
    every degraded axis with SynthSeg's ``sigma = 0.75 * target / source`` (FWHM about 1.8 x
    the spacing: an augmentation, not the acquisition of a voxel size).

    Returns:
        Per axis ``(kernel, width in source voxels)`` (for ``synthseg_augmentation`` the width
        is the ratio ``target / source``) or ``None``.

    Raises:
        ValueError: For an unknown profile or in-plane model, a non-positive thickness, or a
            thickness without a slice axis.
    """
    if profile not in ("box", "gaussian", "synthseg_augmentation"):
        raise ValueError(
            f"unknown slice profile {profile!r} (expected box, gaussian or synthseg_augmentation)"
        )
    if inplane not in ("kspace", "profile"):
        raise ValueError(f"unknown in-plane model {inplane!r} (expected kspace or profile)")
    ratios = [t / s for s, t in zip(source_spacing, target_spacing, strict=True)]
    degraded = [r > 1 + _SPACING_RTOL for r in ratios]
    if profile == "synthseg_augmentation":
        return [("synthseg_augmentation", r) if d else None for r, d in zip(ratios, degraded)]  # noqa: B905
    if slice_axis is None:
        coarsest = max(target_spacing)
        at_max = [a for a in range(3) if target_spacing[a] >= coarsest * (1 - _SPACING_RTOL)]
        slice_axis = at_max[0] if len(at_max) == 1 and degraded[at_max[0]] else None
    if thickness is not None:
        if slice_axis is None:
            raise ValueError(
                "a slice thickness needs a slice axis (an anisotropic target spacing or "
                f"slice_axis); got target {tuple(target_spacing)}"
            )
        if not thickness > 0:
            raise ValueError(f"slice thickness must be positive (mm), got {thickness!r}")
    kernels: list = []
    for axis, (source, ratio, down) in enumerate(zip(source_spacing, ratios, degraded)):  # noqa: B905
        if axis == slice_axis and (down or thickness is not None):
            width = (thickness if thickness is not None else target_spacing[axis]) / source
            kernels.append((profile, width))
        elif down:
            kernels.append(("sinc" if inplane == "kspace" else profile, ratio))
        else:
            kernels.append(None)
    return kernels


def acquisition_matrices(
    size: int,
    source: float,
    target: float,
    kernel: KernelKind | Literal["synthseg_augmentation"] = "box",
    width: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Down (acquire) and up (interpolate back) matrices of one degraded axis.

    Args:
        size: Number of source voxels along the axis.
        source: Source spacing, mm.
        target: Target spacing (sample distance), mm.
        kernel: Point spread function (see :func:`kernel_matrix`), or
            ``synthseg_augmentation`` (Gaussian ``sigma = 0.75 * ratio`` voxels, then linear
            sampling: the augmentation's rule).
        width: Kernel width in source voxels; default ``target / source``.

    Returns:
        ``(down, up, centres)``: float64 matrices ``(m, size)`` and ``(size, m)``, and the
        ``m`` sample positions in source voxel indices.
    """
    ratio = target / source
    centres = _acquisition_grid(size, ratio)
    m = centres.numel()
    if kernel == "synthseg_augmentation":
        down = linear_interpolation_matrix(size, centres) @ gaussian_blur_matrix(
            size, SYNTHSEG_SIGMA_COEFFICIENT * ratio
        )
    else:
        down = kernel_matrix(size, centres, kernel, ratio if width is None else width)
    # Inverse of the grid: source voxel i sits at low-resolution coordinate u_i.
    u = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / ratio + (m - 1) / 2
    return down, linear_interpolation_matrix(m, u), centres


def _plan(
    shape: Sequence[int],
    source_spacing: Sequence[float],
    target_spacing: Sequence[float],
    model: dict,
) -> dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """``{axis: (down, up, centres, ratio)}`` for every degraded axis."""
    plan = {}
    for axis, entry in enumerate(acquisition_kernels(source_spacing, target_spacing, **model)):
        if entry is not None:
            # a thickness set on an axis not coarser than the source keeps its sampling
            target = max(target_spacing[axis], source_spacing[axis])
            matrices = acquisition_matrices(
                shape[axis], source_spacing[axis], target, entry[0], entry[1]
            )
            plan[axis] = (*matrices, target / source_spacing[axis])
    return plan


def _sample(x: torch.Tensor, plan: dict) -> tuple[torch.Tensor, np.ndarray, list[int]]:
    """Apply every degraded axis's down matrix: ``(coarse, index_map, axes in order)``."""
    # largest reduction first, so the volume shrinks early (the axes commute)
    axes = sorted(plan, key=lambda a: plan[a][0].shape[0] / plan[a][0].shape[1])
    index_map = np.eye(4)
    out = x
    for axis in axes:
        down, _, centres, ratio = plan[axis]
        out = apply_along_axis(out, down, axis + 1)
        index_map[axis, axis] = ratio
        index_map[axis, 3] = float(centres[0])
    return out, index_map, axes


def _model(
    profile: SliceProfile = "box",
    inplane: InplanePSF = "kspace",
    thickness: float | None = None,
    slice_axis: int | None = None,
) -> dict:
    """The acquisition model's options (see :func:`acquire`), defaults filled in."""
    return dict(profile=profile, inplane=inplane, thickness=thickness, slice_axis=slice_axis)


def acquire(
    x: torch.Tensor,
    source_spacing: Sequence[float],
    target_spacing: Sequence[float],
    profile: SliceProfile = "box",
    inplane: InplanePSF = "kspace",
    thickness: float | None = None,
    slice_axis: int | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Simulate an acquisition at ``target_spacing``: the scan on its own coarse grid.

    Every degraded axis is weighted by its point spread function (see
    :func:`acquisition_kernels`) and sampled at exactly the target spacing on a grid centred
    on the field of view, in one matrix product per axis.

    Args:
        x: Float tensor ``(C, X, Y, Z)``.
        source_spacing: Voxel size of ``x`` in mm.
        target_spacing: Simulated voxel size (sample spacing) in mm, e.g. ``(1, 1, 5)``.
        profile: Slice profile: ``box`` (ideal slice-selective excitation), ``gaussian``, or
            ``synthseg_augmentation`` (SynthSeg's over-blurring augmentation rule).
        inplane: ``kspace`` (k-space truncation, sinc) or ``profile`` (the slice profile).
        thickness: Slice thickness (FWHM of the slice profile) in mm; default the spacing.
        slice_axis: The slice axis; default the single coarsest axis, if any.

    Returns:
        ``(coarse, index_map)``: the acquired volume ``(C, m0, m1, m2)`` and the 4x4 matrix
        taking its voxel indices to the source's (``affine @ index_map`` is its affine).
    """
    _check_volume(x)
    model = _model(profile, inplane, thickness, slice_axis)
    out, index_map, _ = _sample(x, _plan(x.shape[1:], source_spacing, target_spacing, model))
    return out.contiguous(), index_map


def acquisition(
    x: torch.Tensor, source_spacing: Sequence[float], target_spacing: Sequence[float], **model
) -> torch.Tensor:
    """Simulate an acquisition at ``target_spacing`` and bring it back to the original grid.

    :func:`acquire` (slice profile / k-space truncation, sampling on the coarse grid), then
    linear interpolation back to the original voxel centres (edges clamped). Axes with
    ``target <= source`` are untouched. Arguments as for :func:`acquire` (the acquisition
    model, ``profile``, ``inplane``, ``thickness`` and ``slice_axis``, by keyword).

    Returns:
        Tensor of the same shape as ``x``.
    """
    _check_volume(x)
    plan = _plan(x.shape[1:], source_spacing, target_spacing, _model(**model))
    if not plan:
        return x.clone()
    out, _, axes = _sample(x, plan)
    for axis in reversed(axes):  # the volume grows back as late as possible
        out = apply_along_axis(out, plan[axis][1], axis + 1)
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
