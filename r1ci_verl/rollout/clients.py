"""Model clients for offline rollouts: an OpenAI-compatible server, or a local transformers model.

The turn engine (r1ci_verl.rollout.engine) continues the SAME assistant turn after each results
block, so a client must continue raw text, not start a new chat turn. Three ways, per server:

- ``completions`` (default): the chat template is applied locally (the model's own tokenizer)
  and ``POST /v1/completions`` continues the prompt. Works with ``vllm serve`` and SGLang's
  server; with ``--server vllm`` the prompt is sent as token ids and the reply's token ids come
  back (``return_token_ids``), exactly as the training rollout sees them.
- ``chat``: ``POST /v1/chat/completions`` with the transcript so far as the final assistant
  message and ``continue_final_message`` (vLLM, SGLang). Hosted chat APIs that cannot continue
  an assistant message (OpenAI's) are not usable for code-interpreter answers.
- ``TransformersClient``: a local model on CPU/GPU, token-in/token-out (smoke runs, tests).

Transient failures (HTTP 429/5xx, connection errors, timeouts) are retried with exponential
backoff and jitter; retries are counted and summarised, not logged one by one. `check()` fails
with one clear message before any work when the server cannot be reached.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from r1ci_verl.rollout.engine import Generation, decode

logger = logging.getLogger(__name__)

CHAT_PROMPTS_KEPT = 100_000  # chat api: prompts remembered to find the messages behind a continuation
SERVER_KINDS = ("vllm", "sglang", "openai")  # what extras a completions request may carry
API_KINDS = ("completions", "chat")
# Extra request fields per server so that a stop string stays in the returned text.
STOP_EXTRAS: dict[str, dict[str, Any]] = {
    "vllm": {"include_stop_str_in_output": True},
    "sglang": {"no_stop_trim": True},
    "openai": {},
}


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling per request. The token budget of a whole answer is the engine's, not this."""

    temperature: float = 1.0
    top_p: float = 1.0


class ServerUnreachable(RuntimeError):
    """The server did not answer before any work started."""


class TransientError(RuntimeError):
    """A failure worth retrying (connection error, timeout, HTTP 429 or 5xx)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Usage:
    """Token and time accounting of one client, over all its requests."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_time_s: float = 0.0
    retries: Counter = field(default_factory=Counter)  # kind ("429", "5xx", "connection", "timeout") -> count
    failed_requests: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "request_time_s": round(self.request_time_s, 3),
            "retries": dict(self.retries), "failed_requests": self.failed_requests,
        }

    def retry_line(self) -> str | None:
        """One line for all retries of a run, or None when there were none."""
        if not self.retries:
            return None
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.retries.items()))
        return f"{sum(self.retries.values())} request(s) retried ({kinds}); {self.failed_requests} gave up"


class Client(abc.ABC):
    """Continue a prompt given as token ids (the engine's view) for at most `max_tokens` tokens."""

    tokenizer: Any
    usage: Usage
    # Extra arguments of the chat template, as training's `data.apply_chat_template_kwargs`
    # (e.g. {"enable_thinking": False}): an answer must be sampled from the prompt it trained on.
    chat_template_kwargs: dict[str, Any] = {}

    @abc.abstractmethod
    async def generate(self, prompt_ids: list[int], max_tokens: int, stop: Sequence[str],
                       sampling: SamplingConfig, seed: int) -> Generation: ...

    async def check(self) -> None:
        """Raise ServerUnreachable if the model cannot be reached (called before any work)."""

    async def aclose(self) -> None:
        return None

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  **self.chat_template_kwargs)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.tokenizer.encode(self.render(messages), add_special_tokens=False)


