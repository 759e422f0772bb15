"""What the numbers mean and how they were made: the one copy of the conventions text.

The report prints :data:`CONVENTIONS` and :data:`VERDICT_MEANING` as they are, its methods
paragraph from :func:`methods_paragraph` and :func:`margins_methods`, and the metric settings
``results.json`` recorded from :func:`settings_lines`. The code that follows them is
:mod:`lesionres.analysis.rank_tests` and :mod:`lesionres.analysis.noninferiority`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from lesionres.analysis.context import AnalysisOptions
from lesionres.metrics import (
    metric_label,
)

__all__ = [
    "CONVENTIONS",
    "VERDICT_MEANING",
    "margins_methods",
    "methods_paragraph",
    "settings_lines",
]


CONVENTIONS = """\
- **Direction.** Every difference is `condition_a - condition_b`. Effect sizes are rank-biserial
  correlations in [-1, 1]; **positive means condition_a scores higher** (for error metrics such as
  HD95, higher is worse).
- **Paired effect size**: matched-pairs rank-biserial r = (W+ - W-) / (W+ + W-), ranks of
  |a - b| over the nonzero differences (Kerby 2014). r = 1: every nonzero difference favours a.
- **Unpaired effect size**: r = 2 U_a / (n_a n_b) - 1 (Wendt 1972); equals P(a > b) - P(a < b).
- **Location estimate** (`median_diff`, "Hodges-Lehmann" in the tables): the estimate of the
  quantity each test is about, so it and the p-value speak of the same thing. Paired: the
  Hodges-Lehmann pseudomedian of d = a - b, the median of the Walsh averages (d_i + d_j) / 2,
  i <= j, over the differences the signed-rank test ranks (nonzero ones for 'wilcox'). Unpaired:
  the Hodges-Lehmann shift (median of all n_a x n_b differences a_i - b_j). 95% CI: percentile
  bootstrap of the same estimate (pairs resampled together; cohorts resampled independently).
  The plain median of the paired differences is `median_of_diffs` in `comparisons.csv`: it can
  be 0 while most nonzero differences go one way.
- **Verdicts** ("X higher than Y") take their direction from the test (r and the
  Hodges-Lehmann estimate), never from the mean: a few scans where X fails badly can pull the
  mean the other way, and the sentence then says so.
- **p-values**: two-sided. `p_method` in `comparisons.csv` names the method of each row: exact
  (n <= 50 pairs, no ties, no zero differences), exact permutation over all 2^n sign flips
  (n <= 13 with ties or zeros), or the normal approximation with tie-corrected variance (no
  continuity correction for Wilcoxon, scipy's continuity correction for Mann-Whitney; exact
  Mann-Whitney only when one sample has <= 8 values and there are no ties).
- **Zero differences** (identical values, common for Dice of 0 or 1): handled by `zero_method`
  ('wilcox': dropped before ranking, and `n` counts the nonzero pairs; 'pratt' and 'zsplit'
  keep them). When every difference is zero there is no evidence of a difference: p = 1,
  r = 0 (scipy would return NaN from 14 pairs on). With n <= 5 nonzero differences no
  two-sided p below 2^(1-n) (0.0625 at n = 5) is possible; such rows say so in `note`.
- **Missing values**: failed rows (non-empty `error`) and non-finite metric values (NaN, inf,
  e.g. HD95 when one mask is empty) are excluded; pairs lose both sides. Counts are in
  `n_dropped_failed` and `n_dropped_nan`. A mean is over the scans where its metric is
  defined, so an undefined value (often one of the worst scans) leaves it: every summary says
  over how many scans, and why the others are undefined (`n`, `n_missing`, `missing_why` in
  `summary.csv`).
- **Metric conventions** (empty masks, connectivity of lesion components, HD95 with an empty
  mask, units): see `lesionres.metrics`; the confusion counts `tp, fp, fn, tn` are in the table,
  so any other convention can be recomputed.
"""


VERDICT_MEANING = """\
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


