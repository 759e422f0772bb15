"""`lesionres.commands`: every plain command's help documents every option; spellings, repeated
and multi-value options, pass-through options and exit codes stay those of argparse."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lesionres.commands import COMMANDS, run_command
from lesionres.commands.analysis import study
from lesionres.commands.evaluation import benchmark
from lesionres.commands.signature import command_parser, parse_command
from lesionres.config_files import DEFAULT_CONFIG, read_section
from lesionres.errors import LesionresError


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_documents_every_option_with_its_default(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_command(name, ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lesionres {name}")
    parser = command_parser(__import__(COMMANDS[name], fromlist=[name]).__dict__[name], name)
    for action in parser._actions:
        assert action.help, action.dest  # command_parser refuses undocumented options
        for option in action.option_strings:
            assert option in out


def test_spellings_repeated_and_multi_value_options():
    argv = ["root", "--out", "o", "--predictor", "a=x {input}", "--predictor", "b=y",
            "--layout", "nnunet", "--connectivity", "6", "--no-figures"]  # fmt: skip
    values = parse_command(benchmark, argv, "lesionres benchmark")
    assert values["predictor"] == ["a=x {input}", "b=y"] and values["layout"] == ["nnunet"]
    assert values["connectivity"] == 6 and values["no_figures"] and not values["no_progress"]
    assert values["data"].root.name == "root" and values["data"].grid == "native"


def test_study_passes_unknown_options_on():
    argv = ["--config", "paper.yaml", "--margin", "dice=0.02", "hd95_mm=2"]
    argv += [
        "--finetune-lr",
        "0.001",
        "--data.root",
        "d",
        "--trainer.max_epochs=3",
        "--models",
        "none,sweep",
    ]
    values = parse_command(study, argv, "lesionres study")
    assert values["margin"] == ["dice=0.02", "hd95_mm=2"] and values["finetune_lr"] == 0.001
    assert values["models"] == "none,sweep"
    assert values["passthrough"] == ["--config", "paper.yaml", "--data.root", "d",
                                     "--trainer.max_epochs=3"]  # fmt: skip


def test_bad_options_exit_2_and_unknown_commands_raise(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_command("score", ["p", "g", "--connectivity", "5"])
    assert exit_.value.code == 2 and "connectivity" in capsys.readouterr().err
    with pytest.raises(LesionresError, match="frobnicate"):
        run_command("frobnicate", [])


def test_synth_defaults_are_the_default_runs_dataset():
    data = read_section(DEFAULT_CONFIG)
    values = parse_command(__import__("lesionres.commands.data", fromlist=["synth"]).synth,
                           ["--out", "d"], "lesionres synth")  # fmt: skip
    assert (values["n"], values["n_isles"], values["seed"], values["spacing"]) == (
        data["synthetic_subjects"], data["synthetic_isles_subjects"], data["seed"],
        data["synthetic_spacing"],
    )  # fmt: skip


def test_commands_and_cli_import_no_torch_and_no_cycle():
    code = (
        "import sys, lesionres.cli, lesionres.commands.data, lesionres.commands.evaluation, "
        "lesionres.commands.analysis, lesionres.study; sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    for module in ("lesionres/study.py", "lesionres/lightning_cli.py", "lesionres/commands"):
        source = _source(module)  # only the entry points import cli
        assert "from lesionres.cli import" not in source and "import lesionres.cli" not in source


def _source(path: str) -> str:
    from pathlib import Path

    root = Path(__file__).parent.parent / path
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    return "".join(f.read_text() for f in files)
