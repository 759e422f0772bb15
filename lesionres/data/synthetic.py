"""Deterministic synthetic stroke data: an ATLAS-like and an ISLES-like set from the MNI template.

The built-in dataset lets ``python -m lesionres fit`` run with nothing to download. Anatomy is
the MNI152 2009a symmetric template shipped with nilearn (197x233x189 at 1 mm, the ATLAS v2.0
grid); every subject is that template under

- a smooth random deformation (cubic B-spline displacement, ~1.5-2 mm rms per axis, up to ~7 mm),
- a chronic-stroke lesion (below),
- a multiplicative bias field (about +-10-20 %), a gamma (contrast) change, a global intensity
  scale, and Rician noise — partly per subject, partly per cohort ("site"), as ATLAS pools
  33 cohorts.

**Lesions** are defined analytically in world (MNI, mm) coordinates, so the same subject renders
on any grid. A lesion is one dominant component plus satellites; a component is a union of
ellipsoids whose radius is modulated by low-order ripples (irregular outline). Hypointense like
chronic stroke on T1 (encephalomalacia: towards CSF intensity, darker than grey matter), with a
partial-volume edge: the lesion fraction of a voxel is the Gaussian-smoothed indicator
``0.5 * erfc(d / (sqrt(2) * sigma))`` of the approximate signed distance ``d`` (mm) to the
boundary, ``sigma`` combining a 0.6 mm intrinsic edge with the acquisition blur along the
boundary normal. The fraction is confined to brain tissue (grey + white matter probability of
the template), and the binary mask is ``fraction >= 0.5`` on the written grid. Sizes and places
follow ATLAS v2.0 (Liew et al. 2022): total volume ``log10(mm^3) ~ N(3.76, 0.93)`` clipped to
[10 mm^3, 500 ml]; one component in 47 % of subjects, median 2, up to 10; dominant lesion in
the left hemisphere 53 %, right 39 %, brainstem/cerebellum 8 %; supratentorial ones 65 %
subcortical (white matter, basal ganglia, thalamus) and 35 % cortical (grey-matter ribbon of
the lateral, MCA-like territory). Satellites lie near the dominant lesion, at least 10 mm^3
each; small ones vanish at coarse spacings, as they do in real low-resolution scans.

**Grids and acquisition.** Everything is sampled directly on the target grid (trilinear
sampling of the template at the deformed world coordinates of each voxel centre), never
rendered at 1 mm and downsampled. A target spacing ``s > 1`` mm along an axis is a physical
acquisition: the 1 mm template is first blurred with a Gaussian of ``sigma = 0.75 * s`` mm
along that axis (SynthSeg's slice profile; cached per spacing), and the lesion edge gets the
same blur.

- ATLAS-like (:func:`generate_atlas_like`): MNI space, RAS, axis-aligned. Spacing 1 mm is the
  template grid itself (same shape and affine). Spacing ``s`` keeps the field of view: shape
  ``ceil(197 / s) x ceil(233 / s) x ceil(189 / s)`` with the voxel centres placed symmetrically
  around the template grid's centre (MNI (0, -18, 22)); at 2 mm this is 99x117x95 with the
  same origin (-98, -134, -72) — every other template voxel centre.
- ISLES-like (:func:`generate_isles_like`): the same kind of subjects (new ones) on native,
  slightly oblique grids — a random rotation of up to 5 degrees about each axis and a shift of
  up to 6 mm of a 224x224x146 mm field of view centred on the brain (112x112x73 at 2 mm,
  224x224x29 at 1x1x5 mm), spacings alternating over ``spacings``. World coordinates of the
  written affines are MNI millimetres (only the grid is oblique), so resampling through the
  affine puts the brain where ATLAS-like brains are: the set isolates resolution, not
  registration. The slice-profile blur is applied along the template axes (the grid is at most
  a few degrees off them). **Contrast**: the files keep the synthetic T1 contrast and are named
  ``_dwi`` only for layout compatibility with ISLES 2022 (which has no T1w); the synthetic
  external set therefore isolates the resolution shift from the modality shift that real
  ISLES data adds.

**Determinism**: every subject draws its parameters from its own random stream, seeded by
``(seed, dataset, index)``, and its noise from another, so the same seed writes byte-identical
files (gzip headers carry mtime 0; same library versions assumed) and ``n=10`` is a prefix of
``n=40``; a subject's anatomy and lesion do not depend on the spacing. Images are ``int16``
(a T1-like range, roughly 0-1500), masks ``uint8`` 0/1.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.spatial import cKDTree
from scipy.special import erfc

from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX, ATLAS_MASK_SUFFIX
from lesionres.errors import LesionresError

__all__ = [
    "Blob",
    "Grid",
    "LesionComponent",
    "LesionSpec",
    "SubjectSpec",
    "atlas_grid",
    "generate_atlas_like",
    "generate_isles_like",
    "generate_synthetic",
    "isles_grid",
    "render_subject",
    "sample_lesion_spec",
    "sample_subject",
]

# --------------------------------------------------------------------------------- constants
TEMPLATE_NAME = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
ATLAS_COHORTS = 4  # subjects are dealt round-robin over R001..R004, so n=10 prefixes n=40
ISLES_FOV_MM = (224.0, 224.0, 146.0)  # 112x112x73 at 2 mm, the typical ISLES 2022 DWI grid
BRAIN_CENTRE = np.array([0.0, -18.0, 22.0])  # centre of the template grid (MNI mm)
WM_LEVEL = 222.0  # template T1 intensities (0-255): white matter ~222, grey ~167, CSF ~66
CSF_LEVEL = 66.0
LOG10_VOLUME = (3.76, 0.93)  # ATLAS v2.0 total lesion volume, log10(mm^3)
VOLUME_RANGE_MM3 = (10.0, 500_000.0)
MIN_COMPONENT_MM3 = 10.0
EDGE_SIGMA_MM = 0.6  # intrinsic softness of a lesion boundary (gliosis + 1 mm partial volume)
_DATASET_KEY = {"atlas": 0, "isles": 1}
_SITE_KEY = 2
# Smooth fields (deformation, bias) live on a 5 mm lattice of a 280 mm cube around the brain,
# large enough for any oblique ISLES-like grid; they are evaluated by trilinear lookup.
_LATTICE_HALF_MM = 140.0
_LATTICE_SIZE = 57


# ------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class Blob:
    """One irregular ellipsoid, in world (mm) coordinates.

    Its surface is ``|q| = 1 + sum_j amp_j cos(freq_j * (q/|q|) . dirs_j + phase_j)`` with
    ``q = axes^-1 (x - centre)``.

    Attributes:
        centre: Centre (mm), shape (3,).
        axes: 3x3 matrix whose columns are the semi-axis vectors (mm).
        dirs: Ripple directions, shape (m, 3), unit vectors.
        freq: Ripple angular frequencies (radians per unit of the direction cosine), (m,).
        phase: Ripple phases, (m,).
        amp: Ripple amplitudes relative to the radius, (m,); their sum stays below 0.4.
    """

    centre: np.ndarray
    axes: np.ndarray
    dirs: np.ndarray
    freq: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    def extent(self) -> float:
        """Radius (mm) of a sphere around ``centre`` that holds the blob."""
        return float(np.linalg.norm(self.axes, axis=0).max() * (1.0 + self.amp.sum()))

    def signed_distance(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Approximate signed distance (mm, negative inside) and unit outward normals."""
        inverse = np.linalg.inv(self.axes).astype(np.float32)
        q = (points - self.centre.astype(np.float32)) @ inverse.T
        rho = np.sqrt((q * q).sum(axis=1)) + np.float32(1e-6)
        w = q / rho[:, None]
        ripple = np.zeros_like(rho)
        terms = zip(self.dirs, self.freq, self.phase, self.amp, strict=True)
        for direction, freq, phase, amp in terms:
            cosine = w @ direction.astype(np.float32)
            ripple += np.float32(amp) * np.cos(np.float32(freq) * cosine + np.float32(phase))
        # distance along the ray from the centre, scaled by the radius in that direction
        radius = np.sqrt(((w @ self.axes.T.astype(np.float32)) ** 2).sum(axis=1))
        distance = (rho - (1.0 + ripple)) * radius
        normal = q @ inverse  # gradient of |q| (ellipsoid part): the boundary normal
        normal /= np.sqrt((normal * normal).sum(axis=1))[:, None] + np.float32(1e-12)
        return distance, normal


