"""CodeInterpreterTool on the real local sandbox: schema, stateless runs, trajectory-keyed state, TTL."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from r1ci_verl.rollout.tool import TOOL_NAME, CodeInterpreterTool

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "configs" / "code_tool.yaml"


def make_tool(test_sandbox: dict, **config) -> CodeInterpreterTool:
    return CodeInterpreterTool({"type": "native", **test_sandbox, **config}, tool_schema=None)


async def call(tool: CodeInterpreterTool, code, request_id: str | None = None):
    """One call the way verl 0.9.1's ToolAgentLoop makes it: create, execute, release."""
    instance_id, _ = await tool.create()
    try:
        agent_data = SimpleNamespace(request_id=request_id) if request_id else None
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


async def test_stateless_calls_share_nothing(test_sandbox):
    tool = make_tool(test_sandbox)
    await call(tool, "x = 5", request_id="traj-1")
    response, _, _ = await call(tool, "print(x)", request_id="traj-1")
    assert "NameError" in response.text


async def test_stateful_session_follows_the_trajectory_not_the_call(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True)
    try:
        await call(tool, "x = 5", request_id="traj-1")
        same, _, _ = await call(tool, "print(x + 1)", request_id="traj-1")  # a new instance id, same trajectory
        other, _, _ = await call(tool, "print(x)", request_id="traj-2")
        assert same.text == "6"
        assert "NameError" in other.text
        assert tool.open_sessions == 2
    finally:
        await tool.close()
    assert tool.open_sessions == 0


async def test_idle_stateful_sessions_are_closed_after_the_ttl(test_sandbox):
    tool = make_tool(test_sandbox, stateful=True, session_ttl_s=1)
    await call(tool, "x = 5", request_id="traj-1")
    await tool._close_idle(time.monotonic() + 0.5)
    assert tool.open_sessions == 1
    await tool._close_idle(time.monotonic() + 1.5)
    assert tool.open_sessions == 0
    response, _, _ = await call(tool, "print(x)", request_id="traj-1")  # a fresh session
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
