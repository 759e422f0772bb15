"""Synthetic subjects drawn from their streams: lesions follow the ATLAS v2.0 statistics, the
other parameters their documented ranges and the contrasts their sequences' orderings."""

import json

import numpy as np
import pytest

from lesionres.data.synthetic_appearance import CONTRASTS, sample_anatomy, sample_contrast
from lesionres.data.synthetic_specs import sample_lesion_spec, sample_subject


def test_lesion_specifications_follow_atlas_statistics():
    specs = [sample_lesion_spec(np.random.default_rng([11, i])) for i in range(200)]
    volumes = np.array([s.volume_mm3 for s in specs])
    counts = np.array([s.n_components for s in specs])
    assert 10**3.76 / 2 < np.median(volumes) < 10**3.76 * 2
    assert 0.68 < np.log10(volumes).std() < 1.18
    assert volumes.min() >= 10 and volumes.max() <= 500_000 * 1.01
    assert 0.3 < np.mean(counts == 1) < 0.65
    assert np.median(counts) in (1, 2, 3) and counts.max() <= 10
    regions = [s.region for s in specs]
    left = np.mean([r.startswith("left") for r in regions])
    right = np.mean([r.startswith("right") for r in regions])
    assert left > right > 0.25 and 0.01 < regions.count("infratentorial") / 200 < 0.16
    below = [s.volume_mm3 for s in specs if s.region == "infratentorial"]
    assert max(below) <= 60_000 * 1.01  # the posterior fossa's cap
    assert 0.45 < np.mean([r.endswith("subcortical") for r in regions]) < 0.75


def test_subject_parameters_stay_in_their_documented_ranges():
    subjects = [sample_subject(7, i, "atlas") for i in range(60)]
    anatomy = [s.anatomy for s in subjects]
    scales = np.array([a.scale for a in anatomy])
    assert (scales > 0.9 * 0.98 - 1e-9).all() and (scales < 1.1 * 1.02 + 1e-9).all()
    assert np.abs([a.rotation_deg for a in anatomy]).max() <= 5.0
    assert np.abs([a.shift_mm for a in anatomy]).max() <= 3.0
    atrophy = np.array([a.atrophy for a in anatomy])
    assert 0 <= atrophy.min() and atrophy.max() <= 1 and atrophy.std() > 0.15
    widen = np.array([max(a.ventricle_mm.values()) for a in anatomy])
    assert 0 <= widen.min() and widen.max() <= 3.5 + 3.0 + 1e-9
    skulls = np.array([a.skull_mm > 0 for a in anatomy])
    assert 0.25 < skulls.mean() < 0.75  # stripped and unstripped heads both
    assert all(3 <= a.skull_mm <= 7 and 3 <= a.scalp_mm <= 7 for a in anatomy if a.skull_mm)
    for subject in subjects:
        (t1,) = subject.contrasts
        assert t1.name == "t1" and all(0 < v <= 0.05 * t1.mean[k] for k, v in t1.sd.items())
        assert 0.15 <= subject.lesion.texture[2] <= 0.35
    isles = sample_subject(7, 0, "isles")
    assert [c.name for c in isles.contrasts] == ["dwi", "flair"]
    summary = isles.summary()
    assert {"lesion", "anatomy", "contrasts", "noise_key"} <= set(summary)
    json.dumps(summary)  # the manifest's record: plain JSON


@pytest.mark.parametrize("name", CONTRASTS)
def test_contrast_orderings(name):
    for i in range(50):
        c = sample_contrast(name, np.random.default_rng([3, i])).mean
        assert c["wm"] == 1.0 and c["csf"] < 0.4 and c["skull"] < c["gm"]
        if name == "t1":  # WM > GM > CSF; chronic lesion: cavity darkest, rim below grey matter
            assert c["wm"] > c["gm"] > c["csf"] and c["csf"] <= c["core"] < c["rim"] < c["gm"]
        else:  # DWI / FLAIR: GM >= WM >> CSF; the lesion brighter than any tissue, core most
            assert c["gm"] >= c["wm"] and c["core"] > c["rim"] > c["gm"]


def test_lesion_kinds_include_lacunes_and_cortico_subcortical_strokes():
    specs = [sample_lesion_spec(np.random.default_rng([12, i])) for i in range(200)]
    kinds = [s.kind for s in specs]
    for kind in ("lacunar", "subcortical", "cortico-subcortical", "infratentorial"):
        assert kind in kinds
    assert all(s.volume_mm3 < 1500 for s in specs if s.kind == "lacunar")


def test_a_large_lesion_near_a_ventricle_dilates_it_ex_vacuo():
    lesion = next(
        s
        for i in range(400)
        if (s := sample_lesion_spec(np.random.default_rng([13, i]))).volume_mm3 > 40_000 and s.side
    )
    widen = sample_anatomy(np.random.default_rng(0), lesion).ventricle_mm
    assert widen[lesion.side] > widen[-lesion.side]  # atrophy alone is symmetric
