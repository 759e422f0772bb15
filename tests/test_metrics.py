"""Per-scan metrics: hand-computed cases, independent references, empty-mask conventions.

References: hand-written numbers; medpy ``dc``/``hd95``/``assd`` with their default
``connectivity=1`` and ``voxelspacing`` to 1e-6; MONAI ``compute_dice``,
``compute_average_surface_distance`` and ``compute_hausdorff_distance`` (``hd95="max"``) on
random anisotropic masks (float32, so 1e-5 relative); a plain full-volume distance transform;
a pure-Python flood fill for the lesion-wise scores.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import deque
from itertools import product

import numpy as np
import pytest
from scipy import ndimage

from lesionres import metrics
from lesionres.metrics import METRIC_COLUMNS, lesion_volumes_ml, score_masks, surface_distances

ANISOTROPIC = (0.9, 1.3, 3.0)


def random_masks(seed: int, shape=(22, 26, 18), fill=0.12, sigma=1.6) -> tuple[np.ndarray, ...]:
    """Blob-like prediction and ground truth (smoothed noise thresholded), correlated."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    pred_noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    gt = base > np.quantile(base, 1 - fill)
    mixed = base + 0.6 * pred_noise
    pred = mixed > np.quantile(mixed, 1 - fill * rng.uniform(0.5, 1.5))
    return pred, gt


def reference_distances(pred: np.ndarray, gt: np.ndarray, spacing) -> np.ndarray:
    """Pooled surface distances, plainly, with distance transforms of the whole volume."""
    cross = ndimage.generate_binary_structure(3, 1)
    pred_surface = pred & ~ndimage.binary_erosion(pred, cross)
    gt_surface = gt & ~ndimage.binary_erosion(gt, cross)
    to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=spacing)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing)[gt_surface]
    return np.concatenate([to_gt, to_pred])


def flood_fill_components(mask: np.ndarray, connectivity: int) -> list[set[tuple[int, ...]]]:
    """Connected components as sets of voxel indices, by breadth-first search."""
    offsets = [
        o
        for o in product((-1, 0, 1), repeat=3)
        if o != (0, 0, 0) and sum(map(abs, o)) <= {6: 1, 18: 2, 26: 3}[connectivity]
    ]
    seen: set[tuple[int, ...]] = set()
    components = []
    for start in map(tuple, np.argwhere(mask)):
        if start in seen:
            continue
        component, queue = {start}, deque([start])
        seen.add(start)
        while queue:
            voxel = queue.popleft()
            for offset in offsets:
                n = tuple(v + o for v, o in zip(voxel, offset, strict=True))
                inside = all(0 <= i < s for i, s in zip(n, mask.shape, strict=True))
                if inside and n not in seen and mask[n]:
                    seen.add(n)
                    component.add(n)
                    queue.append(n)
        components.append(component)
    return components


def reference_lesion_scores(pred: np.ndarray, gt: np.ndarray, connectivity: int) -> dict:
    """Lesion-wise scores with plain loops over flood-filled components."""
    gt_components = flood_fill_components(gt, connectivity)
    pred_components = flood_fill_components(pred, connectivity)
    detected = sum(1 for c in gt_components if any(pred[v] for v in c))
    false_positive = sum(1 for c in pred_components if not any(gt[v] for v in c))
    missed = len(gt_components) - detected
    return {
        "gt_lesions": len(gt_components),
        "pred_lesions": len(pred_components),
        "lesion_f1": detected / (detected + (false_positive + missed) / 2),
        "lesions_detected_frac": detected / len(gt_components),
    }


# --- hand-computed cases -------------------------------------------------------------------


