"""Affine registration of a scan to the MNI152 2009a template, and mapping through it.

A model trained on ATLAS v2.0 has only seen T1w scans registered to MNI152NLin2009aSym; a
scan in scanner space shows it the brain at another place, size and angle. :func:`register_to_mni`
registers a scan to the MNI152 2009a T1 template shipped inside nilearn (no download) with
SimpleITK: centre-of-mass start, rigid then affine, Mattes mutual information, two resolution
levels (4 and 2 mm; the template and the scan are first smoothed and resampled to 2 mm, so a
1 mm head costs a few seconds). The template is skull-stripped; the metric counts only its
brain mask dilated by 4 mm, so a whole-head scan's skull, neck and face do not pull on the fit,
while a skull-stripped scan's brain outline (inside those 4 mm) still does: both kinds of scan
register with the same settings (measured in BENCHMARKS.md; comparing the whole template,
background included, was slower and less exact even for the template itself).

Every registration is checked, not hoped for (:class:`Registration`): ``registration_ncc`` is
the normalised cross-correlation of the registered scan with the template over the template's
brain (1 for the template itself, 0.66-0.70 for a real T1w head, 0.29 for the same 10 mm off,
0.13 left unregistered), ``registration_brain_overlap`` the share of the template's brain that lies
inside the scan's foreground (head or brain; Otsu threshold) after registration. Below
:data:`NCC_WARNING` or :data:`OVERLAP_WARNING` the scan's row gets a warning; a registration
that fails or finds an implausible scale (outside :data:`SCALE_RANGE`) raises
:class:`RegistrationError`.

:class:`RegisteredMapping` has :class:`~lesionres.data.grid.GridMapping`'s interface: it
resamples the scan through the transform onto the model grid placed in MNI space
(:func:`mni_grid_affine`, where the training scans lay) and maps predictions back through
the inverse onto the scan's own grid, averaging over each coarser native voxel's footprint.
Its :attr:`~RegisteredMapping.lesion_region` is the template's brain dilated by 4 mm (the region
the registration fits) on the model grid: lesions lie in the brain, so a registered whole-head
scan's predictions are confined to it, and its face, neck, scalp and background (which no
training scan of the MNI-registered kind shows the model) cannot be called lesion.
Transforms follow ITK's convention (template/MNI points to scan points, LPS mm) and are written
as ``.tfm`` files SimpleITK, ITK-SNAP and ANTs read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import SimpleITK as sitk
import torch

from lesionres.data.grid import GridMapping, ModelGrid, _center_slices, spacing_of
from lesionres.errors import LesionresError
from lesionres.files import atomic_path

__all__ = [
    "NCC_WARNING",
    "OVERLAP_WARNING",
    "REGISTRATION_COLUMNS",
    "RegisterKind",
    "RegisteredMapping",
    "Registration",
    "RegistrationError",
    "mni_grid_affine",
    "plan_mapping",
    "register_to_mni",
    "registration_quality",
    "save_overlay",
    "template_volume",
]

RegisterKind = Literal["none", "mni"]
REGISTRATION_COLUMNS = ("transform", "registration_ncc", "registration_brain_overlap")
REGISTRATION_SPACING_MM = 2.0  # images are registered at 4 mm, then at 2 mm
BRAIN_LEVEL = 30.0  # template T1 (0-255) above this is brain (the template is skull-stripped)
HEAD_MASK_DILATION_MM = 4
# measured (BENCHMARKS.md, 2026-11-29): template 1.0, real T1w heads 0.66-0.70, the same 10 mm
# off 0.29, unregistered 0.13; brain overlap about 1.0 when right, 0.85 unregistered
NCC_WARNING = 0.4
OVERLAP_WARNING = 0.9
SCALE_RANGE = (0.6, 1.7)  # per-axis scale of template -> scan; adult heads lie well inside
_LPS = np.diag([-1.0, -1.0, 1.0])  # nibabel's RAS world <-> ITK's LPS world


class RegistrationError(LesionresError):
    """A registration that failed or found an implausible transform."""


# ------------------------------------------------------------------------ sitk <-> numpy
def _to_sitk(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A float32 SimpleITK image of a ``(X, Y, Z)`` array with a RAS ``affine``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array, np.float32).T))
    matrix = _LPS @ np.asarray(affine, dtype=float)[:3, :3]
    spacing = np.linalg.norm(matrix, axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((matrix / spacing).flatten().tolist())
    image.SetOrigin((_LPS @ np.asarray(affine, dtype=float)[:3, 3]).tolist())
    return image


def _reference(shape: Sequence[int], affine: np.ndarray) -> sitk.Image:
    """An empty image defining a grid to resample onto."""
    image = sitk.Image([int(n) for n in shape], sitk.sitkFloat32)
    probe = _to_sitk(np.zeros((1, 1, 1), np.float32), affine)
    image.SetSpacing(probe.GetSpacing())
    image.SetDirection(probe.GetDirection())
    image.SetOrigin(probe.GetOrigin())
    return image


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).T


def _resample(
    array: np.ndarray,
    affine: np.ndarray,
    reference: sitk.Image,
    transform: sitk.Transform,
    linear: bool = True,
    fill: float = 0.0,
) -> np.ndarray:
    """``array`` (RAS ``affine``) sampled on ``reference``'s voxels mapped by ``transform``."""
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    image = _to_sitk(array, affine)
    return _array(sitk.Resample(image, reference, transform, interpolator, float(fill)))


