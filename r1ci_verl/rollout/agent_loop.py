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
from dataclasses import asdict, dataclass, field
from typing import Any, Optional
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.rollout_trace import rollout_trace_op
from verl.workers.rollout.replica import TokenOutput

from r1ci_verl.rollout import sandbox_service
from r1ci_verl.rollout.settings import HYDRA_NODE, AgentLoopSettings, unknown_keys_message
from tool_env.shared import shared_sandbox
from reward_fns import protocol
from tool_env import AsyncSession, ExecutionError, ExecutionResult
from tool_env.result import is_infra_failure

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


@dataclass
class TrajectoryStats:
    """Per-trajectory counters, exported in extra_fields (rewards and trackers read them)."""

    num_code_calls: int = 0
    code_exec_time_s: float = 0.0
    code_timeouts: int = 0
    code_errors: int = 0
    code_output_truncated: int = 0
    sandbox_failures: int = 0
    call_limit_reached: bool = False
    response_truncated: bool = False
    answered: bool = False
    num_generate_calls: int = 0
    stop_reason: str = ""


@dataclass
class _Trajectory:
    """State of one rollout. response ids, mask and logprobs always have the same length."""

    prompt_ids: list[int]
    budget: int
    request_id: str = ""
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    segment_ids: list[int] = field(default_factory=list)  # generated since the last results block
    has_logprobs: bool = False
    model_segments: int = 0
    results_blocks: int = 0
    session: Optional[AsyncSession] = None  # opened at the first block: runs without code cost nothing
    stats: TrajectoryStats = field(default_factory=TrajectoryStats)
    # AgentLoopMetrics fields; num_preempted stays -1 when the engine does not report it.
    timing: dict[str, Any] = field(
        default_factory=lambda: {"generate_sequences": 0.0, "tool_calls": 0.0, "num_preempted": -1}
    )
    engine_fields: dict[str, Any] = field(default_factory=dict)  # TokenOutput.extra_fields (global steps)

    @property
    def remaining(self) -> int:
        return self.budget - len(self.response_ids)

    def add_generated(self, ids: list[int], logprobs: Optional[list[float]]) -> None:
        if logprobs is not None:
            self.has_logprobs = True
        self.response_ids += ids
        self.response_mask += [1] * len(ids)
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)
        self.segment_ids += ids

    def add_inserted(self, ids: list[int]) -> None:
        self.response_ids += ids
        self.response_mask += [0] * len(ids)
        self.logprobs += [0.0] * len(ids)
        self.segment_ids = []
        self.results_blocks += 1


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
        self._eos_ids = {self.tokenizer.eos_token_id} - {None}

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

    @rollout_trace_op
    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any) -> AgentLoopOutput:
        # Built and checked once per worker, off the event loop; a broken backend fails the run here.
        self._sandbox = await sandbox_service.ready(self.settings.sandbox)
        messages = self._messages(kwargs["raw_prompt"])
        prompt_ids = await self.ct_build_initial_tokens(messages)
        traj = _Trajectory(
            prompt_ids=list(prompt_ids),
            budget=self.response_length,
            request_id=f"det-{priority}" if self.rollout_config.get("full_determinism") else uuid4().hex,
            has_logprobs=bool(sampling_params.get("logprobs")),
        )
        try:
            await self._roll(traj, sampling_params)
        finally:
            await self._close_session(traj)
        return self._output(traj)

    @staticmethod
    async def _close_session(traj: _Trajectory) -> None:
        """Always runs; a failing close is logged, never allowed to mask the rollout's own error."""
        if traj.session is None:
            return
        try:
            await traj.session.close()
        except Exception:
            logger.error("r1ci: closing a sandbox session failed", exc_info=True)

    def _messages(self, raw_prompt: Any) -> list[dict[str, Any]]:
        messages = [dict(m) for m in raw_prompt]
        if self.settings.add_system_prompt and (not messages or messages[0].get("role") != "system"):
            messages.insert(0, {"role": "system", "content": protocol.SYSTEM_PROMPT})
        return messages

    async def _roll(self, traj: _Trajectory, sampling_params: dict[str, Any]) -> None:
        """Generate, cut at the first closed block, run it, append results; until a stop rule."""
        stats, settings = traj.stats, self.settings
        last_chance = False  # set once the call-limit notice is shown
        while True:
            if traj.remaining <= 0:
                stats.response_truncated, stats.stop_reason = True, "length"
                return
            if stats.num_generate_calls >= settings.max_generate_calls:
                stats.stop_reason = "max_generate_calls"
                return
            budget = traj.remaining
            output = await self._generate(traj, sampling_params, budget)
            new_ids = list(output.token_ids)[:budget]
            if not new_ids:
                stats.stop_reason = "empty"
                return
            logprobs = list(output.log_probs)[: len(new_ids)] if output.log_probs else None
            if logprobs is not None and len(logprobs) != len(new_ids):
                raise ValueError(f"engine returned {len(logprobs)} logprobs for {len(new_ids)} tokens")
            if not traj.segment_ids:
                traj.model_segments += 1

            keep, text, block = self._cut_after_block(traj.segment_ids, new_ids)
            traj.add_generated(new_ids[:keep], logprobs[:keep] if logprobs is not None else None)
            answered_before = settings.stop_after_answer and (
                protocol.extract_answer(text if block is None else text[: block.start]) is not None
            )
            if block is None:
                if not answered_before and self._paused_at_other_fence(text, keep, budget):
                    continue  # engine stopped at a non-python fence: the turn goes on
                stats.stop_reason = self._stop_reason(new_ids, budget, answered_before)
                stats.response_truncated = stats.stop_reason == "length"
                return
            if answered_before:
                stats.stop_reason = "answer"
                return
            if last_chance:
                stats.stop_reason = "call_limit"
                return
            if stats.num_code_calls >= settings.max_code_calls:
                body = protocol.call_limit_notice(settings.max_code_calls)
                stats.call_limit_reached = last_chance = True
            else:
                body = await self._execute(traj, block.code)
            if not self._insert(traj, protocol.format_results_block(body, text)):
                stats.response_truncated, stats.stop_reason = True, "length"
                return

    async def _generate(self, traj: _Trajectory, sampling_params: dict[str, Any], budget: int) -> TokenOutput:
        params = {**sampling_params, "max_tokens": budget}
        if self._stop_params:
            stops = list(params.get("stop") or []) + self._stop_params["stop"]
            params.update(self._stop_params, stop=list(dict.fromkeys(stops)))
        start = time.perf_counter()
        output: TokenOutput = await self.server_manager.generate(
            request_id=traj.request_id, prompt_ids=traj.prompt_ids + traj.response_ids, sampling_params=params
        )
        timing, engine_fields = traj.timing, traj.engine_fields
        timing["generate_sequences"] += time.perf_counter() - start
        if output.num_preempted is not None:
            timing["num_preempted"] = max(timing["num_preempted"], 0) + output.num_preempted
        traj.stats.num_generate_calls += 1
        if not engine_fields:
            engine_fields.update(output.extra_fields)
        elif output.extra_fields.get("max_global_steps") is not None:
            engine_fields["max_global_steps"] = output.extra_fields["max_global_steps"]
        return output

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _cut_after_block(
        self, segment_ids: list[int], new_ids: list[int]
    ) -> tuple[int, str, Optional[protocol.CodeBlock]]:
        """Smallest k such that segment + new_ids[:k] holds a closed python block.

        Returns (k, decoded segment text up to the cut, block); k = len(new_ids) and block None
        when no block closed. Everything after the fence is dropped, so behaviour does not
        depend on the engine honouring stop strings.
        """
        n = len(new_ids)
        text = self._decode(segment_ids + new_ids)
        block = protocol.find_python_block(text)
        if block is None:
            return n, text, None
        # A prefix holds the block iff it reaches block.end. Walk back over the few tokens
        # after the fence, measuring each by decoding only the tail (cheap), then check once.
        k, kept_text = n, text
        while k > 1:
            tail = self._decode(new_ids[k - 1 :])
            if "\ufffd" in tail or not text.endswith(tail):
                return self._cut_by_search(segment_ids, new_ids)
            shorter = text[: len(text) - len(tail)]
            if len(shorter) < block.end:
                break
            k, kept_text = k - 1, shorter
        if k < n and self._decode(segment_ids + new_ids[:k]) != kept_text:
            return self._cut_by_search(segment_ids, new_ids)  # a tokenizer whose pieces do not concatenate
        return k, kept_text, block

    def _cut_by_search(
        self, segment_ids: list[int], new_ids: list[int]
    ) -> tuple[int, str, Optional[protocol.CodeBlock]]:
        """Exact binary search on full decodes: prefixes that hold a block only grow."""
        lo, hi = 1, len(new_ids)
        hi_text = self._decode(segment_ids + new_ids)
        while lo < hi:
            mid = (lo + hi) // 2
            mid_text = self._decode(segment_ids + new_ids[:mid])
            if protocol.find_python_block(mid_text) is None:
                lo = mid + 1
            else:
                hi, hi_text = mid, mid_text
        return hi, hi_text, protocol.find_python_block(hi_text)

    def _paused_at_other_fence(self, text: str, num_new: int, budget: int) -> bool:
        """The engine honoured our stop string at the close of a non-python block."""
        return bool(self._stop_params) and num_new < budget and text.endswith(protocol.STOP_STRINGS)

    def _stop_reason(self, new_ids: list[int], budget: int, answered: bool) -> str:
        if new_ids[-1] in self._eos_ids:
            return "eos"
        if answered:
            return "answer"
        return "length" if len(new_ids) >= budget else "stop"

    async def _execute(self, traj: _Trajectory, code: str) -> str:
        """Run one block; infrastructure failures become an error the model sees, logged loudly."""
        stats, sandbox_config = traj.stats, self.settings.sandbox
        start = time.perf_counter()
        try:
            if traj.session is None:
                traj.session = shared_sandbox(sandbox_config).async_session(stateful=sandbox_config.stateful)
            result = await traj.session.run(code)
        except Exception as exc:  # the infrastructure failed, not the model's code
            logger.error("r1ci: sandbox failed to run a code block: %r", exc, exc_info=True)
            stats.sandbox_failures += 1
            result = ExecutionResult(error=ExecutionError("SandboxError", str(exc)), exit_code=None)
        else:
            stats.code_timeouts += bool(result.timed_out)
            stats.code_errors += result.error is not None and not result.timed_out
            stats.code_output_truncated += bool(result.truncated)
            stats.sandbox_failures += is_infra_failure(result)  # the sandbox died, not the code
        elapsed = time.perf_counter() - start
        traj.timing["tool_calls"] += elapsed
        stats.num_code_calls += 1
        stats.code_exec_time_s += elapsed
        return protocol.format_results_body(result, sandbox_config.timeout_s)

    def _insert(self, traj: _Trajectory, text: str) -> bool:
        """Append masked results tokens; False when the response budget cut them short."""
        # Output text that spells a special token ("<|im_end|>") must stay plain text.
        ids = self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
        fits = len(ids) <= traj.remaining
        traj.add_inserted(ids[: max(traj.remaining, 0)])
        return fits

    def _output(self, traj: _Trajectory) -> AgentLoopOutput:
        stats = traj.stats
        generated = [t for t, m in zip(traj.response_ids, traj.response_mask) if m]
        stats.answered = protocol.extract_answer(self._decode(generated)) is not None  # the model's own words
        extra_fields = {**traj.engine_fields, **asdict(stats), **sandbox_service.fields(getattr(self, "_sandbox", None))}
        return AgentLoopOutput(
            prompt_ids=traj.prompt_ids,
            response_ids=traj.response_ids,
            response_mask=traj.response_mask,
            response_logprobs=traj.logprobs if traj.has_logprobs else None,
            num_turns=1 + traj.model_segments + traj.results_blocks,
            metrics=traj.timing,
            extra_fields=extra_fields,
        )
