"""Local backend: pre-forked sandboxed workers on this machine (see sandbox.py).

Names are imported lazily: the zygote imports `tool_env.local.zygote` inside the sandbox
and must not pull in the host-side machinery (threads, asyncio, subprocess) it never uses;
every module it loads makes each fork a little more expensive.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalAsyncSession", "LocalSandbox", "LocalSession"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tool_env.local import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module 'tool_env.local' has no attribute {name!r}")
