"""fork() without CPython's after-fork work, where that work provably does nothing.

`os.fork` runs CPython's re-initialisation in the child (interpreter locks, the import lock,
the thread list) and then the Python-level hooks registered with `os.register_at_fork`:
threading's `_after_fork` rebuilds the thread table, `random` reseeds its generator. In a
fresh fork of the warm zygote each object that work touches costs a copied page: about 180
page faults and 0.5 ms of CPU per stateless run here (`benchmarks/profile_sandbox.py`), a
tenth of a run's whole cost.

In a process with exactly one thread that is not inside `fork` bookkeeping, that work is a
no-op: no other thread can hold a lock, the one thread stays the thread it was, and the
thread table is already right. The only hooks that change state are the reseeds of `random`
generators, and `reseed_random` does exactly that. So the zygote forks through libc, holding
the GIL (`ctypes.PyDLL`), when all of this holds, checked once after the preloads:

- CPython 3.11 (the version whose after-fork code this was read against and is tested on);
- the process has one thread (`/proc/self/task`), and `threading` knows only the main one;
- every after-fork hook registered since the zygote started (`HookRecorder`, installed before
  the preloads) is one this module knows: a lock's `_at_fork_reinit`, logging's lock reset,
  threading's `_after_fork`, or the `seed` of a `random.Random` (reseeded by `reseed_random`).
  Hooks registered before the recorder come from the zygote's own imports: stdlib modules
  whose 3.11 hooks are threading's `_after_fork` and `random`'s reseed, both handled here.

Anything else (a preload that registers its own hook, a thread) keeps `os.fork`.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Any, Callable

TESTED_VERSIONS = ((3, 11),)

_pylib = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across the call
_pylib.fork.restype = ctypes.c_int
_pylib.fork.argtypes = []


class HookRecorder:
    """Wraps `os.register_at_fork` while the zygote preloads, to learn which hooks were added."""

    def __init__(self) -> None:
        self.after_in_child: list[Callable[[], Any]] = []
        self._original = os.register_at_fork

    def __enter__(self) -> "HookRecorder":
        original, recorded = self._original, self.after_in_child

        def register_at_fork(**hooks: Callable[[], Any]) -> None:
            original(**hooks)
            if "after_in_child" in hooks:
                recorded.append(hooks["after_in_child"])

        os.register_at_fork = register_at_fork
        return self

    def __exit__(self, *exc: object) -> None:
        os.register_at_fork = self._original


def _is_known_hook(hook: Callable[[], Any]) -> bool:
    name = getattr(hook, "__name__", "")
    if name == "_at_fork_reinit":  # a lock re-created: nobody holds it in a one-thread process
        return True
    if name == "seed" and _random_instance(hook) is not None:
        return True  # reseed_random does it
    module = getattr(hook, "__module__", None)
    return (module, name) in {("threading", "_after_fork"), ("logging", "_after_at_fork_child_reinit_locks")}


def _random_instance(hook: Callable[[], Any]) -> Any:
    owner = getattr(hook, "__self__", None)
    random_module = sys.modules.get("random")
    if random_module is not None and isinstance(owner, random_module.Random):
        return owner
    return None


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def raw_fork_allowed(recorder: HookRecorder) -> tuple[bool, str]:
    """Whether `fork` may skip CPython's after-fork work in this process, and why not."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in TESTED_VERSIONS:
        return False, f"untested interpreter {platform.python_implementation()} {platform.python_version()}"
    if _thread_count() != 1:
        return False, f"{_thread_count()} threads"
    threading_module = sys.modules.get("threading")
    if threading_module is not None and (
        threading_module.active_count() != 1 or threading_module._limbo
        or threading_module.current_thread() is not threading_module.main_thread()
        or any(thread is not threading_module.main_thread() for thread in list(threading_module._dangling))
    ):
        return False, "threading knows more than the main thread"
    unknown = [hook for hook in recorder.after_in_child if not _is_known_hook(hook)]
    if unknown:
        return False, f"unknown after-fork hooks {unknown!r}"
    return True, ""


def random_generators(recorder: HookRecorder) -> tuple[Any, ...]:
    """The `random.Random` instances CPython would reseed in a child (random's own, at least)."""
    found = [_random_instance(hook) for hook in recorder.after_in_child]
    random_module = sys.modules.get("random")
    if random_module is not None:
        found.append(random_module._inst)
    unique: dict[int, Any] = {id(inst): inst for inst in found if inst is not None}
    return tuple(unique.values())


def reseed_random(generators: tuple[Any, ...]) -> None:
    """What random's after-fork hook does (`Random.seed()`: fresh OS entropy), at C level."""
    for generator in generators:
        sys.modules["_random"].Random.seed(generator, None)  # the C seed, as Random.seed() calls it
        generator.gauss_next = None


def fork() -> int:
    """libc fork() with the GIL held: the child continues as the one thread it was."""
    pid = _pylib.fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid
