"""Text-completion backends for sampling answers: an OpenAI-compatible server or a local model.

Both continue a raw prompt string (chat template already applied), so a multi-turn rollout
can append code results and ask for more, exactly as the training agent loop does.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any, Sequence

logger = logging.getLogger(__name__)

BACKENDS = ("openai", "transformers")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string), "length", ...
    stop_string: str | None = None  # the stop string that ended generation, when known


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 2048  # per generation call (one turn)


class CompletionBackend(abc.ABC):
    """Continue `prompt`; stop at EOS, at `max_tokens`, or after one of `stop`."""

    tokenizer: Any  # renders chat messages into the prompt text

    @abc.abstractmethod
    async def complete(self, prompt: str, stop: Sequence[str], sampling: SamplingConfig, seed: int) -> Completion: ...

    async def aclose(self) -> None:
        return None

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class TransientBackendError(RuntimeError):
    """A failure worth retrying (connection error, 429, 5xx)."""


class OpenAIBackend(CompletionBackend):
    """`POST {base_url}/completions` of an OpenAI-compatible server (e.g. `vllm serve`).

    Retries transient failures with exponential backoff and jitter; concurrency is bounded by
    the caller. vLLM's `include_stop_str_in_output` keeps the closing fence in the text; for
    servers that strip stop strings, `stop_reason` (vLLM) lets us put it back.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ):
        import httpx

        self.model = model
        self.tokenizer = tokenizer
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    async def complete(self, prompt: str, stop: Sequence[str], sampling: SamplingConfig, seed: int) -> Completion:
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
            "stop": list(stop) or None,
            "include_stop_str_in_output": True,
        }
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post(body)
            except TransientBackendError as exc:
                if attempt == self.max_retries:
                    raise RuntimeError(f"completion failed after {attempt + 1} attempts: {exc}") from exc
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                logger.warning("completion attempt %d failed (%s); retrying in %.1fs", attempt + 1, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _post(self, body: dict[str, Any]) -> Completion:
        import httpx

        try:
            response = await self._client.post("/completions", json=body)
        except httpx.TransportError as exc:
            raise TransientBackendError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientBackendError(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise RuntimeError(f"completion request rejected: HTTP {response.status_code}: {response.text[:500]}")
        choice = response.json()["choices"][0]
        text = choice.get("text") or ""
        stop_reason = choice.get("stop_reason")
        stop_string = stop_reason if isinstance(stop_reason, str) else None
        if stop_string and not text.endswith(stop_string):
            text += stop_string
        return Completion(text=text, finish_reason=choice.get("finish_reason") or "stop", stop_string=stop_string)

    async def aclose(self) -> None:
        await self._client.aclose()


class TransformersBackend(CompletionBackend):
    """A local `transformers` model, for CPU smoke runs. Generations run one at a time."""

    def __init__(self, model_path: str, device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device)
        self.model.eval()
        self.device = device
        self._lock = asyncio.Lock()

    async def complete(self, prompt: str, stop: Sequence[str], sampling: SamplingConfig, seed: int) -> Completion:
        async with self._lock:
            return await asyncio.to_thread(self._generate, prompt, tuple(stop), sampling, seed)

    def _generate(self, prompt: str, stop: tuple[str, ...], sampling: SamplingConfig, seed: int) -> Completion:
        import torch

        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        torch.manual_seed(seed)
        kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(do_sample=False)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        with torch.no_grad():
            output = self.model.generate(**inputs, **kwargs)
        new_ids = output[0, inputs["input_ids"].shape[1] :].tolist()
        eos = self.tokenizer.eos_token_id
        hit_eos = eos is not None and eos in new_ids
        if hit_eos:
            new_ids = new_ids[: new_ids.index(eos)]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        stop_string = next((s for s in stop if s in text), None)
        finished = hit_eos or stop_string is not None or len(new_ids) < sampling.max_tokens
        return Completion(text=text, finish_reason="stop" if finished else "length", stop_string=stop_string)


def create_backend(name: str, **kwargs: Any) -> CompletionBackend:
    if name == "openai":
        return OpenAIBackend(**kwargs)
    if name == "transformers":
        return TransformersBackend(**kwargs)
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
