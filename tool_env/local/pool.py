"""Fair (FIFO) run slots and the set of warm workers.

`FairSlots` bounds how many runs execute at once and serves waiters strictly in arrival
order: a released slot is handed to the oldest waiter, never grabbed by a newcomer.
`WorkerPool` keeps up to `pool_size` idle warm workers; callers borrow one per stateless
run, and stateful sessions keep theirs (the pool starts a replacement in the background).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable

from tool_env.base import SandboxClosedError
from tool_env.local.worker import Worker

log = logging.getLogger(__name__)

SPAWNER_THREADS = 4  # parallel worker start-ups (each is an interpreter start plus imports)
_BACKGROUND = "background"  # a spawn request whose worker goes to the idle list


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False


class FairSlots:
    """A counting semaphore with FIFO hand-off; closing it wakes every waiter with an error."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"slot count must be >= 1, got {size}")
        self.size = size
        self._free = size
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> None:
        with self._lock:
            if self._closed:
                raise SandboxClosedError("sandbox is closed")
            if self._free and not self._waiters:
                self._free -= 1
                return
            waiter = _Waiter()
            self._waiters.append(waiter)
        try:
            waiter.event.wait()
        except BaseException:  # interrupted while queued: leave the queue, or pass the slot on
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    raise
            if waiter.granted:
                self.release()
            raise
        if not waiter.granted:
            raise SandboxClosedError("sandbox closed while waiting for a slot")

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.event.set()
            else:
                self._free += 1

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            waiters, self._waiters = list(self._waiters), deque()
        for waiter in waiters:
            waiter.event.set()


class WorkerPool:
    """Idle warm workers, started by long-lived spawner threads so borrowers rarely wait.

    Workers must be started from threads that live as long as the pool: the kernel delivers
    the parent-death signal (bubblewrap's --die-with-parent, the zygote's PDEATHSIG) when the
    *thread* that forked them exits, so a worker started from a short-lived caller thread
    would be killed behind our back.
    """

    def __init__(self, target_idle: int, spawn: Callable[[], Worker], spawners: int = SPAWNER_THREADS) -> None:
        self.target_idle = target_idle
        self._spawn = spawn
        self._idle: list[Worker] = []
        self._spawning = 0
        self._failures = 0
        self._cond = threading.Condition()
        self._closed = False
        self.last_spawn_error: str | None = None
        self._requests: queue.SimpleQueue[Future[Worker] | str | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._spawner, name="tool_env-spawner", daemon=True)
            for _ in range(max(1, min(spawners, target_idle)))
        ]
        for thread in self._threads:
            thread.start()

    def start_worker(self) -> Worker:
        """Start one worker on a spawner thread and wait for it (errors surface here)."""
        future: Future[Worker] = Future()
        self._requests.put(future)
        return future.result()

    def _spawner(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                worker = self._spawn()
            except Exception as exc:
                if isinstance(request, Future):
                    request.set_exception(exc)
                    continue
                self._spawned(None, str(exc))
                continue
            if isinstance(request, Future):
                request.set_result(worker)
            else:
                self._spawned(worker, None)

    def _spawned(self, worker: Worker | None, error: str | None) -> None:
        with self._cond:
            self._spawning -= 1
            if error is not None:
                self._failures += 1
                self.last_spawn_error = error
                log.error("tool_env sandbox: starting a worker failed: %s", error)
            if worker is not None and not self._closed and len(self._idle) < self.target_idle:
                self._idle.append(worker)
                worker = None
            self._cond.notify_all()
        if worker is not None:
            worker.stop()

    def fill(self) -> None:
        """Queue background starts until idle + starting reaches the target."""
        with self._cond:
            missing = self.target_idle - len(self._idle) - self._spawning
            if self._closed or missing <= 0:
                return
            self._spawning += missing
        for _ in range(missing):
            self._requests.put(_BACKGROUND)

    def borrow(self) -> Worker:
        """An idle worker; waits for one being started, or starts one if none is coming.

        An idle worker that died while it waited (the OOM killer picks sandbox processes
        first; a zygote that could not clean up after a run exits) is replaced, not handed
        out: the next caller's run would have failed with `WorkerCrashed` for nothing it did.
        """
        dead: list[Worker] = []
        try:
            with self._cond:
                failures = self._failures
                while True:
                    if self._closed:
                        raise SandboxClosedError("sandbox is closed")
                    while self._idle:  # oldest first: the newest is still re-forking its next child
                        worker = self._idle.pop(0)
                        if not worker.exited():
                            return worker
                        dead.append(worker)
                    if self._failures != failures and not self._spawning:
                        raise RuntimeError(f"cannot start a sandbox worker: {self.last_spawn_error}")
                    if not self._spawning:
                        self._spawning += 1
                        self._requests.put(_BACKGROUND)
                    self._cond.wait()
        finally:
            for worker in dead:  # outside the lock: reaps it, frees its uid, starts a replacement
                self.discard(worker)

    def wait_until_full(self, timeout_s: float) -> bool:
        """True once `target_idle` workers are idle (benchmarks and tests measure steady state)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._idle) < self.target_idle:
                self.fill()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._cond.wait(remaining)
            return True

    def give_back(self, worker: Worker) -> None:
        """Return a clean, live worker; surplus or dead ones are stopped."""
        with self._cond:
            if worker.alive and not self._closed and len(self._idle) < self.target_idle:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.stop()

    def discard(self, worker: Worker) -> None:
        worker.kill()
        self.fill()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        for _ in self._threads:
            self._requests.put(None)
