"""Effective resolution, measured with a thin-plane phantom (slice sensitivity profiles)."""

from __future__ import annotations

import numpy as np
import pytest

from lesionres.conditions import Condition, effective_fwhm_mm, preset_conditions
from lesionres.transforms import AcquisitionDegradation, Identity
from lesionres.transforms.psf import effective_fwhm, fwhm, slice_sensitivity_profile


def test_fwhm_of_a_sampled_triangle_and_box():
    x = np.linspace(-3, 3, 601)
    assert fwhm(x, np.clip(1 - np.abs(x), 0, None)) == pytest.approx(1.0, abs=1e-6)
    assert fwhm(x, (np.abs(x) <= 1.25).astype(float)) == pytest.approx(2.5, abs=0.02)
    assert np.isnan(fwhm(x, np.ones_like(x)))


def test_untouched_scan_measures_its_own_voxel():
    assert effective_fwhm(Identity(), (1.0, 2.0, 0.5)) == pytest.approx((1.0, 2.0, 0.5))


@pytest.mark.parametrize(
    "spacing", [(3.0, 3.0, 3.0), (1.0, 1.0, 5.0), (1.0, 1.0, 3.0), (2.0, 2.0, 2.0)]
)
@pytest.mark.parametrize("profile", ["box", "gaussian"])
def test_acquisition_fwhm_is_the_nominal_voxel_size(spacing, profile):
    measured = effective_fwhm(AcquisitionDegradation(spacing, profile=profile), (1.0, 1.0, 1.0))
    for nominal, value in zip(spacing, measured, strict=True):
        if nominal > 1:
            assert 0.85 <= value / nominal <= 1.35, (spacing, measured)
        else:
            assert value == pytest.approx(1.0)


def test_every_shipped_acquisition_condition_measures_its_nominal_size():
    for condition in preset_conditions("sweep") + preset_conditions("study"):
        if condition.method != "acquisition":
            continue
        nominal = condition.test_spacing((1.0, 1.0, 1.0))
        for n, value in zip(nominal, condition.effective_fwhm(), strict=True):
            assert 0.85 <= value / n <= 1.35 if n > 1 else value == pytest.approx(1.0)


def test_synthseg_augmentation_profile_over_blurs():
    # the former acquisition model: about 1.8x the nominal voxel size (why it was renamed)
    measured = effective_fwhm(
        AcquisitionDegradation((1, 1, 5), profile="synthseg_augmentation"), (1.0, 1.0, 1.0)
    )
    assert measured[2] / 5 > 1.6


def test_slice_thickness_sets_the_profile_not_the_spacing():
    gap = AcquisitionDegradation((1, 1, 5), slice_thickness=3.0)
    assert effective_fwhm(gap)[2] == pytest.approx(3.0, rel=0.05)


def test_one_dimensional_phantom_equals_a_real_3d_plane():
    transform = AcquisitionDegradation((3, 3, 5))
    for axis in range(3):
        line = slice_sensitivity_profile(transform, (1, 1, 1), axis, step=0.1)
        plane = slice_sensitivity_profile(transform, (1, 1, 1), axis, step=0.1, extent=9)
        np.testing.assert_allclose(line[1], plane[1], atol=1e-5)


def test_effective_fwhm_label_per_condition():
    assert effective_fwhm_mm(Condition(method="acquisition", spacing=[1, 1, 5])) == "1.0x1.0x5.0"
    assert effective_fwhm_mm(Condition()) == "1.0"
    assert effective_fwhm_mm(Condition(), (2, 2, 2)) == "2.0"
    for condition in preset_conditions("sweep"):
        assert effective_fwhm_mm(condition)  # every shipped condition measures