def test_hand_computed_line_with_missed_and_false_positive_lesions():
    # a 1x1x12 line at 2x3x0.5 mm (3 mm^3 = 0.003 ml per voxel); every voxel touches the
    # array border, so every mask voxel is a surface voxel
    gt = np.zeros((1, 1, 12), dtype=bool)
    pred = np.zeros_like(gt)
    gt[0, 0, [0, 1, 2, 6, 7]] = True  # lesions A = z0-2, B = z6-7
    pred[0, 0, [1, 2, 3, 10]] = True  # overlaps A, misses B, false positive at z10
    row = score_masks(pred, gt, (2.0, 3.0, 0.5))
    # TP z1,z2; FP z3,z10; FN z0,z6,z7; TN the other 5
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (2, 2, 3, 5)
    expected = {
        "dice": 4 / 9,
        "jaccard": 2 / 7,
        "precision": 2 / 4,
        "recall": 2 / 5,
        "specificity": 5 / 7,
        "accuracy": 7 / 12,
        "gt_volume_ml": 0.015,
        "pred_volume_ml": 0.012,
        "abs_volume_diff_ml": 0.003,
        "rel_volume_diff": -0.2,
        "pred_lesion_pct": 100 * 4 / 12,
        # pred->gt: z1 0, z2 0, z3 1, z10 3 voxels; gt->pred: z0 1, z1 0, z2 0, z6 3, z7 3;
        # sorted 0 0 0 0 1 1 3 3 3 (x 0.5 mm): 95th percentile at rank 7.6 -> 3 voxels
        "hd95_mm": 1.5,
        "assd_mm": 11 / 9 * 0.5,
        "gt_lesions": 2,
        "pred_lesions": 2,
        "lesion_f1": 1 / (1 + (1 + 1) / 2),  # A found; B missed; z10 a false positive
        "abs_lesion_count_diff": 0,
        "lesions_detected_frac": 0.5,
    }
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=1e-12), key


def test_hand_computed_shifted_line():
    gt = np.zeros((1, 1, 8), dtype=np.uint8)
    pred = np.zeros_like(gt)
    gt[0, 0, 0:4] = 1
    pred[0, 0, 2:6] = 7  # any positive integer is lesion
    row = score_masks(pred, gt, (1.0, 1.0, 2.0))
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (2, 2, 2, 2)
    assert row["dice"] == 0.5 and row["jaccard"] == pytest.approx(1 / 3)
    assert row["gt_volume_ml"] == pytest.approx(0.008) and row["rel_volume_diff"] == 0.0
    # pooled distances 0 0 2 4 | 4 2 0 0 mm: 95th percentile 4, mean 1.5
    assert row["hd95_mm"] == pytest.approx(4.0) and row["assd_mm"] == pytest.approx(1.5)
    assert row["lesion_f1"] == 1.0 and row["pred_lesion_pct"] == 50.0


def test_surface_is_face_connected_as_medpy_and_monai():
    # a 5^3 cube without one corner: voxel (2,2,2) keeps its 6 face neighbours (interior with
    # the face element, 97 surface voxels) but loses a diagonal one (surface with the full
    # 3x3x3 element lesionres used before 0.2: 98)
    mask = np.zeros((7, 7, 7), dtype=bool)
    mask[1:6, 1:6, 1:6] = True
    mask[1, 1, 1] = False
    to_other, _ = surface_distances(mask, mask, (1, 1, 1))
    assert to_other.size == 97 and not to_other.any()


def test_hd95_aggregations_pooled_and_max():
    # pred->gt distances 0 0 0 0 4 and gt->pred 0 0 0 0 0 (1 mm line): pooled 95th
    # percentile of ten values vs the larger directed one
    gt = np.zeros((1, 1, 12), dtype=bool)
    pred = np.zeros_like(gt)
    gt[0, 0, 0:5] = True
    pred[0, 0, 0:5] = True
    pred[0, 0, 9] = True
    d_pred, d_gt = surface_distances(pred, gt, (1, 1, 1))
    assert sorted(d_pred) == [0, 0, 0, 0, 0, 5] and not d_gt.any()
    pooled = score_masks(pred, gt, (1, 1, 1))["hd95_mm"]
    worst = score_masks(pred, gt, (1, 1, 1), hd95="max")["hd95_mm"]
    assert pooled == pytest.approx(np.percentile(np.r_[d_pred, d_gt], 95))  # 2.75
    assert worst == pytest.approx(np.percentile(d_pred, 95)) and worst > pooled  # 3.75
    with pytest.raises(ValueError, match="hd95"):
        score_masks(pred, gt, (1, 1, 1), hd95="mean")


def test_columns_order_and_types():
    pred, gt = random_masks(0)
    row = score_masks(pred, gt, ANISOTROPIC)
    assert tuple(row) == METRIC_COLUMNS
    for key in ("tp", "fp", "fn", "tn", "gt_lesions", "pred_lesions", "abs_lesion_count_diff"):
        assert type(row[key]) is int, key
    for key in set(METRIC_COLUMNS) - {
        "tp",
        "fp",
        "fn",
        "tn",
        "gt_lesions",
        "pred_lesions",
        "abs_lesion_count_diff",
    }:
        assert type(row[key]) is float, key
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == pred.size


