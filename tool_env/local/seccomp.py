"""A small seccomp filter for runs: no kernel keyrings, no new user namespaces, no memory
that escapes the run's limits.

Kernel keyrings are not fully namespaced: keys are checked against the global uid, so a key
a run plants (and makes readable to its uid) could be found by a later run of the same uid
through /proc/keys. Model code has no use for keyrings; the calls fail with EPERM, as under
Docker's default profile.

A new user namespace gives its creator every capability over the mounts it makes there: a
run could mount a tmpfs with no size cap (`unshare -Urm mount -t tmpfs ...`) and fill the
host's memory through it, outside `RLIMIT_AS` and the `disk_mb` cap of its own /tmp. So
`unshare` and `clone` with CLONE_NEWUSER fail with EPERM, and `clone3`, whose flags sit in
memory a filter cannot read, fails with ENOSYS (the C library then falls back to `clone`,
as under Docker's default profile). The zygote's own children enter their namespaces before
the filter is installed.

Shared memory that no mapping holds does not count toward `RLIMIT_AS`: a run could write
64 MB (`max_file_mb`) into each of hundreds of `memfd_create` files, or attach, fill and
detach SysV segments one after another (`shmmax` and `shmall` have no practical cap), and
hold gigabytes of the host's memory. `memfd_create` fails with EPERM; `shmget` is refused
for a segment over `SHM_SEGMENT_MAX_BYTES`, so the IPC namespace's 4,096 segments hold at
most 256 MiB, as much as one `disk_mb` tmpfs (POSIX shared memory lives in the capped
/dev/shm).

Concurrent runs in other workers see the same files (the read-only binds are the host's
inodes), so a file of site-packages could carry signals between them: an exclusive `flock`
one run takes and another probes, or the open and access events `inotify` (or unprivileged
`fanotify`) reports for files another run imports. Exclusive `flock` fails with ENOLCK
(shared ones never conflict with each other; `fcntl` read locks, all a read-only file
allows, never conflict with each other), and the watch calls fail with EPERM, as does
directory notification (`fcntl` `F_NOTIFY`, the older inotify), which reported a read of any
file in a shared directory just the same. Left open: a read lock is seen by `F_GETLK`, which
asks whether a write lock would conflict, but SQLite needs that command (WAL mode).

Two kernel interfaces model code has no use for and kernel exploits lean on are absent:
`io_uring` (its own path into most system calls, the source of many privilege escalations;
Docker's default profile and Android refuse it too) and `userfaultfd` (which lets a process
stall the kernel at a page of its choosing, widening race windows). Both fail with ENOSYS,
so a library that probes for them takes its ordinary path.

Every system call of another ABI is refused: an x86-64 process may still enter the kernel
through the i386 one (`int 0x80`, with its own numbers), where none of these rules would
apply; x32 numbers are refused likewise.

Installed after PR_SET_NO_NEW_PRIVS, inherited by everything the run starts, and impossible
to remove. Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from dataclasses import dataclass

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
SECCOMP_DATA_ARG0_LOW = 16  # args[0], its low 32 bits (both known machines are little-endian)
X32_SYSCALL_BIT = 0x40000000
SECCOMP_DATA_ARG1_LOW = 24
SECCOMP_DATA_ARG1_HIGH = 28
CLONE_NEWUSER = 0x10000000
SHM_SEGMENT_MAX_BYTES = 64 * 1024  # x shmmni (4096 per IPC namespace) = 256 MiB at most
LOCK_EX = 2
F_NOTIFY = 1026  # fcntl's directory notification


@dataclass(frozen=True)
class Syscalls:
    """One machine's audit arch and the system-call numbers the filter names."""

    arch: int
    keyrings: tuple[int, ...]  # add_key, request_key, keyctl
    unshare: int
    clone: int  # its flags are the first argument on both machines
    clone3: int
    memfd_create: int
    shmget: int  # its size is the second argument
    watchers: tuple[int, ...]  # inotify_init (x86-64 only), inotify_init1, fanotify_init
    flock: int  # its operation is the second argument
    fcntl: int  # its command is the second argument
    absent: tuple[int, ...]  # io_uring_setup, io_uring_enter, io_uring_register, userfaultfd
    refuse_x32: bool  # whether x32 numbers must be refused


