"""Synthetic subjects drawn from their streams: lesions follow the ATLAS v2.0 statistics."""

import numpy as np

from lesionres.data.synthetic_specs import sample_lesion_spec


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
    assert 0.45 < np.mean([r.endswith("subcortical") for r in regions]) < 0.75
