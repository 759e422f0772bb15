"""Deterministic subject-level train/validation/test splits, frozen in a JSON file."""

from __future__ import annotations

import json
import random
from pathlib import Path

from lesionres.errors import LesionresError
from lesionres.files import write_json

__all__ = [
    "STUDY_TEST_FRACTION",
    "STUDY_VAL_FRACTION",
    "load_or_make_split",
    "make_split",
]

# The reference study: 655 ATLAS subjects -> 400 train, 100 validation, 155 test.
STUDY_VAL_FRACTION = 100 / 655
STUDY_TEST_FRACTION = 155 / 655


def make_split(
    subject_ids: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Shuffle the sorted ids with ``seed`` and cut them into train/val/test.

    With 655 ids and the study's fractions this gives exactly 400/100/155.
    """
    if len(set(subject_ids)) != len(subject_ids):
        raise LesionresError("duplicate subject ids; every subject must appear once")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise LesionresError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) "
            "and leave subjects for training"
        )
    ids = sorted(subject_ids)
    random.Random(seed).shuffle(ids)
    n_test = round(len(ids) * test_fraction)
    n_val = round(len(ids) * val_fraction)
    split = {
        "test": sorted(ids[:n_test]),
        "val": sorted(ids[n_test : n_test + n_val]),
        "train": sorted(ids[n_test + n_val :]),
    }
    if not split["train"]:
        raise LesionresError(f"only {len(ids)} subjects: none left for training")
    return split


def load_or_make_split(
    path: Path, subject_ids: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Reuse the split in ``path`` when present, else make one and write it there.

    Raises:
        LesionresError: the file is unreadable, lists a subject twice, or names subjects that
            are not in the dataset.
    """
    if path.exists():
        try:
            split = json.loads(path.read_text())
            parts = {key: list(split[key]) for key in ("train", "val", "test")}
        except (ValueError, KeyError, TypeError) as error:
            raise LesionresError(
                f"{path}: not a split file with train/val/test lists ({error})"
            ) from None
        seen: dict[str, str] = {}
        for part, ids in parts.items():
            for sid in ids:
                if sid in seen:
                    raise LesionresError(f"{path}: subject {sid} is in both {seen[sid]} and {part}")
                seen[sid] = part
        missing = sorted(set(seen) - set(subject_ids))
        if missing:
            raise LesionresError(
                f"{path}: {len(missing)} subjects in the split are not in the dataset "
                f"(first: {missing[0]}); delete the file or point data.split_file elsewhere"
            )
        return parts
    split = make_split(subject_ids, val_fraction, test_fraction, seed)
    write_json(
        path, {**split, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    )
    return split
