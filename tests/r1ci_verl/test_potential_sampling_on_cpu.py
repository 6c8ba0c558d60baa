"""Potential sampling end to end: OpenAI backend against a FAKE local server, real sandbox,
real compute_score; resume after a simulated kill; the transformers backend on the tiny model."""

from __future__ import annotations

import asyncio
import json
import re

import pandas as pd
import pytest

from r1ci_verl.potential import PotentialConfig, SampleStore, load_questions, potential_table, read_table
from r1ci_verl.potential.runner import default_score_fn, sample_potential
from r1ci_verl.rollout.clients import OpenAIClient, SamplingConfig, TransformersClient
from r1ci_verl.rollout.offline import RolloutSettings
from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer
from reward_fns.protocol import RESULTS_HEADER, SYSTEM_PROMPT, user_prompt

TASK = "bbh/multistep_arithmetic_two"
QUESTIONS = [(2, 3), (5, 8), (4, 4), (7, 1)]  # (a, b) of "What is a + b?", index 10, 11, 12, 13


def adder_policy(prompt: str) -> tuple[str, bool]:
    """Scripted replies for the OpenAI server double: it "solves" `What is a + b?` by writing
    ```python print(a + b)``` and answers with what the code printed once the results block is in
    its prompt. In the text-only strategy it answers right only when a is even. It writes past the
    closing fence (the server cuts there only when it honours stop strings)."""
    a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)\?", prompt)[-1])
    answer_part = prompt.rsplit("<|im_start|>assistant\n", 1)[-1]
    if "plain text only" in prompt:
        return f"Adding in my head: <<<{a + b if a % 2 == 0 else 0}>>>", True
    if RESULTS_HEADER in answer_part:
        printed = answer_part.rsplit(RESULTS_HEADER + "\n", 1)[-1].strip()
        return f"The program printed {printed}. <<<{printed}>>>", True
    return f"I will compute it.\n```python\nprint({a} + {b})\n```\nI guess the answer is <<<999>>>", True


def FakeOpenAICompletionServer(tokenizer, honour_stops: bool = True, fail_first: int = 0) -> ScriptedOpenAIServer:
    """The OpenAI-compatible server double on loopback (stands in for `vllm serve`)."""
    server = ScriptedOpenAIServer(adder_policy, tokenizer, model="tiny", honour_stops=honour_stops)
    server.failures.extend([503] * fail_first)
    return server


def prompt_text(tokenizer, request: dict) -> str:
    prompt = request["prompt"]
    return prompt if isinstance(prompt, str) else tokenizer.decode(prompt, skip_special_tokens=False)


@pytest.fixture()
def train_parquet(tmp_path):
    rows = [
        {
            "prompt": [{"role": "system", "content": SYSTEM_PROMPT},
                       {"role": "user", "content": user_prompt(f"What is {a} + {b}?")}],
            "data_source": TASK,
            "reward_model": {"style": "rule", "ground_truth": json.dumps({"task": TASK, "answer": str(a + b), "meta": {}})},
            "extra_info": {"index": 10 + i, "task": TASK},
        }
        for i, (a, b) in enumerate(QUESTIONS)
    ]
    path = tmp_path / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def sandbox():
    from tool_env import SandboxConfig, create_sandbox

    with create_sandbox(SandboxConfig(pool_size=1, timeout_s=10)) as box:
        yield box


CONFIG = PotentialConfig(samples_per_strategy=2, num_stages=2, concurrency=4,
                         rollout=RolloutSettings(code_timeout_s=10, budget=512))
EXPECTED_P = {10: 1.0, 11: 0.75, 12: 1.0, 13: 0.75}  # code strategies always right; text right for even a


@pytest.mark.parametrize("honour_stops", [True, False])
def test_openai_backend_samples_scores_and_executes_code(train_parquet, tiny_tokenizer, sandbox, tmp_path, honour_stops):
    questions = load_questions(train_parquet)
    with FakeOpenAICompletionServer(tiny_tokenizer, honour_stops=honour_stops, fail_first=2) as server:
        backend = OpenAIClient(server.base_url, "tiny", tiny_tokenizer, server="sglang", backoff_s=0.01)

        async def run():
            try:
                with SampleStore(tmp_path / "samples.jsonl") as store:
                    failures = await sample_potential(questions, backend, store, CONFIG,
                                                      open_session=sandbox.async_session, progress=False)
                    return failures, list(store.records)
            finally:
                await backend.aclose()

        failures, records = asyncio.run(run())
    assert failures == 0  # the two 503s were retried
    assert backend.usage.retries == {"5xx": 2} and backend.usage.retry_line().startswith("2 request(s) retried")
    assert len(records) == 4 * 4 * 2
    rows = {r["index"]: r for r in potential_table(questions, records, CONFIG)}
    assert {q: r["p"] for q, r in rows.items()} == EXPECTED_P
    assert rows[11]["potential"] == pytest.approx(0.75) and rows[10]["potential"] == 0.0
    assert [rows[q]["stage"] for q in (11, 13, 10, 12)] == [0, 0, 1, 1]
    assert all(r["num_code_calls"] == (0 if r["strategy"] == "text" else 1) for r in records)
    # every request rendered the strategy's own prompt through the chat template; text gets no stop strings
    sent = [prompt_text(tiny_tokenizer, r) for r in server.requests[2:]]
    assert all(p.startswith("<|im_start|>system\n") for p in sent)
    assert all(r["stop"] == ["\n```\n"] and r["no_stop_trim"] for r in server.requests[2:])
    # continuation requests carry the code block cut at its fence, then the real execution result
    continued = [p for p in sent if RESULTS_HEADER in p.rsplit("<|im_start|>assistant\n", 1)[-1]]
    assert continued and all("<<<999>>>" not in p for p in continued)
    assert any(p.endswith(f"print(5 + 8)\n```\n{RESULTS_HEADER}\n13\n") for p in continued)


