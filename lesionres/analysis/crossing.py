"""The crossing resolution: down to which voxel size each method stays within the margin.

Per method (resolution curve): the largest voxel size that is still non-inferior (it and every
finer level of the method), and where the curve of means (as the resolution figure draws it)
crosses the margin's limit, the reference mean minus the margin (plus, for an error metric),
linear between tested resolutions, with a bootstrap interval over scans (the same resampled
scans under every condition).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis.bootstrap import _count_vectors
from lesionres.analysis.resolution_axis import resolution_axis
from lesionres.analysis.results_table import _block, harmonise_labels

__all__ = [
    "CROSSING_COLUMNS",
    "margin_crossing",
]


#: Columns of :func:`margin_crossing` (``model`` first when the table has models).
CROSSING_COLUMNS: tuple[str, ...] = (
    "metric", "method", "reference", "margin", "direction", "x_axis", "levels",
    "largest_noninferior", "largest_noninferior_mm", "crossing_mm", "crossing_low",
    "crossing_high", "ci_level", "n", "note",
)  # fmt: skip


def _crossings(diffs: np.ndarray, x: np.ndarray, x0: float, margin: float) -> np.ndarray:
    """Where each row of better-oriented mean differences first falls below ``-margin``.

    ``diffs`` is (replicates, levels) at resolutions ``x`` (ascending); the reference sits at
    ``x0`` with difference 0. Linear between the last level inside and the first outside;
    ``inf`` when no level falls below (the crossing lies beyond the largest tested).
    """
    below = np.nan_to_num(diffs, nan=0.0) < -margin
    hit = below.any(axis=1)
    j = below.argmax(axis=1)
    xs = np.concatenate([[x0], x])
    ds = np.column_stack([np.zeros(len(diffs)), np.nan_to_num(diffs, nan=0.0)])
    rows = np.arange(len(diffs))
    d_in, d_out = ds[rows, j], ds[rows, j + 1]
    x_in, x_out = xs[j], xs[j + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(d_in != d_out, (-margin - d_in) / (d_out - d_in), 0.0)
    return np.where(hit, x_in + frac * (x_out - x_in), np.inf)


def _gaps(weights: np.ndarray, values: np.ndarray, valid: np.ndarray, sign: float) -> np.ndarray:
    """Better-oriented mean of each level minus the reference's (column 0), per weight row."""
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ (values * valid)) / (weights @ valid)
    return sign * (means[:, 1:] - means[:, :1])


def margin_crossing(
    df: pd.DataFrame,
    table: pd.DataFrame,
    *,
    source_spacing: Any = None,
    n_boot: int = 2000,
    seed: int = 0,
    match: str = "strict",
) -> pd.DataFrame:
    """Per method (resolution curve): the largest non-inferior voxel size, and the crossing.

    ``largest_noninferior`` is the coarsest level of the method that is ``non-inferior`` or
    ``equivalent`` with every finer level so too (read from ``table``'s verdicts; empty when
    the finest degraded level is not). ``crossing_mm`` is where the resolution figure's curve
    of means (each condition over its scans with a value, failed rows out) crosses the
    reference mean worsened by the margin, linear between the tested resolutions; its interval
    is the percentile bootstrap at ``table``'s CI level over scans, the same resampled scans
    under every condition (``inf``: beyond the largest tested resolution). The x axis is the
    figure's (:func:`lesionres.analysis.figures.resolution_axis`).

    Args:
        df: results table.
        table: :func:`compare_to_reference` output for ``df``.
        source_spacing: see :func:`lesionres.analysis.figures.resolution_table`.
        n_boot: bootstrap resamples over scans.
        seed: bootstrap seed.
        match: see :func:`lesionres.analysis.harmonise_labels`.

    Returns:
        One row per (model,) metric and method with :data:`CROSSING_COLUMNS`.
    """
    has_model = "model" in table.columns
    lead = (["model"] if has_model else []) + list(CROSSING_COLUMNS)
    df = harmonise_labels(df, match)  # type: ignore[arg-type]
    axis = resolution_axis(df, source_spacing) if len(table) else None
    if axis is None:
        return pd.DataFrame(columns=lead)
    x_name = "effective resolution" if axis.attrs["measured"] else "voxel"
    rows: list[dict[str, Any]] = []
    keys = ["model", "metric"] if has_model else ["metric"]
    for key, block in table.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        sub = df[df["model"].astype(str) == key[0]] if has_model else df
        rows += _crossing_rows(sub, block, axis, x_name, n_boot, seed)
    return pd.DataFrame.from_records(rows).reindex(columns=lead)