def settings_lines(settings: dict) -> list[str]:
    """How the table's numbers were made, as ``results.json`` records it."""
    conventions = settings.get("conventions")
    if not conventions:
        return [
            "- **Metric settings**: not recorded (no `results.json` beside the table: written "
            "before lesionres 0.2 or by hand); the surface definition and HD95 aggregation are "
            "unknown.\n"
        ]
    hd95 = {
        "pooled": "95th percentile of both directions' surface distances pooled (medpy)",
        "max": "the larger of the two directed 95th percentiles (MONAI)",
    }.get(conventions.get("hd95"), str(conventions.get("hd95")))
    models = settings.get("models", {})
    per_model = "; ".join(
        f"{name or 'this model'}: threshold {m.get('threshold')}, "
        + (f"checkpoint sha256 `{m['checkpoint_sha256'][:16]}…`" if m.get("checkpoint_sha256")
           else "masks of another tool")
        for name, m in models.items()
    )  # fmt: skip
    return [
        f"- **Metric settings** (`results.json`): surface = {conventions.get('surface')}; "
        f"HD95 = {hd95}; ASSD = mean of both directions' distances pooled (medpy, MONAI); "
        f"lesions = {conventions.get('connectivity')}-connected components; both masks empty "
        f"-> {'1.0 (challenge code)' if conventions.get('empty_convention') == 'one' else 'NaN'}; "
        f"lesionres {conventions.get('lesionres_version')}. {per_model}.",
        "- **Missing predictions** (`score`): a ground truth without prediction is a failed "
        "row (`no prediction`), listed above, or with `--missing empty` an empty mask (Dice 0, "
        "the ATLAS/ISLES challenge convention); never left out of the table.\n",
    ]


def margin_phrase(opts: AnalysisOptions) -> str:
    """``Margins: dice 0.02 (default) against `original`.`` for the report's first lines."""
    if not opts.margins:
        return "Margins: none (no non-inferiority analysis)."
    shown = ", ".join(f"{m} {v:g}" for m, v in opts.margins.items())
    default = " (default)" if opts.margins_defaulted else ""
    return f"Margins: **{shown}**{default} against `{opts.reference or 'original'}`."


def family_name(opts: AnalysisOptions) -> str:
    """``Holm's correction`` or ``the Benjamini-Hochberg correction``, for running text."""
    return "Holm's correction" if opts.correction == "holm" else "the Benjamini-Hochberg correction"


def correction_name(opts: AnalysisOptions) -> str:
    if opts.correction == "holm":
        return "Holm's step-down procedure (family-wise error rate)"
    return "the Benjamini-Hochberg procedure (false discovery rate)"


def methods_paragraph(opts: AnalysisOptions, has_unpaired: bool, has_friedman: bool) -> str:
    corr = correction_name(opts)
    metric = metric_label(opts.metric)
    text = (
        "Segmentation quality was scored per scan against the original-resolution ground truth "
        f"({metric} as the primary metric). Conditions applied to the same scans were compared "
        "with the two-sided Wilcoxon signed-rank test on the per-scan differences, matching "
        f"scans by identifier (zero differences handled by the '{opts.zero_method}' method; exact "
        "p-values for up to 50 pairs without ties or zero differences, an exhaustive sign-flip "
        "permutation test for up to 13 pairs with ties or zeros, and the normal approximation "
        "with tie-corrected variance otherwise). "
    )
    if has_unpaired:
        text += (
            "Conditions on different cohorts were compared with the two-sided Mann-Whitney U test "
            "(normal approximation with tie and continuity corrections unless a sample had at "
            "most 8 scans and no ties). "
        )
    if has_friedman:
        text += (
            "An omnibus Friedman test (with Kendall's W) was run across the conditions applied "
            "to the same scans. "
        )
    text += (
        "Effect sizes are rank-biserial correlations (matched-pairs for the signed-rank test), "
        "positive when the first condition scores higher. Each difference is estimated as the "
        "test sees it: the Hodges-Lehmann pseudomedian of the paired differences (the median of "
        "their Walsh averages, over the differences the signed-rank test ranks)"
    )
    if has_unpaired:
        text += (
            " and, between cohorts, the Hodges-Lehmann shift (the median of all between-cohort "
            "differences; each cohort resampled on its own)"
        )
    text += (
        ", with a 95% percentile bootstrap confidence interval (pairs resampled together; "
        f"{opts.n_boot} resamples, seed {opts.seed}). p-values were "
        f"adjusted across all pairwise comparisons with {corr}, at alpha = {opts.alpha}. Scans "
        "whose evaluation failed, and pairs with a missing value, were excluded and are "
        "reported; each mean is over the scans where its metric is defined, and their number "
        "is given. Analyses used lesionres.analysis with SciPy."
    )
    return text


def margins_methods(
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
