"""Is this voxel size good enough? Non-inferiority, equivalence, crossing resolution, sample size.

A non-significant difference is not evidence of no difference: with 9 scans almost nothing is
significant. The question a resolution study answers is "down to which voxel size is the model
as good as at the reference resolution, within a margin I can live with?". For every condition
on the same scans as the reference (``original`` by default), per metric with a margin:

* ``g`` are the per-scan differences oriented so that **positive means the condition is
  better**: ``condition - reference`` for a metric where higher is better (Dice),
  ``reference - condition`` for an error metric (HD95, volume difference); the direction comes
  from :func:`lesionres.analysis.stats.better_direction`. ``estimate``, ``ci_low`` and
  ``ci_high`` are in the metric's own units and sign, ``condition - reference``.
* **Non-inferiority**: one-sided Wilcoxon signed-rank test of ``g + margin`` (alternative
  ``"greater"``; H0: the condition is worse by the margin or more). **Inferiority** (worse by
  more than the margin): the same shifted differences, alternative ``"less"``. **Equivalence**
  (TOST): the non-inferiority test and the test of ``g - margin`` (alternative ``"less"``;
  H0: better by the margin or more), ``p_equivalence`` the larger of the two one-sided p-values.
  Shifted differences are rounded to 12 decimals, so a scan exactly on the margin is a zero
  difference and equal differences tie, as in exact arithmetic. The p-value method follows
  scipy's ``"auto"`` rule, as the two-sided tests do (:mod:`lesionres.analysis.stats`).
* The estimate is the Hodges-Lehmann pseudomedian of all paired differences (the shifted tests
  rank every pair, zeros included), with a percentile bootstrap CI at the matching level,
  ``1 - 2 alpha`` two-sided (90% at alpha 0.05: the CI lies inside ``+-margin`` when the TOST
  rejects at alpha).
* Holm (or Benjamini-Hochberg) over the family of rows (every model, metric and condition),
  for each kind of claim separately; ``p_adjusted`` is the adjusted non-inferiority p. Verdict:
  ``equivalent`` (adjusted TOST p < alpha), else ``non-inferior`` (adjusted non-inferiority p
  < alpha), else ``inferior`` (adjusted inferiority p < alpha), else ``inconclusive``. Never
  "no difference".
* **Crossing resolution**, per method (resolution curve): the largest voxel size that is still
  non-inferior (it and every finer level of the method), and where the curve of means (as the
  resolution figure draws it) crosses the margin's limit, the reference mean minus the margin
  (plus, for an error metric), linear between tested resolutions, with a bootstrap interval
  over scans (the same resampled scans under every condition).
* **Sample size**: the scans needed for 80% power at alpha, to detect the observed difference
  (two-sided), to show non-inferiority at the margin, or inferiority, by resampling the
  observed paired differences (seeded; normal-approximation signed-rank tests, zeros dropped;
  a grid of n). At alpha itself, before the multiplicity correction: with many rows in the
  family, a few more scans are needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from lesionres.analysis.figures import resolution_axis
from lesionres.analysis.stats import (
    _block,
    _bootstrap_pseudomedian,
    _count_vectors,
    _has_models,
    _pseudomedian,
    _require,
    _signed_rank,
    adjust_pvalues,
    better_direction,
    condition_order,
    harmonise_labels,
)
from lesionres.errors import LesionresError

__all__ = [
    "CROSSING_COLUMNS",
    "DEFAULT_MARGINS",
    "NONINFERIORITY_COLUMNS",
    "SAMPLE_SIZE_GRID",
    "VERDICTS",
    "default_reference",
    "margin_crossing",
    "methods_text",
    "compare_to_reference",
    "parse_margins",
    "report_lines",
    "resampled_power",
    "scans_for_comparisons",
    "scans_needed",
    "shifted_differences",
]

#: Margins used when none are given: a deliberately small loss of two Dice points (a choice,
#: not a measurement; README "Choosing a margin"). ``--margin none`` turns them off.
DEFAULT_MARGINS: dict[str, float] = {"dice": 0.02}

#: The four verdicts, best first.
VERDICTS: tuple[str, ...] = ("equivalent", "non-inferior", "inferior", "inconclusive")

#: Columns of :func:`compare_to_reference` (``model`` first when the table has models).
NONINFERIORITY_COLUMNS: tuple[str, ...] = (
    "metric", "condition", "reference", "margin", "direction", "n", "estimate", "ci_low",
    "ci_high", "p_noninferiority", "p_equivalence", "p_adjusted", "verdict",
    # beyond the columns: the other claims, the level, and what n would settle it
    "ci_level", "p_inferiority", "p_equivalence_adjusted", "p_inferiority_adjusted",
    "correction", "n_dropped", "power_difference", "n_for_difference", "power_noninferiority",
    "n_for_noninferiority", "n_for_inferiority", "note",
)  # fmt: skip

#: Columns of :func:`margin_crossing` (``model`` first when the table has models).
CROSSING_COLUMNS: tuple[str, ...] = (
    "metric", "method", "reference", "margin", "direction", "x_axis", "levels",
    "largest_noninferior", "largest_noninferior_mm", "crossing_mm", "crossing_low",
    "crossing_high", "ci_level", "n", "note",
)  # fmt: skip

#: Sample sizes tried by :func:`scans_needed` (beyond the last: reported as not reached).
SAMPLE_SIZE_GRID: tuple[int, ...] = (
    5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 120,
    140, 160, 180, 200, 250, 300, 350, 400, 500, 600, 700, 800, 1000,
)  # fmt: skip


# --------------------------------------------------------------------------- margins


def parse_margins(items: Sequence[str] | Mapping[str, float] | None) -> dict[str, float]:
    """Margins from ``["dice=0.02", "hd95_mm=2"]`` (the CLI), a mapping, or the defaults.

    Args:
        items: ``METRIC=VALUE`` strings, a ``{metric: margin}`` mapping, ``None`` (the
            :data:`DEFAULT_MARGINS`) or ``["none"]`` (no margin: no non-inferiority analysis).

    Returns:
        ``{metric: margin}``, margins positive and in the metric's units.

    Raises:
        LesionresError: malformed item, a margin that is not a positive number, or a metric
            without a better direction (volumes, counts, the signed relative volume difference).
    """
    if items is None:
        return dict(DEFAULT_MARGINS)
    if isinstance(items, Mapping):
        pairs = [(str(k), v) for k, v in items.items()]
    else:
        if [str(i).lower() for i in items] == ["none"]:
            return {}
        pairs = []
        for item in items:
            metric, sep, value = str(item).partition("=")
            if not sep or not metric.strip():
                raise LesionresError(
                    f"--margin: expected METRIC=VALUE (e.g. dice=0.02), got {item!r}"
                )
            pairs.append((metric.strip(), value))
    margins: dict[str, float] = {}
    for metric, value in pairs:
        try:
            margin = float(value)
        except (TypeError, ValueError):
            raise LesionresError(f"--margin {metric}: not a number: {value!r}") from None
        if not np.isfinite(margin) or margin <= 0:
            raise LesionresError(f"--margin {metric}: expected a positive number, got {value!r}")
        if better_direction(metric) is None:
            raise LesionresError(
                f"--margin {metric}: this metric has no better direction (higher is not better "
                "or worse), so 'as good as the reference' is undefined; margins apply to quality "
                "metrics (dice, lesion_f1, ...) and error metrics (hd95_mm, abs_volume_diff_ml)"
            )
        margins[metric] = margin
    return margins


def default_reference(df: pd.DataFrame) -> str | None:
    """The condition named ``original``, else the first whose ``method`` is ``original``."""
    conds = condition_order(df)
    if "original" in conds:
        return "original"
    if "method" in df.columns:
        methods = df.groupby(df["condition"].astype(str), sort=False)["method"].first()
        for c in conds:
            if str(methods.get(c)) == "original":
                return c
    return None


# --------------------------------------------------------------------------- one comparison


def shifted_differences(g: np.ndarray, shift: float) -> np.ndarray:
    """``g + shift``, rounded to 12 decimals (a difference equal to the margin is a zero).

    Without the rounding, ``0.78 - 0.80 + 0.02`` is ``1e-17``: a scan exactly on the margin
    would count as a (tiny) difference and equal differences would not tie.
    """
    return np.round(np.asarray(g, dtype=float) + shift, 12)


def _one_sided(x: np.ndarray, alternative: str, zero_method: str) -> float:
    if x.size == 0:
        return np.nan
    if not np.any(x != 0):
        return 1.0  # every scan exactly on the margin: no evidence either way
    return _signed_rank(x, zero_method, alternative)[1]


def _signed_rank_pvalues(x: np.ndarray, counts: np.ndarray, alternative: str) -> np.ndarray:
    """Signed-rank p-value of each resample of ``x`` (normal approximation, zeros dropped).

    Resample ``k`` holds observed value ``x[i]`` ``counts[k, i]`` times. The ranks come from
    the counts, never from sorting a resample: values sharing ``|x|`` form one tie group,
    whose average rank is the count of smaller nonzero values plus ``(t + 1) / 2``, so the cost
    does not grow with the resample's size. The variance is tie-corrected as in scipy's
    ``wilcoxon(method="asymptotic")`` (no continuity correction).
    """
    magnitudes, group = np.unique(np.abs(x), return_inverse=True)
    sign = np.zeros((x.size, magnitudes.size))
    sign[np.arange(x.size), group] = np.sign(x)  # +1 / -1 into the value's tie group; zeros: 0
    counts = counts.astype(float)
    pos = counts @ (sign > 0)
    t = pos + counts @ (sign < 0)  # nonzero values per tie group
    rank = np.cumsum(t, axis=1) - t + (t + 1) / 2
    w_plus = (pos * rank).sum(axis=1)
    m = t.sum(axis=1)
    var = m * (m + 1) * (2 * m + 1) / 24 - (t**3 - t).sum(axis=1) / 48
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (w_plus - m * (m + 1) / 4) / np.sqrt(var)
    if alternative == "greater":
        p = sps.norm.sf(z)
    elif alternative == "less":
        p = sps.norm.cdf(z)
    else:
        p = 2 * sps.norm.sf(np.abs(z))
    return np.where(var > 0, np.minimum(p, 1.0), 1.0)


def resampled_power(
    x: np.ndarray,
    n: int,
    alternative: str,
    *,
    alpha: float = 0.05,
    n_resamples: int = 300,
    seed: int = 0,
) -> float:
    """Power of the signed-rank test on ``n`` scans drawn (with replacement) from ``x``.

    Args:
        x: the observed differences, already shifted for the hypothesis tested (``g + margin``
            for non-inferiority, ``g`` for a difference).
        n: scans per simulated study.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        alpha: significance level.
        n_resamples: simulated studies.
        seed: seed; the same seed for every ``n`` (common random numbers keep the power curve
            smooth in ``n``).

    Returns:
        The fraction of simulated studies with p < alpha (NaN without data).
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0 or n < 1 or n_resamples < 1:
        return np.nan
    # n draws with replacement, as counts per observed value (the same law as n indices)
    counts = np.random.default_rng(seed).multinomial(n, np.full(x.size, 1 / x.size), n_resamples)
    return float(np.mean(_signed_rank_pvalues(x, counts, alternative) < alpha))


