"""The command line end to end on tiny data: fit, TensorBoard contents, test, resume, errors."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from fakes import write_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import lesionres
from lesionres.cli import main
from lesionres.metrics import METRIC_COLUMNS
from lesionres.results import RESULT_COLUMNS


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_help_lists_commands_and_configs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("fit", "test", "synth", "check", "score", "analyze", "study", "paper.yaml"):
        assert word in out


@pytest.mark.parametrize(
    "name", ["default.yaml", "paper.yaml", "isles.yaml", "resolution-tolerance.yaml"]
)
def test_shipped_configs_parse(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", name, "--print_config"])
    assert exit_.value.code == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["lr"] > 0


def test_fit_fast_dev_run(atlas_run):
    config, _ = atlas_run
    main(["fit", "--config", str(config), "--trainer.fast_dev_run", "true"])


def test_fit_logs_scalars_and_images_then_test_scores_every_condition(atlas_run, capsys):
    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    out = capsys.readouterr().out
    assert "Best validation Dice:" in out
    run = tmp / "logs" / "tiny" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "split.json").exists() and (run / "config.yaml").exists()
    events = EventAccumulator(str(run))
    events.Reload()
    for tag in ("train_loss", "val_loss", "val_dice", "val_specificity", "train_dice", "lr"):
        assert tag in events.Tags()["scalars"], tag
    assert "val_overlay" in events.Tags()["images"]

    results = tmp / "results.csv"
    args = [
        "test",
        "--config",
        str(config),
        "--ckpt_path",
        str(run / "checkpoints" / "last.ckpt"),
        "--results.path",
        str(results),
    ]
    main(args)
    rows = _rows(results)
    assert list(rows[0]) == list(RESULT_COLUMNS)
    conditions = {r["condition"] for r in rows}
    assert conditions == {"original", "crude_x2", "linear_x2", "acquisition_1x1x5mm"}
    assert len(rows) == 4 * 2  # 4 conditions x 2 test subjects (one row each)
    assert all(r["error"] == "" for r in rows)
    for row in rows:
        assert int(row["tp"]) + int(row["fp"]) + int(row["fn"]) + int(row["tn"]) == 16**3
        assert all(
            row[c] not in ("", "inf")
            for c in METRIC_COLUMNS
            if c not in ("hd95_mm", "assd_mm", "rel_volume_diff")
        )
    # a rerun skips what is written and leaves the table identical
    before = results.read_text()
    main(args)
    assert "Resuming" in capsys.readouterr().out
    assert results.read_text() == before


def test_interrupted_test_resumes_to_the_same_table(atlas_run):
    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    full, partial = tmp / "full.csv", tmp / "partial.csv"
    base = ["test", "--config", str(config), "--ckpt_path", str(ckpt)]
    main([*base, "--results.path", str(full)])
    # an interrupted run: the first 3 rows written, the 4th cut off mid-line
    lines = full.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:4]) + lines[4][:25])
    partial.with_suffix(".json").write_text(full.with_suffix(".json").read_text())
    main([*base, "--results.path", str(partial)])
    assert partial.read_text() == full.read_text()


def test_test_records_its_settings_and_refuses_to_mix_them(atlas_run, capsys):
    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    table = tmp / "results.csv"
    base = ["test", "--config", str(config), "--ckpt_path", str(ckpt), "--results.path", str(table)]
    main(base)
    settings = json.loads(table.with_suffix(".json").read_text())
    sha256 = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert settings["models"][""]["checkpoint_sha256"] == sha256
    assert settings["conventions"]["lesionres_version"] == lesionres.__version__
    rows = table.read_text()
    for change, setting in (("--model.threshold=0.3", "threshold"), ("--model.hd95=max", "hd95")):
        with pytest.raises(SystemExit) as stop:  # was: the rows already there silently skipped
            main([*base, change])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and f"made with {setting}" in err and "Traceback" not in err
    assert table.read_text() == rows


def test_poly_schedule_decays_the_learning_rate_over_the_run(atlas_run):
    config, tmp = atlas_run
    main(
        ["fit", "--config", str(config), "--trainer.max_epochs", "3", "--model.lr_schedule", "poly"]
    )
    events = EventAccumulator(str(tmp / "logs" / "tiny" / "version_0"))
    events.Reload()
    lrs = [e.value for e in events.Scalars("lr")]
    assert len(lrs) == 3 and lrs[0] > lrs[1] > lrs[2] >= 0  # 0 after the very last step
    assert lrs[0] < 0.01  # the first epoch's end is already past the first step (config lr 0.01)


def test_missing_data_root_is_one_clear_line(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", tmp_path / "nowhere", tmp_path / "logs")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "nowhere" in err[-1]


def test_unknown_command_and_condition_are_clear(atlas_run, capsys):
    config, _ = atlas_run
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(
            [
                "test",
                "--config",
                str(config),
                "--data.conditions",
                '[{"method": "cubic", "factor": [2]}]',
            ]
        )
    assert "cubic" in capsys.readouterr().err


def test_sigterm_during_fit_saves_last_checkpoint_and_resume_finishes(atlas_run):
    config, tmp = atlas_run
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "lesionres",
        "fit",
        "--config",
        str(config),
        "--trainer.max_epochs",
        "10000",
    ]
    process = subprocess.Popen(
        command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    events = tmp / "logs" / "tiny" / "version_0"
    deadline = time.time() + 120
    # after the first epoch's checkpoint, Lightning's SIGTERM handler is surely in place
    while time.time() < deadline and not any(events.glob("checkpoints/best-*.ckpt")):
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    last = events / "checkpoints" / "last.ckpt"
    assert last.exists(), output
    import torch

    epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    main(
        [
            "fit",
            "--config",
            str(config),
            "--ckpt_path",
            "last",
            "--trainer.max_epochs",
            str(epoch + 2),
        ]
    )
    assert (tmp / "logs" / "tiny" / "version_1" / "checkpoints" / "last.ckpt").exists()


def test_bad_checkpoints_are_one_clear_line(atlas_run, capsys):
    import torch

    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    good = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    (tmp / "garbage.ckpt").write_text("not a checkpoint")
    checkpoint = torch.load(good, weights_only=False)
    checkpoint["hyper_parameters"]["base_channels"] = 4  # architecture no longer matches
    torch.save(checkpoint, tmp / "reshaped.ckpt")
    checkpoint = torch.load(good, weights_only=False)
    checkpoint["state_dict"].pop(next(iter(checkpoint["state_dict"])))
    torch.save(checkpoint, tmp / "incomplete.ckpt")
    checkpoint = torch.load(good, weights_only=False)
    checkpoint["payload"] = Path("anything")  # not a tensor or plain data: refused unpickled
    torch.save(checkpoint, tmp / "unsafe.ckpt")
    expected = {
        "missing.ckpt": "checkpoint file not found",
        "garbage.ckpt": "not a PyTorch checkpoint",
        "reshaped.ckpt": "differently shaped weights",
        "incomplete.ckpt": "1 missing",
        "unsafe.ckpt": "weights_only=True",
    }
    capsys.readouterr()
    for name, message in expected.items():
        with pytest.raises(SystemExit) as exit_:
            main(["test", "--config", str(config), "--ckpt_path", str(tmp / name)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"error: {tmp / name}: ") and message in err[-1], err[-3:]


def test_init_weights_starts_fit_from_a_checkpoint(atlas_run, capsys):
    import torch

    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    trained = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    frozen = ["--config", str(config), "--model.lr", "0"]  # lr 0: the weights cannot move
    main(["fit", *frozen, "--model.init_weights", str(trained)])
    main(["fit", *frozen])

    def weights(version: int) -> dict:
        path = tmp / "logs" / "tiny" / f"version_{version}" / "checkpoints" / "last.ckpt"
        return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]

    start, started_from, fresh = weights(0), weights(1), weights(2)
    assert all(torch.equal(start[k], started_from[k]) for k in start)
    assert not all(torch.equal(start[k], fresh[k]) for k in start)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config), "--model.init_weights", str(tmp / "none.ckpt")])
    assert exit_.value.code == 2
    assert "none.ckpt: checkpoint file not found" in capsys.readouterr().err


def test_last_checkpoint_is_the_last_epoch_not_the_best(atlas_run):
    import torch

    config, tmp = atlas_run
    # lr 0: validation Dice never improves after epoch 0, so only epoch 0 is "best"
    main(["fit", "--config", str(config), "--model.lr", "0", "--trainer.max_epochs", "3"])
    folder = tmp / "logs" / "tiny" / "version_0" / "checkpoints"
    (best,) = folder.glob("best-*.ckpt")
    last = folder / "last.ckpt"
    epoch = {p.name: torch.load(p, weights_only=False)["epoch"] for p in (best, last)}
    assert epoch == {best.name: 0, "last.ckpt": 2}


def test_external_cohorts_honour_binarize_and_record_modality(atlas_run):
    import nibabel as nib
    from fakes import make_folder_tree

    config, tmp = atlas_run
    main(["fit", "--config", str(config)])
    ckpt = tmp / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    for subject in make_folder_tree(tmp / "ext", n=2):  # masks coded 0/255
        image = nib.load(subject["mask"])
        data = (np.asarray(image.dataobj) > 0).astype(np.uint8) * 255
        nib.save(nib.Nifti1Image(data, image.affine), subject["mask"])
    table = tmp / "results.csv"
    external = f"[{{name: ext, root: {tmp / 'ext'}, dataset: folder, modality: flair}}]"
    main([
        "test", "--config", str(config), "--ckpt_path", str(ckpt), "--results.path", str(table),
        "--data.condition_preset", "none", "--data.binarize", "nonzero",
        "--data.external", external,
    ])  # fmt: skip
    rows = [r for r in _rows(table) if r["condition"] == "ext"]
    assert len(rows) == 2 and not any(r["error"] for r in rows)  # was: not a 0/1 mask
    assert {r["modality"] for r in rows} == {"flair"}
    atlas = [r for r in _rows(table) if r["condition"] != "ext"]
    assert {(r["modality"], r["space"]) for r in atlas} == {("T1w", "MNI152NLin2009aSym")}


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "inference"),
    [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")],
)
def test_default_precision_follows_the_hardware(monkeypatch, avx512_bf16, amx, inference):
    import torch

    from lesionres.cli import _resolve_precision, default_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert default_precision("fit") == "32-true"  # bf16 training cost accuracy on the CPU
    for command in ("validate", "test", "predict"):
        assert default_precision(command) == inference
    assert _resolve_precision(["test", "--trainer.precision", "auto"])[2] == inference
    fit = _resolve_precision(["fit", "--trainer.precision=auto"])
    assert fit[1] == "--trainer.precision=32-true"
    assert _resolve_precision(["test", "--trainer.precision", "16-mixed"])[2] == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_precision("fit") == "bf16-mixed"


def test_default_config_resolves_precision_and_runs_the_sweep(capsys):
    from lesionres.cli import default_precision

    with pytest.raises(SystemExit):
        main(["test", "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["trainer"]["precision"] == default_precision("test")
    assert config["data"]["condition_preset"] == "sweep"
    subjects = config["data"]["synthetic_subjects"]
    assert round(subjects * config["data"]["test_fraction"]) >= 30
