"""The classic 3D U-Net (Çiçek et al. 2016): two 3x3x3 convolutions per level, max-pool down,
transposed-convolution up, skip connections by concatenation; logits out."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["NormKind", "UNet3D"]

NormKind = Literal["instance", "batch", "group", "none"]


def _norm(kind: NormKind, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class _DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, norm: NormKind, dropout: float) -> None:
        bias = norm == "none"  # a bias before a normalisation layer is wasted work
        layers: list[nn.Module] = []
        for c in (c_in, c_out):
            layers += [
                nn.Conv3d(c, c_out, 3, padding=1, bias=bias),
                _norm(norm, c_out),
                nn.LeakyReLU(0.01, inplace=True),
            ]
        if dropout > 0:
            layers.insert(3, nn.Dropout3d(dropout))
        super().__init__(*layers)


class UNet3D(nn.Module):
    """Encoder–decoder with skip connections for binary 3D segmentation.

    Args:
        in_channels: Image channels (1 for a T1w scan).
        out_channels: Output logit channels (1 for lesion vs background).
        base_channels: Feature maps at the first level; doubled at each level down.
        depth: Number of down-sampling steps; inputs must be divisible by ``2**depth``.
        norm: Normalisation after each convolution.
        dropout: ``Dropout3d`` probability inside each block (0 disables it).
        output_prior: The lesion probability the untrained network predicts everywhere: the
            head's bias starts at its logit (the prior initialisation of Lin et al. 2017, focal
            loss), so training starts at the base rate of a sparse foreground, not at 0.5
            everywhere; on the default run it moved the first useful epoch from 6 to 0
            (BENCHMARKS.md). ``None`` keeps PyTorch's default initialisation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 16,
        depth: int = 4,
        norm: NormKind = "instance",
        dropout: float = 0.0,
        output_prior: float | None = 0.01,
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError(f"depth and base_channels must be >= 1, got {depth}, {base_channels}")
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList()
        c_in = in_channels
        for width in widths:
            self.encoder.append(_DoubleConv(c_in, width, norm, dropout))
            c_in = width
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose3d(width * 2, width, 2, stride=2))
            self.decoder.append(_DoubleConv(width * 2, width, norm, dropout))
        self.head = nn.Conv3d(widths[0], out_channels, 1)
        if output_prior is not None:
            if not 0.0 < output_prior < 1.0:
                raise ValueError(f"output_prior must lie in (0, 1), got {output_prior}")
            nn.init.constant_(self.head.bias, math.log(output_prior / (1.0 - output_prior)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, C, X, Y, Z)`` images to ``(N, out_channels, X, Y, Z)`` logits."""
        multiple = 2**self.depth
        if any(size % multiple for size in x.shape[2:]):
            raise ValueError(
                f"input spatial shape {tuple(x.shape[2:])} must be divisible by {multiple} "
                f"(2**depth); pad or crop the volume, e.g. with data.target_shape"
            )
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.pool(x)
        for up, block, skip in zip(self.up, self.decoder, reversed(skips), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)
