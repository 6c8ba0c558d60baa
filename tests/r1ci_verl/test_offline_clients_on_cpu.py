"""Offline rollouts through the clients, against the OpenAI-compatible server double on loopback
(ScriptedOpenAIServer: the only fake) and the real local sandbox: multi-turn continuation in each
API mode, retries, request timeouts, an unreachable server, code timeouts, the call limit, the
token budget, and resuming a killed `r1ci eval` without sampling anything twice."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from r1ci_verl.rollout.clients import OpenAIClient, SamplingConfig, ServerUnreachable
from r1ci_verl.rollout.engine import EngineRules
from r1ci_verl.rollout.offline import RolloutSettings, rollout
from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer, scripted_replies
from reward_fns import protocol
from tool_env import SandboxConfig, create_sandbox

MESSAGES = [{"role": "system", "content": protocol.SYSTEM_PROMPT}, {"role": "user", "content": "What is 6 * 7?"}]
CODE = "Compute.\n```python\nprint(6 * 7)\n```\nI predict 41 (never seen)."


@pytest.fixture(scope="module")
def sandbox():
    with create_sandbox(SandboxConfig(pool_size=1, timeout_s=1.0)) as box:
        yield box


def roll(server, tokenizer, sandbox, *, api="completions", kind="vllm", rules=EngineRules(), budget=512, **client_kw):
    async def go():
        client = OpenAIClient(server.base_url, "scripted", tokenizer, api=api, server=kind, backoff_s=0.01, **client_kw)
        try:
            result = await rollout(client, MESSAGES, RolloutSettings(rules=rules, budget=budget, code_timeout_s=1.0,
                                                                     sampling=SamplingConfig(0.0)),
                                   seed=0, open_session=sandbox.async_session)
            return result, client
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("api,kind", [("completions", "vllm"), ("completions", "sglang"), ("completions", "openai"),
                                      ("chat", "vllm")])
def test_multi_turn_continues_the_same_assistant_turn(tiny_tokenizer, sandbox, api, kind):
    with ScriptedOpenAIServer(scripted_replies([(CODE, True), ("So <<<42>>>.", True)]), tiny_tokenizer) as server:
        result, client = roll(server, tiny_tokenizer, sandbox, api=api, kind=kind)
        second = server.requests[1]
    assert result.response == "Compute.\n```python\nprint(6 * 7)\n```\nCode Execution Results:\n42\nSo <<<42>>>."
    assert result.stats.stop_reason == "eos" and result.stats.num_code_calls == 1
    if api == "chat":  # the transcript so far is the assistant message the server continues
        assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
        assert second["messages"][-1]["content"].endswith("Code Execution Results:\n42\n")
    elif kind == "vllm":  # token-in/token-out
        assert isinstance(second["prompt"], list) and second["return_token_ids"] is True
    else:
        assert second["prompt"].endswith("Code Execution Results:\n42\n")
    assert client.usage.requests == 2 and client.usage.completion_tokens > 0


def test_retries_are_counted_and_logged_once(tiny_tokenizer, sandbox, caplog):
    with ScriptedOpenAIServer(scripted_replies([("<<<1>>>", True)]), tiny_tokenizer) as server:
        server.failures.extend([429, 503, "drop", 500])
        with caplog.at_level(logging.WARNING, logger="r1ci_verl.rollout.clients"):
            result, client = roll(server, tiny_tokenizer, sandbox)
    assert result.response == "<<<1>>>"
    assert client.usage.retries == {"429": 1, "5xx": 2, "connection": 1}
    assert len([r for r in caplog.records if "retrying" in r.message]) == 1  # not one warning per retry
    assert client.usage.retry_line() == "4 request(s) retried (429: 1, 5xx: 2, connection: 1); 0 gave up"


def test_a_slow_server_times_out_and_gives_up_after_the_retries(tiny_tokenizer, sandbox):
    with ScriptedOpenAIServer(scripted_replies([("<<<1>>>", True)] * 5), tiny_tokenizer, latency_s=1.0) as server:
        with pytest.raises(RuntimeError, match="failed after 3 attempts: ReadTimeout"):
            roll(server, tiny_tokenizer, sandbox, timeout_s=0.2, max_retries=2)


def test_unreachable_server_is_one_clear_error_before_any_work(tiny_tokenizer):
    with ScriptedOpenAIServer(scripted_replies([]), tiny_tokenizer) as server:
        url = server.base_url
    client = OpenAIClient(url, "scripted", tiny_tokenizer)
    with pytest.raises(ServerUnreachable, match=r"cannot reach the model server at http://127\.0\.0\.1:\d+/v1"):
        asyncio.run(client.check())
    with ScriptedOpenAIServer(scripted_replies([]), tiny_tokenizer, model="other") as server:
        client = OpenAIClient(server.base_url, "scripted", tiny_tokenizer)
        with pytest.raises(ServerUnreachable, match="does not serve model 'scripted'"):
            asyncio.run(client.check())


def test_code_timeout_call_limit_and_budget(tiny_tokenizer, sandbox):
    loop = "```python\nwhile True: pass\n```\n"
    with ScriptedOpenAIServer(scripted_replies([(loop, True), (CODE, True), (CODE, True)]), tiny_tokenizer) as server:
        result, _ = roll(server, tiny_tokenizer, sandbox, rules=EngineRules(max_code_calls=1))
    assert result.stats.code_timeouts == 1 and "TimeoutError: execution exceeded the time limit of 1 s" in result.response
    assert protocol.call_limit_notice(1) in result.response  # second block: the notice and a last chance
    assert result.stats.stop_reason == "call_limit" and result.stats.call_limit_reached
    with ScriptedOpenAIServer(scripted_replies([("word " * 400, True)]), tiny_tokenizer) as server:
        result, _ = roll(server, tiny_tokenizer, sandbox, budget=20)
    assert result.stats.stop_reason == "length" and result.response_tokens == 20


def test_killed_eval_resumes_without_sampling_anything_twice(tmp_path, tiny_tokenizer, tiny_model_dir):
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "data_source": "bbh/multistep_arithmetic_two",
             "reward_model": {"ground_truth": json.dumps({"task": "bbh/multistep_arithmetic_two", "answer": str(i + 1),
                                                          "meta": {}})},
             "extra_info": {"index": i, "task": "bbh/multistep_arithmetic_two"}} for i in range(8)]
    pd.DataFrame(rows).to_parquet(tmp_path / "test.parquet")
    asked: list[str] = []

    def policy(prompt: str) -> tuple[str, bool]:
        asked.append(prompt)
        return "<<<1>>>", True

    out = tmp_path / "eval"
    with ScriptedOpenAIServer(policy, tiny_tokenizer, latency_s=0.3) as server:
        argv = ["eval", "--data", str(tmp_path / "test.parquet"), "--out", str(out), "--base-url", server.base_url,
                "--model", "scripted", "--tokenizer", str(tiny_model_dir), "--n", "2", "--concurrency", "2",
                "--no-progress", "--max-code-calls", "0"]
        proc = subprocess.Popen([sys.executable, "-m", "r1ci_verl.cli", *argv], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": os.getcwd()})
        samples = out / "samples.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not samples.exists() or len(samples.read_text().splitlines()) < 4):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)  # requests the dead process left in flight still reach the policy
        done_before = len(samples.read_text().splitlines())
        asked_before = len(asked)
        assert 4 <= done_before < 16 and not (out / "report.json").exists()
        from r1ci_verl.cli import main

        assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    keys = [(a["index"], a["sample"]) for a in report["answers"]]
    assert len(keys) == len(set(keys)) == 16
    assert len(asked) - asked_before == 16 - done_before  # only the missing answers were sampled


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    """Stored answers must not be reported under a model or sampling settings that did not produce them."""
    from r1ci_verl.rollout.offline import ResultStore

    samples = tmp_path / "samples.jsonl"
    with ResultStore(samples, ("index",), settings={"model": "sft-14b", "temperature": 0.6}) as store:
        store.append({"index": 1})
    with ResultStore(samples, ("index",), settings={"model": "sft-14b", "temperature": 0.6}) as store:
        assert store.done == {(1,)}  # same settings: resumed
    before = samples.read_bytes()
    with pytest.raises(ValueError, match=r"model 'sft-14b' -> 'rl-14b'"):
        ResultStore(samples, ("index",), settings={"model": "rl-14b", "temperature": 0.6})
    assert samples.read_bytes() == before


class BrokenSession:
    """A sandbox session whose infrastructure fails (a crashed worker), not the model's code."""

    async def run(self, code, timeout_s=None):
        raise ConnectionError("sandbox worker is gone")

    async def close(self):
        pass