def _coarsen(image: sitk.Image, mm: float) -> sitk.Image:
    """Smooth (Gaussian, FWHM bringing each axis to ``mm``) and resample to ``mm`` voxels."""
    spacing = np.array(image.GetSpacing())
    if spacing.min() >= 0.75 * mm:
        return image
    sigma = np.sqrt(np.maximum(mm**2 - spacing**2, 0)) / 2.355
    smoothed = image
    for axis in np.flatnonzero(sigma > 0):  # an axis already this coarse stays as it is
        smoothed = sitk.RecursiveGaussian(smoothed, float(sigma[axis]), direction=int(axis))
    new_spacing = np.maximum(spacing, mm)
    size = np.maximum(1, np.round(np.array(image.GetSize()) * spacing / new_spacing)).astype(int)
    # keep the field of view: first and last voxel centres move inwards by half the change
    direction = np.array(image.GetDirection()).reshape(3, 3)
    shift = direction @ ((new_spacing - spacing) / 2)
    out = sitk.Image(size.tolist(), sitk.sitkFloat32)
    out.SetSpacing(new_spacing.tolist())
    out.SetDirection(image.GetDirection())
    out.SetOrigin((np.array(image.GetOrigin()) + shift).tolist())
    return sitk.Resample(smoothed, out, sitk.Transform(), sitk.sitkLinear, 0.0)


# ----------------------------------------------------------------------------- template
@lru_cache(maxsize=1)
def template_volume() -> tuple[np.ndarray, np.ndarray]:
    """The MNI152 2009a T1 template in nilearn (skull-stripped, 0-255) and its RAS affine."""
    from lesionres.data.io import load_volume
    from lesionres.data.mni_template import template_file  # the one place that finds it

    return load_volume(template_file("t1"))


@lru_cache(maxsize=1)
def _template_brain() -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """The template (1 mm), its brain mask and the brain dilated by 4 mm."""
    t1, affine = template_volume()
    image = _to_sitk(t1, affine)
    brain = sitk.Cast(image > BRAIN_LEVEL, sitk.sitkUInt8)
    return image, brain, sitk.BinaryDilate(brain, [HEAD_MASK_DILATION_MM] * 3)  # 1 mm voxels


@lru_cache(maxsize=1)
def _template_images() -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """Template at the registration spacing, its brain mask and the brain dilated by 4 mm."""
    image, brain, dilated = _template_brain()
    coarse = _coarsen(image, REGISTRATION_SPACING_MM)
    nearest = sitk.sitkNearestNeighbor
    brain = sitk.Resample(brain, coarse, sitk.Transform(), nearest, 0)
    dilated = sitk.Resample(dilated, coarse, sitk.Transform(), nearest, 0)
    return coarse, brain, dilated


@lru_cache(maxsize=4)
def _lesion_region(shape: tuple[int, int, int], affine_bytes: bytes) -> torch.Tensor:
    """The template's brain dilated by 4 mm on a grid in MNI space: 1 where a lesion may lie."""
    region = sitk.Cast(_template_brain()[2], sitk.sitkFloat32)
    reference = _reference(shape, np.frombuffer(affine_bytes).reshape(4, 4))
    # linear: a coarse voxel partly in the region counts (the region's edge stays generous)
    on_grid = _array(sitk.Resample(region, reference, sitk.Transform(), sitk.sitkLinear, 0.0))
    return torch.from_numpy((on_grid > 0).astype(np.float32))


