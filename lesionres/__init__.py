"""lesionres: 3D U-Net stroke-lesion segmentation and how MRI resolution changes it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