def test_an_answer_that_hit_a_sandbox_failure_is_not_recorded(tiny_tokenizer):
    """Scoring it would count the tool's failure as the model's: the job fails and a rerun retries it."""
    from r1ci_verl.rollout.offline import SandboxFailedError

    async def go(server):
        client = OpenAIClient(server.base_url, "scripted", tiny_tokenizer, backoff_s=0.01)
        try:
            return await rollout(client, MESSAGES, RolloutSettings(rules=EngineRules(), budget=512, code_timeout_s=1.0,
                                                                   sampling=SamplingConfig(0.0)),
                                 seed=0, open_session=BrokenSession)
        finally:
            await client.aclose()

    with ScriptedOpenAIServer(scripted_replies([(CODE, True), ("So <<<42>>>.", True)]), tiny_tokenizer) as server:
        with pytest.raises(SandboxFailedError, match="sandbox failure"):
            asyncio.run(go(server))


def test_run_jobs_stops_every_worker_when_it_gives_up(tmp_path):
    """After too many failures in a row no worker may keep sampling into a client being closed."""
    from r1ci_verl.rollout.offline import ResultStore, run_jobs

    finished_after_giving_up = []

    async def work(job):
        if job < 3:
            raise RuntimeError("server error")
        await asyncio.sleep(0.2)
        finished_after_giving_up.append(job)
        return {"index": job}

    async def go():
        with ResultStore(tmp_path / "results.jsonl", key_fields=("index",)) as store:
            with pytest.raises(RuntimeError, match="in a row failed"):
                await run_jobs(range(8), lambda job: (job,), work, store, concurrency=4, desc="test",
                               progress=False, max_consecutive_failures=3)
        await asyncio.sleep(0.4)  # a worker still running would finish its answer here

    asyncio.run(go())
    assert finished_after_giving_up == []