def mni_grid_affine(grid: ModelGrid) -> np.ndarray:
    """The RAS affine of the model grid in MNI space: where the training scans lay on it.

    An ATLAS (MNI152 2009a, 197x233x189 at 1 mm) scan resampled to the grid's spacing keeps its
    field of view (the synthetic set's rule: ``ceil(N / spacing)`` voxels centred on the
    template's centre) and is centre-padded or cropped into the grid, exactly as
    :class:`~lesionres.data.grid.GridMapping` placed the training scans.
    """
    t1, template_affine = template_volume()
    spacing = np.asarray(grid.spacing, dtype=float)
    centre = template_affine[:3, :3] @ ((np.array(t1.shape) - 1) / 2) + template_affine[:3, 3]
    affine = np.diag([*spacing, 1.0])
    for axis, (n, size, step) in enumerate(zip(t1.shape, grid.shape, spacing, strict=True)):
        reference = int(math.ceil(n / step - 1e-9))
        source, destination = _center_slices(reference, size)
        middle = destination.start - source.start + (reference - 1) / 2  # grid index of centre
        affine[axis, 3] = centre[axis] - middle * step
    return affine


# ------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class Registration:
    """One scan's affine registration to the MNI152 2009a template.

    Attributes:
        matrix: 4x4 map from template (MNI) points to scan points, ITK's LPS mm convention.
        ncc: Normalised cross-correlation of the registered scan with the template over the
            template's brain.
        brain_overlap: Share of the template's brain inside the scan's foreground.
        seconds: Time the registration took.
    """

    matrix: np.ndarray
    ncc: float
    brain_overlap: float
    seconds: float

    def transform(self) -> sitk.AffineTransform:
        """The SimpleITK transform (template points to scan points)."""
        transform = sitk.AffineTransform(3)
        transform.SetMatrix(self.matrix[:3, :3].flatten().tolist())
        transform.SetTranslation(self.matrix[:3, 3].tolist())
        return transform

    def ras_matrix(self) -> np.ndarray:
        """The same map in nibabel's RAS world: MNI point (RAS mm) to scan point (RAS mm)."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.matrix @ flip

    def warnings(self) -> list[str]:
        """Why the registration looks doubtful (empty when it looks fine)."""
        out = []
        if not self.ncc >= NCC_WARNING:
            out.append(
                f"registration to MNI doubtful: correlation with the template {self.ncc:.2f} "
                f"(below {NCC_WARNING:g}); check the overlay"
            )
        if not self.brain_overlap >= OVERLAP_WARNING:
            out.append(
                f"registration to MNI doubtful: only {self.brain_overlap:.0%} of the template's "
                "brain lies inside the scan's foreground; check the overlay"
            )
        return out

    def row(self) -> dict[str, str]:
        """The quality columns of a results or predictions row."""
        return {
            "registration_ncc": f"{self.ncc:.4f}",
            "registration_brain_overlap": f"{self.brain_overlap:.4f}",
        }

    def save(self, path: str | Path) -> Path:
        """Write the transform as an ITK ``.tfm`` file (atomically)."""
        with atomic_path(path) as tmp:
            sitk.WriteTransform(self.transform(), str(tmp))
        return Path(path)


def _run(
    method_transform: sitk.Transform,
    fixed: sitk.Image,
    moving: sitk.Image,
    mask: sitk.Image,
    iterations: int,
) -> None:
    """One stage (rigid or affine): Mattes MI, 4 then 2 mm, regular-step gradient descent."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.25, seed=1)  # fixed seed: same scan, same transform
    method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=4.0,
        minStep=1e-3,  # 1e-2 stopped early: the template itself came back 0.8 mm off
        numberOfIterations=iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    method.SetOptimizerScalesFromPhysicalShift()  # steps in mm whatever the parameter
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1])
    method.SetInitialTransform(method_transform, inPlace=True)
    method.Execute(fixed, moving)


