"""Test doubles for boundaries the tests cannot reach. Only fakes live here, named as such; tests import it as `fakes` (tests/ is on sys.path via conftest).

FakeScriptedLLMServer stands in for verl's LLM server client (``server_manager``): instead
of sampling, it replays scripted replies, tokenised by the tiny tokenizer, and behaves like
verl's vLLM server where it matters to an agent loop: ``max_tokens`` caps the reply, stop
strings end it on the token that completes them (the token may run past the stop string),
and logprobs come back aligned with the token ids.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

from verl.workers.rollout.replica import TokenOutput


@dataclass(frozen=True)
class Reply:
    """One scripted engine reply: `text` as the model would write it, then EOS if `eos`."""

    text: str
    eos: bool = True


def fake_logprob(token_id: int) -> float:
    """Deterministic per-token logprob, so tests can check alignment after masking."""
    return -0.01 - (token_id % 97) / 100.0


class FakeScriptedLLMServer:
    """FAKE LLM server: replays `script` one reply per ``generate`` call (see module doc).

    A plain class, not a dataclass: hydra.utils.instantiate would turn a dataclass argument
    into a config node when verl builds the agent loop.
    """

    def __init__(
        self,
        tokenizer: Any,
        script: Sequence[Reply | str],
        honour_stops: bool = True,
        with_logprobs: bool = True,
        latency_s: float = 0.0,
    ) -> None:
        self.tokenizer = tokenizer
        self.honour_stops = honour_stops
        self.with_logprobs = with_logprobs
        self.latency_s = latency_s
        self.calls: list[dict[str, Any]] = []
        self._replies = [r if isinstance(r, Reply) else Reply(r) for r in script]
        self._encoded = [self._encode(r) for r in self._replies]

    def _encode(self, reply: Reply) -> list[int]:
        ids = self.tokenizer.encode(reply.text, add_special_tokens=False)
        return ids + ([self.tokenizer.eos_token_id] if reply.eos else [])

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **kwargs) -> TokenOutput:
        call = len(self.calls)
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids), "sampling_params": dict(sampling_params)})
        if call >= len(self._encoded):
            raise AssertionError(f"FakeScriptedLLMServer: script has {len(self._encoded)} replies, call {call + 1} made")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        ids = self._encoded[call][: sampling_params.get("max_tokens", len(self._encoded[call]))]
        if self.honour_stops and sampling_params.get("stop"):
            ids = self._cut_at_stop(ids, sampling_params["stop"])
        log_probs = [fake_logprob(t) for t in ids] if self.with_logprobs else None
        self.calls[-1]["token_ids"] = list(ids)
        return TokenOutput(token_ids=ids, log_probs=log_probs, stop_reason="completed", extra_fields={"global_steps": 0})

    def _cut_at_stop(self, ids: list[int], stops: Sequence[str]) -> list[int]:
        """Keep tokens through the one whose text completes the first stop string."""
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        ends = [text.find(stop) + len(stop) for stop in stops if stop in text]
        if not ends:
            return ids
        lo, hi = 1, len(ids)  # smallest prefix whose text reaches the end of the stop string
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tokenizer.decode(ids[:mid], skip_special_tokens=False)) >= min(ends):
                hi = mid
            else:
                lo = mid + 1
        return ids[:hi]