@dataclass(frozen=True)
class LesionComponent:
    """One connected lesion: a union of blobs.

    Attributes:
        blobs: The ellipsoids (the first is the main one).
        volume_mm3: Nominal volume of the union, before confinement to brain tissue.
    """

    blobs: tuple[Blob, ...]
    volume_mm3: float

    @property
    def centre(self) -> np.ndarray:
        return self.blobs[0].centre

    def extent(self) -> float:
        """Radius (mm) around :attr:`centre` holding the whole component."""
        return max(float(np.linalg.norm(b.centre - self.centre)) + b.extent() for b in self.blobs)


@dataclass(frozen=True)
class LesionSpec:
    """A subject's lesion: the dominant component first, then satellites.

    Attributes:
        components: The components (possibly empty: no lesion).
        region: Where the dominant one lies: ``{left,right}-{subcortical,cortical}`` or
            ``infratentorial`` (brainstem / cerebellum).
        volume_mm3: Nominal total volume (sum over components, before confinement to tissue
            and hemisphere; what the ATLAS volume statistics are drawn for).
        side: -1 left, +1 right (the lesion stays in that hemisphere, as vascular
            territories do), 0 infratentorial (may cross the midline).
    """

    components: tuple[LesionComponent, ...]
    region: str
    volume_mm3: float
    side: int = 0

    @property
    def n_components(self) -> int:
        return len(self.components)


@dataclass(frozen=True)
class SubjectSpec:
    """Everything that defines one synthetic subject, independent of any grid.

    Attributes:
        lesion: The analytic lesion.
        warp_coef: B-spline coefficients of the displacement (mm): two levels, (3, 6, 6, 6)
            and (3, 10, 10, 10).
        bias_coef: B-spline coefficients of the log bias field, (5, 5, 5).
        gamma: Contrast exponent applied to intensities normalised to white matter.
        scale: Intensity of white matter after scaling (file units).
        noise: Rician noise sigma relative to ``scale``.
        lesion_level: Intensity the lesion core tends to (template units, CSF-like).
        darkness: How far (0-1) the core goes from the tissue intensity to ``lesion_level``.
        noise_key: Seed words of the subject's noise stream.
    """

    lesion: LesionSpec
    warp_coef: tuple[np.ndarray, np.ndarray]
    bias_coef: np.ndarray
    gamma: float
    scale: float
    noise: float
    lesion_level: float
    darkness: float
    noise_key: tuple[int, ...]


