"""E2B sessions: one core that holds the logic, and thin sync and asyncio faces over it.

The faces only differ in how they wait (a thread lock and blocking SDK calls, or an asyncio
lock and awaited ones); validation, the choice of kernel context, failure mapping and
bookkeeping are the core's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from e2b_code_interpreter import Execution

from tool_env.base import AsyncSession, SandboxClosedError, Session, check_timeout, validate_code
from tool_env.e2b.cloud import AsyncCloudSandbox, CloudSandbox
from tool_env.e2b.results import (
    INFRA_ERRORS,
    PartialOutput,
    result_from_execution,
    result_from_failure,
    unavailable_result,
)
from tool_env.result import ExecutionResult

if TYPE_CHECKING:
    from tool_env.e2b.sandbox import E2BSandbox

logger = logging.getLogger(__name__)


class SessionCore:
    """What the sync and async sessions share: limits, the cloud sandbox's id, result mapping."""

    def __init__(self, owner: E2BSandbox, stateful: bool) -> None:
        self.owner = owner
        self.stateful = stateful
        self.closed = False
        self.sandbox_id: str | None = None
        self.lost = False  # the previous stateful sandbox broke: the next result says so

    def begin(self, code: Any, timeout_s: float | None) -> float:
        validate_code(code)
        if self.closed or self.owner.closed:
            raise SandboxClosedError("E2B session is closed")
        return check_timeout(timeout_s, self.owner.config.timeout_s)

    def bind(self, cloud: CloudSandbox | AsyncCloudSandbox) -> None:
        self.sandbox_id = cloud.sandbox_id

    def run_kwargs(self, timeout: float, partial: PartialOutput) -> dict[str, Any]:
        return {
            "timeout": timeout,
            "request_timeout": self.owner.options.request_timeout_s,
            "on_stdout": partial.on_stdout,
            "on_stderr": partial.on_stderr,
        }

    def finish(self, execution: Execution, started: float) -> ExecutionResult:
        duration = time.monotonic() - started
        result = result_from_execution(execution, duration, self.owner.config.max_output_chars, self.sandbox_id or "")
        self._mark_restart(result)
        return self._record(result, duration)

    def fail(self, exc: BaseException, partial: PartialOutput, timeout: float, started: float) -> ExecutionResult:
        """A run that raised: its result, and (unless it only timed out) the sandbox is lost."""
        duration = time.monotonic() - started
        result = result_from_failure(exc, partial, timeout, duration, self.owner.config.max_output_chars)
        logger.log(
            logging.INFO if result.timed_out else logging.WARNING,
            "E2B sandbox %s: %s",
            self.sandbox_id,
            result.error.message if result.error else "",
        )
        self.owner.count_failure(exc)
        if result.timed_out:
            self._mark_restart(result)  # ran in the fresh sandbox: it reports the earlier loss
        else:
            self.lost = self.stateful  # this sandbox is dropped; its variables go with it
        return self._record(result, duration)

    def unavailable(self, exc: BaseException, started: float) -> ExecutionResult:
        duration = time.monotonic() - started
        logger.warning("E2B: no sandbox for this session (%s: %s)", type(exc).__name__, exc)
        return self._record(unavailable_result(exc, duration), duration)

    def _mark_restart(self, result: ExecutionResult) -> None:
        """The first run in a replacement sandbox says its state was lost, like the local backend."""
        if self.lost:
            result.extra["session_restarted"] = True
            self.lost = False

    def _record(self, result: ExecutionResult, duration: float) -> ExecutionResult:
        self.owner.stats.record(result, duration)
        return result