KNOWN_SYSCALLS = {
    "x86_64": Syscalls(0xC000003E, (248, 249, 250), unshare=272, clone=56, clone3=435,
                       memfd_create=319, shmget=29, watchers=(253, 294, 300), flock=73, fcntl=72,
                       absent=(425, 426, 427, 323), refuse_x32=True),
    "aarch64": Syscalls(0xC00000B7, (217, 218, 219), unshare=97, clone=220, clone3=435,
                        memfd_create=279, shmget=194, watchers=(26, 262), flock=32, fcntl=25,
                        absent=(425, 426, 427, 282), refuse_x32=False),
}


def run_filter(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The BPF program (code, jt, jf, k) for this machine, None where it is not known."""
    calls = KNOWN_SYSCALLS.get(machine)
    if calls is None:
        return None
    # Assembled with labels: a jump target is a label, resolved to a relative offset below.
    body: list[tuple[int, object, object, int]] = [
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        (BPF_JEQ_K, 0, "deny", calls.arch),  # another ABI (i386's `int 0x80`) would dodge every rule
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ]
    if calls.refuse_x32:
        body.append((BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT))
    body += [(BPF_JEQ_K, "deny", 0, nr) for nr in (*calls.keyrings, calls.memfd_create, *calls.watchers)]
    body += [
        *((BPF_JEQ_K, "enosys", 0, nr) for nr in (calls.clone3, *calls.absent)),
        (BPF_JEQ_K, "shm_size", 0, calls.shmget),
        (BPF_JEQ_K, "lock_op", 0, calls.flock),
        (BPF_JEQ_K, "fcntl_cmd", 0, calls.fcntl),
        (BPF_JEQ_K, "flags", 0, calls.unshare),
        (BPF_JEQ_K, "flags", "allow", calls.clone),
        ("flags", None, None, 0),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG0_LOW),
        (BPF_JSET_K, "deny", "allow", CLONE_NEWUSER),
        ("shm_size", None, None, 0),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG1_HIGH),
        (BPF_JEQ_K, 0, "deny", 0),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG1_LOW),
        (BPF_JGE_K, "deny", "allow", SHM_SEGMENT_MAX_BYTES + 1),
        ("lock_op", None, None, 0),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG1_LOW),
        (BPF_JSET_K, "enolck", "allow", LOCK_EX),
        ("fcntl_cmd", None, None, 0),
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG1_LOW),  # the kernel reads the command as 32 bits
        (BPF_JEQ_K, "deny", "allow", F_NOTIFY),
        ("allow", None, None, 0),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ("deny", None, None, 0),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
        ("enosys", None, None, 0),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS),
        ("enolck", None, None, 0),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOLCK),
    ]
    return _assemble(body)


def _assemble(body: list[tuple[object, object, object, int]]) -> list[tuple[int, int, int, int]]:
    labels: dict[str, int] = {}
    program: list[tuple[int, object, object, int]] = []
    for code, jt, jf, k in body:
        if isinstance(code, str):
            labels[code] = len(program)
        else:
            program.append((code, jt, jf, k))

    def offset(target: object, index: int) -> int:
        return labels[target] - index - 1 if isinstance(target, str) else int(target)

    return [(code, offset(jt, i), offset(jf, i), k) for i, (code, jt, jf, k) in enumerate(program)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int  # looked up once here, in the zygote, not in every child


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


def _build() -> tuple[_Program, ctypes.Array] | None:
    program = run_filter(platform.machine())
    if program is None:
        return None
    filters = (_Filter * len(program))(*(_Filter(*instruction) for instruction in program))
    return _Program(len(program), filters), filters


# Built once when the zygote imports this module: a forked child only makes the system call
# (building it there cost about 0.3 ms of copy-on-write faults per run).
_PREPARED = _build()


def install_run_filter() -> bool:
    """Install the filter in this process; False where the architecture is not known."""
    if _PREPARED is None:
        return False
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(_PREPARED[0]), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
    return True