def scans_needed(
    x: np.ndarray,
    alternative: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    n_resamples: int = 300,
    seed: int = 0,
    grid: Sequence[int] = SAMPLE_SIZE_GRID,
) -> float:
    """The smallest n of ``grid`` at which :func:`resampled_power` reaches ``power``.

    Power grows with n, so the grid is bisected (about 6 evaluations instead of 36).

    Args:
        x: the observed (shifted) differences.
        alternative: as in :func:`resampled_power`.
        alpha: significance level.
        power: target power.
        n_resamples: simulated studies per n.
        seed: resampling seed.
        grid: ascending sample sizes.

    Returns:
        The number of scans, or NaN when even the largest n of the grid falls short (the
        observed difference is too small, or lies on the wrong side of the margin).
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0 or not np.any(x != 0):
        return np.nan

    def ok(i: int) -> bool:
        got = resampled_power(x, grid[i], alternative, alpha=alpha, n_resamples=n_resamples,
                              seed=seed)  # fmt: skip
        return got >= power

    lo, hi = 0, len(grid) - 1
    if not ok(hi):
        return np.nan
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return float(grid[lo])


def scans_for_comparisons(
    df: pd.DataFrame,
    comparisons: pd.DataFrame,
    metric: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    n_resamples: int = 300,
    seed: int = 0,
) -> pd.Series:
    """Scans needed for ``power`` to detect each paired row's observed difference (two-sided).

    For :func:`lesionres.analysis.stats.compare_conditions` rows (optionally per ``model``)
    and :func:`lesionres.analysis.stats.compare_models` rows (``condition, model_a, model_b``):
    the complete pairs' differences are resampled as in :func:`scans_needed`. Unpaired rows
    (another cohort) get NaN, as do differences no n of the grid detects.

    Args:
        df: the results table the comparisons were computed from (labels harmonised).
        comparisons: their output.
        metric: the compared metric.
        alpha: significance level (before the multiplicity correction).
        power: target power.
        n_resamples: simulated studies per n.
        seed: resampling seed.

    Returns:
        A float Series aligned with ``comparisons``.
    """
    out = []
    for r in comparisons.to_dict(orient="records"):
        if r.get("design") != "paired":
            out.append(np.nan)
            continue
        if "model_a" in r:  # two models within one condition
            rows = df[df["condition"].astype(str) == r["condition"]]
            sides = [(rows[rows["model"].astype(str) == r[m]], r["condition"])
                     for m in ("model_a", "model_b")]  # fmt: skip
        else:
            rows = df if "model" not in r else df[df["model"].astype(str) == r["model"]]
            sides = [(rows, r["condition_a"]), (rows, r["condition_b"])]
        a, b = (_block(block, metric, cond) for block, cond in sides)
        b = b.reindex(a.index)
        ok = ~(a["failed"].to_numpy() | b["failed"].fillna(True).to_numpy(bool))
        d = (a["value"] - b["value"]).to_numpy()[ok]
        d = shifted_differences(d[np.isfinite(d)], 0.0)
        out.append(scans_needed(d, "two-sided", alpha=alpha, power=power,
                                n_resamples=n_resamples, seed=seed))  # fmt: skip
    return pd.Series(out, index=comparisons.index, dtype=float)


def _compare_to_margin(
    a: np.ndarray,
    b: np.ndarray,
    margin: float,
    direction: str,
    *,
    alpha: float,
    n_boot: int,
    seed: int,
    zero_method: str,
    power: float,
    n_resamples: int,
) -> dict[str, Any]:
    """The tests, estimate and sample sizes of condition ``a`` against reference ``b``."""
    d = a - b
    g = d if direction == "higher" else -d  # positive: the condition is better
    lower, upper = shifted_differences(g, margin), shifted_differences(g, -margin)
    plain = shifted_differences(g, 0.0)
    p_ni = _one_sided(lower, "greater", zero_method)
    p_eq = max(p_ni, _one_sided(upper, "less", zero_method)) if d.size else np.nan
    lo, hi = _bootstrap_pseudomedian(d, n_boot, seed, level=1 - 2 * alpha)
    sizes = dict(alpha=alpha, n_resamples=n_resamples, seed=seed)
    return dict(
        n=int(d.size),
        estimate=_pseudomedian(d),
        ci_low=lo,
        ci_high=hi,
        p_noninferiority=p_ni,
        p_equivalence=p_eq,
        p_inferiority=_one_sided(lower, "less", zero_method),
        power_difference=resampled_power(plain, d.size, "two-sided", **sizes),
        n_for_difference=scans_needed(plain, "two-sided", power=power, **sizes),
        power_noninferiority=resampled_power(lower, d.size, "greater", **sizes),
        n_for_noninferiority=scans_needed(lower, "greater", power=power, **sizes),
        n_for_inferiority=scans_needed(lower, "less", power=power, **sizes),
    )  # fmt: skip


def _notes(r: Mapping[str, Any], alpha: float) -> str:
    """What changes how a row reads: a CI at odds with the test, a loss within the margin."""
    sign = 1.0 if r["direction"] == "higher" else -1.0
    # the CI in the better-oriented scale: (worst, best)
    worst, best = sorted((sign * r["ci_low"], sign * r["ci_high"]))
    m, notes = r["margin"], []
    if r["n"] == 0:
        return "no complete pairs: no test"
    level = f"{100 * (1 - 2 * alpha):g}% CI"
    if r["verdict"] in ("equivalent", "non-inferior") and worst <= -m:
        notes.append(f"the {level} reaches the margin although the rank test rejects (they "
                     "disagree at the edge)")  # fmt: skip
    if r["verdict"] in ("equivalent", "non-inferior") and best < 0:
        notes.append("worse than the reference, by less than the margin")
    if r["verdict"] == "non-inferior" and worst > m:
        notes.append("better than the reference by more than the margin")
    if r["verdict"] == "inconclusive" and worst < -m < best:
        notes.append(f"the {level} spans the margin")
    elif r["verdict"] == "inconclusive":
        # the CI is not corrected for multiplicity; the tests behind the verdict are
        side = "clears" if worst > -m else "lies beyond"
        notes.append(f"the {level} {side} the margin (uncorrected for multiple comparisons)")
    return "; ".join(notes)


# --------------------------------------------------------------------------- the table


def compare_to_reference(
    df: pd.DataFrame,
    margins: Mapping[str, float] | None = None,
    *,
    reference: str | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: str = "wilcox",
    partial: str = "error",
    match: str = "strict",
    power: float = 0.8,
    n_resamples: int = 300,
) -> pd.DataFrame:
    """Non-inferiority and equivalence of every condition against the reference, per metric.

    Only conditions on the same scans as the reference enter (matched by ``dataset`` +
    ``subject_id``; with ``partial="intersect"`` a partial overlap is paired on the shared
    scans); conditions on other scans (another cohort) are listed in
    ``attrs["not_paired"]``. Failed rows and pairs with a missing value are left out
    (``n_dropped``). Conventions: see the module docstring.

    Args:
        df: results table.
        margins: ``{metric: margin}`` in the metric's units (default :data:`DEFAULT_MARGINS`;
            metrics absent from the table are skipped when defaulted, refused when given).
        reference: the reference condition (default: :func:`default_reference`).
        alpha: level of each one-sided test; the CI is ``1 - 2 alpha`` two-sided.
        correction: ``"holm"`` (default) or ``"fdr_bh"``, over all rows, per kind of claim.
        n_boot: bootstrap resamples of the CI.
        seed: seed of the bootstrap and of the sample-size resampling.
        zero_method: zero (shifted) differences in the signed-rank tests, as in
            :func:`lesionres.analysis.stats.paired_test`.
        partial: ``"error"`` or ``"intersect"`` for conditions sharing only some scans.
        match: see :func:`lesionres.analysis.stats.harmonise_labels`.
        power: target power of the sample sizes.
        n_resamples: simulated studies per sample size tried.

    Returns:
        One row per (model,) metric and condition with :data:`NONINFERIORITY_COLUMNS`.

    Raises:
        LesionresError: unknown reference, a given margin's metric absent, bad options,
            duplicate scans, or a partial overlap under ``partial="error"``.
    """
    _require(df, ["subject_id", "condition"])
    if not 0 < alpha < 0.5:
        raise LesionresError(f"alpha: expected a number between 0 and 0.5, got {alpha}")
    given = margins is not None
    margins = parse_margins(margins)
    missing = [m for m in margins if m not in df.columns]
    if given and missing:
        raise LesionresError(f"--margin: the table has no column {', '.join(missing)}")
    margins = {m: v for m, v in margins.items() if m in df.columns}
    df = harmonise_labels(df, match)  # type: ignore[arg-type]
    conds = condition_order(df)
    if reference is None:
        reference = default_reference(df)
    elif reference not in conds:
        raise LesionresError(
            f"--reference: no condition {reference!r}; the table has {', '.join(conds)}"
        )
    has_model = _has_models(df)
    lead = (["model"] if has_model else []) + list(NONINFERIORITY_COLUMNS)
    out = pd.DataFrame(columns=lead)
    if reference is None or not margins:
        out.attrs["not_paired"] = []
        return out
    groups = df.groupby("model", sort=False) if has_model else [(None, df)]
    rows: list[dict[str, Any]] = []
    not_paired: set[str] = set()
    test_args = dict(alpha=alpha, n_boot=n_boot, seed=seed, zero_method=zero_method,
                     power=power, n_resamples=n_resamples)  # fmt: skip
    for model, sub in groups:
        where = f" (model '{model}')" if has_model else ""
        present = condition_order(sub)
        if reference not in present:
            continue
        for metric, margin in margins.items():
            direction = better_direction(metric)
            ref = _block(sub, metric, reference, where)
            for cond in present:
                if cond == reference:
                    continue
                pairs = _pairs(_block(sub, metric, cond, where), ref, cond, reference, partial,
                               where)  # fmt: skip
                if pairs is None:
                    not_paired.add(cond)
                    continue
                a, b, dropped, note = pairs
                res = _compare_to_margin(a, b, margin, str(direction), **test_args)  # type: ignore[arg-type]
                res.update(metric=metric, condition=cond, reference=reference, margin=margin,
                           direction=direction, n_dropped=dropped, note=note)  # fmt: skip
                if has_model:
                    res["model"] = model
                rows.append(res)
    if rows:
        out = _decide(pd.DataFrame.from_records(rows), alpha, correction).reindex(columns=lead)
    out.attrs["not_paired"] = [c for c in conds if c in not_paired]
    return out


def _pairs(
    cond: pd.DataFrame, ref: pd.DataFrame, name: str, reference: str, partial: str, where: str
) -> tuple[np.ndarray, np.ndarray, int, str] | None:
    """Complete pairs (condition, reference) on the shared scans; None for another cohort."""
    kc, kr = set(cond.index), set(ref.index)
    shared = kc & kr
    note = ""
    if not shared:
        return None
    if kc != kr:
        if partial != "intersect":
            raise LesionresError(
                f"condition '{name}'{where} shares {len(shared)} of its {len(kc)} scans with the "
                f"reference '{reference}' ({len(kr)} scans): neither the same scans nor another "
                "cohort. Pass --partial intersect to pair the shared scans"
            )
        note = f"paired on the {len(shared)} scans shared with '{reference}'"
    keep = sorted(shared)
    c, r = cond.loc[keep], ref.loc[keep]
    ok = ~(c["failed"].to_numpy() | r["failed"].to_numpy())
    ok &= c["value"].notna().to_numpy() & r["value"].notna().to_numpy()
    return c["value"].to_numpy()[ok], r["value"].to_numpy()[ok], int((~ok).sum()), note


def _decide(out: pd.DataFrame, alpha: float, correction: str) -> pd.DataFrame:
    """Adjusted p-values per kind of claim, verdicts, and the notes that change a row's reading."""
    for raw, adjusted in (("p_noninferiority", "p_adjusted"),
                          ("p_equivalence", "p_equivalence_adjusted"),
                          ("p_inferiority", "p_inferiority_adjusted")):  # fmt: skip
        out[adjusted] = adjust_pvalues(out[raw].to_numpy(dtype=float), correction)  # type: ignore[arg-type]
    out["correction"] = f"{correction} over {int(out['p_noninferiority'].notna().sum())} rows"
    out["ci_level"] = 1 - 2 * alpha
    # NaN compares False: an untested row is inconclusive
    out["verdict"] = np.select(
        [out["p_equivalence_adjusted"] < alpha, out["p_adjusted"] < alpha,
         out["p_inferiority_adjusted"] < alpha],
        list(VERDICTS[:3]),
        VERDICTS[3],
    )  # fmt: skip
    notes = [
        "; ".join(n for n in (r.get("note", ""), _notes(r, alpha)) if n)
        for r in out.to_dict(orient="records")
    ]
    out["note"] = notes
    return out


