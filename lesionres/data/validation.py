"""Check a dataset before training: ``python -m lesionres check ROOT`` and its fast path.

Real ATLAS v2.0 and ISLES 2022 downloads hold surprises that the training pipeline would not
report: TorchIO reads a truncated ``.nii.gz`` as zeros without a word and turns NaNs into 0;
masks come as floats like 0.9999999998 or as ``{0, 255}``; image and mask affines differ by
1e-7. Every file is read here completely through nibabel and every problem is named, with its
file, in plain words, before hours of training. What the finders saw in the folders (an image
without its mask, an unreadable folder; :func:`lesionres.data.layouts.discover`) is reported
beside it, so one run lists every problem of a dataset.

Levels: ``error`` (the subject cannot be used as is: training would be wrong or crash),
``warning`` (usable, but look: e.g. an empty mask, or float mask values rounded to 0/1) and
``info`` (expected and handled: e.g. a 4D file holding one volume, ISLES FLAIR on its own grid).

Mask rules (:func:`read_mask` applies the same ones when training and scoring read masks):

- values exactly 0/1 (any dtype): the mask as is;
- every value within 1e-3 of 0 or 1 (floats such as 0.9999999998): rounded, with a warning;
- anything else (``{0, 255}``, labels ``{0, 1, 2}``, probabilities): an error under
  ``binarize="strict"``; ``"nonzero"`` takes every value > 0 as lesion, ``"half"`` every value
  >= half the mask's maximum.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import nibabel as nib
import numpy as np

from lesionres.data.findings import Finding, Level, check_command, count, error_report
from lesionres.data.io import NiftiError, read_nifti, squeeze_to_3d
from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX, SubjectRecord
from lesionres.errors import LesionresError

__all__ = [
    "Binarize",
    "Finding",
    "Level",
    "SubjectCheck",
    "check_records",
    "check_subject",
    "dataset_findings",
    "load_split",
    "read_mask",
    "validate_for_run",
]

Binarize = Literal["strict", "nonzero", "half"]

BINARY_TOLERANCE = 1e-3  # float mask values this close to 0 or 1 are rounded (with a warning)
DEFAULT_ATOL_MM = 1e-5  # ISLES affines differ by ~1e-7 (passes); 1e-3 is another grid (fails)
CACHE_VERSION = 1  # bump when a rule changes, so cached passes are re-checked
PROGRESS_THRESHOLD = 20  # show a progress bar above this many subjects
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


# --------------------------------------------------------------------------- mask rules


def _fmt_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.10g}"


def _describe_values(values: np.ndarray) -> str:
    unique = np.unique(values)
    if unique.size <= 6:
        return "{" + ", ".join(_fmt_value(v) for v in unique) + "}"
    return (
        f"{unique.size} distinct values from {_fmt_value(unique[0])} to {_fmt_value(unique[-1])}"
    )


def _binarize_mask(
    values: np.ndarray, binarize: Binarize
) -> tuple[np.ndarray | None, list[tuple[Level, str]]]:
    """Apply the mask rules to a 3D array.

    Returns:
        ``(mask or None, [(level, message), ...])``: the uint8 mask, ``None`` on an error.
    """
    if binarize not in get_args(Binarize):
        raise LesionresError(
            f"binarize={binarize!r}: expected one of {', '.join(get_args(Binarize))}"
        )
    notes: list[tuple[Level, str]] = []
    if values.dtype == bool:
        return values.astype(np.uint8), notes
    # two reductions first (no temporaries; a float NaN propagates into min/max): an ATLAS
    # mask is 8.7M voxels, and this runs for every subject
    low, high = values.min(), values.max()
    is_float = np.issubdtype(values.dtype, np.floating)
    if is_float and not (np.isfinite(low) and np.isfinite(high)):
        n_nan = int(np.isnan(values).sum())
        n_inf = int(np.isinf(values).sum())
        return None, [("error", f"mask has {n_nan} NaN and {n_inf} infinite voxels")]
    if not is_float and low >= 0 and high <= 1:
        return values.astype(np.uint8), notes
    if is_float and low >= -BINARY_TOLERANCE and high <= 1 + BINARY_TOLERANCE:
        lesion = values >= 0.5
        deviation = float(np.abs(values - lesion).max())
        if deviation == 0:
            return lesion.astype(np.uint8), notes
        if deviation <= BINARY_TOLERANCE:
            off = values != lesion
            example = _fmt_value(values[off].flat[0])
            notes.append(
                (
                    "warning",
                    f"float mask values within {BINARY_TOLERANCE:g} of 0/1 (e.g. {example}, "
                    f"{int(np.count_nonzero(off))} voxels); rounded to 0/1",
                )
            )
            return lesion.astype(np.uint8), notes
    described = _describe_values(values)
    if binarize == "strict":
        return None, [
            (
                "error",
                f"mask is not binary: values {described}; if that is how lesions are coded, "
                "pass --binarize nonzero (> 0 is lesion) or --binarize half (>= half the maximum) "
                "to check, --data.binarize to fit/test",
            )
        ]
    if binarize == "nonzero":
        mask = values > 0
        notes.append(("info", f"mask values {described} binarised as > 0 (--binarize nonzero)"))
    else:
        top = float(values.max())
        mask = values >= 0.5 * top if top > 0 else np.zeros(values.shape, bool)
        notes.append(
            ("info", f"mask values {described} binarised as >= {0.5 * top:g} (--binarize half)")
        )
    return mask.astype(np.uint8), notes


def read_mask(path: str | Path, binarize: Binarize = "strict") -> tuple[np.ndarray, np.ndarray]:
    """Read a lesion mask with the rules ``check`` applies (see the module docstring).

    Float values within 1e-3 of 0/1 are rounded silently here (``check`` warns about them).

    Args:
        path: Mask file.
        binarize: ``"strict"`` (only 0/1, rounding allowed), ``"nonzero"`` (> 0 is lesion) or
            ``"half"`` (>= half the maximum is lesion).

    Returns:
        ``(mask, affine)``: the 3D ``uint8`` 0/1 array and the 4x4 affine.

    Raises:
        LesionresError: unreadable file, not one 3D volume, NaN/infinite values, or a
            non-binary mask under ``"strict"`` (the message names the file).
    """
    values, affine = read_nifti(path, dtype=None)
    values = squeeze_to_3d(values, path)
    mask, notes = _binarize_mask(values, binarize)
    if mask is None:
        raise LesionresError(f"{path}: {notes[0][1]}")
    return mask, affine


# --------------------------------------------------------------------------- one subject


def _spacing(affine: np.ndarray) -> tuple[float, ...]:
    return tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


def _fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def _fmt_spacing(spacing: Sequence[float]) -> str:
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
                f"4D {what} holding one volume (shape {_fmt_shape(data.shape)}); read as 3D",
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
            Finding("error", path, f"degenerate affine (voxel size {_fmt_spacing(spacing)} mm)")
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
    (module docstring); image and mask of the same shape and with affines equal within
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
    mask, notes = _binarize_mask(values, binarize)
    findings.extend(Finding(level, mask_path, message) for level, message in notes)
    if mask is not None:
        check.mask_voxels = int(mask.sum())
        check.lesion_ml = check.mask_voxels * float(np.prod(_spacing(mask_affine))) / 1000.0
        if check.mask_voxels == 0:
            findings.append(Finding("warning", mask_path, "empty mask (no lesion voxels)"))

    if image is None:
        return check
    difference = float(np.abs(image_affine - mask_affine).max())
    if image.shape != values.shape or difference > atol_mm:
        if _is_isles_flair(record):
            findings.append(
                Finding(
                    "info",
                    image_path,
                    f"FLAIR on its own grid ({_fmt_shape(image.shape)} at "
                    f"{_fmt_spacing(_spacing(image_affine))} mm) vs the mask's "
                    f"({_fmt_shape(values.shape)} at {_fmt_spacing(_spacing(mask_affine))} mm), "
                    "as in ISLES 2022; resampled onto the mask's grid",
                )
            )
        elif image.shape != values.shape:
            findings.append(
                Finding(
                    "error",
                    image_path,
                    f"shape {_fmt_shape(image.shape)} differs from its mask's "
                    f"{_fmt_shape(values.shape)} ({mask_path.name})",
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


# --------------------------------------------------------------------------- many subjects


def load_split(path: str | Path) -> dict[str, list[str]]:
    """Read a split file: a JSON object whose list values are subject ids per part.

    Other keys (``seed``, fractions) are ignored, so the files written by
    :func:`lesionres.data.split.load_or_make_split` read as they are.

    Raises:
        LesionresError: unreadable JSON or no list of ids in it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LesionresError(f"{path}: not a readable JSON split file ({error})") from None
    if not isinstance(data, dict):
        raise LesionresError(f"{path}: expected a JSON object such as {{\"train\": [...], ...}}")
    parts = {
        str(k): [str(i) for i in v]
        for k, v in data.items()
        if isinstance(v, list) and all(isinstance(i, str) for i in v)
    }
    if not parts:
        raise LesionresError(f"{path}: no lists of subject ids (expected train/val/test lists)")
    return parts