# --- independent references ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), ANISOTROPIC])
def test_agrees_with_medpy_defaults(seed, spacing):
    binary = pytest.importorskip("medpy.metric.binary")
    pred, gt = random_masks(seed)
    row = score_masks(pred, gt, spacing)
    assert row["dice"] == pytest.approx(binary.dc(pred, gt), abs=1e-6)
    assert row["precision"] == pytest.approx(binary.precision(pred, gt), abs=1e-6)
    assert row["recall"] == pytest.approx(binary.recall(pred, gt), abs=1e-6)
    # medpy's default connectivity=1: the face-connected surface
    assert row["hd95_mm"] == pytest.approx(binary.hd95(pred, gt, spacing), abs=1e-6)
    assert row["assd_mm"] == pytest.approx(binary.assd(pred, gt, spacing), abs=1e-6)
    # the full 3x3x3 surface (lesionres < 0.2) gives other, smaller numbers
    assert row["assd_mm"] > binary.assd(pred, gt, spacing, 3) + 1e-6


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation notice
@pytest.mark.parametrize("seed", range(3))
def test_dice_agrees_with_monai(seed):
    monai_metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    pred, gt = random_masks(seed + 10)
    expected = monai_metrics.compute_dice(
        torch.from_numpy(pred[None, None]).float(),
        torch.from_numpy(gt[None, None]).float(),
        include_background=True,
    )
    assert score_masks(pred, gt, ANISOTROPIC)["dice"] == pytest.approx(float(expected), abs=1e-6)


def disjoint_boxes(rng: np.random.Generator, shape, count: int) -> np.ndarray:
    """Boxes at least one voxel apart: MONAI's cross erosion finds our surfaces on them."""
    mask = np.zeros(shape, dtype=bool)
    while count:
        size = rng.integers(2, 7, size=3)
        start = [int(rng.integers(0, n - s + 1)) for n, s in zip(shape, size, strict=True)]
        box = tuple(slice(a, a + s) for a, s in zip(start, size, strict=True))
        halo = tuple(slice(max(a - 1, 0), a + s + 1) for a, s in zip(start, size, strict=True))
        if not mask[halo].any():
            mask[box] = True
            count -= 1
    return mask


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation notice
@pytest.mark.parametrize("seed", range(3))
def test_surface_distances_agree_with_monai(seed):
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(seed)
    boxes = disjoint_boxes(rng, (24, 20, 16), 3), disjoint_boxes(rng, (24, 20, 16), 2)
    for pred, gt in (boxes, random_masks(seed)):  # boxes, and irregular shapes
        y_pred, y = pred[None, None].astype(np.float32), gt[None, None].astype(np.float32)
        assd = monai_metrics.compute_average_surface_distance(
            y_pred, y, include_background=True, symmetric=True, spacing=ANISOTROPIC
        )
        hd95 = monai_metrics.compute_hausdorff_distance(
            y_pred, y, include_background=True, percentile=95, spacing=ANISOTROPIC
        )
        row = score_masks(pred, gt, ANISOTROPIC, hd95="max")
        assert row["assd_mm"] == pytest.approx(float(assd), rel=1e-5)
        assert row["hd95_mm"] == pytest.approx(float(hd95), rel=1e-5)


@pytest.mark.parametrize("method", ["edt", "kdtree"])
@pytest.mark.parametrize("seed", range(3))
def test_bounding_box_distances_equal_the_full_volume_computation(method, seed, monkeypatch):
    # both code paths: a huge threshold forces the distance transform, zero the k-d tree
    threshold = 10**9 if method == "edt" else 0
    monkeypatch.setattr(metrics, "_EDT_VOXELS_PER_SURFACE_VOXEL", threshold)
    shape = (40, 44, 30)
    pred, gt = random_masks(seed, shape=shape, fill=0.02, sigma=2.0)
    gt[0:3, 10:14, 5:9] = True  # touches the volume's border: the crop must keep it surface
    pred[-2:, -3:, -4:] = True  # a far false positive: a box almost the whole volume
    pred[18:22, 20:24, 12:16] = True
    row = score_masks(pred, gt, ANISOTROPIC)
    pooled = reference_distances(pred, gt, ANISOTROPIC)
    assert row["hd95_mm"] == pytest.approx(np.percentile(pooled, 95), abs=1e-9)
    assert row["assd_mm"] == pytest.approx(pooled.mean(), abs=1e-9)
    # and a small, interior pair: a tight box
    small_pred, small_gt = np.zeros(shape, bool), np.zeros(shape, bool)
    small_gt[10:15, 10:13, 10:16] = True
    small_pred[11:16, 9:13, 12:17] = True
    row = score_masks(small_pred, small_gt, ANISOTROPIC)
    pooled = reference_distances(small_pred, small_gt, ANISOTROPIC)
    assert row["hd95_mm"] == pytest.approx(np.percentile(pooled, 95), abs=1e-9)
    assert row["assd_mm"] == pytest.approx(pooled.mean(), abs=1e-9)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("seed", range(3))
