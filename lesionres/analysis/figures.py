"""Figures of a resolution study: bars, distributions, resolution curves, volumes, overlays.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): saving uses
the Agg canvas, nothing touches the global backend, so importing this module inside Jupyter
keeps the inline backend and a headless server needs no display. Every ``plot_*`` function
returns the figure and, given ``out`` (a path without extension), writes ``out.png`` (150 dpi)
and ``out.pdf`` atomically.

Each condition keeps one colour in every figure (the order of first appearance in the results
table); conditions on another cohort are hatched, because they are not paired with the rest.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from lesionres.analysis.stats import (
    _values,
    better_direction,
    condition_order,
    failed_rows,
    paired_block,
    scan_keys,
)
from lesionres.errors import LesionresError

__all__ = [
    "BAR_METRICS",
    "METRIC_LABELS",
    "bootstrap_mean_ci",
    "condition_colors",
    "overlay_figure",
    "parse_resolution",
    "plot_distributions",
    "plot_metric_bars",
    "plot_resolution_curve",
    "plot_stratified",
    "plot_volume_agreement",
    "resolution_axis",
    "resolution_table",
    "save_figure",
]

#: Axis labels with units.
METRIC_LABELS: dict[str, str] = {
    "dice": "Dice",
    "jaccard": "Jaccard",
    "precision": "precision",
    "recall": "recall",
    "specificity": "specificity",
    "accuracy": "accuracy",
    "lesion_f1": "lesion-wise F1",
    "lesions_detected_frac": "lesions detected (fraction)",
    "hd95_mm": "HD95 (mm)",
    "assd_mm": "ASSD (mm)",
    "gt_volume_ml": "true lesion volume (ml)",
    "pred_volume_ml": "predicted lesion volume (ml)",
    "abs_volume_diff_ml": "|volume difference| (ml)",
    "rel_volume_diff": "relative volume difference",
    "pred_lesion_pct": "predicted lesion voxels (%)",
    "abs_lesion_count_diff": "|lesion count difference|",
    "gt_lesions": "true lesion count",
    "pred_lesions": "predicted lesion count",
}

#: Metrics on a 0-1 scale, shown together in the bar chart.
BAR_METRICS: tuple[str, ...] = (
    "dice", "jaccard", "precision", "recall", "lesion_f1", "lesions_detected_frac",
)  # fmt: skip

_PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
    "#999999", "#882255", "#44AA99", "#117733",
)  # Okabe-Ito without black first (colour-blind safe), then Tol's muted  # fmt: skip
_GT_COLOUR = "#00E5FF"
_PRED_COLOUR = "#FF2BD6"


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def save_figure(fig: Figure, out: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``out.png`` and ``out.pdf`` (temporary file + rename each).

    Args:
        fig: the figure.
        out: target path; a ``.png`` / ``.pdf`` suffix is dropped.
        dpi: resolution of the PNG.

    Returns:
        The two paths.
    """
    out = Path(out)
    if out.suffix.lower() in (".png", ".pdf"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("png", "pdf"):
        target = out.parent / f"{out.name}.{fmt}"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def _finish(fig: Figure, out: str | Path | None) -> Figure:
    if out is not None:
        save_figure(fig, out)
    return fig


def condition_colors(conditions: Sequence[str]) -> dict[str, str]:
    """One colour per condition, in the given order (colour-blind-safe palette first)."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(conditions)}


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Args:
        values: finite values.
        n_boot: resamples.
        seed: random seed.
        level: coverage.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.nan, np.nan
    if values.size == 1 or n_boot <= 0:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def _one_model(df: pd.DataFrame, model: str | None) -> tuple[pd.DataFrame, str]:
    """Restrict to one model; refuse silently pooling several."""
    if "model" not in df.columns or not df["model"].notna().any():
        return df, ""
    models = [str(m) for m in pd.unique(df["model"].dropna().astype(str))]
    if model is None:
        if len(models) > 1:
            raise LesionresError(
                f"the table holds models {', '.join(models)}: pass model= to plot one"
            )
        model = models[0]
    return df[df["model"].astype(str) == model], f" — model {model}"


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    return df[~failed_rows(df)]


def _other_cohort(df: pd.DataFrame, conditions: Sequence[str]) -> set[str]:
    """Conditions outside the main paired block (different scans: another cohort)."""
    block = set(paired_block(df, conditions)) if conditions else set()
    return {c for c in conditions if c not in block}


def _rotate(ax: Any, labels: Sequence[str], rotation: int = 30) -> None:
    ax.set_xticks(range(len(labels)))
    ha = "right" if rotation else "center"
    ax.set_xticklabels(labels, rotation=rotation, ha=ha, rotation_mode="anchor")


def _mark_partial_mean(ax: Any, x: float, y: float, n: int, scans: int) -> None:
    """Write ``n=7/9`` above a mean over fewer than the condition's scored scans.

    A metric undefined on a scan (HD95 of an empty prediction) drops that scan, often one of
    the worst, from the mean: the figure must not show it as a mean over every scan.
    """
    if 0 < n < scans and np.isfinite(y):
        ax.annotate(
            f"n={n}/{scans}", (x, y), xytext=(0, 2), textcoords="offset points", ha="center",
            va="bottom", fontsize=6, rotation=90,
        )  # fmt: skip


def _legend_outside(ax: Any, **kwargs: Any) -> None:
    """Legend to the right of the axes, so it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kwargs)


