"""The check before ``fit`` / ``test``: every error listed at once, passes cached."""

import json
import os

import pytest
from bad_inputs import SHAPE, mask_data
from fakes import make_atlas_tree, make_folder_tree, make_isles_tree, truncate_file, write_volume

from lesionres.data import run_check
from lesionres.data.layouts import SubjectRecord, find_atlas, find_folder, find_isles
from lesionres.data.run_check import validate_for_run
from lesionres.errors import LesionresError


@pytest.fixture
def counted(monkeypatch):
    """Count calls of check_subject made by validate_for_run."""
    calls = []
    original = run_check.check_subject

    def counting(record, **kwargs):
        calls.append(record.subject_id)
        return original(record, **kwargs)

    monkeypatch.setattr(run_check, "check_subject", counting)
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
    write_volume(subjects[3]["mask"], mask_data(255))
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
