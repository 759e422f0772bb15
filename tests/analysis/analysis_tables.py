"""Results tables generated with numpy for the analysis tests (no model, no images).

A module with its own name (not ``conftest``): the test suite has several conftest files, and
``from conftest import ...`` would depend on which one pytest imported last.
"""

from __future__ import annotations

from pathlib import Path

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


def brute_pseudomedian(d: np.ndarray) -> float:
    """Median of the Walsh averages, by two plain loops (the reference)."""
    return float(np.median([(d[i] + d[j]) / 2 for i in range(d.size) for j in range(i, d.size)]))


def two_conditions(diffs: np.ndarray, *, seed: int = 0, metric: str = "dice") -> pd.DataFrame:
    """``original`` and ``linear_x2`` on the same scans, ``linear_x2 - original = diffs``."""
    rng = np.random.default_rng(seed)
    n = diffs.size
    base = rng.uniform(0.4, 0.7, n) if metric == "dice" else rng.uniform(5, 20, n)
    ids = [f"sub-{i:03d}" for i in range(n)]
    frames = [
        pd.DataFrame({"subject_id": ids, "dataset": "atlas", "condition": cond, "method": method,
                      "factor": factor, metric: values})
        for cond, method, factor, values in (
            ("original", "original", "", base), ("linear_x2", "linear", "2", base + diffs),
        )
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def sweep(shifts: dict[str, float], n: int = 20) -> pd.DataFrame:
    """A noise-free linear sweep: every scan loses exactly ``shift`` Dice at each level."""
    base = np.linspace(0.4, 0.8, n)
    ids = [f"sub-{i:03d}" for i in range(n)]
    frames = [pd.DataFrame({"subject_id": ids, "dataset": "atlas", "condition": "original",
                            "method": "original", "factor": "", "spacing_mm": "1x1x1",
                            "dice": base})]  # fmt: skip
    for k, shift in shifts.items():
        frames.append(pd.DataFrame({"subject_id": ids, "dataset": "atlas",
                                    "condition": f"linear_x{k}", "method": "linear",
                                    "factor": k, "spacing_mm": f"{k}x{k}x{k}",
                                    "dice": base + shift}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def two_empty_predictions() -> pd.DataFrame:
    """9 scans, two models; under linear_x4 model b predicts nothing on 2 scans (HD95 NaN)."""
    a = paired_table(9, conditions=("original", "linear_x4"), shifts=(0.0, -0.2)).assign(model="a")
    a["precision"] = a["dice"]
    b = a.assign(model="b")
    empty = b.index[b["condition"] == "linear_x4"][:2]
    b.loc[empty, ["dice", "precision", "hd95_mm", "pred_volume_ml"]] = [0.0, np.nan, np.nan, 0.0]
    return pd.concat([a, b], ignore_index=True)


def write_nifti(path: Path, data: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))


def table_csv(tmp_path: Path, df: pd.DataFrame) -> Path:
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    return path


ISSUE_COLUMNS = [
    "metric", "condition", "reference", "margin", "direction", "n", "estimate", "ci_low",
    "ci_high", "p_noninferiority", "p_equivalence", "p_adjusted", "verdict",
]  # fmt: skip


REPO = Path(__file__).resolve().parents[2]
