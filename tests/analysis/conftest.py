"""Fixtures shared by the analysis tests (helpers to import are in analysis_tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_tables import paired_table, with_other_cohort, write_nifti


@pytest.fixture
def table() -> pd.DataFrame:
    """Three paired ATLAS conditions (30 scans, ties, zeros) plus an ISLES cohort (25 scans)."""
    return with_other_cohort(paired_table())


@pytest.fixture
def predictions(tmp_path):
    """A tiny predictions folder in the documented layout, plus its results table."""
    df = paired_table(4, conditions=("original", "crude_x2"), shifts=(0, 0))
    root = tmp_path / "predictions"
    z, y, x = np.meshgrid(np.arange(24), np.arange(28), np.arange(20), indexing="ij")
    for k, sid in enumerate(df.subject_id.unique()[:2]):
        gt = ((z - 12) ** 2 + (y - 14) ** 2 + (x - 10) ** 2) < 16 + 4 * k
        write_nifti(root / f"{sid}_image.nii.gz", (100 - 40 * gt + z).astype(np.float32))
        write_nifti(root / f"{sid}_gt.nii.gz", gt.astype(np.uint8))
        write_nifti(root / "original" / f"{sid}_pred.nii.gz", gt.astype(np.uint8))
        shifted = np.roll(gt, 2, axis=0).astype(np.uint8)
        write_nifti(root / "crude_x2" / f"{sid}_pred.nii.gz", shifted)
    return df, root
