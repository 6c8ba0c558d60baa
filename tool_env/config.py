"""Sandbox configuration: every limit is a named, validated value (never a magic number)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

BACKENDS = ("local", "e2b", "ray")
ISOLATION_LEVELS = ("auto", "namespace", "rlimit")
# Node-aware sizing (pool_size: 0). Every process that runs a pool (each verl agent-loop worker)
# takes an equal share of this node's cores, within these bounds.
AUTO_POOL_MIN = 2  # a worker process always gets some parallelism
AUTO_POOL_MAX = 32  # beyond this a single process's event loop, not the CPUs, is the bottleneck
SESSIONS_PER_WORKER = 4  # auto cap of live stateful sessions per process, per pool slot
PROCESSES_PER_NODE_ENV = "R1CI_SANDBOX_PROCESSES_PER_NODE"
DEFAULT_PRELOAD = (
    "math", "itertools", "collections", "functools", "re", "json", "random", "numpy", "numpy.random", "sympy",
)


@dataclass
class SandboxConfig:
    """How code runs. Defaults follow the R1-CI paper (60 s per execution, stateless)."""

    backend: str = "local"
    isolation: str = "auto"  # auto: namespace, or an error where the kernel forbids it (rlimit only when named)
    timeout_s: float = 60.0  # wall clock per run
    max_output_chars: int = 8192  # per stream; head and tail kept, middle replaced by a notice
    memory_mb: int = 2048  # RLIMIT_AS of the child
    cpu_time_s: int = 120  # RLIMIT_CPU of the child (wall timeout usually fires first)
    max_processes: int = 64  # RLIMIT_NPROC / pid limit
    max_file_mb: int = 64  # RLIMIT_FSIZE
    max_open_files: int = 256  # RLIMIT_NOFILE
    disk_mb: int = 256  # size of each private tmpfs (/tmp with the work dir, /dev/shm) in namespace mode
    disk_inodes: int = 100_000  # files and directories each private tmpfs may hold (namespace mode)
    extra_ro_paths: tuple[str, ...] = ()  # host paths bound read-only into the namespace sandbox
    hidden_paths: tuple[str, ...] = ()  # host paths masked (empty, read-only) even under an allowed path
    preload_modules: tuple[str, ...] = DEFAULT_PRELOAD
    pool_size: int = 0  # concurrent runs (warm workers) per process; 0 = this process's share of the node
    processes_per_node: int = 0  # processes on this node that each run a pool; 0 = $R1CI_SANDBOX_PROCESSES_PER_NODE or 1
    max_sessions: int = 0  # live stateful sessions per process (each holds a worker); 0 = SESSIONS_PER_WORKER x pool
    stateful: bool = False  # sessions keep variables between runs (Jupyter-like)
    session_ttl_s: float = 900.0  # idle stateful sessions are closed after this
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific options (e.g. e2b api key env)

    def __post_init__(self) -> None:
        self.preload_modules = tuple(self.preload_modules)
        self.extra_ro_paths = tuple(self.extra_ro_paths)
        self.hidden_paths = tuple(self.hidden_paths)
        self.validate()

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"SandboxConfig.backend={self.backend!r}: expected one of {BACKENDS}")
        if self.isolation not in ISOLATION_LEVELS:
            raise ValueError(f"SandboxConfig.isolation={self.isolation!r}: expected one of {ISOLATION_LEVELS}")
        _check_range("timeout_s", self.timeout_s, 0.01, 3600)
        _check_range("max_output_chars", self.max_output_chars, 64, 10_000_000)
        _check_range("memory_mb", self.memory_mb, 64, 1_048_576)
        _check_range("cpu_time_s", self.cpu_time_s, 1, 86_400)
        _check_range("max_processes", self.max_processes, 1, 100_000)
        _check_range("max_file_mb", self.max_file_mb, 1, 1_048_576)
        _check_range("max_open_files", self.max_open_files, 16, 1_048_576)
        _check_range("disk_mb", self.disk_mb, 1, 1_048_576)
        _check_range("disk_inodes", self.disk_inodes, 64, 100_000_000)
        for name in ("extra_ro_paths", "hidden_paths"):
            for path in getattr(self, name):
                if not isinstance(path, str) or not path.startswith("/"):
                    raise ValueError(f"SandboxConfig.{name}: {path!r} is not an absolute path")
        _check_range("pool_size", self.pool_size, 0, 4096)
        _check_range("processes_per_node", self.processes_per_node, 0, 4096)
        _check_range("max_sessions", self.max_sessions, 0, 1_000_000)
        _check_range("session_ttl_s", self.session_ttl_s, 1, 7 * 86_400)

    @property
    def effective_pool_size(self) -> int:
        """pool_size, or this process's share of the node's cores (see auto_pool_size)."""
        return self.pool_size or auto_pool_size(usable_cpus(), self.effective_processes_per_node)

    @property
    def effective_processes_per_node(self) -> int:
        if self.processes_per_node:
            return self.processes_per_node
        value = os.environ.get(PROCESSES_PER_NODE_ENV, "").strip()
        if not value:
            return 1
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"${PROCESSES_PER_NODE_ENV}={value!r}: expected an integer >= 1")
        return int(value)

    @property
    def effective_max_sessions(self) -> int:
        return self.max_sessions or SESSIONS_PER_WORKER * self.effective_pool_size

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "SandboxConfig":
        """Build from a dict / OmegaConf node; unknown keys are an error that names them."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown sandbox config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, which containers and Ray narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_pool_size(cpus: int, processes_per_node: int) -> int:
    """Equal share of the node's cores per pool-running process, within [AUTO_POOL_MIN, AUTO_POOL_MAX].

    The floor may oversubscribe a small machine a little (2 per process); the cap keeps a
    192-core node with 8 agent-loop workers at 8 x 24 = 192 warm workers, not 8 x 192.
    """
    return max(AUTO_POOL_MIN, min(AUTO_POOL_MAX, cpus // max(1, processes_per_node)))


def _check_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"SandboxConfig.{name} must be a number, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"SandboxConfig.{name}={value} is outside [{lo}, {hi}]")
