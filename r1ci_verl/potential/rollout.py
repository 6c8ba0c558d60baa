"""One multi-turn answer: generate, run each closed python block in the sandbox, continue.

Uses the shared protocol functions, so the transcript an answer is scored on has the same
shape as a training rollout: ```python … ``` then ``Code Execution Results:`` and the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from r1ci_verl.potential.backends import CompletionBackend, SamplingConfig
from reward_fns.protocol import (
    MAX_CODE_CALLS,
    STOP_STRINGS,
    call_limit_notice,
    find_python_block,
    format_results_block,
    format_results_body,
)


class CodeRunner(Protocol):
    """What a rollout needs from a sandbox (tool_env.Sandbox provides it)."""

    async def arun(self, code: str, timeout_s: float | None = None): ...


@dataclass(frozen=True)
class RolloutLimits:
    max_code_calls: int = MAX_CODE_CALLS  # paper: at most 8 code calls per answer
    code_timeout_s: float = 60.0  # paper: 60 s per execution
    max_response_chars: int = 32_000  # stop a runaway transcript before it overflows the context


@dataclass(frozen=True)
class Transcript:
    response: str
    num_code_calls: int
    num_generations: int
    finish_reason: str  # backend's reason, or "code_limit" / "response_limit"


async def rollout(
    backend: CompletionBackend,
    prompt: str,
    runs_code: bool,
    sampling: SamplingConfig,
    seed: int,
    sandbox: CodeRunner | None = None,
    limits: RolloutLimits = RolloutLimits(),
) -> Transcript:
    """Generate one answer to the rendered `prompt`, executing code when `runs_code`."""
    if runs_code and sandbox is None:
        raise ValueError("a strategy that runs code needs a sandbox")
    stop = STOP_STRINGS if runs_code else ()
    response, calls, generations, limit_notices = "", 0, 0, 0
    while True:
        completion = await backend.complete(prompt + response, stop, sampling, seed + generations)
        generations += 1
        text = response + completion.text
        block = find_python_block(text, len(response)) if runs_code else None
        if block is None:
            return Transcript(text, calls, generations, completion.finish_reason)
        response = text[: block.end]  # the model may run past the fence; cut there, as the agent loop does
        if calls < limits.max_code_calls:
            result = await sandbox.arun(block.code, limits.code_timeout_s)  # type: ignore[union-attr]
            body = format_results_body(result, limits.code_timeout_s)
            calls += 1
        elif limit_notices == 0:
            body = call_limit_notice(limits.max_code_calls)
            limit_notices += 1
        else:
            return Transcript(response, calls, generations, "code_limit")
        response += format_results_block(body, response)
        if len(response) > limits.max_response_chars:
            return Transcript(response, calls, generations, "response_limit")
