"""The cluster recipes compose against verl 0.9.1's own config, with the paper's numbers in place.

Each recipe is run for real up to hydra's composition (`--cfg job` prints the composed job
config and exits before any model, Ray or GPU work), so a misspelt or moved verl key fails
here, in seconds, rather than on the cluster after the allocation starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_TIMEOUT_S = 180

# The paper's protocol (DESIGN: SFT 3 epochs, batch 32; GRPO lr 1e-6, 5 responses, KL 0.001,
# batch 128, temperature 1.0 with 0.6 for evaluation, 4 cumulative stages of 150 steps).
GRPO_PAPER = {
    "algorithm.adv_estimator": "grpo",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.rollout.n": 5,
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "data.train_batch_size": 128,
    "actor_rollout_ref.rollout.temperature": 1.0,
    "actor_rollout_ref.rollout.val_kwargs.temperature": 0.6,
    "actor_rollout_ref.rollout.multi_turn.enable": True,
    "actor_rollout_ref.rollout.agent.default_agent_loop": "r1ci_code_interpreter",
    "reward.custom_reward_function.path": "pkg://r1ci_verl.reward",
    "curriculum.num_stages": 4,
    "curriculum.steps_per_stage": 150,
    "trainer.total_training_steps": 300,  # STAGE=2 below: the end of stage 2
    "trainer.resume_mode": "auto",
}
SFT_PAPER = {
    "trainer.total_epochs": 3,
    "data.train_batch_size": 32,
    "data.custom_cls.path": "pkg://r1ci_verl.training.sft_dataset",
    "data.custom_cls.name": "CodeInterpreterSFTDataset",
    "engine.strategy": "fsdp2",
}
STAGE_RECIPES = ("run_3b_stage.sh", "run_7b_stage.sh", "run_14b_stage.sh")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        MODEL_PATH=str(tmp_path / "model"),
        TRAIN_FILES=str(tmp_path / "train.parquet"),
        VAL_FILES=str(tmp_path / "test.parquet"),
        POTENTIAL_FILE=str(tmp_path / "potential.parquet"),
        SFT_TRAIN_FILES=str(tmp_path / "sft.parquet"),
        STAGE="2",
        GPUS_PER_NODE="1",  # the SFT launcher starts GPUS_PER_NODE processes; one prints the config
        NNODES="1",
        LOGGERS='["console"]',
    )
    return env


def _compose(recipe: str, tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "recipes" / recipe), *overrides, "--cfg", "job"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_S,
    )


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node[key]
    return node


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every cluster recipe composed once (concurrently: each is an interpreter start plus verl's import)."""
    recipes = (*STAGE_RECIPES, "run_sft.sh")
    dirs = [tmp_path_factory.mktemp(recipe.removesuffix(".sh")) for recipe in recipes]
    with ThreadPoolExecutor(len(recipes)) as pool:
        runs = list(pool.map(_compose, recipes, dirs))
    return {recipe: (path, run) for recipe, path, run in zip(recipes, dirs, runs)}


def _config(composed: dict[str, tuple[Path, subprocess.CompletedProcess[str]]], recipe: str) -> tuple[Path, dict[str, Any]]:
    path, done = composed[recipe]
    assert done.returncode == 0, done.stderr[-3000:]
    return path, yaml.safe_load(done.stdout)


@pytest.mark.parametrize("recipe", STAGE_RECIPES)
def test_stage_recipe_composes_with_the_papers_settings(recipe: str, composed) -> None:
    tmp_path, config = _config(composed, recipe)
    for key, expected in GRPO_PAPER.items():
        assert _get(config, key) == expected, key
    assert _get(config, "actor_rollout_ref.model.path") == str(tmp_path / "model")
    assert _get(config, "curriculum.potential_file") == str(tmp_path / "potential.parquet")
    agent_config = Path(_get(config, "actor_rollout_ref.rollout.agent.agent_loop_config_path"))
    assert agent_config.is_file(), agent_config


def test_fourteen_b_recipe_uses_fsdp2_for_actor_and_reference(composed) -> None:
    _, config = _config(composed, "run_14b_stage.sh")
    assert _get(config, "actor_rollout_ref.actor.strategy") == "fsdp2"
    assert _get(config, "actor_rollout_ref.ref.strategy") == "fsdp2"
    assert _get(config, "actor_rollout_ref.model.enable_gradient_checkpointing") is True


def test_sft_recipe_composes_with_the_papers_settings(composed) -> None:
    tmp_path, config = _config(composed, "run_sft.sh")
    for key, expected in SFT_PAPER.items():
        assert _get(config, key) == expected, key
    assert _get(config, "model.path") == str(tmp_path / "model")


def test_a_misspelt_override_fails_before_any_work(tmp_path: Path) -> None:
    done = _compose("run_14b_stage.sh", tmp_path, "actor_rollout_ref.actor.optim.lrr=1e-6")
    assert done.returncode != 0
    assert "lrr" in done.stderr
