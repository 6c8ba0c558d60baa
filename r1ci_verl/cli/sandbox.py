"""`r1ci sandbox`: run code in the sandbox, or benchmark it.

    r1ci sandbox run solution.py                 # prints stdout/stderr, exits with the run's status
    echo 'print(6 * 7)' | r1ci sandbox run -     # code from stdin
    r1ci sandbox run --json --timeout 5 -        # the full ExecutionResult as JSON
    r1ci sandbox bench --quick                   # latency, throughput, CPU per run vs a plain interpreter start
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_TIMEOUT = 124  # what coreutils `timeout` returns
EXIT_SANDBOX_ERROR = 125


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="run code in the sandbox; benchmark it")
    commands = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)

    run = commands.add_parser("run", help="run a Python file (or - for stdin) in a fresh sandboxed process")
    run.add_argument("file", help="path to a .py file, or - to read the code from stdin")
    run.add_argument("--timeout", type=float, default=None, help="wall-clock seconds (default: config, 60)")
    run.add_argument("--isolation", choices=("auto", "namespace", "rlimit"), default="auto")
    run.add_argument("--max-output-chars", type=int, default=None, help="per-stream cap (head and tail kept)")
    run.add_argument("--preload", default=None, metavar="MODULES",
                     help="comma-separated modules the worker imports up front (default: config's list)")
    run.add_argument("--json", action="store_true", help="print the ExecutionResult as JSON")
    run.set_defaults(func=_run)

    bench = commands.add_parser("bench", help="latency, throughput and CPU per run vs a plain interpreter start")
    bench.add_argument("--quick", action="store_true", help="under a minute, first isolation level only")
    bench.add_argument("--isolation", choices=("namespace", "rlimit"), action="append",
                       help="level(s) to measure (default: every level that works here)")
    bench.set_defaults(func=_bench)


def _read_code(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise SystemExit(f"r1ci sandbox run: no such file: {source}")
    return path.read_text(encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    from tool_env import SandboxConfig, create_sandbox

    code = _read_code(args.file)
    overrides = {"isolation": args.isolation, "pool_size": 1}
    if args.preload is not None:
        overrides["preload_modules"] = tuple(name for name in args.preload.split(",") if name)
    if args.max_output_chars is not None:
        overrides["max_output_chars"] = args.max_output_chars
    with create_sandbox(SandboxConfig(**overrides)) as sandbox:
        result = sandbox.run(code, timeout_s=args.timeout)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.error is not None and result.error.name in ("TimeoutError", "WorkerCrashed", "OutputLimitExceeded"):
            print(f"[sandbox] {result.error.name}: {result.error.message}", file=sys.stderr)
    if result.timed_out:
        return EXIT_TIMEOUT
    if result.exit_code is None or result.exit_code < 0:
        return EXIT_SANDBOX_ERROR
    return result.exit_code


def _bench(args: argparse.Namespace) -> int:
    from tool_env.benchmark import available_levels, format_report, full_plan, quick_plan, run_benchmark

    levels = tuple(args.isolation or available_levels())
    plan = quick_plan(levels) if args.quick else full_plan(levels)
    print(format_report(run_benchmark(plan), plan))
    return 0
