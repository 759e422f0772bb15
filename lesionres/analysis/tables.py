"""Write analysis tables as CSV (full precision), Markdown and LaTeX, atomically.

Markdown and LaTeX are formatted here rather than through ``DataFrame.to_markdown`` /
``to_latex``, which need the optional ``tabulate`` and ``jinja2`` packages: the package must
write its report wherever pandas is installed. Every file is written to a temporary file in
the target folder and renamed over the target, so an interrupted run never leaves a
half-written table that looks complete.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lesionres import files
from lesionres.files import atomic_write_text

__all__ = [
    "COMPARISON_SHORT",
    "format_p",
    "format_value",
    "markdown_table",
    "latex_table",
    "write_json",
    "write_table",
    "write_tables",
]

_P_COLUMNS = {
    "p_value", "p_adjusted", "p_noninferiority", "p_equivalence", "p_inferiority",
    "p_equivalence_adjusted", "p_inferiority_adjusted",
}  # fmt: skip
_INT_COLUMNS = {
    "n", "n_a", "n_b", "n_pairs", "n_dropped_nan", "n_dropped_failed", "n_zero_diff", "n_tied",
    "n_missing", "n_failed", "k", "n_dropped", "stratum_index",
}  # fmt: skip


def format_p(p: Any) -> str:
    """A p-value for reading: 3 significant digits, scientific below 0.001, ``<1e-16`` floor.

    Args:
        p: p-value (NaN gives an empty string).
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    p = float(p)
    if p < 1e-16:
        return "<1e-16"  # below double-precision resolution of 1 - cdf
    if p < 1e-3:
        return f"{p:.2e}"
    return f"{p:.3g}" if p < 0.1 else f"{p:.3f}"


