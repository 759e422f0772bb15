"""What ``python -m lesionres check ROOT`` prints: the layout guess and the per-subject table.

Every file is read completely (:mod:`lesionres.data.subject_check`, with the mask rules of
:mod:`lesionres.data.masks`) and every problem is named, with its file, in plain words. What
the finders saw in the folders (an image without its mask, an unreadable folder;
:func:`lesionres.data.layouts.discover`) and the problems of the dataset as such
(:mod:`lesionres.data.dataset_check`) are reported beside it, so one run lists every problem of
a dataset. ``fit`` and ``test`` run the same checks, cached
(:mod:`lesionres.data.run_check`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX
from lesionres.data.subject_check import SubjectCheck, fmt_shape, fmt_spacing

__all__ = ["check_table", "detect_kind"]


def detect_kind(root: Path) -> str:
    """Guess the layout from file names (cheap: stops at the first match)."""
    if root.is_file():
        return "folder"
    if next(root.rglob(f"sub-*{ATLAS_IMAGE_SUFFIX}"), None) is not None:
        return "atlas"
    for pattern in ("sub-*_ses-*_dwi.nii*", "sub-*_ses-*_adc.nii*", "sub-*_ses-*_*lair.nii*"):
        if next(root.rglob(pattern), None) is not None:
            return "isles22"
    return "folder"


def check_table(checks: Sequence[SubjectCheck]) -> list[str]:
    header = (
        "subject",
        "shape",
        "spacing (mm)",
        "orient",
        "lesion vox / ml",
        "status",
        "first problem",
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
                fmt_shape(check.shape) if check.shape else "-",
                fmt_spacing(check.spacing) if check.spacing else "-",
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
