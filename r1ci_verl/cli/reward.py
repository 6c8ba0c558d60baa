"""`r1ci reward`: check reward functions on a file of responses, list registered verifiers.

    r1ci reward check --data rows.jsonl                      # rows carry a "response"
    r1ci reward check --data test.parquet --answers outputs.jsonl
    r1ci reward check --data rows.jsonl --reward my_rewards.py --reward pkg.mod:compute_score
    r1ci reward check --data r1ci_verl/assets/bbh/navigate.jsonl --gold   # self-check verifiers

The logic (reading rows, scoring, per-task figures) lives in `reward_fns.check`; this module
parses arguments, checks paths before any work, and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from r1ci_verl.cli.errors import UsageError, check_input_file, check_output_path, non_negative_int, percentage

DEFAULT_MAX_FAILURES = 10
REPORT_WIDTH = 140  # columns when stdout is not a terminal (logs, CI)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reward", help="check reward functions on responses; list verifiers")
    commands = parser.add_subparsers(dest="reward_command", metavar="ACTION", required=True)

    check = commands.add_parser("check", help="score a JSONL/parquet of rows and print per-task accuracy")
    check.add_argument("--data", required=True, help="JSONL or parquet rows (task, ground truth, response)")
    check.add_argument("--answers", help="JSONL of responses, one per data row (a string or {'response': ...})")
    check.add_argument("--gold", action="store_true",
                       help="respond with each row's stored answer in <<<...>>> (rows of tasks without one are skipped)")
    check.add_argument(
        "--reward",
        action="append",
        default=[],
        metavar="SPEC",
        help="module (dotted or .py path) that registers verifiers, or module:function replacing "
        "compute_score; repeatable",
    )
    check.add_argument("--unknown-task", choices=("error", "exact_match"), default="error",
                       help="unregistered tasks: fail, or compare answers as text")
    check.add_argument("--max-failures", type=non_negative_int, default=DEFAULT_MAX_FAILURES,
                       help="failures to print")
    check.add_argument("--output", help="write one JSON result per row to this .jsonl file")
    check.add_argument("--fail-under", type=percentage, metavar="PERCENT",
                       help="exit 1 when overall accuracy is below this percentage (0-100, e.g. 90)")
    check.set_defaults(func=_check)

    listing = commands.add_parser("list", help="registered verifier names")
    listing.add_argument("--family", help="only this family (bbh, reasoning_gym, symbench, ...)")
    listing.set_defaults(func=_list)


def _check(args: argparse.Namespace) -> int:
    from reward_fns.check import ANSWER_SUFFIXES, DATA_SUFFIXES, CheckInputError, check

    data = check_input_file(args.data, suffixes=DATA_SUFFIXES, flag="--data")
    answers = check_input_file(args.answers, suffixes=ANSWER_SUFFIXES, flag="--answers") if args.answers else None
    if args.gold and answers is not None:
        raise UsageError("--gold and --answers exclude each other")
    if args.output:
        check_output_path(args.output, suffixes=(".jsonl",), flag="--output")
    _import_from_cwd()
    try:
        run = check(data, answers, gold=args.gold, reward_specs=args.reward, unknown_task=args.unknown_task)
    except CheckInputError as exc:
        raise UsageError(str(exc)) from None
    print_report(run, args.max_failures)
    if args.output:
        write_results(Path(args.output), run)
    if args.fail_under is not None and run.accuracy < args.fail_under:
        print(f"accuracy {run.accuracy:.1%} is below --fail-under {args.fail_under:.1%}", file=sys.stderr)
        return 1
    return 0


def _import_from_cwd() -> None:
    """`--reward my_pkg.mod:fn` finds my_pkg in the current directory, as under `python -m`.

    The installed `r1ci` script, unlike `python -m`, does not put the current directory on
    sys.path, so a documented dotted spec would not import from where the user stands.
    """
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def print_report(run: Any, max_failures: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from reward_fns.check import per_task, stats

    console = Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)
    table = Table(title="Reward check")
    table.add_column("task", no_wrap=True)
    for column in ("rows", "accuracy", "mean score", "format ok", "answered", "ms/answer"):
        table.add_column(column, justify="right")
    for task, group in per_task(run.results):
        table.add_row(task, *_cells(stats(group)))
    table.add_section()
    table.add_row("ALL", *_cells(stats(run.results)))
    console.print(table)
    if run.skipped:
        tasks = sorted({row.task for row, _ in run.skipped})
        console.print(f"Skipped {len(run.skipped)} rows whose task stores no answer to respond with: "
                      f"{', '.join(tasks)}", highlight=False)
    failures = [r for r in run.results if r.reason]
    if failures and max_failures > 0:
        console.print(f"[bold]Failures[/bold] ({len(failures)}; first {min(max_failures, len(failures))}):")
        for r in failures[:max_failures]:
            line = f" (line {r.row.where.line})" if r.row.where.line is not None else ""
            console.print(f"  row {r.row.where.row}{line} [cyan]{r.row.task}[/cyan]: {r.reason}",
                          markup=True, highlight=False)
    rate = len(run.results) / run.seconds if run.seconds > 0 else float("inf")
    console.print(f"Scored {len(run.results)} responses in {run.seconds:.3f} s ({rate:,.0f} answers/s).")


def _cells(s: Any) -> list[str]:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    return [str(s.rows), f"{s.accuracy:.1%}", f"{s.mean_score:.3f}", pct(s.format_ok), pct(s.answered),
            f"{s.ms_per_answer:.3f}"]


def write_results(path: Path, run: Any) -> None:
    from reward_fns.check import result_record

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in run.results:
            f.write(json.dumps(result_record(r), ensure_ascii=False) + "\n")


def _list(args: argparse.Namespace) -> int:
    from reward_fns.registry import get_time_budget, list_verifiers

    names = [name for name in list_verifiers() if not args.family or name.startswith(f"{args.family}/")]
    if args.family and not names:
        families = sorted({name.split("/", 1)[0] for name in list_verifiers()})
        raise UsageError(f"--family {args.family}: no such family (known: {', '.join(families)})")
    for name in names:
        budget = get_time_budget(name)
        print(name if budget is None else f"{name}\t(time budget {budget:g} s)")
    return 0