def _dataset_problems(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None,
    split_path: Path | None,
) -> list[tuple[int | None, Finding]]:
    """Dataset-level findings, each with the index of the record it concerns (or ``None``)."""
    out: list[tuple[int | None, Finding]] = []
    first_of: dict[str, int] = {}
    users: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        first_of.setdefault(record.subject_id, index)
        users.setdefault(record.subject_id, []).append(index)
    for sid, indices in users.items():
        if len(indices) < 2:
            continue
        for index in indices:
            others = ", ".join(str(records[i].image) for i in indices if i != index)
            message = f"duplicate subject id {sid} (also {others})"
            out.append((index, Finding("error", Path(records[index].image), message)))
    if split is None:
        return out
    where = split_path if split_path is not None else Path("split")
    parts_of: dict[str, list[str]] = {}
    for part, ids in split.items():
        for sid in ids:
            parts_of.setdefault(sid, []).append(part)
    for sid, parts in parts_of.items():
        if len(parts) > 1:
            names = " and ".join(parts) if len(set(parts)) > 1 else f"{parts[0]} {len(parts)} times"
            message = f"subject {sid} is in {names}: a leak between splits"
            out.append((first_of.get(sid), Finding("error", where, message)))
    unknown = sorted(set(parts_of) - set(first_of))
    if unknown:
        message = (
            f"{count(len(unknown), 'subject')} in the split not in the dataset "
            f"(first: {unknown[0]})"
        )
        out.append((None, Finding("error", where, message)))
    unassigned = sorted(set(first_of) - set(parts_of))
    if unassigned:
        message = f"{count(len(unassigned), 'subject')} in no split (first: {unassigned[0]})"
        out.append((None, Finding("info", where, message)))
    return out


