"""Sandbox latency and throughput: the local backend vs `subprocess.run(python -c)` per call.

Measures, in one run: p50/p99 latency of a trivial snippet and of an `import numpy` snippet,
stateless and in a warm stateful session, per isolation level; throughput at concurrency
1/8/32/64; and the same for the naive baseline. Prints a table and the ratios.

    python benchmarks/bench_sandbox.py            # full (about a minute on 2 cores)
    python benchmarks/bench_sandbox.py --quick    # a few seconds; what `r1ci sandbox bench` runs
"""

from __future__ import annotations

import argparse
import logging

from tool_env.bench import format_report, full_plan, quick_plan, run_benchmark
from tool_env.local.isolation import namespace_problem


def available_levels() -> tuple[str, ...]:
    return ("namespace", "rlimit") if namespace_problem() is None else ("rlimit",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few-second version (first isolation level only)")
    parser.add_argument("--isolation", choices=("namespace", "rlimit"), action="append",
                        help="level(s) to measure (default: every level that works here)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    levels = tuple(args.isolation or available_levels())
    plan = quick_plan(levels) if args.quick else full_plan(levels)
    print(format_report(run_benchmark(plan), plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
