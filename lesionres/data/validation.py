"""``python -m lesionres check ROOT``: check a dataset before training and print the table.

Every file is read completely (:mod:`lesionres.data.subject_check`, with the mask rules of
:mod:`lesionres.data.masks`) and every problem is named, with its file, in plain words. What
the finders saw in the folders (an image without its mask, an unreadable folder;
:func:`lesionres.data.layouts.discover`) and the problems of the dataset as such
(:mod:`lesionres.data.dataset_check`) are reported beside it, so one run lists every problem of
a dataset. ``fit`` and ``test`` run the same checks, cached
(:mod:`lesionres.data.run_check`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from lesionres.data.dataset_check import check_records, dataset_findings, load_split
from lesionres.data.findings import count
from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX, discover
from lesionres.data.masks import DEFAULT_ATOL_MM, Binarize
from lesionres.data.subject_check import SubjectCheck, fmt_shape, fmt_spacing
from lesionres.errors import LesionresError

__all__ = ["check_main"]


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


def check_main(argv: Sequence[str] | None = None) -> int:
    """``python -m lesionres check ROOT``: check every subject, print a table and a summary.

    Problems of the folders (an image without its mask, a mask without its image, an
    unreadable folder) are findings like the others: every other subject is still read and the
    whole table printed. Files that match no expected name are listed with ``-v``.

    Returns:
        0 when no error (warnings allowed), 1 when any error, 2 when no subject is found at all
        or the options are wrong (one line on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m lesionres check",
        description="Read every image and mask completely and report each problem by file: "
        "images without masks and masks without images, unreadable folders, truncated or "
        "corrupt files, NaN/Inf, constant images, non-binary or empty masks, image/mask shape "
        "or affine mismatch, duplicate ids, leaks between splits.",
    )
    parser.add_argument("root", type=Path, help="dataset folder (or a CSV of image,mask)")
    parser.add_argument(
        "--dataset",
        choices=["auto", "atlas", "isles22", "folder", "synthetic"],
        default="auto",
        help="layout (default: guessed from the file names; synthetic reads like atlas)",
    )
    parser.add_argument(
        "--modality", choices=["dwi", "adc", "flair"], default="dwi", help="ISLES 2022 image"
    )
    parser.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL_MM,
        help="tolerance on the image/mask affine difference in mm (default 1e-5)",
    )
    parser.add_argument(
        "--binarize",
        choices=list(get_args(Binarize)),
        default="strict",
        help="non-binary masks: strict = error, nonzero = > 0 is lesion, "
        "half = >= half the maximum (values within 1e-3 of 0/1 are always rounded)",
    )
    parser.add_argument("--split", type=Path, help="split JSON (train/val/test id lists)")
    parser.add_argument("--workers", type=int, default=2, help="threads reading files")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list infos (e.g. files not used)"
    )
    args = parser.parse_args(None if argv is None else list(argv))

    try:
        if not args.root.exists():
            raise LesionresError(f"{args.root}: does not exist")
        kind = _detect_kind(args.root) if args.dataset == "auto" else args.dataset
        found = discover(kind, args.root, modality=args.modality)
        records = found.records
        split = load_split(args.split) if args.split is not None else None
        checks = check_records(
            records,
            split,
            atol_mm=args.atol,
            binarize=args.binarize,
            split_path=args.split,
            workers=args.workers,
        )
    except LesionresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    extra = found.findings + dataset_findings(records, split, args.split)

    detected = " (detected)" if args.dataset == "auto" else ""
    n_subjects = len({r.subject_id for r in records})
    rows = f" ({len(records)} rows: an id found twice)" if n_subjects != len(records) else ""
    print(
        f"{count(n_subjects, 'subject')}{rows} in {args.root}: dataset {kind}{detected}, "
        f"binarize {args.binarize}, affine tolerance {args.atol:g} mm"
    )
    print()
    print("\n".join(_table(checks)))
    print()
    n_error = sum(c.status == "error" for c in checks)
    n_warning = sum(c.status == "warning" for c in checks)
    n_ok = len(checks) - n_error - n_warning
    print(f"{n_ok} ok, {n_warning} with warnings, {n_error} with errors")
    findings = [f for c in checks for f in c.findings] + extra
    levels: list[tuple[str, str]] = [("error", "Errors"), ("warning", "Warnings")]
    if args.verbose:
        levels.append(("info", "Notes"))
    for level, title in levels:
        listed = list(dict.fromkeys(f for f in findings if f.level == level))  # once each
        if listed:
            print(f"\n{title} ({len(listed)}):")
            for finding in listed:
                print(f"  {finding}")
    has_error = n_error > 0 or any(f.level == "error" for f in extra)
    if has_error:
        print("\nFix the errors above before training (fit/test stop on them).")
    return 1 if has_error else 0
