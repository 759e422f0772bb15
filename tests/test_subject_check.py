"""One subject checked completely: each bad input of the corpus gives its documented finding."""

import pytest
from bad_inputs import CASES, SHAPE, mask_data, write_case
from fakes import make_folder_tree, write_volume

from lesionres.data.layouts import find_folder
from lesionres.data.subject_check import check_subject


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


def test_mask_255_under_nonzero_counts_the_lesion(tmp_path):
    subjects = make_folder_tree(tmp_path, n=1, shape=SHAPE)
    write_volume(subjects[0]["mask"], mask_data(255))
    (record,) = find_folder(tmp_path)
    check = check_subject(record, binarize="nonzero")
    assert check.mask_voxels == 64 and check.lesion_ml == pytest.approx(0.064)
