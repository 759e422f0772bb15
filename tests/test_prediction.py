"""``predict``: masks for any scans, on each scan's own grid, with a per-scan table.

A tiny untrained U-Net (base 2, depth 2) on a 32^3 grid at 2 mm keeps every run to seconds;
geometry end to end is checked with a model that thresholds the image, so the written mask
must land on the bright blob whatever the scan's spacing, orientation or obliqueness.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from fakes import write_volume
from scan_trees import (
    GRID,
    SCANS,
    centred_affine,
    rotation,
    scan_tree,
)

from lesionres.cli import main
from lesionres.conditions import Condition
from lesionres.data.datamodule import LesionDataModule, checkpoint_grid
from lesionres.data.datasets import ConditionDataset
from lesionres.data.grid import ModelGrid
from lesionres.data.layouts import SubjectRecord
from lesionres.data.scans import find_scans
from lesionres.module import LesionSegmenter
from lesionres.prediction import PREDICTION_COLUMNS, MaskWriter, near_mni, scan_warnings

# name -> (relative path, shape, voxel axes): 1, 2 and 0.9x0.9x5 mm; RAS, LPS and oblique


def _checkpoint(
    path: Path,
    grid: ModelGrid | None = GRID,
    training_data: str | None = None,
    legacy: bool = False,
    **hparams,
) -> Path:
    """A checkpoint of an untrained tiny U-Net, saved by a Trainer as `fit` would save it: the
    grid in the data module's state, or (``legacy``) where checkpoints kept it before."""
    pl.seed_everything(0)
    hparams.setdefault("output_prior", None)  # untrained, it then marks about half the voxels
    model = LesionSegmenter(base_channels=2, depth=2, **hparams)
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=path.parent,
    )
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    if training_data is not None:  # as Lightning stores an attached data module's hparams
        checkpoint["datamodule_hyper_parameters"] = {"dataset": training_data}
    if grid is not None and legacy:  # what LesionSegmenter.on_save_checkpoint used to write
        checkpoint["model_grid"] = grid.to_dict()
    elif grid is not None:  # as Lightning stores an attached data module's state_dict
        datamodule = LesionDataModule()
        datamodule.grid = grid
        checkpoint[type(datamodule).__qualname__] = datamodule.state_dict()
    torch.save(checkpoint, path)
    return path


def _config(tmp: Path) -> Path:
    config = tmp / "predict.yaml"
    config.write_text(
        "trainer:\n"
        "  accelerator: cpu\n"
        "  devices: 1\n"
        "  precision: 32-true\n"  # compared voxel for voxel with an fp32 test_step below
        "  enable_progress_bar: false\n"
        "  enable_model_summary: false\n"
        f"  default_root_dir: {tmp}\n"
        "  logger:\n"
        "    class_path: pytorch_lightning.loggers.TensorBoardLogger\n"
        f"    init_args: {{save_dir: {tmp / 'logs'}, name: predict}}\n"
    )
    return config


def _rows(path: Path) -> dict[str, dict]:
    with path.open(newline="") as handle:
        return {Path(row["input"]).name: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """One `python -m lesionres predict` run over the tree, with the default output folder."""
    tmp = tmp_path_factory.mktemp("predict")
    scans = scan_tree(tmp / "scans")
    ckpt = _checkpoint(tmp / "model.ckpt")
    args = [
        "predict",
        "--config",
        str(_config(tmp)),
        "--ckpt_path",
        str(ckpt),
        "--data.root",
        str(tmp / "scans"),
        "--predictions.save_probabilities",
        "true",
    ]
    assert main(args) == 0
    out = tmp / "logs" / "predict" / "version_0" / "predictions"
    return {"tmp": tmp, "scans": scans, "ckpt": ckpt, "out": out}


# ------------------------------------------------------------------------------ discovery


# ------------------------------------------------------------------------ the CLI run
def test_predict_writes_a_binary_mask_on_each_scans_own_grid(predicted):
    out = predicted["out"]
    for name, (relative, shape, affine) in SCANS.items():
        stem = Path(relative).name.split(".nii")[0]
        mask_file = out / Path(relative).parent / f"{stem}_desc-lesion_mask.nii.gz"
        mask = nib.load(mask_file)
        assert mask.shape == shape, name
        assert np.allclose(mask.affine, affine), name
        assert mask.get_data_dtype() == np.uint8, name
        assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}, name
        probseg = nib.load(mask_file.with_name(f"{stem}_desc-lesion_probseg.nii.gz"))
        assert probseg.shape == shape and np.allclose(probseg.affine, affine)
        probability = probseg.get_fdata()
        assert probseg.get_data_dtype() == np.float32
        assert 0 <= probability.min() <= probability.max() <= 1
        np.testing.assert_array_equal(np.asarray(mask.dataobj), probability >= 0.5)
    assert not (predicted["tmp"] / "scans" / "synthetic.json").exists()  # nothing generated there
    assert not list(out.rglob(".tmp-*"))


