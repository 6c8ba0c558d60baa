"""A `cpu` platform for verl 0.9.1, which ships only CUDA/NPU/ROCm ones.

verl asks its platform for a device name, a ``torch.cuda``-like module, a collective backend
and a Ray resource name. On a CPU-only machine every answer here is the CPU one, except the
Ray resource: trainer ranks still ask Ray for a "GPU" each, so the smoke run reserves fake GPUs
(``ray_init.num_gpus``) and the same placement code path as on a cluster runs.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

PLATFORM_NAME = "cpu"


class CpuDeviceModule(types.ModuleType):
    """Answers the ``torch.cuda.*`` calls verl makes, the CPU way.

    Memory statistics are 0 (nothing to report), RNG state is the CPU generator's, streams and
    events come from ``torch.cpu``. Anything else falls through to ``torch.cpu`` so that an
    unknown call fails with a plain AttributeError naming it.
    """

    def __init__(self) -> None:
        super().__init__("r1ci_cpu_device")

    # Device management
    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def current_device(self) -> str:
        return "cpu"  # like torch.cpu.current_device(): `.to(current_device())` must stay on CPU

    def set_device(self, device: Any) -> None:
        return None

    def get_device_name(self, device: Any = None) -> str:
        return "cpu"

    def synchronize(self, device: Any = None) -> None:
        return None

    # Memory: the host allocator has no cache or peak counters worth reporting.
    def empty_cache(self) -> None:
        return None

    def ipc_collect(self) -> None:
        return None

    def memory_allocated(self, device: Any = None) -> int:
        return 0

    def max_memory_allocated(self, device: Any = None) -> int:
        return 0

    def memory_reserved(self, device: Any = None) -> int:
        return 0

    def max_memory_reserved(self, device: Any = None) -> int:
        return 0

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        return None

    def mem_get_info(self, device: Any = None) -> tuple[int, int]:
        import psutil

        memory = psutil.virtual_memory()
        return memory.available, memory.total

    def set_per_process_memory_fraction(self, fraction: float, device: Any = None) -> None:
        return None

    # RNG: the CPU default generator is the one sampling and dropout use here.
    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def get_rng_state(self, device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    def set_rng_state(self, state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)


@PlatformRegistry.register(platform=PLATFORM_NAME)
class CpuPlatform(PlatformBase):
    """verl platform for CPU smoke runs (gloo collectives, shared-memory weight sync)."""

    _device_module = CpuDeviceModule()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # never auto-detected: chosen explicitly with VERL_PLATFORM=cpu

    def current_device(self) -> str:  # type: ignore[override]
        # verl calls `.to(get_device_id())`; an int would mean "accelerator 0", "cpu" stays here.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"  # placement asks for one "GPU" per rank; the smoke run declares fake ones

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False  # no CUDA IPC: verl falls back to shared memory for the weight sync

    def cudart(self) -> Any:
        return None
