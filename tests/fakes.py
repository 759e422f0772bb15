"""Tiny, deterministic NIfTI trees with the real ATLAS v2.0 / ISLES 2022 / folder names.

For tests: every volume is a few thousand voxels, so writing and reading a tree takes
milliseconds. Each image is smooth noise plus a brain-like ellipsoid and one lesion blob
(dark on T1 and ADC, bright on DWI and FLAIR); its mask is exactly that blob.

Import from a test module in ``tests/`` (pytest puts that folder on ``sys.path``)::

    from fakes import make_atlas_tree, truncate_file, write_volume

    def test_something(tmp_path):
        subjects = make_atlas_tree(tmp_path, n=3)
        truncate_file(subjects[0]["image"])          # corrupt one on purpose
        records = find_atlas(tmp_path)

Every ``make_*`` function returns one dict of paths per subject, in subject order:
ATLAS and folder trees ``{"image", "mask"}``; ISLES trees ``{"dwi", "adc", "flair", "mask"}``;
plus ``"id"`` (the subject id, a ``str``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import yaml

__all__ = [
    "write_config",
    "ATLAS_IMAGE_SUFFIX",
    "ATLAS_MASK_SUFFIX",
    "affine_for",
    "blob_pair",
    "make_atlas_tree",
    "make_folder_tree",
    "make_isles_tree",
    "truncate_file",
    "write_volume",
]

ATLAS_IMAGE_SUFFIX = "_space-MNI152NLin2009aSym_T1w.nii.gz"
ATLAS_MASK_SUFFIX = "_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz"
# the ATLAS v2.0 grid's origin (MNI152NLin2009aSym, 1 mm, RAS)
ATLAS_ORIGIN = (-98.0, -134.0, -72.0)


def affine_for(
    spacing: Sequence[float] = (1.0, 1.0, 1.0), origin: Sequence[float] = ATLAS_ORIGIN
) -> np.ndarray:
    """An axis-aligned RAS affine with the given voxel size (mm) and world origin."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = origin
    return affine


def write_volume(path: str | Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """Write ``data`` as NIfTI-1 exactly as given (its dtype kept; folders created).

    Unlike :func:`lesionres.data.io.save_volume` nothing is cast, so tests can write float64
    masks holding 0.9999999998, ``{0, 255}`` masks, NaNs, or 4D volumes.

    Args:
        path: Target file (``.nii`` or ``.nii.gz``).
        data: Voxel array of any shape and dtype nibabel stores.
        affine: 4x4 voxel-to-world affine; default 1 mm RAS at the ATLAS origin.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(data), affine_for() if affine is None else affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))
    return path


def truncate_file(path: str | Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its bytes, as an interrupted download leaves it."""
    path = Path(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: max(1, int(len(raw) * keep))])
    return path


def blob_pair(
    shape: Sequence[int], seed: int = 0, contrast: float = -0.6
) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32) and its lesion mask (uint8) on ``shape``.

    The image is a bright ellipsoid ("brain", about 1.0) on a dark background with a little
    noise; the lesion is a ball of radius about a fifth of the smallest axis inside the brain,
    placed by ``seed``, scaled by ``1 + contrast`` (negative: dark, positive: bright).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))
    centre = (np.array(shape, dtype=np.float32) - 1) / 2
    radii = np.array(shape, dtype=np.float32) * 0.42
    brain = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) <= 1
    radius = max(1.0, min(shape) / 5)
    offset = rng.uniform(-0.25, 0.25, 3) * (np.array(shape) - 2 * radius)
    where = centre + offset
    lesion = (((grid - where[:, None, None, None]) ** 2).sum(0) <= radius**2) & brain
    image = np.where(brain, 1.0, 0.05).astype(np.float32)
    image[lesion] *= 1.0 + contrast
    image += rng.normal(0.0, 0.02, shape).astype(np.float32)
    return image, lesion.astype(np.uint8)


def make_atlas_tree(
    root: str | Path,
    n: int = 3,
    shape: Sequence[int] = (16, 16, 16),
    seed: int = 0,
    cohorts: Sequence[str] = ("R001", "R002"),
) -> list[dict[str, Path | str]]:
    """Write ``n`` ATLAS v2.0 subjects under ``root/ATLAS_2/Training``.

    Subject ``i`` (0-based) is in cohort ``cohorts[i % len(cohorts)]`` with id
    ``sub-r001s001`` style (cohort number + running number):
    ``ATLAS_2/Training/R001/sub-r001s001/ses-1/anat/sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz``
    and the ``..._label-L_desc-T1lesion_mask.nii.gz`` beside it; 1 mm RAS at the ATLAS origin.
    Pass ``root`` (or ``root/ATLAS_2``) to :func:`lesionres.data.layouts.find_atlas`.
    """
    subjects = []
    affine = affine_for()
    for i in range(n):
        cohort = cohorts[i % len(cohorts)]
        sid = f"sub-{cohort.lower()}s{i + 1:03d}"
        folder = Path(root) / "ATLAS_2" / "Training" / cohort / sid / "ses-1" / "anat"
        image, mask = blob_pair(shape, seed=seed * 1000 + i, contrast=-0.6)
        stem = f"{sid}_ses-1"
        subjects.append(
            {
                "id": sid,
                "image": write_volume(folder / (stem + ATLAS_IMAGE_SUFFIX), image, affine),
                "mask": write_volume(folder / (stem + ATLAS_MASK_SUFFIX), mask, affine),
            }
        )
    return subjects


