"""Tests for the resolution-degradation transforms (tiny volumes, CPU, seconds)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torchio as tio
from scipy import ndimage

from lesionres.transforms import (
    AcquisitionDegradation,
    CrudeDegradation,
    Identity,
    LinearDegradation,
    RandomResolution,
    build_degradation,
    functional,
)

AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])
AFFINE[:3, 3] = (-98.0, -134.0, -72.0)


def make_subject(shape=(12, 14, 10), spacing=(1.0, 1.0, 1.0), seed=0) -> tio.Subject:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand((1, *shape), generator=generator) * 100
    mask = torch.zeros((1, *shape), dtype=torch.uint8)
    mask[:, 3:8, 4:9, 2:7] = 1
    mask[:, 9, 11, 8] = 1  # a one-voxel lesion: the kind resolution loss destroys
    affine = AFFINE.copy()
    affine[:3, :3] = np.diag(spacing)
    return tio.Subject(
        image=tio.ScalarImage(tensor=image, affine=affine),
        mask=tio.LabelMap(tensor=mask, affine=affine),
    )


# ---------------------------------------------------------------------------- references


def crude_reference(a: np.ndarray, factor) -> np.ndarray:
    """The study's description, literally: stride, repeat, crop (on a 3-D array)."""
    out = a[:: factor[0], :: factor[1], :: factor[2]]
    for axis, n in enumerate(factor):
        out = np.repeat(out, n, axis=axis)
    return out[: a.shape[0], : a.shape[1], : a.shape[2]]


def torch_linear_coords(n_in: int, n_out: int) -> np.ndarray:
    """torch's align_corners=False source coordinates, clamped like torch clamps them."""
    coords = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    return np.clip(coords, 0, n_in - 1)


def resample_reference(a: np.ndarray, shape) -> np.ndarray:
    grids = np.meshgrid(
        *[torch_linear_coords(n_in, n_out) for n_in, n_out in zip(a.shape, shape, strict=True)],
        indexing="ij",
    )
    return ndimage.map_coordinates(a, grids, order=1, mode="nearest")


def linear_reference(a: np.ndarray, factor) -> np.ndarray:
    low = [max(1, round(n / f)) for n, f in zip(a.shape, factor, strict=True)]
    return resample_reference(resample_reference(a, low), a.shape)


def power(a: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.fftn(a)) ** 2


# ---------------------------------------------------------------------------- crude


@pytest.mark.parametrize(
    ("shape", "factor"),
    [
        ((8, 8, 8), (2, 2, 2)),
        ((7, 10, 5), (2, 3, 4)),  # no factor divides its axis
        ((9, 6, 11), (3, 1, 2)),  # factor 1 on one axis
        ((5, 5, 5), (7, 7, 7)),  # factor larger than the axis
    ],
)
def test_crude_matches_numpy_stride_repeat_crop(shape, factor):
    a = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    out = functional.crude(torch.from_numpy(a)[None], factor)[0].numpy()
    np.testing.assert_array_equal(out, crude_reference(a, factor))
    transformed = CrudeDegradation(factor)(tio.ScalarImage(tensor=torch.from_numpy(a)[None]))
    np.testing.assert_array_equal(transformed.data[0].numpy(), crude_reference(a, factor))


def test_crude_keeps_integer_dtype_and_accepts_whole_floats():
    subject = make_subject()
    subject["image"].set_data((subject["image"].data * 10).to(torch.int16))
    out = CrudeDegradation(2.0)(subject)
    assert out["image"].data.dtype == torch.int16
    expected = crude_reference(subject["image"].data[0].numpy(), (2, 2, 2))
    np.testing.assert_array_equal(out["image"].data[0].numpy(), expected)


def test_crude_shift_is_half_factor_minus_one():
    # A one-voxel spike at a kept index (3 = 1 x 3) is copied onto 3, 4, 5: centre 4.
    x = torch.zeros(1, 12, 1, 1)
    x[0, 3] = 1.0
    out = functional.crude(x, (3, 1, 1))[0, :, 0, 0]
    centre = float((out * torch.arange(12)).sum() / out.sum())
    assert centre == pytest.approx(3 + (3 - 1) / 2)


