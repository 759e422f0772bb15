"""``python -m lesionres score PRED GT``: score any tool's masks exactly like ours.

Predictions from nnU-Net, MONAI or anything else are matched to ground-truth masks by subject
id (the BIDS ``sub-`` label when present, else the file name without known suffixes), scored
with :func:`lesionres.metrics.score_masks` on the ground truth's grid, and written to the same
results table that ``test`` writes.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lesionres.data.grid import spacing_of
from lesionres.data.io import load_volume
from lesionres.data.layouts import NIFTI_SUFFIXES
from lesionres.data.validation import read_mask
from lesionres.errors import LesionresError
from lesionres.metrics import score_masks
from lesionres.results import RESULT_COLUMNS, read_rows, write_rows

__all__ = ["match_masks", "score_main", "score_pair", "subject_key"]

_SUFFIXES = re.compile(
    r"(_space-[^_]+)?(_label-L)?(_desc-[^_]+)?_(mask|msk|seg|pred|prediction|probseg|label|lesion)$"
)


def subject_key(path: Path) -> str:
    """Matching key of a mask file: its ``sub-`` label, else its stem without mask suffixes."""
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    match = re.search(r"sub-[A-Za-z0-9]+", name)
    return match.group(0) if match else _SUFFIXES.sub("", name)


def _nifti_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise LesionresError(f"{path}: no such file or folder")
    return sorted(p for p in path.rglob("*") if p.name.endswith(NIFTI_SUFFIXES) and p.is_file())


def match_masks(pred: Path, gt: Path) -> list[tuple[str, Path, Path]]:
    """Pairs ``(subject id, prediction, ground truth)``; two single files always pair."""
    if pred.is_file() and gt.is_file():
        return [(subject_key(gt), pred, gt)]
    predictions = {}
    for file in _nifti_files(pred):
        key = subject_key(file)
        if key in predictions:
            raise LesionresError(f"{file}: two predictions for {key} (also {predictions[key]})")
        predictions[key] = file
    truths = {subject_key(f): f for f in _nifti_files(gt)}
    pairs = [(key, predictions[key], truths[key]) for key in sorted(truths) if key in predictions]
    if not pairs:
        raise LesionresError(
            f"{pred}: no prediction matches a ground-truth mask in {gt} by subject id "
            f"(e.g. ground truth {next(iter(truths), 'none')})"
        )
    return pairs


def score_pair(
    pred_path: Path,
    gt_path: Path,
    threshold: float = 0.5,
    connectivity: int = 26,
    empty: str = "one",
    atol: float = 1e-4,
) -> dict:
    """Score one prediction file against one ground-truth file on the ground truth's grid."""
    truth, gt_affine = read_mask(gt_path)
    prediction, pred_affine = load_volume(pred_path)
    if prediction.shape != truth.shape:
        raise LesionresError(
            f"{pred_path}: shape {prediction.shape} differs from ground truth {gt_path} "
            f"{truth.shape}; "
            "resample the prediction onto the ground truth's grid first"
        )
    difference = float(np.abs(pred_affine - gt_affine).max())
    if difference > atol:
        raise LesionresError(
            f"{pred_path}: affine differs from ground truth {gt_path} by {difference:.2g} mm "
            f"(tolerance {atol:g}); the masks are not on the same grid"
        )
    return score_masks(
        prediction >= threshold,
        truth > 0,
        spacing_of(gt_affine),
        connectivity=connectivity,
        empty=empty,
    )


def score_main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``score``."""
    parser = argparse.ArgumentParser(prog="lesionres score", description=__doc__.split("\n\n")[0])
    parser.add_argument("pred", type=Path, help="prediction mask file or folder")
    parser.add_argument("gt", type=Path, help="ground-truth mask file or folder")
    parser.add_argument(
        "--out", type=Path, default=Path("results.csv"), help="results table (appended, resumable)"
    )
    parser.add_argument("--condition", default="external", help="condition label for these rows")
    parser.add_argument("--dataset", default="", help="dataset label for these rows")
    parser.add_argument(
        "--model", default="", help="model label (e.g. nnunet), compared per condition by analyze"
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="binarise predictions at this value"
    )
    parser.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=26)
    parser.add_argument(
        "--empty", choices=("one", "nan"), default="one", help="both-empty convention"
    )
    parser.add_argument("--atol", type=float, default=1e-4, help="affine tolerance in mm")
    args = parser.parse_args(argv)

    pairs = match_masks(args.pred, args.gt)

    # resume: keep rows already scored for this condition, retry the ones that failed
    def ours(row: dict) -> bool:
        return row["condition"] == args.condition and row.get("model", "") == args.model

    kept = [r for r in read_rows(args.out) if not ours(r) or not r["error"]]
    done = {r["subject_id"] for r in kept if ours(r)}
    write_rows(args.out, kept)
    with args.out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        for subject, pred, gt in tqdm(pairs, desc="scoring", unit="scan", disable=len(pairs) < 5):
            if subject in done:
                continue
            row = {
                "subject_id": subject,
                "dataset": args.dataset,
                "condition": args.condition,
                "model": args.model,
                "method": "external",
                "threshold": args.threshold,
                "error": "",
            }
            try:
                row.update(
                    score_pair(pred, gt, args.threshold, args.connectivity, args.empty, args.atol)
                )
            except (LesionresError, ValueError) as error:  # recorded; the other scans go on
                row["error"] = str(error)
                print(f"error: {error}")
            writer.writerow(row)
            handle.flush()
    print(f"Scored {len(pairs)} scans into {args.out}")
    return 0
