"""Subject-level splits: the study's 400/100/155, determinism, disjointness, frozen files."""

import json

import pytest

from lesionres.data.split import (
    STUDY_TEST_FRACTION,
    STUDY_VAL_FRACTION,
    load_or_make_split,
    make_split,
)
from lesionres.errors import LesionresError

IDS = [f"sub-r{c:03d}s{s:03d}" for c in range(1, 34) for s in range(1, 21)][:655]


def test_study_proportions_are_exact():
    split = make_split(IDS, STUDY_VAL_FRACTION, STUDY_TEST_FRACTION, seed=0)
    assert [len(split[k]) for k in ("train", "val", "test")] == [400, 100, 155]


def test_same_seed_same_split_and_no_subject_twice():
    a = make_split(IDS, 0.2, 0.2, seed=7)
    b = make_split(list(reversed(IDS)), 0.2, 0.2, seed=7)
    assert a == b
    parts = [set(a[k]) for k in ("train", "val", "test")]
    assert set.union(*parts) == set(IDS)
    assert sum(map(len, parts)) == len(IDS)
    assert make_split(IDS, 0.2, 0.2, seed=8) != a


def test_split_file_is_written_then_reused(tmp_path):
    path = tmp_path / "split.json"
    first = load_or_make_split(path, IDS[:20], 0.2, 0.2, seed=1)
    assert json.loads(path.read_text())["train"] == first["train"]
    # a later run with other fractions reuses the frozen file
    assert load_or_make_split(path, IDS[:20], 0.5, 0.1, seed=99) == first


def test_split_file_with_unknown_or_repeated_subjects_is_refused(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["a", "b"], "val": ["b"], "test": []}))
    with pytest.raises(LesionresError, match="both train and val"):
        load_or_make_split(path, ["a", "b"], 0.2, 0.2, 0)
    path.write_text(json.dumps({"train": ["a", "zzz"], "val": [], "test": []}))
    with pytest.raises(LesionresError, match="not in the dataset"):
        load_or_make_split(path, ["a", "b"], 0.2, 0.2, 0)


def test_bad_fractions_and_duplicates_are_refused():
    with pytest.raises(LesionresError, match="leave subjects"):
        make_split(IDS, 0.6, 0.5, 0)
    with pytest.raises(LesionresError, match="duplicate"):
        make_split(["a", "a", "b"], 0.2, 0.2, 0)
