"""The report's section on margins: verdicts, crossing resolution, sample sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis.conventions import VERDICT_MEANING
from lesionres.analysis.sample_size import SAMPLE_SIZE_GRID

__all__ = [
    "report_lines",
]


def _scans(n: float) -> str:
    return f"{int(n)}" if np.isfinite(n) else f"> {SAMPLE_SIZE_GRID[-1]}"


def _view(table: pd.DataFrame, labels: Mapping[str, str], fmt: Any, fmt_p: Any) -> pd.DataFrame:
    """The non-inferiority table as the report shows it (the CSV keeps every column)."""
    out = pd.DataFrame({"model": table["model"]}) if "model" in table.columns else pd.DataFrame()
    out["metric"] = [labels.get(m, m) for m in table["metric"]]
    out["condition"] = table["condition"].to_numpy()
    out["n"] = table["n"].to_numpy()
    level = f"{100 * float(table['ci_level'].iloc[0]):g}%"
    out[f"Hodges-Lehmann [{level} CI]"] = [
        f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]"
        for e, lo, hi in zip(table["estimate"], table["ci_low"], table["ci_high"], strict=True)
    ]
    out["limit"] = [f"{'-' if d == 'higher' else '+'}{fmt(m)}"
                     for d, m in zip(table["direction"], table["margin"], strict=True)]  # fmt: skip
    out["p non-inf."] = table["p_noninferiority"].map(fmt_p).to_numpy()
    out["p TOST"] = table["p_equivalence"].map(fmt_p).to_numpy()
    out["p adj. (non-inf.)"] = table["p_adjusted"].map(fmt_p).to_numpy()
    out["verdict"] = [f"**{v}**" for v in table["verdict"]]
    out["power now (non-inf.)"] = [f"{p:.0%}" if np.isfinite(p) else ""
                                   for p in table["power_noninferiority"]]  # fmt: skip
    out["scans for 80%: non-inf. / difference"] = [
        f"{_scans(a)} / {_scans(b)}"
        for a, b in zip(table["n_for_noninferiority"], table["n_for_difference"], strict=True)
    ]
    return out


def report_lines(
    table: pd.DataFrame,
    crossing: pd.DataFrame,
    *,
    margins: Mapping[str, float],
    defaulted: bool,
    reference: str | None,
    alpha: float,
    correction: str,
    labels: Mapping[str, str],
    fmt: Any,
    fmt_p: Any,
    markdown: Any,
) -> list[str]:
    """The report's section on margins: verdicts, crossing resolution, sample sizes.

    Args:
        table: :func:`compare_to_reference` output.
        crossing: :func:`margin_crossing` output.
        margins: the margins used.
        defaulted: the margins are :data:`DEFAULT_MARGINS` (nobody chose them).
        reference: the reference condition (None: none found).
        alpha: level of each one-sided test.
        correction: ``"holm"`` or ``"fdr_bh"``.
        labels: display names of the metrics.
        fmt: number formatter; fmt_p: p-value formatter; markdown: DataFrame -> Markdown.

    Returns:
        Markdown lines.
    """
    title = f"against `{reference}`" if reference else "against a reference"
    out = [f"## Good enough? Non-inferiority and equivalence {title}\n"]
    if not margins:
        return out + ["Not run: no margin (`--margin none`).\n"]
    if reference is None:
        return out + [
            "Not run: the table has no `original` condition; name the reference with "
            "`--reference CONDITION`.\n"
        ]
    shown = ", ".join(f"{labels.get(m, m)} {v:g}" for m, v in margins.items())
    how = (
        " (the default; choose your own with `--margin METRIC=VALUE`: README, *Choosing a margin*)"
        if defaulted
        else ""
    )
    out.append(
        f"Margins: **{shown}**{how}, in the metric's units. Each condition is compared with "
        f"`{reference}` on the same scans; the estimate is condition - {reference} (for an "
        "error metric, + is worse). Full table with every p-value: `noninferiority.csv`.\n"
    )
    out.append(VERDICT_MEANING.format(alpha=alpha, correction=correction))
    if table.empty:
        out.append("No condition holds the reference's scans: nothing to test.\n")
    else:
        out.append(markdown(_view(table, labels, fmt, fmt_p)))
        out += _reading_lines(table, alpha, fmt_p)
    not_paired = table.attrs.get("not_paired", [])
    if not_paired:
        names = ", ".join(f"`{c}`" for c in not_paired)
        out.append(
            f"{names}: other scans (another cohort), so no paired test against `{reference}`; "
            "an unpaired margin test would mix the cohort shift with resolution.\n"
        )
    out += _crossing_lines(crossing, fmt)
    return out


def _reading_lines(table: pd.DataFrame, alpha: float, fmt_p: Any) -> list[str]:
    """Notes that change how a row reads, and what would settle the inconclusive rows."""
    lines = []
    for r in table.to_dict(orient="records"):
        who = f"{r['model']}, " if "model" in r else ""
        said = [r["note"]] if r["note"] else []
        if r["verdict"] == "inconclusive" and r["n"]:
            need, worse = r["n_for_noninferiority"], r["n_for_inferiority"]
            head = f"inconclusive with {r['n']} scans"
            alike = "if the per-scan differences look like these"
            raw = {"non-inferior": r["p_noninferiority"], "inferior": r["p_inferiority"]}
            shown = [(claim, p) for claim, p in raw.items() if p < alpha]
            if shown:  # it is the correction, not the sample, that leaves the row open
                claim, p = shown[0]
                said.append(
                    f"{head}: {claim} at alpha before the correction (one-sided p = "
                    f"{fmt_p(p)}), not after it over {len(table)} rows; more scans, or fewer "
                    "comparisons (fewer conditions, models or metrics with a margin) would "
                    "settle it"
                )
            elif np.isfinite(need):
                said.append(
                    f"{head} (power to show non-inferiority now about "
                    f"{r['power_noninferiority']:.0%}); about {int(need)} scans would give 80% "
                    f"{alike}"
                )
            elif np.isfinite(worse):
                said.append(
                    f"{head}; the estimate lies beyond the margin: about {int(worse)} scans "
                    f"would show it inferior (80% power) {alike}"
                )
            else:
                said.append(
                    f"{head}; the estimate sits on the margin: even {SAMPLE_SIZE_GRID[-1]} scans "
                    f"would settle neither non-inferiority nor inferiority {alike}"
                )
        if said:
            lines.append(f"- {who}`{r['condition']}` ({r['metric']}): {'; '.join(said)}.")
    return ["Rows to read with care:\n", *lines, ""] if lines else []


def _crossing_lines(crossing: pd.DataFrame, fmt: Any) -> list[str]:
    if crossing.empty:
        return ["No resolution curve (no method run at a known voxel size): no crossing point.\n"]
    level = f"{100 * float(crossing['ci_level'].iloc[0]):g}%"
    out = [
        f"Resolution at which the margin is crossed, per method: the largest voxel size still "
        "non-inferior (it and every finer level), and where the curve of means crosses the "
        f"margin (linear between tested resolutions; {level} bootstrap interval over scans). "
        "The resolution figure shades the reference mean ± margin. Table: `crossing.csv`.\n"
    ]
    for r in crossing.to_dict(orient="records"):
        who = f"{r['model']}, " if "model" in r else ""
        finest = str(r["levels"]).split(";")[0].split("=")[0]
        largest = (
            f"non-inferior up to **{r['largest_noninferior']}** "
            f"({fmt(r['largest_noninferior_mm'])} mm)"
            if r["largest_noninferior"]
            else f"**not shown non-inferior even at its finest level** (`{finest}`)"
        )
        lo, hi = (
            f"{fmt(v)} mm" if np.isfinite(v) else "beyond the largest tested"
            for v in (r["crossing_low"], r["crossing_high"])
        )
        interval = f"[{lo}, {hi}]" if lo != hi else f"({lo} in every resample)"
        if np.isfinite(r["crossing_mm"]):
            cross = f"the curve crosses the margin at {fmt(r['crossing_mm'])} mm {interval}"
        else:
            cross = f"the curve stays within the margin up to the largest tested level {interval}"
        out.append(
            f"- {who}**{r['method']}** ({r['metric']}, margin {fmt(r['margin'])}; x: "
            f"{r['x_axis']}): {largest}; {cross}."
        )
    return out + [""]
