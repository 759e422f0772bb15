"""Check one subject completely: every problem of its image and mask, named by file.

Real ATLAS v2.0 and ISLES 2022 downloads hold surprises that the training pipeline would not
report: TorchIO reads a truncated ``.nii.gz`` as zeros without a word and turns NaNs into 0;
masks come as floats like 0.9999999998 or as ``{0, 255}``; image and mask affines differ by
1e-7. :func:`check_subject` reads both files completely through nibabel and names every
problem, with its file, in plain words, before hours of training.

Levels: ``error`` (the subject cannot be used as is: training would be wrong or crash),
``warning`` (usable, but look: e.g. an empty mask, or float mask values rounded to 0/1) and
``info`` (expected and handled: e.g. a 4D file holding one volume, ISLES FLAIR on its own grid).
Masks follow the rules of :mod:`lesionres.data.masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from lesionres.data.findings import Finding
from lesionres.data.io import NiftiError, read_nifti, squeeze_to_3d
from lesionres.data.layouts import SubjectRecord
from lesionres.data.masks import DEFAULT_ATOL_MM, Binarize, affine_difference, binarize_mask

__all__ = ["SubjectCheck", "check_subject", "fmt_shape", "fmt_spacing"]

_LEVEL_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class SubjectCheck:
    """What :func:`check_subject` found for one subject.

    Attributes:
        record: The subject checked.
        findings: Every error, warning and info, in the order found.
        shape: The image's 3D shape, or ``None`` when unreadable.
        spacing: The image's voxel size in mm, or ``None``.
        orientation: The image's axis codes (nibabel ``aff2axcodes``), e.g. ``"RAS"``, or ``None``.
        mask_voxels: Lesion voxels after binarisation, or ``None`` (no or unreadable mask).
        lesion_ml: Lesion volume in ml on the mask's grid, or ``None``.
    """

    record: SubjectRecord
    findings: list[Finding] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    orientation: str | None = None
    mask_voxels: int | None = None
    lesion_ml: float | None = None

    @property
    def errors(self) -> list[Finding]:
        """Error-level findings."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Warning-level findings."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings and infos allowed)."""
        return not self.errors

    @property
    def status(self) -> Literal["ok", "warning", "error"]:
        """``"error"`` if any error, else ``"warning"`` if any warning, else ``"ok"``."""
        if self.errors:
            return "error"
        return "warning" if self.warnings else "ok"

    @property
    def first_problem(self) -> Finding | None:
        """The first finding of the highest level above info, or ``None``."""
        problems = [f for f in self.findings if f.level != "info"]
        if not problems:
            return None
        return max(problems, key=lambda f: _LEVEL_RANK[f.level])  # max keeps the first of ties


def _spacing(affine: np.ndarray) -> tuple[float, ...]:
    # data.grid.spacing_of without importing torch: `check` stays light
    return tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


def fmt_shape(shape: Sequence[int]) -> str:
    """``(16, 16, 12) -> "16x16x12"``."""
    return "x".join(str(int(s)) for s in shape)


def fmt_spacing(spacing: Sequence[float]) -> str:
    """``(1, 1, 5) -> "1x1x5"`` (3 significant digits)."""
    return "x".join(f"{s:.3g}" for s in spacing)


def _orientation(affine: np.ndarray) -> str | None:
    try:
        codes = nib.aff2axcodes(affine)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return "".join(c if c is not None else "?" for c in codes)


def _read_3d(
    path: Path, dtype: type | None, what: str, findings: list[Finding]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Read ``path`` fully; report unreadable files and extra dimensions as findings."""
    try:
        data, affine = read_nifti(path, dtype=dtype)
    except NiftiError as error:
        findings.append(Finding("error", path, error.reason))
        return None, None
    if data.ndim > 3 and all(s == 1 for s in data.shape[3:]):
        findings.append(
            Finding(
                "info",
                path,
                f"4D {what} holding one volume (shape {fmt_shape(data.shape)}); read as 3D",
            )
        )
    try:
        data = squeeze_to_3d(data, path)
    except NiftiError as error:
        findings.append(Finding("error", path, error.reason))
        return None, None
    spacing = _spacing(affine)
    if min(spacing) <= 0 or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        findings.append(
            Finding("error", path, f"degenerate affine (voxel size {fmt_spacing(spacing)} mm)")
        )
        return None, None
    return data, affine


def _is_isles_flair(record: SubjectRecord) -> bool:
    if record.dataset != "isles22":
        return False
    flair = record.extra.get("flair")
    return (flair is not None and Path(flair) == Path(record.image)) or (
        "_flair." in Path(record.image).name.lower()
    )


def _reported_missing(record: SubjectRecord, path: Path) -> bool:
    """True when ``path`` is absent and the finder reported it (one line per problem)."""
    return bool(record.problems) and not path.exists()


