"""FAKES of E2B's network boundary (its cloud cannot be reached from tests), named as such.

The fake sandboxes speak the code-interpreter server's wire format (JSON lines) and let the
SDK's own `parse_output` build the `Execution`, `Logs`, `Result` and `ExecutionError`
objects, so the adapter is tested on exactly what the SDK hands it. Timeouts and dead
sandboxes are the SDK's own exceptions. Tests import this module as `e2b_fakes`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from e2b import SandboxNotRunningException
from e2b_code_interpreter import Execution
from e2b_code_interpreter.models import Context, parse_output

from tool_env.base import HEALTH_CHECK_CODE, HEALTH_CHECK_OUTPUT
from tool_env.e2b import E2BCloud

# ---------------------------------------------------------------------------------------
# Fakes of the network boundary
# ---------------------------------------------------------------------------------------


def stdout(text: str) -> str:
    return json.dumps({"type": "stdout", "text": text, "timestamp": 0})


def stderr(text: str) -> str:
    return json.dumps({"type": "stderr", "text": text, "timestamp": 0})


def error(name: str, value: str, traceback: str) -> str:
    return json.dumps({"type": "error", "name": name, "value": value, "traceback": traceback})


def displayed(text: str) -> str:
    return json.dumps({"type": "result", "text": text, "is_main_result": True})


# A script maps code to what the server streams back; an exception instance in the list is
# raised after the lines before it were streamed (e.g. an SDK timeout mid-execution).
Script = Callable[[str], list[Any]]


def echo_script(code: str) -> list[Any]:
    if code == HEALTH_CHECK_CODE:  # the backend's start-up check
        return [stdout(f"{HEALTH_CHECK_OUTPUT}\n")]
    return [stdout(f"ran {code}\n")]


class FakeE2BCloudSandbox:
    """FAKE of `e2b_code_interpreter.Sandbox`: records calls, answers via a script."""

    def __init__(self, sandbox_id: str, script: Script) -> None:
        self.sandbox_id = sandbox_id
        self.script = script
        self.killed = False
        self.calls: list[dict[str, Any]] = []
        self.contexts_created: list[Context] = []
        self.contexts_removed: list[str] = []
        self._context_ids = itertools.count()

    def run_code(self, code: str, context: Context | None = None, on_stdout=None, on_stderr=None, **kw: Any):
        if self.killed:
            raise SandboxNotRunningException("sandbox was killed")
        self.calls.append({"code": code, "context": context.id if context else None, **kw})
        execution = Execution()
        for item in self.script(code):
            if isinstance(item, BaseException):
                raise item
            parse_output(execution, item, on_stdout=on_stdout, on_stderr=on_stderr)
        return execution

    def create_code_context(self) -> Context:
        context = Context(context_id=f"ctx-{next(self._context_ids)}", language="python", cwd="/home/user")
        self.contexts_created.append(context)
        return context

    def remove_code_context(self, context: Context) -> None:
        self.contexts_removed.append(context.id)

    def kill(self) -> bool:
        self.killed = True
        return True


class FakeAsyncE2BCloudSandbox:
    """FAKE of `e2b_code_interpreter.AsyncSandbox`: the sync fake behind async methods."""

    def __init__(self, inner: FakeE2BCloudSandbox) -> None:
        self.inner = inner
        self.sandbox_id = inner.sandbox_id

    async def run_code(self, code: str, **kw: Any):
        await asyncio.sleep(0)
        return self.inner.run_code(code, **kw)

    async def create_code_context(self) -> Context:
        return self.inner.create_code_context()

    async def remove_code_context(self, context: Context) -> None:
        self.inner.remove_code_context(context)

    async def kill(self) -> bool:
        return self.inner.kill()

    @property
    def killed(self) -> bool:
        return self.inner.killed


class FakeE2BCloud(E2BCloud):
    """FAKE of the SDK's create/kill entry points; keeps every sandbox it made."""

    def __init__(self, script: Script = echo_script) -> None:
        self.script = script
        self.created: list[Any] = []
        self.api_keys: list[str] = []
        self.killed_by_id: list[str] = []

    def create(self, api_key: str) -> FakeE2BCloudSandbox:
        self.api_keys.append(api_key)
        self.created.append(FakeE2BCloudSandbox(f"sbx-{len(self.created)}", self.script))
        return self.created[-1]

    async def acreate(self, api_key: str) -> FakeAsyncE2BCloudSandbox:
        self.api_keys.append(api_key)
        self.created.append(FakeAsyncE2BCloudSandbox(FakeE2BCloudSandbox(f"sbx-{len(self.created)}", self.script)))
        return self.created[-1]

    def kill_by_id(self, sandbox_id: str, api_key: str) -> None:
        self.killed_by_id.append(sandbox_id)


