"""Rendering a synthetic subject on a grid (coarse grids: seconds on a CPU)."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np

from lesionres.data import synthetic_render as render
from lesionres.data.mni_template import template_file
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