# ---------------------------------------------------------------------------- linear


@pytest.mark.parametrize(
    ("shape", "factor"),
    [
        ((8, 8, 8), (2, 2, 2)),
        ((7, 10, 9), (2.0, 3.0, 1.5)),
        ((11, 6, 13), (2.5, 1.0, 4.0)),
        ((9, 9, 9), (1.3, 1.3, 1.3)),
    ],
)
def test_linear_matches_independent_reference(shape, factor):
    a = np.random.default_rng(2).normal(size=shape)
    out = functional.linear(torch.from_numpy(a).float()[None], factor)[0].numpy()
    np.testing.assert_allclose(out, linear_reference(a, factor), atol=1e-5)


# ---------------------------------------------------------------------------- acquisition


def acquisition_reference_one_axis(a: np.ndarray, ratio: float, axis: int) -> np.ndarray:
    """scipy: blur (sigma 0.75 r), sample on the centred grid, interpolate back."""
    n = a.shape[axis]
    blurred = ndimage.gaussian_filter1d(a, 0.75 * ratio, axis=axis, mode="nearest", truncate=4)
    m = max(1, round(n / ratio))
    centres = (n - 1) / 2 + (np.arange(m) - (m - 1) / 2) * ratio
    grid = [np.arange(s, dtype=float) for s in a.shape]
    grid[axis] = np.clip(centres, 0, n - 1)
    low = ndimage.map_coordinates(blurred, np.meshgrid(*grid, indexing="ij"), order=1)
    back = [np.arange(s, dtype=float) for s in a.shape]
    back[axis] = np.clip((np.arange(n) - (n - 1) / 2) / ratio + (m - 1) / 2, 0, m - 1)
    return ndimage.map_coordinates(low, np.meshgrid(*back, indexing="ij"), order=1)


@pytest.mark.parametrize(("ratio", "axis"), [(2.0, 0), (5.0, 2), (1.7, 1)])
def test_synthseg_augmentation_profile_matches_scipy_reference(ratio, axis):
    # the former acquisition model, kept (honestly named) for the synthseg augmentation preset
    a = np.random.default_rng(3).normal(size=(20, 18, 23))
    target = [1.0, 1.0, 1.0]
    target[axis] = ratio
    out = functional.acquisition(
        torch.from_numpy(a).float()[None], (1, 1, 1), target, profile="synthseg_augmentation"
    )
    expected = acquisition_reference_one_axis(a, ratio, axis)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-4)


def box_slice_reference(line: np.ndarray, ratio: float, thickness: float) -> np.ndarray:
    """Supersampled box slice profile: each voxel a constant box, 1000 sub-samples each."""
    n, k = line.size, 1000
    pad = int(np.ceil(thickness)) + 1
    fine = np.repeat(np.pad(line, pad, mode="edge"), k)  # edges replicated
    x = (np.arange(fine.size) + 0.5) / k - 0.5 - pad  # sub-sample positions, voxel indices
    m = max(1, round(n / ratio))
    centres = (n - 1) / 2 + (np.arange(m) - (m - 1) / 2) * ratio
    return np.array([fine[np.abs(x - c) < thickness / 2].mean() for c in centres])


@pytest.mark.parametrize(("ratio", "thickness"), [(5.0, 5.0), (3.0, 3.0), (5.0, 3.0), (2.5, 4.0)])
def test_box_slice_profile_matches_supersampled_reference(ratio, thickness):
    line = np.random.default_rng(5).normal(size=31)
    x = torch.from_numpy(line).float()[None, None, None, :]
    coarse, index_map = functional.acquire(x, (1, 1, 1), (1, 1, ratio), thickness=thickness)
    expected = box_slice_reference(line, ratio, thickness)
    np.testing.assert_allclose(coarse[0, 0, 0].numpy(), expected, atol=2e-3)
    m = expected.size
    np.testing.assert_allclose(  # the index map puts every slice at its centre
        index_map[2, 3] + index_map[2, 2] * np.arange(m), 15 + (np.arange(m) - (m - 1) / 2) * ratio
    )