@dataclass(frozen=True)
class Grid:
    """A voxel grid to render on.

    Attributes:
        shape: Voxels per axis.
        affine: 4x4 voxel-to-world (MNI mm) affine.
        blur_mm: Acquisition blur sigma (mm) along x, y, z (0 = none).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    blur_mm: tuple[float, float, float]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))


# ---------------------------------------------------------------------------------- template
@dataclass(frozen=True)
class _Template:
    t1: np.ndarray  # float32, 0-255
    tissue: np.ndarray  # float32, grey + white matter probability, 0-1
    affine: np.ndarray
    candidates: dict[str, np.ndarray]  # world points (mm) per placement region
    tissue_trees: dict[int, cKDTree]  # tissue points per side (-1, 0, +1) for satellite snapping


def _template_file(kind: str) -> Path:
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
def _template() -> _Template:
    """Load the template (T1, GM, WM) once and precompute lesion placement candidates."""
    images = {k: nib.load(str(_template_file(k))) for k in ("t1", "gm", "wm")}
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
        supra & (gm_s > 0.5) & ~deep_gm & (np.abs(x) > 28)
        & (y > -80) & (y < 40) & (z > -30) & (z < 65)
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
    return _Template(t1, tissue.astype(np.float32), affine, candidates, trees)


def _acquisition_sigma(spacing: float) -> float:
    """Slice-profile blur (mm) for sampling the 1 mm template at ``spacing`` (SynthSeg's rule)."""
    return 0.75 * spacing if spacing > 1.0 + 1e-6 else 0.0


@lru_cache(maxsize=4)
def _template_volumes(blur_mm: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Template T1 and tissue map blurred by ``blur_mm`` (1 mm voxels), as (1,1,I,J,K) tensors."""
    template = _template()
    t1, tissue = template.t1, template.tissue
    if any(s > 0 for s in blur_mm):
        t1 = ndimage.gaussian_filter(t1, blur_mm, truncate=3.0)
        tissue = ndimage.gaussian_filter(tissue, blur_mm, truncate=3.0)
    return torch.from_numpy(t1)[None, None], torch.from_numpy(tissue)[None, None]


# ------------------------------------------------------------------------------------- grids
def atlas_grid(spacing: float = 1.0) -> Grid:
    """The ATLAS v2.0 / MNI152 2009a field of view sampled at ``spacing`` mm (isotropic).

    Spacing 1 is the template grid itself. Otherwise the shape is ``ceil(N / spacing)`` per
    axis and the voxel centres lie symmetrically around the template grid's centre, so the
    field of view is kept (at 2 mm: 99x117x95, origin (-98, -134, -72)).
    """
    if not spacing > 0:
        raise LesionresError(f"spacing must be positive, got {spacing}")
    template_shape = (197, 233, 189)
    origin = np.array([-98.0, -134.0, -72.0])
    centre = origin + (np.array(template_shape) - 1) / 2.0
    shape = tuple(int(math.ceil(n / spacing - 1e-9)) for n in template_shape)
    affine = np.eye(4)
    affine[:3, :3] *= spacing
    affine[:3, 3] = centre - (np.array(shape) - 1) / 2.0 * spacing
    sigma = _acquisition_sigma(spacing)
    return Grid(shape, affine, (sigma, sigma, sigma))


def isles_grid(spacing: Sequence[float], rng: np.random.Generator) -> Grid:
    """A native, slightly oblique grid covering the brain (ISLES 2022-like field of view).

    Rotation: up to 5 degrees about each axis (at least 1 degree about one); shift of the
    field-of-view centre: up to 6 mm per axis.
    """
    spacing = np.asarray(spacing, dtype=float)
    if spacing.shape != (3,) or not (spacing > 0).all():
        raise LesionresError(
            f"an ISLES-like spacing needs three positive values, got {spacing.tolist()}"
        )
    angles = np.deg2rad(rng.uniform(-5.0, 5.0, 3))
    if np.abs(angles).max() < np.deg2rad(1.0):  # keep it visibly oblique
        angles[0] = np.deg2rad(1.0) * (1 if angles[0] >= 0 else -1)
    rotation = _euler(angles)
    centre = BRAIN_CENTRE + rng.uniform(-6.0, 6.0, 3)
    shape = tuple(max(1, int(round(f / s))) for f, s in zip(ISLES_FOV_MM, spacing, strict=True))
    affine = np.eye(4)
    affine[:3, :3] = rotation * spacing  # column j = voxel axis j, length spacing[j]
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return Grid(shape, affine, tuple(_acquisition_sigma(s) for s in spacing))


def _euler(angles: np.ndarray) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


# ----------------------------------------------------------------------------------- lesions
@lru_cache(maxsize=1)
def _unit_points() -> np.ndarray:
    """Fixed points in the unit cube for Monte-Carlo volume estimates (no stream consumed)."""
    return np.random.default_rng(20220601).random((8192, 3)).astype(np.float32)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _unit_blob(rng: np.random.Generator, offset: np.ndarray, size: float) -> Blob:
    """A random irregular ellipsoid of equivalent radius ``size`` centred at ``offset``."""
    ratios = np.exp(rng.normal(0.0, 0.25, 3))
    ratios /= np.prod(ratios) ** (1 / 3)  # volume of the plain ellipsoid = sphere of `size`
    axes = _random_rotation(rng) * (ratios * size)
    m = int(rng.integers(3, 7))
    dirs = rng.standard_normal((m, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    amp = rng.dirichlet(np.ones(m)) * rng.uniform(0.15, 0.4)
    return Blob(offset, axes, dirs, rng.uniform(2.0, 9.0, m), rng.uniform(0, 2 * np.pi, m), amp)


def _component_volume(blobs: Sequence[Blob]) -> float:
    """Volume (mm^3) of a union of blobs, Monte Carlo on fixed points (about 3 % accurate)."""
    centre = blobs[0].centre
    half = max(float(np.linalg.norm(b.centre - centre)) + b.extent() for b in blobs)
    points = (_unit_points() * 2 - 1) * half + centre.astype(np.float32)
    inside = np.zeros(len(points), dtype=bool)
    for blob in blobs:
        inside |= blob.signed_distance(points)[0] < 0
    return float(inside.mean() * (2 * half) ** 3)


def _scaled(blob: Blob, centre: np.ndarray, factor: float, to: np.ndarray) -> Blob:
    return replace(blob, centre=to + (blob.centre - centre) * factor, axes=blob.axes * factor)


def _make_component(
    rng: np.random.Generator, centre: np.ndarray, volume_mm3: float, lobes: int
) -> LesionComponent:
    """An irregular component of the given volume: a main blob plus ``lobes`` smaller ones."""
    origin = np.zeros(3)
    blobs = [_unit_blob(rng, origin, 1.0)]
    for _ in range(lobes):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        # lobes start near the main blob's surface so the union stays connected
        offset = blobs[0].axes @ (direction * rng.uniform(0.5, 0.9))
        blobs.append(_unit_blob(rng, offset, rng.uniform(0.35, 0.7)))
    factor = (volume_mm3 / _component_volume(blobs)) ** (1 / 3)
    blobs = [_scaled(b, origin, factor, centre) for b in blobs]
    return LesionComponent(tuple(blobs), float(volume_mm3))


def sample_lesion_spec(rng: np.random.Generator) -> LesionSpec:
    """Draw one subject's lesion after the ATLAS v2.0 statistics (no rendering; milliseconds).

    Args:
        rng: The random stream to draw from.

    Returns:
        The analytic lesion in MNI world coordinates.
    """
    candidates = _template().candidates
    total = float(np.clip(10 ** rng.normal(*LOG10_VOLUME), *VOLUME_RANGE_MM3))
    # components: one in 47 % of subjects, else 2 + geometric extra (median 2, at most 10)
    n = 1 if rng.random() < 0.47 else 1 + min(int(rng.geometric(0.45)), 9)
    dominant_share = 1.0 if n == 1 else rng.uniform(0.6, 0.95)
    satellites = (
        np.maximum(rng.dirichlet(np.ones(n - 1)) * total * (1 - dominant_share), MIN_COMPONENT_MM3)
        if n > 1 else np.zeros(0)
    )
    dominant_volume = max(total * dominant_share, MIN_COMPONENT_MM3)

    # region of the dominant lesion: 8 % infratentorial, else left 53:39 right,
    # 65 % subcortical / 35 % cortical (-> ~60 % / ~32 % of all)
    u = rng.random()
    if u < 0.08:
        region, side = "infratentorial", 0.0
        pool = candidates["infratentorial"]
    else:
        side = -1.0 if rng.random() < 0.53 / 0.92 else 1.0  # RAS: left is x < 0
        kind = "subcortical" if rng.random() < 0.65 else "cortical"
        region = f"{'left' if side < 0 else 'right'}-{kind}"
        pool = candidates[kind][candidates[kind][:, 0] * side > 2.0]
    centre = pool[rng.integers(len(pool))].astype(float)
    radius = (3 * dominant_volume / (4 * np.pi)) ** (1 / 3)
    if region.endswith("-cortical"):
        # centre a cortical stroke somewhat below the surface so most of it lies in tissue
        core = np.array([28.0 * side, -15.0, 15.0])
        inward = (core - centre) / (np.linalg.norm(core - centre) + 1e-9)
        centre = centre + inward * min(0.4 * radius, 15.0)
    lobes = int(rng.integers(0, 5))
    components = [_make_component(rng, centre, dominant_volume, lobes)]

    # satellites: near the dominant lesion, outside it, snapped to brain tissue (same side)
    tree = _template().tissue_trees[int(side)]
    for volume in satellites:
        r_sat = (3 * volume / (4 * np.pi)) ** (1 / 3)
        clearance = components[0].extent() + 1.3 * r_sat + 3.0
        for _attempt in range(8):
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            target = centre + direction * (clearance + rng.uniform(0.0, 25.0))
            spot = tree.data[tree.query(target)[1]].astype(float)
            if np.linalg.norm(spot - centre) >= clearance:
                break
        components.append(_make_component(rng, spot, float(volume), 0))
    volume = float(sum(c.volume_mm3 for c in components))
    return LesionSpec(tuple(components), region, volume, int(side))


# ---------------------------------------------------------------------------------- subjects
def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def sample_subject(
    seed: int, index: int, dataset: Literal["atlas", "isles"] = "atlas"
) -> SubjectSpec:
    """Draw subject ``index`` of a synthetic dataset; depends only on (seed, dataset, index).

    Cohort ("site") parameters come from a stream keyed by the cohort, subject-level jitter
    from the subject's own stream.
    """
    if dataset not in _DATASET_KEY:
        raise LesionresError(f"unknown synthetic dataset {dataset!r} (expected atlas or isles)")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise LesionresError(f"seed must be a non-negative integer, got {seed!r}")
    site = _stream(seed, _SITE_KEY, _DATASET_KEY[dataset], index % ATLAS_COHORTS)
    site_scale = site.uniform(600, 1000)
    site_gamma = site.uniform(0.85, 1.2)
    site_noise = site.uniform(0.01, 0.035)
    rng = _stream(seed, _DATASET_KEY[dataset], index, 0)
    lesion = sample_lesion_spec(rng)
    # B-spline smoothing shrinks the coefficients' spread about 3x: these give a displacement of
    # ~1.5-2 mm rms per axis (up to ~7 mm) and a bias of about +-10-20 % over the brain
    warp = (rng.normal(0.0, 5.0, (3, 6, 6, 6)), rng.normal(0.0, 2.4, (3, 10, 10, 10)))
    bias = rng.normal(0.0, 0.3, (5, 5, 5))
    return SubjectSpec(
        lesion=lesion,
        warp_coef=warp,
        bias_coef=bias,
        gamma=float(site_gamma * rng.uniform(0.95, 1.05)),
        scale=float(site_scale * rng.uniform(0.9, 1.1)),
        noise=float(site_noise * rng.uniform(0.8, 1.2)),
        lesion_level=float(CSF_LEVEL * rng.uniform(0.8, 1.15)),
        darkness=float(rng.uniform(0.75, 0.95)),
        noise_key=(seed, _DATASET_KEY[dataset], index, 1),
    )


def _bspline_matrix(n_points: int, n_coef: int) -> np.ndarray:
    """Cubic B-spline basis (n_points x n_coef) spanning the lattice end to end."""
    u = np.linspace(0.0, n_coef - 3, n_points)[:, None] - (np.arange(n_coef) - 1)[None, :]
    a = np.abs(u)
    return np.where(a < 1, (4 - 6 * a**2 + 3 * a**3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def _lattice_field(coef: np.ndarray) -> np.ndarray:
    """Evaluate B-spline coefficients (..., K, K, K) on the 57^3 lattice (separably)."""
    w = _bspline_matrix(_LATTICE_SIZE, coef.shape[-1])
    return np.einsum("...abc,ia,jb,kc->...ijk", coef, w, w, w, optimize=True)


def _sampling_fields(subject: SubjectSpec, grid: Grid) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Where each voxel of ``grid`` samples the template, its log bias, and the largest shift.

    A voxel at world ``x`` shows the template at ``x + u(x)`` (``u`` the subject's
    displacement). Both ``x + u`` (as ``grid_sample`` coordinates into the template) and the
    log bias are evaluated on a sub-grid of at most 8 mm steps and trilinearly upsampled: ``x``
    is linear in the voxel index, so only ``u`` and the bias are interpolated, and they vary
    over ~50 mm, which makes this exact to a few hundredths of a mm and 3x faster at 1 mm.

    Returns:
        ``(lookup, log_bias, max_shift)``: (I, J, K, 3) template coordinates (z, y, x order in
        [-1, 1]), (I, J, K) log bias, and max |u| in mm.
    """
    warp = sum(_lattice_field(c) for c in subject.warp_coef)
    bias = _lattice_field(subject.bias_coef)[None]
    lattice = np.concatenate([warp, bias]).astype(np.float32)
    spacing = np.array(grid.spacing)
    steps = np.maximum(1, np.floor(8.0 / spacing)).astype(int)
    coarse = [
        int(math.ceil((n - 1) / s)) + 1 if n > 1 else 1
        for n, s in zip(grid.shape, steps, strict=True)
    ]
    positions = [
        np.linspace(0, n - 1, m) if m > 1 else np.zeros(1)
        for n, m in zip(grid.shape, coarse, strict=True)
    ]
    # the coarse part in numpy: small arrays, no thread-pool overhead
    ijk = np.stack(np.meshgrid(*positions, indexing="ij"), axis=-1)
    world = ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    step = 2 * _LATTICE_HALF_MM / (_LATTICE_SIZE - 1)
    at = np.moveaxis((world - (BRAIN_CENTRE - _LATTICE_HALF_MM)) / step, -1, 0)
    fields = np.stack([ndimage.map_coordinates(f, at, order=1, mode="nearest") for f in lattice])
    max_shift = float(np.abs(fields[:3]).max())
    template = _template()
    sampled = world + np.moveaxis(fields[:3], 0, -1)
    size = np.array(template.t1.shape)
    coords = ((sampled - template.affine[:3, 3]) * (2.0 / (size - 1)) - 1.0)[..., ::-1]  # z, y, x
    # C-contiguous (channels first): a channels-last input sends interpolate down a 3x slower path
    stacked = np.concatenate([np.moveaxis(coords, -1, 0), fields[3:]])
    stacked = torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32))[None]
    if tuple(coarse) != tuple(grid.shape):
        stacked = F.interpolate(stacked, size=grid.shape, mode="trilinear", align_corners=True)
    stacked = stacked[0].permute(1, 2, 3, 0)
    return stacked[..., :3], stacked[..., 3], max_shift


