"""Is this voxel size good enough? Non-inferiority, equivalence, crossing resolution, sample size.

A non-significant difference is not evidence of no difference: with 9 scans almost nothing is
significant. The question a resolution study answers is "down to which voxel size is the model
as good as at the reference resolution, within a margin I can live with?". For every condition
on the same scans as the reference (``original`` by default), per metric with a margin:

* ``g`` are the per-scan differences oriented so that **positive means the condition is
  better**: ``condition - reference`` for a metric where higher is better (Dice),
  ``reference - condition`` for an error metric (HD95, volume difference); the direction comes
  from :func:`lesionres.metrics.better_direction`. ``estimate``, ``ci_low`` and
  ``ci_high`` are in the metric's own units and sign, ``condition - reference``.
* **Non-inferiority**: one-sided Wilcoxon signed-rank test of ``g + margin`` (alternative
  ``"greater"``; H0: the condition is worse by the margin or more). **Inferiority** (worse by
  more than the margin): the same shifted differences, alternative ``"less"``. **Equivalence**
  (TOST): the non-inferiority test and the test of ``g - margin`` (alternative ``"less"``;
  H0: better by the margin or more), ``p_equivalence`` the larger of the two one-sided p-values.
  Shifted differences are rounded to 12 decimals, so a scan exactly on the margin is a zero
  difference and equal differences tie, as in exact arithmetic. The p-value method follows
  scipy's ``"auto"`` rule, as the two-sided tests do (:mod:`lesionres.analysis.rank_tests`).
* The estimate is the Hodges-Lehmann pseudomedian of all paired differences (the shifted tests
  rank every pair, zeros included), with a percentile bootstrap CI at the matching level,
  ``1 - 2 alpha`` two-sided (90% at alpha 0.05: the CI lies inside ``+-margin`` when the TOST
  rejects at alpha).
* Holm (or Benjamini-Hochberg) over the family of rows (every model, metric and condition),
  for each kind of claim separately; ``p_adjusted`` is the adjusted non-inferiority p. Verdict:
  ``equivalent`` (adjusted TOST p < alpha), else ``non-inferior`` (adjusted non-inferiority p
  < alpha), else ``inferior`` (adjusted inferiority p < alpha), else ``inconclusive``. Never
  "no difference".
* **Crossing resolution** per method: :mod:`lesionres.analysis.crossing`. **Sample sizes**
  (scans for 80% power to detect the difference, show non-inferiority or inferiority):
  :mod:`lesionres.analysis.sample_size`. The report's text:
  :mod:`lesionres.analysis.noninferiority_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis.bootstrap import _bootstrap_pseudomedian, _pseudomedian
from lesionres.analysis.rank_tests import adjust_pvalues
from lesionres.analysis.results_table import (
    _block,
    _has_models,
    _require,
    condition_order,
    harmonise_labels,
)
from lesionres.analysis.sample_size import (
    _one_sided,
    resampled_power,
    scans_needed,
    shifted_differences,
)
from lesionres.errors import LesionresError
from lesionres.metrics import (
    better_direction,
)

__all__ = [
    "DEFAULT_MARGINS",
    "NONINFERIORITY_COLUMNS",
    "VERDICTS",
    "compare_to_reference",
    "default_reference",
    "parse_margins",
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
            :func:`lesionres.analysis.paired_test`.
        partial: ``"error"`` or ``"intersect"`` for conditions sharing only some scans.
        match: see :func:`lesionres.analysis.harmonise_labels`.
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
