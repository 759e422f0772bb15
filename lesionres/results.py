"""The per-scan results table: one row per (scan, condition), written as each scan finishes.

``results.csv`` is appended to and flushed row by row, so an interrupted ``test`` loses at most
the scan in flight; a rerun skips the (scan, condition) rows already written. At the end of a
run the table is de-duplicated (DDP pads its last batches with repeated scans), sorted and
rewritten atomically, and a per-condition summary is printed and logged to TensorBoard.

Beside the table, ``results.json`` records how its numbers were made: the metric conventions
that hold for every row (surface definition, HD95 aggregation, lesion connectivity, the
both-empty convention, the lesionres version) and, per model, the threshold and the
checkpoint's sha256. A later ``test`` or ``score`` into the same table with other settings
stops with one line naming the setting instead of mixing rows made two ways.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger

from lesionres import __version__
from lesionres.data.io import save_volume
from lesionres.errors import LesionresError
from lesionres.files import write_csv, write_json
from lesionres.metrics import METRIC_COLUMNS, METRIC_REGISTRY, SUMMARY_METRICS, SURFACE_DEFINITION

__all__ = [
    "RESULT_COLUMNS",
    "ResultsWriter",
    "file_sha256",
    "read_rows",
    "record_settings",
    "settings_path",
    "write_rows",
]

RESULT_COLUMNS = (
    "subject_id",
    "dataset",
    "cohort",
    "modality",
    "space",
    "condition",
    "method",
    "factor",
    "spacing_mm",
    "effective_fwhm_mm",  # measured resolution per axis (thin-plane phantom), e.g. 1.0x1.0x5.0
    "model",
    "threshold",
    *METRIC_COLUMNS,
    # the scan's files, so the analysis finds them (overlays) without guessing from names
    "image_path",
    "mask_path",
    # registration to MNI (--data.register mni, external cohorts): lesionres.registration
    "registration_ncc",
    "registration_brain_overlap",
    "error",
)
_SHORT = {m: METRIC_REGISTRY[m].short or m for m in SUMMARY_METRICS}


def read_rows(path: Path) -> list[dict]:
    """Rows of a results CSV; a last line cut off by a crash is dropped."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row for row in rows if row.get("error") is not None]


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` to ``path`` atomically, under the results header."""
    write_csv(path, rows, RESULT_COLUMNS)


def settings_path(table: Path) -> Path:
    """The settings sidecar of a results table: ``results.csv`` -> ``results.json``."""
    return Path(table).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (e.g. the checkpoint a table was made with)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_settings(
    table: Path,
    model: str,
    *,
    connectivity: int,
    empty_convention: str,
    hd95: str,
    threshold: float,
    checkpoint_sha256: str = "",
    write: bool = True,
) -> dict:
    """Check this run's settings against those the table was made with, then record them.

    The conventions (surface, HD95 aggregation, connectivity, both-empty value, lesionres
    version) must be the same for every row of a table, or its rows are not comparable; the
    threshold and checkpoint must be the same for every row of one model.

    Args:
        table: The results CSV (the sidecar is :func:`settings_path` of it).
        model: The ``model`` column value of the rows this run writes.
        connectivity: Lesion connectivity (6, 18, 26).
        empty_convention: ``one`` or ``nan``.
        hd95: HD95 aggregation, ``pooled`` or ``max``.
        threshold: Probability threshold (1 for masks scored as they are).
        checkpoint_sha256: sha256 of the checkpoint, ``""`` for another tool's masks.
        write: Write the sidecar (rank 0 only under DDP; every rank checks).

    Returns:
        The whole sidecar as written.

    Raises:
        LesionresError: a setting differs from the one the table's rows were made with, or the
            table has rows but no sidecar (written by lesionres < 0.2, another surface).
    """
    sidecar = settings_path(table)
    conventions = {
        "surface": SURFACE_DEFINITION,
        "hd95": hd95,
        "connectivity": int(connectivity),
        "empty_convention": empty_convention,
        "lesionres_version": __version__,
    }
    mine = {"threshold": float(threshold), "checkpoint_sha256": checkpoint_sha256}
    rows = read_rows(Path(table))
    if sidecar.exists():
        try:
            settings = json.loads(sidecar.read_text())
        except (OSError, ValueError) as error:
            raise LesionresError(f"{sidecar}: unreadable settings ({error})") from None
    elif rows:
        raise LesionresError(
            f"{table}: {len(rows)} rows but no {sidecar.name}: written by lesionres < 0.2, whose "
            "surface distances differ; write to a new table"
        )
    else:
        settings = {}
    models = settings.setdefault("models", {})
    has_rows = {r.get("model", "") for r in rows}
    checks = [(k, settings.get("conventions", {}).get(k), v) for k, v in conventions.items()]
    if model in models and model in has_rows:
        checks += [(k, models[model].get(k), v) for k, v in mine.items()]
    for key, before, now in checks:
        if rows and before is not None and before != now:
            label = f" of model '{model}'" if key in mine and model else ""
            raise LesionresError(
                f"{table}: its rows were made with {key}{label} = {before!r}, this run uses "
                f"{now!r}; use the same setting or write to a new table"
            )
    settings["conventions"] = conventions
    models[model] = mine
    if write:
        write_json(sidecar, settings)
    return settings


def _format(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return "" if value is None else str(value)


class ResultsWriter(pl.Callback):
    """Writes ``results.csv`` during ``test`` (and optionally the predicted masks).

    Args:
        path: The results table; default ``<run folder>/results.csv``. Point a rerun at the
            same file to resume: rows already there are skipped.
        save_predictions: Also write each prediction as NIfTI on the mask's grid, named
            ``<condition>/<subject>_desc-lesion_mask.nii.gz`` beside the table.
        save_probabilities: Also write ``..._desc-lesion_probseg.nii.gz``.
        model: Name written in the ``model`` column, so several models' rows can share one
            table (``analyze`` then compares them per condition). Rows of other models in the
            table are kept and never count as done for this one.
    """

    def __init__(
        self,
        path: str | None = None,
        save_predictions: bool = False,
        save_probabilities: bool = False,
        model: str = "",
    ) -> None:
        self.path = Path(path) if path else None
        self.model = model
        self.save_predictions = save_predictions
        self.save_probabilities = save_probabilities
        self._handle = None
        self._writer = None

    @property
    def _rank_path(self) -> Path:
        return (
            self._target if self._world == 1 else self._target.with_suffix(f".rank{self._rank}.csv")
        )

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._target = self.path or Path(trainer.log_dir or ".") / "results.csv"
        self._world, self._rank = trainer.world_size, trainer.global_rank
        hparams = pl_module.hparams
        ckpt = trainer.ckpt_path
        record_settings(
            self._target,
            self.model,
            connectivity=hparams.connectivity,
            empty_convention=hparams.empty_convention,
            hd95=hparams.hd95,
            threshold=hparams.threshold,
            checkpoint_sha256=file_sha256(ckpt) if ckpt and Path(ckpt).is_file() else "",
            write=trainer.is_global_zero,
        )
        table = read_rows(self._target)
        done = [r for r in table + read_rows(self._rank_path) if r.get("model", "") == self.model]
        pl_module.completed = {(r["subject_id"], r["condition"]) for r in done}
        if self._world == 1 and table:
            write_rows(self._target, table)  # drop a half-written last line before appending
        self._target.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self._rank_path.exists()
        self._handle = self._rank_path.open("a", newline="")
        self._writer = csv.DictWriter(
            self._handle, fieldnames=RESULT_COLUMNS, extrasaction="ignore"
        )
        if fresh:
            self._writer.writeheader()
        if done and trainer.is_global_zero:
            print(f"Resuming {self._target}: {len(done)} rows already written are skipped.")

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not outputs:
            return
        row = {**outputs["row"], **_scan_paths(batch), "model": self.model}
        if "prediction" in outputs and (self.save_predictions or self.save_probabilities):
            folder = self._target.parent / "predictions" / row["condition"]
            affine = outputs["item"]["affine"]
            stem = row["subject_id"]
            if self.save_predictions:
                save_volume(
                    folder / f"{stem}_desc-lesion_mask.nii.gz", outputs["prediction"], affine
                )
            if self.save_probabilities:
                save_volume(
                    folder / f"{stem}_desc-lesion_probseg.nii.gz", outputs["probability"], affine
                )
            if "registration" in outputs["item"]:  # beside the mask, for checking by eye
                outputs["item"]["registration"].save(
                    folder / f"{stem}_from-MNI152NLin2009aSym_to-scan_xfm.tfm"
                )
        self._writer.writerow({k: _format(v) for k, v in row.items()})
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._handle.close()
        trainer.strategy.barrier()
        if not trainer.is_global_zero:
            return
        rows = read_rows(self._target)
        parts = sorted(self._target.parent.glob(self._target.stem + ".rank*.csv"))
        for part in parts:
            rows += read_rows(part)
        order = {name: i for i, name in enumerate(getattr(trainer.datamodule, "test_names", []))}
        # DDP pads its last batches with repeated scans: one row per (model, scan, condition)
        unique = {(r.get("model", ""), r["subject_id"], r["condition"]): r for r in rows}
        rows = sorted(
            unique.values(),
            key=lambda r: (
                r.get("model", ""),
                order.get(r["condition"], len(order)),
                r["condition"],
                r["subject_id"],
            ),
        )
        write_rows(self._target, rows)
        for part in parts:
            part.unlink()
        self._report(trainer, [r for r in rows if r.get("model", "") == self.model])

    def _report(self, trainer: pl.Trainer, rows: list[dict]) -> None:
        import pandas as pd  # the analysis side summarises: one summary for test and analyze

        from lesionres.analysis.describe import coverage_notes, summarize

        summary = summarize(pd.DataFrame(rows), SUMMARY_METRICS) if rows else pd.DataFrame()
        conditions = list(dict.fromkeys(summary["condition"])) if len(summary) else []
        width = max([len("condition"), *(len(c) for c in conditions)]) + 2
        print(
            f"\nResults: {self._target} ({len(rows)} rows"
            f"{f', model {self.model}' if self.model else ''})"
        )
        print(
            f"{'condition':<{width}}{'n':>4}{'fail':>5}"
            + "".join(f"{_SHORT[m]:>15}" for m in SUMMARY_METRICS)
        )
        for condition in conditions:
            cells = summary[summary["condition"] == condition].set_index("metric")
            first = cells.iloc[0]
            scored = int(first["n"] + first["n_missing"])
            text = ""
            for metric in SUMMARY_METRICS:
                mean, sd = cells.loc[metric, "mean"], cells.loc[metric, "std"]
                sd = 0.0 if cells.loc[metric, "n"] == 1 else sd  # one scan: no spread
                text += f"{f'{mean:.3f}±{sd:.3f}':>15}"
            print(f"{condition:<{width}}{scored:>4}{int(first['n_failed']):>5}{text}")
        print(
            "cells: mean±sd over the scans where the metric is defined (medians: `analyze`); "
            "failed rows carry their error in the table"
        )
        # a mean over fewer scans (HD95 of an empty prediction) says so, and why
        for line in coverage_notes(summary, _SHORT) if len(summary) else []:
            print(f"  {line}")
        logger = trainer.logger
        if isinstance(logger, TensorBoardLogger):
            for r in summary.itertuples(index=False):
                if math.isfinite(r.mean):
                    logger.experiment.add_scalar(f"test/{r.condition}/{r.metric}_mean", r.mean, 0)
            logger.experiment.flush()


def _scan_paths(item: dict) -> dict:
    """The image and mask files of a test item's scan (empty for another tool's masks)."""
    record = item.get("record") if isinstance(item, dict) else None
    image, mask = getattr(record, "image", None), getattr(record, "mask", None)
    return {"image_path": str(image) if image else "", "mask_path": str(mask) if mask else ""}
