"""The R1-Code-Interpreter agent loop: one assistant turn interleaved with code execution.

The model reasons in text; when a ```python block closes, generation pauses, the block runs
in a sandbox session opened for this trajectory, and the results block (see
reward_fns.protocol) is appended as masked tokens; the model then continues the same
assistant turn. Token-in/token-out: generated ids are kept exactly as the engine returned
them (never re-tokenized), so response_mask and logprobs stay aligned with what was sampled.

Select it per row with ``agent_name: r1ci_code_interpreter`` (registered by the
``verl.plugins`` entry point in every process).
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import asdict
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.rollout_trace import rollout_trace_op
from verl.workers.rollout.replica import TokenOutput

from r1ci_verl.rollout.engine import (
    EngineRules,
    Generation,
    SessionExecutor,
    Trajectory,
    TrajectoryStats,
    TurnEngine,
)
from r1ci_verl.rollout import sandbox_service
from r1ci_verl.rollout.settings import HYDRA_NODE, AgentLoopSettings, unknown_keys_message
from reward_fns import protocol
from tool_env.shared import shared_sandbox

__all__ = ["AGENT_NAME", "CodeInterpreterAgentLoop", "TrajectoryStats"]

logger = logging.getLogger(__name__)

AGENT_NAME = "r1ci_code_interpreter"

# How each rollout engine is asked to pause at a closing fence and keep the fence in its output.
STOP_PARAMS_BY_ENGINE: dict[str, dict[str, Any]] = {
    "vllm": {"include_stop_str_in_output": True},
    "sglang": {"no_stop_trim": True},
}
_warned_engines: set[str] = set()
# What verl itself passes to an agent loop's __init__; any other keyword came from the YAML entry.
_VERL_INIT_KWARGS = frozenset(inspect.signature(AgentLoopBase.__init__).parameters) - {"self", "kwargs"}


def _agent_loop_config_path(args: tuple, kwargs: dict) -> str:
    """actor_rollout_ref.rollout.agent.agent_loop_config_path of the trainer config, for messages."""
    wrapped = kwargs.get("trainer_config", args[0] if args else None)
    try:
        return str(wrapped.config.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    except Exception:  # noqa: BLE001 - only used to word an error
        return "the agent-loop config"


@register(AGENT_NAME)
class CodeInterpreterAgentLoop(AgentLoopBase):
    """verl agent loop speaking the R1-CI markdown protocol (see module docstring)."""

    def __init__(self, *args: Any, tools: Any = None, name: str | None = None, **kwargs: Any):
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k in AgentLoopSettings.__dataclass_fields__}
        unknown = sorted(set(kwargs) - _VERL_INIT_KWARGS)  # verl passes the YAML entry's other keys here
        if unknown:
            source = f"the {name or AGENT_NAME!r} entry of {_agent_loop_config_path(args, kwargs)}"
            raise ValueError(unknown_keys_message(unknown, source))
        super().__init__(*args, **kwargs)
        overrides = self.config.get(HYDRA_NODE[0], {}) or {}
        self.settings = AgentLoopSettings.from_layers(settings, overrides.get(HYDRA_NODE[1]))
        self.settings.sandbox = sandbox_service.node_sized(self.settings.sandbox, self.rollout_config)
        self.response_length: int = self.rollout_config.response_length
        self._stop_params = self._engine_stop_params(self.rollout_config.get("name", ""))

    def _engine_stop_params(self, engine: str) -> dict[str, Any]:
        if not self.settings.use_stop_strings:
            return {}
        extra = STOP_PARAMS_BY_ENGINE.get(engine)
        if extra is None:
            if engine not in _warned_engines:  # once per process, not once per trajectory
                _warned_engines.add(engine)
                logger.warning("r1ci: engine %r: no stop-string parameters known; the loop cuts at fences itself", engine)
            return {}
        return {"stop": list(protocol.STOP_STRINGS), **extra}

    def _engine(self, traj: Trajectory, sampling_params: dict[str, Any]) -> tuple[TurnEngine, SessionExecutor]:
        """The shared turn engine, generating through verl's server_manager (token-in/token-out)."""
        sandbox_config = self.settings.sandbox
        executor = SessionExecutor(
            lambda: shared_sandbox(sandbox_config).async_session(stateful=sandbox_config.stateful),
            sandbox_config.timeout_s,
        )
        rules = EngineRules(
            max_code_calls=self.settings.max_code_calls,
            max_generate_calls=self.settings.max_generate_calls,
            stop_after_answer=self.settings.stop_after_answer,
            stop_strings=tuple(self._stop_params.get("stop", ())),
        )

        async def generate(traj: Trajectory, budget: int, stop: Any) -> Generation:
            output = await self._generate(traj, sampling_params, budget)
            return Generation(list(output.token_ids), list(output.log_probs) if output.log_probs else None)

        return TurnEngine(self.tokenizer, rules, generate, executor), executor

    @rollout_trace_op
    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any) -> AgentLoopOutput:
        # Built and checked once per worker, off the event loop; a broken backend fails the run here.
        self._sandbox = await sandbox_service.ready(self.settings.sandbox)
        messages = self._messages(kwargs["raw_prompt"])
        prompt_ids = await self.ct_build_initial_tokens(messages)
        traj = Trajectory(
            prompt_ids=list(prompt_ids),
            budget=self.response_length,
            request_id=f"det-{priority}" if self.rollout_config.get("full_determinism") else uuid4().hex,
            has_logprobs=bool(sampling_params.get("logprobs")),
        )
        # AgentLoopMetrics fields; num_preempted stays -1 when the engine does not report it.
        traj.extra["metrics"] = {"generate_sequences": 0.0, "tool_calls": 0.0, "num_preempted": -1}
        traj.extra["engine_fields"] = {}  # TokenOutput.extra_fields (global steps)
        engine, executor = self._engine(traj, sampling_params)
        try:
            await engine.roll(traj)
        finally:
            await executor.close()
        traj.extra["metrics"]["tool_calls"] = traj.timing["tool_calls_s"]
        traj.extra["scored_response"] = engine.scored_text(traj)
        return await self._output(traj)

    def _messages(self, raw_prompt: Any) -> list[dict[str, Any]]:
        messages = [dict(m) for m in raw_prompt]
        if self.settings.add_system_prompt and (not messages or messages[0].get("role") != "system"):
            messages.insert(0, {"role": "system", "content": protocol.SYSTEM_PROMPT})
        return messages

    async def _generate(self, traj: Trajectory, sampling_params: dict[str, Any], budget: int) -> TokenOutput:
        params = {**sampling_params, "max_tokens": budget}
        if self._stop_params:
            stops = list(params.get("stop") or []) + self._stop_params["stop"]
            params.update(self._stop_params, stop=list(dict.fromkeys(stops)))
        start = time.perf_counter()
        output: TokenOutput = await self.server_manager.generate(
            request_id=traj.request_id, prompt_ids=traj.prompt_ids + traj.response_ids, sampling_params=params
        )
        timing, engine_fields = traj.extra["metrics"], traj.extra["engine_fields"]
        timing["generate_sequences"] += time.perf_counter() - start
        if output.num_preempted is not None:
            timing["num_preempted"] = max(timing["num_preempted"], 0) + output.num_preempted
        if not engine_fields:
            engine_fields.update(output.extra_fields)
        elif output.extra_fields.get("max_global_steps") is not None:
            engine_fields["max_global_steps"] = output.extra_fields["max_global_steps"]
        return output

    # Kept for tests and benchmarks that measure the cut directly.
    def _cut_after_block(self, segment_ids: list[int], new_ids: list[int]):
        return TurnEngine(self.tokenizer, EngineRules(), None, None).cut_after_block(segment_ids, new_ids)  # type: ignore[arg-type]

    def _cut_by_search(self, segment_ids: list[int], new_ids: list[int]):
        return TurnEngine(self.tokenizer, EngineRules(), None, None).cut_by_search(segment_ids, new_ids)  # type: ignore[arg-type]

    async def _output(self, traj: Trajectory) -> AgentLoopOutput:
        extra_fields = {**traj.extra["engine_fields"], **asdict(traj.stats),
                        protocol.SCORED_RESPONSE_KEY: traj.extra["scored_response"],  # the reward reads this
                        **await sandbox_service.fields(getattr(self, "_sandbox", None))}
        return AgentLoopOutput(
            prompt_ids=traj.prompt_ids,
            response_ids=traj.response_ids,
            response_mask=traj.response_mask,
            response_logprobs=traj.logprobs if traj.has_logprobs else None,
            num_turns=traj.num_turns,
            metrics=traj.extra["metrics"],
            extra_fields=extra_fields,
        )
