"""CodeInterpreterTool on the real local sandbox: schema, stateless runs, trajectory-keyed sessions, release, TTL."""

from __future__ import annotations

import time
from pathlib import Path
import asyncio
import gc
from typing import Any

import pytest
from omegaconf import OmegaConf
from verl.experimental.agent_loop.tool_agent_loop import AgentData

from r1ci_verl.rollout.tool import TOOL_NAME, CodeInterpreterTool
from tool_env import SandboxUnavailableError

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "code_tool.yaml"


def make_tool(test_sandbox: dict, **config) -> CodeInterpreterTool:
    return CodeInterpreterTool({"type": "native", **test_sandbox, **config}, tool_schema=None)


def trajectory(request_id: str) -> AgentData:
    """verl's own per-trajectory state object, as ToolAgentLoop passes it to every call."""
    return AgentData([], [], [], None, None, {}, request_id, {})


async def call(tool: CodeInterpreterTool, code, agent_data: Any = None):
    """One call the way verl 0.9.1's ToolAgentLoop makes it: create, execute, release."""
    instance_id, _ = await tool.create()
    try:
        return await tool.execute(instance_id, {"code": code}, agent_data=agent_data)
    finally:
        await tool.release(instance_id)


def test_default_schema_is_an_openai_function_with_a_code_string(test_sandbox):
    tool = make_tool(test_sandbox)
    schema = tool.get_openai_tool_schema().model_dump()
    assert tool.name == TOOL_NAME
    assert schema["function"]["parameters"]["properties"]["code"]["type"] == "string"
    assert schema["function"]["parameters"]["required"] == ["code"]


async def test_stateless_call_returns_output_and_metrics(test_sandbox):
    response, reward, metrics = await call(make_tool(test_sandbox), "print(6 * 7)")
    assert response.text == "42"
    assert reward == 0.0
    assert metrics["error"] == 0 and metrics["timed_out"] == 0


async def test_errors_and_bad_arguments_are_reported_as_text(test_sandbox):
    tool = make_tool(test_sandbox)
    response, _, metrics = await call(tool, "1 / 0")
    assert "ZeroDivisionError" in response.text and metrics["error"] == 1
    instance_id, _ = await tool.create()
    response, _, metrics = await tool.execute(instance_id, {"source": "print(1)"})
    assert "needs a non-empty string argument 'code'" in response.text
    assert metrics == {"invalid_arguments": 1}


async def test_a_tool_response_is_always_text_a_tokenizer_takes(test_sandbox):
    response, _, metrics = await call(make_tool(test_sandbox), "raise ValueError('\\ud800')")
    response.text.encode("utf-8")  # a lone surrogate here fails verl's tokenization of the tool message
    assert response.text.endswith("ValueError: \\ud800") and metrics["error"] == 1


async def test_stateless_calls_share_nothing(test_sandbox):
    tool = make_tool(test_sandbox)
    traj = trajectory("traj-1")
    await call(tool, "x = 5", traj)
    response, _, _ = await call(tool, "print(x)", traj)
    assert "NameError" in response.text
    await tool.close()


async def test_stateful_session_follows_the_trajectory_not_the_call(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True)
    try:
        traj_1, traj_2 = trajectory("traj-1"), trajectory("traj-2")
        await call(tool, "x = 5", traj_1)
        same, _, _ = await call(tool, "print(x + 1)", traj_1)  # a new instance id, same trajectory
        other, _, _ = await call(tool, "print(x)", traj_2)
        assert same.text == "6"
        assert "NameError" in other.text
        assert tool.open_sessions == 2
    finally:
        await tool.close()
    assert tool.open_sessions == 0


async def test_trajectories_with_the_same_request_id_never_share_a_session(test_sandbox):
    """verl names trajectories `det-<priority>` under full_determinism, and the priority is only
    unique within one batch (fully-async rollouts send one-sample batches, all `det-0`): the
    session must follow the trajectory object, not its request id."""
    tool = make_tool(test_sandbox, stateful=True)
    try:
        first, second = trajectory("det-0"), trajectory("det-0")
        await call(tool, "secret = 'first trajectory'", first)
        other, _, _ = await call(tool, "print(secret)", second)
        same, _, _ = await call(tool, "print(secret)", first)
        assert "NameError" in other.text
        assert same.text == "first trajectory"
        assert tool.open_sessions == 2
    finally:
        await tool.close()


async def test_idle_stateful_sessions_are_closed_after_the_ttl(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True, session_ttl_s=1)
    traj = trajectory("traj-1")
    await call(tool, "x = 5", traj)
    await tool._close_idle(time.monotonic() + 0.5)
    assert tool.open_sessions == 1
    await tool._close_idle(time.monotonic() + 1.5)
    assert tool.open_sessions == 0
    response, _, _ = await call(tool, "print(x)", traj)  # a fresh session
    assert "NameError" in response.text
    await tool.close()


def test_recipe_config_builds_the_tool_through_verl(test_sandbox):
    from verl.tools.tool_registry import initialize_tools_from_config

    (tool,) = initialize_tools_from_config(str(RECIPE))
    assert isinstance(tool, CodeInterpreterTool)
    assert tool.name == TOOL_NAME
    assert tool.sandbox_config.timeout_s == OmegaConf.load(RECIPE).tools[0].config.timeout_s


def test_unknown_sandbox_key_in_tool_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sandbox config keys \\['timeout'\\]"):
        CodeInterpreterTool({"type": "native", "timeout": 3}, tool_schema=None)


async def test_stateful_session_is_released_when_the_trajectory_ends(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True)
    traj = trajectory("traj-1")
    await call(tool, "x = 5", traj)
    assert tool.open_sessions == 1
    del traj  # verl drops the trajectory's AgentData when ToolAgentLoop.run returns
    gc.collect()
    await asyncio.sleep(0.05)
    assert tool.open_sessions == 0 and tool.sessions_released == 1  # not held for session_ttl_s
    await tool.close()


async def test_a_call_without_a_trajectory_is_released_with_its_instance(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True)
    await call(tool, "x = 5")
    assert tool.open_sessions == 0 and tool.sessions_released == 1
    await tool.close()


def test_misconfigured_backend_fails_when_the_tool_is_built(monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(SandboxUnavailableError, match="E2B_API_KEY"):
        CodeInterpreterTool({"type": "native", "backend": "e2b"}, tool_schema=None)


async def test_e2b_trajectory_holds_one_cloud_sandbox_not_one_per_call(test_sandbox, monkeypatch):
    from e2b_fakes import FakeE2BCloud

    clouds: list[FakeE2BCloud] = []

    def fake_cloud(*args: Any, **kwargs: Any) -> FakeE2BCloud:  # FAKE of the E2B cloud boundary
        clouds.append(FakeE2BCloud())
        return clouds[-1]

    monkeypatch.setenv("E2B_API_KEY", "e2b_test_key_not_real")
    monkeypatch.setattr("tool_env.e2b.sandbox.E2BCloud", fake_cloud)
    tool = make_tool(test_sandbox, backend="e2b", warm_up=False)
    traj = trajectory("traj-e2b")
    for n in range(3):
        response, _, metrics = await call(tool, f"print({n})", traj)
        assert response.text == f"ran print({n})" and metrics["sandbox_failures"] == 0
    check, used = clouds[0].created  # the start-up check's sandbox, then one for the trajectory
    assert check.killed and [c["code"] for c in used.inner.calls] == ["print(0)", "print(1)", "print(2)"]
    del traj
    gc.collect()
    await asyncio.sleep(0.05)
    assert used.killed  # and it is killed when the trajectory ends
    await tool.close()
