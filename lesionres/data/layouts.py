"""Find image/mask pairs on disk in the ATLAS v2.0, ISLES 2022 and plain-folder layouts.

Every finder returns a sorted list of :class:`SubjectRecord`; nothing is read here except
file names, so discovery is instant even on 655 subjects.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lesionres.errors import LesionresError

__all__ = [
    "DatasetKind",
    "IslesModality",
    "SubjectRecord",
    "find_atlas",
    "find_folder",
    "find_isles",
    "find_subjects",
]

DatasetKind = Literal["atlas", "isles22", "folder", "synthetic"]
IslesModality = Literal["dwi", "adc", "flair"]

ATLAS_IMAGE_SUFFIX = "_space-MNI152NLin2009aSym_T1w.nii.gz"
ATLAS_MASK_SUFFIX = "_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class SubjectRecord:
    """Where one scan and its lesion mask live, plus the metadata carried into results.

    Attributes:
        subject_id: Unique id within the dataset (BIDS ``sub-`` label or file stem).
        image: Path of the image volume.
        mask: Path of the lesion mask, or ``None`` when there is none (prediction only).
        dataset: Dataset name, e.g. ``"atlas"`` or ``"isles22"``.
        cohort: Acquisition site / cohort (ATLAS ``R0xx``; ``""`` when unknown).
        extra: Further named paths (e.g. ISLES modalities on other grids).
        binarize: How the mask's values become lesion: ``strict`` (only 0/1), ``nonzero``
            (> 0) or ``half`` (>= half the maximum); see
            :func:`lesionres.data.validation.read_mask`.
        modality: What the image is (``T1w``, ``dwi``, ``adc``, ``flair``, a folder's declared
            modality, ``""`` when unknown), recorded with every result.
        space: Where the image lives: ``MNI152NLin2009aSym`` (ATLAS), ``scanner`` (ISLES),
            ``""`` when unknown.
    """

    subject_id: str
    image: Path
    mask: Path | None
    dataset: str
    cohort: str = ""
    extra: dict[str, Path] = field(default_factory=dict, compare=False)
    binarize: str = "strict"
    modality: str = ""
    space: str = ""


def _strip_nifti(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _require_dir(root: Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LesionresError(f"{root}: not a directory (expected {what})")
    return root


def find_atlas(root: str | Path, require_masks: bool = True) -> list[SubjectRecord]:
    """Find ATLAS v2.0 subjects: ``Training/R0xx/sub-*/ses-*/anat/*_T1w.nii.gz`` + lesion mask.

    ``root`` may be the ``ATLAS_2`` folder, its ``Training`` folder, or any folder holding
    cohort folders; the search is recursive on the exact BIDS names.

    Raises:
        LesionresError: no T1w image found, or an image without its mask.
    """
    root = _require_dir(root, "the ATLAS_2 folder holding Training/R0xx/sub-*/ses-*/anat/")
    records = []
    for image in sorted(root.rglob(f"sub-*{ATLAS_IMAGE_SUFFIX}")):
        stem = image.name[: -len(ATLAS_IMAGE_SUFFIX)]
        mask = image.with_name(stem + ATLAS_MASK_SUFFIX)
        if not mask.exists():
            if require_masks:
                raise LesionresError(f"{image}: no lesion mask beside it (expected {mask.name})")
            mask = None
        subject = stem.split("_")[0]
        cohort = next((p.name for p in image.parents if re.fullmatch(r"R\d+", p.name)), "")
        records.append(SubjectRecord(subject, image, mask, "atlas", cohort))
    if not records:
        raise LesionresError(
            f"{root}: no ATLAS v2.0 images found (expected "
            f"Training/R0xx/sub-*/ses-*/anat/sub-*{ATLAS_IMAGE_SUFFIX})"
        )
    return records


def find_isles(
    root: str | Path, modality: IslesModality = "dwi", require_masks: bool = True
) -> list[SubjectRecord]:
    """Find ISLES 2022 subjects in either public layout.

    Layouts: ``rawdata/sub-X/ses-0001/sub-X_ses-0001_{dwi,adc,flair}.nii.gz`` or the release
    zip's ``sub-X/ses-0001/{dwi,anat}/sub-X_ses-0001_{dwi,adc,FLAIR}.nii.gz``; masks in
    ``derivatives/sub-X/ses-0001/sub-X_ses-0001_msk.nii.gz`` (DWI grid). The chosen modality is
    ``image``; all modalities found are in ``extra``. FLAIR lies on another grid than the mask:
    the data pipeline resamples it onto the mask's grid.

    Raises:
        LesionresError: no image of that modality found, or an image without its mask.
    """
    root = _require_dir(root, "the ISLES 2022 folder holding rawdata/ or sub-strokecase*/")
    pattern = re.compile(r"^(sub-[^_]+)_(ses-[^_]+)_(dwi|adc|flair)\.nii(\.gz)?$", re.I)
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(root.rglob("sub-*_ses-*_*.nii*")):
        if "derivatives" in path.parts:
            continue
        match = pattern.match(path.name)
        if match:
            found.setdefault(match.group(1), {})[match.group(3).lower()] = path
    masks = {p.name.split("_")[0]: p for p in sorted(root.rglob("derivatives/**/sub-*_msk.nii*"))}
    records = []
    for subject, paths in sorted(found.items()):
        if modality not in paths:
            continue
        mask = masks.get(subject)
        if mask is None and require_masks:
            raise LesionresError(
                f"{paths[modality]}: no lesion mask for {subject} (expected "
                f"derivatives/{subject}/ses-*/{subject}_ses-*_msk.nii.gz)"
            )
        records.append(SubjectRecord(subject, paths[modality], mask, "isles22", "", paths))
    if not records:
        raise LesionresError(
            f"{root}: no ISLES 2022 {modality} images found (expected "
            f"rawdata/sub-*/ses-*/sub-*_ses-*_{modality}.nii.gz or "
            f"sub-*/ses-*/{{dwi,anat}}/sub-*_ses-*_{modality}.nii.gz)"
        )
    return records


