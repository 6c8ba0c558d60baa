"""The stable public surface listed in README.md ("Stable public surface") exists and is documented.

Removing or renaming any item here breaks users' configs and scripts: this test makes that a
deliberate change (update the README section and this list together).
"""

from __future__ import annotations

import argparse
import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SURFACE = README[README.index("## Stable public surface"):].split("\n## ", 1)[0]

STABLE_COMMANDS = {
    "sandbox": {"run", "bench"},
    "reward": {"check", "list"},
    "data": {"build", "sft", "list", "split"},
    "potential": set(),
    "smoke": set(),
}
LATER_COMMANDS = {"eval", "sft"}  # being added; once present they must be documented too

SFT_KNOBS = {
    "MODEL_PATH", "SFT_TRAIN_FILES", "SFT_VAL_FILES", "OUT_DIR", "NNODES", "GPUS_PER_NODE", "NODE_RANK",
    "MASTER_ADDR", "MASTER_PORT", "SP_SIZE", "EPOCHS", "TRAIN_BATCH_SIZE", "MICRO_BATCH_SIZE", "MAX_LENGTH", "LR",
    "TOTAL_STEPS", "PROJECT", "EXPERIMENT", "LOGGERS",
}
STAGE_KNOBS = {
    "STAGE", "MODEL_PATH", "SFT_DIR", "TRAIN_FILES", "VAL_FILES", "POTENTIAL_FILE", "NUM_STAGES", "STEPS_PER_STAGE",
    "OUT_DIR", "NNODES", "GPUS_PER_NODE", "ROLLOUT_TP", "TRAIN_BATCH_SIZE", "ROLLOUT_N", "LR", "KL_COEF",
    "TEMPERATURE", "VAL_TEMPERATURE", "PPO_MINI_BATCH_SIZE", "MICRO_BATCH_SIZE", "MAX_PROMPT_LENGTH",
    "MAX_RESPONSE_LENGTH", "GPU_MEMORY_UTILIZATION", "SAVE_FREQ", "TEST_FREQ", "PROJECT", "EXPERIMENT", "LOGGERS",
    "ROLLOUT_DATA_DIR", "AGENT_LOOP_CONFIG", "ENTRY_POINT",
}
RECIPE_KNOBS = {  # recipe -> (the scripts it runs, knobs it must read)
    "run_sft.sh": (("run_sft.sh", "lib/sft.sh"), SFT_KNOBS),
    "run_14b_stage.sh": (("run_14b_stage.sh", "lib/grpo_stage.sh"), STAGE_KNOBS),
    "run_7b_stage.sh": (("run_7b_stage.sh", "run_14b_stage.sh", "lib/grpo_stage.sh"), STAGE_KNOBS),
    "run_3b_stage.sh": (("run_3b_stage.sh", "run_14b_stage.sh", "lib/grpo_stage.sh"), STAGE_KNOBS),
}


def test_verl_plugin_entry_point_resolves_to_our_plugin():
    (point,) = [ep for ep in entry_points(group="verl.plugins") if ep.name == "r1ci"]
    assert point.value == "r1ci_verl.plugin"
    assert point.load().__name__ == "r1ci_verl.plugin"


def test_agent_loop_name_is_registered_with_verl():
    import r1ci_verl.plugin  # noqa: F401 - what verl's plugin loading does
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    # verl merges a loaded agent-loop YAML entry into the registry, so only the target is stable
    entry = _agent_loop_registry["r1ci_code_interpreter"]
    assert entry["_target_"] == "r1ci_verl.rollout.agent_loop.CodeInterpreterAgentLoop"
    assert "name: r1ci_code_interpreter" in (ROOT / "recipes/configs/agent_loop.yaml").read_text()


def test_pkg_reward_module_has_compute_score_with_verls_signature():
    from verl.utils.import_utils import load_extern_object

    compute_score = load_extern_object("pkg://r1ci_verl.reward", "compute_score")
    params = inspect.signature(compute_score).parameters
    assert list(params)[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    assert compute_score("bbh/navigate", "<<<No>>>", "No")["acc"] == 1.0


def test_register_verifier_and_sandbox_api():
    import reward_fns
    import tool_env

    assert callable(reward_fns.register_verifier)
    assert callable(tool_env.create_sandbox)
    config = tool_env.SandboxConfig(timeout_s=5)
    assert config.timeout_s == 5 and config.backend == "local"


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_r1ci_commands_exist_and_are_documented():
    from r1ci_verl.cli import build_parser

    commands = _commands(build_parser())
    for name, actions in STABLE_COMMANDS.items():
        assert name in commands, f"r1ci {name} is part of the stable surface"
        if actions:
            assert actions <= set(_commands(commands[name])), name
        assert f"`r1ci {name}" in SURFACE, f"r1ci {name} missing from the README's surface section"
    for name in set(commands) - set(STABLE_COMMANDS):
        assert name in LATER_COMMANDS, f"new command r1ci {name}: add it to STABLE_COMMANDS and the README"
        assert f"r1ci {name}" in README, f"r1ci {name} is not documented in the README"


def _knobs(script: Path) -> set[str]:
    """Environment variables a recipe reads with a default or a requirement: ${NAME:-...} / ${NAME:?...}."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):[-?]", script.read_text()))


@pytest.mark.parametrize("recipe", sorted(RECIPE_KNOBS))
def test_recipe_knobs_exist_and_are_documented(recipe):
    scripts, stable = RECIPE_KNOBS[recipe]
    read = set().union(*(_knobs(ROOT / "recipes" / s) for s in scripts))
    assert stable <= read, f"{recipe} no longer reads {sorted(stable - read)}"
    undocumented = [knob for knob in stable if f"`{knob}`" not in SURFACE]
    assert not undocumented, f"README's surface section misses {undocumented}"
