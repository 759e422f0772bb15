"""Benchmark: volumes/s of lesionres' cached data pipeline against a plain TorchIO pipeline.

Both pipelines read the same ``.nii.gz`` files (synthetic T1-like volumes of the ATLAS v2.0
size, 197x233x189 at 1 mm, int16, about half zero background, plus a uint8 lesion mask, written
with nibabel into a temporary folder) and serve the same thing: the z-scored image (all voxels,
the study's choice) and the mask, zero-padded to the model grid 208x240x192, through a
``torch.utils.data.DataLoader`` with the same number of worker processes.

- ``lesionres_cache``: :class:`lesionres.data.datasets.VolumeDataset` over a
  :class:`~lesionres.data.datasets.PreprocessedCache` with a cache folder. Pass 1 reads the
  ``.nii.gz`` files, preprocesses and writes ``.npy`` files (cache misses: the first epoch);
  pass 2 reads the memory-mapped ``.npy`` files (cache hits: every later epoch).
- ``torchio`` (the baseline, what a user would write): ``tio.SubjectsDataset`` with
  ``tio.Compose([tio.ZNormalization(), tio.CropOrPad(208x240x192)])`` and
  ``tio.SubjectsLoader``. It decompresses and preprocesses every volume in every epoch.

Each pipeline runs ``--passes`` passes over the files on one loader with persistent workers,
so worker start-up counts once and the later passes are the steady state (with a warm OS page
cache for both). Printed lines (one JSON object each): volumes/s per pass and pipeline; the
summary line ``loader_speedup`` is lesionres' steady-state (last pass) volumes/s divided by
TorchIO's last pass in the same run (``ratio_vs_baseline``; target >= 10).

With ``--device cuda`` batches are pinned and copied to the GPU as in training (the copy is
part of the timing); on a CPU nothing is copied. Throughput is capped by the cores: compare
numbers measured on the same machine with the same ``--workers``. DESIGN.md's anchor: the
TorchIO pipeline delivers 11.5 volumes/s with 15 workers on 16 cores.

``--workers 0 8 15`` measures each worker count in turn (each with a fresh cache, so each
has its own pass 1 of misses); every line carries its ``workers``.

Run: ``python benchmarks/bench_loader.py [--quick] [--device cpu|cuda] [--volumes K]
[--workers N [N ...]] [--passes P]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import ATLAS_SHAPE, emit, resolve_device, synchronize, time_left, write_volumes
from torch.utils.data import DataLoader

__all__ = ["GRID_SHAPE", "compare", "main", "run"]

GRID_SHAPE = (208, 240, 192)


def _cached_loader(
    records, cache_dir: Path, workers: int, pin: bool, grid: tuple[int, int, int]
) -> DataLoader:
    from lesionres.data.datasets import PreprocessedCache, VolumeDataset
    from lesionres.data.grid import ModelGrid

    cache = PreprocessedCache(cache_dir, ModelGrid((1.0, 1.0, 1.0), grid))
    return DataLoader(
        VolumeDataset(records, cache),
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )


def _torchio_loader(records, workers: int, pin: bool, grid: tuple[int, int, int]) -> DataLoader:
    import torchio as tio

    subjects = [
        tio.Subject(
            image=tio.ScalarImage(r.image), mask=tio.LabelMap(r.mask), subject_id=r.subject_id
        )
        for r in records
    ]
    transform = tio.Compose([tio.ZNormalization(), tio.CropOrPad(grid)])
    dataset = tio.SubjectsDataset(subjects, transform=transform)
    loader_class = getattr(tio, "SubjectsLoader", DataLoader)  # torchio >= 0.20 wants its own
    return loader_class(
        dataset,
        batch_size=1,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )


def _tensors(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    image, mask = batch["image"], batch["mask"]
    if isinstance(image, dict):  # a TorchIO batch: {"data": tensor, "affine": ..., ...}
        image, mask = image["data"], mask["data"]
    return image, mask


def _run_passes(loader: DataLoader, passes: int, device: torch.device) -> list[tuple[float, int]]:
    """Seconds and volume count of each full pass over ``loader``."""
    results = []
    for _ in range(passes):
        count = 0
        start = time.perf_counter()
        for batch in loader:
            image, mask = _tensors(batch)
            if device.type == "cuda":
                image = image.to(device, non_blocking=True)
                mask = mask.to(device, non_blocking=True)
            count += image.shape[0]
        synchronize(device)
        results.append((time.perf_counter() - start, count))
    return results


def compare(
    records: list,
    workers: int,
    passes: int,
    device: torch.device,
    cache_dir: Path,
    shape: tuple[int, int, int] = ATLAS_SHAPE,
    grid: tuple[int, int, int] = GRID_SHAPE,
) -> float:
    """Time TorchIO (the baseline) then the cached pipeline (fresh cache) with ``workers``.

    Prints one line per pass and pipeline and the ``loader_speedup`` line.

    Returns:
        The speed-up: cached last pass over TorchIO's last pass (volumes/s ratio).
    """
    pin = device.type == "cuda"
    common = {"volumes": len(records), "workers": workers, "grid": list(grid)}
    tio_passes = _run_passes(_torchio_loader(records, workers, pin, grid), passes, device)
    for index, (seconds, count) in enumerate(tio_passes, start=1):
        emit(
            f"torchio_pass{index}", count / seconds, "volumes/s", device=device,
            shape=shape, higher_is_better=True, seconds=round(seconds, 3), **common,
        )
    cached = _cached_loader(records, cache_dir, workers, pin, grid)
    cache_passes = _run_passes(cached, passes, device)
    baseline_seconds, baseline_count = tio_passes[-1]
    baseline = (f"torchio_pass{passes}", baseline_count / baseline_seconds)
    for index, (seconds, count) in enumerate(cache_passes, start=1):
        emit(
            f"lesionres_cache_pass{index}", count / seconds, "volumes/s", device=device,
            shape=shape, baseline=baseline, higher_is_better=True,
            seconds=round(seconds, 3),
            note="cache misses: read .nii.gz, preprocess, write .npy" if index == 1
            else "cache hits: memory-mapped .npy",
            **common,
        )
    seconds, count = cache_passes[-1]
    speedup = (count / seconds) / baseline[1]
    emit(
        "loader_speedup", speedup, "x", device=device,
        shape=shape, baseline=baseline[0],
        ratio_vs_baseline=round(speedup, 3),
        lesionres_volumes_per_s=round(count / seconds, 2),
        torchio_volumes_per_s=round(baseline[1], 2),
        target=">= 10x (cache hits vs TorchIO, same workers)", **common,
    )
    return speedup


def run(
    device: torch.device,
    volumes: int,
    workers: Sequence[int],
    passes: int = 3,
    shape: tuple[int, int, int] = ATLAS_SHAPE,
    grid: tuple[int, int, int] = GRID_SHAPE,
    seed: int = 0,
    distinct: int | None = None,
    tmp: str | None = None,
    deadline: float | None = None,
) -> dict[int, float]:
    """Write the volumes into a temporary folder and :func:`compare` per worker count.

    Args:
        device: ``cuda`` pins and copies each batch to the GPU inside the timing.
        volumes: Files per pass.
        workers: Loader worker counts, measured in this order.
        passes: Passes per pipeline (at least 2: the first of the cache fills it).
        shape: Volume shape written.
        grid: Model grid both pipelines pad (or crop) to.
        seed: Random seed of the volumes.
        distinct: Different volumes generated; the others are file copies (see
            :func:`_common.write_volumes`).
        tmp: Parent folder of the temporary folder (default: the system's).
        deadline: ``time.monotonic()`` after which the remaining worker counts are skipped.

    Returns:
        ``{workers: speed-up}`` of the worker counts measured.
    """
    from lesionres.data.layouts import SubjectRecord

    passes = max(2, passes)
    speedups = {}
    with tempfile.TemporaryDirectory(dir=tmp, prefix="bench-loader-") as folder:
        start = time.perf_counter()
        written = write_volumes(Path(folder) / "nifti", volumes, shape, seed, distinct)
        write_s = time.perf_counter() - start
        files = [p for _, image, mask in written for p in (image, mask)]
        megabytes = sum(p.stat().st_size for p in files) / 2**20
        records = [SubjectRecord(sid, image, mask, "atlas", "R001") for sid, image, mask in written]
        emit(
            "write_nifti", volumes / write_s, "volumes/s", device=device, shape=shape,
            nifti_mib_total=round(megabytes, 1), volumes=volumes, distinct=distinct or volumes,
            note="setup: synthetic .nii.gz written with nibabel (copies count as written)",
        )
        for count in workers:
            if time_left(deadline) <= 0:
                emit(
                    "loader_speedup", float("nan"), "x", device=device, shape=shape,
                    workers=count, skipped="time budget",
                )
                continue
            cache_dir = Path(folder) / f"cache-w{count}"
            speedups[count] = compare(records, count, passes, device, cache_dir, shape, grid)
    return speedups


def main(argv: list[str] | None = None) -> int:
    """Write the volumes, time both pipelines, print JSON lines; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--quick", action="store_true", help="8 volumes, 2 passes")
    parser.add_argument("--volumes", type=int, default=None, help="volumes written (default 32)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=None,
        help="loader workers, one or more counts (default: cores - 1, at least 1)",
    )
    parser.add_argument("--passes", type=int, default=None, help="passes per pipeline (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tmp", default=None, help="folder for the volumes (default: a temp folder)"
    )
    args = parser.parse_args(argv)
    run(
        resolve_device(args.device),
        volumes=args.volumes or (8 if args.quick else 32),
        workers=args.workers or [max(1, (os.cpu_count() or 2) - 1)],
        passes=args.passes or (2 if args.quick else 3),
        seed=args.seed,
        tmp=args.tmp,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
