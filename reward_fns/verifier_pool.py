"""Time-budgeted verifiers run in worker processes that can be killed.

A thread cannot be stopped: with verifiers on a thread pool, a few answers that send a scorer
into a hang (sympy, math-verify, a third-party scorer) hold every thread for good, and every
later answer of those tasks times out and scores 0 for the rest of the run. Here each budgeted
call runs in a worker process; a worker that overruns its budget is killed (SIGKILL) and
replaced, so the next answer gets a fresh worker and its own full budget.

Workers are forked from the scoring process, so they see every verifier registered before the
fork, user modules included; when the registry changes afterwards, idle workers are replaced
(lambdas and closures need no pickling). Linux only, like the rest of the project.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import numbers
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from reward_fns import registry
from reward_fns.registry import Reference

logger = logging.getLogger(__name__)

MAX_WORKERS = 8  # budgeted verifiers running at once per scoring process
MAX_ERROR_CHARS = 300  # error text kept in an outcome
KILL_WAIT_S = 5.0  # how long to wait for a killed worker to be reaped


@dataclass(frozen=True)
class Outcome:
    """What a budgeted run produced: a result, or why there is none."""

    result: Any = None  # the verifier's float or bool; None when it raised, died or timed out
    error: str = ""
    timed_out: bool = False


class _Worker:
    """One forked process serving verifier calls over a pipe, one at a time."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        self.registry_version = registry.registry_version()
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, self.conn, os.getpid()), daemon=True,
                                       name="r1ci-verifier")
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(KILL_WAIT_S)


def _serve(conn: Connection, parent_end: Connection, parent_pid: int) -> None:
    """Worker loop: ``(task, answer, reference)`` in, ``(kind, value)`` out.

    The worker dies with the scoring process (killed trainers must not leave forked copies of
    themselves behind): the kernel sends SIGKILL when the parent goes, and the parent's end of
    the pipe is closed here so that its loss reads as end-of-file.
    """
    parent_end.close()
    _die_with_parent(parent_pid)
    while True:
        try:
            task, answer, reference = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = registry.get_verifier(task)(answer, reference)
            if hasattr(result, "item") and not isinstance(result, (bool, numbers.Real)):
                result = result.item()  # a numpy scalar such as numpy.bool_
            if isinstance(result, (bool, numbers.Real)):
                reply = ("ok", float(result) if not isinstance(result, bool) else result)
            else:
                reply = ("type", type(result).__name__)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who scores it 0
            reply = ("error", f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
        conn.send(reply)


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the closed pipe end still ends the loop
        pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(0)


class VerifierPool:
    """Runs ``verifier(answer, reference)`` for registered tasks with a hard time limit."""

    def __init__(self, max_workers: int = MAX_WORKERS) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self._context = multiprocessing.get_context("fork")
        self._slots = threading.BoundedSemaphore(max_workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.timeouts = 0  # runs killed for overrunning their budget
        self.crashes = 0  # workers that died while running a verifier

    def run(self, task: str, answer: str, reference: Reference, budget_s: float) -> Outcome:
        """Run the verifier of `task`; kill it when it runs longer than `budget_s` seconds.

        Waiting for a free worker is not counted: it is bounded by the runs ahead, each of
        which ends within its own budget.
        """
        if not registry.has_verifier(task):  # also loads the built-ins before any fork
            return Outcome(error=f"no verifier registered for task {task!r}")
        with self._slots:
            worker = self._take_worker()
            try:
                worker.conn.send((task, answer, reference))
                started = time.monotonic()
                if not worker.conn.poll(budget_s):
                    self._discard(worker)
                    with self._lock:
                        self.timeouts += 1
                    elapsed = time.monotonic() - started
                    return Outcome(
                        error=f"verifier exceeded its time budget of {budget_s:g} s (killed after {elapsed:.1f} s)",
                        timed_out=True,
                    )
                kind, value = worker.conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._discard(worker)
                with self._lock:
                    self.crashes += 1
                return Outcome(error=f"verifier process died ({type(exc).__name__}, exit code {worker.process.exitcode})")
            self._give_back(worker)
        if kind == "ok":
            return Outcome(result=value)
        if kind == "type":
            return Outcome(error=f"verifier returned {value}, expected float or bool")
        return Outcome(error=value)

    def _take_worker(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.registry_version == registry.registry_version() and worker.process.is_alive():
                    return worker
                worker.kill()  # stale: verifiers were registered since its fork
        return _Worker(self._context)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()

    def close(self) -> None:
        """Kill the idle workers (busy ones are killed by their callers' budgets)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def owned_by_this_process(self) -> bool:
        """False in a child forked from the process that made the pool (its pipes are not ours)."""
        return self._pid == os.getpid()


_pool: VerifierPool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> VerifierPool:
    """This process's pool, made on first use (and anew in a forked child)."""
    global _pool
    with _pool_lock:
        if _pool is None or not _pool.owned_by_this_process():
            _pool = VerifierPool()
    return _pool
