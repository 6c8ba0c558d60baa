"""tool_env: run model-written Python safely and fast. Knows nothing of verl or tasks.

    from tool_env import SandboxConfig, create_sandbox
    with create_sandbox(SandboxConfig(timeout_s=10)) as sandbox:
        with sandbox.session() as session:
            result = session.run("print(6 * 7)")
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from tool_env.base import AsyncSession, Sandbox, SandboxClosedError, SandboxUnavailableError, Session
from tool_env.config import SandboxConfig
from tool_env.result import ExecutionError, ExecutionResult

# backend name -> "module:Class"; imported lazily so optional SDKs are only needed when used.
BACKENDS: dict[str, str] = {
    "local": "tool_env.local:LocalSandbox",
    "e2b": "tool_env.e2b:E2BSandbox",
    "ray": "tool_env.ray:RaySandbox",
}


def create_sandbox(config: SandboxConfig | Mapping[str, Any] | None = None) -> Sandbox:
    """Build the backend named by `config.backend`."""
    if not isinstance(config, SandboxConfig):
        config = SandboxConfig.from_mapping(config)
    module_name, _, class_name = BACKENDS[config.backend].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config)


__all__ = [
    "AsyncSession",
    "ExecutionError",
    "ExecutionResult",
    "Sandbox",
    "SandboxClosedError",
    "SandboxConfig",
    "SandboxUnavailableError",
    "Session",
    "create_sandbox",
]
