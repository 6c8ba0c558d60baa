"""E2BSandbox against the SDK's own result types and exceptions.

E2B's cloud cannot be reached from CI, so the network boundary (creating, running in and
killing a cloud sandbox) is replaced by FakeE2BCloud / FakeE2BCloudSandbox. The fake speaks
the code-interpreter server's wire format (JSON lines) and lets the SDK's own `parse_output`
build the `Execution`, `Logs`, `Result` and `ExecutionError` objects, so the adapter is tested
on exactly what the SDK hands it. Timeouts and dead sandboxes are the SDK's own exceptions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2b import AuthenticationException, RateLimitException, SandboxNotRunningException
from e2b.exceptions import ServiceBusyException
from e2b_code_interpreter import Execution
from e2b_code_interpreter.exceptions import format_execution_timeout_error, format_request_timeout_error
from e2b_code_interpreter.models import Context, parse_output

from tool_env import SandboxClosedError, SandboxConfig, SandboxUnavailableError, create_sandbox
from tool_env.e2b import E2BCloud, E2BSandbox
from tool_env.truncate import truncate_text

KEY = "e2b_test_key_not_real"

from e2b_fakes import (  # noqa: E402 - FAKES of the cloud boundary
    FakeAsyncE2BCloudSandbox,
    FakeE2BCloud,
    FakeE2BCloudSandbox,
    Script,
    displayed,
    echo_script,
    error,
    stderr,
    stdout,
)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2B_API_KEY", KEY)


def make(script: Script = echo_script, **config: Any) -> tuple[E2BSandbox, FakeE2BCloud]:
    cloud = FakeE2BCloud(script)
    return E2BSandbox(SandboxConfig(backend="e2b", **config), cloud=cloud), cloud


# ---------------------------------------------------------------------------------------
# Execution -> ExecutionResult
# ---------------------------------------------------------------------------------------

ANSI_TRACEBACK = (
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)\n"
    "Cell \x1b[0;32mIn[1], line 2\x1b[0m\n----> 2 1/0\n"
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"
)


def test_logs_are_joined_and_the_error_is_kept_as_data() -> None:
    def script(code: str) -> list[Any]:
        return [
            stdout("a\n"),
            stdout("b"),
            stdout("c\n"),
            stderr("warn\n"),
            error("ZeroDivisionError", "division by zero", ANSI_TRACEBACK),
        ]

    sandbox, _ = make(script)
    result = sandbox.run("print('a'); 1/0")
    assert result.stdout == "a\nbc\n"
    assert result.error is not None
    assert (result.error.name, result.error.message) == ("ZeroDivisionError", "division by zero")
    assert "\x1b" not in result.error.traceback  # colour codes stripped for the model
    assert "----> 2 1/0" in result.error.traceback
    assert result.stderr == "warn\n" + result.error.traceback + "\n"  # like a script's stderr
    assert "\x1b" not in result.stderr
    assert result.exit_code == 1 and not result.ok and not result.timed_out and not result.truncated


def test_success_maps_to_ok_and_the_last_expression_stays_out_of_stdout() -> None:
    sandbox, cloud = make(lambda code: [stdout("42\n"), displayed("7")])
    result = sandbox.run("print(42)\n7")
    assert result.ok and result.exit_code == 0 and result.error is None
    assert result.stdout == "42\n"  # scripts do not print a bare last expression
    assert result.extra["displayed"] == ["7"]
    assert result.extra["sandbox_id"] == cloud.created[0].sandbox_id
    assert result.duration_s >= 0


def test_long_output_is_capped_head_and_tail() -> None:
    long_text = "START" + "x" * 5000 + "END\n"
    sandbox, _ = make(lambda code: [stdout(long_text), stderr("e" * 300)], max_output_chars=200)
    result = sandbox.run("print(...)")
    assert result.stdout_truncated and result.stderr_truncated and result.truncated
    assert result.stdout.startswith("START") and result.stdout.endswith("END\n")
    # the very rule every backend applies, so transcripts do not depend on the backend
    assert result.stdout == truncate_text(long_text, 200)[0]
    assert result.stderr == truncate_text("e" * 300, 200)[0]


# ---------------------------------------------------------------------------------------
# Timeouts and broken sandboxes
# ---------------------------------------------------------------------------------------


def test_sdk_execution_timeout_is_timed_out_with_partial_output() -> None:
    sandbox, cloud = make(lambda code: [stdout("tick\n"), format_execution_timeout_error()], timeout_s=3)
    with sandbox.session(stateful=True) as session:
        result = session.run("while True: print('tick')")
        assert result.timed_out and not result.ok
        assert result.error is not None and result.error.name == "TimeoutError"
        assert result.stdout == "tick\n"  # what streamed before the deadline is kept
        assert cloud.created[0].calls[-1]["timeout"] == 3
        session.run("print(1)", timeout_s=0.5)
        assert cloud.created[0].calls[-1]["timeout"] == 0.5
        assert not cloud.created[0].killed  # a timeout keeps the session (and its state)
    assert len(cloud.created) == 1


def test_dead_sandbox_reports_worker_crashed_and_the_next_run_gets_a_fresh_one() -> None:
    outcomes = iter([[SandboxNotRunningException("sandbox not running")], [stdout("fine\n")]])
    sandbox, cloud = make(lambda code: next(outcomes))
    with sandbox.session(stateful=True) as session:
        crashed = session.run("x = 1")
        assert crashed.error is not None and crashed.error.name == "WorkerCrashed"
        assert not crashed.timed_out and crashed.exit_code is None
        assert "SandboxNotRunningException" in crashed.error.message
        assert cloud.created[0].killed
        assert session.run("print('fine')").stdout == "fine\n"
        assert len(cloud.created) == 2
    assert sandbox.metrics()["sandbox/crashes"] == 1


def test_connection_error_reports_worker_crashed() -> None:
    sandbox, cloud = make(lambda code: [httpx.ReadError("connection reset")])
    result = sandbox.run("print(1)")
    assert result.error is not None and result.error.name == "WorkerCrashed"
    assert cloud.created[0].killed


# ---------------------------------------------------------------------------------------
# Session semantics and lifecycle
# ---------------------------------------------------------------------------------------


def test_stateful_session_uses_one_sandbox_and_its_default_kernel() -> None:
    sandbox, cloud = make()
    with sandbox.session(stateful=True) as session:
        session.run("x = 1")
        session.run("print(x)")
    (cloud_sandbox,) = cloud.created
    assert [c["context"] for c in cloud_sandbox.calls] == [None, None]
    assert cloud_sandbox.contexts_created == []
    assert cloud_sandbox.killed


def test_stateless_session_runs_each_snippet_in_a_fresh_context_it_removes() -> None:
    outcomes = iter([[stdout("1\n")], [format_execution_timeout_error()], [error("NameError", "x", "")]])
    sandbox, cloud = make(lambda code: next(outcomes))
    with sandbox.session(stateful=False) as session:
        session.run("x = 1; print(x)")
        assert session.run("while True: pass").timed_out
        session.run("print(x)")
    (cloud_sandbox,) = cloud.created
    used = [c["context"] for c in cloud_sandbox.calls]
    assert len(set(used)) == 3 and None not in used
    assert cloud_sandbox.contexts_removed == used  # removed even after a timeout


def test_sessions_never_share_a_cloud_sandbox() -> None:
    sandbox, cloud = make()
    with sandbox.session() as first, sandbox.session() as second:
        first.run("a")
        second.run("b")
        assert first.sandbox_id != second.sandbox_id
    assert len(cloud.created) == 2 and all(s.killed for s in cloud.created)


def test_no_cloud_sandbox_until_the_first_run() -> None:
    sandbox, cloud = make()
    with sandbox.session():
        pass
    assert cloud.created == []


def test_sandbox_run_is_one_stateless_session_and_kills_its_sandbox() -> None:
    sandbox, cloud = make()
    assert sandbox.run("print(1)").stdout == "ran print(1)\n"
    assert cloud.created[0].killed and cloud.api_keys == [KEY]


def test_session_is_killed_when_the_caller_raises() -> None:
    sandbox, cloud = make()
    with pytest.raises(KeyError), sandbox.session(stateful=True) as session:
        session.run("x = 1")
        raise KeyError("caller bug")
    assert cloud.created[0].killed


def test_unexpected_sdk_error_kills_the_sandbox_and_propagates() -> None:
    def script(code: str) -> list[Any]:
        return [RuntimeError("unexpected SDK bug")]

    sandbox, cloud = make(script)
    session = sandbox.session(stateful=True)
    with pytest.raises(RuntimeError, match="unexpected SDK bug"):
        session.run("x")
    assert cloud.created[0].killed
    session.close()


def test_closed_session_and_sandbox_refuse_work() -> None:
    sandbox, _ = make()
    session = sandbox.session()
    session.close()
    session.close()  # idempotent
    with pytest.raises(SandboxClosedError):
        session.run("print(1)")
    sandbox.close()
    with pytest.raises(SandboxClosedError):
        sandbox.session()


def test_closing_the_backend_kills_every_open_session() -> None:
    sandbox, cloud = make()
    sync_session = sandbox.session(stateful=True)
    sync_session.run("x = 1")
    async_session = sandbox.async_session(stateful=True)
    asyncio.run(async_session.run("y = 2"))
    sandbox.close()
    assert cloud.created[0].killed
    assert cloud.killed_by_id == [cloud.created[1].sandbox_id]  # async session killed by id
    with pytest.raises(SandboxClosedError):
        sync_session.run("print(x)")
    assert sandbox.metrics()["e2b/open_sessions"] == 0


def test_bad_code_and_timeouts_are_rejected_before_any_cloud_call() -> None:
    sandbox, cloud = make()
    with pytest.raises(TypeError, match="code must be str"):
        sandbox.run(b"print(1)")  # type: ignore[arg-type]
    for bad in (0, -1, 10**9, float("nan")):
        with pytest.raises(ValueError, match="timeout_s"):
            sandbox.run("print(1)", timeout_s=bad)
    assert cloud.created == []


# ---------------------------------------------------------------------------------------
# asyncio face
# ---------------------------------------------------------------------------------------


async def test_async_session_maps_results_and_timeouts_like_the_sync_one() -> None:
    outcomes = iter([[stdout("hi\n")], [stdout("part\n"), format_execution_timeout_error()]])
    sandbox, cloud = make(lambda code: next(outcomes), timeout_s=2)
    async with sandbox.async_session(stateful=True) as session:
        ok = await session.run("print('hi')")
        late = await session.run("while True: pass")
    assert ok.ok and ok.stdout == "hi\n"
    assert late.timed_out and late.stdout == "part\n"
    assert cloud.created[0].inner.calls[-1]["timeout"] == 2
    assert cloud.created[0].killed


async def test_async_stateless_session_uses_fresh_contexts() -> None:
    sandbox, cloud = make()
    result = await sandbox.arun("print(1)")
    assert result.stdout == "ran print(1)\n"
    inner = cloud.created[0].inner
    assert inner.contexts_removed == [inner.calls[0]["context"]] and inner.killed


async def test_cancelled_async_run_kills_the_sandbox() -> None:
    started = asyncio.Event()

    class HangingCloud(FakeE2BCloud):
        async def acreate(self, api_key: str) -> FakeAsyncE2BCloudSandbox:
            made = await super().acreate(api_key)

            async def hang(code: str, **kw: Any) -> Execution:
                started.set()
                await asyncio.sleep(3600)
                raise AssertionError("unreachable")

            made.run_code = hang  # type: ignore[method-assign]
            return made

    cloud = HangingCloud()
    sandbox = E2BSandbox(SandboxConfig(backend="e2b"), cloud=cloud)
    session = sandbox.async_session(stateful=True)
    task = asyncio.create_task(session.run("import time; time.sleep(1e9)"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cloud.created[0].killed


# ---------------------------------------------------------------------------------------
# Configuration, API key, the real SDK entry point
# ---------------------------------------------------------------------------------------


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY")
    with pytest.raises(RuntimeError, match="set the environment variable E2B_API_KEY"):
        E2BSandbox(SandboxConfig(backend="e2b"), cloud=FakeE2BCloud())


def test_api_key_variable_name_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY")
    config = SandboxConfig(backend="e2b", extra={"e2b_api_key_env": "TEAM_E2B_KEY"})
    with pytest.raises(RuntimeError, match="TEAM_E2B_KEY"):
        E2BSandbox(config, cloud=FakeE2BCloud())
    monkeypatch.setenv("TEAM_E2B_KEY", "team-key")
    cloud = FakeE2BCloud()
    E2BSandbox(config, cloud=cloud).run("print(1)")
    assert cloud.api_keys == ["team-key"]


def test_unknown_e2b_option_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="e2b_tempalte"):
        E2BSandbox(SandboxConfig(backend="e2b", extra={"e2b_tempalte": "x"}), cloud=FakeE2BCloud())


def test_real_sdk_entry_point_gets_lifetime_key_and_no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    import e2b_code_interpreter

    seen: dict[str, Any] = {}

    def fake_create(**kwargs: Any) -> FakeE2BCloudSandbox:  # replaces the network call only
        seen.update(kwargs)
        return FakeE2BCloudSandbox("sbx-sdk", echo_script)

    monkeypatch.setattr(e2b_code_interpreter.Sandbox, "create", staticmethod(fake_create))
    config = SandboxConfig(backend="e2b", session_ttl_s=600, extra={"e2b_template": "my-template"})
    sandbox = create_sandbox(config)
    assert isinstance(sandbox, E2BSandbox)
    assert sandbox.run("print(1)").stdout == "ran print(1)\n"
    assert seen == {
        "timeout": 600,
        "allow_internet_access": False,
        "api_key": KEY,
        "request_timeout": 30.0,
        "template": "my-template",
    }


def test_metrics_count_runs_errors_timeouts_and_sandboxes() -> None:
    outcomes = iter([[stdout("1\n")], [error("ValueError", "bad", "")], [format_execution_timeout_error()]])
    sandbox, _ = make(lambda code: next(outcomes))
    with sandbox.session(stateful=True) as session:
        for _ in range(3):
            session.run("...")
    metrics = sandbox.metrics()
    assert metrics["sandbox/runs"] == 3
    assert metrics["sandbox/errors"] == 2  # the ValueError and the timeout
    assert metrics["sandbox/timeouts"] == 1
    assert metrics["e2b/sandboxes_started"] == 1 and metrics["e2b/sandboxes_killed"] == 1
    assert all(isinstance(v, float) for v in metrics.values())


# ---------------------------------------------------------------------------------------
# Cloud failures are mapped and counted, never raised; refusals are retried
# ---------------------------------------------------------------------------------------


class RefusingE2BCloud(FakeE2BCloud):
    """FAKE whose first creates fail with the SDK's own exceptions, then succeed."""

    def __init__(self, failures: list[BaseException]) -> None:
        super().__init__()
        self.failures = list(failures)
        self.attempts = 0

    def create(self, api_key: str) -> FakeE2BCloudSandbox:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        return super().create(api_key)

    async def acreate(self, api_key: str) -> FakeAsyncE2BCloudSandbox:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().acreate(api_key)


