"""The R1-CI turn engine: one implementation of the rules of a code-interpreter answer.

    generate -> cut at the first closed python block -> run it -> insert the results block
    (masked) -> generate again ... until EOS, an answer, the call limit's last chance, or the
    token budget.

Training (the verl agent loop, via verl's ``server_manager``) and offline rollouts (``r1ci
potential``, ``r1ci eval``, ``r1ci sft synth``, via r1ci_verl.rollout.clients) both drive this
class, so a transcript and its stop reason do not depend on who sampled it. It works in token
space: ids the generator returns are kept as they are (never re-tokenized), inserted results are
encoded once, and every budget is counted in tokens. No verl import here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional, Protocol, Sequence

from reward_fns import protocol
from tool_env import AsyncSession, ExecutionError, ExecutionResult
from tool_env.result import is_infra_failure

logger = logging.getLogger(__name__)

# Why a trajectory ended (TrajectoryStats.stop_reason).
STOP_REASONS = ("eos", "answer", "stop", "length", "empty", "call_limit", "max_generate_calls")


@dataclass
class TrajectoryStats:
    """Per-trajectory counters (the agent loop exports them in extra_fields; eval reports them)."""

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
class Generation:
    """What one generate call returned: new token ids (and their logprobs when asked for)."""

    token_ids: list[int]
    log_probs: Optional[list[float]] = None


@dataclass
class Trajectory:
    """State of one rollout. Response ids, mask and logprobs always have the same length."""

    prompt_ids: list[int]
    budget: int  # response tokens (generated + inserted)
    request_id: str = ""
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    segment_ids: list[int] = field(default_factory=list)  # generated since the last results block
    # Inserted results blocks: (start, end) in response_ids and what a reward reads in their place.
    results_spans: list[tuple[int, int, str]] = field(default_factory=list)
    has_logprobs: bool = False
    model_segments: int = 0
    results_blocks: int = 0
    stats: TrajectoryStats = field(default_factory=TrajectoryStats)
    timing: dict[str, Any] = field(default_factory=lambda: {"generate_s": 0.0, "tool_calls_s": 0.0})
    extra: dict[str, Any] = field(default_factory=dict)  # whatever the driver keeps per trajectory

    @property
    def remaining(self) -> int:
        return self.budget - len(self.response_ids)

    @property
    def num_turns(self) -> int:
        """Chat turns as verl counts them: the prompt, each model segment, each results block."""
        return 1 + self.model_segments + self.results_blocks

    def add_generated(self, ids: list[int], logprobs: Optional[list[float]]) -> None:
        if logprobs is not None:
            self.has_logprobs = True
        self.response_ids += ids
        self.response_mask += [1] * len(ids)
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)
        self.segment_ids += ids

    def add_inserted(self, ids: list[int], scored_as: str = "") -> None:
        self.results_spans.append((len(self.response_ids), len(self.response_ids) + len(ids), scored_as))
        self.response_ids += ids
        self.response_mask += [0] * len(ids)
        self.logprobs += [0.0] * len(ids)
        self.segment_ids = []
        self.results_blocks += 1


class Tokenizer(Protocol):
    eos_token_id: Optional[int]

    def decode(self, ids: Sequence[int], **kwargs: Any) -> str: ...

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...


GenerateFn = Callable[[Trajectory, int, Sequence[str]], Awaitable[Generation]]
"""generate(trajectory, max_tokens, stop_strings): continue prompt_ids + response_ids."""

ExecuteFn = Callable[[Trajectory, str], Awaitable[str]]
"""execute(trajectory, code) -> the results body the model sees (see protocol.format_results_body)."""


@dataclass(frozen=True)
class EngineRules:
    """The turn rules. Defaults follow the R1-CI paper (8 code calls, stop after the answer)."""

    max_code_calls: int = protocol.MAX_CODE_CALLS
    max_generate_calls: int = 64  # guards against a generator that stops without progress
    stop_after_answer: bool = True  # a <<<answer>>> ends the trajectory: code after it is not run
    stop_strings: tuple[str, ...] = protocol.STOP_STRINGS  # () when the generator cannot honour them


def decode(tokenizer: Tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def encode_inserted(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of inserted text. Output that spells a special token ("<|im_end|>") stays plain text."""
    return tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)


