"""E2B cloud backend: every session owns one E2B sandbox, never shared between trajectories.

A stateful session runs all its code in the sandbox's default Jupyter kernel, so variables
persist. A stateless session runs each snippet in a fresh kernel context that is removed
afterwards, so no variable leaks from one run to the next (the session's disk is shared by
its runs, never by other sessions). The cloud sandbox is created on the
first run (opening and closing an unused session costs nothing) and killed when the session
closes, when it breaks, and when the E2BSandbox closes; its E2B lifetime is the session TTL,
so a leaked session dies on its own.

Options in `SandboxConfig.extra` (all optional):
    e2b_api_key_env        environment variable holding the API key (default E2B_API_KEY)
    e2b_template           sandbox template (default: the SDK's code-interpreter template)
    e2b_request_timeout_s  connect / control-plane timeout per request (default 30)
    e2b_allow_internet     let sandboxed code reach the internet (default False)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from e2b import (
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxUnreachableException,
    TimeoutException,
)
from e2b_code_interpreter import Execution, OutputMessage

from tool_env.base import AsyncSession, Sandbox, SandboxClosedError, Session, check_timeout, validate_code
from tool_env.config import SandboxConfig
from tool_env.metrics import SandboxMetrics
from tool_env.result import ExecutionError, ExecutionResult
from tool_env.truncate import truncate_text

logger = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "E2B_API_KEY"
DEFAULT_REQUEST_TIMEOUT_S = 30.0
CRASHED = "WorkerCrashed"  # error name shared with the other backends for "the sandbox died"

# Cloud failures that mean the sandbox is gone or unusable: report the run as crashed and
# start a fresh sandbox on the next run. Checked before TimeoutException (their base class).
_SANDBOX_GONE = (SandboxNotRunningException, SandboxUnreachableException, SandboxNotFoundException)
_INFRA_ERRORS = (SandboxException, httpx.TransportError)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class E2BOptions:
    """The `e2b_*` keys of SandboxConfig.extra, validated."""

    api_key_env: str = DEFAULT_API_KEY_ENV
    template: str | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    allow_internet: bool = False

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> E2BOptions:
        known = {f"e2b_{name}" for name in cls.__dataclass_fields__}
        unknown = sorted(k for k in extra if k.startswith("e2b_") and k not in known)
        if unknown:
            raise ValueError(f"unknown E2B options {unknown} in SandboxConfig.extra; known: {sorted(known)}")
        options = cls(**{k[len("e2b_") :]: v for k, v in extra.items() if k in known})
        if not options.api_key_env or not isinstance(options.api_key_env, str):
            raise ValueError("SandboxConfig.extra['e2b_api_key_env'] must name an environment variable")
        if not options.request_timeout_s > 0:
            raise ValueError(
                f"SandboxConfig.extra['e2b_request_timeout_s'] must be > 0, got {options.request_timeout_s}"
            )
        return options


def read_api_key(options: E2BOptions) -> str:
    """The API key from the environment, or an error that says exactly what to set."""
    key = os.environ.get(options.api_key_env, "").strip()
    if not key:
        raise RuntimeError(
            f"the E2B backend needs an API key: set the environment variable {options.api_key_env} "
            "(get a key at https://e2b.dev/dashboard; the variable name is configurable with "
            "SandboxConfig.extra['e2b_api_key_env'])"
        )
    return key


class CloudSandbox(Protocol):
    """The part of `e2b_code_interpreter.Sandbox` this backend uses."""

    sandbox_id: str

    def run_code(self, code: str, **kwargs: Any) -> Execution: ...
    def create_code_context(self) -> Any: ...
    def remove_code_context(self, context: Any) -> None: ...
    def kill(self) -> Any: ...


class AsyncCloudSandbox(Protocol):
    """The part of `e2b_code_interpreter.AsyncSandbox` this backend uses."""

    sandbox_id: str

    async def run_code(self, code: str, **kwargs: Any) -> Execution: ...
    async def create_code_context(self) -> Any: ...
    async def remove_code_context(self, context: Any) -> None: ...
    async def kill(self) -> Any: ...


class E2BCloud:
    """The network boundary: creates and kills cloud sandboxes through the official SDK.

    Tests replace this one object with a fake; everything above it is the real adapter.
    """

    def __init__(self, options: E2BOptions, lifetime_s: float) -> None:
        self._options = options
        self._lifetime_s = max(1, int(lifetime_s))

    def _create_kwargs(self, api_key: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "timeout": self._lifetime_s,
            "allow_internet_access": self._options.allow_internet,
            "api_key": api_key,
            "request_timeout": self._options.request_timeout_s,
        }
        if self._options.template:
            kwargs["template"] = self._options.template
        return kwargs

    def create(self, api_key: str) -> CloudSandbox:
        from e2b_code_interpreter import Sandbox as SdkSandbox

        return SdkSandbox.create(**self._create_kwargs(api_key))

    async def acreate(self, api_key: str) -> AsyncCloudSandbox:
        from e2b_code_interpreter import AsyncSandbox as SdkAsyncSandbox

        return await SdkAsyncSandbox.create(**self._create_kwargs(api_key))

    def kill_by_id(self, sandbox_id: str, api_key: str) -> None:
        """Kill a sandbox we only know by id (an async session left open at shutdown)."""
        from e2b_code_interpreter import Sandbox as SdkSandbox

        SdkSandbox.kill(sandbox_id, api_key=api_key, request_timeout=self._options.request_timeout_s)


def result_from_execution(execution: Execution, duration_s: float, max_chars: int, sandbox_id: str) -> ExecutionResult:
    """Map the SDK's `Execution` onto our result: logs joined, error as data, output capped.

    Jupyter reports an uncaught exception only as data; a script would also print its
    traceback to stderr, so it is appended there (without colour codes) like every backend.
    """
    stderr_text = "".join(execution.logs.stderr)
    error = None
    if execution.error is not None:
        traceback, _ = truncate_text(_ANSI_ESCAPE.sub("", execution.error.traceback or ""), max_chars)
        error = ExecutionError(name=execution.error.name, message=execution.error.value, traceback=traceback)
        if traceback:
            stderr_text += traceback if traceback.endswith("\n") else traceback + "\n"
    stdout, stdout_cut = truncate_text("".join(execution.logs.stdout), max_chars)
    stderr, stderr_cut = truncate_text(stderr_text, max_chars)
    # Jupyter shows a cell's last expression as a "result"; scripts (the protocol's model) do
    # not print it, so it stays out of stdout and is kept for callers who want it.
    displayed = [r.text for r in execution.results if r.text is not None]
    return ExecutionResult(
        stdout=stdout,
        stderr=stderr,
        error=error,
        exit_code=1 if error is not None else 0,
        duration_s=duration_s,
        stdout_truncated=stdout_cut,
        stderr_truncated=stderr_cut,
        extra={"backend": "e2b", "sandbox_id": sandbox_id, "displayed": displayed},
    )


def result_from_failure(
    exc: BaseException, partial: _PartialOutput, timeout_s: float, duration_s: float, max_chars: int
) -> ExecutionResult:
    """Map an SDK exception raised by `run_code`: an execution timeout or a broken sandbox."""
    stdout, stdout_cut = truncate_text("".join(partial.stdout), max_chars)
    stderr, stderr_cut = truncate_text("".join(partial.stderr), max_chars)
    timed_out = isinstance(exc, TimeoutException) and not isinstance(exc, _SANDBOX_GONE)
    if timed_out:
        error = ExecutionError("TimeoutError", f"execution exceeded the time limit of {timeout_s:g} s")
    else:
        error = ExecutionError(CRASHED, f"E2B sandbox failed: {type(exc).__name__}: {exc}")
    return ExecutionResult(
        stdout=stdout,
        stderr=stderr,
        error=error,
        exit_code=None,
        timed_out=timed_out,
        duration_s=duration_s,
        stdout_truncated=stdout_cut,
        stderr_truncated=stderr_cut,
        extra={"backend": "e2b"},
    )


class _PartialOutput:
    """Collects streamed output, so a timed-out run still shows what it printed."""

    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def on_stdout(self, message: OutputMessage) -> None:
        self.stdout.append(message.line)

    def on_stderr(self, message: OutputMessage) -> None:
        self.stderr.append(message.line)


T = TypeVar("T")


class _SessionCore:
    """What the sync and async sessions share: limits, bookkeeping, result mapping."""

    def __init__(self, owner: E2BSandbox, stateful: bool) -> None:
        self.owner = owner
        self.stateful = stateful
        self.closed = False
        self.sandbox_id: str | None = None

    def begin(self, code: Any, timeout_s: float | None) -> float:
        validate_code(code)
        if self.closed or self.owner.closed:
            raise SandboxClosedError("E2B session is closed")
        return check_timeout(timeout_s, self.owner.config.timeout_s)

    def run_kwargs(self, timeout: float, partial: _PartialOutput) -> dict[str, Any]:
        return {
            "timeout": timeout,
            "request_timeout": self.owner.options.request_timeout_s,
            "on_stdout": partial.on_stdout,
            "on_stderr": partial.on_stderr,
        }

    def finish(self, execution: Execution, started: float) -> ExecutionResult:
        duration = time.monotonic() - started
        result = result_from_execution(execution, duration, self.owner.config.max_output_chars, self.sandbox_id or "")
        self.owner.stats.record(result, duration)
        return result

    def fail(self, exc: BaseException, partial: _PartialOutput, timeout: float, started: float) -> ExecutionResult:
        duration = time.monotonic() - started
        result = result_from_failure(exc, partial, timeout, duration, self.owner.config.max_output_chars)
        logger.log(
            logging.INFO if result.timed_out else logging.WARNING,
            "E2B sandbox %s: %s",
            self.sandbox_id,
            result.error.message if result.error else "",
        )
        self.owner.stats.record(result, duration)
        return result


class E2BSession(Session):
    """A sync session backed by one `e2b_code_interpreter.Sandbox`."""

    def __init__(self, owner: E2BSandbox, stateful: bool) -> None:
        self._core = _SessionCore(owner, stateful)
        self.stateful = stateful
        self._cloud: CloudSandbox | None = None
        self._lock = threading.Lock()  # one run at a time: a kernel executes cells in order

    @property
    def sandbox_id(self) -> str | None:
        return self._core.sandbox_id

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        timeout = self._core.begin(code, timeout_s)
        with self._lock:
            cloud = self._ensure_cloud()
            partial = _PartialOutput()
            started = time.monotonic()
            try:
                execution = self._execute(cloud, code, self._core.run_kwargs(timeout, partial))
            except _INFRA_ERRORS as exc:
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
            self._core.sandbox_id = self._cloud.sandbox_id
        return self._cloud

    def _execute(self, cloud: CloudSandbox, code: str, kwargs: dict[str, Any]) -> Execution:
        if self.stateful:
            return cloud.run_code(code, **kwargs)
        context = cloud.create_code_context()
        try:
            return cloud.run_code(code, context=context, **kwargs)
        finally:
            self._remove_context(cloud, context)

    def _remove_context(self, cloud: CloudSandbox, context: Any) -> None:
        try:
            cloud.remove_code_context(context)
        except _INFRA_ERRORS as exc:  # the run's result stands; a fresh sandbox replaces this one
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
        self._core = _SessionCore(owner, stateful)
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
            cloud = await self._ensure_cloud()
            partial = _PartialOutput()
            started = time.monotonic()
            try:
                execution = await self._execute(cloud, code, self._core.run_kwargs(timeout, partial))
            except _INFRA_ERRORS as exc:
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
            self._core.sandbox_id = self._cloud.sandbox_id
        return self._cloud

    async def _execute(self, cloud: AsyncCloudSandbox, code: str, kwargs: dict[str, Any]) -> Execution:
        if self.stateful:
            return await cloud.run_code(code, **kwargs)
        context = await cloud.create_code_context()
        try:
            return await cloud.run_code(code, context=context, **kwargs)
        finally:
            await self._remove_context(cloud, context)

    async def _remove_context(self, cloud: AsyncCloudSandbox, context: Any) -> None:
        try:
            await cloud.remove_code_context(context)
        except _INFRA_ERRORS as exc:
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


class E2BSandbox(Sandbox):
    """Sandbox backend on E2B's cloud. See the module docstring for options."""

    def __init__(self, config: SandboxConfig | None = None, *, cloud: E2BCloud | None = None) -> None:
        self.config = config or SandboxConfig(backend="e2b")
        self.options = E2BOptions.from_extra(self.config.extra)
        self._api_key = read_api_key(self.options)  # fail at construction, not mid-rollout
        self._cloud = cloud or E2BCloud(self.options, lifetime_s=self.config.session_ttl_s)
        self.stats = SandboxMetrics()
        self.closed = False
        self._lock = threading.Lock()
        self._sessions: set[E2BSession | AsyncE2BSession] = set()
        self._counts = {"sandboxes_started": 0, "sandboxes_killed": 0, "kill_failures": 0}

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
        cloud = self._cloud.create(self._api_key)
        self._count("sandboxes_started")
        return cloud

    async def astart_cloud(self) -> AsyncCloudSandbox:
        cloud = await self._cloud.acreate(self._api_key)
        self._count("sandboxes_started")
        return cloud

    def kill_cloud(self, cloud: CloudSandbox) -> None:
        self._guarded_kill(cloud.kill, cloud.sandbox_id)

    async def akill_cloud(self, cloud: AsyncCloudSandbox) -> None:
        await self._guarded_akill(cloud.kill, cloud.sandbox_id)

    def forget(self, session: E2BSession | AsyncE2BSession) -> None:
        with self._lock:
            self._sessions.discard(session)

    # -- internals ------------------------------------------------------------------------
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


__all__ = [
    "AsyncE2BSession",
    "E2BCloud",
    "E2BOptions",
    "E2BSandbox",
    "E2BSession",
    "read_api_key",
    "result_from_execution",
    "result_from_failure",
]
