"""Make sandbox processes the kernel's first choice when the host runs out of memory.

`memory_mb` bounds each process, not a run (docs/sandbox.md), so runs that fork can still
exhaust a node. When that happens the kernel's OOM killer picks the process with the
highest badness, which is mostly resident memory: on a GPU node that is the trainer or the
inference server, weeks of compute. With `oom_score_adj` at its maximum every sandbox
process (bubblewrap, the zygote, every run it forks) is killed before any normal process,
and a killed worker is only replaced.

Any process may raise its own value, and lower it again down to a minimum that only a writer
holding CAP_SYS_RESOURCE sets. So the zygote raises its own at start (every run inherits it),
and a host holding CAP_SYS_RESOURCE (root, unless a container dropped it) also writes it for
the worker's processes, which pins that minimum: a run then cannot lower its own. Without it
a run can lower its value back to 0 and is an ordinary candidate again. Stdlib only (the
zygote imports it).
"""

from __future__ import annotations

OOM_SCORE_ADJ_MAX = 1000
CAP_SYS_RESOURCE = 24


def volunteer(pid: int | str = "self") -> bool:
    """Set `pid`'s oom_score_adj to the maximum; False where /proc refuses (e.g. it exited)."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as handle:
            handle.write(str(OOM_SCORE_ADJ_MAX))
    except OSError:
        return False
    return True


def can_pin() -> bool:
    """True if this process holds CAP_SYS_RESOURCE, so what it writes also pins the minimum."""
    try:
        with open("/proc/self/status") as status:
            effective = next(line for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return False
    return bool(int(effective.split()[1], 16) >> CAP_SYS_RESOURCE & 1)
