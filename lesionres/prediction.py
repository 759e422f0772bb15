"""``predict``: lesion masks for any scans (NIfTI, ``.mha``, ``.mhd``, ``.nrrd``), written back on
each scan's own grid.

The road is the test road without a ground truth::

    scan on disk ──> z-score ──> GridMapping onto the checkpoint's model grid ──> U-Net
        ──> probabilities ──> GridMapping.to_native ──> threshold ──> mask (scan's affine)

With ``--data.register mni`` a :class:`~lesionres.registration.RegisteredMapping` (an affine
registration to the MNI152 2009a template) takes GridMapping's place both ways, and the
transform (``.tfm``) and the registration's quality figures join the scan's outputs.

The scans come from :func:`lesionres.data.scans.find_scans`, prepared for the model by
:class:`~lesionres.data.scans.ScanDataset`. :class:`MaskWriter` writes
``<scan>_desc-lesion_mask.nii.gz`` (uint8) and optionally ``<scan>_desc-lesion_probseg.nii.gz``
(float32) with the scan's own affine, in a folder mirroring the input layout, and a
``predictions.csv`` row per scan, flushed as each scan finishes. A scan that fails (unreadable
file...) gets a row with its error; the run goes on.

Warnings (:func:`scan_warnings`, column ``warnings``, ``;``-joined) are cheap geometric checks,
not a guarantee the input suits the model:

- ``spacing``: voxel size differs from the model grid's by more than 1.5x on an axis (RAS
  order), e.g. a 1x1x5 mm clinical scan for a 1 mm model;
- ``field of view``: extent (shape x spacing) differs from the model grid's by more than 30%
  on an axis; ``cropped`` when over 10% of the scan's extent on an axis lies outside the model
  grid (voxels there get no prediction, i.e. 0);
- ``not in MNI space``: only for a model trained on MNI-registered data (the checkpoint's data
  module was ``atlas`` or ``synthetic``): the scan's field-of-view centre lies more than 20 mm
  from the MNI152 (ATLAS) centre (0, -18, 22) or its voxel axes are rotated more than 15
  degrees from the world axes;
- ``non-finite``: NaN/inf voxels (set to 0 before the z-score);
- ``empty prediction``: no voxel reached the threshold;
- ``registration to MNI doubtful`` (``--data.register mni``): the registration's quality
  figures fell below their thresholds (:meth:`~lesionres.registration.Registration.warnings`).
  A registered scan is checked for its spacing only: field of view, cropping and MNI position
  are the registration's business.

Modality and intensity shifts (e.g. a FLAIR scan for a T1w model) are not detected.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter
from scipy import ndimage

from lesionres.data.grid import ModelGrid, spacing_of
from lesionres.data.io import save_volume
from lesionres.data.layouts import MNI_DATASETS
from lesionres.data.scans import ScanEntry
from lesionres.errors import LesionresError
from lesionres.files import write_csv
from lesionres.registration import REGISTRATION_COLUMNS, mni_grid_affine, save_overlay

__all__ = [
    "MNI_CENTRE",
    "MNI_DATASETS",
    "PREDICTION_COLUMNS",
    "MaskWriter",
    "near_mni",
    "scan_warnings",
]

SPACING_FACTOR = 1.5
FOV_TOLERANCE = 0.3
CROP_TOLERANCE = 0.1
MNI_CENTRE = (0.0, -18.0, 22.0)  # centre of the ATLAS / MNI152 2009a 197x233x189 1 mm grid
MNI_CENTRE_TOLERANCE_MM = 20.0
MNI_MAX_ANGLE_DEG = 15.0
PREDICTION_COLUMNS = (
    "input",
    "output",
    "probabilities",
    "volume_ml",
    "n_lesions",
    "spacing_mm",
    "shape",
    "orientation",
    *REGISTRATION_COLUMNS,  # empty unless --data.register mni
    "warnings",
    "error",
)


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{float(v):.3g}" for v in values)


def near_mni(shape: Sequence[int], affine: np.ndarray) -> tuple[bool, str]:
    """Whether a scan looks MNI-registered (heuristic), and why not.

    Near: the world centre of its field of view lies within 20 mm of the MNI152 (ATLAS) centre
    and every voxel axis is within 15 degrees of a world axis (any flip or permutation).
    """
    affine = np.asarray(affine, dtype=float)
    centre = affine[:3, :3] @ ((np.asarray(shape, dtype=float) - 1) / 2) + affine[:3, 3]
    distance = float(np.linalg.norm(centre - np.array(MNI_CENTRE)))
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    angle = float(np.degrees(np.arccos(np.clip(np.abs(directions).max(axis=0), -1, 1))).max())
    if distance > MNI_CENTRE_TOLERANCE_MM:
        return False, f"field-of-view centre {distance:.0f} mm from MNI's"
    if angle > MNI_MAX_ANGLE_DEG:
        return False, f"axes rotated {angle:.0f} degrees from MNI's"
    return True, ""


def scan_warnings(
    shape: Sequence[int],
    affine: np.ndarray,
    grid: ModelGrid,
    mni_model: bool = False,
    registered: bool = False,
) -> list[str]:
    """Cheap checks of a scan against the model grid (see the module docstring).

    A scan ``registered`` to MNI is only checked for its spacing: the registration decides
    where it lies on the model grid (its own checks are :meth:`Registration.warnings`).
    """
    warnings = []
    to_ras = np.argsort(nib.orientations.io_orientation(affine)[:, 0])
    spacing = np.array(spacing_of(affine))[to_ras]
    fov = np.asarray(shape, dtype=float)[to_ras] * spacing
    model_spacing = np.asarray(grid.spacing, dtype=float)
    model_fov = np.asarray(grid.shape) * model_spacing
    if np.maximum(spacing / model_spacing, model_spacing / spacing).max() > SPACING_FACTOR:
        warnings.append(
            f"spacing {_fmt(spacing)} mm (RAS) is far from the model's {_fmt(model_spacing)} mm "
            f"(over {SPACING_FACTOR:g}x on an axis)"
        )
    if registered:
        return warnings
    if (np.abs(fov - model_fov) / model_fov).max() > FOV_TOLERANCE:
        warnings.append(
            f"field of view {_fmt(fov)} mm (RAS) differs from the model grid's "
            f"{_fmt(model_fov)} mm by over {FOV_TOLERANCE:.0%} on an axis"
        )
    cut = np.maximum(fov - model_fov, 0)
    cropped = [
        f"{'RAS'[axis]} {cut[axis]:.0f} mm"
        for axis in range(3)
        if cut[axis] > CROP_TOLERANCE * fov[axis]
    ]
    if cropped:
        warnings.append(
            f"cropped to the model grid ({', '.join(cropped)}): voxels outside it are predicted 0"
        )
    if mni_model:
        near, why = near_mni(shape, affine)
        if not near:
            warnings.append(
                f"not in MNI space ({why}) but the model was trained on MNI-registered scans "
                "(--data.register mni registers them)"
            )
    return warnings


# ------------------------------------------------------------------------------- writer
class MaskWriter(BasePredictionWriter):
    """Writes each scan's lesion mask on its own grid, and ``predictions.csv``, during ``predict``.

    Outputs mirror the input layout: ``<out_dir>/<path under root>/<scan>_desc-lesion_mask.nii.gz``
    (uint8, 0/1, the scan's affine; written atomically). ``predictions.csv`` has one row per
    scan (columns :data:`PREDICTION_COLUMNS`), flushed as each scan finishes. After writing, a
    step's output is replaced by its row, so memory stays flat however many scans there are and
    ``trainer.predict`` returns the rows.

    A registered scan (``--data.register mni``) also gets its transform,
    ``<scan>_from-MNI152NLin2009aSym_to-scan_xfm.tfm`` (ITK: template points to scan points),
    and its quality figures in the row.

    Args:
        out_dir: Output folder; default ``<run log dir>/predictions``.
        save_probabilities: Also write ``<scan>_desc-lesion_probseg.nii.gz`` (float32).
        save_overlays: Also write what the model saw: ``<scan>_desc-registered_overlay.png``
            (the scan on the model grid, template brain outlined in red) and
            ``<scan>_space-MNI152NLin2009aSym_desc-registered.nii.gz`` (that image, z-scored,
            to open over the MNI152 2009a template).
    """

    def __init__(
        self,
        out_dir: str | None = None,
        save_probabilities: bool = False,
        save_overlays: bool = False,
    ) -> None:
        super().__init__("batch")
        self.out_dir = Path(out_dir).expanduser() if out_dir else None
        self.save_probabilities = save_probabilities
        self.save_overlays = save_overlays
        self.training_dataset: str | None = None
        self._handle = None
        self._writer = None
        self._folder: Path | None = None
        self._counts = {"scans": 0, "failed": 0, "warned": 0}

    @property
    def folder(self) -> Path:
        """The output folder of the current (or last) run."""
        if self._folder is None:
            raise LesionresError("MaskWriter: the output folder is known once predict starts")
        return self._folder

    @property
    def table(self) -> Path:
        return self.folder / "predictions.csv"

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        """Remember which kind of data the model was trained on (for the MNI check)."""
        self.training_dataset = checkpoint.get("datamodule_hyper_parameters", {}).get("dataset")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._folder = self.out_dir or Path(trainer.log_dir or ".") / "predictions"
        self._folder.mkdir(parents=True, exist_ok=True)
        self._counts = {"scans": 0, "failed": 0, "warned": 0}
        path = self.table if trainer.world_size == 1 else self._rank_table(trainer.global_rank)
        self._handle = path.open("w", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=PREDICTION_COLUMNS)
        self._writer.writeheader()

    def _rank_table(self, rank: int) -> Path:
        return self.folder / f"predictions.rank{rank}.csv"

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ) -> None:
        item = prediction["item"]
        entry: ScanEntry = item["entry"]
        row = {key: "" for key in PREDICTION_COLUMNS}
        row["input"] = str(entry.path)
        warnings = list(item.get("warnings", []))
        try:
            if "error" in item:
                raise _ScanFailed(item["error"])
            affine, shape = item["affine"], item["shape"]
            row.update(
                spacing_mm=_fmt(spacing_of(affine)),
                shape="x".join(str(n) for n in shape),
                orientation="".join(nib.aff2axcodes(affine)),
            )
            grid = trainer.datamodule.grid  # the checkpoint's (the data module restores it)
            mni_model = self.training_dataset in MNI_DATASETS
            registered = "registration" in item
            warnings += scan_warnings(shape, affine, grid, mni_model, registered)
            probability = np.asarray(prediction["probability"], dtype=np.float32)
            threshold = float(pl_module.hparams.threshold)
            mask = probability >= threshold
            mask_file = self.folder / entry.output("mask")
            row["output"] = str(save_volume(mask_file, mask.astype(np.uint8), affine))
            if self.save_probabilities:
                row["probabilities"] = str(
                    save_volume(self.folder / entry.output("probseg"), probability, affine)
                )
            self._write_registration(row, item, grid)
            _, n_lesions = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
            voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
            row.update(volume_ml=f"{mask.sum() * voxel_ml:.4f}", n_lesions=str(n_lesions))
            if n_lesions == 0:
                warnings.append(f"empty prediction (no voxel reached threshold {threshold:g})")
        except Exception as error:  # noqa: BLE001 - one bad scan must not stop the run
            failed = isinstance(error, _ScanFailed)
            row["error"] = str(error) if failed else f"{type(error).__name__}: {error}"
        row["warnings"] = "; ".join(warnings)
        self._writer.writerow(row)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._counts["scans"] += 1
        self._counts["failed"] += bool(row["error"])
        self._counts["warned"] += bool(row["warnings"])
        prediction.clear()  # drop the volumes the predict loop would otherwise keep
        prediction.update(row)

    def _write_registration(self, row: dict, item: dict, grid: ModelGrid) -> None:
        """The transform and quality figures of a registered scan; the overlay if asked."""
        entry: ScanEntry = item["entry"]
        registration = item.get("registration")
        if registration is not None:
            transform = self.folder / entry.sidecar("from-MNI152NLin2009aSym_to-scan_xfm.tfm")
            row.update(transform=str(registration.save(transform)), **registration.row())
        if self.save_overlays:
            image = item["image"][0].detach().cpu().numpy()
            save_overlay(self.folder / entry.sidecar("desc-registered_overlay.png"), image, grid)
            if registration is not None:
                name = "space-MNI152NLin2009aSym_desc-registered.nii.gz"
                save_volume(self.folder / entry.sidecar(name), image, mni_grid_affine(grid))

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()
        if trainer.world_size > 1:
            trainer.strategy.barrier()
            if not trainer.is_global_zero:
                return
            rows = []
            parts = [self._rank_table(rank) for rank in range(trainer.world_size)]
            for part in parts:
                with part.open(newline="") as handle:
                    rows += list(csv.DictReader(handle))
            rows = sorted({row["input"]: row for row in rows}.values(), key=lambda r: r["input"])
            _write_table(self.table, rows)
            for part in parts:
                part.unlink()
            self._counts = {
                "scans": len(rows),
                "failed": sum(bool(r["error"]) for r in rows),
                "warned": sum(bool(r["warnings"]) for r in rows),
            }
        counts = self._counts
        print(
            f"\nPredictions: {counts['scans']} scans ({counts['failed']} failed, "
            f"{counts['warned']} with warnings) -> {self.table}"
        )

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = self._writer = None


class _ScanFailed(Exception):
    """A scan's preparation error, carried to its row unchanged."""


def _write_table(path: Path, rows: list[dict]) -> None:
    write_csv(path, rows, PREDICTION_COLUMNS)
