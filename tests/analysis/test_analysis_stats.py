"""Tests of lesionres.analysis.stats against scipy and pingouin called directly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from analysis_tables import paired_table, with_other_cohort
from scipy import stats as sps

from lesionres.analysis import (
    adjust_pvalues,
    compare_conditions,
    compare_models,
    friedman,
    paired_test,
    stratify,
    summarize,
    unpaired_test,
)
from lesionres.analysis.bootstrap import _bootstrap_hodges_lehmann, _bootstrap_pseudomedian
from lesionres.errors import LesionresError


@pytest.fixture
def table() -> pd.DataFrame:
    """Three paired ATLAS conditions (30 scans, ties, zeros) plus an ISLES cohort (25 scans)."""
    return with_other_cohort(paired_table())


def _series(values, prefix="s"):
    return pd.Series(values, index=[f"{prefix}{i}" for i in range(len(values))], dtype=float)


# --------------------------------------------------------------------------- Wilcoxon


@pytest.mark.parametrize("n", [6, 12, 30, 80])
@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
@pytest.mark.parametrize("decimals", [None, 2])
def test_wilcoxon_equals_scipy_and_pingouin(n, zero_method, decimals):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.2, 0.9, n)
    b = a - rng.normal(0.02, 0.05, n)
    if decimals is not None:  # ties and zero differences
        a, b = a.round(decimals), b.round(decimals)
        b[:2] = a[:2]
    res = paired_test(_series(a), _series(b), zero_method=zero_method, n_boot=50)
    ref = sps.wilcoxon(a, b, zero_method=zero_method)  # scipy's own defaults ('auto')
    assert res["statistic"] == pytest.approx(float(ref.statistic), abs=1e-12)
    assert res["p_value"] == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)
    pg_res = pg.wilcoxon(a, b, correction=False, zero_method=zero_method)
    assert res["p_value"] == pytest.approx(float(pg_res["p_val"].iloc[0]), rel=1e-9, abs=1e-12)
    assert res["effect_size"] == pytest.approx(float(pg_res["RBC"].iloc[0]), abs=1e-9)
    d = a - b
    assert res["n_zero_diff"] == int((d == 0).sum())
    assert res["n"] == (int((d != 0).sum()) if zero_method == "wilcox" else n)
    assert res["median_of_diffs"] == pytest.approx(np.median(d))
    ranked = d[d != 0] if zero_method == "wilcox" else d
    assert res["median_diff"] == pytest.approx(_brute_pseudomedian(ranked), abs=1e-12)
    assert res["zero_method"] == zero_method


def _brute_pseudomedian(d: np.ndarray) -> float:
    """Median of the Walsh averages, by two plain loops (the reference)."""
    return float(np.median([(d[i] + d[j]) / 2 for i in range(d.size) for j in range(i, d.size)]))


def test_paired_estimate_is_the_shift_the_signed_rank_test_is_about():
    # the Hodges-Lehmann pseudomedian is the shift theta at which the signed-rank statistic of
    # d - theta balances: scipy's test of the shifted differences finds nothing there
    rng = np.random.default_rng(4)
    a = rng.uniform(0.3, 0.9, 31)
    b = a - rng.gamma(1.5, 0.03, 31)  # skewed: mean, median and pseudomedian all differ
    res = paired_test(_series(a), _series(b), n_boot=0)
    d = a - b
    assert res["median_diff"] == pytest.approx(_brute_pseudomedian(d), abs=1e-12)
    assert res["median_diff"] != pytest.approx(np.median(d))
    assert sps.wilcoxon(d - res["median_diff"]).pvalue > 0.9
    assert abs(pg.wilcoxon(d - res["median_diff"])["RBC"].iloc[0]) < 0.05


def test_paired_ci_agrees_with_the_test_when_the_median_difference_is_zero():
    # 16 scans unchanged, 12 improve by about 0.05, 2 get slightly worse: the median of the
    # differences is 0 (its CI was [0.000, 0.05] next to p = 0.002), the test finds a shift
    d = np.r_[np.zeros(16), 0.05 + np.linspace(-0.01, 0.01, 12), [-0.01, -0.02]]
    b = np.linspace(0.4, 0.7, d.size).round(3)
    res = paired_test(_series(b + d), _series(b), n_boot=2000)
    assert res["median_of_diffs"] == 0.0
    assert res["p_value"] < 0.01 and res["effect_size"] > 0
    assert res["median_diff"] == pytest.approx(_brute_pseudomedian((b + d - b)[d != 0]))
    assert 0 < res["ci_low"] <= res["median_diff"] <= res["ci_high"]


def test_wilcoxon_p_method_is_stated():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=20)
    exact = paired_test(_series(a), _series(a - rng.normal(0.1, 0.1, 20)), n_boot=0)
    assert exact["p_method"] == "exact"
    a2 = rng.uniform(size=30).round(1)
    approx = paired_test(_series(a2), _series((a2 + rng.normal(0, 0.2, 30)).round(1)), n_boot=0)
    assert approx["p_method"].startswith("normal approximation")
    small = a2[:10]
    other = np.r_[small[:1], (small[1:] + 0.1).round(1)]  # one zero difference
    perm = paired_test(_series(small), _series(other), n_boot=0)
    assert perm["p_method"].startswith("exact permutation")


def test_effect_size_sign_positive_means_a_larger():
    a = np.arange(1, 11, dtype=float)
    res = paired_test(_series(a + 1), _series(a), n_boot=0)
    assert res["effect_size"] == 1.0 and res["mean_diff"] == 1.0
    res = paired_test(_series(a), _series(a + 1), n_boot=0)
    assert res["effect_size"] == -1.0
    res = unpaired_test(a + 100, a, n_boot=0)
    assert res["effect_size"] == 1.0


@pytest.mark.parametrize("n", [5, 13, 14, 40])
def test_all_zero_differences_give_p_one(n):
    a = np.linspace(0.1, 0.9, n)
    res = paired_test(_series(a), _series(a.copy()), n_boot=100)
    assert res["p_value"] == 1.0
    assert res["effect_size"] == 0.0
    assert res["n"] == 0 and res["n_zero_diff"] == n
    assert "all differences zero" in res["note"]
    assert (res["ci_low"], res["ci_high"]) == (0.0, 0.0)


def test_small_n_note_and_floor():
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    res = paired_test(_series(a), _series(a - [0.1, 0.2, 0.3, 0.4, 0.5]), n_boot=0)
    assert res["p_value"] == pytest.approx(0.0625)
    assert "0.0625" in res["note"]


def test_paired_test_on_different_subjects_raises():
    a = _series([0.1, 0.2, 0.3], prefix="atlas-")
    b = _series([0.1, 0.2, 0.3], prefix="isles-")
    with pytest.raises(LesionresError, match="do not hold the same scans"):
        paired_test(a, b)
    with pytest.raises(LesionresError, match="more than once"):
        paired_test(
            pd.Series([1.0, 2.0], index=["x", "x"]), pd.Series([1.0, 2.0], index=["x", "y"])
        )


def test_paired_test_aligns_by_id_not_position():
    a = pd.Series([0.1, 0.5, 0.9, 0.3, 0.7, 0.2], index=list("abcdef"))
    b = (a - [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]).iloc[::-1]  # same ids, reversed order
    res = paired_test(a, b, n_boot=0)
    assert res["effect_size"] == 1.0


def test_unpaired_test_refuses_shared_ids():
    a = _series([0.1, 0.2, 0.3])
    with pytest.raises(LesionresError, match="not independent"):
        unpaired_test(a, a + 1)


# --------------------------------------------------------------------------- Mann-Whitney


@pytest.mark.parametrize(
    ("n1", "n2", "decimals"), [(5, 7, None), (8, 30, None), (30, 25, 1), (60, 45, 2)]
)
def test_mann_whitney_equals_scipy_and_pingouin(n1, n2, decimals):
    rng = np.random.default_rng(n1 * n2)
    a, b = rng.uniform(0.2, 0.9, n1), rng.uniform(0.1, 0.8, n2)
    if decimals is not None:
        a, b = a.round(decimals), b.round(decimals)
    res = unpaired_test(a, b, n_boot=50)
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert res["statistic"] == pytest.approx(float(ref.statistic), abs=1e-12)
    assert res["p_value"] == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-12)
    pg_res = pg.mwu(a, b, alternative="two-sided")
    assert res["p_value"] == pytest.approx(float(pg_res["p_val"].iloc[0]), rel=1e-9, abs=1e-12)
    assert res["effect_size"] == pytest.approx(float(pg_res["RBC"].iloc[0]), abs=1e-9)
    assert res["median_diff"] == pytest.approx(np.median(np.subtract.outer(a, b)))
    assert res["n"] == n1 + n2 and res["design"] == "unpaired"


# --------------------------------------------------------------------------- corrections


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_corrections_equal_pingouin(method):
    rng = np.random.default_rng(7)
    for _ in range(20):
        p = rng.uniform(0, 0.2, rng.integers(1, 15)) ** rng.uniform(0.5, 3)
        p[rng.uniform(size=p.size) < 0.2] = p[0]  # ties
        ours = adjust_pvalues(p, method)
        _, theirs = pg.multicomp(p, method=method)
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    p = np.array([0.5, 0.003, np.nan, 0.054, 0.0003])
    _, theirs = pg.multicomp(p, method=method)
    np.testing.assert_allclose(adjust_pvalues(p, method), theirs, atol=1e-12)
    with pytest.raises(LesionresError):
        adjust_pvalues(p, "bonferroni")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_matches_naive_resampling():
    rng = np.random.default_rng(11)
    for n in (17, 16):  # odd (153) and even (136) numbers of Walsh averages, ties from rounding
        d = rng.normal(size=n).round(1)
        idx = np.random.default_rng(5).integers(0, n, size=(300, n))
        naive = np.percentile([_brute_pseudomedian(d[k]) for k in idx], [2.5, 97.5])
        np.testing.assert_allclose(_bootstrap_pseudomedian(d, 300, 5), naive, atol=1e-12)
    a, b = rng.uniform(size=13).round(2), rng.uniform(size=9).round(2)
    r = np.random.default_rng(5)
    ia, ib = r.integers(0, 13, (300, 13)), r.integers(0, 9, (300, 9))
    meds = [np.median(np.subtract.outer(a[x], b[y])) for x, y in zip(ia, ib, strict=True)]
    ours = _bootstrap_hodges_lehmann(a, b, 300, 5)
    np.testing.assert_allclose(ours, np.percentile(meds, [2.5, 97.5]), atol=1e-12)


def test_bootstrap_ci_is_seeded(table):
    one = compare_conditions(table, n_boot=300, seed=1)
    again = compare_conditions(table, n_boot=300, seed=1)
    other = compare_conditions(table, n_boot=300, seed=2)
    pd.testing.assert_frame_equal(one, again)
    assert not np.allclose(one["ci_low"], other["ci_low"])
    assert ((one["ci_low"] <= one["median_diff"]) & (one["median_diff"] <= one["ci_high"])).all()


# --------------------------------------------------------------------------- compare_conditions


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


# --------------------------------------------------------------------------- summaries, strata


def test_summarize_is_nan_aware(table):
    df = table.copy()
    idx = df.index[df.condition == "original"]
    df.loc[idx[:2], "dice"] = np.nan
    df.loc[idx[2], "hd95_mm"] = np.inf
    df.loc[idx[3], "error"] = "failed"
    s = summarize(df, ["dice", "hd95_mm"]).set_index(["condition", "metric"])
    assert list(s.columns[:6]) == ["n", "mean", "std", "min", "max", "median"]
    row = s.loc[("original", "dice")]
    assert row["n"] == 27 and row["n_missing"] == 2 and row["n_failed"] == 1
    v = df.loc[idx[2:3].append(idx[4:]), "dice"]  # NaN and failed rows out, inf hd95 row in
    assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
    assert s.loc[("original", "hd95_mm"), "n"] == 28  # one failed row, one inf
    assert summarize(table.assign(model="m")).columns[0] == "model"


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


def test_stratify_uses_the_ground_truth(table):
    s = stratify(table, "dice", by="gt_volume_ml")
    assert set(s["stratum"]) <= {"<1 ml", "1-5 ml", "5-20 ml", ">=20 ml"}
    orig = s[s.condition == "original"]
    assert orig["n"].sum() == 30
    vol = table[table.condition == "original"]["gt_volume_ml"]
    assert orig.set_index("stratum").loc["<1 ml", "n"] == int((vol < 1).sum())
    counts = stratify(table, "dice", by="gt_lesions")
    assert list(counts[counts.condition == "original"]["stratum"]) == ["1", "2-3", "4+"]
    terts = stratify(table, "dice", bins="tertiles")
    assert terts["stratum"].str.startswith(("low", "middle", "high")).all()
    bad = table.copy()
    bad.loc[bad.index[bad.condition == "crude_x2"][0], "gt_volume_ml"] = 999.0
    with pytest.raises(LesionresError, match="identical under every condition"):
        stratify(bad)
