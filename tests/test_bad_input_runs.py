"""The bad-input corpus of test_validation.py through `fit` and `test`: every case stops with
its file named (errors) or runs with the documented warning (warnings, infos); a dataset with
many problems stops with every one of them listed, before any training."""

from __future__ import annotations

import pytest
from fakes import make_atlas_tree, make_isles_tree, truncate_file, write_config
from test_validation import CASES, write_case, write_corpus

from lesionres.cli import main
from lesionres.data.findings import MAX_LISTED


@pytest.fixture(params=sorted(CASES))
def bad_run(request, tmp_path):
    case = write_case(tmp_path / "data", request.param, n=6)
    config = write_config(
        tmp_path / "tiny.yaml",
        tmp_path / "data",
        tmp_path / "logs",
        data__dataset="folder",
        data__binarize=case["binarize"],
        data__condition_preset="none",
    )
    return config, case["path"], case["level"], case["message"]


@pytest.mark.parametrize("command", ["fit", "test"])
def test_bad_input_outcome_in_runs(bad_run, command, capsys):
    config, path, level, message = bad_run
    extra = ["--trainer.fast_dev_run", "true"] if command == "fit" else []
    if level == "error":
        with pytest.raises(SystemExit) as exit_:
            main([command, "--config", str(config), *extra])
        assert exit_.value.code == 2
        report = _report(capsys.readouterr().err)
        assert report[0] == "error: 1 subject failed the check (1 error):"
        assert report[1].startswith(f"  {path}: ") and message in report[1], report
        assert report[2].startswith("Run `python -m lesionres check ") and len(report) == 3
    else:
        assert main([command, "--config", str(config), *extra]) == 0
        err = capsys.readouterr().err
        if level == "warning":
            assert f"warning: {path}: " in err and message in err


def _report(err: str) -> list[str]:
    """The lines of stderr from the one ``error:`` line on (no traceback before or after)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(starts) == 1, lines
    return lines[starts[0] :]


@pytest.mark.parametrize("command", ["fit", "test"])
def test_run_stops_with_every_error_listed(tmp_path, capsys, command):
    broken, _, _ = write_corpus(tmp_path / "data", "atlas")
    root = tmp_path / "data" / "ATLAS_2"
    config = write_config(tmp_path / "tiny.yaml", root, tmp_path / "logs")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--config", str(config), "--trainer.fast_dev_run", "true"])
    assert exit_.value.code == 2
    report = _report(capsys.readouterr().err)
    errors = len(broken) + 1  # the duplicate id is an error on both of its images
    assert report[0] == f"error: {len(broken)} subjects failed the check ({errors} errors):"
    listed = report[1 : 1 + MAX_LISTED]
    expected = {str(path): text for path, text in broken.values()}
    for line in listed:  # each `  path: problem`, a different broken subject's
        path, _, problem = line.strip().partition(": ")
        assert expected.get(path, "no such file") in problem, line
    assert len({line.split(": ")[0] for line in listed}) == MAX_LISTED
    assert report[1 + MAX_LISTED :] == [
        f"  ... and {errors - MAX_LISTED} more",
        f"Run `python -m lesionres check {root}` for the full table.",
    ]
    # stopped before the split, the model grid and any training
    assert not list((root / "splits").glob("split-*.json"))
    assert not list(tmp_path.rglob("*.ckpt"))


def test_test_checks_the_external_cohorts_too(tmp_path, capsys):
    make_atlas_tree(tmp_path / "data", n=6)
    cohort = make_isles_tree(tmp_path / "isles", n=3)
    truncate_file(cohort[0]["dwi"])
    cohort[2]["mask"].unlink()
    external = [{"name": "isles22", "root": str(tmp_path / "isles"), "dataset": "isles22"}]
    config = write_config(
        tmp_path / "tiny.yaml",
        tmp_path / "data" / "ATLAS_2",
        tmp_path / "logs",
        data__external=external,
        data__condition_preset="none",
    )
    with pytest.raises(SystemExit) as exit_:
        main(["test", "--config", str(config)])
    assert exit_.value.code == 2
    report = _report(capsys.readouterr().err)
    assert report[0] == "error: 2 subjects failed the check (2 errors):"
    assert report[1].startswith(f"  {cohort[0]['dwi']}: truncated file")
    assert report[2].startswith(f"  {cohort[2]['dwi']}: no lesion mask for")
    command = f"python -m lesionres check {tmp_path / 'isles'} --dataset isles22"
    assert report[3] == f"Run `{command}` for the full table."
