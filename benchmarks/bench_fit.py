"""Benchmark: a real short ``fit`` and how much of it waits for data; projected study time.

A small synthetic ATLAS-like dataset is written with :mod:`lesionres.data.synthetic` (the MNI
template under deformations, lesions, bias and noise) into a temporary folder, and
:class:`lesionres.module.LesionSegmenter` is trained on whole volumes (the study's setup: batch
1, BCE) through a ``pytorch_lightning.Trainer`` with the package's
:class:`lesionres.data.datamodule.LesionDataModule` (``.npy`` cache in the temporary folder, the
given number of loader workers). These are the objects ``python -m lesionres fit`` builds.

A callback, :class:`DataWaitTimer`, splits the training loop's wall time into

- **compute**: ``on_train_batch_start`` -> ``on_train_batch_end`` of a batch (forward, loss,
  backward, optimizer step, metric updates, logging), and
- **data wait**: ``on_train_batch_end`` of a batch -> ``on_train_batch_start`` of the next one
  in the same epoch (fetching the next batch from the loader, moving it to the device and
  Lightning's bookkeeping). On CUDA both ends synchronise, so queued GPU work counts as
  compute, not as wait.

``data_wait_share`` = wait / (wait + compute) over the epochs after the first (the first fills
the cache: ``data_wait_share_epoch0`` is reported apart); target < 5 %. The wait before the
first batch of each epoch (loader iterator start) is reported apart
(``epoch_start_wait_ms``); Lightning's own profiler time for fetching
(``[_TrainingEpochLoop].train_dataloader_next``) is given as ``fetch_ms_median``.

**Projection.** The study trains 50 epochs x 400 scans = 20000 steps. ``projected_study``
= 20000 x step time / (1 - data_wait_share), in minutes (target < 30 on one H100/H200), and
``projected_study_with_validation`` adds 50 x 100 validation volumes at the measured
validation time per volume. The step time is ``--step-ms`` when given, else the fit's own
median compute time per step. Without ``--quick`` the fit runs on the study's 1 mm grid
(208x240x192, base 16, depth 4), so the projection uses a measured full-volume step on that
device; with ``--quick`` the volumes are 4 mm (56x64x48, base 8, depth 3) and the projection
says ``"basis": "quick fit's own step (not the study's volume)"``: pass ``--step-ms`` (e.g. from
``bench_train_step.py`` on the GPU) for a meaningful number.

**Test** (``--test``): the fitted model's ``Trainer.test`` over the test split under the study's
4 conditions (original, crude x2, linear x2, acquisition 1x1x5 mm), every metric, each
prediction scored on the scan's own grid (what ``python -m lesionres test`` does):
``test_throughput`` in scans x conditions per minute, ``projected_test_155x4`` the study's
test set at that rate (target < 2 min on one GPU box).

Run: ``python benchmarks/bench_fit.py [--quick] [--device cpu|cuda] [--workers N]
[--subjects N] [--epochs N] [--step-ms MS] [--test]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _common import emit, parse_device_args, synchronize

__all__ = [
    "data_wait_timer",
    "default_precision",
    "main",
    "make_datamodule",
    "make_trainer",
    "prepare",
    "project_study",
    "run_fit",
    "run_test",
    "study_setup",
]

STUDY_SHAPE = (208, 240, 192)
STUDY_STEPS = 50 * 400
STUDY_VAL_VOLUMES = 50 * 100
STUDY_TEST_ROWS = 155 * 4  # test scans x conditions (original, crude x2, linear x2, 1x1x5 mm)


def data_wait_timer(device: torch.device):
    """A ``DataWaitTimer`` callback instance for ``device`` (see the module docstring).

    The class is built here so that importing this script (``--help``) needs no Lightning.
    """
    import pytorch_lightning as pl

    class DataWaitTimer(pl.Callback):
        """Per-epoch lists of data-wait and compute times (seconds) of the training batches."""

        def __init__(self) -> None:
            self.waits: dict[int, list[float]] = {}
            self.computes: dict[int, list[float]] = {}
            self.epoch_start_waits: dict[int, float] = {}
            self.validation: list[float] = []
            self._last_end: float | None = None
            self._epoch_start = 0.0
            self._batch_start = 0.0
            self._excluded = 0.0
            self._val_start = 0.0
            self._val_batch_start = 0.0

        def _now(self) -> float:
            synchronize(device)
            return time.perf_counter()

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._last_end = None
            self._excluded = 0.0
            self._epoch_start = self._now()
            self.waits[trainer.current_epoch] = []
            self.computes[trainer.current_epoch] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            now = self._now()
            epoch = trainer.current_epoch
            if self._last_end is None:
                self.epoch_start_waits[epoch] = now - self._epoch_start
            else:
                self.waits[epoch].append(now - self._last_end - self._excluded)
            self._excluded = 0.0
            self._batch_start = now

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            now = self._now()
            self.computes[trainer.current_epoch].append(now - self._batch_start)
            self._last_end = now

        # validation inside an epoch (val_check_interval < 1) is not data wait
        def on_validation_start(self, trainer, pl_module) -> None:
            self._val_start = self._now()

        def on_validation_end(self, trainer, pl_module) -> None:
            self._excluded += self._now() - self._val_start

        def on_validation_batch_start(
            self, trainer, pl_module, batch, batch_idx, dataloader_idx=0
        ) -> None:
            self._val_batch_start = self._now()

        def on_validation_batch_end(
            self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
        ) -> None:
            self.validation.append(self._now() - self._val_batch_start)

    return DataWaitTimer()


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else float("nan")


def study_setup(quick: bool) -> tuple[float, tuple[int, int, int], int, int]:
    """``(spacing mm, model grid, U-Net base channels, depth)``: the study's 1 mm setup
    (``paper.yaml``), or with ``quick`` 4 mm volumes and a small U-Net."""
    if quick:
        return 4.0, (56, 64, 48), 8, 3
    return 1.0, STUDY_SHAPE, 16, 4


def make_datamodule(
    root: Path,
    cache_dir: Path,
    *,
    quick: bool,
    subjects: int,
    workers: int,
    seed: int = 0,
    test_fraction: float = 0.1,
    condition_preset: str = "none",
):
    """The ``LesionDataModule`` of the benchmark: synthetic whole volumes, batch 1.

    Two calls with the same arguments give the same split (the fit and the test of
    ``gpu_suite.py`` run in different processes on the same data).
    """
    from lesionres.data.datamodule import LesionDataModule

    spacing, shape, _, _ = study_setup(quick)
    return LesionDataModule(
        dataset="synthetic",
        root=str(root),
        seed=seed,
        val_fraction=0.2,
        test_fraction=test_fraction,
        target_shape=shape,
        batch_size=1,
        num_workers=workers,
        cache_dir=str(cache_dir),
        condition_preset=condition_preset,
        synthetic_subjects=subjects,
        synthetic_isles_subjects=0,
        synthetic_spacing=spacing,
    )


def prepare(datamodule, device: torch.device) -> None:
    """Generate the synthetic dataset unless it is there; print how long it took."""
    start = time.perf_counter()
    datamodule.prepare_data()
    emit(
        "synthetic_data", time.perf_counter() - start, "s", device=device, shape=None,
        subjects=datamodule.hparams.synthetic_subjects,
        note="setup: generating the synthetic dataset (not part of the fit; 0 when reused)",
    )


def make_trainer(device: torch.device, precision: str, folder: Path, **options):
    """A quiet ``pl.Trainer`` on one device (no logger, checkpoints or progress bar)."""
    import pytorch_lightning as pl

    warnings.filterwarnings("ignore", category=UserWarning)  # few workers, small val set, ...
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    return pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        benchmark=device.type == "cuda",
        default_root_dir=folder,
        **options,
    )


def run_fit(
    device: torch.device,
    datamodule,
    folder: Path,
    *,
    quick: bool,
    epochs: int,
    precision: str,
    compile: bool = False,
    channels_last: bool = False,
) -> dict:
    """Fit on ``datamodule`` and print the fit's lines (wall, step, data wait, validation).

    Args:
        device: Where to train.
        datamodule: From :func:`make_datamodule` (prepared).
        folder: Scratch folder (the profiler's file).
        quick: The small setup of :func:`study_setup`.
        epochs: Epochs (at least 2: the first fills the cache and is measured apart).
        precision: Lightning precision.
        compile: ``LesionSegmenter(compile=True)``.
        channels_last: ``LesionSegmenter(channels_last=True)``.

    Returns:
        ``model`` (the trained module), ``step_ms`` (median compute per step),
        ``data_wait_share`` and ``validation_ms`` (median per validation volume).
    """
    from pytorch_lightning.profilers import SimpleProfiler

    from lesionres.module import LesionSegmenter

    spacing, shape, base, depth = study_setup(quick)
    epochs = max(2, epochs)
    model = LesionSegmenter(
        base_channels=base, depth=depth, norm="instance", loss="bce", lr=1e-3,
        compile=compile, channels_last=channels_last,
    )
    timer = data_wait_timer(device)
    profiler = SimpleProfiler(dirpath=folder, filename="profile")
    trainer = make_trainer(
        device, precision, folder, max_epochs=epochs, num_sanity_val_steps=0,
        callbacks=[timer], profiler=profiler,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    fit_s = time.perf_counter() - start
    fetches = profiler.recorded_durations.get("[_TrainingEpochLoop].train_dataloader_next", [])

    steady = [e for e in sorted(timer.computes) if e >= 1]
    waits = [w for e in steady for w in timer.waits[e]]
    computes = [c for e in steady for c in timer.computes[e]]
    starts = [timer.epoch_start_waits[e] for e in steady if e in timer.epoch_start_waits]
    share = sum(waits) / (sum(waits) + sum(computes))
    share_with_starts = (sum(waits) + sum(starts)) / (sum(waits) + sum(starts) + sum(computes))
    share0 = sum(timer.waits[0]) / max(1e-12, sum(timer.waits[0]) + sum(timer.computes[0][1:]))
    grid = (1, 1, *shape)
    common = {
        "subjects_train": len(datamodule.records["train"]),
        "epochs": epochs,
        "workers": datamodule.hparams.num_workers,
        "precision": precision,
        "unet": f"base {base}, depth {depth}, instance norm",
        "spacing_mm": spacing,
        "compile": compile,
        "channels_last": channels_last,
    }
    emit("fit_wall", fit_s, "s", device=device, shape=grid, steps=trainer.global_step, **common)
    emit(
        "step_compute", _median_ms(computes), "ms", device=device, shape=grid,
        epochs_measured=steady, **common,
    )
    emit(
        "data_wait", _median_ms(waits), "ms", device=device, shape=grid,
        mean_ms=round(1000 * sum(waits) / max(1, len(waits)), 3),
        fetch_ms_median=round(_median_ms(fetches), 3),
        epoch_start_wait_ms=[round(1000 * s, 1) for s in starts], **common,
    )
    emit(
        "data_wait_share", share, "fraction", device=device, shape=grid,
        data_wait_share_with_epoch_starts=round(share_with_starts, 4),
        data_wait_share_epoch0=round(share0, 4), target="< 0.05", meets_target=share < 0.05,
        note="epochs >= 1 (cache hits); epoch 0 fills the cache", **common,
    )
    val_ms = _median_ms(timer.validation)
    emit(
        "validation_volume", val_ms, "ms", device=device, shape=grid,
        volumes=len(timer.validation), **common,
    )
    return {
        "model": model,
        "step_ms": _median_ms(computes),
        "data_wait_share": share,
        "validation_ms": val_ms,
    }


def project_study(
    device: torch.device,
    step_ms: float,
    data_wait_share: float,
    validation_ms: float,
    basis: str,
    full: bool,
    **extra: object,
) -> float:
    """Print the projected time of the study (``projected_study`` and ``..._with_validation``).

    Args:
        device: Where the inputs were measured.
        step_ms: One full-volume training step (ms).
        data_wait_share: Share of the training loop spent waiting for data.
        validation_ms: One validation volume (ms).
        basis: Where ``step_ms`` comes from (written in the lines).
        full: ``step_ms`` is a step on the study's 208x240x192 volume (else ``meets_target``
            is ``null``: a small volume's step says nothing about the study).
        **extra: Further fields of both lines.

    Returns:
        Minutes of training, validation excluded.
    """
    train_min = STUDY_STEPS * step_ms / (1 - min(data_wait_share, 0.99)) / 60000
    shape = (1, 1, *STUDY_SHAPE) if full else None
    emit(
        "projected_study", train_min, "min", device=device, shape=shape,
        step_ms=round(step_ms, 3), data_wait_share=round(data_wait_share, 4), basis=basis,
        steps=STUDY_STEPS, target="< 30 min on one H100/H200",
        meets_target=train_min < 30 if full else None, **extra,
    )
    emit(
        "projected_study_with_validation", train_min + STUDY_VAL_VOLUMES * validation_ms / 60000,
        "min", device=device, shape=shape, validation_ms=round(validation_ms, 3),
        validation_volumes=STUDY_VAL_VOLUMES, basis=basis, steps=STUDY_STEPS,
        target="< 30 min on one H100/H200",
        meets_target=(train_min + STUDY_VAL_VOLUMES * validation_ms / 60000) < 30 if full else None,
        **extra,
    )
    return train_min


def run_test(
    device: torch.device,
    datamodule,
    model,
    folder: Path,
    precision: str,
    quick: bool,
    **extra: object,
) -> float:
    """``Trainer.test`` over the test split under every condition, all metrics; print the
    throughput (``test_throughput``, scans x conditions per minute) and the projected time of
    the study's 155 scans x 4 conditions (``projected_test_155x4``, target < 2 min).

    Args:
        device: Where to run the model.
        datamodule: From :func:`make_datamodule` with ``condition_preset="study"``.
        model: A ``LesionSegmenter`` (trained or not: the time does not depend on it much,
            though an empty prediction skips the distance metrics).
        folder: Scratch folder (``results.csv``).
        precision: Lightning precision.
        quick: The small setup of :func:`study_setup` (no target verdict then).
        **extra: Further fields of both lines.

    Returns:
        Scans x conditions per minute.
    """
    from lesionres.results import ResultsWriter, read_rows

    results = folder / "results.csv"
    results.unlink(missing_ok=True)
    trainer = make_trainer(device, precision, folder, callbacks=[ResultsWriter(str(results))])
    start = time.perf_counter()
    trainer.test(model, datamodule=datamodule, verbose=False)
    seconds = time.perf_counter() - start
    rows = read_rows(results)
    failed = sum(1 for row in rows if row.get("error"))
    per_minute = 60 * len(rows) / seconds
    _, shape, _, _ = study_setup(quick)
    common = {
        "rows": len(rows),
        "failed_rows": failed,
        "scans": len(datamodule.records["test"]),
        "conditions": [c.name for c in datamodule.conditions],
        "precision": precision,
        "workers": datamodule.hparams.num_workers,
        "seconds": round(seconds, 3),
        "spacing_mm": datamodule.hparams.synthetic_spacing,
        **extra,
    }
    emit(
        "test_throughput", per_minute, "scans x conditions/min", device=device,
        shape=(1, 1, *shape), note="all metrics, predictions scored on the native grid",
        **common,
    )
    minutes = STUDY_TEST_ROWS / per_minute
    emit(
        "projected_test_155x4", minutes, "min", device=device, shape=(1, 1, *shape),
        target="< 2 min on one GPU box", meets_target=minutes < 2 if shape == STUDY_SHAPE else None,
        **common,
    )
    return per_minute


def default_precision(device: torch.device) -> str:
    """The study's ``bf16-mixed`` on a GPU; ``32-true`` on a CPU (bf16 is slow there)."""
    return "bf16-mixed" if device.type == "cuda" else "32-true"


def main(argv: list[str] | None = None) -> int:
    """Generate data, fit (and ``--test``), print JSON lines; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--quick", action="store_true", help="4 mm volumes, small U-Net, 3 epochs")
    parser.add_argument(
        "--subjects", type=int, default=None, help="synthetic subjects (quick 10, else 24)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (quick 3, else 4)")
    parser.add_argument(
        "--workers", type=int, default=None, help="loader workers (default: cores - 1, at most 8)"
    )
    parser.add_argument(
        "--precision", default=None, help="Lightning precision (cuda bf16-mixed, cpu 32-true)"
    )
    parser.add_argument(
        "--step-ms", type=float, default=None, help="full-volume step (ms) for the projection"
    )
    parser.add_argument("--compile", action="store_true", help="LesionSegmenter(compile=True)")
    parser.add_argument(
        "--channels-last", action="store_true", help="LesionSegmenter(channels_last=True)"
    )
    parser.add_argument(
        "--test", action="store_true",
        help="also time `test` of the fitted model on the test split under the study's 4 "
        "conditions, all metrics (test_throughput, projected_test_155x4)",
    )
    parser.add_argument(
        "--data", default=None,
        help="keep the synthetic dataset in this folder (generated on first use with this run's "
        "--subjects and spacing, reused as is afterwards)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args, device = parse_device_args(parser, argv)
    workers = args.workers
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    precision = args.precision or default_precision(device)
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        root = Path(args.data).expanduser() if args.data else Path(tmp) / "synthetic"
        datamodule = make_datamodule(
            root, Path(tmp) / "cache", quick=args.quick,
            subjects=args.subjects or (10 if args.quick else 24), workers=workers,
            seed=args.seed, condition_preset="study" if args.test else "none",
        )
        prepare(datamodule, device)
        fit = run_fit(
            device, datamodule, Path(tmp), quick=args.quick,
            epochs=args.epochs or (3 if args.quick else 4), precision=precision,
            compile=args.compile, channels_last=args.channels_last,
        )
        if args.test:
            run_test(device, datamodule, fit["model"], Path(tmp), precision, args.quick)
    if args.step_ms:
        step_ms, basis = args.step_ms, "--step-ms"
    elif args.quick:
        step_ms, basis = fit["step_ms"], "quick fit's own step (not the study's volume)"
    else:
        step_ms, basis = fit["step_ms"], "this fit's median step at the study's 208x240x192"
    project_study(
        device, step_ms, fit["data_wait_share"], fit["validation_ms"],
        basis=basis + ("; validation from the quick fit (small volumes)" if args.quick else ""),
        full=bool(args.step_ms) or not args.quick,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
