"""What the fork-per-call design itself reaches here, by preload set: throughput and CPU per run.

The fork floor (`tool_env.fork_floor`: warm interpreters that fork a child per call with
rlimits and nothing else) is driven at 32 concurrent callers with `print(1 + 1)`, once per
preload set, interleaved with the plain interpreter start (`python -I -S -c`) that the
sandbox benchmark's targets use, and with the local sandbox (its first working isolation
level) given the same preloads. Each fork copies the page tables of the warm heap and each
exit frees them, so the ratio a fork-per-call sandbox can reach depends on what it preloads:
this prints it for no preloads, numpy alone and the sandbox's default set.

    python benchmarks/bench_fork_floor.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from typing import Callable

from tool_env.benchmark import SATURATED, SNIPPETS, WARM_TIMEOUT_S, Cost, available_levels, burst, plain_run
from tool_env.config import SandboxConfig
from tool_env.fork_floor import ForkFloor
from tool_env.local import LocalSandbox

PRELOAD_SETS = {
    "no preloads": (),
    "numpy": ("numpy", "numpy.random"),
    "default preloads": SandboxConfig().preload_modules,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per point and chunk (plain: a third)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating chunks per point")
    args = parser.parse_args(argv)
    code = SNIPPETS["trivial"]
    slots = SandboxConfig().effective_pool_size
    with ExitStack() as stack:
        level = available_levels()[0]
        calls: dict[str, Callable[[str], str]] = {"plain": plain_run}
        for name, preload in PRELOAD_SETS.items():
            calls[f"fork floor, {name}"] = stack.enter_context(ForkFloor(slots, preload)).run
            sandbox = stack.enter_context(LocalSandbox(SandboxConfig(isolation=level, preload_modules=preload)))
            if not sandbox.wait_until_warm(WARM_TIMEOUT_S):
                raise RuntimeError("the sandbox pool did not warm up")
            calls[f"local-{level}, {name}"] = lambda c, sandbox=sandbox: sandbox.run(c).stdout
        for call in calls.values():
            call(code)  # warm
        costs = {name: Cost() for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                runs = args.runs // 3 if name == "plain" else args.runs
                burst(lambda: call(code), "trivial", SATURATED, runs, costs[name])
    plain = costs["plain"].runs_per_s
    print(f"{os.cpu_count()} cores, {slots} slots; print(1 + 1) at c={SATURATED}; load average now "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'who':<36}{'runs/s':>9}{'x plain':>9}{'cpu/run ms':>12}{'caller ms':>11}")
    for name, cost in costs.items():
        print(f"{name:<36}{cost.runs_per_s:>9.1f}{cost.runs_per_s / plain:>9.1f}"
              f"{cost.cpu_ms_per_run:>12.2f}{cost.host_ms_per_run:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
