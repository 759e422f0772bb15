"""`lesionres.files`: atomic writes leave the old file or the new one, never half of one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from lesionres.files import (
    CsvAppender,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    file_key,
    package_versions,
    strip_image_suffix,
    write_csv,
    write_json,
)


def test_atomic_writes_create_folders_and_leave_no_temporary_file(tmp_path):
    text = atomic_write_text(tmp_path / "a" / "b.txt", "héllo\n")
    assert text.read_text(encoding="utf-8") == "héllo\n"
    assert atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert json.loads(write_json(tmp_path / "d.json", {"x": [1, 2]}).read_text()) == {"x": [1, 2]}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "b.txt", "c.bin", "d.json",
    ]  # fmt: skip


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = atomic_write_text(tmp_path / "t.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_atomic_path_keeps_the_suffixes_writers_choose_formats_by(tmp_path):
    with atomic_path(tmp_path / "scan.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "scan.nii.gz").read_bytes() == b"x"


def test_csv_write_and_append(tmp_path):
    table = write_csv(tmp_path / "r.csv", [{"a": 1, "b": 2, "extra": 3}], ["a", "b"])
    with CsvAppender(table, ["a", "b"]) as rows:
        rows.append({"a": 4, "b": 5})
        assert table.read_text().splitlines()[-1] == "4,5"  # flushed row by row
    with CsvAppender(tmp_path / "new" / "n.csv", ["a"]) as rows:
        rows.append({"a": "x"})
    with table.open() as handle:
        assert list(csv.DictReader(handle)) == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]
    assert (tmp_path / "new" / "n.csv").read_text().splitlines() == ["a", "x"]


def test_file_key_changes_with_the_content(tmp_path):
    path = atomic_write_text(tmp_path / "f.txt", "one")
    before = file_key(path)
    atomic_write_text(path, "three")
    assert file_key(path) != before and file_key(path)[0] == str(path.resolve())
    assert file_key(None) == [None]
    with pytest.raises(OSError):
        file_key(tmp_path / "absent")


def test_strip_image_suffix_and_versions():
    assert strip_image_suffix("sub-1_T1w.nii.gz") == "sub-1_T1w"
    assert strip_image_suffix("SUB.NII") == "SUB" and strip_image_suffix("notes.txt") == "notes.txt"
    assert strip_image_suffix("b.mha") == "b" and strip_image_suffix("c.nrrd") == "c"
    versions = package_versions(["numpy", "no-such-package-here"])
    assert versions["numpy"][0].isdigit() and versions["no-such-package-here"] == "unknown"


def test_files_imports_no_torch():
    code = "import sys, lesionres.files; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
