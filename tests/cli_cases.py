"""Table-driven checks of how an `r1ci` command takes bad input (the convention of cli/errors.py).

Each command's test file lists `BadInput` rows and runs them with `check_bad_input`:

    CASES = [
        BadInput("missing data", ["reward", "check", "--data", "{tmp}/nope.jsonl"], 2, ["nope.jsonl: no such file"]),
        ...
    ]

    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
    def test_bad_input(case, tmp_path):
        check_bad_input(case, tmp_path)

`check_bad_input` writes the row's files into a fresh directory, runs the command in-process
through `r1ci_verl.cli.main`, and asserts: the exit status (2 usage, 1 runtime), a single
stderr line ``r1ci <command>: error: ...`` holding every expected fragment, no traceback, and
that nothing under the directory appeared, disappeared or changed (so outputs are checked
before any work).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

USAGE, RUNTIME = 2, 1


@dataclass(frozen=True)
class BadInput:
    """One bad invocation: argv with ``{tmp}`` placeholders, the expected exit status and message fragments."""

    id: str
    argv: list[str]
    exit: int
    expect: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative path -> content ("/"-ending: a directory)
    stdin: bytes | None = None
    command: str | None = None  # the name in the message; default: the words of argv before the first option


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], stdin: bytes | None = None) -> CliRun:
    """`r1ci <argv>` in this process: exit status (argparse's SystemExit included), stdout, stderr."""
    from r1ci_verl.cli import main

    out, err = io.StringIO(), io.StringIO()
    stdin_stream = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    saved_stdin = sys.stdin
    sys.stdin = stdin_stream
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exited:
                code = exited.code if isinstance(exited.code, int) else USAGE
    finally:
        sys.stdin = saved_stdin
    return CliRun(int(code or 0), out.getvalue(), err.getvalue())


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with a content digest (directories as 'dir')."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        state[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def command_name(argv: list[str]) -> str:
    words = []
    for word in argv:
        if word.startswith("-") or "{tmp}" in word or "/" in word or "." in word:
            break
        words.append(word)
    return " ".join(words)


def check_bad_input(case: BadInput, tmp_path: Path) -> CliRun:
    """Run one row and assert the convention; returns the run for extra, row-specific checks."""
    write_files(tmp_path, case.files)
    before = snapshot(tmp_path)
    argv = [word.replace("{tmp}", str(tmp_path)) for word in case.argv]
    run = run_cli(argv, case.stdin)
    lines = [line for line in run.err.splitlines() if line.strip()]
    prefix = f"r1ci {case.command or command_name(case.argv)}: error: "
    assert run.code == case.exit, f"exit {run.code}, expected {case.exit}; stderr: {run.err!r}"
    assert "Traceback" not in run.err, run.err
    assert len(lines) == 1, f"expected one stderr line, got: {run.err!r}"
    assert lines[0].startswith(prefix), f"expected {prefix!r}, got {lines[0]!r}"
    for fragment in case.expect:
        assert fragment.replace("{tmp}", str(tmp_path)) in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert snapshot(tmp_path) == before, "files appeared, disappeared or changed"
    return run
