"""Whole-volume and sliding-window inference for 3D segmentation networks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["gaussian_weight", "sliding_window", "window_starts"]


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start indices of windows of ``window`` voxels covering ``size`` with ``overlap`` share."""
    if window >= size:
        return [0]
    step = max(1, int(window * (1 - overlap)))
    starts = list(range(0, size - window + 1, step))
    if starts[-1] != size - window:
        starts.append(size - window)  # last window flush with the border
    return starts


def gaussian_weight(shape: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """nnU-Net's importance map: a Gaussian centred on the window, sigma = 1/8 of its size."""
    axes = []
    for n in shape:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    return weight.clamp_min(1e-3)  # keep border voxels from dividing by ~0


def sliding_window(
    predict: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    window: Sequence[int],
    overlap: float = 0.5,
    weighting: str = "gaussian",
    batch_size: int = 1,
) -> torch.Tensor:
    """Predict ``(N, C, X, Y, Z)`` by overlapping windows blended with importance weights.

    Args:
        predict: Maps ``(B, C, *window)`` to ``(B, K, *window)`` (logits or probabilities).
        volume: Input batch; spatial axes at least as large as ``window`` or smaller (then the
            window shrinks to the volume).
        window: Window shape.
        overlap: Share of each window overlapping its neighbour (0 to <1).
        weighting: ``gaussian`` (nnU-Net), ``hann`` or ``constant``.
        batch_size: Windows per forward pass.

    Returns:
        The blended outputs, ``(N, K, X, Y, Z)``, float32.
    """
    spatial = volume.shape[2:]
    window = [min(w, s) for w, s in zip(window, spatial, strict=True)]
    if weighting == "gaussian":
        weight = gaussian_weight(window)
    elif weighting == "hann":
        axes = [torch.hann_window(n + 2, periodic=False)[1:-1] for n in window]
        weight = (
            axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
        ).clamp_min(1e-3)
    elif weighting == "constant":
        weight = torch.ones(window)
    else:
        raise ValueError(f"weighting must be gaussian, hann or constant, got {weighting!r}")
    weight = weight.to(volume.device)
    boxes = [
        (slice(x, x + window[0]), slice(y, y + window[1]), slice(z, z + window[2]))
        for x in window_starts(spatial[0], window[0], overlap)
        for y in window_starts(spatial[1], window[1], overlap)
        for z in window_starts(spatial[2], window[2], overlap)
    ]
    output = None
    norm = torch.zeros(spatial, device=volume.device)
    for start in range(0, len(boxes), batch_size):
        chunk = boxes[start : start + batch_size]
        for n in range(volume.shape[0]):
            tiles = torch.stack([volume[n][(slice(None), *box)] for box in chunk])
            result = predict(tiles).float()
            if output is None:
                output = torch.zeros(
                    (volume.shape[0], result.shape[1], *spatial), device=volume.device
                )
            for tile, box in zip(result, chunk, strict=True):
                output[n][(slice(None), *box)] += tile * weight
                if n == 0:
                    norm[box] += weight
    return output / norm