def _foreground(image: sitk.Image) -> sitk.Image:
    """The head (or brain) of a scan: Otsu threshold, closed, holes filled."""
    mask = sitk.OtsuThreshold(image, 0, 1)
    return sitk.BinaryFillhole(sitk.BinaryMorphologicalClosing(mask, [2, 2, 2]))


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def register_to_mni(
    image: np.ndarray,
    affine: np.ndarray,
    iterations: int = 200,
) -> Registration:
    """Register a scan to the MNI152 2009a template (rigid, then affine).

    Args:
        image: The scan's voxels ``(X, Y, Z)`` (any intensity scale; non-finite set to 0).
        affine: Its voxel-to-world RAS affine.
        iterations: Optimiser iterations per stage and level.

    Returns:
        The transform (template to scan) and its quality figures.

    Raises:
        RegistrationError: SimpleITK failed, or the result is not a plausible head's
            (a scale outside :data:`SCALE_RANGE`, non-finite parameters).
    """
    start = time.perf_counter()
    fixed, _, around_brain = _template_images()
    data = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    # one thread: with two, the metric's per-thread sums made transforms up to 0.2 mm apart
    # run to run (measured), and it was no faster on a 2-core machine
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        moving = _coarsen(_to_sitk(data, affine), REGISTRATION_SPACING_MM)
        initial = sitk.CenteredTransformInitializer(
            fixed,
            moving,
            sitk.Euler3DTransform(),
            sitk.CenteredTransformInitializerFilter.MOMENTS,
        )
        rigid = sitk.Euler3DTransform(initial)
        _run(rigid, fixed, moving, around_brain, iterations)
        transform = sitk.AffineTransform(3)
        transform.SetCenter(rigid.GetCenter())
        transform.SetMatrix(rigid.GetMatrix())
        transform.SetTranslation(rigid.GetTranslation())
        _run(transform, fixed, moving, around_brain, iterations)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1]
        raise RegistrationError(f"registration to MNI failed: {reason}") from None
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(transform.GetMatrix()).reshape(3, 3)
    center = np.array(transform.GetCenter())
    matrix[:3, 3] = np.array(transform.GetTranslation()) + center - matrix[:3, :3] @ center
    scales = np.linalg.svd(matrix[:3, :3], compute_uv=False)
    if not (
        np.isfinite(matrix).all()
        and SCALE_RANGE[0] <= scales.min() <= scales.max() <= SCALE_RANGE[1]
    ):
        raise RegistrationError(
            f"registration to MNI failed: implausible scale {_scales(scales)} (template to scan)"
        )
    ncc, overlap = _quality(moving, matrix)
    return Registration(matrix, ncc, overlap, time.perf_counter() - start)


def _quality(moving: sitk.Image, matrix: np.ndarray) -> tuple[float, float]:
    """``(ncc, brain_overlap)`` of a (coarsened) scan under a template-to-scan ``matrix``."""
    fixed, brain, _ = _template_images()
    transform = Registration(matrix, 0.0, 0.0, 0.0).transform()
    registered = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, 0.0)
    inside = _array(brain) > 0
    ncc = _ncc(_array(registered)[inside], _array(fixed)[inside])
    head = sitk.Resample(_foreground(moving), fixed, transform, sitk.sitkNearestNeighbor, 0)
    return ncc, float((_array(head)[inside] > 0).mean())


def registration_quality(
    image: np.ndarray, affine: np.ndarray, matrix: np.ndarray
) -> tuple[float, float]:
    """``(ncc, brain_overlap)`` of a scan under any template-to-scan ``matrix`` (ITK, LPS).

    What :func:`register_to_mni` reports, for a transform found elsewhere (or a deliberately
    wrong one, to see how the figures fall).
    """
    moving = _coarsen(_to_sitk(np.nan_to_num(image), affine), REGISTRATION_SPACING_MM)
    return _quality(moving, np.asarray(matrix, dtype=float))


def _scales(scales: np.ndarray) -> str:
    return "x".join(f"{s:.2f}" for s in scales)


