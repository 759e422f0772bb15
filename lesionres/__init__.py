"""lesionres: 3D U-Net stroke-lesion segmentation and how MRI resolution changes it."""

__version__ = "0.2.0"
__all__ = ["__version__"]
