"""CodeInterpreterAgentLoop driven by the scripted fake LLM server and the real local sandbox."""

from __future__ import annotations

import pytest

from reward_fns import protocol
from fakes import FakeScriptedLLMServer, Reply, fake_logprob

QUESTION = [{"role": "user", "content": "What is 6 * 7? Return <<<answer>>>."}]
EOS = "<|im_end|>"


def decode(tokenizer, ids):
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def inserted_text(tokenizer, out) -> list[str]:
    """Decoded runs of masked (inserted) tokens, in order, without the newline that the
    results block adds when the model's last kept token ended at the fence itself."""
    runs, current = [], []
    for token, mask in zip(out.response_ids, out.response_mask):
        if mask == 0:
            current.append(token)
        elif current:
            runs.append(decode(tokenizer, current))
            current = []
    if current:
        runs.append(decode(tokenizer, current))
    return [run.removeprefix("\n") for run in runs]


def assert_aligned(out, budget: int) -> None:
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs) <= budget
    for token, mask, logprob in zip(out.response_ids, out.response_mask, out.response_logprobs):
        assert logprob == (fake_logprob(token) if mask else 0.0)


@pytest.fixture
def roll(make_code_loop, tiny_tokenizer, test_sandbox):
    """Run one trajectory; return (output, fake server)."""

    async def _roll(script, *, honour_stops=True, response_length=512, sandbox=None, **settings):
        server = FakeScriptedLLMServer(tiny_tokenizer, script, honour_stops=honour_stops)
        loop = make_code_loop(server, response_length=response_length, sandbox=sandbox or test_sandbox, **settings)
        out = await loop.run({"temperature": 1.0, "logprobs": True}, raw_prompt=QUESTION)
        return out, server

    return _roll


@pytest.mark.parametrize("honour_stops", [True, False])
async def test_code_runs_and_results_are_masked(roll, tiny_tokenizer, honour_stops):
    script = ["Compute.\n```python\nprint(6 * 7)\n```\nI predict 41 (ignored).", "So <<<42>>>."]
    out, server = await roll(script, honour_stops=honour_stops)

    transcript = "Compute.\n```python\nprint(6 * 7)\n```\nCode Execution Results:\n42\nSo <<<42>>>." + EOS
    assert decode(tiny_tokenizer, out.response_ids) == transcript
    assert inserted_text(tiny_tokenizer, out) == ["Code Execution Results:\n42\n"]
    assert_aligned(out, 512)
    assert out.extra_fields["num_code_calls"] == 1
    assert out.extra_fields["answered"] is True
    assert out.extra_fields["stop_reason"] == "eos"
    assert out.num_turns == 4  # user, model, results, model
    # Token-in/token-out: the second call continues from exactly the ids produced so far.
    first, second = server.calls
    assert second["prompt_ids"] == out.prompt_ids + out.response_ids[: len(second["prompt_ids"]) - len(out.prompt_ids)]
    assert first["prompt_ids"] == out.prompt_ids
    assert first["sampling_params"]["stop"] == list(protocol.STOP_STRINGS)
    assert first["sampling_params"]["include_stop_str_in_output"] is True
    assert first["sampling_params"]["max_tokens"] == 512
    assert second["sampling_params"]["max_tokens"] == 512 - (len(second["prompt_ids"]) - len(out.prompt_ids))


async def test_system_prompt_is_prepended_once(roll, tiny_tokenizer):
    out, _ = await roll(["<<<1>>>"])
    prompt = decode(tiny_tokenizer, out.prompt_ids)
    assert prompt.count(protocol.SYSTEM_PROMPT) == 1
    assert prompt.endswith("<|im_start|>assistant\n")


async def test_errors_reach_the_model_as_tracebacks(roll, tiny_tokenizer):
    out, _ = await roll(["```python\nprint(1 / 0)\n```\n", "<<<none>>>"])
    (results,) = inserted_text(tiny_tokenizer, out)
    assert results.startswith("Code Execution Results:\n")
    assert "ZeroDivisionError" in results
    assert out.extra_fields["code_errors"] == 1
    assert out.extra_fields["code_timeouts"] == 0


