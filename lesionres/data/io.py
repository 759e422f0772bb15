"""Read and write NIfTI volumes with nibabel, failing loudly and by file name.

TorchIO reads through SimpleITK, which loads a truncated ``.nii.gz`` as zeros without a word;
reading through nibabel with a forced ``get_fdata()`` decompresses the whole file, so a
truncated or corrupt file raises here, named.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from lesionres.errors import LesionresError

__all__ = ["load_volume", "save_volume"]


def load_volume(path: str | Path, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI volume fully into memory.

    A 4D image holding one volume is squeezed to 3D.

    Returns:
        ``(array, affine)``: the voxel data as ``dtype`` and the 4x4 voxel-to-RAS affine.

    Raises:
        LesionresError: missing, truncated or corrupt file, or not a single 3D volume.
    """
    path = Path(path)
    if not path.exists():
        raise LesionresError(f"{path}: file does not exist")
    try:
        image = nib.load(str(path))
        data = np.asarray(image.get_fdata(dtype=np.float32))
    except (EOFError, OSError, ImageFileError, zlib.error, ValueError) as error:
        raise LesionresError(f"{path}: unreadable NIfTI ({type(error).__name__}: {error})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise LesionresError(f"{path}: expected a 3D volume, found shape {data.shape}")
    return data.astype(dtype, copy=False), np.asarray(image.affine, dtype=np.float64)


def save_volume(path: str | Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write ``data`` with ``affine`` atomically (temporary file in the same folder, then rename).

    Integer and boolean data are stored as ``uint8``; anything else as ``float32``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.dtype == bool or np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.uint8)
    else:
        data = data.astype(np.float32)
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(handle)
    try:
        nib.save(image, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
