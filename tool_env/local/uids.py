"""Private uids for workers, leased through lock files so concurrent sandboxes never share one.

A worker's runs use their own unprivileged uid: RLIMIT_NPROC then counts only that
worker's processes (root is exempt from it), root-only host files stay unreadable, and
``kill(-1)`` with that uid reaches exactly the processes the runs left behind. The lease
is an flock on a file in a root-only directory; the kernel drops it if the process dies.
"""

from __future__ import annotations

import fcntl
import os
import random

UID_FIRST = 2_000_000  # far above login and container sub-uid ranges
UID_COUNT = 1_000_000
LEASE_DIR = "/run/tool_env-uids"
FALLBACK_LEASE_DIR = "/tmp/tool_env-uids"
ATTEMPTS = 256


class UidLease:
    """An exclusive claim on one uid for as long as the lease is held."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    @classmethod
    def acquire(cls) -> "UidLease":
        directory = _lease_dir()
        rng = random.SystemRandom()
        for _ in range(ATTEMPTS):
            uid = UID_FIRST + rng.randrange(UID_COUNT)
            fd = os.open(os.path.join(directory, f"{uid}.lock"), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(uid, fd)
        raise RuntimeError(f"no free sandbox uid after {ATTEMPTS} attempts in {directory}")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _lease_dir() -> str:
    for directory in (LEASE_DIR, FALLBACK_LEASE_DIR):
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            if os.stat(directory).st_uid == os.geteuid():
                os.chmod(directory, 0o700)  # runs must not open (and flock) the lease files
                return directory
        except OSError:
            continue
    raise RuntimeError(f"cannot create a private uid lease directory ({LEASE_DIR} or {FALLBACK_LEASE_DIR})")
