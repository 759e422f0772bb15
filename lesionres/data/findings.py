"""Findings about dataset files, and how a run that must stop lists them.

A :class:`Finding` is one problem (or note) about one file. The finders of
:mod:`lesionres.data.layouts` report what they see in the folders (an image without its mask,
an unreadable folder) as findings, and :mod:`lesionres.data.subject_check` adds what it reads in
the files; ``check`` prints them all, and ``fit`` / ``test`` stop with :func:`error_report`:
every error on its own line (the first :data:`MAX_LISTED`, then a count), never only the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["MAX_LISTED", "Finding", "Level", "check_command", "count", "error_report"]

Level = Literal["error", "warning", "info"]
MAX_LISTED = 10  # errors listed when a run stops; `check` prints them all


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about one file.

    Attributes:
        level: ``"error"``, ``"warning"`` or ``"info"`` (see :mod:`lesionres.data.subject_check`).
        path: The file to look at (a folder or split file for problems of those).
        message: What is wrong, in plain words, without the path.
    """

    level: Level
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def count(n: int, noun: str) -> str:
    """``"1 subject"``, ``"2 subjects"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_command(
    root: str | Path,
    kind: str = "atlas",
    modality: str = "dwi",
    binarize: str = "strict",
) -> str:
    """The ``python -m lesionres check`` command line that prints the full table of ``root``.

    Args:
        root: Dataset folder (or CSV).
        kind: Layout; ``atlas`` (and ``synthetic``, read alike) is detected, so not spelled out.
        modality: ISLES 2022 image modality (spelled out when not ``dwi``).
        binarize: Mask rule (spelled out when not ``strict``).
    """
    command = f"python -m lesionres check {root}"
    if kind in ("isles22", "folder"):
        command += f" --dataset {kind}"
    if kind == "isles22" and modality != "dwi":
        command += f" --modality {modality}"
    if binarize != "strict":
        command += f" --binarize {binarize}"
    return command


def error_report(
    errors: Sequence[Finding], header: str, command: str, limit: int = MAX_LISTED
) -> str:
    """The message of a run stopped by bad data: ``header``, one line per error, the hint.

    Args:
        errors: Every error found (listed in this order).
        header: What failed, e.g. ``"3 subjects failed the check (4 errors)"``.
        command: The ``check`` command that prints the full table.
        limit: Errors listed; the rest are counted.

    Returns:
        A multi-line message: ``header:``, then ``  path: problem`` per error (at most
        ``limit``, then ``  ... and N more``), then ``Run `command` for the full table.``
    """
    lines = [f"{header}:", *(f"  {finding}" for finding in errors[:limit])]
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more")
    lines.append(f"Run `{command}` for the full table.")
    return "\n".join(lines)
