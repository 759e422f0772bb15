"""Statistics, tables, figures and reports across test-time resolution conditions.

Pure pandas / numpy / scipy / matplotlib: importing this package never imports torch or
Lightning, so a results table can be analysed on any machine (a laptop, a notebook server).

Typical use::

    from lesionres.analysis import analyze, compare_conditions, load_results, summarize

    report = analyze("results.csv", "report/")            # everything, plus report.md
    df = load_results("results.csv")
    compare_conditions(df, "dice", correction="holm")       # paired / unpaired, chosen per pair
    compare_to_reference(df, {"dice": 0.02})                      # good enough within a margin?

See :mod:`lesionres.analysis.stats` for the conventions (sign of effect sizes, median
difference, p-value methods, zero differences, missing values) and
:mod:`lesionres.analysis.noninferiority` for margins, equivalence, the crossing resolution and
sample sizes.
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
from lesionres.analysis.noninferiority import (
    DEFAULT_MARGINS,
    compare_to_reference,
    margin_crossing,
    parse_margins,
)
from lesionres.analysis.report import analyze, find_prediction_examples, load_results
from lesionres.analysis.stats import (
    COMPARISON_COLUMNS,
    METRICS,
    adjust_pvalues,
    better_direction,
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
    "DEFAULT_MARGINS",
    "METRICS",
    "adjust_pvalues",
    "analyze",
    "better_direction",
    "bootstrap_mean_ci",
    "compare_conditions",
    "compare_to_reference",
    "compare_models",
    "condition_order",
    "coverage_notes",
    "failed_rows",
    "find_prediction_examples",
    "friedman",
    "latex_table",
    "load_results",
    "margin_crossing",
    "markdown_table",
    "overlay_figure",
    "paired_block",
    "paired_test",
    "parse_margins",
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