def test_predictions_table_has_one_row_per_scan_and_the_corrupt_one_failed(predicted):
    table = predicted["out"] / "predictions.csv"
    with table.open(newline="") as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == PREDICTION_COLUMNS
    rows = _rows(table)
    assert set(rows) == {Path(r).name for r, _, _ in SCANS.values()} | {"sub-06_T1w.nii.gz"}
    broken = rows["sub-06_T1w.nii.gz"]
    assert "truncated" in broken["error"] and not broken["output"]
    for name, (relative, shape, affine) in SCANS.items():
        row = rows[Path(relative).name]
        assert row["error"] == "", (name, row["error"])
        assert row["shape"] == "x".join(map(str, shape))
        assert row["orientation"] == "".join(nib.aff2axcodes(affine))
        mask = np.asarray(nib.load(row["output"]).dataobj)
        voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
        assert float(row["volume_ml"]) == pytest.approx(mask.sum() * voxel_ml, abs=1e-3)
    empty = "empty prediction (no voxel reached threshold 0.5)"
    assert rows["sub-05_T1w.nii.gz"]["warnings"] in ("", empty)  # on the model grid: no warning
    clinical = rows["sub-03_FLAIR.nii.gz"]
    assert clinical["spacing_mm"] == "0.9x0.9x5"
    assert "spacing 0.9x0.9x5 mm (RAS) is far from the model's 2x2x2 mm" in clinical["warnings"]


def test_mask_for_a_scan_on_the_model_grid_equals_what_test_predicts(predicted):
    scan = predicted["scans"]["on_grid"]
    model = LesionSegmenter.load_from_checkpoint(predicted["ckpt"]).eval()
    assert checkpoint_grid(torch.load(predicted["ckpt"], weights_only=True)) == GRID
    record = SubjectRecord("sub-05", scan["image"], scan["mask"], "folder")
    item = ConditionDataset([record], Condition("original"), GRID)[0]
    tested = model.test_step(item, 0)["prediction"]
    written_file = predicted["out"] / "grid" / "sub-05_T1w_desc-lesion_mask.nii.gz"
    written = np.asarray(nib.load(written_file).dataobj)
    assert 0 < tested.sum() < tested.size  # an untrained net: a non-trivial mask to compare
    np.testing.assert_array_equal(written, tested.astype(np.uint8))


def test_checkpoint_without_model_grid_is_a_one_line_error(tmp_path, capsys):
    scan_tree(tmp_path / "scans")
    ckpt = _checkpoint(tmp_path / "nogrid.ckpt", grid=None)
    args = [
        "predict",
        "--config",
        str(_config(tmp_path)),
        "--ckpt_path",
        str(ckpt),
        "--data.root",
        str(tmp_path / "scans"),
    ]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "the checkpoint records no model grid" in capsys.readouterr().err


