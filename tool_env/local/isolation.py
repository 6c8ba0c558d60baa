"""Isolation levels: decide once, loudly, how workers are walled off; build their launch plan.

- ``namespace``: each worker is a bubblewrap sandbox: new user, pid, net, ipc, uts and mount
  namespaces; a filesystem built from an allow-list (the system's /usr and libraries, the
  interpreter with its stdlib and site-packages, this package, a few loader files of /etc,
  whatever `SandboxConfig.extra_ro_paths` names: all read-only; a read-only minimal /dev;
  /proc of its own pid namespace); nothing else of the host exists inside. Every run then
  gets fresh user, mount and IPC namespaces with new size- and inode-capped tmpfs on /tmp
  (the work dir lives there) and /dev/shm (`run_namespaces`), so nothing a run leaves there
  reaches a later run. The zygote is pid 1, so killing it ends every process in the
  sandbox. When we are root, the sandbox is entered as a private unprivileged uid, so
  RLIMIT_NPROC is enforced per worker.
- ``rlimit``: no namespaces (the kernel or container forbids them). Runs still get rlimits, a
  clean environment, their own session, a private work dir and, when we are root, a private
  unprivileged uid per worker; but the network and the host filesystem (world-readable and
  world-writable places such as /tmp) stay reachable. Chosen only when asked for: ``auto``
  refuses to fall back to it.
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
PACKAGE_NAME = "tool_env"
SANDBOX_PACKAGE_ROOT = "/sandbox"  # where this package alone is bound inside (not its checkout)
SYSTEM_RO_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_RO_PATHS = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
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
    raise RuntimeError(
        f"SandboxConfig.isolation='auto' found no namespace isolation here ({problem}) and will not "
        "fall back to 'rlimit', where executed code reaches the network and the host filesystem "
        "(and, without root, runs as this process's own uid). Install bubblewrap and allow "
        "unprivileged user namespaces, or set isolation='rlimit' to accept that explicitly."
    )


@functools.lru_cache(maxsize=1)
def namespace_problem() -> str | None:
    """None if a bubblewrap sandbox starts Python here, else the reason it does not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    lease = UidLease.acquire() if running_as_root() else None
    try:
        probe = (
            f"import sys; sys.path.insert(0, {SANDBOX_PACKAGE_ROOT!r}); "
            "from tool_env.local.run_namespaces import enter_fresh_namespaces; "
            f"enter_fresh_namespaces({_fresh_namespaces(8 * 1024 * 1024, 64)!r})"
        )
        argv = _bwrap_argv(disk_mb=8) + [sys.executable, "-I", "-c", probe]
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
    extra = check_extra_paths(config.extra_ro_paths)
    root = SANDBOX_PACKAGE_ROOT if level == "namespace" else PACKAGE_ROOT
    boot = [sys.executable, "-I", "-c", BOOT.format(root=root)]
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
            scratch_dirs=[],  # nothing to wipe: every run gets fresh tmpfs mounts
            fresh_namespaces=_fresh_namespaces(config.disk_mb * 1024 * 1024, config.disk_inodes, extra),
            child_uid=None,  # the namespace maps a single uid; `user=` below drops us to it
            env=_minimal_env(NAMESPACE_WORKDIR),
        )
        argv = _bwrap_argv(disk_mb=config.disk_mb, extra_ro_paths=extra, hidden_paths=config.hidden_paths) + boot
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


PRIVATE_MOUNTS = ("/tmp", "/dev/shm")  # replaced by empty tmpfs inside the sandbox, for every run


def _fresh_namespaces(size_bytes: int, inodes: int, extra_ro_paths: list[str] = ()) -> dict[str, Any]:
    """What each run's child mounts for itself (see `run_namespaces`)."""
    return {
        "tmpfs": [{"path": path, "size_bytes": size_bytes, "inodes": inodes} for path in PRIVATE_MOUNTS],
        "keep_paths": interpreter_paths_to_keep(extra_ro_paths),
        "workdir": NAMESPACE_WORKDIR,
    }


def check_extra_paths(paths: tuple[str, ...]) -> list[str]:
    """`extra_ro_paths` as absolute existing paths, or a ValueError naming the bad one."""
    checked = []
    for path in paths:
        if not os.path.isabs(path) or not os.path.exists(path):
            raise ValueError(f"SandboxConfig.extra_ro_paths: {path!r} is not an existing absolute path")
        checked.append(os.path.normpath(path))
    return checked