def dataset_findings(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None = None,
    split_path: str | Path | None = None,
) -> list[Finding]:
    """Dataset-level findings that concern no single subject (unknown or unassigned split ids).

    :func:`check_records` attaches the others (duplicate ids, a subject in two splits) to the
    subjects concerned.
    """
    path = Path(split_path) if split_path is not None else None
    return [f for index, f in _dataset_problems(records, split, path) if index is None]


def _run(
    records: Sequence[SubjectRecord],
    work: Callable[[SubjectRecord], SubjectCheck],
    workers: int,
    progress: bool | None,
) -> list[SubjectCheck]:
    """``work`` on every record, in order, on ``workers`` threads, with a progress bar."""
    from tqdm import tqdm

    show = len(records) > PROGRESS_THRESHOLD if progress is None else progress
    bar = tqdm(
        total=len(records), desc="checking", unit="subject", disable=not show, file=sys.stderr
    )
    results: list[SubjectCheck] = []
    try:
        if workers <= 1:
            for record in records:
                results.append(work(record))
                bar.update()
            return results
        # nibabel's gzip decompression releases the GIL, so threads overlap the reading
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for result in pool.map(work, records):
                results.append(result)
                bar.update()
        finally:
            # on Ctrl-C do not go on reading every queued file
            pool.shutdown(wait=True, cancel_futures=True)
        return results
    finally:
        bar.close()


