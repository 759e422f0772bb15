"""The bad-input corpus of test_validation.py through `fit` and `test`: every case stops with
one line naming the file (errors) or runs with the documented warning (warnings, infos)."""

from __future__ import annotations

import pytest
from fakes import write_config
from test_validation import CASES, write_case

from lesionres.cli import main


@pytest.fixture(params=sorted(CASES))
def bad_run(request, tmp_path):
    case = write_case(tmp_path / "data", request.param, n=6)
    config = write_config(tmp_path / "tiny.yaml", tmp_path / "data", tmp_path / "logs",
                          data__dataset="folder", data__binarize=case["binarize"],
                          data__condition_preset="none")
    return config, case["path"], case["level"], case["message"]


@pytest.mark.parametrize("command", ["fit", "test"])
def test_bad_input_outcome_in_runs(bad_run, command, capsys):
    config, path, level, message = bad_run
    extra = ["--trainer.fast_dev_run", "true"] if command == "fit" else []
    if level == "error":
        with pytest.raises(SystemExit) as exit_:
            main([command, "--config", str(config), *extra])
        assert exit_.value.code == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], lines
    else:
        assert main([command, "--config", str(config), *extra]) == 0
        err = capsys.readouterr().err
        if level == "warning":
            assert f"warning: {path}: " in err and message in err
