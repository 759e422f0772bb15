"""Render a synthetic subject (:mod:`lesionres.data.synthetic_specs`) on a voxel grid.

Everything is sampled directly on the target grid, never rendered at 1 mm and downsampled: each
voxel centre ``x`` is mapped to the template point ``y = C + S^-1 R^T (x - C - t) + u(x)`` (the
subject's head pose, then its smooth deformation ``u``) and the tissue maps
(:func:`~lesionres.data.mni_template.load_tissue_maps`) are read there by trilinear interpolation,
so the lesion mask deforms with the image. A coarse spacing is a physical acquisition: the maps are
blurred by :func:`~lesionres.data.mni_template.synthesis_sigma` (FWHM = voxel) first, which also
gives partial-volume mixing at every tissue border.

Per voxel: the sulci's partial-volume CSF fraction is raised to the subject's power (0.4-1, sharper
and wider sulci), the lateral ventricles widen (their walls move out by the subject's atrophy and
ex-vacuo millimetres, on the template's ventricle distance), grey matter next to sulcal CSF turns
into CSF with atrophy; extra-axial CSF, skull and scalp are layers of the subject's thicknesses at
the template's surface distance (soft edges: partial volume), the skull part marrow and the scalp
part muscle where the subject's smooth mixing fields say; the lesion replaces grey and white
matter by its fraction (below). The image is the sum over tissues of probability x tissue intensity
(a Gaussian per tissue: its mean, plus its sd x a white-noise texture), then a smooth multiplicative
bias field, a global scale and Rician noise.

Lesion fraction: the Gaussian-smoothed indicator ``0.5 * erfc(d / (sqrt(2) * sigma))`` of the
approximate signed distance ``d`` (mm) to the boundary, roughened by the lesion's smooth noise,
``sigma`` combining a 0.6 mm intrinsic edge with the acquisition blur along the boundary normal,
times the grey + white matter there: no lesion in CSF or outside the brain. Pieces that lie wholly
outside the smooth outline (islands of the noise, which tripled the component count) are dropped
with their partial-volume halo. The binary mask is
``fraction >= 0.5`` on the grid, so small lesions vanish at coarse spacings, as they do in real
low-resolution scans. Deeper than the contrast's rim width the lesion has its core intensity
(chronic T1: a CSF-like cavity; DWI/FLAIR: the brightest part).

- :func:`atlas_grid`: the ATLAS v2.0 field of view (MNI space, RAS, axis-aligned) at any
  isotropic spacing.
- :func:`isles_grid`: a native, slightly oblique grid (ISLES 2022-like field of view).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.special import erfc

from lesionres.data.mni_template import (
    BRAIN_CENTRE,
    blurred_tissue_maps,
    load_template,
    synthesis_sigma,
)
from lesionres.data.synthetic_appearance import TISSUES, Contrast
from lesionres.data.synthetic_specs import Anatomy, LesionSpec, SubjectSpec, stream
from lesionres.errors import LesionresError

__all__ = [
    "ISLES_FOV_MM",
    "Grid",
    "atlas_grid",
    "isles_grid",
    "render_contrasts",
    "render_subject",
    "render_tissues",
]

ISLES_FOV_MM = (224.0, 224.0, 146.0)  # 112x112x73 at 2 mm, the typical ISLES 2022 DWI grid
EDGE_SIGMA_MM = 0.6  # intrinsic softness of a lesion boundary (gliosis + 1 mm partial volume)
LAYER_SIGMA_MM = 0.5  # softness of the extra-axial CSF / skull / scalp borders
MAX_ROUGHNESS_MM = 3.5  # the outline noise's amplitude, at most
# Smooth fields (deformation, bias) live on a 5 mm lattice of a 280 mm cube around the brain,
# large enough for any oblique ISLES-like grid; they are evaluated by trilinear lookup.
_LATTICE_HALF_MM = 140.0
_LATTICE_SIZE = 57


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
    sigma = synthesis_sigma(spacing)
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
    return Grid(shape, affine, tuple(synthesis_sigma(s) for s in spacing))


def _euler(angles: np.ndarray) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _bspline_matrix(n_points: int, n_coef: int) -> np.ndarray:
    """Cubic B-spline basis (n_points x n_coef) spanning the lattice end to end."""
    u = np.linspace(0.0, n_coef - 3, n_points)[:, None] - (np.arange(n_coef) - 1)[None, :]
    a = np.abs(u)
    return np.where(a < 1, (4 - 6 * a**2 + 3 * a**3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def _lattice_field(coef: np.ndarray) -> np.ndarray:
    """Evaluate B-spline coefficients (..., K, K, K) on the 57^3 lattice (separably)."""
    w = _bspline_matrix(_LATTICE_SIZE, coef.shape[-1])
    return np.einsum("...abc,ia,jb,kc->...ijk", coef, w, w, w, optimize=True)


def _pose(anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """``(M, b)`` with template point ``y = M x + b`` for a voxel at world ``x`` (before ``u``)."""
    rotation = _euler(np.deg2rad(anatomy.rotation_deg))
    matrix = np.diag(1.0 / np.asarray(anatomy.scale)) @ rotation.T
    offset = BRAIN_CENTRE - matrix @ (BRAIN_CENTRE + np.asarray(anatomy.shift_mm))
    return matrix, offset


def _sampling_fields(
    subject: SubjectSpec, grid: Grid
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Where each voxel of ``grid`` samples the template, its log bias, the mixing fields of the
    outer layers, and the largest shift.

    A voxel at world ``x`` shows the template at ``M x + b + u(x)`` (the head pose, then the
    displacement ``u``). Both (as ``grid_sample`` coordinates into the template) and the
    log bias are evaluated on a sub-grid of at most 8 mm steps and trilinearly upsampled: the
    pose is linear in the voxel index and ``u`` and the bias vary over ~20-50 mm, which makes
    this exact to a few hundredths of a mm and 3x faster at 1 mm.

    Returns:
        ``(lookup, log_bias, layers, max_shift)``: (I, J, K, 3) template coordinates (z, y, x
        order in [-1, 1]), (I, J, K) log bias, (I, J, K, 2) the skull's marrow and the scalp's
        muscle share (0-1), and max |y - x| in mm.
    """
    warp = sum(_lattice_field(c) for c in subject.warp_coef)
    bias = _lattice_field(subject.bias_coef)[None]
    layers = _lattice_field(subject.layer_coef)
    lattice = np.concatenate([warp, bias, layers]).astype(np.float32)
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
    matrix, offset = _pose(subject.anatomy)
    sampled = world @ matrix.T + offset + np.moveaxis(fields[:3], 0, -1)
    max_shift = float(np.sqrt(((sampled - world) ** 2).sum(axis=-1)).max())
    template = load_template()
    size = np.array(template.t1.shape)
    coords = ((sampled - template.affine[:3, 3]) * (2.0 / (size - 1)) - 1.0)[..., ::-1]  # z, y, x
    # C-contiguous (channels first): a channels-last input sends interpolate down a 3x slower path
    stacked = np.concatenate([np.moveaxis(coords, -1, 0), fields[3:]])
    stacked = torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32))[None]
    if tuple(coarse) != tuple(grid.shape):
        stacked = F.interpolate(stacked, size=grid.shape, mode="trilinear", align_corners=True)
    stacked = stacked[0].permute(1, 2, 3, 0)
    shares = 0.5 * (1.0 + torch.tanh(3.0 * stacked[..., 4:]))  # mostly one or the other
    return stacked[..., :3], stacked[..., 3], shares, max_shift


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


