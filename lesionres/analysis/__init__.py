"""Statistics, tables, figures and reports across test-time resolution conditions.

Pure pandas / numpy / scipy / matplotlib: importing this package never imports torch or
Lightning, so a results table can be analysed on any machine (a laptop, a notebook server).

Typical use::

    from lesionres.analysis import analyze, compare_conditions, load_results, summarize

    report = analyze("results.csv", "report/")            # everything, plus report.md
    df = load_results("results.csv")
    compare_conditions(df, "dice", correction="holm")       # paired / unpaired, chosen per pair
    compare_to_reference(df, {"dice": 0.02})                      # good enough within a margin?

The conventions (sign of effect sizes, median difference, p-value methods, zero differences,
missing values) are :data:`lesionres.analysis.conventions.CONVENTIONS`; margins and equivalence
are :mod:`lesionres.analysis.noninferiority`. One module per job:

===========================  ==================================================================
``results_table``            read ``results.csv``; scans, failed rows, condition order, blocks
``rank_tests``               Wilcoxon, Mann-Whitney, Holm / Benjamini-Hochberg
``bootstrap``                seeded bootstraps of a mean and of the Hodges-Lehmann estimates
``compare``                  every pair of conditions (or models), one family; Friedman
``describe``                 summaries, how many scans a mean is over, strata
``noninferiority``           margins: non-inferiority, equivalence, verdicts
``crossing``                 the resolution at which each method crosses the margin
``sample_size``              power and scans needed, by resampling
``resolution_axis``          each condition's (effective) resolution, the curves' x axis
``plotting``                 what every figure shares (saving, colours, one model)
``figures``                  bars, distributions, volume agreement, strata
``resolution_curve``         the metric against resolution, one curve per method
``overlays``                 example scans: ground-truth vs predicted contours
``tables``                   Markdown, LaTeX and CSV output of the tables
``conventions``              the conventions and methods text (one copy)
``comparison_text``          the report's comparison and model sections
``noninferiority_text``      the report's margin section
``context``                  the options and results the report is written from
``pipeline``                 ``analyze``: table in, tables, figures and report out
``report``                   ``report.md``, and the ``analyze`` command line
``demo``                     a synthetic results table for trying it out
===========================  ==================================================================
"""

from lesionres.analysis.bootstrap import bootstrap_mean_ci
from lesionres.analysis.compare import (
    COMPARISON_COLUMNS,
    compare_conditions,
    compare_models,
    friedman,
    paired_block,
)
from lesionres.analysis.crossing import margin_crossing
from lesionres.analysis.demo import synthetic_results
from lesionres.analysis.describe import coverage_notes, stratify, summarize
from lesionres.analysis.figures import (
    plot_distributions,
    plot_metric_bars,
    plot_stratified,
    plot_volume_agreement,
)
from lesionres.analysis.noninferiority import DEFAULT_MARGINS, compare_to_reference, parse_margins
from lesionres.analysis.overlays import find_prediction_examples, overlay_figure
from lesionres.analysis.pipeline import analyze
from lesionres.analysis.plotting import save_figure
from lesionres.analysis.rank_tests import adjust_pvalues, paired_test, unpaired_test
from lesionres.analysis.resolution_axis import resolution_table
from lesionres.analysis.resolution_curve import plot_resolution_curve
from lesionres.analysis.results_table import condition_order, failed_rows, load_results, scan_keys
from lesionres.analysis.tables import latex_table, markdown_table, write_table, write_tables
from lesionres.metrics import ANALYSED_METRICS as METRICS
from lesionres.metrics import better_direction
from lesionres.resolution import parse_resolution

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