class E2BSession(Session):
    """A sync session backed by one `e2b_code_interpreter.Sandbox`."""

    def __init__(self, owner: E2BSandbox, stateful: bool) -> None:
        self._core = SessionCore(owner, stateful)
        self.stateful = stateful
        self._cloud: CloudSandbox | None = None
        self._lock = threading.Lock()  # one run at a time: a kernel executes cells in order

    @property
    def sandbox_id(self) -> str | None:
        return self._core.sandbox_id

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        timeout = self._core.begin(code, timeout_s)
        with self._lock:
            started = time.monotonic()
            try:
                cloud = self._ensure_cloud()
            except INFRA_ERRORS as exc:
                return self._core.unavailable(exc, started)
            partial = PartialOutput()
            try:
                execution = self._execute(cloud, code, self._core.run_kwargs(timeout, partial))
            except INFRA_ERRORS as exc:
                result = self._core.fail(exc, partial, timeout, started)
                if not result.timed_out:
                    self._drop_cloud()  # broken: the next run starts a fresh sandbox
                return result
            except BaseException:
                self._drop_cloud()  # unknown kernel state (or an interrupt): never leave it running
                raise
            return self._core.finish(execution, started)

    def _ensure_cloud(self) -> CloudSandbox:
        if self._cloud is None:
            self._cloud = self._core.owner.start_cloud()
            self._core.bind(self._cloud)
        return self._cloud

    def _execute(self, cloud: CloudSandbox, code: str, kwargs: dict[str, Any]) -> Execution:
        if self.stateful:
            return cloud.run_code(code, **kwargs)
        context = cloud.create_code_context()
        try:
            return cloud.run_code(code, context=context, **kwargs)
        finally:
            try:
                cloud.remove_code_context(context)
            except INFRA_ERRORS as exc:  # the run's result stands; a fresh sandbox replaces this one
                logger.warning("E2B sandbox %s: removing a code context failed (%s)", cloud.sandbox_id, exc)
                self._drop_cloud()

    def _drop_cloud(self) -> None:
        cloud, self._cloud = self._cloud, None
        if cloud is not None:
            self._core.owner.kill_cloud(cloud)

    def close(self) -> None:
        if self._core.closed:
            return
        self._core.closed = True
        with self._lock:
            self._drop_cloud()
        self._core.owner.forget(self)


class AsyncE2BSession(AsyncSession):
    """The asyncio twin of `E2BSession`, backed by `e2b_code_interpreter.AsyncSandbox`."""

    def __init__(self, owner: E2BSandbox, stateful: bool) -> None:
        self._core = SessionCore(owner, stateful)
        self.stateful = stateful
        self._cloud: AsyncCloudSandbox | None = None
        self._lock: asyncio.Lock | None = None  # created inside the running loop

    @property
    def sandbox_id(self) -> str | None:
        return self._core.sandbox_id

    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        timeout = self._core.begin(code, timeout_s)
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            started = time.monotonic()
            try:
                cloud = await self._ensure_cloud()
            except INFRA_ERRORS as exc:
                return self._core.unavailable(exc, started)
            partial = PartialOutput()
            try:
                execution = await self._execute(cloud, code, self._core.run_kwargs(timeout, partial))
            except INFRA_ERRORS as exc:
                result = self._core.fail(exc, partial, timeout, started)
                if not result.timed_out:
                    await self._drop_cloud()
                return result
            except BaseException:  # includes cancellation: the cloud sandbox must not outlive us
                await self._drop_cloud()
                raise
            return self._core.finish(execution, started)

    async def _ensure_cloud(self) -> AsyncCloudSandbox:
        if self._cloud is None:
            self._cloud = await self._core.owner.astart_cloud()
            self._core.bind(self._cloud)
        return self._cloud

    async def _execute(self, cloud: AsyncCloudSandbox, code: str, kwargs: dict[str, Any]) -> Execution:
        if self.stateful:
            return await cloud.run_code(code, **kwargs)
        context = await cloud.create_code_context()
        try:
            return await cloud.run_code(code, context=context, **kwargs)
        finally:
            try:
                await cloud.remove_code_context(context)
            except INFRA_ERRORS as exc:
                logger.warning("E2B sandbox %s: removing a code context failed (%s)", cloud.sandbox_id, exc)
                await self._drop_cloud()

    async def _drop_cloud(self) -> None:
        cloud, self._cloud = self._cloud, None
        if cloud is not None:
            await self._core.owner.akill_cloud(cloud)

    async def close(self) -> None:
        if self._core.closed:
            return
        self._core.closed = True
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            await self._drop_cloud()
        self._core.owner.forget(self)

    def abandon(self) -> str | None:
        """Mark closed without awaiting (E2BSandbox.close from sync code); returns the id to kill."""
        self._core.closed = True
        cloud, self._cloud = self._cloud, None
        return cloud.sandbox_id if cloud is not None else None
