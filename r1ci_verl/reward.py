"""The reward function verl calls: point ``reward.custom_reward_function`` here.

    reward.custom_reward_function.path=pkg://r1ci_verl.reward
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.shaping.format_bonus=0.1      # optional
    +reward.custom_reward_function.reward_kwargs.reward_modules=[my_pkg.rewards]  # optional

verl's naive reward manager merges the agent loop's ``extra_fields`` (our ``num_code_calls``) into
``extra_info`` and adds ``num_turns``; values may arrive as numpy scalars or omegaconf containers,
so they are made plain here before reward_fns (which knows nothing of verl) sees them.
"""

from __future__ import annotations

from typing import Any, Mapping

from reward_fns.scoring import compute_score as _compute_score

__all__ = ["compute_score"]


def _plain(value: Any) -> Any:
    """numpy scalars/arrays and omegaconf containers → Python values."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # omegaconf ships with verl; guard for minimal installs
        return value
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl-facing wrapper of reward_fns.scoring.compute_score (same signature and result)."""
    extra = {k: _plain(v) for k, v in (extra_info or {}).items()}
    options = {k: _plain(v) for k, v in kwargs.items()}
    return _compute_score(str(_plain(data_source)), solution_str, _plain(ground_truth), extra, **options)
