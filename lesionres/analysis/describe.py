"""Descriptive statistics: per-condition summaries, how many scans a mean is over, strata.

A mean is over the scans where its metric is defined (HD95 of an empty prediction is not):
:func:`summarize` counts the others and says why they are missing, :func:`coverage_notes`
turns that into one line per mean that every table of means prints beside it, and
:func:`stratify` summarises a metric within strata of a ground-truth property.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from lesionres.analysis.results_table import (
    _has_models,
    _require,
    _values,
    condition_order,
    failed_rows,
    scan_keys,
)
from lesionres.errors import LesionresError
from lesionres.metrics import (
    ANALYSED_METRICS,
)

__all__ = [
    "coverage_notes",
    "stratify",
    "summarize",
]


def summarize(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-condition descriptive statistics of every metric (NaN-aware).

    Failed rows are excluded (counted in ``n_failed``); non-finite values are missing
    (``n_missing``); ``n`` counts the values used, so each metric's mean is over its own ``n``
    scans (HD95 is undefined when a mask is empty: the worst failures leave its mean).
    ``missing_why`` says why values are missing, read from the volumes (or confusion counts):
    ``"empty prediction"``, ``"empty ground truth"``, ``"both masks empty"`` or
    ``"no finite value"``, with counts when there are several reasons. ``std`` is the sample
    SD (ddof=1).

    Args:
        df: results table.
        metrics: metric columns; default: those of :data:`ANALYSED_METRICS` present in ``df``.

    Returns:
        Columns ``[model,] condition, metric, n, mean, std, min, max, median, n_missing,
        missing_why, n_failed`` in condition order (first appearance) and metric order.
    """
    _require(df, ["condition"])
    metrics = _metrics(df, metrics)
    failed = failed_rows(df)
    empty = _empty_masks(df)
    group_cols = (["model"] if _has_models(df) else []) + ["condition"]
    records: list[dict[str, Any]] = []
    order = {c: i for i, c in enumerate(condition_order(df))}
    for keys, rows in df.groupby(group_cols, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        f = failed.loc[rows.index]
        ok = rows[~f]
        for metric in metrics:
            v = _values(ok, metric).dropna().to_numpy()
            rec = dict(zip(group_cols, keys, strict=True))
            rec["condition"] = str(rec["condition"])
            rec.update(
                metric=metric,
                n=int(v.size),
                mean=float(v.mean()) if v.size else np.nan,
                std=float(v.std(ddof=1)) if v.size > 1 else np.nan,
                min=float(v.min()) if v.size else np.nan,
                max=float(v.max()) if v.size else np.nan,
                median=float(np.median(v)) if v.size else np.nan,
                n_missing=int(len(ok) - v.size),
                missing_why=_missing_why(empty.loc[ok.index[_values(ok, metric).isna()]]),
                n_failed=int(f.sum()),
            )
            records.append(rec)
    out = pd.DataFrame.from_records(records)
    if out.empty:
        return out
    out["_c"] = out["condition"].map(order)
    out["_m"] = out["metric"].map({m: i for i, m in enumerate(metrics)})
    lead = ["model"] if "model" in group_cols else []
    out = out.sort_values([*lead, "_c", "_m"], kind="stable")
    return out.drop(columns=["_c", "_m"]).reset_index(drop=True)


def _empty_masks(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: is the prediction empty, is the ground truth empty (False when unknown)?

    Read from ``pred_volume_ml`` / ``gt_volume_ml``, else from the confusion counts
    (``tp + fp`` predicted voxels, ``tp + fn`` ground-truth voxels).
    """

    def is_zero(volume: str, counts: tuple[str, str]) -> pd.Series:
        if volume in df.columns:
            return pd.to_numeric(df[volume], errors="coerce").eq(0)
        if set(counts) <= set(df.columns):
            a, b = (pd.to_numeric(df[c], errors="coerce") for c in counts)
            return (a + b).eq(0)
        return pd.Series(False, index=df.index)

    pred, gt = is_zero("pred_volume_ml", ("tp", "fp")), is_zero("gt_volume_ml", ("tp", "fn"))
    return pd.DataFrame({"pred": pred, "gt": gt})


def _missing_why(empty: pd.DataFrame) -> str:
    """Why these rows have no value: ``"empty prediction"``, or ``"2 empty prediction, 1 ..."``."""
    if empty.empty:
        return ""
    pred, gt = empty["pred"].to_numpy(), empty["gt"].to_numpy()
    reasons = {
        "empty prediction": int((pred & ~gt).sum()),
        "empty ground truth": int((gt & ~pred).sum()),
        "both masks empty": int((pred & gt).sum()),
        "no finite value": int((~pred & ~gt).sum()),
    }
    found = {k: v for k, v in reasons.items() if v}
    if len(found) == 1:
        return next(iter(found))
    return ", ".join(f"{v} {k}" for k, v in found.items())


def coverage_notes(summary: pd.DataFrame, labels: Mapping[str, str] | None = None) -> list[str]:
    """How many scans each mean is over, wherever a metric has undefined values.

    A mean over the scans where a metric is defined leaves out exactly the worst failures
    (HD95 of an empty prediction), so every table of means says so beside it.

    Args:
        summary: :func:`summarize` output of one model (or a table without models).
        labels: display names of the metrics (default: the column names).

    Returns:
        One line per condition and metric with missing values, e.g.
        ``"linear_x4, HD95 mm: mean over 7 of 9 scans; 2 undefined (empty prediction)"``
        (failed rows, excluded everywhere, are not counted in the "of").
    """
    labels = labels or {}
    lines = []
    for r in summary.itertuples(index=False):
        if not r.n_missing:
            continue
        why = getattr(r, "missing_why", "")
        why = "" if pd.isna(why) or not str(why) else f" ({why})"
        n, missing = int(r.n), int(r.n_missing)
        lines.append(
            f"{r.condition}, {labels.get(r.metric, r.metric)}: mean over {n} of "
            f"{n + missing} scans; {missing} undefined{why}"
        )
    return lines


def _metrics(df: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        found = [m for m in ANALYSED_METRICS if m in df.columns]
        if not found:
            raise LesionresError(
                f"results table: none of the metric columns {', '.join(ANALYSED_METRICS)}"
            )
        return found
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    _require(df, metrics)
    return metrics


_DEFAULT_BINS: dict[str, tuple[float, ...]] = {
    "gt_volume_ml": (0.0, 1.0, 5.0, 20.0, np.inf),
    "gt_lesions": (0.0, 1.0, 2.0, 4.0, np.inf),
}


_COUNT_LIKE = {"gt_lesions"}


def _fmt_edge(x: float) -> str:
    return f"{x:.3g}"


def _stratum_labels(edges: Sequence[float], by: str, tertiles: bool) -> list[str]:
    unit = " ml" if by.endswith("_ml") else ""
    labels = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        if tertiles:
            name = ("low", "middle", "high")[i] if len(edges) == 4 else f"q{i + 1}"
            labels.append(f"{name} [{_fmt_edge(lo)}, {_fmt_edge(hi)}]{unit}")
        elif by in _COUNT_LIKE:
            lo_i = int(lo)
            if np.isinf(hi):
                labels.append(f"{lo_i}+")
            elif hi - lo <= 1:
                labels.append(f"{lo_i}")
            else:
                labels.append(f"{lo_i}-{int(hi) - 1}")
        elif i == 0 and lo <= 0:
            labels.append(f"<{_fmt_edge(hi)}{unit}")
        elif np.isinf(hi):
            labels.append(f">={_fmt_edge(lo)}{unit}")
        else:
            labels.append(f"{_fmt_edge(lo)}-{_fmt_edge(hi)}{unit}")
    return labels


def stratify(
    df: pd.DataFrame,
    metric: str = "dice",
    by: str = "gt_volume_ml",
    bins: Sequence[float] | Literal["tertiles"] | None = None,
) -> pd.DataFrame:
    """Summary of a metric per condition within strata of a ground-truth property.

    The stratum is a property of the scan's ground truth (lesion volume, lesion count), so it
    is taken once per scan and must be identical under every condition (checked); a scan
    stays in the same stratum across conditions and the strata compare like with like.

    Args:
        df: results table.
        metric: metric to summarise.
        by: ground-truth column: ``"gt_volume_ml"`` (default bins 0, 1, 5, 20, inf ml) or
            ``"gt_lesions"`` (default strata 0, 1, 2-3, 4+ components).
        bins: ascending edges of half-open bins ``[lo, hi)``, or ``"tertiles"`` (edges at
            the 1/3 and 2/3 quantiles of the per-scan values, all scans pooled once).

    Returns:
        Columns ``[model,] condition, by, metric, stratum, stratum_index, lower, upper, n,
        n_missing, mean, std, median, q1, q3`` (only non-empty strata; a stratum is the
        half-open interval ``[lower, upper)``).

    Raises:
        LesionresError: missing column, bad bins, or a scan whose ground-truth value differs
            between conditions.
    """
    _require(df, ["subject_id", "condition", metric, by])
    ok = df[~failed_rows(df)].copy()
    ok["_scan"] = scan_keys(ok)
    ok["_by"] = pd.to_numeric(ok[by], errors="coerce").astype(float)
    ok["_v"] = _values(ok, metric)
    per_scan = ok.groupby("_scan")["_by"].agg(["min", "max"])
    same = np.isclose(per_scan["min"], per_scan["max"], rtol=1e-6, atol=1e-9, equal_nan=True)
    bad = per_scan[~same]
    if len(bad):
        raise LesionresError(
            f"stratify: '{by}' differs between conditions for {len(bad)} scan(s), e.g. "
            f"{', '.join(bad.index[:3])}; the stratum must come from the ground truth, "
            "identical under every condition"
        )
    scan_value = per_scan["min"]
    tertiles = isinstance(bins, str)
    if tertiles:
        if bins != "tertiles":
            raise LesionresError(
                f"stratify: bins must be a sequence of edges or 'tertiles', got {bins!r}"
            )
        vals = scan_value.dropna().to_numpy()
        if vals.size < 3:
            raise LesionresError(f"stratify: tertiles need at least 3 scans with '{by}'")
        edges = np.unique(np.quantile(vals, [0, 1 / 3, 2 / 3, 1]))
        if edges.size < 2:
            raise LesionresError(f"stratify: every scan has the same '{by}'; no tertiles")
    else:
        default = _DEFAULT_BINS.get(by, (0.0, np.inf))
        edges = np.asarray(default if bins is None else bins, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise LesionresError(
                f"stratify: bins must be at least 2 strictly ascending edges, got {list(edges)}"
            )
    labels = _stratum_labels(edges, by, tertiles)
    if tertiles:  # inner edges only, so the minimum and maximum fall in the end strata
        idx = np.searchsorted(edges[1:-1], scan_value.to_numpy(), side="right")
    else:
        idx = np.searchsorted(edges, scan_value.to_numpy(), side="right") - 1
    idx = np.where(np.isnan(scan_value.to_numpy()) | (idx < 0) | (idx >= len(labels)), -1, idx)
    stratum_of = pd.Series(idx, index=scan_value.index)
    ok["_s"] = ok["_scan"].map(stratum_of)
    ok = ok[ok["_s"] >= 0]
    group_cols = (["model"] if _has_models(ok) else []) + ["condition"]
    order = {c: i for i, c in enumerate(condition_order(df))}
    records = []
    for keys, rows in ok.groupby([*group_cols, "_s"], sort=False):
        *gkeys, s = keys
        v = rows["_v"].dropna().to_numpy()
        rec = dict(zip(group_cols, gkeys, strict=True))
        rec.update(
            by=by,
            stratum=labels[int(s)],
            stratum_index=int(s),
            lower=float(edges[int(s)]),
            upper=float(edges[int(s) + 1]),
            n=int(v.size),
            n_missing=int(len(rows) - v.size),
            mean=float(v.mean()) if v.size else np.nan,
            std=float(v.std(ddof=1)) if v.size > 1 else np.nan,
            median=float(np.median(v)) if v.size else np.nan,
            q1=float(np.percentile(v, 25)) if v.size else np.nan,
            q3=float(np.percentile(v, 75)) if v.size else np.nan,
        )
        records.append(rec)
    out = pd.DataFrame.from_records(records)
    if out.empty:
        return out
    out.insert(len(group_cols) + 1, "metric", metric)
    out["_c"] = out["condition"].astype(str).map(order)
    sort = (["model"] if "model" in group_cols else []) + ["_c", "stratum_index"]
    return out.sort_values(sort, kind="stable").drop(columns="_c").reset_index(drop=True)