def interpreter_paths() -> list[str]:
    """Host paths the sandboxed Python needs: its prefixes (stdlib, site-packages) and binary."""
    wanted = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    wanted |= {os.path.realpath(p) for p in list(wanted)}
    executable = os.path.realpath(sys.executable)
    wanted.add(os.path.dirname(executable))
    return _outermost(p for p in wanted if not _covered_by_system(p))


def _covered_by_system(path: str) -> bool:
    return any(path == s or path.startswith(s + "/") for s in SYSTEM_RO_PATHS)


def _outermost(paths: Any) -> list[str]:
    ordered = sorted(set(paths))
    return [p for i, p in enumerate(ordered) if not any(p.startswith(q + "/") for q in ordered[:i])]


def interpreter_paths_to_keep(extra_ro_paths: list[str] = ()) -> list[str]:
    """The read-only binds that a private /tmp or /dev/shm would hide, bound again over it.

    A virtualenv under /tmp (common in CI) holds the interpreter and its site-packages;
    it is bound back read-only, nothing else of the host's /tmp is.
    """
    return [
        p
        for p in _outermost([*interpreter_paths(), *extra_ro_paths])
        if any(p.startswith(m + "/") for m in PRIVATE_MOUNTS)
    ]


def filesystem_args(tmp_bytes: int, extra_ro_paths: list[str] = (), hidden_paths: tuple[str, ...] = ()) -> list[str]:
    """The sandbox's whole filesystem, built from an allow-list (the host root is not bound).

    System directories and loader files (symlinks such as a merged-/usr /lib stay symlinks),
    the interpreter's prefixes, this package alone at `SANDBOX_PACKAGE_ROOT`, and the
    configured extra paths: all read-only. /tmp comes before the binds so that an
    interpreter under /tmp is bound over it; /dev is bubblewrap's minimal one, made read-only.
    """
    args: list[str] = []
    for path in (*SYSTEM_RO_PATHS, *ETC_RO_PATHS):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    args += ["--dev", "/dev", "--proc", "/proc", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    bound = _outermost([*interpreter_paths(), *extra_ro_paths])
    for path in bound:
        args += ["--ro-bind", path, path]
    package = os.path.join(PACKAGE_ROOT, PACKAGE_NAME)
    args += ["--ro-bind", package, os.path.join(SANDBOX_PACKAGE_ROOT, PACKAGE_NAME)]
    args += mask_args(hidden_paths, [*SYSTEM_RO_PATHS, *bound])
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]  # no run may plant files for the next
    return args


def mask_args(hidden_paths: tuple[str, ...], bound_roots: list[str]) -> list[str]:
    """Hide host paths that an allowed bind would expose, e.g. a package's bundled answers in
    site-packages: a directory becomes an empty read-only tmpfs, a file unreadable. Paths
    outside every bound root are invisible anyway and need no mask, nor does a path inside
    another hidden one."""
    args: list[str] = []
    for path in _outermost(_sandbox_names(hidden_paths, bound_roots)):
        if os.path.isdir(path):
            args += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
        elif os.path.exists(path):
            args += ["--ro-bind", "/dev/null", path]
    return args


def _sandbox_names(hidden_paths: tuple[str, ...], bound_roots: list[str]) -> list[str]:
    """Every name a hidden path has inside the sandbox: one per bound root that leads to it,
    whether the root is bound under its own name or through a symlinked alias."""
    names = []
    for hidden in (os.path.realpath(p) for p in hidden_paths):
        for root in bound_roots:
            real_root = os.path.realpath(root).rstrip("/")
            if hidden == real_root or hidden.startswith(real_root + "/"):
                names.append(root.rstrip("/") + hidden[len(real_root):])
    return names


def _bwrap_argv(disk_mb: int, extra_ro_paths: list[str] = (), hidden_paths: tuple[str, ...] = ()) -> list[str]:
    return [
        "bwrap",
        "--unshare-all",  # user, pid, net (loopback only), ipc, uts, cgroup
        "--die-with-parent",
        "--as-pid-1",  # the zygote is init: its death kills the whole sandbox
        "--new-session",
        *filesystem_args(disk_mb * 1024 * 1024, extra_ro_paths, hidden_paths),
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_UID),
        "--hostname", "sandbox",
        "--cap-drop", "ALL",
        "--cap-add", "CAP_SYS_ADMIN",  # the zygote's only one, so each child can unshare and mount; dropped there
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

