"""What a synthetic subject is, drawn from seeded random streams: its lesion and its
anatomy, contrast and noise parameters, independent of any grid (rendering:
:mod:`lesionres.data.synthetic_render`).

**Lesions** are defined analytically in world (MNI, mm) coordinates, so the same subject renders
on any grid. A lesion is one dominant component plus satellites; a component is a union of
ellipsoids whose radius is modulated by low-order ripples (irregular outline). Sizes and places
follow ATLAS v2.0 (Liew et al. 2022): total volume ``log10(mm^3) ~ N(3.76, 0.93)`` clipped to
[10 mm^3, 500 ml]; one component in 47 % of subjects, median 2, up to 10; dominant lesion in
the left hemisphere 53 %, right 39 %, brainstem/cerebellum 8 %; supratentorial ones 65 %
subcortical (white matter, basal ganglia, thalamus) and 35 % cortical (grey-matter ribbon of
the lateral, MCA-like territory). Satellites lie near the dominant lesion, at least 10 mm^3
each. The outline is then roughened by thresholded smooth noise: the boundary is the level set
``d(x) + a * n(x) = 0`` of the union's signed distance ``d`` and a unit-variance random Fourier
field ``n`` (wavelengths 6-14 mm), ``a`` = 15-35 % of each blob's radius (at most 3.5 mm). Kinds
(:attr:`LesionSpec.kind`): ``lacunar`` (subcortical, under 1.5 ml), ``subcortical``,
``cortico-subcortical`` (cortical ones: centred below the ribbon, reaching white matter),
``infratentorial`` (at most 60 ml: the posterior fossa is small).

**Anatomy** (:class:`Anatomy`): a head pose after registration (isotropic scale 0.9-1.1, +-2 % per
axis, rotations up to 5 degrees, shifts up to 3 mm), a smooth B-spline deformation, atrophy 0-1
(lateral ventricle walls moved out by up to 3.5 mm, up to 60 % of the cortex next to sulcal CSF
turned into CSF, extra-axial CSF 0.5-3 mm), sulci from the template T1's partial volume with their
CSF fraction raised to a power 0.4-1 (lower with atrophy: sharper, wider), ex-vacuo dilation of the
lateral ventricle on the lesion's side (up to 3 mm more for a large lesion near it), skull and scalp
in half of the subjects (3-7 mm each; smooth random fields mix the skull's cortical bone with
marrow and the scalp's fat with muscle).

**Contrast** (:class:`Contrast`): a Gaussian per tissue (mean relative to white matter, sd
1-5 % of the mean), T1-like for the ATLAS-like set (WM > GM > CSF; chronic lesion: CSF-like
cavity inside a gliotic rim darker than grey matter), DWI-like (GM >= WM >> CSF, acute lesion
core 1.8-3x white matter) and FLAIR-like (lesion 1.4-2.2x) for the ISLES-like set; the
lesion's rim 1-3 mm wide; a smooth bias field (about +-10-25 %), a global scale (white matter
at 540-1100 file units) and Rician noise (sd 0.8-4.2 % of white matter), the last two partly
per cohort ("site").

**Determinism**: every subject draws its parameters from its own random stream, seeded by
``(seed, dataset, index)`` (:func:`stream`), and its noise from another, so a subject depends
only on those three numbers and ``n=10`` is a prefix of ``n=40``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np

from lesionres.data.mni_template import load_template
from lesionres.data.synthetic_appearance import Anatomy, Contrast, sample_anatomy, sample_contrast
from lesionres.errors import LesionresError

__all__ = [
    "ATLAS_COHORTS",
    "DATASET_KEY",
    "Anatomy",
    "Blob",
    "Contrast",
    "LesionComponent",
    "LesionSpec",
    "SubjectSpec",
    "sample_lesion_spec",
    "sample_subject",
    "stream",
]

ATLAS_COHORTS = 4  # subjects are dealt round-robin over R001..R004, so n=10 prefixes n=40
LOG10_VOLUME = (3.76, 0.93)  # ATLAS v2.0 total lesion volume, log10(mm^3)
VOLUME_RANGE_MM3 = (10.0, 500_000.0)
MIN_COMPONENT_MM3 = 10.0
INFRATENTORIAL_MAX_MM3 = 60_000.0
DATASET_KEY = {"atlas": 0, "isles": 1}  # the second word of a subject's stream seed
_SITE_KEY = 2
LACUNE_MM3 = 1500.0  # a subcortical lesion under this is a lacune (up to ~14 mm across)
DATASET_CONTRASTS = {"atlas": ("t1",), "isles": ("dwi", "flair")}


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
        texture: ``(wavevectors (m, 3) rad/mm, phases (m,), roughness)``: the smooth noise
            that roughens the outline (amplitude = roughness x blob radius, at most 3.5 mm);
            None for smooth outlines.
    """

    components: tuple[LesionComponent, ...]
    region: str
    volume_mm3: float
    side: int = 0
    texture: tuple[np.ndarray, np.ndarray, float] | None = None

    @property
    def n_components(self) -> int:
        return len(self.components)

    @property
    def kind(self) -> str:
        """``lacunar``, ``subcortical``, ``cortico-subcortical``, ``infratentorial`` or ``none``."""
        if not self.components:
            return "none"
        if self.region.endswith("-cortical"):
            return "cortico-subcortical"
        if self.region.endswith("subcortical"):
            return "lacunar" if self.volume_mm3 < LACUNE_MM3 else "subcortical"
        return self.region