# --------------------------------------------------------------------------- crossing


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
        match: see :func:`lesionres.analysis.stats.harmonise_labels`.

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


# --------------------------------------------------------------------------- report text

_MEANING = """\
What the verdicts mean (each a claim the data support at alpha = {alpha} after {correction}):

- **equivalent**: within the margin of the reference on both sides (both one-sided tests
  reject, TOST): the change of resolution costs less than the margin and gains no more.
- **non-inferior**: worse than the reference by less than the margin, at most (it may be better
  by more than the margin, which equivalence excludes).
- **inferior**: worse than the reference by more than the margin.
- **inconclusive**: none of these can be shown with these scans; the data fit a loss beyond the
  margin as well as none. This is not "no difference": the last columns say how many scans
  would settle it.
"""


def _scans(n: float) -> str:
    return f"{int(n)}" if np.isfinite(n) else f"> {SAMPLE_SIZE_GRID[-1]}"


def _view(table: pd.DataFrame, labels: Mapping[str, str], fmt: Any, fmt_p: Any) -> pd.DataFrame:
    """The non-inferiority table as the report shows it (the CSV keeps every column)."""
    out = pd.DataFrame({"model": table["model"]}) if "model" in table.columns else pd.DataFrame()
    out["metric"] = [labels.get(m, m) for m in table["metric"]]
    out["condition"] = table["condition"].to_numpy()
    out["n"] = table["n"].to_numpy()
    level = f"{100 * float(table['ci_level'].iloc[0]):g}%"
    out[f"Hodges-Lehmann [{level} CI]"] = [
        f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]"
        for e, lo, hi in zip(table["estimate"], table["ci_low"], table["ci_high"], strict=True)
    ]
    out["limit"] = [f"{'-' if d == 'higher' else '+'}{fmt(m)}"
                     for d, m in zip(table["direction"], table["margin"], strict=True)]  # fmt: skip
    out["p non-inf."] = table["p_noninferiority"].map(fmt_p).to_numpy()
    out["p TOST"] = table["p_equivalence"].map(fmt_p).to_numpy()
    out["p adj. (non-inf.)"] = table["p_adjusted"].map(fmt_p).to_numpy()
    out["verdict"] = [f"**{v}**" for v in table["verdict"]]
    out["power now (non-inf.)"] = [f"{p:.0%}" if np.isfinite(p) else ""
                                   for p in table["power_noninferiority"]]  # fmt: skip
    out["scans for 80%: non-inf. / difference"] = [
        f"{_scans(a)} / {_scans(b)}"
        for a, b in zip(table["n_for_noninferiority"], table["n_for_difference"], strict=True)
    ]
    return out


