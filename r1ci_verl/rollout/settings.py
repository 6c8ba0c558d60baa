"""Settings of the code-interpreter agent loop.

Settings come from three layers, later ones winning: defaults here, the loop's entry in the
agent-loop YAML (``actor_rollout_ref.rollout.agent.agent_loop_config_path``), and the hydra
node ``r1ci.agent_loop`` of the trainer config (``+r1ci.agent_loop.max_code_calls=4``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Mapping

from reward_fns import protocol
from r1ci_verl.rollout.sandbox_service import hide_task_data
from tool_env import SandboxConfig


HYDRA_NODE = ("r1ci", "agent_loop")  # trainer-config path of command-line overrides
LOOP_TARGET = "r1ci_verl.rollout.agent_loop.CodeInterpreterAgentLoop"
ENTRY_KEYS = ("name", "_target_")  # keys of an agent-loop YAML entry that verl itself reads
MAX_GENERATE_CALLS = 64  # engine calls per trajectory; guards against an engine that stops without progress


@dataclass
class AgentLoopSettings:
    """What the loop does between engine calls. Defaults follow the R1-CI paper."""

    max_code_calls: int = protocol.MAX_CODE_CALLS  # blocks beyond this get the call-limit notice
    add_system_prompt: bool = True  # prepend protocol.SYSTEM_PROMPT when the row has no system message
    use_stop_strings: bool = True  # ask the engine to pause at a closing fence (the loop cuts anyway)
    stop_after_answer: bool = True  # a <<<answer>>> ends the trajectory: code after it is not run
    max_generate_calls: int = MAX_GENERATE_CALLS
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)

    def __post_init__(self) -> None:
        if isinstance(self.sandbox, Mapping) or self.sandbox is None:
            self.sandbox = SandboxConfig.from_mapping(self.sandbox)
        self.sandbox = hide_task_data(self.sandbox)
        for name in ("add_system_prompt", "use_stop_strings", "stop_after_answer"):
            value = getattr(self, name)
            if not isinstance(value, bool):  # the string "false" would read as true
                raise ValueError(f"agent_loop.{name} must be true or false, got {value!r}")
        for name, least in (("max_code_calls", 0), ("max_generate_calls", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"agent_loop.{name} must be an int >= {least}, got {value!r}")

    @classmethod
    def from_layers(cls, *layers: Mapping[str, Any] | None) -> "AgentLoopSettings":
        """Merge mappings (later wins; the ``sandbox`` sub-mapping merges key by key)."""
        known = {f.name for f in fields(cls)}
        merged: dict[str, Any] = {}
        sandbox: dict[str, Any] = {}
        for layer in layers:
            values = _plain(layer)
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(unknown_keys_message(unknown, "agent_loop settings"))
            sandbox.update(_plain(values.pop("sandbox", None)))
            merged.update(values)
        return cls(**merged, sandbox=SandboxConfig.from_mapping(sandbox))


def _plain(values: Any) -> dict[str, Any]:
    """A plain dict from None, a dict or an OmegaConf node."""
    if values is None:
        return {}
    if hasattr(values, "_content"):  # OmegaConf node, without importing omegaconf here
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(values, resolve=True)
    if not isinstance(values, Mapping):
        raise TypeError(f"expected a mapping of settings, got {type(values).__name__}")
    return dict(values)


def _known_keys() -> list[str]:
    """Top-level settings and ``sandbox.<key>``: the names a typo is matched against."""
    top = [f.name for f in fields(AgentLoopSettings)]
    return top + [f"sandbox.{f.name}" for f in fields(SandboxConfig)]


def unknown_keys_message(keys: Iterable[str], source: str) -> str:
    """``unknown key 'max_code_cals' in <source> (did you mean 'max_code_calls'?)``, one per key."""
    known = _known_keys()
    by_leaf = {name.rsplit(".", 1)[-1]: name for name in reversed(known)}  # `stateful` -> `sandbox.stateful`
    parts = []
    for key in keys:
        guess = by_leaf.get(key) if key not in known else None
        guess = guess or next(iter(difflib.get_close_matches(key, known, n=1)), None)
        parts.append(f"unknown key {key!r}" + (f" (did you mean {guess!r}?)" if guess else ""))
    return f"{'; '.join(parts)} in {source}; known keys: {', '.join(known)}"


def check_agent_loop_file(path: str | None) -> None:
    """Validate our entries of an agent-loop YAML file before training starts (the driver).

    verl reads the file only when a worker builds the first loop; checking it up front turns
    a typo into an error at launch instead of after the models have loaded.
    """
    import os

    import yaml

    if not path or not os.path.isfile(path):  # verl itself reports a missing file, where it reads it
        return

    with open(path, encoding="utf-8") as f:
        entries = yaml.safe_load(f) or []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get("_target_") != LOOP_TARGET:
            continue
        values = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
        known = {f.name for f in fields(AgentLoopSettings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(unknown_keys_message(unknown, f"the {entry.get('name')!r} entry of {path}"))
        try:
            AgentLoopSettings.from_layers(values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{exc}, in the {entry.get('name')!r} entry of {path}") from None