@dataclass(frozen=True)
class SubjectSpec:
    """Everything that defines one synthetic subject, independent of any grid.

    Attributes:
        lesion: The analytic lesion.
        anatomy: Pose, atrophy, ex-vacuo dilation, skull.
        contrasts: The images to render, first = the dataset's main one (``t1`` for the
            ATLAS-like set; ``dwi`` then ``flair`` for the ISLES-like set).
        warp_coef: B-spline coefficients of the displacement (mm): two levels, (3, 6, 6, 6)
            and (3, 10, 10, 10).
        bias_coef: B-spline coefficients of the log bias field, (5, 5, 5).
        layer_coef: B-spline coefficients, (2, 5, 5, 5), of the fields that mix the skull's
            cortical bone with marrow and the scalp's fat with muscle.
        scale: Intensity of white matter after scaling (file units).
        noise: Rician noise sigma relative to ``scale``.
        noise_key: Seed words of the subject's noise streams (one per contrast).
    """

    lesion: LesionSpec
    anatomy: Anatomy
    contrasts: tuple[Contrast, ...]
    warp_coef: tuple[np.ndarray, np.ndarray]
    bias_coef: np.ndarray
    layer_coef: np.ndarray
    scale: float
    noise: float
    noise_key: tuple[int, ...]

    def summary(self) -> dict:
        """Every scalar parameter (the manifest's record); arrays are named by their stream."""
        a, lesion = self.anatomy, self.lesion
        return {
            "lesion": {
                "kind": lesion.kind,
                "region": lesion.region,
                "side": lesion.side,
                "volume_mm3": round(lesion.volume_mm3, 2),
                "components": [
                    {
                        "centre_mm": [round(float(v), 2) for v in c.centre],
                        "volume_mm3": round(c.volume_mm3, 2),
                        "lobes": len(c.blobs) - 1,
                    }
                    for c in lesion.components
                ],  # fmt: skip
                "roughness": round(lesion.texture[2], 4) if lesion.texture else 0.0,
            },
            "anatomy": {
                "rotation_deg": [round(v, 3) for v in a.rotation_deg],
                "scale": [round(v, 4) for v in a.scale],
                "shift_mm": [round(v, 3) for v in a.shift_mm],
                "atrophy": round(a.atrophy, 4),
                "ventricle_mm": {str(k): round(v, 3) for k, v in a.ventricle_mm.items()},
                "sulcal_widening": round(a.sulcal_widening, 4),
                "extra_csf_mm": round(a.extra_csf_mm, 3),
                "skull_mm": round(a.skull_mm, 3),
                "scalp_mm": round(a.scalp_mm, 3),
                "sulcal_power": round(a.sulcal_power, 4),
            },
            "contrasts": {
                c.name: {
                    "mean": {k: round(v, 4) for k, v in c.mean.items()},
                    "sd": {k: round(v, 4) for k, v in c.sd.items()},
                    "rim_mm": round(c.rim_mm, 3),
                }
                for c in self.contrasts
            },
            "intensity_scale": round(self.scale, 3),
            "noise": round(self.noise, 5),
            "warp_rms_coef_mm": [round(float(np.sqrt((c**2).mean())), 3) for c in self.warp_coef],
            "bias_rms_coef": round(float(np.sqrt((self.bias_coef**2).mean())), 4),
            "layer_rms_coef": round(float(np.sqrt((self.layer_coef**2).mean())), 4),
            "noise_key": list(self.noise_key),
        }


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
    candidates = load_template().candidates
    total = float(np.clip(10 ** rng.normal(*LOG10_VOLUME), *VOLUME_RANGE_MM3))
    # components: one in 47 % of subjects, else 2 + geometric extra (median 2, at most 10)
    n = 1 if rng.random() < 0.47 else 1 + min(int(rng.geometric(0.45)), 9)
    dominant_share = 1.0 if n == 1 else rng.uniform(0.6, 0.95)
    satellites = (
        np.maximum(rng.dirichlet(np.ones(n - 1)) * total * (1 - dominant_share), MIN_COMPONENT_MM3)
        if n > 1
        else np.zeros(0)
    )
    dominant_volume = max(total * dominant_share, MIN_COMPONENT_MM3)

    # region of the dominant lesion: 8 % infratentorial, else left 53:39 right,
    # 65 % subcortical / 35 % cortical (-> ~60 % / ~32 % of all)
    u = rng.random()
    if u < 0.08:
        region, side = "infratentorial", 0.0
        pool = candidates["infratentorial"]
        # the posterior fossa holds ~150 ml: a brainstem/cerebellar stroke stays below the cap
        shrink = min(1.0, INFRATENTORIAL_MAX_MM3 / total)
        total, dominant_volume = total * shrink, max(dominant_volume * shrink, MIN_COMPONENT_MM3)
        satellites = np.maximum(satellites * shrink, MIN_COMPONENT_MM3)
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
    tree = load_template().tissue_trees[int(side)]
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
    # thresholded smooth noise on the outline: random Fourier modes, 6-14 mm wavelengths
    m = 24
    directions = rng.standard_normal((m, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavevectors = directions * (2 * np.pi / rng.uniform(6.0, 14.0, (m, 1)))
    texture = (wavevectors, rng.uniform(0.0, 2 * np.pi, m), float(rng.uniform(0.15, 0.35)))
    return LesionSpec(tuple(components), region, volume, int(side), texture)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream of ``seed`` under ``key`` (e.g. dataset, subject index, purpose)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def sample_subject(
    seed: int, index: int, dataset: Literal["atlas", "isles"] = "atlas"
) -> SubjectSpec:
    """Draw subject ``index`` of a synthetic dataset; depends only on (seed, dataset, index).

    Cohort ("site") parameters come from a stream keyed by the cohort, subject-level jitter
    from the subject's own stream.
    """
    if dataset not in DATASET_KEY:
        raise LesionresError(f"unknown synthetic dataset {dataset!r} (expected atlas or isles)")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise LesionresError(f"seed must be a non-negative integer, got {seed!r}")
    site = stream(seed, _SITE_KEY, DATASET_KEY[dataset], index % ATLAS_COHORTS)
    site_scale = site.uniform(600, 1000)
    site_noise = site.uniform(0.01, 0.035)
    rng = stream(seed, DATASET_KEY[dataset], index, 0)
    lesion = sample_lesion_spec(rng)
    # B-spline smoothing shrinks the coefficients' spread about 3x: these give a displacement of
    # ~1.5-2 mm rms per axis (up to ~7 mm) and a bias of about +-10-25 % over the brain
    warp = (rng.normal(0.0, 5.0, (3, 6, 6, 6)), rng.normal(0.0, 2.4, (3, 10, 10, 10)))
    bias = rng.normal(0.0, 0.35, (5, 5, 5))
    anatomy = sample_anatomy(rng, lesion)
    contrasts = tuple(sample_contrast(name, rng) for name in DATASET_CONTRASTS[dataset])
    return SubjectSpec(
        lesion=lesion,
        anatomy=anatomy,
        contrasts=contrasts,
        warp_coef=warp,
        bias_coef=bias,
        scale=float(site_scale * rng.uniform(0.9, 1.1)),
        noise=float(site_noise * rng.uniform(0.8, 1.2)),
        layer_coef=rng.normal(0.0, 1.5, (2, 5, 5, 5)),
        noise_key=(seed, DATASET_KEY[dataset], index, 1),
    )
