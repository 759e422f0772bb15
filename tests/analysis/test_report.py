"""Tests of report.md and the analyze command line (lesionres.analysis.report)."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest
from analysis_tables import REPO, paired_table, table_csv, two_empty_predictions, with_other_cohort

from lesionres.analysis import analyze
from lesionres.commands.analysis import analyze_main
from lesionres.errors import LesionresError


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


def test_tables_say_how_many_scans_each_mean_is_over(tmp_path):
    df = two_empty_predictions()
    csv = table_csv(tmp_path, df)
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


def test_analyze_main_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(LesionresError, match="nope.csv"):
        analyze_main([str(missing), "--out", str(tmp_path / "o")])
    csv = table_csv(tmp_path, paired_table(5).drop(columns="dice"))
    with pytest.raises(LesionresError, match=r"results.csv.*dice"):
        analyze_main([str(csv), "--out", str(tmp_path / "o")])
    partial = paired_table(6)
    partial = partial[~((partial.condition == "crude_x2") & (partial.subject_id == "sub-000"))]
    csv = table_csv(tmp_path, partial)
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
    csv = table_csv(tmp_path, paired_table(6))
    assert main(["analyze", str(csv), "--out", str(tmp_path / "o"), "--no-figures"]) == 0
    assert (tmp_path / "o" / "report.md").exists()


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
    # a cohort of the same contrast on other grids: no modality shift may be claimed for it
    synthetic = with_other_cohort(atlas).fillna({"space": "scanner-like"})
    synthetic["modality"] = "T1w-like (synthetic)"
    synthetic.to_csv(tmp_path / "synthetic.csv", index=False)
    text = analyze(tmp_path / "synthetic.csv", tmp_path / "syn", n_boot=0, make_figures=False)
    text = text.read_text()
    assert "modality shift" not in text and "has no T1w" not in text
    assert "**space difference**" in text
    # the built-in ISLES-like cohort is DWI-like: the shift is stated, as for real ISLES
    isles = synthetic["dataset"] != synthetic["dataset"].iloc[0]
    synthetic.loc[isles, "modality"] = "dwi-like (synthetic)"
    synthetic.to_csv(tmp_path / "synthetic.csv", index=False)
    text = analyze(tmp_path / "synthetic.csv", tmp_path / "syn2", n_boot=0, make_figures=False)
    assert "**modality shift** (T1w-like (synthetic) -> dwi-like (synthetic))" in text.read_text()
