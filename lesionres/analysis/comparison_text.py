"""The report's sections on pairwise comparisons of conditions and of models.

Verdicts ("X higher than Y") take their direction from the test (the rank-biserial r and the
Hodges-Lehmann estimate), never from the mean; a mean that disagrees is said so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lesionres.analysis.bootstrap import bootstrap_mean_ci
from lesionres.analysis.context import AnalysisOptions
from lesionres.analysis.results_table import condition_order, failed_rows
from lesionres.analysis.sample_size import SAMPLE_SIZE_GRID
from lesionres.analysis.tables import format_p, format_value, markdown_table

__all__ = [
    "comparison_section",
    "model_section",
]


def _fmt(v: Any, digits: int = 3) -> str:
    return format_value(v, "", digits)


def _p_phrase(p: float) -> str:
    """``= 0.012`` or ``< 1e-16``, for running text."""
    text = format_p(p)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


_KEY_NOTES = "all differences zero|all values equal|no two-sided p|partial overlap|no test"


def _comparison_view(comp: pd.DataFrame, lead: Sequence[str]) -> pd.DataFrame:
    """The comparisons as a reader wants them in the report (the CSV keeps every column)."""
    names = {
        "Wilcoxon signed-rank": "Wilcoxon (paired)",
        "Mann-Whitney U": "Mann-Whitney (unpaired)",
    }
    paired = comp["design"] == "paired"
    out = pd.DataFrame({c: comp[c] for c in lead})
    out["test"] = comp["test"].map(names)
    out["n"] = [
        f"{int(n)}" if p else f"{int(na)}+{int(nb)}"
        for n, na, nb, p in zip(comp["n"], comp["n_a"], comp["n_b"], paired, strict=True)
    ]
    out["mean a / b"] = [
        f"{_fmt(a)} / {_fmt(b)}" for a, b in zip(comp["mean_a"], comp["mean_b"], strict=True)
    ]
    out["Hodges-Lehmann [95% CI]"] = [
        f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
        for m, lo, hi in zip(comp["median_diff"], comp["ci_low"], comp["ci_high"], strict=True)
    ]
    out["statistic"] = [
        f"{'W' if p else 'U'}={_fmt(s, 6)}" for s, p in zip(comp["statistic"], paired, strict=True)
    ]
    out["p"] = comp["p_value"].map(format_p)
    out["p adj."] = comp["p_adjusted"].map(format_p)
    out["r (rank-biserial)"] = comp["effect_size"].map(lambda v: _fmt(v, 3))
    out["sig."] = comp["significant"].map(lambda s: "yes" if s else "no")
    if "n_for_80_power" in comp.columns:  # paired rows: resampled from their differences
        most = SAMPLE_SIZE_GRID[-1]
        out["scans for 80% power"] = [
            "" if d != "paired" else (f"{int(n)}" if np.isfinite(n) else f"> {most}")
            for d, n in zip(comp["design"], comp["n_for_80_power"], strict=True)
        ]
    return out


_FAMILY = {
    "all": "every pair of conditions; `--pairs reference` tests each against the reference only",
    "reference": "each condition against `{ref}`; `--pairs all` tests every pair",
}


def comparison_section(comp: pd.DataFrame, opts: AnalysisOptions) -> list[str]:
    out = [f"## Pairwise comparisons of conditions ({opts.metric})\n"]
    if comp.empty:
        return out + ["Fewer than two conditions: no comparison.\n"]
    lead = (["model"] if "model" in comp.columns else []) + ["condition_a", "condition_b"]
    out.append(
        f"{len(comp)} comparisons ({_FAMILY[opts.pairs].format(ref=opts.reference)}), one "
        f"family; `p adj.` = {opts.correction}-adjusted; `sig.` = "
        f"p adj. < {opts.alpha}. Difference and r: a minus b, positive = a higher. `scans for "
        "80% power`: how many scans would detect the observed difference (two-sided, at alpha "
        "before the correction), from resampling the per-scan differences. Full table with "
        "every count: `comparisons.csv`.\n"
    )
    out.append(markdown_table(_comparison_view(comp, lead)))
    out.append(
        "Means, medians and n of a paired row are over the scans that enter that test (both "
        "values present), so they can differ slightly between rows.\n"
    )
    # the report lists only the notes that change how a row reads (the CSV keeps every note),
    # and the significant rows whose mean points against the test
    care = []
    for _, r in comp.iterrows():
        who = f"{r['model']}: " if "model" in comp.columns else ""
        pair = f"- {who}`{r['condition_a']}` vs `{r['condition_b']}`: "
        if re.search(_KEY_NOTES, "" if pd.isna(r["note"]) else str(r["note"])):
            care.append(f"{pair}{r['note']}.")
        caveat = _mean_caveat(r, r["condition_a"], r["condition_b"]) if r["significant"] else ""
        if caveat:
            higher = r["condition_a"] if _direction(r) > 0 else r["condition_b"]
            care.append(f"{pair}the test finds `{higher}` higher{caveat}.")
    if care:
        out += ["Rows to read with care:\n", *care, ""]
    counts = []
    if (comp["n_dropped_failed"] > 0).any():
        k = int((comp["n_dropped_failed"] > 0).sum())
        counts.append(f"{k} comparison(s) lost scans to failed rows (`n_dropped_failed`)")
    if (comp["n_dropped_nan"] > 0).any():
        k = int((comp["n_dropped_nan"] > 0).sum())
        counts.append(f"{k} dropped missing {opts.metric} values (`n_dropped_nan`)")
    if (comp["n_zero_diff"] > 0).any():
        k = int((comp["n_zero_diff"] > 0).sum())
        counts.append(
            f"{k} paired comparison(s) had zero differences (`n_zero_diff`; '{opts.zero_method}')"
        )
    if (comp["n_tied"] > 0).any():
        k = int((comp["n_tied"] > 0).sum())
        counts.append(f"{k} had tied values (average ranks; `n_tied`)")
    if counts:
        text = "; ".join(counts)
        out.append(f"{text[0].upper()}{text[1:]}. Counts and notes per row: `comparisons.csv`.\n")
    return out


def _model_means(df: pd.DataFrame, opts: AnalysisOptions) -> pd.DataFrame:
    """Condition rows x model columns of 'mean [95% bootstrap CI] (n)'.

    ``(n)`` is the number of scans the mean is over; ``(7 of 9)`` when the metric is undefined
    (or not finite) on some of the scored scans.
    """
    ok = df[~failed_rows(df)]
    rows = []
    for cond in condition_order(df):
        row = {"condition": cond}
        here = ok[ok["condition"] == cond]
        for model, block in here.groupby(here["model"].astype(str), sort=False):
            values = pd.to_numeric(block[opts.metric], errors="coerce").to_numpy(dtype=float)
            values = values[np.isfinite(values)]  # an inf (MONAI's HD95) is undefined too
            lo, hi = bootstrap_mean_ci(values, opts.n_boot, opts.seed)
            mean = values.mean() if values.size else np.nan
            n = f"{values.size}" + (f" of {len(block)}" if values.size < len(block) else "")
            row[model] = f"{_fmt(mean)} [{_fmt(lo)}, {_fmt(hi)}] ({n})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _direction(r: pd.Series) -> float:
    """+1 if the test finds a higher, -1 if b: the sign of r (W+ vs W-), else of the estimate."""
    return float(np.sign(r["effect_size"]) or np.sign(r["median_diff"]))


def _mean_caveat(r: pd.Series, a: str, b: str) -> str:
    """``; the mean difference points the other way ...`` when the mean contradicts the test.

    A few scans where the test's winner fails badly can pull the mean the other way (a mean
    is not what a rank test is about); the verdict stays the test's, the reader is told.
    """
    direction, mean_diff = _direction(r), r["mean_diff"]
    if not (np.isfinite(mean_diff) and mean_diff != 0 and np.sign(mean_diff) == -direction):
        return ""
    winner = a if direction > 0 else b
    return (
        f"; the mean difference points the other way ({a} - {b} = {mean_diff:+.3g}): "
        f"a few scans where {winner} is far lower outweigh the rest"
    )


def _adjusted_p_name(opts: AnalysisOptions) -> str:
    return "Holm p" if opts.correction == "holm" else "BH-adjusted p"


def _model_finding(r: pd.Series, opts: AnalysisOptions) -> str:
    """One sentence per (condition, model pair): which model the test finds higher, if any.

    The direction is the test's own (the rank-biserial r and the Hodges-Lehmann estimate),
    never the mean's; a mean that disagrees is reported as such.
    """
    a, b = r["model_a"], r["model_b"]
    where = f"`{r['condition']}`"
    if not np.isfinite(r["p_adjusted"]):
        return f"- {where}: {a} vs {b} not tested ({r['note'] or 'no pairs'})."
    detail = (
        f"Hodges-Lehmann {a} - {b} = {_fmt(r['median_diff'])} "
        f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}], r = {_fmt(r['effect_size'])}, "
        f"{_adjusted_p_name(opts)} {_p_phrase(r['p_adjusted'])}; "
        f"means {_fmt(r['mean_a'])} vs {_fmt(r['mean_b'])}"
    )
    if not r["significant"]:
        return f"- {where}: no significant difference between {a} and {b} ({detail})."
    higher, lower = (a, b) if _direction(r) > 0 else (b, a)
    return (
        f"- {where}: **{higher} higher than {lower}** by {_fmt(abs(r['median_diff']))} "
        f"({detail}){_mean_caveat(r, a, b)}."
    )


def model_section(
    df: pd.DataFrame, mc: pd.DataFrame, figures: list[tuple[str, str]], opts: AnalysisOptions
) -> list[str]:
    out = [f"## Models compared within each condition ({opts.metric})\n"]
    out.append(
        f"Mean {opts.metric} per model [95% bootstrap CI of the mean] (scans it is over, "
        "'of' the scored scans when the metric is undefined on some); failed rows excluded.\n"
    )
    out.append(markdown_table(_model_means(df, opts)))
    out.append(
        f"Paired Wilcoxon on the same scans, {opts.correction}-corrected over all "
        f"{len(mc)} rows (one family); difference = model a minus model b. Full table: "
        "`model_comparisons.csv`.\n"
    )
    out.append(markdown_table(_comparison_view(mc, ["condition", "model_a", "model_b"])))
    out.append("What this shows:\n")
    out.extend(_model_finding(r, opts) for _, r in mc.iterrows())
    curve_title = f"{opts.metric} against resolution"
    curves = [path for title, path in figures if title == curve_title]
    if curves:
        out.append(f"\n![{curve_title}, one curve per model]({curves[0]})")
    out.append("")
    return out
