"""File utilities every part of lesionres shares: atomic writes, JSON, CSV rows, versions, keys.

Torch-free (the analysis imports it). Every write goes through a temporary file in the target's
folder and :func:`os.replace`, so a reader (or a rerun after an interruption) sees the old file
or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.metadata
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "IMAGE_SUFFIXES",
    "ITK_SUFFIXES",
    "CsvAppender",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_key",
    "package_versions",
    "strip_image_suffix",
    "write_csv",
    "write_json",
]

ITK_SUFFIXES = (".mha", ".mhd", ".nrrd")
#: Every image file name lesionres reads (NIfTI through nibabel, the others through SimpleITK).
IMAGE_SUFFIXES = (".nii.gz", ".nii", *ITK_SUFFIXES)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it when the ``with`` block succeeds.

    For writers that take a file name (``nib.save``, ``sitk.WriteTransform``): write to the
    yielded path; on an exception the temporary file is removed and ``path`` left as it was.
    The folder of ``path`` is created. The temporary name keeps ``path``'s suffixes, so that
    writers that choose the format by extension (``.nii.gz``) still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a plain unique name, not mkstemp: the file gets the user's umask, not mode 0600
    suffix = "".join(path.suffixes)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.stem}{suffix}")
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON (with a final newline) atomically; returns ``path``."""
    return atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def write_csv(path: str | Path, rows: Iterable[dict], columns: Sequence[str]) -> Path:
    """Write ``rows`` under the header ``columns`` atomically (other keys are ignored)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return Path(path)


class CsvAppender:
    """Appends rows to a CSV file one at a time, each flushed to disk as it is written.

    A table written this way loses at most the row being written when the process is killed;
    the header is written only when the file is new (or empty).

    Args:
        path: The table (its folder is created).
        columns: Its header; keys of a row that are not columns are ignored.
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._handle = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=list(columns), extrasaction="ignore")
        if fresh:
            self._writer.writeheader()
            self._handle.flush()

    def append(self, row: dict) -> None:
        """Write one row and flush it."""
        self._writer.writerow(row)
        self._handle.flush()

    def close(self) -> None:
        """Close the file (appending again needs a new appender)."""
        self._handle.close()

    def __enter__(self) -> CsvAppender:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """The installed version of each distribution (``"unknown"`` when not installed)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def file_key(path: str | Path | None) -> list:
    """What identifies a file's current content cheaply: resolved path, size, mtime (ns).

    ``[None]`` for no file. Used as part of cache keys: a rewritten file gets a new key.

    Raises:
        OSError: ``path`` does not exist.
    """
    if path is None:
        return [None]
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def strip_image_suffix(name: str) -> str:
    """``name`` without its image suffix (:data:`IMAGE_SUFFIXES`, in any letter case)."""
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
