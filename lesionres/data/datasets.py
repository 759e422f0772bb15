"""Torch datasets: scans read from disk, preprocessed onto the model grid, served as tensors.

Preprocessing is the study's: z-score each image over all its voxels (background included),
then zero-pad / centre-crop to the model grid; scans on another spacing or orientation are
first reoriented to RAS and resampled to the model's spacing (:mod:`lesionres.data.grid`).
Preprocessed volumes are cached as ``.npy`` files (memory-mapped on reading), keyed by a hash
of the source files and the settings, so epochs after the first read no gzip.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchio as tio
from scipy import ndimage
from torch.utils.data import Dataset

from lesionres.conditions import Condition, degrade_image
from lesionres.data.grid import GridMapping, ModelGrid, spacing_of
from lesionres.data.io import load_volume
from lesionres.data.layouts import SubjectRecord
from lesionres.data.masks import read_mask
from lesionres.files import atomic_path, file_key
from lesionres.registration import RegisterKind, plan_mapping

__all__ = [
    "ConditionDataset",
    "PreprocessedCache",
    "PreprocessedScan",
    "TrainDataset",
    "VolumeDataset",
    "load_scan",
    "zscore",
]

CACHE_VERSION = 2  # 2: masks resampled with centre-aligned nearest-exact


def zscore(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over all voxels (the study's choice; background included)."""
    image = image.astype(np.float32, copy=False)
    std = float(image.std())
    return (image - float(image.mean())) / (std if std > 0 else 1.0)