def check_records(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None = None,
    atol_mm: float = DEFAULT_ATOL_MM,
    binarize: Binarize = "strict",
    *,
    split_path: str | Path | None = None,
    workers: int = 2,
    progress: bool | None = None,
) -> list[SubjectCheck]:
    """:func:`check_subject` on every record, plus the dataset-level errors.

    A duplicate subject id is an error on every subject using it; a subject listed in two
    parts of ``split`` is an error on that subject (its path is ``split_path``). Findings about
    no present subject come from :func:`dataset_findings`.

    Args:
        records: Subjects, e.g. :attr:`lesionres.data.layouts.Discovery.records`.
        split: Optional ``{"train": [ids], "val": [...], "test": [...]}``.
        atol_mm: Affine tolerance, see :func:`check_subject`.
        binarize: Mask rule, see :func:`check_subject`.
        split_path: The split's file, named in split findings.
        workers: Threads reading files (1: a plain loop).
        progress: Progress bar on stderr; ``None``: only for more than 20 subjects.

    Returns:
        One :class:`SubjectCheck` per record, in the records' order.
    """
    checks = _run(
        records,
        lambda r: check_subject(r, atol_mm=atol_mm, binarize=binarize),
        workers,
        progress,
    )
    path = Path(split_path) if split_path is not None else None
    for index, finding in _dataset_problems(records, split, path):
        if index is not None:
            checks[index].findings.append(finding)
    return checks


# --------------------------------------------------------------------------- fast path