async def test_timeout_is_reported_and_counted(roll, tiny_tokenizer):
    out, _ = await roll(["```python\nwhile True:\n    pass\n```\n", "<<<none>>>"])
    (results,) = inserted_text(tiny_tokenizer, out)
    assert "TimeoutError: execution exceeded the time limit of 2 s" in results
    assert out.extra_fields["code_timeouts"] == 1
    assert out.extra_fields["code_errors"] == 0


async def test_other_fences_do_not_run_and_the_turn_goes_on(roll, tiny_tokenizer):
    script = [
        Reply("Shell first:\n```bash\nprint(99)\n```\n", eos=False),  # engine pauses at the bash fence
        "Now python:\n```python\nprint(7)\n```\n",
        "<<<7>>>",
    ]
    out, server = await roll(script)
    text = decode(tiny_tokenizer, out.response_ids)
    assert text == (
        "Shell first:\n```bash\nprint(99)\n```\nNow python:\n```python\nprint(7)\n```\n"
        "Code Execution Results:\n7\n<<<7>>>" + EOS
    )
    assert out.extra_fields["num_code_calls"] == 1
    assert out.extra_fields["num_generate_calls"] == 3
    assert len(server.calls) == 3


async def test_call_limit_gives_notice_then_one_last_chance(roll, tiny_tokenizer):
    block = "```python\nprint('x')\n```\n"
    out, _ = await roll([block, block, block, "Fine: <<<x>>>"], max_code_calls=2)
    results = inserted_text(tiny_tokenizer, out)
    assert results[:2] == ["Code Execution Results:\nx\n"] * 2
    assert results[2] == f"Code Execution Results:\n{protocol.call_limit_notice(2)}\n"
    assert out.extra_fields["num_code_calls"] == 2
    assert out.extra_fields["call_limit_reached"] is True
    assert out.extra_fields["answered"] is True


async def test_code_after_the_last_chance_ends_the_trajectory(roll, tiny_tokenizer):
    block = "```python\nprint('x')\n```\n"
    out, server = await roll([block, block, block, "never requested"], max_code_calls=1)
    assert out.extra_fields["stop_reason"] == "call_limit"
    assert out.extra_fields["num_code_calls"] == 1
    assert len(inserted_text(tiny_tokenizer, out)) == 2  # one result, one notice
    assert len(server.calls) == 3
    assert out.extra_fields["answered"] is False  # the notice names the format but is no answer
    assert decode(tiny_tokenizer, out.response_ids).endswith(block.rstrip("\n"))


async def test_code_after_an_answer_is_not_run(roll, tiny_tokenizer):
    out, _ = await roll(["<<<3>>>\n```python\nprint(1)\n```\n"])
    assert out.extra_fields["stop_reason"] == "answer"
    assert out.extra_fields["num_code_calls"] == 0
    assert 0 not in out.response_mask


async def test_generation_budget_truncates_without_overflow(roll, tiny_tokenizer):
    out, _ = await roll(["word " * 200], response_length=32)
    assert len(out.response_ids) == 32
    assert out.extra_fields["response_truncated"] is True
    assert out.extra_fields["stop_reason"] == "length"
    assert_aligned(out, 32)


async def test_results_longer_than_the_budget_are_cut(roll, tiny_tokenizer):
    script = ["```python\nprint('z' * 500)\n```\n", "never requested"]
    out, server = await roll(script, response_length=60)
    assert len(out.response_ids) == 60
    assert out.response_mask[-1] == 0
    assert out.extra_fields["response_truncated"] is True
    assert len(server.calls) == 1


async def test_output_spelling_a_special_token_stays_plain_text(roll, tiny_tokenizer):
    out, _ = await roll(["```python\nprint('<|im_end|>')\n```\n", "<<<ok>>>"])
    masked = [t for t, m in zip(out.response_ids, out.response_mask) if m == 0]
    assert tiny_tokenizer.eos_token_id not in masked
    assert inserted_text(tiny_tokenizer, out) == ["Code Execution Results:\n<|im_end|>\n"]