def _lesion_box(lesion: LesionSpec, grid: Grid, margin: float) -> tuple[slice, slice, slice] | None:
    """Voxel box of ``grid`` that holds the lesion (world extent + ``margin`` mm), or None."""
    if not lesion.components:
        return None
    lows = np.min([c.centre - c.extent() for c in lesion.components], axis=0) - margin
    highs = np.max([c.centre + c.extent() for c in lesion.components], axis=0) + margin
    corners = np.array(np.meshgrid(*zip(lows, highs, strict=True), indexing="ij")).reshape(3, -1)
    voxels = np.linalg.inv(grid.affine)[:3] @ np.vstack([corners, np.ones(corners.shape[1])])
    start = np.maximum(np.floor(voxels.min(axis=1)).astype(int), 0)
    stop = np.minimum(np.ceil(voxels.max(axis=1)).astype(int) + 1, grid.shape)
    if (stop <= start).any():
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


def _lesion_fraction(
    lesion: LesionSpec, points: np.ndarray, blur_mm: Sequence[float]
) -> np.ndarray:
    """Partial-volume lesion fraction (0-1) at template-space points (N, 3), before tissue."""
    blur2 = np.asarray(blur_mm, dtype=np.float32) ** 2
    reach = 4 * (EDGE_SIGMA_MM + float(np.sqrt(blur2.max())))  # where the soft edge is ~0
    fraction = np.zeros(len(points), dtype=np.float32)
    for blob in (b for c in lesion.components for b in c.blobs):
        offset = points - blob.centre.astype(np.float32)
        near = np.flatnonzero((offset * offset).sum(axis=1) < (blob.extent() + reach) ** 2)
        if not len(near):
            continue
        distance, normal = blob.signed_distance(points[near])
        # Gaussian-blurred half space: the blur acts along the boundary normal
        sigma = np.sqrt(EDGE_SIGMA_MM**2 + (normal**2) @ blur2)
        soft = 0.5 * erfc(distance / (np.float32(math.sqrt(2)) * sigma))
        fraction[near] = np.maximum(fraction[near], soft)  # union of blobs and components
    if lesion.side:
        # a supratentorial stroke stays in its hemisphere: soft cut at the midline (x = 0)
        sigma_x = math.sqrt(EDGE_SIGMA_MM**2 + float(blur2[0]))
        fraction *= 0.5 * erfc(-lesion.side * points[:, 0] / np.float32(math.sqrt(2) * sigma_x))
    return fraction


