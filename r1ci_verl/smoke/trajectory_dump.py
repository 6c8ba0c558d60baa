"""Token-level rollout dumps, so the smoke run can prove what verl trained on.

verl's `trainer.rollout_data_dir` dump holds decoded text and scores only. The smoke run must
also show that the tokens our agent loop inserted (results blocks) carry response_mask 0, and
how many code calls each trajectory made. This trainer mode is verl's synchronous trainer
plus one extra file per step, ``<rollout_data_dir>/<step>.tokens.jsonl``, one line per
trajectory: question id (extra_info.index), response ids, response mask, the agent loop's
counters and the reward's extras. (The per-step means of those counters and extras are
logged by r1ci_verl.training.main_grpo for every run, this mode included.) Select it with
``trainer.v1.trainer_mode=r1ci_smoke_sync`` after importing this module in the task runner
(the CPU smoke run loads it through r1ci_verl.smoke.plugin in VERL_USE_EXTERNAL_MODULES).
"""

from __future__ import annotations

import json
import os
from typing import Any

import transfer_queue as tq
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer

from r1ci_verl.rollout.metrics import agent_fields, as_list, plain_value

TRAINER_MODE = "r1ci_smoke_sync"
TOKENS_SUFFIX = ".tokens.jsonl"


def _rows(values: Any) -> list:
    """One entry per trajectory from a nested/padded tensor or a plain sequence."""
    if hasattr(values, "is_nested") and values.is_nested:
        return [row.tolist() for row in values.unbind()]
    return as_list(values)


@register_trainer(TRAINER_MODE)
class SmokeTrainerSync(PPOTrainerSync):
    """PPOTrainerSync that also dumps response tokens, masks and per-trajectory counters."""

    def _log_rollout_data(self, batch, timing_raw: dict, rollout_data_dir: str) -> None:
        super()._log_rollout_data(batch, timing_raw, rollout_data_dir)
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["index", "responses", "response_mask", "extra_fields"],
        )
        responses, masks = _rows(data["responses"]), _rows(data["response_mask"])
        extras, indices = _rows(data["extra_fields"]), _rows(data["index"])
        names = agent_fields()
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
                    "index": int(plain_value(index)),
                    "response_ids": [int(t) for t in ids],
                    "response_mask": [int(m) for m in mask],
                    **{name: plain_value(extra.get(name)) for name in names},
                    "reward_extra_info": {k: plain_value(v) for k, v in (extra.get("reward_extra_info") or {}).items()},
                }
                handle.write(json.dumps(record) + "\n")
