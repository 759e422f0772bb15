"""The ``analyze`` pipeline: from a per-scan ``results.csv`` to tables, figures and a report.

:func:`analyze` reads the table, runs the statistics (summaries, pairwise comparisons, the
Friedman test, strata, model comparisons, margins and the crossing resolution), writes the
tables and figures and collects what it found in a
:class:`~lesionres.analysis.context.ReportContext`, from which
:func:`lesionres.analysis.report.write_report` writes ``report.md``. The output folder's layout
and the command line are in :mod:`lesionres.analysis.report`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lesionres.analysis.compare import compare_conditions, compare_models, friedman
from lesionres.analysis.context import AnalysisOptions, ReportContext
from lesionres.analysis.crossing import margin_crossing
from lesionres.analysis.describe import stratify, summarize
from lesionres.analysis.figures import (
    plot_distributions,
    plot_metric_bars,
    plot_stratified,
    plot_volume_agreement,
)
from lesionres.analysis.noninferiority import (
    NONINFERIORITY_COLUMNS,
    compare_to_reference,
    default_reference,
    parse_margins,
)
from lesionres.analysis.overlays import find_prediction_examples, overlay_figure
from lesionres.analysis.plotting import save_figure
from lesionres.analysis.report import _summary_block, _versions, write_report
from lesionres.analysis.resolution_curve import plot_resolution_curve
from lesionres.analysis.results_table import (
    condition_order,
    failed_rows,
    harmonise_labels,
    load_results,
    scan_keys,
)
from lesionres.analysis.sample_size import scans_for_comparisons
from lesionres.analysis.tables import write_json, write_table, write_tables
from lesionres.errors import LesionresError
from lesionres.metrics import (
    DISTRIBUTION_METRICS,
    REPORT_METRICS,
)

__all__ = [
    "analyze",
]


def read_settings(results_csv: Path) -> dict:
    """The ``results.json`` that ``test``/``score`` wrote beside the table (``{}`` if none)."""
    sidecar = results_csv.with_suffix(".json")  # lesionres.results.settings_path, torch-free
    try:
        return json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    except (OSError, ValueError) as error:
        raise LesionresError(f"{sidecar}: unreadable settings ({error})") from None


def _conditions_table(df: pd.DataFrame) -> pd.DataFrame:
    failed = failed_rows(df)
    keys = scan_keys(df)
    rows = []
    for cond in condition_order(df):
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
    margin_map = parse_margins(margins)
    if margins is None:  # the defaults apply where the table has the metric
        margin_map = {m: v for m, v in margin_map.items() if m in df.columns}
    opts = AnalysisOptions(
        metric, correction, alpha, n_boot, seed, zero_method, partial, match, make_figures,
        predictions_dir, data_root, source_spacing, margin_map, margins is None, reference,
        pairs,
    )  # fmt: skip
    n_rows = len(df)
    dup = df.duplicated(keep="first")  # identical rows: DDP padding, a re-appended run
    df = df[~dup].reset_index(drop=True)
    try:
        df = harmonise_labels(df, match)  # type: ignore[arg-type]
        ctx = _run(df, opts, out_dir)
    except LesionresError as error:
        raise LesionresError(f"{results_csv}: {error}") from None
    ctx.results_path = str(results_csv)
    ctx.results_name = results_csv.name
    ctx.sha256 = hashlib.sha256(results_csv.read_bytes()).hexdigest()
    ctx.n_rows = n_rows
    ctx.n_exact_duplicates = int(dup.sum())
    ctx.versions = _versions()
    ctx.settings = read_settings(results_csv)
    report = write_report(ctx, opts, out_dir)
    write_json(
        out_dir / "analysis.json",
        {
            "results": ctx.results_path,
            "sha256": ctx.sha256,
            "rows": n_rows,
            "exact_duplicates_removed": ctx.n_exact_duplicates,
            "failed_rows": len(ctx.failed),
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
            "conditions": ctx.conditions.to_dict(orient="records"),
            "figures": [p for _, p in ctx.figures],
            "seconds": round(time.perf_counter() - t0, 2),
            "versions": ctx.versions,
        },
    )
    return report


def _run(df: pd.DataFrame, opts: AnalysisOptions, out_dir: Path) -> ReportContext:
    has_models = "model" in df.columns and df["model"].notna().any()
    models: list[str | None] = (
        [str(m) for m in pd.unique(df["model"].dropna().astype(str))] if has_models else [None]
    )
    test_args = dict(
        correction=opts.correction, alpha=opts.alpha, n_boot=opts.n_boot, seed=opts.seed,
        zero_method=opts.zero_method, partial=opts.partial, match=opts.match,
    )  # fmt: skip
    summary = summarize(df)
    comparisons = compare_conditions(
        df,
        opts.metric,
        pairs=_comparison_pairs(df, opts),
        **test_args,  # type: ignore[arg-type]
    )
    sizes = dict(alpha=opts.alpha, seed=opts.seed)
    comparisons["n_for_80_power"] = scans_for_comparisons(df, comparisons, opts.metric, **sizes)
    fried_rows, fried_skip = [], ""
    for model in models:
        sub = df if model is None else df[df["model"].astype(str) == model]
        try:
            fried_rows.append(friedman(sub, opts.metric))
        except LesionresError as error:  # fewer than 3 paired conditions: said in the report
            fried_skip = str(error)
    omnibus = pd.DataFrame(fried_rows) if fried_rows else None
    if omnibus is not None and not has_models:
        omnibus = omnibus.drop(columns="model")
    strat_frames, strat_by = [], []
    for by in ("gt_volume_ml", "gt_lesions"):
        if by in df.columns and pd.to_numeric(df[by], errors="coerce").notna().any():
            strat_frames.append(stratify(df, opts.metric, by=by))
            strat_by.append(by)
    stratified = pd.concat(strat_frames, ignore_index=True) if strat_frames else None
    model_comparisons = None
    if len(models) > 1:
        model_comparisons = compare_models(df, opts.metric, **test_args)  # type: ignore
        model_comparisons["n_for_80_power"] = scans_for_comparisons(
            df, model_comparisons, opts.metric, **sizes
        )
    write_tables(
        out_dir, summary=summary, comparisons=comparisons, stratified=stratified,
        friedman=omnibus, model_comparisons=model_comparisons,
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
    return ReportContext(
        df=df,
        failed=df[failed_rows(df)],
        conditions=_conditions_table(df),
        summary_wide=summary_wide,
        comparisons=comparisons,
        friedman=omnibus,
        friedman_skip=fried_skip,
        model_comparisons=model_comparisons,
        stratified_by=strat_by,
        figures=written,
        figure_notes=notes,
        noninferiority=margin_table,
        crossing=crossing,
    )


def _comparison_pairs(df: pd.DataFrame, opts: AnalysisOptions) -> list[tuple[str, str]] | None:
    """The family of condition comparisons: every pair, or each condition against the reference.

    ``auto`` tests every pair up to 6 conditions (15 tests) and, beyond, each condition against
    the reference only: a sweep of 16 conditions has 120 pairs, most of them of no interest,
    and Holm over all of them would cost the comparisons that matter their power.
    """
    if opts.pairs not in ("auto", "all", "reference"):
        raise LesionresError(f"--pairs: expected auto, all or reference, got {opts.pairs!r}")
    conditions = condition_order(df)
    reference = opts.reference or default_reference(df)
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


def _margins(
    df: pd.DataFrame, opts: AnalysisOptions, out_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Non-inferiority against the reference and the crossing resolution; tables written."""
    reference = opts.reference or default_reference(df)
    opts.reference = reference
    table = compare_to_reference(
        df, opts.margins, reference=reference, alpha=opts.alpha, correction=opts.correction,
        n_boot=opts.n_boot, seed=opts.seed, zero_method=opts.zero_method, partial=opts.partial,
        match=opts.match,
    )  # fmt: skip
    crossing = margin_crossing(
        df, table, source_spacing=opts.source_spacing, n_boot=opts.n_boot, seed=opts.seed,
        match=opts.match,
    )  # fmt: skip
    if len(table):
        short = [c for c in NONINFERIORITY_COLUMNS[:13] if c != "reference"]
        write_table(table, out_dir, "noninferiority", columns=["model", *short],
                    caption="Non-inferiority and equivalence against the reference")  # fmt: skip
        write_table(crossing, out_dir, "crossing",
                    caption="Resolution at which the margin is crossed, per method")  # fmt: skip
    return table, crossing


