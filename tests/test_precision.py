"""Which precision runs where: ``lesionres.precision`` and the fit's validation autocast."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lesionres.module import LesionSegmenter


def _validation_dtype(module: LesionSegmenter, fn: str, trainer_precision: str) -> torch.dtype:
    module.trainer = SimpleNamespace(state=SimpleNamespace(fn=fn), precision=trainer_precision)
    with module._validation_autocast():
        return module.predict_logits(torch.zeros(1, 1, 8, 8, 8)).dtype


@pytest.mark.parametrize(
    ("native", "setting", "fn", "trainer_precision", "expected"),
    [
        (True, "auto", "fit", "32-true", torch.bfloat16),  # the default CPU fit
        (False, "auto", "fit", "32-true", torch.float32),  # emulated bf16 would be slower
        (True, "trainer", "fit", "32-true", torch.float32),  # asked for the trainer's own
        (True, "auto", "validate", "32-true", torch.float32),  # an explicit fp32 validate
    ],
)
def test_fit_validation_runs_in_bf16_only_on_a_native_bf16_cpu(
    monkeypatch, native, setting, fn, trainer_precision, expected
):
    monkeypatch.setattr("lesionres.module.cpu_runs_bf16", lambda: native)
    module = LesionSegmenter(base_channels=2, depth=1, norm="batch", val_precision=setting)
    module.eval()
    with torch.no_grad():
        assert _validation_dtype(module, fn, trainer_precision) == expected