def report_lines(
    table: pd.DataFrame,
    crossing: pd.DataFrame,
    *,
    margins: Mapping[str, float],
    defaulted: bool,
    reference: str | None,
    alpha: float,
    correction: str,
    labels: Mapping[str, str],
    fmt: Any,
    fmt_p: Any,
    markdown: Any,
) -> list[str]:
    """The report's section on margins: verdicts, crossing resolution, sample sizes.

    Args:
        table: :func:`compare_to_reference` output.
        crossing: :func:`margin_crossing` output.
        margins: the margins used.
        defaulted: the margins are :data:`DEFAULT_MARGINS` (nobody chose them).
        reference: the reference condition (None: none found).
        alpha: level of each one-sided test.
        correction: ``"holm"`` or ``"fdr_bh"``.
        labels: display names of the metrics.
        fmt: number formatter; fmt_p: p-value formatter; markdown: DataFrame -> Markdown.

    Returns:
        Markdown lines.
    """
    title = f"against `{reference}`" if reference else "against a reference"
    out = [f"## Good enough? Non-inferiority and equivalence {title}\n"]
    if not margins:
        return out + ["Not run: no margin (`--margin none`).\n"]
    if reference is None:
        return out + [
            "Not run: the table has no `original` condition; name the reference with "
            "`--reference CONDITION`.\n"
        ]
    shown = ", ".join(f"{labels.get(m, m)} {v:g}" for m, v in margins.items())
    how = (
        " (the default; choose your own with `--margin METRIC=VALUE`: README, *Choosing a margin*)"
        if defaulted
        else ""
    )
    out.append(
        f"Margins: **{shown}**{how}, in the metric's units. Each condition is compared with "
        f"`{reference}` on the same scans; the estimate is condition - {reference} (for an "
        "error metric, + is worse). Full table with every p-value: `noninferiority.csv`.\n"
    )
    out.append(_MEANING.format(alpha=alpha, correction=correction))
    if table.empty:
        out.append("No condition holds the reference's scans: nothing to test.\n")
    else:
        out.append(markdown(_view(table, labels, fmt, fmt_p)))
        out += _reading_lines(table, alpha, fmt_p)
    not_paired = table.attrs.get("not_paired", [])
    if not_paired:
        names = ", ".join(f"`{c}`" for c in not_paired)
        out.append(
            f"{names}: other scans (another cohort), so no paired test against `{reference}`; "
            "an unpaired margin test would mix the cohort shift with resolution.\n"
        )
    out += _crossing_lines(crossing, fmt)
    return out