def load_scan(record: SubjectRecord) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Read a record's image and mask as ``(image, mask or None, affine)`` on the mask's grid.

    An image on another grid than its mask (ISLES FLAIR) is resampled onto the mask's grid
    with trilinear interpolation.
    """
    image, affine = load_volume(record.image)
    if record.mask is None:
        return image, None, affine
    mask, mask_affine = read_mask(record.mask, record.binarize)
    if image.shape != mask.shape or not np.allclose(affine, mask_affine, atol=1e-3):
        # voxel of the mask -> world -> voxel of the image
        matrix = np.linalg.inv(affine) @ mask_affine
        image = ndimage.affine_transform(
            image, matrix[:3, :3], matrix[:3, 3], output_shape=mask.shape, order=1
        ).astype(np.float32)
        affine = mask_affine
    return image, mask, affine


@dataclass
class PreprocessedScan:
    """A scan on the model grid: z-scored image ``(1, X, Y, Z)`` and mask ``(1, X, Y, Z)``."""

    image: np.ndarray
    mask: np.ndarray | None


class PreprocessedCache:
    """``.npy`` cache of preprocessed scans; ``directory=None`` turns caching off.

    Keys hash the source files' paths, sizes and modification times, the model grid and the
    preprocessing version, so a changed file or setting is a miss, never a stale hit.
    """

    def __init__(self, directory: str | Path | None, grid: ModelGrid) -> None:
        self.directory = Path(directory).expanduser() if directory else None
        self.grid = grid

    def key(self, record: SubjectRecord) -> str:
        payload = [
            CACHE_VERSION,
            file_key(record.image),
            file_key(record.mask),
            self.grid.to_dict(),
        ]
        if record.binarize != "strict":  # (keeps the keys of existing strict entries)
            payload.append(record.binarize)
        return hashlib.sha1(json.dumps(payload).encode()).hexdigest()[:20]

    def load(self, record: SubjectRecord) -> PreprocessedScan:
        """The preprocessed scan, from the cache when present, else computed (and stored)."""
        if self.directory is not None:
            stem = f"{record.subject_id}-{self.key(record)}"  # ids may hold dots: no with_suffix
            image_file, mask_file = (
                self.directory / f"{stem}.{part}.npy" for part in ("image", "mask")
            )
            if image_file.exists() and (record.mask is None or mask_file.exists()):
                mask = np.load(mask_file, mmap_mode="r") if record.mask is not None else None
                return PreprocessedScan(np.load(image_file, mmap_mode="r"), mask)
        scan = self.compute(record)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            if scan.mask is not None:
                _save_npy(mask_file, scan.mask)
            _save_npy(image_file, scan.image)  # written last: its presence marks a complete entry
        return scan

    def compute(self, record: SubjectRecord) -> PreprocessedScan:
        image, mask, affine = load_scan(record)
        mapping = GridMapping.plan(image.shape, affine, self.grid)
        image_t = mapping.to_model(torch.from_numpy(zscore(image))[None])
        mask_t = None
        if mask is not None:
            # nearest-exact: centre-aligned (torch's legacy "nearest" shifts up to half a voxel)
            mask_t = mapping.to_model(torch.from_numpy(mask)[None].float(), mode="nearest-exact")
            mask_t = mask_t.to(torch.uint8).numpy()
        return PreprocessedScan(image_t.numpy(), mask_t)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(array))


class VolumeDataset(Dataset):
    """Whole preprocessed volumes on the model grid (validation, full-volume training)."""

    def __init__(self, records: list[SubjectRecord], cache: PreprocessedCache) -> None:
        self.records = records
        self.cache = cache

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        scan = self.cache.load(self.records[index])
        item = {
            "image": torch.from_numpy(np.array(scan.image, dtype=np.float32)),
            "subject_id": self.records[index].subject_id,
        }
        if scan.mask is not None:  # uint8; steps convert on the device
            item["mask"] = torch.from_numpy(np.array(scan.mask, dtype=np.uint8))
        return item


class TrainDataset(Dataset):
    """Training samples: whole volumes, or random patches of which a share is lesion-centred.

    Args:
        records: Training subjects.
        cache: Where preprocessed volumes come from.
        patch_size: ``None`` for whole volumes (the study), else the patch shape.
        samples_per_volume: Patches drawn from each subject per epoch.
        lesion_fraction: Share of patches centred on a random lesion voxel (nnU-Net uses 1/3
            foreground oversampling; small lesions need more on a small budget).
        augment: Random left-right flips and intensity scale/shift.
        augmentation: An extra TorchIO transform applied to each sample (e.g. resolution
            augmentation), or ``None``.
    """

    def __init__(
        self,
        records: list[SubjectRecord],
        cache: PreprocessedCache,
        patch_size: tuple[int, int, int] | None = None,
        samples_per_volume: int = 1,
        lesion_fraction: float = 2 / 3,
        augment: bool = False,
        augmentation: tio.Transform | None = None,
    ) -> None:
        self.volumes = VolumeDataset(records, cache)
        self.patch_size = tuple(patch_size) if patch_size else None
        self.samples_per_volume = samples_per_volume if patch_size else 1
        self.lesion_fraction = lesion_fraction
        self.augment = augment
        self.augmentation = augmentation
        self._lesion_voxels: dict[int, np.ndarray] = {}  # flat indices of each volume's lesion

    def __len__(self) -> int:
        return len(self.volumes) * self.samples_per_volume

    def __getitem__(self, index: int) -> dict:
        volume = index // self.samples_per_volume
        scan = self.volumes.cache.load(self.volumes.records[volume])
        image, mask = scan.image, scan.mask
        if self.patch_size is not None:
            if (
                volume not in self._lesion_voxels
            ):  # scanning a 1 mm mask costs ~10 ms: once per worker
                self._lesion_voxels[volume] = np.flatnonzero(np.asarray(mask[0]).reshape(-1))
            image, mask = self._patch(image, mask, self._lesion_voxels[volume])
        image = torch.from_numpy(np.array(image, dtype=np.float32))
        mask = torch.from_numpy(np.array(mask, dtype=np.uint8))
        if self.augmentation is not None:
            # the model grid's spacing, so spacings in mm (e.g. 5 mm slices) mean what they say
            affine = np.diag([*self.volumes.cache.grid.spacing, 1.0])
            subject = tio.Subject(
                image=tio.ScalarImage(tensor=image, affine=affine),
                mask=tio.LabelMap(tensor=mask, affine=affine),
            )
            subject = self.augmentation(subject)
            image, mask = subject["image"].data.float(), subject["mask"].data.to(torch.uint8)
        if self.augment:
            if torch.rand(()) < 0.5:
                image, mask = image.flip(1), mask.flip(1)  # axis 1 = left-right in RAS
            image = image * (1 + 0.1 * torch.randn(())) + 0.1 * torch.randn(())
        return {"image": image, "mask": mask}

    def _patch(
        self, image: np.ndarray, mask: np.ndarray, lesion: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        shape = np.array(image.shape[1:])
        size = np.minimum(np.array(self.patch_size), shape)
        rng = np.random.default_rng(torch.randint(0, 2**31, ()).item())  # follows torch's seed
        center = None
        if rng.random() < self.lesion_fraction:
            if lesion.size:
                center = np.array(np.unravel_index(rng.choice(lesion), shape))
        if center is None:
            center = rng.integers(size // 2, shape - size + size // 2 + 1)
        start = np.clip(center - size // 2, 0, shape - size)
        box = (slice(None), *(slice(s, s + n) for s, n in zip(start, size, strict=True)))
        return image[box], mask[box]


class ConditionDataset(Dataset):
    """Test items: each scan under one condition, with what is needed to score it natively.

    The condition degrades the native image (never the mask); the degraded image goes onto the
    model grid, and the item carries the :class:`GridMapping` back plus the original mask.
    With ``register="mni"`` (external cohorts in scanner space) the degraded image is first
    registered to the MNI152 2009a template and a
    :class:`~lesionres.registration.RegisteredMapping` takes the GridMapping's place; the item
    carries the ``registration`` too.
    """

    def __init__(
        self,
        records: list[SubjectRecord],
        condition: Condition,
        grid: ModelGrid,
        register: RegisterKind = "none",
    ) -> None:
        self.records = records
        self.condition = condition
        self.grid = grid
        self.register = register
        condition.transform()  # a condition the transforms refuse fails here, not per scan

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        item = {"record": record, "condition": self.condition}
        try:
            image, mask, affine = load_scan(record)
            degraded, _ = degrade_image(self.condition, image, affine)  # shared with `degrade`
            mapping, registration = plan_mapping(degraded, affine, self.grid, self.register)
            if registration is not None:
                item["registration"] = registration
            normalised = torch.from_numpy(zscore(degraded))[None]
            item.update(
                image=mapping.to_model(normalised),
                mask=mask,
                affine=affine,
                spacing=spacing_of(affine),
                mapping=mapping,
            )
        except Exception as error:  # noqa: BLE001 - reported as the row's error, run goes on
            item["error"] = f"{type(error).__name__}: {error}"
        return item
