"""Sync and asyncio sessions on the Ray pool: wait on an actor, never hang on a dead one."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from tool_env.base import AsyncSession, SandboxClosedError, Session
from tool_env.result import ExecutionResult

if TYPE_CHECKING:
    from tool_env.ray.router import RaySandbox, _Call, _Route

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 10.0  # closing a remote session waits at most this
PING_TIMEOUT_S = 10.0  # an actor past its call deadline must answer a ping within this to be waited for


class _RouteSession:
    """What the sync and asyncio faces share: the owning pool, the route (stateful) and the closed flag."""

    def __init__(self, owner: RaySandbox, route: _Route | None) -> None:
        self._owner = owner
        self._route = route
        self.stateful = route is not None
        self._closed = False

    def _submit(self, code: str, timeout_s: float | None) -> _Call:
        if self._closed:
            raise SandboxClosedError("Ray session is closed")
        return self._owner.submit(self._route, code, timeout_s)


class RaySession(_RouteSession, Session):
    """Sync session; a stateful one keeps its interpreter on one actor."""

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        call = self._submit(code, timeout_s)
        outcome = None if call.ref is None else self._wait(call)
        return self._owner.settle(call, outcome, self._route)

    def _wait(self, call: _Call) -> Any:
        """The actor's answer; past the deadline, keep waiting only while the actor answers pings."""
        wait = call.deadline_s
        try:
            while True:
                try:
                    return ray.get(call.ref, timeout=wait)
                except RayActorError as exc:
                    return exc
                except GetTimeoutError as exc:
                    if not _answers_sync(self._owner.ping_ref(call)):
                        return exc
                    wait = self._owner.options.call_slack_s
        except BaseException:
            self._owner.release(call)
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._route is not None and (ref := self._owner.close_route(self._route)) is not None:
            try:
                ray.get(ref, timeout=CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the actor's TTL sweep reaps what we could not
                logger.debug("remote session close failed: %s", exc)


class AsyncRaySession(_RouteSession, AsyncSession):
    """asyncio session: awaits the actor's ObjectRef without blocking the event loop."""

    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        call = self._submit(code, timeout_s)
        outcome = None if call.ref is None else await self._wait(call)
        return self._owner.settle(call, outcome, self._route)

    async def _wait(self, call: _Call) -> Any:
        ref = call.ref
        answer = asyncio.wrap_future(ref.future())
        wait = call.deadline_s
        try:
            while True:
                done, _ = await asyncio.wait({answer}, timeout=wait)
                if done:
                    try:
                        return answer.result()
                    except RayActorError as exc:
                        return exc
                if not await _answers_async(self._owner.ping_ref(call)):
                    return asyncio.TimeoutError()
                wait = self._owner.options.call_slack_s
        except BaseException:  # cancelled (or worse): stop the remote run, free its slot
            answer.cancel()
            _cancel_quietly(ref)
            self._owner.release(call)
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._route is not None and (ref := self._owner.close_route(self._route)) is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(ref.future()), CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the actor's TTL sweep reaps what we could not
                logger.debug("remote session close failed: %s", exc)


def _answers_sync(ping: Any | None) -> bool:
    if ping is None:
        return False
    try:
        ray.get(ping, timeout=PING_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 - any failure to answer means not alive
        return False


async def _answers_async(ping: Any | None) -> bool:
    if ping is None:
        return False
    try:
        await asyncio.wait_for(asyncio.wrap_future(ping.future()), PING_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001
        return False


def _cancel_quietly(ref: Any) -> None:
    try:
        ray.cancel(ref)
    except Exception as exc:  # noqa: BLE001 - finished or gone is fine
        logger.debug("ray.cancel failed: %s", exc)

