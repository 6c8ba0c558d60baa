"""The writable places a run may leave files in, and their wipe (the rlimit level's host dirs).

At the namespace level every run mounts fresh tmpfs instead (`run_namespaces`) and nothing is
wiped here. The wipe is iterative and works through directory file descriptors, so a tree
thousands of levels deep (deeper than PATH_MAX, deeper than Python's recursion limit) is
removed like any other; directories a run chmod-ed away are made writable first. Paths in
`keep` (read-only binds inside a scratch directory) survive.
Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
WORKDIR_MODE = 0o700  # the rlimit level's work dirs sit in the host's /tmp: other workers' runs (other
# uids) could list it and read what a run wrote there (files are created 0644)


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
        os.chmod(self.workdir, WORKDIR_MODE)

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
        if holds(entry.path, keep):  # an ancestor of a kept bind: a few levels at most
            wipe(entry.path, keep)
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                remove_tree(path, entry.name)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def remove_tree(parent: str, name: str) -> None:
    """Delete directory `parent/name` and everything below it, without recursion.

    Walks down through directory fds (open the child relative to the current one, close
    the current one), so neither the path length nor the depth is limited; comes back up
    through ``..`` and removes each emptied directory from its parent.
    """
    fd = os.open(parent, DIR_FLAGS)
    names: list[str] = []  # the path from `parent` to where `fd` points
    try:
        _make_writable(fd, name)
        fd = _descend(fd, name)
        names.append(name)
        while names:
            subdir = _empty_files_and_find_subdir(fd)
            if subdir is not None:
                _make_writable(fd, subdir)
                fd = _descend(fd, subdir)
                names.append(subdir)
                continue
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)


def _descend(fd: int, name: str) -> int:
    child = os.open(name, DIR_FLAGS, dir_fd=fd)
    os.close(fd)
    return child


def _make_writable(dir_fd: int, name: str) -> None:
    try:
        os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd)
    except OSError:
        pass


def _empty_files_and_find_subdir(fd: int) -> str | None:
    """Unlink every non-directory in `fd`; return one subdirectory's name, or None."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            try:
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
    return None
