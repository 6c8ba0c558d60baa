"""Fresh kernel state for every run: its own user, mount and IPC namespace and scratch tmpfs.

A pre-forked child enters these before it knows its code (off the caller's critical path).
Whatever a run plants in them (files in /tmp, the work dir or /dev/shm; SysV shared memory,
semaphores and message queues; POSIX message queues; a user keyring) belongs to namespaces
that die with the run's last process: the next run starts from new ones, and nothing has to
be walked and deleted (a million files or a tree thousands of levels deep cost the next
caller nothing). Each tmpfs is capped in bytes and in inodes.

The zygote keeps CAP_SYS_ADMIN of its sandbox's user namespace (bubblewrap's `--cap-add`)
so that a child can unshare and mount; without it the child first enters a nested user
namespace of its own (about 0.5 ms more per run). Either way the child drops every
capability before any code runs.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_REC = 0x4000
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_SETS_U32 = 2  # version 3 capability data: two 32-bit words per set

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


@dataclass(frozen=True)
class Prepared:
    """A run's mounts as ready-made system-call arguments (built in the zygote, not per child)."""

    tmpfs: tuple[tuple[bytes, bytes], ...]  # (mount point, options)
    keep_paths: tuple[str, ...]
    workdir: str


def prepare(spec: dict[str, Any]) -> Prepared:
    """`spec`: ``{"tmpfs": [{"path", "size_bytes", "inodes"}...], "keep_paths": [...],
    "workdir": str}``; `keep_paths` are read-only binds (an interpreter under /tmp) that are
    bound again over the fresh tmpfs."""
    tmpfs = tuple(
        (m["path"].encode(), f"size={int(m['size_bytes'])},nr_inodes={int(m['inodes'])},mode=1777".encode())
        for m in spec["tmpfs"]
    )
    return Prepared(tmpfs, tuple(spec.get("keep_paths", ())), spec["workdir"])


def enter_fresh_namespaces(spec: dict[str, Any] | Prepared) -> None:
    """Unshare mount+IPC namespaces, mount fresh capped tmpfs, drop all capabilities."""
    plan = spec if isinstance(spec, Prepared) else prepare(spec)
    if _libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:  # no CAP_SYS_ADMIN here: via a user namespace
        uid, gid = os.getuid(), os.getgid()
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    # Opened in the new mount namespace (a bind source must belong to it), before the tmpfs hides it.
    kept = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path in plan.keep_paths]
    try:
        for target, options in plan.tmpfs:
            _check(_libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, options), f"mount tmpfs on {target!r}")
        for path, fd in kept:  # bound again, still read-only (the bind keeps its locked flags)
            os.makedirs(path, exist_ok=True)
            _check(
                _libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None),
                f"bind {path}",
            )
    finally:
        for _, fd in kept:
            os.close(fd)
    os.mkdir(plan.workdir, 0o700)
    drop_capabilities()


_CAP_HEADER = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
_NO_CAPS = (_CapData * CAP_SETS_U32)()


def drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets."""
    _check(_libc.capset(ctypes.byref(_CAP_HEADER), _NO_CAPS), "capset")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