def make_refusing(failures: list[BaseException], **extra: Any) -> tuple[E2BSandbox, RefusingE2BCloud]:
    cloud = RefusingE2BCloud(failures)
    config = SandboxConfig(backend="e2b", extra={"e2b_retry_backoff_s": 0.0, **extra})
    return E2BSandbox(config, cloud=cloud), cloud


def test_authentication_error_is_sandbox_unavailable_and_counted() -> None:
    sandbox, cloud = make_refusing([AuthenticationException("401: Unauthorized")])
    result = sandbox.run("print(1)")  # no raw SDK exception escapes
    assert result.error is not None and result.error.name == "SandboxUnavailable"
    assert "AuthenticationException" in result.error.message and not result.timed_out
    assert cloud.attempts == 1  # a bad key is not retried
    metrics = sandbox.metrics()
    assert metrics["e2b/auth_failures"] == 1 and metrics["e2b/create_failures"] == 1
    assert metrics["sandbox/unavailable"] == 1 and metrics["sandbox/crashes"] == 0


def test_rate_limit_and_busy_are_retried_with_backoff_then_succeed() -> None:
    sandbox, cloud = make_refusing([RateLimitException("429: Rate limit"), ServiceBusyException("503: busy")])
    result = sandbox.run("print(1)")
    assert result.ok and result.stdout == "ran print(1)\n"
    assert cloud.attempts == 3
    metrics = sandbox.metrics()
    assert metrics["e2b/create_retries"] == 2 and metrics["e2b/create_failures"] == 0