class SimulatedKill(BaseException):
    """Raised from the scorer to stop a run abruptly, like a SIGKILL between two answers."""


def test_resume_after_kill_scores_nothing_twice(train_parquet, tiny_tokenizer, sandbox, tmp_path):
    questions = load_questions(train_parquet)
    samples = tmp_path / "samples.jsonl"
    real_score = default_score_fn()
    calls: list[tuple] = []

    def scorer(kill_after: int | None):
        def score(data_source, response, ground_truth, extra_info):
            if kill_after is not None and len(calls) >= kill_after:
                raise SimulatedKill()
            calls.append((extra_info["index"], response))
            return real_score(data_source, response, ground_truth, extra_info)

        return score

    def run(kill_after):
        async def go():
            backend = OpenAIClient(server.base_url, "tiny", tiny_tokenizer)
            try:
                with SampleStore(samples) as store:
                    return await sample_potential(questions, backend, store, CONFIG, open_session=sandbox.async_session,
                                                  score_fn=scorer(kill_after), progress=False)
            finally:
                await backend.aclose()

        return asyncio.run(go())

    with FakeOpenAICompletionServer(tiny_tokenizer) as server:
        with pytest.raises(SimulatedKill):
            run(kill_after=11)
        on_disk = SampleStore(samples).records
        assert 0 < len(on_disk) <= 11
        with samples.open("a") as f:
            f.write('{"index": 13, "strategy": "gui')  # the kill also cut a line in half
        first_run_calls = len(calls)
        assert run(kill_after=None) == 0
    store = SampleStore(samples)
    keys = [(r["index"], r["strategy"], r["sample"]) for r in store.records]
    assert len(keys) == len(set(keys)) == 32
    assert len(calls) - first_run_calls == 32 - len(on_disk)  # only the missing answers were scored
    rows = potential_table(questions, store.records, CONFIG)
    assert {r["index"]: r["p"] for r in rows} == EXPECTED_P


def test_cli_writes_potential_file(train_parquet, tiny_model_dir, tiny_tokenizer, tmp_path):
    from r1ci_verl.cli import main

    out = tmp_path / "potential.jsonl"
    with FakeOpenAICompletionServer(tiny_tokenizer) as server:
        argv = ["potential", "--data", str(train_parquet), "--out", str(out), "--base-url", server.base_url,
                "--model", "tiny", "--tokenizer", str(tiny_model_dir), "--strategies", "text,free",
                "--samples-per-strategy", "1", "--num-stages", "2", "--no-progress", "--code-timeout", "10"]
        assert main(argv) == 0
        requests_first = len(server.requests)
        assert main(argv) == 0  # a rerun finds everything scored and asks the server nothing
        assert [r for r in server.requests[requests_first:] if r] == []
    rows = {r["index"]: r for r in read_table(out)}
    assert {q: r["p"] for q, r in rows.items()} == {10: 1.0, 11: 0.5, 12: 1.0, 13: 0.5}
    assert (tmp_path / "potential.jsonl.samples.jsonl").exists()


def test_transformers_backend_runs_the_tiny_model(train_parquet, tiny_model_dir, tmp_path, sandbox):
    client = TransformersClient(str(tiny_model_dir))
    config = PotentialConfig(strategies=["free"], samples_per_strategy=2, num_stages=1,
                             rollout=RolloutSettings(budget=6))
    questions = load_questions(train_parquet)[:1]

    async def run():
        with SampleStore(tmp_path / "samples.jsonl") as store:
            failures = await sample_potential(questions, client, store, config, open_session=sandbox.async_session,
                                              progress=False)
            return failures, list(store.records)

    failures, records = asyncio.run(run())
    assert failures == 0 and len(records) == 2
    assert all(r["acc"] == 0.0 and r["response_tokens"] <= 6 for r in records)  # random weights, budget held
    assert all(r["stop_reason"] in ("eos", "length", "stop", "call_limit", "answer") for r in records)


def test_a_dead_server_stops_the_run_with_a_clear_error(train_parquet, tiny_tokenizer, tmp_path):
    questions = load_questions(train_parquet)
    config = PotentialConfig(strategies=["text"], samples_per_strategy=5, concurrency=1, max_consecutive_failures=3)
    with FakeOpenAICompletionServer(tiny_tokenizer) as server:
        backend = OpenAIClient(server.base_url.replace("/v1", "/v2"), "tiny", tiny_tokenizer)  # every call: 404

        async def run():
            try:
                with SampleStore(tmp_path / "samples.jsonl") as store:
                    await sample_potential(questions, backend, store, config, score_fn=lambda *a: {"acc": 1.0},
                                           progress=False)
            finally:
                await backend.aclose()

        with pytest.raises(RuntimeError, match="3 answers in a row failed .*HTTP 404"):
            asyncio.run(run())
        assert len(server.requests) == 3  # a rejected request (HTTP 404) is not retried