def _reading_lines(table: pd.DataFrame, alpha: float, fmt_p: Any) -> list[str]:
    """Notes that change how a row reads, and what would settle the inconclusive rows."""
    lines = []
    for r in table.to_dict(orient="records"):
        who = f"{r['model']}, " if "model" in r else ""
        said = [r["note"]] if r["note"] else []
        if r["verdict"] == "inconclusive" and r["n"]:
            need, worse = r["n_for_noninferiority"], r["n_for_inferiority"]
            head = f"inconclusive with {r['n']} scans"
            alike = "if the per-scan differences look like these"
            raw = {"non-inferior": r["p_noninferiority"], "inferior": r["p_inferiority"]}
            shown = [(claim, p) for claim, p in raw.items() if p < alpha]
            if shown:  # it is the correction, not the sample, that leaves the row open
                claim, p = shown[0]
                said.append(
                    f"{head}: {claim} at alpha before the correction (one-sided p = "
                    f"{fmt_p(p)}), not after it over {len(table)} rows; more scans, or fewer "
                    "comparisons (fewer conditions, models or metrics with a margin) would "
                    "settle it"
                )
            elif np.isfinite(need):
                said.append(
                    f"{head} (power to show non-inferiority now about "
                    f"{r['power_noninferiority']:.0%}); about {int(need)} scans would give 80% "
                    f"{alike}"
                )
            elif np.isfinite(worse):
                said.append(
                    f"{head}; the estimate lies beyond the margin: about {int(worse)} scans "
                    f"would show it inferior (80% power) {alike}"
                )
            else:
                said.append(
                    f"{head}; the estimate sits on the margin: even {SAMPLE_SIZE_GRID[-1]} scans "
                    f"would settle neither non-inferiority nor inferiority {alike}"
                )
        if said:
            lines.append(f"- {who}`{r['condition']}` ({r['metric']}): {'; '.join(said)}.")
    return ["Rows to read with care:\n", *lines, ""] if lines else []


