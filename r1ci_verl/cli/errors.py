"""One error convention for every `r1ci` command.

- A usage or input error (bad flag value, missing or malformed file, unknown task) raises
  `UsageError`; the user sees one line ``r1ci <command>: error: <what>, <where>`` and exit
  status 2. Check everything that can be checked before any work starts.
- A failure while working (a server down mid-run, a sandbox that crashed) raises `RunError`
  (or any other exception): one line, exit status 1.
- A traceback is printed only under ``r1ci --debug``.

`CommandParser` gives every (sub)command the same behaviour: argparse's own errors are one line
with exit status 2, ``--help`` shows every default, and ``args.prog`` names the innermost command.
The small ``argparse`` types below (`positive_int`, `percentage`, ...) reject bad numbers at
parse time, before any work.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

USAGE_EXIT = 2
RUNTIME_EXIT = 1


class UsageError(Exception):
    """Bad input: the user can fix it by changing the command line or the input file."""

    exit_code = USAGE_EXIT


class RunError(Exception):
    """The command started and then failed for a reason outside the user's input."""

    exit_code = RUNTIME_EXIT


def _shows_default(action: argparse.Action) -> bool:
    default = action.default
    return not (default is None or default is False or default == argparse.SUPPRESS or default == [])


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append ``(default: X)`` to every option that has a meaningful default (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "%(default)" in help_text or not _shows_default(action):
            return help_text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return help_text
        return f"{help_text} (default: %(default)s)" if help_text else "(default: %(default)s)"


class CommandParser(argparse.ArgumentParser):
    """The parser of `r1ci` and of each of its (nested) commands; subparsers inherit the class."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(prog=self.prog)  # the innermost command's name for error messages

    def _add_action(self, action: argparse.Action) -> argparse.Action:
        """An option added without help still shows its default (argparse skips help-less options)."""
        if action.help is None and action.option_strings and _shows_default(action):
            action.help = "(default: %(default)s)"
        return super()._add_action(action)

    def error(self, message: str) -> NoReturn:
        """One line, exit status 2 (argparse's default also prints the whole usage)."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(USAGE_EXIT)


def where(path: str | os.PathLike | None = None, *, line: int | None = None, row: int | None = None,
          field: str | None = None) -> str:
    """``file:line, row N, field x``: the location part of an error message (1-based lines and rows)."""
    parts = []
    if path is not None:
        parts.append(f"{path}:{line}" if line is not None else str(path))
    if row is not None:
        parts.append(f"row {row}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


def check_input_file(path: str | os.PathLike, *, suffixes: tuple[str, ...] = (), flag: str = "") -> Path:
    """Fail before any work if `path` is not a readable file (with one of `suffixes`, if given)."""
    path = Path(path)
    label = f"{flag} {path}" if flag else str(path)
    if path.is_dir():
        raise UsageError(f"{label}: is a directory, expected a file")
    if not path.exists():
        raise UsageError(f"{label}: no such file")
    if not path.is_file():
        raise UsageError(f"{label}: not a regular file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{label}: not readable")
    if suffixes and path.suffix not in suffixes:
        raise UsageError(f"{label}: expected a file ending in {' or '.join(suffixes)}")
    return path


def check_output_path(path: str | os.PathLike, *, suffixes: tuple[str, ...] = (), is_dir: bool = False,
                      flag: str = "--out") -> Path:
    """Fail before any work if `path` cannot be written later (bad suffix, parent not writable)."""
    path = Path(path)
    if suffixes and not is_dir and path.suffix not in suffixes:
        raise UsageError(f"{flag} {path}: expected a file ending in {' or '.join(suffixes)}")
    if is_dir and path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a directory")
    if not is_dir and path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory, expected a file")
    if not is_dir and path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: exists and is not writable")
    parent = path if is_dir and path.exists() else path.parent
    while not parent.exists():  # the command will create missing directories: check the first existing one
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {parent} is not a writable directory")
    return path


# ---- argparse types: a bad number is a usage error at parse time -------------------------------

def _number(text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (counts, sizes)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (limits where 0 means none)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds)."""
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def percentage(text: str) -> float:
    """A percentage 0-100 (``90`` or ``90%``), returned as a fraction (0.9).

    A bare value in (0, 1] such as ``0.9`` is ambiguous (0.9 % or 90 %?) and is rejected (write
    ``90`` or ``0.9%``), so a threshold is never silently off by a factor of 100.
    """
    stripped = text.strip().removesuffix("%").strip()
    value = _number(stripped, float)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage 0-100, got {text!r}")
    if 0 < value <= 1 and not text.strip().endswith("%"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is ambiguous (a fraction or a percentage?): give a percentage 0-100, "
            f"e.g. {value * 100:g} for {value * 100:g} %, or write {stripped}% for {stripped} %"
        )
    return value / 100
