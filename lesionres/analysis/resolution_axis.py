"""Each condition's resolution, read from the results table: the x axis of the curves.

The voxel size of a condition comes from its ``spacing_mm`` (or its ``factor`` times the
source spacing), its effective resolution from the measured ``effective_fwhm_mm``; both are
read and written by :mod:`lesionres.resolution`, the one place that formats resolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis.results_table import condition_order
from lesionres.resolution import coarser, degraded_spacing, format_resolution, parse_resolution

__all__ = [
    "parse_resolution",
    "resolution_axis",
    "resolution_table",
]


def resolution_table(df: pd.DataFrame, source_spacing: Any = None) -> pd.DataFrame:
    """The test-time voxel size of each condition, from ``spacing_mm`` (or ``factor``).

    ``spacing_mm`` wins; a condition with only a ``factor`` gets ``factor x`` the source
    spacing: ``source_spacing`` if given, else the ``original`` condition's ``spacing_mm``,
    else 1 mm isotropic (ATLAS) - flagged in ``assumed_source``. The ``original`` condition
    (or the condition whose method is ``original``) is the reference point. ``curve`` groups
    conditions into resolution curves: the method, with anisotropic voxels (thick slices)
    kept apart from isotropic ones.

    Args:
        df: results table with ``condition`` and optionally ``method``, ``factor``,
            ``spacing_mm``, ``dataset``.
        source_spacing: the original images' spacing, e.g. ``"2"`` or ``"1x1x1"``.

    Returns:
        One row per condition: ``condition, method, curve, dataset, spacing,
        voxel_volume_mm3, assumed_source, is_reference``, and ``effective``: per axis the
        coarser of the sample spacing and the measured ``effective_fwhm_mm`` (``""`` when the
        table has none). Both limit what a scan resolves: a blur wider than the voxel
        (``acquisition``), or sampling that aliases without blurring (``linear`` and ``crude``
        keep a narrow line spread at the sample points, so their FWHM alone would put every
        factor at the source's resolution).
    """
    conds = condition_order(df)
    first = df.groupby(df["condition"].astype(str), sort=False).first()
    if "method" in first.columns:
        methods = first["method"].astype(str)
    else:
        methods = pd.Series(conds, index=conds)
    ref = next((c for c in conds if c == "original" or methods.get(c) == "original"), None)
    source = parse_resolution(source_spacing)
    if source is None and ref is not None and "spacing_mm" in first.columns:
        source = parse_resolution(first.loc[ref, "spacing_mm"])
    assumed = source is None
    source = source or (1.0, 1.0, 1.0)
    rows = []
    for c in conds:
        spacing = parse_resolution(first.loc[c, "spacing_mm"] if "spacing_mm" in first else None)
        factor = parse_resolution(first.loc[c, "factor"] if "factor" in first else None)
        effective = parse_resolution(
            first.loc[c, "effective_fwhm_mm"] if "effective_fwhm_mm" in first else None
        )
        used_assumed = False
        if spacing is None and factor is not None:
            spacing = tuple(degraded_spacing(source, factor=factor))
            used_assumed = assumed
        if spacing is None and c == ref:
            spacing, used_assumed = source, assumed
        method = str(methods.get(c, c))
        aniso = (
            spacing is not None
            and max(spacing) > 1.01 * min(spacing)
            and max(source) <= 1.01 * min(source)  # an anisotropic source: nothing to set apart
        )
        rows.append(
            dict(
                condition=c,
                method=method,
                curve=f"{method} (anisotropic)" if aniso else method,
                dataset=str(first.loc[c, "dataset"]) if "dataset" in first.columns else "",
                spacing=format_resolution(spacing, compact=False) if spacing else "",
                voxel_volume_mm3=float(np.prod(spacing)) if spacing else np.nan,
                assumed_source=used_assumed,
                is_reference=c == ref,
                effective=_effective(spacing, effective),
            )
        )
    return pd.DataFrame(rows)


def _effective(spacing: Sequence[float] | None, fwhm: Sequence[float] | None) -> str:
    """Per axis the coarser of sample spacing and measured FWHM (the FWHM alone if no spacing)."""
    if not fwhm:
        return ""
    return format_resolution(coarser(spacing, fwhm) if spacing else fwhm, compact=False)


def resolution_axis(df: pd.DataFrame, source_spacing: Any = None) -> pd.DataFrame | None:
    """The x axis of the resolution curves: each condition's resolution in mm.

    Only conditions on the reference condition's dataset with a known voxel size. ``x`` is
    the effective resolution (per axis the coarser of spacing and measured FWHM, see
    :func:`resolution_table`) when every such condition has a measured FWHM, else the nominal
    voxel; isotropic ones by their edge (the cube root of the voxel volume), anisotropic ones
    (thick slices) by their largest edge.

    Args:
        df: results table.
        source_spacing: see :func:`resolution_table`.

    Returns:
        :func:`resolution_table`'s rows with ``aniso`` (bool), ``x`` (mm) and ``x_label`` (the
        spacing or effective resolution as written), and ``attrs["measured"]`` (bool);
        ``None`` without a reference condition.
    """
    res = resolution_table(df, source_spacing)
    ref_rows = res[res["is_reference"]]
    if ref_rows.empty:
        return None
    ref = ref_rows.iloc[0]
    res = res[(res["dataset"] == ref["dataset"]) & res["voxel_volume_mm3"].notna()].copy()
    measured = bool((res["effective"] != "").all())
    res["x_label"] = res["effective" if measured else "spacing"]
    edges = res["x_label"].map(lambda t: parse_resolution(t) or (np.nan,) * 3)
    res["aniso"] = res["curve"].str.endswith("(anisotropic)")
    res["x"] = [
        max(e) if a else float(np.cbrt(np.prod(e)))
        for e, a in zip(edges, res["aniso"], strict=True)
    ]
    res.attrs["measured"] = measured
    return res
