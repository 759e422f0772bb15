"""The one exception type for expected, user-facing failures.

The command line prints a :class:`LesionresError` as a single line (no traceback) and exits
with status 2 (:func:`print_error`); every message names the file or option at fault and what
was expected.
"""

import sys

__all__ = ["LesionresError", "print_error"]


class LesionresError(Exception):
    """An expected failure caused by the user's input (files, options, checkpoints)."""


def print_error(error: LesionresError) -> int:
    """Print ``error`` as the one line ``error: <message>`` on stderr; the exit status, 2.

    The one place a :class:`LesionresError` is shown to the user (``cli.main`` and the command
    functions that return an exit status call it).
    """
    print(f"error: {error}", file=sys.stderr)
    return 2
