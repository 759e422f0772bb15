"""Statistics across test-time resolution conditions on a tidy per-scan results table.

The results table has one row per (scan, condition) and optionally per ``model``. Every
function here is pure pandas / numpy / scipy (no torch, no Lightning) and refuses the two
mistakes the reference study made:

* **A paired test between different scans.** Two conditions are *paired* only when they hold
  exactly the same scans (matched by ``dataset`` + ``subject_id``, never by row order or by
  equal lengths). Paired conditions get the Wilcoxon signed-rank test; conditions on disjoint
  scan sets (another cohort, e.g. ISLES 2022 next to ATLAS) get the Mann-Whitney U test; a
  partial overlap is refused unless the caller says ``partial="intersect"``.
* **No multiple-comparison correction.** Every table of comparisons is one family, corrected
  with Holm (default) or Benjamini-Hochberg, both implemented here.

Conventions (stated once here, repeated in the report):

* Differences are always ``condition_a - condition_b``. Effect sizes are rank-biserial
  correlations in [-1, 1]; **positive means condition_a tends to be larger**.

  - paired: matched-pairs rank-biserial ``r = (W+ - W-) / (W+ + W-)`` (Kerby 2014), ranks of
    ``|a - b|`` over the nonzero differences only (whatever ``zero_method`` the test used);
  - unpaired: ``r = 2 U_a / (n_a n_b) - 1`` (Wendt 1972), ``U_a`` the Mann-Whitney U of a.

* ``median_diff`` is the Hodges-Lehmann estimate that belongs to the row's test (the location
  the p-value is about, not another quantity): paired, the pseudomedian of the per-scan differences
  ``d = a - b``, the median of the ``n (n + 1) / 2`` Walsh averages ``(d_i + d_j) / 2``,
  ``i <= j``, over the differences the test ranks (the nonzero ones under
  ``zero_method="wilcox"``, the default, or 0 when all are zero; every one under ``"pratt"``
  and ``"zsplit"``): the shift the signed-rank test is about. Unpaired, the
  Hodges-Lehmann shift, the median of all ``n_a * n_b`` differences ``a_i - b_j`` (the shift
  the Mann-Whitney test is about). Its 95% CI is a seeded percentile bootstrap of the same
  estimate (pairs resampled together; the two cohorts resampled independently). The plain
  median of the paired differences is kept as ``median_of_diffs`` (it can be 0 while the test
  finds a shift); a difference of the two medians is ``median_a - median_b``.
* p-values are two-sided. The method follows scipy's own ``"auto"`` rule, made explicit and
  written into ``p_method``: Wilcoxon exact when n <= 50 with no ties and no zero
  differences; with ties or zeros and n <= 13 an exhaustive sign-flip permutation test (all
  2**n flips, so exact and deterministic); otherwise the normal approximation with the
  tie-corrected variance and no continuity correction (scipy's default). Mann-Whitney exact
  when one sample has <= 8 values and there are no ties, otherwise the normal approximation
  with tie correction and continuity correction (scipy's default).
* Non-finite metric values (NaN, and +/-inf such as HD95 with one empty mask) are missing:
  a pair with a missing side is dropped and counted (``n_dropped_nan``); rows whose ``error``
  column is non-empty are failed scans, dropped and counted (``n_dropped_failed``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from lesionres.errors import LesionresError

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "METRICS",
    "COMPARISON_COLUMNS",
    "adjust_pvalues",
    "better_direction",
    "compare_conditions",
    "compare_models",
    "condition_order",
    "coverage_notes",
    "failed_rows",
    "friedman",
    "harmonise_labels",
    "paired_block",
    "paired_test",
    "scan_keys",
    "stratify",
    "summarize",
    "unpaired_test",
]

#: Per-scan metric columns, in the order tables list them (absent ones are skipped).
METRICS: tuple[str, ...] = (
    "dice",
    "jaccard",
    "precision",
    "recall",
    "specificity",
    "accuracy",
    "lesion_f1",
    "lesions_detected_frac",
    "hd95_mm",
    "assd_mm",
    "gt_volume_ml",
    "pred_volume_ml",
    "abs_volume_diff_ml",
    "rel_volume_diff",
    "pred_lesion_pct",
    "gt_lesions",
    "pred_lesions",
    "abs_lesion_count_diff",
)

#: Metrics where a higher value is a better segmentation (the one place that says so: the
#: non-inferiority tests, the figures and the report read it here).
HIGHER_IS_BETTER: frozenset[str] = frozenset(
    {"dice", "jaccard", "precision", "recall", "specificity", "accuracy", "lesion_f1",
     "lesions_detected_frac"}
)  # fmt: skip
#: Error metrics: lower is better. Volumes, counts and the signed ``rel_volume_diff`` are in
#: neither set (no better direction: a non-inferiority margin on them is refused).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"hd95_mm", "assd_mm", "abs_volume_diff_ml", "abs_lesion_count_diff"}
)


def better_direction(metric: str) -> Literal["higher", "lower"] | None:
    """Which way a metric is better: ``"higher"``, ``"lower"``, or ``None`` (no direction).

    Args:
        metric: metric column name.
    """
    if metric in HIGHER_IS_BETTER:
        return "higher"
    if metric in LOWER_IS_BETTER:
        return "lower"
    return None


#: Columns of :func:`compare_conditions` (``model`` first when the table has one).
COMPARISON_COLUMNS: tuple[str, ...] = (
    "metric",
    "condition_a",
    "condition_b",
    "design",
    "test",
    "n",
    "n_a",
    "n_b",
    "n_pairs",
    "n_dropped_nan",
    "n_dropped_failed",
    "n_zero_diff",
    "n_tied",
    "zero_method",
    "mean_a",
    "mean_b",
    "mean_diff",
    "median_a",
    "median_b",
    "median_diff",
    "median_diff_method",
    "median_of_diffs",
    "ci_low",
    "ci_high",
    "statistic",
    "statistic_name",
    "p_value",
    "p_method",
    "p_adjusted",
    "correction",
    "effect_size",
    "effect_size_name",
    "significant",
    "dataset_a",
    "dataset_b",
    "cohort_shift",
    "note",
)

ZeroMethod = Literal["wilcox", "pratt", "zsplit"]
Match = Literal["strict", "subject", "dataset"]
Correction = Literal["holm", "fdr_bh"]
Partial = Literal["error", "intersect"]

_ZERO_METHODS = ("wilcox", "pratt", "zsplit")
_CORRECTIONS = ("holm", "fdr_bh")
_PARTIALS = ("error", "intersect")
_WILCOXON = "Wilcoxon signed-rank"
_MWU = "Mann-Whitney U"
_PAIRED_MEDIAN = "Hodges-Lehmann pseudomedian of a-b (median of Walsh averages)"
_HL_MEDIAN = "Hodges-Lehmann shift (median of all a_i-b_j)"
_RBC_PAIRED = "matched-pairs rank-biserial (W+ - W-)/(W+ + W-); >0: a larger"
_RBC_UNPAIRED = "rank-biserial 2U_a/(n_a n_b) - 1; >0: a larger"
_HL_CHUNK_CELLS = 100_000  # bootstrap weight arrays are chunked to stay in cache


# --------------------------------------------------------------------------- table helpers


def _require(df: pd.DataFrame, columns: Sequence[str], what: str = "results table") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LesionresError(
            f"{what}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        )


def _text(column: pd.Series) -> pd.Series:
    """A label column as plain strings, missing cells as ``""`` (pandas 2 and 3 alike).

    pandas 3 reads an empty CSV cell of a string column as a missing value that ``astype(str)``
    keeps missing, where pandas 2 gave ``"nan"``.
    """
    return column.astype(object).where(column.notna(), "").astype(str)


def _has_models(df: pd.DataFrame) -> bool:
    return "model" in df.columns and bool((_text(df["model"]) != "").any())


UNNAMED_MODEL = "(unnamed)"


def harmonise_labels(df: pd.DataFrame, match: Match = "strict") -> pd.DataFrame:
    """Labels ready for matching: dataset and model as text, one dataset label per scan.

    Scans are matched on ``dataset`` + ``subject_id``. The same scans under two dataset labels
    (e.g. ``test`` rows labelled ``atlas`` and rows of another tool scored without
    ``--dataset``) would look like two cohorts and be compared unpaired, so they are refused
    unless ``match`` says how to read them.

    Args:
        df: results table.
        match: ``"strict"`` (refuse a subject id under two dataset labels), ``"subject"`` (it
            is one scan: its rows get one label, the labels joined by ``+``) or ``"dataset"``
            (different scans whose ids collide: keep the labels).

    Returns:
        A copy with ``dataset`` (and ``model``) as text; rows without a model name in a table
        with named models are called ``(unnamed)`` instead of being dropped.

    Raises:
        LesionresError: under ``"strict"``, subject ids that carry two dataset labels.
    """
    if match not in ("strict", "subject", "dataset"):
        raise LesionresError(f"match: expected strict, subject or dataset, got {match!r}")
    df = df.copy()
    model = _text(df["model"]) if "model" in df.columns else None
    if model is not None and (model != "").any():
        df["model"] = model.where(model != "", UNNAMED_MODEL)
    if "dataset" not in df.columns:
        return df
    df["dataset"] = _text(df["dataset"])
    subject = _text(df["subject_id"])
    labels = df.groupby(subject)["dataset"].agg(lambda s: tuple(sorted(set(s))))
    twice = labels[labels.map(len) > 1]
    if twice.empty or match == "dataset":
        return df
    if match == "subject":
        joined = labels.map(lambda t: "+".join(x for x in t if x))
        df["dataset"] = subject.map(joined)
        return df
    kinds = sorted(set(twice))
    raise LesionresError(
        f"{len(twice)} subject id(s) appear under two dataset labels "
        f"({', '.join(' vs '.join(repr(x) for x in k) for k in kinds[:3])}; e.g. "
        f"{twice.index[0]}): the same scans labelled twice would be compared as two cohorts "
        "(unpaired). If they are the same scans, pass --match subject (or rescore with "
        "`score --dataset ...`); if they are different scans whose ids collide, --match dataset"
    )


def failed_rows(df: pd.DataFrame) -> pd.Series:
    """Boolean mask of failed rows: those whose ``error`` column is non-empty.

    Args:
        df: results table (a table without an ``error`` column has no failed rows).

    Returns:
        A boolean Series aligned with ``df``.
    """
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    err = df["error"]
    return err.notna() & (err.astype(str).str.strip() != "")


def scan_keys(df: pd.DataFrame) -> pd.Series:
    """The identity of each row's scan: ``dataset/subject_id``, or ``subject_id`` alone.

    Matching on the dataset too keeps two cohorts apart even if their subject ids collide
    (``sub-001`` exists in many datasets).

    Args:
        df: results table with ``subject_id`` (and optionally ``dataset``).

    Returns:
        A string Series aligned with ``df``.
    """
    _require(df, ["subject_id"])
    sid = _text(df["subject_id"])
    if "dataset" in df.columns:
        dataset = _text(df["dataset"])
        if (dataset != "").any():
            return dataset + "/" + sid
    return sid


def condition_order(df: pd.DataFrame) -> list[str]:
    """Conditions in order of first appearance in the table (the order the run wrote them).

    Args:
        df: results table with a ``condition`` column.
    """
    _require(df, ["condition"])
    return [str(c) for c in pd.unique(df["condition"].astype(str))]


def _values(df: pd.DataFrame, metric: str) -> pd.Series:
    """Metric as float with non-finite values (NaN, inf) and failed rows set to NaN."""
    v = pd.to_numeric(df[metric], errors="coerce").astype(float)
    v[~np.isfinite(v.to_numpy())] = np.nan
    return v


def _block(df: pd.DataFrame, metric: str, condition: str, where: str = "") -> pd.DataFrame:
    """One condition's rows as ``key -> (value, failed, dataset)``, refusing duplicate scans."""
    rows = df[df["condition"].astype(str) == condition]
    keys = scan_keys(rows)
    dup = keys[keys.duplicated(keep=False)]
    if len(dup):
        hint = ""
        for col in ("threshold", "model"):
            if col in rows.columns and rows[col].nunique(dropna=True) > 1:
                hint = f" (the table holds several values of '{col}': filter to one first)"
        raise LesionresError(
            f"condition '{condition}'{where}: {dup.nunique()} scan(s) appear more than once, e.g. "
            f"{', '.join(dup.unique()[:3])}{hint}; each scan must have one row per condition"
        )
    failed = failed_rows(rows).to_numpy()
    value = _values(rows, metric).to_numpy().copy()
    value[failed] = np.nan
    if "dataset" in rows.columns:
        dataset = _text(rows["dataset"])
    else:
        dataset = pd.Series("", index=rows.index)
    return pd.DataFrame(
        {"value": value, "failed": failed, "dataset": dataset.to_numpy()},
        index=pd.Index(keys.to_numpy(), name="scan"),
    )


