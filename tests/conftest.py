"""Shared fixtures: a tiny ATLAS-layout tree with a matching CPU-sized run configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import make_atlas_tree, write_config


@pytest.fixture
def atlas_run(tmp_path: Path) -> tuple[Path, Path]:
    """``(config, tmp_path)`` for a 6-subject ATLAS-layout tree of 16^3 volumes."""
    make_atlas_tree(tmp_path, n=6, shape=(16, 16, 16))
    return write_config(tmp_path / "tiny.yaml", tmp_path / "ATLAS_2", tmp_path / "logs"), tmp_path


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test in its own folder: Lightning's relative defaults (``lightning_logs/``,
    ``checkpoints/``) must never land in the repository."""
    monkeypatch.chdir(tmp_path)
