"""Tests of lesionres.analysis.noninferiority against scipy on tables built for the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import paired_table, with_other_cohort
from scipy import stats as sps

from lesionres.analysis import (
    adjust_pvalues,
    analyze,
    analyze_main,
    compare_conditions,
    compare_models,
)
from lesionres.analysis.crossing import margin_crossing
from lesionres.analysis.noninferiority import (
    DEFAULT_MARGINS,
    NONINFERIORITY_COLUMNS,
    compare_to_reference,
    parse_margins,
)
from lesionres.analysis.sample_size import (
    _signed_rank_pvalues,
    resampled_power,
    scans_for_comparisons,
    scans_needed,
)
from lesionres.analysis.bootstrap import _bootstrap_pseudomedian, _pseudomedian
from lesionres.errors import LesionresError

ISSUE_COLUMNS = [
    "metric", "condition", "reference", "margin", "direction", "n", "estimate", "ci_low",
    "ci_high", "p_noninferiority", "p_equivalence", "p_adjusted", "verdict",
]  # fmt: skip


def _two_conditions(diffs: np.ndarray, *, seed: int = 0, metric: str = "dice") -> pd.DataFrame:
    """``original`` and ``linear_x2`` on the same scans, ``linear_x2 - original = diffs``."""
    rng = np.random.default_rng(seed)
    n = diffs.size
    base = rng.uniform(0.4, 0.7, n) if metric == "dice" else rng.uniform(5, 20, n)
    ids = [f"sub-{i:03d}" for i in range(n)]
    frames = [
        pd.DataFrame({"subject_id": ids, "dataset": "atlas", "condition": cond, "method": method,
                      "factor": factor, metric: values})
        for cond, method, factor, values in (
            ("original", "original", "", base), ("linear_x2", "linear", "2", base + diffs),
        )
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def _diffs(df: pd.DataFrame, condition: str, metric: str) -> np.ndarray:
    wide = df.pivot(index="subject_id", columns="condition", values=metric)
    return (wide[condition] - wide["original"]).dropna().to_numpy()


# --------------------------------------------------------------------------- against scipy


@pytest.mark.parametrize("n", [8, 30, 80])
@pytest.mark.parametrize("round_to", [None, 2])
def test_p_values_are_scipys_one_sided_wilcoxon_on_the_shifted_differences(n, round_to):
    df = with_other_cohort(paired_table(n, round_to=round_to))
    margins = {"dice": 0.02, "hd95_mm": 2.0}
    table = compare_to_reference(df, margins, n_boot=50, n_resamples=20)
    assert list(table.columns[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS
    assert list(table.columns) == list(NONINFERIORITY_COLUMNS)
    assert len(table) == 4 and table.attrs["not_paired"] == ["isles22"]
    for r in table.itertuples():
        d, m = _diffs(df, r.condition, r.metric), margins[r.metric]
        if r.metric == "dice":  # higher is better: H1 d > -m
            p_ni = sps.wilcoxon(np.round(d + m, 12), alternative="greater").pvalue
            p_up = sps.wilcoxon(np.round(d - m, 12), alternative="less").pvalue
            p_inf = sps.wilcoxon(np.round(d + m, 12), alternative="less").pvalue
        else:  # an error metric: the direction flips, H1 d < m
            assert r.direction == "lower"
            p_ni = sps.wilcoxon(np.round(d - m, 12), alternative="less").pvalue
            p_up = sps.wilcoxon(np.round(d + m, 12), alternative="greater").pvalue
            p_inf = sps.wilcoxon(np.round(d - m, 12), alternative="greater").pvalue
        assert r.p_noninferiority == pytest.approx(p_ni, rel=1e-9, abs=1e-12)
        assert r.p_equivalence == pytest.approx(max(p_ni, p_up), rel=1e-9, abs=1e-12)
        assert r.p_inferiority == pytest.approx(p_inf, rel=1e-9, abs=1e-12)
        assert r.n == n and r.reference == "original" and r.margin == m
    np.testing.assert_allclose(table["p_adjusted"], adjust_pvalues(table["p_noninferiority"]))
    np.testing.assert_allclose(
        table["p_equivalence_adjusted"], adjust_pvalues(table["p_equivalence"])
    )


def test_estimate_is_the_pseudomedian_with_its_bootstrap_ci_at_the_tost_level():
    rng = np.random.default_rng(3)
    d = rng.normal(-0.005, 0.02, 40)
    df = _two_conditions(d)
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=400, seed=7, alpha=0.05).iloc[0]
    exact = _diffs(df, "linear_x2", "dice")
    assert row["estimate"] == pytest.approx(_pseudomedian(exact))
    lo, hi = _bootstrap_pseudomedian(exact, 400, 7, level=0.90)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi))
    lo95, hi95 = _bootstrap_pseudomedian(exact, 400, 7)  # the two-sided tests' 95%
    assert lo95 <= lo and hi <= hi95 and row["ci_level"] == pytest.approx(0.9)


def test_a_difference_equal_to_the_margin_is_a_zero_not_float_noise():
    d = np.array([-0.02] * 4 + [0.01, -0.01, 0.015, 0.005, -0.005, 0.02])
    df = _two_conditions(d).round(2)  # 0.78 - 0.80 + 0.02 is 1e-17 without rounding
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=0, n_resamples=10).iloc[0]
    shifted = np.round(_diffs(df, "linear_x2", "dice") + 0.02, 12)
    assert (shifted == 0).sum() == 4
    expected = sps.wilcoxon(shifted, alternative="greater").pvalue  # zeros dropped ('wilcox')
    assert row["p_noninferiority"] == pytest.approx(expected)


# --------------------------------------------------------------------------- verdicts


def test_small_noisy_sample_without_a_significant_difference_is_inconclusive_not_equivalent():
    # 9 scans, differences of up to 9 Dice points either way: the two-sided p is 0.82
    d = np.array([-0.09, 0.07, -0.05, 0.04, -0.03, 0.06, -0.08, 0.02, 0.01])
    df = _two_conditions(d)
    two_sided = compare_conditions(df, "dice", n_boot=0)
    assert not two_sided["significant"].any()  # "no difference" is what a naive reading says
    row = compare_to_reference(df, {"dice": 0.02}, n_boot=200).iloc[0]
    assert row["verdict"] == "inconclusive"
    assert row["p_equivalence"] > 0.05
    assert row["ci_low"] < -0.02 < row["ci_high"]  # the CI spans the margin
    assert "spans the margin" in row["note"]
    # and it says how many scans would settle it
    assert row["power_noninferiority"] < 0.8 and row["n_for_noninferiority"] > 9


def test_large_sample_within_the_margin_is_equivalent():
    d = np.random.default_rng(5).normal(0.002, 0.02, 400)
    row = compare_to_reference(_two_conditions(d), {"dice": 0.02}, n_boot=200).iloc[0]
    assert row["verdict"] == "equivalent"
    assert -0.02 < row["ci_low"] < row["ci_high"] < 0.02


@pytest.mark.parametrize(
    ("shift", "metric", "margin", "verdict"),
    [
        (-0.06, "dice", 0.02, "inferior"),  # worse by more than the margin
        (0.06, "dice", 0.02, "non-inferior"),  # better by more than the margin: not equivalent
        (-3.0, "hd95_mm", 1.0, "non-inferior"),  # HD95 3 mm lower: better
        (3.0, "hd95_mm", 1.0, "inferior"),  # HD95 3 mm higher: worse
        (0.2, "hd95_mm", 1.0, "equivalent"),
    ],
)
def test_verdict_follows_the_metric_direction(shift, metric, margin, verdict):
    sd = 0.02 if metric == "dice" else 1.0
    d = np.random.default_rng(2).normal(shift, sd, 200)
    df = _two_conditions(d, metric=metric)
    row = compare_to_reference(df, {metric: margin}, n_boot=100).iloc[0]
    assert row["verdict"] == verdict
    assert row["direction"] == ("higher" if metric == "dice" else "lower")


def test_verdicts_use_the_holm_adjusted_p_values():
    conds = ("original", "a_x2", "b_x2", "c_x2", "d_x2")
    df = paired_table(12, conditions=conds, shifts=(0, -0.01, -0.01, -0.01, -0.01), round_to=None)
    table = compare_to_reference(df, {"dice": 0.05}, n_boot=0, n_resamples=10)
    assert (table["p_adjusted"] >= table["p_noninferiority"]).all()
    assert table["correction"].iloc[0] == "holm over 4 rows"
    for r in table.itertuples():
        claimed = {"equivalent": r.p_equivalence_adjusted, "non-inferior": r.p_adjusted}
        if r.verdict in claimed:
            assert claimed[r.verdict] < 0.05


# --------------------------------------------------------------------------- options


def test_margins_parse_and_refuse_what_has_no_better_direction():
    assert parse_margins(None) == DEFAULT_MARGINS == {"dice": 0.02}
    assert parse_margins(["none"]) == {}
    assert parse_margins(["dice=0.03", "hd95_mm=2"]) == {"dice": 0.03, "hd95_mm": 2.0}
    for bad in (["dice"], ["dice=-1"], ["dice=x"], ["gt_volume_ml=1"], ["rel_volume_diff=0.1"]):
        with pytest.raises(LesionresError, match="--margin"):
            parse_margins(bad)


def test_reference_and_margin_errors_name_the_problem():
    df = paired_table(10)
    with pytest.raises(LesionresError, match="--reference: no condition 'bogus'"):
        compare_to_reference(df, {"dice": 0.02}, reference="bogus")
    with pytest.raises(LesionresError, match="no column lesion_f1"):
        compare_to_reference(df, {"lesion_f1": 0.05})
    other = compare_to_reference(
        df, {"dice": 0.02}, reference="crude_x2", n_boot=0, n_resamples=10
    )
    assert set(other["condition"]) == {"original", "linear_x2"}


# --------------------------------------------------------------------------- sample size


def test_resampled_p_values_equal_scipys_normal_approximation_on_the_resamples():
    rng = np.random.default_rng(0)
    x = rng.normal(0.01, 0.03, 15).round(2)  # ties (also between +v and -v) and zeros
    x[:2] = 0.0
    counts = rng.integers(0, 4, size=(6, x.size))
    for alternative in ("two-sided", "greater", "less"):
        ours = _signed_rank_pvalues(x, counts, alternative)
        for row, p in zip(counts, ours, strict=True):
            sample = np.repeat(x, row)
            ref = sps.wilcoxon(sample, alternative=alternative, method="asymptotic")
            assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_scans_needed_is_the_first_grid_size_with_80_percent_power():
    d = np.random.default_rng(4).normal(-0.005, 0.03, 9) + 0.02  # shifted for non-inferiority
    n = scans_needed(d, "greater", n_resamples=300, seed=0)
    grid = (5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100)
    assert 9 < n < 1000
    power = resampled_power(d, int(n), "greater", n_resamples=300, seed=0)
    assert power >= 0.8
    previous = max(g for g in grid if g < n) if n > 5 else None
    if previous:
        assert resampled_power(d, previous, "greater", n_resamples=300, seed=0) < 0.8
    assert np.isnan(scans_needed(np.zeros(9), "two-sided"))  # nothing to detect


# --------------------------------------------------------------------------- crossing


def _sweep(shifts: dict[str, float], n: int = 20) -> pd.DataFrame:
    """A noise-free linear sweep: every scan loses exactly ``shift`` Dice at each level."""
    base = np.linspace(0.4, 0.8, n)
    ids = [f"sub-{i:03d}" for i in range(n)]
    frames = [pd.DataFrame({"subject_id": ids, "dataset": "atlas", "condition": "original",
                            "method": "original", "factor": "", "spacing_mm": "1x1x1",
                            "dice": base})]  # fmt: skip
    for k, shift in shifts.items():
        frames.append(pd.DataFrame({"subject_id": ids, "dataset": "atlas",
                                    "condition": f"linear_x{k}", "method": "linear",
                                    "factor": k, "spacing_mm": f"{k}x{k}x{k}",
                                    "dice": base + shift}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_crossing_is_read_off_the_curve_and_the_largest_noninferior_level_from_the_tests():
    df = _sweep({"2": -0.005, "3": -0.01, "4": -0.03})
    table = compare_to_reference(df, {"dice": 0.02}, n_boot=100, n_resamples=10)
    assert list(table["verdict"]) == ["equivalent", "equivalent", "inferior"]
    crossing = margin_crossing(df, table, n_boot=100)
    row = crossing.iloc[0]
    assert row["method"] == "linear" and row["largest_noninferior"] == "linear_x3"
    assert row["largest_noninferior_mm"] == pytest.approx(3.0)
    # -0.01 at 3 mm, -0.03 at 4 mm: the margin -0.02 is crossed half-way, at 3.5 mm
    assert row["crossing_mm"] == pytest.approx(3.5)
    assert row["crossing_low"] == pytest.approx(3.5) and row["crossing_high"] == pytest.approx(3.5)


def test_crossing_beyond_the_sweep_is_infinite_and_said():
    df = _sweep({"2": 0.0, "3": -0.005})
    table = compare_to_reference(df, {"dice": 0.02}, n_boot=50, n_resamples=10)
    row = margin_crossing(df, table, n_boot=50).iloc[0]
    assert np.isinf(row["crossing_mm"]) and "within the margin" in row["note"]
    assert row["largest_noninferior"] == "linear_x3"


# --------------------------------------------------------------------------- analyze, study


def test_analyze_writes_the_margin_table_and_report_section(tmp_path):
    csv = tmp_path / "results.csv"
    with_other_cohort(_sweep({"2": -0.005, "3": -0.01, "4": -0.03})).to_csv(csv, index=False)
    report = analyze(csv, tmp_path / "out", n_boot=50).read_text()
    table = pd.read_csv(tmp_path / "out" / "noninferiority.csv")
    assert list(table.columns[: len(ISSUE_COLUMNS)]) == ISSUE_COLUMNS
    assert list(table["verdict"]) == ["equivalent", "equivalent", "inferior"]
    assert (tmp_path / "out" / "crossing.csv").exists()
    assert "Non-inferiority and equivalence against `original`" in report
    assert "Dice 0.02** (the default" in report
    assert "**inconclusive**: none of these can be shown" in report
    assert "non-inferior up to **linear_x3** (3 mm)" in report
    assert "crosses the margin at 3.5 mm" in report
    assert "`isles22`: other scans" in report
    assert "Non-inferiority and equivalence to the reference condition" in report  # methods


def test_analyze_cli_margins_reference_and_none(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    paired_table(15).to_csv(csv, index=False)
    argv = [str(csv), "--out", str(tmp_path / "a"), "--no-figures", "--n-boot", "20"]
    margins = ["--margin", "dice=0.05", "hd95_mm=3", "--reference", "crude_x2"]
    assert analyze_main([*argv, *margins]) == 0
    table = pd.read_csv(tmp_path / "a" / "noninferiority.csv")
    assert set(table["metric"]) == {"dice", "hd95_mm"} and set(table["reference"]) == {"crude_x2"}
    assert analyze_main([*argv, "--margin", "none"]) == 0
    assert "Not run: no margin" in (tmp_path / "a" / "report.md").read_text()
    with pytest.raises(LesionresError, match="--margin"):
        analyze_main([*argv, "--margin", "dice"])


def test_study_passes_margin_and_reference_to_analyze(tmp_path, monkeypatch):
    import lesionres.analysis
    import lesionres.study as study

    seen = {}
    monkeypatch.setattr(study, "_fit", lambda *a, **k: tmp_path / "best.ckpt")
    monkeypatch.setattr(study, "_test", lambda *a, **k: None)
    monkeypatch.setattr(lesionres.analysis, "analyze", lambda *a, **k: seen.update(k) or "r.md")
    margins = ["--margin", "dice=0.03", "hd95_mm=2", "--reference", "linear_x2"]
    assert study.study_main(["--out", str(tmp_path), *margins]) == 0
    assert seen["margins"] == ["dice=0.03", "hd95_mm=2"] and seen["reference"] == "linear_x2"
    with pytest.raises(LesionresError, match="--margin"):
        study.study_main(["--out", str(tmp_path), "--margin", "dice=-1"])


def test_report_tells_a_user_with_9_scans_how_many_would_settle_it(tmp_path):
    d = np.array([-0.09, 0.07, -0.05, 0.04, -0.03, 0.06, -0.08, 0.02, 0.01])
    csv = tmp_path / "results.csv"
    _two_conditions(d).to_csv(csv, index=False)
    report = analyze(csv, tmp_path / "out", n_boot=100, make_figures=False).read_text()
    row = pd.read_csv(tmp_path / "out" / "noninferiority.csv").iloc[0]
    assert row["verdict"] == "inconclusive" and 9 < row["n_for_noninferiority"] <= 1000
    assert "inconclusive with 9 scans (power to show non-inferiority now about" in report
    assert f"about {int(row['n_for_noninferiority'])} scans would give 80%" in report


def test_a_row_left_open_by_the_correction_says_so(tmp_path):
    # 6 scans all inside the margin: one-sided p = 1/64 each, 4 x 1/64 > 0.05 after Holm
    d = np.array([0.0, 0.005, -0.005, 0.01, 0.002, -0.003])
    base = np.linspace(0.4, 0.7, 6)
    ids = [f"sub-{i}" for i in range(6)]
    conds = ("original", "a_x2", "b_x2", "c_x2", "d_x2")
    df = pd.concat(
        [pd.DataFrame({"subject_id": ids, "condition": c, "dice": base + (d if k else 0)})
         for k, c in enumerate(conds)]
    )  # fmt: skip
    df.to_csv(tmp_path / "r.csv", index=False)
    report = analyze(tmp_path / "r.csv", tmp_path / "out", n_boot=50, make_figures=False)
    table = pd.read_csv(tmp_path / "out" / "noninferiority.csv")
    assert table["p_noninferiority"].to_numpy() == pytest.approx([1 / 64] * 4)
    assert (table["verdict"] == "inconclusive").all()
    assert "non-inferior at alpha before the correction (one-sided p = 0.0156), not after it " \
        "over 4 rows" in report.read_text()


def test_resolution_curve_shows_the_margin_band_and_marks_the_crossing():
    from lesionres.analysis import plot_resolution_curve

    df = _sweep({"2": -0.005, "3": -0.01, "4": -0.03})
    crossing = margin_crossing(df, compare_to_reference(df, n_boot=20, n_resamples=10), n_boot=20)
    fig = plot_resolution_curve(df, n_boot=20, margin=0.02, crossings=crossing)
    ax = fig.axes[0]
    limit = df.loc[df["condition"] == "original", "dice"].mean() - 0.02
    assert any(np.allclose(line.get_ydata(), limit) for line in ax.get_lines())  # the limit
    assert len(ax.patches) == 1  # the band (axhspan; the curve itself draws no patch)
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert diamonds and diamonds[0].get_xdata()[0] == pytest.approx(3.5)


def test_every_paired_comparison_gets_its_sample_size_and_unpaired_ones_none():
    df = with_other_cohort(paired_table(12))
    comp = compare_conditions(df, "dice", n_boot=0)
    sizes = scans_for_comparisons(df, comp, "dice", n_resamples=100)
    for r, n in zip(comp.itertuples(), sizes, strict=True):
        if r.design == "unpaired":
            assert np.isnan(n)
            continue
        wide = df.pivot(index="subject_id", columns="condition", values="dice")
        d = (wide[r.condition_a] - wide[r.condition_b]).dropna().to_numpy()
        expected = scans_needed(np.round(d, 12), "two-sided", n_resamples=100)
        assert n == expected or (np.isnan(n) and np.isnan(expected))
    models = pd.concat([paired_table(12).assign(model=m) for m in ("a", "b")])
    models.loc[models["model"] == "b", "dice"] += 0.03
    mc = compare_models(models, "dice", n_boot=0)
    assert (scans_for_comparisons(models, mc, "dice", n_resamples=100) == 5).all()
