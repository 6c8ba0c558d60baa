"""CodeInterpreterTool: a drop-in verl BaseTool for JSON function-calling models (hermes format).

    tools:
      - class_name: r1ci_verl.rollout.tool.CodeInterpreterTool
        config: {type: native, timeout_s: 60, stateful: false}

Stateless by default: every call is a fresh script. With ``stateful: true`` variables persist
across the calls of one trajectory. verl 0.9.1's ToolAgentLoop calls create/execute/release
once per call, so the session is keyed on the trajectory's request id (``agent_data``) and
idle sessions are closed after ``session_ttl_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from tool_env.shared import shared_sandbox
from reward_fns import protocol
from tool_env import AsyncSession, ExecutionResult, SandboxConfig

logger = logging.getLogger(__name__)

TOOL_NAME = "code_interpreter"
NON_SANDBOX_KEYS = ("type",)  # verl's own keys in the tool config

DEFAULT_SCHEMA = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Run a complete Python script and return what it prints (stdout, then stderr or the "
            "traceback). Print everything you need; the script runs with a time limit."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python script to run."}},
            "required": ["code"],
        },
    },
}


class CodeInterpreterTool(BaseTool):
    """Runs the `code` argument in the process-wide sandbox and returns the protocol's results body."""

    def __init__(self, config: dict, tool_schema: Optional[OpenAIFunctionToolSchema] = None):
        schema = tool_schema or OpenAIFunctionToolSchema.model_validate(DEFAULT_SCHEMA)
        super().__init__(config, schema)
        sandbox_values = {k: v for k, v in (config or {}).items() if k not in NON_SANDBOX_KEYS}
        self.sandbox_config = SandboxConfig.from_mapping(sandbox_values)
        self._sessions: dict[str, tuple[AsyncSession, float]] = {}  # trajectory key -> (session, last use)
        self._sessions_lock = asyncio.Lock()

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return self.tool_schema

    async def create(self, instance_id: Optional[str] = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        return instance_id or uuid4().hex, ToolResponse()

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict]:
        code = parameters.get("code") if isinstance(parameters, dict) else None
        if not isinstance(code, str) or not code.strip():
            text = f"Error: {self.name} needs a non-empty string argument 'code', got {parameters!r}"
            return ToolResponse(text=text), 0.0, {"invalid_arguments": 1}
        try:
            if self.sandbox_config.stateful:
                result = await self._run_stateful(self._trajectory_key(instance_id, kwargs), code)
            else:
                result = await shared_sandbox(self.sandbox_config).arun(code)
        except Exception as exc:
            logger.error("r1ci: sandbox failed to run tool code: %r", exc, exc_info=True)
            return ToolResponse(text=f"SandboxError: {exc}"), 0.0, {"sandbox_failures": 1}
        metrics = {
            "duration_s": result.duration_s,
            "timed_out": int(result.timed_out),
            "error": int(result.error is not None),
            "truncated": int(result.truncated),
        }
        return ToolResponse(text=protocol.format_results_body(result, self.sandbox_config.timeout_s)), 0.0, metrics

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """Per-call release: stateful sessions outlive it (they end by TTL or `close`)."""

    @staticmethod
    def _trajectory_key(instance_id: str, kwargs: dict[str, Any]) -> str:
        agent_data = kwargs.get("agent_data")
        return getattr(agent_data, "request_id", None) or instance_id

    async def _run_stateful(self, key: str, code: str) -> ExecutionResult:
        async with self._sessions_lock:
            await self._close_idle(time.monotonic())
            session = self._sessions.get(key, (None, 0.0))[0]
            if session is None:
                session = shared_sandbox(self.sandbox_config).async_session(stateful=True)
            self._sessions[key] = (session, time.monotonic())
        return await session.run(code)

    async def _close_idle(self, now: float) -> None:
        expired = [k for k, (_, used) in self._sessions.items() if now - used > self.sandbox_config.session_ttl_s]
        for key in expired:
            session, _ = self._sessions.pop(key)
            await _close_quietly(session)

    async def close(self) -> None:
        """Close every open stateful session."""
        async with self._sessions_lock:
            sessions = [s for s, _ in self._sessions.values()]
            self._sessions.clear()
        for session in sessions:
            await _close_quietly(session)

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)


async def _close_quietly(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception:
        logger.warning("r1ci: closing an idle code-interpreter session failed", exc_info=True)
