"""Training-time resolution augmentation through the DataModule: presets, options, mm units."""

from __future__ import annotations

import pytest
import torch
from fakes import make_atlas_tree

from lesionres.data.datamodule import LesionDataModule
from lesionres.errors import LesionresError
from lesionres.transforms import RandomResolution, functional


def _datamodule(tmp_path, **kwargs) -> LesionDataModule:
    make_atlas_tree(tmp_path, n=6, shape=(16, 16, 16))
    dm = LesionDataModule(
        dataset="atlas",
        root=str(tmp_path / "ATLAS_2"),
        target_shape=(16, 16, 16),
        cache_dir=None,
        **kwargs,
    )
    dm.setup("fit")
    return dm


def test_default_is_no_resolution_augmentation(tmp_path):
    assert _datamodule(tmp_path).resolution_transform() is None


def test_presets_and_option_overrides(tmp_path):
    dm = _datamodule(tmp_path, resolution_augmentation="synthseg", resolution_options={"p": 0.3})
    transform = dm.resolution_transform()
    assert isinstance(transform, RandomResolution)
    assert transform.p == 0.3 and transform.methods == ("acquisition",)  # the rest from the preset
    assert transform.slice_thickness == (1.0, 8.0)


def test_bad_options_name_the_flag(tmp_path):
    dm = _datamodule(tmp_path, resolution_options={"p": 2.0})
    with pytest.raises(LesionresError, match="--data.resolution_options"):
        dm.resolution_transform()


def test_training_samples_are_degraded_in_mm_and_masks_are_not(tmp_path):
    # 4 mm isotropic on a 2 mm model grid is a crude factor of 2 (not 4, as a 1 mm guess would be)
    options = {
        "p": 1.0,
        "methods": ["crude"],
        "isotropic_spacing": [4.0, 4.0],
        "p_thick_slices": 0.0,
    }
    plain = _datamodule(tmp_path / "a", target_spacing=(2.0, 2.0, 2.0))
    degraded = _datamodule(
        tmp_path / "b", target_spacing=(2.0, 2.0, 2.0), resolution_options=options
    )
    sample = plain.train_dataloader().dataset[0]
    augmented = degraded.train_dataloader().dataset[0]
    torch.testing.assert_close(augmented["mask"], sample["mask"])
    torch.testing.assert_close(augmented["image"], functional.crude(sample["image"], (2, 2, 2)))
    assert not torch.equal(augmented["image"], sample["image"])


def test_low_resolution_subjects_join_training_and_leave_the_external_test(tmp_path):
    from fakes import make_isles_tree

    from lesionres.conditions import ExternalTestSet

    make_atlas_tree(tmp_path, n=8, shape=(16, 16, 16))
    make_isles_tree(tmp_path / "ISLES", n=4)
    isles = ExternalTestSet("isles22", str(tmp_path / "ISLES"), "isles22", "dwi")

    def datamodule(share):
        dm = LesionDataModule(
            dataset="atlas",
            root=str(tmp_path / "ATLAS_2"),
            target_shape=(16, 16, 16),
            cache_dir=None,
            external=[isles],
            low_resolution_train=isles,
            low_resolution_share=share,
        )
        dm.setup("fit")
        return dm

    dm = datamodule(0.5)
    atlas_train = [r for r in dm.records["train"] if r.dataset == "atlas"]
    lent = [r for r in dm.records["train"] if r.dataset == "isles22"]
    assert len(lent) == min(4, len(atlas_train)) and dm.split["train_low_resolution"] == [
        r.subject_id for r in lent
    ]
    assert [r.subject_id for r in datamodule(0.5).records["train"]] == [
        r.subject_id for r in dm.records["train"]
    ]
    # resampled onto the model grid like every training subject
    sample = dm.train_dataloader().dataset[len(atlas_train)]
    assert (
        sample["image"].shape == sample["mask"].shape == (1, 16, 16, 16)
        and sample["mask"].sum() > 0
    )
    dm.test_dataloader()
    tested = {item["record"].subject_id for item in dict(dm.test_sets)["isles22"]}
    assert tested == {f"sub-strokecase000{i}" for i in range(1, 5)} - set(
        dm.split["train_low_resolution"]
    )
    assert len(datamodule(0.0).records["train"]) == len(atlas_train)


def test_low_resolution_share_must_be_below_one(tmp_path):
    with pytest.raises(LesionresError, match="low_resolution_share"):
        LesionDataModule(low_resolution_share=1.0)
