"""What every figure shares: saving, the palette, one model at a time, axes helpers.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): saving uses
the Agg canvas, nothing touches the global backend, so importing the analysis inside Jupyter
keeps the inline backend and a headless server needs no display. Every ``plot_*`` function
returns the figure and, given ``out`` (a path without extension), writes ``out.png`` (150 dpi)
and ``out.pdf`` atomically.

Each condition keeps one colour in every figure (the order of first appearance in the results
table); conditions on another cohort are hatched, because they are not paired with the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lesionres.analysis.compare import paired_block
from lesionres.analysis.results_table import failed_rows
from lesionres.errors import LesionresError
from lesionres.files import atomic_path

__all__ = [
    "condition_colors",
    "save_figure",
]


_PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
    "#999999", "#882255", "#44AA99", "#117733",
)  # Okabe-Ito without black first (colour-blind safe), then Tol's muted  # fmt: skip


_GT_COLOUR = "#00E5FF"


_PRED_COLOUR = "#FF2BD6"


def save_figure(fig: Figure, out: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``out.png`` and ``out.pdf`` (temporary file + rename each).

    Args:
        fig: the figure.
        out: target path; a ``.png`` / ``.pdf`` suffix is dropped.
        dpi: resolution of the PNG.

    Returns:
        The two paths.
    """
    out = Path(out)
    if out.suffix.lower() in (".png", ".pdf"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in ("png", "pdf"):
        target = out.parent / f"{out.name}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        written.append(target)
    return written


def _finish(fig: Figure, out: str | Path | None) -> Figure:
    if out is not None:
        save_figure(fig, out)
    return fig


def condition_colors(conditions: Sequence[str]) -> dict[str, str]:
    """One colour per condition, in the given order (colour-blind-safe palette first)."""
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(conditions)}


def _one_model(df: pd.DataFrame, model: str | None) -> tuple[pd.DataFrame, str]:
    """Restrict to one model; refuse silently pooling several."""
    if "model" not in df.columns or not df["model"].notna().any():
        return df, ""
    models = [str(m) for m in pd.unique(df["model"].dropna().astype(str))]
    if model is None:
        if len(models) > 1:
            raise LesionresError(
                f"the table holds models {', '.join(models)}: pass model= to plot one"
            )
        model = models[0]
    return df[df["model"].astype(str) == model], f" — model {model}"


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    return df[~failed_rows(df)]


def _other_cohort(df: pd.DataFrame, conditions: Sequence[str]) -> set[str]:
    """Conditions outside the main paired block (different scans: another cohort)."""
    block = set(paired_block(df, conditions)) if conditions else set()
    return {c for c in conditions if c not in block}


def _rotate(ax: Any, labels: Sequence[str], rotation: int = 30) -> None:
    ax.set_xticks(range(len(labels)))
    ha = "right" if rotation else "center"
    ax.set_xticklabels(labels, rotation=rotation, ha=ha, rotation_mode="anchor")


def _mark_partial_mean(ax: Any, x: float, y: float, n: int, scans: int) -> None:
    """Write ``n=7/9`` above a mean over fewer than the condition's scored scans.

    A metric undefined on a scan (HD95 of an empty prediction) drops that scan, often one of
    the worst, from the mean: the figure must not show it as a mean over every scan.
    """
    if 0 < n < scans and np.isfinite(y):
        ax.annotate(
            f"n={n}/{scans}", (x, y), xytext=(0, 2), textcoords="offset points", ha="center",
            va="bottom", fontsize=6, rotation=90,
        )  # fmt: skip


def _legend_outside(ax: Any, **kwargs: Any) -> None:
    """Legend to the right of the axes, so it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kwargs)