def _outline_noise(lesion: LesionSpec, points: np.ndarray) -> np.ndarray:
    """The lesion's unit-variance smooth noise at template points (N, 3); zeros if none."""
    if lesion.texture is None:
        return np.zeros(len(points), dtype=np.float32)
    wavevectors, phases, _ = lesion.texture
    angles = points @ wavevectors.T.astype(np.float32) + phases.astype(np.float32)
    return np.cos(angles, out=angles).sum(axis=1) * np.float32(math.sqrt(2.0 / len(phases)))


def _lesion_fraction(
    lesion: LesionSpec, points: np.ndarray, blur_mm: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume lesion fraction (0-1), depth (mm inside the outline) and whether inside
    the smooth outline (the union before roughening) at template-space points (N, 3), before
    confinement to tissue."""
    blur2 = np.asarray(blur_mm, dtype=np.float32) ** 2
    reach = 4 * (EDGE_SIGMA_MM + float(np.sqrt(blur2.max())))  # where the soft edge is ~0
    roughness = lesion.texture[2] if lesion.texture is not None else 0.0
    noise = _outline_noise(lesion, points)
    fraction = np.zeros(len(points), dtype=np.float32)
    depth = np.full(len(points), -np.inf, dtype=np.float32)
    body = np.zeros(len(points), dtype=bool)
    for blob in (b for c in lesion.components for b in c.blobs):
        # thresholded smooth noise: the outline moves by amplitude x noise, in mm
        amplitude = min(roughness * abs(np.linalg.det(blob.axes)) ** (1 / 3), MAX_ROUGHNESS_MM)
        offset = points - blob.centre.astype(np.float32)
        limit = blob.extent() + reach + 3 * amplitude
        near = np.flatnonzero((offset * offset).sum(axis=1) < limit**2)
        if not len(near):
            continue
        distance, normal = blob.signed_distance(points[near])
        body[near] |= distance < 0
        distance += np.float32(amplitude) * noise[near]
        # Gaussian-blurred half space: the blur acts along the boundary normal
        sigma = np.sqrt(EDGE_SIGMA_MM**2 + (normal**2) @ blur2)
        soft = 0.5 * erfc(distance / (np.float32(math.sqrt(2)) * sigma))
        fraction[near] = np.maximum(fraction[near], soft)  # union of blobs and components
        depth[near] = np.maximum(depth[near], -distance)
    if lesion.side:
        # a supratentorial stroke stays in its hemisphere: soft cut at the midline (x = 0)
        sigma_x = math.sqrt(EDGE_SIGMA_MM**2 + float(blur2[0]))
        fraction *= 0.5 * erfc(-lesion.side * points[:, 0] / np.float32(math.sqrt(2) * sigma_x))
    return fraction, depth, body


def _without_islands(lesion: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The lesion fraction without the outline noise's islands: pieces of the mask (26-connected)
    that lie wholly outside the smooth outline ``body``, with their partial-volume halo."""
    labels, n = ndimage.label(lesion >= 0.5, structure=np.ones((3, 3, 3)))
    if n == 0:
        return lesion
    islands = ~np.isin(labels, np.unique(labels[body])) & (labels > 0)
    if not islands.any():
        return lesion
    halo = ndimage.binary_dilation(islands, iterations=2) & ~((labels > 0) & ~islands)
    return np.where(halo, np.float32(0.0), lesion)


def _step(values: np.ndarray, sigma: float) -> np.ndarray:
    """Soft Heaviside: the fraction of a Gaussian-blurred voxel on the positive side."""
    return (0.5 * erfc(-values / np.float32(math.sqrt(2) * sigma))).astype(np.float32)


@dataclass
class _Rendered:
    """Tissue fractions on the grid (lesion included) and the mask; images are mixed from it."""

    fractions: dict[str, np.ndarray]  # TISSUES: voxel fractions, summing to at most 1
    mask: np.ndarray
    log_bias: np.ndarray


def _render(subject: SubjectSpec, grid: Grid) -> _Rendered:
    """Tissue fractions of ``subject`` on ``grid``: anatomy, atrophy, layers, lesion."""
    template = load_template()
    maps_volume = blurred_tissue_maps(tuple(float(s) for s in grid.blur_mm))
    lookup, log_bias, shares, max_shift = _sampling_fields(subject, grid)
    maps = F.grid_sample(
        maps_volume, lookup[None], mode="bilinear", padding_mode="border", align_corners=True
    )[0].numpy()  # the rest in numpy: cheap elementwise work, no thread-pool waits
    gm, wm, csf, sulcal, distance, to_ventricle, sulcal_csf = maps
    anatomy = subject.anatomy
    # the subject's sulci: partial-volume sulcal CSF raised to a power below 1 (sharper, wider)
    if anatomy.sulcal_power < 1.0:
        extra = np.power(np.clip(sulcal_csf, 0.0, 1.0), np.float32(anatomy.sulcal_power))
        extra -= sulcal_csf
        tissue = gm + wm
        share = np.clip(extra / np.maximum(tissue, 1e-3), 0.0, 1.0)
        csf += tissue * share
        gm *= 1 - share
        wm *= 1 - share
        del extra, tissue, share
    sigma = math.sqrt(LAYER_SIGMA_MM**2 + float(np.mean(np.square(grid.blur_mm))))

    # atrophy, ex vacuo: the lateral ventricles' walls move out into the tissue (per side)
    left = lookup[..., 2].numpy() < 0  # template x < 0 (the template grid is symmetric)
    widen = np.where(left, anatomy.ventricle_mm[-1], anatomy.ventricle_mm[1]).astype(np.float32)
    was = _step(-to_ventricle, sigma)
    taken = np.clip((_step(widen - to_ventricle, sigma) - was) / np.maximum(1 - was, 1e-3), 0, 1)
    # and cortex next to sulcal CSF gives way to CSF
    cortex = np.float32(anatomy.sulcal_widening) * sulcal
    lost = gm * np.maximum(taken, cortex) + wm * taken
    gm *= 1 - np.maximum(taken, cortex)
    wm *= 1 - taken
    csf += lost
    del left, was, taken, cortex, lost, widen
    # extra-axial CSF, skull, scalp: layers at the intracranial surface distance (mm)
    edges = np.cumsum([0.0, anatomy.extra_csf_mm, anatomy.skull_mm, anatomy.scalp_mm])
    steps = [_step(distance - np.float32(e), sigma) for e in edges[: 4 if anatomy.skull_mm else 2]]
    csf += steps[0] - steps[1]
    zero = np.zeros_like(gm)
    skull = steps[1] - steps[2] if anatomy.skull_mm else zero
    scalp = steps[2] - steps[3] if anatomy.skull_mm else zero
    total = gm + wm + csf + skull + scalp
    over = np.maximum(total, 1.0)
    fractions = {"gm": gm / over, "wm": wm / over, "csf": csf / over}
    # the skull: cortical bone with patches of marrow; the scalp: fat with patches of muscle
    marrow, muscle = (shares[..., i].numpy() for i in (0, 1))
    fractions |= {"skull": skull * (1 - marrow) / over, "marrow": skull * marrow / over}
    fractions |= {"scalp": scalp * (1 - muscle) / over, "muscle": scalp * muscle / over}
    fractions |= {"rim": zero, "core": zero}
    del maps, total, over

    mask = np.zeros(grid.shape, dtype=np.uint8)
    margin = max_shift + 4 * (EDGE_SIGMA_MM + max(grid.blur_mm)) + 3 * MAX_ROUGHNESS_MM
    box = _lesion_box(subject.lesion, grid, margin=margin)
    if box is not None:
        # back from grid_sample coordinates to template-space millimetres, in the box only
        t_origin, t_size = template.affine[:3, 3], np.array(template.t1.shape)
        coords = lookup[box].numpy()[..., ::-1].reshape(-1, 3)
        points = ((coords + 1.0) * ((t_size - 1) / 2.0) + t_origin).astype(np.float32)
        fraction, depth, body = _lesion_fraction(subject.lesion, points, grid.blur_mm)
        fraction, depth, body = (v.reshape(mask[box].shape) for v in (fraction, depth, body))
        # the lesion replaces grey and white matter only (none in CSF, outside the brain)
        tissue = {k: fractions[k][box] for k in ("gm", "wm")}
        lesion = fraction * (tissue["gm"] + tissue["wm"])
        kept = _without_islands(lesion, body)
        fraction = np.where(kept < lesion, np.float32(0.0), fraction)
        lesion = kept
        rim_mm = subject.contrasts[0].rim_mm if subject.contrasts else 2.0
        core = _step(
            depth - np.float32(rim_mm), math.sqrt(EDGE_SIGMA_MM**2 + max(grid.blur_mm) ** 2)
        )
        for key in ("gm", "wm"):
            fractions[key][box] = tissue[key] * (1 - fraction)
        fractions["rim"] = zero.copy()
        fractions["core"] = zero.copy()
        fractions["rim"][box] = lesion * (1 - core)
        fractions["core"][box] = lesion * core
        mask[box] = lesion >= 0.5
    return _Rendered(fractions, mask, log_bias.numpy())


def _image(rendered: _Rendered, subject: SubjectSpec, contrast: Contrast, key: int) -> np.ndarray:
    """Mix one contrast's image from the tissue fractions; bias, scale, Rician noise."""
    fractions = rendered.fractions
    image = np.zeros(rendered.mask.shape, dtype=np.float32)
    spread = np.zeros_like(image)
    for tissue in TISSUES:
        image += np.float32(contrast.mean[tissue]) * fractions[tissue]
        spread += np.float32(contrast.sd[tissue]) * fractions[tissue]
    noise = stream(*subject.noise_key, key)  # the subject's own noise, one stream per contrast
    spread *= noise.standard_normal(image.shape, dtype=np.float32)
    image += spread  # each tissue's Gaussian: mean + sd x a white-noise texture
    image *= np.exp(rendered.log_bias)
    image *= np.float32(subject.scale)
    sigma = np.float32(subject.noise * subject.scale)
    real = noise.standard_normal(image.shape, dtype=np.float32)
    real *= sigma
    image += real
    imag = noise.standard_normal(image.shape, dtype=np.float32)
    imag *= sigma
    np.hypot(image, imag, out=image)
    np.rint(image, out=image)
    np.clip(image, 0, 32767, out=image)
    return image.astype(np.int16)


def render_contrasts(subject: SubjectSpec, grid: Grid) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Render every contrast of ``subject`` on ``grid`` (same anatomy and lesion).

    Returns:
        ``({contrast name: int16 image}, uint8 0/1 mask)``.
    """
    rendered = _render(subject, grid)
    images = {c.name: _image(rendered, subject, c, i) for i, c in enumerate(subject.contrasts)}
    return images, rendered.mask


def render_subject(subject: SubjectSpec, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Render one subject's main contrast on ``grid``.

    Args:
        subject: The subject, from
            :func:`~lesionres.data.synthetic_specs.sample_subject`.
        grid: Where to render it (:func:`atlas_grid`, :func:`isles_grid`).

    Returns:
        ``(image, mask)``: int16 image (T1-like for the ATLAS-like set, DWI-like for the
        ISLES-like set) and uint8 0/1 lesion mask, both ``grid.shape``.
    """
    rendered = _render(subject, grid)
    return _image(rendered, subject, subject.contrasts[0], 0), rendered.mask


def render_tissues(subject: SubjectSpec, grid: Grid) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The tissue fractions of ``subject`` on ``grid`` (:data:`TISSUES`,
    float32 0-1) and its mask: what the images are mixed from (tests, figures)."""
    rendered = _render(subject, grid)
    return rendered.fractions, rendered.mask
