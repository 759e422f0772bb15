"""Named test-time resolution conditions and external (naturally low-resolution) test sets.

A :class:`Condition` says how test images are degraded; :func:`degrade_image` is the one place
that applies it to a scan, for ``test`` and for ``degrade`` alike, and
:func:`effective_fwhm_mm` measures the resolution it really leaves (thin-plane phantom, see
:mod:`lesionres.transforms.psf`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from lesionres.errors import LesionresError
from lesionres.resolution import degraded_spacing, format_resolution

if TYPE_CHECKING:
    import torchio as tio

__all__ = [
    "Condition",
    "ConditionMethod",
    "ExternalTestSet",
    "check_factor",
    "check_spacing",
    "degrade_image",
    "effective_fwhm_mm",
    "preset_conditions",
]

ConditionMethod = Literal["original", "crude", "linear", "acquisition"]
Profile = Literal["box", "gaussian", "synthseg_augmentation"]


def check_factor(factor: Sequence[float], *, whole: bool = False) -> None:
    """The rule of a reduction factor: one value or three, each >= 1 (whole for crude reduction).

    Raises:
        ValueError: Naming the value and the rule it breaks.
    """
    values = list(factor)
    if len(values) not in (1, 3):
        raise ValueError(f"factor {values} must be one positive number or three")
    if not all(v >= 1 for v in values):  # NaN fails too
        raise ValueError(
            f"factor {values} is below 1: it must be >= 1 on every axis (a factor of N keeps 1/N "
            "of the resolution; 1 leaves the axis unchanged)"
        )
    if whole and any(v != int(v) for v in values):
        raise ValueError(f"factor {values}: crude reduction needs whole factors")


def check_spacing(spacing: Sequence[float], name: str = "spacing") -> None:
    """The rule of a target voxel size: one value or three, each positive and finite (mm).

    Raises:
        ValueError: Naming the value and the rule it breaks.
    """
    values = list(spacing)
    if len(values) not in (1, 3):
        raise ValueError(f"{name} {values} must be one positive number or three")
    if not all(0 < v < float("inf") for v in values):
        raise ValueError(f"{name} {values} must be positive (mm) on every axis")


@dataclass
class Condition:
    """One way of degrading the test images (the masks stay at full resolution).

    Attributes:
        name: Label in the results table; derived from method and factor/spacing when empty.
        method: ``original`` (untouched), ``crude`` (keep every Nth voxel, repeat), ``linear``
            (linear down, linear up) or ``acquisition`` (slice-profile blur, sample, back).
        factor: Per-axis (or one isotropic) reduction factor for ``crude``/``linear``/
            ``acquisition``; at least 1.
        spacing: Target voxel size in mm for ``acquisition`` (e.g. ``[1, 1, 5]``).
        profile: ``acquisition`` only: the slice profile, ``box`` (slice-selective
            excitation, FWHM = slice thickness), ``gaussian`` (same FWHM) or
            ``synthseg_augmentation`` (SynthSeg's training blur, about 1.8x the nominal FWHM:
            not the acquisition of that voxel size). Non-default values join the name.
        inplane: ``acquisition`` only: in-plane loss by ``kspace`` truncation (sinc, FWHM
            1.2 pixels) or the slice ``profile``.
        thickness: ``acquisition`` only: slice thickness (FWHM of the slice profile) in mm when
            it differs from the slice spacing (gap or overlap); needs a single coarsest axis.
    """

    name: str = ""
    method: ConditionMethod = "original"
    factor: list[float] | None = None
    spacing: list[float] | None = None
    profile: Profile = "box"
    inplane: Literal["kspace", "profile"] = "kspace"
    thickness: float | None = None

    def __post_init__(self) -> None:
        if self.method not in ("original", "crude", "linear", "acquisition"):
            raise LesionresError(
                f"condition {self.name or '?'}: unknown method {self.method!r} "
                "(expected original, crude, linear or acquisition)"
            )
        if isinstance(self.factor, (int, float)):
            self.factor = [float(self.factor)]
        if isinstance(self.spacing, (int, float)):
            self.spacing = [float(self.spacing)]
        try:
            if self.factor is not None:
                check_factor(self.factor, whole=self.method == "crude")
            if self.spacing is not None:
                check_spacing(self.spacing)
        except ValueError as error:
            raise LesionresError(f"condition {self.name or self.method}: {error}") from None
        if self.method in ("crude", "linear") and self.factor is None:
            raise LesionresError(
                f"condition {self.name or self.method}: {self.method} needs a factor"
            )
        if self.method == "acquisition" and self.factor is None and self.spacing is None:
            raise LesionresError(
                f"condition {self.name or 'acquisition'}: needs a factor or spacing"
            )
        options = self._acquisition_options()
        if options and self.method != "acquisition":
            raise LesionresError(
                f"condition {self.name or self.method}: profile, inplane and thickness are "
                "options of the acquisition method only"
            )
        if self.profile not in ("box", "gaussian", "synthseg_augmentation"):
            raise LesionresError(
                f"condition {self.name or self.method}: unknown profile {self.profile!r} "
                "(expected box, gaussian or synthseg_augmentation)"
            )
        if self.inplane not in ("kspace", "profile"):
            raise LesionresError(
                f"condition {self.name or self.method}: unknown inplane {self.inplane!r} "
                "(expected kspace or profile)"
            )
        if self.thickness is not None and not self.thickness > 0:
            raise LesionresError(
                f"condition {self.name or self.method}: thickness {self.thickness} must be "
                "positive (mm)"
            )
        if not self.name:
            if self.method == "original":
                self.name = "original"
            elif self.spacing is not None:
                self.name = f"{self.method}_{format_resolution(self.spacing)}mm"
            else:
                self.name = f"{self.method}_x{format_resolution(self.factor)}"
            self.name = "_".join([self.name, *options])

    def _acquisition_options(self) -> list[str]:
        """Name parts of the non-default acquisition options (none for the defaults)."""
        parts = [] if self.profile == "box" else [str(self.profile)]
        if self.inplane != "kspace":
            parts.append(f"inplane-{self.inplane}")
        if self.thickness is not None:
            parts.append(f"thick{self.thickness:g}mm")
        return parts

    def transform(self) -> tio.Transform:
        """The deterministic TorchIO transform of this condition (image only).

        Raises:
            LesionresError: For settings the transform refuses (e.g. a thickness on an
                isotropic target).
        """
        from lesionres.transforms import build_degradation  # torch/torchio: only when used
        from lesionres.transforms.functional import acquisition_kernels

        factor = self.factor
        kwargs: dict = {}
        if self.method == "acquisition":
            kwargs = {"profile": self.profile, "inplane": self.inplane,
                      "slice_thickness": self.thickness}  # fmt: skip
        try:
            transform = build_degradation(
                self.method,
                factor=(factor[0] if len(factor) == 1 else tuple(factor)) if factor else None,
                spacing=tuple(self.spacing * (3 if len(self.spacing) == 1 else 1))
                if self.spacing
                else None,
                **kwargs,
            )
            if self.method == "acquisition":  # a thickness needs a slice axis: check now
                one = (1.0, 1.0, 1.0)
                acquisition_kernels(
                    one, transform.target_for(one), self.profile, self.inplane, self.thickness
                )
        except ValueError as error:
            raise LesionresError(f"condition {self.name}: {error}") from None
        return transform

    def effective_fwhm(self, native: Sequence[float] = (1.0, 1.0, 1.0)) -> tuple[float, ...]:
        """Measured FWHM (mm) per axis of a scan of ``native`` spacing under this condition.

        The thin-plane phantom of :mod:`lesionres.transforms.psf` on the acquired grid,
        cached per condition and spacing.
        """
        key = tuple(round(float(v), 4) for v in native)
        return _effective_fwhm(self._key(), key)

    def _key(self) -> tuple:
        return (
            self.method,
            tuple(self.factor or ()),
            tuple(self.spacing or ()),
            self.profile,
            self.inplane,
            self.thickness,
        )

    @property
    def factor_label(self) -> str:
        return format_resolution(self.factor) if self.factor else ""

    @property
    def spacing_label(self) -> str:
        return format_resolution(self.spacing) if self.spacing else ""

    def test_spacing(self, native: list[float] | tuple[float, ...]) -> list[float]:
        """The voxel size (mm) a scan of ``native`` spacing has under this condition.

        ``original``: the native spacing; a factor multiplies it; a target spacing coarsens
        only the axes it is coarser on (a 1x1x5 mm target on a 2 mm scan gives 2x2x5 mm).
        """
        if self.method == "original":
            return [float(v) for v in native]
        return degraded_spacing(native, factor=self.factor, spacing=self.spacing)

    def test_spacing_label(self, native: list[float] | tuple[float, ...]) -> str:
        """:meth:`test_spacing` as ``"2"`` or ``"2x2x5"`` (the results' ``spacing_mm``)."""
        return format_resolution([round(v, 3) for v in self.test_spacing(native)])


@functools.lru_cache(maxsize=256)
def _effective_fwhm(key: tuple, native: tuple[float, ...]) -> tuple[float, ...]:
    from lesionres.transforms.psf import effective_fwhm

    method, factor, spacing, profile, inplane, thickness = key
    condition = Condition(
        "probe", method, list(factor) or None, list(spacing) or None, profile, inplane, thickness
    )
    return tuple(round(v, 2) for v in effective_fwhm(condition.transform(), native))


def effective_fwhm_mm(
    condition: Condition, native_spacing: Sequence[float] = (1.0, 1.0, 1.0)
) -> str:
    """The measured effective resolution of ``condition`` as ``"1.0x1.0x5.0"`` (mm, per axis).

    The FWHM of the slice sensitivity profile / line spread function along each axis, measured
    with a thin-plane phantom (:mod:`lesionres.transforms.psf`) for a scan of
    ``native_spacing`` mm, one decimal; one number when all axes agree (``"3.7"``). The
    original measures its own spacing; ``crude`` measures the source voxel (it keeps voxels,
    it does not blur: its loss is aliasing), ``linear`` its 2-tap interpolation.
    """
    return format_resolution(condition.effective_fwhm(native_spacing), ".1f")


def degrade_image(
    condition: Condition,
    image: np.ndarray,
    affine: np.ndarray,
    grid: Literal["native", "acquired"] = "native",
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``condition`` to one scan: the one implementation ``test`` and ``degrade`` share.

    Args:
        condition: The test-time condition.
        image: 3-D image on its own grid (float).
        affine: Its voxel-to-world affine.
        grid: ``native`` (degraded, back on the scan's grid: what ``test`` feeds the model) or
            ``acquired`` (the simulated scan on its own coarse grid, with its affine: every
            sample where the model put it).

    Returns:
        ``(float32 image, affine)``.
    """
    if condition.method == "original":
        return np.asarray(image, dtype=np.float32), np.asarray(affine)
    import torch
    import torchio as tio

    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    transform = condition.transform()
    if grid == "native":
        subject = tio.Subject(image=tio.ScalarImage(tensor=tensor, affine=affine))
        return transform(subject)["image"].data[0].float().numpy(), np.asarray(affine)
    if grid != "acquired":
        raise LesionresError(f"grid must be native or acquired, got {grid!r}")
    spacing = tuple(float(s) for s in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))
    coarse, index_map = transform.acquire(tensor, spacing)
    return coarse[0].float().numpy(), np.asarray(affine) @ index_map


@dataclass
class ExternalTestSet:
    """A separate, naturally low-resolution test cohort (e.g. ISLES 2022), scored as is.

    Attributes:
        name: Condition label in the results table.
        root: Folder of the dataset.
        dataset: Layout (``isles22``, ``atlas`` or ``folder``).
        modality: ISLES modality (``dwi``, ``adc``, ``flair``); ISLES has no T1w, so a
            T1-trained model meets a modality shift as well as a resolution shift there. For a
            ``folder`` cohort, what its images are (e.g. ``T1w``), recorded in the results.
    """

    name: str = "isles22"
    root: str = ""
    dataset: Literal["isles22", "atlas", "folder"] = "isles22"
    modality: str = "dwi"
    extra: dict = field(default_factory=dict)


def preset_conditions(preset: Literal["study", "sweep", "none"]) -> list[Condition]:
    """The study's conditions, or a resolution sweep (factors 1.5–4 and 3/5/7 mm slices)."""
    if preset == "none":
        return [Condition()]
    if preset == "study":
        return [
            Condition(),
            Condition(method="crude", factor=[2]),
            Condition(method="linear", factor=[2]),
            Condition(method="acquisition", spacing=[1, 1, 5]),
        ]
    if preset == "sweep":
        conditions = [Condition()]
        for method in ("linear", "acquisition"):
            conditions += [Condition(method=method, factor=[f]) for f in (1.5, 2, 3, 4)]
        conditions += [Condition(method="crude", factor=[f]) for f in (2, 3, 4)]
        conditions += [Condition(method="acquisition", spacing=[1, 1, s]) for s in (3, 5, 7)]
        return conditions
    raise LesionresError(f"unknown condition preset {preset!r} (expected study, sweep or none)")
