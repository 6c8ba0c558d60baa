"""The Ray keys of SandboxConfig.extra, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tool_env.config import BACKENDS

@dataclass(frozen=True)
class RayPoolOptions:
    """The Ray keys of SandboxConfig.extra, validated."""

    num_actors: int = 2
    actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})
    inner_backend: str = "local"
    call_slack_s: float = 60.0
    start_timeout_s: float = 300.0
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RayPoolOptions:
        keys = {f"ray_{name}": name for name in cls.__dataclass_fields__ if name != "inner_backend"}
        keys["inner_backend"] = "inner_backend"
        unknown = sorted(k for k in extra if k.startswith("ray_") and k not in keys)
        if unknown:
            raise ValueError(f"unknown Ray pool options {unknown} in SandboxConfig.extra; known: {sorted(keys)}")
        values = {name: extra[key] for key, name in keys.items() if key in extra}
        for name in ("actor_options", "init_kwargs"):
            if name in values:
                values[name] = dict(values[name])  # OmegaConf nodes -> plain dicts Ray accepts
        options = cls(**values)
        if not isinstance(options.num_actors, int) or isinstance(options.num_actors, bool) or options.num_actors < 1:
            raise ValueError(f"SandboxConfig.extra['ray_num_actors'] must be an int >= 1, got {options.num_actors!r}")
        if options.inner_backend not in BACKENDS or options.inner_backend == "ray":
            raise ValueError(
                f"SandboxConfig.extra['inner_backend']={options.inner_backend!r}: expected one of "
                f"{[b for b in BACKENDS if b != 'ray']}"
            )
        for name in ("call_slack_s", "start_timeout_s"):
            if not getattr(options, name) > 0:
                raise ValueError(f"SandboxConfig.extra['ray_{name}'] must be > 0, got {getattr(options, name)}")
        return options

