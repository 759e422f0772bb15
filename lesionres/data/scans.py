"""Scans to predict: found under a folder, a file or a CSV, and prepared for the model.

:func:`find_scans` lists the scans under a folder (recursively; masks and derivatives are
skipped), a single file, or a CSV with an ``image`` column. :class:`ScanDataset` prepares each
scan exactly as the ``original`` test condition does (so a scan on the model grid gets the mask
``test`` would predict), registering it to MNI first when asked
(:mod:`lesionres.registration`). ``predict`` writes what the model makes of them
(:mod:`lesionres.prediction`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lesionres.data.datasets import zscore
from lesionres.data.grid import ModelGrid
from lesionres.data.io import load_volume
from lesionres.data.layouts import NIFTI_SUFFIXES, SubjectRecord
from lesionres.errors import LesionresError
from lesionres.files import strip_image_suffix
from lesionres.registration import RegisterKind, plan_mapping

__all__ = [
    "EXCLUDED_NAME_PARTS",
    "ScanDataset",
    "ScanEntry",
    "find_scans",
    "list_skipped",
]

EXCLUDED_NAME_PARTS = ("_mask", "_msk", "label-", "_probseg", "desc-lesion", "desc-registered")
EXCLUDED_FOLDERS = ("derivatives",)


@dataclass(frozen=True)
class ScanEntry:
    """One scan to predict.

    Attributes:
        path: The scan file.
        relative: Where its outputs go, relative to the output folder (its path under the
            input root; the file name alone for a single file or a CSV row outside the CSV's
            folder).
    """

    path: Path
    relative: Path

    @property
    def stem(self) -> str:
        """The file name without ``.nii``/``.nii.gz``."""
        return strip_image_suffix(self.path.name)

    def output(self, kind: str = "mask") -> Path:
        """``<relative folder>/<stem>_desc-lesion_<kind>.nii.gz``."""
        return self.relative.parent / f"{self.stem}_desc-lesion_{kind}.nii.gz"

    def sidecar(self, name: str) -> Path:
        """``<relative folder>/<stem>_<name>`` (registration outputs beside the mask)."""
        return self.relative.parent / f"{self.stem}_{name}"


def _is_nifti(name: str) -> bool:
    return name.lower().endswith(NIFTI_SUFFIXES)


def _exclusion(relative: Path) -> str | None:
    """Why a file is not a scan to predict (a mask, derivative, hidden file), or ``None``."""
    name = relative.name.lower()
    if name.startswith("."):
        return "hidden file"
    part = next((p for p in EXCLUDED_NAME_PARTS if p in name), None)
    if part:
        return f"a mask or prediction by its name ({part!r})"
    if any(f in (p.lower() for p in relative.parts[:-1]) for f in EXCLUDED_FOLDERS):
        return "under derivatives/ (masks and derived files)"
    return None


def _not_an_image(path: Path) -> str:
    """Why a file that is no image is skipped (the voxel file of an ``.mhd`` says so)."""
    header = path.with_suffix(".mhd")
    if path.suffix.lower() in (".raw", ".zraw") and header.exists():
        return f"voxel data of {header.name} (read through it)"
    return "not an image format lesionres reads (.nii, .nii.gz, .mha, .mhd, .nrrd)"


def find_scans(root: str | Path, skipped: list | None = None) -> list[ScanEntry]:
    """The scans to predict under ``root``.

    ``root`` may be a folder (every ``.nii``/``.nii.gz``/``.mha``/``.mhd``/``.nrrd`` below it,
    recursively, except files whose names contain ``_mask``, ``_msk``, ``label-``, ``_probseg``
    or ``desc-lesion``, hidden files and anything under a ``derivatives/`` folder), one image
    file, or a CSV with an ``image`` column (paths relative to the CSV's folder).

    Args:
        root: Folder, file or CSV.
        skipped: When given, ``(path, reason)`` is appended for every file under a folder
            ``root`` that is not predicted, so that the caller can list them.

    Raises:
        LesionresError: ``root`` missing, no scan found, a CSV without ``image`` column or with
            a missing file, or two scans that would write the same output file.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise LesionresError(
            f"{root}: does not exist (expected a folder of scans, a scan or a CSV)"
        )
    if root.is_file() and root.suffix.lower() == ".csv":
        entries = _scans_from_csv(root)
    elif root.is_file():
        if not _is_nifti(root.name):
            raise LesionresError(
                f"{root}: not an image file (.nii, .nii.gz, .mha, .mhd, .nrrd) or a CSV of scans"
            )
        entries = [ScanEntry(root, Path(root.name))]
    else:
        entries = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            reason = _exclusion(relative) or (None if _is_nifti(path.name) else _not_an_image(path))
            if reason is None:
                entries.append(ScanEntry(path, relative))
            elif skipped is not None:
                skipped.append((path, reason))
    if not entries:
        raise LesionresError(
            f"{root}: no scans found (expected .nii/.nii.gz/.mha/.mhd/.nrrd files; masks and "
            "derivatives/ are skipped)"
        )
    seen: dict[Path, Path] = {}
    for entry in entries:
        other = seen.setdefault(entry.output(), entry.path)
        if other != entry.path:
            raise LesionresError(
                f"{entry.path}: would write the same output {entry.output()} as {other}; rename one"
            )
    return entries


def list_skipped(root: Path, skipped: list, shown: int = 10) -> None:
    """Print the files :func:`find_scans` skipped, with the reason (the first ``shown``)."""
    if not skipped:
        return
    print(f"Skipped {len(skipped)} file(s) under {root} (not predicted):")
    for path, reason in skipped[:shown]:
        print(f"  {path}: {reason}")
    if len(skipped) > shown:
        print(f"  ... and {len(skipped) - shown} more")


def _scans_from_csv(path: Path) -> list[ScanEntry]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "image" not in rows[0]:
        raise LesionresError(f"{path}: expected a CSV with an 'image' column")
    entries = []
    for line, row in enumerate(rows, start=2):
        text = (row["image"] or "").strip()
        if not text:
            raise LesionresError(f"{path}, line {line}: empty 'image'")
        image = (path.parent / text).resolve()
        if not image.is_file():
            raise LesionresError(f"{path}, line {line}: image file {image} does not exist")
        try:
            relative = image.relative_to(path.parent.resolve())
        except ValueError:
            relative = Path(image.name)
        entries.append(ScanEntry(image, relative))
    return entries


class ScanDataset(Dataset):
    """Scans prepared for the model exactly as the ``original`` test condition prepares them.

    Each item holds ``record`` (a :class:`SubjectRecord` without mask, so the data module moves
    only the image to the device), ``entry``, ``image`` ``(1, X, Y, Z)`` on the model grid,
    ``mapping`` back to the scan's grid, the scan's ``affine`` and ``shape``, ``warnings``
    and, when registering, ``registration``; or ``error`` when the scan could not be prepared
    (a failed registration included).

    Args:
        entries: The scans.
        grid: The checkpoint's model grid.
        register: ``mni`` registers each scan to the MNI152 2009a template first
            (:mod:`lesionres.registration`); ``none`` takes it as it lies.
    """

    def __init__(
        self,
        entries: Sequence[ScanEntry],
        grid: ModelGrid,
        register: RegisterKind = "none",
    ) -> None:
        self.entries = list(entries)
        self.grid = grid
        self.register = register

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        record = SubjectRecord(entry.stem, entry.path, None, "predict")
        item: dict = {"record": record, "entry": entry, "warnings": []}
        try:
            image, affine = load_volume(entry.path)
            bad = ~np.isfinite(image)
            if bad.any():
                item["warnings"].append(f"{int(bad.sum())} non-finite voxels set to 0")
                image = np.where(bad, 0.0, image).astype(np.float32)
            mapping, registration = plan_mapping(image, affine, self.grid, self.register)
            if registration is not None:
                item["registration"] = registration
                item["warnings"] += registration.warnings()
            item.update(
                image=mapping.to_model(torch.from_numpy(zscore(image))[None]),
                mapping=mapping,
                affine=affine,
                shape=tuple(image.shape),
            )
        except Exception as error:  # noqa: BLE001 - reported in the scan's row, the run goes on
            item["error"] = f"{type(error).__name__}: {error}"
        return item