class TurnEngine:
    """Drives one trajectory under the R1-CI rules; generation and execution are injected."""

    def __init__(self, tokenizer: Tokenizer, rules: EngineRules, generate: GenerateFn, execute: ExecuteFn):
        self.tokenizer = tokenizer
        self.rules = rules
        self.generate = generate
        self.execute = execute
        self.eos_ids = {tokenizer.eos_token_id} - {None}

    async def roll(self, traj: Trajectory) -> Trajectory:
        """Generate, cut at the first closed block, run it, append results; until a stop rule."""
        stats, rules = traj.stats, self.rules
        last_chance = False  # set once the call-limit notice is shown
        try:
            while True:
                if traj.remaining <= 0:
                    stats.response_truncated, stats.stop_reason = True, "length"
                    return traj
                if stats.num_generate_calls >= rules.max_generate_calls:
                    stats.stop_reason = "max_generate_calls"
                    return traj
                budget = traj.remaining
                started = time.perf_counter()
                output = await self.generate(traj, budget, rules.stop_strings)
                traj.timing["generate_s"] += time.perf_counter() - started
                stats.num_generate_calls += 1
                new_ids = list(output.token_ids)[:budget]
                if not new_ids:
                    stats.stop_reason = "empty"
                    return traj
                logprobs = list(output.log_probs)[: len(new_ids)] if output.log_probs else None
                if logprobs is not None and len(logprobs) != len(new_ids):
                    raise ValueError(f"generator returned {len(logprobs)} logprobs for {len(new_ids)} tokens")
                if not traj.segment_ids:
                    traj.model_segments += 1

                keep, text, block = self.cut_after_block(traj.segment_ids, new_ids)
                traj.add_generated(new_ids[:keep], logprobs[:keep] if logprobs is not None else None)
                answered_before = rules.stop_after_answer and (
                    protocol.extract_answer(text if block is None else text[: block.start]) is not None
                )
                if block is None:
                    if not answered_before and self._paused_at_other_fence(text, keep, budget):
                        continue  # the generator stopped at a non-python fence: the turn goes on
                    stats.stop_reason = self._stop_reason(new_ids, budget, answered_before)
                    stats.response_truncated = stats.stop_reason == "length"
                    return traj
                if answered_before:
                    stats.stop_reason = "answer"
                    return traj
                if last_chance:
                    stats.stop_reason = "call_limit"
                    return traj
                if stats.num_code_calls >= rules.max_code_calls:
                    body = protocol.call_limit_notice(rules.max_code_calls)
                    stats.call_limit_reached = last_chance = True
                else:
                    started = time.perf_counter()
                    body = await self.execute(traj, block.code)
                    traj.timing["tool_calls_s"] += time.perf_counter() - started
                if not self._insert(traj, protocol.format_results_block(body, text), text):
                    stats.response_truncated, stats.stop_reason = True, "length"
                    return traj
        finally:
            generated = [t for t, m in zip(traj.response_ids, traj.response_mask) if m]
            stats.answered = protocol.extract_answer(decode(self.tokenizer, generated)) is not None  # the model's own words

    def response_text(self, traj: Trajectory) -> str:
        return decode(self.tokenizer, traj.response_ids)

    def scored_text(self, traj: Trajectory) -> str:
        """The response as a reward should read it (protocol.SCORED_RESPONSE_KEY): the model's
        tokens decoded as verl decodes a response for its reward (special tokens skipped), each
        results block reduced to its header line, without the program's output."""
        pieces, pos = [], 0
        for start, end, scored_as in traj.results_spans:
            pieces += [self.tokenizer.decode(traj.response_ids[pos:start], skip_special_tokens=True), scored_as]
            pos = end
        pieces.append(self.tokenizer.decode(traj.response_ids[pos:], skip_special_tokens=True))
        return "".join(pieces)

    # ------------------------------------------------------------------ cutting
    def cut_after_block(
        self, segment_ids: list[int], new_ids: list[int]
    ) -> tuple[int, str, Optional[protocol.CodeBlock]]:
        """Smallest k such that segment + new_ids[:k] holds a closed python block.

        Returns (k, decoded segment text up to the cut, block); k = len(new_ids) and block None
        when no block closed. Everything after the fence is dropped, so behaviour does not
        depend on the generator honouring stop strings.
        """
        n = len(new_ids)
        text = decode(self.tokenizer, segment_ids + new_ids)
        block = protocol.find_python_block(text)
        if block is None:
            return n, text, None
        # A prefix holds the block iff it reaches block.end. Walk back over the few tokens
        # after the fence, measuring each by decoding only the tail (cheap), then check once.
        k, kept_text = n, text
        while k > 1:
            tail = decode(self.tokenizer, new_ids[k - 1 :])
            if "\ufffd" in tail or not text.endswith(tail):
                return self.cut_by_search(segment_ids, new_ids)
            shorter = text[: len(text) - len(tail)]
            if len(shorter) < block.end:
                break
            k, kept_text = k - 1, shorter
        if k < n and decode(self.tokenizer, segment_ids + new_ids[:k]) != kept_text:
            return self.cut_by_search(segment_ids, new_ids)  # a tokenizer whose pieces do not concatenate
        return k, kept_text, block

    def cut_by_search(
        self, segment_ids: list[int], new_ids: list[int]
    ) -> tuple[int, str, Optional[protocol.CodeBlock]]:
        """Exact binary search on full decodes: prefixes that hold a block only grow."""
        lo, hi = 1, len(new_ids)
        hi_text = decode(self.tokenizer, segment_ids + new_ids)
        while lo < hi:
            mid = (lo + hi) // 2
            mid_text = decode(self.tokenizer, segment_ids + new_ids[:mid])
            if protocol.find_python_block(mid_text) is None:
                lo = mid + 1
            else:
                hi, hi_text = mid, mid_text
        return hi, hi_text, protocol.find_python_block(hi_text)

    # ------------------------------------------------------------------ rules
    def _paused_at_other_fence(self, text: str, num_new: int, budget: int) -> bool:
        """The generator honoured our stop string at the close of a non-python block."""
        return bool(self.rules.stop_strings) and num_new < budget and text.endswith(tuple(self.rules.stop_strings))

    def _stop_reason(self, new_ids: list[int], budget: int, answered: bool) -> str:
        if new_ids[-1] in self.eos_ids:
            return "eos"
        if answered:
            return "answer"
        return "length" if len(new_ids) >= budget else "stop"

    def _insert(self, traj: Trajectory, text: str, preceding_text: str) -> bool:
        """Append masked results tokens; False when the response budget cut them short."""
        ids = encode_inserted(self.tokenizer, text)
        fits = len(ids) <= traj.remaining
        kept = ids[: max(traj.remaining, 0)]
        inserted = text if fits else decode(self.tokenizer, kept)
        traj.add_inserted(kept, protocol.scored_results_block(inserted, preceding_text))
        return fits


