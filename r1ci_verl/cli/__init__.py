"""`r1ci` command line: one subcommand module per capability under r1ci_verl.cli.

Each module defines ``register(subparsers)`` which adds its parser and sets ``func``; heavy
imports stay inside the command functions so ``r1ci --help`` is instant. Every parser is a
`CommandParser` (cli/errors.py): one-line argparse errors, defaults in ``--help``, and
``args.prog`` naming the innermost command for error messages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from r1ci_verl.cli.errors import RUNTIME_EXIT, CommandParser, RunError, UsageError

COMMAND_MODULES = (
    "r1ci_verl.cli.sandbox",
    "r1ci_verl.cli.reward",
    "r1ci_verl.cli.data",
    "r1ci_verl.cli.potential",
    "r1ci_verl.cli.eval",
    "r1ci_verl.cli.sft",
    "r1ci_verl.cli.smoke",
)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="r1ci", description="R1-Code-Interpreter for verl")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")  # parser_class: CommandParser
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"r1ci {_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line per error; the traceback only under --debug
        if args.debug:
            traceback.print_exc()
        code = getattr(exc, "exit_code", RUNTIME_EXIT)
        known = isinstance(exc, (UsageError, RunError)) or hasattr(exc, "exit_code")
        message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        message = " ".join(message.split()) or type(exc).__name__  # one line, whatever the exception held
        hint = "" if args.debug else " (r1ci --debug shows the traceback)" if code == RUNTIME_EXIT else ""
        print(f"r1ci {_command_name(args)}: error: {message}{hint}", file=sys.stderr)
        return code


def _command_name(args: argparse.Namespace) -> str:
    """``data build`` for nested commands: the parser's prog without the leading ``r1ci``."""
    prog = getattr(args, "prog", None) or args.command
    return prog.removeprefix("r1ci ").strip()


if __name__ == "__main__":
    sys.exit(main())
