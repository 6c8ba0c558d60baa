"""Reward shaping from the R1-Code-Interpreter paper, as a validated config.

score = correct_reward · acc + (format_bonus if the transcript follows the protocol else
−format_penalty) − (excess_calls_penalty if more than max_calls_without_penalty code calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from reward_fns.protocol import MAX_TURNS_WITHOUT_PENALTY


@dataclass(frozen=True)
class ShapingConfig:
    """Paper defaults: +1.0 correct, ±0.1 format, −0.1 beyond 6 code calls."""

    correct_reward: float = 1.0
    format_bonus: float = 0.1
    format_penalty: float = 0.1  # subtracted when the format is broken
    max_calls_without_penalty: int = MAX_TURNS_WITHOUT_PENALTY
    excess_calls_penalty: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("correct_reward", "format_bonus", "format_penalty", "excess_calls_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"ShapingConfig.{name} must be a number >= 0, got {value!r}")
        if self.correct_reward <= 0:
            raise ValueError("ShapingConfig.correct_reward must be > 0, or correctness earns nothing")
        calls = self.max_calls_without_penalty
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise ValueError(f"ShapingConfig.max_calls_without_penalty must be an int >= 0, got {calls!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "ShapingConfig":
        """Build from a config mapping (e.g. hydra's reward_kwargs.shaping); unknown keys fail."""
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown ShapingConfig keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**values)


def shaped_score(correct: bool, format_ok: bool, num_code_calls: int, config: ShapingConfig) -> float:
    """The scalar reward for one response."""
    score = config.correct_reward if correct else 0.0
    score += config.format_bonus if format_ok else -config.format_penalty
    if num_code_calls > config.max_calls_without_penalty:
        score -= config.excess_calls_penalty
    return score
