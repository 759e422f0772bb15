"""``report.md``: the prose of an analysis.

The pipeline that computes what the report says is :mod:`lesionres.analysis.pipeline`; the
command line is :mod:`lesionres.commands.analysis`::

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

Ground truth and image are the results rows' ``mask_path`` and ``image_path`` when present;
else they are searched in DIR outside the condition folders, then under ROOT
(the dataset: ATLAS, ISLES 2022 and ``folder`` layouts all match). Without a ground truth no
overlay is drawn, and the report says so.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lesionres.analysis.comparison_text import _fmt, _p_phrase, comparison_section, model_section
from lesionres.analysis.context import AnalysisOptions, ReportContext
from lesionres.analysis.conventions import (
    CONVENTIONS,
    correction_name,
    family_name,
    margin_phrase,
    margins_methods,
    methods_paragraph,
    settings_lines,
)
from lesionres.analysis.describe import coverage_notes
from lesionres.analysis.noninferiority_text import report_lines
from lesionres.analysis.results_table import _text, condition_order, scan_keys
from lesionres.analysis.tables import format_p, markdown_table
from lesionres.files import atomic_write_text, package_versions
from lesionres.metrics import (
    METRIC_LABELS,
    metric_label,
)

__all__ = ["write_report"]


def write_report(ctx: ReportContext, opts: AnalysisOptions, out_dir: Path) -> Path:
    """Write ``report.md`` in ``out_dir`` from one analysis' results; its path."""
    df: pd.DataFrame = ctx.df
    comp: pd.DataFrame = ctx.comparisons
    lines: list[str] = []
    add = lines.append
    add(f"# Resolution study: analysis of `{ctx.results_name}`\n")
    add(
        f"Input: `{ctx.results_path}` ({ctx.n_rows} rows, sha256 `{ctx.sha256[:16]}…`). "
        f"Primary metric: **{opts.metric}**. Correction: **{opts.correction}** over all pairwise "
        f"comparisons, alpha = {opts.alpha}. Bootstrap: {opts.n_boot} resamples, seed "
        f"{opts.seed}. Zero differences: '{opts.zero_method}'. Partial overlaps: "
        f"'{opts.partial}'. {margin_phrase(opts)}\n"
    )
    add("## Data\n")
    add(markdown_table(ctx.conditions))
    if ctx.n_exact_duplicates:
        add(
            f"{ctx.n_exact_duplicates} exact duplicate row(s) were removed (identical in every "
            "column; typical of DDP padding the last batch).\n"
        )
    failed = ctx.failed
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
    for model, block in ctx.summary_wide.items():
        add(f"## Summary{f' — model {model}' if model else ''}\n")
        add(
            "mean ± SD (median) per scan; failed rows and missing values excluded (`n=`: the "
            "scans a mean is over, when fewer than `scans`). All metrics, with n, undefined "
            "values and why, min and max: `summary.csv`.\n"
        )
        lines.extend(block)
    if ctx.model_comparisons is not None:  # the experiment's headline: before the details
        lines.extend(model_section(df, ctx.model_comparisons, ctx.figures, opts))
    lines.extend(comparison_section(comp, opts))
    lines.extend(
        report_lines(
            ctx.noninferiority, ctx.crossing, margins=opts.margins,
            defaulted=opts.margins_defaulted, reference=opts.reference, alpha=opts.alpha,
            correction=family_name(opts),
            labels=METRIC_LABELS, fmt=_fmt, fmt_p=format_p, markdown=markdown_table,
        )
    )  # fmt: skip
    add("## Omnibus test\n")
    fried = ctx.friedman
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
        add(f"Not run: {ctx.friedman_skip}\n")
    add("## Stratified by the ground truth\n")
    if ctx.stratified_by:
        add(
            f"{opts.metric} per stratum of {', '.join(ctx.stratified_by)} (a scan's stratum "
            "comes from its ground truth and is the same under every condition): "
            "`stratified.csv`, figures below.\n"
        )
    else:
        add("Not available (no `gt_volume_ml` / `gt_lesions` column).\n")
    add("## Figures\n")
    if not opts.make_figures:
        add("Not drawn (`--no-figures`).\n")
    for title, path in ctx.figures:
        add(f"- {title}: [{path}]({path}) (PDF beside it)\n\n  ![{title}]({path})\n")
    if ctx.figure_notes:
        add("\n".join(ctx.figure_notes) + "\n")
    add("## Conventions\n")
    lines.extend(settings_lines(ctx.settings))
    add(CONVENTIONS)
    add("## Methods (adapt for a paper)\n")
    has_unpaired = bool((comp["design"] == "unpaired").any()) if not comp.empty else False
    methods = methods_paragraph(opts, has_unpaired, fried is not None and len(fried) > 0)
    methods += margins_methods(
        ctx.noninferiority, opts.margins, reference=opts.reference, alpha=opts.alpha,
        correction_name=correction_name(opts), n_boot=opts.n_boot, seed=opts.seed,
    )  # fmt: skip
    add(methods + "\n")
    add("## Software\n")
    add(", ".join(f"{k} {v}" for k, v in ctx.versions.items()) + ".\n")
    return atomic_write_text(out_dir / "report.md", "\n".join(lines))


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
                rec[metric_label(m)] = f"{r['mean']:.3g}{sd} ({r['median']:.3g}){n}"
        rows.append(rec)
    return pd.DataFrame(rows)


def _summary_block(summary: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The summary table and, below it, every mean that is over fewer scans, and why."""
    out = [markdown_table(_summary_wide(summary, metrics))]
    shown = summary[summary["metric"].isin(metrics)]
    notes = coverage_notes(shown, METRIC_LABELS)
    if notes:
        out.append(
            "Means over fewer scans than the condition has (a metric undefined on a scan, e.g. "
            "HD95 of an empty prediction, leaves that scan, often one of the worst, out of "
            "its mean):\n"
        )
        out += [f"- {line}" for line in notes] + [""]
    return out


def _design_lines(df: pd.DataFrame, comp: pd.DataFrame) -> list[str]:
    """Which conditions are paired with which, read from the scan sets."""
    lines = []
    keys = scan_keys(df)
    cond = df["condition"].astype(str)
    groups: dict[frozenset[str], list[str]] = {}
    for c in condition_order(df):
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
    for dataset, rows in df.groupby(_text(df["dataset"]), sort=False):
        described = {}
        for col in ("modality", "space"):
            values = sorted(set(_text(rows[col]))) if col in rows.columns else []
            described[col] = ", ".join(v for v in values if v) or "not recorded"
        method = _text(rows["method"]) if "method" in rows.columns else ""
        native = rows[pd.Series(method, index=rows.index).isin(_UNDEGRADED)]
        spacing = (
            sorted(set(_text((native if len(native) else rows)["spacing_mm"])))
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


def _versions() -> dict[str, str]:
    packages = ("lesionres", "numpy", "pandas", "scipy", "matplotlib")
    return {"python": platform.python_version(), **package_versions(packages)}
