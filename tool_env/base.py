"""The backend contract: a Sandbox hands out sessions; a session runs code and returns results.

Every backend (local, e2b, ray) implements `Sandbox` and passes the shared contract suite
in tests/tool_env/contract.py. Sync and asyncio faces mirror each other name for name.
"""

from __future__ import annotations

import abc
from typing import Any

from tool_env.config import SandboxConfig
from tool_env.result import ExecutionResult

HEALTH_CHECK_OUTPUT = "sandbox-ok"
HEALTH_CHECK_CODE = f"print({HEALTH_CHECK_OUTPUT!r})"


class SandboxClosedError(RuntimeError):
    """Raised when a closed sandbox or session is used."""


class SandboxUnavailableError(RuntimeError):
    """The backend cannot run code at all (misconfigured, unreachable, cannot be placed).

    Raised by construction and by `Sandbox.check()`, so a run fails at start with one message
    instead of feeding every code block an error text.
    """


class Session(abc.ABC):
    """One conversation with the interpreter. Stateless sessions start every run fresh."""

    stateful: bool

    @abc.abstractmethod
    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSession(abc.ABC):
    """asyncio twin of `Session`."""

    stateful: bool

    @abc.abstractmethod
    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Sandbox(abc.ABC):
    """A backend: owns workers/connections, is shared by many sessions, thread-safe."""

    config: SandboxConfig

    @abc.abstractmethod
    def session(self, stateful: bool | None = None) -> Session: ...

    @abc.abstractmethod
    def async_session(self, stateful: bool | None = None) -> AsyncSession: ...

    @abc.abstractmethod
    def metrics(self) -> dict[str, float]:
        """Counters and latency summaries as a flat dict of floats (for verl's tracker)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def check(self) -> None:
        """Validate and warm: one trivial stateless run must succeed, else SandboxUnavailableError.

        Callers run it once when a rollout worker starts (off its event loop).
        """
        try:
            result = self.run(HEALTH_CHECK_CODE)
        except SandboxUnavailableError:
            raise
        except Exception as exc:
            raise SandboxUnavailableError(
                f"the {self.config.backend} sandbox failed its start-up check: {type(exc).__name__}: {exc}"
            ) from exc
        if not result.ok or result.stdout.strip() != HEALTH_CHECK_OUTPUT:
            what = f"{result.error.name}: {result.error.message}" if result.error else f"stdout {result.stdout!r}"
            raise SandboxUnavailableError(
                f"the {self.config.backend} sandbox failed its start-up check (print({HEALTH_CHECK_OUTPUT!r}) gave {what})"
            )

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        """One stateless run: open a session, run, close."""
        with self.session(stateful=False) as s:
            return s.run(code, timeout_s)

    async def arun(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        async with self.async_session(stateful=False) as s:
            return await s.run(code, timeout_s)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


MIN_TIMEOUT_S = 0.01
MAX_TIMEOUT_S = 3600.0


def check_timeout(timeout_s: Any, default: float) -> float:
    """A per-call timeout (None = the config's default), validated the same way by every backend."""
    if timeout_s is None:
        return default
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)):
        raise TypeError(f"timeout_s must be a number of seconds, got {type(timeout_s).__name__}")
    if not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s={timeout_s} is outside [{MIN_TIMEOUT_S}, {MAX_TIMEOUT_S}]")
    return float(timeout_s)


def validate_code(code: Any) -> str:
    """Reject non-str code with a clear error before it reaches a worker."""
    if not isinstance(code, str):
        raise TypeError(f"code must be str, got {type(code).__name__}")
    return code


__all__ = ["AsyncSession", "Sandbox", "SandboxClosedError", "SandboxUnavailableError", "Session", "check_timeout", "validate_code"]
