"""Benchmark: the default run's training step and validation pass on a CPU, in every speed
variant issue 16 asked about, against fp32 with torch's default threads measured in the same
process.

The model is the default config's (``lesionres/configs/default.yaml``: ``LesionSegmenter`` with
base 8, depth 3, batch norm, Dice+BCE loss); a training step is forward + loss + backward + Adam
on a batch of two 48^3 patches (the default ``batch_size`` and ``patch_size``); a validation
pass is one forward of a whole 2 mm volume (104x120x96, the default ``target_shape``) under
``torch.no_grad()``. Variants:

- ``fp32`` (the baseline; torch's default threads) and ``fp32_1thread`` (one thread),
- ``fp32_cl``, ``fp32_cl_1thread``: ``channels_last_3d`` weights and input,
- ``fp32_compile``: ``torch.compile`` of the network (compile time excluded, and reported),
- ``bf16``, ``bf16_cl``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` (and channels-last).

The variants run in interleaved rounds (a burst of load elsewhere hits all alike); every line
gives the median and minimum over ``--steps`` rounds after ``--warmup`` untimed ones, and
``ratio_vs_baseline`` (baseline median / this median: higher is faster). The validation pass
runs every third round. Whether a variant keeps the accuracy is not measured here: that takes a
whole ``fit`` (BENCHMARKS.md).

Run: ``python benchmarks/bench_default_step.py [--steps N] [--warmup N] [--variants ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
import yaml
from _common import emit, error_text

VARIANTS = ("fp32", "fp32_1thread", "fp32_cl", "fp32_cl_1thread", "fp32_compile", "bf16", "bf16_cl")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "lesionres" / "configs" / "default.yaml"


def default_settings() -> tuple[dict, tuple[int, ...], tuple[int, ...]]:
    """The default config's model arguments, training batch shape and validation volume shape."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data = config["data"]
    batch = (data["batch_size"], 1, *data["patch_size"])
    volume = (1, 1, *data["target_shape"])
    return config["model"], batch, volume


class Runner:
    """One variant's model, optimizer and inputs, with a training step and a validation pass."""

    def __init__(self, variant: str) -> None:
        from lesionres.module import LesionSegmenter

        model_args, self.batch, self.volume = default_settings()
        self.variant = variant
        self.threads = 1 if variant.endswith("_1thread") else torch.get_num_threads()
        torch.manual_seed(0)
        self.model = LesionSegmenter(
            **model_args,
            channels_last="_cl" in variant,
            compile=variant == "fp32_compile",
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=model_args["lr"])
        self.x = torch.randn(*self.batch)
        self.y = (torch.rand(*self.batch) > 0.97).float()
        self.v = torch.randn(*self.volume)

    def _autocast(self):
        if self.variant.startswith("bf16"):
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.model(self.x)
        self.model.loss(logits, self.y).backward()
        self.optimizer.step()

    def validate(self) -> None:
        self.model.eval()
        with torch.no_grad(), self._autocast():
            self.model(self.v)

    def timed(self, function) -> float:
        """Wall-clock ms of one call, with this variant's thread count."""
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            start = time.perf_counter()
            function()
            return 1000 * (time.perf_counter() - start)
        finally:
            torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    """Time every variant in interleaved rounds, print JSON lines; returns 0.

    Rounds interleave the variants (one training step of each, then the next round), so a
    burst of load from elsewhere hits every variant alike; each line gives the median and the
    minimum over rounds.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed rounds (12)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    variants = ["fp32"] + [v for v in args.variants if v != "fp32"]
    runners, first_call = {}, {}
    for variant in variants:
        try:
            runners[variant] = Runner(variant)
            first_call[variant] = runners[variant].timed(runners[variant].train_step) / 1000
            runners[variant].timed(runners[variant].validate)
        except Exception as error:  # noqa: BLE001 - no C++ compiler for compile: report, go on
            emit(
                f"default_train_step_{variant}", float("nan"), "ms", device=torch.device("cpu"),
                shape=None, error=error_text(error),
            )
            runners.pop(variant, None)
    times = {(v, kind): [] for v in runners for kind in ("train", "val")}
    for round_ in range(args.warmup + args.steps):
        for variant, runner in runners.items():
            train = runner.timed(runner.train_step)
            val = runner.timed(runner.validate) if round_ % 3 == 0 else None
            if round_ >= args.warmup:
                times[variant, "train"].append(train)
                if val is not None:
                    times[variant, "val"].append(val)
    baseline = {kind: statistics.median(times["fp32", kind]) for kind in ("train", "val")}
    for variant, runner in runners.items():
        for kind, label, shape in (
            ("train", "default_train_step", runner.batch),
            ("val", "default_validation", runner.volume),
        ):
            values = times[variant, kind]
            extra = {"first_call_s": round(first_call[variant], 1)} if kind == "train" else {}
            emit(
                f"{label}_{variant}", statistics.median(values), "ms",
                device=torch.device("cpu"), shape=shape,
                baseline=None if variant == "fp32" else (f"{label}_fp32", baseline[kind]),
                min_ms=round(min(values), 1), times_ms=[round(t, 1) for t in values],
                torch_threads=runner.threads, **extra,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
