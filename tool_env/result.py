"""Plain result types shared by every sandbox backend (in the spirit of E2B's `Execution`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExecutionError:
    """An error raised by the executed code, or by the sandbox on its behalf.

    `name` is the exception type (``"ZeroDivisionError"``) or a sandbox condition
    (``"TimeoutError"``, ``"WorkerCrashed"``, ``"MemoryError"``); errors are data, never
    strings to parse.
    """

    name: str
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class ExecutionResult:
    """Everything one run of a code snippet produced."""

    stdout: str = ""
    stderr: str = ""
    error: ExecutionError | None = None
    exit_code: int | None = 0
    timed_out: bool = False
    duration_s: float = 0.0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    queue_wait_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out

    @property
    def truncated(self) -> bool:
        return self.stdout_truncated or self.stderr_truncated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CRASHED = "WorkerCrashed"  # the worker / actor / cloud sandbox running the code died
UNAVAILABLE = "SandboxUnavailable"  # no worker could be had (E2B create refused, auth, rate limit)
INFRA_ERROR_NAMES = frozenset({CRASHED, UNAVAILABLE})
CRASH_CAUSE = "crash_cause"  # `extra` key a backend sets to CAUSED_BY_CODE when the code's own process died
CAUSED_BY_CODE = "code"


def is_infra_failure(result: ExecutionResult) -> bool:
    """The sandbox failed, not the code: counted against the run's sandbox-failure threshold.

    A crash the code caused itself (a segfault of deep recursion through `lru_cache` with a
    raised recursion limit, `os._exit`, a corrupted status channel) is reported as
    `WorkerCrashed` too, but the sandbox answered: it is the code's error, not a failure that
    should stop training."""
    return (
        result.error is not None
        and result.error.name in INFRA_ERROR_NAMES
        and result.extra.get(CRASH_CAUSE) != CAUSED_BY_CODE
    )
