"""CodeInterpreterTool: a drop-in verl BaseTool for JSON function-calling models (hermes format).

    tools:
      - class_name: r1ci_verl.rollout.tool.CodeInterpreterTool
        config: {type: native, timeout_s: 60, stateful: false}

Stateless by default: every call is a fresh script. With ``stateful: true`` variables persist
across the calls of one trajectory. Either way a trajectory holds one sandbox session (with
E2B: one cloud sandbox per trajectory, not per call).

verl 0.9.1's ToolAgentLoop calls create/execute/release once per *call*, so the session is
keyed on the trajectory (its ``agent_data`` object: request ids can repeat) and closed when the trajectory ends
(its AgentData is released); a caller without agent_data gets a session per instance, closed
by ``release``. Sessions idle past ``session_ttl_s`` are closed as a backstop, and the shared
sandbox caps live stateful sessions (``max_sessions``, evictions counted).

The tool builds and checks the shared sandbox when verl constructs it (agent-loop worker
start), so a misconfigured backend fails the run there with one message; set
``warm_up: false`` to defer that to the first call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, Optional
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from reward_fns import protocol
from r1ci_verl.rollout.sandbox_service import hide_task_data
from tool_env import AsyncSession, SandboxConfig
from tool_env.result import is_infra_failure
from tool_env.shared import ashared_sandbox, prepare_shared_sandbox

logger = logging.getLogger(__name__)

TOOL_NAME = "code_interpreter"
NON_SANDBOX_KEYS = ("type", "warm_up")  # verl's key and ours in the tool config; the rest is SandboxConfig

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
        config = config or {}
        sandbox_values = {k: v for k, v in config.items() if k not in NON_SANDBOX_KEYS}
        self.sandbox_config = hide_task_data(SandboxConfig.from_mapping(sandbox_values))
        self._sessions: dict[str, tuple[AsyncSession, float]] = {}  # trajectory key -> (session, last use)
        self._trajectory_keys: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._sessions_lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()
        self.sessions_released = 0  # closed at the end of their trajectory (not by TTL)
        if config.get("warm_up", True):
            prepare_shared_sandbox(self.sandbox_config)  # worker start: fail the run here, loudly

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
            session = await self._session_for(instance_id, kwargs.get("agent_data"))
            result = await session.run(code)
        except Exception as exc:
            logger.error("r1ci: sandbox failed to run tool code: %r", exc, exc_info=True)
            return ToolResponse(text=f"SandboxError: {exc}"), 0.0, {"sandbox_failures": 1}
        finally:
            self._touch(instance_id, kwargs.get("agent_data"))
        metrics = {
            "duration_s": result.duration_s,
            "timed_out": int(result.timed_out),
            "error": int(result.error is not None),
            "truncated": int(result.truncated),
            "sandbox_failures": int(is_infra_failure(result)),
        }
        return ToolResponse(text=protocol.format_results_body(result, self.sandbox_config.timeout_s)), 0.0, metrics

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """End of an instance: closes its session if it was keyed on the instance (no trajectory id).

        A session keyed on a trajectory (verl's per-call create/release) ends with the trajectory.
        """
        async with self._sessions_lock:
            entry = self._sessions.pop(instance_id, None)
        if entry is not None:
            self.sessions_released += 1
            await _close_quietly(entry[0])

    def _trajectory_key(self, instance_id: str, agent_data: Any) -> str:
        """One key per trajectory object: request ids repeat across batches (`det-<priority>`)."""
        if agent_data is None:
            return instance_id
        try:
            key = self._trajectory_keys.get(agent_data)
            if key is None:
                request_id = getattr(agent_data, "request_id", None) or "trajectory"
                key = self._trajectory_keys[agent_data] = f"{request_id}-{uuid4().hex}"
            return key
        except TypeError:  # not weak-referenceable or not hashable: its request id is all there is
            return getattr(agent_data, "request_id", None) or instance_id

    async def _session_for(self, instance_id: str, agent_data: Any) -> AsyncSession:
        key = self._trajectory_key(instance_id, agent_data)
        sandbox = await ashared_sandbox(self.sandbox_config)  # built off the event loop if not yet
        async with self._sessions_lock:
            await self._close_idle(time.monotonic())
            entry = self._sessions.get(key)
            if entry is not None:
                return entry[0]
            session = sandbox.async_session(stateful=self.sandbox_config.stateful)
            self._sessions[key] = (session, time.monotonic())
        if key != instance_id and agent_data is not None:
            self._release_with(agent_data, key)
        return session

    def _touch(self, instance_id: str, agent_data: Any) -> None:
        key = self._trajectory_key(instance_id, agent_data)
        if key in self._sessions:
            self._sessions[key] = (self._sessions[key][0], time.monotonic())

    def _release_with(self, agent_data: Any, key: str) -> None:
        """Close the trajectory's session as soon as verl drops the trajectory's AgentData."""
        loop = asyncio.get_running_loop()

        def trajectory_ended() -> None:  # may run in any thread, inside the garbage collector
            if not loop.is_closed():  # a closed loop took its sessions with it
                loop.call_soon_threadsafe(self._schedule_release, key)

        try:
            weakref.finalize(agent_data, trajectory_ended).atexit = False
        except TypeError:  # not weak-referenceable: the TTL sweep ends it
            logger.debug("r1ci: agent_data of %s cannot be watched; its session ends by TTL", key)

    def _schedule_release(self, key: str) -> None:
        entry = self._sessions.pop(key, None)
        if entry is None:
            return
        self.sessions_released += 1
        task = asyncio.get_running_loop().create_task(_close_quietly(entry[0]))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_idle(self, now: float) -> None:
        expired = [k for k, (_, used) in self._sessions.items() if now - used > self.sandbox_config.session_ttl_s]
        for key in expired:
            session, _ = self._sessions.pop(key)
            await _close_quietly(session)

    async def close(self) -> None:
        """Close every open session."""
        async with self._sessions_lock:
            sessions = [s for s, _ in self._sessions.values()]
            self._sessions.clear()
        for session in sessions:
            await _close_quietly(session)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)


async def _close_quietly(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception:
        logger.warning("r1ci: closing a code-interpreter session failed", exc_info=True)
