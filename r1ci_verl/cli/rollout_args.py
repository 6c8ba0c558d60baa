"""Flags and checks shared by the commands that sample answers offline (potential, eval, sft synth).

Everything here runs BEFORE any sampling: a missing model, a tokenizer that would need the hub,
an unknown strategy or a server that does not answer is one line and an exit status, not a
traceback after an hour of work.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from r1ci_verl.cli.errors import RunError, UsageError


def add_client_args(parser: argparse.ArgumentParser, model_help: str) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--backend", choices=("openai", "transformers"), default="openai",
                   help="openai: an OpenAI-compatible server; transformers: a local model (default: %(default)s)")
    g.add_argument("--model", required=True, help=model_help)
    g.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="openai: server URL (default: %(default)s)")
    g.add_argument("--tokenizer", help="openai: local path or hub id of the served model's tokenizer, whose chat "
                   "template renders prompts (default: --model when it is a local directory)")
    g.add_argument("--api", choices=("completions", "chat"), default="completions",
                   help="openai: continue the answer via /completions, or chat with continue_final_message; "
                   "see docs/eval.md (default: %(default)s)")
    g.add_argument("--server", choices=("vllm", "sglang", "openai"), default="vllm",
                   help="openai: the server kind, which picks request extras (default: %(default)s)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key, if any (default: %(default)s)")
    g.add_argument("--chat-template-kwargs", type=json_object, default={}, metavar="JSON",
                   help="extra chat-template arguments, as training's data.apply_chat_template_kwargs, "
                   "e.g. '{\"enable_thinking\": false}' (default: none)")
    g.add_argument("--concurrency", type=int, default=32, help="answers in flight at once (default: %(default)s)")
    g.add_argument("--max-retries", type=int, default=6,
                   help="retries per request on 429/5xx/connection errors (default: %(default)s)")


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object (argparse turns the ValueError into a usage error naming the flag)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg} at character {exc.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"enable_thinking\": false}}', got {text!r}")
    return value


def add_rule_args(parser: argparse.ArgumentParser, temperature: float, max_tokens: int = 4096) -> None:
    g = parser.add_argument_group("rollout rules (as in training)")
    g.add_argument("--temperature", type=float, default=temperature, help="(default: %(default)s)")
    g.add_argument("--top-p", type=float, default=1.0, help="(default: %(default)s)")
    g.add_argument("--max-tokens", type=int, default=max_tokens,
                   help="response token budget per answer, generated and inserted, like training's "
                   "response_length (default: %(default)s)")
    g.add_argument("--max-code-calls", type=int, default=8, help="code calls per answer (default: %(default)s)")
    g.add_argument("--code-timeout", type=float, default=60.0, help="seconds per code execution (default: %(default)s)")
    g.add_argument("--sandbox-backend", default="local", choices=("local", "e2b", "ray"),
                   help="where code runs (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")


def check_rule_args(args: argparse.Namespace) -> None:
    for flag, value, low in (("--max-tokens", args.max_tokens, 1), ("--max-code-calls", args.max_code_calls, 0),
                             ("--concurrency", args.concurrency, 1), ("--max-retries", args.max_retries, 0)):
        if value < low:
            raise UsageError(f"{flag} {value}: must be >= {low}")
    if args.code_timeout <= 0:
        raise UsageError(f"--code-timeout {args.code_timeout:g}: must be > 0")
    if args.temperature < 0:
        raise UsageError(f"--temperature {args.temperature:g}: must be >= 0")
    if not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p {args.top_p:g}: must be in (0, 1]")


def rollout_settings(args: argparse.Namespace):
    from r1ci_verl.rollout.clients import SamplingConfig
    from r1ci_verl.rollout.engine import EngineRules
    from r1ci_verl.rollout.offline import RolloutSettings

    return RolloutSettings(rules=EngineRules(max_code_calls=args.max_code_calls), budget=args.max_tokens,
                           code_timeout_s=args.code_timeout,
                           sampling=SamplingConfig(temperature=args.temperature, top_p=args.top_p))


RUN_SETTINGS = ("backend", "model", "tokenizer", "api", "server", "chat_template_kwargs", "temperature", "top_p", "max_tokens",
                "max_code_calls", "code_timeout", "sandbox_backend", "seed", "data", "tasks", "split", "split_file")


def run_settings(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """What decides the answers a run samples: a resumed run must match it (see ResultStore)."""
    settings = {name: getattr(args, name) for name in RUN_SETTINGS if hasattr(args, name)}
    if isinstance(settings.get("data"), str):
        settings["data"] = os.path.abspath(settings["data"])
    return {**settings, **extra}


def _load_tokenizer(name: str, flag: str, hub_allowed: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=not hub_allowed)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{flag} {name}: cannot load a tokenizer ({first})") from None


def build_client(args: argparse.Namespace):
    """The client named by the flags; model and tokenizer are resolved here, before any work."""
    client = _build_client(args)
    client.chat_template_kwargs = dict(getattr(args, "chat_template_kwargs", None) or {})
    if client.chat_template_kwargs:
        try:  # an argument the template cannot take fails here, not in the first answer
            client.render([{"role": "user", "content": "ping"}])
        except Exception as exc:
            raise UsageError(f"--chat-template-kwargs {json.dumps(client.chat_template_kwargs)}: the chat template "
                             f"rejects them ({type(exc).__name__}: {exc})") from None
    return client


def _build_client(args: argparse.Namespace):
    from r1ci_verl.rollout.clients import OpenAIClient, TransformersClient

    if args.backend == "transformers":
        if not Path(args.model).is_dir():
            raise UsageError(f"--model {args.model}: no such model directory (the transformers backend loads a "
                             "local checkpoint)")
        try:
            return TransformersClient(args.model)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--model {args.model}: cannot load the model ({str(exc).splitlines()[0]})") from None
    if args.tokenizer:
        tokenizer = _load_tokenizer(args.tokenizer, "--tokenizer", hub_allowed=not Path(args.tokenizer).exists())
    elif Path(args.model).is_dir():
        tokenizer = _load_tokenizer(args.model, "--model", hub_allowed=False)
    else:
        # A served name ("sft-14b") is not a tokenizer: never guess it on the hub; use the cache only.
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
        except (OSError, ValueError):
            raise UsageError(f"--model {args.model}: not a local model directory or a cached hub model, so its "
                             "chat template is unknown; pass --tokenizer <path or hub id of the served model>") from None
    return OpenAIClient(args.base_url, args.model, tokenizer, api=args.api, server=args.server,
                        api_key=os.environ.get(args.api_key_env), max_retries=args.max_retries)


async def check_client(client: Any) -> None:
    from r1ci_verl.rollout.clients import ServerUnreachable

    try:
        await client.check()
    except ServerUnreachable as exc:
        raise RunError(str(exc)) from None


def open_sandbox(args: argparse.Namespace):
    from r1ci_verl.rollout.sandbox_service import hide_task_data
    from tool_env import SandboxConfig, create_sandbox

    sandbox = None
    try:  # a broken backend fails here, before any answer is sampled
        sandbox = create_sandbox(hide_task_data(SandboxConfig(backend=args.sandbox_backend, timeout_s=args.code_timeout)))
        sandbox.check()
    except Exception as exc:
        if sandbox is not None:
            sandbox.close()
        raise RunError(str(exc)) from None
    return sandbox


def command_logger(name: str, quiet: bool = False) -> logging.Logger:
    """The command's own logger (``r1ci.<name>``) writing to stderr; the root logger is left alone.

    Library warnings (retries, repaired files) propagate as usual and reach stderr through
    Python's last-resort handler when nothing else is configured.
    """
    logger = logging.getLogger(f"r1ci.{name}")
    if not any(getattr(h, "_r1ci_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"r1ci {name}: %(message)s"))
        handler._r1ci_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the progress bar
    return logger
