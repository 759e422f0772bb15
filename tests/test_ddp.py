"""Two-process DDP on the CPU (gloo): training runs, and `test` writes exactly the table one
process writes from the same checkpoint, one row per (scan, condition)."""

from __future__ import annotations

import os
import subprocess
import sys

from fakes import make_atlas_tree, write_config


def _run(args: list[str], cwd) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "lesionres", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_ddp_two_cpu_processes_match_a_single_process(tmp_path):
    # 7 test subjects: an odd number, so the distributed sampler pads with a repeated scan
    make_atlas_tree(tmp_path, n=14, shape=(16, 16, 16))
    config = write_config(
        tmp_path / "tiny.yaml",
        tmp_path / "ATLAS_2",
        tmp_path / "logs",
        data__test_fraction=0.5,
        data__val_fraction=0.15,
    )
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    _run(["fit", "--config", str(config), "--trainer.max_epochs", "2", *ddp], tmp_path)
    ckpt = tmp_path / "logs" / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    assert not list(
        (tmp_path / "logs" / "tiny").glob("version_1")
    )  # rank 1 wrote no run of its own
    base = [
        "test",
        "--config",
        str(config),
        "--ckpt_path",
        str(ckpt),
        "--data.condition_preset",
        "study",
    ]
    _run([*base, "--results.path", str(tmp_path / "single.csv")], tmp_path)
    _run([*base, "--results.path", str(tmp_path / "ddp.csv"), *ddp], tmp_path)
    single = (tmp_path / "single.csv").read_text().splitlines()
    assert len(single) == 1 + 4 * 7
    assert (tmp_path / "ddp.csv").read_text().splitlines() == single
    assert not list(tmp_path.glob("ddp.rank*.csv"))
