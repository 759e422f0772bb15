"""``analyze``: from a per-scan ``results.csv`` to tables, figures and a Markdown report.

Command line (through ``python -m lesionres analyze``, or ``python -m lesionres.analysis``)::

    python -m lesionres analyze results.csv --out report/ [--metric dice]
        [--correction holm|fdr_bh] [--alpha 0.05] [--predictions DIR] [--seed 0]
        [--margin dice=0.02 hd95_mm=2 | --margin none] [--reference original]

Output folder::

    report.md                      the numbers, the tests and why, conventions, methods text
    summary.{csv,md,tex}           per condition x metric: n, mean, std, min, max, median,
                                   undefined values (n_missing) and why (missing_why)
    comparisons.{csv,md,tex}       every pair of conditions, one corrected family
    friedman.{csv,md,tex,json}     omnibus test over the paired conditions (when >= 3)
    stratified.{csv,md,tex}        metric per ground-truth lesion-volume / lesion-count stratum
    model_comparisons.{csv,md,tex} models against each other per condition (>= 2 models)
    noninferiority.{csv,md,tex}    each condition against the reference within a margin:
                                   non-inferiority, equivalence (TOST), verdict, sample size
    crossing.{csv,md,tex}          per method: largest non-inferior voxel size, crossing point
    analysis.json                  parameters, input checksum, software versions, counts
    figures/*.png, figures/*.pdf   bars, distributions, resolution curve, volumes, strata,
                                   overlays (with --predictions)

Overlays (``--predictions DIR``, optionally ``--data-root ROOT``)::

    DIR/<condition>/<subject_id>_desc-lesion_mask.nii.gz   prediction on the mask's grid (as
                                                           ``lesionres test`` writes it), or
    DIR/<condition>/<subject_id>*pred*.nii[.gz]
    ground truth: <subject_id>*{_gt,_label*,lesion_mask,_msk,_mask}.nii[.gz]
    image:        <subject_id>*{_image,_img,_T1w,_dwi,_flair,_adc}.nii[.gz] (optional)

Ground truth and image are searched in DIR outside the condition folders, then under ROOT
(the dataset: ATLAS, ISLES 2022 and ``folder`` layouts all match). Without a ground truth no
overlay is drawn, and the report says so.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis import figures as figs
from lesionres.analysis import noninferiority as ni
from lesionres.analysis import stats
from lesionres.analysis.tables import (
    atomic_write_text,
    format_p,
    format_value,
    markdown_table,
    write_json,
    write_table,
    write_tables,
)
from lesionres.errors import LesionresError

__all__ = [
    "REPORT_METRICS",
    "analyze",
    "find_prediction_examples",
    "load_results",
]

#: Metrics shown in the report's summary table (the CSV has every metric).
REPORT_METRICS: tuple[str, ...] = (
    "dice", "precision", "recall", "lesion_f1", "hd95_mm", "abs_volume_diff_ml", "pred_lesion_pct",
)  # fmt: skip
_DISTRIBUTION_METRICS = ("dice", "lesion_f1", "hd95_mm", "abs_volume_diff_ml")
_TEXT_COLUMNS = (
    "subject_id", "dataset", "cohort", "modality", "space", "condition", "method", "factor",
    "spacing_mm", "effective_fwhm_mm", "model", "error",
)  # fmt: skip
_KEY_NOTES = "all differences zero|all values equal|no two-sided p|partial overlap|no test"


# --------------------------------------------------------------------------- input


def load_results(path: str | Path, metric: str | None = None) -> pd.DataFrame:
    """Read a ``results.csv`` and check the columns the analysis needs.

    Identifier columns are read as text (``factor`` "2" stays "2", subject ids keep leading
    zeros); empty cells are missing.

    Args:
        path: the CSV file.
        metric: a metric column that must be present too.

    Returns:
        The table.

    Raises:
        LesionresError: missing or unreadable file, or missing columns (named with the file).
    """
    path = Path(path)
    if not path.is_file():
        raise LesionresError(f"{path}: results table does not exist")
    try:
        head = pd.read_csv(path, nrows=0)
        dtypes = {c: str for c in _TEXT_COLUMNS if c in head.columns}
        df = pd.read_csv(path, dtype=dtypes)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        raise LesionresError(
            f"{path}: not a readable CSV table ({type(error).__name__}: {error})"
        ) from None
    required = ["subject_id", "condition"] + ([metric] if metric else [])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise LesionresError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        )
    if df.empty:
        raise LesionresError(f"{path}: the results table has no rows")
    blank = df["subject_id"].isna() | df["condition"].isna()
    if blank.any():
        raise LesionresError(f"{path}: empty subject_id or condition in {int(blank.sum())} row(s)")
    return df


# --------------------------------------------------------------------------- predictions

_GT_PATTERN = re.compile(r"(_gt|_label[^/]*|lesion_mask|_msk|_mask)\.nii(\.gz)?$", re.IGNORECASE)
_IMAGE_PATTERN = re.compile(r"(_image|_img|_t1w|_dwi|_flair|_adc)\.nii(\.gz)?$", re.IGNORECASE)


def _belongs(name: str, subject: str) -> bool:
    return name == subject or name.startswith(subject + "_") or name.startswith(subject + ".")


def _nifti_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and re.search(r"\.nii(\.gz)?$", p.name)]


def _is_prediction(name: str) -> bool:
    low = name.lower()
    return "probseg" not in low and ("desc-lesion_mask" in low or "pred" in low)


def find_prediction_examples(
    predictions_dir: str | Path,
    df: pd.DataFrame,
    n_examples: int = 1,
    data_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Pick example scans with saved predictions (layout: see the module docstring).

    Scans with a ground truth and predictions under the most conditions are preferred; among
    them the examples sit at evenly spaced quantiles of the ground-truth volume (one example:
    the median scan), so they are typical rather than best-case.

    Args:
        predictions_dir: the predictions folder (one sub-folder per condition).
        df: results table (conditions, subject ids, ground-truth volumes).
        n_examples: how many scans.
        data_root: dataset folder holding the ground truth and images, if not in
            ``predictions_dir``.

    Returns:
        ``[{"subject_id", "image", "gt", "preds": {condition: path}}, ...]`` (may be empty).

    Raises:
        LesionresError: a folder does not exist.
    """
    root = Path(predictions_dir)
    if not root.is_dir():
        raise LesionresError(f"{root}: predictions folder does not exist")
    conditions = stats.condition_order(df)
    files = _nifti_files(root)
    in_condition = [p for p in files if p.parent.name in conditions and p.parent.parent == root]
    taken = set(in_condition)
    reference = [p for p in files if p not in taken]
    if data_root is not None:
        if not Path(data_root).is_dir():
            raise LesionresError(f"{data_root}: data root does not exist")
        reference += _nifti_files(Path(data_root))
    volumes = pd.Series(dtype=float)
    if "gt_volume_ml" in df.columns:
        gt_ml = pd.to_numeric(df["gt_volume_ml"], errors="coerce")
        volumes = gt_ml.groupby(df["subject_id"].astype(str)).max()
    candidates = []
    for sid in pd.unique(df["subject_id"].astype(str)):
        preds: dict[str, Path] = {}
        for p in sorted(in_condition):
            if _belongs(p.name, sid) and _is_prediction(p.name):
                preds.setdefault(p.parent.name, p)
        if not preds:
            continue
        mine = sorted(p for p in reference if _belongs(p.name, sid) and not _is_prediction(p.name))
        gt = [p for p in mine if _GT_PATTERN.search(p.name)]
        image = [p for p in mine if _IMAGE_PATTERN.search(p.name)]
        if gt:
            candidates.append(
                dict(subject_id=sid, image=image[0] if image else None, gt=gt[0], preds=preds,
                     volume=float(volumes.get(sid, np.nan)))
            )  # fmt: skip
    if not candidates:
        return []
    most = max(len(c["preds"]) for c in candidates)
    pool = sorted(
        (c for c in candidates if len(c["preds"]) == most),
        key=lambda c: (np.nan_to_num(c["volume"], nan=np.inf), c["subject_id"]),
    )
    qs = np.linspace(0, 1, n_examples + 2)[1:-1]
    picks = sorted({int(round(q * (len(pool) - 1))) for q in qs})
    return [{k: v for k, v in pool[i].items() if k != "volume"} for i in picks]