# --------------------------------------------------------------------------- bars


def plot_metric_bars(
    df: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    error: str = "ci",
    model: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    out: str | Path | None = None,
) -> Figure:
    """Mean of each 0-1 metric per condition, with error bars (the study's Figures 1/3/5).

    A mean over fewer than the condition's scored scans (the metric undefined on some) is
    marked ``n=7/9`` above its bar.

    Args:
        df: results table (failed rows are left out).
        metrics: metrics to show (default: those of :data:`BAR_METRICS` present).
        error: ``"ci"`` (95% percentile bootstrap CI of the mean, default) or ``"sd"``.
        model: model to plot when the table holds several.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        out: path without extension to save PNG + PDF.
    """
    if error not in ("ci", "sd"):
        raise LesionresError(f"error: expected 'ci' or 'sd', got {error!r}")
    df, suffix = _one_model(df, model)
    conds = condition_order(df)
    other = _other_cohort(df, conds)  # from every row: a failed scan is still part of the design
    df = _clean(df)
    metrics = [m for m in (metrics or BAR_METRICS) if m in df.columns]
    colours = condition_colors(conds)
    k = len(conds)
    width = 0.8 / max(k, 1)
    fig = Figure(figsize=(min(16.0, max(7.0, 0.9 * len(metrics) + 0.13 * k * len(metrics))), 4.6))
    ax = fig.add_subplot()
    for j, cond in enumerate(conds):
        sub = df[df["condition"].astype(str) == cond]
        means, lo_err, hi_err, counts = [], [], [], []
        for m in metrics:
            v = _values(sub, m).dropna().to_numpy()
            counts.append(v.size)
            mean = v.mean() if v.size else np.nan
            if error == "ci":
                lo, hi = bootstrap_mean_ci(v, n_boot, seed)
            else:
                sd = v.std(ddof=1) if v.size > 1 else np.nan
                lo, hi = mean - sd, mean + sd
            means.append(mean)
            lo_err.append(mean - lo)
            hi_err.append(hi - mean)
        x = np.arange(len(metrics)) - 0.4 + width * (j + 0.5)
        ax.bar(
            x, means, width, yerr=[lo_err, hi_err], capsize=2, color=colours[cond],
            edgecolor="black", linewidth=0.5, hatch="//" if cond in other else None,
            label=f"{cond} (other cohort)" if cond in other else cond, error_kw={"linewidth": 0.8},
        )  # fmt: skip
        for xi, mean, hi, n in zip(x, means, hi_err, counts, strict=True):
            _mark_partial_mean(ax, xi, mean + np.nan_to_num(hi), n, len(sub))
    _rotate(ax, [_label(m) for m in metrics], rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(
        "mean per scan\n(error bars: 95% bootstrap CI of the mean)"
        if error == "ci"
        else "mean per scan\n(error bars: ± 1 SD)"
    )
    ax.set_title(f"Mean metrics per test condition{suffix}")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    _legend_outside(ax, title="condition")
    fig.tight_layout()
    return _finish(fig, out)


# --------------------------------------------------------------------------- distributions


def plot_distributions(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    model: str | None = None,
    paired_lines: bool = True,
    seed: int = 0,
    out: str | Path | None = None,
) -> Figure:
    """Per-scan values per condition: box plot, every scan as a point, paired scans joined.

    Lines join the same scan in neighbouring conditions that hold the same scans (paired);
    a condition on another cohort is hatched and never joined.

    Args:
        df: results table.
        metric: metric to show.
        model: model to plot when the table holds several.
        paired_lines: draw the lines joining a scan across paired neighbouring conditions.
        seed: seed of the horizontal jitter (the same offset per scan in every condition).
        out: path without extension to save PNG + PDF.
    """
    if metric not in df.columns:
        raise LesionresError(f"plot_distributions: no column {metric!r} in the results table")
    df, suffix = _one_model(df, model)
    df = df.copy()
    df["_scan"] = scan_keys(df)
    df["_v"] = _values(df, metric)
    df.loc[failed_rows(df), "_v"] = np.nan  # failed scans stay in the design, without a value
    conds = condition_order(df)
    colours = condition_colors(conds)
    other = _other_cohort(df, conds)
    scans = pd.unique(df["_scan"])
    jitter = pd.Series(np.random.default_rng(seed).uniform(-0.12, 0.12, len(scans)), index=scans)
    fig = Figure(figsize=(max(6.0, 1.1 * len(conds) + 1.5), 4.8))
    ax = fig.add_subplot()
    series = {c: df[df["condition"].astype(str) == c].set_index("_scan")["_v"] for c in conds}
    data = [series[c].dropna().to_numpy() for c in conds]
    box = ax.boxplot(
        data, positions=range(len(conds)), widths=0.55, showfliers=False, patch_artist=True,
        medianprops={"color": "black", "linewidth": 1.5}, whis=(5, 95),
    )  # fmt: skip
    for patch, cond in zip(box["boxes"], conds, strict=True):
        patch.set_facecolor(colours[cond])
        patch.set_alpha(0.35)
        if cond in other:
            patch.set_hatch("//")
    if paired_lines:
        for i in range(len(conds) - 1):
            a, b = series[conds[i]], series[conds[i + 1]]
            if set(a.index) != set(b.index):
                continue  # not paired: never draw a line between different scans
            both = a.index[a.notna() & b.reindex(a.index).notna()]
            if not len(both):
                continue
            j = jitter[both].to_numpy()
            left = np.column_stack([i + j, a[both].to_numpy()])
            right = np.column_stack([i + 1 + j, b.reindex(both).to_numpy()])
            # one collection, not one Line2D per scan: 10x faster to draw and to write as PDF
            alpha = max(0.06, min(0.35, 12 / len(both)))
            segments = np.stack([left, right], axis=1)
            lines = LineCollection(segments, colors="0.45", alpha=alpha, linewidths=0.6, zorder=1)
            ax.add_collection(lines)
    for i, cond in enumerate(conds):
        s = series[cond].dropna()
        ax.scatter(
            i + jitter[s.index].to_numpy(), s.to_numpy(), s=9, color=colours[cond],
            edgecolor="black", linewidth=0.3, zorder=3, alpha=0.85,
        )  # fmt: skip
    labels = [
        f"{c} (n={len(d)}){' †' if c in other else ''}" for c, d in zip(conds, data, strict=True)
    ]
    _rotate(ax, labels, rotation=30)
    notes = ["lower is better"] if better_direction(metric) == "lower" else []
    values = np.concatenate(data) if data else np.array([])
    positive = values[values > 0]
    if positive.size and values.min() >= 0 and np.percentile(values, 99) > 20 * np.median(positive):
        # heavy tail (volumes): a linear axis squashes every box against zero
        ax.set_yscale("symlog", linthresh=float(max(np.percentile(positive, 5), 1e-3)))
        ax.set_ylim(0, values.max() * 1.5)
        notes.append("symlog scale")
    extra = f"\n({'; '.join(notes)})" if notes else ""
    ax.set_ylabel(f"{_label(metric)} per scan{extra}")
    ax.set_title(f"{_label(metric)} per scan and condition{suffix}")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [
        Patch(facecolor="0.8", edgecolor="black", label="box: quartiles, whiskers 5-95%"),
        Line2D([], [], color="0.45", linewidth=0.8, label="same scan, paired conditions"),
    ]
    if other:
        label = "† other cohort (unpaired)"
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label=label))
    _legend_outside(ax, handles=handles)
    fig.tight_layout()
    return _finish(fig, out)


