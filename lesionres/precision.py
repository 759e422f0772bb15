"""Which numeric precision runs where: one home for the rule ``fit`` and validation follow.

Measured on this project's AVX512-BF16/AMX CPU (BENCHMARKS.md): bf16 autocast made inference
2.3x faster with the same validation Dice (to 4e-4, same checkpoint), but bf16 *training* cost
validation Dice (0.67-0.70 against 0.76 in fp32; on the domain-randomised data, with the output
prior, a bf16 run collapsed to Dice 0). So on a CPU training stays fp32 and whole-
volume inference runs in bf16 where the CPU does bfloat16 natively; a CPU without it would only
emulate bf16 (slower), so it keeps fp32.
"""

from __future__ import annotations

__all__ = ["cpu_runs_bf16", "default_precision"]


def cpu_runs_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (AVX512-BF16 or AMX tiles)."""
    import torch  # here, not at the top: the command line imports this without torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def default_precision(command: str = "fit") -> str:
    """The precision a Lightning command runs in when its config names none (or says ``auto``).

    On a GPU with bfloat16: ``bf16-mixed``. On a CPU, ``fit`` stays ``32-true`` (its validation
    passes still run in bf16 where the CPU does it natively: ``LesionSegmenter``'s
    ``val_precision``); ``validate``/``test``/``predict`` use ``bf16-mixed`` where the CPU runs
    bfloat16 natively.
    """
    import torch

    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_runs_bf16() and command != "fit" else "32-true"
