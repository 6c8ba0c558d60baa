"""Loaded by verl in every process of a smoke GRPO run (VERL_USE_EXTERNAL_MODULES, after the
CPU platform): registers the `r1ci_smoke_sync` trainer mode (trajectory_dump).

One process is special: a vLLM worker resolving our worker extension imports
r1ci_verl.cpu_platform before verl, so verl loads this module while the platform is still
half-registered, and importing verl's trainer there would fail on the unknown platform. That
process never builds a trainer, so registration is skipped there (the task runner imports
verl first and registers normally).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def platform_ready() -> bool:
    """Whether the platform VERL_PLATFORM names is registered yet."""
    from verl.plugin.platform import PlatformRegistry

    wanted = os.environ.get("VERL_PLATFORM", "").strip().lower()
    return not wanted or PlatformRegistry.get(wanted) is not None


if platform_ready():
    import r1ci_verl.smoke.trajectory_dump  # noqa: F401  (registers the trainer mode)
else:
    logger.info("r1ci smoke: trainer mode not registered in this process (platform still loading)")
