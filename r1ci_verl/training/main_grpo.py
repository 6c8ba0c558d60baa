"""`python -m r1ci_verl.training.main_grpo`: verl's GRPO/PPO entry point with the curriculum sampler.

Same hydra config and overrides as `python -m verl.trainer.main_ppo`; add a `+curriculum.*`
block to train in stages (see CurriculumConfig), e.g.

    python -m r1ci_verl.training.main_grpo algorithm.adv_estimator=grpo data.train_files=train.parquet ... \
        +curriculum.potential_file=potential.parquet +curriculum.steps_per_stage=150

verl 0.9.1 has no sampler hook and logs neither our reward's extra keys nor the agent loop's
counters during training, so this module runs verl's own TaskRunner with one change: the
trainer class (whatever `trainer.v1.trainer_mode` selects) gains mixins. Every run logs the
per-step means of the reward extras (`reward/<key>/mean`: acc, format_ok, num_code_calls, ...)
and of the agent loop's counters (`agent/<name>/mean`: num_code_calls, code_timeouts,
code_exec_time_s, answered, ...), the sandbox's own metrics (`sandbox/*`: queue wait, crashes,
timeouts, session evictions, summed over the agent-loop workers), and stops the run, before
the step's update, when more than `r1ci.max_sandbox_failure_rate` of its code calls failed in
the sandbox itself. With a `curriculum` block the train dataloader's sampler is swapped for ours and, in online mode, fed each step's rollout accuracy; without one the
training itself is plain verl.
"""

from __future__ import annotations

import logging
import math
import os
from pprint import pprint
from typing import Any, Sequence

import hydra
import ray
from omegaconf import DictConfig, OmegaConf, open_dict

from r1ci_verl.rollout.settings import check_agent_loop_file
from r1ci_verl.training.curriculum import CurriculumConfig, CurriculumSampler, load_pass_rates
from r1ci_verl.rollout.metrics import (
    DEFAULT_MAX_FAILURE_RATE,
    SandboxStepCounters,
    as_list,
    check_failure_rate,
    padding_flags,
    rollout_metrics,
    sandbox_step_metrics,
)
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))

CONFIG_KEY = "curriculum"


def curriculum_config(config: DictConfig) -> CurriculumConfig | None:
    """The validated `curriculum` block, or None when the run has none."""
    node = config.get(CONFIG_KEY)
    if node is None:
        return None
    return CurriculumConfig.from_mapping(OmegaConf.to_container(node, resolve=True))


def dataset_question_ids(dataset: Any) -> list[int]:
    """extra_info.index of every row of verl's RLHFDataset, in dataset order (after filtering)."""
    frame = getattr(dataset, "dataframe", None)
    if frame is None:
        raise TypeError(f"{type(dataset).__name__} has no `dataframe`; the curriculum needs verl's RLHFDataset rows")
    ids = []
    for row_no, extra_info in enumerate(frame["extra_info"]):
        if not isinstance(extra_info, dict) or extra_info.get("index") is None:
            raise ValueError(f"training row {row_no}: extra_info.index is missing (the curriculum keys questions by it)")
        ids.append(int(extra_info["index"]))
    return ids


def build_curriculum_dataloader(config: DictConfig, dataset: Any):
    """verl's train StatefulDataLoader, with our sampler: the one code path the trainer uses.

    Same arguments as verl's PPOTrainer._init_dataloader (gen_batch_size, drop_last, verl's
    collate_fn); returns (dataloader, sampler).
    """
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.utils.dataset.rl_dataset import collate_fn

    settings = curriculum_config(config)
    if settings is None:
        raise ValueError(f"config has no `{CONFIG_KEY}` block")
    sampler = CurriculumSampler(
        dataset_question_ids(dataset),
        load_pass_rates(settings.potential_file),
        settings,
        batch_size=int(config.data.train_batch_size),
    )
    loader = StatefulDataLoader(
        dataset=dataset,
        batch_size=config.data.get("gen_batch_size", None) or config.data.train_batch_size,
        num_workers=config.data["dataloader_num_workers"],
        drop_last=True,
        collate_fn=collate_fn,
        sampler=sampler,
    )
    return loader, sampler