def test_lesion_scores_agree_with_flood_fill(connectivity, seed):
    rng = np.random.default_rng(seed)
    # sparse speckle: many components whose count depends on the connectivity
    gt = rng.random((12, 13, 11)) < 0.08
    pred = (rng.random(gt.shape) < 0.06) | (gt & (rng.random(gt.shape) < 0.5))
    row = score_masks(pred, gt, ANISOTROPIC, connectivity=connectivity)
    expected = reference_lesion_scores(pred, gt, connectivity)
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=1e-12), key
    assert row["abs_lesion_count_diff"] == abs(expected["gt_lesions"] - expected["pred_lesions"])


def test_connectivity_changes_counts_on_diagonal_neighbours():
    gt = np.zeros((5, 5, 5), dtype=bool)
    gt[0, 0, 0] = gt[1, 1, 1] = True  # corner-touching
    gt[3, 3, 3] = gt[4, 4, 3] = True  # edge-touching
    pred = np.zeros_like(gt)
    pred[0, 0, 0] = pred[3, 3, 3] = True
    lesions = {c: score_masks(pred, gt, (1, 1, 1), connectivity=c) for c in (6, 18, 26)}
    assert [lesions[c]["gt_lesions"] for c in (6, 18, 26)] == [4, 3, 2]
    # 26: both lesions touched -> perfect; 6: two of four found
    assert lesions[26]["lesion_f1"] == 1.0 and lesions[26]["lesions_detected_frac"] == 1.0
    assert lesions[6]["lesion_f1"] == pytest.approx(2 / (2 + 2 / 2))
    assert lesions[6]["lesions_detected_frac"] == 0.5
    assert sorted(lesion_volumes_ml(gt, (2, 1, 1), connectivity=26)) == pytest.approx([0.004] * 2)
    assert lesion_volumes_ml(gt, (2, 1, 1), connectivity=6) == pytest.approx([0.002] * 4)


def test_lesion_volumes_ml():
    mask = np.zeros((10, 10, 10), dtype=np.int16)
    mask[1:3, 1:3, 1:3] = 1  # 8 voxels
    mask[6:9, 6:9, 6:7] = 2  # 9 voxels, a second label value is still lesion
    assert lesion_volumes_ml(mask, (1.0, 1.0, 2.5)) == pytest.approx([0.02, 0.0225])
    assert lesion_volumes_ml(np.zeros((4, 4, 4), bool), (1, 1, 1)).shape == (0,)


# --- empty masks -----------------------------------------------------------------------------

NAN = math.nan
EMPTY_CASES = {
    # case: {column: (value with empty="one", value with empty="nan")}
    "both": {
        "dice": (1.0, NAN),
        "jaccard": (1.0, NAN),
        "precision": (1.0, NAN),
        "recall": (1.0, NAN),
        "lesion_f1": (1.0, NAN),
        "lesions_detected_frac": (1.0, NAN),
        "hd95_mm": (0.0, NAN),
        "assd_mm": (0.0, NAN),
        "rel_volume_diff": (NAN, NAN),
        "specificity": (1.0, 1.0),
        "accuracy": (1.0, 1.0),
        "abs_volume_diff_ml": (0.0, 0.0),
        "gt_lesions": (0, 0),
        "pred_lesions": (0, 0),
        "pred_lesion_pct": (0.0, 0.0),
    },
    "pred": {  # nothing predicted, a lesion in the ground truth
        "dice": (0.0, 0.0),
        "jaccard": (0.0, 0.0),
        "precision": (0.0, NAN),
        "recall": (0.0, 0.0),
        "lesion_f1": (0.0, 0.0),
        "lesions_detected_frac": (0.0, 0.0),
        "hd95_mm": (NAN, NAN),
        "assd_mm": (NAN, NAN),
        "rel_volume_diff": (-1.0, -1.0),
        "gt_lesions": (1, 1),
        "pred_lesions": (0, 0),
        "abs_lesion_count_diff": (1, 1),
    },
    "gt": {  # a false alarm on a lesion-free scan
        "dice": (0.0, 0.0),
        "jaccard": (0.0, 0.0),
        "precision": (0.0, 0.0),
        "recall": (0.0, NAN),
        "lesion_f1": (0.0, 0.0),
        "lesions_detected_frac": (0.0, NAN),
        "hd95_mm": (NAN, NAN),
        "assd_mm": (NAN, NAN),
        "rel_volume_diff": (NAN, NAN),
        "gt_lesions": (0, 0),
        "pred_lesions": (1, 1),
    },
}