def format_value(value: Any, column: str = "", digits: int = 4) -> str:
    """Format one cell: p-values by :func:`format_p`, counts as integers, floats to ``digits``.

    Args:
        value: the cell.
        column: its column name (chooses p-value and integer formatting).
        digits: significant digits for other floats.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if column in _P_COLUMNS:
        return format_p(value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if column in _INT_COLUMNS and isinstance(value, (int, float, np.integer, np.floating)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def _cells(df: pd.DataFrame, digits: int) -> list[list[str]]:
    return [
        [format_value(v, str(c), digits) for c, v in zip(df.columns, row, strict=True)]
        for row in df.itertuples(index=False, name=None)
    ]


def _is_number_column(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def markdown_table(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned), without ``tabulate``.

    Args:
        df: the table (its index is not written).
        digits: significant digits for floats.
    """

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = [esc(str(c)) for c in df.columns]
    body = [[esc(c) for c in row] for row in _cells(df, digits)]
    numeric = [_is_number_column(df[c]) for c in df.columns]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if num else c.ljust(w)
                for c, w, num in zip(cells, widths, numeric, strict=True)
            )
            + " |"
        )

    rule = "|".join(
        ("-" * (w + 1) + ":") if num else ("-" * (w + 2))
        for w, num in zip(widths, numeric, strict=True)
    )
    rule = f"|{rule}|"
    return "\n".join([line(header), rule, *(line(r) for r in body)]) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def latex_table(df: pd.DataFrame, caption: str = "", label: str = "", digits: int = 4) -> str:
    """A ``booktabs`` LaTeX table (``\\usepackage{booktabs}``), without ``jinja2``.

    Args:
        df: the table (its index is not written).
        caption: table caption (escaped).
        label: ``\\label`` key (used verbatim).
        digits: significant digits for floats.
    """
    align = "".join("r" if _is_number_column(df[c]) else "l" for c in df.columns)
    lines = ["\\begin{table}[htbp]", "\\centering", "\\small"]
    if caption:
        lines.append(f"\\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{align}}}", "\\toprule"]
    lines.append(" & ".join(_latex_escape(str(c)) for c in df.columns) + " \\\\")
    lines.append("\\midrule")
    for row in _cells(df, digits):
        lines.append(" & ".join(_latex_escape(c) for c in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    df: pd.DataFrame,
    out_dir: str | Path,
    stem: str,
    *,
    caption: str = "",
    columns: Sequence[str] | None = None,
    formats: Iterable[str] = ("csv", "md", "tex"),
    digits: int = 4,
) -> list[Path]:
    """Write one table as ``stem.csv`` (all columns, full precision) plus ``.md`` and ``.tex``.

    Args:
        df: the table.
        out_dir: target folder.
        stem: file name without extension.
        caption: LaTeX caption.
        columns: columns for the Markdown / LaTeX versions (default: all); the CSV keeps all.
        formats: any of ``"csv"``, ``"md"``, ``"tex"``.
        digits: significant digits in Markdown / LaTeX.

    Returns:
        The files written.
    """
    out_dir = Path(out_dir)
    short = df if columns is None else df[[c for c in columns if c in df.columns]]
    written = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        if fmt == "csv":
            text = df.to_csv(index=False, lineterminator="\n")
        elif fmt == "md":
            text = markdown_table(short, digits)
        elif fmt == "tex":
            text = latex_table(short, caption=caption, label=f"tab:{stem}", digits=digits)
        else:
            raise ValueError(f"unknown table format {fmt!r}")
        written.append(atomic_write_text(path, text))
    return written


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return None if math.isnan(v) or math.isinf(v) else v  # JSON has no NaN
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN and inf become ``null``), atomically.

    Args:
        path: target file.
        obj: dicts, lists, numbers (numpy scalars accepted), strings.
    """
    return files.write_json(path, _jsonable(obj))


#: Columns shown in the Markdown / LaTeX comparisons table (the CSV has all).
COMPARISON_SHORT = (
    "model", "condition", "model_a", "model_b", "condition_a", "condition_b", "test", "n",
    "mean_a", "mean_b", "mean_diff", "median_diff", "ci_low", "ci_high", "statistic",
    "p_value", "p_adjusted", "effect_size", "significant",
)  # fmt: skip


def write_tables(
    out_dir: str | Path,
    *,
    summary: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
    stratified: pd.DataFrame | None = None,
    friedman: pd.DataFrame | None = None,
    model_comparisons: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the analysis tables that are given (CSV + Markdown + LaTeX; Friedman also JSON).

    Args:
        out_dir: target folder.
        summary: :func:`lesionres.analysis.summarize` output -> ``summary.*``.
        comparisons: :func:`lesionres.analysis.compare_conditions` -> ``comparisons.*``.
        stratified: :func:`lesionres.analysis.stratify` output(s) -> ``stratified.*``.
        friedman: one row per Friedman test -> ``friedman.*`` and ``friedman.json``.
        model_comparisons: :func:`lesionres.analysis.compare_models` -> ``model_comparisons.*``.

    Returns:
        The files written.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    if summary is not None:
        written += write_table(
            summary, out_dir, "summary", caption="Per-condition summary of each metric"
        )
    if comparisons is not None:
        written += write_table(
            comparisons, out_dir, "comparisons", columns=COMPARISON_SHORT,
            caption="Pairwise comparisons of conditions (two-sided; adjusted p-values)",
        )  # fmt: skip
    if stratified is not None:
        written += write_table(
            stratified, out_dir, "stratified", caption="Metric per ground-truth stratum"
        )
    if friedman is not None:
        written += write_table(friedman, out_dir, "friedman", caption="Friedman omnibus test")
        written.append(write_json(out_dir / "friedman.json", friedman.to_dict(orient="records")))
    if model_comparisons is not None:
        written += write_table(
            model_comparisons, out_dir, "model_comparisons", columns=COMPARISON_SHORT,
            caption="Pairwise comparisons of models within each condition",
        )  # fmt: skip
    return written