def check_subject(
    record: SubjectRecord,
    atol_mm: float = DEFAULT_ATOL_MM,
    binarize: Binarize = "strict",
) -> SubjectCheck:
    """Read one subject's image and mask completely and report every problem.

    Checks: both files readable to the last byte (truncated / corrupt files named); 3D (a 4D
    file with one volume is squeezed: info; several volumes: error); image values finite
    (NaN/Inf: error with counts) and not constant (error); mask values per the mask rules
    (:mod:`lesionres.data.masks`); image and mask of the same shape and with affines equal within
    ``atol_mm`` (max absolute difference of the 4x4 matrices, reported); empty mask (warning).
    An ISLES 2022 FLAIR image on another grid than its DWI-space mask is expected (info): the
    data pipeline resamples it onto the mask's grid. The finder's problems of the record (e.g.
    an image without its mask) come first; the files it found are still read.

    Args:
        record: The subject (from :func:`lesionres.data.layouts.discover`).
        atol_mm: Tolerance on the image/mask affine difference; the default 1e-5 passes the
            ~1e-7 differences of ISLES files and fails a 1e-3 shift.
        binarize: How to read non-binary masks: ``"strict"`` (error), ``"nonzero"``, ``"half"``.

    Returns:
        The :class:`SubjectCheck`; never raises for a bad file.
    """
    findings: list[Finding] = list(record.problems)  # what the finder saw comes first
    check = SubjectCheck(record=record, findings=findings)
    image_path = Path(record.image)

    image, image_affine = None, None
    if not _reported_missing(record, image_path):
        image, image_affine = _read_3d(image_path, np.float32, "image", findings)
    if image is not None:
        check.shape = tuple(int(s) for s in image.shape)
        check.spacing = _spacing(image_affine)
        check.orientation = _orientation(image_affine)
        low, high = float(image.min()), float(image.max())  # NaN propagates: no temporaries
        finite_values = image
        if not (np.isfinite(low) and np.isfinite(high)):
            finite = np.isfinite(image)
            n_nan = int(np.isnan(image).sum())
            n_inf = int(finite.size - np.count_nonzero(finite)) - n_nan
            findings.append(
                Finding(
                    "error",
                    image_path,
                    f"{n_nan} NaN and {n_inf} infinite voxels (of {image.size}); TorchIO "
                    "would silently read them as 0",
                )
            )
            finite_values = image[finite]
            if finite_values.size:
                low, high = float(finite_values.min()), float(finite_values.max())
        if finite_values.size == 0 or low == high:
            level = f"{low:g}" if finite_values.size else "NaN/Inf"
            findings.append(
                Finding(
                    "error",
                    image_path,
                    f"constant image (every voxel is {level}): a blank volume or a failed "
                    "conversion",
                )
            )

    if record.mask is None:
        if not record.problems:  # else the finder's error already says the mask is missing
            findings.append(
                Finding("info", image_path, "no lesion mask: usable for prediction only")
            )
        return check
    mask_path = Path(record.mask)
    if _reported_missing(record, mask_path):
        return check
    values, mask_affine = _read_3d(mask_path, None, "mask", findings)
    if values is None:
        return check
    mask, notes = binarize_mask(values, binarize)
    findings.extend(Finding(level, mask_path, message) for level, message in notes)
    if mask is not None:
        check.mask_voxels = int(mask.sum())
        check.lesion_ml = check.mask_voxels * float(np.prod(_spacing(mask_affine))) / 1000.0
        if check.mask_voxels == 0:
            findings.append(Finding("warning", mask_path, "empty mask (no lesion voxels)"))

    if image is None:
        return check
    difference = affine_difference(image_affine, mask_affine)
    if image.shape != values.shape or difference > atol_mm:
        if _is_isles_flair(record):
            findings.append(
                Finding(
                    "info",
                    image_path,
                    f"FLAIR on its own grid ({fmt_shape(image.shape)} at "
                    f"{fmt_spacing(_spacing(image_affine))} mm) vs the mask's "
                    f"({fmt_shape(values.shape)} at {fmt_spacing(_spacing(mask_affine))} mm), "
                    "as in ISLES 2022; resampled onto the mask's grid",
                )
            )
        elif image.shape != values.shape:
            findings.append(
                Finding(
                    "error",
                    image_path,
                    f"shape {fmt_shape(image.shape)} differs from its mask's "
                    f"{fmt_shape(values.shape)} ({mask_path.name})",
                )
            )
        else:
            mask_orientation = _orientation(mask_affine)
            orientations = (
                f"; image is {check.orientation}, mask {mask_orientation}"
                if mask_orientation != check.orientation
                else ""
            )
            findings.append(
                Finding(
                    "error",
                    image_path,
                    f"image and mask affines differ by {difference:.2g} (max abs difference of "
                    f"the 4x4, tolerance {atol_mm:g} mm; {mask_path.name}): not the same grid"
                    f"{orientations}",
                )
            )
    elif difference > 0:
        findings.append(
            Finding(
                "info",
                image_path,
                f"image and mask affines differ by {difference:.2g} (within {atol_mm:g} mm)",
            )
        )
    return check
