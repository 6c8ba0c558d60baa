"""The network boundary: create and kill cloud sandboxes through the official SDK.

Unit tests replace `E2BCloud` with a fake; the contract tests keep it and point the SDK at a
local double of E2B's HTTP API (`e2b_api_url` / `e2b_sandbox_url`).
"""

from __future__ import annotations

from typing import Any, Protocol

from e2b_code_interpreter import Execution

from tool_env.e2b.options import E2BOptions


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
    """Creates and kills cloud sandboxes; one call, no retries (the caller retries)."""

    def __init__(self, options: E2BOptions, lifetime_s: float) -> None:
        self._options = options
        self._lifetime_s = max(1, int(lifetime_s))

    def _connection_kwargs(self, api_key: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"api_key": api_key, "request_timeout": self._options.request_timeout_s}
        if self._options.api_url:
            kwargs["api_url"] = self._options.api_url
        if self._options.sandbox_url:
            kwargs["sandbox_url"] = self._options.sandbox_url
        return kwargs

    def _create_kwargs(self, api_key: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "timeout": self._lifetime_s,
            "allow_internet_access": self._options.allow_internet,
            **self._connection_kwargs(api_key),
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

        SdkSandbox.kill(sandbox_id, **self._connection_kwargs(api_key))