def _file_key(path: Path | None) -> list:
    if path is None:
        return [None]
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def _cache_key(record: SubjectRecord, atol_mm: float, binarize: str) -> str | None:
    try:
        parts = [
            CACHE_VERSION,
            _file_key(Path(record.image)),
            _file_key(Path(record.mask) if record.mask is not None else None),
            record.dataset,
            [str(f) for f in record.problems],  # a new problem (a second mask) is re-checked
            float(atol_mm),
            binarize,
        ]
    except OSError:  # a missing file is never cached
        return None
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read_cache(path: Path | None) -> dict[str, dict]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != CACHE_VERSION:
            return {}
        return dict(data["entries"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # a damaged cache only costs a re-check


def _write_cache(path: Path, entries: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1))
        os.replace(tmp, path)  # atomic: DDP ranks may write at the same time
    except OSError:
        pass  # read-only dataset folder: validation still ran, only the cache is lost
    finally:
        if tmp.exists():
            tmp.unlink()


def _to_entry(check: SubjectCheck) -> dict:
    return {
        "image": str(Path(check.record.image).resolve()),
        "findings": [[f.level, str(f.path), f.message] for f in check.findings],
        "shape": list(check.shape) if check.shape else None,
        "spacing": list(check.spacing) if check.spacing else None,
        "orientation": check.orientation,
        "mask_voxels": check.mask_voxels,
        "lesion_ml": check.lesion_ml,
    }


def _from_entry(record: SubjectRecord, entry: dict) -> SubjectCheck:
    return SubjectCheck(
        record=record,
        findings=[Finding(level, Path(path), text) for level, path, text in entry["findings"]],
        shape=tuple(entry["shape"]) if entry.get("shape") else None,
        spacing=tuple(entry["spacing"]) if entry.get("spacing") else None,
        orientation=entry.get("orientation"),
        mask_voxels=entry.get("mask_voxels"),
        lesion_ml=entry.get("lesion_ml"),
    )


def _check_hint(records: Sequence[SubjectRecord], root: str | Path | None, binarize: str) -> str:
    if root is None:
        files = [str(Path(p).resolve()) for r in records for p in (r.image, r.mask) if p]
        try:
            root = os.path.commonpath(files) if files else "ROOT"
        except ValueError:
            root = "ROOT"
    kinds = {r.dataset for r in records}
    kind = kinds.pop() if len(kinds) == 1 else "atlas"
    modality = "dwi"
    if kind == "isles22":
        first = records[0]
        modality = next((m for m, p in first.extra.items() if Path(p) == Path(first.image)), "dwi")
    return check_command(root, kind, modality, binarize)


def validate_for_run(
    records: Sequence[SubjectRecord],
    cache_file: str | Path | None = None,
    atol_mm: float = DEFAULT_ATOL_MM,
    binarize: Binarize = "strict",
    *,
    split: dict[str, list[str]] | None = None,
    extra: Sequence[Finding] = (),
    root: str | Path | None = None,
    workers: int = 2,
    progress: bool | None = None,
) -> list[Finding]:
    """Check every record before ``fit`` / ``test``, skipping files checked before unchanged.

    A subject that passed (no error) is remembered in ``cache_file`` (JSON, written
    atomically) under its files' resolved path, size and modification time and the options;
    the next run re-reads only new or changed files. Failures are never cached.

    Args:
        records: The subjects the run will read.
        cache_file: JSON cache; ``None`` checks everything every time.
        atol_mm: Affine tolerance, see :func:`check_subject`.
        binarize: Mask rule, see :func:`check_subject`.
        split: Optional split to check for leaks (see :func:`check_records`).
        extra: Findings about no single subject, e.g. the finder's
            :attr:`~lesionres.data.layouts.Discovery.findings` (an unreadable folder): their
            errors stop the run too.
        root: Dataset root named in the error's hint (default: the files' common folder).
        workers: Threads reading files.
        progress: Progress bar; ``None``: only for more than 20 subjects to check.

    Returns:
        The warning-level findings (cached ones included), to show the user.

    Raises:
        LesionresError: any error: how many subjects failed, every error on its own line
            (the first ten, then a count; see :func:`~lesionres.data.findings.error_report`)
            and the ``check`` command that prints the full table.
    """
    cache_path = Path(cache_file) if cache_file is not None else None
    cached = _read_cache(cache_path)
    keys = [_cache_key(r, atol_mm, binarize) for r in records]
    checks: list[SubjectCheck | None] = [
        _from_entry(r, cached[k]) if k is not None and k in cached else None
        for r, k in zip(records, keys, strict=True)
    ]
    todo = [i for i, c in enumerate(checks) if c is None]
    try:
        fresh = _run(
            [records[i] for i in todo],
            # looked up at call time, so tests can count calls by patching check_subject
            lambda r: check_subject(r, atol_mm=atol_mm, binarize=binarize),
            workers,
            progress,
        )
        for i, check in zip(todo, fresh, strict=True):
            checks[i] = check
    finally:
        if cache_path is not None and todo:
            # keep passes of other files; drop stale entries of the files checked now
            current = {str(Path(r.image).resolve()) for r in records}
            entries = {k: v for k, v in cached.items() if v.get("image") not in current}
            for key, check in zip(keys, checks, strict=True):
                if key is not None and check is not None and check.ok:
                    entries[key] = _to_entry(check)
            _write_cache(cache_path, entries)
    done: list[SubjectCheck] = [c for c in checks if c is not None]  # all set by now
    general = list(extra)
    for index, finding in _dataset_problems(records, split, None):
        if index is not None:
            done[index].findings.append(finding)
        else:
            general.append(finding)
    failed = [c for c in done if not c.ok]
    errors = [f for c in failed for f in c.errors] + [f for f in general if f.level == "error"]
    if errors:
        subjects = len({c.record.subject_id for c in failed})  # a duplicate id is one subject
        header = f"{count(subjects, 'subject')} failed the check ({count(len(errors), 'error')})"
        raise LesionresError(error_report(errors, header, _check_hint(records, root, binarize)))
    return [f for c in done for f in c.warnings] + [f for f in general if f.level == "warning"]


# --------------------------------------------------------------------------- command line


def _detect_kind(root: Path) -> str:
    """Guess the layout from file names (cheap: stops at the first match)."""
    if root.is_file():
        return "folder"
    if next(root.rglob(f"sub-*{ATLAS_IMAGE_SUFFIX}"), None) is not None:
        return "atlas"
    for pattern in ("sub-*_ses-*_dwi.nii*", "sub-*_ses-*_adc.nii*", "sub-*_ses-*_*lair.nii*"):
        if next(root.rglob(pattern), None) is not None:
            return "isles22"
    return "folder"


def _table(checks: Sequence[SubjectCheck]) -> list[str]:
    header = (
        "subject", "shape", "spacing (mm)", "orient", "lesion vox / ml", "status", "first problem"
    )
    rows = []
    for check in checks:
        lesion = "-"
        if check.mask_voxels is not None:
            lesion = f"{check.mask_voxels} / {check.lesion_ml:.3g}"
        problem = check.first_problem
        text = problem.message if problem else ""
        if len(text) > 70:
            text = text[:67] + "..."
        rows.append(
            (
                check.record.subject_id,
                _fmt_shape(check.shape) if check.shape else "-",
                _fmt_spacing(check.spacing) if check.spacing else "-",
                check.orientation or "-",
                lesion,
                check.status,
                text,
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return lines