def test_inplane_kspace_truncation_is_a_sinc_of_the_pixel():
    kernel = functional.kernel_matrix(101, torch.tensor([50.0]), "sinc", 3.0)[0].numpy()
    # sinc(u / 3) / 3 at the voxel centres (cut 8 pixels out, renormalised by < 1 %)
    u = np.arange(101) - 50.0
    np.testing.assert_allclose(kernel[30:71], (np.sinc(u / 3) / 3)[30:71], rtol=0.01, atol=1e-4)
    assert not kernel[:25].any() and not kernel[76:].any()
    # zero crossings at multiples of the pixel: the point spread function of keeping only
    # the frequencies below the 3 mm Nyquist frequency
    assert abs(kernel[53]) < 1e-12 and abs(kernel[56]) < 1e-12
    spectrum = np.abs(np.fft.rfft(kernel))
    frequency = np.fft.rfftfreq(101)  # cycles per 1 mm voxel
    assert spectrum[frequency < 0.12].min() > 0.9 and spectrum[frequency > 0.22].max() < 0.1


def test_acquisition_sigma_follows_synthseg():
    assert functional.blurring_sigma((1, 1, 1), (2, 2, 5)) == pytest.approx((1.5, 1.5, 3.75))
    # Not downsampled (equal or finer target): no blur at all.
    assert functional.blurring_sigma((1, 0.5, 2), (1, 0.4, 4)) == pytest.approx((0, 0, 1.5))


@pytest.mark.parametrize("target", [(2.0, 2.0, 2.0), (3.0, 3.0, 3.0), (1.0, 1.0, 4.0)])
def test_acquisition_removes_frequencies_above_target_nyquist(target):
    n = 48
    noise = torch.randn(1, n, n, n, generator=torch.Generator().manual_seed(4))
    out = AcquisitionDegradation(target_spacing=target)(tio.ScalarImage(tensor=noise)).data
    before, after = power(noise[0].numpy()), power(out[0].numpy())
    freqs = np.meshgrid(*[np.fft.fftfreq(n)] * 3, indexing="ij")  # cycles/mm at 1 mm
    high = np.zeros_like(before, dtype=bool)
    low = np.ones_like(before, dtype=bool)
    for f, t in zip(freqs, target, strict=True):
        if t > 1:
            high |= np.abs(f) > 1 / (2 * t)  # above the target's Nyquist on a degraded axis
            low &= np.abs(f) <= 1 / (8 * t)  # a quarter of that Nyquist
    kept_high = after[high].sum() / before[high].sum()
    kept_low = after[low].sum() / before[low].sum()
    assert kept_high < 0.05
    assert kept_low > 0.5
    # The linear (study) method, for contrast, folds noise into the low band (aliasing).
    if target[0] == 3.0:
        aliased = power(functional.linear(noise, target)[0].numpy())
        assert aliased[low].sum() / before[low].sum() > 1.5


def test_acquisition_preserves_smooth_signal():
    i = torch.arange(64, dtype=torch.float32)
    wave = torch.cos(2 * torch.pi * i / 32)[None, :, None, None].expand(1, 64, 4, 4).contiguous()
    out = functional.acquisition(wave, (1, 1, 1), (4, 1, 1))  # period = 8 target voxels
    amplitude = float((out[0, :, 0, 0] * wave[0, :, 0, 0]).sum() / (wave[0, :, 0, 0] ** 2).sum())
    assert amplitude > 0.75
    const = torch.full((1, 10, 9, 8), 3.5)
    torch.testing.assert_close(functional.acquisition(const, (1, 1, 1), (3, 2, 5)), const)


