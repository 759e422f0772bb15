"""Shared helpers of the benchmark scripts: JSON records, device handling, timing, test volumes.

Every benchmark prints one JSON object per line (easy to ``grep``, ``jq`` or load with
``pandas.read_json(..., lines=True)``). Each record has at least ``name``, ``device``,
``torch``, ``shape``, ``value`` and ``unit``; a measurement compared with a baseline measured
in the same run adds ``baseline`` (the baseline record's name) and ``ratio_vs_baseline``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "ATLAS_AFFINE",
    "ATLAS_SHAPE",
    "device_name",
    "emit",
    "error_text",
    "resolve_device",
    "set_sink",
    "set_threads",
    "synchronize",
    "synthetic_volume",
    "time_left",
    "timed_ms",
    "write_volumes",
]

ATLAS_SHAPE = (197, 233, 189)
#: MNI152NLin2009aSym at 1 mm, RAS, origin about (-98, -134, -72), as every ATLAS v2.0 image
ATLAS_AFFINE = np.array(
    [[1.0, 0, 0, -98.0], [0, 1.0, 0, -134.0], [0, 0, 1.0, -72.0], [0, 0, 0, 1.0]]
)


#: where :func:`emit` also appends its lines (``None``: stdout only), and fields it adds to each
_SINK: Path | None = None
_SINK_FIELDS: dict[str, object] = {}


def set_sink(path: str | Path | None, **fields: object) -> None:
    """Make :func:`emit` also append each line to ``path`` (opened per line, so several
    processes can share one file and a killed process loses nothing it emitted), adding
    ``fields`` (e.g. ``part="loader"``) to every record. ``None`` turns it off."""
    global _SINK, _SINK_FIELDS
    _SINK = Path(path) if path is not None else None
    _SINK_FIELDS = dict(fields)


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, failing with a clear message when CUDA is asked but absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked, but torch.cuda.is_available() is False")
    return device


def parse_device_args(parser, argv) -> tuple:
    """Add ``--threads``, parse, and apply ``--device``/``--threads``: ``(args, device)``."""
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (default: torch's; 1 with --quick on CPU)",
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    set_threads(args.threads, args.quick, device)
    return args, device


def set_threads(
    threads: int | None, quick: bool = False, device: torch.device | None = None
) -> None:
    """``torch.set_num_threads(threads)`` when given; ``--quick`` on a CPU defaults to 1.

    On a shared, busy CPU one thread is often several times faster than two: OpenMP threads
    spin at every barrier while their partner waits to be scheduled (measured: a 48^3 U-Net
    step took 0.4 s with one thread, 3-10 s with two, on a loaded 2-core machine).
    """
    if threads is None and quick and (device is None or device.type == "cpu"):
        threads = 1
    if threads:
        torch.set_num_threads(threads)


def device_name(device: torch.device) -> str:
    """The accelerator's product name (``NVIDIA H100 80GB HBM3``) or the CPU and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
        f"{torch.get_num_threads()} torch threads)"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock timing covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_left(deadline: float | None) -> float:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value); infinite for ``None``.

    Benchmarks that run inside a time budget (``gpu_suite.py``) check it before each
    measurement and skip the rest, rather than be killed half-way.
    """
    return math.inf if deadline is None else deadline - time.monotonic()


def timed_ms(
    function: Callable[[], object], device: torch.device, steps: int, warmup: int
) -> tuple[float, list[float]]:
    """Median and all wall-clock times (ms) of ``steps`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), times


def emit(
    name: str,
    value: float,
    unit: str,
    *,
    device: torch.device,
    shape: Sequence[int] | None,
    baseline: tuple[str, float] | str | None = None,
    higher_is_better: bool = False,
    **extra: object,
) -> dict:
    """Print (and return) one JSON measurement line.

    Args:
        name: What was measured.
        value: The measurement.
        unit: Its unit (``ms``, ``volumes/s``, ``GiB``, ...).
        device: Where it ran.
        shape: Input shape (``None`` when not meaningful).
        baseline: ``(name, value)`` of a baseline measured in the same run; adds
            ``ratio_vs_baseline`` = how many times better this value is than the baseline
            (``baseline / value`` for times, ``value / baseline`` when ``higher_is_better``).
            A plain name only records it (pass ``ratio_vs_baseline`` yourself).
        higher_is_better: Direction of ``value`` (throughput) for the ratio.
        **extra: Further fields (notes, settings, raw times).
    """
    record: dict[str, object] = {
        **_SINK_FIELDS,
        "name": name,
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "shape": list(shape) if shape is not None else None,
        "value": round(float(value), 4) if math.isfinite(value) else None,  # strict JSON
        "unit": unit,
    }
    if isinstance(baseline, str):
        record["baseline"] = baseline
    elif baseline is not None:
        base_name, base_value = baseline
        ratio = value / base_value if higher_is_better else base_value / value
        record["baseline"] = base_name
        record["ratio_vs_baseline"] = round(float(ratio), 3) if math.isfinite(ratio) else None
    record.update(extra)
    line = json.dumps(record)
    print(line, flush=True)
    if _SINK is not None:
        with _SINK.open("a") as sink:
            sink.write(line + "\n")
    return record


def error_text(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters) for an ``error`` field."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _smooth_noise(rng: np.random.Generator, shape: Sequence[int], coarse: int) -> np.ndarray:
    """Smooth random field: coarse Gaussian noise, trilinearly upsampled (cheap, no scipy)."""
    low = torch.from_numpy(rng.normal(size=[max(2, s // coarse) for s in shape]).astype(np.float32))
    up = F.interpolate(low[None, None], size=tuple(shape), mode="trilinear", align_corners=False)
    return up[0, 0].numpy()


def synthetic_volume(
    rng: np.random.Generator, shape: Sequence[int] = ATLAS_SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """A T1-like volume and its lesion mask: a textured brain ellipsoid in zero background
    (real skull-stripped-like MNI scans are about half background, which gzip compresses well)
    and one dark irregular blob lesion inside it.

    Returns:
        ``(image int16, mask uint8)``.
    """
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    radius = np.sqrt(sum((g / r) ** 2 for g, r in zip(grids, (0.8, 0.85, 0.8), strict=True)))
    brain = radius < 1 + 0.05 * _smooth_noise(rng, shape, 16)
    noise = rng.standard_normal(shape, dtype=np.float32)
    image = 600 + 250 * _smooth_noise(rng, shape, 8) + 40 * noise
    centre = rng.uniform(-0.4, 0.4, size=3)
    size = rng.uniform(0.08, 0.2)
    lesion_distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)))
    mask = (lesion_distance < size * (1 + 0.3 * _smooth_noise(rng, shape, 12))) & brain
    image[mask] *= 0.4
    image[~brain] = 0
    return np.clip(image, 0, 32767).astype(np.int16), mask.astype(np.uint8)


def write_volumes(
    folder: Path,
    count: int,
    shape: Sequence[int] = ATLAS_SHAPE,
    seed: int = 0,
    distinct: int | None = None,
) -> list[tuple[str, Path, Path]]:
    """Write ``count`` synthetic ``(image, mask)`` pairs as ``.nii.gz`` in the ATLAS naming.

    Args:
        folder: Where the files go (created).
        count: Subjects written.
        shape: Volume shape.
        seed: Random seed of the volumes.
        distinct: Generate only this many different volumes and write the others as file
            copies of them (generating a 1 mm volume costs about a second; a loader benchmark
            needs many files, not many different ones: decompressing costs the same).

    Returns:
        ``(subject_id, image path, mask path)`` per subject.
    """
    import nibabel as nib

    from lesionres.data.layouts import ATLAS_IMAGE_SUFFIX, ATLAS_MASK_SUFFIX

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    distinct = count if distinct is None else max(1, min(distinct, count))
    for index in range(count):
        subject = f"sub-r001s{index + 1:03d}"
        stem = folder / f"{subject}_ses-1"
        image_path = Path(f"{stem}{ATLAS_IMAGE_SUFFIX}")
        mask_path = Path(f"{stem}{ATLAS_MASK_SUFFIX}")
        if index >= distinct:
            _, source_image, source_mask = written[index % distinct]
            shutil.copyfile(source_image, image_path)
            shutil.copyfile(source_mask, mask_path)
        else:
            image, mask = synthetic_volume(rng, shape)
            for data, path in ((image, image_path), (mask, mask_path)):
                nifti = nib.Nifti1Image(data, ATLAS_AFFINE)
                nifti.header.set_xyzt_units("mm")
                nib.save(nifti, str(path))
        written.append((subject, image_path, mask_path))
    return written
