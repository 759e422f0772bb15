"""What ``analyze`` was asked for and what it found: the two records the report is written from.

:class:`AnalysisOptions` holds the options (written to the report and ``analysis.json``);
:class:`ReportContext` holds every table and note :mod:`lesionres.analysis.pipeline` computes
and :func:`lesionres.analysis.report.write_report` turns into ``report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["AnalysisOptions", "ReportContext"]


@dataclass
class AnalysisOptions:
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


@dataclass
class ReportContext:
    """The results of one analysis, as the report reads them.

    Attributes:
        df: The results table (exact duplicates removed, labels harmonised).
        failed: Its failed rows (non-empty ``error``).
        conditions: One row per condition: method, spacing, scans, rows, failures.
        summary_wide: Per model (``""`` without models) the summary section's lines.
        comparisons: :func:`lesionres.analysis.compare_conditions` rows.
        friedman: Friedman rows per model, or ``None`` when not run.
        friedman_skip: Why it was not run.
        model_comparisons: :func:`lesionres.analysis.compare_models` rows (>= 2 models).
        stratified_by: The ground-truth columns the metric was stratified by.
        figures: ``(title, relative path)`` of every figure written.
        figure_notes: Why a figure is missing.
        noninferiority: :func:`lesionres.analysis.compare_to_reference` rows.
        crossing: :func:`lesionres.analysis.margin_crossing` rows.
        results_path: The results table as given.
        results_name: Its file name.
        sha256: Its checksum.
        n_rows: Its rows before exact duplicates were removed.
        n_exact_duplicates: Rows identical in every column, removed.
        versions: Software versions.
        settings: The ``results.json`` beside the table (``{}`` if none).
    """

    df: pd.DataFrame
    failed: pd.DataFrame
    conditions: pd.DataFrame
    summary_wide: dict[str, list[str]]
    comparisons: pd.DataFrame
    friedman: pd.DataFrame | None
    friedman_skip: str
    model_comparisons: pd.DataFrame | None
    stratified_by: list[str]
    figures: list[tuple[str, str]]
    figure_notes: list[str]
    noninferiority: pd.DataFrame
    crossing: pd.DataFrame
    results_path: str = ""
    results_name: str = ""
    sha256: str = ""
    n_rows: int = 0
    n_exact_duplicates: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
