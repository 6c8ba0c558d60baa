"""Host-health checks for sandbox tests: leftover processes, zombies, leaked fds.

Every process a local sandbox starts (bubblewrap, zygotes, children, their orphans, which
reparent to the zygote) descends from the test process, so "nothing left over" means the
descendant count returns to its idle baseline.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

SETTLE_S = 15.0  # a loaded 2-core CI machine may need a while to reap and re-fork


def _stat(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[1]), fields[0].decode()


def descendants(root: int | None = None) -> dict[int, str]:
    """pid -> state letter for every live descendant of `root` (default: this process)."""
    root = os.getpid() if root is None else root
    parent_of, state_of = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(int(entry))) is not None:
            parent_of[int(entry)], state_of[int(entry)] = info
    found: dict[int, str] = {}
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier}
        found.update({pid: state_of[pid] for pid in frontier})
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Baseline:
    processes: int
    fds: int


def settle(expected: int | None = None, timeout_s: float = SETTLE_S) -> dict[int, str]:
    """Wait until the descendant count is `expected` (or stable) and nothing is a zombie."""
    deadline = time.monotonic() + timeout_s
    previous = None
    while True:
        procs = descendants()
        zombies = [p for p, s in procs.items() if s == "Z"]
        count_ok = len(procs) == expected if expected is not None else len(procs) == previous
        if count_ok and not zombies:
            return procs
        if time.monotonic() > deadline:
            return procs
        previous = len(procs)
        time.sleep(0.1)


def baseline() -> Baseline:
    return Baseline(processes=len(settle()), fds=fd_count())


def assert_healthy(base: Baseline) -> None:
    procs = settle(base.processes)
    zombies = {p: cmdline(p) for p, s in procs.items() if s == "Z"}
    assert not zombies, f"zombies left behind: {zombies}"
    extra = len(procs) - base.processes
    assert extra <= 0, f"{extra} leftover processes: " + "; ".join(f"{p} {cmdline(p)}" for p in procs)
    deadline = time.monotonic() + SETTLE_S  # a worker being stopped closes its pipes last
    while fd_count() > base.fds and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fd_count() <= base.fds, f"fd leak: {fd_count()} open, baseline {base.fds}"


def skip_without_namespace() -> None:
    """Skip a namespace-level test where the kernel forbids it, or fail under CI.

    CI sets R1CI_REQUIRE_NAMESPACE=1: there the strongest isolation level must really be
    exercised, never skipped by accident.
    """
    import pytest

    from tool_env.local.isolation import namespace_problem

    problem = namespace_problem()
    if problem is None:
        return
    if os.environ.get("R1CI_REQUIRE_NAMESPACE") == "1":
        pytest.fail(f"namespace isolation is required (R1CI_REQUIRE_NAMESPACE=1) but unavailable: {problem}")
    pytest.skip(f"namespace isolation unavailable here: {problem}")
