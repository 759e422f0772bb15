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

Run: ``python benchmarks/bench_fit.py [--quick] [--device cpu|cuda] [--workers N]
[--subjects N] [--epochs N] [--step-ms MS]``.
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

STUDY_STEPS = 50 * 400
STUDY_VAL_VOLUMES = 50 * 100


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


def main(argv: list[str] | None = None) -> int:
    """Generate data, fit, print JSON lines; returns the exit status."""
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
        "--data", default=None,
        help="keep the synthetic dataset in this folder (generated on first use with this run's "
        "--subjects and spacing, reused as is afterwards)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args, device = parse_device_args(parser, argv)
    quick = args.quick
    subjects = args.subjects or (10 if quick else 24)
    epochs = max(2, args.epochs or (3 if quick else 4))
    workers = args.workers
    if workers is None:
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    precision = args.precision or ("bf16-mixed" if device.type == "cuda" else "32-true")
    # spacing (mm), model grid, U-Net base channels and depth
    if quick:
        spacing, shape, base, depth = 4.0, (56, 64, 48), 8, 3
    else:
        spacing, shape, base, depth = 1.0, (208, 240, 192), 16, 4

    import pytorch_lightning as pl
    from pytorch_lightning.profilers import SimpleProfiler

    from lesionres.data.datamodule import LesionDataModule
    from lesionres.module import LesionSegmenter

    warnings.filterwarnings("ignore", category=UserWarning)  # few workers, small val set, ...
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        root = Path(args.data).expanduser() if args.data else Path(tmp) / "synthetic"
        datamodule = LesionDataModule(
            dataset="synthetic",
            root=str(root),
            seed=args.seed,
            val_fraction=0.2,
            test_fraction=0.1,
            target_shape=shape,
            batch_size=1,
            num_workers=workers,
            cache_dir=str(Path(tmp) / "cache"),
            condition_preset="none",
            synthetic_subjects=subjects,
            synthetic_isles_subjects=0,
            synthetic_spacing=spacing,
        )
        start = time.perf_counter()
        datamodule.prepare_data()
        generate_s = time.perf_counter() - start
        model = LesionSegmenter(
            base_channels=base, depth=depth, norm="instance", loss="bce", lr=1e-3,
            compile=args.compile, channels_last=args.channels_last,
        )
        timer = data_wait_timer(device)
        profiler = SimpleProfiler(dirpath=tmp, filename="profile")
        trainer = pl.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            precision=precision,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            benchmark=device.type == "cuda",
            callbacks=[timer],
            profiler=profiler,
            default_root_dir=tmp,
        )
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        fit_s = time.perf_counter() - start
        fetches = profiler.recorded_durations.get("[_TrainingEpochLoop].train_dataloader_next", [])
    train_subjects = len(datamodule.records["train"])

    steady = [e for e in sorted(timer.computes) if e >= 1]
    waits = [w for e in steady for w in timer.waits[e]]
    computes = [c for e in steady for c in timer.computes[e]]
    starts = [timer.epoch_start_waits[e] for e in steady if e in timer.epoch_start_waits]
    share = sum(waits) / (sum(waits) + sum(computes))
    share_with_starts = (sum(waits) + sum(starts)) / (sum(waits) + sum(starts) + sum(computes))
    share0 = sum(timer.waits[0]) / max(1e-12, sum(timer.waits[0]) + sum(timer.computes[0][1:]))
    grid = (1, 1, *shape)
    common = {
        "subjects_train": train_subjects,
        "epochs": epochs,
        "workers": workers,
        "precision": precision,
        "unet": f"base {base}, depth {depth}, instance norm",
        "spacing_mm": spacing,
        "compile": args.compile,
        "channels_last": args.channels_last,
    }
    emit(
        "synthetic_data", generate_s, "s", device=device, shape=None, subjects=subjects,
        note="setup: generating the synthetic dataset (not part of the fit)",
    )
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

    if args.step_ms:
        step_ms, basis = args.step_ms, "--step-ms"
    elif quick:
        step_ms, basis = _median_ms(computes), "quick fit's own step (not the study's volume)"
    else:
        step_ms, basis = _median_ms(computes), "this fit's median step at the study's 208x240x192"
    train_min = STUDY_STEPS * step_ms / (1 - min(share, 0.99)) / 60000
    full = bool(args.step_ms) or not quick
    basis_shape = (1, 1, 208, 240, 192) if full else grid
    emit(
        "projected_study", train_min, "min", device=device, shape=basis_shape,
        step_ms=round(step_ms, 3), data_wait_share=round(share, 4), basis=basis,
        steps=STUDY_STEPS, target="< 30 min on one H100/H200",
        meets_target=train_min < 30 if full else None,
    )
    emit(
        "projected_study_with_validation", train_min + STUDY_VAL_VOLUMES * val_ms / 60000, "min",
        device=device, shape=basis_shape, validation_ms=round(val_ms, 3),
        validation_volumes=STUDY_VAL_VOLUMES,
        basis=f"{basis}; validation time from this fit"
        + (" (quick: small volumes)" if quick else ""),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
