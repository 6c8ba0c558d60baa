"""`SandboxActor`: what runs on a (CPU) node, one inner backend plus its stateful sessions."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from typing import Any

import ray

from tool_env.base import AsyncSession
from tool_env.config import SandboxConfig
from tool_env.result import ExecutionResult

logger = logging.getLogger(__name__)

class SandboxActor:
    """Runs on a (CPU) node: one inner backend plus the stateful sessions routed here.

    All methods are coroutines, so Ray runs this as an asyncio actor: many runs overlap,
    limited only by the inner backend's own pool.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from tool_env import create_sandbox

        self._config = cap_pool_to_reserved_cpus(SandboxConfig.from_mapping(config), reserved_cpus())
        self._sandbox = create_sandbox(self._config)
        self._sessions: dict[str, AsyncSession] = {}
        self._last_used: dict[str, float] = {}
        self._last_sweep = time.monotonic()

    async def ready(self) -> str:
        """The node this actor landed on (lets callers check placement)."""
        return ray.get_runtime_context().get_node_id()

    async def process_id(self) -> int:
        return os.getpid()

    async def pool_size(self) -> int:
        """Concurrent runs (warm workers) of the inner backend: never more than the CPUs reserved."""
        return self._config.effective_pool_size

    async def run(self, session_id: str | None, code: str, timeout_s: float | None) -> ExecutionResult:
        await self._close_idle_sessions()
        if session_id is None:
            return await self._sandbox.arun(code, timeout_s)
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = self._sandbox.async_session(stateful=True)
        self._last_used[session_id] = math.inf  # never idle while running
        try:
            return await session.run(code, timeout_s)
        finally:
            self._last_used[session_id] = time.monotonic()

    async def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        self._last_used.pop(session_id, None)
        if session is not None:
            await session.close()

    async def metrics(self) -> dict[str, float]:
        metrics = self._sandbox.metrics()
        metrics["actor/open_sessions"] = float(len(self._sessions))
        return metrics

    async def _close_idle_sessions(self) -> None:
        """Sessions whose caller vanished without closing them are reaped after the TTL."""
        now = time.monotonic()
        ttl = self._config.session_ttl_s
        if now - self._last_sweep < min(ttl / 10, 60.0):
            return
        self._last_sweep = now
        for session_id in [s for s, used in self._last_used.items() if now - used > ttl]:
            logger.info("closing idle session %s after %.0f s", session_id, ttl)
            await self.close_session(session_id)


def reserved_cpus() -> float | None:
    """CPUs Ray reserved for this actor (0 when it reserved none; None outside a Ray worker)."""
    try:
        return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))
    except Exception:  # noqa: BLE001 - not inside a Ray worker
        return None


def cap_pool_to_reserved_cpus(config: SandboxConfig, cpus: float | None) -> SandboxConfig:
    """An actor runs at most one worker per reserved CPU (at least one): more would steal cores Ray gave others."""
    if cpus is None:
        return config
    limit = max(1, math.floor(cpus))
    if config.effective_pool_size <= limit:
        return config
    logger.warning("sandbox actor reserved %g CPUs: pool_size %d capped to %d", cpus, config.effective_pool_size, limit)
    return dataclasses.replace(config, pool_size=limit)
