"""Command line: ``python -m lesionres COMMAND`` (fit, validate, test, predict, synth, check,
degrade, score, benchmark, analyze, study).

``fit``/``validate``/``test``/``predict`` go through LightningCLI
(:mod:`lesionres.lightning_cli`: ``--help``, ``--config``, ``--print_config``; without a
``--config``, the shipped ``default.yaml`` is the default config file). The other commands are
plain functions (:mod:`lesionres.commands`: one typed, documented signature each). Expected
failures (:class:`~lesionres.errors.LesionresError`) are printed here, and only here, as one
line ``error: <file or option>: <problem>``, with exit status 2.
"""

from __future__ import annotations

import sys

from lesionres.config_files import CONFIG_DIR
from lesionres.errors import LesionresError, print_error
from lesionres.precision import default_precision

__all__ = ["CONFIG_DIR", "default_precision", "main"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
USAGE = """usage: python -m lesionres COMMAND [options]

Lightning commands (each takes --help, --config FILE, --print_config):
  fit        train the 3D U-Net (default: built-in synthetic data, CPU-sized)
  validate   validation metrics of a checkpoint (--ckpt_path)
  test       score the test scans under every resolution condition -> results.csv
  predict    lesion masks for new scans, written in each scan's own space
Other commands (each takes --help):
  synth      write the synthetic ATLAS-like / ISLES-like datasets
  check      validate a dataset before training (readable, finite, binary masks, geometry)
  degrade    write every scan under every test condition as NIfTI (for any other tool)
  score      score prediction masks against ground truth into results.csv
  benchmark  run any models (command lines, a checkpoint) under every condition, score, compare
  analyze    statistics, tables, figures and report from results.csv
  study      fit, test and analyze in one run folder

Shipped configs (pass the name to --config; default.yaml applies without one): {configs}
"""


def _resolve_precision(args: list[str]) -> list[str]:
    """``--trainer.precision auto`` becomes :func:`default_precision` of the command."""
    from lesionres.lightning_cli import _resolve_precision as resolve

    return resolve(args)


def main(args: list[str] | None = None) -> int | None:
    """Entry point; ``args`` defaults to ``sys.argv[1:]`` (tests pass a list).

    Returns:
        The command's exit status (0, or 1 where ``check`` or ``benchmark`` found problems).

    Raises:
        SystemExit: 2 after a :class:`LesionresError` (printed as one line) or bad options;
            143 when a Lightning run was stopped by SIGTERM.
    """
    args = list(sys.argv[1:] if args is None else args)
    if not args or args[0] in ("-h", "--help"):
        configs = ", ".join(sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
        print(USAGE.format(configs=configs))
        return 0
    command, rest = args[0], args[1:]
    try:
        if command in LIGHTNING_COMMANDS:
            from lesionres.lightning_cli import run_lightning

            run_lightning([command, *rest])
            return 0
        from lesionres.commands import run_command

        return run_command(command, rest)
    except LesionresError as error:
        raise SystemExit(print_error(error)) from None
    except SystemExit as exit_:
        if type(exit_).__name__ == "SIGTERMException":  # Lightning exits 0 on SIGTERM; we don't
            raise SystemExit(143) from None
        raise
