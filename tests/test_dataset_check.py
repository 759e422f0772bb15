"""A whole dataset checked: every subject, duplicate ids, leaks between splits, ISLES grids."""

import json

import numpy as np
import pytest
from bad_inputs import SHAPE
from fakes import affine_for, make_folder_tree, make_isles_tree, write_volume

from lesionres.commands.data import check_main
from lesionres.data.dataset_check import check_records, load_split
from lesionres.data.findings import Finding
from lesionres.data.layouts import discover, find_folder, find_isles
from lesionres.errors import LesionresError


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


def test_progress_bar_above_twenty_subjects(tmp_path, capsys):
    make_folder_tree(tmp_path, n=21, shape=(6, 6, 6))
    checks = check_records(find_folder(tmp_path))
    assert len(checks) == 21 and "checking: 100%" in capsys.readouterr().err
    check_records(find_folder(tmp_path)[:20])
    assert "checking" not in capsys.readouterr().err