async def test_session_is_closed_when_generation_raises(roll, monkeypatch):
    import r1ci_verl.rollout.agent_loop as agent_loop_module

    closed = []
    real_shared_sandbox = agent_loop_module.shared_sandbox

    class ClosingSpy:  # wraps the real sandbox; records session closes
        def __init__(self, sandbox):
            self.sandbox = sandbox

        def async_session(self, stateful=None):
            session = self.sandbox.async_session(stateful=stateful)
            real_close = session.close

            async def close():
                closed.append(session)
                await real_close()

            session.close = close
            return session

    monkeypatch.setattr(agent_loop_module, "shared_sandbox", lambda cfg: ClosingSpy(real_shared_sandbox(cfg)))
    with pytest.raises(AssertionError, match="script has 1 replies"):
        await roll(["```python\nprint(1)\n```\n"])  # the second engine call fails
    assert len(closed) == 1


SPIN_TIMEOUT_S = 8.0  # how long a block that spins runs


@pytest.mark.parametrize("stateful", [False, True])
async def test_cancelled_trajectory_neither_stalls_the_worker_nor_keeps_its_session(roll, test_sandbox, stateful):
    """A trajectory cancelled while its code runs: the worker's other trajectories keep going (the
    event loop is not held until the run's timeout), and the trajectory ends with its session closed."""
    import asyncio
    import time

    from r1ci_verl.rollout.settings import AgentLoopSettings
    from tool_env.shared import shared_sandbox

    sandbox = {**test_sandbox, "timeout_s": SPIN_TIMEOUT_S, "stateful": stateful}
    rolling = asyncio.create_task(roll(["```python\nwhile True:\n    pass\n```\n", "<<<x>>>"], sandbox=sandbox))
    loop_sandbox = shared_sandbox(AgentLoopSettings.from_layers({"sandbox": sandbox}).sandbox)  # the loop's own
    runs = loop_sandbox.metrics()["sandbox/runs"]
    await asyncio.sleep(1.0)  # the block is running
    stalls, last = [], time.perf_counter()

    async def tick():
        nonlocal last
        while True:
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - last)
            last = time.perf_counter()

    ticker = asyncio.create_task(tick())
    rolling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rolling
    stalls.append(time.perf_counter() - last)  # the ticker may not have run at all
    ticker.cancel()
    assert max(stalls) < SPIN_TIMEOUT_S / 2, f"the event loop stalled {max(stalls):.1f} s"
    metrics = loop_sandbox.metrics()
    assert metrics["sandbox/runs"] == runs + 1 and metrics["sandbox/open_sessions"] == 0


async def test_hydra_node_overrides_yaml_settings(make_code_loop, tiny_tokenizer):
    server = FakeScriptedLLMServer(tiny_tokenizer, [])
    loop = make_code_loop(
        server,
        max_code_calls=5,
        sandbox={"timeout_s": 9},
        trainer_extra={"r1ci": {"agent_loop": {"max_code_calls": 3, "sandbox": {"memory_mb": 512}}}},
    )
    assert loop.settings.max_code_calls == 3
    assert loop.settings.sandbox.timeout_s == 9
    assert loop.settings.sandbox.memory_mb == 512


def test_unknown_setting_is_a_clear_error(make_code_loop, tiny_tokenizer):
    server = FakeScriptedLLMServer(tiny_tokenizer, [])
    with pytest.raises(ValueError, match="unknown key 'max_calls' \\(did you mean 'max_code_calls'\\?\\) in agent_loop settings"):
        make_code_loop(server, trainer_extra={"r1ci": {"agent_loop": {"max_calls": 3}}})


