"""The study's headline figure: a metric against test-time resolution, one curve per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lesionres.analysis.bootstrap import bootstrap_mean_ci
from lesionres.analysis.plotting import _PALETTE, _clean, _finish, _mark_partial_mean
from lesionres.analysis.resolution_axis import resolution_axis
from lesionres.analysis.results_table import _values
from lesionres.metrics import (
    better_direction,
    metric_label,
)

__all__ = [
    "plot_resolution_curve",
]


def _margin_band(ax: Any, centre: float, margin: float, metric: str, style: str) -> float:
    """Shade ``centre +- margin``, draw the non-inferiority limit on the worse side; the limit."""
    ax.axhspan(centre - margin, centre + margin, color="0.6", alpha=0.12, zorder=0)
    limit = centre + (-1.0 if better_direction(metric) != "lower" else 1.0) * margin
    ax.axhline(limit, color="0.35", linestyle=style, linewidth=1.0, zorder=1)
    return limit


def _mark_crossing(
    ax: Any, crossings: pd.DataFrame, curve: str, model: str | None, y: float, colour: str,
    x_max: float,
) -> None:  # fmt: skip
    """A diamond where ``curve`` crosses the margin, its interval as a horizontal bar."""
    rows = crossings[crossings["method"] == curve]
    if model is not None and "model" in rows.columns:
        rows = rows[rows["model"].astype(str) == model]
    if rows.empty or not np.isfinite(rows["crossing_mm"].iloc[0]):
        return
    x, lo, hi = (float(rows[c].iloc[0]) for c in ("crossing_mm", "crossing_low", "crossing_high"))
    lo, hi = (x if not np.isfinite(lo) else lo), (x_max if not np.isfinite(hi) else hi)
    ax.errorbar([x], [y], xerr=[[x - lo], [hi - x]], color=colour, marker="D", markersize=6,
                markeredgecolor="black", capsize=4, linewidth=2.0, zorder=4)  # fmt: skip


def plot_resolution_curve(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    n_boot: int = 2000,
    seed: int = 0,
    source_spacing: Any = None,
    margin: float | None = None,
    crossings: pd.DataFrame | None = None,
    out: str | Path | None = None,
) -> Figure | None:
    """Mean metric against test-time voxel size, one curve per method (and per model).

    Drawn only when a sweep was run: some method has at least two resolutions. Only
    conditions on the reference condition's dataset are drawn (another cohort differs in
    more than resolution); each curve starts at the reference (original) point. Isotropic
    voxels are plotted against their edge (mm); anisotropic ones (thick slices) in a second
    panel against their largest edge, ticks labelled with the full spacing.

    Args:
        df: results table.
        metric: metric on the y axis.
        n_boot: bootstrap resamples for the 95% CI of each mean.
        seed: bootstrap seed.
        source_spacing: spacing of the original images when the table does not say it
            (see :func:`resolution_table`).
        margin: a non-inferiority margin in the metric's units: the reference mean +- margin
            is shaded and the limit on the worse side drawn (one per model).
        crossings: :func:`lesionres.analysis.noninferiority.margin_crossing` rows of this
            metric: each method's crossing point is marked on the limit, with its interval.
        out: path without extension to save PNG + PDF.

    Returns:
        The figure, or ``None`` when no method has two resolutions.
    """
    res = resolution_axis(df, source_spacing)
    if res is None:
        return None
    ref = res[res["is_reference"]].iloc[0]
    swept = res[~res["is_reference"]].groupby("curve")["spacing"].nunique()
    if not (swept >= 2).any():
        return None
    # measured resolution (thin-plane FWHM) when every drawn condition has it, else nominal
    effective = res.attrs["measured"]
    clean = _clean(df)
    models = (
        [str(m) for m in pd.unique(clean["model"].dropna().astype(str))]
        if "model" in clean.columns and clean["model"].notna().any()
        else [None]
    )
    curves = [c for c in pd.unique(res.loc[~res["is_reference"], "curve"])]
    colours = {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(curves)}
    panels = [False] + ([True] if res["aniso"].any() else [])
    if not res.loc[~res["aniso"] & ~res["is_reference"]].shape[0]:
        panels = [True]
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    fig = Figure(figsize=(6.0 * len(panels) + 2.2, 4.6))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, aniso in zip(axes, panels, strict=False):
        members = [c for c in curves if c.endswith("(anisotropic)") == aniso]
        pts = res[res["is_reference"] | res["curve"].isin(members)]
        span = pts["x"].max() - pts["x"].min() or 1.0
        for mi, model in enumerate(models):
            sub = clean if model is None else clean[clean["model"].astype(str) == model]
            limit = None
            if margin is not None:
                ref_values = _values(sub[sub["condition"].astype(str) == ref["condition"]], metric)
                if ref_values.notna().any():
                    limit = _margin_band(ax, float(ref_values.mean()), margin, metric,
                                         styles[mi % 4])  # fmt: skip
            for j, curve in enumerate(members):
                rows = pd.concat([res[res["is_reference"]], res[res["curve"] == curve]])
                rows = rows.sort_values("x", kind="stable")
                xs, ys, los, his = [], [], [], []
                for _, r in rows.iterrows():
                    rows_c = sub[sub["condition"].astype(str) == r["condition"]]
                    v = _values(rows_c, metric).dropna().to_numpy()
                    if not v.size:
                        continue
                    lo, hi = bootstrap_mean_ci(v, n_boot, seed)
                    centred = j - (len(members) - 1) / 2
                    dodge = 0.0 if r["is_reference"] else 0.012 * span * centred
                    xs.append(r["x"] + dodge)
                    ys.append(v.mean())
                    los.append(v.mean() - lo)
                    his.append(hi - v.mean())
                    _mark_partial_mean(ax, xs[-1], hi, v.size, len(rows_c))
                if not xs:
                    continue
                name = curve if model is None else f"{curve}, model {model}"
                ax.errorbar(
                    xs, ys, yerr=[los, his], color=colours[curve], linestyle=styles[mi % 4],
                    marker=markers[mi % 4], markersize=5, capsize=3, linewidth=1.4, label=name,
                )  # fmt: skip
                if limit is not None and crossings is not None:
                    _mark_crossing(ax, crossings, curve, model, limit, colours[curve],
                                   float(rows["x"].max()))  # fmt: skip
        ticks = pts.drop_duplicates("x").sort_values("x")
        ax.set_xticks(ticks["x"].to_numpy())
        measured = "effective resolution" if effective else "test-time voxel"
        if aniso:
            ax.set_xticklabels(
                ticks["x_label"],
                rotation=30, ha="right", rotation_mode="anchor",
            )  # fmt: skip
            ax.set_xlabel(f"{measured} (mm; axis: largest)")
            ax.set_title("anisotropic voxels (thick slices)", fontsize=10)
        else:
            ax.set_xticklabels([f"{x:.2g}" for x in ticks["x"]])
            ax.set_xlabel(f"{measured} (mm, isotropic)")
            ax.set_title("isotropic voxels", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(title="method", fontsize=8, loc="best")
    band = ";\ngrey band: reference mean ± margin" if margin is not None else ""
    if margin is not None and crossings is not None and len(crossings):
        band += ";\ndiamond: where a curve crosses it"
    axes[0].set_ylabel(f"mean {metric_label(metric)}\n(error bars: 95% bootstrap CI{band})")
    assumed = " (original assumed 1 mm isotropic)" if bool(res["assumed_source"].any()) else ""
    fig.suptitle(
        f"{metric_label(metric)} against test-time resolution, "
        f"{ref['dataset'] or 'reference'} scans; "
        f"leftmost point: {ref['condition']} {ref['spacing']} mm{assumed}",
        fontsize=10,
    )
    fig.tight_layout()
    return _finish(fig, out)
