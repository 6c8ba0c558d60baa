"""`r1ci` command line: one subcommand module per capability under r1ci_verl.commands.

Each module defines ``register(subparsers)`` which adds its parser and sets ``func``; heavy
imports stay inside the command functions so ``r1ci --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "r1ci_verl.commands.sandbox",
    "r1ci_verl.commands.reward",
    "r1ci_verl.commands.data",
    "r1ci_verl.commands.potential",
    "r1ci_verl.commands.smoke",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="r1ci", description="R1-Code-Interpreter for verl")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