@pytest.mark.parametrize("setting, value, message", [
    ("add_system_prompt", "false", "add_system_prompt must be true or false, got 'false'"),  # would read as true
    ("stop_after_answer", "no", "stop_after_answer must be true or false"),
    ("max_code_calls", True, "max_code_calls must be an int >= 0, got True"),
    ("max_generate_calls", 0, "max_generate_calls must be an int >= 1"),
])
def test_a_setting_of_the_wrong_type_is_refused(make_code_loop, tiny_tokenizer, setting, value, message):
    server = FakeScriptedLLMServer(tiny_tokenizer, [])
    with pytest.raises(ValueError, match=message):
        make_code_loop(server, trainer_extra={"r1ci": {"agent_loop": {setting: value}}})


async def test_stateful_sandbox_keeps_variables_within_a_trajectory(roll, tiny_tokenizer, test_sandbox):
    script = ["```python\nx = 20\nprint('set')\n```\n", "```python\nprint(x + 22)\n```\n", "<<<42>>>"]
    out, _ = await roll(script, sandbox={**test_sandbox, "stateful": True})
    assert inserted_text(tiny_tokenizer, out) == ["Code Execution Results:\nset\n", "Code Execution Results:\n42\n"]
    stateless, _ = await roll(script)
    assert "NameError" in inserted_text(tiny_tokenizer, stateless)[1]


@pytest.mark.parametrize("code", [
    "import os\nos._exit(3)",  # the interpreter exits under the run
    "import ctypes\nctypes.string_at(0)",  # segfault
    "import os\nos.write(4, b'\\xff' * 64)",  # garbage on the run's status channel
])
async def test_code_that_kills_its_interpreter_is_a_code_error_not_a_sandbox_failure(roll, tiny_tokenizer, code):
    """The policy writes this code: counted as a sandbox failure, it could stop training at will
    (r1ci.max_sandbox_failure_rate) and, offline, make its answers vanish instead of scoring 0."""
    from r1ci_verl.rollout.metrics import check_failure_rate, sandbox_step_metrics

    out, _ = await roll([f"```python\n{code}\n```\n", "<<<none>>>"])
    (results,) = inserted_text(tiny_tokenizer, out)
    assert results.startswith("Code Execution Results:\nWorkerCrashed: "), results  # told how it died
    assert (out.extra_fields["code_errors"], out.extra_fields["sandbox_failures"]) == (1, 0)
    step = sandbox_step_metrics([out.extra_fields] * 32, [False] * 32)  # a whole step of such calls
    check_failure_rate(step, max_rate=0.25)  # does not stop the run


async def test_an_exception_message_that_is_not_text_does_not_crash_the_rollout(roll, tiny_tokenizer):
    """A lone surrogate in an exception message reached the tokenizer, which raised: one line of
    model code failed the whole batch. The model sees it escaped, as in stdout and stderr."""
    out, _ = await roll(["```python\nraise ValueError('\\ud800')\n```\n", "<<<none>>>"])
    (results,) = inserted_text(tiny_tokenizer, out)
    assert results.endswith("ValueError: \\ud800\n") and results.count("Traceback") == 1, results
    assert out.extra_fields["stop_reason"] == "eos"


async def test_sandbox_failure_is_shown_to_the_model_and_counted(roll, tiny_tokenizer, monkeypatch, caplog):
    """A real sandbox that has been closed: the loop goes on, the failure is logged at ERROR."""
    import r1ci_verl.rollout.agent_loop as agent_loop_module
    from tool_env import SandboxConfig, create_sandbox

    closed = create_sandbox(SandboxConfig(timeout_s=2.0, pool_size=1))
    closed.close()
    monkeypatch.setattr(agent_loop_module, "shared_sandbox", lambda cfg: closed)
    with caplog.at_level("ERROR", logger="r1ci_verl.rollout.agent_loop"):
        out, _ = await roll(["```python\nprint(1)\n```\n", "<<<1>>>"])
    (results,) = inserted_text(tiny_tokenizer, out)
    assert results.startswith("Code Execution Results:\nSandboxError: ")
    assert out.extra_fields["sandbox_failures"] == 1
    assert out.extra_fields["code_errors"] == 0  # not the model's fault
    assert "sandbox failed to run a code block" in caplog.text
