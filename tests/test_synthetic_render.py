"""Rendering a synthetic subject on a grid: lesions in tissue, contrasts, atrophy, skull
(coarse grids: seconds on a CPU)."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
from scipy import ndimage

from lesionres.data import synthetic_render as render
from lesionres.data.mni_template import load_tissue_maps, template_file
from lesionres.data.synthetic_specs import LesionSpec, SubjectSpec, sample_subject

COARSE = 4.0  # mm: keeps every rendering to a few tens of milliseconds


def test_atlas_grid_matches_the_template():
    grid = render.atlas_grid(1.0)
    template = nib.load(str(template_file("t1")))
    assert grid.shape == template.shape == (197, 233, 189)
    np.testing.assert_array_equal(grid.affine, template.affine)
    assert grid.blur_mm == (0.0, 0.0, 0.0)
    two = render.atlas_grid(2.0)
    assert two.shape == (99, 117, 95)
    np.testing.assert_allclose(two.blur_mm, (2.0 / 2.355,) * 3)  # FWHM = the voxel
    np.testing.assert_allclose(two.affine[:3, 3], (-98, -134, -72))

    # the field of view stays centred on the template's
    def centre(g: render.Grid) -> np.ndarray:
        return g.affine[:3, :3] @ ((np.array(g.shape) - 1) / 2) + g.affine[:3, 3]

    np.testing.assert_allclose(centre(render.atlas_grid(3.0)), centre(grid))


def _subject_with_lesion(min_ml: float) -> tuple[SubjectSpec, int]:
    for index in range(50):
        subject = sample_subject(5, index)
        if subject.lesion.volume_mm3 > min_ml * 1000 and subject.lesion.region != "infratentorial":
            return subject, index
    raise AssertionError("no large lesion in 50 subjects")


def test_lesions_are_darker_than_the_tissue_they_replace():
    subject, _ = _subject_with_lesion(8.0)
    grid = render.atlas_grid(3.0)
    image, mask = render.render_subject(subject, grid)
    no_lesion = replace(subject, lesion=LesionSpec((), "none", 0.0))
    healthy, empty = render.render_subject(no_lesion, grid)
    assert mask.sum() > 20 and not empty.any()
    inside = mask.astype(bool)
    assert image[inside].mean() < 0.75 * healthy[inside].mean()
    brain = healthy > 0.5 * healthy.max()
    assert image[inside].mean() < np.median(healthy[brain])
    # outside the lesion's reach the images agree (same noise stream)
    assert (image[~inside] == healthy[~inside]).mean() > 0.95


def test_same_subject_on_two_grids_has_a_similar_lesion():
    subject, _ = _subject_with_lesion(10.0)
    atlas = render.atlas_grid(COARSE)
    oblique = render.isles_grid((COARSE, COARSE, COARSE), np.random.default_rng(0))
    volumes = [render.render_subject(subject, g)[1].sum() * COARSE**3 for g in (atlas, oblique)]
    assert volumes[0] > 0
    assert abs(volumes[0] - volumes[1]) < 0.3 * volumes[0]


def test_every_lesion_voxel_lies_in_brain_tissue():
    grid = render.atlas_grid(3.0)
    seen = 0
    for index in range(8):
        subject = sample_subject(9, index)
        fractions, mask = render.render_tissues(subject, grid)
        inside = mask.astype(bool)
        seen += inside.sum()
        lesion = fractions["rim"] + fractions["core"]
        brain = fractions["gm"] + fractions["wm"] + lesion
        assert (lesion[inside] >= 0.5).all() and (brain[inside] >= 0.5).all()
        assert not (mask & (fractions["skull"] + fractions["scalp"] > 0.5)).any()
    assert seen > 0


def test_rendered_masks_keep_the_component_statistics():
    """Roughening the outline leaves no islands: rendered masks keep the documented counts
    (ATLAS v2.0: one component in 47 % of subjects, median 2, at most 10), which the outline
    noise's islands had tripled."""
    grid = render.atlas_grid(2.0)
    counts, ratios = [], []
    for index in range(16):
        subject = sample_subject(13, index)
        mask = render.render_tissues(subject, grid)[1]
        counts.append(ndimage.label(mask, structure=np.ones((3, 3, 3)))[1])
        ratios.append(mask.sum() * 8.0 / subject.lesion.volume_mm3)
    assert 0.3 <= np.mean(np.array(counts) == 1) <= 0.7
    assert np.median(counts) <= 2 and max(counts) <= 10
    # and their volumes the drawn (ATLAS-distributed) ones, less what falls in CSF
    assert 0.7 <= np.median(ratios) <= 1.1