def _figures(
    df: pd.DataFrame,
    opts: AnalysisOptions,
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
            save_figure(fig, fig_dir / stem)
            written.append((title, f"figures/{stem}.png"))

    # the study's headline first: the metric against the (effective) voxel size, per method
    curve = plot_resolution_curve(
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
        keep(f"Mean metrics per condition{who}", plot_metric_bars(df, model=model, **boot),
             f"bars{tag}")  # fmt: skip
        for m in dict.fromkeys([opts.metric, *DISTRIBUTION_METRICS]):
            if m in df.columns and pd.to_numeric(df[m], errors="coerce").notna().any():
                fig = plot_distributions(df, m, model=model, seed=opts.seed)
                keep(f"{m} per scan{who}", fig, f"distribution_{m}{tag}")
        if {"gt_volume_ml", "pred_volume_ml"} <= set(df.columns):
            fig = plot_volume_agreement(df, model=model)
            keep(f"Predicted vs true volume{who}", fig, f"volume_agreement{tag}")
        if stratified is not None:
            for by in pd.unique(stratified["by"]):
                fig = plot_stratified(stratified[stratified["by"] == by], model=model)
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
            fig = overlay_figure(ex["image"], ex["gt"], ex["preds"], title=title)
            keep(f"Overlay {ex['subject_id']}", fig, stem)
    return written, notes
