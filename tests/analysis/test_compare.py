"""Tests of lesionres.analysis.compare: designs, families, Friedman."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from analysis_tables import paired_table
from scipy import stats as sps

from lesionres.analysis import (
    compare_conditions,
    compare_models,
    friedman,
)
from lesionres.errors import LesionresError


def test_compare_conditions_picks_the_design(table):
    comp = compare_conditions(table, "dice", n_boot=100)
    assert len(comp) == 6  # 4 conditions
    by_pair = comp.set_index(["condition_a", "condition_b"])
    assert by_pair.loc[("original", "crude_x2"), "test"] == "Wilcoxon signed-rank"
    row = by_pair.loc[("original", "isles22")]
    assert row["test"] == "Mann-Whitney U" and row["design"] == "unpaired"
    assert row["cohort_shift"] and "cohort/modality shift" in row["note"]
    ref = sps.mannwhitneyu(
        table.loc[table.condition == "original", "dice"],
        table.loc[table.condition == "isles22", "dice"],
    )
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    _, holm = pg.multicomp(comp["p_value"].to_numpy(), method="holm")
    np.testing.assert_allclose(comp["p_adjusted"], holm)
    assert (comp["significant"] == (comp["p_adjusted"] < 0.05)).all()
    assert comp["correction"].iloc[0] == "holm over 6 tests"
    bh = compare_conditions(table, "dice", correction="fdr_bh", n_boot=0)
    _, bh_ref = pg.multicomp(bh["p_value"].to_numpy(), method="fdr_bh")
    np.testing.assert_allclose(bh["p_adjusted"], bh_ref)


def test_pairs_restrict_the_family(table):
    planned = [("original", "crude_x2"), ("original", "linear_x2")]
    comp = compare_conditions(table, pairs=planned, n_boot=0)
    assert len(comp) == 2
    assert comp["correction"].iloc[0] == "holm over 2 tests"
    with pytest.raises(LesionresError, match="unknown"):
        compare_conditions(table, pairs=[("original", "nope")])


def test_nan_pairs_and_failed_rows_are_dropped_and_counted(table):
    df = table.copy()
    crude = df.index[df.condition == "crude_x2"]
    df.loc[crude[:3], "dice"] = np.nan
    df.loc[crude[3], "dice"] = np.inf
    df.loc[crude[4], ["dice", "error"]] = [np.nan, "RuntimeError: boom"]
    row = compare_conditions(df, pairs=[("original", "crude_x2")], n_boot=0).iloc[0]
    assert row["n_dropped_nan"] == 4 and row["n_dropped_failed"] == 1
    assert row["n_pairs"] == 30 - 5
    a = df[df.condition == "original"].set_index("subject_id")["dice"]
    b = df[df.condition == "crude_x2"].set_index("subject_id")["dice"].replace(np.inf, np.nan)
    keep = b.notna()
    ref = sps.wilcoxon(a[keep], b[keep])
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert "failed" in row["note"] and "missing" in row["note"]


def test_partial_overlap_raises_unless_intersect(table):
    df = table[~((table.condition == "crude_x2") & (table.subject_id.isin(["sub-000", "sub-001"])))]
    with pytest.raises(LesionresError, match="partial='intersect'"):
        compare_conditions(df, n_boot=0)
    comp = compare_conditions(df, partial="intersect", n_boot=0)
    row = comp.set_index(["condition_a", "condition_b"]).loc[("original", "crude_x2")]
    assert row["design"] == "paired" and row["n_pairs"] == 28 and "partial overlap" in row["note"]


def test_same_ids_in_another_dataset_are_not_paired():
    a = paired_table(12, conditions=("original",), shifts=(0,))
    # the same subject ids in another dataset are other patients
    b = paired_table(12, conditions=("isles22",), shifts=(0,), dataset="isles22")
    # ... or the same scans labelled twice: refused until the caller says which
    with pytest.raises(LesionresError, match="two dataset labels"):
        compare_conditions(pd.concat([a, b]), n_boot=0)
    comp = compare_conditions(pd.concat([a, b]), n_boot=0, match="dataset")
    assert comp["design"].iloc[0] == "unpaired"
    comp = compare_conditions(pd.concat([a, b]), n_boot=0, match="subject")
    assert comp["design"].iloc[0] == "paired" and comp["n_pairs"].iloc[0] == 12


def test_duplicate_scan_rows_raise(table):
    df = pd.concat([table, table[table.condition == "original"].assign(dice=0.1).head(2)])
    with pytest.raises(LesionresError, match="more than once"):
        compare_conditions(df)


def test_bad_options_raise(table):
    with pytest.raises(LesionresError):
        compare_conditions(table, zero_method="nope")  # type: ignore[arg-type]
    with pytest.raises(LesionresError):
        compare_conditions(table, partial="nope")  # type: ignore[arg-type]
    with pytest.raises(LesionresError):
        compare_conditions(table, alpha=5)
    with pytest.raises(LesionresError, match="missing column"):
        compare_conditions(table, metric="nope")


def test_models_are_compared_on_the_same_scans():
    m1 = paired_table(20, seed=1).assign(model="unet_a")
    m2 = paired_table(20, seed=1).assign(model="unet_b")
    m2["dice"] = (m2["dice"] - np.random.default_rng(0).normal(0.05, 0.03, len(m2))).round(3)
    df = pd.concat([m1, m2], ignore_index=True)
    mc = compare_models(df, "dice", n_boot=0)
    assert len(mc) == 3 and list(mc.columns[:4]) == ["condition", "model_a", "model_b", "metric"]
    a = m1[m1.condition == "original"]["dice"].to_numpy()
    b = m2[m2.condition == "original"]["dice"].to_numpy()
    row = mc.set_index("condition").loc["original"]
    assert row["p_value"] == pytest.approx(sps.wilcoxon(a, b).pvalue, rel=1e-12)
    _, holm_ref = pg.multicomp(mc["p_value"].to_numpy(), method="holm")
    np.testing.assert_allclose(mc["p_adjusted"], holm_ref)
    cc = compare_conditions(df, n_boot=0)
    assert cc.columns[0] == "model" and len(cc) == 6
    with pytest.raises(LesionresError, match="need 2"):
        compare_models(m1)


def test_friedman_equals_scipy_and_pingouin(table):
    res = friedman(table, "dice")
    assert res["conditions"] == "original;crude_x2;linear_x2" and res["k"] == 3 and res["n"] == 30
    atlas = table[table.condition != "isles22"]
    wide = atlas.pivot(index="subject_id", columns="condition", values="dice")
    ref = sps.friedmanchisquare(*[wide[c] for c in ("original", "crude_x2", "linear_x2")])
    assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    long = table[table.condition != "isles22"]
    pg_res = pg.friedman(data=long, dv="dice", within="condition", subject="subject_id")
    assert res["kendall_w"] == pytest.approx(float(pg_res["W"].iloc[0]), abs=1e-9)
    with pytest.raises(LesionresError, match="at least 3"):
        friedman(table, conditions=["original", "crude_x2"])
    with pytest.raises(LesionresError, match="same scans"):
        friedman(table, conditions=["original", "crude_x2", "isles22"])
