"""A corpus of bad inputs, each with its documented outcome, written into tiny datasets.

Shared by the checks' tests (:mod:`test_subject_check`, :mod:`test_validation`) and by the runs
that must stop on them (:mod:`test_bad_input_runs`).
"""

from pathlib import Path

import nibabel as nib
import numpy as np
from fakes import (
    affine_for,
    make_atlas_tree,
    make_folder_tree,
    make_isles_tree,
    truncate_file,
    write_volume,
)

__all__ = [
    "CASES",
    "CORPUS",
    "LAYOUT_TEXTS",
    "N_GOOD",
    "SHAPE",
    "mask_data",
    "write_case",
    "write_corpus",
]


SHAPE = (16, 16, 16)


def image_data():
    return np.random.default_rng(1).normal(1.0, 0.1, SHAPE).astype(np.float32)


def mask_data(value=1, dtype=np.uint8):
    mask = np.zeros(SHAPE, dtype)
    mask[5:9, 5:9, 5:9] = value
    return mask


def shifted(delta):
    # on the voxel size: NIfTI stores affines as float32, whose step near the ATLAS origin
    # (98 mm) is 8e-6, so a 1e-7 shift of the origin would vanish on writing
    affine = affine_for()
    affine[0, 0] += delta
    return affine


# name -> (file to overwrite, data, affine, binarize, level, message part, exit status)
CASES = {
    "truncated": ("image", None, None, "strict", "error", "truncated file", 1),
    "nan": ("image", "nan", None, "strict", "error", "3 NaN and 1 infinite voxels", 1),
    "4d_two_volumes": ("image", "4d2", None, "strict", "error", "4D image with 2 volumes", 1),
    "4d_one_volume": ("image", "4d1", None, "strict", "info", "holding one volume", 0),
    "constant_image": ("image", "zeros", None, "strict", "error", "constant image", 1),
    "mask_255_strict": ("mask", mask_data(255), None, "strict", "error", "values {0, 255}", 1),
    "mask_255_nonzero": ("mask", mask_data(255), None, "nonzero", "info", "binarised as > 0", 0),
    "mask_labels_half": (
        "mask",
        mask_data(2) + mask_data(1)[::-1],
        None,
        "half",
        "info",
        ">= 1.5",
        0,
    ),
    "float_mask": (
        "mask",
        mask_data(0.9999999998, np.float64),
        None,
        "strict",
        "warning",
        "rounded",
        0,
    ),
    "empty_mask": ("mask", np.zeros(SHAPE, np.uint8), None, "strict", "warning", "empty mask", 0),
    "shape_mismatch": (
        "mask",
        mask_data()[:, :, :12],
        None,
        "strict",
        "error",
        "shape 16x16x16 differs from its mask's 16x16x12",
        1,
    ),
    "affine_1e-3": (
        "mask",
        mask_data(),
        shifted(1e-3),
        "strict",
        "error",
        "affines differ by 0.001",
        1,
    ),
    "affine_1e-7": ("mask", mask_data(), shifted(1e-7), "strict", "info", "within 1e-05 mm", 0),
    # "shift": the file's own grid moved by 0.5 mm along x
    "mask_shifted_0.5mm": (
        "mask",
        mask_data(),
        "shift",
        "strict",
        "error",
        "affines differ by 0.5",
        1,
    ),
}


# geometry findings name the image (and the mask's file name in the message)
NAMES_IMAGE = {"shape_mismatch", "affine_1e-3", "affine_1e-7", "mask_shifted_0.5mm"}


def _bad_data(kind):
    image = image_data()
    if kind == "nan":
        image.flat[[3, 30, 300]] = np.nan
        image.flat[400] = np.inf
    elif kind == "4d2":
        image = np.stack([image, image], axis=-1)
    elif kind == "4d1":
        image = image[..., None]
    elif kind == "zeros":
        image = np.zeros(SHAPE, np.float32)
    return image


