"""``python -m lesionres degrade ROOT``: every scan under every test condition, as NIfTI.

Writes the exact images ``test`` feeds the model (the same :func:`lesionres.conditions.
degrade_image`), so any other tool (nnU-Net, MONAI, a radiologist in ITK-SNAP) can be run on
them and scored with ``score`` against the untouched masks:

* ``--grid native`` (default): the degraded image on the scan's own grid, as ``test`` uses it;
* ``--grid acquired``: the simulated acquisition on its own coarse grid, with the affine that
  puts every slice where the acquisition model sampled it.

Layout ``DIR/<condition>/images/<subject_id>.nii.gz`` (``--layout folder``) or
``DIR/<condition>/imagesTs/<subject_id>_0000.nii.gz`` (``--layout nnunet``), and
``DIR/manifest.csv`` with one row per (subject, condition). Masks are not copied: the manifest
names the original. Files are written atomically and existing ones are skipped, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from tqdm import tqdm

from lesionres.conditions import Condition, degrade_image, effective_fwhm_mm, preset_conditions
from lesionres.data.grid import spacing_of
from lesionres.data.io import read_header, save_volume
from lesionres.data.layouts import SubjectRecord, find_subjects
from lesionres.errors import LesionresError
from lesionres.files import write_csv, write_json

if TYPE_CHECKING:
    from lesionres.commands.evaluation import DatasetOptions

__all__ = [
    "MANIFEST_COLUMNS",
    "choose_conditions",
    "degrade_dataset",
    "find_dataset",
    "output_path",
    "parse_conditions",
]

MANIFEST_COLUMNS = (
    "condition", "subject_id", "image", "mask", "method", "factor", "spacing_mm",
    "effective_fwhm_mm",
)  # fmt: skip
Grid = Literal["native", "acquired"]
Layout = Literal["folder", "nnunet"]


def parse_conditions(text: str | list | None, origin: str = "--conditions") -> list[Condition]:
    """Conditions from YAML text (``'[{method: acquisition, spacing: [1, 1, 5]}]'``) or a list.

    Raises:
        LesionresError: Text that is not YAML, not a list of mappings, or a bad condition.
    """
    if isinstance(text, str):
        try:
            text = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise LesionresError(f"{origin}: not YAML ({error.__class__.__name__})") from None
    if isinstance(text, dict):
        text = [text]
    if not isinstance(text, list) or not text or not all(isinstance(c, dict) for c in text):
        raise LesionresError(
            f"{origin}: expected a list of conditions, e.g. "
            "'[{method: acquisition, spacing: [1, 1, 5]}]'"
        )
    conditions = []
    for entry in text:
        entry = entry.get("init_args", entry)  # jsonargparse's class_path form
        try:
            conditions.append(Condition(**{k: v for k, v in entry.items() if k != "class_path"}))
        except TypeError as error:
            raise LesionresError(f"{origin}: {error}") from None
    return conditions


def output_path(out: Path, condition: str, subject_id: str, layout: Layout = "folder") -> Path:
    """Where the degraded image of ``subject_id`` under ``condition`` goes."""
    if layout == "nnunet":
        return out / condition / "imagesTs" / f"{subject_id}_0000.nii.gz"
    return out / condition / "images" / f"{subject_id}.nii.gz"


def _manifest_row(
    record: SubjectRecord, condition: Condition, image: Path, native_spacing: tuple
) -> dict:
    return {
        "condition": condition.name,
        "subject_id": record.subject_id,
        "image": str(image),
        "mask": str(record.mask) if record.mask else "",
        "method": condition.method,
        "factor": condition.factor_label,
        "spacing_mm": condition.test_spacing_label(native_spacing),
        "effective_fwhm_mm": effective_fwhm_mm(condition, native_spacing),
    }


def _check_settings(out: Path, grid: Grid, layout: Layout) -> None:
    """Refuse to resume into a folder written with another grid or layout."""
    settings = {"grid": grid, "layout": layout}
    record = out / "degrade.json"
    if record.exists():
        previous = json.loads(record.read_text())
        if previous != settings:
            raise LesionresError(
                f"{out}: written with {previous}, not {settings}; use another --out folder"
            )
    write_json(record, settings, indent=None)


def degrade_dataset(
    records: list[SubjectRecord],
    conditions: list[Condition],
    out: Path,
    grid: Grid = "native",
    layout: Layout = "folder",
    progress: bool = True,
) -> list[dict]:
    """Write every record under every condition; returns (and writes) the manifest rows.

    Each scan is read once (on its mask's grid, as ``test`` reads it) and degraded under each
    condition whose file is not there yet.
    """
    from lesionres.data.datasets import load_scan  # torch: only when used

    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise LesionresError(f"conditions: two conditions share a name ({names})")
    for condition in conditions:
        condition.transform()  # a condition the transforms refuse: one line, before any work
    _check_settings(out, grid, layout)
    rows = []
    bar = tqdm(total=len(records) * len(conditions), desc="degrade", unit="image",
               disable=not progress)  # fmt: skip
    for record in records:
        paths = {c.name: output_path(out, c.name, record.subject_id, layout) for c in conditions}
        scan = None
        if all(p.exists() for p in paths.values()):
            reference = record.mask or record.image  # the grid `test` scores on
            native = spacing_of(read_header(reference)[1])
        else:
            scan = load_scan(record)
            native = spacing_of(scan[2])
        for condition in conditions:
            path = paths[condition.name]
            if not path.exists():
                assert scan is not None
                image, affine = degrade_image(condition, scan[0], scan[2], grid)
                save_volume(path, image, affine)
            rows.append(_manifest_row(record, condition, path, native))
            bar.update()
    bar.close()
    write_csv(out / "manifest.csv", rows, MANIFEST_COLUMNS)
    return rows


def choose_conditions(args: DatasetOptions, data: dict) -> list[Condition]:
    """``--conditions``, else ``--condition_preset``, else the config's, else ``study``."""
    if args.conditions is not None:
        return parse_conditions(args.conditions)
    if args.condition_preset is not None:
        return preset_conditions(args.condition_preset)
    if data.get("conditions"):
        return parse_conditions(data["conditions"], f"{args.config}: data.conditions")
    return preset_conditions(data.get("condition_preset") or "study")


def find_dataset(
    args: DatasetOptions, data: dict, binarize: str, require_masks: bool = False
) -> tuple[str, Path, list[SubjectRecord]]:
    """``(layout, root, records)`` of ``args.root``; a config's ``synthetic`` is its ATLAS tree.

    Raises:
        LesionresError: no scans found, or the finder's errors (all listed).
    """
    kind = args.dataset or data.get("dataset") or "folder"
    if kind == "synthetic":
        kind, root = "atlas", args.root / "ATLAS_2"
    else:
        root = args.root
    records = find_subjects(kind, root, args.modality or data.get("modality") or "dwi",
                            require_masks=require_masks)  # fmt: skip
    if not records:
        raise LesionresError(f"{args.root}: no scans found for --dataset {kind}")
    return kind, root, [dataclasses.replace(r, binarize=binarize) for r in records]