def test_rate_limit_past_the_retries_is_unavailable_and_counted() -> None:
    sandbox, cloud = make_refusing([RateLimitException("429")] * 5, e2b_create_retries=2)
    result = sandbox.run("print(1)")
    assert result.error is not None and result.error.name == "SandboxUnavailable"
    assert cloud.attempts == 3
    assert sandbox.metrics()["e2b/rate_limited"] == 1


def test_backoff_grows_between_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("tool_env.e2b.sandbox.time.sleep", waits.append)
    sandbox, _ = make_refusing([RateLimitException("429")] * 3, e2b_retry_backoff_s=1.0)
    assert sandbox.run("print(1)").ok
    assert len(waits) == 3 and 0.5 <= waits[0] <= 1.0 and 2.0 <= waits[2] <= 4.0


async def test_async_creation_errors_are_mapped_and_counted() -> None:
    sandbox, _ = make_refusing([RateLimitException("429"), AuthenticationException("401")])
    result = await sandbox.arun("print(1)")
    assert result.error is not None and result.error.name == "SandboxUnavailable"
    assert sandbox.metrics()["e2b/create_retries"] == 1 and sandbox.metrics()["e2b/auth_failures"] == 1


def sdk_connect_timeout() -> BaseException:
    """What the SDK raises when the connection to the sandbox times out (not the code's time limit)."""
    try:
        try:
            raise httpx.ConnectTimeout("connect timed out")
        except httpx.ConnectTimeout:
            raise format_request_timeout_error()
    except BaseException as exc:  # noqa: BLE001 - captured with its __context__, like the SDK's
        return exc