@pytest.mark.parametrize("empty", ["one", "nan"])
@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_empty_mask_conventions(case, empty):
    lesion = np.zeros((6, 7, 8), dtype=bool)
    lesion[2:4, 2:5, 3:5] = True
    nothing = np.zeros_like(lesion)
    cases = {"both": (nothing, nothing), "pred": (nothing, lesion), "gt": (lesion, nothing)}
    pred, gt = cases[case]
    row = score_masks(pred, gt, ANISOTROPIC, empty=empty)
    for key, values in EMPTY_CASES[case].items():
        expected = values[0 if empty == "one" else 1]
        if math.isnan(expected):
            assert math.isnan(row[key]), key
        else:
            assert row[key] == expected, key
    assert not any(math.isinf(v) for v in row.values())


@pytest.mark.parametrize("empty", ["one", "nan"])
def test_specificity_when_ground_truth_fills_the_volume(empty):
    full = np.ones((3, 4, 5), dtype=bool)
    partial = full.copy()
    partial[0, 0, 0] = False
    both_full = score_masks(full, full, (1, 1, 1), empty=empty)["specificity"]
    missed = score_masks(partial, full, (1, 1, 1), empty=empty)["specificity"]
    if empty == "one":
        assert (both_full, missed) == (1.0, 0.0)
    else:
        assert math.isnan(both_full) and math.isnan(missed)


# --- input validation ------------------------------------------------------------------------


def test_float_masks_are_refused():
    probabilities = np.full((4, 4, 4), 0.7)
    with pytest.raises(ValueError, match="threshold it first"):
        score_masks(probabilities, probabilities > 0.5, (1, 1, 1))
    with pytest.raises(ValueError, match="threshold it first"):
        score_masks(probabilities > 0.5, probabilities.astype(np.float32), (1, 1, 1))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4, 4\).*\(4, 4, 5\)"):
        score_masks(np.zeros((4, 4, 4), bool), np.zeros((4, 4, 5), bool), (1, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spacing": (1, 1)}, "three positive"),
        ({"spacing": (1, 0, 1)}, "three positive"),
        ({"spacing": (1, math.nan, 1)}, "three positive"),
        ({"connectivity": 8}, "6, 18 or 26"),
        ({"empty": "zero"}, "'one' or 'nan'"),
        ({"pred": np.zeros((1, 4, 4, 4), bool)}, "3D"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {
        "pred": np.zeros((4, 4, 4), bool),
        "gt": np.zeros((4, 4, 4), bool),
        "spacing": (1, 1, 1),
        **kwargs,
    }
    if arguments["pred"].ndim == 4:
        arguments["gt"] = arguments["pred"]
    pred, gt, spacing = arguments.pop("pred"), arguments.pop("gt"), arguments.pop("spacing")
    with pytest.raises(ValueError, match=message):
        score_masks(pred, gt, spacing, **arguments)


def test_importing_metrics_does_not_import_torch():
    code = "import sys, lesionres.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_registry_every_table_and_figure_reads():
    """Every list of metric names, label and direction comes from metrics.METRIC_REGISTRY."""
    from lesionres import analysis, results
    from lesionres.analysis import figures

    registry = metrics.METRIC_REGISTRY
    assert metrics.METRIC_COLUMNS == tuple(registry)
    assert set(analysis.METRICS) == {c for c, m in registry.items() if m.kind != "confusion"}
    for selection in (metrics.SUMMARY_METRICS, metrics.REPORT_METRICS, metrics.BAR_METRICS,
                      metrics.DISTRIBUTION_METRICS):  # fmt: skip
        assert set(selection) <= set(analysis.METRICS)
    assert set(metrics.METRIC_COLUMNS) <= set(results.RESULT_COLUMNS)
    assert figures.BAR_METRICS is metrics.BAR_METRICS
    for column, m in registry.items():
        assert m.column == column and m.defined
        assert analysis.better_direction(column) == m.better
        assert m.unit in ("", "mm", "ml", "%", "voxels", "lesions")
        if m.unit in ("mm", "ml", "%"):
            assert m.label.endswith(f"({m.unit})"), column
    assert metrics.metric_label("hd95_mm") == "HD95 (mm)"
    assert metrics.metric_label("unknown") == "unknown"
    # the direction is the registry's: margins on a metric without one are refused
    assert metrics.better_direction("rel_volume_diff") is None
