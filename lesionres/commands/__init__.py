"""The plain commands (those that are not Trainer methods), one function each.

``synth`` and ``check`` (:mod:`~lesionres.commands.data`), ``degrade``, ``score`` and
``benchmark`` (:mod:`~lesionres.commands.evaluation`), ``analyze`` and ``study``
(:mod:`~lesionres.commands.analysis`). Each command is a function whose typed signature and
docstring are its command line (:mod:`~lesionres.commands.signature`); it raises
:class:`~lesionres.errors.LesionresError` for bad input, which ``lesionres.cli.main`` prints.
Torch-free to import: each command imports what it runs when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from lesionres.errors import LesionresError

__all__ = ["COMMANDS", "run_command"]

#: command name -> module of its function (same name)
COMMANDS = {
    "synth": "lesionres.commands.data",
    "check": "lesionres.commands.data",
    "degrade": "lesionres.commands.evaluation",
    "score": "lesionres.commands.evaluation",
    "benchmark": "lesionres.commands.evaluation",
    "analyze": "lesionres.commands.analysis",
    "study": "lesionres.commands.analysis",
}


def run_command(name: str, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` for command ``name`` and run it; its exit status.

    Raises:
        LesionresError: an unknown command, or the command's own expected failures.
        SystemExit: bad options (status 2, with the usage) or ``--help`` (status 0).
    """
    from lesionres.commands.signature import parse_command

    if name not in COMMANDS:
        raise LesionresError(f"unknown command {name!r}; run `python -m lesionres --help`")
    module = importlib.import_module(COMMANDS[name])
    function = getattr(module, name)
    epilog = getattr(module, "EPILOGS", {}).get(name)
    return function(**parse_command(function, argv, f"lesionres {name}", epilog))
