"""``python -m lesionres check``: each bad input of the corpus (:mod:`bad_inputs`) in its exit
status and printed ``path: message`` line; every problem of a dataset listed at once; the
finders' errors beside the table."""

import json
import os
from pathlib import Path

import pytest
from bad_inputs import CASES, LAYOUT_TEXTS, N_GOOD, SHAPE, write_case, write_corpus
from fakes import make_atlas_tree, make_folder_tree

from lesionres.commands.data import check_main
from lesionres.data.layouts import find_atlas


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path):
    return write_case(tmp_path / "data", request.param)


def test_check_main_outcome(case, capsys):
    argv = [str(case["root"]), "--binarize", case["binarize"], "--dataset", "folder"]
    assert check_main(argv) == case["status"]
    out = capsys.readouterr().out
    if case["level"] != "info":
        # the summary lists every problem as `path: message` on one line
        line = next(line for line in out.splitlines() if line.strip().startswith(str(case["path"])))
        assert case["message"] in line
    assert ("0 with errors" in out) == (case["status"] == 0)


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
