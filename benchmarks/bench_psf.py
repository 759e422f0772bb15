"""Benchmark: the effective resolution of each test condition, measured, not assumed.

A thin-plane phantom (unit integral, split linearly between two voxels) is moved through one
output sample in sub-voxel steps along each axis; the sample's response is the slice
sensitivity profile (through-plane) or line spread function (in-plane), and its FWHM is the
effective resolution (:mod:`lesionres.transforms.psf`). By default the phantom is a literal
3-D volume (a plane ``--extent`` voxels wide) sent through the transform as ``test`` applies
it; ``--quick`` uses one-voxel-wide lines (identical, the transforms being separable).

For every condition and axis it prints the nominal voxel size, the measured FWHM and their
ratio, on the acquired grid (the simulated scan's own samples: what the acquisition model
models) and on the native grid (the centre voxel after interpolation back, what the model is
fed). The ``acquisition`` conditions must measure 0.85-1.35 x nominal on every downsampled
axis; ``synthseg_augmentation`` is the former acquisition model (SynthSeg's blur,
sigma = 0.75 x ratio), kept as the augmentation it is.

Run: ``python benchmarks/bench_psf.py [--quick] [--spacing 1] [--step 0.05] [--threads N]``.
One JSON line per (condition, axis, grid), then a table.
"""

from __future__ import annotations

import argparse

import torch
from _common import emit, parse_device_args

from lesionres.conditions import Condition, preset_conditions
from lesionres.transforms.psf import fwhm, slice_sensitivity_profile

__all__ = ["CONDITIONS", "main", "measure"]

#: The two conditions the acceptance criterion names (3 mm isotropic: a 3-D acquisition,
#: k-space truncation on every axis; 1x1x5 mm: 5 mm slices), their variants, and the former
#: model (SynthSeg's blur, now the ``synthseg_augmentation`` profile).
CONDITIONS = [
    Condition(method="acquisition", spacing=[3.0]),
    Condition(method="acquisition", spacing=[1.0, 1.0, 5.0]),
    Condition(method="acquisition", spacing=[3.0], inplane="profile"),
    Condition(method="acquisition", spacing=[1.0, 1.0, 5.0], profile="gaussian"),
    Condition(method="acquisition", spacing=[1.0, 1.0, 5.0], thickness=3.0),
    Condition(method="acquisition", spacing=[3.0], profile="synthseg_augmentation"),
    Condition(method="acquisition", spacing=[1.0, 1.0, 5.0], profile="synthseg_augmentation"),
]


def measure(
    condition: Condition,
    spacing: tuple[float, float, float],
    grid: str,
    step: float,
    extent: int,
) -> list[tuple[float, float]]:
    """``(nominal, measured FWHM)`` in mm per axis of ``condition`` on a scan of ``spacing``."""
    transform = condition.transform()
    nominal = condition.test_spacing(spacing)
    return [
        (nominal[axis], fwhm(*slice_sensitivity_profile(
            transform, spacing, axis, grid, step, extent  # type: ignore[arg-type]
        )))
        for axis in range(3)
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1-voxel-wide phantom, coarse steps")
    parser.add_argument("--device", default="cpu", help="only cpu (the transforms run there)")
    parser.add_argument("--spacing", type=float, default=1.0, help="source voxel size, mm")
    parser.add_argument("--step", type=float, default=None, help="phantom step, source voxels")
    parser.add_argument("--extent", type=int, default=None, help="phantom width, voxels")
    parser.add_argument("--sweep", action="store_true", help="also every sweep-preset condition")
    args, device = parse_device_args(parser, argv)
    step = args.step or (0.1 if args.quick else 0.02)
    extent = args.extent or (1 if args.quick else 9)
    spacing = (args.spacing,) * 3
    conditions = CONDITIONS + (preset_conditions("sweep") if args.sweep else [])
    table = []
    for condition in conditions:
        for grid in ("acquired", "native"):
            for axis, (nominal, measured) in enumerate(
                measure(condition, spacing, grid, step, extent)
            ):
                ratio = measured / nominal
                emit(
                    f"psf/{condition.name}/{grid}/axis{axis}", measured, "mm", device=device,
                    shape=None, nominal_mm=nominal, ratio_vs_nominal=round(ratio, 3),
                    source_mm=args.spacing, step_voxels=step, phantom_extent=extent,
                    downsampled=nominal > args.spacing * (1 + 1e-6),
                )  # fmt: skip
                table.append((condition.name, grid, axis, nominal, measured, ratio))
    print(f"\n{'condition':44} {'grid':9} axis  nominal  FWHM    ratio")
    for name, grid, axis, nominal, measured, ratio in table:
        print(f"{name:44} {grid:9} {axis:4}  {nominal:7.2f}  {measured:6.2f}  {ratio:5.2f}")
    print(f"torch {torch.__version__}, source {args.spacing} mm, step {step} voxel, "
          f"phantom extent {extent}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
