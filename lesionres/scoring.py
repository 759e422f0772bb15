"""``python -m lesionres score PRED GT``: score any tool's masks exactly like ours.

Predictions from nnU-Net, MONAI or anything else are matched to ground-truth masks by subject
id, scored with :func:`lesionres.metrics.score_masks` on the ground truth's grid, and written to
the same results table that ``test`` writes. With ``--dataset atlas|isles22|folder``, ``GT`` is
that dataset's root and its layout gives the masks, the subject ids and the ``dataset`` label,
exactly as ``test`` does, so that rows of both are paired by ``analyze``. Every ground truth gets
a row: a scan the tool did not predict is a failure (``--missing error``, an error row) or an
empty mask (``--missing empty``, the ATLAS/ISLES challenge convention: Dice 0), never left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from lesionres.data.grid import spacing_of
from lesionres.data.io import load_volume
from lesionres.data.layouts import NIFTI_SUFFIXES, describe_scans, find_subjects
from lesionres.data.masks import read_mask
from lesionres.errors import LesionresError
from lesionres.files import CsvAppender, strip_image_suffix
from lesionres.metrics import score_masks
from lesionres.results import RESULT_COLUMNS, read_rows, record_settings, write_rows

__all__ = [
    "NO_PREDICTION",
    "Matching",
    "ScoreOutcome",
    "ScoreSettings",
    "match_masks",
    "score_condition",
    "score_pair",
    "subject_key",
]

_SUFFIXES = re.compile(
    r"(_space-[^_]+)?(_label-L)?(_desc-[^_]+)?_(mask|msk|seg|pred|prediction|probseg|label|lesion)$"
)
NO_PREDICTION = "no prediction"


def subject_key(path: Path) -> str:
    """Matching key of a mask file: its ``sub-`` label, else its stem without mask suffixes."""
    name = strip_image_suffix(path.name)
    match = re.search(r"sub-[A-Za-z0-9]+", name)
    return match.group(0) if match else _SUFFIXES.sub("", name)


def _nifti_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise LesionresError(f"{path}: no such file or folder")
    return sorted(p for p in path.rglob("*") if p.name.endswith(NIFTI_SUFFIXES) and p.is_file())


@dataclass
class Matching:
    """Ground truths and the predictions found for them.

    Attributes:
        truths: Subject id -> ground-truth mask, every scan to score.
        predictions: Subject id -> prediction file, for the subjects that have exactly one.
        problems: Subject id -> why its prediction cannot be used (e.g. two files for it).
        unmatched: Prediction files that match no ground truth.
    """

    truths: dict[str, Path]
    predictions: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    unmatched: list[Path] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Ground truths without a prediction."""
        return [s for s in self.truths if s not in self.predictions and s not in self.problems]


def match_masks(pred: Path, truths: dict[str, Path]) -> Matching:
    """Match prediction files to ground truths by subject id (``sub-`` prefix optional).

    Every problem is collected, none raised, so one run lists them all.

    Args:
        pred: A prediction file or a folder searched recursively.
        truths: Subject id -> ground-truth mask.
    """
    matching = Matching(truths=dict(sorted(truths.items())))
    if pred.is_file() and len(truths) == 1:  # two single files always pair
        matching.predictions[next(iter(truths))] = pred
        return matching
    found: dict[str, list[Path]] = {}
    for file in _nifti_files(pred):
        key = subject_key(file)
        if key not in truths and f"sub-{key}" in truths:  # nnU-Net style names drop "sub-"
            key = f"sub-{key}"
        if key in truths:
            found.setdefault(key, []).append(file)
        else:
            matching.unmatched.append(file)
    for key, files in found.items():
        if len(files) == 1:
            matching.predictions[key] = files[0]
        else:
            matching.problems[key] = f"{len(files)} predictions: {', '.join(map(str, files))}"
    return matching