def render_subject(subject: SubjectSpec, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Render one subject on ``grid``.

    Args:
        subject: The subject, from :func:`sample_subject`.
        grid: Where to render it (:func:`atlas_grid`, :func:`isles_grid`).

    Returns:
        ``(image, mask)``: int16 T1-like image and uint8 0/1 lesion mask, both ``grid.shape``.
    """
    template = _template()
    t1_volume, tissue_volume = _template_volumes(tuple(float(s) for s in grid.blur_mm))
    lookup, log_bias, max_shift = _sampling_fields(subject, grid)
    image = F.grid_sample(
        t1_volume, lookup[None], mode="bilinear", padding_mode="zeros", align_corners=True
    )
    image = image[0, 0].numpy()  # the rest in numpy: cheap elementwise work, no thread-pool waits

    mask = np.zeros(grid.shape, dtype=np.uint8)
    margin = max_shift + 4 * (EDGE_SIGMA_MM + max(grid.blur_mm))
    box = _lesion_box(subject.lesion, grid, margin=margin)
    if box is not None:
        # back from grid_sample coordinates to template-space millimetres, in the box only
        t_origin, t_size = template.affine[:3, 3], np.array(template.t1.shape)
        coords = lookup[box].numpy()[..., ::-1].reshape(-1, 3)
        points = ((coords + 1.0) * ((t_size - 1) / 2.0) + t_origin).astype(np.float32)
        fraction = _lesion_fraction(subject.lesion, points, grid.blur_mm)
        inside = fraction > 1e-4
        if inside.any():
            # confine the lesion to brain tissue (no lesion in ventricles or outside the brain)
            where = lookup[box].numpy().reshape(-1, 3)[inside]
            where = torch.from_numpy(np.ascontiguousarray(where)).reshape(1, 1, 1, -1, 3)
            tissue = F.grid_sample(
                tissue_volume, where, mode="bilinear", padding_mode="zeros", align_corners=True
            ).reshape(-1).numpy()
            fraction[inside] *= np.clip(tissue, 0.0, 1.0)
            values = image[box].reshape(-1)
            # towards CSF-like intensity; only ever darkens (never brightens the background)
            contrast = np.maximum(values - np.float32(subject.lesion_level), 0)
            values -= fraction * np.float32(subject.darkness) * contrast
            image[box] = values.reshape(image[box].shape)
            mask[box] = (fraction >= 0.5).reshape(mask[box].shape)
    del lookup

    # contrast, bias, scale, Rician noise (noise from the subject's own stream)
    image /= np.float32(WM_LEVEL)
    np.maximum(image, 0.0, out=image)
    np.power(image, np.float32(subject.gamma), out=image)
    image *= np.exp(log_bias.numpy())
    image *= np.float32(subject.scale)
    sigma = np.float32(subject.noise * subject.scale)
    noise = _stream(*subject.noise_key)
    real = noise.standard_normal(grid.shape, dtype=np.float32)
    real *= sigma
    image += real
    imag = noise.standard_normal(grid.shape, dtype=np.float32)
    imag *= sigma
    np.hypot(image, imag, out=image)
    np.rint(image, out=image)
    np.clip(image, 0, 32767, out=image)
    return image.astype(np.int16), mask


# ----------------------------------------------------------------------------------- writing
def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, code: str) -> None:
    """Write atomically (temporary file + rename), keeping ``data``'s dtype, gzip mtime 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_sform(affine, code=code)
    image.set_qform(affine, code=code)
    image.header["descrip"] = b"lesionres synthetic"
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".nii.gz")
    os.close(handle)
    try:
        nib.save(image, tmp)  # nibabel's gzip writer stores mtime 0 and no file name
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class _Written:
    subject_id: str
    cohort: str
    image: Path
    mask: Path
    spacing: tuple[float, float, float]
    region: str
    spec_volume_ml: float
    spec_components: int
    volume_ml: float
    components: int

    def to_json(self, root: Path) -> dict:
        return {
            "subject_id": self.subject_id,
            "cohort": self.cohort,
            "image": self.image.relative_to(root).as_posix(),
            "mask": self.mask.relative_to(root).as_posix(),
            "spacing": [round(s, 4) for s in self.spacing],
            "region": self.region,
            "spec_volume_ml": round(self.spec_volume_ml, 4),
            "spec_components": self.spec_components,
            "volume_ml": round(self.volume_ml, 4),
            "components": self.components,
        }


