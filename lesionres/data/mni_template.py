"""The MNI152 2009a symmetric template the synthetic subjects are made of.

nilearn ships it (197x233x189 at 1 mm, the ATLAS v2.0 grid): its T1 gives the anatomy, its grey
and white matter maps the tissue that lesions are confined to and the places they are put
(:func:`load_template`). A target spacing ``s > 1`` mm along an axis is a physical acquisition:
the 1 mm template is first blurred with a Gaussian of ``sigma = 0.75 * s`` mm along that axis
(SynthSeg's slice profile; :func:`blurred_template`, cached per spacing). The synthetic
subjects are rendered with FWHM = the voxel size instead (:func:`synthesis_sigma`).

The synthetic subjects are drawn from tissue maps, not from the T1 itself
(:func:`load_tissue_maps`): nilearn's grey and white matter probabilities, a CSF map derived from
them (the intracranial region, ``T1 > 30`` with its holes filled, minus grey and white matter:
ventricles and sulci; where the template T1 lies between grey matter and CSF level the voxel is part
CSF, which keeps the template's partial-volume sulci), a map of the sulcal CSF's neighbourhood
(where cortex gives way to CSF with atrophy), and the signed distance (mm) to the intracranial
surface, from which each subject gets its own extra-axial CSF, skull and scalp, and the signed
distance to the lateral ventricles (which widen with atrophy and ex vacuo).
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
    "GM_LEVEL",
    "TISSUE_CHANNELS",
    "WM_LEVEL",
    "Template",
    "TissueMaps",
    "acquisition_sigma",
    "blurred_template",
    "blurred_tissue_maps",
    "load_template",
    "load_tissue_maps",
    "synthesis_sigma",
    "template_file",
]

TEMPLATE_NAME = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
BRAIN_CENTRE = np.array([0.0, -18.0, 22.0])  # centre of the template grid (MNI mm)
WM_LEVEL = 222.0  # template T1 intensities (0-255): white matter ~222, grey ~167, CSF ~66
CSF_LEVEL = 66.0
# channels of TissueMaps.maps
TISSUE_CHANNELS = ("gm", "wm", "csf", "sulcal", "distance", "ventricle_distance", "sulcal_csf")
GM_LEVEL = 167.0
_DISTANCE_RANGE_MM = (-10.0, 40.0)  # the signed distance is clipped (only its edge matters)


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


def synthesis_sigma(spacing: float) -> float:
    """Blur (mm) for rendering synthetic subjects at ``spacing``: FWHM = the voxel size.

    Sharper than :func:`acquisition_sigma` (0.75 x spacing): the MNI maps are a population
    average whose sulci are already blurred, and a real 2 mm scan shows its sulci.
    """
    return spacing / 2.355 if spacing > 1.0 + 1e-6 else 0.0


@lru_cache(maxsize=4)
def blurred_template(blur_mm: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Template T1 and tissue map blurred by ``blur_mm`` (1 mm voxels), as (1,1,I,J,K) tensors."""
    template = load_template()
    t1, tissue = template.t1, template.tissue
    if any(s > 0 for s in blur_mm):
        t1 = ndimage.gaussian_filter(t1, blur_mm, truncate=3.0)
        tissue = ndimage.gaussian_filter(tissue, blur_mm, truncate=3.0)
    return torch.from_numpy(t1)[None, None], torch.from_numpy(tissue)[None, None]


@dataclass(frozen=True)
class TissueMaps:
    """What synthetic anatomy is drawn from (1 mm template grid).

    Attributes:
        maps: (C, I, J, K) float32, the :data:`TISSUE_CHANNELS`: grey matter, white matter and
            CSF probabilities (0-1, summing to about 1 inside the intracranial region), the
            sulcal neighbourhood (0-1: cortex next to sulcal or surface CSF), the signed
            distance to the intracranial surface (mm, negative inside, clipped to -10..40) and
            the signed distance to the lateral ventricles (mm, negative inside, -10..20), and
            the sulcal CSF fraction (0-1, from the template T1's partial volume, outside the
            lateral ventricles), which each subject sharpens.
        ventricles: Per side (-1 left, +1 right): centre (3,) and covariance (3, 3), MNI mm,
            of the lateral ventricle (where atrophy and ex-vacuo dilation act).
        ventricle_box: (low, high) MNI mm corners of the box that holds both lateral ventricles.
    """

    maps: np.ndarray
    ventricles: dict[int, tuple[np.ndarray, np.ndarray]]
    ventricle_box: tuple[np.ndarray, np.ndarray]


