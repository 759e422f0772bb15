"""Tests of the analysis outputs: tables, figures, report, CLI, notebook, import hygiene."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_tables import paired_table, with_other_cohort
from matplotlib.figure import Figure

from lesionres.analysis import (
    analyze,
    coverage_notes,
    find_prediction_examples,
    latex_table,
    markdown_table,
    overlay_figure,
    parse_resolution,
    plot_distributions,
    plot_metric_bars,
    plot_resolution_curve,
    plot_stratified,
    plot_volume_agreement,
    resolution_table,
    stratify,
    summarize,
    synthetic_results,
    write_table,
)
from lesionres.commands.analysis import analyze_main
from lesionres.errors import LesionresError

REPO = Path(__file__).resolve().parents[2]


def test_importing_analysis_imports_no_torch_lightning_or_pyplot():
    code = (
        "import sys, lesionres.analysis\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning', 'torchio', 'nibabel', "
        "'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------------------------------- tables


def test_markdown_and_latex_tables_escape_and_format():
    df = pd.DataFrame(
        {
            "condition": ["a|b", "x_1 & 50%"],
            "n": [3, 4],
            "p_value": [1e-20, 0.0312],
            "mean": [0.61234, np.nan],
        }
    )
    md = markdown_table(df)
    assert "a\\|b" in md and "<1e-16" in md and "0.0312" in md and "0.6123" in md
    assert md.splitlines()[1].startswith("|---")
    tex = latex_table(df, caption="Dice & co", label="tab:x")
    assert r"x\_1 \& 50\%" in tex and r"\toprule" in tex and r"\caption{Dice \& co}" in tex


def test_write_table_is_atomic(tmp_path):
    df = pd.DataFrame({"condition": ["a"], "dice": [0.5]})
    written = write_table(df, tmp_path, "t")
    assert sorted(p.name for p in written) == ["t.csv", "t.md", "t.tex"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"), df)


# --------------------------------------------------------------------------- figures


def test_figures_write_png_and_pdf(tmp_path):
    df = synthetic_results(n_subjects=15, n_other_cohort=10)
    for name, fig in {
        "bars": plot_metric_bars(df, n_boot=50, out=tmp_path / "bars"),
        "bars_sd": plot_metric_bars(df, error="sd", out=tmp_path / "bars_sd"),
        "dist": plot_distributions(df, "dice", out=tmp_path / "dist"),
        "res": plot_resolution_curve(df, n_boot=50, out=tmp_path / "res"),
        "vol": plot_volume_agreement(df, out=tmp_path / "vol"),
        "strat": plot_stratified(stratify(df, by="gt_lesions"), out=tmp_path / "strat"),
    }.items():
        assert isinstance(fig, Figure), name
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 1000
    assert "bootstrap CI" in plot_metric_bars(df, n_boot=10).axes[0].get_ylabel()
    assert "SD" in plot_metric_bars(df, error="sd").axes[0].get_ylabel()


def test_resolution_parsing_and_sweep_detection():
    assert parse_resolution("2") == (2.0, 2.0, 2.0)
    assert parse_resolution("1x1x5") == (1.0, 1.0, 5.0)
    assert parse_resolution("1x1x5mm") == (1.0, 1.0, 5.0)
    assert parse_resolution("") is None and parse_resolution(np.nan) is None
    with pytest.raises(LesionresError):
        parse_resolution("2x2")
    df = synthetic_results(n_subjects=8, n_other_cohort=4)
    res = resolution_table(df).set_index("condition")
    assert res.loc["linear_x3", "voxel_volume_mm3"] == 27 and res.loc["original", "is_reference"]
    only_x2 = df[df.condition.isin(["original", "crude_x2", "linear_x2"])]
    assert plot_resolution_curve(only_x2) is None  # no method at two resolutions
    no_spacing = df.assign(spacing_mm="")
    tab = resolution_table(no_spacing).set_index("condition")
    assert tab.loc["linear_x2", "voxel_volume_mm3"] == 8 and tab.loc["linear_x2", "assumed_source"]


def test_resolution_curve_uses_measured_effective_resolution_when_present():
    df = synthetic_results(n_subjects=8, n_other_cohort=4)
    assert (resolution_table(df)["effective"] == "").all()  # older tables: nominal only
    effective = {c: f"{2.1 * i + 1:.1f}" for i, c in enumerate(pd.unique(df["condition"]))}
    df = df.assign(effective_fwhm_mm=df["condition"].map(effective))
    res = resolution_table(df).set_index("condition")
    assert res.loc["linear_x3", "spacing"] == "3x3x3"  # nominal kept beside the measured
    assert res.loc["linear_x3", "effective"] == "x".join([effective["linear_x3"]] * 3)
    fig = plot_resolution_curve(df, n_boot=20)
    assert fig is not None and "effective resolution" in fig.axes[0].get_xlabel()
    # sampling limits resolution too: linear interpolation aliases with a narrow line spread
    narrow = df.assign(effective_fwhm_mm="1.0")
    res = resolution_table(narrow).set_index("condition")
    assert res.loc["linear_x3", "effective"] == "3x3x3"
    assert res.loc["linear_x2", "effective"] == "2x2x2"


def test_plots_refuse_to_pool_models():
    df = pd.concat([paired_table(8).assign(model="a"), paired_table(8).assign(model="b")])
    with pytest.raises(LesionresError, match="model="):
        plot_distributions(df, "dice")
    assert isinstance(plot_distributions(df, "dice", model="b"), Figure)


def _write_nifti(path: Path, data: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


@pytest.fixture
def predictions(tmp_path):
    """A tiny predictions folder in the documented layout, plus its results table."""
    df = paired_table(4, conditions=("original", "crude_x2"), shifts=(0, 0))
    root = tmp_path / "predictions"
    z, y, x = np.meshgrid(np.arange(24), np.arange(28), np.arange(20), indexing="ij")
    for k, sid in enumerate(df.subject_id.unique()[:2]):
        gt = ((z - 12) ** 2 + (y - 14) ** 2 + (x - 10) ** 2) < 16 + 4 * k
        _write_nifti(root / f"{sid}_image.nii.gz", (100 - 40 * gt + z).astype(np.float32))
        _write_nifti(root / f"{sid}_gt.nii.gz", gt.astype(np.uint8))
        _write_nifti(root / "original" / f"{sid}_pred.nii.gz", gt.astype(np.uint8))
        shifted = np.roll(gt, 2, axis=0).astype(np.uint8)
        _write_nifti(root / "crude_x2" / f"{sid}_pred.nii.gz", shifted)
    return df, root


def test_overlay_finds_lesionres_test_output_and_atlas_ground_truth(tmp_path):
    """Predictions as ``lesionres test`` writes them; ground truth in an ATLAS-layout dataset."""
    df = paired_table(3, conditions=("original", "linear_x2"), shifts=(0, 0), prefix="sub-r001s00")
    sid = df.subject_id.iloc[0]
    gt = np.zeros((16, 18, 12), np.uint8)
    gt[6:10, 7:11, 4:8] = 1
    anat = tmp_path / "ATLAS_2" / "Training" / "R001" / sid / "ses-1" / "anat"
    stem = f"{sid}_ses-1_space-MNI152NLin2009aSym"
    _write_nifti(anat / f"{stem}_T1w.nii.gz", gt.astype(np.float32) * -30 + 100)
    _write_nifti(anat / f"{stem}_label-L_desc-T1lesion_mask.nii.gz", gt)
    preds = tmp_path / "run" / "predictions"
    for cond in ("original", "linear_x2"):
        _write_nifti(preds / cond / f"{sid}_desc-lesion_mask.nii.gz", gt)
        _write_nifti(preds / cond / f"{sid}_desc-lesion_probseg.nii.gz", gt.astype(np.float32))
    assert find_prediction_examples(preds, df) == []  # no ground truth beside the predictions
    (ex,) = find_prediction_examples(preds, df, data_root=tmp_path / "ATLAS_2")
    assert ex["gt"].name.endswith("T1lesion_mask.nii.gz")
    assert ex["image"].name.endswith("_T1w.nii.gz")
    assert {k: v.name for k, v in ex["preds"].items()} == {
        c: f"{sid}_desc-lesion_mask.nii.gz" for c in ("original", "linear_x2")
    }


def test_overlay_figure_and_discovery(predictions, tmp_path):
    df, root = predictions
    examples = find_prediction_examples(root, df)
    assert len(examples) == 1 and set(examples[0]["preds"]) == {"original", "crude_x2"}
    ex = examples[0]
    fig = overlay_figure(ex["image"], ex["gt"], ex["preds"], out=tmp_path / "ov")
    assert (tmp_path / "ov.png").exists() and (tmp_path / "ov.pdf").exists()
    titles = [ax.get_title() for ax in fig.axes]
    assert any("Dice 1.000" in t for t in titles)
    bad = root / "bad_pred.nii.gz"
    _write_nifti(bad, np.zeros((5, 5, 5), np.uint8))
    with pytest.raises(LesionresError, match="grid"):
        overlay_figure(None, ex["gt"], {"x": bad})
    with pytest.raises(LesionresError, match="does not exist"):
        find_prediction_examples(tmp_path / "nope", df)


# --------------------------------------------------------------------------- report and CLI


def _table_csv(tmp_path: Path, df: pd.DataFrame) -> Path:
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    return path


def test_analyze_writes_everything(tmp_path, predictions):
    df, root = predictions
    full = with_other_cohort(paired_table(20)).copy()
    full.loc[3, ["dice", "error"]] = [np.nan, "RuntimeError: CUDA out of memory"]
    full.loc[5, "dice"] = np.nan
    full = pd.concat([full, full.iloc[[7]]])  # an exact duplicate (DDP padding)
    csv = _table_csv(tmp_path, full)
    t0 = time.perf_counter()
    report = analyze(csv, tmp_path / "out", n_boot=100, predictions_dir=root)
    assert time.perf_counter() - t0 < 60
    out = tmp_path / "out"
    for name in ("summary", "comparisons", "stratified", "friedman"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{name}.{ext}").exists(), f"{name}.{ext}"
    assert (out / "friedman.json").exists() and (out / "analysis.json").exists()
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"bars.png", "bars.pdf", "distribution_dice.png", "volume_agreement.png"} <= figs
    assert "overlay_sub-000.png" in figs or "overlay_sub-001.png" in figs
    text = report.read_text()
    for phrase in (
        "Mann-Whitney", "Wilcoxon", "holm", "cohort", "lesionres.metrics", "failed row",
        "CUDA out of memory", "exact duplicate", "rank-biserial", "Hodges-Lehmann", "## Methods",
        "positive means condition_a scores higher",
    ):  # fmt: skip
        assert phrase in text, phrase
    comp = pd.read_csv(out / "comparisons.csv")
    assert comp["n_dropped_failed"].sum() > 0 and comp["n_dropped_nan"].sum() > 0
    assert not [p for p in out.rglob(".*")]  # atomic writes left no temporary files


def test_analyze_with_models_writes_model_comparisons(tmp_path):
    a = paired_table(12, round_to=None).assign(model="a")
    b = a.assign(model="b")
    rng = np.random.default_rng(1)
    b["dice"] += rng.normal(0, 0.01, len(b)) + np.where(b["condition"] == "linear_x2", 0.2, 0)
    csv = _table_csv(tmp_path, pd.concat([a, b]))
    report = analyze(csv, tmp_path / "out", n_boot=200, make_figures=False)
    mc = pd.read_csv(tmp_path / "out" / "model_comparisons.csv")
    assert len(mc) == 3 and set(mc["condition"]) == {"original", "crude_x2", "linear_x2"}
    text = report.read_text()
    section = text[text.index("## Models compared") : text.index("## Pairwise comparisons")]
    # each model's mean per condition with its bootstrap CI and n
    mean_b = b.loc[b["condition"] == "linear_x2", "dice"].mean()
    row = next(line for line in section.splitlines() if line.startswith("| linear_x2"))
    cell = row.split("|")[3].strip()
    low, high = (float(v) for v in cell[cell.index("[") + 1 : cell.index("]")].split(","))
    assert cell.startswith(f"{mean_b:.3g}") and low < mean_b < high and cell.endswith("(12)")
    # the plain-language verdicts: 12 scans all 0.2 higher is significant after Holm; noise is not
    assert re.search(r"`linear_x2`: \*\*b higher than a\*\* by 0\.(19|2)", section)
    assert "`original`: no significant difference between a and b" in section


def test_model_verdict_follows_the_test_not_the_mean(tmp_path):
    # b is better on 34 of 40 scans (by about 0.02) and far worse on 6 (by 0.45): the mean says
    # a is higher by 0.05, the signed-rank test (median and r) says b is higher
    a = paired_table(40, round_to=None, conditions=("original",), shifts=(0.0,)).assign(model="a")
    b = a.assign(model="b")
    better = 0.02 + np.linspace(-0.004, 0.004, 34)  # distinct: no ties
    b["dice"] = a["dice"].to_numpy() + np.r_[better, -0.45 - np.linspace(0, 0.01, 6)]
    csv = _table_csv(tmp_path, pd.concat([a, b]))
    report = analyze(csv, tmp_path / "out", n_boot=500, make_figures=False)
    mc = pd.read_csv(tmp_path / "out" / "model_comparisons.csv").iloc[0]
    assert mc["mean_diff"] > 0.04 and mc["median_diff"] < 0 and mc["effect_size"] < -0.4
    assert mc["significant"] and mc["ci_high"] < 0
    text = report.read_text()
    section = text[text.index("## Models compared") : text.index("## Pairwise comparisons")]
    verdict = next(line for line in section.splitlines() if line.startswith("- `original`"))
    assert "**b higher than a**" in verdict and "a higher than b" not in verdict
    assert re.search(r"Hodges-Lehmann a - b = -0\.0(19|2)", verdict)
    assert "the mean difference points the other way (a - b = +0.05" in verdict
    # the same scans as two conditions of one model: the comparisons section says it too
    conds = pd.concat([a, b.assign(condition="crude_x2", method="crude")]).drop(columns="model")
    text = analyze(_table_csv(tmp_path, conds), tmp_path / "c", n_boot=0, make_figures=False)
    care = text.read_text().split("Rows to read with care:")[1]
    assert "the test finds `crude_x2` higher; the mean difference points the other way" in care


def _two_empty_predictions() -> pd.DataFrame:
    """9 scans, two models; under linear_x4 model b predicts nothing on 2 scans (HD95 NaN)."""
    a = paired_table(9, conditions=("original", "linear_x4"), shifts=(0.0, -0.2)).assign(model="a")
    a["precision"] = a["dice"]
    b = a.assign(model="b")
    empty = b.index[b["condition"] == "linear_x4"][:2]
    b.loc[empty, ["dice", "precision", "hd95_mm", "pred_volume_ml"]] = [0.0, np.nan, np.nan, 0.0]
    return pd.concat([a, b], ignore_index=True)


def test_tables_say_how_many_scans_each_mean_is_over(tmp_path):
    df = _two_empty_predictions()
    csv = _table_csv(tmp_path, df)
    report = analyze(csv, tmp_path / "out", metric="hd95_mm", n_boot=100, make_figures=False)
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    row = summary.set_index(["model", "condition", "metric"]).loc[("b", "linear_x4", "hd95_mm")]
    assert (row["n"], row["n_missing"], row["missing_why"]) == (7, 2, "empty prediction")
    assert "missing_why" in (tmp_path / "out" / "summary.md").read_text()
    text = report.read_text()
    model_b = text[text.index("## Summary — model b") : text.index("## Models compared")]
    assert "- linear_x4, HD95 (mm): mean over 7 of 9 scans; 2 undefined (empty prediction)" in (
        model_b
    )
    row = next(line for line in model_b.splitlines() if line.startswith("| linear_x4"))
    hd95 = row.split("|")[4]  # condition, scans, Dice, HD95 (mm)
    assert hd95.strip().endswith(", n=7") and re.match(r"\| linear_x4 \|\s+9 \|", row)
    model_a = text[text.index("## Summary — model a") : text.index("## Summary — model b")]
    assert "Means over fewer scans" not in model_a and ", n=" not in model_a
    models = text[text.index("## Models compared") : text.index("## Pairwise comparisons")]
    row = next(line for line in models.splitlines() if line.startswith("| linear_x4"))
    cell_a, cell_b = (c.strip() for c in row.split("|")[2:4])
    assert cell_a.endswith("(9)") and cell_b.endswith("(7 of 9)")


def test_bar_chart_marks_means_over_fewer_scans():
    df = _two_empty_predictions()
    fig = plot_metric_bars(df, model="b", n_boot=50)
    assert [t.get_text() for t in fig.axes[0].texts] == ["n=7/9"]  # precision under linear_x4


def test_coverage_notes_read_a_results_csv_as_strings():
    # lesionres.results keeps rows as the CSV's strings ("" for an undefined value)
    rows = [
        {"subject_id": f"s{i}", "condition": "acq_6mm", "hd95_mm": "" if i < 2 else "4.5",
         "pred_volume_ml": "0.0" if i < 2 else "3.1", "gt_volume_ml": "2.0", "error": ""}
        for i in range(9)
    ] + [{"subject_id": "s9", "condition": "acq_6mm", "hd95_mm": "", "error": "OOM"}]  # fmt: skip
    summary = summarize(pd.DataFrame(rows), ["hd95_mm"])
    assert coverage_notes(summary, {"hd95_mm": "HD95 mm"}) == [
        "acq_6mm, HD95 mm: mean over 7 of 9 scans; 2 undefined (empty prediction)"
    ]


def test_analyze_main_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(LesionresError, match="nope.csv"):
        analyze_main([str(missing), "--out", str(tmp_path / "o")])
    csv = _table_csv(tmp_path, paired_table(5).drop(columns="dice"))
    with pytest.raises(LesionresError, match=r"results.csv.*dice"):
        analyze_main([str(csv), "--out", str(tmp_path / "o")])
    partial = paired_table(6)
    partial = partial[~((partial.condition == "crude_x2") & (partial.subject_id == "sub-000"))]
    csv = _table_csv(tmp_path, partial)
    with pytest.raises(LesionresError, match=r"results.csv.*--partial intersect"):
        analyze_main([str(csv), "--out", str(tmp_path / "o"), "--no-figures"])
    flags = ["--no-figures", "--partial", "intersect", "--correction", "fdr_bh", "--n-boot", "10"]
    assert analyze_main([str(csv), "--out", str(tmp_path / "o"), *flags]) == 0
    assert "fdr_bh" in (tmp_path / "o" / "report.md").read_text()


def test_module_entry_prints_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lesionres.analysis", str(tmp_path / "missing.csv"),
         "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.csv" in proc.stderr


def test_lesionres_cli_dispatches_analyze(tmp_path, capsys):
    from lesionres.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2 and "absent.csv" in capsys.readouterr().err
    csv = _table_csv(tmp_path, paired_table(6))
    assert main(["analyze", str(csv), "--out", str(tmp_path / "o"), "--no-figures"]) == 0
    assert (tmp_path / "o" / "report.md").exists()


@pytest.mark.slow
def test_analyze_ten_conditions_of_200_scans_under_a_minute(tmp_path):
    conds = [("original", "original", "", "1x1x1", "atlas", 0.0)]
    conds += [(f"linear_x{k}", "linear", str(k), "", "atlas", -0.1 * k) for k in (2, 3, 4)]
    conds += [(f"acq_{k}mm", "acquisition", "", f"1x1x{k}", "atlas", -0.05 * k) for k in (3, 5, 7)]
    conds += [(f"crude_x{k}", "crude", str(k), "", "atlas", 0.0) for k in (2, 3)]
    conds += [("isles22", "natural", "", "2x2x2", "isles22", -0.3)]
    df = synthetic_results(200, 150, conditions=conds)
    t0 = time.perf_counter()
    analyze(_table_csv(tmp_path, df), tmp_path / "out")
    assert time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------- notebook


def test_notebook_executes_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    csv = _table_csv(tmp_path, synthetic_results(n_subjects=12, n_other_cohort=8))
    monkeypatch.setenv("LESIONRES_RESULTS", str(csv))
    monkeypatch.setenv("LESIONRES_REPORT_DIR", str(tmp_path / "nb_report"))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(REPO / "notebooks" / "resolution_study.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    assert (tmp_path / "nb_report" / "report.md").exists()
    assert not any("SYNTHETIC" in str(o.get("data", {})) for o in outputs)  # it read our table


def test_report_states_what_each_cohort_put_in_front_of_the_model(tmp_path):
    atlas = paired_table(12, conditions=("original", "crude_x2"), shifts=(0, 0))
    atlas = atlas.assign(modality="T1w", space="MNI152NLin2009aSym", spacing_mm="1x1x1")
    real = with_other_cohort(atlas).fillna({"modality": "dwi", "space": "scanner"})
    real.loc[real["dataset"] == "isles22", "spacing_mm"] = "2x2x2"
    real.to_csv(tmp_path / "real.csv", index=False)
    text = analyze(tmp_path / "real.csv", tmp_path / "real", n_boot=0, make_figures=False)
    text = text.read_text()
    assert "modality T1w; space MNI152NLin2009aSym; voxel size 1x1x1 mm" in text
    assert "modality dwi; space scanner; voxel size 2x2x2 mm" in text
    assert "**modality shift** (T1w -> dwi)" in text and "**space difference**" in text
    assert "(N-1)/2 voxels" in text and "scored against the **original** ground truth" in text
    # the built-in ISLES-like cohort is T1-like: no modality shift may be claimed for it
    synthetic = with_other_cohort(atlas).fillna({"space": "scanner-like"})
    synthetic["modality"] = "T1w-like (synthetic)"
    synthetic.to_csv(tmp_path / "synthetic.csv", index=False)
    text = analyze(tmp_path / "synthetic.csv", tmp_path / "syn", n_boot=0, make_figures=False)
    text = text.read_text()
    assert "modality shift" not in text and "has no T1w" not in text
    assert "**space difference**" in text


def test_a_sweep_is_compared_against_the_reference_not_every_pair(tmp_path):
    degraded = [f"{m}_x{f}" for m in ("linear", "crude") for f in (2, 3, 4)]
    conditions = ("original", *degraded)
    df = paired_table(12, conditions=conditions, shifts=tuple(-0.03 * i for i in range(7)))
    df.to_csv(tmp_path / "sweep.csv", index=False)
    report = analyze(tmp_path / "sweep.csv", tmp_path / "auto", n_boot=0, make_figures=False)
    comparisons = pd.read_csv(tmp_path / "auto" / "comparisons.csv")
    assert len(comparisons) == 6 and set(comparisons["condition_a"]) == {"original"}
    assert "each condition against `original`" in report.read_text()
    analyze(tmp_path / "sweep.csv", tmp_path / "all", n_boot=0, make_figures=False, pairs="all")
    assert len(pd.read_csv(tmp_path / "all" / "comparisons.csv")) == 21
    small = df[df["condition"].isin(conditions[:4])]
    small.to_csv(tmp_path / "small.csv", index=False)
    analyze(tmp_path / "small.csv", tmp_path / "small", n_boot=0, make_figures=False)
    assert len(pd.read_csv(tmp_path / "small" / "comparisons.csv")) == 6  # every pair of 4
