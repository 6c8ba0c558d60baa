"""Per-step means of our reward's extras and the agent loop's counters, from verl's batch fields.

verl 0.9.1 logs only the scalar score during training; r1ci_verl.training.main_grpo's trainer mixin
logs these for every run. Kept free of verl imports: verl loads the smoke plugin (which
reuses these helpers) while it is itself still importing.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

REWARD_PREFIX = "reward"
AGENT_PREFIX = "agent"


def as_list(values: Any) -> list:
    """A TensorDict entry (tensor, NonTensorStack or plain list) as a Python list."""
    return values.tolist() if hasattr(values, "tolist") else list(values)


def plain_value(value: Any) -> Any:
    """A 0-d tensor / numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if hasattr(value, "item") else value


def agent_fields() -> tuple[str, ...]:
    """Counters our agent loop exports per trajectory (r1ci_verl.rollout.agent_loop.TrajectoryStats)."""
    from r1ci_verl.rollout.agent_loop import TrajectoryStats

    return tuple(f.name for f in fields(TrajectoryStats))


def mean_metrics(records: Sequence[dict[str, Any]], prefix: str) -> dict[str, float]:
    """`<prefix>/<key>/mean` over each key's numeric and boolean values (None and text skipped)."""
    values: dict[str, list[float]] = {}
    for record in records:
        for key, value in record.items():
            value = plain_value(value)
            if isinstance(value, (bool, int, float)):
                values.setdefault(key, []).append(float(value))
    return {f"{prefix}/{key}/mean": sum(v) / len(v) for key, v in values.items()}


def rollout_metrics(extra_fields: Sequence[Any], padding: Sequence[bool]) -> dict[str, float]:
    """Step means of the reward extras and agent-loop counters, verl's padding copies excluded.

    `extra_fields[i]` is trajectory i's extra_fields dict as verl stores it: the agent loop's
    counters at top level, compute_score's extras under "reward_extra_info".
    """
    if len(extra_fields) != len(padding):
        raise ValueError(f"{len(extra_fields)} trajectories but {len(padding)} padding flags")
    kept = [extra or {} for extra, is_padding in zip(extra_fields, padding) if not is_padding]
    names = agent_fields()
    rewards = [dict(extra.get("reward_extra_info") or {}) for extra in kept]
    agent = [{name: extra[name] for name in names if name in extra} for extra in kept]
    return {**mean_metrics(rewards, REWARD_PREFIX), **mean_metrics(agent, AGENT_PREFIX)}


def padding_flags(batch: Any) -> list[bool]:
    """Which trajectories of a KVBatchMeta are verl's padding copies (tags["is_padding"])."""
    return [bool(tag.get("is_padding", False)) for tag in batch.tags]