def _crossing_lines(crossing: pd.DataFrame, fmt: Any) -> list[str]:
    if crossing.empty:
        return ["No resolution curve (no method run at a known voxel size): no crossing point.\n"]
    level = f"{100 * float(crossing['ci_level'].iloc[0]):g}%"
    out = [
        f"Resolution at which the margin is crossed, per method: the largest voxel size still "
        "non-inferior (it and every finer level), and where the curve of means crosses the "
        f"margin (linear between tested resolutions; {level} bootstrap interval over scans). "
        "The resolution figure shades the reference mean ± margin. Table: `crossing.csv`.\n"
    ]
    for r in crossing.to_dict(orient="records"):
        who = f"{r['model']}, " if "model" in r else ""
        finest = str(r["levels"]).split(";")[0].split("=")[0]
        largest = (
            f"non-inferior up to **{r['largest_noninferior']}** "
            f"({fmt(r['largest_noninferior_mm'])} mm)"
            if r["largest_noninferior"]
            else f"**not shown non-inferior even at its finest level** (`{finest}`)"
        )
        lo, hi = (
            f"{fmt(v)} mm" if np.isfinite(v) else "beyond the largest tested"
            for v in (r["crossing_low"], r["crossing_high"])
        )
        interval = f"[{lo}, {hi}]" if lo != hi else f"({lo} in every resample)"
        if np.isfinite(r["crossing_mm"]):
            cross = f"the curve crosses the margin at {fmt(r['crossing_mm'])} mm {interval}"
        else:
            cross = f"the curve stays within the margin up to the largest tested level {interval}"
        out.append(
            f"- {who}**{r['method']}** ({r['metric']}, margin {fmt(r['margin'])}; x: "
            f"{r['x_axis']}): {largest}; {cross}."
        )
    return out + [""]