class SessionExecutor:
    """Runs a trajectory's blocks in one sandbox session, opened at its first block.

    Infrastructure failures (the sandbox, not the model's code) become a ``SandboxError`` the
    model sees, are logged loudly and counted in ``sandbox_failures``. Call `close` when the
    trajectory ends (always; a failing close is logged, never raised over the rollout's own error).
    """

    def __init__(self, open_session: Callable[[], AsyncSession], timeout_s: Optional[float]):
        self.open_session = open_session
        self.timeout_s = timeout_s
        self.session: Optional[AsyncSession] = None

    async def __call__(self, traj: Trajectory, code: str) -> str:
        stats = traj.stats
        start = time.perf_counter()
        try:
            if self.session is None:
                self.session = self.open_session()
            result = await self.session.run(code)
        except Exception as exc:  # the infrastructure failed, not the model's code
            logger.error("r1ci: sandbox failed to run a code block: %r", exc, exc_info=True)
            stats.sandbox_failures += 1
            result = ExecutionResult(error=ExecutionError("SandboxError", str(exc)), exit_code=None)
        else:
            stats.code_timeouts += bool(result.timed_out)
            infra_failure = is_infra_failure(result)  # the sandbox died, not the code
            stats.code_errors += result.error is not None and not result.timed_out and not infra_failure
            stats.code_output_truncated += bool(result.truncated)
            stats.sandbox_failures += infra_failure
        stats.num_code_calls += 1
        stats.code_exec_time_s += time.perf_counter() - start
        return protocol.format_results_body(result, self.timeout_s)

    async def close(self) -> None:
        if self.session is None:
            return
        session, self.session = self.session, None
        try:
            await session.close()
        except Exception:
            logger.error("r1ci: closing a sandbox session failed", exc_info=True)
