"""Deterministic synthetic stroke data: an ATLAS-like and an ISLES-like set from the MNI template.

The built-in dataset lets ``python -m lesionres fit`` run with nothing to download, and is what
a model first learns from, so it is domain-randomised after SynthSeg (Billot et al. 2023) and
SynthStroke (Chalcroft et al. 2025): a model must learn what a lesion looks like, not "anything
unlike the template is lesion". Every subject is drawn from the tissue maps of the MNI152 2009a
symmetric template shipped with nilearn (grey and white matter; CSF, surface distance derived)
with its own

- head: pose after registration (size 0.9-1.1, rotations up to 5 degrees, shifts up to 3 mm),
  a smooth random deformation (cubic B-spline, ~1.5-2 mm rms per axis, up to ~7 mm), atrophy
  (ventricles magnified, sulci widened, more extra-axial CSF), ex-vacuo dilation of the
  ventricle next to a large lesion, and in half of the subjects skull (cortical bone with
  patches of marrow) and scalp (fat with patches of muscle), so unstripped heads are in
  distribution;
- image: random tissue intensities (a Gaussian per tissue) in the set's contrast ordering,
  partial-volume mixing at every tissue border, a smooth multiplicative bias field (about
  +-10-25 %), a global scale and Rician noise, partly per cohort ("site"), as ATLAS pools
  33 cohorts;
- lesion: ATLAS v2.0 sizes, counts and places (:mod:`lesionres.data.synthetic_specs`), an
  irregular outline (thresholded smooth noise around a union of ellipsoids, without the
  noise's detached islands, so rendered masks keep ATLAS's component counts), lacunar,
  subcortical, cortico-subcortical or infratentorial, confined to grey and white matter, with
  a heterogeneous intensity: a CSF-like cavity inside a gliotic rim on T1 (chronic), a bright
  core on DWI and FLAIR (acute).

The ranges of every parameter are in :mod:`lesionres.data.synthetic_specs`; each subject's
values are recorded in ``synthetic.json`` (``parameters``; the deformation and bias
coefficients are named by their random stream). ``python -m lesionres.data.synthetic_figure
PATH`` draws a few subjects next to the template (``docs/synthetic_subjects.png``).

**Grids and acquisition.** Everything is sampled directly on the target grid (trilinear
sampling of the tissue maps at the mapped template point of each voxel centre), never
rendered at 1 mm and downsampled. A target spacing ``s > 1`` mm along an axis is a physical
acquisition: the 1 mm maps are first blurred with a Gaussian of FWHM = ``s`` (``sigma = s /
2.355`` mm) along that axis (cached per spacing; not SynthSeg's 0.75 x s, because the MNI maps
are a population average whose sulci are already blurred), and the lesion edge gets the same
blur; the binary mask is the lesion fraction ``>= 0.5`` on the written grid, so small
satellites vanish at coarse spacings, as they do in real low-resolution scans.

- ATLAS-like (:func:`generate_atlas_like`): **T1-like** contrast, MNI space, RAS, axis-aligned.
  Spacing 1 mm is the template grid itself (same shape and affine). Spacing ``s`` keeps the
  field of view: shape ``ceil(197 / s) x ceil(233 / s) x ceil(189 / s)`` with the voxel
  centres placed symmetrically around the template grid's centre (MNI (0, -18, 22)); at 2 mm
  this is 99x117x95 with the same origin (-98, -134, -72) — every other template voxel centre.
- ISLES-like (:func:`generate_isles_like`): other subjects, imaged as ISLES 2022 is: a
  **DWI-like** (``_dwi``) and a **FLAIR-like** (``_flair``) image of the same head and lesion,
  on native, slightly oblique grids — a random rotation of up to 5 degrees about each axis and
  a shift of up to 6 mm of a 224x224x146 mm field of view centred on the brain (112x112x73 at
  2 mm, 224x224x29 at 1x1x5 mm), spacings alternating over ``spacings``. World coordinates of
  the written affines are MNI millimetres (only the grid is oblique), so resampling through
  the affine puts the brain where ATLAS-like brains are. A T1-trained model tested on this set
  meets a modality shift as well as a resolution shift, as it does on real ISLES 2022 (which
  has no T1w); results record the modality (``dwi-like (synthetic)``) and reports say so. The
  slice-profile blur is applied along the template axes (the grid is at most a few degrees
  off them).

**Determinism**: every subject draws its parameters from its own random stream, seeded by
``(seed, dataset, index)``, and its noise from others, so the same seed writes byte-identical
files (gzip headers carry mtime 0; same library versions assumed) and ``n=10`` is a prefix of
``n=40``; a subject's anatomy and lesion do not depend on the spacing. Images are ``int16``
(white matter at roughly 550-1100), masks ``uint8`` 0/1.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX, ATLAS_MASK_SUFFIX
from lesionres.data.mni_template import TEMPLATE_NAME
from lesionres.data.synthetic_render import Grid, atlas_grid, isles_grid, render_contrasts
from lesionres.data.synthetic_specs import (
    ATLAS_COHORTS,
    DATASET_KEY,
    SubjectSpec,
    sample_subject,
    stream,
)
from lesionres.errors import LesionresError

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST",
    "generate_atlas_like",
    "generate_isles_like",
    "generate_synthetic",
]


# bumped whenever the same settings write other images: a dataset of another version is stale
GENERATOR_VERSION = 2


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
    parameters: dict

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
            "parameters": self.parameters,
        }


def _measure(mask: np.ndarray, grid: Grid) -> tuple[float, int]:
    """Lesion volume (ml) and component count (6-connectivity, as the ATLAS challenge code)."""
    voxel_ml = abs(np.linalg.det(grid.affine[:3, :3])) / 1000.0
    objects = ndimage.find_objects(mask)
    if not objects or objects[0] is None:
        return 0.0, 0
    crop = mask[objects[0]]
    return float(crop.sum() * voxel_ml), int(ndimage.label(crop)[1])


def _write_subject(
    sid: str, cohort: str, paths: dict[str, Path], subject: SubjectSpec, grid: Grid, code: str
) -> _Written:
    """Render ``subject`` on ``grid``, write each contrast's image and the mask to ``paths``
    (keyed by contrast name and ``mask``; sform/qform ``code``), measure the lesion as written."""
    images, mask = render_contrasts(subject, grid)
    for name, image in images.items():
        _write_nifti(paths[name], image, grid.affine, code)
    _write_nifti(paths["mask"], mask, grid.affine, code)
    volume, components = _measure(mask, grid)
    lesion = subject.lesion
    return _Written(
        sid,
        cohort,
        paths[subject.contrasts[0].name],
        paths["mask"],
        grid.spacing,
        lesion.region,
        lesion.volume_mm3 / 1000,
        lesion.n_components,
        volume,
        components,
        subject.summary(),
    )


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
            paths = {
                "t1": folder / f"{sid}_ses-1{ATLAS_IMAGE_SUFFIX}",
                "mask": folder / f"{sid}_ses-1{ATLAS_MASK_SUFFIX}",
            }
            subject = sample_subject(seed, index, "atlas")
            written.append(_write_subject(sid, f"R{cohort:03d}", paths, subject, grid, "mni"))
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
            stem = f"{sid}/ses-0001/{sid}_ses-0001"
            subject = sample_subject(seed, index, "isles")
            paths = {c.name: out / "rawdata" / f"{stem}_{c.name}.nii.gz" for c in subject.contrasts}
            paths["mask"] = out / "derivatives" / f"{stem}_msk.nii.gz"
            pose = stream(seed, DATASET_KEY["isles"], index, 2)  # the grid's own stream
            grid = isles_grid(spacings[index % len(spacings)], pose)
            written.append(_write_subject(sid, "", paths, subject, grid, "scanner"))
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
        spacing: Isotropic voxel size (mm); 1 is the ATLAS grid, see
            :func:`~lesionres.data.synthetic_render.atlas_grid`.
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

    ``out/rawdata/sub-strokecaseNNNN/ses-0001/..._{dwi,flair}.nii.gz`` (DWI-like and
    FLAIR-like images of the same head and lesion) and
    ``out/derivatives/sub-strokecaseNNNN/ses-0001/..._msk.nii.gz``, all on the same native
    oblique grid, so :func:`lesionres.data.layouts.find_isles` reads it unchanged (either
    modality). The set differs from the ATLAS-like one in modality, resolution and grid, as
    real ISLES 2022 does. Subjects are distinct from the ATLAS-like ones of the same seed.

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
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n": n,
        "n_isles": n_isles,
        "spacing": float(spacing),
        "isles_spacings": [[float(v) for v in s] for s in isles_spacings],
        "contrasts": {"atlas": ["t1"], "isles": ["dwi", "flair"]},
        "parameter_ranges": _ranges(),
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


def _ranges() -> dict[str, str]:
    """The documented ranges the subjects' parameters are drawn from (synthetic_specs)."""
    from lesionres.data import synthetic_specs

    doc = synthetic_specs.__doc__ or ""
    parts = doc.split("\n\n")
    keys = ("Lesions", "Anatomy", "Contrast")
    return {
        key.lower(): " ".join(p.split()) for key in keys for p in parts if p.startswith(f"**{key}")
    }


def _versions() -> dict[str, str]:
    """Versions that the bytes of the files depend on."""
    versions = {}
    for package in ("lesionres", "numpy", "scipy", "torch", "nibabel", "nilearn"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions
