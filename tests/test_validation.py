"""Dataset checks: a corpus of bad inputs, each with its documented outcome.

Every case is written into a tiny plain-folder dataset (one good subject, one bad) and goes
through :func:`check_subject` and through ``python -m lesionres check`` (:func:`check_main`:
exit status and the printed ``path: message`` line). Then the dataset-level checks, the
finders' errors, ISLES specifics, :func:`read_mask` and the cache of :func:`validate_for_run`.
"""

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fakes import (
    affine_for,
    make_atlas_tree,
    make_folder_tree,
    make_isles_tree,
    truncate_file,
    write_volume,
)

from lesionres.data import validation
from lesionres.data.layouts import (
    SubjectRecord,
    discover,
    find_atlas,
    find_folder,
    find_isles,
)
from lesionres.data.validation import (
    Finding,
    check_main,
    check_records,
    check_subject,
    load_split,
    read_mask,
    validate_for_run,
)
from lesionres.errors import LesionresError

SHAPE = (16, 16, 16)


def _image():
    return np.random.default_rng(1).normal(1.0, 0.1, SHAPE).astype(np.float32)


def _mask(value=1, dtype=np.uint8):
    mask = np.zeros(SHAPE, dtype)
    mask[5:9, 5:9, 5:9] = value
    return mask


def _shifted(delta):
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
    "mask_255_strict": ("mask", _mask(255), None, "strict", "error", "values {0, 255}", 1),
    "mask_255_nonzero": ("mask", _mask(255), None, "nonzero", "info", "binarised as > 0", 0),
    "mask_labels_half": ("mask", _mask(2) + _mask(1)[::-1], None, "half", "info", ">= 1.5", 0),
    "float_mask": (
        "mask",
        _mask(0.9999999998, np.float64),
        None,
        "strict",
        "warning",
        "rounded",
        0,
    ),
    "empty_mask": ("mask", np.zeros(SHAPE, np.uint8), None, "strict", "warning", "empty mask", 0),
    "shape_mismatch": (
        "mask",
        _mask()[:, :, :12],
        None,
        "strict",
        "error",
        "shape 16x16x16 differs from its mask's 16x16x12",
        1,
    ),
    "affine_1e-3": (
        "mask",
        _mask(),
        _shifted(1e-3),
        "strict",
        "error",
        "affines differ by 0.001",
        1,
    ),
    "affine_1e-7": ("mask", _mask(), _shifted(1e-7), "strict", "info", "within 1e-05 mm", 0),
    # "shift": the file's own grid moved by 0.5 mm along x
    "mask_shifted_0.5mm": ("mask", _mask(), "shift", "strict", "error", "affines differ by 0.5", 1),
}


# geometry findings name the image (and the mask's file name in the message)
NAMES_IMAGE = {"shape_mismatch", "affine_1e-3", "affine_1e-7", "mask_shifted_0.5mm"}


def _bad_data(kind):
    image = _image()
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


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path):
    return write_case(tmp_path / "data", request.param)


def test_check_subject_outcome(case):
    records = find_folder(case["root"])
    good, bad = (check_subject(r, binarize=case["binarize"]) for r in records)
    assert good.status == "ok" and good.shape == SHAPE and good.orientation == "RAS"
    matching = [f for f in bad.findings if case["message"] in f.message]
    assert matching, bad.findings
    assert matching[0].level == case["level"]
    assert matching[0].path == case["path"]
    expected_status = {"info": "ok"}.get(case["level"], case["level"])
    assert bad.status == expected_status


def test_check_main_outcome(case, capsys):
    argv = [str(case["root"]), "--binarize", case["binarize"], "--dataset", "folder"]
    assert check_main(argv) == case["status"]
    out = capsys.readouterr().out
    if case["level"] != "info":
        # the summary lists every problem as `path: message` on one line
        line = next(line for line in out.splitlines() if line.strip().startswith(str(case["path"])))
        assert case["message"] in line
    assert ("0 with errors" in out) == (case["status"] == 0)


def test_mask_255_under_nonzero_counts_the_lesion(tmp_path):
    subjects = make_folder_tree(tmp_path, n=1, shape=SHAPE)
    write_volume(subjects[0]["mask"], _mask(255))
    (record,) = find_folder(tmp_path)
    check = check_subject(record, binarize="nonzero")
    assert check.mask_voxels == 64 and check.lesion_ml == pytest.approx(0.064)


def test_isles_flair_on_its_own_grid_is_expected(tmp_path):
    make_isles_tree(tmp_path, n=2, layout="zip")
    checks = check_records(find_isles(tmp_path, "flair"))
    assert all(c.status == "ok" for c in checks)
    assert all(any("FLAIR on its own grid" in f.message for f in c.findings) for c in checks)


def test_isles_dwi_with_a_mask_on_another_grid_is_an_error(tmp_path):
    subjects = make_isles_tree(tmp_path, n=1, layout="rawdata")
    write_volume(subjects[0]["mask"], np.zeros((16, 16, 9), np.uint8), affine_for((2, 2, 2)))
    (check,) = check_records(find_isles(tmp_path, "dwi"))
    assert check.status == "error" and "differs from its mask's" in check.errors[0].message


@pytest.mark.parametrize("layout", ["rawdata", "zip"])
def test_isles_float_masks_warn_and_pass(tmp_path, layout):
    make_isles_tree(tmp_path, n=2, layout=layout, float_masks=True)
    checks = check_records(find_isles(tmp_path), workers=1)
    assert [c.status for c in checks] == ["warning", "warning"]
    assert all(c.mask_voxels > 0 and c.shape == (16, 16, 8) for c in checks)


def test_missing_mask_is_a_finding_of_its_subject(tmp_path, capsys):
    subjects = make_atlas_tree(tmp_path, n=2)
    subjects[1]["mask"].unlink()
    assert check_main([str(tmp_path)]) == 1  # the table, not a stop at the first problem
    out = capsys.readouterr().out
    assert "1 ok, 0 with warnings, 1 with errors" in out
    assert f"{subjects[1]['image']}: no lesion mask beside it" in out


def test_no_dataset_found(tmp_path, capsys):
    assert check_main([str(tmp_path), "--dataset", "atlas"]) == 2
    assert "no ATLAS v2.0 images found" in capsys.readouterr().err
    assert check_main([str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_duplicate_subject_ids(tmp_path, capsys):
    subjects = make_folder_tree(tmp_path, n=2, shape=SHAPE)
    table = tmp_path / "subjects.csv"
    table.write_text(
        "subject_id,image,mask\n" + "".join(f"case,{s['image']},{s['mask']}\n" for s in subjects)
    )
    checks = check_records(find_folder(table))
    assert [c.status for c in checks] == ["error", "error"]
    assert "duplicate subject id case" in checks[0].errors[0].message
    assert check_main([str(table)]) == 1
    assert f"{subjects[1]['image']}: duplicate subject id case" in capsys.readouterr().out


def test_subject_in_two_splits(tmp_path, capsys):
    make_folder_tree(tmp_path / "data", n=3, shape=SHAPE)
    split = tmp_path / "split.json"
    parts = {"train": ["case001", "case002"], "test": ["case002", "case003"]}
    split.write_text(json.dumps({**parts, "seed": 1}))  # extra keys as split.py writes them
    assert load_split(split) == parts
    checks = check_records(find_folder(tmp_path / "data"), parts, split_path=split)
    assert [c.status for c in checks] == ["ok", "error", "ok"]
    assert checks[1].errors[0] == Finding(
        "error", split, "subject case002 is in train and test: a leak between splits"
    )
    assert check_main([str(tmp_path / "data"), "--split", str(split)]) == 1
    assert f"{split}: subject case002 is in train and test" in capsys.readouterr().out


def test_split_naming_unknown_subjects(tmp_path, capsys):
    make_folder_tree(tmp_path / "data", n=2, shape=SHAPE)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["case001", "case009"], "val": [], "test": ["case002"]}))
    assert check_main([str(tmp_path / "data"), "--split", str(split)]) == 1
    out = capsys.readouterr().out
    assert f"{split}: 1 subject in the split not in the dataset (first: case009)" in out


def test_atlas_tree_passes(tmp_path, capsys):
    subjects = make_atlas_tree(tmp_path, n=3, cohorts=("R001", "R002"))
    assert check_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dataset atlas (detected)" in out and "3 ok, 0 with warnings, 0 with errors" in out
    assert all(s["id"] in out for s in subjects)


# --------------------------------------------------------------------------- every problem at once

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


@pytest.mark.parametrize("layout", sorted(LAYOUT_TEXTS))
def test_check_lists_every_problem_at_once(tmp_path, capsys, layout):
    broken, good, stray = write_corpus(tmp_path / "data", layout)
    assert check_main([str(tmp_path / "data"), "-v"]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert captured.err == "" and "Traceback" not in out
    assert f"{len(broken) + N_GOOD} subjects (15 rows: an id found twice) in " in out
    assert f"dataset {layout} (detected)" in out
    statuses: dict[str, list[str]] = {}  # subject id -> the status of each of its table rows
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] in {*broken, *good}:
            status = next(s for s in ("error", "warning", "ok") if s in cells)
            statuses.setdefault(cells[0], []).append(status)
    assert statuses == {
        **{sid: ["ok"] for sid in good},
        **{sid: ["error"] * (2 if "duplicate" in text else 1) for sid, (_, text) in broken.items()},
    }
    assert f"{N_GOOD} ok, 0 with warnings, {len(broken) + 1} with errors" in out
    lines = [line.strip() for line in out.splitlines()]
    for sid, (path, text) in broken.items():
        assert any(line.startswith(f"{path}: ") and text in line for line in lines), (sid, text)
    assert any(line.startswith(f"{stray}: matches no ") for line in lines)  # a note under -v


@pytest.mark.parametrize("layout", sorted(LAYOUT_TEXTS))
def test_check_passes_the_good_subjects_alone(tmp_path, capsys, layout):
    _, good, stray = write_corpus(tmp_path / "data", layout, broken=False)
    assert check_main([str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert f"{len(good)} ok, 0 with warnings, 0 with errors" in out
    assert str(stray) not in out  # files matching no name are notes: only with -v


def test_finders_raise_with_every_error_listed(tmp_path):
    subjects = make_folder_tree(tmp_path, n=3, shape=SHAPE)
    table = tmp_path / "subjects.csv"
    table.write_text(
        "image,mask\n"
        f"{subjects[0]['image']},{subjects[0]['mask']}\n"
        f"{tmp_path / 'gone.nii.gz'},{subjects[1]['mask']}\n"
        f"{subjects[2]['image']},\n"
    )
    with pytest.raises(LesionresError) as info:
        find_folder(table)  # what the data module calls outside `fit`/`test`
    assert str(info.value).splitlines() == [
        f"{table}: 2 errors in the dataset's files:",
        f"  {table}: line 3: image file {tmp_path / 'gone.nii.gz'} does not exist",
        f"  {table}: line 4: no mask given for case003.nii.gz",
        f"Run `python -m lesionres check {table} --dataset folder` for the full table.",
    ]
    checks = check_records(discover("folder", table).records)  # the rest is still read
    assert [c.status for c in checks] == ["ok", "error", "error"]
    assert checks[1].mask_voxels > 0 and len(checks[1].errors) == 1  # no second line


def test_unreadable_folder_is_an_error_beside_the_table(tmp_path, capsys, monkeypatch):
    subjects = make_atlas_tree(tmp_path, n=4)
    locked = tmp_path / "ATLAS_2" / "Training" / "R002"
    scandir = os.scandir

    def refusing(path="."):  # chmod does not stop root, who runs the tests in containers
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    assert check_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{locked}: unreadable folder (Permission denied)" in out
    assert "2 ok, 0 with warnings, 0 with errors" in out
    assert all(s["id"] in out for s in subjects[::2])  # R001's subjects


def test_atlas_testing_folder_without_masks_is_left_out(tmp_path, capsys):
    make_atlas_tree(tmp_path, n=2)
    image = make_atlas_tree(tmp_path / "t", n=1)[0]["image"]
    testing = tmp_path / "ATLAS_2" / "Testing" / "R001" / "sub-r001s901" / "ses-1" / "anat"
    testing.mkdir(parents=True)
    image.rename(testing / image.name.replace("sub-r001s001", "sub-r001s901"))
    assert len(find_atlas(tmp_path / "ATLAS_2")) == 2
    assert check_main([str(tmp_path / "ATLAS_2"), "-v"]) == 0
    assert "1 image without masks (ATLAS's test set): not used" in capsys.readouterr().out


# --------------------------------------------------------------------------- read_mask


def test_read_mask_rules(tmp_path):
    path = write_volume(tmp_path / "m.nii.gz", _mask(255))
    with pytest.raises(LesionresError, match=r"m\.nii\.gz: mask is not binary"):
        read_mask(path)
    mask, affine = read_mask(path, binarize="nonzero")
    assert mask.dtype == np.uint8 and mask.sum() == 64 and affine.shape == (4, 4)

    rounded, _ = read_mask(write_volume(tmp_path / "f.nii.gz", _mask(0.9999999998, np.float64)))
    assert rounded.dtype == np.uint8 and set(np.unique(rounded)) == {0, 1} and rounded.sum() == 64

    probabilities = _mask(0.8, np.float32) + np.float32(0.3)
    half, _ = read_mask(write_volume(tmp_path / "p.nii.gz", probabilities), binarize="half")
    assert half.sum() == 64  # 1.1 >= 0.55 > 0.3


def test_read_mask_rejects_truncated_and_nan(tmp_path):
    path = truncate_file(write_volume(tmp_path / "m.nii.gz", _mask()))
    with pytest.raises(LesionresError, match="truncated file"):
        read_mask(path)
    nan = _mask(1, np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(LesionresError, match="1 NaN"):
        read_mask(write_volume(tmp_path / "n.nii.gz", nan), binarize="nonzero")


# --------------------------------------------------------------------------- validate_for_run


@pytest.fixture
def counted(monkeypatch):
    """Count calls of check_subject made by validate_for_run."""
    calls = []
    original = validation.check_subject

    def counting(record, **kwargs):
        calls.append(record.subject_id)
        return original(record, **kwargs)

    monkeypatch.setattr(validation, "check_subject", counting)
    return calls


def test_cache_skips_unchanged_files(tmp_path, counted):
    subjects = make_atlas_tree(tmp_path / "data", n=3)
    records = find_atlas(tmp_path / "data")
    cache = tmp_path / "splits" / "check-cache.json"
    assert validate_for_run(records, cache) == []
    assert len(counted) == 3 and json.loads(cache.read_text())["version"] == 1
    assert [p.name for p in cache.parent.iterdir()] == ["check-cache.json"]  # no temp file left

    validate_for_run(records, cache)
    assert len(counted) == 3  # all from the cache

    stat = subjects[1]["mask"].stat()
    os.utime(subjects[1]["mask"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    validate_for_run(records, cache)
    assert counted[3:] == [subjects[1]["id"]]

    validate_for_run(records, cache, binarize="nonzero")  # other options: checked again
    assert len(counted) == 7


def test_cached_warnings_are_returned_again(tmp_path, counted):
    make_isles_tree(tmp_path, n=2, float_masks=True)
    records = find_isles(tmp_path)
    cache = tmp_path / "cache.json"
    first = validate_for_run(records, cache)
    second = validate_for_run(records, cache)
    assert len(counted) == 2
    assert first == second and len(first) == 2 and "rounded" in first[0].message


def test_failures_raise_one_line_and_are_not_cached(tmp_path, counted):
    subjects = make_atlas_tree(tmp_path / "data", n=4)
    truncate_file(subjects[1]["image"])
    write_volume(subjects[3]["mask"], _mask(255))
    records = find_atlas(tmp_path / "data")
    cache = tmp_path / "cache.json"
    with pytest.raises(LesionresError) as info:
        validate_for_run(records, cache)
    lines = str(info.value).splitlines()  # every error on its own line, then the hint
    assert lines[0] == "2 subjects failed the check (2 errors):"
    assert lines[1].startswith(f"  {subjects[1]['image']}: truncated file")
    assert lines[2].startswith(f"  {subjects[3]['mask']}: mask is not binary")
    assert lines[3].startswith("Run `python -m lesionres check ") and len(lines) == 4
    with pytest.raises(LesionresError):
        validate_for_run(records, cache)
    assert sorted(counted[4:]) == sorted([subjects[1]["id"], subjects[3]["id"]])


def test_validate_for_run_rejects_duplicate_ids(tmp_path):
    subjects = make_folder_tree(tmp_path, n=2, shape=SHAPE)
    records = [SubjectRecord("same", s["image"], s["mask"], "folder") for s in subjects]
    expected = r"1 subject failed the check \(2 errors\):\n.*duplicate"
    with pytest.raises(LesionresError, match=expected):
        validate_for_run(records, None)


def test_damaged_cache_is_ignored(tmp_path):
    make_folder_tree(tmp_path / "data", n=1, shape=SHAPE)
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    assert validate_for_run(find_folder(tmp_path / "data"), cache, workers=1) == []
    assert json.loads(cache.read_text())["entries"]


def test_progress_bar_above_twenty_subjects(tmp_path, capsys):
    make_folder_tree(tmp_path, n=21, shape=(6, 6, 6))
    checks = check_records(find_folder(tmp_path))
    assert len(checks) == 21 and "checking: 100%" in capsys.readouterr().err
    check_records(find_folder(tmp_path)[:20])
    assert "checking" not in capsys.readouterr().err
