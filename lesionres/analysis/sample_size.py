"""How many scans would settle it: power of the signed-rank test by resampling.

The observed paired differences (shifted for the hypothesis tested) are resampled at a grid
of sample sizes (seeded; normal-approximation signed-rank tests, zeros dropped), so the
power and the scans needed for 80 % power come from the data's own distribution. At alpha
itself, before the multiplicity correction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from lesionres.analysis.rank_tests import _signed_rank
from lesionres.analysis.results_table import _block

__all__ = [
    "SAMPLE_SIZE_GRID",
    "resampled_power",
    "scans_for_comparisons",
    "scans_needed",
    "shifted_differences",
]


#: Sample sizes tried by :func:`scans_needed` (beyond the last: reported as not reached).
SAMPLE_SIZE_GRID: tuple[int, ...] = (
    5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100, 120,
    140, 160, 180, 200, 250, 300, 350, 400, 500, 600, 700, 800, 1000,
)  # fmt: skip


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

    For :func:`lesionres.analysis.compare_conditions` rows (optionally per ``model``)
    and :func:`lesionres.analysis.compare_models` rows (``condition, model_a, model_b``):
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
