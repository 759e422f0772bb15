"""What a synthetic subject looks like apart from its lesion's shape: its head (pose, atrophy,
ex-vacuo dilation, skull; :class:`Anatomy`) and its image contrasts (:class:`Contrast`), drawn
from the subject's random stream (:mod:`lesionres.data.synthetic_specs` documents the ranges).

The contrast orderings are those of the sequences: T1 (ATLAS v2.0) WM > GM > CSF with a chronic
lesion's CSF-like cavity inside a gliotic rim; DWI b=1000 (ISLES 2022) GM >= WM >> CSF with an
acute lesion 1.8-3x brighter than white matter; FLAIR with suppressed CSF and a bright lesion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from lesionres.data.mni_template import load_tissue_maps
from lesionres.errors import LesionresError

if TYPE_CHECKING:
    from lesionres.data.synthetic_specs import LesionSpec

__all__ = ["CONTRASTS", "TISSUES", "Anatomy", "Contrast", "sample_anatomy", "sample_contrast"]

ContrastName = Literal["t1", "dwi", "flair"]
CONTRASTS: tuple[str, ...] = get_args(ContrastName)
# tissues of the intensity model; "rim" and "core" are the lesion's
TISSUES = ("gm", "wm", "csf", "skull", "marrow", "scalp", "muscle", "rim", "core")


@dataclass(frozen=True)
class Contrast:
    """Tissue intensities of one image contrast: a Gaussian per tissue of :data:`TISSUES`.

    Attributes:
        name: ``t1``, ``dwi`` or ``flair``.
        mean: Mean per tissue, relative to white matter (= 1).
        sd: Standard deviation per tissue, same units.
        rim_mm: Width of the lesion's rim (gliosis; the penumbra-like edge for DWI/FLAIR).
    """

    name: str
    mean: dict[str, float]
    sd: dict[str, float]
    rim_mm: float


@dataclass(frozen=True)
class Anatomy:
    """A subject's head: pose, atrophy and outer layers (the deformation is in SubjectSpec).

    Attributes:
        rotation_deg: Rotation about x, y, z (degrees) of the head about the brain centre.
        scale: Head size per axis (1 = the template).
        shift_mm: Translation (mm).
        atrophy: 0 (none) to 1 (marked): drives the three values below.
        ventricle_mm: How far (mm) each lateral ventricle's wall moves out into the tissue,
            ``{-1: left, +1: right}`` (atrophy and, on the lesion's side, ex-vacuo dilation).
        sulcal_widening: Share of the cortex next to sulcal CSF that becomes CSF.
        extra_csf_mm: Extra-axial CSF thickness.
        skull_mm: Skull thickness, 0 for a skull-stripped image (no skull, no scalp).
        scalp_mm: Scalp thickness (0 without skull).
        sulcal_power: The template's partial-volume sulcal CSF fraction is raised to this
            power (0.4-1; lower with atrophy): sharper, wider sulci.
    """

    rotation_deg: tuple[float, float, float]
    scale: tuple[float, float, float]
    shift_mm: tuple[float, float, float]
    atrophy: float
    ventricle_mm: dict[int, float]
    sulcal_widening: float
    extra_csf_mm: float
    skull_mm: float
    scalp_mm: float
    sulcal_power: float = 1.0


def sample_contrast(name: str, rng: np.random.Generator) -> Contrast:
    """Random tissue intensities with the contrast's ordering (white matter = 1)."""
    u = rng.uniform
    if name == "t1":  # WM > GM > CSF; chronic lesion: CSF-like cavity, rim darker than GM
        gm, csf = u(0.55, 0.8), u(0.1, 0.35)
        core = csf + u(0.0, 0.25) * (gm - csf)
        rim = core + u(0.5, 0.85) * (gm - core)
        # fatty marrow and scalp fat bright, cortical bone dark, muscle about grey matter
        outer = {"skull": u(0.02, 0.2), "marrow": u(0.4, 1.0), "scalp": u(0.6, 1.2)}
        outer["muscle"] = u(0.3, 0.7)
    elif name in ("dwi", "flair"):
        # DWI b=1000: GM >= WM >> CSF, fat-suppressed scalp, acute core 1.8-3x WM;
        # FLAIR: CSF suppressed, GM >= WM, lesion 1.4-2.2x WM; the rim between tissue and core
        dwi = name == "dwi"
        gm = u(1.0, 1.3) if dwi else u(1.0, 1.25)
        csf = u(0.08, 0.3) if dwi else u(0.05, 0.25)
        core = u(1.8, 3.0) if dwi else u(1.4, 2.2)
        rim = gm + u(0.3, 0.7) * (core - gm)
        outer = {"skull": u(0.02, 0.12), "scalp": u(0.03, 0.3) if dwi else u(0.4, 1.0)}
        outer |= {"marrow": u(0.02, 0.2) if dwi else u(0.3, 0.9), "muscle": u(0.1, 0.5)}
    else:
        raise LesionresError(f"unknown contrast {name!r} (expected one of {CONTRASTS})")
    mean = {"gm": gm, "wm": 1.0, "csf": csf, **outer, "rim": rim, "core": core}
    mean = {k: float(mean[k]) for k in TISSUES}
    sd = {k: float(v * u(0.01, 0.05)) for k, v in mean.items()}
    return Contrast(name, mean, sd, float(u(1.0, 3.0)))


def sample_anatomy(rng: np.random.Generator, lesion: LesionSpec) -> Anatomy:
    """Pose, atrophy, ex-vacuo dilation on the lesion's side, skull (ranges: synthetic_specs)."""
    rotation = np.clip(rng.normal(0.0, 2.0, 3), -5.0, 5.0)
    size = float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))
    scale = size * np.exp(np.clip(rng.normal(0.0, 0.01, 3), -0.02, 0.02))
    shift = rng.uniform(-3.0, 3.0, 3)
    atrophy = float(rng.uniform() ** 1.5)  # most subjects mild, a few marked
    widen = {-1: 3.5 * atrophy, 1: 3.5 * atrophy}
    if lesion.side and lesion.components:
        # ex vacuo: tissue loss pulls the nearby ventricle open, more for large, near lesions
        centre = load_tissue_maps().ventricles[lesion.side][0]
        distance = float(np.linalg.norm(lesion.components[0].centre - centre))
        pull = min(1.0, lesion.volume_mm3 / 50_000.0) ** 0.5 * np.exp(-distance / 40.0)
        widen[lesion.side] += 3.0 * float(pull)
    skull = rng.random() < 0.5
    extra_csf, skull_mm, scalp_mm = 0.5 + 2.5 * atrophy * rng.uniform(0.6, 1.0), 0.0, 0.0
    if skull:
        skull_mm, scalp_mm = rng.uniform(3.0, 7.0), rng.uniform(3.0, 7.0)
    return Anatomy(
        tuple(float(v) for v in rotation),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in shift),
        atrophy,
        {k: float(v) for k, v in widen.items()},
        float(0.6 * atrophy),
        float(extra_csf),
        float(skull_mm),
        float(scalp_mm),
        float(np.clip(rng.uniform(0.4, 1.0) - 0.2 * atrophy, 0.4, 1.0)),
    )
