"""Isolation levels: decide once, loudly, how workers are walled off; build their launch plan.

- ``namespace``: each worker is a bubblewrap sandbox: new user, pid, net, ipc, uts and mount
  namespaces; the host filesystem read-only; private size-capped tmpfs on /tmp (the work dir
  lives there) and /dev/shm; the zygote is pid 1, so killing it ends every process in the
  sandbox. When we are root, the sandbox is entered as a private unprivileged uid, so host
  files readable only by root stay unreadable and RLIMIT_NPROC is enforced.
- ``rlimit``: no namespaces (the kernel or container forbids them). Runs still get rlimits, a
  clean environment, their own session, a private work dir and, when we are root, a private
  unprivileged uid per worker; but the network and the host filesystem (world-readable and
  world-writable places such as /tmp) stay reachable. Chosen only when asked for, or by
  ``auto`` with a warning naming the reason.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tool_env.config import SandboxConfig
from tool_env.local.uids import UidLease

log = logging.getLogger(__name__)

SANDBOX_UID = 1000  # the uid code sees inside a namespace sandbox
NAMESPACE_WORKDIR = "/tmp/work"
PROBE_TIMEOUT_S = 20.0
STREAM_BYTES_PER_CHAR = 64  # a run printing this much more than the cap is stopped, not drained for minutes
MIN_STREAM_BYTES = 16 * 1024 * 1024
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding tool_env/
BOOT = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from tool_env.local.zygote import main; main()"
)


@dataclass
class LaunchPlan:
    """Everything needed to start one worker; owns the uid lease and host work dir."""

    level: str
    argv: list[str]
    env: dict[str, str]
    settings: dict[str, Any]
    user: int | None = None
    lease: UidLease | None = None
    host_dir: str | None = None

    def release(self) -> None:
        if self.host_dir:
            shutil.rmtree(self.host_dir, ignore_errors=True)
            self.host_dir = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None


def running_as_root() -> bool:
    return os.geteuid() == 0


def resolve_isolation(requested: str) -> str:
    """The level workers will use; raises if `namespace` was demanded but is unavailable."""
    if requested == "rlimit":
        log.warning(
            "tool_env sandbox: isolation=rlimit (requested): no namespaces; network and host "
            "filesystem remain reachable from executed code."
        )
        return "rlimit"
    problem = namespace_problem()
    if problem is None:
        log.info("tool_env sandbox: isolation=namespace (bubblewrap)")
        return "namespace"
    if requested == "namespace":
        raise RuntimeError(f"SandboxConfig.isolation='namespace' is unavailable: {problem}")
    log.warning(
        "tool_env sandbox: FALLING BACK to isolation=rlimit because namespaces are unavailable "
        "(%s). Executed code can reach the network and read world-readable host files. "
        "Install bubblewrap and allow unprivileged user namespaces for full isolation.",
        problem,
    )
    return "rlimit"


@functools.lru_cache(maxsize=1)
def namespace_problem() -> str | None:
    """None if a bubblewrap sandbox starts Python here, else the reason it does not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    lease = UidLease.acquire() if running_as_root() else None
    try:
        argv = _bwrap_argv(disk_mb=8) + [sys.executable, "-I", "-c", "import os; os.getpid()"]
        proc = subprocess.run(
            argv,
            env=_minimal_env(NAMESPACE_WORKDIR),
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            **user_kwargs(lease.uid if lease else None),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap probe failed: {exc}"
    finally:
        if lease is not None:
            lease.release()
    if proc.returncode != 0:
        return f"bwrap probe exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:300]}"
    return None


def build_plan(level: str, config: SandboxConfig) -> LaunchPlan:
    """Launch plan for one worker at `level` (a fresh uid lease and work dir each time)."""
    lease = UidLease.acquire() if running_as_root() else None
    uid = lease.uid if lease else None
    boot = [sys.executable, "-I", "-c", BOOT.format(root=PACKAGE_ROOT)]
    rlimits = {
        "RLIMIT_AS": config.memory_mb * 1024 * 1024,
        "RLIMIT_CPU": int(config.cpu_time_s),
        "RLIMIT_NPROC": int(config.max_processes),
        "RLIMIT_FSIZE": config.max_file_mb * 1024 * 1024,
        "RLIMIT_NOFILE": int(config.max_open_files),
        "RLIMIT_CORE": 0,
    }
    settings: dict[str, Any] = {
        "preload": list(config.preload_modules),
        "rlimits": rlimits,
        "max_output_chars": config.max_output_chars,
        "max_stream_bytes": max(MIN_STREAM_BYTES, config.max_output_chars * STREAM_BYTES_PER_CHAR),
    }
    if level == "namespace":
        settings.update(
            kill_mode="pidns",
            workdir=NAMESPACE_WORKDIR,
            scratch_dirs=list(PRIVATE_MOUNTS),
            keep_paths=interpreter_paths_to_keep(),
            child_uid=None,  # the namespace maps a single uid; `user=` below drops us to it
            env=_minimal_env(NAMESPACE_WORKDIR),
        )
        argv = _bwrap_argv(disk_mb=config.disk_mb) + boot
        return LaunchPlan(level, argv, settings["env"], settings, user=uid, lease=lease)
    host_dir = tempfile.mkdtemp(prefix="tool_env-")
    os.chmod(host_dir, 0o711)  # the run's uid may enter its work dir, not list siblings
    workdir = os.path.join(host_dir, "work")
    settings.update(
        kill_mode="uid" if uid is not None else "tree",
        workdir=workdir,
        scratch_dirs=[host_dir],
        child_uid=uid,
        env=_minimal_env(workdir),
    )
    return LaunchPlan(level, boot, settings["env"], settings, user=None, lease=lease, host_dir=host_dir)


PRIVATE_MOUNTS = ("/tmp", "/dev/shm")  # replaced by empty tmpfs inside the sandbox


def interpreter_paths_to_keep() -> list[str]:
    """Host paths the sandboxed Python needs that a private /tmp or /dev/shm would hide.

    A checkout or virtualenv under /tmp (common in CI) holds the interpreter, its
    site-packages and this package; they are bound back read-only, nothing else of /tmp is.
    """
    wanted = {sys.prefix, sys.base_prefix, sys.exec_prefix, PACKAGE_ROOT, os.path.dirname(sys.executable)}
    wanted |= {os.path.realpath(p) for p in list(wanted)}
    hidden = sorted(
        p for p in wanted if any(p == m or p.startswith(m + "/") for m in PRIVATE_MOUNTS) and p not in PRIVATE_MOUNTS
    )
    return [p for i, p in enumerate(hidden) if not any(p.startswith(q + "/") for q in hidden[:i])]


def _bwrap_argv(disk_mb: int) -> list[str]:
    size = str(disk_mb * 1024 * 1024)
    keep = [arg for path in interpreter_paths_to_keep() for arg in ("--ro-bind", path, path)]
    return [
        "bwrap",
        "--unshare-all",  # user, pid, net (loopback only), ipc, uts, cgroup
        "--die-with-parent",
        "--as-pid-1",  # the zygote is init: its death kills the whole sandbox
        "--new-session",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--size", size, "--tmpfs", "/tmp",
        "--size", size, "--tmpfs", "/dev/shm",
        *keep,
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_UID),
        "--hostname", "sandbox",
        "--cap-drop", "ALL",
        "--chdir", "/tmp",
        "--",
    ]


def _minimal_env(workdir: str) -> dict[str, str]:
    """The whole environment code sees: nothing inherited from the host."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def user_kwargs(uid: int | None) -> dict[str, Any]:
    if uid is None:
        return {}
    return {"user": uid, "group": uid, "extra_groups": []}

