"""Benchmark: :func:`lesionres.metrics.score_masks` against MONAI's metric classes.

Builds realistic ATLAS-like mask pairs on the 197x233x189 MNI grid (1 mm): a few blob lesions
whose total volume follows ATLAS' log-normal distribution (log10 mm^3 ~ N(3.76, 0.93)), and a
prediction made by perturbing the ground truth (grown or shrunk lesions, a noisy boundary, small
lesions possibly missed, small false-positive blobs elsewhere). Each pair is scored by

- ``lesionres``: one :func:`score_masks` call (all 22 columns, lesion-wise included), and
- ``monai``: ``DiceMetric`` + ``HausdorffDistanceMetric(percentile=95)`` +
  ``SurfaceDistanceMetric(symmetric=True)``, same masks, same spacing.

MONAI gets its best case: the ``(1, 1, X, Y, Z)`` float tensors it wants are built once
outside the timed region, and it may use every torch thread (``score_masks`` uses one core).
One JSON line is printed per measurement (median seconds over ``--repeats``), then one line
with the totals and the ratio ``monai / lesionres``.

Run: ``python benchmarks/bench_metrics.py [--quick] [--repeats N] [--cases N] [--device cpu]``.
lesionres's metrics are numpy/scipy and always run on the CPU; ``--device cuda`` puts MONAI's
baseline tensors on the GPU (its strongest setting) and says so in the summary line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from _common import parse_device_args
from scipy import ndimage

from lesionres.metrics import score_masks

__all__ = ["main", "make_pair"]

SHAPE = (197, 233, 189)
SPACING = (1.0, 1.0, 1.0)


def _blob(rng: np.random.Generator, volume_mm3: float) -> np.ndarray:
    """One irregular lesion of about ``volume_mm3`` voxels in its own small box."""
    radius = (3.0 * volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    axes = radius * rng.uniform(0.7, 1.4, size=3)
    half = np.ceil(axes * 1.5).astype(int) + 2
    grid = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    ellipsoid = sum((g / a) ** 2 for g, a in zip(grid, axes, strict=True))
    # smooth noise makes the boundary irregular, as real lesions are
    noise = ndimage.gaussian_filter(rng.normal(size=ellipsoid.shape), sigma=max(1.0, radius / 3))
    noise /= noise.std() + 1e-12
    return ellipsoid + 0.25 * noise < 1.0


def _place(mask: np.ndarray, blob: np.ndarray, rng: np.random.Generator) -> None:
    """OR a blob into ``mask`` around a random point of the central 'brain' region."""
    centre = [int(rng.uniform(0.25, 0.75) * n) for n in mask.shape]
    region = []
    for c, size, n in zip(centre, blob.shape, mask.shape, strict=True):
        start = min(max(c - size // 2, 0), n - size)
        region.append(slice(start, start + size))
    mask[tuple(region)] |= blob


def make_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A realistic ``(prediction, ground truth)`` pair on the MNI grid.

    Args:
        rng: Random generator (the pair is a deterministic function of its state).

    Returns:
        Two boolean arrays of shape :data:`SHAPE`.
    """
    gt = np.zeros(SHAPE, dtype=bool)
    n_lesions = int(rng.choice([1, 1, 1, 2, 2, 3, 4, 6]))
    # ATLAS: the total lesion volume's log10 mm^3 ~ N(3.76, 0.93), split among the components
    total = 10 ** np.clip(rng.normal(3.76, 0.93), 2.0, 5.4)
    volumes = np.maximum(total * rng.dirichlet(np.ones(n_lesions)), 20.0)
    for volume in volumes:
        _place(gt, _blob(rng, volume), rng)

    # a U-Net-like prediction: blurred ground truth plus smooth noise, thresholded, so the
    # boundary wanders by a voxel or two and small lesions may vanish
    lesions = ndimage.find_objects(gt.view(np.uint8))[0]
    box = tuple(slice(max(s.start - 8, 0), s.stop + 8) for s in lesions)
    truth = gt[box].astype(np.float32)
    local = ndimage.gaussian_filter(truth, sigma=1.5)
    near = np.minimum(1.0, 3.0 * ndimage.gaussian_filter(truth, sigma=3.0))  # noise near lesions
    noise = ndimage.gaussian_filter(rng.normal(size=local.shape).astype(np.float32), sigma=2.0)
    local += float(rng.uniform(-0.1, 0.1)) + 0.5 * near * noise / (noise.std() + 1e-12)
    pred = np.zeros(SHAPE, dtype=bool)
    pred[box] = local > 0.5
    # one or two small false-positive blobs elsewhere
    for _ in range(int(rng.integers(1, 3))):
        _place(pred, _blob(rng, float(10 ** rng.uniform(1.5, 3.0))), rng)
    return pred, gt