def methods_text(
    table: pd.DataFrame,
    margins: Mapping[str, float],
    *,
    reference: str | None,
    alpha: float,
    correction_name: str,
    n_boot: int,
    seed: int,
    n_resamples: int = 300,
) -> str:
    """The methods paragraph's sentences on margins (empty when the analysis did not run)."""
    if table.empty or not margins:
        return ""
    shown = ", ".join(f"{m} {v:g}" for m, v in margins.items())
    level = f"{100 * (1 - 2 * alpha):g}%"
    return (
        f" Non-inferiority and equivalence to the reference condition ('{reference}') were "
        f"tested per metric with pre-specified margins ({shown}; error metrics oriented so that "
        "lower is better): one-sided Wilcoxon signed-rank tests on the paired differences "
        "shifted by the margin (non-inferiority, H0: worse by at least the margin; inferiority, "
        "the reverse) and two one-sided tests for equivalence (TOST; p the larger of the two), "
        f"each at alpha = {alpha}, adjusted across the {len(table)} comparisons with "
        f"{correction_name}, separately for each kind of claim. The Hodges-Lehmann "
        f"pseudomedian of the paired differences is reported with a {level} percentile "
        f"bootstrap confidence interval (the level matching a TOST at alpha; {n_boot} "
        f"resamples, seed {seed}). The resolution at which the margin is crossed was read off "
        "the resolution curve of means (where it meets the reference mean worsened by the "
        f"margin, linearly between tested resolutions), with a {level} bootstrap interval over "
        "scans. Sample sizes for 80% power at alpha (before the "
        "multiplicity correction) were estimated by resampling the observed paired differences "
        f"({n_resamples} simulated studies per sample size, normal-approximation signed-rank "
        "tests)."
    )
