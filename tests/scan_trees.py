"""A folder of scans as users bring them: 1, 2 and 0.9x0.9x5 mm; RAS, LPS and oblique; masks and
derivatives beside them (to be skipped) and a corrupt scan. Every scan shows one head whose lesion
lies at the same world position, so predictions can be checked on each scan's own grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes import truncate_file, write_volume

from lesionres.data.grid import ModelGrid

__all__ = [
    "GRID",
    "LESION_CENTRE",
    "LESION_RADIUS",
    "SCANS",
    "centred_affine",
    "rotation",
    "scan_tree",
]


GRID = ModelGrid((2.0, 2.0, 2.0), (32, 32, 32))


def rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def centred_affine(matrix: np.ndarray, shape) -> np.ndarray:
    """Voxel axes ``matrix`` (columns), placed so the field of view is centred on world 0."""
    affine = np.eye(4)
    affine[:3, :3] = matrix
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine


SCANS = {
    "ras_1mm": ("site-a/sub-01/anat/sub-01_T1w.nii.gz", (48, 52, 44), np.eye(3)),
    "lps_2mm": ("site-b/sub-02_T1w.nii", (30, 34, 28), np.diag([-2.0, -2.0, 2.0])),
    "clinical": ("clinical/sub-03_FLAIR.nii.gz", (64, 60, 10), np.diag([0.9, 0.9, 5.0])),
    "oblique": ("sub-04.nii.gz", (34, 30, 32), rotation(20) @ np.diag([1.8, 1.8, 1.8])),
    "on_grid": ("grid/sub-05_T1w.nii.gz", (32, 32, 32), np.diag([2.0, 2.0, 2.0])),
}


SCANS = {
    name: (path, shape, centred_affine(axes, shape)) for name, (path, shape, axes) in SCANS.items()
}


SKIPPED = (
    "site-a/sub-01/anat/sub-01_label-L_desc-T1lesion_mask.nii.gz",
    "site-b/sub-02_msk.nii.gz",
    "derivatives/sub-01/sub-01_T1w.nii.gz",
    "clinical/sub-03_desc-lesion_probseg.nii.gz",
    "clinical/.sub-03_FLAIR.nii.gz",
)


LESION_CENTRE, LESION_RADIUS = np.array([4.0, -3.0, 2.0]), 10.0  # world mm


def _render(shape, affine, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One head seen through a scan's grid: a brain ellipsoid (1) and a bright lesion ball (3),
    both defined in world millimetres, so every scan shows the lesion at the same place."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    brain = ((world / np.array([40.0, 45.0, 35.0])) ** 2).sum(-1) <= 1
    lesion = np.linalg.norm(world - LESION_CENTRE, axis=-1) <= LESION_RADIUS
    image = np.where(lesion, 3.0, np.where(brain, 1.0, 0.05))
    image += np.random.default_rng(seed).normal(0, 0.02, shape)
    return image.astype(np.float32), lesion.astype(np.uint8)


def scan_tree(root: Path) -> dict[str, dict]:
    """The scans above (their masks beside them), the skipped files and a corrupt scan."""
    scans = {}
    for i, (name, (relative, shape, affine)) in enumerate(SCANS.items()):
        image, mask = _render(shape, affine, seed=i)
        image_path = write_volume(root / relative, image, affine)
        mask_path = write_volume(root / relative.replace(".nii", "_mask.nii"), mask, affine)
        scans[name] = {"image": image_path, "mask": mask_path, "affine": affine, "shape": shape}
    for relative in SKIPPED:
        write_volume(root / relative, np.zeros((4, 4, 4), np.uint8))
    broken = write_volume(root / "broken/sub-06_T1w.nii.gz", np.ones((20, 20, 20), np.float32))
    truncate_file(broken)
    scans["broken"] = {"image": broken}
    return scans
