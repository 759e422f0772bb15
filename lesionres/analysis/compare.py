"""Comparisons of conditions (and of models) over a results table, one corrected family.

For each pair the design is read from the scan sets (:mod:`lesionres.analysis.rank_tests`):
the same scans are paired (Wilcoxon signed-rank), disjoint scan sets are another cohort
(Mann-Whitney U), and a partial overlap is refused unless ``partial="intersect"``. Every
table of comparisons is one family for the Holm (or Benjamini-Hochberg) correction. The
omnibus Friedman test covers the largest group of conditions on the same scans.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from lesionres.analysis.rank_tests import (
    _CORRECTIONS,
    Correction,
    ZeroMethod,
    _check_zero_method,
    adjust_pvalues,
    paired_test,
    unpaired_test,
)
from lesionres.analysis.results_table import (
    Match,
    _block,
    _datasets,
    _has_models,
    _require,
    _select_conditions,
    condition_order,
    harmonise_labels,
    scan_keys,
)
from lesionres.errors import LesionresError

__all__ = [
    "COMPARISON_COLUMNS",
    "Partial",
    "compare_conditions",
    "compare_models",
    "friedman",
    "paired_block",
]


#: Columns of :func:`compare_conditions` (``model`` first when the table has one).
COMPARISON_COLUMNS: tuple[str, ...] = (
    "metric",
    "condition_a",
    "condition_b",
    "design",
    "test",
    "n",
    "n_a",
    "n_b",
    "n_pairs",
    "n_dropped_nan",
    "n_dropped_failed",
    "n_zero_diff",
    "n_tied",
    "zero_method",
    "mean_a",
    "mean_b",
    "mean_diff",
    "median_a",
    "median_b",
    "median_diff",
    "median_diff_method",
    "median_of_diffs",
    "ci_low",
    "ci_high",
    "statistic",
    "statistic_name",
    "p_value",
    "p_method",
    "p_adjusted",
    "correction",
    "effect_size",
    "effect_size_name",
    "significant",
    "dataset_a",
    "dataset_b",
    "cohort_shift",
    "note",
)


Partial = Literal["error", "intersect"]


_PARTIALS = ("error", "intersect")


def _compare_blocks(
    ba: pd.DataFrame,
    bb: pd.DataFrame,
    name_a: str,
    name_b: str,
    *,
    zero_method: str,
    partial: str,
    n_boot: int,
    seed: int,
    where: str = "",
) -> dict[str, Any]:
    """Test one pair of condition blocks, choosing the design from their scan sets."""
    ka, kb = set(ba.index), set(bb.index)
    shared = ka & kb
    notes: list[str] = []
    if ka == kb or (shared and partial == "intersect"):
        if ka != kb:
            notes.append(
                f"partial overlap: paired on the {len(shared)} shared scans; "
                f"{len(ka - kb)} only in {name_a} and {len(kb - ka)} only in {name_b} left out"
            )
            keep = sorted(shared)
            ba, bb = ba.loc[keep], bb.loc[keep]
        bb = bb.reindex(ba.index)
        failed = ba["failed"].to_numpy() | bb["failed"].to_numpy()
        missing = ~failed & (ba["value"].isna().to_numpy() | bb["value"].isna().to_numpy())
        res = paired_test(
            ba["value"][~failed],
            bb["value"][~failed],
            zero_method=zero_method,  # type: ignore[arg-type]
            n_boot=n_boot,
            seed=seed,
            name_a=name_a,
            name_b=name_b,
        )
        res["n_dropped_nan"] = int(missing.sum())
        res["n_dropped_failed"] = int(failed.sum())
    elif not shared:
        res = unpaired_test(
            ba["value"][~ba["failed"]].to_numpy(),
            bb["value"][~bb["failed"]].to_numpy(),
            n_boot=n_boot,
            seed=seed,
        )
        res["n_dropped_nan"] = int(
            (ba["value"].isna() & ~ba["failed"]).sum() + (bb["value"].isna() & ~bb["failed"]).sum()
        )
        res["n_dropped_failed"] = int(ba["failed"].sum() + bb["failed"].sum())
        notes.append("different scans (disjoint ids): independent samples")
    else:
        raise LesionresError(
            f"conditions '{name_a}' and '{name_b}'{where} share {len(shared)} of their "
            f"{len(ka)} / {len(kb)} scans ({len(ka - kb)} only in '{name_a}', e.g. "
            f"{sorted(ka - kb)[:3]}; {len(kb - ka)} only in '{name_b}', e.g. "
            f"{sorted(kb - ka)[:3]}): "
            "neither a paired nor an unpaired design. Pass partial='intersect' (CLI: --partial "
            "intersect) to pair on the shared scans, or fix the results table"
        )
    da, db = _datasets(ba), _datasets(bb)
    res.update(dataset_a=da, dataset_b=db, cohort_shift=bool(da and db and da != db))
    if res["cohort_shift"]:
        notes.append(
            f"datasets differ ({da} vs {db}): the difference mixes a cohort/modality shift "
            "with any resolution shift"
        )
    if res["n_dropped_failed"]:
        notes.append(f"{res['n_dropped_failed']} failed row(s) left out")
    if res["n_dropped_nan"]:
        notes.append(f"{res['n_dropped_nan']} missing (NaN/inf) value(s) dropped")
    res["note"] = "; ".join([n for n in [res.get("note", "")] + notes if n])
    return res


def _family_table(
    rows: list[dict[str, Any]], lead: list[str], correction: str, alpha: float
) -> pd.DataFrame:
    if correction not in _CORRECTIONS:
        raise LesionresError(
            f"correction: expected one of {', '.join(_CORRECTIONS)}, got {correction!r}"
        )
    if not 0 < alpha < 1:
        raise LesionresError(f"alpha: expected a number between 0 and 1, got {alpha}")
    cols = lead + [c for c in COMPARISON_COLUMNS if c not in lead]
    out = pd.DataFrame.from_records(rows)
    if out.empty:
        return pd.DataFrame(columns=cols)
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(), correction)  # type: ignore
    out["correction"] = f"{correction} over {int(out['p_value'].notna().sum())} tests"
    # NaN compares False: an untested row is not significant
    out["significant"] = out["p_adjusted"] < alpha
    return out.reindex(columns=cols)


def _check_common(n_boot: int, zero_method: str, partial: str) -> None:
    _check_zero_method(zero_method)
    if partial not in _PARTIALS:
        raise LesionresError(f"partial: expected one of {', '.join(_PARTIALS)}, got {partial!r}")
    if n_boot < 0:
        raise LesionresError(f"n_boot: expected a non-negative integer, got {n_boot}")


def compare_conditions(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    conditions: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: ZeroMethod = "wilcox",
    partial: Partial = "error",
    match: Match = "strict",
) -> pd.DataFrame:
    """Test every pair of conditions (per model), with one multiple-comparison correction.

    For each pair the design is read from the scan sets: identical -> paired Wilcoxon
    signed-rank; disjoint -> Mann-Whitney U; partial overlap -> error (or paired on the shared
    scans with ``partial="intersect"``). All rows returned form one family for the correction.

    Args:
        df: results table (``subject_id``, ``condition``, the metric; optional ``dataset``,
            ``model``, ``error``).
        metric: metric column to compare.
        conditions: conditions to include (default: all, in order of first appearance).
        pairs: explicit ``(condition_a, condition_b)`` pairs (planned comparisons; a smaller
            family gives more power) instead of every pair.
        correction: ``"holm"`` (default) or ``"fdr_bh"``.
        alpha: significance level applied to the adjusted p-values.
        n_boot: bootstrap resamples for the CI of ``median_diff``.
        seed: bootstrap seed (each comparison uses it afresh, so a pair's CI does not depend
            on which other pairs are in the table).
        zero_method: ``"wilcox"``, ``"pratt"`` or ``"zsplit"`` (see :func:`paired_test`).
        partial: ``"error"`` or ``"intersect"`` for pairs whose scan sets partly overlap.
        match: how scans under two dataset labels are read (see :func:`harmonise_labels`).

    Returns:
        One row per pair with :data:`COMPARISON_COLUMNS` (``model`` first if present).

    Raises:
        LesionresError: missing columns, unknown conditions, duplicate scans, partial overlap.
    """
    _require(df, ["subject_id", "condition", metric])
    _check_common(n_boot, zero_method, partial)
    df = harmonise_labels(df, match)
    conds = _select_conditions(df, conditions)
    if pairs is not None:
        pair_list = [(str(x), str(y)) for x, y in pairs]
        unknown = sorted({c for p in pair_list for c in p} - set(condition_order(df)))
        if unknown:
            raise LesionresError(f"pairs: unknown condition(s) {', '.join(unknown)}")
    else:
        pair_list = list(combinations(conds, 2))
    has_model = _has_models(df)
    groups = df.groupby("model", sort=False) if has_model else [(None, df)]
    rows: list[dict[str, Any]] = []
    for model, sub in groups:
        where = f" (model '{model}')" if has_model else ""
        present = set(condition_order(sub))
        blocks = {c: _block(sub, metric, c, where) for c in conds if c in present}
        for ca, cb in pair_list:
            if ca not in blocks or cb not in blocks:
                continue
            res = _compare_blocks(
                blocks[ca], blocks[cb], ca, cb,
                zero_method=zero_method, partial=partial, n_boot=n_boot, seed=seed, where=where,
            )  # fmt: skip
            res.update(metric=metric, condition_a=ca, condition_b=cb)
            if has_model:
                res["model"] = model
            rows.append(res)
    return _family_table(rows, (["model"] if has_model else []) + ["metric"], correction, alpha)


def compare_models(
    df: pd.DataFrame,
    metric: str = "dice",
    *,
    conditions: Sequence[str] | None = None,
    correction: Correction = "holm",
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    zero_method: ZeroMethod = "wilcox",
    partial: Partial = "error",
    match: Match = "strict",
) -> pd.DataFrame:
    """Paired Wilcoxon between every pair of models within each condition (same scans).

    Args:
        df: results table with a ``model`` column holding at least two models.
        metric: metric column to compare.
        conditions: conditions to include (default: all).
        correction: ``"holm"`` (default) or ``"fdr_bh"``, over all (condition, model pair) rows.
        alpha: significance level for the adjusted p-values.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        zero_method: see :func:`paired_test`.
        partial: see :func:`compare_conditions`.
        match: see :func:`harmonise_labels`.

    Returns:
        Columns ``condition, model_a, model_b`` followed by :data:`COMPARISON_COLUMNS` minus
        the condition pair.

    Raises:
        LesionresError: fewer than two models, or two models scored on different scans.
    """
    _require(df, ["subject_id", "condition", "model", metric])
    _check_common(n_boot, zero_method, partial)
    df = harmonise_labels(df, match)
    models = [str(m) for m in pd.unique(df["model"])]
    if len(models) < 2:
        raise LesionresError(
            f"compare_models: the 'model' column holds {len(models)} model(s); need 2+"
        )
    rows: list[dict[str, Any]] = []
    for cond in _select_conditions(df, conditions):
        sub = df[df["condition"].astype(str) == cond]
        blocks = {
            m: _block(sub[sub["model"].astype(str) == m], metric, cond, f" (model '{m}')")
            for m in models
        }
        for ma, mb in combinations(models, 2):
            ba, bb = blocks[ma], blocks[mb]
            if ba.empty or bb.empty:
                continue
            if not set(ba.index) & set(bb.index):
                raise LesionresError(
                    f"condition '{cond}': models '{ma}' and '{mb}' were scored on different scans; "
                    "models are compared on the same scans only"
                )
            res = _compare_blocks(
                ba, bb, ma, mb, zero_method=zero_method, partial=partial, n_boot=n_boot,
                seed=seed, where=f" in condition '{cond}'",
            )  # fmt: skip
            res.update(metric=metric, condition=cond, model_a=ma, model_b=mb)
            rows.append(res)
    out = _family_table(rows, ["condition", "model_a", "model_b", "metric"], correction, alpha)
    return out.drop(columns=["condition_a", "condition_b"])


def paired_block(df: pd.DataFrame, conditions: Sequence[str] | None = None) -> list[str]:
    """The largest group of conditions that hold exactly the same scans (the paired design).

    Ties are broken by first appearance, so with ATLAS conditions plus one ISLES cohort this
    is the ATLAS conditions.

    Args:
        df: results table for one model.
        conditions: candidates (default: all).
    """
    conds = _select_conditions(df, conditions)
    keys = scan_keys(df)
    groups: dict[frozenset[str], list[str]] = {}
    for c in conds:
        groups.setdefault(frozenset(keys[df["condition"].astype(str) == c]), []).append(c)
    return max(groups.values(), key=len) if groups else []


def friedman(
    df: pd.DataFrame,
    metric: str = "dice",
    conditions: Sequence[str] | None = None,
    *,
    model: str | None = None,
) -> dict[str, Any]:
    """Omnibus Friedman test across >= 3 paired conditions, with Kendall's W.

    Only scans with a value under every condition enter (complete cases; the rest are
    counted in ``n_dropped``). Kendall's W = chi2 / (n (k - 1)) from the tie-corrected
    Friedman chi-square (0 = no agreement in ranking the conditions, 1 = every scan ranks
    them the same way).

    Args:
        df: results table.
        metric: metric column.
        conditions: conditions to test; they must hold the same scans. Default: the largest
            paired group (:func:`paired_block`), which leaves other cohorts out.
        model: model to test when the table holds several.

    Returns:
        dict with ``metric, model, conditions, k, n, n_dropped, statistic, p_value,
        kendall_w, test, note``.

    Raises:
        LesionresError: fewer than 3 conditions, conditions on different scans, several
            models and none chosen.
    """
    _require(df, ["subject_id", "condition", metric])
    if _has_models(df):
        models = [str(m) for m in pd.unique(df["model"].dropna().astype(str))]
        if model is None and len(models) > 1:
            raise LesionresError(
                f"friedman: the table holds models {', '.join(models)}; pass model="
            )
        if model is not None:
            if model not in models:
                raise LesionresError(
                    f"friedman: unknown model {model!r}; the table has {', '.join(models)}"
                )
            df = df[df["model"].astype(str) == model]
        else:
            model = models[0]
    conds = paired_block(df) if conditions is None else _select_conditions(df, conditions)
    if len(conds) < 3:
        raise LesionresError(
            f"friedman: needs at least 3 conditions on the same scans, got {len(conds)} "
            f"({', '.join(conds)})"
        )
    blocks = {c: _block(df, metric, c) for c in conds}
    ref = set(blocks[conds[0]].index)
    for c in conds[1:]:
        if set(blocks[c].index) != ref:
            raise LesionresError(
                f"friedman: conditions '{conds[0]}' and '{c}' do not hold the same scans; the "
                "Friedman test needs one set of scans measured under every condition"
            )
    wide = pd.DataFrame({c: blocks[c]["value"] for c in conds})
    complete = wide.dropna()
    n, k = complete.shape
    note = []
    if len(wide) - n:
        note.append(f"{len(wide) - n} scan(s) without a value under every condition left out")
    stat, p, w = np.nan, np.nan, np.nan
    if n < 2:
        note.append("fewer than 2 complete scans: no test")
    elif (complete.nunique(axis=1) == 1).all():
        stat, p, w = 0.0, 1.0, 0.0
        note.append("every scan has the same value under all conditions: p set to 1, W 0")
    else:
        r = sps.friedmanchisquare(*[complete[c].to_numpy() for c in conds])
        stat, p = float(r.statistic), float(r.pvalue)
        w = stat / (n * (k - 1))
    return dict(
        metric=metric,
        model=model,
        conditions=";".join(conds),
        k=int(k),
        n=int(n),
        n_dropped=int(len(wide) - n),
        statistic=stat,
        p_value=p,
        kendall_w=w,
        test="Friedman chi-square (tie-corrected)",
        note="; ".join(note),
    )
