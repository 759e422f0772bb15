"""Tests of the preprocessed-volume cache and the datasets built on it (tiny volumes: seconds).

:class:`lesionres.data.datasets.PreprocessedCache` stores each scan's preprocessed image and
mask as ``.npy`` files keyed by the source files (path, size, mtime) and the model grid; these
tests check hits, misses after a change, the ``None`` (off) mode and that cached arrays equal
freshly computed ones; then the shapes and lesion sampling of ``TrainDataset`` and
``VolumeDataset``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import ATLAS_IMAGE_SUFFIX, ATLAS_MASK_SUFFIX, blob_pair, write_volume

from lesionres.data.datasets import PreprocessedCache, TrainDataset, VolumeDataset
from lesionres.data.grid import ModelGrid
from lesionres.data.layouts import SubjectRecord

SHAPE = (16, 16, 12)
GRID = ModelGrid((1.0, 1.0, 1.0), (24, 16, 16))  # pads x and z, keeps y: both code paths


def _record(folder: Path, subject: str = "sub-r001s001", seed: int = 0) -> SubjectRecord:
    """Write one ATLAS-named image/mask pair and return its record."""
    image, mask = blob_pair(SHAPE, seed=seed)
    stem = folder / f"{subject}_ses-1"
    image_path = write_volume(f"{stem}{ATLAS_IMAGE_SUFFIX}", image)
    mask_path = write_volume(f"{stem}{ATLAS_MASK_SUFFIX}", mask)
    return SubjectRecord(subject, image_path, mask_path, "atlas", "R001")


@pytest.fixture
def counted(monkeypatch) -> list[str]:
    """Subject ids passed to ``PreprocessedCache.compute``, one entry per call."""
    calls: list[str] = []
    original = PreprocessedCache.compute

    def compute(self, record):
        calls.append(record.subject_id)
        return original(self, record)

    monkeypatch.setattr(PreprocessedCache, "compute", compute)
    return calls


def _npy_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npy"))


def test_second_load_is_a_hit(tmp_path, counted):
    record = _record(tmp_path / "data")
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    first = cache.load(record)
    assert counted == [record.subject_id]
    assert len(_npy_files(tmp_path / "cache")) == 2  # image and mask
    second = cache.load(record)
    assert counted == [record.subject_id]  # not computed again
    assert isinstance(second.image, np.memmap) and isinstance(second.mask, np.memmap)
    np.testing.assert_array_equal(second.image, first.image)
    np.testing.assert_array_equal(second.mask, first.mask)
    # a new cache object on the same folder (a new process, a later run) also hits
    PreprocessedCache(tmp_path / "cache", GRID).load(record)
    assert counted == [record.subject_id]


def test_cached_arrays_equal_fresh_ones(tmp_path):
    record = _record(tmp_path / "data", seed=3)
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    cache.load(record)
    cached = cache.load(record)
    fresh = PreprocessedCache(None, GRID).compute(record)
    assert cached.image.shape == fresh.image.shape == (1, *GRID.shape)
    assert cached.mask.shape == fresh.mask.shape == (1, *GRID.shape)
    assert cached.image.dtype == fresh.image.dtype == np.float32
    assert cached.mask.dtype == fresh.mask.dtype == np.uint8
    np.testing.assert_array_equal(cached.image, fresh.image)
    np.testing.assert_array_equal(cached.mask, fresh.mask)
    # and the preprocessing is the study's: z-scored over the native voxels, zero padding
    image, mask = blob_pair(SHAPE, seed=3)
    inner = (slice(None), slice(4, 20), slice(None), slice(2, 14))  # where the 16x16x12 went
    expected = (image - image.mean()) / image.std()
    np.testing.assert_allclose(fresh.image[inner][0], expected, atol=1e-5)
    np.testing.assert_array_equal(fresh.mask[inner][0], mask)
    padding = np.array(fresh.image)
    padding[inner] = 0
    assert not padding.any()  # zero padding
    assert fresh.mask.sum() == mask.sum() > 0


def test_changed_source_file_is_recomputed(tmp_path, counted):
    record = _record(tmp_path / "data", seed=0)
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    before = np.array(cache.load(record).image)
    # other content in the same file; the mtime is moved on explicitly, as a coarse file-system
    # clock could give the rewrite the same timestamp
    stat = record.image.stat()
    write_volume(record.image, blob_pair(SHAPE, seed=1)[0])
    os.utime(record.image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = cache.load(record)
    assert counted == [record.subject_id, record.subject_id]
    assert not np.array_equal(before, after.image)
    cache.load(record)
    assert len(counted) == 2  # the new entry is a hit again
    np.testing.assert_array_equal(after.image, cache.compute(record).image)


def test_touched_mask_is_recomputed(tmp_path, counted):
    record = _record(tmp_path / "data")
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    cache.load(record)
    stat = record.mask.stat()
    os.utime(record.mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cache.load(record)
    assert len(counted) == 2


def test_other_grid_is_a_miss(tmp_path, counted):
    record = _record(tmp_path / "data")
    PreprocessedCache(tmp_path / "cache", GRID).load(record)
    other = PreprocessedCache(tmp_path / "cache", ModelGrid((1.0, 1.0, 1.0), (16, 16, 16)))
    assert other.load(record).image.shape == (1, 16, 16, 16)
    assert len(counted) == 2
    assert len(_npy_files(tmp_path / "cache")) == 4  # both entries kept side by side


def test_incomplete_entry_is_recomputed(tmp_path, counted):
    record = _record(tmp_path / "data")
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    cache.load(record)
    next(p for p in _npy_files(tmp_path / "cache") if p.name.endswith(".image.npy")).unlink()
    scan = cache.load(record)  # the image marks a complete entry: its absence is a miss
    assert len(counted) == 2 and scan.image.shape == (1, *GRID.shape)
    assert len(_npy_files(tmp_path / "cache")) == 2


def test_cache_off_computes_every_time_and_writes_nothing(tmp_path, monkeypatch, counted):
    monkeypatch.chdir(tmp_path)
    record = _record(tmp_path / "data")
    for directory in (None, ""):
        cache = PreprocessedCache(directory, GRID)
        assert cache.directory is None
        first, second = cache.load(record), cache.load(record)
        np.testing.assert_array_equal(first.image, second.image)
    assert len(counted) == 4
    assert _npy_files(tmp_path) == []


def test_subjects_do_not_share_entries(tmp_path):
    records = [_record(tmp_path / "data", f"sub-r001s00{i}", seed=i) for i in (1, 2)]
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    for record in records:
        cache.load(record)
    first, second = (cache.load(r) for r in records)
    assert not np.array_equal(first.image, second.image)
    assert len(_npy_files(tmp_path / "cache")) == 4


def test_subject_ids_with_dots_do_not_collide(tmp_path):
    records = [_record(tmp_path / "data", f"case.{i}", seed=i) for i in (1, 2)]
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    for record in records:
        np.testing.assert_array_equal(cache.load(record).image, cache.compute(record).image)


def test_record_without_mask(tmp_path, counted):
    record = _record(tmp_path / "data")
    record = SubjectRecord(record.subject_id, record.image, None, "atlas")
    cache = PreprocessedCache(tmp_path / "cache", GRID)
    assert cache.load(record).mask is None
    scan = cache.load(record)
    assert scan.mask is None and scan.image.shape == (1, *GRID.shape)
    assert len(counted) == 1
    assert len(_npy_files(tmp_path / "cache")) == 1


# ------------------------------------------------------------------------------- datasets
def test_volume_dataset_returns_whole_volumes(tmp_path):
    records = [_record(tmp_path / "data", f"sub-r001s00{i}", seed=i) for i in (1, 2)]
    dataset = VolumeDataset(records, PreprocessedCache(tmp_path / "cache", GRID))
    assert len(dataset) == 2
    for index, record in enumerate(records):
        item = dataset[index]
        assert item["subject_id"] == record.subject_id
        assert item["image"].shape == item["mask"].shape == (1, *GRID.shape)
        assert item["image"].dtype == torch.float32 and item["mask"].dtype == torch.uint8
        assert set(item["mask"].unique().tolist()) == {0, 1}
        item["image"] += 1  # a writable copy, not the read-only memory map
    np.testing.assert_array_equal(
        dataset[0]["image"].numpy(), PreprocessedCache(None, GRID).compute(records[0]).image
    )


def test_train_dataset_whole_volumes(tmp_path):
    records = [_record(tmp_path / "data")]
    dataset = TrainDataset(records, PreprocessedCache(None, GRID), samples_per_volume=5)
    assert len(dataset) == 1  # samples_per_volume only applies to patches
    item = dataset[0]
    assert item["image"].shape == item["mask"].shape == (1, *GRID.shape)


def test_train_dataset_patches_have_the_patch_shape(tmp_path):
    records = [_record(tmp_path / "data", f"sub-r001s00{i}", seed=i) for i in (1, 2)]
    dataset = TrainDataset(
        records,
        PreprocessedCache(tmp_path / "cache", GRID),
        patch_size=(8, 12, 4),
        samples_per_volume=3,
        lesion_fraction=0.0,
    )
    assert len(dataset) == 6
    torch.manual_seed(0)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["image"].shape == item["mask"].shape == (1, 8, 12, 4)
        assert item["image"].dtype == torch.float32


def test_lesion_centred_patches_always_hold_lesion(tmp_path):
    records = [_record(tmp_path / "data", f"sub-r001s00{i}", seed=i) for i in (1, 2)]
    dataset = TrainDataset(
        records,
        PreprocessedCache(None, GRID),
        patch_size=(8, 8, 8),
        samples_per_volume=4,
        lesion_fraction=1.0,
    )
    torch.manual_seed(0)
    for index in range(len(dataset)):
        assert dataset[index]["mask"].sum() > 0


def test_train_dataset_patch_larger_than_volume_is_clipped(tmp_path):
    dataset = TrainDataset(
        [_record(tmp_path / "data")], PreprocessedCache(None, GRID), patch_size=(32, 8, 32)
    )
    assert dataset[0]["image"].shape == (1, 24, 8, 16)


def test_lesion_fraction_one_centres_patches_on_lesions(tmp_path):
    records = [_record(tmp_path / "data", f"sub-r001s00{i}", seed=i) for i in (1, 2)]
    dataset = TrainDataset(
        records,
        PreprocessedCache(tmp_path / "cache", GRID),
        patch_size=(4, 4, 4),
        samples_per_volume=10,
        lesion_fraction=1.0,
    )
    torch.manual_seed(0)
    lesion_voxels = [float(dataset[i]["mask"].sum()) for i in range(len(dataset))]
    assert min(lesion_voxels) > 0
    # with lesion_fraction=0 some 4^3 patches of these small lesions hold none
    dataset.lesion_fraction = 0.0
    assert min(float(dataset[i]["mask"].sum()) for i in range(len(dataset))) == 0


def test_train_dataset_augment_keeps_shapes_and_flips_pairs(tmp_path):
    dataset = TrainDataset(
        [_record(tmp_path / "data")], PreprocessedCache(None, GRID), augment=True
    )
    plain = TrainDataset([_record(tmp_path / "data")], PreprocessedCache(None, GRID))[0]
    torch.manual_seed(0)
    for _ in range(4):
        item = dataset[0]
        assert item["image"].shape == item["mask"].shape == (1, *GRID.shape)
        # the mask is flipped with the image or not at all, never changed otherwise
        assert torch.equal(item["mask"], plain["mask"]) or torch.equal(
            item["mask"], plain["mask"].flip(1)
        )


def test_training_masks_are_resampled_centre_aligned(tmp_path):
    # 1.6 mm scans onto a 1 mm model grid: a lesion's centre of mass stays in place (mean over
    # random spheres, so single-voxel rounding averages out; torch's legacy "nearest" moved it
    # by about 0.4 mm on every axis)
    voxels = np.stack(np.meshgrid(*[np.arange(25)] * 3, indexing="ij"), -1)
    rng = np.random.default_rng(0)
    affine = np.diag([1.6, 1.6, 1.6, 1.0])
    cache = PreprocessedCache(None, ModelGrid((1.0, 1.0, 1.0), (40, 40, 40)))
    errors = []
    for i in range(20):
        centre, radius = rng.uniform(8, 16, 3), rng.uniform(2, 5)
        mask = (((voxels - centre) ** 2).sum(-1) < radius**2).astype(np.uint8)
        image = write_volume(tmp_path / f"image{i}.nii.gz", mask.astype(np.float32), affine)
        mask_path = write_volume(tmp_path / f"mask{i}.nii.gz", mask, affine)
        scan = cache.compute(SubjectRecord(f"s{i}", image, mask_path, "folder"))
        native_mm = (np.array(np.nonzero(mask)).mean(axis=1) + 0.5) * 1.6
        errors.append(np.array(np.nonzero(scan.mask[0])).mean(axis=1) + 0.5 - native_mm)
    assert (np.abs(np.mean(errors, axis=0)) < 0.1).all(), np.mean(errors, axis=0)