def make_isles_tree(
    root: str | Path,
    n: int = 3,
    layout: Literal["rawdata", "zip"] = "rawdata",
    shape: Sequence[int] = (16, 16, 8),
    seed: int = 0,
    float_masks: bool = False,
) -> list[dict[str, Path | str]]:
    """Write ``n`` ISLES 2022 subjects (DWI, ADC, FLAIR, mask) in one of the two public layouts.

    ``layout="rawdata"``:
    ``rawdata/sub-strokecase0001/ses-0001/sub-strokecase0001_ses-0001_dwi.nii.gz``
    (also ``_adc``, ``_flair``); ``layout="zip"`` (the release zip):
    ``sub-strokecase0001/ses-0001/dwi/..._dwi.nii.gz``, ``.../dwi/..._adc.nii.gz`` and
    ``.../anat/..._FLAIR.nii.gz``. Masks in both:
    ``derivatives/sub-strokecase0001/ses-0001/sub-strokecase0001_ses-0001_msk.nii.gz``.

    DWI, ADC and the mask share a 2 mm grid of ``shape``; FLAIR lies on its own grid over the
    same field of view (twice the in-plane voxels at 1 mm, half the slices at 4 mm), as in the
    real data. ``float_masks=True`` stores masks as float64 with lesion value 0.9999999998,
    as some ISLES masks are.
    """
    root = Path(root)
    shape = tuple(int(s) for s in shape)
    dwi_affine = affine_for((2.0, 2.0, 2.0), origin=(-16.0, -16.0, -8.0))
    flair_shape = (2 * shape[0], 2 * shape[1], max(1, shape[2] // 2))
    # same field of view: the grids' outer edges coincide
    flair_origin = dwi_affine[:3, 3] - 1.0 + np.array([0.5, 0.5, 2.0])
    flair_affine = affine_for((1.0, 1.0, 4.0), origin=flair_origin)
    subjects = []
    for i in range(n):
        sid = f"sub-strokecase{i + 1:04d}"
        stem = f"{sid}_ses-0001"
        if layout == "rawdata":
            base = root / "rawdata" / sid / "ses-0001"
            paths = {m: base / f"{stem}_{m}.nii.gz" for m in ("dwi", "adc", "flair")}
        elif layout == "zip":
            base = root / sid / "ses-0001"
            paths = {
                "dwi": base / "dwi" / f"{stem}_dwi.nii.gz",
                "adc": base / "dwi" / f"{stem}_adc.nii.gz",
                "flair": base / "anat" / f"{stem}_FLAIR.nii.gz",
            }
        else:
            raise ValueError(f"layout must be 'rawdata' or 'zip', not {layout!r}")
        dwi, mask = blob_pair(shape, seed=seed * 1000 + i, contrast=1.5)
        adc, _ = blob_pair(shape, seed=seed * 1000 + i, contrast=-0.5)
        flair, _ = blob_pair(flair_shape, seed=seed * 1000 + i, contrast=0.8)
        write_volume(paths["dwi"], dwi, dwi_affine)
        write_volume(paths["adc"], adc, dwi_affine)
        write_volume(paths["flair"], flair, flair_affine)
        stored = np.where(mask > 0, 0.9999999998, 0.0) if float_masks else mask
        mask_path = root / "derivatives" / sid / "ses-0001" / f"{stem}_msk.nii.gz"
        write_volume(mask_path, stored, dwi_affine)
        subjects.append({"id": sid, **paths, "mask": mask_path})
    return subjects


def make_folder_tree(
    root: str | Path,
    n: int = 3,
    shape: Sequence[int] = (16, 16, 16),
    seed: int = 0,
) -> list[dict[str, Path | str]]:
    """Write ``n`` subjects as ``root/images/case001.nii.gz`` + ``root/masks/case001.nii.gz``.

    The plain-folder layout of :func:`lesionres.data.layouts.find_folder`; 1 mm RAS.
    """
    root = Path(root)
    affine = affine_for()
    subjects = []
    for i in range(n):
        sid = f"case{i + 1:03d}"
        image, mask = blob_pair(shape, seed=seed * 1000 + i, contrast=-0.6)
        subjects.append(
            {
                "id": sid,
                "image": write_volume(root / "images" / f"{sid}.nii.gz", image, affine),
                "mask": write_volume(root / "masks" / f"{sid}.nii.gz", mask, affine),
            }
        )
    return subjects


def write_config(path: Path, data_root: Path, log_dir: Path, **overrides) -> Path:
    """A LightningCLI config for 16^3 volumes and a 2-channel U-Net: a fit takes seconds.

    PyTorch's default output bias (``output_prior: null``): a network trained for 1-3 epochs
    then still marks voxels, which the tests that compare masks need (the default prior of 0.01
    starts, and after so few steps stays, below the threshold everywhere).
    """
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "logger": {
                "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                "init_args": {"save_dir": str(log_dir), "name": "tiny"},
            },
        },
        "model": {
            "base_channels": 2,
            "depth": 2,
            "loss": "dice_bce",
            "lr": 0.01,
            "output_prior": None,
        },
        "data": {
            "dataset": "atlas",
            "root": str(data_root),
            "target_shape": [16, 16, 16],
            "cache_dir": None,
            "val_fraction": 0.34,
            "test_fraction": 0.34,
        },
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        config[section][name] = value
    path.write_text(yaml.safe_dump(config))
    return path
