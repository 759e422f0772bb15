"""The MNI152 2009a symmetric template the synthetic subjects are made of.

nilearn ships it (197x233x189 at 1 mm, the ATLAS v2.0 grid): its T1 gives the anatomy, its grey
and white matter maps the tissue that lesions are confined to and the places they are put
(:func:`load_template`). A target spacing ``s > 1`` mm along an axis is a physical acquisition:
the 1 mm template is first blurred with a Gaussian of ``sigma = 0.75 * s`` mm along that axis
(SynthSeg's slice profile; :func:`blurred_template`, cached per spacing).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from lesionres.errors import LesionresError

__all__ = [
    "BRAIN_CENTRE",
    "CSF_LEVEL",
    "TEMPLATE_NAME",
    "WM_LEVEL",
    "Template",
    "acquisition_sigma",
    "blurred_template",
    "load_template",
    "template_file",
]

TEMPLATE_NAME = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
BRAIN_CENTRE = np.array([0.0, -18.0, 22.0])  # centre of the template grid (MNI mm)
WM_LEVEL = 222.0  # template T1 intensities (0-255): white matter ~222, grey ~167, CSF ~66
CSF_LEVEL = 66.0


@dataclass(frozen=True)
class Template:
    """The template volumes (1 mm grid) and where lesions may be placed."""

    t1: np.ndarray  # float32, 0-255
    tissue: np.ndarray  # float32, grey + white matter probability, 0-1
    affine: np.ndarray
    candidates: dict[str, np.ndarray]  # world points (mm) per placement region
    tissue_trees: dict[int, cKDTree]  # tissue points per side (-1, 0, +1) for satellite snapping


def template_file(kind: str) -> Path:
    """Path of a template file inside the installed nilearn (found without importing it: fast)."""
    name = TEMPLATE_NAME.format(kind)
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise LesionresError(
            "the synthetic dataset needs nilearn (its MNI152 template): pip install nilearn"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.exists():
        raise LesionresError(f"{path}: MNI152 2009a template missing from the nilearn installation")
    return path


@lru_cache(maxsize=1)
def load_template() -> Template:
    """Load the template (T1, GM, WM) once and precompute lesion placement candidates."""
    images = {k: nib.load(str(template_file(k))) for k in ("t1", "gm", "wm")}
    t1, gm, wm = (np.asarray(images[k].dataobj, dtype=np.float32) for k in ("t1", "gm", "wm"))
    gm /= 255.0
    wm /= 255.0
    affine = np.asarray(images["t1"].affine, dtype=np.float64)
    # the template T1 is skull-stripped: tissue outside its brain does not count
    tissue = np.clip(gm + wm, 0.0, 1.0) * (t1 > 30)

    # placement regions on a 2 mm subsample (enough points, a fraction of the memory)
    sub = (slice(None, None, 2),) * 3
    ijk = np.stack(np.meshgrid(*(np.arange(n)[::2] for n in t1.shape), indexing="ij"), axis=-1)
    world = (ijk @ affine[:3, :3].T + affine[:3, 3]).astype(np.float32)
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    gm_s, wm_s, tissue_s = gm[sub], wm[sub], tissue[sub]
    infratentorial = (y < -25) & (z < -15) & (np.abs(x) < 55) & (tissue_s > 0.5)
    supra = ~((y < -25) & (z < -15))
    deep_gm = (gm_s > 0.5) & (np.abs(x) < 32) & (y > -35) & (y < 25) & (z > -12) & (z < 22)
    subcortical = supra & (((wm_s > 0.6) & (tissue_s > 0.8)) | deep_gm)
    cortical = (
        supra
        & (gm_s > 0.5)
        & ~deep_gm
        & (np.abs(x) > 28)
        & (y > -80)
        & (y < 40)
        & (z > -30)
        & (z < 65)
    )
    candidates = {
        "subcortical": world[subcortical],
        "cortical": world[cortical],
        "infratentorial": world[infratentorial],
        "tissue": world[tissue_s > 0.6],
    }
    points = candidates["tissue"]
    trees = {0: cKDTree(points)}
    for side in (-1, 1):
        trees[side] = cKDTree(points[points[:, 0] * side > 0])
    return Template(t1, tissue.astype(np.float32), affine, candidates, trees)


def acquisition_sigma(spacing: float) -> float:
    """Slice-profile blur (mm) for sampling the 1 mm template at ``spacing`` (SynthSeg's rule)."""
    return 0.75 * spacing if spacing > 1.0 + 1e-6 else 0.0


@lru_cache(maxsize=4)
def blurred_template(blur_mm: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Template T1 and tissue map blurred by ``blur_mm`` (1 mm voxels), as (1,1,I,J,K) tensors."""
    template = load_template()
    t1, tissue = template.t1, template.tissue
    if any(s > 0 for s in blur_mm):
        t1 = ndimage.gaussian_filter(t1, blur_mm, truncate=3.0)
        tissue = ndimage.gaussian_filter(tissue, blur_mm, truncate=3.0)
    return torch.from_numpy(t1)[None, None], torch.from_numpy(tissue)[None, None]
