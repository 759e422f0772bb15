"""The MNI152 2009a template of the synthetic data: found in nilearn, tissue and placements."""

import numpy as np

from lesionres.data.mni_template import (
    acquisition_sigma,
    blurred_template,
    load_template,
    load_tissue_maps,
    synthesis_sigma,
    template_file,
)


def test_template_is_the_atlas_grid_with_tissue_and_lesion_places():
    assert template_file("t1").name == "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    template = load_template()
    assert template.t1.shape == template.tissue.shape == (197, 233, 189)
    assert 0 <= template.tissue.min() and template.tissue.max() <= 1
    for region in ("subcortical", "cortical", "infratentorial", "tissue"):
        points = template.candidates[region]
        assert points.ndim == 2 and points.shape[1] == 3 and len(points) > 100, region
    left = template.tissue_trees[-1].data
    assert (left[:, 0] < 0).all()  # a lesion on the left stays on the left


def test_acquisition_blur_is_synthseg_rule_above_one_mm():
    assert acquisition_sigma(1.0) == 0.0
    assert acquisition_sigma(2.0) == 1.5
    sharp, _ = blurred_template((0.0, 0.0, 0.0))
    blurred, tissue = blurred_template((1.5, 1.5, 1.5))
    assert sharp.shape == blurred.shape == tissue.shape == (1, 1, 197, 233, 189)
    assert float(blurred.std()) < float(sharp.std())  # the blur smooths the anatomy
    np.testing.assert_allclose(float(blurred.mean()), float(sharp.mean()), rtol=1e-2)


def test_synthetic_blur_is_fwhm_voxel_and_sulci_come_from_the_t1():
    assert synthesis_sigma(1.0) == 0.0
    np.testing.assert_allclose(synthesis_sigma(2.0), 2.0 / 2.355)
    maps = load_tissue_maps().maps
    gm, wm, csf, sulcal_csf = maps[0], maps[1], maps[2], maps[6]
    assert 0 <= sulcal_csf.min() and sulcal_csf.max() <= 1
    assert (sulcal_csf <= csf + 1e-6).all()  # part of the CSF map
    assert (gm + wm + csf <= 1 + 1e-5).all()
    # the template's sulci: tens of ml of partial-volume CSF outside the ventricles
    assert sulcal_csf.sum() / 1000 > 20