# ------------------------------------------------------------------------------ mapping
class RegisteredMapping:
    """A scan brought onto the model grid through its registration; :meth:`to_native` undoes it.

    The same interface as :class:`~lesionres.data.grid.GridMapping`, so test and predict use
    either. The model grid lies in MNI space (:func:`mni_grid_affine`).

    Args:
        shape: The scan's shape.
        affine: The scan's RAS affine.
        registration: Its registration to the template.
        grid: The model grid.
    """

    def __init__(
        self,
        shape: Sequence[int],
        affine: np.ndarray,
        registration: Registration,
        grid: ModelGrid,
    ) -> None:
        self.native_shape = tuple(int(n) for n in shape)
        self.native_affine = np.asarray(affine, dtype=float)
        self.registration = registration
        self.grid = grid
        self.grid_affine = mni_grid_affine(grid)

    def to_model(
        self, volume: torch.Tensor, mode: str = "trilinear", value: float = 0.0
    ) -> torch.Tensor:
        """Resample a ``(C, X, Y, Z)`` native volume onto the model grid through the transform.

        ``mode`` ``nearest``/``nearest-exact`` for label maps; outside the scan gets ``value``.
        """
        reference = _reference(self.grid.shape, self.grid_affine)
        transform = self.registration.transform()
        linear = mode == "trilinear"
        channels = [
            _resample(channel.numpy(), self.native_affine, reference, transform, linear, value)
            for channel in volume.detach().cpu().float()
        ]
        return torch.from_numpy(np.stack(channels)).to(volume.dtype)

    @property
    def lesion_region(self) -> torch.Tensor:
        """``(X, Y, Z)`` on the model grid: 1 inside the template's brain dilated by 4 mm (where
        the registration fits, and where a lesion may lie), 0 elsewhere."""
        return _lesion_region(self.grid.shape, self.grid_affine.astype(float).tobytes())

    def to_native(self, volume: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Map a ``(C, X, Y, Z)`` model-grid volume (e.g. probabilities) back onto the scan.

        Each native voxel gets the mean over sub-voxels no larger than the model's voxels
        (linear interpolation for native voxels as fine as the model's): a coarse slice keeps
        a thin lesion's share instead of point-sampling it. Outside the grid gets ``fill``.
        """
        spacing = np.array(spacing_of(self.native_affine))
        factors = np.maximum(1, np.ceil(spacing / min(self.grid.spacing) - 1e-6)).astype(int)
        native = self.native_affine
        sub_affine = native.copy()  # sub-voxel centres tile each native voxel evenly
        sub_affine[:3, :3] = native[:3, :3] / factors
        sub_affine[:3, 3] = native[:3, :3] @ (0.5 / factors - 0.5) + native[:3, 3]
        reference = _reference(np.array(self.native_shape) * factors, sub_affine)
        inverse = self.registration.transform().GetInverse()
        out = []
        for channel in volume.detach().cpu().float():
            sampled = _resample(channel.numpy(), self.grid_affine, reference, inverse, fill=fill)
            (x, y, z), (a, b, c) = self.native_shape, factors
            out.append(sampled.reshape(x, a, y, b, z, c).mean(axis=(1, 3, 5)))
        return torch.from_numpy(np.stack(out).astype(np.float32)).to(volume.dtype)


def plan_mapping(
    image: np.ndarray,
    affine: np.ndarray,
    grid: ModelGrid,
    register: RegisterKind = "none",
) -> tuple[GridMapping | RegisteredMapping, Registration | None]:
    """How a scan goes onto the model grid: as it lies (``none``), or registered to MNI."""
    if register == "none":
        return GridMapping.plan(image.shape, affine, grid), None
    if register != "mni":
        raise LesionresError(f"register must be 'none' or 'mni', got {register!r}")
    registration = register_to_mni(image, affine)
    return RegisteredMapping(image.shape, affine, registration, grid), registration


# ------------------------------------------------------------------------------ overlay
def save_overlay(path: str | Path, image: np.ndarray, grid: ModelGrid) -> Path:
    """A PNG of a registered scan on the model grid with the template's brain outline in red.

    Three orthogonal slices through the template's centre; the outline should hug the
    scan's brain in each (a misregistered scan shows its brain off the outline).
    """
    from matplotlib.figure import Figure

    t1, template_affine = template_volume()
    grid_affine = mni_grid_affine(grid)
    template = _resample(t1, template_affine, _reference(grid.shape, grid_affine), sitk.Transform())
    centre = template_affine[:3, :3] @ ((np.array(t1.shape) - 1) / 2) + template_affine[:3, 3]
    index = np.round(np.linalg.solve(grid_affine[:3, :3], centre - grid_affine[:3, 3])).astype(int)
    index = np.clip(index, 0, np.array(grid.shape) - 1)
    image = np.asarray(image, dtype=np.float32)
    low, high = np.percentile(image, [1, 99.5])
    figure = Figure(figsize=(12, 4.4))
    views = (("axial", 2), ("coronal", 1), ("sagittal", 0))
    for column, (name, axis) in enumerate(views):
        ax = figure.add_subplot(1, 3, column + 1)
        cut = [slice(None)] * 3
        cut[axis] = int(index[axis])
        ax.imshow(image[tuple(cut)].T, origin="lower", cmap="gray", vmin=low, vmax=high)
        ax.contour(template[tuple(cut)].T > BRAIN_LEVEL, levels=[0.5], colors="red", linewidths=1)
        ax.set_title(f"{name} (template brain outline in red)", fontsize=9)
        ax.set_axis_off()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path
