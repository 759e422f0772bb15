"""Benchmark: registration to MNI152 2009a, per scan, next to the prediction it precedes.

For each scan it times :func:`lesionres.registration.register_to_mni` (the 30 s budget is for
a 1 mm head on the project's 2-core CPU), the resampling onto the model grid and back, and one
full-volume forward pass of the default U-Net (base 8, depth 3, batch norm) on the model grid;
and it reports the registration's quality figures (``registration_ncc``,
``registration_brain_overlap``). Scans:

- ``template``: the nilearn MNI152 2009a T1 itself (1 mm, 197x233x189): the transform should
  be the identity;
- ``moved_template``: the template moved and scaled by a known affine (12 and -8 degrees,
  scales 1.10/0.93/1.05, shift (7, -15, 24) mm) onto a 1 mm scanner grid; the mean
  displacement error over the brain is reported;
- ``real_head`` (``--real PATH``, default ``../shared/real-samples/T1_head_2mm.nii.gz``
  when present): a real T1w head in scanner space, 2 mm; ``real_head_1mm`` the same resampled
  to 1 mm (trilinear), for the time of a 1 mm head; ``real_head_skull_stripped`` the same
  with everything outside its (registered template) brain set to 0.

To choose the warning thresholds it also reports the figures of deliberately wrong transforms
of the real head: none at all (the scan as it lies), and the found one shifted by 10 mm or
rotated by 10 degrees. ``--out DIR`` writes each scan's overlay PNG (as ``predict
--predictions.save_overlays true`` does).

Run: ``python benchmarks/bench_registration.py [--out DIR] [--real PATH] [--grid 1|2]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _common import emit, set_threads
from scipy import ndimage

from lesionres.data.datasets import zscore
from lesionres.data.grid import ModelGrid
from lesionres.data.io import load_volume
from lesionres.models import UNet3D
from lesionres.registration import (
    RegisteredMapping,
    Registration,
    register_to_mni,
    registration_quality,
    save_overlay,
    template_volume,
)

__all__ = ["main"]

GRIDS = {
    1: ModelGrid((1.0, 1.0, 1.0), (208, 240, 192)),
    2: ModelGrid((2.0, 2.0, 2.0), (104, 120, 96)),
}
REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "T1_head_2mm.nii.gz"
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS


def _euler(x: float, z: float) -> np.ndarray:
    a, c = np.deg2rad(x), np.deg2rad(z)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx


def moved_template(move: np.ndarray, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The template as a scanner sees it when MNI point ``p`` lies at ``move @ p`` (RAS)."""
    t1, affine = template_volume()
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in t1.shape], indexing="ij")).reshape(3, -1)
    world = move[:3, :3] @ (affine[:3, :3] @ corners + affine[:3, 3:]) + move[:3, 3:]
    low, high = world.min(axis=1) - 10, world.max(axis=1) + 10
    shape = tuple(int(n) for n in np.ceil((high - low) / spacing))
    scan_affine = np.diag([spacing] * 3 + [1.0])
    scan_affine[:3, 3] = low
    # the template grid is the model grid of a (1 mm, 197x233x189) model: map it "back"
    known = Registration(_FLIP @ move @ _FLIP, 1.0, 1.0, 0.0)
    mapping = RegisteredMapping(shape, scan_affine, known, ModelGrid((1.0,) * 3, t1.shape))
    return mapping.to_native(torch.from_numpy(t1)[None])[0].numpy(), scan_affine


