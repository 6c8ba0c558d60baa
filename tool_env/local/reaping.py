"""Killing and reaping inside the sandbox: what a run leaves behind never outlives it.

Three ways to reach every leftover, chosen per isolation level (``kill_mode``): as pid 1 of
its pid namespace the zygote ``kill(-1)``s the namespace (``pidns``); in rlimit mode a helper
with the runs' private uid does the same for that uid (``uid``); without root the zygote
kills its own descendants, being their subreaper (``tree``).

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

KILL_MODES = ("pidns", "uid", "tree")
CLEANUP_DEADLINE_S = 5.0  # leftovers that survive SIGKILL this long mean the worker is unusable
REAP_ROUND_S = 0.05  # one kill-then-reap round of `kill_leftovers`


def kill_quietly(pid: int) -> None:
    try:
        if pid > 0:
            os.killpg(pid, signal.SIGKILL)  # children lead their own process group
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def wait_child(pid: int, timeout_s: float) -> tuple[int, int | None]:
    """waitpid with a deadline; returns (pid, raw status) or (0, None) if it did not exit."""
    deadline = time.monotonic() + timeout_s
    delay = 0.0002
    while True:
        try:
            done, raw = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return pid, None
        if done:
            return done, raw
        if time.monotonic() > deadline:
            return 0, None
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def wait_released(pid: int, timeout_s: float) -> bool:
    """Wait until a killed process no longer shows its memory and files through /proc.

    An exiting process drops its memory, then its root and cwd, well before it becomes a
    zombie (its tmpfs are torn down in between): a run must not start while a killed
    predecessor could still be read through /proc/<pid>/{mem,root,cwd}. True once released.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.0001
    while True:
        try:
            os.readlink(f"/proc/{pid}/root")
        except OSError:  # gone, a zombie, or not ours to read (then not the next run's either)
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def has_children() -> bool:
    """Reap what already exited; True while any child (a leftover) is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def reap_all(until: float) -> bool:
    """Reap until no child is left (False) or the time is up (True: some remain)."""
    while True:
        if not has_children():
            return False
        if time.monotonic() > until:
            return True
        time.sleep(0.001)


def namespace_pids() -> list[int]:
    """Every process in our pid namespace (its /proc shows nothing else)."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def descendants(root: int) -> list[int]:
    """Every live descendant of `root`, from /proc (rlimit mode without root only)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        parent_of[int(entry)] = int(fields[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier}
        found.extend(frontier)
    return found


def kill_leftovers(kill_mode: str, zygote_pid: int, child_uid: int | None) -> bool:
    """Kill and reap every process the runs left behind; True if none survived."""
    deadline = time.monotonic() + CLEANUP_DEADLINE_S
    while time.monotonic() < deadline:
        if kill_mode == "pidns":
            kill_quietly(-1)  # pid 1 of the namespace: everyone but us
        elif kill_mode == "uid":
            kill_as_uid(child_uid)
        else:
            for pid in descendants(zygote_pid):
                kill_quietly(pid)
        if not reap_all(until=time.monotonic() + REAP_ROUND_S):
            return True
    return not has_children()


def kill_as_uid(uid: int | None) -> None:
    """kill(-1) from a helper holding the runs' uid: atomic, so fork bombs cannot outrun it."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the helper
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:
            pass
        os._exit(0)
    wait_child(pid, CLEANUP_DEADLINE_S)


def crash_report(raw: int | None) -> tuple[int | None, dict[str, Any]]:
    """(exit code, error record) for a child that died without reporting a status."""
    if raw is None:
        return None, {"name": "WorkerCrashed", "message": "the interpreter vanished", "traceback": ""}
    if os.WIFSIGNALED(raw):
        sig = os.WTERMSIG(raw)
        try:
            sig_name = f"{signal.Signals(sig).name} ({signal.strsignal(sig)})"
        except ValueError:
            sig_name = str(sig)
        message = f"the interpreter was killed by signal {sig_name}"
        if sig == signal.SIGKILL:
            message += "; a memory, CPU-time or process limit may have been hit"
        return -sig, {"name": "WorkerCrashed", "message": message, "traceback": ""}
    status = os.WEXITSTATUS(raw)
    message = f"the interpreter exited abruptly with status {status} (os._exit or a fatal error)"
    return status, {"name": "WorkerCrashed", "message": message, "traceback": ""}
