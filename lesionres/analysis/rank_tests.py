"""Rank tests between two conditions: Wilcoxon signed-rank, Mann-Whitney U, Holm and BH.

Every function here is pure numpy / scipy (no torch, no Lightning) and refuses the two
mistakes the reference study made:

* **A paired test between different scans.** Two conditions are *paired* only when they hold
  exactly the same scans (matched by ``dataset`` + ``subject_id``, never by row order or by
  equal lengths). Paired conditions get the Wilcoxon signed-rank test; conditions on disjoint
  scan sets (another cohort, e.g. ISLES 2022 next to ATLAS) get the Mann-Whitney U test.
* **No multiple-comparison correction.** Every table of comparisons is one family, corrected
  with Holm (default) or Benjamini-Hochberg (:func:`adjust_pvalues`).

The conventions (sign of differences and effect sizes, the Hodges-Lehmann location estimate
and its bootstrap CI, how each p-value is computed, zero differences, missing values) are
stated once, in :data:`lesionres.analysis.conventions.CONVENTIONS`, the text the report prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from lesionres.analysis.bootstrap import (
    _bootstrap_hodges_lehmann,
    _bootstrap_pseudomedian,
    _hodges_lehmann,
    _pseudomedian,
)
from lesionres.errors import LesionresError

__all__ = [
    "Correction",
    "ZeroMethod",
    "adjust_pvalues",
    "paired_test",
    "unpaired_test",
]


ZeroMethod = Literal["wilcox", "pratt", "zsplit"]


Correction = Literal["holm", "fdr_bh"]


_ZERO_METHODS = ("wilcox", "pratt", "zsplit")


_CORRECTIONS = ("holm", "fdr_bh")


_WILCOXON = "Wilcoxon signed-rank"


_MWU = "Mann-Whitney U"


_PAIRED_MEDIAN = "Hodges-Lehmann pseudomedian of a-b (median of Walsh averages)"


_HL_MEDIAN = "Hodges-Lehmann shift (median of all a_i-b_j)"


_RBC_PAIRED = "matched-pairs rank-biserial (W+ - W-)/(W+ + W-); >0: a larger"


_RBC_UNPAIRED = "rank-biserial 2U_a/(n_a n_b) - 1; >0: a larger"


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

    The same null distribution and p-value as ``scipy.wilcoxon(method=
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