def skull_stripped(image: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A whole-head scan with everything outside the template's brain (registered, + 2 mm)
    set to 0: what a brain-extraction tool leaves."""
    t1, _ = template_volume()
    brain = torch.from_numpy(ndimage.binary_dilation(t1 > 30, iterations=2).astype(np.float32))
    registration = register_to_mni(image, affine)
    mapping = RegisteredMapping(image.shape, affine, registration, ModelGrid((1.0,) * 3, t1.shape))
    return image * (mapping.to_native(brain[None])[0].numpy() >= 0.5)


def _mean_displacement(found: np.ndarray, truth: np.ndarray) -> float:
    t1, affine = template_volume()
    points = np.argwhere(t1[::2, ::2, ::2] > 30) * 2 @ affine[:3, :3].T + affine[:3, 3]
    error = points @ (found[:3, :3] - truth[:3, :3]).T + (found[:3, 3] - truth[:3, 3])
    return float(np.linalg.norm(error, axis=1).mean())


def _perturbed(matrix: np.ndarray, shift_mm: float = 0.0, degrees: float = 0.0) -> np.ndarray:
    """``matrix`` (LPS) after a shift along x or a rotation about x, in MNI space."""
    change = np.eye(4)
    change[:3, :3] = _euler(degrees, 0.0)
    change[0, 3] = shift_mm
    return matrix @ change


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for overlay PNGs")
    parser.add_argument("--real", type=Path, default=REAL, help="a real T1w head (scanner space)")
    parser.add_argument("--grid", type=int, choices=(1, 2), default=1, help="model grid, mm")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    device = torch.device("cpu")
    grid = GRIDS[args.grid]
    move = np.eye(4)
    move[:3, :3] = _euler(12, -8) @ np.diag([1.10, 0.93, 1.05])
    move[:3, 3] = (7.0, -15.0, 24.0)
    scans = {"template": (*template_volume(), np.eye(4))}
    scans["moved_template"] = (*moved_template(move), move)
    if args.real.exists():
        image, affine = load_volume(args.real)
        scans["real_head"] = (image, affine, None)
        fine = affine.copy()
        fine[:3, :3] /= 2
        fine[:3, 3] -= affine[:3, :3] @ np.full(3, 0.25)  # same field of view, 1 mm voxels
        size = torch.Size(2 * np.array(image.shape))
        upsampled = torch.nn.functional.interpolate(
            torch.from_numpy(image)[None, None], size=size, mode="trilinear", align_corners=False
        )[0, 0].numpy()
        scans["real_head_1mm"] = (upsampled, fine, None)
        scans["real_head_skull_stripped"] = (skull_stripped(image, affine), affine, None)
    net = UNet3D(1, 1, 8, 3, "batch").eval()
    for name, (image, affine, truth) in scans.items():
        registration = register_to_mni(image, affine)
        mapping = RegisteredMapping(image.shape, affine, registration, grid)
        start = time.perf_counter()
        model_image = mapping.to_model(torch.from_numpy(zscore(image))[None])
        to_model_s = time.perf_counter() - start
        start = time.perf_counter()
        with torch.no_grad():
            probability = torch.sigmoid(net(model_image[None]))[0]
        predict_s = time.perf_counter() - start
        start = time.perf_counter()
        mapping.to_native(probability)
        to_native_s = time.perf_counter() - start
        extra = {}
        if truth is not None:
            extra["mean_displacement_mm"] = round(
                _mean_displacement(registration.ras_matrix(), truth), 3
            )
        emit(
            f"registration_{name}",
            registration.seconds,
            "s",
            device=device,
            shape=image.shape,
            spacing_mm="x".join(f"{s:.3g}" for s in np.linalg.norm(affine[:3, :3], axis=0)),
            registration_ncc=round(registration.ncc, 4),
            registration_brain_overlap=round(registration.brain_overlap, 4),
            to_model_s=round(to_model_s, 3),
            predict_s=round(predict_s, 3),
            to_native_s=round(to_native_s, 3),
            grid=list(grid.shape),
            **extra,
        )
        if args.out is not None:
            save_overlay(
                args.out / f"{name}_desc-registered_overlay.png", model_image[0].numpy(), grid
            )
        if name == "real_head":
            wrong = {
                "unregistered": np.eye(4),
                "shift_10mm": _perturbed(registration.matrix, shift_mm=10.0),
                "rotate_10deg": _perturbed(registration.matrix, degrees=10.0),
                "shift_20mm": _perturbed(registration.matrix, shift_mm=20.0),
            }
            for label, matrix in wrong.items():
                ncc, overlap = registration_quality(image, affine, matrix)
                emit(
                    f"registration_quality_real_head_{label}",
                    ncc,
                    "ncc",
                    device=device,
                    shape=image.shape,
                    registration_brain_overlap=round(overlap, 4),
                )


if __name__ == "__main__":
    main()
