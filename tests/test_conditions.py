"""Named conditions: naming, validation, presets."""

import pytest

from lesionres.conditions import Condition, preset_conditions
from lesionres.errors import LesionresError


def test_names_are_derived_from_method_and_resolution():
    assert Condition().name == "original"
    assert Condition(method="crude", factor=[2]).name == "crude_x2"
    assert Condition(method="linear", factor=[2, 2, 1]).name == "linear_x2x2x1"
    assert Condition(method="acquisition", spacing=[1, 1, 5]).name == "acquisition_1x1x5mm"
    assert Condition(method="acquisition", spacing=[1, 1, 5]).spacing_label == "1x1x5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "cubic", "factor": [2]}, "unknown method"),
        ({"method": "linear", "factor": [0.5]}, "below 1"),
        ({"method": "linear"}, "needs a factor"),
        ({"method": "crude", "factor": [1.5]}, "whole factors"),
        ({"method": "acquisition"}, "factor or spacing"),
        ({"method": "linear", "factor": [2, 2]}, "one positive number or three"),
    ],
)
def test_bad_conditions_fail_with_one_clear_message(kwargs, message):
    with pytest.raises(LesionresError, match=message):
        Condition(**kwargs)


def test_presets():
    assert [c.name for c in preset_conditions("study")] == [
        "original",
        "crude_x2",
        "linear_x2",
        "acquisition_1x1x5mm",
    ]
    sweep = [c.name for c in preset_conditions("sweep")]
    assert "linear_x3" in sweep and "acquisition_1x1x7mm" in sweep and len(set(sweep)) == len(sweep)


def test_test_spacing_is_the_voxel_size_the_scan_gets():
    assert Condition().test_spacing_label([2, 2, 2]) == "2"
    assert Condition(method="linear", factor=[3]).test_spacing_label([2, 2, 2]) == "6"
    assert Condition(method="crude", factor=[1, 1, 2]).test_spacing_label([1, 1, 1.5]) == "1x1x3"
    # a target finer than the scan on an axis leaves that axis alone
    assert (
        Condition(method="acquisition", spacing=[1, 1, 5]).test_spacing_label([2, 2, 2]) == "2x2x5"
    )
    assert Condition(method="acquisition", spacing=[3]).test_spacing_label([0.9, 0.9, 5]) == "3x3x5"


def test_acquisition_options_keep_default_names_and_name_the_others():
    assert Condition(method="acquisition", spacing=[1, 1, 5]).name == "acquisition_1x1x5mm"
    assert Condition(method="acquisition", factor=[3]).name == "acquisition_x3"
    gaussian = Condition(method="acquisition", spacing=[1, 1, 5], profile="gaussian")
    assert gaussian.name == "acquisition_1x1x5mm_gaussian"
    gap = Condition(method="acquisition", spacing=[1, 1, 5], thickness=3)
    assert gap.name == "acquisition_1x1x5mm_thick3mm"
    assert gap.transform().slice_thickness == 3
    old = Condition(method="acquisition", spacing=[3], profile="synthseg_augmentation")
    assert old.name == "acquisition_3mm_synthseg_augmentation"
    with pytest.raises(LesionresError, match="acquisition method only"):
        Condition(method="linear", factor=[2], profile="gaussian")
    with pytest.raises(LesionresError, match="unknown profile"):
        Condition(method="acquisition", spacing=[3], profile="synthseg")
    with pytest.raises(LesionresError, match="slice axis"):
        Condition(method="acquisition", spacing=[3], thickness=2).transform()