def test_connect_timeout_is_not_an_execution_timeout() -> None:
    sandbox, cloud = make(lambda code: [sdk_connect_timeout()])
    result = sandbox.run("print(1)")
    assert not result.timed_out
    assert result.error is not None and result.error.name == "WorkerCrashed"
    assert cloud.created[0].killed  # an unreachable sandbox is replaced
    metrics = sandbox.metrics()
    assert metrics["sandbox/timeouts"] == 0 and metrics["e2b/request_timeouts"] == 1


def test_first_run_after_a_lost_sandbox_says_the_session_restarted() -> None:
    outcomes = iter([[stdout("a\n")], [SandboxNotRunningException("gone")], [stdout("b\n")], [stdout("c\n")]])
    sandbox, _ = make(lambda code: next(outcomes))
    with sandbox.session(stateful=True) as session:
        assert "session_restarted" not in session.run("x = 1").extra
        assert session.run("x").error.name == "WorkerCrashed"
        assert session.run("print('b')").extra.get("session_restarted") is True
        assert "session_restarted" not in session.run("print('c')").extra


def test_backend_check_passes_and_names_the_failure() -> None:
    sandbox, _ = make(lambda code: [stdout("sandbox-ok\n")])
    sandbox.check()
    refused, _ = make_refusing([AuthenticationException("401: Unauthorized")])
    with pytest.raises(SandboxUnavailableError, match="e2b sandbox failed its start-up check.*Unauthorized"):
        refused.check()
