"""One error convention for every `r1ci` command.

- A usage or input error (bad flag value, missing or malformed file, unknown task) raises
  `UsageError`; the user sees one line ``r1ci <command>: error: <what>, <where>`` and exit
  status 2. Check everything that can be checked before any work starts.
- A failure while working (a server down mid-run, a sandbox that crashed) raises `RunError`
  (or any other exception): one line, exit status 1.
- A traceback is printed only under ``r1ci --debug``.
"""

from __future__ import annotations

import os
from pathlib import Path

USAGE_EXIT = 2
RUNTIME_EXIT = 1


class UsageError(Exception):
    """Bad input: the user can fix it by changing the command line or the input file."""

    exit_code = USAGE_EXIT


class RunError(Exception):
    """The command started and then failed for a reason outside the user's input."""

    exit_code = RUNTIME_EXIT


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
    parent = path if is_dir and path.exists() else path.parent
    while not parent.exists():  # the command will create missing directories: check the first existing one
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {parent} is not a writable directory")
    return path