def spoil(image: Path, mask: Path, name: str) -> Path:
    """Overwrite ``image`` or ``mask`` with bad input ``name`` of CASES, on that file's own grid.

    Returns:
        The file the finding about it names.
    """
    which, data, affine, *_ = CASES[name]
    target = image if which == "image" else mask
    own = nib.load(str(target)).affine
    if affine is None:
        affine = own
    elif isinstance(affine, str):  # "shift"
        affine = own.copy()
        affine[0, 3] += 0.5
    if which == "image" and data is None:
        truncate_file(image)
    elif which == "image":
        write_volume(image, _bad_data(data), affine)
    else:
        write_volume(mask, data, affine)
    return image if name in NAMES_IMAGE else target


def write_case(root, name: str, n: int = 2) -> dict:
    """A folder dataset of ``n`` subjects whose second holds bad input ``name``; its facts."""
    _, _, _, binarize, level, message, status = CASES[name]
    bad = make_folder_tree(root, n=n, shape=SHAPE)[1]
    return {
        "name": name,
        "root": root,
        "path": spoil(bad["image"], bad["mask"], name),
        "binarize": binarize,
        "level": level,
        "message": message,
        "status": status,
    }


# one broken subject per case, then an image without its mask, a mask without its image and a
# subject id twice; N_GOOD good subjects last
CORPUS = (
    "truncated",
    "nan",
    "mask_255_strict",
    "shape_mismatch",
    "mask_shifted_0.5mm",
    "constant_image",
    "4d_two_volumes",
)


N_GOOD = 4


# layout -> (image without its mask, mask without its image, a file matching no name)
LAYOUT_TEXTS = {
    "atlas": ("no lesion mask beside it", "no T1w image beside this mask", "T2w.nii.gz"),
    "isles22": ("no lesion mask for", "no dwi image for", "T2w.nii.gz"),
    "folder": ("no mask found for", "no image found for this mask", "README.txt"),
}


def _second_copy(layout: str, root: Path, subject: dict) -> list[tuple[Path, Path]]:
    """``(source, copy)`` files that give ``subject``'s id a second image elsewhere."""
    sid, image = subject["id"], subject["image"]
    if layout == "atlas":  # the same subject in another cohort's folder
        folder = root / "ATLAS_2" / "Training" / "R009" / sid / "ses-1" / "anat"
        return [(image, folder / image.name), (subject["mask"], folder / subject["mask"].name)]
    if layout == "isles22":  # the release zip's layout beside rawdata/
        return [(image, root / sid / "ses-0001" / "dwi" / image.name)]
    return [(image, image.with_name(f"{sid}.nii"))]  # images/<id>.nii beside <id>.nii.gz


def write_corpus(
    root: Path, layout: str, broken: bool = True
) -> tuple[dict[str, tuple[Path, str]], list[str], Path]:
    """A dataset in ``layout`` with every kind of broken subject beside good ones (issue 22).

    Returns:
        ``({broken id: (file named, message part)}, good ids, the file matching no name)``.
    """
    n = len(CORPUS) + 3 + N_GOOD if broken else N_GOOD
    if layout == "atlas":
        subjects = make_atlas_tree(root, n=n, shape=SHAPE)
    elif layout == "isles22":
        subjects = [{**s, "image": s["dwi"]} for s in make_isles_tree(root, n=n, shape=SHAPE)]
    else:
        subjects = make_folder_tree(root, n=n, shape=SHAPE)
    no_mask_text, no_image_text, stray_name = LAYOUT_TEXTS[layout]
    good = subjects[-N_GOOD:]
    stray = good[0]["image"].with_name(stray_name)
    stray.write_bytes(good[0]["image"].read_bytes())
    expected: dict[str, tuple[Path, str]] = {}
    if broken:
        for subject, name in zip(subjects, CORPUS, strict=False):
            expected[subject["id"]] = (
                spoil(subject["image"], subject["mask"], name),
                CASES[name][5],
            )
        no_mask, no_image, twice = subjects[len(CORPUS) : len(CORPUS) + 3]
        no_mask["mask"].unlink()
        expected[no_mask["id"]] = (no_mask["image"], no_mask_text)
        no_image["image"].unlink()
        expected[no_image["id"]] = (no_image["mask"], no_image_text)
        for source, copy in _second_copy(layout, root, twice):
            copy.parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.load(str(source)), str(copy))
        expected[twice["id"]] = (twice["image"], f"duplicate subject id {twice['id']}")
    return expected, [s["id"] for s in good], stray
