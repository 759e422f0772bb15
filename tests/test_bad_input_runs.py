"""The bad-input corpus of test_validation.py through `fit` and `test`: every case stops with
one line naming the file (errors) or runs with the documented warning (warnings, infos)."""

from __future__ import annotations

import pytest

from fakes import make_folder_tree, truncate_file, write_config, write_volume
from test_validation import CASES, NAMES_IMAGE, SHAPE, _bad_data

from lesionres.cli import main


@pytest.fixture(params=sorted(CASES))
def bad_run(request, tmp_path):
    name = request.param
    which, data, affine, binarize, level, message, _ = CASES[name]
    subjects = make_folder_tree(tmp_path / "data", n=6, shape=SHAPE)
    bad = subjects[1]
    if which == "image" and data is None:
        truncate_file(bad["image"])
    elif which == "image":
        write_volume(bad["image"], _bad_data(data), affine)
    else:
        write_volume(bad["mask"], data, affine)
    config = write_config(tmp_path / "tiny.yaml", tmp_path / "data", tmp_path / "logs",
                          data__dataset="folder", data__binarize=binarize,
                          data__condition_preset="none")
    path = bad["image"] if name in NAMES_IMAGE else bad[which]
    return config, path, level, message


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