def _measure(mask: np.ndarray, grid: Grid) -> tuple[float, int]:
    """Lesion volume (ml) and component count (6-connectivity, as the ATLAS challenge code)."""
    voxel_ml = abs(np.linalg.det(grid.affine[:3, :3])) / 1000.0
    objects = ndimage.find_objects(mask)
    if not objects or objects[0] is None:
        return 0.0, 0
    crop = mask[objects[0]]
    return float(crop.sum() * voxel_ml), int(ndimage.label(crop)[1])


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="subject", disable=not enabled, file=sys.stderr)


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise LesionresError(f"{what} must be a non-negative integer, got {n!r}")
    return int(n)


def _atlas_like(out: Path, n: int, seed: int, spacing: float, progress: bool) -> list[_Written]:
    out = Path(out)
    n = _check_count(n, "n")
    grid = atlas_grid(float(spacing))
    written = []
    with _progress(n, f"ATLAS-like {spacing:g} mm", progress) as bar:
        for index in range(n):
            cohort = index % ATLAS_COHORTS + 1
            sid = f"sub-r{cohort:03d}s{index // ATLAS_COHORTS + 1:03d}"
            folder = out / "Training" / f"R{cohort:03d}" / sid / "ses-1" / "anat"
            image_path = folder / f"{sid}_ses-1{ATLAS_IMAGE_SUFFIX}"
            mask_path = folder / f"{sid}_ses-1{ATLAS_MASK_SUFFIX}"
            subject = sample_subject(seed, index, "atlas")
            image, mask = render_subject(subject, grid)
            _write_nifti(image_path, image, grid.affine, "mni")
            _write_nifti(mask_path, mask, grid.affine, "mni")
            volume, components = _measure(mask, grid)
            written.append(
                _Written(
                    sid, f"R{cohort:03d}", image_path, mask_path, grid.spacing,
                    subject.lesion.region, subject.lesion.volume_mm3 / 1000,
                    subject.lesion.n_components, volume, components,
                )
            )
            bar.update()
    return written


