"""The two runtime patches the CPU platform needs outside verl's plugin API.

1. verl builds its process-group backend as ``"cpu:gloo,<device>:<backend>"``; with device
   ``cpu`` and backend ``gloo`` that reads ``"cpu:gloo,cpu:gloo"``, which torch rejects
   ("Duplicate device type cpu"). The wrapper collapses such a string to the single backend.
2. verl wraps the reference model (forward only) in FSDP2 with ``CPUOffloadPolicy(pin_memory=
   True)``; pinning needs an accelerator. On CPU the parameters already live in host memory, so
   the policy is swapped for one that never pins.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass

import torch.distributed
from torch.distributed.fsdp import CPUOffloadPolicy

logger = logging.getLogger(__name__)


def collapse_backend(backend: str | None) -> str | None:
    """``"cpu:gloo,cpu:gloo"`` -> ``"gloo"``; any other value is returned unchanged."""
    if not isinstance(backend, str) or ":" not in backend:
        return backend
    pairs = [part.split(":", 1) for part in backend.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        return backend
    devices = [device.strip() for device, _ in pairs]
    names = {name.strip() for _, name in pairs}
    if len(devices) != len(set(devices)) and len(names) == 1:
        return names.pop()
    return backend


def patch_process_group_backend() -> None:
    """Wrap `torch.distributed.init_process_group` so duplicate-device backends collapse."""
    original = torch.distributed.init_process_group
    if getattr(original, "_r1ci_collapses_backend", False):
        return

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        if "backend" in kwargs:
            kwargs["backend"] = collapse_backend(kwargs["backend"])
        elif args:
            args = (collapse_backend(args[0]), *args[1:])
        return original(*args, **kwargs)

    init_process_group._r1ci_collapses_backend = True
    torch.distributed.init_process_group = init_process_group
    logger.warning(
        "r1ci cpu_platform PATCHED torch.distributed.init_process_group: "
        "backend 'cpu:gloo,cpu:gloo' becomes 'gloo' (CPU smoke runs only)"
    )


@dataclass
class UnpinnedCPUOffloadPolicy(CPUOffloadPolicy):
    """CPUOffloadPolicy that ignores pin_memory=True (no accelerator to pin for)."""

    def __post_init__(self) -> None:
        self.pin_memory = False


# Modules whose `CPUOffloadPolicy` name verl's FSDP engine resolves.
_OFFLOAD_POLICY_HOLDERS = (
    "torch.distributed.fsdp",
    "torch.distributed._composable.fsdp",
    "verl.utils.fsdp_utils",
    "verl.workers.engine.fsdp.transformer_impl",
)


def patch_unpinned_offload_policy() -> None:
    """Make every `CPUOffloadPolicy` verl can construct an unpinned one."""
    import importlib

    for name in _OFFLOAD_POLICY_HOLDERS:
        module = sys.modules.get(name)
        if module is None and name.startswith("torch."):
            module = importlib.import_module(name)
        if module is not None and getattr(module, "CPUOffloadPolicy", None) is CPUOffloadPolicy:
            module.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy
    logger.warning(
        "r1ci cpu_platform PATCHED torch.distributed.fsdp.CPUOffloadPolicy: pin_memory is always False "
        "(CPU smoke runs only)"
    )
