"""Token-level rollout dumps and reward metrics, so the smoke run can prove what verl trained on.

verl's `trainer.rollout_data_dir` dump holds decoded text and scores only. The smoke run must
also show that the tokens our agent loop inserted (results blocks) carry response_mask 0, and
how many code calls each trajectory made. This trainer mode is verl's synchronous trainer
plus one extra file per step, ``<rollout_data_dir>/<step>.tokens.jsonl``, one line per
trajectory: question id (extra_info.index), response ids, response mask, and the agent loop's
extra fields. verl 0.9.1's v1 trainer logs only the scalar score during training; this mode
also logs the means of our reward's extra keys (``reward/acc/mean``, ``reward/format_ok/mean``,
``reward/num_code_calls/mean``, ...) and of the agent loop's counters (``agent/<name>/mean``).
Select it with
``trainer.v1.trainer_mode=r1ci_smoke_sync`` after importing this module in the task runner
(the CPU smoke run loads it through r1ci_verl.smoke.plugin in VERL_USE_EXTERNAL_MODULES).
"""

from __future__ import annotations

import json
import os
from typing import Any

import transfer_queue as tq
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

TRAINER_MODE = "r1ci_smoke_sync"
TOKENS_SUFFIX = ".tokens.jsonl"
# Agent-loop counters copied into the dump (see r1ci_verl.agent_loop.TrajectoryStats).
DUMPED_FIELDS = ("num_code_calls", "code_exec_time_s", "code_errors", "code_timeouts", "stop_reason", "answered")


def _rows(values: Any) -> list:
    """One entry per trajectory from a nested/padded tensor or a plain sequence."""
    if hasattr(values, "is_nested") and values.is_nested:
        return [row.tolist() for row in values.unbind()]
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _means(records: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    """`prefix/<key>/mean` over the numeric (and boolean) values of each key."""
    values: dict[str, list[float]] = {}
    for record in records:
        for key, value in record.items():
            value = _plain(value)
            if isinstance(value, (bool, int, float)):
                values.setdefault(key, []).append(float(value))
    return {f"{prefix}/{key}/mean": sum(v) / len(v) for key, v in values.items() if v}


def step_metrics(extra_fields: list[dict[str, Any]]) -> dict[str, float]:
    """Reward extras and agent-loop counters of one step's trajectories, averaged."""
    rewards = [dict((e or {}).get("reward_extra_info") or {}) for e in extra_fields]
    agent = [{k: (e or {}).get(k) for k in DUMPED_FIELDS if k != "stop_reason"} for e in extra_fields]
    return {**_means(rewards, "reward"), **_means(agent, "agent")}


@register_trainer(TRAINER_MODE)
class SmokeTrainerSync(PPOTrainerSync):
    """PPOTrainerSync that also logs reward/agent metrics and dumps response tokens and masks."""

    def _compute_metrics(self, batch, metrics: dict, timing_raw: dict, **kwargs: Any) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, **kwargs)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        metrics.update(step_metrics(_rows(data["extra_fields"])))

    def _log_rollout_data(self, batch, timing_raw: dict, rollout_data_dir: str) -> None:
        super()._log_rollout_data(batch, timing_raw, rollout_data_dir)
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["index", "responses", "response_mask", "extra_fields"],
        )
        responses, masks = _rows(data["responses"]), _rows(data["response_mask"])
        extras, indices = _rows(data["extra_fields"]), _rows(data["index"])
        os.makedirs(rollout_data_dir, exist_ok=True)
        path = os.path.join(rollout_data_dir, f"{self.global_steps}{TOKENS_SUFFIX}")
        with open(path, "w", encoding="utf-8") as handle:
            for key, index, ids, mask, extra in zip(batch.keys, indices, responses, masks, extras):
                extra = extra or {}
                if len(ids) != len(mask):
                    raise ValueError(f"step {self.global_steps} {key}: {len(ids)} response ids but {len(mask)} mask values")
                record = {
                    "uid": key,
                    "step": self.global_steps,
                    "index": int(_plain(index)),
                    "response_ids": [int(t) for t in ids],
                    "response_mask": [int(m) for m in mask],
                    **{name: _plain(extra.get(name)) for name in DUMPED_FIELDS},
                    "reward_extra_info": {k: _plain(v) for k, v in (extra.get("reward_extra_info") or {}).items()},
                }
                handle.write(json.dumps(record) + "\n")
