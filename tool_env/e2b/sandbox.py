"""`E2BSandbox`: the backend object; owns the API key, the sessions and the counters.

Creating a cloud sandbox retries refusals (429 rate limit, 503 busy) with exponential
backoff; authentication, a bad template or a refusal past the retries make the run report
`SandboxUnavailable` (counted under `e2b/*`), never an exception out of `run`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tool_env.base import Sandbox, SandboxClosedError
from tool_env.config import SandboxConfig
from tool_env.e2b.cloud import AsyncCloudSandbox, CloudSandbox, E2BCloud
from tool_env.e2b.options import MAX_RETRY_BACKOFF_S, E2BOptions, read_api_key
from tool_env.e2b.results import INFRA_ERRORS, RETRYABLE, failure_kind
from tool_env.e2b.session import AsyncE2BSession, E2BSession
from tool_env.metrics import SandboxMetrics

logger = logging.getLogger(__name__)

T = TypeVar("T")
COUNTERS = (
    "sandboxes_started", "sandboxes_killed", "kill_failures", "create_failures", "create_retries",
    "auth_failures", "rate_limited", "request_timeouts", "execution_timeouts", "infra_errors",
)  # fmt: skip


class E2BSandbox(Sandbox):
    """Sandbox backend on E2B's cloud. See the package docstring for options."""

    def __init__(self, config: SandboxConfig | None = None, *, cloud: E2BCloud | None = None) -> None:
        self.config = config or SandboxConfig(backend="e2b")
        self.options = E2BOptions.from_extra(self.config.extra)
        self._api_key = read_api_key(self.options)  # fail at construction, not mid-rollout
        self._cloud = cloud or E2BCloud(self.options, lifetime_s=self.config.session_ttl_s)
        self.stats = SandboxMetrics()
        self.closed = False
        self._lock = threading.Lock()
        self._sessions: set[E2BSession | AsyncE2BSession] = set()
        self._counts = dict.fromkeys(COUNTERS, 0)

    def session(self, stateful: bool | None = None) -> E2BSession:
        return self._register(E2BSession(self, self._stateful(stateful)))

    def async_session(self, stateful: bool | None = None) -> AsyncE2BSession:
        return self._register(AsyncE2BSession(self, self._stateful(stateful)))

    def metrics(self) -> dict[str, float]:
        metrics = self.stats.snapshot()
        with self._lock:
            metrics.update({f"e2b/{name}": float(n) for name, n in self._counts.items()})
            metrics["e2b/open_sessions"] = float(len(self._sessions))
        return metrics

    def close(self) -> None:
        """Close every open session and kill its cloud sandbox (async ones by id)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            sessions = list(self._sessions)
        for session in sessions:
            if isinstance(session, E2BSession):
                session.close()
            elif (sandbox_id := session.abandon()) is not None:
                self._guarded_kill(lambda: self._cloud.kill_by_id(sandbox_id, self._api_key), sandbox_id)
        with self._lock:
            self._sessions.clear()

    # -- used by the sessions -------------------------------------------------------------
    def start_cloud(self) -> CloudSandbox:
        attempt = 0
        while True:
            try:
                cloud = self._cloud.create(self._api_key)
                break
            except BaseException as exc:
                if not self._retry_create(exc, attempt):
                    raise
            time.sleep(self._backoff_s(attempt))
            attempt += 1
        self._count("sandboxes_started")
        return cloud

    async def astart_cloud(self) -> AsyncCloudSandbox:
        attempt = 0
        while True:
            try:
                cloud = await self._cloud.acreate(self._api_key)
                break
            except BaseException as exc:
                if not self._retry_create(exc, attempt):
                    raise
            await asyncio.sleep(self._backoff_s(attempt))
            attempt += 1
        self._count("sandboxes_started")
        return cloud

    def kill_cloud(self, cloud: CloudSandbox) -> None:
        self._guarded_kill(cloud.kill, cloud.sandbox_id)

    async def akill_cloud(self, cloud: AsyncCloudSandbox) -> None:
        await self._guarded_akill(cloud.kill, cloud.sandbox_id)

    def forget(self, session: E2BSession | AsyncE2BSession) -> None:
        with self._lock:
            self._sessions.discard(session)

    def count_failure(self, exc: BaseException) -> None:
        self._count(failure_kind(exc))

    # -- internals ------------------------------------------------------------------------
    def _retry_create(self, exc: BaseException, attempt: int) -> bool:
        """Count a failed create; True if it is worth another try."""
        if not isinstance(exc, INFRA_ERRORS):
            return False  # not the cloud's doing: propagate as is
        if isinstance(exc, RETRYABLE) and attempt < self.options.create_retries:
            self._count("create_retries")
            logger.info("E2B refused a sandbox (%s); retry %d of %d", exc, attempt + 1, self.options.create_retries)
            return not self.closed
        self._count("create_failures")
        self.count_failure(exc)
        return False

    def _backoff_s(self, attempt: int) -> float:
        """Exponential backoff with jitter, so many workers refused together do not retry together."""
        return min(MAX_RETRY_BACKOFF_S, self.options.retry_backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    def _stateful(self, stateful: bool | None) -> bool:
        if self.closed:
            raise SandboxClosedError("E2BSandbox is closed")
        return self.config.stateful if stateful is None else stateful

    def _register(self, session: T) -> T:
        with self._lock:
            self._sessions.add(session)  # type: ignore[arg-type]
        return session

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _guarded_kill(self, kill: Callable[[], Any], sandbox_id: str) -> None:
        """Kill failures are logged and counted, never raised: E2B's lifetime limit still ends it."""
        try:
            kill()
            self._count("sandboxes_killed")
        except Exception as exc:  # noqa: BLE001 - a failed kill must not mask the caller's work
            self._count("kill_failures")
            logger.warning("E2B sandbox %s: kill failed (%s); its E2B lifetime will end it", sandbox_id, exc)

    async def _guarded_akill(self, kill: Callable[[], Awaitable[Any]], sandbox_id: str) -> None:
        try:
            await kill()
            self._count("sandboxes_killed")
        except Exception as exc:  # noqa: BLE001
            self._count("kill_failures")
            logger.warning("E2B sandbox %s: kill failed (%s); its E2B lifetime will end it", sandbox_id, exc)
