"""Sandbox latency, throughput and CPU per run: the local backend vs a plain interpreter start.

Measures, in one run and interleaved with the baselines: p50/p99 latency of a trivial snippet
and of an `import numpy` snippet, stateless and in a warm stateful session; throughput at
concurrency 1/8/32 (and 64 in the full run) with the CPU a stateless run costs; runs/s per
core for pool sizes 1 and 2; the tail at 64 concurrent callers with the reported queue wait.
Baselines: `python -I -S -c` with a clean environment ("plain", used for the targets) and the
virtualenv's `python -c` ("venv"). Prints tables, ratios and which targets are met.

    python benchmarks/bench_sandbox.py            # full (a few minutes on 2 cores)
    python benchmarks/bench_sandbox.py --quick    # under a minute; what `r1ci sandbox bench --quick` runs
"""

from __future__ import annotations

import argparse
import logging

from tool_env.benchmark import available_levels, format_report, full_plan, quick_plan, run_benchmark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under a minute (first isolation level only)")
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
