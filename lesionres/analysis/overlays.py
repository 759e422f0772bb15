"""Overlay figures: ground-truth vs predicted contours of example scans, per condition.

Predictions are found in ``DIR/<condition>/`` (as ``lesionres test --save_predictions``
writes them). The ground truth and image of a scan are the results table's ``mask_path`` and
``image_path`` when its rows carry them and the files exist; tables without them (older
tables, ``score`` of another tool's masks) fall back to file names: see
:mod:`lesionres.analysis.report` for the patterns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from lesionres.analysis.plotting import _GT_COLOUR, _PRED_COLOUR, _finish
from lesionres.analysis.results_table import _text, condition_order
from lesionres.errors import LesionresError

__all__ = [
    "find_prediction_examples",
    "overlay_figure",
]


_GT_PATTERN = re.compile(r"(_gt|_label[^/]*|lesion_mask|_msk|_mask)\.nii(\.gz)?$", re.IGNORECASE)


_IMAGE_PATTERN = re.compile(r"(_image|_img|_t1w|_dwi|_flair|_adc)\.nii(\.gz)?$", re.IGNORECASE)


def _belongs(name: str, subject: str) -> bool:
    return name == subject or name.startswith(subject + "_") or name.startswith(subject + ".")


def _nifti_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and re.search(r"\.nii(\.gz)?$", p.name)]


def _is_prediction(name: str) -> bool:
    low = name.lower()
    return "probseg" not in low and ("desc-lesion_mask" in low or "pred" in low)


def find_prediction_examples(
    predictions_dir: str | Path,
    df: pd.DataFrame,
    n_examples: int = 1,
    data_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Pick example scans with saved predictions (layout: see the module docstring).

    Scans with a ground truth and predictions under the most conditions are preferred; among
    them the examples sit at evenly spaced quantiles of the ground-truth volume (one example:
    the median scan), so they are typical rather than best-case.

    Args:
        predictions_dir: the predictions folder (one sub-folder per condition).
        df: results table (conditions, subject ids, ground-truth volumes).
        n_examples: how many scans.
        data_root: dataset folder holding the ground truth and images, if not in
            ``predictions_dir``.

    Returns:
        ``[{"subject_id", "image", "gt", "preds": {condition: path}}, ...]`` (may be empty).

    Raises:
        LesionresError: a folder does not exist.
    """
    root = Path(predictions_dir)
    if not root.is_dir():
        raise LesionresError(f"{root}: predictions folder does not exist")
    conditions = condition_order(df)
    files = _nifti_files(root)
    in_condition = [p for p in files if p.parent.name in conditions and p.parent.parent == root]
    taken = set(in_condition)
    reference = [p for p in files if p not in taken]
    if data_root is not None:
        if not Path(data_root).is_dir():
            raise LesionresError(f"{data_root}: data root does not exist")
        reference += _nifti_files(Path(data_root))
    volumes = pd.Series(dtype=float)
    if "gt_volume_ml" in df.columns:
        gt_ml = pd.to_numeric(df["gt_volume_ml"], errors="coerce")
        volumes = gt_ml.groupby(df["subject_id"].astype(str)).max()
    candidates = []
    recorded = _recorded_paths(df)
    for sid in pd.unique(df["subject_id"].astype(str)):
        preds: dict[str, Path] = {}
        for p in sorted(in_condition):
            if _belongs(p.name, sid) and _is_prediction(p.name):
                preds.setdefault(p.parent.name, p)
        if not preds:
            continue
        gt, image = recorded.get(sid, ([], []))
        if not gt:  # a table without paths (older, or another tool's masks): by file name
            mine = sorted(
                p for p in reference if _belongs(p.name, sid) and not _is_prediction(p.name)
            )
            gt = [p for p in mine if _GT_PATTERN.search(p.name)]
            image = image or [p for p in mine if _IMAGE_PATTERN.search(p.name)]
        if gt:
            candidates.append(
                dict(subject_id=sid, image=image[0] if image else None, gt=gt[0], preds=preds,
                     volume=float(volumes.get(sid, np.nan)))
            )  # fmt: skip
    if not candidates:
        return []
    most = max(len(c["preds"]) for c in candidates)
    pool = sorted(
        (c for c in candidates if len(c["preds"]) == most),
        key=lambda c: (np.nan_to_num(c["volume"], nan=np.inf), c["subject_id"]),
    )
    qs = np.linspace(0, 1, n_examples + 2)[1:-1]
    picks = sorted({int(round(q * (len(pool) - 1))) for q in qs})
    return [{k: v for k, v in pool[i].items() if k != "volume"} for i in picks]


def _recorded_paths(df: pd.DataFrame) -> dict[str, tuple[list[Path], list[Path]]]:
    """Subject id -> ([mask], [image]) from the rows' ``mask_path`` / ``image_path`` that exist."""
    out: dict[str, tuple[list[Path], list[Path]]] = {}
    if "mask_path" not in df.columns:
        return out
    image = _text(df["image_path"]) if "image_path" in df.columns else None
    for i, (sid, mask) in enumerate(
        zip(_text(df["subject_id"]), _text(df["mask_path"]), strict=True)
    ):
        if sid in out or not mask or not Path(mask).is_file():
            continue
        shown = image.iloc[i] if image is not None else ""
        out[sid] = ([Path(mask)], [Path(shown)] if shown and Path(shown).is_file() else [])
    return out


