"""A small seccomp filter for runs: no kernel keyring system calls.

Kernel keyrings are not fully namespaced: keys are checked against the global uid, so a key
a run plants (and makes readable to its uid) could be found by a later run of the same uid
through /proc/keys. Model code has no use for keyrings; the calls fail with EPERM, as under
Docker's default profile. Installed after PR_SET_NO_NEW_PRIVS, inherited by everything the
run starts, and impossible to remove.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
X32_SYSCALL_BIT = 0x40000000

# machine -> (audit arch, add_key, request_key, keyctl, whether x32 numbers must be refused)
KEYRING_SYSCALLS = {
    "x86_64": (0xC000003E, (248, 249, 250), True),
    "aarch64": (0xC00000B7, (217, 218, 219), False),
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int  # looked up once here, in the zygote, not in every child


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


def keyring_filter(machine: str) -> list[tuple[int, int, int, int]] | None:
    """The BPF program (code, jt, jf, k) for this machine, None where it is not known."""
    known = KEYRING_SYSCALLS.get(machine)
    if known is None:
        return None
    arch, numbers, refuse_x32 = known
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    checks = [(BPF_JEQ_K, nr) for nr in numbers] + ([(BPF_JGE_K, X32_SYSCALL_BIT)] if refuse_x32 else [])
    program = [
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        (BPF_JEQ_K, 1, 0, arch),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),  # a foreign ABI: not ours to judge
        (BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ]
    for index, (op, value) in enumerate(checks):
        to_deny = len(checks) - index  # the deny instruction follows the final allow
        program.append((op, to_deny, 0, value))
    program += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, deny)]
    return program


def _build() -> tuple[_Program, ctypes.Array] | None:
    program = keyring_filter(platform.machine())
    if program is None:
        return None
    filters = (_Filter * len(program))(*(_Filter(*instruction) for instruction in program))
    return _Program(len(program), filters), filters


# Built once when the zygote imports this module: a forked child only makes the system call
# (building it there cost about 0.3 ms of copy-on-write faults per run).
_PREPARED = _build()


def forbid_keyrings() -> bool:
    """Install the filter in this process; False where the architecture is not known."""
    if _PREPARED is None:
        return False
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(_PREPARED[0]), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")
    return True
