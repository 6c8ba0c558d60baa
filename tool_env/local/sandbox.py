"""The local backend: warm sandboxed workers on this machine, sync and asyncio faces.

    sandbox = LocalSandbox(SandboxConfig())
    result = sandbox.run("print(1 + 1)")                # stateless: a fresh process
    with sandbox.session(stateful=True) as session:      # Jupyter-like: variables survive
        session.run("x = 41"); session.run("print(x + 1)")

Stateless runs borrow any idle worker for one run. A stateful session keeps its own worker
(and its persistent child) until it is closed or idle longer than `session_ttl_s`. If a
stateful run times out or crashes, its interpreter is killed; the session's next run starts
a fresh interpreter and says so (`result.extra["session_restarted"] is True`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tool_env.base import AsyncSession, Sandbox, SandboxClosedError, Session, check_timeout, validate_code
from tool_env.config import SandboxConfig
from tool_env.local.isolation import build_plan, resolve_isolation
from tool_env.local.pool import FairSlots, WorkerPool
from tool_env.local.worker import Worker, WorkerDied
from tool_env.metrics import SandboxMetrics
from tool_env.result import CRASH_CAUSE, ExecutionError, ExecutionResult

ASYNC_THREADS = 512  # blocking I/O threads for the asyncio face; idle ones cost nothing
TTL_SWEEP_MIN_S = 0.5


def crash_result(reason: str, queue_wait_s: float, duration_s: float, **extra: Any) -> ExecutionResult:
    return ExecutionResult(
        error=ExecutionError("WorkerCrashed", f"the sandbox worker died: {reason}"),
        exit_code=None,
        duration_s=duration_s,
        queue_wait_s=queue_wait_s,
        extra=extra,
    )


def result_from_reply(reply: dict[str, Any], queue_wait_s: float) -> ExecutionResult:
    error = reply.get("error")
    return ExecutionResult(
        stdout=reply["stdout"],
        stderr=reply["stderr"],
        error=ExecutionError(error["name"], error["message"], error.get("traceback", "")) if error else None,
        exit_code=reply.get("exit_code"),
        timed_out=bool(reply.get("timed_out")),
        duration_s=float(reply.get("duration_s", 0.0)),
        stdout_truncated=bool(reply.get("stdout_truncated")),
        stderr_truncated=bool(reply.get("stderr_truncated")),
        queue_wait_s=queue_wait_s,
        extra={
            **({"session_restarted": True} if reply.get("session_restarted") else {}),
            **({CRASH_CAUSE: reply["crash_cause"]} if reply.get("crash_cause") else {}),
        },
    )


class LocalSandbox(Sandbox):
    """Thread-safe; share one per process. Close it (or use `with`) to stop every worker."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.isolation = resolve_isolation(self.config.isolation)
        self._metrics = SandboxMetrics()
        self._slots = FairSlots(self.config.effective_pool_size)
        self._pool = WorkerPool(self.config.effective_pool_size, self._start_worker)
        self._sessions: set[LocalSession] = set()  # strong refs: an abandoned session waits for its TTL
        self._lock = threading.Lock()
        self._closed = False
        self._executor: ThreadPoolExecutor | None = None
        try:
            first = self._pool.start_worker()  # fail fast, in the caller's thread, if workers cannot start
        except BaseException:
            self._pool.close()
            raise
        self.preload_errors = first.preload_errors
        self.fork_method = first.fork_method  # how runs are forked (tool_env.local.fastfork)
        self._pool.give_back(first)
        self._pool.fill()
        self._stop_ttl = threading.Event()
        self._ttl_thread = threading.Thread(target=self._expire_sessions, name="tool_env-ttl", daemon=True)
        self._ttl_thread.start()

    # ----- public API -----------------------------------------------------------------
    def session(self, stateful: bool | None = None) -> "LocalSession":
        self._check_open()
        session = LocalSession(self, self.config.stateful if stateful is None else bool(stateful))
        if session.stateful:
            with self._lock:
                self._sessions.add(session)
        return session

    def async_session(self, stateful: bool | None = None) -> "LocalAsyncSession":
        return LocalAsyncSession(self.session(stateful))

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        return self._run(None, code, timeout_s)

    async def arun(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        validate_code(code)
        return await self._in_thread(self.run, code, timeout_s)

    def metrics(self) -> dict[str, float]:
        out = self._metrics.snapshot()
        out["sandbox/queue_waiting"] = float(self._slots.waiting)
        with self._lock:
            out["sandbox/open_sessions"] = float(len(self._sessions))
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions)
        self._stop_ttl.set()
        self._slots.close()
        for session in sessions:
            session.close()
        self._pool.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def wait_until_warm(self, timeout_s: float = 120.0) -> bool:
        """Block until `pool_size` idle workers are ready; False on timeout."""
        return self._pool.wait_until_full(timeout_s)

    @property
    def closed(self) -> bool:
        return self._closed

    # ----- internals ------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("sandbox is closed")

    def _start_worker(self) -> Worker:
        worker = Worker(build_plan(self.isolation, self.config))
        self._metrics.worker_started()
        return worker

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            self._check_open()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(ASYNC_THREADS, thread_name_prefix="tool_env-async")
            executor = self._executor
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def _run(self, session: "LocalSession | None", code: str, timeout_s: float | None) -> ExecutionResult:
        """One run: wait for a slot (FIFO), then a worker (the session's own, or a borrowed one)."""
        validate_code(code)
        timeout = check_timeout(timeout_s, self.config.timeout_s)
        self._check_open()
        queued = time.monotonic()
        self._slots.acquire()
        try:
            worker = session._worker if session is not None else None
            if worker is None:
                worker = self._pool.borrow()
                if session is not None:
                    session._worker = worker
                    self._pool.fill()  # replace the worker the session took
            started = time.monotonic()
            queue_wait = started - queued
            result = self._call(worker, session, code, timeout, queue_wait)
        finally:
            self._slots.release()
        self._metrics.record(result, time.monotonic() - started)
        return result

    def _call(
        self, worker: Worker, session: "LocalSession | None", code: str, timeout: float, queue_wait: float
    ) -> ExecutionResult:
        started = time.monotonic()
        request = {"op": "run", "code": code, "timeout_s": timeout, "keep": session is not None}
        try:
            reply = worker.call(request, timeout)
        except WorkerDied as exc:
            self._pool.discard(worker)
            if session is not None:
                session._worker = None
                session._lost = True
            return crash_result(str(exc), queue_wait, time.monotonic() - started)
        result = result_from_reply(reply, queue_wait)
        if session is not None and session._lost:
            session._lost = False
            result.extra["session_restarted"] = True
        if session is None:
            self._pool.give_back(worker)
        return result

    def _release_session_worker(self, worker: Worker) -> None:
        try:
            worker.call({"op": "reset"}, timeout_s=5.0)
        except WorkerDied:
            self._pool.fill()
            return
        self._pool.give_back(worker)

    def _expire_sessions(self) -> None:
        interval = max(TTL_SWEEP_MIN_S, min(self.config.session_ttl_s / 4, 30.0))
        while not self._stop_ttl.wait(interval):
            now = time.monotonic()
            with self._lock:
                sessions = list(self._sessions)
            for session in sessions:
                if now - session.last_used > self.config.session_ttl_s:
                    session.close(expired=True, blocking=False)


