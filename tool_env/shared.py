"""One sandbox per configuration per process, shared by every caller in that process.

Warm workers cost an interpreter start each, so the agent loop and the tool of one rollout
worker share one pool instead of starting one per trajectory. Lifetime: a shared sandbox is
created on first use and closed by `close_shared_sandboxes()`, which runs at interpreter exit
and may be called earlier (tests, a worker that shuts down its rollout).
"""

from __future__ import annotations

import atexit
import json
import logging
import threading

from tool_env.base import Sandbox
from tool_env.config import SandboxConfig

logger = logging.getLogger(__name__)

_sandboxes: dict[str, Sandbox] = {}
_sandboxes_lock = threading.Lock()


def shared_sandbox(config: SandboxConfig) -> Sandbox:
    """The process-wide sandbox for `config`.

    Callers pass `stateful` when they open a session, so it is not part of the key: the agent
    loop and the tool share one warm pool even when one of them keeps state.
    """
    from tool_env import create_sandbox

    key = json.dumps({**config.to_dict(), "stateful": None}, sort_keys=True, default=str)
    with _sandboxes_lock:
        sandbox = _sandboxes.get(key)
        if sandbox is None:
            logger.info("tool_env: starting %s sandbox shared by this process", config.backend)
            sandbox = _sandboxes[key] = create_sandbox(config)
        return sandbox


@atexit.register
def close_shared_sandboxes() -> None:
    """Close every shared sandbox; the next `shared_sandbox` call starts a fresh one."""
    with _sandboxes_lock:
        sandboxes = list(_sandboxes.values())
        _sandboxes.clear()
    for sandbox in sandboxes:
        try:
            sandbox.close()
        except Exception:  # closing at exit must not mask the real exit status
            logger.exception("tool_env: closing a shared sandbox failed")