def _median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up: imports, caches, torch thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print JSON lines.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 cases, 2 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case (5)")
    parser.add_argument("--cases", type=int, default=None, help="mask pairs (6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda: where MONAI's baseline runs (default: cpu)"
    )
    args, device = parse_device_args(parser, argv)
    repeats = args.repeats or (2 if args.quick else 5)
    cases = args.cases or (2 if args.quick else 6)

    import torch  # only the baseline needs it
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric

    warnings.filterwarnings("ignore", category=FutureWarning)  # MONAI's internal deprecation

    dice_metric = DiceMetric(include_background=True, reduction="none")
    hd_metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    asd_metric = SurfaceDistanceMetric(include_background=True, symmetric=True, reduction="none")

    rng = np.random.default_rng(args.seed)
    totals = {"lesionres": 0.0, "monai": 0.0}
    for case in range(cases):
        pred, gt = make_pair(rng)
        y_pred = torch.from_numpy(pred[None, None].astype(np.float32)).to(device)
        y = torch.from_numpy(gt[None, None].astype(np.float32)).to(device)

        def ours(pred: np.ndarray = pred, gt: np.ndarray = gt) -> dict:
            return score_masks(pred, gt, SPACING)

        def monai(y_pred: torch.Tensor = y_pred, y: torch.Tensor = y) -> tuple[float, ...]:
            dice = dice_metric(y_pred=y_pred, y=y)
            hd95 = hd_metric(y_pred=y_pred, y=y, spacing=SPACING)
            assd = asd_metric(y_pred=y_pred, y=y, spacing=SPACING)
            for metric in (dice_metric, hd_metric, asd_metric):
                metric.reset()
            return float(dice), float(hd95), float(assd)

        row = ours()
        dice, hd95, assd = monai()
        common = {
            "case": case,
            "shape": list(SHAPE),
            "gt_ml": round(row["gt_volume_ml"], 2),
            "gt_lesions": row["gt_lesions"],
            "pred_lesions": row["pred_lesions"],
            "repeats": repeats,
        }
        for name, function, values in (
            ("lesionres", ours, {"dice": row["dice"], "hd95_mm": row["hd95_mm"],
                                 "assd_mm": row["assd_mm"], "lesion_f1": row["lesion_f1"]}),
            ("monai", monai, {"dice": dice, "hd95_mm": hd95, "assd_mm": assd}),
        ):
            seconds = _median_seconds(function, repeats)
            totals[name] += seconds
            values = {k: round(float(v), 6) for k, v in values.items()}
            print(json.dumps({**common, "impl": name, "seconds": round(seconds, 5), **values}))
    print(
        json.dumps(
            {
                "summary": "all metrics per scan, median seconds summed over cases",
                "cases": cases,
                "lesionres_s": round(totals["lesionres"], 4),
                "monai_s": round(totals["monai"], 4),
                "ratio_monai_over_lesionres": round(totals["monai"] / totals["lesionres"], 2),
                "torch_threads": torch.get_num_threads(),
                "lesionres_device": "cpu (numpy/scipy)",
                "monai_device": str(device),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
