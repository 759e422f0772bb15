"""The check ``fit`` and ``test`` run before reading any data, remembering what passed.

:func:`validate_for_run` applies the checks of ``python -m lesionres check``
(:func:`~lesionres.data.subject_check.check_subject`, the dataset-level ones of
:mod:`lesionres.data.dataset_check`) to the files a run will read, and stops with every error
listed. A subject that passed is remembered in a JSON cache under its files' path, size and
modification time, so the next run re-reads only new or changed files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from lesionres.data.dataset_check import dataset_problems, run_checks
from lesionres.data.findings import Finding, check_command, count, error_report
from lesionres.data.layouts import SubjectRecord
from lesionres.data.masks import DEFAULT_ATOL_MM, Binarize
from lesionres.data.subject_check import SubjectCheck, check_subject
from lesionres.errors import LesionresError
from lesionres.files import file_key, write_json

__all__ = ["CACHE_VERSION", "validate_for_run"]

CACHE_VERSION = 1  # bump when a rule changes, so cached passes are re-checked


def _cache_key(record: SubjectRecord, atol_mm: float, binarize: str) -> str | None:
    try:
        parts = [
            CACHE_VERSION,
            file_key(Path(record.image)),
            file_key(Path(record.mask) if record.mask is not None else None),
            record.dataset,
            [str(f) for f in record.problems],  # a new problem (a second mask) is re-checked
            float(atol_mm),
            binarize,
        ]
    except OSError:  # a missing file is never cached
        return None
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _read_cache(path: Path | None) -> dict[str, dict]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("version") != CACHE_VERSION:
            return {}
        return dict(data["entries"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # a damaged cache only costs a re-check


def _write_cache(path: Path, entries: dict[str, dict]) -> None:
    try:  # atomic: DDP ranks may write at the same time
        write_json(path, {"version": CACHE_VERSION, "entries": entries}, indent=1)
    except OSError:
        pass  # read-only dataset folder: validation still ran, only the cache is lost


def _to_entry(check: SubjectCheck) -> dict:
    return {
        "image": str(Path(check.record.image).resolve()),
        "findings": [[f.level, str(f.path), f.message] for f in check.findings],
        "shape": list(check.shape) if check.shape else None,
        "spacing": list(check.spacing) if check.spacing else None,
        "orientation": check.orientation,
        "mask_voxels": check.mask_voxels,
        "lesion_ml": check.lesion_ml,
    }


def _from_entry(record: SubjectRecord, entry: dict) -> SubjectCheck:
    return SubjectCheck(
        record=record,
        findings=[Finding(level, Path(path), text) for level, path, text in entry["findings"]],
        shape=tuple(entry["shape"]) if entry.get("shape") else None,
        spacing=tuple(entry["spacing"]) if entry.get("spacing") else None,
        orientation=entry.get("orientation"),
        mask_voxels=entry.get("mask_voxels"),
        lesion_ml=entry.get("lesion_ml"),
    )


def _check_hint(records: Sequence[SubjectRecord], root: str | Path | None, binarize: str) -> str:
    if root is None:
        files = [str(Path(p).resolve()) for r in records for p in (r.image, r.mask) if p]
        try:
            root = os.path.commonpath(files) if files else "ROOT"
        except ValueError:
            root = "ROOT"
    kinds = {r.dataset for r in records}
    kind = kinds.pop() if len(kinds) == 1 else "atlas"
    modality = "dwi"
    if kind == "isles22":
        first = records[0]
        modality = next((m for m, p in first.extra.items() if Path(p) == Path(first.image)), "dwi")
    return check_command(root, kind, modality, binarize)


def validate_for_run(
    records: Sequence[SubjectRecord],
    cache_file: str | Path | None = None,
    atol_mm: float = DEFAULT_ATOL_MM,
    binarize: Binarize = "strict",
    *,
    split: dict[str, list[str]] | None = None,
    extra: Sequence[Finding] = (),
    root: str | Path | None = None,
    workers: int = 2,
    progress: bool | None = None,
) -> list[Finding]:
    """Check every record before ``fit`` / ``test``, skipping files checked before unchanged.

    A subject that passed (no error) is remembered in ``cache_file`` (JSON, written
    atomically) under its files' resolved path, size and modification time and the options;
    the next run re-reads only new or changed files. Failures are never cached.

    Args:
        records: The subjects the run will read.
        cache_file: JSON cache; ``None`` checks everything every time.
        atol_mm: Affine tolerance, see :func:`check_subject`.
        binarize: Mask rule, see :func:`check_subject`.
        split: Optional split to check for leaks (see
            :func:`~lesionres.data.dataset_check.check_records`).
        extra: Findings about no single subject, e.g. the finder's
            :attr:`~lesionres.data.layouts.Discovery.findings` (an unreadable folder): their
            errors stop the run too.
        root: Dataset root named in the error's hint (default: the files' common folder).
        workers: Threads reading files.
        progress: Progress bar; ``None``: only for more than 20 subjects to check.

    Returns:
        The warning-level findings (cached ones included), to show the user.

    Raises:
        LesionresError: any error: how many subjects failed, every error on its own line
            (the first ten, then a count; see :func:`~lesionres.data.findings.error_report`)
            and the ``check`` command that prints the full table.
    """
    cache_path = Path(cache_file) if cache_file is not None else None
    cached = _read_cache(cache_path)
    keys = [_cache_key(r, atol_mm, binarize) for r in records]
    checks: list[SubjectCheck | None] = [
        _from_entry(r, cached[k]) if k is not None and k in cached else None
        for r, k in zip(records, keys, strict=True)
    ]
    todo = [i for i, c in enumerate(checks) if c is None]
    try:
        fresh = run_checks(
            [records[i] for i in todo],
            # looked up at call time, so tests can count calls by patching check_subject
            lambda r: check_subject(r, atol_mm=atol_mm, binarize=binarize),
            workers,
            progress,
        )
        for i, check in zip(todo, fresh, strict=True):
            checks[i] = check
    finally:
        if cache_path is not None and todo:
            # keep passes of other files; drop stale entries of the files checked now
            current = {str(Path(r.image).resolve()) for r in records}
            entries = {k: v for k, v in cached.items() if v.get("image") not in current}
            for key, check in zip(keys, checks, strict=True):
                if key is not None and check is not None and check.ok:
                    entries[key] = _to_entry(check)
            _write_cache(cache_path, entries)
    done: list[SubjectCheck] = [c for c in checks if c is not None]  # all set by now
    general = list(extra)
    for index, finding in dataset_problems(records, split, None):
        if index is not None:
            done[index].findings.append(finding)
        else:
            general.append(finding)
    failed = [c for c in done if not c.ok]
    errors = [f for c in failed for f in c.errors] + [f for f in general if f.level == "error"]
    if errors:
        subjects = len({c.record.subject_id for c in failed})  # a duplicate id is one subject
        header = f"{count(subjects, 'subject')} failed the check ({count(len(errors), 'error')})"
        raise LesionresError(error_report(errors, header, _check_hint(records, root, binarize)))
    return [f for c in done for f in c.warnings] + [f for f in general if f.level == "warning"]