def _ground_truths(gt: Path, dataset: str | None, modality: str, binarize: str) -> dict:
    """Subject id -> mask path, and the row labels every scan of ``gt`` gets."""
    if dataset is None:
        files = _nifti_files(gt)
        truths: dict[str, Path] = {}
        for file in files:
            key = subject_key(file)
            if key in truths:
                raise LesionresError(f"{file}: a second ground truth for {key} ({truths[key]})")
            truths[key] = file
        return {"truths": truths, "labels": {"dataset": "", "modality": "", "space": ""}}
    records = find_subjects(dataset, gt, modality if dataset == "isles22" else "dwi")
    described = describe_scans(dataset, modality if dataset != "atlas" else "")
    return {
        "truths": {r.subject_id: r.mask for r in records},
        "labels": {"dataset": records[0].dataset if records else dataset, **described},
    }


@dataclass(frozen=True)
class ScoreSettings:
    """How prediction masks are read and scored (the conventions go to ``results.json``).

    Attributes:
        threshold: Predictions read as values are lesion where ``>= threshold``.
        connectivity: Lesion connectivity (6, 18, 26).
        empty: Both-empty convention, ``one`` or ``nan``.
        hd95: HD95 aggregation, ``pooled`` (medpy) or ``max`` (MONAI).
        binarize: How ground-truth mask values become lesion (as ``--data.binarize``).
        atol: Affine tolerance in mm.
        missing: A ground truth without prediction: ``error`` row or scored as ``empty``.
        prediction_binarize: ``None`` thresholds predictions at ``threshold`` (``score``: a
            probability map is accepted); ``strict`` / ``nonzero`` / ``half`` reads them with
            the mask rules instead, so a non-binary output is an error unless asked for.
    """

    threshold: float = 0.5
    connectivity: int = 26
    empty: str = "one"
    hd95: str = "pooled"
    binarize: str = "strict"
    atol: float = 1e-4
    missing: str = "error"
    prediction_binarize: str | None = None


def _check_grid(path: Path, shape: tuple, affine: np.ndarray, reference: tuple, what: str,
                atol: float) -> None:  # fmt: skip
    """One line when a prediction does not lie on ``reference`` = (shape, affine, file)."""
    ref_shape, ref_affine, ref_path = reference
    if tuple(shape) != tuple(ref_shape):
        raise LesionresError(
            f"{path}: shape {tuple(shape)} differs from {what} {ref_path} {tuple(ref_shape)}; "
            f"resample the prediction onto the {what}'s grid first"
        )
    difference = float(np.abs(affine - ref_affine).max())
    if difference > atol:
        raise LesionresError(
            f"{path}: affine differs from {what} {ref_path} by {difference:.2g} mm "
            f"(tolerance {atol:g}); the masks are not on the same grid"
        )


def _nearest_onto(mask: np.ndarray, affine: np.ndarray, shape: tuple, target: np.ndarray):
    """``mask`` resampled onto the grid ``(shape, target)``: each voxel takes the value of the
    source voxel containing its centre (a coarse mask covers its whole footprint)."""
    matrix = np.linalg.inv(affine) @ target  # target voxel -> world -> source voxel
    return ndimage.affine_transform(
        mask.astype(np.uint8), matrix[:3, :3], matrix[:3, 3], output_shape=shape, order=0,
        mode="nearest",
    ).astype(bool)  # fmt: skip


def score_pair(
    pred_path: Path | None,
    gt_path: Path,
    threshold: float = 0.5,
    connectivity: int = 26,
    empty: str = "one",
    atol: float = 1e-4,
    hd95: str = "pooled",
    binarize: str = "strict",
    *,
    prediction_binarize: str | None = None,
    input_image: Path | None = None,
) -> dict:
    """Score one prediction file against one ground-truth file on the ground truth's grid.

    ``pred_path=None`` scores an empty prediction (a scan the tool did not produce).

    Args:
        pred_path: The prediction mask, or ``None``.
        gt_path: The ground-truth mask.
        threshold: Predictions read as values are lesion where ``>= threshold``.
        connectivity: Lesion connectivity.
        empty: Both-empty convention.
        atol: Affine tolerance in mm.
        hd95: HD95 aggregation.
        binarize: How ground-truth values become lesion.
        prediction_binarize: See :class:`ScoreSettings`.
        input_image: The image the prediction was made from: the prediction must lie on its
            grid, and is mapped onto the ground truth's grid (nearest) where that differs
            (images on a simulated acquisition's coarse grid). ``None``: it must lie on the
            ground truth's grid.

    Raises:
        LesionresError: the prediction is unreadable, not binary (``prediction_binarize``
            ``strict``) or on another grid; the message names the file.
    """
    truth, gt_affine = read_mask(gt_path, binarize)  # type: ignore[arg-type]
    if pred_path is None:
        prediction = np.zeros(truth.shape, bool)
    else:
        if prediction_binarize is None:
            values, pred_affine = load_volume(pred_path)
            prediction = values >= threshold
        else:
            values, pred_affine = read_mask(pred_path, prediction_binarize)  # type: ignore[arg-type]
            prediction = values > 0
        if input_image is None:
            reference, what = (truth.shape, gt_affine, gt_path), "ground truth"
        else:
            header = nib.load(str(input_image))
            reference, what = (header.shape[:3], header.affine, input_image), "its input"
        _check_grid(pred_path, prediction.shape, pred_affine, reference, what, atol)
        if prediction.shape != truth.shape or not np.allclose(pred_affine, gt_affine, atol=atol):
            prediction = _nearest_onto(prediction, pred_affine, truth.shape, gt_affine)
    return score_masks(
        prediction,
        truth > 0,
        spacing_of(gt_affine),
        connectivity=connectivity,  # type: ignore[arg-type]
        empty=empty,  # type: ignore[arg-type]
        hd95=hd95,  # type: ignore[arg-type]
    )


