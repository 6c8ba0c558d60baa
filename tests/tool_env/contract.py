"""The behaviour every sandbox backend promises, as a reusable test base.

A backend's test module subclasses `SandboxContract` and provides a `sandbox` fixture
(class-scoped is best: backends are slow to start). The sandbox must have
``max_output_chars <= 20_000`` so the truncation tests stay small.

    class TestMyBackend(SandboxContract):
        @pytest.fixture(scope="class")
        @classmethod
        def sandbox(cls):
            with create_sandbox(SandboxConfig(backend="mine")) as sb:
                yield sb
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tool_env import ExecutionResult, Sandbox, SandboxClosedError

TIMEOUT_S = 1.0  # short per-run timeout for the timeout tests
SLACK_S = 5.0  # how late a timed-out run may come back on a loaded CI machine


class SandboxContract:
    # ----- output capture ---------------------------------------------------------------
    def test_stdout_is_captured(self, sandbox: Sandbox) -> None:
        result = sandbox.run("print('hello')\nprint(6 * 7)")
        assert isinstance(result, ExecutionResult)
        assert result.stdout == "hello\n42\n"
        assert result.stderr == ""
        assert result.ok and result.error is None
        assert result.exit_code == 0
        assert not result.timed_out and not result.truncated

    def test_stderr_is_captured_separately(self, sandbox: Sandbox) -> None:
        result = sandbox.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
        assert result.stdout == "out\n"
        assert result.stderr == "err\n"
        assert result.ok

    def test_no_output_gives_empty_strings(self, sandbox: Sandbox) -> None:
        result = sandbox.run("x = 1")
        assert (result.stdout, result.stderr, result.error) == ("", "", None)

    def test_runs_as_main_script(self, sandbox: Sandbox) -> None:
        result = sandbox.run("if __name__ == '__main__':\n    print('main')")
        assert result.stdout == "main\n"

    def test_unicode_round_trips(self, sandbox: Sandbox) -> None:
        text = "héllo wörld — 世界 🎉"
        result = sandbox.run(f"print({text!r})")
        assert result.stdout == text + "\n"

    def test_invalid_utf8_bytes_do_not_break_the_run(self, sandbox: Sandbox) -> None:
        result = sandbox.run("import sys\nsys.stdout.buffer.write(b'ok\\xff\\xfe!\\n')")
        assert result.stdout.startswith("ok") and result.stdout.endswith("!\n")
        assert "\ufffd" in result.stdout

    def test_stdin_is_empty(self, sandbox: Sandbox) -> None:
        result = sandbox.run("import sys\nprint(repr(sys.stdin.read()))\ninput()")
        assert result.stdout == "''\n"
        assert result.error is not None and result.error.name == "EOFError"

    # ----- errors -----------------------------------------------------------------------
    def test_exception_reports_type_message_and_traceback(self, sandbox: Sandbox) -> None:
        result = sandbox.run("def f(x):\n    return 1 / x\n\nf(0)")
        assert not result.ok
        assert result.error.name == "ZeroDivisionError"
        assert result.error.message == "division by zero"
        assert "Traceback (most recent call last)" in result.error.traceback
        assert "line 2, in f" in result.error.traceback
        assert "ZeroDivisionError: division by zero" in result.stderr  # the model reads stderr
        assert result.exit_code not in (0, None)

    def test_output_before_an_error_is_kept(self, sandbox: Sandbox) -> None:
        result = sandbox.run("print('partial')\nraise ValueError('bad value')")
        assert result.stdout == "partial\n"
        assert result.error.name == "ValueError" and result.error.message == "bad value"

    def test_syntax_error_is_reported(self, sandbox: Sandbox) -> None:
        result = sandbox.run("print('unclosed'")
        assert result.error is not None and result.error.name == "SyntaxError"
        assert "SyntaxError" in result.stderr

    def test_sys_exit_sets_exit_code(self, sandbox: Sandbox) -> None:
        assert sandbox.run("import sys\nsys.exit(3)").exit_code == 3
        clean = sandbox.run("import sys\nprint('bye')\nsys.exit(0)")
        assert clean.exit_code == 0 and clean.ok and clean.stdout == "bye\n"

    # ----- limits -----------------------------------------------------------------------
    def test_timeout_stops_the_run_and_keeps_earlier_output(self, sandbox: Sandbox) -> None:
        result = sandbox.run("import time\nprint('started')\ntime.sleep(60)", timeout_s=TIMEOUT_S)
        assert result.timed_out and not result.ok
        assert result.error is not None and result.error.name == "TimeoutError"
        assert result.stdout == "started\n"
        assert TIMEOUT_S * 0.9 <= result.duration_s < TIMEOUT_S + SLACK_S

    def test_busy_loop_times_out(self, sandbox: Sandbox) -> None:
        result = sandbox.run("while True:\n    pass", timeout_s=TIMEOUT_S)
        assert result.timed_out

    def test_sandbox_serves_after_a_timeout(self, sandbox: Sandbox) -> None:
        sandbox.run("while True:\n    pass", timeout_s=TIMEOUT_S)
        assert sandbox.run("print('still here')").stdout == "still here\n"

    def test_long_output_keeps_head_and_tail(self, sandbox: Sandbox) -> None:
        limit = sandbox.config.max_output_chars
        result = sandbox.run(f"print('HEAD' + 'x' * {limit * 3} + 'TAIL')")
        assert result.stdout_truncated and result.truncated and not result.stderr_truncated
        assert result.stdout.startswith("HEAD")
        assert result.stdout.endswith("TAIL\n")
        assert "truncated" in result.stdout
        assert len(result.stdout) <= limit + 100

    def test_truncation_notice_counts_dropped_characters(self, sandbox: Sandbox) -> None:
        limit = sandbox.config.max_output_chars
        total = limit * 2 + 1  # the printed line including its newline
        result = sandbox.run(f"print('y' * {total - 1})")
        kept = result.stdout.count("y") + result.stdout.endswith("\n")
        assert f"[truncated {total - kept} characters]" in result.stdout

    def test_stderr_is_truncated_too(self, sandbox: Sandbox) -> None:
        limit = sandbox.config.max_output_chars
        result = sandbox.run(f"import sys\nsys.stderr.write('e' * {limit * 4})")
        assert result.stderr_truncated and not result.stdout_truncated
        assert len(result.stderr) <= limit + 100

    def test_large_output_stays_bounded(self, sandbox: Sandbox) -> None:
        result = sandbox.run("for i in range(200_000):\n    print(i)")
        assert result.ok and result.stdout_truncated
        assert result.stdout.startswith("0\n1\n2\n")
        assert result.stdout.endswith("199998\n199999\n")
        assert len(result.stdout) <= sandbox.config.max_output_chars + 100

    def test_output_at_the_limit_is_not_truncated(self, sandbox: Sandbox) -> None:
        limit = sandbox.config.max_output_chars
        result = sandbox.run(f"print('z' * {limit - 1}, end='\\n')")
        assert not result.stdout_truncated and len(result.stdout) == limit

    # ----- state ------------------------------------------------------------------------
    def test_stateless_runs_share_nothing(self, sandbox: Sandbox) -> None:
        with sandbox.session(stateful=False) as session:
            assert not session.stateful
            assert session.run("secret = 41").ok
            result = session.run("print(secret)")
        assert result.error is not None and result.error.name == "NameError"

    def test_stateless_runs_do_not_share_files(self, sandbox: Sandbox) -> None:
        token = uuid.uuid4().hex
        sandbox.run(f"open('left_behind.txt', 'w').write({token!r})")
        result = sandbox.run(
            "import os\nprint(os.path.exists('left_behind.txt'))\n"
            "open('mine.txt', 'w').write('ok')\nprint(open('mine.txt').read())"
        )
        assert result.stdout == "False\nok\n", result  # the work dir is empty, and usable

    def test_stateful_session_keeps_variables(self, sandbox: Sandbox) -> None:
        with sandbox.session(stateful=True) as session:
            assert session.stateful
            assert session.run("x = 41\ndef inc(v):\n    return v + 1").ok
            assert session.run("print(inc(x))").stdout == "42\n"
            assert session.run("x = inc(x)\nprint(x)").stdout == "42\n"

    def test_stateful_session_keeps_state_after_an_error(self, sandbox: Sandbox) -> None:
        with sandbox.session(stateful=True) as session:
            session.run("total = 10")
            assert session.run("total += 1\n1/0").error.name == "ZeroDivisionError"
            assert session.run("print(total)").stdout == "11\n"

    def test_stateful_sessions_are_isolated_from_each_other(self, sandbox: Sandbox) -> None:
        with sandbox.session(stateful=True) as first, sandbox.session(stateful=True) as second:
            first.run("owner = 'first'")
            result = second.run("print(owner)")
        assert result.error is not None and result.error.name == "NameError"

    # ----- API misuse -------------------------------------------------------------------
    def test_non_string_code_is_rejected(self, sandbox: Sandbox) -> None:
        for bad in (b"print(1)", None, 42, ["print(1)"]):
            with pytest.raises(TypeError, match="code must be str"):
                sandbox.run(bad)  # type: ignore[arg-type]

    def test_absurd_timeouts_are_rejected(self, sandbox: Sandbox) -> None:
        for bad in (0, -1, 10**9, float("nan")):
            with pytest.raises(ValueError):
                sandbox.run("print(1)", timeout_s=bad)
        with pytest.raises(TypeError):
            sandbox.run("print(1)", timeout_s="5")  # type: ignore[arg-type]

    def test_closed_session_refuses_to_run(self, sandbox: Sandbox) -> None:
        for stateful in (False, True):
            session = sandbox.session(stateful=stateful)
            session.run("pass")
            session.close()
            session.close()  # idempotent
            with pytest.raises(SandboxClosedError):
                session.run("print(1)")

    # ----- asyncio face -----------------------------------------------------------------
    async def test_async_run(self, sandbox: Sandbox) -> None:
        result = await sandbox.arun("print('async')")
        assert result.stdout == "async\n"

    async def test_async_stateful_session(self, sandbox: Sandbox) -> None:
        async with sandbox.async_session(stateful=True) as session:
            assert session.stateful
            await session.run("counter = 1")
            result = await session.run("counter += 1\nprint(counter)")
        assert result.stdout == "2\n"
        with pytest.raises(SandboxClosedError):
            await session.run("print(1)")

    async def test_async_runs_are_concurrent_and_routed_to_their_caller(self, sandbox: Sandbox) -> None:
        tokens = [uuid.uuid4().hex for _ in range(16)]
        results = await asyncio.gather(*(sandbox.arun(f"print({t!r})") for t in tokens))
        assert [r.stdout for r in results] == [t + "\n" for t in tokens]

    async def test_async_face_does_not_block_the_event_loop(self, sandbox: Sandbox) -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            await sandbox.arun("import time\ntime.sleep(0.5)")
        finally:
            task.cancel()
        assert ticks >= 10  # the loop kept turning while the code ran

    async def test_async_misuse_is_rejected(self, sandbox: Sandbox) -> None:
        with pytest.raises(TypeError):
            await sandbox.arun(123)  # type: ignore[arg-type]
