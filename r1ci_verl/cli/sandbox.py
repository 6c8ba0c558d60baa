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
from typing import Any

from r1ci_verl.cli.errors import UsageError, check_input_file, positive_float, positive_int

EXIT_TIMEOUT = 124  # what coreutils `timeout` returns
EXIT_SANDBOX_ERROR = 125


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="run code in the sandbox; benchmark it")
    commands = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)

    run = commands.add_parser("run", help="run a Python file (or - for stdin) in a fresh sandboxed process")
    run.add_argument("file", help="path to a .py file, or - to read the code from stdin")
    run.add_argument("--timeout", type=positive_float, default=None,
                     help="wall-clock seconds (default: the config's, 60)")
    run.add_argument("--isolation", choices=("auto", "namespace", "rlimit"), default="auto",
                     help="namespace (bubblewrap), rlimit only, or the best this machine allows")
    run.add_argument("--max-output-chars", type=positive_int, default=None,
                     help="per-stream cap, head and tail kept (default: the config's, 8192)")
    run.add_argument("--preload", default=None, metavar="MODULES",
                     help="comma-separated modules the worker imports up front (default: config's list)")
    run.add_argument("--json", action="store_true", help="print the ExecutionResult as JSON")
    run.set_defaults(func=_run)

    bench = commands.add_parser("bench", help="latency, throughput and CPU per run vs a plain interpreter start")
    bench.add_argument("--quick", action="store_true", help="under a minute, first isolation level only")
    bench.add_argument("--isolation", choices=("namespace", "rlimit"), action="append",
                       help="level(s) to measure (default: every level that works here)")
    bench.set_defaults(func=_bench)


FLAG_OF_FIELD = {"timeout_s": "--timeout", "max_output_chars": "--max-output-chars", "preload_modules": "--preload"}


def _read_code(source: str) -> str:
    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (tests, embedding) has no buffer
        if stream is None:
            return sys.stdin.read()
        data = stream.read()
        label = "stdin"
    else:
        path = check_input_file(source)
        data = path.read_bytes()
        label = str(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}), {label}:{line}") from None


def _preload_modules(spec: str) -> tuple[str, ...]:
    """The --preload list, each name checked to be importable here (the sandbox runs this interpreter)."""
    import importlib.util

    names = tuple(name.strip() for name in spec.split(",") if name.strip())
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError(f"--preload: no module named {name!r}")
    return names


def _config(args: argparse.Namespace) -> Any:
    """The SandboxConfig of this run; an out-of-range flag is a usage error naming the flag."""
    from tool_env import SandboxConfig

    overrides: dict[str, Any] = {"isolation": args.isolation, "pool_size": 1}
    if args.preload is not None:
        overrides["preload_modules"] = _preload_modules(args.preload)
    if args.max_output_chars is not None:
        overrides["max_output_chars"] = args.max_output_chars
    if args.timeout is not None:
        overrides["timeout_s"] = args.timeout
    try:
        return SandboxConfig(**overrides)
    except (TypeError, ValueError) as exc:
        flag = next((flag for name, flag in FLAG_OF_FIELD.items() if name in str(exc)), "option")
        raise UsageError(f"{flag}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from tool_env import create_sandbox

    config = _config(args)
    code = _read_code(args.file)
    with create_sandbox(config) as sandbox:
        result = sandbox.run(code, timeout_s=config.timeout_s)
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