def _load_canonical(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a NIfTI reoriented to RAS (so axial slices look the same whatever the storage)."""
    import nibabel as nib  # lazy: the statistics need no imaging library

    path = Path(path)
    if not path.exists():
        raise LesionresError(f"{path}: file does not exist")
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as error:  # nibabel raises many types for a bad file
        raise LesionresError(
            f"{path}: unreadable NIfTI ({type(error).__name__}: {error})"
        ) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise LesionresError(f"{path}: expected a 3D volume, found shape {data.shape}")
    return data, np.asarray(img.affine)


def overlay_figure(
    image_path: str | Path | None,
    gt_path: str | Path,
    pred_paths: Mapping[str, str | Path],
    out: str | Path | None = None,
    *,
    title: str | None = None,
    margin: int = 20,
) -> Figure:
    """Ground-truth vs predicted contours per condition, on the axial slice through the
    largest ground-truth lesion.

    The first panel shows the whole slice with the zoomed region boxed; one zoomed panel per
    condition follows, with its whole-volume Dice in the title. Volumes are reoriented to RAS
    and shown in neurological convention (patient's right on the right).

    Args:
        image_path: the original image (``None``: contours on black).
        gt_path: ground-truth mask.
        pred_paths: condition -> predicted mask on the ground truth's grid.
        out: path without extension to save PNG + PDF.
        title: figure title (default: the ground-truth file name).
        margin: voxels around the lesion in the zoomed panels.

    Raises:
        LesionresError: unreadable file, empty ground truth, or a prediction on another grid.
    """
    from scipy import ndimage

    gt, gt_affine = _load_canonical(gt_path)
    gt = gt > 0.5
    if not gt.any():
        raise LesionresError(
            f"{gt_path}: empty ground-truth mask: no lesion to centre the slice on"
        )
    image = None
    if image_path is not None:
        image, _ = _load_canonical(image_path)
        if image.shape != gt.shape:
            raise LesionresError(
                f"{image_path}: shape {image.shape} differs from the mask's {gt.shape}"
            )
    preds = {}
    for cond, p in pred_paths.items():
        pred, affine = _load_canonical(p)
        if pred.shape != gt.shape or not np.allclose(affine, gt_affine, atol=1e-3):
            raise LesionresError(
                f"{p}: prediction grid {pred.shape} differs from the ground truth's {gt.shape} "
                f"({gt_path}); predictions must be resampled back to the mask's grid"
            )
        preds[cond] = pred > 0.5
    labels, n = ndimage.label(gt, structure=np.ones((3, 3, 3)))
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    comp = labels == largest
    z = int(np.argmax(comp.sum(axis=(0, 1))))
    xs, ys = np.nonzero(comp[:, :, z])
    x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, gt.shape[0])
    y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, gt.shape[1])

    def show(ax: Any, arr2d: np.ndarray, crop: bool) -> None:
        sl = arr2d[x0:x1, y0:y1] if crop else arr2d
        ax.imshow(np.rot90(sl), cmap="gray", interpolation="nearest")  # rot90: anterior up, R right

    def contour(ax: Any, mask2d: np.ndarray, colour: str, style: str, crop: bool) -> None:
        m = (mask2d[x0:x1, y0:y1] if crop else mask2d).astype(float)
        if m.any():
            ax.contour(np.rot90(m), levels=[0.5], colors=[colour], linewidths=1.3, linestyles=style)

    base = image[:, :, z] if image is not None else np.zeros(gt.shape[:2], dtype=np.float32)
    ncols = 1 + len(preds)
    fig = Figure(figsize=(3.0 * ncols, 3.6))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    ax = axes[0]
    show(ax, base, False)
    contour(ax, gt[:, :, z], _GT_COLOUR, "solid", False)
    # rot90 maps (x, y) to (column x, row ny-1-y)
    ny = gt.shape[1]
    box = Rectangle(
        (x0 - 0.5, ny - y1 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="yellow", linewidth=1
    )
    ax.add_patch(box)
    ax.set_title(f"axial slice z={z}\n({n} GT lesion(s))", fontsize=9)
    for ax_i, (cond, pred) in zip(axes[1:], preds.items(), strict=False):
        inter = np.logical_and(pred, gt).sum()
        denom = pred.sum() + gt.sum()
        dice = 2 * inter / denom if denom else 1.0
        show(ax_i, base, True)
        contour(ax_i, gt[:, :, z], _GT_COLOUR, "solid", True)
        contour(ax_i, pred[:, :, z], _PRED_COLOUR, "dashed", True)
        ax_i.set_title(f"{cond}\nDice {dice:.3f} (whole volume)", fontsize=9)
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
        a.text(0.02, 0.5, "L", transform=a.transAxes, color="white", fontsize=8, va="center")
        a.text(0.98, 0.5, "R", transform=a.transAxes, color="white", fontsize=8, va="center",
               ha="right")  # fmt: skip
    fig.legend(
        handles=[
            Line2D([], [], color=_GT_COLOUR, linewidth=1.5, label="ground truth"),
            Line2D(
                [], [], color=_PRED_COLOUR, linewidth=1.5, linestyle="dashed", label="prediction"
            ),
        ],
        loc="lower center", ncol=2, fontsize=8, frameon=False,
    )  # fmt: skip
    fig.suptitle(title or f"{Path(gt_path).name}: ground truth vs prediction", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, out)