def _isles_like(
    out: Path, n: int, seed: int, spacings: Sequence[Sequence[float]], progress: bool
) -> list[_Written]:
    out = Path(out)
    n = _check_count(n, "n")
    spacings = [tuple(float(v) for v in s) for s in spacings]
    if not spacings:
        raise LesionresError("spacings must hold at least one (x, y, z) spacing")
    written = []
    with _progress(n, "ISLES-like", progress) as bar:
        for index in range(n):
            sid = f"sub-strokecase{index + 1:04d}"
            image_path = out / "rawdata" / sid / "ses-0001" / f"{sid}_ses-0001_dwi.nii.gz"
            mask_path = out / "derivatives" / sid / "ses-0001" / f"{sid}_ses-0001_msk.nii.gz"
            subject = sample_subject(seed, index, "isles")
            pose = _stream(seed, _DATASET_KEY["isles"], index, 2)  # the grid's own stream
            grid = isles_grid(spacings[index % len(spacings)], pose)
            image, mask = render_subject(subject, grid)
            _write_nifti(image_path, image, grid.affine, "scanner")
            _write_nifti(mask_path, mask, grid.affine, "scanner")
            volume, components = _measure(mask, grid)
            written.append(
                _Written(
                    sid, "", image_path, mask_path, grid.spacing, subject.lesion.region,
                    subject.lesion.volume_mm3 / 1000, subject.lesion.n_components, volume,
                    components,
                )
            )
            bar.update()
    return written


def generate_atlas_like(
    out: str | Path, n: int = 40, seed: int = 0, spacing: float = 1.0, progress: bool = True
) -> list[Path]:
    """Write ``n`` synthetic subjects in the exact ATLAS v2.0 layout under ``out``.

    ``out`` plays the ``ATLAS_2`` folder: ``out/Training/R00c/sub-r00cs0ss/ses-1/anat/`` holds
    ``..._space-MNI152NLin2009aSym_T1w.nii.gz`` and ``..._label-L_desc-T1lesion_mask.nii.gz``,
    so :func:`lesionres.data.layouts.find_atlas` reads it unchanged. Subjects are dealt
    round-robin over cohorts R001-R004. Existing files of the same names are replaced.

    Args:
        out: Root of the tree (the ``ATLAS_2`` folder).
        n: Number of subjects; ``n=10`` writes the first 10 of ``n=40``.
        seed: Dataset seed.
        spacing: Isotropic voxel size (mm); 1 is the ATLAS grid, see :func:`atlas_grid`.
        progress: Show a progress bar on stderr.

    Returns:
        The image paths, one per subject, in generation order.
    """
    return [w.image for w in _atlas_like(Path(out), n, seed, spacing, progress)]