class OpenAIClient(Client):
    """An OpenAI-compatible server (see the module docstring for `api` and `server`)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any,
        api: str = "completions",
        server: str = "vllm",
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ):
        import httpx

        if api not in API_KINDS:
            raise ValueError(f"unknown api {api!r}; expected one of {API_KINDS}")
        if server not in SERVER_KINDS:
            raise ValueError(f"unknown server {server!r}; expected one of {SERVER_KINDS}")
        self.base_url = base_url.rstrip("/")
        self.model, self.tokenizer, self.api, self.server = model, tokenizer, api, server
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.usage = Usage()
        # chat api: rendered prompt ids -> its messages (most recent CHAT_PROMPTS_KEPT), and their lengths
        self._messages_by_prompt: OrderedDict[tuple[int, ...], list[dict[str, str]]] = OrderedDict()
        self._prompt_lengths: Counter = Counter()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout_s)

    async def check(self) -> None:
        import httpx

        try:
            response = await self._client.get("/models", timeout=10.0)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the model server at {self.base_url} ({type(exc).__name__}: {exc or 'no answer'}); "
                "is it running? (--base-url)") from None
        if response.status_code in (401, 403):
            raise ServerUnreachable(f"{self.base_url}: HTTP {response.status_code}: check the API key")
        if response.status_code == 200:
            served = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
            if served and self.model not in served:
                raise ServerUnreachable(f"{self.base_url} does not serve model {self.model!r} (it serves {served})")

    async def generate(self, prompt_ids: list[int], max_tokens: int, stop: Sequence[str],
                       sampling: SamplingConfig, seed: int) -> Generation:
        body = self._body(prompt_ids, max_tokens, stop, sampling, seed)
        path = "/completions" if self.api == "completions" else "/chat/completions"
        data = await self._post_with_retries(path, body)
        choice = data["choices"][0]
        if self.api == "chat":
            text = (choice.get("message") or {}).get("content") or ""
        else:
            text = choice.get("text") or ""
        token_ids = choice.get("token_ids")
        usage = data.get("usage") or {}
        self.usage.prompt_tokens += int(usage.get("prompt_tokens") or len(prompt_ids))
        if token_ids is not None:
            ids = [int(t) for t in token_ids]
        else:
            ids = self._ids_from_text(text, choice, stop)
        self.usage.completion_tokens += int(usage.get("completion_tokens") or len(ids))
        return Generation(ids[:max_tokens])

    def _body(self, prompt_ids: list[int], max_tokens: int, stop: Sequence[str], sampling: SamplingConfig,
              seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "temperature": sampling.temperature,
                                "top_p": sampling.top_p, "seed": seed, **STOP_EXTRAS[self.server]}
        if stop:
            body["stop"] = list(stop)
        if self.api == "chat":
            body.update(self._chat_messages(prompt_ids))
        elif self.server == "vllm":
            body.update(prompt=list(prompt_ids), return_token_ids=True)  # token-in/token-out
        else:
            body["prompt"] = decode(self.tokenizer, prompt_ids)
        return body

    def _chat_messages(self, prompt_ids: list[int]) -> dict[str, Any]:
        """The prompt's messages plus the transcript so far as an assistant message to continue."""
        messages, response = self._split_prompt(prompt_ids)
        extras = {"chat_template_kwargs": dict(self.chat_template_kwargs)} if self.chat_template_kwargs else {}
        if not response:
            return {"messages": messages, **extras}
        return {"messages": messages + [{"role": "assistant", "content": response}],
                "continue_final_message": True, "add_generation_prompt": False, **extras}

    def _split_prompt(self, prompt_ids: list[int]) -> tuple[list[dict[str, str]], str]:
        key = tuple(prompt_ids[: self._rendered_len(prompt_ids)])
        messages = self._messages_by_prompt.get(key)
        if messages is None:
            raise ValueError("chat api: the prompt was not rendered by this client (use client.prompt_ids)")
        return messages, decode(self.tokenizer, prompt_ids[len(key):])

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        ids = super().prompt_ids(messages)
        if self.api == "chat":
            if tuple(ids) not in self._messages_by_prompt:
                self._prompt_lengths[len(ids)] += 1
            self._messages_by_prompt[tuple(ids)] = [dict(m) for m in messages]
            while len(self._messages_by_prompt) > CHAT_PROMPTS_KEPT:
                old, _ = self._messages_by_prompt.popitem(last=False)
                self._prompt_lengths[len(old)] -= 1
                if not self._prompt_lengths[len(old)]:
                    del self._prompt_lengths[len(old)]
        return ids

    def _rendered_len(self, prompt_ids: list[int]) -> int:
        for length in sorted(self._prompt_lengths, reverse=True):
            if tuple(prompt_ids[:length]) in self._messages_by_prompt:
                return length
        return len(prompt_ids)

    def _ids_from_text(self, text: str, choice: dict[str, Any], stop: Sequence[str]) -> list[int]:
        """Tokens of a text reply; EOS appended when the model ended on its own.

        A server that strips stop strings (OpenAI) returns the code without its closing fence:
        vLLM names the stop string in ``stop_reason``; otherwise a python fence left open by a
        reply that stopped is closed with our stop string (EOS inside an open block is rare).
        """
        from reward_fns import protocol

        finish = choice.get("finish_reason") or "stop"
        stop_reason = choice.get("stop_reason")
        stop_hit = next((s for s in stop if text.endswith(s)), None)
        if stop_hit is None and finish == "stop":
            if isinstance(stop_reason, str) and stop_reason in stop:
                text, stop_hit = text + stop_reason, stop_reason
            elif stop and protocol.has_unclosed_fence(text) and protocol.find_python_block(text + stop[0]):
                text, stop_hit = text + stop[0], stop[0]
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if finish == "stop" and stop_hit is None and self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post(path, body)
            except TransientError as exc:
                if attempt == self.max_retries:
                    self.usage.failed_requests += 1
                    raise RuntimeError(f"request to {self.base_url}{path} failed after {attempt + 1} attempts: {exc}") from exc
                if not self.usage.retries:
                    logger.warning("retrying a failed request (%s); further retries are counted, not logged", exc)
                self.usage.retries[exc.kind] += 1
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        started = time.perf_counter()
        self.usage.requests += 1
        try:
            response = await self._client.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{type(exc).__name__}", "timeout") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}", "connection") from exc
        finally:
            self.usage.request_time_s += time.perf_counter() - started
        if response.status_code == 429:
            raise TransientError(f"HTTP 429: {response.text[:200]}", "429")
        if response.status_code >= 500:
            raise TransientError(f"HTTP {response.status_code}: {response.text[:200]}", "5xx")
        if response.status_code != 200:
            raise RuntimeError(f"{self.base_url}{path} rejected the request: HTTP {response.status_code}: "
                               f"{response.text[:500]}")
        return response.json()

    async def aclose(self) -> None:
        await self._client.aclose()