# ----------------------------------------------------------------- geometry end to end
class _Thresholder(LesionSegmenter):
    """Logits that are high where the z-scored image is bright: the lesion blob."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return 20 * (image - 1.5)


def test_masks_land_on_the_lesion_for_every_spacing_orientation_and_obliqueness(tmp_path):
    scans = scan_tree(tmp_path / "scans")
    # a checkpoint from before the data module kept the grid: still read
    ckpt = _checkpoint(tmp_path / "model.ckpt", training_data="atlas", legacy=True)
    writer = MaskWriter(out_dir=str(tmp_path / "out"))
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[writer],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    rows = trainer.predict(
        _Thresholder(base_channels=2, depth=2),
        LesionDataModule(root=str(tmp_path / "scans")),
        ckpt_path=str(ckpt),
    )
    assert len(rows) == len(SCANS) + 1 and all(set(row) == set(PREDICTION_COLUMNS) for row in rows)
    by_name = {Path(row["input"]).name: row for row in rows}
    for name, scan in scans.items():
        if name == "broken":
            continue
        row = by_name[scan["image"].name]
        predicted = np.asarray(nib.load(row["output"]).dataobj) > 0
        truth = np.asarray(nib.load(scan["mask"]).dataobj) > 0
        dice = 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())
        assert dice > 0.8, (name, dice)
        assert row["n_lesions"] == "1", name
        # centred on world 0, 28 mm from the MNI centre (0, -18, 22): not MNI-registered
        assert "not in MNI space (field-of-view centre 28 mm from MNI's)" in row["warnings"], name


# ------------------------------------------------------------------------- warnings
def test_scan_warnings_flag_far_spacing_field_of_view_cropping_and_mni():
    on_grid = np.diag([2.0, 2.0, 2.0, 1.0])
    assert scan_warnings((32, 32, 32), on_grid, GRID) == []
    assert scan_warnings((30, 34, 28), np.diag([-2.0, -2.0, 2.0, 1.0]), GRID) == []
    clinical = scan_warnings((64, 60, 10), np.diag([0.9, 0.9, 5.0, 1.0]), GRID)
    assert len(clinical) == 1 and clinical[0].startswith("spacing 0.9x0.9x5 mm")
    big = scan_warnings((60, 32, 32), on_grid, GRID)
    assert any("field of view 120x64x64 mm" in w for w in big)
    assert "cropped to the model grid (R 56 mm)" in big[-1]
    mni = np.diag([1.0, 1.0, 1.0, 1.0])
    mni[:3, 3] = (-98, -134, -72)
    atlas_grid = ModelGrid((1.0, 1.0, 1.0), (208, 240, 192))
    assert near_mni((197, 233, 189), mni) == (True, "")
    assert scan_warnings((197, 233, 189), mni, atlas_grid, mni_model=True) == []
    native = mni.copy()
    native[:3, 3] = (-98, -100, -40)  # a scanner-space head: centre 47 mm away
    warned = scan_warnings((197, 233, 189), native, atlas_grid, mni_model=True)
    assert "not in MNI space" in warned[0]
    assert scan_warnings((197, 233, 189), native, atlas_grid, mni_model=False) == []
    tilted = centred_affine(rotation(30), (197, 233, 189))
    tilted[:3, 3] += (0, -18, 22)
    assert near_mni((197, 233, 189), tilted) == (False, "axes rotated 30 degrees from MNI's")


def test_ranks_write_their_own_tables_and_rank_zero_merges_them(tmp_path, capsys):
    from types import SimpleNamespace

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    module = SimpleNamespace(hparams=SimpleNamespace(threshold=0.5))
    writers = []
    for rank, name in ((0, "b.nii.gz"), (1, "a.nii.gz")):
        trainer = SimpleNamespace(
            world_size=2,
            global_rank=rank,
            is_global_zero=rank == 0,
            log_dir=str(tmp_path),
            strategy=SimpleNamespace(barrier=lambda: None),
            datamodule=SimpleNamespace(grid=GRID),
        )
        writer = MaskWriter()
        writer.on_predict_start(trainer, module)
        scan = write_volume(tmp_path / "in" / name, np.zeros((4, 4, 4), np.float32), affine)
        entry = find_scans(scan)[0]
        item = {"entry": entry, "affine": affine, "shape": (4, 4, 4), "warnings": []}
        output = {"item": item, "probability": np.full((4, 4, 4), 0.9, np.float32)}
        writer.write_on_batch_end(trainer, module, output, [0], item, 0, 0)
        assert output["n_lesions"] == "1" and output["volume_ml"] == "0.5120"  # replaced by its row
        writers.append((writer, trainer))
    for writer, trainer in reversed(writers):  # rank 1 finishes first; rank 0 merges
        writer.on_predict_end(trainer, module)
    rows = list(_rows(tmp_path / "predictions" / "predictions.csv"))
    assert rows == ["a.nii.gz", "b.nii.gz"]
    assert not list((tmp_path / "predictions").glob("predictions.rank*.csv"))
    assert "Predictions: 2 scans (0 failed" in capsys.readouterr().out
