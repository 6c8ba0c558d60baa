"""The one runtime patch the CPU platform needs outside verl's plugin API.

verl builds its process-group backend as ``"cpu:gloo,<device>:<backend>"``; with device ``cpu``
and backend ``gloo`` that reads ``"cpu:gloo,cpu:gloo"``, which torch rejects ("Duplicate device
type cpu"). The wrapper collapses such a string to the single backend it names.
"""

from __future__ import annotations

import functools
import logging

import torch.distributed

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
