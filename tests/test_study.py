"""`study`: fit, test under every condition and analyze into one run folder; a rerun resumes."""

from __future__ import annotations

import csv

import pytest
import yaml

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
    conditions = {"original", "crude_x2", "linear_x2", "acquisition_1x1x5mm"}
    assert {r["condition"] for r in rows} == conditions
    report = (out / "report" / "report.md").read_text()
    assert "Wilcoxon" in report
    assert list((out / "predictions").rglob("*.nii.gz"))

    capsys.readouterr()
    assert main(args) == 0  # rerun: the fit is reused and no row is scored twice
    assert "Reusing the finished fit" in capsys.readouterr().out
    with (out / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_study_compares_models_trained_with_and_without_resolution_augmentation(atlas_run):
    config, tmp = atlas_run
    out = tmp / "models"
    main(
        [
            "study",
            "--out",
            str(out),
            "--models",
            "none,synthseg",
            "--config",
            str(config),
            "--data.condition_preset",
            "none",
        ]
    )
    assert (out / "fit-none" / "done").exists() and (out / "fit-synthseg" / "done").exists()
    saved = (out / "fit-synthseg" / "config.yaml").read_text()
    assert "resolution_augmentation: synthseg" in saved
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_model = {m: {r["subject_id"] for r in rows if r["model"] == m} for m in ("none", "synthseg")}
    assert by_model["none"] == by_model["synthseg"] and len(rows) == 2 * len(by_model["none"])
    comparisons = (out / "report" / "model_comparisons.csv").read_text().splitlines()
    assert comparisons[0].startswith("condition,model_a,model_b") and len(comparisons) == 2


def test_study_finetunes_one_shared_model_per_augmentation(atlas_run):
    config, tmp = atlas_run
    out = tmp / "finetune"
    main(["study", "--out", str(out), "--models", "none,sweep", "--finetune", "1", "--finetune-lr",
          "0.0005", "--checkpoint", "last", "--config", str(config),
          "--data.condition_preset", "none"])  # fmt: skip
    shared = next((out / "fit-shared" / "checkpoints").glob("best-*.ckpt"))
    for model in ("none", "sweep"):
        saved = yaml.safe_load((out / f"fit-{model}" / "config.yaml").read_text())
        assert saved["model"]["init_weights"] == str(shared)
        assert saved["model"]["lr"] == 0.0005 and saved["trainer"]["max_epochs"] == 1
        assert saved["data"]["resolution_augmentation"] == model
        tested = yaml.safe_load((out / f"test-{model}" / "config.yaml").read_text())
        assert tested["ckpt_path"] == str(out / f"fit-{model}" / "checkpoints" / "last.ckpt")
    shared_config = yaml.safe_load((out / "fit-shared" / "config.yaml").read_text())
    assert shared_config["data"]["resolution_augmentation"] == "none"
    assert shared_config["model"]["init_weights"] is None
    with (out / "results.csv").open() as handle:
        assert {r["model"] for r in csv.DictReader(handle)} == {"none", "sweep"}


def test_study_rejects_unknown_models(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["study", "--out", str(tmp_path), "--models", "none,bogus"])
    assert exit_.value.code == 2
    assert "--models" in capsys.readouterr().err