def test_acquisition_uses_image_spacing_and_factor():
    subject = make_subject(shape=(16, 16, 16), spacing=(2.0, 2.0, 2.0))
    by_spacing = AcquisitionDegradation(target_spacing=(4, 2, 2))(subject)
    by_factor = AcquisitionDegradation(factor=(2, 1, 1))(subject)
    torch.testing.assert_close(by_spacing["image"].data, by_factor["image"].data)
    assert not torch.equal(by_spacing["image"].data, subject["image"].data)
    # 3 mm on a 2 mm grid is still a degradation; 1.5 mm is finer and leaves it untouched.
    finer = AcquisitionDegradation(target_spacing=1.5)(subject)
    torch.testing.assert_close(finer["image"].data, subject["image"].data)


# ---------------------------------------------------------------------------- all methods


ALL = [
    ("crude", lambda f: CrudeDegradation(f)),
    ("linear", lambda f: LinearDegradation(f)),
    ("acquisition", lambda f: AcquisitionDegradation(factor=f)),
]


@pytest.mark.parametrize(("name", "make"), ALL)
def test_factor_one_is_identity(name, make):
    subject = make_subject()
    out = make(1)(subject)
    torch.testing.assert_close(out["image"].data, subject["image"].data, rtol=0, atol=0)
    out = make((1, 1, 1))(subject)
    torch.testing.assert_close(out["image"].data, subject["image"].data, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "make"), ALL)
def test_image_only_by_default(name, make):
    subject = make_subject()
    out = make(2)(subject)
    assert not torch.equal(out["image"].data, subject["image"].data)
    assert torch.equal(out["mask"].data, subject["mask"].data)
    for key in ("image", "mask"):
        assert out[key].shape == subject[key].shape
        np.testing.assert_array_equal(out[key].affine, subject[key].affine)
    assert out["image"].data.dtype == subject["image"].data.dtype
    # The input subject is not modified (TorchIO copies by default).
    assert torch.equal(make_subject()["image"].data, subject["image"].data)


@pytest.mark.parametrize(
    ("name", "make_mask"),
    [
        ("crude", lambda: CrudeDegradation(2, include_mask=True)),
        ("linear", lambda: LinearDegradation(2, include_mask=True)),
        ("acquisition", lambda: AcquisitionDegradation((2, 2, 3), include_mask=True)),
    ],
)
def test_include_mask_degrades_and_keeps_binary(name, make_mask):
    subject = make_subject(shape=(18, 18, 18))
    subject["mask"].data[:, 4:13, 3:12, 5:13] = 1  # big enough to survive 2-3 mm blur
    out = make_mask()(subject)
    mask = out["mask"].data
    assert mask.dtype == subject["mask"].data.dtype
    assert set(torch.unique(mask).tolist()) <= {0, 1}
    assert not torch.equal(mask, subject["mask"].data)
    assert out["mask"].shape == subject["mask"].shape
    np.testing.assert_array_equal(out["mask"].affine, subject["mask"].affine)
    if name == "crude":
        expected = crude_reference(subject["mask"].data[0].numpy(), (2, 2, 2))
        np.testing.assert_array_equal(mask[0].numpy(), expected)
    else:
        degraded = out["mask"].data.sum()
        assert 0 < degraded < 2 * subject["mask"].data.sum()


def test_multilabel_map_keeps_its_labels():
    labels = torch.zeros(1, 12, 12, 12, dtype=torch.int64)
    labels[:, :6] = 2
    labels[:, 6:, :6] = 5
    out = functional.degrade_labels(labels, lambda x: functional.linear(x, (2, 2, 2)))
    assert set(torch.unique(out).tolist()) <= {0, 2, 5}
    assert (out == labels).float().mean() > 0.9