# --------------------------------------------------------------------------- resolution


def parse_resolution(text: Any) -> tuple[float, float, float] | None:
    """Parse ``"2"``, ``"2x2x1"``, ``"1x1x5"`` (or ``"1x1x5mm"``) into three per-axis numbers.

    Args:
        text: the ``factor`` or ``spacing_mm`` cell.

    Returns:
        ``(x, y, z)``; a single number is isotropic; ``None`` for an empty / missing cell.

    Raises:
        LesionresError: text that is not 1 or 3 positive numbers joined by ``x``.
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    s = str(text).strip().lower().removesuffix("mm").strip()
    if not s or s == "nan":
        return None
    parts = re.split(r"\s*[x×,]\s*", s)
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise LesionresError(
            f"cannot read a resolution from {text!r}: expected e.g. '2' or '1x1x5'"
        ) from None
    if len(nums) == 1:
        nums = nums * 3
    if len(nums) != 3 or any(not np.isfinite(n) or n <= 0 for n in nums):
        raise LesionresError(
            f"cannot read a resolution from {text!r}: expected 1 or 3 positive numbers"
        )
    return (nums[0], nums[1], nums[2])


def _fmt_res(r: tuple[float, float, float]) -> str:
    return "x".join(f"{v:g}" for v in r)


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
            spacing = (source[0] * factor[0], source[1] * factor[1], source[2] * factor[2])
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
                spacing=_fmt_res(spacing) if spacing else "",
                voxel_volume_mm3=float(np.prod(spacing)) if spacing else np.nan,
                assumed_source=used_assumed,
                is_reference=c == ref,
                effective=_fmt_res(_coarser(spacing, effective)) if effective else "",
            )
        )
    return pd.DataFrame(rows)


def _coarser(
    spacing: tuple[float, float, float] | None, fwhm: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Per axis the coarser of sample spacing and measured FWHM (the FWHM alone if no spacing)."""
    if spacing is None:
        return fwhm
    return tuple(max(s, f) for s, f in zip(spacing, fwhm, strict=True))  # type: ignore[return-value]


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
    axes[0].set_ylabel(f"mean {_label(metric)}\n(error bars: 95% bootstrap CI{band})")
    assumed = " (original assumed 1 mm isotropic)" if bool(res["assumed_source"].any()) else ""
    fig.suptitle(
        f"{_label(metric)} against test-time resolution, {ref['dataset'] or 'reference'} scans; "
        f"leftmost point: {ref['condition']} {ref['spacing']} mm{assumed}",
        fontsize=10,
    )
    fig.tight_layout()
    return _finish(fig, out)


