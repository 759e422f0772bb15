"""Figures of the per-scan values: mean bars, distributions, volume agreement, strata.

The resolution curve is :mod:`lesionres.analysis.resolution_curve`, the overlays
:mod:`lesionres.analysis.overlays`; what every figure shares is
:mod:`lesionres.analysis.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lesionres.analysis.bootstrap import bootstrap_mean_ci
from lesionres.analysis.plotting import (
    _clean,
    _finish,
    _legend_outside,
    _mark_partial_mean,
    _one_model,
    _other_cohort,
    _rotate,
    condition_colors,
)
from lesionres.analysis.results_table import _values, condition_order, failed_rows, scan_keys
from lesionres.errors import LesionresError
from lesionres.metrics import (
    BAR_METRICS,
    better_direction,
    metric_label,
)

__all__ = [
    "plot_distributions",
    "plot_metric_bars",
    "plot_stratified",
    "plot_volume_agreement",
]


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
    _rotate(ax, [metric_label(m) for m in metrics], rotation=20)
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
    ax.set_ylabel(f"{metric_label(metric)} per scan{extra}")
    ax.set_title(f"{metric_label(metric)} per scan and condition{suffix}")
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
    what = metric_label(by).replace(" (ml)", "")
    ax.set_xlabel(f"stratum of {what} (from the ground truth; n = scans per condition)")
    ax.set_ylabel(f"median {metric_label(metric)}\n(error bars: interquartile range)")
    ax.set_title(f"{metric_label(metric)} by {metric_label(by)}{suffix}")
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(ax, title="condition")
    fig.tight_layout()
    return _finish(fig, out)