def test_include_exclude_and_multichannel():
    subject = make_subject()
    dwi = tio.ScalarImage(tensor=torch.rand(2, 12, 14, 10), affine=subject["image"].affine)
    subject.add_image(dwi, "dwi")
    out = LinearDegradation(2, exclude=["image"])(subject)
    assert torch.equal(out["image"].data, subject["image"].data)
    assert not torch.equal(out["dwi"].data, subject["dwi"].data)
    for c in range(2):  # channels are degraded independently
        alone = functional.linear(subject["dwi"].data[c : c + 1], (2, 2, 2))
        torch.testing.assert_close(out["dwi"].data[c : c + 1], alone)


def test_plain_tensor_input():
    x = torch.rand(1, 8, 8, 8)
    out = CrudeDegradation(2)(x)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape


def test_dtype_restored():
    subject = make_subject()
    subject["image"].set_data(subject["image"].data.to(torch.float64))
    assert AcquisitionDegradation(factor=2)(subject)["image"].data.dtype == torch.float64
    subject["image"].set_data(subject["image"].data.round().to(torch.int16))
    out = LinearDegradation(2)(subject)["image"].data
    assert out.dtype == torch.int16
    assert out.min() >= 0 and out.max() <= 100


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CrudeDegradation(0), ">= 1"),
        (lambda: CrudeDegradation(1.5), "whole"),
        (lambda: CrudeDegradation((2, 2)), "three"),
        (lambda: CrudeDegradation("2"), "number"),
        (lambda: LinearDegradation(0.5), ">= 1"),
        (lambda: LinearDegradation((2, 2, 2, 2)), "three"),
        (lambda: LinearDegradation(float("nan")), ">= 1"),
        (lambda: AcquisitionDegradation(), "exactly one"),
        (lambda: AcquisitionDegradation(target_spacing=2, factor=2), "exactly one"),
        (lambda: AcquisitionDegradation(target_spacing=(1, 0, 1)), "positive"),
        (lambda: AcquisitionDegradation(target_spacing=-2), "positive"),
        (lambda: AcquisitionDegradation(factor=0.9), ">= 1"),
        (lambda: CrudeDegradation(2, include_mask="yes"), "include_mask"),
        (lambda: RandomResolution(p=1.5), "probability"),
        (lambda: RandomResolution(methods=("bicubic",)), "methods"),
        (lambda: RandomResolution(methods=()), "methods"),
        (lambda: RandomResolution(isotropic_spacing=(4, 1)), "min <= max"),
        (lambda: RandomResolution(slice_thickness=(0, 5)), "min <= max"),
        (lambda: RandomResolution.preset("monai"), "preset"),
        (lambda: build_degradation("bicubic"), "unknown degradation method"),
        (lambda: build_degradation("crude"), "needs a factor"),
        (lambda: build_degradation("linear", factor=2, spacing=2), "needs a factor"),
        (lambda: build_degradation("original", factor=2), "no factor"),
    ],
)
def test_invalid_arguments_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------------------- factory


def test_build_degradation():
    subject = make_subject()
    original = build_degradation("original")
    assert isinstance(original, Identity)
    out = original(subject)
    assert torch.equal(out["image"].data, subject["image"].data)
    assert isinstance(build_degradation("crude", factor=2), CrudeDegradation)
    assert build_degradation("crude", factor=(2.0, 2.0, 1.0)).factor == (2, 2, 1)
    assert isinstance(build_degradation("linear", factor=1.5), LinearDegradation)
    acq = build_degradation("acquisition", spacing=(1, 1, 5), include_mask=True)
    assert acq.target_spacing == (1, 1, 5) and acq.include_mask
    assert build_degradation("acquisition", factor=2).factor == (2, 2, 2)


# ---------------------------------------------------------------------------- random


