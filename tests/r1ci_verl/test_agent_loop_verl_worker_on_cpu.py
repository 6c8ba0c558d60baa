"""verl's own pipeline end to end on CPU: RLHFDataset reads a parquet row, verl's AgentLoopWorker
instantiates the loop named by the row's agent_name from our YAML, and pads and batches the output.
Only the LLM server is faked. Both of our ways in are covered: the R1-CI agent loop, and
verl's ToolAgentLoop (hermes) calling CodeInterpreterTool.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from fakes import FakeScriptedLLMServer
from omegaconf import OmegaConf

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "configs"
PROMPT_LENGTH, RESPONSE_LENGTH = 512, 256


@pytest.fixture
def trainer_config(tiny_model_dir, test_sandbox, tmp_path):
    """verl's full PPO trainer config with our YAML files, sized for the tiny model."""
    import verl

    base = OmegaConf.load(Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml")
    tool_yaml = OmegaConf.load(RECIPES / "code_tool.yaml")
    tool_yaml.tools[0].config.update(test_sandbox)  # one warm sandbox for the whole test process
    OmegaConf.save(tool_yaml, tmp_path / "code_tool.yaml")
    overrides = {
        "actor_rollout_ref": {
            "model": {"path": str(tiny_model_dir)},
            "rollout": {
                "name": "vllm",
                "prompt_length": PROMPT_LENGTH,
                "response_length": RESPONSE_LENGTH,
                "agent": {"agent_loop_config_path": str(RECIPES / "agent_loop.yaml"), "num_workers": 1},
                "multi_turn": {"format": "hermes", "tool_config_path": str(tmp_path / "code_tool.yaml")},
            },
        },
        "data": {"max_prompt_length": PROMPT_LENGTH, "max_response_length": RESPONSE_LENGTH},
        "r1ci": {"agent_loop": {"sandbox": test_sandbox}},
    }
    return OmegaConf.merge(base, overrides)


def load_batch(trainer_config, tokenizer, tmp_path, agent_name: str):
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    row = {
        "data_source": "bbh/multistep_arithmetic_two",
        "prompt": [{"role": "user", "content": "What is 6 * 7?"}],
        "agent_name": agent_name,
        "reward_model": {"style": "rule", "ground_truth": "42"},
        "extra_info": {"index": 0},
    }
    path = tmp_path / f"{agent_name}.parquet"
    pd.DataFrame([row]).to_parquet(path)
    dataset = RLHFDataset(data_files=[str(path)], tokenizer=tokenizer, config=trainer_config.data, processor=None)
    item = dataset[0]
    assert item["agent_name"] == agent_name
    return DataProto.from_single_dict(collate_fn([item]))


def generate(trainer_config, server, batch):
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    worker = AgentLoopWorker(trainer_config, server)
    return asyncio.run(worker.generate_sequences(batch))


def response_text(tokenizer, output) -> str:
    attention = output.batch["attention_mask"][0][PROMPT_LENGTH:].bool()
    return tokenizer.decode(output.batch["responses"][0][attention], skip_special_tokens=False)


def test_rlhf_dataset_row_selects_the_r1ci_loop(trainer_config, tiny_tokenizer, tmp_path):
    batch = load_batch(trainer_config, tiny_tokenizer, tmp_path, "r1ci_code_interpreter")
    server = FakeScriptedLLMServer(tiny_tokenizer, ["Let me check.\n```python\nprint(6 * 7)\n```\n", "<<<42>>>"])
    output = generate(trainer_config, server, batch)

    assert response_text(tiny_tokenizer, output) == (
        "Let me check.\n```python\nprint(6 * 7)\n```\nCode Execution Results:\n42\n<<<42>>><|im_end|>"
    )
    assert list(output.non_tensor_batch["num_code_calls"]) == [1]
    assert list(output.non_tensor_batch["answered"]) == [True]
    mask, attention = output.batch["response_mask"][0], output.batch["attention_mask"][0][PROMPT_LENGTH:]
    assert 0 < mask.sum() < attention.sum()  # results tokens are masked, padding too
    assert output.batch["responses"].shape == (1, RESPONSE_LENGTH)


def test_verl_tool_agent_loop_calls_code_interpreter_tool(trainer_config, tiny_tokenizer, tmp_path):
    batch = load_batch(trainer_config, tiny_tokenizer, tmp_path, "tool_agent")
    call = {"name": "code_interpreter", "arguments": {"code": "print(6 * 7)"}}
    server = FakeScriptedLLMServer(tiny_tokenizer, [f"<tool_call>{json.dumps(call)}</tool_call>", "<<<42>>>"])
    output = generate(trainer_config, server, batch)

    second_prompt = tiny_tokenizer.decode(server.calls[1]["prompt_ids"], skip_special_tokens=False)
    assert second_prompt.endswith("<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n")
    assert response_text(tiny_tokenizer, output).endswith("<<<42>>><|im_end|>")


def test_tool_agent_loop_sees_errors_and_timeouts_as_tool_messages(trainer_config, tiny_tokenizer, tmp_path):
    batch = load_batch(trainer_config, tiny_tokenizer, tmp_path, "tool_agent")
    calls = [{"name": "code_interpreter", "arguments": {"code": code}} for code in ("1 / 0", "while True:\n    pass")]
    script = [f"<tool_call>{json.dumps(call)}</tool_call>" for call in calls] + ["<<<none>>>"]
    server = FakeScriptedLLMServer(tiny_tokenizer, script)
    generate(trainer_config, server, batch)

    after_error = tiny_tokenizer.decode(server.calls[1]["prompt_ids"], skip_special_tokens=False)
    after_timeout = tiny_tokenizer.decode(server.calls[2]["prompt_ids"], skip_special_tokens=False)
    assert "ZeroDivisionError" in after_error.rsplit("<|im_start|>tool\n", 1)[1]
    assert "TimeoutError: execution exceeded the time limit" in after_timeout.rsplit("<|im_start|>tool\n", 1)[1]
