"""`study`: fit, test under every condition and analyze into one run folder; a rerun resumes."""

from __future__ import annotations

import csv

from lesionres.cli import main


def test_study_writes_checkpoints_results_and_report_then_resumes(atlas_run, capsys):
    config, tmp = atlas_run
    out = tmp / "study"
    args = ["study", "--out", str(out), "--config", str(config), "--data.condition_preset", "study"]
    assert main(args) == 0
    assert (out / "fit" / "checkpoints" / "last.ckpt").exists()
    assert list((out / "fit" / "checkpoints").glob("best-*.ckpt"))
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # atlas_run: 6 subjects, of which the default split puts 2 in test; 4 study conditions
    tested = {r["subject_id"] for r in rows}
    assert len(rows) == 4 * len(tested) and tested
    assert {r["condition"] for r in rows} == {"original", "crude_x2", "linear_x2", "acquisition_1x1x5mm"}
    report = (out / "report" / "report.md").read_text()
    assert "Wilcoxon" in report
    assert list((out / "predictions").rglob("*.nii.gz"))

    capsys.readouterr()
    assert main(args) == 0  # rerun: the fit is reused and no row is scored twice
    assert "Reusing the finished fit" in capsys.readouterr().out
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
