"""Tests of lesionres.resolution: resolutions written and read back in one place."""

import subprocess
import sys

import pytest

from lesionres.conditions import Condition
from lesionres.errors import LesionresError
from lesionres.resolution import coarser, degraded_spacing, format_resolution, parse_resolution


def test_format_and_parse_round_trip():
    assert format_resolution([2, 2, 2]) == "2"
    assert format_resolution([1, 1, 5]) == "1x1x5"
    assert format_resolution([2, 2, 2], compact=False) == "2x2x2"
    assert format_resolution([1.04, 1.0, 4.96], ".1f") == "1.0x1.0x5.0"
    for text in ("2", "1x1x5", "1.5x1.5x3"):
        assert format_resolution(parse_resolution(text)) == text
    assert parse_resolution("1x1x5mm") == (1.0, 1.0, 5.0)
    assert parse_resolution("") is None and parse_resolution(float("nan")) is None
    with pytest.raises(LesionresError, match="1 or 3 positive"):
        parse_resolution("1x2")


def test_degraded_spacing_is_the_one_rule_conditions_and_the_analysis_share():
    assert degraded_spacing([2, 2, 2], spacing=[1, 1, 5]) == [2, 2, 5]
    assert degraded_spacing([1], factor=[2, 2, 1]) == [2, 2, 1]
    assert degraded_spacing([1, 1, 1]) == [1, 1, 1]
    assert coarser([1, 1, 5], [1.2]) == [1.2, 1.2, 5]
    condition = Condition(method="acquisition", spacing=[1, 1, 5])
    assert condition.test_spacing([2, 2, 2]) == degraded_spacing([2, 2, 2], spacing=[1, 1, 5])
    assert condition.name == f"acquisition_{format_resolution([1, 1, 5])}mm"


def test_resolutions_and_conditions_import_no_torch():
    code = (
        "import sys, lesionres.resolution, lesionres.conditions, lesionres.analysis\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