def feedback_from_fields(indices: Sequence[Any], extra_fields: Sequence[Any], padding: Sequence[bool]):
    """(question ids, accuracies) of a step's trajectories, skipping verl's padding copies.

    Accuracy is the `acc` that compute_score returned (verl keeps it in
    extra_fields["reward_extra_info"]).
    """
    qids, accs = [], []
    for qid, extra, is_padding in zip(indices, extra_fields, padding):
        if is_padding:
            continue
        info = (extra or {}).get("reward_extra_info") or {}
        if "acc" not in info:
            raise ValueError(
                "online curriculum needs per-trajectory accuracy: compute_score must return a dict with 'acc' "
                f"(got reward keys {sorted(info)})"
            )
        qids.append(int(qid))
        accs.append(float(info["acc"]))
    return qids, accs


class RolloutMetricsTrainerMixin:
    """Put before any verl v1 PPOTrainer class: logs reward extras and agent-loop counters each
    step, and stops the run before any update when the sandbox failed too many of its code calls."""

    def _compute_advantage(self, batch, metrics: dict):
        # verl calls this once per step after the rollout and before the critic and actor
        # updates (and so before the step's checkpoint): a batch whose code calls mostly failed
        # in the sandbox itself must not train the policy.
        extra_fields, padding = _step_extra_fields(batch)
        check_failure_rate(sandbox_step_metrics(extra_fields, padding), max_sandbox_failure_rate(self.config))
        return super()._compute_advantage(batch, metrics=metrics)

    def _compute_metrics(self, batch, metrics: dict, timing_raw: dict, **kwargs: Any) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, **kwargs)
        extra_fields, padding = _step_extra_fields(batch)
        metrics.update(rollout_metrics(extra_fields, padding))
        sandbox = sandbox_step_metrics(extra_fields, padding)
        if not hasattr(self, "_sandbox_counters"):
            self._sandbox_counters = SandboxStepCounters()
        metrics.update(sandbox)
        metrics.update(self._sandbox_counters.update(sandbox))


def _step_extra_fields(batch) -> tuple[list[Any], list[bool]]:
    """The step's per-trajectory extra_fields (from verl's transfer queue) and padding flags."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    return as_list(data["extra_fields"]), padding_flags(batch)


def max_sandbox_failure_rate(config: DictConfig) -> float:
    """`r1ci.max_sandbox_failure_rate` (share of a step's code calls; 1 disables the check)."""
    value = OmegaConf.select(config, "r1ci.max_sandbox_failure_rate", default=None)
    rate = DEFAULT_MAX_FAILURE_RATE if value is None else float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"r1ci.max_sandbox_failure_rate={value!r}: expected a share between 0 and 1")
    return rate


class CurriculumTrainerMixin:
    """Put before a verl v1 PPOTrainer class: installs the sampler, feeds it, logs it."""

    curriculum: CurriculumSampler

    def _init_dataloader(self) -> None:
        settings = curriculum_config(self.config)
        with open_dict(self.config):
            if self.config.trainer.total_training_steps is None:
                self.config.trainer.total_training_steps = settings.total_steps
                logger.info("curriculum: trainer.total_training_steps defaults to %d (num_stages × steps_per_stage)",
                            settings.total_steps)
        super()._init_dataloader()
        self.train_dataloader, self.curriculum = build_curriculum_dataloader(self.config, self.train_dataset)
        self.train_dataloader_it = None
        # verl also stops at trainer.total_epochs × len(dataset)/batch; the curriculum defines the run length.
        needed_epochs = math.ceil(self.total_training_steps / max(1, self.steps_per_epoch))
        if self.config.trainer.total_epochs < needed_epochs:
            logger.info("curriculum: raising trainer.total_epochs from %d to %d so that %d steps can run",
                        self.config.trainer.total_epochs, needed_epochs, self.total_training_steps)
            with open_dict(self.config):
                self.config.trainer.total_epochs = needed_epochs

    def step(self, metrics: dict, timing_raw: dict):
        batch = super().step(metrics, timing_raw)
        if self.curriculum.config.mode == "online":
            import transfer_queue as tq

            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                   select_fields=["index", "extra_fields"])
            indices, extra_fields = as_list(data["index"]), as_list(data["extra_fields"])
            self.curriculum.update(*feedback_from_fields(indices, extra_fields, padding_flags(batch)))
        metrics.update(self.curriculum.metrics())
        return batch


