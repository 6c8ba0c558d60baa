"""Fresh kernel state for every run: its own user, mount and IPC namespace and scratch tmpfs.

A pre-forked child enters these before it knows its code (off the caller's critical path).
Whatever a run plants in them (files in /tmp, the work dir or /dev/shm; SysV shared memory,
semaphores and message queues; POSIX message queues; a user keyring) belongs to namespaces
that die with the run's last process: the next run starts from new ones, and nothing has to
be walked and deleted (a million files or a tree thousands of levels deep cost the next
caller nothing). Each tmpfs is capped in bytes and in inodes.

The nested user namespace is what lets an unprivileged child mount and unshare; the child
then drops every capability it gained there before any code runs.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import os
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


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def enter_fresh_namespaces(spec: dict[str, Any]) -> None:
    """Unshare user+mount+IPC namespaces, mount fresh capped tmpfs, drop all capabilities.

    `spec`: ``{"tmpfs": [{"path", "size_bytes", "inodes"}...], "keep_paths": [...],
    "workdir": str}``; `keep_paths` are read-only binds (an interpreter under /tmp) that
    are bound again over the fresh tmpfs.
    """
    FreshNamespaces(spec).enter()


class FreshNamespaces:
    """A spec turned once into bytes, flags and ctypes structures.

    The zygote builds it before forking, so that a child entering its namespaces makes system
    calls, not Python objects: every object a fresh fork builds is written into pages it
    shares with the zygote, and each such page is copied.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.ids = (os.getuid(), os.getgid())
        self.id_maps = _id_maps(*self.ids)
        self.tmpfs = [
            (
                mount["path"].encode(),
                f"size={int(mount['size_bytes'])},nr_inodes={int(mount['inodes'])},mode=1777".encode(),
                f"mount tmpfs on {mount['path']}",
            )
            for mount in spec["tmpfs"]
        ]
        self.binds = [(path, path.encode(), f"bind {path}") for path in spec.get("keep_paths", ())]
        self.workdir = spec["workdir"]
        self.cap_header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
        self.cap_data = (_CapData * CAP_SETS_U32)()  # all zero: no capability at all

    def enter(self) -> None:
        ids = (os.getuid(), os.getgid())
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC), "unshare")
        for path, text in self.id_maps if ids == self.ids else _id_maps(*ids):
            _write(path, text)
        # Opened in the new mount namespace (a bind source must belong to it), before the tmpfs hides it.
        kept = [(path, target, what, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path, target, what in self.binds]
        try:
            for target, options, what in self.tmpfs:
                _check(_libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, options), what)
            for path, target, what, fd in kept:  # bound again, still read-only (the bind keeps its locked flags)
                os.makedirs(path, exist_ok=True)
                _check(_libc.mount(f"/proc/self/fd/{fd}".encode(), target, None, MS_BIND | MS_REC, None), what)
        finally:
            for *_, fd in kept:
                os.close(fd)
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        _check(_libc.capset(ctypes.byref(self.cap_header), self.cap_data), "capset")


def _id_maps(uid: int, gid: int) -> tuple[tuple[str, bytes], ...]:
    return (
        ("/proc/self/setgroups", b"deny"),
        ("/proc/self/uid_map", f"{uid} {uid} 1".encode()),
        ("/proc/self/gid_map", f"{gid} {gid} 1".encode()),
    )


def drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (the new user namespace granted all)."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * CAP_SETS_U32)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _write(path: str, text: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text)
    finally:
        os.close(fd)
