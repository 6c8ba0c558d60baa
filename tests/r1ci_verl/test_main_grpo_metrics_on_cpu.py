"""Per-step reward/agent metrics that r1ci_verl.training.main_grpo logs for every run, on batch-shaped inputs."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from r1ci_verl.training.main_grpo import CurriculumTrainerMixin, RolloutMetricsTrainerMixin, r1ci_trainer_cls
from r1ci_verl.rollout.metrics import agent_fields, as_list, rollout_metrics


def trajectory(acc: float, calls: int, timeouts: int, exec_s: float, answered: bool, stop: str = "eos") -> dict:
    """One trajectory's fields as our agent loop and reward hand them to verl."""
    return {
        "index": 7,
        "extra_fields": {
            "max_global_steps": 3,  # verl's own bookkeeping: not an agent-loop counter
            "num_code_calls": calls,
            "code_timeouts": timeouts,
            "code_exec_time_s": exec_s,
            "answered": answered,
            "stop_reason": stop,
            "reward_extra_info": {"score": acc - 0.1, "acc": acc, "format_ok": answered, "num_code_calls": calls},
        },
    }


def stored_extra_fields(rows: list[dict]) -> list:
    """extra_fields read back the way the trainer reads them (verl's AgentLoopWorkerTQ stores rows
    with list_of_dict_to_tensordict; values come back through TensorDict as numpy/torch scalars too)."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    return as_list(list_of_dict_to_tensordict(rows)["extra_fields"])


def test_means_of_reward_extras_and_agent_counters():
    rows = [
        trajectory(acc=1.0, calls=2, timeouts=0, exec_s=0.5, answered=True),
        trajectory(acc=0.0, calls=1, timeouts=1, exec_s=1.5, answered=False, stop="length"),
        trajectory(acc=0.0, calls=0, timeouts=0, exec_s=0.0, answered=True),
        trajectory(acc=1.0, calls=5, timeouts=3, exec_s=9.0, answered=True),  # verl's padding copy
    ]
    metrics = rollout_metrics(stored_extra_fields(rows), padding=[False, False, False, True])

    assert metrics["reward/acc/mean"] == pytest.approx(1 / 3)
    assert metrics["reward/format_ok/mean"] == pytest.approx(2 / 3)
    assert metrics["reward/num_code_calls/mean"] == pytest.approx(1.0)
    assert metrics["reward/score/mean"] == pytest.approx(1 / 3 - 0.1)
    assert metrics["agent/num_code_calls/mean"] == pytest.approx(1.0)
    assert metrics["agent/code_timeouts/mean"] == pytest.approx(1 / 3)
    assert metrics["agent/code_exec_time_s/mean"] == pytest.approx(2 / 3)
    assert metrics["agent/answered/mean"] == pytest.approx(2 / 3)
    assert "agent/stop_reason/mean" not in metrics  # text is not averaged
    assert "agent/max_global_steps/mean" not in metrics  # only our agent loop's counters
    assert all(isinstance(v, float) for v in metrics.values())


def test_tensor_scalars_and_missing_values():
    fields = [
        {"num_code_calls": torch.tensor(3), "reward_extra_info": {"acc": torch.tensor(1.0)}},
        {"num_code_calls": None, "reward_extra_info": None},  # a trajectory without reward extras
        None,
    ]
    metrics = rollout_metrics(fields, padding=[False, False, False])
    assert metrics == {"reward/acc/mean": 1.0, "agent/num_code_calls/mean": 3.0}


def test_all_padding_or_empty_step_logs_nothing():
    rows = [trajectory(acc=1.0, calls=1, timeouts=0, exec_s=0.1, answered=True)]
    assert rollout_metrics(stored_extra_fields(rows), padding=[True]) == {}
    assert rollout_metrics([], padding=[]) == {}


def test_padding_flags_must_match_trajectories():
    with pytest.raises(ValueError, match="2 trajectories but 1 padding flags"):
        rollout_metrics([{}, {}], padding=[False])


def test_agent_fields_are_the_agent_loops_counters():
    assert {"num_code_calls", "code_timeouts", "code_exec_time_s", "answered"} <= set(agent_fields())


@pytest.mark.parametrize("mode", ["sync", "colocate_async"])
def test_every_run_gets_the_metrics_mixin(tmp_path, mode):
    plain = OmegaConf.create({"trainer": {"v1": {"trainer_mode": mode}}})
    cls = r1ci_trainer_cls(plain)
    assert issubclass(cls, RolloutMetricsTrainerMixin) and not issubclass(cls, CurriculumTrainerMixin)

    staged = OmegaConf.create({"trainer": {"v1": {"trainer_mode": mode}},
                               "curriculum": {"potential_file": str(tmp_path / "potential.parquet")}})
    cls = r1ci_trainer_cls(staged)
    assert issubclass(cls, RolloutMetricsTrainerMixin) and issubclass(cls, CurriculumTrainerMixin)
    assert cls._compute_metrics is RolloutMetricsTrainerMixin._compute_metrics  # runs first, then calls verl's


def test_verl_computes_advantages_before_any_update():
    """The failure-rate stop lives in `_compute_advantage` because verl's step calls it after the
    rollout and before the critic and actor updates; this pins that order in the pinned verl."""
    import inspect

    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    source = inspect.getsource(PPOTrainer._step_once)
    advantage = source.index("self._compute_advantage(")
    assert advantage < source.index("self._update_critic(") and advantage < source.index("self._update_actor(")


class _RecordingTrainer:
    """verl's step order reduced to the calls the mixin wraps (the batch lives in the transfer queue)."""

    def __init__(self, max_rate: float):
        self.config = OmegaConf.create({"r1ci": {"max_sandbox_failure_rate": max_rate}})
        self.calls: list[str] = []

    def _compute_advantage(self, batch, metrics):
        self.calls.append("advantage")
        return batch

    def step(self, batch):
        batch = self._compute_advantage(batch, metrics={})
        self.calls.append("update_actor")
        return batch


@pytest.mark.parametrize("failures, stops", [(20, True), (4, False)])
def test_a_step_with_a_broken_sandbox_stops_before_the_actor_update(monkeypatch, failures, stops):
    import transfer_queue
    from types import SimpleNamespace

    from r1ci_verl.rollout.metrics import SandboxFailureError

    rows = [{"extra_fields": {"num_code_calls": 2, "sandbox_failures": 1 if i < failures else 0}} for i in range(32)]
    monkeypatch.setattr(transfer_queue, "kv_batch_get",
                        lambda keys, partition_id, select_fields: {"extra_fields": stored_extra_fields(rows)})
    batch = SimpleNamespace(keys=list(range(32)), partition_id="train", tags=[{} for _ in range(32)])
    trainer = type("Trainer", (RolloutMetricsTrainerMixin, _RecordingTrainer), {})(max_rate=0.25)
    if stops:  # 20 of 64 calls = 31% > 25%
        with pytest.raises(SandboxFailureError, match="31% of this step's 64 code calls"):
            trainer.step(batch)
        assert trainer.calls == []
    else:
        trainer.step(batch)
        assert trainer.calls == ["advantage", "update_actor"]
