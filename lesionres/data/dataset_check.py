"""Check a whole dataset: every subject (on threads, with a progress bar) and the problems of
the dataset as such: duplicate subject ids, a subject in two parts of a split, split ids not in
the dataset."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lesionres.data.findings import Finding, count
from lesionres.data.layouts import SubjectRecord
from lesionres.data.masks import DEFAULT_ATOL_MM, Binarize
from lesionres.data.subject_check import SubjectCheck, check_subject
from lesionres.errors import LesionresError

__all__ = ["check_records", "dataset_findings", "dataset_problems", "load_split", "run_checks"]

PROGRESS_THRESHOLD = 20  # show a progress bar above this many subjects


def load_split(path: str | Path) -> dict[str, list[str]]:
    """Read a split file: a JSON object whose list values are subject ids per part.

    Other keys (``seed``, fractions) are ignored, so the files written by
    :func:`lesionres.data.split.load_or_make_split` read as they are.

    Raises:
        LesionresError: unreadable JSON or no list of ids in it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LesionresError(f"{path}: not a readable JSON split file ({error})") from None
    if not isinstance(data, dict):
        raise LesionresError(f'{path}: expected a JSON object such as {{"train": [...], ...}}')
    parts = {
        str(k): [str(i) for i in v]
        for k, v in data.items()
        if isinstance(v, list) and all(isinstance(i, str) for i in v)
    }
    if not parts:
        raise LesionresError(f"{path}: no lists of subject ids (expected train/val/test lists)")
    return parts


def dataset_problems(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None,
    split_path: Path | None,
) -> list[tuple[int | None, Finding]]:
    """Dataset-level findings, each with the index of the record it concerns (or ``None``)."""
    out: list[tuple[int | None, Finding]] = []
    first_of: dict[str, int] = {}
    users: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        first_of.setdefault(record.subject_id, index)
        users.setdefault(record.subject_id, []).append(index)
    for sid, indices in users.items():
        if len(indices) < 2:
            continue
        for index in indices:
            others = ", ".join(str(records[i].image) for i in indices if i != index)
            message = f"duplicate subject id {sid} (also {others})"
            out.append((index, Finding("error", Path(records[index].image), message)))
    if split is None:
        return out
    where = split_path if split_path is not None else Path("split")
    parts_of: dict[str, list[str]] = {}
    for part, ids in split.items():
        for sid in ids:
            parts_of.setdefault(sid, []).append(part)
    for sid, parts in parts_of.items():
        if len(parts) > 1:
            names = " and ".join(parts) if len(set(parts)) > 1 else f"{parts[0]} {len(parts)} times"
            message = f"subject {sid} is in {names}: a leak between splits"
            out.append((first_of.get(sid), Finding("error", where, message)))
    unknown = sorted(set(parts_of) - set(first_of))
    if unknown:
        message = (
            f"{count(len(unknown), 'subject')} in the split not in the dataset "
            f"(first: {unknown[0]})"
        )
        out.append((None, Finding("error", where, message)))
    unassigned = sorted(set(first_of) - set(parts_of))
    if unassigned:
        message = f"{count(len(unassigned), 'subject')} in no split (first: {unassigned[0]})"
        out.append((None, Finding("info", where, message)))
    return out


def dataset_findings(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None = None,
    split_path: str | Path | None = None,
) -> list[Finding]:
    """Dataset-level findings that concern no single subject (unknown or unassigned split ids).

    :func:`check_records` attaches the others (duplicate ids, a subject in two splits) to the
    subjects concerned.
    """
    path = Path(split_path) if split_path is not None else None
    return [f for index, f in dataset_problems(records, split, path) if index is None]


def run_checks(
    records: Sequence[SubjectRecord],
    work: Callable[[SubjectRecord], SubjectCheck],
    workers: int,
    progress: bool | None,
) -> list[SubjectCheck]:
    """``work`` on every record, in order, on ``workers`` threads, with a progress bar."""
    from tqdm import tqdm

    show = len(records) > PROGRESS_THRESHOLD if progress is None else progress
    bar = tqdm(
        total=len(records), desc="checking", unit="subject", disable=not show, file=sys.stderr
    )
    results: list[SubjectCheck] = []
    try:
        if workers <= 1:
            for record in records:
                results.append(work(record))
                bar.update()
            return results
        # nibabel's gzip decompression releases the GIL, so threads overlap the reading
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            for result in pool.map(work, records):
                results.append(result)
                bar.update()
        finally:
            # on Ctrl-C do not go on reading every queued file
            pool.shutdown(wait=True, cancel_futures=True)
        return results
    finally:
        bar.close()


def check_records(
    records: Sequence[SubjectRecord],
    split: dict[str, list[str]] | None = None,
    atol_mm: float = DEFAULT_ATOL_MM,
    binarize: Binarize = "strict",
    *,
    split_path: str | Path | None = None,
    workers: int = 2,
    progress: bool | None = None,
) -> list[SubjectCheck]:
    """:func:`check_subject` on every record, plus the dataset-level errors.

    A duplicate subject id is an error on every subject using it; a subject listed in two
    parts of ``split`` is an error on that subject (its path is ``split_path``). Findings about
    no present subject come from :func:`dataset_findings`.

    Args:
        records: Subjects, e.g. :attr:`lesionres.data.layouts.Discovery.records`.
        split: Optional ``{"train": [ids], "val": [...], "test": [...]}``.
        atol_mm: Affine tolerance, see :func:`check_subject`.
        binarize: Mask rule, see :func:`check_subject`.
        split_path: The split's file, named in split findings.
        workers: Threads reading files (1: a plain loop).
        progress: Progress bar on stderr; ``None``: only for more than 20 subjects.

    Returns:
        One :class:`SubjectCheck` per record, in the records' order.
    """
    checks = run_checks(
        records,
        lambda r: check_subject(r, atol_mm=atol_mm, binarize=binarize),
        workers,
        progress,
    )
    path = Path(split_path) if split_path is not None else None
    for index, finding in dataset_problems(records, split, path):
        if index is not None:
            checks[index].findings.append(finding)
    return checks
