"""Benchmark: one full-volume training step and one inference pass of lesionres' 3D U-Net
against MONAI's ``BasicUNet`` (the classic 3D U-Net a user would pick instead).

Models, both with the same widths (16, 32, 64, 128, 256), instance norm and LeakyReLU:

- ``ours``: :class:`lesionres.models.UNet3D` (base 16, depth 4, instance norm), and
- ``monai``: ``BasicUNet(spatial_dims=3, in_channels=1, out_channels=1,
  features=(16, 32, 64, 128, 256, 16))``.

A training step is forward + BCE-with-logits loss (in fp32) + backward + Adam step (fused on
CUDA) on one ``1x1x208x240x192`` volume (the study's model grid) with a random binary target.
Each model runs in the variants

- ``fp32``,
- ``bf16``: ``torch.autocast(dtype=torch.bfloat16)``,
- ``bf16_cl``: bf16 + ``channels_last_3d`` weights and input,
- ``bf16_compile``: bf16 + ``torch.compile`` (the compile happens in the warm-up steps and is
  excluded; skipped with ``--quick`` on a CPU, and with ``--no-compile``).

Warm-up steps are excluded; every timed step is bracketed by ``torch.cuda.synchronize`` on a
GPU; ``torch.backends.cudnn.benchmark`` is on for CUDA. Each line reports the median step in
ms (``value``) and all timed steps (``times_ms``); on CUDA also ``peak_mem_gib``
(``torch.cuda.max_memory_allocated`` during that variant's steps; for inference after the
gradients and the optimizer state are freed). CPU memory is not reported:
the process' peak RSS only grows, so a per-variant number would mislead.

Inference (``infer_*``): ``model.eval()`` under ``torch.no_grad()``, one volume per call.

MONAI runs first in each variant, so our lines carry ``baseline`` and ``ratio_vs_baseline``
(MONAI's median / ours: how many times faster ours is in that same variant).

Summary lines: ``train_step_best`` / ``inference_best`` give each model's fastest variant and
``ratio_vs_baseline`` = MONAI's best / ours' best (how many times faster ours is; target >= 3
for training, i.e. under ~60 ms on an H200 where BasicUNet's best is about 198 ms).

With ``--quick`` on a CPU the volume is ``1x1x48x48x48`` (a 64^3 step already takes seconds on a
2-core CPU; a full volume minutes), which every line's ``shape`` and ``note`` say, and torch
uses one thread unless ``--threads`` says otherwise. CPU timings say nothing about GPU ones.

Run: ``python benchmarks/bench_train_step.py [--quick] [--device cpu|cuda] [--shape X Y Z]
[--steps N] [--warmup N] [--variants fp32 bf16 ...] [--no-compile]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import warnings

import torch
import torch.nn.functional as F
from _common import emit, error_text, parse_device_args, time_left, timed_ms

__all__ = ["FULL_SHAPE", "VARIANTS", "build_model", "main", "measure", "run", "select_variants"]

FULL_SHAPE = (208, 240, 192)
QUICK_CPU_SHAPE = (48, 48, 48)
VARIANTS = ("fp32", "bf16", "bf16_cl", "bf16_compile")


def build_model(name: str) -> torch.nn.Module:
    """``ours`` (lesionres UNet3D) or ``monai`` (BasicUNet), same widths, fresh weights."""
    if name == "ours":
        from lesionres.models import UNet3D

        return UNet3D(1, 1, base_channels=16, depth=4, norm="instance")
    from monai.networks.nets import BasicUNet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BasicUNet(
            spatial_dims=3, in_channels=1, out_channels=1, features=(16, 32, 64, 128, 256, 16)
        )


def _autocast(device: torch.device, variant: str):
    if variant == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _prepare(model: torch.nn.Module, device: torch.device, variant: str, x: torch.Tensor):
    model = model.to(device)
    if variant.endswith("_cl"):
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    runner = torch.compile(model) if variant.endswith("_compile") else model
    return model, runner, x


def measure(
    name: str,
    variant: str,
    shape: tuple[int, int, int],
    device: torch.device,
    steps: int,
    warmup: int,
    note: str = "",
    baseline: tuple[str, tuple[float, float]] | None = None,
) -> tuple[float, float] | None:
    """Time one model/variant: training step and inference; print two lines.

    Args:
        name: ``ours`` or ``monai``.
        variant: One of :data:`VARIANTS`.
        shape: Volume shape (batch 1, one channel).
        device: Where to run.
        steps: Timed steps.
        warmup: Untimed steps first (two more for ``torch.compile``).
        note: Added to each line (what the shape stands for).
        baseline: ``(variant name, (train ms, inference ms))`` of the baseline model measured
            in the same run: adds ``ratio_vs_baseline`` to both lines.

    Returns:
        Median training-step and inference ms, or ``None`` when the variant failed.
    """
    torch.manual_seed(0)
    x = torch.randn(1, 1, *shape, device=device)
    y = (torch.rand(1, 1, *shape, device=device) > 0.98).float()
    model, runner, x = _prepare(build_model(name), device, variant, x)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda")

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, variant):
            logits = runner(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        optimizer.step()

    def infer() -> None:
        with torch.no_grad(), _autocast(device, variant):
            runner(x)

    common = {"model": name, "variant": variant, "steps": steps, "warmup": warmup}
    if note:
        common["note"] = note
    warmup += 2 if variant.endswith("_compile") else 0
    grid = (1, 1, *shape)
    try:
        model.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train_ms, train_times = timed_ms(train_step, device, steps, warmup)
        memory = {}
        if device.type == "cuda":
            memory["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        emit(
            f"train_step_{name}_{variant}", train_ms, "ms", device=device, shape=grid,
            baseline=(f"train_step_{baseline[0]}", baseline[1][0]) if baseline else None,
            times_ms=[round(t, 2) for t in train_times], **memory, **common,
        )
        model.eval()
        # inference holds no gradients or optimizer state: free them so its peak is its own
        optimizer.zero_grad(set_to_none=True)
        optimizer.state.clear()
        memory = {}
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        infer_ms, infer_times = timed_ms(infer, device, steps, max(1, warmup))
        if device.type == "cuda":
            memory["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        emit(
            f"infer_{name}_{variant}", infer_ms, "ms", device=device, shape=grid,
            baseline=(f"infer_{baseline[0]}", baseline[1][1]) if baseline else None,
            times_ms=[round(t, 2) for t in infer_times], **memory, **common,
        )
    except Exception as error:  # noqa: BLE001 - out of memory, no compiler: report, go on
        emit(
            f"train_step_{name}_{variant}", float("nan"), "ms", device=device, shape=grid,
            error=error_text(error), **common,
        )
        return None
    return train_ms, infer_ms


def run(
    device: torch.device,
    shape: tuple[int, int, int] = FULL_SHAPE,
    variants: list[str] | tuple[str, ...] = VARIANTS,
    steps: int = 10,
    warmup: int = 3,
    note: str = "",
    deadline: float | None = None,
    compile_needs_s: float = 0.0,
) -> dict[str, dict[str, tuple[float, str]]]:
    """Time both models in every variant (MONAI first, so our lines carry the ratio).

    Args:
        device: Where to run.
        shape: Volume shape.
        variants: Which of :data:`VARIANTS`, in this order.
        steps: Timed steps per variant.
        warmup: Untimed steps per variant.
        note: Added to each line (what the shape stands for).
        deadline: ``time.monotonic()`` after which the remaining measurements are skipped
            (each skip is a line with ``skipped``).
        compile_needs_s: Seconds that must be left to start compiling one model.

    Returns:
        ``{"train"|"infer": {model: (best median ms, its variant)}}``.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    best: dict[str, dict[str, tuple[float, str]]] = {"train": {}, "infer": {}}
    extra = {"note": note} if note else {}
    for variant in variants:
        compiled = variant.endswith("_compile")
        results: dict[str, tuple[float, float] | None] = {}
        # MONAI first, so our line carries the ratio; but compiling takes a minute per model,
        # and with a budget ours is the one worth compiling first
        for name in ("ours", "monai") if compiled and deadline is not None else ("monai", "ours"):
            if time_left(deadline) <= (compile_needs_s if compiled else 0.0):
                emit(
                    f"train_step_{name}_{variant}", float("nan"), "ms", device=device,
                    shape=(1, 1, *shape), model=name, variant=variant,
                    skipped=f"time budget: {max(0.0, time_left(deadline)):.0f} s left", **extra,
                )
                continue
            monai = results.get("monai")
            results[name] = measure(
                name, variant, shape, device, steps, warmup, note,
                baseline=(f"monai_{variant}", monai) if name == "ours" and monai else None,
            )
            gc.collect()  # the model and its optimizer died with measure(): free their memory
            if device.type == "cuda":
                torch.cuda.empty_cache()
        for name, result in results.items():
            for kind, value in zip(("train", "infer"), result or (), strict=False):
                if name not in best[kind] or value < best[kind][name][0]:
                    best[kind][name] = (value, variant)
    for kind, label in (("train", "train_step_best"), ("infer", "inference_best")):
        if {"ours", "monai"} <= best[kind].keys():
            (ours, ours_variant), (monai, monai_variant) = best[kind]["ours"], best[kind]["monai"]
            emit(
                label, ours, "ms", device=device, shape=(1, 1, *shape),
                baseline=(f"monai_{monai_variant}", monai), ours_variant=ours_variant,
                monai_best_ms=round(monai, 3), monai_variant=monai_variant,
                variants=list(variants), target=">= 3x vs MONAI BasicUNet's best (training step)"
                if kind == "train" else None, **extra,
            )
    return best