def test_random_resolution_p0_is_identity_and_p1_changes():
    subject = make_subject()
    out = RandomResolution(p=0)(subject)
    assert torch.equal(out["image"].data, subject["image"].data)
    for method in ("crude", "linear", "acquisition"):
        # Spacing >= 2 mm so that crude's rounded factor is at least 2.
        transform = RandomResolution(
            p=1, methods=(method,), isotropic_spacing=(2, 3), slice_thickness=(3, 5)
        )
        for seed in range(3):
            torch.manual_seed(seed)
            out = transform(subject)
            assert not torch.equal(out["image"].data, subject["image"].data)
            assert torch.equal(out["mask"].data, subject["mask"].data)
            assert out["image"].shape == subject["image"].shape


def test_random_resolution_deterministic_under_seed_and_replayable():
    subject = make_subject()
    transform = RandomResolution(p=1)
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        results.append(transform(subject))
    assert torch.equal(results[0]["image"].data, results[1]["image"].data)
    # The drawn deterministic transform is in the history and reproduces the output.
    replay = results[0].get_composed_history()
    assert len(replay) == 1
    assert torch.equal(replay(subject)["image"].data, results[0]["image"].data)
    # Different seeds give different draws.
    outputs = set()
    for seed in range(6):
        torch.manual_seed(seed)
        outputs.add(float(transform(subject)["image"].data.sum()))
    assert len(outputs) > 1


def test_random_resolution_presets():
    assert RandomResolution.preset("none") is None
    nnunet = RandomResolution.preset("nnunet")
    assert nnunet.methods == ("linear",) and nnunet.relative and nnunet.p == pytest.approx(0.125)
    synthseg = RandomResolution.preset("synthseg")
    assert synthseg.methods == ("acquisition",) and synthseg.slice_thickness == (1.0, 8.0)
    # the augmentation keeps SynthSeg's over-blurring rule, under its honest name
    assert synthseg.acquisition_profile == "synthseg_augmentation"
    assert synthseg.make_transform("acquisition", 2, 5.0, (1.0, 1.0, 1.0)).profile == (
        "synthseg_augmentation"
    )
    assert RandomResolution.preset("sweep").acquisition_profile == "box"
    sweep = RandomResolution.preset("sweep")
    assert set(sweep.methods) == {"crude", "linear", "acquisition"} and sweep.relative
    # relative: an isotropic draw of 3 is 6 mm on a 2 mm scan (the sweep's factor-3 condition),
    # a thick-slice draw of 2.5 on the last axis is 2x2x5 mm
    assert sweep.make_transform("acquisition", None, 3.0, (2.0, 2.0, 2.0)).target_for(
        (2.0, 2.0, 2.0)
    ) == (6.0, 6.0, 6.0)
    assert sweep.make_transform("acquisition", 2, 2.5, (2.0, 2.0, 2.0)).target_for(
        (2.0, 2.0, 2.0)
    ) == (2.0, 2.0, 5.0)
    subject = make_subject(spacing=(2.0, 2.0, 2.0))
    torch.manual_seed(0)
    tuned = RandomResolution(
        p=1, methods=("linear",), isotropic_spacing=(2, 2), p_thick_slices=0, relative=True
    )
    out = tuned(subject)  # relative: factor 2 on a 2 mm grid
    expected = LinearDegradation(2)(subject)
    assert torch.equal(out["image"].data, expected["image"].data)


# ---------------------------------------------------------------------------- timing


def test_timing_full_volume_printed():
    """Timing sanity for an ATLAS-sized volume (printed, not asserted: shared CPUs)."""
    image = tio.ScalarImage(tensor=torch.rand(1, 197, 233, 189))
    cases = {
        "crude x2": CrudeDegradation(2),
        "linear x2": LinearDegradation(2),
        "acquisition 2 mm": AcquisitionDegradation(target_spacing=2),
        "acquisition 1x1x5 mm": AcquisitionDegradation(target_spacing=(1, 1, 5)),
    }
    for name, transform in cases.items():
        transform(image)  # warm-up
        start = time.perf_counter()
        out = transform(image)
        elapsed = time.perf_counter() - start
        assert out.shape == image.shape
        print(f"{name}: {elapsed * 1000:.0f} ms for 197x233x189 (TorchIO call, incl. copy)")
