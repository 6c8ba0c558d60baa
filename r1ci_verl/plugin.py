"""verl plugin entry point (group ``verl.plugins``): registers our components in every process.

verl imports this module at ``import verl`` time in the driver and in every Ray worker, and
swallows plugin errors at debug level. A missing registration would surface much later as
"agent loop not registered", so failures here are logged at ERROR with the traceback.
"""

from __future__ import annotations

import importlib
import logging

logger = logging.getLogger("r1ci_verl.plugin")

# Modules whose import registers something with verl (agent loops, tool parsers, reward managers).
REGISTERING_MODULES: tuple[str, ...] = ("r1ci_verl.rollout.agent_loop",)


def register_all() -> list[str]:
    """Import every registering module; return the ones that failed (each logged loudly)."""
    failed = []
    for name in REGISTERING_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
            logger.error("r1ci: plugin could not import %s; its verl registrations are missing", name, exc_info=True)
    return failed


register_all()