def test_offline_commands_check_the_sandbox_before_sampling(monkeypatch):
    """A backend that cannot run code (here: E2B without a key) is one error before any answer."""
    import argparse

    from r1ci_verl.cli.errors import RunError
    from r1ci_verl.cli.rollout_args import open_sandbox

    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(RunError, match="E2B_API_KEY"):
        open_sandbox(argparse.Namespace(sandbox_backend="e2b", code_timeout=5.0))


THINKING_TEMPLATE = (  # a Qwen3-like switch: training renders it with data.apply_chat_template_kwargs
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_chat_template_kwargs_reach_the_prompt_like_in_training(tiny_tokenizer, sandbox, api):
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = THINKING_TEMPLATE
    with ScriptedOpenAIServer(scripted_replies([("So <<<42>>>.", True)]), tokenizer) as server:
        client = OpenAIClient(server.base_url, "scripted", tokenizer, api=api)
        assert "<think>" not in client.render(MESSAGES)
        client.chat_template_kwargs = {"enable_thinking": False}
        assert client.render(MESSAGES).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")

        async def go():
            try:
                return await rollout(client, MESSAGES, RolloutSettings(budget=64, sampling=SamplingConfig(0.0)),
                                     seed=0, open_session=sandbox.async_session)
            finally:
                await client.aclose()

        asyncio.run(go())
        request = server.requests[0]
    if api == "chat":  # the server renders the template: it gets the same arguments
        assert request["chat_template_kwargs"] == {"enable_thinking": False}
    else:  # vLLM gets token ids of the locally rendered prompt
        assert tokenizer.decode(request["prompt"]).endswith("<think>\n\n</think>\n\n")


@pytest.mark.parametrize("value, message", [("[1]", "expected a JSON object"), ("{enable", "not JSON")])
def test_chat_template_kwargs_must_be_a_json_object(value, message, capsys):
    from r1ci_verl.cli import main

    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error, before anything is read
        main(["eval", "--data", "x.parquet", "--model", "m", "--chat-template-kwargs", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--chat-template-kwargs" in err and message in err
