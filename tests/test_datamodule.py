"""The data module owns its model grid (saved in checkpoints, restored from them, older
checkpoints read too) and checks its data in ``setup``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from fakes import make_atlas_tree, truncate_file, write_volume

from lesionres.data.datamodule import LesionDataModule, checkpoint_grid, upgrade_checkpoint
from lesionres.data.grid import ModelGrid
from lesionres.errors import LesionresError
from lesionres.module import LesionSegmenter

GRID = ModelGrid((1.0, 1.0, 1.0), (16, 16, 16))


def _datamodule(root: Path, **overrides) -> LesionDataModule:
    settings = {
        "dataset": "atlas",
        "root": str(root / "ATLAS_2"),
        "target_shape": (16, 16, 16),
        "cache_dir": None,
        "val_fraction": 0.34,
        "test_fraction": 0.34,
        "condition_preset": "none",
        **overrides,
    }
    return LesionDataModule(**settings)


def _trainer(root: Path, **overrides) -> pl.Trainer:
    settings = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
        **overrides,
    }
    return pl.Trainer(**settings)


def test_fit_saves_the_grid_in_the_data_modules_state_and_test_restores_it(tmp_path):
    make_atlas_tree(tmp_path, n=6)
    datamodule = _datamodule(tmp_path)
    trainer = _trainer(tmp_path, max_steps=1, limit_val_batches=0)
    trainer.fit(LesionSegmenter(base_channels=2, depth=2), datamodule)
    assert datamodule.grid == GRID
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    checkpoint = torch.load(ckpt, weights_only=True)
    assert checkpoint["LesionDataModule"] == {"grid": GRID.to_dict()}
    assert "model_grid" not in checkpoint  # the module keeps no copy

    other = _datamodule(tmp_path, target_shape=(8, 8, 8))  # a run configured otherwise
    _trainer(tmp_path).test(LesionSegmenter(base_channels=2, depth=2), other, ckpt_path=ckpt)
    assert other.grid == GRID  # the model is tested on the grid it learnt on


def test_state_dict_round_trip_and_older_checkpoints():
    datamodule = LesionDataModule()
    assert datamodule.state_dict() == {}  # no grid before setup: nothing to save
    datamodule.grid = GRID
    restored = LesionDataModule()
    restored.load_state_dict(datamodule.state_dict())
    assert restored.grid == GRID

    old = {"state_dict": {}, "model_grid": GRID.to_dict()}  # as the module saved it before
    assert checkpoint_grid(old) == GRID
    assert upgrade_checkpoint(old) == {
        "state_dict": {},
        "LesionDataModule": {"grid": GRID.to_dict()},
    }
    assert checkpoint_grid(old) == GRID and checkpoint_grid({"state_dict": {}}) is None


def test_module_moves_an_older_checkpoints_grid_to_the_data_module(tmp_path):
    checkpoint = {"model_grid": GRID.to_dict()}
    LesionSegmenter(base_channels=2, depth=2).on_load_checkpoint(checkpoint)
    assert checkpoint == {"LesionDataModule": {"grid": GRID.to_dict()}}


def test_setup_checks_the_data_before_the_split(tmp_path, capsys):
    subjects = make_atlas_tree(tmp_path, n=6)
    truncate_file(subjects[1]["image"])
    coded_255 = np.zeros((16, 16, 16), np.uint8)
    coded_255[4:8, 4:8, 4:8] = 255
    write_volume(subjects[4]["mask"], coded_255)
    with pytest.raises(LesionresError) as info:
        _datamodule(tmp_path).setup("fit")
    lines = str(info.value).splitlines()
    assert lines[0] == "2 subjects failed the check (2 errors):"  # every error, not the first
    assert any(line.startswith(f"  {subjects[1]['image']}: truncated file") for line in lines)
    assert any(line.startswith(f"  {subjects[4]['mask']}: mask is not binary") for line in lines)
    assert not (tmp_path / "ATLAS_2" / "splits" / "split-seed42.json").exists()  # before the split

    unchecked = _datamodule(tmp_path, check_data=False)
    unchecked.setup("fit")  # a notebook that checked its data already
    assert len(unchecked.records["train"]) + len(unchecked.records["test"]) >= 4


def test_setup_prints_warnings_and_checks_once(tmp_path, capsys, monkeypatch):
    subjects = make_atlas_tree(tmp_path, n=6)
    write_volume(subjects[2]["mask"], np.zeros((16, 16, 16), np.uint8))
    datamodule = _datamodule(tmp_path)
    datamodule.setup("fit")
    assert f"warning: {subjects[2]['mask']}: empty mask" in capsys.readouterr().err
    assert (tmp_path / "ATLAS_2" / "splits" / "check-cache.json").exists()

    from lesionres.data import run_check

    def refuse(*args, **kwargs):
        raise AssertionError("checked twice")

    monkeypatch.setattr(run_check, "validate_for_run", refuse)
    datamodule.setup("fit")  # already checked
    datamodule.setup("validate")  # not a checked stage (as the command line did)