# --------------------------------------------------------------------------- volumes


def plot_volume_agreement(
    df: pd.DataFrame,
    *,
    model: str | None = None,
    out: str | Path | None = None,
) -> Figure:
    """Predicted against true lesion volume per condition (log-log, identity line).

    Zero predicted volumes cannot sit on a log axis: they are drawn at the floor with a
    downward triangle and counted in the panel.

    Args:
        df: results table with ``gt_volume_ml`` and ``pred_volume_ml``.
        model: model to plot when the table holds several.
        out: path without extension to save PNG + PDF.
    """
    for col in ("gt_volume_ml", "pred_volume_ml"):
        if col not in df.columns:
            raise LesionresError(f"plot_volume_agreement: no column {col!r} in the results table")
    df, suffix = _one_model(df, model)
    df = _clean(df)
    conds = condition_order(df)
    colours = condition_colors(conds)
    gt_all = _values(df, "gt_volume_ml")
    pr_all = _values(df, "pred_volume_ml")
    positive = pd.concat([gt_all[gt_all > 0], pr_all[pr_all > 0]])
    if positive.empty:
        raise LesionresError("plot_volume_agreement: no positive volumes to plot")
    floor = 10 ** np.floor(np.log10(positive.min()) - 0.3)
    top = 10 ** np.ceil(np.log10(positive.max()) + 0.1)
    ncols = min(4, len(conds))
    nrows = int(np.ceil(len(conds) / ncols))
    fig = Figure(figsize=(3.2 * ncols + 0.4, 3.2 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    for ax, cond in zip(axes.ravel(), conds, strict=False):
        sub = df[df["condition"].astype(str) == cond]
        gt = _values(sub, "gt_volume_ml").to_numpy()
        pr = _values(sub, "pred_volume_ml").to_numpy()
        ok = np.isfinite(gt) & np.isfinite(pr) & (gt > 0)
        zero = ok & (pr <= 0)
        pos = ok & (pr > 0)
        ax.plot([floor, top], [floor, top], color="0.4", linestyle="--", linewidth=0.9)
        ax.scatter(
            gt[pos], pr[pos], s=10, color=colours[cond], edgecolor="black", linewidth=0.3,
            alpha=0.85,
        )  # fmt: skip
        if zero.any():
            at_floor = np.full(zero.sum(), floor * 1.15)
            ax.scatter(gt[zero], at_floor, marker="v", s=18, color="#D55E00")
        mad = np.median(np.abs(pr[ok] - gt[ok])) if ok.any() else np.nan
        text = f"n={int(ok.sum())}\nmedian |ΔV| {mad:.3g} ml"
        if zero.any():
            text += f"\n{int(zero.sum())} empty prediction(s): ▼ at bottom"
        ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()  # decades suffice; minor log ticks cost most of the drawing time
        ax.set_xlim(floor, top)
        ax.set_ylim(floor, top)
        ax.set_aspect("equal")
        ax.set_title(cond, fontsize=9)
        ax.grid(alpha=0.25, which="major")
    for ax in axes.ravel()[len(conds) :]:
        ax.set_visible(False)
    for col in range(ncols):  # the lowest visible panel of each column carries the x axis
        low = max(r for r in range(nrows) if r * ncols + col < len(conds))
        axes[low, col].set_xlabel("true volume (ml)")
        axes[low, col].tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted volume (ml)")
    fig.suptitle(f"Predicted vs true lesion volume (dashed: identity){suffix}")
    fig.tight_layout()
    return _finish(fig, out)


# --------------------------------------------------------------------------- strata


def plot_stratified(
    strata: pd.DataFrame,
    *,
    model: str | None = None,
    out: str | Path | None = None,
) -> Figure:
    """Median metric (with IQR) per ground-truth stratum, one line per condition.

    Args:
        strata: output of :func:`lesionres.analysis.stratify` for one ``by``.
        model: model to plot when the table holds several.
        out: path without extension to save PNG + PDF.
    """
    strata, suffix = _one_model(strata, model)
    if strata.empty:
        raise LesionresError("plot_stratified: empty stratification table")
    by, metric = str(strata["by"].iloc[0]), str(strata["metric"].iloc[0])
    labels = strata.drop_duplicates("stratum_index").sort_values("stratum_index")
    pos = {s: i for i, s in enumerate(labels["stratum_index"])}
    conds = [str(c) for c in pd.unique(strata["condition"].astype(str))]
    colours = condition_colors(conds)
    fig = Figure(figsize=(max(6.0, 1.4 * len(pos) + 3.0), 4.4))
    ax = fig.add_subplot()
    k = len(conds)
    for j, cond in enumerate(conds):
        s = strata[strata["condition"].astype(str) == cond].sort_values("stratum_index")
        x = np.array([pos[i] for i in s["stratum_index"]]) + 0.08 * (j - (k - 1) / 2)
        err = [(s["median"] - s["q1"]).to_numpy(), (s["q3"] - s["median"]).to_numpy()]
        ax.errorbar(
            x, s["median"], yerr=err, marker="o", markersize=4, capsize=2,
            color=colours[cond], linewidth=1.2, label=cond,
        )  # fmt: skip
    ns = strata.groupby("stratum_index")["n"].agg(["min", "max"])
    ticks = []
    for lab, i in zip(labels["stratum"], labels["stratum_index"], strict=True):
        lo, hi = ns.loc[i, "min"], ns.loc[i, "max"]
        ticks.append(f"{lab}\n(n={lo})" if lo == hi else f"{lab}\n(n={lo}-{hi})")
    _rotate(ax, ticks, 0)
    what = _label(by).replace(" (ml)", "")
    ax.set_xlabel(f"stratum of {what} (from the ground truth; n = scans per condition)")
    ax.set_ylabel(f"median {_label(metric)}\n(error bars: interquartile range)")
    ax.set_title(f"{_label(metric)} by {_label(by)}{suffix}")
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, title="condition")
    fig.tight_layout()
    return _finish(fig, out)


# --------------------------------------------------------------------------- overlays


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