def _world(shape: tuple[int, ...], affine: np.ndarray) -> list[np.ndarray]:
    """World coordinate (mm) of each axis index (the template grid is axis-aligned)."""
    return [affine[a, a] * np.arange(n) + affine[a, 3] for a, n in enumerate(shape)]


@lru_cache(maxsize=1)
def load_tissue_maps() -> TissueMaps:
    """Derive the tissue maps once (about 3 s): CSF, sulcal neighbourhood, surface distance."""
    template = load_template()
    gm = np.asarray(nib.load(str(template_file("gm"))).dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(str(template_file("wm"))).dataobj, dtype=np.float32) / 255.0
    inside = ndimage.binary_fill_holes(template.t1 > 30)
    # soft intracranial region (a partial-volume edge), minus tissue: ventricles and sulci
    region = ndimage.gaussian_filter(inside.astype(np.float32), 0.7)
    gm *= region
    wm *= region
    # the template T1's partial-volume sulci: between grey matter (167) and CSF (66) a voxel is
    # part CSF; the probability maps blur most of them away
    partial = np.clip((GM_LEVEL - template.t1) / (GM_LEVEL - CSF_LEVEL), 0.0, 1.0) * region
    tissue = gm + wm
    room = np.clip(region - partial, 0.0, 1.0)
    squeeze = np.where(tissue > room, room / np.maximum(tissue, 1e-6), 1.0).astype(np.float32)
    gm *= squeeze
    wm *= squeeze
    del tissue, room, squeeze
    csf = np.clip(region - gm - wm, 0.0, 1.0)

    x, y, z = _world(template.t1.shape, template.affine)
    low, high = np.array([-30.0, -50.0, -5.0]), np.array([30.0, 30.0, 35.0])
    box = tuple(
        slice(int(np.searchsorted(c, lo)), int(np.searchsorted(c, hi)))
        for c, lo, hi in zip((x, y, z), low, high, strict=True)
    )
    deep = np.zeros(inside.shape, dtype=bool)
    deep[box] = csf[box] > 0.5
    ventricles = {}
    lateral = np.zeros(inside.shape, dtype=bool)
    for side in (-1, 1):
        # the largest deep CSF component of each hemisphere: that lateral ventricle
        labels, count = ndimage.label(deep & ((x * side) > 1.0)[:, None, None])
        sizes = ndimage.sum_labels(labels > 0, labels, index=np.arange(1, count + 1))
        part = labels == int(np.argmax(sizes)) + 1
        lateral |= part
        ijk = np.argwhere(part)
        points = np.stack([x[ijk[:, 0]], y[ijk[:, 1]], z[ijk[:, 2]]], axis=1)
        ventricles[side] = (points.mean(axis=0), np.cov(points.T))

    outer = csf * ~deep  # sulcal and surface CSF
    distance = ndimage.distance_transform_edt(~inside) - ndimage.distance_transform_edt(inside)
    surface = (distance > -2.0).astype(np.float32) * inside
    sulcal = np.clip(2.5 * ndimage.gaussian_filter(outer + surface, 1.5), 0.0, 1.0)
    distance = np.clip(distance, *_DISTANCE_RANGE_MM).astype(np.float32)
    to_ventricle = ndimage.distance_transform_edt(~lateral) - ndimage.distance_transform_edt(
        lateral
    )
    to_ventricle = np.clip(to_ventricle, -10.0, 20.0).astype(np.float32)
    # sulcal CSF outside the ventricles (sharpened per subject: a power below 1)
    sulcal_csf = np.minimum(partial, csf) * ~ndimage.binary_dilation(lateral, iterations=2)
    maps = np.stack([gm, wm, csf, sulcal.astype(np.float32), distance, to_ventricle, sulcal_csf])
    return TissueMaps(np.ascontiguousarray(maps, dtype=np.float32), ventricles, (low, high))


@lru_cache(maxsize=3)
def blurred_tissue_maps(blur_mm: tuple[float, float, float]) -> torch.Tensor:
    """:attr:`TissueMaps.maps` blurred by ``blur_mm`` (1 mm voxels), as a (1, C, I, J, K) tensor."""
    maps = load_tissue_maps().maps
    if any(s > 0 for s in blur_mm):
        maps = np.stack([ndimage.gaussian_filter(m, blur_mm, truncate=3.0) for m in maps])
    return torch.from_numpy(maps)[None]
