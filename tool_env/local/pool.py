"""Fair (FIFO) run slots and the set of warm workers.

`FairSlots` bounds how many runs execute at once and serves waiters strictly in arrival
order: a released slot is handed to the oldest waiter, never grabbed by a newcomer.
`WorkerPool` keeps up to `pool_size` idle warm workers; callers borrow one per stateless
run, and stateful sessions keep theirs (the pool starts a replacement in the background).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from tool_env.base import SandboxClosedError
from tool_env.local.worker import Worker, WorkerDied

log = logging.getLogger(__name__)

SPAWN_RETRY_S = 1.0


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
        waiter.event.wait()
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
    """Idle warm workers; starts replacements in the background so borrowers rarely wait."""

    def __init__(self, target_idle: int, spawn: Callable[[], Worker]) -> None:
        self.target_idle = target_idle
        self._spawn = spawn
        self._idle: list[Worker] = []
        self._spawning = 0
        self._cond = threading.Condition()
        self._closed = False
        self.last_spawn_error: str | None = None

    def fill(self) -> None:
        """Start background spawns until idle + starting reaches the target."""
        with self._cond:
            missing = self.target_idle - len(self._idle) - self._spawning
            if self._closed or missing <= 0:
                return
            self._spawning += missing
        for _ in range(missing):
            threading.Thread(target=self._spawn_one, name="tool_env-spawn", daemon=True).start()

    def _spawn_one(self) -> None:
        worker = None
        try:
            worker = self._spawn()
        except Exception as exc:  # reported to borrowers; they fall back to spawning inline
            self.last_spawn_error = str(exc)
            log.error("tool_env sandbox: starting a worker failed: %s", exc)
            time.sleep(SPAWN_RETRY_S)
        with self._cond:
            self._spawning -= 1
            if worker is not None and not self._closed:
                self._idle.append(worker)
                worker = None
            self._cond.notify_all()
        if worker is not None:
            worker.stop()

    def borrow(self) -> Worker:
        """An idle worker; waits for a background start, or starts one inline if none is coming."""
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxClosedError("sandbox is closed")
                if self._idle:
                    return self._idle.pop()
                if not self._spawning:
                    break
                self._cond.wait()
        try:
            return self._spawn()
        except WorkerDied as exc:
            raise RuntimeError(str(exc)) from None

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