def _crossing_rows(
    df: pd.DataFrame, block: pd.DataFrame, axis: pd.DataFrame, x_name: str, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """:func:`margin_crossing` for one (model,) metric."""
    first = block.iloc[0]
    metric, reference, margin = first["metric"], first["reference"], float(first["margin"])
    sign = 1.0 if first["direction"] == "higher" else -1.0
    level = float(first["ci_level"])
    verdict = dict(zip(block["condition"], block["verdict"], strict=True))
    ref_axis = axis[axis["condition"] == reference]
    if ref_axis.empty:
        return []
    ref_block = _block(df, metric, reference)
    out = []
    for curve in pd.unique(axis.loc[~axis["is_reference"], "curve"]):
        levels = axis[(axis["curve"] == curve) & axis["condition"].isin(verdict)]
        if levels.empty:
            continue
        levels = levels.sort_values("x", kind="stable")
        aniso = bool(levels["aniso"].iloc[0])
        x0 = float(ref_axis["x"].iloc[0])
        # the figure's means: each condition over its own valid scans (the reference first);
        # scans x conditions, an invalid value weighs 0
        values = np.zeros((len(ref_block), len(levels) + 1))
        valid = np.zeros_like(values)
        for k, cond in enumerate([reference, *levels["condition"]]):
            c = _block(df, metric, cond).reindex(ref_block.index)
            ok = ~c["failed"].fillna(True).to_numpy(bool) & c["value"].notna().to_numpy()
            values[ok, k], valid[ok, k] = c["value"].to_numpy()[ok], 1.0
        x = levels["x"].to_numpy(float)
        ones = np.ones((1, len(values)))
        estimate = float(_crossings(_gaps(ones, values, valid, sign), x, x0, margin)[0])
        lo = hi = np.nan
        if n_boot > 0 and len(values):
            counts = _count_vectors(len(values), n_boot, np.random.default_rng(seed))
            gaps = _gaps(counts.astype(float), values, valid, sign)
            crossing = _crossings(gaps, x, x0, margin)
            tail = 100 * (1 - level) / 2  # no interpolation next to an inf replicate
            lo = float(np.percentile(crossing, tail, method="lower"))
            hi = float(np.percentile(crossing, 100 - tail, method="higher"))
        largest, largest_mm = "", np.nan
        for cond, xk in zip(levels["condition"], x, strict=True):
            if verdict[cond] not in ("equivalent", "non-inferior"):
                break
            largest, largest_mm = cond, xk
        note = ""
        if not np.isfinite(estimate):
            note = f"the curve stays within the margin up to the largest tested ({x.max():g} mm)"
        rec = dict(
            metric=metric, method=curve, reference=reference, margin=margin,
            direction=first["direction"],
            x_axis=f"{x_name} ({'largest edge' if aniso else 'edge'}, mm)",
            levels=";".join(f"{c}={xl}" for c, xl in zip(levels["condition"], levels["x_label"],
                                                         strict=True)),
            largest_noninferior=largest, largest_noninferior_mm=largest_mm,
            crossing_mm=estimate, crossing_low=lo, crossing_high=hi, ci_level=level,
            n=int(len(values)), note=note,
        )  # fmt: skip
        if "model" in block.columns:
            rec["model"] = first["model"]
        out.append(rec)
    return out
