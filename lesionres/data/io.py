"""Read and write NIfTI volumes with nibabel, failing loudly and by file name.

TorchIO reads through SimpleITK, which loads a truncated ``.nii.gz`` as zeros without a word;
reading through nibabel with a forced ``get_fdata()`` decompresses the whole file, so a
truncated or corrupt file raises here, named, with the likely cause in plain words
(:class:`NiftiError`, a :class:`~lesionres.errors.LesionresError`).

The formats grand-challenge and ITK tools write (``.mha``, ``.mhd``, ``.nrrd``) are read
through SimpleITK into the same convention: a ``(x, y, z)`` array and a voxel-to-RAS affine
(ITK's origin and direction are LPS: the first two rows change sign).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from lesionres.errors import LesionresError
from lesionres.files import IMAGE_SUFFIXES, ITK_SUFFIXES, atomic_path

__all__ = [
    "IMAGE_SUFFIXES",
    "ITK_SUFFIXES",
    "NiftiError",
    "load_volume",
    "read_header",
    "read_nifti",
    "save_volume",
    "squeeze_to_3d",
]

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class NiftiError(LesionresError):
    """A NIfTI file that cannot be read, or is not a single 3D volume.

    Attributes:
        path: The file at fault.
        reason: The problem in plain words, without the path (``str(error)`` is
            ``"<path>: <reason>"``).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _gzip_is_truncated(path: Path) -> bool:
    """Whether ``path`` is a gzip stream that ends early (read to the end, in chunks)."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except EOFError:
        return True
    except (OSError, zlib.error):
        return False
    return False


def _explain(path: Path, error: BaseException) -> str:
    """Turn a nibabel / gzip / zlib exception into the likely cause, in plain words."""
    text = str(error)
    if isinstance(error, EOFError) or (
        isinstance(error, OSError) and "Expected" in text and "bytes" in text
    ):
        detail = text.split("\n")[0].replace(f" from {path}", "")
        return f"truncated file (an interrupted download or copy?): {detail}"
    if isinstance(error, ImageFileError):
        if "Empty file" in text:
            return "empty file (0 bytes)"
        if "not a gzip file" in text:
            return (
                "not a gzip file despite its .gz name (an HTML error page saved by a failed "
                "download?)"
            )
        if path.name.endswith(".gz") and _gzip_is_truncated(path):
            return "truncated file, cut inside the header (an interrupted download or copy?)"
        return f"not a NIfTI file nibabel can read ({text})"
    if isinstance(error, (zlib.error, gzip.BadGzipFile)) or "CRC" in text:
        return f"corrupt compressed data ({type(error).__name__}: {text})"
    return f"unreadable NIfTI ({type(error).__name__}: {text})"


def read_nifti(path: str | Path, dtype: type | None = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI file completely, with all its dimensions as stored.

    Args:
        path: ``.nii`` or ``.nii.gz`` file (or ``.mha``/``.mhd``/``.nrrd``, through SimpleITK).
        dtype: Float type for nibabel's ``get_fdata`` (scaling applied); ``None`` keeps the
            stored type where nibabel can (``np.asanyarray(dataobj)``), so that an integer mask
            stays integer and a float64 value such as 0.9999999998 is not rounded by a cast.

    Returns:
        ``(array, affine)``: the voxel data and the 4x4 voxel-to-world (RAS+, mm) affine.

    Raises:
        NiftiError: missing, empty, truncated, corrupt or non-NIfTI file.
    """
    path = Path(path)
    if not path.exists():
        raise NiftiError(path, "file does not exist")
    if not path.is_file():
        raise NiftiError(path, "not a file")
    if path.name.lower().endswith(ITK_SUFFIXES):
        return _read_itk(path, dtype)
    try:
        image = nib.load(str(path))
        # reading every voxel decompresses the whole stream: a truncated file raises here
        if dtype is None:
            data = np.asanyarray(image.dataobj)
        else:
            data = np.asarray(image.get_fdata(dtype=dtype))
        affine = np.asarray(image.affine, dtype=np.float64)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to read is this file's problem
        raise NiftiError(path, _explain(path, error)) from None
    return data, affine


def _itk_affine(image) -> np.ndarray:
    """Voxel-to-RAS affine of a SimpleITK image or image reader (their geometry is LPS)."""
    dimension = image.GetDimension()
    direction = np.eye(3)
    spacing, origin = np.ones(3), np.zeros(3)
    n = min(dimension, 3)
    matrix = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
    direction[:n, :n] = matrix[:n, :n]
    spacing[:n] = image.GetSpacing()[:n]
    origin[:n] = image.GetOrigin()[:n]
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing  # columns scaled by the voxel size
    affine[:3, 3] = origin
    return _LPS_TO_RAS @ affine


def _read_itk(path: Path, dtype: type | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_nifti` for ``.mha``/``.mhd``/``.nrrd`` (SimpleITK; its truncation check:
    ITK raises on a short data block, which it does not for a gzipped NIfTI)."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise NiftiError(path, f"not an image SimpleITK can read ({reason})") from None
    data = sitk.GetArrayFromImage(image)  # (z, y, x) or (z, y, x, components)
    axes = image.GetDimension()
    data = np.transpose(data, (*reversed(range(axes)), *range(axes, data.ndim)))
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    return data, _itk_affine(image)


def read_header(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """``(shape, affine)`` of an image file without reading its voxels (NIfTI or ITK)."""
    path = Path(path)
    if path.name.lower().endswith(ITK_SUFFIXES):
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise NiftiError(path, "not an image SimpleITK can read") from None
        return tuple(int(s) for s in reader.GetSize()), _itk_affine(reader)
    try:
        image = nib.load(str(path))
    except Exception as error:  # noqa: BLE001 - any failure to read is this file's problem
        raise NiftiError(path, _explain(path, error)) from None
    return tuple(int(s) for s in image.shape), np.asarray(image.affine, dtype=np.float64)


def squeeze_to_3d(data: np.ndarray, path: str | Path) -> np.ndarray:
    """Drop trailing length-1 axes beyond the third (a 4D file holding one volume).

    Raises:
        NiftiError: fewer than 3 axes, or several volumes along the 4th axis and beyond.
    """
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3:
        volumes = int(np.prod(data.shape[3:]))
        shape = "x".join(str(s) for s in data.shape)
        raise NiftiError(
            path,
            f"{data.ndim}D image with {volumes} volumes (shape {shape}); expected one 3D volume "
            "(pick one, e.g. with nibabel's four_to_three or fslroi)",
        )
    if data.ndim < 3:
        shape = "x".join(str(s) for s in data.shape)
        raise NiftiError(path, f"{data.ndim}D image (shape {shape}); expected a 3D volume")
    return data


def load_volume(path: str | Path, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI volume fully into memory.

    A 4D image holding one volume is squeezed to 3D.

    Returns:
        ``(array, affine)``: the voxel data as ``dtype`` and the 4x4 voxel-to-RAS affine.

    Raises:
        LesionresError: missing, truncated or corrupt file, or not a single 3D volume
            (a :class:`NiftiError` naming the file).
    """
    data, affine = read_nifti(path, dtype=np.float32)
    data = squeeze_to_3d(data, path)
    return data.astype(dtype, copy=False), affine


def save_volume(path: str | Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write ``data`` with ``affine`` atomically (temporary file in the same folder, then rename).

    Integer and boolean data are stored as ``uint8``; anything else as ``float32``. A reader
    never sees a half-written file, and no temporary file is left behind, also on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    if data.dtype == bool or np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.uint8)
    else:
        data = data.astype(np.float32)
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path
