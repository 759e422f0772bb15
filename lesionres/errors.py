"""The one exception type for expected, user-facing failures.

The command line prints a :class:`LesionresError` as a single line (no traceback) and exits
with status 2; every message names the file or option at fault and what was expected.
"""

__all__ = ["LesionresError"]


class LesionresError(Exception):
    """An expected failure caused by the user's input (files, options, checkpoints)."""
