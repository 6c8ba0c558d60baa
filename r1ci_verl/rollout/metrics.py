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
SANDBOX_FIELD = "sandbox_metrics"  # r1ci_verl.rollout.sandbox_service.SANDBOX_FIELD
PROCESS_KEY = "process"
FAILURE_RATE_KEY = "sandbox/failure_rate"  # infrastructure failures / code calls in this step
DEFAULT_MAX_FAILURE_RATE = 0.25  # r1ci.max_sandbox_failure_rate: above this share a step stops the run
MIN_CALLS_FOR_FAILURE_RATE = 16  # fewer code calls in a step are too few to judge the sandbox by


STEP_COUNTERS = (
    "sandbox/runs", "sandbox/timeouts", "sandbox/crashes", "sandbox/unavailable", "sandbox/errors",
    "sandbox/session_evictions",
)  # fmt: skip  # totals whose per-step change is logged as "<name>/step"


class SandboxFailureError(RuntimeError):
    """Too many code calls of a step failed in the sandbox itself: training on would be blind."""


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


def sandbox_step_metrics(extra_fields: Sequence[Any], padding: Sequence[bool]) -> dict[str, float]:
    """The workers' own sandbox metrics and this step's sandbox failure rate.

    Every trajectory carries its worker's latest snapshot; the newest per process (most
    runs) is kept, then counters are summed over processes and durations (`*_s`) take the
    worst process. Counters are totals since each worker started.
    """
    latest: dict[str, dict[str, Any]] = {}
    calls = failures = 0
    for extra, is_padding in zip(extra_fields, padding):
        if is_padding or not extra:
            continue
        calls += int(plain_value(extra.get("num_code_calls", 0)) or 0)
        failures += int(plain_value(extra.get("sandbox_failures", 0)) or 0)
        snapshot = extra.get(SANDBOX_FIELD)
        if snapshot:
            process = str(snapshot.get(PROCESS_KEY, ""))
            if process not in latest or snapshot.get("sandbox/runs", 0) >= latest[process].get("sandbox/runs", 0):
                latest[process] = snapshot
    merged: dict[str, float] = {}
    for snapshot in latest.values():
        for key, value in snapshot.items():
            value = plain_value(value)
            if key == PROCESS_KEY or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            merged[key] = max(merged.get(key, 0.0), float(value)) if key.endswith("_s") else merged.get(key, 0.0) + value
    if latest:
        merged["sandbox/processes"] = float(len(latest))
    merged["sandbox/code_calls"] = float(calls)
    merged["sandbox/step_failures"] = float(failures)
    merged[FAILURE_RATE_KEY] = failures / calls if calls else 0.0
    return merged


def check_failure_rate(metrics: dict[str, float], max_rate: float) -> None:
    """Stop the run loudly when the sandbox, not the model, failed too many of this step's calls."""
    calls = metrics.get("sandbox/code_calls", 0.0)
    rate = metrics.get(FAILURE_RATE_KEY, 0.0)
    if calls >= MIN_CALLS_FOR_FAILURE_RATE and rate > max_rate:
        raise SandboxFailureError(
            f"{rate:.0%} of this step's {int(calls)} code calls failed in the sandbox itself (crashed or "
            f"unavailable; limit r1ci.max_sandbox_failure_rate={max_rate:g}): stopping instead of training "
            f"without a working tool. Sandbox metrics: {_summary(metrics)}"
        )


def _summary(metrics: dict[str, float]) -> str:
    keys = ("sandbox/crashes", "sandbox/unavailable", "sandbox/timeouts", "e2b/auth_failures", "e2b/rate_limited",
            "ray/actor_restarts")
    return ", ".join(f"{k}={metrics[k]:g}" for k in keys if k in metrics) or "none reported"


class SandboxStepCounters:
    """Turns the workers' running totals into per-step counts (`sandbox/crashes/step`, ...)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def update(self, metrics: dict[str, float]) -> dict[str, float]:
        steps = {}
        for key in STEP_COUNTERS:
            if key in metrics:
                # A restarted worker starts from zero again: never report a negative count.
                steps[f"{key}/step"] = max(0.0, metrics[key] - self._last.get(key, 0.0))
                self._last[key] = metrics[key]
        return steps