def generate_isles_like(
    out: str | Path,
    n: int = 12,
    seed: int = 0,
    spacings: Sequence[Sequence[float]] = ((2.0, 2.0, 2.0), (1.0, 1.0, 5.0)),
    progress: bool = True,
) -> list[Path]:
    """Write ``n`` synthetic low-resolution subjects in the ISLES 2022 layout under ``out``.

    ``out/rawdata/sub-strokecaseNNNN/ses-0001/..._dwi.nii.gz`` and
    ``out/derivatives/sub-strokecaseNNNN/ses-0001/..._msk.nii.gz`` on the same native oblique
    grid, so :func:`lesionres.data.layouts.find_isles` reads it unchanged. The images keep the
    synthetic **T1** contrast (named ``dwi`` for the layout only), so this set differs from the
    ATLAS-like one in resolution and grid, not modality. Subjects are distinct from the
    ATLAS-like ones of the same seed.

    Args:
        out: Root of the tree (the ISLES 2022 folder).
        n: Number of subjects (prefix-stable like :func:`generate_atlas_like`).
        seed: Dataset seed.
        spacings: Voxel sizes (mm, x y z) used in turn: subject ``i`` gets
            ``spacings[i % len(spacings)]``.
        progress: Show a progress bar on stderr.

    Returns:
        The image paths, one per subject, in generation order.
    """
    return [w.image for w in _isles_like(Path(out), n, seed, spacings, progress)]


# ---------------------------------------------------------------------------- whole dataset
MANIFEST = "synthetic.json"
_MARKER = ".lesionres-synthetic-incomplete"
_PARTS = ("ATLAS_2", "ISLES22")


def _non_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _ours(out: Path) -> bool:
    """Whether ``out`` holds (possibly partial) output of this generator."""
    if (out / _MARKER).exists():
        return True
    try:
        return json.loads((out / MANIFEST).read_text()).get("generator") == __name__
    except (OSError, ValueError, AttributeError):
        return False


def generate_synthetic(
    out: str | Path,
    n: int = 40,
    n_isles: int = 12,
    seed: int = 0,
    spacing: float = 2.0,
    isles_spacings: Sequence[Sequence[float]] = ((2.0, 2.0, 2.0), (1.0, 1.0, 5.0)),
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Write the whole synthetic dataset: ``out/ATLAS_2``, ``out/ISLES22``, ``out/synthetic.json``.

    The manifest is written last, so its presence means a complete dataset. A previous
    (complete or interrupted) synthetic dataset in ``out`` is replaced; any other content in
    ``out/ATLAS_2`` or ``out/ISLES22`` is only replaced with ``overwrite=True``.

    Args:
        out: Dataset folder.
        n: ATLAS-like subjects (``out/ATLAS_2``, the folder to pass to ``find_atlas``).
        n_isles: ISLES-like subjects (``out/ISLES22``); 0 writes none.
        seed: Dataset seed.
        spacing: Voxel size (mm) of the ATLAS-like set.
        isles_spacings: Voxel sizes used in turn for the ISLES-like set.
        progress: Show progress bars on stderr.
        overwrite: Replace ``ATLAS_2`` / ``ISLES22`` even when not written by this generator.

    Returns:
        The manifest (also saved as ``out/synthetic.json``).

    Raises:
        LesionresError: bad arguments, or foreign data in the way without ``overwrite``.
    """
    out = Path(out).expanduser()
    n, n_isles = _check_count(n, "n"), _check_count(n_isles, "n_isles")
    atlas_grid(float(spacing))  # validate before deleting anything
    for s in isles_spacings:
        isles_grid(s, np.random.default_rng(0))
    if out.exists() and not out.is_dir():
        raise LesionresError(f"{out}: exists and is not a folder")
    in_the_way = [out / p for p in _PARTS if _non_empty(out / p)]
    if in_the_way and not overwrite and not _ours(out):
        raise LesionresError(
            f"{in_the_way[0]}: not empty and not written by `lesionres synth`; "
            "pass --force (overwrite=True) to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("generation in progress or interrupted\n")
    (out / MANIFEST).unlink(missing_ok=True)
    for part in _PARTS:
        if (out / part).exists():
            shutil.rmtree(out / part)  # stale subjects of a larger n would otherwise remain
    atlas = _atlas_like(out / "ATLAS_2", n, seed, spacing, progress)
    isles = _isles_like(out / "ISLES22", n_isles, seed, isles_spacings, progress) if n_isles else []
    manifest = {
        "generator": __name__,
        "seed": seed,
        "n": n,
        "n_isles": n_isles,
        "spacing": float(spacing),
        "isles_spacings": [[float(v) for v in s] for s in isles_spacings],
        "isles_contrast": "synthetic T1 (files named _dwi for the ISLES 2022 layout only)",
        "template": TEMPLATE_NAME.format("t1"),
        "versions": _versions(),
        "atlas": [w.to_json(out) for w in atlas],
        "isles": [w.to_json(out) for w in isles],
    }
    handle, tmp = tempfile.mkstemp(dir=out, prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w") as stream:
        json.dump(manifest, stream, indent=1)
        stream.write("\n")
    os.replace(tmp, out / MANIFEST)
    (out / _MARKER).unlink(missing_ok=True)
    return manifest


def _versions() -> dict[str, str]:
    """Versions that the bytes of the files depend on."""
    versions = {}
    for package in ("lesionres", "numpy", "scipy", "torch", "nibabel", "nilearn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
