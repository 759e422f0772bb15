"""Per-scan segmentation metrics of a binary prediction against a binary ground truth.

:func:`score_masks` returns one flat dictionary per scan (keys :data:`METRIC_COLUMNS`), the
row the results table stores: confusion counts, overlap ratios, volumes in ml, surface
distances in mm and lesion-wise detection scores. Pure numpy/scipy: no torch import, so the
analysis side and ``lesionres score`` can use it without a deep-learning stack.

Definitions (``TP, FP, FN, TN`` are voxel counts, ``V = prod(spacing) / 1000`` ml per voxel):

==========================  ==================================================================
column                      definition
==========================  ==================================================================
``dice``                    ``2TP / (2TP + FP + FN)``
``jaccard``                 ``TP / (TP + FP + FN)``
``precision``               ``TP / (TP + FP)``
``recall``                  ``TP / (TP + FN)`` (sensitivity)
``specificity``             ``TN / (TN + FP)``
``accuracy``                ``(TP + TN) / all voxels``
``gt_volume_ml``            ``(TP + FN) * V``
``pred_volume_ml``          ``(TP + FP) * V``
``abs_volume_diff_ml``      ``|pred_volume_ml - gt_volume_ml|`` (ISLES'22 uses ml, ATLAS voxels)
``rel_volume_diff``         ``(pred_volume_ml - gt_volume_ml) / gt_volume_ml``, **signed**:
                            > 0 over-segmentation, < 0 under-segmentation
``pred_lesion_pct``         ``100 * (TP + FP) / all voxels`` (the study's "Exact One
                            Percentages")
``hd95_mm``                 95th percentile (linear interpolation) of the surface
                            distances, both directions pooled (or the larger directed one)
``assd_mm``                 mean of the pooled surface distances in both directions
``gt_lesions``              connected components of the ground truth
``pred_lesions``            connected components of the prediction
``lesion_f1``               ``TPl / (TPl + (FPl + FNl) / 2)``: ``TPl`` ground-truth lesions
                            overlapping the prediction by at least one voxel, ``FNl`` the
                            other ground-truth lesions, ``FPl`` predicted components that
                            overlap no ground-truth voxel (ISLES'22 challenge code)
``abs_lesion_count_diff``   ``|gt_lesions - pred_lesions|``
``lesions_detected_frac``   ``TPl / gt_lesions``
==========================  ==================================================================

Surface distances follow the field's references, medpy (``medpy.metric.binary.hd95`` /
``assd`` with their default ``connectivity=1``) and MONAI (``compute_hausdorff_distance``,
``compute_average_surface_distance``); agreement with both is tested on anisotropic cases. The
surface of a mask is the mask minus its binary erosion by the face-connected (6-neighbour)
element (voxels outside the array count as background); each surface voxel's distance to the
nearest surface voxel of the other mask is measured in mm. ``assd_mm`` is the mean of both
directions' distances pooled (medpy and MONAI agree). ``hd95_mm`` is aggregated in one of the two
ways in use, chosen by ``hd95`` and recorded with the results: ``"pooled"`` (default, medpy): the
95th percentile of both directions' distances together; ``"max"`` (MONAI, BraTS): the larger of
the two directed 95th percentiles (never smaller than ``"pooled"``). Eroding with the full
3x3x3 element instead, as lesionres did before 0.2, keeps fewer voxels on the surface and gives
distances 10-30 % smaller than any published figure.

Connected components use 26-connectivity by default, as the ISLES'22 challenge code; the
ATLAS challenge code used scipy's default 6-connectivity (``connectivity=6``).

Empty masks. A ratio whose denominator is zero (0/0) gets, by convention ``empty``:

=========================  ===================================  ============  ===========
case                       columns                              ``"one"``     ``"nan"``
=========================  ===================================  ============  ===========
both empty                 dice, jaccard, precision, recall,    1.0           NaN
                           lesion_f1, lesions_detected_frac
both empty                 hd95_mm, assd_mm                     0.0           NaN
only prediction empty      precision                            0.0           NaN
only ground truth empty    recall, lesions_detected_frac        0.0           NaN
exactly one empty          dice, jaccard, lesion_f1 (defined,   0.0           0.0
                           not 0/0)
exactly one empty          hd95_mm, assd_mm                     NaN           NaN
ground truth empty         rel_volume_diff                      NaN           NaN
no ground-truth            specificity                          1.0 if the    NaN
background                                                      prediction
                                                                fills the
                                                                volume too,
                                                                else 0.0
=========================  ===================================  ============  ===========

The rule behind the table: ``"nan"`` (nnU-Net, MONAI, torchmetrics) leaves every 0/0 NaN.
``"one"`` follows the ATLAS and ISLES challenge code where it speaks (both empty: Dice and
lesion-wise F1 1.0) and extends it so that every scan gets a finite overlap score and means run
over all scans: 0/0 is 1.0 when the two masks agree that there is nothing (no error of any
kind) and 0.0 when exactly one is empty (a missed scan or a pure false alarm).
Distances with exactly one empty mask are undefined under both conventions and stay NaN
(MONAI returns inf; no inf ever leaves this module); ``rel_volume_diff`` is NaN whenever the
ground truth is empty (``abs_volume_diff_ml`` is always defined). Confusion counts are always
stored, so any other convention can be recomputed from a results table.

Speed: every metric is computed on the union bounding box of both masks, padded by one
background voxel, so a 197x233x189 pair with realistic lesions takes tens of ms (about 0.2 s
for the largest lesions, on a 2-core CPU). The box
is exact: voxels outside it are background in both masks (they only add to ``TN``), the pad
gives the erosion the same neighbours it sees in the full volume, and every surface voxel lies
inside the box, so a distance transform of one surface restricted to the box is exact at the
other surface's voxels (no margin beyond the erosion's one voxel is needed). When the box is
large but the surfaces are small (lesions scattered over the brain), a k-d tree over the
surface-voxel coordinates gives the same nearest distances faster than a distance transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = [
    "ANALYSED_METRICS",
    "BAR_METRICS",
    "DISTRIBUTION_METRICS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "METRIC_COLUMNS",
    "METRIC_LABELS",
    "METRIC_REGISTRY",
    "REPORT_METRICS",
    "SUMMARY_METRICS",
    "Metric",
    "better_direction",
    "metric_label",
    "SURFACE_DEFINITION",
    "EmptyConvention",
    "HD95Aggregation",
    "lesion_volumes_ml",
    "score_masks",
    "surface_distances",
]


@dataclass(frozen=True)
class Metric:
    """What the analysis needs to know about one column of :func:`score_masks`' result.

    Attributes:
        column: Column name in the results table.
        label: Name for axes and tables, with the unit (``"HD95 (mm)"``).
        short: Short name for the console summary of ``test``.
        unit: ``"mm"``, ``"ml"``, ``"%"``, ``"voxels"``, ``"lesions"`` or ``""`` (a ratio).
        better: ``"higher"`` (a quality), ``"lower"`` (an error) or ``None`` (volumes, counts,
            the signed relative volume difference: no direction, so no margin on them).
        defined: When the value is defined (the module docstring's empty-mask table).
        kind: Its family; tables list qualities, then lesion detection, distances, volumes and
            counts (the confusion counts are stored, not analysed).
    """

    column: str
    label: str
    unit: str
    better: Literal["higher", "lower"] | None
    defined: str
    kind: Literal["confusion", "overlap", "detection", "distance", "volume", "count"]
    short: str = ""


_ALWAYS = "always"
_NOT_BOTH_EMPTY = "not both masks empty (both empty: 1 under empty='one', NaN under 'nan')"
_PRED = "a non-empty prediction (0/0 otherwise: the empty convention)"
_GT = "a non-empty ground truth (0/0 otherwise: the empty convention)"
_BOTH = "a non-empty prediction and ground truth (both empty: 0 under empty='one')"

#: Every column :func:`score_masks` writes, in the order a results table lists them: the one
#: list of metrics that tables, figures and reports read (names, labels, units, direction).
METRIC_REGISTRY: dict[str, Metric] = {
    m.column: m
    for m in (
        Metric("tp", "true positive voxels", "voxels", None, _ALWAYS, "confusion"),
        Metric("fp", "false positive voxels", "voxels", None, _ALWAYS, "confusion"),
        Metric("fn", "false negative voxels", "voxels", None, _ALWAYS, "confusion"),
        Metric("tn", "true negative voxels", "voxels", None, _ALWAYS, "confusion"),
        Metric("dice", "Dice", "", "higher", _NOT_BOTH_EMPTY, "overlap", "dice"),
        Metric("jaccard", "Jaccard", "", "higher", _NOT_BOTH_EMPTY, "overlap"),
        Metric("precision", "precision", "", "higher", _PRED, "overlap", "precision"),
        Metric("recall", "recall", "", "higher", _GT, "overlap", "recall"),
        Metric(
            "specificity",
            "specificity",
            "",
            "higher",
            "a ground-truth background (a mask filling the volume: the empty convention)",
            "overlap",
        ),  # fmt: skip
        Metric("accuracy", "accuracy", "", "higher", _ALWAYS, "overlap"),
        Metric("gt_volume_ml", "true lesion volume (ml)", "ml", None, _ALWAYS, "volume"),
        Metric("pred_volume_ml", "predicted lesion volume (ml)", "ml", None, _ALWAYS, "volume"),
        Metric(
            "abs_volume_diff_ml",
            "|volume difference| (ml)",
            "ml",
            "lower",
            _ALWAYS,
            "volume",
            "|dV| ml",
        ),  # fmt: skip
        Metric(
            "rel_volume_diff",
            "relative volume difference",
            "",
            None,
            "a non-empty ground truth",
            "volume",
        ),  # fmt: skip
        Metric("pred_lesion_pct", "predicted lesion voxels (%)", "%", None, _ALWAYS, "volume"),
        Metric("hd95_mm", "HD95 (mm)", "mm", "lower", _BOTH, "distance", "HD95 mm"),
        Metric("assd_mm", "ASSD (mm)", "mm", "lower", _BOTH, "distance"),
        Metric("gt_lesions", "true lesion count", "lesions", None, _ALWAYS, "count"),
        Metric("pred_lesions", "predicted lesion count", "lesions", None, _ALWAYS, "count"),
        Metric(
            "lesion_f1", "lesion-wise F1", "", "higher", _NOT_BOTH_EMPTY, "detection", "lesion F1"
        ),  # fmt: skip
        Metric(
            "abs_lesion_count_diff",
            "|lesion count difference|",
            "lesions",
            "lower",
            _ALWAYS,
            "count",
        ),  # fmt: skip
        Metric(
            "lesions_detected_frac", "lesions detected (fraction)", "", "higher", _GT, "detection"
        ),  # fmt: skip
    )
}

#: Keys of :func:`score_masks`' result, in the order a results table lists them.
METRIC_COLUMNS: tuple[str, ...] = tuple(METRIC_REGISTRY)

_KIND_ORDER = ("overlap", "detection", "distance", "volume", "count")
#: Per-scan metrics the analysis summarises and tests, in the order its tables list them.
ANALYSED_METRICS: tuple[str, ...] = tuple(
    sorted(
        (m.column for m in METRIC_REGISTRY.values() if m.kind in _KIND_ORDER),
        key=lambda c: _KIND_ORDER.index(METRIC_REGISTRY[c].kind),
    )
)
#: Metrics where a higher value is a better segmentation.
HIGHER_IS_BETTER: frozenset[str] = frozenset(
    m.column for m in METRIC_REGISTRY.values() if m.better == "higher"
)
#: Error metrics: lower is better.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    m.column for m in METRIC_REGISTRY.values() if m.better == "lower"
)

# The selections each output shows (choices, not facts: the facts are in the registry).
#: The console summary of ``test``.
SUMMARY_METRICS: tuple[str, ...] = (
    "dice", "precision", "recall", "hd95_mm", "lesion_f1", "abs_volume_diff_ml",
)  # fmt: skip
#: The report's summary table (the CSV has every metric).
REPORT_METRICS: tuple[str, ...] = (
    "dice", "precision", "recall", "lesion_f1", "hd95_mm", "abs_volume_diff_ml", "pred_lesion_pct",
)  # fmt: skip
#: The report's per-scan distribution figures (besides the primary metric).
DISTRIBUTION_METRICS: tuple[str, ...] = ("dice", "lesion_f1", "hd95_mm", "abs_volume_diff_ml")
#: Metrics on a 0-1 scale, shown together in the bar chart.
BAR_METRICS: tuple[str, ...] = (
    "dice", "jaccard", "precision", "recall", "lesion_f1", "lesions_detected_frac",
)  # fmt: skip
#: Axis labels with units, by column.
METRIC_LABELS: dict[str, str] = {c: m.label for c, m in METRIC_REGISTRY.items() if c not in
                                 ("tp", "fp", "fn", "tn")}  # fmt: skip


def metric_label(column: str) -> str:
    """The display name of a metric with its unit (``"HD95 (mm)"``); unknown: the column."""
    return METRIC_LABELS.get(column, column)


def better_direction(metric: str) -> Literal["higher", "lower"] | None:
    """Which way a metric is better: ``"higher"``, ``"lower"``, or ``None`` (no direction).

    Args:
        metric: metric column name.
    """
    known = METRIC_REGISTRY.get(metric)
    return known.better if known else None


EmptyConvention = Literal["one", "nan"]
HD95Aggregation = Literal["pooled", "max"]
Connectivity = Literal[6, 18, 26]

_CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}  # scipy's generate_binary_structure rank
# Two distance transforms cost 150-250 ns per box voxel, the two k-d tree queries 1-3 us per
# surface voxel (measured on ATLAS-like pairs, 2-core CPU): above this many box voxels per
# surface voxel the tree is cheaper, below it (large compact lesions) the transform is.
_EDT_VOXELS_PER_SURFACE_VOXEL = 12
_FACES = ndimage.generate_binary_structure(3, 1)  # medpy's default and MONAI's surface element
#: What :func:`score_masks` calls a surface, in words, for results tables and reports.
SURFACE_DEFINITION = "mask minus its erosion by the 6-neighbour (face) element (medpy, MONAI)"


def score_masks(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    *,
    connectivity: Connectivity = 26,
    empty: EmptyConvention = "one",
    hd95: HD95Aggregation = "pooled",
) -> dict[str, float | int]:
    """All per-scan metrics of a binary prediction against the ground truth.

    Args:
        pred: Predicted mask, 3D, bool or integer (voxels ``> 0`` are lesion). Threshold a
            probability map first: float arrays are rejected.
        gt: Ground-truth mask, same shape and rules as ``pred``.
        spacing: Voxel size in mm along each of the three axes.
        connectivity: Neighbourhood of lesion components: 6 (faces), 18 (faces and edges)
            or 26 (faces, edges and corners, as ISLES'22).
        empty: What a 0/0 ratio becomes, see the module's table: ``"one"`` (challenge code)
            or ``"nan"`` (nnU-Net, MONAI, torchmetrics).
        hd95: ``"pooled"`` (medpy: 95th percentile of both directions' distances together)
            or ``"max"`` (MONAI: the larger of the two directed 95th percentiles).

    Returns:
        ``{column: value}`` for every column of :data:`METRIC_COLUMNS`, in that order;
        counts are ``int``, everything else ``float`` (NaN where undefined, never inf).

    Raises:
        ValueError: float or non-3D masks, different shapes, bad spacing, connectivity or
            convention.
    """
    pred = _binarise(pred, "pred")
    gt = _binarise(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} differs from gt shape {gt.shape}")
    sampling = _check_spacing(spacing)
    structure = _structure(connectivity)
    if empty not in ("one", "nan"):
        raise ValueError(f"empty must be 'one' or 'nan', got {empty!r}")
    if hd95 not in ("pooled", "max"):
        raise ValueError(f"hd95 must be 'pooled' or 'max', got {hd95!r}")

    n_voxels = pred.size
    voxel_ml = float(np.prod(sampling)) / 1000.0
    pred_box, gt_box = _crop_to_union(pred, gt)
    n_pred = int(np.count_nonzero(pred_box))
    n_gt = int(np.count_nonzero(gt_box))
    overlap = pred_box & gt_box
    tp = int(np.count_nonzero(overlap))
    fp, fn = n_pred - tp, n_gt - tp
    tn = n_voxels - tp - fp - fn

    both_empty = n_pred == 0 and n_gt == 0
    nan = float("nan")

    def ratio(numerator: int | float, denominator: int | float, agree: bool) -> float:
        # 0/0: "one" scores agreement about absence 1.0 and disagreement 0.0; "nan" leaves it
        if denominator:
            return float(numerator / denominator)
        if empty == "nan":
            return nan
        return 1.0 if agree else 0.0

    # lesion-wise detection: a ground-truth lesion is found if any voxel overlaps
    gt_labels, gt_lesions = ndimage.label(gt_box, structure)
    pred_labels, pred_lesions = ndimage.label(pred_box, structure)
    detected = int(np.unique(gt_labels[overlap]).size)  # overlap voxels carry labels >= 1
    pred_hits = int(np.unique(pred_labels[overlap]).size)
    lesion_fp, lesion_fn = pred_lesions - pred_hits, gt_lesions - detected

    if both_empty:
        hd95_mm = assd = 0.0 if empty == "one" else nan
    elif n_pred == 0 or n_gt == 0:
        hd95_mm = assd = nan  # undefined: MONAI's inf must not reach a results table
    else:
        directed = _box_surface_distances(pred_box, gt_box, sampling)
        distances = np.concatenate(directed)
        if hd95 == "pooled":
            hd95_mm = float(np.percentile(distances, 95))
        else:
            hd95_mm = max(float(np.percentile(d, 95)) for d in directed)
        assd = float(distances.mean())

    gt_ml, pred_ml = n_gt * voxel_ml, n_pred * voxel_ml
    values: dict[str, float | int] = {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "dice": ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        "jaccard": ratio(tp, tp + fp + fn, both_empty),
        "precision": ratio(tp, tp + fp, both_empty),
        "recall": ratio(tp, tp + fn, both_empty),
        # 0/0 only when the ground truth fills the volume: "agree" if the prediction does too
        "specificity": ratio(tn, tn + fp, fn == 0),
        "accuracy": (tp + tn) / n_voxels,
        "gt_volume_ml": gt_ml,
        "pred_volume_ml": pred_ml,
        "abs_volume_diff_ml": abs(pred_ml - gt_ml),
        "rel_volume_diff": (pred_ml - gt_ml) / gt_ml if n_gt else nan,
        "pred_lesion_pct": 100.0 * n_pred / n_voxels,
        "hd95_mm": hd95_mm,
        "assd_mm": assd,
        "gt_lesions": int(gt_lesions),
        "pred_lesions": int(pred_lesions),
        "lesion_f1": ratio(detected, detected + (lesion_fp + lesion_fn) / 2, both_empty),
        "abs_lesion_count_diff": abs(int(gt_lesions) - int(pred_lesions)),
        "lesions_detected_frac": ratio(detected, gt_lesions, both_empty),
    }
    return {column: values[column] for column in METRIC_COLUMNS}


def lesion_volumes_ml(
    mask: np.ndarray, spacing: Sequence[float], connectivity: Connectivity = 26
) -> np.ndarray:
    """Volume in ml of each connected component of a mask (e.g. to stratify by lesion size).

    Args:
        mask: 3D mask, bool or integer (voxels ``> 0`` are lesion).
        spacing: Voxel size in mm along each axis.
        connectivity: 6, 18 or 26, as in :func:`score_masks`.

    Returns:
        Float array with one volume per component, in scipy's label order (raster order of
        each component's first voxel); empty when the mask is empty.
    """
    mask = _binarise(mask, "mask")
    sampling = _check_spacing(spacing)
    box = _bounding_box(mask)
    if box is None:
        return np.zeros(0)
    labels, count = ndimage.label(mask[box], _structure(connectivity))
    voxels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return voxels * (float(np.prod(sampling)) / 1000.0)


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm, the raw material of HD95 and ASSD.

    Surfaces as in the module docstring (6-neighbour erosion). ``np.percentile(np.concatenate(
    result), 95)`` is :func:`score_masks`' pooled ``hd95_mm`` (medpy); ``max(np.percentile(d,
    95) for d in result)`` its ``hd95="max"`` variant (MONAI, BraTS).

    Args:
        pred: Predicted mask, 3D, bool or integer.
        gt: Ground-truth mask, same shape.
        spacing: Voxel size in mm along each axis.

    Returns:
        ``(pred_to_gt, gt_to_pred)``: for each surface voxel of one mask, in raster order, the
        distance to the nearest surface voxel of the other.

    Raises:
        ValueError: as :func:`score_masks`, or when either mask is empty (undefined).
    """
    pred = _binarise(pred, "pred")
    gt = _binarise(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} differs from gt shape {gt.shape}")
    sampling = _check_spacing(spacing)
    pred_box, gt_box = _crop_to_union(pred, gt)
    if not pred_box.any() or not gt_box.any():
        raise ValueError("surface distances are undefined when a mask is empty")
    return _box_surface_distances(pred_box, gt_box, sampling)


def _binarise(mask: np.ndarray, name: str) -> np.ndarray:
    """Boolean view of a bool/integer 3D mask; floats are refused (no soft scores)."""
    array = np.asarray(mask)
    if array.dtype == bool:
        pass
    elif np.issubdtype(array.dtype, np.integer):
        array = array > 0
    elif np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(
            f"{name} has dtype {array.dtype}: threshold it first (e.g. {name} >= 0.5); a "
            "probability map must not be scored as a soft Dice"
        )
    else:
        raise ValueError(f"{name} has dtype {array.dtype}: expected a bool or integer mask")
    if array.ndim != 3:
        raise ValueError(f"{name} has shape {array.shape}: expected a 3D mask")
    if array.size == 0:
        raise ValueError(f"{name} has shape {array.shape}: the mask has no voxels")
    return array


def _check_spacing(spacing: Sequence[float]) -> np.ndarray:
    sampling = np.asarray(spacing, dtype=float)
    if sampling.shape != (3,) or not np.all(np.isfinite(sampling) & (sampling > 0)):
        raise ValueError(f"spacing must be three positive voxel sizes in mm, got {spacing!r}")
    return sampling


def _structure(connectivity: int) -> np.ndarray:
    if connectivity not in _CONNECTIVITY_RANK:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity!r}")
    return ndimage.generate_binary_structure(3, _CONNECTIVITY_RANK[connectivity])


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every true voxel; None for an empty mask."""
    box = []
    for axis in range(mask.ndim):
        # projections are a few ms on a full volume, far cheaper than find_objects
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _crop_to_union(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks on their union's bounding box padded by one background voxel per side.

    The pad makes the erosion see the same neighbours as in the full volume: inside the
    volume they are background (outside the box), outside it scipy's border is background too.
    """
    box = _bounding_box(pred | gt)
    if box is None:
        empty = np.zeros((1, 1, 1), dtype=bool)
        return empty, empty
    return np.pad(pred[box], 1), np.pad(gt[box], 1)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with at least one background voxel among their 6 face neighbours."""
    return mask & ~ndimage.binary_erosion(mask, _FACES)


def _box_surface_distances(
    pred_box: np.ndarray, gt_box: np.ndarray, sampling: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances of two non-empty padded box crops, by the cheaper method."""
    pred_surface = _surface(pred_box)
    gt_surface = _surface(gt_box)
    n_surface = np.count_nonzero(pred_surface) + np.count_nonzero(gt_surface)
    if pred_box.size <= _EDT_VOXELS_PER_SURFACE_VOXEL * n_surface:
        # distance of every box voxel to the nearest surface voxel (the zeros of ~surface)
        to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=sampling)
        to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)
        return to_gt[pred_surface], to_pred[gt_surface]
    return (
        _tree_distances(pred_surface, gt_surface, sampling),
        _tree_distances(gt_surface, pred_surface, sampling),
    )


def _tree_distances(source: np.ndarray, target: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    """Distance from each ``source`` voxel to the nearest ``target`` voxel (k-d tree, exact)."""
    distances = np.zeros(np.count_nonzero(source))
    # voxels on both surfaces are at distance 0: query only the others (often a third fewer)
    shared = target[source]
    if shared.all():
        return distances
    # one batched query: a quickly built, unbalanced tree with bigger leaves is faster overall
    points = np.argwhere(target) * sampling
    tree = cKDTree(points, leafsize=32, balanced_tree=False, compact_nodes=False)
    distances[~shared] = tree.query(np.argwhere(source & ~target) * sampling, k=1)[0]
    return distances