# --------------------------------------------------------------------------- options


@dataclass
class _Options:
    """Everything ``analyze`` was asked for (written to the report and ``analysis.json``)."""

    metric: str
    correction: str
    alpha: float
    n_boot: int
    seed: int
    zero_method: str
    partial: str
    match: str
    make_figures: bool
    predictions_dir: str | Path | None
    data_root: str | Path | None
    source_spacing: str | None
    margins: dict[str, float]
    margins_defaulted: bool
    reference: str | None
    pairs: str = "auto"


# --------------------------------------------------------------------------- report text


def _fmt(v: Any, digits: int = 3) -> str:
    return format_value(v, "", digits)


def _p_phrase(p: float) -> str:
    """``= 0.012`` or ``< 1e-16``, for running text."""
    text = format_p(p)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def _summary_wide(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Condition rows x metric columns of 'mean ± sd (median)' for the report.

    ``scans`` counts the condition's scans that were scored (failed rows excluded); a cell
    whose mean is over fewer (the metric undefined on some) ends with ``n=7``.
    """
    rows = []
    for cond, g in summary.groupby("condition", sort=False):
        g = g.set_index("metric")
        scans = int((g["n"] + g["n_missing"]).max()) if len(g) else 0
        rec: dict[str, Any] = {"condition": cond, "scans": scans}
        for m in metrics:
            if m in g.index and g.loc[m, "n"] > 0:
                r = g.loc[m]
                sd = f" ± {r['std']:.3g}" if pd.notna(r["std"]) else ""
                n = f", n={int(r['n'])}" if r["n"] < scans else ""
                rec[figs.METRIC_LABELS.get(m, m)] = f"{r['mean']:.3g}{sd} ({r['median']:.3g}){n}"
        rows.append(rec)
    return pd.DataFrame(rows)


def _summary_block(summary: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The summary table and, below it, every mean that is over fewer scans, and why."""
    out = [markdown_table(_summary_wide(summary, metrics))]
    shown = summary[summary["metric"].isin(metrics)]
    notes = stats.coverage_notes(shown, figs.METRIC_LABELS)
    if notes:
        out.append(
            "Means over fewer scans than the condition has (a metric undefined on a scan, e.g. "
            "HD95 of an empty prediction, leaves that scan, often one of the worst, out of "
            "its mean):\n"
        )
        out += [f"- {line}" for line in notes] + [""]
    return out


def _comparison_view(comp: pd.DataFrame, lead: Sequence[str]) -> pd.DataFrame:
    """The comparisons as a reader wants them in the report (the CSV keeps every column)."""
    names = {
        "Wilcoxon signed-rank": "Wilcoxon (paired)",
        "Mann-Whitney U": "Mann-Whitney (unpaired)",
    }
    paired = comp["design"] == "paired"
    out = pd.DataFrame({c: comp[c] for c in lead})
    out["test"] = comp["test"].map(names)
    out["n"] = [
        f"{int(n)}" if p else f"{int(na)}+{int(nb)}"
        for n, na, nb, p in zip(comp["n"], comp["n_a"], comp["n_b"], paired, strict=True)
    ]
    out["mean a / b"] = [
        f"{_fmt(a)} / {_fmt(b)}" for a, b in zip(comp["mean_a"], comp["mean_b"], strict=True)
    ]
    out["Hodges-Lehmann [95% CI]"] = [
        f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
        for m, lo, hi in zip(comp["median_diff"], comp["ci_low"], comp["ci_high"], strict=True)
    ]
    out["statistic"] = [
        f"{'W' if p else 'U'}={_fmt(s, 6)}" for s, p in zip(comp["statistic"], paired, strict=True)
    ]
    out["p"] = comp["p_value"].map(format_p)
    out["p adj."] = comp["p_adjusted"].map(format_p)
    out["r (rank-biserial)"] = comp["effect_size"].map(lambda v: _fmt(v, 3))
    out["sig."] = comp["significant"].map(lambda s: "yes" if s else "no")
    if "n_for_80_power" in comp.columns:  # paired rows: resampled from their differences
        most = ni.SAMPLE_SIZE_GRID[-1]
        out["scans for 80% power"] = [
            "" if d != "paired" else (f"{int(n)}" if np.isfinite(n) else f"> {most}")
            for d, n in zip(comp["design"], comp["n_for_80_power"], strict=True)
        ]
    return out


def _design_lines(df: pd.DataFrame, comp: pd.DataFrame) -> list[str]:
    """Which conditions are paired with which, read from the scan sets."""
    lines = []
    keys = stats.scan_keys(df)
    cond = df["condition"].astype(str)
    groups: dict[frozenset[str], list[str]] = {}
    for c in stats.condition_order(df):
        groups.setdefault(frozenset(keys[cond == c]), []).append(c)
    for scans, members in groups.items():
        ds = []
        if "dataset" in df.columns:
            ds = sorted(set(df.loc[cond.isin(members), "dataset"].astype(str)))
        where = f" (dataset {', '.join(ds)})" if ds else ""
        names = ", ".join(f"`{m}`" for m in members)
        if len(members) > 1:
            lines.append(
                f"- {names} hold the same {len(scans)} scans{where}: **paired**, Wilcoxon "
                "signed-rank between them."
            )
        else:
            lines.append(
                f"- {names} holds {len(scans)} scans{where} that no other condition shares."
            )
    if len(groups) > 1:
        lines.append(
            "- Conditions on different scans (another cohort) are compared with the "
            "**Mann-Whitney U** test: a signed-rank test between different patients would be "
            "invalid."
        )
    if "method" in df.columns and (df["method"].astype(str) == "crude").any():
        lines.append(
            "- **`crude` moves the image.** Keeping every Nth voxel and repeating it N times "
            "shifts the content by (N-1)/2 voxels against the mask (half a voxel at N = 2): part "
            "of any change under `crude` is this misregistration, not resolution."
        )
    lines.append(
        "- Every condition is scored against the **original** ground truth on the scan's own "
        "grid: a degraded image's prediction is mapped back before scoring."
    )
    return lines


_UNDEGRADED = ("", "original", "external", "natural")  # methods that leave the scan as it is


def _cohort_lines(df: pd.DataFrame) -> list[str]:
    """What each cohort put in front of the model, and how it differs from the first one."""
    if "dataset" not in df.columns:
        return []
    cohorts = []
    for dataset, rows in df.groupby(stats._text(df["dataset"]), sort=False):
        described = {}
        for col in ("modality", "space"):
            values = sorted(set(stats._text(rows[col]))) if col in rows.columns else []
            described[col] = ", ".join(v for v in values if v) or "not recorded"
        method = stats._text(rows["method"]) if "method" in rows.columns else ""
        native = rows[pd.Series(method, index=rows.index).isin(_UNDEGRADED)]
        spacing = (
            sorted(set(stats._text((native if len(native) else rows)["spacing_mm"])))
            if "spacing_mm" in rows.columns
            else []
        )
        described["voxel"] = ", ".join(f"{v} mm" for v in spacing if v) or "not recorded"
        cohorts.append((dataset or "(no label)", described))
    if not cohorts:
        return []
    lines = ["## What the model met, per cohort\n"]
    for name, d in cohorts:
        lines.append(
            f"- **{name}**: modality {d['modality']}; space {d['space']}; voxel size "
            f"{d['voxel']} (unchanged conditions)."
        )
    first_name, first = cohorts[0]
    for name, d in cohorts[1:]:
        shifts = []
        if d["modality"] != first["modality"]:
            shifts.append(
                f"a **modality shift** ({first['modality']} -> {d['modality']}): image contrast "
                "itself differs, whatever the resolution"
            )
        if d["space"] != first["space"]:
            shifts.append(
                f"a **space difference** ({first['space']} -> {d['space']}): unregistered scans "
                "show the brain at another place, size and angle"
            )
        shifts.append("another cohort and scanner")
        lines.append(
            f"- {name} vs {first_name}: {'; '.join(shifts)}. Differences between them cannot be "
            "read as the effect of resolution alone."
        )
    return lines + [""]


def _read_settings(results_csv: Path) -> dict:
    """The ``results.json`` that ``test``/``score`` wrote beside the table (``{}`` if none)."""
    sidecar = results_csv.with_suffix(".json")  # lesionres.results.settings_path, torch-free
    try:
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (OSError, ValueError) as error:
        raise LesionresError(f"{sidecar}: unreadable settings ({error})") from None


def _settings_lines(settings: dict) -> list[str]:
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


def _margin_phrase(opts: _Options) -> str:
    """``Margins: dice 0.02 (default) against `original`.`` for the report's first lines."""
    if not opts.margins:
        return "Margins: none (no non-inferiority analysis)."
    shown = ", ".join(f"{m} {v:g}" for m, v in opts.margins.items())
    default = " (default)" if opts.margins_defaulted else ""
    return f"Margins: **{shown}**{default} against `{opts.reference or 'original'}`."


def _family_name(opts: _Options) -> str:
    """``Holm's correction`` or ``the Benjamini-Hochberg correction``, for running text."""
    return "Holm's correction" if opts.correction == "holm" else "the Benjamini-Hochberg correction"


def _correction_name(opts: _Options) -> str:
    if opts.correction == "holm":
        return "Holm's step-down procedure (family-wise error rate)"
    return "the Benjamini-Hochberg procedure (false discovery rate)"


def _methods_paragraph(opts: _Options, has_unpaired: bool, has_friedman: bool) -> str:
    corr = _correction_name(opts)
    metric = figs.METRIC_LABELS.get(opts.metric, opts.metric)
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


_CONVENTIONS = """\
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


_FAMILY = {
    "all": "every pair of conditions; `--pairs reference` tests each against the reference only",
    "reference": "each condition against `{ref}`; `--pairs all` tests every pair",
}


def _comparison_section(comp: pd.DataFrame, opts: _Options) -> list[str]:
    out = [f"## Pairwise comparisons of conditions ({opts.metric})\n"]
    if comp.empty:
        return out + ["Fewer than two conditions: no comparison.\n"]
    lead = (["model"] if "model" in comp.columns else []) + ["condition_a", "condition_b"]
    out.append(
        f"{len(comp)} comparisons ({_FAMILY[opts.pairs].format(ref=opts.reference)}), one "
        f"family; `p adj.` = {opts.correction}-adjusted; `sig.` = "
        f"p adj. < {opts.alpha}. Difference and r: a minus b, positive = a higher. `scans for "
        "80% power`: how many scans would detect the observed difference (two-sided, at alpha "
        "before the correction), from resampling the per-scan differences. Full table with "
        "every count: `comparisons.csv`.\n"
    )
    out.append(markdown_table(_comparison_view(comp, lead)))
    out.append(
        "Means, medians and n of a paired row are over the scans that enter that test (both "
        "values present), so they can differ slightly between rows.\n"
    )
    # the report lists only the notes that change how a row reads (the CSV keeps every note),
    # and the significant rows whose mean points against the test
    care = []
    for _, r in comp.iterrows():
        who = f"{r['model']}: " if "model" in comp.columns else ""
        pair = f"- {who}`{r['condition_a']}` vs `{r['condition_b']}`: "
        if re.search(_KEY_NOTES, "" if pd.isna(r["note"]) else str(r["note"])):
            care.append(f"{pair}{r['note']}.")
        caveat = _mean_caveat(r, r["condition_a"], r["condition_b"]) if r["significant"] else ""
        if caveat:
            higher = r["condition_a"] if _direction(r) > 0 else r["condition_b"]
            care.append(f"{pair}the test finds `{higher}` higher{caveat}.")
    if care:
        out += ["Rows to read with care:\n", *care, ""]
    counts = []
    if (comp["n_dropped_failed"] > 0).any():
        k = int((comp["n_dropped_failed"] > 0).sum())
        counts.append(f"{k} comparison(s) lost scans to failed rows (`n_dropped_failed`)")
    if (comp["n_dropped_nan"] > 0).any():
        k = int((comp["n_dropped_nan"] > 0).sum())
        counts.append(f"{k} dropped missing {opts.metric} values (`n_dropped_nan`)")
    if (comp["n_zero_diff"] > 0).any():
        k = int((comp["n_zero_diff"] > 0).sum())
        counts.append(
            f"{k} paired comparison(s) had zero differences (`n_zero_diff`; '{opts.zero_method}')"
        )
    if (comp["n_tied"] > 0).any():
        k = int((comp["n_tied"] > 0).sum())
        counts.append(f"{k} had tied values (average ranks; `n_tied`)")
    if counts:
        text = "; ".join(counts)
        out.append(f"{text[0].upper()}{text[1:]}. Counts and notes per row: `comparisons.csv`.\n")
    return out


def _model_means(df: pd.DataFrame, opts: _Options) -> pd.DataFrame:
    """Condition rows x model columns of 'mean [95% bootstrap CI] (n)'.

    ``(n)`` is the number of scans the mean is over; ``(7 of 9)`` when the metric is undefined
    (or not finite) on some of the scored scans.
    """
    ok = df[~stats.failed_rows(df)]
    rows = []
    for cond in stats.condition_order(df):
        row = {"condition": cond}
        here = ok[ok["condition"] == cond]
        for model, block in here.groupby(here["model"].astype(str), sort=False):
            values = pd.to_numeric(block[opts.metric], errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]  # an inf (MONAI's HD95) is undefined too
            lo, hi = figs.bootstrap_mean_ci(values, opts.n_boot, opts.seed)
            mean = values.mean() if values.size else np.nan
            n = f"{values.size}" + (f" of {len(block)}" if values.size < len(block) else "")
            row[model] = f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}] ({n})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _direction(r: pd.Series) -> float:
    """+1 if the test finds a higher, -1 if b: the sign of r (W+ vs W-), else of the estimate."""
    return float(np.sign(r["effect_size"]) or np.sign(r["median_diff"]))


def _mean_caveat(r: pd.Series, a: str, b: str) -> str:
    """``; the mean difference points the other way ...`` when the mean contradicts the test.

    A few scans where the test's winner fails badly can pull the mean the other way (a mean
    is not what a rank test is about); the verdict stays the test's, the reader is told.
    """
    direction, mean_diff = _direction(r), r["mean_diff"]
    if not (np.isfinite(mean_diff) and mean_diff != 0 and np.sign(mean_diff) == -direction):
        return ""
    winner = a if direction > 0 else b
    return (
        f"; the mean difference points the other way ({a} - {b} = {mean_diff:+.3g}): "
        f"a few scans where {winner} is far lower outweigh the rest"
    )


def _adjusted_p_name(opts: _Options) -> str:
    return "Holm p" if opts.correction == "holm" else "BH-adjusted p"


def _model_finding(r: pd.Series, opts: _Options) -> str:
    """One sentence per (condition, model pair): which model the test finds higher, if any.

    The direction is the test's own (the rank-biserial r and the Hodges-Lehmann estimate),
    never the mean's; a mean that disagrees is reported as such.
    """
    a, b = r["model_a"], r["model_b"]
    where = f"`{r['condition']}`"
    if not np.isfinite(r["p_adjusted"]):
        return f"- {where}: {a} vs {b} not tested ({r['note'] or 'no pairs'})."
    detail = (
        f"Hodges-Lehmann {a} - {b} = {_fmt(r['median_diff'])} "
        f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}], r = {_fmt(r['effect_size'])}, "
        f"{_adjusted_p_name(opts)} {_p_phrase(r['p_adjusted'])}; "
        f"means {_fmt(r['mean_a'])} vs {_fmt(r['mean_b'])}"
    )
    if not r["significant"]:
        return f"- {where}: no significant difference between {a} and {b} ({detail})."
    higher, lower = (a, b) if _direction(r) > 0 else (b, a)
    return (
        f"- {where}: **{higher} higher than {lower}** by {_fmt(abs(r['median_diff']))} "
        f"({detail}){_mean_caveat(r, a, b)}."
    )


def _model_section(
    df: pd.DataFrame, mc: pd.DataFrame, figures: list[tuple[str, str]], opts: _Options
) -> list[str]:
    out = [f"## Models compared within each condition ({opts.metric})\n"]
    out.append(
        f"Mean {opts.metric} per model [95% bootstrap CI of the mean] (scans it is over, "
        "'of' the scored scans when the metric is undefined on some); failed rows excluded.\n"
    )
    out.append(markdown_table(_model_means(df, opts)))
    out.append(
        f"Paired Wilcoxon on the same scans, {opts.correction}-corrected over all "
        f"{len(mc)} rows (one family); difference = model a minus model b. Full table: "
        "`model_comparisons.csv`.\n"
    )
    out.append(markdown_table(_comparison_view(mc, ["condition", "model_a", "model_b"])))
    out.append("What this shows:\n")
    out.extend(_model_finding(r, opts) for _, r in mc.iterrows())
    curve_title = f"{opts.metric} against resolution"
    curves = [path for title, path in figures if title == curve_title]
    if curves:
        out.append(f"\n![{curve_title}, one curve per model]({curves[0]})")
    out.append("")
    return out


def _write_report(ctx: dict[str, Any], opts: _Options, out_dir: Path) -> Path:
    df: pd.DataFrame = ctx["df"]
    comp: pd.DataFrame = ctx["comparisons"]
    lines: list[str] = []
    add = lines.append
    add(f"# Resolution study: analysis of `{ctx['results_name']}`\n")
    add(
        f"Input: `{ctx['results_path']}` ({ctx['n_rows']} rows, sha256 `{ctx['sha256'][:16]}…`). "
        f"Primary metric: **{opts.metric}**. Correction: **{opts.correction}** over all pairwise "
        f"comparisons, alpha = {opts.alpha}. Bootstrap: {opts.n_boot} resamples, seed "
        f"{opts.seed}. Zero differences: '{opts.zero_method}'. Partial overlaps: "
        f"'{opts.partial}'. {_margin_phrase(opts)}\n"
    )
    add("## Data\n")
    add(markdown_table(ctx["conditions"]))
    if ctx["n_exact_duplicates"]:
        add(
            f"{ctx['n_exact_duplicates']} exact duplicate row(s) were removed (identical in every "
            "column; typical of DDP padding the last batch).\n"
        )
    failed = ctx["failed"]
    if len(failed):
        add(
            f"**{len(failed)} failed row(s)** (non-empty `error`) are excluded from every "
            "statistic:\n"
        )
        cols = [c for c in ("model", "condition", "subject_id", "error") if c in failed.columns]
        add(markdown_table(failed[cols].head(20)))
        if len(failed) > 20:
            add(f"… and {len(failed) - 20} more (see the results table).\n")
    else:
        add("No failed rows.\n")
    add("## Design: which test for which pair\n")
    lines.extend(_design_lines(df, comp))
    add("")
    lines.extend(_cohort_lines(df))
    for model, block in ctx["summary_wide"].items():
        add(f"## Summary{f' — model {model}' if model else ''}\n")
        add(
            "mean ± SD (median) per scan; failed rows and missing values excluded (`n=`: the "
            "scans a mean is over, when fewer than `scans`). All metrics, with n, undefined "
            "values and why, min and max: `summary.csv`.\n"
        )
        lines.extend(block)
    if ctx["model_comparisons"] is not None:  # the experiment's headline: before the details
        lines.extend(_model_section(df, ctx["model_comparisons"], ctx["figures"], opts))
    lines.extend(_comparison_section(comp, opts))
    lines.extend(
        ni.report_lines(
            ctx["noninferiority"], ctx["crossing"], margins=opts.margins,
            defaulted=opts.margins_defaulted, reference=opts.reference, alpha=opts.alpha,
            correction=_family_name(opts),
            labels=figs.METRIC_LABELS, fmt=_fmt, fmt_p=format_p, markdown=markdown_table,
        )
    )  # fmt: skip
    add("## Omnibus test\n")
    fried = ctx["friedman"]
    if fried is not None and len(fried):
        for _, r in fried.iterrows():
            who = f"model {r['model']}: " if r.get("model") else ""
            note = f"; {r['note']}" if r["note"] else ""
            add(
                f"- {who}Friedman test over {r['k']} paired conditions "
                f"({r['conditions'].replace(';', ', ')}), n = {r['n']} scans: "
                f"chi2 = {_fmt(r['statistic'], 4)}, p {_p_phrase(r['p_value'])}, "
                f"Kendall's W = {_fmt(r['kendall_w'], 3)}{note}."
            )
        add("")
    else:
        add(f"Not run: {ctx['friedman_skip']}\n")
    add("## Stratified by the ground truth\n")
    if ctx["stratified_by"]:
        add(
            f"{opts.metric} per stratum of {', '.join(ctx['stratified_by'])} (a scan's stratum "
            "comes from its ground truth and is the same under every condition): "
            "`stratified.csv`, figures below.\n"
        )
    else:
        add("Not available (no `gt_volume_ml` / `gt_lesions` column).\n")
    add("## Figures\n")
    if not opts.make_figures:
        add("Not drawn (`--no-figures`).\n")
    for title, path in ctx["figures"]:
        add(f"- {title}: [{path}]({path}) (PDF beside it)\n\n  ![{title}]({path})\n")
    if ctx["figure_notes"]:
        add("\n".join(ctx["figure_notes"]) + "\n")
    add("## Conventions\n")
    lines.extend(_settings_lines(ctx["settings"]))
    add(_CONVENTIONS)
    add("## Methods (adapt for a paper)\n")
    has_unpaired = bool((comp["design"] == "unpaired").any()) if not comp.empty else False
    methods = _methods_paragraph(opts, has_unpaired, fried is not None and len(fried) > 0)
    methods += ni.methods_text(
        ctx["noninferiority"], opts.margins, reference=opts.reference, alpha=opts.alpha,
        correction_name=_correction_name(opts), n_boot=opts.n_boot, seed=opts.seed,
    )  # fmt: skip
    add(methods + "\n")
    add("## Software\n")
    add(", ".join(f"{k} {v}" for k, v in ctx["versions"].items()) + ".\n")
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))


# --------------------------------------------------------------------------- the pipeline


def _versions() -> dict[str, str]:
    import matplotlib
    import scipy

    import lesionres

    return {
        "lesionres": lesionres.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
    }


def _conditions_table(df: pd.DataFrame) -> pd.DataFrame:
    failed = stats.failed_rows(df)
    keys = stats.scan_keys(df)
    rows = []
    for cond in stats.condition_order(df):
        sel = df["condition"].astype(str) == cond
        first = df[sel].iloc[0]
        rec: dict[str, Any] = {"condition": cond}
        for col in ("method", "factor", "spacing_mm", "effective_fwhm_mm", "dataset"):
            if col in df.columns:
                rec[col] = "" if pd.isna(first[col]) else str(first[col])
        rec["scans"] = int(keys[sel].nunique())
        rec["rows"] = int(sel.sum())
        rec["failed"] = int((sel & failed).sum())
        rows.append(rec)
    return pd.DataFrame(rows)


def analyze(
    results_csv: str | Path,
    out_dir: str | Path,
    metric: str = "dice",
    correction: str = "holm",
    alpha: float = 0.05,
    predictions_dir: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    *,
    zero_method: str = "wilcox",
    partial: str = "error",
    match: str = "strict",
    make_figures: bool = True,
    data_root: str | Path | None = None,
    source_spacing: str | None = None,
    margins: Sequence[str] | Mapping[str, float] | None = None,
    reference: str | None = None,
    pairs: str = "auto",
) -> Path:
    """Run the whole analysis of a results table and write tables, figures and ``report.md``.

    Args:
        results_csv: the per-scan results table.
        out_dir: output folder (created; files in it are replaced).
        metric: primary metric for the tests.
        correction: ``"holm"`` (default) or ``"fdr_bh"``.
        alpha: significance level for the adjusted p-values.
        predictions_dir: saved NIfTI predictions for the overlay figure (layout: module
            docstring).
        n_boot: bootstrap resamples for confidence intervals.
        seed: seed of every bootstrap and of the plot jitter.
        zero_method: ``"wilcox"``, ``"pratt"`` or ``"zsplit"``.
        partial: ``"error"`` or ``"intersect"`` for conditions whose scan sets partly overlap.
        match: scans under two dataset labels: ``"strict"`` (refuse), ``"subject"`` (the same
            scans: pair by subject id) or ``"dataset"`` (different scans whose ids collide).
        make_figures: write the figures (off: tables and report only).
        data_root: dataset folder with the ground truth and images for the overlays.
        source_spacing: spacing of the original images (e.g. ``"1"`` or ``"2x2x2"``) for the
            resolution curve, when the ``original`` rows leave ``spacing_mm`` empty.
        margins: non-inferiority margins, ``{"dice": 0.02}`` or ``["dice=0.02"]`` (default
            :data:`lesionres.analysis.noninferiority.DEFAULT_MARGINS`, used for the metrics the
            table has; ``["none"]``: no margin analysis).
        reference: the condition the others must be as good as (default ``original``, else the
            condition whose method is ``original``).

    Returns:
        The path of ``report.md``.

    Raises:
        LesionresError: unreadable input, missing columns, invalid options or design errors
            (the message names the results file).
    """
    t0 = time.perf_counter()
    results_csv, out_dir = Path(results_csv), Path(out_dir)
    if correction not in ("holm", "fdr_bh"):
        raise LesionresError(f"--correction: expected holm or fdr_bh, got {correction!r}")
    if not 0 < alpha < 0.5:  # one-sided margin tests at alpha, CIs at 1 - 2 alpha
        raise LesionresError(f"--alpha: expected a number between 0 and 0.5, got {alpha}")
    df = load_results(results_csv, metric)
    margin_map = ni.parse_margins(margins)
    if margins is None:  # the defaults apply where the table has the metric
        margin_map = {m: v for m, v in margin_map.items() if m in df.columns}
    opts = _Options(
        metric, correction, alpha, n_boot, seed, zero_method, partial, match, make_figures,
        predictions_dir, data_root, source_spacing, margin_map, margins is None, reference,
        pairs,
    )  # fmt: skip
    n_rows = len(df)
    dup = df.duplicated(keep="first")  # identical rows: DDP padding, a re-appended run
    df = df[~dup].reset_index(drop=True)
    try:
        df = stats.harmonise_labels(df, match)  # type: ignore[arg-type]
        ctx = _run(df, opts, out_dir)
    except LesionresError as error:
        raise LesionresError(f"{results_csv}: {error}") from None
    ctx.update(
        results_path=str(results_csv),
        results_name=results_csv.name,
        sha256=hashlib.sha256(results_csv.read_bytes()).hexdigest(),
        n_rows=n_rows,
        n_exact_duplicates=int(dup.sum()),
        versions=_versions(),
        settings=_read_settings(results_csv),
    )
    report = _write_report(ctx, opts, out_dir)
    write_json(
        out_dir / "analysis.json",
        {
            "results": ctx["results_path"],
            "sha256": ctx["sha256"],
            "rows": n_rows,
            "exact_duplicates_removed": ctx["n_exact_duplicates"],
            "failed_rows": len(ctx["failed"]),
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
            "conditions": ctx["conditions"].to_dict(orient="records"),
            "figures": [p for _, p in ctx["figures"]],
            "seconds": round(time.perf_counter() - t0, 2),
            "versions": ctx["versions"],
        },
    )
    return report


def _run(df: pd.DataFrame, opts: _Options, out_dir: Path) -> dict[str, Any]:
    has_models = "model" in df.columns and df["model"].notna().any()
    models: list[str | None] = (
        [str(m) for m in pd.unique(df["model"].dropna().astype(str))] if has_models else [None]
    )
    test_args = dict(
        correction=opts.correction, alpha=opts.alpha, n_boot=opts.n_boot, seed=opts.seed,
        zero_method=opts.zero_method, partial=opts.partial, match=opts.match,
    )  # fmt: skip
    summary = stats.summarize(df)
    comparisons = stats.compare_conditions(
        df, opts.metric, pairs=_comparison_pairs(df, opts), **test_args  # type: ignore[arg-type]
    )
    sizes = dict(alpha=opts.alpha, seed=opts.seed)
    comparisons["n_for_80_power"] = ni.scans_for_comparisons(df, comparisons, opts.metric, **sizes)
    fried_rows, fried_skip = [], ""
    for model in models:
        sub = df if model is None else df[df["model"].astype(str) == model]
        try:
            fried_rows.append(stats.friedman(sub, opts.metric))
        except LesionresError as error:  # fewer than 3 paired conditions: said in the report
            fried_skip = str(error)
    friedman = pd.DataFrame(fried_rows) if fried_rows else None
    if friedman is not None and not has_models:
        friedman = friedman.drop(columns="model")
    strat_frames, strat_by = [], []
    for by in ("gt_volume_ml", "gt_lesions"):
        if by in df.columns and pd.to_numeric(df[by], errors="coerce").notna().any():
            strat_frames.append(stats.stratify(df, opts.metric, by=by))
            strat_by.append(by)
    stratified = pd.concat(strat_frames, ignore_index=True) if strat_frames else None
    model_comparisons = None
    if len(models) > 1:
        model_comparisons = stats.compare_models(df, opts.metric, **test_args)  # type: ignore
        model_comparisons["n_for_80_power"] = ni.scans_for_comparisons(
            df, model_comparisons, opts.metric, **sizes
        )
    write_tables(
        out_dir, summary=summary, comparisons=comparisons, stratified=stratified,
        friedman=friedman, model_comparisons=model_comparisons,
    )  # fmt: skip
    margin_table, crossing = _margins(df, opts, out_dir)
    shown = [m for m in REPORT_METRICS if m in df.columns]
    if opts.metric not in shown:
        shown.insert(0, opts.metric)
    summary_wide = {}
    for model in models:
        s = summary if model is None else summary[summary["model"].astype(str) == model]
        summary_wide[model or ""] = _summary_block(s, shown)
    written: list[tuple[str, str]] = []
    notes: list[str] = []
    if opts.make_figures:
        written, notes = _figures(df, opts, models, stratified, crossing, out_dir)
    return dict(
        df=df,
        failed=df[stats.failed_rows(df)],
        conditions=_conditions_table(df),
        summary_wide=summary_wide,
        comparisons=comparisons,
        friedman=friedman,
        friedman_skip=fried_skip,
        model_comparisons=model_comparisons,
        stratified_by=strat_by,
        figures=written,
        figure_notes=notes,
        noninferiority=margin_table,
        crossing=crossing,
    )


def _comparison_pairs(df: pd.DataFrame, opts: _Options) -> list[tuple[str, str]] | None:
    """The family of condition comparisons: every pair, or each condition against the reference.

    ``auto`` tests every pair up to 6 conditions (15 tests) and, beyond, each condition against
    the reference only: a sweep of 16 conditions has 120 pairs, most of them of no interest,
    and Holm over all of them would cost the comparisons that matter their power.
    """
    if opts.pairs not in ("auto", "all", "reference"):
        raise LesionresError(f"--pairs: expected auto, all or reference, got {opts.pairs!r}")
    conditions = stats.condition_order(df)
    reference = opts.reference or ni.default_reference(df)
    if opts.pairs == "auto":
        opts.pairs = "all" if len(conditions) <= 6 or reference is None else "reference"
    if opts.pairs == "all":
        return None
    if reference not in conditions:
        raise LesionresError(
            f"--pairs reference: no reference condition {reference or 'original'!r}; "
            f"the table has {', '.join(conditions)} (pass --reference)"
        )
    opts.reference = reference
    return [(reference, c) for c in conditions if c != reference]


def _margins(df: pd.DataFrame, opts: _Options, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Non-inferiority against the reference and the crossing resolution; tables written."""
    reference = opts.reference or ni.default_reference(df)
    opts.reference = reference
    table = ni.compare_to_reference(
        df, opts.margins, reference=reference, alpha=opts.alpha, correction=opts.correction,
        n_boot=opts.n_boot, seed=opts.seed, zero_method=opts.zero_method, partial=opts.partial,
        match=opts.match,
    )  # fmt: skip
    crossing = ni.margin_crossing(
        df, table, source_spacing=opts.source_spacing, n_boot=opts.n_boot, seed=opts.seed,
        match=opts.match,
    )  # fmt: skip
    if len(table):
        short = [c for c in ni.NONINFERIORITY_COLUMNS[:13] if c != "reference"]
        write_table(table, out_dir, "noninferiority", columns=["model", *short],
                    caption="Non-inferiority and equivalence against the reference")  # fmt: skip
        write_table(crossing, out_dir, "crossing",
                    caption="Resolution at which the margin is crossed, per method")  # fmt: skip
    return table, crossing