def find_folder(root: str | Path, require_masks: bool = True) -> list[SubjectRecord]:
    """Find image/mask pairs in a plain folder or a CSV file.

    Folder: ``images/<id>.nii.gz`` with ``masks/<id>.nii.gz`` (``labels/`` also accepted), or
    files ``<id>_image.nii.gz`` / ``<id>_mask.nii.gz`` side by side. CSV: columns
    ``image`` and ``mask`` (optional ``subject_id``, ``cohort``); relative paths are taken from
    the CSV's folder.

    Raises:
        LesionresError: nothing found, a missing column or file, or an image without a mask.
    """
    root = Path(root).expanduser()
    if root.is_file() and root.suffix.lower() == ".csv":
        return _records_from_csv(root, require_masks)
    root = _require_dir(root, "a folder with images/ and masks/, or a CSV of image,mask")
    pairs: list[tuple[str, Path, Path | None]] = []
    image_dir = root / "images"
    if image_dir.is_dir():
        mask_dir = next((root / d for d in ("masks", "labels") if (root / d).is_dir()), None)
        for image in sorted(p for p in image_dir.iterdir() if p.name.endswith(NIFTI_SUFFIXES)):
            sid = _strip_nifti(image.name)
            mask = _first_existing(mask_dir, sid) if mask_dir else None
            pairs.append((sid, image, mask))
    else:
        for image in sorted(root.glob("*_image.nii*")):
            sid = _strip_nifti(image.name)[: -len("_image")]
            pairs.append((sid, image, _first_existing(root, sid + "_mask")))
    records = []
    for sid, image, mask in pairs:
        if mask is None and require_masks:
            raise LesionresError(
                f"{image}: no mask found for {sid!r} (expected masks/{sid}.nii.gz)"
            )
        records.append(SubjectRecord(sid, image, mask, "folder"))
    if not records:
        raise LesionresError(
            f"{root}: no images found (expected images/<id>.nii.gz + masks/<id>.nii.gz, "
            "or <id>_image.nii.gz + <id>_mask.nii.gz)"
        )
    return records


def _first_existing(folder: Path, stem: str) -> Path | None:
    for suffix in NIFTI_SUFFIXES:
        if (folder / (stem + suffix)).exists():
            return folder / (stem + suffix)
    return None


def _records_from_csv(path: Path, require_masks: bool) -> list[SubjectRecord]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "image" not in rows[0]:
        raise LesionresError(f"{path}: expected a CSV with an 'image' column (and 'mask')")
    records = []
    for line, row in enumerate(rows, start=2):
        image = (path.parent / row["image"]).resolve()
        mask_text = (row.get("mask") or "").strip()
        mask = (path.parent / mask_text).resolve() if mask_text else None
        for what, file in (("image", image), ("mask", mask)):
            if file is not None and not file.exists():
                raise LesionresError(f"{path}, line {line}: {what} file {file} does not exist")
        if mask is None and require_masks:
            raise LesionresError(f"{path}, line {line}: no mask given for {image.name}")
        sid = (row.get("subject_id") or "").strip() or _strip_nifti(image.name)
        records.append(SubjectRecord(sid, image, mask, "folder", (row.get("cohort") or "").strip()))
    return records


def find_subjects(
    kind: DatasetKind,
    root: str | Path,
    modality: IslesModality = "dwi",
    require_masks: bool = True,
) -> list[SubjectRecord]:
    """Dispatch to the finder for ``kind`` (``synthetic`` trees use the ATLAS layout)."""
    if kind in ("atlas", "synthetic"):
        return find_atlas(root, require_masks)
    if kind == "isles22":
        return find_isles(root, modality, require_masks)
    if kind == "folder":
        return find_folder(root, require_masks)
    raise LesionresError(
        f"unknown dataset kind {kind!r} (expected atlas, isles22, folder, synthetic)"
    )


def describe_scans(kind: str, modality: str = "", synthetic: bool = False) -> dict[str, str]:
    """Modality and space of a layout's images, as recorded in results and stated in reports.

    Args:
        kind: Layout: ``atlas``, ``isles22``, ``folder`` or ``synthetic``.
        modality: The ISLES modality read, or a folder's declared modality.
        synthetic: Built-in synthetic images (T1-like whatever layout they are written in).

    Returns:
        ``{"modality": ..., "space": ...}`` for :class:`SubjectRecord`.
    """
    if synthetic or kind == "synthetic":
        space = "MNI152NLin2009aSym" if kind in ("atlas", "synthetic") else "scanner-like"
        return {"modality": "T1w-like (synthetic)", "space": space}
    if kind == "atlas":
        return {"modality": "T1w", "space": "MNI152NLin2009aSym"}
    if kind == "isles22":
        return {"modality": modality, "space": "scanner"}
    return {"modality": modality, "space": ""}
