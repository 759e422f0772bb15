"""Statistics, tables, figures and reports across test-time resolution conditions.

Pure pandas / numpy / scipy / matplotlib: importing this package never imports torch or
Lightning, so a results table can be analysed on any machine (a laptop, a notebook server).

Typical use::

    from lesionres.analysis import analyze, compare_conditions, load_results, summarize

    report = analyze("results.csv", "report/")            # everything, plus report.md
    df = load_results("results.csv")
    compare_conditions(df, "dice", correction="holm")       # paired / unpaired, chosen per pair

See :mod:`lesionres.analysis.stats` for the conventions (sign of effect sizes, median
difference, p-value methods, zero differences, missing values).
"""

from lesionres.analysis.demo import synthetic_results
from lesionres.analysis.figures import (
    bootstrap_mean_ci,
    overlay_figure,
    parse_resolution,
    plot_distributions,
    plot_metric_bars,
    plot_resolution_curve,
    plot_stratified,
    plot_volume_agreement,
    resolution_table,
    save_figure,
)
from lesionres.analysis.report import analyze, analyze_main, find_prediction_examples, load_results
from lesionres.analysis.stats import (
    COMPARISON_COLUMNS,
    METRICS,
    adjust_pvalues,
    compare_conditions,
    compare_models,
    condition_order,
    coverage_notes,
    failed_rows,
    friedman,
    paired_block,
    paired_test,
    scan_keys,
    stratify,
    summarize,
    unpaired_test,
)
from lesionres.analysis.tables import latex_table, markdown_table, write_table, write_tables

__all__ = [
    "COMPARISON_COLUMNS",
    "METRICS",
    "adjust_pvalues",
    "analyze",
    "analyze_main",
    "bootstrap_mean_ci",
    "compare_conditions",
    "compare_models",
    "condition_order",
    "coverage_notes",
    "failed_rows",
    "find_prediction_examples",
    "friedman",
    "latex_table",
    "load_results",
    "markdown_table",
    "overlay_figure",
    "paired_block",
    "paired_test",
    "parse_resolution",
    "plot_distributions",
    "plot_metric_bars",
    "plot_resolution_curve",
    "plot_stratified",
    "plot_volume_agreement",
    "resolution_table",
    "save_figure",
    "scan_keys",
    "stratify",
    "summarize",
    "synthetic_results",
    "unpaired_test",
    "write_table",
    "write_tables",
]
