"""A command's typed, documented signature as its jsonargparse command line.

A plain command is a function: its parameters are the options, their type hints the types and
choices (``Literal``), their defaults the defaults and its Google-style docstring the help
(``description`` from the summary, each option's text from ``Args:``), so that the help cannot
drift from the code. Parameters without a default are positional arguments. The spelling and
the reading of an option follow argparse's conventions (``--flag`` for a ``bool``, repeated or
multi-value options for a list); :class:`Flag` in ``Annotated[...]`` gives a parameter another
spelling (``--n-isles``, ``-v``) or makes a list option repeatable (``append``) or multi-valued
(``extend``). A dataclass parameter stands for its fields, options that several commands
share (documented in the dataclass's ``Args:``). A parameter named ``passthrough`` collects
every option the command does not know (``study`` passes them to ``fit`` and ``test``).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from argparse import Action
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from jsonargparse import ArgumentParser, DefaultHelpFormatter

__all__ = ["PASSTHROUGH", "Flag", "command_parser", "parse_command"]

PASSTHROUGH = "passthrough"


@dataclass(frozen=True)
class Flag:
    """How one parameter appears on the command line, where ``--name VALUE`` is not it.

    Args:
        names: Option strings, e.g. ``("--n-isles",)`` or ``("-v", "--verbose")``.
        action: ``append`` (the option repeated, one value each) or ``extend`` (one or more
            values, also repeated) for a list parameter.
        metavar: Placeholder of the value in the help.
    """

    names: tuple[str, ...] = ()
    action: Literal["append", "extend"] | None = None
    metavar: str | None = None


class _HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help (types and defaults shown) with plain type names."""

    def _get_type_str(self, action: Action) -> str | None:
        text = super()._get_type_str(action)
        if text is None or "<function" in text:
            return None
        return re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)


def _docstring(function: Callable) -> tuple[str, dict[str, str]]:
    """The summary paragraph and the ``Args:`` texts of a Google-style docstring."""
    import docstring_parser

    parsed = docstring_parser.parse(inspect.getdoc(function) or "")
    summary = "\n\n".join(p for p in (parsed.short_description, parsed.long_description) if p)
    return summary, {p.arg_name.lstrip("*"): " ".join(p.description.split()) for p in parsed.params}


def _unwrap(hint: Any) -> tuple[Any, Flag]:
    """``(type without Optional/Annotated, Flag)`` of a parameter's type hint."""
    flag = Flag()
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        flag = next((e for e in extras if isinstance(e, Flag)), flag)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else hint
    return hint, flag


def _add(parser: ArgumentParser, parameter: inspect.Parameter, hint: Any, help_text: str) -> None:
    hint, flag = _unwrap(hint)
    required = parameter.default is inspect.Parameter.empty
    names = flag.names or ((parameter.name,) if required else (f"--{parameter.name}",))
    kwargs: dict[str, Any] = {"help": help_text}
    if names[0].startswith("-"):  # an option; without a default, a required one
        kwargs["dest"] = parameter.name
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = parameter.default
    if flag.metavar:
        kwargs["metavar"] = flag.metavar
    if hint is bool:
        kwargs["action"] = "store_true"
    elif flag.action == "extend":  # one or more values, the option also repeated
        kwargs.update(action="extend", nargs="+")
    elif flag.action == "append":  # the option repeated, one value each
        kwargs.update(action="append", default=list(kwargs.get("default") or ()))
    elif typing.get_origin(hint) is Literal:
        kwargs["choices"] = typing.get_args(hint)
        if not all(isinstance(c, str) for c in kwargs["choices"]):
            kwargs["type"] = hint  # e.g. connectivity 6/18/26: read as numbers
    elif hint is not Any:
        kwargs["type"] = hint
    parser.add_argument(*names, **kwargs)


def command_parser(function: Callable, prog: str, epilog: str | None = None) -> ArgumentParser:
    """The jsonargparse parser of a plain command's ``function``.

    Args:
        function: The command: typed parameters documented in its docstring's ``Args:``.
        prog: The program name shown in usage lines, e.g. ``lesionres score``.
        epilog: Text after the options (examples).

    Raises:
        ValueError: A parameter without a documented help text (every option is documented).
    """
    summary, _ = _docstring(function)
    parser = ArgumentParser(
        prog=prog,
        description=summary,
        epilog=epilog,
        formatter_class=_HelpFormatter,
        exit_on_error=True,
    )
    for parameter, hint, help_text in _options(function):
        if not help_text:
            raise ValueError(f"{function.__qualname__}: option {parameter.name!r} has no help")
        _add(parser, parameter, hint, help_text)
    return parser


def _options(function: Callable) -> list[tuple[inspect.Parameter, Any, str]]:
    """``(parameter, type hint, help)`` of each option; a dataclass parameter gives its fields."""
    _, helps = _docstring(function)
    hints = typing.get_type_hints(function, include_extras=True)
    options = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == PASSTHROUGH:
            continue  # the options of another command (see parse_command)
        hint = hints.get(parameter.name, Any)
        if dataclasses.is_dataclass(hint):  # options shared by several commands
            _, field_helps = _docstring(hint)
            field_hints = typing.get_type_hints(hint, include_extras=True)
            for field in dataclasses.fields(hint):
                default = inspect.Parameter.empty
                if field.default is not dataclasses.MISSING:
                    default = field.default
                option = inspect.Parameter(field.name, parameter.KEYWORD_ONLY, default=default)
                options.append((option, field_hints[field.name], field_helps.get(field.name, "")))
        else:
            options.append((parameter, hint, helps.get(parameter.name, "")))
    return options


def _split_passthrough(parser: ArgumentParser, argv: Sequence[str]) -> tuple[list, list]:
    """``argv`` split into the options ``parser`` knows (with their values) and the others."""
    known: list[str] = []
    other: list[str] = []
    actions = parser._option_string_actions  # argparse's own table of option strings
    i = 0
    while i < len(argv):
        name = argv[i].split("=", 1)[0]
        action = actions.get(name) if argv[i].startswith("-") else None
        if action is None:  # an option for fit/test, and its values
            other.append(argv[i])
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                other.append(argv[i])
                i += 1
            continue
        known.append(argv[i])
        i += 1
        if "=" in argv[i - 1] or action.nargs == 0:
            continue
        count = 1 if action.nargs is None else len(argv)
        while count and i < len(argv) and (not argv[i].startswith("-") or argv[i] == "-"):
            known.append(argv[i])
            i += 1
            count -= 1
    return known, other


def parse_command(
    function: Callable, argv: Sequence[str] | None, prog: str, epilog: str | None = None
) -> dict[str, Any]:
    """Parse ``argv`` for ``function``; its keyword arguments (``passthrough``: a list).

    Bad options print the usage and a one-line error and exit with status 2 (as argparse).
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = command_parser(function, prog, epilog)
    passthrough = PASSTHROUGH in inspect.signature(function).parameters
    other: list[str] = []
    if passthrough:
        argv, other = _split_passthrough(parser, argv)
    namespace = parser.parse_args(argv)
    values = {k: v for k, v in vars(namespace).items() if not k.startswith("__")}
    hints = typing.get_type_hints(function)
    for name in inspect.signature(function).parameters:
        if dataclasses.is_dataclass(hints.get(name)):
            fields = [f.name for f in dataclasses.fields(hints[name])]
            values[name] = hints[name](**{f: values.pop(f) for f in fields})
    if passthrough:
        values[PASSTHROUGH] = other
    return values