def with_curriculum(trainer_cls: type) -> type:
    return type(f"Curriculum{trainer_cls.__name__}", (CurriculumTrainerMixin, trainer_cls), {})


def with_rollout_metrics(trainer_cls: type) -> type:
    return type(f"RolloutMetrics{trainer_cls.__name__}", (RolloutMetricsTrainerMixin, trainer_cls), {})


def r1ci_trainer_cls(config: DictConfig) -> type:
    """The trainer class `trainer.v1.trainer_mode` selects, with our mixins (the curriculum only if configured)."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer_cls = with_rollout_metrics(get_trainer_cls(config.trainer.v1.trainer_mode))
    if curriculum_config(config) is not None:
        trainer_cls = with_curriculum(trainer_cls)
    return trainer_cls


class _CurriculumTaskRunner(TaskRunnerV1.__ray_actor_class__):
    """verl's TaskRunnerV1.run, with the trainer class from r1ci_trainer_cls."""

    def run(self, config: DictConfig) -> None:
        import transfer_queue as tq
        from verl.utils.logging_utils import configure_verl_logging

        configure_verl_logging()
        trainer_cls = r1ci_trainer_cls(config)
        config.transfer_queue.enable = True
        pprint(OmegaConf.to_container(config, resolve=True))
        OmegaConf.resolve(config)
        self.config = config
        tq.init(config.transfer_queue)
        succeeded = False
        try:
            self.trainer = trainer_cls(config=config)
            self.trainer.init()
            self.init_agent_loop_manager()
            self.trainer.fit(self.agent_loop_manager)
            succeeded = True
        finally:
            try:
                tracking = getattr(self.trainer, "logger", None)
                if tracking is not None:
                    tracking.finish(exit_code=0 if succeeded else 1)
            finally:
                tq.close()


CurriculumTaskRunner = ray.remote(_CurriculumTaskRunner)


def check_config(config: DictConfig) -> CurriculumConfig | None:
    """Fail fast, before Ray starts, on settings the curriculum cannot run with."""
    settings = curriculum_config(config)
    if settings is None:
        return None
    if not config.trainer.use_v1:
        raise ValueError("the curriculum needs verl's v1 trainer (trainer.use_v1=true, the default)")
    if not os.path.exists(settings.potential_file):
        raise FileNotFoundError(f"curriculum.potential_file not found: {settings.potential_file}")
    if settings.mode == "online" and config.data.dataloader_num_workers != 0:
        raise ValueError("curriculum.mode=online reacts to training feedback: set data.dataloader_num_workers=0")
    if config.data.dataloader_num_workers != 0:
        logger.warning("data.dataloader_num_workers>0 prefetches batches: a resumed run may skip the prefetched "
                       "prompts; use 0 for an exact curriculum resume")
    return settings


@hydra.main(config_path="pkg://verl.trainer.config", config_name="ppo_trainer", version_base=None)
def main(config: DictConfig) -> None:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    check_agent_loop_file(config.actor_rollout_ref.rollout.agent.get("agent_loop_config_path"))
    settings = check_config(config)
    if settings is not None:
        with open_dict(config):  # Ray workers need not share the driver's working directory
            config[CONFIG_KEY].potential_file = os.path.abspath(settings.potential_file)
        logger.info("curriculum: %s", settings)
    run_ppo(config, task_runner_class=CurriculumTaskRunner)


if __name__ == "__main__":
    # Import by module name so Ray pickles the task runner by reference, not from __main__.
    from r1ci_verl.training.main_grpo import main as _main

    _main()
