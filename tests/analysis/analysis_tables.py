"""Results tables generated with numpy for the analysis tests (no model, no images).

A module with its own name (not ``conftest``): the test suite has several conftest files, and
``from conftest import ...`` would depend on which one pytest imported last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def paired_table(
    n: int = 30,
    *,
    seed: int = 0,
    conditions: tuple[str, ...] = ("original", "crude_x2", "linear_x2"),
    shifts: tuple[float, ...] = (0.0, 0.01, -0.05),
    round_to: int | None = 2,
    dataset: str = "atlas",
    prefix: str = "sub-",
) -> pd.DataFrame:
    """Conditions on the same ``n`` scans; rounding makes ties and zero differences."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.8, n)
    volume = np.exp(np.linspace(-2, 4, n))
    frames = []
    for cond, shift in zip(conditions, shifts, strict=True):
        dice = np.clip(base + shift + rng.normal(0, 0.03, n), 0, 1)
        if round_to is not None:
            dice = dice.round(round_to)
        frames.append(
            pd.DataFrame(
                {
                    "subject_id": [f"{prefix}{i:03d}" for i in range(n)],
                    "dataset": dataset,
                    "condition": cond,
                    "method": cond.split("_")[0],
                    "factor": "2" if cond.endswith("x2") else "",
                    "spacing_mm": "",
                    "dice": dice,
                    "hd95_mm": rng.uniform(2, 20, n),
                    "gt_volume_ml": np.round(volume, 3),
                    "pred_volume_ml": np.round(volume * rng.uniform(0.5, 2, n), 3),
                    "gt_lesions": (np.arange(n) % 5) + 1,
                    "error": "",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def with_other_cohort(df: pd.DataFrame, n: int = 25, seed: int = 1) -> pd.DataFrame:
    """Add an ISLES-like condition on other subjects (a different cohort)."""
    other = paired_table(
        n, seed=seed, conditions=("isles22",), shifts=(-0.1,), dataset="isles22",
        prefix="sub-strokecase",
    )  # fmt: skip
    other["method"] = "natural"
    return pd.concat([df, other], ignore_index=True)
