"""E2B's own types and exceptions mapped onto `ExecutionResult`: errors are data, never raised.

Three kinds of failure, told apart by the SDK's exception types:
- the code ran past its time limit (the SDK's *execution* timeout: a read timeout on the
  result stream) -> `timed_out=True`, what was printed is kept;
- the sandbox died, is unreachable, or the connection broke (including a *connect* timeout,
  which is not the code's fault) -> `WorkerCrashed`, the session starts a fresh sandbox;
- no sandbox could be had at all (authentication, rate limit, service busy, bad template)
  -> `SandboxUnavailable`, counted separately, never reported as the code's error.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from e2b import (
    AuthenticationException,
    RateLimitException,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxUnreachableException,
    TimeoutException,
)
from e2b.exceptions import ServiceBusyException
from e2b_code_interpreter import Execution, OutputMessage
from e2b_code_interpreter.exceptions import format_execution_timeout_error

from tool_env.result import CRASHED, UNAVAILABLE, ExecutionError, ExecutionResult
from tool_env.truncate import truncate_text

# Cloud failures that mean the sandbox is gone or unusable. Checked before TimeoutException
# (their base class).
SANDBOX_GONE = (SandboxNotRunningException, SandboxUnreachableException, SandboxNotFoundException)
# Everything the SDK or its transport raises for an infrastructure reason. Authentication and
# service-busy errors are not SandboxExceptions in the SDK, so they are named here.
INFRA_ERRORS = (SandboxException, AuthenticationException, ServiceBusyException, httpx.TransportError)
# Refusals worth retrying after a wait: 429 and 503.
RETRYABLE = (RateLimitException, ServiceBusyException)
_EXECUTION_TIMEOUT_TEXT = str(format_execution_timeout_error())
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def is_execution_timeout(exc: BaseException) -> bool:
    """The code's own time limit, as opposed to a connect/request timeout or a dead sandbox.

    The SDK raises one `TimeoutException` class for both; it raises the execution one while
    handling an `httpx.ReadTimeout` of the result stream and gives it its own message.
    """
    if not isinstance(exc, TimeoutException) or isinstance(exc, SANDBOX_GONE):
        return False
    return isinstance(exc.__context__, httpx.ReadTimeout) or str(exc) == _EXECUTION_TIMEOUT_TEXT


def failure_kind(exc: BaseException) -> str:
    """A stable counter name for an infrastructure failure (for metrics and logs)."""
    if isinstance(exc, AuthenticationException):
        return "auth_failures"
    if isinstance(exc, RETRYABLE):
        return "rate_limited"
    if is_execution_timeout(exc):
        return "execution_timeouts"
    if isinstance(exc, (TimeoutException, httpx.TimeoutException)):
        return "request_timeouts"
    return "infra_errors"


class PartialOutput:
    """Collects streamed output, so a timed-out run still shows what it printed."""

    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def on_stdout(self, message: OutputMessage) -> None:
        self.stdout.append(message.line)

    def on_stderr(self, message: OutputMessage) -> None:
        self.stderr.append(message.line)


def result_from_execution(execution: Execution, duration_s: float, max_chars: int, sandbox_id: str) -> ExecutionResult:
    """Map the SDK's `Execution` onto our result: logs joined, error as data, output capped.

    Jupyter reports an uncaught exception only as data; a script would also print its
    traceback to stderr, so it is appended there (without colour codes) like every backend.
    """
    stderr_text = "".join(execution.logs.stderr)
    error = None
    exit_code = 0
    if execution.error is not None and execution.error.name == "SystemExit":
        # IPython reports sys.exit() as an error; a script just exits with that status.
        exit_code, error, stderr_text = _system_exit(execution.error.value, stderr_text)
    elif execution.error is not None:
        exit_code = 1
        traceback, _ = truncate_text(_ANSI_ESCAPE.sub("", execution.error.traceback or ""), max_chars)
        error = ExecutionError(name=execution.error.name, message=execution.error.value, traceback=traceback)
        if traceback:
            stderr_text += traceback if traceback.endswith("\n") else traceback + "\n"
    # Jupyter shows a cell's last expression as a "result"; scripts (the protocol's model) do
    # not print it, so it stays out of stdout and is kept for callers who want it.
    displayed = [r.text for r in execution.results if r.text is not None]
    return _capped_result(
        "".join(execution.logs.stdout), stderr_text, max_chars,
        error=error, exit_code=exit_code, duration_s=duration_s,
        extra={"backend": "e2b", "sandbox_id": sandbox_id, "displayed": displayed},
    )


def _system_exit(value: str, stderr_text: str) -> tuple[int, ExecutionError | None, str]:
    """(exit code, error, stderr) as `python script.py` would give for sys.exit(value)."""
    value = (value or "").strip()
    if value in ("", "None", "0"):
        return 0, None, stderr_text
    if value.lstrip("-").isdigit():
        return int(value), ExecutionError("SystemExit", value), stderr_text
    return 1, ExecutionError("SystemExit", value), stderr_text + value + "\n"  # Python prints a non-int code


def result_from_failure(
    exc: BaseException, partial: PartialOutput, timeout_s: float, duration_s: float, max_chars: int
) -> ExecutionResult:
    """Map an SDK exception raised by `run_code`: an execution timeout or a broken sandbox."""
    timed_out = is_execution_timeout(exc)
    if timed_out:
        error = ExecutionError("TimeoutError", f"execution exceeded the time limit of {timeout_s:g} s")
    else:
        error = ExecutionError(CRASHED, f"E2B sandbox failed: {type(exc).__name__}: {exc}")
    return _capped_result(
        "".join(partial.stdout), "".join(partial.stderr), max_chars,
        error=error, exit_code=None, timed_out=timed_out, duration_s=duration_s,
        extra={"backend": "e2b", "failure": failure_kind(exc)},
    )


def _capped_result(stdout_text: str, stderr_text: str, max_chars: int, **fields: Any) -> ExecutionResult:
    """An `ExecutionResult` with both streams cut to `max_chars`, saying which were cut."""
    stdout, stdout_cut = truncate_text(stdout_text, max_chars)
    stderr, stderr_cut = truncate_text(stderr_text, max_chars)
    return ExecutionResult(stdout=stdout, stderr=stderr, stdout_truncated=stdout_cut,
                           stderr_truncated=stderr_cut, **fields)


def unavailable_result(exc: BaseException, duration_s: float) -> ExecutionResult:
    """No cloud sandbox could be created: the infrastructure's fault, never the code's."""
    return ExecutionResult(
        error=ExecutionError(UNAVAILABLE, f"no E2B sandbox could be created: {type(exc).__name__}: {exc}"),
        exit_code=None,
        duration_s=duration_s,
        extra={"backend": "e2b", "failure": failure_kind(exc)},
    )
