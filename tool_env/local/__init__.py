"""Local backend: pre-forked sandboxed workers on this machine (see sandbox.py)."""

from tool_env.local.sandbox import LocalAsyncSession, LocalSandbox, LocalSession

__all__ = ["LocalAsyncSession", "LocalSandbox", "LocalSession"]