@dataclass
class ScoreOutcome:
    """What :func:`score_condition` wrote.

    Attributes:
        written: New rows.
        errors: Subject id -> error of its new row (failed rows only).
    """

    written: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def score_condition(
    table: Path,
    matching: Matching,
    labels: dict[str, dict],
    condition: str,
    model: str,
    settings: ScoreSettings,
    inputs: dict[str, Path] | None = None,
    progress: bool = True,
) -> ScoreOutcome:
    """Score one tool's masks of one condition into ``table``: every ground truth gets a row.

    Resumable: rows of this (model, condition) already scored are kept, failed ones retried.

    Args:
        table: The results CSV (appended; settings recorded in its ``results.json``).
        matching: Ground truths and the predictions found for them.
        labels: Subject id -> the row's other columns (dataset, cohort, modality, space,
            method, factor, spacing_mm, effective_fwhm_mm).
        condition: The ``condition`` column.
        model: The ``model`` column.
        settings: How masks are read and scored.
        inputs: Subject id -> the image each prediction was made from (see
            :func:`score_pair`'s ``input_image``).
        progress: Show a progress bar (from 5 scans).

    Raises:
        LesionresError: settings that differ from those the table's rows were made with.
    """
    record_settings(
        table,
        model,
        connectivity=settings.connectivity,
        empty_convention=settings.empty,
        hd95=settings.hd95,
        threshold=settings.threshold,
    )

    def ours(row: dict) -> bool:
        return row["condition"] == condition and row.get("model", "") == model

    kept = [r for r in read_rows(table) if not ours(r) or not r["error"]]
    done = {r["subject_id"] for r in kept if ours(r)}
    write_rows(table, kept)
    outcome = ScoreOutcome()
    with CsvAppender(table, RESULT_COLUMNS) as appender:
        todo = [s for s in matching.truths if s not in done]
        quiet = not progress or len(todo) < 5
        for subject in tqdm(todo, desc="scoring", unit="scan", disable=quiet):
            row = {
                "subject_id": subject,
                **labels.get(subject, {}),
                "condition": condition,
                "model": model,
                "threshold": settings.threshold,
                "error": matching.problems.get(subject, ""),
            }
            pred = matching.predictions.get(subject)
            if pred is None and not row["error"] and settings.missing == "error":
                row["error"] = NO_PREDICTION
            if not row["error"]:
                try:
                    row.update(
                        score_pair(
                            pred,
                            matching.truths[subject],
                            settings.threshold,
                            settings.connectivity,
                            settings.empty,
                            settings.atol,
                            settings.hd95,
                            settings.binarize,
                            prediction_binarize=settings.prediction_binarize,
                            input_image=(inputs or {}).get(subject),
                        )  # fmt: skip
                    )
                except (LesionresError, ValueError) as error:  # recorded; the others go on
                    row["error"] = str(error)
            if row["error"]:
                outcome.errors[subject] = row["error"]
            outcome.written += 1
            appender.append(row)
    return outcome
