"""The writable places a run may leave files in (work dir, /tmp, /dev/shm), and their wipe.

Paths bound read-only inside a scratch directory (an interpreter under /tmp) survive the wipe.
Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import os
import shutil


class Scratch:
    """The scratch directories of one worker; the work dir is recreated after each wipe."""

    def __init__(self, dirs: list[str], workdir: str, keep_paths: tuple[str, ...], owner_uid: int | None) -> None:
        self.dirs = [d for d in dirs if d]
        self.workdir = workdir
        self.keep_paths = keep_paths
        self.owner_uid = owner_uid

    def make_workdir(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        if self.owner_uid is not None and os.getuid() == 0:
            os.chown(self.workdir, self.owner_uid, self.owner_uid)

    def used(self) -> bool:
        """Cheap check that skips the wipe for the common run that wrote no files."""
        for path in self.dirs:
            if has_entries(path, skip=(self.workdir, *self.keep_paths)):
                return True
        try:
            return bool(os.listdir(self.workdir))
        except OSError:
            return True

    def wipe(self) -> None:
        for path in self.dirs:
            wipe(path, self.keep_paths)
        self.make_workdir()

    def wipe_all(self) -> None:
        """At shutdown: nothing is kept."""
        for path in self.dirs:
            wipe(path)


def holds(entry_path: str, paths: tuple[str, ...]) -> bool:
    """True if `entry_path` is an ancestor of one of `paths` (a directory to descend into)."""
    return any(p.startswith(entry_path + "/") for p in paths)


def has_entries(path: str, skip: tuple[str, ...]) -> bool:
    """Whether `path` holds anything besides the `skip` paths and their parent directories."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.path in skip:
                    continue
                if not holds(entry.path, skip) or has_entries(entry.path, skip):
                    return True
    except OSError:
        pass
    return False


def wipe(path: str, keep: tuple[str, ...] = ()) -> None:
    """Empty a scratch directory even if the run chmod-ed things away; `keep` paths survive."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.path in keep:
            continue
        if holds(entry.path, keep):
            wipe(entry.path, keep)
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                make_writable(entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def make_writable(top: str) -> None:
    for root, dirs, _ in os.walk(top):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700)
            except OSError:
                pass
    try:
        os.chmod(top, 0o700)
    except OSError:
        pass
