"""The verl agent loop and an offline rollout are one engine: same model output, same transcript.

The agent loop is driven through verl's server_manager interface (FakeScriptedLLMServer); the
offline rollout through the OpenAI client against the scripted OpenAI-compatible server on
loopback (the test double of `vllm serve`), in vLLM's token-in/token-out mode. Both get the same
scripted replies; the response ids, the mask, the decoded transcript and the stop reason must
be identical.
"""

from __future__ import annotations

import asyncio

from fakes import FakeScriptedLLMServer, Reply
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from r1ci_verl.rollout.clients import OpenAIClient, SamplingConfig
from r1ci_verl.rollout.engine import EngineRules
from r1ci_verl.rollout.offline import RolloutSettings, rollout
from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer, scripted_replies
from reward_fns import protocol
from tool_env import SandboxConfig
from tool_env.shared import shared_sandbox

from test_agent_loop_properties_on_cpu import reply  # the same random replies as the loop's own property test

QUESTION = [{"role": "user", "content": "Solve it."}]
MESSAGES = [{"role": "system", "content": protocol.SYSTEM_PROMPT}, *QUESTION]


def decode(tokenizer, ids) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def run_both(make_code_loop, tokenizer, sandbox, script, honour_stops, budget, max_code_calls):
    replies = list(script) + [Reply("<<<end>>>")] * 8
    fake = FakeScriptedLLMServer(tokenizer, replies, honour_stops=honour_stops)

    async def agent_loop():
        loop = make_code_loop(fake, response_length=budget, max_code_calls=max_code_calls, sandbox=sandbox)
        return await loop.run({}, raw_prompt=QUESTION)

    loop_out = asyncio.run(agent_loop())
    policy = scripted_replies([(r.text, r.eos) for r in replies])
    with ScriptedOpenAIServer(policy, tokenizer, honour_stops=honour_stops) as server:
        async def offline():
            client = OpenAIClient(server.base_url, "scripted", tokenizer, api="completions", server="vllm")
            config = SandboxConfig.from_mapping(sandbox)
            try:
                return await rollout(
                    client, MESSAGES,
                    RolloutSettings(rules=EngineRules(max_code_calls=max_code_calls), budget=budget,
                                    code_timeout_s=config.timeout_s, sampling=SamplingConfig(temperature=0.0)),
                    seed=0, open_session=lambda: shared_sandbox(config).async_session(stateful=config.stateful))
            finally:
                await client.aclose()

        offline_out = asyncio.run(offline())
    return loop_out, offline_out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(reply(), min_size=1, max_size=5),
    honour_stops=st.booleans(),
    budget=st.integers(8, 300),
    max_code_calls=st.integers(0, 3),
)
@example(script=[Reply("Compute.\n```python\nprint(6 * 7)\n```\nI predict 41."), Reply("So <<<42>>>.")],
         honour_stops=True, budget=512, max_code_calls=8)
@example(script=[Reply("\n```python\nprint(1)\n```\n")] * 5, honour_stops=False, budget=400, max_code_calls=2)
def test_agent_loop_and_offline_rollout_agree(make_code_loop, tiny_tokenizer, test_sandbox, script, honour_stops,
                                              budget, max_code_calls):
    loop_out, offline_out = run_both(make_code_loop, tiny_tokenizer, test_sandbox, script, honour_stops, budget,
                                     max_code_calls)
    assert offline_out.transcript == decode(tiny_tokenizer, loop_out.response_ids)  # byte-identical
    assert offline_out.stats.stop_reason == loop_out.extra_fields["stop_reason"]
    assert offline_out.stats.num_code_calls == loop_out.extra_fields["num_code_calls"]
    assert offline_out.stats.call_limit_reached == loop_out.extra_fields["call_limit_reached"]
    assert offline_out.num_turns == loop_out.num_turns
    assert offline_out.generated_tokens == sum(loop_out.response_mask)
    assert offline_out.response_tokens == len(loop_out.response_ids)
    assert offline_out.scored_response == loop_out.extra_fields["scored_response"]  # both are scored alike


def test_engine_clients_and_offline_rollouts_do_not_import_verl():
    import subprocess
    import sys

    code = ("import sys; import r1ci_verl.rollout.engine, r1ci_verl.rollout.clients, r1ci_verl.rollout.offline, "
            "r1ci_verl.evaluation, r1ci_verl.synth; print(sorted(m for m in sys.modules if m.split('.')[0] == 'verl'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_transformers_client_continues_token_in_token_out(tiny_model_dir):
    """Greedy: 8 tokens at once equal 4 tokens and then 4 more from the ids so far (no re-tokenizing)."""
    from r1ci_verl.rollout.clients import TransformersClient

    client = TransformersClient(str(tiny_model_dir))
    prompt = client.prompt_ids(MESSAGES)
    greedy = SamplingConfig(temperature=0.0)

    async def go():
        whole = await client.generate(prompt, 8, (), greedy, seed=0)
        first = await client.generate(prompt, 4, (), greedy, seed=0)
        rest = await client.generate(prompt + first.token_ids, 4, (), greedy, seed=0)
        return whole.token_ids, first.token_ids + rest.token_ids

    whole, pieces = asyncio.run(go())
    eos = client.tokenizer.eos_token_id
    # the tiny model is built from a fixed seed: its greedy reply does not end within 4 tokens,
    # so the second call really continues (an early EOS would leave nothing to compare)
    assert eos not in whole[:4], whole
    assert len(whole) <= 8 and pieces[: len(whole)] == whole
    assert client.usage.requests == 3 and client.usage.completion_tokens == len(whole) + len(pieces)


def test_a_crashed_sandbox_counts_as_a_sandbox_failure_not_a_code_error():
    from r1ci_verl.rollout.engine import SessionExecutor, Trajectory
    from tool_env import ExecutionError, ExecutionResult
    from tool_env.result import CRASHED

    class CrashingSession:
        async def run(self, code, timeout_s=None):
            return ExecutionResult(error=ExecutionError(CRASHED, "worker died"), exit_code=None)

        async def close(self):
            pass

    traj = Trajectory(prompt_ids=[1], budget=64)
    executor = SessionExecutor(CrashingSession, timeout_s=1.0)
    asyncio.run(executor(traj, "print(1)"))
    assert (traj.stats.sandbox_failures, traj.stats.code_errors, traj.stats.num_code_calls) == (1, 0, 1)