def _ventricles(fractions: dict, grid: render.Grid, side: int) -> float:
    """CSF volume (ml) in the deep box of one hemisphere: the lateral ventricle's."""
    low, high = load_tissue_maps().ventricle_box
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij"), axis=-1)
    world = ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    box = ((world > low) & (world < high)).all(axis=-1) & (world[..., 0] * side > 0)
    return float(fractions["csf"][box].sum() * np.prod(grid.spacing) / 1000)


def test_atrophy_and_ex_vacuo_widen_the_ventricles():
    grid = render.atlas_grid(3.0)
    subject = sample_subject(9, 0)
    still = replace(subject.anatomy, ventricle_mm={-1: 0.0, 1: 0.0}, sulcal_widening=0.0)
    young = replace(subject, anatomy=still)
    base = render.render_tissues(young, grid)[0]
    old = replace(young, anatomy=replace(still, ventricle_mm={-1: 3.5, 1: 3.5}))
    aged = render.render_tissues(old, grid)[0]
    for side in (-1, 1):
        assert _ventricles(aged, grid, side) > 1.5 * _ventricles(base, grid, side)
    # ex vacuo: the lesion's side only
    one = replace(young, anatomy=replace(still, ventricle_mm={-1: 3.0, 1: 0.0}))
    dilated = render.render_tissues(one, grid)[0]
    assert _ventricles(dilated, grid, -1) > 1.5 * _ventricles(base, grid, -1)
    assert _ventricles(dilated, grid, 1) < 1.2 * _ventricles(base, grid, 1)  # across the septum
    # sulcal widening turns cortex into CSF
    wide = render.render_tissues(replace(young, anatomy=replace(still, sulcal_widening=0.6)), grid)
    assert wide[0]["csf"].sum() > 1.1 * base["csf"].sum()
    assert wide[0]["gm"].sum() < base["gm"].sum()
    # sharper sulci: the partial-volume sulcal CSF to a power below 1 (tissue is conserved)
    sharp = render.render_tissues(replace(young, anatomy=replace(still, sulcal_power=0.4)), grid)
    flat = render.render_tissues(replace(young, anatomy=replace(still, sulcal_power=1.0)), grid)
    assert sharp[0]["csf"].sum() > 1.05 * flat[0]["csf"].sum()
    assert sharp[0]["gm"].sum() < flat[0]["gm"].sum()

    def total(f: dict) -> float:
        return float(sum(f[k].sum() for k in ("gm", "wm", "csf")))

    np.testing.assert_allclose(total(sharp[0]), total(flat[0]), rtol=1e-2)


def test_rendered_intensities_follow_each_contrast():
    subject, index = _subject_with_lesion(8.0)
    grid = render.atlas_grid(3.0)
    fractions, mask = render.render_tissues(subject, grid)
    pure = {k: fractions[k] > 0.7 for k in ("gm", "wm", "csf")}
    isles = sample_subject(5, index, "isles")  # its DWI and FLAIR contrasts on this head
    images, isles_mask = render.render_contrasts(replace(subject, contrasts=isles.contrasts), grid)
    t1, _ = render.render_subject(subject, grid)
    means = {k: t1[v].mean() for k, v in pure.items()}
    assert means["wm"] > means["gm"] > means["csf"]  # T1
    assert t1[mask > 0].mean() < means["gm"]  # chronic: darker than grey matter
    core = (fractions["core"] > 0.7) & (mask > 0)
    assert core.any() and t1[core].mean() < t1[mask > 0].mean()  # the cavity is darkest
    for name in ("dwi", "flair"):  # the lesion (core most) brighter than white matter
        image = images[name]
        assert image[isles_mask > 0].mean() > 1.3 * image[pure["wm"]].mean()
        assert image[pure["csf"]].mean() < 0.5 * image[pure["wm"]].mean()


def test_skull_and_scalp_only_when_drawn():
    grid = render.atlas_grid(COARSE)
    subject = sample_subject(9, 1)
    with_skull = replace(subject.anatomy, skull_mm=5.0, scalp_mm=5.0)
    stripped = replace(subject.anatomy, skull_mm=0.0, scalp_mm=0.0)
    head = render.render_tissues(replace(subject, anatomy=with_skull), grid)[0]
    brain = render.render_tissues(replace(subject, anatomy=stripped), grid)[0]
    voxel_ml = COARSE**3 / 1000
    assert 150 < head["skull"].sum() * voxel_ml < 1500 and head["scalp"].sum() > 0
    assert brain["skull"].sum() == 0 and brain["scalp"].sum() == 0