def _datasets(block: pd.DataFrame) -> str:
    names = sorted({d for d in block["dataset"] if d})
    return ";".join(names)


# --------------------------------------------------------------------------- summaries


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
        metrics: metric columns; default: those of :data:`METRICS` present in ``df``.

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
        found = [m for m in METRICS if m in df.columns]
        if not found:
            raise LesionresError(f"results table: none of the metric columns {', '.join(METRICS)}")
        return found
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    _require(df, metrics)
    return metrics


# --------------------------------------------------------------------------- multiple testing


def adjust_pvalues(p: Sequence[float] | np.ndarray, method: Correction = "holm") -> np.ndarray:
    """Family-wise (Holm) or false-discovery-rate (Benjamini-Hochberg) adjusted p-values.

    NaN p-values are left NaN and do not count in the family size.

    Args:
        p: raw p-values of one family of tests.
        method: ``"holm"`` (Holm 1979 step-down, controls the family-wise error rate) or
            ``"fdr_bh"`` (Benjamini-Hochberg 1995 step-up, controls the false discovery rate).

    Returns:
        Adjusted p-values, same order, capped at 1.
    """
    if method not in _CORRECTIONS:
        raise LesionresError(
            f"correction: expected one of {', '.join(_CORRECTIONS)}, got {method!r}"
        )
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ps = pv[order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate((m - rank + 1) * ps)  # step-down: never below a smaller p's
    else:
        adj = np.minimum.accumulate((ps * m / rank)[::-1])[::-1]  # step-up
    adj = np.minimum(adj, 1.0)
    back = np.empty(m)
    back[order] = adj
    out[ok] = back
    return out


# --------------------------------------------------------------------------- bootstrap


def _count_vectors(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``rng.integers(0, n, (n_boot, n))`` resample indices and return them as counts.

    Row ``k`` counts how often each original value is in resample ``k``: a resample's
    statistic that depends only on the multiset of values can be computed from it.
    """
    idx = rng.integers(0, n, size=(n_boot, n))
    rows = np.arange(n_boot)[:, None]
    counts = np.bincount((idx + rows * n).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return counts.astype(np.int32)  # products of two counts stay < n**2


def _weighted_medians(
    sorted_values: np.ndarray, weights: Callable[[int, int], np.ndarray], n_boot: int
) -> np.ndarray:
    """The median of each resample, read from its weights on the sorted original values.

    Args:
        sorted_values: the original sample's values (differences or Walsh averages), sorted.
        weights: ``weights(start, stop)`` gives resamples ``start:stop`` as integer weights,
            one per sorted value (how often the resample holds that value); every row sums to
            ``sorted_values.size``.
        n_boot: number of resamples.

    Returns:
        One median per resample, equal to ``np.median`` of the resample's values (exact: the
        middle ranks are found in the cumulative weight, nothing is re-sorted).
    """
    total = sorted_values.size
    pos_lo, pos_hi = (total + 1) // 2, total // 2 + 1  # 1-based ranks of the middle element(s)
    chunk = max(1, _HL_CHUNK_CELLS // total)  # small chunks stay in cache: measured 2-3x faster
    meds = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        cum = np.cumsum(weights(start, stop), axis=1)
        for r, row in enumerate(cum):
            lo_i, hi_i = np.searchsorted(row, pos_lo), np.searchsorted(row, pos_hi)
            meds[start + r] = 0.5 * (sorted_values[lo_i] + sorted_values[hi_i])
    return meds


def _percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return float(lo), float(hi)


def _walsh_averages(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``n (n + 1) / 2`` Walsh averages ``(d_i + d_j) / 2``, ``i <= j``, with ``i``, ``j``."""
    i, j = np.triu_indices(d.size)
    return (d[i] + d[j]) / 2, i, j


def _pseudomedian(d: np.ndarray) -> float:
    """Hodges-Lehmann one-sample estimate: the median of the Walsh averages of ``d``.

    It is the shift ``theta`` at which the signed-rank statistic of ``d - theta`` balances
    (W+ = W-): the location the Wilcoxon signed-rank test is about, so its sign agrees with
    the test's (the plain median of ``d`` can be 0 while the test finds a shift).
    """
    return float(np.median(_walsh_averages(d)[0])) if d.size else np.nan


def _bootstrap_pseudomedian(
    d: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of the Hodges-Lehmann pseudomedian, resampling pairs with replacement.

    ``level`` is the two-sided coverage (0.95; 0.90 matches a TOST at alpha 0.05).

    Resample indices are drawn up front (``rng.integers(0, n, (n_boot, n))``); each bootstrap
    value equals the median of the Walsh averages of ``d[idx[k]]``. It is computed without
    building them: with ``c`` the resample's count vector, the Walsh average of original
    values ``i < j`` appears ``c_i * c_j`` times and ``(d_i + d_i) / 2`` appears
    ``c_i (c_i + 1) / 2`` times (index pairs ``p <= q`` of the resample that both point at
    ``i``), so the median is read from the weighted cumulative count of the original sorted
    Walsh averages (exact; the weights always sum to ``n (n + 1) / 2``).
    """
    n = d.size
    if n == 0 or n_boot <= 0:
        return np.nan, np.nan
    counts = _count_vectors(n, n_boot, np.random.default_rng(seed))
    walsh, i, j = _walsh_averages(d)
    order = np.argsort(walsh, kind="stable")
    i, j = i[order], j[order]
    same = (i == j).astype(np.int32)

    def weights(start: int, stop: int) -> np.ndarray:
        c = counts[start:stop]
        w = c[:, i]
        w *= c[:, j] + same  # c_i * c_j, or c_i * (c_i + 1) on the diagonal ...
        w >>= same  # ... halved there (always even)
        return w

    return _percentile_ci(_weighted_medians(walsh[order], weights, n_boot), level)


def _hodges_lehmann(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(np.subtract.outer(a, b)))


def _bootstrap_hodges_lehmann(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """Percentile 95% CI of the Hodges-Lehmann shift, resampling ``a`` and ``b`` independently.

    Resample indices are drawn up front: ``ia = rng.integers(0, n_a, (n_boot, n_a))`` then
    ``ib = rng.integers(0, n_b, (n_boot, n_b))``; each bootstrap value equals
    ``np.median(np.subtract.outer(a[ia[k]], b[ib[k]]))``. It is computed without building
    those arrays: a resample is a pair of count vectors, its ``n_a * n_b`` differences are the
    original sorted differences weighted by ``count_a[i] * count_b[j]``, and the median is
    read from the weighted cumulative count (exact, no re-sorting).
    """
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0 or n_boot <= 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    ca, cb = _count_vectors(n1, n_boot, rng), _count_vectors(n2, n_boot, rng)
    diffs = np.subtract.outer(a, b).ravel()
    order = np.argsort(diffs, kind="stable")

    def weights(start: int, stop: int) -> np.ndarray:
        w = ca[start:stop, :, None] * cb[start:stop, None, :]
        return w.reshape(stop - start, n1 * n2)[:, order]

    return _percentile_ci(_weighted_medians(diffs[order], weights, n_boot))


# --------------------------------------------------------------------------- the two tests


def _check_zero_method(zero_method: str) -> None:
    if zero_method not in _ZERO_METHODS:
        raise LesionresError(
            f"zero_method: expected one of {', '.join(_ZERO_METHODS)}, got {zero_method!r}"
        )


def _n_tied(x: np.ndarray) -> int:
    """How many values share their value with at least one other."""
    if x.size == 0:
        return 0
    _, counts = np.unique(x, return_counts=True)
    return int(counts[counts > 1].sum())


def _signflip_pvalue(d: np.ndarray, zero_method: str, alternative: str = "two-sided") -> float:
    """Exact p of the signed-rank statistic over all sign flips of ``d``.

    ``alternative`` as scipy's: ``"greater"`` is ``P(W+ >= observed)``, ``"less"``
    ``P(W+ <= observed)``, ``"two-sided"`` twice the smaller (capped at 1).

    The same null distribution and p-value as ``scipy.stats.wilcoxon(method=
    PermutationMethod())`` for n <= 13 (exhaustive there), enumerated in one matrix product.
    Ranks are average ranks of ``|d|`` (zeros excluded for ``"wilcox"``, ranked otherwise);
    flipping the sign of a zero changes nothing, so only the nonzero signs are enumerated
    (each null value then appears 2**n_zero times in scipy's enumeration: same fractions).
    """
    absd = np.abs(d)
    ranks = sps.rankdata(absd[d != 0]) if zero_method == "wilcox" else sps.rankdata(absd)[d != 0]
    m = ranks.size
    signs = (np.arange(2**m)[:, None] >> np.arange(m)) & 1  # every +/- pattern of the nonzero d
    null = signs @ ranks  # W+ under each pattern (a constant zsplit share cancels out)
    observed = ranks[d[d != 0] > 0].sum()
    p_less = float(np.mean(null <= observed))
    p_greater = float(np.mean(null >= observed))
    if alternative == "less":
        return p_less
    if alternative == "greater":
        return p_greater
    return min(1.0, 2.0 * min(p_less, p_greater))


def _signed_rank(
    d: np.ndarray, zero_method: str, alternative: str = "two-sided"
) -> tuple[float, float, str]:
    """Signed-rank statistic, p-value and the method's name for ``d`` (some nonzero values).

    scipy's ``"auto"`` rule, made explicit: exact when n <= 50 with no ties and no zeros; with
    ties or zeros and n <= 13 all 2**n sign flips (exact, deterministic); otherwise the normal
    approximation with tie-corrected variance and no continuity correction. The statistic is
    scipy's: ``min(W+, W-)`` two-sided, ``W+`` one-sided.
    """
    n = d.size
    nonzero = d[d != 0]
    n_zero = n - nonzero.size
    has_ties = _n_tied(np.abs(nonzero)) > 0 or (zero_method != "wilcox" and n_zero > 1)
    if n <= 50 and not has_ties and n_zero == 0:
        method, p_method = "exact", "exact"
    elif n <= 13:
        method = "permutation"
        p_method = f"exact permutation (all 2^{n} sign flips; ties/zeros present)"
    else:
        method = "asymptotic"
        p_method = "normal approximation (tie-corrected variance, no continuity correction)"
    # the permutation is what scipy's 'auto' does there (via permutation_test, 1 s at n=13);
    # enumerated directly, with the statistic of the asymptotic call (the same number)
    r = sps.wilcoxon(
        d, zero_method=zero_method, correction=False, alternative=alternative,
        method="asymptotic" if method == "permutation" else method,
    )  # fmt: skip
    p = _signflip_pvalue(d, zero_method, alternative) if method == "permutation" else r.pvalue
    return float(r.statistic), float(p), p_method


def _wilcoxon_arrays(
    a: np.ndarray, b: np.ndarray, zero_method: str, n_boot: int, seed: int
) -> dict[str, Any]:
    """Wilcoxon signed-rank on complete pairs ``(a[i], b[i])`` (no missing values)."""
    d = a - b
    n_pairs = int(d.size)
    nonzero = d[d != 0]
    n_nonzero = int(nonzero.size)
    n_zero = n_pairs - n_nonzero
    # the estimate is over the differences the test ranks: the nonzero ones for 'wilcox'
    # (unless all are zero: then 0), all of them for 'pratt' / 'zsplit'
    ranked = nonzero if zero_method == "wilcox" and n_nonzero else d
    notes: list[str] = []
    res: dict[str, Any] = dict(
        design="paired",
        test=_WILCOXON,
        n=n_nonzero if zero_method == "wilcox" else n_pairs,
        n_a=n_pairs,
        n_b=n_pairs,
        n_pairs=n_pairs,
        n_zero_diff=n_zero,
        n_tied=_n_tied(np.abs(nonzero)),
        zero_method=zero_method,
        mean_a=float(a.mean()) if n_pairs else np.nan,
        mean_b=float(b.mean()) if n_pairs else np.nan,
        mean_diff=float(d.mean()) if n_pairs else np.nan,
        median_a=float(np.median(a)) if n_pairs else np.nan,
        median_b=float(np.median(b)) if n_pairs else np.nan,
        median_diff=_pseudomedian(ranked),
        median_diff_method=_PAIRED_MEDIAN,
        median_of_diffs=float(np.median(d)) if n_pairs else np.nan,
        statistic_name="W = min(W+, W-)",
        effect_size_name=_RBC_PAIRED,
    )
    res["ci_low"], res["ci_high"] = _bootstrap_pseudomedian(ranked, n_boot, seed)
    if n_pairs == 0:
        res.update(statistic=np.nan, p_value=np.nan, p_method="none", effect_size=np.nan)
        notes.append("no complete pairs: no test")
    elif n_nonzero == 0:
        # scipy gives p=1 below n=14 and NaN from n=14 on; identical samples are no evidence
        # of a difference, so p=1 everywhere and the effect is zero.
        res.update(
            statistic=0.0, p_value=1.0, p_method="none (all differences zero)", effect_size=0.0
        )
        notes.append(f"all differences zero ({n_pairs} pairs): p set to 1, effect size 0")
    else:
        statistic, p_value, p_method = _signed_rank(d, zero_method)
        ranks = sps.rankdata(np.abs(nonzero))
        w_plus = float(ranks[nonzero > 0].sum())
        w_minus = float(ranks[nonzero < 0].sum())
        res.update(
            statistic=statistic,
            p_value=p_value,
            p_method=p_method,
            effect_size=(w_plus - w_minus) / (w_plus + w_minus),
        )
        if n_nonzero <= 5:
            notes.append(
                f"only {n_nonzero} nonzero difference(s): no two-sided p below "
                f"{2.0 ** (1 - n_nonzero):.4g} is possible"
            )
    if n_zero and n_nonzero:
        how = {
            "wilcox": "dropped before ranking (Wilcoxon)",
            "pratt": "ranked then dropped (Pratt)",
            "zsplit": "ranks split between W+ and W-",
        }[zero_method]
        notes.append(f"{n_zero} zero difference(s) {how}")
    if res["n_tied"]:
        notes.append(f"{res['n_tied']} tied |differences| (average ranks)")
    res["note"] = "; ".join(notes)
    return res


def _mwu_arrays(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Two-sided Mann-Whitney U between independent samples (no missing values)."""
    n1, n2 = int(a.size), int(b.size)
    pooled = np.concatenate([a, b])
    notes: list[str] = []
    res: dict[str, Any] = dict(
        design="unpaired",
        test=_MWU,
        n=n1 + n2,
        n_a=n1,
        n_b=n2,
        n_pairs=0,
        n_zero_diff=0,
        n_tied=_n_tied(pooled),
        zero_method="",
        mean_a=float(a.mean()) if n1 else np.nan,
        mean_b=float(b.mean()) if n2 else np.nan,
        median_a=float(np.median(a)) if n1 else np.nan,
        median_b=float(np.median(b)) if n2 else np.nan,
        median_diff=_hodges_lehmann(a, b) if n1 and n2 else np.nan,
        median_diff_method=_HL_MEDIAN,
        median_of_diffs=np.nan,  # no pairs, no per-scan differences
        statistic_name="U_a",
        effect_size_name=_RBC_UNPAIRED,
    )
    res["mean_diff"] = res["mean_a"] - res["mean_b"]
    res["ci_low"], res["ci_high"] = _bootstrap_hodges_lehmann(a, b, n_boot, seed)
    if n1 == 0 or n2 == 0:
        res.update(statistic=np.nan, p_value=np.nan, p_method="none", effect_size=np.nan)
        notes.append("one side has no values: no test")
    elif np.ptp(pooled) == 0:
        res.update(
            statistic=n1 * n2 / 2, p_value=1.0, p_method="none (all values equal)", effect_size=0.0
        )
        notes.append("all values equal: p set to 1, effect size 0")
    else:
        exact = (n1 <= 8 or n2 <= 8) and res["n_tied"] == 0
        method = "exact" if exact else "asymptotic"
        r = sps.mannwhitneyu(a, b, alternative="two-sided", method=method)
        u = float(r.statistic)
        res.update(
            statistic=u,
            p_value=float(r.pvalue),
            p_method="exact"
            if exact
            else "normal approximation (tie-corrected variance, continuity correction)",
            effect_size=2.0 * u / (n1 * n2) - 1.0,
        )
    if res["n_tied"]:
        notes.append(f"{res['n_tied']} tied values (average ranks)")
    res["note"] = "; ".join(notes)
    return res


def _as_series(x: pd.Series | Sequence[float] | np.ndarray, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        s = pd.to_numeric(x, errors="coerce").astype(float)
    else:
        s = pd.Series(np.asarray(x, dtype=float))
    s = s.copy()
    s[~np.isfinite(s.to_numpy())] = np.nan
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()].unique()
        raise LesionresError(
            f"{name}: scan id(s) appear more than once: {', '.join(map(str, dup[:3]))}"
        )
    return s


def paired_test(
    a: pd.Series,
    b: pd.Series,
    *,
    zero_method: ZeroMethod = "wilcox",
    n_boot: int = 2000,
    seed: int = 0,
    name_a: str = "a",
    name_b: str = "b",
) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``a - b`` on the same scans, matched by index.

    The two Series are indexed by scan id (e.g. ``dataset/subject_id``); they are aligned by
    that index, never by position. Pairs with a non-finite side are dropped and counted.

    Args:
        a: metric per scan under condition a.
        b: metric per scan under condition b.
        zero_method: zero differences: ``"wilcox"`` (drop them, default), ``"pratt"`` (rank
            them, then drop their ranks) or ``"zsplit"`` (split their ranks between W+ and W-).
        n_boot: bootstrap resamples for the CI of the Hodges-Lehmann pseudomedian.
        seed: bootstrap seed.
        name_a: name of a in error messages.
        name_b: name of b in error messages.

    Returns:
        A dict with the fields of :data:`COMPARISON_COLUMNS` except the condition names and
        the correction (``n`` is the number of pairs the test ranks: after dropping missing
        values and, for ``"wilcox"``, zero differences).

    Raises:
        LesionresError: the two index sets differ (a paired test on different scans is
            invalid: use :func:`unpaired_test` for different cohorts), or an id repeats.
    """
    _check_zero_method(zero_method)
    sa, sb = _as_series(a, name_a), _as_series(b, name_b)
    ia, ib = set(sa.index), set(sb.index)
    if ia != ib:
        only_a, only_b = sorted(map(str, ia - ib)), sorted(map(str, ib - ia))
        raise LesionresError(
            f"paired test {name_a} vs {name_b}: the two conditions do not hold the same scans "
            f"({len(ia & ib)} shared, {len(only_a)} only in {name_a} e.g. {only_a[:3]}, "
            f"{len(only_b)} only in {name_b} e.g. {only_b[:3]}); a signed-rank test needs the "
            "same scans on both sides: use an unpaired test for different cohorts"
        )
    sb = sb.reindex(sa.index)
    both = sa.notna() & sb.notna()
    res = _wilcoxon_arrays(sa[both].to_numpy(), sb[both].to_numpy(), zero_method, n_boot, seed)
    res["n_dropped_nan"] = int((~both).sum())
    return res


def unpaired_test(
    a: pd.Series | Sequence[float] | np.ndarray,
    b: pd.Series | Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    name_a: str = "a",
    name_b: str = "b",
) -> dict[str, Any]:
    """Two-sided Mann-Whitney U test between independent samples (different scans).

    Args:
        a: metric per scan under condition a (Series indexed by scan id, or an array).
        b: metric per scan under condition b.
        n_boot: bootstrap resamples for the CI of the Hodges-Lehmann shift.
        seed: bootstrap seed.
        name_a: name of a in error messages.
        name_b: name of b in error messages.

    Returns:
        A dict with the fields of :data:`COMPARISON_COLUMNS` (see :func:`paired_test`).

    Raises:
        LesionresError: both are Series indexed by scan ids and share a scan (the samples are
            not independent: use :func:`paired_test`).
    """
    sa, sb = _as_series(a, name_a), _as_series(b, name_b)
    if (
        isinstance(a, pd.Series)
        and isinstance(b, pd.Series)
        and not isinstance(a.index, pd.RangeIndex)
        and not isinstance(b.index, pd.RangeIndex)
    ):
        shared = set(sa.index) & set(sb.index)
        if shared:
            raise LesionresError(
                f"unpaired test {name_a} vs {name_b}: {len(shared)} scan(s) are in both, e.g. "
                f"{sorted(map(str, shared))[:3]}; samples of the same scans are not independent"
            )
    va, vb = sa.dropna().to_numpy(), sb.dropna().to_numpy()
    res = _mwu_arrays(va, vb, n_boot, seed)
    res["n_dropped_nan"] = int(sa.isna().sum() + sb.isna().sum())
    return res


# --------------------------------------------------------------------------- comparisons


def _compare_blocks(
    ba: pd.DataFrame,
    bb: pd.DataFrame,
    name_a: str,
    name_b: str,
    *,
    zero_method: str,
    partial: str,
    n_boot: int,
    seed: int,
    where: str = "",
) -> dict[str, Any]:
    """Test one pair of condition blocks, choosing the design from their scan sets."""
    ka, kb = set(ba.index), set(bb.index)
    shared = ka & kb
    notes: list[str] = []
    if ka == kb or (shared and partial == "intersect"):
        if ka != kb:
            notes.append(
                f"partial overlap: paired on the {len(shared)} shared scans; "
                f"{len(ka - kb)} only in {name_a} and {len(kb - ka)} only in {name_b} left out"
            )
            keep = sorted(shared)
            ba, bb = ba.loc[keep], bb.loc[keep]
        bb = bb.reindex(ba.index)
        failed = ba["failed"].to_numpy() | bb["failed"].to_numpy()
        missing = ~failed & (ba["value"].isna().to_numpy() | bb["value"].isna().to_numpy())
        res = paired_test(
            ba["value"][~failed],
            bb["value"][~failed],
            zero_method=zero_method,  # type: ignore[arg-type]
            n_boot=n_boot,
            seed=seed,
            name_a=name_a,
            name_b=name_b,
        )
        res["n_dropped_nan"] = int(missing.sum())
        res["n_dropped_failed"] = int(failed.sum())
    elif not shared:
        res = unpaired_test(
            ba["value"][~ba["failed"]].to_numpy(),
            bb["value"][~bb["failed"]].to_numpy(),
            n_boot=n_boot,
            seed=seed,
        )
        res["n_dropped_nan"] = int(
            (ba["value"].isna() & ~ba["failed"]).sum() + (bb["value"].isna() & ~bb["failed"]).sum()
        )
        res["n_dropped_failed"] = int(ba["failed"].sum() + bb["failed"].sum())
        notes.append("different scans (disjoint ids): independent samples")
    else:
        raise LesionresError(
            f"conditions '{name_a}' and '{name_b}'{where} share {len(shared)} of their "
            f"{len(ka)} / {len(kb)} scans ({len(ka - kb)} only in '{name_a}', e.g. "
            f"{sorted(ka - kb)[:3]}; {len(kb - ka)} only in '{name_b}', e.g. "
            f"{sorted(kb - ka)[:3]}): "
            "neither a paired nor an unpaired design. Pass partial='intersect' (CLI: --partial "
            "intersect) to pair on the shared scans, or fix the results table"
        )
    da, db = _datasets(ba), _datasets(bb)
    res.update(dataset_a=da, dataset_b=db, cohort_shift=bool(da and db and da != db))
    if res["cohort_shift"]:
        notes.append(
            f"datasets differ ({da} vs {db}): the difference mixes a cohort/modality shift "
            "with any resolution shift"
        )
    if res["n_dropped_failed"]:
        notes.append(f"{res['n_dropped_failed']} failed row(s) left out")
    if res["n_dropped_nan"]:
        notes.append(f"{res['n_dropped_nan']} missing (NaN/inf) value(s) dropped")
    res["note"] = "; ".join([n for n in [res.get("note", "")] + notes if n])
    return res


def _finish(
    rows: list[dict[str, Any]], lead: list[str], correction: str, alpha: float
) -> pd.DataFrame:
    if correction not in _CORRECTIONS:
        raise LesionresError(
            f"correction: expected one of {', '.join(_CORRECTIONS)}, got {correction!r}"
        )
    if not 0 < alpha < 1:
        raise LesionresError(f"alpha: expected a number between 0 and 1, got {alpha}")
    cols = lead + [c for c in COMPARISON_COLUMNS if c not in lead]
    out = pd.DataFrame.from_records(rows)
    if out.empty:
        return pd.DataFrame(columns=cols)
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(), correction)  # type: ignore
    out["correction"] = f"{correction} over {int(out['p_value'].notna().sum())} tests"
    # NaN compares False: an untested row is not significant
    out["significant"] = out["p_adjusted"] < alpha
    return out.reindex(columns=cols)


def _check_common(n_boot: int, zero_method: str, partial: str) -> None:
    _check_zero_method(zero_method)
    if partial not in _PARTIALS:
        raise LesionresError(f"partial: expected one of {', '.join(_PARTIALS)}, got {partial!r}")
    if n_boot < 0:
        raise LesionresError(f"n_boot: expected a non-negative integer, got {n_boot}")


def compare_conditions(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    conditions: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: ZeroMethod = "wilcox",
    partial: Partial = "error",
    match: Match = "strict",
) -> pd.DataFrame:
    """Test every pair of conditions (per model), with one multiple-comparison correction.

    For each pair the design is read from the scan sets: identical -> paired Wilcoxon
    signed-rank; disjoint -> Mann-Whitney U; partial overlap -> error (or paired on the shared
    scans with ``partial="intersect"``). All rows returned form one family for the correction.

    Args:
        df: results table (``subject_id``, ``condition``, the metric; optional ``dataset``,
            ``model``, ``error``).
        metric: metric column to compare.
        conditions: conditions to include (default: all, in order of first appearance).
        pairs: explicit ``(condition_a, condition_b)`` pairs (planned comparisons; a smaller
            family gives more power) instead of every pair.
        correction: ``"holm"`` (default) or ``"fdr_bh"``.
        alpha: significance level applied to the adjusted p-values.
        n_boot: bootstrap resamples for the CI of ``median_diff``.
        seed: bootstrap seed (each comparison uses it afresh, so a pair's CI does not depend
            on which other pairs are in the table).
        zero_method: ``"wilcox"``, ``"pratt"`` or ``"zsplit"`` (see :func:`paired_test`).
        partial: ``"error"`` or ``"intersect"`` for pairs whose scan sets partly overlap.
        match: how scans under two dataset labels are read (see :func:`harmonise_labels`).

    Returns:
        One row per pair with :data:`COMPARISON_COLUMNS` (``model`` first if present).

    Raises:
        LesionresError: missing columns, unknown conditions, duplicate scans, partial overlap.
    """
    _require(df, ["subject_id", "condition", metric])
    _check_common(n_boot, zero_method, partial)
    df = harmonise_labels(df, match)
    conds = _select_conditions(df, conditions)
    if pairs is not None:
        pair_list = [(str(x), str(y)) for x, y in pairs]
        unknown = sorted({c for p in pair_list for c in p} - set(condition_order(df)))
        if unknown:
            raise LesionresError(f"pairs: unknown condition(s) {', '.join(unknown)}")
    else:
        pair_list = list(combinations(conds, 2))
    has_model = _has_models(df)
    groups = df.groupby("model", sort=False) if has_model else [(None, df)]
    rows: list[dict[str, Any]] = []
    for model, sub in groups:
        where = f" (model '{model}')" if has_model else ""
        present = set(condition_order(sub))
        blocks = {c: _block(sub, metric, c, where) for c in conds if c in present}
        for ca, cb in pair_list:
            if ca not in blocks or cb not in blocks:
                continue
            res = _compare_blocks(
                blocks[ca], blocks[cb], ca, cb,
                zero_method=zero_method, partial=partial, n_boot=n_boot, seed=seed, where=where,
            )  # fmt: skip
            res.update(metric=metric, condition_a=ca, condition_b=cb)
            if has_model:
                res["model"] = model
            rows.append(res)
    return _finish(rows, (["model"] if has_model else []) + ["metric"], correction, alpha)


def _select_conditions(df: pd.DataFrame, conditions: Sequence[str] | None) -> list[str]:
    order = condition_order(df)
    if conditions is None:
        return order
    conditions = [str(c) for c in conditions]
    unknown = [c for c in conditions if c not in order]
    if unknown:
        raise LesionresError(
            f"conditions: unknown {', '.join(unknown)}; the table has {', '.join(order)}"
        )
    return conditions


def compare_models(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    conditions: Sequence[str] | None = None,
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: ZeroMethod = "wilcox",
    partial: Partial = "error",
    match: Match = "strict",
) -> pd.DataFrame:
    """Paired Wilcoxon between every pair of models within each condition (same scans).

    Args:
        df: results table with a ``model`` column holding at least two models.
        metric: metric column to compare.
        conditions: conditions to include (default: all).
        correction: ``"holm"`` (default) or ``"fdr_bh"``, over all (condition, model pair) rows.
        alpha: significance level for the adjusted p-values.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        zero_method: see :func:`paired_test`.
        partial: see :func:`compare_conditions`.
        match: see :func:`harmonise_labels`.

    Returns:
        Columns ``condition, model_a, model_b`` followed by :data:`COMPARISON_COLUMNS` minus
        the condition pair.

    Raises:
        LesionresError: fewer than two models, or two models scored on different scans.
    """
    _require(df, ["subject_id", "condition", "model", metric])
    _check_common(n_boot, zero_method, partial)
    df = harmonise_labels(df, match)
    models = [str(m) for m in pd.unique(df["model"])]
    if len(models) < 2:
        raise LesionresError(
            f"compare_models: the 'model' column holds {len(models)} model(s); need 2+"
        )
    rows: list[dict[str, Any]] = []
    for cond in _select_conditions(df, conditions):
        sub = df[df["condition"].astype(str) == cond]
        blocks = {
            m: _block(sub[sub["model"].astype(str) == m], metric, cond, f" (model '{m}')")
            for m in models
        }
        for ma, mb in combinations(models, 2):
            ba, bb = blocks[ma], blocks[mb]
            if ba.empty or bb.empty:
                continue
            if not set(ba.index) & set(bb.index):
                raise LesionresError(
                    f"condition '{cond}': models '{ma}' and '{mb}' were scored on different scans; "
                    "models are compared on the same scans only"
                )
            res = _compare_blocks(
                ba, bb, ma, mb, zero_method=zero_method, partial=partial, n_boot=n_boot,
                seed=seed, where=f" in condition '{cond}'",
            )  # fmt: skip
            res.update(metric=metric, condition=cond, model_a=ma, model_b=mb)
            rows.append(res)
    out = _finish(rows, ["condition", "model_a", "model_b", "metric"], correction, alpha)
    return out.drop(columns=["condition_a", "condition_b"])


# --------------------------------------------------------------------------- omnibus


def paired_block(
    df: pd.DataFrame, conditions: Sequence[str] | None = None
) -> list[str]:
    """The largest group of conditions that hold exactly the same scans (the paired design).

    Ties are broken by first appearance, so with ATLAS conditions plus one ISLES cohort this
    is the ATLAS conditions.

    Args:
        df: results table for one model.
        conditions: candidates (default: all).
    """
    conds = _select_conditions(df, conditions)
    keys = scan_keys(df)
    groups: dict[frozenset[str], list[str]] = {}
    for c in conds:
        groups.setdefault(frozenset(keys[df["condition"].astype(str) == c]), []).append(c)
    return max(groups.values(), key=len) if groups else []


def friedman(
    df: pd.DataFrame,
    metric: str = "dice",
    conditions: Sequence[str] | None = None,
    *,
    model: str | None = None,
) -> dict[str, Any]:
    """Omnibus Friedman test across >= 3 paired conditions, with Kendall's W.

    Only scans with a value under every condition enter (complete cases; the rest are
    counted in ``n_dropped``). Kendall's W = chi2 / (n (k - 1)) from the tie-corrected
    Friedman chi-square (0 = no agreement in ranking the conditions, 1 = every scan ranks
    them the same way).

    Args:
        df: results table.
        metric: metric column.
        conditions: conditions to test; they must hold the same scans. Default: the largest
            paired group (:func:`paired_block`), which leaves other cohorts out.
        model: model to test when the table holds several.

    Returns:
        dict with ``metric, model, conditions, k, n, n_dropped, statistic, p_value,
        kendall_w, test, note``.

    Raises:
        LesionresError: fewer than 3 conditions, conditions on different scans, several
            models and none chosen.
    """
    _require(df, ["subject_id", "condition", metric])
    if _has_models(df):
        models = [str(m) for m in pd.unique(df["model"].dropna().astype(str))]
        if model is None and len(models) > 1:
            raise LesionresError(
                f"friedman: the table holds models {', '.join(models)}; pass model="
            )
        if model is not None:
            if model not in models:
                raise LesionresError(
                    f"friedman: unknown model {model!r}; the table has {', '.join(models)}"
                )
            df = df[df["model"].astype(str) == model]
        else:
            model = models[0]
    conds = paired_block(df) if conditions is None else _select_conditions(df, conditions)
    if len(conds) < 3:
        raise LesionresError(
            f"friedman: needs at least 3 conditions on the same scans, got {len(conds)} "
            f"({', '.join(conds)})"
        )
    blocks = {c: _block(df, metric, c) for c in conds}
    ref = set(blocks[conds[0]].index)
    for c in conds[1:]:
        if set(blocks[c].index) != ref:
            raise LesionresError(
                f"friedman: conditions '{conds[0]}' and '{c}' do not hold the same scans; the "
                "Friedman test needs one set of scans measured under every condition"
            )
    wide = pd.DataFrame({c: blocks[c]["value"] for c in conds})
    complete = wide.dropna()
    n, k = complete.shape
    note = []
    if len(wide) - n:
        note.append(f"{len(wide) - n} scan(s) without a value under every condition left out")
    stat, p, w = np.nan, np.nan, np.nan
    if n < 2:
        note.append("fewer than 2 complete scans: no test")
    elif (complete.nunique(axis=1) == 1).all():
        stat, p, w = 0.0, 1.0, 0.0
        note.append("every scan has the same value under all conditions: p set to 1, W 0")
    else:
        r = sps.friedmanchisquare(*[complete[c].to_numpy() for c in conds])
        stat, p = float(r.statistic), float(r.pvalue)
        w = stat / (n * (k - 1))
    return dict(
        metric=metric,
        model=model,
        conditions=";".join(conds),
        k=int(k),
        n=int(n),
        n_dropped=int(len(wide) - n),
        statistic=stat,
        p_value=p,
        kendall_w=w,
        test="Friedman chi-square (tie-corrected)",
        note="; ".join(note),
    )


# --------------------------------------------------------------------------- stratification

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
