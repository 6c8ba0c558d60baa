"""One sandbox per configuration per process, shared by every caller in that process.

Warm workers cost an interpreter start each, so the agent loop and the tool of one rollout
worker share one pool instead of starting one per trajectory.

Lifetime: a shared sandbox is built and checked once (`prepare_shared_sandbox` at worker
start, or `ashared_sandbox`, which builds it in a thread so the event loop never stalls and
every concurrent caller awaits the same build); it is closed by `close_shared_sandboxes()`,
which runs at interpreter exit and may be called earlier (tests, a worker that shuts down
its rollout). A build that fails raises `SandboxUnavailableError` to every caller, once per
attempt, with one message naming the backend.

Live stateful sessions are capped per process (`SandboxConfig.max_sessions`): each holds a
worker, so past the cap the least recently used idle session is evicted (counted in
`sandbox/session_evictions`); its next run starts a fresh interpreter and says so
(`extra["session_restarted"]`), as after a crash.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tool_env.base import AsyncSession, Sandbox, SandboxClosedError, SandboxUnavailableError, Session
from tool_env.config import SandboxConfig
from tool_env.result import ExecutionResult

logger = logging.getLogger(__name__)

_sandboxes: dict[str, "SharedSandbox"] = {}
_builds: dict[str, concurrent.futures.Future] = {}
_sandboxes_lock = threading.Lock()


def _key(config: SandboxConfig) -> str:
    # Callers pass `stateful` when they open a session, so it is not part of the key: the agent
    # loop and the tool share one warm pool even when one of them keeps state.
    return json.dumps({**config.to_dict(), "stateful": None}, sort_keys=True, default=str)


def _claim(config: SandboxConfig) -> tuple[str, "SharedSandbox | None", concurrent.futures.Future | None, bool]:
    """(key, the built sandbox or None, the build to wait on, whether this caller must run it)."""
    key = _key(config)
    with _sandboxes_lock:
        sandbox = _sandboxes.get(key)
        build = _builds.get(key)
        owner = sandbox is None and build is None
        if owner:
            build = _builds[key] = concurrent.futures.Future()
    return key, sandbox, build, owner


def shared_sandbox(config: SandboxConfig) -> "SharedSandbox":
    """The process-wide sandbox for `config`, built here (blocking, unchecked) if it is not yet."""
    return _claim_or_build(config, check=False)


def prepare_shared_sandbox(config: SandboxConfig) -> "SharedSandbox":
    """Build, validate and warm the shared sandbox now (worker start); SandboxUnavailableError if it cannot run code."""
    return _claim_or_build(config, check=True)


def _claim_or_build(config: SandboxConfig, check: bool) -> "SharedSandbox":
    """The built sandbox, or this thread's own blocking build, or the wait on another caller's."""
    key, sandbox, build, owner = _claim(config)
    if sandbox is not None:
        return sandbox
    if owner:
        _build(key, config, build, check=check)
    return build.result()


async def ashared_sandbox(config: SandboxConfig) -> "SharedSandbox":
    """`prepare_shared_sandbox` off the event loop: concurrent callers await one build."""
    key, sandbox, build, owner = _claim(config)
    if sandbox is not None:
        return sandbox
    if owner:
        threading.Thread(target=_build, args=(key, config, build, True), name="tool_env-build", daemon=True).start()
    return await asyncio.wrap_future(build)


def _build(key: str, config: SandboxConfig, build: concurrent.futures.Future, check: bool) -> None:
    """Create (and optionally check) the sandbox; publish it, or the one clear error, to every waiter."""
    from tool_env import create_sandbox

    started = time.monotonic()
    try:
        logger.info("tool_env: starting the %s sandbox shared by this process", config.backend)
        inner = create_sandbox(config)
        try:
            if check:
                inner.check()
        except BaseException:
            inner.close()
            raise
    except BaseException as exc:
        if not isinstance(exc, SandboxUnavailableError):
            exc = SandboxUnavailableError(
                f"the {config.backend} sandbox could not start: {type(exc).__name__}: {exc}"
            ).with_traceback(exc.__traceback__)
        with _sandboxes_lock:
            _builds.pop(key, None)  # the next caller tries again
        build.set_exception(exc)
        return
    sandbox = SharedSandbox(inner)
    with _sandboxes_lock:
        _sandboxes[key] = sandbox
        _builds.pop(key, None)
    logger.info("tool_env: %s sandbox ready in %.1f s", config.backend, time.monotonic() - started)
    build.set_result(sandbox)


@atexit.register
def close_shared_sandboxes() -> None:
    """Close every shared sandbox; the next `shared_sandbox` call starts a fresh one."""
    with _sandboxes_lock:
        sandboxes = list(_sandboxes.values())
        _sandboxes.clear()
    for sandbox in sandboxes:
        try:
            sandbox.close()
        except Exception:  # closing at exit must not mask the real exit status
            logger.exception("tool_env: closing a shared sandbox failed")


class SharedSandbox(Sandbox):
    """A backend plus the per-process cap on live stateful sessions (LRU eviction, counted)."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.config = inner.config
        self.max_sessions = self.config.effective_max_sessions
        self._lock = threading.Lock()
        self._live: dict[int, _Capped] = {}  # insertion order = least recently used first
        self._evictions = 0
        self._closing: set[asyncio.Task] = set()

    def session(self, stateful: bool | None = None) -> Session:
        if not self._stateful(stateful):
            return self.inner.session(stateful=False)
        return CappedSession(self)

    def async_session(self, stateful: bool | None = None) -> AsyncSession:
        if not self._stateful(stateful):
            return self.inner.async_session(stateful=False)
        return CappedAsyncSession(self)

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        return self.inner.run(code, timeout_s)

    async def arun(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        return await self.inner.arun(code, timeout_s)

    def check(self) -> None:
        self.inner.check()

    def metrics(self) -> dict[str, float]:
        metrics = self.inner.metrics()
        with self._lock:
            metrics["sandbox/session_evictions"] = float(self._evictions)
            metrics["sandbox/live_sessions"] = float(len(self._live))
            metrics["sandbox/max_sessions"] = float(self.max_sessions)
        metrics["sandbox/pool_size"] = float(self.config.effective_pool_size)
        return metrics

    def close(self) -> None:
        self.inner.close()

    def _stateful(self, stateful: bool | None) -> bool:
        return self.config.stateful if stateful is None else bool(stateful)

    # -- the cap ------------------------------------------------------------------------
    def admit(self, session: "_Capped") -> None:
        """`session` is about to hold a worker: make room by evicting the least recently used idle one."""
        with self._lock:
            self._live.pop(id(session), None)
            self._live[id(session)] = session
            victims = []
            for other in list(self._live.values()):
                if len(self._live) - len(victims) <= self.max_sessions:
                    break
                if other is not session and not other.busy:
                    victims.append(other)
            detached = []
            for victim in victims:
                del self._live[id(victim)]
                self._evictions += 1
                detached.append((victim, victim.detach()))  # under the lock: see `_Capped.begin`
        for victim, inner in detached:
            logger.info("tool_env: more than max_sessions=%d live sessions: evicted the least recently used idle one",
                        self.max_sessions)
            victim.close_detached(inner)

    def touch(self, session: "_Capped") -> None:
        with self._lock:
            session.busy = False
            if self._live.pop(id(session), None) is not None:
                self._live[id(session)] = session

    def forget(self, session: "_Capped") -> None:
        with self._lock:
            self._live.pop(id(session), None)

    def close_later(self, close: Any) -> None:
        """Close an evicted async session's inner session without making its opener wait."""
        try:
            task = asyncio.get_running_loop().create_task(close())
        except RuntimeError:  # no loop in this thread: run it to completion here
            asyncio.run(close())
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


class _Capped:
    """Bookkeeping shared by the capped sync and async sessions.

    A session is busy from `begin` to the end of its run, and an eviction only takes idle
    sessions; both happen under the owner's lock, so a run either finds its interpreter
    (and keeps it to the end) or finds it evicted and opens a fresh one, never one that a
    neighbour's admission is closing.
    """

    stateful = True

    def __init__(self, owner: SharedSandbox) -> None:
        self._owner = owner
        self._inner: Any = None
        self._evicted = False
        self.busy = False
        self.closed = False

    def detach(self) -> Any:
        """Evicted (the owner holds its lock): hand over the inner session to close."""
        inner, self._inner = self._inner, None
        self._evicted = True
        return inner

    def close_detached(self, inner: Any) -> None:
        raise NotImplementedError

    def begin(self) -> Any:
        """Mark busy; the inner session to run on, or None when one must be opened (admitted first)."""
        if self.closed:
            raise SandboxClosedError("session is closed")
        with self._owner._lock:
            self.busy = True
            inner = self._inner
        if inner is None:
            self._owner.admit(self)
        return inner

    @contextmanager
    def _running(self) -> Iterator[Any]:
        """Busy while a run is in flight (never evicted then); afterwards most recently used."""
        try:
            yield self.begin()
        finally:
            self._owner.touch(self)

    def _mark(self, result: ExecutionResult) -> ExecutionResult:
        if self._evicted:
            self._evicted = False
            result.extra["session_restarted"] = True
            result.extra["session_evicted"] = True
        return result


class CappedSession(_Capped, Session):
    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        with self._running() as inner:
            if inner is None:
                inner = self._inner = self._owner.inner.session(stateful=True)
            return self._mark(inner.run(code, timeout_s))

    def close_detached(self, inner: Any) -> None:
        if inner is not None:
            inner.close()

    def close(self) -> None:
        self.closed = True
        self._owner.forget(self)
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


class CappedAsyncSession(_Capped, AsyncSession):
    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        with self._running() as inner:
            if inner is None:
                inner = self._inner = self._owner.inner.async_session(stateful=True)
            return self._mark(await inner.run(code, timeout_s))

    def close_detached(self, inner: Any) -> None:
        if inner is not None:
            self._owner.close_later(inner.close)

    async def close(self) -> None:
        self.closed = True
        self._owner.forget(self)
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.close()
