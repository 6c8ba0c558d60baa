"""A SCRIPTED OpenAI-compatible HTTP server on loopback — no model behind it.

It answers ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions`` the way ``vllm
serve`` does where an offline rollout depends on it: ``max_tokens`` counts tokens of the given
tokenizer, a stop string ends the reply on the token that completes it (the token may run past
it) and stays in the text under ``include_stop_str_in_output``, ``return_token_ids`` returns the
generated ids (EOS included), ``finish_reason``/``stop_reason`` say why it ended.

What it "generates" comes from a policy: ``policy(prompt_text) -> (text, eos)``. The CPU smoke
run serves its rule-based teacher this way (r1ci_verl.smoke.teacher) so ``r1ci sft synth`` runs
for real over HTTP; tests use it as their OpenAI server double with scripted replies, and can
inject failures (HTTP status codes, delays, dropped connections).
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # 64 concurrent clients must not see refused connections
    daemon_threads = True


SCRIPTED_LABEL = "scripted (rule-based replies, no model)"

Policy = Callable[[str], tuple[str, bool]]
"""prompt text (chat template applied, transcript so far included) -> (reply text, ends with EOS)."""


class ScriptedOpenAIServer:
    """Serve `policy` on 127.0.0.1 (port 0 = any free port); use as a context manager."""

    def __init__(self, policy: Policy, tokenizer: Any, model: str = "scripted", port: int = 0,
                 latency_s: float = 0.0, honour_stops: bool = True):
        # Its own copy of the tokenizer, used under a lock: a fast tokenizer shared between threads
        # fails with "Already borrowed".
        self.policy, self.tokenizer, self.model, self.latency_s = policy, copy.deepcopy(tokenizer), model, latency_s
        self._generate_lock = threading.Lock()
        self.honour_stops = honour_stops  # False: behave like an engine that ignores stop strings
        self.failures: deque[int | str] = deque()  # queued: an HTTP status, or "drop" (close without a reply)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: tests and progress bars
                return

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes: without NODELAY each reply waits ~40 ms
                # for a delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model",
                                                                 "owned_by": SCRIPTED_LABEL}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    failure = server.failures.popleft() if server.failures else None
                    server.requests.append(body)
                if failure == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if failure is not None:
                    self._send(int(failure), {"error": {"message": f"injected failure {failure}"}})
                    return
                if server.latency_s:
                    time.sleep(server.latency_s)
                route = self.path.rstrip("/")
                if route not in ("/v1/completions", "/v1/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    with server._generate_lock:
                        reply = server.chat(body) if route.endswith("/chat/completions") else server.complete(body)
                except (KeyError, ValueError, TypeError) as exc:
                    self._send(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                    return
                self._send(200, reply)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _Server(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-openai", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ScriptedOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ generation
    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        if isinstance(prompt, list):
            prompt_ids = [int(t) for t in prompt]
            prompt_text = self._decode(prompt_ids)
        else:
            prompt_text = str(prompt)
            prompt_ids = self.tokenizer.encode(prompt_text, add_special_tokens=False)
        choice = self._generate(prompt_text, body)
        choice["text"] = choice.pop("content")
        return self._wrap("text_completion", choice, len(prompt_ids))

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        if body.get("continue_final_message"):
            if messages[-1]["role"] != "assistant":
                raise ValueError("continue_final_message needs a final assistant message")
            head = self.tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
            prompt_text = head + messages[-1]["content"]
        else:
            prompt_text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        choice = self._generate(prompt_text, body)
        choice["message"] = {"role": "assistant", "content": choice.pop("content")}
        return self._wrap("chat.completion", choice, len(self.tokenizer.encode(prompt_text, add_special_tokens=False)))

    def _generate(self, prompt_text: str, body: dict[str, Any]) -> dict[str, Any]:
        text, eos = self.policy(prompt_text)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if eos and self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        finish, stop_reason = "stop", None
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and len(ids) > int(max_tokens):
            ids, finish = ids[: int(max_tokens)], "length"
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        cut = self._cut_at_stop(ids, stops) if self.honour_stops else None
        if cut is not None:
            ids, stop_reason, finish = cut[0], cut[1], "stop"
        ended_eos = bool(ids) and ids[-1] == self.tokenizer.eos_token_id
        content = self._decode(ids[:-1] if ended_eos else ids)
        if stop_reason is not None and not body.get("include_stop_str_in_output") and not body.get("no_stop_trim"):
            content = content[: content.rfind(stop_reason)]  # OpenAI's default: the stop string is not returned
        choice: dict[str, Any] = {"index": 0, "content": content, "finish_reason": finish, "stop_reason": stop_reason}
        if body.get("return_token_ids"):
            choice["token_ids"] = ids
        return choice

    def _wrap(self, kind: str, choice: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
        completion_tokens = len(choice.get("token_ids") or self.tokenizer.encode(
            choice.get("text") or choice.get("message", {}).get("content", ""), add_special_tokens=False))
        return {"id": f"scripted-{len(self.requests)}", "object": kind, "model": self.model, "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _cut_at_stop(self, ids: list[int], stops: Sequence[str]) -> tuple[list[int], str] | None:
        """Keep tokens through the one whose text completes the first stop string."""
        text = self._decode(ids)
        found = [(text.find(s) + len(s), s) for s in stops if s and s in text]
        if not found:
            return None
        end, stop = min(found)
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self._decode(ids[:mid])) >= end:
                hi = mid
            else:
                lo = mid + 1
        return ids[:hi], stop


def scripted_replies(replies: Sequence[tuple[str, bool]]) -> Policy:
    """A policy that returns `replies` in order, one per request (for a single conversation)."""
    queue = deque(replies)
    lock = threading.Lock()

    def policy(prompt_text: str) -> tuple[str, bool]:
        with lock:
            if not queue:
                raise ValueError("scripted replies exhausted")
            return queue.popleft()

    return policy
