"""Tests of the analyze pipeline (lesionres.analysis.pipeline)."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pandas as pd
import pytest
from analysis_tables import REPO, paired_table, table_csv, with_other_cohort

from lesionres.analysis import (
    analyze,
    synthetic_results,
)
from lesionres.commands.analysis import study_main
from lesionres.errors import LesionresError


def test_study_passes_margin_and_reference_to_analyze(tmp_path, monkeypatch):
    import lesionres.analysis
    import lesionres.study as study

    seen = {}
    monkeypatch.setattr(study, "_fit", lambda *a, **k: tmp_path / "best.ckpt")
    monkeypatch.setattr(study, "_test", lambda *a, **k: None)
    monkeypatch.setattr(lesionres.analysis, "analyze", lambda *a, **k: seen.update(k) or "r.md")
    margins = ["--margin", "dice=0.03", "hd95_mm=2", "--reference", "linear_x2"]
    assert study_main(["--out", str(tmp_path), *margins]) == 0
    assert seen["margins"] == ["dice=0.03", "hd95_mm=2"] and seen["reference"] == "linear_x2"
    with pytest.raises(LesionresError, match="--margin"):
        study_main(["--out", str(tmp_path), "--margin", "dice=-1"])


def test_analyze_writes_everything(tmp_path, predictions):
    df, root = predictions
    full = with_other_cohort(paired_table(20)).copy()
    full.loc[3, ["dice", "error"]] = [np.nan, "RuntimeError: CUDA out of memory"]
    full.loc[5, "dice"] = np.nan
    full = pd.concat([full, full.iloc[[7]]])  # an exact duplicate (DDP padding)
    csv = table_csv(tmp_path, full)
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
    csv = table_csv(tmp_path, pd.concat([a, b]))
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


@pytest.mark.slow
def test_analyze_ten_conditions_of_200_scans_under_a_minute(tmp_path):
    conds = [("original", "original", "", "1x1x1", "atlas", 0.0)]
    conds += [(f"linear_x{k}", "linear", str(k), "", "atlas", -0.1 * k) for k in (2, 3, 4)]
    conds += [(f"acq_{k}mm", "acquisition", "", f"1x1x{k}", "atlas", -0.05 * k) for k in (3, 5, 7)]
    conds += [(f"crude_x{k}", "crude", str(k), "", "atlas", 0.0) for k in (2, 3)]
    conds += [("isles22", "natural", "", "2x2x2", "isles22", -0.3)]
    df = synthetic_results(200, 150, conditions=conds)
    t0 = time.perf_counter()
    analyze(table_csv(tmp_path, df), tmp_path / "out")
    assert time.perf_counter() - t0 < 60


def test_notebook_executes_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    csv = table_csv(tmp_path, synthetic_results(n_subjects=12, n_other_cohort=8))
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
