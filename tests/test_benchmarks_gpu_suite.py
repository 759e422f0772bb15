"""benchmarks/gpu_suite.py: the one-command GPU suite, checked on the CPU.

The verdict logic is checked on hand-made records (a GPU run's lines), the process handling
(a failing part, a part over its budget) on the real entry point, and the whole ``--quick`` run
for structure and sanity: every part ran and recorded its numbers, every ratio was computed.
Speed is not tested: these are benchmarks, and a CPU says nothing about a GPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_suite  # noqa: E402 - found through the path above, as the scripts find _common


def _record(name: str, value: float | None, **fields: object) -> dict:
    return {"name": name, "value": value, **fields}


def _gpu_records(device_name: str = "NVIDIA H200", ours_bf16: float = 50.0) -> list[dict]:
    """The lines a GPU run would write, as far as the verdicts read them."""
    return [
        _record("environment", 16, device_name=device_name),
        _record("train_step_monai_fp32", 198.0),
        _record("train_step_monai_bf16", 215.0),
        _record("train_step_ours_fp32", 90.0, ratio_vs_baseline=2.2),
        _record("train_step_ours_bf16", ours_bf16, ratio_vs_baseline=215.0 / ours_bf16),
        _record("train_step_ours_bf16_compile", None, error="RuntimeError: no compiler"),
        _record(
            "loader_speedup", 3.0, workers=0, lesionres_volumes_per_s=6, torchio_volumes_per_s=2
        ),
        _record(
            "loader_speedup",
            12.0,
            workers=15,
            lesionres_volumes_per_s=140,
            torchio_volumes_per_s=11.5,
        ),
        _record("data_wait_share", 0.01),
        _record("projected_study", 25.0, source="fit"),
        _record("projected_study_with_validation", 31.0, source="fit"),
        _record("projected_study", 10.0, source="train_step"),  # not the verdict's basis
        _record("projected_test_155x4", 1.5),
    ]


def _verdicts(records: list[dict], gpu: bool = True) -> dict[str, str]:
    return {target: verdict for target, _, verdict in gpu_suite.targets(records, gpu)}


def test_targets_pass_and_fail_on_an_h200():
    verdicts = _verdicts(_gpu_records())
    assert verdicts == {
        "our bf16 step >= 3x faster than BasicUNet's best": "PASS",  # 198 / 50
        "our bf16 step <= 60 ms": "PASS",
        "data wait < 5 % of the step": "PASS",
        "400 scans x 50 epochs < 30 min": "PASS",
        "400 scans x 50 epochs (+ val) < 30 min": "FAIL",
        "155 scans x 4 conditions, all metrics < 2 min": "PASS",
        "cached loader >= 10x TorchIO (most workers)": "PASS",  # 15 workers, not 0
    }


def test_step_limit_follows_the_card():
    h100 = _verdicts(_gpu_records("NVIDIA H100 80GB HBM3", ours_bf16=70.0))
    assert h100["our bf16 step <= 80 ms"] == "PASS"
    h200 = _verdicts(_gpu_records("NVIDIA H200", ours_bf16=70.0))
    assert h200["our bf16 step <= 60 ms"] == "FAIL"
    assert h200["our bf16 step >= 3x faster than BasicUNet's best"] == "FAIL"  # 198 / 70
    other = _verdicts(_gpu_records("NVIDIA A100-SXM4-80GB"))
    assert other["our bf16 step <= 60 ms (H200) / 80 ms (H100)"].startswith("n/a")


def test_missing_numbers_and_cpu_runs_get_no_pass():
    assert set(_verdicts([], gpu=True).values()) == {"MISSING"}
    assert all(v.startswith("n/a") for v in _verdicts(_gpu_records(), gpu=False).values())


def test_budgets_fit_in_eight_minutes():
    assert [p.name for p in gpu_suite.PARTS] == list(gpu_suite.PART_FUNCTIONS)
    assert sum(p.budget_s for p in gpu_suite.PARTS) <= 8 * 60 - 15  # the parent's own seconds


def test_summary_lists_measurements_with_their_baselines():
    records = _gpu_records() + [
        _record("train_step_ours_bf16", 50.0, peak_mem_gib=4.25, ratio_vs_baseline=4.3),
        _record("part_fit", 61.0, part="fit", status="timeout", budget_s=120),
    ]
    text = gpu_suite.render(records, gpu=True, quick=False)
    assert "| fit | timeout | 61.0 | 120 |" in text
    bf16 = "| train_step | train step bf16 | 50.0 ms (4.2 GiB) | BasicUNet 215.0 ms | 4.30x |"
    assert bf16 in text
    assert "| loader | volumes/s, 15 workers | 140.0 vol/s | TorchIO 11.5 vol/s | 12.00x |" in text
    assert "train_step_ours_bf16_compile: RuntimeError: no compiler" in text


def _context(tmp_path: Path) -> gpu_suite.Context:
    return gpu_suite.Context(
        torch.device("cpu"), True, gpu_suite.QUICK, tmp_path, tmp_path, time.monotonic() + 60
    )


def test_a_failing_part_is_recorded_not_raised(tmp_path, monkeypatch):
    def broken(ctx):
        raise MemoryError("CUDA out of memory\nsecond line")

    monkeypatch.setitem(gpu_suite.PART_FUNCTIONS, "loader", broken)
    assert gpu_suite.run_part("loader", _context(tmp_path)) == 1
    (line,) = gpu_suite.read_records(tmp_path / gpu_suite.JSONL)
    assert line["part"] == "loader" and line["name"] == "loader_failed"
    assert line["error"] == "MemoryError: CUDA out of memory" and line["value"] is None


def test_a_part_over_its_budget_is_killed(tmp_path):
    part = gpu_suite.Part("fit", 0.3, 0.3, "a fit that cannot start in 0.3 s")
    start = time.monotonic()
    status, seconds, code = gpu_suite._run_child(
        part, 0.3, ["--out", str(tmp_path), "--work", str(tmp_path), "--device", "cpu", "--quick"]
    )
    assert (status, code) == ("timeout", None)
    assert seconds < 5 and time.monotonic() - start < 5


def test_quick_run_records_every_part(tmp_path):
    """The whole suite with --quick on the CPU (about a minute on 2 cores)."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "gpu_suite.py"),
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "gpu_suite.jsonl").read_text().splitlines()]
    by_name: dict[str, list[dict]] = {}
    for record in records:
        assert record["part"] in {p.name for p in gpu_suite.PARTS} | {"environment"}
        by_name.setdefault(record["name"], []).append(record)

    statuses = {r["part"]: r["status"] for r in records if r["name"].startswith("part_")}
    assert statuses == {p.name: "ok" for p in gpu_suite.PARTS}, statuses
    assert not [r for r in records if r.get("error")]

    def value(name: str, **fields: object) -> float:
        (record,) = [r for r in by_name[name] if all(r.get(k) == v for k, v in fields.items())]
        assert record["value"] is not None and math.isfinite(record["value"]), record
        return record["value"]

    for variant in ("fp32", "bf16", "bf16_cl"):
        for kind in ("train_step", "infer"):
            assert value(f"{kind}_monai_{variant}") > 0
            assert value(f"{kind}_ours_{variant}") > 0
            (ours,) = by_name[f"{kind}_ours_{variant}"]
            assert ours["ratio_vs_baseline"] > 0 and ours["baseline"] == f"{kind}_monai_{variant}"
    assert by_name["train_step_bf16_compile"][0]["skipped"]  # not compiled on a CPU
    assert by_name["train_step_best"][0]["ratio_vs_baseline"] > 0
    for workers in gpu_suite.QUICK.loader_workers:
        assert value("loader_speedup", workers=workers) > 0
        assert value("lesionres_cache_pass2", workers=workers) > 0
    assert value("step_compute") > 0 and value("validation_volume") > 0
    assert 0 <= value("data_wait_share") < 1
    (test,) = by_name["test_throughput"]
    assert test["value"] > 0 and test["failed_rows"] == 0
    assert test["rows"] == 4 * test["scans"] > 0  # every test scan under the 4 conditions
    assert value("projected_test_155x4") > 0
    for source in ("fit", "train_step"):
        assert value("projected_study", source=source) > 0
        assert value("projected_study_with_validation", source=source) > 0

    summary = (out / "summary.md").read_text()
    assert summary.startswith("# gpu_suite summary (--quick")
    for target, _, verdict in gpu_suite.targets(records, gpu=False):
        assert f"| {target} |" in summary and verdict.startswith("n/a")
    assert "| train_step | train step bf16 |" in summary and "—" not in summary.split("| target")[0]


@pytest.mark.parametrize("script", ["bench_train_step.py", "bench_loader.py", "bench_fit.py"])
def test_scripts_still_answer_help(script):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "usage:" in done.stdout