class TransformersClient(Client):
    """A local transformers model, token-in/token-out; one generation at a time (CPU runs, tests)."""

    def __init__(self, model_path: str, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device)
        self.model.eval()
        self.device = device
        self.usage = Usage()
        self._lock = asyncio.Lock()

    async def generate(self, prompt_ids: list[int], max_tokens: int, stop: Sequence[str],
                       sampling: SamplingConfig, seed: int) -> Generation:
        async with self._lock:
            started = time.perf_counter()
            ids = await asyncio.to_thread(self._generate, prompt_ids, max_tokens, tuple(stop), sampling, seed)
            self.usage.requests += 1
            self.usage.request_time_s += time.perf_counter() - started
            self.usage.prompt_tokens += len(prompt_ids)
            self.usage.completion_tokens += len(ids)
            return Generation(ids)

    def _generate(self, prompt_ids: list[int], max_tokens: int, stop: tuple[str, ...], sampling: SamplingConfig,
                  seed: int) -> list[int]:
        import torch

        inputs = torch.tensor([prompt_ids], device=self.device)
        torch.manual_seed(seed)
        kwargs: dict[str, Any] = dict(max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                      attention_mask=torch.ones_like(inputs))
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        with torch.no_grad():
            output = self.model.generate(inputs, **kwargs)
        new_ids = output[0, len(prompt_ids):].tolist()
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos in new_ids:
            new_ids = new_ids[: new_ids.index(eos) + 1]  # keep EOS: the engine's "eos" stop reason reads it
        pad = self.tokenizer.pad_token_id
        while new_ids and pad is not None and pad != eos and new_ids[-1] == pad:
            new_ids.pop()
        return new_ids


def create_client(name: str, **kwargs: Any) -> Client:
    if name == "openai":
        return OpenAIClient(**kwargs)
    if name == "transformers":
        return TransformersClient(**kwargs)
    raise ValueError(f"unknown backend {name!r}; expected openai or transformers")
