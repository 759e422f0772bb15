"""Network architectures."""

from lesionres.models.unet import NormKind, UNet3D

__all__ = ["NormKind", "UNet3D"]
