"""Shared fixtures: the tiny tokenizer and model, built once per session (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests: CI replays the same examples every run (derandomize, fixed database-free
# seed); locally hypothesis explores new random examples. Pick one with HYPOTHESIS_PROFILE.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# One sandbox configuration for every test in the process: the process-wide sandbox is built
# once and reused (as in a rollout worker), instead of one warm pool per test.
TEST_SANDBOX = {"timeout_s": 2.0, "pool_size": 2}


@pytest.fixture(scope="session")
def test_sandbox() -> dict:
    """Sandbox settings shared by the agent-loop and tool tests (short timeout, small pool)."""
    return dict(TEST_SANDBOX)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Qwen2 model and its tokenizer (AutoTokenizer / AutoModel load it)."""
    from r1ci_verl.smoke.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def build_rollout_trainer_config(response_length: int = 512, prompt_length: int = 1024, **extra):
    """The slice of verl's trainer config an agent loop reads, as an OmegaConf node."""
    from omegaconf import OmegaConf

    rollout = {
        "name": "vllm",
        "prompt_length": prompt_length,
        "response_length": response_length,
        "full_determinism": False,
        "multi_turn": {"max_user_turns": None, "max_assistant_turns": None, "max_parallel_calls": 1,
                       "max_tool_response_length": 4096, "tool_response_truncate_side": "middle",
                       "format": "hermes"},
    }
    return OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}, "data": {}, **extra})


@pytest.fixture
def make_code_loop(tiny_tokenizer):
    """Factory: a real CodeInterpreterAgentLoop driven by `server`, settings as YAML kwargs."""

    def make(server, *, response_length: int = 512, trainer_extra: dict | None = None, **settings):
        from verl.experimental.agent_loop.agent_loop import DictConfigWrap
        from verl.utils.dataset.rl_dataset import RLHFDataset

        from r1ci_verl.rollout.agent_loop import CodeInterpreterAgentLoop

        config = build_rollout_trainer_config(response_length=response_length, **(trainer_extra or {}))
        return CodeInterpreterAgentLoop(
            trainer_config=DictConfigWrap(config),
            server_manager=server,
            tokenizer=tiny_tokenizer,
            processor=None,
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(config.data),
            hf_model_type="qwen2",
            **settings,
        )

    return make
