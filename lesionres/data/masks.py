"""The mask rules every run applies: how a lesion mask file becomes a 0/1 array.

``fit``, ``test``, ``score`` and ``check`` read masks through :func:`read_mask`, so a mask means
the same everywhere:

- values exactly 0/1 (any dtype): the mask as is;
- every value within 1e-3 of 0 or 1 (floats such as 0.9999999998): rounded (``check`` warns);
- anything else (``{0, 255}``, labels ``{0, 1, 2}``, probabilities): an error under
  ``binarize="strict"``; ``"nonzero"`` takes every value > 0 as lesion, ``"half"`` every value
  >= half the mask's maximum.

Image and mask must lie on the same grid: :data:`DEFAULT_ATOL_MM` is the tolerance on their
affines' difference (ISLES files differ by ~1e-7, another grid by much more).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np

from lesionres.data.findings import Level
from lesionres.data.io import read_nifti, squeeze_to_3d
from lesionres.errors import LesionresError

__all__ = [
    "BINARY_TOLERANCE",
    "DEFAULT_ATOL_MM",
    "Binarize",
    "affine_difference",
    "binarize_mask",
    "read_mask",
]

Binarize = Literal["strict", "nonzero", "half"]

BINARY_TOLERANCE = 1e-3  # float mask values this close to 0 or 1 are rounded (with a warning)
DEFAULT_ATOL_MM = 1e-5  # ISLES affines differ by ~1e-7 (passes); 1e-3 is another grid (fails)


def _fmt_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.10g}"


def _describe_values(values: np.ndarray) -> str:
    unique = np.unique(values)
    if unique.size <= 6:
        return "{" + ", ".join(_fmt_value(v) for v in unique) + "}"
    return f"{unique.size} distinct values from {_fmt_value(unique[0])} to {_fmt_value(unique[-1])}"


def binarize_mask(
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
    """Read a lesion mask with the mask rules (see the module docstring).

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
    mask, notes = binarize_mask(values, binarize)
    if mask is None:
        raise LesionresError(f"{path}: {notes[0][1]}")
    return mask, affine


def affine_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of two 4x4 affines (mm for the translation column).

    An image and its mask lie on the same grid when their shapes agree and this is within
    :data:`DEFAULT_ATOL_MM` (or the tolerance the user gives).
    """
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())