class LocalSession(Session):
    """One conversation. Runs on one session are serialised; sessions run concurrently."""

    def __init__(self, sandbox: LocalSandbox, stateful: bool) -> None:
        self._sandbox = sandbox
        self.stateful = stateful
        self._worker: Worker | None = None
        self._lost = False
        self._lock = threading.Lock()
        self._closed = False
        self.expired = False
        self.last_used = time.monotonic()

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        validate_code(code)
        with self._lock:
            self._check_open()
            try:
                return self._sandbox._run(self if self.stateful else None, code, timeout_s)
            finally:
                self.last_used = time.monotonic()

    def close(self, expired: bool = False, blocking: bool = True) -> None:
        """Idempotent. The TTL sweeper closes with blocking=False so it never waits on a run."""
        if not self._lock.acquire(blocking=blocking):
            return
        try:
            if self._closed:
                return
            self._closed = True
            self.expired = expired
            worker, self._worker = self._worker, None
        finally:
            self._lock.release()
        with self._sandbox._lock:
            self._sandbox._sessions.discard(self)
        if worker is not None:
            self._sandbox._release_session_worker(worker)

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            why = f"idle longer than session_ttl_s={self._sandbox.config.session_ttl_s}" if self.expired else "closed"
            raise SandboxClosedError(f"session is {why}")
        self._sandbox._check_open()


class LocalAsyncSession(AsyncSession):
    """asyncio face: the blocking work runs in the sandbox's thread pool, never on the loop."""

    def __init__(self, session: LocalSession) -> None:
        self._session = session
        self.stateful = session.stateful

    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        validate_code(code)
        return await self._session._sandbox._in_thread(self._session.run, code, timeout_s)

    async def close(self) -> None:
        """Never blocks the loop: a run still in flight (its caller was cancelled) holds the
        session's lock until it ends, up to its timeout, so closing then waits in a thread."""
        session = self._session
        if session.closed:
            return
        if session._worker is None and not session._lock.locked():
            session.close()  # nothing to hand back and nothing running: no thread hop
            return
        await session._sandbox._in_thread(session.close)

    @property
    def closed(self) -> bool:
        return self._session.closed
