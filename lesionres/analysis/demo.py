"""A synthetic per-scan results table with the real columns, for demos, tests and the notebook.

The numbers are made up (no model, no images): a per-scan latent quality, smaller lesions
being harder, and a shift per test-time condition. Confusion counts are generated first and
every metric is derived from them, so the table is internally consistent. Never report these
numbers as results.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_DEMO_CONDITIONS", "synthetic_results"]

#: ``(condition, method, factor, spacing_mm, dataset, mean Dice-logit shift)``
DEFAULT_DEMO_CONDITIONS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("original", "original", "", "1x1x1", "atlas", 0.0),
    ("crude_x2", "crude", "2", "2x2x2", "atlas", 0.03),
    ("linear_x2", "linear", "2", "2x2x2", "atlas", -0.12),
    ("linear_x3", "linear", "3", "3x3x3", "atlas", -0.35),
    ("acquisition_1x1x3mm", "acquisition", "", "1x1x3", "atlas", -0.08),
    ("acquisition_1x1x5mm", "acquisition", "", "1x1x5", "atlas", -0.25),
    ("isles22", "natural", "", "2x2x2", "isles22", -0.3),
)

_ATLAS_SHAPE = (197, 233, 189)
_ISLES_SHAPE = (112, 112, 73)


def _scores(
    rng: np.random.Generator,
    quality: np.ndarray,
    gt_vox: np.ndarray,
    n_gt_lesions: np.ndarray,
    voxel_ml: float,
    total_vox: int,
) -> dict[str, np.ndarray]:
    n = quality.size
    dice = 1.0 / (1.0 + np.exp(-quality))
    dice = np.clip(dice, 0.0, 0.97)
    floor = dice / (2.0 - dice)  # recall needed for precision <= 1
    recall = floor + (1.0 - floor) * rng.uniform(0.3, 0.95, n)
    precision = np.where(dice > 0, dice * recall / np.maximum(2 * recall - dice, 1e-9), 0.0)
    tp = np.round(recall * gt_vox)
    fn = gt_vox - tp
    pred = np.where(precision > 0, np.round(tp / np.maximum(precision, 1e-9)), 0)
    fp = np.maximum(pred - tp, 0)
    # a few scans where the model predicts nothing at all
    empty = rng.uniform(size=n) < 0.03
    tp, fp, fn = np.where(empty, 0, tp), np.where(empty, 0, fp), np.where(empty, gt_vox, fn)
    tn = total_vox - tp - fp - fn
    pred_vox = tp + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(pred_vox + gt_vox > 0, 2 * tp / (2 * tp + fp + fn), 1.0)
        precision = np.where(pred_vox > 0, tp / pred_vox, np.nan)
        recall = np.where(gt_vox > 0, tp / gt_vox, np.nan)
        rel = np.where(gt_vox > 0, (pred_vox - gt_vox) / gt_vox, np.nan)
    hd95 = np.exp(rng.normal(np.log(6.0) + 2.5 * (0.6 - dice), 0.4))
    hd95 = np.where(pred_vox == 0, np.nan, hd95)
    assd = np.where(pred_vox == 0, np.nan, hd95 / rng.uniform(2.5, 4.0, n))
    pred_lesions = np.where(pred_vox == 0, 0, np.maximum(1, n_gt_lesions + rng.poisson(1.0 - dice)))
    found = np.minimum(n_gt_lesions, np.round(n_gt_lesions * (0.4 + 0.6 * dice)))
    detected = np.where(pred_vox == 0, 0, found)
    lesion_tp = detected
    lesion_fp = np.maximum(pred_lesions - detected, 0)
    lesion_fn = n_gt_lesions - detected
    with np.errstate(invalid="ignore", divide="ignore"):
        lesion_f1 = lesion_tp / (lesion_tp + (lesion_fp + lesion_fn) / 2)
    return dict(
        tp=tp.astype(int),
        fp=fp.astype(int),
        fn=fn.astype(int),
        tn=tn.astype(int),
        dice=dice,
        jaccard=tp / np.maximum(tp + fp + fn, 1),
        precision=precision,
        recall=recall,
        specificity=tn / (tn + fp),
        accuracy=(tp + tn) / total_vox,
        gt_volume_ml=gt_vox * voxel_ml,
        pred_volume_ml=pred_vox * voxel_ml,
        abs_volume_diff_ml=np.abs(pred_vox - gt_vox) * voxel_ml,
        rel_volume_diff=rel,
        pred_lesion_pct=100.0 * pred_vox / total_vox,
        hd95_mm=hd95,
        assd_mm=assd,
        gt_lesions=n_gt_lesions.astype(int),
        pred_lesions=pred_lesions.astype(int),
        lesion_f1=lesion_f1,
        abs_lesion_count_diff=np.abs(pred_lesions - n_gt_lesions).astype(int),
        lesions_detected_frac=detected / n_gt_lesions,
    )


def synthetic_results(
    n_subjects: int = 40,
    n_other_cohort: int = 30,
    *,
    conditions: Sequence[tuple[str, str, str, str, str, float]] = DEFAULT_DEMO_CONDITIONS,
    models: Sequence[str] | None = None,
    n_failed: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Make a synthetic results table (one row per scan x condition [x model]).

    Args:
        n_subjects: ATLAS-like subjects, scored under every condition of dataset ``"atlas"``.
        n_other_cohort: subjects of the other cohort (conditions whose dataset is not atlas).
        conditions: ``(condition, method, factor, spacing_mm, dataset, shift)`` tuples; shift
            moves the Dice logit (negative = worse).
        models: model names (a ``model`` column is added when given).
        n_failed: rows turned into failed rows (``error`` set, metrics empty).
        seed: random seed.

    Returns:
        The table, with the columns of a real ``results.csv``.
    """
    rng = np.random.default_rng(seed)
    subjects: dict[str, dict[str, np.ndarray]] = {}
    for dataset, n, shape, voxel_ml, prefix in (
        ("atlas", n_subjects, _ATLAS_SHAPE, 0.001, "sub-r{:03d}s{:03d}"),
        ("other", n_other_cohort, _ISLES_SHAPE, 0.008, "sub-strokecase{:04d}"),
    ):
        log_mm3 = rng.normal(3.76, 0.93, n)
        gt_vox = np.maximum(np.round(10**log_mm3 / (voxel_ml * 1000)), 3)
        ids = [
            prefix.format(1 + i // 20, 1 + i) if dataset == "atlas" else prefix.format(1 + i)
            for i in range(n)
        ]
        subjects[dataset] = dict(
            ids=np.array(ids),
            gt_vox=gt_vox,
            lesions=1 + rng.geometric(0.55, n) - 1,
            quality=rng.normal(0.45, 0.9, n) + 0.45 * (log_mm3 - 3.76),
            shape=np.array(shape),
            voxel_ml=np.array(voxel_ml),
        )
    frames = []
    for model_i, model in enumerate(models or [None]):
        for cond, method, factor, spacing, dataset, shift in conditions:
            s = subjects["atlas" if dataset == "atlas" else "other"]
            n = s["ids"].size
            if n == 0:
                continue
            small = 1.0 / (1.0 + s["gt_vox"] * float(s["voxel_ml"]))  # small lesions suffer more
            q = s["quality"] + shift * (1 + 2 * small) + 0.15 * model_i + rng.normal(0, 0.12, n)
            if cond == "original":
                q = s["quality"] + 0.15 * model_i
            sc = _scores(
                rng, q, s["gt_vox"], s["lesions"], float(s["voxel_ml"]), int(np.prod(s["shape"]))
            )
            frame = pd.DataFrame(
                dict(
                    subject_id=s["ids"],
                    dataset=dataset,
                    cohort=dataset.upper(),
                    condition=cond,
                    method=method,
                    factor=factor,
                    spacing_mm=spacing,
                    threshold=0.5,
                    **sc,
                    error="",
                )
            )
            if model is not None:
                frame.insert(0, "model", model)
            frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    if n_failed:
        bad = rng.choice(len(df), size=min(n_failed, len(df)), replace=False)
        metric_cols = [c for c in df.columns if c not in (
            "model", "subject_id", "dataset", "cohort", "condition", "method", "factor",
            "spacing_mm", "threshold", "error", "gt_volume_ml", "gt_lesions")]  # fmt: skip
        df.loc[bad, metric_cols] = np.nan
        df.loc[bad, "error"] = "RuntimeError: synthetic failure (demo)"
    return df
