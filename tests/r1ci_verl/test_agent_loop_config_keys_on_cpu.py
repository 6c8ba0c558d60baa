"""The agent-loop YAML entry: a typo or a misplaced key is an error naming the key and the file.

verl instantiates the loop with the entry's keys as keyword arguments; its own base class takes
``**kwargs``, so without our check a typo such as ``max_code_cals`` would be dropped silently.
"""

from __future__ import annotations

import pytest
import yaml
from fakes import FakeScriptedLLMServer
from test_agent_loop_verl_worker_on_cpu import RECIPES, generate, load_batch, trainer_config  # noqa: F401


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_code_cals", 3, "unknown key 'max_code_cals' (did you mean 'max_code_calls'?)"),
        ("stateful", True, "unknown key 'stateful' (did you mean 'sandbox.stateful'?)"),
        ("timeout_s", 30, "unknown key 'timeout_s' (did you mean 'sandbox.timeout_s'?)"),
    ],
)
def test_unknown_top_level_key_names_key_and_file(trainer_config, tiny_tokenizer, tmp_path, key, value, expected):  # noqa: F811
    entries = yaml.safe_load((RECIPES / "agent_loop.yaml").read_text())
    entries[0][key] = value
    config_file = tmp_path / "my_agent_loop.yaml"
    config_file.write_text(yaml.safe_dump(entries))
    trainer_config.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(config_file)
    batch = load_batch(trainer_config, tiny_tokenizer, tmp_path, "r1ci_code_interpreter")
    server = FakeScriptedLLMServer(tiny_tokenizer, ["<<<42>>>"])

    with pytest.raises(Exception) as raised:
        generate(trainer_config, server, batch)
    message = str(raised.value)
    assert expected in message and str(config_file) in message and "'r1ci_code_interpreter' entry" in message


def test_unknown_sandbox_key_is_an_error(trainer_config, tiny_tokenizer, tmp_path):  # noqa: F811
    entries = yaml.safe_load((RECIPES / "agent_loop.yaml").read_text())
    entries[0]["sandbox"]["timeout"] = 30
    config_file = tmp_path / "my_agent_loop.yaml"
    config_file.write_text(yaml.safe_dump(entries))
    trainer_config.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(config_file)
    batch = load_batch(trainer_config, tiny_tokenizer, tmp_path, "r1ci_code_interpreter")

    with pytest.raises(Exception, match="timeout"):
        generate(trainer_config, FakeScriptedLLMServer(tiny_tokenizer, ["<<<42>>>"]), batch)


def test_unknown_hydra_override_key_suggests_the_right_one():
    from r1ci_verl.rollout.settings import AgentLoopSettings

    with pytest.raises(ValueError, match=r"unknown key 'max_code_cals' \(did you mean 'max_code_calls'\?\)"):
        AgentLoopSettings.from_layers({"max_code_cals": 3})


def test_driver_checks_the_file_before_training(tmp_path):
    """main_grpo checks our entries at launch, before Ray and the models start."""
    from r1ci_verl.rollout.settings import check_agent_loop_file

    check_agent_loop_file(str(RECIPES / "agent_loop.yaml"))  # the shipped file is valid
    entries = yaml.safe_load((RECIPES / "agent_loop.yaml").read_text())
    entries[0]["max_code_cals"] = 3
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump(entries))
    with pytest.raises(ValueError, match=r"unknown key 'max_code_cals' \(did you mean 'max_code_calls'\?\).*typo.yaml"):
        check_agent_loop_file(str(typo))
    entries[0].pop("max_code_cals")
    entries[0]["sandbox"]["timeout_s"] = 0
    typo.write_text(yaml.safe_dump(entries))
    with pytest.raises(ValueError, match="timeout_s.*typo.yaml"):
        check_agent_loop_file(str(typo))