def _figures(
    df: pd.DataFrame,
    opts: _Options,
    models: list[str | None],
    stratified: pd.DataFrame | None,
    crossing: pd.DataFrame,
    out_dir: Path,
) -> tuple[list[tuple[str, str]], list[str]]:
    fig_dir = out_dir / "figures"
    written: list[tuple[str, str]] = []
    notes: list[str] = []
    boot = dict(n_boot=opts.n_boot, seed=opts.seed)

    def keep(title: str, fig: Any, stem: str) -> None:
        if fig is not None:
            figs.save_figure(fig, fig_dir / stem)
            written.append((title, f"figures/{stem}.png"))

    # the study's headline first: the metric against the (effective) voxel size, per method
    curve = figs.plot_resolution_curve(
        df,
        opts.metric,
        source_spacing=opts.source_spacing,
        margin=opts.margins.get(opts.metric),
        crossings=crossing[crossing["metric"] == opts.metric] if len(crossing) else None,
        **boot,  # type: ignore[arg-type]
    )
    keep(f"{opts.metric} against resolution", curve, f"resolution_{opts.metric}")
    if curve is None:
        notes.append(
            "No resolution curve: no degradation method was run at two or more resolutions."
        )
    for model in models:
        tag = f"_model-{re.sub(r'[^A-Za-z0-9.-]+', '-', model)}" if model else ""
        who = f" (model {model})" if model else ""
        keep(f"Mean metrics per condition{who}", figs.plot_metric_bars(df, model=model, **boot),
             f"bars{tag}")  # fmt: skip
        for m in dict.fromkeys([opts.metric, *_DISTRIBUTION_METRICS]):
            if m in df.columns and pd.to_numeric(df[m], errors="coerce").notna().any():
                fig = figs.plot_distributions(df, m, model=model, seed=opts.seed)
                keep(f"{m} per scan{who}", fig, f"distribution_{m}{tag}")
        if {"gt_volume_ml", "pred_volume_ml"} <= set(df.columns):
            fig = figs.plot_volume_agreement(df, model=model)
            keep(f"Predicted vs true volume{who}", fig, f"volume_agreement{tag}")
        if stratified is not None:
            for by in pd.unique(stratified["by"]):
                fig = figs.plot_stratified(stratified[stratified["by"] == by], model=model)
                keep(f"{opts.metric} by {by}{who}", fig, f"stratified_{by}{tag}")
    if opts.predictions_dir is not None:
        examples = find_prediction_examples(opts.predictions_dir, df, data_root=opts.data_root)
        if not examples:
            where = f" and under `{opts.data_root}`" if opts.data_root else "; pass --data-root"
            notes.append(
                "No overlay: no scan had both a prediction in "
                f"`{opts.predictions_dir}/<condition>/` and a ground-truth mask (searched beside "
                f"the predictions{where})."
            )
        for ex in examples:
            stem = f"overlay_{re.sub(r'[^A-Za-z0-9.-]+', '-', ex['subject_id'])}"
            title = f"{ex['subject_id']}: ground truth vs prediction"
            fig = figs.overlay_figure(ex["image"], ex["gt"], ex["preds"], title=title)
            keep(f"Overlay {ex['subject_id']}", fig, stem)
    return written, notes