def select_variants(
    variants: list[str], device: torch.device, quick: bool, no_compile: bool = False
) -> list[str]:
    """``variants`` less ``bf16_compile`` where it is not wanted (with a ``skipped`` line):
    ``--no-compile``, or ``--quick`` on a CPU (compiling takes minutes there)."""
    variants = list(variants)
    if "bf16_compile" in variants and (no_compile or (quick and device.type == "cpu")):
        variants.remove("bf16_compile")
        emit(
            "train_step_bf16_compile", float("nan"), "ms", device=device, shape=None,
            skipped="--no-compile" if no_compile else "--quick on CPU: compiling takes minutes",
        )
    return variants


def main(argv: list[str] | None = None) -> int:
    """Time both models in every variant, print JSON lines; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer steps; on CPU 48^3, no compile, 1 thread"
    )
    parser.add_argument(
        "--shape", type=int, nargs=3, default=None, help="volume shape (208 240 192)"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (10; quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (3; quick 1)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    args, device = parse_device_args(parser, argv)
    note = ""
    if args.shape:
        shape = tuple(args.shape)
    elif args.quick and device.type == "cpu":
        shape = QUICK_CPU_SHAPE
        note = "--quick on CPU: 48^3 instead of the study's 208x240x192"
    else:
        shape = FULL_SHAPE
    run(
        device, shape, select_variants(args.variants, device, args.quick, args.no_compile),
        steps=args.steps or (2 if args.quick else 10),
        warmup=args.warmup if args.warmup is not None else (1 if args.quick else 3),
        note=note,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
