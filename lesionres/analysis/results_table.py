"""Reading the per-scan results table and finding rows in it.

``load_results`` reads ``results.csv`` with its identifier columns as text; the helpers name a
row's scan (``dataset/subject_id``), its failure (a non-empty ``error``), the order of the
conditions, and one condition's rows as a block keyed by scan (refusing a scan twice). Every
statistic, figure and report reads the table through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lesionres.errors import LesionresError

__all__ = [
    "Match",
    "UNNAMED_MODEL",
    "condition_order",
    "failed_rows",
    "harmonise_labels",
    "load_results",
    "scan_keys",
]


_TEXT_COLUMNS = (
    "subject_id", "dataset", "cohort", "modality", "space", "condition", "method", "factor",
    "spacing_mm", "effective_fwhm_mm", "model", "image_path", "mask_path", "error",
)  # fmt: skip


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


Match = Literal["strict", "subject", "dataset"]


def _require(df: pd.DataFrame, columns: Sequence[str], what: str = "results table") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise LesionresError(
            f"{what}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, df.columns))}"
        )


def _text(column: pd.Series) -> pd.Series:
    """A label column as plain strings, missing cells as ``""`` (pandas 2 and 3 alike).

    pandas 3 reads an empty CSV cell of a string column as a missing value that ``astype(str)``
    keeps missing, where pandas 2 gave ``"nan"``.
    """
    return column.astype(object).where(column.notna(), "").astype(str)


def _has_models(df: pd.DataFrame) -> bool:
    return "model" in df.columns and bool((_text(df["model"]) != "").any())


UNNAMED_MODEL = "(unnamed)"


def harmonise_labels(df: pd.DataFrame, match: Match = "strict") -> pd.DataFrame:
    """Labels ready for matching: dataset and model as text, one dataset label per scan.

    Scans are matched on ``dataset`` + ``subject_id``. The same scans under two dataset labels
    (e.g. ``test`` rows labelled ``atlas`` and rows of another tool scored without
    ``--dataset``) would look like two cohorts and be compared unpaired, so they are refused
    unless ``match`` says how to read them.

    Args:
        df: results table.
        match: ``"strict"`` (refuse a subject id under two dataset labels), ``"subject"`` (it
            is one scan: its rows get one label, the labels joined by ``+``) or ``"dataset"``
            (different scans whose ids collide: keep the labels).

    Returns:
        A copy with ``dataset`` (and ``model``) as text; rows without a model name in a table
        with named models are called ``(unnamed)`` instead of being dropped.

    Raises:
        LesionresError: under ``"strict"``, subject ids that carry two dataset labels.
    """
    if match not in ("strict", "subject", "dataset"):
        raise LesionresError(f"match: expected strict, subject or dataset, got {match!r}")
    df = df.copy()
    model = _text(df["model"]) if "model" in df.columns else None
    if model is not None and (model != "").any():
        df["model"] = model.where(model != "", UNNAMED_MODEL)
    if "dataset" not in df.columns:
        return df
    df["dataset"] = _text(df["dataset"])
    subject = _text(df["subject_id"])
    labels = df.groupby(subject)["dataset"].agg(lambda s: tuple(sorted(set(s))))
    twice = labels[labels.map(len) > 1]
    if twice.empty or match == "dataset":
        return df
    if match == "subject":
        joined = labels.map(lambda t: "+".join(x for x in t if x))
        df["dataset"] = subject.map(joined)
        return df
    kinds = sorted(set(twice))
    raise LesionresError(
        f"{len(twice)} subject id(s) appear under two dataset labels "
        f"({', '.join(' vs '.join(repr(x) for x in k) for k in kinds[:3])}; e.g. "
        f"{twice.index[0]}): the same scans labelled twice would be compared as two cohorts "
        "(unpaired). If they are the same scans, pass --match subject (or rescore with "
        "`score --dataset ...`); if they are different scans whose ids collide, --match dataset"
    )


def failed_rows(df: pd.DataFrame) -> pd.Series:
    """Boolean mask of failed rows: those whose ``error`` column is non-empty.

    Args:
        df: results table (a table without an ``error`` column has no failed rows).

    Returns:
        A boolean Series aligned with ``df``.
    """
    if "error" not in df.columns:
        return pd.Series(False, index=df.index)
    err = df["error"]
    return err.notna() & (err.astype(str).str.strip() != "")


def scan_keys(df: pd.DataFrame) -> pd.Series:
    """The identity of each row's scan: ``dataset/subject_id``, or ``subject_id`` alone.

    Matching on the dataset too keeps two cohorts apart even if their subject ids collide
    (``sub-001`` exists in many datasets).

    Args:
        df: results table with ``subject_id`` (and optionally ``dataset``).

    Returns:
        A string Series aligned with ``df``.
    """
    _require(df, ["subject_id"])
    sid = _text(df["subject_id"])
    if "dataset" in df.columns:
        dataset = _text(df["dataset"])
        if (dataset != "").any():
            return dataset + "/" + sid
    return sid


def condition_order(df: pd.DataFrame) -> list[str]:
    """Conditions in order of first appearance in the table (the order the run wrote them).

    Args:
        df: results table with a ``condition`` column.
    """
    _require(df, ["condition"])
    return [str(c) for c in pd.unique(df["condition"].astype(str))]


def _select_conditions(df: pd.DataFrame, conditions: Sequence[str] | None) -> list[str]:
    order = condition_order(df)
    if conditions is None:
        return order
    conditions = [str(c) for c in conditions]
    unknown = [c for c in conditions if c not in order]
    if unknown:
        raise LesionresError(
            f"conditions: unknown {', '.join(unknown)}; the table has {', '.join(order)}"
        )
    return conditions


def _values(df: pd.DataFrame, metric: str) -> pd.Series:
    """Metric as float with non-finite values (NaN, inf) and failed rows set to NaN."""
    v = pd.to_numeric(df[metric], errors="coerce").astype(float)
    v[~np.isfinite(v.to_numpy())] = np.nan
    return v


def _block(df: pd.DataFrame, metric: str, condition: str, where: str = "") -> pd.DataFrame:
    """One condition's rows as ``key -> (value, failed, dataset)``, refusing duplicate scans."""
    rows = df[df["condition"].astype(str) == condition]
    keys = scan_keys(rows)
    dup = keys[keys.duplicated(keep=False)]
    if len(dup):
        hint = ""
        for col in ("threshold", "model"):
            if col in rows.columns and rows[col].nunique(dropna=True) > 1:
                hint = f" (the table holds several values of '{col}': filter to one first)"
        raise LesionresError(
            f"condition '{condition}'{where}: {dup.nunique()} scan(s) appear more than once, e.g. "
            f"{', '.join(dup.unique()[:3])}{hint}; each scan must have one row per condition"
        )
    failed = failed_rows(rows).to_numpy()
    value = _values(rows, metric).to_numpy().copy()
    value[failed] = np.nan
    if "dataset" in rows.columns:
        dataset = _text(rows["dataset"])
    else:
        dataset = pd.Series("", index=rows.index)
    return pd.DataFrame(
        {"value": value, "failed": failed, "dataset": dataset.to_numpy()},
        index=pd.Index(keys.to_numpy(), name="scan"),
    )


def _datasets(block: pd.DataFrame) -> str:
    names = sorted({d for d in block["dataset"] if d})
    return ";".join(names)
